"""A completion stream read against a stall deadline, a token budget and a whole-request deadline: the one
reader of every streamed cloud request (`CloudClient.stream`, and through it chat, ``validate``, `Session`
and ``profile-cloud``).

The response's bytes are decoded as server-sent events here (comments, blank lines and fields other than
``data`` are skipped; an event longer than `MAX_EVENT_CHARS` is refused) and each ``data`` is parsed by
`pdcore.runtime.openai_api.parse_event`. Whatever the server sends, three limits hold (ours):

- **Stall deadline.** No token for ``stall_s`` seconds, from sending the request and then from the latest
  token, ends the stream. Only progress resets it: an event with text, or a higher token count from the
  server. Keep-alive comments, empty events and bytes that complete no event do not; neither do headers
  sent a byte at a time.
- **Token budget.** Once the tokens asked for have arrived (counted by the server where its events say,
  ``usage.completion_tokens``, else one per event with text), the stream is read only for its finish
  reason, for at most `FINISH_GRACE_S` (or ``stall_s`` when shorter). More text, the end of the stream or
  silence then ends it as ``"length"``: a server that ignores ``max_tokens`` cannot stream for ever.
- **Whole deadline.** The request may take ``stall_s + budget * slowest_token_s`` in all: the first
  token's allowance plus the tokens asked for at the slowest plausible pace (`SLOWEST_TOKEN_S` by
  default). A server that keeps each gap inside the stall deadline but trickles its answer ends there.

Only events with text or a finish reason are passed on: what carries neither is not progress.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TypeVar

from pdcore.exceptions import CloudError, CloudStreamCutError, CloudUnavailableError
from pdcore.runtime.deadline import within_s
from pdcore.runtime.openai_api import CloudEvent, parse_event

__all__ = ["FINISH_GRACE_S", "MAX_EVENT_CHARS", "SLOWEST_TOKEN_S", "TokenStream"]

T = TypeVar("T")

SLOWEST_TOKEN_S = 1.0
"""The slowest average pace a usable cloud keeps, seconds a token (ours): twenty times the 50 ms gap the
display aims for, and slower than a 70B model decoding on a CPU. It sets a stream's whole deadline."""

FINISH_GRACE_S = 1.0
"""How long a stream that has sent the tokens asked for is read for its finish reason (ours). Servers send
it with the last token or at once after it."""

MAX_EVENT_CHARS = 1 << 20
"""The longest server-sent event read, characters (ours): an event carries one token's text and a few
hundred characters of JSON around it."""

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class _GraceOverError(Exception):
    """The grace for the finish reason after the last token asked for passed: the stream ends normally."""


class _Events:
    """An incremental server-sent-events decoder: bytes in, the ``data`` of each complete event out."""

    def __init__(self, limit: int) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = ""
        self._data: list[str] = []
        self._size = 0
        self._limit = limit

    def feed(self, chunk: bytes) -> list[str]:
        """The data of the events ``chunk`` completes.

        Raises:
            ValueError: An event is longer than the limit.
        """
        text = self._pending + self._decoder.decode(chunk)
        held = ""
        if text.endswith("\r"):  # its "\n" may come with the next chunk
            text, held = text[:-1], "\r"
        lines = _LINE_BREAK.split(text)
        self._pending = lines.pop() + held
        if len(self._pending) > self._limit:
            raise ValueError(f"an event larger than {self._limit} characters")
        complete: list[str] = []
        for line in lines:
            if not line:
                if self._data:
                    complete.append("\n".join(self._data))
                self._data, self._size = [], 0
            elif line.startswith("data"):
                field, _, value = line.partition(":")
                if field == "data":
                    self._data.append(value[1:] if value.startswith(" ") else value)
                    self._size += len(value)
                    if self._size > self._limit:
                        raise ValueError(f"an event larger than {self._limit} characters")
        return complete


class TokenStream:
    """The limits of one streamed request (module docstring).

    Args:
        source: The endpoint, for error messages.
        budget: Tokens asked for, ``>= 1``.
        stall_s: Seconds allowed without a token (before the first, and between two).
        slowest_token_s: The slowest plausible pace, for the whole deadline.
        now: The clock that stamps each event.
    """

    def __init__(
        self,
        source: str,
        *,
        budget: int,
        stall_s: float,
        slowest_token_s: float = SLOWEST_TOKEN_S,
        now: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.source = source
        self.budget = budget
        self.stall_s = float(stall_s)
        self.slowest_token_s = float(slowest_token_s)
        self.total_s = self.stall_s + budget * self.slowest_token_s
        self.now = now
        self.delivered = 0
        """Events passed on so far."""
        self.tokens = 0
        """Tokens counted so far (module docstring)."""
        self.finished = False
        """The stream ended normally: a finish reason, ``[DONE]`` or the budget."""
        self._loop = asyncio.get_running_loop()
        self._sent = self._loop.time()
        self._progress = self._sent
        self._grace_until: float | None = None

    def failure(self, reason: str) -> CloudError:
        """The error for ``reason``: `CloudUnavailableError` before any event, else `CloudStreamCutError`."""
        if self.delivered == 0:
            return CloudUnavailableError(f"cloud {self.source} unavailable: {reason}")
        return CloudStreamCutError(
            f"cloud stream from {self.source} cut after {self.delivered} events: {reason}"
        )

    async def within(self, awaitable: Awaitable[T]) -> T:
        """Awaits ``awaitable`` until the stream's next deadline.

        Raises:
            CloudError: The stall or the whole deadline passed (`failure`).
            _GraceOverError: The grace for the finish reason passed (internal to `events`).
        """
        stall_at = self._progress + self.stall_s
        whole_at = self._sent + self.total_s
        until = min(stall_at, whole_at)
        if self._grace_until is not None:
            until = min(until, self._grace_until)
        try:
            return await within_s(awaitable, until - self._loop.time())
        except asyncio.TimeoutError:
            if self._grace_until is not None:  # the tokens asked for have arrived
                raise _GraceOverError from None
            if stall_at <= whole_at:
                raise self.failure(f"no token for {self.stall_s:g} s") from None
            raise self.failure(
                f"the whole request's deadline of {self.total_s:g} s passed ({self.stall_s:g} s for the "
                f"first token and {self.slowest_token_s:g} s a token for {self.budget} tokens)"
            ) from None

    def _count(self, event: CloudEvent) -> bool:
        """Counts ``event``'s tokens; whether it is progress."""
        before = self.tokens
        if event.tokens is not None:
            self.tokens = max(self.tokens, event.tokens)
        elif event.text:
            self.tokens += 1
        return self.tokens > before

    def _grace(self) -> None:
        """Starts the grace for the finish reason (and ``[DONE]``) after the last token."""
        if self._grace_until is None:
            self._grace_until = self._loop.time() + min(FINISH_GRACE_S, self.stall_s)

    async def _datas(self, chunks: AsyncIterator[bytes]) -> AsyncGenerator[str, None]:
        """The ``data`` of each event of the body ``chunks``, until it ends or the grace passes."""
        decoder = _Events(MAX_EVENT_CHARS)
        while True:
            try:
                chunk = await self.within(anext(chunks))
            except (StopAsyncIteration, _GraceOverError):
                return
            try:
                datas = decoder.feed(chunk)
            except ValueError as exc:
                raise self.failure(str(exc)) from None
            for data in datas:
                yield data

    async def events(self, chunks: AsyncIterator[bytes]) -> AsyncGenerator[CloudEvent, None]:
        """The events of a response's body ``chunks`` with text or a finish reason, within the limits
        (module docstring); `finished` says whether it ended normally.

        Raises:
            CloudError: A deadline passed, or an event is malformed or too long (`failure`).
        """
        spent = False  # the budget is spent: only a finish reason is passed on
        done = False
        async with contextlib.aclosing(self._datas(chunks)) as datas:
            async for data in datas:
                if data.strip() == "[DONE]":
                    done = True
                    break
                if not data.strip():
                    continue
                event = parse_event(data, self.now())
                if event is None:
                    raise self.failure(f"unexpected event {data[:200]!r}")
                progress = self._count(event)
                if self.finished or (spent and progress):
                    if progress:  # more than asked for, or after the end
                        break
                    continue
                if progress:
                    self._progress = self._loop.time()
                if event.text or event.finish_reason is not None:
                    self.delivered += 1
                    yield event
                if event.finish_reason is not None:
                    self.finished = True
                    self._grace()
                elif self.tokens >= self.budget:
                    spent = True
                    self._grace()
        if spent and not self.finished:
            self.finished = True
            self.delivered += 1
            yield CloudEvent(text="", at=self.now(), finish_reason="length")
        self.finished = self.finished or done
