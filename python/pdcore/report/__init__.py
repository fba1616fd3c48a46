"""``pdcore reproduce``: the headline experiments, written as ``report.md``, ``report.html``, ``results.json``
and PNG plots.

`reproduce` builds the study once (`pdcore.report.study.Study`: the settings, the scenario built from them,
the device profiles and the workloads loaded once), runs the experiments of `pdcore.report.experiments` on
the embedded default workload and on every trace given, through `pdcore.sim.sweep.run_sweep`, then the
report's other sections (`pdcore.report.sections.SECTIONS`, each a small function of the built study: those
that need nothing the experiments measure run beside them, in one more process), and writes the report, with
prompt refinement's measured quality and prefill-time curves read from a data file
(`pdcore.report.refinement`). ``results.json`` is deterministic for the same arguments (sorted keys,
rounded floats, no wall-clock times); the plots need the ``plot`` extra (matplotlib, and plotly for the
interactive ``report.html``, `pdcore.report.html`).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pdcore import __version__
from pdcore.exceptions import InvalidInputError
from pdcore.fleet import Fleet, load_fleet
from pdcore.outputs import atomic_directory, check_output_dir, write_text
from pdcore.profiles import (
    DEFAULT_CLOUD,
    DEFAULT_DEVICE,
    DEFAULT_NETWORK,
    NETWORK_PRESETS,
    profile_provenance,
)
from pdcore.report import refinement
from pdcore.report.experiments import POLICIES, Settings, StageProgress, WorkloadRun, collect
from pdcore.report.explorer import explorer_data
from pdcore.report.sections import SECTIONS, Beside
from pdcore.report.study import Study
from pdcore.sim.executors import check_executor
from pdcore.sim.metrics import dumps
from pdcore.sim.spec import ScenarioSpec, named_input
from pdcore.traces import trace_path

__all__ = [
    "DEFAULT_CLOUD",
    "DEFAULT_DEVICE",
    "DEFAULT_NETWORK",
    "DEFAULT_QUALITY",
    "POLICIES",
    "SECTIONS",
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


def _check_tools(executor: str) -> None:
    """Refuses an unknown executor, and a missing plotting library or Ray, before any work."""
    check_executor(executor)
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


def _inputs(
    traces: Sequence[str | os.PathLike[str]], scenario: ScenarioSpec, quality: str | os.PathLike[str] | None
) -> dict[str, str]:
    """The files the report reads, which no output may replace and its directory may not hold: the traces,
    the profile files (`ScenarioSpec.inputs`) and the quality curve's file (whatever their names)."""
    inputs = {f"--trace {os.fspath(trace)}": os.fspath(trace) for trace in traces}
    return inputs | scenario.inputs() | named_input("--quality", quality)


def _fleet(fleet: str | os.PathLike[str] | None) -> tuple[str | None, Fleet | None]:
    """The ``--fleet`` as given and the fleet it names, loaded (`pdcore.fleet.load_fleet`); None twice
    without one."""
    if fleet is None:
        return None, None
    name = os.fspath(fleet)
    return name, load_fleet(name)


def _check_explore(explore: Sequence[int], runs: Sequence[WorkloadRun]) -> None:
    largest = max(len(run.workload) for run in runs)
    for request in explore:
        if isinstance(request, bool) or not isinstance(request, int) or not 0 <= request < largest:
            raise InvalidInputError(
                f"--explore {request!r}: no workload has that request; fix: pass an index from 0 to "
                f"{largest - 1}"
            )


def _document(study: Study, traces: Sequence[str], sections: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """``results.json``: the settings, each workload's sections, then every section of `SECTIONS`."""
    profiles = {
        "device": profile_provenance(study.scenario.device),
        "cloud": profile_provenance(study.scenario.cloud),
    }
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "pdcore_version": __version__,
        "config": study.settings.describe() | {"traces": list(traces), "profiles": profiles},
        "workloads": {run.key: run.sections for run in study.runs},
    }
    return document | dict(sections)


def _write(out: Path, study: Study, document: dict[str, Any], *, force: bool) -> Reproduction:
    """Writes the report into a sibling directory and swaps it in whole."""
    from pdcore.report.html import render_html  # noqa: PLC0415  # the plots need matplotlib, checked first
    from pdcore.report.markdown import render  # noqa: PLC0415
    from pdcore.report.plots import write_plots  # noqa: PLC0415

    max_tpot_s = study.settings.slo.max_tpot_s
    presets = {name: profile.rtt_s for name, profile in NETWORK_PRESETS.items()}
    with atomic_directory(out, force=force) as building:
        write_text(building / "results.json", dumps(document))
        copied = None
        if study.curve is not None:
            copied = out / study.curve.file_name
            write_text(building / study.curve.file_name, study.curve.text)
        study.stage("plots", 0, 1)
        plots = write_plots(
            study.runs,
            document["optimizer"],
            building,
            max_tpot_s=max_tpot_s,
            presets=presets,
            refined=document.get("refinement"),
            sizing=document["sizing"],
            tradeoff=document["tradeoff"],
            conversations=document["conversations"],
            fleet=document.get("fleet"),
        )
        study.stage("plots", 1, 1)
        markdown = render(document, plots)
        write_text(building / "report.md", markdown)
        study.stage("report.html", 0, 1)
        explorers = {
            run.key: found for run in study.runs if (found := explorer_data(run, max_tpot_s)) is not None
        }
        page = render_html(
            markdown,
            study.runs,
            document["optimizer"],
            plots,
            building,
            presets=presets,
            explorers=explorers,
            sizing=document["sizing"],
            tradeoff=document["tradeoff"],
            fleet=document.get("fleet"),
        )
        write_text(building / "report.html", page)
        study.stage("report.html", 1, 1)
    files = tuple(out / name for figures in plots.values() for name in figures.values())
    return Reproduction(
        report=out / "report.md",
        html=out / "report.html",
        results=out / "results.json",
        plots=files,
        document=document,
        quality=copied,
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
    fleet: str | os.PathLike[str] | None = None,
) -> Reproduction:
    """Runs the headline experiments and writes ``report.md``, ``report.html``, ``results.json`` and the
    plots.

    Args:
        out_dir: The directory to write into (created if missing).
        traces: Azure CSV or Mooncake JSONL traces, or names of registered public traces in the cache
            (`pdcore.traces.trace_path`), each reported beside the embedded default.
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
        fleet: A fleet (a shipped name or a .toml path, `pdcore.fleet.load_fleet`): the report gains a
            fleet section (`pdcore.report.fleet_study`); None: none.
        force: Replace the contents of a non-empty ``out_dir``. The report is always built in a sibling
            temporary directory and swapped in whole (`pdcore.outputs.atomic_directory`), so an interrupted
            run leaves the previous report as it was.

    Returns:
        The files written and the report document.

    Raises:
        InvalidInputError: An unknown executor, profile or fleet, an unreadable trace, quality curve or
            fleet, matplotlib, plotly or Ray missing, an output directory that is a file, holds an input of
            the run (a trace, a profile, a curve or a fleet file, whatever its name), is the current
            directory, one above it, the home directory or the root, or is not empty without ``force``;
            each before any experiment runs.
    """
    _check_tools(executor)
    settings = (Settings.quick_preset if quick else Settings.full)(
        device=device, cloud=cloud, network=network, seed=seed
    )
    spec = settings.scenario_spec()
    scenario = spec.build()
    curve = refinement.load(quality)
    fleet_name, loaded = _fleet(fleet)
    settings = replace(settings, quality=None if curve is None else str(quality), explore=tuple(explore))
    settings = replace(settings, fleet=fleet_name)
    out = Path(out_dir)
    paths = [trace_path(trace) for trace in traces]  # a registered name is its cached file
    inputs = _inputs(paths, spec, quality) | named_input("--fleet", fleet_name)
    check_output_dir(out, force=force, inputs=inputs)
    study = Study.build(settings, scenario, paths, curve=curve, progress=progress, fleet=loaded)
    # every input is read (and noted) by now, in this process: checked again before any experiment runs
    check_output_dir(out, force=force, inputs=inputs)
    _check_explore(explore, study.runs)
    beside = Beside(study, concurrent=executor != "serial")
    try:
        beside.start()
        collect(study, executor=executor, workers=workers, ray_address=ray_address)
        document = _document(study, paths, beside.results())
    finally:
        beside.close()
    return _write(out, study, document, force=force)
