"""The fleet section of a report: results by device class from ``pdcore compare --fleet --json`` and the
capable-share sweep from ``pdcore size --fleet --json``, as ``fleet.md`` and ``fleet_sweep.png``.

Rules (ours): the section is driven from those two JSON files (``pdcore reproduce --fleet`` computes the
same two documents on its own study, `pdcore.report.fleet_study`, and renders them with this module's
table and figure); each table names the command that made it (the ``command`` given, or
the file it was read from). The per-class table gives, per policy and class, the TTFT p50/p90, the largest
gap p99, the cloud GPU-s, device mJ and battery % per request (`pdcore.sim.fleet_runs.by_class`). The
figure draws, per policy, the GPUs needed at the SLO against the capable share (an unattainable point is
a gap in the line); it needs the ``plot`` extra (matplotlib). ``fleet.html``, the same section with an
interactive figure, is `pdcore.report.fleet_page`'s.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pdcore.exceptions import InvalidInputError
from pdcore.outputs import write_text
from pdcore.report.style import COLOURS, CYCLE

__all__ = [
    "SWEEP_FIGURE",
    "class_table",
    "fleet_section",
    "policy_colour",
    "read_document",
    "sweep_figure",
    "sweep_points",
]

SWEEP_FIGURE = "fleet_sweep.png"
"""The file name of the sweep's PNG."""


def read_document(path: Path, key: str, flag: str) -> dict[str, Any]:
    """The JSON document in ``path`` (given as ``flag``), which must have ``key``.

    Raises:
        InvalidInputError: The file cannot be read as JSON, or has no ``key``.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInputError(
            f"{flag} {str(path)!r} cannot be read as JSON ({exc}); fix: pass the file"
        ) from None
    if not isinstance(document, dict) or key not in document:
        raise InvalidInputError(
            f"{flag} {str(path)!r} has no {key!r}; fix: pass a file written with --fleet and --json"
        )
    return document


def _number(value: Any, scale: float = 1.0, digits: int = 3) -> str:
    return "-" if not isinstance(value, (int, float)) else f"{value * scale:.{digits}g}"


def class_table(document: Mapping[str, Any]) -> list[str]:
    """Markdown rows of the per-class table of a ``compare --fleet --json`` document."""
    rows = [
        "| policy | class | share | requests | TTFT p50 s | TTFT p90 s | largest gap p99 ms | GPU-s/request "
        "| device mJ/request | battery %/request |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for policy, report in document["policies"].items():
        for record in report.get("by_class") or []:
            ttft, gap, cost = record.get("ttft_s", {}), record.get("max_gap_s", {}), record.get("cost", {})
            rows.append(
                f"| {policy} | {record['name']} | {record['share']:.1%} | {record['requests']} | "
                f"{_number(ttft.get('p50'))} | {_number(ttft.get('p90'))} | {_number(gap.get('p99'), 1e3)} | "
                f"{_number(record.get('cloud_gpu_s_per_request'))} | "
                f"{_number(cost.get('device_mj_per_request', {}).get('mean'), digits=4)} | "
                f"{_number(cost.get('battery_pct_per_request'))} |"
            )
    return rows


def sweep_points(document: Mapping[str, Any]) -> dict[str, list[tuple[float, int | None]]]:
    """Per policy, (capable share in percent, GPUs or None) of each swept mix (not the fleet as given)."""
    points: dict[str, list[tuple[float, int | None]]] = {}
    for mix in document["fleet_sizing"]["mixes"]:
        if mix["label"] == "as given":
            continue
        for policy, sized in mix["sizing"].items():
            points.setdefault(policy, []).append((100.0 * mix["capable_share"], sized["gpus"]))
    return points


def policy_colour(policy: str, index: int) -> str:
    """A policy's colour in the report's figures (`pdcore.report.style`), else the cycle's ``index``-th."""
    return COLOURS.get(policy, CYCLE[index % len(CYCLE)])


def sweep_figure(document: Mapping[str, Any], path: Path) -> Path:
    """The PNG of GPUs needed against the capable share, one line per policy (module docstring)."""
    from matplotlib.figure import Figure  # noqa: PLC0415 - the plot extra is optional

    from pdcore.report.plots.drawing import save  # noqa: PLC0415 - it imports matplotlib

    figure = Figure(figsize=(6.0, 3.6))
    axes = figure.add_subplot()
    for index, (policy, points) in enumerate(sweep_points(document).items()):
        shares = [share for share, _ in points]
        gpus = [float("nan") if g is None else float(g) for _, g in points]
        axes.plot(shares, gpus, marker="o", label=policy, color=policy_colour(policy, index))
    axes.set_xlabel("capable devices, % of requests")
    axes.set_ylabel("GPUs needed at the SLO")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend()
    fleet = document["fleet_sizing"]["mixes"][0]["fleet"]["name"]
    axes.set_title(f"{document['workload'].get('name', '')} over {fleet}", fontsize=10)
    figure.tight_layout()
    return save(figure, path)


def fleet_section(
    out: Path,
    *,
    compare_json: Path | None,
    size_json: Path | None,
    commands: Mapping[str, str] | None = None,
) -> Path:
    """Writes ``out/fleet.md`` (and ``out/fleet_sweep.png`` with ``size_json``); returns the markdown's path.

    Raises:
        InvalidInputError: Neither file given, or a file that is not such a JSON document.
    """
    if compare_json is None and size_json is None:
        raise InvalidInputError("the fleet section needs --compare-json or --size-json; fix: pass one")
    made = dict(commands or {})
    lines = ["## Fleet", ""]
    if compare_json is not None:
        document = read_document(compare_json, "policies", "--compare-json")
        fleet = document.get("config", {}).get("fleet") or {}
        lines += [f"Results by device class over fleet {fleet.get('name', '?')}.", ""]
        lines += [
            f"Made by: `{made.get('compare', f'pdcore compare --fleet ... --json {compare_json.name}')}`",
            "",
        ]
        lines += [*class_table(document), ""]
    if size_json is not None:
        document = read_document(size_json, "fleet_sizing", "--size-json")
        out.mkdir(parents=True, exist_ok=True)
        figure = sweep_figure(document, out / SWEEP_FIGURE)
        lines += ["GPUs needed at the SLO as the share of capable devices goes from 0 to 100%.", ""]
        command = made.get("size", f"pdcore size --fleet ... --json {size_json.name}")
        lines += [f"Made by: `{command}`", ""]
        lines += [f"![GPUs against the capable share]({figure.name})", ""]
    out.mkdir(parents=True, exist_ok=True)
    path = out / "fleet.md"
    write_text(path, "\n".join(lines))
    return path
