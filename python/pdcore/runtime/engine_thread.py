"""A device engine behind its own worker thread: built there, replaced after a failure, checked between
requests, closed.

Every call into the engine runs on the one worker thread of `EngineThread`, so the asyncio event loop
never blocks on the model (llama.cpp releases the GIL while it computes; an engine in a worker process
waits on its pipe). The engine is built on that thread too, from a factory: a model's state then lives on
the thread that uses it.

A failure (`DeviceFailedError`: the engine's worker process crashed, was killed, hung or could not start)
is final for that engine: it stays the thread's `EngineThread.failure` until `EngineThread.restart` builds
a fresh engine in the background, on the worker thread, so calls made meanwhile wait for it.
`EngineThread.health` finds, between requests and without a call, an engine whose worker died since the
last call (killed while idle).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from pdcore.exceptions import DeviceFailedError, InvalidStateError
from pdcore.limits import check_int
from pdcore.runtime.engine import DeviceEngine
from pdcore.runtime.worker import EngineWorker

__all__ = ["DEFAULT_WORKER_NICE", "EngineThread"]

T = TypeVar("T")

DEFAULT_WORKER_NICE = 19
"""The worker thread runs this much nicer than the event loop (Linux only: there ``nice`` is per thread, and
llama.cpp's compute threads, or a worker process started from the thread, inherit it). On a busy machine
the display loop then gets the CPU when a token is due instead of waiting behind the model; the model loses
little, since the loop is idle most of the time.

Our rule: the lowest priority (19). The model is the device's background work and the loop its interactive
part, so the model yields to every ordinary thread; where it loses the CPU for long, the runtime's own rules
take over (a device that falls behind has the cloud send more tokens, `pdcore.runtime.continuation`). Measured
with ``benches/python/serve_bench.py --part ttft`` (cloud, device, server and client on two cores), the
server's first-token overhead over a raw client of the cloud was 4.48 ms median and 9.90 ms p90 at 19
against 4.68 and 14.87 ms at the earlier 5 (20 rounds each, back to back), and 4.75 and 9.49 ms at 19 over
60 rounds; 120 hand-offs through the server kept their p99 gap within 50 ms (README, "Serving P/D-Device
to any OpenAI client")."""


class EngineThread:
    """A device engine and the worker thread every call into it runs on (module docstring).

    Args:
        factory: Builds the engine; called on the worker thread, once, and again by `restart`.
        nice: On Linux, how much lower the worker thread's scheduling priority is than the event loop's,
            a whole number from 0 (equal) to 19 (`DEFAULT_WORKER_NICE`).
        name: A label for the thread.

    Raises:
        InvalidInputError: ``nice`` is not a whole number from 0 to 19 (checked here, before the thread
            starts: a bad value would otherwise break its pool with no word of why).
    """

    def __init__(self, factory: Callable[[], DeviceEngine], *, nice: int, name: str) -> None:
        nice = check_int(nice, "worker_nice", minimum=0, maximum=19)
        self.failure: DeviceFailedError | None = None
        """The engine's failure, until `restart` replaces it."""
        self._failed_while = "starting"
        self._factory = factory
        self._engine: DeviceEngine | None = None
        self._closed = False
        self._executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix=f"pdcore-{name}",
            initializer=_lower_priority,
            initargs=(nice,),
        )
        self._last: Future[None] | None = None
        self.submit(self._build).result()

    @property
    def engine(self) -> DeviceEngine:
        """The engine in use.

        Raises:
            DeviceFailedError: It failed and has not been replaced.
            InvalidStateError: A fresh one is still being built (`restart`).
        """
        if self._engine is None:
            if self.failure is not None:
                raise self.failure
            raise InvalidStateError("the device's engine is still starting; fix: await a device call first")
        return self._engine

    @property
    def idle(self) -> bool:
        """Whether the worker thread has no job (a call or a `restart`) running or queued."""
        return self._last is None or self._last.done()

    @property
    def ready(self) -> bool:
        """Whether the engine runs and the worker thread is idle."""
        return self.idle and self._engine is not None

    def health(self) -> tuple[str, DeviceFailedError] | None:
        """Between requests: the engine's failure not yet replaced and when it happened (``"starting"``:
        it could not start; ``"idle"``: its worker died since the last call; ``"answering"``: a call
        failed), or ``None``. A busy worker thread is not checked (its calls find out)."""
        if not self.idle:
            return None
        if self.failure is None and isinstance(self._engine, EngineWorker):
            error = self._engine.check()
            if error is not None:
                self._fail(error, "idle")
        return None if self.failure is None else (self._failed_while, self.failure)

    def restart(self) -> None:
        """Replaces the engine with a fresh one, built in the background on the worker thread; calls made
        meanwhile wait for it. A fresh one that cannot start is the new `failure`."""
        if self._closed:
            return
        old, self._engine, self.failure = self._engine, None, None
        closer = getattr(old, "close", None)
        if callable(closer):
            self.submit(closer)
        self.submit(self._build)

    def _build(self) -> None:
        if self._closed:
            return
        try:
            self._engine = self._factory()
        except DeviceFailedError as error:
            self.failure, self._failed_while = error, "starting"

    def submit(self, job: Callable[[], T]) -> Future[T]:
        """Queues ``job`` on the worker thread."""
        future = self._executor.submit(job)
        self._last = future  # type: ignore[assignment]  # reason: only its completion is read
        return future

    async def run(self, job: Callable[[], T]) -> T:
        """Runs ``job`` on the worker thread and awaits its result.

        Raises:
            DeviceFailedError: The engine failed (it stays failed until `restart`).
        """
        try:
            return await asyncio.wrap_future(self.submit(job))
        except DeviceFailedError as error:
            if self.failure is None:
                self._fail(error, "answering")
            raise

    def _fail(self, error: DeviceFailedError, phase: str) -> None:
        """Keeps ``error`` as the failure and lets the engine go (a worker process that reported an engine
        error is still running: it is stopped)."""
        self.failure, self._failed_while = error, phase
        engine, self._engine = self._engine, None
        if isinstance(engine, EngineWorker):
            engine.close()

    def close(self) -> None:
        """Closes the engine and stops the worker thread. A worker process is stopped at once, even while
        a call waits on it; an engine in this process is closed after the current job."""
        self._closed = True
        if isinstance(self._engine, EngineWorker):
            self._engine.close()
        self._executor.submit(self._close_engine).result()
        self._executor.shutdown(wait=True)

    def _close_engine(self) -> None:
        closer = getattr(self._engine, "close", None)
        if callable(closer):
            closer()


def _lower_priority(nice: int) -> None:
    if nice > 0 and sys.platform == "linux":
        with contextlib.suppress(OSError):
            os.nice(nice)
