"""The P/D-Device session: one answer streamed from the cloud and a local model at once.

`Session.stream` runs the request's parts (`pdcore.runtime.request.Request`) and yields the displayed text
as `Piece` objects:

- the **cloud stream** (`pdcore.runtime.cloud_stream`) streams ``k + 1`` tokens from the endpoint
  (`CloudClient`), resumes a silent or cut stream and asks for more when the device falls behind;
- the **device's progress** (`pdcore.runtime.device_progress`) prefills the prompt, then the received text,
  and takes over as soon as it has prefilled everything received;
- the **display** (`pdcore.runtime.display`, driven by the request's display loop, `Request.pieces`)
  shows cloud tokens at the speed controller's due times and device tokens as they are decoded, each
  position once and in order.

The prior speed ratio of the hand-off estimate is learned across requests (`Session.speed_ratio`).

Plan: `pdcore.runtime.planning` (the simulator's planner, ``k="auto"``), applied per answer and learned from
by `pdcore.runtime.session_planning.SessionPlanning`.

Several answers (`Session.open`, each an `pdcore.runtime.answer.Answer` with its own timeline) may stream
at once; the device serves one at a time. The rule (ours, `pdcore.runtime.planning`): an answer that
arrives while the device is busy with another is served by the cloud for the whole answer (plan
``"cloud-only"``, the reason naming the busy device) in a P/D-Device session; a device-only session (a
session without a cloud is one) queues it for the device (the reason says it waited; the timeline's
``device_wait_s`` says how long). A cloud-only answer never waits behind a device answer.

Conversations: a device built with ``conversation_cache=True`` keeps the KV of finished answers, and a
follow-up whose prompt begins with an earlier answer's tokens is planned and prefilled with them cached
(`pdcore.runtime.conversation_cache`; chat messages become such prompts through
`pdcore.runtime.chat_template.render_chat`).

Fallbacks (each leaves one `Notice` in the timeline and calls ``on_notice``; the log gets it only when no
callback does, so it is printed once):

- cloud unreachable or refusing: the device answers alone;
- cloud stream cut or silent: resumed (`pdcore.runtime.cloud_stream`); when it cannot be, the tokens
  received stay and the device continues after them;
- the cloud's context window ends its answer: the device continues after what arrived;
- cloud answer complete (finish reason ``"stop"`` within its quota): the device is not needed;
- device failed (crashed, killed, hung): the cloud continues the answer from the text so far
  (`pdcore.runtime.failover`); a device found failed at the start leaves the answer to the cloud.

Modes, named as the simulator's policies: ``"pd-device"`` (P/D-Device), ``"device-only"`` and
``"cloud-only"`` (every token shown on arrival), for comparisons on the same machine. The old names
``"pd"``, ``"device"`` and ``"cloud"`` are still accepted for one release (`OLD_MODES`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Literal

from pdcore.deprecation import accepts_renamed_keywords
from pdcore.profiles.device import DeviceProfile
from pdcore.runtime.answer import Answer
from pdcore.runtime.clock import RealtimeClock
from pdcore.runtime.cloud import CloudClient
from pdcore.runtime.cloud_stream import (
    MAX_RESUMES,
    RESUME_BACKOFF_S,
    STALL_FIRST_FACTOR,
    STALL_GAP_FACTOR,
    STALL_MIN_S,
)
from pdcore.runtime.device import Device
from pdcore.runtime.display import PRECISE_WAKE_S, Piece
from pdcore.runtime.planning import BUSY_CLOUD, BUSY_WAIT, ScaledProfile, count_prompt
from pdcore.runtime.request import Request
from pdcore.runtime.request_state import MODES, Mode, RequestState, RequestTerms
from pdcore.runtime.session_planning import SessionPlanning
from pdcore.runtime.settings import (
    DEFAULT_K_MARGIN,
    DEFAULT_MAX_EXTENSIONS,
    DEFAULT_MAX_TOKENS,
    DEFAULT_PACING_MARGIN_S,
    DEFAULT_TOKENS_PER_CHAR,
    OLD_MODES,
    TOKENIZE_SAMPLE_CHARS,
    answer_limit,
    check_settings,
    session_mode,
)
from pdcore.runtime.timeline import Notice, Timeline
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
    "Answer",
    "Mode",
    "Piece",
    "Session",
    "session_mode",
]


class Session(SessionPlanning):
    """Streams answers with P/D-Device (or one side alone, for comparisons).

    Args:
        cloud: The cloud endpoint (modes ``"pd-device"`` and ``"cloud-only"``).
        device: The local model (modes ``"pd-device"`` and ``"device-only"``).
        device_profile: The device's speed profile: the first hand-off estimate, ``k="auto"``, and the
            call deadlines of a device without a profile of its own.
        k: Cloud decode tokens after the first, or ``"auto"`` for the planner's (module docstring).
        max_tpot_s: The largest display gap aimed for (the TPOT SLO), seconds.
        min_tpot_s: The smallest display gap, seconds.
        max_tokens: The longest answer in output positions.
        k_margin: ``k="auto"`` asks for ``ceil(catchup_k * (1 + k_margin))`` tokens (see
            `DEFAULT_K_MARGIN`); extensions are padded by the same fraction.
        max_extensions: Continuation requests allowed per answer when the device falls behind the
            buffer (0 disables them).
        pacing_margin_s: The controller paces at ``max_tpot_s - pacing_margin_s`` (see
            `DEFAULT_PACING_MARGIN_S`); 0 paces at ``max_tpot_s`` exactly.
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

    @accepts_renamed_keywords
    def __init__(
        self,
        *,
        cloud: CloudClient | None = None,
        device: Device | None = None,
        device_profile: DeviceProfile | None = None,
        k: int | Literal["auto"] = "auto",
        max_tpot_s: float = DEFAULT_MAX_TPOT_S,
        min_tpot_s: float = 0.0,
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
        check_settings(
            mode,
            cloud,
            device,
            device_profile,
            k,
            max_tpot_s=max_tpot_s,
            min_tpot_s=min_tpot_s,
            max_tokens=max_tokens,
            pacing_margin_s=pacing_margin_s,
            k_margin=k_margin,
            max_extensions=max_extensions,
        )
        self.cloud = cloud
        self.device = device
        self.profile = device_profile
        self.k = k
        self.max_tpot = float(max_tpot_s)
        self.min_tpot = float(min_tpot_s)
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
        self._counted = False  # whether tokens_per_char comes from the device's count of a whole prompt
        self.speed_ratio = 1.0
        """The device's time for its work over the profile's prediction, learned from past requests
        (an average of the latest two); it scales the profile for ``k="auto"`` and seeds the hand-off
        estimate."""
        self.step_spread = self.profile.step_spread if self.profile is not None else 0.0
        """The relative spread of the device's model calls around their prediction, learned from past
        requests (an average of the latest two): the hand-off guard's prior spread (`HandoffEstimator`)."""
        self.timeline: Timeline | None = None
        """The record of the latest request started (filled in while it streams); each answer has its own
        (`Answer.timeline`)."""
        self.cloud_ttft_s: float | None = None
        """The cloud's first-token delay learned from earlier answers (an average of the latest two):
        the plan's first-token estimate when ``first_token_s`` is not given, and the stall deadline of a
        stream's first event."""
        self._scaled = ScaledProfile()

    async def complete(self, prompt: str, *, max_tokens: int | None = None) -> Timeline:
        """Streams ``prompt`` to the end and returns its timeline (``max_tokens`` as for `open`)."""
        answer = await self.open(prompt, max_tokens=max_tokens)
        async for _ in answer:
            pass
        return answer.timeline

    async def stream(self, prompt: str, *, max_tokens: int | None = None) -> AsyncIterator[Piece]:
        """Streams the answer to ``prompt`` (`open`, iterated to the end; closed when abandoned): the
        displayed pieces in order; `timeline` holds the full record. Raises as iterating an `Answer`."""
        answer = await self.open(prompt, max_tokens=max_tokens)
        try:
            async for piece in answer:
                yield piece
        finally:
            await answer.aclose()

    async def open(self, prompt: str, *, max_tokens: int | None = None) -> Answer:
        """Starts the answer to ``prompt`` (the full prompt text, e.g. `chatml` of a user turn) and returns
        its handle: its `Answer.timeline` is there at once (and becomes `timeline`), the cloud request, if
        the plan has one, has left; iterate it to the end or close it. Several answers may be open at once;
        one that finds the device busy with another is the cloud's, or waits for the device without a
        cloud (a rule of ours: module docstring). ``max_tokens`` caps this answer below the session's
        `max_tokens` (the plan, the cloud's quota and its continuations never ask for more).

        Raises:
            InvalidInputError: ``max_tokens`` is not a whole number >= 1.
        """
        terms = RequestTerms(
            mode=self.mode,
            max_tokens=answer_limit(max_tokens, self.max_tokens),
            max_tpot=self.max_tpot,
            min_tpot=self.min_tpot,
            pace_s=self.pace_s,
            k_margin=self.k_margin,
            max_extensions=self.max_extensions,
        )
        request = Request(
            RequestState(self.clock, prompt, terms, self.on_notice),
            cloud=self.cloud,
            device=self.device,
            profile=self.profile,
            prior_ratio=self.speed_ratio,
            prior_spread=self.step_spread,
            expected_first_s=self.first_token_s or self.cloud_ttft_s,
        )
        self.timeline = request.state.timeline
        answer = Answer(request, self._learn)
        try:
            self._start(request)
        except BaseException:
            await answer.aclose()
            raise
        return answer

    def _ask_whole(self, request: Request) -> None:
        """Asks the cloud for the whole answer, shown on arrival."""
        tokens = max(1, round(len(request.state.prompt) * self.tokens_per_char))
        request.ask_cloud(request.state.terms.max_tokens, tokens, paced=False)

    def _start(self, request: Request) -> None:
        state, progress, mode = request.state, request.device, self.mode
        if mode != "cloud-only" and not progress.claim_now():
            self._start_busy(request)
        elif mode == "cloud-only" or (request.failover.device_failed_before() and mode == "pd-device"):
            progress.release()
            self._ask_whole(request)
        else:
            if mode == "pd-device":
                self._start_pd(request)
            else:
                state.buffer.cut_cloud()
            if progress.deferred:
                progress.release()
            else:
                progress.start()

    def _start_busy(self, request: Request) -> None:
        """The device serves another answer: the cloud serves this one, or it waits (module docstring)."""
        state, progress = request.state, request.device
        if self.mode == "pd-device":
            state.timeline.plan, state.timeline.plan_reason = "cloud-only", BUSY_CLOUD
            progress.deferred = True
            state.notice("plan-cloud", BUSY_CLOUD)
            self._ask_whole(request)
        else:
            state.timeline.plan, state.timeline.plan_reason = "device-only", BUSY_WAIT
            state.buffer.cut_cloud()
            progress.start()

    def _start_pd(self, request: Request) -> None:
        """Plans the request (`pdcore.runtime.planning`) and sends the cloud request, unless the device
        alone is faster."""
        device = self.device
        assert device is not None
        state = request.state
        count = count_prompt(
            device, state.prompt, self.tokens_per_char, learned=self._counted, cached=self.k == "auto"
        )
        if count.tokens_per_char is not None:
            self.tokens_per_char = count.tokens_per_char
        estimated = count.tokens
        limit = state.terms.max_tokens
        plan, reason, k = self.plan_request(estimated, device_cached_tokens=count.cached, max_tokens=limit)
        state.timeline.plan = plan
        state.timeline.plan_reason = reason
        if plan == "device-only":
            state.buffer.cut_cloud()
            state.notice("plan-device", reason)
            return
        if plan == "cloud-only":
            request.device.deferred = True
            state.notice("plan-cloud", reason)
        quota = min(k + 1, limit)
        state.timeline.k = quota - 1
        request.ask_cloud(quota, estimated, paced=plan == "pd-device")
