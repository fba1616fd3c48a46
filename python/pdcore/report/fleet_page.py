"""``fleet.html`` of ``pdcore fleet-report``: the fleet section as one self-contained interactive page,
``fleet.md``'s text (`pdcore.report.html.markdown_to_html`) with the interactive figure of GPUs against
the capable share (`pdcore.report.figures.fleet`) where the markdown shows ``fleet_sweep.png``.

It needs plotly (the ``plot`` extra), whose plotly.js the page inlines (`pdcore.report.page`), as
``report.html`` does.
"""

from __future__ import annotations

from pathlib import Path

from pdcore.outputs import write_text
from pdcore.report.figures.fleet import fleet_sweep_figure
from pdcore.report.fleet import SWEEP_FIGURE, read_document
from pdcore.report.html import markdown_to_html
from pdcore.report.page import page

__all__ = ["fleet_page"]

_ELEMENT = "fig-fleet-sweep"


def fleet_page(out: Path, markdown: Path, size_json: Path) -> Path:
    """Writes ``out/fleet.html`` from ``markdown`` (``fleet.md``) and ``size_json`` (the JSON of
    ``pdcore size --fleet --json``); returns its path.

    Raises:
        InvalidInputError: ``size_json`` is not such a document, or plotly is not installed.
    """
    document = read_document(size_json, "fleet_sizing", "--size-json")
    images = {SWEEP_FIGURE: f'<div class="figure" id="{_ELEMENT}"></div>'}
    body = markdown_to_html(markdown.read_text(encoding="utf-8"), images)
    html = page("pdcore fleet-report", body, figures={_ELEMENT: fleet_sweep_figure(document)})
    path = out / "fleet.html"
    write_text(path, html)
    return path
