"""The setting every measurement of ``sim_report.py`` shares: the scenario, the policies and sizes, the
machine's description, the plain-text table and the targets."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pdcore.exceptions import InvalidInputError
from pdcore.profiles import load_cloud_profile, load_device_profile, network_preset
from pdcore.sim import Scenario
from pdcore.traces.cache import trace_path


def public_trace(name: str) -> Path:
    """The cached file of the public trace ``name`` (``pdcore traces fetch NAME`` or ``add``), or a path that
    does not exist when it is not cached: the measurements on it are then skipped with a message."""
    try:
        return Path(trace_path(name))
    except InvalidInputError:
        return Path(f"{name} (not in the trace cache: pdcore traces add {name} PATH)")


DEFAULT_TRACE = public_trace("azure-2023-conv")
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
    """The CPU's model name (``/proc/cpuinfo``, else what the platform says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    """The machine's load averages, printed beside every measurement."""
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
        """Records a target: met (True), missed (False) or not measured (None), with its numbers."""
        self.items.append((name, ok, detail))

    def missed(self) -> list[str]:
        """The names of the targets missed."""
        return [name for name, ok, _ in self.items if ok is False]
