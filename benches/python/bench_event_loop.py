"""FFI benchmarks of the event loop: ``pdcore.EventLoop`` driven from Python against a ``heapq`` loop.

The workload is the hold model: pop the earliest event, schedule one a random delay later, with ~1k or
~100k events pending. Every benchmark also checks that both loops pop the same events at the same times.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

import baseline
import pdcore

OPS = 10_000


def hold_inputs(pending: int, ops: int, seed: int) -> tuple[list[tuple[float, int]], list[tuple[float, int]]]:
    """Initial events and per-operation (delay, priority), on the nanosecond grid; ties do occur."""
    rng = np.random.default_rng(seed)
    initial = list(
        zip(
            (rng.integers(0, 2_000_000, size=pending) / 1e9).tolist(),
            rng.integers(0, 4, size=pending).tolist(),
            strict=True,
        )
    )
    steps = list(
        zip(
            (rng.integers(0, 2_000_000, size=ops) / 1e9).tolist(),
            rng.integers(0, 4, size=ops).tolist(),
            strict=True,
        )
    )
    return initial, steps


def fill(loop: Any, initial: list[tuple[float, int]]) -> Any:
    for i, (at, p) in enumerate(initial):
        loop.schedule(at, i, priority=p)
    return loop


def hold(loop: Any, steps: list[tuple[float, int]]) -> list[tuple[float, Any]]:
    """One pop and one ``schedule_in`` per step; returns what was popped."""
    popped = []
    step, schedule_in = loop.step, loop.schedule_in
    for delay, p in steps:
        ev = step()
        popped.append(ev)
        schedule_in(delay, ev[1], priority=p)
    return popped


def assert_same_order(pending: int) -> None:
    initial, steps = hold_inputs(pending, 2000, seed=7)
    native = hold(fill(pdcore.EventLoop(), initial), steps)
    python = hold(fill(baseline.HeapEventLoop(), initial), steps)
    assert native == python


@pytest.mark.benchmark(group="event_loop")
@pytest.mark.parametrize("pending", [1_000, 100_000])
@pytest.mark.parametrize("impl", ["native", "heapq"])
def test_event_loop_hold(benchmark: Any, impl: str, pending: int) -> None:
    initial, steps = hold_inputs(pending, OPS, seed=pending)
    cls = pdcore.EventLoop if impl == "native" else baseline.HeapEventLoop
    loop = fill(cls(), initial)
    popped = benchmark.pedantic(hold, args=(loop, steps), rounds=5, iterations=1)
    assert len(popped) == OPS
    assert loop.pending == pending
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(popped))
    assert_same_order(pending)
