"""The PNG figures of the report's sections that span workloads: the optimizer's ``k*`` over prompt
length, the cloud sizing curves, latency against cost and energy, and TTFT by conversation turn.

Each ``draw_*`` function returns the figure; the function without the prefix writes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

from pdcore.report.plots.drawing import save
from pdcore.report.style import energy_range

__all__ = [
    "conversations_plot",
    "draw_conversations",
    "draw_k_star",
    "draw_sizing",
    "draw_tradeoff",
    "k_star",
    "sizing_plot",
    "tradeoff_plot",
]


def draw_k_star(section: Mapping[str, Any], max_tpot_s: float) -> Figure:
    """The optimizer's ``k*`` over prompt length for every shipped device profile (log prompt axis,
    base 2; symmetric-log ``k*`` axis, linear below 1)."""
    figure = Figure(figsize=(9, 5.2), layout="constrained")
    ax = figure.subplots()
    for name, rows in section["k_star"].items():
        prompts = np.array([row["prompt_tokens"] for row in rows], dtype=np.float64)
        ks = np.array([row["k"] for row in rows], dtype=np.float64)
        alone = np.array([row["mode"] == "device" for row in rows])
        capped = np.array([not row["converged"] for row in rows])
        (line,) = ax.plot(prompts, ks, "-", lw=1.5, label=name)
        colour = line.get_color()
        ax.plot(prompts[~alone & ~capped], ks[~alone & ~capped], "o", ms=3, color=colour)
        if alone.any():
            ax.plot(prompts[alone], ks[alone], "o", ms=6, mfc="none", color=colour)
        if capped.any():
            ax.plot(prompts[capped], ks[capped], "x", ms=7, color=colour)
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("prompt tokens")
    ax.set_ylabel("k* (cloud decode tokens after the first)")
    ax.set_title(
        f"optimizer k* on an idle cloud, one-way delay {section['one_way_s'] * 1e3:.0f} ms, "
        f"pace {max_tpot_s * 1e3:.0f} ms  (open circle: device alone; x: no fixed point, capped)",
        fontsize=9,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return figure


def k_star(section: Mapping[str, Any], path: Path, max_tpot_s: float) -> Path:
    """Writes `draw_k_star`'s figure to ``path``."""
    return save(draw_k_star(section, max_tpot_s), path)


def draw_sizing(section: Mapping[str, Any]) -> Figure:
    """GPUs needed at the SLO over request rate (log axis, base 2), per policy variant, one panel per
    workload."""
    curves = section["curves"]
    figure = Figure(figsize=(4.2 * len(curves), 4.2), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(curves), squeeze=False)[0])
    for ax, (key, variants) in zip(axes, curves.items(), strict=True):
        for label, points in variants.items():
            rates = np.array([p["rate_rps"] for p in points], dtype=np.float64)
            gpus = np.array([np.nan if p["gpus"] is None else p["gpus"] for p in points], dtype=np.float64)
            ax.plot(rates, gpus, "o-", ms=4, lw=1.5, label=label)
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.set_xlabel("request rate (req/s)")
        ax.set_ylabel("GPUs needed at the SLO")
        ax.set_title(key, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    figure.suptitle(
        f"smallest disaggregated cloud meeting TTFT and the largest gap for {section['target']:.0%} of "
        "requests (a missing point: no cloud tried meets it)",
        fontsize=9,
    )
    return figure


def sizing_plot(section: Mapping[str, Any], path: Path) -> Path:
    """Writes `draw_sizing`'s figure to ``path``."""
    return save(draw_sizing(section), path)


def draw_conversations(section: Mapping[str, Any]) -> Figure:
    """Median TTFT (log axis) by turn bucket per policy, one panel per multi-turn workload (the
    "Conversations" section)."""
    workloads = section["workloads"]
    figure = Figure(figsize=(4.6 * len(workloads), 4.2), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(workloads), squeeze=False)[0])
    for ax, (key, entry) in zip(axes, workloads.items(), strict=True):
        rows = entry["rows"]
        turns = [row["turn"] for row in rows]
        for policy in rows[0]["ttft_p50_s"] if rows else ():
            values = [row["ttft_p50_s"][policy] for row in rows]
            ms = np.array([np.nan if v is None else v * 1e3 for v in values], dtype=np.float64)
            ax.plot(turns, ms, "o-", ms=4, lw=1.5, label=policy)
        ax.set_yscale("log")
        ax.set_xlabel("turn")
        ax.set_ylabel("TTFT p50 (ms)")
        ax.set_title(f"{key} ({entry['requests']} requests)", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    figure.suptitle(
        "first turns and follow-ups: the device's session cache and the cloud's prefix cache shorten "
        "follow-ups' prefills",
        fontsize=9,
    )
    return figure


def conversations_plot(section: Mapping[str, Any], path: Path) -> Path:
    """Writes `draw_conversations`'s figure to ``path``."""
    return save(draw_conversations(section), path)


def draw_tradeoff(section: Mapping[str, Any]) -> Figure:
    """TTFT (p50) against cloud dollars per 1,000 requests, coloured by device energy per request (log
    colour scale over `pdcore.report.style.energy_range`, one for every panel): one point per policy and
    per weight setting, one panel per workload (the "Latency, cost and energy" section)."""
    points = section["points"]
    figure = Figure(figsize=(6.6 * len(points) + 1.0, 5.0), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(points), squeeze=False)[0])
    found = energy_range(section)
    norm = LogNorm(*found) if found is not None else None
    scatter = None
    for ax, (key, rows) in zip(axes, points.items(), strict=True):
        known = [p for p in rows if p["usd_per_1k_requests"] is not None and p["ttft_p50_s"] is not None]
        usd = np.array([p["usd_per_1k_requests"] for p in known], dtype=np.float64)
        ttft = np.array([p["ttft_p50_s"] for p in known], dtype=np.float64)
        energy = np.array(
            [np.nan if p["device_mj_per_request"] is None else p["device_mj_per_request"] for p in known]
        )
        weighted = np.array([p["cost_weight"] > 0 or p["energy_weight"] > 0 for p in known], dtype=bool)
        for mask, marker in ((~weighted, "o"), (weighted, "^")):
            if mask.any():
                scatter = ax.scatter(
                    usd[mask],
                    ttft[mask],
                    c=energy[mask],
                    cmap="viridis",
                    norm=norm,
                    marker=marker,
                    s=46,
                    edgecolors="black",
                    linewidths=0.4,
                )
        for p, x, y in zip(known, usd, ttft, strict=True):
            ax.annotate(p["label"], (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("cloud $ per 1,000 requests")
        ax.set_ylabel("TTFT p50 (s)")
        ax.set_title(key, fontsize=9)
        ax.grid(True, alpha=0.3)
    if scatter is not None:
        figure.colorbar(scatter, ax=list(axes), label="device energy per request (mJ, log scale)")
    figure.suptitle(
        "latency, cost and energy: circles are policies,\n"
        "triangles P/D-Device with a weight on cost or energy",
        fontsize=9,
    )
    return figure


def tradeoff_plot(section: Mapping[str, Any], path: Path) -> Path:
    """Writes `draw_tradeoff`'s figure to ``path``."""
    return save(draw_tradeoff(section), path)
