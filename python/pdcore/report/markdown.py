"""``report.md`` of ``pdcore reproduce``: tables and text rendered from the report's numbers.

Every figure in the text is read from the same document that is written to ``results.json``, so the
two never disagree; verdicts are computed, not written by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pdcore.report import refinement
from pdcore.report.experiments import POLICIES, WHAT_IF
from pdcore.slo import meets

__all__ = ["arrival_rate", "cut", "gap_ms", "main_table", "render", "seconds", "times"]


def seconds(value: float | None) -> str:
    """A duration with a unit that keeps it short: ``129 ms``, ``1.81 s``, ``13,648 s``."""
    if value is None:
        return "-"
    if abs(value) < 1.0:
        return f"{value * 1e3:.0f} ms"
    if abs(value) < 100.0:
        return f"{value:.2f} s"
    return f"{value:,.0f} s"


def gap_ms(value: float | None) -> str:
    """A display gap, in ms with one decimal below a second (``50.3 ms``)."""
    if value is None:
        return "-"
    return f"{value * 1e3:.1f} ms" if abs(value) < 1.0 else seconds(value)


def cut(value: float | None) -> str:
    """A reduction: ``82%``; a rise up to double as a negative percentage; beyond, ``12.3x higher``."""
    if value is None:
        return "-"
    if value >= -1.0:
        return f"{value * 100:.0f}%"
    ratio = 1.0 - value
    return f"{ratio:,.0f}x higher" if ratio >= 100.0 else f"{ratio:.1f}x higher"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def times(found: Mapping[str, Any]) -> str:
    """A capacity multiple: ``13.7x``, ``>256x`` (above the search range), ``n/a``."""
    value = found["value"]
    if found["relation"] == "<":
        return "none"
    if value is None or found["relation"] == "n/a":
        return "n/a"
    prefix = {"=": "", ">": ">", "<": "<"}[found["relation"]]
    digits = 2 if value < 1.0 else 1
    return f"{prefix}{value:.{digits}f}x"


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _rps(found: Mapping[str, Any]) -> str:
    if found["bound"] == "above_max":
        return f">{found['max_rps_tried']:.0f}"
    if found["bound"] == "below_min":
        return "none"
    return f"{found['rps']:.2f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    marks = [":--" if index == 0 else "--:" for index in range(len(header))]
    if align:
        marks = [":--" if flag == "l" else "--:" for flag in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


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
                _num(row["qoe_mean"], 3),
                f"{gpu['total']:.3f} ({gpu['prefill']:.3f} + {gpu['decode']:.3f})",
                times(row["capacity_x"]),
                times(row["decode_capacity_x"]),
            ]
        )
    return _table(header, rows)


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


def _rate(found: Mapping[str, Any]) -> str:
    text = _rps(found)
    return "no rate" if text == "none" else f"{text} req/s"


def _capacity_note(section: Mapping[str, Any]) -> str:
    cloud = section["capacity"]["cloud-only"]
    pd = section["capacity"]["pd-device"]
    load = section["under_load"]
    return (
        f"Capacity (first {cloud['capacity']['window']} requests, target {cloud['capacity']['target']:.0%}): "
        f"cloud-only {_rate(cloud['capacity'])} for the whole cloud, {_rate(cloud['decode_capacity'])} per "
        f"decode replica; P/D-Device {_rate(pd['capacity'])} and {_rate(pd['decode_capacity'])}. "
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
            _rps(row["cloud-only"]["capacity"]),
            _rps(row["pd-device"]["capacity"]),
            times(row["capacity_x"]),
            _rps(row["cloud-only"]["decode_capacity"]),
            _rps(row["pd-device"]["decode_capacity"]),
            times(row["decode_capacity_x"]),
        ]
        for row in rows
    ]
    return _table(header, body)


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
    return _table(header, body)


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
    return _table(header, body, "l" + "r" * (len(header) - 1))


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
            f"{row['cloud_only_gpu_s']['total']:.3f} ({_pct(row['prefill_share'])})",
            f"{row['pd_gpu_s']['total']:.3f}",
            _num(row["work_x"], 2),
            _num(row["work_bound_x"], 2),
            _pct(row["pd_device_alone"]),
            times(row["capacity_x"]),
            times(row["decode_capacity_x"]),
            seconds(row["pd_ttft_p50_s"]),
            gap_ms(row["pd_max_gap_p99_s"]),
        ]
        for row in rows
    ]
    return _table(header, body, "l" + "r" * (len(header) - 1))


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


def _workload_section(
    key: str, section: Mapping[str, Any], plots: Mapping[str, str], slo_s: float
) -> list[str]:
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


def _gap_paragraph(gap: Mapping[str, Any], slo_s: float) -> str:
    causes = gap["causes"]
    text = (
        f" {causes['requests_over']:.1%} of requests exceed {slo_s * 1e3:.0f} ms somewhere: "
        f"{causes['cloud_stream']:.0%} of those in the cloud's stream, {causes['handoff']:.0%} at the "
        f"hand-off, {causes['device_decode']:.0%} in device-alone answers."
    )
    if causes["device_tpot_above_slo"]:
        text += " The device decodes slower than the SLO, so only a faster device meets it."
    elif causes["cloud_stream"] >= 0.5:
        text += (
            " The speed controller paces what has arrived; where the cloud's tokens come further apart than "
            "the SLO (on a disaggregated cloud the first decode token waits for the KV transfer and a decode "
            "slot, and large decode batches stretch iterations) no pace hides it, and cloud-only shows the "
            "same gaps. The parameter is on the cloud side:"
        )
    else:
        text += (
            " Most exceedances are at the hand-off: the device was ready later than the optimizer planned "
            "(its first-token estimate under load is a lower bound), so k or the pace would need a margin."
            " Cloud-side changes, for comparison:"
        )
    for row in gap["what_if"]:
        verdict = "meets it" if meets(row["pd_max_gap_p99_s"], slo_s) else "still misses"
        text += (
            f" {row['change']}: P/D-Device {gap_ms(row['pd_max_gap_p99_s'])} ({verdict}), cloud-only "
            f"{gap_ms(row['cloud_only_max_gap_p99_s'])};"
        )
    return text.rstrip(";") + ". No profile is tuned to pass."


def _whole_cloud(whole: Mapping[str, Any], capacity: Mapping[str, Any]) -> str:
    cloud_gpu, pd_gpu = whole["cloud_only_gpu_s"], whole["pd_gpu_s"]
    served = whole["served_by"]
    text = (
        f"4. Whole cloud: capacity {times(whole['capacity_x'])} cloud-only's; cloud GPU-s per request "
        f"{pd_gpu['total']:.3f} (prefill {pd_gpu['prefill']:.3f} + decode {pd_gpu['decode']:.3f}) against "
        f"cloud-only's {cloud_gpu['total']:.3f} ({cloud_gpu['prefill']:.3f} + {cloud_gpu['decode']:.3f}), "
        f"{_num(whole['work_x'], 2)}x less cloud work. Prefill is {_pct(whole['prefill_share'])} of "
        "cloud-only's GPU time, and P/D-Device still prefills every prompt it sends to the cloud, so even "
        f"with no cloud decode at all the work would fall at most {_num(whole['work_bound_x'], 2)}x."
    )
    cloud_cap = capacity["cloud-only"]
    if cloud_cap["capacity"]["bound"] == "found" and cloud_cap["decode_capacity"]["bound"] == "found":
        whole_rps, decode_rps = cloud_cap["capacity"]["rps"], cloud_cap["decode_capacity"]["rps"]
        if whole_rps < decode_rps:
            text += (
                f" Cloud-only's whole-cloud capacity ({whole_rps:.2f} req/s) is below what its decode "
                f"replica sustains ({decode_rps:.2f} req/s): the prefill replica and the TTFT objective "
                "limit it first, and P/D-Device leaves prefill in the cloud."
            )
    found = whole["capacity_x"]
    work = whole["work_x"]
    if found["value"] is not None and work is not None and found["value"] > 1.5 * work:
        text += (
            f" The SLO-based capacity multiple ({times(found)}) is not a cloud throughput: the load-adaptive "
            "optimizer keeps a request on the device when the cloud's queue would make the cloud's first "
            "token later than the device's own, so as the rate grows P/D-Device's SLO attainment sinks "
            f"towards device-only's ({whole['device_only_window_attainment']:.1%} on this window, "
            f"against the {whole['target']:.0%} target) instead of collapsing, and the search stops where "
            "it crosses the target, long after the cloud has saturated. The cloud work per request is the "
            "measure of the cloud's relief."
        )
    else:
        text += " The SLO-based capacity multiple is close to the cloud-work ratio."
    text += (
        f" At the trace's rate P/D-Device answered {served['device']:.0%} of requests on the device alone, "
        f"split {served['both']:.0%} and left {served['cloud']:.0%} to the cloud alone (answers within "
        "k + 1 tokens)."
    )
    return text


def _growth_summary(document: Mapping[str, Any]) -> list[str]:
    header = [
        "workload",
        "case",
        "prefill share",
        "cloud work saved",
        "bound",
        "P/D device alone",
        "capacity x",
        "decode capacity x",
    ]
    body = []
    for key, section in document["workloads"].items():
        for row in section["growth"]:
            body.append(
                [
                    f"`{key}`",
                    row["case"],
                    _pct(row["prefill_share"]),
                    f"{_num(row['work_x'], 2)}x",
                    f"{_num(row['work_bound_x'], 2)}x",
                    _pct(row["pd_device_alone"]),
                    times(row["capacity_x"]),
                    times(row["decode_capacity_x"]),
                ]
            )
    return _table(header, body, "ll" + "r" * 6)


def _growth_text(document: Mapping[str, Any]) -> str:
    text = (
        "Where the whole-cloud gain grows (cloud work saved: cloud-only's GPU-s per request over "
        "P/D-Device's; bound: cloud-only's total over its prefill, the saving if every prompt were still "
        "prefilled in the cloud and no decode stayed there). Longer answers add decode the device takes "
        "over, a faster device needs fewer cloud tokens, refinement shortens the device's prefill (and so "
        "k); long prompts raise the prefill share and lower the bound."
    )
    for key, section in document["workloads"].items():
        measured = section["growth"][0]
        if measured["pd_device_alone"] > 0.5:
            text += (
                f" On `{key}` the cloud cannot keep up at the trace's rate, so P/D-Device answers "
                f"{measured['pd_device_alone']:.1%} of requests on the device alone and its cloud work "
                "falls below the bound; the row at cloud-only capacity shows the saving at a load the cloud "
                "sustains."
            )
    return text


def _targets(document: Mapping[str, Any], slo_s: float) -> list[str]:
    targets = document["targets"]
    where = f"`{targets['workload']}`"
    if targets["stand_in"]:
        where += (
            " (no Azure conversation trace was given: the embedded default, fitted to that trace's "
            "statistics, stands in)"
        )
    ttft = targets["ttft_cut_vs_device_only"]
    gap = targets["max_gap_p99"]
    decode = targets["decode_capacity_x"]

    def verdict(met: bool) -> str:
        return "**met**" if met else "**missed**"

    gap_line = (
        f"2. Largest display gap p99 at most {gap['target_s'] * 1e3:.0f} ms: {verdict(gap['met'])}: "
        f"{gap_ms(gap['value_s'])} (cloud-only: {gap_ms(gap['cloud_only_value_s'])})."
    )
    if not gap["met"]:
        gap_line += _gap_paragraph(gap, slo_s)
    capacity = document["workloads"][targets["workload"]]["capacity"]
    return [
        "## Targets",
        "",
        f"Checked on {where}, phone profile, P/D-disaggregated cloud.",
        "",
        f"1. TTFT at least {ttft['target']:.0%} lower than device-only (mean and p50): "
        f"{verdict(ttft['met'])}: "
        f"mean {cut(ttft['mean'])}, p50 {cut(ttft['p50'])}, p99 {cut(ttft['p99'])} lower.",
        gap_line,
        f"3. Decode-pool capacity at least {decode['target']:.0f}x cloud-only's: {verdict(decode['met'])}: "
        f"{times(decode)}.",
        _whole_cloud(targets["whole_cloud"], capacity),
        "",
        _growth_text(document),
        "",
        *_growth_summary(document),
        "",
    ]


def _gpus(value: int | None) -> str:
    return "none meets" if value is None else str(value)


def _money(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ratio_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _conversations(section: Mapping[str, Any], plot: str) -> list[str]:
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
    lines += _table(header, body, "ll" + "r" * 8)
    lines.append("")
    return lines


def _tradeoff(section: Mapping[str, Any], plot: str) -> list[str]:
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
    lines += _table(header, body, "llrrrrrr")
    lines += [
        "",
        "Radio energy follows the linear model of Huang et al. (MobiSys 2012), fitted at a few Mbit/s: a "
        "long transfer at full speed (a kv-transfer's KV cache) is charged more than a radio at its peak "
        "power would draw, and each request pays the radio's tail in full, an upper bound when requests "
        "follow one another within it.",
        "",
    ]
    return lines


def _sizing(section: Mapping[str, Any], plot: str) -> list[str]:
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
    lines += ["GPUs needed @ request rate (req/s):", ""]
    lines += _table(header, body, "ll" + "r" * len(section["scales"]))
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
    lines += _table(header, body, "lrlrrrrrrr")
    lines.append("")
    return lines


def _optimizer(section: Mapping[str, Any], plot: str, slo_s: float) -> list[str]:
    lines = [
        "## Optimizer",
        "",
        f"![k* over prompt length]({plot})",
        "",
    ]
    k_star = section["k_star"]
    prompts = [row["prompt_tokens"] for row in next(iter(k_star.values()))]
    shown = [p for p in prompts if p in {64, 128, 256, 512, 1024, 2048, 4096, 8192}] or prompts
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
    lines += _table(header, body, "l" + "r" * len(shown))
    lines += [
        "",
        f"Analytic k against a simulator grid search (one request per prompt on an idle cloud, "
        f"{section['grid_check_output_tokens']}-token answers; the grid optimum is the cheapest k whose "
        "largest "
        "display gap meets the TPOT SLO; target: cost ratio at most 1.05):",
        "",
    ]
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
    for name, check in section["grid_check"].items():
        points = check["points"]
        if any(point["cost_ratio"] is None for point in points):
            notes.append(
                f"`{name}`: no k on the grid keeps every gap within the SLO"
                + (
                    f": the device's own TPOT ({gap_ms(check['device_tpot_s'])}) is above it, so whatever "
                    "the cloud sends, the device's tokens come too slowly after the hand-off."
                    if check["device_tpot_s"] > slo_s
                    else "."
                )
            )
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
    lines += _table(header, body, "l" + "r" * 7)
    lines.append("")
    if notes:
        lines += [*notes, ""]
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


def _refinement(entry: Mapping[str, Any], plot: str) -> list[str]:
    """The prompt-refinement section (`pdcore.report.refinement` writes its text)."""
    return [
        "## Prompt refinement",
        "",
        f"Measured quality and device prefill time of refinement on `{entry['name']}` (token F1 and exact "
        "match of the device's answers; the drop is F1 at r = 1 minus F1 at r, in points, with its paired "
        "bootstrap 95% interval; fact kept: share of items whose key fact survived; kept tokens: share of "
        "the prompt's scored tokens kept; device prefill: the timing prompt, refined at r).",
        "",
        *_table(refinement.TABLE_HEADER, refinement.table_rows(entry), "lr" + "r" * 7),
        "",
        " ".join(refinement.sentences(entry)),
        "",
        f"![prompt refinement]({plot})",
        "",
        *refinement.provenance(entry),
        "",
    ]


def render(document: Mapping[str, Any], plots: Mapping[str, Mapping[str, str]]) -> str:
    """The whole ``report.md``."""
    config = document["config"]
    slo_s = float(config["slo"]["max_tpot_s"])
    workloads = document["workloads"]
    lines = [
        "# pdcore reproduce: P/D-Device against the baselines",
        "",
        f"Device `{config['device_profile']}`, cloud `{config['cloud_profile']}` "
        f"({config['deployment']}, 1 prefill + 1 decode replica), network `{config['network']}`; "
        f"SLO: TTFT {config['slo']['ttft_s']:g} s, TPOT {slo_s * 1e3:.0f} ms; seed {config['seed']}"
        + ("; **quick preset** (small windows and sweeps)" if config["quick"] else "")
        + f". pdcore {document['pdcore_version']}. Every number below is in `results.json`.",
        "",
    ]
    lines += _targets(document, slo_s)
    for key, section in workloads.items():
        lines += _workload_section(key, section, plots[key], slo_s)
    lines += _optimizer(document["optimizer"], plots[""]["k_star"], slo_s)
    if "sizing" in document:
        lines += _sizing(document["sizing"], plots[""]["sizing"])
    if "tradeoff" in document:
        lines += _tradeoff(document["tradeoff"], plots[""]["tradeoff"])
    if "conversations" in document:
        lines += _conversations(document["conversations"], plots[""]["conversations"])
    if "refinement" in document:
        lines += _refinement(document["refinement"], plots[""]["refinement"])
    lines += [
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
    return "\n".join(lines)


def arrival_rate(rate_rps: float | None) -> str:
    """An arrival rate, or why there is none (every request arrives at once)."""
    return "rate undefined" if rate_rps is None else f"{rate_rps:.2f} req/s"
