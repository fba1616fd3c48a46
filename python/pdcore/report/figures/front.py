"""The interactive figures of the sizing front: goodput per GPU against TTFT p90 and against per-user
tokens/s, on the axes, colours and step lines of the PNGs of `pdcore.report.front_plots`; hovering a
point shows the candidate (policy, cloud profile, deployment, TP, split, GPUs, $/month and both figures).
Text from the JSON is escaped here (plotly renders it as HTML)."""

from __future__ import annotations

import math
from typing import Any

from pdcore.escaping import html_text
from pdcore.report.figures.axes import axis
from pdcore.report.fleet import policy_colour
from pdcore.report.front import FrontPoint, SizingFront
from pdcore.report.front_plots import AXES, GOODPUT_AXIS

__all__ = ["front_plotly_figure"]

_SHAPES = {"ttft": "hv", "speed": "vh"}
"""plotly's line shape of `pdcore.report.front.STEPS` (``hv``: steps-post; ``vh``: steps-pre)."""


def _hover(point: FrontPoint) -> str:
    def number(value: float | None, digits: int) -> str:
        return "-" if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"

    return "<br>".join(
        (
            f"<b>{html_text(point.policy)}</b>: {html_text(point.cloud_profile)}",
            f"{html_text(point.deployment)}, TP{point.tensor_parallel}, {html_text(point.split_text)}, "
            f"{point.gpus} GPUs",
            f"goodput/GPU {number(point.goodput_per_gpu_rps, 3)} req/s",
            f"TTFT p90 {number(point.ttft_p90_s, 2)} s, {number(point.user_tokens_per_s, 1)} tok/s/user",
            f"${number(point.usd_per_month, 0)}/month"
            + (" (on the front)" if point.on_ttft_front or point.on_speed_front else ""),
        )
    )


def _traces(front: SizingFront, kind: str, policy: str, index: int) -> list[dict[str, Any]]:
    colour = policy_colour(policy, index)
    shown = [p for p in front.points[policy] if p.plotted(kind)]
    on = front.front(policy, kind)
    name = html_text(policy)
    return [
        {
            "type": "scatter",
            "mode": "markers",
            "name": f"{name} candidates",
            "legendgroup": name,
            "x": [p.value(kind) for p in shown],
            "y": [p.goodput_per_gpu_rps for p in shown],
            "marker": {"color": "rgba(0,0,0,0)", "line": {"color": colour, "width": 1.5}, "size": 8},
            "text": [_hover(p) for p in shown],
            "hovertemplate": "%{text}<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "lines+markers+text",
            "name": f"{name} front",
            "legendgroup": name,
            "x": [p.value(kind) for p in on],
            "y": [p.goodput_per_gpu_rps for p in on],
            "line": {"color": colour, "shape": _SHAPES[kind]},
            "marker": {"color": colour, "size": 7},
            "text": [html_text(p.label) for p in on],
            "textposition": "top right",
            "textfont": {"size": 9, "color": colour},
            "customdata": [_hover(p) for p in on],
            "hovertemplate": "%{customdata}<extra></extra>",
        },
    ]


def front_plotly_figure(front: SizingFront, kind: str) -> dict[str, Any]:
    """The ``kind`` figure (``ttft`` or ``speed``) of ``front`` as plotly's ``{"data", "layout"}``."""
    data = [
        trace for index, policy in enumerate(front.points) for trace in _traces(front, kind, policy, index)
    ]
    layout = {
        "height": 460,
        "hovermode": "closest",
        "xaxis": axis(AXES[kind]),
        "yaxis": axis(GOODPUT_AXIS, rangemode="tozero"),
    }
    return {"data": data, "layout": layout}
