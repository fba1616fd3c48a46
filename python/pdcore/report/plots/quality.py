"""The PNG of prompt refinement's measured curves (the report's "Prompt refinement" section): answer
quality over the refinement ratio r, with the ablation, beside the device's prefill time over r.
``report.html`` inlines this PNG as it is."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from pdcore.report.plots.drawing import save

__all__ = ["draw_refinement", "refinement"]

_BELOW: dict[str, Any] = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.16), "ncols": 2, "fontsize": 8}
"""Where both panels put their legend: below the axes, two columns."""


def _f1_errors(points: Sequence[Mapping[str, Any]], f1_base: float) -> npt.NDArray[np.float64]:
    """Error bars of F1 at each point, in points: F1 at r = 1 minus the drop's 95% interval (clipped to
    the point itself when a bootstrap interval misses the mean)."""
    errors = np.zeros((2, len(points)))
    for index, p in enumerate(points):
        low, high = (np.nan if v is None else float(v) for v in p["drop_ci95"])
        f1 = float(p["f1"])
        errors[0, index] = max(0.0, f1 - (f1_base - high)) * 100.0
        errors[1, index] = max(0.0, (f1_base - low) - f1) * 100.0
    return np.nan_to_num(errors)


def _quality_panel(
    quality: Axes,
    points: Sequence[Mapping[str, Any]],
    ablation: Sequence[Mapping[str, Any]],
    f1_base: float,
    head: Mapping[str, Any] | None,
) -> None:
    """F1 and exact match over r, with the drop's 95% interval, the ablation and the drop target."""
    ratios = [p["ratio"] for p in points]
    quality.errorbar(
        ratios,
        [p["f1"] * 100 for p in points],
        yerr=_f1_errors(points, f1_base),
        fmt="o-",
        color="#d62728",
        capsize=4,
        label="token F1 (bars: F1 at r = 1 minus the drop's 95% CI)",
    )
    quality.plot(
        ratios, [p["exact_match"] * 100 for p in points], "s--", color="#1f77b4", label="exact match"
    )
    for p in ablation:
        weight = f"{p['question_weight']:g}"
        what = "surprisal alone" if p["question_weight"] == 0 else f"relevance weight {weight}"
        quality.errorbar(
            [p["ratio"]],
            [p["f1"] * 100],
            yerr=_f1_errors([p], f1_base),
            fmt="X",
            ms=10,
            color="#2ca02c",
            capsize=4,
            label=f"ablation F1: {what} (w = {weight})",
        )
        quality.plot(
            [p["ratio"]],
            [p["exact_match"] * 100],
            "P",
            ms=8,
            mfc="none",
            color="#2ca02c",
            label=f"ablation exact match (w = {weight})",
        )
    if head is not None:
        target = head["drop_target"] * 100
        limit = f1_base * 100 - target
        quality.axhline(
            limit,
            color="grey",
            lw=1,
            ls=":",
            label=f"{target:g}-point drop target (F1 at r = 1 minus {target:g})",
        )
    quality.set_xlabel("refinement ratio r (share of prompt tokens kept)")
    quality.set_ylabel("score (%)")
    quality.set_ylim(bottom=0.0)
    quality.set_title("answer quality on the device", fontsize=10)
    quality.legend(**_BELOW)


def _prefill_panel(
    prefill: Axes,
    points: Sequence[Mapping[str, Any]],
    ablation: Sequence[Mapping[str, Any]],
    base: Mapping[str, Any] | None,
) -> None:
    """The device's prefill time over r (bars: fastest to slowest run), the speed-ups and the line
    proportional to r."""
    ratios = [p["ratio"] for p in points]
    seconds = [p["prefill_s"] for p in points]
    spread = np.array(
        [
            [s - min(p["prefill_runs_s"] or [s]), max(p["prefill_runs_s"] or [s]) - s]
            for s, p in zip(seconds, points, strict=True)
        ]
    ).T
    prefill.errorbar(
        ratios,
        seconds,
        yerr=spread,
        fmt="o-",
        color="#d62728",
        capsize=4,
        label="measured (bars: fastest to slowest run)",
    )
    if base is not None:
        line = np.linspace(0.0, 1.0, 11)
        prefill.plot(
            line, base["prefill_s"] * line, ":", color="grey", label="proportional: prefill(r = 1) x r"
        )
    for p in points:
        if not np.isfinite(p["prefill_speedup"]):
            continue
        prefill.annotate(
            f"{p['prefill_speedup']:.2f}x",
            (p["ratio"], p["prefill_s"]),
            xytext=(-6, 8),
            textcoords="offset points",
            ha="right",
            fontsize=8,
        )
    for p in ablation:
        prefill.plot(
            [p["ratio"]],
            [p["prefill_s"]],
            "X",
            ms=8,
            mfc="none",
            mew=1.5,
            color="#2ca02c",
            zorder=3,
            label=f"ablation (w = {p['question_weight']:g})",
        )
    prefill.set_xlabel("refinement ratio r (share of prompt tokens kept)")
    prefill.set_ylabel("device prefill of the timing prompt (s)")
    prefill.set_ylim(bottom=0.0)
    prefill.set_title("device prefill time (labels: speed-up over r = 1)", fontsize=10)
    prefill.legend(**_BELOW)


def draw_refinement(entry: Mapping[str, Any]) -> Figure:
    """Prompt refinement's measured curves: F1 and EM over r with the drop's 95% interval and the
    ablation (left); the device's prefill time over r, with the speed-up and the proportional line
    (right)."""
    points = sorted(entry["points"], key=lambda p: p["ratio"])
    ablation = sorted(entry["ablation"], key=lambda p: p["ratio"])
    base = next((p for p in points if p["ratio"] == 1.0), None)
    f1_base = float(base["f1"]) if base is not None else float(points[-1]["f1"] + points[-1]["drop"])
    figure = Figure(figsize=(11, 5.4), layout="constrained")
    quality, prefill = figure.subplots(1, 2)
    _quality_panel(quality, points, ablation, f1_base, entry["headline"])
    _prefill_panel(prefill, points, ablation, base)
    for ax in (quality, prefill):
        ax.set_xlim(0.0, 1.05)
        ax.grid(True, alpha=0.3)
    evaluation = entry["evaluation"]
    figure.suptitle(
        f"prompt refinement, {entry['name']}: {evaluation.get('items', '?')} items, seed "
        f"{evaluation.get('seed', '?')}, {evaluation.get('machine', 'machine not recorded')}",
        fontsize=11,
    )
    return figure


def refinement(entry: Mapping[str, Any], path: Path) -> Path:
    """Writes `draw_refinement`'s figure to ``path``."""
    return save(draw_refinement(entry), path)
