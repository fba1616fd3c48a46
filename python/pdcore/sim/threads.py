"""Independent simulator runs on threads: `on_threads`.

The native simulator releases the GIL for the whole event loop of a built-in policy
(`pdcore._core.Simulator.run_policy`), so runs on threads proceed in parallel on as many cores as there
are workers, in one process: the workload and the scenario are shared, not copied or pickled as a process
pool would. Each item must be independent of the others (its own simulator and policy object; shared
inputs only read). The results come back in the order of the items whatever finishes first, so the
output is the same as one after another, bit for bit.

Our rule, for memory: at most ``workers`` items run at once and an item is submitted only when a worker
is free, so a caller that reduces each run to a small report inside ``function`` holds at most
``workers`` runs' per-request results at a time. `default_workers` also keeps the runs in flight within
`RUNS_MEMORY_BUDGET_BYTES` at `RUN_BYTES_PER_REQUEST` each: a run of 1,000,000 requests holds about
330 MB while it runs (the simulator keeps only the requests in flight, in the cloud and on the devices,
but every request's results), so two at once take a comparison to about 850 MiB (measured: 850 MiB
against 541 MiB one after another); runs of up to about 1,200,000 requests go two at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from pdcore.exceptions import InvalidInputError

__all__ = ["RUNS_MEMORY_BUDGET_BYTES", "RUN_BYTES_PER_REQUEST", "default_workers", "on_threads"]

RUN_BYTES_PER_REQUEST = 330
"""Memory a simulator run holds per request while it runs: its results (about 220 B) and the allocator's
pools of a thread of its own; the state of a request in flight, on its device and in the cloud, is
dropped when it ends (measured on 1,000,000 requests: two runs at once held 309 MiB more than one)."""

RUNS_MEMORY_BUDGET_BYTES = 768 * 1024**2
"""Memory the runs in flight may hold together (ours): a comparison's 1 GB goal less the workload and
the reports."""

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


def default_workers(items: int, requests: int | None = None) -> int:
    """One worker per CPU, at most one per item, and, for runs of ``requests`` requests each, no more than
    `RUNS_MEMORY_BUDGET_BYTES` holds (module docstring); at least one."""
    workers = min(os.cpu_count() or 1, items)
    if requests is not None and requests > 0:
        workers = min(workers, RUNS_MEMORY_BUDGET_BYTES // (requests * RUN_BYTES_PER_REQUEST))
    return max(1, workers)


def on_threads(
    function: Callable[[_Item], _Result],
    items: Sequence[_Item],
    *,
    workers: int | None = None,
    started: Callable[[_Item], None] | None = None,
    finished: Callable[[_Item], None] | None = None,
    order: Sequence[int] | None = None,
) -> list[_Result]:
    """``function`` of every item, at most ``workers`` at once, in the order of ``items``.

    Args:
        function: Called on a worker thread with one item.
        items: Independent inputs.
        workers: Items run at once; None: `default_workers` (1: one after another).
        started: Called on the calling thread with each item as it is submitted.
        finished: Called on the calling thread with each item as it ends.
        order: The indices of ``items`` in the order they start (the longest first keeps every worker busy
            to the end); None: as given. The results keep the order of ``items`` either way.

    Raises:
        InvalidInputError: ``workers`` is not a whole number of at least 1, or ``order`` is not an order of
            the items' indices; or what ``function`` raises (the first error, after the items under way
            have ended).
    """
    if workers is None:
        workers = default_workers(len(items))
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInputError(f"workers = {workers!r}; fix: pass a whole number of at least 1, or omit it")
    if order is not None and sorted(order) != list(range(len(items))):
        last = len(items) - 1
        raise InvalidInputError(
            f"order = {list(order)!r} for {len(items)} items; fix: list each index from 0 to {last} once"
        )
    results: list[_Result | None] = [None] * len(items)
    queued = iter(range(len(items)) if order is None else order)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pdcore-run") as pool:
        pending: dict[Future[_Result], int] = {}
        while True:
            while len(pending) < workers and (index := next(queued, None)) is not None:
                if started is not None:
                    started(items[index])
                pending[pool.submit(function, items[index])] = index
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                index = pending.pop(future)
                results[index] = future.result()
                if finished is not None:
                    finished(items[index])
    return [result for result in results if result is not None]
