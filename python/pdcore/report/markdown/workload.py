"""The section of ``report.md`` for one workload: its summary, the main table (one row per policy),
capacity, the display-gap causes, the representative timeline, and the SLO, RTT, device and growth sweeps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pdcore.report.experiments import POLICIES
from pdcore.report.markdown.formats import (
    arrival_rate,
    cut,
    gap_ms,
    num,
    pct,
    rate,
    rps,
    seconds,
    table,
    times,
)

__all__ = ["main_table", "workload_text"]


def main_table(section: Mapping[str, Any]) -> list[str]:
    """The per-workload table, one row per policy."""
    header = [
        "policy",
        "TTFT p50",
        "TTFT p99",
        "TTFT p50 / p99 at cloud-only capacity",
        "TTFT cut vs device-only (p50 / p99)",
        "TTFT cut vs cloud-only at capacity (p50 / p99)",
        "max gap p99",
        "QoE",
        "cloud GPU-s/req (prefill + decode)",
        "capacity vs cloud-only",
        "decode capacity vs cloud-only",
    ]
    rows = []
    for policy in POLICIES:
        row = section["table"][policy]
        gpu = row["gpu_s_per_request"]
        rows.append(
            [
                f"**{policy}**" if policy == "pd-device" else policy,
                seconds(row["ttft_s"]["p50"]),
                seconds(row["ttft_s"]["p99"]),
                f"{seconds(row['load_ttft_s']['p50'])} / {seconds(row['load_ttft_s']['p99'])}",
                f"{cut(row['ttft_cut_vs_device_only']['p50'])} / "
                f"{cut(row['ttft_cut_vs_device_only']['p99'])}",
                f"{cut(row['load_ttft_cut_vs_cloud_only']['p50'])} / "
                f"{cut(row['load_ttft_cut_vs_cloud_only']['p99'])}",
                gap_ms(row["max_gap_p99_s"]),
                num(row["qoe_mean"], 3),
                f"{gpu['total']:.3f} ({gpu['prefill']:.3f} + {gpu['decode']:.3f})",
                times(row["capacity_x"]),
                times(row["decode_capacity_x"]),
            ]
        )
    return table(header, rows)


def _workload_line(section: Mapping[str, Any]) -> str:
    info = section["workload"]
    prompt, output = info["prompt_tokens"], info["output_tokens"]
    notes = f" ({'; '.join(info['notes'])})" if info["notes"] else ""
    return (
        f"`{info['source']}`{notes}: {info['requests']:,} requests over {info['duration_s']:,.0f} s "
        f"({arrival_rate(info['rate_rps'])}); prompt p50/p90/p99 {prompt['p50']:,.0f}/{prompt['p90']:,.0f}/"
        f"{prompt['p99']:,.0f} tokens; output p50/p90/p99 {output['p50']:,.0f}/{output['p90']:,.0f}/"
        f"{output['p99']:,.0f}, mean {output['mean']:,.0f}."
    )


def _capacity_note(section: Mapping[str, Any]) -> str:
    cloud = section["capacity"]["cloud-only"]
    pd = section["capacity"]["pd-device"]
    load = section["under_load"]
    return (
        f"Capacity (first {cloud['capacity']['window']} requests, target {cloud['capacity']['target']:.0%}): "
        f"cloud-only {rate(cloud['capacity'])} for the whole cloud, {rate(cloud['decode_capacity'])} per "
        f"decode replica; P/D-Device {rate(pd['capacity'])} and {rate(pd['decode_capacity'])}. "
        f"The loaded operating point replays the first {load['requests']} requests at "
        f"{load['rate_rps']:.2f} req/s (x{load['rate_scale']:.2f}), set by {load['basis']}."
    )


def _gap_text(section: Mapping[str, Any], slo_s: float) -> str:
    causes = section["max_gap_causes"]
    return (
        f"P/D-Device, largest display gap: {causes['requests_over']:.1%} of requests exceed the "
        f"{slo_s * 1e3:.0f} ms SLO somewhere; of those, {causes['cloud_stream']:.0%} in the cloud's stream "
        f"(cloud tokens arriving further apart than the pace; cloud-side TPOT p99 "
        f"{gap_ms(causes['cloud_tpot_p99_s'])}), {causes['handoff']:.0%} at the hand-off and "
        f"{causes['device_decode']:.0%} in device-only answers"
        + (" (the device's own TPOT is above the SLO)." if causes["device_tpot_above_slo"] else ".")
    )


def _gap_by_design_text(section: Mapping[str, Any], slo_s: float) -> list[str]:
    found = section.get("gap_by_design")
    if found is None:
        return []
    sites, alone = found["sites"], found["pool_only"]
    causes = alone["causes"]
    return [
        f"Where P/D-Device's cloud decoded its tokens (`--k-sites {found['k_sites']}`): the decode pool "
        f"for {sites['pool']:.1%} of the requests it decoded for, the prefill instance for "
        f"{sites['prefill']:.1%} (done before the pool's first token would arrive) and a bridge for "
        f"{sites['bridge']:.1%} (the prefill instance decodes while the KV cache crosses, because the pool "
        f"would deliver the first decode token more than {slo_s * 1e3:.0f} ms after the first). With the "
        f"decode pool only (`--k-sites pool`) the largest-gap p99 is {gap_ms(alone['max_gap_s']['p99'])} "
        f"and {causes['requests_over']:.1%} of requests exceed the SLO ({causes['cloud_stream']:.0%} of "
        f"those in the cloud's stream); TTFT p50 {seconds(alone['ttft_s']['p50'])}, p99 "
        f"{seconds(alone['ttft_s']['p99'])}.",
        "",
    ]


def _slo_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    header = [
        "TPOT SLO",
        "cloud-only capacity",
        "P/D-Device capacity",
        "x",
        "cloud-only decode cap.",
        "P/D-Device decode cap.",
        "x",
    ]
    body = [
        [
            f"{row['max_tpot_s'] * 1e3:.0f} ms",
            rps(row["cloud-only"]["capacity"]),
            rps(row["pd-device"]["capacity"]),
            times(row["capacity_x"]),
            rps(row["cloud-only"]["decode_capacity"]),
            rps(row["pd-device"]["decode_capacity"]),
            times(row["decode_capacity_x"]),
        ]
        for row in rows
    ]
    return table(header, body)


def _rtt_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    header = [
        "RTT",
        "P/D TTFT p50",
        "cut vs device-only p50",
        "cut vs cloud-only p50",
        "cloud tokens/req",
        "GPU-s/req",
        "max gap p99",
    ]
    body = [
        [
            f"{row['rtt_s'] * 1e3:g} ms",
            seconds(row["pd_ttft_s"]["p50"]),
            cut(row["ttft_cut_vs_device_only"]["p50"]),
            cut(row["ttft_cut_vs_cloud_only"]["p50"]),
            f"{row['cloud_decode_tokens_per_request']:.1f}",
            f"{row['gpu_s_per_request']:.3f}",
            gap_ms(row["max_gap_p99_s"]),
        ]
        for row in rows
    ]
    return table(header, body)


def _device_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    header = [
        "device profile",
        "prefill 1k",
        "TPOT",
        "device-only TTFT p50",
        "P/D TTFT p50",
        "cut vs device-only p50",
        "cloud tokens/req",
        "GPU-s/req",
        "max gap p99",
    ]
    body = [
        [
            f"`{row['device']}`",
            seconds(row["prefill_1k_s"]),
            seconds(row["decode_tpot_s"]),
            seconds(row["device_only_ttft_s"]["p50"]),
            seconds(row["pd_ttft_s"]["p50"]),
            cut(row["ttft_cut_vs_device_only"]["p50"]),
            f"{row['cloud_decode_tokens_per_request']:.1f}",
            f"{row['gpu_s_per_request']:.3f}",
            gap_ms(row["max_gap_p99_s"]),
        ]
        for row in rows
    ]
    return table(header, body, "l" + "r" * (len(header) - 1))


def _growth_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    header = [
        "case",
        "cloud-only GPU-s/req (prefill share)",
        "P/D GPU-s/req",
        "cloud work saved (x)",
        "bound: decode fully offloaded (x)",
        "P/D device alone",
        "capacity x",
        "decode capacity x",
        "P/D TTFT p50",
        "P/D max gap p99",
    ]
    body = [
        [
            row["case"],
            f"{row['cloud_only_gpu_s']['total']:.3f} ({pct(row['prefill_share'])})",
            f"{row['pd_gpu_s']['total']:.3f}",
            num(row["work_x"], 2),
            num(row["work_bound_x"], 2),
            pct(row["pd_device_alone"]),
            times(row["capacity_x"]),
            times(row["decode_capacity_x"]),
            seconds(row["pd_ttft_p50_s"]),
            gap_ms(row["pd_max_gap_p99_s"]),
        ]
        for row in rows
    ]
    return table(header, body, "l" + "r" * (len(header) - 1))


def _timeline_text(section: Mapping[str, Any]) -> str:
    found = section["timeline"].get("pd-device")
    if found is None:
        return ""
    head = f"Request {found['request']} ({found['prompt_tokens']} prompt, "
    head += f"{found['output_tokens']} output tokens)"
    if found["handoff_s"] is None:
        return (
            f"{head}: no request of this run was split between cloud and device; this one was answered by "
            f"the {'device' if found['mode'] == 'device' else 'cloud'} alone (first token at "
            f"{seconds(found['first_display_s'])}, largest gap {gap_ms(found['max_gap_s'])})."
        )
    text = (
        f"{head}: P/D-Device planned k = {found['k']}, received {found['cloud_tokens_received']} cloud "
        f"tokens, showed {found['displayed_from_cloud']} of them, first token at "
        f"{seconds(found['first_display_s'])}, hand-off at {seconds(found['handoff_s'])}, largest gap "
        f"{gap_ms(found['max_gap_s'])}."
    )
    naive = section["timeline"].get("naive-split")
    if naive is not None and naive["handoff_s"] is not None:
        text += (
            f" The naive split, same request and k, shows cloud tokens as they arrive and waits "
            f"{seconds(naive['max_gap_s'])} at the hand-off."
        )
    return text


def workload_text(key: str, section: Mapping[str, Any], plots: Mapping[str, str], slo_s: float) -> list[str]:
    """The section of workload ``key`` (``plots``: its figures' file names)."""
    lines = [f"## Workload `{key}`", "", _workload_line(section), ""]
    lines += main_table(section)
    lines += [
        "",
        'TTFT and QoE at the trace\'s own rate; "at cloud-only capacity": the loaded operating point below. '
        "TTFT cut: how much lower the policy's TTFT is (negative: higher). Max gap: the largest display gap "
        "of a request (the paper's max TPOT), p99 over requests.",
        "",
        _capacity_note(section),
        "",
        _gap_text(section, slo_s),
        "",
        *_gap_by_design_text(section, slo_s),
        f"![TTFT CDF]({plots['ttft_cdf']})",
        "",
        _timeline_text(section),
        "",
        f"![display timeline]({plots['timeline']})",
        "",
        "### Capacity over the TPOT SLO",
        "",
        *_slo_table(section["slo_sweep"]),
        "",
        f"![capacity over the SLO]({plots['capacity_slo']})",
        "",
        "### Sensitivity (P/D-Device at the trace's rate)",
        "",
        *_rtt_table(section["rtt_sweep"]),
        "",
        *_device_table(section["device_sweep"]),
        "",
        f"![sensitivity]({plots['sensitivity']})",
        "",
        "### Where the whole-cloud gain grows",
        "",
        *_growth_table(section["growth"]),
        "",
    ]
    return lines
