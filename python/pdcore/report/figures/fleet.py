"""The interactive figure of the fleet section: GPUs needed at the SLO against the share of capable
devices, one line per policy, on the axes and colours of the PNG of `pdcore.report.fleet.sweep_figure`
(an unattainable point is a gap in the line)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pdcore.escaping import html_text
from pdcore.report.figures.axes import axis
from pdcore.report.fleet import policy_colour, sweep_points

__all__ = ["fleet_sweep_figure"]


def fleet_sweep_figure(section: Mapping[str, Any]) -> dict[str, Any]:
    """The figure of a ``fleet_sizing`` document (that of ``pdcore size --fleet --json``, or the fleet
    section of ``results.json``)."""
    data = []
    for index, (policy, points) in enumerate(sweep_points(section).items()):
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": html_text(policy),
                "x": [share for share, _ in points],
                "y": [gpus for _, gpus in points],
                "line": {"color": policy_colour(policy, index)},
                "hovertemplate": f"{html_text(policy)}: %{{y}} GPUs at %{{x:g}}% capable<extra></extra>",
            }
        )
    layout = {
        "height": 420,
        "hovermode": "closest",
        "xaxis": axis("capable devices, % of requests", range=[-3, 103]),
        "yaxis": axis("GPUs needed at the SLO", rangemode="tozero"),
    }
    return {"data": data, "layout": layout}
