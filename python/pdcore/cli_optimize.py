"""``pdcore optimize``: the optimizer's settings over prompt length, with the simulator's grid check.

The command's annotations are evaluated when `register` runs (no postponed annotations here), because
the shared option types are imported inside it from the main CLI module.
"""

import json
import math
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from pdcore.exceptions import InvalidInputError
from pdcore.optimize import (
    DEFAULT_QUALITY_BUDGET,
    DEFAULT_QUALITY_CURVE,
    QUALITY_BOUNDS,
    MeasuredQuality,
    Optimizer,
    QualityBound,
    grid_check,
)
from pdcore.optimize.quality import check_quality_budget
from pdcore.profiles import load_cloud_profile, load_device_profile, network_preset
from pdcore.sim.metrics import SLO, round_floats
from pdcore.traces import load_trace

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
        prompts = load_trace(trace).prompt_tokens
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


def register(app: typer.Typer) -> None:
    """Adds the ``optimize`` command to ``app``."""
    from pdcore.cli import (  # noqa: PLC0415  (shared options live in the main CLI module)
        CloudOption,
        DeviceOption,
        NetworkOption,
        TpotOption,
        TraceOption,
        TtftOption,
        _reported,
        _stdout,
    )

    @app.command()
    def optimize(
        trace: TraceOption = None,
        device_profile: DeviceOption = "llama32-3b-w4a16-8elite-genie",
        cloud_profile: CloudOption = "llama3-8b-a100",
        network: NetworkOption = "wifi",
        ttft_slo: TtftOption = 1.0,
        tpot_slo: TpotOption = 0.05,
        lengths: Annotated[
            str | None, typer.Option("--lengths", help="Comma-separated prompt lengths (default: a range).")
        ] = None,
        check: Annotated[
            bool,
            typer.Option("--check/--no-check", help="Check each choice against a simulator grid search."),
        ] = True,
        json_out: Annotated[Path | None, typer.Option("--json", help="Write the table as JSON.")] = None,
        refine: Annotated[
            str,
            typer.Option(
                "--refine",
                help="Refinement ratios the optimizer may pick per prompt: none (the default), auto (the "
                "quality curve's ratios) or R1,R2,... (measured ratios); r = 1 is always a candidate.",
            ),
        ] = "none",
        quality: Annotated[
            str | None,
            typer.Option(
                "--quality",
                help=f"Quality curve for --refine: a shipped name or a .toml from `pdcore refine-eval` "
                f"(default {DEFAULT_QUALITY_CURVE}).",
            ),
        ] = None,
        quality_budget: Annotated[
            float,
            typer.Option(
                "--quality-budget", help="Largest accepted quality drop (absolute F1, 0.02 = 2 points)."
            ),
        ] = DEFAULT_QUALITY_BUDGET,
        quality_bound: Annotated[
            str,
            typer.Option(
                "--quality-bound",
                help="Check the budget against the upper end of the drop's 95% interval (ci95, the "
                "default) or its estimate (mean).",
            ),
        ] = "ci95",
    ) -> None:
        """Print the optimizer's k*, pace, mode and refinement over prompt length, with predicted timings.

        With --trace the prompt lengths are the trace's prompt quantiles (p10 to p99). With --refine the
        optimizer also picks the refinement ratio per prompt, among the ratios whose measured quality drop
        is within --quality-budget.
        """
        with _reported():
            device = load_device_profile(device_profile)
            cloud = load_cloud_profile(cloud_profile)
            net = network_preset(network)
            slo = SLO(ttft_s=ttft_slo, tpot_s=tpot_slo)
            prompts = _lengths(trace, lengths)
            ratios, measured, bound = _refinement(refine, quality, quality_budget, quality_bound)
            drops = measured.checked(bound) if measured is not None else None
            refining = measured is not None
            opt = Optimizer(
                device=device,
                cloud=cloud,
                slo=slo,
                refine_ratios=ratios,
                quality=drops,
                quality_budget=quality_budget,
            )
            one_way = net.rtt_s / 2.0
            choices = opt.table(prompts, one_way_s=one_way)
            grid = (
                grid_check(
                    prompts,
                    device=device,
                    cloud=cloud,
                    network=net,
                    slo=slo,
                    refine_ratios=ratios,
                    quality=drops,
                    quality_budget=quality_budget,
                )
                if check
                else None
            )
            table = Table(
                title=f"optimizer: device {device.name} | cloud {cloud.name} | network {net.name} | "
                f"max gap {tpot_slo * 1e3:g} ms",
                title_justify="left",
                header_style="bold",
            )
            columns = ["prompt", "mode", "k*"]
            if refining:
                columns.append("refine r")
            columns += ["pace (ms)", "cloud TTFT (ms)", "device ready (ms)", "device-only TTFT (ms)"]
            if grid is not None:
                columns += ["grid k", "grid r"] if refining else ["grid k"]
                columns += ["cost vs grid", "sim max gap (ms)"]
            for column in columns:
                table.add_column(column, justify="left" if column == "mode" else "right")
            rows: list[dict[str, Any]] = []
            for i, (length, c) in enumerate(zip(prompts, choices, strict=True)):
                device_only = float(device.prefill_s(length))
                row: dict[str, Any] = {
                    "prompt_tokens": length,
                    "mode": c.mode,
                    "k": c.k,
                    "refine_ratio": c.refine_ratio,
                    "pace_s": c.max_tpot,
                    "cloud_first_token_s": c.first_token_s,
                    "device_ready_s": c.device_ready_s,
                    "device_only_ttft_s": device_only,
                    "converged": c.converged,
                }
                cells = [str(length), c.mode, str(c.k)]
                if refining:
                    cells.append(f"{c.refine_ratio:g}")
                cells += [
                    f"{c.max_tpot * 1e3:g}",
                    f"{c.first_token_s * 1e3:.0f}",
                    f"{c.device_ready_s * 1e3:.0f}",
                    f"{device_only * 1e3:.0f}",
                ]
                if grid is not None:
                    g = grid[i]
                    row.update(
                        grid_k=g.k_grid,
                        grid_refine_ratio=g.refine_grid,
                        cost_ratio=g.cost_ratio,
                        simulated_max_gap_s=g.analytic_max_gap_s,
                    )
                    cells.append(_grid_cell(g.k_grid, g.cost_grid_gpu_s))
                    if refining:
                        cells.append("-" if g.k_grid < 0 else f"{g.refine_grid:g}")
                    cells += [f"{g.cost_ratio:.3f}", f"{g.analytic_max_gap_s * 1e3:.1f}"]
                rows.append(row)
                table.add_row(*cells)
            console = _stdout()
            console.print(table)
            grid_note = (
                "cost vs grid: simulated cloud GPU-s of the choice over the cheapest (k, r) on a simulator "
                "grid of every k at every allowed r, meeting the same max gap"
                if refining
                else "cost vs grid: simulated cloud GPU-s of k* over the cheapest k on a simulator grid "
                "meeting the same max gap"
            )
            console.print(
                "k*: cloud decode tokens after the first (the catch-up fixed point)"
                + ("; refine r: the kept fraction of the prompt the device prefills" if refining else "")
                + (f"; {grid_note}" if grid is not None else "")
            )
            refinement: dict[str, Any] | None = None
            if measured is not None:
                console.print(measured.describe(quality_budget, bound, ratios), soft_wrap=True)
                refinement = {
                    "quality": measured.source,
                    "quality_budget": quality_budget,
                    "quality_bound": bound,
                    "candidates": sorted(set(ratios) | {1.0}, reverse=True),
                    "allowed": list(opt.allowed_ratios),
                    "drops": [
                        {"ratio": d.ratio, "drop": d.mean, "drop_ci95_high": d.high}
                        for d in measured.drops
                        if d.ratio in ratios or d.ratio == 1.0
                    ],
                }
            if json_out is not None:
                payload: dict[str, Any] = {
                    "device": device.name,
                    "cloud": cloud.name,
                    "network": net.name,
                    "slo": {"ttft_s": ttft_slo, "tpot_s": tpot_slo},
                    "rows": rows,
                }
                if refinement is not None:
                    payload["refinement"] = refinement
                json_out.write_text(json.dumps(round_floats(payload), indent=2, sort_keys=True) + "\n")
