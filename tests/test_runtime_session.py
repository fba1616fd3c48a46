"""The P/D-Device session with a scripted cloud (`FakeCloud`) and a scripted device (`FakeEngine`).

The device tokenizes by UTF-8 bytes while the cloud streams word pieces, so every hand-off here is
between unlike tokenizers. Timing checks judge the runtime's decisions: each token's due time (when the
session scheduled it, given when the previous token was really shown), not the moment the operating system
woke the display loop, which on a loaded machine can be late by any amount.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

pytest.importorskip("httpx", reason="the live runtime needs the `device` extra (httpx, httpx-sse)")
pytest.importorskip("httpx_sse", reason="the live runtime needs the `device` extra (httpx, httpx-sse)")

from pdcore import DeadlineMissedError, InvalidInputError
from pdcore.runtime import (
    CloudClient,
    CloudUnavailableError,
    Device,
    Notice,
    Piece,
    RealtimeClock,
    Session,
    Timeline,
    TokenRecord,
)
from pdcore.runtime.session import MAX_RESUMES, STALL_MIN_S
from pdcore.runtime.testing import CloudScript, FakeCloud, FakeEngine, unused_url, word_pieces

T = TypeVar("T")

ANSWER = (
    "Paris is the capital of France. It is known for the Eiffel Tower, the café terraces and the "
    "Seine — très belle! 🗼 Visit in spring."
)
PIECES = word_pieces(ANSWER)
PROMPT = "Tell me about Paris. " * 15
MAX_TPOT = 0.05
SLACK = 0.015


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def engine(**costs: float) -> FakeEngine:
    settings = {"prefill_token_s": 0.001, "call_s": 0.001, "decode_s": 0.004} | costs
    return FakeEngine(ANSWER, **settings)  # type: ignore[arg-type]  # reason: the keys are the cost options


async def answer(
    url: str,
    fake: FakeEngine,
    *,
    k: int | str = 10,
    mode: str = "pd-device",
    profile_of: FakeEngine | None = None,
    notices: list[Notice] | None = None,
    **options: Any,
) -> tuple[Timeline, list[Piece]]:
    cloud = CloudClient(url, read_timeout=options.pop("read_timeout", 5.0))
    device = Device(lambda: fake)
    session = Session(
        cloud=cloud,
        device=device,
        device_profile=(profile_of or fake).profile(),
        k=k,  # type: ignore[arg-type]
        mode=mode,  # type: ignore[arg-type]
        max_tpot_s=MAX_TPOT,
        max_tokens=400,
        on_notice=notices.append if notices is not None else None,
        **options,
    )
    try:
        pieces = [piece async for piece in session.stream(PROMPT)]
    finally:
        await cloud.aclose()
        device.close()
    assert session.timeline is not None
    return session.timeline, pieces


def assert_text_exact(timeline: Timeline, cloud_pieces: list[str]) -> None:
    """Displayed text is the cloud's prefix then the device's continuation: nothing lost, repeated or
    reordered."""
    assert timeline.text == ANSWER
    positions = [record.position for record in timeline.tokens]
    assert positions == list(range(len(positions)))
    sources = [record.source for record in timeline.tokens]
    handoff = timeline.handoff_position
    if handoff is None:
        assert set(sources) == {"cloud"}
        handoff = len(sources)
    assert sources == ["cloud"] * handoff + ["device"] * (len(sources) - handoff)
    assert "".join(record.text for record in timeline.tokens[:handoff]) == "".join(cloud_pieces[:handoff])
    shown = [record.shown_s for record in timeline.tokens]
    assert shown == sorted(shown)


@pytest.mark.parametrize("k", [0, 3, 12])
def test_handoff_is_text_exact(k: int) -> None:
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.03, gap_s=0.005)) as cloud:
        timeline, pieces = run(answer(cloud.url, engine(), k=k, max_extensions=0))
    assert_text_exact(timeline, PIECES)
    assert timeline.handoff_position == k + 1
    assert cloud.requests[0].body["max_tokens"] == k + 1
    assert cloud.requests[0].body["stream"] is True
    assert cloud.requests[0].body["temperature"] == 0
    assert "".join(piece.text for piece in pieces) == ANSWER
    assert [piece.at for piece in pieces] == sorted(piece.at for piece in pieces)
    assert timeline.tokens[0].source == "cloud"
    assert timeline.ttft_s is not None
    assert timeline.cloud_first_s is not None
    assert timeline.tokens[0].due_s - timeline.cloud_first_s < 0.02


def test_cloud_that_completes_the_answer_needs_no_device() -> None:
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.02, gap_s=0.002)) as cloud:
        timeline, _ = run(answer(cloud.url, engine(prefill_token_s=0.004), k=len(PIECES) + 5))
    assert_text_exact(timeline, PIECES)
    assert timeline.handoff_position is None
    assert timeline.cloud_end == "stop"
    assert {record.source for record in timeline.tokens} == {"cloud"}


def test_unreachable_cloud_falls_back_to_the_device_with_a_notice() -> None:
    notices: list[Notice] = []
    timeline, _ = run(answer(unused_url(), engine(), notices=notices))
    assert_text_exact(timeline, PIECES)
    assert timeline.handoff_position == 0
    assert timeline.cloud_end == "unavailable"
    assert [notice.kind for notice in notices] == ["cloud-unavailable"]
    assert "device alone" in notices[0].message
    assert timeline.notices == notices


def test_refusing_cloud_falls_back_to_the_device_with_a_notice() -> None:
    with FakeCloud(CloudScript(PIECES, status=503)) as cloud:
        timeline, _ = run(answer(cloud.url, engine()))
    assert_text_exact(timeline, PIECES)
    assert timeline.handoff_position == 0
    assert [notice.kind for notice in timeline.notices] == ["cloud-unavailable"]
    assert "HTTP 503" in timeline.notices[0].message


def test_cut_stream_is_resumed_with_the_text_so_far() -> None:
    script = CloudScript(PIECES, first_delay_s=0.02, gap_s=0.01, cut_after=4, faulty_requests=1)
    with FakeCloud(script) as cloud:
        timeline, _ = run(answer(cloud.url, engine(), k=20))
    assert_text_exact(timeline, PIECES)
    assert [notice.kind for notice in timeline.notices] == ["cloud-cut"]
    assert "resuming with the 4 tokens received" in timeline.notices[0].message
    assert len(timeline.cloud_resumes) == 1
    resumed = cloud.requests[1].body
    assert resumed["prompt"] == PROMPT + "".join(PIECES[:4])
    assert resumed["max_tokens"] == 21 - 4
    shown_from_cloud = sum(1 for record in timeline.tokens if record.source == "cloud")
    assert shown_from_cloud > 4, "the resumed stream kept the display going"
    assert [kind for _, _, kind in timeline.cloud_stalls] == ["cut"]


def test_a_stream_that_keeps_breaking_is_resumed_a_bounded_number_of_times() -> None:
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.02, gap_s=0.01, cut_after=4)) as cloud:
        timeline, _ = run(answer(cloud.url, engine(), k=20))
    assert_text_exact(timeline, PIECES)
    assert len(cloud.requests) == 1 + MAX_RESUMES
    assert timeline.handoff_position == 4 * (1 + MAX_RESUMES)
    assert [notice.kind for notice in timeline.notices] == ["cloud-cut"] * (1 + MAX_RESUMES)
    assert "the device continues after the 12 tokens received" in timeline.notices[-1].message
    starts = [at for at, _, _ in timeline.cloud_resumes]
    assert starts == sorted(starts)


def test_a_silent_stream_is_a_stall_noticed_before_the_read_timeout_and_resumed() -> None:
    script = CloudScript(PIECES, first_delay_s=0.02, gap_s=0.01, stall_after=3, faulty_requests=1)
    with FakeCloud(script) as cloud:
        timeline, _ = run(answer(cloud.url, engine(prefill_token_s=0.003), k=20, read_timeout=30.0))
    assert_text_exact(timeline, PIECES)
    kinds = [notice.kind for notice in timeline.notices]
    assert kinds == ["cloud-silent"]
    ((_, silent, kind),) = timeline.cloud_stalls
    assert kind == "silent"
    assert STALL_MIN_S <= silent < 1.0, "noticed at the stall deadline, long before the 30 s read timeout"
    assert cloud.requests[1].body["prompt"] == PROMPT + "".join(PIECES[:3])


def test_stream_is_closed_at_the_handoff() -> None:
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.02, gap_s=0.05)) as cloud:
        timeline, _ = run(answer(cloud.url, engine(prefill_token_s=0.0005), k=20))
        cloud.wait_done()
    assert_text_exact(timeline, PIECES)
    assert timeline.cloud_end == "cancelled"
    position = timeline.handoff_position
    assert position is not None
    assert 0 < position < 21
    served = cloud.requests[0]
    assert served.sent < 21
    assert served.disconnected


def scheduled_late(timeline: Timeline) -> list[TokenRecord]:
    """Tokens available in time that the session still scheduled more than ``MAX_TPOT`` after the
    previous token was shown."""
    late = []
    for before, after in zip(timeline.tokens, timeline.tokens[1:], strict=False):
        available_in_time = after.available_s <= before.shown_s + MAX_TPOT
        if available_in_time and after.due_s - before.shown_s > MAX_TPOT + 1e-6:
            late.append(after)
    return late


def test_jittery_network_gaps_stay_within_max_tpot_unless_the_network_stalls() -> None:
    rng = random.Random(7)
    gaps = [rng.choice([0.0, 0.0, 0.01, 0.03, 0.08, 0.15]) for _ in PIECES]
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.03, gap_s=gaps)) as cloud:
        timeline, _ = run(answer(cloud.url, engine(), k=14))
    assert_text_exact(timeline, PIECES)
    late = 0
    for gap in timeline.gaps():
        record = timeline.tokens[gap.position]
        if gap.gap_s <= MAX_TPOT + SLACK:
            continue
        assert gap.cause == "cloud-late", gap
        assert record.due_s - record.available_s < SLACK, record
        late += 1
    assert late > 0, "the script should include network stalls"


def test_burst_is_spread_evenly_until_the_handoff() -> None:
    fake = engine()
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.03, gap_s=0.0)) as cloud:
        timeline, _ = run(answer(cloud.url, fake, k=11))
    assert_text_exact(timeline, PIECES)
    cloud_gaps = [gap.gap_s for gap in timeline.gaps() if gap.source == "cloud"]
    assert len(cloud_gaps) == 11
    assert min(cloud_gaps) > 0.015, "a burst must be paced, not dumped"
    assert not scheduled_late(timeline)


def test_slower_device_than_its_profile_revises_the_handoff_estimate() -> None:
    fast = engine(prefill_token_s=0.0015)
    slow = engine(prefill_token_s=0.0015, slowdown=2.0)
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.03, gap_s=0.0)) as cloud:
        timeline, _ = run(answer(cloud.url, slow, k=14, profile_of=fast, max_extensions=0))
    assert_text_exact(timeline, PIECES)
    assert timeline.handoff_s is not None
    estimates = [estimate for _, estimate in timeline.handoff_estimates[:-1]]
    assert len(estimates) >= 3
    actual = timeline.handoff_s
    first, revised = estimates[0], estimates[-1]
    assert first < 0.75 * actual, "the profile promised a device twice as fast"
    assert abs(revised - actual) < 0.15 * actual
    assert not scheduled_late(timeline)


def test_device_only_mode() -> None:
    timeline, _ = run(answer(unused_url(), engine(), mode="device-only"))
    assert_text_exact(timeline, PIECES)
    assert timeline.mode == "device-only"
    assert timeline.cloud_quota is None
    assert not timeline.notices


def test_cloud_only_mode_shows_tokens_on_arrival() -> None:
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.02, gap_s=0.004)) as cloud:
        timeline, _ = run(answer(cloud.url, engine(), mode="cloud-only"))
    assert_text_exact(timeline, PIECES)
    assert cloud.requests[0].body["max_tokens"] == 400
    assert all(record.due_s == record.available_s for record in timeline.tokens)


def test_cloud_only_mode_raises_when_the_cloud_is_unreachable() -> None:
    with pytest.raises(CloudUnavailableError, match=r"cannot|unavailable"):
        run(answer(unused_url(), engine(), mode="cloud-only"))


def test_auto_k_comes_from_the_profile() -> None:
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.03, gap_s=0.002)) as cloud:
        timeline, _ = run(answer(cloud.url, engine(), k="auto"))
    assert_text_exact(timeline, PIECES)
    assert timeline.k is not None
    assert timeline.k > 0
    assert cloud.requests[0].body["max_tokens"] == timeline.k + 1


def test_strict_clock_raises_deadline_missed() -> None:
    with (
        FakeCloud(CloudScript(PIECES, first_delay_s=0.02, gap_s=0.002)) as cloud,
        pytest.raises(DeadlineMissedError) as raised,
    ):
        run(answer(cloud.url, engine(), clock=RealtimeClock(strict=True, tolerance=0.0)))
    assert raised.value.lag_s > 0  # type: ignore[attr-defined]


def test_device_behind_the_buffer_gets_a_continuation_from_the_cloud() -> None:
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.03, gap_s=0.005)) as cloud:
        timeline, _ = run(answer(cloud.url, engine(), k=2))
    assert_text_exact(timeline, PIECES)
    assert len(cloud.requests) >= 2
    extension = cloud.requests[1].body
    assert extension["prompt"] == PROMPT + "".join(PIECES[:3])
    assert timeline.cloud_extensions
    assert timeline.cloud_extensions[0][1] == extension["max_tokens"]
    assert timeline.handoff_position is not None
    assert timeline.handoff_position > 3
    # the continuation left before the first quota's last token was shown, so the buffer never ran dry
    # for want of asking (whether its tokens arrive in time also depends on the machine's load)
    assert timeline.cloud_extensions[0][0] <= timeline.tokens[2].shown_s


def test_a_device_far_slower_than_its_profile_does_not_freeze_the_display() -> None:
    # the device's real prefill is 30x its profile's (a model starved of the CPU): its estimate stays in
    # time while it makes no progress, so before the stall rule the display waited for its first prompt
    # chunk (128 tokens, 3.8 s) after the cloud's 10 tokens (6, then the 4 the estimate asked for)
    slow = engine(prefill_token_s=0.03)
    notices: list[Notice] = []
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.02, gap_s=0.004)) as cloud:
        timeline, _ = run(
            answer(cloud.url, slow, k=5, max_extensions=1, profile_of=engine(), notices=notices)
        )
    assert timeline.text == ANSWER
    assert [record.position for record in timeline.tokens] == list(range(len(PIECES)))
    assert timeline.handoff_position is None  # the cloud showed the rest; the device never caught up
    assert [notice.kind for notice in notices] == ["device-late"]
    assert "rest of the answer" in notices[0].message
    assert len(cloud.requests) == 3
    assert cloud.requests[2].body["prompt"] == PROMPT + "".join(PIECES[:10])
    # the rest was asked for once the display had waited max_tpot after the sixth token and the device's
    # estimate had passed (the session's decision): well before the device's own 9.5 s of prefill
    asked_at = timeline.cloud_extensions[1][0]
    assert timeline.tokens[9].shown_s + MAX_TPOT <= asked_at <= timeline.tokens[9].shown_s + 1.5


def test_no_stall_continuation_for_a_device_on_time_or_when_none_is_allowed() -> None:
    notices: list[Notice] = []
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.02, gap_s=0.004)) as cloud:
        timeline, _ = run(answer(cloud.url, engine(), k=5, max_extensions=1, notices=notices))
    assert_text_exact(timeline, PIECES)
    assert timeline.handoff_position == 10  # after the estimate's continuation of 4 tokens
    assert not notices
    # max_extensions=0: the display waits for a slow device, as asked
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.02, gap_s=0.004)) as cloud:
        slow = engine(prefill_token_s=0.003)
        timeline, _ = run(
            answer(cloud.url, slow, k=5, max_extensions=0, profile_of=engine(), notices=notices)
        )
    assert_text_exact(timeline, PIECES)
    assert timeline.handoff_position == 6
    assert not notices
    assert len(cloud.requests) == 1


def test_timeline_json_round_trip() -> None:
    import json

    with FakeCloud(CloudScript(PIECES, first_delay_s=0.02, gap_s=0.005)) as cloud:
        timeline, _ = run(answer(cloud.url, engine(), k=5, max_extensions=0))
    document = json.loads(timeline.to_json())
    assert document["text"] == ANSWER
    assert document["summary"]["tokens_by_source"] == {"cloud": 6, "device": len(timeline.tokens) - 6}
    assert len(document["tokens"]) == len(timeline.tokens)
    assert document["summary"]["handoff_position"] == 6


@pytest.mark.parametrize(
    ("old", "new"), [("pd", "pd-device"), ("device", "device-only"), ("cloud", "cloud-only")]
)
def test_old_mode_names_still_work_for_one_release(old: str, new: str) -> None:
    fake = engine()
    device = Device(lambda: fake)
    try:
        with pytest.warns(DeprecationWarning, match=f"mode {old!r} is now called {new!r}"):
            session = Session(
                cloud=CloudClient(unused_url()), device=device, device_profile=fake.profile(), mode=old
            )
        assert session.mode == new
    finally:
        device.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "pd-device", "device": None}, "needs a device"),
        ({"mode": "cloud-only", "cloud": None}, "needs a cloud"),
        ({"mode": "both"}, "mode"),
        ({"max_tpot_s": 0.0}, "max_tpot_s"),
        ({"k": -1}, "k = -1"),
        ({"k": "auto", "device_profile": None}, "needs the device profile"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"pacing_margin_s": 0.06}, "pacing_margin_s"),
        ({"k_margin": -0.1}, "k_margin"),
        ({"max_extensions": -1}, "max_extensions"),
    ],
)
def test_session_rejects_bad_settings(options: dict[str, Any], message: str) -> None:
    fake = engine()
    device = Device(lambda: fake)
    settings: dict[str, Any] = {
        "cloud": CloudClient(unused_url()),
        "device": device,
        "device_profile": fake.profile(),
        "k": 3,
    } | options
    try:
        with pytest.raises(InvalidInputError, match=message):
            Session(**settings)
    finally:
        device.close()


def test_a_device_that_cannot_catch_up_leaves_the_answer_to_the_cloud_without_prefilling() -> None:
    slow = engine(prefill_token_s=1.0)  # the profile promises a device far too slow to catch up
    notices: list[Notice] = []
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.02, gap_s=0.004)) as cloud:
        timeline, _ = run(answer(cloud.url, engine(), k="auto", profile_of=slow, notices=notices))
    assert_text_exact(timeline, PIECES)
    assert timeline.plan == "cloud-only"
    assert timeline.plan_reason is not None
    assert "never catches up" in timeline.plan_reason
    assert [notice.kind for notice in notices] == ["plan-cloud"]
    assert timeline.prompt_prefilled_s is None, "no device prefill was wasted"
    assert cloud.requests[0].body["max_tokens"] == 400
    assert timeline.summary()["plan"] == "cloud-only"


def test_a_cloud_only_plan_falls_back_to_the_device_when_the_cloud_fails() -> None:
    slow = engine(prefill_token_s=1.0)
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.02, gap_s=0.004, cut_after=5)) as cloud:
        timeline, _ = run(answer(cloud.url, engine(), k="auto", profile_of=slow))
    assert_text_exact(timeline, PIECES)
    assert timeline.plan == "cloud-only"
    assert timeline.prompt_prefilled_s is not None, "the device started when the cloud could not go on"
    assert timeline.handoff_position == 5 * (1 + MAX_RESUMES)


def test_a_device_that_answers_first_does_not_ask_the_cloud() -> None:
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.02, gap_s=0.004)) as cloud:
        timeline, _ = run(answer(cloud.url, engine(), k="auto", first_token_s=5.0))
    assert_text_exact(timeline, PIECES)
    assert timeline.plan == "device-only"
    assert not cloud.requests
    assert timeline.cloud_quota is None
    assert [notice.kind for notice in timeline.notices] == ["plan-device"]


def test_the_clouds_context_window_ending_an_answer_is_not_taken_for_the_quota() -> None:
    words = len(PROMPT.split())
    script = CloudScript(PIECES, first_delay_s=0.02, gap_s=0.004, context_tokens=words + 6)
    with FakeCloud(script) as cloud:
        timeline, _ = run(answer(cloud.url, engine(), k=20))
    assert_text_exact(timeline, PIECES)
    assert timeline.cloud_end == "context"
    assert [notice.kind for notice in timeline.notices] == ["cloud-context"]
    assert not timeline.cloud_extensions, "no continuation is asked for past the window"
    assert len(cloud.requests) == 1
    assert timeline.handoff_position == 6


def test_each_notice_is_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    notices: list[Notice] = []
    with FakeCloud(CloudScript(PIECES, status=503)) as cloud:
        run(answer(cloud.url, engine(), notices=notices))
    assert [notice.kind for notice in notices] == ["cloud-unavailable"]
    assert not [record for record in caplog.records if record.levelname == "WARNING"]


def test_plans_are_not_reduced_when_asked_to_split() -> None:
    slow = engine(prefill_token_s=1.0)
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.02, gap_s=0.004)) as cloud:
        timeline, _ = run(answer(cloud.url, engine(), k="auto", profile_of=slow, reduce_plans=False))
    assert_text_exact(timeline, PIECES)
    assert timeline.plan == "pd-device"
    assert timeline.prompt_tokens is not None, "the device started on the prompt"
