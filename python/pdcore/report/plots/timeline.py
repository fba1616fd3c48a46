"""The PNG of one workload's display timeline: the representative request under P/D-Device and under the
naive split, token by token (``report.html`` shows it in the timeline explorer instead,
`pdcore.report.page`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from pdcore.report.experiments import WorkloadRun
from pdcore.report.plots.drawing import save

__all__ = ["draw_timeline", "timeline"]


def _timeline_panel(ax: Axes, policy: str, recorded: Mapping[str, Any], max_tpot_s: float) -> None:
    arrivals = np.asarray(recorded["cloud_arrivals_s"], dtype=np.float64)
    displays = np.asarray(recorded["displays_s"], dtype=np.float64)
    from_cloud = np.asarray(recorded["from_cloud"], dtype=np.bool_)
    positions = np.arange(displays.size)
    if arrivals.size:
        ax.plot(
            arrivals,
            np.arange(arrivals.size),
            "o",
            ms=4,
            mfc="none",
            color="#1f77b4",
            label="cloud token arrives",
        )
    ax.plot(
        displays[from_cloud],
        positions[from_cloud],
        ".",
        ms=5,
        color="#1f77b4",
        label="displayed, from the cloud",
    )
    ax.plot(
        displays[~from_cloud],
        positions[~from_cloud],
        ".",
        ms=5,
        color="#d62728",
        label="displayed, from the device",
    )
    handoff = recorded.get("handoff_s")
    if handoff is not None:
        ax.axvline(handoff, color="black", lw=1, ls=":", label=f"hand-off ({handoff:.3f} s)")
    gaps = np.diff(displays)
    worst = int(np.argmax(gaps)) if gaps.size else -1
    if worst >= 0:
        ax.annotate(
            f"largest gap {gaps[worst] * 1e3:.0f} ms (SLO {max_tpot_s * 1e3:.0f} ms)",
            xy=(displays[worst + 1], worst + 1),
            xytext=(0.35, 0.12),
            textcoords="axes fraction",
            fontsize=8,
            arrowprops={"arrowstyle": "->", "lw": 0.8},
        )
    end = _zoom_end(displays, handoff)
    shown = int(np.searchsorted(displays, end, side="right"))
    ax.set_xlim(0.0, end)
    ax.set_ylim(-1.0, max(shown, 2) + 1.0)
    k = recorded["k"]
    plan = f"k = {k}" if k >= 0 else f"mode {recorded['mode']}"
    ax.set_title(f"{policy} ({plan}); first {shown} of {displays.size} tokens", fontsize=10)
    ax.set_xlabel("seconds since the request arrived")
    ax.grid(True, alpha=0.3)


def _zoom_end(displays: npt.NDArray[np.float64], handoff: float | None) -> float:
    """Where the timeline's x axis ends: past the hand-off by half a second (or 60% of it), or after
    the first 40 tokens without one (the explorer's script zooms the same way)."""
    if displays.size == 0:
        return 1.0
    if handoff is not None:
        end = handoff + max(0.5, 0.6 * handoff)
    else:
        end = float(displays[min(displays.size, 40) - 1]) * 1.05
    return min(end, float(displays[-1]) * 1.02 + 0.01)


def draw_timeline(run: WorkloadRun, max_tpot_s: float) -> Figure:
    """The display timeline of the representative request under P/D-Device and the naive split."""
    policies = [policy for policy in ("pd-device", "naive-split") if policy in run.timelines]
    figure = Figure(figsize=(11, 4.4), layout="constrained")
    axes = figure.subplots(1, max(len(policies), 1), sharey=True, squeeze=False)[0]
    for ax, policy in zip(axes, policies, strict=False):
        _timeline_panel(ax, policy, run.timelines[policy], max_tpot_s)
    axes[0].set_ylabel("token position")
    axes[0].legend(loc="upper left", fontsize=8)
    if policies:
        first = run.timelines[policies[0]]
        figure.suptitle(
            f"{run.key}: request {first['request']} ({first['prompt_tokens']} prompt tokens, "
            f"{first['output_tokens']} output tokens, one-way delay {first['one_way_s'] * 1e3:.0f} ms)",
            fontsize=11,
        )
    return figure


def timeline(run: WorkloadRun, path: Path, max_tpot_s: float) -> Path:
    """Writes `draw_timeline`'s figure to ``path``."""
    return save(draw_timeline(run, max_tpot_s), path)
