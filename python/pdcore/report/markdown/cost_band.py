"""The "How much rests on the cost model" section of ``report.md`` (`pdcore.report.cost_band`): one row per
environment (the baseline, then each cost term scaled, then the named variants) and, per headline, whether
it holds across them all."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pdcore.report.markdown.formats import cut, gap_ms, table, times

__all__ = ["cost_band_text"]

_NAMES = {
    "ttft_cut_vs_device_only": "TTFT cut vs device-only (mean and p50)",
    "ttft_vs_cloud_only": "TTFT p50 no later than cloud-only's",
    "max_gap_p99": "largest display gap p99 within the TPOT objective",
    "decode_capacity_x": "decode capacity multiple of cloud-only's",
    "gpus": "fewer GPUs than cloud-only at the SLO",
}


def _mark(holds: bool, text: str) -> str:
    return f"{text} {'✓' if holds else '✗'}"


def _gpus(found: Mapping[str, Any]) -> str:
    def count(value: int | None) -> str:
        return "none meets" if value is None else str(value)

    return f"{count(found['cloud_only'])} / {count(found['pd_device'])}"


def _why(refusal: str) -> str:
    """A refusal in a table cell: the loader's sentence without its file, arithmetic and fix (the JSON
    keeps the whole message)."""
    reason = refusal.split("; fix:", 1)[0]
    if ": key " in reason:
        reason = "key " + reason.split(": key ", 1)[1]
    return reason.split(" (", 1)[0].replace("|", "/")


def _cells(row: Mapping[str, Any]) -> list[str]:
    """The row's figures, each marked with whether it meets its target."""
    figures, holds = row["figures"], row["holds"]
    if figures is None:
        return ["refused: " + _why(row["refused"]), "", "", "", ""]
    device = figures["ttft_cut_vs_device_only"]
    return [
        _mark(holds["ttft_cut_vs_device_only"], f"{cut(device['mean'])} / {cut(device['p50'])}"),
        _mark(holds["ttft_vs_cloud_only"], cut(figures["ttft_vs_cloud_only"]["p50_cut"])),
        _mark(holds["max_gap_p99"], gap_ms(figures["max_gap_p99"]["value_s"])),
        _mark(holds["decode_capacity_x"], times(figures["decode_capacity_x"])),
        _mark(holds["gpus"], _gpus(figures["gpus"])),
    ]


def _verdict(found: Mapping[str, Any]) -> str:
    changes = ", ".join(f"`{label}`" for label in found["changes_under"])
    if found["holds_across"]:
        return "holds across the band"
    if not found["baseline_holds"]:
        return "missed in the baseline, " + (f"met under {changes}" if changes else "and under every variant")
    return f"holds in the baseline, not under {changes}"


def cost_band_text(section: Mapping[str, Any]) -> list[str]:
    """The section's lines."""
    factors = " and ".join(f"{factor:g}" for factor in section["factors"])
    targets = section["targets"]
    lines = [
        "## How much rests on the cost model",
        "",
        f"The headline figures rerun with each cost term scaled by {factors} in turn, one at a time: the "
        "cloud profile's five iteration terms and the device profile's prefill and decode curves "
        f"(`pdcore.profiles.band.scaled`). For the report's wall time they are computed on the first "
        f"{section['requests']:,} requests of `{section['workload']}` at its own rate, not on the traces, "
        "so the baseline row is this window's, not the main table's. Targets: TTFT cut vs device-only at "
        f"least {targets['ttft_cut_vs_device_only']:.0%} at mean and p50; largest gap p99 at most "
        f"{targets['max_gap_p99_s'] * 1e3:.0f} ms; decode capacity at least "
        f"{targets['decode_capacity_x']:.0f}x cloud-only's; and, ours, P/D-Device's TTFT p50 no later than "
        f"cloud-only's and fewer GPUs than cloud-only at {section['condition_scale']:g}x the rate "
        "(cloud-only / P/D-Device, from the sizing search). ✓ meets, ✗ does not. The last rows price the "
        "cloud by the profile built from measured operator tables for the same model, GPU and tensor "
        "parallelism (`pdcore profiles build`; docs/cloud-profiles.md), with GPU kernels only (`kernel`) "
        "and with its engine's per-step overhead (`engine`). A variant the profile loader refuses (priced "
        "beyond its GPU's FLOPs or memory bandwidth) is shown as refused and left out of the verdicts.",
        "",
    ]
    missing = section.get("not_applicable") or []
    if missing:
        names = ", ".join(f"`{label}`" for label in missing)
        lines += [f"Not run ({names}): no profile built from measured data matches this cloud profile.", ""]
    header = ["environment", "TTFT cut vs device-only", "vs cloud-only p50", "gap p99", "decode", "GPUs"]
    body = [[f"`{row['label']}`", *_cells(row)] for row in section["rows"]]
    lines += table(header, body, "lrrrrr")
    lines += ["", "Per headline:", ""]
    body = [[_NAMES[key], _verdict(found)] for key, found in section["summary"].items()]
    lines += table(["headline", "across the band"], body, "ll")
    lines.append("")
    return lines
