"""The tables a new user meets first fit an 80-column terminal: ``compare`` (its policy table, the capacity
table of ``--capacity`` and the table by turn of ``--multi-turn``), ``simulate``, ``size`` and ``optimize`` on
the embedded default, each rendered at exactly 80 columns with no cell cut (no "…", every header and cell
whole) and no line longer than 80; ``--wide`` still prints every figure, and the JSON is the same with or
without it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from pdcore.cli import app

WIDTH = 80


class _Recording(Console):
    """A console of exactly `WIDTH` columns that keeps the tables printed on it."""

    def __init__(self) -> None:
        super().__init__(width=WIDTH, file=io.StringIO(), highlight=False, color_system=None)
        self.tables: list[Table] = []

    def print(self, *objects: Any, **kwargs: Any) -> None:
        self.tables += [item for item in objects if isinstance(item, Table)]
        super().print(*objects, **kwargs)


def _printed(monkeypatch: pytest.MonkeyPatch, module: str, *args: str) -> _Recording:
    console = _Recording()
    monkeypatch.setattr(f"pdcore.cli.{module}.stdout", lambda: console)
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return console


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.replace("┃", "│").split("│")[1:-1]]


def _check_whole(table: Table) -> None:
    """Renders ``table`` at `WIDTH` columns and checks every line fits and every header and cell is whole:
    each header's lines joined equal the header, and each row is one line holding the row's cells."""
    console = Console(width=WIDTH, file=io.StringIO(), highlight=False, color_system=None)
    console.print(table)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    lines = text.splitlines()
    assert "…" not in text, text
    assert max(cell_len(line) for line in lines) <= WIDTH, text
    header_lines = [_cells(line) for line in lines if line.startswith("┃")]
    headers = [" ".join(part[i] for part in header_lines if part[i]) for i in range(len(table.columns))]
    assert headers == [str(column.header).replace("\n", " ") for column in table.columns], text
    rows = [_cells(line) for line in lines if line.startswith("│")]
    expected = [[str(column._cells[i]) for column in table.columns] for i in range(table.row_count)]
    assert rows == expected, text


def test_compare_default_table_fits_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    console = _printed(monkeypatch, "compare", "compare")
    assert len(console.tables) == 1
    _check_whole(console.tables[0])
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "…" not in text
    assert max(cell_len(line) for line in text.splitlines()) <= WIDTH


def test_compare_capacity_and_turn_tables_fit_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    policies = "cloud-only,device-only,pd-device"
    args = ("compare", "--policies", policies, "--limit", "300", "--capacity", "--capacity-window", "100")
    console = _printed(monkeypatch, "compare", *args)
    assert len(console.tables) == 2  # the policies, then their capacities
    for table in console.tables:
        _check_whole(table)
    console = _printed(monkeypatch, "compare", "compare", "--multi-turn", "--requests", "300")
    assert [table.title for table in console.tables][1:] == ["by turn"]
    for table in console.tables:
        _check_whole(table)


@pytest.mark.parametrize(
    ("module", "args"),
    [
        ("compare", ("simulate",)),
        ("size", ("size",)),
        ("optimize", ("optimize",)),
    ],
)
def test_other_default_tables_fit_80_columns(
    monkeypatch: pytest.MonkeyPatch, module: str, args: tuple[str, ...]
) -> None:
    console = _printed(monkeypatch, module, *args)
    assert console.tables
    for table in console.tables:
        _check_whole(table)


def test_wide_prints_every_figure_and_the_same_json(tmp_path: Path) -> None:
    args = ["compare", "--limit", "60", "--policies", "cloud-only,pd-device"]
    narrow, wide = tmp_path / "narrow.json", tmp_path / "wide.json"
    default = CliRunner().invoke(app, [*args, "--json", str(narrow)])
    widened = CliRunner().invoke(app, [*args, "--json", str(wide), "--wide"])
    assert default.exit_code == widened.exit_code == 0, default.output + widened.output
    for header in ("TPOT mean", "stall p99", "QoE", "gap SLO", "$/1k req", "batt %/req"):
        assert header in widened.output
        assert header not in default.output
    assert "--wide" in default.output  # the legend says where the rest is
    assert narrow.read_bytes() == wide.read_bytes()
