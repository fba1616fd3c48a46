"""The JSON Lines reader every JSON trace format shares: one request object a line, checked at the edge.

`json_lines` yields the non-blank lines as objects with their 1-based line numbers; a file that is a JSON
array, a line that is not valid JSON, not an object, names a key twice, nests deeper than
`pdcore.nesting.MAX_NESTING` levels or holds a number too long to read, and text that is not UTF-8 are
refused with `TraceFormatError` naming the line and the fix. The field readers (`json_count`, `json_time`,
`json_id`, `json_blocks`) name the line and the key of a bad value, and check every number for the range
its column can hold before it reaches numpy or the core: token counts up to `pdcore.limits.MAX_TOKENS`,
times up to the trace span limit, ids within a signed 64-bit integer and prefix-block ids within an
unsigned one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pdcore.exceptions import TraceFormatError
from pdcore.limits import LIMITS_DOC
from pdcore.nesting import check_nesting
from pdcore.traces.checks import check_count, row_error

__all__ = [
    "MAX_BLOCK_ID",
    "MAX_ID",
    "first_record_keys",
    "json_blocks",
    "json_count",
    "json_id",
    "json_in_order",
    "json_keys",
    "json_lines",
    "json_time",
    "no_requests",
]

MAX_ID = 2**63 - 1
"""The largest request id or turn a trace may give: a signed 64-bit integer, as the workload stores it."""

MAX_BLOCK_ID = 2**64 - 1
"""The largest prefix-block id (``hash_ids``): an unsigned 64-bit integer, as the core hashes it."""

_FLAT = "write one request object per line, its values numbers or flat lists of numbers"


def json_lines(file: Path, name: str, shape: str) -> Iterator[tuple[int, dict[str, Any]]]:
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


def _json_object(name: str, line: int, text: str, shape: str) -> dict[str, Any]:
    """One line of a JSON Lines trace as an object, or the error naming the line and the fix (``shape``:
    how to write a request)."""
    check_nesting(text, f"{name}, line {line}", "json", fix=_FLAT, error=TraceFormatError)
    try:
        record = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKeyError as exc:
        raise row_error(
            name, line, str(exc), "the key appears twice", "write each key once per line"
        ) from None
    except json.JSONDecodeError as exc:
        raise row_error(
            name,
            line,
            f"char {exc.colno}",
            f"invalid JSON ({exc.msg})",
            "each line must be one complete JSON object",
        ) from None
    except ValueError:  # an integer of more digits than int() reads (sys.get_int_max_str_digits)
        raise row_error(
            name, line, "-", "a number has too many digits to read", f"{_FLAT} of at most 20 digits"
        ) from None
    if not isinstance(record, dict):
        raise row_error(
            name, line, "-", f"the line holds a JSON {type(record).__name__}, not an object", shape
        )
    return record


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict, refusing a key named twice."""
    record: dict[str, Any] = {}
    for key, value in pairs:
        if key in record:
            raise _DuplicateKeyError(key)
        record[key] = value
    return record


class _DuplicateKeyError(ValueError):
    """A JSON object names a key twice (json keeps the last silently)."""


def json_keys(record: dict[str, Any], keys: tuple[str, ...], path: str, line: int) -> None:
    """Refuses a line that lacks one of ``keys``, naming the first missing."""
    for key in keys:
        if key not in record:
            raise row_error(path, line, key, "the key is missing", f"every line needs {', '.join(keys)}")


def json_in_order(
    stamp: float, stamps: list[float], value: Any, path: str, line: int, previous_line: int
) -> None:
    """Refuses a timestamp earlier than the last one read (``value``: the timestamp as written; equal
    timestamps are allowed)."""
    if stamps and stamp < stamps[-1]:
        raise row_error(
            path,
            line,
            "timestamp",
            f"{value!r} is earlier than the timestamp on line {previous_line}",
            "sort the lines by timestamp",
        )


def json_count(record: dict[str, Any], key: str, path: str, line: int) -> int:
    """``record[key]`` as a token count: a whole number (an integral float too) within the limits."""
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise row_error(path, line, key, f"{value!r} is not a number", f"write {key} as an integer")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise row_error(path, line, key, f"{value!r} is not a whole number", f"write {key} as an integer")
        value = int(value)
    return check_count(value, path, line, key)


def json_id(record: dict[str, Any], key: str, path: str, line: int, minimum: int) -> int:
    """``record[key]`` as an identifier: an integer (not a float, not a bool) from ``minimum`` to `MAX_ID`."""
    value = record[key]
    if type(value) is not int or not minimum <= value <= MAX_ID:
        raise row_error(
            path,
            line,
            key,
            f"{_shown(value)} is not a whole number from {minimum} to {MAX_ID:,} (64 bits)",
            f"write {key} as an integer in that range",
        )
    return int(value)


def json_time(record: dict[str, Any], key: str, path: str, line: int, maximum: float, unit: str) -> float:
    """``record[key]`` as a time: a finite number from 0 to ``maximum`` (``unit``: how the format writes
    it, e.g. ``"milliseconds since the start of the trace"``)."""
    value = record[key]
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (isinstance(value, float) and math.isnan(value))
    ):
        raise row_error(path, line, key, f"{_shown(value)} is not a number", f"write {key} as {unit}")
    if value < 0:
        raise row_error(
            path, line, key, f"{_shown(value)} is negative", f"write {key} as {unit}; it cannot be negative"
        )
    if value > maximum:  # an int of any size compares exactly; inf is caught here too
        raise row_error(
            path,
            line,
            key,
            f"{_shown(value)} is beyond the limit of {maximum:,.0f}",
            f"write {key} as {unit}, or split the trace (limits: {LIMITS_DOC})",
        )
    return float(value)


def _shown(value: Any) -> str:
    """``value`` for a message: its repr, shortened when it is long (a 5,000-digit number)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def first_record_keys(file: Path) -> set[str]:
    """The keys of the first JSON object in a JSON Lines file (empty when it cannot be read as one; the
    reader chosen then names the problem)."""
    try:
        with file.open(encoding="utf-8-sig") as handle:
            for raw in handle:
                if raw.strip():
                    check_nesting(raw, str(file), "json")
                    record = json.loads(raw)
                    return set(record) if isinstance(record, dict) else set()
    except (UnicodeDecodeError, ValueError):  # ValueError: invalid JSON, too deep or too many digits
        return set()
    return set()


def json_blocks(record: dict[str, Any], path: str, line: int, fix: str) -> list[int] | None:
    """``record["hash_ids"]`` (prefix-block ids): None when the key is absent, else a list of integers
    from 0 to `MAX_BLOCK_ID`, or the error naming the line (``fix``: how the format writes them)."""
    hash_ids: list[int] | None = record.get("hash_ids")
    if hash_ids is None:
        return None
    if not (isinstance(hash_ids, list) and all(type(block) is int and block >= 0 for block in hash_ids)):
        raise row_error(path, line, "hash_ids", "must be a list of non-negative integers", fix)
    too_big = next((block for block in hash_ids if block > MAX_BLOCK_ID), None)
    if too_big is not None:
        raise row_error(
            path,
            line,
            "hash_ids",
            f"{_shown(too_big)} is beyond the largest block id, {MAX_BLOCK_ID:,} (64 bits)",
            fix,
        )
    return hash_ids


def no_requests(path: str) -> TraceFormatError:
    """The error for a JSON Lines file without a single request line."""
    return TraceFormatError(
        f"{path}: the file has no request lines; fix: pass a trace with at least one request"
    )
