"""Stand-ins for testing the live runtime: a scripted SSE cloud, a scripted device, a llama.cpp server.

- `FakeCloud` (`pdcore.runtime.fake_cloud`) serves ``POST /v1/completions`` on 127.0.0.1 and streams a
  scripted answer (`CloudScript`) as server-sent events, one piece per event, with delays or failures.
- `FakeEngine` is a `DeviceEngine` that "knows" the answer: its tokens are UTF-8 bytes (so it never
  tokenizes like the cloud's word pieces), it continues the answer from wherever the context's answer
  text ends, and it sleeps for the time its cost model gives (optionally ``slowdown`` times slower than
  the profile it reports, `FakeEngine.profile`); `FaultyEngine` crashes (a real SIGSEGV) or hangs on a
  chosen evaluation, for the failover tests (run it in a worker process: ``EngineSpec(FAULTY, {...})``).
- `LlamaServer` starts ``python -m llama_cpp.server`` on a free loopback port and stops it again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from pdcore.exceptions import InvalidStateError
from pdcore.profiles.device import DeviceProfile
from pdcore.runtime.fake_cloud import CloudScript, FakeCloud, free_port, unused_url, word_pieces

__all__ = [
    "BOS",
    "EOG",
    "FAKE",
    "FAULTY",
    "CloudScript",
    "FakeCloud",
    "FakeEngine",
    "FaultyEngine",
    "LlamaServer",
    "free_port",
    "unused_url",
    "word_pieces",
]

BOS = 1
"""`FakeEngine`'s beginning-of-sequence token."""

EOG = 2
"""`FakeEngine`'s end-of-generation token."""

_BYTE0 = 16
"""`FakeEngine` token id of byte 0; byte ``b`` is token ``_BYTE0 + b``."""

FAKE = "pdcore.runtime.testing:FakeEngine"
"""`FakeEngine`'s factory for an `pdcore.runtime.worker.EngineSpec`."""

FAULTY = "pdcore.runtime.testing:FaultyEngine"
"""`FaultyEngine`'s factory for an `pdcore.runtime.worker.EngineSpec`."""


class FakeEngine:
    """A scripted `DeviceEngine` whose greedy continuation is ``answer`` (see the module docstring).

    Costs (wall seconds, multiplied by ``slowdown``): evaluating ``n`` tokens takes
    ``call_s + n * prefill_token_s``, except a single token, which takes ``decode_s``.

    Args:
        answer: The text the model "would" write after the prompt.
        prefill_token_s: Seconds per evaluated token in a batch.
        call_s: Fixed seconds per evaluation call.
        decode_s: Seconds to evaluate one token (a decode step).
        slowdown: How much slower than `profile` the engine really is.
        n_ctx: The context window in tokens.
    """

    def __init__(
        self,
        answer: str,
        *,
        prefill_token_s: float = 0.002,
        call_s: float = 0.002,
        decode_s: float = 0.01,
        slowdown: float = 1.0,
        n_ctx: int = 1 << 20,
    ) -> None:
        self.answer = answer.encode("utf-8")
        self.prefill_token_s = prefill_token_s
        self.call_s = call_s
        self.decode_s = decode_s
        self.slowdown = slowdown
        self._n_ctx = n_ctx
        self.context: list[int] = []
        self.prompt_length = 0
        self.calls: list[int] = []
        self.states: dict[int, list[int]] = {}
        """Saved contexts by key (`save_state`)."""
        self.loads: list[tuple[int, int]] = []
        """``(key, keep_tokens)`` of each `load_state`."""

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    def tokenize(self, text: str, *, prompt: bool) -> list[int]:
        tokens = [_BYTE0 + byte for byte in text.encode("utf-8")]
        if prompt:
            tokens = [BOS, *tokens]
            self.prompt_length = len(tokens)
        return tokens

    def reset(self) -> None:
        self.context = []

    def eval(self, tokens: Sequence[int]) -> None:
        cost = self.decode_s if len(tokens) == 1 else self.call_s + len(tokens) * self.prefill_token_s
        time.sleep(cost * self.slowdown)
        self.context.extend(tokens)
        self.calls.append(len(tokens))

    def save_state(self, key: int) -> None:
        self.states[key] = list(self.context)

    def load_state(self, key: int, keep_tokens: int) -> None:
        saved = self.states[key]
        if not 0 < keep_tokens <= len(saved):
            raise InvalidStateError(f"keep_tokens = {keep_tokens} of a saved state of {len(saved)} tokens")
        self.context = saved[:keep_tokens]
        self.loads.append((key, keep_tokens))

    def drop_state(self, key: int) -> None:
        self.states.pop(key, None)

    def written(self) -> bytes:
        """The answer bytes in the context (everything after the prompt)."""
        return bytes(token - _BYTE0 for token in self.context[self.prompt_length :])

    def greedy(self) -> int:
        written = self.written()
        if not self.answer.startswith(written):
            return _BYTE0 + ord("?")
        if len(written) >= len(self.answer):
            return EOG
        return _BYTE0 + self.answer[len(written)]

    def is_eog(self, token: int) -> bool:
        return token == EOG

    def token_bytes(self, token: int) -> bytes:
        return bytes([token - _BYTE0]) if token >= _BYTE0 else b""

    def profile(self, *, name: str = "fake") -> DeviceProfile:
        """The profile the engine claims: its cost model without ``slowdown``."""
        points = (16.0, 256.0, 1024.0)
        return DeviceProfile(
            name=name,
            description="a scripted test device",
            hardware="none",
            model="none",
            engine="pdcore.runtime.testing.FakeEngine",
            prefill_tokens=points,
            prefill_seconds=tuple(self.call_s + n * self.prefill_token_s for n in points),
            decode_context_tokens=(0.0,),
            decode_tpot=(self.decode_s,),
            kv_bytes_per_token=23040,
            citation="-",
            notes="-",
        )


class FaultyEngine(FakeEngine):
    """A `FakeEngine` that crashes (``fault="crash"``: a real SIGSEGV, as a native engine built for the
    wrong CPU does) or hangs (``fault="hang"``) on its ``fault_at``-th evaluation, counting the worker's
    start probe (`pdcore.runtime.worker.PROBE_TOKENS` + 1 evaluations when the answer is that long)."""

    def __init__(self, answer: str, *, fault: str, fault_at: int, **options: Any) -> None:
        super().__init__(answer, **options)
        self.fault = fault
        self.fault_at = fault_at

    def eval(self, tokens: Sequence[int]) -> None:
        if len(self.calls) + 1 >= self.fault_at:
            if self.fault == "crash":
                os.kill(os.getpid(), signal.SIGSEGV)
            time.sleep(3600)
        super().eval(tokens)


class LlamaServer:
    """``python -m llama_cpp.server`` on a free loopback port (a context manager).

    Args:
        model: The GGUF file.
        n_threads: Threads for decoding and prefill.
        n_ctx: The context window.
        port: The port (default: a free one).
        startup_timeout: Seconds to wait for ``/v1/models`` to answer.
        log: Where the server's output goes (default: discarded).
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        n_threads: int = 1,
        n_ctx: int = 4096,
        port: int | None = None,
        startup_timeout: float = 120.0,
        log: str | os.PathLike[str] | None = None,
    ) -> None:
        self.model = Path(model)
        self.n_threads = n_threads
        self.n_ctx = n_ctx
        self.port = port if port is not None else free_port()
        self.startup_timeout = startup_timeout
        self.log = Path(log) if log is not None else None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The server's command line."""
        return [
            sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--host", "127.0.0.1",
            "--port", str(self.port), "--n_ctx", str(self.n_ctx), "--n_threads", str(self.n_threads),
            "--n_threads_batch", str(self.n_threads),
        ]  # fmt: skip

    def start(self) -> None:
        """Starts the server and waits until it answers.

        Raises:
            RuntimeError: It exited or did not answer within ``startup_timeout``.
        """
        if self.log is not None:
            with self.log.open("ab") as output:
                self._process = subprocess.Popen(self.command(), stdout=output, stderr=subprocess.STDOUT)
        else:
            self._process = subprocess.Popen(
                self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with code {self._process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/v1/models", timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not answer on {self.url} within {self.startup_timeout} s")

    def stop(self) -> None:
        """Stops the server (SIGTERM, then SIGKILL after 10 s)."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> LlamaServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
