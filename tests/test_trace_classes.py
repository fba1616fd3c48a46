"""A trace's ``device_class`` column: each request's fleet class taken from the trace, its errors, and the
loaders unchanged without it (`pdcore.traces.class_column`, `pdcore.sim.fleet_runs.request_classes`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from pdcore.cli import app
from pdcore.exceptions import InvalidInputError, TraceFormatError
from pdcore.fleet import load_fleet
from pdcore.sim.fleet_runs import request_classes
from pdcore.traces import load_trace

CLASSES = ["none-lte", "capable-wifi", "capable-wifi", "none-wifi", "capable-5g", "none-lte"] * 4
"""24 requests: capable-wifi 8, capable-5g 4, none-wifi 4, none-lte 8 (not the phones-2025 mix)."""

COUNTS = {"capable-wifi": 8, "capable-5g": 4, "none-wifi": 4, "none-lte": 8}


def _csv(tmp_path: Path, classes: list[str] | None, name: str = "t.csv") -> Path:
    head = "TIMESTAMP,ContextTokens,GeneratedTokens" + (",device_class" if classes is not None else "")
    rows = [head]
    for i in range(len(CLASSES)):
        row = f"2023-11-16 18:15:{10 + i:02d}.0000000,{200 + 10 * i},{20 + i}"
        rows.append(row + (f",{classes[i]}" if classes is not None else ""))
    path = tmp_path / name
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _jsonl(tmp_path: Path, classes: list[str | None]) -> Path:
    lines = []
    for i, label in enumerate(classes):
        record: dict[str, Any] = {"timestamp": 1000 * i, "input_length": 300 + i, "output_length": 30}
        if label is not None:
            record["device_class"] = label
        lines.append(json.dumps(record))
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), terminal_width=200)


def test_a_trace_without_the_column_loads_as_before(tmp_path: Path) -> None:
    plain = load_trace(_csv(tmp_path, None, "a.csv"))
    labelled = load_trace(_csv(tmp_path, CLASSES, "a2.csv"))
    assert len(plain.device_class) == 0
    assert list(labelled.device_class) == CLASSES
    assert np.array_equal(plain.arrival_s, labelled.arrival_s)
    assert np.array_equal(plain.prompt_tokens, labelled.prompt_tokens)
    assert plain.describe()["notes"] == labelled.describe()["notes"]


def test_derived_workloads_keep_each_request_s_class(tmp_path: Path) -> None:
    workload = load_trace(_csv(tmp_path, CLASSES))
    assert list(workload.limit(5).device_class) == CLASSES[:5]
    assert list(workload.scaled(2.0).device_class) == CLASSES
    skipped = workload.fit(430, "skip")  # drops the requests whose prompt + output exceed 430 tokens
    kept = (workload.prompt_tokens + workload.output_tokens) <= 430
    assert list(skipped.device_class) == [c for c, k in zip(CLASSES, kept, strict=True) if k]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_each_request_runs_in_the_class_its_row_names(tmp_path: Path, fmt: str) -> None:
    path = _csv(tmp_path, CLASSES) if fmt == "csv" else _jsonl(tmp_path, list(CLASSES))
    fleet = load_fleet("phones-2025")
    workload = load_trace(path)
    names = [c.name for c in fleet.classes]
    expected = [names.index(c) for c in CLASSES]
    for seed in (0, 1, 7):  # the column, not the seed, decides
        assert request_classes(fleet, workload, seed).tolist() == expected
    out = tmp_path / "out.json"
    result = _cli("simulate", "--trace", str(path), "--fleet", "phones-2025", "--json", str(out))
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text(encoding="utf-8"))["policies"]["pd-device"]["by_class"]
    assert {row["name"]: row["requests"] for row in rows} == COUNTS
    again = tmp_path / "again.json"
    assert (
        _cli("simulate", "--trace", str(path), "--fleet", "phones-2025", "--json", str(again)).exit_code == 0
    )
    assert again.read_text(encoding="utf-8") == out.read_text(encoding="utf-8")


def test_without_a_fleet_the_column_is_not_used(tmp_path: Path) -> None:
    reports = []
    for name, classes in (("plain.csv", None), ("labelled.csv", CLASSES)):
        out = tmp_path / f"{name}.json"
        result = _cli("simulate", "--trace", str(_csv(tmp_path, classes, name)), "--json", str(out))
        assert result.exit_code == 0, result.output
        document = json.loads(out.read_text(encoding="utf-8"))
        document.pop("workload", None)
        document.pop("config", None)
        reports.append(document)
    assert reports[0] == reports[1]


def test_a_name_the_fleet_lacks_is_refused_naming_request_and_value(tmp_path: Path) -> None:
    classes = list(CLASSES)
    classes[4] = "tablet"
    path = _csv(tmp_path, classes)
    with pytest.raises(InvalidInputError, match=r"request 5 names device_class 'tablet'.*fix:"):
        request_classes(load_fleet("phones-2025"), load_trace(path), 0)
    result = _cli("simulate", "--trace", str(path), "--fleet", "phones-2025")
    assert result.exit_code == 2, result.output
    assert "'tablet'" in result.output
    assert "Traceback" not in result.output


def test_an_empty_cell_is_refused_naming_the_line(tmp_path: Path) -> None:
    classes = list(CLASSES)
    classes[2] = " "
    path = _csv(tmp_path, classes)
    with pytest.raises(TraceFormatError, match=r"line 4, column 'device_class': the cell is empty; fix:"):
        load_trace(path)
    result = _cli("simulate", "--trace", str(path), "--fleet", "phones-2025")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        (
            ["none-lte", None, "none-lte"],
            r"line 2, column 'device_class': the key is missing here but was given",
        ),
        ([None, "none-lte"], r"line 2, column 'device_class': the key is given here but was missing"),
        (["none-lte", ""], r"line 2, column 'device_class': the cell is empty"),
        (["none-lte", 3], r"line 2, column 'device_class': 3 is not text"),
    ],
)
def test_a_json_trace_gives_the_key_on_every_line_or_none(
    tmp_path: Path, classes: list[Any], message: str
) -> None:
    with pytest.raises(TraceFormatError, match=message):
        load_trace(_jsonl(tmp_path, classes))


def test_size_over_a_fleet_refuses_a_trace_that_names_classes(tmp_path: Path) -> None:
    result = _cli("size", "--trace", str(_csv(tmp_path, CLASSES)), "--fleet", "phones-2025")
    assert result.exit_code == 2, result.output
    assert "device_class column" in result.output
    assert "Traceback" not in result.output
