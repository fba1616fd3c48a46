"""The ``pdcore`` command line: the Typer app and the console script.

Each command group lives in its own module and adds itself with ``register(app)``: `compare` (compare,
simulate), `policies`, `profiles`, `optimize`, `report` (reproduce), `refine` (refine, refine-eval), `runtime`
(chat, profile-device, validate), `serve`, `size` and `view`. They share their option types, loading helpers
and error printing through `pdcore.cli.options` (the live commands also `pdcore.cli.live_options`, and the
simulating commands the overload notice of `pdcore.cli.notices`), and none imports another.
"""

from __future__ import annotations

import signal
from types import FrameType

import typer

from pdcore.cli import compare, optimize, policies, profiles, refine, report, runtime, serve, size, view
from pdcore.cli.compare import DEFAULT_POLICIES
from pdcore.cli.options import DEFAULT_CLOUD, DEFAULT_DEVICE, DEFAULT_NETWORK

__all__ = ["DEFAULT_CLOUD", "DEFAULT_DEVICE", "DEFAULT_NETWORK", "DEFAULT_POLICIES", "app", "main"]

app = typer.Typer(
    name="pdcore",
    help="Cloud-device disaggregated LLM inference (P/D-Device): simulate policies on request traces.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for _group in (compare, policies, profiles, optimize, report, refine, runtime, serve, size, view):
    _group.register(app)


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
