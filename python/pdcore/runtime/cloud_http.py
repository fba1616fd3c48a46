"""The streamed cloud request's HTTP transport: aiohttp, whose response parser is compiled (llhttp).

Why not the JSON replies' client (httpx): the stream's first event is on every answer's critical path,
and the pure-Python HTTP parsing behind httpx adds to it. Measured on the 2-core development machine
against llama.cpp's server with the prompt cached (24 paired rounds of 512-2,048-token prompts, the same
request through each): the first event 11.1 ms after sending through httpx against 7.3 ms through
aiohttp, whose response headers came 3.1 ms after sending against 4.6 ms; a raw socket's was 9.4 ms
and aiohttp's 9.4 ms in another run of 30 rounds where httpx's was 12.4 ms. Model information, tokenize
routes and the non-streamed diagnosis stay on httpx (`pdcore.runtime.json_reply`): none is on the
critical path.

`StreamTransport` keeps one connection pool per event loop (keep-alive: a TLS cloud pays its handshake
once). Its lifetime (ours): the pool is held by an asynchronous generator started on the loop that uses
it, so when that loop shuts down (``asyncio.run`` closes every unfinished asynchronous generator before
it closes the loop) the pool is closed on that loop, with its connections, even by a caller that never
calls `StreamTransport.aclose`; a later request on another loop opens a new pool. Redirects are not
followed (as httpx does not by default); proxies come from the environment (as httpx's do).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from pdcore.runtime.deadline import within_s

__all__ = ["STREAM_HEADERS", "TRANSPORT_ERRORS", "StreamResponse", "StreamTransport"]

STREAM_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}
"""Headers of a streamed request besides the client's own (no proxy or server cache may answer it)."""

TRANSPORT_ERRORS = (aiohttp.ClientError, OSError)
"""What a failed connection, request or read raises (timeouts are the caller's: `TokenStream.within`)."""


@dataclass(frozen=True, slots=True)
class StreamResponse:
    """A streamed response once its headers have arrived.

    Attributes:
        status: The HTTP status.
        content_type: The ``Content-Type`` header ("" when absent).
        response: aiohttp's response (read through `chunks`, closed by `close`).
    """

    status: int
    content_type: str
    response: aiohttp.ClientResponse

    def chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive (chunked transfer decoded)."""
        return self.response.content.iter_any()

    def close(self) -> None:
        """Closes the response; a response not read to its end closes its connection."""
        self.response.close()


async def _pool(
    connect_timeout: float, read_timeout: float, headers: Mapping[str, str], tls: ssl.SSLContext | None
) -> AsyncGenerator[aiohttp.ClientSession, None]:
    """Holds one loop's connection pool until the loop shuts down or the transport closes (module
    docstring)."""
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=read_timeout)
    connector = aiohttp.TCPConnector(ssl=tls if tls is not None else True)
    session = aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=dict(headers), trust_env=True, auto_decompress=True
    )
    try:
        yield session
    finally:
        await session.close()


class StreamTransport:
    """POSTs a JSON body and returns the response as its headers arrive, its body read as it streams.

    Args:
        url: The endpoint (its scheme decides whether a TLS context is built, up front: loading the trust
            store takes tens of milliseconds, which must not delay the first request).
        connect_timeout: Seconds to connect (a backstop; each read has the caller's own deadline).
        read_timeout: Seconds a read may wait for a byte (a backstop, as above).
        headers: Sent with every request.
    """

    def __init__(
        self, url: str, *, connect_timeout: float, read_timeout: float, headers: Mapping[str, str]
    ) -> None:
        self._settings = (connect_timeout, read_timeout, dict(headers))
        self._tls = ssl.create_default_context() if url.lower().startswith("https:") else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._holder: AsyncGenerator[aiohttp.ClientSession, None] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def _current(self) -> aiohttp.ClientSession:
        """This loop's pool, opened on first use (module docstring)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            connect_timeout, read_timeout, headers = self._settings
            self._holder = _pool(connect_timeout, read_timeout, headers, self._tls)
            self._session = await anext(self._holder)
            self._loop = loop
        return self._session

    async def post(self, url: str, fields: Mapping[str, Any]) -> StreamResponse:
        """Sends ``fields`` as JSON to ``url`` and returns the response once its headers have arrived.

        Raises:
            ValueError: A field is not JSON (NaN or infinity included).
            aiohttp.ClientError, OSError: The request failed (`TRANSPORT_ERRORS`).
        """
        body = json.dumps(fields, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        session = await self._current()
        response = await session.post(url, data=body, headers=STREAM_HEADERS, allow_redirects=False)
        return StreamResponse(response.status, response.headers.get("Content-Type", ""), response)

    async def warm(self, url: str, deadline_s: float) -> None:
        """Opens this loop's pool and one kept-alive connection with a GET of ``url`` (a TLS cloud's
        handshake is paid now, not by the first answer); a cloud that does not answer within ``deadline_s``
        is left to the first request."""
        session = await self._current()

        async def fetch() -> None:
            async with session.get(url, allow_redirects=False) as response:
                await response.read()

        with contextlib.suppress(*TRANSPORT_ERRORS, asyncio.TimeoutError):
            await within_s(fetch(), deadline_s)

    async def aclose(self) -> None:
        """Closes this loop's pool (a later request opens a new one)."""
        holder, loop = self._holder, self._loop
        self._holder = self._session = self._loop = None
        if holder is not None and loop is asyncio.get_running_loop():
            with contextlib.suppress(StopAsyncIteration):
                await holder.aclose()
