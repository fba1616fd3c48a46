"""Cluster sizing at the SLO (`pdcore.sim.sizing`) and ``pdcore size``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pdcore import InvalidInputError
from pdcore.cli import app
from pdcore.policies import make_policy
from pdcore.profiles import load_cloud_profile, load_device_profile, network_preset
from pdcore.sim import Scenario
from pdcore.sim.sizing import DEFAULT_MAX_REPLICAS, size_cloud, sizing_attainment, whole_cloud_gain
from pdcore.sim.unattainable import attainment_bound, meetable
from pdcore.slo import SLO, within_objective
from pdcore.traces import LONG_ANSWER_TOKENS, synthetic_default, synthetic_long_answer

runner = CliRunner()
# four times the conversation trace's rate: more than one replica in each pool for cloud-only
WORKLOAD = synthetic_default(seed=0, n_requests=1000, rate_rps=22.0)


def scenario(deployment: str = "disaggregated", **changes: object) -> Scenario:
    return Scenario(
        cloud=load_cloud_profile("llama3-8b-a100"),
        device=load_device_profile("llama32-3b-w4a16-8elite-genie"),
        network=network_preset("wifi"),
        deployment=deployment,
    ).replace(**changes)


def attainment(sc: Scenario, policy: str, **replicas: int) -> float:
    delays = sc.one_way_s(len(WORKLOAD), 0)
    result = sc.replace(**replicas).run(WORKLOAD, make_policy(policy), seed=0, one_way_s=delays)
    return sizing_attainment(result)


@pytest.mark.parametrize("policy", ["cloud-only", "pd-device"])
def test_a_sized_disaggregated_cloud_meets_the_slo_and_one_replica_fewer_does_not(policy: str) -> None:
    sc = scenario()
    found = size_cloud(WORKLOAD, make_policy(policy), sc, target=0.9)
    assert found.bound == "found"
    p, d = found.prefill_replicas, found.decode_replicas
    assert found.gpus == (p + d) * sc.cloud.gpus_per_replica
    # checked independently of the search
    assert attainment(sc, policy, prefill_replicas=p, decode_replicas=d) >= 0.9
    if p > 1:
        assert attainment(sc, policy, prefill_replicas=p - 1, decode_replicas=d) < 0.9
    if d > 1:
        assert attainment(sc, policy, prefill_replicas=p, decode_replicas=d - 1) < 0.9
    assert len(found.fewer) == (p > 1) + (d > 1)
    assert all(a < 0.9 for a in found.fewer.values())


def test_cloud_only_needs_more_than_one_replica_per_pool_here() -> None:
    found = size_cloud(WORKLOAD, make_policy("cloud-only"), scenario(), target=0.9)
    assert found.prefill_replicas > 1, found
    assert found.decode_replicas > 1, found
    pd = size_cloud(WORKLOAD, make_policy("pd-device"), scenario(), target=0.9)
    gain = whole_cloud_gain(found, pd)
    assert gain is not None
    assert gain >= 1.0
    assert found.goodput_per_gpu_rps == pytest.approx(found.rate_rps * found.attainment / found.gpus)


def test_a_sized_colocated_cloud_meets_the_slo_and_one_replica_fewer_does_not() -> None:
    sc = scenario("colocated")
    found = size_cloud(WORKLOAD, make_policy("pd-device"), sc, target=0.9)
    assert found.bound == "found"
    assert found.replicas > 1
    assert attainment(sc, "pd-device", replicas=found.replicas) >= 0.9
    assert attainment(sc, "pd-device", replicas=found.replicas - 1) < 0.9
    assert found.cloud == f"x{found.replicas}"


def test_a_policy_without_cloud_work_needs_no_gpu_or_cannot_be_served() -> None:
    found = size_cloud(WORKLOAD, make_policy("device-only"), scenario(), target=0.9)
    assert found.bound in ("no_cloud", "unattainable")
    assert found.probes == 1
    # a TTFT objective the phone meets: no cloud at all
    loose = scenario(slo=scenario().slo.__class__(ttft_s=60.0, max_tpot_s=0.2))
    free = size_cloud(WORKLOAD, make_policy("device-only"), loose, target=0.9)
    assert (free.bound, free.gpus, free.goodput_per_gpu_rps) == ("no_cloud", 0, None)


def test_an_unreachable_slo_is_unattainable() -> None:
    # colocated: a prefill chunk in every iteration holds decode gaps over 10 ms at any size
    sc = scenario("colocated", slo=scenario().slo.__class__(ttft_s=2.0, max_tpot_s=0.01))
    found = size_cloud(WORKLOAD, make_policy("cloud-only"), sc, target=0.99, max_replicas=4)
    assert (found.bound, found.gpus) == ("unattainable", None)


def test_bad_settings_name_the_flag() -> None:
    with pytest.raises(InvalidInputError, match="--target"):
        size_cloud(WORKLOAD, make_policy("cloud-only"), scenario(), target=1.5)
    with pytest.raises(InvalidInputError, match="--max-replicas"):
        size_cloud(WORKLOAD, make_policy("cloud-only"), scenario(), max_replicas=0)


def test_the_long_answer_workload_is_seeded_and_long() -> None:
    w = synthetic_long_answer(seed=4, n_requests=500)
    assert w == synthetic_long_answer(seed=4, n_requests=500)
    low, high = LONG_ANSWER_TOKENS
    assert w.output_tokens.min() >= low
    assert w.output_tokens.max() <= high
    np.testing.assert_array_equal(w.prompt_tokens, synthetic_default(seed=4, n_requests=500).prompt_tokens)


def test_size_command_on_the_embedded_default(tmp_path: Path) -> None:
    out = tmp_path / "sizing.json"
    result = runner.invoke(app, ["size", "--rate-scale", "4", "--limit", "800", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "cloud-only" in result.output
    assert "pd-device" in result.output
    assert "gain" in result.output
    document = json.loads(out.read_text(encoding="utf-8"))
    sized = document["sizing"]
    assert set(sized) == {"cloud-only", "pd-device"}
    per_replica = load_cloud_profile("llama3-8b-a100").gpus_per_replica
    for entry in sized.values():
        assert entry["bound"] == "found"
        assert entry["attainment"] >= 0.9
        assert entry["gpus"] == (entry["prefill_replicas"] + entry["decode_replicas"]) * per_replica
    gain = document["whole_cloud_gain"]["pd-device"]
    assert gain == pytest.approx(sized["cloud-only"]["gpus"] / sized["pd-device"]["gpus"], rel=1e-4)
    bad = runner.invoke(app, ["size", "--target", "0", "--limit", "50"])
    assert bad.exit_code == 2
    assert "--target" in bad.output
    bad = runner.invoke(app, ["size", "--workload", "poems"])
    assert bad.exit_code == 2
    assert "--workload" in bad.output


def test_an_impossible_gap_is_proved_unattainable_without_a_probe() -> None:
    """``--max-tpot 1e-6``: no token follows another within a microsecond on any device or replica, so the
    answer comes from the bound at once (the search once simulated every cloud up to 64P+64D)."""
    sc = scenario(slo=SLO(ttft_s=1.0, max_tpot_s=1e-6))
    start = time.perf_counter()
    found = size_cloud(WORKLOAD, make_policy("pd-device"), sc, target=0.9)
    assert time.perf_counter() - start < 5.0
    assert (found.bound, found.gpus, found.probes, found.goodput_per_gpu_rps) == (
        "unattainable",
        None,
        0,
        None,
    )
    assert found.attainment == attainment_bound(WORKLOAD, sc).attainment < 0.9
    assert "even alone on an idle cloud" in found.reason
    assert found.describe()["cloud"] is None
    assert "reason" not in found.describe()


BOUND_CASES = [
    (policy, ttft_s, max_tpot_s)
    for ttft_s, max_tpot_s in ((0.5, 0.012), (0.2, 0.016), (0.02, 0.05))
    for policy in ("cloud-only", "pd-device", "device-only", "spec-decode", "race", "kv-transfer")
    if policy != "pd-device" or max_tpot_s == 0.012  # its planner is slow on tight gaps: one case
]


@pytest.mark.parametrize(("policy", "ttft_s", "max_tpot_s"), BOUND_CASES)
def test_a_request_the_bound_rules_out_misses(policy: str, ttft_s: float, max_tpot_s: float) -> None:
    """Checked against the simulator on a large idle cloud: every request the bound rules out misses."""
    sc = scenario(slo=SLO(ttft_s=ttft_s, max_tpot_s=max_tpot_s), prefill_replicas=16, decode_replicas=16)
    workload = WORKLOAD.limit(120)
    result = sc.run(workload, make_policy(policy), seed=0)
    met = within_objective(result.results["ttft_s"], ttft_s) & within_objective(
        result.results["max_gap_s"], max_tpot_s
    )
    possible = meetable(workload, sc)
    assert not np.any(met & ~possible)
    assert sizing_attainment(result) <= attainment_bound(workload, sc).attainment


def test_a_doubling_that_no_longer_helps_ends_the_search() -> None:
    """A TTFT objective the network alone breaks (20 ms round trip): more replicas stop helping early."""
    sc = scenario(slo=SLO(ttft_s=0.02, max_tpot_s=0.05))
    found = size_cloud(WORKLOAD.limit(400), make_policy("pd-device"), sc, target=0.9)
    assert found.bound == "unattainable"
    assert found.probes < 7  # 1, 2, 4, ..., 64 replicas a pool
    assert "more replicas cannot help" in found.reason
    assert found.prefill_replicas < DEFAULT_MAX_REPLICAS


def test_size_command_says_why_no_cloud_meets_an_impossible_slo() -> None:
    start = time.perf_counter()
    result = runner.invoke(app, ["size", "--max-tpot", "1e-6"])
    assert result.exit_code == 0, result.output
    assert time.perf_counter() - start < 30.0
    assert "unattainable" in result.output
    for policy in ("cloud-only", "pd-device"):
        assert f"note: {policy}: no cloud of up to 64 replicas per pool meets" in result.output
    assert "fix: relax --max-tpot" in result.output
