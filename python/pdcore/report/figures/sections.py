"""The page's interactive figures of the sections that span workloads, on the axes and colour scales of
the PNGs of `pdcore.report.plots.sections`: the optimizer's ``k*`` (log prompt axis, ``k*`` on a log axis
as ``k* + 1``), the cloud sizing curves (log rate axis) and latency against cost coloured by device energy
(log colour scale, one range for every panel)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pdcore.escaping import html_text
from pdcore.report.figures.axes import axis, count_axis, one_two_five, panel_title, power_of_two_ticks
from pdcore.report.style import CYCLE, energy_range

__all__ = ["k_star_figure", "sizing_figure", "tradeoff_figure"]


def _k_star_marker(row: Mapping[str, Any]) -> tuple[str, int, str]:
    """A point's marker as in the PNG (open circle: device alone; x: no fixed point, capped) and its
    hover note."""
    if row["mode"] == "device":
        return "circle-open", 9, "device alone"
    if not row["converged"]:
        return "x", 8, "capped"
    return "circle", 5, ""


def k_star_figure(section: Mapping[str, Any]) -> dict[str, Any]:
    """The optimizer's ``k*`` over prompt length for every shipped device profile.

    The PNG's ``k*`` axis is symmetric-log (linear below 1, so ``k* = 0`` shows); plotly has none, so the
    page draws ``k* + 1`` on a log axis labelled in ``k*`` (`pdcore.report.figures.axes.count_axis`).
    """
    data = []
    prompts: list[float] = []
    largest = 0
    for index, (name, rows) in enumerate(section["k_star"].items()):
        markers = [_k_star_marker(row) for row in rows]
        prompts += [row["prompt_tokens"] for row in rows]
        largest = max([largest, *(row["k"] for row in rows)])
        colour = CYCLE[index % len(CYCLE)]
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": html_text(name),
                "x": [row["prompt_tokens"] for row in rows],
                "y": [row["k"] + 1 if row["k"] >= 0 else None for row in rows],
                "customdata": [row["k"] for row in rows],
                "text": [note for _, _, note in markers],
                "line": {"color": colour, "width": 1.5},
                "marker": {
                    "color": colour,
                    "symbol": [symbol for symbol, _, _ in markers],
                    "size": [size for _, size, _ in markers],
                },
                "hovertemplate": f"{html_text(name)}<br>%{{x}} prompt tokens: k* = %{{customdata}} "
                "%{text}<extra></extra>",
            }
        )
    layout = {
        "height": 480,
        "hovermode": "closest",
        "xaxis": axis("prompt tokens", type="log", **power_of_two_ticks(prompts)),
        "yaxis": count_axis("k* (cloud decode tokens after the first)", largest),
    }
    return {"data": data, "layout": layout}


def sizing_figure(section: Mapping[str, Any]) -> dict[str, Any]:
    """GPUs needed at the SLO over request rate (log axis, ticks at powers of two as in the PNG), per
    policy variant, one panel per workload (the sizing section's curves; a missing point is a rate no cloud
    tried meets)."""
    curves = section["curves"]
    count = max(len(curves), 1)
    width = 1.0 / count
    data: list[dict[str, Any]] = []
    layout: dict[str, Any] = {"height": 440, "hovermode": "closest", "annotations": [], "margin": {"t": 60}}
    for column, (key, variants) in enumerate(curves.items(), start=1):
        suffix = "" if column == 1 else str(column)
        domain = [(column - 1) * width + 0.04, column * width - 0.04]
        rates = []
        for index, (label, points) in enumerate(variants.items()):
            rates += [p["rate_rps"] for p in points]
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": html_text(label),
                    "legendgroup": label,
                    "showlegend": column == 1,
                    "x": [p["rate_rps"] for p in points],
                    "y": [p["gpus"] for p in points],
                    "xaxis": f"x{suffix}",
                    "yaxis": f"y{suffix}",
                    "line": {"color": CYCLE[index % len(CYCLE)]},
                    "hovertemplate": (
                        f"{html_text(label)}: %{{y}} GPUs at %{{x:.3g}} req/s<extra>{html_text(key)}</extra>"
                    ),
                }
            )
        layout[f"xaxis{suffix}"] = axis(
            "request rate (req/s)",
            type="log",
            domain=domain,
            anchor=f"y{suffix}",
            **power_of_two_ticks(rates),
        )
        layout[f"yaxis{suffix}"] = axis("GPUs needed at the SLO", anchor=f"x{suffix}", rangemode="tozero")
        layout["annotations"].append(panel_title(key, domain))
    return {"data": data, "layout": layout}


def _energy_colour(section: Mapping[str, Any]) -> dict[str, Any]:
    """The marker settings of the trade-off's colour scale: viridis over log10 of the device energy, from
    `energy_range`'s smallest to its largest, with the colour bar labelled in mJ."""
    found = energy_range(section)
    scale: dict[str, Any] = {"colorscale": "Viridis"}
    if found is None:
        return scale
    low, high = found
    ticks = one_two_five(low, high)
    return scale | {
        "cmin": math.log10(low),
        "cmax": math.log10(high),
        "colorbar": {
            "title": {"text": "device energy per request (mJ, log scale)"},
            "tickmode": "array",
            "tickvals": [math.log10(tick) for tick in ticks],
            "ticktext": [f"{tick:,.0f}" if tick >= 1 else f"{tick:g}" for tick in ticks],
        },
    }


def _log_energy(value: float | None) -> float | None:
    """A point's colour value: log10 of its energy; none when it has none (plotly draws such a point grey,
    the PNG leaves it unfilled)."""
    return math.log10(value) if value is not None and value > 0 else None


def tradeoff_figure(section: Mapping[str, Any]) -> dict[str, Any]:
    """TTFT (p50) against cloud dollars per 1,000 requests, coloured by device energy per request on a log
    colour scale shared by the panels, one panel per workload (the "Latency, cost and energy" section);
    hover a point for all its figures."""
    points = section["points"]
    count = max(len(points), 1)
    width = 1.0 / count
    colour = _energy_colour(section)
    data: list[dict[str, Any]] = []
    layout: dict[str, Any] = {"height": 460, "hovermode": "closest", "annotations": [], "margin": {"t": 60}}
    for column, (key, rows) in enumerate(points.items(), start=1):
        suffix = "" if column == 1 else str(column)
        domain = [(column - 1) * width + 0.04, column * width - 0.08]
        known = [p for p in rows if p["usd_per_1k_requests"] is not None and p["ttft_p50_s"] is not None]
        data.append(
            {
                "type": "scatter",
                "mode": "markers+text",
                "name": html_text(key),
                "showlegend": False,
                "x": [p["usd_per_1k_requests"] for p in known],
                "y": [p["ttft_p50_s"] for p in known],
                "text": [html_text(p["label"]) for p in known],
                "textposition": "top center",
                "textfont": {"size": 9},
                "customdata": [
                    [p["device_mj_per_request"], p["battery_pct_per_request"], p["slo_attainment"]]
                    for p in known
                ],
                "marker": {
                    "size": 11,
                    "symbol": [
                        "triangle-up" if p["cost_weight"] > 0 or p["energy_weight"] > 0 else "circle"
                        for p in known
                    ],
                    "color": [_log_energy(p["device_mj_per_request"]) for p in known],
                    "showscale": column == 1,
                    "line": {"width": 0.5, "color": "black"},
                }
                | colour,
                "xaxis": f"x{suffix}",
                "yaxis": f"y{suffix}",
                "hovertemplate": "%{text}<br>$%{x:.4f} per 1k requests, TTFT p50 %{y:.3f} s<br>"
                "%{customdata[0]:.0f} mJ, %{customdata[1]:.4f}% of the battery per request<br>"
                f"SLO met %{{customdata[2]:.1%}}<extra>{html_text(key)}</extra>",
            }
        )
        layout[f"xaxis{suffix}"] = axis("cloud $ per 1,000 requests", domain=domain, anchor=f"y{suffix}")
        layout[f"yaxis{suffix}"] = axis("TTFT p50 (s)", anchor=f"x{suffix}", rangemode="tozero")
        layout["annotations"].append(panel_title(key, domain))
    return {"data": data, "layout": layout}
