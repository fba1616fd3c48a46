"""The hand-off estimate: priced with the profile, scaled by the measured speed, credited mid-chunk."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdcore._core import LIVE_GUARD_STEPS
from pdcore.runtime.handoff import HandoffEstimator
from pdcore.runtime.testing import FakeEngine

PROFILE = FakeEngine("x", prefill_token_s=0.01, call_s=0.0, decode_s=0.02).profile()
"""Prefill 10 ms per token (linear), decode 20 ms per token."""


def estimator(**options: float) -> HandoffEstimator:
    return HandoffEstimator(
        PROFILE, 512, 2048, started_at=options.pop("started_at", 0.0), prompt_chunk_tokens=128, **options
    )


def test_the_first_estimate_is_the_profiles() -> None:
    assert estimator().estimate(0.0, 0, 0, 0) == pytest.approx(PROFILE.prefill_s(512))


def test_time_inside_the_current_chunk_does_not_move_the_estimate() -> None:
    handoff = estimator()
    first = handoff.estimate(0.0, 0, 0, 0)
    chunk = float(PROFILE.prefill_s(128))
    # a cloud token arrives halfway through the first chunk: nothing new is known about the device
    assert handoff.estimate(0.5 * chunk, 0, 0, 0) == pytest.approx(first)
    # the chunk overruns its price by 0.3 s: the estimate moves later by the overrun
    assert handoff.estimate(chunk + 0.3, 0, 0, 0) == pytest.approx(first + 0.3)


def test_a_progress_report_re_anchors_and_scales_by_the_measured_speed() -> None:
    handoff = estimator()
    chunk = float(PROFILE.prefill_s(128))
    handoff.observe_prompt(128, 128, 2.0 * chunk, at=2.0 * chunk)  # twice as slow as the profile
    ratio = handoff.ratio
    assert ratio is not None
    assert 1.0 < ratio < 2.0, "blended with the prior"
    left = float(PROFILE.prefill_s(512) - PROFILE.prefill_s(128))
    assert handoff.estimate(2.0 * chunk, 128, 128, 0) == pytest.approx(2.0 * chunk + ratio * left)


def test_the_append_phase_credits_the_current_append_chunk() -> None:
    handoff = estimator(append_chunk_tokens=32)
    handoff.observe_prompt(512, 512, float(PROFILE.prefill_s(512)), at=10.0)
    first = handoff.estimate(10.0, 512, 512, 64)
    assert first is not None
    assert handoff.estimate(10.05, 512, 512, 64) == pytest.approx(first)


@settings(max_examples=200, deadline=None)
@given(
    started=st.floats(min_value=0.0, max_value=100.0),
    done=st.integers(min_value=0, max_value=512),
    tokens_left=st.integers(min_value=0, max_value=300),
    waits=st.lists(st.floats(min_value=0.0, max_value=5.0), min_size=1, max_size=10),
)
def test_the_estimate_never_moves_earlier_while_nothing_is_reported(
    started: float, done: int, tokens_left: int, waits: list[float]
) -> None:
    handoff = estimator(started_at=started)
    context = max(done, 512) if done == 512 else 0
    now = started
    previous = handoff.estimate(now, done, context, tokens_left)
    assert previous is not None
    assert previous >= now
    for wait in waits:
        now += wait
        estimate = handoff.estimate(now, done, context, tokens_left)
        assert estimate is not None
        assert estimate >= previous - 1e-9
        assert estimate >= now
        previous = estimate


def test_the_guard_is_one_decode_step_at_the_measured_speed() -> None:
    handoff = estimator()
    assert handoff.guard(512, 10) == pytest.approx(LIVE_GUARD_STEPS * PROFILE.decode_tpot_s(522))
    chunk = float(PROFILE.prefill_s(128))
    handoff.observe_prompt(128, 128, 3.0 * chunk, at=3.0 * chunk)
    ratio = handoff.ratio
    assert ratio is not None
    assert handoff.guard(512, 10) == pytest.approx(LIVE_GUARD_STEPS * ratio * PROFILE.decode_tpot_s(522))
    assert HandoffEstimator(None, 100, 400).guard(100, 0) == 0.0, "nothing measured, no profile: no guard"
