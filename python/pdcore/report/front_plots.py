"""The PNGs of the sizing front (`pdcore.report.front`): ``front_ttft.png``, goodput per GPU against TTFT
p90, and ``front_speed.png``, against per-user tokens/s.

Every candidate with a cloud is a point in its policy's colour (`pdcore.report.fleet.policy_colour`,
`pdcore.report.style`), hollow off the front and filled on it; each policy's front is a step line
(`pdcore.report.front.STEPS`) and its points are labelled by cloud profile, TP and split. Needs the
``plot`` extra (matplotlib).
"""

from __future__ import annotations

from pathlib import Path

from pdcore.report.fleet import policy_colour
from pdcore.report.front import FIGURES, STEPS, SizingFront

__all__ = ["AXES", "front_figure", "front_figures"]

AXES = {
    "ttft": "TTFT p90, s (lower is better)",
    "speed": "per-user tokens/s (higher is better)",
}
"""The x axis of each figure; the y axis is goodput per GPU in both."""

GOODPUT_AXIS = "goodput per GPU, req/s"


def front_figure(front: SizingFront, kind: str, path: Path) -> Path:
    """Writes the ``kind`` figure (``ttft`` or ``speed``) of ``front`` to ``path``; returns it."""
    from matplotlib.figure import Figure  # noqa: PLC0415 - the plot extra is optional

    from pdcore.report.plots.drawing import save  # noqa: PLC0415 - it imports matplotlib

    figure = Figure(figsize=(6.4, 4.0))
    axes = figure.add_subplot()
    for index, (policy, points) in enumerate(front.points.items()):
        colour = policy_colour(policy, index)
        shown = [p for p in points if p.plotted(kind)]
        off = [p for p in shown if not p.on_front(kind)]
        axes.scatter(
            [p.xy(kind)[0] for p in off],
            [p.xy(kind)[1] for p in off],
            facecolors="none",
            edgecolors=colour,
            s=28,
        )
        on = front.front(policy, kind)
        axes.plot(
            [p.xy(kind)[0] for p in on],
            [p.xy(kind)[1] for p in on],
            drawstyle=STEPS[kind],
            marker="o",
            markersize=5,
            color=colour,
            label=f"{policy} ({len(on)} on the front of {len(shown)})",
        )
        for order, p in enumerate(on):
            # neighbours on a front are often close: their labels go above and below in turn
            axes.annotate(
                p.label,
                p.xy(kind),
                textcoords="offset points",
                xytext=(4, 4 if order % 2 == 0 else -11),
                fontsize=6.5,
                color=colour,
            )
    axes.set_xlabel(AXES[kind])
    axes.set_ylabel(GOODPUT_AXIS)
    axes.margins(x=0.18, y=0.12)  # room for the labels of the points at the edges
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    if front.points:
        axes.legend(fontsize=8)
    axes.set_title(f"{front.workload}: sizing front", fontsize=10)
    figure.tight_layout()
    return save(figure, path)


def front_figures(front: SizingFront, out: Path) -> list[Path]:
    """Writes both figures into ``out`` (`pdcore.report.front.FIGURES`); returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    return [front_figure(front, kind, out / name) for kind, name in FIGURES.items()]
