"""The device engine in a worker process: a fault in the model never takes the answer with it.

A native engine (llama.cpp) can die in ways Python cannot catch: a segmentation fault (an instruction the
host does not grant, such as AMX under some VMs), the OS's out-of-memory killer, a corrupt model file, a
phone's OS killing the app's model. In the runtime's process that would end the answer, although the
cloud could finish it. So `EngineWorker` runs the engine in a child process and is itself a `DeviceEngine`
(`pdcore.runtime.device`): every call crosses a pipe as one message and its answer comes back. The child
is a fresh interpreter that gets the parent's ``sys.path`` and the `EngineSpec` over an inherited socket
(unlike multiprocessing's ``spawn``, it never runs the parent's main script again).

The protocol (ours): the parent sends ``(method, args, kwargs)`` for one of `METHODS`; the child answers
``("ok", value)`` or ``("error", kind, message)`` for an exception the engine raised (re-raised in the
parent as `pdcore.exceptions.InvalidInputError` / `InvalidStateError` when it is one, else as
`DeviceFailedError`). At start the child builds the engine from an `EngineSpec` (a picklable recipe, so
the model is opened in the child) and runs a probe: it evaluates a short prompt and decodes `PROBE_TOKENS`
tokens, so a model that cannot load or decode on this host is found before any request depends on it;
only then does it answer ``("ready", n_ctx, facts)``.

A failure is final for the worker and always a `DeviceFailedError` naming the cause and the fix:

- the child exits or is killed (the pipe closes): its exit status or signal; for a crash in native code
  (SIGSEGV, SIGILL, SIGBUS, SIGABRT) the fix is the portable build of llama.cpp (`REBUILD_PORTABLE`);
- a call takes longer than its deadline (``deadline_s`` of the call, else the worker's default): the child
  is killed, and the error says how long it was silent;
- the engine cannot be built or fails its probe: the engine's own message.

A child that dies between calls (killed while idle) is found without a call by `check`. `DeviceFailedError`
lives in `pdcore.exceptions` and is re-exported here. Nothing leaks: `close` asks the child to exit and kills
it if it does not within a grace period, a finalizer does the same if the worker is dropped or the interpreter
exits, and the child exits by itself when the parent's end of the pipe closes (the parent died).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from pdcore.exceptions import DeviceFailedError, InvalidInputError, InvalidStateError
from pdcore.runtime.engine_spec import EngineSpec

__all__ = [
    "DEFAULT_CALL_DEADLINE_S",
    "DEFAULT_START_DEADLINE_S",
    "METHODS",
    "PROBE_TOKENS",
    "REBUILD_PORTABLE",
    "DeviceFailedError",
    "EngineSpec",
    "EngineWorker",
]

METHODS = frozenset(
    {"tokenize", "reset", "eval", "greedy", "is_eog", "token_bytes", "save_state", "load_state", "drop_state"}
)
"""The engine methods a parent may call (the `DeviceEngine` protocol, less the ``n_ctx`` property, which
the ready message carries). The saved states of the conversation cache stay in the child (only their keys
cross the pipe) and die with it."""

PROBE_TOKENS = 3
"""Tokens the probe decodes at start: enough to run the model's decode path, which is where a native build
for the wrong CPU crashes, at a cost of a few tens of milliseconds."""

DEFAULT_START_DEADLINE_S = 120.0
"""Seconds a worker may take to load its model and pass its probe."""

DEFAULT_CALL_DEADLINE_S = 60.0
"""Seconds one call may take when its caller gives no deadline of its own (a prefill chunk of a slow
device takes seconds; a silent minute is a hang)."""

_CLOSE_GRACE_S = 2.0

REBUILD_PORTABLE = (
    'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --force-reinstall --no-cache-dir --no-deps '
    "llama-cpp-python==0.3.36"
)
"""The fix for a native engine that crashes on this CPU: llama.cpp built for any x86-64 host."""

_CRASHES = {signal.SIGSEGV, signal.SIGILL, signal.SIGBUS, signal.SIGABRT, signal.SIGFPE}


def _probe(engine: Any) -> None:
    engine.reset()
    engine.eval(engine.tokenize("Hello", prompt=True))
    for _ in range(PROBE_TOKENS):
        token = engine.greedy()
        if engine.is_eog(token):
            break
        engine.eval([token])
    engine.reset()


def _facts(engine: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for name in ("n_threads", "metadata"):  # the metadata carries the chat template
        value = getattr(engine, name, None)
        if value is not None:
            facts[name] = value
    for name in ("kv_bytes_per_token", "describe"):
        method = getattr(engine, name, None)
        if callable(method):
            with contextlib.suppress(Exception):
                facts[name] = method()
    return facts


def _serve(conn: Connection, spec: EngineSpec) -> None:
    """The worker's main loop (in the child)."""
    # Ctrl-C in a terminal reaches the whole process group: the parent decides, the worker keeps serving
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        engine = spec.build()
        _probe(engine)
        conn.send(("ready", int(engine.n_ctx), _facts(engine)))
    except BaseException as exc:  # every start failure is reported, then the worker exits
        conn.send(("failed", type(exc).__name__, str(exc) or traceback.format_exc(limit=3)))
        return
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if message is None:
            closer = getattr(engine, "close", None)
            if callable(closer):
                closer()
            return
        method, args, kwargs = message
        try:
            value = getattr(engine, method)(*args, **kwargs)
            conn.send(("ok", value))
        except Exception as exc:  # the engine's own errors travel back; the worker stays
            conn.send(("error", type(exc).__name__, str(exc)))


_CHILD = "from pdcore.runtime.worker import _child; _child()"


def _child() -> None:
    """The child's entry (``python -c _CHILD FD``): the parent's ``sys.path``, then the spec, then serve."""
    conn = Connection(int(sys.argv[1]))
    sys.path[:] = conn.recv()
    _serve(conn, conn.recv())


def _launch(spec: EngineSpec) -> tuple[subprocess.Popen[bytes], Connection]:
    """Starts the child with one end of a socket pair and sends it what it needs (`_child`)."""
    ours, theirs = socket.socketpair()
    env = dict(os.environ)
    # the child imports the pdcore this process runs, wherever that is
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([root, *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    try:
        fd = theirs.fileno()
        process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(fd)], pass_fds=(fd,), env=env, stdin=subprocess.DEVNULL
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    conn = Connection(ours.detach())
    conn.send(list(sys.path))
    conn.send(spec)
    return process, conn


def _wait(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(_CLOSE_GRACE_S)


def _stop(process: subprocess.Popen[bytes], conn: Connection) -> None:
    # finalizer and close: ask, then insist; never leave a child behind
    with contextlib.suppress(OSError, ValueError):
        conn.send(None)
    _wait(process)
    if process.poll() is None:
        process.kill()
        _wait(process)
    with contextlib.suppress(OSError):
        conn.close()


class EngineWorker:
    """A `DeviceEngine` whose model runs in a child process (module docstring).

    Args:
        spec: How the child builds the engine.
        start_deadline_s: Seconds to load and pass the probe.
        call_deadline_s: Seconds one call may take unless the call gives its own.

    Raises:
        DeviceFailedError: The engine could not be built, failed its probe, or the child died or hung
            while starting; the message names the cause and the fix.
    """

    def __init__(
        self,
        spec: EngineSpec,
        *,
        start_deadline_s: float = DEFAULT_START_DEADLINE_S,
        call_deadline_s: float = DEFAULT_CALL_DEADLINE_S,
    ) -> None:
        self.spec = spec
        self.call_deadline_s = call_deadline_s
        self._lock = threading.Lock()
        self._failure: DeviceFailedError | None = None
        self._process, self._conn = _launch(spec)
        self._finalizer = weakref.finalize(self, _stop, self._process, self._conn)
        reply = self._receive(start_deadline_s, "starting")
        if reply[0] == "failed":
            self._fail(
                f"{spec.label} could not start: {reply[1]}: {reply[2]}",
                cause=f"{reply[1]} at start",
                fix=None
                if "fix:" in reply[2]
                else "check the model file and the device extra (pip install 'pdcore[device]')",
            )
        _, self._n_ctx, self.facts = reply

    @property
    def pid(self) -> int | None:
        """The child's process id."""
        return self._process.pid

    @property
    def alive(self) -> bool:
        """Whether the child runs and has not failed."""
        return self._failure is None and self._process.poll() is None

    @property
    def n_ctx(self) -> int:
        return int(self._n_ctx)

    def call(self, method: str, *args: Any, deadline_s: float | None = None, **kwargs: Any) -> Any:
        """Calls ``method`` of the engine in the child and returns its value.

        Raises:
            DeviceFailedError: The worker died, hung past the deadline, or had failed before.
            InvalidInputError, InvalidStateError: The engine refused the call (the worker stays).
        """
        if method not in METHODS:
            raise InvalidInputError(f"engine method {method!r} is not one of {sorted(METHODS)}")
        with self._lock:
            if self._failure is not None:
                raise self._failure
            try:
                self._conn.send((method, args, kwargs))
            except (OSError, ValueError):
                self._died(f"calling {method}")
            reply = self._receive(self.call_deadline_s if deadline_s is None else deadline_s, method)
        if reply[0] == "ok":
            return reply[1]
        kind, message = reply[1], reply[2]
        if kind == InvalidInputError.__name__:
            raise InvalidInputError(message)
        if kind == InvalidStateError.__name__:
            raise InvalidStateError(message)
        raise DeviceFailedError(f"{self.spec.label}: {kind}: {message}", cause=kind)

    def check(self) -> DeviceFailedError | None:
        """The worker's failure, if it has failed: a child found dead since its last call (killed while
        idle) is reaped and named here, without a call. A worker busy with a call is not checked (the call
        finds out)."""
        if self._failure is None and self._lock.acquire(blocking=False):
            try:
                if self._process.poll() is not None:
                    with contextlib.suppress(DeviceFailedError):
                        self._died("idle")
            finally:
                self._lock.release()
        return self._failure

    def tokenize(self, text: str, *, prompt: bool) -> list[int]:
        return list(self.call("tokenize", text, prompt=prompt))

    def reset(self) -> None:
        self.call("reset")

    def eval(self, tokens: Sequence[int], *, deadline_s: float | None = None) -> None:
        """Evaluates ``tokens`` in the child, killed if it takes longer than ``deadline_s`` (default: the
        worker's ``call_deadline_s``)."""
        self.call("eval", list(tokens), deadline_s=deadline_s)

    def greedy(self) -> int:
        return int(self.call("greedy"))

    def is_eog(self, token: int) -> bool:
        return bool(self.call("is_eog", token))

    def token_bytes(self, token: int) -> bytes:
        return bytes(self.call("token_bytes", token))

    def save_state(self, key: int) -> None:
        self.call("save_state", key)

    def load_state(self, key: int, keep_tokens: int) -> None:
        self.call("load_state", key, keep_tokens)

    def drop_state(self, key: int) -> None:
        self.call("drop_state", key)

    def kill(self) -> None:
        """Kills the child at once (SIGKILL); the worker is failed from then on."""
        if self._process.poll() is None:
            self._process.kill()
        _wait(self._process)

    def close(self) -> None:
        """Stops the child (asks, then kills after a grace period) and frees the pipe."""
        self._finalizer()

    def _receive(self, deadline_s: float, doing: str) -> Any:
        started = time.monotonic()
        while True:
            try:
                if self._conn.poll(min(0.5, max(0.0, deadline_s - (time.monotonic() - started)))):
                    return self._conn.recv()
            except (EOFError, OSError):
                self._died(doing)
            if self._process.poll() is not None and not self._conn.poll(0):
                self._died(doing)
            silent = time.monotonic() - started
            if silent >= deadline_s:
                self.kill()
                self._fail(
                    f"{self.spec.label} hung: silent for {silent:.0f} s while {doing} (deadline "
                    f"{deadline_s:g} s); the worker was killed",
                    cause=f"silent for {silent:.0f} s",
                    fix="check the machine's load and memory, or give the device profile the real speed",
                )

    def _died(self, doing: str) -> None:
        _wait(self._process)
        code = self._process.returncode
        if code is not None and code < 0:
            number = -code
            try:
                name = signal.Signals(number).name
            except ValueError:
                name = "unknown signal"
            cause = f"killed by signal {number} ({name})"
            crashed = number in _CRASHES
        else:
            cause, crashed = f"exited with status {code}", False
        fix = (
            f"the engine crashed in native code; if this CPU lacks an instruction the build assumed, "
            f"rebuild it portable: {REBUILD_PORTABLE}"
            if crashed
            else "the OS may have ended it (out of memory?); the next request starts a fresh worker"
        )
        self._fail(f"{self.spec.label} {cause} while {doing}", cause=cause, fix=fix)

    def _fail(self, message: str, *, cause: str, fix: str | None) -> None:
        """Fails the worker for good (its child reaped) and raises; ``fix``: unless the message has one."""
        self._failure = DeviceFailedError(message if fix is None else f"{message}; fix: {fix}", cause=cause)
        self._finalizer()
        raise self._failure
