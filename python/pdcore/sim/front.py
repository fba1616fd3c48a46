"""Pareto fronts: the candidates no other candidate beats on every objective at once.

A point is a tuple of objectives, each oriented so that larger is better (a cost or a latency enters
negated). Point ``a`` *dominates* ``b`` when ``a`` is at least as good on every objective and better on
at least one; the front is the points no point dominates. Equal points do not dominate each other, so
both stay on the front. A missing point (None) is never on the front and dominates nothing; a NaN
objective counts as the worst value (ours: a figure that could not be measured must not win).

This is the front a capacity planner reads in the configuration tools for disaggregated serving: NVIDIA's
aiconfigurator (ai-dynamo/aiconfigurator, ``docs/cli_user_guide.md``) prints a "Pareto frontier:
tokens/s/gpu vs tokens/s/user" of its searched prefill:decode placements; DistServe (OSDI 2024) ranks
placements by goodput per GPU. `pdcore.sim.planner_search` builds the points as (goodput per GPU,
-TTFT p90, per-user tokens/s).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["dominates", "pareto_front"]

Point = tuple[float, ...]


def _worst_for_nan(point: Point) -> Point:
    return tuple(-math.inf if math.isnan(value) else value for value in point)


def dominates(a: Point, b: Point) -> bool:
    """Whether ``a`` is at least as good as ``b`` on every objective and better on one (larger is better,
    NaN worst)."""
    if len(a) != len(b):
        raise ValueError(f"points of {len(a)} and {len(b)} objectives cannot be compared")
    a, b = _worst_for_nan(a), _worst_for_nan(b)
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(x > y for x, y in zip(a, b, strict=True))


def pareto_front(points: Sequence[Point | None]) -> list[bool]:
    """For each point, whether it is on the front of ``points`` (module docstring); O(n^2), as the
    candidates of a sizing are tens."""
    present = [point for point in points if point is not None]
    return [point is not None and not any(dominates(other, point) for other in present) for point in points]
