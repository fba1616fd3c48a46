"""Whether a run's arrivals outran what served them: the queue grew without bound over the run.

The test is ours (queueing theory gives the shape, not the thresholds). A server of rate ``mu`` fed at rate
``lambda > mu`` from time 0 serves the request that arrives at ``t`` at ``(lambda / mu) t``: its delay grows
by ``lambda / mu - 1`` seconds per second of arrivals, so the utilisation ``lambda / mu`` is one plus that
slope. A stable system's delays do not grow with the arrival time. So `overload` measures the slope from
the run itself, with no model of the cloud or the device: the requests in arrival order, their first and
last quarters, and the difference of their median delays over the difference of their median arrival times.
The delay is the TTFT (a queue in front of the prefill, or of a device that serves one answer at a time) and
the time to the last displayed token (a queue in front of the decode, which shows in no first token). Medians
of quarters keep one slow request or a burst from deciding it.

A run is overloaded when the slope reaches `OVERLOAD_GROWTH` (a utilisation of at least 1.05: well above the
slopes of stable runs, under 0.005 on the embedded default and the Azure 2023 conversation trace) and the
late quarter's median delay exceeds the early one's by more than the TTFT objective (a growth a user would
see, which also keeps a short run's noise from counting). The growth comes from the device when the device
wait of a run that serves one answer per device grew by at least half of it, else from the cloud.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = ["MIN_REQUESTS", "OVERLOAD_GROWTH", "Overload", "overload"]

OVERLOAD_GROWTH = 0.05
"""Seconds of extra delay per second of arrivals from which a run is overloaded (ours; module docstring)."""

MIN_REQUESTS = 8
"""Fewer requests (or arrivals all at one instant) have no early and late part to compare."""


@dataclass(frozen=True)
class Overload:
    """How a run's delays grew over its arrivals.

    Attributes:
        overloaded: The delays grew without bound (module docstring).
        growth: Extra delay per second of arrivals, late quarter against early (None when the run is too
            short to tell); the measured utilisation of the bottleneck is ``1 + growth`` when overloaded.
        delay_growth_s: The late quarter's median delay less the early quarter's, seconds (0 when unknown).
        site: What could not keep up: ``"cloud"`` or ``"device"``.
    """

    overloaded: bool
    growth: float | None
    delay_growth_s: float
    site: Literal["cloud", "device"]

    @property
    def utilisation(self) -> float | None:
        """Offered over served work of the bottleneck, ``1 + growth`` (meaningful when overloaded)."""
        return None if self.growth is None else 1.0 + self.growth


def _slope(
    delay: npt.NDArray[np.float64], early: npt.NDArray[Any], late: npt.NDArray[Any], span: float
) -> float:
    first, last = delay[early], delay[late]
    if not (np.isfinite(first).any() and np.isfinite(last).any()):
        return 0.0
    return float(np.nanmedian(last) - np.nanmedian(first)) / span


def overload(arrival_s: npt.ArrayLike, results: Mapping[str, npt.ArrayLike], ttft_slo_s: float) -> Overload:
    """Measures whether the run's delays grew without bound (module docstring).

    Args:
        arrival_s: Each request's arrival, seconds.
        results: ``Simulator.results()``: ``ttft_s`` and ``finish_s``, and ``device_wait_s`` when the run
            serves one answer per device.
        ttft_slo_s: The TTFT objective, the least growth a user would see.
    """
    arrival = np.asarray(arrival_s, dtype=np.float64)
    order = np.argsort(arrival, kind="stable")
    quarter = len(arrival) // 4
    early, late = order[:quarter], order[len(arrival) - quarter :]
    span = float(np.median(arrival[late]) - np.median(arrival[early])) if quarter else 0.0
    if len(arrival) < MIN_REQUESTS or span <= 0.0:
        return Overload(overloaded=False, growth=None, delay_growth_s=0.0, site="cloud")
    ttft = np.asarray(results["ttft_s"], dtype=np.float64)
    to_last = np.asarray(results["finish_s"], dtype=np.float64) - arrival
    growth = max(_slope(ttft, early, late, span), _slope(to_last, early, late, span))
    site: Literal["cloud", "device"] = "cloud"
    if "device_wait_s" in results:
        wait = np.nan_to_num(np.asarray(results["device_wait_s"], dtype=np.float64))
        if growth > 0.0 and _slope(wait, early, late, span) >= growth / 2.0:
            site = "device"
    delay_growth_s = growth * span
    return Overload(
        overloaded=growth >= OVERLOAD_GROWTH and delay_growth_s > ttft_slo_s,
        growth=growth,
        delay_growth_s=delay_growth_s,
        site=site,
    )
