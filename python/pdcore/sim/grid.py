"""The optimizer's choices against a grid search in the simulator: `grid_check` and its `GridPoint`.

It drives the simulator (`Scenario.run`) with `Replay` plans, one run per grid point, so it stands beside
the simulator, above the optimizer whose choices it checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pdcore._core import Plan
from pdcore.exceptions import InvalidInputError
from pdcore.optimize.optimizer import Choice, Optimizer
from pdcore.optimize.quality import DEFAULT_QUALITY_BUDGET
from pdcore.policies.replay import Replay
from pdcore.profiles.cloud import CloudProfile
from pdcore.profiles.device import DeviceProfile
from pdcore.profiles.network import NetworkProfile
from pdcore.sim.scenario import Scenario
from pdcore.slo import SLO, meets
from pdcore.traces.workload import Workload

__all__ = ["GridPoint", "grid_check"]

FloatArray = npt.NDArray[np.float64]


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


def _probes(lengths: Sequence[int], output_tokens: int) -> Workload:
    """One request per prompt length on an idle cloud: 1000 s apart, each answering ``output_tokens``."""
    n = len(lengths)
    return Workload(
        name="grid-check",
        arrival_s=np.arange(n, dtype=np.float64) * 1000.0,
        prompt_tokens=np.asarray(lengths, dtype=np.int64),
        output_tokens=np.full(n, output_tokens, dtype=np.int64),
        source="grid-check",
    )


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
    lengths = [int(n) for n in prompt_lengths]
    if not lengths or min(lengths) < 1:
        raise InvalidInputError("prompt_lengths is empty or has a length < 1; pass prompt lengths >= 1")
    grid = sorted(set(k_grid)) if k_grid is not None else None
    if grid is not None and (not grid or grid[0] < 0):
        raise InvalidInputError("k_grid is empty or negative; pass k values >= 0")
    workload = _probes(lengths, output_tokens)
    one_way_s = network.rtt_s / 2.0
    delays = np.full(len(lengths), one_way_s)
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

    def run(plans: list[Plan]) -> tuple[FloatArray, FloatArray]:
        res = scenario.run(workload, Replay(plans, name="grid"), one_way_s=delays).results
        cost = np.asarray(res["cloud_prefill_gpu_s"]) + np.asarray(res["cloud_decode_gpu_s"])
        return cost, np.asarray(res["max_gap_s"], dtype=np.float64)

    analytic_cost, analytic_gap = run([c.plan() for c in choices])
    best = _grid_optimum(run, optimizer, choices, lengths, grid, slo, one_way_s)
    points = []
    for i, length in enumerate(lengths):
        found, best_k, refine_grid, grid_cost = best[i]
        if not found:
            ratio = math.nan
        elif grid_cost == 0.0:
            ratio = 1.0 if analytic_cost[i] == 0.0 else math.inf
        else:
            ratio = float(analytic_cost[i]) / grid_cost
        points.append(
            GridPoint(
                prompt_tokens=length,
                k_analytic=-1 if choices[i].mode == "device" else choices[i].k,
                k_grid=best_k,
                cost_analytic_gpu_s=float(analytic_cost[i]),
                cost_grid_gpu_s=grid_cost,
                cost_ratio=ratio,
                analytic_max_gap_s=float(analytic_gap[i]),
                refine_analytic=choices[i].refine_ratio,
                refine_grid=refine_grid,
            )
        )
    return points


def _grid_optimum(
    run: Callable[[list[Plan]], tuple[FloatArray, FloatArray]],
    optimizer: Optimizer,
    choices: Sequence[Choice],
    lengths: Sequence[int],
    grid: Sequence[int] | None,
    slo: SLO,
    one_way_s: float,
) -> list[tuple[bool, int, float, float]]:
    """Per prompt, the cheapest grid point whose largest display gap meets the SLO: whether one did, its
    ``k`` (-1: the device alone, or none did), its refinement ratio and its cloud GPU-seconds."""
    n = len(lengths)
    found = [False] * n
    best_k = [-1] * n
    best_r = [1.0] * n
    best_cost = [math.inf] * n
    # where the device alone answers no later than the cloud, that is a grid point too (k = -1)
    dev_cost, dev_gap = run([Plan("device", max_tpot_s=slo.max_tpot_s)] * n)
    for i in range(n):
        if choices[i].mode == "device" and meets(dev_gap[i], slo.max_tpot_s):
            found[i], best_cost[i] = True, float(dev_cost[i])
    for r in optimizer.allowed_ratios:  # descending: equal costs keep the larger ratio
        if grid is None:
            top = max(optimizer.choose_at(length, r, one_way_s=one_way_s).k for length in lengths)
            ks: Sequence[int] = list(range(top * 2 + 32 + 1))
        else:
            ks = grid
        for k in ks:
            cost, gap = run([Plan("pd", k=k, refine_ratio=r, max_tpot_s=slo.max_tpot_s)] * n)
            for i in range(n):
                if meets(gap[i], slo.max_tpot_s) and cost[i] < best_cost[i]:
                    found[i], best_k[i], best_r[i], best_cost[i] = True, k, r, float(cost[i])
    return list(zip(found, best_k, best_r, best_cost, strict=True))
