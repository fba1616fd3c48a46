"""``pdcore reproduce``: the headline experiments on the embedded default and on the traces given.

`register` adds the command to the ``pdcore`` Typer app. Progress bars (one per stage) and errors go to
standard error; the closing summary goes to standard output. Errors pdcore raises on purpose print one red
line naming the input and the fix, with exit code 2.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TaskID

from pdcore.cli.notices import warn_overloaded
from pdcore.cli.options import (
    DEFAULT_CLOUD,
    DEFAULT_DEVICE,
    DEFAULT_NETWORK,
    CloudOption,
    DeviceOption,
    NetworkOption,
    SeedOption,
    progress_bars,
    reported,
    stderr,
    stdout,
)
from pdcore.report import DEFAULT_QUALITY, StageProgress, reproduce
from pdcore.report.markdown.formats import cut, gap_ms, times
from pdcore.report.refinement import summary_line
from pdcore.report.targets import AZURE_CONV_FIGURES, AZURE_CONV_REPRODUCE
from pdcore.sim.sweep import EXECUTORS

__all__ = ["register"]

ReportFleetOption = Annotated[
    str | None,
    typer.Option(
        "--fleet",
        help="A fleet of device classes (a shipped name, e.g. phones-2025, or a .toml file): the report "
        "gains a Fleet section, results by device class and GPUs against the capable share, on the first "
        "window of the embedded default workload.",
    ),
]
OutOption = Annotated[
    Path, typer.Option("--out", help="Directory for report.md, report.html, results.json and the plots.")
]
TracesOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--trace",
        help="A trace file or a public trace's name (`pdcore traces list`); repeat for several.",
    ),
]
ExecutorOption = Annotated[
    str, typer.Option("--executor", help=f"Where simulations run: {', '.join(EXECUTORS)}.")
]
WorkersOption = Annotated[
    int | None, typer.Option("--workers", help="Worker processes (or Ray tasks in flight); default: CPUs.")
]
QuickOption = Annotated[
    bool, typer.Option("--quick", help="Small default workload, 300-request windows, three points per sweep.")
]
RayOption = Annotated[
    str | None,
    typer.Option("--ray-address", help="Ray cluster address (with --executor ray); default: local."),
]
QualityOption = Annotated[
    str,
    typer.Option(
        "--quality",
        help="Prompt refinement's measured quality curve: a shipped name, a .toml file written by "
        "`pdcore refine-eval --out`, or none to leave the section out.",
    ),
]

ExploreOption = Annotated[
    list[int] | None,
    typer.Option(
        "--explore",
        help="A request (by index) whose timeline report.html's explorer embeds besides those it picks; "
        "repeat for several.",
    ),
]


class _Bars:
    """One rich progress bar per stage of `reproduce`."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}
        self.lock = threading.Lock()  # the sections beside the experiments report from another thread

    def __call__(self, stage: str, done: int, total: int) -> None:
        with self.lock:
            task = self.tasks.get(stage)
            if task is None:
                task = self.tasks[stage] = self.progress.add_task(stage, total=total)
            self.progress.update(task, completed=done, total=total)


class _Lines:
    """Progress as lines, where standard error is not a terminal (a log, CI): one when a stage starts and
    one when it ends, with the time since the command started."""

    def __init__(self, console: Console, started: float) -> None:
        self.console = console
        self.started = started
        self.seen: set[str] = set()
        self.ended: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, stage: str, done: int, total: int) -> None:
        with self.lock:
            line = None
            if stage not in self.seen:
                self.seen.add(stage)
                line = f"{stage}: {total} to run"
            if done == total and stage not in self.ended:
                self.ended.add(stage)
                line = f"{stage}: {total}/{total} done"
            if line is not None:
                elapsed = time.perf_counter() - self.started
                self.console.print(escape(f"[{elapsed:6.1f} s] {line}"), soft_wrap=True)


@contextmanager
def _progress(started: float) -> Iterator[StageProgress]:
    """Bars on a terminal, lines elsewhere."""
    console = stderr()
    if not console.is_terminal:
        yield _Lines(console, started)
        return
    with progress_bars(console, transient=False) as progress:
        yield _Bars(progress)


def reproduce_command(
    *,
    out: OutOption,
    trace: TracesOption = None,
    executor: ExecutorOption = "process",
    workers: WorkersOption = None,
    quick: QuickOption = False,
    device: DeviceOption = DEFAULT_DEVICE,
    cloud: CloudOption = DEFAULT_CLOUD,
    network: NetworkOption = DEFAULT_NETWORK,
    seed: SeedOption = 0,
    ray_address: RayOption = None,
    quality: QualityOption = DEFAULT_QUALITY,
    explore: ExploreOption = None,
    fleet: ReportFleetOption = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace the contents of a non-empty --out directory (the new report is swapped in whole).",
        ),
    ] = False,
) -> None:
    """Run the headline experiments and write report.md, report.html, results.json and PNG plots."""
    with reported():
        started = time.perf_counter()
        with _progress(started) as progress:
            written = reproduce(
                out,
                trace or [],
                device=device,
                cloud=cloud,
                network=network,
                executor=executor,
                workers=workers,
                quick=quick,
                seed=seed,
                ray_address=ray_address,
                quality=quality,
                explore=explore or (),
                fleet=fleet,
                force=force,
                progress=progress,
            )
        elapsed = time.perf_counter() - started
        _warn_overloaded(written.document, cloud)
        console = stdout()
        for line in target_lines(written.document["targets"]):
            console.print(escape(line), soft_wrap=True)
        if "refinement" in written.document:
            console.print(escape(summary_line(written.document["refinement"])), soft_wrap=True)
        console.print(
            f"wrote {escape(str(written.report))}, {escape(str(written.html))}, "
            f"{escape(str(written.results))} and {len(written.plots)} plots in {elapsed:.1f} s wall",
            soft_wrap=True,
        )


def target_lines(targets: dict[str, Any]) -> list[str]:
    """The closing summary's targets: each verdict with its figure; on the stand-in, a missed target
    names the trace it belongs to, its figure there and the command that measures it."""
    ttft, gap, decode = (
        targets["ttft_cut_vs_device_only"],
        targets["max_gap_p99"],
        targets["decode_capacity_x"],
    )
    stand_in = targets["stand_in"]
    head = f"targets on {targets['workload']}"
    if stand_in:
        head += " (the embedded default, standing in for the Azure conversation trace)"
    rows = [
        (ttft["met"], f"TTFT >= 60% below device-only: mean {cut(ttft['mean'])}, p50 {cut(ttft['p50'])}"),
        (gap["met"], f"max gap p99 within the TPOT SLO: {gap_ms(gap['value_s'])}"),
        (decode["met"], f"decode capacity >= 10x cloud-only: {times(decode)}"),
    ]
    lines = [head + ":"]
    for met, text in rows:
        lines.append(f"  {'met   ' if met else 'missed'}  {text}")
    if stand_in and not decode["met"]:
        lines[-1] += (
            f" here; the target is the Azure conversation trace's "
            f"({AZURE_CONV_FIGURES['decode_capacity_x']:.1f}x in the full report: {AZURE_CONV_REPRODUCE})"
        )
    if stand_in and not all(met for met, _ in rows):
        lines.append("  (report.md's Targets say why the stand-in's figures differ from the trace's)")
    return lines


REPORT_FIX = (
    "`pdcore size --trace FILE` finds the replicas such a trace needs, and `pdcore compare --trace FILE "
    "--prefill-replicas P --decode-replicas D` compares the policies on that cloud"
)
"""The fix for an overloaded workload of the report, which runs every workload on one cloud."""


def _warn_overloaded(document: dict[str, Any], cloud: str) -> None:
    """One notice for the policies overloaded at a workload's own rate (the report's deliberate overload,
    ``under_load``, is not named)."""
    reports = {
        f"{key}: {name}": report
        for key, sections in document["workloads"].items()
        for name, report in sections.get("trace_rate", {}).get("policies", {}).items()
    }
    warn_overloaded(reports, cloud, cloud_fix=REPORT_FIX)


def register(app: typer.Typer) -> None:
    """Adds the ``reproduce`` command to ``app``."""
    app.command("reproduce")(reproduce_command)
