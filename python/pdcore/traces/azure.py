"""The Azure LLM inference trace 2023 (``.csv``): ``TIMESTAMP,ContextTokens,GeneratedTokens``.

Timestamps such as ``2023-11-16 18:15:46.6805900``: a date, a time, up to 9 fractional digits and an
optional UTC offset. An optional ``device_class`` column names each request's device class
(`pdcore.traces.class_column`); other extra columns are ignored and column order is taken from the
header. Requests must already be in arrival order; equal timestamps are allowed. Every malformed row
raises `TraceFormatError` naming the file, the 1-based line number, the column and the fix; blank lines
are skipped.

Two readers give the same result: a whole-file reader (`_azure_fast`) converts a well-formed trace column
by column, and the row-by-row reference reader (`_azure_rows`) reads whatever it declines and names the
line of the first problem.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pdcore.exceptions import TraceFormatError
from pdcore.limits import LIMITS_DOC, MAX_TOKENS, MAX_TRACE_SPAN_S
from pdcore.traces.checks import ZeroClamps, check_count, row_error, trace_file
from pdcore.traces.class_column import CLASS_COLUMN, csv_classes
from pdcore.traces.workload import Workload

__all__ = ["AZURE_COLUMNS", "load_azure"]

AZURE_COLUMNS: tuple[str, str, str] = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
"""Columns an Azure 2023 trace header must contain."""

_AZURE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?"
)
"""An Azure timestamp: date, time, up to 9 fractional digits, an optional UTC offset (Z, +HH:MM, +HHMM)."""

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_NS = 1_000_000_000
_TIME_FIX = (
    "use the form 2023-11-16 18:15:46.6805900 (YYYY-MM-DD HH:MM:SS, up to 9 fractional digits, "
    "optionally a UTC offset such as +01:00 or Z)"
)
_TOKEN_DIGITS = len(str(MAX_TOKENS))


def _parse_count(text: str, path: str, line: int, column: str) -> int:
    stripped = text.strip()
    digits = stripped[1:] if stripped[:1] in "+-" else stripped
    if not (digits.isascii() and digits.isdigit()):
        raise row_error(
            path, line, column, f"{text!r} is not a whole number", "write the token count as an integer"
        )
    return check_count(int(stripped), path, line, column)


def _parse_azure_time(text: str, path: str, line: int) -> tuple[int, bool]:
    """The timestamp in nanoseconds since 1970 (UTC when an offset is given) and whether it had one."""
    match = _AZURE_TIME.fullmatch(text.strip())
    if match is None:
        raise row_error(path, line, "TIMESTAMP", f"{text!r} is not a timestamp", _TIME_FIX)
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    try:
        day_ordinal = date(year, month, day).toordinal()
    except ValueError as exc:
        raise row_error(path, line, "TIMESTAMP", f"{text!r}: {exc}", _TIME_FIX) from None
    if hour > 23 or minute > 59 or second > 59:  # clock fields
        raise row_error(path, line, "TIMESTAMP", f"{text!r} has no such time of day", _TIME_FIX)
    fraction = match.group(7) or ""
    stamp = ((day_ordinal - _EPOCH_ORDINAL) * 86400 + hour * 3600 + minute * 60 + second) * _NS
    stamp += int(fraction.ljust(9, "0")) if fraction else 0
    offset = match.group(8)
    if offset and offset != "Z":
        hours, minutes = int(offset[1:3]), int(offset[-2:])
        if hours > 23 or minutes > 59:  # clock fields
            raise row_error(path, line, "TIMESTAMP", f"{text!r} has an offset out of range", _TIME_FIX)
        sign = 1 if offset[0] == "+" else -1
        stamp -= sign * (hours * 3600 + minutes * 60) * _NS
    return stamp, offset is not None


class _AzureColumns:
    """The parsed columns of an Azure trace: nanosecond stamps and token counts, one entry per request."""

    def __init__(self, stamps: npt.NDArray[np.int64], prompts: npt.NDArray[np.int64], outputs: Any) -> None:
        self.stamps = stamps
        self.prompts = prompts
        self.outputs = outputs


def _azure_rows(name: str, columns: list[str], rows: Iterator[tuple[int, list[str]]]) -> _AzureColumns:
    """The reference reader: row by row, every check naming the line. Also explains what the fast path
    (`_azure_fast`) declines."""
    i_time, i_prompt, i_output = (columns.index(column) for column in AZURE_COLUMNS)
    width = len(columns)
    stamps: list[int] = []
    prompts: list[int] = []
    outputs: list[int] = []
    offsets: bool | None = None
    first_line = 0
    previous_line = 1
    for line, row in rows:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) < width:
            missing = columns[len(row)]
            raise row_error(
                name,
                line,
                missing,
                f"the row has {len(row)} field(s) but the header has {width}",
                f"give every row a value for each of {','.join(columns)}",
            )
        if len(row) > width:
            raise row_error(
                name,
                line,
                f"#{width + 1}",
                f"the row has {len(row)} fields but the header has {width} (trailing data)",
                "remove the extra fields, or name them in the header",
            )
        stamp, has_offset = _parse_azure_time(row[i_time], name, line)
        if offsets is None:
            offsets, first_line = has_offset, line
        elif has_offset != offsets:
            with_, without = (line, first_line) if has_offset else (first_line, line)
            raise row_error(
                name,
                line,
                "TIMESTAMP",
                f"line {with_} has a UTC offset but line {without} has none, so their order is unknown",
                "give every timestamp an offset (e.g. +00:00), or none",
            )
        if stamps and stamp < stamps[-1]:
            raise row_error(
                name,
                line,
                "TIMESTAMP",
                f"{row[i_time].strip()!r} is earlier than the timestamp on line {previous_line}",
                "sort the rows by TIMESTAMP",
            )
        if stamps and (stamp - stamps[0]) > MAX_TRACE_SPAN_S * _NS:
            raise row_error(
                name,
                line,
                "TIMESTAMP",
                f"{row[i_time].strip()!r} is more than {MAX_TRACE_SPAN_S:,.0f} s after line {first_line}",
                f"split the trace (limits: {LIMITS_DOC})",
            )
        stamps.append(stamp)
        previous_line = line
        prompts.append(_parse_count(row[i_prompt], name, line, "ContextTokens"))
        outputs.append(_parse_count(row[i_output], name, line, "GeneratedTokens"))
    return _AzureColumns(
        np.asarray(stamps, dtype=np.int64),
        np.asarray(prompts, dtype=np.int64),
        np.asarray(outputs, dtype=np.int64),
    )


def _fast_counts(cells: list[str]) -> npt.NDArray[np.int64] | None:
    """Plain digit strings within the token limit, converted at once; None when any cell needs a look."""
    joined = "".join(cells)
    if not (joined.isascii() and joined.isdigit()) or min(map(len, cells)) == 0:
        return None
    if max(map(len, cells)) > _TOKEN_DIGITS:
        return None
    counts = np.fromiter(map(int, cells), dtype=np.int64, count=len(cells))
    return None if bool((counts > MAX_TOKENS).any()) else counts


_DAYS_BEFORE_MONTH = np.array([0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334], dtype=np.int64)
_DAYS_IN_MONTH = np.array([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _days_since_epoch(
    year: npt.NDArray[np.int64], month: npt.NDArray[np.int64], day: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64] | None:
    """Proleptic Gregorian day numbers from 1970-01-01; None when a date does not exist."""
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    if bool(((month < 1) | (month > 12) | (year < 1)).any()):  # months of the year
        return None
    longest = _DAYS_IN_MONTH[month] - ((month == 2) & ~leap)  # February
    if bool(((day < 1) | (day > longest)).any()):
        return None
    before = year - 1
    ordinal = (
        before * 365
        + before // 4
        - before // 100
        + before // 400
        + _DAYS_BEFORE_MONTH[month]
        + ((month > 2) & leap)  # after February
        + day
    )
    days: npt.NDArray[np.int64] = ordinal - _EPOCH_ORDINAL
    return days


def _fast_stamps(cells: list[str]) -> npt.NDArray[np.int64] | None:
    """Timestamps that all share the first one's layout, converted column-wise; None otherwise."""
    first = _AZURE_TIME.fullmatch(cells[0])
    if first is None or first.group(8) is not None:
        return None
    width = len(cells[0])
    try:
        raw = "\n".join(cells).encode("ascii")
    except UnicodeEncodeError:
        return None
    if len(raw) != (width + 1) * len(cells) - 1:  # some cell is not as long as the first
        return None
    codes = np.frombuffer(raw + b"\n", dtype=np.uint8).reshape(len(cells), width + 1)[:, :width]
    template = np.frombuffer(cells[0].encode("ascii"), dtype=np.uint8)
    is_digit = (template >= ord("0")) & (template <= ord("9"))
    for position in range(width):
        column = codes[:, position]
        if is_digit[position]:
            if bool(((column < ord("0")) | (column > ord("9"))).any()):
                return None
        elif bool((column != template[position]).any()):
            return None

    def field(start: int, stop: int) -> npt.NDArray[np.int64]:
        value = np.zeros(len(cells), dtype=np.int64)
        for position in range(start, stop):
            value = value * 10 + (codes[:, position].astype(np.int64) - ord("0"))
        return value

    hour, minute, second = field(11, 13), field(14, 16), field(17, 19)
    if bool(((hour > 23) | (minute > 59) | (second > 59)).any()):  # clock fields
        return None
    days = _days_since_epoch(field(0, 4), field(5, 7), field(8, 10))
    if days is None:
        return None
    stamps = (days * 86400 + hour * 3600 + minute * 60 + second) * _NS
    fraction = first.group(7)
    if fraction:
        stamps += field(20, 20 + len(fraction)) * 10 ** (9 - len(fraction))
    return stamps


def _azure_fast(columns: list[str], body: str) -> _AzureColumns | None:
    """The whole file at once, for a well-formed trace; None sends it to the reference reader.

    A body without quotes, carriage returns or blank lines is split on commas and newlines in one go; when
    the columns are exactly the three of the trace, a misaligned row cannot go unseen (a timestamp would
    land among the token counts), so rows need not be split one by one.
    """
    width = len(columns)
    if not body.strip():
        return None
    plain = '"' not in body and "\r" not in body and "\n\n" not in body and not body.startswith("\n")
    if plain and width == len(AZURE_COLUMNS):
        lines = body.count("\n") + (0 if body.endswith("\n") else 1)
        cells = body.removesuffix("\n").replace("\n", ",").split(",")
        if len(cells) != width * lines:
            return None
        by_column = {column: cells[index::width] for index, column in enumerate(columns)}
    else:
        rows = [row for row in csv.reader(io.StringIO(body, newline="")) if row]
        if not rows or min(map(len, rows)) != width or max(map(len, rows)) != width:
            return None
        by_column = {column: [row[index] for row in rows] for index, column in enumerate(columns)}
    stamps = _fast_stamps(by_column["TIMESTAMP"])
    prompts = _fast_counts(by_column["ContextTokens"])
    outputs = _fast_counts(by_column["GeneratedTokens"])
    if stamps is None or prompts is None or outputs is None:
        return None
    if bool((np.diff(stamps) < 0).any()) or stamps[-1] - stamps[0] > MAX_TRACE_SPAN_S * _NS:
        return None
    return _AzureColumns(stamps, prompts, outputs)


def _clamped(values: npt.NDArray[np.int64], lines: Any, column: str, clamps: ZeroClamps) -> Any:
    zeros = np.flatnonzero(values == 0)
    if len(zeros):
        clamps.count[column] = len(zeros)
        clamps.first_line[column] = int(lines(int(zeros[0])))
        values = np.maximum(values, 1)
    return values


def load_azure(path: str | os.PathLike[str]) -> Workload:
    """Loads an Azure LLM inference trace (2023 format) from a CSV file.

    Timestamps are ``YYYY-MM-DD HH:MM:SS`` with up to 9 fractional digits (``2023-11-16 18:15:46.6805900``)
    and an optional UTC offset (``Z``, ``+01:00``, ``-0500``), which is honoured: rows are ordered by
    their UTC time. A trace must give every row an offset or none. Anything after the timestamp, a row
    with more fields than the header, or a token count that is not a plain integer is refused.

    Args:
        path: CSV file with a header containing ``TIMESTAMP``, ``ContextTokens`` and ``GeneratedTokens``.

    Returns:
        The workload, named after the file stem, with arrival times relative to the first row.
        ``ContextTokens`` becomes ``prompt_tokens`` and ``GeneratedTokens`` ``output_tokens``; zeros are
        clamped to 1 and recorded in ``notes``.

    Raises:
        TraceFormatError: The file is missing, unreadable, has no header or no data rows, its header lacks
            a column, or a row is short or long, non-numeric, negative or beyond the limits
            (`pdcore.limits`), or earlier than the row before it.
    """
    file = trace_file(path)
    name = str(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TraceFormatError(
            f"{name}: byte {exc.start} is not valid UTF-8; fix: save the trace as UTF-8 text"
        ) from None
    head, _, body = text.partition("\n")
    try:
        header = next(csv.reader([head]), None)
    except csv.Error as exc:
        raise TraceFormatError(f"{name}: malformed CSV ({exc}); fix: check quoting in the file") from None
    if not text or header is None:
        raise TraceFormatError(
            f"{name}, line 1: the file is empty; fix: the first line must be the header "
            f"{','.join(AZURE_COLUMNS)}"
        )
    columns = [cell.strip() for cell in header]
    for column in AZURE_COLUMNS:
        if column not in columns:
            raise row_error(
                name,
                1,
                column,
                f"the header {','.join(columns)!r} has no such column",
                f"the header must contain {','.join(AZURE_COLUMNS)}",
            )
    parsed = _azure_fast(columns, body)
    if parsed is None:
        # the reference reader names the line of the first problem; it also reads what the fast path
        # declines but is valid (offsets, blank or quoted lines, spaces around numbers)
        reader = csv.reader(io.StringIO(text, newline=""))
        next(reader)
        try:
            parsed = _azure_rows(name, columns, ((reader.line_num, row) for row in reader))
        except csv.Error as exc:
            raise TraceFormatError(
                f"{name}, line {reader.line_num}: malformed CSV ({exc}); fix: check quoting in the file"
            ) from None
    if not len(parsed.stamps):
        raise TraceFormatError(
            f"{name}: the file has a header but no data rows; fix: pass a trace with at least one request"
        )
    clamps = ZeroClamps()
    if parsed.prompts.min() == 0 or parsed.outputs.min() == 0:
        lines = _data_lines(file)
        parsed.prompts = _clamped(parsed.prompts, lines.__getitem__, "ContextTokens", clamps)
        parsed.outputs = _clamped(parsed.outputs, lines.__getitem__, "GeneratedTokens", clamps)
    return Workload(
        name=file.stem,
        arrival_s=(parsed.stamps - parsed.stamps[0]) / 1e9,
        prompt_tokens=parsed.prompts,
        output_tokens=parsed.outputs,
        source=name,
        notes=clamps.notes(name),
        **(csv_classes(file, name) if CLASS_COLUMN in columns else {}),
    )


def _data_lines(file: Path) -> list[int]:
    """The 1-based line of each data row (only needed to name the first clamped row)."""
    with file.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader)
        return [reader.line_num for row in reader if row and not (len(row) == 1 and not row[0].strip())]
