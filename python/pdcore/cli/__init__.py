"""The ``pdcore`` command line: the Typer app and the console script.

Each command group lives in its own module and adds itself with ``register(app)``: `compare` (compare,
simulate), `policies`, `profiles`, `optimize`, `report` (reproduce), `refine` (refine, refine-eval), `runtime`
(chat, profile-device, validate), `serve`, `size`, `traces` (list, fetch, add) and `view`. They share their
option types, loading helpers and error printing through `pdcore.cli.options` (the live commands also
`pdcore.cli.live_options`, and the simulating commands the overload notice of `pdcore.cli.notices`), and none
imports another.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Annotated

import typer
from typer.core import TyperCommand

from pdcore import __version__
from pdcore.cli import (
    compare,
    optimize,
    policies,
    profiles,
    profiles_build,
    refine,
    report,
    runtime,
    serve,
    size,
    traces,
    view,
)
from pdcore.cli.compare import DEFAULT_POLICIES
from pdcore.cli.help import FlagCommand, FlagGroup
from pdcore.cli.options import DEFAULT_CLOUD, DEFAULT_DEVICE, DEFAULT_NETWORK

__all__ = ["DEFAULT_CLOUD", "DEFAULT_DEVICE", "DEFAULT_NETWORK", "DEFAULT_POLICIES", "app", "main"]

app = typer.Typer(
    name="pdcore",
    help="Cloud-device disaggregated LLM inference (P/D-Device): simulate policies on request traces.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=FlagGroup,
)
for _group in (
    compare,
    policies,
    profiles,
    profiles_build,
    optimize,
    report,
    refine,
    runtime,
    serve,
    size,
    traces,
    view,
):
    _group.register(app)
for _command in [
    *app.registered_commands,
    *(
        command
        for group in app.registered_groups
        if group.typer_instance is not None
        for command in group.typer_instance.registered_commands
    ),
]:
    if _command.cls is None or _command.cls is TyperCommand:
        _command.cls = FlagCommand


def _print_version(given: bool) -> None:
    if given:
        typer.echo(f"pdcore {__version__}")
        raise typer.Exit


@app.callback()
def _pdcore(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print pdcore's version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Cloud-device disaggregated LLM inference (P/D-Device): simulate policies on request traces."""


def _terminated(signum: int, frame: FrameType | None) -> None:
    # SIGTERM and SIGHUP end the command as Ctrl-C does: every output transaction under way unwinds and
    # removes its temporaries (pdcore.outputs); the exit status is the shell's 128 + signal
    raise SystemExit(128 + signum)


def main() -> None:
    """The ``pdcore`` console script."""
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _terminated)
    app()
