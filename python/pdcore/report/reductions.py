"""The report's numbers of one workload: the sweep results of `pdcore.report.experiments` reduced to the
JSON-ready sections of a `WorkloadRun` and the arrays its plots need (`fill_sections`).

Sections: the main ``table`` (TTFT and its cuts, the largest gap, QoE, GPU-seconds, capacities and their
multiples of cloud-only's), ``trace_rate`` and ``under_load`` (every policy's report at each operating
point), ``capacity``, ``max_gap_causes`` and ``gap_by_design`` (which part of the display exceeds the TPOT
objective), ``timeline``, ``slo_sweep``, ``rtt_sweep``, ``device_sweep``, ``growth`` and ``what_if``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pdcore._core import DECODED_AT
from pdcore.report.study import (
    EXPLORED_POLICIES,
    FASTER_DEVICE,
    POLICIES,
    WHAT_IF,
    Settings,
    Study,
    WorkloadRun,
)
from pdcore.sim.sweep import SweepResult
from pdcore.slo import GAP_SLACK_S, within_objective

__all__ = ["fill_sections", "multiple"]


def _cut(value: float | None, reference: float | None) -> float | None:
    """How much lower ``value`` is than ``reference``, as a fraction of it."""
    if value is None or reference is None or reference <= 0.0:
        return None
    return 1.0 - value / reference


def _cuts(summary: Mapping[str, Any], reference: Mapping[str, Any]) -> dict[str, float | None]:
    return {key: _cut(summary[key], reference[key]) for key in ("mean", "p50", "p99")}


def multiple(found: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    """A capacity as a multiple of a baseline's: ``value`` and ``relation`` (``=``, ``>``, ``<``, or
    ``n/a`` when the baseline has no finite positive capacity)."""
    if base["bound"] != "found" or not base["rps"]:
        return {"value": None, "relation": "n/a"}
    reference = float(base["rps"])
    if found["bound"] == "above_max":
        return {"value": float(found["max_rps_tried"]) / reference, "relation": ">"}
    if found["bound"] == "below_min":
        return {"value": float(found["min_rps_tried"]) / reference, "relation": "<"}
    return {"value": float(found["rps"]) / reference, "relation": "="}


def _capacity(result: SweepResult) -> dict[str, Any]:
    """Both searches of a task, each with its probes as (rate, attainment) pairs sorted by rate."""
    out: dict[str, Any] = {}
    for key, found in (("capacity", result.capacity), ("decode_capacity", result.decode_capacity)):
        if found is not None:
            out[key] = found.describe() | {
                "attainment_at_base": found.probes[0][1],
                "probe_points": [list(point) for point in sorted(found.probes)],
            }
    return out


def _aggregate(result: SweepResult) -> dict[str, Any]:
    if result.aggregate is None:
        raise AssertionError(f"task {result.task.tag!r} computed no aggregate")
    return result.aggregate


def _table(
    light: Mapping[str, Mapping[str, Any]],
    loaded: Mapping[str, Mapping[str, Any]],
    capacity: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for policy in POLICIES:
        report, under = light[policy], loaded[policy]
        rows[policy] = {
            "ttft_s": {key: report["ttft_s"][key] for key in ("mean", "p50", "p99")},
            "load_ttft_s": {key: under["ttft_s"][key] for key in ("mean", "p50", "p99")},
            "ttft_cut_vs_device_only": _cuts(report["ttft_s"], light["device-only"]["ttft_s"]),
            "load_ttft_cut_vs_cloud_only": _cuts(under["ttft_s"], loaded["cloud-only"]["ttft_s"]),
            "max_gap_p99_s": report["max_gap_s"]["p99"],
            "load_max_gap_p99_s": under["max_gap_s"]["p99"],
            "qoe_mean": report["qoe"]["mean"],
            "gpu_s_per_request": report["cloud_gpu_s_per_request"],
            "capacity_rps": capacity[policy]["capacity"]["rps"],
            "capacity_x": multiple(capacity[policy]["capacity"], capacity["cloud-only"]["capacity"]),
            "decode_capacity_rps": capacity[policy]["decode_capacity"]["rps"],
            "decode_capacity_x": multiple(
                capacity[policy]["decode_capacity"], capacity["cloud-only"]["decode_capacity"]
            ),
        }
    return rows


def _gap_by_design(bridged: SweepResult, pool_only: SweepResult, study: Study) -> dict[str, Any]:
    """P/D-Device with both sites offered (the bridge at the first token) against the decode pool only."""
    sites = np.asarray(bridged.columns["k_site"])
    decoded = max(int((sites != "none").sum()), 1)
    shares = {site: float((sites == site).sum() / decoded) for site in DECODED_AT if site != "none"}
    alone = _aggregate(pool_only)
    return {
        "k_sites": study.settings.k_sites,
        "sites": shares,
        "pool_only": {
            "ttft_s": alone["ttft_s"],
            "max_gap_s": alone["max_gap_s"],
            "causes": _gap_causes(pool_only, study),
        },
    }


def _gap_causes(result: SweepResult, study: Study) -> dict[str, Any]:
    """Which part of the display exceeds the TPOT SLO in the requests whose largest gap does."""
    max_tpot_s = study.settings.slo.max_tpot_s
    columns = result.columns
    gap = columns["max_gap_s"]
    handoff = columns["handoff_gap_s"]
    served = columns["served_by"]
    over = ~within_objective(gap, max_tpot_s)
    at_handoff = over & np.isfinite(handoff) & (handoff >= gap - GAP_SLACK_S)
    device = study.devices[result.task.environment.device]
    device_slow = max(device.decode_tpot) > max_tpot_s
    on_device = over & ~at_handoff & (served == "device")
    in_stream = over & ~at_handoff & ~on_device
    count = max(int(over.sum()), 1)
    return {
        "requests_over": float(over.mean()),
        "handoff": float(at_handoff.sum() / count),
        "device_decode": float(on_device.sum() / count),
        "cloud_stream": float(in_stream.sum() / count),
        "device_tpot_above_slo": device_slow,
        "cloud_tpot_p99_s": _aggregate(result)["cloud_tpot_s"]["p99"],
    }


def _ttft(result: SweepResult) -> npt.NDArray[np.float64]:
    return np.asarray(result.columns["ttft_s"], dtype=np.float64)


def _timeline_summary(timeline: Mapping[str, Any]) -> dict[str, Any]:
    displays = np.asarray(timeline["displays_s"], dtype=np.float64)
    from_cloud = np.asarray(timeline["from_cloud"], dtype=np.bool_)
    gaps = np.diff(displays)
    return {
        "request": timeline["request"],
        "prompt_tokens": timeline["prompt_tokens"],
        "output_tokens": timeline["output_tokens"],
        "one_way_s": timeline["one_way_s"],
        "mode": timeline["mode"],
        "k": timeline["k"],
        "handoff_s": timeline["handoff_s"],
        "first_display_s": float(displays[0]) if displays.size else None,
        "cloud_tokens_received": len(timeline["cloud_arrivals_s"]),
        "displayed_from_cloud": int(from_cloud.sum()),
        "max_gap_s": float(gaps.max()) if gaps.size else 0.0,
    }


@dataclass(frozen=True)
class _Found:
    """The sweep results of one workload, looked up by the parts of their task key."""

    key: str
    results: Mapping[str, SweepResult]

    def __call__(self, *parts: str) -> SweepResult:
        return self.results["|".join((self.key, *parts))]

    def has(self, *parts: str) -> bool:
        return "|".join((self.key, *parts)) in self.results

    def report(self, *parts: str) -> dict[str, Any]:
        return _aggregate(self(*parts))


def fill_sections(
    run: WorkloadRun, study: Study, results: Mapping[str, SweepResult], point: Mapping[str, Any]
) -> None:
    """Reduces the sweep results of one workload to its report sections and plot arrays."""
    settings = study.settings
    get = _Found(run.key, results)
    light = {policy: get.report("main", policy) for policy in POLICIES}
    loaded = {policy: get.report("load", policy) for policy in POLICIES}
    capacity = {policy: _capacity(get("main", policy)) for policy in POLICIES}
    run.sections = {
        "workload": run.workload.describe(),
        "trace_rate": {"rate_scale": 1.0, "policies": light},
        "under_load": dict(point) | {"policies": loaded},
        "capacity": capacity,
        "table": _table(light, loaded, capacity),
        "max_gap_causes": _gap_causes(get("main", "pd-device"), study),
    }
    if get.has("gap", "pd-device", "pool"):
        run.sections["gap_by_design"] = _gap_by_design(
            get("main", "pd-device"), get("gap", "pd-device", "pool"), study
        )
    run.ttft_s = {
        "trace_rate": {policy: _ttft(get("main", policy)) for policy in POLICIES},
        "under_load": {policy: _ttft(get("load", policy)) for policy in POLICIES},
    }
    timelines = {"pd-device": get("main", "pd-device").timeline}
    if get.has("timeline", "naive-split"):
        timelines["naive-split"] = get("timeline", "naive-split").timeline
    run.timelines = {policy: dict(found) for policy, found in timelines.items() if found is not None}
    run.sections["timeline"] = {policy: _timeline_summary(found) for policy, found in run.timelines.items()}
    _fill_explored(run, get)
    run.sections["slo_sweep"] = _slo_rows(get, settings)
    run.sections["rtt_sweep"] = _rtt_rows(get, settings, device_only=light["device-only"])
    run.sections["device_sweep"] = _device_rows(get, study, cloud_only=light["cloud-only"])
    run.sections["growth"] = _growth_rows(get, settings, point, loaded)
    run.sections["what_if"] = _what_if_rows(get)


def _fill_explored(run: WorkloadRun, get: _Found) -> None:
    """The explorer's timelines, by request and policy, and why each request is there."""
    run.explored = {}
    run.explored_reasons = {}
    for name, ids in run.explored_filters.items():
        for request in ids:
            run.explored_reasons.setdefault(request, []).append(name)
            if request not in run.explored:
                run.explored[request] = {
                    policy: dict(get("explore", policy).timelines[request]) for policy in EXPLORED_POLICIES
                }


def _slo_rows(get: _Found, settings: Settings) -> list[dict[str, Any]]:
    """Capacity of cloud-only and P/D-Device at each objective of the sweep."""
    rows = []
    for tpot in settings.tpot_grid_s:
        row: dict[str, Any] = {"max_tpot_s": tpot}
        cloud_only = _capacity(get("slo", "cloud-only", repr(tpot)))
        pd = _capacity(get("slo", "pd-device", repr(tpot)))
        for name, found in (("cloud-only", cloud_only), ("pd-device", pd)):
            row[name] = found
        row["capacity_x"] = multiple(pd["capacity"], cloud_only["capacity"])
        row["decode_capacity_x"] = multiple(pd["decode_capacity"], cloud_only["decode_capacity"])
        rows.append(row)
    return rows


def _rtt_rows(get: _Found, settings: Settings, *, device_only: Mapping[str, Any]) -> list[dict[str, Any]]:
    """P/D-Device against both sides alone at each round-trip time of the sweep."""
    rows = []
    for rtt in settings.rtt_grid_s:
        pd_report = get.report("rtt", "pd-device", repr(rtt))
        cloud_report = get.report("rtt", "cloud-only", repr(rtt))
        rows.append(
            {
                "rtt_s": rtt,
                "pd_ttft_s": {k: pd_report["ttft_s"][k] for k in ("mean", "p50", "p99")},
                "ttft_cut_vs_device_only": _cuts(pd_report["ttft_s"], device_only["ttft_s"]),
                "ttft_cut_vs_cloud_only": _cuts(pd_report["ttft_s"], cloud_report["ttft_s"]),
                "cloud_decode_tokens_per_request": pd_report["cloud_decode_tokens_per_request"],
                "gpu_s_per_request": pd_report["cloud_gpu_s_per_request"]["total"],
                "max_gap_p99_s": pd_report["max_gap_s"]["p99"],
            }
        )
    return rows


def _device_rows(get: _Found, study: Study, *, cloud_only: Mapping[str, Any]) -> list[dict[str, Any]]:
    """P/D-Device and the device alone on each device profile, slowest prefill last."""
    rows = []
    for name in study.settings.devices:
        profile = study.devices[name]
        pd_report = get.report("device", "pd-device", name)
        alone = get.report("device", "device-only", name)
        rows.append(
            {
                "device": name,
                "prefill_1k_s": profile.prefill_s(1024),
                "decode_tpot_s": profile.decode_tpot_s(1024),
                "pd_ttft_s": {k: pd_report["ttft_s"][k] for k in ("mean", "p50", "p99")},
                "device_only_ttft_s": {k: alone["ttft_s"][k] for k in ("mean", "p50", "p99")},
                "ttft_cut_vs_device_only": _cuts(pd_report["ttft_s"], alone["ttft_s"]),
                "ttft_cut_vs_cloud_only": _cuts(pd_report["ttft_s"], cloud_only["ttft_s"]),
                "cloud_decode_tokens_per_request": pd_report["cloud_decode_tokens_per_request"],
                "gpu_s_per_request": pd_report["cloud_gpu_s_per_request"]["total"],
                "max_gap_p99_s": pd_report["max_gap_s"]["p99"],
            }
        )
    return sorted(rows, key=lambda row: (row["prefill_1k_s"], row["device"]))


def _growth_rows(
    get: _Found, settings: Settings, point: Mapping[str, Any], loaded: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Cloud work of P/D-Device against cloud-only as the load, the answers and the device change."""
    base_cloud = get("main", "cloud-only")
    base_pd = get("main", "pd-device")
    cases: list[tuple[str, SweepResult, SweepResult]] = [("as measured", base_cloud, base_pd)]
    for scale in settings.output_scales:
        cases.append(
            (
                f"answers x{scale:g}",
                get("growth", "cloud-only", f"x{scale!r}"),
                get("growth", "pd-device", f"x{scale!r}"),
            )
        )
    cases.append((f"faster device ({FASTER_DEVICE})", base_cloud, get("growth", "pd-device", "faster")))
    cases.append(
        (
            f"refinement allowed (r = {settings.refine_ratio:g})",
            base_cloud,
            get("growth", "pd-device", "refine"),
        )
    )
    rows = [
        _growth_row(label, _aggregate(cloud), _aggregate(pd), _capacity(cloud), _capacity(pd))
        for label, cloud, pd in cases
    ]
    rows.insert(
        1,
        _growth_row(
            f"at cloud-only capacity ({point['rate_rps']:.2f} req/s)",
            loaded["cloud-only"],
            loaded["pd-device"],
        ),
    )
    return rows


def _what_if_rows(get: _Found) -> list[dict[str, Any]]:
    """P/D-Device and cloud-only under each what-if change of the setup."""
    rows = []
    for name in WHAT_IF:
        pd_report = get.report("whatif", "pd-device", name)
        cloud_report = get.report("whatif", "cloud-only", name)
        rows.append(
            {
                "change": name,
                "pd_max_gap_p99_s": pd_report["max_gap_s"]["p99"],
                "cloud_only_max_gap_p99_s": cloud_report["max_gap_s"]["p99"],
                "pd_gap_slo_attainment": pd_report["gap_slo_attainment"],
                "pd_ttft_p50_s": pd_report["ttft_s"]["p50"],
                "pd_gpu_s_per_request": pd_report["cloud_gpu_s_per_request"]["total"],
            }
        )
    return rows


def _growth_row(
    label: str,
    cloud: Mapping[str, Any],
    pd: Mapping[str, Any],
    cloud_cap: Mapping[str, Any] | None = None,
    pd_cap: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    cloud_gpu = cloud["cloud_gpu_s_per_request"]
    pd_gpu = pd["cloud_gpu_s_per_request"]
    none = {"value": None, "relation": "n/a"}
    return {
        "case": label,
        "cloud_only_gpu_s": cloud_gpu,
        "pd_gpu_s": pd_gpu,
        "prefill_share": cloud_gpu["prefill"] / cloud_gpu["total"] if cloud_gpu["total"] > 0 else None,
        "work_x": cloud_gpu["total"] / pd_gpu["total"] if pd_gpu["total"] > 0 else None,
        "work_bound_x": cloud_gpu["total"] / cloud_gpu["prefill"] if cloud_gpu["prefill"] > 0 else None,
        "pd_device_alone": pd["served_by"]["device"],
        "capacity_x": none
        if cloud_cap is None or pd_cap is None
        else multiple(pd_cap["capacity"], cloud_cap["capacity"]),
        "decode_capacity_x": none
        if cloud_cap is None or pd_cap is None
        else multiple(pd_cap["decode_capacity"], cloud_cap["decode_capacity"]),
        "pd_ttft_p50_s": pd["ttft_s"]["p50"],
        "pd_max_gap_p99_s": pd["max_gap_s"]["p99"],
    }
