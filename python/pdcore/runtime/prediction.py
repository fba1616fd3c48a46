"""The simulator's prediction of ``pdcore validate``'s live runs (`pdcore.runtime.validate`): the cloud it
uses (fitted to the calibration, `fit_cloud`, or measured, `cloud_model`), the device profile scaled by a
speed ratio and given the step spread measured in the calibration (`calibration_spread`), the replay of
each live request, one at a time on an idle cloud, with its own ``k``, and its comparison with the live
runs (`compare_live`). A conversation's turns are replayed with their conversation columns (`predict`'s
``conversation``), so the simulated device keeps its session cache between them
(`pdcore.runtime.turn_prediction`).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pdcore._core import MAX_STEP_SPREAD, HandoffEstimator, Plan
from pdcore.exceptions import InvalidInputError
from pdcore.policies import Replay
from pdcore.profiles.cloud import CloudProfile
from pdcore.profiles.device import DeviceProfile
from pdcore.profiles.network import NetworkProfile
from pdcore.runtime.device import DEFAULT_APPEND_CHUNK_TOKENS, DEFAULT_CHUNK_TOKENS
from pdcore.runtime.fit import fit_iteration
from pdcore.runtime.session import Session
from pdcore.runtime.validation_report import (
    METRICS,
    Baseline,
    CalibrationSample,
    Comparison,
    LiveRun,
    ValidationReport,
)
from pdcore.sim.runner import Scenario
from pdcore.slo import SLO
from pdcore.traces.workload import Workload

__all__ = [
    "CALIBRATION_CHUNK_TOKENS",
    "Replayed",
    "calibration_spread",
    "cloud_model",
    "compare_live",
    "fit_cloud",
    "predict",
    "predict_timelines",
    "scaled_profile",
]

CALIBRATION_CHUNK_TOKENS = 1 << 20
"""The prompt batch of the fitted cloud: every calibration prompt is prefilled in one chunk."""


def calibration_spread(samples: Sequence[CalibrationSample], device: DeviceProfile) -> tuple[float, int]:
    """The device's step spread measured in the calibration, and the model calls it covers.

    Each calibration's prefill calls go through the live hand-off estimator (`HandoffEstimator`, the one
    rule of the spread: each call's time against the profile's price at the speed ratio measured before
    it), seeded with that calibration's own speed ratio so the device's drift between requests is not
    counted as spread; the samples' squared errors are pooled (root mean square over every call), at most
    `pdcore._core.MAX_STEP_SPREAD` (a wider one is simulated at it). ``(0.0, 0)`` when no call was measured.
    """
    squares, calls = 0.0, 0
    for sample in samples:
        estimator = HandoffEstimator(
            device.cost, sample.prompt_tokens, sample.prompt_tokens, sample.device_speed_ratio,
            prompt_chunk_tokens=DEFAULT_CHUNK_TOKENS, append_chunk_tokens=DEFAULT_APPEND_CHUNK_TOKENS,
        )  # fmt: skip
        done_before, at = 0, 0.0
        for done, took in sample.device_calls:
            at += took
            estimator.observe_prompt(done, max(done - done_before, 0), took, at=at)
            done_before = done
        measured = estimator.measured_spread
        if measured is not None:
            squares += measured[0] ** 2 * measured[1]
            calls += measured[1]
    return (min(math.sqrt(squares / calls), MAX_STEP_SPREAD), calls) if calls else (0.0, 0)


def scaled_profile(profile: DeviceProfile, ratio: float) -> DeviceProfile:
    """``profile`` with every prefill and decode time multiplied by ``ratio``."""
    return dataclasses.replace(
        profile,
        name=f"{profile.name} x{ratio:.3f}",
        prefill_seconds=tuple(value * ratio for value in profile.prefill_seconds),
        decode_tpot=tuple(value * ratio for value in profile.decode_tpot),
    )


def fit_cloud(
    samples: Sequence[CalibrationSample], *, rtt_s: float, warm: bool, name: str = "fitted-cloud"
) -> tuple[CloudProfile, float]:
    """A cloud profile fitted to cloud-only requests, and the one-way delay to use with it.

    The one cloud fit (`pdcore.runtime.fit.fit_iteration`, module docstring) on the calibration: one
    stream at a time, each prompt in one chunk, cached when ``warm`` (then every first token counts at
    their median), the request's handling before its first step fitted apart and added to the one-way
    delay. Returns ``(profile, one_way_s)``.

    Raises:
        InvalidInputError: No sample has at least one inter-event gap.
    """
    gaps = [
        (1, float(sample.prompt_tokens + index), gap)
        for sample in samples
        for index, gap in enumerate(sample.gaps_s, start=1)
    ]
    if not gaps:
        raise InvalidInputError(
            "the calibration requests streamed fewer than two events each; fix: raise calibration_tokens"
        )
    firsts = [sample.ttft_s for sample in samples]
    if warm:
        firsts = [float(np.median(firsts))] * len(samples)
    fit = fit_iteration(
        [(sample.prompt_tokens, first) for sample, first in zip(samples, firsts, strict=True)],
        gaps,
        rtt_s=rtt_s,
        max_tokens_per_iteration=CALIBRATION_CHUNK_TOKENS,
        cached=warm,
        handling=True,
        what="validate",
        source="the calibration requests",
    )
    profile = CloudProfile(
        name=name,
        description="fitted to cloud-only requests against the live endpoint",
        model="the endpoint's model",
        gpu="unknown",
        tensor_parallel=1,
        base_s=max(fit.base_s, 1e-6),
        prefill_token_s=fit.prefill_token_s,
        prefill_attn_s=fit.prefill_attn_s,
        decode_seq_s=fit.decode_seq_s,
        decode_context_s=fit.decode_context_s,
        max_batch_size=1,
        max_tokens_per_iteration=CALIBRATION_CHUNK_TOKENS,
        kv_cache_tokens=1 << 24,
        gpus_per_replica=1,
        kv_bytes_per_token=1,
        citation="pdcore validate calibration",
        notes=f"{len(samples)} calibration requests, {len(gaps)} inter-event gaps, warm={warm}",
    )
    return profile, rtt_s / 2.0 + fit.handling_s / 2.0


def cloud_model(
    measured: CloudProfile | None, fitted: CloudProfile, fitted_one_way_s: float, *, rtt_s: float, warm: bool
) -> tuple[CloudProfile, float]:
    """The cloud the prediction uses, and its one-way delay (module docstring).

    Without a measured profile: the calibration's fit. With one, cold: the measured profile and half the
    round trip. With one, warm: the measured profile's decode prices, with the calibration's first-token
    delay for the cached prompt (no prefill cost, the delay above ``base_s`` added to the one-way delay).
    """
    if measured is None:
        return fitted, fitted_one_way_s
    if not warm:
        return measured, rtt_s / 2.0
    # The cached prompt's first token takes the calibration's delay, which can be shorter than the measured
    # iteration's fixed cost (that cost came from uncached prompts): the shared fixed cost is the smaller
    # of the two, the decode step keeps the measured total, and the first token's rest is network-side.
    first = fitted.base_s + 2.0 * (fitted_one_way_s - rtt_s / 2.0)  # the calibration's first-token delay
    base = max(min(measured.base_s, first) if first > 0 else measured.base_s, 1e-6)
    cached = dataclasses.replace(
        measured,
        base_s=base,
        decode_seq_s=measured.decode_seq_s + measured.base_s - base,
        prefill_token_s=0.0,
        prefill_attn_s=0.0,
        # a cached prompt runs no forward pass: the physics guard's prefill floor is not its price
        hardware=None,
        model_size=None,
    )
    return cached, rtt_s / 2.0 + max(first - cached.base_s, 0.0) / 2.0


def _replay_setup(
    runs: Sequence[LiveRun],
    *,
    device: DeviceProfile,
    cloud: CloudProfile,
    one_way_s: float,
    min_tpot_s: float,
    pace_s: float,
    max_tpot_s: float,
    conversation: Mapping[str, npt.NDArray[np.int64]] | None = None,
) -> tuple[Scenario, Workload, Replay, np.ndarray[Any, np.dtype[np.float64]]]:
    """The simulator's setup of the live requests: one at a time, an idle cloud each, their own k; with
    ``conversation`` (the workload's conversation columns), the turns of one conversation."""
    count = len(runs)
    columns: dict[str, Any] = dict(conversation or {})
    workload = Workload(
        name="validate",
        arrival_s=np.arange(count, dtype=np.float64) * 10_000.0,
        prompt_tokens=np.array([run.prompt_tokens for run in runs], dtype=np.int64),
        output_tokens=np.array([run.output_tokens for run in runs], dtype=np.int64),
        source="pdcore validate: the live requests",
        **columns,
    )
    network = NetworkProfile(name="measured", rtt_s=2.0 * one_way_s, bandwidth_bps=1e9, jitter_s=0.0)
    scenario = Scenario(cloud=cloud, device=device, network=network, slo=SLO(max_tpot_s=max_tpot_s))
    plans = [Plan("pd", k=run.k, min_tpot_s=min_tpot_s, max_tpot_s=pace_s) for run in runs]
    return scenario, workload, Replay(plans, name="pd-device-replay"), np.full(count, one_way_s)


def predict(
    runs: Sequence[LiveRun],
    *,
    device: DeviceProfile,
    cloud: CloudProfile,
    one_way_s: float,
    min_tpot_s: float,
    pace_s: float,
    max_tpot_s: float,
    conversation: Mapping[str, npt.NDArray[np.int64]] | None = None,
) -> dict[str, list[float]]:
    """The simulator's TTFT, gaps and device cached tokens for the live requests (one at a time, an idle
    cloud each; ``conversation``: the workload's conversation columns, when they are turns of one)."""
    scenario, workload, replay, delays = _replay_setup(
        runs, device=device, cloud=cloud, one_way_s=one_way_s, min_tpot_s=min_tpot_s, pace_s=pace_s,
        max_tpot_s=max_tpot_s, conversation=conversation,
    )  # fmt: skip
    result = scenario.run(workload, replay, one_way_s=delays)
    return {
        "ttft_s": [float(v) for v in result.results["ttft_s"]],
        "max_gap_s": [float(v) for v in result.results["max_gap_s"]],
        "mean_gap_s": [float(v) for v in result.results["tpot_s"]],
        "device_cached_tokens": [float(v) for v in result.results["device_cached_tokens"]],
    }


def predict_timelines(
    runs: Sequence[LiveRun],
    *,
    device: DeviceProfile,
    cloud: CloudProfile,
    one_way_s: float,
    min_tpot_s: float,
    pace_s: float,
    max_tpot_s: float,
    conversation: Mapping[str, npt.NDArray[np.int64]] | None = None,
) -> list[dict[str, Any]]:
    """The simulator's token timeline of each live request, as `predict` sees it (JSON-ready, seconds
    from the request's start): ``k``, ``displays_s``, ``from_cloud``, ``cloud_arrivals_s``, ``handoff_s``
    and ``handoff_estimates`` (``[at_s, estimate_s]`` each time the estimate was set or changed)."""
    scenario, workload, replay, delays = _replay_setup(
        runs, device=device, cloud=cloud, one_way_s=one_way_s, min_tpot_s=min_tpot_s, pace_s=pace_s,
        max_tpot_s=max_tpot_s, conversation=conversation,
    )  # fmt: skip
    recorded = scenario.record_timelines(workload, replay, range(len(runs)), one_way_s=delays)
    return [
        {
            "k": recorded[index]["k"],
            "displays_s": recorded[index]["displays_s"].tolist(),
            "from_cloud": recorded[index]["from_cloud"].tolist(),
            "cloud_arrivals_s": recorded[index]["cloud_arrivals_s"].tolist(),
            "handoff_s": recorded[index]["handoff_s"],
            "handoff_estimates": recorded[index]["handoff_estimates"].tolist(),
        }
        for index in range(len(runs))
    ]


@dataclass(frozen=True)
class Replayed:
    """The live runs and what the simulator needs to replay them (`predict`)."""

    runs: Sequence[LiveRun]
    device: DeviceProfile
    cloud: CloudProfile
    one_way_s: float
    min_tpot_s: float
    pace_s: float
    max_tpot_s: float

    def profile_at(self, ratio: float, step_spread: float | None) -> DeviceProfile:
        """The profile scaled by ``ratio``, with ``step_spread`` (None: the profile's own)."""
        scaled = scaled_profile(self.device, ratio)
        return scaled if step_spread is None else dataclasses.replace(scaled, step_spread=step_spread)

    def timelines(
        self, speed_ratios: Sequence[float], *, step_spread: float | None = None
    ) -> tuple[dict[str, Any], ...]:
        """The simulator's timeline of each run (`predict_timelines`), its profile scaled by its ratio,
        the device's calls spread by ``step_spread`` (None: the profile's own)."""
        return tuple(
            predict_timelines(
                [run],
                device=self.profile_at(ratio, step_spread),
                cloud=self.cloud,
                one_way_s=self.one_way_s,
                min_tpot_s=self.min_tpot_s,
                pace_s=self.pace_s,
                max_tpot_s=self.max_tpot_s,
            )[0]
            for run, ratio in zip(self.runs, speed_ratios, strict=True)
        )

    def compare(
        self, speed_ratios: Sequence[float], *, step_spread: float | None = None
    ) -> tuple[Comparison, ...]:
        """Live against predicted per metric, each run's device profile scaled by its speed ratio, the
        device's calls spread by ``step_spread`` (None: the profile's own)."""
        predicted: dict[str, list[float]] = {metric: [] for metric in METRICS}
        for run, ratio in zip(self.runs, speed_ratios, strict=True):
            one = predict(
                [run],
                device=self.profile_at(ratio, step_spread),
                cloud=self.cloud,
                one_way_s=self.one_way_s,
                min_tpot_s=self.min_tpot_s,
                pace_s=self.pace_s,
                max_tpot_s=self.max_tpot_s,
            )
            for metric in METRICS:
                predicted[metric].extend(one[metric])
        live: dict[str, list[float]] = {
            "ttft_s": [run.ttft_s for run in self.runs],
            "max_gap_s": [run.max_gap_s for run in self.runs],
            "mean_gap_s": [run.mean_gap_s for run in self.runs],
        }
        return tuple(
            Comparison(
                metric=metric,
                live=tuple(live[metric]),
                predicted=tuple(predicted[metric]),
                floor_s=self.max_tpot_s,
            )
            for metric in METRICS
        )


def compare_live(
    samples: Sequence[CalibrationSample],
    runs: Sequence[LiveRun],
    baseline_runs: Sequence[Baseline],
    *,
    rtt_s: float,
    warm: bool,
    cloud_profile: CloudProfile | None,
    session: Session,
    tolerance: float,
) -> ValidationReport:
    """The simulator's prediction of the live runs, compared with them (`pdcore.runtime.validate`): each
    run's device profile scaled by its calibration's speed ratio and spread by the calibration's step
    spread; in situ, by the live run's speed ratio and the spread the live session learned."""
    device, max_tpot_s = session.profile, session.max_tpot
    assert device is not None
    fitted, fitted_one_way = fit_cloud(samples, rtt_s=rtt_s, warm=warm)
    fitted, one_way_s = cloud_model(cloud_profile, fitted, fitted_one_way, rtt_s=rtt_s, warm=warm)
    replay = Replayed(
        runs=runs, device=device, cloud=fitted, one_way_s=one_way_s, min_tpot_s=session.min_tpot,
        pace_s=session.pace_s, max_tpot_s=max_tpot_s,
    )  # fmt: skip
    calibrated = [sample.device_speed_ratio for sample in samples]
    measured = [
        run.timeline.device_speed_ratio if run.timeline.device_speed_ratio is not None else ratio
        for run, ratio in zip(runs, calibrated, strict=True)
    ]
    spread, calls = calibration_spread(samples, device)
    live_spread = min(session.step_spread, MAX_STEP_SPREAD)
    return ValidationReport(
        runs=tuple(runs),
        calibration=tuple(samples),
        rtt_s=rtt_s,
        cloud=fitted,
        one_way_s=one_way_s,
        comparisons=replay.compare(calibrated, step_spread=spread),
        tolerance=tolerance,
        warm=warm,
        max_tpot_s=max_tpot_s,
        pace_s=session.pace_s,
        baselines=tuple(baseline_runs),
        device_speed_ratio=statistics.median(measured),
        in_situ=replay.compare(measured, step_spread=live_spread),
        predicted_timelines=replay.timelines(calibrated, step_spread=spread),
        step_spread=spread,
        step_spread_calls=calls,
        live_step_spread=live_spread,
    )
