"""`Replay`: plays back a given list of plans, one per request, by the request's index in the workload.

It serves where the plans are already decided elsewhere: the optimizer's grid check runs every grid
point as a replay, and ``pdcore validate`` replays the plans of its live requests in the simulator.
"""

from __future__ import annotations

from collections.abc import Sequence

from pdcore._core import Plan
from pdcore.exceptions import InvalidInputError
from pdcore.policies.base import CloudLoad, Policy, RequestInfo

__all__ = ["Replay"]


class Replay(Policy):
    """Plans request ``i`` of the workload with ``plans[i]``.

    Args:
        plans: One plan per request, in workload order.
        name: The label in reports.

    Example:
        >>> from pdcore._core import Plan
        >>> replay = Replay([Plan("cloud"), Plan("device")])
        >>> replay.plan(RequestInfo(1, 0.0, 100, 0.01), CloudLoad()).mode
        'device'
    """

    def __init__(self, plans: Sequence[Plan], *, name: str = "replay") -> None:
        if isinstance(plans, (str, bytes)) or not isinstance(plans, Sequence):
            raise InvalidInputError(
                f"plans = {plans!r} is not a list of plans; fix: pass one Plan per request"
            )
        wrong = next((i for i, plan in enumerate(plans) if not isinstance(plan, Plan)), None)
        if wrong is not None:
            raise InvalidInputError(
                f"plans[{wrong}] = {plans[wrong]!r} is not a Plan; fix: pass one pdcore._core.Plan a request"
            )
        if not isinstance(name, str):
            raise InvalidInputError(f"name = {name!r} is not text; fix: pass the label for reports as a str")
        self.plans = list(plans)
        self.name = name

    def plan(self, req: RequestInfo, load: CloudLoad) -> Plan:
        """The plan given for ``req.index``.

        Raises:
            InvalidInputError: The list holds no plan for this request.
        """
        if not 0 <= req.index < len(self.plans):
            raise InvalidInputError(
                f"{self.name}: no plan for request {req.index}, the replay holds {len(self.plans)}; "
                "fix: pass one plan per request of the workload"
            )
        return self.plans[req.index]
