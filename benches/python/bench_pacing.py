"""FFI benchmarks of the speed controller: native ``pace`` and ``SpeedController`` against pure Python.

Run as smoke tests by default (``--benchmark-disable``: each function runs once); measure with
``python -m pytest benches/python --benchmark-enable``. Every benchmark also checks that the native and
pure-Python versions compute identical schedules.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import baseline
import pdcore

MIN_TPOT = 0.005
MAX_TPOT = 0.05


def make_stream(n: int, seed: int) -> tuple[npt.NDArray[np.float64], float]:
    """Arrival gaps uniform in 0..40 ms on the nanosecond grid, hand-off at 30 ms a token."""
    rng = np.random.default_rng(seed)
    ns = 1_000_000_000 + np.cumsum(rng.integers(0, 40_000_000, size=n, dtype=np.int64))
    arrivals = ns / 1e9
    handoff = float((int(ns[0]) + 30_000_000 * n) / 1e9) if n else 1.0
    return arrivals, handoff


def sample_streams() -> list[tuple[npt.NDArray[np.float64], float]]:
    """Streams that exercise every branch: bursts, late tokens, hand-offs early, late and far off."""
    out = [make_stream(n, seed) for seed, n in enumerate([0, 1, 2, 7, 100, 1000])]
    a, _ = make_stream(200, 42)
    burst = np.full(50, 3.0)
    out += [(a, h) for h in (0.0, float(a[0]), float(a[-1]), float(a[-1]) + 0.5, 1e4)]
    out += [(burst, h) for h in (0.0, 3.0, 3.1, 3.0 + 50 * MAX_TPOT, 100.0)]
    return out


def assert_same_schedules() -> None:
    for arrivals, handoff in sample_streams():
        kw: dict[str, Any] = {"handoff_at": handoff, "min_tpot_s": MIN_TPOT, "max_tpot_s": MAX_TPOT}
        native = pdcore.pace(arrivals, **kw).tolist()
        assert native == baseline.pace(arrivals.tolist(), **kw)
        sc = pdcore.SpeedController(
            min_tpot_s=MIN_TPOT, max_tpot_s=MAX_TPOT, expected_tokens=len(arrivals), handoff_at=handoff
        )
        py = baseline.SpeedController(
            min_tpot_s=MIN_TPOT, max_tpot_s=MAX_TPOT, expected_tokens=len(arrivals), handoff_at=handoff
        )
        streamed_native = stream_through(sc, arrivals.tolist())
        assert streamed_native == stream_through(py, arrivals.tolist())
        assert streamed_native == native


def stream_through(sc: Any, arrivals: list[float]) -> list[float]:
    """Per token: ``push``, ``next_due``, ``mark_shown`` (the live runtime's calls)."""
    shown = []
    for a in arrivals:
        sc.push(a)
        due = sc.next_due()
        shown.append(sc.mark_shown())
        assert shown[-1] == due
    return shown


@pytest.mark.benchmark(group="pace")
def test_pace_native_1m(benchmark: Any) -> None:
    arrivals, handoff = make_stream(1_000_000, 1)
    out = benchmark(pdcore.pace, arrivals, handoff_at=handoff, min_tpot_s=MIN_TPOT, max_tpot_s=MAX_TPOT)
    assert out.shape == arrivals.shape
    head = arrivals[:2000]
    native = pdcore.pace(head, handoff_at=handoff, min_tpot_s=MIN_TPOT, max_tpot_s=MAX_TPOT).tolist()
    assert native == baseline.pace(
        head.tolist(), handoff_at=handoff, min_tpot_s=MIN_TPOT, max_tpot_s=MAX_TPOT
    )
    assert_same_schedules()


@pytest.mark.benchmark(group="pace")
def test_pace_python_20k(benchmark: Any) -> None:
    arrivals, handoff = make_stream(20_000, 1)
    values = arrivals.tolist()
    out = benchmark(baseline.pace, values, handoff_at=handoff, min_tpot_s=MIN_TPOT, max_tpot_s=MAX_TPOT)
    assert out == pdcore.pace(arrivals, handoff_at=handoff, min_tpot_s=MIN_TPOT, max_tpot_s=MAX_TPOT).tolist()


@pytest.mark.benchmark(group="pace")
def test_pace_python_ns_rule_20k(benchmark: Any) -> None:
    arrivals, handoff = make_stream(20_000, 1)
    ns = np.rint(arrivals * 1e9).astype(np.int64).tolist()
    h = round(handoff * 1e9)
    lo, hi = round(MIN_TPOT * 1e9), round(MAX_TPOT * 1e9)
    out = benchmark(baseline.pace_ns, ns, h, lo, hi)
    native = pdcore.pace(arrivals, handoff_at=handoff, min_tpot_s=MIN_TPOT, max_tpot_s=MAX_TPOT)
    assert out == np.rint(native * 1e9).astype(np.int64).tolist()


def controller_run(cls: Any, arrivals: list[float], handoff: float) -> list[float]:
    sc = cls(min_tpot_s=MIN_TPOT, max_tpot_s=MAX_TPOT, expected_tokens=len(arrivals), handoff_at=handoff)
    return stream_through(sc, arrivals)


@pytest.mark.benchmark(group="controller")
@pytest.mark.parametrize("impl", ["native", "python"])
def test_controller_push_next_due_mark_shown_1k(benchmark: Any, impl: str) -> None:
    arrivals, handoff = make_stream(1000, 2)
    values = arrivals.tolist()
    cls = pdcore.SpeedController if impl == "native" else baseline.SpeedController
    shown = benchmark(controller_run, cls, values, handoff)
    assert (
        shown == pdcore.pace(arrivals, handoff_at=handoff, min_tpot_s=MIN_TPOT, max_tpot_s=MAX_TPOT).tolist()
    )
    assert_same_schedules()
