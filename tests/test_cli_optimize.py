"""End-to-end test of ``pdcore optimize``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from pdcore.cli import app

if TYPE_CHECKING:
    from conftest import CurveWriter

RUNNER = CliRunner()


def test_optimize_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "k.json"
    result = RUNNER.invoke(app, ["optimize", "--lengths", "256,1024,4096", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "k*" in result.output
    rows = json.loads(out.read_text())["rows"]
    assert [r["prompt_tokens"] for r in rows] == [256, 1024, 4096]
    ks = [r["k"] for r in rows]
    assert ks == sorted(ks)
    for r in rows:
        assert r["grid_k"] == r["k"]
        assert r["cost_ratio"] <= 1.05


def test_optimize_rejects_bad_lengths() -> None:
    result = RUNNER.invoke(app, ["optimize", "--lengths", "12,x"])
    assert result.exit_code == 2
    assert "--lengths" in result.output


def test_a_prompt_neither_side_can_hold_is_refused_not_priced() -> None:
    """10^8 tokens: beyond one A100 replica's KV cache (467,280 tokens) and 1 TiB of the phone's KV cache;
    before, the table priced it (a cloud TTFT of 41,445,941,769 ms)."""
    result = RUNNER.invoke(app, ["optimize", "--lengths", "100000000", "--no-check"])
    assert result.exit_code == 2
    assert "prompt_tokens = 100000000 fits neither the device" in result.output
    assert "at most 467279 tokens" in result.output
    assert "41445941769" not in result.output
    fits_one = RUNNER.invoke(app, ["optimize", "--lengths", "467280", "--no-check"])
    assert fits_one.exit_code == 0, fits_one.output


def test_optimize_rejects_an_unknown_device() -> None:
    result = RUNNER.invoke(app, ["optimize", "--device-profile", "no-such-phone", "--no-check"])
    assert result.exit_code == 2
    assert "no-such-phone" in result.output


SLOW = ["--device-profile", "smollm2-135m-q4-cpu2"]


def test_optimize_refines_within_the_quality_budget(tmp_path: Path, write_curve: CurveWriter) -> None:
    curve = write_curve({0.75: (0.0, 0.01), 0.5: (0.01, 0.03), 0.35: (0.05, 0.09)})
    out = tmp_path / "k.json"
    args = ["optimize", *SLOW, "--lengths", "512,4096", "--refine", "auto", "--quality", str(curve)]
    result = RUNNER.invoke(app, [*args, "--quality-bound", "mean", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "refine r" in result.output
    assert "allows r = 1, 0.75, 0.5;" in result.output
    assert "r = 0.35 +0.050 / +0.090 over budget" in result.output
    document = json.loads(out.read_text())
    assert document["refinement"]["allowed"] == [1.0, 0.75, 0.5]
    for row in document["rows"]:
        assert row["mode"] == "pd"
        assert row["refine_ratio"] == 0.5
        assert row["grid_refine_ratio"] == 0.5
        assert row["cost_ratio"] <= 1.05
    # the conservative default bound only lets r = 0.75 in
    result = RUNNER.invoke(app, [*args, "--no-check", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "95% CI upper bound" in result.output
    assert {r["refine_ratio"] for r in json.loads(out.read_text())["rows"]} == {0.75}


def test_optimize_with_the_default_curve_names_what_it_allowed(tmp_path: Path) -> None:
    out = tmp_path / "k.json"
    result = RUNNER.invoke(
        app,
        ["optimize", *SLOW, "--lengths", "512,4096", "--refine", "auto", "--no-check", "--json", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "refinement: budget 0.02 checked against" in result.output
    document = json.loads(out.read_text())
    assert document["refinement"]["quality"] == "smollm2-135m"
    allowed = document["refinement"]["allowed"]
    assert all(row["refine_ratio"] in allowed for row in document["rows"])


def test_optimize_without_refine_keeps_the_full_prompt(tmp_path: Path) -> None:
    out = tmp_path / "k.json"
    result = RUNNER.invoke(app, ["optimize", "--lengths", "512", "--no-check", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "refine r" not in result.output
    assert "refinement" not in json.loads(out.read_text())


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--refine", "auto", "--quality", "/no/such/curve.toml"], "--quality: quality curve file '/no/such"),
        (["--refine", "auto", "--quality", "no-such-curve"], "no-such-curve"),
        (["--quality", "smollm2-135m"], "--quality 'smollm2-135m' without refinement"),
        (["--refine", "half"], "--refine 'half'"),
        (["--refine", "0.6"], "ratio 0.6 has no measured quality drop"),
        (["--refine", "auto", "--quality-budget", "-1"], "--quality-budget = -1"),
        (["--refine", "auto", "--quality-bound", "p99"], "--quality-bound 'p99'"),
    ],
)
def test_optimize_rejects_bad_refinement_options(args: list[str], match: str) -> None:
    result = RUNNER.invoke(app, ["optimize", "--lengths", "512", "--no-check", *args])
    assert result.exit_code == 2
    assert match in " ".join(result.output.split())
