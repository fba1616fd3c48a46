"""``pdcore traces list``, ``pdcore traces fetch`` and ``pdcore traces add``: the public traces by name.

`list` shows every registered trace (`pdcore.traces.registry`): whether it is in the user's cache, its
size, licence, how a copy is checked and where its publisher serves it. `fetch` downloads one from its
publisher (or ``--url``, a mirror) with a progress bar on standard error; `add` imports a copy the user
already has, so no network is needed. Both show the trace's licence and the paper to cite, and keep a file
only once its digest is checked (`pdcore.traces.cache`). Once cached, ``--trace NAME`` reads it in every
command that takes a trace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from pdcore.cli.options import reported, stderr, stdout
from pdcore.traces.cache import Stored, add_trace, cache_dir, cached_file, format_size, recorded_sha256
from pdcore.traces.fetch import DEFAULT_TIMEOUT_S, fetch_source, fetch_trace
from pdcore.traces.registry import TRACES, PublicTrace, public_trace

__all__ = ["register", "traces_table"]

traces_app = typer.Typer(
    help="The public request traces by name: list them, fetch one from its publisher, or add a copy.",
    no_args_is_help=True,
)

NameArgument = Annotated[str, typer.Argument(help="The trace's name (`pdcore traces list`).")]


def _check(trace: PublicTrace) -> str:
    """How a copy of ``trace`` is checked, for the table (`PublicTrace.pin`)."""
    if trace.pin == "first use" and recorded_sha256(trace) is not None:
        return "recorded"
    return trace.pin


def traces_table() -> Table:
    """The registered traces, one row each: here (in the cache) or not, size, licence, check, source.

    No vertical rules: the six columns fit 80 terminal columns, the source wrapping within its own.
    """
    table = Table(
        header_style="bold", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True
    )
    for column in ("name", "here", "size", "licence", "check", "source"):
        table.add_column(column, overflow="fold", no_wrap=column != "source")
    for trace in TRACES.values():
        cached = cached_file(trace)
        size = trace.size_bytes if cached is None else cached.stat().st_size
        table.add_row(
            trace.name,
            "no" if cached is None else "yes",
            format_size(size),
            trace.licence,
            _check(trace),
            escape(trace.source),
        )
    return table


@traces_app.command("list")
def traces_list() -> None:
    """List the public traces: here (in the cache) or not, size, licence, how a copy is checked, source."""
    with reported():
        console = stdout()
        console.print(
            f"trace cache: {escape(str(cache_dir()))} (set PDCORE_TRACES to move it)", soft_wrap=True
        )
        console.print(traces_table())
        console.print(
            "check: sha256 pinned; git blob: the publisher's git blob id; first use: the first copy's sha256 "
            "is recorded and later ones must match it (recorded: it has been). Fetch one with `pdcore traces "
            "fetch NAME`, or add a copy you have with `pdcore traces add NAME PATH`; then pass --trace NAME. "
            "Each file's URL and digest: docs/traces.md.",
            soft_wrap=True,
        )


def _terms(trace: PublicTrace, origin: str) -> None:
    """Shows, on standard error, what the trace is, where it comes from, its licence and the paper to cite."""
    stderr().print(
        f"{escape(trace.name)}: {escape(trace.title)}, from {escape(origin)}\n"
        f"  licence {escape(trace.licence)} ({escape(trace.licence_url)}): by using it you accept its terms\n"
        f"  cite: {escape(trace.paper)}",
        soft_wrap=True,
    )


def _stored(verb: str, stored: Stored) -> None:
    if stored.note is not None:
        stderr().print(f"[yellow]note:[/yellow] {escape(stored.note)}", soft_wrap=True)
    stdout().print(
        f"{verb} {escape(stored.trace.name)} ({format_size(stored.digest.size)}, sha256 "
        f"{stored.digest.sha256}) into {escape(str(stored.path))}; pass --trace {escape(stored.trace.name)}",
        soft_wrap=True,
    )


@traces_app.command("fetch")
def traces_fetch(
    name: NameArgument,
    url: Annotated[
        str | None, typer.Option("--url", help="Download from this mirror instead of the publisher's URL.")
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds the server may stay silent before the fetch gives up.")
    ] = DEFAULT_TIMEOUT_S,
    force: Annotated[
        bool, typer.Option("--force", help="Download again even if the trace is in the cache.")
    ] = False,
) -> None:
    """Download a public trace from its publisher into the cache, checking its digest before keeping it."""
    with reported():
        trace = public_trace(name)
        source = fetch_source(trace, url, timeout)  # the options are checked even when nothing is fetched
        cached = cached_file(trace)
        if cached is not None and not force:
            stdout().print(
                f"{escape(name)} is already in the cache: {escape(str(cached))} (--force downloads it again)",
                soft_wrap=True,
            )
            return
        _terms(trace, source)
        console = stderr()
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,  # a log file gets the outcome, not a bar's last frame
        )
        with progress:
            task = progress.add_task(f"fetching {escape(name)}", total=trace.size_bytes)

            def advance(received: int, total: int | None) -> None:
                progress.update(task, completed=received, total=total or trace.size_bytes)

            stored = fetch_trace(name, url=url, timeout_s=timeout, progress=advance)
        _stored("fetched", stored)


@traces_app.command("add")
def traces_add(
    name: NameArgument,
    path: Annotated[Path, typer.Argument(help="A copy of the publisher's file.")],
) -> None:
    """Import a copy of a public trace you already have into the cache (no network), checking its digest."""
    with reported():
        trace = public_trace(name)
        _terms(trace, str(path))
        _stored("added", add_trace(name, path))


def register(app: typer.Typer) -> None:
    """Adds the ``traces`` command group to ``app``."""
    app.add_typer(traces_app, name="traces")
