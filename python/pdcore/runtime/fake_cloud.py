"""`FakeCloud`: a scripted OpenAI-compatible streaming server for testing the live runtime
(`pdcore.runtime.testing`).

It serves ``POST /v1/completions`` on 127.0.0.1 from a plain `http.server` thread and streams a scripted
answer as server-sent events, one piece per event: with a first-token delay, per-event gaps (fixed or a
jittery list), or failures (an HTTP error status, a cut after some events, a stall). A prompt that ends
with the beginning of the answer is a continuation: the answer resumes after it, from the middle of a piece
when the beginning ends there (the rest of that piece is the first event).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar

__all__ = ["CloudScript", "FakeCloud", "free_port", "unused_url", "word_pieces"]


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
        return type("Handler", (_Handler,), {"cloud": self})


class _Handler(BaseHTTPRequestHandler):
    """Serves `FakeCloud`'s script (a subclass per server sets ``cloud``)."""

    protocol_version = "HTTP/1.0"
    cloud: ClassVar[FakeCloud]

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        if not self.path.startswith("/v1/models"):
            self._json(404, {"error": {"message": "not found"}})
            return
        entry = {"id": "fake", "object": "model", **self.cloud.script.model_fields}
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
        script = self.cloud.script
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
            self._json(422, {"detail": [{"loc": ["body", refused[0]], "msg": "extra fields not permitted"}]})
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
        self.cloud.requests.append(served)
        try:
            self._stream(self.cloud.script, served)
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
        faulty = script.faulty_requests is None or len(self.cloud.requests) <= script.faulty_requests
        cut_after = script.cut_after if faulty else None
        stall_after = script.stall_after if faulty else None
        quota = int(served.body.get("max_tokens", len(script.pieces)))
        rest = _rest(str(served.body.get("prompt", "")), script.pieces)
        if script.context_tokens is not None:
            room = script.context_tokens - len(str(served.body.get("prompt", "")).split())
            quota = max(0, min(quota, room))
        pieces = rest[:quota]
        complete = quota >= len(rest)
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


def _rest(prompt: str, pieces: Sequence[str]) -> list[str]:
    """The pieces of the answer after the longest beginning of it that ``prompt`` ends with (all of them
    for a new request); the first one cut where that beginning ends."""
    answer = "".join(pieces)
    done = next((size for size in range(len(answer), 0, -1) if prompt.endswith(answer[:size])), 0)
    rest: list[str] = []
    start = 0
    for piece in pieces:
        end = start + len(piece)
        if end > done:
            rest.append(piece[max(0, done - start) :])
        start = end
    return rest
