"""The streaming cloud client against a scripted SSE server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time

import pytest

pytest.importorskip("httpx", reason="the live runtime needs the `device` extra (httpx, httpx-sse)")
pytest.importorskip("httpx_sse", reason="the live runtime needs the `device` extra (httpx, httpx-sse)")

from pdcore import InvalidInputError, PdcoreError
from pdcore.runtime import (
    CloudClient,
    CloudEvent,
    CloudStreamCutError,
    CloudUnavailableError,
    completions_url,
)
from pdcore.runtime.cloud import CloudContextError, chat_messages
from pdcore.runtime.device import chatml
from pdcore.runtime.testing import CloudScript, FakeCloud, unused_url, word_pieces

PIECES = word_pieces("The capital of France is Paris.")


async def collect(client: CloudClient, max_tokens: int = 32, prompt: str = "prompt") -> list[CloudEvent]:
    try:
        return [event async for event in client.stream(prompt, max_tokens=max_tokens)]
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/v1/completions"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000/v1/completions"),
        ("https://api.example.com/v1", "https://api.example.com/v1/completions"),
        ("http://h/v1/completions", "http://h/v1/completions"),
    ],
)
def test_completions_url(url: str, endpoint: str) -> None:
    assert completions_url(url) == endpoint


def test_bad_or_missing_url_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidInputError, match="not an http"):
        completions_url("127.0.0.1:8000")
    monkeypatch.delenv("PDCORE_CLOUD_URL", raising=False)
    with pytest.raises(InvalidInputError, match="PDCORE_CLOUD_URL"):
        CloudClient()


def test_streams_events_in_order_with_timestamps_and_finish_reason() -> None:
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.05, gap_s=0.02)) as cloud:
        started = time.perf_counter()
        events = asyncio.run(collect(CloudClient(cloud.url)))
    assert [event.text for event in events] == PIECES
    assert [event.finish_reason for event in events] == [None] * (len(PIECES) - 1) + ["stop"]
    stamps = [event.at - started for event in events]
    assert stamps == sorted(stamps)
    assert stamps[0] >= 0.05
    assert stamps[-1] - stamps[0] >= 0.02 * (len(PIECES) - 1) * 0.9


def test_request_body_and_quota() -> None:
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.0, gap_s=0.0)) as cloud:
        client = CloudClient(cloud.url, model="tiny", extra_body={"top_k": 1, "temperature": 0.5})
        events = asyncio.run(collect(client, max_tokens=3))
    body = cloud.requests[0].body
    assert body == {
        "prompt": "prompt",
        "max_tokens": 3,
        "stream": True,
        "temperature": 0.5,  # the user's setting wins
        "top_p": 1.0,
        "frequency_penalty": 0.0,
        "presence_penalty": 0.0,
        "repeat_penalty": 1.0,
        "model": "tiny",
        "top_k": 1,
    }
    assert [event.text for event in events] == PIECES[:3]
    assert events[-1].finish_reason == "length"


def test_sampling_matches_the_device_and_a_refused_field_is_dropped_once() -> None:
    with FakeCloud(
        CloudScript(PIECES, first_delay_s=0.0, gap_s=0.0, refuse_fields=("repeat_penalty",))
    ) as cloud:
        client = CloudClient(cloud.url)
        events = asyncio.run(collect(client, max_tokens=2))
        asyncio.run(collect(client, max_tokens=2))
    assert [event.text for event in events] == PIECES[:2]
    assert len(cloud.requests) == 2, "the refused request is not served; the retry and the next one are"
    for served in cloud.requests:
        assert "repeat_penalty" not in served.body
        assert served.body["temperature"] == 0.0


def test_the_context_window_is_read_from_the_server_or_learned_from_its_error() -> None:
    script = CloudScript(PIECES, first_delay_s=0.0, gap_s=0.0, model_fields={"max_model_len": 8192})
    with FakeCloud(script) as cloud:
        assert asyncio.run(CloudClient(cloud.url).context_window()) == 8192
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.0, gap_s=0.0, context_tokens=50)) as cloud:
        client = CloudClient(cloud.url)

        async def ask() -> None:
            assert await client.context_window() is None
            await collect(client, prompt="word " * 60)

        with pytest.raises(CloudContextError, match="context window of 50 tokens") as info:
            asyncio.run(ask())
        assert info.value.context_tokens == 50
        assert client.context_tokens == 50
        assert isinstance(info.value, CloudUnavailableError), "nothing arrived: the device goes on alone"


def test_an_empty_stream_from_a_server_that_only_says_so_unstreamed_is_diagnosed() -> None:
    script = CloudScript(PIECES, context_tokens=50, silent_context_error=True)
    with FakeCloud(script) as cloud:
        client = CloudClient(cloud.url)
        with pytest.raises(CloudContextError, match="context window of 50 tokens"):
            asyncio.run(collect(client, prompt="word " * 60))
    assert client.context_tokens == 50


def test_the_server_counts_tokens_where_it_can() -> None:
    with FakeCloud(CloudScript(PIECES, tokenize=True)) as cloud:
        assert asyncio.run(CloudClient(cloud.url).count_tokens("one two three")) == 3
    with FakeCloud(CloudScript(PIECES)) as cloud:
        assert asyncio.run(CloudClient(cloud.url).count_tokens("one two three")) is None


def test_chat_endpoints_get_messages_and_continue_an_open_assistant_turn() -> None:
    prompt = chatml("Hi") + "Hello"
    assert chat_messages(prompt) == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
    ]
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.0, gap_s=0.0)) as cloud:
        client = CloudClient(cloud.url, api="chat")
        events = asyncio.run(collect(client, prompt=chatml("Hi"), max_tokens=2))
        asyncio.run(collect(client, prompt=prompt, max_tokens=2))
    assert client.endpoint.endswith("/v1/chat/completions")
    assert [event.text for event in events] == PIECES[:2]
    first, second = cloud.requests
    assert first.path == "/v1/chat/completions"
    assert first.body["messages"] == [{"role": "user", "content": "Hi"}]
    assert "continue_final_message" not in first.body
    assert second.body["continue_final_message"] is True
    assert second.body["add_generation_prompt"] is False
    with pytest.raises(InvalidInputError, match="api"):
        CloudClient(cloud.url, api="rest")


def test_api_key_is_sent_from_the_environment_but_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDCORE_CLOUD_API_KEY", "sk-secret-123")
    with FakeCloud(CloudScript(PIECES, first_delay_s=0.0, gap_s=0.0)) as cloud:
        monkeypatch.setenv("PDCORE_CLOUD_URL", cloud.url)
        client = CloudClient()
        assert "sk-secret" not in repr(client)
        assert client.has_api_key
        asyncio.run(collect(client))
    assert cloud.requests[0].headers["Authorization"] == "Bearer sk-secret-123"


def test_unreachable_cloud_raises_unavailable_without_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDCORE_CLOUD_API_KEY", "sk-secret-123")
    with pytest.raises(CloudUnavailableError, match="unavailable") as raised:
        asyncio.run(collect(CloudClient(unused_url())))
    assert "sk-secret" not in str(raised.value)
    assert isinstance(raised.value, PdcoreError)


def test_refusal_raises_unavailable_with_the_status() -> None:
    with (
        FakeCloud(CloudScript(PIECES, status=429)) as cloud,
        pytest.raises(CloudUnavailableError, match="HTTP 429"),
    ):
        asyncio.run(collect(CloudClient(cloud.url)))


def test_cut_after_some_events_raises_cut() -> None:
    received: list[CloudEvent] = []

    async def consume(client: CloudClient) -> None:
        try:
            async for event in client.stream("prompt", max_tokens=32):
                received.append(event)
        finally:
            await client.aclose()

    with (
        FakeCloud(CloudScript(PIECES, first_delay_s=0.0, gap_s=0.0, cut_after=2)) as cloud,
        pytest.raises(CloudStreamCutError, match="after 2 events"),
    ):
        asyncio.run(consume(CloudClient(cloud.url)))
    assert [event.text for event in received] == PIECES[:2]


def test_stall_raises_cut_after_the_read_timeout() -> None:
    script = CloudScript(PIECES, first_delay_s=0.0, gap_s=0.0, stall_after=1)
    with FakeCloud(script) as cloud, pytest.raises(CloudStreamCutError, match=r"no token for 0\.2 s"):
        asyncio.run(collect(CloudClient(cloud.url, read_timeout=0.2)))


def test_no_first_event_within_the_read_timeout_is_unavailable() -> None:
    with (
        FakeCloud(CloudScript(PIECES, first_delay_s=1.0)) as cloud,
        pytest.raises(CloudUnavailableError, match=r"no token for 0\.2 s"),
    ):
        asyncio.run(collect(CloudClient(cloud.url, read_timeout=0.2)))


def test_ping_measures_a_round_trip() -> None:
    async def ping(client: CloudClient) -> float:
        try:
            return await client.ping()
        finally:
            await client.aclose()

    with FakeCloud(CloudScript(PIECES)) as cloud:
        assert 0.0 < asyncio.run(ping(CloudClient(cloud.url))) < 1.0
    with pytest.raises(CloudUnavailableError):
        asyncio.run(ping(CloudClient(unused_url())))


def test_max_tokens_must_be_positive() -> None:
    with pytest.raises(InvalidInputError, match="max_tokens"):
        asyncio.run(collect(CloudClient(unused_url()), max_tokens=0))
