"""What every trace reader checks, whatever the format: the file, and each row.

A malformed row raises `TraceFormatError` naming the file, the 1-based line number, the column and the
fix (`row_error`); a token count must be a whole number from 0 to `pdcore.limits.MAX_TOKENS`
(`check_count`). A trace's path must name a regular file, which becomes an input of the run that no
output may replace (`trace_file`).

Zero-token rows: a row whose prompt or output length is 0 is kept and the 0 is clamped to 1, so the
arrival process is unchanged and every request still costs one token. Each clamp is counted, logged at
WARNING level on the ``pdcore.traces`` logger and recorded in `Workload.notes` (`ZeroClamps`); nothing is
dropped silently.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pdcore.exceptions import TraceFormatError
from pdcore.inputs import input_file
from pdcore.limits import LIMITS_DOC, MAX_TOKENS

__all__ = ["ZeroClamps", "check_count", "row_error", "trace_file"]

_LOG = logging.getLogger("pdcore.traces")


def row_error(path: str, line: int, column: str, problem: str, fix: str) -> TraceFormatError:
    """The error for one bad value: the file, the 1-based line, the column, what is wrong and the fix."""
    return TraceFormatError(f"{path}, line {line}, column {column!r}: {problem}; fix: {fix}")


class ZeroClamps:
    """Counts token values of 0 clamped to 1, per column, and the first line each happened on."""

    def __init__(self) -> None:
        self.count: dict[str, int] = {}
        self.first_line: dict[str, int] = {}

    def clamp(self, value: int, column: str, line: int) -> int:
        """``value``, or 1 (counted) when it is 0."""
        if value != 0:
            return value
        if column not in self.count:
            self.count[column] = 0
            self.first_line[column] = line
        self.count[column] += 1
        return 1

    def notes(self, path: str) -> tuple[str, ...]:
        """One note a clamped column, each also logged as a warning, for `Workload.notes`."""
        notes = []
        for column, count in self.count.items():
            note = (
                f"{count} row(s) had {column} == 0 and were clamped to 1 "
                f"(first at line {self.first_line[column]})"
            )
            _LOG.warning("%s: %s", path, note)
            notes.append(note)
        return tuple(notes)


def check_count(value: int, path: str, line: int, column: str) -> int:
    """``value`` when it is a token count from 0 to the per-request limit, else the error naming the row."""
    if value < 0:
        raise row_error(
            path, line, column, f"{value} is negative", "token counts must be 0 or more; correct the row"
        )
    if value > MAX_TOKENS:
        raise row_error(
            path,
            line,
            column,
            f"{value} is above the limit of {MAX_TOKENS:,} tokens a request",
            f"correct the row (limits: {LIMITS_DOC})",
        )
    return value


def trace_file(path: object) -> Path:
    """The trace file at ``path``, once it is known to be a regular file, noted as an input of the run
    (`pdcore.inputs.input_file`: a missing path, a directory, a FIFO or a device is refused, named)."""
    return input_file(path, "trace file", "pass the path of a trace file", error=TraceFormatError)
