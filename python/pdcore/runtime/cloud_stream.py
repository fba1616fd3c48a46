"""The cloud's part of a streamed request: its stream, its end or failure, resumes and continuation requests.

Each streamed event's text is one output position, recorded in the shared `TokenBuffer` and pushed into the
`SpeedController` with its arrival time.

Continuations (`CloudStream.maybe_extend`): if the device still falls behind what the buffer can cover,
the stream asks the cloud for more tokens; when and how many is `pdcore.runtime.continuation`'s rule.

The cloud's limits are learned (`CloudClient`): its context window caps every request (prompt plus quota),
an answer the server ends at its context (finish reason ``"length"`` short of the quota) is told apart from
the quota being spent, and no continuation is asked for past the window.

Stalls and cuts (`pdcore.runtime.cloud_read`): a stream silent past its deadline, or ended short of its
quota without a finish reason, fails as ``silent`` or ``cut``. Either is resumed while the device is still
behind (ours): a new request with the prompt and the text so far, for the rest of the quota, at most
`MAX_RESUMES` times per answer with a backoff of `RESUME_BACKOFF_S` doubling each time; each resume is
recorded (``cloud_resumes``).

A stream's events go to a `StreamSink`: the cloud stream itself for the cloud's part of the answer, or the
continuation after a device failure (`pdcore.runtime.failover.Failover`), which streams through
`CloudStream.stream_for` with the same stall deadlines and records.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Callable

from pdcore.exceptions import CloudError
from pdcore.runtime.cloud import CloudClient
from pdcore.runtime.cloud_read import (
    STALL_FIRST_FACTOR,
    STALL_GAP_FACTOR,
    STALL_MIN_S,
    StreamSink,
    read_stream,
    stall_deadline,
)
from pdcore.runtime.continuation import (
    EXTENSION_LEAD_S,
    extension_due,
    extension_tokens,
    last_arrival_due,
    next_arrival_due,
)
from pdcore.runtime.request_state import RequestState
from pdcore.runtime.timeline import CloudRecord

__all__ = [
    "EXTENSION_LEAD_S",
    "MAX_RESUMES",
    "RESUME_BACKOFF_S",
    "STALL_FIRST_FACTOR",
    "STALL_GAP_FACTOR",
    "STALL_MIN_S",
    "CloudStream",
    "StreamSink",
]

MAX_RESUMES = 2
"""Requests that resume a silent or cut stream, per answer."""

RESUME_BACKOFF_S = 0.05
"""The wait before the first resume; it doubles for the next."""

UNKNOWN_ROOM = 1 << 30
"""The context room of a cloud whose window is unknown: no limit."""


class CloudStream:
    """The cloud's part of one request (module docstring); the `StreamSink` of its own streams.

    Args:
        state: The request's shared record.
        client: The endpoint (``None`` in device-only mode: the stream never starts).
        expected_first_s: The first-token delay expected (given or learned), for the stall deadline.
        revise_handoff: Revises the hand-off estimate after the cloud's progress.
        part_ended: Called when the cloud sends nothing more for a split answer: the device continues.
        answer_completed: Called when the cloud has sent the whole answer: the device is not needed.
        device_unpriced: The device has no speed profile: until its hand-off can be estimated from its
            own calls, a continuation asks for the rest of the answer (`pdcore.runtime.continuation`).
    """

    def __init__(
        self,
        state: RequestState,
        client: CloudClient | None,
        *,
        expected_first_s: float | None,
        revise_handoff: Callable[[], None],
        part_ended: Callable[[], None],
        answer_completed: Callable[[], None],
        device_unpriced: bool = False,
    ) -> None:
        self.state = state
        self.device_unpriced = device_unpriced
        self.client = client
        self.expected_first_s = expected_first_s
        self._revise_handoff = revise_handoff
        self._part_ended = part_ended
        self._answer_completed = answer_completed
        self.quota = 0
        """Output positions asked of the cloud so far (after an end: the positions it sent)."""
        self.prompt_tokens = 1
        """The prompt's length in device tokens: estimated when the stream starts, counted once the device
        has tokenized it (`context_room`)."""
        self.pieces: list[str] = []
        """The text of each kept event, by output position."""
        self.chars = 0
        """Characters of ``pieces`` (the hand-off estimate's characters per piece, without a re-count)."""
        self.arrivals: list[float] = []
        self.open = False
        self.idle = False
        """The quota is used up and the buffer stays open for a continuation."""
        self.task: asyncio.Task[None] | None = None
        self.resumes = 0
        self.context_full = False
        """The cloud's context window has no room for more of this answer."""
        self.sent_at: float | None = None
        """When the latest request of this stream was sent (clock seconds)."""
        self.stream_arrivals = 0
        """Kept events of the latest request so far."""

    def start(self, prompt: str, max_tokens: int, *, delay: float = 0.0) -> None:
        """Sends a request for ``max_tokens`` positions after ``prompt`` (after ``delay`` seconds)."""
        self.open = True
        self.idle = False
        self.task = self.stream_for(self, prompt, max_tokens, delay=delay)

    def stream_for(
        self, sink: StreamSink, prompt: str, max_tokens: int, *, delay: float = 0.0
    ) -> asyncio.Task[None]:
        """Sends a request for ``max_tokens`` positions after ``prompt`` (after ``delay`` seconds) whose
        events go to ``sink``, with this stream's stall deadlines and records."""
        task = asyncio.create_task(self._run(sink, prompt, max_tokens, delay))
        task.add_done_callback(lambda _: self.state.notify())
        return task

    def cancel(self, now: float) -> None:
        """Stops an open stream at the hand-off: the device has taken over."""
        if self.task is not None and self.open:
            self.task.cancel()
            self.state.timeline.cloud_end = "cancelled"
            self.state.timeline.cloud_end_s = self.state.rel(now)

    def median_gap(self) -> float:
        """The median gap between the latest arrivals (the pace the controller aims for before two)."""
        arrivals = self.arrivals[-17:]
        gaps = sorted(b - a for a, b in itertools.pairwise(arrivals))
        return gaps[len(gaps) // 2] if gaps else self.state.terms.pace_s

    def first_token_s(self) -> float:
        """The first-token delay of this answer's first request, else the expected one, else 0."""
        timeline = self.state.timeline
        if timeline.cloud_first_s is not None and timeline.cloud_sent_s is not None:
            return timeline.cloud_first_s - timeline.cloud_sent_s
        return self.expected_first_s or 0.0

    def arrivals_due(self, now: float) -> tuple[float, float] | None:
        """When the next and the last token asked for should arrive (`pdcore.runtime.continuation`);
        ``None`` when everything asked for has arrived or no stream is open."""
        last = self.last_arrival_due(now)
        if last is None or self.sent_at is None:
            return None
        following = next_arrival_due(
            now,
            left=self.quota - self.state.buffer.received,
            gap_s=self.median_gap(),
            sent_at=self.sent_at,
            first_token_s=self.first_token_s(),
            last_arrival=self.arrivals[-1] if self.stream_arrivals else None,
        )
        assert following is not None
        return following, last

    def last_arrival_due(self, now: float) -> float | None:
        """When the last token asked for should arrive (`pdcore.runtime.continuation.last_arrival_due`);
        ``None`` when everything asked for has arrived or no stream is open."""
        if not self.open or self.sent_at is None:
            return None
        return last_arrival_due(
            now,
            left=self.quota - self.state.buffer.received,
            gap_s=self.median_gap(),
            sent_at=self.sent_at,
            first_token_s=self.first_token_s(),
            last_arrival=self.arrivals[-1] if self.stream_arrivals else None,
        )

    def maybe_extend(self, now: float, last_shown: float | None, per_token_s: float = 0.0) -> None:
        """Asks the cloud for more tokens when the device will be later than the buffer can cover (the rule
        is `pdcore.runtime.continuation`'s; ``per_token_s``: the device's time to append one more received
        token). The undisplayed tokens last until ``now`` (or the last display, ``last_shown``) plus one
        paced gap each; the continuation carries the prompt and the text received so far."""
        state, terms, buffer = self.state, self.state.terms, self.state.buffer
        received = buffer.received
        estimate = state.controller.handoff_at if state.controller is not None else None
        if estimate is None and self.device_unpriced and not state.timeline.device_failures:
            estimate = math.inf  # the device's hand-off cannot be estimated yet (`continuation`'s rule)
        if not (
            estimate is not None
            and self._may_continue()
            and len(state.timeline.cloud_extensions) < terms.max_extensions
        ):
            return
        pace = terms.pace_s
        start = max(now, last_shown if last_shown is not None else now)
        covered = start + (received - buffer.displayed) * pace
        first_token = (state.timeline.cloud_first_s or 0.0) - (state.timeline.cloud_sent_s or 0.0)
        if not extension_due(now, covered, estimate, pace_s=pace, first_token_s=first_token):
            return
        extra = extension_tokens(
            now,
            covered,
            estimate,
            per_token_s=per_token_s,
            pace_s=pace,
            gap_s=self.median_gap(),
            first_token_s=self.first_token_s(),
            k_margin=terms.k_margin,
            max_tokens=terms.max_tokens,
        )
        self._continue(now, extra)

    def _may_continue(self) -> bool:
        """Whether a continuation may be sent at all: a split answer, incomplete and not handed off, the
        cloud's quota spent, positions and context room left."""
        state = self.state
        return (
            self.idle
            and not state.closed
            and state.mode == "pd-device"
            and not state.answer_complete
            and state.buffer.handoff is None
            and state.buffer.received < state.terms.max_tokens
            and not self.context_full
        )

    def can_unstall(self) -> bool:
        """Whether a display run dry before the hand-off may ask the cloud for the rest of the answer
        (`unstall`): a continuation may be sent, every received token is shown, continuations are allowed
        (``max_extensions`` above 0; the stall's is one more than they count), and the device has not failed
        (then the failover continues it)."""
        state = self.state
        return (
            self._may_continue()
            and state.buffer.displayed >= state.buffer.received
            and state.terms.max_extensions > 0
            and not state.timeline.device_failures
        )

    def unstall(self, now: float, waited_s: float) -> None:
        """The display ran dry for ``waited_s`` before the hand-off, the device not ready (``now``): asks the
        cloud for the rest of the answer in one continuation (`pdcore.runtime.continuation`, the stall
        rule), and notes it."""
        if not self.can_unstall():
            return
        state = self.state
        extra = self._continue(now, state.terms.max_tokens)
        if extra:
            state.notice(
                "device-late",
                f"the device was not ready {waited_s * 1e3:.0f} ms after the last token shown "
                f"({state.buffer.received} tokens received), later than its hand-off estimate; the cloud is "
                f"asked for the rest of the answer ({extra} tokens) and the device takes over if it catches "
                "up; fix: check the machine's load, or give the device profile its real speed",
            )

    def _continue(self, now: float, wanted: int) -> int:
        """Sends a continuation for up to ``wanted`` more positions (the prompt and the text received so
        far), as many as the answer's length and the cloud's context leave; returns how many (0: no room,
        which is noted once)."""
        state = self.state
        received = state.buffer.received
        extra = min(wanted, state.terms.max_tokens - received, self.context_room())
        if extra < 1:
            self.context_is_full()
            return 0
        self.quota = received + extra
        state.timeline.cloud_quota = self.quota
        state.timeline.cloud_extensions.append((state.rel(now), extra))
        if state.controller is not None:
            state.controller.set_expected(self.quota)
        self.start(state.prompt + "".join(self.pieces), extra)
        return extra

    def context_room(self) -> int:
        """Tokens the cloud's context window leaves for more of this answer (large when unknown)."""
        window = self.client.context_tokens if self.client is not None else None
        if window is None:
            return UNKNOWN_ROOM
        return window - self.prompt_tokens - self.state.buffer.received

    def context_is_full(self) -> None:
        """Notes, once, that the cloud's context window has no room for more of this answer."""
        if not self.context_full:
            self.context_full = True
            window = self.client.context_tokens if self.client is not None else None
            self.state.notice(
                "cloud-context",
                f"the cloud's context window ({window} tokens) has no room for more of this answer after "
                f"{self.state.buffer.received} tokens; the device continues from there",
            )

    def stall_deadline(self, first: bool) -> float:
        """Seconds of silence after which the stream counts as stalled (`pdcore.runtime.cloud_read`)."""
        read_timeout = self.client.read_timeout if self.client is not None else None
        return stall_deadline(first, self.expected_first_s, read_timeout, self.median_gap())

    async def _run(self, sink: StreamSink, prompt: str, max_tokens: int, delay: float) -> None:
        client = self.client
        assert client is not None
        state = self.state
        if delay > 0:
            await asyncio.sleep(delay)
        sent = state.clock.now()
        if sink is self:
            self.sent_at = sent
            self.stream_arrivals = 0
        if state.timeline.cloud_sent_s is None:
            state.timeline.cloud_sent_s = state.rel(sent)
        try:
            failure = await read_stream(client, state, sink, prompt, max_tokens, self.stall_deadline)
        finally:
            if sink is self:
                self.open = False
            state.notify()
        if failure is not None:
            sink.on_failure(*failure)

    def _can_resume(self) -> bool:
        """Whether a silent or cut stream is asked again (module docstring)."""
        buffer = self.state.buffer
        return (
            self.state.mode in ("pd-device", "cloud-only")
            and buffer.handoff is None
            and not self.state.answer_complete
            and buffer.stream == "open"
            and buffer.received < self.quota
            and self.resumes < MAX_RESUMES
            and not self.context_full
        )

    def _resume(self, kind: str) -> None:
        """Asks the cloud again for the rest of the quota, carrying the text so far."""
        delay = RESUME_BACKOFF_S * 2**self.resumes
        self.resumes += 1
        rest = min(self.quota - self.state.buffer.received, max(1, self.context_room()))
        self.state.timeline.cloud_resumes.append((self.state.rel(self.state.clock.now()), kind, rest))
        self.start(self.state.prompt + "".join(self.pieces), rest, delay=delay)

    def on_text(self, text: str, at: float) -> None:
        state = self.state
        index = len(state.timeline.cloud_events)
        position = None
        if state.buffer.stream == "open" and state.buffer.handoff is None:
            position = state.buffer.receive_cloud()
        kept = position is not None
        state.timeline.cloud_events.append(CloudRecord(index=index, text=text, at_s=state.rel(at), kept=kept))
        if not kept:
            return
        if state.timeline.cloud_first_s is None:
            state.timeline.cloud_first_s = state.rel(at)
        self.pieces.append(text)
        self.chars += len(text)
        self.arrivals.append(at)
        self.stream_arrivals += 1
        if state.controller is not None:
            state.controller.push(at)
        state.notify()

    def on_end(self, reason: str, at: float, *, short: bool = False) -> None:
        """The stream ended with a finish reason; ``short``: fewer tokens than asked for."""
        state, buffer = self.state, self.state.buffer
        state.timeline.cloud_end = reason
        state.timeline.cloud_end_s = state.rel(at)
        if buffer.handoff is not None:
            return
        if reason == "length" and short and buffer.received < state.terms.max_tokens:
            # the server's context window ended the answer, not our quota
            state.timeline.cloud_end = "context"
            self.context_is_full()
        self.quota = buffer.received
        if state.controller is not None:
            state.controller.set_expected(buffer.received)
        complete = reason == "stop" or buffer.received >= state.terms.max_tokens
        if complete or (state.mode == "cloud-only" and not self.context_full):
            if buffer.stream == "open":
                buffer.cut_cloud()
            state.answer_complete = True
            if state.controller is not None:
                state.controller.set_handoff(at)
            self._answer_completed()
        elif self.context_full:
            self._end_part()
        else:
            # the quota is used up: the buffer stays open for an extension (see `maybe_extend`)
            self.idle = True
            self._revise_handoff()
        state.notify()

    def _end_part(self) -> None:
        """The cloud sends nothing more for this answer: the device continues after what arrived (or, in
        cloud-only mode, the answer ends)."""
        buffer = self.state.buffer
        received = buffer.received
        if buffer.stream == "open":
            buffer.cut_cloud()
        self.quota = received
        if self.state.controller is not None:
            self.state.controller.set_expected(received)
        if self.state.mode == "cloud-only":
            self.state.answer_complete = True
        else:
            self._part_ended()

    def on_failure(self, kind: str, error: CloudError) -> None:
        state = self.state
        state.timeline.cloud_end = kind
        state.timeline.cloud_end_s = state.rel(state.clock.now())
        received = state.buffer.received
        if kind in ("cut", "silent") and self._can_resume():
            state.notice(
                f"cloud-{kind}",
                f"{error}; resuming with the {received} tokens received (attempt {self.resumes + 1} of "
                f"{MAX_RESUMES})",
            )
            self._resume(kind)
            state.notify()
            return
        if state.mode == "cloud-only":
            what = "the answer ends here (cloud-only mode has no device to fall back on)"
        elif received == 0:
            what = "answering on the device alone"
        else:
            what = f"the device continues after the {received} tokens received"
        state.notice(f"cloud-{kind}", f"{error}; {what}")
        if state.buffer.handoff is None:
            self._end_part()
        state.notify()
