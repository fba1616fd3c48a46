"""Axis pieces the page's plotly figures share, and the ticks that put them on the PNGs' scales.

plotly has no log axis of base 2 and no symmetric log axis, which the PNGs use
(`pdcore.report.plots`): `power_of_two_ticks` puts a plotly log axis's ticks where matplotlib's base-2
axis has them, and `count_axis` draws a count that may be 0 (``k*``) as ``count + 1`` on a log axis,
labelled in the count, where the PNG draws it on a symmetric log axis (linear below 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from pdcore.escaping import html_text

__all__ = ["axis", "count_axis", "one_two_five", "panel_title", "power_of_two_ticks"]


def axis(title: str, **extra: Any) -> dict[str, Any]:
    """A plotly axis with ``title`` (plain text, escaped here) and the page's grid."""
    return {"title": {"text": html_text(title)}, "gridcolor": "#e5e5e5", "zeroline": False} | extra


def panel_title(text: str, domain: Sequence[float], y: float = 1.1) -> dict[str, Any]:
    """A panel's title (plain text, escaped here) above the middle of its x-axis ``domain`` (paper
    coordinates)."""
    return {
        "text": html_text(text),
        "xref": "paper",
        "yref": "paper",
        "x": sum(domain) / 2,
        "y": y,
        "showarrow": False,
    }


def power_of_two_ticks(values: Iterable[float]) -> dict[str, Any]:
    """Tick settings of a log axis over the positive ``values``: a tick at every power of two from below
    the smallest to above the largest, labelled as a plain number (matplotlib's base-2 log axis with a
    scalar formatter)."""
    positive = [value for value in values if value > 0 and math.isfinite(value)]
    if not positive:
        return {}
    low, high = math.floor(math.log2(min(positive))), math.ceil(math.log2(max(positive)))
    ticks = [2.0**power for power in range(low, high + 1)]
    return {"tickmode": "array", "tickvals": ticks, "ticktext": [f"{tick:g}" for tick in ticks]}


def count_axis(title: str, largest: float, **extra: Any) -> dict[str, Any]:
    """A log axis for ``count + 1`` labelled in the count: ticks at 0, 1, 10, 100, ... up to ``largest``
    (the decades of the PNG's symmetric log axis)."""
    counts = [0, 1]
    while counts[-1] < largest:
        counts.append(counts[-1] * 10)
    return axis(
        title,
        type="log",
        tickmode="array",
        tickvals=[count + 1 for count in counts],
        ticktext=[str(count) for count in counts],
        **extra,
    )


def one_two_five(low: float, high: float) -> list[float]:
    """Round values between ``low`` and ``high`` (both > 0) for the ticks of a log colour scale: 1, 2 and
    5 times the powers of ten over at most three decades, the powers of ten alone over more."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    steps = (1.0,) if last - first > 3 else (1.0, 2.0, 5.0)
    values = [step * 10.0**power for power in range(first, last + 1) for step in steps]
    inside = [value for value in values if low <= value <= high]
    return inside or [low, high]
