"""Parts 1 to 3 of ``sim_report.py``: the simulator's speed on the Azure trace, its scaling to a million
requests, and planning inside the simulator against planning from Python (the module docstring of
``sim_report.py`` gives the targets). Scaling and planning runs each take a fresh process, which runs
``sim_report.py --child`` or ``--planning-child``."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pdcore.policies import make_policy
from pdcore.traces import load_trace, synthetic_default
from sim_setting import (
    AZURE_TOTAL_S,
    LINEAR_GROWTH,
    MAX_RSS_BYTES,
    MIB,
    PLANNING_MAX_RSS_BYTES,
    PLANNING_TOTAL_S,
    POLICIES,
    SCALING_POLICIES,
    Checks,
    load_average,
    print_table,
    proc_status_kib,
    scenario,
)

ENTRY = Path(__file__).resolve().with_name("sim_report.py")
"""The script a child process runs."""


def measure_azure(trace: Path, repeats: int, checks: Checks) -> None:
    print(f"\n## Azure conversation trace through all six policies ({trace})")
    if not trace.is_file():
        print(f"skipped: {trace} does not exist (pass --trace PATH)")
        checks.add(f"Azure trace, six policies <= {AZURE_TOTAL_S:.0f} s", None, "trace missing")
        return
    print(load_average())
    t0 = time.perf_counter()
    workload = load_trace(trace)
    load_s = time.perf_counter() - t0
    sc = scenario()
    print(
        f"{len(workload):,} requests, {int(workload.output_tokens.sum()):,} output tokens, "
        f"{int(workload.prompt_tokens.sum()):,} prompt tokens; loaded in {load_s:.2f} s"
    )
    passes: list[dict[str, float]] = []
    stats: dict[str, tuple[float, float]] = {}
    for _ in range(repeats):
        times: dict[str, float] = {}
        for name in POLICIES:
            t0 = time.perf_counter()
            result = sc.run(workload, name, seed=0)
            result.aggregate()
            times[name] = time.perf_counter() - t0
            stats[name] = (result.summary["events"], float(np.sum(result.results["displayed_tokens"])))
        passes.append(times)
    first = passes[0]
    best = {name: min(p[name] for p in passes) for name in POLICIES}
    rows = []
    for name in POLICIES:
        events, shown = stats[name]
        rows.append(
            [
                name,
                f"{first[name]:.3f}",
                f"{best[name]:.3f}",
                f"{events:,.0f}",
                f"{events / best[name] / 1e6:.2f}",
                f"{best[name] / len(workload) * 1e6:.1f}",
                f"{shown:,.0f}",
            ]
        )
    total_first = sum(first.values())
    total_best = sum(best.values())
    rows.append(["total", f"{total_first:.3f}", f"{total_best:.3f}", "", "", "", ""])
    print()
    print_table(
        [
            "policy",
            "first pass s",
            f"best of {repeats} s",
            "events",
            "M events/s",
            "us/request",
            "tokens shown",
        ],
        rows,
    )
    print(load_average())
    checks.add(
        f"Azure trace, six policies <= {AZURE_TOTAL_S:.0f} s",
        total_first <= AZURE_TOTAL_S,
        f"{total_first:.2f} s first pass, {total_best:.2f} s best of {repeats} "
        f"({len(workload):,} requests; trace load {load_s:.2f} s apart)",
    )


def child(n: int, policy: str, rate: float) -> None:
    """One scaling measurement in this (fresh) process; prints a JSON line."""
    start_rss = proc_status_kib("VmRSS")
    t0 = time.perf_counter()
    workload = synthetic_default(seed=0, n_requests=n, rate_rps=rate)
    gen_s = time.perf_counter() - t0
    sc = scenario()
    t0 = time.perf_counter()
    result = sc.run(workload, policy, seed=0)
    report = result.aggregate()
    sim_s = time.perf_counter() - t0
    ttft = np.asarray(result.results["ttft_s"])
    print(
        json.dumps(
            {
                "n": n,
                "policy": policy,
                "gen_s": gen_s,
                "sim_s": sim_s,
                "events": result.summary["events"],
                "drain_s": result.summary["makespan_s"] - float(workload.arrival_s[-1]),
                "ttft_p50_s": float(np.percentile(ttft, 50)),
                "ttft_p99_s": float(np.percentile(ttft, 99)),
                "requests": report["requests"],
                "start_rss_kib": start_rss,
                "hwm_kib": proc_status_kib("VmHWM"),
            }
        )
    )


def run_child(n: int, policy: str, rate: float, *, planning: str | None = None) -> dict[str, Any]:
    """Runs `child` (or `planning_child`) in a fresh interpreter; adds its wall time and peak RSS
    (``ru_maxrss``)."""
    cmd = [sys.executable, str(ENTRY), "--child", str(n), policy, repr(rate)]
    if planning is not None:
        cmd = [*cmd[:2], "--planning-child", str(n), policy, repr(rate), planning]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}")
    record: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    record["process_s"] = wall
    record["maxrss_bytes"] = usage.ru_maxrss * 1024
    return record


def planning_child(n: int, policy_name: str, rate: float, planning: str) -> None:
    """One planning measurement in this (fresh) process; prints a JSON line."""
    import hashlib  # noqa: PLC0415

    workload = synthetic_default(seed=0, n_requests=n, rate_rps=rate)
    policy = make_policy(policy_name)
    if planning == "python":

        class InPython(type(policy)):  # type: ignore[misc]
            def native(self) -> None:
                return None

        copy = InPython.__new__(InPython)
        copy.__dict__.update(policy.__dict__)
        policy = copy
    start_rss = proc_status_kib("VmRSS")
    t0 = time.perf_counter()
    result = scenario().run(workload, policy, seed=0)
    sim_s = time.perf_counter() - t0
    digest = hashlib.sha256()
    for key in sorted(result.results):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(result.results[key]).tobytes())
    print(
        json.dumps(
            {
                "n": n,
                "policy": policy_name,
                "planning": planning,
                "sim_s": sim_s,
                "digest": digest.hexdigest(),
                "start_rss_kib": start_rss,
                "hwm_kib": proc_status_kib("VmHWM"),
            }
        )
    )


def measure_planning(n: int, rate: float, checks: Checks) -> None:
    print(
        f"\n## Planning: {n:,} synthetic requests at {rate} req/s, six built-in policies, one process per run"
    )
    print(load_average())
    rows = []
    total_native = 0.0
    for policy in POLICIES:
        runs = {}
        for planning in ("native", "python"):
            runs[planning] = run_child(n, policy, rate, planning=planning)
            print(f"  {policy} {planning}: {runs[planning]['sim_s']:.2f} s", flush=True)
        native, python = runs["native"], runs["python"]
        total_native += native["sim_s"]
        same = native["digest"] == python["digest"]
        rows.append(
            [
                policy,
                f"{native['sim_s']:.2f}",
                f"{python['sim_s']:.2f}",
                f"{python['sim_s'] / native['sim_s']:.2f}x",
                f"{native['maxrss_bytes'] / MIB:,.0f}",
                f"{python['maxrss_bytes'] / MIB:,.0f}",
                "yes" if same else "NO",
            ]
        )
        checks.add(f"native and Python planning identical, {policy}", same, native["digest"][:16])
        checks.add(
            f"peak RSS < 1 GiB, {policy}, {n:,} requests",
            native["maxrss_bytes"] < PLANNING_MAX_RSS_BYTES,
            f"{native['maxrss_bytes'] / MIB:,.0f} MiB",
        )
    print()
    print_table(
        ["policy", "native s", "Python s", "Python/native", "native RSS MiB", "Python RSS MiB", "identical"],
        rows,
    )
    checks.add(
        f"six policies, {n:,} requests, <= {PLANNING_TOTAL_S:.0f} s",
        total_native <= PLANNING_TOTAL_S,
        f"{total_native:.1f} s",
    )
    print(load_average())


def measure_scaling(sizes: Sequence[int], rate: float, checks: Checks) -> None:
    print(
        f"\n## Scaling: synthetic_default(n_requests=N, rate_rps={rate}), 1 prefill + 1 decode replica, "
        "one fresh process per size"
    )
    print(load_average())
    rows = []
    for policy in SCALING_POLICIES:
        records = []
        for n in sizes:
            rec = run_child(n, policy, rate)
            records.append(rec)
            rows.append(
                [
                    policy,
                    f"{n:,}",
                    f"{rec['sim_s']:.2f}",
                    f"{rec['sim_s'] / n * 1e6:.2f}",
                    f"{rec['events']:,.0f}",
                    f"{rec['events'] / rec['sim_s'] / 1e6:.2f}",
                    f"{rec['gen_s']:.2f}",
                    f"{rec['process_s']:.2f}",
                    f"{rec['maxrss_bytes'] / MIB:,.0f}",
                    f"{(rec['maxrss_bytes'] - rec['start_rss_kib'] * 1024) / n:,.0f}",
                    f"{rec['ttft_p50_s'] * 1e3:.0f} / {rec['ttft_p99_s'] * 1e3:.0f}",
                    f"{rec['drain_s']:.1f}",
                ]
            )
            print(f"  {policy} {n:,}: {rec['sim_s']:.2f} s, {rec['maxrss_bytes'] / MIB:,.0f} MiB", flush=True)
        for small, large in itertools.pairwise(records):
            growth = (large["sim_s"] / large["n"]) / (small["sim_s"] / small["n"])
            checks.add(
                f"linear cost, {policy}, {small['n']:,} -> {large['n']:,} requests",
                growth <= LINEAR_GROWTH,
                f"time per request x{growth:.2f} (target <= x{LINEAR_GROWTH})",
            )
        peak = max(rec["maxrss_bytes"] for rec in records)
        checks.add(
            f"peak RSS < 2 GiB, {policy}, up to {sizes[-1]:,} requests",
            peak < MAX_RSS_BYTES,
            f"{peak / MIB:,.0f} MiB",
        )
    print()
    print_table(
        [
            "policy",
            "requests",
            "sim s",
            "us/request",
            "events",
            "M events/s",
            "workload s",
            "process s",
            "peak RSS MiB",
            "RSS B/request",
            "TTFT p50/p99 ms",
            "drain s",
        ],
        rows,
    )
    print(load_average())
