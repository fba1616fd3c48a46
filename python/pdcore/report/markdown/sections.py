"""The sections of ``report.md`` after the optimizer: cloud sizing at the SLO, latency against cost and
energy, conversations (first turns against follow-ups), prompt refinement, and the definitions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pdcore.report import refinement
from pdcore.report.experiments import WHAT_IF
from pdcore.report.markdown.formats import table

__all__ = ["conversations_text", "definitions_text", "refinement_text", "sizing_text", "tradeoff_text"]


def _gpus(value: int | None) -> str:
    return "none meets" if value is None else str(value)


def _money(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ratio_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def sizing_text(section: Mapping[str, Any], plot: str) -> list[str]:
    """The "Cloud sizing at the SLO" section (``plot``: its figure's file name)."""
    lines = [
        "## Cloud sizing at the SLO",
        "",
        f"The smallest P/D-disaggregated cloud (prefill and decode replicas) whose TTFT and largest display "
        f"gap meet the SLO for {section['target']:.0%} of the first {section['window']} requests, found by "
        "a search over replica counts with the simulator (DistServe's placement search; `pdcore size`). "
        "The whole-cloud gain is cloud-only's GPUs over P/D-Device's at the same SLO.",
        "",
        f"![GPUs over request rate]({plot})",
        "",
    ]
    header = ["workload", "variant", *[f"{scale:g}x" for scale in section["scales"]]]
    body = []
    for key, variants in section["curves"].items():
        for label, points in variants.items():
            cells = [f"{_gpus(p['gpus'])} @ {p['rate_rps']:.1f}" for p in points]
            body.append([key, f"`{label}`", *cells])
    lines += [
        f"GPUs needed @ request rate (req/s), sized on the first {section['window']} requests of each "
        "workload (`pdcore size` sizes all the requests it is given, or the first `--limit`: another window "
        "of the same workload can need another cloud):",
        "",
    ]
    lines += table(header, body, "ll" + "r" * len(section["scales"]))
    header = [
        "workload",
        "mean answer",
        "device",
        "r",
        "rate",
        "cloud-only GPUs",
        "P/D-Device GPUs",
        "gain",
        "prefill share",
        "bound 1/share",
    ]
    body = []
    for row in section["conditions"]:
        gain = row["gain"]
        body.append(
            [
                row["workload"],
                f"{row['mean_output_tokens']:.0f}",
                f"`{row['device']}`",
                f"{row['refine_ratio']:g}",
                f"{row['rate_rps']:.1f}",
                _gpus(row["cloud_only_gpus"]),
                _gpus(row["pd_device_gpus"]),
                "-" if gain is None else f"{gain:.2f}x",
                f"{row['prefill_share']:.0%}",
                "-" if row["gain_bound"] is None else f"{row['gain_bound']:.1f}x",
            ]
        )
    lines += [
        "",
        f"Where the gain is largest ({section['condition_scale']:g}x each workload's rate): P/D-Device still "
        "prefills every prompt it sends to the cloud, so with `s` the share of cloud-only's GPU-seconds "
        "spent in prefill the gain is at most about `1/s`; a prefill-bound workload (short answers) cannot "
        "reach the paper's \"up to 15x\", long answers can. The optimizer's device-alone fallback (requests "
        "the device answers first, and requests it takes off a congested cloud) is outside the bound, and "
        "GPU counts move in whole replicas.",
        "",
    ]
    lines += table(header, body, "lrlrrrrrrr")
    lines.append("")
    return lines


def tradeoff_text(section: Mapping[str, Any], plot: str) -> list[str]:
    """The "Latency, cost and energy" section (``plot``: its figure's file name)."""
    prices = section["prices"]
    lines = [
        "## Latency, cost and energy",
        "",
        f"What each answer costs, on the first {section['window']} requests of each workload: the cloud's "
        "dollars (its GPU-seconds, batched iterations shared among their requests, at "
        f"${_money(prices['usd_per_gpu_hour'], 2)} per GPU-hour) and the device's energy (prefill and "
        "decode per token, the radio while the request's connection is open, its promotion and tail, and "
        f"the waiting SoC) as a share of a stated {_money(prices['battery_wh'], 1)} Wh battery. Every "
        "figure comes from the profiles, with its source cited there; most are estimates, derived as the "
        "profiles say. P/D-Device is also run with a weight on cost or on energy: among the plans expected "
        "to meet the SLOs it keeps the smallest `TTFT + cost_weight x $ per 1k requests + energy_weight x "
        "device J` (`--cost-weight`, `--energy-weight`; ours), which sends a request to the device alone "
        "or to the cloud alone when that is cheaper by the weight.",
        "",
        f"![Latency, cost and energy]({plot})",
        "",
    ]
    header = [
        "workload",
        "policy",
        "TTFT p50 (ms)",
        "TTFT p99 (ms)",
        "SLO met",
        "$ / 1k req",
        "mJ / req",
        "battery % / req",
    ]
    body = []
    for key, rows in section["points"].items():
        for p in rows:
            body.append(
                [
                    key,
                    f"`{p['label']}`",
                    _money(None if p["ttft_p50_s"] is None else p["ttft_p50_s"] * 1e3, 0),
                    _money(None if p["ttft_p99_s"] is None else p["ttft_p99_s"] * 1e3, 0),
                    f"{p['slo_attainment']:.1%}",
                    _money(p["usd_per_1k_requests"], 3),
                    _money(p["device_mj_per_request"], 0),
                    _money(p["battery_pct_per_request"], 4),
                ]
            )
    lines += table(header, body, "llrrrrrr")
    lines += [
        "",
        "Radio energy follows the linear model of Huang et al. (MobiSys 2012), fitted at a few Mbit/s: a "
        "long transfer at full speed (a kv-transfer's KV cache) is charged more than a radio at its peak "
        "power would draw, and each request pays the radio's tail in full, an upper bound when requests "
        "follow one another within it.",
        "",
    ]
    return lines


def conversations_text(section: Mapping[str, Any], plot: str) -> list[str]:
    """The "Conversations" section (``plot``: its figure's file name)."""
    lines = [
        "## Conversations",
        "",
        f"First turns against follow-ups, on the first {section['window']} requests of each multi-turn "
        "workload: a follow-up finds its conversation in the device's session cache (what the device "
        f"prefilled and decoded itself, {section['session_cache_tokens']:,} tokens per device here, least "
        "recently used sessions evicted) and in the cloud's prefix cache of prompt blocks "
        f"({section['prefix_cache_tokens']:,} tokens, shared by the prefill replicas), so both prefills "
        "cover only what is not cached. P/D-Device's advantage is device-only's (cloud-only's) median TTFT "
        "over its own: above 1, P/D-Device answers first.",
        "",
        f"![Conversations]({plot})",
        "",
    ]
    header = [
        "workload",
        "turn",
        "requests",
        "device-only p50 (ms)",
        "cloud-only p50 (ms)",
        "pd-device p50 (ms)",
        "vs device-only",
        "vs cloud-only",
        "device cached / req",
        "cloud cached / req",
    ]
    body = []
    for key, entry in section["workloads"].items():
        for row in entry["rows"]:
            p50 = row["ttft_p50_s"]
            body.append(
                [
                    key,
                    row["turn"],
                    str(row["requests"]),
                    *(
                        _money(None if p50[p] is None else p50[p] * 1e3, 0)
                        for p in ("device-only", "cloud-only", "pd-device")
                    ),
                    _ratio_cell(row["over_device_only"]),
                    _ratio_cell(row["over_cloud_only"]),
                    _money(row["device_cached_tokens_per_request"], 0),
                    _money(row["cloud_cached_tokens_per_request"], 0),
                ]
            )
    lines += table(header, body, "ll" + "r" * 8)
    lines.append("")
    return lines


def refinement_text(entry: Mapping[str, Any], plot: str) -> list[str]:
    """The prompt-refinement section (`pdcore.report.refinement` writes its text)."""
    return [
        "## Prompt refinement",
        "",
        f"Measured quality and device prefill time of refinement on `{entry['name']}` (token F1 and exact "
        "match of the device's answers; the drop is F1 at r = 1 minus F1 at r, in points, with its paired "
        "bootstrap 95% interval; fact kept: share of items whose key fact survived; kept tokens: share of "
        "the prompt's scored tokens kept; device prefill: the timing prompt, refined at r).",
        "",
        *table(refinement.TABLE_HEADER, refinement.table_rows(entry), "lr" + "r" * 7),
        "",
        " ".join(refinement.sentences(entry)),
        "",
        f"![prompt refinement]({plot})",
        "",
        *refinement.provenance(entry),
        "",
    ]


def definitions_text() -> list[str]:
    """The closing "Definitions" section."""
    return [
        "## Definitions",
        "",
        "- TTFT: request arrival to the first *displayed* token; max gap: a request's largest display gap.",
        "- Capacity: the highest arrival rate at which the policy's SLO attainment (TTFT and mean TPOT) on "
        "the first window of requests reaches the target on the configured cloud; decode capacity: the "
        "same for one decode replica with enough prefill replicas, judged on the cloud-side TPOT. "
        '">" marks a policy that still passes at the highest rate tried (it puts little or no load on that '
        'part of the cloud); "none": it misses the target even at the lowest rate tried (a part of the SLO '
        "that no cloud capacity fixes, such as the device's prefill or decode speed).",
        "- Cloud GPU-s per request: iteration time x GPUs per replica, shared among the batch.",
        f"- What-if cloud changes tried for the gap target: {', '.join(WHAT_IF)}.",
        "",
    ]
