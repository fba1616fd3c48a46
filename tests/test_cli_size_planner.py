"""``pdcore size --model-family/--clouds`` end to end, and ``pdcore size`` without them unchanged.

The files in ``tests/data/size_before_planner`` are the output of ``pdcore size --requests 80 --workload
long-answer --deployment colocated --json OUT`` before the planner's search existed (its last line, the
wall time, left out; of the JSON, its keys and the figures). Regenerate them only when the simulator's
results change on purpose.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pdcore.cli import app

BEFORE = Path(__file__).parent / "data" / "size_before_planner"
TINY = ["--requests", "60", "--rate", "8", "--max-replicas", "8"]


def _size(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["size", *args], terminal_width=200)
    return result.exit_code, result.stdout, result.stderr


def test_size_without_the_new_flags_prints_what_it_printed_before(tmp_path: Path) -> None:
    out = tmp_path / "sized.json"
    code, stdout, stderr = _size(
        "--requests", "80", "--workload", "long-answer", "--deployment", "colocated", "--json", str(out)
    )
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert lines[-1].startswith("sized 2 policies in ")
    assert "\n".join(lines[:-1]) + "\n" == (BEFORE / "long_answer_colocated.txt").read_text(encoding="utf-8")
    document = json.loads(out.read_text(encoding="utf-8"))
    before = json.loads((BEFORE / "long_answer_colocated.json").read_text(encoding="utf-8"))
    assert sorted(document) == before.pop("keys")
    assert {key: document[key] for key in before} == before


def test_a_search_over_two_clouds_prints_the_candidates_and_the_fronts(tmp_path: Path) -> None:
    out = tmp_path / "planned.json"
    clouds = "llama3-8b-a100,llama2-7b-a40-tp1-vidur"  # the A40 profile has no [price]
    code, stdout, stderr = _size(*TINY, "--clouds", clouds, "--json", str(out), "--executor", "serial")
    assert code == 0, stderr
    for header in ("split", "GPUs", "goodput/GPU", "$/hour", "$/month", "TTFT p90", "tok/s/user", "front"):
        assert header in stdout
    assert "no price" in stdout
    assert "TTFT front of cloud-only:" in stdout
    assert "speed front of cloud-only:" in stdout
    assert "TTFT front of pd-device:" in stdout
    assert "searched 8 candidates" in stdout
    assert "on serial" in stdout
    document = json.loads(out.read_text(encoding="utf-8"))
    candidates = document["candidates"]
    assert len(candidates) == 2 * 2 * 2  # clouds x deployments x policies
    a40 = [c for c in candidates if c["cloud_profile"] == "llama2-7b-a40-tp1-vidur"]
    assert all(c["usd_per_gpu_hour"] is None and c["usd_per_month"] is None for c in a40)
    for candidate in candidates:
        if candidate["gpus"] and candidate["usd_per_gpu_hour"] is not None:
            expected = candidate["usd_per_gpu_hour"] * candidate["gpus"] * 730
            assert candidate["usd_per_month"] == pytest.approx(expected)
    for kind in ("ttft", "speed"):
        on_front = {
            (c["policy"], f"{c['cloud_profile']} {c['cloud']}") for c in candidates if c[f"on_{kind}_front"]
        }
        listed = {(policy, label) for policy, fronts in document["fronts"].items() for label in fronts[kind]}
        assert on_front == listed
        assert on_front
    assert document["search"]["candidates"] == 8
    assert document["search"]["wall_s"] >= 0.0
    assert document["config"]["deployments"] == ["disaggregated", "colocated"]


def test_a_model_family_searches_its_shipped_profiles() -> None:
    code, stdout, stderr = _size(
        *TINY, "--model-family", "llama3-8b", "--policies", "cloud-only", "--deployments", "colocated"
    )
    assert code == 0, stderr
    for cloud in ("llama3-8b-a100", "llama3-8b-a100-tp1-vidur", "llama3-8b-h100"):
        assert cloud in stdout
    assert "searched 3 candidates" in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--executor", "serial"], "--executor apply to a search over clouds"),
        (["--deployments", "colocated"], "add --model-family or --clouds"),
        (["--model-family", "llama3-8b", "--clouds", "llama3-8b-a100"], "pass one of them"),
        (["--model-family", "llama3-8b", "--cloud", "llama3-8b-h100"], "drop --cloud"),
        (["--model-family", "llama3-8b", "--deployment", "colocated"], "use --deployments"),
        (["--model-family", "gpt-5"], "has no shipped cloud profile"),
        (["--model-family", "llama3-8b", "--deployments", "stacked"], "--deployments names 'stacked'"),
        (["--model-family", "llama3-8b", "--executor", "gpu"], "--executor 'gpu' is unknown"),
        (["--clouds", "llama3-8b-a100,llama3-8b-a100"], "twice"),
        (["--clouds", "llama3-8b-a100,,llama3-8b-h100"], "empty name"),
        (["--clouds", "no-such-cloud"], "unknown cloud profile"),
    ],
)
def test_bad_planner_flags_are_one_clear_error(args: list[str], message: str) -> None:
    code, _stdout, stderr = _size(*TINY, *args)
    assert code == 2
    assert message in stderr.replace("\n", " ")
    assert "Traceback" not in stderr
