"""The tables ``pdcore compare`` and ``pdcore simulate`` print, and the CSV ``compare`` writes: one row per
policy from its report (``docs/schema.md``), and one per policy and turn for a multi-turn workload."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.table import Table

from pdcore.outputs import open_text
from pdcore.sim.metrics import round_floats

__all__ = ["arrival_rate", "policy_table", "turn_table", "write_csv"]


def arrival_rate(rate_rps: float | None) -> str:
    """An arrival rate, or why there is none (every request arrives at once)."""
    return "rate undefined" if rate_rps is None else f"{rate_rps:.2f} req/s"


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value * 1e3:.0f}"


def _num(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def policy_table(
    reports: Mapping[str, Mapping[str, Any]], *, capacity: bool, title: str | None = None
) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        header_style="bold",
        caption="latencies in ms; gap: largest display gap; stall: hand-off gap above max_tpot; "
        "$/1k req: cloud GPU-seconds at the cloud profile's GPU-hour price; mJ/req and batt %/req: the "
        "device's compute, radio and waiting energy, and its share of the stated battery (- where a "
        "profile gives no price)"
        + ("; decode cap: one decode replica of a disaggregated cloud" if capacity else ""),
        caption_justify="left",
    )
    columns = [
        "policy",
        "TTFT p50",
        "TTFT p99",
        "TPOT mean",
        "gap p99",
        "stall p99",
        "QoE",
        "SLO met",
        "gap SLO",
        "GPU-s/req",
        "cloud tok/req",
        "$/1k req",
        "mJ/req",
        "batt %/req",
    ]
    if capacity:
        columns += ["capacity rps", "decode cap rps"]
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right", no_wrap=index == 0)
    for name, report in reports.items():
        row = [
            name,
            _ms(report["ttft_s"]["p50"]),
            _ms(report["ttft_s"]["p99"]),
            _ms(report["tpot_s"]["mean"]),
            _ms(report["max_gap_s"]["p99"]),
            _ms(report["handoff_stall_s"]["p99"]),
            _num(report["qoe"]["mean"], 3),
            _pct(report["slo_attainment"]),
            _pct(report["gap_slo_attainment"]),
            _num(report["cloud_gpu_s_per_request"]["total"], 3),
            _num(report["cloud_decode_tokens_per_request"], 1),
            *_cost_cells(report.get("cost")),
        ]
        if capacity:
            row += [_capacity_cell(report["capacity"]), _capacity_cell(report["decode_capacity"])]
        table.add_row(*row)
    return table


def _cost_cells(cost: Mapping[str, Any] | None) -> list[str]:
    """The ``$/1k req``, ``mJ/req`` and ``batt %/req`` cells of a report's ``cost`` object."""
    if cost is None:
        return ["-", "-", "-"]
    return [
        _num(cost["usd_per_1k_requests"], 3),
        _num(cost["device_mj_per_request"]["mean"], 0),
        _num(cost["battery_pct_per_request"], 4),
    ]


def turn_table(reports: Mapping[str, Mapping[str, Any]]) -> Table:
    """TTFT, largest gap, cloud work and cached prompt tokens by turn (a multi-turn workload)."""
    table = Table(
        title="by turn",
        title_justify="left",
        header_style="bold",
        caption="latencies in ms; dev/cloud cached: prompt tokens found cached per request; $/1k req, "
        "mJ/req and batt %/req: as in the table above, for the turn's requests",
        caption_justify="left",
    )
    columns = [
        "policy",
        "turn",
        "requests",
        "TTFT p50",
        "TTFT p90",
        "gap max",
        "GPU-s/req",
        "dev cached",
        "cloud cached",
        "$/1k req",
        "mJ/req",
        "batt %/req",
    ]
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index < 2 else "right", no_wrap=index == 0)
    for name, report in reports.items():
        for turn, row in report.get("per_turn", {}).items():
            table.add_row(
                name,
                turn,
                str(row["requests"]),
                _ms(row["ttft_s"]["p50"]),
                _ms(row["ttft_s"]["p90"]),
                _ms(row["max_gap_s"]["max"]),
                _num(row["cloud_gpu_s_per_request"], 3),
                _num(row["device_cached_tokens_per_request"], 0),
                _num(row["cloud_cached_tokens_per_request"], 0),
                *_cost_cells(row.get("cost")),
            )
    return table


def _capacity_cell(found: Mapping[str, Any]) -> str:
    if found["bound"] == "above_max":
        return f">{found['max_rps_tried']:.0f}"
    if found["bound"] == "below_min":
        return f"<{found['min_rps_tried']:.2f}"
    return f"{found['rps']:.2f}"


def _flatten(report: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in report.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= _flatten(value, f"{name}.")
        else:
            flat[name] = value
    return flat


def write_csv(path: Path, reports: Mapping[str, Mapping[str, Any]]) -> None:
    rows = [{"policy": name} | _flatten(round_floats(report)) for name, report in reports.items()]
    header: list[str] = []
    for row in rows:
        header += [key for key in row if key not in header]
    with open_text(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n", restval="")
        writer.writeheader()
        writer.writerows({key: "" if value is None else value for key, value in row.items()} for row in rows)
