"""The cloud client's network edge against misbehaving servers (scripted in `servers`): a stream that never
ends is cut at the tokens asked for, keep-alive comments and empty events do not hold a stream open, a
request has a whole deadline, a tokenize route that hangs is dropped after one deadline, and the server's
numbers are range-checked before anything is fitted to them.

Every test bounds itself with `within` (an `asyncio.wait_for` of a few seconds), so a regression fails
instead of hanging the suite.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

pytest.importorskip("httpx", reason="the live runtime needs the `device` extra (httpx)")

from pdcore import InvalidInputError
from pdcore.cli import app
from pdcore.runtime import (
    CloudClient,
    CloudEvent,
    CloudStreamCutError,
    CloudUnavailableError,
    Device,
    Session,
)
from pdcore.runtime.cloud_profiler import measure_cloud
from pdcore.runtime.openai_api import context_in_error
from pdcore.runtime.testing import FakeEngine
from pdcore.runtime.token_stream import TokenStream
from servers import (
    DEEP,
    Handler,
    Misbehaving,
    Route,
    after_tokens,
    chunk,
    counted,
    endless,
    finite,
    hang_after_headers,
    keep_alive,
    models,
    reply,
    trickle,
    trickling_headers,
    within,
    words,
)


async def collect(client: CloudClient, max_tokens: int, prompt: str = "prompt") -> list[CloudEvent]:
    try:
        return [event async for event in client.stream(prompt, max_tokens=max_tokens)]
    finally:
        await client.aclose()


# a stream that never ends


def test_a_stream_that_never_ends_is_cut_at_the_tokens_asked_for() -> None:
    with Misbehaving({"/v1/completions": endless}) as server:
        events = within(collect(CloudClient(server.url, read_timeout=1.0), max_tokens=7))
    assert [event.text for event in events] == [" word"] * 7 + [""]
    assert [event.finish_reason for event in events] == [None] * 7 + ["length"]


def test_the_servers_token_count_counts_where_it_reports_one() -> None:
    def batched(handler: Handler, body: dict[str, Any]) -> None:
        handler.sse()
        sent = 0
        while not handler.server_.stop.is_set():
            sent += 3
            payload = {
                "choices": [{"text": " a b c", "finish_reason": None}],
                "usage": {"completion_tokens": sent},
            }
            handler.send(f"data: {json.dumps(payload)}\n\n")
            time.sleep(0.002)

    with Misbehaving({"/v1/completions": batched}) as server:
        events = within(collect(CloudClient(server.url, read_timeout=1.0), max_tokens=9))
    assert [event.text for event in events if event.text] == [" a b c"] * 3
    assert events[-1].finish_reason == "length"


def test_a_stream_silent_after_the_tokens_asked_for_ends_as_length() -> None:
    with Misbehaving({"/v1/completions": keep_alive(3, ": keep-alive\n\n")}) as server:
        started = time.perf_counter()
        events = within(collect(CloudClient(server.url, read_timeout=0.3), max_tokens=3))
    assert [(event.text, event.finish_reason) for event in events] == [(" word", None)] * 3 + [("", "length")]
    assert time.perf_counter() - started < 1.5


def test_a_cloud_only_session_against_an_endless_stream_ends() -> None:
    with Misbehaving({"/v1/completions": endless}) as server:

        async def run() -> str:
            cloud = CloudClient(server.url, read_timeout=1.0)
            try:
                session = Session(cloud=cloud, mode="cloud-only", k=0, max_tokens=6, max_tpot_s=0.02)
                return (await session.complete("prompt")).text
            finally:
                await cloud.aclose()

        assert within(run()) == " word" * 6


def test_profile_cloud_against_an_endless_stream_ends() -> None:
    routes: dict[str, Route] = {"/v1/completions": endless, "/v1/models": models, "/tokenize": words}
    with Misbehaving(routes) as server:

        async def run() -> None:
            async with CloudClient(server.url, read_timeout=1.0) as client:
                measured = await measure_cloud(
                    client, lengths=(16, 32), concurrency=(1, 2), decode_tokens=4, repeats=1
                )
            assert measured.context_tokens == 4096
            assert len(measured.gap_s) == 2 * 5 + 1 * 3 + 2 * 3

        within(run())


# keep-alive comments, empty events and bytes are not progress


@pytest.mark.parametrize(
    "filler",
    [
        ": keep-alive\n\n",
        "\n",
        "data: \n\n",
        chunk(""),
        'data: {"choices": [{"text": null}]}\n\n',
        "event: ping\n\n",
    ],
    ids=["comment", "blank line", "empty data", "empty text", "null text", "no data"],
)
def test_what_carries_no_token_does_not_hold_a_stream_open(filler: str) -> None:
    # the read timeout is also the first token's deadline: 1 s, so that a busy machine's late first token is
    # not taken for the cloud being unavailable (0.3 s failed once so in a full run); the filler comes every
    # 20 ms, far inside it either way
    with Misbehaving({"/v1/completions": keep_alive(2, filler)}) as server:
        started = time.perf_counter()
        with pytest.raises(CloudStreamCutError, match=r"cut after 2 events: no token for 1 s"):
            within(collect(CloudClient(server.url, read_timeout=1.0), max_tokens=10))
    assert time.perf_counter() - started < 4.0


def test_keep_alive_before_the_first_token_is_unavailable() -> None:
    with (
        Misbehaving({"/v1/completions": keep_alive(0, ": keep-alive\n\n")}) as server,
        pytest.raises(CloudUnavailableError, match=r"no token for 0\.3 s"),
    ):
        within(collect(CloudClient(server.url, read_timeout=0.3), max_tokens=10))


def test_headers_that_trickle_are_bounded_too() -> None:
    with (
        Misbehaving({"/v1/completions": trickling_headers}) as server,
        pytest.raises(CloudUnavailableError, match=r"no token for 0\.3 s"),
    ):
        within(collect(CloudClient(server.url, read_timeout=0.3), max_tokens=10))


def test_a_stream_has_a_whole_deadline_from_its_tokens() -> None:
    # a token every 0.1 s, within the stall deadline every time, but slower than the slowest plausible
    # pace given (0.02 s a token): 10 tokens may take 0.5 + 10 * 0.02 s in all
    with Misbehaving({"/v1/completions": trickle(0.1)}) as server:
        client = CloudClient(server.url, read_timeout=0.5, slowest_token_s=0.02)
        started = time.perf_counter()
        with pytest.raises(CloudStreamCutError, match=r"whole request.*0\.7 s"):
            within(collect(client, max_tokens=10))
    assert 0.6 < time.perf_counter() - started < 1.5


def test_a_well_behaved_stream_is_unchanged() -> None:
    with Misbehaving({"/v1/completions": finite}) as server:
        events = within(collect(CloudClient(server.url, read_timeout=1.0), max_tokens=5))
    assert [event.text for event in events] == [" word"] * 5
    assert [event.finish_reason for event in events] == [None] * 4 + ["length"]


def test_an_event_too_large_or_too_deep_is_refused() -> None:
    def huge(handler: Handler, body: dict[str, Any]) -> None:
        handler.sse()
        handler.send(chunk(" word"))
        handler.send("data: " + "x" * (2 << 20))
        handler.hang()

    def deep(handler: Handler, body: dict[str, Any]) -> None:
        handler.sse()
        handler.send("data: " + DEEP + "\n\n")

    with (
        Misbehaving({"/v1/completions": huge}) as server,
        pytest.raises(CloudStreamCutError, match="larger than"),
    ):
        within(collect(CloudClient(server.url, read_timeout=5.0), max_tokens=10))
    with (
        Misbehaving({"/v1/completions": deep}) as server,
        pytest.raises(CloudUnavailableError, match="unexpected event"),
    ):
        within(collect(CloudClient(server.url, read_timeout=5.0), max_tokens=10))


def test_events_are_decoded_whatever_the_chunks() -> None:
    raw = (
        'data: {"choices": [{"text": "é"}]}\r\n: comment\r\n\r\n'
        'data:{"choices":\r\ndata: [{"text": "b", "finish_reason": "stop"}]}\r\n\r\n'
        "data: [DONE]\r\n\r\n"
    ).encode()

    async def run(size: int) -> tuple[list[tuple[str, str | None]], bool]:
        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(raw), size):
                yield raw[start : start + size]

        reader = TokenStream("test", budget=10, stall_s=1.0)
        return [(event.text, event.finish_reason) async for event in reader.events(chunks())], reader.finished

    for size in (1, 2, 3, 7, len(raw)):
        assert within(run(size)) == ([("é", None), ("b", "stop")], True), size


# tokenize and model information


def test_a_tokenize_route_that_hangs_is_dropped_after_one_deadline() -> None:
    routes: dict[str, Route] = {"/extras/tokenize": hang_after_headers, "/tokenize": hang_after_headers}
    notices: list[str] = []
    with Misbehaving(routes) as server:

        async def run() -> list[int | None]:
            async with CloudClient(server.url, tokenize_timeout=0.2) as client:
                return [await client.count_tokens(f"prompt {i}", notice=notices.append) for i in range(20)]

        started = time.perf_counter()
        assert within(run()) == [None] * 20
        assert time.perf_counter() - started < 1.5
    assert server.hits == {"/extras/tokenize": 1, "/tokenize": 1}
    assert len(notices) == 1
    assert "0.2 s" in notices[0]
    assert "/tokenize" in notices[0]


def test_profile_cloud_with_a_hanging_tokenize_estimates_with_one_notice() -> None:
    routes: dict[str, Route] = {
        "/v1/completions": finite,
        "/v1/models": models,
        "/tokenize": hang_after_headers,
    }
    lines: list[str] = []
    with Misbehaving(routes) as server:

        async def run() -> bool:
            async with CloudClient(server.url, read_timeout=1.0, tokenize_timeout=0.2) as client:
                measured = await measure_cloud(
                    client,
                    lengths=(16, 32),
                    concurrency=(1, 2),
                    decode_tokens=4,
                    repeats=2,
                    progress=lines.append,
                )
            return measured.tokens_counted_by_server

        assert within(run()) is False
    assert server.hits["/tokenize"] == 1
    assert sum("did not answer" in line for line in lines) == 1


@pytest.mark.parametrize("count", ["1e30", str(2**63), "-5", "0", "true", '"12"', "1.5", str(10**400)])
def test_a_token_count_out_of_range_is_refused_never_fitted(count: str) -> None:
    routes: dict[str, Route] = {"/v1/completions": finite, "/v1/models": models, "/tokenize": counted(count)}
    with Misbehaving(routes) as server:

        async def run() -> None:
            async with CloudClient(server.url, read_timeout=1.0) as client:
                await measure_cloud(client, lengths=(16, 32), concurrency=(1,), decode_tokens=4, repeats=1)

        with pytest.raises(InvalidInputError, match=r"/tokenize.*fix:") as raised:
            within(run())
    assert server.url in str(raised.value)


def test_the_profile_cloud_command_refuses_a_bad_count_and_writes_nothing(tmp_path: Path) -> None:
    routes: dict[str, Route] = {"/v1/completions": finite, "/v1/models": models, "/tokenize": counted("1e30")}
    out = tmp_path / "cloud.toml"
    with Misbehaving(routes) as server:
        result = CliRunner().invoke(app, ["profile-cloud", "--cloud-url", server.url, "--out", str(out)])
    assert result.exit_code != 0
    assert "/tokenize counted 1e+30 tokens" in " ".join(result.output.split())
    assert not out.exists()


def test_model_information_out_of_range_or_malformed_is_not_believed() -> None:
    def deep(handler: Handler, body: dict[str, Any]) -> None:
        reply(handler, 200, (DEEP).encode())

    def huge_window(handler: Handler, body: dict[str, Any]) -> None:
        reply(handler, 200, {"data": [{"id": "m", "max_model_len": 2**63}]})

    def large(handler: Handler, body: dict[str, Any]) -> None:
        reply(handler, 200, b'{"data": [{"max_model_len": 4096, "pad": "' + b"x" * (20 << 20) + b'"}]}')

    for route in (deep, huge_window, large, hang_after_headers):
        with Misbehaving({"/v1/models": route, "/props": route}) as server:

            async def run() -> int | None:
                async with CloudClient(server.url, info_timeout=0.3) as client:
                    return await client.context_window()

            assert within(run()) is None, route.__name__


def test_a_ping_to_a_models_route_that_hangs_is_unavailable() -> None:
    with Misbehaving({"/v1/models": hang_after_headers}) as server:

        async def run() -> float:
            async with CloudClient(server.url, info_timeout=0.3) as client:
                return await client.ping()

        with pytest.raises(CloudUnavailableError, match=r"0\.3 s"):
            within(run())


def test_the_context_window_in_an_error_is_range_checked() -> None:
    assert context_in_error("maximum context length is 4096 tokens") == 4096
    assert context_in_error("maximum context length is 99999999999999999999999 tokens") is None
    assert context_in_error("maximum context length is 0 tokens") is None


def _interrupted_once(handler: Handler, body: dict[str, Any]) -> None:
    """The first request gets one token and ``[DONE]`` with no finish reason (llama.cpp's server does so
    when another request waits, ``interrupt_requests``); later ones a well-behaved stream."""
    if handler.server_.hits["/v1/completions"] == 1:
        after_tokens(1, "data: [DONE]\n\n")(handler, body)
    else:
        finite(handler, body)


@pytest.mark.parametrize("mode", ["cloud-only", "pd-device"])
def test_a_stream_that_ends_short_without_a_finish_reason_is_a_cut_and_resumed(mode: str) -> None:
    answer = " one two three four five six seven eight"
    with Misbehaving({"/v1/completions": _interrupted_once}, answer=answer) as server:

        async def run() -> tuple[str, list[str]]:
            cloud = CloudClient(server.url, read_timeout=1.0)
            device = None
            if mode == "pd-device":
                device = Device(lambda: FakeEngine(answer, prefill_token_s=0.01))
            try:
                session = Session(cloud=cloud, device=device, mode=mode, k=5, max_tokens=6, max_tpot_s=0.02)
                timeline = await session.complete("prompt")
                return timeline.text, [notice.kind for notice in timeline.notices]
            finally:
                await cloud.aclose()
                if device is not None:
                    device.close()

        text, kinds = within(run())
    assert text == " one two three four five six", "the answer continues after the interrupted token"
    assert kinds == ["cloud-cut"], kinds
    assert server.hits["/v1/completions"] == 2, "resumed once"
