"""``pdcore serve``'s app on a real HTTP server (uvicorn on a free loopback port) with the official
``openai`` client: chat and completions, streamed and whole; eight concurrent clients; a client that goes
away mid-stream. The cloud is scripted (`FakeCloud`), the device too (`FakeEngine`)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="pdcore serve needs the `serve` extra")
pytest.importorskip("uvicorn", reason="pdcore serve needs the `serve` extra")
pytest.importorskip("openai", reason="the tests of pdcore serve need the openai client")
pytest.importorskip("httpx_sse", reason="the live runtime needs the `device` extra")

import httpx
import openai
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from pdcore.runtime import CloudClient, Device, Session
from pdcore.runtime.testing import CloudScript, FakeCloud, FakeEngine, free_port, word_pieces
from pdcore.serve import app as serve_app
from pdcore.serve import create_app
from pdcore.serve.answers import Answer

ANSWER = "Paris is the capital of France. It is known for the Eiffel Tower and the Seine."
MODEL = "fake-model"
KEY = "s3cret"
MESSAGES: list[Any] = [{"role": "user", "content": "Tell me about Paris."}]


@contextmanager
def serving(
    script: CloudScript, *, prefill_token_s: float = 0.001, decode_s: float = 0.001
) -> Iterator[tuple[str, FakeCloud]]:
    """A server on a free port over a fresh session: yields its ``/v1`` URL and the cloud."""
    with FakeCloud(script) as cloud:
        fake = FakeEngine(ANSWER, prefill_token_s=prefill_token_s, call_s=0.001, decode_s=decode_s)
        client, device = CloudClient(cloud.url), Device(lambda: fake)
        session = Session(
            cloud=client, device=device, device_profile=fake.profile(), k=3, max_tpot_s=0.05, max_tokens=400
        )
        app = create_app(session, model_id=MODEL, api_key=KEY, on_shutdown=client.aclose)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, name="pdcore-serve-test", daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while not server.started:
                assert thread.is_alive(), "the server stopped while starting"
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.02)
            yield f"http://127.0.0.1:{port}/v1", cloud
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            device.close()
        assert not thread.is_alive()


def script(**options: Any) -> CloudScript:
    return CloudScript(word_pieces(ANSWER), **({"first_delay_s": 0.005, "gap_s": 0.002} | options))


def metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/../metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]
    return sum(sample.value for sample in samples if sample.name == name)


def test_the_openai_client_gets_chat_answers_whole_and_streamed() -> None:
    with serving(script()) as (url, _), ExitStack() as stack:
        client = stack.enter_context(openai.OpenAI(base_url=url, api_key=KEY, max_retries=0))
        assert [model.id for model in client.models.list()] == [MODEL]
        whole = client.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert whole.choices[0].message.content == ANSWER
        assert whole.choices[0].finish_reason == "stop"
        assert whole.usage is not None
        assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens
        assert whole.model_extra is not None
        assert whole.model_extra["pdcore"]["plan"] == "pd-device"
        stream = client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        chunks = list(stream)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
        assert text == ANSWER
        assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "stop"
        last = chunks[-1]
        assert last.usage is not None
        assert last.usage.completion_tokens == sum(last.model_extra["pdcore"]["tokens_by_source"].values())
        with pytest.raises(openai.NotFoundError) as missing:
            client.chat.completions.create(model="gpt-9", messages=MESSAGES)
        assert missing.value.code == "model_not_found"
        with pytest.raises(openai.BadRequestError, match="greedily") as refused:
            client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0.7)
        assert refused.value.param == "temperature"
        wrong = stack.enter_context(openai.OpenAI(base_url=url, api_key="wrong", max_retries=0))
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()


def test_the_openai_client_gets_completions_whole_and_streamed() -> None:
    with serving(script()) as (url, _), openai.OpenAI(base_url=url, api_key=KEY, max_retries=0) as client:
        whole = client.completions.create(model=MODEL, prompt="Paris?", max_tokens=200)
        assert whole.object == "text_completion"
        assert whole.choices[0].text == ANSWER
        assert whole.choices[0].finish_reason == "stop"
        assert whole.usage is not None
        assert whole.usage.completion_tokens > 0
        pieces = list(client.completions.create(model=MODEL, prompt="Paris?", max_tokens=5, stream=True))
        assert "".join(piece.choices[0].text for piece in pieces)
        assert pieces[-1].choices[0].finish_reason == "length"
        assert pieces[-1].model_extra is not None
        assert "pdcore" in pieces[-1].model_extra


def test_eight_concurrent_clients_each_get_their_own_whole_answer() -> None:
    async def one(url: str) -> tuple[str, set[str], dict[str, Any]]:
        client = openai.AsyncOpenAI(base_url=url, api_key=KEY, max_retries=0)
        try:
            stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
            chunks = [chunk async for chunk in stream]
        finally:
            await client.close()
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
        extra = chunks[-1].model_extra or {}
        return text, {chunk.id for chunk in chunks}, extra["pdcore"]

    async def many(url: str) -> list[tuple[str, set[str], dict[str, Any]]]:
        return await asyncio.gather(*(one(url) for _ in range(8)))

    with serving(script(gap_s=0.005), prefill_token_s=0.002) as (url, cloud):
        results = asyncio.run(many(url))
        assert metric(url, "pdcore_answers_in_progress") == 0
        assert metric(url, "pdcore_answers_total") == 8
    assert [text for text, _, _ in results] == [ANSWER] * 8
    ids = [next(iter(chunk_ids)) for (chunk_ids,) in ((chunk_ids,) for _, chunk_ids, _ in results)]
    assert all(len(chunk_ids) == 1 for _, chunk_ids, _ in results)
    assert len(set(ids)) == 8
    plans = [figures["plan"] for _, _, figures in results]
    assert "cloud-only" in plans  # the device serves one answer at a time; the others are the cloud's
    busy = [figures for _, _, figures in results if figures["plan"] == "cloud-only"]
    assert all(figures["tokens_by_source"]["device"] == 0 for figures in busy)
    assert len(cloud.requests) >= 8


def test_a_client_that_goes_away_mid_stream_cancels_its_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[Answer] = []
    real_open = serve_app.open_answer

    async def spy(session: Session, prompt: str, max_tokens: int | None = None) -> Answer:
        opened.append(await real_open(session, prompt, max_tokens))
        return opened[-1]

    monkeypatch.setattr(serve_app, "open_answer", spy)
    slow = script(first_delay_s=0.01, gap_s=0.05)
    with serving(slow, prefill_token_s=0.02, decode_s=0.05) as (url, cloud):
        body = {"model": MODEL, "messages": MESSAGES, "stream": True}
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx.stream("POST", f"{url}/chat/completions", json=body, headers=headers) as response:
            lines = response.iter_lines()
            received = [line for line, _ in zip(lines, range(3), strict=False)]
        assert received[0].startswith("data: ")
        deadline = time.monotonic() + 20
        while metric(url, "pdcore_answers_in_progress") != 0:
            assert time.monotonic() < deadline, "the abandoned answer was not closed"
            time.sleep(0.05)
        (answer,) = opened
        assert answer.closed  # type: ignore[attr-defined]
        assert len(answer.timeline.tokens) < len(ANSWER) // 2
        cloud.wait_done(timeout=10)
        assert cloud.requests[0].sent < len(word_pieces(ANSWER))
        with openai.OpenAI(base_url=url, api_key=KEY, max_retries=0) as again:
            reply = again.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=4)
        assert reply.model_extra is not None
        assert reply.model_extra["pdcore"]["plan"] == "pd-device"  # the device was freed


def test_a_client_that_gives_up_on_a_whole_answer_cancels_it() -> None:
    slow = script(first_delay_s=0.01, gap_s=0.05)
    with serving(slow, prefill_token_s=0.02, decode_s=0.05) as (url, _):
        body = {"model": MODEL, "messages": MESSAGES}
        headers = {"Authorization": f"Bearer {KEY}"}
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/chat/completions", json=body, headers=headers, timeout=0.5)
        deadline = time.monotonic() + 20
        while metric(url, "pdcore_answers_in_progress") != 0:
            assert time.monotonic() < deadline, "the abandoned answer was not closed"
            time.sleep(0.05)
        assert metric(url, "pdcore_answers_total") == 1
        assert metric(url, "pdcore_device_tokens_sum") < len(ANSWER) // 2
