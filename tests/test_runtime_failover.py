"""A device failure never costs the answer: the scripted device (`FakeEngine`) runs in a worker process,
is killed (SIGKILL), crashes or hangs in each phase of a request, and the scripted cloud (`FakeCloud`)
continues the answer from the text so far.

Every answer must equal the script's text exactly (the cloud's word pieces and the device's UTF-8 bytes
meet at any character), the failure must be noticed once and recorded in the timeline, and no worker
process may outlive the device.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

pytest.importorskip("httpx", reason="the live runtime needs the `device` extra (httpx, httpx-sse)")
pytest.importorskip("httpx_sse", reason="the live runtime needs the `device` extra (httpx, httpx-sse)")

from pdcore.exceptions import DeviceFailedError, InvalidInputError
from pdcore.profiles.device import DeviceProfile
from pdcore.runtime import CloudClient, Device, Notice, Piece, Session, Timeline
from pdcore.runtime.device import CALL_DEADLINE_FACTOR, CALL_DEADLINE_FLOOR_S
from pdcore.runtime.testing import FAKE, FAULTY, CloudScript, FakeCloud, FakeEngine, unused_url, word_pieces
from pdcore.runtime.worker import DEFAULT_CALL_DEADLINE_S, REBUILD_PORTABLE, EngineSpec, EngineWorker

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="counts children in /proc")

T = TypeVar("T")

ANSWER = (
    "Paris is the capital of France. It is known for the Eiffel Tower, the café terraces and the "
    "Seine — très belle! 🗼 Visit in spring."
)
PIECES = word_pieces(ANSWER)
PROMPT = "Tell me about Paris. " * 15
COSTS: dict[str, float] = {"prefill_token_s": 0.004, "call_s": 0.001, "decode_s": 0.02}
PROBE_EVALS = 4
"""Evaluations of the worker's start probe with this answer (the prompt, then three decoded tokens)."""


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def profile() -> DeviceProfile:
    return FakeEngine(ANSWER, **COSTS).profile()  # type: ignore[arg-type]  # reason: cost options


def worker_device(factory: str = FAKE, **options: Any) -> Device:
    """The scripted device in a worker process."""
    spec = EngineSpec(factory, {"answer": ANSWER, **COSTS, **options.pop("engine", {})}, label="fake.gguf")
    return Device.in_worker(spec, profile=profile(), **options)


def worker_pid(device: Device) -> int:
    engine = device.engine
    assert isinstance(engine, EngineWorker)
    assert engine.pid is not None
    return engine.pid


def worker_children() -> list[int]:
    """This process's children that run a device worker or are left unreaped (zombies), from ``/proc``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == os.getpid() and (state == "Z" or b"pdcore.runtime.worker" in cmdline):
            found.append(int(entry.name))
    return found


def reaped(pids: list[int]) -> bool:
    """Whether every worker seen is gone (reaped, not a zombie) and no other worker child is left."""
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        return False
    return not worker_children()


Trigger = Callable[[Timeline, Piece], bool]


async def answer(
    device: Device,
    url: str,
    *,
    kill_when: Trigger | None = None,
    notices: list[Notice] | None = None,
    **options: Any,
) -> tuple[Session, list[int]]:
    """One answer; ``kill_when`` decides, after each piece shown, whether to SIGKILL the worker now.
    Returns the session (its timeline) and the worker pids seen."""
    cloud = CloudClient(url, read_timeout=5.0)
    session = Session(
        cloud=cloud,
        device=device,
        device_profile=profile(),
        max_tpot_s=0.05,
        max_tokens=400,
        on_notice=notices.append if notices is not None else None,
        **{"k": 10} | options,
    )
    pids = [worker_pid(device)] if device.ready else []
    killed = False
    try:
        async for piece in session.stream(PROMPT):
            assert session.timeline is not None
            if kill_when is not None and not killed and kill_when(session.timeline, piece):
                os.kill(pids[0], signal.SIGKILL)
                killed = True
    finally:
        await cloud.aclose()
    assert kill_when is None or killed, "the worker was never killed"
    return session, pids


def prefilling(timeline: Timeline, _: Piece) -> bool:
    return timeline.prompt_tokens is not None and timeline.prompt_prefilled_s is None


def decoding(_: Timeline, piece: Piece) -> bool:
    return piece.source == "device"


def failed_once(timeline: Timeline, notices: list[Notice], phase: str) -> tuple[float, str, str, int]:
    # a device that went silent before it failed may first have left the display dry, and the cloud was
    # then asked for the rest (`device-late`, the stall rule of `pdcore.runtime.continuation`)
    kinds = [notice.kind for notice in notices]
    assert [kind for kind in kinds if kind != "device-late"] == ["device-failed"], notices
    assert kinds.count("device-late") <= 1
    assert kinds.index("device-failed") == len(kinds) - 1, "no stall continuation after the failure"
    assert timeline.notices == notices
    ((at, seen, cause, position),) = timeline.device_failures
    assert seen == phase
    return at, seen, cause, position


def failure(notices: list[Notice]) -> Notice:
    """The one `device-failed` notice."""
    (found,) = [notice for notice in notices if notice.kind == "device-failed"]
    return found


def assert_seamless(timeline: Timeline) -> None:
    """The whole answer, each position once and in order."""
    assert timeline.text == ANSWER
    assert [record.position for record in timeline.tokens] == list(range(len(timeline.tokens)))
    shown = [record.shown_s for record in timeline.tokens]
    assert shown == sorted(shown)


def test_sigkill_while_prefilling_the_cloud_finishes_the_answer() -> None:
    notices: list[Notice] = []
    device = worker_device()
    try:
        with FakeCloud(CloudScript(PIECES, first_delay_s=0.03, gap_s=0.005)) as cloud:
            session, pids = run(answer(device, cloud.url, kill_when=prefilling, notices=notices))
    finally:
        device.close()
    timeline = session.timeline
    assert timeline is not None
    assert_seamless(timeline)
    _, _, cause, position = failed_once(timeline, notices, "prefilling")
    assert cause == "killed by signal 9 (SIGKILL)"
    assert "the cloud continues the answer" in failure(notices).message
    assert {record.source for record in timeline.tokens} == {"cloud"}
    assert timeline.handoff_position is None, "the device never took over"
    continued = cloud.requests[-1].body
    assert continued["prompt"] == PROMPT + "".join(PIECES[:position])
    assert continued["max_tokens"] == 400 - position
    assert reaped(pids)


def test_sigkill_while_decoding_after_the_handoff_the_cloud_continues_mid_word() -> None:
    notices: list[Notice] = []
    device = worker_device()
    try:
        with FakeCloud(CloudScript(PIECES, first_delay_s=0.03, gap_s=0.005)) as cloud:
            session, pids = run(
                answer(device, cloud.url, kill_when=decoding, notices=notices, max_extensions=0)
            )
        # the next request gets a fresh worker, started in the background at the failure
        fresh = run(answer(device, unused_url(), k=0))[0].timeline
        pids.append(worker_pid(device))
    finally:
        device.close()
    timeline = session.timeline
    assert timeline is not None
    assert_seamless(timeline)
    _, _, _, position = failed_once(timeline, notices, "decoding")
    handoff = timeline.handoff_position
    assert handoff is not None
    assert position > handoff, "the continuation starts after the device's own tokens"
    sources = [record.source for record in timeline.tokens]
    assert sources == ["cloud"] * handoff + ["device"] * (position - handoff) + ["cloud"] * (
        len(sources) - position
    )
    seam = "".join(record.text for record in timeline.tokens[:position])
    assert cloud.requests[-1].body["prompt"] == PROMPT + seam
    assert fresh is not None
    assert fresh.text == ANSWER
    assert not fresh.device_failures
    assert pids[1] != pids[0]
    assert reaped(pids)


def test_a_worker_killed_while_idle_is_found_at_the_next_request_and_replaced() -> None:
    notices: list[Notice] = []
    device = worker_device()
    script = CloudScript(PIECES, first_delay_s=0.03, gap_s=0.002)
    try:
        with FakeCloud(script) as cloud:
            first, pids = run(answer(device, cloud.url, max_extensions=0))
            os.kill(pids[0], signal.SIGKILL)
            time.sleep(0.2)
            second, _ = run(answer(device, cloud.url, notices=notices))
            third, _ = run(answer(device, cloud.url, max_extensions=0))
            pids.append(worker_pid(device))
    finally:
        device.close()
    assert first.timeline is not None
    assert first.timeline.handoff_position is not None
    timeline = second.timeline
    assert timeline is not None
    assert_seamless(timeline)
    _, _, cause, position = failed_once(timeline, notices, "idle")
    assert (cause, position) == ("killed by signal 9 (SIGKILL)", 0)
    assert "while idle" in failure(notices).message
    assert timeline.plan == "cloud-only", "a device that has just failed is not planned on"
    assert {record.source for record in timeline.tokens} == {"cloud"}
    assert third.timeline is not None
    assert third.timeline.text == ANSWER
    assert not third.timeline.device_failures
    assert third.timeline.handoff_position is not None, "the fresh worker took over"
    assert pids[1] != pids[0]
    assert reaped(pids)


def test_a_crash_while_appending_names_the_portable_build() -> None:
    notices: list[Notice] = []
    prompt_evals = -(-(len(PROMPT) + 1) // 128)
    device = worker_device(FAULTY, engine={"fault": "crash", "fault_at": PROBE_EVALS + prompt_evals + 1})
    try:
        with FakeCloud(CloudScript(PIECES, first_delay_s=0.03, gap_s=0.005)) as cloud:
            session, pids = run(answer(device, cloud.url, notices=notices, max_extensions=0))
    finally:
        device.close()
    timeline = session.timeline
    assert timeline is not None
    assert_seamless(timeline)
    _, _, cause, _ = failed_once(timeline, notices, "appending")
    assert cause == "killed by signal 11 (SIGSEGV)"
    assert REBUILD_PORTABLE in failure(notices).message
    assert reaped(pids)


def test_a_hung_worker_is_killed_at_its_deadline_and_the_cloud_finishes() -> None:
    notices: list[Notice] = []
    device = worker_device(
        FAULTY,
        engine={"fault": "hang", "fault_at": PROBE_EVALS + 1},
        deadline_factor=2.0,
        deadline_floor_s=0.5,
    )
    deadline = device.call_deadline_s(128, 0)
    assert deadline < 10, "the deadline is priced from the profile, plus the floor"
    try:
        with FakeCloud(CloudScript(PIECES, first_delay_s=0.03, gap_s=0.005)) as cloud:
            session, pids = run(answer(device, cloud.url, notices=notices, max_extensions=0))
    finally:
        device.close()
    timeline = session.timeline
    assert timeline is not None
    assert_seamless(timeline)
    at, _, cause, _ = failed_once(timeline, notices, "prefilling")
    assert cause.startswith("silent for")
    assert deadline <= at < deadline + 5
    assert "hung" in failure(notices).message
    assert reaped(pids)


def test_a_model_that_does_not_exist_leaves_the_answer_to_the_cloud(tmp_path: Path) -> None:
    notices: list[Notice] = []
    device = Device.llama(tmp_path / "missing.gguf")
    assert device.failure is not None, "the device is built; its failure waits for the first request"
    try:
        with FakeCloud(CloudScript(PIECES, first_delay_s=0.03, gap_s=0.002)) as cloud:
            session, _ = run(answer(device, cloud.url, notices=notices))
    finally:
        device.close()
    timeline = session.timeline
    assert timeline is not None
    assert_seamless(timeline)
    _, _, cause, _ = failed_once(timeline, notices, "starting")
    assert cause == "InvalidInputError at start"
    assert "fix:" in failure(notices).message
    assert "does not exist" in failure(notices).message or "llama-cpp-python" in failure(notices).message
    assert timeline.plan == "cloud-only"
    assert reaped([])


def test_with_no_cloud_either_the_error_names_both_causes(tmp_path: Path) -> None:
    device = Device.llama(tmp_path / "missing.gguf")
    try:
        with pytest.raises(DeviceFailedError) as raised:
            run(answer(device, unused_url(), mode="device-only"))
    finally:
        device.close()
    message = str(raised.value)
    assert "the device failed (" in message
    assert "could not start" in message
    assert "the cloud cannot continue the answer (device-only mode has no cloud" in message
    assert reaped([])


def test_a_kill_with_the_cloud_unreachable_is_a_clear_error_and_leaves_no_process() -> None:
    device = worker_device()
    pid = worker_pid(device)
    try:
        with pytest.raises(DeviceFailedError) as raised:
            run(answer(device, unused_url(), kill_when=decoding, max_extensions=0))
        assert device.failure is None, "a fresh worker is starting for the next request"
    finally:
        device.close()
    message = str(raised.value)
    assert "killed by signal 9 (SIGKILL)" in message
    assert "the cloud cannot continue the answer (" in message
    assert reaped([pid])


def test_call_deadlines_are_priced_by_the_profile() -> None:
    device = Device(lambda: FakeEngine(ANSWER))
    try:
        assert device.call_deadline_s(128, 0) == DEFAULT_CALL_DEADLINE_S, "no profile: the worker's default"
        device.profile = profile()
        for tokens, context in ((128, 0), (32, 400), (1, 600)):
            priced = CALL_DEADLINE_FACTOR * device.profile.append_s(context, tokens) + CALL_DEADLINE_FLOOR_S
            assert device.call_deadline_s(tokens, context) == pytest.approx(priced)
        assert device.call_deadline_s(128, 0) > device.call_deadline_s(1, 0) > CALL_DEADLINE_FLOOR_S
    finally:
        device.close()


@pytest.mark.parametrize("nice", ["5", 2.5, -1, 20, None])
def test_a_worker_priority_out_of_range_is_refused_before_the_worker_starts(nice: object) -> None:
    with pytest.raises(InvalidInputError, match=r"worker_nice = .*fix: pass"):
        Device(lambda: FakeEngine(ANSWER), worker_nice=nice)  # type: ignore[arg-type]


def test_the_worker_runs_at_the_priority_asked() -> None:
    if sys.platform != "linux":
        pytest.skip("per-thread nice is Linux's")
    device = Device(lambda: FakeEngine(ANSWER), worker_nice=7)
    try:
        seen = device.host._executor.submit(lambda: os.getpriority(os.PRIO_PROCESS, 0)).result(timeout=10)
        assert seen == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 7)
    finally:
        device.close()
