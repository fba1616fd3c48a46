"""The request workload every simulator and optimizer run consumes.

A `Workload` is three aligned columns, one row per request: the arrival time in seconds from the first
request, the prompt length and the output length, both in tokens. Invariants, checked on construction
(`pdcore.traces.columns`, which also refuses a field of the wrong type: a name that is not text, a note
that is not a list of texts):

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

Device classes (optional): ``device_class``, each request's class name from a trace column, empty when the
trace has none (`pdcore.traces.class_column`); carried by every derived workload (`carried_columns`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from pdcore.exceptions import InvalidInputError
from pdcore.limits import (
    LIMITS_DOC,
    MAX_RATE,
    MAX_REQUESTS,
    MAX_TOKENS,
    MAX_TRACE_SPAN_S,
    check_float,
    check_int,
)
from pdcore.traces.columns import (
    CONVERSATION_FIELDS,
    TURN_BUCKETS,
    arrival_column,
    check_arrivals,
    class_labels,
    conversation_columns,
    notes_field,
    readonly,
    text_field,
    token_column,
    turn_buckets,
)

__all__ = ["OVERSIZE", "TURN_BUCKETS", "Workload", "turn_buckets"]

OVERSIZE = ("fail", "skip", "clip")
"""What `Workload.fit` does with a request that does not fit: refuse, drop it, or shorten it."""

_PERCENTILES = (50, 90, 99)

_UNSET: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
"""An empty column: not given (every workload has at least one request)."""


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
    device_class: npt.NDArray[np.str_] = field(default_factory=lambda: np.zeros(0, dtype=np.str_))

    def __post_init__(self) -> None:
        """Coerces the columns to their dtypes, makes them read-only and checks the invariants
        (`pdcore.traces.columns`).

        Raises:
            InvalidInputError: A field of the wrong type, a column of the wrong shape or dtype, lengths that
                differ, no requests, an arrival that is not finite, decreasing or not starting at 0, a token
                count out of range, or conversation columns that do not fit together.
        """
        name = text_field(self.name, "name")
        source = text_field(self.source, "source")
        notes = notes_field(self.notes, name)
        arrivals = arrival_column(self.arrival_s, name)
        prompts = token_column(self.prompt_tokens, "prompt_tokens", name)
        outputs = token_column(self.output_tokens, "output_tokens", name)
        lengths = {len(arrivals), len(prompts), len(outputs)}
        if len(lengths) != 1:
            raise InvalidInputError(
                f"workload {name!r}: column lengths differ (arrival_s {len(arrivals)}, "
                f"prompt_tokens {len(prompts)}, output_tokens {len(outputs)}); pass one row per request"
            )
        if len(arrivals) == 0:
            raise InvalidInputError(f"workload {name!r} has no requests; pass at least one request")
        check_arrivals(arrivals, name)
        given = {column: getattr(self, column) for column in CONVERSATION_FIELDS}
        columns = conversation_columns(given, prompts, f"workload {name!r}")
        arrays = {"arrival_s": arrivals, "prompt_tokens": prompts, "output_tokens": outputs} | columns
        arrays["device_class"] = class_labels(self.device_class, len(prompts), f"workload {name!r}")
        checked = {"name": name, "source": source, "notes": notes, "block_tokens": columns["block_tokens"]}
        for column, value in (
            {c: readonly(v) for c, v in arrays.items() if c not in checked} | checked
        ).items():
            object.__setattr__(self, column, value)

    @property
    def multi_turn(self) -> bool:
        """Whether any request continues an earlier one (a follow-up turn)."""
        return bool((self.parent >= 0).any())

    def conversation_columns(self) -> dict[str, Any]:
        """The conversation columns, to carry them into a derived workload (`dataclasses.replace` keeps
        them too)."""
        return {name: getattr(self, name) for name in CONVERSATION_FIELDS}

    def carried_columns(self) -> dict[str, Any]:
        """The conversation columns and the device classes, to carry them into a derived workload."""
        return self.conversation_columns() | {"device_class": self.device_class}

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
            "device_class": self.device_class[keep] if len(self.device_class) else self.device_class,
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
                    "device_class",
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
        scale = check_float(rate_scale, "--rate-scale", minimum=0.0, maximum=MAX_RATE, above_minimum=True)
        if float(self.arrival_s[-1]) / scale > MAX_TRACE_SPAN_S:
            raise InvalidInputError(
                f"--rate-scale {rate_scale!r} is out of range for {self.name!r}: the replayed span must be "
                f"at most {MAX_TRACE_SPAN_S:g} s; fix: pass a scale closer to 1 (limits: {LIMITS_DOC})"
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
            **self.carried_columns(),
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
        if not isinstance(oversize, str) or oversize not in OVERSIZE:
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
        columns = self.carried_columns()
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
        wanted = int(n) if isinstance(n, np.integer) else n
        count = check_int(wanted, "--limit", minimum=1, maximum=MAX_REQUESTS)
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
