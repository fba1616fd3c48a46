"""What the report commands (``pdcore fleet-report``, ``pdcore front-report``) share: the plot extra they
need, the interactive page written only with plotly (else a note on standard error says how to get it and
the rest is written), and the line that says what was written."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from rich.markup import escape

from pdcore.cli.options import missing_extra, stderr, stdout
from pdcore.exceptions import InvalidInputError

__all__ = ["interactive_page", "require_matplotlib", "say_written"]


def require_matplotlib(needed_by: str) -> None:
    """Raises, naming the extra to install, when matplotlib (the ``plot`` extra) is missing.

    Raises:
        InvalidInputError: matplotlib cannot be imported.
    """
    try:
        import matplotlib  # noqa: F401, PLC0415 - the plot extra is optional
    except ImportError:
        raise InvalidInputError(missing_extra("matplotlib", "plot", needed_by)) from None


def interactive_page(what: str, write: Callable[[], Path]) -> Path | None:
    """``write()``'s page when plotly is installed; else None, with a note naming ``what`` and the fix."""
    if importlib.util.find_spec("plotly") is None:
        note = missing_extra("plotly", "plot", what)
        stderr().print(f"not written: {escape(note)}", soft_wrap=True)
        return None
    return write()


def say_written(paths: list[Path]) -> None:
    """Prints the files written."""
    stdout().print(f"wrote {escape(', '.join(str(path) for path in paths))}", soft_wrap=True)
