"""The tables ``pdcore compare`` and ``pdcore simulate`` print, and the CSV ``compare`` writes: one row per
policy from its report (``docs/schema.md``), and one per policy and turn for a multi-turn workload.

Each table comes in two widths. The default fits an 80-column terminal: the figures a reader compares
first (TTFT, the largest display gap, the share meeting the SLO, the cloud's work, the device's energy),
two-line headers, and latencies from 100 s up in seconds (an overloaded run's hours of queueing would
otherwise widen every latency column by three digits). ``--wide`` gives every figure, as one line per
header, for a wide terminal or a file. The 80-column budget is ours (the classic terminal width a new user's
window opens at); ``tests/test_cli_tables.py`` renders each default table at 80 columns and checks that no
cell is cut.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from pdcore.outputs import open_text
from pdcore.sim.metrics import round_floats

__all__ = ["arrival_rate", "capacity_table", "policy_table", "turn_table", "write_csv"]

Report = Mapping[str, Any]

SECONDS_FROM_S = 100.0
"""Latencies at least this long, in seconds, are shown in seconds (with an ``s``) in the default tables."""


def arrival_rate(rate_rps: float | None) -> str:
    """An arrival rate, or why there is none (every request arrives at once)."""
    return "rate undefined" if rate_rps is None else f"{rate_rps:.2f} req/s"


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value * 1e3:.0f}"


def _short_ms(value: Any) -> str:
    """A latency in ms, or in whole seconds with an ``s`` from `SECONDS_FROM_S` up."""
    if value is not None and value >= SECONDS_FROM_S:
        return f"{value:.0f}s"
    return _ms(value)


def _num(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


@dataclass(frozen=True)
class _Column:
    """One figure of a table: its header in the wide table, in the default one (None: wide only; a
    newline splits it into two lines) and its cell, given whether the table is the default one."""

    wide: str
    short: str | None
    cell: Callable[[Report, bool], str]


def _latency(*keys: str) -> Callable[[Report, bool], str]:
    def cell(report: Report, short: bool) -> str:
        value: Any = report
        for key in keys:
            value = value[key]
        return _short_ms(value) if short else _ms(value)

    return cell


def _cost(key: str, digits: int) -> Callable[[Report, bool], str]:
    def cell(report: Report, short: bool) -> str:
        cost = report.get("cost")
        if cost is None:
            return "-"
        value = cost[key]
        return _num(value["mean"] if isinstance(value, Mapping) else value, digits)

    return cell


_COST_COLUMNS = (
    _Column("$/1k req", None, _cost("usd_per_1k_requests", 3)),
    _Column("mJ/req", "mJ\n/req", _cost("device_mj_per_request", 0)),
    _Column("batt %/req", None, _cost("battery_pct_per_request", 4)),
)

_POLICY_COLUMNS = (
    _Column("TTFT p50", "TTFT\np50", _latency("ttft_s", "p50")),
    _Column("TTFT p99", "TTFT\np99", _latency("ttft_s", "p99")),
    _Column("TPOT mean", None, _latency("tpot_s", "mean")),
    _Column("gap p99", "gap\np99", _latency("max_gap_s", "p99")),
    _Column("stall p99", None, _latency("handoff_stall_s", "p99")),
    _Column("QoE", None, lambda r, _: _num(r["qoe"]["mean"], 3)),
    _Column("SLO met", "SLO\nmet", lambda r, _: _pct(r["slo_attainment"])),
    _Column("gap SLO", None, lambda r, _: _pct(r["gap_slo_attainment"])),
    _Column("GPU-s/req", "GPU-s\n/req", lambda r, _: _num(r["cloud_gpu_s_per_request"]["total"], 3)),
    _Column("cloud tok/req", "cloud\ntok/req", lambda r, _: _num(r["cloud_decode_tokens_per_request"], 1)),
    *_COST_COLUMNS,
)

_CAPACITY_COLUMNS = (
    _Column("capacity rps", None, lambda r, _: _capacity_cell(r["capacity"])),
    _Column("decode cap rps", None, lambda r, _: _capacity_cell(r["decode_capacity"])),
)

_TURN_COLUMNS = (
    _Column("requests", "reqs", lambda r, _: str(r["requests"])),
    _Column("TTFT p50", "TTFT\np50", _latency("ttft_s", "p50")),
    _Column("TTFT p90", "TTFT\np90", _latency("ttft_s", "p90")),
    _Column("gap max", "gap\nmax", _latency("max_gap_s", "max")),
    _Column("GPU-s/req", "GPU-s\n/req", lambda r, _: _num(r["cloud_gpu_s_per_request"], 3)),
    _Column("dev cached", "dev\ncached", lambda r, _: _num(r["device_cached_tokens_per_request"], 0)),
    _Column("cloud cached", "cloud\ncached", lambda r, _: _num(r["cloud_cached_tokens_per_request"], 0)),
    *(_Column(column.wide, None, column.cell) for column in _COST_COLUMNS),
)


def _table(title: str | None, caption: str) -> Table:
    return Table(
        title=title, title_justify="left", header_style="bold", caption=caption, caption_justify="left"
    )


def _fill(
    table: Table,
    columns: tuple[_Column, ...],
    rows: list[tuple[list[str], Report]],
    *,
    keys: int,
    wide: bool,
) -> Table:
    """Adds the ``keys`` leading key columns (left-aligned; the first folds a long policy name rather than
    cutting it) and the figures of ``columns`` shown at this width, then one row per (keys, report)."""
    shown = [column for column in columns if wide or column.short is not None]
    for index in range(keys):
        header = ("policy", "turn")[index]
        table.add_column(header, overflow="fold", no_wrap=wide and index == 0)
    for column in shown:
        header = column.wide if wide else str(column.short)
        table.add_column(header, justify="right", no_wrap=True)
    for key_cells, report in rows:
        table.add_row(*key_cells, *(column.cell(report, not wide) for column in shown))
    return table


_LEGEND = f"latencies in ms ({SECONDS_FROM_S:g} s and longer in s); gap: largest display gap"
_COST_LEGEND = (
    "$/1k req: cloud GPU-seconds at the cloud profile's GPU-hour price; mJ/req and batt %/req: the "
    "device's compute, radio and waiting energy, and its share of the stated battery (- where a profile "
    "gives no price)"
)


def policy_table(
    reports: Mapping[str, Report], *, capacity: bool = False, title: str | None = None, wide: bool = False
) -> Table:
    """One row per policy: the default figures (module docstring), or every figure with ``wide``, which
    also carries the capacities when ``capacity`` (the default width prints them in `capacity_table`)."""
    if wide:
        caption = (
            f"latencies in ms; gap: largest display gap; stall: hand-off gap above max_tpot; {_COST_LEGEND}"
            + ("; decode cap: one decode replica of a disaggregated cloud" if capacity else "")
        )
    else:
        caption = (
            f"{_LEGEND}; SLO met: TTFT and every gap within the "
            "SLO; cloud tok/req: tokens the cloud decoded; mJ/req: device energy; --wide: every figure"
        )
    columns = _POLICY_COLUMNS + (_CAPACITY_COLUMNS if capacity and wide else ())
    rows = [([name], report) for name, report in reports.items()]
    return _fill(_table(title, caption), columns, rows, keys=1, wide=wide)


def capacity_table(reports: Mapping[str, Report]) -> Table:
    """The capacities ``compare --capacity`` found, one row per policy, with each decode capacity over
    cloud-only's when both were found (the default width's second table)."""
    table = Table(
        title="capacity",
        title_justify="left",
        header_style="bold",
        caption="req/s: the highest arrival rate meeting the SLO for the target share of requests, on the "
        "whole cloud (capacity) and on one decode replica of a disaggregated cloud (decode capacity)",
        caption_justify="left",
    )
    table.add_column("policy", overflow="fold")
    for header in ("capacity\nreq/s", "decode\ncapacity", "decode\nvs cloud-only"):
        table.add_column(header, justify="right", no_wrap=True)
    base = reports.get("cloud-only", {}).get("decode_capacity", {})
    for name, report in reports.items():
        found = report["decode_capacity"]
        times = "-"
        if base.get("bound") == "found" and found["bound"] == "found" and base["rps"] > 0:
            times = f"{found['rps'] / base['rps']:.1f}x"
        table.add_row(name, _capacity_cell(report["capacity"]), _capacity_cell(found), times)
    return table


def turn_table(reports: Mapping[str, Report], *, wide: bool = False) -> Table:
    """TTFT, largest gap, cloud work and cached prompt tokens by turn (a multi-turn workload); with ``wide``
    also the turn's cost."""
    caption = (
        "latencies in ms; dev/cloud cached: prompt tokens found cached per request; $/1k req, mJ/req and "
        "batt %/req: as in the table above, for the turn's requests"
        if wide
        else f"{_LEGEND}; reqs: the turn's requests; dev/cloud cached: prompt tokens found cached per request"
    )
    rows = [
        ([name, turn], row)
        for name, report in reports.items()
        for turn, row in report.get("per_turn", {}).items()
    ]
    return _fill(_table("by turn", caption), _TURN_COLUMNS, rows, keys=2, wide=wide)


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
