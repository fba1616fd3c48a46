"""``pdcore reproduce``: the headline experiments, written as ``report.md``, ``report.html``, ``results.json``
and PNG plots.

`reproduce` runs the experiments of `pdcore.report.experiments` on the embedded default workload and on
every trace given, through `pdcore.sim.sweep.run_sweep`, then writes the report, with prompt refinement's
measured quality and prefill-time curves read from a data file (`pdcore.report.refinement`).
``results.json`` is deterministic for the same arguments (sorted keys, rounded floats, no wall-clock
times); the plots need the ``plot`` extra (matplotlib, and plotly for the interactive ``report.html``,
`pdcore.report.html`).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pdcore import __version__
from pdcore.exceptions import InvalidInputError
from pdcore.outputs import atomic_directory, check_output_dir, write_text
from pdcore.profiles import (
    DEFAULT_CLOUD,
    DEFAULT_DEVICE,
    DEFAULT_NETWORK,
    NETWORK_PRESETS,
    load_cloud_profile,
    load_device_profile,
    network_preset,
    profile_provenance,
)
from pdcore.report import refinement
from pdcore.report.conversations import conversations_section
from pdcore.report.experiments import (
    FASTER_DEVICE,
    POLICIES,
    Settings,
    StageProgress,
    WorkloadRun,
    collect,
    optimizer_section,
    targets_section,
)
from pdcore.report.explorer import explorer_data
from pdcore.report.sizing import sizing_section
from pdcore.report.tradeoff import tradeoff_section
from pdcore.sim.metrics import dumps
from pdcore.sim.sweep import EXECUTORS, WorkloadSpec
from pdcore.traces import load_trace

__all__ = [
    "DEFAULT_CLOUD",
    "DEFAULT_DEVICE",
    "DEFAULT_NETWORK",
    "DEFAULT_QUALITY",
    "POLICIES",
    "Reproduction",
    "Settings",
    "StageProgress",
    "reproduce",
]

DEFAULT_QUALITY = refinement.DEFAULT_QUALITY
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Reproduction:
    """What `reproduce` wrote.

    Attributes:
        report: ``report.md``.
        html: ``report.html``, the interactive page (`pdcore.report.html`).
        results: ``results.json``.
        plots: The PNG files.
        document: The contents of ``results.json`` (before rounding).
        quality: The copy of the refinement curve's data file (None without a refinement section).
    """

    report: Path
    html: Path
    results: Path
    plots: tuple[Path, ...]
    document: dict[str, Any]
    quality: Path | None = None


def _primary(runs: Sequence[WorkloadRun]) -> tuple[WorkloadRun, bool]:
    """The workload the targets are checked on: the Azure conversation trace if given, else the default."""
    for run in runs[1:]:
        name = run.workload.name.lower()
        if "azure" in name and "conv" in name:
            return run, False
    return runs[0], True


def _unique_key(name: str, taken: set[str]) -> str:
    key, suffix = name, 2
    while key in taken:
        key, suffix = f"{name}-{suffix}", suffix + 1
    taken.add(key)
    return key


def _check_explore(explore: Sequence[int], runs: Sequence[WorkloadRun]) -> None:
    largest = max(len(run.workload) for run in runs)
    for request in explore:
        if isinstance(request, bool) or not isinstance(request, int) or not 0 <= request < largest:
            raise InvalidInputError(
                f"--explore {request!r}: no workload has that request; fix: pass an index from 0 to "
                f"{largest - 1}"
            )


def reproduce(
    out_dir: str | os.PathLike[str],
    traces: Sequence[str | os.PathLike[str]] = (),
    *,
    device: str = DEFAULT_DEVICE,
    cloud: str = DEFAULT_CLOUD,
    network: str = DEFAULT_NETWORK,
    executor: str = "process",
    workers: int | None = None,
    quick: bool = False,
    seed: int = 0,
    ray_address: str | None = None,
    quality: str | os.PathLike[str] | None = DEFAULT_QUALITY,
    progress: StageProgress | None = None,
    force: bool = False,
    explore: Sequence[int] = (),
) -> Reproduction:
    """Runs the headline experiments and writes ``report.md``, ``report.html``, ``results.json`` and the
    plots.

    Args:
        out_dir: The directory to write into (created if missing).
        traces: Azure CSV or Mooncake JSONL traces, each reported beside the embedded default.
        device: Device profile of the headline experiments (name or .toml path).
        cloud: Cloud profile (name or .toml path).
        network: Network preset.
        executor: ``"process"``, ``"serial"`` or ``"ray"`` (`pdcore.sim.sweep.run_sweep`).
        workers: Worker processes (or Ray tasks in flight); None: one per CPU.
        quick: The quick preset: a small default workload, 300-request windows and short sweeps.
        seed: Seed of the embedded default workload and of the network delays.
        ray_address: The Ray cluster to use with ``executor="ray"``.
        quality: The refinement curve to report: a shipped name, the path of a ``.toml`` file written by
            ``pdcore refine-eval --out``, or None (or ``"none"``) for no refinement section.
        progress: Called with (stage, done, total) as the work advances.
        explore: Requests (by index) whose timelines ``report.html``'s explorer embeds besides those it
            picks, in every workload that has them.
        force: Replace the contents of a non-empty ``out_dir``. The report is always built in a sibling
            temporary directory and swapped in whole (`pdcore.outputs.atomic_directory`), so an interrupted
            run leaves the previous report as it was.

    Returns:
        The files written and the report document.

    Raises:
        InvalidInputError: An unknown executor or profile, an unreadable trace or quality curve, matplotlib,
            plotly or Ray missing, an output directory that is a file, holds a trace, or is not empty without
            ``force``.
    """
    if executor not in EXECUTORS:
        raise InvalidInputError(f"--executor {executor!r} is unknown; fix: use one of {', '.join(EXECUTORS)}")
    for module, use in (("matplotlib", "draws its plots with"), ("plotly", "embeds in report.html")):
        if importlib.util.find_spec(module) is None:
            raise InvalidInputError(
                f"pdcore reproduce {use} {module}, which is not installed; fix: `pip install 'pdcore[plot]'`"
            )
    if executor == "ray" and importlib.util.find_spec("ray") is None:
        raise InvalidInputError(
            "--executor ray needs Ray, which is not installed; fix: `pip install 'pdcore[ray]'`, "
            "or use --executor process"
        )
    profiles = {
        "device": profile_provenance(load_device_profile(device)),
        "cloud": profile_provenance(load_cloud_profile(cloud)),
    }
    network_preset(network)
    curve = refinement.load(quality)
    out = Path(out_dir)
    inputs: dict[str, str | os.PathLike[str] | None] = {f"--trace {trace}": trace for trace in traces}
    for name, given in (("--device", device), ("--cloud", cloud), ("--quality", quality)):
        if given is not None and str(given).endswith(".toml"):
            inputs[name] = given
    check_output_dir(out, force=force, inputs=inputs)
    preset = Settings.quick_preset if quick else Settings.full
    settings = preset(
        device=device,
        cloud=cloud,
        network=network,
        seed=seed,
        quality=None if curve is None else str(quality),
    )
    settings = replace(settings, explore=tuple(explore))

    taken: set[str] = set()
    default = WorkloadSpec(seed=seed, requests=settings.synthetic_requests)
    loaded = default.load()
    runs = [WorkloadRun(key=_unique_key(loaded.name, taken), spec=default, workload=loaded)]
    for trace in traces:
        spec = WorkloadSpec(trace=str(trace), limit=settings.trace_limit)
        loaded = load_trace(trace).limit(settings.trace_limit)
        runs.append(WorkloadRun(key=_unique_key(loaded.name, taken), spec=spec, workload=loaded))

    _check_explore(explore, runs)
    collect(runs, settings, executor=executor, workers=workers, ray_address=ray_address, progress=progress)
    if progress is not None:
        progress("optimizer", 0, 1)
    optimizer = optimizer_section(settings)
    if progress is not None:
        progress("optimizer", 1, 1)
    sizing = sizing_section(
        {run.key: run.workload for run in runs},
        device=settings.device,
        faster_device=FASTER_DEVICE,
        cloud=settings.cloud,
        network=settings.network,
        seed=seed,
        window=settings.window,
        target=settings.target,
        quick=quick,
        refine_ratio=settings.refine_ratio,
        progress=progress,
    )
    tradeoff = tradeoff_section(
        {run.key: run.workload for run in runs},
        device=settings.device,
        cloud=settings.cloud,
        network=settings.network,
        seed=seed,
        quick=quick,
        progress=progress,
    )
    conversations = conversations_section(
        {run.key: run.workload for run in runs},
        device=settings.device,
        cloud=settings.cloud,
        network=settings.network,
        seed=seed,
        quick=quick,
        progress=progress,
    )
    primary, stand_in = _primary(runs)
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "pdcore_version": __version__,
        "config": settings.describe() | {"traces": [str(trace) for trace in traces], "profiles": profiles},
        "workloads": {run.key: run.sections for run in runs},
        "optimizer": optimizer,
        "targets": targets_section(primary, settings, stand_in=stand_in),
        "sizing": sizing,
        "tradeoff": tradeoff,
        "conversations": conversations,
    }
    if curve is not None:
        document["refinement"] = refinement.section(curve, ratio=settings.refine_ratio)

    from pdcore.report.html import render_html  # noqa: PLC0415  # the plots need matplotlib, checked above
    from pdcore.report.markdown import render  # noqa: PLC0415
    from pdcore.report.plots import write_plots  # noqa: PLC0415

    with atomic_directory(out, force=force) as building:
        write_text(building / "results.json", dumps(document))
        copied = None
        if curve is not None:
            copied = out / curve.file_name
            write_text(building / curve.file_name, curve.text)
        if progress is not None:
            progress("plots", 0, 1)
        presets = {name: profile.rtt_s for name, profile in NETWORK_PRESETS.items()}
        plots = write_plots(
            runs,
            optimizer,
            building,
            max_tpot_s=settings.slo.max_tpot_s,
            presets=presets,
            refined=document.get("refinement"),
            sizing=sizing,
            tradeoff=tradeoff,
            conversations=conversations,
        )
        if progress is not None:
            progress("plots", 1, 1)
        markdown = render(document, plots)
        write_text(building / "report.md", markdown)
        if progress is not None:
            progress("report.html", 0, 1)
        explorers = {
            run.key: found
            for run in runs
            if (found := explorer_data(run, settings.slo.max_tpot_s)) is not None
        }
        page = render_html(
            markdown,
            runs,
            optimizer,
            plots,
            building,
            presets=presets,
            explorers=explorers,
            sizing=sizing,
            tradeoff=tradeoff,
        )
        write_text(building / "report.html", page)
        if progress is not None:
            progress("report.html", 1, 1)
    files = tuple(out / name for figures in plots.values() for name in figures.values())
    return Reproduction(
        report=out / "report.md",
        html=out / "report.html",
        results=out / "results.json",
        plots=files,
        document=document,
        quality=copied,
    )
