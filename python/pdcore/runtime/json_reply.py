"""A short reply from the cloud read whole against one deadline, a size limit and a nesting limit: the one
reader of the cloud's JSON routes (tokenize, ``GET /v1/models``, ``GET /props``, a completion asked for
without streaming) and of the text of a refusal.

`fetch_json` sends the request and reads the headers and the whole body within ``deadline_s``. httpx's
read timeout restarts with every byte, so without this a server that sends its headers and then nothing,
or a byte at a time, would hold the caller for as long as it likes. A body longer than `MAX_REPLY_BYTES`
is not read further, and one nested deeper than `pdcore.nesting.MAX_NESTING` is not parsed: neither is
a reply any of these routes gives (ours). What the reply means is the caller's to check: numbers in it
are range-checked where they are used.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from pdcore.nesting import check_nesting
from pdcore.runtime.deadline import within_s

__all__ = [
    "DETAIL_CHARS",
    "MAX_REPLY_BYTES",
    "JsonReply",
    "ReplyError",
    "describe",
    "fetch_json",
    "read_limited",
]

T = TypeVar("T")

MAX_REPLY_BYTES = 8 << 20
"""The longest reply body read, bytes (ours): the token ids of a 1,000,000-token prompt, at up to eight
bytes each, or a model list far longer than any server's."""

DETAIL_CHARS = 400
"""Characters of a refusal's text kept for its error message."""


class ReplyError(Exception):
    """No whole reply arrived: the server cannot be reached, or the deadline passed (``timed_out``)."""

    def __init__(self, message: str, *, timed_out: bool) -> None:
        super().__init__(message)
        self.timed_out = timed_out


@dataclass(frozen=True)
class JsonReply:
    """A reply read whole.

    Attributes:
        status: The HTTP status.
        value: The parsed JSON body; None when the status is not 200, or the body is too long, not
            UTF-8 JSON, or nested too deep (``problem`` says which).
        detail: The start of the body's text (`DETAIL_CHARS`), for an error message.
        problem: Why ``value`` is None despite status 200, else None.
    """

    status: int
    value: Any
    detail: str
    problem: str | None = None


def describe(exc: BaseException) -> str:
    """A transport error as its type and text (the text may be empty)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _within(awaitable: Awaitable[T], until: float, deadline_s: float, what: str) -> T:
    """Awaits ``awaitable`` until the event loop's time ``until`` (a deadline of ``deadline_s``).

    Raises:
        ReplyError: The time passed (``timed_out``) or the transport failed.
    """
    try:
        return await within_s(awaitable, until - asyncio.get_running_loop().time())
    except asyncio.TimeoutError:
        raise ReplyError(f"{what} did not answer within {deadline_s:g} s", timed_out=True) from None
    except httpx.HTTPError as exc:
        raise ReplyError(f"cannot reach {what}: {describe(exc)}", timed_out=False) from None


async def read_limited(chunks: AsyncIterator[bytes], limit: int) -> tuple[bytes, bool]:
    """The body from ``chunks``, at most ``limit`` bytes of it, and whether there was more."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            return bytes(body[:limit]), True
    return bytes(body), False


async def fetch_json(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    deadline_s: float,
    body: Any = None,
    max_bytes: int = MAX_REPLY_BYTES,
) -> JsonReply:
    """Sends a request and reads its whole reply within ``deadline_s`` (module docstring).

    Raises:
        ReplyError: No whole reply within the deadline, or the server cannot be reached.
    """
    until = asyncio.get_running_loop().time() + deadline_s
    request = http.build_request(method, url, json=body)
    response = await _within(http.send(request, stream=True), until, deadline_s, url)
    try:
        content, longer = await _within(
            read_limited(response.aiter_bytes(), max_bytes), until, deadline_s, url
        )
    finally:
        await response.aclose()
    text = content.decode("utf-8", "replace")
    detail = text[:DETAIL_CHARS]
    if response.status_code != 200:
        return JsonReply(response.status_code, None, detail)
    if longer:
        return JsonReply(200, None, detail, f"a reply longer than {max_bytes} bytes")
    try:
        check_nesting(content.decode("utf-8"), url, "json")
        return JsonReply(200, json.loads(content), detail)
    except ValueError as exc:  # not UTF-8, nested too deep (InvalidInputError), not JSON, digits too many
        return JsonReply(200, None, detail, f"not JSON this client reads ({exc})")
