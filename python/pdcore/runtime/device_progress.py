"""The device's part of a streamed request: the prompt's prefill, appending the cloud's text as it arrives,
then the take-over and the device's own decode.

The device prefills the prompt (`Device.prefill_prompt`), then the received text (`Device.append_text`),
and takes over as soon as it has prefilled everything received: the cloud stream is closed and the device
decodes from the end of the received text (`Device.generate`). Each prompt chunk and appended chunk is
measured against the profile (`HandoffEstimator`) and the hand-off estimate revised.

The device serves one answer at a time: the part holds the device's gate (`pdcore.runtime.device_gate`)
from its claim (at the plan, or waited for when the part starts) until its work ends, and interrupts the
device only while it holds it (another answer's prefill is not its to stop).

A `DeviceFailedError` in any phase (``"starting"``, ``"prefilling"``, ``"appending"``, ``"decoding"``)
ends the device's part: it is handed, with the phase, to the request, whose failover continues the answer
from the cloud (`pdcore.runtime.failover`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from pdcore.exceptions import DeviceFailedError
from pdcore.profiles.device import DeviceProfile
from pdcore.runtime.device import Device
from pdcore.runtime.handoff import HandoffEstimator
from pdcore.runtime.planning import BUSY_WAIT
from pdcore.runtime.request_state import RequestState

__all__ = ["DeviceProgress"]


class DeviceProgress:
    """The device's part of one request (module docstring).

    Args:
        state: The request's shared record.
        device: The local model (``None`` in cloud-only mode: the part never starts).
        profile: The device's speed profile (the hand-off estimate's prices), if any.
        prior_ratio: The device's speed relative to its profile, learned from earlier requests.
        prior_spread: The relative spread of the device's calls, learned from earlier requests.
        cloud_pieces: The cloud's text by output position (the cloud stream's, read as it grows).
        revise_handoff: Revises the hand-off estimate after the device's progress.
        prompt_counted: Called with the prompt's length in device tokens once the device has counted it.
        stop_cloud: Called with the clock time of the take-over: the cloud stream is no longer needed.
        failed: Called with the device's failure and the phase it came in (module docstring); it may raise
            (no side can continue the answer), which ends the part with that error.
    """

    def __init__(
        self,
        state: RequestState,
        device: Device | None,
        *,
        profile: DeviceProfile | None,
        prior_ratio: float,
        prior_spread: float = 0.0,
        cloud_pieces: Sequence[str],
        revise_handoff: Callable[[], None],
        prompt_counted: Callable[[int], None],
        stop_cloud: Callable[[float], None],
        failed: Callable[[DeviceFailedError, str], None],
    ) -> None:
        self.state = state
        self.device = device
        self.profile = profile
        self.prior_ratio = prior_ratio
        self.prior_spread = prior_spread
        self._cloud_pieces = cloud_pieces
        self._revise_handoff = revise_handoff
        self._prompt_counted = prompt_counted
        self._stop_cloud = stop_cloud
        self._failed = failed
        self.phase = "starting"
        """What the device is doing: ``"starting"``, ``"prefilling"``, ``"appending"`` or ``"decoding"``."""
        self.decoded: list[str] = []
        """The text of every token decoded, in order (shown or not)."""
        self.text: dict[int, str] = {}
        """Decoded tokens not shown yet, by output position."""
        self.ready: dict[int, float] = {}
        """When each of them was decoded (clock seconds)."""
        self.done = False
        self.prompt_done = 0
        """Prompt tokens prefilled so far."""
        self.inflight_pieces = 0
        """Cloud pieces in the append under way."""
        self.inflight_tokens_left: int | None = None
        """Device tokens of that append not prefilled yet, once its first chunk is reported."""
        self.task: asyncio.Task[None] | None = None
        self.estimator: HandoffEstimator | None = None
        self.prompt_tokens: int | None = None
        """The prompt's length in device tokens, once the device has tokenized it."""
        self.deferred = False
        """The cloud serves the whole answer; the device starts only if the cloud fails."""
        self._failed_once = False
        self._count: asyncio.Future[int | None] | None = None

    @property
    def holding(self) -> bool:
        """Whether this part holds the device."""
        return self.device is not None and self.device.gate.holds(self)

    def claim_now(self) -> bool:
        """Takes the device for this answer if it is free; returns whether the answer holds it."""
        return self.device is not None and self.device.gate.try_claim(self)

    def release(self) -> None:
        """Lets the device go to the next answer (nothing if this part does not hold it)."""
        if self.device is not None:
            self.device.gate.release(self)

    def interrupt(self) -> None:
        """Stops the device's work for this answer: a prefill under way after its chunk (only while this
        part holds the device)."""
        if self.holding and self.task is not None and not self.task.done():
            assert self.device is not None
            self.device.interrupt()

    def start(self) -> None:
        """Starts the device's task."""
        self._count = asyncio.get_running_loop().create_future()
        self.task = asyncio.create_task(self._run())
        self.task.add_done_callback(lambda _: self.state.notify())

    def start_deferred(self) -> None:
        """Starts the device late: the cloud that was to serve the whole answer did not."""
        if self.deferred and self.task is None and self.device is not None:
            self.deferred = False
            self.start()

    def stop(self) -> None:
        """The cloud has sent the whole answer: the device's work is not needed."""
        self.interrupt()
        if self.task is not None:
            self.task.cancel()

    async def counted_prompt(self) -> int | None:
        """The prompt's length in device tokens as the device counts it for this answer, as soon as it has
        tokenized it (before the window check and its prefill); None when the device does not read the
        prompt for this answer (no device, the cloud serves it whole, or the part ended before counting)."""
        if self._count is None:
            return None
        return await asyncio.shield(self._count)

    def _counted(self, tokens: int | None) -> None:
        if self._count is not None and not self._count.done():
            self._count.set_result(tokens)

    def token(self, position: int) -> tuple[str, float]:
        """The decoded token at ``position`` and when it was ready, handed to the display once."""
        return self.text.pop(position), self.ready.pop(position)

    async def _run(self) -> None:
        try:
            await self._claim()
            await self._work()
        except DeviceFailedError as error:
            self._failed_once = True
            self._failed(error, self.phase)
        finally:
            self._counted(None)
            try:
                if self.holding and not self._failed_once:
                    await self._keep()
            finally:
                self.release()

    async def _keep(self) -> None:
        """Records what the device holds in its conversation cache (`Device.keep`) before it lets the
        device go; a device that fails meanwhile keeps nothing (its cache is gone)."""
        assert self.device is not None
        if self.device.conversations is not None:
            with contextlib.suppress(DeviceFailedError):
                await self.device.keep()

    async def _claim(self) -> None:
        """Waits for the device unless this part holds it; the wait goes into the timeline."""
        device, state = self.device, self.state
        assert device is not None
        if self.holding:
            return
        started = state.clock.now()
        await device.gate.claim(self)
        waited = state.clock.now() - started
        state.timeline.device_wait_s = waited
        if state.timeline.plan_reason == BUSY_WAIT:
            state.timeline.plan_reason = f"{BUSY_WAIT} (waited {waited:.3f} s)"

    async def _work(self) -> None:
        device = self.device
        assert device is not None
        state = self.state
        if device.profile is None:
            device.profile = self.profile  # it prices the device's call deadlines
        loop = asyncio.get_running_loop()

        def counted(tokens: int) -> None:  # on the worker thread
            loop.call_soon_threadsafe(self._counted, tokens)

        prompt_tokens = await device.start(state.prompt, counted=counted)
        self.prompt_tokens = prompt_tokens
        self.prompt_done = device.cached_tokens  # the estimate prices only the prompt's uncached rest
        state.timeline.prompt_tokens = prompt_tokens
        state.timeline.device_cached_tokens = device.cached_tokens
        self._prompt_counted(prompt_tokens)
        if state.mode == "pd-device":
            self.estimator = HandoffEstimator(
                self.profile,
                prompt_tokens,
                len(state.prompt),
                prior_ratio=self.prior_ratio,
                prior_spread=self.prior_spread,
                started_at=state.clock.now(),
                prompt_chunk_tokens=device.chunk_tokens,
                append_chunk_tokens=device.append_chunk_tokens,
            )
            state.timeline.prior_speed_ratio = self.prior_ratio
            self._revise_handoff()
        self.phase = "prefilling"
        await device.prefill_prompt(self._prompt_observer)
        state.buffer.prefill_prompt()
        state.timeline.prompt_prefilled_s = state.rel(state.clock.now())
        await self._append_received(device)
        if not state.answer_complete:
            await self._take_over(device)

    def _prompt_observer(self, done: int, took: float) -> None:
        """Feeds each prompt chunk into the estimator and revises the hand-off."""
        if self.state.buffer.prompt_prefilled or self.state.answer_complete:
            return
        if self.estimator is not None:
            self.estimator.observe_prompt(done, done - self.prompt_done, took, at=self.state.clock.now())
        self.prompt_done = done
        self._revise_handoff()

    async def _append_received(self, device: Device) -> None:
        """Prefills the cloud's text as it arrives, until everything received is prefilled."""
        buffer = self.state.buffer
        self.phase = "appending"
        while not self.state.answer_complete:
            todo = buffer.received - buffer.prefilled
            if todo == 0:
                break
            start = buffer.prefilled
            self.inflight_pieces = todo
            self.inflight_tokens_left = None
            appended, _ = await device.append_text(
                list(self._cloud_pieces[start : start + todo]), self._chunk_observer(device.context_tokens)
            )
            if self.estimator is not None:
                self.estimator.count_pieces(todo, appended)
            self.inflight_pieces = 0
            self.inflight_tokens_left = None
            buffer.prefill_received(todo)
            self._revise_handoff()

    def _chunk_observer(self, context: int) -> Callable[[int, int, float], None]:
        """Feeds each appended chunk (starting at ``context``) into the estimator and revises the hand-off."""
        done_before = 0

        def observe(done: int, total: int, took: float) -> None:
            nonlocal done_before
            if self.state.answer_complete or self.state.buffer.handoff is not None:
                return
            if self.estimator is not None:
                self.estimator.observe_append(
                    context + done_before, done - done_before, took, at=self.state.clock.now()
                )
            done_before = done
            self.inflight_tokens_left = total - done
            self._revise_handoff()

        return observe

    async def _take_over(self, device: Device) -> None:
        state = self.state
        self.phase = "decoding"
        now = state.clock.now()
        position = state.buffer.take_over()
        state.timeline.handoff_s = state.rel(now)
        state.timeline.handoff_position = position
        self._stop_cloud(now)
        if state.controller is not None:
            state.controller.set_handoff(now)
            state.controller.set_expected(state.controller.received)
            state.timeline.handoff_estimates.append((state.rel(now), state.rel(now)))
        state.notify()
        left = state.terms.max_tokens - position
        if left > 0:
            async for token in device.generate(left, now=state.clock.now):
                slot = state.buffer.generate()
                self.decoded.append(token.text)
                self.text[slot] = token.text
                self.ready[slot] = token.ready
                state.notify()
        if device.context_tokens >= device.engine.n_ctx:
            n_ctx = device.engine.n_ctx
            state.notice("context-full", f"the device's context window ({n_ctx} tokens) is full")
        self.done = True
        state.notify()
