"""Pure-Python versions of the native core, for measuring what the Rust core buys.

Each function reproduces the native one exactly, bit for bit, not approximately:

- times are checked and converted the same way (finite, ``0 <= t <= 9.2e6`` s, ``t * 1e9`` rounded half
  away from zero as Rust's ``f64::round`` does) and kept as integer nanoseconds;
- the pacing rule uses integer division truncating toward zero, as Rust's ``/`` on ``i64`` does; Python's
  ``//`` floors instead, which differs only for a negative share (hand-off already passed), and the
  clamp to ``min_tpot >= 0`` makes both give the same gap there;
- display times go back to seconds as ``ns / 1e9``, the same IEEE operation as Rust's
  ``ns as f64 / 1e9``;
- the event loop orders by ``(time, priority, seq)`` with a per-instance ``seq``, on ``heapq``.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Sequence
from typing import Any

__all__ = ["HeapEventLoop", "SpeedController", "pace", "pace_ns", "secs_to_ns"]

MAX_SECS = 9.2e6
NEVER = (1 << 63) - 1


def _round_half_away(x: float) -> int:
    """Rust's ``f64::round`` for ``x >= 0``: halves round up, away from zero."""
    r = math.floor(x)
    return r + 1 if x - r >= 0.5 else r


def secs_to_ns(secs: float, arg: str, index: int | None = None) -> int:
    """Checked float seconds to integer nanoseconds, with the native core's error messages."""
    if math.isfinite(secs) and 0.0 <= secs <= MAX_SECS:
        return _round_half_away(secs * 1e9)
    at = arg if index is None else f"{arg}[{index}]"
    if math.isnan(secs):
        problem = "is NaN"
    elif math.isinf(secs):
        problem = f"is {'inf' if secs > 0 else '-inf'}"
    elif secs < 0:
        problem = f"is negative ({secs} s)"
    else:
        problem = f"is too large ({secs} s > {MAX_SECS} s)"
    raise ValueError(f"{at} {problem}; pass finite, non-negative times and durations in seconds")


def _check_bounds(min_tpot_s: float, max_tpot_s: float) -> tuple[int, int]:
    lo = secs_to_ns(min_tpot_s, "min_tpot_s")
    hi = secs_to_ns(max_tpot_s, "max_tpot_s")
    if hi <= lo:
        raise ValueError("max_tpot_s must be greater than min_tpot_s")
    return lo, hi


def _gap(prev: int, handoff: int, gaps_left: int, lo: int, hi: int) -> int:
    share = handoff - prev
    share = share // gaps_left if share >= 0 else -(-share // gaps_left)
    return lo if share < lo else hi if share > hi else share


def pace_ns(arrivals: Sequence[int], handoff: int, lo: int, hi: int) -> list[int]:
    """The pacing rule on integer nanoseconds (no conversion): the fastest pure-Python form."""
    n = len(arrivals)
    out: list[int] = []
    append = out.append
    prev = 0
    for i, a in enumerate(arrivals):
        if i:
            share = handoff - prev
            left = n - i + 1
            share = share // left if share >= 0 else -(-share // left)
            prev += lo if share < lo else hi if share > hi else share
            if a > prev:  # noqa: PLR1730 - a branch costs less than a max() call in CPython
                prev = a
        else:
            prev = a
        append(prev)
    return out


def pace(
    arrivals: Sequence[float], *, handoff_at: float, min_tpot_s: float, max_tpot_s: float
) -> list[float]:
    """``pdcore.pace`` in pure Python: float seconds in and out, the same checks and the same result.

    One fused pass, as the native ``pace_secs_into``: check and convert, apply the rule, convert back.
    """
    lo, hi = _check_bounds(min_tpot_s, max_tpot_s)
    h = secs_to_ns(handoff_at, "handoff_at")
    n = len(arrivals)
    out: list[float] = []
    append = out.append
    floor = math.floor
    prev = prev_arrival = 0
    for i, x in enumerate(arrivals):
        if not 0.0 <= x <= MAX_SECS:  # also catches NaN
            secs_to_ns(x, "arrivals", i)
        y = x * 1e9
        a = floor(y)
        if y - a >= 0.5:
            a += 1
        if i:
            if a < prev_arrival:
                raise ValueError(f"arrivals[{i}] is earlier than the previous arrival")
            share = h - prev
            left = n - i + 1
            share = share // left if share >= 0 else -(-share // left)
            s = prev + (lo if share < lo else hi if share > hi else share)
            if a > s:  # noqa: PLR1730 - a branch costs less than a max() call in CPython
                s = a
        else:
            s = a
        append(s / 1e9)
        prev = s
        prev_arrival = a
    return out


class SpeedController:
    """``pdcore.SpeedController`` in pure Python."""

    def __init__(
        self,
        *,
        min_tpot_s: float,
        max_tpot_s: float,
        expected_tokens: int | None = None,
        handoff_at: float | None = None,
    ) -> None:
        self._lo, self._hi = _check_bounds(min_tpot_s, max_tpot_s)
        self._expected = expected_tokens
        self._handoff = None if handoff_at is None else secs_to_ns(handoff_at, "handoff_at")
        self._pending: deque[int] = deque()
        self._received = 0
        self._shown = 0
        self._last_arrival: int | None = None
        self._last_shown: int | None = None

    def push(self, at: float) -> None:
        t = secs_to_ns(at, "at")
        if self._last_arrival is not None and t < self._last_arrival:
            raise ValueError(f"arrivals[{self._received}] is earlier than the previous arrival")
        self._pending.append(t)
        self._last_arrival = t
        self._received += 1

    def set_handoff(self, at: float | None) -> None:
        self._handoff = None if at is None else secs_to_ns(at, "at")

    def set_expected(self, n: int | None) -> None:
        self._expected = n

    def _due(self) -> int | None:
        if not self._pending:
            return None
        arrival = self._pending[0]
        prev = self._last_shown
        if prev is None:
            return arrival
        if self._handoff is None:
            gap = self._hi
        else:
            if self._expected is None:
                left = self._received - self._shown + 1
            else:
                left = max(self._expected - self._shown, 0) + 1
            gap = _gap(prev, self._handoff, left, self._lo, self._hi)
        return max(arrival, prev + gap)

    def next_due(self) -> float | None:
        due = self._due()
        return None if due is None else due / 1e9

    def mark_shown(self, at: float | None = None) -> float:
        due = self._due()
        if due is None:
            raise RuntimeError("mark_shown: no token is buffered")
        shown = due
        if at is not None:
            shown = secs_to_ns(at, "at")
            if shown < due:
                raise ValueError("at is before the token's due time")
        self._pending.popleft()
        self._shown += 1
        self._last_shown = shown
        return shown / 1e9


class HeapEventLoop:
    """``pdcore.EventLoop`` in pure Python on ``heapq``: ``(time, priority, seq)`` order."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, int, Any]] = []
        self._now = 0
        self._seq = 0
        self.processed = 0

    @property
    def now(self) -> float:
        return self._now / 1e9

    @property
    def pending(self) -> int:
        return len(self._heap)

    def schedule(self, at: float, event: Any, *, priority: int = 0) -> int:
        t = secs_to_ns(at, "at")
        if t < self._now:
            raise ValueError("at is before the loop's current time")
        seq = self._seq
        self._seq += 1
        heapq.heappush(self._heap, (t, priority, seq, event))
        return seq

    def schedule_in(self, delay: float, event: Any, *, priority: int = 0) -> int:
        t = min(self._now + secs_to_ns(delay, "delay"), NEVER)
        seq = self._seq
        self._seq += 1
        heapq.heappush(self._heap, (t, priority, seq, event))
        return seq

    def peek(self) -> float | None:
        return self._heap[0][0] / 1e9 if self._heap else None

    def step(self, until: float | None = None) -> tuple[float, Any] | None:
        limit = NEVER if until is None else secs_to_ns(until, "until")
        heap = self._heap
        if heap and heap[0][0] <= limit:
            t, _, _, event = heapq.heappop(heap)
            self._now = t
            self.processed += 1
            return t / 1e9, event
        if self._now < limit < NEVER:
            self._now = limit
        return None
