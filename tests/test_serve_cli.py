"""``pdcore serve`` end to end: the command starts on a free port, answers the ``openai`` client through a
scripted cloud, and stops on SIGTERM; its flags are checked before anything starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("fastapi", reason="pdcore serve needs the `serve` extra")
pytest.importorskip("uvicorn", reason="pdcore serve needs the `serve` extra")
pytest.importorskip("openai", reason="the tests of pdcore serve need the openai client")
pytest.importorskip("httpx_sse", reason="the live runtime needs the `device` extra")

import httpx
import openai

from pdcore.cli import app
from pdcore.runtime.testing import CloudScript, FakeCloud, free_port, word_pieces

ANSWER = "Paris is the capital of France."
KEY = "s3cret"


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--port", "70000"], "--port 70000; fix: pass a TCP port from 1 to 65535"),
        (["--host", " "], "--host is empty"),
        (["--max-tokens", "0"], "--max-tokens 0"),
        (["--k", "many"], "--k 'many'; fix: pass a whole number of tokens or 'auto'"),
    ],
)
def test_serve_checks_its_flags_before_starting(flags: list[str], words: str) -> None:
    result = CliRunner().invoke(app, ["serve", "--cloud-url", "http://127.0.0.1:9", *flags])
    assert result.exit_code == 2, result.output
    assert words in result.output


def test_pdcore_serve_starts_answers_the_openai_client_and_stops(tmp_path: Path) -> None:
    port = free_port()
    missing = tmp_path / "missing.gguf"  # the device cannot start: the cloud answers, with a notice
    command = [
        sys.executable, "-c", "from pdcore.cli import main; main()", "serve", "--port", str(port),
        "--k", "2", "--model", str(missing),
    ]  # fmt: skip
    environment = os.environ | {"PDCORE_API_KEY": KEY}
    log = tmp_path / "serve.log"
    with (
        FakeCloud(CloudScript(word_pieces(ANSWER), first_delay_s=0.01, gap_s=0.002)) as cloud,
        log.open("wb") as out,
    ):
        process = subprocess.Popen(
            [*command, "--cloud-url", cloud.url], stdout=out, stderr=subprocess.STDOUT, env=environment
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert httpx.get(f"{base}/v1/models").status_code == 401
            with openai.OpenAI(base_url=f"{base}/v1", api_key=KEY, max_retries=0) as client:
                (model,) = client.models.list()
                assert model.id == "missing"
                reply = client.chat.completions.create(
                    model="missing", messages=[{"role": "user", "content": "Capital of France?"}]
                )
            assert reply.choices[0].message.content == ANSWER
            assert reply.model_extra is not None
            assert reply.model_extra["pdcore"]["tokens_by_source"] == {
                "cloud": len(word_pieces(ANSWER)),
                "device": 0,
            }
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    output = log.read_text()
    assert f"serving missing on http://127.0.0.1:{port}/v1" in output
    assert "Traceback" not in output
    assert KEY not in output
