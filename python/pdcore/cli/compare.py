"""``pdcore compare`` and ``pdcore simulate``: policies on one workload, side by side or one in detail.

Both run with no input file: without ``--trace`` the workload is the seeded synthetic default
(`pdcore.traces.synthetic_default`). Their flags become one run specification (`pdcore.sim.spec`): the
environment is built once, the workload loaded once, and every policy runs on both.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import Progress

from pdcore.cli.fleet_table import class_table, has_classes
from pdcore.cli.notices import warn_overloaded
from pdcore.cli.options import (
    DEFAULT_CLOUD,
    DEFAULT_DEVICE,
    DEFAULT_NETWORK,
    CloudModelOption,
    CloudOption,
    CostWeightOption,
    DecodeOption,
    DeploymentOption,
    DeviceOption,
    EnergyWeightOption,
    KSitesOption,
    LimitOption,
    MaxTpotOption,
    MultiTurnOption,
    NetworkOption,
    OldMaxTpotOption,
    OversizeOption,
    PrefillOption,
    RateOption,
    RateScaleOption,
    ReplicasOption,
    RequestsOption,
    SeedOption,
    TraceOption,
    TtftOption,
    check_outputs,
    progress_bars,
    reported,
    stderr,
    stdout,
)
from pdcore.cli.policy_progress import PolicyProgress
from pdcore.cli.run import SCHEMA_VERSION, Run, flags_run_spec
from pdcore.cli.tables import capacity_table, policy_table, turn_table, write_csv
from pdcore.exceptions import InvalidInputError
from pdcore.limits import MAX_REQUESTS, check_int
from pdcore.outputs import write_text
from pdcore.policies import POLICIES, Policy, make_policy, split_policy_specs
from pdcore.policies.base import DEFAULT_K_SITES
from pdcore.sim import (
    DEFAULT_TARGET,
    DEFAULT_WINDOW,
    capacity_rps,
    decode_capacity_rps,
    dumps,
)
from pdcore.sim.runner import policy_reports
from pdcore.sim.spec import policy_inputs
from pdcore.slo import DEFAULT_TTFT_SLO_S

__all__ = ["DEFAULT_POLICIES", "SCHEMA_VERSION", "busy_line", "compare", "register", "simulate"]

DEFAULT_POLICIES = tuple(POLICIES)
"""Every registered policy, pdcore's own and the rival strategies."""
_EVERY_POLICY = ",".join(DEFAULT_POLICIES)

PoliciesOption = Annotated[
    str, typer.Option("--policies", help="Comma-separated policies, each NAME or NAME:key=value:...")
]
CapacityOption = Annotated[
    bool, typer.Option("--capacity", help="Also search capacity_rps and decode_capacity_rps per policy.")
]
CapacityTargetOption = Annotated[
    float | None,
    typer.Option(
        "--capacity-target",
        help=f"Attainment a rate must reach in the capacity search (default {DEFAULT_TARGET:g}).",
    ),
]
CapacityWindowOption = Annotated[
    int | None,
    typer.Option(
        "--capacity-window", help=f"Requests replayed per capacity probe (default {DEFAULT_WINDOW})."
    ),
]
CompareJsonOption = Annotated[
    Path | None, typer.Option("--json", help="Write the report as JSON (docs/schema.md).")
]
WideOption = Annotated[
    bool,
    typer.Option(
        "--wide",
        help="Print every figure in one table (about 160 columns) instead of the first ones in 80 columns.",
    ),
]
CsvOption = Annotated[Path | None, typer.Option("--csv", help="Write one row per policy as CSV.")]
PolicyOption = Annotated[str, typer.Option("--policy", help="Policy NAME or NAME:key=value:...")]
RowsOption = Annotated[
    Path | None,
    typer.Option("--out", help="Per-request output: FILE.csv, or FILE.parquet (needs pyarrow)."),
]
SimulateJsonOption = Annotated[
    Path | None, typer.Option("--json", help="Write the aggregate report as JSON.")
]
OneAnswerPerDeviceOption = Annotated[
    bool,
    typer.Option(
        "--one-answer-per-device",
        help="A device serves one answer at a time: a request that arrives while its device (its "
        "session's) still prefills, catches up or decodes an earlier answer is served by the cloud for the "
        "whole answer; under device-only it waits for the device, its TTFT counting the wait. Reported as "
        "device_busy (docs/schema.md).",
    ),
]

FleetOption = Annotated[
    str | None,
    typer.Option(
        "--fleet",
        help="A fleet of device classes (a shipped name, e.g. phones-2025, or a .toml file; docs/fleet.md): "
        "each request draws its class with --seed and runs on its class's device and network, or on the "
        "cloud alone for a class with no capable device. Adds results by class.",
    ),
]


def busy_line(reports: dict[str, dict[str, Any]]) -> str:
    """What one answer per device did, per policy: requests served by the cloud because their device was
    busy, and those that waited for it, with their median wait."""
    parts = []
    for name, report in reports.items():
        busy = report["device_busy"]
        part = f"{escape(name)} {busy['cloud']} to the cloud"
        if busy["waited"]:
            part += f", {busy['waited']} waited (p50 {busy['wait_s']['p50']:.2f} s)"
        parts.append(part)
    return "one answer per device, requests that found their device busy: " + "; ".join(parts)


def _policies(spec: str) -> list[Policy]:
    names = split_policy_specs(spec)
    if not names:
        raise InvalidInputError(f"--policies {spec!r} names no policy; fix: pass e.g. {','.join(POLICIES)}")
    policies = [make_policy(name) for name in names]
    seen: set[str] = set()
    for policy in policies:
        if policy.name in seen:
            raise InvalidInputError(f"--policies names {policy.name!r} twice; fix: list each policy once")
        seen.add(policy.name)
    return policies


def _capacity_search(capacity: bool, target: float | None, window: int | None) -> tuple[float, int] | None:
    """The capacity search's target and window with ``--capacity``, checked; None without it."""
    for flag, given in (("--capacity-target", target), ("--capacity-window", window)):
        if given is not None and not capacity:
            raise InvalidInputError(
                f"{flag} sets the capacity search, which runs only with --capacity; fix: add --capacity "
                f"or drop {flag}"
            )
    target = DEFAULT_TARGET if target is None else target
    window = DEFAULT_WINDOW if window is None else window
    if not 0.0 < target <= 1.0:
        raise InvalidInputError(f"--capacity-target {target!r}; fix: pass an attainment in (0, 1], e.g. 0.9")
    check_int(window, "--capacity-window", minimum=2, maximum=MAX_REQUESTS)
    return (target, window) if capacity else None


def _reports(run: Run, chosen: list[Policy], search: tuple[float, int] | None) -> dict[str, dict[str, Any]]:
    """Each policy's report on the run, with its capacities when ``search`` is set."""
    reports: dict[str, dict[str, Any]] = {}
    with progress_bars(stderr()) as progress:
        runs = PolicyProgress(progress, "simulating", len(chosen))
        found = policy_reports(
            run.scenario, run.workload, chosen, seed=run.seed, started=runs.started, finished=runs.finished
        )
        reports = {policy.name: report for policy, report in zip(chosen, found, strict=True)}
        if search is not None:
            for policy in chosen:
                reports[policy.name] |= _capacities(run, policy, progress, *search)
    return reports


def compare(
    *,
    trace: TraceOption = None,
    policies: PoliciesOption = _EVERY_POLICY,
    device: DeviceOption = DEFAULT_DEVICE,
    cloud: CloudOption = DEFAULT_CLOUD,
    cloud_model: CloudModelOption = "engine",
    deployment: DeploymentOption = "disaggregated",
    replicas: ReplicasOption = None,
    prefill_replicas: PrefillOption = None,
    decode_replicas: DecodeOption = None,
    k_sites: KSitesOption = DEFAULT_K_SITES,
    network: NetworkOption = DEFAULT_NETWORK,
    rate_scale: RateScaleOption = 1.0,
    limit: LimitOption = None,
    seed: SeedOption = 0,
    requests: RequestsOption = None,
    rate: RateOption = None,
    multi_turn: MultiTurnOption = False,
    ttft_slo: TtftOption = DEFAULT_TTFT_SLO_S,
    max_tpot: MaxTpotOption = None,
    tpot_slo: OldMaxTpotOption = None,
    cost_weight: CostWeightOption = 0.0,
    energy_weight: EnergyWeightOption = 0.0,
    one_answer_per_device: OneAnswerPerDeviceOption = False,
    fleet: FleetOption = None,
    capacity: CapacityOption = False,
    capacity_target: CapacityTargetOption = None,
    capacity_window: CapacityWindowOption = None,
    oversize: OversizeOption = "fail",
    json_out: CompareJsonOption = None,
    csv_out: CsvOption = None,
    wide: WideOption = False,
) -> None:
    """Run several policies on the same workload and compare them in one table."""
    flags = dict(locals())
    with reported():
        chosen = _policies(policies)
        search = _capacity_search(capacity, capacity_target, capacity_window)
        if search is not None and fleet is not None:
            raise InvalidInputError(
                "--capacity does not search over a fleet yet; fix: drop --capacity or --fleet"
            )
        spec = flags_run_spec(flags)
        check_outputs({"--json": json_out, "--csv": csv_out}, spec.inputs() | policy_inputs(policies))
        started = time.perf_counter()
        run = spec.build()
        reports = _reports(run, chosen, search)
        document = run.document(reports)
        if search is not None:
            document["config"]["capacity"] = {"target": search[0], "window": search[1]}
        elapsed = time.perf_counter() - started
        warn_overloaded(reports, run.cloud())
        out = stdout()
        searched = search is not None
        out.print(policy_table(reports, capacity=searched, title=escape(run.headline()), wide=wide))
        if searched and not wide:
            out.print(capacity_table(reports))
        if any("per_turn" in report for report in reports.values()):
            out.print(turn_table(reports, wide=wide))
        if has_classes(reports):
            out.print(class_table(reports))
        if one_answer_per_device:
            out.print(busy_line(reports))
        if json_out is not None:
            write_text(json_out, dumps(document))
        if csv_out is not None:
            write_csv(csv_out, reports)
        written = [str(path) for path in (json_out, csv_out) if path is not None]
        out.print(
            f"{len(chosen)} policies in {elapsed:.2f} s wall"
            + (f"; wrote {', '.join(written)}" if written else "")
        )


def _capacities(run: Run, policy: Policy, progress: Progress, target: float, window: int) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, search, label in (
        ("capacity", capacity_rps, "capacity"),
        ("decode_capacity", decode_capacity_rps, "decode capacity"),
    ):
        task = progress.add_task(f"{label} of {policy.name}", total=None)

        def step(rate_rps: float, passed: bool, task: Any = task, label: str = label) -> None:
            verdict = "meets" if passed else "misses"
            progress.update(
                task, advance=1, description=f"{label} of {policy.name}: {rate_rps:.2f} req/s {verdict}"
            )

        result = search(
            run.workload, policy, run.scenario, seed=run.seed, target=target, window=window, progress=step
        )
        progress.remove_task(task)
        found[f"{key}_rps"] = result.rps
        found[key] = result.describe()
    return found


def _check_rows_file(out: Path | None) -> None:
    """Refuses a per-request output that is neither .csv nor .parquet, or .parquet without pyarrow."""
    if out is not None and out.suffix.lower() not in {".csv", ".parquet"}:
        raise InvalidInputError(
            f"--out {str(out)!r} has suffix {out.suffix!r}; fix: name the file .csv or .parquet"
        )
    if out is not None and out.suffix.lower() == ".parquet" and importlib.util.find_spec("pyarrow") is None:
        raise InvalidInputError(
            f"--out {str(out)!r}: Parquet output needs pyarrow; fix: `pip install pyarrow`, or write .csv"
        )


def simulate(
    *,
    policy: PolicyOption = "pd-device",
    out: RowsOption = None,
    json_out: SimulateJsonOption = None,
    trace: TraceOption = None,
    device: DeviceOption = DEFAULT_DEVICE,
    cloud: CloudOption = DEFAULT_CLOUD,
    cloud_model: CloudModelOption = "engine",
    deployment: DeploymentOption = "disaggregated",
    replicas: ReplicasOption = None,
    prefill_replicas: PrefillOption = None,
    decode_replicas: DecodeOption = None,
    k_sites: KSitesOption = DEFAULT_K_SITES,
    network: NetworkOption = DEFAULT_NETWORK,
    rate_scale: RateScaleOption = 1.0,
    limit: LimitOption = None,
    seed: SeedOption = 0,
    requests: RequestsOption = None,
    rate: RateOption = None,
    multi_turn: MultiTurnOption = False,
    ttft_slo: TtftOption = DEFAULT_TTFT_SLO_S,
    max_tpot: MaxTpotOption = None,
    tpot_slo: OldMaxTpotOption = None,
    cost_weight: CostWeightOption = 0.0,
    energy_weight: EnergyWeightOption = 0.0,
    one_answer_per_device: OneAnswerPerDeviceOption = False,
    fleet: FleetOption = None,
    oversize: OversizeOption = "fail",
    wide: WideOption = False,
) -> None:
    """Run one policy and write one row per request (CSV or Parquet)."""
    flags = dict(locals())
    with reported():
        _check_rows_file(out)
        chosen = make_policy(policy)
        spec = flags_run_spec(flags)
        check_outputs({"--out": out, "--json": json_out}, spec.inputs() | policy_inputs([policy], "--policy"))
        started = time.perf_counter()
        run = spec.build()
        result = run.scenario.run(run.workload, chosen, seed=seed)
        report = result.aggregate()
        if out is not None:
            if out.suffix.lower() == ".parquet":
                result.to_parquet(out)
            else:
                result.to_csv(out)
        if json_out is not None:
            write_text(json_out, dumps(run.document({chosen.name: report})))
        elapsed = time.perf_counter() - started
        warn_overloaded({chosen.name: report}, run.cloud())
        console = stdout()
        console.print(policy_table({chosen.name: report}, title=escape(run.headline()), wide=wide))
        if has_classes({chosen.name: report}):
            console.print(class_table({chosen.name: report}))
        if one_answer_per_device:
            console.print(busy_line({chosen.name: report}))
        written = [str(path) for path in (out, json_out) if path is not None]
        console.print(
            f"{len(run.workload)} requests in {elapsed:.2f} s wall"
            + (f"; wrote {', '.join(written)}" if written else "")
        )


def register(app: typer.Typer) -> None:
    """Adds ``compare`` and ``simulate`` to ``app``."""
    app.command()(compare)
    app.command()(simulate)
