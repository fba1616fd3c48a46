"""A streamed answer that starts before its prompt is counted (`pdcore.serve.context_guard`): the guard's
rule, and a prompt that turns out too long refused before the first byte or, once the stream has started,
by an error event, its answer closed either way."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="`pdcore serve` needs the `serve` extra")
pytest.importorskip("httpx", reason="the live runtime needs the `device` extra")

import httpx

from pdcore.runtime import CloudClient, Device, Session
from pdcore.runtime.testing import CloudScript, FakeCloud, FakeEngine, word_pieces
from pdcore.serve import create_app
from pdcore.serve.context_guard import LIKELY_MARGIN, ContextGuard
from test_serve_http import ANSWER, MODEL, error_of, events

N_CTX = 64
LONG = "word " * 40  # 200 bytes: 201 device tokens, far past the window


class SlowTokenizer(FakeEngine):
    """A fake engine whose tokenization takes ``delay_s``: the cloud's first piece comes first."""

    def __init__(self, *args: Any, delay_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.delay_s = delay_s

    def tokenize(self, text: str, *, prompt: bool) -> list[int]:
        if prompt:
            time.sleep(self.delay_s)
        return super().tokenize(text, prompt=prompt)


Check = Callable[[httpx.AsyncClient], Awaitable[None]]


def serve(
    check: Check, *, tokenize_s: float, first_delay_s: float, density: float | None, max_tpot_s: float = 0.05
) -> None:
    """Runs ``check`` against an app whose guard has learned ``density`` tokens per byte."""

    async def run(url: str) -> None:
        fake = SlowTokenizer(
            ANSWER, prefill_token_s=0.001, call_s=0.001, decode_s=0.001, n_ctx=N_CTX, delay_s=tokenize_s
        )
        client = CloudClient(url)
        device = Device(lambda: fake)
        session = Session(
            cloud=client,
            device=device,
            device_profile=fake.profile(),
            k=3,
            max_tpot_s=max_tpot_s,
            max_tokens=400,
        )
        app = create_app(session, model_id=MODEL, context_tokens=N_CTX)
        app.state.served.guard.most_tokens_per_byte = density
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://serve") as http:
                await check(http)
            await asyncio.sleep(0)
            assert not asyncio.all_tasks() - {asyncio.current_task()}, "no check or answer outlives it"
        finally:
            await client.aclose()
            device.close()

    script = CloudScript(word_pieces(ANSWER), first_delay_s=first_delay_s, gap_s=0.002)
    with FakeCloud(script) as cloud:
        asyncio.run(run(cloud.url))


def test_a_long_prompt_found_out_after_the_stream_started_ends_it_with_the_error() -> None:
    async def check(http: httpx.AsyncClient) -> None:
        response = await http.post("/v1/completions", json={"prompt": LONG, "stream": True})
        assert response.status_code == 200, "started before the count (a low density was learned)"
        data = events(response.text)
        assert data[-1] == "[DONE]"
        error = data[-2]["error"]
        assert error["code"] == "context_length_exceeded"
        assert "context window is 64" in error["message"]
        shown = "".join(chunk["choices"][0]["text"] for chunk in data[:-2])
        assert shown, "a piece came before the count"
        assert shown != ANSWER, "the answer was stopped"

    # a display gap of up to 0.5 s: the display waits for the device past the count (0.3 s); at 50 ms the
    # cloud would be asked for the rest of the answer once the gap passed it (the stall rule of
    # `pdcore.runtime.continuation`) and could finish it before the count
    serve(check, tokenize_s=0.3, first_delay_s=0.0, density=0.05, max_tpot_s=0.5)


def test_a_long_prompt_counted_before_the_first_piece_is_still_a_400() -> None:
    async def check(http: httpx.AsyncClient) -> None:
        response = await http.post("/v1/completions", json={"prompt": LONG, "stream": True})
        error = error_of(response, 400)
        assert (error["code"], error["param"]) == ("context_length_exceeded", "prompt")

    serve(check, tokenize_s=0.0, first_delay_s=0.3, density=0.05)


@pytest.mark.parametrize("density", [None, 1.0])
def test_without_a_likely_fit_the_count_comes_first(density: float | None) -> None:
    """Nothing learned, or a density that says the prompt may not fit: the count is awaited, a 400."""

    async def check(http: httpx.AsyncClient) -> None:
        response = await http.post("/v1/completions", json={"prompt": LONG, "stream": True})
        assert error_of(response, 400)["code"] == "context_length_exceeded"

    serve(check, tokenize_s=0.3, first_delay_s=0.0, density=density)


def test_the_guard_learns_the_densest_prompt_and_keeps_the_margin() -> None:
    guard = ContextGuard()
    assert not guard.likely_fits("short", 4096), "nothing counted yet"
    guard.learn("abcd", 2)  # 0.5 tokens a byte
    guard.learn("abcdefgh", 2)  # 0.25: not denser
    guard.learn("", 3)
    guard.learn("abc", None)
    assert guard.most_tokens_per_byte == 0.5
    room = 1000
    longest = max(n for n in range(room * 2) if math.ceil(n * 0.5 * LIKELY_MARGIN) + 1 < room)
    assert guard.likely_fits("x" * longest, room)
    assert not guard.likely_fits("x" * (longest + 1), room)
    assert not guard.likely_fits("x", None)
    assert guard.likely_fits("é" * (longest // 2), room), "counted in bytes"
    assert not guard.likely_fits("é" * (longest // 2 + 1), room)
