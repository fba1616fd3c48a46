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
- the live run's own ``k``, output length and pacing settings (``max_tpot_s - pacing_margin_s``);
- the **device's step spread measured in the calibration** (`calibration_spread`): each calibration's
  prefill calls against the profile's prices at that calibration's speed ratio, as the live hand-off
  estimator measures its spread, so the simulated device strays from its prices as the live one does and
  the simulated hand-off guard covers the same spread as the live one (the in-situ diagnostic uses the
  spread the live session learned instead; the report names both).

No input of the prediction is read off the live runs. Compared per request and on average: the TTFT,
the largest display gap and the mean display gap. The largest gap leaves out the stalls of either
side's own stream (`GapRecord.stall`): a cloud token that arrived more than ``max_tpot_s`` after the
previous display (``"cloud-late"``: the network or the cloud stalled), and a device token decoded more
than ``max_tpot_s`` after the previous one once the device has taken over (``"device-late"`` after the
hand-off position: the device's own decode stalled). The simulator's cloud and device step at their
fitted mean speeds and never stall, so it cannot predict those, and no pacing can hide them; what it
predicts, and what is compared, is everything the runtime decides: the paced gaps and the hand-off gap
(a device that is not ready when the buffer runs out). The stalls are reported beside the comparison
(``max_gap_all_s``, the largest gap with them, which `passed` does not use). The goal is agreement
within ``tolerance`` (15%) on the averages, each error taken against an absolute floor (`Comparison.error`):
``|predicted - live| / max(live, floor)`` with the floor at the gap objective ``max_tpot_s``. A TTFT of 10 ms
predicted at 13 ms is 30% off by ratio but one twentieth of a display gap in time, which no user can tell
apart; against the floor it counts 6%. Values above the floor are judged by plain relative error. (The
rule is ours.) As a diagnostic, the comparison is repeated with the profile
scaled by the device's speed measured in each live run instead (`ValidationReport.in_situ`), which
separates the device's speed from errors of the simulator's logic.

Conversations (``turns`` above 1, ``pdcore validate --turns N``): each request becomes a conversation of
``turns`` turns on a device that keeps conversations, calibrated once on its first turn, and the simulator
replays each conversation with its session cache; compared per turn are the TTFT (the same rule and floor)
and the device's cached tokens (`pdcore.runtime.validate_turns`, `pdcore.runtime.turn_prediction`).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Literal

from pdcore.deprecation import accepts_renamed_keywords
from pdcore.exceptions import InvalidInputError
from pdcore.profiles.cloud import CloudProfile
from pdcore.profiles.device import DeviceProfile
from pdcore.runtime.calibration import INSTRUCTION, calibrate, make_prompt, warm_up
from pdcore.runtime.cloud import CloudClient
from pdcore.runtime.device import Device
from pdcore.runtime.prediction import (
    calibration_spread,
    cloud_model,
    compare_live,
    fit_cloud,
    predict,
    predict_timelines,
    scaled_profile,
)
from pdcore.runtime.session import DEFAULT_K_MARGIN, DEFAULT_MAX_EXTENSIONS, DEFAULT_MAX_TPOT_S, Session
from pdcore.runtime.validate_turns import check_conversation_settings, check_turns, validate_conversations
from pdcore.runtime.validation_report import (
    DEFAULT_TOLERANCE,
    METRICS,
    Baseline,
    CalibrationSample,
    Comparison,
    LiveRun,
    TurnComparison,
    ValidationReport,
)

__all__ = [
    "DEFAULT_PROMPT_TOKENS",
    "DEFAULT_TOLERANCE",
    "INSTRUCTION",
    "METRICS",
    "Baseline",
    "CalibrationSample",
    "Comparison",
    "LiveRun",
    "TurnComparison",
    "ValidationReport",
    "calibration_spread",
    "check_turns",
    "cloud_model",
    "fit_cloud",
    "make_prompt",
    "predict",
    "predict_timelines",
    "scaled_profile",
    "validate",
]

DEFAULT_PROMPT_TOKENS = (256, 512, 1024)
"""Prompt lengths the requests cycle through by default."""


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1e3:.0f} ms"


async def _baseline(cloud: CloudClient, device: Device, prompt: str, run: LiveRun, *, warm: bool) -> Baseline:
    if warm:
        await warm_up(cloud, prompt)
    cloud_only = await Session(cloud=cloud, mode="cloud-only", k=0, max_tokens=16).complete(prompt)
    device_only = await Session(device=device, mode="device-only", k=0, max_tokens=4).complete(prompt)
    return Baseline(
        prompt_tokens=run.prompt_tokens,
        pd_ttft_s=run.ttft_s,
        pd_cloud_ttft_s=run.cloud_ttft_s,
        cloud_ttft_s=cloud_only.ttft_s,
        device_ttft_s=device_only.ttft_s,
    )


@accepts_renamed_keywords
async def validate(
    *,
    cloud: CloudClient,
    device: Device,
    device_profile: DeviceProfile,
    requests: int = 3,
    prompt_tokens: Sequence[int] = DEFAULT_PROMPT_TOKENS,
    k: int | Literal["auto"] = "auto",
    k_margin: float = DEFAULT_K_MARGIN,
    max_extensions: int = DEFAULT_MAX_EXTENSIONS,
    max_tpot_s: float = DEFAULT_MAX_TPOT_S,
    min_tpot_s: float = 0.0,
    max_tokens: int = 200,
    warm: bool = True,
    calibration_tokens: int = 16,
    pings: int = 5,
    tolerance: float = DEFAULT_TOLERANCE,
    baselines: bool = False,
    cloud_profile: CloudProfile | None = None,
    progress: Callable[[str], None] | None = None,
    turns: int = 1,
) -> ValidationReport:
    """Runs the live requests and the simulator and compares them (module docstring).

    Args:
        cloud: The live endpoint.
        device: The local model, with the thread count ``device_profile`` was measured with.
        device_profile: The device's measured profile (``profile=``: its deprecated name).
        requests: How many live requests.
        prompt_tokens: Prompt lengths the requests cycle through.
        k: Cloud decode tokens after the first, or ``"auto"``.
        k_margin: The session's padding of ``k="auto"`` (0 runs the bare catch-up rule).
        max_extensions: The session's continuation requests per answer (0: a fixed ``k``, as simulated).
        max_tpot_s: The display-gap objective (``max_tpot=``: its deprecated name).
        min_tpot_s: The smallest display gap (``min_tpot=``: its deprecated name).
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
        turns: Turns per request: 1 runs single requests; more makes each request a conversation of
            ``turns`` turns, compared per turn (`pdcore.runtime.validate_turns`: the device must keep
            conversations, ``warm`` be on and ``baselines`` off; the report's ``per_turn``).

    Raises:
        InvalidInputError: An argument is out of range or a live request displayed too little.
        CloudError: The cloud failed during warm-up or calibration.
    """
    _check_requests(requests, prompt_tokens)
    check_conversation_settings(turns, device, warm=warm, baselines=baselines)
    say = progress or (lambda _: None)
    rtts = [await cloud.ping() for _ in range(max(1, pings))]
    rtt = statistics.median(rtts)
    say(f"network: round trip {rtt * 1e3:.2f} ms (median of {len(rtts)})")
    session = Session(
        cloud=cloud, device=device, device_profile=device_profile, k=k, max_tpot_s=max_tpot_s,
        min_tpot_s=min_tpot_s, max_tokens=max_tokens, k_margin=k_margin, max_extensions=max_extensions,
        first_token_s=None, reduce_plans=False,  # the split itself is what is compared
    )  # fmt: skip
    max_events = max(max_tokens, calibration_tokens)
    if turns > 1:
        return await validate_conversations(
            cloud=cloud, device=device, session=session, conversations=requests, prompt_tokens=prompt_tokens,
            turns=turns, min_events=calibration_tokens, max_events=max_events, rtt_s=rtt,
            cloud_profile=cloud_profile, tolerance=tolerance, say=say,
        )  # fmt: skip
    samples, runs, baseline_runs = await _requests(
        cloud, device, session, requests=requests, prompt_tokens=prompt_tokens, warm=warm,
        baselines=baselines, min_events=calibration_tokens, max_events=max_events, say=say,
    )  # fmt: skip
    return compare_live(
        samples, runs, baseline_runs, rtt_s=rtt, warm=warm, cloud_profile=cloud_profile, session=session,
        tolerance=tolerance,
    )  # fmt: skip


async def _requests(
    cloud: CloudClient,
    device: Device,
    session: Session,
    *,
    requests: int,
    prompt_tokens: Sequence[int],
    warm: bool,
    baselines: bool,
    min_events: int,
    max_events: int,
    say: Callable[[str], None],
) -> tuple[list[CalibrationSample], list[LiveRun], list[Baseline]]:
    """The single live requests, each warmed up, calibrated and run (`_one_request`), with its baselines
    when asked for."""
    samples: list[CalibrationSample] = []
    runs: list[LiveRun] = []
    baseline_runs: list[Baseline] = []
    for index in range(requests):
        prompt, sample, run = await _one_request(
            cloud, device, session, length=prompt_tokens[index % len(prompt_tokens)], seed=index, warm=warm,
            min_events=min_events, max_events=max_events,
        )  # fmt: skip
        samples.append(sample)
        runs.append(run)
        say(_request_line(index, requests, run, sample))
        if baselines:
            baseline_runs.append(await _baseline(cloud, device, prompt, run, warm=warm))
            say(_baseline_line(baseline_runs[-1]))
    return samples, runs, baseline_runs


async def _one_request(
    cloud: CloudClient,
    device: Device,
    session: Session,
    *,
    length: int,
    seed: int,
    warm: bool,
    min_events: int,
    max_events: int,
) -> tuple[str, CalibrationSample, LiveRun]:
    """One prompt of about ``length`` tokens: warmed up, calibrated, then run live (module docstring)."""
    prompt = await make_prompt(device, length, seed=seed)
    tokens = await device.count_tokens(prompt)
    if warm:
        await warm_up(cloud, prompt)
    calibration_prompt = prompt if warm else await make_prompt(device, length, seed=10_000 + seed)
    assert session.profile is not None
    sample = await calibrate(
        cloud,
        device,
        session.profile,
        calibration_prompt,
        tokens,
        min_events=min_events,
        max_events=max_events,
    )
    if warm:
        await warm_up(cloud, prompt)
    session.speed_ratio = sample.device_speed_ratio
    return prompt, sample, LiveRun.from_timeline(await session.complete(prompt))


def _baseline_line(found: Baseline) -> str:
    return (
        f"  baselines: cloud-only TTFT {_ms(found.cloud_ttft_s)}, device-only TTFT "
        f"{_ms(found.device_ttft_s)}, P/D-Device TTFT {_ms(found.pd_ttft_s)}"
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
