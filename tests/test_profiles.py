"""Tests for pdcore.profiles: device curves, the cloud iteration model, networks and the registry."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pdcore.cli.options import profile_path
from pdcore.exceptions import InvalidInputError, ProfileError
from pdcore.inputs import input_at
from pdcore.profiles import (
    NETWORK_PRESETS,
    CloudProfile,
    DeviceProfile,
    NetworkProfile,
    list_cloud_profiles,
    list_device_profiles,
    list_network_presets,
    load_cloud_profile,
    load_device_profile,
    network_preset,
)
from pdcore.profiles.registry import is_profile_path

DATA = Path(__file__).resolve().parents[1] / "python" / "pdcore" / "profiles" / "data"

DEVICE_TOML = """
name = "test-device"
description = "d"
hardware = "h"
model = "m"
engine = "e"
kv_bytes_per_token = 4096

[prefill]
prompt_tokens = [100, 200]
seconds = [1.0, 3.0]

[decode]
context_tokens = [100, 200]
tpot_s = [0.01, 0.02]

[source]
citation = "c"
notes = "n"
"""

CLOUD_TOML = """
name = "test-cloud"
description = "d"
model = "m"
gpu = "g"
tensor_parallel = 1

[iteration]
base_s = 0.01
prefill_token_s = 1e-4
prefill_attn_s = 1e-8
decode_seq_s = 1e-5
decode_context_s = 1e-7

[limits]
max_batch_size = 8
max_tokens_per_iteration = 512
kv_cache_tokens = 10000
gpus_per_replica = 1

[kv_transfer]
bytes_per_token = 1000

[source]
citation = "c"
notes = "n"
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _device(tmp_path: Path, text: str = DEVICE_TOML) -> DeviceProfile:
    return load_device_profile(_write(tmp_path, "dev.toml", text))


# --- shipped profiles -----------------------------------------------------------------------------------


def test_shipped_profiles_are_listed() -> None:
    devices = list_device_profiles()
    assert {"smollm2-135m-q4-cpu2", "smollm2-135m-q4-cpu1"} <= set(devices)
    assert len(devices) >= 4
    assert devices == sorted(devices)
    assert {"llama3-8b-a100"} <= set(list_cloud_profiles())
    assert set(list_network_presets()) == {"lan", "wifi", "5g", "lte"}


@pytest.mark.parametrize("name", list_device_profiles())
def test_every_device_profile_loads_and_is_monotone(name: str) -> None:
    profile = load_device_profile(name)
    assert profile.name == name
    assert (DATA / "device" / f"{name}.toml").is_file()
    assert profile.citation.strip()
    assert profile.notes.strip()
    grid = np.arange(0, 16_385, 64)
    prefill = profile.prefill_s(grid)
    assert prefill[0] == 0.0
    assert np.all(np.diff(prefill) >= 0)
    tpot = profile.decode_tpot_s(grid)
    assert np.all(tpot > 0)
    assert np.all(np.isfinite(tpot))
    x, y = profile.prefill_points()
    assert x.dtype == np.float64
    assert y.dtype == np.float64
    np.testing.assert_allclose(profile.prefill_s(x), y)
    dx, dy = profile.decode_points()
    np.testing.assert_allclose(profile.decode_tpot_s(dx), dy)


@pytest.mark.parametrize("name", list_cloud_profiles())
def test_every_cloud_profile_loads(name: str) -> None:
    profile = load_cloud_profile(name)
    assert profile.name == name
    assert (DATA / "cloud" / f"{name}.toml").is_file()
    assert profile.citation.strip()
    assert profile.notes.strip()
    assert profile.gpus_per_replica >= profile.tensor_parallel
    assert profile.kv_cache_tokens >= profile.max_tokens_per_iteration
    assert set(profile.coefficients()) == {
        "base_s",
        "prefill_token_s",
        "prefill_attn_s",
        "decode_seq_s",
        "decode_context_s",
    }


def test_smollm2_two_thread_profile_matches_measurements() -> None:
    profile = load_device_profile("smollm2-135m-q4-cpu2")
    np.testing.assert_allclose(profile.prefill_s(np.array([128, 512, 1024, 2048])), [0.56, 2.7, 6.2, 13.4])
    assert profile.decode_tpot_s(128) == pytest.approx(0.013)
    assert profile.decode_tpot_s(2048) == pytest.approx(0.024)
    one_thread = load_device_profile("smollm2-135m-q4-cpu1")
    assert one_thread.prefill_s(2048) == pytest.approx(25.0)
    assert 0.019 <= one_thread.decode_tpot_s(512) <= 0.040


def test_published_phone_profiles_reproduce_their_sources() -> None:
    hexagon = load_device_profile("llama32-1b-q4-8elite-hexagon")
    assert 128 / hexagon.prefill_s(128) == pytest.approx(169.42, rel=1e-3)
    assert 1 / hexagon.decode_tpot_s(32) == pytest.approx(51.54, rel=1e-3)
    genie = load_device_profile("llama32-3b-w4a16-8elite-genie")
    assert genie.prefill_s(128) == pytest.approx(0.088195, rel=1e-3)
    assert 1 / genie.decode_tpot_s(1000) == pytest.approx(23.4718, rel=1e-4)
    laptop = load_device_profile("llama32-3b-w4a16-xelite-genie")
    assert laptop.prefill_s(128) == pytest.approx(0.125936, rel=1e-3)
    # Growth with prompt length is at least linear: the attention term only adds time.
    for profile in (hexagon, genie, laptop):
        assert profile.prefill_s(4096) >= 32 * profile.prefill_s(128)


# --- device interpolation -------------------------------------------------------------------------------


def test_prefill_interpolation_and_extrapolation(tmp_path: Path) -> None:
    profile = _device(tmp_path)
    assert profile.prefill_s(0) == 0.0
    assert profile.prefill_s(50) == pytest.approx(0.5)  # from the origin to the first point
    assert profile.prefill_s(150) == pytest.approx(2.0)
    assert profile.prefill_s(300) == pytest.approx(5.0)  # last slope, 0.02 s/token
    values = profile.prefill_s(np.array([[50, 150], [200, 300]]))
    assert values.shape == (2, 2)
    np.testing.assert_allclose(values, [[0.5, 2.0], [3.0, 5.0]])
    assert isinstance(profile.prefill_s(150), float)
    assert isinstance(profile.prefill_s(np.int64(150)), float)
    np.testing.assert_allclose(profile.prefill_s([50.0, 150.0]), [0.5, 2.0])


def test_append_is_a_difference_but_at_least_a_decode_step(tmp_path: Path) -> None:
    profile = _device(tmp_path)
    assert profile.append_s(100, 100) == pytest.approx(2.0)
    assert profile.append_s(0, 50) == pytest.approx(0.5)
    assert profile.append_s(150, 0) == 0.0
    assert profile.append_s(150, 0.1) == pytest.approx(0.015)  # one forward pass at least
    np.testing.assert_allclose(profile.append_s(np.array([0, 100, 200]), 100), [1.0, 2.0, 2.0])
    np.testing.assert_allclose(profile.append_s(100, np.array([50, 100])), [1.0, 2.0])


def test_decode_interpolation_and_extrapolation(tmp_path: Path) -> None:
    profile = _device(tmp_path)
    assert profile.decode_tpot_s(0) == pytest.approx(0.01)  # below the first point: flat
    assert profile.decode_tpot_s(150) == pytest.approx(0.015)
    assert profile.decode_tpot_s(300) == pytest.approx(0.03)  # last slope
    single = _device(
        tmp_path,
        DEVICE_TOML.replace("context_tokens = [100, 200]", "context_tokens = [0]").replace(
            "tpot_s = [0.01, 0.02]", "tpot_s = [0.05]"
        ),
    )
    np.testing.assert_allclose(single.decode_tpot_s(np.array([0, 10_000])), [0.05, 0.05])
    falling = _device(tmp_path, DEVICE_TOML.replace("tpot_s = [0.01, 0.02]", "tpot_s = [0.02, 0.01]"))
    assert falling.decode_tpot_s(10_000) == pytest.approx(0.01)


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf")])
def test_device_rejects_bad_token_counts(tmp_path: Path, bad: float) -> None:
    profile = _device(tmp_path)
    with pytest.raises(InvalidInputError, match="prompt_tokens"):
        profile.prefill_s(bad)
    with pytest.raises(InvalidInputError, match="context_tokens"):
        profile.decode_tpot_s(np.array([1.0, bad]))
    with pytest.raises(InvalidInputError, match="new_tokens"):
        profile.append_s(10, bad)


@given(
    name=st.sampled_from(list_device_profiles()),
    context=st.floats(min_value=0, max_value=50_000),
    new=st.floats(min_value=0, max_value=50_000),
)
def test_device_curves_are_monotone(name: str, context: float, new: float) -> None:
    profile = load_device_profile(name)
    assert profile.prefill_s(context + new) >= profile.prefill_s(context) - 1e-12
    if new > 0:
        assert profile.append_s(context, new) >= profile.decode_tpot_s(context) > 0.0
        assert profile.append_s(context, new) == pytest.approx(
            max(
                profile.prefill_s(context + new) - profile.prefill_s(context), profile.decode_tpot_s(context)
            ),
            abs=1e-9,
        )


# --- device validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "key", "hint"),
    [
        ("seconds = [1.0, 3.0]", "seconds = [1.0, nan]", "[prefill] seconds", "replace it"),
        ("seconds = [1.0, 3.0]", "seconds = [3.0, 1.0]", "[prefill] seconds", "must not decrease"),
        ("seconds = [1.0, 3.0]", "seconds = [1.0, -3.0]", "[prefill] seconds", "finite time > 0"),
        ("prompt_tokens = [100, 200]", "prompt_tokens = [200, 100]", "[prefill] prompt_tokens", "increasing"),
        ("prompt_tokens = [100, 200]", "prompt_tokens = [100, 100]", "[prefill] prompt_tokens", "increasing"),
        ("prompt_tokens = [100, 200]", "prompt_tokens = [0, 200]", "[prefill] prompt_tokens", "at least 1"),
        (
            "prompt_tokens = [100, 200]",
            "prompt_tokens = [100]",
            "[prefill] prompt_tokens",
            "one time per token count",
        ),
        ("tpot_s = [0.01, 0.02]", "tpot_s = [0.0, 0.02]", "[decode] tpot_s", "above 0"),
        ("tpot_s = [0.01, 0.02]", "tpot_s = [0.01, inf]", "[decode] tpot_s", "finite"),
        ("tpot_s = [0.01, 0.02]", 'tpot_s = [0.01, "fast"]', "[decode] tpot_s", "numbers only"),
        ("tpot_s = [0.01, 0.02]", "tpot_s = []", "[decode] tpot_s", "non-empty"),
        ('engine = "e"', 'engin = "e"', "engin", "use only"),
        ('engine = "e"', "", "engine", "add engine"),
        ('citation = "c"', "", "[source] citation", "add citation"),
    ],
)
def test_device_profile_validation(tmp_path: Path, old: str, new: str, key: str, hint: str) -> None:
    assert old in DEVICE_TOML
    path = _write(tmp_path, "broken_device.toml", DEVICE_TOML.replace(old, new))
    with pytest.raises(ProfileError) as info:
        load_device_profile(path)
    message = str(info.value)
    assert "broken_device.toml" in message
    assert key in message
    assert "fix:" in message
    assert hint in message


def test_device_profile_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "syntax.toml", "name = \n")
    with pytest.raises(ProfileError, match=r"syntax\.toml: invalid TOML.*line 1.*fix"):
        load_device_profile(path)
    with pytest.raises(ProfileError, match=r"missing\.toml.*does not exist.*fix"):
        load_device_profile(tmp_path / "missing.toml")
    with pytest.raises(ProfileError, match=r"missing table \[decode\]"):
        load_device_profile(_write(tmp_path, "nodecode.toml", DEVICE_TOML.partition("[decode]")[0]))


def test_profile_errors_are_value_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="increasing"):
        DeviceProfile.from_toml_text(DEVICE_TOML.replace("[100, 200]", "[200, 100]", 1), source="inline")


# --- cloud model ----------------------------------------------------------------------------------------


def test_iteration_formula(tmp_path: Path) -> None:
    profile = load_cloud_profile(_write(tmp_path, "c.toml", CLOUD_TOML))
    expected = 0.01 + 1e-4 * 300 + 1e-8 * (100**2 + 200**2) + 1e-5 * 3 + 1e-7 * (10 + 20 + 30)
    assert profile.iteration_s([100, 200], [10, 20, 30]) == pytest.approx(expected)
    assert profile.iteration_s([], []) == 0.0
    assert profile.iteration_s([], [0]) == pytest.approx(0.01 + 1e-5)
    assert profile.kv_bytes(7) == 7000
    chunked = profile.iteration_s([100], [], prefill_offsets=[300])
    assert chunked == pytest.approx(0.01 + 1e-4 * 100 + 1e-8 * (400**2 - 300**2))
    with pytest.raises(InvalidInputError, match="one offset per prefill chunk"):
        profile.iteration_s([100], [], prefill_offsets=[])
    with pytest.raises(InvalidInputError, match=r"prefill_offsets\[0\] = -1"):
        profile.iteration_s([100], [], prefill_offsets=[-1])
    with pytest.raises(InvalidInputError, match=r"prefill_lens\[1\] = 0"):
        profile.iteration_s([5, 0], [])
    with pytest.raises(InvalidInputError, match=r"decode_contexts\[0\] = -1"):
        profile.iteration_s([], [-1])
    with pytest.raises(InvalidInputError, match="negative"):
        profile.kv_bytes(-1)


@given(
    name=st.sampled_from(list_cloud_profiles()),
    prompt=st.integers(min_value=1, max_value=20_000),
    chunk=st.integers(min_value=1, max_value=4096),
)
def test_chunked_attention_cost_is_split_invariant(name: str, prompt: int, chunk: int) -> None:
    # the five-term form's attention (a built profile's knee and engine overhead set aside)
    built = load_cloud_profile(name).with_cloud_model("kernel")
    profile = dataclasses.replace(built, prefill_knee_tokens=0)
    chunks = [min(chunk, prompt - start) for start in range(0, prompt, chunk)]
    offsets = list(range(0, prompt, chunk))
    attention = sum(
        profile.iteration_s([length], [], prefill_offsets=[offset])
        - profile.base_s
        - profile.prefill_token_s * length
        for length, offset in zip(chunks, offsets, strict=True)
    )
    assert attention == pytest.approx(profile.prefill_attn_s * prompt**2, rel=1e-9, abs=1e-12)


def test_llama3_8b_a100_sanity() -> None:
    profile = load_cloud_profile("llama3-8b-a100")
    assert 0.060 <= profile.iteration_s([1024], []) <= 0.120
    assert 0.015 <= profile.iteration_s([], [1024] * 32) <= 0.030
    assert profile.kv_bytes_per_token == 131_072
    assert profile.tensor_parallel == 1
    # A larger batch or longer context never makes an iteration faster.
    assert profile.iteration_s([], [1024] * 256) > profile.iteration_s([], [1024] * 32)
    assert profile.iteration_s([2048], [500] * 8) > profile.iteration_s([1024], [500] * 8)


def test_faster_gpu_is_faster() -> None:
    a100 = load_cloud_profile("llama3-8b-a100")
    h100 = load_cloud_profile("llama3-8b-h100")
    for prefill, decode in (([1024], []), ([], [1024] * 32), ([512], [2000] * 64)):
        assert h100.iteration_s(prefill, decode) < a100.iteration_s(prefill, decode)


@given(
    name=st.sampled_from(list_cloud_profiles()),
    prefill=st.lists(st.integers(min_value=1, max_value=8192), max_size=8),
    # a decode sequence attends to at least its own token: a fit may price the sequence itself at nothing
    # (memory-bound decode: qwen-72b-h100-tp4-vidur's decode_seq_s is 0) but never its context
    decode=st.lists(st.integers(min_value=1, max_value=32_768), max_size=64),
    extra=st.integers(min_value=1, max_value=32_768),
)
def test_iteration_time_grows_with_work(name: str, prefill: list[int], decode: list[int], extra: int) -> None:
    profile = load_cloud_profile(name)
    base = profile.iteration_s(prefill, decode)
    assert math.isfinite(base)
    assert profile.iteration_s(prefill, [*decode, extra]) > base
    assert profile.iteration_s([*prefill, extra + 1], decode) > base


@pytest.mark.parametrize(
    ("old", "new", "key", "hint"),
    [
        ("base_s = 0.01", "base_s = 0.0", "[iteration] base_s", "greater than 0"),
        ("decode_seq_s = 1e-5", "decode_seq_s = -1e-5", "[iteration] decode_seq_s", "0 or more"),
        ("prefill_attn_s = 1e-8", "prefill_attn_s = nan", "[iteration] prefill_attn_s", "finite"),
        ("prefill_attn_s = 1e-8", 'prefill_attn_s = "x"', "[iteration] prefill_attn_s", "write a number"),
        ("max_batch_size = 8", "max_batch_size = 0", "[limits] max_batch_size", "at least 1"),
        ("kv_cache_tokens = 10000", "kv_cache_tokens = 1.5", "[limits] kv_cache_tokens", "whole number"),
        ("gpus_per_replica = 1", "gpus_per_replica = 1\nbogus = 2", "[limits] bogus", "use only"),
        ("tensor_parallel = 1", "tensor_parallel = 2", "gpus_per_replica", "at least tensor_parallel"),
        ("bytes_per_token = 1000", "", "[kv_transfer] bytes_per_token", "add bytes_per_token"),
    ],
)
def test_cloud_profile_validation(tmp_path: Path, old: str, new: str, key: str, hint: str) -> None:
    assert old in CLOUD_TOML
    path = _write(tmp_path, "broken_cloud.toml", CLOUD_TOML.replace(old, new))
    with pytest.raises(ProfileError) as info:
        load_cloud_profile(path)
    message = str(info.value)
    assert "broken_cloud.toml" in message
    assert key in message
    assert "fix:" in message
    assert hint in message


def test_cloud_profile_from_text() -> None:
    profile = CloudProfile.from_toml_text(CLOUD_TOML, source="inline")
    assert profile.source == "inline"
    assert profile.coefficients()["prefill_attn_s"] == 1e-8


# --- writing ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list_device_profiles())
def test_every_device_profile_reads_back_equal_from_its_toml(name: str) -> None:
    profile = load_device_profile(name)
    back = DeviceProfile.from_toml_text(profile.to_toml(), source=profile.source)
    assert back == profile
    assert back.to_toml() == profile.to_toml()


@pytest.mark.parametrize("name", list_cloud_profiles())
def test_every_cloud_profile_reads_back_equal_from_its_toml(name: str) -> None:
    profile = load_cloud_profile(name)
    back = CloudProfile.from_toml_text(profile.to_toml(), source=profile.source)
    assert back == profile
    assert back.to_toml() == profile.to_toml()


def test_written_profiles_keep_odd_text_and_optional_keys() -> None:
    odd = 'quotes " and \\ backslashes, a tab\t, a newline\n, \x7f, \x01 and \u00e9t\u00e9 \U0001f5fc'
    device = DeviceProfile.from_toml_text(DEVICE_TOML)
    device = dataclasses.replace(device, notes=odd, session_cache_bytes=0, prefill_seconds=(1 / 3, 3.1))
    assert DeviceProfile.from_toml_text(device.to_toml(), source=device.source) == device
    cloud = CloudProfile.from_toml_text(CLOUD_TOML)
    assert "prefix_cache_tokens" not in cloud.to_toml()
    assert "[price]" not in cloud.to_toml()
    cloud = dataclasses.replace(
        cloud, citation=odd, prefix_cache_tokens=0, usd_per_gpu_hour=1.99, kv_write_token_s=1.29e-7,
        prompt_bytes_per_token=4.0, stream_bytes_per_token=329.0,
    )  # fmt: skip
    assert CloudProfile.from_toml_text(cloud.to_toml(), source=cloud.source) == cloud


# --- registry -------------------------------------------------------------------------------------------


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(ProfileError) as info:
        load_device_profile("pixel-99")
    message = str(info.value)
    assert "pixel-99" in message
    for name in list_device_profiles():
        assert name in message
    with pytest.raises(ProfileError, match="llama3-8b-a100"):
        load_cloud_profile("tpu-v9")
    with pytest.raises(ProfileError, match="lan, lte, wifi"):
        network_preset("carrier-pigeon")


def test_profiles_load_from_a_path(tmp_path: Path) -> None:
    device = load_device_profile(str(_write(tmp_path, "mine.toml", DEVICE_TOML)))
    assert device.name == "test-device"
    assert device.source.endswith("mine.toml")
    cloud = load_cloud_profile(_write(tmp_path, "cloud.toml", CLOUD_TOML))
    assert cloud.name == "test-cloud"


@pytest.mark.parametrize(
    ("value", "is_path"),
    [
        ("llama3-8b-a100", False),
        ("phone.toml", True),
        ("phone.TOML", True),
        ("r/phone.profile", True),
        ("./phone", True),
        ("phone.profile", False),
        (Path("phone"), True),
    ],
)
def test_one_rule_tells_a_profile_path_from_a_name(value: str | Path, is_path: bool) -> None:
    assert is_profile_path(value) is is_path
    # the command line asks the same rule (a PathLike is a path; its text alone may not be)
    assert (profile_path(str(value)) is not None) is is_profile_path(str(value))


@pytest.mark.parametrize("name", ["phone.TOML", "r/phone.profile"])
def test_a_profile_file_of_any_name_is_read_and_noted_as_an_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Read as a file whatever its suffix or case, and noted, so no output of the run can replace it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r").mkdir()
    _write(tmp_path, name, DEVICE_TOML)
    assert load_device_profile(name).name == "test-device"
    assert input_at(tmp_path / name) == name
    _write(tmp_path, "r/cloud.Toml", CLOUD_TOML)
    assert load_cloud_profile("r/cloud.Toml").name == "test-cloud"
    assert input_at(tmp_path / "r" / "cloud.Toml") == "r/cloud.Toml"


def test_a_bare_file_name_is_not_taken_for_a_profile_but_the_fix_says_how(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "phone.profile", DEVICE_TOML)
    with pytest.raises(
        ProfileError, match=r"unknown device profile 'phone\.profile'.*pass \./phone\.profile"
    ):
        load_device_profile("phone.profile")


# --- network --------------------------------------------------------------------------------------------


def test_network_presets_values() -> None:
    wifi = network_preset("wifi")
    assert wifi.rtt_s == pytest.approx(0.020)
    assert wifi.bandwidth_bps == pytest.approx(100e6)
    assert network_preset("5g").rtt_s == pytest.approx(0.040)
    assert network_preset("lte").bandwidth_bps == pytest.approx(20e6)
    assert network_preset("lan").rtt_s < wifi.rtt_s
    assert set(NETWORK_PRESETS) == set(list_network_presets())
    assert wifi.transfer_s(1_000_000) == pytest.approx(0.08)
    np.testing.assert_allclose(wifi.transfer_s(np.array([0, 131_072])), [0.0, 131_072 * 8 / 100e6])


def test_one_way_delay_distribution() -> None:
    network = network_preset("lte")
    rng = np.random.default_rng(0)
    delays = network.sample_one_way_s(200_000, rng)
    assert delays.dtype == np.float64
    assert delays.shape == (200_000,)
    assert delays.min() >= network.rtt_s / 2
    assert np.std(delays) == pytest.approx(network.jitter_s, rel=0.02)
    expected_mean = network.rtt_s / 2 + network.jitter_s * math.sqrt(2 / math.pi) / math.sqrt(1 - 2 / math.pi)
    assert delays.mean() == pytest.approx(expected_mean, rel=0.01)
    same = network.sample_one_way_s(5, np.random.default_rng(1))
    np.testing.assert_array_equal(same, network.sample_one_way_s(5, np.random.default_rng(1)))
    still = NetworkProfile(name="fixed", rtt_s=0.01, bandwidth_bps=1e6, jitter_s=0.0)
    np.testing.assert_array_equal(still.sample_one_way_s(3, rng), [0.005, 0.005, 0.005])
    assert len(still.sample_one_way_s(0, rng)) == 0


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"rtt_s": -0.01}, "rtt_s"),
        ({"rtt_s": float("nan")}, "rtt_s"),
        ({"bandwidth_bps": 0.0}, "bandwidth_bps"),
        ({"jitter_s": float("inf")}, "jitter_s"),
    ],
)
def test_network_validation(kwargs: dict[str, float], key: str) -> None:
    values = {"rtt_s": 0.02, "bandwidth_bps": 1e8, "jitter_s": 0.001} | kwargs
    with pytest.raises(ProfileError, match=rf"custom.*{key}.*fix"):
        NetworkProfile(
            name="custom",
            rtt_s=values["rtt_s"],
            bandwidth_bps=values["bandwidth_bps"],
            jitter_s=values["jitter_s"],
        )


def test_network_rejects_bad_arguments() -> None:
    wifi = network_preset("wifi")
    with pytest.raises(InvalidInputError, match="whole number"):
        wifi.sample_one_way_s(-1, np.random.default_rng(0))
    with pytest.raises(InvalidInputError, match="nbytes"):
        wifi.transfer_s(-5.0)
