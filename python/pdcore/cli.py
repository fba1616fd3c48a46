"""The ``pdcore`` command line: compare policies, simulate one with per-request output, list profiles.

Every command runs with no input file: without ``--trace`` the workload is the seeded synthetic default
(`pdcore.traces.synthetic_default`). Errors pdcore raises on purpose (`PdcoreError`) are printed as one
red line naming the input and the fix, with exit code 2 and no traceback. Tables go to standard output;
progress bars and errors go to standard error.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from pdcore import __version__
from pdcore.exceptions import InvalidInputError, PdcoreError, ProfileError
from pdcore.policies import POLICIES, Policy, make_policy, split_policy_specs
from pdcore.profiles import (
    CloudProfile,
    DeviceProfile,
    NetworkProfile,
    list_cloud_profiles,
    list_device_profiles,
    list_network_presets,
    load_cloud_profile,
    load_device_profile,
    network_preset,
)
from pdcore.sim import (
    DEFAULT_TARGET,
    DEFAULT_TPOT_SLO_S,
    DEFAULT_TTFT_SLO_S,
    DEFAULT_WINDOW,
    SLO,
    Scenario,
    capacity_rps,
    decode_capacity_rps,
    dumps,
)
from pdcore.sim.metrics import round_floats
from pdcore.traces import Workload, load_trace, synthetic_default

__all__ = ["DEFAULT_CLOUD", "DEFAULT_DEVICE", "DEFAULT_NETWORK", "DEFAULT_POLICIES", "app", "main"]

DEFAULT_DEVICE = "llama32-3b-w4a16-8elite-genie"
"""A phone running a 3B model: its prefill is slow enough that the choice of policy matters."""

DEFAULT_CLOUD = "llama3-8b-a100"
DEFAULT_NETWORK = "wifi"
DEFAULT_POLICIES = ("cloud-only", "device-only", "pd-device", "naive-split", "kv-transfer", "race")
SCHEMA_VERSION = 1
SYNTHETIC_REQUESTS = 2000
SYNTHETIC_RATE_RPS = 5.5

app = typer.Typer(
    name="pdcore",
    help="Cloud-device disaggregated LLM inference (P/D-Device): simulate policies on request traces.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
profiles_app = typer.Typer(
    help="List and show the shipped device, cloud and network profiles.", no_args_is_help=True
)
app.add_typer(profiles_app, name="profiles")


def _stdout() -> Console:
    # a file or pipe gets wide lines rather than truncated table cells
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


@contextmanager
def _reported() -> Iterator[None]:
    """Turns pdcore's own errors (and unwritable outputs) into one red line and exit code 2."""
    try:
        yield
    except PdcoreError as exc:
        _stderr().print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(code=2) from None
    except OSError as exc:
        target = exc.filename if exc.filename is not None else "output"
        _stderr().print(
            f"[red]error:[/red] cannot write {escape(str(target))!r}: {escape(exc.strerror or str(exc))}; "
            "fix: check that the directory exists and is writable",
            soft_wrap=True,
        )
        raise typer.Exit(code=2) from None


# Options shared by `compare` and `simulate`.
TraceOption = Annotated[
    Path | None,
    typer.Option(
        "--trace", help="Azure 2023 CSV or Mooncake JSONL trace; without it, the seeded synthetic workload."
    ),
]
DeviceOption = Annotated[
    str,
    typer.Option(
        "--device-profile", "--device", help="Device profile name (`pdcore profiles list`) or .toml path."
    ),
]
CloudOption = Annotated[
    str,
    typer.Option(
        "--cloud-profile", "--cloud", help="Cloud profile name (`pdcore profiles list`) or .toml path."
    ),
]
DeploymentOption = Annotated[str, typer.Option("--deployment", help="colocated or disaggregated.")]
ReplicasOption = Annotated[int, typer.Option("--replicas", help="Replicas of a colocated cloud.")]
PrefillOption = Annotated[int, typer.Option("--prefill-replicas", help="Prefill replicas (disaggregated).")]
DecodeOption = Annotated[int, typer.Option("--decode-replicas", help="Decode replicas (disaggregated).")]
NetworkOption = Annotated[str, typer.Option("--network", help="Network preset: lan, wifi, 5g or lte.")]
RateScaleOption = Annotated[
    float, typer.Option("--rate-scale", help="Replay the workload this many times faster.")
]
LimitOption = Annotated[int | None, typer.Option("--limit", help="Keep only the first N requests.")]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the synthetic workload and network delays.")]
RequestsOption = Annotated[
    int | None, typer.Option("--requests", help="Requests of the synthetic workload (default 2000).")
]
RateOption = Annotated[
    float | None, typer.Option("--rate", help="Arrival rate of the synthetic workload, req/s (default 5.5).")
]
TtftOption = Annotated[float, typer.Option("--ttft-slo", help="TTFT objective, seconds.")]
TpotOption = Annotated[
    float, typer.Option("--tpot-slo", help="TPOT objective (and largest display gap), seconds.")
]


@dataclass(frozen=True)
class _Run:
    """What `compare` and `simulate` share: the workload, the scenario and how they were chosen."""

    workload: Workload
    scenario: Scenario
    seed: int
    rate_scale: float
    limit: int | None

    def describe(self) -> dict[str, Any]:
        stats = self.workload.summary()
        return {
            "workload": {
                "name": self.workload.name,
                "source": self.workload.source,
                "notes": list(self.workload.notes),
                "requests": len(self.workload),
                "duration_s": stats["duration_s"],
                "rate_rps": stats["rate_rps"],
                "prompt_tokens": {
                    key[len("prompt_") :]: stats[key] for key in stats if key.startswith("prompt_")
                },
                "output_tokens": {
                    key[len("output_") :]: stats[key] for key in stats if key.startswith("output_")
                },
            },
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
            f"({stats['rate_rps']:.2f} req/s) | device {self.scenario.device.name} | cloud {cloud} "
            f"({self.scenario.deployment}) | network {self.scenario.network.name} | SLO TTFT "
            f"{self.scenario.slo.ttft_s:g} s, TPOT {self.scenario.slo.tpot_s * 1e3:g} ms"
        )


def _build(
    *,
    trace: Path | None,
    device: str,
    cloud: str,
    deployment: str,
    replicas: int,
    prefill_replicas: int,
    decode_replicas: int,
    network: str,
    rate_scale: float,
    limit: int | None,
    seed: int,
    requests: int | None,
    rate: float | None,
    ttft_slo: float,
    tpot_slo: float,
) -> _Run:
    # profiles first: a misspelt name should fail before a large trace is read
    scenario = Scenario(
        cloud=load_cloud_profile(cloud),
        device=load_device_profile(device),
        network=network_preset(network),
        deployment=deployment,
        replicas=replicas,
        prefill_replicas=prefill_replicas,
        decode_replicas=decode_replicas,
        slo=SLO(ttft_s=ttft_slo, tpot_s=tpot_slo),
    )
    if trace is not None:
        if requests is not None or rate is not None:
            raise InvalidInputError(
                "--requests and --rate shape the synthetic workload and do not apply to --trace; "
                "fix: drop them, or use --limit and --rate-scale on the trace"
            )
        workload = load_trace(trace)
    else:
        workload = synthetic_default(
            seed=seed,
            n_requests=SYNTHETIC_REQUESTS if requests is None else requests,
            rate_rps=SYNTHETIC_RATE_RPS if rate is None else rate,
        )
    workload = workload.limit(limit).scaled(rate_scale)
    return _Run(workload=workload, scenario=scenario, seed=seed, rate_scale=rate_scale, limit=limit)


def _check_output(path: Path | None, flag: str) -> None:
    """Fails before any work when an output file cannot be created."""
    if path is None:
        return
    folder = path.parent if str(path.parent) else Path()
    if not folder.is_dir():
        raise InvalidInputError(
            f"{flag} {str(path)!r}: directory {str(folder)!r} does not exist; "
            "fix: create it or pass another path"
        )
    if path.is_dir():
        raise InvalidInputError(f"{flag} {str(path)!r} is a directory; fix: pass a file name")


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


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


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
        caption="latencies in ms; gap: largest display gap; stall: hand-off gap above max_tpot"
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
        ]
        if capacity:
            row += [_capacity_cell(report["capacity"]), _capacity_cell(report["decode_capacity"])]
        table.add_row(*row)
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
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows({key: "" if value is None else value for key, value in row.items()} for row in rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")


@app.command()
def compare(
    *,
    trace: TraceOption = None,
    policies: Annotated[
        str, typer.Option("--policies", help="Comma-separated policies, each NAME or NAME:key=value:...")
    ] = ",".join(DEFAULT_POLICIES),
    device: DeviceOption = DEFAULT_DEVICE,
    cloud: CloudOption = DEFAULT_CLOUD,
    deployment: DeploymentOption = "disaggregated",
    replicas: ReplicasOption = 1,
    prefill_replicas: PrefillOption = 1,
    decode_replicas: DecodeOption = 1,
    network: NetworkOption = DEFAULT_NETWORK,
    rate_scale: RateScaleOption = 1.0,
    limit: LimitOption = None,
    seed: SeedOption = 0,
    requests: RequestsOption = None,
    rate: RateOption = None,
    ttft_slo: TtftOption = DEFAULT_TTFT_SLO_S,
    tpot_slo: TpotOption = DEFAULT_TPOT_SLO_S,
    capacity: Annotated[
        bool, typer.Option("--capacity", help="Also search capacity_rps and decode_capacity_rps per policy.")
    ] = False,
    capacity_target: Annotated[
        float, typer.Option("--capacity-target", help="Attainment a rate must reach in the capacity search.")
    ] = DEFAULT_TARGET,
    capacity_window: Annotated[
        int, typer.Option("--capacity-window", help="Requests replayed per capacity probe.")
    ] = DEFAULT_WINDOW,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the report as JSON (docs/schema.md).")
    ] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write one row per policy as CSV.")] = None,
) -> None:
    """Run several policies on the same workload and compare them in one table."""
    with _reported():
        _check_output(json_out, "--json")
        _check_output(csv_out, "--csv")
        chosen = _policies(policies)
        if capacity and not 0.0 < capacity_target <= 1.0:
            raise InvalidInputError(
                f"--capacity-target {capacity_target!r}; fix: pass an attainment in (0, 1], e.g. 0.9"
            )
        if capacity and capacity_window < 2:
            raise InvalidInputError(f"--capacity-window {capacity_window}; fix: pass at least 2, e.g. 1000")
        started = time.perf_counter()
        run = _build(
            trace=trace,
            device=device,
            cloud=cloud,
            deployment=deployment,
            replicas=replicas,
            prefill_replicas=prefill_replicas,
            decode_replicas=decode_replicas,
            network=network,
            rate_scale=rate_scale,
            limit=limit,
            seed=seed,
            requests=requests,
            rate=rate,
            ttft_slo=ttft_slo,
            tpot_slo=tpot_slo,
        )
        reports: dict[str, dict[str, Any]] = {}
        with _progress(_stderr()) as progress:
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
        out = _stdout()
        out.print(_table(reports, capacity=capacity, title=escape(run.headline())))
        if json_out is not None:
            json_out.write_text(dumps(document), encoding="utf-8")
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


@app.command()
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
    replicas: ReplicasOption = 1,
    prefill_replicas: PrefillOption = 1,
    decode_replicas: DecodeOption = 1,
    network: NetworkOption = DEFAULT_NETWORK,
    rate_scale: RateScaleOption = 1.0,
    limit: LimitOption = None,
    seed: SeedOption = 0,
    requests: RequestsOption = None,
    rate: RateOption = None,
    ttft_slo: TtftOption = DEFAULT_TTFT_SLO_S,
    tpot_slo: TpotOption = DEFAULT_TPOT_SLO_S,
) -> None:
    """Run one policy and write one row per request (CSV or Parquet)."""
    with _reported():
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
        _check_output(out, "--out")
        _check_output(json_out, "--json")
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
            network=network,
            rate_scale=rate_scale,
            limit=limit,
            seed=seed,
            requests=requests,
            rate=rate,
            ttft_slo=ttft_slo,
            tpot_slo=tpot_slo,
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
            json_out.write_text(dumps(document), encoding="utf-8")
        elapsed = time.perf_counter() - started
        console = _stdout()
        console.print(_table({chosen.name: report}, capacity=False, title=escape(run.headline())))
        written = [str(path) for path in (out, json_out) if path is not None]
        console.print(
            f"{len(run.workload)} requests in {elapsed:.2f} s wall"
            + (f"; wrote {', '.join(written)}" if written else "")
        )


@profiles_app.command("list")
def profiles_list() -> None:
    """List the shipped device and cloud profiles and the network presets."""
    with _reported():
        console = _stdout()
        devices = Table(title="device profiles", title_justify="left", header_style="bold")
        for column in ("name", "hardware", "prefill 1k tok (s)", "decode TPOT (ms)"):
            devices.add_column(column)
        for name in list_device_profiles():
            profile = load_device_profile(name)
            devices.add_row(
                name,
                profile.hardware,
                f"{profile.prefill_s(1024):.2f}",
                f"{profile.decode_tpot_s(1024) * 1e3:.1f}",
            )
        clouds = Table(title="cloud profiles", title_justify="left", header_style="bold")
        for column in ("name", "gpu", "TP", "prefill 1k tok alone (ms)"):
            clouds.add_column(column)
        for name in list_cloud_profiles():
            cloud = load_cloud_profile(name)
            clouds.add_row(
                name, cloud.gpu, str(cloud.tensor_parallel), f"{cloud.iteration_s([1024], []) * 1e3:.1f}"
            )
        networks = Table(title="network presets", title_justify="left", header_style="bold")
        for column in ("name", "RTT (ms)", "bandwidth (Mbit/s)", "jitter (ms)"):
            networks.add_column(column)
        for name in list_network_presets():
            preset = network_preset(name)
            networks.add_row(
                name,
                f"{preset.rtt_s * 1e3:g}",
                f"{preset.bandwidth_bps / 1e6:g}",
                f"{preset.jitter_s * 1e3:g}",
            )
        console.print(devices)
        console.print(clouds)
        console.print(networks)


def _find_profile(name: str) -> DeviceProfile | CloudProfile | NetworkProfile:
    if name in list_device_profiles():
        return load_device_profile(name)
    if name in list_cloud_profiles():
        return load_cloud_profile(name)
    if name in list_network_presets():
        return network_preset(name)
    if name.endswith(".toml"):
        try:
            return load_device_profile(name)
        except ProfileError as device_error:
            try:
                return load_cloud_profile(name)
            except ProfileError:
                raise device_error from None
    known = ", ".join([*list_device_profiles(), *list_cloud_profiles(), *list_network_presets()])
    raise ProfileError(
        f"unknown profile {name!r}; fix: pass one of {known} (see `pdcore profiles list`), or a .toml path"
    )


@profiles_app.command("show")
def profiles_show(
    name: Annotated[str, typer.Argument(help="Profile or preset name, or a .toml path.")],
) -> None:
    """Show one profile: its numbers and where they come from."""
    with _reported():
        profile = _find_profile(name)
        table = Table(title=profile.name, title_justify="left", show_header=False)
        table.add_column("key", style="bold", no_wrap=True)
        table.add_column("value", overflow="fold")
        if isinstance(profile, DeviceProfile):
            rows: list[tuple[str, str]] = [
                ("kind", "device"),
                ("description", profile.description),
                ("hardware", profile.hardware),
                ("model", profile.model),
                ("engine", profile.engine),
                ("prefill tokens", ", ".join(f"{v:g}" for v in profile.prefill_tokens)),
                ("prefill seconds", ", ".join(f"{v:g}" for v in profile.prefill_seconds)),
                ("decode context", ", ".join(f"{v:g}" for v in profile.decode_context_tokens)),
                ("decode TPOT (s)", ", ".join(f"{v:g}" for v in profile.decode_tpot)),
                ("citation", profile.citation),
                ("notes", profile.notes),
                ("file", profile.source),
            ]
        elif isinstance(profile, CloudProfile):
            rows = [
                ("kind", "cloud"),
                ("description", profile.description),
                ("model", profile.model),
                ("gpu", f"{profile.gpu} (tensor parallel {profile.tensor_parallel})"),
                *((key, f"{value:g}") for key, value in profile.coefficients().items()),
                ("max_batch_size", str(profile.max_batch_size)),
                ("max_tokens_per_iteration", str(profile.max_tokens_per_iteration)),
                ("kv_cache_tokens", str(profile.kv_cache_tokens)),
                ("gpus_per_replica", str(profile.gpus_per_replica)),
                ("kv bytes per token", str(profile.kv_bytes_per_token)),
                ("citation", profile.citation),
                ("notes", profile.notes),
                ("file", profile.source),
            ]
        else:
            rows = [
                ("kind", "network"),
                ("rtt_s", f"{profile.rtt_s:g}"),
                ("bandwidth_bps", f"{profile.bandwidth_bps:g}"),
                ("jitter_s", f"{profile.jitter_s:g}"),
                ("description", profile.description),
            ]
        for key, value in rows:
            table.add_row(key, escape(value))
        _stdout().print(table)


def main() -> None:
    """The ``pdcore`` console script."""
    app()


def _register_commands() -> None:
    """Adds the commands that live in their own modules."""
    from pdcore import cli_optimize  # noqa: PLC0415  (it imports the shared options above)

    cli_optimize.register(app)

    from pdcore import cli_report  # noqa: PLC0415

    cli_report.register(app)

    from pdcore import cli_refine, cli_runtime  # noqa: PLC0415

    cli_refine.register(app)
    cli_runtime.register(app)


_register_commands()
