"""The report's "Conversations" section: how P/D-Device's TTFT advantage changes from first turns to
follow-ups.

Per multi-turn workload (the seeded multi-turn synthetic default, and every trace given that has
conversations, such as the Mooncake trace with its ``hash_ids``), the first ``window`` requests are run under
device-only, cloud-only and P/D-Device with the device's session cache and the cloud's prefix cache of the
profiles (`pdcore.sim` states the cache rules). Per turn bucket (1, 2, 3, 4+): each policy's median TTFT and
P/D-Device's advantage, the ratio of device-only's (cloud-only's) median TTFT to P/D-Device's, so a value
above 1 means P/D-Device answers first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pdcore.sim.scenario import Scenario
from pdcore.sim.spec import WorkloadSpec
from pdcore.traces import TURN_BUCKETS, Workload

__all__ = ["COMPARED", "conversations_section"]

COMPARED = ("device-only", "cloud-only", "pd-device")
"""The policies of the section."""

FULL_WINDOW = 2000
QUICK_WINDOW = 400
"""Requests run per workload (the first of each)."""

Progress = Callable[[str, int, int], None]


def _ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference <= 0.0:
        return None
    return value / reference


def conversations_section(
    workloads: Mapping[str, Workload],
    scenario: Scenario,
    *,
    seed: int,
    quick: bool,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The section (module docstring) in ``scenario``: the multi-turn synthetic default, then each
    multi-turn workload of ``workloads``; requests beyond one cloud replica's KV cache are skipped (and
    counted)."""
    window = QUICK_WINDOW if quick else FULL_WINDOW
    chosen = {"synthetic-multi-turn": WorkloadSpec(synthetic="multi-turn", seed=seed, requests=window).load()}
    chosen |= {key: workload for key, workload in workloads.items() if workload.multi_turn}
    total = len(chosen) * len(COMPARED)
    done = 0
    out: dict[str, Any] = {}
    for key, workload in chosen.items():
        head = workload.limit(window)
        fitted = head.fit(scenario.cloud.kv_cache_tokens, "skip")
        per_policy: dict[str, dict[str, Any]] = {}
        for policy in COMPARED:
            per_policy[policy] = scenario.run(fitted, policy, seed=seed).aggregate()["per_turn"]
            done += 1
            if progress is not None:
                progress("conversations", done, total)
        rows = []
        for bucket in TURN_BUCKETS:
            if bucket not in per_policy["pd-device"]:
                continue
            p50 = {policy: per_policy[policy][bucket]["ttft_s"]["p50"] for policy in COMPARED}
            pd = per_policy["pd-device"][bucket]
            rows.append(
                {
                    "turn": bucket,
                    "requests": pd["requests"],
                    "ttft_p50_s": p50,
                    "over_device_only": _ratio(p50["device-only"], p50["pd-device"]),
                    "over_cloud_only": _ratio(p50["cloud-only"], p50["pd-device"]),
                    "device_cached_tokens_per_request": pd["device_cached_tokens_per_request"],
                    "cloud_cached_tokens_per_request": pd["cloud_cached_tokens_per_request"],
                }
            )
        out[key] = {
            "requests": len(fitted),
            "skipped": len(head) - len(fitted),
            "conversations": fitted.conversation_summary(),
            "rows": rows,
            "per_turn": per_policy,
        }
    return {
        "window": window,
        "session_cache_tokens": scenario.device.session_cache_tokens,
        "prefix_cache_tokens": scenario.cloud.prefix_cache_capacity,
        "workloads": out,
    }
