"""Continuation sizing and the last arrival's due time (`pdcore.runtime.cloud_stream.CloudStream`)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdcore.runtime.clock import RealtimeClock
from pdcore.runtime.cloud_stream import CloudStream
from pdcore.runtime.request_state import RequestState, RequestTerms

PACE = 0.045


def stream(*, max_tokens: int = 400, k_margin: float = 0.2, first_s: float | None = 0.08) -> CloudStream:
    terms = RequestTerms(
        mode="pd-device",
        max_tokens=max_tokens,
        max_tpot=0.05,
        min_tpot=0.0,
        pace_s=PACE,
        k_margin=k_margin,
        max_extensions=4,
    )
    state = RequestState(RealtimeClock(), "prompt", terms, None)

    def nothing() -> None:
        pass

    return CloudStream(
        state,
        None,
        expected_first_s=first_s,
        revise_handoff=nothing,
        part_ended=nothing,
        answer_completed=nothing,
    )


def arrive(cloud: CloudStream, times: list[float]) -> None:
    for at in times:
        cloud.on_text("x", at)


def test_without_append_cost_or_delay_it_asks_for_the_gap_over_the_pace() -> None:
    cloud = stream(first_s=0.0)
    arrive(cloud, [0.0, 0.02, 0.04])
    # the old rule: (estimate - covered) / pace, padded, plus one
    assert cloud.extension_tokens(1.0, 1.0, 1.45, 0.0) == math.ceil(10 * 1.2) + 1


def test_each_token_asked_for_also_costs_the_device_its_append() -> None:
    cloud = stream(first_s=0.0)
    arrive(cloud, [0.0, 0.02, 0.04])
    plain = cloud.extension_tokens(1.0, 1.0, 1.45, 0.0)
    costly = cloud.extension_tokens(1.0, 1.0, 1.45, 0.015)
    assert costly == math.ceil(0.45 / (PACE - 0.015) * 1.2) + 1
    assert costly > plain


def test_a_slow_first_token_asks_for_enough_tokens_to_arrive_in_time() -> None:
    cloud = stream(first_s=0.6)
    arrive(cloud, [0.0, 0.02, 0.04])
    cloud.state.timeline.cloud_sent_s = None  # the expected delay, not a measured one
    # the device is nearly due, but a continuation's first token takes 0.6 s: the buffer must cover it
    tokens = cloud.extension_tokens(1.0, 1.05, 1.06, 0.0)
    assert tokens == math.ceil((1.0 + 0.6 - 1.05) / (PACE - 0.02) * 1.2) + 1


def test_a_device_that_appends_no_faster_than_the_display_asks_for_the_rest() -> None:
    cloud = stream(max_tokens=300)
    arrive(cloud, [0.0, 0.02])
    assert cloud.extension_tokens(1.0, 1.0, 1.5, PACE) == 300


@settings(max_examples=80, deadline=None)
@given(
    behind=st.floats(min_value=0.0, max_value=5.0),
    per_token=st.floats(min_value=0.0, max_value=0.04),
    first=st.floats(min_value=0.0, max_value=1.0),
)
def test_the_tokens_asked_for_cover_the_device_and_the_last_arrival(
    behind: float, per_token: float, first: float
) -> None:
    cloud = stream(first_s=first, k_margin=0.0)
    arrive(cloud, [0.0, 0.02, 0.04])
    gap = cloud.median_gap()
    now, covered = 1.0, 1.2
    tokens = cloud.extension_tokens(now, covered, covered + behind, per_token)
    assert covered + tokens * PACE >= covered + behind + tokens * per_token - 1e-9
    assert covered + tokens * PACE >= now + cloud.first_token_s() + (tokens - 1) * gap - 1e-9


def test_the_last_arrival_is_due_at_the_streams_pace() -> None:
    cloud = stream(first_s=0.1)
    cloud.quota = 6
    cloud.open = True
    cloud.sent_at = 0.0
    assert cloud.last_arrival_due(0.0) == pytest.approx(0.1 + 5 * PACE), (
        "before any arrival: the expected delay"
    )
    arrive(cloud, [0.1, 0.12, 0.14])
    assert cloud.last_arrival_due(0.15) == pytest.approx(0.15 + 3 * 0.02)
    assert cloud.last_arrival_due(0.2) == pytest.approx(0.2 + 3 * 0.02), "never before now"
    arrive(cloud, [0.16, 0.18, 0.2])
    assert cloud.last_arrival_due(0.21) is None, "everything asked for has arrived"
