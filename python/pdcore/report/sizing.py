"""The report's sizing section: GPUs needed at the SLO, per policy, over request rate and conditions.

Every figure comes from `pdcore.sim.sizing.size_cloud` (DistServe's placement search with pdcore's
simulator) on the first ``window`` requests of a workload, replayed at several rates.

- ``curves``: per workload, GPUs needed by each variant at 1x, 2x, ... its own rate (the plot).
- ``conditions``: where the whole-cloud gain is largest: cloud-only's GPUs over P/D-Device's at one rate,
  per workload (answer length), device class and refinement, beside the bound the gain cannot pass.

The bound (ours): P/D-Device still prefills every prompt in the cloud, so the cloud it needs is at least
the prefill share of cloud-only's; with ``s`` the share of cloud-only's GPU-seconds spent in prefill, the
whole-cloud gain is at most about ``1 / s``. A prefill-bound workload (short answers, long prompts: ``s``
near 1) cannot show the paper's "up to 15x" cloud throughput whatever the device; long answers can. The
bound is on GPU-seconds; GPU counts move in whole replicas, so at small scale they can sit on either side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pdcore.policies import make_policy
from pdcore.policies.base import DEFAULT_K_SITES
from pdcore.profiles import DeviceProfile
from pdcore.sim.scenario import Scenario
from pdcore.sim.sizing import Sizing, size_cloud, whole_cloud_gain
from pdcore.sim.spec import WorkloadSpec
from pdcore.traces import Workload

__all__ = ["VARIANTS", "Variant", "conditions_rows", "sizing_curves", "sizing_section"]


@dataclass(frozen=True)
class Variant:
    """One line of the plot: a policy spec and where the cloud lets the ``k`` tokens be decoded."""

    label: str
    policy: str
    k_sites: str = DEFAULT_K_SITES


VARIANTS = (
    Variant("cloud-only", "cloud-only"),
    Variant("pd-device", "pd-device"),
    Variant("pd-device, decode pool only", "pd-device", "pool"),
)
"""The variants sized over request rate."""

FULL_SCALES = (1.0, 2.0, 4.0, 8.0, 16.0)
QUICK_SCALES = (1.0, 4.0)
CONDITION_SCALE = 4.0
"""The rate multiple of the conditions table (four times the conversation trace is ~22 req/s)."""

LONG_ANSWER_RATE_RPS = 1.0
"""Base rate of the long-answer workload (its answers are ~12x the conversation trace's)."""

Progress = Callable[[str, int, int], None]


def _point(s: Sizing) -> dict[str, Any]:
    return {
        "rate_rps": s.rate_rps,
        "gpus": s.gpus,
        "cloud": s.cloud if s.bound == "found" else None,
        "attainment": s.attainment,
        "bound": s.bound,
        "goodput_per_gpu_rps": s.goodput_per_gpu_rps,
    }


def sizing_curves(
    workload: Workload,
    scenario: Scenario,
    *,
    scales: Sequence[float],
    seed: int,
    target: float,
    tick: Callable[[], None] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """GPUs needed per variant at each rate multiple of ``workload``, in ``scenario`` with the variant's
    ``k`` sites."""
    out: dict[str, list[dict[str, Any]]] = {}
    for variant in VARIANTS:
        sized = scenario.replace(k_sites=variant.k_sites)
        points = []
        for scale in scales:
            found = size_cloud(
                workload.scaled(scale), make_policy(variant.policy), sized, seed=seed, target=target
            )
            points.append(_point(found))
            if tick is not None:
                tick()
        out[variant.label] = points
    return out


def _prefill_share(workload: Workload, scenario: Scenario, seed: int) -> float:
    """The share of cloud-only's cloud GPU-seconds spent in prefill, on ``workload`` as given."""
    result = scenario.run(workload, make_policy("cloud-only"), seed=seed)
    prefill = float(np.sum(result.results["cloud_prefill_gpu_s"]))
    decode = float(np.sum(result.results["cloud_decode_gpu_s"]))
    return prefill / (prefill + decode) if prefill + decode > 0 else 1.0


def conditions_rows(
    workloads: Mapping[str, Workload],
    scenario: Scenario,
    *,
    devices: Mapping[str, DeviceProfile],
    ratios: Sequence[float | str],
    seed: int,
    target: float,
    tick: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """Cloud-only's and P/D-Device's GPUs at `CONDITION_SCALE` times each workload's rate, in ``scenario``
    with each of ``devices`` (by the label of its rows) and each refinement ratio, with the gain and its
    bound (module docstring)."""
    rows: list[dict[str, Any]] = []
    for key, workload in workloads.items():
        loaded = workload.scaled(CONDITION_SCALE)
        for device, profile in devices.items():
            on_device = scenario.replace(device=profile)
            base = size_cloud(loaded, make_policy("cloud-only"), on_device, seed=seed, target=target)
            share = _prefill_share(loaded, on_device, seed)
            for ratio in ratios:
                spec = "pd-device" if ratio == 1.0 else f"pd-device:refine_ratio={ratio}"
                pd = size_cloud(loaded, make_policy(spec), on_device, seed=seed, target=target)
                gain = whole_cloud_gain(base, pd)
                rows.append(
                    {
                        "workload": key,
                        "mean_output_tokens": float(np.mean(workload.output_tokens)),
                        "device": device,
                        "refine_ratio": ratio,
                        "rate_rps": base.rate_rps,
                        "cloud_only_gpus": base.gpus,
                        "pd_device_gpus": pd.gpus,
                        "gain": None if gain is None or gain == float("inf") else gain,
                        "prefill_share": share,
                        "gain_bound": 1.0 / share if share > 0 else None,
                    }
                )
                if tick is not None:
                    tick()
    return rows


def sizing_section(
    workloads: Mapping[str, Workload],
    scenario: Scenario,
    *,
    devices: Mapping[str, DeviceProfile],
    seed: int,
    window: int,
    target: float,
    quick: bool,
    refine_ratio: float,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The report's ``sizing`` object: curves on every workload (and the long-answer one) in ``scenario``,
    and the conditions table over ``devices`` (by label: the scenario's own first, the quick preset keeps
    only that one) (module docstring)."""
    cut = {key: w.limit(window) for key, w in workloads.items()}
    cut["synthetic-long-answer"] = WorkloadSpec(
        synthetic="long-answer",
        seed=seed,
        requests=min(window, 300 if quick else 1000),
        rate_rps=LONG_ANSWER_RATE_RPS,
    ).load()
    scales = QUICK_SCALES if quick else FULL_SCALES
    if quick:
        devices = dict(list(devices.items())[:1])
    ratios: tuple[float | str, ...] = (1.0,) if quick else (1.0, refine_ratio)
    total = len(cut) * len(VARIANTS) * len(scales) + len(cut) * len(devices) * len(ratios)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress("sizing", done, total)

    curves = {
        key: sizing_curves(w, scenario, scales=scales, seed=seed, target=target, tick=tick)
        for key, w in cut.items()
    }
    rows = conditions_rows(cut, scenario, devices=devices, ratios=ratios, seed=seed, target=target, tick=tick)
    return {
        "target": target,
        "window": window,
        "scales": list(scales),
        "condition_scale": CONDITION_SCALE,
        "curves": curves,
        "conditions": rows,
    }
