"""``pdcore serve`` end to end against the real thing: the command started as a user starts it (a
subprocess on a free loopback port, ``--threads 1``), SmolLM2-135M through llama.cpp on the device, and a
real ``python -m llama_cpp.server`` as the cloud (``$PDCORE_CLOUD_URL``, or one started for the module:
the ``cloud_url`` fixture of ``tests/conftest.py``).

Exercised by the official ``openai`` client and by raw HTTP (httpx): the OpenAI shapes of chat and
completions, streamed and whole; a seeded four-turn conversation whose follow-ups prefill only their new
tokens on the device; text-exact seams; eight concurrent clients; a client killed mid-stream; malformed
bodies. The server runs with a fixed ``--k 3`` so that every answer the device is free for is planned
P/D-Device and the first cloud tokens are handed off to the device (``--k auto`` would give these short
prompts to the device alone, and there would be no seam to check).

Answers are short (8 to 160 tokens) and prompts small, so the module stays within a few minutes on two
cores; no assertion is on a time, only on what the answers and the figures say.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="LIVE SERVE TESTS SKIPPED: pip install 'pdcore[serve]'")
pytest.importorskip("uvicorn", reason="LIVE SERVE TESTS SKIPPED: pip install 'pdcore[serve]'")
pytest.importorskip("openai", reason="LIVE SERVE TESTS SKIPPED: pip install openai")
pytest.importorskip("httpx_sse", reason="LIVE SERVE TESTS SKIPPED: pip install 'pdcore[device]'")

import httpx
import openai
from prometheus_client.parser import text_string_to_metric_families

from pdcore.runtime.chat_template import engine_chat_template, render_chat
from pdcore.runtime.openai_api import GREEDY_SAMPLING
from pdcore.runtime.profiler import filler_text
from pdcore.runtime.testing import free_port
from pdcore.serve.figures import CLOUD_FALLBACKS

pytestmark = pytest.mark.realtime

KEY = "live-serve-key"
K = 3
SERVER_MAX_TOKENS = 256
HANDOFF_AGREEMENT_CHARS = 24  # as in test_runtime_live: near-ties may later pick another token
EXTENSION_KEYS = {
    "plan", "plan_reason", "k", "ttft_s", "max_gap_s", "handoff_position", "handoff_gap_s",
    "tokens_by_source", "prompt_tokens", "cached_tokens", "cloud_resumes", "device_failures", "notices",
}  # fmt: skip


@dataclass
class Server:
    """A running ``pdcore serve``: its base URL, process and log."""

    base: str
    process: subprocess.Popen[bytes]
    log: Path
    model_id: str = ""

    @property
    def v1(self) -> str:
        return f"{self.base}/v1"

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.v1, api_key=KEY, max_retries=0, timeout=120)

    def metrics(self) -> dict[str, float]:
        """Every sample of ``/metrics``, summed over its labels (0 for a labelled one not counted yet)."""
        text = httpx.get(f"{self.base}/metrics", headers=auth(), timeout=30).text
        found: dict[str, float] = defaultdict(float)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                found[sample.name] = found.get(sample.name, 0.0) + sample.value
        return found

    def settled(self, timeout_s: float = 60.0) -> dict[str, float]:
        """``/metrics`` once no answer is in flight (waits for one that is still being closed)."""
        deadline = time.monotonic() + timeout_s
        while (found := self.metrics())["pdcore_answers_in_progress"] != 0:
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, f"an answer is stuck in flight: {found}"
            time.sleep(0.1)
        return found


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (the device's worker), from ``/proc``."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in {"Z", "X"}


@pytest.fixture(scope="module")
def server(cloud_url: str, model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``pdcore serve`` in front of the real cloud, stopped (SIGTERM) at the end; nothing it started is
    left running."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    command = [
        sys.executable, "-c", "from pdcore.cli import main; main()", "serve", "--cloud-url", cloud_url,
        "--model", str(model), "--threads", "1", "--k", str(K), "--port", str(port),
        "--max-tokens", str(SERVER_MAX_TOKENS),
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=os.environ | {"PDCORE_API_KEY": KEY}
        )
    running = Server(f"http://127.0.0.1:{port}", process, log)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                if httpx.get(f"{running.base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        workers = children(process.pid)
        models = httpx.get(f"{running.v1}/models", headers=auth(), timeout=10).json()
        running.model_id = models["data"][0]["id"]
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail(f"pdcore serve did not stop on SIGTERM; its log:\n{log.read_text()}")
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in workers):
        assert time.monotonic() < deadline, f"processes left running after the server stopped: {workers}"
        time.sleep(0.1)
    output = log.read_text()
    assert process.returncode == 128 + signal.SIGTERM, (
        output
    )  # the CLI's status for SIGTERM, after a clean stop
    assert "Traceback" not in output, output
    assert KEY not in output


@pytest.fixture(scope="module")
def template(model: Path) -> str | None:
    """The model's chat template (its GGUF metadata), to render the prompts the cloud is asked directly."""
    from llama_cpp import Llama

    return engine_chat_template(Llama(str(model), vocab_only=True, verbose=False))


def cloud_text(cloud_url: str, prompt: str, max_tokens: int) -> str:
    """The cloud's own greedy answer to ``prompt``, asked directly (no pdcore between)."""
    body = {"prompt": prompt, "max_tokens": max_tokens, **GREEDY_SAMPLING}
    reply = httpx.post(f"{cloud_url}/v1/completions", json=body, timeout=120)
    reply.raise_for_status()
    text: str = reply.json()["choices"][0]["text"]
    return text


def events(lines: list[str]) -> list[Any]:
    """The data of each server-sent event (``[DONE]`` as the string)."""
    return [
        line[6:] if line == "data: [DONE]" else json.loads(line[6:])
        for line in lines
        if line.startswith("data: ")
    ]


def test_the_openai_client_gets_chat_answers_whole_and_streamed(server: Server) -> None:
    messages: Any = [{"role": "user", "content": "What is the capital of France?"}]
    with server.client() as client:
        (model,) = client.models.list()
        whole = client.chat.completions.create(model=model.id, messages=messages, max_tokens=8)
        streamed = list(
            client.chat.completions.create(
                model=model.id, messages=messages, max_tokens=8, stream=True,
                stream_options={"include_usage": True},
            )
        )  # fmt: skip
    assert whole.object == "chat.completion"
    assert whole.model == model.id
    (choice,) = whole.choices
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason == "length"
    assert whole.usage is not None
    assert whole.usage.completion_tokens == 8
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + 8
    extension = (whole.model_extra or {})["pdcore"]
    assert set(extension) == EXTENSION_KEYS
    assert extension["prompt_tokens"] == whole.usage.prompt_tokens
    assert sum(extension["tokens_by_source"].values()) == 8
    assert extension["device_failures"] == 0

    assert {chunk.object for chunk in streamed} == {"chat.completion.chunk"}
    assert len({chunk.id for chunk in streamed}) == 1
    with_choices = [chunk for chunk in streamed if chunk.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    assert [chunk.choices[0].finish_reason for chunk in with_choices][-1] == "length"
    last = streamed[-1]
    assert not last.choices
    assert last.usage is not None
    assert last.usage.completion_tokens == 8
    tail = (last.model_extra or {})["pdcore"]
    assert set(tail) == EXTENSION_KEYS
    assert tail["tokens_by_source"]["cloud"] + tail["tokens_by_source"]["device"] == 8
    text = "".join(chunk.choices[0].delta.content or "" for chunk in with_choices)
    assert text == choice.message.content  # greedy on both sides: the same answer streamed and whole


def test_the_openai_client_gets_completions_whole_and_streamed(server: Server) -> None:
    prompt = "Count: 1, 2, 3,"
    with server.client() as client:
        whole = client.completions.create(prompt=prompt, model=server.model_id, max_tokens=6)
        streamed = list(
            client.completions.create(prompt=prompt, model=server.model_id, max_tokens=6, stream=True)
        )
    assert whole.object == "text_completion"
    (choice,) = whole.choices
    assert choice.text.startswith(" 4, 5"), choice.text
    assert choice.finish_reason == "length"
    assert whole.usage is not None
    assert whole.usage.completion_tokens == 6
    assert "pdcore" in (whole.model_extra or {})
    assert {piece.object for piece in streamed} == {"text_completion"}
    assert "".join(piece.choices[0].text for piece in streamed) == choice.text
    assert streamed[-1].choices[0].finish_reason == "length"
    assert (streamed[-1].model_extra or {})["pdcore"]["tokens_by_source"]["device"] >= 0


def test_raw_http_gets_openai_shapes(server: Server) -> None:
    body = {"messages": [{"role": "user", "content": "Name a colour."}], "max_tokens": 6}
    with httpx.Client(base_url=server.v1, headers=auth(), timeout=120) as http:
        assert http.get("/models").json()["data"][0]["object"] == "model"
        whole = http.post("/chat/completions", json=body)
        with http.stream("POST", "/chat/completions", json=body | {"stream": True}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = list(response.iter_lines())
        assert http.get("/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert whole.status_code == 200
    reply = whole.json()
    assert set(reply) == {"id", "object", "created", "model", "choices", "usage", "pdcore"}
    assert reply["id"].startswith("chatcmpl-")
    assert set(reply["choices"][0]) == {"index", "message", "logprobs", "finish_reason"}
    assert set(reply["usage"]) >= {"prompt_tokens", "completion_tokens", "total_tokens"}
    data = events(lines)
    assert data[-1] == "[DONE]"
    chunks = data[:-1]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"][0]["delta"] == {}
    assert set(chunks[-1]["pdcore"]) == EXTENSION_KEYS
    assert all("pdcore" not in chunk for chunk in chunks[:-1])
    text = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks)
    assert text == reply["choices"][0]["message"]["content"]


@dataclass
class Turn:
    text: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cached_counted: float
    extension: dict[str, Any]


def one_turn(server: Server, messages: list[dict[str, str]], max_tokens: int) -> Turn:
    """One streamed turn, with the cache counter of ``/metrics`` read around it."""
    before = server.settled()["pdcore_device_cached_tokens_total"]
    sent: Any = messages
    with server.client() as client:
        chunks = list(
            client.chat.completions.create(
                messages=sent, model=server.model_id, max_tokens=max_tokens, stream=True,
                stream_options={"include_usage": True},
            )
        )  # fmt: skip
    after = server.settled()["pdcore_device_cached_tokens_total"]
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.prompt_tokens_details is not None
    extension = (chunks[-1].model_extra or {})["pdcore"]
    assert extension["cached_tokens"] == usage.prompt_tokens_details.cached_tokens
    assert extension["prompt_tokens"] == usage.prompt_tokens
    assert sum(extension["tokens_by_source"].values()) == usage.completion_tokens
    return Turn(
        text="".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices),
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cached_tokens=usage.prompt_tokens_details.cached_tokens or 0,
        cached_counted=after - before,
        extension=extension,
    )


def assert_text_exact_seam(turn: Turn, cloud_url: str, prompt: str, max_tokens: int) -> None:
    """Where the device took over from the cloud: the shown text is the cloud's first tokens (the cloud's
    own greedy answer, asked directly) followed by the device's continuation, nothing lost or repeated at
    the seam (the continuation agrees with the cloud's own over its first characters)."""
    handoff = turn.extension["handoff_position"]
    assert turn.extension["tokens_by_source"] == {
        "cloud": handoff,
        "device": turn.completion_tokens - handoff,
    }
    cloud_part = cloud_text(cloud_url, prompt, handoff)
    assert turn.text.startswith(cloud_part), (turn.text, cloud_part)
    own = cloud_text(cloud_url, prompt, max_tokens)
    seam = len(cloud_part)
    agreed = seam + HANDOFF_AGREEMENT_CHARS
    assert turn.text[:agreed] == own[:agreed], (turn.text, own, seam)


def test_a_four_turn_conversation_prefills_only_its_new_tokens(
    server: Server, cloud_url: str, template: str | None
) -> None:
    """Each turn's messages are the previous ones, the assistant's actual reply and a new user message.

    How "the device prefilled only the new tokens" is asserted: the device held, after turn n - 1, that
    turn's prompt and answer (``prompt_tokens + completion_tokens``, less the answer's last token when the
    device sampled it without running it). Turn n reuses at least that (``cached_tokens``, from the
    extension field, equal to the rise of ``pdcore_device_cached_tokens_total`` in ``/metrics``), so
    what it prefilled, ``prompt_tokens - cached_tokens``, is at most the tokens turn n added (the end of
    the previous turn's markup, the new user message, the assistant's header), plus that one token.
    """
    rng = random.Random(22)
    notes = filler_text(40, seed=22)
    messages = [
        {"role": "system", "content": f"You are a helpful assistant. Notes for this chat: {notes}"},
        {"role": "user", "content": "List the numbers from 1 to 30."},
    ]
    # numbered lists: an answer without near-ties in the logits, so the device's continuation after the seam
    # is the cloud's own (a free-form answer may, at a near-tie, pick another token right at the seam)
    follow_ups = [f"Now list the numbers from {a} to {a + 20}." for a in rng.sample(range(31, 200), 3)]
    cloud_text(cloud_url, render_chat(messages, template), 1)  # the cloud has seen the conversation
    turns: list[Turn] = []
    for index in range(4):
        prompt = render_chat(messages, template)
        max_tokens = 160 if index == 0 else 64
        turn = one_turn(server, messages, max_tokens)
        assert turn.extension["plan"] == "pd-device", turn.extension
        assert turn.cached_counted == turn.cached_tokens
        handoff = turn.extension["handoff_position"]
        if handoff:
            assert_text_exact_seam(turn, cloud_url, prompt, max_tokens)
        if index == 0:  # only the opening of the system turn is shared with earlier answers
            assert turn.cached_tokens < turn.prompt_tokens // 4, turn
            # the device prefills a cold prompt of ~85 tokens, then the cloud's tokens as they come, while the
            # cloud, which has the prompt cached, streams the answer (121 tokens to its end): the device,
            # appending a token in less than half the time the cloud takes to decode one, catches up after
            # some 40-50 tokens on two quiet cores (a 48-token cap left no margin: the cloud often finished
            # first), a hand-off with a seam to check
            assert handoff, turn.extension
        else:
            previous = turns[-1]
            held = previous.prompt_tokens + previous.completion_tokens
            added = turn.prompt_tokens - held
            prefilled = turn.prompt_tokens - turn.cached_tokens
            assert turn.cached_tokens >= held - 1 > 0, (index, turn, previous)
            assert 0 < prefilled <= added + 1, (index, prefilled, added)
        turns.append(turn)
        messages += [{"role": "assistant", "content": turn.text}]
        if index < 3:
            messages += [{"role": "user", "content": follow_ups[index]}]


def test_eight_concurrent_clients_each_get_their_own_answer(server: Server, cloud_url: str) -> None:
    starts = random.Random(8).sample(range(10, 90), 8)
    prompts = [f"Count: {a}, {a + 1}, {a + 2}," for a in starts]
    alone = [cloud_text(cloud_url, prompt, 8) for prompt in prompts]
    assert len(set(alone)) == 8

    async def one(client: openai.AsyncOpenAI, prompt: str) -> tuple[str, set[str], dict[str, Any], int]:
        stream = await client.completions.create(
            prompt=prompt, model=server.model_id, max_tokens=8, stream=True
        )
        pieces = [piece async for piece in stream]
        text = "".join(piece.choices[0].text for piece in pieces if piece.choices)
        return text, {piece.id for piece in pieces}, (pieces[-1].model_extra or {})["pdcore"], len(pieces)

    async def many() -> list[tuple[str, set[str], dict[str, Any], int]]:
        # 8-token answers: all eight are done within seconds; a client waiting a minute has a hung stream
        async with openai.AsyncOpenAI(base_url=server.v1, api_key=KEY, max_retries=0, timeout=60) as client:
            return await asyncio.gather(*(one(client, prompt) for prompt in prompts))

    before = server.settled()
    try:
        results = asyncio.run(many())
    except openai.APITimeoutError:
        pytest.fail(
            "an answer's stream hung (nothing for 60 s): a cloud that ends a stream with [DONE] and no "
            "finish reason, as llama-cpp-python's server does to the stream it interrupts for a newer "
            "request, leaves an answer planned for the cloud alone waiting for ever"
        )
    after = server.settled()
    assert after["pdcore_answers_total"] - before["pdcore_answers_total"] == 8
    for (text, ids, extension, _), expected, a in zip(results, alone, starts, strict=True):
        assert text.startswith(f" {a + 3}, {a + 4}"), (a, text)
        assert text == expected, (a, text, expected)  # what this prompt gets alone
        assert len(ids) == 1
        assert sum(extension["tokens_by_source"].values()) == 8
        if extension["plan"] == "cloud-only":
            assert "busy" in extension["plan_reason"], extension
            # the cloud's answer alone, unless the cloud failed it and the device, free by then, continued
            # it (the text is the same either way): llama.cpp's server cuts a stream for a newer request,
            # and eight at once on two cores can keep one waiting past its first-token deadline (silent)
            failed = any(notice["kind"] in CLOUD_FALLBACKS for notice in extension["notices"])
            assert failed or extension["tokens_by_source"]["device"] == 0, json.dumps(extension)
    assert len({next(iter(ids)) for _, ids, _, _ in results}) == 8
    assert any(extension["plan"] == "cloud-only" for _, _, extension, _ in results), (
        "one device answer at a time"
    )


KILLED_CLIENT = """
import sys, httpx
body = {"messages": [{"role": "user", "content": "Write a long story about a lighthouse."}],
        "max_tokens": 200, "stream": True}
headers = {"Authorization": "Bearer " + sys.argv[2]}
with httpx.stream("POST", sys.argv[1] + "/chat/completions", json=body, headers=headers, timeout=120) as r:
    for line in r.iter_lines():
        if line.startswith("data: "):
            print(line, flush=True)
"""


def test_a_client_killed_mid_stream_frees_the_server_and_the_device(server: Server) -> None:
    before = server.settled()
    client = subprocess.Popen(
        [sys.executable, "-c", KILLED_CLIENT, server.v1, KEY], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert client.stdout is not None
        received = [client.stdout.readline() for _ in range(3)]
        assert all(line.startswith(b"data: {") for line in received), (received, client.stderr)
    finally:
        client.kill()
        client.wait()
        for stream in (client.stdout, client.stderr):
            if stream is not None:
                stream.close()
    after = server.settled()  # nothing stuck in flight
    assert after["pdcore_answers_total"] - before["pdcore_answers_total"] == 1
    shown = (after["pdcore_cloud_tokens_sum"] + after["pdcore_device_tokens_sum"]) - (
        before["pdcore_cloud_tokens_sum"] + before["pdcore_device_tokens_sum"]
    )
    assert 3 <= shown < 200, "the abandoned answer was stopped"
    with server.client() as openai_client:
        reply = openai_client.chat.completions.create(
            model=server.model_id, messages=[{"role": "user", "content": "Name a fruit."}], max_tokens=6
        )
    extension = (reply.model_extra or {})["pdcore"]
    assert extension["plan"] == "pd-device", extension  # the device is free, not busy with the dead answer
    assert reply.choices[0].finish_reason == "length"
    assert server.settled()["pdcore_device_failures_total"] == 0


@pytest.mark.parametrize(
    ("path", "body", "code", "param"),
    [
        ("/chat/completions", b"{not json", "invalid_json", None),
        ("/chat/completions", {}, "invalid_value", "messages"),
        ("/chat/completions", {"messages": []}, "invalid_value", "messages"),
        ("/chat/completions", {"messages": [{"role": "robot", "content": "hi"}]}, "invalid_value",
         "messages.0.role"),
        ("/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0},
         "invalid_value", "max_tokens"),
        ("/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "n": 2},
         "unsupported_option", "n"),
        ("/completions", {"max_tokens": 4}, "invalid_value", "prompt"),
        ("/completions", {"prompt": ["a", "b"]}, "invalid_value", "prompt"),
    ],
)  # fmt: skip
def test_malformed_bodies_get_a_400_in_openais_error_shape(
    server: Server, path: str, body: Any, code: str, param: str | None
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = auth() | {"Content-Type": "application/json"}
    response = httpx.post(f"{server.v1}{path}", content=content, headers=headers, timeout=60)
    assert response.status_code == 400, response.text
    error = response.json()
    assert set(error) == {"error"}
    assert set(error["error"]) == {"message", "type", "param", "code"}
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["code"] == code, error
    assert error["error"]["param"] == param, error
    assert "fix" in error["error"]["message"] or code != "unsupported_option"
    assert httpx.get(f"{server.base}/health", timeout=10).json()["status"] == "ok"


def test_the_openai_client_raises_a_bad_request_for_a_malformed_body(server: Server) -> None:
    with server.client() as client, pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model=server.model_id, messages=[{"role": "user", "content": "hi"}], n=3
        )
    assert refused.value.code == "unsupported_option"
    assert refused.value.param == "n"
