"""The probes of a sizing search: one simulated cloud reduced to what the search and the planner read.

A `Probe` is one run of the whole workload on one cloud (``(R, 0)`` colocated or ``(P, D)``
disaggregated) under one policy, reduced to its SLO attainment (`sizing_attainment`), whether the cloud
did any work, the per-request TTFT and largest gap (the plateau test of `pdcore.sim.unattainable` reads
them) and the two figures a capacity planner compares candidates by (`pdcore.sim.planner_search`):

- ``ttft_p90_s``: the 90th percentile of the TTFT, a request that never displayed a token counting as an
  infinite TTFT (it waited for ever);
- ``user_tokens_per_s``: the median over requests of the speed each user sees once the answer has
  started, ``1 / TPOT`` with TPOT as vLLM defines it (the mean gap after the first token: the time from
  the first displayed token to the last over the tokens after the first); requests of one token have no
  such speed and are left out (NaN when every request has one).

It also keeps what the check of a sized cloud reads (`pdcore.sim.sizing_result.CloudRun`: whether the
run kept up, its span, its prefill GPU-seconds), so that ``pdcore size`` checks the cloud it picked
without running it again.

`ProbeCache` keeps probes by ``(cloud profile, deployment, P, D, policy)`` so that a search over many
candidates, or a second look at the cloud a search found, never simulates the same cloud twice. Its rule
(ours): one cache serves one workload, one seed of the network delays and one set of scenario settings
other than the cloud profile, the deployment and the replica counts, which are its key; the planner search
makes one per call. It is safe to share between threads (`pdcore.sim.threads.on_threads`); two threads
asking for the same missing key may both simulate it and keep the same probe (runs are deterministic).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pdcore.sim.fleet_runs import class_slo
from pdcore.sim.result import SimResult
from pdcore.sim.sizing_result import CloudRun
from pdcore.slo import SLO, within_objective

__all__ = [
    "Probe",
    "ProbeCache",
    "ProbeKey",
    "cloud_run",
    "sizing_attainment",
    "ttft_p90_s",
    "user_tokens_per_s",
]

FloatArray = npt.NDArray[np.float64]

ProbeKey = tuple[str, str, int, int, str]
"""``(cloud profile name, deployment, P or R, D or 0, policy name)``."""


def sizing_attainment(result: SimResult) -> float:
    """The share of requests within the TTFT objective and with every display gap within ``max_tpot_s``;
    over a fleet, each request under its class's objectives (`pdcore.sim.fleet_runs.class_slo`)."""
    ttft_s, max_gap_s = result.results["ttft_s"], result.results["max_gap_s"]
    if not len(ttft_s):
        return 1.0
    fleet, classes = result.fleet, result.device_class
    if fleet is None or classes is None:
        met = _within(ttft_s, max_gap_s, result.slo)
    else:
        met = np.zeros(len(ttft_s), dtype=np.bool_)
        for index, device_class in enumerate(fleet.classes):
            mine = classes == index
            met[mine] = _within(ttft_s[mine], max_gap_s[mine], class_slo(device_class, result.slo))
    return float(np.mean(met))


def _within(ttft_s: FloatArray, max_gap_s: FloatArray, slo: SLO) -> npt.NDArray[np.bool_]:
    met = within_objective(ttft_s, slo.ttft_s) & within_objective(max_gap_s, slo.max_tpot_s)
    return np.asarray(met, dtype=np.bool_)


def ttft_p90_s(ttft_s: FloatArray) -> float:
    """The 90th percentile of the TTFT, NaN (no token displayed) counting as infinite (module docstring)."""
    if len(ttft_s) == 0:
        return float("nan")
    waited = np.where(np.isnan(ttft_s), np.inf, ttft_s)
    return float(np.percentile(waited, 90.0))


def user_tokens_per_s(tpot_s: FloatArray) -> float:
    """The median of ``1 / TPOT`` over requests with a TPOT above 0 (module docstring); NaN without one."""
    speeds = 1.0 / tpot_s[np.isfinite(tpot_s) & (tpot_s > 0.0)]
    return float(np.median(speeds)) if len(speeds) else float("nan")


@dataclass(frozen=True)
class Probe:
    """One cloud simulated for one policy (module docstring).

    Attributes:
        attainment: Share of requests meeting the SLO (`sizing_attainment`).
        used: Whether the cloud did any prefill work.
        ttft_s: Per-request TTFT, seconds (NaN: no token displayed).
        max_gap_s: Per-request largest display gap, seconds.
        ttft_p90_s: `ttft_p90_s` of ``ttft_s``.
        user_tokens_per_s: `user_tokens_per_s` of the run's TPOT.
        run: Whether the run kept up, its span and its prefill GPU-seconds (`CloudRun`).
    """

    attainment: float
    used: bool
    ttft_s: FloatArray
    max_gap_s: FloatArray
    ttft_p90_s: float
    user_tokens_per_s: float
    run: CloudRun

    @classmethod
    def of(cls, result: SimResult) -> Probe:
        """The probe of a finished run."""
        ttft = np.asarray(result.results["ttft_s"], dtype=np.float64)
        run = cloud_run(result)
        return cls(
            attainment=sizing_attainment(result),
            used=run.prefill_gpu_s > 0.0,
            ttft_s=ttft,
            max_gap_s=np.asarray(result.results["max_gap_s"], dtype=np.float64),
            ttft_p90_s=ttft_p90_s(ttft),
            user_tokens_per_s=user_tokens_per_s(np.asarray(result.results["tpot_s"], dtype=np.float64)),
            run=run,
        )


def cloud_run(result: SimResult) -> CloudRun:
    """The `CloudRun` of a finished run: its overload figures as `SimResult.aggregate` reports them."""
    found = result.overload()
    return CloudRun(
        overloaded=found.overloaded,
        delay_growth=found.growth,
        overload_site=found.site,
        duration_s=result.duration_s,
        prefill_gpu_s=float(np.sum(result.results["cloud_prefill_gpu_s"])),
    )


class ProbeCache:
    """Probes by `ProbeKey`, shared between the searches of one planner search (module docstring)."""

    def __init__(self) -> None:
        self._probes: dict[ProbeKey, Probe] = {}
        self._lock = threading.Lock()
        self.runs = 0
        """Simulations run through this cache."""
        self.hits = 0
        """Probes answered without a simulation."""

    def __len__(self) -> int:
        with self._lock:
            return len(self._probes)

    def get(self, key: ProbeKey) -> Probe | None:
        """The probe kept under ``key``, or None."""
        with self._lock:
            return self._probes.get(key)

    def get_or_run(self, key: ProbeKey, simulate: Callable[[], Probe]) -> Probe:
        """The probe kept under ``key``; else ``simulate()``'s, kept."""
        with self._lock:
            found = self._probes.get(key)
            if found is not None:
                self.hits += 1
                return found
        probe = simulate()
        with self._lock:
            self.runs += 1
            return self._probes.setdefault(key, probe)
