"""The interactive plotly figures of ``report.html``, each a ``{"data", "layout"}`` mapping the page draws
(`pdcore.report.page`).

Each stands where ``report.md`` shows a PNG of `pdcore.report.plots`, with the same axis scales (log where
the PNG is log) and the same colours and colour scales (`pdcore.report.style`): one workload's figures in
`pdcore.report.figures.workload`, the sections that span workloads in `pdcore.report.figures.sections`.
"""

from __future__ import annotations

from pdcore.report.figures.sections import k_star_figure, sizing_figure, tradeoff_figure
from pdcore.report.figures.workload import (
    CDF_POINTS,
    capacity_figure,
    cdf_points,
    sensitivity_figure,
    ttft_figure,
)

__all__ = [
    "CDF_POINTS",
    "capacity_figure",
    "cdf_points",
    "k_star_figure",
    "sensitivity_figure",
    "sizing_figure",
    "tradeoff_figure",
    "ttft_figure",
]
