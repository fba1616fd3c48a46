"""Runs on threads (``pdcore.sim.threads``, ``pdcore.sim.runner.policy_reports``): the same reports as one
after another, bit for bit, in the order of the items; bad worker counts and failures reported."""

from __future__ import annotations

import json
import os
import threading

import pytest

from pdcore import InvalidInputError
from pdcore.policies import POLICIES, make_policy
from pdcore.profiles import load_cloud_profile, load_device_profile, network_preset
from pdcore.sim import Scenario, dumps
from pdcore.sim.runner import RUN_COST, longest_first, policy_reports
from pdcore.sim.threads import default_workers, on_threads
from pdcore.traces import synthetic_default

SCENARIO = Scenario(
    cloud=load_cloud_profile("llama3-8b-a100"),
    device=load_device_profile("llama32-3b-w4a16-8elite-genie"),
    network=network_preset("wifi"),
)


def test_policy_reports_on_threads_equal_one_after_another() -> None:
    workload = synthetic_default(seed=3, n_requests=400)
    names = list(POLICIES)
    serial = [SCENARIO.run(workload, make_policy(name), seed=5).aggregate() for name in names]
    for workers in (1, 2, 4):
        policies = [make_policy(name) for name in names]
        found = policy_reports(SCENARIO, workload, policies, seed=5, workers=workers)
        assert json.loads(dumps(found)) == json.loads(dumps(serial))
        assert dumps(found) == dumps(serial)


def test_policy_reports_call_back_on_the_calling_thread() -> None:
    workload = synthetic_default(seed=0, n_requests=50)
    policies = [make_policy(name) for name in ("cloud-only", "pd-device", "race")]
    events: list[tuple[str, str, bool]] = []
    caller = threading.get_ident()

    def started(policy: object) -> None:
        events.append(("start", policy.name, threading.get_ident() == caller))  # type: ignore[attr-defined]

    def finished(policy: object) -> None:
        events.append(("end", policy.name, threading.get_ident() == caller))  # type: ignore[attr-defined]

    policy_reports(SCENARIO, workload, policies, workers=2, started=started, finished=finished)
    assert sorted(event[:2] for event in events) == sorted(
        (kind, p.name) for kind in ("start", "end") for p in policies
    )
    assert all(on_caller for *_, on_caller in events)


def test_on_threads_keeps_the_order_of_the_items() -> None:
    assert on_threads(lambda x: x * x, list(range(20)), workers=3) == [x * x for x in range(20)]
    assert on_threads(lambda x: x, [], workers=2) == []
    assert default_workers(0) == 1
    assert default_workers(100) >= 1
    # two 1M-request runs fit the memory budget at once (one per CPU, at most two)
    assert default_workers(9, requests=1_000_000) == min(os.cpu_count() or 1, 2)
    assert default_workers(9, requests=2_000_000) == 1


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_on_threads_refuses_a_bad_worker_count(workers: object) -> None:
    with pytest.raises(InvalidInputError, match=r"workers = .*fix: pass a whole number"):
        on_threads(lambda x: x, [1], workers=workers)  # type: ignore[arg-type]


def test_on_threads_raises_what_an_item_raises() -> None:
    def boom(x: int) -> int:
        if x == 2:
            raise InvalidInputError("item 2 is bad; fix: drop it")
        return x

    with pytest.raises(InvalidInputError, match="item 2 is bad"):
        on_threads(boom, [1, 2, 3], workers=2)


def test_on_threads_starts_the_items_in_the_order_given_and_keeps_theirs() -> None:
    started: list[int] = []
    found = on_threads(lambda x: x * 10, [0, 1, 2, 3], workers=1, started=started.append, order=[2, 0, 3, 1])
    assert started == [2, 0, 3, 1]
    assert found == [0, 10, 20, 30]


@pytest.mark.parametrize("order", [[0, 1], [0, 1, 1], [0, 1, 3], [2, 1, 0, -1]])
def test_on_threads_refuses_an_order_that_is_not_one_of_the_items(order: list[int]) -> None:
    with pytest.raises(InvalidInputError, match="list each index from 0 to 2 once"):
        on_threads(lambda x: x, [0, 1, 2], workers=1, order=order)


def test_policy_runs_start_longest_first_and_report_in_the_order_given() -> None:
    class Custom(type(make_policy("cloud-only"))):  # type: ignore[misc]  # reason: a policy not in RUN_COST
        name = "custom"

    policies = [make_policy(name) for name in ("device-only", "cloud-only", "spec-decode")] + [Custom()]
    assert [policies[k].name for k in longest_first(policies)] == [
        "custom",
        "spec-decode",
        "cloud-only",
        "device-only",
    ]
    assert set(RUN_COST) == set(POLICIES)
    workload = synthetic_default(seed=0, n_requests=30)
    started: list[str] = []
    found = policy_reports(
        SCENARIO, workload, policies[:3], workers=1, started=lambda policy: started.append(policy.name)
    )
    assert started == ["spec-decode", "cloud-only", "device-only"]
    serial = [SCENARIO.run(workload, make_policy(p.name)).aggregate() for p in policies[:3]]
    assert dumps(found) == dumps(serial)
