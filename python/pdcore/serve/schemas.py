"""The request bodies the server accepts, as pydantic models, and the options it refuses.

The fields and their meaning are OpenAI's (API reference: "Create chat completion", "Create completion").
A body that does not match is a 400 naming the field (`pdcore.serve.errors`). Fields the reference has and
the server does not offer are parsed, then refused by `unsupported_options` with a 400 that names the
option, says why and gives the fix:

- ``n`` > 1, ``best_of`` > 1: one answer per request (the device decodes one answer at a time);
- ``temperature`` other than 0, ``top_p`` other than 1, a presence or frequency penalty, ``logit_bias``:
  the device decodes greedily and the cloud is asked for greedy decoding, so that the hand-off is
  text-exact; a sampled answer would not be the same answer on both sides;
- ``logprobs``, ``top_logprobs``, ``echo``, ``suffix``, ``tools``, ``functions``, ``response_format``
  other than text, ``stop``: not implemented.

Rules that are ours: fields the reference does not have are ignored (clients add vendor fields); ``model``
may be left out (the one model served answers); ``seed`` and ``user`` are accepted and ignored (greedy
decoding needs no seed); ``developer`` messages are system messages (OpenAI's newer name for them).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pdcore.serve.errors import APIError, unsupported

__all__ = [
    "ROLES",
    "ChatCompletionRequest",
    "ChatMessage",
    "CompletionRequest",
    "ContentPart",
    "StreamOptions",
    "unsupported_options",
]

ROLES = ("system", "developer", "user", "assistant")
"""The message roles a conversation may have (tool and function messages need ``tools``)."""

GREEDY = (
    "the device decodes greedily and the cloud is asked to, so that the hand-off between them is text-exact"
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class StreamOptions(_Body):
    """``stream_options``: ``include_usage`` adds a last chunk with ``usage`` and no choices."""

    include_usage: bool = False


class ContentPart(_Body):
    """One part of a message's content: only ``{"type": "text", "text": ...}`` is served."""

    type: str
    text: str | None = None


class ChatMessage(_Body):
    """One message of a conversation."""

    role: str
    content: str | list[ContentPart] | None = None
    name: str | None = None

    @field_validator("role")
    @classmethod
    def _known_role(cls, role: str) -> str:
        if role in ("tool", "function"):
            raise ValueError(f"role {role!r} answers a tool call, and tools are not served; fix: use {ROLES}")
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; fix: use one of {', '.join(ROLES)}")
        return role

    def text(self, index: int) -> str:
        """The message's text (its text parts joined).

        Raises:
            APIError: No content, or a part that is not text (named ``messages.N.content.M.type``).
        """
        content = self.content
        if content is None:
            raise APIError(
                400,
                f"messages.{index}.content: a message needs text content; fix: send a string or text parts",
                code="invalid_value",
                param=f"messages.{index}.content",
            )
        if isinstance(content, str):
            return content
        texts: list[str] = []
        for number, part in enumerate(content):
            if part.type != "text" or part.text is None:
                param = f"messages.{index}.content.{number}.type"
                raise unsupported(
                    param, f"content of type {part.type!r}: only text parts are served; fix: send text"
                )
            texts.append(part.text)
        return "".join(texts)


class _Common(_Body):
    """What both endpoints accept."""

    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    n: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    user: str | None = None
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None


class ChatCompletionRequest(_Common):
    """``POST /v1/chat/completions``."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool | None = None
    top_logprobs: int | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    functions: list[Any] | None = None
    function_call: Any = None
    response_format: dict[str, Any] | None = None

    @property
    def answer_tokens(self) -> int | None:
        """The longest answer asked for: ``max_completion_tokens`` (the reference's newer name), else
        ``max_tokens``."""
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(_Common):
    """``POST /v1/completions``."""

    prompt: str | list[str]
    max_tokens: int | None = Field(default=16, ge=1)
    best_of: int | None = Field(default=None, ge=1)
    logprobs: int | None = None
    echo: bool = False
    suffix: str | None = None

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, prompt: str | list[str]) -> str | list[str]:
        if isinstance(prompt, list) and len(prompt) != 1:
            raise ValueError(
                f"{len(prompt)} prompts in one request; one answer per request is served; fix: send one "
                "prompt (a string)"
            )
        return prompt

    @property
    def text(self) -> str:
        """The prompt."""
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]

    @property
    def answer_tokens(self) -> int | None:
        """The longest answer asked for."""
        return self.max_tokens


def unsupported_options(body: ChatCompletionRequest | CompletionRequest) -> APIError | None:
    """The 400 for the first option the server does not offer (module docstring), or None."""
    checks: list[tuple[str, bool, str]] = [
        ("n", (body.n or 1) > 1, "one answer per request is served; fix: send n = 1 or leave it out"),
        ("temperature", body.temperature not in (None, 0.0), f"{GREEDY}; fix: send 0 or leave it out"),
        ("top_p", body.top_p not in (None, 1.0), f"{GREEDY}; fix: send 1 or leave it out"),
        (
            "presence_penalty",
            body.presence_penalty not in (None, 0.0),
            f"{GREEDY}; fix: send 0 or leave it out",
        ),
        (
            "frequency_penalty",
            body.frequency_penalty not in (None, 0.0),
            f"{GREEDY}; fix: send 0 or leave it out",
        ),
        ("logit_bias", bool(body.logit_bias), f"{GREEDY}; fix: leave it out"),
        ("stop", bool(body.stop), "stop sequences are not implemented; fix: leave stop out"),
    ]
    if isinstance(body, ChatCompletionRequest):
        format_type = (body.response_format or {}).get("type", "text")
        checks += [
            ("logprobs", bool(body.logprobs), "log probabilities are not served; fix: leave it out"),
            ("top_logprobs", body.top_logprobs is not None, "log probabilities are not served"),
            ("tools", bool(body.tools), "tool calls are not served; fix: leave tools out"),
            ("tool_choice", body.tool_choice not in (None, "none"), "tool calls are not served"),
            ("functions", bool(body.functions), "function calls are not served; fix: leave it out"),
            ("function_call", body.function_call not in (None, "none"), "function calls are not served"),
            ("response_format", format_type != "text", "only text answers are served; fix: leave it out"),
        ]  # fmt: skip
    else:
        checks += [
            ("best_of", (body.best_of or 1) > 1, "one answer per request is served; fix: leave it out"),
            ("logprobs", body.logprobs is not None, "log probabilities are not served; fix: leave it out"),
            ("echo", body.echo, "echoing the prompt is not implemented; fix: leave it out"),
            ("suffix", bool(body.suffix), "insertion after a suffix is not implemented; fix: leave it out"),
        ]
    for param, refused, why in checks:
        if refused:
            return unsupported(param, why if "fix:" in why else f"{why}; fix: leave {param} out")
    return None
