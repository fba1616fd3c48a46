"""``front.html`` of ``pdcore front-report``: the sizing front as one self-contained interactive page,
``front.md``'s text (`pdcore.report.html.markdown_to_html`) with the two interactive figures
(`pdcore.report.figures.front`) where the markdown shows ``front_ttft.png`` and ``front_speed.png``.

It needs plotly (the ``plot`` extra), whose plotly.js the page inlines (`pdcore.report.page`), as
``report.html`` and ``fleet.html`` do.
"""

from __future__ import annotations

from pathlib import Path

from pdcore.outputs import write_text
from pdcore.report.figures.front import front_plotly_figure
from pdcore.report.front import FIGURES, SizingFront
from pdcore.report.html import markdown_to_html
from pdcore.report.page import page

__all__ = ["ELEMENTS", "front_page"]

ELEMENTS = {"ttft": "fig-front-ttft", "speed": "fig-front-speed"}
"""The page element of each figure."""


def front_page(out: Path, markdown: Path, front: SizingFront) -> Path:
    """Writes ``out/front.html`` from ``markdown`` (``front.md``) and ``front``; returns its path.

    Raises:
        InvalidInputError: plotly is not installed.
    """
    images = {
        FIGURES[kind]: f'<div class="figure" id="{element}"></div>' for kind, element in ELEMENTS.items()
    }
    body = markdown_to_html(markdown.read_text(encoding="utf-8"), images)
    figures = {element: front_plotly_figure(front, kind) for kind, element in ELEMENTS.items()}
    html = page("pdcore front-report", body, figures=figures)
    path = out / "front.html"
    write_text(path, html)
    return path
