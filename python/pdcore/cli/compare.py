"""``pdcore compare`` and ``pdcore simulate``: policies on one workload, side by side or one in detail.

Both run with no input file: without ``--trace`` the workload is the seeded synthetic default
(`pdcore.traces.synthetic_default`).
"""

from __future__ import annotations

import csv
import importlib.util
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from pdcore import __version__
from pdcore.cli.options import (
    DEFAULT_CLOUD,
    DEFAULT_DEVICE,
    DEFAULT_NETWORK,
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
    check_slo_flags,
    check_workload_flags,
    load_profiles,
    load_workload,
    max_tpot_flag,
    profile_path,
    progress_bars,
    reported,
    stderr,
    stdout,
)
from pdcore.exceptions import InvalidInputError
from pdcore.limits import MAX_REQUESTS, check_int
from pdcore.outputs import open_text, write_text
from pdcore.policies import POLICIES, Policy, make_policy, split_policy_specs
from pdcore.policies.base import DEFAULT_K_SITES
from pdcore.report.markdown import arrival_rate
from pdcore.sim import (
    DEFAULT_TARGET,
    DEFAULT_WINDOW,
    Scenario,
    capacity_rps,
    decode_capacity_rps,
    dumps,
)
from pdcore.sim.horizon import check_horizon
from pdcore.sim.metrics import round_floats
from pdcore.slo import DEFAULT_TTFT_SLO_S, SLO
from pdcore.traces import OVERSIZE, Workload

__all__ = ["DEFAULT_POLICIES", "SCHEMA_VERSION", "compare", "register", "simulate"]

DEFAULT_POLICIES = tuple(POLICIES)
"""Every registered policy, pdcore's own and the rival strategies."""
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class _Run:
    """What `compare` and `simulate` share: the workload, the scenario and how they were chosen."""

    workload: Workload
    scenario: Scenario
    seed: int
    rate_scale: float
    limit: int | None

    def describe(self) -> dict[str, Any]:
        return {
            "workload": self.workload.describe(),
            "config": self.scenario.describe()
            | {"seed": self.seed, "rate_scale": self.rate_scale, "limit": self.limit},
        }

    def headline(self) -> str:
        stats = self.workload.summary()
        cloud = self.scenario.cloud.name
        if self.scenario.deployment == "colocated":
            cloud += f" x{self.scenario.replicas}"
        else:
            cloud += f" {self.scenario.prefill_replicas}P+{self.scenario.decode_replicas}D"
        return (
            f"{self.workload.name}: {len(self.workload)} requests over {stats['duration_s']:.0f} s "
            f"({arrival_rate(stats['rate_rps'])}) | device {self.scenario.device.name} | cloud {cloud} "
            f"({self.scenario.deployment}) | network {self.scenario.network.name} | SLO TTFT "
            f"{self.scenario.slo.ttft_s:g} s, TPOT {self.scenario.slo.max_tpot_s * 1e3:g} ms"
        )


def _build(
    *,
    trace: Path | None,
    device: str,
    cloud: str,
    deployment: str,
    replicas: int | None,
    prefill_replicas: int | None,
    decode_replicas: int | None,
    network: str,
    rate_scale: float,
    k_sites: str = DEFAULT_K_SITES,
    limit: int | None,
    seed: int,
    requests: int | None,
    rate: float | None,
    ttft_slo: float,
    max_tpot: float,
    oversize: str,
    cost_weight: float = 0.0,
    energy_weight: float = 0.0,
    multi_turn: bool = False,
) -> _Run:
    # flags first, then profiles: a misspelt name should fail before a large trace is read
    check_workload_flags(requests=requests, rate=rate, limit=limit, rate_scale=rate_scale, seed=seed)
    check_slo_flags(ttft_slo, max_tpot)
    _check_replica_flags(deployment, replicas, prefill_replicas, decode_replicas)
    if oversize not in OVERSIZE:
        raise InvalidInputError(f"--oversize {oversize!r} is unknown; fix: use one of {', '.join(OVERSIZE)}")
    device_profile, cloud_profile, network_profile = load_profiles(device, cloud, network)
    scenario = Scenario(
        cloud=cloud_profile,
        device=device_profile,
        network=network_profile,
        deployment=deployment,
        replicas=1 if replicas is None else replicas,
        prefill_replicas=1 if prefill_replicas is None else prefill_replicas,
        decode_replicas=1 if decode_replicas is None else decode_replicas,
        slo=SLO(ttft_s=ttft_slo, max_tpot_s=max_tpot),
        k_sites=k_sites,
        cost_weight=cost_weight,
        energy_weight=energy_weight,
    )
    workload = load_workload(
        trace,
        seed=seed,
        requests=requests,
        rate=rate,
        limit=limit,
        rate_scale=rate_scale,
        multi_turn=multi_turn,
    ).fit(cloud_profile.kv_cache_tokens, oversize, what=f"one {cloud_profile.name} replica's KV cache")
    check_horizon(workload, cloud_profile, device_profile)
    return _Run(workload=workload, scenario=scenario, seed=seed, rate_scale=rate_scale, limit=limit)


def _check_replica_flags(
    deployment: str, replicas: int | None, prefill_replicas: int | None, decode_replicas: int | None
) -> None:
    """Refuses replica flags that the deployment would ignore."""
    if deployment == "colocated":
        for flag, given in (("--prefill-replicas", prefill_replicas), ("--decode-replicas", decode_replicas)):
            if given is not None:
                raise InvalidInputError(
                    f"{flag} applies to a disaggregated cloud, but --deployment is colocated; fix: drop "
                    f"{flag} and size the cloud with --replicas, or pass --deployment disaggregated"
                )
    elif replicas is not None:
        raise InvalidInputError(
            f"--replicas applies to a colocated cloud, but --deployment is {deployment}; fix: size it with "
            "--prefill-replicas and --decode-replicas, or pass --deployment colocated"
        )


def _inputs(trace: Path | None, device: str, cloud: str) -> dict[str, str | Path | None]:
    return {"--trace": trace, "--device": profile_path(device), "--cloud": profile_path(cloud)}


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


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value * 1e3:.0f}"


def _num(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _table(reports: Mapping[str, Mapping[str, Any]], *, capacity: bool, title: str | None = None) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        header_style="bold",
        caption="latencies in ms; gap: largest display gap; stall: hand-off gap above max_tpot; "
        "$/1k req: cloud GPU-seconds at the cloud profile's GPU-hour price; mJ/req and batt %/req: the "
        "device's compute, radio and waiting energy, and its share of the stated battery (- where a "
        "profile gives no price)"
        + ("; decode cap: one decode replica of a disaggregated cloud" if capacity else ""),
        caption_justify="left",
    )
    columns = [
        "policy",
        "TTFT p50",
        "TTFT p99",
        "TPOT mean",
        "gap p99",
        "stall p99",
        "QoE",
        "SLO met",
        "gap SLO",
        "GPU-s/req",
        "cloud tok/req",
        "$/1k req",
        "mJ/req",
        "batt %/req",
    ]
    if capacity:
        columns += ["capacity rps", "decode cap rps"]
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right", no_wrap=index == 0)
    for name, report in reports.items():
        row = [
            name,
            _ms(report["ttft_s"]["p50"]),
            _ms(report["ttft_s"]["p99"]),
            _ms(report["tpot_s"]["mean"]),
            _ms(report["max_gap_s"]["p99"]),
            _ms(report["handoff_stall_s"]["p99"]),
            _num(report["qoe"]["mean"], 3),
            _pct(report["slo_attainment"]),
            _pct(report["gap_slo_attainment"]),
            _num(report["cloud_gpu_s_per_request"]["total"], 3),
            _num(report["cloud_decode_tokens_per_request"], 1),
            *_cost_cells(report.get("cost")),
        ]
        if capacity:
            row += [_capacity_cell(report["capacity"]), _capacity_cell(report["decode_capacity"])]
        table.add_row(*row)
    return table


def _cost_cells(cost: Mapping[str, Any] | None) -> list[str]:
    """The ``$/1k req``, ``mJ/req`` and ``batt %/req`` cells of a report's ``cost`` object."""
    if cost is None:
        return ["-", "-", "-"]
    return [
        _num(cost["usd_per_1k_requests"], 3),
        _num(cost["device_mj_per_request"]["mean"], 0),
        _num(cost["battery_pct_per_request"], 4),
    ]


def _turn_table(reports: Mapping[str, Mapping[str, Any]]) -> Table:
    """TTFT, largest gap, cloud work and cached prompt tokens by turn (a multi-turn workload)."""
    table = Table(
        title="by turn",
        title_justify="left",
        header_style="bold",
        caption="latencies in ms; dev/cloud cached: prompt tokens found cached per request; $/1k req, "
        "mJ/req and batt %/req: as in the table above, for the turn's requests",
        caption_justify="left",
    )
    columns = [
        "policy",
        "turn",
        "requests",
        "TTFT p50",
        "TTFT p90",
        "gap max",
        "GPU-s/req",
        "dev cached",
        "cloud cached",
        "$/1k req",
        "mJ/req",
        "batt %/req",
    ]
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index < 2 else "right", no_wrap=index == 0)
    for name, report in reports.items():
        for turn, row in report.get("per_turn", {}).items():
            table.add_row(
                name,
                turn,
                str(row["requests"]),
                _ms(row["ttft_s"]["p50"]),
                _ms(row["ttft_s"]["p90"]),
                _ms(row["max_gap_s"]["max"]),
                _num(row["cloud_gpu_s_per_request"], 3),
                _num(row["device_cached_tokens_per_request"], 0),
                _num(row["cloud_cached_tokens_per_request"], 0),
                *_cost_cells(row.get("cost")),
            )
    return table


def _capacity_cell(found: Mapping[str, Any]) -> str:
    if found["bound"] == "above_max":
        return f">{found['max_rps_tried']:.0f}"
    if found["bound"] == "below_min":
        return f"<{found['min_rps_tried']:.2f}"
    return f"{found['rps']:.2f}"


def _flatten(report: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in report.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= _flatten(value, f"{name}.")
        else:
            flat[name] = value
    return flat


def _write_csv(path: Path, reports: Mapping[str, Mapping[str, Any]]) -> None:
    rows = [{"policy": name} | _flatten(round_floats(report)) for name, report in reports.items()]
    header: list[str] = []
    for row in rows:
        header += [key for key in row if key not in header]
    with open_text(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n", restval="")
        writer.writeheader()
        writer.writerows({key: "" if value is None else value for key, value in row.items()} for row in rows)


def compare(
    *,
    trace: TraceOption = None,
    policies: Annotated[
        str, typer.Option("--policies", help="Comma-separated policies, each NAME or NAME:key=value:...")
    ] = ",".join(DEFAULT_POLICIES),
    device: DeviceOption = DEFAULT_DEVICE,
    cloud: CloudOption = DEFAULT_CLOUD,
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
    capacity: Annotated[
        bool, typer.Option("--capacity", help="Also search capacity_rps and decode_capacity_rps per policy.")
    ] = False,
    capacity_target: Annotated[
        float | None,
        typer.Option(
            "--capacity-target",
            help=f"Attainment a rate must reach in the capacity search (default {DEFAULT_TARGET:g}).",
        ),
    ] = None,
    capacity_window: Annotated[
        int | None,
        typer.Option(
            "--capacity-window", help=f"Requests replayed per capacity probe (default {DEFAULT_WINDOW})."
        ),
    ] = None,
    oversize: OversizeOption = "fail",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the report as JSON (docs/schema.md).")
    ] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write one row per policy as CSV.")] = None,
) -> None:
    """Run several policies on the same workload and compare them in one table."""
    with reported():
        check_outputs({"--json": json_out, "--csv": csv_out}, _inputs(trace, device, cloud))
        chosen = _policies(policies)
        for flag, given in (("--capacity-target", capacity_target), ("--capacity-window", capacity_window)):
            if given is not None and not capacity:
                raise InvalidInputError(
                    f"{flag} sets the capacity search, which runs only with --capacity; fix: add --capacity "
                    f"or drop {flag}"
                )
        capacity_target = DEFAULT_TARGET if capacity_target is None else capacity_target
        capacity_window = DEFAULT_WINDOW if capacity_window is None else capacity_window
        if not 0.0 < capacity_target <= 1.0:
            raise InvalidInputError(
                f"--capacity-target {capacity_target!r}; fix: pass an attainment in (0, 1], e.g. 0.9"
            )
        check_int(capacity_window, "--capacity-window", minimum=2, maximum=MAX_REQUESTS)
        started = time.perf_counter()
        run = _build(
            trace=trace,
            device=device,
            cloud=cloud,
            deployment=deployment,
            replicas=replicas,
            prefill_replicas=prefill_replicas,
            decode_replicas=decode_replicas,
            k_sites=k_sites,
            network=network,
            rate_scale=rate_scale,
            limit=limit,
            seed=seed,
            requests=requests,
            rate=rate,
            ttft_slo=ttft_slo,
            max_tpot=max_tpot_flag(max_tpot, tpot_slo),
            oversize=oversize,
            cost_weight=cost_weight,
            energy_weight=energy_weight,
            multi_turn=multi_turn,
        )
        reports: dict[str, dict[str, Any]] = {}
        with progress_bars(stderr()) as progress:
            task = progress.add_task("simulating", total=len(chosen))
            for policy in chosen:
                progress.update(task, description=f"simulating {policy.name}")
                reports[policy.name] = run.scenario.run(run.workload, policy, seed=seed).aggregate()
                progress.advance(task)
            if capacity:
                for policy in chosen:
                    reports[policy.name] |= _capacities(
                        run, policy, progress, capacity_target, capacity_window
                    )
        document = run.describe() | {
            "schema_version": SCHEMA_VERSION,
            "pdcore_version": __version__,
            "policies": reports,
        }
        if capacity:
            document["config"]["capacity"] = {"target": capacity_target, "window": capacity_window}
        elapsed = time.perf_counter() - started
        out = stdout()
        out.print(_table(reports, capacity=capacity, title=escape(run.headline())))
        if any("per_turn" in report for report in reports.values()):
            out.print(_turn_table(reports))
        if json_out is not None:
            write_text(json_out, dumps(document))
        if csv_out is not None:
            _write_csv(csv_out, reports)
        written = [str(path) for path in (json_out, csv_out) if path is not None]
        out.print(
            f"{len(chosen)} policies in {elapsed:.2f} s wall"
            + (f"; wrote {', '.join(written)}" if written else "")
        )


def _capacities(run: _Run, policy: Policy, progress: Progress, target: float, window: int) -> dict[str, Any]:
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


def simulate(
    *,
    policy: Annotated[str, typer.Option("--policy", help="Policy NAME or NAME:key=value:...")] = "pd-device",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Per-request output: FILE.csv, or FILE.parquet (needs pyarrow)."),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the aggregate report as JSON.")
    ] = None,
    trace: TraceOption = None,
    device: DeviceOption = DEFAULT_DEVICE,
    cloud: CloudOption = DEFAULT_CLOUD,
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
    oversize: OversizeOption = "fail",
) -> None:
    """Run one policy and write one row per request (CSV or Parquet)."""
    with reported():
        if out is not None and out.suffix.lower() not in {".csv", ".parquet"}:
            raise InvalidInputError(
                f"--out {str(out)!r} has suffix {out.suffix!r}; fix: name the file .csv or .parquet"
            )
        if (
            out is not None
            and out.suffix.lower() == ".parquet"
            and importlib.util.find_spec("pyarrow") is None
        ):
            raise InvalidInputError(
                f"--out {str(out)!r}: Parquet output needs pyarrow; fix: `pip install pyarrow`, or write .csv"
            )
        check_outputs({"--out": out, "--json": json_out}, _inputs(trace, device, cloud))
        chosen = make_policy(policy)
        started = time.perf_counter()
        run = _build(
            trace=trace,
            device=device,
            cloud=cloud,
            deployment=deployment,
            replicas=replicas,
            prefill_replicas=prefill_replicas,
            decode_replicas=decode_replicas,
            k_sites=k_sites,
            network=network,
            rate_scale=rate_scale,
            limit=limit,
            seed=seed,
            requests=requests,
            rate=rate,
            ttft_slo=ttft_slo,
            max_tpot=max_tpot_flag(max_tpot, tpot_slo),
            oversize=oversize,
            cost_weight=cost_weight,
            energy_weight=energy_weight,
            multi_turn=multi_turn,
        )
        result = run.scenario.run(run.workload, chosen, seed=seed)
        report = result.aggregate()
        if out is not None:
            if out.suffix.lower() == ".parquet":
                result.to_parquet(out)
            else:
                result.to_csv(out)
        if json_out is not None:
            document = run.describe() | {
                "schema_version": SCHEMA_VERSION,
                "pdcore_version": __version__,
                "policies": {chosen.name: report},
            }
            write_text(json_out, dumps(document))
        elapsed = time.perf_counter() - started
        console = stdout()
        console.print(_table({chosen.name: report}, capacity=False, title=escape(run.headline())))
        written = [str(path) for path in (out, json_out) if path is not None]
        console.print(
            f"{len(run.workload)} requests in {elapsed:.2f} s wall"
            + (f"; wrote {', '.join(written)}" if written else "")
        )


def register(app: typer.Typer) -> None:
    """Adds ``compare`` and ``simulate`` to ``app``."""
    app.command()(compare)
    app.command()(simulate)
