"""Misbehaving OpenAI-compatible servers for tests of the cloud client's network edge.

`Misbehaving` is a local HTTP server whose routes are functions of the handler and the request's JSON body;
the functions here script what real servers and proxies have been seen to do (a stream that never ends,
keep-alive comments instead of tokens, headers that trickle, a tokenize route that hangs, numbers out of
range). A server given an ``answer`` streams that answer's word pieces, continuing after the part of it
that already ends the prompt (as a resumed request sends it), then ``" word"`` for ever; without one it
streams ``" word"`` from the start.

`within` bounds a test: a client that hangs fails the test after a few seconds instead of holding the suite.

Tests import this module by name (``from servers import Misbehaving``): pytest's default ``prepend``
import mode puts a test file's own folder (``tests/``, which has no ``__init__.py``) on ``sys.path``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, TypeVar

T = TypeVar("T")

LIMIT_S = 8.0
"""The longest a test bounded by `within` may take; a client that hangs fails at this point."""


def within(coroutine: Coroutine[Any, Any, T], limit_s: float = LIMIT_S) -> T:
    """Runs ``coroutine``, failing the test if it takes longer than ``limit_s``."""

    async def bounded() -> T:
        return await asyncio.wait_for(coroutine, limit_s)

    return asyncio.run(bounded())


Route = Callable[["Handler", dict[str, Any]], None]


class Misbehaving:
    """A local HTTP server whose routes are functions of the handler and the request's JSON body.

    Args:
        routes: Path (without the query) -> route; any other path is a 404.
        answer: The text the streaming routes say (module docstring); empty: ``" word"`` for ever.
        prefill_char_s: Seconds a request with a ``prompt`` waits per character of it before its route
            runs, as a server prefills: first-token times then grow with the prompt, as a fit expects.
    """

    def __init__(self, routes: dict[str, Route], *, answer: str = "", prefill_char_s: float = 0.0) -> None:
        from pdcore.runtime.testing import word_pieces  # needs the `device` extra (httpx)

        self.routes = routes
        self.pieces = word_pieces(answer)
        self.prefill_char_s = prefill_char_s
        self.hits: dict[str, int] = {}
        self.stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (Handler,), {"server_": self}))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Misbehaving:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class Handler(BaseHTTPRequestHandler):
    """One request to a `Misbehaving` server; routes call its helpers."""

    protocol_version = "HTTP/1.0"
    server_: ClassVar[Misbehaving]

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _route(self, body: dict[str, Any]) -> None:
        path = self.path.split("?", 1)[0]
        self.server_.hits[path] = self.server_.hits.get(path, 0) + 1
        route = self.server_.routes.get(path)
        if self.server_.prefill_char_s and "prompt" in body:
            self.stop_after(self.server_.prefill_char_s * len(str(body["prompt"])))
        try:
            if route is None:
                reply(self, 404, {"detail": "Not Found"})
            else:
                route(self, body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self) -> None:
        self._route({})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self._route(json.loads(self.rfile.read(length) or b"{}"))

    def hang(self) -> None:
        """Keeps the connection open, sending nothing, until the server stops."""
        self.server_.stop.wait()

    def stop_after(self, seconds: float) -> bool:
        """Waits ``seconds``; whether the server is stopping."""
        return self.server_.stop.wait(seconds)

    def sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()

    def send(self, raw: str) -> None:
        self.wfile.write(raw.encode())
        self.wfile.flush()

    def pieces(self, body: dict[str, Any]) -> Iterator[str]:
        """The server's answer after what of it already ends the prompt, then ``" word"`` for ever."""
        pieces, prompt = self.server_.pieces, str(body.get("prompt", ""))
        start = next((n for n in range(len(pieces), 0, -1) if prompt.endswith("".join(pieces[:n]))), 0)
        yield from pieces[start:]
        while True:
            yield " word"


def reply(handler: Handler, status: int, body: Any, kind: str = "application/json") -> None:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", kind)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


def chunk(text: str, reason: str | None = None) -> str:
    return "data: " + json.dumps({"choices": [{"text": text, "index": 0, "finish_reason": reason}]}) + "\n\n"


def endless(handler: Handler, body: dict[str, Any]) -> None:
    """Streams a token every 2 ms for ever: ``max_tokens`` is ignored."""
    handler.sse()
    for piece in handler.pieces(body):
        if handler.server_.stop.is_set():
            break
        handler.send(chunk(piece))
        time.sleep(0.002)


def keep_alive(tokens: int, filler: str) -> Route:
    """Streams ``tokens`` tokens, then ``filler`` every 20 ms for ever (no token, no end)."""

    def route(handler: Handler, body: dict[str, Any]) -> None:
        handler.sse()
        for piece in itertools.islice(handler.pieces(body), tokens):
            handler.send(chunk(piece))
        while not handler.server_.stop.is_set():
            handler.send(filler)
            time.sleep(0.02)

    return route


def trickle(gap_s: float) -> Route:
    """A token every ``gap_s`` seconds, never finishing."""

    def route(handler: Handler, body: dict[str, Any]) -> None:
        handler.sse()
        pieces = handler.pieces(body)
        while not handler.stop_after(gap_s):
            handler.send(chunk(next(pieces)))

    return route


def trickling_headers(handler: Handler, body: dict[str, Any]) -> None:
    """A status line, then a header line every 20 ms for ever: the headers never end."""
    handler.wfile.write(b"HTTP/1.0 200 OK\r\n")
    while not handler.stop_after(0.02):
        handler.send("X-Wait: 1\r\n")


def after_tokens(tokens: int, tail: str, *, hang: bool = False) -> Route:
    """Streams ``tokens`` tokens, then sends ``tail`` as is and closes the connection (or, with
    ``hang``, keeps it open sending nothing)."""

    def route(handler: Handler, body: dict[str, Any]) -> None:
        handler.sse()
        for piece in itertools.islice(handler.pieces(body), tokens):
            handler.send(chunk(piece))
        handler.send(tail)
        if hang:
            handler.hang()

    return route


def finite(handler: Handler, body: dict[str, Any]) -> None:
    """A well-behaved stream of ``max_tokens`` tokens."""
    handler.sse()
    count = int(body.get("max_tokens", 16))
    for index, piece in enumerate(itertools.islice(handler.pieces(body), count)):
        handler.send(chunk(piece, "length" if index == count - 1 else None))
    handler.send("data: [DONE]\n\n")


def no_done(handler: Handler, body: dict[str, Any]) -> None:
    """``max_tokens`` tokens, the last with its finish reason, then neither ``[DONE]`` nor a close."""
    handler.sse()
    count = int(body.get("max_tokens", 16))
    for index, piece in enumerate(itertools.islice(handler.pieces(body), count)):
        handler.send(chunk(piece, "length" if index == count - 1 else None))
    handler.hang()


def closes(handler: Handler, body: dict[str, Any]) -> None:
    """Closes the connection without sending a byte."""


def html(handler: Handler, body: dict[str, Any]) -> None:
    """HTTP 200 with an HTML page, as a captive portal or a misrouted proxy answers."""
    reply(handler, 200, b"<!doctype html><html><body><h1>Welcome</h1></body></html>", "text/html")


def models(handler: Handler, body: dict[str, Any]) -> None:
    reply(handler, 200, {"object": "list", "data": [{"id": "m", "max_model_len": 4096}]})


def models_saying(entry: dict[str, Any] | bytes) -> Route:
    """``GET /v1/models`` listing one model ``entry`` (raw bytes: the reply as is)."""

    def route(handler: Handler, body: dict[str, Any]) -> None:
        reply(handler, 200, entry if isinstance(entry, bytes) else {"object": "list", "data": [entry]})

    return route


def words(handler: Handler, body: dict[str, Any]) -> None:
    reply(handler, 200, {"tokens": list(range(len(str(body.get("content", "")).split())))})


def hang_after_headers(handler: Handler, body: dict[str, Any]) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "100")
    handler.end_headers()
    handler.wfile.write(b'{"tokens": [')
    handler.wfile.flush()
    handler.hang()


def counted(value: object) -> Route:
    def route(handler: Handler, body: dict[str, Any]) -> None:
        reply(handler, 200, f'{{"count": {value}}}'.encode() if isinstance(value, str) else {"count": value})

    return route


DEEP = "[" * 100_000 + "]" * 100_000
"""A JSON document nested 100,000 levels deep."""
