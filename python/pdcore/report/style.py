"""What the PNG figures (`pdcore.report.plots`) and the page's figures (`pdcore.report.figures`) share, so
a figure reads the same in ``report.md`` and ``report.html``: each policy's colour, the colour cycle of the
series without one, the trade-off figure's colour range, and the file name of a workload's figures.

Nothing here imports matplotlib or plotly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["COLOURS", "CYCLE", "energy_range", "file_stem"]

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

CYCLE: tuple[str, ...] = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
"""matplotlib's default colour cycle (``tab10``): the PNGs draw the series without a policy colour (device
profiles, sizing variants, the sensitivity's two reductions) in this order, and the page follows it."""


def file_stem(key: str) -> str:
    """A workload key made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", key)


def energy_range(section: Mapping[str, Any]) -> tuple[float, float] | None:
    """The trade-off figure's colour range: the smallest and largest positive device energy per request
    (mJ) over every workload of the section, or None when no point has one. Both figures colour it on a
    log scale, one range for every panel."""
    positive = [
        p["device_mj_per_request"]
        for rows in section["points"].values()
        for p in rows
        if p["device_mj_per_request"] is not None and p["device_mj_per_request"] > 0
    ]
    return (min(positive), max(positive)) if positive else None
