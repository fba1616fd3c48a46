"""The simulator's per-turn prediction of ``validate(turns=N)``'s live conversations
(`pdcore.runtime.validate_turns`), and its comparison with them.

Each live conversation becomes a `pdcore.traces.Workload` of its turns (`conversation_columns`): one
session, turn ``1..N``, each turn the parent of the next, and each follow-up's ``shared_prefix_tokens`` the
leading tokens of its prompt that are the previous turn's context as the device holds it (measured from the
texts, `pdcore.runtime.validate_turns`); prompt lengths in device tokens as counted live, output lengths
and ``k`` as live. The turns are simulated one after the other on an idle cloud (10,000 s apart), so the
simulated device keeps the conversation's session cache between them (``rust/src/sim/caches.rs``, within the
profile's ``session_cache_bytes``) and each follow-up reuses what the simulator's rule says it holds.

The device profile is scaled by the speed ratio of the conversation's calibration (its first turn) for
every turn, with the step spread measured over the calibrations, as single-request validate scales each
request's; the cloud is the one fit of `pdcore.runtime.prediction`. The in-situ diagnostic scales each turn
by its own live speed ratio: the conversation up to that turn is simulated with it (its earlier turns leave
the cache as they would) and the turn's figures are read off the last request.

Compared: every metric of single-request validate over all turns (`ValidationReport.comparisons`), and per
turn (`TurnComparison`): the TTFT averaged over the conversations, by the same error rule against the same
floor, and each conversation's device cached tokens, within `CACHED_TOKENS_TOLERANCE`.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pdcore._core import MAX_STEP_SPREAD
from pdcore.profiles.cloud import CloudProfile
from pdcore.runtime.prediction import (
    Replayed,
    calibration_spread,
    cloud_model,
    fit_cloud,
    predict,
    predict_timelines,
)
from pdcore.runtime.session import Session
from pdcore.runtime.validation_report import (
    METRICS,
    CalibrationSample,
    Comparison,
    LiveRun,
    TurnComparison,
    ValidationReport,
)

__all__ = ["Conversation", "compare_conversations", "conversation_columns"]


@dataclass(frozen=True)
class Conversation:
    """One live conversation of ``validate(turns=N)``.

    Attributes:
        runs: Its turns, in order.
        shared_prefix_tokens: Per turn, the leading tokens of its prompt that are the previous turn's
            context (prompt, then answer) as the device holds it; 0 for the first turn.
        calibration: The calibration of its first turn.
    """

    runs: tuple[LiveRun, ...]
    shared_prefix_tokens: tuple[int, ...]
    calibration: CalibrationSample

    @property
    def speed_ratios(self) -> list[float]:
        """Each turn's device speed ratio measured live (the calibration's when none was measured)."""
        calibrated = self.calibration.device_speed_ratio
        return [
            run.timeline.device_speed_ratio if run.timeline.device_speed_ratio is not None else calibrated
            for run in self.runs
        ]


def conversation_columns(conversation: Conversation) -> dict[str, npt.NDArray[np.int64]]:
    """The workload's conversation columns of one conversation's turns (module docstring)."""
    count = len(conversation.runs)
    prompts = np.array([run.prompt_tokens for run in conversation.runs], dtype=np.int64)
    shared = np.minimum(np.array(conversation.shared_prefix_tokens, dtype=np.int64), prompts)
    shared[0] = 0
    return {
        "session": np.zeros(count, dtype=np.int64),
        "turn": np.arange(1, count + 1, dtype=np.int64),
        "parent": np.arange(-1, count - 1, dtype=np.int64),
        "shared_prefix_tokens": shared,
    }


def _predict_turns(
    replay: Replayed, conversation: Conversation, ratios: Sequence[float], step_spread: float
) -> dict[str, list[float]]:
    """The simulator's figures of each turn, the device profile scaled by the turn's ratio (one run when
    every turn has the same; otherwise the conversation up to each turn, of which the last)."""
    columns = conversation_columns(conversation)
    runs = conversation.runs

    def run(upto: int, ratio: float) -> dict[str, list[float]]:
        return predict(
            runs[:upto], device=replay.profile_at(ratio, step_spread), cloud=replay.cloud,
            one_way_s=replay.one_way_s, min_tpot_s=replay.min_tpot_s, pace_s=replay.pace_s,
            max_tpot_s=replay.max_tpot_s, conversation={k: v[:upto] for k, v in columns.items()},
        )  # fmt: skip

    if len(set(ratios)) == 1:
        return run(len(runs), ratios[0])
    out: dict[str, list[float]] = {}
    for upto, ratio in enumerate(ratios, start=1):
        for metric, values in run(upto, ratio).items():
            out.setdefault(metric, []).append(values[-1])
    return out


def _timelines(
    replay: Replayed, conversation: Conversation, step_spread: float
) -> tuple[dict[str, Any], ...]:
    """The simulator's timeline of each turn, as the calibrated prediction sees it."""
    device = replay.profile_at(conversation.calibration.device_speed_ratio, step_spread)
    return tuple(
        predict_timelines(
            conversation.runs, device=device, cloud=replay.cloud, one_way_s=replay.one_way_s,
            min_tpot_s=replay.min_tpot_s, pace_s=replay.pace_s, max_tpot_s=replay.max_tpot_s,
            conversation=conversation_columns(conversation),
        )
    )  # fmt: skip


def _compare(
    replay: Replayed, conversations: Sequence[Conversation], ratios: Sequence[Sequence[float]], spread: float
) -> tuple[tuple[Comparison, ...], list[dict[str, list[float]]]]:
    """Live against predicted per metric over every turn, and each conversation's predicted figures."""
    predicted = [_predict_turns(replay, c, r, spread) for c, r in zip(conversations, ratios, strict=True)]
    runs = [run for conversation in conversations for run in conversation.runs]
    live = {
        "ttft_s": [run.ttft_s for run in runs],
        "max_gap_s": [run.max_gap_s for run in runs],
        "mean_gap_s": [run.mean_gap_s for run in runs],
    }
    comparisons = tuple(
        Comparison(
            metric=metric,
            live=tuple(live[metric]),
            predicted=tuple(value for figures in predicted for value in figures[metric]),
            floor_s=replay.max_tpot_s,
        )
        for metric in METRICS
    )
    return comparisons, predicted


def _per_turn(
    conversations: Sequence[Conversation], predicted: Sequence[dict[str, list[float]]], floor_s: float
) -> tuple[TurnComparison, ...]:
    """Live against predicted per turn, conversations in order."""
    turns = len(conversations[0].runs)
    return tuple(
        TurnComparison(
            turn=turn + 1,
            ttft=Comparison(
                metric="ttft_s",
                live=tuple(c.runs[turn].ttft_s for c in conversations),
                predicted=tuple(figures["ttft_s"][turn] for figures in predicted),
                floor_s=floor_s,
            ),
            live_cached=tuple(c.runs[turn].timeline.device_cached_tokens for c in conversations),
            predicted_cached=tuple(round(figures["device_cached_tokens"][turn]) for figures in predicted),
        )
        for turn in range(turns)
    )


def compare_conversations(
    conversations: Sequence[Conversation],
    *,
    rtt_s: float,
    cloud_profile: CloudProfile | None,
    session: Session,
    tolerance: float,
) -> ValidationReport:
    """The simulator's prediction of the live conversations, compared with them (module docstring). The
    cloud was warmed before every turn (``warm``: `pdcore.runtime.validate_turns`)."""
    device, max_tpot_s = session.profile, session.max_tpot
    assert device is not None
    samples = [conversation.calibration for conversation in conversations]
    fitted, fitted_one_way = fit_cloud(samples, rtt_s=rtt_s, warm=True)
    fitted, one_way_s = cloud_model(cloud_profile, fitted, fitted_one_way, rtt_s=rtt_s, warm=True)
    runs = tuple(run for conversation in conversations for run in conversation.runs)
    replay = Replayed(
        runs=runs, device=device, cloud=fitted, one_way_s=one_way_s, min_tpot_s=session.min_tpot,
        pace_s=session.pace_s, max_tpot_s=max_tpot_s,
    )  # fmt: skip
    spread, calls = calibration_spread(samples, device)
    live_spread = min(session.step_spread, MAX_STEP_SPREAD)
    calibrated = [[c.calibration.device_speed_ratio] * len(c.runs) for c in conversations]
    measured = [c.speed_ratios for c in conversations]
    comparisons, predicted = _compare(replay, conversations, calibrated, spread)
    in_situ, _ = _compare(replay, conversations, measured, live_spread)
    return ValidationReport(
        runs=runs,
        calibration=tuple(samples),
        rtt_s=rtt_s,
        cloud=fitted,
        one_way_s=one_way_s,
        comparisons=comparisons,
        tolerance=tolerance,
        warm=True,
        max_tpot_s=max_tpot_s,
        pace_s=session.pace_s,
        device_speed_ratio=statistics.median(ratio for ratios in measured for ratio in ratios),
        in_situ=in_situ,
        predicted_timelines=tuple(
            timeline
            for conversation in conversations
            for timeline in _timelines(replay, conversation, spread)
        ),
        step_spread=spread,
        step_spread_calls=calls,
        live_step_spread=live_spread,
        turns=len(conversations[0].runs),
        per_turn=_per_turn(conversations, predicted, max_tpot_s),
    )
