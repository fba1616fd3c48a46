"""Tests for pdcore.nesting: JSON and TOML refused past the nesting limit before they are parsed."""

from __future__ import annotations

import json
import sys

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from pdcore.exceptions import InvalidInputError, TraceFormatError
from pdcore.nesting import MAX_NESTING, check_nesting


def _arrays(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("syntax", ["json", "toml"])
def test_the_limit_itself_passes_and_parses(syntax: str) -> None:
    text = _arrays(MAX_NESTING) if syntax == "json" else "x = " + _arrays(MAX_NESTING)
    check_nesting(text, "t", syntax)  # type: ignore[arg-type]
    (json.loads if syntax == "json" else tomllib.loads)(text)


@pytest.mark.parametrize("syntax", ["json", "toml"])
@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 100_000])
def test_one_level_more_is_refused_naming_where_and_the_fix(syntax: str, depth: int) -> None:
    text = _arrays(depth) if syntax == "json" else "x = " + _arrays(depth)
    with pytest.raises(
        InvalidInputError, match=rf"^f\.txt, line 3: the .* more than {MAX_NESTING} .*; fix: x$"
    ):
        check_nesting(text, "f.txt, line 3", syntax, fix="x")  # type: ignore[arg-type]


def test_objects_and_tables_count_like_arrays() -> None:
    with pytest.raises(InvalidInputError):
        check_nesting('{"a": ' * 70 + "1" + "}" * 70, "t", "json")
    with pytest.raises(InvalidInputError):
        check_nesting("x = " + "{a = " * 70 + "1" + " }" * 70, "t", "toml")


@pytest.mark.parametrize(
    ("text", "syntax"),
    [
        ('{"a": "' + "[" * 500 + '"}', "json"),
        ('{"a": "\\"' + "[" * 500 + '"}', "json"),
        ('a = "' + "[" * 500 + '"', "toml"),
        ("a = '" + "{" * 500 + "'", "toml"),
        ('a = """\n' + "[" * 500 + '\n"""', "toml"),
        ("a = '''\n" + "[" * 500 + "\n'''", "toml"),
        ("# " + "[" * 500 + "\na = 1", "toml"),
        ("[[point]]\na = 1\n" * 500, "toml"),
    ],
)
def test_brackets_in_strings_comments_and_headers_are_not_nesting(text: str, syntax: str) -> None:
    check_nesting(text, "t", syntax)  # type: ignore[arg-type]


def test_the_error_class_is_the_callers() -> None:
    with pytest.raises(TraceFormatError):
        check_nesting(_arrays(1000), "t", "json", error=TraceFormatError)
