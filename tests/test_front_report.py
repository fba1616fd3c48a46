"""``pdcore front-report``: front.md, the two PNGs and front.html from the JSON of ``pdcore size
--model-family``, the fronts drawn as the command marked them, and bad JSON (a path, a shape, a value) as
exit 2 with the input named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pdcore.cli import app
from pdcore.report.figures.front import front_plotly_figure
from pdcore.report.front import read_front

runner = CliRunner()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def candidate(
    policy: str, profile: str, deployment: str, split: str | None, **figures: Any
) -> dict[str, Any]:
    """A candidate as `pdcore.sim.planner_search.PlannedCloud.describe` writes it (the keys read back)."""
    found = split is not None
    return {
        "policy": policy,
        "deployment": deployment,
        "cloud": split,
        "cloud_profile": profile,
        "gpu": "NVIDIA A100-SXM4-80GB",
        "tensor_parallel": int(profile.split("-tp")[1].split("-", maxsplit=1)[0]),
        "bound": "found" if found else "unattainable",
        "gpus": figures.get("gpus"),
        "goodput_per_gpu_rps": figures.get("goodput"),
        "ttft_p90_s": figures.get("ttft"),
        "user_tokens_per_s": figures.get("speed"),
        "usd_per_gpu_hour": 1.99,
        "usd_per_hour": None if not found else 1.99 * figures["gpus"],
        "usd_per_month": None if not found else 1.99 * figures["gpus"] * 730,
        "on_ttft_front": figures.get("on_ttft", False),
        "on_speed_front": figures.get("on_speed", False),
    }


TP4, TP8 = "llama3-70b-a100-tp4-vidur", "llama3-70b-a100-tp8-vidur"


def document() -> dict[str, Any]:
    candidates = [
        candidate("cloud-only", TP4, "disaggregated", None),
        candidate(
            "cloud-only",
            TP8,
            "disaggregated",
            "1P+2D",
            gpus=24,
            goodput=0.037,
            ttft=0.43,
            speed=27.2,
            on_ttft=True,
            on_speed=True,
        ),
        candidate(
            "pd-device",
            TP4,
            "disaggregated",
            "1P+1D",
            gpus=8,
            goodput=0.117,
            ttft=0.69,
            speed=23.4,
            on_ttft=True,
            on_speed=True,
        ),
        candidate(
            "pd-device", TP8, "colocated", "x2", gpus=16, goodput=0.058, ttft=0.39, speed=23.4, on_ttft=True
        ),
        candidate("pd-device", TP8, "disaggregated", "1P+1D", gpus=16, goodput=0.05, ttft=0.5, speed=23.0),
    ]
    return {
        "candidates": candidates,
        "fronts": {},
        "workload": {"name": "synthetic-long-answer", "rate_rps": 0.94},
        "search": {"candidates": 5, "probes": 20, "wall_s": 1.5, "executor": "threads"},
    }


@pytest.fixture
def size_json(tmp_path: Path) -> Path:
    path = tmp_path / "size.json"
    path.write_text(json.dumps(document()))
    return path


def test_front_report_writes_the_tables_the_figures_and_the_page(size_json: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    command = "pdcore size --model-family llama3-70b --json size.json"
    result = runner.invoke(
        app, ["front-report", "--size-json", str(size_json), "--out", str(out), "--size-command", command]
    )
    assert result.exit_code == 0, result.output
    text = (out / "front.md").read_text()
    assert f"Made by: `{command}`" in text
    assert "### cloud-only" in text
    assert "### pd-device" in text
    assert f"| {TP8} | colocated | 8 | x2 | 16 | 0.058 | 0.39 | 23.4 | 23,243 |" in text
    assert f"Not drawn (no cloud found): {TP4} disaggregated (unattainable)." in text
    assert "5 candidates, 20 clouds probed, 1.5 s on threads" in text
    assert "![goodput per GPU against TTFT p90](front_ttft.png)" in text
    for name in ("front_ttft.png", "front_speed.png"):
        assert (out / name).read_bytes().startswith(PNG_SIGNATURE)
    page = (out / "front.html").read_text()
    assert 'id="fig-front-ttft"' in page
    assert 'id="fig-front-speed"' in page
    assert '"fig-front-ttft":{"data"' in page
    assert "front.html" in result.output


def test_the_fronts_are_the_marked_candidates_in_step_order(size_json: Path) -> None:
    front = read_front(size_json)
    ttft = front.front("pd-device", "ttft")
    assert [(p.label, p.ttft_p90_s) for p in ttft] == [
        ("a100-tp8-vidur x2", 0.39),
        ("a100-tp4-vidur 1P+1D", 0.69),
    ]
    assert [p.label for p in front.front("pd-device", "speed")] == ["a100-tp4-vidur 1P+1D"]
    assert front.front("cloud-only", "ttft")[0].label == "a100-tp8-vidur 1P+2D"
    figure = front_plotly_figure(front, "ttft")
    steps = next(trace for trace in figure["data"] if trace["name"] == "pd-device front")
    assert steps["line"]["shape"] == "hv"
    assert steps["x"] == [0.39, 0.69]
    points = next(trace for trace in figure["data"] if trace["name"] == "pd-device candidates")
    assert len(points["x"]) == 3
    assert "llama3-70b-a100-tp8-vidur" in points["text"][1]
    assert "16 GPUs" in points["text"][1]
    speed = front_plotly_figure(front, "speed")
    assert [t["line"]["shape"] for t in speed["data"] if "line" in t] == ["vh", "vh"]


def test_hostile_names_are_escaped_in_the_page(tmp_path: Path) -> None:
    hostile = document()
    hostile["candidates"][2]["policy"] = "</script><b>x"
    path = tmp_path / "size.json"
    path.write_text(json.dumps(hostile))
    front = read_front(path)
    figure = front_plotly_figure(front, "ttft")
    assert all("<b>x" not in trace["name"] for trace in figure["data"])


def test_without_plotly_the_rest_is_written_and_the_page_is_explained(
    size_json: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from pdcore.cli import report_files

    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "plotly" else real(name, *args, **kwargs)

    monkeypatch.setattr(report_files.importlib.util, "find_spec", find_spec)
    out = tmp_path / "report"
    result = runner.invoke(app, ["front-report", "--size-json", str(size_json), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "not written: front.html (the interactive figures) needs the 'plot' extra" in result.output
    assert (out / "front_speed.png").exists()
    assert (out / "front.md").exists()
    assert not (out / "front.html").exists()


def _bad(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bad.json"
    path.write_text(text)
    result = runner.invoke(app, ["front-report", "--size-json", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert "bad.json" in result.output
    return result.output


def test_bad_json_is_exit_2_naming_the_input(tmp_path: Path) -> None:
    missing = runner.invoke(
        app, ["front-report", "--size-json", str(tmp_path / "none.json"), "--out", str(tmp_path / "o")]
    )
    assert missing.exit_code == 2
    assert "cannot be read as JSON" in missing.output
    assert "cannot be read as JSON" in _bad(tmp_path, "{not json")
    assert "has no 'candidates' list" in _bad(tmp_path, json.dumps({"fleet_sizing": {}}))
    assert "has no candidates" in _bad(tmp_path, json.dumps({"candidates": []}))
    broken = document()
    del broken["candidates"][1]["on_ttft_front"]
    assert "has no 'on_ttft_front' in candidate 1" in _bad(tmp_path, json.dumps(broken))
    broken = document()
    broken["candidates"][2]["ttft_p90_s"] = "fast"
    assert "ttft_p90_s='fast' in candidate 2, not a number" in _bad(tmp_path, json.dumps(broken))
    broken = document()
    broken["candidates"][2]["gpus"] = True
    assert "gpus=True in candidate 2" in _bad(tmp_path, json.dumps(broken))
    assert not (tmp_path / "o" / "front.md").exists()


def test_front_report_reads_what_size_model_family_writes(tmp_path: Path) -> None:
    size_json = tmp_path / "size.json"
    args = ["size", "--workload", "long-answer", "--requests", "60", "--ttft-slo", "2", "--max-tpot", "0.1"]
    sized = runner.invoke(app, [*args, "--model-family", "llama3-70b", "--json", str(size_json)])
    assert sized.exit_code == 0, sized.output
    out = tmp_path / "report"
    result = runner.invoke(app, ["front-report", "--size-json", str(size_json), "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = json.loads(size_json.read_text())
    front = read_front(size_json)
    for policy, fronts in written["fronts"].items():
        drawn = {f"{p.cloud_profile} {p.split_text}" for p in front.front(policy, "ttft")}
        assert drawn == set(fronts["ttft"])
    assert (out / "front_ttft.png").stat().st_size > 0
