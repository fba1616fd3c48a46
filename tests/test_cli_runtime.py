"""``pdcore chat`` against a scripted cloud: the session's mode names and their old aliases, and a device
model that cannot load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("httpx", reason="the live runtime needs the `device` extra (httpx)")
pytest.importorskip("httpx_sse", reason="the live runtime needs the `device` extra (httpx-sse)")

from pdcore.cli import app
from pdcore.runtime.testing import CloudScript, FakeCloud, word_pieces

ANSWER = "Paris is the capital of France."


def _chat(url: str, mode: str, out: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["chat", "hi", "--cloud-url", url, "--mode", mode, "--k", "0", "--json", str(out)]
    )
    return result.exit_code, result.output


@pytest.mark.parametrize(("mode", "old"), [("cloud-only", None), ("cloud", "cloud-only")])
def test_chat_mode_takes_the_policy_names_and_the_old_ones_for_one_release(
    tmp_path: Path, mode: str, old: str | None
) -> None:
    out = tmp_path / "timeline.json"
    with FakeCloud(CloudScript(word_pieces(ANSWER), first_delay_s=0.01, gap_s=0.002)) as cloud:
        code, output = _chat(cloud.url, mode, out)
    assert code == 0, output
    assert ANSWER in output
    assert json.loads(out.read_text())["mode"] == "cloud-only"
    assert ("--mode cloud is now called --mode cloud-only" in output) == (old is not None)


def test_chat_names_the_modes_on_a_bad_one(tmp_path: Path) -> None:
    code, output = _chat("http://127.0.0.1:9", "both", tmp_path / "t.json")
    assert code == 2
    assert "use one of pd-device, device-only, cloud-only" in output


@pytest.fixture
def device_extra_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The device extra counts as installed, whether or not llama_cpp is: what follows is the device
    failing to start its model, not a missing install (`pdcore.cli.chat_pieces`)."""
    monkeypatch.setattr("pdcore.cli.chat_pieces._installed", lambda module: True)


@pytest.mark.usefixtures("device_extra_installed")
def test_chat_with_a_model_that_cannot_load_is_answered_by_the_cloud_with_a_notice(tmp_path: Path) -> None:
    missing = tmp_path / "missing.gguf"
    with FakeCloud(CloudScript(word_pieces(ANSWER), first_delay_s=0.01, gap_s=0.002)) as cloud:
        result = CliRunner().invoke(
            app, ["chat", "hi", "--cloud-url", cloud.url, "--model", str(missing), "--k", "0"]
        )
    assert result.exit_code == 0, result.output
    assert ANSWER in result.output
    assert "notice:" in result.output
    assert "missing.gguf could not start" in result.output
    result = CliRunner().invoke(app, ["chat", "hi", "--model", str(missing), "--mode", "device-only"])
    assert result.exit_code == 2, result.output
    assert "the device failed (" in result.output
    assert "the cloud cannot continue the answer (device-only mode has no cloud" in result.output


@pytest.mark.usefixtures("device_extra_installed")
def test_chat_with_k_auto_and_a_model_without_a_profile_names_the_flags_to_pass(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["chat", "hi", "--cloud-url", "http://127.0.0.1:9", "--model", str(tmp_path / "m.gguf")]
    )
    assert result.exit_code == 2, result.output
    assert "--k auto plans from the device's speed" in result.output
    assert "fix: pass --profile FILE" in result.output
    assert "device_profile=" not in result.output


@pytest.mark.parametrize("raw", ["temperature=NaN", "top_p=Infinity", "x=[1, -Infinity]"])
def test_a_cloud_param_that_is_not_finite_is_refused_naming_it(raw: str) -> None:
    from pdcore.cli.live_options import cloud_params
    from pdcore.exceptions import InvalidInputError

    with pytest.raises(InvalidInputError, match=r"--cloud-param .*not a finite number; fix:"):
        cloud_params([raw])
    assert cloud_params(["temperature=0.5", "stop=none"]) == {"temperature": 0.5, "stop": "none"}
