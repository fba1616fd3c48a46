"""Executors: one function over independent items, in turn, on a process pool, or on a Ray cluster.

Every executor calls the same function on the same items and returns the results in the order of the
items, whichever finishes first; `pdcore.sim.sweep.run_sweep` runs its tasks through `run_all`.

- ``"serial"``: in this process, one after another.
- ``"process"``: a `concurrent.futures.ProcessPoolExecutor` with the ``spawn`` start method (workers
  import pdcore afresh, so nothing depends on state forked from the caller).
- ``"ray"``: the function as Ray remote tasks (one CPU each), on the cluster at ``ray_address`` or on a
  local instance started for the run; a session already open (``ray.init`` called before) is used as is.
  Needs the optional extra ``pdcore[ray]``.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, TypeVar

from pdcore.exceptions import InvalidInputError

__all__ = ["EXECUTORS", "Progress", "check_executor", "run_all"]

EXECUTORS = ("serial", "process", "ray")
"""The executors `run_all` knows."""

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")

Progress = Callable[[int, int, Any], None]
"""Called after each finished item with (items done, items in all, the item just finished)."""

_RAY_FIX = "fix: `pip install 'pdcore[ray]'`, or use --executor process"


def check_executor(executor: str) -> None:
    """Refuses an executor `run_all` does not know."""
    if executor not in EXECUTORS:
        raise InvalidInputError(f"--executor {executor!r} is unknown; fix: use one of {', '.join(EXECUTORS)}")


def _worker_count(workers: int | None, tasks: int) -> int:
    if workers is None:
        return max(1, min(os.cpu_count() or 1, tasks))
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInputError(
            f"--workers = {workers!r}; fix: pass a whole number of at least 1, or omit it"
        )
    return min(workers, max(tasks, 1))


def _run_serial(
    function: Callable[[_Item], _Result], items: Sequence[_Item], progress: Progress | None
) -> list[_Result]:
    results: list[_Result] = []
    for item in items:
        results.append(function(item))
        if progress is not None:
            progress(len(results), len(items), item)
    return results


def _run_process(
    function: Callable[[_Item], _Result], items: Sequence[_Item], workers: int, progress: Progress | None
) -> list[_Result]:
    results: list[_Result | None] = [None] * len(items)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: dict[Future[_Result], int] = {
            pool.submit(function, item): index for index, item in enumerate(items)
        }
        done = 0
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    index = pending.pop(future)
                    results[index] = future.result()
                    done += 1
                    if progress is not None:
                        progress(done, len(items), items[index])
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return [result for result in results if result is not None]


def _import_ray() -> Any:
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise InvalidInputError(f"--executor ray needs Ray, which is not installed; {_RAY_FIX}") from None


def _run_ray(
    function: Callable[[_Item], _Result],
    items: Sequence[_Item],
    workers: int | None,
    progress: Progress | None,
    address: str | None,
) -> list[_Result]:
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        options: dict[str, Any] = {"address": address, "log_to_driver": False}
        if address is None:
            options["include_dashboard"] = False
        ray.init(**options)
    try:
        remote = ray.remote(num_cpus=1)(function)
        in_flight = len(items) if workers is None else _worker_count(workers, len(items))
        results: list[_Result | None] = [None] * len(items)
        pending: dict[Any, int] = {}
        queued = iter(enumerate(items))
        done = 0
        while done < len(items):
            while len(pending) < in_flight:
                item = next(queued, None)
                if item is None:
                    break
                pending[remote.remote(item[1])] = item[0]
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                index = pending.pop(ref)
                results[index] = ray.get(ref)
                done += 1
                if progress is not None:
                    progress(done, len(items), items[index])
    finally:
        if started:
            ray.shutdown()
    return [result for result in results if result is not None]


def run_all(
    function: Callable[[_Item], _Result],
    items: Sequence[_Item],
    *,
    executor: str = "process",
    workers: int | None = None,
    progress: Progress | None = None,
    ray_address: str | None = None,
) -> list[_Result]:
    """``function`` of every item, in the order of ``items`` (module docstring).

    Args:
        function: A picklable function (a module-level one) for the process and Ray executors.
        items: The inputs; they are independent.
        executor: ``"serial"``, ``"process"`` or ``"ray"``.
        workers: Processes of the pool, or Ray tasks in flight at once; None: the CPU count (process)
            or no limit (Ray).
        progress: Called after each finished item.
        ray_address: The Ray cluster to connect to; None starts a local instance, unless a Ray session
            is already open.

    Raises:
        InvalidInputError: An unknown executor, a bad worker count, Ray not installed, or what
            ``function`` raises.
    """
    check_executor(executor)
    if executor == "ray":
        _import_ray()
        if workers is not None:
            _worker_count(workers, len(items))
        return _run_ray(function, items, workers, progress, ray_address) if items else []
    count = _worker_count(workers, len(items))
    if not items:
        return []
    if executor == "serial":
        return _run_serial(function, items, progress)
    return _run_process(function, items, count, progress)
