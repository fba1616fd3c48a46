"""The page's interactive figures of one workload, on the axes of the PNGs of
`pdcore.report.plots.workload`: TTFT CDFs per policy (log time axis), capacity over the TPOT objective
(log capacity axis), and P/D-Device's sensitivity to the round trip and to device speed (log speed axis).

Size: a TTFT CDF is drawn through at most `CDF_POINTS` of its order statistics (evenly spaced in rank,
with the fastest and slowest request always kept), so a 19k-request trace costs what a 400-request one
does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from pdcore.escaping import html_text
from pdcore.report.experiments import POLICIES, WorkloadRun
from pdcore.report.figures.axes import axis, panel_title
from pdcore.report.style import COLOURS, CYCLE

__all__ = ["CDF_POINTS", "capacity_figure", "cdf_points", "sensitivity_figure", "ttft_figure"]

CDF_POINTS = 400
"""The most points a TTFT CDF is drawn through in ``report.html``."""

_DASH = {"naive-split": "dash", "race": "dot"}
_WIDTH = {"cloud-only": 5.0, "device-only": 4.0, "pd-device": 3.0, "naive-split": 2.2, "kv-transfer": 2.0}


def cdf_points(values: npt.NDArray[np.float64], points: int = CDF_POINTS) -> tuple[list[float], list[float]]:
    """The empirical CDF of the finite ``values`` at no more than ``points`` order statistics evenly
    spaced in rank (first and last kept): x the value, y the share of requests at or below it."""
    finite = np.sort(values[np.isfinite(values)])
    if finite.size == 0:
        return [], []
    ranks = np.unique(np.round(np.linspace(0, finite.size - 1, min(points, finite.size))).astype(np.int64))
    return finite[ranks].tolist(), ((ranks + 1) / finite.size).tolist()


def _cdf_trace(run: WorkloadRun, point: str, policy: str, column: int) -> dict[str, Any]:
    suffix = "" if column == 1 else str(column)
    xs, ys = cdf_points(run.ttft_s[point][policy])
    return {
        "type": "scatter",
        "mode": "lines",
        "name": policy,
        "legendgroup": policy,
        "showlegend": column == 1,
        "x": xs,
        "y": ys,
        "xaxis": f"x{suffix}",
        "yaxis": f"y{suffix}",
        "line": {
            "shape": "hv",
            "color": COLOURS[policy],
            "width": _WIDTH.get(policy, 1.6),
            "dash": _DASH.get(policy, "solid"),
        },
        "hovertemplate": f"{policy}: %{{y:.1%}} of requests within %{{x:.3f}} s<extra></extra>",
    }


def ttft_figure(run: WorkloadRun) -> dict[str, Any]:
    """TTFT CDF per policy at the trace's rate and at cloud-only capacity (log time axis)."""
    load = run.sections["under_load"]
    panels = {
        "trace_rate": f"at the trace's rate ({run.sections['workload']['rate_rps']:.2f} req/s)",
        "under_load": f"at cloud-only capacity ({load['rate_rps']:.2f} req/s, first {load['requests']})",
    }
    data: list[dict[str, Any]] = []
    layout: dict[str, Any] = {
        "height": 460,
        "hovermode": "closest",
        "margin": {"t": 60, "b": 60},
        "legend": {"orientation": "h", "y": -0.2},
        "annotations": [],
    }
    for column, (point, title) in enumerate(panels.items(), start=1):
        suffix = "" if column == 1 else str(column)
        data += [_cdf_trace(run, point, policy, column) for policy in POLICIES]
        domain = [0.0, 0.47] if column == 1 else [0.53, 1.0]
        layout[f"xaxis{suffix}"] = axis(
            "TTFT (s), arrival to first displayed token", type="log", domain=domain, anchor=f"y{suffix}"
        )
        layout[f"yaxis{suffix}"] = axis(
            "share of requests" if column == 1 else "", range=[0, 1.02], anchor=f"x{suffix}"
        )
        layout["annotations"].append(panel_title(title, domain, 1.08))
    return {"data": data, "layout": layout}


def _capacity_points(rows: Sequence[Mapping[str, Any]], policy: str, key: str) -> Iterator[dict[str, Any]]:
    found: list[tuple[float, float]] = []
    above: list[tuple[float, float]] = []
    below: list[tuple[float, float]] = []
    for row in rows:
        result, x = row[policy][key], row["max_tpot_s"] * 1e3
        if result["bound"] == "found":
            found.append((x, result["rps"]))
        elif result["bound"] == "above_max":
            above.append((x, result["max_rps_tried"]))
        else:
            below.append((x, result["min_rps_tried"]))
    for points, label, symbol, mode in (
        (found, policy, "circle", "lines+markers"),
        (above, f"{policy}: above the range", "triangle-up-open", "markers"),
        (below, f"{policy}: no rate meets it", "triangle-down-open", "markers"),
    ):
        if points:
            yield {
                "name": label,
                "legendgroup": policy,
                "mode": mode,
                "x": [x for x, _ in points],
                "y": [y for _, y in points],
                "marker": {"symbol": symbol, "size": 9 if symbol == "circle" else 12},
                "line": {"color": COLOURS[policy]},
                "hovertemplate": f"{label}: %{{y:.3g}} req/s at TPOT SLO %{{x:.0f}} ms<extra></extra>",
            }


def capacity_figure(run: WorkloadRun) -> dict[str, Any]:
    """Whole-cloud and decode-pool capacity of cloud-only and P/D-Device over the TPOT objective (log
    capacity axis)."""
    rows = run.sections["slo_sweep"]
    titles = {
        "capacity": "whole cloud: SLO attainment >= target",
        "decode_capacity": "one decode replica: cloud-side TPOT within the SLO",
    }
    data: list[dict[str, Any]] = []
    layout: dict[str, Any] = {"height": 440, "hovermode": "closest", "annotations": [], "margin": {"t": 60}}
    for column, (key, title) in enumerate(titles.items(), start=1):
        suffix = "" if column == 1 else str(column)
        domain = [0.0, 0.44] if column == 1 else [0.56, 1.0]
        for policy in ("cloud-only", "pd-device"):
            for trace in _capacity_points(rows, policy, key):
                trace |= {"type": "scatter", "xaxis": f"x{suffix}", "yaxis": f"y{suffix}"}
                trace["showlegend"] = column == 1
                data.append(trace)
        layout[f"xaxis{suffix}"] = axis("TPOT SLO (ms)", domain=domain, anchor=f"y{suffix}")
        layout[f"yaxis{suffix}"] = axis("capacity (req/s)", type="log", anchor=f"x{suffix}")
        layout["annotations"].append(panel_title(title, domain))
    return {"data": data, "layout": layout}


def _percent(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


_CUTS = (
    ("vs device-only (p50)", "ttft_cut_vs_device_only"),
    ("vs cloud-only (p50)", "ttft_cut_vs_cloud_only"),
)
"""The sensitivity's two TTFT reductions, drawn in the first two colours of `CYCLE` as in the PNG."""


def _cut_traces(rtt_rows: Sequence[Mapping[str, Any]], device_rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Each TTFT reduction over RTT (top left) and over the device profiles (bottom left)."""
    rtt = [row["rtt_s"] * 1e3 for row in rtt_rows]
    speed = [row["prefill_1k_s"] for row in device_rows]
    traces: list[Any] = []
    for index, (label, key) in enumerate(_CUTS):
        colour = CYCLE[index]
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": f"TTFT reduction {label}, over RTT",
                "x": rtt,
                "y": [_percent(row[key]["p50"]) for row in rtt_rows],
                "line": {"dash": "solid" if index == 0 else "dash", "color": colour},
                "hovertemplate": f"RTT %{{x:g}} ms: TTFT %{{y:.1f}}% lower {label}<extra></extra>",
            }
        )
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"TTFT reduction {label}, over devices",
                "x": speed,
                "y": [_percent(row[key]["p50"]) for row in device_rows],
                "text": [html_text(row["device"]) for row in device_rows],
                "xaxis": "x3",
                "yaxis": "y3",
                "marker": {"size": 9, "symbol": "circle" if index == 0 else "square", "color": colour},
                "hovertemplate": (
                    f"%{{text}} (1k prefill %{{x:.3g}} s): %{{y:.1f}}% lower {label}<extra></extra>"
                ),
            }
        )
    return traces


def _token_traces(
    rtt_rows: Sequence[Mapping[str, Any]], device_rows: Sequence[Mapping[str, Any]]
) -> list[Any]:
    """Cloud decode tokens per request over RTT (top right) and over the device profiles (bottom right)."""
    return [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "cloud decode tokens per request, over RTT",
            "x": [row["rtt_s"] * 1e3 for row in rtt_rows],
            "y": [row["cloud_decode_tokens_per_request"] for row in rtt_rows],
            "xaxis": "x2",
            "yaxis": "y2",
            "line": {"color": COLOURS["pd-device"]},
            "hovertemplate": "RTT %{x:g} ms: %{y:.1f} cloud tokens per request<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "markers",
            "name": "cloud decode tokens per request, over devices",
            "x": [row["prefill_1k_s"] for row in device_rows],
            "y": [row["cloud_decode_tokens_per_request"] for row in device_rows],
            "text": [html_text(row["device"]) for row in device_rows],
            "xaxis": "x4",
            "yaxis": "y4",
            "marker": {"size": 9, "color": COLOURS["pd-device"]},
            "hovertemplate": (
                "%{text} (1k prefill %{x:.3g} s): %{y:.1f} cloud tokens per request<extra></extra>"
            ),
        },
    ]


def _preset_marks(presets: Mapping[str, float]) -> tuple[list[Any], list[Any]]:
    """A dotted line at each network preset's RTT on both RTT panels, named on the first."""
    shapes = [
        {
            "type": "line",
            "xref": xref,
            "yref": f"{yref} domain",
            "x0": value * 1e3,
            "x1": value * 1e3,
            "y0": 0,
            "y1": 1,
            "line": {"color": "grey", "dash": "dot", "width": 1},
        }
        for value in presets.values()
        for xref, yref in (("x", "y"), ("x2", "y2"))
    ]
    annotations = [
        {
            "text": html_text(name),
            "x": value * 1e3,
            "xref": "x",
            "yref": "y domain",
            "y": 1.0,
            "showarrow": False,
            "textangle": -90,
            "xanchor": "right",
            "yanchor": "top",
            "font": {"size": 9, "color": "grey"},
        }
        for name, value in presets.items()
    ]
    return shapes, annotations


def sensitivity_figure(run: WorkloadRun, presets: Mapping[str, float]) -> dict[str, Any]:
    """P/D-Device's TTFT reduction and cloud tokens per request over RTT and over device speed (log)."""
    rtt_rows = run.sections["rtt_sweep"]
    device_rows = run.sections["device_sweep"]
    shapes, annotations = _preset_marks(presets)
    rtt_axis = "round-trip time (ms)"
    device_axis = "device prefill of 1,024 tokens (s), shipped profiles"
    layout = {
        "height": 760,
        "hovermode": "closest",
        "legend": {"orientation": "h", "y": -0.12},
        "shapes": shapes,
        "annotations": annotations,
        "xaxis": axis(rtt_axis, domain=[0, 0.45], anchor="y"),
        "yaxis": axis("P/D-Device TTFT reduction (%)", domain=[0.58, 1], anchor="x"),
        "xaxis2": axis(rtt_axis, domain=[0.55, 1], anchor="y2"),
        "yaxis2": axis("cloud decode tokens per request", domain=[0.58, 1], anchor="x2"),
        "xaxis3": axis(device_axis, type="log", domain=[0, 0.45], anchor="y3"),
        "yaxis3": axis("P/D-Device TTFT reduction (%)", domain=[0, 0.42], anchor="x3"),
        "xaxis4": axis(device_axis, type="log", domain=[0.55, 1], anchor="y4"),
        "yaxis4": axis("cloud decode tokens per request", domain=[0, 0.42], anchor="x4"),
    }
    data = _cut_traces(rtt_rows, device_rows) + _token_traces(rtt_rows, device_rows)
    return {"data": data, "layout": layout}
