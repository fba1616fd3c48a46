"""Where P/D-Device's k tokens are decoded: the decode pool or the prefill instance (`Plan.k_site`)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdcore import InvalidInputError
from pdcore._core import CloudCost, Plan
from pdcore.optimize import Optimizer
from pdcore.policies import CloudLoad, PDDevice
from pdcore.profiles import load_cloud_profile, load_device_profile, network_preset
from pdcore.sim import SLO, Scenario
from pdcore.slo import within_objective
from pdcore.traces import Workload, synthetic_default

CLOUD = load_cloud_profile("llama3-8b-a100")
PHONE = load_device_profile("llama32-3b-w4a16-8elite-genie")
WIFI = network_preset("wifi")


def scenario(**changes: object) -> Scenario:
    return Scenario(cloud=CLOUD, device=PHONE, network=WIFI).replace(**changes)


def test_a_plan_carries_its_site() -> None:
    assert Plan("pd", k=3).k_site == "pool"
    plan = Plan("pd", k=3, k_site="prefill")
    assert plan.k_site == "prefill"
    assert plan != Plan("pd", k=3)
    assert "k_site='prefill'" in repr(plan)
    with pytest.raises(InvalidInputError, match="k_site"):
        Plan("pd", k=3, k_site="decode")


def test_bad_sites_name_the_setting() -> None:
    with pytest.raises(InvalidInputError, match="--k-sites"):
        scenario(k_sites="anywhere")
    with pytest.raises(InvalidInputError, match="k_site"):
        PDDevice(k_site="anywhere")
    # a fixed site the cloud does not offer is refused before the run, naming both settings
    with pytest.raises(InvalidInputError, match=r"k_site = 'prefill'.*--k-sites"):
        PDDevice(k_site="prefill").prepare(scenario(k_sites="pool").context())
    PDDevice(k_site="prefill").prepare(scenario(deployment="colocated").context())


def test_the_prefill_step_is_the_cost_models_iteration() -> None:
    cost = CLOUD.cost
    budget = cost.max_tokens_per_iteration
    assert cost.prefill_instance_decode_s(1000, 0.0, budget) == pytest.approx(
        cost.lone_decode_s(1000), rel=1e-12
    )
    full = cost.iteration_s([budget - 1], [1000])
    assert cost.prefill_instance_decode_s(1000, 1e9, budget) == pytest.approx(full, rel=1e-12)
    assert isinstance(cost, CloudCost)
    # while it decodes, a prefill instance keeps one iteration within the largest gap
    capped = cost.prefill_decode_budget(0.05)
    assert 1 < capped < budget
    assert cost.prefill_instance_decode_s(4096, 1e9, capped) <= 0.05 < full
    assert scenario(k_sites="both").prefill_decode_budget() == capped
    assert scenario(k_sites="pool").prefill_decode_budget() == 0
    with pytest.raises(InvalidInputError, match="max_tpot"):
        cost.prefill_decode_budget(0.0)


def optimizer(sites: str, link: float | None) -> Optimizer:
    return Optimizer(
        device=PHONE, cloud=CLOUD, slo=SLO(max_tpot_s=0.05), k_sites=sites, kv_link_bytes_per_s=link
    )


def test_the_optimizer_says_why_it_placed_the_tokens() -> None:
    # a 1 GB/s link: a 200-token prompt's cache takes 26 ms to cross, and the prefill instance is done
    # with its 3 tokens before the pool's first would arrive
    slow = optimizer("both", 1e9).choose(200, one_way_s=0.02)
    assert (slow.mode, slow.k, slow.k_site, slow.k_site_reason) == ("pd", 3, "prefill", "few")
    assert slow.plan().k_site == "prefill"
    # a 2000-token prompt's 27 tokens outlast its 0.26 s transfer: the pool (the cloud bridges it)
    long = optimizer("both", 1e9).choose(2000, one_way_s=0.02)
    assert (long.k, long.k_site, long.k_site_reason) == (27, "pool", "pool-first")
    # a fast link: both within the gap, the pool (it leaves the prefill instance's chunks whole), idle or
    # beside a queue
    for queued in (0, 5000):
        load = CloudLoad(waiting_prefill_tokens=queued)
        both = optimizer("both", 25e9).choose(2000, one_way_s=0.02, load=load)
        assert (both.k_site, both.k_site_reason) == ("pool", "pool-first")
    # nothing to place for a prompt the device answers alone
    short = optimizer("both", 1e9).choose(8, one_way_s=0.02)
    assert (short.mode, short.k_site_reason) == ("device", "no-decode")
    # one site offered: there, and said so
    only = optimizer("pool", None).choose(2000, one_way_s=0.02)
    assert (only.k_site, only.k_site_reason) == ("pool", "only-site")
    with pytest.raises(InvalidInputError, match="kv_link_bytes_per_s"):
        optimizer("both", None)


@settings(max_examples=25, deadline=None)
@given(
    requests=st.lists(
        st.tuples(st.floats(0.0, 0.5), st.integers(1, 3000), st.integers(1, 300)), min_size=1, max_size=30
    ),
    k=st.integers(0, 200) | st.just(-1),
    site=st.sampled_from(["prefill", "auto"]),
    deployment=st.sampled_from(["disaggregated", "colocated"]),
)
def test_every_token_is_displayed_once_wherever_the_k_tokens_are_decoded(
    requests: list[tuple[float, int, int]], k: int, site: str, deployment: str
) -> None:
    arrival = np.cumsum([0.0] + [r[0] for r in requests[1:]])
    workload = Workload(
        name="property",
        source="hypothesis",
        arrival_s=arrival,
        prompt_tokens=np.array([r[1] for r in requests], dtype=np.int64),
        output_tokens=np.array([r[2] for r in requests], dtype=np.int64),
    )
    policy = PDDevice(k="auto" if k < 0 else k, k_site=site)
    sc = scenario(deployment=deployment, k_sites="both", kv_link_bytes_per_s=2e9)
    result = sc.run(workload, policy, seed=1)
    np.testing.assert_array_equal(result.results["displayed_tokens"], workload.output_tokens)
    assert (result.results["ttft_s"] > 0).all()


def test_every_shipped_cloud_profile_prices_and_cites_the_cache_write() -> None:
    from pdcore.profiles import list_cloud_profiles

    for name in list_cloud_profiles():
        profile = load_cloud_profile(name)
        assert 0.0 < profile.kv_write_token_s < 1e-5, name  # the A40 (696 GB/s) writes 7B MHA at 1.5 us
        assert profile.kv_source is not None, name
        assert "write_token_s derived" in profile.kv_source, name
        # the write is a sliver of the fitted prefill slope it is part of
        assert profile.kv_write_token_s < 0.02 * profile.prefill_token_s, name


def test_a_profile_without_the_write_prices_none() -> None:
    from pathlib import Path

    import pdcore.profiles
    from pdcore.profiles import CloudProfile

    shipped = Path(pdcore.profiles.__file__).parent / "data" / "cloud" / "llama3-8b-a100.toml"
    body = shipped.read_text(encoding="utf-8")
    assert "write_token_s = " in body
    stripped = "\n".join(line for line in body.splitlines() if not line.startswith("write_token_s"))
    assert CloudProfile.from_toml_text(stripped).kv_write_token_s == 0.0


def test_the_bridge_keeps_the_largest_gap_within_the_objective_by_design() -> None:
    # a seeded workload at 1.5x the default rate: with the decode pool only, 3% of P/D-Device's requests
    # show a gap above 50 ms (the first decode token waits for the KV transfer and a decode slot); with
    # both sites the prefill instance bridges those while their caches cross
    workload = synthetic_default(seed=2, n_requests=1500).scaled(1.5)
    pool_only = scenario(k_sites="pool").run(workload, "pd-device", seed=0)
    both = scenario(k_sites="both").run(workload, "pd-device", seed=0)
    slo = SLO(max_tpot_s=0.05)
    late = ~within_objective(np.asarray(pool_only.results["max_gap_s"]), slo.max_tpot_s)
    assert late.mean() > 0.01
    assert within_objective(np.asarray(both.results["max_gap_s"]), slo.max_tpot_s).all()
    sites = both.columns()["k_site"]
    assert {"pool", "prefill", "bridge", "none"} == set(sites.tolist())
    assert set(pool_only.columns()["k_site"].tolist()) <= {"pool", "none"}
    # the bridge holds a request on its prefill instance only while its cache crosses: TTFT moves little
    assert np.median(both.results["ttft_s"]) <= np.median(pool_only.results["ttft_s"]) * 1.1
    np.testing.assert_array_equal(both.results["displayed_tokens"], workload.output_tokens)
