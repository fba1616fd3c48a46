"""The OpenAI-compatible completions API as the live runtime's cloud client speaks it
(`pdcore.runtime.cloud`): the endpoint of a URL, the greedy sampling every request carries, a ChatML prompt
as chat ``messages``, one server-sent event's text, finish reason and token count, and how servers name
their context window.

Numbers a server sends are range-checked here: a context window is believed only from 1 to
`pdcore.limits.MAX_TOKENS` tokens, and an event's data is refused past `pdcore.nesting.MAX_NESTING` levels
of nesting before it is parsed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pdcore.exceptions import CloudContextError, InvalidInputError
from pdcore.limits import MAX_TOKENS
from pdcore.nesting import check_nesting

__all__ = [
    "CONTEXT_WORDS",
    "GREEDY_SAMPLING",
    "MODEL_CONTEXT_KEYS",
    "CloudEvent",
    "chat_messages",
    "completions_url",
    "context_in_error",
    "context_refusal",
    "parse_event",
    "window_tokens",
]

GREEDY_SAMPLING: dict[str, Any] = {
    "temperature": 0.0,
    "top_p": 1.0,
    "frequency_penalty": 0.0,
    "presence_penalty": 0.0,
    "repeat_penalty": 1.0,
}
"""The sampling fields every request carries unless the user sets them: the device's greedy decoding."""

_CONTEXT_PATTERNS = (
    re.compile(r"context window of (\d+)", re.IGNORECASE),  # llama-cpp-python's server
    re.compile(r"maximum context length is (\d+)", re.IGNORECASE),  # OpenAI, vLLM
    re.compile(r"context (?:size|length|window)[^0-9]{0,20}(\d+)", re.IGNORECASE),
)
"""How servers name their context window in the error for a request that exceeds it."""

CONTEXT_WORDS = ("context window", "context length", "context size", "exceed")

MODEL_CONTEXT_KEYS = ("max_model_len", "context_length", "context_window", "max_context_length", "n_ctx")
"""Fields of a ``GET /v1/models`` entry that give the served context window (vLLM: ``max_model_len``)."""


@dataclass(frozen=True, slots=True)
class CloudEvent:
    """One server-sent event of a completion stream.

    Attributes:
        text: The text it carries (may be empty, e.g. on the final event).
        at: Clock time at which it was parsed, seconds.
        finish_reason: ``"stop"`` or ``"length"`` on the last event, else ``None``.
        tokens: The completion's tokens so far as the server counts them, where the event says
            (``usage.completion_tokens``), else ``None``.
    """

    text: str
    at: float
    finish_reason: str | None = None
    tokens: int | None = None


def completions_url(url: str) -> str:
    """The completions endpoint for a base URL, a ``.../v1`` URL or the endpoint itself.

    Raises:
        InvalidInputError: ``url`` is not an ``http://`` or ``https://`` URL.

    Example:
        >>> completions_url("http://127.0.0.1:8000")
        'http://127.0.0.1:8000/v1/completions'
        >>> completions_url("https://api.example.com/v1/")
        'https://api.example.com/v1/completions'
    """
    stripped = url.strip().rstrip("/")
    if not stripped.startswith(("http://", "https://")):
        raise InvalidInputError(
            f"cloud URL {url!r} is not an http(s) URL; fix: pass e.g. http://127.0.0.1:8000 with --cloud-url "
            "or set PDCORE_CLOUD_URL"
        )
    if stripped.endswith("/completions"):
        return stripped
    if stripped.endswith("/v1"):
        return f"{stripped}/completions"
    return f"{stripped}/v1/completions"


_TURN = re.compile(r"<\|im_start\|>(\w+)\n(.*?)(?:<\|im_end\|>\n?|$)", re.DOTALL)


def chat_messages(prompt: str) -> list[dict[str, str]]:
    """The turns of a ChatML prompt as chat ``messages`` (a plain prompt is one user turn); the open
    assistant turn at the end, if it holds text, is the last message.

    Example:
        >>> chat_messages("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        [{'role': 'user', 'content': 'Hi'}]
    """
    if "<|im_start|>" not in prompt:
        return [{"role": "user", "content": prompt}]
    messages = [{"role": role, "content": content} for role, content in _TURN.findall(prompt)]
    if messages and messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
        messages.pop()
    return messages


def window_tokens(value: object) -> int | None:
    """``value`` as a context window in tokens: a whole number from 1 to `pdcore.limits.MAX_TOKENS`, else
    None (a server's number past that is not believed)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_TOKENS:
        return value
    return None


def context_in_error(text: str) -> int | None:
    """The context window a server names in its error text, if it does (range-checked, `window_tokens`)."""
    for pattern in _CONTEXT_PATTERNS:
        match = pattern.search(text)
        if match:
            digits = match.group(1)
            return window_tokens(int(digits)) if len(digits) <= len(str(MAX_TOKENS)) else None
    return None


def context_refusal(endpoint: str, status: int, detail: str) -> CloudContextError | None:
    """The error for an HTTP refusal (``detail``: the start of its text) that is about the context
    window, with the window where the server names it; None for any other refusal."""
    lowered = detail.lower()
    if not ("token" in lowered and any(word in lowered for word in CONTEXT_WORDS)):
        return None
    window = context_in_error(detail)
    return CloudContextError(
        f"cloud {endpoint} refused a request beyond its context window"
        + (f" of {window} tokens" if window is not None else "")
        + f": HTTP {status} {detail[:200]!r}",
        window,
    )


def _completion_tokens(payload: dict[str, Any]) -> int | None:
    """The server's count of the completion's tokens in a chunk (``usage.completion_tokens``), if any."""
    usage = payload.get("usage")
    count = usage.get("completion_tokens") if isinstance(usage, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None


def parse_event(data: str, at: float) -> CloudEvent | None:
    """The event a server-sent ``data`` line carries, parsed at clock time ``at``; ``None`` for one that
    is not a completion chunk (an error object, malformed or too deeply nested JSON, no choices and no
    token count)."""
    try:
        check_nesting(data, "a server-sent event", "json")
        payload = json.loads(data)
    except ValueError:  # not JSON, nested too deep (InvalidInputError), or digits too many
        return None
    if not isinstance(payload, dict) or "error" in payload:
        return None
    choices = payload.get("choices")
    tokens = _completion_tokens(payload)
    if choices == [] and tokens is not None:  # a usage chunk (vLLM's ``include_usage``)
        return CloudEvent(text="", at=at, tokens=tokens)
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    choice = choices[0]
    text = choice.get("text")
    if text is None and isinstance(choice.get("delta"), dict):
        text = choice["delta"].get("content")
    reason = choice.get("finish_reason")
    return CloudEvent(
        text=text if isinstance(text, str) else "",
        at=at,
        finish_reason=reason if isinstance(reason, str) else None,
        tokens=tokens,
    )
