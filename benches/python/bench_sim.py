"""The native simulator against its pure-Python port (``sim_baseline.py``): equality and speed.

Every test runs the same ~300 synthetic requests through ``pdcore._core.Simulator`` and
``sim_baseline.Simulator`` with the same plans and requires identical per-request results (every column,
bit for bit) and identical run counters, for each mode, a mix of modes and both deployments, on the
shipped cloud profile (one replica per pool) and on a tight one (two replicas per pool, where the KV
cache, the batch size and the token budget bind). At 8 req/s requests queue for the cloud (up to five
waiting with the shipped profile; the tight colocated cloud is overloaded and fills its KV cache), so
queueing, admission, chunked prefill and the choice of replica all take part.

Run as smoke tests by default (``--benchmark-disable``: each benchmark runs once); measure with
``python -m pytest benches/python/bench_sim.py --benchmark-enable``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

import sim_baseline
from pdcore._core import CloudConfig, DeviceCost, Plan, Simulator
from pdcore.profiles import load_cloud_profile, load_device_profile, network_preset
from pdcore.sim import Scenario
from pdcore.traces import synthetic_default, synthetic_multi_turn

N_REQUESTS = 300
RATE_RPS = 8.0
SPLIT_KS = (0, 1, 5, 20, 60, 200, 1000)
TIGHT = {
    "replicas": 2,
    "prefill_replicas": 2,
    "decode_replicas": 2,
    "max_batch_size": 8,
    "max_tokens_per_iteration": 256,
    "kv_cache_tokens": 4000,
}


def scenario(deployment: str) -> Scenario:
    """The CLI's default environment: a phone with a 3B model, Llama-3-8B on an A100, Wi-Fi; the cloud
    offers both sites to the ``k`` tokens so that the splits below decode some on the prefill instance."""
    return Scenario(
        cloud=load_cloud_profile("llama3-8b-a100"),
        device=load_device_profile("llama32-3b-w4a16-8elite-genie"),
        network=network_preset("wifi"),
        deployment=deployment,
        k_sites="both",
    )


def inputs(deployment: str, tight: bool, n: int = N_REQUESTS) -> dict[str, Any]:
    """Keyword arguments shared by both simulators, with the cloud and device as plain mappings."""
    sc = scenario(deployment)
    cloud, device = sim_baseline.scenario_configs(sc)
    if tight:
        cloud |= TIGHT
    workload = synthetic_default(seed=3, n_requests=n, rate_rps=RATE_RPS)
    return {
        "arrival_s": workload.arrival_s,
        "prompt_tokens": workload.prompt_tokens,
        "output_tokens": workload.output_tokens,
        "one_way_s": sc.one_way_s(n, 0),
        "cloud": cloud,
        "device": device,
        "bandwidth_bps": sc.network.bandwidth_bps,
        "qoe_ttft_s": sc.slo.ttft_s,
        "qoe_tokens_per_s": sc.qoe_tokens_per_s,
        "prompt_bytes_per_token": sc.cloud.prompt_bytes_per_token,
        "stream_bytes_per_token": sc.cloud.stream_bytes_per_token,
    }


def plans(mode: str, n: int = N_REQUESTS) -> list[Plan]:
    """One plan per request; splits vary ``k``, the refined prompt, the smallest display gap and where the
    ``k`` tokens are decoded."""
    if mode in ("pd", "naive", "disco"):
        return [
            Plan(
                mode,
                k=SPLIT_KS[i % len(SPLIT_KS)],
                refine_ratio=1.0 if i % 3 else 0.6,
                min_tpot_s=0.0 if i % 2 else 0.005,
                max_tpot_s=0.05,
                k_site="prefill" if i % 5 in (1, 2) else "pool",
            )
            for i in range(n)
        ]
    if mode == "spec":
        return [
            Plan(
                "spec",
                gamma=1 + i % 6,
                alpha=(0.0, 0.5, 0.7, 0.9, 1.0)[i % 5],
                min_tpot_s=0.0 if i % 2 else 0.005,
                max_tpot_s=0.05,
            )
            for i in range(n)
        ]
    if mode == "mixed":
        modes = sim_baseline.MODES
        return [
            Plan("spec", gamma=4, alpha=0.7)
            if modes[(i * 7) % len(modes)] == "spec"
            else Plan(modes[(i * 7) % len(modes)], k=SPLIT_KS[i % len(SPLIT_KS)])
            for i in range(n)
        ]
    return [Plan(mode, max_tpot_s=0.05) for _ in range(n)]


Outcome = tuple[dict[str, Any], dict[str, float]]
"""``results()`` and ``summary()`` of one run."""


def native(kw: dict[str, Any]) -> Simulator:
    args = dict(kw)
    args["cloud"] = CloudConfig(**kw["cloud"])
    args["device"] = DeviceCost(**kw["device"])
    return Simulator(**args)


def python(kw: dict[str, Any]) -> sim_baseline.Simulator:
    return sim_baseline.Simulator(**kw)


def replay(sim: Any, chosen: Sequence[Plan]) -> Outcome:
    """Runs the decision loop with fixed plans; returns ``results()`` and ``summary()``."""
    next_decision, decide = sim.next_decision, sim.decide
    while (i := next_decision()) is not None:
        decide(i, chosen[i])
    return dict(sim.results()), dict(sim.summary())


def assert_identical(
    a: tuple[dict[str, Any], dict[str, float]], b: tuple[dict[str, Any], dict[str, float]]
) -> None:
    (ra, sa), (rb, sb) = a, b
    assert sorted(ra) == sorted(rb)
    for key in ra:
        x, y = np.asarray(ra[key]), np.asarray(rb[key])
        assert x.dtype == y.dtype, key
        same = (x == y) | (np.isnan(x) & np.isnan(y)) if x.dtype.kind == "f" else x == y
        assert same.all(), f"{key}: first difference at request {int(np.argmin(same))}"
    assert sa.keys() == sb.keys()
    for key, value in sa.items():
        assert value == sb[key] or (np.isnan(value) and np.isnan(sb[key])), key


def check_coverage(mode: str, results: dict[str, Any], kw: dict[str, Any], chosen: Sequence[Plan]) -> None:
    """The workload reaches the paths the mode has: hand-offs, cancelled streams, cloud-only answers."""
    assert (results["displayed_tokens"] >= 1).all()
    if mode == "pd":
        handoff = results["handoff_pos"]
        quota = np.minimum(np.array([p.k for p in chosen]) + 1, kw["output_tokens"])
        assert (handoff > 0).any()
        assert (results["device_decode_tokens"] == 0).any()
        assert (results["cloud_decode_tokens"] + 1 < quota).any()
        if kw["cloud"]["deployment"] == "disaggregated":
            # the pool, the prefill instance and the bridge between them all decode some requests
            assert {0, 1, 3} <= set(np.asarray(results["k_site"]).tolist())
    if mode == "disco":
        # migrations, device-won races and answers the cloud finished first
        assert (results["handoff_pos"] > 0).any()
        assert (results["handoff_pos"] == 0).any()
        assert (results["device_decode_tokens"] == 0).any()
    if mode == "spec":
        # rounds verified on the cloud after drafts on the device, every token shown once
        assert (results["device_decode_tokens"] > 0).all()
        assert (results["cloud_tokens_kept"] == kw["output_tokens"]).all()
    if mode in ("cloud", "race"):
        assert (results["cloud_decode_gpu_s"] > 0).any()
    if mode == "device":
        assert (results["cloud_prefill_gpu_s"] == 0).all()


@pytest.mark.parametrize("tight", [False, True], ids=["profile", "tight"])
@pytest.mark.parametrize("deployment", ["colocated", "disaggregated"])
@pytest.mark.parametrize("mode", [*sim_baseline.MODES, "mixed"])
def test_python_port_equals_native(mode: str, deployment: str, tight: bool) -> None:
    kw = inputs(deployment, tight)
    chosen = plans(mode)
    got = replay(native(kw), chosen)
    assert_identical(got, replay(python(kw), chosen))
    check_coverage(mode, got[0], kw, chosen)


@pytest.mark.parametrize("rushed", [False, True], ids=["paced", "rushed"])
@pytest.mark.parametrize("deployment", ["colocated", "disaggregated"])
@pytest.mark.parametrize("mode", [*sim_baseline.MODES, "mixed"])
def test_python_port_equals_native_with_caches(mode: str, deployment: str, rushed: bool) -> None:
    """Conversations: the device's session cache (a small budget, so sessions are evicted) and the cloud's
    prefix cache give the same results in both, and the same cached lengths at every decision; rushed,
    the arrivals come 30 times sooner, so follow-ups arrive while their parents are still running and
    find only the part of their caches that exists."""
    kw = inputs(deployment, False)
    n = len(kw["arrival_s"])
    work = synthetic_multi_turn(seed=4, n_requests=n, rate_rps=RATE_RPS)
    kw |= {
        "arrival_s": work.arrival_s / (30.0 if rushed else 1.0),
        "prompt_tokens": work.prompt_tokens,
        "output_tokens": work.output_tokens,
        "session": work.session,
        "turn": work.turn,
        "parent": work.parent,
        "shared_prefix_tokens": work.shared_prefix_tokens,
        "block_offsets": work.block_offsets,
        "block_ids": work.block_ids,
        "block_tokens": work.block_tokens,
        "device_cache_tokens": 1500,
        "cloud_cache_tokens": 64 * work.block_tokens,
    }
    chosen = plans(mode, n)
    sims = native(kw), python(kw)
    while (i := sims[0].next_decision()) is not None:
        assert sims[1].next_decision() == i
        assert sims[0].cached(i) == sims[1].cached(i)
        for sim in sims:
            sim.decide(i, chosen[i])
    assert sims[1].next_decision() is None
    got = dict(sims[0].results()), dict(sims[0].summary())
    assert_identical(got, (dict(sims[1].results()), dict(sims[1].summary())))
    if mode in ("device", "pd", "kv-transfer") and not rushed:  # a race the cloud wins leaves nothing
        assert (got[0]["device_cached_tokens"] > 0).any()
    if mode != "device":
        assert (got[0]["cloud_cached_tokens"] > 0).any()


def test_cloud_load_matches_at_every_decision() -> None:
    kw = inputs("disaggregated", True)
    chosen = plans("mixed")
    sims = native(kw), python(kw)
    while (i := sims[0].next_decision()) is not None:
        assert sims[1].next_decision() == i
        assert dict(sims[0].cloud_load()) == sims[1].cloud_load()
        for sim in sims:
            sim.decide(i, chosen[i])
    assert sims[1].next_decision() is None


def bench(benchmark: Any, make: Callable[[dict[str, Any]], Any], mode: str, kind: str) -> None:
    kw = inputs("disaggregated", False)
    chosen = plans(mode)
    benchmark.group = f"simulator, {N_REQUESTS} requests, {mode}"
    benchmark.extra_info["implementation"] = kind
    got = benchmark(lambda: replay(make(kw), chosen))
    assert_identical(got, replay(native(kw) if kind == "python" else python(kw), chosen))


@pytest.mark.benchmark(group="simulator")
@pytest.mark.parametrize("mode", sim_baseline.MODES)
def test_simulator_native(benchmark: Any, mode: str) -> None:
    bench(benchmark, native, mode, "native")


@pytest.mark.benchmark(group="simulator")
@pytest.mark.parametrize("mode", sim_baseline.MODES)
def test_simulator_python(benchmark: Any, mode: str) -> None:
    bench(benchmark, python, mode, "python")
