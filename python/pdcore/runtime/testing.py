"""Stand-ins for testing the live runtime: a scripted SSE cloud, a scripted device, a llama.cpp server.

- `FakeCloud` serves ``POST /v1/completions`` on 127.0.0.1 from a plain `http.server` thread and streams
  a scripted answer as server-sent events, one piece per event: with a first-token delay, per-event gaps
  (fixed or a jittery list), or failures (an HTTP error status, a cut after some events, a stall). A
  prompt that ends with the first pieces of the answer is a continuation: the answer resumes after them.
- `FakeEngine` is a `DeviceEngine` that "knows" the answer: its tokens are UTF-8 bytes (so it never
  tokenizes like the cloud's word pieces), it continues the answer from wherever the context's answer
  text ends, and it sleeps for the time its cost model gives (optionally ``slowdown`` times slower than
  the profile it reports, `FakeEngine.profile`).
- `LlamaServer` starts ``python -m llama_cpp.server`` on a free loopback port and stops it again.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from pdcore.profiles.device import DeviceProfile

__all__ = [
    "BOS",
    "EOG",
    "CloudScript",
    "FakeCloud",
    "FakeEngine",
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


def word_pieces(text: str) -> list[str]:
    """Splits ``text`` into pieces that each start with their leading whitespace, like a BPE stream.

    Example:
        >>> word_pieces("The capital of France.")
        ['The', ' capital', ' of', ' France.']
    """
    return re.findall(r"\s*\S+|\s+$", text)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def unused_url() -> str:
    """A loopback URL nobody listens on (connections are refused)."""
    return f"http://127.0.0.1:{free_port()}"


@dataclass
class CloudScript:
    """How `FakeCloud` answers.

    Attributes:
        pieces: The whole answer, one piece per event.
        first_delay_s: Seconds before the first event.
        gap_s: Seconds between events: one value, or one per event after the first (the last repeats).
        status: An HTTP status to refuse with instead of streaming (e.g. 503), or 200.
        cut_after: Close the connection after this many events, without a finish reason.
        stall_after: Stop sending (keeping the connection open) after this many events.
        context_tokens: A context window (prompt tokens counted as whitespace-separated words): a request
            whose prompt plus ``max_tokens`` exceeds it is refused as llama-cpp-python's server does, and
            an answer is cut with finish reason ``"length"`` where the window fills.
        refuse_fields: Request fields the server refuses with HTTP 422 naming them.
        model_fields: Extra fields of the ``GET /v1/models`` entry (e.g. ``{"max_model_len": 4096}``).
        tokenize: Whether it offers ``POST /extras/tokenize`` (whitespace-separated words).
        faulty_requests: How many requests, from the first, ``cut_after`` and ``stall_after`` apply to
            (None: all of them).
        silent_context_error: Refuse a streamed request beyond ``context_tokens`` as llama-cpp-python's
            server does: HTTP 200, then an empty stream (the error is only said without streaming).
    """

    pieces: Sequence[str]
    first_delay_s: float = 0.05
    gap_s: float | Sequence[float] = 0.01
    status: int = 200
    cut_after: int | None = None
    stall_after: int | None = None
    context_tokens: int | None = None
    refuse_fields: Sequence[str] = ()
    model_fields: Mapping[str, Any] = field(default_factory=dict)
    tokenize: bool = False
    faulty_requests: int | None = None
    silent_context_error: bool = False

    def gap(self, index: int) -> float:
        """The wait before event ``index`` (``index >= 1``)."""
        if isinstance(self.gap_s, (int, float)):
            return float(self.gap_s)
        gaps = list(self.gap_s)
        return float(gaps[min(index - 1, len(gaps) - 1)]) if gaps else 0.0


@dataclass
class _Served:
    body: dict[str, Any]
    headers: dict[str, str]
    path: str = "/v1/completions"
    sent: int = 0
    disconnected: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class FakeCloud:
    """A scripted OpenAI-compatible streaming server on 127.0.0.1 (use as a context manager).

    Attributes:
        script: The script in force; replace it between requests.
        requests: One record per request served: its JSON body, headers, events sent, and whether the
            client went away before the end.
    """

    def __init__(self, script: CloudScript) -> None:
        self.script = script
        self.requests: list[_Served] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-cloud", daemon=True)

    @property
    def url(self) -> str:
        """The base URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeCloud:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def wait_done(self, timeout: float = 5.0) -> None:
        """Waits until every request served so far has finished on the server side."""
        for served in self.requests:
            served.done.wait(timeout)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        cloud = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                if not self.path.startswith("/v1/models"):
                    self._json(404, {"error": {"message": "not found"}})
                    return
                entry = {"id": "fake", "object": "model", **cloud.script.model_fields}
                self._json(200, {"object": "list", "data": [entry]})

            def _json(self, status: int, body: Any) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                script = cloud.script
                if self.path == "/extras/tokenize" and script.tokenize:
                    self._json(200, {"tokens": list(range(len(str(body.get("input", "")).split())))})
                    return
                if self.path not in ("/v1/completions", "/v1/chat/completions"):
                    self._json(404, {"detail": "Not Found"})
                    return
                if "messages" in body:
                    body["prompt"] = "".join(str(m.get("content", "")) for m in body["messages"])
                refused = [name for name in script.refuse_fields if name in body]
                if refused:
                    self._json(
                        422, {"detail": [{"loc": ["body", refused[0]], "msg": "extra fields not permitted"}]}
                    )
                    return
                if script.context_tokens is not None:
                    asked = len(str(body.get("prompt", "")).split()) + int(body.get("max_tokens", 16))
                    prompt = len(str(body.get("prompt", "")).split())
                    if prompt >= script.context_tokens:
                        if script.silent_context_error and body.get("stream"):
                            self.send_response(200)
                            self.send_header("Content-Type", "text/event-stream")
                            self.end_headers()
                            return
                        message = (
                            f"This model's maximum context length is {script.context_tokens} tokens, however "
                            f"you requested {asked} tokens"
                        )
                        self._json(400, {"error": {"message": message, "code": "context_length_exceeded"}})
                        return
                served = _Served(body=body, headers=dict(self.headers.items()), path=self.path)
                cloud.requests.append(served)
                try:
                    self._stream(cloud.script, served)
                except (BrokenPipeError, ConnectionResetError):
                    served.disconnected = True
                finally:
                    served.done.set()

            def _stream(self, script: CloudScript, served: _Served) -> None:
                if script.status != 200:
                    payload = json.dumps({"error": {"message": "refused by the fake cloud"}}).encode()
                    self.send_response(script.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                faulty = script.faulty_requests is None or len(cloud.requests) <= script.faulty_requests
                cut_after = script.cut_after if faulty else None
                stall_after = script.stall_after if faulty else None
                quota = int(served.body.get("max_tokens", len(script.pieces)))
                start = _continued(str(served.body.get("prompt", "")), script.pieces)
                if script.context_tokens is not None:
                    room = script.context_tokens - len(str(served.body.get("prompt", "")).split())
                    quota = max(0, min(quota, room))
                pieces = list(script.pieces)[start : start + quota]
                complete = start + quota >= len(script.pieces)
                for index, piece in enumerate(pieces):
                    time.sleep(script.first_delay_s if index == 0 else script.gap(index))
                    if cut_after is not None and index >= cut_after:
                        return
                    if stall_after is not None and index >= stall_after:
                        time.sleep(3600)
                    last = index == len(pieces) - 1
                    reason = ("stop" if complete else "length") if last else None
                    self._event({"choices": [{"text": piece, "index": 0, "finish_reason": reason}]})
                    served.sent += 1
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def _event(self, payload: dict[str, Any]) -> None:
                self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
                self.wfile.flush()

        return Handler


def _continued(prompt: str, pieces: Sequence[str]) -> int:
    """How many pieces of the answer ``prompt`` already ends with (a continuation request)."""
    for count in range(len(pieces), 0, -1):
        if prompt.endswith("".join(pieces[:count])):
            return count
    return 0


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
