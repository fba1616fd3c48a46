"""Measures the input and output edges at scale against the previous implementations, in one run.

Usage::

    python benches/python/edge_report.py                  # 1M rows / 1M requests, print the table
    python benches/python/edge_report.py --check          # also exit 1 when a target is missed
    python benches/python/edge_report.py --rows 200000    # a smaller run

Two figures, each a ratio against a baseline measured in the same run:

- Loading an Azure CSV trace of ``--rows`` rows: `pdcore.traces.load_azure` (the whole-file reader)
  against the row-by-row ``strptime`` reader it replaced (`_baseline_load`, kept here as the reference).
  Best of ``--repeats``. Target: under 2 s for 1M rows.
- Peak memory of ``pdcore simulate --out FILE.csv`` with ``--rows`` synthetic requests, in a child process
  (``ru_maxrss``): the streaming `SimResult.to_csv` against the previous whole-file formatter
  (`_BASELINE_CSV`, run in its own child on the same simulation). Target: under 1 GB for 1M requests.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from pdcore.traces import load_azure

LOAD_TARGET_S = 2.0
PEAK_TARGET_BYTES = 1 << 30


def _write_trace(path: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    start = np.datetime64("2023-11-16T18:15:46", "ns").astype(np.int64)
    stamps = start + np.cumsum(rng.integers(0, 400_000_000, rows))
    text = np.datetime_as_string(stamps.astype("datetime64[ns]"), unit="ns")
    prompts = rng.integers(1, 8000, rows)
    outputs = rng.integers(1, 800, rows)
    with path.open("w", encoding="utf-8") as handle:
        handle.write("TIMESTAMP,ContextTokens,GeneratedTokens\n")
        for stamp, prompt, output in zip(text, prompts, outputs, strict=True):
            handle.write(f"{str(stamp).replace('T', ' ')[:27]},{prompt},{output}\n")


def _baseline_load(path: Path) -> int:
    """The previous reader: csv rows, the first 26 characters of each timestamp through strptime."""
    times, prompts, outputs = [], [], []
    start = None
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader)
        for row in reader:
            head = row[0].strip()[:26]
            stamp = datetime.strptime(head, "%Y-%m-%d %H:%M:%S.%f")
            start = stamp if start is None else start
            times.append((stamp - start) // timedelta(microseconds=1))
            prompts.append(int(row[1]))
            outputs.append(int(row[2]))
    np.asarray(times, dtype=np.float64)
    np.asarray(prompts, dtype=np.int64)
    return len(times)


def _best(work: object, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        work()  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return best


_RUN = """
import sys
from pdcore.profiles import load_cloud_profile, load_device_profile, network_preset
from pdcore.sim import Scenario
from pdcore.traces import synthetic_default
workload = synthetic_default(seed=0, n_requests={rows}, rate_rps=5.5)
scenario = Scenario(
    cloud=load_cloud_profile("llama3-8b-a100"),
    device=load_device_profile("llama32-3b-w4a16-8elite-genie"),
    network=network_preset("wifi"),
    prefill_replicas=16,
    decode_replicas=16,
)
result = scenario.run(workload, "pd-device", seed=0)
"""

_BASELINE_CSV = """
import numpy as np
from pathlib import Path
from pdcore.sim.runner import _csv_cells
table = result.columns()
cells = [_csv_cells(values) for values in table.values()]
lines = [",".join(table)]
lines.extend(",".join(row) for row in zip(*cells, strict=True))
Path(sys.argv[1]).write_text("\\n".join(lines) + "\\n", encoding="utf-8")
"""


def _peak_bytes(code: str, out: Path) -> int:
    """Peak resident memory of a child running ``code`` (``ru_maxrss`` is in KiB on Linux)."""
    script = (
        "import resource, sys\n"
        + code
        + "\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(out)], capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    missed = []
    with tempfile.TemporaryDirectory() as folder:
        trace = Path(folder) / "azure.csv"
        _write_trace(trace, args.rows)
        new_s = _best(lambda: load_azure(trace), args.repeats)
        old_s = _best(lambda: _baseline_load(trace), max(1, args.repeats - 2))
        print(
            f"load {args.rows:,}-row Azure CSV: {new_s:.2f} s "
            f"(was {old_s:.2f} s, {old_s / new_s:.1f}x faster)"
        )
        if args.rows >= 1_000_000 and new_s > LOAD_TARGET_S:
            missed.append(f"trace load {new_s:.2f} s > {LOAD_TARGET_S} s")
        run = _RUN.format(rows=args.rows)
        out = Path(folder) / "per_request.csv"
        new_peak = _peak_bytes(run + "result.to_csv(sys.argv[1])\n", out)
        old_peak = _peak_bytes(run + _BASELINE_CSV, out)
        print(
            f"simulate --out CSV, {args.rows:,} requests: peak {new_peak / 2**20:,.0f} MiB "
            f"(was {old_peak / 2**20:,.0f} MiB, {new_peak / old_peak:.2f}x)"
        )
        if args.rows >= 1_000_000 and new_peak > PEAK_TARGET_BYTES:
            missed.append(f"simulate --out peak {new_peak / 2**20:.0f} MiB > 1024 MiB")
    for miss in missed:
        print(f"MISSED: {miss}")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
