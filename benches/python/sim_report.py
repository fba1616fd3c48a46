"""Measures the trace-driven simulator in one run and checks its targets.

Usage::

    python benches/python/sim_report.py            # print the tables
    python benches/python/sim_report.py --check    # also exit 1 when a target is missed
    python benches/python/sim_report.py --quick    # scaling to 100k requests only, a 500-request subset

Three measurements, in the CLI's default scenario (phone ``llama32-3b-w4a16-8elite-genie``, cloud
``llama3-8b-a100`` disaggregated with one prefill and one decode replica, ``wifi``, seed 0):

1. The Azure LLM inference trace 2023, conversation (``--trace``, default
   ``/work/shared/traces/azure_2023_conv.csv``; skipped with a message if missing) through all six
   policies. Per policy: the wall time of ``Scenario.run`` plus ``SimResult.aggregate`` (what
   ``pdcore compare`` does per policy; loading the trace is timed apart). The first pass counts, as a
   user's single ``pdcore compare`` would see it; the best of ``--repeats`` passes is shown beside it.
   Target: the six policies in at most 10 s, the capacity search excluded.
2. Scaling: ``synthetic_default`` workloads of 10k, 100k and 1M requests at ``--rate`` (5.5 req/s, the
   trace's own rate, which one prefill and one decode replica sustain: p99 TTFT stays flat across the
   sizes and the last token follows the last arrival within seconds), under cloud-only and pd-device.
   Each size runs in a fresh subprocess; the parent reads the child's peak RSS from ``os.wait4``.
   Targets: the time per request grows by at most 1.3x from one size to the next (linear cost) and the
   peak RSS stays under 2 GiB.
3. Planning: ``--planning-size`` synthetic requests (default 1M, quick 100k) at ``--rate`` through each of
   the six built-in policies, planned inside the simulator (`Policy.native`, what ``Scenario.run`` does)
   and, as the baseline in the same run, per request from Python (the same policy with ``native()``
   returning None: one Python ``plan`` call per request, the decision loop of a custom policy). One fresh
   process per run (peak RSS from ``os.wait4``); both must give identical results (a digest of every
   column). Targets: the six native runs in at most 30 s in all, each under 1 GiB peak RSS.
4. The native simulator against the pure-Python port (``sim_baseline.py``) on the first ``--subset``
   requests of the trace (of a synthetic workload if the trace is missing): each policy's plans are
   recorded from a native run, then both simulators replay them, construction to ``results()``
   included; the results must be identical. Native: best of 7 runs; pure Python: best of 2.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import pdcore
import sim_baseline
from pdcore._core import CloudConfig, DeviceCost, Plan, Simulator
from pdcore.policies import make_policy
from pdcore.policies.base import CloudLoad, RequestInfo
from pdcore.profiles import load_cloud_profile, load_device_profile, network_preset
from pdcore.sim import Scenario
from pdcore.traces import Workload, load_trace, synthetic_default

DEFAULT_TRACE = Path("/work/shared/traces/azure_2023_conv.csv")
POLICIES = ("cloud-only", "device-only", "pd-device", "naive-split", "kv-transfer", "race")
SCALING_POLICIES = ("cloud-only", "pd-device")
SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)
RATE_RPS = 5.5

AZURE_TOTAL_S = 10.0
PLANNING_TOTAL_S = 30.0
PLANNING_MAX_RSS_BYTES = 1 * 1024**3
PLANNING_SIZE = 1_000_000
QUICK_PLANNING_SIZE = 100_000
LINEAR_GROWTH = 1.3
MAX_RSS_BYTES = 2 * 1024**3
GIB = 1024**3
MIB = 1024**2


def scenario() -> Scenario:
    """The CLI's default scenario (``pdcore compare`` without options)."""
    return Scenario(
        cloud=load_cloud_profile("llama3-8b-a100"),
        device=load_device_profile("llama32-3b-w4a16-8elite-genie"),
        network=network_preset("wifi"),
    )


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def proc_status_kib(key: str) -> int:
    """A ``/proc/self/status`` field in KiB (0 where there is no /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A plain-text table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    print(
        " | ".join(
            h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(
            " | ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )


@dataclass
class Checks:
    """Targets and whether each was met (``None``: not measured)."""

    items: list[tuple[str, bool | None, str]] = field(default_factory=list)

    def add(self, name: str, ok: bool | None, detail: str) -> None:
        self.items.append((name, ok, detail))

    def missed(self) -> list[str]:
        return [name for name, ok, _ in self.items if ok is False]


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
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(n), policy, repr(rate)]
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
    sim = make()
    next_decision, decide = sim.next_decision, sim.decide
    while (i := next_decision()) is not None:
        decide(i, plans[i])
    return dict(sim.results()), dict(sim.summary())


def identical(a: tuple[dict[str, Any], dict[str, float]], b: tuple[dict[str, Any], dict[str, float]]) -> bool:
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
    best, out = math.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def measure_ratio(trace: Path, subset: int, native_repeats: int, python_repeats: int, checks: Checks) -> None:
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
    checks.add(
        "pure-Python port reproduces the native results",
        all_same,
        f"every result column and counter identical for all six policies on {n:,} requests"
        if all_same
        else "results differ",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--quick", action="store_true", help="scale to 100k requests only, 500-request subset"
    )
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE, help="the Azure conversation trace CSV")
    parser.add_argument(
        "--rate", type=float, default=RATE_RPS, help="arrival rate of the scaling runs, req/s"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="passes over the trace (default 3, quick 1)"
    )
    parser.add_argument("--subset", type=int, default=None, help="requests of the native/Python comparison")
    parser.add_argument(
        "--planning-size",
        type=int,
        default=None,
        help="requests of the planning runs (default 1M, quick 100k)",
    )
    parser.add_argument(
        "--only", choices=("azure", "scaling", "planning", "ratio"), default=None, help="run one measurement"
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--planning-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        n, policy, rate = args.child
        child(int(n), policy, float(rate))
        return 0
    if args.planning_child:
        n, policy, rate, planning = args.planning_child
        planning_child(int(n), policy, float(rate), planning)
        return 0

    repeats = args.repeats or (1 if args.quick else 3)
    subset = args.subset or (500 if args.quick else 2000)
    sizes = QUICK_SIZES if args.quick else SIZES
    print(
        f"pdcore {pdcore.__version__}, numpy {np.__version__}, Python {platform.python_version()}, "
        f"{cpu_model()}, {os.cpu_count()} CPUs, {platform.platform()}"
    )
    checks = Checks()
    planning_size = args.planning_size or (QUICK_PLANNING_SIZE if args.quick else PLANNING_SIZE)
    if args.only in (None, "azure"):
        measure_azure(args.trace, repeats, checks)
    if args.only in (None, "scaling"):
        measure_scaling(sizes, args.rate, checks)
    if args.only in (None, "planning"):
        measure_planning(planning_size, args.rate, checks)
    if args.only in (None, "ratio"):
        measure_ratio(args.trace, subset, 3 if args.quick else 7, 1 if args.quick else 2, checks)

    print("\nTargets:")
    for name, ok, detail in checks.items:
        mark = "skip" if ok is None else ("PASS" if ok else "MISS")
        print(f"  [{mark}] {name}: {detail}")
    missed = checks.missed()
    if args.check and missed:
        print(f"\n{len(missed)} target(s) missed: {'; '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
