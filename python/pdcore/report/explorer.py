"""The timeline explorer's data for ``report.html``: which requests it embeds, and their timelines.

A page cannot carry the token timeline of every request of a 19k-request trace under every policy, so the
explorer embeds a chosen few per workload (`pdcore.report.experiments` picks and records them): the
representative request of the static figure and, when recorded, the slowest first tokens, the largest
display gaps and the largest hand-off stalls under P/D-Device. Each embedded request shows its timeline
under every recorded policy side by side.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pdcore.report.page import compact_timeline
from pdcore.report.study import WorkloadRun

__all__ = ["explorer_data", "request_title"]


def request_title(recorded: Mapping[str, Any]) -> str:
    """One policy's plan of a recorded request, for a column title."""
    k = int(recorded["k"])
    plan = f"k = {k}" if k >= 0 else f"mode {recorded['mode'] or 'none'}"
    displays = np.asarray(recorded["displays_s"], dtype=np.float64)
    first = f"first token {displays[0]:.3f} s" if displays.size else "nothing shown"
    gaps = np.diff(displays)
    largest = f", largest gap {gaps.max() * 1e3:.0f} ms" if gaps.size else ""
    return f"{plan}, {first}{largest}"


def _columns(by_policy: Mapping[str, Mapping[str, Any]], max_tpot_s: float) -> dict[str, Any]:
    return {
        policy: compact_timeline(
            displays_s=recorded["displays_s"],
            from_cloud=recorded["from_cloud"],
            cloud_arrivals_s=recorded["cloud_arrivals_s"],
            handoff_s=recorded["handoff_s"],
            estimates=recorded.get("handoff_estimates", ()),
            max_tpot_s=max_tpot_s,
            title=request_title(recorded),
        )
        for policy, recorded in by_policy.items()
    }


def explorer_data(run: WorkloadRun, max_tpot_s: float) -> dict[str, Any] | None:
    """The explorer of one workload (`pdcore.report.page`), None when nothing was recorded.

    ``requests`` maps a request id to its ``label``, ``description`` and ``columns`` (a timeline per
    policy); ``filters`` maps a filter's name to request ids, in the order shown; ``how`` says what the
    page embeds.
    """
    recorded = run.explored or {}
    if not recorded:
        return None
    requests: dict[str, Any] = {}
    for request, by_policy in recorded.items():
        first = next(iter(by_policy.values()))
        reasons = run.explored_reasons.get(request, [])
        label = "; ".join(reasons) if reasons else "recorded"
        requests[str(request)] = {
            "label": f"{label} ({first['prompt_tokens']} prompt, {first['output_tokens']} output tokens)",
            "description": (
                f"request {request} of {run.key}: arrives at {first['arrival_s']:.3f} s, "
                f"{first['prompt_tokens']} prompt tokens, {first['output_tokens']} output tokens, one-way "
                f"delay {first['one_way_s'] * 1e3:.0f} ms; {label}"
            ),
            "columns": _columns(by_policy, max_tpot_s),
        }
    filters = {name: [int(i) for i in ids if i in recorded] for name, ids in run.explored_filters.items()}
    filters = {name: ids for name, ids in filters.items() if ids}
    filters["every embedded request"] = sorted(int(i) for i in recorded)
    how = (
        f"The page embeds the token timelines of {len(recorded)} of the workload's {len(run.workload)} "
        f"requests under {', '.join(next(iter(recorded.values())))}: "
        + "; ".join(
            f"{name} ({len(ids)})" for name, ids in filters.items() if name != "every embedded request"
        )
        + ". Drag to zoom into a hand-off, double-click to zoom out."
    )
    return {"how": how, "filters": filters, "requests": requests}
