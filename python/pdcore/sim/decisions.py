"""The decision loop of a policy planned in Python: the simulator runs until a request arrives, the policy
plans it, and the loop goes on.

A built-in policy gives the simulator its rule (`Policy.native`) and never comes here; a custom policy,
and any run that records the plans of chosen requests (`pdcore.sim.Scenario.record_timelines`), does.
Both paths plan with the same cost model and give identical results.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import numpy.typing as npt

from pdcore._core import Plan, Simulator
from pdcore.exceptions import InvalidInputError
from pdcore.policies.base import CloudLoad, Policy, RequestInfo
from pdcore.traces.workload import Workload

__all__ = ["plan_each_request", "request_info"]


def request_info(
    simulator: Simulator, workload: Workload, index: int, arrival: float, prompt: int, delay: float
) -> RequestInfo:
    """What a policy sees of request ``index`` at its decision point, cached tokens included."""
    if not workload.multi_turn:
        return RequestInfo(index, arrival, prompt, delay)
    device_cached, cloud_cached = simulator.cached(index)
    return RequestInfo(
        index,
        arrival,
        prompt,
        delay,
        session=int(workload.session[index]),
        turn=int(workload.turn[index]),
        device_cached_tokens=device_cached,
        cloud_cached_tokens=cloud_cached,
    )


def plan_each_request(
    simulator: Simulator,
    policy: Policy | Sequence[Policy],
    workload: Workload,
    delays: npt.NDArray[np.float64],
    *,
    record: Collection[int] = (),
    classes: npt.NDArray[np.int64] | None = None,
) -> dict[int, tuple[str, int]]:
    """Runs the decision loop to the end, ``policy`` planning every request; with a fleet, ``policy`` is
    one policy per class (`pdcore.sim.fleet_runs.class_policies`) and ``classes`` each request's class.

    Returns:
        The ``(mode, k)`` of the plans of the ``record`` requests (``k`` -1 outside a split).

    Raises:
        InvalidInputError: The policy returned something other than a `pdcore.Plan`.
    """
    arrivals = workload.arrival_s.tolist()
    prompts = workload.prompt_tokens.tolist()
    delay_list = delays.tolist()
    policies = [policy] if isinstance(policy, Policy) else list(policy)
    plan_of = [p.plan for p in policies]
    class_of = [0] * len(arrivals) if classes is None or len(policies) == 1 else classes.tolist()
    load = simulator.cloud_load
    decide = simulator.decide
    next_decision = simulator.next_decision
    wanted = set(record)
    plans: dict[int, tuple[str, int]] = {}
    while (index := next_decision()) is not None:
        decision = plan_of[class_of[index]](
            request_info(simulator, workload, index, arrivals[index], prompts[index], delay_list[index]),
            CloudLoad.from_mapping(load()),
        )
        if not isinstance(decision, Plan):
            raise InvalidInputError(
                f"{type(policies[class_of[index]]).__name__}.plan() returned {decision!r} for request "
                f"{index}; fix: return a pdcore.Plan"
            )
        if index in wanted:
            plans[index] = (decision.mode, decision.k if decision.mode in {"pd", "naive"} else -1)
        decide(index, decision)
    return plans
