"""``report.html``: the report as one interactive, self-contained page.

The page follows ``report.md`` section by section (its text and tables, converted here), and puts an
interactive plotly figure where the markdown shows a PNG: TTFT CDFs per policy (hover, policy toggles),
capacity over the TPOT objective, the sensitivity sweeps, the optimizer's ``k*``; the display-timeline
PNG becomes the timeline explorer (`pdcore.report.page`). A PNG with no interactive counterpart is
inlined as a data URI, so the file still needs nothing beside it.

Size: a TTFT CDF is drawn through at most `CDF_POINTS` of its order statistics (evenly spaced in rank,
with the fastest and slowest request always kept), so a 19k-request trace costs what a 400-request one
does; the explorer embeds the token timelines of the chosen requests only (`pdcore.report.explorer`).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pdcore.report.experiments import POLICIES, WorkloadRun
from pdcore.report.page import escape, explorer_html, page
from pdcore.report.plots import COLOURS, file_stem

__all__ = ["CDF_POINTS", "cdf_points", "markdown_to_html", "render_html"]

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


def _axis(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": {"text": title}, "gridcolor": "#e5e5e5", "zeroline": False} | extra


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
        for policy in POLICIES:
            xs, ys = cdf_points(run.ttft_s[point][policy])
            data.append(
                {
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
            )
        domain = [0.0, 0.47] if column == 1 else [0.53, 1.0]
        layout[f"xaxis{suffix}"] = _axis(
            "TTFT (s), arrival to first displayed token", type="log", domain=domain, anchor=f"y{suffix}"
        )
        layout[f"yaxis{suffix}"] = _axis(
            "share of requests" if column == 1 else "", range=[0, 1.02], anchor=f"x{suffix}"
        )
        layout["annotations"].append(_panel_title(title, domain, 1.08))
    return {"data": data, "layout": layout}


def _panel_title(text: str, domain: Sequence[float], y: float = 1.1) -> dict[str, Any]:
    """A panel's title above the middle of its x-axis ``domain`` (paper coordinates)."""
    return {"text": text, "xref": "paper", "yref": "paper", "x": sum(domain) / 2, "y": y, "showarrow": False}


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
    """Whole-cloud and decode-pool capacity of cloud-only and P/D-Device over the TPOT objective."""
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
        layout[f"xaxis{suffix}"] = _axis("TPOT SLO (ms)", domain=domain, anchor=f"y{suffix}")
        layout[f"yaxis{suffix}"] = _axis("capacity (req/s)", type="log", anchor=f"x{suffix}")
        layout["annotations"].append(_panel_title(title, domain))
    return {"data": data, "layout": layout}


def sizing_figure(section: Mapping[str, Any]) -> dict[str, Any]:
    """GPUs needed at the SLO over request rate, per policy variant, one panel per workload (the sizing
    section's curves; a missing point is a rate no cloud tried meets)."""
    curves = section["curves"]
    count = max(len(curves), 1)
    width = 1.0 / count
    data: list[dict[str, Any]] = []
    layout: dict[str, Any] = {"height": 440, "hovermode": "closest", "annotations": [], "margin": {"t": 60}}
    palette = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
    for column, (key, variants) in enumerate(curves.items(), start=1):
        suffix = "" if column == 1 else str(column)
        domain = [(column - 1) * width + 0.04, column * width - 0.04]
        for index, (label, points) in enumerate(variants.items()):
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": label,
                    "legendgroup": label,
                    "showlegend": column == 1,
                    "x": [p["rate_rps"] for p in points],
                    "y": [p["gpus"] for p in points],
                    "xaxis": f"x{suffix}",
                    "yaxis": f"y{suffix}",
                    "line": {"color": palette[index % len(palette)]},
                    "hovertemplate": f"{label}: %{{y}} GPUs at %{{x:.3g}} req/s<extra>{escape(key)}</extra>",
                }
            )
        layout[f"xaxis{suffix}"] = _axis(
            "request rate (req/s)", type="log", domain=domain, anchor=f"y{suffix}"
        )
        layout[f"yaxis{suffix}"] = _axis("GPUs needed at the SLO", anchor=f"x{suffix}", rangemode="tozero")
        layout["annotations"].append(_panel_title(key, domain))
    return {"data": data, "layout": layout}


def tradeoff_figure(section: Mapping[str, Any]) -> dict[str, Any]:
    """TTFT (p50) against cloud dollars per 1,000 requests, coloured by device energy per request, one
    panel per workload (the "Latency, cost and energy" section); hover a point for all its figures."""
    points = section["points"]
    count = max(len(points), 1)
    width = 1.0 / count
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
                "name": key,
                "showlegend": False,
                "x": [p["usd_per_1k_requests"] for p in known],
                "y": [p["ttft_p50_s"] for p in known],
                "text": [p["label"] for p in known],
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
                    "color": [p["device_mj_per_request"] for p in known],
                    "colorscale": "Viridis",
                    "showscale": column == 1,
                    "colorbar": {"title": {"text": "device mJ / request"}},
                    "line": {"width": 0.5, "color": "black"},
                },
                "xaxis": f"x{suffix}",
                "yaxis": f"y{suffix}",
                "hovertemplate": "%{text}<br>$%{x:.4f} per 1k requests, TTFT p50 %{y:.3f} s<br>"
                "%{customdata[0]:.0f} mJ, %{customdata[1]:.4f}% of the battery per request<br>"
                f"SLO met %{{customdata[2]:.1%}}<extra>{escape(key)}</extra>",
            }
        )
        layout[f"xaxis{suffix}"] = _axis("cloud $ per 1,000 requests", domain=domain, anchor=f"y{suffix}")
        layout[f"yaxis{suffix}"] = _axis("TTFT p50 (s)", anchor=f"x{suffix}", rangemode="tozero")
        layout["annotations"].append(_panel_title(key, domain))
    return {"data": data, "layout": layout}


def _percent(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def sensitivity_figure(run: WorkloadRun, presets: Mapping[str, float]) -> dict[str, Any]:
    """P/D-Device's TTFT reduction and cloud tokens per request over RTT and over device speed."""
    rtt_rows = run.sections["rtt_sweep"]
    device_rows = run.sections["device_sweep"]
    rtt = [row["rtt_s"] * 1e3 for row in rtt_rows]
    speed = [row["prefill_1k_s"] for row in device_rows]
    names = [row["device"] for row in device_rows]
    data: list[dict[str, Any]] = []
    cuts = (
        ("vs device-only (p50)", "ttft_cut_vs_device_only"),
        ("vs cloud-only (p50)", "ttft_cut_vs_cloud_only"),
    )
    for index, (label, key) in enumerate(cuts):
        colour = COLOURS["device-only"] if index == 0 else COLOURS["cloud-only"]
        data.append(
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
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"TTFT reduction {label}, over devices",
                "x": speed,
                "y": [_percent(row[key]["p50"]) for row in device_rows],
                "text": names,
                "xaxis": "x3",
                "yaxis": "y3",
                "marker": {"size": 9, "symbol": "circle" if index == 0 else "square", "color": colour},
                "hovertemplate": (
                    f"%{{text}} (1k prefill %{{x:.3g}} s): %{{y:.1f}}% lower {label}<extra></extra>"
                ),
            }
        )
    data.append(
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "cloud decode tokens per request, over RTT",
            "x": rtt,
            "y": [row["cloud_decode_tokens_per_request"] for row in rtt_rows],
            "xaxis": "x2",
            "yaxis": "y2",
            "line": {"color": COLOURS["pd-device"]},
            "hovertemplate": "RTT %{x:g} ms: %{y:.1f} cloud tokens per request<extra></extra>",
        }
    )
    data.append(
        {
            "type": "scatter",
            "mode": "markers",
            "name": "cloud decode tokens per request, over devices",
            "x": speed,
            "y": [row["cloud_decode_tokens_per_request"] for row in device_rows],
            "text": names,
            "xaxis": "x4",
            "yaxis": "y4",
            "marker": {"size": 9, "color": COLOURS["pd-device"]},
            "hovertemplate": (
                "%{text} (1k prefill %{x:.3g} s): %{y:.1f} cloud tokens per request<extra></extra>"
            ),
        }
    )
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
            "text": f"{name}",
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
    rtt_axis = "round-trip time (ms)"
    device_axis = "device prefill of 1,024 tokens (s), shipped profiles"
    layout = {
        "height": 760,
        "hovermode": "closest",
        "legend": {"orientation": "h", "y": -0.12},
        "shapes": shapes,
        "annotations": annotations,
        "xaxis": _axis(rtt_axis, domain=[0, 0.45], anchor="y"),
        "yaxis": _axis("P/D-Device TTFT reduction (%)", domain=[0.58, 1], anchor="x"),
        "xaxis2": _axis(rtt_axis, domain=[0.55, 1], anchor="y2"),
        "yaxis2": _axis("cloud decode tokens per request", domain=[0.58, 1], anchor="x2"),
        "xaxis3": _axis(device_axis, type="log", domain=[0, 0.45], anchor="y3"),
        "yaxis3": _axis("P/D-Device TTFT reduction (%)", domain=[0, 0.42], anchor="x3"),
        "xaxis4": _axis(device_axis, type="log", domain=[0.55, 1], anchor="y4"),
        "yaxis4": _axis("cloud decode tokens per request", domain=[0, 0.42], anchor="x4"),
    }
    return {"data": data, "layout": layout}


def k_star_figure(section: Mapping[str, Any]) -> dict[str, Any]:
    """The optimizer's ``k*`` over prompt length for every shipped device profile."""
    data = []
    for name, rows in section["k_star"].items():
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": name,
                "x": [row["prompt_tokens"] for row in rows],
                "y": [row["k"] for row in rows],
                "text": [
                    "device alone" if row["mode"] == "device" else ("capped" if not row["converged"] else "")
                    for row in rows
                ],
                "hovertemplate": f"{name}<br>%{{x}} prompt tokens: k* = %{{y}} %{{text}}<extra></extra>",
            }
        )
    layout = {
        "height": 480,
        "hovermode": "closest",
        "xaxis": _axis("prompt tokens", type="log"),
        "yaxis": _axis("k* (cloud decode tokens after the first)"),
    }
    return {"data": data, "layout": layout}


# --- report.md to HTML: the subset `pdcore.report.markdown` writes ------------------------------------

_IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<src>[^)]+)\)$")


def _inline(text: str) -> str:
    out = escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"(?<![*\w])\*([^*\s][^*]*)\*(?![*\w])", r"<em>\1</em>", out)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _table(lines: Sequence[str]) -> str:
    header, marks, *rows = lines
    right = [mark.strip().endswith(":") and not mark.strip().startswith(":") for mark in _cells(marks)]

    def row(cells: Sequence[str], tag: str) -> str:
        return (
            "<tr>"
            + "".join(
                f"<{tag}{' class=r' if index < len(right) and right[index] else ''}>{_inline(cell)}</{tag}>"
                for index, cell in enumerate(cells)
            )
            + "</tr>"
        )

    body = "".join(row(_cells(line), "td") for line in rows)
    return f"<table><thead>{row(_cells(header), 'th')}</thead><tbody>{body}</tbody></table>"


def markdown_to_html(text: str, images: Mapping[str, str]) -> str:
    """HTML of the markdown subset ``report.md`` uses: headings, paragraphs, pipe tables, bullet lists,
    images on a line of their own (``images`` maps a file name to the HTML that replaces it), code spans,
    bold and italics."""
    out: list[str] = []
    block: list[str] = []
    kind = ""

    def flush() -> None:
        nonlocal kind
        if kind == "p":
            out.append(f"<p>{_inline(' '.join(block))}</p>")
        elif kind == "table":
            out.append(_table(block))
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block) + "</ul>")
        block.clear()
        kind = ""

    for line in text.splitlines():
        stripped = line.strip()
        heading = re.match(r"^(#{1,6}) (.*)$", stripped)
        image = _IMAGE.match(stripped)
        if not stripped:
            flush()
        elif heading:
            flush()
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif image:
            flush()
            src = image.group("src")
            out.append(images.get(src, f'<img alt="{escape(image.group("alt"))}" src="{escape(src)}">'))
        elif stripped.startswith("|"):
            if kind != "table":
                flush()
                kind = "table"
            block.append(stripped)
        elif stripped.startswith("- "):
            if kind != "list":
                flush()
                kind = "list"
            block.append(stripped[2:])
        elif kind == "list" and line.startswith("  "):
            block[-1] += " " + stripped
        else:
            if kind not in {"", "p"}:
                flush()
            kind = "p"
            block.append(stripped)
    flush()
    return "\n".join(out)


def _toggles(key: str) -> str:
    boxes = "".join(
        f'<label><input type="checkbox" value="{policy}" checked> '
        f'<span style="color:{COLOURS[policy]}">{policy}</span></label>'
        for policy in POLICIES
    )
    return f'<div class="policy-toggles" data-workload="{escape(key)}">policies shown: {boxes}</div>'


def _figure(element: str, note: str = "") -> str:
    extra = f'<p class="note">{escape(note)}</p>' if note else ""
    return f'<div class="figure" id="{escape(element)}"></div>{extra}'


def render_html(
    markdown: str,
    runs: Sequence[WorkloadRun],
    optimizer: Mapping[str, Any],
    plots: Mapping[str, Mapping[str, str]],
    out_dir: Path,
    *,
    presets: Mapping[str, float],
    explorers: Mapping[str, Mapping[str, Any]],
    sizing: Mapping[str, Any] | None = None,
    tradeoff: Mapping[str, Any] | None = None,
) -> str:
    """The whole ``report.html``.

    Args:
        markdown: ``report.md``'s text.
        runs: The workloads measured.
        optimizer: The report's optimizer section.
        plots: The PNG file names by workload key and figure (`pdcore.report.plots.write_plots`).
        out_dir: Where the PNGs are (those without an interactive figure are inlined).
        presets: Round-trip time of each network preset (marked on the RTT sweep).
        explorers: The timeline explorer's data by workload key (`pdcore.report.explorer.explorer_data`).
        sizing: The report's sizing section, if it has one (GPUs needed over request rate).
        tradeoff: The report's latency, cost and energy section, if it has one.

    Raises:
        InvalidInputError: plotly is not installed.
    """
    figures: dict[str, Any] = {}
    images: dict[str, str] = {}
    page_explorers: dict[str, Any] = {}
    for run in runs:
        stem = file_stem(run.key)
        files = plots[run.key]
        figures[f"fig-{stem}-ttft"] = ttft_figure(run)
        images[files["ttft_cdf"]] = _toggles(run.key) + _figure(
            f"fig-{stem}-ttft",
            f"Each curve is drawn through at most {CDF_POINTS} of its requests, evenly spaced in rank; "
            "click a legend entry or a check box to hide a policy, drag to zoom, double-click to reset.",
        )
        figures[f"fig-{stem}-capacity"] = capacity_figure(run)
        images[files["capacity_slo"]] = _figure(f"fig-{stem}-capacity")
        figures[f"fig-{stem}-sensitivity"] = sensitivity_figure(run, presets)
        images[files["sensitivity"]] = _figure(f"fig-{stem}-sensitivity")
        if run.key in explorers:
            element = f"explorer-{stem}"
            page_explorers[element] = explorers[run.key]
            images[files["timeline"]] = explorer_html(element, f"Timeline explorer: {run.key}") + (
                f'<p class="note">{escape(explorers[run.key]["how"])}</p>'
            )
    figures["fig-k-star"] = k_star_figure(optimizer)
    images[plots[""]["k_star"]] = _figure("fig-k-star")
    if sizing is not None and "sizing" in plots[""]:
        figures["fig-sizing"] = sizing_figure(sizing)
        images[plots[""]["sizing"]] = _figure(
            "fig-sizing", "Hover a point for its GPUs; a missing point is a rate no cloud tried meets."
        )
    if tradeoff is not None and "tradeoff" in plots[""]:
        figures["fig-tradeoff"] = tradeoff_figure(tradeoff)
        images[plots[""]["tradeoff"]] = _figure(
            "fig-tradeoff", "Hover a point for its energy, battery share and SLO attainment."
        )
    for name in (name for figures_of in plots.values() for name in figures_of.values()):
        if name not in images:
            encoded = base64.b64encode((out_dir / name).read_bytes()).decode("ascii")
            images[name] = f'<img alt="{escape(name)}" src="data:image/png;base64,{encoded}">'
    body = markdown_to_html(markdown, images)
    return page("pdcore reproduce", body, figures=figures, explorers=page_explorers)
