"""Measures the native core against pure Python in one process and checks the performance targets.

Usage::

    python benches/python/report.py            # print the table
    python benches/python/report.py --check    # also exit 1 when a target is missed
    python benches/python/report.py --rust     # first run `cargo bench --bench core -- --quick`

Each figure is the best of several repeats timed with ``time.perf_counter`` (the least disturbed run);
per-call figures include the cost of the Python ``for`` loop that makes the calls. Rust-only figures are
read from criterion's results under ``target/criterion`` (written by ``cargo bench --bench core``).

Targets: ``pace`` from Python >= 50M tokens/s on 1M tokens and >= 100x the pure-Python ``pace``; one
streaming controller call <= 1 us; the Rust event loop >= 10M events/s with ~1k and ~100k pending.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import baseline
import pdcore

REPO = Path(__file__).resolve().parents[2]
MIN_TPOT = 0.005
MAX_TPOT = 0.05

PACE_TOKENS_PER_S = 50e6
PACE_SPEEDUP = 100.0
CONTROLLER_CALL_NS = 1000.0
RUST_EVENTS_PER_S = 10e6


@dataclass
class Row:
    """One measured operation: the native figure and, where one exists, the pure-Python one."""

    name: str
    unit: str
    native_ns: float
    python_ns: float | None = None

    @property
    def speedup(self) -> float | None:
        return None if self.python_ns is None else self.python_ns / self.native_ns


def best_of(repeats: int, fn: Callable[[], Any]) -> float:
    """The shortest of `repeats` runs of `fn`, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def make_stream(n: int, seed: int) -> tuple[npt.NDArray[np.float64], float]:
    """Arrival gaps uniform in 0..40 ms on the nanosecond grid, hand-off at 30 ms a token."""
    rng = np.random.default_rng(seed)
    ns = 1_000_000_000 + np.cumsum(rng.integers(0, 40_000_000, size=n, dtype=np.int64))
    return ns / 1e9, (int(ns[0]) + 30_000_000 * n) / 1e9


def measure_pace(repeats: int) -> list[Row]:
    big, h_big = make_stream(1_000_000, 1)
    small, h_small = make_stream(100_000, 1)
    small_list = small.tolist()
    kw_big = {"handoff_at": h_big, "min_tpot_s": MIN_TPOT, "max_tpot_s": MAX_TPOT}
    kw_small = {"handoff_at": h_small, "min_tpot_s": MIN_TPOT, "max_tpot_s": MAX_TPOT}

    native = pdcore.pace(small, **kw_small)
    if native.tolist() != baseline.pace(small_list, **kw_small):
        raise AssertionError("native and pure-Python pace disagree")

    ns_list = np.rint(small * 1e9).astype(np.int64).tolist()
    h_ns, lo, hi = round(h_small * 1e9), round(MIN_TPOT * 1e9), round(MAX_TPOT * 1e9)

    native_ns = best_of(repeats, lambda: pdcore.pace(big, **kw_big)) / big.size * 1e9
    core_ns = best_of(repeats, lambda: pdcore._core.pace(big, **kw_big)) / big.size * 1e9
    py_repeats = max(3, repeats // 2)
    python_ns = best_of(py_repeats, lambda: baseline.pace(small_list, **kw_small)) / small.size * 1e9
    python_rule_ns = best_of(py_repeats, lambda: baseline.pace_ns(ns_list, h_ns, lo, hi)) / small.size * 1e9
    return [
        Row("pace, 1M tokens (pdcore.pace vs pure Python, 100k)", "token", native_ns, python_ns),
        Row("pace, 1M tokens (_core.pace vs pure Python, 100k)", "token", core_ns, python_ns),
        Row("pace vs the bare pure-Python rule on ints", "token", native_ns, python_rule_ns),
    ]


def controller_calls(cls: Any, arrivals: list[float], handoff: float, repeats: int) -> dict[str, float]:
    """ns per call of push, next_due and mark_shown, and of the three in a row per token."""
    n = len(arrivals)
    kw = {"min_tpot_s": MIN_TPOT, "max_tpot_s": MAX_TPOT, "expected_tokens": n, "handoff_at": handoff}
    best = {"push": float("inf"), "next_due": float("inf"), "mark_shown": float("inf"), "token": float("inf")}
    for _ in range(repeats):
        sc = cls(**kw)
        push, next_due, mark_shown = sc.push, sc.next_due, sc.mark_shown
        t0 = time.perf_counter()
        for a in arrivals:
            push(a)
        t1 = time.perf_counter()
        for _ in arrivals:
            next_due()
        t2 = time.perf_counter()
        for _ in arrivals:
            mark_shown()
        t3 = time.perf_counter()
        sc = cls(**kw)
        push, next_due, mark_shown = sc.push, sc.next_due, sc.mark_shown
        t4 = time.perf_counter()
        for a in arrivals:
            push(a)
            next_due()
            mark_shown()
        t5 = time.perf_counter()
        for key, dt in (
            ("push", t1 - t0),
            ("next_due", t2 - t1),
            ("mark_shown", t3 - t2),
            ("token", t5 - t4),
        ):
            best[key] = min(best[key], dt / n * 1e9)
    return best


def measure_controller(repeats: int) -> list[Row]:
    arrivals, handoff = make_stream(200_000, 2)
    values = arrivals.tolist()
    for cls in (pdcore.SpeedController, baseline.SpeedController):
        sc = cls(min_tpot_s=MIN_TPOT, max_tpot_s=MAX_TPOT, expected_tokens=len(values), handoff_at=handoff)
        shown = []
        for a in values:
            sc.push(a)
            shown.append(sc.mark_shown())
        if (
            shown
            != pdcore.pace(arrivals, handoff_at=handoff, min_tpot_s=MIN_TPOT, max_tpot_s=MAX_TPOT).tolist()
        ):
            raise AssertionError(f"{cls.__module__}.SpeedController disagrees with pace")
    native = controller_calls(pdcore.SpeedController, values, handoff, repeats)
    python = controller_calls(baseline.SpeedController, values, handoff, max(3, repeats // 2))
    rows = [
        Row(f"SpeedController.{k}()", "call", native[k], python[k])
        for k in ("push", "next_due", "mark_shown")
    ]
    rows.append(Row("SpeedController push+next_due+mark_shown", "token", native["token"], python["token"]))
    return rows


def hold(loop: Any, steps: list[tuple[float, int]]) -> None:
    step, schedule_in = loop.step, loop.schedule_in
    for delay, p in steps:
        ev = step()
        schedule_in(delay, ev[1], priority=p)


def measure_event_loop(repeats: int) -> list[Row]:
    rows = []
    ops = 200_000
    for pending in (1_000, 100_000):
        rng = np.random.default_rng(pending)
        initial = list(
            zip((rng.integers(0, 2_000_000, size=pending) / 1e9).tolist(), range(pending), strict=True)
        )
        steps = list(
            zip(
                (rng.integers(0, 2_000_000, size=ops) / 1e9).tolist(),
                rng.integers(0, 4, size=ops).tolist(),
                strict=True,
            )
        )
        best: dict[str, float] = {}
        for name, cls in (("native", pdcore.EventLoop), ("python", baseline.HeapEventLoop)):
            loop = cls()
            for at, i in initial:
                loop.schedule(at, i, priority=i % 4)
            reps = repeats if name == "native" else max(3, repeats // 2)
            best[name] = best_of(reps, lambda loop=loop, steps=steps: hold(loop, steps)) / ops * 1e9
        rows.append(
            Row(f"EventLoop step+schedule_in, {pending} pending", "event", best["native"], best["python"])
        )
    return rows


def criterion_results() -> dict[str, float]:
    """ns per element of every criterion benchmark found under the cargo target directory."""
    root = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "criterion"
    out: dict[str, float] = {}
    for bench in sorted(root.glob("**/new/benchmark.json")):
        meta = json.loads(bench.read_text())
        est = json.loads((bench.parent / "estimates.json").read_text())
        per_iter = (est.get("slope") or est["mean"])["point_estimate"]
        elements = (meta.get("throughput") or {}).get("Elements", 1)
        out[meta["full_id"]] = per_iter / elements
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_cargo_bench() -> None:
    cmd = ["cargo", "bench", "--bench", "core", "--", "--quick"]
    print("$", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)


def fmt_rate(ns: float | None, unit: str) -> str:
    if ns is None:
        return "-"
    rate = 1e9 / ns
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if rate >= scale:
            return f"{rate / scale:.1f}{suffix} {unit}s/s"
    return f"{rate:.0f} {unit}s/s"


def fmt_ns(ns: float | None) -> str:
    return "-" if ns is None else f"{ns:,.1f}"


def print_table(rows: list[Row]) -> None:
    header = ("operation", "native ns/unit", "native rate", "Python ns/unit", "Python rate", "native/Python")
    lines = [
        (
            r.name,
            fmt_ns(r.native_ns),
            fmt_rate(r.native_ns, r.unit),
            fmt_ns(r.python_ns),
            fmt_rate(r.python_ns, r.unit),
            "-" if r.speedup is None else f"{r.speedup:,.1f}x",
        )
        for r in rows
    ]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *lines, strict=True)]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for line in lines:
        print(
            " | ".join(
                c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--rust", action="store_true", help="run `cargo bench --bench core -- --quick` first")
    parser.add_argument("--repeats", type=int, default=7, help="repeats per measurement (best is kept)")
    args = parser.parse_args(argv)

    if args.rust:
        run_cargo_bench()
    print(
        f"pdcore {pdcore.__version__}, numpy {np.__version__}, Python {platform.python_version()}, "
        f"{cpu_model()}, {os.cpu_count()} CPUs, {platform.platform()}"
    )
    pace_rows = measure_pace(args.repeats)
    controller_rows = measure_controller(args.repeats)
    loop_rows = measure_event_loop(args.repeats)
    print()
    print_table(pace_rows + controller_rows + loop_rows)

    rust = criterion_results()
    if rust:
        print("\nRust core (criterion, from target/criterion):")
        width = max(len(k) for k in rust)
        for name, ns in rust.items():
            print(f"  {name.ljust(width)}  {ns:12,.2f} ns/element  {fmt_rate(ns, 'element'):>18}")

    checks: list[tuple[str, bool | None, str]] = []
    pace_row, _, rule_row = pace_rows
    rate = 1e9 / pace_row.native_ns
    checks.append(
        ("pace from Python >= 50M tokens/s", rate >= PACE_TOKENS_PER_S, f"{rate / 1e6:.0f}M tokens/s")
    )
    speedup = pace_row.speedup or 0.0
    checks.append(
        (
            "pace >= 100x pure Python",
            speedup >= PACE_SPEEDUP,
            f"{speedup:.0f}x the same-contract pure-Python pace"
            f" ({rule_row.speedup or 0:.0f}x its bare rule loop on ints)",
        )
    )
    worst = max(controller_rows[:3], key=lambda r: r.native_ns)
    checks.append(
        (
            "one streaming controller call <= 1 us",
            worst.native_ns <= CONTROLLER_CALL_NS,
            f"slowest is {worst.name} at {worst.native_ns:.0f} ns",
        )
    )
    for pending in (1000, 100000):
        key = f"event_loop_hold/pdcore_event_loop/{pending}"
        if key in rust:
            ev = 1e9 / rust[key]
            checks.append(
                (
                    f"Rust event loop >= 10M events/s, {pending} pending",
                    ev >= RUST_EVENTS_PER_S,
                    f"{ev / 1e6:.1f}M/s",
                )
            )
        else:
            checks.append(
                (f"Rust event loop >= 10M events/s, {pending} pending", None, "not measured: pass --rust")
            )

    print("\nTargets:")
    for name, ok, detail in checks:
        mark = "skip" if ok is None else ("PASS" if ok else "MISS")
        print(f"  [{mark}] {name}: {detail}")
    missed = [name for name, ok, _ in checks if ok is False]
    if args.check and missed:
        print(f"\n{len(missed)} target(s) missed: {'; '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
