"""The PNG figures of ``pdcore reproduce`` (matplotlib, drawn off-screen without pyplot).

Every function takes the numbers `pdcore.report.experiments` collected and writes one file; none reads
global matplotlib state, so figures do not leak into one another. Colours are fixed per policy across
figures.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, ScalarFormatter

from pdcore.outputs import atomic_path
from pdcore.report.experiments import POLICIES, WorkloadRun
from pdcore.report.markdown import arrival_rate

__all__ = [
    "COLOURS",
    "capacity_over_slo",
    "file_stem",
    "k_star",
    "refinement",
    "sensitivity",
    "timeline",
    "ttft_cdf",
    "write_plots",
]

COLOURS: dict[str, str] = {
    "cloud-only": "#1f77b4",
    "device-only": "#7f7f7f",
    "pd-device": "#d62728",
    "naive-split": "#ff7f0e",
    "kv-transfer": "#9467bd",
    "race": "#2ca02c",
    "disco": "#8c564b",
    "router": "#e377c2",
    "spec-decode": "#17becf",
}
"""The colour of each policy in every figure."""

_DPI = 110

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


def file_stem(key: str) -> str:
    """A workload key made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", key)


def _save(figure: Figure, path: Path) -> Path:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format=path.suffix[1:], dpi=_DPI, metadata={"Software": None})
    return path


def ttft_cdf(run: WorkloadRun, path: Path) -> Path:
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
    return _save(figure, path)


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
    the first 40 tokens without one."""
    if displays.size == 0:
        return 1.0
    if handoff is not None:
        end = handoff + max(0.5, 0.6 * handoff)
    else:
        end = float(displays[min(displays.size, 40) - 1]) * 1.05
    return min(end, float(displays[-1]) * 1.02 + 0.01)


def timeline(run: WorkloadRun, path: Path, max_tpot_s: float) -> Path:
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
    return _save(figure, path)


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


def capacity_over_slo(run: WorkloadRun, path: Path) -> Path:
    """Whole-cloud and decode-pool capacity of cloud-only and P/D-Device over the TPOT SLO."""
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
        ax.yaxis.set_major_formatter(FuncFormatter(_major_label))
        ax.yaxis.set_minor_formatter(FuncFormatter(_minor_label))
        ax.set_xlabel("TPOT SLO (ms)")
        ax.set_ylabel("capacity (req/s)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    figure.suptitle(f"{run.key}: capacity over the TPOT objective", fontsize=11)
    return _save(figure, path)


def _percent(values: Sequence[float | None]) -> list[float]:
    return [np.nan if value is None else 100.0 * value for value in values]


def _major_label(value: float, _position: int | None) -> str:
    return f"{value:g}"


def _minor_label(value: float, _position: int | None) -> str:
    """Labels the 2, 3 and 5 minor ticks of a log axis, so a range under a decade still has numbers."""
    if value <= 0.0:
        return ""
    digit = round(value / 10.0 ** np.floor(np.log10(value)))
    return f"{value:g}" if digit in {2, 3, 5} else ""


def sensitivity(run: WorkloadRun, path: Path, presets: Mapping[str, float]) -> Path:
    """P/D-Device's TTFT reduction and cloud tokens per request over RTT and over device profiles."""
    rtt_rows = run.sections["rtt_sweep"]
    device_rows = run.sections["device_sweep"]
    figure = Figure(figsize=(12, 8), layout="constrained")
    (rtt_cut, rtt_tokens), (dev_cut, dev_tokens) = figure.subplots(2, 2)
    rtt = [row["rtt_s"] * 1e3 for row in rtt_rows]
    for label, key, style in (
        ("vs device-only (p50)", "ttft_cut_vs_device_only", "o-"),
        ("vs cloud-only (p50)", "ttft_cut_vs_cloud_only", "s--"),
    ):
        rtt_cut.plot(rtt, _percent([row[key]["p50"] for row in rtt_rows]), style, label=label)
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

    speed = [row["prefill_1k_s"] for row in device_rows]
    for label, key, style in (
        ("vs device-only (p50)", "ttft_cut_vs_device_only", "o"),
        ("vs cloud-only (p50)", "ttft_cut_vs_cloud_only", "s"),
    ):
        dev_cut.plot(speed, _percent([row[key]["p50"] for row in device_rows]), style, label=label)
    tokens = [row["cloud_decode_tokens_per_request"] for row in device_rows]
    dev_tokens.plot(speed, tokens, "o", color="#d62728")
    cuts = _percent([row["ttft_cut_vs_device_only"]["p50"] for row in device_rows])
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
        ax.xaxis.set_minor_formatter(FuncFormatter(_minor_label))
    dev_cut.set_ylabel("P/D-Device TTFT reduction (%)")
    dev_cut.legend(fontsize=8)
    dev_tokens.set_ylabel("cloud decode tokens per request")
    dev_cut.set_title("sensitivity to device speed", fontsize=10)
    dev_tokens.set_title("cloud tokens P/D-Device uses, over device speed", fontsize=10)
    figure.suptitle(f"{run.key}: P/D-Device at the trace's rate", fontsize=11)
    return _save(figure, path)


def k_star(section: Mapping[str, Any], path: Path, max_tpot_s: float) -> Path:
    """The optimizer's ``k*`` over prompt length for every shipped device profile."""
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
    return _save(figure, path)


def sizing_plot(section: Mapping[str, Any], path: Path) -> Path:
    """GPUs needed at the SLO over request rate, per policy variant, one panel per workload."""
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
    return _save(figure, path)


def conversations_plot(section: Mapping[str, Any], path: Path) -> Path:
    """Median TTFT by turn bucket per policy, one panel per multi-turn workload (the "Conversations"
    section)."""
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
    return _save(figure, path)


def tradeoff_plot(section: Mapping[str, Any], path: Path) -> Path:
    """TTFT (p50) against cloud dollars per 1,000 requests, coloured by device energy per request: one point
    per policy and per weight setting, one panel per workload (the "Latency, cost and energy" section)."""
    points = section["points"]
    figure = Figure(figsize=(6.6 * len(points) + 1.0, 5.0), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(points), squeeze=False)[0])
    energies = [
        p["device_mj_per_request"]
        for rows in points.values()
        for p in rows
        if p["device_mj_per_request"] is not None
    ]
    positive = [e for e in energies if e > 0]
    norm = LogNorm(min(positive), max(positive)) if positive else None
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
    return _save(figure, path)


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


def refinement(entry: Mapping[str, Any], path: Path) -> Path:
    """Prompt refinement's measured curves: F1 and EM over r with the drop's 95% interval and the
    ablation (left); the device's prefill time over r, with the speed-up and the proportional line
    (right)."""
    points = sorted(entry["points"], key=lambda p: p["ratio"])
    ablation = sorted(entry["ablation"], key=lambda p: p["ratio"])
    base = next((p for p in points if p["ratio"] == 1.0), None)
    f1_base = float(base["f1"]) if base is not None else float(points[-1]["f1"] + points[-1]["drop"])
    figure = Figure(figsize=(11, 5.4), layout="constrained")
    quality, prefill = figure.subplots(1, 2)

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
    head = entry["headline"]
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
    below = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.16), "ncols": 2, "fontsize": 8}
    quality.legend(**below)

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
    prefill.legend(**below)
    for ax in (quality, prefill):
        ax.set_xlim(0.0, 1.05)
        ax.grid(True, alpha=0.3)
    evaluation = entry["evaluation"]
    figure.suptitle(
        f"prompt refinement, {entry['name']}: {evaluation.get('items', '?')} items, seed "
        f"{evaluation.get('seed', '?')}, {evaluation.get('machine', 'machine not recorded')}",
        fontsize=11,
    )
    return _save(figure, path)


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
) -> dict[str, dict[str, str]]:
    """Writes every figure into ``out_dir``; returns file names by workload key (``""`` for the
    workload-independent ones) and figure name. ``refined``: the report's ``refinement`` entry, if any;
    ``sizing``: its ``sizing`` entry, if any; ``tradeoff``: its latency, cost and energy entry, if any."""
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
    return written
