"""Cluster sizing at the SLO: the smallest cloud that serves a workload under a policy.

The anchor is DistServe's placement search (Zhong et al., "DistServe: Disaggregating Prefill and Decoding
for Goodput-optimized Large Language Model Serving", OSDI 2024, Algorithm 1): for a workload and an SLO
it searches, with a simulator, the parallelism and the number of instances of each phase, prefill and
decode apart, and keeps the placement with the highest goodput per GPU. pdcore keeps the parallelism of
the cloud profile (one replica is ``gpus_per_replica`` GPUs) and searches the instance counts with its own
simulator, replaying the whole workload at every probe so that the two pools, the KV transfers and
P/D-Device's ``k`` tokens interact as they do in a run.

Attainment: the share of requests whose TTFT is within the TTFT objective and whose largest display gap
is within ``max_tpot_s`` (the cost model's gap rule, `pdcore.slo.within_objective`). A cloud *meets* the
SLO when the attainment is at least ``target``.

Search (attainment is assumed to rise with replicas near the answer, and the answer is checked):

- colocated: ``R = 1, 2, 4, ...`` until one meets (at most ``max_replicas``), then bisection for the
  smallest ``R`` that meets;
- disaggregated: ``P = D = 1, 2, 4, ...`` until one meets, then, as DistServe sizes each phase apart,
  the smallest ``P`` that meets with that ``D``, then the smallest ``D`` with that ``P``, repeated until
  neither moves.

The answer is then checked one replica fewer in each pool (``fewer``): if such a cloud meets too (the
assumption failed), the search restarts from it, so the answer always meets and every cloud one replica
smaller does not. A policy that sends no work to the cloud needs no GPU (``bound = "no_cloud"``; more
cloud cannot change what it meets); a policy the largest cloud tried cannot serve is ``"unattainable"``.

Infeasibility is proved fast, two ways (both ours, `pdcore.sim.unattainable`), each ending the search
as ``"unattainable"`` with the reason in `Sizing.reason`:

- before any probe: when the share of requests that could meet the SLO even alone on an idle cloud
  (`attainment_bound`) is below ``target``, no cloud can reach it, and no probe is run;
- while growing: when doubling the cloud (to less than the largest allowed) no longer helps
  (`doubling_helps`: the attainment did not rise, and what the missing requests miss by fell by less than
  `PLATEAU_GAIN`), the search stops at the best cloud found.

Over a fleet (`Scenario.fleet`), every probe replays the fleet's run: each request's class, device and
network delay as `pdcore.sim.fleet_runs` draws them with the search's seed, and each request judged by its
class's objectives (`pdcore.sim.sizing_probes.sizing_attainment`). The bound before any probe takes the
fastest device of the fleet, and is not used when a class has objectives of its own (ours: it is written
for one set of objectives).

The answer is a `pdcore.sim.sizing_result.Sizing` (its GPUs and goodput per GPU, and what the run of the
cloud it names showed besides its attainment, `CloudRun`, so that a check of that cloud needs no run).
Probes may be kept in a `pdcore.sim.sizing_probes.ProbeCache` that many searches share
(`pdcore.sim.planner_search`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from pdcore.exceptions import InvalidInputError
from pdcore.policies.base import Policy
from pdcore.sim.fleet_runs import class_delays, request_classes
from pdcore.sim.scenario import Scenario
from pdcore.sim.sizing_probes import Probe, ProbeCache, ProbeKey, sizing_attainment
from pdcore.sim.sizing_result import Bound, CloudRun, Sizing, whole_cloud_gain
from pdcore.sim.unattainable import PLATEAU_GAIN, attainment_bound, doubling_helps
from pdcore.traces.workload import Workload

__all__ = [
    "DEFAULT_MAX_REPLICAS",
    "DEFAULT_SIZING_TARGET",
    "Sizing",
    "size_cloud",
    "sizing_attainment",
    "whole_cloud_gain",
]

DEFAULT_SIZING_TARGET = 0.9
"""Default share of requests that must meet the SLO."""

DEFAULT_MAX_REPLICAS = 64
"""Default cap on the replicas of one pool (or of a colocated cloud) in the search."""


Progress = Callable[[str, float, bool], None]
"""Called after each probe with the cloud tried (``"3P+2D"`` or ``"x4"``), its attainment and whether it
met the target."""


def _label(deployment: str, cloud: tuple[int, int]) -> str:
    return f"x{cloud[0]}" if deployment == "colocated" else f"{cloud[0]}P+{cloud[1]}D"


def _smallest(lo: int, hi: int, meets: Callable[[int], bool]) -> int:
    """The smallest ``n`` in ``[lo, hi]`` with ``meets(n)``, given ``meets(hi)`` (bisection)."""
    while lo < hi:
        middle = (lo + hi) // 2
        if meets(middle):
            hi = middle
        else:
            lo = middle + 1
    return hi


def _with_decode(meets: Callable[[tuple[int, int]], bool], decode: int, prefill: int) -> bool:
    return meets((prefill, decode))


def _with_prefill(meets: Callable[[tuple[int, int]], bool], prefill: int, decode: int) -> bool:
    return meets((prefill, decode))


def _each_pool(cloud: tuple[int, int], meets: Callable[[tuple[int, int]], bool]) -> tuple[int, int]:
    """The smallest prefill pool that meets with the decode pool, then the smallest decode pool with that,
    until neither moves (each phase sized apart, as DistServe does); ``cloud`` meets."""
    while True:
        prefill = _smallest(1, cloud[0], functools.partial(_with_decode, meets, cloud[1]))
        decode = _smallest(1, cloud[1], functools.partial(_with_prefill, meets, prefill))
        if (prefill, decode) == cloud:
            return cloud
        cloud = (prefill, decode)


@dataclass
class _Search:
    """The probes of one sizing: every cloud tried is simulated once, with the same network delays."""

    workload: Workload
    policy: Policy
    scenario: Scenario
    seed: int
    target: float
    progress: Progress | None
    probes: ProbeCache | None = None
    seen: dict[tuple[int, int], tuple[float, bool]] = field(default_factory=dict)
    times: dict[tuple[int, int], tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]] = field(
        default_factory=dict
    )
    runs: dict[tuple[int, int], CloudRun] = field(default_factory=dict)
    colocated: bool = field(init=False)
    delays: npt.NDArray[np.float64] = field(init=False)
    rate: float = field(init=False)

    def __post_init__(self) -> None:
        self.colocated = self.scenario.deployment == "colocated"
        fleet = self.scenario.fleet
        if fleet is None:
            self.delays = self.scenario.one_way_s(len(self.workload), self.seed)
        else:  # each request's delay from its class's network, as a run over the fleet draws it
            self.delays = class_delays(fleet, request_classes(fleet, self.workload, self.seed), self.seed)
        self.rate = len(self.workload) / float(self.workload.arrival_s[-1])

    def key(self, cloud: tuple[int, int]) -> ProbeKey:
        """The probe's key in a `ProbeCache`."""
        return (self.scenario.cloud.name, self.scenario.deployment, cloud[0], cloud[1], self.policy.name)

    def simulate(self, cloud: tuple[int, int]) -> Probe:
        """One run of the whole workload on ``cloud``."""
        if self.colocated:
            changes: dict[str, Any] = {"replicas": cloud[0]}
        else:
            changes = {"prefill_replicas": cloud[0], "decode_replicas": cloud[1]}
        scenario = self.scenario.replace(**changes)
        return Probe.of(scenario.run(self.workload, self.policy, seed=self.seed, one_way_s=self.delays))

    def run(self, cloud: tuple[int, int]) -> tuple[float, bool]:
        """Attainment of ``(R, 0)`` colocated or ``(P, D)``, and whether the cloud did any work."""
        if cloud not in self.seen:
            if self.probes is None:
                probe = self.simulate(cloud)
            else:
                probe = self.probes.get_or_run(self.key(cloud), functools.partial(self.simulate, cloud))
            self.seen[cloud] = (probe.attainment, probe.used)
            self.times[cloud] = (probe.ttft_s, probe.max_gap_s)
            self.runs[cloud] = probe.run
            if self.progress is not None:
                attainment = self.seen[cloud][0]
                self.progress(self.label(cloud), attainment, attainment >= self.target)
        return self.seen[cloud]

    def meets(self, cloud: tuple[int, int]) -> bool:
        return self.run(cloud)[0] >= self.target

    def label(self, cloud: tuple[int, int]) -> str:
        return _label(self.scenario.deployment, cloud)

    def helps(self, smaller: tuple[int, int], larger: tuple[int, int]) -> bool:
        """Whether ``larger`` (twice ``smaller``) still helped (`pdcore.sim.unattainable.doubling_helps`)."""
        before, after = self.times[smaller], self.times[larger]
        attainment = (self.run(smaller)[0], self.run(larger)[0])
        return doubling_helps(self.scenario.slo, attainment, (before[0], after[0]), (before[1], after[1]))

    def sizing(
        self, cloud: tuple[int, int], bound: Bound, fewer: dict[str, float], *, reason: str = ""
    ) -> Sizing:
        return self.record(cloud, bound, fewer, self.run(cloud)[0], reason=reason)

    def record(
        self, cloud: tuple[int, int], bound: Bound, fewer: dict[str, float], attainment: float, *, reason: str
    ) -> Sizing:
        per_replica = self.scenario.cloud.gpus_per_replica
        if bound == "no_cloud":
            replicas, prefill, decode, gpus = 0, 0, 0, 0
        elif self.colocated:
            replicas, prefill, decode, gpus = cloud[0], 0, 0, cloud[0] * per_replica
        else:
            replicas, prefill, decode, gpus = 0, cloud[0], cloud[1], (cloud[0] + cloud[1]) * per_replica
        return Sizing(
            policy=self.policy.name,
            deployment=self.scenario.deployment,
            replicas=replicas,
            prefill_replicas=prefill,
            decode_replicas=decode,
            gpus=None if bound == "unattainable" else gpus,
            attainment=attainment,
            fewer=fewer,
            target=float(self.target),
            rate_rps=self.rate,
            goodput_per_gpu_rps=self.rate * attainment / gpus if gpus else None,
            bound=bound,
            probes=len(self.seen),
            reason=reason,
            run=self.runs.get(cloud),
        )

    def proved_unattainable(self, max_replicas: int) -> Sizing | None:
        """The sizing when `attainment_bound` shows no cloud can reach ``target``; None otherwise."""
        fleet = self.scenario.fleet
        if fleet is not None and any(c.slo is not None for c in fleet.classes):
            return None  # the bound is written for one set of objectives
        found = attainment_bound(self.workload, self.scenario)
        if found.attainment >= self.target:
            return None
        reason = found.reason()
        largest = (max_replicas, 0) if self.colocated else (max_replicas, max_replicas)
        # no cloud was run: the attainment is a bound, not a rate of requests served
        sized = self.record(largest, "unattainable", {}, found.attainment, reason=reason)
        return dataclasses.replace(sized, goodput_per_gpu_rps=None)

    def grow(self, max_replicas: int) -> tuple[int, Sizing | None]:
        """The smallest doubling ``n`` whose cloud meets; or the unattainable sizing (module docstring)."""
        n = 1
        cloud = (1, 0) if self.colocated else (1, 1)
        while not self.meets(cloud):
            if n >= max_replicas:
                reason = f"the largest tried, {self.label(cloud)}, meets it for {self.run(cloud)[0]:.1%}"
                return n, self.sizing(cloud, "unattainable", {}, reason=reason)
            n = min(2 * n, max_replicas)
            larger = (n, 0) if self.colocated else (n, n)
            if n < max_replicas and not self.meets(larger) and not self.helps(cloud, larger):
                best = max((cloud, larger), key=lambda c: self.run(c)[0])
                reason = (
                    f"the best found, {self.label(best)}, meets it for {self.run(best)[0]:.1%}, and doubling "
                    f"{self.label(cloud)} to {self.label(larger)} neither raised that nor cut the TTFT or "
                    f"largest gap the missing requests miss by {PLATEAU_GAIN:.0%}, so more replicas cannot "
                    "help"
                )
                return n, self.sizing(best, "unattainable", {}, reason=reason)
            cloud = larger
        return n, None

    def smallest(self, max_replicas: int) -> Sizing:
        """The search of the module docstring."""
        proved = self.proved_unattainable(max_replicas)
        if proved is not None:
            return proved
        colocated, meets = self.colocated, self.meets
        first = (1, 0) if colocated else (1, 1)
        attainment, used = self.run(first)
        if not used:
            if attainment >= self.target:
                return self.sizing(first, "no_cloud", {})
            reason = f"the policy sends no work to the cloud and meets it for {attainment:.1%} without one"
            return self.sizing(first, "unattainable", {}, reason=reason)
        n, unattainable = self.grow(max_replicas)
        if unattainable is not None:
            return unattainable
        cloud = (_smallest(1, n, lambda r: meets((r, 0))), 0) if colocated else (n, n)
        while True:
            if not colocated:
                cloud = _each_pool(cloud, meets)
            smaller = [(cloud[0] - 1, cloud[1])] if cloud[0] > 1 else []
            if not colocated and cloud[1] > 1:
                smaller.append((cloud[0], cloud[1] - 1))
            passing = [c for c in smaller if meets(c)]
            if not passing:
                fewer = {self.label(c): self.run(c)[0] for c in smaller}
                return self.sizing(cloud, "found", fewer)
            cloud = passing[0]  # attainment was not monotone here: search on from the smaller cloud


def size_cloud(
    workload: Workload,
    policy: Policy,
    scenario: Scenario,
    *,
    seed: int = 0,
    target: float = DEFAULT_SIZING_TARGET,
    max_replicas: int = DEFAULT_MAX_REPLICAS,
    progress: Progress | None = None,
    probes: ProbeCache | None = None,
) -> Sizing:
    """The smallest cloud of the scenario's deployment that meets the SLO for ``target`` of the requests.

    Args:
        workload: The requests (replayed whole at every probe).
        policy: The policy.
        scenario: The environment; its deployment is sized, its replica counts are ignored.
        seed: Seed of the network delays (the same delays at every probe).
        target: The SLO attainment the cloud must reach, in (0, 1].
        max_replicas: The most replicas of one pool (or of a colocated cloud) tried.
        progress: Called after each probe.
        probes: Where probes are kept and looked up (`pdcore.sim.sizing_probes.ProbeCache`); None keeps
            them for this search only.

    Returns:
        The sizing (module docstring).

    Raises:
        InvalidInputError: A setting out of range or an empty workload.
    """
    if not (isinstance(target, (int, float)) and 0.0 < target <= 1.0):
        raise InvalidInputError(f"--target = {target!r}; fix: pass an attainment in (0, 1], e.g. 0.9")
    if isinstance(max_replicas, bool) or not isinstance(max_replicas, int) or max_replicas < 1:
        raise InvalidInputError(f"--max-replicas = {max_replicas!r}; fix: pass a whole number >= 1, e.g. 64")
    if len(workload) < 2 or float(workload.arrival_s[-1]) <= 0.0:
        raise InvalidInputError(
            f"workload {workload.name!r} has no time span, so it has no rate to size for; fix: pass at "
            "least two requests spread in time"
        )
    search = _Search(workload, policy, scenario, seed=seed, target=target, progress=progress, probes=probes)
    return search.smallest(max_replicas)
