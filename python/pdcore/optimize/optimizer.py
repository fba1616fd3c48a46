"""The per-request optimizer: P/D-Device's ``k``, pace and prompt refinement.

The paper (arXiv 2508.09035) describes "an algorithm to decide the best settings" but publishes none;
this formulation is pdcore's own.

Problem, per request (prompt length ``L``, one-way network delay ``d``, the cloud's current load):

    minimise   cloud cost = prefill(L) + k * (cost of one cloud decode token)
    subject to TTFT = the cloud's TTFT (the first displayed token is the cloud's),
               every display gap, the hand-off gap included, <= max_tpot (the TPOT SLO),
               quality drop of the refinement ratio r <= the quality budget.

The cloud prefills the whole prompt whatever ``k`` and ``r`` are, so the cost is minimised by the
smallest feasible ``k``. For a fixed ``r`` that is the catch-up fixed point
(`pdcore.optimize.catchup.solve_catchup`): the smallest ``n = k + 1`` such that the device has prefilled
the (refined) prompt plus the ``n`` received tokens by the time ``n`` tokens shown at ``max_tpot`` apart
run out, ``T(n) <= F + n * max_tpot``. The optimizer solves it for every allowed ``r`` and keeps the
smallest ``k`` (ties go to the larger ``r``, the better answer). The pace is ``max_tpot`` itself: it
stretches the buffer furthest, which is what makes ``k`` smallest; the speed controller then shows tokens
no slower than that. When the device's own first token comes no later than the cloud's (``P <= F``), the
request goes to the device alone (no cloud cost, TTFT no worse).

Load adaptation: ``F``, the arrival of the cloud's first token, is the round trip plus the cloud's
prefill on an idle replica plus a *lower bound* of the queueing delay: the prompt tokens waiting ahead of
the request beyond one iteration's token budget per prefill replica, at the per-token prefill cost,
``max(0, W - budget * R) * prefill_token_s / R``. A lower bound, because overestimating ``F`` is what
hurts: the cloud's tokens would then arrive earlier than planned and too few of them would run out
before the device is ready (a stall), while underestimating only costs cloud tokens. Chunked prefill
packs a new prompt into the iteration under way whenever the budget has room, so the queue's full
backlog (`CloudLoad.prefill_backlog_s`) often overstates the wait; the bound held for every request of
the Azure conversation trace in our checks. A queued cloud answers later, the device has more of a head
start, so ``k`` falls, and past the point where the device is faster the request stays on the device:
the cloud's queue drains itself. Refinement responds the other way: a refined prompt reaches the device
only with the first token, so under load ``r < 1`` loses its head start and ``r = 1`` wins.

Quality: the allowed ratios are those whose quality drop, as given in ``quality``, is within the budget;
``r = 1`` is the reference and always allowed. Which drop to give (the measured estimate or the upper
end of its 95% interval) is decided where the curve is read, `pdcore.optimize.quality`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pdcore._core import Plan
from pdcore.exceptions import InvalidInputError
from pdcore.optimize.catchup import DEFAULT_MAX_K, cloud_decode_step_s, cloud_prefill_s, solve_catchup
from pdcore.optimize.quality import DEFAULT_QUALITY_BUDGET, check_quality_budget, check_quality_mapping
from pdcore.profiles.cloud import CloudProfile
from pdcore.profiles.device import DeviceProfile
from pdcore.profiles.network import NetworkProfile
from pdcore.traces.workload import Workload

if TYPE_CHECKING:  # the policies and the simulator build on this module
    from pdcore.policies.base import CloudLoad
    from pdcore.sim.metrics import SLO

__all__ = ["Choice", "GridPoint", "Optimizer", "grid_check"]

_NS = 1e-9


@dataclass(frozen=True, slots=True)
class Choice:
    """The optimizer's settings for one request.

    Attributes:
        mode: ``"pd"`` (split between cloud and device) or ``"device"`` (the device alone is faster).
        k: Cloud decode tokens after the first (0 with ``"device"``).
        refine_ratio: Fraction of the prompt the device prefills.
        max_tpot: The display pace the buffer is planned at, seconds.
        first_token_s: Expected arrival of the cloud's first token, seconds from the request's arrival.
        device_ready_s: Expected time of the device's own first token, seconds from arrival.
        converged: False when the catch-up has no fixed point up to ``max_k`` (``k`` is then the cap).
    """

    mode: str
    k: int
    refine_ratio: float
    max_tpot: float
    first_token_s: float
    device_ready_s: float
    converged: bool

    def plan(self, min_tpot: float = 0.0) -> Plan:
        """The simulator's plan for this choice."""
        if self.mode == "device":
            return Plan("device", min_tpot=min_tpot, max_tpot=self.max_tpot)
        return Plan("pd", k=self.k, refine_ratio=self.refine_ratio, min_tpot=min_tpot, max_tpot=self.max_tpot)


class Optimizer:
    """Chooses ``k``, the pace and the refinement ratio per request (module docstring).

    Args:
        device: The device's profile.
        cloud: The cloud's profile.
        slo: The SLO; its ``tpot_s`` is the largest display gap allowed.
        refine_ratios: Candidate refinement ratios, each in (0, 1].
        quality: Quality drop (absolute, e.g. 0.01 = one point) at each ratio, the number the budget is
            checked against (`pdcore.optimize.quality.MeasuredQuality.checked` gives it from a measured
            curve, as its estimate or its 95% upper bound); a ratio without an entry is allowed only if
            it is 1.0.
        quality_budget: The largest quality drop accepted.
        load_adaptive: Add a lower bound of the cloud's queueing delay to the expected first-token time.
        prefill_replicas: Replicas that prefill, over which the queued prompt tokens are shared.
        max_k: The cap on ``k``.
    """

    def __init__(
        self,
        *,
        device: DeviceProfile,
        cloud: CloudProfile,
        slo: SLO,
        refine_ratios: Sequence[float] = (1.0,),
        quality: Mapping[float, float] | None = None,
        quality_budget: float = DEFAULT_QUALITY_BUDGET,
        load_adaptive: bool = True,
        prefill_replicas: int = 1,
        max_k: int = DEFAULT_MAX_K,
    ) -> None:
        if prefill_replicas < 1:
            raise InvalidInputError(f"prefill_replicas = {prefill_replicas!r}; pass a count >= 1")
        self.prefill_replicas = prefill_replicas
        self.quality_budget = check_quality_budget(quality_budget)
        ratios = sorted({float(r) for r in refine_ratios} | {1.0}, reverse=True)
        for r in ratios:
            if not (math.isfinite(r) and 0.0 < r <= 1.0):
                raise InvalidInputError(f"refine ratio {r!r}; pass kept fractions of the prompt in (0, 1]")
        self.quality: dict[float, float] = check_quality_mapping(quality or {})
        self.allowed_ratios: tuple[float, ...] = tuple(
            r for r in ratios if r == 1.0 or self.quality.get(r, math.inf) <= self.quality_budget
        )
        self.device = device
        self.cloud = cloud
        self.slo = slo
        self.load_adaptive = load_adaptive
        self.max_k = max_k

    def first_token_s(self, prompt_tokens: int, *, one_way_s: float, load: CloudLoad | None = None) -> float:
        """Expected arrival of the cloud's first token: round trip, lone prefill and a lower bound of the
        queueing delay (module docstring)."""
        queued = 0.0
        if load is not None and self.load_adaptive:
            replicas = self.prefill_replicas
            ahead = load.waiting_prefill_tokens - self.cloud.max_tokens_per_iteration * replicas
            queued = max(0.0, ahead) * self.cloud.prefill_token_s / replicas
        return 2.0 * one_way_s + cloud_prefill_s(prompt_tokens, self.cloud) + queued

    def choose(self, prompt_tokens: int, *, one_way_s: float, load: CloudLoad | None = None) -> Choice:
        """The settings for one request: the smallest ``k`` over the allowed ratios.

        Raises:
            InvalidInputError: A bad prompt length or delay.
        """
        first = self._first(prompt_tokens, one_way_s, load)
        cloud_tpot = cloud_decode_step_s(prompt_tokens, self.cloud)
        best: Choice | None = None
        for r in self.allowed_ratios:  # descending, so 1.0 first and ties keep the larger ratio
            choice = self._solve(prompt_tokens, first, r, cloud_tpot)
            if choice.mode == "device":
                return choice
            if best is None or choice.k < best.k:
                best = choice
        assert best is not None  # allowed_ratios always holds 1.0
        return best

    def choose_at(
        self, prompt_tokens: int, refine_ratio: float, *, one_way_s: float, load: CloudLoad | None = None
    ) -> Choice:
        """The settings with the refinement ratio fixed (allowed or not): the catch-up ``k`` at that ratio.

        Raises:
            InvalidInputError: A bad prompt length, ratio or delay.
        """
        first = self._first(prompt_tokens, one_way_s, load)
        return self._solve(prompt_tokens, first, refine_ratio, cloud_decode_step_s(prompt_tokens, self.cloud))

    def _first(self, prompt_tokens: int, one_way_s: float, load: CloudLoad | None) -> float:
        if not (math.isfinite(one_way_s) and one_way_s >= 0.0):
            raise InvalidInputError(
                f"one_way_s = {one_way_s!r}; pass the one-way network delay, seconds >= 0"
            )
        return self.first_token_s(prompt_tokens, one_way_s=one_way_s, load=load)

    def _solve(self, prompt_tokens: int, first: float, refine_ratio: float, cloud_tpot: float) -> Choice:
        pace = self.slo.tpot_s
        sol = solve_catchup(
            prompt_tokens,
            device=self.device,
            first_token_s=first,
            max_tpot=pace,
            refine_ratio=refine_ratio,
            cloud_tpot_s=cloud_tpot,
            max_k=self.max_k,
        )
        if sol.device_alone:
            return Choice("device", 0, 1.0, pace, first, sol.device_ready_s, True)
        return Choice("pd", sol.k, refine_ratio, pace, first, sol.device_ready_s, sol.converged)

    def table(self, prompt_lengths: Sequence[int], *, one_way_s: float) -> list[Choice]:
        """Choices over prompt lengths on an idle cloud (the ``pdcore optimize`` table)."""
        return [self.choose(int(n), one_way_s=one_way_s) for n in prompt_lengths]


@dataclass(frozen=True, slots=True)
class GridPoint:
    """The analytic choice against the cheapest one a simulator grid search finds, for one prompt length.

    Attributes:
        prompt_tokens: The prompt length.
        k_analytic: The optimizer's ``k`` (-1: the device alone).
        k_grid: The cheapest ``k`` on the grid whose simulated largest display gap meets the SLO
            (-1: the device alone, or none did; then ``cost_grid_gpu_s`` is 0 or infinite).
        cost_analytic_gpu_s: Simulated cloud GPU-seconds with the analytic choice.
        cost_grid_gpu_s: Simulated cloud GPU-seconds with ``k_grid`` at ``refine_grid``.
        cost_ratio: ``cost_analytic / cost_grid`` (1.0 is optimal; the target is <= 1.05).
        analytic_max_gap_s: Simulated largest display gap with the analytic choice.
        refine_analytic: The optimizer's refinement ratio.
        refine_grid: The refinement ratio of the grid optimum (1.0 for the device alone or none found).
    """

    prompt_tokens: int
    k_analytic: int
    k_grid: int
    cost_analytic_gpu_s: float
    cost_grid_gpu_s: float
    cost_ratio: float
    analytic_max_gap_s: float
    refine_analytic: float = 1.0
    refine_grid: float = 1.0


def grid_check(
    prompt_lengths: Sequence[int],
    *,
    device: DeviceProfile,
    cloud: CloudProfile,
    network: NetworkProfile,
    slo: SLO,
    deployment: str = "disaggregated",
    k_grid: Sequence[int] | None = None,
    output_tokens: int = 1024,
    refine_ratios: Sequence[float] = (1.0,),
    quality: Mapping[float, float] | None = None,
    quality_budget: float = DEFAULT_QUALITY_BUDGET,
) -> list[GridPoint]:
    """Checks the analytic choice against a grid search in the simulator, at equal SLO.

    Each prompt length is one request on an idle cloud (requests 1000 s apart) with the network's base
    one-way delay and an answer of ``output_tokens``. The grid is every ``k`` at every refinement ratio
    the quality budget allows (`Optimizer.allowed_ratios` of ``refine_ratios``, ``quality`` and
    ``quality_budget``), plus the device alone; for each grid point the simulator runs the whole set, and
    per prompt the grid optimum is the cheapest point whose largest display gap is within the TPOT SLO.
    The analytic choice is simulated the same way. Without ``k_grid`` the ``k`` range of a ratio runs to
    twice the largest analytic ``k`` at that ratio plus 32.

    Raises:
        InvalidInputError: No prompt lengths, a bad grid or bad refinement settings.
    """
    from pdcore.policies.base import Policy, RequestInfo  # noqa: PLC0415
    from pdcore.sim.runner import Scenario  # noqa: PLC0415

    lengths = [int(n) for n in prompt_lengths]
    if not lengths or min(lengths) < 1:
        raise InvalidInputError("prompt_lengths is empty or has a length < 1; pass prompt lengths >= 1")
    grid = sorted(set(k_grid)) if k_grid is not None else None
    if grid is not None and (not grid or grid[0] < 0):
        raise InvalidInputError("k_grid is empty or negative; pass k values >= 0")
    n = len(lengths)
    workload = Workload(
        name="grid-check",
        arrival_s=np.arange(n, dtype=np.float64) * 1000.0,
        prompt_tokens=np.asarray(lengths, dtype=np.int64),
        output_tokens=np.full(n, output_tokens, dtype=np.int64),
        source="grid-check",
    )
    one_way_s = network.rtt_s / 2.0
    one_way = np.full(n, one_way_s)
    optimizer = Optimizer(
        device=device,
        cloud=cloud,
        slo=slo,
        refine_ratios=refine_ratios,
        quality=quality,
        quality_budget=quality_budget,
        load_adaptive=False,
    )
    choices = [optimizer.choose(length, one_way_s=one_way_s) for length in lengths]
    scenario = Scenario(cloud=cloud, device=device, network=network, deployment=deployment, slo=slo)

    class _Fixed(Policy):
        name = "grid"

        def __init__(self, plans: list[Plan]) -> None:
            self.plans = plans

        def plan(self, req: RequestInfo, load: CloudLoad) -> Plan:
            return self.plans[req.index]

    def run(plans: list[Plan]) -> tuple[np.ndarray, np.ndarray]:
        res = scenario.run(workload, _Fixed(plans), one_way_s=one_way).results
        cost = np.asarray(res["cloud_prefill_gpu_s"]) + np.asarray(res["cloud_decode_gpu_s"])
        return cost, np.asarray(res["max_gap_s"])

    analytic_cost, analytic_gap = run([c.plan() for c in choices])
    found = [False] * n
    best_k = [-1] * n
    best_r = [1.0] * n
    best_cost = [math.inf] * n
    # where the device alone answers no later than the cloud, that is a grid point too (k = -1)
    dev_cost, dev_gap = run([Plan("device", max_tpot=slo.tpot_s)] * n)
    for i in range(n):
        if choices[i].mode == "device" and dev_gap[i] <= slo.tpot_s + _NS:
            found[i], best_cost[i] = True, float(dev_cost[i])
    for r in optimizer.allowed_ratios:  # descending: equal costs keep the larger ratio
        if grid is None:
            top = max(optimizer.choose_at(length, r, one_way_s=one_way_s).k for length in lengths)
            ks = list(range(top * 2 + 32 + 1))
        else:
            ks = grid
        for k in ks:
            cost, gap = run([Plan("pd", k=k, refine_ratio=r, max_tpot=slo.tpot_s)] * n)
            for i in range(n):
                if gap[i] <= slo.tpot_s + _NS and cost[i] < best_cost[i]:
                    found[i], best_k[i], best_r[i], best_cost[i] = True, k, r, float(cost[i])
    points = []
    for i, length in enumerate(lengths):
        k_analytic = -1 if choices[i].mode == "device" else choices[i].k
        grid_cost = best_cost[i]
        if not found[i]:
            ratio = math.nan
        elif grid_cost == 0.0:
            ratio = 1.0 if analytic_cost[i] == 0.0 else math.inf
        else:
            ratio = float(analytic_cost[i]) / grid_cost
        points.append(
            GridPoint(
                prompt_tokens=length,
                k_analytic=k_analytic,
                k_grid=best_k[i],
                cost_analytic_gpu_s=float(analytic_cost[i]),
                cost_grid_gpu_s=grid_cost,
                cost_ratio=ratio,
                analytic_max_gap_s=float(analytic_gap[i]),
                refine_analytic=choices[i].refine_ratio,
                refine_grid=best_r[i],
            )
        )
    return points
