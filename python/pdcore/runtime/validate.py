"""``pdcore validate``: live P/D-Device requests against the simulator's prediction for the same requests.

For each of ``N`` prompts (real text of chosen lengths, `pdcore.runtime.profiler.filler_text`):

1. **Warm-up** (``warm=True``, the chat case: the cloud has seen the conversation so far): a one-token
   cloud request caches the prompt on the endpoint. llama.cpp's server then reuses that prefix. The
   warm-up is repeated between the calibration and the live run, so that both meet the same cache state
   (llama.cpp's server answers about 10 ms later when its cache holds tokens beyond the prompt).
2. **Calibration**, on the same prompt (``warm=True``) or another of the same length: the device
   prefills the whole prompt, timed against its profile (the **device speed ratio**: its time over the
   profile's), while a cloud-only request streams, timed per event, until the device is done (at least
   ``calibration_tokens`` events, at most ``max_tokens``). On a machine that hosts both, each side is
   timed under the load it meets in the live run: the cloud decodes while the device prefills. With
   ``warm=False`` the calibration uses a different prompt of the same length, so that the live request
   stays uncached.
3. **Live run**: one P/D-Device request through `Session`, recorded in its `Timeline`. The session is
   told the speed ratio just measured (`Session.speed_ratio`), as a session that has served requests on
   this device would have learned it: it seeds the hand-off estimate and ``k="auto"``.

The simulator (`pdcore.sim.Scenario`) then replays the same requests, one at a time, with:

- the **measured device profile** (``--profile``, from ``pdcore profile-device``) scaled by the speed
  ratio of the request's calibration (the device's speed drifts on a shared machine; the profile
  gives the shape of the curve, the calibration its current scale);
- the **measured network**: the round trip of ``GET /v1/models``, median of a few pings (one-way delay is
  half of it, no jitter);
- the **cloud profile measured from the endpoint** (``cloud_profile``, from ``pdcore profile-cloud``) when
  one is given: every cloud price from it, except that a warm prompt's first token (a cached prefix, which
  the profile's lone prefill does not describe) keeps the calibration's first-token delay (`cloud_model`);
- otherwise a **cloud profile fitted to the calibration requests** (`fit_cloud`, the one cloud fit of
  `pdcore.runtime.fit`, as ``pdcore profile-cloud`` fits), never to the live runs: a decode step
  ``base_s + decode_seq_s + decode_context_s * context`` on the inter-event gaps against their context,
  and the first token ``base_s + handling + prefill`` on the first-event times minus the round trip (when
  warm the prompt is cached: no prefill, since a cached prefix makes the first token independent of the
  prompt length, and every first token counts at the median: one calibration request that stalled, 68 ms
  against 7-16 ms for the others in one measured run, must not set every request's prediction).
  ``base_s`` is the smaller of the two intercepts, the decode step keeps the rest as ``decode_seq_s``, and
  the handling (request handling before the first step) is added to the one-way delay;
- the live run's own ``k``, output length and pacing settings (``max_tpot - pacing_margin_s``).

No input of the prediction is read off the live runs. Compared per request and on average: the TTFT,
the largest display gap and the mean display gap. The largest gap leaves out the stalls of either
side's own stream (`GapRecord.stall`): a cloud token that arrived more than ``max_tpot`` after the
previous display (``"cloud-late"``: the network or the cloud stalled), and a device token decoded more
than ``max_tpot`` after the previous one once the device has taken over (``"device-late"`` after the
hand-off position: the device's own decode stalled). The simulator's cloud and device step at their
fitted mean speeds and never stall, so it cannot predict those, and no pacing can hide them; what it
predicts, and what is compared, is everything the runtime decides: the paced gaps and the hand-off gap
(a device that is not ready when the buffer runs out). The stalls are reported beside the comparison
(``max_gap_all_s``, the largest gap with them, which `passed` does not use). The goal is agreement
within ``tolerance`` (15%) on the averages, each error taken against an absolute floor (`Comparison.error`):
``|predicted - live| / max(live, floor)`` with the floor at the gap objective ``max_tpot``. A TTFT of 10 ms
predicted at 13 ms is 30% off by ratio but one twentieth of a display gap in time, which no user can tell
apart; against the floor it counts 6%. Values above the floor are judged by plain relative error. (The
rule is ours.) As a diagnostic, the comparison is repeated with the profile
scaled by the device's speed measured in each live run instead (`ValidationReport.in_situ`), which
separates the device's speed from errors of the simulator's logic.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from pdcore._core import Plan
from pdcore.exceptions import InvalidInputError
from pdcore.policies import Replay
from pdcore.profiles.cloud import CloudProfile
from pdcore.profiles.device import DeviceProfile
from pdcore.profiles.network import NetworkProfile
from pdcore.runtime.cloud import CloudClient
from pdcore.runtime.device import Device, chatml
from pdcore.runtime.fit import fit_iteration
from pdcore.runtime.profiler import filler_text
from pdcore.runtime.session import DEFAULT_K_MARGIN, DEFAULT_MAX_EXTENSIONS, DEFAULT_MAX_TPOT_S, Session
from pdcore.runtime.timeline import Timeline
from pdcore.sim.runner import Scenario
from pdcore.slo import SLO
from pdcore.traces.workload import Workload

__all__ = [
    "DEFAULT_PROMPT_TOKENS",
    "DEFAULT_TOLERANCE",
    "Baseline",
    "CalibrationSample",
    "Comparison",
    "LiveRun",
    "ValidationReport",
    "fit_cloud",
    "make_prompt",
    "predict_timelines",
    "scaled_profile",
    "validate",
]

DEFAULT_PROMPT_TOKENS = (256, 512, 1024)
"""Prompt lengths the requests cycle through by default."""

DEFAULT_TOLERANCE = 0.15
"""The agreement goal: 15% relative error on the averages."""

METRICS = ("ttft_s", "max_gap_s", "mean_gap_s")
"""What is compared (``max_gap_s`` without the stalls of either side's own stream, module docstring)."""

CALIBRATION_CHUNK_TOKENS = 1 << 20
"""The prompt batch of the fitted cloud: every calibration prompt is prefilled in one chunk."""

INSTRUCTION = "Read the text below, then write a long story inspired by it.\n\n"


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
    """

    prompt_tokens: int
    ttft_s: float
    gaps_s: tuple[float, ...]
    device_prefill_s: float | None = None
    device_profile_s: float | None = None

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


def scaled_profile(profile: DeviceProfile, ratio: float) -> DeviceProfile:
    """``profile`` with every prefill and decode time multiplied by ``ratio``."""
    return dataclasses.replace(
        profile,
        name=f"{profile.name} x{ratio:.3f}",
        prefill_seconds=tuple(value * ratio for value in profile.prefill_seconds),
        decode_tpot=tuple(value * ratio for value in profile.decode_tpot),
    )


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

    @property
    def passed(self) -> bool:
        """Whether every metric's averages agree within the tolerance."""
        return all(comparison.error <= self.tolerance for comparison in self.comparisons)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary, with each live request's timeline summary and full timeline (every
        token's times, the hand-off estimates as they were revised, the cloud's events)."""
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
        }


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
    )
    return cached, rtt_s / 2.0 + max(first - cached.base_s, 0.0) / 2.0


def _replay_setup(
    runs: Sequence[LiveRun],
    *,
    device: DeviceProfile,
    cloud: CloudProfile,
    one_way_s: float,
    min_tpot: float,
    pace_s: float,
    max_tpot_s: float,
) -> tuple[Scenario, Workload, Replay, np.ndarray[Any, np.dtype[np.float64]]]:
    """The simulator's setup of the live requests: one at a time, an idle cloud each, their own k."""
    count = len(runs)
    workload = Workload(
        name="validate",
        arrival_s=np.arange(count, dtype=np.float64) * 10_000.0,
        prompt_tokens=np.array([run.prompt_tokens for run in runs], dtype=np.int64),
        output_tokens=np.array([run.output_tokens for run in runs], dtype=np.int64),
        source="pdcore validate: the live requests",
    )
    network = NetworkProfile(name="measured", rtt_s=2.0 * one_way_s, bandwidth_bps=1e9, jitter_s=0.0)
    scenario = Scenario(cloud=cloud, device=device, network=network, slo=SLO(max_tpot_s=max_tpot_s))
    plans = [Plan("pd", k=run.k, min_tpot=min_tpot, max_tpot=pace_s) for run in runs]
    return scenario, workload, Replay(plans, name="pd-device-replay"), np.full(count, one_way_s)


def predict(
    runs: Sequence[LiveRun],
    *,
    device: DeviceProfile,
    cloud: CloudProfile,
    one_way_s: float,
    min_tpot: float,
    pace_s: float,
    max_tpot_s: float,
) -> dict[str, list[float]]:
    """The simulator's TTFT and gaps for the live requests (one at a time, an idle cloud each)."""
    scenario, workload, replay, delays = _replay_setup(
        runs, device=device, cloud=cloud, one_way_s=one_way_s, min_tpot=min_tpot, pace_s=pace_s,
        max_tpot_s=max_tpot_s,
    )  # fmt: skip
    result = scenario.run(workload, replay, one_way_s=delays)
    return {
        "ttft_s": [float(v) for v in result.results["ttft_s"]],
        "max_gap_s": [float(v) for v in result.results["max_gap_s"]],
        "mean_gap_s": [float(v) for v in result.results["tpot_s"]],
    }


def predict_timelines(
    runs: Sequence[LiveRun],
    *,
    device: DeviceProfile,
    cloud: CloudProfile,
    one_way_s: float,
    min_tpot: float,
    pace_s: float,
    max_tpot_s: float,
) -> list[dict[str, Any]]:
    """The simulator's token timeline of each live request, as `predict` sees it (JSON-ready, seconds
    from the request's start): ``k``, ``displays_s``, ``from_cloud``, ``cloud_arrivals_s``, ``handoff_s``
    and ``handoff_estimates`` (``[at_s, estimate_s]`` each time the estimate was set or changed)."""
    scenario, workload, replay, delays = _replay_setup(
        runs, device=device, cloud=cloud, one_way_s=one_way_s, min_tpot=min_tpot, pace_s=pace_s,
        max_tpot_s=max_tpot_s,
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


async def make_prompt(device: Device, tokens: int, *, seed: int) -> str:
    """A ChatML prompt of about ``tokens`` device tokens: an instruction and `filler_text`."""
    words = max(8, tokens * 3 // 4)
    prompt = chatml(INSTRUCTION + filler_text(words, seed=seed))
    for _ in range(3):
        count = await device.count_tokens(prompt)
        if abs(count - tokens) <= max(4, tokens // 50):
            break
        words = max(8, round(words * tokens / count))
        prompt = chatml(INSTRUCTION + filler_text(words, seed=seed))
    return prompt


async def _warm(cloud: CloudClient, prompt: str) -> None:
    """A one-token request: caches ``prompt`` on the endpoint and leaves nothing after it in its cache."""
    async for _ in cloud.stream(prompt, max_tokens=1):
        pass


async def _calibrate(
    cloud: CloudClient,
    device: Device,
    profile: DeviceProfile,
    prompt: str,
    prompt_tokens: int,
    *,
    min_events: int,
    max_events: int,
) -> CalibrationSample:
    """A cloud-only request, timed per event, while the device prefills the same prompt, timed; in the
    live session's order (the cloud request leaves first, then the device tokenizes and prefills). The
    cloud streams until the device is done (at least ``min_events`` events, at most ``max_events``): on a
    machine that hosts both, each side is timed under the load it meets in the live run."""
    stamps: list[float] = []
    device_done = asyncio.Event()

    async def stream_cloud() -> None:
        started = time.perf_counter()
        async with contextlib.aclosing(cloud.stream(prompt, max_tokens=max_events)) as events:
            async for event in events:
                if event.text:
                    stamps.append(event.at - started)
                if device_done.is_set() and len(stamps) >= min_events:
                    break

    took: list[float] = []
    streaming = asyncio.create_task(stream_cloud())
    try:
        await device.start(prompt)
        await device.prefill_prompt(on_progress=lambda _done, chunk: took.append(chunk))
        device_done.set()
        await streaming
    finally:
        if not streaming.done():
            streaming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await streaming
    if not stamps:
        raise InvalidInputError("the cloud streamed no text during calibration; fix: check the endpoint")
    return CalibrationSample(
        prompt_tokens=prompt_tokens,
        ttft_s=stamps[0],
        gaps_s=tuple(float(g) for g in np.diff(stamps)),
        device_prefill_s=sum(took),
        device_profile_s=float(profile.prefill_s(prompt_tokens)),
    )


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1e3:.0f} ms"


async def _baseline(cloud: CloudClient, device: Device, prompt: str, run: LiveRun, *, warm: bool) -> Baseline:
    if warm:
        await _warm(cloud, prompt)
    cloud_only = await Session(cloud=cloud, mode="cloud-only", k=0, max_tokens=16).complete(prompt)
    device_only = await Session(device=device, mode="device-only", k=0, max_tokens=4).complete(prompt)
    return Baseline(
        prompt_tokens=run.prompt_tokens,
        pd_ttft_s=run.ttft_s,
        pd_cloud_ttft_s=run.cloud_ttft_s,
        cloud_ttft_s=cloud_only.ttft_s,
        device_ttft_s=device_only.ttft_s,
    )


async def validate(
    *,
    cloud: CloudClient,
    device: Device,
    profile: DeviceProfile,
    requests: int = 3,
    prompt_tokens: Sequence[int] = DEFAULT_PROMPT_TOKENS,
    k: int | Literal["auto"] = "auto",
    k_margin: float = DEFAULT_K_MARGIN,
    max_extensions: int = DEFAULT_MAX_EXTENSIONS,
    max_tpot: float = DEFAULT_MAX_TPOT_S,
    min_tpot: float = 0.0,
    max_tokens: int = 200,
    warm: bool = True,
    calibration_tokens: int = 16,
    pings: int = 5,
    tolerance: float = DEFAULT_TOLERANCE,
    baselines: bool = False,
    cloud_profile: CloudProfile | None = None,
    progress: Callable[[str], None] | None = None,
) -> ValidationReport:
    """Runs the live requests and the simulator and compares them (module docstring).

    Args:
        cloud: The live endpoint.
        device: The local model, with the thread count ``profile`` was measured with.
        profile: The device's measured profile.
        requests: How many live requests.
        prompt_tokens: Prompt lengths the requests cycle through.
        k: Cloud decode tokens after the first, or ``"auto"``.
        k_margin: The session's padding of ``k="auto"`` (0 runs the bare catch-up rule).
        max_extensions: The session's continuation requests per answer (0: a fixed ``k``, as simulated).
        max_tpot: The display-gap objective.
        min_tpot: The smallest display gap.
        max_tokens: The answer length of each live request.
        warm: Cache each prompt on the cloud first (see the module docstring).
        calibration_tokens: The fewest events of a calibration's cloud request (it streams until the
            device's prefill is done, at most ``max_tokens`` events).
        pings: Round trips measured for the network delay.
        tolerance: The agreement goal on the averages.
        baselines: After each live run, also time the prompt cloud-only (after the same warm-up) and
            device-only (`Baseline`).
        cloud_profile: The endpoint's profile measured by ``pdcore profile-cloud`` (`cloud_model`); None
            fits one to the calibration requests.
        progress: Called with a line of text after each step.

    Raises:
        InvalidInputError: An argument is out of range or a live request displayed too little.
        CloudError: The cloud failed during warm-up or calibration.
    """
    _check_requests(requests, prompt_tokens)
    say = progress or (lambda _: None)
    rtts = [await cloud.ping() for _ in range(max(1, pings))]
    rtt = statistics.median(rtts)
    say(f"network: round trip {rtt * 1e3:.2f} ms (median of {len(rtts)})")
    session = Session(
        cloud=cloud,
        device=device,
        profile=profile,
        k=k,
        max_tpot=max_tpot,
        min_tpot=min_tpot,
        max_tokens=max_tokens,
        k_margin=k_margin,
        max_extensions=max_extensions,
        first_token_s=None,
        reduce_plans=False,  # the split itself is what is compared
    )
    samples: list[CalibrationSample] = []
    runs: list[LiveRun] = []
    baseline_runs: list[Baseline] = []
    for index in range(requests):
        length = prompt_tokens[index % len(prompt_tokens)]
        prompt = await make_prompt(device, length, seed=index)
        tokens = await device.count_tokens(prompt)
        if warm:
            await _warm(cloud, prompt)
        calibration_prompt = prompt if warm else await make_prompt(device, length, seed=10_000 + index)
        sample = await _calibrate(
            cloud,
            device,
            profile,
            calibration_prompt,
            tokens,
            min_events=calibration_tokens,
            max_events=max(max_tokens, calibration_tokens),
        )
        samples.append(sample)
        if warm:
            await _warm(cloud, prompt)
        session.speed_ratio = sample.device_speed_ratio
        run = LiveRun.from_timeline(await session.complete(prompt))
        runs.append(run)
        say(_request_line(index, requests, run, sample))
        if baselines:
            found = await _baseline(cloud, device, prompt, run, warm=warm)
            baseline_runs.append(found)
            say(
                f"  baselines: cloud-only TTFT {_ms(found.cloud_ttft_s)}, device-only TTFT "
                f"{_ms(found.device_ttft_s)}, P/D-Device TTFT {_ms(found.pd_ttft_s)}"
            )
    fitted, fitted_one_way = fit_cloud(samples, rtt_s=rtt, warm=warm)
    fitted, one_way = cloud_model(cloud_profile, fitted, fitted_one_way, rtt_s=rtt, warm=warm)
    replay = _Replayed(
        runs=runs, profile=profile, cloud=fitted, one_way_s=one_way, min_tpot=min_tpot,
        pace_s=session.pace_s, max_tpot_s=max_tpot,
    )  # fmt: skip
    calibrated = [sample.device_speed_ratio for sample in samples]
    measured = [
        run.timeline.device_speed_ratio if run.timeline.device_speed_ratio is not None else ratio
        for run, ratio in zip(runs, calibrated, strict=True)
    ]
    return ValidationReport(
        runs=tuple(runs),
        calibration=tuple(samples),
        rtt_s=rtt,
        cloud=fitted,
        one_way_s=one_way,
        comparisons=replay.compare(calibrated),
        tolerance=tolerance,
        warm=warm,
        max_tpot_s=max_tpot,
        pace_s=session.pace_s,
        baselines=tuple(baseline_runs),
        device_speed_ratio=statistics.median(measured),
        in_situ=replay.compare(measured),
        predicted_timelines=replay.timelines(calibrated),
    )


def _handoff(run: LiveRun) -> str:
    timeline = run.timeline
    if run.handoff_position is None or timeline.handoff_s is None:
        return "no hand-off (the cloud's tokens covered the answer)"
    return f"hand-off at token {run.handoff_position}, {timeline.handoff_s * 1e3:.0f} ms"


def _check_requests(requests: int, prompt_tokens: Sequence[int]) -> None:
    if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
        raise InvalidInputError(f"requests = {requests!r}; pass a whole number, at least 1")
    if not prompt_tokens or min(prompt_tokens) < 16:
        raise InvalidInputError(
            f"prompt_tokens = {list(prompt_tokens)!r}; pass lengths of at least 16 tokens"
        )


def _request_line(index: int, requests: int, run: LiveRun, sample: CalibrationSample) -> str:
    return (
        f"request {index + 1}/{requests}: {run.prompt_tokens} prompt tokens, k={run.k} "
        f"({run.extensions} extensions), "
        f"TTFT {run.ttft_s * 1e3:.0f} ms (cloud {sample.ttft_s * 1e3:.0f} ms alone), max gap "
        f"{run.max_gap_s * 1e3:.0f} ms ({run.max_gap_all_s * 1e3:.0f} ms with stalls), "
        f"mean gap {run.mean_gap_s * 1e3:.1f} ms, {_handoff(run)}; device "
        f"{sample.device_speed_ratio:.2f}x its profile in calibration, "
        f"{_ratio(run.timeline.device_speed_ratio)} live"
    )


@dataclass(frozen=True)
class _Replayed:
    """The live runs and what the simulator needs to replay them (`predict`)."""

    runs: Sequence[LiveRun]
    profile: DeviceProfile
    cloud: CloudProfile
    one_way_s: float
    min_tpot: float
    pace_s: float
    max_tpot_s: float

    def timelines(self, speed_ratios: Sequence[float]) -> tuple[dict[str, Any], ...]:
        """The simulator's timeline of each run (`predict_timelines`), its profile scaled by its ratio."""
        return tuple(
            predict_timelines(
                [run],
                device=scaled_profile(self.profile, ratio),
                cloud=self.cloud,
                one_way_s=self.one_way_s,
                min_tpot=self.min_tpot,
                pace_s=self.pace_s,
                max_tpot_s=self.max_tpot_s,
            )[0]
            for run, ratio in zip(self.runs, speed_ratios, strict=True)
        )

    def compare(self, speed_ratios: Sequence[float]) -> tuple[Comparison, ...]:
        """Live against predicted per metric, each run's device profile scaled by its speed ratio."""
        predicted: dict[str, list[float]] = {metric: [] for metric in METRICS}
        for run, ratio in zip(self.runs, speed_ratios, strict=True):
            one = predict(
                [run],
                device=scaled_profile(self.profile, ratio),
                cloud=self.cloud,
                one_way_s=self.one_way_s,
                min_tpot=self.min_tpot,
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
