"""Properties of ``pdcore.EventLoop``: (time, priority, insertion) order, determinism, ``step(until=)``.

Times are generated on the integer-nanosecond grid, so the model below (a heapq of integer keys) predicts
every popped time exactly: the loop reports ``ns / 1e9`` as a float, computed the same way.
"""

from __future__ import annotations

import heapq
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import pdcore

NS = 1_000_000_000

times_ns = st.integers(0, 50)  # a small range, so equal times are common
priorities = st.integers(-2, 2)


def drain(loop: pdcore.EventLoop) -> list[tuple[float, Any]]:
    out = []
    while (ev := loop.step()) is not None:
        out.append(ev)
    return out


@given(st.lists(st.tuples(times_ns, priorities), max_size=300))
def test_events_pop_by_time_then_priority_then_insertion(events: list[tuple[int, int]]) -> None:
    loop = pdcore.EventLoop()
    seqs = [loop.schedule(t / 1e9, i, priority=p) for i, (t, p) in enumerate(events)]
    assert seqs == list(range(len(events)))
    assert len(loop) == loop.pending == len(events)
    expected = sorted(range(len(events)), key=lambda i: (events[i][0], events[i][1], i))
    popped = drain(loop)
    assert [i for _, i in popped] == expected
    assert [t for t, _ in popped] == [events[i][0] / 1e9 for i in expected]
    assert loop.processed == len(events)
    assert loop.pending == 0
    if events:
        assert loop.now == max(t for t, _ in events) / 1e9


def simulate(seed_events: list[tuple[int, int]], horizon_ns: int) -> list[tuple[float, Any, float]]:
    """A small program: each event schedules follow-ups with ties; returns the trace."""
    loop = pdcore.EventLoop()
    for i, (t, p) in enumerate(seed_events):
        loop.schedule(t / 1e9, ("seed", i), priority=p)
    trace = []
    while (ev := loop.step(until=horizon_ns / 1e9)) is not None:
        t, payload = ev
        trace.append((t, payload, loop.now))
        depth = payload[1] if payload[0] == "child" else 0
        if depth < 3:
            loop.schedule_in(0.0, ("child", depth + 1), priority=1)
            loop.schedule_in(7e-9, ("child", depth + 1), priority=-1)
            loop.schedule(t, ("child", depth + 1), priority=0)
    trace.append((math.nan, "end", loop.now))
    return trace


@given(st.lists(st.tuples(times_ns, priorities), max_size=20), st.integers(0, 100))
def test_two_identical_runs_give_identical_traces(seed_events: list[tuple[int, int]], horizon: int) -> None:
    first = simulate(seed_events, horizon)
    second = simulate(seed_events, horizon)
    assert repr(first) == repr(second)


def test_scheduling_in_the_past_is_refused_naming_the_argument() -> None:
    loop = pdcore.EventLoop()
    loop.schedule(2.0, "a")
    assert loop.step() == (2.0, "a")
    with pytest.raises(
        pdcore.InvalidInputError, match=r"^at = 1\.000000000 s is before the loop's current time"
    ) as info:
        loop.schedule(1.0, "late")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, pdcore.PdcoreError)
    assert loop.pending == 0
    assert loop.schedule(2.0, "now is fine") == 1  # a refused call takes no sequence number
    loop.step(until=5.0)
    loop.step(until=9.0)
    assert loop.now == 9.0
    with pytest.raises(pdcore.InvalidInputError, match=r"^at = "):
        loop.schedule(8.0, "before until")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -1.0, 1e12])
def test_bad_times_are_refused_naming_the_argument(bad: float) -> None:
    loop = pdcore.EventLoop()
    with pytest.raises(pdcore.InvalidInputError, match=r"^at is "):
        loop.schedule(bad, "x")
    with pytest.raises(pdcore.InvalidInputError, match=r"^delay is "):
        loop.schedule_in(bad, "x")
    with pytest.raises(pdcore.InvalidInputError, match=r"^until is "):
        loop.step(until=bad)
    assert (loop.pending, loop.now) == (0, 0.0)


def test_step_until_advances_now_when_nothing_is_due() -> None:
    loop = pdcore.EventLoop()
    assert loop.step() is None
    assert loop.now == 0.0
    assert loop.step(until=1.5) is None
    assert loop.now == 1.5
    loop.schedule(3.0, "x")
    assert loop.peek() == 3.0
    assert loop.step(until=2.0) is None
    assert loop.now == 2.0
    assert loop.step(until=1.0) is None  # an earlier `until` never moves time back
    assert loop.now == 2.0
    assert loop.step(until=3.0) == (3.0, "x")  # due exactly at `until`
    assert loop.now == 3.0
    assert loop.peek() is None
    assert loop.step() is None
    assert loop.now == 3.0


def test_schedule_in_is_relative_to_now_and_priority_is_keyword_only() -> None:
    loop = pdcore.EventLoop()
    loop.step(until=1.0)
    loop.schedule_in(0.5, "b", priority=1)
    loop.schedule_in(0.5, "a", priority=-1)
    assert drain(loop) == [(1.5, "a"), (1.5, "b")]
    with pytest.raises(TypeError):
        loop.schedule(2.0, "c", 0)  # type: ignore[misc]
    assert repr(loop) == "EventLoop(now=1.5, pending=0)"


class LoopMachine(RuleBasedStateMachine):
    """Random interleavings of schedule, schedule_in and step(until=) against a heapq model."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = pdcore.EventLoop()
        self.heap: list[tuple[int, int, int, int]] = []
        self.now = 0
        self.seq = 0
        self.processed = 0

    def _push(self, at: int, priority: int) -> None:
        heapq.heappush(self.heap, (at, priority, self.seq, self.seq))
        self.seq += 1

    @rule(offset=times_ns, priority=priorities)
    def schedule(self, offset: int, priority: int) -> None:
        at = self.now + offset
        assert self.loop.schedule(at / 1e9, self.seq, priority=priority) == self.seq
        self._push(at, priority)

    @rule(delay=times_ns, priority=priorities)
    def schedule_in(self, delay: int, priority: int) -> None:
        assert self.loop.schedule_in(delay / 1e9, self.seq, priority=priority) == self.seq
        self._push(self.now + delay, priority)

    @rule(back=st.integers(1, 50))
    def schedule_in_the_past(self, back: int) -> None:
        if self.now >= back:
            with pytest.raises(pdcore.InvalidInputError):
                self.loop.schedule((self.now - back) / 1e9, "never")

    @rule(offset=st.one_of(st.none(), st.integers(-20, 50)))
    def step(self, offset: int | None) -> None:
        # `until` relative to now, sometimes before it
        limit = None if offset is None else max(0, self.now + offset)
        got = self.loop.step() if limit is None else self.loop.step(until=limit / 1e9)
        if self.heap and (limit is None or self.heap[0][0] <= limit):
            at, _, _, payload = heapq.heappop(self.heap)
            self.now = at
            self.processed += 1
            assert got == (at / 1e9, payload)
        else:
            assert got is None
            if limit is not None and limit > self.now:
                self.now = limit

    @invariant()
    def matches_the_model(self) -> None:
        assert self.loop.now == self.now / 1e9
        assert (self.loop.pending, self.loop.processed) == (len(self.heap), self.processed)
        assert self.loop.peek() == (self.heap[0][0] / 1e9 if self.heap else None)


TestLoopMachine = LoopMachine.TestCase
