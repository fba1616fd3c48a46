"""What a sizing found (`pdcore.sim.sizing.size_cloud`): the `Sizing` record of the smallest cloud for one
policy, and how two policies' clouds compare (`whole_cloud_gain`).

GPUs are ``replicas * gpus_per_replica``; goodput per GPU is the rate of requests that meet the SLO divided
by the GPUs (DistServe's per-GPU goodput). A policy that sends no work to the cloud needs no GPU
(``bound = "no_cloud"``); one the largest cloud tried cannot serve is ``"unattainable"`` (no GPU count).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Bound", "CloudRun", "Sizing", "whole_cloud_gain"]

Bound = Literal["found", "no_cloud", "unattainable"]
"""How a sizing ended: a cloud found, no cloud needed, or no cloud tried meets the SLO."""


@dataclass(frozen=True)
class CloudRun:
    """What one run of the whole workload on one cloud showed besides its attainment: whether its delays
    grew without bound (`pdcore.sim.overload`, as `SimResult.aggregate` reports it), its span and the
    cloud GPU-seconds spent on prefill. ``pdcore size`` checks the cloud it picked with these
    (`pdcore.cli.size_check`), from the search's own run of that cloud.

    Attributes:
        overloaded: Whether the delays grew without bound.
        delay_growth: Their growth per second of arrivals (None: too few requests to tell).
        overload_site: ``"cloud"`` or ``"device"``, what fell behind.
        duration_s: From the first arrival to the last displayed token, seconds.
        prefill_gpu_s: Cloud GPU-seconds spent on prefill, summed over the requests.
    """

    overloaded: bool
    delay_growth: float | None
    overload_site: str
    duration_s: float
    prefill_gpu_s: float


@dataclass(frozen=True)
class Sizing:
    """The smallest cloud found for one policy.

    Attributes:
        policy: The policy's name.
        deployment: ``"colocated"`` or ``"disaggregated"``.
        replicas: Colocated replicas (0 with ``"no_cloud"``).
        prefill_replicas: Prefill replicas (disaggregated; 0 with ``"no_cloud"``).
        decode_replicas: Decode replicas (disaggregated; 0 with ``"no_cloud"``).
        gpus: GPUs of the cloud found (0 with ``"no_cloud"``; None when unattainable).
        attainment: Its SLO attainment (with ``"unattainable"``, the best cloud's that was tried, or, when
            no cloud was tried, the most any cloud can attain, `pdcore.sim.attainment_bound`).
        fewer: ``{cloud: attainment}`` one replica fewer in each pool, each below ``target``.
        target: The attainment the cloud had to reach.
        rate_rps: The workload's request rate.
        goodput_per_gpu_rps: Requests per second meeting the SLO, per GPU (None without GPUs, or when the
            bound settled it without a probe).
        bound: ``"found"``, ``"no_cloud"`` or ``"unattainable"``.
        probes: Simulations run.
        reason: Why the SLO is unattainable, as a clause (``"the largest tried, 64P+64D, meets it for
            80.0%"``); empty otherwise. Not part of `describe`.
        run: The search's run of the cloud this sizing names (`cloud`); None when none was run (the bound
            settled it before any probe). Not part of `describe`.
    """

    policy: str
    deployment: str
    replicas: int
    prefill_replicas: int
    decode_replicas: int
    gpus: int | None
    attainment: float
    fewer: dict[str, float]
    target: float
    rate_rps: float
    goodput_per_gpu_rps: float | None
    bound: Bound
    probes: int
    reason: str = ""
    run: CloudRun | None = field(default=None, compare=False, repr=False)

    @property
    def cloud(self) -> str:
        """The cloud found, ``"2P+1D"`` or ``"x3"``."""
        if self.deployment == "colocated":
            return f"x{self.replicas}"
        return f"{self.prefill_replicas}P+{self.decode_replicas}D"

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (the ``sizing`` objects of a report)."""
        return {
            "policy": self.policy,
            "deployment": self.deployment,
            "cloud": None if self.bound == "unattainable" else self.cloud,
            "replicas": self.replicas,
            "prefill_replicas": self.prefill_replicas,
            "decode_replicas": self.decode_replicas,
            "gpus": self.gpus,
            "attainment": self.attainment,
            "fewer": dict(self.fewer),
            "target": self.target,
            "rate_rps": self.rate_rps,
            "goodput_per_gpu_rps": self.goodput_per_gpu_rps,
            "bound": self.bound,
            "probes": self.probes,
        }


def whole_cloud_gain(baseline: Sizing, candidate: Sizing) -> float | None:
    """The baseline's GPUs over the candidate's at the same SLO (``math.inf`` when the candidate needs
    none); None when either is unattainable."""
    if baseline.gpus is None or candidate.gpus is None:
        return None
    if candidate.gpus == 0:
        return math.inf if baseline.gpus else None
    return baseline.gpus / candidate.gpus
