"""``pdcore optimize``: the optimizer's settings over prompt length, with the simulator's grid check."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from pdcore.cli.options import (
    DEFAULT_CLOUD,
    DEFAULT_DEVICE,
    DEFAULT_NETWORK,
    CloudOption,
    DeviceOption,
    MaxTpotOption,
    NetworkOption,
    OldMaxTpotOption,
    TraceOption,
    TtftOption,
    check_outputs,
    check_slo_flags,
    max_tpot_flag,
    reported,
    stdout,
)
from pdcore.exceptions import InvalidInputError
from pdcore.optimize import (
    DEFAULT_QUALITY_BUDGET,
    DEFAULT_QUALITY_CURVE,
    QUALITY_BOUNDS,
    MeasuredQuality,
    Optimizer,
    QualityBound,
)
from pdcore.optimize.optimizer import Choice
from pdcore.optimize.quality import check_quality_budget
from pdcore.outputs import write_text
from pdcore.profiles import DeviceProfile
from pdcore.sim.grid import GridPoint, grid_check
from pdcore.sim.metrics import round_floats
from pdcore.sim.scenario import Scenario
from pdcore.sim.spec import ScenarioSpec, WorkloadSpec, named_input
from pdcore.slo import DEFAULT_TTFT_SLO_S

__all__ = ["optimize", "register"]

DEFAULT_LENGTHS = (64, 128, 256, 512, 1024, 2048, 4096, 8192)


def _lengths(trace: Path | None, lengths: str | None) -> list[int]:
    if lengths:
        try:
            values = [int(x) for x in lengths.split(",") if x.strip()]
        except ValueError:
            values = []
        if not values or min(values) < 1:
            raise InvalidInputError(
                f"--lengths {lengths!r}; fix: pass comma-separated prompt lengths >= 1, e.g. 256,1024,4096"
            )
        return values
    if trace is not None:
        prompts = WorkloadSpec(trace=str(trace)).load().prompt_tokens
        quantiles = np.percentile(prompts, [10, 25, 50, 75, 90, 99])
        return sorted({max(1, round(float(q))) for q in quantiles})
    return list(DEFAULT_LENGTHS)


def _refinement(
    refine: str, quality: str | None, budget: float, bound: str
) -> tuple[tuple[float, ...], MeasuredQuality | None, QualityBound]:
    """The candidate ratios and the quality curve of ``--refine`` and ``--quality``."""
    if bound not in QUALITY_BOUNDS:
        raise InvalidInputError(
            f"--quality-bound {bound!r}; fix: pass ci95 (the upper end of the drop's 95% interval) or mean"
        )
    checked_bound: QualityBound = "mean" if bound == "mean" else "ci95"
    check_quality_budget(budget, "--quality-budget")
    choice = refine.strip().lower()
    if choice == "none":
        if quality is not None:
            raise InvalidInputError(
                f"--quality {quality!r} without refinement; fix: add --refine auto (or a ratio list), "
                "or drop --quality"
            )
        return (1.0,), None, checked_bound
    requested: list[float] | None = None
    if choice != "auto":
        try:
            requested = [float(x) for x in choice.split(",") if x.strip()]
        except ValueError:
            requested = []
        if not requested or not all(math.isfinite(r) and 0.0 < r <= 1.0 for r in requested):
            raise InvalidInputError(
                f"--refine {refine!r}; fix: pass none, auto, or comma-separated ratios in (0, 1], "
                "e.g. 1,0.5,0.35"
            )
    source = quality if quality is not None else DEFAULT_QUALITY_CURVE
    try:
        measured = MeasuredQuality.load(source)
    except InvalidInputError as exc:
        raise InvalidInputError(f"--quality: {exc}") from None
    if requested is None:
        return measured.ratios, measured, checked_bound
    ratios = []
    for r in requested:
        found = measured.find(r)
        if found is None and r != 1.0:
            known = ", ".join(f"{x:g}" for x in measured.ratios)
            raise InvalidInputError(
                f"--refine: ratio {r:g} has no measured quality drop in {measured.source} (measured: "
                f"{known}); fix: pick measured ratios, or --refine auto"
            )
        ratios.append(r if found is None else found.ratio)
    return tuple(ratios), measured, checked_bound


def _grid_cell(k: int, cost: float) -> str:
    if math.isinf(cost):
        return "none"  # no k on the grid met the gap bound (e.g. the cloud's own gaps exceed it)
    return "device" if k < 0 else str(k)


def _columns(*, refining: bool, checked: bool) -> list[str]:
    """The headers, in two lines each where one would not fit 80 columns (times in ms, the legend says)."""
    columns = ["prompt\ntokens", "mode", "k*"]
    if refining:
        columns.append("refine r")
    columns += ["pace", "cloud\nTTFT", "device\nready", "device\nalone"]
    if checked:
        columns += ["grid\nk", "grid\nr"] if refining else ["grid\nk"]
        columns += ["cost\nratio", "sim\ngap"]
    return columns


def _row(
    length: int, choice: Choice, grid: GridPoint | None, device: DeviceProfile, *, refining: bool
) -> tuple[dict[str, Any], list[str]]:
    """One prompt length's JSON row and table cells."""
    device_only = float(device.prefill_s(length))
    row: dict[str, Any] = {
        "prompt_tokens": length,
        "mode": choice.mode,
        "k": choice.k,
        "refine_ratio": choice.refine_ratio,
        "pace_s": choice.max_tpot_s,
        "cloud_first_token_s": choice.first_token_s,
        "device_ready_s": choice.device_ready_s,
        "device_only_ttft_s": device_only,
        "converged": choice.converged,
    }
    cells = [str(length), choice.mode, str(choice.k)]
    if refining:
        cells.append(f"{choice.refine_ratio:g}")
    cells += [
        f"{choice.max_tpot_s * 1e3:g}",
        f"{choice.first_token_s * 1e3:.0f}",
        f"{choice.device_ready_s * 1e3:.0f}",
        f"{device_only * 1e3:.0f}",
    ]
    if grid is not None:
        row.update(
            grid_k=grid.k_grid,
            grid_refine_ratio=grid.refine_grid,
            cost_ratio=grid.cost_ratio,
            simulated_max_gap_s=grid.analytic_max_gap_s,
        )
        cells.append(_grid_cell(grid.k_grid, grid.cost_grid_gpu_s))
        if refining:
            cells.append("-" if grid.k_grid < 0 else f"{grid.refine_grid:g}")
        cells += [f"{grid.cost_ratio:.3f}", f"{grid.analytic_max_gap_s * 1e3:.1f}"]
    return row, cells


def _legend(*, refining: bool, checked: bool) -> str:
    grid_note = (
        "cost ratio: simulated cloud GPU-s of the choice over the cheapest (k, r) on a simulator "
        "grid of every k at every allowed r, meeting the same max gap; sim gap: the choice's simulated "
        "largest gap"
        if refining
        else "cost ratio: simulated cloud GPU-s of k* over the cheapest k on a simulator grid "
        "meeting the same max gap; sim gap: k*'s simulated largest gap"
    )
    return (
        "times in ms; pace: the controller's ceiling between displayed tokens; cloud TTFT: the cloud's "
        "first token; device ready: the device's catch-up done; device alone: its TTFT serving alone; "
        "k*: cloud decode tokens after the first (the catch-up fixed point)"
        + ("; refine r: the kept fraction of the prompt the device prefills" if refining else "")
        + (f"; {grid_note}" if checked else "")
    )


def _refinement_json(
    measured: MeasuredQuality,
    ratios: Sequence[float],
    allowed: Sequence[float],
    budget: float,
    bound: QualityBound,
) -> dict[str, Any]:
    return {
        "quality": measured.source,
        "quality_budget": budget,
        "quality_bound": bound,
        "candidates": sorted(set(ratios) | {1.0}, reverse=True),
        "allowed": list(allowed),
        "drops": [
            {"ratio": d.ratio, "drop": d.mean, "drop_ci95_high": d.high}
            for d in measured.drops
            if d.ratio in ratios or d.ratio == 1.0
        ],
    }


LengthsOption = Annotated[
    str | None, typer.Option("--lengths", help="Comma-separated prompt lengths (default: a range).")
]
CheckOption = Annotated[
    bool,
    typer.Option("--check/--no-check", help="Check each choice against a simulator grid search."),
]
RefineOption = Annotated[
    str,
    typer.Option(
        "--refine",
        help="Refinement ratios the optimizer may pick per prompt: none (the default), auto (the "
        "quality curve's ratios) or R1,R2,... (measured ratios); r = 1 is always a candidate.",
    ),
]
QualityOption = Annotated[
    str | None,
    typer.Option(
        "--quality",
        help=f"Quality curve for --refine: a shipped name or a .toml from `pdcore refine-eval` "
        f"(default {DEFAULT_QUALITY_CURVE}).",
    ),
]
QualityBudgetOption = Annotated[
    float,
    typer.Option("--quality-budget", help="Largest accepted quality drop (absolute F1, 0.02 = 2 points)."),
]
QualityBoundOption = Annotated[
    str,
    typer.Option(
        "--quality-bound",
        help="Check the budget against the upper end of the drop's 95% interval (ci95, the "
        "default) or its estimate (mean).",
    ),
]


def _table(
    scenario: Scenario,
    prompts: list[int],
    choices: list[Choice],
    grid: list[GridPoint] | None,
    *,
    refining: bool,
) -> tuple[Table, list[dict[str, Any]]]:
    """The table of the optimizer's choices, and their JSON rows."""
    table = Table(
        title=f"optimizer: device {scenario.device.name} | cloud {scenario.cloud.name} | network "
        f"{scenario.network.name} | max gap {scenario.slo.max_tpot_s * 1e3:g} ms",
        title_justify="left",
        header_style="bold",
    )
    for column in _columns(refining=refining, checked=grid is not None):
        table.add_column(column, justify="left" if column == "mode" else "right")
    rows: list[dict[str, Any]] = []
    for i, (length, choice) in enumerate(zip(prompts, choices, strict=True)):
        row, cells = _row(
            length, choice, None if grid is None else grid[i], scenario.device, refining=refining
        )
        rows.append(row)
        table.add_row(*cells)
    return table, rows


def _payload(scenario: Scenario, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON document of ``--json``, before any refinement section."""
    return {
        "device": scenario.device.name,
        "cloud": scenario.cloud.name,
        "network": scenario.network.name,
        "slo": {"ttft_s": scenario.slo.ttft_s, "max_tpot_s": scenario.slo.max_tpot_s},
        "rows": rows,
    }


def optimize(
    trace: TraceOption = None,
    device_profile: DeviceOption = DEFAULT_DEVICE,
    cloud_profile: CloudOption = DEFAULT_CLOUD,
    network: NetworkOption = DEFAULT_NETWORK,
    ttft_slo: TtftOption = DEFAULT_TTFT_SLO_S,
    max_tpot: MaxTpotOption = None,
    tpot_slo: OldMaxTpotOption = None,
    lengths: LengthsOption = None,
    check: CheckOption = True,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the table as JSON.")] = None,
    refine: RefineOption = "none",
    quality: QualityOption = None,
    quality_budget: QualityBudgetOption = DEFAULT_QUALITY_BUDGET,
    quality_bound: QualityBoundOption = "ci95",
) -> None:
    """Print the optimizer's k*, pace, mode and refinement over prompt length, with predicted timings.

    With --trace the prompt lengths are the trace's prompt quantiles (p10 to p99). With --refine the
    optimizer also picks the refinement ratio per prompt, among the ratios whose measured quality drop
    is within --quality-budget.
    """
    with reported():
        objective = max_tpot_flag(max_tpot, tpot_slo)
        spec = ScenarioSpec(
            device=device_profile,
            cloud=cloud_profile,
            network=network,
            ttft_slo_s=ttft_slo,
            max_tpot_s=objective,
        )
        traced = {} if trace is None else WorkloadSpec(trace=str(trace)).inputs()
        check_outputs({"--json": json_out}, traced | spec.inputs() | named_input("--quality", quality))
        check_slo_flags(ttft_slo, objective)
        scenario = spec.build()
        device, cloud, net, slo = scenario.device, scenario.cloud, scenario.network, scenario.slo
        prompts = _lengths(trace, lengths)
        ratios, measured, bound = _refinement(refine, quality, quality_budget, quality_bound)
        drops = measured.checked(bound) if measured is not None else None
        opt = Optimizer(
            device=device,
            cloud=cloud,
            slo=slo,
            refine_ratios=ratios,
            quality=drops,
            quality_budget=quality_budget,
        )
        choices = opt.table(prompts, one_way_s=net.rtt_s / 2.0)
        grid: list[GridPoint] | None = None
        if check:
            grid = grid_check(
                prompts,
                device=device,
                cloud=cloud,
                network=net,
                slo=slo,
                refine_ratios=ratios,
                quality=drops,
                quality_budget=quality_budget,
            )
        table, rows = _table(scenario, prompts, choices, grid, refining=measured is not None)
        console = stdout()
        console.print(table)
        console.print(_legend(refining=measured is not None, checked=grid is not None))
        payload = _payload(scenario, rows)
        if measured is not None:
            console.print(measured.describe(quality_budget, bound, ratios), soft_wrap=True)
            payload["refinement"] = _refinement_json(
                measured, ratios, opt.allowed_ratios, quality_budget, bound
            )
        if json_out is not None:
            write_text(json_out, json.dumps(round_floats(payload), indent=2, sort_keys=True) + "\n")


def register(app: typer.Typer) -> None:
    """Adds the ``optimize`` command to ``app``."""
    app.command()(optimize)
