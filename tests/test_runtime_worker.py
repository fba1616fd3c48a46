"""The device engine in a worker process: calls cross the pipe, every way of dying is one clear error."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from pdcore.exceptions import InvalidStateError
from pdcore.runtime.testing import FakeEngine
from pdcore.runtime.worker import REBUILD_PORTABLE, DeviceFailedError, EngineSpec, EngineWorker

FAKE = "pdcore.runtime.testing:FakeEngine"


class FaultyEngine(FakeEngine):
    """A fake engine that crashes (a real SIGSEGV) or hangs on its ``fault_at``-th eval call."""

    def __init__(self, answer: str, *, fault: str, fault_at: int, **kwargs: float) -> None:
        super().__init__(answer, **kwargs)
        self.fault = fault
        self.fault_at = fault_at

    def eval(self, tokens: list[int]) -> None:  # type: ignore[override]
        if len(self.calls) + 1 >= self.fault_at:
            if self.fault == "crash":
                os.kill(os.getpid(), signal.SIGSEGV)
            time.sleep(3600)
        super().eval(tokens)


def _spec(**kwargs: object) -> EngineSpec:
    return EngineSpec(FAKE, {"answer": "Paris is the capital.", "decode_s": 0.0, **kwargs}, label="fake")


@pytest.fixture
def worker() -> Iterator[EngineWorker]:
    engine = EngineWorker(_spec())
    yield engine
    engine.close()


def test_calls_cross_the_pipe_and_answer_as_the_engine_does(worker: EngineWorker) -> None:
    local = FakeEngine("Paris is the capital.", decode_s=0.0)
    prompt = worker.tokenize("Capital?", prompt=True)
    assert prompt == local.tokenize("Capital?", prompt=True)
    worker.reset()
    worker.eval(prompt)
    text = b""
    while True:
        token = worker.greedy()
        if worker.is_eog(token):
            break
        text += worker.token_bytes(token)
        worker.eval([token])
    assert text == b"Paris is the capital."
    assert worker.n_ctx == local.n_ctx
    assert worker.alive


def test_an_engine_error_travels_back_and_the_worker_stays() -> None:
    worker = EngineWorker(_spec(n_ctx=8))
    try:
        worker.reset()
        # the fake engine has no context check: the worker's own refusal is for unknown methods
        with pytest.raises(Exception, match="not one of"):
            worker.call("close")
        assert worker.alive
    finally:
        worker.close()


def test_sigkill_mid_answer_is_a_clear_failure_and_leaves_no_process(worker: EngineWorker) -> None:
    pid = worker.pid
    assert pid is not None
    worker.eval(worker.tokenize("Capital?", prompt=True))
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(DeviceFailedError, match=r"killed by signal 9 \(SIGKILL\) while greedy") as caught:
        worker.greedy()
    assert caught.value.cause == "killed by signal 9 (SIGKILL)"
    assert "fresh worker" in str(caught.value)
    # failed for good: the next call says so at once, and the child is reaped
    with pytest.raises(DeviceFailedError):
        worker.reset()
    assert not worker.alive
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_crash_at_start_names_the_portable_build() -> None:
    spec = EngineSpec(
        f"{__name__}:FaultyEngine",
        {"answer": "x", "fault": "crash", "fault_at": 1},
        label="model.gguf",
    )
    with pytest.raises(
        DeviceFailedError, match=r"model\.gguf killed by signal 11 \(SIGSEGV\) while starting"
    ) as e:
        EngineWorker(spec)
    assert REBUILD_PORTABLE in str(e.value)


def test_a_hung_engine_is_killed_at_its_deadline() -> None:
    spec = EngineSpec(
        f"{__name__}:FaultyEngine", {"answer": "x", "fault": "hang", "fault_at": 3}, label="fake"
    )
    worker = EngineWorker(spec)  # the probe's evals are calls 1 and 2
    pid = worker.pid
    assert pid is not None
    started = time.monotonic()
    with pytest.raises(
        DeviceFailedError, match=r"fake hung: silent for \d+ s while eval \(deadline 0\.5 s\)"
    ):
        worker.call("eval", [1, 2], deadline_s=0.5)
    assert time.monotonic() - started < 10
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_missing_model_or_factory_fails_at_start_with_the_cause() -> None:
    with pytest.raises(DeviceFailedError, match=r"could not start: InvalidInputError: engine factory"):
        EngineWorker(EngineSpec("no.such.module:Engine"))
    with pytest.raises(DeviceFailedError, match=r"could not start: .*(does not exist|llama-cpp-python)"):
        EngineWorker(EngineSpec.llama("/no/such/model.gguf"))


def test_an_invalid_state_from_the_engine_keeps_its_type() -> None:
    spec = EngineSpec(f"{__name__}:StrictEngine", {"answer": "x"}, label="fake")
    worker = EngineWorker(spec)
    try:
        with pytest.raises(InvalidStateError, match="n_ctx"):
            worker.eval([1] * 100)
        assert worker.alive
    finally:
        worker.close()


class StrictEngine(FakeEngine):
    """A fake engine with a 64-token context that refuses to overflow it, as `LlamaEngine` does."""

    def eval(self, tokens: list[int]) -> None:  # type: ignore[override]
        if len(self.context) + len(tokens) > 64:
            raise InvalidStateError("the device context would overflow n_ctx")
        super().eval(tokens)
