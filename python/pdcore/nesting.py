"""How deeply JSON or TOML text nests, checked before it is parsed.

Python's parsers recurse once per level of nesting (``json`` through the C stack, ``tomllib`` three
Python frames a level), so a file nested 100,000 levels deep (``[[[[...]]]]``) ends in `RecursionError`
rather than in an error naming the file. Every reader of a user's JSON or TOML (traces, quality curves)
calls `check_nesting` on the text first, which refuses nesting deeper than `MAX_NESTING`, naming where
and the fix.

The scan counts the brackets and braces that open a value, skipping strings (and, in TOML, comments); a
text with no more openers than the limit in all is passed without a scan. Table headers (``[a]``,
``[[a]]``) open and close on one line and so count as one or two levels.
"""

from __future__ import annotations

import re
from typing import Literal

from pdcore.exceptions import InvalidInputError

__all__ = ["MAX_NESTING", "check_nesting"]

MAX_NESTING = 64
"""The deepest nesting of arrays and objects (tables) a JSON or TOML input may have. pdcore's rule: every file
pdcore reads needs at most four levels, and at 64 levels ``tomllib`` (three stack frames a level) stays far
below the interpreter's default recursion limit of 1,000 frames, whatever the caller's own depth."""

_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_TOML_TOKENS = re.compile(
    r'"""(?:[^\\]|\\.)*?"""'  # multi-line basic string
    r"|'''.*?'''"  # multi-line literal string
    r'|"(?:[^"\\\n]|\\.)*"'  # basic string
    r"|'[^'\n]*'"  # literal string
    r"|#[^\n]*"  # comment
    r"|[\[\]{}]",
    re.DOTALL,
)


def _deeper_than(limit: int, text: str, syntax: Literal["json", "toml"]) -> bool:
    """Whether brackets and braces outside strings (and TOML comments) nest more than ``limit`` deep."""
    if text.count("[") + text.count("{") <= limit:
        return False
    tokens = _JSON_TOKENS if syntax == "json" else _TOML_TOKENS
    depth = 0
    for match in tokens.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > limit:
                return True
        elif token in ("]", "}"):
            depth = max(depth - 1, 0)
    return False


def check_nesting(
    text: str,
    where: str,
    syntax: Literal["json", "toml"],
    *,
    fix: str = "flatten the data",
    error: type[InvalidInputError] = InvalidInputError,
) -> None:
    """Refuses ``text`` when it nests deeper than `MAX_NESTING` levels.

    Args:
        text: The JSON or TOML text (a file, or one line of a JSON Lines file).
        where: What the text is, for the message (a file, a file and line).
        syntax: ``"json"`` or ``"toml"``: which strings (and comments) the scan skips.
        fix: How to write it instead.
        error: The exception raised (`InvalidInputError` or a subclass, e.g. `TraceFormatError`).

    Raises:
        InvalidInputError: As ``error``, naming ``where``, the limit and ``fix``.
    """
    if _deeper_than(MAX_NESTING, text, syntax):
        raise error(
            f"{where}: the {syntax.upper()} nests arrays or objects more than {MAX_NESTING} levels deep; "
            f"fix: {fix}"
        )
