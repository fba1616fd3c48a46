"""``pdcore serve``'s app over raw HTTP (in process, `httpx.ASGITransport`), with a scripted cloud
(`FakeCloud`) and a scripted device (`FakeEngine`): the routes, the API key, every 4xx case, the stream's
shape and ending, ``max_tokens``, an error after the stream started, and ``/metrics``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="pdcore serve needs the `serve` extra")
pytest.importorskip("httpx_sse", reason="the live runtime needs the `device` extra")

import httpx
from prometheus_client.parser import text_string_to_metric_families

from pdcore.runtime import CloudClient, Device, Piece, Session
from pdcore.runtime.testing import CloudScript, FakeCloud, FakeEngine, word_pieces
from pdcore.serve import app as serve_app
from pdcore.serve import create_app

ANSWER = "Paris is the capital of France. It is known for the Eiffel Tower and the Seine."
MODEL = "fake-model"
KEY = "s3cret"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Tell me about Paris."}]}

Check = Callable[[httpx.AsyncClient, FakeCloud], Awaitable[None]]


def script(**options: Any) -> CloudScript:
    return CloudScript(word_pieces(ANSWER), **({"first_delay_s": 0.005, "gap_s": 0.002} | options))


def served(
    check: Check,
    *,
    api_key: str | None = None,
    n_ctx: int = 1 << 20,
    chat_template: str | None = None,
    conversation_cache: bool = False,
    **cloud: Any,
) -> None:
    """Runs ``check`` against an app over a fresh session, cloud and device, in one event loop."""

    async def run(url: str) -> None:
        fake = FakeEngine(ANSWER, prefill_token_s=0.001, call_s=0.001, decode_s=0.001, n_ctx=n_ctx)
        client = CloudClient(url)
        device = Device(lambda: fake, conversation_cache=conversation_cache)
        session = Session(
            cloud=client, device=device, device_profile=fake.profile(), k=3, max_tpot_s=0.05, max_tokens=400
        )
        app = create_app(
            session, model_id=MODEL, api_key=api_key, context_tokens=n_ctx, chat_template=chat_template
        )
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://serve") as http:
                await check(http, cloud_server)
            await asyncio.sleep(0)
            leftover = asyncio.all_tasks() - {asyncio.current_task()}
            assert not leftover, leftover  # no answer's task outlives its request
        finally:
            await client.aclose()
            device.close()

    with FakeCloud(script(**cloud)) as cloud_server:
        asyncio.run(run(cloud_server.url))


def events(body: str) -> list[Any]:
    """The data of each server-sent event (``[DONE]`` as the string)."""
    out: list[Any] = []
    for line in body.splitlines():
        if line.startswith("data: "):
            data = line[len("data: ") :]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


def metric_values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_health_models_and_unknown_routes() -> None:
    async def check(http: httpx.AsyncClient, cloud: FakeCloud) -> None:
        assert (await http.get("/health")).json()["status"] == "ok"
        models = (await http.get("/v1/models")).json()
        assert models["object"] == "list"
        assert [entry["id"] for entry in models["data"]] == [MODEL]
        assert error_of(await http.get("/v1/nothing"), 404)["code"] == "not_found"
        assert error_of(await http.get("/v1/chat/completions"), 405)["code"] == "method_not_allowed"

    served(check)


def test_every_route_but_health_needs_the_api_key() -> None:
    async def check(http: httpx.AsyncClient, cloud: FakeCloud) -> None:
        assert (await http.get("/health")).status_code == 200
        for method, path in (("GET", "/v1/models"), ("GET", "/metrics"), ("POST", "/v1/chat/completions")):
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
                response = await http.request(method, path, headers=headers, json=CHAT)
                error = error_of(response, 401)
                assert error["code"] == "invalid_api_key"
                assert "Authorization: Bearer KEY" in error["message"]
                assert response.headers["www-authenticate"] == "Bearer"
        good = {"Authorization": f"Bearer {KEY}"}
        assert (await http.get("/v1/models", headers=good)).status_code == 200
        answer = await http.post("/v1/chat/completions", headers=good, json=CHAT)
        assert answer.json()["choices"][0]["message"]["content"] == ANSWER

    served(check, api_key=KEY)


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"model": MODEL}, "messages", "Field required"),
        ({"messages": []}, "messages", "at least 1 item"),
        ({"messages": "hi"}, "messages", "valid list"),
        ({"messages": [{"content": "hi"}]}, "messages.0.role", "Field required"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role", "unknown role 'robot'"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content", "valid"),
        ({**CHAT, "max_tokens": "many"}, "max_tokens", "valid integer"),
        ({**CHAT, "max_tokens": 0}, "max_tokens", "greater than or equal to 1"),
        ({**CHAT, "stream": "yes please"}, "stream", "valid boolean"),
        ({**CHAT, "temperature": 7}, "temperature", "less than or equal to 2"),
    ],
)
def test_a_malformed_body_is_a_400_naming_the_field(body: dict[str, Any], param: str, words: str) -> None:
    async def check(http: httpx.AsyncClient, cloud: FakeCloud) -> None:
        error = error_of(await http.post("/v1/chat/completions", json=body), 400)
        assert error["type"] == "invalid_request_error"
        assert error["param"] == param
        assert words in error["message"]
        assert error["message"].startswith(param)

    served(check)


def test_a_body_that_is_not_json_is_a_400() -> None:
    async def check(http: httpx.AsyncClient, cloud: FakeCloud) -> None:
        headers = {"Content-Type": "application/json"}
        for content in (b"{not json", b"[1, 2]"):
            response = await http.post("/v1/completions", content=content, headers=headers)
            assert error_of(response, 400)["code"] in ("invalid_json", "invalid_value")
        assert error_of(await http.post("/v1/completions", json={"prompt": 3}), 400)["param"] == "prompt"
        assert cloud.requests == []

    served(check)


def test_unknown_model_unsupported_options_and_a_long_prompt_are_refused() -> None:
    async def check(http: httpx.AsyncClient, cloud: FakeCloud) -> None:
        error = error_of(await http.post("/v1/chat/completions", json={**CHAT, "model": "gpt-9"}), 404)
        assert (error["code"], error["param"]) == ("model_not_found", "model")
        assert MODEL in error["message"]
        for option, value in (("n", 2), ("temperature", 0.8), ("stop", ["\n"]), ("logprobs", True)):
            error = error_of(await http.post("/v1/chat/completions", json={**CHAT, option: value}), 400)
            assert (error["code"], error["param"]) == ("unsupported_option", option)
        image = {"type": "image_url", "image_url": {"url": "http://x/cat.png"}}
        body = {"messages": [{"role": "user", "content": [image]}]}
        error = error_of(await http.post("/v1/chat/completions", json=body), 400)
        assert error["param"] == "messages.0.content.0.type"
        error = error_of(await http.post("/v1/completions", json={"prompt": "word " * 40}), 400)
        assert (error["code"], error["param"]) == ("context_length_exceeded", "prompt")
        assert "context window is 64" in error["message"]
        ok = await http.post("/v1/completions", json={"prompt": "Paris?", "max_tokens": 3})
        assert ok.status_code == 200, ok.text
        # the refused prompts' answers were closed: the device is free for the next one
        assert ok.json()["pdcore"]["plan"] != "cloud-only", ok.json()["pdcore"]

    served(check, n_ctx=64)


def test_a_chat_answer_whole_has_openais_shape_usage_and_the_extension() -> None:
    async def check(http: httpx.AsyncClient, cloud: FakeCloud) -> None:
        body = (await http.post("/v1/chat/completions", json=CHAT)).json()
        assert body["object"] == "chat.completion"
        assert body["id"].startswith("chatcmpl-")
        assert body["model"] == MODEL
        (choice,) = body["choices"]
        assert choice["message"]["role"] == "assistant"
        assert choice["message"]["content"] == ANSWER
        assert choice["finish_reason"] == "stop"
        usage = body["usage"]
        assert usage["completion_tokens"] > 0
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        figures = body["pdcore"]
        assert figures["plan"] == "pd-device"
        assert figures["k"] == 3
        assert sum(figures["tokens_by_source"].values()) == usage["completion_tokens"]
        assert figures["tokens_by_source"]["cloud"] >= 1
        assert figures["ttft_s"] > 0
        prompt = cloud.requests[0].body["prompt"]
        assert "Tell me about Paris." in prompt

    served(check)


def test_a_stream_ends_with_the_finish_chunk_usage_extension_and_done() -> None:
    async def check(http: httpx.AsyncClient, cloud: FakeCloud) -> None:
        body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
        response = await http.post("/v1/chat/completions", json=body)
        assert response.headers["content-type"].startswith("text/event-stream")
        data = events(response.text)
        assert data[-1] == "[DONE]"
        chunks = data[:-1]
        assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
        assert len({chunk["id"] for chunk in chunks}) == 1
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
        text = "".join(
            chunk["choices"][0]["delta"].get("content", "") for chunk in chunks if chunk["choices"]
        )
        assert text == ANSWER
        finish, last = chunks[-2], chunks[-1]
        assert finish["choices"][0]["finish_reason"] == "stop"
        assert last["choices"] == []
        assert last["usage"]["completion_tokens"] == len(chunks) - 2
        assert last["pdcore"]["tokens_by_source"]["cloud"] >= 1
        assert all("pdcore" not in chunk for chunk in chunks[:-1])

    served(check)


def test_max_tokens_cuts_the_answer_with_finish_reason_length() -> None:
    async def check(http: httpx.AsyncClient, cloud: FakeCloud) -> None:
        whole = (await http.post("/v1/completions", json={"prompt": "Paris?", "max_tokens": 2})).json()
        assert whole["object"] == "text_completion"
        assert whole["choices"][0]["finish_reason"] == "length"
        assert whole["usage"]["completion_tokens"] == 2
        assert whole["choices"][0]["text"]
        assert ANSWER.startswith(whole["choices"][0]["text"])
        assert sum(whole["pdcore"]["tokens_by_source"].values()) == 2
        stream = await http.post(
            "/v1/completions", json={"prompt": "Paris?", "max_tokens": 6, "stream": True}
        )
        chunks = events(stream.text)[:-1]
        assert [chunk["object"] for chunk in chunks] == ["text_completion"] * 7
        assert chunks[-1]["choices"][0]["finish_reason"] == "length"
        assert chunks[-1]["pdcore"]["plan"] == "pd-device"
        # the request's max_tokens is the cloud's ceiling too, continuations included
        assert [request.body["max_tokens"] <= 6 for request in cloud.requests] == [True] * len(cloud.requests)
        assert cloud.requests[0].body["max_tokens"] == 2

    served(check)


class BrokenAnswer:
    """An answer that fails after two pieces (as a runtime error after the stream started would)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.closed = False

    @property
    def timeline(self) -> Any:
        return self.real.timeline

    @property
    def cached_tokens(self) -> int:
        return 0

    async def prompt_tokens(self) -> int | None:
        return await self.real.prompt_tokens()  # type: ignore[no-any-return]

    async def _pieces(self) -> AsyncIterator[Piece]:
        count = 0
        async for piece in self.real:
            yield piece
            count += 1
            if count == 2:
                raise RuntimeError("the model exploded")

    def __aiter__(self) -> AsyncIterator[Piece]:
        return self._pieces()

    async def aclose(self) -> None:
        self.closed = True
        await self.real.aclose()


def test_an_error_after_the_stream_started_ends_it_with_an_error_event_and_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[BrokenAnswer] = []
    real_open = serve_app.open_answer

    async def broken(session: Session, prompt: str, max_tokens: int | None = None) -> Any:
        opened.append(BrokenAnswer(await real_open(session, prompt, max_tokens)))
        return opened[-1]

    monkeypatch.setattr(serve_app, "open_answer", broken)

    async def check(http: httpx.AsyncClient, cloud: FakeCloud) -> None:
        response = await http.post("/v1/chat/completions", json={**CHAT, "stream": True})
        assert response.status_code == 200
        data = events(response.text)
        assert data[-1] == "[DONE]"
        assert [chunk["choices"][0]["delta"]["content"] for chunk in data[:2]] == word_pieces(ANSWER)[:2]
        error = data[-2]["error"]
        assert error["code"] == "internal_error"
        assert "RuntimeError: the model exploded" in error["message"]
        assert "Traceback" not in response.text
        assert opened[0].closed
        metrics = metric_values((await http.get("/metrics")).text)
        assert metrics[("pdcore_request_errors_total", (("code", "internal_error"),))] == 1
        assert metrics[("pdcore_answers_in_progress", ())] == 0

    served(check)


def test_metrics_count_answers_hand_offs_and_errors() -> None:
    async def check(http: httpx.AsyncClient, cloud: FakeCloud) -> None:
        for _ in range(2):
            assert (await http.post("/v1/chat/completions", json=CHAT)).status_code == 200
        await http.post("/v1/chat/completions", json={**CHAT, "model": "nope"})
        response = await http.get("/metrics")
        assert response.headers["content-type"].startswith("text/plain")
        values = metric_values(response.text)
        assert values[("pdcore_answers_total", (("plan", "pd-device"),))] == 2
        assert values[("pdcore_ttft_seconds_count", ())] == 2
        assert values[("pdcore_max_gap_seconds_count", ())] == 2
        assert values[("pdcore_handoffs_total", ())] == 2
        assert values[("pdcore_handoff_gap_seconds_count", ())] == 2
        assert values[("pdcore_cloud_tokens_count", ())] == 2
        assert values[("pdcore_cloud_fallbacks_total", ())] == 0
        assert values[("pdcore_device_failures_total", ())] == 0
        assert values[("pdcore_device_cached_tokens_total", ())] >= 0
        assert values[("pdcore_request_errors_total", (("code", "model_not_found"),))] == 1
        assert values[("pdcore_answers_in_progress", ())] == 0

    served(check)


def test_a_chat_prompt_goes_through_the_models_template_and_a_refusal_is_a_400() -> None:
    template = (
        "{% for m in messages %}{% if loop.index0 % 2 == 1 and m.role != 'assistant' %}"
        "{{ raise_exception('user and assistant turns must alternate') }}{% endif %}"
        "[{{ m.role }}] {{ m.content }}\n{% endfor %}[assistant] "
    )

    async def check(http: httpx.AsyncClient, cloud: FakeCloud) -> None:
        messages = [
            {"role": "developer", "content": "Be brief."},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": [{"type": "text", "text": "Paris?"}]},
        ]
        response = await http.post("/v1/chat/completions", json={"messages": messages})
        assert response.status_code == 200, response.text
        assert (
            cloud.requests[0].body["prompt"]
            == "[system] Be brief.\n[assistant] Hello.\n[user] Paris?\n[assistant] "
        )
        twice = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
        error = error_of(await http.post("/v1/chat/completions", json={"messages": twice}), 400)
        assert (error["code"], error["param"]) == ("invalid_messages", "messages")
        assert "must alternate" in error["message"]

    served(check, chat_template=template)


def test_a_follow_up_turn_reuses_the_devices_cache_and_says_so() -> None:
    async def check(http: httpx.AsyncClient, cloud: FakeCloud) -> None:
        messages: list[dict[str, str]] = [{"role": "user", "content": "Tell me about Paris."}]
        cached: list[int] = []
        for question in ("And its river?", "And its tower?"):
            body = (
                await http.post("/v1/chat/completions", json={"model": MODEL, "messages": messages})
            ).json()
            assert body["usage"]["prompt_tokens_details"]["cached_tokens"] == body["pdcore"]["cached_tokens"]
            cached.append(body["pdcore"]["cached_tokens"])
            messages += [
                {"role": "assistant", "content": body["choices"][0]["message"]["content"]},
                {"role": "user", "content": question},
            ]
        body = (await http.post("/v1/chat/completions", json={"model": MODEL, "messages": messages})).json()
        cached.append(body["pdcore"]["cached_tokens"])
        assert cached[0] == 0
        assert 0 < cached[1] < cached[2] < body["usage"]["prompt_tokens"]
        values = metric_values((await http.get("/metrics")).text)
        assert values[("pdcore_device_cached_tokens_total", ())] == sum(cached)

    served(check, conversation_cache=True)


def test_a_cloud_that_refuses_leaves_the_answer_to_the_device_with_a_notice_and_a_fallback_counted() -> None:
    async def check(http: httpx.AsyncClient, cloud: FakeCloud) -> None:
        body = (await http.post("/v1/chat/completions", json=CHAT)).json()
        assert body["choices"][0]["message"]["content"] == ANSWER
        figures = body["pdcore"]
        assert figures["tokens_by_source"] == {"cloud": 0, "device": len(ANSWER)}
        assert [notice["kind"] for notice in figures["notices"]] == ["cloud-unavailable"]
        values = metric_values((await http.get("/metrics")).text)
        assert values[("pdcore_cloud_fallbacks_total", ())] == 1
        assert values[("pdcore_device_tokens_sum", ())] == len(ANSWER)

    served(check, status=503)
