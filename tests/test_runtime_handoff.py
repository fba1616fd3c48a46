"""The hand-off estimate: priced with the profile, scaled by the measured speed, credited mid-chunk."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdcore._core import LIVE_GUARD_STEPS, PRIOR_SPREAD_CALLS, SPREAD_Z
from pdcore.exceptions import InvalidInputError
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


def test_the_guard_is_two_decode_steps_and_the_spread_of_the_exposed_calls() -> None:
    handoff = estimator()
    assert handoff.spread == 0.0, "nothing measured and no prior: no spread"
    assert handoff.guard(512, 10) == pytest.approx(LIVE_GUARD_STEPS * PROFILE.decode_tpot_s(522))
    chunk = float(PROFILE.prefill_s(128))
    handoff.observe_prompt(128, 128, 3.0 * chunk, at=3.0 * chunk)
    ratio = handoff.ratio
    assert ratio is not None
    # one call at three times its price: a relative error of 2, blended with the zero prior's 8 calls
    spread = (4.0 / (PRIOR_SPREAD_CALLS + 1.0)) ** 0.5
    assert handoff.spread == pytest.approx(spread)
    assert handoff.measured_spread == pytest.approx((2.0, 1))
    step = PROFILE.decode_tpot_s(522)
    exposed = PROFILE.cost.append_s(512.0, 10.0) + step
    want = ratio * (LIVE_GUARD_STEPS * step + SPREAD_Z * spread * exposed)
    assert handoff.guard(512, 10) == pytest.approx(want)
    wider = estimator(prior_spread=0.5)
    assert wider.guard(512, 10) > estimator().guard(512, 10), "a learned spread widens the first guard"
    assert HandoffEstimator(None, 100, 400).guard(100, 0) == 0.0, "nothing measured, no profile: no guard"


@settings(max_examples=60, deadline=None)
@given(
    errors=st.lists(st.floats(min_value=0.2, max_value=5.0), min_size=1, max_size=12),
    prior=st.floats(min_value=0.0, max_value=2.0),
)
def test_the_spread_is_the_rms_of_relative_errors_blended_with_the_prior(
    errors: list[float], prior: float
) -> None:
    handoff = estimator(prior_spread=prior)
    squares = 0.0
    done = 0
    for factor in errors:
        ratio = handoff.ratio
        assert ratio is not None
        price = float(PROFILE.prefill_s(done + 64) - PROFILE.prefill_s(done))
        handoff.observe_prompt(done + 64, 64, factor * ratio * price, at=float(done))
        squares += (factor - 1.0) ** 2
        done += 64
    n = len(errors)
    assert handoff.measured_spread == pytest.approx(((squares / n) ** 0.5, n))
    blended = ((prior**2 * PRIOR_SPREAD_CALLS + squares) / (PRIOR_SPREAD_CALLS + n)) ** 0.5
    assert handoff.spread == pytest.approx(blended)
    assert handoff.guard(done, 10) >= LIVE_GUARD_STEPS * (handoff.ratio or 0.0) * PROFILE.decode_tpot_s(
        done + 10
    )


def test_a_trickled_token_costs_a_call_and_a_chunked_one_its_share() -> None:
    handoff = estimator()
    step = handoff.append_step(700)
    share = handoff.append_per_token(700)
    assert step == pytest.approx(PROFILE.cost.append_s(700.0, 1.0))
    assert share == pytest.approx(PROFILE.cost.append_s(700.0, 32.0) / 32.0)
    assert step is not None
    assert share is not None
    assert share <= step
    assert HandoffEstimator(None, 100, 400).append_step(100) is None, "nothing measured, no profile"
    with pytest.raises(InvalidInputError, match="prior_spread"):
        estimator(prior_spread=float("nan"))
