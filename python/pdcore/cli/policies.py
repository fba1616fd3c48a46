"""``pdcore policies``: the registered policies, what each does and its settings."""

from __future__ import annotations

import inspect

import typer
from rich.markup import escape
from rich.table import Table

from pdcore.cli.options import reported, stdout
from pdcore.policies import POLICIES

__all__ = ["register"]


def _summary(cls: type) -> str:
    """The first paragraph of a policy's docstring, on one line, without reST quoting."""
    doc = inspect.getdoc(cls) or ""
    return " ".join(doc.split("\n\n", 1)[0].split()).replace("``", "")


def _default(name: str, value: object) -> str:
    if value is None:
        return "the TPOT SLO" if name == "max_tpot_s" else "none"
    return str(value)


def _settings(cls: type) -> str:
    """The policy's settings as ``key=default``, in signature order."""
    given = [
        p for p in inspect.signature(cls).parameters.values() if p.default is not inspect.Parameter.empty
    ]
    return ", ".join(f"{p.name}={_default(p.name, p.default)}" for p in given)


def policies() -> None:
    """List the registered policies (pdcore's own and the rival strategies) with their settings."""
    with reported():
        table = Table(title="policies", title_justify="left", header_style="bold", show_lines=True)
        for column in ("name", "what each request does", "settings (name:key=value)"):
            table.add_column(column)
        for name, cls in POLICIES.items():
            table.add_row(name, escape(_summary(cls)), escape(_settings(cls)))
        stdout().print(table)


def register(app: typer.Typer) -> None:
    """Adds the ``policies`` command to ``app``."""
    app.command("policies")(policies)
