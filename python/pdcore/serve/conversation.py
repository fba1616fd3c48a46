"""A request's prompt: a chat request's messages through the model's chat template, a completion's prompt as
it is, and the check that it fits the device's context window.

The chat template is the device model's own (`pdcore.runtime.device.Device.chat_template`, read from the
GGUF file), rendered by `pdcore.runtime.chat_template.render_chat` with the generation prompt open, so that
the device and the cloud continue the same text. ``developer`` messages render as ``system`` (OpenAI's
newer name for the same role).

Context window (the rule is ours): a prompt whose UTF-8 length plus one (the beginning-of-sequence token)
is below the device's context window fits whatever the tokenizer (a token holds at least one byte), and is
not counted. A longer one is counted while its answer starts, not before: its cloud request leaves at once,
and the response waits for the device's own count of the prompt (the tokenization its prefill begins with,
`pdcore.runtime.answer.Answer.prompt_tokens`), or, when the device does not read this prompt (the cloud
serves the whole answer), for a count of its own. A prompt whose tokens fill the window is refused with
``context_length_exceeded`` (the device needs room for at least one answer token, as
`pdcore.runtime.device.Device.start` requires) and its answer closed, the cloud's stream with it, before a
byte of the response is sent (a streamed answer likely to fit starts before the count and is ended by
the refusal instead, `pdcore.serve.context_guard`). Why: counting first put the tokenization (5-10 ms
for 1,000-2,000 tokens on a 2-core CPU) in front of every long prompt's first token; counting alongside
costs a refused prompt a cloud request cancelled within that time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pdcore.exceptions import DeviceFailedError, InvalidInputError, PdcoreError
from pdcore.runtime.chat_template import render_chat
from pdcore.runtime.device import Device
from pdcore.serve.errors import APIError
from pdcore.serve.schemas import ChatCompletionRequest

__all__ = ["chat_prompt", "check_context", "device_chat_template", "device_context", "fits_unread"]


def chat_prompt(body: ChatCompletionRequest, template: str | None) -> str:
    """The prompt text of a chat request: its messages through ``template`` (None: ChatML).

    Raises:
        APIError: A message without text, or with a part that is not text, or messages the template
            refuses.
    """
    messages = [
        {"role": "system" if message.role == "developer" else message.role, "content": message.text(index)}
        for index, message in enumerate(body.messages)
    ]
    try:
        return render_chat(messages, template)
    except (
        InvalidInputError
    ) as error:  # the template refuses these messages (e.g. turns that do not alternate)
        raise APIError(400, f"messages: {error}", code="invalid_messages", param="messages") from None


def device_chat_template(device: Device | None) -> str | None:
    """The device model's chat template, or None (no device, no template in the model, or a device that
    failed to start: ChatML then)."""
    if device is None:
        return None
    try:
        return device.chat_template
    except PdcoreError:
        return None


def device_context(device: Device | None) -> int | None:
    """The device's context window in tokens, or None (no device, or one that failed to start: the cloud
    answers, and its own window decides)."""
    if device is None:
        return None
    try:
        return device.engine.n_ctx
    except PdcoreError:
        return None


def fits_unread(prompt: str, context_tokens: int) -> bool:
    """Whether ``prompt`` fits ``context_tokens`` without being tokenized (module docstring)."""
    return len(prompt.encode("utf-8")) + 1 < context_tokens


async def check_context(
    prompt: str,
    device: Device | None,
    context_tokens: int | None,
    param: str,
    counted: Callable[[], Awaitable[int | None]],
) -> None:
    """Refuses a prompt that does not fit the device's context window (module docstring).

    Args:
        prompt: The prompt text.
        device: The device (None: no device, nothing to check).
        context_tokens: Its context window in tokens (None: unknown, nothing to check).
        param: The request field the prompt came from (``messages`` or ``prompt``).
        counted: The device's own count of the prompt for its answer (None: the device does not read it).

    Raises:
        APIError: 400 ``context_length_exceeded``.
    """
    if device is None or context_tokens is None or fits_unread(prompt, context_tokens):
        return
    tokens = await counted()
    if tokens is None:
        try:
            tokens = await device.count_tokens(prompt)
        except DeviceFailedError:  # the device cannot answer: the cloud will, and its own window decides
            return
    if tokens >= context_tokens:
        raise APIError(
            400,
            f"{param}: the prompt has {tokens} tokens and the device's context window is {context_tokens} "
            "(at least one more is needed for the answer); fix: shorten the conversation or the prompt",
            code="context_length_exceeded",
            param=param,
        )
