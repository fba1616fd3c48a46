"""TOML for profile files: reading with typed key access (every failure is a `ProfileError` naming the key),
and writing (`toml_document`), which the profiles' ``to_toml`` use so that their loaders read back the same
values."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pdcore.exceptions import ProfileError
from pdcore.limits import LIMITS_DOC, MAX_PROFILE_INT, MAX_PROFILE_SECONDS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "Table",
    "check_keys",
    "get_float",
    "get_int",
    "get_number_list",
    "get_str",
    "get_table",
    "parse_toml",
    "read_toml",
    "toml_document",
    "toml_value",
]

Table = Mapping[str, Any]


def parse_toml(text: str, source: str) -> Table:
    """Parses TOML text, naming ``source`` and the position in the error."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(
            f"{source}: invalid TOML ({exc}); fix: correct the syntax at that position"
        ) from None


def read_toml(path: Path) -> Table:
    """Reads and parses a TOML file."""
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise ProfileError(f"profile file {str(path)!r} {what}; fix: pass the path of a .toml profile")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(
            f"{path}: byte {exc.start} is not valid UTF-8; fix: save the profile as UTF-8 text"
        ) from None
    return parse_toml(text, str(path))


def _key(section: str, key: str) -> str:
    return f"[{section}] {key}" if section else key


def check_keys(table: Table, section: str, allowed: tuple[str, ...], source: str) -> None:
    """Rejects keys not in ``allowed`` (catches misspellings that would otherwise be ignored)."""
    for key in table:
        if key not in allowed:
            raise ProfileError(
                f"{source}: unknown key {_key(section, key)!r}; fix: use only {', '.join(allowed)}"
                + (f" in [{section}]" if section else " at the top level")
            )


def get_table(table: Table, section: str, source: str) -> Table:
    """Returns the sub-table ``[section]``."""
    value = table.get(section)
    if value is None:
        raise ProfileError(f"{source}: missing table [{section}]; fix: add the [{section}] section")
    if not isinstance(value, Mapping):
        raise ProfileError(
            f"{source}: {section!r} must be a table, got {type(value).__name__}; fix: write it as [{section}]"
        )
    return value


def get_str(table: Table, section: str, key: str, source: str) -> str:
    """Returns a required, non-empty string."""
    if key not in table:
        raise ProfileError(f'{source}: missing key {_key(section, key)!r}; fix: add {key} = "..."')
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        raise ProfileError(
            f"{source}: key {_key(section, key)!r} = {value!r} must be a non-empty string; "
            f'fix: write {key} = "..."'
        )
    return value


def get_float(
    table: Table,
    section: str,
    key: str,
    source: str,
    *,
    positive: bool = False,
    maximum: float = MAX_PROFILE_SECONDS,
) -> float:
    """Returns a required finite number, >= 0 (> 0 when ``positive``), at most ``maximum``
    (`pdcore.limits.MAX_PROFILE_SECONDS` unless given)."""
    if key not in table:
        raise ProfileError(f"{source}: missing key {_key(section, key)!r}; fix: add {key} = <number>")
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProfileError(
            f"{source}: key {_key(section, key)!r} = {value!r} is not a number; fix: write a number"
        )
    number = float(value)
    bound = "greater than 0" if positive else "0 or more"
    if not math.isfinite(number) or number < 0.0 or (positive and number == 0.0):
        raise ProfileError(
            f"{source}: key {_key(section, key)!r} = {value!r}; fix: it must be a finite number {bound}"
        )
    if number > maximum:
        raise ProfileError(
            f"{source}: key {_key(section, key)!r} = {value!r} is above the limit of {maximum:g}; "
            f"fix: correct the value (limits: {LIMITS_DOC})"
        )
    return number


def get_int(
    table: Table,
    section: str,
    key: str,
    source: str,
    *,
    minimum: int = 1,
    maximum: int = MAX_PROFILE_INT,
) -> int:
    """Returns a required integer from ``minimum`` to ``maximum`` (`pdcore.limits.MAX_PROFILE_INT`)."""
    if key not in table:
        raise ProfileError(f"{source}: missing key {_key(section, key)!r}; fix: add {key} = <integer>")
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProfileError(
            f"{source}: key {_key(section, key)!r} = {value!r} is not an integer; fix: write a whole number"
        )
    if value < minimum:
        raise ProfileError(
            f"{source}: key {_key(section, key)!r} = {value}; fix: it must be at least {minimum}"
        )
    if value > maximum:
        raise ProfileError(
            f"{source}: key {_key(section, key)!r} = {value} is above the limit of {maximum:,}; "
            f"fix: correct the value (limits: {LIMITS_DOC})"
        )
    return value


def get_number_list(
    table: Table, section: str, key: str, source: str, *, maximum: float = math.inf
) -> tuple[float, ...]:
    """Returns a required, non-empty array of finite numbers, each at most ``maximum``, as floats."""
    if key not in table:
        raise ProfileError(f"{source}: missing key {_key(section, key)!r}; fix: add {key} = [ ... ]")
    value = table[key]
    if not isinstance(value, list) or not value:
        raise ProfileError(
            f"{source}: key {_key(section, key)!r} must be a non-empty array of numbers, got {value!r}; "
            f"fix: write {key} = [1, 2, ...]"
        )
    numbers = []
    for index, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise ProfileError(
                f"{source}: key {_key(section, key)!r}[{index}] = {item!r} is not a number; "
                "fix: use numbers only"
            )
        number = float(item)
        if not math.isfinite(number):
            raise ProfileError(
                f"{source}: key {_key(section, key)!r}[{index}] = {item!r} is not finite; "
                "fix: replace it with a measured value"
            )
        if number > maximum:
            raise ProfileError(
                f"{source}: key {_key(section, key)!r}[{index}] = {item!r} is above the limit of "
                f"{maximum:g}; fix: correct the value (limits: {LIMITS_DOC})"
            )
        numbers.append(number)
    return tuple(numbers)


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
"""The short escapes of a TOML basic string."""

_EXACT_INTEGER = 2.0**53
"""Below this a whole float is written as an integer (it reads back as the same float)."""


def _basic_string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_value(value: object) -> str:
    """A string, whole number, finite number or array of them as TOML; a float reads back exactly (its
    shortest repr, or a whole number when it is one)."""
    if isinstance(value, str):
        return _basic_string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ProfileError(f"{value!r} cannot be written to a profile; fix: give a finite number")
        return str(int(value)) if value.is_integer() and abs(value) < _EXACT_INTEGER else repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise ProfileError(f"{value!r} cannot be written to a profile; fix: give a string or numbers")


def toml_document(top: Mapping[str, object], tables: Mapping[str, Mapping[str, object] | None]) -> str:
    """A TOML document: the ``top`` keys, then each table that is not None, in order; a None value is left
    out (an optional key)."""

    def keys(items: Mapping[str, object]) -> list[str]:
        return [f"{key} = {toml_value(value)}" for key, value in items.items() if value is not None]

    lines = keys(top)
    for name, items in tables.items():
        if items is not None:
            lines += ["", f"[{name}]", *keys(items)]
    return "\n".join(lines) + "\n"
