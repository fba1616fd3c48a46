"""One streamed cloud request read to its end: each event within its stall deadline, and the way it ended
told apart (a finish reason, a cut, a stall, a refusal).

`read_stream` reads `CloudClient.stream` and hands each event to a `StreamSink` (the cloud's part of the
answer, `pdcore.runtime.cloud_stream.CloudStream`, or the continuation after a device failure,
`pdcore.runtime.failover.Failover`). It returns the stream's failure, if any, for the caller to act on
(resume, or leave the rest to the device); the stalls it meets are recorded in the timeline
(``cloud_stalls``).

Stalls (ours). Each stream has a deadline (`stall_deadline`): before its first event, `STALL_FIRST_FACTOR`
times the first-token delay expected (learned; the client's read timeout before anything was learned);
after it, `STALL_GAP_FACTOR` times the stream's median gap, at least `STALL_MIN_S`. No event within it is a
stall: a ``silent`` failure. A stream that sent its finish reason has ended: what the server sends or holds
after it is not waited for.

Cuts. A stream that breaks off (`CloudStreamCutError`), or ends (``[DONE]`` or the body's end) short of the
tokens asked for without a finish reason, is a ``cut``: llama.cpp's server ends a stream so when another
request waits (``interrupt_requests``). With every token asked for, such an end is a ``"length"`` end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol

from pdcore.exceptions import CloudContextError, CloudError, CloudStreamCutError, CloudUnavailableError
from pdcore.runtime.cloud import CloudClient
from pdcore.runtime.deadline import within_s
from pdcore.runtime.request_state import RequestState

__all__ = [
    "STALL_FIRST_FACTOR",
    "STALL_GAP_FACTOR",
    "STALL_MIN_S",
    "StreamSink",
    "read_stream",
    "stall_deadline",
]

STALL_MIN_S = 0.25
"""The shortest silence of a started stream counted as a stall: several display gaps at the 50 ms default
objective, well above the 10-30 ms between a healthy stream's events."""

STALL_GAP_FACTOR = 4.0
"""A started stream stalls when silent for this many of its median gaps (at least `STALL_MIN_S`)."""

STALL_FIRST_FACTOR = 4.0
"""A stream stalls before its first event after this many first-token delays (as learned)."""

NO_READ_TIMEOUT_S = 30.0
"""The first event's deadline when neither a first-token delay nor a client's read timeout is known."""


class StreamSink(Protocol):
    """Where the events of one streamed cloud request go (module docstring)."""

    def on_text(self, text: str, at: float) -> None:
        """An event with ``text`` arrived at ``at`` (clock seconds)."""

    def on_end(self, reason: str, at: float, *, short: bool) -> None:
        """The stream ended with finish reason ``reason``; ``short``: fewer events than asked for."""

    def on_failure(self, kind: str, error: CloudError) -> None:
        """The stream failed: ``kind`` is ``"cut"``, ``"silent"``, ``"unavailable"`` or ``"context"``."""


def stall_deadline(
    first: bool, expected_first_s: float | None, read_timeout_s: float | None, median_gap_s: float
) -> float:
    """Seconds of silence after which a stream counts as stalled (module docstring).

    Args:
        first: Whether the stream has sent no event yet.
        expected_first_s: The first-token delay expected (given or learned), if known.
        read_timeout_s: The client's read timeout, if there is a client.
        median_gap_s: The stream's median gap between events so far.
    """
    if first:
        if expected_first_s:
            return max(STALL_FIRST_FACTOR * expected_first_s, 1.0)
        return read_timeout_s if read_timeout_s is not None else NO_READ_TIMEOUT_S
    return max(STALL_GAP_FACTOR * median_gap_s, STALL_MIN_S)


async def read_stream(
    client: CloudClient,
    state: RequestState,
    sink: StreamSink,
    prompt: str,
    max_tokens: int,
    deadline: Callable[[bool], float],
) -> tuple[str, CloudError] | None:
    """Streams ``max_tokens`` positions after ``prompt`` from ``client`` into ``sink``.

    Args:
        client: The endpoint.
        state: The request's shared record (its clock and timeline).
        sink: Where the events go.
        prompt: The full prompt text.
        max_tokens: Tokens asked for.
        deadline: The stall deadline in seconds, given whether no event has arrived yet.

    Returns:
        The failure as ``(kind, error)`` (module docstring), or None when the stream ended with a finish
        reason or every token asked for.
    """
    sent = state.clock.now()
    received = 0
    last = sent
    stream = client.stream(prompt, max_tokens=max_tokens, now=state.clock.now)
    try:
        while True:
            wait = deadline(received == 0)
            try:
                event = await within_s(anext(stream), wait)
            except StopAsyncIteration:
                return _ended_without_reason(client, state, sink, last, received, max_tokens)
            except asyncio.TimeoutError:
                return "silent", _silent(client, state, last, wait, received)
            last = event.at
            if event.text:
                received += 1
                sink.on_text(event.text, event.at)
            if event.finish_reason is not None:
                # the stream has ended: whatever the server sends or holds after it (``[DONE]``, or
                # nothing while the connection stays open) is not waited for under the stall deadline
                sink.on_end(event.finish_reason, event.at, short=received < max_tokens)
                return None
    except CloudContextError as exc:
        return "context", exc
    except CloudUnavailableError as exc:
        return "unavailable", exc
    except CloudStreamCutError as exc:
        state.timeline.cloud_stalls.append((state.rel(last), state.clock.now() - last, "cut"))
        return "cut", exc
    finally:
        with contextlib.suppress(Exception):
            await stream.aclose()


def _ended_without_reason(
    client: CloudClient, state: RequestState, sink: StreamSink, last: float, received: int, max_tokens: int
) -> tuple[str, CloudError] | None:
    """A stream that ended with no finish reason: a ``"length"`` end with every token asked for, else a
    cut (module docstring)."""
    if received >= max_tokens:
        sink.on_end("length", last, short=False)
        return None
    state.timeline.cloud_stalls.append((state.rel(last), state.clock.now() - last, "cut"))
    return "cut", CloudStreamCutError(
        f"cloud stream from {client.endpoint} ended after {received} of {max_tokens} events "
        "without a finish reason"
    )


def _silent(
    client: CloudClient, state: RequestState, last: float, deadline: float, received: int
) -> CloudStreamCutError:
    """Records a stall and names it."""
    silent = state.clock.now() - last
    state.timeline.cloud_stalls.append((state.rel(last), silent, "silent"))
    return CloudStreamCutError(
        f"cloud stream from {client.endpoint} silent for {silent * 1e3:.0f} ms "
        f"(deadline {deadline * 1e3:.0f} ms) after {received} events"
    )
