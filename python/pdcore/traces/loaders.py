"""Readers for public LLM request traces.

Two formats are supported, dispatched on the file suffix by `load_trace`:

- ``.csv``: the Azure LLM inference trace 2023 (``TIMESTAMP,ContextTokens,GeneratedTokens``; timestamps
  such as ``2023-11-16 18:15:46.6805900``, of which the first 26 characters are parsed with
  ``%Y-%m-%d %H:%M:%S.%f``). Extra columns are ignored and column order is taken from the header.
- ``.jsonl`` / ``.json``: the Mooncake trace, one JSON object per line with ``timestamp`` (milliseconds),
  ``input_length``, ``output_length`` and, optionally, ``hash_ids`` (a list of 512-token prefix-block
  ids, from which follow-up turns are found: `pdcore.traces.conversations`).
- ``.jsonl`` whose first record has ``chat_id``: Qwen-Bailian-style conversation records (`load_bailian`):
  ``chat_id``, ``parent_chat_id`` (-1 for a first turn), ``timestamp`` (seconds), ``input_length``,
  ``output_length``, ``turn`` and, optionally, ``hash_ids``.

Every malformed row (missing column, non-numeric or negative value, decreasing timestamp, bad JSON) raises
`TraceFormatError` naming the file, the 1-based line number, the column and the fix. Blank lines are
skipped. Requests must already be in arrival order; equal timestamps are allowed.

Zero-token rows: a row whose prompt or output length is 0 is kept and the 0 is clamped to 1, so the
arrival process is unchanged and every request still costs one token. Each clamp is counted, logged at
WARNING level on the ``pdcore.traces`` logger and recorded in `Workload.notes`; nothing is dropped
silently.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
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
from pdcore.traces.conversations import (
    conversation_from_parents,
    derive_blocks,
    flatten_blocks,
    follow_ups_from_blocks,
    shared_from_blocks,
)
from pdcore.traces.workload import Workload

__all__ = [
    "AZURE_COLUMNS",
    "BAILIAN_BLOCK_TOKENS",
    "BAILIAN_KEYS",
    "MOONCAKE_BLOCK_TOKENS",
    "MOONCAKE_KEYS",
    "load_azure",
    "load_bailian",
    "load_mooncake",
    "load_trace",
]

_LOG = logging.getLogger("pdcore.traces")

AZURE_COLUMNS: tuple[str, str, str] = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
"""Columns an Azure 2023 trace header must contain."""

MOONCAKE_KEYS: tuple[str, str, str] = ("timestamp", "input_length", "output_length")
"""Keys every Mooncake JSON line must contain."""

MOONCAKE_BLOCK_TOKENS = 512
"""Tokens per ``hash_ids`` block of the Mooncake trace."""

BAILIAN_KEYS: tuple[str, ...] = (
    "chat_id",
    "parent_chat_id",
    "timestamp",
    "input_length",
    "output_length",
    "turn",
)
"""Keys every Qwen-Bailian-style JSON line must contain (``hash_ids`` is optional)."""

BAILIAN_BLOCK_TOKENS = 16
"""Tokens per ``hash_ids`` block of a Qwen-Bailian-style trace unless the caller gives another size."""

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
_MAX_JSON_MS = MAX_TRACE_SPAN_S * 1000.0


def _error(path: str, line: int, column: str, problem: str, fix: str) -> TraceFormatError:
    return TraceFormatError(f"{path}, line {line}, column {column!r}: {problem}; fix: {fix}")


class _ZeroClamps:
    """Counts token values of 0 clamped to 1, per column, and the first line each happened on."""

    def __init__(self) -> None:
        self.count: dict[str, int] = {}
        self.first_line: dict[str, int] = {}

    def clamp(self, value: int, column: str, line: int) -> int:
        if value != 0:
            return value
        if column not in self.count:
            self.count[column] = 0
            self.first_line[column] = line
        self.count[column] += 1
        return 1

    def notes(self, path: str) -> tuple[str, ...]:
        notes = []
        for column, count in self.count.items():
            note = (
                f"{count} row(s) had {column} == 0 and were clamped to 1 "
                f"(first at line {self.first_line[column]})"
            )
            _LOG.warning("%s: %s", path, note)
            notes.append(note)
        return tuple(notes)


def _check_count(value: int, path: str, line: int, column: str) -> int:
    if value < 0:
        raise _error(
            path, line, column, f"{value} is negative", "token counts must be 0 or more; correct the row"
        )
    if value > MAX_TOKENS:
        raise _error(
            path,
            line,
            column,
            f"{value} is above the limit of {MAX_TOKENS:,} tokens a request",
            f"correct the row (limits: {LIMITS_DOC})",
        )
    return value


def _parse_count(text: str, path: str, line: int, column: str) -> int:
    stripped = text.strip()
    digits = stripped[1:] if stripped[:1] in "+-" else stripped
    if not (digits.isascii() and digits.isdigit()):
        raise _error(
            path, line, column, f"{text!r} is not a whole number", "write the token count as an integer"
        )
    return _check_count(int(stripped), path, line, column)


def _parse_azure_time(text: str, path: str, line: int) -> tuple[int, bool]:
    """The timestamp in nanoseconds since 1970 (UTC when an offset is given) and whether it had one."""
    match = _AZURE_TIME.fullmatch(text.strip())
    if match is None:
        raise _error(path, line, "TIMESTAMP", f"{text!r} is not a timestamp", _TIME_FIX)
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    try:
        day_ordinal = date(year, month, day).toordinal()
    except ValueError as exc:
        raise _error(path, line, "TIMESTAMP", f"{text!r}: {exc}", _TIME_FIX) from None
    if hour > 23 or minute > 59 or second > 59:  # clock fields
        raise _error(path, line, "TIMESTAMP", f"{text!r} has no such time of day", _TIME_FIX)
    fraction = match.group(7) or ""
    stamp = ((day_ordinal - _EPOCH_ORDINAL) * 86400 + hour * 3600 + minute * 60 + second) * _NS
    stamp += int(fraction.ljust(9, "0")) if fraction else 0
    offset = match.group(8)
    if offset and offset != "Z":
        hours, minutes = int(offset[1:3]), int(offset[-2:])
        if hours > 23 or minutes > 59:  # clock fields
            raise _error(path, line, "TIMESTAMP", f"{text!r} has an offset out of range", _TIME_FIX)
        sign = 1 if offset[0] == "+" else -1
        stamp -= sign * (hours * 3600 + minutes * 60) * _NS
    return stamp, offset is not None


def _check_exists(path: Path) -> None:
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise TraceFormatError(f"trace file {str(path)!r} {what}; fix: pass the path of a trace file")


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
            raise _error(
                name,
                line,
                missing,
                f"the row has {len(row)} field(s) but the header has {width}",
                f"give every row a value for each of {','.join(columns)}",
            )
        if len(row) > width:
            raise _error(
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
            raise _error(
                name,
                line,
                "TIMESTAMP",
                f"line {with_} has a UTC offset but line {without} has none, so their order is unknown",
                "give every timestamp an offset (e.g. +00:00), or none",
            )
        if stamps and stamp < stamps[-1]:
            raise _error(
                name,
                line,
                "TIMESTAMP",
                f"{row[i_time].strip()!r} is earlier than the timestamp on line {previous_line}",
                "sort the rows by TIMESTAMP",
            )
        if stamps and (stamp - stamps[0]) > MAX_TRACE_SPAN_S * _NS:
            raise _error(
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


def _clamped(values: npt.NDArray[np.int64], lines: Any, column: str, clamps: _ZeroClamps) -> Any:
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
    file = Path(path)
    name = str(path)
    _check_exists(file)
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
            raise _error(
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
    clamps = _ZeroClamps()
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
    )


def _data_lines(file: Path) -> list[int]:
    """The 1-based line of each data row (only needed to name the first clamped row)."""
    with file.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader)
        return [reader.line_num for row in reader if row and not (len(row) == 1 and not row[0].strip())]


def _json_count(record: dict[str, Any], key: str, path: str, line: int) -> int:
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _error(path, line, key, f"{value!r} is not a number", f"write {key} as an integer")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise _error(path, line, key, f"{value!r} is not a whole number", f"write {key} as an integer")
        value = int(value)
    return _check_count(value, path, line, key)


def _json_timestamp(record: dict[str, Any], path: str, line: int) -> float:
    value = record["timestamp"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _error(
            path,
            line,
            "timestamp",
            f"{value!r} is not a number",
            "write timestamp as milliseconds since the start of the trace",
        )
    if value < 0:
        raise _error(
            path,
            line,
            "timestamp",
            f"{value} is negative",
            "timestamps are milliseconds since the start of the trace and cannot be negative",
        )
    if value > _MAX_JSON_MS:
        raise _error(
            path,
            line,
            "timestamp",
            f"{value} ms is beyond the limit of {MAX_TRACE_SPAN_S:,.0f} s",
            f"write timestamp in milliseconds from the start of the trace (limits: {LIMITS_DOC})",
        )
    return float(value)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for key, value in pairs:
        if key in record:
            raise _DuplicateKeyError(key)
        record[key] = value
    return record


class _DuplicateKeyError(ValueError):
    """A JSON object names a key twice (json keeps the last silently)."""


def _json_object(name: str, line: int, text: str, shape: str) -> dict[str, Any]:
    """One line of a JSON Lines trace as an object, or the error naming the line and the fix (``shape``:
    how to write a request)."""
    try:
        record = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKeyError as exc:
        raise _error(name, line, str(exc), "the key appears twice", "write each key once per line") from None
    except json.JSONDecodeError as exc:
        raise _error(
            name,
            line,
            f"char {exc.colno}",
            f"invalid JSON ({exc.msg})",
            "each line must be one complete JSON object",
        ) from None
    if not isinstance(record, dict):
        raise _error(name, line, "-", f"the line holds a JSON {type(record).__name__}, not an object", shape)
    return record


def load_mooncake(path: str | os.PathLike[str]) -> Workload:
    """Loads a Mooncake trace: JSON Lines with ``timestamp`` (ms), ``input_length``, ``output_length``.

    Args:
        path: JSON Lines file, one request object per line. ``hash_ids``, when present, must be a list of
            non-negative integers (512-token prefix blocks): they become the cloud prefix blocks, and
            follow-up turns are found from them (`pdcore.traces.conversations`); a line without them has
            no blocks and opens a session.

    Returns:
        The workload, named after the file stem, with arrival times in seconds relative to the first line.
        ``input_length`` becomes ``prompt_tokens`` and ``output_length`` ``output_tokens``; zeros are
        clamped to 1 and recorded in ``notes``.

    Raises:
        TraceFormatError: The file is missing, unreadable, a JSON array rather than JSON Lines, empty, or a
            line is not a JSON object, lacks a key, holds a non-numeric or negative value, or has a
            timestamp earlier than the line before it.
    """
    file = Path(path)
    name = str(path)
    _check_exists(file)
    stamps: list[float] = []
    prompts: list[int] = []
    outputs: list[int] = []
    blocks: list[list[int]] = []
    with_blocks = False
    clamps = _ZeroClamps()
    previous_line = 0
    shape = 'write each request as {"timestamp": ..., "input_length": ..., "output_length": ...}'
    for line, record in _json_lines(file, name, shape):
        for key in MOONCAKE_KEYS:
            if key not in record:
                raise _error(
                    name,
                    line,
                    key,
                    "the key is missing",
                    f"every line needs {', '.join(MOONCAKE_KEYS)}",
                )
        stamp = _json_timestamp(record, name, line)
        if stamps and stamp < stamps[-1]:
            raise _error(
                name,
                line,
                "timestamp",
                f"{record['timestamp']!r} is earlier than the timestamp on line {previous_line}",
                "sort the lines by timestamp",
            )
        prompt = _json_count(record, "input_length", name, line)
        output = _json_count(record, "output_length", name, line)
        hash_ids = record.get("hash_ids")
        if hash_ids is not None and not (
            isinstance(hash_ids, list) and all(type(block) is int and block >= 0 for block in hash_ids)
        ):
            raise _error(
                name,
                line,
                "hash_ids",
                "must be a list of non-negative integers",
                "write hash_ids as e.g. [0, 1, 2] or leave the key out",
            )
        blocks.append(hash_ids or [])
        with_blocks = with_blocks or bool(hash_ids)
        stamps.append(stamp)
        prompts.append(clamps.clamp(prompt, "input_length", line))
        outputs.append(clamps.clamp(output, "output_length", line))
        previous_line = line
    if not stamps:
        raise TraceFormatError(
            f"{name}: the file has no request lines; fix: pass a trace with at least one request"
        )
    millis = np.asarray(stamps, dtype=np.float64)
    prompt_array = np.asarray(prompts, dtype=np.int64)
    output_array = np.asarray(outputs, dtype=np.int64)
    columns: dict[str, Any] = {}
    if with_blocks:
        parent, shared = follow_ups_from_blocks(blocks, prompt_array, output_array, MOONCAKE_BLOCK_TOKENS)
        session, turn = conversation_from_parents(parent)
        offsets, ids = flatten_blocks(blocks)
        columns = {
            "session": session,
            "turn": turn,
            "parent": parent,
            "shared_prefix_tokens": shared,
            "block_offsets": offsets,
            "block_ids": ids,
            "block_tokens": MOONCAKE_BLOCK_TOKENS,
        }
    return Workload(
        name=file.stem,
        arrival_s=(millis - millis[0]) / 1000.0,
        prompt_tokens=prompt_array,
        output_tokens=output_array,
        source=name,
        notes=clamps.notes(name),
        **columns,
    )


def _json_lines(file: Path, name: str, shape: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """The non-blank lines of a JSON Lines file as objects, with their 1-based line numbers (``shape``: how
    to write a request, for the error on a line that is not an object)."""
    first = True
    try:
        with file.open(encoding="utf-8-sig") as handle:
            for line, raw in enumerate(handle, start=1):
                text = raw.strip()
                if not text:
                    continue
                if first and text.startswith("["):
                    raise TraceFormatError(
                        f"{name}, line {line}: the file is a JSON array; fix: write one request object per "
                        f"line (JSON Lines), e.g. `jq -c '.[]' {file.name} > {file.stem}.jsonl`"
                    )
                first = False
                yield line, _json_object(name, line, text, shape)
    except UnicodeDecodeError as exc:
        raise TraceFormatError(
            f"{name}: byte {exc.start} is not valid UTF-8; fix: save the trace as UTF-8 text"
        ) from None


def _json_id(record: dict[str, Any], key: str, path: str, line: int, minimum: int) -> int:
    value = record[key]
    if type(value) is not int or value < minimum:
        raise _error(
            path, line, key, f"{value!r} is not a whole number >= {minimum}", f"write {key} as an integer"
        )
    return int(value)


def load_bailian(path: str | os.PathLike[str], *, block_tokens: int = BAILIAN_BLOCK_TOKENS) -> Workload:
    """Loads Qwen-Bailian-style conversation records: one JSON object per line with ``chat_id``,
    ``parent_chat_id`` (-1 for a first turn), ``timestamp`` (seconds), ``input_length``, ``output_length``,
    ``turn`` and, optionally, ``hash_ids`` (prefix-block ids of ``block_tokens`` tokens each).

    A follow-up's parent is its ``parent_chat_id``, which must be an earlier line's ``chat_id``, and its
    ``turn`` must be the parent's plus one. The shared prefix comes from ``hash_ids`` when given, else it is
    the parent's whole context (`pdcore.traces.conversations`); cloud prefix blocks are derived when the
    records have none.

    Raises:
        TraceFormatError: The file is missing or malformed; the message names the line, the key and the fix
            (an unknown or later parent, a turn that does not follow its parent's, a repeated ``chat_id``).
    """
    file = Path(path)
    name = str(path)
    _check_exists(file)
    if (
        isinstance(block_tokens, bool)
        or not isinstance(block_tokens, int)
        or not 1 <= block_tokens <= MAX_TOKENS
    ):
        raise TraceFormatError(
            f"block_tokens = {block_tokens!r}; fix: give the tokens of one hash block, >= 1"
        )
    stamps: list[float] = []
    prompts: list[int] = []
    outputs: list[int] = []
    parents: list[int] = []
    turns: list[int] = []
    blocks: list[list[int]] = []
    index_of: dict[int, int] = {}
    clamps = _ZeroClamps()
    previous_line = 0
    for line, record in _json_lines(file, name, "write each request as one JSON object"):
        for key in BAILIAN_KEYS:
            if key not in record:
                raise _error(
                    name, line, key, "the key is missing", f"every line needs {', '.join(BAILIAN_KEYS)}"
                )
        stamp = record["timestamp"]
        if (
            isinstance(stamp, bool)
            or not isinstance(stamp, (int, float))
            or not math.isfinite(stamp)
            or stamp < 0
        ):
            raise _error(
                name,
                line,
                "timestamp",
                f"{stamp!r} is not a time",
                "write seconds from the trace start, >= 0",
            )
        if stamp > MAX_TRACE_SPAN_S:
            raise _error(
                name,
                line,
                "timestamp",
                f"{stamp} s is beyond the limit",
                f"split the trace (limits: {LIMITS_DOC})",
            )
        if stamps and stamp < stamps[-1]:
            raise _error(
                name,
                line,
                "timestamp",
                f"{stamp!r} is earlier than the timestamp on line {previous_line}",
                "sort the lines by timestamp",
            )
        chat = _json_id(record, "chat_id", name, line, 0)
        if chat in index_of:
            raise _error(
                name,
                line,
                "chat_id",
                f"{chat} appears on an earlier line",
                "give every request its own chat_id",
            )
        parent_chat = _json_id(record, "parent_chat_id", name, line, -1)
        turn = _json_id(record, "turn", name, line, 1)
        parent = -1
        if parent_chat >= 0:
            if parent_chat not in index_of:
                raise _error(
                    name,
                    line,
                    "parent_chat_id",
                    f"{parent_chat} is not the chat_id of an earlier line",
                    "point a follow-up at its previous turn, which must come first, or write -1",
                )
            parent = index_of[parent_chat]
            if turn != turns[parent] + 1:
                raise _error(
                    name,
                    line,
                    "turn",
                    f"{turn} does not follow its parent's turn {turns[parent]}",
                    "a follow-up's turn is its parent's plus one",
                )
        elif turn != 1:
            raise _error(
                name, line, "turn", f"{turn} without a parent", "a request with parent_chat_id -1 is turn 1"
            )
        hash_ids = record.get("hash_ids")
        if hash_ids is not None:
            if not (isinstance(hash_ids, list) and all(type(b) is int and b >= 0 for b in hash_ids)):
                raise _error(
                    name,
                    line,
                    "hash_ids",
                    "must be a list of non-negative integers",
                    "write e.g. [0, 1, 2] or leave it out",
                )
            if len(blocks) != len(stamps):
                raise _error(
                    name,
                    line,
                    "hash_ids",
                    "is given here but not on every earlier line",
                    "give it on every line or none",
                )
            blocks.append(hash_ids)
        elif blocks:
            raise _error(
                name,
                line,
                "hash_ids",
                "is missing but given on earlier lines",
                "give it on every line or none",
            )
        index_of[chat] = len(stamps)
        stamps.append(float(stamp))
        prompts.append(clamps.clamp(_json_count(record, "input_length", name, line), "input_length", line))
        outputs.append(clamps.clamp(_json_count(record, "output_length", name, line), "output_length", line))
        parents.append(parent)
        turns.append(turn)
        previous_line = line
    if not stamps:
        raise TraceFormatError(
            f"{name}: the file has no request lines; fix: pass a trace with at least one request"
        )
    prompt_array = np.asarray(prompts, dtype=np.int64)
    output_array = np.asarray(outputs, dtype=np.int64)
    parent_array = np.asarray(parents, dtype=np.int64)
    session, _ = conversation_from_parents(parent_array)
    if blocks:
        shared = shared_from_blocks(blocks, parent_array, prompt_array, output_array, block_tokens)
        offsets, ids = flatten_blocks(blocks)
    else:
        has = parent_array >= 0
        shared = np.zeros(len(stamps), dtype=np.int64)
        p = parent_array[has]
        shared[has] = np.minimum(prompt_array[has], prompt_array[p] + output_array[p])
        offsets, ids = derive_blocks(prompt_array, parent_array, shared, block_tokens)
    seconds = np.asarray(stamps, dtype=np.float64)
    return Workload(
        name=file.stem,
        arrival_s=seconds - seconds[0],
        prompt_tokens=prompt_array,
        output_tokens=output_array,
        source=name,
        notes=clamps.notes(name),
        session=session,
        turn=np.asarray(turns, dtype=np.int64),
        parent=parent_array,
        shared_prefix_tokens=shared,
        block_offsets=offsets,
        block_ids=ids,
        block_tokens=block_tokens,
    )


def _first_record_keys(file: Path) -> set[str]:
    """The keys of the first JSON object in a JSON Lines file (empty when it cannot be read as one)."""
    try:
        with file.open(encoding="utf-8-sig") as handle:
            for raw in handle:
                if raw.strip():
                    record = json.loads(raw)
                    return set(record) if isinstance(record, dict) else set()
    except (UnicodeDecodeError, json.JSONDecodeError):
        return set()
    return set()


def load_trace(path: str | os.PathLike[str]) -> Workload:
    """Loads a trace, choosing the reader from the file suffix.

    ``.csv`` is read by `load_azure`; ``.jsonl`` and ``.json`` by `load_bailian` when the first record has
    a ``chat_id``, else by `load_mooncake`. Suffixes are matched case-insensitively.

    Args:
        path: The trace file.

    Returns:
        The workload.

    Raises:
        TraceFormatError: The file is missing, its suffix is not one of the above, or its contents are
            malformed (see the readers).
    """
    file = Path(path)
    _check_exists(file)
    suffix = file.suffix.lower()
    if suffix == ".csv":
        return load_azure(path)
    if suffix in {".jsonl", ".json"}:
        if "chat_id" in _first_record_keys(file):
            return load_bailian(path)
        return load_mooncake(path)
    raise TraceFormatError(
        f"trace file {str(path)!r} has suffix {file.suffix!r}, which names no known format; fix: use .csv "
        "for the Azure LLM inference trace or .jsonl for the Mooncake trace (rename the file if needed)"
    )
