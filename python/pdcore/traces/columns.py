"""The checks of a `pdcore.traces.Workload`'s fields, made where a workload is built.

Every trace reader and generator builds a `Workload`, and so may a user of the Python API: its constructor
is the edge where the fields enter, and the checks here coerce each column to its dtype and refuse what it
cannot hold, naming the field, the first bad index and the fix. The invariants are listed in
`pdcore.traces.workload`; the conversation columns' meaning in `pdcore.traces.conversations`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from pdcore.exceptions import InvalidInputError
from pdcore.limits import LIMITS_DOC, MAX_TOKENS, MAX_TRACE_SPAN_S

__all__ = [
    "CONVERSATION_FIELDS",
    "TURN_BUCKETS",
    "arrival_column",
    "check_arrivals",
    "class_labels",
    "conversation_columns",
    "notes_field",
    "readonly",
    "text_field",
    "token_column",
    "turn_buckets",
]

IntArray = npt.NDArray[np.int64]

CONVERSATION_FIELDS = (
    "session",
    "turn",
    "parent",
    "shared_prefix_tokens",
    "block_offsets",
    "block_ids",
    "block_tokens",
)
"""A workload's conversation fields, in the order `Workload` declares them (`conversation_columns`)."""


def readonly(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A read-only copy of ``array``."""
    out = np.array(array, copy=True)
    out.flags.writeable = False
    return out


def text_field(value: object, field: str) -> str:
    """The workload's ``name`` or ``source``: text."""
    if not isinstance(value, str):
        raise InvalidInputError(f"workload {field} = {value!r} is not text; fix: pass a str")
    return value


def notes_field(notes: object, workload: str) -> tuple[str, ...]:
    """The workload's ``notes``: a sequence of texts (not one text, which would be read letter by letter)."""
    if isinstance(notes, str) or not isinstance(notes, (list, tuple)):
        raise InvalidInputError(
            f"workload {workload!r}: notes = {notes!r} is not a list of texts; fix: pass a tuple of str, "
            "e.g. ('clamped 2 rows',)"
        )
    bad = next((note for note in notes if not isinstance(note, str)), None)
    if bad is not None:
        raise InvalidInputError(
            f"workload {workload!r}: notes holds {bad!r}, which is not text; fix: pass a tuple of str"
        )
    return tuple(notes)


def arrival_column(values: Any, workload: str) -> npt.NDArray[np.float64]:
    """``arrival_s`` as float64, refusing a shape or dtype that is not one time per request."""
    arrivals = np.asarray(values)
    if arrivals.ndim != 1:
        raise InvalidInputError(
            f"workload {workload!r}: arrival_s must be a 1-D array, got shape {arrivals.shape}; "
            "pass one arrival time per request"
        )
    if arrivals.dtype == np.bool_ or not (
        np.issubdtype(arrivals.dtype, np.integer) or np.issubdtype(arrivals.dtype, np.floating)
    ):
        raise InvalidInputError(
            f"workload {workload!r}: arrival_s has dtype {arrivals.dtype}; pass times in seconds"
        )
    return arrivals.astype(np.float64)


def check_arrivals(arrivals: npt.NDArray[np.float64], workload: str) -> None:
    """Refuses arrivals that are not finite, do not start at 0, run backwards or span beyond the limit."""
    finite = np.isfinite(arrivals)
    if not finite.all():
        index = int(np.flatnonzero(~finite)[0])
        raise InvalidInputError(
            f"workload {workload!r}: arrival_s[{index}] = {float(arrivals[index])!r}; "
            "arrival times must be finite seconds"
        )
    if arrivals[0] != 0.0:
        raise InvalidInputError(
            f"workload {workload!r}: arrival_s[0] = {float(arrivals[0])!r}; arrival times are measured "
            "from the first request, so subtract arrival_s[0] from every arrival"
        )
    steps = np.diff(arrivals)
    if (steps < 0).any():
        index = int(np.flatnonzero(steps < 0)[0]) + 1
        raise InvalidInputError(
            f"workload {workload!r}: arrival_s[{index}] = {float(arrivals[index])!r} is earlier than "
            f"arrival_s[{index - 1}] = {float(arrivals[index - 1])!r}; sort the requests by arrival time"
        )
    if arrivals[-1] > MAX_TRACE_SPAN_S:
        raise InvalidInputError(
            f"workload {workload!r}: the last arrival, {float(arrivals[-1])!r} s, is beyond the limit "
            f"of {MAX_TRACE_SPAN_S:,.0f} s; fix: split the workload (limits: {LIMITS_DOC})"
        )


def token_column(values: Any, column: str, workload: str) -> IntArray:
    """Coerces a token-count column to int64, rejecting fractional, non-finite and non-positive values."""
    raw = np.asarray(values)
    if raw.ndim != 1:
        raise InvalidInputError(
            f"workload {workload!r}: {column} must be a 1-D array, got shape {raw.shape}; "
            "pass one value per request"
        )
    if raw.dtype == np.bool_ or not (
        np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating)
    ):
        raise InvalidInputError(
            f"workload {workload!r}: {column} has dtype {raw.dtype}; pass integer token counts"
        )
    if np.issubdtype(raw.dtype, np.floating):
        bad = ~np.isfinite(raw) | (raw != np.round(raw))
        if bad.any():
            index = int(np.flatnonzero(bad)[0])
            raise InvalidInputError(
                f"workload {workload!r}: {column}[{index}] = {raw[index].item()!r} is not a whole number; "
                "token counts must be finite integers"
            )
    if np.issubdtype(raw.dtype, np.floating) or raw.dtype == np.uint64:
        _refuse_above(raw > MAX_TOKENS, raw, column, workload)
    tokens = raw.astype(np.int64)
    _refuse_above(tokens > MAX_TOKENS, tokens, column, workload)
    small = tokens < 1
    if small.any():
        index = int(np.flatnonzero(small)[0])
        raise InvalidInputError(
            f"workload {workload!r}: {column}[{index}] = {int(tokens[index])} is below 1; "
            "every request needs at least one token (drop or clamp such rows before building a Workload)"
        )
    return tokens


def _refuse_above(big: npt.NDArray[np.bool_], values: npt.NDArray[Any], column: str, workload: str) -> None:
    if big.any():
        index = int(np.flatnonzero(big)[0])
        raise InvalidInputError(
            f"workload {workload!r}: {column}[{index}] = {values[index].item()!r} is above the limit of "
            f"{MAX_TOKENS:,} tokens; fix: correct the count (limits: {LIMITS_DOC})"
        )


def _integer_column(values: Any, name: str, n: int, where: str, default: IntArray) -> IntArray:
    """An optional conversation column: ``default`` when not given (None or empty), else ``n`` integers."""
    raw = np.asarray(values) if values is not None else np.zeros(0, dtype=np.int64)
    if raw.ndim == 1 and raw.size == 0:
        return default
    if raw.shape != (n,) or raw.dtype == np.bool_ or not np.issubdtype(raw.dtype, np.integer):
        raise InvalidInputError(
            f"{where}: {name} must be {n} integers, one per request, got shape {raw.shape} and dtype "
            f"{raw.dtype}; fix: pass one whole number per request"
        )
    return raw.astype(np.int64)


def _check_sessions(where: str, session: IntArray, parent: IntArray) -> None:
    """Refuses a follow-up whose parent is in another session."""
    index = np.arange(len(session))
    has_parent = parent >= 0
    if has_parent.any():
        same = session[parent[has_parent]] == session[has_parent]
        if not same.all():
            i = int(index[has_parent][~same][0])
            raise InvalidInputError(
                f"{where}: request {i}'s parent {int(parent[i])} is in session "
                f"{int(session[parent[i]])}, not {int(session[i])}; "
                "fix: a follow-up continues its own session"
            )


def conversation_columns(fields: dict[str, Any], prompts: IntArray, where: str) -> dict[str, Any]:
    """The conversation columns (``fields``: as given, by name), filled for a single-turn workload and
    checked; ``block_tokens`` as an int."""
    n = len(prompts)
    session = _integer_column(fields["session"], "session", n, where, np.arange(n, dtype=np.int64))
    parent = _integer_column(fields["parent"], "parent", n, where, np.full(n, -1, dtype=np.int64))
    turn = _integer_column(fields["turn"], "turn", n, where, np.ones(n, dtype=np.int64))
    shared = _integer_column(
        fields["shared_prefix_tokens"], "shared_prefix_tokens", n, where, np.zeros(n, dtype=np.int64)
    )
    index = np.arange(n)
    checks = (
        (session < 0, "session", "is negative", "number sessions from 0"),
        (turn < 1, "turn", "is below 1", "number turns from 1"),
        (
            (parent < -1) | (parent >= index),
            "parent",
            "is not an earlier request",
            "give the index of an earlier request of the same session, or -1",
        ),
        (
            (shared < 0) | (shared > prompts),
            "shared_prefix_tokens",
            "is not within the prompt",
            "give 0 .. prompt_tokens",
        ),
        (
            (parent < 0) & (shared > 0),
            "shared_prefix_tokens",
            "is above 0 without a parent",
            "give 0 for a request without a parent",
        ),
    )
    values = {"session": session, "turn": turn, "parent": parent, "shared_prefix_tokens": shared}
    for bad, name, problem, fix in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidInputError(f"{where}: {name}[{i}] = {int(values[name][i])} {problem}; fix: {fix}")
    _check_sessions(where, session, parent)
    offsets, ids = _blocks(fields["block_offsets"], fields["block_ids"], n, where)
    tokens = fields["block_tokens"]
    if isinstance(tokens, bool) or not isinstance(tokens, (int, np.integer)) or not 1 <= tokens <= MAX_TOKENS:
        raise InvalidInputError(
            f"{where}: block_tokens = {tokens!r}; fix: give the tokens of one block, 1 to {MAX_TOKENS:,}"
        )
    return values | {"block_offsets": offsets, "block_ids": ids, "block_tokens": int(tokens)}


def _blocks(
    offsets_given: Any, ids_given: Any, n: int, where: str
) -> tuple[IntArray, npt.NDArray[np.uint64]]:
    """The cloud prefix blocks as (offsets, ids), none for a workload without them, checked."""
    offsets = np.asarray(offsets_given) if offsets_given is not None else np.zeros(0, dtype=np.int64)
    if offsets.ndim == 1 and offsets.size == 0:
        return np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.uint64)
    ids = np.asarray(ids_given)
    if ids.dtype.kind not in "ui" or ids.ndim != 1 or (ids.size and ids.min() < 0):
        raise InvalidInputError(f"{where}: block_ids must be non-negative integers; fix: pass block ids")
    ids = ids.astype(np.uint64)
    if (
        offsets.shape != (n + 1,)
        or offsets.dtype.kind not in "ui"
        or offsets[0] != 0
        or offsets[-1] != len(ids)
        or (np.diff(offsets) < 0).any()
    ):
        raise InvalidInputError(
            f"{where}: block_offsets must be {n + 1} non-decreasing integer offsets from 0 to {len(ids)}; "
            "fix: pass request i's blocks as block_ids[block_offsets[i]:block_offsets[i + 1]]"
        )
    return offsets.astype(np.int64), ids


def class_labels(values: Any, n: int, where: str) -> npt.NDArray[np.str_]:
    """The ``device_class`` column (`pdcore.traces.class_column`): empty (not given), or one non-empty
    class name per request, as text."""
    labels = np.asarray(values)
    if labels.size == 0:
        return np.zeros(0, dtype=np.str_)
    if labels.dtype.kind != "U" or labels.shape != (n,) or bool((np.char.str_len(labels) == 0).any()):
        raise InvalidInputError(
            f"{where}: device_class must be {n} non-empty class names, one per request; fix: pass a 1-D "
            "array of str, or leave it out"
        )
    return labels


TURN_BUCKETS: tuple[str, str, str, str] = ("1", "2", "3", "4+")
"""The turn buckets results are reported by: first turns, second, third, fourth and later."""


def turn_buckets(turn: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The bucket index (into `TURN_BUCKETS`) of each turn number.

    Raises:
        InvalidInputError: ``turn`` is not a 1-D array of integers from 1.
    """
    turns = np.asarray(turn)
    if (
        turns.ndim != 1
        or turns.dtype == np.bool_
        or not np.issubdtype(turns.dtype, np.integer)
        or (turns.size and turns.min() < 1)
    ):
        raise InvalidInputError(
            f"turn = {turn!r} is not a list of turn numbers; fix: pass a 1-D array of integers from 1"
        )
    return np.minimum(turns.astype(np.int64), len(TURN_BUCKETS)) - 1
