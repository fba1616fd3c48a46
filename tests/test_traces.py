"""Tests for pdcore.traces: the Workload record, the Azure and Mooncake loaders, the synthetic default."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pdcore.exceptions import InvalidInputError, TraceFormatError
from pdcore.traces import (
    OUTPUT_LOGNORMAL,
    PROMPT_LOGNORMAL,
    TARGET_STATS,
    Workload,
    load_azure,
    load_mooncake,
    load_trace,
    synthetic_default,
)
from traces_at_hand import needs_trace, real_trace

AZURE_CONV = real_trace("azure-2023-conv", "azure_2023_conv.csv")
AZURE_CODE = real_trace("azure-2023-code", "azure_2023_code.csv")
MOONCAKE = real_trace("mooncake-conversation", "mooncake_conversation.jsonl")

HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"


def _workload(arrivals: list[float], prompts: list[int], outputs: list[int]) -> Workload:
    return Workload(
        name="w",
        arrival_s=np.asarray(arrivals),
        prompt_tokens=np.asarray(prompts),
        output_tokens=np.asarray(outputs),
        source="test",
    )


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- Workload -------------------------------------------------------------------------------------------


def test_workload_coerces_dtypes_and_freezes_arrays() -> None:
    work = Workload(
        name="w",
        arrival_s=[0, 1, 2],  # type: ignore[arg-type]
        prompt_tokens=[10.0, 20.0, 30.0],  # type: ignore[arg-type]
        output_tokens=np.array([1, 2, 3], dtype=np.int32),
        source="test",
    )
    assert work.arrival_s.dtype == np.float64
    assert work.prompt_tokens.dtype == np.int64
    assert work.output_tokens.dtype == np.int64
    assert len(work) == 3
    with pytest.raises(ValueError, match="read-only"):
        work.arrival_s[0] = 5.0


@pytest.mark.parametrize(
    ("arrivals", "prompts", "outputs", "match"),
    [
        ([0.0, 1.0], [1], [1, 1], "lengths differ"),
        ([0.0, float("nan")], [1, 1], [1, 1], "finite"),
        ([0.0, 2.0, 1.0], [1, 1, 1], [1, 1, 1], r"arrival_s\[2\].*earlier.*sort"),
        ([1.0, 2.0], [1, 1], [1, 1], r"arrival_s\[0\] = 1.0.*subtract"),
        ([0.0, 1.0], [1, 0], [1, 1], r"prompt_tokens\[1\] = 0 is below 1"),
        ([0.0, 1.0], [1, 1], [-3, 1], r"output_tokens\[0\] = -3"),
        ([0.0, 1.0], [1.5, 1], [1, 1], "not a whole number"),
        ([], [], [], "no requests"),
    ],
)
def test_workload_rejects_invalid_columns(
    arrivals: list[float], prompts: list[float], outputs: list[int], match: str
) -> None:
    with pytest.raises(InvalidInputError, match=match):
        Workload(
            name="w",
            arrival_s=np.asarray(arrivals, dtype=np.float64),
            prompt_tokens=np.asarray(prompts),
            output_tokens=np.asarray(outputs),
            source="test",
        )


def test_workload_equality_is_by_value() -> None:
    first = _workload([0.0, 1.0], [5, 6], [7, 8])
    second = _workload([0.0, 1.0], [5, 6], [7, 8])
    assert first == second
    assert first != _workload([0.0, 1.5], [5, 6], [7, 8])
    assert first != "not a workload"


def test_scaled_divides_arrivals() -> None:
    work = _workload([0.0, 1.0, 4.0], [1, 2, 3], [4, 5, 6])
    faster = work.scaled(2.0)
    np.testing.assert_allclose(faster.arrival_s, [0.0, 0.5, 2.0])
    np.testing.assert_array_equal(faster.prompt_tokens, work.prompt_tokens)
    assert "rate scale 2" in faster.notes[-1]
    assert work.scaled(1.0) is work


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf"), "fast"])
def test_scaled_rejects_bad_rate_scale(scale: object) -> None:
    work = _workload([0.0, 1.0], [1, 2], [3, 4])
    with pytest.raises(InvalidInputError, match="--rate-scale"):
        work.scaled(scale)  # type: ignore[arg-type]


def test_limit_keeps_prefix() -> None:
    work = _workload([0.0, 1.0, 2.0, 3.0], [1, 2, 3, 4], [5, 6, 7, 8])
    head = work.limit(2)
    assert len(head) == 2
    np.testing.assert_array_equal(head.prompt_tokens, [1, 2])
    assert work.limit(None) is work
    assert work.limit(10) is work
    with pytest.raises(InvalidInputError, match="--limit = 0 is out of range; fix"):
        work.limit(0)
    with pytest.raises(InvalidInputError, match="whole number"):
        work.limit(1.5)  # type: ignore[arg-type]


def test_summary_statistics() -> None:
    work = _workload([0.0, 1.0, 2.0, 4.0], [100, 200, 300, 400], [10, 20, 30, 40])
    stats = work.summary()
    assert stats["count"] == 4
    assert stats["duration_s"] == 4.0
    assert stats["rate_rps"] == 1.0
    assert stats["prompt_p50"] == 250.0
    assert stats["output_mean"] == 25.0
    assert set(stats) == {
        "count",
        "duration_s",
        "rate_rps",
        "prompt_p50",
        "prompt_p90",
        "prompt_p99",
        "prompt_mean",
        "output_p50",
        "output_p90",
        "output_p99",
        "output_mean",
    }
    assert _workload([0.0], [1], [1]).summary()["rate_rps"] is None


@given(
    gaps=st.lists(st.floats(min_value=0.0, max_value=100.0), min_size=0, max_size=30),
    scale=st.floats(min_value=1e-3, max_value=1e3),
)
def test_scaled_round_trip(gaps: list[float], scale: float) -> None:
    arrivals = np.concatenate(([0.0], np.cumsum(gaps)))
    ones = np.ones(len(arrivals), dtype=np.int64)
    work = Workload("w", arrivals, ones, ones, "test")
    back = work.scaled(scale).scaled(1.0 / scale)
    np.testing.assert_allclose(back.arrival_s, work.arrival_s, rtol=1e-9, atol=1e-12)
    assert np.all(np.diff(work.scaled(scale).arrival_s) >= 0)


# --- Azure loader ---------------------------------------------------------------------------------------


def test_load_azure_parses_timestamps_and_tokens(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "t.csv",
        HEADER
        + "2023-11-16 18:15:46.6805900,374,44\n"
        + "2023-11-16 18:15:50.9951690,396,109\n"
        + "2023-11-16 18:15:50.9951690,10,1\n"
        + "\n",
    )
    work = load_azure(path)
    assert work.name == "t"
    assert work.source == str(path)
    np.testing.assert_allclose(work.arrival_s, [0.0, 4.314579, 4.314579])
    np.testing.assert_array_equal(work.prompt_tokens, [374, 396, 10])
    np.testing.assert_array_equal(work.output_tokens, [44, 109, 1])
    assert work.notes == ()


def test_load_azure_uses_header_order_and_ignores_extra_columns(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "reordered.csv",
        "GeneratedTokens,Extra,TIMESTAMP,ContextTokens\n"
        "5,x,2023-11-16 18:00:00.0000000,7\n"
        "6,y,2023-11-16 18:00:01.5000000,8\n",
    )
    work = load_azure(path)
    np.testing.assert_allclose(work.arrival_s, [0.0, 1.5])
    np.testing.assert_array_equal(work.prompt_tokens, [7, 8])
    np.testing.assert_array_equal(work.output_tokens, [5, 6])


def test_load_azure_clamps_zero_tokens_and_records_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(
        tmp_path,
        "zeros.csv",
        HEADER
        + "2023-11-16 18:00:00.0000000,0,5\n"
        + "2023-11-16 18:00:01.0000000,9,0\n"
        + "2023-11-16 18:00:02.0000000,9,0\n",
    )
    with caplog.at_level(logging.WARNING, logger="pdcore.traces"):
        work = load_azure(path)
    np.testing.assert_array_equal(work.prompt_tokens, [1, 9, 9])
    np.testing.assert_array_equal(work.output_tokens, [5, 1, 1])
    assert len(work) == 3
    assert any("1 row(s) had ContextTokens == 0" in note and "line 2" in note for note in work.notes)
    assert any("2 row(s) had GeneratedTokens == 0" in note and "line 3" in note for note in work.notes)
    assert "clamped to 1" in caplog.text


@pytest.mark.parametrize(
    ("body", "line", "column", "hint"),
    [
        ("2023-11-16 18:00:00.0000000,5,5\n2023-11-16 18:00:01.0000000,7\n", 3, "GeneratedTokens", "value"),
        (
            "2023-11-16 18:00:00.0000000,5,5\n2023-11-16 18:00:01.0000000,abc,5\n",
            3,
            "ContextTokens",
            "integer",
        ),
        (
            "2023-11-16 18:00:00.0000000,5,5\n2023-11-16 18:00:01.0000000,5,2.5\n",
            3,
            "GeneratedTokens",
            "integer",
        ),
        ("2023-11-16 18:00:00.0000000,-4,5\n", 2, "ContextTokens", "0 or more"),
        ("2023-11-16 18:00:00.0000000,5,5\n2023-11-16 17:59:59.0000000,5,5\n", 3, "TIMESTAMP", "sort"),
        ("2023-11-16 18:00:00.0000000,5,5\nyesterday,5,5\n", 3, "TIMESTAMP", "YYYY-MM-DD"),
    ],
)
def test_load_azure_malformed_rows(tmp_path: Path, body: str, line: int, column: str, hint: str) -> None:
    path = _write(tmp_path, "bad_trace.csv", HEADER + body)
    with pytest.raises(TraceFormatError) as info:
        load_azure(path)
    message = str(info.value)
    assert "bad_trace.csv" in message
    assert f"line {line}" in message
    assert repr(column) in message
    assert "fix:" in message
    assert hint in message


def test_load_azure_missing_header_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "noheader.csv", "TIMESTAMP,ContextTokens\n2023-11-16 18:00:00.0000000,5\n")
    with pytest.raises(TraceFormatError, match=r"noheader\.csv, line 1, column 'GeneratedTokens'.*fix:"):
        load_azure(path)


@pytest.mark.parametrize(("text", "match"), [("", "empty"), (HEADER, "no data rows")])
def test_load_azure_empty(tmp_path: Path, text: str, match: str) -> None:
    path = _write(tmp_path, "empty.csv", text)
    with pytest.raises(TraceFormatError, match=match):
        load_azure(path)


def test_trace_errors_are_invalid_input_and_value_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, "neg.csv", HEADER + "2023-11-16 18:00:00.0000000,-1,5\n")
    with pytest.raises(InvalidInputError):
        load_azure(path)
    with pytest.raises(ValueError, match="negative"):
        load_azure(path)


# --- Mooncake loader ------------------------------------------------------------------------------------


def _jsonl(records: list[object]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def test_load_mooncake_parses_lines(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "m.jsonl",
        _jsonl(
            [
                {"timestamp": 1000, "input_length": 600, "output_length": 20, "hash_ids": [0, 1]},
                {"timestamp": 1000, "input_length": 30, "output_length": 2, "hash_ids": [2]},
                {"timestamp": 3500, "input_length": 7.0, "output_length": 0},
            ]
        )
        + "\n",
    )
    work = load_mooncake(path)
    np.testing.assert_allclose(work.arrival_s, [0.0, 0.0, 2.5])
    np.testing.assert_array_equal(work.prompt_tokens, [600, 30, 7])
    np.testing.assert_array_equal(work.output_tokens, [20, 2, 1])
    assert any("output_length == 0" in note and "line 3" in note for note in work.notes)


@pytest.mark.parametrize(
    ("lines", "line", "column", "hint"),
    [
        (
            ['{"timestamp": 0, "input_length": 5, "output_length": 5}', "{not json"],
            2,
            "char 2",
            "JSON object",
        ),
        (['{"timestamp": 0, "input_length": 5}'], 1, "output_length", "needs"),
        (['{"timestamp": 0, "input_length": -5, "output_length": 5}'], 1, "input_length", "0 or more"),
        (['{"timestamp": 0, "input_length": "5", "output_length": 5}'], 1, "input_length", "integer"),
        (['{"timestamp": 0, "input_length": 5.5, "output_length": 5}'], 1, "input_length", "integer"),
        (
            [
                '{"timestamp": 10, "input_length": 5, "output_length": 5}',
                '{"timestamp": 9, "input_length": 5, "output_length": 5}',
            ],
            2,
            "timestamp",
            "sort",
        ),
        (['{"timestamp": -1, "input_length": 5, "output_length": 5}'], 1, "timestamp", "negative"),
        (
            ['{"timestamp": 0, "input_length": 5, "output_length": 5, "hash_ids": "x"}'],
            1,
            "hash_ids",
            "[0, 1",
        ),
        (["[1, 2]", "3"], 1, "-", "JSON"),
        (['"just a string"'], 1, "-", "request"),
    ],
)
def test_load_mooncake_malformed_lines(
    tmp_path: Path, lines: list[str], line: int, column: str, hint: str
) -> None:
    path = _write(tmp_path, "bad_moon.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(TraceFormatError) as info:
        load_mooncake(path)
    message = str(info.value)
    assert "bad_moon.jsonl" in message
    assert f"line {line}" in message
    assert "fix:" in message
    assert hint in message
    if column != "-":
        assert repr(column) in message


def test_load_mooncake_rejects_json_array(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "array.json", json.dumps([{"timestamp": 0, "input_length": 1, "output_length": 1}])
    )
    with pytest.raises(TraceFormatError, match=r"array\.json, line 1: the file is a JSON array; fix: .*jq"):
        load_trace(path)


def test_load_mooncake_empty(tmp_path: Path) -> None:
    with pytest.raises(TraceFormatError, match="no request lines"):
        load_mooncake(_write(tmp_path, "empty.jsonl", "\n\n"))


# --- dispatch -------------------------------------------------------------------------------------------


def test_load_trace_dispatches_on_suffix(tmp_path: Path) -> None:
    csv_path = _write(tmp_path, "a.CSV", HEADER + "2023-11-16 18:00:00.0000000,5,6\n")
    assert load_trace(csv_path).prompt_tokens.tolist() == [5]
    record = {"timestamp": 0, "input_length": 3, "output_length": 4}
    for suffix in (".jsonl", ".json"):
        path = _write(tmp_path, f"b{suffix}", _jsonl([record]))
        assert load_trace(path).output_tokens.tolist() == [4]


def test_load_trace_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "trace.parquet", "x")
    with pytest.raises(TraceFormatError, match=r"suffix '\.parquet'.*fix: use \.csv"):
        load_trace(path)
    with pytest.raises(TraceFormatError, match=r"nope\.csv.*does not exist.*fix"):
        load_trace(tmp_path / "nope.csv")
    with pytest.raises(TraceFormatError, match="is a directory"):
        load_trace(tmp_path)


# --- real traces (beside the checkout or in the trace cache, never in the repository) ----------------------


@needs_trace("azure-2023-conv", "azure_2023_conv.csv")
def test_real_azure_conversation_trace() -> None:
    assert AZURE_CONV is not None
    start = time.perf_counter()
    work = load_trace(AZURE_CONV)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"loading took {elapsed:.2f} s"
    assert len(work) == 19_366
    assert work.notes == ()
    stats = work.summary()
    assert stats["duration_s"] == pytest.approx(3502, abs=1)
    assert stats["rate_rps"] == pytest.approx(5.5, abs=0.05)
    assert stats["prompt_p50"] == pytest.approx(1020, abs=1)
    assert stats["prompt_p90"] == pytest.approx(2734, abs=1)
    assert stats["prompt_p99"] == pytest.approx(4142, abs=1)
    assert stats["output_p50"] == pytest.approx(129, abs=1)
    assert stats["output_p90"] == pytest.approx(424, abs=1)
    assert stats["output_p99"] == pytest.approx(601, abs=1)
    assert stats["output_mean"] == pytest.approx(211, abs=0.5)


@needs_trace("azure-2023-code", "azure_2023_code.csv")
def test_real_azure_code_trace() -> None:
    assert AZURE_CODE is not None
    stats = load_trace(AZURE_CODE).summary()
    assert stats["count"] == 8_819
    assert stats["duration_s"] == pytest.approx(3436, abs=1)
    assert stats["prompt_p50"] == pytest.approx(1469, abs=1)
    assert stats["output_p50"] == pytest.approx(13, abs=1)


@needs_trace("mooncake-conversation", "mooncake_conversation.jsonl")
def test_real_mooncake_trace() -> None:
    assert MOONCAKE is not None
    stats = load_trace(MOONCAKE).summary()
    assert stats["count"] == 12_031
    assert stats["duration_s"] == pytest.approx(3537, abs=1)
    assert stats["prompt_p50"] == pytest.approx(6909, abs=1)
    assert stats["prompt_p90"] == pytest.approx(27367, abs=1)
    assert stats["output_mean"] == pytest.approx(343, abs=1)


# --- synthetic default ----------------------------------------------------------------------------------


def test_synthetic_is_deterministic_per_seed() -> None:
    assert synthetic_default(seed=3, n_requests=500) == synthetic_default(seed=3, n_requests=500)
    assert synthetic_default(seed=3, n_requests=500) != synthetic_default(seed=4, n_requests=500)
    work = synthetic_default(seed=7, n_requests=10, rate_rps=2.0)
    assert work.source == "synthetic:seed=7,n_requests=10,rate_rps=2"
    assert work.arrival_s[0] == 0.0


def _relative_errors(work: Workload) -> dict[str, float]:
    stats = work.summary()
    return {key: stats[key] / target - 1.0 for key, target in TARGET_STATS.items()}


def test_synthetic_default_matches_azure_statistics() -> None:
    errors = _relative_errors(synthetic_default())
    assert len(synthetic_default()) == 2000
    for key, error in errors.items():
        assert abs(error) <= 0.15, f"{key} off by {error:+.1%}"


def test_synthetic_large_sample_matches_fit() -> None:
    errors = _relative_errors(synthetic_default(seed=1, n_requests=100_000))
    for key, error in errors.items():
        assert abs(error) <= 0.10, f"{key} off by {error:+.1%}"
    # The prompt fit is exact; only sampling noise remains.
    for key in ("prompt_p50", "prompt_p90", "prompt_p99"):
        assert abs(errors[key]) <= 0.02, f"{key} off by {errors[key]:+.1%}"


@given(
    seed=st.integers(min_value=0, max_value=2**32),
    n=st.integers(min_value=1, max_value=300),
    rate=st.floats(min_value=0.01, max_value=1000.0),
)
def test_synthetic_invariants(seed: int, n: int, rate: float) -> None:
    work = synthetic_default(seed=seed, n_requests=n, rate_rps=rate)
    assert len(work) == n
    assert work.arrival_s[0] == 0.0
    assert np.all(np.diff(work.arrival_s) >= 0)
    assert work.prompt_tokens.min() >= 1
    assert work.prompt_tokens.max() <= round(PROMPT_LOGNORMAL[2])
    assert work.output_tokens.min() >= 1
    assert work.output_tokens.max() <= round(OUTPUT_LOGNORMAL[2])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seed": -1}, "seed = -1"),
        ({"n_requests": 0}, "n_requests = 0"),
        ({"rate_rps": 0.0}, "rate_rps = 0.0"),
        ({"rate_rps": float("nan")}, "rate_rps = nan"),
    ],
)
def test_synthetic_rejects_bad_arguments(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        synthetic_default(**kwargs)  # type: ignore[arg-type]
