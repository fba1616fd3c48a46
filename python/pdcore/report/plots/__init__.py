"""The PNG figures of ``pdcore reproduce`` (matplotlib, drawn off-screen without pyplot).

Every function takes the numbers `pdcore.report.experiments` collected and writes one file; none reads
global matplotlib state, so figures do not leak into one another. Colours are fixed per policy across
figures (`pdcore.report.style`), and ``report.html``'s interactive figures (`pdcore.report.figures`) use
the same axis scales and colour scales.

By figure family: one workload's figures (`pdcore.report.plots.workload`), its display timeline
(`pdcore.report.plots.timeline`), the sections that span workloads (`pdcore.report.plots.sections`),
prompt refinement (`pdcore.report.plots.quality`); `write_plots` writes them all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pdcore.report.experiments import WorkloadRun
from pdcore.report.fleet import SWEEP_FIGURE, sweep_figure
from pdcore.report.plots.quality import refinement
from pdcore.report.plots.sections import conversations_plot, k_star, sizing_plot, tradeoff_plot
from pdcore.report.plots.timeline import timeline
from pdcore.report.plots.workload import capacity_over_slo, sensitivity, ttft_cdf
from pdcore.report.style import COLOURS, file_stem

__all__ = [
    "COLOURS",
    "capacity_over_slo",
    "conversations_plot",
    "file_stem",
    "k_star",
    "refinement",
    "sensitivity",
    "sizing_plot",
    "timeline",
    "tradeoff_plot",
    "ttft_cdf",
    "write_plots",
]


def write_plots(
    runs: Sequence[WorkloadRun],
    optimizer: Mapping[str, Any],
    out_dir: Path,
    *,
    max_tpot_s: float,
    presets: Mapping[str, float],
    refined: Mapping[str, Any] | None = None,
    sizing: Mapping[str, Any] | None = None,
    tradeoff: Mapping[str, Any] | None = None,
    conversations: Mapping[str, Any] | None = None,
    fleet: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, str]]:
    """Writes every figure into ``out_dir``; returns file names by workload key (``""`` for the
    workload-independent ones) and figure name. ``refined``: the report's ``refinement`` entry, if any;
    ``sizing``: its ``sizing`` entry, if any; ``tradeoff``: its latency, cost and energy entry, if any;
    ``fleet``: its ``fleet`` entry, if any (GPUs against the capable share, `pdcore.report.fleet`)."""
    written: dict[str, dict[str, str]] = {}
    for run in runs:
        stem = file_stem(run.key)
        files = {
            "ttft_cdf": ttft_cdf(run, out_dir / f"{stem}_ttft_cdf.png"),
            "timeline": timeline(run, out_dir / f"{stem}_timeline.png", max_tpot_s),
            "capacity_slo": capacity_over_slo(run, out_dir / f"{stem}_capacity_slo.png"),
            "sensitivity": sensitivity(run, out_dir / f"{stem}_sensitivity.png", presets),
        }
        written[run.key] = {name: file.name for name, file in files.items()}
    written[""] = {"k_star": k_star(optimizer, out_dir / "k_star.png", max_tpot_s).name}
    if refined is not None:
        written[""]["refinement"] = refinement(refined, out_dir / "refinement.png").name
    if sizing is not None:
        written[""]["sizing"] = sizing_plot(sizing, out_dir / "sizing.png").name
    if tradeoff is not None:
        written[""]["tradeoff"] = tradeoff_plot(tradeoff, out_dir / "tradeoff.png").name
    if conversations is not None:
        written[""]["conversations"] = conversations_plot(conversations, out_dir / "conversations.png").name
    if fleet is not None:
        written[""]["fleet_sweep"] = sweep_figure(fleet, out_dir / SWEEP_FIGURE).name
    return written
