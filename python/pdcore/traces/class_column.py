"""The optional ``device_class`` column of a trace: the device class of each request, by name.

A trace in any format the loaders read may give each request the name of its device class: a CSV column
``device_class`` (`pdcore.traces.azure`), or a ``device_class`` key in every JSON Lines record
(`pdcore.traces.mooncake`, `pdcore.traces.bailian`). Rules (ours):

- the column is all or nothing: every request names its class, as non-empty text of at most
  `MAX_CLASS_NAME` characters (surrounding spaces are dropped); an empty cell, a record without the key
  while others have it (or the other way round) or a value that is not text is refused with
  `TraceFormatError` naming the file, the line, the value and the fix;
- the names are checked against a fleet only when a run is given one (``--fleet``):
  `pdcore.sim.fleet_runs.request_classes` then takes each request's class from the column instead of the
  seeded draw of `pdcore.fleet.Fleet.draw`, and refuses a name the fleet does not have;
- without a fleet the column is read and checked but not used: every request runs on the one device and
  network of the run, as without the column;
- a trace without the column loads exactly as before (`Workload.device_class` is empty).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from pdcore.traces.checks import row_error

__all__ = ["CLASS_COLUMN", "MAX_CLASS_NAME", "ClassCells", "csv_classes"]

CLASS_COLUMN = "device_class"
"""The name of the column (CSV) or key (JSON Lines)."""

MAX_CLASS_NAME = 200
"""The longest class name a trace may give, characters (a fleet's class names are short labels)."""

_FIX = "give every request the name of its fleet class (a [[class]] name of the --fleet file)"


def class_name(value: Any, path: str, line: int) -> str:
    """One cell: a class name, stripped; refuses an empty, over-long or non-text value."""
    if not isinstance(value, str):
        raise row_error(path, line, CLASS_COLUMN, f"{value!r} is not text", f"write the name as text; {_FIX}")
    name = value.strip()
    if not name:
        raise row_error(path, line, CLASS_COLUMN, "the cell is empty", _FIX)
    if len(name) > MAX_CLASS_NAME:
        raise row_error(
            path,
            line,
            CLASS_COLUMN,
            f"{name[:40]!r}... is longer than {MAX_CLASS_NAME} characters",
            f"use a fleet class name; {_FIX}",
        )
    return name


class ClassCells:
    """The ``device_class`` values of a JSON Lines trace read so far, line by line (all or nothing)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.names: list[str] = []
        self.lines = 0
        self.first_line: int | None = None

    def add(self, line: int, record: dict[str, Any]) -> None:
        """Keeps the line's class, refusing a line that has the key when an earlier one had not, or the
        other way round."""
        present = CLASS_COLUMN in record
        if present != bool(self.names) and self.lines:
            now, was = ("given", "missing") if present else ("missing", "given")
            raise row_error(
                self.name,
                line,
                CLASS_COLUMN,
                f"the key is {now} here but was {was} on line {self.first_line}",
                f"give it on every line or none; {_FIX}",
            )
        if self.first_line is None:
            self.first_line = line
        self.lines += 1
        if present:
            self.names.append(class_name(record[CLASS_COLUMN], self.name, line))

    def column(self) -> dict[str, Any]:
        """The `Workload` argument: ``{"device_class": names}``, or nothing when no line had the key."""
        return {CLASS_COLUMN: np.array(self.names, dtype=np.str_)} if self.names else {}


def csv_classes(file: Path, name: str) -> dict[str, Any]:
    """The ``device_class`` column of a CSV trace whose header has one (the `Workload` argument).

    Read on its own after the trace's other columns, so a trace without it is read as before; rows are
    the non-blank ones, as the readers of `pdcore.traces.azure` count them.
    """
    names: list[str] = []
    with file.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [cell.strip() for cell in next(reader)]
        index = header.index(CLASS_COLUMN)
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            cell = row[index] if index < len(row) else ""
            names.append(class_name(cell, name, reader.line_num))
    return {CLASS_COLUMN: np.array(names, dtype=np.str_)}
