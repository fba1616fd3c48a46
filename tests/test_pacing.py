"""Properties of the speed controller (``pdcore.pace`` and ``pdcore.SpeedController``).

The invariants I1-I6 are those stated in ``rust/src/pacing.rs``. Times are generated on the integer
nanosecond grid and sent as ``ns / 1e9`` seconds; results are read back with ``rint(s * 1e9)``, so every
invariant is checked exactly, in integer nanoseconds.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import pdcore
from pdcore import _core

NS = 1_000_000_000


def secs(ns: int) -> float:
    return ns / 1e9


def to_ns(s: npt.ArrayLike) -> list[int]:
    return [int(x) for x in np.rint(np.asarray(s, dtype=np.float64) * 1e9).astype(np.int64)]


@dataclass(frozen=True)
class Stream:
    """One pacing problem in integer nanoseconds."""

    arrivals: tuple[int, ...]
    handoff: int
    min_tpot: int
    max_tpot: int

    @property
    def n(self) -> int:
        return len(self.arrivals)

    def arrivals_secs(self) -> npt.NDArray[np.float64]:
        return np.array([secs(a) for a in self.arrivals], dtype=np.float64)

    def kwargs(self) -> dict[str, float]:
        return {
            "handoff_at": secs(self.handoff),
            "min_tpot_s": secs(self.min_tpot),
            "max_tpot_s": secs(self.max_tpot),
        }

    def pace(self, arrivals: tuple[int, ...] | None = None) -> list[int]:
        a = self.arrivals if arrivals is None else arrivals
        out = pdcore.pace(np.array([secs(t) for t in a], dtype=np.float64), **self.kwargs())
        assert out.dtype == np.float64
        assert out.shape == (len(a),)
        return to_ns(out)


def rule_gap(prev: int, handoff: int, gaps_left: int, min_tpot: int, max_tpot: int) -> int:
    """``g = clamp(floor((h - prev) / gaps_left), min_tpot, max_tpot)``, as documented."""
    return min(max((handoff - prev) // gaps_left, min_tpot), max_tpot)


def reference(s: Stream) -> list[int]:
    """The documented rule, written out directly."""
    out: list[int] = []
    for i, a in enumerate(s.arrivals):
        if i == 0:
            out.append(a)
        else:
            prev = out[-1]
            out.append(max(a, prev + rule_gap(prev, s.handoff, s.n - i + 1, s.min_tpot, s.max_tpot)))
    return out


tpot_bounds = st.tuples(
    st.one_of(st.just(0), st.integers(0, 50_000_000)),
    st.integers(1, 200_000_000),
).map(lambda t: (t[0], t[0] + t[1]))


@st.composite
def streams(draw: st.DrawFn, max_len: int = 60) -> Stream:
    n = draw(st.integers(1, max_len))
    start = draw(st.integers(0, NS))
    # bursts (gap 0), steady streams and stalls longer than max_tpot all occur
    gap = st.one_of(st.just(0), st.integers(0, 20_000_000), st.integers(0, 400_000_000))
    arrivals = [start]
    for _ in range(n - 1):
        arrivals.append(arrivals[-1] + draw(gap))
    min_tpot, max_tpot = draw(tpot_bounds)
    # hand-offs anywhere, and often where the even share falls between the bounds
    offset = draw(st.one_of(st.integers(-NS, 20 * NS), st.integers(n * min_tpot, n * max_tpot)))
    handoff = max(0, start + offset)
    return Stream(tuple(arrivals), handoff, min_tpot, max_tpot)


# --- the invariants -------------------------------------------------------------------------------


@given(streams())
def test_i1_first_token_is_shown_on_arrival(s: Stream) -> None:
    assert s.pace()[0] == s.arrivals[0]


@given(streams())
def test_i2_never_before_arrival_and_never_faster_than_min_tpot(s: Stream) -> None:
    out = s.pace()
    for i in range(s.n):
        assert out[i] >= s.arrivals[i], i
        if i:
            assert out[i] - out[i - 1] >= s.min_tpot, i


@given(streams())
def test_i3_gap_at_most_max_tpot_unless_the_token_is_late(s: Stream) -> None:
    out = s.pace()
    for i in range(1, s.n):
        if s.arrivals[i] <= out[i - 1] + s.max_tpot:
            assert out[i] - out[i - 1] <= s.max_tpot, i
        else:
            assert out[i] == s.arrivals[i], i


@given(streams(), st.data())
def test_i4_later_arrivals_do_not_move_earlier_display_times(s: Stream, data: st.DataObject) -> None:
    assume(s.n >= 2)
    out = s.pace()
    cut = data.draw(st.integers(1, s.n - 1), label="cut")
    # new arrivals from `cut` on: any non-decreasing values not before a[cut - 1]
    lo = s.arrivals[cut - 1]
    tail = sorted(data.draw(st.lists(st.integers(lo, lo + 5 * NS), min_size=s.n - cut, max_size=s.n - cut)))
    changed = s.arrivals[:cut] + tuple(tail)
    out2 = s.pace(changed)
    for i in range(s.n):
        # every arrival that changed comes after s[i], before and after the change
        if min(s.arrivals[cut], changed[cut]) > out[i]:
            assert out2[i] == out[i], i


@given(streams(), st.data())
def test_i4_a_buffered_tokens_exact_arrival_time_does_not_matter(s: Stream, data: st.DataObject) -> None:
    out = s.pace()
    buffered = [i for i in range(1, s.n) if s.arrivals[i] < out[i]]
    assume(buffered)
    i = data.draw(st.sampled_from(buffered), label="i")
    # move a[i] anywhere in [a[i-1], s[i]], keeping later arrivals non-decreasing
    x = data.draw(st.integers(s.arrivals[i - 1], out[i]), label="new a[i]")
    changed = (*s.arrivals[:i], x, *(max(a, x) for a in s.arrivals[i + 1 :]))
    assert s.pace(changed)[: i + 1] == out[: i + 1]


@st.composite
def stretch_cases(draw: st.DrawFn) -> Stream:
    n = draw(st.integers(1, 80))
    min_tpot = draw(st.one_of(st.just(0), st.integers(0, 20_000_000)))
    max_tpot = min_tpot + draw(st.integers(1, 100_000_000))
    a0 = draw(st.integers(0, NS))
    # the precondition n * max_tpot >= h - a0, often at its boundary
    span = draw(st.one_of(st.just(n * max_tpot), st.just(0), st.integers(0, n * max_tpot)))
    handoff = a0 + span
    p = min(max(span // n, min_tpot), max_tpot)
    offsets = sorted(draw(st.one_of(st.just(i * p), st.integers(0, i * p))) for i in range(n))
    return Stream(tuple(a0 + o for o in offsets), handoff, min_tpot, max_tpot)


@given(stretch_cases())
def test_i5_stretch_keeps_every_gap_within_max_tpot_under_its_precondition(s: Stream) -> None:
    a0, n = s.arrivals[0], s.n
    p = min(max((s.handoff - a0) // n, s.min_tpot), s.max_tpot)
    assert n * s.max_tpot >= s.handoff - a0
    assert all(a <= a0 + i * p for i, a in enumerate(s.arrivals))
    out = s.pace()
    for i in range(1, n):
        assert out[i] - out[i - 1] <= s.max_tpot, i
    assert s.handoff - out[-1] <= s.max_tpot


@given(streams())
def test_i6_one_display_time_per_token_in_order(s: Stream) -> None:
    out = s.pace()
    assert len(out) == s.n
    assert all(b >= a for a, b in itertools.pairwise(out))


@given(streams())
def test_schedule_is_the_documented_rule(s: Stream) -> None:
    assert s.pace() == reference(s)


# --- streaming ------------------------------------------------------------------------------------


def controller(s: Stream, *, expected: bool = True, handoff: bool = True) -> pdcore.SpeedController:
    """A controller for `s`, told its length and hand-off unless asked not to."""
    return pdcore.SpeedController(
        min_tpot_s=secs(s.min_tpot),
        max_tpot_s=secs(s.max_tpot),
        expected_tokens=s.n if expected else None,
        handoff_at=secs(s.handoff) if handoff else None,
    )


@given(streams(), st.data())
def test_streaming_controller_equals_batch_pace(s: Stream, data: st.DataObject) -> None:
    sc = controller(s)
    shown: list[int] = []
    pushed = 0
    while len(shown) < s.n:
        # any interleaving of arrivals and displays, a token being shown only once it is buffered
        if pushed < s.n and (sc.buffered == 0 or data.draw(st.booleans())):
            sc.push(secs(s.arrivals[pushed]))
            pushed += 1
            continue
        due = sc.next_due()
        assert due is not None
        got = sc.mark_shown()
        assert got == due
        shown.append(to_ns([got])[0])
    assert shown == s.pace()
    assert (sc.received, sc.shown, sc.buffered) == (s.n, s.n, 0)
    assert sc.next_due() is None


@given(streams())
def test_without_expected_length_a_fully_buffered_stream_matches_pace(s: Stream) -> None:
    # with every token buffered, `buffered + 1` is exactly the `n - i + 1` of the rule
    sc = controller(s, expected=False)
    for a in s.arrivals:
        sc.push(secs(a))
    assert to_ns([sc.mark_shown() for _ in range(s.n)]) == s.pace()


@given(streams(), st.data())
def test_set_handoff_revises_only_unshown_tokens(s: Stream, data: st.DataObject) -> None:
    k = data.draw(st.integers(1, s.n), label="shown before the revision")
    h2 = data.draw(st.integers(0, s.arrivals[-1] + 20 * NS), label="revised hand-off")
    sc = controller(s)
    for a in s.arrivals:
        sc.push(secs(a))
    before = to_ns([sc.mark_shown() for _ in range(k)])
    sc.set_handoff(secs(h2))
    assert sc.handoff_at == secs(h2)
    after = to_ns([sc.mark_shown() for _ in range(s.n - k)])
    assert before == s.pace()[:k]
    expected = list(before)
    for i in range(k, s.n):
        prev = expected[-1]
        gap = rule_gap(prev, h2, s.n - i + 1, s.min_tpot, s.max_tpot)
        expected.append(max(s.arrivals[i], prev + gap))
    assert before + after == expected


@given(streams(), st.data())
def test_set_expected_revises_the_gaps_left(s: Stream, data: st.DataObject) -> None:
    k = data.draw(st.integers(1, s.n), label="shown before the revision")
    n2 = data.draw(st.integers(0, 2 * s.n), label="revised length")
    sc = controller(s, expected=False)
    for a in s.arrivals:
        sc.push(secs(a))
    out = to_ns([sc.mark_shown() for _ in range(k)])
    sc.set_expected(n2)
    assert sc.expected_tokens == n2
    assert out == s.pace()[:k]
    out += to_ns([sc.mark_shown() for _ in range(s.n - k)])
    expected = out[:k]
    for i in range(k, s.n):
        prev = expected[-1]
        # a stream longer than expected falls back to one gap left
        left = max(n2 - i, 0) + 1
        expected.append(max(s.arrivals[i], prev + rule_gap(prev, s.handoff, left, s.min_tpot, s.max_tpot)))
    assert out == expected


@given(streams())
def test_set_expected_to_the_length_before_the_first_display_matches_pace(s: Stream) -> None:
    sc = controller(s, expected=False)
    sc.set_expected(s.n)
    shown = []
    for a in s.arrivals:
        sc.push(secs(a))
        shown.append(sc.mark_shown())
    assert to_ns(shown) == s.pace()


@given(streams())
def test_without_handoff_the_controller_paces_at_max_tpot(s: Stream) -> None:
    sc = controller(s, handoff=False)
    assert sc.handoff_at is None
    shown: list[int] = []
    for a in s.arrivals:
        sc.push(secs(a))
        shown.append(to_ns([sc.mark_shown()])[0])
    expected = [s.arrivals[0]]
    for a in s.arrivals[1:]:
        expected.append(max(a, expected[-1] + s.max_tpot))
    assert shown == expected


def test_clearing_the_handoff_returns_to_max_tpot_pace() -> None:
    sc = pdcore.SpeedController(min_tpot_s=0.0, max_tpot_s=0.1, expected_tokens=4, handoff_at=0.4)
    for _ in range(4):
        sc.push(0.0)
    assert sc.mark_shown() == 0.0
    assert sc.next_due() == 0.1
    sc.set_handoff(10.0)
    assert sc.next_due() == 0.1  # clamped at max_tpot
    sc.set_handoff(0.0)
    assert sc.next_due() == 0.0  # clamped at min_tpot
    sc.set_handoff(None)
    assert sc.handoff_at is None
    assert sc.next_due() == 0.1


@given(streams())
def test_next_due_is_none_exactly_when_the_buffer_is_empty(s: Stream) -> None:
    sc = controller(s)
    assert sc.next_due() is None
    for a in s.arrivals:
        sc.push(secs(a))
        assert sc.next_due() is not None
        sc.mark_shown()
        assert sc.next_due() is None
    assert sc.last_shown is not None


def test_mark_shown_on_an_empty_buffer_is_a_state_error() -> None:
    sc = pdcore.SpeedController(min_tpot_s=0.0, max_tpot_s=0.1)
    with pytest.raises(pdcore.InvalidStateError, match="no token is buffered") as info:
        sc.mark_shown()
    assert isinstance(info.value, RuntimeError)
    assert isinstance(info.value, pdcore.PdcoreError)


@given(streams(), st.data())
def test_mark_shown_before_the_due_time_is_refused(s: Stream, data: st.DataObject) -> None:
    assume(s.n >= 2)
    sc = controller(s)
    sc.push(secs(s.arrivals[0]))
    sc.mark_shown()
    sc.push(secs(s.arrivals[1]))
    due = sc.next_due()
    assert due is not None
    due_ns = to_ns([due])[0]
    assume(due_ns > 0)
    early = data.draw(st.integers(0, due_ns - 1), label="early")
    with pytest.raises(pdcore.InvalidInputError, match=r"^at = .* is before the token's due time"):
        sc.mark_shown(at=secs(early))
    # the refused call changed nothing
    assert (sc.shown, sc.buffered, sc.next_due()) == (1, 1, due)


@given(streams(), st.data())
def test_a_late_display_is_accepted_and_later_gaps_count_from_it(s: Stream, data: st.DataObject) -> None:
    sc = controller(s)
    shown: list[int] = []
    for i, a in enumerate(s.arrivals):
        sc.push(secs(a))
        due = sc.next_due()
        assert due is not None
        due_ns = to_ns([due])[0]
        prev = shown[-1] if shown else None
        if prev is None:
            assert due_ns == a
        else:
            gap = rule_gap(prev, s.handoff, s.n - i + 1, s.min_tpot, s.max_tpot)
            assert due_ns == max(a, prev + gap)
        late = due_ns + data.draw(st.one_of(st.just(0), st.integers(0, NS)), label=f"lag {i}")
        assert to_ns([sc.mark_shown(at=secs(late))])[0] == late
        assert sc.last_shown == secs(late)
        shown.append(late)


def test_controller_reports_its_configuration() -> None:
    sc = pdcore.SpeedController(min_tpot_s=0.01, max_tpot_s=0.05, expected_tokens=3, handoff_at=1.5)
    assert (sc.min_tpot_s, sc.max_tpot_s, sc.expected_tokens, sc.handoff_at) == (0.01, 0.05, 3, 1.5)
    assert (sc.received, sc.shown, sc.buffered, sc.last_shown) == (0, 0, 0, None)
    assert "SpeedController(" in repr(sc)


# --- bad input ------------------------------------------------------------------------------------

OK = {"handoff_at": 1.0, "min_tpot_s": 0.0, "max_tpot_s": 0.1}


def assert_invalid_input(info: pytest.ExceptionInfo[BaseException]) -> None:
    assert isinstance(info.value, pdcore.InvalidInputError)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, pdcore.PdcoreError)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -1e-9, -1.0, 1e12])
@pytest.mark.parametrize("index", [0, 1, 4])
def test_bad_arrival_is_named_with_its_index(bad: float, index: int) -> None:
    a = np.linspace(0.0, 1.0, 5)
    a[index] = bad
    with pytest.raises(pdcore.InvalidInputError, match=rf"^arrivals\[{index}\] ") as info:
        pdcore.pace(a, **OK)
    assert_invalid_input(info)


@given(streams(max_len=30), st.data())
def test_decreasing_arrival_is_named_with_its_index(s: Stream, data: st.DataObject) -> None:
    assume(s.n >= 2 and s.arrivals[-1] > 0)
    a = list(s.arrivals)
    i = data.draw(st.integers(1, s.n - 1), label="index")
    assume(a[i - 1] > 0)
    a[i] = data.draw(st.integers(0, a[i - 1] - 1), label="earlier value")
    with pytest.raises(
        ValueError, match=rf"^arrivals\[{i}\] = .* is earlier than the previous arrival"
    ) as info:
        s.pace(tuple(a))
    assert_invalid_input(info)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"min_tpot_s": 0.1, "max_tpot_s": 0.1}, r"^max_tpot_s must be greater than min_tpot_s"),
        ({"min_tpot_s": 0.2, "max_tpot_s": 0.1}, r"^max_tpot_s must be greater than min_tpot_s"),
        ({"min_tpot_s": -0.1, "max_tpot_s": 0.1}, r"^min_tpot_s is negative"),
        ({"min_tpot_s": math.nan}, r"^min_tpot_s is NaN"),
        ({"max_tpot_s": math.inf}, r"^max_tpot_s is inf"),
        ({"handoff_at": math.nan}, r"^handoff_at is NaN"),
        ({"handoff_at": -1.0}, r"^handoff_at is negative"),
    ],
)
def test_bad_scalar_argument_is_named(kwargs: dict[str, float], pattern: str) -> None:
    with pytest.raises(pdcore.PdcoreError, match=pattern) as info:
        pdcore.pace([0.0, 0.1], **{**OK, **kwargs})
    assert_invalid_input(info)
    with pytest.raises(pdcore.InvalidInputError, match=pattern):
        pdcore.SpeedController(**{**OK, **kwargs})


def test_two_dimensional_input_is_refused_naming_the_argument() -> None:
    with pytest.raises(pdcore.InvalidInputError, match=r"^arrivals has shape \(2, 3\)") as info:
        pdcore.pace(np.zeros((2, 3)), **OK)
    assert_invalid_input(info)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0])
def test_controller_refuses_bad_times(bad: float) -> None:
    sc = pdcore.SpeedController(min_tpot_s=0.0, max_tpot_s=0.1)
    with pytest.raises(pdcore.InvalidInputError, match=r"^at is "):
        sc.push(bad)
    with pytest.raises(pdcore.InvalidInputError, match=r"^at is "):
        sc.set_handoff(bad)
    sc.push(0.0)
    with pytest.raises(pdcore.InvalidInputError, match=r"^at is "):
        sc.mark_shown(at=bad)
    assert (sc.received, sc.shown, sc.handoff_at) == (1, 0, None)


def test_controller_refuses_a_decreasing_arrival_naming_its_index() -> None:
    sc = pdcore.SpeedController(min_tpot_s=0.0, max_tpot_s=0.1)
    sc.push(1.0)
    sc.push(2.0)
    with pytest.raises(pdcore.InvalidInputError, match=r"\[2\] = 1\.000000000 s is earlier than"):
        sc.push(1.0)
    assert sc.received == 2


# --- input forms ----------------------------------------------------------------------------------


@pytest.mark.parametrize("pace", [pdcore.pace, _core.pace])
def test_empty_input_gives_an_empty_float64_array(pace: object) -> None:
    assert callable(pace)
    out = pace(np.zeros(0, dtype=np.float64), **OK)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.float64
    assert out.shape == (0,)
    assert pdcore.pace([], **OK).shape == (0,)


@given(streams(max_len=40), st.integers(2, 4))
def test_non_contiguous_input_gives_the_same_schedule(s: Stream, step: int) -> None:
    assume(s.n >= 2)
    a = s.arrivals_secs()
    wide = np.zeros(s.n * step, dtype=np.float64)
    wide[::step] = a
    view = wide[::step]
    assert not view.flags.c_contiguous
    column = np.asfortranarray(np.stack([a, a], axis=1))[0:, 1]
    expected = _core.pace(a, **s.kwargs())
    for arr in (view, column):
        np.testing.assert_array_equal(_core.pace(arr, **s.kwargs()), expected)
        np.testing.assert_array_equal(pdcore.pace(arr, **s.kwargs()), expected)
    np.testing.assert_array_equal(wide[::step], a)


def test_array_likes_are_converted_and_the_input_is_not_modified() -> None:
    a = np.array([0.0, 0.0, 0.0])
    out = pdcore.pace(a, handoff_at=0.3, min_tpot_s=0.0, max_tpot_s=0.2)
    assert out.tolist() == [0.0, 0.1, 0.2]
    assert a.tolist() == [0.0, 0.0, 0.0]
    assert not np.shares_memory(out, a)
    assert pdcore.pace([0, 0, 0], handoff_at=0.3, min_tpot_s=0.0, max_tpot_s=0.2).tolist() == out.tolist()
    f32 = np.zeros(3, dtype=np.float32)
    assert pdcore.pace(f32, handoff_at=0.3, min_tpot_s=0.0, max_tpot_s=0.2).tolist() == out.tolist()


def test_native_pace_wants_a_float64_vector() -> None:
    with pytest.raises(TypeError):
        _core.pace(np.zeros(3, dtype=np.float32), **OK)  # type: ignore[arg-type]
