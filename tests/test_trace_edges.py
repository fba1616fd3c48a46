"""Bad input at the edges of the trace readers and the workload API: a clear `InvalidInputError` naming the
input and the fix, never a traceback, a hang or a huge allocation; and every trace read is an input no
output may replace."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pdcore.exceptions import InvalidInputError, TraceFormatError
from pdcore.inputs import forget_inputs
from pdcore.nesting import MAX_NESTING
from pdcore.outputs import write_text
from pdcore.traces import (
    Workload,
    load_azure,
    load_bailian,
    load_mooncake,
    load_trace,
    synthetic_default,
    synthetic_long_answer,
    synthetic_multi_turn,
    turn_buckets,
)

HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
MOON = '{"timestamp": 0, "input_length": 3, "output_length": 2}\n'
DEEP = "[" * 100_000 + "]" * 100_000


def _bailian(**overrides: Any) -> str:
    record = {
        "chat_id": 0,
        "parent_chat_id": -1,
        "timestamp": 0,
        "input_length": 3,
        "output_length": 2,
        "turn": 1,
    }
    record.update(overrides)
    # json.dumps cannot write a 100,000-digit number or raw text, so overrides that are str go in as is
    return (
        "{"
        + ", ".join(f'"{k}": {v if isinstance(v, str) else json.dumps(v)}' for k, v in record.items())
        + "}\n"
    )


def _says(message: str, *parts: str) -> None:
    for part in parts:
        assert part in message, (part, message)


@pytest.fixture(autouse=True)
def _fresh_inputs() -> Any:
    forget_inputs()
    yield
    forget_inputs()


# --- integers from a trace are range-checked before numpy sees them -------------------------------------

MOONCAKE_INTEGERS = [
    (f'"hash_ids": [{2**64}]', "hash_ids", "18,446,744,073,709,551,615"),
    (f'"hash_ids": [0, {10**30}]', "hash_ids", "18,446,744,073,709,551,615"),
    ('"hash_ids": [' + "7" * 5000 + "]", "hash_ids", "digits"),
    ('"input_length": ' + "9" * 5000, "input_length", "digits"),
]


@pytest.mark.parametrize(("field", "key", "hint"), MOONCAKE_INTEGERS)
def test_mooncake_integers_beyond_their_type_are_refused(
    tmp_path: Path, field: str, key: str, hint: str
) -> None:
    line = '{"timestamp": 5, "input_length": 3, "output_length": 2, ' + field + "}"
    if field.startswith('"input_length"'):
        line = '{"timestamp": 5, ' + field + ', "output_length": 2}'
    path = tmp_path / "big.jsonl"
    path.write_text(MOON + line + "\n", encoding="utf-8")
    with pytest.raises(TraceFormatError) as info:
        load_trace(path)
    message = str(info.value)
    _says(message, "big.jsonl, line 2", "fix:", hint)
    if hint != "digits":
        assert repr(key) in message


@pytest.mark.parametrize("stamp", [str(10**400), "1e400", "-1e400"])
def test_a_timestamp_beyond_a_float_is_refused(tmp_path: Path, stamp: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(MOON + '{"timestamp": ' + stamp + ', "input_length": 3, "output_length": 2}\n', "utf-8")
    with pytest.raises(TraceFormatError, match=r"t\.jsonl, line 2, column 'timestamp'.*fix:"):
        load_mooncake(path)
    bailian = tmp_path / "b.jsonl"
    bailian.write_text(_bailian(timestamp=stamp), encoding="utf-8")
    with pytest.raises(TraceFormatError, match=r"b\.jsonl, line 1, column 'timestamp'.*fix:"):
        load_bailian(bailian)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"chat_id": 2**63}, "chat_id"),
        ({"chat_id": 10**30}, "chat_id"),
        ({"parent_chat_id": 2**63}, "parent_chat_id"),
        ({"turn": 2**63}, "turn"),
        ({"hash_ids": [2**70]}, "hash_ids"),
    ],
)
def test_bailian_ids_beyond_their_type_are_refused(
    tmp_path: Path, overrides: dict[str, Any], key: str
) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text(_bailian(**overrides), encoding="utf-8")
    with pytest.raises(TraceFormatError) as info:
        load_bailian(path)
    message = str(info.value)
    _says(message, f"b.jsonl, line 1, column {key!r}", "fix:")


# --- nesting ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("first", [True, False])
def test_a_deeply_nested_line_is_refused(tmp_path: Path, first: bool) -> None:
    line = '{"a": ' + DEEP + ', "timestamp": 5, "input_length": 3, "output_length": 2}\n'
    path = tmp_path / "deep.jsonl"
    path.write_text(line if first else MOON + line, encoding="utf-8")
    with pytest.raises(TraceFormatError) as info:
        load_trace(path)
    message = str(info.value)
    _says(message, f"deep.jsonl, line {1 if first else 2}", f"more than {MAX_NESTING}", "fix:")


def test_nesting_inside_a_string_is_text(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    text = '{"note": "%s", "timestamp": 0, "input_length": 3, "output_length": 2}\n' % ("[" * 1000)
    path.write_text(text, encoding="utf-8")
    assert len(load_trace(path)) == 1


def test_a_bailian_line_nested_deeply_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text(_bailian(hash_ids=DEEP), encoding="utf-8")
    with pytest.raises(TraceFormatError, match=f"line 1.*more than {MAX_NESTING}"):
        load_trace(path)


# --- what the path names -------------------------------------------------------------------------------

LOADERS: list[Callable[[Any], Workload]] = [load_trace, load_azure, load_mooncake, load_bailian]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("loader", LOADERS)
def test_a_fifo_trace_is_named_as_one(tmp_path: Path, loader: Callable[[Any], Workload]) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(TraceFormatError) as info:
        loader(fifo)  # would block in open() if it got that far
    message = str(info.value)
    _says(message, "pipe.csv", "FIFO", "regular file")
    assert "does not exist" not in message


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="needs /dev/null")
def test_a_device_trace_is_named_as_one() -> None:
    with pytest.raises(TraceFormatError, match=r"'/dev/null' is a character device.*fix:.*regular file"):
        load_trace("/dev/null")


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("path", [123, None, 1.5, True, b"t.csv", ["t.csv"]])
def test_a_trace_path_that_is_not_a_path_is_refused(loader: Callable[[Any], Workload], path: object) -> None:
    with pytest.raises(InvalidInputError, match=r"path = .* is not a file path; fix: pass .* str or"):
        loader(path)


# --- every trace read is an input -------------------------------------------------------------------------

TRACE_FILES = {
    "azure.csv": HEADER + "2023-11-16 18:00:00.0000000,5,6\n",
    "mooncake.jsonl": MOON,
    "bailian.jsonl": _bailian(),
}


@pytest.mark.parametrize("name", sorted(TRACE_FILES))
@pytest.mark.parametrize("loader", LOADERS)
def test_a_trace_read_cannot_be_overwritten(
    tmp_path: Path, name: str, loader: Callable[[Any], Workload]
) -> None:
    path = tmp_path / name
    path.write_text(TRACE_FILES[name], encoding="utf-8")
    readers = {"azure.csv": load_azure, "mooncake.jsonl": load_mooncake, "bailian.jsonl": load_bailian}
    if loader is not load_trace and loader is not readers[name]:
        pytest.skip("another format")
    loader(path)
    with pytest.raises(InvalidInputError, match="input"):
        write_text(path, "overwritten\n")
    assert path.read_text(encoding="utf-8") == TRACE_FILES[name]


# --- the synthetic generators ------------------------------------------------------------------------------

GENERATORS = [synthetic_default, synthetic_long_answer, synthetic_multi_turn]
BAD_GENERATOR_ARGUMENTS = [
    ("n_requests", 10**12, "10,000,000"),
    ("n_requests", 10**30, "10,000,000"),
    ("n_requests", 0, "n_requests"),
    ("n_requests", True, "n_requests"),
    ("n_requests", "5", "n_requests"),
    ("n_requests", 5.5, "n_requests"),
    ("n_requests", math.nan, "n_requests"),
    ("seed", -1, "seed"),
    ("seed", 2**64, "seed"),
    ("seed", True, "seed"),
    ("seed", "3", "seed"),
    ("seed", math.inf, "seed"),
    ("rate_rps", True, "rate_rps"),
    ("rate_rps", "3", "rate_rps"),
    ("rate_rps", math.nan, "rate_rps"),
    ("rate_rps", math.inf, "rate_rps"),
    ("rate_rps", -1.0, "rate_rps"),
    ("rate_rps", 10**400, "rate_rps"),
    ("rate_rps", None, "rate_rps"),
]


@pytest.mark.parametrize("generator", GENERATORS)
@pytest.mark.parametrize(("argument", "value", "hint"), BAD_GENERATOR_ARGUMENTS)
def test_generators_refuse_bad_arguments(
    generator: Callable[..., Workload], argument: str, value: object, hint: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        generator(**{argument: value})
    message = str(info.value)
    _says(message, argument, hint, "fix:")


def test_generators_state_their_upper_bound() -> None:
    for generator in GENERATORS:
        assert "10,000,000" in (generator.__doc__ or ""), generator.__name__


# --- Workload and its methods ------------------------------------------------------------------------------

GOOD = {"name": "w", "arrival_s": [0.0, 1.0], "prompt_tokens": [1, 2], "output_tokens": [3, 4], "source": "s"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", 3.5),
        ("name", None),
        ("source", b"x"),
        ("notes", 3.5),
        ("notes", "one note"),
        ("notes", [1]),
        ("arrival_s", None),
        ("arrival_s", "0"),
        ("prompt_tokens", None),
        ("prompt_tokens", [2**64, 1]),
        ("prompt_tokens", [10**30, 1]),
        ("session", 3.5),
        ("session", [0, 10**30]),
        ("turn", True),
        ("parent", "x"),
        ("shared_prefix_tokens", [0.5, 0]),
        ("block_offsets", [0, 1.5, 2]),
        ("block_ids", [1, 2**64]),
        ("block_tokens", True),
        ("block_tokens", 2**70),
    ],
)
def test_workload_refuses_bad_fields(field: str, value: object) -> None:
    fields: dict[str, Any] = dict(GOOD)
    if field.startswith("block_"):
        fields |= {"block_offsets": [0, 1, 2], "block_ids": [1, 2]}
    fields[field] = value
    with pytest.raises(InvalidInputError, match=field):
        Workload(**fields)


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("scaled", (True,)),
        ("scaled", ("2",)),
        ("scaled", (10**400,)),
        ("limit", (True,)),
        ("limit", (1.5,)),
        ("limit", (10**30,)),
        ("fit", (True,)),
        ("fit", (10**30,)),
        ("fit", (100, 3)),
        ("fit", (100, None)),
    ],
)
def test_workload_methods_refuse_bad_arguments(method: str, args: tuple[object, ...]) -> None:
    work = Workload(**GOOD)
    with pytest.raises(InvalidInputError, match="fix"):
        getattr(work, method)(*args)


@pytest.mark.parametrize("turns", [None, "3", [0], [1.5], [True], 10**30, [[1]]])
def test_turn_buckets_refuses_what_is_not_turns(turns: object) -> None:
    with pytest.raises(InvalidInputError, match="turn"):
        turn_buckets(turns)  # type: ignore[arg-type]


def test_turn_buckets_still_buckets() -> None:
    np.testing.assert_array_equal(turn_buckets(np.array([1, 2, 3, 4, 9])), [0, 1, 2, 3, 3])
