"""Service-level objectives, aggregate metrics and their deterministic JSON form.

Per-request metrics come from the simulator (``Simulator.results()``); this module reduces them to the
figures of a report, with vLLM bench's names where they exist:

- ``ttft_s``: time to the first *displayed* token, arrival to screen.
- ``tpot_s``: per request, the mean display gap after the first token (``(e2e - ttft) / (n - 1)``);
  requests with one output token have none and are left out.
- ``itl_s``: inter-token latency over every displayed gap of every request (from the simulator's
  streamed histogram; no per-token data is kept).
- ``max_gap_s``: per request, the largest display gap (the paper's "max TPOT"); 0 for one token.
- ``handoff_gap_s`` / ``handoff_stall_s``: the display gap at the cloud-to-device hand-off, and its part
  above the plan's ``max_tpot_s`` (0 when smooth or without a hand-off).
- ``qoe``: Andes-style quality of experience, ``1 - delay area / expected area`` against an expected
  TTFT and reading speed.

Percentiles are numpy's default (linear interpolation) over the requests where the metric is defined;
a summary of no values is ``null``. The objectives, their defaults and the within-objective rule (1 ns of
slack, the simulator's time grain) live in `pdcore.slo`; this module re-exports them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from pdcore import _core
from pdcore.sim.accounting import BILL_COLUMNS
from pdcore.sim.accounting import summary as cost_summary
from pdcore.slo import (
    DEFAULT_MAX_TPOT_S,
    DEFAULT_QOE_TOKENS_PER_S,
    DEFAULT_TTFT_SLO_S,
    GAP_SLACK_S,
    SLO,
    slo_met,
    within_objective,
)

__all__ = [
    "DEFAULT_MAX_TPOT_S",
    "DEFAULT_QOE_TOKENS_PER_S",
    "DEFAULT_TTFT_SLO_S",
    "SLO",
    "aggregate",
    "cloud_tpot_attainment",
    "device_busy",
    "dumps",
    "gap_attainment",
    "per_turn",
    "round_floats",
    "slo_met",
    "summarize",
]

BILLED = (*BILL_COLUMNS, "bytes_up", "bytes_down", "radio_s")
"""The result columns a ``cost`` summary reads."""

_QUANTILES = {"p10": 10.0, "p50": 50.0, "p90": 90.0, "p99": 99.0}

FloatArray = npt.NDArray[np.float64]


DECODED_AT: tuple[str, ...] = _core.DECODED_AT
"""Where a disaggregated cloud decoded a request's tokens after the first, indexed by the simulator's
``k_site`` result (``none``: no cloud decode token, or a colocated cloud; ``bridge``: on its prefill instance
while its KV cache crossed to the decode pool, then there)."""


def summarize(
    values: npt.ArrayLike,
    *,
    mean: bool = True,
    quantiles: tuple[str, ...] = ("p50", "p90", "p99"),
    maximum: bool = False,
) -> dict[str, float | None]:
    """Mean, percentiles and maximum over the finite entries of ``values`` (``None`` when there are none)."""
    array = np.asarray(values, dtype=np.float64)
    finite = array[np.isfinite(array)]
    out: dict[str, float | None] = {}
    empty = finite.size == 0
    if mean:
        out["mean"] = None if empty else float(finite.mean())
    if quantiles:
        points = [_QUANTILES[q] for q in quantiles]
        values_q = [None] * len(points) if empty else np.percentile(finite, points).tolist()
        out.update(zip(quantiles, values_q, strict=True))
    if maximum:
        out["max"] = None if empty else float(finite.max())
    return out


def gap_attainment(results: Mapping[str, FloatArray], slo: SLO) -> float:
    """Fraction of requests whose largest display gap is within the TPOT SLO."""
    return float(np.mean(within_objective(results["max_gap_s"], slo.max_tpot_s)))


def cloud_tpot_attainment(results: Mapping[str, FloatArray], slo: SLO) -> float:
    """Fraction of requests whose cloud-side mean time between decode tokens is within the TPOT SLO.

    Requests the cloud decoded fewer than two tokens for (``cloud_tpot_s`` NaN) put no decode load on the
    cloud and count as met.
    """
    return float(np.mean(within_objective(results["cloud_tpot_s"], slo.max_tpot_s)))


def aggregate(
    results: Mapping[str, FloatArray],
    summary: Mapping[str, float],
    *,
    slo: SLO,
    duration_s: float,
    met: npt.NDArray[np.bool_] | None = None,
) -> dict[str, Any]:
    """Reduces per-request results and run counters to a report (the ``policies.<name>`` JSON object).

    Args:
        results: ``Simulator.results()``.
        summary: ``Simulator.summary()``.
        slo: The objectives for the attainment figures.
        duration_s: The run's length for rates: from the first arrival to the last displayed token.
        met: Per request, whether its objectives were met (a fleet's classes may have their own); None:
            ``slo``'s, for every request.

    Returns:
        A JSON-ready dict; ``docs/schema.md`` describes every key.
    """
    count = len(results["ttft_s"])
    met = slo_met(results, slo) if met is None else met
    served = np.asarray(results["served_by"])
    prefill = np.asarray(results["cloud_prefill_gpu_s"], dtype=np.float64)
    decode = np.asarray(results["cloud_decode_gpu_s"], dtype=np.float64)
    handoff_gap = np.asarray(results["handoff_gap_s"], dtype=np.float64)
    stall = np.asarray(results["handoff_stall_s"], dtype=np.float64)
    rate = 1.0 / duration_s if duration_s > 0.0 else math.nan
    itl = {
        "mean": summary.get("itl_mean_s"),
        "p50": summary.get("itl_p50_s"),
        "p90": summary.get("itl_p90_s"),
        "p99": summary.get("itl_p99_s"),
    }
    return {
        "requests": count,
        "duration_s": duration_s,
        "ttft_s": summarize(results["ttft_s"]),
        "tpot_s": summarize(results["tpot_s"]),
        "itl_s": {key: None if value is None else float(value) for key, value in itl.items()},
        "max_gap_s": summarize(results["max_gap_s"], maximum=True),
        "handoff_gap_s": summarize(handoff_gap, quantiles=("p50", "p99")),
        "handoff_stall_s": summarize(np.nan_to_num(stall), quantiles=("p50", "p99"), maximum=True),
        "handoff_share": float(np.mean(np.isfinite(handoff_gap))),
        "stall_share": float(np.mean(stall > GAP_SLACK_S)),
        "qoe": summarize(results["qoe"], quantiles=("p10", "p50")),
        "e2e_s": summarize(results["e2e_s"]),
        "cloud_ttft_s": summarize(results["cloud_ttft_s"], quantiles=("p50", "p99")),
        "cloud_tpot_s": summarize(results["cloud_tpot_s"], quantiles=("p50", "p99")),
        "cloud_gpu_s_per_request": {
            "total": float((prefill.sum() + decode.sum()) / count),
            "prefill": float(prefill.sum() / count),
            "decode": float(decode.sum() / count),
        },
        "cloud_decode_tokens_per_request": float(np.mean(results["cloud_decode_tokens"])),
        "cloud_tokens_discarded_per_request": float(np.mean(results["cloud_tokens_discarded"])),
        "device_prefill_tokens_per_request": float(np.mean(results["device_prefill_tokens"])),
        "device_decode_tokens_per_request": float(np.mean(results["device_decode_tokens"])),
        "slo_attainment": float(met.mean()),
        "gap_slo_attainment": gap_attainment(results, slo),
        "cloud_tpot_slo_attainment": cloud_tpot_attainment(results, slo),
        "goodput_rps": float(met.sum()) * rate,
        "throughput_rps": count * rate,
        "served_by": {name: float(np.mean(served == code)) for code, name in enumerate(_core.SERVED_BY)},
        **({"k_site": _decoded_at(results["k_site"])} if "k_site" in results else {}),
        **({"cost": cost_summary(results)} if "usd" in results else {}),
        **({"device_busy": device_busy(results)} if "device_busy" in results else {}),
    }


def device_busy(results: Mapping[str, npt.NDArray[Any]]) -> dict[str, Any]:
    """What the one-answer-per-device rule did (`pdcore.sim.conversations`): the requests that found their
    device busy, served by the cloud (``cloud``) or waiting for it (``waited``), their share of the run, and
    the waits of those that waited (mean, p50, p90, max; ``null`` without any)."""
    codes = np.asarray(results["device_busy"], dtype=np.int64)
    waits = np.asarray(results["device_wait_s"], dtype=np.float64)
    waited = codes == _core.DEVICE_BUSY.index("waited")
    return {
        "cloud": int(np.sum(codes == _core.DEVICE_BUSY.index("cloud"))),
        "waited": int(waited.sum()),
        "share": float(np.mean(codes != 0)) if codes.size else 0.0,
        "wait_s": summarize(waits[waited], quantiles=("p50", "p90"), maximum=True),
    }


def _decoded_at(codes: npt.ArrayLike) -> dict[str, float]:
    """Fractions of requests by where a disaggregated cloud decoded their tokens after the first (the
    simulator's ``k_site`` result: 0 pool, 1 prefill instance, 2 none, 3 bridge)."""
    sites = np.asarray(codes)
    return {
        name: float(np.mean(sites == code)) if sites.size else 0.0 for code, name in enumerate(DECODED_AT)
    }


def per_turn(results: Mapping[str, FloatArray], turn: npt.ArrayLike) -> dict[str, dict[str, Any]]:
    """The run's figures by turn bucket (``1``, ``2``, ``3``, ``4+``; buckets without requests left out):
    requests, TTFT p50/p90, the largest display gap (p99 and max), cloud GPU-seconds per request, the
    prompt tokens found cached on the device and in the cloud per request, the requests that found their
    device busy when the run serves one answer per device, and the bucket's ``cost``
    (`pdcore.sim.accounting.summary`) when the results carry their bill."""
    from pdcore.traces.workload import TURN_BUCKETS, turn_buckets  # noqa: PLC0415  # reason: keeps metrics import-light

    buckets = turn_buckets(np.asarray(turn, dtype=np.int64))
    gpu = np.asarray(results["cloud_prefill_gpu_s"], dtype=np.float64) + np.asarray(
        results["cloud_decode_gpu_s"], dtype=np.float64
    )
    out: dict[str, dict[str, Any]] = {}
    for index, name in enumerate(TURN_BUCKETS):
        mask = buckets == index
        count = int(mask.sum())
        if count == 0:
            continue
        out[name] = {
            "requests": count,
            "ttft_s": summarize(np.asarray(results["ttft_s"])[mask], mean=False, quantiles=("p50", "p90")),
            "max_gap_s": summarize(
                np.asarray(results["max_gap_s"])[mask], mean=False, quantiles=("p99",), maximum=True
            ),
            "cloud_gpu_s_per_request": float(gpu[mask].mean()),
            "device_cached_tokens_per_request": float(
                np.asarray(results["device_cached_tokens"])[mask].mean()
            ),
            "cloud_cached_tokens_per_request": float(np.asarray(results["cloud_cached_tokens"])[mask].mean()),
        }
        if "device_busy" in results:
            out[name]["device_busy_requests"] = int(np.sum(np.asarray(results["device_busy"])[mask] != 0))
        if "usd" in results:
            out[name]["cost"] = cost_summary({key: np.asarray(results[key])[mask] for key in BILLED})
    return out


def round_floats(value: Any, digits: int = 6) -> Any:
    """Rounds every float in a nested structure to ``digits`` significant digits; NaN and inf become None.

    Ints, strings, bools and None pass through; numpy scalars become Python numbers; tuples become lists.
    """
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if not math.isfinite(number):
            return None
        return float(f"{number:.{digits}g}")
    if isinstance(value, Mapping):
        return {str(key): round_floats(item, digits) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [round_floats(item, digits) for item in value]
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def dumps(document: Mapping[str, Any]) -> str:
    """A report as deterministic JSON: rounded floats, sorted keys, two-space indent, final newline."""
    return json.dumps(round_floats(document), sort_keys=True, indent=2, allow_nan=False) + "\n"
