"""``pdcore size``: the smallest cloud that serves a workload at the SLO, per policy (`pdcore.sim.sizing`).

`register` adds the command to the ``pdcore`` Typer app. The table goes to standard output, progress and
errors to standard error; ``--json`` writes the whole report atomically (`pdcore.outputs`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from pdcore import __version__
from pdcore.cli.compare import FleetOption
from pdcore.cli.fleet_report import fleet_report
from pdcore.cli.front_report import front_report
from pdcore.cli.notices import warn_overloaded
from pdcore.cli.options import (
    DEFAULT_CLOUD,
    DEFAULT_DEVICE,
    DEFAULT_NETWORK,
    CloudOption,
    DeploymentOption,
    DeviceOption,
    KSitesOption,
    LimitOption,
    MaxTpotOption,
    NetworkOption,
    RateOption,
    RateScaleOption,
    RequestsOption,
    SeedOption,
    TraceOption,
    TtftOption,
    check_outputs,
    check_workload_flags,
    max_tpot_flag,
    progress_bars,
    reported,
    stderr,
    stdout,
    workload_spec,
)
from pdcore.cli.policy_progress import PolicyProgress
from pdcore.cli.size_check import CloudCheck, check_cloud
from pdcore.cli.size_fleet import CapableSharesOption, check_fleet_flags, size_over_fleet
from pdcore.cli.size_planner import (
    DEFAULT_DEPLOYMENTS,
    DEFAULT_EXECUTOR,
    CloudsOption,
    DeploymentsOption,
    ModelFamilyOption,
    PlannerFlags,
    SizeExecutorOption,
    clouds_inputs,
    plan_sizes,
    planner_clouds,
)
from pdcore.exceptions import InvalidInputError
from pdcore.outputs import write_text
from pdcore.policies import Policy, make_policy, split_policy_specs
from pdcore.policies.base import DEFAULT_K_SITES
from pdcore.sim import Scenario
from pdcore.sim.metrics import dumps
from pdcore.sim.sizing import (
    DEFAULT_MAX_REPLICAS,
    DEFAULT_SIZING_TARGET,
    Sizing,
    size_cloud,
    whole_cloud_gain,
)
from pdcore.sim.spec import ScenarioSpec, policy_inputs
from pdcore.sim.threads import default_workers, on_threads
from pdcore.slo import DEFAULT_TTFT_SLO_S, SLO
from pdcore.traces import Workload

__all__ = ["DEFAULT_SIZE_POLICIES", "register", "size", "window_label"]

DEFAULT_SIZE_POLICIES = "cloud-only,pd-device"
WORKLOADS = {"conversation": "default", "long-answer": "long-answer"}
"""The ``--workload`` choices without ``--trace``, by the synthetic workload each draws (`WorkloadSpec`)."""


def _gain_text(gain: float | None) -> str:
    if gain is None:
        return "-"
    return "no cloud" if math.isinf(gain) else f"{gain:.2f}x"


WorkloadKindOption = Annotated[
    str,
    typer.Option(
        "--workload",
        help="Without --trace: conversation (the seeded Azure-conversation fit) or long-answer "
        "(its prompts with 1-4k-token answers).",
    ),
]
SizePoliciesOption = Annotated[
    str, typer.Option("--policies", help="Comma-separated policies, each NAME or NAME:key=value:...")
]
TargetOption = Annotated[
    float, typer.Option("--target", help="Share of requests that must meet TTFT and the largest gap.")
]
MaxReplicasOption = Annotated[int, typer.Option("--max-replicas", help="Most replicas of one pool tried.")]
SizeJsonOption = Annotated[Path | None, typer.Option("--json", help="Write the sizing report as JSON.")]


def _policies(trace: Path | None, workload_kind: str, policies: str) -> list[Policy]:
    """The policies to size, after the workload flags are checked against each other."""
    if workload_kind not in WORKLOADS:
        raise InvalidInputError(
            f"--workload {workload_kind!r} is unknown; fix: use one of {', '.join(WORKLOADS)}"
        )
    if trace is not None and workload_kind != "conversation":
        raise InvalidInputError("--workload picks a synthetic workload; fix: drop it with --trace")
    names = split_policy_specs(policies)
    if not names:
        raise InvalidInputError(
            f"--policies {policies!r} names no policy; fix: pass e.g. {DEFAULT_SIZE_POLICIES}"
        )
    return [make_policy(name) for name in names]


def _size_each(
    workload: Workload,
    chosen: list[Policy],
    scenario: Scenario,
    *,
    seed: int,
    target: float,
    max_replicas: int,
) -> dict[str, Sizing]:
    """Each policy's smallest cloud, the policies searched at once on threads, with a progress bar."""
    with progress_bars(stderr()) as progress:
        runs = PolicyProgress(progress, "sizing", len(chosen))

        def search(policy: Policy) -> Sizing:
            return size_cloud(workload, policy, scenario, seed=seed, target=target, max_replicas=max_replicas)

        workers = default_workers(len(chosen), requests=len(workload))
        sized = on_threads(search, chosen, workers=workers, started=runs.started, finished=runs.finished)
    return {policy.name: found for policy, found in zip(chosen, sized, strict=True)}


def window_label(workload: Workload, limit: int | None) -> str:
    """Which requests were sized: a different window of the same workload can need a different cloud
    (the report sizes the first requests of each workload, `pdcore.report.sizing`)."""
    which = f"the first {len(workload)}" if limit is not None else f"all {len(workload)}"
    span = workload.summary()["duration_s"]
    return f"sized on {which} requests ({span:.0f} s of arrivals)"


def _table(
    workload: Workload, found: dict[str, Sizing], gains: dict[str, float | None], limit: int | None
) -> Table:
    rate_rps = next(iter(found.values())).rate_rps
    table = Table(
        title=f"{escape(workload.name)}: {window_label(workload, limit)}, {rate_rps:.2f} req/s",
        title_justify="left",
    )
    for column in ("policy", "cloud", "GPUs", "attainment", "one fewer", "goodput/GPU", "gain"):
        table.add_column(column)
    for name, s in found.items():
        fewer = ", ".join(f"{c} {a:.1%}" for c, a in s.fewer.items()) or "-"
        table.add_row(
            escape(name),
            s.cloud if s.bound == "found" else s.bound,
            "-" if s.gpus is None else str(s.gpus),
            f"{s.attainment:.1%}",
            fewer,
            "-" if s.goodput_per_gpu_rps is None else f"{s.goodput_per_gpu_rps:.2f}",
            _gain_text(gains[name]),
        )
    return table


def _unattainable_note(s: Sizing, slo: SLO, max_replicas: int) -> str:
    """The notice of a policy no cloud of up to ``max_replicas`` serves at the SLO: why, and the fix."""
    each = "" if s.deployment == "colocated" else " per pool"
    fix = "relax --max-tpot or --ttft-slo, or lower --target"
    if s.reason.startswith("the largest tried"):
        fix += ", or raise --max-replicas"
    elif s.reason.startswith("the policy sends no work"):
        fix += ", or size a policy that uses the cloud"
    return (
        f"{s.policy}: no cloud of up to {max_replicas} replicas{each} meets TTFT <= {slo.ttft_s:g} s and "
        f"every gap <= {slo.max_tpot_s * 1e3:g} ms for {s.target:.0%} of the requests; {s.reason}; fix: {fix}"
    )


SIZE_FIX = (
    "raise --max-replicas, lower --rate-scale, or relax --ttft-slo, --max-tpot or --target; the figures "
    "above were measured on a queue that kept growing"
)
"""The fix for a workload that outruns even the cloud ``size`` ran it on."""


def _check_each(
    workload: Workload,
    chosen: list[Policy],
    found: dict[str, Sizing],
    scenario: Scenario,
    *,
    seed: int,
    max_replicas: int,
) -> dict[str, CloudCheck]:
    """Each policy's run on the cloud it was given (`pdcore.cli.size_check`: the search's, or one more on
    threads where the search did not run that cloud) and how busy it was; one overload notice for those
    whose delays grew without bound."""

    def checked_on(policy: Policy) -> tuple[str, CloudCheck | None]:
        sized = found[policy.name]
        return policy.name, check_cloud(
            workload, policy, sized, scenario, seed=seed, max_replicas=max_replicas
        )

    workers = default_workers(len(chosen), requests=len(workload))
    checked = on_threads(checked_on, chosen, workers=workers)
    checks = {name: done for name, done in checked if done is not None}
    console = stdout()
    for check in checks.values():
        console.print(escape(check.line()), soft_wrap=True)
    reports = {f"{name} on {check.cloud}": check.report for name, check in checks.items()}
    warn_overloaded(reports, scenario.cloud.name, cloud_fix=SIZE_FIX)
    return checks


def size(
    *,
    trace: TraceOption = None,
    workload_kind: WorkloadKindOption = "conversation",
    policies: SizePoliciesOption = DEFAULT_SIZE_POLICIES,
    device: DeviceOption = DEFAULT_DEVICE,
    cloud: CloudOption = DEFAULT_CLOUD,
    deployment: DeploymentOption = "disaggregated",
    k_sites: KSitesOption = DEFAULT_K_SITES,
    network: NetworkOption = DEFAULT_NETWORK,
    rate_scale: RateScaleOption = 1.0,
    limit: LimitOption = None,
    seed: SeedOption = 0,
    requests: RequestsOption = None,
    rate: RateOption = None,
    ttft_slo: TtftOption = DEFAULT_TTFT_SLO_S,
    max_tpot: MaxTpotOption = None,
    target: TargetOption = DEFAULT_SIZING_TARGET,
    max_replicas: MaxReplicasOption = DEFAULT_MAX_REPLICAS,
    json_out: SizeJsonOption = None,
    model_family: ModelFamilyOption = None,
    clouds: CloudsOption = None,
    deployments: DeploymentsOption = DEFAULT_DEPLOYMENTS,
    executor: SizeExecutorOption = DEFAULT_EXECUTOR,
    fleet: FleetOption = None,
    capable_shares: CapableSharesOption = None,
) -> None:
    """Find the smallest cloud (GPUs) that meets the SLO for each policy, and the whole-cloud gain.

    With --model-family or --clouds: size every cloud profile, deployment and policy, with GPUs, $ per
    month, TTFT p90, per-user tokens/s and each policy's Pareto front. With --fleet: GPUs and $ per month
    over the fleet, and the GPUs saved as the share of capable devices goes from 0 to 100%.
    """
    with reported():
        chosen = _policies(trace, workload_kind, policies)
        check_workload_flags(requests=requests, rate=rate, limit=limit, rate_scale=rate_scale, seed=seed)
        scenario_spec = ScenarioSpec(
            device=device,
            cloud=cloud,
            network=network,
            deployment=deployment,
            ttft_slo_s=ttft_slo,
            max_tpot_s=max_tpot_flag(max_tpot, None),
            k_sites=k_sites,
            fleet=fleet,
        )
        planner: dict[str, Any] = {"model_family": model_family, "clouds": clouds, "deployments": deployments}
        shares = check_fleet_flags(fleet, capable_shares, executor=executor, **planner)
        workload_named = workload_spec(
            trace,
            seed=seed,
            requests=requests,
            rate=rate,
            limit=limit,
            rate_scale=rate_scale,
            synthetic=WORKLOADS[workload_kind],
        )
        flags = PlannerFlags(model_family, clouds, deployments, DEFAULT_EXECUTOR if fleet else executor)
        searched = planner_clouds(flags, cloud=cloud, deployment=deployment)
        inputs = workload_named.inputs() | scenario_spec.inputs() | policy_inputs(policies)
        if searched is not None:
            inputs |= clouds_inputs(searched[0])
        check_outputs({"--json": json_out}, inputs)
        scenario = scenario_spec.build() if searched is None else None
        workload = workload_named.load()
        settings = {"seed": seed, "target": target, "max_replicas": max_replicas}
        run: dict[str, Any] = {
            "executor": executor,
            "window": window_label(workload, limit),
            "settings": settings,
        }
        if scenario is not None and shares is not None:
            size_over_fleet(workload, scenario, policies, shares, json_out=json_out, **run)
        elif scenario is not None:
            _size_one(workload, chosen, scenario, limit, settings, json_out)
        elif searched is not None:
            plan_sizes(workload, scenario_spec, searched, policies, json_out=json_out, **run)


def _size_one(
    workload: Workload,
    chosen: list[Policy],
    scenario: Scenario,
    limit: int | None,
    settings: dict[str, Any],
    json_out: Path | None,
) -> None:
    """The sizing of one cloud profile and deployment: the table, the notices, the check and the JSON."""
    seed, target, max_replicas = settings["seed"], settings["target"], settings["max_replicas"]
    started = time.perf_counter()
    found = _size_each(workload, chosen, scenario, seed=seed, target=target, max_replicas=max_replicas)
    baseline = found.get("cloud-only")
    gains = {name: whole_cloud_gain(baseline, s) if baseline else None for name, s in found.items()}
    console = stdout()
    console.print(_table(workload, found, gains, limit))
    for sized in found.values():
        if sized.bound == "unattainable":
            note = _unattainable_note(sized, scenario.slo, max_replicas)
            stderr().print(f"[yellow]note:[/yellow] {escape(note)}", soft_wrap=True)
    checks = _check_each(workload, chosen, found, scenario, seed=seed, max_replicas=max_replicas)
    document: dict[str, Any] = {
        "pdcore_version": __version__,
        "workload": workload.describe(),
        "config": scenario.describe() | {"seed": seed, "target": target, "max_replicas": max_replicas},
        "sizing": {name: s.describe() for name, s in found.items()},
        "whole_cloud_gain": {name: None if g is None or math.isinf(g) else g for name, g in gains.items()},
        "cloud_check": {name: check.describe() for name, check in checks.items()},
    }
    if json_out is not None:
        write_text(json_out, dumps(document))
    console.print(
        f"sized {len(found)} policies in {time.perf_counter() - started:.1f} s"
        + (f"; wrote {escape(str(json_out))}" if json_out is not None else ""),
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Adds the ``size`` command, ``fleet-report`` (`pdcore.cli.fleet_report`) and ``front-report``
    (`pdcore.cli.front_report`), to ``app``."""
    app.command("size")(size)
    app.command("fleet-report")(fleet_report)
    app.command("front-report")(front_report)
