"""Numbers are checked at the edge: strict parsing and documented limits for traces, profiles and policies."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pdcore
from pdcore import SpeedController
from pdcore.exceptions import InvalidInputError, ProfileError, TraceFormatError
from pdcore.limits import (
    MAX_K,
    MAX_SIM_TIME_S,
    MAX_TOKENS,
    PROFILE_TIME_BOUNDS,
    check_float,
    check_int,
    parse_bool,
    time_bound,
)
from pdcore.policies import Policy, make_policy
from pdcore.profiles import load_cloud_profile, load_device_profile, network_preset, profile_provenance
from pdcore.profiles.registry import SHIPPED_PREFIX
from pdcore.sim import Scenario, simulate
from pdcore.traces import Workload, azure, load_azure, load_mooncake, synthetic_default

HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("False", False),
        (" yes ", True),
        ("no", False),
        ("1", True),
        ("0", False),
        ("ON", True),
    ],
)
def test_booleans_are_read_strictly(text: str, value: bool) -> None:
    assert parse_bool(text, "x") is value


@pytest.mark.parametrize("text", ["", "flase", "2", "t", "none", "-1"])
def test_anything_else_is_not_a_boolean(text: str) -> None:
    with pytest.raises(InvalidInputError, match=r"x = .* is not a boolean; fix:"):
        parse_bool(text, "x")


def test_range_checks_name_the_input_and_the_limits_doc() -> None:
    assert check_int(5, "--requests", minimum=1, maximum=10) == 5
    with pytest.raises(
        InvalidInputError, match=r"--requests = 99999999999999999999 is out of range.*limits\.md"
    ):
        check_int(99999999999999999999, "--requests", minimum=1, maximum=10)
    with pytest.raises(InvalidInputError, match="not a whole number"):
        check_int(1.5, "--limit", minimum=1, maximum=10)
    with pytest.raises(InvalidInputError, match=r"\(0, 5\]"):
        check_float(0.0, "--rate", minimum=0.0, maximum=5.0, above_minimum=True)
    with pytest.raises(InvalidInputError, match="out of range"):
        check_float(2**70, "--rate", minimum=0.0, maximum=5.0)
    with pytest.raises(InvalidInputError, match="out of range"):
        check_float(float("nan"), "--rate", minimum=0.0, maximum=5.0)


# --- policies ---------------------------------------------------------------------------------------------


def test_policy_booleans_mean_what_they_say() -> None:
    assert make_policy("pd-device:load_adaptive=false").load_adaptive is False  # type: ignore[attr-defined]
    assert make_policy("pd-device:load_adaptive=yes").load_adaptive is True  # type: ignore[attr-defined]
    with pytest.raises(InvalidInputError, match="load_adaptive = 'maybe' is not a boolean"):
        make_policy("pd-device:load_adaptive=maybe")


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("pd-device:k=3:k=4", "sets k twice"),
        ("pd-device:k=99999999999999999999", f"0 to {MAX_K:,}"),
        ("pd-device:k=-1", "0 to"),
        ("pd-device:k=3x", "k = '3x'"),
        ("pd-device:max_k=1e30", "max_k"),
        ("pd-device:min_tpot_s=nan", "not finite"),
        ("pd-device:min_tpot_s=inf", "not finite"),
    ],
)
def test_policy_settings_are_checked(spec: str, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match) as info:
        make_policy(spec)
    assert spec in str(info.value)


# --- traces -----------------------------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_azure_offsets_are_honoured(tmp_path: Path) -> None:
    # 18:00 at +13:00 is 05:00 UTC: the second row is one second later, not 13 hours earlier
    path = _write(
        tmp_path,
        "off.csv",
        HEADER + "2023-11-16 18:00:00.5000000+13:00,5,5\n2023-11-16 05:00:01.5Z,6,6\n"
        "2023-11-16 00:00:02.5-0500,7,7\n",
    )
    np.testing.assert_allclose(load_azure(path).arrival_s, [0.0, 1.0, 2.0])


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ("2023-11-16 18:00:01.5+01:00,5,5", "has a UTC offset but line 2 has none"),
        ("2023-11-16 18:00:01.5000000 garbage,5,5", "is not a timestamp"),
        ("2023-11-16 18:00:01.5000000,5,5,extra", "trailing data"),
        ("2023-11-16 18:00:01.5000000,99999999999999999999,5", "above the limit"),
        ("2023-11-16 18:00:01.5000000,1_000,5", "not a whole number"),
        ("2023-02-30 18:00:01.5000000,5,5", "day is out of range"),
        ("2023-11-16 25:00:01.5000000,5,5", "no such time of day"),
        ("2030-11-16 18:00:01.5000000,5,5", "more than 100,000,000 s"),
    ],
)
def test_azure_bad_rows_name_line_3(tmp_path: Path, row: str, match: str) -> None:
    path = _write(tmp_path, "bad.csv", HEADER + "2023-11-16 18:00:00.0000000,5,5\n" + row + "\n")
    with pytest.raises(TraceFormatError, match=match) as info:
        load_azure(path)
    assert "bad.csv, line 3" in str(info.value)
    assert "fix:" in str(info.value)


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ('{"timestamp": 1, "input_length": 99999999999999999999, "output_length": 1}', "above the limit"),
        ('{"timestamp": 1, "input_length": 5, "input_length": 6, "output_length": 1}', "appears twice"),
        ('{"timestamp": 1e300, "input_length": 5, "output_length": 1}', "beyond the limit"),
        ('{"timestamp": 1, "input_length": 5, "output_length": 1} trailing', "invalid JSON"),
    ],
)
def test_mooncake_bad_lines_name_line_2(tmp_path: Path, line: str, match: str) -> None:
    good = '{"timestamp": 0, "input_length": 5, "output_length": 1}\n'
    path = _write(tmp_path, "bad.jsonl", good + line + "\n")
    with pytest.raises(TraceFormatError, match=match) as info:
        load_mooncake(path)
    assert "bad.jsonl, line 2" in str(info.value)


_START = datetime(2023, 11, 16, 18, 15, 46, tzinfo=timezone.utc)


@settings(max_examples=40, deadline=None)
@given(
    gaps=st.lists(st.integers(0, 10**12), min_size=1, max_size=30),
    digits=st.integers(0, 9),
    tokens=st.lists(st.tuples(st.integers(0, MAX_TOKENS), st.integers(0, 5000)), min_size=30, max_size=30),
)
def test_fast_and_reference_azure_readers_agree(
    tmp_path_factory: pytest.TempPathFactory, gaps: list[int], digits: int, tokens: list[tuple[int, int]]
) -> None:
    """The whole-file reader gives the row-by-row reader's result, bit for bit, on every valid trace."""
    rows = []
    total_us = 0
    for gap, (prompt, output) in zip(gaps, tokens, strict=False):
        total_us += gap // 1000
        stamp = _START + timedelta(microseconds=total_us)
        text = stamp.strftime("%Y-%m-%d %H:%M:%S")
        if digits:
            text += "." + f"{stamp.microsecond:06d}{'000'}"[:digits]
        rows.append(f"{text},{prompt},{output}")
    path = _write(tmp_path_factory.mktemp("agree"), "t.csv", HEADER + "\n".join(rows) + "\n")
    fast = load_azure(path)
    body = path.read_text(encoding="utf-8").partition("\n")[2]
    assert azure._azure_fast(list(HEADER.strip().split(",")), body) is not None
    original = azure._azure_fast
    try:
        azure._azure_fast = lambda columns, body: None  # type: ignore[assignment]
        reference = load_azure(path)
    finally:
        azure._azure_fast = original
    assert fast == reference


# --- workloads --------------------------------------------------------------------------------------------


def _workload(prompts: list[int], outputs: list[int]) -> Workload:
    return Workload(
        name="w",
        arrival_s=np.arange(len(prompts), dtype=float),
        prompt_tokens=prompts,
        output_tokens=outputs,
        source="test",
    )


def test_oversize_requests_fail_by_default_naming_the_first_and_the_count() -> None:
    work = _workload([10, 500, 20, 900], [5, 5, 5, 5])
    assert work.fit(1000) is work
    with pytest.raises(InvalidInputError, match=r"2 of 4 request\(s\).*first is request 2.*--oversize skip"):
        work.fit(100, what="the KV cache")
    skipped = work.fit(100, "skip")
    assert list(skipped.prompt_tokens) == [10, 20]
    assert "skipped" in skipped.notes[-1]
    clipped = work.fit(100, "clip")
    assert (clipped.prompt_tokens + clipped.output_tokens <= 100).all()
    assert len(clipped) == 4
    with pytest.raises(InvalidInputError, match="--oversize 'trim' is unknown"):
        work.fit(100, "trim")


def test_token_counts_beyond_the_limit_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="above the limit"):
        _workload([MAX_TOKENS + 1], [1])
    with pytest.raises(InvalidInputError, match="above the limit"):
        Workload(name="w", arrival_s=[0.0], prompt_tokens=[1e30], output_tokens=[1], source="test")


def test_rate_of_one_request_is_undefined() -> None:
    assert _workload([5], [5]).summary()["rate_rps"] is None


def test_rate_scale_that_would_stretch_the_trace_beyond_the_limit_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="--rate-scale"):
        _workload([5, 5], [5, 5]).scaled(1e-12)


# --- profiles ---------------------------------------------------------------------------------------------


def _cloud_text() -> str:
    return (ROOT / "python/pdcore/profiles/data/cloud/llama3-8b-a100.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ("kv_cache_tokens = ", "kv_cache_tokens = 9223372036854775807 #", "above the limit"),
        ("base_s = ", "base_s = 1e9 #", "above the limit"),
    ],
)
def test_profile_values_beyond_the_limits_are_refused(tmp_path: Path, old: str, new: str, match: str) -> None:
    text = _cloud_text()
    assert old in text
    path = _write(tmp_path, "cloud.toml", text.replace(old, new, 1))
    with pytest.raises(ProfileError, match=match) as info:
        load_cloud_profile(path)
    assert "cloud.toml" in str(info.value)


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("write_token_s = ", "write_token_s = 3600 #", "[kv_transfer] write_token_s"),
        ("base_s = ", "base_s = 30 #", "[iteration] base_s"),
        ("prefill_token_s = ", "prefill_token_s = 20 #", "[iteration] prefill_token_s"),
        ("decode_context_s = ", "decode_context_s = 0.5 #", "[iteration] decode_context_s"),
        (
            "decode_context_s = ",
            "prefill_knee_tokens = 256\nprefill_knee_token_s = 20\ndecode_context_s = ",
            "[iteration] prefill_knee_token_s",
        ),
    ],
)
def test_profile_times_beyond_what_hardware_takes_are_refused(
    tmp_path: Path, old: str, new: str, key: str
) -> None:
    """An hour to write one token of KV cache is within the hour-per-value limit but no hardware takes it: it
    is refused with its key and bound, not priced (it saturated the simulator's clock before)."""
    text = _cloud_text()
    assert old in text
    path = _write(tmp_path, "cloud.toml", text.replace(old, new, 1))
    with pytest.raises(ProfileError, match="more than any hardware takes") as info:
        load_cloud_profile(path)
    assert f"'{key}'" in str(info.value)
    assert f"above {time_bound(key):g} s" in str(info.value)


def test_device_profile_times_beyond_what_hardware_takes_are_refused(tmp_path: Path) -> None:
    text = (ROOT / "python/pdcore/profiles/data/device/llama32-3b-w4a16-8elite-genie.toml").read_text(
        encoding="utf-8"
    )
    old = "tpot_s = [0.042604, 0.042604]"
    assert old in text
    path = _write(tmp_path, "device.toml", text.replace(old, "tpot_s = [0.042604, 60.0]", 1))
    with pytest.raises(ProfileError, match=r"\[decode\] tpot_s\[1\] = 60 s is above 10 s") as info:
        load_device_profile(path)
    assert "device.toml" in str(info.value)


def test_every_profile_time_has_a_documented_bound() -> None:
    doc = pdcore.limits.__doc__ or ""
    assert MAX_SIM_TIME_S == 1e9
    for key, max_s, why in PROFILE_TIME_BOUNDS:
        assert 0.0 < max_s <= 10.0
        assert why
        assert f"``{key}``" in doc
    with pytest.raises(KeyError):
        time_bound("[iteration] nonsense_s")


def test_the_knee_has_its_own_bound() -> None:
    """The knee's price is bounded under its own key and reason, not under prefill_token_s's."""
    bounds = {key: (max_s, why) for key, max_s, why in PROFILE_TIME_BOUNDS}
    knee = bounds["[iteration] prefill_knee_token_s"]
    assert knee[0] == time_bound("[iteration] prefill_knee_token_s") == 10.0
    assert knee[1] != bounds["[iteration] prefill_token_s"][1]
    assert "knee" in knee[1]


def test_an_edited_profile_is_recorded_by_path_and_digest(tmp_path: Path) -> None:
    shipped = profile_provenance(load_cloud_profile("llama3-8b-a100"))
    assert shipped["shipped"] is True
    assert shipped["name"] == "llama3-8b-a100"
    assert shipped["path"].startswith(SHIPPED_PREFIX)
    edited = _write(tmp_path, "mine.toml", _cloud_text().replace("base_s = ", "base_s = 0.5 #", 1))
    scenario = Scenario(
        cloud=load_cloud_profile(edited),
        device=load_device_profile("llama32-3b-w4a16-8elite-genie"),
        network=network_preset("wifi"),
    )
    config = scenario.describe()
    assert config["cloud_profile"] == str(edited.resolve())
    recorded = config["profiles"]["cloud"]
    assert recorded["shipped"] is False
    assert recorded["path"] == str(edited.resolve())
    assert len(recorded["sha256"]) == 64
    assert recorded["sha256"] != shipped["sha256"]
    assert config["profiles"]["device"]["shipped"] is True


# --- the Python API ---------------------------------------------------------------------------------------


def test_api_misuse_is_an_invalid_input_naming_the_argument() -> None:
    with pytest.raises(InvalidInputError, match="expected_tokens = -1"):
        SpeedController(min_tpot_s=0.0, max_tpot_s=0.1, expected_tokens=-1)
    for bad, match in (
        (np.array([1 + 1j]), "dtype complex"),
        (np.ma.array([1.0], mask=[True]), "masked array"),
        (np.float64(1.0), "shape"),
        ([True, False], "dtype bool"),
    ):
        with pytest.raises(InvalidInputError, match=match):
            pdcore.pace(bad, handoff_at=0.0, min_tpot_s=0.0, max_tpot_s=0.1)

    class Forgetful(Policy):
        name = "forgetful"

        def plan(self, req: object, load: object) -> None:  # type: ignore[override]
            return None

    work = synthetic_default(seed=0, n_requests=5)
    environment = {
        "cloud": load_cloud_profile("llama3-8b-a100"),
        "device": load_device_profile("llama32-3b-w4a16-8elite-genie"),
        "network": network_preset("wifi"),
    }
    with pytest.raises(InvalidInputError, match=r"Forgetful\.plan\(\) returned None"):
        simulate(work, Forgetful(), **environment)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"cloud = 'llama3-8b-a100' is a str.*load_cloud_profile"):
        simulate(work, "pd-device", **(environment | {"cloud": "llama3-8b-a100"}))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="--decode-replicas = 1000000000 is out of range"):
        simulate(work, "pd-device", decode_replicas=1_000_000_000, **environment)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="policy = 3"):
        simulate(work, 3, **environment)  # type: ignore[arg-type]
