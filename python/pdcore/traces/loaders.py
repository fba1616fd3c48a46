"""Readers for public LLM request traces.

Two formats are supported, dispatched on the file suffix by `load_trace`:

- ``.csv``: the Azure LLM inference trace 2023 (``TIMESTAMP,ContextTokens,GeneratedTokens``; timestamps
  such as ``2023-11-16 18:15:46.6805900``, of which the first 26 characters are parsed with
  ``%Y-%m-%d %H:%M:%S.%f``). Extra columns are ignored and column order is taken from the header.
- ``.jsonl`` / ``.json``: the Mooncake trace, one JSON object per line with ``timestamp`` (milliseconds),
  ``input_length``, ``output_length`` and, optionally, ``hash_ids`` (a list of prefix-block ids, checked
  but not kept).

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
import json
import logging
import math
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from pdcore.exceptions import TraceFormatError
from pdcore.traces.workload import Workload

__all__ = ["AZURE_COLUMNS", "MOONCAKE_KEYS", "load_azure", "load_mooncake", "load_trace"]

_LOG = logging.getLogger("pdcore.traces")

AZURE_COLUMNS: tuple[str, str, str] = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
"""Columns an Azure 2023 trace header must contain."""

MOONCAKE_KEYS: tuple[str, str, str] = ("timestamp", "input_length", "output_length")
"""Keys every Mooncake JSON line must contain."""

_AZURE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
_AZURE_TIME_FORMAT_WHOLE_SECONDS = "%Y-%m-%d %H:%M:%S"
_AZURE_TIME_CHARS = 26
_MICROSECOND = timedelta(microseconds=1)


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


def _parse_count(text: str, path: str, line: int, column: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _error(
            path, line, column, f"{text!r} is not a whole number", "write the token count as an integer"
        ) from None
    if value < 0:
        raise _error(
            path, line, column, f"{value} is negative", "token counts must be 0 or more; correct the row"
        )
    return value


def _parse_azure_time(text: str, path: str, line: int) -> datetime:
    head = text.strip()[:_AZURE_TIME_CHARS]
    try:
        return datetime.strptime(head, _AZURE_TIME_FORMAT)
    except ValueError:
        pass
    try:
        return datetime.strptime(head, _AZURE_TIME_FORMAT_WHOLE_SECONDS)
    except ValueError:
        raise _error(
            path,
            line,
            "TIMESTAMP",
            f"{text!r} is not a timestamp",
            "use the form 2023-11-16 18:15:46.6805900 (YYYY-MM-DD HH:MM:SS.fraction)",
        ) from None


def _check_exists(path: Path) -> None:
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise TraceFormatError(f"trace file {str(path)!r} {what}; fix: pass the path of a trace file")


def load_azure(path: str | os.PathLike[str]) -> Workload:
    """Loads an Azure LLM inference trace (2023 format) from a CSV file.

    Args:
        path: CSV file with a header containing ``TIMESTAMP``, ``ContextTokens`` and ``GeneratedTokens``.

    Returns:
        The workload, named after the file stem, with arrival times relative to the first row.
        ``ContextTokens`` becomes ``prompt_tokens`` and ``GeneratedTokens`` ``output_tokens``; zeros are
        clamped to 1 and recorded in ``notes``.

    Raises:
        TraceFormatError: The file is missing, unreadable, has no header or no data rows, its header lacks
            a column, or a row is short, non-numeric, negative, or earlier than the row before it.
    """
    file = Path(path)
    name = str(path)
    _check_exists(file)
    times: list[int] = []
    prompts: list[int] = []
    outputs: list[int] = []
    clamps = _ZeroClamps()
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
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
            i_time, i_prompt, i_output = (columns.index(column) for column in AZURE_COLUMNS)
            width = len(columns)
            start: datetime | None = None
            previous: datetime | None = None
            previous_line = 1
            for row in reader:
                line = reader.line_num
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
                stamp = _parse_azure_time(row[i_time], name, line)
                if previous is not None and stamp < previous:
                    raise _error(
                        name,
                        line,
                        "TIMESTAMP",
                        f"{row[i_time].strip()!r} is earlier than the timestamp on line {previous_line}",
                        "sort the rows by TIMESTAMP",
                    )
                if start is None:
                    start = stamp
                previous = stamp
                previous_line = line
                times.append((stamp - start) // _MICROSECOND)
                prompt = _parse_count(row[i_prompt], name, line, "ContextTokens")
                output = _parse_count(row[i_output], name, line, "GeneratedTokens")
                prompts.append(clamps.clamp(prompt, "ContextTokens", line))
                outputs.append(clamps.clamp(output, "GeneratedTokens", line))
    except UnicodeDecodeError as exc:
        raise TraceFormatError(
            f"{name}: byte {exc.start} is not valid UTF-8; fix: save the trace as UTF-8 text"
        ) from None
    except csv.Error as exc:
        raise TraceFormatError(f"{name}: malformed CSV ({exc}); fix: check quoting in the file") from None
    if not times:
        raise TraceFormatError(
            f"{name}: the file has a header but no data rows; fix: pass a trace with at least one request"
        )
    return Workload(
        name=file.stem,
        arrival_s=np.asarray(times, dtype=np.float64) / 1e6,
        prompt_tokens=np.asarray(prompts, dtype=np.int64),
        output_tokens=np.asarray(outputs, dtype=np.int64),
        source=name,
        notes=clamps.notes(name),
    )


def _json_count(record: dict[str, Any], key: str, path: str, line: int) -> int:
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _error(path, line, key, f"{value!r} is not a number", f"write {key} as an integer")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise _error(path, line, key, f"{value!r} is not a whole number", f"write {key} as an integer")
        value = int(value)
    if value < 0:
        raise _error(path, line, key, f"{value} is negative", f"{key} must be 0 or more; correct the line")
    return value


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
    return float(value)


def load_mooncake(path: str | os.PathLike[str]) -> Workload:
    """Loads a Mooncake trace: JSON Lines with ``timestamp`` (ms), ``input_length``, ``output_length``.

    Args:
        path: JSON Lines file, one request object per line. ``hash_ids``, when present, must be a list of
            non-negative integers; it is validated but not stored.

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
    clamps = _ZeroClamps()
    previous_line = 0
    try:
        with file.open(encoding="utf-8-sig") as handle:
            for line, raw in enumerate(handle, start=1):
                text = raw.strip()
                if not text:
                    continue
                if not stamps and text.startswith("["):
                    raise TraceFormatError(
                        f"{name}, line {line}: the file is a JSON array; fix: write one request object per "
                        f"line (JSON Lines), e.g. `jq -c '.[]' {file.name} > {file.stem}.jsonl`"
                    )
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise _error(
                        name,
                        line,
                        f"char {exc.colno}",
                        f"invalid JSON ({exc.msg})",
                        "each line must be one complete JSON object",
                    ) from None
                if not isinstance(record, dict):
                    raise _error(
                        name,
                        line,
                        "-",
                        f"the line holds a JSON {type(record).__name__}, not an object",
                        'write each request as {"timestamp": ..., "input_length": ..., "output_length": ...}',
                    )
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
                    isinstance(hash_ids, list)
                    and all(type(block) is int and block >= 0 for block in hash_ids)
                ):
                    raise _error(
                        name,
                        line,
                        "hash_ids",
                        "must be a list of non-negative integers",
                        "write hash_ids as e.g. [0, 1, 2] or leave the key out",
                    )
                stamps.append(stamp)
                prompts.append(clamps.clamp(prompt, "input_length", line))
                outputs.append(clamps.clamp(output, "output_length", line))
                previous_line = line
    except UnicodeDecodeError as exc:
        raise TraceFormatError(
            f"{name}: byte {exc.start} is not valid UTF-8; fix: save the trace as UTF-8 text"
        ) from None
    if not stamps:
        raise TraceFormatError(
            f"{name}: the file has no request lines; fix: pass a trace with at least one request"
        )
    millis = np.asarray(stamps, dtype=np.float64)
    return Workload(
        name=file.stem,
        arrival_s=(millis - millis[0]) / 1000.0,
        prompt_tokens=np.asarray(prompts, dtype=np.int64),
        output_tokens=np.asarray(outputs, dtype=np.int64),
        source=name,
        notes=clamps.notes(name),
    )


def load_trace(path: str | os.PathLike[str]) -> Workload:
    """Loads a trace, choosing the reader from the file suffix.

    ``.csv`` is read by `load_azure`; ``.jsonl`` and ``.json`` by `load_mooncake`. Suffixes are matched
    case-insensitively.

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
        return load_mooncake(path)
    raise TraceFormatError(
        f"trace file {str(path)!r} has suffix {file.suffix!r}, which names no known format; fix: use .csv "
        "for the Azure LLM inference trace or .jsonl for the Mooncake trace (rename the file if needed)"
    )
