"""How ``pdcore --help`` shows options: a boolean flag as a flag.

Typer's help prints each option's type in a column, ``<bool>`` for a flag, which reads as a value to pass
(``--capacity true``, which then fails as an unexpected argument). The command and group classes here blank
that column for every flag, ``--help`` included, so a flag shows as ``--capacity`` or ``--check/--no-check``
alone. Click prints no metavar for a flag, so the blank changes nothing else.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand, TyperGroup

__all__ = ["FlagCommand", "FlagGroup"]


def _flags_as_flags(params: list[Any]) -> list[Any]:
    # typer carries its own copy of click, so a flag is known by its is_flag, not by its class
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    return params


class FlagCommand(TyperCommand):
    """A command whose help shows its flags without a type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_as_flags(super().get_params(ctx))


class FlagGroup(TyperGroup):
    """The ``pdcore`` group, whose help shows its flags (``--version``, ``--help``) without a type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_as_flags(super().get_params(ctx))
