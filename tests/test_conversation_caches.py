"""The device's session cache and the cloud's prefix cache in the simulator (pdcore.sim.caches rules)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdcore.policies import make_policy
from pdcore.profiles import load_cloud_profile, load_device_profile, network_preset
from pdcore.sim import Scenario
from pdcore.traces import Workload, load_mooncake, synthetic_multi_turn
from test_cost_model import runs_alike

CLOUD = load_cloud_profile("llama3-8b-a100")
DEVICE = load_device_profile("llama32-3b-w4a16-8elite-genie")


def scenario(*, device_bytes: int | None = None, cloud_tokens: int | None = None) -> Scenario:
    device = DEVICE if device_bytes is None else dataclasses.replace(DEVICE, session_cache_bytes=device_bytes)
    cloud = CLOUD if cloud_tokens is None else dataclasses.replace(CLOUD, prefix_cache_tokens=cloud_tokens)
    return Scenario(cloud=cloud, device=device, network=network_preset("wifi"))


def single_turn(work: Workload) -> Workload:
    return Workload(
        name=work.name,
        arrival_s=work.arrival_s,
        prompt_tokens=work.prompt_tokens,
        output_tokens=work.output_tokens,
        source=work.source,
    )


WORK = synthetic_multi_turn(seed=5, n_requests=300)


def test_a_follow_ups_device_prefill_is_exactly_the_uncached_part() -> None:
    run = scenario(device_bytes=10**12).run(WORK, "device-only", seed=1)
    r = run.results
    np.testing.assert_array_equal(r["device_prefill_tokens"], WORK.prompt_tokens - r["device_cached_tokens"])
    follow = np.flatnonzero(WORK.parent >= 0)
    assert len(follow) > 20
    p = WORK.parent[follow]
    # the device decoded the parent's answer: it holds prompt + answer - 1, all of it shared
    want = np.minimum(WORK.prompt_tokens[p] + WORK.output_tokens[p] - 1, WORK.prompt_tokens[follow] - 1)
    np.testing.assert_array_equal(r["device_cached_tokens"][follow], want)
    assert (r["device_cached_tokens"][WORK.parent < 0] == 0).all()
    # the cloud did nothing: no prefix cache hit
    assert (r["cloud_cached_tokens"] == 0).all()
    # a cached prefix makes the follow-up's first token earlier than a cold one of the same prompt
    cold = scenario(device_bytes=0).run(WORK, "device-only", seed=1).results
    assert (r["ttft_s"][follow] < cold["ttft_s"][follow]).all()


def test_the_cloud_prefill_covers_only_uncached_blocks() -> None:
    run = scenario().run(WORK, "cloud-only", seed=1).results
    follow = WORK.parent >= 0
    assert (run["cloud_cached_tokens"][follow] > 0).any()
    assert (run["cloud_cached_tokens"] % WORK.block_tokens == 0).all()
    assert (run["cloud_cached_tokens"] < WORK.prompt_tokens).all()
    cold = scenario(cloud_tokens=0).run(WORK, "cloud-only", seed=1)
    assert run["cloud_prefill_gpu_s"].sum() < cold.results["cloud_prefill_gpu_s"].sum()


def test_a_follow_up_uses_only_the_cache_that_exists_when_it_starts(tmp_path: Path) -> None:
    """Follow-ups 0.1 s after their first turns, whose 2,000-token prompts take the device 1.5 s: the
    parent's cache does not exist yet, so the follow-up prefills its whole prompt (it reused 2,049 tokens
    and answered 43 ms after arriving before the rule); the same follow-up a minute later reuses it."""
    rows = []
    for session, gap_ms in enumerate((100, 60_000)):
        ids = [10 * session + j for j in range(4)]
        rows.append(
            {"timestamp": 120_000 * session, "input_length": 2000, "output_length": 50, "hash_ids": ids}
        )
        follow = [*ids, 10 * session + 8, 10 * session + 9]
        rows.append(
            {
                "timestamp": 120_000 * session + gap_ms,
                "input_length": 2100,
                "output_length": 50,
                "hash_ids": follow,
            }
        )
    path = tmp_path / "follow-ups.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    work = load_mooncake(path)
    assert work.parent.tolist() == [-1, 0, -1, 2]
    r = scenario().run(work, "device-only", seed=1).results
    assert r["ttft_s"][0] > 1.0
    assert r["device_cached_tokens"].tolist() == [0, 0, 0, 2049]
    assert r["ttft_s"][1] > r["ttft_s"][0]
    assert r["ttft_s"][3] < 0.1


@pytest.mark.parametrize("policy", ["device-only", "cloud-only", "pd-device", "race", "kv-transfer"])
def test_no_budget_is_the_single_turn_run_bit_for_bit(policy: str) -> None:
    off = scenario(device_bytes=0, cloud_tokens=0)
    cached = off.run(WORK, policy, seed=2)
    plain = off.run(single_turn(WORK), policy, seed=2)
    for key, column in plain.results.items():
        np.testing.assert_array_equal(cached.results[key], column, err_msg=key)
    assert cached.summary == plain.summary


@pytest.mark.parametrize("policy", ["pd-device", "pd-device:refine_ratio=auto", "naive-split"])
def test_native_and_python_plans_agree_with_caches(policy: str) -> None:
    runs_alike(make_policy(policy), WORK, scenario())


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**16), budget=st.sampled_from([1, 2, 8, 64]))
def test_caching_never_adds_device_prefill(seed: int, budget: int) -> None:
    work = synthetic_multi_turn(seed=seed, n_requests=120, rate_rps=2.0)
    for policy in ("device-only", "pd-device"):
        warm = scenario(device_bytes=budget * 2**20).run(work, policy, seed=seed).results
        cold = scenario(device_bytes=0, cloud_tokens=0).run(work, policy, seed=seed).results
        if policy == "device-only":
            assert (warm["device_prefill_tokens"] <= cold["device_prefill_tokens"]).all()
        assert (warm["cloud_cached_tokens"] >= 0).all()
        assert (work.prompt_tokens - warm["cloud_cached_tokens"] <= work.prompt_tokens).all()
    cloud_warm = scenario().run(work, "cloud-only", seed=seed).summary
    cloud_cold = scenario(cloud_tokens=0).run(work, "cloud-only", seed=seed).summary
    assert cloud_warm["cloud_gpu_s_prefill"] <= cloud_cold["cloud_gpu_s_prefill"] + 1e-9
