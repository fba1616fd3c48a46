"""A chat's messages as one prompt, through the model's own chat template.

`render_chat` turns OpenAI-style chat messages (the ``messages`` of ``POST /v1/chat/completions``: roles
``system``, ``user`` and ``assistant``, string content; OpenAI API reference, "Create chat completion")
into the prompt text the device and the cloud complete. It renders the model's Jinja chat template, the
GGUF metadata key ``tokenizer.chat_template`` (`engine_chat_template`), the way Hugging Face transformers'
``apply_chat_template`` and llama.cpp's server do: a sandboxed Jinja environment (no attribute access to
Python internals, no mutation of the messages) with ``trim_blocks`` and ``lstrip_blocks``, the variables
``messages`` and ``add_generation_prompt=True`` (the prompt ends where the assistant's answer begins), and
``raise_exception``. A model without a template gets ChatML (`pdcore.runtime.engine.chatml`'s format,
SmolLM2's), without a system prompt unless the messages have one.

``bos_token`` renders as the empty string (ours): the device tokenizes a prompt with the model's BOS added
(`DeviceEngine.tokenize` with ``prompt=True``), so a template that writes it would double it. ``eos_token``
renders as the model's end-of-turn text only when given.

Why the template matters for the conversation cache: with the templates chat models ship (ChatML,
SmolLM2's, Llama 3's), the prompt of turn ``n + 1`` begins with the prompt of turn ``n`` followed by its
answer, so the device reuses the KV of the tokens it already holds (`pdcore.runtime.conversation_cache`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pdcore.exceptions import InvalidInputError

__all__ = ["ROLES", "chatml_chat", "engine_chat_template", "render_chat"]

ROLES = ("system", "user", "assistant")
"""The message roles a chat may have."""


def _checked(messages: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """The messages as plain dicts, checked (the error names the message and the field)."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise InvalidInputError("messages: pass a non-empty list of {'role': ..., 'content': ...} objects")
    out: list[dict[str, str]] = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidInputError(f"messages[{index}]: pass an object with 'role' and 'content'")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise InvalidInputError(f"messages[{index}].role = {role!r}; pass one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise InvalidInputError(
                f"messages[{index}].content is {type(content).__name__}; pass the message's text as a string"
            )
        out.append({"role": str(role), "content": content})
    return out


def chatml_chat(messages: Sequence[Mapping[str, str]]) -> str:
    """The ChatML prompt of ``messages``, ending where the assistant's answer begins.

    Example:
        >>> chatml_chat([{"role": "user", "content": "Hi"}])
        '<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n'
    """
    turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in _checked(messages))
    return turns + "<|im_start|>assistant\n"


def render_chat(messages: Sequence[Mapping[str, str]], template: str | None, *, eos_token: str = "") -> str:
    """The prompt of a chat: ``messages`` through the model's Jinja chat ``template`` (module docstring),
    or ChatML (`chatml_chat`) when the model has none.

    Raises:
        InvalidInputError: A message is malformed (the error names its index and field), the template
            does not parse or raises on these messages, or jinja2 is missing.
    """
    checked = _checked(messages)
    if template is None:
        return chatml_chat(checked)
    try:
        from jinja2 import TemplateError  # noqa: PLC0415  # reason: jinja2 comes with the device extra
        from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: PLC0415  # reason: as above
    except ImportError:
        raise InvalidInputError(
            "a model's chat template needs jinja2; fix: pip install 'pdcore[serve]' (or 'pdcore[device]')"
        ) from None

    def raise_exception(message: str) -> Any:
        raise TemplateError(message)

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    environment.globals["raise_exception"] = raise_exception
    try:
        compiled = environment.from_string(template)
        return compiled.render(
            messages=checked, add_generation_prompt=True, bos_token="", eos_token=eos_token
        )
    except (TemplateError, TypeError, ValueError, LookupError) as error:
        raise InvalidInputError(
            f"the model's chat template cannot render these messages: {error}; fix: check the roles and "
            "their order (some templates want user and assistant turns to alternate)"
        ) from None


def engine_chat_template(engine: object) -> str | None:
    """The chat template in an engine's GGUF metadata (``tokenizer.chat_template``), if it has one: a
    `pdcore.runtime.engine.LlamaEngine`'s ``metadata``, or the metadata a worker's child reported at start
    (`pdcore.runtime.worker.EngineWorker.facts`)."""
    facts = getattr(engine, "facts", None)
    metadata = facts.get("metadata") if isinstance(facts, dict) else getattr(engine, "metadata", None)
    template = metadata.get("tokenizer.chat_template") if isinstance(metadata, dict) else None
    return template if isinstance(template, str) and template else None
