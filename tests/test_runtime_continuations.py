"""Continuation sizing and the last arrival's due time (`pdcore.runtime.continuation`), and the cloud
stream that applies them (`pdcore.runtime.cloud_stream.CloudStream`)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdcore.runtime.clock import RealtimeClock
from pdcore.runtime.cloud_stream import CloudStream
from pdcore.runtime.continuation import (
    EXTENSION_LEAD_S,
    extension_due,
    extension_tokens,
    last_arrival_due,
    next_arrival_due,
)
from pdcore.runtime.request_state import RequestState, RequestTerms

PACE = 0.045


def tokens(now: float, covered: float, estimate: float, **options: Any) -> int:
    settings = {
        "per_token_s": 0.0,
        "pace_s": PACE,
        "gap_s": 0.02,
        "first_token_s": 0.0,
        "k_margin": 0.2,
        "max_tokens": 400,
    }
    settings.update(options)
    return extension_tokens(now, covered, estimate, **settings)


def test_without_append_cost_or_delay_it_asks_for_the_gap_over_the_pace() -> None:
    # the old rule: (estimate - covered) / pace, padded, plus one
    assert tokens(1.0, 1.0, 1.45) == math.ceil(10 * 1.2) + 1


def test_each_token_asked_for_also_costs_the_device_its_append() -> None:
    costly = tokens(1.0, 1.0, 1.45, per_token_s=0.015)
    assert costly == math.ceil(0.45 / (PACE - 0.015) * 1.2) + 1
    assert costly > tokens(1.0, 1.0, 1.45)


def test_a_slow_first_token_asks_for_enough_tokens_to_arrive_in_time() -> None:
    # the device is nearly due, but a continuation's first token takes 0.6 s: the buffer must cover it
    assert (
        tokens(1.0, 1.05, 1.06, first_token_s=0.6) == math.ceil((1.0 + 0.6 - 1.05) / (PACE - 0.02) * 1.2) + 1
    )


def test_a_device_that_appends_no_faster_than_the_display_asks_for_the_rest() -> None:
    assert tokens(1.0, 1.0, 1.5, per_token_s=PACE, max_tokens=300) == 300
    assert tokens(1.0, 1.0, 1.5, gap_s=PACE, max_tokens=300) == 300


@settings(max_examples=80, deadline=None)
@given(
    behind=st.floats(min_value=0.0, max_value=5.0),
    per_token=st.floats(min_value=0.0, max_value=0.04),
    first=st.floats(min_value=0.0, max_value=1.0),
    gap=st.floats(min_value=0.001, max_value=0.04),
)
def test_the_tokens_asked_for_cover_the_device_and_the_last_arrival(
    behind: float, per_token: float, first: float, gap: float
) -> None:
    now, covered = 1.0, 1.2
    n = tokens(
        now, covered, covered + behind, per_token_s=per_token, first_token_s=first, gap_s=gap, k_margin=0
    )
    assert covered + n * PACE >= covered + behind + n * per_token - 1e-9
    assert covered + n * PACE >= now + first + (n - 1) * gap - 1e-9


def test_a_continuation_is_due_only_near_the_end_of_the_buffer_and_behind_it() -> None:
    assert extension_due(1.0, 1.1, 1.5, pace_s=PACE, first_token_s=0.02)
    assert not extension_due(1.0, 1.0 + EXTENSION_LEAD_S + 0.1, 2.0, pace_s=PACE, first_token_s=0.0), "early"
    assert not extension_due(1.0, 1.1, 1.1 + PACE, pace_s=PACE, first_token_s=0.0), "within one gap"


def test_the_last_arrival_is_due_at_the_streams_pace() -> None:
    due = last_arrival_due(0.0, left=6, gap_s=PACE, sent_at=0.0, first_token_s=0.1, last_arrival=None)
    assert due == pytest.approx(0.1 + 5 * PACE), "before any arrival: the first-token delay"
    assert last_arrival_due(0.15, left=3, gap_s=0.02, sent_at=0.0, first_token_s=0.1, last_arrival=0.14) == (
        pytest.approx(0.15 + 3 * 0.02)
    ), "never before now"
    assert last_arrival_due(0.2, left=0, gap_s=0.02, sent_at=0.0, first_token_s=0.1, last_arrival=0.2) is None


def test_the_stream_reads_its_own_arrivals() -> None:
    terms = RequestTerms(
        mode="pd-device",
        max_tokens=400,
        max_tpot=0.05,
        min_tpot=0.0,
        pace_s=PACE,
        k_margin=0.2,
        max_extensions=4,
    )
    state = RequestState(RealtimeClock(), "prompt", terms, None)

    def nothing() -> None:
        pass

    cloud = CloudStream(
        state,
        None,
        expected_first_s=0.1,
        revise_handoff=nothing,
        part_ended=nothing,
        answer_completed=nothing,
    )
    cloud.quota = 6
    cloud.open = True
    cloud.sent_at = 0.0
    assert cloud.last_arrival_due(0.0) == pytest.approx(0.1 + 5 * PACE), "the expected delay, nothing yet"
    for at in (0.1, 0.12, 0.14):
        cloud.on_text("x", at)
    assert cloud.median_gap() == pytest.approx(0.02)
    assert cloud.last_arrival_due(0.15) == pytest.approx(0.15 + 3 * 0.02)
    for at in (0.16, 0.18, 0.2):
        cloud.on_text("x", at)
    assert cloud.last_arrival_due(0.21) is None, "everything asked for has arrived"
    cloud.open = False
    cloud.quota = 9
    assert cloud.last_arrival_due(0.21) is None, "no stream open"


def test_the_next_arrival_is_one_gap_after_the_latest_or_the_first_token_delay() -> None:
    assert next_arrival_due(0.0, left=6, gap_s=PACE, sent_at=0.0, first_token_s=0.1, last_arrival=None) == (
        pytest.approx(0.1)
    ), "a continuation not answered yet: its first-token delay"
    assert next_arrival_due(0.15, left=3, gap_s=0.02, sent_at=0.0, first_token_s=0.1, last_arrival=0.14) == (
        pytest.approx(0.16)
    )
    assert next_arrival_due(0.2, left=0, gap_s=0.02, sent_at=0.0, first_token_s=0.1, last_arrival=0.2) is None
