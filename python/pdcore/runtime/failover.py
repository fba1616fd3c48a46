"""A device failure never costs the answer: the cloud continues it from the text so far.

The device's engine runs in a worker process (`pdcore.runtime.worker`); when it crashes, is killed or
hangs past its deadline, the device's part of the request ends with a `DeviceFailedError`
(`pdcore.runtime.device_progress`), whatever it was doing: starting, prefilling the prompt, appending the
cloud's text, decoding after the hand-off. `Failover.device_failed` then continues the answer from the
cloud:

- **The seam.** The answer so far is every output position filled: the cloud's text received before the
  hand-off (all of it is shown: the display shows each position once and in order) and the text the device
  decoded (shown, or due next). Before the hand-off the token buffer is handed over at the end of the
  received text as if the device had caught up, so the cloud's continuation fills the positions the device
  would have decoded; an open cloud stream is closed and the speed controller shows what it holds at once.
- **The continuation.** The prompt plus that text goes to the cloud as a continuation request, the path a
  cut stream is resumed by (`CloudStream.stream_for`, with its stall deadlines), for the rest of
  ``max_tokens``; its tokens take the next positions and are shown on arrival. A cut or silent
  continuation is resumed with the text so far, at most `MAX_RESUMES` times, with the same backoff. The
  displayed answer is the text so far, then the cloud's continuation of it: nothing repeated or dropped.
- **The record.** One ``device-failed`` notice, and ``(at_s, phase, cause, position)`` in the timeline's
  ``device_failures`` (``position``: where the continuation starts). The device starts a fresh worker in
  the background at once (`EngineThread.restart`), so the next request has one.

When no cloud can continue (device-only mode, a session without a cloud, the cloud's context window full,
or the continuation unavailable or failing past its resumes) the request ends with a `DeviceFailedError`
naming both causes.

A device found failed when a request starts (`Failover.device_failed_before`: it could not start, such as
a missing or corrupt model file or a crash in its probe, or its worker died while idle) is reported the
same way and restarted; the session then serves a P/D-Device request from the cloud alone (ours: a device
that has just failed is not planned on).
"""

from __future__ import annotations

import asyncio

from pdcore.exceptions import CloudError, DeviceFailedError
from pdcore.runtime.cloud_stream import MAX_RESUMES, RESUME_BACKOFF_S, CloudStream
from pdcore.runtime.device_progress import DeviceProgress
from pdcore.runtime.request_state import RequestState
from pdcore.runtime.timeline import CloudRecord

__all__ = ["Failover"]


class Failover:
    """The continuation of one request from the cloud after a device failure (module docstring); the
    `pdcore.runtime.cloud_read.StreamSink` of its continuation requests.

    Args:
        state: The request's shared record.
        cloud: The cloud's part (its client, its text so far, and the stream runner).
        progress: The device's part (its device and decoded text).
    """

    def __init__(self, state: RequestState, cloud: CloudStream, progress: DeviceProgress) -> None:
        self.state = state
        self.cloud = cloud
        self.progress = progress
        self.error: DeviceFailedError | None = None
        """The device's failure the continuation is for."""
        self.position = 0
        """The output position the continuation starts at."""
        self.seam_text = ""
        """The answer's text before that position."""
        self.pieces: list[str] = []
        """The continuation's text, one event a piece."""
        self.task: asyncio.Task[None] | None = None
        self.resumes = 0
        self._texts: dict[int, str] = {}
        self._arrivals: dict[int, float] = {}

    def holds(self, position: int) -> bool:
        """Whether output ``position`` is the continuation's and not shown yet."""
        return position in self._texts

    def arrival(self, position: int) -> float:
        """When the continuation's token at ``position`` arrived (clock seconds)."""
        return self._arrivals[position]

    def token(self, position: int) -> tuple[str, float]:
        """The continuation's token at ``position`` and its arrival, handed to the display once."""
        return self._texts.pop(position), self._arrivals.pop(position)

    def device_failed_before(self) -> bool:
        """At the request's start: reports a device that failed since its last answer (could not start, or
        its worker died while idle) and restarts it; a P/D-Device request is planned ``"cloud-only"`` (the
        device starts only if the cloud fails). Returns whether it had failed."""
        state, device = self.state, self.progress.device
        found = device.host.health() if device is not None else None
        if device is None or found is None:
            return False
        phase, error = found
        self._record(error, phase, 0)
        device.host.restart()
        if state.mode == "device-only":
            what = "a fresh worker is starting for this answer"
        else:
            what = "the cloud serves this answer; a fresh worker is starting for the next"
            state.timeline.plan, state.timeline.plan_reason = "cloud-only", "the device failed"
            self.progress.deferred = True
        state.notice("device-failed", f"{error}; {what}")
        return True

    def device_failed(self, error: DeviceFailedError, phase: str) -> None:
        """The device failed in ``phase`` of this request: the cloud continues the answer (module
        docstring).

        Raises:
            DeviceFailedError: No cloud can continue it; the message names both causes.
        """
        state, buffer = self.state, self.state.buffer
        position = buffer.received if buffer.handoff is None else buffer.handoff + buffer.generated
        self._record(error, phase, position)
        if self.progress.device is not None:
            self.progress.device.host.restart()
        if state.answer_complete:
            state.notice("device-failed", f"{error}; the answer was already complete")
            return
        blocked = self._blocked()
        if blocked is not None:
            raise DeviceFailedError(
                f"the device failed ({error}) and the cloud cannot continue the answer ({blocked})",
                cause=error.cause,
            )
        self.error, self.position = error, position
        self.seam_text = "".join(self.cloud.pieces) + "".join(self.progress.decoded)
        if buffer.handoff is None:
            self._hand_over()
        state.notice("device-failed", f"{error}; the cloud continues the answer after its {position} tokens")
        if position >= state.terms.max_tokens:
            state.answer_complete = True
        else:
            self._ask(0.0)
        state.notify()

    def _blocked(self) -> str | None:
        """Why no cloud can continue the answer, or ``None``."""
        if self.state.mode == "device-only":
            return "device-only mode has no cloud to fall back on"
        if self.cloud.client is None:
            return "the session has no cloud"
        if self.cloud.context_full:
            return "the cloud's context window has no room for more of this answer"
        return None

    def _record(self, error: DeviceFailedError, phase: str, position: int) -> None:
        state = self.state
        state.timeline.device_failures.append((state.rel(state.clock.now()), phase, error.cause, position))

    def _hand_over(self) -> None:
        """Hands the buffer over at the end of the received text, for the continuation's tokens."""
        state, buffer = self.state, self.state.buffer
        now = state.clock.now()
        if not buffer.prompt_prefilled:
            buffer.prefill_prompt()
        if buffer.prefilled < buffer.received:
            buffer.prefill_received(buffer.received - buffer.prefilled)
        buffer.take_over()
        self.cloud.cancel(now)
        if state.controller is not None:
            state.controller.set_handoff(now)
            state.controller.set_expected(state.controller.received)

    @property
    def filled(self) -> int:
        """Output positions filled so far: the seam's plus the continuation's."""
        return self.position + len(self.pieces)

    def _ask(self, delay: float) -> None:
        """Asks the cloud for the rest of the answer after the text so far."""
        state = self.state
        rest = state.terms.max_tokens - self.filled
        window = self.cloud.client.context_tokens if self.cloud.client is not None else None
        if window is not None:
            rest = max(1, min(rest, window - self.cloud.prompt_tokens - self.filled))
        prompt = state.prompt + self.seam_text + "".join(self.pieces)
        self.task = self.cloud.stream_for(self, prompt, rest, delay=delay)

    def on_text(self, text: str, at: float) -> None:
        state = self.state
        if state.answer_complete:
            return
        slot = state.buffer.generate()
        self._texts[slot] = text
        self._arrivals[slot] = at
        self.pieces.append(text)
        index = len(state.timeline.cloud_events)
        state.timeline.cloud_events.append(CloudRecord(index=index, text=text, at_s=state.rel(at), kept=True))
        if state.timeline.cloud_first_s is None:
            state.timeline.cloud_first_s = state.rel(at)
        state.notify()

    def on_end(self, reason: str, at: float, *, short: bool) -> None:
        """The continuation ended: the answer is complete (short of ``max_tokens`` when the cloud's context
        window ended it)."""
        state = self.state
        state.timeline.cloud_end = reason
        state.timeline.cloud_end_s = state.rel(at)
        if reason == "length" and self.filled < state.terms.max_tokens:
            state.timeline.cloud_end = "context"
            state.notice(
                "cloud-context",
                f"the cloud's context window ended the answer after {self.filled} tokens",
            )
        state.answer_complete = True
        state.notify()

    def on_failure(self, kind: str, error: CloudError) -> None:
        """The continuation failed: resumed with the text so far, or the request ends naming both causes.

        Raises:
            DeviceFailedError: The continuation cannot be resumed.
        """
        state = self.state
        state.timeline.cloud_end = kind
        state.timeline.cloud_end_s = state.rel(state.clock.now())
        if kind in ("cut", "silent") and self.resumes < MAX_RESUMES:
            delay = RESUME_BACKOFF_S * 2**self.resumes
            self.resumes += 1
            state.notice(
                f"cloud-{kind}",
                f"{error}; resuming the answer with the {self.filled} tokens so far (attempt {self.resumes} "
                f"of {MAX_RESUMES})",
            )
            state.timeline.cloud_resumes.append(
                (state.rel(state.clock.now()), kind, state.terms.max_tokens - self.filled)
            )
            self._ask(delay)
            return
        raise DeviceFailedError(
            f"the device failed ({self.error}) and the cloud cannot continue the answer ({error})",
            cause=self.error.cause if self.error is not None else kind,
        )
