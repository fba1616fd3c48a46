"""The server's parts that need no live runtime: request schemas and refused options, the error object,
the response and chunk shapes, the ``pdcore`` extension field and the Prometheus metrics."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="pdcore serve needs the `serve` extra")
pytest.importorskip("prometheus_client", reason="pdcore serve needs the `serve` extra")

from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from pdcore.runtime.timeline import Notice, Timeline, TokenRecord
from pdcore.serve.errors import APIError, runtime_error, unsupported
from pdcore.serve.figures import AnswerFigures
from pdcore.serve.metrics import ServeMetrics
from pdcore.serve.schemas import ChatCompletionRequest, CompletionRequest, unsupported_options
from pdcore.serve.streaming import DONE, Shape, usage


def chat(**fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"messages": [{"role": "user", "content": "Hi"}], **fields})


def timeline(sources: str, *, handoff: int | None = None, gap: float = 0.04) -> Timeline:
    record = Timeline(mode="pd-device", prompt="p", started_at=0.0, max_tpot_s=0.05, min_tpot_s=0.0)
    record.plan, record.plan_reason, record.k = "pd-device", "k = 3 as given", 3
    for position, source in enumerate(sources):
        shown = 0.2 + position * gap + (0.03 if position == handoff else 0.0)
        record.tokens.append(
            TokenRecord(
                position, f"t{position} ", "cloud" if source == "c" else "device", shown, shown, shown
            )
        )
    record.handoff_position = handoff
    record.prompt_tokens = 12
    record.notices.append(Notice(0.1, "cloud-cut", "the cloud's stream was cut; resumed"))
    record.cloud_resumes.append((0.1, "cut", 4))
    return record


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 2}, "n"),
        ({"temperature": 0.7}, "temperature"),
        ({"top_p": 0.9}, "top_p"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"logit_bias": {"1": 2.0}}, "logit_bias"),
        ({"stop": ["\n"]}, "stop"),
        ({"stop": "END"}, "stop"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"tool_choice": "auto"}, "tool_choice"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
    ],
)
def test_chat_options_the_server_does_not_offer_are_refused_by_name(
    fields: dict[str, Any], param: str
) -> None:
    refusal = unsupported_options(chat(**fields))
    assert refusal is not None
    assert refusal.status == 400
    assert refusal.param == param
    assert refusal.code == "unsupported_option"
    assert "fix:" in refusal.message


def test_greedy_and_default_options_are_served() -> None:
    assert unsupported_options(chat(temperature=0, top_p=1, n=1, seed=7, user="u", stop=[])) is None
    assert unsupported_options(chat(response_format={"type": "text"}, tool_choice="none")) is None
    refusal = unsupported_options(chat(temperature=1.0))
    assert refusal is not None
    assert "greedily" in refusal.message


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"best_of": 2}, "best_of"),
        ({"logprobs": 1}, "logprobs"),
        ({"echo": True}, "echo"),
        ({"suffix": "x"}, "suffix"),
    ],
)
def test_completion_options_the_server_does_not_offer_are_refused(fields: dict[str, Any], param: str) -> None:
    refusal = unsupported_options(CompletionRequest.model_validate({"prompt": "Hi", **fields}))
    assert refusal is not None
    assert refusal.param == param


def test_completion_defaults_follow_the_reference() -> None:
    body = CompletionRequest.model_validate({"prompt": ["Once"]})
    assert body.text == "Once"
    assert body.answer_tokens == 16  # OpenAI's default for /v1/completions
    with pytest.raises(ValidationError, match="one prompt"):
        CompletionRequest.model_validate({"prompt": ["a", "b"]})


def test_messages_need_known_roles_and_text() -> None:
    with pytest.raises(ValidationError, match="unknown role 'robot'"):
        ChatCompletionRequest.model_validate({"messages": [{"role": "robot", "content": "x"}]})
    with pytest.raises(ValidationError, match="tools are not served"):
        ChatCompletionRequest.model_validate({"messages": [{"role": "tool", "content": "x"}]})
    with pytest.raises(ValidationError):
        ChatCompletionRequest.model_validate({"messages": []})
    parts = ChatCompletionRequest.model_validate(
        {
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
            ]
        }
    )
    assert parts.messages[0].text(0) == "ab"
    image = ChatCompletionRequest.model_validate(
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}
    )
    with pytest.raises(APIError) as refused:
        image.messages[0].text(0)
    assert refused.value.param == "messages.0.content.0.type"
    assert chat(max_completion_tokens=5, max_tokens=9).answer_tokens == 5


def test_the_error_object_is_openais() -> None:
    error = unsupported("n", "one answer per request; fix: send n = 1")
    assert error.body() == {
        "error": {
            "message": "n: one answer per request; fix: send n = 1",
            "type": "invalid_request_error",
            "param": "n",
            "code": "unsupported_option",
        }
    }
    assert runtime_error(RuntimeError("boom")).status == 500
    assert "RuntimeError: boom" in runtime_error(RuntimeError("boom")).message


def test_runtime_errors_map_to_statuses() -> None:
    from pdcore.exceptions import CloudUnavailableError, DeviceFailedError, InvalidInputError

    assert runtime_error(CloudUnavailableError("down")).status == 502
    assert runtime_error(DeviceFailedError("crashed", cause="killed")).status == 503
    context = runtime_error(InvalidInputError("the prompt does not fit the context window"))
    assert (context.status, context.code) == (400, "context_length_exceeded")


def test_chat_stream_chunks_have_openais_shape() -> None:
    shape = Shape("chat", "m", streaming=True, include_usage=True)
    first = json.loads(shape.piece("Hel")[len(b"data: ") :])
    second = json.loads(shape.piece("lo")[len(b"data: ") :])
    assert first["object"] == "chat.completion.chunk"
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": "Hel"}
    assert second["choices"][0]["delta"] == {"content": "lo"}
    assert first["usage"] is None
    assert first["id"] == second["id"]
    events = shape.ending("stop", usage(3, 2, 1), {"plan": "pd-device"})
    finish, last = (json.loads(event[len(b"data: ") :]) for event in events[:2])
    assert events[-1] == DONE
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert "pdcore" not in finish
    assert last["choices"] == []
    assert last["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": 2,
        "total_tokens": 5,
        "prompt_tokens_details": {"cached_tokens": 1},
    }
    assert last["pdcore"] == {"plan": "pd-device"}


def test_completion_shapes() -> None:
    shape = Shape("completion", "m", streaming=True)
    chunk = json.loads(shape.piece("x")[len(b"data: ") :])
    assert chunk["object"] == "text_completion"
    assert chunk["choices"][0]["text"] == "x"
    assert "usage" not in chunk
    finish = json.loads(shape.ending("length", usage(1, 1, 0), {})[0][len(b"data: ") :])
    assert finish["choices"][0]["finish_reason"] == "length"
    assert finish["pdcore"] == {}
    whole = Shape("completion", "m").response("text", "stop", usage(1, 1, 0), {"k": 1})
    assert whole["object"] == "text_completion"
    assert whole["choices"][0] == {"text": "text", "index": 0, "logprobs": None, "finish_reason": "stop"}
    assert whole["pdcore"] == {"k": 1}
    message = Shape("chat", "m").response("hi", "stop", usage(1, 1, 0), {})["choices"][0]["message"]
    assert message["content"] == "hi"


def test_figures_read_the_handoff_and_sources() -> None:
    figures = AnswerFigures.of(timeline("cccdd", handoff=3), cached_tokens=5)
    extension = figures.extension()
    assert extension["tokens_by_source"] == {"cloud": 3, "device": 2}
    assert extension["handoff_position"] == 3
    assert extension["handoff_gap_s"] == pytest.approx(0.07)
    assert extension["max_gap_s"] == pytest.approx(0.07)
    assert extension["cached_tokens"] == 5
    assert extension["notices"] == [{"kind": "cloud-cut", "message": "the cloud's stream was cut; resumed"}]
    assert figures.cloud_fallbacks == 1
    assert set(extension) == {
        "plan", "plan_reason", "k", "ttft_s", "max_gap_s", "handoff_position", "handoff_gap_s",
        "tokens_by_source", "prompt_tokens", "cached_tokens", "cloud_resumes", "device_failures", "notices",
    }  # fmt: skip
    cut = AnswerFigures.of(timeline("cccdd", handoff=3), shown=2)
    assert cut.tokens_by_source == {"cloud": 2, "device": 0}
    assert cut.handoff_position is None


def test_metrics_parse_as_prometheus_text() -> None:
    metrics = ServeMetrics()
    metrics.observe(AnswerFigures.of(timeline("ccdd", handoff=2), cached_tokens=7))
    metrics.observe(AnswerFigures.of(timeline("ccc")))
    metrics.error("model_not_found")
    families = {family.name: family for family in text_string_to_metric_families(metrics.text().decode())}
    values = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families.values()
        for sample in family.samples
    }
    assert values[("pdcore_answers_total", (("plan", "pd-device"),))] == 2
    assert values[("pdcore_handoffs_total", ())] == 1
    assert values[("pdcore_handoff_gap_seconds_count", ())] == 1
    assert values[("pdcore_ttft_seconds_count", ())] == 2
    assert values[("pdcore_device_cached_tokens_total", ())] == 7
    assert values[("pdcore_cloud_tokens_sum", ())] == 5
    assert values[("pdcore_cloud_fallbacks_total", ())] == 2
    assert values[("pdcore_cloud_resumes_total", ())] == 2
    assert values[("pdcore_request_errors_total", (("code", "model_not_found"),))] == 1
    assert ServeMetrics().text() != metrics.text()  # a registry per app


class _CountingDevice:
    """A device whose own count of a prompt is ``tokens`` (or a failure)."""

    def __init__(self, tokens: int | None) -> None:
        self.tokens = tokens
        self.asked = 0

    async def count_tokens(self, prompt: str) -> int:
        from pdcore.exceptions import DeviceFailedError

        self.asked += 1
        if self.tokens is None:
            raise DeviceFailedError("the worker died", cause="killed")
        return self.tokens


def test_the_context_check_uses_the_answers_count_else_counts_itself() -> None:
    import asyncio

    from pdcore.serve.conversation import check_context
    from pdcore.serve.errors import APIError

    long_prompt = "word " * 40  # 200 bytes: past a 64-token window unread

    def counted(tokens: int | None) -> Any:
        async def count() -> int | None:
            return tokens

        return count

    async def check(device: _CountingDevice, answer_count: int | None) -> str | None:
        try:
            await check_context(long_prompt, device, 64, "prompt", counted(answer_count))  # type: ignore[arg-type]
        except APIError as error:
            return f"{error.status} {error.code} {error.param}"
        return None

    async def run() -> None:
        device = _CountingDevice(tokens=200)
        assert await check(device, 63) is None  # the answer's count fits: nothing counted again
        assert await check(device, 64) == "400 context_length_exceeded prompt"  # no room for an answer
        assert device.asked == 0
        assert await check(device, None) == "400 context_length_exceeded prompt"  # the device counts it
        assert device.asked == 1
        assert await check(_CountingDevice(tokens=None), None) is None  # a failed device: the cloud decides
        short = _CountingDevice(tokens=10_000)
        await check_context("Paris?", short, 64, "prompt", counted(10_000))  # type: ignore[arg-type]
        assert short.asked == 0  # a prompt shorter than the window in bytes is not counted

    asyncio.run(run())
