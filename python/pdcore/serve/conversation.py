"""A request's prompt: a chat request's messages through the model's chat template, a completion's prompt as
it is, and the check that it fits the device's context window.

The chat template is the device model's own (`pdcore.runtime.device.Device.chat_template`, read from the
GGUF file), rendered by `pdcore.runtime.chat_template.render_chat` with the generation prompt open, so that
the device and the cloud continue the same text. ``developer`` messages render as ``system`` (OpenAI's
newer name for the same role).

Context window (the rule is ours): a prompt is not tokenized here when it surely or very likely fits, so
the common case costs the first token nothing: surely, when its UTF-8 length plus one (the
beginning-of-sequence token) is below the device's context window (a token holds at least one byte); very
likely, when its length at the session's learned tokens per character, `CONTEXT_MARGIN` times over, is
(a prompt of 9,000 characters, about 2,000 SmolLM2 tokens, was counted twice before its cloud request
left, once here and once by the session: about 13 ms of the server's first token on the 2-core development
machine). Any other prompt is tokenized by the device and refused with ``context_length_exceeded`` when
its tokens fill the window (the device needs room for at least one answer token, as
`pdcore.runtime.device.Device.start` requires). A prompt estimated to fit that does not is refused by the
device itself, with the same code: as an HTTP error before the first token, as the stream's error event
after it.
"""

from __future__ import annotations

from pdcore.exceptions import DeviceFailedError, InvalidInputError, PdcoreError
from pdcore.runtime.chat_template import render_chat
from pdcore.runtime.device import Device
from pdcore.serve.errors import APIError
from pdcore.serve.schemas import ChatCompletionRequest

__all__ = [
    "CONTEXT_MARGIN",
    "chat_prompt",
    "check_context",
    "device_chat_template",
    "device_context",
    "fits_unread",
]

CONTEXT_MARGIN = 1.25
"""How far over its estimated length a prompt must still fit the window to go uncounted (module docstring):
the learned tokens per character of one prompt misjudge another by a few percent."""


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


def fits_unread(prompt: str, context_tokens: int, tokens_per_char: float | None = None) -> bool:
    """Whether ``prompt`` fits ``context_tokens`` without being tokenized (module docstring), at
    ``tokens_per_char`` (None: only the sure bound)."""
    if len(prompt.encode("utf-8")) + 1 < context_tokens:
        return True
    if tokens_per_char is None or not tokens_per_char > 0:
        return False
    return len(prompt) * tokens_per_char * CONTEXT_MARGIN + 1 < context_tokens


async def check_context(
    prompt: str,
    device: Device | None,
    context_tokens: int | None,
    param: str,
    tokens_per_char: float | None = None,
) -> None:
    """Refuses a prompt that does not fit the device's context window (module docstring).

    Args:
        prompt: The prompt text.
        device: The device (None: no device, nothing to check).
        context_tokens: Its context window in tokens (None: unknown, nothing to check).
        param: The request field the prompt came from (``messages`` or ``prompt``).
        tokens_per_char: The session's learned device tokens per character (None: not estimated).

    Raises:
        APIError: 400 ``context_length_exceeded``.
    """
    if device is None or context_tokens is None or fits_unread(prompt, context_tokens, tokens_per_char):
        return
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
