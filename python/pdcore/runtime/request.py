"""One streamed request: its cloud stream, the device's progress and the display, side by side.

Each part owns its fields (`pdcore.runtime.cloud_stream.CloudStream`,
`pdcore.runtime.device_progress.DeviceProgress`, `pdcore.runtime.display.Display`) and shares only the
request's record (`pdcore.runtime.request_state.RequestState`: the timeline, the token buffer and the speed
controller). `Request` joins them: it tells each part what the others did, and revises the hand-off
estimate, which reads both the cloud's and the device's progress.

Hand-off estimate (`pdcore.runtime.handoff.HandoffEstimator`). It starts from the device profile (prompt
prefill plus the prefill of the ``k + 1`` cloud tokens) and is revised after every prompt chunk and every
appended chunk with the device's measured speed relative to its profile, applied to the work left. When
tokens asked of the cloud are still to come, the device either catches up with what arrived before the
next one is due (then it takes over) or works through the stream, and the estimate is then never before
the last one arrives and is appended in a call of its own (`pdcore.runtime.continuation`). The controller
paces to the estimate plus the guard: two device decode steps and the device's learned spread
(`HandoffEstimator.guard`).

A device failure in any phase hands the rest of the answer to the cloud (`pdcore.runtime.failover.Failover`,
a fourth part beside the three).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator

from pdcore._core import SpeedController
from pdcore.exceptions import CloudUnavailableError, DeviceFailedError
from pdcore.profiles.device import DeviceProfile
from pdcore.runtime.cloud import CloudClient
from pdcore.runtime.cloud_stream import CloudStream
from pdcore.runtime.device import Device
from pdcore.runtime.device_progress import DeviceProgress
from pdcore.runtime.display import PRECISE_WAKE_S, Display, Piece
from pdcore.runtime.failover import Failover
from pdcore.runtime.request_state import RequestState

__all__ = ["Request"]


class Request:
    """One streamed request (module docstring).

    Args:
        state: The request's shared record.
        cloud: The endpoint, if the session has one.
        device: The local model, if the session has one.
        profile: The device's speed profile, if any.
        prior_ratio: The device's speed relative to its profile, learned from earlier requests.
        prior_spread: The relative spread of the device's calls, learned from earlier requests.
        expected_first_s: The cloud's first-token delay expected (given or learned), if known.
    """

    def __init__(
        self,
        state: RequestState,
        *,
        cloud: CloudClient | None,
        device: Device | None,
        profile: DeviceProfile | None,
        prior_ratio: float,
        expected_first_s: float | None,
        prior_spread: float = 0.0,
    ) -> None:
        self.state = state
        self.cloud = CloudStream(
            state,
            cloud,
            expected_first_s=expected_first_s,
            revise_handoff=self.revise_handoff,
            part_ended=self._cloud_part_ended,
            answer_completed=self._answer_completed,
            device_unpriced=device is not None and profile is None,
        )
        self.device = DeviceProgress(
            state,
            device,
            profile=profile,
            prior_ratio=prior_ratio,
            prior_spread=prior_spread,
            cloud_pieces=self.cloud.pieces,
            revise_handoff=self.revise_handoff,
            prompt_counted=self._prompt_counted,
            stop_cloud=self.cloud.cancel,
            failed=self._device_failed,
        )
        self.failover = Failover(state, self.cloud, self.device)
        self.display = Display(state, self.cloud, self.device, self.failover)

    def ask_cloud(self, quota: int, prompt_tokens: int, *, paced: bool) -> None:
        """Sends the cloud request for ``quota`` output positions of a prompt of about ``prompt_tokens``
        device tokens; ``paced``: its tokens are shown through the speed controller."""
        state, terms = self.state, self.state.terms
        self.cloud.quota = quota
        self.cloud.prompt_tokens = prompt_tokens
        state.timeline.cloud_quota = quota
        if paced:
            state.controller = SpeedController(
                min_tpot_s=terms.min_tpot, max_tpot_s=terms.pace_s, expected_tokens=quota
            )
        self.cloud.start(state.prompt, quota)

    def revise_handoff(self) -> None:
        """Revises the hand-off estimate from both sides' progress and paces the controller to it."""
        state, cloud, progress = self.state, self.cloud, self.device
        estimator = progress.estimator
        if state.controller is None or estimator is None or state.buffer.handoff is not None:
            return
        device = progress.device
        assert device is not None
        buffer = state.buffer
        chars = cloud.chars / len(cloud.pieces) if cloud.pieces else None
        if progress.inflight_tokens_left is not None:
            arrived_left = progress.inflight_tokens_left
        else:
            arrived_left = estimator.tokens_for(progress.inflight_pieces, chars)
        arrived_left += estimator.tokens_for(
            buffer.received - buffer.prefilled - progress.inflight_pieces, chars
        )
        tokens_left = arrived_left + estimator.tokens_for(max(cloud.quota - buffer.received, 0), chars)
        context = max(device.context_tokens, device.prompt_tokens)
        now = state.clock.now()
        estimate = estimator.estimate(now, progress.prompt_done, context, tokens_left)
        if estimate is None:
            return
        end = context + tokens_left
        due = cloud.arrivals_due(now)
        step = estimator.append_step(end)
        if due is not None and step is not None:  # `pdcore.runtime.continuation`: next and last arrivals
            caught_up = estimator.estimate(now, progress.prompt_done, context, arrived_left)
            if caught_up is not None and caught_up <= due[0]:
                estimate = caught_up  # the device catches up before more arrives, and takes over
            else:
                estimate = max(estimate, due[1] + step)  # the trickle (`HandoffEstimator.append_step`)
        state.controller.set_handoff(estimate + estimator.guard(context, tokens_left))
        state.timeline.handoff_estimates.append((state.rel(now), state.rel(estimate)))
        cloud.maybe_extend(now, self.display.last_shown, estimator.append_per_token(end) or 0.0)
        state.notify()

    async def pieces(self) -> AsyncGenerator[Piece, None]:
        """The display loop: sleeps until the next position is due and shows it (`Display`).

        Raises:
            DeadlineMissedError: The clock is strict and the runtime fell behind.
            CloudUnavailableError: Cloud-only mode and the cloud could not be reached.
            DeviceFailedError: The device failed and no cloud could continue the answer.
        """
        state, display = self.state, self.display
        clock = state.clock
        while not state.closed:
            state.changed.clear()
            self.raise_failures()
            upcoming = display.next_due()
            if upcoming is None:
                if self.finished():
                    break
                await self._wait_or_unstall()
                continue
            source, due = upcoming
            delay = clock.wall_delay(due)
            if delay > PRECISE_WAKE_S:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(state.changed.wait(), timeout=delay - PRECISE_WAKE_S)
                continue
            if delay > 0.0:
                time.sleep(delay)  # the last stretch on the OS timer (`PRECISE_WAKE_S`)
            clock.check(due)
            record = display.show(source, due)
            if record.text:
                yield Piece(text=record.text, source=source, position=record.position, at=record.shown_s)
        if not state.closed and state.mode == "cloud-only" and self._cloud_gave_nothing():
            raise CloudUnavailableError(state.timeline.notices[-1].message)

    async def _wait_or_unstall(self) -> None:
        """Waits for a change with nothing due; a display run dry before the hand-off waits for the device
        until its gap reaches ``max_tpot`` or its hand-off estimate passes, whichever is later, and then asks
        the cloud for the rest of the answer (`CloudStream.unstall`; `pdcore.runtime.continuation`, the stall
        rule), unless continuations are off (``max_extensions`` 0). A gap the plan itself accepted (the
        estimate beyond ``max_tpot``) is waited out as planned, as long as the device keeps to its
        estimate."""
        state, last = self.state, self.display.last_shown
        if last is None or not self.cloud.can_unstall():
            await state.changed.wait()
            return
        until = last + state.terms.max_tpot
        if state.controller is not None and state.controller.handoff_at is not None:
            until = max(until, state.controller.handoff_at)
        try:
            await asyncio.wait_for(state.changed.wait(), timeout=state.clock.wall_delay(until))
        except asyncio.TimeoutError:
            now = state.clock.now()
            self.cloud.unstall(now, now - last)

    def _cloud_gave_nothing(self) -> bool:
        """A cloud-only answer's cloud failed before its first token (unreachable, refusing, or silent or
        cut before anything arrived and not resumed): there is no answer, which is an error, not an empty
        one."""
        timeline = self.state.timeline
        failed = timeline.cloud_end in ("unavailable", "silent", "cut")
        return failed and self.state.buffer.received == 0 and bool(timeline.notices)

    def finished(self) -> bool:
        """Whether every position of the answer has been shown."""
        buffer = self.state.buffer
        if buffer.displayed < buffer.available:
            return False
        if self.state.answer_complete:
            return True
        if buffer.handoff is not None:
            return self.device.done
        return self.state.mode == "cloud-only" and not self.cloud.open and self.cloud.task is not None

    def raise_failures(self) -> None:
        """Raises what a part's task failed with."""
        for task in (self.cloud.task, self.device.task, self.failover.task):
            if task is not None and task.done() and not task.cancelled():
                error = task.exception()
                if error is not None:
                    raise error

    async def cancel_tasks(self) -> None:
        """Stops both parts' tasks (the request ended or was abandoned) and waits until none runs."""
        self.device.interrupt()
        parts = (self.cloud.task, self.device.task, self.failover.task)
        tasks = [task for task in parts if task is not None and not task.done()]
        for task in tasks:
            if task is not self.device.task or not self.device.done:  # a finished device only records
                task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _device_failed(self, error: DeviceFailedError, phase: str) -> None:
        self.failover.device_failed(error, phase)

    def _prompt_counted(self, tokens: int) -> None:
        self.cloud.prompt_tokens = tokens

    def _cloud_part_ended(self) -> None:
        if self.device.deferred:
            self.device.start_deferred()
        else:
            self.revise_handoff()

    def _answer_completed(self) -> None:
        self.device.stop()
