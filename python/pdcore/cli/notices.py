"""The notice of an overloaded run, printed once to standard error by ``compare``, ``simulate``, ``size`` and
``reproduce``: which policies' arrivals outran the cloud (or, with one answer per device, the device), the
utilisation measured from the run (`pdcore.sim.overload`), and the fix.

One notice per command, however many policies or workloads are overloaded: the figures of an overloaded
policy measure the length of the run's queue rather than the policy, and a reader needs to learn it once,
before the table, with the flags that fix it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.markup import escape

from pdcore.cli.options import stderr

__all__ = ["CLOUD_FIX", "DEVICE_FIX", "overload_notice", "warn_overloaded"]

CLOUD_FIX = (
    "`pdcore size` (same workload flags) finds the smallest cloud that serves it; pass its replicas with "
    "--prefill-replicas and --decode-replicas (--replicas when colocated), or lower --rate-scale"
)
"""How to give the cloud the replicas a workload needs."""

DEVICE_FIX = "pick a faster --device, or drop --one-answer-per-device (each request on a device of its own)"
"""How to relieve a device that serves one answer at a time."""


def overload_notice(
    reports: Mapping[str, Mapping[str, Any]], cloud: str, *, cloud_fix: str = CLOUD_FIX
) -> str | None:
    """The notice for the overloaded policies among ``reports`` (None when there are none).

    Args:
        reports: Policy reports by name (``docs/schema.md``: ``overloaded``, ``delay_growth``,
            ``overload_site``, ``duration_s``).
        cloud: The cloud in words, e.g. ``"llama3-8b-a100 1P+1D"``.
        cloud_fix: The fix for a cloud that cannot keep up, in the command's own flags.
    """
    parts: dict[str, list[str]] = {"cloud": [], "device": []}
    worst = 0.0
    for name, report in reports.items():
        if report.get("overloaded"):
            growth = float(report["delay_growth"])
            parts[str(report["overload_site"])].append(f"{name} (utilisation {1.0 + growth:.2f})")
            worst = max(worst, growth)
    if not parts["cloud"] and not parts["device"]:
        return None
    outran = [f"arrivals outran the cloud ({cloud}) under {', '.join(parts['cloud'])}"] * bool(parts["cloud"])
    outran += [f"the devices could not keep up under {', '.join(parts['device'])}"] * bool(parts["device"])
    fixes = [cloud_fix] * bool(parts["cloud"]) + [DEVICE_FIX] * bool(parts["device"])
    return (
        f"overloaded: {'; '.join(outran)}. Measured from the run: late requests waited up to {worst:.2f} s "
        "longer per second of arrivals than early ones, so these latencies measure the queue, not the "
        f"policy. Fix: {'; '.join(fixes)}."
    )


def warn_overloaded(
    reports: Mapping[str, Mapping[str, Any]], cloud: str, *, cloud_fix: str = CLOUD_FIX
) -> None:
    """Prints `overload_notice` to standard error, once, when a policy is overloaded."""
    notice = overload_notice(reports, cloud, cloud_fix=cloud_fix)
    if notice is not None:
        stderr().print(f"[yellow]warning:[/yellow] {escape(notice)}", soft_wrap=True)
