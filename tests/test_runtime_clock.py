"""The real-time clock: speed factor, strict deadlines with the lag, re-sync."""

from __future__ import annotations

import asyncio
import time

import pytest

from pdcore import DeadlineMissedError, InvalidInputError
from pdcore.runtime.clock import RealtimeClock


def test_now_starts_at_the_initial_time_and_never_decreases() -> None:
    clock = RealtimeClock(initial_time=5.0)
    readings = [clock.now() for _ in range(1000)]
    assert readings[0] >= 5.0
    assert readings == sorted(readings)


def test_factor_scales_clock_time_onto_wall_time() -> None:
    clock = RealtimeClock(factor=0.1)
    started = time.perf_counter()
    lag = asyncio.run(clock.sleep_until(clock.now() + 1.0))
    wall = time.perf_counter() - started
    assert 0.09 <= wall < 0.5
    assert lag >= 0.0
    assert clock.wall_delay(clock.now() + 2.0) == pytest.approx(0.2, abs=0.01)


def test_sleep_until_returns_no_earlier_than_the_deadline() -> None:
    clock = RealtimeClock()
    deadline = clock.now() + 0.03
    asyncio.run(clock.sleep_until(deadline))
    assert clock.now() >= deadline


def test_strict_clock_raises_with_the_lag() -> None:
    clock = RealtimeClock(strict=True, tolerance=0.01)
    deadline = clock.now()
    time.sleep(0.05)
    with pytest.raises(DeadlineMissedError, match="behind its deadline") as raised:
        clock.check(deadline)
    assert raised.value.lag_s >= 0.05  # type: ignore[attr-defined]
    assert clock.max_lag_s >= 0.05


def test_relaxed_clock_records_the_lag_without_raising() -> None:
    clock = RealtimeClock()
    deadline = clock.now()
    time.sleep(0.02)
    assert clock.check(deadline) >= 0.02
    assert clock.max_lag_s >= 0.02


def test_sync_forgives_a_lag_accumulated_while_idle() -> None:
    clock = RealtimeClock(strict=True, tolerance=0.01, factor=0.5)
    time.sleep(0.05)
    frozen = clock.now()
    clock.sync()
    assert clock.now() == pytest.approx(frozen, abs=0.005)
    deadline = clock.now() + 0.01
    asyncio.run(clock.sleep_until(deadline))


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"factor": 0.0}, "factor"),
        ({"factor": float("nan")}, "factor"),
        ({"initial_time": -1.0}, "initial_time"),
        ({"tolerance": -0.1}, "tolerance"),
    ],
)
def test_bad_settings_are_rejected(options: dict[str, float], name: str) -> None:
    with pytest.raises(InvalidInputError, match=name):
        RealtimeClock(**options)  # type: ignore[arg-type]
