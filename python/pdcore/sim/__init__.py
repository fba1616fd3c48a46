"""Trace-driven simulation: run a workload under a policy, reduce the results, measure cloud capacity."""

from __future__ import annotations

from pdcore.sim.capacity import DEFAULT_TARGET, DEFAULT_WINDOW, Capacity, capacity_rps, decode_capacity_rps
from pdcore.sim.grid import GridPoint, grid_check
from pdcore.sim.metrics import aggregate, dumps
from pdcore.sim.runner import (
    DEFAULT_KV_LINK_BYTES_PER_S,
    DEPLOYMENTS,
    MODES,
    SERVED_BY,
    Scenario,
    SimResult,
    simulate,
)
from pdcore.slo import DEFAULT_MAX_TPOT_S, DEFAULT_QOE_TOKENS_PER_S, DEFAULT_TTFT_SLO_S, SLO

__all__ = [
    "DEFAULT_KV_LINK_BYTES_PER_S",
    "DEFAULT_MAX_TPOT_S",
    "DEFAULT_QOE_TOKENS_PER_S",
    "DEFAULT_TARGET",
    "DEFAULT_TTFT_SLO_S",
    "DEFAULT_WINDOW",
    "DEPLOYMENTS",
    "MODES",
    "SERVED_BY",
    "SLO",
    "Capacity",
    "GridPoint",
    "Scenario",
    "SimResult",
    "aggregate",
    "capacity_rps",
    "decode_capacity_rps",
    "dumps",
    "grid_check",
    "simulate",
]
