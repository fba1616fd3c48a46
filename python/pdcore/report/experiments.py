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

Every simulation runs through `run_sweep`, in two waves (the second needs cloud-only's capacity); each task
carries the headline environment (`Settings.scenario_spec`) with what its experiment changes, and tasks of a
wave that run the same setting run once (`pdcore.report.shared_runs`). The settings
and records are in `pdcore.report.study`, the reduction of the results to the report's numbers in
`pdcore.report.reductions`, the optimizer's section in `pdcore.report.optimizer` and the targets in
`pdcore.report.targets`; this module re-exports their names where they were first published.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from pdcore.report.optimizer import GRID_DEVICES, GRID_PROMPTS, optimizer_section
from pdcore.report.reductions import fill_sections, multiple
from pdcore.report.shared_runs import merge, split
from pdcore.report.study import (
    EXPLORED_PER_FILTER,
    EXPLORED_POLICIES,
    EXPLORED_SAMPLE,
    FASTER_DEVICE,
    POLICIES,
    WHAT_IF,
    Settings,
    StageProgress,
    Study,
    WorkloadRun,
)
from pdcore.report.targets import DECODE_CAPACITY_TARGET, TTFT_CUT_TARGET, targets_section
from pdcore.sim.scenario import Scenario
from pdcore.sim.sweep import SweepResult, SweepTask, WorkloadSpec, run_sweep
from pdcore.slo import within_objective
from pdcore.traces import Workload

__all__ = [
    "DECODE_CAPACITY_TARGET",
    "EXPLORED_PER_FILTER",
    "EXPLORED_POLICIES",
    "EXPLORED_SAMPLE",
    "FASTER_DEVICE",
    "GRID_DEVICES",
    "GRID_PROMPTS",
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

UTILISATION_FALLBACK = 0.8
"""Prefill-pool utilisation of the loaded operating point when cloud-only has no capacity."""

_BOTH = ("capacity", "decode_capacity")


def _task(
    settings: Settings,
    workload: WorkloadSpec,
    policy: str,
    tag: str,
    *,
    environment: Mapping[str, Any] | None = None,
    **run: Any,
) -> SweepTask:
    """One task of the study: the headline environment with the ``environment`` changes of its experiment,
    ``run`` the task's own settings (what to compute)."""
    return SweepTask(
        workload=workload,
        policy=policy,
        environment=settings.scenario_spec().replace(**(environment or {})),
        seed=settings.seed,
        capacity_window=settings.window,
        capacity_target=settings.target,
        tag=tag,
        **run,
    )


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
            tag = f"{key}|slo|{policy}|{tpot!r}"
            tasks.append(_task(settings, spec, policy, tag, environment={"max_tpot_s": tpot}, compute=_BOTH))
    for rtt in settings.rtt_grid_s:
        for policy in ("cloud-only", "pd-device"):
            tasks.append(
                _task(settings, spec, policy, f"{key}|rtt|{policy}|{rtt!r}", environment={"rtt_s": rtt})
            )
    for device in settings.devices:
        for policy in ("device-only", "pd-device"):
            tag = f"{key}|device|{policy}|{device}"
            tasks.append(_task(settings, spec, policy, tag, environment={"device": device}))
    tasks += _growth_tasks(settings, run)
    if settings.deployment == "disaggregated" and settings.k_sites != "pool":
        tasks.append(
            _task(
                settings,
                spec,
                "pd-device",
                f"{key}|gap|pd-device|pool",
                environment={"k_sites": "pool"},
                columns=("ttft_s", "max_gap_s", "handoff_gap_s", "served_by", "cloud_tpot_s"),
            )
        )
    for name, changes in WHAT_IF.items():
        for policy in ("cloud-only", "pd-device"):
            tasks.append(_task(settings, spec, policy, f"{key}|whatif|{policy}|{name}", environment=changes))
    return tasks


def _growth_tasks(settings: Settings, run: WorkloadRun) -> list[SweepTask]:
    """Cloud-only and P/D-Device with longer answers, P/D-Device on the faster device and with refinement."""
    spec, key = run.spec, run.key
    growth = ("aggregate", *_BOTH)
    tasks = []
    for scale in settings.output_scales:
        longer = spec.replace(output_scale=scale)
        for policy in ("cloud-only", "pd-device"):
            tasks.append(_task(settings, longer, policy, f"{key}|growth|{policy}|x{scale!r}", compute=growth))
    faster = {"device": FASTER_DEVICE}
    tag = f"{key}|growth|pd-device|faster"
    tasks.append(_task(settings, spec, "pd-device", tag, environment=faster, compute=growth))
    refined = f"pd-device:refine_ratio={settings.refine_ratio:g}"
    tasks.append(_task(settings, spec, refined, f"{key}|growth|pd-device|refine", compute=growth))
    return tasks


def _mean_prefill_s(workload: Workload, scenario: Scenario) -> float:
    prompts, counts = np.unique(workload.prompt_tokens, return_counts=True)
    cost = scenario.cloud.cost
    total = sum(cost.lone_prefill_s(int(p)) * int(c) for p, c in zip(prompts, counts, strict=True))
    return float(total / len(workload))


def _load_point(study: Study, run: WorkloadRun, cloud_only: SweepResult) -> dict[str, Any]:
    """The loaded operating point: cloud-only's capacity rate, or the 80%-busy prefill pool."""
    found = cloud_only.capacity
    window = run.workload.limit(study.settings.window)
    base_rps = len(window) / float(window.arrival_s[-1])
    if found is not None and found.rps is not None and found.rps > 0.0:
        rate, basis = found.rps, "cloud-only capacity"
    else:
        rate = UTILISATION_FALLBACK / _mean_prefill_s(window, study.scenario)
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
    stall = np.where(
        np.isfinite(handoff) & ~within_objective(handoff, max_tpot_s), handoff - max_tpot_s, np.nan
    )
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
    window = run.spec.replace(limit=min(run.spec.limit or settings.window, settings.window))
    loaded = window.replace(rate_scale=point["rate_scale"])
    tasks = [
        _task(settings, loaded, policy, f"{run.key}|load|{policy}", columns=("ttft_s",))
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
    study: Study,
    executor: str,
    workers: int | None,
    ray_address: str | None,
) -> dict[str, SweepResult]:
    def step(done: int, total: int, task: SweepTask) -> None:
        study.stage(stage, done, total)

    distinct, of_tag = merge(tasks)
    study.stage(stage, 0, len(distinct))
    results = run_sweep(distinct, executor=executor, workers=workers, progress=step, ray_address=ray_address)
    return split(tasks, results, of_tag)


def collect(
    study: Study,
    *,
    executor: str = "process",
    workers: int | None = None,
    ray_address: str | None = None,
) -> None:
    """Runs every simulation of every workload of the study and fills in each `WorkloadRun`."""
    settings = study.settings
    first_tasks = [task for run in study.runs for task in _first_wave(settings, run)]
    first = _sweep(first_tasks, "simulations", study, executor, workers, ray_address)
    points: dict[str, dict[str, Any]] = {}
    second_tasks: list[SweepTask] = []
    for run in study.runs:
        main_pd = first[f"{run.key}|main|pd-device"]
        request = None if main_pd.timeline is None else int(main_pd.timeline["request"])
        points[run.key] = _load_point(study, run, first[f"{run.key}|main|cloud-only"])
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
    second = _sweep(second_tasks, "at cloud-only capacity", study, executor, workers, ray_address)
    results = first | second
    for run in study.runs:
        fill_sections(run, study, results, points[run.key])
