"""Sizing a capacity planner can act on: every shipped profile of a model, every split, every policy.

`pdcore.sim.sizing.size_cloud` answers one question: the smallest cloud at one profile's parallelism.
A planner asks which GPU and tensor parallelism, which prefill:decode split (or colocated), and what it
costs. `search_candidates` runs `size_cloud` for each *candidate*: a cloud profile (a GPU at a tensor
parallelism: `model_family_clouds` finds the shipped ones of a model), a deployment (``disaggregated``,
whose search gives the prefill and decode pools P and D, or ``colocated``) and a policy. For each it
reports (`PlannedCloud`):

- the GPUs needed at the SLO (``replicas x gpus_per_replica``) and the goodput per GPU (requests per second
  meeting the SLO, per GPU: `pdcore.sim.sizing.Sizing`);
- dollars per hour and per month at the workload's rate: ``usd_per_gpu_hour x GPUs`` (the profile's
  ``[price]``), times `HOURS_PER_MONTH` (730, the mean month: 8,760 h / 12); None ("no price") when the
  profile has no ``[price]``. Only the cloud's GPUs are priced; a device's energy and radio are not;
- TTFT p90 and the per-user tokens/s (the median of 1 / TPOT) at the cloud found
  (`pdcore.sim.sizing_probes`);
- whether it is on its policy's two Pareto fronts (`pdcore.sim.front`): goodput per GPU against TTFT p90
  (the *TTFT front*), and goodput per GPU against per-user tokens/s (the *speed front*, the
  throughput-per-GPU against tokens-per-user curve of the configuration tools). Two plane fronts rather
  than one front of three objectives (ours): each is a curve a planner can plot and read, and the
  three-way front keeps nearly every candidate whose per-user speed differs in the third digit. A
  candidate with no cloud found (unattainable) or needing no GPU (no goodput per GPU) is on no front.

The searches share one `pdcore.sim.sizing_probes.ProbeCache`, so the figures at the cloud found are read
from the run the search made there, not simulated again. They run on an executor (`EXECUTORS`):
``"threads"`` (`pdcore.sim.threads.on_threads`, the default: the native simulator releases the GIL),
``"serial"`` (one after another) or ``"ray"`` (Ray remote tasks through `pdcore.sim.executors.run_all`;
the optional extra ``pdcore[ray]``; each task keeps its own cache). Every search is deterministic, so
every executor gives the same candidates, bit for bit.

Model families (ours): a shipped cloud profile's name is ``FAMILY-GPU-...`` with GPU a letter and digits
(``a100``, ``h100``, ``a40``); the family is what comes before, e.g. ``llama3-70b`` for
``llama3-70b-a100-tp4-vidur``. The ``model`` text of the profiles is free prose, so the name is the key.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pdcore.exceptions import InvalidInputError
from pdcore.policies import make_policy
from pdcore.profiles.registry import list_cloud_profiles
from pdcore.sim.executors import run_all
from pdcore.sim.front import pareto_front
from pdcore.sim.scenario import Scenario
from pdcore.sim.sizing import DEFAULT_MAX_REPLICAS, DEFAULT_SIZING_TARGET, Sizing, size_cloud
from pdcore.sim.sizing_probes import ProbeCache
from pdcore.sim.threads import default_workers, on_threads
from pdcore.traces.workload import Workload

__all__ = [
    "EXECUTORS",
    "HOURS_PER_MONTH",
    "PlannedCloud",
    "PlannerSearch",
    "SearchTask",
    "model_families",
    "model_family",
    "model_family_clouds",
    "search_candidates",
    "usd_per_hour",
    "usd_per_month",
]

HOURS_PER_MONTH = 730.0
"""Hours in the mean month (8,760 hours a year / 12), the month of cloud price sheets."""

EXECUTORS = ("threads", "serial", "ray")
"""Where the candidates' searches run (module docstring)."""

_GPU_PART = re.compile(r"^[a-z][0-9]+$")


def _family(name: str) -> str | None:
    parts = name.split("-")
    for index, part in enumerate(parts[1:], start=1):
        if _GPU_PART.match(part):
            return "-".join(parts[:index])
    return None


def model_family(name: str) -> str | None:
    """The model family of the cloud profile ``name`` (module docstring): the part of the name before
    its GPU (``llama3-70b`` of ``llama3-70b-a100-tp4-vidur``); None when the name has no GPU part."""
    return _family(name)


def model_families() -> dict[str, list[str]]:
    """The shipped cloud profiles by model family (module docstring), each list sorted."""
    families: dict[str, list[str]] = {}
    for name in list_cloud_profiles():
        family = _family(name)
        if family is not None:
            families.setdefault(family, []).append(name)
    return dict(sorted(families.items()))


def model_family_clouds(family: str) -> list[str]:
    """The shipped cloud profiles of ``family``.

    Raises:
        InvalidInputError: No shipped profile is of that family (the message lists the families).
    """
    families = model_families()
    if family not in families:
        raise InvalidInputError(
            f"--model-family {family!r} has no shipped cloud profile; fix: use one of "
            f"{', '.join(families)}, or name the profiles with --clouds"
        )
    return families[family]


def usd_per_hour(usd_per_gpu_hour: float | None, gpus: int | None) -> float | None:
    """The cloud's dollars per hour: the GPU-hour price times the GPUs; None without a price or GPUs."""
    if usd_per_gpu_hour is None or gpus is None:
        return None
    return usd_per_gpu_hour * gpus


def usd_per_month(usd_per_gpu_hour: float | None, gpus: int | None) -> float | None:
    """`usd_per_hour` times `HOURS_PER_MONTH`; None without a price or GPUs."""
    hourly = usd_per_hour(usd_per_gpu_hour, gpus)
    return None if hourly is None else hourly * HOURS_PER_MONTH


@dataclass(frozen=True)
class PlannedCloud:
    """One candidate's sizing and the figures a planner compares (module docstring).

    Attributes:
        cloud: The cloud profile's name.
        gpu: Its GPU.
        tensor_parallel: Its tensor parallelism.
        sizing: The smallest cloud found (`pdcore.sim.sizing.Sizing`; its policy and deployment).
        usd_per_gpu_hour: The profile's price, or None.
        ttft_p90_s: TTFT p90 at the cloud found, seconds; None when unattainable.
        user_tokens_per_s: Median per-user tokens/s at the cloud found; None when unattainable.
        on_ttft_front: On its policy's TTFT front (set by `search_candidates`).
        on_speed_front: On its policy's speed front (set by `search_candidates`).
    """

    cloud: str
    gpu: str
    tensor_parallel: int
    sizing: Sizing
    usd_per_gpu_hour: float | None
    ttft_p90_s: float | None
    user_tokens_per_s: float | None
    on_ttft_front: bool = False
    on_speed_front: bool = False

    @property
    def policy(self) -> str:
        """The policy's name."""
        return self.sizing.policy

    @property
    def usd_per_hour(self) -> float | None:
        """Dollars per hour of the cloud found (`usd_per_hour`)."""
        return usd_per_hour(self.usd_per_gpu_hour, self.sizing.gpus)

    @property
    def usd_per_month(self) -> float | None:
        """Dollars per month of the cloud found (`usd_per_month`)."""
        return usd_per_month(self.usd_per_gpu_hour, self.sizing.gpus)

    @property
    def on_front(self) -> bool:
        """On either of its policy's fronts."""
        return self.on_ttft_front or self.on_speed_front

    def ttft_point(self) -> tuple[float, float] | None:
        """(goodput per GPU, -TTFT p90), larger better; None without a goodput per GPU (unattainable, or
        no GPU needed)."""
        goodput = self.sizing.goodput_per_gpu_rps
        if goodput is None or self.ttft_p90_s is None:
            return None
        return (goodput, -self.ttft_p90_s)

    def speed_point(self) -> tuple[float, float] | None:
        """(goodput per GPU, per-user tokens/s), larger better; None without a goodput per GPU."""
        goodput = self.sizing.goodput_per_gpu_rps
        if goodput is None or self.user_tokens_per_s is None:
            return None
        return (goodput, self.user_tokens_per_s)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready record: the sizing's, the profile's and the planner's figures."""
        return self.sizing.describe() | {
            "cloud_profile": self.cloud,
            "gpu": self.gpu,
            "tensor_parallel": self.tensor_parallel,
            "usd_per_gpu_hour": self.usd_per_gpu_hour,
            "usd_per_hour": self.usd_per_hour,
            "usd_per_month": self.usd_per_month,
            "ttft_p90_s": self.ttft_p90_s,
            "user_tokens_per_s": self.user_tokens_per_s,
            "on_ttft_front": self.on_ttft_front,
            "on_speed_front": self.on_speed_front,
        }


@dataclass(frozen=True)
class SearchTask:
    """One candidate's search, picklable for a Ray worker: the workload, the scenario (its cloud profile
    and deployment), the policy by its spec, and the search's settings."""

    workload: Workload
    scenario: Scenario
    policy: str
    seed: int = 0
    target: float = DEFAULT_SIZING_TARGET
    max_replicas: int = DEFAULT_MAX_REPLICAS


def size_task(task: SearchTask, probes: ProbeCache | None = None) -> PlannedCloud:
    """The candidate's `PlannedCloud`, its probes kept in ``probes`` (a cache of its own when None)."""
    cache = ProbeCache() if probes is None else probes
    policy = make_policy(task.policy)
    sized = size_cloud(
        task.workload,
        policy,
        task.scenario,
        seed=task.seed,
        target=task.target,
        max_replicas=task.max_replicas,
        probes=cache,
    )
    profile = task.scenario.cloud
    probe = None
    if sized.bound != "unattainable":
        colocated = task.scenario.deployment == "colocated"
        found = (
            (max(sized.replicas, 1), 0)
            if colocated
            else (max(sized.prefill_replicas, 1), max(sized.decode_replicas, 1))
        )
        probe = cache.get((profile.name, task.scenario.deployment, *found, policy.name))
    return PlannedCloud(
        cloud=profile.name,
        gpu=profile.gpu,
        tensor_parallel=profile.tensor_parallel,
        sizing=sized,
        usd_per_gpu_hour=profile.usd_per_gpu_hour,
        ttft_p90_s=None if probe is None else probe.ttft_p90_s,
        user_tokens_per_s=None if probe is None else probe.user_tokens_per_s,
    )


@dataclass(frozen=True)
class PlannerSearch:
    """What `search_candidates` found.

    Attributes:
        candidates: One `PlannedCloud` per task, in the order of the tasks, fronts marked.
        runs: Simulations run (the probes of every search).
        wall_s: Wall time of the search, seconds.
        executor: Where the searches ran.
    """

    candidates: list[PlannedCloud]
    runs: int
    wall_s: float
    executor: str

    def fronts(self) -> dict[str, dict[str, list[PlannedCloud]]]:
        """The candidates on each policy's fronts: ``{policy: {"ttft": [...], "speed": [...]}}``."""
        found: dict[str, dict[str, list[PlannedCloud]]] = {}
        for candidate in self.candidates:
            fronts = found.setdefault(candidate.policy, {"ttft": [], "speed": []})
            if candidate.on_ttft_front:
                fronts["ttft"].append(candidate)
            if candidate.on_speed_front:
                fronts["speed"].append(candidate)
        return found


def mark_fronts(candidates: Sequence[PlannedCloud]) -> list[PlannedCloud]:
    """The candidates with each policy's TTFT and speed fronts marked (`pdcore.sim.front`)."""
    marked = list(candidates)
    for policy in dict.fromkeys(candidate.policy for candidate in candidates):
        indices = [i for i, candidate in enumerate(candidates) if candidate.policy == policy]
        on_ttft = pareto_front([candidates[i].ttft_point() for i in indices])
        on_speed = pareto_front([candidates[i].speed_point() for i in indices])
        for index, ttft, speed in zip(indices, on_ttft, on_speed, strict=True):
            marked[index] = dataclasses.replace(candidates[index], on_ttft_front=ttft, on_speed_front=speed)
    return marked


def _probe_runs(candidates: Sequence[PlannedCloud]) -> int:
    return sum(candidate.sizing.probes for candidate in candidates)


def search_candidates(
    tasks: Sequence[SearchTask],
    *,
    executor: str = "threads",
    workers: int | None = None,
    started: Callable[[SearchTask], None] | None = None,
    finished: Callable[[SearchTask], None] | None = None,
) -> PlannerSearch:
    """Sizes every candidate and marks each policy's front (module docstring).

    Args:
        tasks: The candidates' searches.
        executor: ``"threads"``, ``"serial"`` or ``"ray"``.
        workers: Searches at once (threads, Ray); None: one per CPU within the memory budget of
            `pdcore.sim.threads.default_workers` (threads), no limit (Ray).
        started: Called with each task as it is submitted (threads and serial).
        finished: Called with each task as it ends.

    Raises:
        InvalidInputError: An unknown executor, Ray not installed, or what a search raises.
    """
    if executor not in EXECUTORS:
        raise InvalidInputError(f"--executor {executor!r} is unknown; fix: use one of {', '.join(EXECUTORS)}")
    began = time.perf_counter()
    if executor == "ray":

        def done(_count: int, _total: int, task: SearchTask) -> None:
            if finished is not None:
                finished(task)

        sized = run_all(size_task, tasks, executor="ray", workers=workers, progress=done)
    else:
        cache = ProbeCache()
        if executor == "serial":
            workers = 1
        elif workers is None:
            requests = max((len(task.workload) for task in tasks), default=0)
            workers = default_workers(len(tasks), requests=requests)
        search = functools.partial(_size_shared, cache)
        sized = on_threads(search, tasks, workers=workers, started=started, finished=finished)
    candidates = mark_fronts(sized)
    return PlannerSearch(
        candidates=candidates,
        runs=_probe_runs(candidates),
        wall_s=time.perf_counter() - began,
        executor=executor,
    )


def _size_shared(cache: ProbeCache, task: SearchTask) -> PlannedCloud:
    return size_task(task, cache)
