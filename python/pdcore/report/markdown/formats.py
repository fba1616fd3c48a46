"""How ``report.md`` writes numbers: durations, display gaps, reductions, capacity multiples, rates, and
its pipe tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["arrival_rate", "cut", "gap_ms", "num", "pct", "rate", "rps", "seconds", "table", "times"]


def seconds(value: float | None) -> str:
    """A duration with a unit that keeps it short: ``129 ms``, ``1.81 s``, ``13,648 s``."""
    if value is None:
        return "-"
    if abs(value) < 1.0:
        return f"{value * 1e3:.0f} ms"
    if abs(value) < 100.0:
        return f"{value:.2f} s"
    return f"{value:,.0f} s"


def gap_ms(value: float | None) -> str:
    """A display gap, in ms with one decimal below a second (``50.3 ms``)."""
    if value is None:
        return "-"
    return f"{value * 1e3:.1f} ms" if abs(value) < 1.0 else seconds(value)


def cut(value: float | None) -> str:
    """A reduction: ``82%``; a rise up to double as a negative percentage; beyond, ``12.3x higher``."""
    if value is None:
        return "-"
    if value >= -1.0:
        return f"{value * 100:.0f}%"
    ratio = 1.0 - value
    return f"{ratio:,.0f}x higher" if ratio >= 100.0 else f"{ratio:.1f}x higher"


def pct(value: float | None) -> str:
    """A share as a whole percentage (``31%``)."""
    return "-" if value is None else f"{value * 100:.0f}%"


def times(found: Mapping[str, Any]) -> str:
    """A capacity multiple: ``13.7x``, ``>256x`` (above the search range), ``n/a``."""
    value = found["value"]
    if found["relation"] == "<":
        return "none"
    if value is None or found["relation"] == "n/a":
        return "n/a"
    prefix = {"=": "", ">": ">", "<": "<"}[found["relation"]]
    digits = 2 if value < 1.0 else 1
    return f"{prefix}{value:.{digits}f}x"


def num(value: float | None, digits: int = 3) -> str:
    """A plain number with ``digits`` decimals."""
    return "-" if value is None else f"{value:.{digits}f}"


def rps(found: Mapping[str, Any]) -> str:
    """A capacity search's result in req/s: ``>256`` above the range tried, ``none`` below it."""
    if found["bound"] == "above_max":
        return f">{found['max_rps_tried']:.0f}"
    if found["bound"] == "below_min":
        return "none"
    return f"{found['rps']:.2f}"


def rate(found: Mapping[str, Any]) -> str:
    """`rps` with its unit, for a sentence: ``9.41 req/s``, ``no rate``."""
    text = rps(found)
    return "no rate" if text == "none" else f"{text} req/s"


def arrival_rate(rate_rps: float | None) -> str:
    """An arrival rate, or why there is none (every request arrives at once)."""
    return "rate undefined" if rate_rps is None else f"{rate_rps:.2f} req/s"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    """A pipe table's lines; ``align`` gives ``l`` or ``r`` per column (default: the first left, the rest
    right)."""
    marks = [":--" if index == 0 else "--:" for index in range(len(header))]
    if align:
        marks = [":--" if flag == "l" else "--:" for flag in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines
