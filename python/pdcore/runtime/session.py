"""The P/D-Device session: one answer streamed from the cloud and a local model at once.

`Session.stream` runs three asyncio tasks per request and yields the displayed text as `Piece` objects:

- the **cloud task** streams ``k + 1`` tokens from the endpoint (`CloudClient`); each event's text is one
  output position, recorded in the native `TokenBuffer` and pushed into the `SpeedController` with its
  arrival time;
- the **device task** prefills the prompt (`Device.prefill_prompt`), then the received text
  (`Device.append_text`), and takes over as soon as it has prefilled everything received: the cloud
  stream is closed and the device decodes from the end of the received text (`Device.generate`);
- the **display loop** (the generator itself) shows cloud tokens at the controller's due times and device
  tokens as they are decoded (never closer than ``min_tpot``), each position once and in order.

Hand-off estimate (`pdcore.runtime.handoff.HandoffEstimator`). It starts from the device profile (prompt
prefill plus the prefill of the ``k + 1`` cloud tokens) and is revised after every prompt chunk and every
appended chunk with the device's measured speed relative to its profile, applied to the work left. The
prior speed ratio is learned across requests (`Session.speed_ratio`). The controller paces to the
estimate plus a guard of two device decode steps (`HandoffEstimator.guard`).

Choice of ``k``. ``k="auto"`` is `pdcore.optimize.catchup_k` on the profile scaled by the learned speed
ratio, padded by ``k_margin``, for the prompt length estimated from its characters (the cloud request
leaves before the prompt is tokenized; `Session.tokens_per_char` is learned from each prompt). If the
device still falls behind what the buffer can cover, the session sends a continuation request (prompt
plus the text received) for more tokens (`_CloudStream.maybe_extend`), at most ``max_extensions`` times: a
pause in the display is worse than a few extra cloud tokens.

Plans that cannot pay off are not run (``k="auto"``; the rule is ours). Before anything is sent the prompt
is counted with the device's tokenizer (on a sample of it, `TOKENIZE_SAMPLE_CHARS`) and the catch-up is
solved (`pdcore.optimize.solve_catchup`, the one cost model) with the cloud's first-token delay learned
from earlier answers: when the device's own
first token would come first, the device answers alone and the cloud is not asked (plan ``"device-only"``);
when the device cannot catch up within the answer (no fixed point, or ``k`` reaching ``max_tokens``), the
cloud serves the whole answer and the device does not prefill at all unless the cloud fails (plan
``"cloud-only"``). The plan and its reason are in the timeline and the summary.

The cloud's limits are learned (`CloudClient`): its context window caps every request (prompt plus
quota), an answer the server ends at its context (finish reason ``"length"`` short of the quota) is told
apart from the quota being spent, and no continuation is asked for past the window.

Stalls. Each stream has a deadline derived from the plan (`_CloudStream.stall_deadline`, ours): before
its first event, `STALL_FIRST_FACTOR` times the first-token delay expected (learned; the client's read
timeout before anything was learned); after it, `STALL_GAP_FACTOR` times the stream's median gap, at least
`STALL_MIN_S`. No event within it is a stall: a ``cloud-silent`` notice, recorded in the timeline
(``cloud_stalls``). A silent or cut stream is resumed while the device is still behind: a new request with
the prompt and the text so far, for the rest of the quota, at most `MAX_RESUMES` times per answer with a
backoff of `RESUME_BACKOFF_S` doubling each time; each resume is recorded (``cloud_resumes``).

Fallbacks (each leaves one `Notice` in the timeline and calls ``on_notice``; the log gets it only when no
callback does, so it is printed once):

- cloud unreachable or refusing: the device answers alone;
- cloud stream cut or silent: resumed (above); when it cannot be, the tokens received stay and the device
  continues after them;
- the cloud's context window ends its answer: the device continues after what arrived;
- cloud answer complete (finish reason ``"stop"`` within its quota): the device is not needed.

Modes, named as the simulator's policies: ``"pd-device"`` (P/D-Device), ``"device-only"`` and
``"cloud-only"`` (every token shown on arrival), for comparisons on the same machine. The old names
``"pd"``, ``"device"`` and ``"cloud"`` are still accepted for one release (`OLD_MODES`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import math
import time
import warnings
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal

from pdcore._core import CatchUp, SpeedController, TokenBuffer
from pdcore.exceptions import InvalidInputError
from pdcore.optimize.catchup import solve_catchup
from pdcore.profiles.device import DeviceProfile
from pdcore.runtime.clock import RealtimeClock
from pdcore.runtime.cloud import (
    CloudClient,
    CloudContextError,
    CloudError,
    CloudStreamCutError,
    CloudUnavailableError,
)
from pdcore.runtime.device import Device
from pdcore.runtime.handoff import HandoffEstimator
from pdcore.runtime.timeline import CloudRecord, Notice, Timeline, TokenRecord
from pdcore.slo import DEFAULT_MAX_TPOT_S

__all__ = [
    "DEFAULT_K_MARGIN",
    "DEFAULT_MAX_EXTENSIONS",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MAX_TPOT_S",
    "DEFAULT_PACING_MARGIN_S",
    "MAX_RESUMES",
    "MODES",
    "OLD_MODES",
    "PRECISE_WAKE_S",
    "RESUME_BACKOFF_S",
    "STALL_FIRST_FACTOR",
    "STALL_GAP_FACTOR",
    "STALL_MIN_S",
    "TOKENIZE_SAMPLE_CHARS",
    "Mode",
    "Piece",
    "Session",
    "session_mode",
]

logger = logging.getLogger("pdcore.runtime")

Mode = Literal["pd-device", "device-only", "cloud-only"]
MODES: tuple[Mode, ...] = ("pd-device", "device-only", "cloud-only")

OLD_MODES: dict[str, Mode] = {"pd": "pd-device", "device": "device-only", "cloud": "cloud-only"}
"""The modes' names before they took the policies' names; accepted, with a warning, for one release."""


DEFAULT_MAX_TOKENS = 256
"""The longest answer, in output positions."""

DEFAULT_TOKENS_PER_CHAR = 0.25
"""Tokens per character of English text with a BPE vocabulary (about four characters a token), until the
session has tokenized a prompt."""

DEFAULT_K_MARGIN = 0.2
"""How much ``k="auto"`` pads `pdcore.optimize.catchup_k`: 20% more cloud tokens. The catch-up rule
prices the appended tokens with the profile's prefill curve, but a real engine pays more for them (they
attend to the whole prompt, and every call has a fixed cost), so the unpadded ``k`` leaves the device a
little late for the hand-off; a spare token costs the cloud one decode step."""

EXTENSION_LEAD_S = 0.3
"""How long before the buffer could run dry a continuation request is considered (plus twice the cloud's
first-token delay)."""

DEFAULT_MAX_EXTENSIONS = 4
"""Continuation requests per answer when the device turns out slower than the buffer covers. Each one is
sized by the hand-off estimate of its moment, which keeps moving while a slow device is measured; with two
allowed, a device running 1.5x slower than its profile (a cloud stand-in sharing its cores) ran out of them
and stalled 126-173 ms at the hand-off. A continuation is only sent when needed and re-uses the cloud's
cached prefix, so allowing more costs nothing when the device keeps to its profile."""

PRECISE_WAKE_S = 0.002
"""The display loop sleeps on the event loop until this long before a token is due, then the rest with a
blocking timer sleep. asyncio's selector rounds its timeout up to a whole millisecond and the loop wakes
behind whatever callback runs, so a token waited for on the loop alone was shown 1.3 ms late at the median
and up to 4.3 ms late while the device prefilled on the same core; with the last 2 ms on the OS timer,
0.08 ms at the median and 2.0 ms at most (an 807-token prefill, then 150 decoded tokens, on a 2-core x86
machine, the model and the loop on one core). The price: the loop's other work (reading the cloud's
events) waits up to 2 ms once per displayed token, far below a display gap."""

TOKENIZE_SAMPLE_CHARS = 1024
"""Characters of the prompt the device tokenizes before the cloud request leaves (module docstring)."""

STALL_MIN_S = 0.25
"""The shortest silence of a started stream counted as a stall: several display gaps at the 50 ms default
objective, well above the 10-30 ms between a healthy stream's events."""

STALL_GAP_FACTOR = 4.0
"""A started stream stalls when silent for this many of its median gaps (at least `STALL_MIN_S`)."""

STALL_FIRST_FACTOR = 4.0
"""A stream stalls before its first event after this many first-token delays (as learned)."""

MAX_RESUMES = 2
"""Requests that resume a silent or cut stream, per answer."""

RESUME_BACKOFF_S = 0.05
"""The wait before the first resume; it doubles for the next."""

DEFAULT_PACING_MARGIN_S = 0.005
"""How much below ``max_tpot`` the controller paces, so that the operating system's timer latency (about a
millisecond, more on a loaded machine) does not push a displayed gap above ``max_tpot``."""


@dataclass(frozen=True, slots=True)
class Piece:
    """A piece of displayed text.

    Attributes:
        text: The text.
        source: ``"cloud"`` or ``"device"``.
        position: Its output position, from 0.
        at: When it was shown, seconds from the request's start.
    """

    text: str
    source: str
    position: int
    at: float


class _RequestState:
    """The state of one streamed request, shared by its cloud, device and display steps below."""

    def __init__(self, session: Session, prompt: str, mode: Mode) -> None:
        self.session = session
        self.clock = session.clock
        self.mode = mode
        self.prompt = prompt
        self.t0 = self.clock.now()
        self.timeline = Timeline(
            mode=mode, prompt=prompt, started_at=self.t0, max_tpot=session.max_tpot, min_tpot=session.min_tpot
        )
        self.changed = asyncio.Event()
        self.buffer = TokenBuffer()
        self.controller: SpeedController | None = None
        self.estimator: HandoffEstimator | None = None
        self.quota = 0
        self.cloud_text: list[str] = []
        self.cloud_chars = 0
        """Characters of ``cloud_text`` (the hand-off estimate's characters per piece, without a re-count)."""
        self.cloud_arrival: list[float] = []
        self.device_text: dict[int, str] = {}
        self.device_ready: dict[int, float] = {}
        self.last_shown: float | None = None
        self.answer_complete = False
        self.cloud_open = False
        self.device_done = False
        self.cloud_idle = False
        self.prompt_done = 0
        self.inflight_pieces = 0
        self.inflight_tokens_left: int | None = None
        self.cloud_task: asyncio.Task[None] | None = None
        self.device_task: asyncio.Task[None] | None = None
        self.prompt_token_count: int | None = None
        """The prompt's length in device tokens, once the device has tokenized it."""
        self.plan: Mode = mode
        """What this request runs: the mode, or the side a P/D-Device plan was reduced to (``k="auto"``)."""
        self.device_deferred = False
        """The cloud serves the whole answer; the device starts only if the cloud fails."""
        self.context_full = False
        """The cloud's context window has no room for more of this answer."""
        self.resumes = 0

    def rel(self, at: float) -> float:
        return at - self.t0

    def notify(self) -> None:
        self.changed.set()

    def notice(self, kind: str, message: str) -> None:
        notice = Notice(at_s=self.rel(self.clock.now()), kind=kind, message=message)
        self.timeline.notices.append(notice)
        if self.session.on_notice is not None:
            logger.debug("%s: %s", kind, message)
            self.session.on_notice(notice)
        else:
            logger.warning("%s: %s", kind, message)


class _CloudStream(_RequestState):
    """The cloud's side of a request: its stream, its end or failure, continuation requests, and the
    hand-off estimate that both the cloud's and the device's progress revise."""

    def revise_handoff(self) -> None:
        if self.controller is None or self.estimator is None or self.buffer.handoff is not None:
            return
        device = self.session.device
        assert device is not None
        outside = max(self.quota, self.buffer.received) - self.buffer.prefilled - self.inflight_pieces
        chars = self.cloud_chars / len(self.cloud_text) if self.cloud_text else None
        if self.inflight_tokens_left is not None:
            tokens_left = self.inflight_tokens_left
        else:
            tokens_left = self.estimator.tokens_for(self.inflight_pieces, chars)
        tokens_left += self.estimator.tokens_for(outside, chars)
        context = max(device.context_tokens, device.prompt_tokens)
        now = self.clock.now()
        estimate = self.estimator.estimate(now, self.prompt_done, context, tokens_left)
        if estimate is None:
            return
        self.controller.set_handoff(estimate + self.estimator.guard(context, tokens_left))
        self.timeline.handoff_estimates.append((self.rel(now), self.rel(estimate)))
        self.maybe_extend(now)
        self.notify()

    def maybe_extend(self, now: float) -> None:
        """Asks the cloud for more tokens when the device will be later than the buffer can cover.

        Once the cloud has sent its quota, the undisplayed tokens last at most until ``now`` (or the last
        display) plus one paced gap each. When that is less than the lead time away (`EXTENSION_LEAD_S`
        plus twice the cloud's first-token delay: decide late, with the best estimate, but early enough
        for new tokens to arrive) and the hand-off estimate lies more than one gap beyond it, the session
        sends the prompt and the text received so far as a continuation request for enough tokens to
        cover the difference (padded by ``k_margin``).
        """
        session = self.session
        received = self.buffer.received
        estimate = self.controller.handoff_at if self.controller is not None else None
        if not (
            estimate is not None
            and self.cloud_idle
            and self.mode == "pd-device"
            and not self.answer_complete
            and self.buffer.handoff is None
            and len(self.timeline.cloud_extensions) < session.max_extensions
            and received < session.max_tokens
            and not self.context_full
        ):
            return
        pace = session.pace_s
        start = max(now, self.last_shown if self.last_shown is not None else now)
        covered = start + (received - self.buffer.displayed) * pace
        first_token = (self.timeline.cloud_first_s or 0.0) - (self.timeline.cloud_sent_s or 0.0)
        if covered - now > EXTENSION_LEAD_S + 2.0 * first_token or estimate <= covered + pace:
            return
        extra = math.ceil((estimate - covered) / pace * (1.0 + session.k_margin)) + 1
        extra = min(extra, session.max_tokens - received, self.context_room())
        if extra < 1:
            self.cloud_context_full()
            return
        self.quota = received + extra
        self.timeline.cloud_quota = self.quota
        self.timeline.cloud_extensions.append((self.rel(now), extra))
        if self.controller is not None:
            self.controller.set_expected(self.quota)
        self.start_cloud(self.prompt + "".join(self.cloud_text), extra)

    def context_room(self) -> int:
        """Tokens the cloud's context window leaves for more of this answer (large when unknown)."""
        cloud = self.session.cloud
        window = cloud.context_tokens if cloud is not None else None
        if window is None:
            return 1 << 30
        prompt = (
            self.prompt_token_count if self.prompt_token_count is not None else self.estimated_prompt_tokens()
        )
        return window - prompt - self.buffer.received

    def estimated_prompt_tokens(self) -> int:
        return max(1, round(len(self.prompt) * self.session.tokens_per_char))

    def cloud_context_full(self) -> None:
        if not self.context_full:
            self.context_full = True
            window = self.session.cloud.context_tokens if self.session.cloud is not None else None
            self.notice(
                "cloud-context",
                f"the cloud's context window ({window} tokens) has no room for more of this answer after "
                f"{self.buffer.received} tokens; the device continues from there",
            )

    def stall_deadline(self, first: bool) -> float:
        """Seconds of silence after which the stream counts as stalled (module docstring)."""
        session = self.session
        if first:
            expected = session.first_token_s or session.cloud_ttft_s
            cloud = session.cloud
            fallback = cloud.read_timeout if cloud is not None else 30.0
            return max(STALL_FIRST_FACTOR * expected, 1.0) if expected else fallback
        arrivals = self.cloud_arrival[-17:]
        gaps = sorted(b - a for a, b in itertools.pairwise(arrivals))
        median = gaps[len(gaps) // 2] if gaps else session.pace_s
        return max(STALL_GAP_FACTOR * median, STALL_MIN_S)

    def start_cloud(self, prompt: str, max_tokens: int, *, delay: float = 0.0) -> None:
        self.cloud_open = True
        self.cloud_idle = False
        self.cloud_task = asyncio.create_task(self.run_cloud(prompt, max_tokens, delay))
        self.cloud_task.add_done_callback(lambda _: self.notify())

    async def run_cloud(self, prompt: str, max_tokens: int, delay: float = 0.0) -> None:
        cloud = self.session.cloud
        assert cloud is not None
        if delay > 0:
            await asyncio.sleep(delay)
        sent = self.clock.now()
        if self.timeline.cloud_sent_s is None:
            self.timeline.cloud_sent_s = self.rel(sent)
        received = 0
        last = sent
        failure: tuple[str, CloudError] | None = None
        stream = cloud.stream(prompt, max_tokens=max_tokens, now=self.clock.now)
        try:
            while True:
                deadline = self.stall_deadline(first=received == 0)
                try:
                    event = await asyncio.wait_for(anext(stream), timeout=deadline)
                except StopAsyncIteration:
                    break
                except asyncio.TimeoutError:
                    silent = self.clock.now() - last
                    self.timeline.cloud_stalls.append((self.rel(last), silent, "silent"))
                    failure = (
                        "silent",
                        CloudStreamCutError(
                            f"cloud stream from {cloud.endpoint} silent for {silent * 1e3:.0f} ms "
                            f"(deadline {deadline * 1e3:.0f} ms) after {received} events"
                        ),
                    )
                    break
                last = event.at
                if event.text:
                    received += 1
                    self.on_cloud_text(event.text, event.at)
                if event.finish_reason is not None:
                    self.on_cloud_end(event.finish_reason, event.at, short=received < max_tokens)
        except CloudContextError as exc:
            failure = ("context", exc)
        except CloudUnavailableError as exc:
            failure = ("unavailable", exc)
        except CloudStreamCutError as exc:
            self.timeline.cloud_stalls.append((self.rel(last), self.clock.now() - last, "cut"))
            failure = ("cut", exc)
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()
            self.cloud_open = False
            self.notify()
        if failure is not None:
            self.on_cloud_failure(*failure)

    def can_resume(self) -> bool:
        """Whether a silent or cut stream is asked again (module docstring)."""
        return (
            self.mode in ("pd-device", "cloud-only")
            and self.buffer.handoff is None
            and not self.answer_complete
            and self.buffer.stream == "open"
            and self.buffer.received < self.quota
            and self.resumes < MAX_RESUMES
            and not self.context_full
        )

    def resume(self, kind: str) -> None:
        """Asks the cloud again for the rest of the quota, carrying the text so far."""
        delay = RESUME_BACKOFF_S * 2**self.resumes
        self.resumes += 1
        rest = min(self.quota - self.buffer.received, max(1, self.context_room()))
        self.timeline.cloud_resumes.append((self.rel(self.clock.now()), kind, rest))
        self.start_cloud(self.prompt + "".join(self.cloud_text), rest, delay=delay)

    def on_cloud_text(self, text: str, at: float) -> None:
        index = len(self.timeline.cloud_events)
        position = None
        if self.buffer.stream == "open" and self.buffer.handoff is None:
            position = self.buffer.receive_cloud()
        kept = position is not None
        self.timeline.cloud_events.append(CloudRecord(index=index, text=text, at_s=self.rel(at), kept=kept))
        if not kept:
            return
        if self.timeline.cloud_first_s is None:
            self.timeline.cloud_first_s = self.rel(at)
        self.cloud_text.append(text)
        self.cloud_chars += len(text)
        self.cloud_arrival.append(at)
        if self.controller is not None:
            self.controller.push(at)
        self.notify()

    def on_cloud_end(self, reason: str, at: float, *, short: bool = False) -> None:
        """The stream ended with a finish reason; ``short``: fewer tokens than asked for."""
        self.timeline.cloud_end = reason
        self.timeline.cloud_end_s = self.rel(at)
        if self.buffer.handoff is not None:
            return
        if reason == "length" and short and self.buffer.received < self.session.max_tokens:
            # the server's context window ended the answer, not our quota
            self.timeline.cloud_end = "context"
            self.cloud_context_full()
        self.quota = self.buffer.received
        if self.controller is not None:
            self.controller.set_expected(self.buffer.received)
        complete = reason == "stop" or self.buffer.received >= self.session.max_tokens
        if complete or (self.mode == "cloud-only" and not self.context_full):
            if self.buffer.stream == "open":
                self.buffer.cut_cloud()
            self.answer_complete = True
            if self.controller is not None:
                self.controller.set_handoff(at)
            if self.device_task is not None:
                self.device_task.cancel()
            if self.session.device is not None:
                self.session.device.interrupt()
        elif self.context_full:
            self.end_cloud_part()
        else:
            # the quota is used up: the buffer stays open for an extension (see `maybe_extend`)
            self.cloud_idle = True
            self.revise_handoff()
        self.notify()

    def end_cloud_part(self) -> None:
        """The cloud sends nothing more for this answer: the device continues after what arrived (or, in
        cloud-only mode, the answer ends)."""
        received = self.buffer.received
        if self.buffer.stream == "open":
            self.buffer.cut_cloud()
        self.quota = received
        if self.controller is not None:
            self.controller.set_expected(received)
        if self.mode == "cloud-only":
            self.answer_complete = True
        elif self.device_deferred:
            self.start_deferred_device()
        else:
            self.revise_handoff()

    def on_cloud_failure(self, kind: str, exc: CloudError) -> None:
        now = self.clock.now()
        self.timeline.cloud_end = kind
        self.timeline.cloud_end_s = self.rel(now)
        received = self.buffer.received
        if kind in ("cut", "silent") and self.can_resume():
            self.notice(
                f"cloud-{kind}",
                f"{exc}; resuming with the {received} tokens received (attempt {self.resumes + 1} of "
                f"{MAX_RESUMES})",
            )
            self.resume(kind)
            self.notify()
            return
        if self.mode == "cloud-only":
            what = "the answer ends here (cloud-only mode has no device to fall back on)"
        elif received == 0:
            what = "answering on the device alone"
        else:
            what = f"the device continues after the {received} tokens received"
        self.notice(f"cloud-{kind}", f"{exc}; {what}")
        if self.buffer.handoff is None:
            self.end_cloud_part()
        self.notify()

    def start_deferred_device(self) -> None:
        """Overridden by `_DeviceProgress`: the device's task, started late."""


class _DeviceProgress(_CloudStream):
    """The device's side of a request: the prompt's prefill, appending the cloud's text as it arrives,
    then the take-over and the device's own decode."""

    async def run_device(self) -> None:
        session = self.session
        device = session.device
        assert device is not None
        prompt_tokens = await device.start(self.prompt)
        self.prompt_token_count = prompt_tokens
        session.tokens_per_char = prompt_tokens / max(len(self.prompt), 1)
        self.timeline.prompt_tokens = prompt_tokens
        if self.mode == "pd-device":
            self.estimator = HandoffEstimator(
                session.profile,
                prompt_tokens,
                len(self.prompt),
                prior_ratio=session.speed_ratio,
                started_at=self.clock.now(),
                prompt_chunk_tokens=device.chunk_tokens,
                append_chunk_tokens=device.append_chunk_tokens,
            )
            self.timeline.prior_speed_ratio = session.speed_ratio
            self.revise_handoff()

        def progress(done: int, took: float) -> None:
            if self.buffer.prompt_prefilled or self.answer_complete:
                return
            if self.estimator is not None:
                self.estimator.observe_prompt(done, done - self.prompt_done, took, at=self.clock.now())
            self.prompt_done = done
            self.revise_handoff()

        await device.prefill_prompt(progress)
        self.buffer.prefill_prompt()
        self.timeline.prompt_prefilled_s = self.rel(self.clock.now())
        while not self.answer_complete:
            todo = self.buffer.received - self.buffer.prefilled
            if todo == 0:
                break
            start = self.buffer.prefilled
            self.inflight_pieces = todo
            self.inflight_tokens_left = None
            appended, _ = await device.append_text(
                self.cloud_text[start : start + todo], self._chunk_observer(device.context_tokens)
            )
            if self.estimator is not None:
                self.estimator.count_pieces(todo, appended)
            self.inflight_pieces = 0
            self.inflight_tokens_left = None
            self.buffer.prefill_received(todo)
            self.revise_handoff()
        if self.answer_complete:
            return
        await self.take_over(device)

    def start_deferred_device(self) -> None:
        if self.device_deferred and self.device_task is None and self.session.device is not None:
            self.device_deferred = False
            self.device_task = asyncio.create_task(self.run_device())
            self.device_task.add_done_callback(lambda _: self.notify())

    def _chunk_observer(self, context: int) -> Callable[[int, int, float], None]:
        """Feeds each appended chunk (starting at ``context``) into the estimator and revises the hand-off."""
        done_before = 0

        def observe(done: int, total: int, took: float) -> None:
            nonlocal done_before
            if self.answer_complete or self.buffer.handoff is not None:
                return
            if self.estimator is not None:
                self.estimator.observe_append(
                    context + done_before, done - done_before, took, at=self.clock.now()
                )
            done_before = done
            self.inflight_tokens_left = total - done
            self.revise_handoff()

        return observe

    async def take_over(self, device: Device) -> None:
        now = self.clock.now()
        position = self.buffer.take_over()
        self.timeline.handoff_s = self.rel(now)
        self.timeline.handoff_position = position
        if self.cloud_task is not None and self.cloud_open:
            self.cloud_task.cancel()
            self.timeline.cloud_end = "cancelled"
            self.timeline.cloud_end_s = self.rel(now)
        if self.controller is not None:
            self.controller.set_handoff(now)
            self.controller.set_expected(self.controller.received)
            self.timeline.handoff_estimates.append((self.rel(now), self.rel(now)))
        self.notify()
        left = self.session.max_tokens - position
        if left > 0:
            async for token in device.generate(left, now=self.clock.now):
                slot = self.buffer.generate()
                self.device_text[slot] = token.text
                self.device_ready[slot] = token.ready
                self.notify()
        if device.context_tokens >= device.engine.n_ctx:
            self.notice("context-full", f"the device's context window ({device.engine.n_ctx} tokens) is full")
        self.device_done = True
        self.notify()


class _Request(_DeviceProgress):
    """One streamed request: which token is shown next and when, over its cloud and device sides."""

    def next_display(self) -> tuple[str, float] | None:
        """The source and due time of the next position, or ``None`` when nothing can be shown yet."""
        position = self.buffer.displayed
        if position >= self.buffer.available:
            return None
        handoff = self.buffer.handoff
        if handoff is None or position < handoff:
            if self.controller is None:
                return "cloud", self.cloud_arrival[position]
            due = self.controller.next_due()
            assert due is not None
            return "cloud", due
        ready = self.device_ready[position]
        if self.last_shown is None:
            return "device", ready
        return "device", max(ready, self.last_shown + self.session.min_tpot)

    def finished(self) -> bool:
        if self.buffer.displayed < self.buffer.available:
            return False
        if self.answer_complete:
            return True
        if self.buffer.handoff is not None:
            return self.device_done
        return self.mode == "cloud-only" and not self.cloud_open and self.cloud_task is not None

    def show(self, source: str, due: float) -> TokenRecord:
        now = max(self.clock.now(), due)
        if source == "cloud" and self.controller is not None:
            now = self.controller.mark_shown(now)
        position, actual = self.buffer.display()
        if actual != source:
            raise AssertionError(f"position {position}: expected a {source} token, the buffer has {actual}")
        if source == "cloud":
            text, available = self.cloud_text[position], self.cloud_arrival[position]
        else:
            text, available = self.device_text.pop(position), self.device_ready.pop(position)
        self.last_shown = now
        record = TokenRecord(
            position=position,
            text=text,
            source=source,
            available_s=self.rel(available),
            due_s=self.rel(due),
            shown_s=self.rel(now),
        )
        self.timeline.tokens.append(record)
        self.timeline.finished_s = record.shown_s
        if source == "cloud":
            self.maybe_extend(now)
        return record

    def raise_failures(self) -> None:
        for task in (self.cloud_task, self.device_task):
            if task is not None and task.done() and not task.cancelled():
                error = task.exception()
                if error is not None:
                    raise error

    async def cancel_tasks(self) -> None:
        if self.session.device is not None and self.device_task is not None and not self.device_task.done():
            self.session.device.interrupt()
        tasks = [task for task in (self.cloud_task, self.device_task) if task is not None and not task.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def session_mode(mode: str) -> Mode:
    """The mode named by ``mode``; an old name (`OLD_MODES`) gives its new one, with a DeprecationWarning.

    Raises:
        InvalidInputError: ``mode`` names no mode.
    """
    if mode in OLD_MODES:
        new = OLD_MODES[mode]
        warnings.warn(
            f"mode {mode!r} is now called {new!r}; the old name will be removed in the next release",
            DeprecationWarning,
            stacklevel=3,
        )
        return new
    for known in MODES:
        if mode == known:
            return known
    raise InvalidInputError(f"mode = {mode!r}; fix: use one of {', '.join(MODES)}")


class Session:
    """Streams answers with P/D-Device (or one side alone, for comparisons).

    Args:
        cloud: The cloud endpoint (modes ``"pd-device"`` and ``"cloud-only"``).
        device: The local model (modes ``"pd-device"`` and ``"device-only"``).
        profile: The device's speed profile: the first hand-off estimate and ``k="auto"``.
        k: Cloud decode tokens after the first, or ``"auto"`` for `pdcore.optimize.catchup_k`.
        max_tpot: The largest display gap aimed for (the TPOT SLO), seconds.
        min_tpot: The smallest display gap, seconds.
        max_tokens: The longest answer in output positions.
        k_margin: ``k="auto"`` asks for ``ceil(catchup_k * (1 + k_margin))`` tokens (see
            `DEFAULT_K_MARGIN`); extensions are padded by the same fraction.
        max_extensions: Continuation requests allowed per answer when the device falls behind the
            buffer (0 disables them).
        pacing_margin_s: The controller paces at ``max_tpot - pacing_margin_s`` (see
            `DEFAULT_PACING_MARGIN_S`); 0 paces at ``max_tpot`` exactly.
        mode: ``"pd-device"``, ``"device-only"`` or ``"cloud-only"`` (or an old name of `OLD_MODES`).
        clock: The real-time clock (a fresh non-strict one by default).
        first_token_s: The expected arrival of the cloud's first token, for ``k="auto"``; 0 (the safe
            side: it can only make ``k`` larger) when unknown.
        cloud_tpot_s: The cloud's expected time between streamed tokens, for ``k="auto"``.
        on_notice: Called with each `Notice` as it happens (fallbacks, warnings).
        learn_speed: Learn the device's speed relative to its profile from each request
            (`speed_ratio`) and use it for the next.
        reduce_plans: With ``k="auto"``, serve a request from one side when P/D-Device cannot pay off
            (module docstring); False always splits (``pdcore validate`` compares the split itself).

    Raises:
        InvalidInputError: A setting is out of range, or the mode lacks the cloud or device it needs.

    Example:
        >>> async def answer(session: Session) -> str:  # doctest: +SKIP
        ...     return "".join([piece.text async for piece in session.stream(chatml("Hi"))])
    """

    def __init__(
        self,
        *,
        cloud: CloudClient | None = None,
        device: Device | None = None,
        profile: DeviceProfile | None = None,
        k: int | Literal["auto"] = "auto",
        max_tpot: float = DEFAULT_MAX_TPOT_S,
        min_tpot: float = 0.0,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        pacing_margin_s: float = DEFAULT_PACING_MARGIN_S,
        k_margin: float = DEFAULT_K_MARGIN,
        max_extensions: int = DEFAULT_MAX_EXTENSIONS,
        mode: Mode | str = "pd-device",
        clock: RealtimeClock | None = None,
        first_token_s: float | None = None,
        cloud_tpot_s: float = 0.0,
        on_notice: Callable[[Notice], None] | None = None,
        learn_speed: bool = True,
        reduce_plans: bool = True,
    ) -> None:
        mode = session_mode(mode)
        if mode in ("pd-device", "cloud-only") and cloud is None:
            raise InvalidInputError(f"mode {mode!r} needs a cloud; fix: pass cloud=CloudClient(url)")
        if mode in ("pd-device", "device-only") and device is None:
            raise InvalidInputError(f"mode {mode!r} needs a device; fix: pass device=Device.llama(path)")
        if not (isinstance(min_tpot, (int, float)) and math.isfinite(min_tpot) and min_tpot >= 0):
            raise InvalidInputError(f"min_tpot = {min_tpot!r}; pass seconds >= 0")
        if not (isinstance(max_tpot, (int, float)) and math.isfinite(max_tpot) and max_tpot > min_tpot):
            raise InvalidInputError(f"max_tpot = {max_tpot!r}; pass seconds above min_tpot = {min_tpot!r}")
        if not (
            isinstance(pacing_margin_s, (int, float))
            and math.isfinite(pacing_margin_s)
            and 0 <= pacing_margin_s < max_tpot - min_tpot
        ):
            raise InvalidInputError(
                f"pacing_margin_s = {pacing_margin_s!r}; pass seconds >= 0 and below max_tpot - min_tpot"
            )
        if not (isinstance(k_margin, (int, float)) and math.isfinite(k_margin) and k_margin >= 0):
            raise InvalidInputError(f"k_margin = {k_margin!r}; pass a fraction >= 0, e.g. 0.2")
        if isinstance(max_extensions, bool) or not isinstance(max_extensions, int) or max_extensions < 0:
            raise InvalidInputError(f"max_extensions = {max_extensions!r}; pass a whole number, 0 or more")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise InvalidInputError(f"max_tokens = {max_tokens!r}; pass a whole number, at least 1")
        if k == "auto":
            if mode == "pd-device" and profile is None:
                raise InvalidInputError(
                    "k='auto' needs the device profile; fix: pass profile=... (e.g. from "
                    "`pdcore profile-device`) or a fixed k"
                )
        elif isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise InvalidInputError(f"k = {k!r}; pass a whole number of tokens >= 0 or 'auto'")
        self.cloud = cloud
        self.device = device
        self.profile = profile
        self.k = k
        self.max_tpot = float(max_tpot)
        self.min_tpot = float(min_tpot)
        self.max_tokens = max_tokens
        self.pacing_margin_s = float(pacing_margin_s)
        self.k_margin = float(k_margin)
        self.max_extensions = max_extensions
        self.mode: Mode = mode
        self.clock = clock if clock is not None else RealtimeClock()
        self.first_token_s = first_token_s
        self.cloud_tpot_s = cloud_tpot_s
        self.on_notice = on_notice
        self.learn_speed = learn_speed
        self.reduce_plans = bool(reduce_plans)
        self.tokens_per_char = DEFAULT_TOKENS_PER_CHAR
        """Device tokens per prompt character, learned from the latest prompt (plans ``k`` before the
        prompt is tokenized)."""
        self.speed_ratio = 1.0
        """The device's time for its work over the profile's prediction, learned from past requests
        (an average of the latest two); it scales the profile for ``k="auto"`` and seeds the hand-off
        estimate."""
        self.timeline: Timeline | None = None
        """The record of the latest request (filled in while it streams)."""
        self.cloud_ttft_s: float | None = None
        """The cloud's first-token delay learned from earlier answers (an average of the latest two):
        the plan's first-token estimate when ``first_token_s`` is not given, and the stall deadline of a
        stream's first event."""
        self._lock = asyncio.Lock()
        self._scaled: tuple[float, DeviceProfile] | None = None

    @property
    def pace_s(self) -> float:
        """The largest gap the controller schedules: ``max_tpot - pacing_margin_s``."""
        return self.max_tpot - self.pacing_margin_s

    def resolve_k(self, prompt_tokens: int) -> int:
        """The ``k`` used for a prompt of ``prompt_tokens`` device tokens: as given, or the catch-up
        rule on the profile scaled by the learned speed ratio, padded by ``k_margin``."""
        if self.k != "auto":
            return self.k
        return self._padded(self._catchup(prompt_tokens))

    def _padded(self, solution: CatchUp) -> int:
        return math.ceil(solution.k * (1.0 + self.k_margin))

    async def complete(self, prompt: str) -> Timeline:
        """Streams ``prompt`` to the end and returns its timeline."""
        async for _ in self.stream(prompt):
            pass
        assert self.timeline is not None
        return self.timeline

    async def stream(self, prompt: str) -> AsyncIterator[Piece]:
        """Streams the answer to ``prompt`` (the full prompt text, e.g. `chatml` of a user turn).

        Yields:
            The displayed pieces in order; `timeline` holds the full record.

        Raises:
            DeadlineMissedError: The clock is strict and the runtime fell behind.
            CloudError: Cloud-only mode and the cloud failed.
            InvalidInputError: The prompt does not fit the device's context window.
        """
        async with self._lock:
            request = _Request(self, prompt, self.mode)
            self.timeline = request.timeline
            try:
                self._start(request)
                async for piece in self._display(request):
                    yield piece
            finally:
                await request.cancel_tasks()
                self._learn(request)

    def _learn(self, request: _Request) -> None:
        timeline = request.timeline
        if timeline.cloud_first_s is not None and timeline.cloud_sent_s is not None:
            ttft = timeline.cloud_first_s - timeline.cloud_sent_s
            self.cloud_ttft_s = ttft if self.cloud_ttft_s is None else 0.5 * (self.cloud_ttft_s + ttft)
        estimator = request.estimator
        if estimator is None or estimator.predicted <= 0.0:
            return
        measured = estimator.actual_s / estimator.predicted
        request.timeline.device_speed_ratio = measured
        if self.learn_speed and self.profile is not None and estimator.predicted >= estimator.prior_weight:
            self.speed_ratio = 0.5 * (self.speed_ratio + measured)

    def _start(self, request: _Request) -> None:
        timeline = request.timeline
        if self.mode == "cloud-only":
            request.quota = self.max_tokens
            timeline.cloud_quota = request.quota
            request.start_cloud(request.prompt, request.quota)
            return
        if self.mode == "pd-device":
            self._start_pd(request)
        else:
            request.buffer.cut_cloud()
        if not request.device_deferred:
            request.device_task = asyncio.create_task(request.run_device())
            request.device_task.add_done_callback(lambda _: request.notify())

    def _start_pd(self, request: _Request) -> None:
        """Plans the request (module docstring) and sends the cloud request, unless the device alone is
        faster."""
        device = self.device
        assert device is not None
        timeline = request.timeline
        # The cloud request leaves before the prompt is tokenized whole (1,840 tokens took 4-8 ms on the
        # 2-core development machine, all of it added to the first token): the plan counts the prompt
        # at the tokens per character of its first `TOKENIZE_SAMPLE_CHARS` characters, tokenized by the
        # device on this thread while its worker is idle (about half a millisecond); the device tokenizes
        # it whole right after.
        sample = request.prompt[:TOKENIZE_SAMPLE_CHARS]
        self.tokens_per_char = len(device.tokenize_idle(sample)) / max(len(sample), 1)
        plan, reason, k = self.plan_request(request.estimated_prompt_tokens())
        timeline.plan = plan
        timeline.plan_reason = reason
        request.plan = plan
        if plan == "device-only":
            request.buffer.cut_cloud()
            request.notice("plan-device", reason)
            return
        if plan == "cloud-only":
            request.device_deferred = True
            request.notice("plan-cloud", reason)
        self._start_cloud(request, k, paced=plan == "pd-device")

    def plan_request(self, prompt_tokens: int) -> tuple[Mode, str, int]:
        """The plan for a prompt of ``prompt_tokens`` device tokens: ``(plan, reason, k)`` (module
        docstring)."""
        context = self.cloud.context_tokens if self.cloud is not None else None
        room = None if context is None else context - prompt_tokens
        solution = None if self.k != "auto" else self._catchup(prompt_tokens)  # solved once per request
        k = self.k if self.k != "auto" else self._padded(solution) if solution is not None else 0
        if solution is None or not self.reduce_plans:
            how = "as given" if solution is None else "from the catch-up rule"
            return "pd-device", f"k = {k} {how}", k if room is None else max(0, min(k, room - 1))
        first = self.expected_first_token_s()
        if solution.device_alone:
            return (
                "device-only",
                f"the device's own first token ({solution.device_ready_s * 1e3:.0f} ms) comes before the "
                f"cloud's ({first * 1e3:.0f} ms): the device answers alone and the cloud is not asked",
                0,
            )
        if not solution.converged or k + 1 >= self.max_tokens:
            why = "never catches up" if not solution.converged else f"needs k = {k} of {self.max_tokens}"
            return (
                "cloud-only",
                f"the device {why} on a {prompt_tokens}-token prompt: the cloud serves the whole answer and "
                "the device does not prefill unless the cloud fails",
                self.max_tokens - 1 if room is None else max(0, min(self.max_tokens, room) - 1),
            )
        if room is not None and k + 1 > room:
            k = max(0, room - 1)
        return "pd-device", f"k = {k} from the catch-up rule", k

    def expected_first_token_s(self) -> float:
        """The cloud's first-token delay the plan assumes: given, else learned, else 0 (the safe side)."""
        if self.first_token_s is not None:
            return self.first_token_s
        return self.cloud_ttft_s or 0.0

    def _catchup(self, prompt_tokens: int) -> CatchUp:
        assert self.profile is not None
        profile = self.profile
        if self.speed_ratio != 1.0:
            # the scaled profile (and its cost model) is built once per learned ratio, not per request
            scaled = self._scaled
            if scaled is None or scaled[0] != self.speed_ratio:
                scaled = self._scaled = (
                    self.speed_ratio,
                    dataclasses.replace(
                        profile, prefill_seconds=tuple(v * self.speed_ratio for v in profile.prefill_seconds)
                    ),
                )
            profile = scaled[1]
        return solve_catchup(
            prompt_tokens,
            device=profile,
            first_token_s=self.expected_first_token_s(),
            max_tpot=self.pace_s,
            cloud_tpot_s=self.cloud_tpot_s,
            max_k=self.max_tokens,
        )

    def _start_cloud(self, request: _Request, k: int, *, paced: bool = True) -> None:
        request.quota = min(k + 1, self.max_tokens)
        request.timeline.k = request.quota - 1
        request.timeline.cloud_quota = request.quota
        request.buffer = TokenBuffer()
        if paced:
            request.controller = SpeedController(
                min_tpot=self.min_tpot, max_tpot=self.pace_s, expected_tokens=request.quota
            )
        request.start_cloud(request.prompt, request.quota)

    async def _display(self, request: _Request) -> AsyncIterator[Piece]:
        clock = self.clock
        while True:
            request.changed.clear()
            request.raise_failures()
            upcoming = request.next_display()
            if upcoming is None:
                if request.finished():
                    break
                await request.changed.wait()
                continue
            source, due = upcoming
            delay = clock.wall_delay(due)
            if delay > PRECISE_WAKE_S:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(request.changed.wait(), timeout=delay - PRECISE_WAKE_S)
                continue
            if delay > 0.0:
                time.sleep(delay)  # the last stretch on the OS timer (`PRECISE_WAKE_S`)
            clock.check(due)
            record = request.show(source, due)
            if record.text:
                yield Piece(text=record.text, source=source, position=record.position, at=record.shown_s)
        if self.mode == "cloud-only" and request.timeline.cloud_end == "unavailable":
            raise CloudUnavailableError(request.timeline.notices[-1].message)
