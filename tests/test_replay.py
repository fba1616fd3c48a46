"""`Replay`: plans played back by request index, in the simulator and alone."""

from __future__ import annotations

import numpy as np
import pytest

from pdcore._core import Plan
from pdcore.exceptions import InvalidInputError
from pdcore.policies import CloudLoad, Replay, RequestInfo
from pdcore.profiles import load_cloud_profile, load_device_profile, network_preset
from pdcore.sim import Scenario
from pdcore.traces import Workload


def _workload(n: int) -> Workload:
    return Workload(
        name="replay",
        arrival_s=np.arange(n, dtype=np.float64) * 100.0,
        prompt_tokens=np.full(n, 256, dtype=np.int64),
        output_tokens=np.full(n, 32, dtype=np.int64),
        source="test",
    )


def test_each_request_gets_its_own_plan() -> None:
    scenario = Scenario(
        cloud=load_cloud_profile("llama3-8b-a100"),
        device=load_device_profile("llama32-3b-w4a16-8elite-genie"),
        network=network_preset("wifi"),
    )
    plans = [Plan("cloud"), Plan("device"), Plan("pd", k=4)]
    result = scenario.run(_workload(3), Replay(plans))
    # served_by: 0 cloud, 1 device, 2 both
    assert np.asarray(result.results["served_by"]).tolist() == [0, 1, 2]


def test_a_short_list_names_the_request_and_the_fix() -> None:
    replay = Replay([Plan("cloud")], name="live-replay")
    assert replay.plan(RequestInfo(0, 0.0, 10, 0.01), CloudLoad()).mode == "cloud"
    with pytest.raises(InvalidInputError, match=r"live-replay: no plan for request 1, the replay holds 1"):
        replay.plan(RequestInfo(1, 0.0, 10, 0.01), CloudLoad())
