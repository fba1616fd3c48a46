"""What each answer costs: the cloud's dollars and the device's energy, per request and per 1,000.

The rule is the cost model's (`pdcore._core.Prices`, the Rust crate's ``cost::money``): dollars are the
request's cloud GPU-seconds (the simulator's per-request attribution of batched iterations) times the
cloud profile's ``[price] usd_per_gpu_hour``; device energy is its prefilled and decoded tokens times the
device profile's ``[energy]`` joules per token, plus the radio (the network profile's `RadioEnergy`) and
the waiting SoC while the request's connection was open. Every input is a result column that every mode
fills, so any policy is priced the same way.

`prices` assembles the three profiles' figures (`pdcore.profiles.prices`); `bill` adds the per-request
columns ``usd``, ``device_j``, ``compute_j``, ``network_j`` and ``battery_pct`` to a run's results (NaN
where a figure is unknown); `summary` reduces them for a report (``docs/schema.md``, ``cost``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from pdcore._core import Prices
from pdcore.profiles.prices import missing_prices, prices

__all__ = ["BILL_COLUMNS", "bill", "missing_prices", "prices", "summary"]

BILL_COLUMNS = ("usd", "device_j", "compute_j", "network_j", "battery_pct")
"""The per-request columns `bill` adds."""

FloatArray = npt.NDArray[np.float64]


def bill(results: Mapping[str, npt.NDArray[Any]], priced: Prices | None) -> dict[str, FloatArray]:
    """The per-request bill columns (`BILL_COLUMNS`) of a run's results; NaN when ``priced`` is None."""
    count = len(results["ttft_s"])
    if priced is None:
        return {name: np.full(count, np.nan) for name in BILL_COLUMNS}

    def column(name: str) -> FloatArray:
        return np.ascontiguousarray(results[name], dtype=np.float64)

    billed = priced.bill(
        gpu_s=column("cloud_prefill_gpu_s") + column("cloud_decode_gpu_s"),
        prefill_tokens=column("device_prefill_tokens"),
        decode_tokens=column("device_decode_tokens"),
        bytes_up=column("bytes_up"),
        bytes_down=column("bytes_down"),
        radio_s=column("radio_s"),
    )
    return {name: np.asarray(billed[name], dtype=np.float64) for name in BILL_COLUMNS}


def _mean(values: npt.ArrayLike) -> float | None:
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0 or not np.isfinite(array).all():
        return None
    return float(array.mean())


def summary(results: Mapping[str, npt.NDArray[Any]]) -> dict[str, Any]:
    """The ``cost`` object of a report: per request and per 1,000 requests (None where unknown)."""
    usd = _mean(results["usd"])
    device_j = np.asarray(results["device_j"], dtype=np.float64)
    known = device_j.size > 0 and bool(np.isfinite(device_j).all())
    compute, network = _mean(results["compute_j"]), _mean(results["network_j"])
    return {
        "usd_per_request": usd,
        "usd_per_1k_requests": None if usd is None else usd * 1000.0,
        "device_mj_per_request": {
            "mean": float(device_j.mean()) * 1e3 if known else None,
            "p50": float(np.percentile(device_j, 50)) * 1e3 if known else None,
            "p99": float(np.percentile(device_j, 99)) * 1e3 if known else None,
        },
        "device_compute_mj_per_request": None if compute is None else compute * 1e3,
        "device_network_mj_per_request": None if network is None else network * 1e3,
        "battery_pct_per_request": _mean(results["battery_pct"]),
        "battery_pct_per_1k_requests": (
            None if _mean(results["battery_pct"]) is None else float(np.mean(results["battery_pct"])) * 1e3
        ),
        "bytes_up_per_request": _mean(results["bytes_up"]),
        "bytes_down_per_request": _mean(results["bytes_down"]),
        "radio_s_per_request": _mean(results["radio_s"]),
    }
