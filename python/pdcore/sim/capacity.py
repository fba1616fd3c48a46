"""Cloud capacity: the highest request rate at which a policy still meets its objectives.

Both searches replay a bounded window of the workload (its first ``window`` requests) at a range of
speeds: arrival times divided by a rate scale ``s``, so the offered rate is ``s * base_rps`` with
``base_rps = window / (last arrival - first arrival)``. A rate *passes* when the measured attainment is at
least ``target``.

- `capacity_rps`: the whole cloud of the scenario; attainment is SLO attainment (TTFT and mean TPOT).
- `decode_capacity_rps`: a disaggregated cloud with one decode replica and as many prefill replicas as
  keep the prefill pool at most half busy at that rate (so prefill is never the bottleneck); attainment
  is the share of requests whose cloud-side mean time between decode tokens meets the TPOT SLO. The wait
  for a decode slot is inside the first of those gaps, so an overloaded decode replica fails it.

The search: from ``s = 1``, double (or halve) until the outcome flips, within
``[1 / max_scale, max_scale]``, then bisect in log space until the bracket is within ``rel_tol``. The
answer is the lower end of the bracket, the highest rate observed to pass. A policy that passes at
``max_scale`` (one that puts little or no load on the cloud, like device-only) reports
``bound = "above_max"`` and no rate; one that fails even at ``1 / max_scale`` (an SLO it cannot meet at
any load) reports ``bound = "below_min"`` and a rate of 0. Attainment need not be monotone in the rate;
the search assumes it is near the boundary.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from pdcore.exceptions import InvalidInputError
from pdcore.policies.base import Policy
from pdcore.sim.metrics import cloud_tpot_attainment
from pdcore.sim.result import SimResult
from pdcore.sim.scenario import Scenario
from pdcore.traces.workload import Workload

__all__ = ["DEFAULT_TARGET", "DEFAULT_WINDOW", "Capacity", "capacity_rps", "decode_capacity_rps"]

DEFAULT_TARGET = 0.9
"""Default attainment a rate must reach to pass."""

DEFAULT_WINDOW = 1000
"""Default number of requests replayed per probe."""

_PREFILL_UTILIZATION = 0.5

Progress = Callable[[float, bool], None]
"""Called after each probe with the rate (requests per second) and whether it passed."""


@dataclass(frozen=True)
class Capacity:
    """The outcome of a capacity search.

    Attributes:
        rps: The highest rate found to pass, requests per second; None when ``bound == "above_max"``.
        bound: ``"found"``, ``"above_max"`` (passes at the highest rate tried) or ``"below_min"`` (fails at
            the lowest; ``rps`` is 0).
        target: The attainment a rate had to reach.
        window: Requests replayed per probe.
        base_rps: The window's own rate (scale 1).
        max_scale: The search stayed within ``[base_rps / max_scale, base_rps * max_scale]``.
        probes: ``(rate_rps, attainment)`` of every probe, in the order run.
    """

    rps: float | None
    bound: Literal["found", "above_max", "below_min"]
    target: float
    window: int
    base_rps: float
    max_scale: float
    probes: tuple[tuple[float, float], ...]

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (the ``capacity`` objects of a report)."""
        return {
            "rps": self.rps,
            "bound": self.bound,
            "target": self.target,
            "window": self.window,
            "base_rps": self.base_rps,
            "min_rps_tried": self.base_rps / self.max_scale,
            "max_rps_tried": self.base_rps * self.max_scale,
            "probes": len(self.probes),
        }


def _window(workload: Workload, window: int) -> tuple[Workload, float]:
    if isinstance(window, bool) or not isinstance(window, int) or window < 2:
        raise InvalidInputError(f"--capacity-window = {window!r}; fix: pass at least 2 requests, e.g. 1000")
    part = workload.limit(window)
    span = float(part.arrival_s[-1])
    if len(part) < 2 or span <= 0.0:
        raise InvalidInputError(
            f"workload {workload.name!r}: the first {len(part)} requests arrive at one instant, so no rate "
            "can be scaled; fix: use a workload whose requests are spread in time or a larger window"
        )
    return part, len(part) / span


def _search(
    probe: Callable[[float], float],
    *,
    base_rps: float,
    target: float,
    window: int,
    max_scale: float,
    rel_tol: float,
    progress: Progress | None,
) -> Capacity:
    if not (0.0 < target <= 1.0):
        raise InvalidInputError(
            f"--capacity-target = {target!r}; fix: pass an attainment in (0, 1], e.g. 0.9"
        )
    if not (math.isfinite(max_scale) and max_scale > 1.0):
        raise InvalidInputError(f"max_scale = {max_scale!r}; fix: pass a finite number above 1")
    if not (math.isfinite(rel_tol) and rel_tol > 0.0):
        raise InvalidInputError(f"rel_tol = {rel_tol!r}; fix: pass a finite number above 0, e.g. 0.02")
    probes: list[tuple[float, float]] = []
    outcome: dict[float, bool] = {}

    def passes(scale: float) -> bool:
        if scale not in outcome:
            attainment = probe(scale)
            outcome[scale] = attainment >= target
            probes.append((scale * base_rps, attainment))
            if progress is not None:
                progress(scale * base_rps, outcome[scale])
        return outcome[scale]

    def result(rps: float | None, bound: Literal["found", "above_max", "below_min"]) -> Capacity:
        return Capacity(rps, bound, target, window, base_rps, max_scale, tuple(probes))

    if passes(1.0):
        low, high = 1.0, 2.0
        while passes(high):
            if high >= max_scale:
                return result(None, "above_max")
            low, high = high, min(high * 2.0, max_scale)
    else:
        low, high = 0.5, 1.0
        while not passes(low):
            if low <= 1.0 / max_scale:
                return result(0.0, "below_min")
            low, high = max(low / 2.0, 1.0 / max_scale), low
    while high / low > 1.0 + rel_tol:
        middle = math.sqrt(low * high)
        if passes(middle):
            low = middle
        else:
            high = middle
    return result(low * base_rps, "found")


def capacity_rps(
    workload: Workload,
    policy: Policy,
    scenario: Scenario,
    *,
    seed: int = 0,
    target: float = DEFAULT_TARGET,
    window: int = DEFAULT_WINDOW,
    max_scale: float = 256.0,
    rel_tol: float = 0.02,
    progress: Progress | None = None,
) -> Capacity:
    """The highest rate at which the scenario's cloud meets the SLO for ``target`` of the requests.

    Args:
        workload: The workload; its first ``window`` requests are replayed.
        policy: The policy.
        scenario: The environment (deployment and replicas as given).
        seed: Seed of the network delays (the same delays at every rate).
        target: The SLO attainment a rate must reach.
        window: Requests replayed per probe.
        max_scale: The search stays within ``[1 / max_scale, max_scale]`` times the window's rate.
        rel_tol: Relative width of the final bracket.
        progress: Called after each probe.

    Returns:
        The capacity (module docstring for the bounds).

    Raises:
        InvalidInputError: A setting is out of range or the window has no time span.
    """
    part, base_rps = _window(workload, window)
    delays = scenario.one_way_s(len(part), seed)

    def probe(scale: float) -> float:
        result = scenario.run(part.scaled(scale), policy, seed=seed, one_way_s=delays)
        return float(result.slo_met().mean())

    return _search(
        probe,
        base_rps=base_rps,
        target=target,
        window=len(part),
        max_scale=max_scale,
        rel_tol=rel_tol,
        progress=progress,
    )


def decode_scenario(scenario: Scenario, workload: Workload, rate_rps: float) -> Scenario:
    """The disaggregated cloud of the decode-capacity search at ``rate_rps``: one decode replica and
    ``ceil(rate * mean idle prefill time / 0.5)`` prefill replicas (at least 1)."""
    prompts = np.unique(workload.prompt_tokens, return_counts=True)
    mean_prefill = float(
        sum(
            scenario.cloud.cost.lone_prefill_s(int(tokens)) * int(count)
            for tokens, count in zip(*prompts, strict=True)
        )
        / len(workload)
    )
    prefill_replicas = max(1, math.ceil(rate_rps * mean_prefill / _PREFILL_UTILIZATION))
    return scenario.replace(deployment="disaggregated", prefill_replicas=prefill_replicas, decode_replicas=1)


def decode_capacity_rps(
    workload: Workload,
    policy: Policy,
    scenario: Scenario,
    *,
    seed: int = 0,
    target: float = DEFAULT_TARGET,
    window: int = DEFAULT_WINDOW,
    max_scale: float = 256.0,
    rel_tol: float = 0.02,
    progress: Progress | None = None,
) -> Capacity:
    """The highest rate one decode replica sustains with the cloud-side TPOT SLO met for ``target`` of
    the requests (arguments as `capacity_rps`; the scenario's deployment and replicas are replaced)."""
    part, base_rps = _window(workload, window)
    delays = scenario.one_way_s(len(part), seed)

    def probe(scale: float) -> float:
        setup = decode_scenario(scenario, part, scale * base_rps)
        result: SimResult = setup.run(part.scaled(scale), policy, seed=seed, one_way_s=delays)
        return cloud_tpot_attainment(result.results, result.slo)

    return _search(
        probe,
        base_rps=base_rps,
        target=target,
        window=len(part),
        max_scale=max_scale,
        rel_tol=rel_tol,
        progress=progress,
    )
