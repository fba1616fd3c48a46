"""Measures the trace-driven simulator in one run and checks its targets.

Usage::

    python benches/python/sim_report.py            # print the tables
    python benches/python/sim_report.py --check    # also exit 1 when a target is missed
    python benches/python/sim_report.py --quick    # scaling to 100k requests only, a 500-request subset

Three measurements, in the CLI's default scenario (phone ``llama32-3b-w4a16-8elite-genie``, cloud
``llama3-8b-a100`` disaggregated with one prefill and one decode replica, ``wifi``, seed 0):

1. The Azure LLM inference trace 2023, conversation (``--trace``, default the public trace
   ``azure-2023-conv`` from the trace cache; skipped with a message if missing) through all six
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

The measurements live beside this script: parts 1 to 3 in ``sim_speed.py``, part 4 in ``sim_parity.py``,
what they share (the scenario, the table, the targets) in ``sim_setting.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np

import pdcore
from sim_parity import measure_ratio
from sim_setting import (
    DEFAULT_TRACE,
    PLANNING_SIZE,
    QUICK_PLANNING_SIZE,
    QUICK_SIZES,
    RATE_RPS,
    SIZES,
    Checks,
    cpu_model,
)
from sim_speed import child, measure_azure, measure_planning, measure_scaling, planning_child


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
