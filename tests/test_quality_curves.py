"""Bad input at the edge of the quality-curve files: refused with the file, the key and the fix, never a
traceback; and a curve file read is an input no output may replace."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pdcore.exceptions import InvalidInputError
from pdcore.inputs import forget_inputs
from pdcore.nesting import MAX_NESTING
from pdcore.outputs import write_text
from pdcore.quality_curves import (
    check_ratio,
    load_quality_curve,
    load_quality_report,
    parse_quality_text,
    read_quality_file,
)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "python/pdcore/refine/data/quality-smollm2-135m.toml"
TEXT = SHIPPED.read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def _fresh_inputs() -> Iterator[None]:
    forget_inputs()
    yield
    forget_inputs()


EDITS = [
    ("name = ", "deep = " + "[" * 100_000 + "]" * 100_000 + "\nname = ", f"more than {MAX_NESTING}"),
    ("name = ", "deep = " + "{a = " * 5_000 + "1" + " }" * 5_000 + "\nname = ", f"more than {MAX_NESTING}"),
    ("prefill_s = 5.2428", "prefill_s = " + "9" * 400, "prefill_s"),
    ("prefill_s = 5.2428", "prefill_s = " + "9" * 5000, "too many digits"),
    ("ratio = 0.75", "ratio = " + "9" * 400, "ratio"),
    ("drop_ci95 = [-0.0719, 0.0469]", "drop_ci95 = [-0.0719, " + "9" * 400 + "]", "drop_ci95"),
    ("drop_ci95 = [-0.0719, 0.0469]", "drop_ci95 = [-0.0719]", "drop_ci95"),
    ("drop_ci95 = [-0.0719, 0.0469]", 'drop_ci95 = "wide"', "drop_ci95"),
    ("prefill_tokens = 1114", "prefill_tokens = 99999999999999999999999", "prefill_tokens"),
    ("prefill_tokens = 1114", "prefill_tokens = -3", "prefill_tokens"),
    ("f1 = 0.5031", 'f1 = "high"', "f1"),
    ("f1 = 0.5031", "f1 = true", "f1"),
    ("f1 = 0.5031", "f1 = [0.5]", "f1"),
    ("prefill_runs_s = [5.135,", "prefill_runs_s = [true,", "prefill_runs_s"),
    ("f1_by_family = { count = 0.8095,", 'f1_by_family = { count = "x",', "f1_by_family.count"),
    (
        "f1_by_family = { count = 0.8095, passkey = 0.3349, town = 0.3721 }",
        "f1_by_family = 3",
        "f1_by_family",
    ),
]


@pytest.mark.parametrize(("old", "new", "name"), EDITS)
def test_mutated_curves_name_the_problem(tmp_path: Path, old: str, new: str, name: str) -> None:
    assert old in TEXT, old
    curve = tmp_path / "q.toml"
    curve.write_text(TEXT.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(InvalidInputError) as info:
        load_quality_report(curve)
    message = str(info.value)
    for part in ("q.toml", name, "fix:"):
        assert part in message, (part, message)


def test_nesting_in_a_string_or_comment_is_text(tmp_path: Path) -> None:
    curve = tmp_path / "q.toml"
    text = TEXT.replace("name = ", "# " + "[" * 500 + '\nnote = "' + "{" * 500 + '"\nname = ', 1)
    curve.write_text(text, encoding="utf-8")
    assert load_quality_report(curve).name == "smollm2-135m"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_curve_is_named_as_one(tmp_path: Path) -> None:
    fifo = tmp_path / "q.toml"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInputError, match=r"q\.toml' is a FIFO.*fix:.*regular file"):
        load_quality_curve(fifo)


def test_a_directory_curve_is_named_as_one(tmp_path: Path) -> None:
    folder = tmp_path / "q.toml"
    folder.mkdir()
    with pytest.raises(InvalidInputError, match=r"q\.toml' is a directory; fix:"):
        load_quality_curve(folder)


@pytest.mark.parametrize("reader", [load_quality_curve, load_quality_report, read_quality_file])
@pytest.mark.parametrize("value", [None, 123, 1.5, True, b"q.toml", ["q.toml"], {"a": 1}])
def test_a_curve_that_is_not_a_name_or_path_is_refused(reader: object, value: object) -> None:
    with pytest.raises(InvalidInputError, match=r"quality curve = .* neither .*; fix: pass"):
        reader(value)  # type: ignore[operator]


@pytest.mark.parametrize("text", [None, 12, b"name = 1"])
def test_curve_text_that_is_not_text_is_refused(text: object) -> None:
    with pytest.raises(InvalidInputError, match="not text; fix"):
        parse_quality_text(text, "given")  # type: ignore[arg-type]


@pytest.mark.parametrize("ratio", [True, False, "0.5", None, 10**400, -(10**400), math.nan, [0.5]])
def test_check_ratio_refuses_what_is_not_a_ratio(ratio: object) -> None:
    with pytest.raises(InvalidInputError, match=r"ratio = .*fix: pass the fraction"):
        check_ratio(ratio)  # type: ignore[arg-type]


def test_a_curve_read_cannot_be_overwritten(tmp_path: Path) -> None:
    curve = tmp_path / "q.toml"
    curve.write_text(TEXT, encoding="utf-8")
    load_quality_curve(curve)
    with pytest.raises(InvalidInputError, match="input"):
        write_text(curve, "overwritten\n")
    assert curve.read_text(encoding="utf-8") == TEXT


def test_the_shipped_curve_read_cannot_be_overwritten() -> None:
    load_quality_curve("smollm2-135m")
    with pytest.raises(InvalidInputError, match="input"):
        write_text(SHIPPED, "overwritten\n")
    assert SHIPPED.read_text(encoding="utf-8") == TEXT
