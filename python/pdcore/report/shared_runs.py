"""One simulation for the experiments that ask for the same one.

Several experiments of the report run the same setting: the capacity-over-SLO sweep at the headline TPOT
objective repeats the main table's capacity searches, the device sweep at the headline device repeats the
main table's device-only and P/D-Device runs, the growth experiment's faster device repeats the device
sweep's. `merge` folds the tasks of one wave that differ only in what they compute (and their tag) into
one task computing the union; `split` hands each original task its own part of that one result.

The rule holds because `pdcore.sim.sweep.run_task` computes each part (the run's report and columns, each
capacity search, the timelines) from the task's setting alone, not from the other parts; a task fixes every
seed. So a merged result's parts are those the separate tasks would have given, bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from pdcore.sim.sweep import COMPUTE, SweepResult, SweepTask

__all__ = ["merge", "split"]

_Setting = tuple[object, ...]


def _setting(task: SweepTask) -> _Setting:
    """What a task runs, without what it computes or its tag."""
    return (
        task.workload,
        task.policy,
        task.environment,
        task.seed,
        task.capacity_window,
        task.capacity_target,
        task.timeline_request,
        task.timeline_requests,
    )


def merge(tasks: Sequence[SweepTask]) -> tuple[list[SweepTask], dict[str, int]]:
    """The distinct settings of ``tasks``, each computing everything any of its tasks asks for, and the
    index of each task's tag among them (tags are unique within a wave)."""
    merged: list[SweepTask] = []
    index: dict[_Setting, int] = {}
    of_tag: dict[str, int] = {}
    for task in tasks:
        key = _setting(task)
        if key not in index:
            index[key] = len(merged)
            merged.append(task)
        else:
            held = merged[index[key]]
            compute = tuple(item for item in COMPUTE if item in held.compute or item in task.compute)
            columns = tuple(dict.fromkeys((*held.columns, *task.columns)))
            merged[index[key]] = replace(held, compute=compute, columns=columns)
        of_tag[task.tag] = index[key]
    return merged, of_tag


def split(
    tasks: Sequence[SweepTask], results: Sequence[SweepResult], of_tag: Mapping[str, int]
) -> dict[str, SweepResult]:
    """Each task's result by tag: its share of the merged result it was folded into."""
    out: dict[str, SweepResult] = {}
    for task in tasks:
        found = results[of_tag[task.tag]]
        asks = set(task.compute)
        out[task.tag] = SweepResult(
            task=task,
            aggregate=found.aggregate if "aggregate" in asks else None,
            columns={name: found.columns[name] for name in task.columns},
            capacity=found.capacity if "capacity" in asks else None,
            decode_capacity=found.decode_capacity if "decode_capacity" in asks else None,
            timeline=found.timeline if "timeline" in asks else None,
            timelines=found.timelines if "timeline" in asks else {},
        )
    return out
