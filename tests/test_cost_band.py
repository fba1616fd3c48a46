"""Perturbed profiles (`pdcore.profiles.band.scaled`) and the report's section on the cost model
(`pdcore.report.cost_band`): one row per term and factor, a factor of 1 reproducing the baseline, a scaled
profile that differs from its original in that term only, and a refused variant reported as such."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from pdcore.exceptions import InvalidInputError, ProfileError
from pdcore.profiles import CloudProfile, DeviceProfile, load_cloud_profile, load_device_profile
from pdcore.profiles.band import CLOUD_TERMS, DEVICE_TERMS, scaled
from pdcore.report.cost_band import (
    BAND_FACTORS,
    HEADLINES,
    Variant,
    band_variants,
    cost_band_section,
)
from pdcore.report.markdown.cost_band import cost_band_text
from pdcore.sim.scenario import Scenario
from pdcore.sim.spec import ScenarioSpec, WorkloadSpec
from pdcore.traces import Workload

_DEVICE_FIELDS = {"prefill": "prefill_seconds", "decode": "decode_tpot"}


def _differing(left: object, right: object) -> set[str]:
    return {f.name for f in fields(left) if getattr(left, f.name) != getattr(right, f.name)}  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def cloud() -> CloudProfile:
    return load_cloud_profile("llama3-8b-a100")


@pytest.fixture(scope="module")
def device() -> DeviceProfile:
    return load_device_profile("llama32-3b-w4a16-8elite-genie")


@pytest.mark.parametrize(
    ("term", "factor"),
    [(t, f) for t in CLOUD_TERMS for f in (0.8, 1.2) if (t, f) != ("prefill_token_s", 0.8)],
)
def test_a_scaled_cloud_profile_changes_that_term_only(cloud: CloudProfile, term: str, factor: float) -> None:
    moved = scaled(cloud, term, factor)
    assert isinstance(moved, CloudProfile)
    assert _differing(cloud, moved) == {term}
    assert getattr(moved, term) == pytest.approx(getattr(cloud, term) * factor, rel=1e-15)


def test_a_prefill_faster_than_the_gpu_allows_is_refused(cloud: CloudProfile) -> None:
    """The default profile's prefill slope is near the A100's peak: 20% cheaper prices a 2,048-token
    prefill above 85% of its dense FLOPs, which the physics guard refuses, naming the key."""
    with pytest.raises(ProfileError, match=r"\[iteration\] prefill_token_s.*fix:"):
        scaled(cloud, "prefill_token_s", 0.8)


@pytest.mark.parametrize("term", DEVICE_TERMS)
@pytest.mark.parametrize("factor", [0.8, 1.2])
def test_a_scaled_device_profile_changes_that_curve_only(
    device: DeviceProfile, term: str, factor: float
) -> None:
    moved = scaled(device, term, factor)
    field = _DEVICE_FIELDS[term]
    assert _differing(device, moved) == {field}
    assert getattr(moved, field) == pytest.approx([v * factor for v in getattr(device, field)], rel=1e-15)
    if term == "prefill":
        assert moved.prefill_s(1000) == pytest.approx(device.prefill_s(1000) * factor)
        assert moved.decode_tpot_s(1000) == device.decode_tpot_s(1000)
    else:
        assert moved.decode_tpot_s(1000) == pytest.approx(device.decode_tpot_s(1000) * factor)
        assert moved.prefill_s(1000) == device.prefill_s(1000)


def test_a_factor_of_one_gives_an_equal_profile(cloud: CloudProfile, device: DeviceProfile) -> None:
    for term in CLOUD_TERMS:
        assert scaled(cloud, term, 1.0) == cloud
    for term in DEVICE_TERMS:
        assert scaled(device, term, 1.0) == device


@pytest.mark.parametrize(
    ("term", "factor", "says"),
    [
        ("prefill", 1.2, "not a cost term of a cloud profile"),
        ("base_s", 0.0, "factor = 0.0"),
        ("base_s", float("nan"), "factor = nan"),
        ("base_s", float("inf"), "factor = inf"),
        ("base_s", True, "factor = True"),
        ("base_s", 1000.0, "at most 100"),
    ],
)
def test_a_bad_term_or_factor_is_named_with_the_fix(
    cloud: CloudProfile, term: str, factor: Any, says: str
) -> None:
    with pytest.raises(InvalidInputError, match="fix:") as raised:
        scaled(cloud, term, factor)
    assert says in str(raised.value)


def test_a_device_term_is_refused_on_a_cloud_and_the_other_way(
    cloud: CloudProfile, device: DeviceProfile
) -> None:
    with pytest.raises(InvalidInputError, match="prefill, decode"):
        scaled(device, "base_s", 1.2)
    with pytest.raises(InvalidInputError, match="CloudProfile or a DeviceProfile"):
        scaled("llama3-8b-a100", "base_s", 1.2)  # type: ignore[type-var]


@pytest.fixture(scope="module")
def setting() -> tuple[Workload, Scenario]:
    scenario = ScenarioSpec(
        device="llama32-3b-w4a16-8elite-genie", cloud="llama3-8b-a100", network="wifi"
    ).build()
    return WorkloadSpec(seed=0, requests=120).load(), scenario


@pytest.fixture(scope="module")
def section(setting: tuple[Workload, Scenario]) -> dict[str, Any]:
    workload, scenario = setting
    return cost_band_section(workload, scenario, seed=0, target=0.9, requests=80, workers=2)


def test_the_section_has_a_row_per_term_and_factor(section: dict[str, Any]) -> None:
    rows = section["rows"]
    assert rows[0]["label"] == "baseline"
    expected = [("cloud", t, f) for t in CLOUD_TERMS for f in BAND_FACTORS]
    expected += [("device", t, f) for t in DEVICE_TERMS for f in BAND_FACTORS]
    expected += [("cloud", "kernel model", None), ("cloud", "engine model", None)]
    assert [(r["side"], r["term"], r["factor"]) for r in rows[1:]] == expected
    assert section["requests"] == 80
    assert section["factors"] == list(BAND_FACTORS)
    assert section["not_applicable"] == []
    refused = [row["label"] for row in rows if row["refused"] is not None]
    assert refused == ["cloud prefill_token_s x0.8"], "beyond the A100's FLOPs: the physics guard"
    for row in rows:
        if row["refused"] is not None:
            continue
        assert set(row["holds"]) == set(HEADLINES)
        assert all(isinstance(value, bool) for value in row["holds"].values())
    assert set(section["summary"]) == set(HEADLINES)
    for found in section["summary"].values():
        assert found["holds_across"] == (found["baseline_holds"] and not found["changes_under"])


def test_a_term_scaled_by_one_reproduces_the_baseline_exactly(
    setting: tuple[Workload, Scenario], section: dict[str, Any]
) -> None:
    workload, scenario = setting
    ones = band_variants(factors=(1.0,))
    again = cost_band_section(workload, scenario, seed=0, target=0.9, requests=80, variants=ones, workers=2)
    baseline = section["rows"][0]["figures"]
    assert again["rows"][0]["figures"] == baseline
    for row in again["rows"][1:]:
        assert row["figures"] == baseline, row["label"]
    assert all(not found["changes_under"] for found in again["summary"].values())


def test_a_slower_device_decode_moves_the_figures(section: dict[str, Any]) -> None:
    by_label = {row["label"]: row for row in section["rows"]}
    slower = by_label["device decode x1.2"]["figures"]["max_gap_p99"]["value_s"]
    assert slower >= by_label["baseline"]["figures"]["max_gap_p99"]["value_s"]


def test_a_refused_variant_is_reported_with_its_reason(setting: tuple[Workload, Scenario]) -> None:
    workload, scenario = setting

    def refuse(_: Scenario) -> Scenario:
        raise ProfileError("cloud.toml: key '[iteration] prefill_token_s' is faster than the GPU; fix: x")

    named = Variant("cloud model: impossible", "cloud", "impossible", None, refuse)
    found = cost_band_section(workload, scenario, seed=0, target=0.9, requests=60, variants=[named])
    row = found["rows"][1]
    assert row["figures"] is None
    assert "faster than the GPU" in row["refused"]
    assert not any(row["holds"].values())
    assert all(not verdict["changes_under"] for verdict in found["summary"].values()), "left out"
    text = "\n".join(cost_band_text(found))
    assert "refused: key '[iteration] prefill_token_s' is faster than the GPU |" in text


def test_the_section_renders_a_row_per_environment(section: dict[str, Any]) -> None:
    text = cost_band_text(section)
    assert text[0] == "## How much rests on the cost model"
    joined = "\n".join(text)
    for row in section["rows"]:
        assert f"| `{row['label']}` |" in joined
    assert "first 80 requests" in joined
