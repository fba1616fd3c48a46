"""What ``pdcore validate`` measured and how it compares (`pdcore.runtime.validate`): the calibration
requests, the live runs, the one-sided baselines, live against predicted per metric and, for
conversations, per turn (`TurnComparison`), and the report with its JSON form.

Each error is taken against an absolute floor (`Comparison.error`): ``|predicted - live| / max(live, floor)``
with the floor at the gap objective ``max_tpot_s`` (the rule is ours; `pdcore.runtime.validate`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pdcore.exceptions import InvalidInputError
from pdcore.profiles.cloud import CloudProfile
from pdcore.runtime.timeline import Timeline

__all__ = [
    "CACHED_TOKENS_TOLERANCE",
    "DEFAULT_TOLERANCE",
    "METRICS",
    "Baseline",
    "CalibrationSample",
    "Comparison",
    "LiveRun",
    "TurnComparison",
    "ValidationReport",
]

DEFAULT_TOLERANCE = 0.15
"""The agreement goal: 15% relative error on the averages."""

METRICS = ("ttft_s", "max_gap_s", "mean_gap_s")
"""What is compared (``max_gap_s`` without the stalls of either side's own stream, module docstring)."""

CACHED_TOKENS_TOLERANCE = 4
"""How far a turn's predicted device cached tokens may be from the live count, in tokens (ours; the
reasons are `pdcore.runtime.validate_turns`'s: the end of an answer and the device's tokenization of the
cloud's pieces shift the count by a token or two, any other difference is a failure)."""


@dataclass(frozen=True)
class CalibrationSample:
    """One calibration: a cloud-only request (its first-token time and inter-event gaps, seconds from
    sending it) and the device's prefill of the same prompt, run at the same time.

    Attributes:
        prompt_tokens: The prompt's length in tokens.
        ttft_s: Arrival of the first event.
        gaps_s: Time between consecutive events.
        device_prefill_s: The device's measured prefill time of the prompt (``None``: not measured).
        device_profile_s: The profile's prefill time for the same length.
        device_calls: The device's prefill as its model calls: ``(prompt tokens done, seconds)`` each, in
            order (what `pdcore.runtime.prediction.calibration_spread` measures the spread from).
    """

    prompt_tokens: int
    ttft_s: float
    gaps_s: tuple[float, ...]
    device_prefill_s: float | None = None
    device_profile_s: float | None = None
    device_calls: tuple[tuple[int, float], ...] = ()

    @property
    def device_speed_ratio(self) -> float:
        """The device's prefill time over its profile's (1.0 when not measured or not positive)."""
        if not (self.device_prefill_s and self.device_profile_s) or self.device_prefill_s <= 0:
            return 1.0
        return self.device_prefill_s / self.device_profile_s


@dataclass(frozen=True)
class LiveRun:
    """One live P/D-Device request.

    Attributes:
        prompt_tokens: The prompt's length in device tokens.
        output_tokens: Output positions displayed.
        k: Cloud decode tokens asked for after the first, continuation requests included (the
            simulator is given this ``k``: it has no continuations).
        extensions: Continuation requests the session sent.
        ttft_s: Time to the first displayed token.
        cloud_ttft_s: Arrival of the cloud's first token (``None`` if none arrived).
        max_gap_s: The largest display gap, leaving out the stalls of the cloud's stream and of the
            device's own decode after the hand-off (module docstring).
        max_gap_all_s: The largest display gap, stalls included.
        mean_gap_s: The mean display gap after the first token.
        handoff_position: Where the device took over (``None`` if it did not).
        timeline: The full record.
    """

    prompt_tokens: int
    output_tokens: int
    k: int
    extensions: int
    ttft_s: float
    cloud_ttft_s: float | None
    max_gap_s: float
    max_gap_all_s: float
    mean_gap_s: float
    handoff_position: int | None
    timeline: Timeline = field(repr=False)

    @classmethod
    def from_timeline(cls, timeline: Timeline) -> LiveRun:
        """Reduces a timeline (raises `InvalidInputError` if it shows fewer than two tokens)."""
        if timeline.prompt_tokens is None:
            raise InvalidInputError(
                f"the live request ran no device (plan {timeline.plan!r}: {timeline.plan_reason}); fix: "
                "run it as P/D-Device (Session(reduce_plans=False))"
            )
        if len(timeline.tokens) < 2:
            raise InvalidInputError(
                f"the live request displayed {len(timeline.tokens)} tokens; fix: ask for longer answers "
                "(--max-tokens) so that gaps can be measured"
            )
        shown = [record.shown_s for record in timeline.tokens]
        gaps = np.diff(shown)
        paced = [gap.gap_s for gap in timeline.gaps() if not gap.stall]
        return cls(
            prompt_tokens=timeline.prompt_tokens,
            output_tokens=len(shown),
            k=timeline.cloud_quota - 1 if timeline.cloud_quota is not None else 0,
            extensions=len(timeline.cloud_extensions),
            ttft_s=shown[0],
            cloud_ttft_s=timeline.cloud_first_s,
            max_gap_s=max(paced) if paced else 0.0,
            max_gap_all_s=float(gaps.max()),
            mean_gap_s=float(gaps.mean()),
            handoff_position=timeline.handoff_position,
            timeline=timeline,
        )


@dataclass(frozen=True)
class Baseline:
    """The same prompt served by one side alone, right after the live run (``baselines=True``).

    Attributes:
        prompt_tokens: The prompt's length in device tokens.
        pd_ttft_s: The live P/D-Device TTFT.
        pd_cloud_ttft_s: Arrival of the cloud's first token in the live run.
        cloud_ttft_s: The TTFT of a cloud-only request (same cache state as the live run).
        device_ttft_s: The TTFT of a device-only request.
    """

    prompt_tokens: int
    pd_ttft_s: float
    pd_cloud_ttft_s: float | None
    cloud_ttft_s: float | None
    device_ttft_s: float | None

    @property
    def reduction_vs_device(self) -> float | None:
        """``1 - pd_ttft / device_ttft``: how much sooner P/D-Device shows the first token."""
        if self.device_ttft_s is None or self.device_ttft_s <= 0:
            return None
        return 1.0 - self.pd_ttft_s / self.device_ttft_s


@dataclass(frozen=True)
class Comparison:
    """Live against predicted for one metric.

    Attributes:
        metric: ``"ttft_s"``, ``"max_gap_s"`` or ``"mean_gap_s"``.
        live: Per-request live values.
        predicted: Per-request simulator values.
    """

    metric: str
    live: tuple[float, ...]
    predicted: tuple[float, ...]
    floor_s: float = 0.0
    """The absolute floor of the relative error (module docstring)."""

    @property
    def live_mean(self) -> float:
        """The live average."""
        return float(np.mean(self.live))

    @property
    def predicted_mean(self) -> float:
        """The predicted average."""
        return float(np.mean(self.predicted))

    @property
    def error(self) -> float:
        """Relative error of the averages against the floor, ``|predicted - live| / max(live, floor_s)``."""
        return _relative(self.predicted_mean, self.live_mean, self.floor_s)

    @property
    def request_errors(self) -> tuple[float, ...]:
        """Per-request relative errors against the floor."""
        return tuple(_relative(p, v, self.floor_s) for v, p in zip(self.live, self.predicted, strict=True))


@dataclass(frozen=True)
class TurnComparison:
    """Live against predicted for one turn of the conversations (``validate(turns=N)``), conversations in
    order.

    Attributes:
        turn: The turn, from 1.
        ttft: Each conversation's TTFT at this turn, judged as every `Comparison` (against the floor).
        live_cached: Each conversation's device cached tokens at this turn, live.
        predicted_cached: The same, predicted by the simulator's session cache.
        cached_tolerance: The largest difference allowed per conversation, tokens.
    """

    turn: int
    ttft: Comparison
    live_cached: tuple[int, ...]
    predicted_cached: tuple[int, ...]
    cached_tolerance: int = CACHED_TOKENS_TOLERANCE

    @property
    def cached_errors(self) -> tuple[int, ...]:
        """Predicted less live cached tokens, per conversation."""
        return tuple(p - v for v, p in zip(self.live_cached, self.predicted_cached, strict=True))

    @property
    def cached_agree(self) -> bool:
        """Whether every conversation's cached tokens are within `cached_tolerance` of the prediction."""
        return all(abs(error) <= self.cached_tolerance for error in self.cached_errors)

    def passed(self, tolerance: float) -> bool:
        """Whether the mean TTFT is within ``tolerance`` (`Comparison.error`) and the cached tokens agree."""
        return self.ttft.error <= tolerance and self.cached_agree

    def to_dict(self, tolerance: float) -> dict[str, Any]:
        """A JSON-ready summary: ``passed``, ``ttft_s`` (as ``comparisons``) and ``device_cached_tokens``."""
        return {
            "passed": self.passed(tolerance),
            "ttft_s": _comparisons([self.ttft])[self.ttft.metric],
            "device_cached_tokens": {
                "live": list(self.live_cached),
                "predicted": list(self.predicted_cached),
                "errors": list(self.cached_errors),
                "tolerance_tokens": self.cached_tolerance,
                "agree": self.cached_agree,
            },
        }


def _relative(predicted: float, live: float, floor: float) -> float:
    scale = max(live, floor)
    return abs(predicted - live) / scale if scale > 0 else (0.0 if predicted == live else math.inf)


def _comparisons(comparisons: Sequence[Comparison]) -> dict[str, Any]:
    return {
        comparison.metric: {
            "live_mean": comparison.live_mean,
            "predicted_mean": comparison.predicted_mean,
            "error": comparison.error,
            "error_floor_s": comparison.floor_s,
            "live": list(comparison.live),
            "predicted": list(comparison.predicted),
            "request_errors": list(comparison.request_errors),
        }
        for comparison in comparisons
    }


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of `validate`.

    Attributes:
        runs: The live requests.
        calibration: The cloud-only calibration requests.
        rtt_s: The measured round trip.
        cloud: The fitted cloud profile.
        one_way_s: The one-way delay given to the simulator (half the round trip plus request handling).
        comparisons: One per metric.
        tolerance: The agreement goal.
        warm: Whether each prompt was cached on the cloud first.
        max_tpot_s: The display-gap objective.
        pace_s: The gap the controller paced at (the objective less the session's pacing margin).
        baselines: Cloud-only and device-only TTFTs of the same prompts (empty unless asked for).
        device_speed_ratio: The device's time for its work over its profile's prediction in the live
            runs, median over them (above 1 when the co-located cloud or other load slowed it down). The
            prediction itself uses each calibration's ratio (`CalibrationSample.device_speed_ratio`).
        in_situ: The same comparisons with the profile scaled by each live run's own ratio: what is left
            of the disagreement once the device's live speed is known (diagnostic; `passed` does not
            use it).
        predicted_timelines: The simulator's timeline of each live request, as the comparisons predict
            it (`predict_timelines`; ``pdcore view`` draws it beside the live one).
        step_spread: The device's step spread the prediction simulated: measured over the calibration's
            model calls (`pdcore.runtime.prediction.calibration_spread`).
        step_spread_calls: The model calls it was measured over (0: none, the spread is 0).
        live_step_spread: The spread the live session learned from the live runs (`Session.step_spread`),
            which the in-situ comparison simulates.
        turns: Turns per conversation (1: single requests); with more, `runs` holds each conversation's
            turns in order, conversation after conversation, and `calibration` one sample per conversation.
        per_turn: Live against predicted per turn (empty for single requests).
    """

    runs: tuple[LiveRun, ...]
    calibration: tuple[CalibrationSample, ...]
    rtt_s: float
    cloud: CloudProfile
    one_way_s: float
    comparisons: tuple[Comparison, ...]
    tolerance: float
    warm: bool
    max_tpot_s: float
    pace_s: float
    baselines: tuple[Baseline, ...] = ()
    device_speed_ratio: float = 1.0
    in_situ: tuple[Comparison, ...] = ()
    predicted_timelines: tuple[dict[str, Any], ...] = ()
    step_spread: float = 0.0
    step_spread_calls: int = 0
    live_step_spread: float = 0.0
    turns: int = 1
    per_turn: tuple[TurnComparison, ...] = ()

    @property
    def spread_note(self) -> str:
        """Which step spread the simulated device had, in a sentence."""
        return (
            f"simulated device step spread: {self.step_spread:.3f} (RMS relative error of "
            f"{self.step_spread_calls} calibration prefill calls against the profile at their speed ratio); "
            f"in situ: {self.live_step_spread:.3f}, learned by the live session"
        )

    @property
    def passed(self) -> bool:
        """Whether every metric's averages agree within the tolerance, and every turn passes."""
        return all(comparison.error <= self.tolerance for comparison in self.comparisons) and all(
            turn.passed(self.tolerance) for turn in self.per_turn
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary, with each live request's timeline summary and full timeline (every
        token's times, the hand-off estimates as they were revised, the cloud's events); for
        conversations, also ``turns`` and ``per_turn`` (`TurnComparison.to_dict` by turn)."""
        per_turn = {str(turn.turn): turn.to_dict(self.tolerance) for turn in self.per_turn}
        return {
            "passed": self.passed,
            "tolerance": self.tolerance,
            "warm": self.warm,
            "rtt_s": self.rtt_s,
            "one_way_s": self.one_way_s,
            "max_tpot_s": self.max_tpot_s,
            "pace_s": self.pace_s,
            "cloud_profile": {
                key: getattr(self.cloud, key)
                for key in (
                    "name",
                    "base_s",
                    "prefill_token_s",
                    "prefill_attn_s",
                    "decode_seq_s",
                    "decode_context_s",
                )
            },
            "comparisons": _comparisons(self.comparisons),
            "device_speed_ratio": self.device_speed_ratio,
            "step_spread": self.step_spread,
            "step_spread_calls": self.step_spread_calls,
            "live_step_spread": self.live_step_spread,
            "in_situ": _comparisons(self.in_situ),
            "calibration": [
                asdict(sample) | {"device_speed_ratio": sample.device_speed_ratio}
                for sample in self.calibration
            ],
            "baselines": [
                asdict(baseline) | {"reduction_vs_device": baseline.reduction_vs_device}
                for baseline in self.baselines
            ],
            "runs": [
                {
                    "prompt_tokens": run.prompt_tokens,
                    "output_tokens": run.output_tokens,
                    "k": run.k,
                    "extensions": run.extensions,
                    "handoff_position": run.handoff_position,
                    "max_gap_s": run.max_gap_s,
                    "max_gap_all_s": run.max_gap_all_s,
                    "summary": run.timeline.summary(),
                    "timeline": run.timeline.to_dict(),
                    "predicted_timeline": self.predicted_timelines[index]
                    if index < len(self.predicted_timelines)
                    else None,
                }
                for index, run in enumerate(self.runs)
            ],
        } | ({"turns": self.turns, "per_turn": per_turn} if per_turn else {})
