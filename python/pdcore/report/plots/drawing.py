"""What every PNG figure of ``pdcore reproduce`` shares: its resolution, saving it whole, and the tick
labels of log axes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from pdcore.outputs import atomic_path

__all__ = ["DPI", "major_label", "minor_label", "percent", "save"]

DPI = 110


def save(figure: Figure, path: Path) -> Path:
    """Writes ``figure`` to ``path`` (format from the suffix) whole or not at all, without the software
    stamp, so the same figure gives the same bytes."""
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format=path.suffix[1:], dpi=DPI, metadata={"Software": None})
    return path


def percent(values: Sequence[float | None]) -> list[float]:
    """Shares as percentages, a missing one as NaN (a gap in the line)."""
    return [np.nan if value is None else 100.0 * value for value in values]


def major_label(value: float, _position: int | None) -> str:
    return f"{value:g}"


def minor_label(value: float, _position: int | None) -> str:
    """Labels the 2, 3 and 5 minor ticks of a log axis, so a range under a decade still has numbers."""
    if value <= 0.0:
        return ""
    digit = round(value / 10.0 ** np.floor(np.log10(value)))
    return f"{value:g}" if digit in {2, 3, 5} else ""
