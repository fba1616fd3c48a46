"""The table of a fleet's results by class that ``pdcore compare`` and ``pdcore simulate`` print under the
policy table: one row per policy and device class (a report's ``by_class``, `pdcore.sim.fleet_runs.by_class`).

Latencies are in ms (in whole seconds with an ``s`` from 100 s up, as the policy table shows them); the SLO
share is under the class's own objectives; GPU-s and mJ are per request of the class, battery % per 1,000
of its requests, ``-`` where the profiles carry no price or energy figures. The table fits 80 columns with
the shipped fleets' class names (ours, as the policy table's budget: `pdcore.cli.tables`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich import box
from rich.markup import escape
from rich.table import Table

__all__ = ["class_table", "has_classes"]

_SECONDS_FROM_S = 100.0


def _ms(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}s" if value >= _SECONDS_FROM_S else f"{value * 1e3:.0f}"


def _num(value: Any, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def has_classes(reports: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether the reports come from a run over a fleet."""
    return any("by_class" in report for report in reports.values())


def _row(policy: str, record: Mapping[str, Any]) -> list[str]:
    cost = record.get("cost") or {}
    device_mj = (cost.get("device_mj_per_request") or {}).get("mean")
    ttft = record.get("ttft_s") or {}
    gap = record.get("max_gap_s") or {}
    slo = record.get("slo_attainment")
    return [
        escape(policy),
        escape(record["name"]),
        str(record["requests"]),
        _ms(ttft.get("p50")),
        _ms(ttft.get("p90")),
        _ms(gap.get("p99")),
        "-" if slo is None else f"{slo * 100:.1f}",
        _num(record.get("cloud_gpu_s_per_request"), 3),
        _num(device_mj, 0),
        _num(cost.get("battery_pct_per_1k_requests"), 1),
    ]


def class_table(reports: Mapping[str, Mapping[str, Any]]) -> Table:
    """One row per policy and device class (module docstring)."""
    table = Table(
        title="by device class",
        caption="ttft, gap: ms; slo %: under the class's own objectives; gpu-s, mJ: per request; batt %: "
        "per 1,000 requests",
        box=box.SIMPLE_HEAD,
        padding=(0, 0),
        pad_edge=False,
        show_edge=False,
    )
    for header in ("policy", "class", "reqs", "ttft\np50", "ttft\np90", "gap\np99", "slo\n%"):
        table.add_column(header, justify="left" if header in ("policy", "class") else "right")
    for header in ("gpu-s\n/req", "mJ\n/req", "batt%\n/1k"):
        table.add_column(header, justify="right")
    for policy, report in reports.items():
        for record in report.get("by_class", []):
            table.add_row(*_row(policy, record))
    return table
