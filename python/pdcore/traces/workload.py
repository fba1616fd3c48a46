"""The request workload every simulator and optimizer run consumes.

A `Workload` is three aligned columns, one row per request: the arrival time in seconds from the first
request, the prompt length and the output length, both in tokens. Invariants, checked on construction:

- the three arrays have the same non-zero length;
- ``arrival_s`` is float64, finite, non-decreasing and starts at exactly 0;
- ``prompt_tokens`` and ``output_tokens`` are int64 and every value is at least 1;
- the arrays are read-only, so a workload can be shared between runs without copying.

Conversations (all optional; a single-turn workload leaves them out and every request is its own session
at turn 1): ``session``, ``turn`` (1 = first), ``parent`` (the previous turn's request index, -1 for none;
always an earlier request of the same session), ``shared_prefix_tokens`` (how many leading tokens of the
prompt are the parent's context, its prompt and answer; 0 without a parent) and the cloud prefix blocks,
``block_ids`` of ``block_tokens`` tokens each, request ``i``'s being ``block_ids[block_offsets[i]:
block_offsets[i + 1]]`` (how `pdcore.traces.conversations` derives them is documented there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from pdcore.exceptions import InvalidInputError
from pdcore.limits import LIMITS_DOC, MAX_RATE, MAX_REQUESTS, MAX_TOKENS, MAX_TRACE_SPAN_S, check_int

__all__ = ["OVERSIZE", "TURN_BUCKETS", "Workload", "turn_buckets"]

OVERSIZE = ("fail", "skip", "clip")
"""What `Workload.fit` does with a request that does not fit: refuse, drop it, or shorten it."""

_PERCENTILES = (50, 90, 99)

_UNSET: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
"""An empty column: not given (every workload has at least one request)."""


def _as_readonly(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    out = np.array(array, copy=True)
    out.flags.writeable = False
    return out


def _token_column(values: Any, column: str, workload: str) -> npt.NDArray[np.int64]:
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
        big = raw > MAX_TOKENS
        if big.any():
            index = int(np.flatnonzero(big)[0])
            raise InvalidInputError(
                f"workload {workload!r}: {column}[{index}] = {raw[index].item()!r} is above the limit of "
                f"{MAX_TOKENS:,} tokens; fix: correct the count (limits: {LIMITS_DOC})"
            )
    tokens = raw.astype(np.int64)
    big = tokens > MAX_TOKENS
    if big.any():
        index = int(np.flatnonzero(big)[0])
        raise InvalidInputError(
            f"workload {workload!r}: {column}[{index}] = {int(tokens[index])} is above the limit of "
            f"{MAX_TOKENS:,} tokens; fix: correct the count (limits: {LIMITS_DOC})"
        )
    small = tokens < 1
    if small.any():
        index = int(np.flatnonzero(small)[0])
        raise InvalidInputError(
            f"workload {workload!r}: {column}[{index}] = {int(tokens[index])} is below 1; "
            "every request needs at least one token (drop or clamp such rows before building a Workload)"
        )
    return tokens


def _check_sessions(where: str, session: npt.NDArray[np.int64], parent: npt.NDArray[np.int64]) -> None:
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


@dataclass(frozen=True, eq=False)
class Workload:
    """A sequence of LLM requests: arrival times and token counts.

    Equality compares every field, arrays element-wise; instances are not hashable.

    Attributes:
        name: Short label used in reports (a trace's file stem, or ``"synthetic-azure-conv"``).
        arrival_s: float64 arrival times in seconds from the first request; non-decreasing, starting at 0.
        prompt_tokens: int64 prompt (context) length of each request, at least 1.
        output_tokens: int64 number of tokens each request generates, at least 1.
        source: Where the rows came from: a file path, or ``"synthetic:seed=...,..."``.
        notes: Human-readable remarks about how the rows were derived (rows clamped on load, rate
            scaling, truncation). Empty when the source was used as is.
    """

    name: str
    arrival_s: npt.NDArray[np.float64]
    prompt_tokens: npt.NDArray[np.int64]
    output_tokens: npt.NDArray[np.int64]
    source: str
    notes: tuple[str, ...] = field(default=())
    session: npt.NDArray[np.int64] = field(default_factory=lambda: _UNSET)
    turn: npt.NDArray[np.int64] = field(default_factory=lambda: _UNSET)
    parent: npt.NDArray[np.int64] = field(default_factory=lambda: _UNSET)
    shared_prefix_tokens: npt.NDArray[np.int64] = field(default_factory=lambda: _UNSET)
    block_offsets: npt.NDArray[np.int64] = field(default_factory=lambda: _UNSET)
    block_ids: npt.NDArray[np.uint64] = field(default_factory=lambda: _UNSET.astype(np.uint64))
    block_tokens: int = 512

    def __post_init__(self) -> None:
        """Coerces the columns to their dtypes, makes them read-only and checks the invariants.

        Raises:
            InvalidInputError: A column has the wrong shape or dtype, the lengths differ, the workload is
                empty, an arrival is NaN or decreasing or the first is not 0, or a token count is below 1.
        """
        arrivals = np.asarray(self.arrival_s)
        if arrivals.ndim != 1:
            raise InvalidInputError(
                f"workload {self.name!r}: arrival_s must be a 1-D array, got shape {arrivals.shape}; "
                "pass one arrival time per request"
            )
        if arrivals.dtype == np.bool_ or not (
            np.issubdtype(arrivals.dtype, np.integer) or np.issubdtype(arrivals.dtype, np.floating)
        ):
            raise InvalidInputError(
                f"workload {self.name!r}: arrival_s has dtype {arrivals.dtype}; pass times in seconds"
            )
        arrivals = arrivals.astype(np.float64)
        prompts = _token_column(self.prompt_tokens, "prompt_tokens", self.name)
        outputs = _token_column(self.output_tokens, "output_tokens", self.name)
        lengths = {len(arrivals), len(prompts), len(outputs)}
        if len(lengths) != 1:
            raise InvalidInputError(
                f"workload {self.name!r}: column lengths differ (arrival_s {len(arrivals)}, "
                f"prompt_tokens {len(prompts)}, output_tokens {len(outputs)}); pass one row per request"
            )
        if len(arrivals) == 0:
            raise InvalidInputError(f"workload {self.name!r} has no requests; pass at least one request")
        finite = np.isfinite(arrivals)
        if not finite.all():
            index = int(np.flatnonzero(~finite)[0])
            raise InvalidInputError(
                f"workload {self.name!r}: arrival_s[{index}] = {float(arrivals[index])!r}; "
                "arrival times must be finite seconds"
            )
        if arrivals[0] != 0.0:
            raise InvalidInputError(
                f"workload {self.name!r}: arrival_s[0] = {float(arrivals[0])!r}; arrival times are measured "
                "from the first request, so subtract arrival_s[0] from every arrival"
            )
        steps = np.diff(arrivals)
        if (steps < 0).any():
            index = int(np.flatnonzero(steps < 0)[0]) + 1
            raise InvalidInputError(
                f"workload {self.name!r}: arrival_s[{index}] = {float(arrivals[index])!r} is earlier than "
                f"arrival_s[{index - 1}] = {float(arrivals[index - 1])!r}; sort the requests by arrival time"
            )
        if arrivals[-1] > MAX_TRACE_SPAN_S:
            raise InvalidInputError(
                f"workload {self.name!r}: the last arrival, {float(arrivals[-1])!r} s, is beyond the limit "
                f"of {MAX_TRACE_SPAN_S:,.0f} s; fix: split the workload (limits: {LIMITS_DOC})"
            )
        object.__setattr__(self, "arrival_s", _as_readonly(arrivals))
        object.__setattr__(self, "prompt_tokens", _as_readonly(prompts))
        object.__setattr__(self, "output_tokens", _as_readonly(outputs))
        object.__setattr__(self, "notes", tuple(str(note) for note in self.notes))
        self._check_conversations(prompts)

    def _check_conversations(self, prompts: npt.NDArray[np.int64]) -> None:
        """Fills the conversation columns of a single-turn workload and checks those given."""
        n = len(prompts)
        where = f"workload {self.name!r}"

        def column(values: Any, name: str, default: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
            if values is None or len(values) == 0:
                return default
            raw = np.asarray(values)
            if raw.shape != (n,) or not np.issubdtype(raw.dtype, np.integer):
                raise InvalidInputError(
                    f"{where}: {name} must be {n} integers, one per request, got shape {raw.shape} and dtype "
                    f"{raw.dtype}; fix: pass one whole number per request"
                )
            return raw.astype(np.int64)

        session = column(self.session, "session", np.arange(n, dtype=np.int64))
        parent = column(self.parent, "parent", np.full(n, -1, dtype=np.int64))
        turn = column(self.turn, "turn", np.ones(n, dtype=np.int64))
        shared = column(self.shared_prefix_tokens, "shared_prefix_tokens", np.zeros(n, dtype=np.int64))
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
        for bad, name, problem, fix in checks:
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                values = {"session": session, "turn": turn, "parent": parent, "shared_prefix_tokens": shared}
                raise InvalidInputError(
                    f"{where}: {name}[{i}] = {int(values[name][i])} {problem}; fix: {fix}"
                )
        _check_sessions(where, session, parent)
        offsets, ids = self._checked_blocks(n, where)
        tokens = self.block_tokens
        if (
            isinstance(tokens, bool)
            or not isinstance(tokens, (int, np.integer))
            or not 1 <= tokens <= MAX_TOKENS
        ):
            raise InvalidInputError(
                f"{where}: block_tokens = {tokens!r}; fix: give the tokens of one block, >= 1"
            )
        for name, filled in (
            ("session", session),
            ("turn", turn),
            ("parent", parent),
            ("shared_prefix_tokens", shared),
            ("block_offsets", offsets),
            ("block_ids", ids),
        ):
            object.__setattr__(self, name, _as_readonly(filled))
        object.__setattr__(self, "block_tokens", int(tokens))

    def _checked_blocks(self, n: int, where: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
        """The cloud prefix blocks as (offsets, ids), none for a workload without them, checked."""
        if self.block_offsets is None or len(self.block_offsets) == 0:
            offsets = np.zeros(n + 1, dtype=np.int64)
            ids = np.zeros(0, dtype=np.uint64)
        else:
            offsets = np.asarray(self.block_offsets, dtype=np.int64)
            ids = np.asarray(self.block_ids)
            if ids.dtype.kind not in "ui" or ids.ndim != 1 or (ids.size and ids.min() < 0):
                raise InvalidInputError(
                    f"{where}: block_ids must be non-negative integers; fix: pass block ids"
                )
            ids = ids.astype(np.uint64)
            if (
                offsets.shape != (n + 1,)
                or offsets[0] != 0
                or offsets[-1] != len(ids)
                or (np.diff(offsets) < 0).any()
            ):
                raise InvalidInputError(
                    f"{where}: block_offsets must be {n + 1} non-decreasing offsets from 0 to {len(ids)}; "
                    "fix: pass request i's blocks as block_ids[block_offsets[i]:block_offsets[i + 1]]"
                )
        return offsets, ids

    @property
    def multi_turn(self) -> bool:
        """Whether any request continues an earlier one (a follow-up turn)."""
        return bool((self.parent >= 0).any())

    def conversation_columns(self) -> dict[str, Any]:
        """The conversation columns, to carry them into a derived workload (`dataclasses.replace` keeps
        them too)."""
        return {
            "session": self.session,
            "turn": self.turn,
            "parent": self.parent,
            "shared_prefix_tokens": self.shared_prefix_tokens,
            "block_offsets": self.block_offsets,
            "block_ids": self.block_ids,
            "block_tokens": self.block_tokens,
        }

    def _select(self, keep: npt.NDArray[np.bool_]) -> dict[str, Any]:
        """The conversation columns of the requests ``keep`` selects; a dropped parent leaves its
        follow-up without one (and without a shared prefix)."""
        new_index = np.cumsum(keep) - 1
        parent = self.parent[keep]
        kept_parent = (parent >= 0) & keep[np.maximum(parent, 0)]
        parent = np.where(kept_parent, new_index[np.maximum(parent, 0)], -1)
        shared = np.where(kept_parent, self.shared_prefix_tokens[keep], 0)
        starts, ends = self.block_offsets[:-1][keep], self.block_offsets[1:][keep]
        pieces = [self.block_ids[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
        ids = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.uint64)
        offsets = np.concatenate(([0], np.cumsum(ends - starts)))
        return {
            "session": self.session[keep],
            "turn": self.turn[keep],
            "parent": parent,
            "shared_prefix_tokens": shared,
            "block_offsets": offsets,
            "block_ids": ids.astype(np.uint64),
            "block_tokens": self.block_tokens,
        }

    def __len__(self) -> int:
        """Returns the number of requests."""
        return len(self.arrival_s)

    def __eq__(self, other: object) -> bool:
        """Compares every field; arrays element-wise."""
        if not isinstance(other, Workload):
            return NotImplemented
        return (
            self.name == other.name
            and self.source == other.source
            and self.notes == other.notes
            and np.array_equal(self.arrival_s, other.arrival_s)
            and np.array_equal(self.prompt_tokens, other.prompt_tokens)
            and np.array_equal(self.output_tokens, other.output_tokens)
            and self.block_tokens == other.block_tokens
            and all(
                np.array_equal(getattr(self, name), getattr(other, name))
                for name in (
                    "session",
                    "turn",
                    "parent",
                    "shared_prefix_tokens",
                    "block_offsets",
                    "block_ids",
                )
            )
        )

    __hash__ = None  # type: ignore[assignment]  # mutable-looking arrays: equality is by value

    def scaled(self, rate_scale: float) -> Workload:
        """Returns the workload replayed ``rate_scale`` times faster (arrival times divided by it).

        Token counts are unchanged; only the request rate changes.

        Args:
            rate_scale: Speed-up of the arrival process; 2.0 doubles the request rate. Must be finite and
                greater than 0.

        Returns:
            A new workload with ``arrival_s / rate_scale`` and a note recording the scale.

        Raises:
            InvalidInputError: ``rate_scale`` is not a finite number greater than 0.
        """
        try:
            scale = float(rate_scale)
        except (TypeError, ValueError):
            raise InvalidInputError(
                f"--rate-scale must be a number greater than 0, got {rate_scale!r}; "
                "use e.g. 2.0 to double the request rate"
            ) from None
        if not math.isfinite(scale) or scale <= 0.0:
            raise InvalidInputError(
                f"--rate-scale must be a finite number greater than 0, got {rate_scale!r}; "
                "use e.g. 2.0 to double the request rate or 0.5 to halve it"
            )
        if scale > MAX_RATE or float(self.arrival_s[-1]) / scale > MAX_TRACE_SPAN_S:
            raise InvalidInputError(
                f"--rate-scale {rate_scale!r} is out of range for {self.name!r}: the scale must be at most "
                f"{MAX_RATE:g} and the replayed span at most {MAX_TRACE_SPAN_S:g} s; fix: pass a scale "
                f"closer to 1 (limits: {LIMITS_DOC})"
            )
        if scale == 1.0:
            return self
        return Workload(
            name=self.name,
            arrival_s=self.arrival_s / scale,
            prompt_tokens=self.prompt_tokens,
            output_tokens=self.output_tokens,
            source=self.source,
            notes=(*self.notes, f"arrival times divided by rate scale {scale:g}"),
            **self.conversation_columns(),
        )

    def fit(self, capacity_tokens: int, oversize: str = "fail", *, what: str = "the KV cache") -> Workload:
        """Deals with requests whose prompt plus output exceed ``capacity_tokens``, as ``oversize`` says.

        Args:
            capacity_tokens: The most tokens one request may hold (prompt + output), e.g. a cloud replica's
                KV cache.
            oversize: ``"fail"`` refuses the workload, naming the first such request and their count;
                ``"skip"`` drops them; ``"clip"`` shortens the prompt (keeping its last tokens' worth of
                length) and then the output until the request fits. Both record a note.
            what: What the capacity is, for the messages.

        Returns:
            ``self`` when every request fits, else the filtered or clipped workload.

        Raises:
            InvalidInputError: ``oversize`` is unknown, ``capacity_tokens`` below 2, ``"fail"`` with an
                oversize request, or ``"skip"`` with nothing left.
        """
        if oversize not in OVERSIZE:
            raise InvalidInputError(
                f"--oversize {oversize!r} is unknown; fix: use one of {', '.join(OVERSIZE)}"
            )
        cap = check_int(capacity_tokens, "capacity_tokens", minimum=2, maximum=2 * MAX_TOKENS)
        total = self.prompt_tokens + self.output_tokens
        over = np.flatnonzero(total > cap)
        if not len(over):
            return self
        first = int(over[0])
        described = (
            f"{len(over)} of {len(self)} request(s) in {self.name!r} need more than the {cap:,} tokens of "
            f"{what}; the first is request {first + 1} (prompt {int(self.prompt_tokens[first]):,} + output "
            f"{int(self.output_tokens[first]):,} tokens)"
        )
        if oversize == "fail":
            raise InvalidInputError(
                f"{described}; fix: pass --oversize skip to drop them or --oversize clip to shorten them, "
                "or a cloud profile with a larger KV cache"
            )
        if oversize == "skip":
            keep = total <= cap
            if not keep.any():
                raise InvalidInputError(f"{described}, and none fits; fix: use --oversize clip")
            arrivals = self.arrival_s[keep]
            return Workload(
                name=self.name,
                arrival_s=arrivals - arrivals[0],
                prompt_tokens=self.prompt_tokens[keep],
                output_tokens=self.output_tokens[keep],
                source=self.source,
                notes=(*self.notes, f"{described}: skipped"),
                **self._select(keep),
            )
        prompts = np.minimum(self.prompt_tokens, cap - 1)
        outputs = np.minimum(self.output_tokens, cap - prompts)
        columns = self.conversation_columns()
        columns["shared_prefix_tokens"] = np.minimum(self.shared_prefix_tokens, prompts)
        return Workload(
            name=self.name,
            arrival_s=self.arrival_s,
            prompt_tokens=prompts,
            output_tokens=outputs,
            source=self.source,
            notes=(*self.notes, f"{described}: clipped to fit"),
            **columns,
        )

    def limit(self, n: int | None) -> Workload:
        """Returns the first ``n`` requests (all of them when ``n`` is None or at least ``len(self)``).

        Args:
            n: Number of requests to keep, at least 1, or None for no limit.

        Returns:
            The truncated workload (``self`` when nothing is removed).

        Raises:
            InvalidInputError: ``n`` is not an integer of at least 1.
        """
        if n is None:
            return self
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise InvalidInputError(
                f"--limit must be a whole number of requests, got {n!r}; pass e.g. 1000, or omit it"
            )
        if n < 1:
            raise InvalidInputError(f"--limit must be at least 1, got {n}; omit it to keep every request")
        count = check_int(int(n), "--limit", minimum=1, maximum=MAX_REQUESTS)
        if count >= len(self):
            return self
        return Workload(
            name=self.name,
            arrival_s=self.arrival_s[:count],
            prompt_tokens=self.prompt_tokens[:count],
            output_tokens=self.output_tokens[:count],
            source=self.source,
            notes=(*self.notes, f"limited to the first {count} of {len(self)} requests"),
            **self._select(np.arange(len(self)) < count),
        )

    def summary(self) -> dict[str, float | None]:
        """Returns the workload's headline statistics.

        Percentiles use numpy's default (linear interpolation). ``rate_rps`` is ``count / duration_s``, and
        None (undefined, written as JSON null) when every request arrives at the same instant, as a
        one-request workload does.

        Returns:
            A dict with ``count``, ``duration_s``, ``rate_rps``, ``prompt_p50``, ``prompt_p90``,
            ``prompt_p99``, ``prompt_mean``, ``output_p50``, ``output_p90``, ``output_p99`` and
            ``output_mean``.
        """
        count = len(self)
        duration = float(self.arrival_s[-1])
        prompt_q = np.percentile(self.prompt_tokens, _PERCENTILES)
        output_q = np.percentile(self.output_tokens, _PERCENTILES)
        stats: dict[str, float | None] = {
            "count": count,
            "duration_s": duration,
            "rate_rps": count / duration if duration > 0.0 else None,
        }
        for pct, value in zip(_PERCENTILES, prompt_q, strict=True):
            stats[f"prompt_p{pct}"] = float(value)
        stats["prompt_mean"] = float(self.prompt_tokens.mean())
        for pct, value in zip(_PERCENTILES, output_q, strict=True):
            stats[f"output_p{pct}"] = float(value)
        stats["output_mean"] = float(self.output_tokens.mean())
        return stats

    def describe(self) -> dict[str, Any]:
        """The ``workload`` object of the JSON reports: name, source, notes, size, rate and token stats."""
        stats = self.summary()
        return {
            "name": self.name,
            "source": self.source,
            "notes": list(self.notes),
            "requests": len(self),
            "duration_s": stats["duration_s"],
            "rate_rps": stats["rate_rps"],
            "prompt_tokens": {k[len("prompt_") :]: v for k, v in stats.items() if k.startswith("prompt_")},
            "output_tokens": {k[len("output_") :]: v for k, v in stats.items() if k.startswith("output_")},
            **({"conversations": self.conversation_summary()} if self.multi_turn else {}),
        }

    def conversation_summary(self) -> dict[str, Any]:
        """Sessions and turns: counts, the share of follow-ups, requests per turn bucket (1, 2, 3, 4+) and
        the mean shared prefix of a follow-up."""
        follow = self.parent >= 0
        buckets = turn_buckets(self.turn)
        return {
            "sessions": len(np.unique(self.session)),
            "follow_ups": int(follow.sum()),
            "follow_up_share": float(follow.mean()),
            "requests_per_turn": {name: int((buckets == b).sum()) for b, name in enumerate(TURN_BUCKETS)},
            "shared_prefix_mean": float(self.shared_prefix_tokens[follow].mean()) if follow.any() else 0.0,
            "block_tokens": self.block_tokens,
        }


TURN_BUCKETS: tuple[str, str, str, str] = ("1", "2", "3", "4+")
"""The turn buckets results are reported by: first turns, second, third, fourth and later."""


def turn_buckets(turn: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The bucket index (into `TURN_BUCKETS`) of each turn number."""
    return np.minimum(np.asarray(turn, dtype=np.int64), len(TURN_BUCKETS)) - 1
