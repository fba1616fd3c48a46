"""Answers as handles (`Session.open`): several at once on one session, the busy device, and closing an
answer early, with a scripted cloud (`FakeCloud`) and a scripted device (`FakeEngine`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("httpx", reason="the live runtime needs the `device` extra (httpx, httpx-sse)")
pytest.importorskip("httpx_sse", reason="the live runtime needs the `device` extra (httpx, httpx-sse)")

from pdcore import InvalidStateError
from pdcore.runtime import CloudClient, Device, Session
from pdcore.runtime.answer import Answer
from pdcore.runtime.planning import BUSY_CLOUD, BUSY_WAIT
from pdcore.runtime.testing import CloudScript, FakeCloud, FakeEngine, word_pieces

ANSWER = "Paris is the capital of France. It is known for the Eiffel Tower and the Seine."
PIECES = word_pieces(ANSWER)
PROMPT = "Tell me about Paris. " * 10


def engine(**costs: float) -> FakeEngine:
    settings = {"prefill_token_s": 0.001, "call_s": 0.001, "decode_s": 0.004} | costs
    return FakeEngine(ANSWER, **settings)  # type: ignore[arg-type]  # reason: the keys are the cost options


@contextlib.asynccontextmanager
async def session_of(url: str | None, fake: FakeEngine, **options: Any) -> AsyncIterator[Session]:
    cloud = CloudClient(url, read_timeout=5.0) if url is not None else None
    device = Device(lambda: fake)
    settings: dict[str, Any] = {"k": 10, "max_tpot_s": 0.05, "max_tokens": 400} | options
    if cloud is None:
        settings["mode"] = "device-only"
    try:
        yield Session(cloud=cloud, device=device, device_profile=fake.profile(), **settings)
    finally:
        if cloud is not None:
            await cloud.aclose()
        device.close()


async def text_of(answer: Answer) -> str:
    return "".join([piece.text async for piece in answer])


def leftover_tasks() -> set[asyncio.Task[Any]]:
    return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]


def test_a_second_answer_while_the_device_is_busy_is_the_clouds() -> None:
    async def main() -> tuple[Answer, Answer, Session]:
        async with session_of(cloud.url, engine(decode_s=0.02)) as session:
            first = await session.open(PROMPT)
            second = await session.open(PROMPT)
            assert session.timeline is second.timeline
            texts = await asyncio.gather(text_of(first), text_of(second))
            assert texts == [ANSWER, ANSWER]
            assert not leftover_tasks()
            return first, second, session

    with FakeCloud(CloudScript(PIECES, first_delay_s=0.03, gap_s=0.005)) as cloud:
        first, second, session = asyncio.run(main())
    assert first.timeline.plan == "pd-device"
    assert first.timeline.handoff_position == 11
    assert second.timeline.plan == "cloud-only"
    assert second.timeline.plan_reason == BUSY_CLOUD
    assert {record.source for record in second.timeline.tokens} == {"cloud"}
    assert second.timeline.device_wait_s is None
    assert [notice.kind for notice in second.timeline.notices] == ["plan-cloud"]
    # the cloud-only answer did not wait behind the device's: its first token came before the other's end
    assert second.timeline.ttft_s is not None
    assert first.timeline.finished_s is not None
    assert (
        second.timeline.started_at + second.timeline.ttft_s
        < first.timeline.started_at + first.timeline.finished_s
    )
    assert second.cached_tokens == 0
    # both answers over, the device serves the next one again
    assert session.device is not None
    assert not session.device.gate.busy


def test_without_a_cloud_an_answer_waits_for_the_device() -> None:
    async def main() -> tuple[Answer, Answer]:
        async with session_of(None, engine()) as session:
            first = await session.open(PROMPT)
            second = await session.open(PROMPT)
            texts = await asyncio.gather(text_of(second), text_of(first))
            assert texts == [ANSWER, ANSWER]
            return first, second

    first, second = asyncio.run(main())
    assert first.timeline.device_wait_s is None
    assert second.timeline.plan == "device-only"
    assert second.timeline.plan_reason is not None
    assert second.timeline.plan_reason.startswith(BUSY_WAIT + " (waited ")
    assert second.timeline.device_wait_s is not None
    assert second.timeline.device_wait_s > 0.0
    # it was served after the first answer's device work ended
    assert first.timeline.finished_s is not None
    assert second.timeline.ttft_s is not None
    assert second.timeline.summary()["device_wait_s"] == second.timeline.device_wait_s
    assert second.timeline.to_dict()["device_wait_s"] is not None


def test_closing_an_answer_early_cancels_the_cloud_and_the_device_and_frees_the_device() -> None:
    fake = engine(prefill_token_s=0.01)  # a slow prefill: the cloud is still streaming when closed

    async def main() -> tuple[Answer, Answer]:
        async with session_of(cloud.url, fake, k=40) as session:
            first = await session.open(PROMPT)
            shown = []
            async for piece in first:
                shown.append(piece)
                if len(shown) == 2:
                    break
            await first.aclose()
            assert first.closed
            assert not leftover_tasks()
            assert session.device is not None
            assert not session.device.gate.busy
            calls = len(fake.calls)
            await asyncio.sleep(0.2)
            assert len(fake.calls) <= calls + 1  # the prefill stopped after its chunk
            fake.prefill_token_s = 0.001
            second = await session.open(PROMPT)
            assert await text_of(second) == ANSWER
            return first, second

    with FakeCloud(CloudScript(PIECES, first_delay_s=0.03, gap_s=0.05)) as cloud:
        first, second = asyncio.run(main())
        cloud.wait_done()
        assert cloud.requests[0].disconnected
    assert len(first.timeline.tokens) == 2
    assert second.timeline.plan == "pd-device"  # the device was free again


def test_an_abandoned_iteration_closes_the_answer() -> None:
    async def main() -> Answer:
        async with session_of(cloud.url, engine(prefill_token_s=0.01), k=40) as session:
            answer = await session.open(PROMPT)
            async for _ in answer:
                break
            for _ in range(500):  # the loop closes an abandoned async generator soon after
                if answer.closed:
                    break
                await asyncio.sleep(0.01)
            assert answer.closed
            for _ in range(500):
                if not leftover_tasks():
                    break
                await asyncio.sleep(0.01)
            assert not leftover_tasks()
            assert session.device is not None
            assert not session.device.gate.busy
            return answer

    with FakeCloud(CloudScript(PIECES, first_delay_s=0.03, gap_s=0.05)) as cloud:
        answer = asyncio.run(main())
    assert len(answer.timeline.tokens) == 1


def test_closing_from_another_task_ends_the_iteration() -> None:
    async def main() -> tuple[Answer, int]:
        async with session_of(cloud.url, engine(prefill_token_s=0.01), k=40) as session:
            answer = await session.open(PROMPT)
            count = 0

            async def read() -> None:
                nonlocal count
                async for _ in answer:
                    count += 1
                    if count == 2:
                        closer.set()

            closer = asyncio.Event()
            reader = asyncio.create_task(read())
            await closer.wait()
            await answer.aclose()
            await asyncio.wait_for(reader, timeout=10)
            assert not leftover_tasks()
            return answer, count

    with FakeCloud(CloudScript(PIECES, first_delay_s=0.03, gap_s=0.05)) as cloud:
        answer, count = asyncio.run(main())
    assert count < len(PIECES)
    assert answer.closed


def test_an_answer_is_iterated_once_and_closed_by_async_with() -> None:
    async def main() -> Answer:
        async with session_of(None, engine()) as session:
            async with await session.open(PROMPT) as answer:
                assert await text_of(answer) == ANSWER
                with pytest.raises(InvalidStateError, match="iterated once"):
                    answer.__aiter__()
            async with await session.open(PROMPT) as unread:
                pass
            assert unread.closed
            assert not leftover_tasks()
            return answer

    answer = asyncio.run(main())
    assert answer.closed


def test_stream_and_complete_still_work_one_after_another() -> None:
    async def main() -> None:
        async with session_of(cloud.url, engine()) as session:
            timeline = await session.complete(PROMPT)
            assert timeline.text == ANSWER
            assert "".join([piece.text async for piece in session.stream(PROMPT)]) == ANSWER
            assert session.timeline is not None
            assert session.timeline is not timeline
            assert session.timeline.plan == "pd-device"

    with FakeCloud(CloudScript(PIECES, first_delay_s=0.03, gap_s=0.005)) as cloud:
        asyncio.run(main())
