"""The ``reproduce`` command in a CLI of its own, for the report's tests (`typer.testing.CliRunner`)."""

from __future__ import annotations

import typer

from pdcore.cli.report import register

__all__ = ["cli"]


def cli() -> typer.Typer:
    """A Typer app with ``reproduce`` registered as the real CLI registers it."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    register(app)

    @app.command()
    def version() -> None:
        """A second command, so that ``reproduce`` is addressed by name as in the real CLI."""

    return app
