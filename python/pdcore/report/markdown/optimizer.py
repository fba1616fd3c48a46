"""The "Optimizer" section of ``report.md``: ``k*`` over prompt length per device profile, and the analytic
``k`` checked against a simulator grid search."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pdcore.report.markdown.formats import gap_ms, table

__all__ = ["optimizer_text"]

_PROMPTS_SHOWN = {64, 128, 256, 512, 1024, 2048, 4096, 8192}


def _k_star_table(k_star: Mapping[str, Any]) -> list[str]:
    """``k*`` per device profile at the power-of-two prompt lengths (all of them if none is one)."""
    prompts = [row["prompt_tokens"] for row in next(iter(k_star.values()))]
    shown = [p for p in prompts if p in _PROMPTS_SHOWN] or prompts
    header = ["device profile", *[f"k* @ {p}" for p in shown]]
    body = []
    for name, rows in k_star.items():
        by_prompt = {row["prompt_tokens"]: row for row in rows}
        cells = []
        for p in shown:
            row = by_prompt[p]
            cell = "device" if row["mode"] == "device" else str(row["k"])
            cells.append(cell if row["converged"] else f"{cell} (cap)")
        body.append([f"`{name}`", *cells])
    return table(header, body, "l" + "r" * len(shown))


def _grid_note(name: str, check: Mapping[str, Any], slo_s: float) -> str:
    """Why a device profile has no grid optimum."""
    return f"`{name}`: no k on the grid keeps every gap within the SLO" + (
        f": the device's own TPOT ({gap_ms(check['device_tpot_s'])}) is above it, so whatever "
        "the cloud sends, the device's tokens come too slowly after the hand-off."
        if check["device_tpot_s"] > slo_s
        else "."
    )


def _grid_table(grid_check: Mapping[str, Any], slo_s: float) -> list[str]:
    """The analytic ``k`` beside the grid's optimum, then a note per profile the grid has none for."""
    header = [
        "device profile",
        "prompt",
        "k analytic",
        "k grid",
        "GPU-s analytic",
        "GPU-s grid",
        "ratio",
        "gap",
    ]
    body = []
    notes = []
    for name, check in grid_check.items():
        points = check["points"]
        if any(point["cost_ratio"] is None for point in points):
            notes.append(_grid_note(name, check, slo_s))
        for point in points:
            ratio = point["cost_ratio"]
            body.append(
                [
                    f"`{name}`",
                    str(point["prompt_tokens"]),
                    "device" if point["k_analytic"] < 0 else str(point["k_analytic"]),
                    "none meets the SLO"
                    if ratio is None
                    else ("device" if point["k_grid"] < 0 else str(point["k_grid"])),
                    f"{point['cost_analytic_gpu_s']:.4f}",
                    "-" if ratio is None else f"{point['cost_grid_gpu_s']:.4f}",
                    "-" if ratio is None else f"{ratio:.3f}",
                    gap_ms(point["analytic_max_gap_s"]),
                ]
            )
    lines = [*table(header, body, "l" + "r" * 7), ""]
    if notes:
        lines += [*notes, ""]
    return lines


def optimizer_text(section: Mapping[str, Any], plot: str, slo_s: float) -> list[str]:
    """The section's lines (``plot``: the ``k*`` figure's file name)."""
    lines = [
        "## Optimizer",
        "",
        f"![k* over prompt length]({plot})",
        "",
        *_k_star_table(section["k_star"]),
        "",
        f"Analytic k against a simulator grid search (one request per prompt on an idle cloud, "
        f"{section['grid_check_output_tokens']}-token answers; the grid optimum is the cheapest k whose "
        "largest "
        "display gap meets the TPOT SLO; target: cost ratio at most 1.05):",
        "",
        *_grid_table(section["grid_check"], slo_s),
    ]
    ratios = [
        point["cost_ratio"]
        for check in section["grid_check"].values()
        for point in check["points"]
        if point["cost_ratio"] is not None
    ]
    if ratios:
        lines += [
            f"Largest cost ratio where the grid has an optimum: {max(ratios):.3f} (target at most 1.05).",
            "",
        ]
    return lines
