"""The headline experiments of ``pdcore reproduce``: which simulations run, and the numbers they yield.

Per workload (the embedded default and every trace given), on the P/D-disaggregated cloud:

- **trace rate**: every policy on the whole workload at its own arrival rate, with both capacity searches
  (`capacity_rps`, `decode_capacity_rps`, on the first ``window`` requests);
- **at cloud-only capacity**: every policy on the capacity window replayed at the rate where cloud-only
  is at its capacity (its SLO attainment still meets the target, and requests already queue). When
  cloud-only meets the SLO at no rate (long prompts whose lone prefill exceeds the TTFT objective), the
  rate where its prefill pool is 80% busy stands in, and the report says so;
- **capacity over the TPOT SLO**: both searches for cloud-only and P/D-Device at each TPOT objective;
- **sensitivity**: P/D-Device against device-only and cloud-only over a range of round-trip times (the
  preset's bandwidth and jitter kept) and over the shipped device profiles;
- **growth**: cloud work and capacity of P/D-Device over cloud-only with longer answers, a faster device
  and prompt refinement;
- the display timeline of one representative request (`pick_timeline_request`) under P/D-Device, and of
  the same request under the naive split;
- for the explorer of ``report.html``: the timelines of a few requests (`explored_requests`: the
  representative one, the slowest first tokens, the largest display gaps and hand-off stalls under
  P/D-Device) under each of `EXPLORED_POLICIES`.

Independent of the workload: the optimizer's ``k*`` over prompt length for every shipped device profile
(`Optimizer.table`) and its analytic-against-grid check (`grid_check`).

Every simulation runs through `run_sweep`, in two waves (the second needs cloud-only's capacity).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from pdcore.optimize import Optimizer
from pdcore.policies import POLICIES as REGISTERED
from pdcore.policies.base import DEFAULT_K_SITES
from pdcore.profiles import list_device_profiles, load_cloud_profile, load_device_profile, network_preset
from pdcore.sim.grid import grid_check
from pdcore.sim.sweep import SweepResult, SweepTask, WorkloadSpec, run_sweep
from pdcore.slo import SLACK_S, SLO, meets, within
from pdcore.traces import Workload

__all__ = [
    "DECODE_CAPACITY_TARGET",
    "EXPLORED_PER_FILTER",
    "EXPLORED_POLICIES",
    "EXPLORED_SAMPLE",
    "FASTER_DEVICE",
    "POLICIES",
    "TTFT_CUT_TARGET",
    "WHAT_IF",
    "Settings",
    "StageProgress",
    "WorkloadRun",
    "collect",
    "explored_requests",
    "fill_sections",
    "multiple",
    "optimizer_section",
    "targets_section",
]

POLICIES = tuple(REGISTERED)
"""The policies of the main table, in its order: every registered policy (`pdcore.policies.POLICIES`), the
rival strategies after pdcore's own."""

FASTER_DEVICE = "llama32-1b-w4a16-8elite-genie"
"""The growth experiment's faster device: the same phone running the 1B model (about 2.4x the prefill)."""

GRID_DEVICES = (
    "llama32-3b-w4a16-8elite-genie",
    "llama32-1b-w4a16-8elite-genie",
    "llama32-3b-w4a16-xelite-genie",
)
"""Device profiles of the analytic-against-grid check (the NPU profiles; the CPU ones need k in the
thousands, which makes the grid long)."""

GRID_PROMPTS = (128, 256, 512, 1024, 2048, 4096)
"""Prompt lengths of the grid check."""

WHAT_IF: dict[str, dict[str, Any]] = {
    "2 decode replicas": {"decode_replicas": 2},
    "H100 cloud": {"cloud": "llama3-8b-h100"},
}
"""Cloud-side changes the report tries when the largest display gap misses its target."""

EXPLORED_POLICIES = ("pd-device", "naive-split", "cloud-only")
"""The policies whose timelines the explorer of ``report.html`` shows side by side."""

EXPLORED_PER_FILTER = 4
"""Requests the explorer embeds per filter (slowest TTFT, largest gap, largest hand-off stall)."""

EXPLORED_SAMPLE = 6
"""Requests the explorer embeds evenly spaced over the workload, first and last included."""

UTILISATION_FALLBACK = 0.8
"""Prefill-pool utilisation of the loaded operating point when cloud-only has no capacity."""

StageProgress = Callable[[str, int, int], None]
"""Called with (stage, done, total) as simulations finish."""


@dataclass(frozen=True)
class Settings:
    """What `collect` runs; `Settings.full` and `Settings.quick` are the two presets.

    Attributes:
        device: The device profile of the headline experiments.
        cloud: The cloud profile.
        network: The network preset.
        deployment: The cloud deployment.
        k_sites: Where a disaggregated cloud lets P/D-Device's ``k`` tokens be decoded.
        seed: Seed of the synthetic workload and the network delays.
        quick: Whether this is the quick preset.
        synthetic_requests: Requests of the embedded default workload.
        trace_limit: Requests kept of each trace (None: all).
        window: Requests per capacity probe, and of the loaded operating point.
        target: Attainment a rate must reach in a capacity search.
        slo: The objectives.
        tpot_grid_s: TPOT objectives of the capacity-over-SLO sweep.
        rtt_grid_s: Round-trip times of the RTT sweep.
        devices: Device profiles of the device sweep.
        output_scales: Answer-length multipliers of the growth experiment.
        refine_ratio: Refinement ratio the growth experiment allows.
        prompt_lengths: Prompt lengths of the ``k*`` table.
        quality: The measured refinement curve to report (a shipped name or a .toml path; None: none).
        explore: Requests (by index) whose timelines the explorer of ``report.html`` embeds besides
            those it picks (`explored_requests`), in every workload that has them.
    """

    device: str
    cloud: str
    network: str
    deployment: str = "disaggregated"
    k_sites: str = DEFAULT_K_SITES
    seed: int = 0
    quick: bool = False
    synthetic_requests: int = 2000
    trace_limit: int | None = None
    window: int = 1000
    target: float = 0.9
    slo: SLO = field(default_factory=SLO)
    tpot_grid_s: tuple[float, ...] = (0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.1)
    rtt_grid_s: tuple[float, ...] = (0.001, 0.01, 0.02, 0.04, 0.07, 0.1, 0.15, 0.2, 0.3)
    devices: tuple[str, ...] = ()
    output_scales: tuple[float, ...] = (2.0, 4.0)
    refine_ratio: float = 0.5
    prompt_lengths: tuple[int, ...] = tuple(sorted({round(16 * 2 ** (step / 2)) for step in range(19)}))
    quality: str | None = None
    explore: tuple[int, ...] = ()

    @classmethod
    def full(
        cls, *, device: str, cloud: str, network: str, seed: int = 0, quality: str | None = None
    ) -> Settings:
        """The full preset: every sweep point, capacity windows of 1000 requests."""
        return cls(
            device=device,
            cloud=cloud,
            network=network,
            seed=seed,
            devices=tuple(list_device_profiles()),
            quality=quality,
        )

    @classmethod
    def quick_preset(
        cls, *, device: str, cloud: str, network: str, seed: int = 0, quality: str | None = None
    ) -> Settings:
        """The quick preset: a small default workload, 300-request windows, three points per sweep."""
        devices = tuple(dict.fromkeys((device, FASTER_DEVICE)))
        return cls(
            device=device,
            cloud=cloud,
            network=network,
            seed=seed,
            quick=True,
            synthetic_requests=400,
            trace_limit=2000,
            window=300,
            tpot_grid_s=(0.03, 0.05, 0.1),
            rtt_grid_s=(0.001, 0.02, 0.1),
            devices=devices,
            output_scales=(4.0,),
            prompt_lengths=(64, 256, 1024, 4096),
            quality=quality,
        )

    def describe(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict."""
        return {
            "device_profile": self.device,
            "cloud_profile": self.cloud,
            "network": self.network,
            "deployment": self.deployment,
            "k_sites": self.k_sites,
            "seed": self.seed,
            "quick": self.quick,
            "synthetic_requests": self.synthetic_requests,
            "trace_limit": self.trace_limit,
            "capacity": {"window": self.window, "target": self.target},
            "slo": {"ttft_s": self.slo.ttft_s, "max_tpot_s": self.slo.max_tpot_s},
            "tpot_grid_s": list(self.tpot_grid_s),
            "rtt_grid_s": list(self.rtt_grid_s),
            "devices": list(self.devices),
            "output_scales": list(self.output_scales),
            "refine_ratio": self.refine_ratio,
            "quality_curve": self.quality,
            "explore": list(self.explore),
            "policies": list(POLICIES),
        }


@dataclass
class WorkloadRun:
    """Everything measured on one workload: JSON-ready sections plus the arrays the plots need.

    Attributes:
        key: The workload's key in the report.
        spec: The workload reference.
        workload: The workload itself (for its summary).
        sections: JSON-ready results by section name.
        ttft_s: Per-request TTFT by operating point (``"trace_rate"``, ``"under_load"``) and policy.
        timelines: Recorded timelines by policy (``pd-device``, ``naive-split``).
        explored: The timelines the explorer of ``report.html`` embeds, by request and policy.
        explored_reasons: Why each explored request was picked.
        explored_filters: Explored request ids by filter name, in the order shown.
    """

    key: str
    spec: WorkloadSpec
    workload: Workload
    sections: dict[str, Any] = field(default_factory=dict)
    ttft_s: dict[str, dict[str, npt.NDArray[np.float64]]] = field(default_factory=dict)
    timelines: dict[str, dict[str, Any]] = field(default_factory=dict)
    explored: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)
    explored_reasons: dict[int, list[str]] = field(default_factory=dict)
    explored_filters: dict[str, list[int]] = field(default_factory=dict)


def _task(settings: Settings, spec: WorkloadSpec, policy: str, tag: str, **changes: Any) -> SweepTask:
    base = SweepTask(
        workload=spec,
        policy=policy,
        device=settings.device,
        cloud=settings.cloud,
        network=settings.network,
        deployment=settings.deployment,
        k_sites=settings.k_sites,
        seed=settings.seed,
        ttft_slo_s=settings.slo.ttft_s,
        max_tpot_s=settings.slo.max_tpot_s,
        capacity_window=settings.window,
        capacity_target=settings.target,
        tag=tag,
    )
    return replace(base, **changes)


_BOTH = ("capacity", "decode_capacity")


def _first_wave(settings: Settings, run: WorkloadRun) -> list[SweepTask]:
    spec, key = run.spec, run.key
    tasks = [
        _task(
            settings,
            spec,
            policy,
            f"{key}|main|{policy}",
            compute=("aggregate", *_BOTH, *(("timeline",) if policy == "pd-device" else ())),
            columns=("ttft_s", "max_gap_s", "handoff_gap_s", "served_by", "cloud_tpot_s", "k_site"),
        )
        for policy in POLICIES
    ]
    for tpot in settings.tpot_grid_s:
        for policy in ("cloud-only", "pd-device"):
            tasks.append(
                _task(settings, spec, policy, f"{key}|slo|{policy}|{tpot!r}", compute=_BOTH, max_tpot_s=tpot)
            )
    for rtt in settings.rtt_grid_s:
        for policy in ("cloud-only", "pd-device"):
            tasks.append(_task(settings, spec, policy, f"{key}|rtt|{policy}|{rtt!r}", rtt_s=rtt))
    for device in settings.devices:
        for policy in ("device-only", "pd-device"):
            tasks.append(_task(settings, spec, policy, f"{key}|device|{policy}|{device}", device=device))
    growth = ("aggregate", *_BOTH)
    for scale in settings.output_scales:
        longer = replace(spec, output_scale=scale)
        for policy in ("cloud-only", "pd-device"):
            tasks.append(_task(settings, longer, policy, f"{key}|growth|{policy}|x{scale!r}", compute=growth))
    tasks.append(
        _task(
            settings,
            spec,
            "pd-device",
            f"{key}|growth|pd-device|faster",
            compute=growth,
            device=FASTER_DEVICE,
        )
    )
    refined = f"pd-device:refine_ratio={settings.refine_ratio:g}"
    tasks.append(_task(settings, spec, refined, f"{key}|growth|pd-device|refine", compute=growth))
    if settings.deployment == "disaggregated" and settings.k_sites != "pool":
        tasks.append(
            _task(
                settings,
                spec,
                "pd-device",
                f"{key}|gap|pd-device|pool",
                k_sites="pool",
                columns=("ttft_s", "max_gap_s", "handoff_gap_s", "served_by", "cloud_tpot_s"),
            )
        )
    for name, changes in WHAT_IF.items():
        for policy in ("cloud-only", "pd-device"):
            tasks.append(_task(settings, spec, policy, f"{key}|whatif|{policy}|{name}", **changes))
    return tasks


def _mean_prefill_s(workload: Workload, settings: Settings) -> float:
    cloud = load_cloud_profile(settings.cloud)
    prompts, counts = np.unique(workload.prompt_tokens, return_counts=True)
    total = sum(cloud.cost.lone_prefill_s(int(p)) * int(c) for p, c in zip(prompts, counts, strict=True))
    return float(total / len(workload))


def _load_point(settings: Settings, run: WorkloadRun, cloud_only: SweepResult) -> dict[str, Any]:
    """The loaded operating point: cloud-only's capacity rate, or the 80%-busy prefill pool."""
    found = cloud_only.capacity
    window = run.workload.limit(settings.window)
    base_rps = len(window) / float(window.arrival_s[-1])
    if found is not None and found.rps is not None and found.rps > 0.0:
        rate, basis = found.rps, "cloud-only capacity"
    else:
        rate = UTILISATION_FALLBACK / _mean_prefill_s(window, settings)
        basis = (
            f"cloud-only prefill pool {UTILISATION_FALLBACK:.0%} busy (cloud-only meets the SLO at no rate)"
        )
    return {"rate_rps": rate, "rate_scale": rate / base_rps, "requests": len(window), "basis": basis}


def explored_requests(
    columns: Mapping[str, npt.NDArray[Any]],
    max_tpot_s: float,
    representative: int | None,
    count: int,
    *,
    given: Sequence[int] = (),
    sample: int = 0,
) -> dict[str, list[int]]:
    """The requests the explorer embeds, by filter: the ``given`` ones (those in range), the
    representative one, then under P/D-Device the ``count`` slowest first tokens, largest display gaps and
    largest hand-off stalls (the hand-off gap beyond ``max_tpot_s``; requests without a stall are not
    listed), worst first, lower index on a tie; and ``sample`` requests evenly spaced over the workload."""

    def worst(values: npt.NDArray[np.float64]) -> list[int]:
        order = np.lexsort((np.arange(values.size), -np.nan_to_num(values, nan=-np.inf)))
        return [int(i) for i in order[:count] if np.isfinite(values[i])]

    ttft = np.asarray(columns["ttft_s"], dtype=np.float64)
    gap = np.asarray(columns["max_gap_s"], dtype=np.float64)
    handoff = np.asarray(columns["handoff_gap_s"], dtype=np.float64)
    stall = np.where(np.isfinite(handoff) & ~within(handoff, max_tpot_s), handoff - max_tpot_s, np.nan)
    size = ttft.size
    filters = {"given by id (--explore)": [int(i) for i in dict.fromkeys(given) if 0 <= i < size]}
    if representative is not None:
        filters["representative (median lengths)"] = [representative]
    filters["slowest TTFT (pd-device)"] = worst(ttft)
    filters["largest display gap (pd-device)"] = worst(gap)
    filters["hand-off stalls (pd-device)"] = worst(stall)
    if sample > 0 and size > 0:
        filters["evenly spaced sample"] = sorted(
            {int(i) for i in np.linspace(0, size - 1, min(sample, size))}
        )
    return {name: ids for name, ids in filters.items() if ids}


def _explore_tasks(
    settings: Settings, run: WorkloadRun, filters: Mapping[str, Sequence[int]]
) -> list[SweepTask]:
    """One run per explored policy, recording the timelines of every explored request at once."""
    requests = sorted({request for ids in filters.values() for request in ids})
    if not requests:
        return []
    return [
        _task(
            settings,
            run.spec,
            policy,
            f"{run.key}|explore|{policy}",
            compute=("timeline",),
            timeline_request=requests[0],
            timeline_requests=tuple(requests[1:]),
        )
        for policy in EXPLORED_POLICIES
    ]


def _second_wave(
    settings: Settings, run: WorkloadRun, point: Mapping[str, Any], request: int | None
) -> list[SweepTask]:
    window = replace(run.spec, limit=min(run.spec.limit or settings.window, settings.window))
    tasks = [
        _task(
            settings,
            window,
            policy,
            f"{run.key}|load|{policy}",
            rate_scale=point["rate_scale"],
            columns=("ttft_s",),
        )
        for policy in POLICIES
    ]
    if request is not None:
        tasks.append(
            _task(
                settings,
                run.spec,
                "naive-split",
                f"{run.key}|timeline|naive-split",
                compute=("timeline",),
                timeline_request=request,
            )
        )
    return tasks


def _sweep(
    tasks: Sequence[SweepTask],
    stage: str,
    executor: str,
    workers: int | None,
    ray_address: str | None,
    progress: StageProgress | None,
) -> dict[str, SweepResult]:
    def step(done: int, total: int, task: SweepTask) -> None:
        if progress is not None:
            progress(stage, done, total)

    if progress is not None:
        progress(stage, 0, len(tasks))
    results = run_sweep(tasks, executor=executor, workers=workers, progress=step, ray_address=ray_address)
    return {result.task.tag: result for result in results}


def collect(
    runs: Sequence[WorkloadRun],
    settings: Settings,
    *,
    executor: str = "process",
    workers: int | None = None,
    ray_address: str | None = None,
    progress: StageProgress | None = None,
) -> None:
    """Runs every simulation of every workload and fills in each `WorkloadRun`."""
    first = _sweep(
        [task for run in runs for task in _first_wave(settings, run)],
        "simulations",
        executor,
        workers,
        ray_address,
        progress,
    )
    points: dict[str, dict[str, Any]] = {}
    second_tasks: list[SweepTask] = []
    for run in runs:
        main_pd = first[f"{run.key}|main|pd-device"]
        request = None if main_pd.timeline is None else int(main_pd.timeline["request"])
        points[run.key] = _load_point(settings, run, first[f"{run.key}|main|cloud-only"])
        second_tasks += _second_wave(settings, run, points[run.key], request)
        run.explored_filters = explored_requests(
            main_pd.columns,
            settings.slo.max_tpot_s,
            request,
            EXPLORED_PER_FILTER,
            given=settings.explore,
            sample=EXPLORED_SAMPLE,
        )
        second_tasks += _explore_tasks(settings, run, run.explored_filters)
    second = _sweep(second_tasks, "at cloud-only capacity", executor, workers, ray_address, progress)
    results = first | second
    for run in runs:
        fill_sections(run, settings, results, points[run.key])


def optimizer_section(settings: Settings) -> dict[str, Any]:
    """``k*`` over prompt length per shipped device profile, and the analytic-against-grid check."""
    cloud = load_cloud_profile(settings.cloud)
    network = network_preset(settings.network)
    k_star: dict[str, list[dict[str, Any]]] = {}
    for name in list_device_profiles():
        optimizer = Optimizer(device=load_device_profile(name), cloud=cloud, slo=settings.slo)
        choices = optimizer.table(settings.prompt_lengths, one_way_s=network.rtt_s / 2.0)
        k_star[name] = [
            {
                "prompt_tokens": length,
                "mode": choice.mode,
                "k": choice.k,
                "converged": choice.converged,
                "first_token_s": choice.first_token_s,
                "device_ready_s": choice.device_ready_s,
            }
            for length, choice in zip(settings.prompt_lengths, choices, strict=True)
        ]
    checks: dict[str, dict[str, Any]] = {}
    grid_devices = dict.fromkeys((settings.device, *GRID_DEVICES[: 1 if settings.quick else None]))
    for name in grid_devices:
        device = load_device_profile(name)
        points = grid_check(
            GRID_PROMPTS[::2] if settings.quick else GRID_PROMPTS,
            device=device,
            cloud=cloud,
            network=network,
            slo=settings.slo,
            deployment=settings.deployment,
        )
        checks[name] = {
            "device_tpot_s": max(device.decode_tpot),
            "points": [
                {
                    "prompt_tokens": point.prompt_tokens,
                    "k_analytic": point.k_analytic,
                    "k_grid": point.k_grid,
                    "cost_analytic_gpu_s": point.cost_analytic_gpu_s,
                    "cost_grid_gpu_s": point.cost_grid_gpu_s,
                    "cost_ratio": point.cost_ratio if math.isfinite(point.cost_ratio) else None,
                    "analytic_max_gap_s": point.analytic_max_gap_s,
                }
                for point in points
            ],
        }
    return {
        "one_way_s": network.rtt_s / 2.0,
        "k_star": k_star,
        "grid_check": checks,
        "grid_check_output_tokens": 1024,
    }


def _cut(value: float | None, reference: float | None) -> float | None:
    """How much lower ``value`` is than ``reference``, as a fraction of it."""
    if value is None or reference is None or reference <= 0.0:
        return None
    return 1.0 - value / reference


def _cuts(summary: Mapping[str, Any], reference: Mapping[str, Any]) -> dict[str, float | None]:
    return {key: _cut(summary[key], reference[key]) for key in ("mean", "p50", "p99")}


def multiple(found: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    """A capacity as a multiple of a baseline's: ``value`` and ``relation`` (``=``, ``>``, ``<``, or
    ``n/a`` when the baseline has no finite positive capacity)."""
    if base["bound"] != "found" or not base["rps"]:
        return {"value": None, "relation": "n/a"}
    reference = float(base["rps"])
    if found["bound"] == "above_max":
        return {"value": float(found["max_rps_tried"]) / reference, "relation": ">"}
    if found["bound"] == "below_min":
        return {"value": float(found["min_rps_tried"]) / reference, "relation": "<"}
    return {"value": float(found["rps"]) / reference, "relation": "="}


def _capacity(result: SweepResult) -> dict[str, Any]:
    """Both searches of a task, each with its probes as (rate, attainment) pairs sorted by rate."""
    out: dict[str, Any] = {}
    for key, found in (("capacity", result.capacity), ("decode_capacity", result.decode_capacity)):
        if found is not None:
            out[key] = found.describe() | {
                "attainment_at_base": found.probes[0][1],
                "probe_points": [list(point) for point in sorted(found.probes)],
            }
    return out


def _aggregate(result: SweepResult) -> dict[str, Any]:
    if result.aggregate is None:
        raise AssertionError(f"task {result.task.tag!r} computed no aggregate")
    return result.aggregate


def _table(
    light: Mapping[str, Mapping[str, Any]],
    loaded: Mapping[str, Mapping[str, Any]],
    capacity: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for policy in POLICIES:
        report, under = light[policy], loaded[policy]
        rows[policy] = {
            "ttft_s": {key: report["ttft_s"][key] for key in ("mean", "p50", "p99")},
            "load_ttft_s": {key: under["ttft_s"][key] for key in ("mean", "p50", "p99")},
            "ttft_cut_vs_device_only": _cuts(report["ttft_s"], light["device-only"]["ttft_s"]),
            "load_ttft_cut_vs_cloud_only": _cuts(under["ttft_s"], loaded["cloud-only"]["ttft_s"]),
            "max_gap_p99_s": report["max_gap_s"]["p99"],
            "load_max_gap_p99_s": under["max_gap_s"]["p99"],
            "qoe_mean": report["qoe"]["mean"],
            "gpu_s_per_request": report["cloud_gpu_s_per_request"],
            "capacity_rps": capacity[policy]["capacity"]["rps"],
            "capacity_x": multiple(capacity[policy]["capacity"], capacity["cloud-only"]["capacity"]),
            "decode_capacity_rps": capacity[policy]["decode_capacity"]["rps"],
            "decode_capacity_x": multiple(
                capacity[policy]["decode_capacity"], capacity["cloud-only"]["decode_capacity"]
            ),
        }
    return rows


def _gap_by_design(bridged: SweepResult, pool_only: SweepResult, settings: Settings) -> dict[str, Any]:
    """P/D-Device with both sites offered (the bridge at the first token) against the decode pool only."""
    sites = np.asarray(bridged.columns["k_site"])
    decoded = max(int((sites != "none").sum()), 1)
    shares = {site: float((sites == site).sum() / decoded) for site in ("pool", "prefill", "bridge")}
    alone = _aggregate(pool_only)
    return {
        "k_sites": settings.k_sites,
        "sites": shares,
        "pool_only": {
            "ttft_s": alone["ttft_s"],
            "max_gap_s": alone["max_gap_s"],
            "causes": _gap_causes(pool_only, settings),
        },
    }


def _gap_causes(result: SweepResult, settings: Settings) -> dict[str, Any]:
    """Which part of the display exceeds the TPOT SLO in the requests whose largest gap does."""
    columns = result.columns
    gap = columns["max_gap_s"]
    handoff = columns["handoff_gap_s"]
    served = columns["served_by"]
    over = ~within(gap, settings.slo.max_tpot_s)
    at_handoff = over & np.isfinite(handoff) & (handoff >= gap - SLACK_S)
    device = load_device_profile(result.task.device)
    device_slow = max(device.decode_tpot) > settings.slo.max_tpot_s
    on_device = over & ~at_handoff & (served == "device")
    in_stream = over & ~at_handoff & ~on_device
    count = max(int(over.sum()), 1)
    return {
        "requests_over": float(over.mean()),
        "handoff": float(at_handoff.sum() / count),
        "device_decode": float(on_device.sum() / count),
        "cloud_stream": float(in_stream.sum() / count),
        "device_tpot_above_slo": device_slow,
        "cloud_tpot_p99_s": _aggregate(result)["cloud_tpot_s"]["p99"],
    }


def _ttft(result: SweepResult) -> npt.NDArray[np.float64]:
    return np.asarray(result.columns["ttft_s"], dtype=np.float64)


def _timeline_summary(timeline: Mapping[str, Any]) -> dict[str, Any]:
    displays = np.asarray(timeline["displays_s"], dtype=np.float64)
    from_cloud = np.asarray(timeline["from_cloud"], dtype=np.bool_)
    gaps = np.diff(displays)
    return {
        "request": timeline["request"],
        "prompt_tokens": timeline["prompt_tokens"],
        "output_tokens": timeline["output_tokens"],
        "one_way_s": timeline["one_way_s"],
        "mode": timeline["mode"],
        "k": timeline["k"],
        "handoff_s": timeline["handoff_s"],
        "first_display_s": float(displays[0]) if displays.size else None,
        "cloud_tokens_received": len(timeline["cloud_arrivals_s"]),
        "displayed_from_cloud": int(from_cloud.sum()),
        "max_gap_s": float(gaps.max()) if gaps.size else 0.0,
    }


@dataclass(frozen=True)
class _Found:
    """The sweep results of one workload, looked up by the parts of their task key."""

    key: str
    results: Mapping[str, SweepResult]

    def __call__(self, *parts: str) -> SweepResult:
        return self.results["|".join((self.key, *parts))]

    def has(self, *parts: str) -> bool:
        return "|".join((self.key, *parts)) in self.results

    def report(self, *parts: str) -> dict[str, Any]:
        return _aggregate(self(*parts))


def fill_sections(
    run: WorkloadRun, settings: Settings, results: Mapping[str, SweepResult], point: Mapping[str, Any]
) -> None:
    """Reduces the sweep results of one workload to its report sections and plot arrays."""
    get = _Found(run.key, results)
    light = {policy: get.report("main", policy) for policy in POLICIES}
    loaded = {policy: get.report("load", policy) for policy in POLICIES}
    capacity = {policy: _capacity(get("main", policy)) for policy in POLICIES}
    run.sections = {
        "workload": run.workload.describe(),
        "trace_rate": {"rate_scale": 1.0, "policies": light},
        "under_load": dict(point) | {"policies": loaded},
        "capacity": capacity,
        "table": _table(light, loaded, capacity),
        "max_gap_causes": _gap_causes(get("main", "pd-device"), settings),
    }
    if get.has("gap", "pd-device", "pool"):
        run.sections["gap_by_design"] = _gap_by_design(
            get("main", "pd-device"), get("gap", "pd-device", "pool"), settings
        )
    run.ttft_s = {
        "trace_rate": {policy: _ttft(get("main", policy)) for policy in POLICIES},
        "under_load": {policy: _ttft(get("load", policy)) for policy in POLICIES},
    }
    timelines = {"pd-device": get("main", "pd-device").timeline}
    if get.has("timeline", "naive-split"):
        timelines["naive-split"] = get("timeline", "naive-split").timeline
    run.timelines = {policy: dict(found) for policy, found in timelines.items() if found is not None}
    run.sections["timeline"] = {policy: _timeline_summary(found) for policy, found in run.timelines.items()}
    _fill_explored(run, get)
    run.sections["slo_sweep"] = _slo_rows(get, settings)
    run.sections["rtt_sweep"] = _rtt_rows(get, settings, device_only=light["device-only"])
    run.sections["device_sweep"] = _device_rows(get, settings, cloud_only=light["cloud-only"])
    run.sections["growth"] = _growth_rows(get, settings, point, loaded)
    run.sections["what_if"] = _what_if_rows(get)


def _fill_explored(run: WorkloadRun, get: _Found) -> None:
    """The explorer's timelines, by request and policy, and why each request is there."""
    run.explored = {}
    run.explored_reasons = {}
    for name, ids in run.explored_filters.items():
        for request in ids:
            run.explored_reasons.setdefault(request, []).append(name)
            if request not in run.explored:
                run.explored[request] = {
                    policy: dict(get("explore", policy).timelines[request]) for policy in EXPLORED_POLICIES
                }


def _slo_rows(get: _Found, settings: Settings) -> list[dict[str, Any]]:
    """Capacity of cloud-only and P/D-Device at each objective of the sweep."""
    rows = []
    for tpot in settings.tpot_grid_s:
        row: dict[str, Any] = {"max_tpot_s": tpot}
        cloud_only = _capacity(get("slo", "cloud-only", repr(tpot)))
        pd = _capacity(get("slo", "pd-device", repr(tpot)))
        for name, found in (("cloud-only", cloud_only), ("pd-device", pd)):
            row[name] = found
        row["capacity_x"] = multiple(pd["capacity"], cloud_only["capacity"])
        row["decode_capacity_x"] = multiple(pd["decode_capacity"], cloud_only["decode_capacity"])
        rows.append(row)
    return rows


def _rtt_rows(get: _Found, settings: Settings, *, device_only: Mapping[str, Any]) -> list[dict[str, Any]]:
    """P/D-Device against both sides alone at each round-trip time of the sweep."""
    rows = []
    for rtt in settings.rtt_grid_s:
        pd_report = get.report("rtt", "pd-device", repr(rtt))
        cloud_report = get.report("rtt", "cloud-only", repr(rtt))
        rows.append(
            {
                "rtt_s": rtt,
                "pd_ttft_s": {k: pd_report["ttft_s"][k] for k in ("mean", "p50", "p99")},
                "ttft_cut_vs_device_only": _cuts(pd_report["ttft_s"], device_only["ttft_s"]),
                "ttft_cut_vs_cloud_only": _cuts(pd_report["ttft_s"], cloud_report["ttft_s"]),
                "cloud_decode_tokens_per_request": pd_report["cloud_decode_tokens_per_request"],
                "gpu_s_per_request": pd_report["cloud_gpu_s_per_request"]["total"],
                "max_gap_p99_s": pd_report["max_gap_s"]["p99"],
            }
        )
    return rows


def _device_rows(get: _Found, settings: Settings, *, cloud_only: Mapping[str, Any]) -> list[dict[str, Any]]:
    """P/D-Device and the device alone on each device profile, slowest prefill last."""
    rows = []
    for name in settings.devices:
        profile = load_device_profile(name)
        pd_report = get.report("device", "pd-device", name)
        alone = get.report("device", "device-only", name)
        rows.append(
            {
                "device": name,
                "prefill_1k_s": profile.prefill_s(1024),
                "decode_tpot_s": profile.decode_tpot_s(1024),
                "pd_ttft_s": {k: pd_report["ttft_s"][k] for k in ("mean", "p50", "p99")},
                "device_only_ttft_s": {k: alone["ttft_s"][k] for k in ("mean", "p50", "p99")},
                "ttft_cut_vs_device_only": _cuts(pd_report["ttft_s"], alone["ttft_s"]),
                "ttft_cut_vs_cloud_only": _cuts(pd_report["ttft_s"], cloud_only["ttft_s"]),
                "cloud_decode_tokens_per_request": pd_report["cloud_decode_tokens_per_request"],
                "gpu_s_per_request": pd_report["cloud_gpu_s_per_request"]["total"],
                "max_gap_p99_s": pd_report["max_gap_s"]["p99"],
            }
        )
    return sorted(rows, key=lambda row: (row["prefill_1k_s"], row["device"]))


def _growth_rows(
    get: _Found, settings: Settings, point: Mapping[str, Any], loaded: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Cloud work of P/D-Device against cloud-only as the load, the answers and the device change."""
    base_cloud = get("main", "cloud-only")
    base_pd = get("main", "pd-device")
    cases: list[tuple[str, SweepResult, SweepResult]] = [("as measured", base_cloud, base_pd)]
    for scale in settings.output_scales:
        cases.append(
            (
                f"answers x{scale:g}",
                get("growth", "cloud-only", f"x{scale!r}"),
                get("growth", "pd-device", f"x{scale!r}"),
            )
        )
    cases.append((f"faster device ({FASTER_DEVICE})", base_cloud, get("growth", "pd-device", "faster")))
    cases.append(
        (
            f"refinement allowed (r = {settings.refine_ratio:g})",
            base_cloud,
            get("growth", "pd-device", "refine"),
        )
    )
    rows = [
        _growth_row(label, _aggregate(cloud), _aggregate(pd), _capacity(cloud), _capacity(pd))
        for label, cloud, pd in cases
    ]
    rows.insert(
        1,
        _growth_row(
            f"at cloud-only capacity ({point['rate_rps']:.2f} req/s)",
            loaded["cloud-only"],
            loaded["pd-device"],
        ),
    )
    return rows


def _what_if_rows(get: _Found) -> list[dict[str, Any]]:
    """P/D-Device and cloud-only under each what-if change of the setup."""
    rows = []
    for name in WHAT_IF:
        pd_report = get.report("whatif", "pd-device", name)
        cloud_report = get.report("whatif", "cloud-only", name)
        rows.append(
            {
                "change": name,
                "pd_max_gap_p99_s": pd_report["max_gap_s"]["p99"],
                "cloud_only_max_gap_p99_s": cloud_report["max_gap_s"]["p99"],
                "pd_gap_slo_attainment": pd_report["gap_slo_attainment"],
                "pd_ttft_p50_s": pd_report["ttft_s"]["p50"],
                "pd_gpu_s_per_request": pd_report["cloud_gpu_s_per_request"]["total"],
            }
        )
    return rows


def _growth_row(
    label: str,
    cloud: Mapping[str, Any],
    pd: Mapping[str, Any],
    cloud_cap: Mapping[str, Any] | None = None,
    pd_cap: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    cloud_gpu = cloud["cloud_gpu_s_per_request"]
    pd_gpu = pd["cloud_gpu_s_per_request"]
    none = {"value": None, "relation": "n/a"}
    return {
        "case": label,
        "cloud_only_gpu_s": cloud_gpu,
        "pd_gpu_s": pd_gpu,
        "prefill_share": cloud_gpu["prefill"] / cloud_gpu["total"] if cloud_gpu["total"] > 0 else None,
        "work_x": cloud_gpu["total"] / pd_gpu["total"] if pd_gpu["total"] > 0 else None,
        "work_bound_x": cloud_gpu["total"] / cloud_gpu["prefill"] if cloud_gpu["prefill"] > 0 else None,
        "pd_device_alone": pd["served_by"]["device"],
        "capacity_x": none
        if cloud_cap is None or pd_cap is None
        else multiple(pd_cap["capacity"], cloud_cap["capacity"]),
        "decode_capacity_x": none
        if cloud_cap is None or pd_cap is None
        else multiple(pd_cap["decode_capacity"], cloud_cap["decode_capacity"]),
        "pd_ttft_p50_s": pd["ttft_s"]["p50"],
        "pd_max_gap_p99_s": pd["max_gap_s"]["p99"],
    }


TTFT_CUT_TARGET = 0.6
"""P/D-Device's TTFT at least 60% below device-only's (the paper's claim)."""

DECODE_CAPACITY_TARGET = 10.0
"""Decode-pool capacity at least 10x cloud-only's."""


def _at_least(found: Mapping[str, Any], target: float) -> bool:
    value = found["value"]
    return value is not None and found["relation"] in {"=", ">"} and value >= target


def targets_section(run: WorkloadRun, settings: Settings, *, stand_in: bool) -> dict[str, Any]:
    """The issue's targets checked on one workload (the Azure conversation trace, or its stand-in)."""
    table = run.sections["table"]
    pd, cloud = table["pd-device"], table["cloud-only"]
    cut = pd["ttft_cut_vs_device_only"]
    gap = pd["max_gap_p99_s"]
    cloud_gpu = cloud["gpu_s_per_request"]
    pd_gpu = pd["gpu_s_per_request"]
    return {
        "workload": run.key,
        "stand_in": stand_in,
        "ttft_cut_vs_device_only": dict(cut)
        | {
            "target": TTFT_CUT_TARGET,
            "met": all(cut[key] is not None and cut[key] >= TTFT_CUT_TARGET for key in ("mean", "p50")),
        },
        "max_gap_p99": {
            "value_s": gap,
            "target_s": settings.slo.max_tpot_s,
            "met": gap is not None and meets(gap, settings.slo.max_tpot_s),
            "cloud_only_value_s": cloud["max_gap_p99_s"],
            "causes": run.sections["max_gap_causes"],
            "what_if": run.sections["what_if"],
        },
        "decode_capacity_x": dict(pd["decode_capacity_x"])
        | {
            "target": DECODE_CAPACITY_TARGET,
            "met": _at_least(pd["decode_capacity_x"], DECODE_CAPACITY_TARGET),
        },
        "whole_cloud": {
            "capacity_x": pd["capacity_x"],
            "cloud_only_gpu_s": cloud_gpu,
            "pd_gpu_s": pd_gpu,
            "work_x": cloud_gpu["total"] / pd_gpu["total"] if pd_gpu["total"] > 0 else None,
            "prefill_share": cloud_gpu["prefill"] / cloud_gpu["total"] if cloud_gpu["total"] > 0 else None,
            "work_bound_x": cloud_gpu["total"] / cloud_gpu["prefill"] if cloud_gpu["prefill"] > 0 else None,
            "served_by": run.sections["trace_rate"]["policies"]["pd-device"]["served_by"],
            "device_only_window_attainment": run.sections["capacity"]["device-only"]["capacity"][
                "attainment_at_base"
            ],
            "target": settings.target,
        },
    }
