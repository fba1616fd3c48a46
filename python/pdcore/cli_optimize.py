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

from pdcore.optimize import Optimizer, grid_check
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
            from pdcore.exceptions import InvalidInputError  # noqa: PLC0415

            raise InvalidInputError(
                f"--lengths {lengths!r}; fix: pass comma-separated prompt lengths >= 1, e.g. 256,1024,4096"
            )
        return values
    if trace is not None:
        prompts = load_trace(trace).prompt_tokens
        quantiles = np.percentile(prompts, [10, 25, 50, 75, 90, 99])
        return sorted({max(1, round(float(q))) for q in quantiles})
    return list(DEFAULT_LENGTHS)


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
    ) -> None:
        """Print the optimizer's k*, pace and mode over prompt length, with predicted timings.

        With --trace the prompt lengths are the trace's prompt quantiles (p10 to p99).
        """
        with _reported():
            device = load_device_profile(device_profile)
            cloud = load_cloud_profile(cloud_profile)
            net = network_preset(network)
            slo = SLO(ttft_s=ttft_slo, tpot_s=tpot_slo)
            prompts = _lengths(trace, lengths)
            opt = Optimizer(device=device, cloud=cloud, slo=slo)
            one_way = net.rtt_s / 2.0
            choices = opt.table(prompts, one_way_s=one_way)
            grid = grid_check(prompts, device=device, cloud=cloud, network=net, slo=slo) if check else None
            table = Table(
                title=f"optimizer: device {device.name} | cloud {cloud.name} | network {net.name} | "
                f"max gap {tpot_slo * 1e3:g} ms",
                title_justify="left",
                header_style="bold",
            )
            columns = [
                "prompt",
                "mode",
                "k*",
                "pace (ms)",
                "cloud TTFT (ms)",
                "device ready (ms)",
                "device-only TTFT (ms)",
            ]
            if grid is not None:
                columns += ["grid k", "cost vs grid", "sim max gap (ms)"]
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
                cells = [
                    str(length),
                    c.mode,
                    str(c.k),
                    f"{c.max_tpot * 1e3:g}",
                    f"{c.first_token_s * 1e3:.0f}",
                    f"{c.device_ready_s * 1e3:.0f}",
                    f"{device_only * 1e3:.0f}",
                ]
                if grid is not None:
                    g = grid[i]
                    row.update(
                        grid_k=g.k_grid, cost_ratio=g.cost_ratio, simulated_max_gap_s=g.analytic_max_gap_s
                    )
                    cells += [
                        _grid_cell(g.k_grid, g.cost_grid_gpu_s),
                        f"{g.cost_ratio:.3f}",
                        f"{g.analytic_max_gap_s * 1e3:.1f}",
                    ]
                rows.append(row)
                table.add_row(*cells)
            console = _stdout()
            console.print(table)
            console.print(
                "k*: cloud decode tokens after the first (the catch-up fixed point); cost vs grid: simulated "
                "cloud GPU-s of k* over the cheapest k on a simulator grid meeting the same max gap"
            )
            if json_out is not None:
                payload = {
                    "device": device.name,
                    "cloud": cloud.name,
                    "network": net.name,
                    "slo": {"ttft_s": ttft_slo, "tpot_s": tpot_slo},
                    "rows": rows,
                }
                json_out.write_text(json.dumps(round_floats(payload), indent=2, sort_keys=True) + "\n")
