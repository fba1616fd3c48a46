"""The live runtime's clock: simulation-style time driven by the wall clock.

`RealtimeClock` follows SimPy's ``RealtimeEnvironment(initial_time, factor, strict)``:

- time is in seconds of "clock time", starting at ``initial_time`` when the clock is created;
- ``factor`` is the wall-clock seconds per clock second (1.0 runs in real time, 0.1 ten times faster);
- in strict mode, waking up for a deadline more than ``tolerance`` clock seconds late raises
  `pdcore.DeadlineMissedError`, whose ``lag_s`` attribute holds the lag;
- `RealtimeClock.sync` re-anchors the clock at the current wall time, so a lag accumulated while nothing
  was scheduled (a slow start-up, a debugger stop) is forgiven instead of being caught up.

Invariants: `now` never decreases (it reads `time.perf_counter`, a monotonic clock), and
``sleep_until(t)`` returns no earlier than clock time ``t``.
"""

from __future__ import annotations

import asyncio
import math
import time

from pdcore.exceptions import DeadlineMissedError, InvalidInputError

__all__ = ["DEFAULT_TOLERANCE_S", "RealtimeClock"]

DEFAULT_TOLERANCE_S = 0.02
"""How late (clock seconds) a strict clock may wake up: 20 ms, well below a 50 ms display gap."""


def _check(name: str, value: float, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInputError(f"{name} = {value!r}; pass a finite number of seconds")
    if value < 0 or (positive and value == 0):
        bound = "greater than 0" if positive else "0 or more"
        raise InvalidInputError(f"{name} = {value!r}; pass a number {bound}")
    return float(value)


class RealtimeClock:
    """A clock that maps clock seconds onto the wall clock.

    Args:
        initial_time: The clock time at creation (and after `sync`, the time it continues from).
        factor: Wall seconds per clock second, ``> 0``.
        strict: Raise `DeadlineMissedError` when a deadline is woken up for more than ``tolerance``
            late.
        tolerance: The allowed lateness in clock seconds, ``>= 0``.

    Raises:
        InvalidInputError: A time or factor is not finite or out of range.
    """

    __slots__ = ("_clock_origin", "_factor", "_strict", "_tolerance", "_wall_origin", "max_lag_s")

    def __init__(
        self,
        *,
        initial_time: float = 0.0,
        factor: float = 1.0,
        strict: bool = False,
        tolerance: float = DEFAULT_TOLERANCE_S,
    ) -> None:
        self._clock_origin = _check("initial_time", initial_time, positive=False)
        self._factor = _check("factor", factor, positive=True)
        self._tolerance = _check("tolerance", tolerance, positive=False)
        self._strict = bool(strict)
        self._wall_origin = time.perf_counter()
        self.max_lag_s = 0.0
        """The largest lateness seen by `sleep_until` or `check`, in clock seconds."""

    @property
    def factor(self) -> float:
        """Wall seconds per clock second."""
        return self._factor

    @property
    def strict(self) -> bool:
        """Whether a missed deadline raises."""
        return self._strict

    @property
    def tolerance(self) -> float:
        """The lateness a strict clock accepts, in clock seconds."""
        return self._tolerance

    def now(self) -> float:
        """The current clock time in seconds."""
        return self._clock_origin + (time.perf_counter() - self._wall_origin) / self._factor

    def wall_delay(self, until: float) -> float:
        """Wall seconds from now until clock time ``until`` (0 when it has passed)."""
        return max(0.0, (until - self.now()) * self._factor)

    def sync(self) -> None:
        """Re-anchors the clock: it continues from its current time, measured from this wall instant."""
        self._clock_origin = self.now()
        self._wall_origin = time.perf_counter()

    def check(self, deadline: float) -> float:
        """Records how late the caller is for ``deadline`` and, in strict mode, enforces the tolerance.

        Returns:
            The lag in clock seconds (0 when not late).

        Raises:
            DeadlineMissedError: Strict mode and the lag exceeds the tolerance; ``lag_s`` holds the lag.
        """
        lag = max(0.0, self.now() - deadline)
        self.max_lag_s = max(self.max_lag_s, lag)
        if self._strict and lag > self._tolerance:
            error = DeadlineMissedError(
                f"the runtime is {lag * 1e3:.1f} ms behind its deadline at clock time {deadline:.6f} s "
                f"(tolerance {self._tolerance * 1e3:.1f} ms); fix: lighten the machine's load, raise the "
                "tolerance, or run the clock non-strict"
            )
            error.lag_s = lag  # type: ignore[attr-defined]  # reason: the native exception type takes attributes
            raise error
        return lag

    async def sleep_until(self, deadline: float) -> float:
        """Sleeps until clock time ``deadline``.

        Returns:
            The lag at wake-up in clock seconds (see `check`).

        Raises:
            DeadlineMissedError: Strict mode and the wake-up came more than ``tolerance`` late.
        """
        delay = self.wall_delay(deadline)
        while delay > 0.0:
            await asyncio.sleep(delay)
            delay = self.wall_delay(deadline)
        return self.check(deadline)

    def __repr__(self) -> str:
        return (
            f"RealtimeClock(now={self.now():.6f}, factor={self._factor}, strict={self._strict}, "
            f"tolerance={self._tolerance})"
        )
