"""Part 4 of ``sim_report.py``: the native simulator against the pure-Python port (``sim_baseline.py``).

Each policy's plans are recorded from a native run, then both simulators replay them, construction to
``results()`` included; the results must be identical.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import sim_baseline
from pdcore._core import CloudConfig, DeviceCost, Plan, Simulator
from pdcore.policies import make_policy
from pdcore.policies.base import CloudLoad, RequestInfo
from pdcore.sim import Scenario
from pdcore.traces import Workload, load_trace, synthetic_default
from sim_setting import POLICIES, Checks, load_average, print_table, scenario


def record_plans(sc: Scenario, workload: Workload, one_way: Any, policy_name: str) -> list[Plan]:
    """The plans a policy gives each request in a native run (the loop of ``Scenario.run``)."""
    policy = make_policy(policy_name)
    sim = Simulator(
        arrival_s=workload.arrival_s,
        prompt_tokens=workload.prompt_tokens,
        output_tokens=workload.output_tokens,
        one_way_s=one_way,
        cloud=sc.cloud_config(),
        device=sc.device_config(),
        bandwidth_bps=sc.network.bandwidth_bps,
        qoe_ttft_s=sc.slo.ttft_s,
        qoe_tokens_per_s=sc.qoe_tokens_per_s,
    )
    policy.prepare(sc.context())
    plans: list[Plan] = []
    arrivals, prompts, delays = workload.arrival_s.tolist(), workload.prompt_tokens.tolist(), one_way.tolist()
    while (i := sim.next_decision()) is not None:
        plan = policy.plan(
            RequestInfo(i, arrivals[i], prompts[i], delays[i]), CloudLoad.from_mapping(sim.cloud_load())
        )
        plans.append(plan)
        sim.decide(i, plan)
    return plans


def replay(make: Callable[[], Any], plans: Sequence[Plan]) -> tuple[dict[str, Any], dict[str, float]]:
    """A fresh simulator from ``make`` given ``plans`` in turn: its results and its counters."""
    sim = make()
    next_decision, decide = sim.next_decision, sim.decide
    while (i := next_decision()) is not None:
        decide(i, plans[i])
    return dict(sim.results()), dict(sim.summary())


def identical(a: tuple[dict[str, Any], dict[str, float]], b: tuple[dict[str, Any], dict[str, float]]) -> bool:
    """Whether two runs' results and counters are equal, bit for bit (NaN equal to NaN)."""
    (ra, sa), (rb, sb) = a, b
    if ra.keys() != rb.keys() or sa.keys() != sb.keys():
        return False
    for key in ra:
        x, y = np.asarray(ra[key]), np.asarray(rb[key])
        if x.dtype != y.dtype or x.shape != y.shape:
            return False
        same = (x == y) | (np.isnan(x) & np.isnan(y)) if x.dtype.kind == "f" else x == y
        if not same.all():
            return False
    return all(v == sb[k] or (math.isnan(v) and math.isnan(sb[k])) for k, v in sa.items())


def best_time(repeats: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """The best wall time of ``repeats`` calls of ``fn``, and the last call's result."""
    best, out = math.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def measure_ratio(trace: Path, subset: int, native_repeats: int, python_repeats: int, checks: Checks) -> None:
    """Replays each policy's plans through both simulators; prints the times, checks the results agree."""
    if trace.is_file():
        workload = load_trace(trace).limit(subset)
        source = f"the first {len(workload):,} requests of {trace.name}"
    else:
        workload = synthetic_default(seed=0, n_requests=subset)
        source = f"synthetic_default(n_requests={subset}) (trace missing)"
    print(f"\n## Native against pure Python (sim_baseline.py) on {source}")
    print(load_average())
    sc = scenario()
    one_way = sc.one_way_s(len(workload), 0)
    native, python = simulators(sc, workload, one_way)
    rows = []
    totals = [0.0, 0.0]
    all_same = True
    n = len(workload)
    for name in POLICIES:
        plans = record_plans(sc, workload, one_way, name)
        modes = [p.mode for p in plans]
        mix = ", ".join(f"{modes.count(m):,} {m}" for m in sim_baseline.MODES if modes.count(m))
        native_s, native_out = best_time(native_repeats, lambda plans=plans: replay(native, plans))
        python_s, python_out = best_time(python_repeats, lambda plans=plans: replay(python, plans))
        same = identical(native_out, python_out)
        all_same &= same
        totals[0] += native_s
        totals[1] += python_s
        events = native_out[1]["events"]
        rows.append(
            [
                name,
                mix,
                f"{events:,.0f}",
                f"{native_s * 1e3:.1f}",
                f"{python_s * 1e3:,.0f}",
                f"{native_s / n * 1e6:,.1f}",
                f"{python_s / n * 1e6:,.0f}",
                f"{python_s / native_s:.0f}x",
                "yes" if same else "NO",
            ]
        )
    rows.append(
        [
            "all six",
            "",
            "",
            f"{totals[0] * 1e3:.1f}",
            f"{totals[1] * 1e3:,.0f}",
            "",
            "",
            f"{totals[1] / totals[0]:.0f}x",
            "yes" if all_same else "NO",
        ]
    )
    print_ratio_table(rows, n, native_repeats, python_repeats)
    checks.add(
        "pure-Python port reproduces the native results",
        all_same,
        f"every result column and counter identical for all six policies on {n:,} requests"
        if all_same
        else "results differ",
    )


def simulators(
    sc: Scenario, workload: Workload, one_way: Any
) -> tuple[Callable[[], Simulator], Callable[[], sim_baseline.Simulator]]:
    """Builders of the native and the pure-Python simulator of ``workload`` in ``sc``, alike."""
    cloud, device = sim_baseline.scenario_configs(sc)
    kw: dict[str, Any] = {
        "arrival_s": workload.arrival_s,
        "prompt_tokens": workload.prompt_tokens,
        "output_tokens": workload.output_tokens,
        "one_way_s": one_way,
        "bandwidth_bps": sc.network.bandwidth_bps,
        "qoe_ttft_s": sc.slo.ttft_s,
        "qoe_tokens_per_s": sc.qoe_tokens_per_s,
    }
    cloud_cfg, device_cfg = CloudConfig(**cloud), DeviceCost(**device)

    def native() -> Simulator:
        return Simulator(cloud=cloud_cfg, device=device_cfg, **kw)

    def python() -> sim_baseline.Simulator:
        return sim_baseline.Simulator(cloud=cloud, device=device, **kw)

    return native, python


def print_ratio_table(
    rows: Sequence[Sequence[str]], n: int, native_repeats: int, python_repeats: int
) -> None:
    """The comparison's table, with what a run includes."""
    print()
    print_table(
        [
            "policy",
            "plans",
            "events",
            f"native ms (best of {native_repeats})",
            f"Python ms (best of {python_repeats})",
            "native us/request",
            "Python us/request",
            "Python/native",
            "identical",
        ],
        rows,
    )
    print(f"{n:,} requests per run; times include building the simulator and reading its results.")
    print(load_average())
