"""The response shapes: OpenAI's completion objects and stream chunks, and the server-sent events.

Shapes from OpenAI's API reference ("The chat completion object", "The chat completion chunk object",
"The completion object"; legacy completions stream ``text_completion`` objects):

- chat, streaming: ``chat.completion.chunk`` objects, the first delta with ``role: "assistant"``, one
  chunk per shown piece, then a chunk with an empty delta and ``finish_reason``; with
  ``stream_options.include_usage`` every chunk has ``usage: null`` and a last chunk has no choices and the
  ``usage``; then ``data: [DONE]``;
- completions, streaming: ``text_completion`` objects with ``choices[0].text``, the same ending;
- non-streaming: one ``chat.completion`` or ``text_completion`` object with ``usage``.

pdcore's figures travel in the ``pdcore`` field (`pdcore.serve.figures`) of the non-streaming object and of
the stream's last chunk before ``[DONE]``. An error after the stream started (headers and some chunks
already sent) ends it with ``data: {"error": {...}}`` (the object of `pdcore.serve.errors`, which the
``openai`` client raises as an ``APIError``) and ``data: [DONE]``.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["DONE", "Shape", "sse", "usage"]

DONE = b"data: [DONE]\n\n"
"""The stream's last event (OpenAI's sentinel)."""


def sse(payload: dict[str, Any]) -> bytes:
    """One server-sent event carrying ``payload`` as JSON."""
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> dict[str, Any]:
    """OpenAI's ``usage`` object; ``prompt_tokens_details.cached_tokens``: the prompt tokens the device
    reused from its cache."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
    }


@dataclass
class Shape:
    """The objects of one response (module docstring).

    Args:
        kind: ``"chat"`` (``/v1/chat/completions``) or ``"completion"`` (``/v1/completions``).
        model: The model id answered with.
        streaming: Whether the answer is streamed.
        include_usage: ``stream_options.include_usage``.
    """

    kind: Literal["chat", "completion"]
    model: str
    streaming: bool = False
    include_usage: bool = False
    id: str = field(init=False)
    created: int = field(default_factory=lambda: int(time.time()))
    _first: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        prefix = "chatcmpl" if self.kind == "chat" else "cmpl"
        self.id = f"{prefix}-{uuid.uuid4().hex}"

    def _head(self, streaming: bool) -> dict[str, Any]:
        if self.kind == "chat":
            kind = "chat.completion.chunk" if streaming else "chat.completion"
        else:
            kind = "text_completion"
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def _chunk(self, choice: dict[str, Any]) -> dict[str, Any]:
        chunk = self._head(streaming=True) | {"choices": [choice]}
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def piece(self, text: str) -> bytes:
        """The event for one shown piece of text."""
        if self.kind == "chat":
            delta: dict[str, Any] = {"content": text}
            if self._first:
                delta = {"role": "assistant", "content": text}
            choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        else:
            choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": None}
        self._first = False
        return sse(self._chunk(choice))

    def ending(self, finish_reason: str, usage: dict[str, Any], extension: dict[str, Any]) -> list[bytes]:
        """The events that end a stream: the finish chunk, the usage chunk if asked, ``[DONE]``; the
        ``pdcore`` field rides on the last chunk."""
        if self.kind == "chat":
            delta: dict[str, Any] = {"role": "assistant"} if self._first else {}
            choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None}
        else:
            choice = {"text": "", "index": 0, "logprobs": None}
        finish = self._chunk(choice | {"finish_reason": finish_reason})
        if not self.include_usage:
            return [sse(finish | {"pdcore": extension}), DONE]
        last = self._head(streaming=True) | {"choices": [], "usage": usage, "pdcore": extension}
        return [sse(finish), sse(last), DONE]

    def error(self, body: dict[str, Any]) -> list[bytes]:
        """The events that end a stream broken by an error (module docstring)."""
        return [sse(body), DONE]

    def response(
        self, text: str, finish_reason: str, usage: dict[str, Any], extension: dict[str, Any]
    ) -> dict[str, Any]:
        """The non-streaming response object."""
        if self.kind == "chat":
            message = {"role": "assistant", "content": text, "refusal": None}
            choice: dict[str, Any] = {"index": 0, "message": message, "logprobs": None}
        else:
            choice = {"text": text, "index": 0, "logprobs": None}
        choice["finish_reason"] = finish_reason
        return self._head(streaming=False) | {"choices": [choice], "usage": usage, "pdcore": extension}
