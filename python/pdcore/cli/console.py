"""Where a ``pdcore`` command's words go, and how its errors read.

Tables go to standard output (`stdout`); progress bars, notices and errors go to standard error (`stderr`).
Errors pdcore raises on purpose (`PdcoreError`) are printed by `reported` as one red line naming the input
and the fix, with exit code 2 and no traceback; a missing optional module names the extra that installs it
(`missing_extra`). Commands take these through `pdcore.cli.options`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from pdcore.exceptions import PdcoreError

__all__ = ["EXTRAS", "missing_extra", "progress_bars", "reported", "stderr", "stdout"]


def stdout() -> Console:
    """The console of tables and summaries."""
    # a file or pipe gets wide lines rather than truncated table cells
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def stderr() -> Console:
    """The console of progress, notices and errors."""
    return Console(stderr=True, highlight=False)


def progress_bars(console: Console, *, transient: bool = True) -> Progress:
    """Rich progress bars with a spinner, the count done and the time elapsed."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    )


@contextmanager
def reported(*, live: bool = False) -> Iterator[None]:
    """Turns pdcore's own errors and file errors into one red line and exit code 2.

    A missing optional module (`EXTRAS`) names the extra to install, in the same words for every command.
    With ``live`` (the commands of the live runtime, which read model files) a file error names the file
    used; otherwise a file error is an output that cannot be written.
    """
    try:
        yield
    except PdcoreError as exc:
        _error(str(exc))
    except ModuleNotFoundError as exc:
        extra = EXTRAS.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        _error(missing_extra(exc.name or str(exc), *extra))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if live:
            target = exc.filename if exc.filename is not None else "a file"
            _error(f"cannot use {str(target)!r}: {reason}")
        target = "an output" if exc.filename is None else repr(str(exc.filename))
        _error(f"cannot write {target}: {reason}; fix: check that the directory exists and is writable")


EXTRAS: dict[str, tuple[str, str]] = {
    "httpx": ("device", "this command"),
    "httpx_sse": ("device", "this command"),
    "aiohttp": ("device", "this command"),
    "llama_cpp": ("device", "this command"),
    "matplotlib": ("plot", "drawing plots"),
    "pyarrow": ("parquet", "Parquet output"),
    "ray": ("ray", "--executor ray"),
}
"""Optional modules -> (the pdcore extra that installs them, what needs them)."""


def missing_extra(module: str, extra: str, needed_by: str) -> str:
    """The one line every command prints when an optional extra is not installed."""
    return (
        f"{needed_by} needs the {extra!r} extra ({module} is not installed); "
        f"fix: pip install 'pdcore[{extra}]'"
    )


def _error(message: str) -> None:
    # the message is plain text: escaped whole, so `pdcore[device]` keeps its brackets
    stderr().print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code=2) from None
