"""A live timeline file (``pdcore chat --json``, ``pdcore validate --json``) read strictly, where it enters.

`read_timeline_json` reads the file as JSON nested at most `MAX_NESTING` deep (checked before parsing, so a
deeply nested file is refused, never a ``RecursionError``), and records it as an input of the run
(`pdcore.inputs.note_input`) so that no output replaces it. `FieldReader` then reads its fields, each
refused with the file, the field (with its index) and the fix when it is missing, of the wrong type or out
of range:

- a time is a finite number of seconds from the request's start, from 0 to `MAX_TIME_S`;
- the times of a list the format keeps in time order (displayed tokens, cloud arrivals, revisions of the
  hand-off estimate) never run backwards;
- counts are whole numbers, flags are booleans, texts are strings.

The bound is ours, not the paper's: one live request is one answer, watched while it streams, so a day is
far beyond any real one (86,400 tokens at one second each), and a time past it is a clock fault or a unit
mix-up (nanoseconds, or Unix time written as seconds from the start). The simulator's predicted times come
from a nanosecond clock minus a float arrival, so a time less than `TOLERANCE_S` below 0 (the format's
resolution) reads as 0.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pdcore.exceptions import InvalidInputError
from pdcore.inputs import note_input
from pdcore.limits import MAX_SLO_S

__all__ = ["FIX", "MAX_NESTING", "MAX_TIME_S", "TOLERANCE_S", "FieldReader", "read_timeline_json"]

MAX_TIME_S = 86_400.0
"""Largest time in a timeline, in seconds from the request's start: one day (module docstring)."""

MAX_NESTING = 32
"""Deepest nesting of arrays and objects read; the format itself nests 6 deep."""

TOLERANCE_S = 1e-6
"""How far below 0 a time may be and still read as 0: the format's resolution, one microsecond."""

FIX = (
    "pass the JSON that `pdcore chat --json` or `pdcore validate --json` wrote, as it wrote it "
    f"(times in seconds from the request's start, in order, from 0 to {MAX_TIME_S:,.0f})"
)
"""The fix every refusal of a timeline file names."""

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def _nested_deeper(text: str, limit: int) -> bool:
    """Whether the arrays and objects of JSON ``text`` nest deeper than ``limit`` (strings left out)."""
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > limit:
            return True
    return False


def read_timeline_json(path: str | os.PathLike[str]) -> Any:
    """The JSON document in ``path``, recorded as an input of this run.

    Raises:
        InvalidInputError: The file cannot be read, is not UTF-8 JSON, or nests deeper than `MAX_NESTING`.
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(
            f"FILE {str(source)!r} cannot be read ({exc.strerror}); fix: pass a JSON file"
        ) from exc
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"FILE {str(source)!r} is not JSON ({exc}); fix: {FIX}") from exc
    note_input(source)
    if _nested_deeper(text, MAX_NESTING):
        raise InvalidInputError(
            f"FILE {str(source)!r} nests arrays or objects more than {MAX_NESTING} deep, which no timeline "
            f"does; fix: {FIX}"
        )
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # ValueError: JSONDecodeError, an integer of 4,300+ digits
        raise InvalidInputError(f"FILE {str(source)!r} is not JSON ({exc}); fix: {FIX}") from exc


def _shown(value: Any) -> str:
    """``value`` as a message shows it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class FieldReader:
    """Reads the fields of one timeline document, naming its file, the field and the fix of anything
    wrong (module docstring)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, what: str) -> InvalidInputError:
        """The error for field ``where`` (``runs[0].timeline.tokens[3].shown_s``) and what is wrong."""
        return InvalidInputError(f"{self.source}: {where} {what}; fix: {FIX}")

    def mapping(self, value: Any, where: str) -> Mapping[str, Any]:
        """``value``, which must be an object."""
        if not isinstance(value, Mapping):
            raise self.fail(where, f"is {type(value).__name__}, not an object")
        return value

    def items(self, parent: Mapping[str, Any], key: str, where: str) -> Sequence[Any]:
        """``parent[key]``, which must be a list."""
        value = parent.get(key)
        if not isinstance(value, list):
            raise self.fail(f"{where}.{key}", f"= {_shown(value)} is missing or not a list")
        return value

    def text(self, parent: Mapping[str, Any], key: str, where: str) -> str:
        """``parent[key]``, which must be a string."""
        value = parent.get(key)
        if not isinstance(value, str):
            raise self.fail(f"{where}.{key}", f"= {_shown(value)} is not a string")
        return value

    def flag(self, value: Any, where: str) -> bool:
        """``value``, which must be true or false."""
        if not isinstance(value, bool):
            raise self.fail(where, f"= {_shown(value)} is not true or false")
        return value

    def whole(
        self, parent: Mapping[str, Any], key: str, where: str, *, minimum: int, maximum: int
    ) -> int | None:
        """``parent[key]``: null (or absent), or a whole number from ``minimum`` to ``maximum``."""
        value = parent.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise self.fail(
                f"{where}.{key}",
                f"= {_shown(value)} is not null or a whole number from {minimum} to {maximum:,}",
            )
        return value

    def time_of(self, value: Any, where: str) -> float:
        """``value`` as a time: a finite number of seconds from 0 to `MAX_TIME_S`."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(where, f"= {_shown(value)} is not a number of seconds")
        if not -TOLERANCE_S <= value <= MAX_TIME_S:  # NaN compares false; a huge int is compared exactly
            raise self.fail(
                where,
                f"= {_shown(value)} is not a time from 0 to {MAX_TIME_S:,.0f} s after the request's start "
                "(finite, not negative, at most a day)",
            )
        return max(0.0, float(value))

    def time(self, parent: Mapping[str, Any], key: str, where: str) -> float:
        """``parent[key]``, a time (`time_of`)."""
        return self.time_of(parent.get(key), f"{where}.{key}")

    def objective(self, parent: Mapping[str, Any], key: str, where: str) -> float:
        """``parent[key]``, a gap objective (``max_tpot``): seconds above 0, at most `MAX_SLO_S`."""
        value = self.time(parent, key, where)
        if not 0.0 < value <= MAX_SLO_S:
            raise self.fail(f"{where}.{key}", f"= {value!r} is not above 0 and at most {MAX_SLO_S:,.0f} s")
        return value

    def optional_time(self, parent: Mapping[str, Any], key: str, where: str) -> float | None:
        """``parent[key]``: null (or absent), or a time (`time_of`)."""
        value = parent.get(key)
        return None if value is None else self.time_of(value, f"{where}.{key}")

    def in_order(self, times: Sequence[float], where: str, suffix: str = "") -> list[float]:
        """``times``, which the format keeps in time order, checked never to run backwards; ``where`` names
        the list and ``suffix`` the time within each entry (``".shown_s"``, ``"[0]"``; empty for a list of
        times)."""
        for index in range(1, len(times)):
            if times[index] < times[index - 1]:
                earlier = f"{where}[{index - 1}]{suffix} = {times[index - 1]!r}"
                raise self.fail(
                    f"{where}[{index}]{suffix}",
                    f"= {times[index]!r} is earlier than {earlier}: the list is in time order, so its times "
                    "never run backwards",
                )
        return list(times)
