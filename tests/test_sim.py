"""The simulation runner (``pdcore.sim``): validation against the models, metrics, capacity, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from pdcore import InvalidInputError
from pdcore._core import Simulator
from pdcore.optimize import solve_catchup
from pdcore.policies import POLICIES, PDDevice
from pdcore.profiles import load_cloud_profile, load_device_profile, network_preset
from pdcore.sim import (
    SLO,
    Scenario,
    capacity_rps,
    decode_capacity_rps,
    dumps,
    simulate,
)
from pdcore.sim.capacity import _search
from pdcore.traces import Workload, synthetic_default

CLOUD = load_cloud_profile("llama3-8b-a100")
PHONE = load_device_profile("llama32-3b-w4a16-8elite-genie")
WIFI = network_preset("wifi")
MAX_TPOT = 0.05
NS = 2e-9  # the simulator's time grain, with one rounding either side


def scenario(
    deployment: str = "disaggregated", device_name: str = "llama32-3b-w4a16-8elite-genie"
) -> Scenario:
    return Scenario(cloud=CLOUD, device=load_device_profile(device_name), network=WIFI, deployment=deployment)


def spaced(n: int = 300, seed: int = 1) -> Workload:
    """Synthetic requests 1000 s apart: each one has the cloud to itself (the lightest load)."""
    base = synthetic_default(seed=seed, n_requests=n)
    return Workload(
        name="spaced",
        arrival_s=np.arange(n, dtype=np.float64) * 1000.0,
        prompt_tokens=base.prompt_tokens,
        output_tokens=base.output_tokens,
        source="test",
    )


def lone_prefill(prompts: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    return np.array([CLOUD.cost.lone_prefill_s(int(tokens)) for tokens in prompts])


@pytest.mark.parametrize("device_name", ["llama32-3b-w4a16-8elite-genie", "smollm2-135m-q4-cpu2"])
def test_device_only_ttft_is_the_profile_prefill_time(device_name: str) -> None:
    workload = synthetic_default(seed=2, n_requests=300, rate_rps=50.0)
    result = scenario(device_name=device_name).run(workload, "device-only")
    expected = load_device_profile(device_name).prefill_s(workload.prompt_tokens)
    np.testing.assert_allclose(result.results["ttft_s"], expected, rtol=0, atol=NS)
    assert (result.results["served_by"] == 1).all()


@pytest.mark.parametrize("deployment", ["colocated", "disaggregated"])
def test_cloud_only_light_load_ttft_is_the_round_trip_plus_modelled_prefill(deployment: str) -> None:
    workload = spaced()
    assert workload.prompt_tokens.max() > CLOUD.max_tokens_per_iteration  # chunked prompts are covered
    result = scenario(deployment).run(workload, "cloud-only", seed=3)
    expected = 2.0 * result.one_way_s + lone_prefill(workload.prompt_tokens)
    np.testing.assert_allclose(result.results["ttft_s"], expected, rtol=0, atol=20 * NS)


def test_the_lone_prefill_estimate_is_the_simulators() -> None:
    workload = spaced(n=5)
    setup = scenario()
    native = Simulator(
        arrival_s=workload.arrival_s,
        prompt_tokens=workload.prompt_tokens,
        output_tokens=workload.output_tokens,
        one_way_s=np.zeros(len(workload)),
        cloud=setup.cloud_config(),
        device=setup.device_config(),
        bandwidth_bps=WIFI.bandwidth_bps,
    )
    for tokens in (1, 100, 2047, 2048, 2049, 4096, 9000):
        assert CLOUD.cost.lone_prefill_s(tokens) == pytest.approx(
            native.cloud_lone_prefill_s(tokens), rel=1e-12
        )


@pytest.mark.parametrize("deployment", ["colocated", "disaggregated"])
@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_every_output_token_is_displayed_exactly_once(deployment: str, policy: str) -> None:
    workload = synthetic_default(seed=4, n_requests=400).scaled(2.0)  # about 11 req/s: queues form
    result = scenario(deployment).run(workload, policy, seed=5)
    np.testing.assert_array_equal(result.results["displayed_tokens"], workload.output_tokens)
    ttft = result.results["ttft_s"]
    assert np.isfinite(ttft).all()
    assert (ttft > 0).all()
    assert (result.results["e2e_s"] >= ttft).all()


@pytest.mark.parametrize("device_name", ["llama32-3b-w4a16-8elite-genie", "llama32-1b-w4a16-8elite-genie"])
def test_pd_device_on_light_load_keeps_cloud_ttft_and_a_smooth_handoff(device_name: str) -> None:
    workload = spaced()
    setup = scenario(device_name=device_name)
    cloud = setup.run(workload, "cloud-only", seed=3).results
    split = setup.run(workload, "pd-device", seed=3).results
    device_ttft = setup.device.prefill_s(workload.prompt_tokens)
    # the user sees whichever first token comes first: the cloud's, or the device's when it answers alone
    np.testing.assert_allclose(split["ttft_s"], np.minimum(cloud["ttft_s"], device_ttft), rtol=0, atol=NS)
    cloud_first = split["served_by"] != 1
    np.testing.assert_allclose(split["ttft_s"][cloud_first], cloud["ttft_s"][cloud_first], rtol=0, atol=NS)
    assert cloud_first.mean() > 0.5
    # every gap within max_tpot, whether the cloud's tokens reach the device before or after its prompt
    assert (split["max_gap_s"] <= MAX_TPOT + NS).all()
    assert (split["handoff_stall_s"] == 0).all()
    assert (split["cloud_decode_tokens"] < cloud["cloud_decode_tokens"]).mean() > 0.9


def test_pd_device_short_prompt_with_tokens_arriving_after_the_prompt() -> None:
    workload = Workload(
        name="one",
        arrival_s=np.zeros(1),
        prompt_tokens=np.array([92]),
        output_tokens=np.array([122]),
        source="t",
    )
    one_way = 0.015926316635881267
    first = 2 * one_way + CLOUD.cost.lone_prefill_s(92)
    assert (
        PHONE.prefill_s(92) < first + 0.0165 < PHONE.prefill_s(92) + 0.05
    )  # token 1 arrives after the prompt
    assert (
        solve_catchup(92, device=PHONE, first_token_s=first, max_tpot_s=MAX_TPOT, cloud_tpot_s=0.0165).k == 1
    )
    result = scenario().run(workload, PDDevice(), one_way_s=[one_way])
    assert result.results["max_gap_s"][0] <= MAX_TPOT + NS


def test_pd_device_saves_cloud_decode_and_capacity_over_cloud_only() -> None:
    workload = synthetic_default(seed=6, n_requests=600)
    setup = scenario()
    cloud = setup.run(workload, "cloud-only").aggregate()
    split = setup.run(workload, "pd-device").aggregate()
    assert split["cloud_decode_tokens_per_request"] < 0.2 * cloud["cloud_decode_tokens_per_request"]
    assert split["cloud_gpu_s_per_request"]["decode"] < cloud["cloud_gpu_s_per_request"]["decode"]
    assert split["ttft_s"]["p50"] <= cloud["ttft_s"]["p50"]


def test_naive_split_stalls_where_pd_device_does_not() -> None:
    workload = spaced(n=100)
    setup = scenario()
    naive = setup.run(workload, "naive-split").aggregate()
    split = setup.run(workload, "pd-device").aggregate()
    assert naive["cloud_decode_tokens_per_request"] == split["cloud_decode_tokens_per_request"]
    assert naive["handoff_stall_s"]["p50"] > 0.1
    assert split["handoff_stall_s"]["p99"] < naive["handoff_stall_s"]["p50"]


REQUIRED = {
    "ttft_s": {"p50", "p90", "p99"},
    "tpot_s": {"mean", "p50", "p99"},
    "itl_s": {"mean", "p50", "p99"},
    "max_gap_s": {"p50", "p99"},
    "handoff_stall_s": {"p99"},
    "qoe": {"mean"},
    "e2e_s": {"p50", "p99"},
    "cloud_gpu_s_per_request": {"total", "prefill", "decode"},
    "served_by": {"cloud", "device", "both"},
    "k_site": {"pool", "prefill", "bridge", "none"},
}


def test_aggregate_has_the_reported_fields() -> None:
    workload = synthetic_default(seed=7, n_requests=200)
    report = scenario().run(workload, "pd-device").aggregate()
    for key, inner in REQUIRED.items():
        assert inner <= set(report[key]), key
    for key in (
        "cloud_decode_tokens_per_request",
        "slo_attainment",
        "gap_slo_attainment",
        "goodput_rps",
        "requests",
    ):
        assert key in report
    assert report["requests"] == 200
    assert sum(report["served_by"].values()) == pytest.approx(1.0)
    assert sum(report["k_site"].values()) == pytest.approx(1.0)
    assert report["k_site"]["pool"] > 0.5
    assert 0.0 <= report["slo_attainment"] <= 1.0
    assert report["goodput_rps"] <= report["throughput_rps"]


def test_slo_attainment_counts_both_objectives() -> None:
    workload = synthetic_default(seed=7, n_requests=200)
    setup = scenario()
    loose = setup.replace(slo=SLO(ttft_s=100.0, max_tpot_s=10.0)).run(workload, "cloud-only").aggregate()
    tight = setup.replace(slo=SLO(ttft_s=0.01, max_tpot_s=10.0)).run(workload, "cloud-only").aggregate()
    assert loose["slo_attainment"] == 1.0
    assert tight["slo_attainment"] == 0.0


def test_same_seed_gives_byte_identical_json_and_another_seed_does_not() -> None:
    workload = synthetic_default(seed=8, n_requests=300)
    setup = scenario()

    def report(seed: int) -> str:
        return dumps({name: setup.run(workload, name, seed=seed).aggregate() for name in POLICIES})

    first = report(11)
    assert first == report(11)
    assert first != report(12)
    assert json.loads(first)["pd-device"]["requests"] == 300
    assert "NaN" not in first


def test_per_request_csv(tmp_path: Path) -> None:
    workload = synthetic_default(seed=9, n_requests=50)
    result = simulate(workload, "pd-device", cloud=CLOUD, device=PHONE, network=WIFI)
    out = tmp_path / "requests.csv"
    result.to_csv(out)
    lines = out.read_text().splitlines()
    assert len(lines) == 51
    header = lines[0].split(",")
    assert header[:5] == ["request", "arrival_s", "prompt_tokens", "output_tokens", "one_way_s"]
    assert "ttft_s" in header
    assert "slo_met" in header
    first = dict(zip(header, lines[1].split(","), strict=True))
    assert first["mode"] in {"pd", "device"}
    assert float(first["ttft_s"]) == pytest.approx(result.results["ttft_s"][0], rel=1e-8)


def test_results_carry_each_plans_refinement_ratio() -> None:
    workload = spaced(40)
    refined = scenario().run(workload, PDDevice(k=4, refine_ratio=0.5))
    pd = refined.columns()["mode"] == "pd"
    assert pd.any()
    assert np.all(refined.results["refine_ratio"][pd] == 0.5)
    # the device prefills the refined prompt plus the cloud tokens it keeps
    kept = refined.results["cloud_tokens_kept"][pd]
    assert np.all(
        refined.results["device_prefill_tokens"][pd] - kept == np.ceil(0.5 * workload.prompt_tokens[pd])
    )
    full = scenario().run(workload, "cloud-only")
    assert np.all(full.columns()["refine_ratio"] == 1.0)


def test_simulate_keyword_form_matches_the_scenario() -> None:
    workload = synthetic_default(seed=10, n_requests=100)
    direct = simulate(workload, "race", cloud=CLOUD, device=PHONE, network=WIFI, seed=4)
    via = scenario().run(workload, "race", seed=4)
    assert dumps(direct.aggregate()) == dumps(via.aggregate())


def test_scenario_rejects_bad_settings() -> None:
    with pytest.raises(InvalidInputError, match="--deployment 'both'"):
        Scenario(cloud=CLOUD, device=PHONE, network=WIFI, deployment="both")
    with pytest.raises(InvalidInputError, match="--replicas"):
        Scenario(cloud=CLOUD, device=PHONE, network=WIFI, replicas=0)
    with pytest.raises(InvalidInputError, match="--seed"):
        scenario().run(synthetic_default(n_requests=5), "cloud-only", seed=-1)
    with pytest.raises(InvalidInputError, match="one_way_s"):
        scenario().run(synthetic_default(n_requests=5), "cloud-only", one_way_s=[0.01])
    with pytest.raises(InvalidInputError, match="--ttft-slo"):
        SLO(ttft_s=0.0)


def test_device_kv_bytes_per_token_is_the_profiles() -> None:
    assert PHONE.kv_bytes_per_token == 2 * 28 * 8 * 128 * 2
    assert load_device_profile("smollm2-135m-q4-cpu2").kv_bytes_per_token == 2 * 30 * 3 * 64 * 2
    scenario = Scenario(cloud=CLOUD, device=PHONE, network=network_preset("wifi"))
    assert scenario.device_config().kv_bytes_per_token == PHONE.kv_bytes_per_token
    override = scenario.replace(device_kv_bytes_per_token=1000.0).device_config()
    assert override.kv_bytes_per_token == 1000.0


def test_capacity_search_brackets_then_bisects() -> None:
    calls: list[float] = []

    def probe(scale: float) -> float:
        calls.append(scale)
        return 1.0 if scale <= 3.3 else 0.5

    found = _search(probe, base_rps=2.0, target=0.9, window=10, max_scale=256.0, rel_tol=0.02, progress=None)
    assert found.bound == "found"
    assert found.rps is not None
    assert 2.0 * 3.3 / 1.02 <= found.rps <= 2.0 * 3.3
    assert len(found.probes) == len(calls) < 15
    always = _search(
        lambda s: 1.0, base_rps=2.0, target=0.9, window=10, max_scale=8.0, rel_tol=0.02, progress=None
    )
    assert always.bound == "above_max"
    assert always.rps is None
    never = _search(
        lambda s: 0.0, base_rps=2.0, target=0.9, window=10, max_scale=8.0, rel_tol=0.02, progress=None
    )
    assert never.bound == "below_min"
    assert never.rps == 0.0


def test_capacity_of_pd_device_exceeds_cloud_only() -> None:
    workload = synthetic_default(seed=12, n_requests=600)
    setup = scenario()
    cloud = capacity_rps(workload, POLICIES["cloud-only"](), setup, window=600)
    split = capacity_rps(workload, POLICIES["pd-device"](), setup, window=600)
    assert cloud.bound == split.bound == "found"
    assert cloud.rps is not None
    assert split.rps is not None
    assert split.rps > cloud.rps
    cloud_decode = decode_capacity_rps(workload, POLICIES["cloud-only"](), setup, window=600)
    split_decode = decode_capacity_rps(workload, POLICIES["pd-device"](), setup, window=600)
    assert cloud_decode.rps is not None
    assert split_decode.rps is None or split_decode.rps > 2 * cloud_decode.rps
    device = decode_capacity_rps(workload, POLICIES["device-only"](), setup, window=600)
    assert device.bound == "above_max"
    again = capacity_rps(workload, POLICIES["cloud-only"](), setup, window=600)
    assert again == cloud
