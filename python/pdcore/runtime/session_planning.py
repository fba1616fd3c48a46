"""How a live session plans each answer and what it learns from the answers it closes.

`SessionPlanning` is the planning half of `pdcore.runtime.session.Session`: the plan of each answer
(`SessionPlanning.plan_request`: ``k`` as given, or the simulator's planner, `pdcore._core.plan_turn`, on the
device profile scaled by the learned speed ratio, `pdcore.runtime.planning`) and the figures each closed
answer teaches (`SessionPlanning._learn`). The session's settings and learned figures are its attributes,
set by `Session.__init__`.
"""

from __future__ import annotations

from typing import Literal

from pdcore._core import TurnPlan, plan_turn
from pdcore.profiles.device import DeviceProfile
from pdcore.runtime.cloud import CloudClient
from pdcore.runtime.planning import ScaledProfile, plan_words
from pdcore.runtime.request import Request
from pdcore.runtime.request_state import Mode

__all__ = ["SessionPlanning"]


class SessionPlanning:
    """The plan of each answer and the figures learned from closed ones (module docstring)."""

    cloud: CloudClient | None
    profile: DeviceProfile | None
    k: int | Literal["auto"]
    max_tokens: int
    max_tpot: float
    pacing_margin_s: float
    k_margin: float
    first_token_s: float | None
    cloud_tpot_s: float
    learn_speed: bool
    reduce_plans: bool
    tokens_per_char: float
    speed_ratio: float
    step_spread: float
    cloud_ttft_s: float | None
    _counted: bool
    _scaled: ScaledProfile

    @property
    def pace_s(self) -> float:
        """The largest gap the controller schedules: ``max_tpot - pacing_margin_s``."""
        return self.max_tpot - self.pacing_margin_s

    def resolve_k(self, prompt_tokens: int) -> int:
        """The ``k`` used for a prompt of ``prompt_tokens`` device tokens: as given, or the catch-up
        rule on the profile scaled by the learned speed ratio, padded by ``k_margin``."""
        if self.k != "auto":
            return self.k
        return self._plan(prompt_tokens, reduce=False).wanted_k

    def plan_request(
        self,
        prompt_tokens: int,
        *,
        device_cached_tokens: int = 0,
        cloud_cached_tokens: int = 0,
        max_tokens: int | None = None,
    ) -> tuple[Mode, str, int]:
        """The plan for a prompt of ``prompt_tokens`` device tokens, of which a follow-up turn finds
        ``device_cached_tokens`` in the device's cache and ``cloud_cached_tokens`` in the cloud's, for an
        answer of at most ``max_tokens`` (None: the session's): ``(plan, reason, k)``
        (`pdcore.runtime.planning`)."""
        limit = self.max_tokens if max_tokens is None else max_tokens
        context = self.cloud.context_tokens if self.cloud is not None else None
        room = None if context is None else context - prompt_tokens
        if self.k != "auto":
            k = self.k if room is None else max(0, min(self.k, room - 1))
            return "pd-device", f"k = {self.k} as given", k
        turn = self._plan(
            prompt_tokens,
            room=room,
            device_cached_tokens=device_cached_tokens,
            cloud_cached_tokens=cloud_cached_tokens,
            reduce=self.reduce_plans,
            max_tokens=limit,
        )
        return plan_words(turn, prompt_tokens, max_tokens=limit, reduce=self.reduce_plans)

    def expected_first_token_s(self) -> float:
        """The cloud's first-token delay the plan assumes: given, else learned, else 0 (the safe side)."""
        if self.first_token_s is not None:
            return self.first_token_s
        return self.cloud_ttft_s or 0.0

    def _plan(
        self,
        prompt_tokens: int,
        *,
        room: int | None = None,
        device_cached_tokens: int = 0,
        cloud_cached_tokens: int = 0,
        reduce: bool,
        max_tokens: int | None = None,
    ) -> TurnPlan:
        """The planner's plan (`pdcore._core.plan_turn`) on the profile scaled by the learned speed ratio,
        for an answer of at most ``max_tokens`` (None: the session's)."""
        assert self.profile is not None
        limit = self.max_tokens if max_tokens is None else max_tokens
        return plan_turn(
            prompt_tokens,
            device=self._scaled(self.profile, self.speed_ratio).cost,
            max_tpot_s=self.pace_s,
            first_token_s=self.expected_first_token_s(),
            cloud_tpot_s=self.cloud_tpot_s,
            device_cached_tokens=device_cached_tokens,
            cloud_cached_tokens=cloud_cached_tokens,
            max_tokens=limit,
            context_room=room,
            k_margin=self.k_margin,
            reduce=reduce,
            max_k=limit,
        )

    def _learn(self, request: Request) -> None:
        """Learns from a closed answer: the prompt's tokens per character, the cloud's first-token delay,
        the device's speed ratio and step spread (each an average of the latest two)."""
        timeline = request.state.timeline
        if timeline.prompt_tokens is not None:
            self.tokens_per_char = timeline.prompt_tokens / max(len(request.state.prompt), 1)
            self._counted = True
        if timeline.cloud_first_s is not None and timeline.cloud_sent_s is not None:
            ttft = timeline.cloud_first_s - timeline.cloud_sent_s
            self.cloud_ttft_s = ttft if self.cloud_ttft_s is None else 0.5 * (self.cloud_ttft_s + ttft)
        estimator = request.device.estimator
        if estimator is None or estimator.predicted <= 0.0:
            return
        measured = estimator.actual_s / estimator.predicted
        timeline.device_speed_ratio = measured
        if self.learn_speed and self.profile is not None and estimator.predicted >= estimator.prior_weight:
            self.speed_ratio = 0.5 * (self.speed_ratio + measured)
        spread = estimator.measured_spread
        if self.learn_speed and spread is not None:
            self.step_spread = 0.5 * (self.step_spread + spread[0]) if self.step_spread else spread[0]
