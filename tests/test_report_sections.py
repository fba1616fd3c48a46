"""The report's sections beside the experiments, the experiments' shared runs, the targets on the stand-in,
and the progress lines of ``pdcore reproduce``."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from pdcore.cli.report import _Lines, target_lines
from pdcore.report import refinement
from pdcore.report.markdown import targets as markdown_targets
from pdcore.report.sections import INDEPENDENT, Beside
from pdcore.report.shared_runs import merge, split
from pdcore.report.study import Settings, Study
from pdcore.report.targets import AZURE_CONV_FIGURES, AZURE_CONV_REPRODUCE
from pdcore.sim.sweep import SweepTask, WorkloadSpec, run_sweep

README = Path(__file__).resolve().parents[1] / "README.md"


def _tiny_study() -> Study:
    settings = Settings.quick_preset(
        device="llama32-3b-w4a16-8elite-genie", cloud="llama3-8b-a100", network="wifi"
    )
    settings = Settings(
        **{
            **settings.__dict__,
            "synthetic_requests": 40,
            "window": 40,
            "devices": settings.devices[:1],
        }
    )
    scenario = settings.scenario_spec().build()
    return Study.build(settings, scenario, [], curve=refinement.load(refinement.DEFAULT_QUALITY))


def test_the_sections_beside_the_experiments_equal_those_run_in_turn() -> None:
    study = _tiny_study()
    alone = Beside(study, concurrent=False)
    alone.start()
    in_turn = alone.independent()
    heard: list[tuple[str, int, int]] = []
    listened = Study(**{**study.__dict__, "progress": lambda *item: heard.append(item)})
    beside = Beside(listened, concurrent=True)
    beside.start()
    concurrent = beside.independent()
    assert concurrent.keys() == in_turn.keys() == set(INDEPENDENT)
    for key in INDEPENDENT:
        assert concurrent[key] == in_turn[key], key
    stages = {stage for stage, _, _ in heard}
    assert {"sizing", "conversations", "optimizer"} <= stages


def test_tasks_of_one_setting_run_once_and_each_gets_its_own_part() -> None:
    workload = WorkloadSpec(seed=3, requests=30)
    tasks = [
        SweepTask(workload, "pd-device", compute=("aggregate",), columns=("ttft_s",), tag="a"),
        SweepTask(workload, "pd-device", compute=("timeline",), tag="b"),
        SweepTask(workload, "cloud-only", tag="c"),
        SweepTask(workload, "pd-device", compute=("aggregate",), columns=("max_gap_s",), tag="d"),
    ]
    distinct, of_tag = merge(tasks)
    assert len(distinct) == 2
    assert distinct[0].compute == ("aggregate", "timeline")
    assert distinct[0].columns == ("ttft_s", "max_gap_s")
    shared = split(tasks, run_sweep(distinct, executor="serial"), of_tag)
    separate = run_sweep(tasks, executor="serial")
    for task, alone in zip(tasks, separate, strict=True):
        assert shared[task.tag] == alone, task.tag


def _targets(*, stand_in: bool, decode_met: bool) -> dict[str, Any]:
    return {
        "workload": "synthetic-azure-conv" if stand_in else "azure_2023_conv",
        "stand_in": stand_in,
        "ttft_cut_vs_device_only": {"mean": 0.81, "p50": 0.79, "p99": 0.83, "target": 0.6, "met": True},
        "max_gap_p99": {"value_s": 0.05, "target_s": 0.05, "met": True, "cloud_only_value_s": 0.056},
        "decode_capacity_x": {
            "value": 16.9 if decode_met else 8.8,
            "relation": "=",
            "target": 10.0,
            "met": decode_met,
        },
    }


def test_a_target_the_stand_in_misses_names_the_trace_it_belongs_to() -> None:
    lines = target_lines(_targets(stand_in=True, decode_met=False))
    assert "standing in for the Azure conversation trace" in lines[0]
    missed = [line for line in lines if line.lstrip().startswith("missed")]
    assert len(missed) == 1
    assert "8.8x here" in missed[0]
    assert f"{AZURE_CONV_FIGURES['decode_capacity_x']:.1f}x" in missed[0]
    assert AZURE_CONV_REPRODUCE in missed[0]


def test_targets_met_on_the_trace_carry_no_stand_in_note() -> None:
    lines = target_lines(_targets(stand_in=False, decode_met=True))
    assert lines[0] == "targets on azure_2023_conv:"
    assert all(line.lstrip().startswith("met") for line in lines[1:])
    assert not any(AZURE_CONV_REPRODUCE in line for line in lines)


def test_the_reports_targets_say_missed_on_the_stand_in_with_both_figures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    targets = _targets(stand_in=True, decode_met=False)
    targets["max_gap_p99"] |= {"causes": {}, "what_if": []}
    targets["whole_cloud"] = {}
    found = {"bound": "found", "window": 1000}
    document = {
        "targets": targets,
        "workloads": {
            "synthetic-azure-conv": {
                "capacity": {
                    "pd-device": {"decode_capacity": found | {"rps": 192.2}},
                    "cloud-only": {"decode_capacity": found | {"rps": 21.8}},
                },
                "growth": [],
            }
        },
    }
    # the other paragraphs read sections this test leaves out
    monkeypatch.setattr(markdown_targets, "_whole_cloud", lambda whole, capacity: "4. whole cloud")
    monkeypatch.setattr(markdown_targets, "_growth_text", lambda document: "")
    monkeypatch.setattr(markdown_targets, "_growth_summary", lambda document: [])
    text = "\n".join(markdown_targets.targets_text(document, 0.05))
    line = next(line for line in text.splitlines() if line.startswith("3. "))
    assert "**missed on the stand-in**: 8.8x" in line
    assert "192.2 req/s under P/D-Device and 21.8 req/s under cloud-only" in line
    assert "16.9x there" in line


def test_the_readme_quotes_the_traces_decode_capacity_multiple() -> None:
    quoted = f"({AZURE_CONV_FIGURES['decode_capacity_x']:.1f}\N{MULTIPLICATION SIGN})"
    assert quoted in README.read_text(encoding="utf-8")


def test_progress_lines_say_each_stage_once_when_it_starts_and_once_when_it_ends() -> None:
    out = io.StringIO()
    lines = _Lines(Console(file=out, width=200), started=0.0)
    for done in range(4):
        lines("simulations", done, 3)
    lines("optimizer", 0, 1)
    lines("optimizer", 1, 1)
    lines("optimizer", 1, 1)
    said = [re.sub(r"^\[\s*[\d.]+ s\] ", "", line) for line in out.getvalue().splitlines()]
    assert said == [
        "simulations: 3 to run",
        "simulations: 3/3 done",
        "optimizer: 1 to run",
        "optimizer: 1/1 done",
    ]
