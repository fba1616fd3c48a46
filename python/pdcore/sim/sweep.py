"""Many independent simulations at once: in turn, on a process pool, or on a Ray cluster.

A `SweepTask` carries the run specification (`pdcore.sim.spec`) rather than what it names: the workload
as a `WorkloadSpec`, the environment as a `ScenarioSpec`, the policy as a `make_policy` spec. A task
pickles to a few hundred bytes, and each worker process reads a trace and builds a scenario once
(`run_task` caches workloads and built scenarios per process). Every executor runs the same function,
`run_task`, on the same tasks, and a task fixes every seed, so the results do not depend on the executor
or on the order tasks finish; `run_sweep` returns them in the order of the tasks.

The executors (``"serial"``, ``"process"``, ``"ray"``) are those of `pdcore.sim.executors`; with Ray,
every node needs pdcore installed and the trace files at the same paths.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from pdcore._core import SERVED_BY
from pdcore.exceptions import InvalidInputError
from pdcore.policies.builtin import make_policy
from pdcore.sim.capacity import DEFAULT_TARGET, DEFAULT_WINDOW, Capacity, capacity_rps, decode_capacity_rps
from pdcore.sim.executors import EXECUTORS, check_executor, run_all
from pdcore.sim.result import SimResult
from pdcore.sim.scenario import Scenario
from pdcore.sim.spec import ScenarioSpec, WorkloadSpec
from pdcore.slo import SLO
from pdcore.traces.workload import Workload

__all__ = [
    "COMPUTE",
    "EXECUTORS",
    "ScenarioSpec",
    "SweepProgress",
    "SweepResult",
    "SweepTask",
    "WorkloadSpec",
    "pick_timeline_request",
    "run_sweep",
    "run_task",
]

COMPUTE = ("aggregate", "capacity", "decode_capacity", "timeline")
"""What a task can compute: the run's report, the two capacity searches, a one-request timeline."""

SweepProgress = Callable[[int, int, "SweepTask"], None]
"""Called after each finished task with (tasks done, tasks in all, the task just finished)."""


_SCENARIO_FIELDS = frozenset(field.name for field in fields(ScenarioSpec))


@dataclass(frozen=True, init=False)
class SweepTask:
    """One simulation setting and what to compute for it.

    The environment's settings may also be given one by one, by their `ScenarioSpec` names, as before
    the specification existed (``SweepTask(workload=..., policy=..., device=..., max_tpot_s=...)``, and
    likewise `dataclasses.replace`): each replaces that field of ``environment``; ``rate_scale`` replaces
    the workload's. Read back, ``task.device`` is ``task.environment.device``.

    Attributes:
        workload: The workload (its ``rate_scale`` replays it faster; capacity searches scale it further).
        policy: A `make_policy` spec, e.g. ``"pd-device"`` or ``"pd-device:refine_ratio=0.5"``.
        environment: Profiles, network, cloud shape and objectives (the default `ScenarioSpec` if None).
        seed: Seed of the per-request network delays.
        compute: A non-empty subset of `COMPUTE`.
        columns: Per-request columns of `SimResult.columns` to return with ``"aggregate"``.
        capacity_window: Requests replayed per capacity probe.
        capacity_target: Attainment a rate must reach in a capacity search.
        timeline_request: The request whose timeline to record; None picks one
            (`pick_timeline_request`).
        timeline_requests: More requests whose timelines to record in the same run (with
            ``"timeline"``), returned in `SweepResult.timelines`.
        tag: A free label, returned with the result.
    """

    workload: WorkloadSpec
    policy: str
    environment: ScenarioSpec
    seed: int
    compute: tuple[str, ...]
    columns: tuple[str, ...]
    capacity_window: int
    capacity_target: float
    timeline_request: int | None
    timeline_requests: tuple[int, ...]
    tag: str

    def __init__(
        self,
        workload: WorkloadSpec,
        policy: str,
        *,
        environment: ScenarioSpec | None = None,
        seed: int = 0,
        compute: Sequence[str] = ("aggregate",),
        columns: Sequence[str] = (),
        capacity_window: int = DEFAULT_WINDOW,
        capacity_target: float = DEFAULT_TARGET,
        timeline_request: int | None = None,
        timeline_requests: Sequence[int] = (),
        tag: str = "",
        rate_scale: float | None = None,
        **settings: Any,
    ) -> None:
        """Checks what to compute and merges settings given one by one (class docstring).

        Raises:
            InvalidInputError: An empty or unknown ``compute``, or columns without ``"aggregate"``.
            TypeError: A keyword that is neither a field nor a `ScenarioSpec` setting.
        """
        unknown_settings = sorted(set(settings) - _SCENARIO_FIELDS)
        if unknown_settings:
            raise TypeError(f"SweepTask got unexpected keyword arguments {unknown_settings}")
        environment = ScenarioSpec() if environment is None else environment
        if settings:
            environment = environment.replace(**settings)
        if rate_scale is not None:
            workload = workload.replace(rate_scale=rate_scale)
        values = {
            "workload": workload,
            "policy": policy,
            "environment": environment,
            "seed": seed,
            "compute": tuple(compute),
            "columns": tuple(columns),
            "capacity_window": capacity_window,
            "capacity_target": capacity_target,
            "timeline_request": timeline_request,
            "timeline_requests": tuple(timeline_requests),
            "tag": tag,
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)
        unknown = [item for item in self.compute if item not in COMPUTE]
        if not self.compute or unknown:
            raise InvalidInputError(
                f"compute = {self.compute!r}; fix: pass one or more of {', '.join(COMPUTE)}"
            )
        if self.columns and "aggregate" not in self.compute:
            raise InvalidInputError(
                f"columns = {self.columns!r} come with the run's report; fix: add 'aggregate' to compute"
            )

    def __getattr__(self, name: str) -> Any:
        """The environment's settings by their old flat names (``task.device``), and ``rate_scale``."""
        if name in _SCENARIO_FIELDS:
            return getattr(self.environment, name)
        if name == "rate_scale":
            return self.workload.rate_scale
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def slo(self) -> SLO:
        """The objectives of the task."""
        return self.environment.slo()

    def scenario(self) -> Scenario:
        """The environment of the task, built (cached per process)."""
        return _scenario(self.environment)


@dataclass(frozen=True, eq=False)
class SweepResult:
    """What `run_task` computed for one task.

    Equality compares every field, arrays element-wise with NaN equal to NaN.

    Attributes:
        task: The task.
        aggregate: `SimResult.aggregate` of the run (with ``"aggregate"``).
        columns: The requested per-request columns of that run.
        capacity: The `capacity_rps` search (with ``"capacity"``).
        decode_capacity: The `decode_capacity_rps` search (with ``"decode_capacity"``).
        timeline: The recorded request (with ``"timeline"``): ``request``, ``arrival_s``,
            ``prompt_tokens``, ``output_tokens``, ``one_way_s``, ``mode`` and ``k`` of its plan (``k`` -1
            outside a split), then ``Simulator.timeline()`` with times from the request's arrival:
            ``cloud_arrivals_s``, ``displays_s``, ``from_cloud``, ``handoff_s``, and
            ``handoff_estimates`` (``(n, 2)``: when the hand-off estimate was set or changed, and to what).
        timelines: Every recorded request (``timeline_request`` and ``timeline_requests``) by index, each
            as ``timeline``.
    """

    task: SweepTask
    aggregate: dict[str, Any] | None = None
    columns: dict[str, npt.NDArray[Any]] = field(default_factory=dict)
    capacity: Capacity | None = None
    decode_capacity: Capacity | None = None
    timeline: dict[str, Any] | None = None
    timelines: dict[int, dict[str, Any]] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        """Field by field; arrays element-wise, NaN equal to NaN."""
        if not isinstance(other, SweepResult):
            return NotImplemented
        return self.task == other.task and all(
            _same(getattr(self, name), getattr(other, name))
            for name in ("aggregate", "columns", "capacity", "decode_capacity", "timeline", "timelines")
        )

    __hash__ = None  # type: ignore[assignment]  # holds arrays and dicts


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, np.ndarray) or isinstance(right, np.ndarray):
        a, b = np.asarray(left), np.asarray(right)
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(_same(left[key], right[key]) for key in left)
    if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left) and math.isnan(right):
        return True
    return bool(left == right)


@lru_cache(maxsize=64)
def _scenario(spec: ScenarioSpec) -> Scenario:
    return spec.build()


@lru_cache(maxsize=8)
def _workload(spec: WorkloadSpec) -> Workload:
    return spec.load()


def pick_timeline_request(result: SimResult) -> int:
    """A representative request of a run: among those whose tokens came from both the cloud and the
    device (all, if none did), the one whose prompt and output lengths are nearest, in log scale, to the
    run's medians; the lower index on a tie."""
    prompts = np.log(result.workload.prompt_tokens.astype(np.float64))
    outputs = np.log(result.workload.output_tokens.astype(np.float64))
    distance = np.hypot(prompts - np.median(prompts), outputs - np.median(outputs))
    split = np.asarray(result.results["served_by"]) == SERVED_BY.index("both")
    if split.any():
        distance = np.where(split, distance, np.inf)
    return int(np.argmin(distance))


def run_task(task: SweepTask) -> SweepResult:
    """Computes one task (the function every executor runs).

    Raises:
        InvalidInputError: A profile, trace, policy or setting is invalid, or a column is unknown.
    """
    scenario = task.scenario()
    # cached before its replay speed: tasks that differ only in rate_scale read the workload once
    workload = _workload(task.workload.replace(rate_scale=1.0)).scaled(task.workload.rate_scale)
    aggregate: dict[str, Any] | None = None
    columns: dict[str, npt.NDArray[Any]] = {}
    timeline: dict[str, Any] | None = None
    timelines: dict[int, dict[str, Any]] = {}
    run: SimResult | None = None
    if "aggregate" in task.compute or ("timeline" in task.compute and task.timeline_request is None):
        run = scenario.run(workload, make_policy(task.policy), seed=task.seed)
    if run is not None and "aggregate" in task.compute:
        aggregate = run.aggregate()
        if task.columns:
            table = run.columns()
            unknown = [name for name in task.columns if name not in table]
            if unknown:
                raise InvalidInputError(f"columns {unknown!r} are unknown; fix: pick from {', '.join(table)}")
            columns = {name: np.array(table[name]) for name in task.columns}
    if "timeline" in task.compute:
        request = task.timeline_request
        if request is None and run is not None:
            request = pick_timeline_request(run)
        if request is None or not 0 <= request < len(workload):
            raise InvalidInputError(
                f"timeline_request = {request}; fix: pass an index below {len(workload)}, or None"
            )
        outside = [i for i in task.timeline_requests if not 0 <= i < len(workload)]
        if outside:
            raise InvalidInputError(f"timeline_requests {outside}; fix: pass indices below {len(workload)}")
        timelines = scenario.record_timelines(
            workload, task.policy, list(dict.fromkeys((request, *task.timeline_requests))), seed=task.seed
        )
        timeline = timelines[request]
    searches: dict[str, Capacity] = {}
    for key, search in (("capacity", capacity_rps), ("decode_capacity", decode_capacity_rps)):
        if key in task.compute:
            searches[key] = search(
                workload,
                make_policy(task.policy),
                scenario,
                seed=task.seed,
                target=task.capacity_target,
                window=task.capacity_window,
            )
    return SweepResult(
        task=task,
        aggregate=aggregate,
        columns=columns,
        capacity=searches.get("capacity"),
        decode_capacity=searches.get("decode_capacity"),
        timeline=timeline,
        timelines=timelines,
    )


def run_sweep(
    tasks: Sequence[SweepTask],
    *,
    executor: str = "process",
    workers: int | None = None,
    progress: SweepProgress | None = None,
    ray_address: str | None = None,
) -> list[SweepResult]:
    """Runs every task and returns the results in the order of ``tasks``.

    Args:
        tasks: The tasks; they are independent.
        executor: ``"serial"``, ``"process"`` or ``"ray"`` (module docstring).
        workers: Processes of the pool, or Ray tasks in flight at once; None: the CPU count (process)
            or no limit (Ray).
        progress: Called after each finished task.
        ray_address: The Ray cluster to connect to (``ray.init(address=...)``); None starts a local
            instance, unless a Ray session is already open.

    Returns:
        One result per task, equal whichever executor ran them.

    Raises:
        InvalidInputError: An unknown executor, a bad worker count, Ray not installed, or a task's
            input is invalid (raised from the worker).
    """
    check_executor(executor)
    tasks = list(tasks)
    for index, task in enumerate(tasks):
        if not isinstance(task, SweepTask):
            raise InvalidInputError(f"tasks[{index}] is a {type(task).__name__}; fix: pass SweepTask objects")
    return run_all(
        run_task, tasks, executor=executor, workers=workers, progress=progress, ray_address=ray_address
    )
