"""Sizing over a fleet: the GPUs each policy needs at the SLO as the share of capable devices goes from 0 to
100% (`size_fleet_sweep`), the search behind ``pdcore size --fleet``.

The mix at a capable share ``s`` (`capable_mix`), a rule of ours:

- the capable classes (those with a device) keep their proportions and are scaled so that they sum to
  ``s``: class ``i`` gets ``share_i * s / C`` where ``C`` is the fleet's capable share;
- the rest, ``1 - s``, goes to the classes with no capable device in their proportions; a fleet without
  such a class gets one, ``no-capable-device``, on the network of its largest capable class (the network
  a user is on is taken not to depend on the device's ability to run the model);
- the capable classes come first, then the others: with the draw of `pdcore.fleet.Fleet.draw` (one
  uniform number per request, mapped on the cumulative shares), a request is capable at share ``s``
  exactly when its number is below ``s``, so the capable requests at a smaller share are among those at
  every larger share, and the sweep compares nested sets rather than fresh draws.

So at 0% no request has a device and every policy is served by the cloud alone, as cloud-only is: the
two need the same GPUs, exactly. A fleet with no capable class has no mix above 0%.

A workload that names each request's class (a trace's ``device_class`` column, `pdcore.traces.class_column`)
is refused (ours): the sweep re-mixes the shares, which such a trace overrides request by request, so no
capable share could be what it says. Size it with the fleet's shares by dropping the column, or run it as
given with ``pdcore simulate --fleet``.

Each (mix, policy) is one `pdcore.sim.planner_search.size_task` on the scenario with that mix as its fleet,
with a probe cache of its own (the caches are keyed by cloud and policy, not by fleet). The tasks run one
after another (``"serial"``), on threads (``"threads"``, the native simulator releases the GIL) or as Ray
tasks (``"ray"``); every search is deterministic, so every executor gives the same sizings, bit for bit.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pdcore.exceptions import InvalidInputError
from pdcore.fleet import DeviceClass, Fleet
from pdcore.sim.executors import run_all
from pdcore.sim.planner_search import EXECUTORS, PlannedCloud, SearchTask, size_task
from pdcore.sim.scenario import Scenario
from pdcore.sim.sizing import DEFAULT_MAX_REPLICAS, DEFAULT_SIZING_TARGET
from pdcore.sim.threads import default_workers, on_threads
from pdcore.traces.workload import Workload

__all__ = [
    "DEFAULT_CAPABLE_SHARES",
    "FLEET_EXECUTORS",
    "NO_CAPABLE_CLASS",
    "FleetSweep",
    "MixSizing",
    "capable_mix",
    "parse_capable_shares",
    "size_fleet_sweep",
]

DEFAULT_CAPABLE_SHARES = "0,25,50,75,100"
"""The capable shares of the sweep, percent."""

FLEET_EXECUTORS = EXECUTORS
"""Where the searches of a sweep run (those of `pdcore.sim.planner_search`)."""

NO_CAPABLE_CLASS = "no-capable-device"
"""The class `capable_mix` adds to a fleet that has no class without a device."""


def parse_capable_shares(text: str) -> tuple[float, ...]:
    """The shares of ``--capable-shares`` (comma-separated percent, 0 to 100), as fractions, in the order
    given, each once.

    Raises:
        InvalidInputError: Empty, a value that is not a number, NaN, negative or above 100.
    """
    parts = [part.strip() for part in text.split(",")]
    if not text.strip() or any(not part for part in parts):
        raise InvalidInputError(
            f"--capable-shares {text!r} has an empty value; fix: pass percents from 0 to 100, e.g. "
            f"{DEFAULT_CAPABLE_SHARES}"
        )
    shares: list[float] = []
    for part in parts:
        try:
            percent = float(part)
        except ValueError:
            percent = math.nan
        if not (math.isfinite(percent) and 0.0 <= percent <= 100.0):
            raise InvalidInputError(
                f"--capable-shares: {part!r} is not a percent from 0 to 100; fix: pass e.g. "
                f"{DEFAULT_CAPABLE_SHARES}"
            )
        if percent / 100.0 not in shares:
            shares.append(percent / 100.0)
    return tuple(shares)


def capable_mix(fleet: Fleet, share: float) -> Fleet:
    """The fleet at capable share ``share`` in [0, 1] (module docstring).

    Raises:
        InvalidInputError: ``share`` outside [0, 1], or above 0 for a fleet with no capable class.
    """
    if not (isinstance(share, (int, float)) and math.isfinite(share) and 0.0 <= share <= 1.0):
        raise InvalidInputError(f"capable share {share!r}; fix: pass a share from 0 to 1")
    capable = [c for c in fleet.classes if c.capable]
    others = [c for c in fleet.classes if not c.capable]
    if not capable and share > 0.0:
        raise InvalidInputError(
            f"fleet {fleet.name!r} has no class with a capable device, so it has no mix with "
            f"{share:.0%} capable; fix: pass --capable-shares 0, or a fleet with a capable class"
        )
    if not others:
        largest = max(capable, key=lambda c: c.share)
        others = [DeviceClass(NO_CAPABLE_CLASS, 1.0, None, "none", largest.network)]
    capable_total = math.fsum(c.share for c in capable)
    other_total = math.fsum(c.share for c in others)
    classes = [_scaled(c, share, capable_total, len(capable)) for c in capable]
    classes += [_scaled(c, 1.0 - share, other_total, len(others)) for c in others]
    # the last class takes what rounding left, so the shares sum to 1
    rest = 1.0 - math.fsum(c.share for c in classes[:-1])
    classes[-1] = dataclasses.replace(classes[-1], share=min(max(rest, 0.0), 1.0))
    return dataclasses.replace(
        fleet,
        name=f"{fleet.name}@{share * 100:g}%",
        description=f"{fleet.description} (mixed to {share:.0%} capable)",
        classes=tuple(classes),
    )


def _scaled(device_class: DeviceClass, to: float, total: float, count: int) -> DeviceClass:
    """The class's share scaled so that its group (``count`` classes of shares summing to ``total``) sums
    to ``to``; a group of shares summing to 0 shares ``to`` evenly."""
    share = to / count if total <= 0.0 else device_class.share * to / total
    return dataclasses.replace(device_class, share=share)


@dataclass(frozen=True)
class MixSizing:
    """The sizings of one mix.

    Attributes:
        label: ``"as given"`` for the fleet itself, else the capable share in percent (``"25%"``).
        capable_share: Share of the requests with a capable device, in [0, 1].
        fleet: The mix.
        planned: Per policy, in the order asked, its sizing and figures.
    """

    label: str
    capable_share: float
    fleet: Fleet
    planned: dict[str, PlannedCloud]

    def gpus_saved(self, baseline: str = "cloud-only") -> dict[str, int | None]:
        """Per policy other than ``baseline``: the baseline's GPUs minus its own; None when either is
        unattainable or the baseline was not sized."""
        base = self.planned.get(baseline)
        out: dict[str, int | None] = {}
        for name, planned in self.planned.items():
            if name == baseline:
                continue
            ok = base is not None and base.sizing.gpus is not None and planned.sizing.gpus is not None
            out[name] = base.sizing.gpus - planned.sizing.gpus if ok else None  # type: ignore[union-attr,operator]
        return out

    def describe(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {
            "label": self.label,
            "capable_share": self.capable_share,
            "fleet": self.fleet.describe(),
            "sizing": {name: planned.describe() for name, planned in self.planned.items()},
            "gpus_saved": self.gpus_saved(),
        }


@dataclass(frozen=True)
class FleetSweep:
    """What `size_fleet_sweep` found: the fleet as given, then each capable share asked.

    Attributes:
        mixes: The mixes' sizings, the fleet as given first.
        runs: Simulations run.
        wall_s: Wall time of the sweep, seconds.
        executor: Where the searches ran.
    """

    mixes: list[MixSizing]
    runs: int
    wall_s: float
    executor: str

    def describe(self) -> dict[str, Any]:
        """A JSON-ready record (the ``fleet_sizing`` object of ``pdcore size --fleet --json``)."""
        return {
            "mixes": [mix.describe() for mix in self.mixes],
            "runs": self.runs,
            "wall_s": self.wall_s,
            "executor": self.executor,
        }


def _mixes(fleet: Fleet, shares: Sequence[float]) -> list[tuple[str, Fleet]]:
    return [("as given", fleet)] + [(f"{share * 100:g}%", capable_mix(fleet, share)) for share in shares]


def size_fleet_sweep(
    workload: Workload,
    scenario: Scenario,
    fleet: Fleet,
    policies: Sequence[str],
    shares: Sequence[float],
    *,
    executor: str = "threads",
    seed: int = 0,
    target: float = DEFAULT_SIZING_TARGET,
    max_replicas: int = DEFAULT_MAX_REPLICAS,
    finished: Callable[[SearchTask], None] | None = None,
) -> FleetSweep:
    """Sizes each policy on the fleet as given and on its mix at each capable share (module docstring).

    Raises:
        InvalidInputError: An unknown executor, a share a fleet has no mix for, or what a search raises.
    """
    if executor not in FLEET_EXECUTORS:
        raise InvalidInputError(
            f"--executor {executor!r} is unknown; fix: use one of {', '.join(FLEET_EXECUTORS)}"
        )
    if len(workload.device_class):
        raise InvalidInputError(
            f"trace {workload.source!r} names each request's class in its device_class column, which "
            "overrides the capable shares size --fleet sweeps; fix: drop the column to size over the "
            "fleet's mixes, or run the trace's classes as given with pdcore simulate --fleet"
        )
    mixes = _mixes(fleet, shares)
    tasks = [
        SearchTask(workload, scenario.replace(fleet=mix), policy, seed, target, max_replicas)
        for _, mix in mixes
        for policy in policies
    ]
    began = time.perf_counter()
    if executor == "ray":

        def done(_count: int, _total: int, task: SearchTask) -> None:
            if finished is not None:
                finished(task)

        sized = run_all(size_task, tasks, executor="ray", progress=done)
    else:
        workers = 1 if executor == "serial" else default_workers(len(tasks), requests=len(workload))
        sized = on_threads(size_task, tasks, workers=workers, finished=finished)
    wall_s = time.perf_counter() - began
    found: list[MixSizing] = []
    for index, (label, mix) in enumerate(mixes):
        planned = sized[index * len(policies) : (index + 1) * len(policies)]
        found.append(MixSizing(label, mix.capable_share, mix, dict(zip(policies, planned, strict=True))))
    runs = sum(p.sizing.probes for p in sized)
    return FleetSweep(mixes=found, runs=runs, wall_s=wall_s, executor=executor)
