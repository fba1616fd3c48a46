"""``pdcore view FILE``: a ``chat --json`` or ``validate --json`` timeline as an interactive page.

`register` adds the command to the ``pdcore`` Typer app. The page is written beside FILE (or to
``--out``) and opened in the default browser unless ``--no-open``; errors pdcore raises on purpose print
one red line naming the input and the fix, with exit code 2.
"""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from pdcore.cli.options import reported, stdout
from pdcore.report.view import write_view

__all__ = ["register"]


def view_command(
    file: Annotated[
        Path,
        typer.Argument(help="A timeline JSON written by `pdcore chat --json` or `pdcore validate --json`."),
    ],
    out: Annotated[
        Path | None, typer.Option("--out", help="Where to write the page; default: FILE with .html.")
    ] = None,
    open_page: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the page in the default browser.")
    ] = True,
) -> None:
    """Write a chat or validate timeline as one self-contained interactive page, and open it."""
    with reported():
        written = write_view(file, out)
        stdout().print(f"wrote {escape(str(written))}", soft_wrap=True)
        if open_page and not webbrowser.open(written.resolve().as_uri()):
            stdout().print("no browser to open it with here; open the file in one", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Adds the ``view`` command to ``app``."""
    app.command("view")(view_command)
