"""The device's step spread: the profile key, its measurement by ``profile-device`` and by ``validate``'s
calibration, and the simulated device drawing its calls around their prices."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from pdcore._core import MAX_STEP_SPREAD, DeviceCost
from pdcore.exceptions import InvalidInputError, ProfileError
from pdcore.policies import make_policy
from pdcore.profiles import (
    DeviceProfile,
    list_device_profiles,
    load_cloud_profile,
    load_device_profile,
    network_preset,
)
from pdcore.runtime.prediction import calibration_spread
from pdcore.runtime.profiler import Measurement, measured_spread, profile_toml
from pdcore.runtime.validation_report import CalibrationSample
from pdcore.sim.runner import Scenario
from pdcore.traces.workload import Workload

DEVICE_TOML = """
name = "spread-device"
description = "d"
hardware = "h"
model = "m"
engine = "e"
kv_bytes_per_token = 4096

[prefill]
prompt_tokens = [128, 1024]
seconds = [0.128, 1.024]

[decode]
context_tokens = [0, 2048]
tpot_s = [0.02, 0.02]

[source]
citation = "c"
notes = "n"
"""


def _with_spread(value: str) -> str:
    return DEVICE_TOML.replace("tpot_s = [0.02, 0.02]", f"tpot_s = [0.02, 0.02]\nstep_spread = {value}")


def test_absent_means_zero_and_is_written_as_before() -> None:
    profile = DeviceProfile.from_toml_text(DEVICE_TOML)
    assert profile.step_spread == 0.0
    assert profile.cost.step_spread == 0.0
    assert "step_spread" not in profile.to_toml()


@pytest.mark.parametrize("name", list_device_profiles())
def test_shipped_profiles_have_no_spread(name: str) -> None:
    profile = load_device_profile(name)
    assert profile.step_spread == 0.0
    assert "step_spread" not in profile.to_toml()


def test_the_key_reads_back_equal_and_reaches_the_cost_model() -> None:
    profile = DeviceProfile.from_toml_text(_with_spread("0.125"))
    assert profile.step_spread == 0.125
    assert profile.cost.step_spread == 0.125
    back = DeviceProfile.from_toml_text(profile.to_toml(), source=profile.source)
    assert back == profile
    assert "step_spread = 0.125" in profile.to_toml().partition("[decode]")[2].partition("[source]")[0]
    # a spread prices nothing
    assert profile.cost.append_s(500, 10) == DeviceProfile.from_toml_text(DEVICE_TOML).cost.append_s(500, 10)
    assert DeviceProfile.from_toml_text(_with_spread(str(MAX_STEP_SPREAD))).step_spread == MAX_STEP_SPREAD


@pytest.mark.parametrize("value", ["-0.1", "2.5", "nan", "inf", '"wide"', "true", "1e300"])
def test_bad_values_are_refused_naming_the_key(value: str) -> None:
    with pytest.raises(ProfileError) as info:
        DeviceProfile.from_toml_text(_with_spread(value), source="phone.toml")
    message = str(info.value)
    assert message.startswith("phone.toml: ")
    assert "[decode] step_spread" in message
    assert "fix:" in message


@pytest.mark.parametrize("value", [-1.0, 3.0, math.nan, "0.1", True, None])
def test_direct_construction_checks_the_spread_alike(value: object) -> None:
    profile = DeviceProfile.from_toml_text(DEVICE_TOML)
    with pytest.raises(ProfileError, match=r"\[decode\] step_spread.*fix:"):
        dataclasses.replace(profile, step_spread=value)


def test_the_cost_model_takes_it_as_a_keyword() -> None:
    points = {"prefill_tokens": [1.0], "prefill_s": [0.01], "decode_context": [0.0], "decode_tpot_s": [0.02]}
    cost = DeviceCost(**points, kv_bytes_per_token=1.0, step_spread=0.3)
    assert cost.step_spread == 0.3
    assert "step_spread=0.3" in repr(cost)
    assert cost != DeviceCost(**points, kv_bytes_per_token=1.0)
    with pytest.raises(InvalidInputError, match=r"\[decode\] step_spread"):
        DeviceCost(**points, kv_bytes_per_token=1.0, step_spread=-0.5)


def test_the_simulated_device_strays_from_its_prices_reproducibly() -> None:
    calm = DeviceProfile.from_toml_text(DEVICE_TOML)
    workload = Workload(
        name="spread",
        arrival_s=np.arange(50, dtype=np.float64) * 30.0,
        prompt_tokens=np.full(50, 512, dtype=np.int64),
        output_tokens=np.full(50, 40, dtype=np.int64),
        source="test",
    )

    def ttft(profile: DeviceProfile) -> np.ndarray:
        scenario = Scenario(
            cloud=load_cloud_profile("llama3-8b-a100"), device=profile, network=network_preset("wifi")
        )
        result = scenario.run(workload, make_policy("device-only"))
        return np.asarray(result.results["ttft_s"])

    still = ttft(calm)
    assert np.allclose(still, still[0])
    spread = dataclasses.replace(calm, step_spread=0.2)
    jittered = ttft(spread)
    assert np.array_equal(jittered, ttft(spread)), "bit for bit from run to run"
    deviation = jittered / still - 1.0
    # 4 prompt calls of 128 tokens: each prefill strays by about 0.2 / 2
    assert 0.05 < float(np.sqrt(np.mean(deviation**2))) < 0.15
    assert abs(float(np.mean(deviation))) < 0.05


# --- measured by profile-device ---------------------------------------------------------------------------


def _measurement(runs: tuple[tuple[float, ...], ...], steps: tuple[tuple[float, ...], ...]) -> Measurement:
    return Measurement(
        prompt_tokens=(128, 1024),
        measured_s=(0.128, 1.024),
        coefficients=(0.0, 0.001, 0.0),
        decode_context=(128, 1024),
        decode_tpot_s=(0.02, 0.02),
        decode_coefficients=(0.02, 0.0),
        repeats=2,
        decode_tokens=2,
        chunk_tokens=128,
        seconds=1.0,
        prefill_runs_s=runs,
        decode_steps_s=steps,
    )


def test_profile_device_measures_the_spread_per_model_call() -> None:
    profile = DeviceProfile.from_toml_text(DEVICE_TOML)
    exact = _measurement(((0.128, 0.128), (1.024, 1.024)), ((0.02, 0.02), (0.02, 0.02)))
    assert measured_spread(exact, profile) == (0.0, 8)
    # decode steps 10% off, a 1-call run 10% off, an 8-call run 10% / sqrt(8) off: each says 0.1 a call
    off = 0.1 / math.sqrt(8)
    noisy = _measurement(((0.1408, 0.1152), (1.024 * (1 + off), 1.024 * (1 - off))), ((0.022, 0.018),) * 2)
    spread, samples = measured_spread(noisy, profile)
    assert samples == 8
    assert spread == pytest.approx(0.1)
    wild = _measurement(((12.8,), (102.4,)), ((2.0,), (2.0,)))
    assert measured_spread(wild, profile)[0] == MAX_STEP_SPREAD
    assert measured_spread(_measurement((), ()), profile) == (0.0, 0)


def test_profile_device_writes_the_spread_and_says_how() -> None:
    off = 0.1 / math.sqrt(8)
    noisy = _measurement(((0.1408, 0.1152), (1.024 * (1 + off), 1.024 * (1 - off))), ((0.022, 0.018),) * 2)
    text = profile_toml(noisy, name="n", model="m", engine="e", hardware="h", kv_bytes_per_token=64)
    profile = DeviceProfile.from_toml_text(text)
    assert 0.05 < profile.step_spread < 0.15
    assert "Step spread" in profile.notes
    assert "measured_spread" in profile.notes


# --- measured by validate's calibration -------------------------------------------------------------------


def _sample(calls: tuple[tuple[int, float], ...]) -> CalibrationSample:
    done = calls[-1][0] if calls else 0
    return CalibrationSample(
        prompt_tokens=done,
        ttft_s=0.1,
        gaps_s=(0.02,),
        device_prefill_s=sum(took for _, took in calls) or None,
        device_profile_s=done * 0.001 if calls else None,  # the profile's price: 1 ms a token
        device_calls=calls,
    )


def test_validate_measures_the_spread_of_the_calibrations_calls() -> None:
    profile = DeviceProfile.from_toml_text(DEVICE_TOML)
    # 128-token calls at 1 ms a token: at their price, then 1.5x slower throughout (drift, not spread)
    steady = tuple((128 * (i + 1), 0.128) for i in range(4))
    slow = tuple((128 * (i + 1), 0.192) for i in range(4))
    spread, calls = calibration_spread([_sample(steady), _sample(slow)], profile)
    assert calls == 8
    assert spread < 1e-9
    uneven = tuple((128 * (i + 1), 0.128 * (1.2 if i % 2 else 0.8)) for i in range(8))
    spread, calls = calibration_spread([_sample(uneven)], profile)
    assert calls == 8
    assert 0.15 < spread < 0.25
    assert calibration_spread([_sample(())], profile) == (0.0, 0)
