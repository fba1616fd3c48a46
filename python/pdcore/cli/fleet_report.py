"""``pdcore fleet-report``: the fleet section of a report (`pdcore.report.fleet`) from the JSON that
``pdcore compare --fleet --json`` and ``pdcore size --fleet --json`` write: ``fleet.md`` with the table by
device class, ``fleet_sweep.png``, GPUs needed against the capable share per policy, and ``fleet.html``,
the section as one page with that figure interactive (`pdcore.report.fleet_page`; with plotly, else a note
on standard error says how to get it and the rest is written).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pdcore.cli.options import reported
from pdcore.cli.report_files import interactive_page, require_matplotlib, say_written

__all__ = ["fleet_report"]


def fleet_report(
    out: Annotated[
        Path, typer.Option("--out", help="Directory for fleet.md, fleet_sweep.png and fleet.html.")
    ],
    compare_json: Annotated[
        Path | None, typer.Option("--compare-json", help="The JSON of pdcore compare --fleet --json.")
    ] = None,
    size_json: Annotated[
        Path | None, typer.Option("--size-json", help="The JSON of pdcore size --fleet --json.")
    ] = None,
    compare_command: Annotated[
        str | None, typer.Option("--compare-command", help="The command that wrote --compare-json.")
    ] = None,
    size_command: Annotated[
        str | None, typer.Option("--size-command", help="The command that wrote --size-json.")
    ] = None,
) -> None:
    """Write the fleet section of a report: results by device class, and GPUs against the capable share."""
    with reported():
        if size_json is not None:
            require_matplotlib("--size-json")
        from pdcore.report.fleet import fleet_section  # noqa: PLC0415 - after the check above

        commands = {
            name: text for name, text in (("compare", compare_command), ("size", size_command)) if text
        }
        path = fleet_section(out, compare_json=compare_json, size_json=size_json, commands=commands)
        written = [path]
        if size_json is not None:
            sweep = size_json

            def page() -> Path:
                from pdcore.report.fleet_page import fleet_page  # noqa: PLC0415 - needs the plot extra

                return fleet_page(out, path, sweep)

            html = interactive_page("fleet.html (the interactive figure)", page)
            written += [html] if html is not None else []
        say_written(written)
