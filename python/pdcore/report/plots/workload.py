"""The PNG figures of one workload: TTFT CDFs per policy, capacity over the TPOT objective, and
P/D-Device's sensitivity to the round trip and to device speed (the display timeline is in
`pdcore.report.plots.timeline`).

Each ``draw_*`` function returns the figure; the function of the same name without the prefix writes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, ScalarFormatter

from pdcore.report.experiments import POLICIES, WorkloadRun
from pdcore.report.markdown.formats import arrival_rate
from pdcore.report.plots.drawing import major_label, minor_label, percent, save
from pdcore.report.style import COLOURS

__all__ = [
    "capacity_over_slo",
    "draw_capacity_over_slo",
    "draw_sensitivity",
    "draw_ttft_cdf",
    "sensitivity",
    "ttft_cdf",
]

_CDF_STYLE: dict[str, tuple[float, str]] = {
    "cloud-only": (4.0, "-"),
    "device-only": (3.2, "-"),
    "pd-device": (2.4, "-"),
    "naive-split": (1.8, "--"),
    "kv-transfer": (1.6, "-"),
    "race": (1.2, ":"),
    "disco": (1.4, "-."),
    "router": (1.2, "--"),
    "spec-decode": (1.2, "-."),
}


def draw_ttft_cdf(run: WorkloadRun) -> Figure:
    """TTFT CDF per policy at the trace's rate and at cloud-only's capacity, log time axis."""
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    load = run.sections["under_load"]
    titles = {
        "trace_rate": f"at the trace's rate ({arrival_rate(run.sections['workload']['rate_rps'])})",
        "under_load": (
            f"at cloud-only capacity ({load['rate_rps']:.2f} req/s, first {load['requests']} requests)"
        ),
    }
    for ax, (point, title) in zip(axes, titles.items(), strict=True):
        for policy in POLICIES:
            values = np.sort(run.ttft_s[point][policy][np.isfinite(run.ttft_s[point][policy])])
            if values.size == 0:
                continue
            share = np.arange(1, values.size + 1) / values.size
            width, style = _CDF_STYLE[policy]
            ax.step(
                values, share, where="post", label=policy, color=COLOURS[policy], linestyle=style, lw=width
            )
        ax.set_xscale("log")
        ax.set_xlabel("TTFT (s), arrival to first displayed token")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("share of requests")
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=9)
    figure.suptitle(
        f"{run.key}: time to first token (policies that coincide are drawn thinner on top of each other)",
        fontsize=11,
    )
    return figure


def ttft_cdf(run: WorkloadRun, path: Path) -> Path:
    """Writes `draw_ttft_cdf`'s figure to ``path``."""
    return save(draw_ttft_cdf(run), path)


def _capacity_series(ax: Axes, rows: Sequence[Mapping[str, Any]], policy: str, key: str) -> None:
    xs = [row["max_tpot_s"] * 1e3 for row in rows]
    found: list[tuple[float, float]] = []
    above: list[tuple[float, float]] = []
    below: list[tuple[float, float]] = []
    for x, row in zip(xs, rows, strict=True):
        result = row[policy][key]
        if result["bound"] == "found":
            found.append((x, result["rps"]))
        elif result["bound"] == "above_max":
            above.append((x, result["max_rps_tried"]))
        else:
            below.append((x, result["min_rps_tried"]))
    colour = COLOURS[policy]
    marker: dict[str, Any] = {"mfc": "none", "ms": 13, "mew": 1.8} if policy == "cloud-only" else {"ms": 8}
    if found:
        ax.plot(*zip(*found, strict=True), "o-", color=colour, label=policy)
    if above:
        ax.plot(*zip(*above, strict=True), "^", color=colour, label=f"{policy}: above the range", **marker)
    if below:
        ax.plot(*zip(*below, strict=True), "v", color=colour, label=f"{policy}: no rate meets it", **marker)


def draw_capacity_over_slo(run: WorkloadRun) -> Figure:
    """Whole-cloud and decode-pool capacity of cloud-only and P/D-Device over the TPOT SLO (log
    capacity axis)."""
    rows = run.sections["slo_sweep"]
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    axes = figure.subplots(1, 2)
    titles = {
        "capacity": "whole cloud (1 prefill + 1 decode replica): SLO attainment >= target",
        "decode_capacity": "one decode replica: cloud-side TPOT within the SLO",
    }
    for ax, (key, title) in zip(axes, titles.items(), strict=True):
        for policy in ("cloud-only", "pd-device"):
            _capacity_series(ax, rows, policy, key)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(major_label))
        ax.yaxis.set_minor_formatter(FuncFormatter(minor_label))
        ax.set_xlabel("TPOT SLO (ms)")
        ax.set_ylabel("capacity (req/s)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    figure.suptitle(f"{run.key}: capacity over the TPOT objective", fontsize=11)
    return figure


def capacity_over_slo(run: WorkloadRun, path: Path) -> Path:
    """Writes `draw_capacity_over_slo`'s figure to ``path``."""
    return save(draw_capacity_over_slo(run), path)


def _rtt_panels(
    rtt_cut: Axes, rtt_tokens: Axes, rtt_rows: Sequence[Mapping[str, Any]], presets: Mapping[str, float]
) -> None:
    """The top row: the TTFT reductions and the cloud tokens over the round trip, presets marked."""
    rtt = [row["rtt_s"] * 1e3 for row in rtt_rows]
    for label, key, style in (
        ("vs device-only (p50)", "ttft_cut_vs_device_only", "o-"),
        ("vs cloud-only (p50)", "ttft_cut_vs_cloud_only", "s--"),
    ):
        rtt_cut.plot(rtt, percent([row[key]["p50"] for row in rtt_rows]), style, label=label)
    rtt_tokens.plot(rtt, [row["cloud_decode_tokens_per_request"] for row in rtt_rows], "o-", color="#d62728")
    for ax in (rtt_cut, rtt_tokens):
        for name, value in presets.items():
            ax.axvline(value * 1e3, color="grey", lw=0.8, ls=":")
            ax.text(
                value * 1e3,
                0.98,
                f"{name} ",
                transform=ax.get_xaxis_transform(),
                fontsize=8,
                va="top",
                ha="right",
                rotation=90,
                color="grey",
            )
        ax.set_xlabel("round-trip time (ms)")
        ax.grid(True, alpha=0.3)
    rtt_cut.set_ylabel("P/D-Device TTFT reduction (%)")
    rtt_cut.legend(fontsize=8)
    rtt_tokens.set_ylabel("cloud decode tokens per request")
    rtt_cut.set_title("sensitivity to the round trip", fontsize=10)
    rtt_tokens.set_title("cloud tokens P/D-Device uses, over the round trip", fontsize=10)


def _device_panels(
    figure: Figure, dev_cut: Axes, dev_tokens: Axes, device_rows: Sequence[Mapping[str, Any]]
) -> None:
    """The bottom row: the same over the shipped device profiles' prefill speed (log axis), the profiles
    numbered."""
    speed = [row["prefill_1k_s"] for row in device_rows]
    for label, key, style in (
        ("vs device-only (p50)", "ttft_cut_vs_device_only", "o"),
        ("vs cloud-only (p50)", "ttft_cut_vs_cloud_only", "s"),
    ):
        dev_cut.plot(speed, percent([row[key]["p50"] for row in device_rows]), style, label=label)
    tokens = [row["cloud_decode_tokens_per_request"] for row in device_rows]
    dev_tokens.plot(speed, tokens, "o", color="#d62728")
    cuts = percent([row["ttft_cut_vs_device_only"]["p50"] for row in device_rows])
    for index, (x, cut, count) in enumerate(zip(speed, cuts, tokens, strict=True), start=1):
        # numbered rather than named: profiles of nearly equal speed sit on top of each other
        dy = 5 if index % 2 else -11
        for ax, y in ((dev_cut, cut), (dev_tokens, count)):
            ax.annotate(str(index), (x, y), xytext=(5, dy), textcoords="offset points", fontsize=8)
    keys = [
        dev_tokens.plot([], [], " ", label=f"{index}: {row['device']}")[0]
        for index, row in enumerate(device_rows, start=1)
    ]
    figure.legend(handles=keys, loc="outside lower center", ncols=3, fontsize=8, title="device profiles")
    for ax in (dev_cut, dev_tokens):
        ax.set_xscale("log")
        ax.set_xlabel("device prefill of 1,024 tokens (s), shipped profiles")
        ax.grid(True, which="both", alpha=0.3)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(FuncFormatter(minor_label))
    dev_cut.set_ylabel("P/D-Device TTFT reduction (%)")
    dev_cut.legend(fontsize=8)
    dev_tokens.set_ylabel("cloud decode tokens per request")
    dev_cut.set_title("sensitivity to device speed", fontsize=10)
    dev_tokens.set_title("cloud tokens P/D-Device uses, over device speed", fontsize=10)


def draw_sensitivity(run: WorkloadRun, presets: Mapping[str, float]) -> Figure:
    """P/D-Device's TTFT reduction and cloud tokens per request over RTT and over device profiles."""
    figure = Figure(figsize=(12, 8), layout="constrained")
    (rtt_cut, rtt_tokens), (dev_cut, dev_tokens) = figure.subplots(2, 2)
    _rtt_panels(rtt_cut, rtt_tokens, run.sections["rtt_sweep"], presets)
    _device_panels(figure, dev_cut, dev_tokens, run.sections["device_sweep"])
    figure.suptitle(f"{run.key}: P/D-Device at the trace's rate", fontsize=11)
    return figure


def sensitivity(run: WorkloadRun, path: Path, presets: Mapping[str, float]) -> Path:
    """Writes `draw_sensitivity`'s figure to ``path``."""
    return save(draw_sensitivity(run, presets), path)
