"""The per-turn table of ``pdcore validate --turns N``: each turn's TTFT, live against predicted (means
over the conversations, the error against the floor), its device cached tokens per conversation, and its
verdict (`pdcore.runtime.validation_report.TurnComparison`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

if TYPE_CHECKING:
    from pdcore.runtime.validate import ValidationReport

__all__ = ["turn_table"]


def turn_table(report: ValidationReport) -> Table:
    """One row per turn (module docstring)."""
    table = Table(
        title="per turn (TTFT: means over conversations; cached tokens: live/predicted each)",
        title_justify="left",
        header_style="bold",
    )
    for column in ("turn", "TTFT live", "predicted", "error", "device cached tokens", "verdict"):
        table.add_column(column, justify="left" if column in {"turn", "verdict"} else "right")
    for turn in report.per_turn:
        cached = ", ".join(
            f"{live}/{predicted}"
            for live, predicted in zip(turn.live_cached, turn.predicted_cached, strict=True)
        )
        reasons = [
            *([] if turn.ttft.error <= report.tolerance else ["TTFT"]),
            *([] if turn.cached_agree else [f"cached tokens beyond {turn.cached_tolerance}"]),
        ]
        table.add_row(
            str(turn.turn),
            f"{turn.ttft.live_mean * 1e3:.1f} ms",
            f"{turn.ttft.predicted_mean * 1e3:.1f} ms",
            f"{turn.ttft.error * 100:.1f}%",
            cached,
            "[green]pass[/green]" if not reasons else f"[red]fail[/red] ({', '.join(reasons)})",
        )
    return table
