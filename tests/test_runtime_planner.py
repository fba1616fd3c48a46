"""One planner, simulated and live: the simulator's built-in P/D-Device policy and `Session.plan_request`
plan the same request the same way (both through the Rust ``cost::planner``)."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Iterator

import numpy as np
import pytest

pytest.importorskip("httpx", reason="the live runtime needs the `device` extra (httpx, httpx-sse)")
pytest.importorskip("httpx_sse", reason="the live runtime needs the `device` extra (httpx, httpx-sse)")

from pdcore._core import PlanOptimizer, plan_turn
from pdcore.profiles import load_cloud_profile, load_device_profile, network_preset
from pdcore.runtime import CloudClient, Device, Session
from pdcore.runtime.testing import FakeEngine, unused_url
from pdcore.sim import Scenario
from pdcore.traces import synthetic_multi_turn

CLOUD = dataclasses.replace(load_cloud_profile("llama3-8b-a100"), prefix_cache_tokens=10**7)
DEVICE = dataclasses.replace(load_device_profile("llama32-3b-w4a16-8elite-genie"), session_cache_bytes=10**12)
MAX_TPOT = 0.05
LIVE_MODES = {"pd": "pd-device", "device": "device-only", "cloud": "cloud-only"}


@pytest.fixture
def sides() -> Iterator[tuple[CloudClient, Device]]:
    cloud = CloudClient(unused_url())
    device = Device(lambda: FakeEngine("unused"))
    try:
        yield cloud, device
    finally:
        asyncio.run(cloud.aclose())
        device.close()


def test_the_simulator_and_the_session_plan_a_request_alike(sides: tuple[CloudClient, Device]) -> None:
    cloud, device = sides
    work = synthetic_multi_turn(seed=5, n_requests=40, rate_rps=0.05)
    # one request at a time, so that the simulated cloud is idle at every arrival (no queue to price)
    work = dataclasses.replace(work, arrival_s=np.arange(len(work), dtype=np.float64) * 600.0)
    scenario = Scenario(cloud=CLOUD, device=DEVICE, network=network_preset("wifi"), deployment="colocated")
    table = scenario.run(work, "pd-device", seed=1).columns()
    optimizer = PlanOptimizer(device=DEVICE.cost, cloud=CLOUD.cost, max_tpot_s=MAX_TPOT)
    seen: set[tuple[str, bool]] = set()
    for i in range(len(work)):
        prompt = int(table["prompt_tokens"][i])
        device_cached = int(table["device_cached_tokens"][i])
        cloud_cached = int(table["cloud_cached_tokens"][i])
        # what the live runtime is told: the cloud's first token and pace (here, as the cost model has them)
        first = optimizer.first_token_s(
            prompt, one_way_s=float(table["one_way_s"][i]), cloud_cached_tokens=cloud_cached
        )
        session = Session(
            cloud=cloud,
            device=device,
            device_profile=DEVICE,
            max_tpot_s=MAX_TPOT,
            pacing_margin_s=0.0,
            k_margin=0.0,
            max_tokens=4096,
            first_token_s=first,
            cloud_tpot_s=CLOUD.cost.lone_decode_s(prompt),
        )
        plan, _, k = session.plan_request(
            prompt, device_cached_tokens=device_cached, cloud_cached_tokens=cloud_cached
        )
        simulated = str(table["mode"][i])
        assert plan == LIVE_MODES[simulated], (i, prompt, device_cached, cloud_cached)
        if simulated == "pd":
            # the simulated cloud decodes k tokens after the first, or the answer's rest when shorter
            answer = int(table["output_tokens"][i])
            assert min(k, answer - 1) == table["cloud_decode_tokens"][i], (i, prompt, k)
            assert table["refine_ratio"][i] == 1.0
        seen.add((simulated, device_cached + cloud_cached > 0))
    # first turns and follow-ups, split and device-alone
    assert {("pd", False), ("pd", True), ("device", True)} <= seen, seen


def test_plan_request_keeps_its_reasons(sides: tuple[CloudClient, Device]) -> None:
    cloud, device = sides
    session = Session(cloud=cloud, device=device, device_profile=DEVICE, first_token_s=0.3, max_tokens=64)
    plan, reason, k = session.plan_request(100)
    assert plan == "device-only"
    assert k == 0
    assert reason.startswith("the device's own first token (")
    assert "comes before the cloud's (300 ms)" in reason
    plan, reason, k = session.plan_request(6000)
    assert (plan, k) == ("cloud-only", 63)
    assert reason.startswith("the device never catches up on a 6000-token prompt: the cloud serves")
    reasons = {session.plan_request(prompt)[1].split(" on a ")[0] for prompt in range(3000, 6000, 100)}
    assert any(why.startswith("the device needs k = ") and why.endswith(" of 64") for why in reasons), reasons
    plan, reason, k = session.plan_request(1000)
    assert plan == "pd-device"
    assert reason == f"k = {k} from the catch-up rule"
    assert k > 0
    # a cached prefix on the device leaves it little to prefill: it answers alone
    assert session.plan_request(1000, device_cached_tokens=990)[0] == "device-only"


def test_the_session_pads_k_and_scales_the_profile_by_its_speed(sides: tuple[CloudClient, Device]) -> None:
    cloud, device = sides
    session = Session(cloud=cloud, device=device, device_profile=DEVICE, first_token_s=0.3, max_tokens=256)
    _, _, k = session.plan_request(1000)
    direct = plan_turn(1000, device=DEVICE.cost, max_tpot_s=session.pace_s, first_token_s=0.3, max_k=256)
    assert k == math.ceil(direct.k * (1 + 0.2)) == session.resolve_k(1000)
    session.speed_ratio = 1.5  # learned: the device takes 1.5 times its profile's prefill
    slower = session.plan_request(1000)[2]
    assert slower > k
