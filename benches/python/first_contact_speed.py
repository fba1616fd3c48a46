"""First-contact speed: ``pdcore compare --requests 1000000`` (every built-in policy) and ``pdcore size`` on a
1M-request trace, today's code against a baseline in the same run, with the ratios.

Each command runs in a fresh child process, once with the baseline's ``python/`` tree (its sources and its
compiled ``pdcore/_core.abi3.so``) first on ``PYTHONPATH`` and once with this checkout's, alternating
baseline and current so that a change of load on a shared machine falls on both (``--rounds N``: N such
pairs, the ratios taken between the medians). Per run: the wall time,
the CPU time (user + system, all threads) and the peak RSS (``ru_maxrss`` from ``os.wait4``). The JSON
each run writes is compared with the baseline's: byte for byte first, else figure by figure
(`compare_figures`: every value both report must be equal; keys only one of them reports, and the profiles'
digests, are listed, not failed, so a baseline older than a new field of the report can still be checked).
A speed-up that changed a figure is reported as a failure (exit 1).

The 1M-request trace is the Azure 2023 conversation trace (``--trace``) repeated end to end until it has
``--rows`` requests, each copy shifted by the trace's span plus one second: the trace's own arrival rate
and lengths, over about 52 hours. Written to a temporary directory, never kept.

A baseline tree of an earlier commit, with its extension built as the release profile builds it (build
this checkout's the same way, with the same cargo settings, so the ratio compares code, not build flags)::

    git worktree add /tmp/pdcore-base REV && (cd /tmp/pdcore-base && \
        CARGO_TARGET_DIR=/tmp/pdcore-base/target cargo build --release --features python --lib && \
        cp target/release/libpdcore.so python/pdcore/_core.abi3.so)
    python benches/python/first_contact_speed.py --baseline /tmp/pdcore-base/python

The wall time of a comparison depends on a second free core (two runs at once, `pdcore.sim.threads`): on
a machine where other work holds a core, the CPU time and the per-policy figures are the comparable ones.

Our targets (issue "first contact"): compare on 1M requests under 30 s and 1 GiB on two cores, size on
the 1M-request trace under 60 s.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import filecmp
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[2] / "python"
"""This checkout's package tree."""
DEFAULT_TRACE = "azure-2023-conv"
"""The public trace repeated (a name from the trace cache, or a path)."""


def trace_file(value: str) -> Path:
    """The file ``--trace`` names (`pdcore.traces.cache.trace_path`: a path, or a cached public trace)."""
    from pdcore.traces.cache import trace_path  # noqa: PLC0415  # reason: the checkout's package, on demand

    return Path(trace_path(value))


STAMP = "%Y-%m-%d %H:%M:%S.%f"
MIB = 1 << 20
CLI = "import sys; from pdcore.cli import main; sys.argv[0] = 'pdcore'; main()"


def repeat_trace(source: Path, rows: int, out: Path) -> None:
    """``source`` (an Azure 2023 CSV) repeated end to end to ``rows`` requests (module docstring)."""
    with source.open(newline="") as f:
        header, *body = list(csv.reader(f))
    times = [dt.datetime.strptime(row[0][:26], STAMP) for row in body]
    span = times[-1] - times[0] + dt.timedelta(seconds=1)
    with out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for k in range(rows):
            copy, index = divmod(k, len(body))
            row = body[index]
            writer.writerow([(times[index] + copy * span).strftime(STAMP), row[1], row[2]])


def run(tree: Path, args: list[str]) -> dict[str, float]:
    """One pdcore command in a child process with ``tree`` first on the path: wall, CPU and peak RSS."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", CLI, *args], env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{tree}: pdcore {' '.join(args)} failed")
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall_s": wall, "cpu_s": cpu, "rss_mib": usage.ru_maxrss * 1024 / MIB}


def compare_figures(baseline: object, current: object, at: str = "") -> tuple[list[str], list[str]]:
    """The paths where two reports' values differ, and the notes: keys only one of them has, and the
    profiles' ``sha256`` digests (a profile file that gained a section since the baseline digests
    differently while every figure read from it is the same)."""
    if isinstance(baseline, dict) and isinstance(current, dict):
        differs: list[str] = []
        notes: list[str] = []
        for key in sorted(baseline.keys() | current.keys()):
            path = f"{at}/{key}"
            if key not in current or key not in baseline:
                notes.append(f"{path} only in the {'baseline' if key in baseline else 'current'} report")
                continue
            d, n = compare_figures(baseline[key], current[key], path)
            differs += d
            notes += n
        return differs, notes
    if baseline == current:
        return [], []
    if at.endswith("/sha256") and "/profiles/" in at:
        return [], [f"{at} differs (the profile file, not a figure)"]
    return [at], []


def json_verdict(baseline: Path, current: Path) -> tuple[bool, str]:
    """Whether two runs' JSON carry the same figures, and the table's word for it."""
    if filecmp.cmp(baseline, current, shallow=False):
        return True, "JSON identical"
    differs, notes = compare_figures(json.loads(baseline.read_text()), json.loads(current.read_text()))
    for line in [*differs[:20], *notes[:20]]:
        print(f"    {'DIFFERS' if line in differs else 'note'}: {line}", file=sys.stderr)
    if differs:
        return False, f"{len(differs)} figures DIFFER"
    return True, f"figures identical ({len(notes)} notes)"


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the baseline's python/ tree")
    parser.add_argument("--requests", type=int, default=1_000_000, help="compare's synthetic requests")
    parser.add_argument("--rows", type=int, default=1_000_000, help="requests of the repeated trace")
    parser.add_argument(
        "--trace", default=DEFAULT_TRACE, help="the Azure 2023 conversation CSV: a trace name or a path"
    )
    parser.add_argument("--skip-size", action="store_true", help="measure compare only")
    parser.add_argument(
        "--rounds", type=int, default=1, help="baseline-current pairs per command; the ratios of the medians"
    )
    options = parser.parse_args()
    if options.rounds < 1:
        raise SystemExit(f"--rounds {options.rounds}: fix: run at least one round")
    if not (options.baseline / "pdcore" / "_core.abi3.so").is_file():
        raise SystemExit(f"--baseline {options.baseline}: no pdcore/_core.abi3.so; fix: build it (docstring)")
    identical = True
    with tempfile.TemporaryDirectory(prefix="pdcore-speed-") as tmp:
        work = Path(tmp)
        commands = {"compare": ["compare", "--requests", str(options.requests)]}
        if not options.skip_size:
            trace = work / "trace.csv"
            repeat_trace(trace_file(options.trace), options.rows, trace)
            commands["size"] = ["size", "--trace", str(trace)]
        print("| command | code | wall | CPU | peak RSS | load 1/5 min |")
        print("|---|---|---:|---:|---:|---|")
        for name, args in commands.items():
            figures: dict[str, list[dict[str, float]]] = {"baseline": [], "current": []}
            for round_ in range(options.rounds):
                for label, tree in (("baseline", options.baseline), ("current", HERE)):
                    out = work / f"{name}-{label}-{round_}.json"
                    figures[label].append(run(tree, [*args, "--json", str(out)]))
                    f = figures[label][-1]
                    print(
                        f"| {name} | {label} | {f['wall_s']:.1f} s | {f['cpu_s']:.1f} s | "
                        f"{f['rss_mib']:.0f} MiB | {load_average()} |",
                        flush=True,
                    )
                    if round_ and not filecmp.cmp(out, work / f"{name}-{label}-0.json", shallow=False):
                        print(f"    DIFFERS: {label}'s JSON changed between rounds", file=sys.stderr)
                        identical = False
            same, verdict = json_verdict(work / f"{name}-baseline-0.json", work / f"{name}-current-0.json")
            identical &= same
            base, now = (
                {k: statistics.median(f[k] for f in figures[label]) for k in figures[label][0]}
                for label in ("baseline", "current")
            )
            median = "median of each, " if options.rounds > 1 else ""
            print(
                f"| {name} | baseline/current | {base['wall_s'] / now['wall_s']:.2f}x | "
                f"{base['cpu_s'] / now['cpu_s']:.2f}x | {base['rss_mib'] / now['rss_mib']:.2f}x | "
                f"{median}{verdict} |",
                flush=True,
            )
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
