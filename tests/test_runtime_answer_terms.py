"""An answer's own terms: the ``max_tokens`` a request asks for (`Session.open`), and a device without a
speed profile (`pdcore.runtime.continuation`: until its hand-off can be estimated, a continuation asks for
the rest of the answer), and the CLI's choice of the shipped profile for the default model's own file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pdcore import InvalidInputError
from pdcore.cli.live_options import SHIPPED_PROFILE, device_profile, is_default_model
from pdcore.runtime import CloudClient, Device, Session
from pdcore.runtime.engine import smollm2_path
from pdcore.runtime.testing import CloudScript, FakeCloud, FakeEngine, word_pieces
from pdcore.runtime.timeline import Timeline

ANSWER = (
    "Paris is the capital of France. It is known for the Eiffel Tower, the cafe terraces and the "
    "Seine, and for the museums along its banks. Visit in spring."
)
PIECES = word_pieces(ANSWER)
PROMPT = "Tell me about Paris. " * 15


async def answer(
    url: str, fake: FakeEngine, *, priced: bool, max_tokens: int | None = None, **options: Any
) -> tuple[Timeline, str]:
    cloud = CloudClient(url, read_timeout=5.0)
    device = Device(lambda: fake)
    session = Session(
        cloud=cloud, device=device, device_profile=fake.profile() if priced else None, max_tpot_s=0.05,
        max_tokens=400, **options,
    )  # fmt: skip
    try:
        text = "".join([piece.text async for piece in session.stream(PROMPT, max_tokens=max_tokens)])
    finally:
        await cloud.aclose()
        device.close()
    assert session.timeline is not None
    return session.timeline, text


def test_an_answers_max_tokens_caps_the_clouds_quota_and_the_text() -> None:
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.01, gap_s=0.002)) as cloud:
        timeline, text = asyncio.run(
            answer(cloud.url, FakeEngine(ANSWER), priced=True, k=10, max_tokens=5)
        )  # fmt: skip
    assert cloud.requests[0].body["max_tokens"] == 5
    assert all(request.body["max_tokens"] <= 5 for request in cloud.requests)
    assert len(timeline.tokens) == 5
    assert text == "".join(PIECES[:5])


def test_a_cloud_only_answer_asks_the_cloud_for_the_answers_max_tokens_only() -> None:
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.01, gap_s=0.002)) as cloud:
        _, text = asyncio.run(
            answer(cloud.url, FakeEngine(ANSWER), priced=True, mode="cloud-only", max_tokens=4)
        )  # fmt: skip
    assert [request.body["max_tokens"] for request in cloud.requests] == [4]
    assert text == "".join(PIECES[:4])


@pytest.mark.parametrize("bad", [0, -3, True, 2.5, "7"])
def test_a_max_tokens_that_is_not_a_whole_number_of_tokens_is_refused(bad: Any) -> None:
    async def go() -> None:
        device = Device(lambda: FakeEngine(ANSWER))
        try:
            session = Session(device=device, mode="device-only", max_tokens=50)
            with pytest.raises(InvalidInputError, match="max_tokens"):
                await session.open(PROMPT, max_tokens=bad)
        finally:
            device.close()

    asyncio.run(go())


def test_a_device_without_a_profile_gets_the_rest_of_the_answer_asked_for_at_once() -> None:
    """k = 2 and a device whose prompt takes ~0.3 s, no profile to tell: the continuation leaves when the
    cloud's quota is used up, before its last token is shown, for every token the answer may still have;
    before this rule nothing was asked until the device was measured, and the display paused meanwhile."""
    slow = FakeEngine(ANSWER, prefill_token_s=0.004, call_s=0.002, decode_s=0.004)
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.01, gap_s=0.01)) as cloud:
        timeline, text = asyncio.run(answer(cloud.url, slow, priced=False, k=2))
    assert text == ANSWER
    assert len(cloud.requests) >= 2
    assert cloud.requests[1].body["max_tokens"] == 400 - 3
    assert timeline.cloud_extensions[0][1] == 400 - 3
    assert timeline.cloud_extensions[0][0] <= timeline.tokens[2].shown_s


def test_a_device_with_a_profile_still_gets_a_continuation_sized_by_its_estimate() -> None:
    slow = FakeEngine(ANSWER, prefill_token_s=0.004, call_s=0.002, decode_s=0.004)
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.01, gap_s=0.01)) as cloud:
        timeline, text = asyncio.run(answer(cloud.url, slow, priced=True, k=2))
    assert text == ANSWER
    assert timeline.cloud_extensions
    assert timeline.cloud_extensions[0][1] < 400 - 3


def test_the_default_models_own_file_gets_its_shipped_profile() -> None:
    default = smollm2_path()
    if default is None:
        pytest.skip("the default model package is not installed")
    shipped = device_profile(None, 1, default)
    assert shipped is not None
    assert shipped.name == SHIPPED_PROFILE.format(threads=1) or "cpu1" in shipped.name
    assert is_default_model(None)
    assert is_default_model(default)


def test_another_model_has_no_profile_unless_one_is_given(tmp_path: Path) -> None:
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF")
    assert not is_default_model(other)
    assert device_profile(None, 1, other) is None
    with pytest.raises(InvalidInputError, match="--profile"):
        device_profile(None, 1, other, needed=True)
