"""The report's "Latency, cost and energy" section: what each policy's answers cost, beside their TTFT.

Per workload, the first ``window`` requests are run under every policy of the main table and under
P/D-Device with weights on cost and on energy (`pdcore.optimize.Optimizer`: among plans that meet the
SLOs, the smallest ``TTFT + cost_weight x $ per 1k requests + energy_weight x device J``). Each run is one
point: its TTFT (p50 and p99), its cloud dollars per 1,000 requests and its device energy and battery
share per request (`pdcore.sim.accounting`, at the deployment's prices: the profiles' cited figures).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pdcore.policies import make_policy
from pdcore.report.study import POLICIES
from pdcore.sim.scenario import Scenario
from pdcore.traces import Workload

__all__ = ["COST_WEIGHTS", "ENERGY_WEIGHTS", "tradeoff_section"]

COST_WEIGHTS = (1.0, 3.0, 10.0)
"""P/D-Device's weights on cloud dollars in the section: seconds of TTFT per $ per 1,000 requests."""

ENERGY_WEIGHTS = (0.001, 0.01, 0.1)
"""P/D-Device's weights on device energy in the section: seconds of TTFT per joule."""

FULL_WINDOW = 2000
QUICK_WINDOW = 300
"""Requests run per point (the first of each workload)."""

Progress = Callable[[str, int, int], None]


def _point(label: str, policy: str, scenario: Scenario, workload: Workload, seed: int) -> dict[str, Any]:
    report = scenario.run(workload, make_policy(policy), seed=seed).aggregate()
    cost = report["cost"]
    return {
        "label": label,
        "policy": policy,
        "cost_weight": 0.0 if "cost_weight=" not in policy else float(policy.rsplit("=", 1)[1]),
        "energy_weight": 0.0 if "energy_weight=" not in policy else float(policy.rsplit("=", 1)[1]),
        "ttft_p50_s": report["ttft_s"]["p50"],
        "ttft_p99_s": report["ttft_s"]["p99"],
        "slo_attainment": report["slo_attainment"],
        "usd_per_1k_requests": cost["usd_per_1k_requests"],
        "device_mj_per_request": cost["device_mj_per_request"]["mean"],
        "device_compute_mj_per_request": cost["device_compute_mj_per_request"],
        "battery_pct_per_request": cost["battery_pct_per_request"],
        "bytes_down_per_request": cost["bytes_down_per_request"],
    }


def tradeoff_section(
    workloads: Mapping[str, Workload],
    scenario: Scenario,
    *,
    seed: int,
    quick: bool,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The section: one point per policy and per weight setting, per workload, in ``scenario`` (module
    docstring)."""
    window = QUICK_WINDOW if quick else FULL_WINDOW
    variants = [(name, name) for name in POLICIES]
    variants += [(f"pd-device, cost weight {w:g}", f"pd-device:cost_weight={w:g}") for w in COST_WEIGHTS]
    variants += [
        (f"pd-device, energy weight {w:g}", f"pd-device:energy_weight={w:g}") for w in ENERGY_WEIGHTS
    ]
    total = len(workloads) * len(variants)
    done = 0
    points: dict[str, list[dict[str, Any]]] = {}
    for key, workload in workloads.items():
        head = workload.limit(window)
        rows = []
        for label, policy in variants:
            rows.append(_point(label, policy, scenario, head, seed))
            done += 1
            if progress is not None:
                progress("latency, cost and energy", done, total)
        points[key] = rows
    priced = scenario.prices()
    return {
        "window": window,
        "cost_weights": list(COST_WEIGHTS),
        "energy_weights": list(ENERGY_WEIGHTS),
        "prices": {
            "usd_per_gpu_hour": None if priced is None else priced.usd_per_gpu_hour,
            "battery_wh": None if priced is None else priced.battery_wh,
        },
        "points": points,
    }
