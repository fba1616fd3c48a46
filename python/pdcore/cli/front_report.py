"""``pdcore front-report``: the sizing front (`pdcore.report.front`) from the JSON that ``pdcore size
--model-family NAME --json`` (or ``--clouds a,b --json``) writes: ``front.md``, each policy's two Pareto
fronts as tables with the command that made them; ``front_ttft.png`` and ``front_speed.png``, goodput per
GPU against TTFT p90 and against per-user tokens/s (`pdcore.report.front_plots`); and ``front.html``, the
same with both figures interactive (`pdcore.report.front_page`; with plotly, else a note on standard
error says how to get it and the rest is written, as ``pdcore fleet-report`` does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pdcore.cli.options import reported
from pdcore.cli.report_files import interactive_page, require_matplotlib, say_written

__all__ = ["front_report"]


def front_report(
    size_json: Annotated[
        Path,
        typer.Option("--size-json", help="The JSON of pdcore size --model-family NAME (or --clouds) --json."),
    ],
    out: Annotated[
        Path,
        typer.Option("--out", help="Directory for front.md, front_ttft.png, front_speed.png and front.html."),
    ],
    size_command: Annotated[
        str | None, typer.Option("--size-command", help="The command that wrote --size-json.")
    ] = None,
) -> None:
    """Write the sizing front: each policy's Pareto fronts as tables and figures (PNG and interactive)."""
    with reported():
        require_matplotlib("pdcore front-report")
        from pdcore.report.front import read_front, write_markdown  # noqa: PLC0415 - after the check
        from pdcore.report.front_plots import front_figures  # noqa: PLC0415 - needs matplotlib

        front = read_front(size_json)
        markdown = write_markdown(out, front, size_command)
        written = [markdown, *front_figures(front, out)]

        def page() -> Path:
            from pdcore.report.front_page import front_page  # noqa: PLC0415 - needs the plot extra

            return front_page(out, markdown, front)

        html = interactive_page("front.html (the interactive figures)", page)
        say_written([*written, html] if html is not None else written)
