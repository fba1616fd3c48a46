"""End-to-end runs with the real model: SmolLM2-135M through llama.cpp on the device, and a real
``python -m llama_cpp.server`` as the cloud on a loopback port.

The cloud is ``$PDCORE_CLOUD_URL`` when set (``scripts/ci_live.sh`` starts one), else a server this module
starts on a free port and stops afterwards (the ``model`` and ``cloud_url`` fixtures of
``tests/conftest.py``). Skipped, with the reason, when the ``device`` extra or the model package is missing.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("httpx", reason="LIVE RUNTIME TESTS SKIPPED: pip install 'pdcore[device]'")
pytest.importorskip("httpx_sse", reason="LIVE RUNTIME TESTS SKIPPED: pip install 'pdcore[device]'")

import typer
from typer.testing import CliRunner

from pdcore.cli.runtime import register
from pdcore.profiles import DeviceProfile
from pdcore.runtime import CloudClient, Device, Notice, Piece, Session, Timeline, chatml
from pdcore.runtime.cloud import CloudContextError
from pdcore.runtime.testing import unused_url
from pdcore.runtime.validate import make_prompt
from pdcore.runtime.worker import EngineWorker
from pdcore.slo import within_objective

pytestmark = pytest.mark.realtime

FRANCE = "The capital of France is Paris."
SAMPLING: dict[str, Any] = {}  # greedy, as the device decodes, is the client's default
MAX_TPOT = 0.05
SLACK = 0.015
HANDOFF_AGREEMENT_CHARS = 24
HANDOFF_STALL_S = 0.5
"""A hand-off gap this long is a display that waited for something (a deadline, a lost wake-up), not a
device a little late on a busy machine."""
STORY = "Write a long story about a lighthouse keeper who finds a message in a bottle."


@pytest.fixture(scope="module")
def profile(model: Path, tmp_path_factory: pytest.TempPathFactory) -> DeviceProfile:
    """A quick profile of the device as the tests run it (1 thread)."""
    from pdcore.runtime.device import LlamaEngine
    from pdcore.runtime.profiler import measure, profile_toml

    engine = LlamaEngine(model, n_threads=1)
    measured = measure(engine, lengths=(64, 128, 256, 512), repeats=1, decode_tokens=8)
    text = profile_toml(
        measured,
        name="live-test",
        model=engine.describe(),
        engine="llama.cpp, 1 thread",
        kv_bytes_per_token=engine.kv_bytes_per_token(),
    )
    path = tmp_path_factory.mktemp("profile") / "device.toml"
    path.write_text(text, encoding="utf-8")
    return DeviceProfile.from_toml_file(path)


def run(url: str, model: Path, prompt: str, *, warm: bool = False, **options: Any) -> tuple[Timeline, str]:
    async def go() -> tuple[Timeline, str]:
        cloud = CloudClient(url, extra_body=SAMPLING)
        device = Device.llama(model, n_threads=1)
        try:
            if warm:
                async for _ in cloud.stream(prompt, max_tokens=1):
                    pass
            session = Session(cloud=cloud, device=device, **options)
            text = "".join([piece.text async for piece in session.stream(prompt)])
            assert session.timeline is not None
            return session.timeline, text
        finally:
            await cloud.aclose()
            device.close()

    return asyncio.run(go())


def story_prompt(model: Path, tokens: int) -> str:
    async def go() -> str:
        device = Device.llama(model, n_threads=1)
        try:
            return await make_prompt(device, tokens, seed=3)
        finally:
            device.close()

    return asyncio.run(go())


def test_cloud_only_and_pd_answer_the_france_question(cloud_url: str, model: Path) -> None:
    prompt = chatml("What is the capital of France?")
    cloud, text = run(cloud_url, model, prompt, mode="cloud-only", k=0)
    assert text == FRANCE
    assert cloud.cloud_end == "stop"
    pd, text = run(cloud_url, model, prompt, mode="pd-device", k=3)
    assert text == FRANCE
    assert pd.tokens[0].source in {"cloud", "device"}
    device, text = run(cloud_url, model, prompt, mode="device-only", k=0)
    assert text == FRANCE
    assert {record.source for record in device.tokens} == {"device"}


def test_handoff_continues_the_cloud_text_exactly(cloud_url: str, model: Path) -> None:
    prompt = story_prompt(model, 300)
    reference, expected = run(cloud_url, model, prompt, warm=True, mode="cloud-only", k=0, max_tokens=48)
    assert len(reference.tokens) == 48
    timeline, text = run(cloud_url, model, prompt, warm=True, k=6, max_tokens=48, max_extensions=0)
    assert timeline.handoff_position == 7, timeline.summary()
    sources = [record.source for record in timeline.tokens]
    assert sources == ["cloud"] * 7 + ["device"] * (len(sources) - 7)
    # text-exact: the shown text is the cloud's seven tokens followed by the device's own tokens, with
    # nothing lost or repeated at the seam
    cloud_shown = "".join(record.text for record in timeline.tokens if record.source == "cloud")
    device_shown = "".join(record.text for record in timeline.tokens if record.source == "device")
    assert text == cloud_shown + device_shown
    assert cloud_shown == timeline.cloud_text == "".join(record.text for record in reference.tokens[:7])
    # the device continues the same greedy answer. Not to the end: the server and the device compute the
    # same model through different batch shapes, and a near-tie in the logits may later pick another
    # token; so the continuation is compared over its first few tokens only.
    seam = len(cloud_shown)
    assert text[: seam + HANDOFF_AGREEMENT_CHARS] == expected[: seam + HANDOFF_AGREEMENT_CHARS], (
        text,
        expected,
    )


def test_ttft_follows_the_cloud_and_gaps_stay_paced(
    cloud_url: str, model: Path, profile: DeviceProfile
) -> None:
    prompt = story_prompt(model, 500)
    timeline, _ = run(cloud_url, model, prompt, warm=True, device_profile=profile, k="auto", max_tokens=160)
    summary = timeline.summary()
    assert timeline.tokens[0].source == "cloud"
    assert summary["ttft_over_cloud_s"] < 0.02, summary
    late = [gap for gap in timeline.gaps() if gap.gap_s > MAX_TPOT + SLACK and gap.cause != "cloud-late"]
    # every gap but the hand-off's within max_tpot; the hand-off's within it for at least 95% of requests
    # (the many-request test below) and never a second pause: one clean CI run measured 66 ms here
    handoff = timeline.handoff_position
    assert all(gap.position == handoff for gap in late), summary
    assert all(gap.gap_s <= 2 * MAX_TPOT for gap in late), summary


def test_unreachable_cloud_falls_back_to_the_real_device(model: Path) -> None:
    timeline, text = run(unused_url(), model, chatml("What is the capital of France?"), k=3)
    assert text == FRANCE
    assert [notice.kind for notice in timeline.notices] == ["cloud-unavailable"]


def cli() -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)
    register(app)
    return app


def test_cli_chat(cloud_url: str, model: Path, tmp_path: Path) -> None:
    out = tmp_path / "timeline.json"
    result = CliRunner().invoke(
        cli(),
        ["chat", "What is the capital of France?", "--cloud-url", cloud_url, "--model", str(model),
         "--threads", "1", "--k", "3",
         "--json", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert FRANCE in result.output
    assert "TTFT" in result.output
    assert json.loads(out.read_text(encoding="utf-8"))["text"] == FRANCE


def test_cli_profile_device(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "profile.toml"
    result = CliRunner().invoke(
        cli(),
        ["profile-device", "--out", str(out), "--model", str(model), "--threads", "1",
         "--lengths", "32,64,128", "--repeats", "1", "--decode-tokens", "4"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    measured = DeviceProfile.from_toml_file(out)
    assert measured.prefill_tokens == (32.0, 64.0, 128.0)
    assert measured.prefill_seconds[0] > 0
    assert "30 layers" in measured.model


def test_cli_validate(cloud_url: str, profile: DeviceProfile, tmp_path: Path) -> None:
    profile_path = tmp_path / "device.toml"
    profile_path.write_text(Path(profile.source).read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path / "validate.json"
    result = CliRunner().invoke(
        cli(),
        ["validate", "--profile", str(profile_path), "--cloud-url", cloud_url, "--threads", "1",
         "--requests", "2", "--prompt-tokens", "200,300", "--max-tokens", "80",
         "--json", str(out)],
    )  # fmt: skip
    assert result.exit_code in {0, 1}, result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    assert set(report["comparisons"]) == {"ttft_s", "max_gap_s", "mean_gap_s"}
    assert len(report["runs"]) == 2
    assert report["comparisons"]["ttft_s"]["live_mean"] > 0
    for sample in report["calibration"]:
        assert sample["device_prefill_s"] > 0, "the device's prefill is timed in each calibration"
        assert 0.2 < sample["device_speed_ratio"] < 5.0, sample["device_speed_ratio"]
    for run in report["runs"]:
        assert run["max_gap_all_s"] >= run["max_gap_s"] > 0


def test_chat_only_endpoints_give_a_text_exact_seam(cloud_url: str, model: Path) -> None:
    async def go() -> tuple[Timeline, str]:
        cloud = CloudClient(cloud_url, api="chat")
        device = Device.llama(model, n_threads=1)
        try:
            # a prompt the device needs seconds for, cached on the endpoint first (a chat turn, as the
            # other live tests do: the stand-in cloud runs the same model as fast as the device)
            prompt = await make_prompt(device, 300, seed=5)
            async for _ in cloud.stream(prompt, max_tokens=1):
                pass
            session = Session(cloud=cloud, device=device, k=6, max_tokens=60, max_extensions=0)
            text = "".join([piece.text async for piece in session.stream(prompt)])
            assert session.timeline is not None
            return session.timeline, text
        finally:
            await cloud.aclose()
            device.close()

    timeline, text = asyncio.run(go())
    cloud_part = "".join(record.text for record in timeline.tokens if record.source == "cloud")
    assert cloud_part, "the chat endpoint streamed the first tokens"
    assert text.startswith(cloud_part), "the device continues after the cloud's text, exactly"
    assert len(text) > len(cloud_part)
    assert timeline.handoff_position is not None


def test_cli_profile_cloud_measures_the_server(cloud_url: str, tmp_path: Path) -> None:
    out = tmp_path / "cloud.toml"
    result = CliRunner().invoke(
        cli(),
        ["profile-cloud", "--cloud-url", cloud_url, "--out", str(out), "--lengths", "64,256",
         "--concurrency", "1,2", "--decode-tokens", "6", "--repeats", "1", "--kv-cache-tokens", "4096"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    from pdcore.profiles import CloudProfile

    measured = CloudProfile.from_toml_file(out)
    assert measured.max_batch_size == 1, "llama-cpp-python's server decodes one stream at a time"
    assert measured.base_s > 0
    assert 0.001 < measured.cost.lone_decode_s(300) < 1.0


def test_the_servers_context_window_is_learned_not_guessed(cloud_url: str, model: Path) -> None:
    async def go() -> int | None:
        async with CloudClient(cloud_url) as cloud:
            with pytest.raises(CloudContextError) as info:
                async for _ in cloud.stream("word " * 5000, max_tokens=4):
                    pass
            assert info.value.context_tokens == cloud.context_tokens
            return cloud.context_tokens

    assert asyncio.run(go()) == 4096


def test_hand_offs_stay_within_the_gap_objective_over_many_requests(
    cloud_url: str, model: Path, profile: DeviceProfile
) -> None:
    """Seeded prompts of 200 to 500 tokens, each a chat turn the cloud has cached, each answer closed a few
    device tokens past its hand-off (the hand-off is what is tested): at most one hand-off in twelve lands
    past max_tpot, and none pauses the display for more than `HANDOFF_STALL_S`.

    What this guards against is a hand-off that fails by design (hand-offs late as a rule, or a display
    that waits for a deadline or a lost wake-up, which lasts seconds), not the percentile: 99% of 36
    hand-offs would allow none over, which on a shared machine tests its scheduler (runs of this suite saw
    one hand-off of 36 at 194.6 ms, and two at 75.3 and 230.3 ms, the device late each time, the rest
    within the objective). The percentile is measured over 120 requests by
    benches/python/live_handoffs.py (README, "Live runtime")."""
    lengths = [200, 260, 320, 380, 440, 500] * 6

    async def answer(session: Session, prompt: str) -> Timeline:
        stream = session.stream(prompt)
        async for piece in stream:
            timeline = session.timeline
            assert timeline is not None
            if timeline.handoff_position is not None and piece.position >= timeline.handoff_position + 4:
                break
        await stream.aclose()  # type: ignore[attr-defined]  # reason: an async generator
        assert session.timeline is not None
        return session.timeline

    async def go() -> list[Timeline]:
        cloud = CloudClient(cloud_url)
        device = Device.llama(model, n_threads=1)
        timelines = []
        try:
            session = Session(cloud=cloud, device=device, device_profile=profile, k="auto", max_tokens=250)
            for index, tokens in enumerate(lengths):
                prompt = await make_prompt(device, tokens, seed=100 + index)
                async for _ in cloud.stream(prompt, max_tokens=1):
                    pass
                timelines.append(await answer(session, prompt))
        finally:
            await cloud.aclose()
            device.close()
        return timelines

    timelines = asyncio.run(go())
    handoffs = [timeline for timeline in timelines if timeline.handoff_position is not None]
    assert len(handoffs) >= 24, [timeline.summary()["plan"] for timeline in timelines]
    over = []
    for timeline in handoffs:
        gap = next(gap for gap in timeline.gaps() if gap.position == timeline.handoff_position)
        if not within_objective(gap.gap_s, MAX_TPOT):
            over.append((timeline.prompt_tokens, round(gap.gap_s * 1e3, 1), gap.cause))
    assert len(over) <= len(handoffs) // 12, over
    assert all(gap_ms / 1e3 <= HANDOFF_STALL_S for _, gap_ms, _ in over), over


def killed_mid_answer(
    url: str, model: Path, tokens: int, kill_when: Callable[[Timeline, Piece], bool], **options: Any
) -> tuple[Timeline, str, list[Notice], str]:
    """One answer whose device worker is killed (SIGKILL) when ``kill_when`` says so, after a piece is
    shown; returns its timeline, text and notices, and the cloud's own continuation of the text before the
    seam (the same request again, for the seam rule)."""

    async def go() -> tuple[Timeline, str, list[Notice], str]:
        cloud = CloudClient(url, extra_body=SAMPLING)
        device = Device.llama(model, n_threads=1)
        notices: list[Notice] = []
        try:
            engine = device.engine
            assert isinstance(engine, EngineWorker), "the live device runs in a worker process"
            assert engine.pid is not None
            prompt = await make_prompt(device, tokens, seed=11)
            async for _ in cloud.stream(prompt, max_tokens=1):
                pass
            session = Session(cloud=cloud, device=device, on_notice=notices.append, **options)
            pieces, killed = [], False
            async for piece in session.stream(prompt):
                pieces.append(piece.text)
                assert session.timeline is not None
                if not killed and kill_when(session.timeline, piece):
                    os.kill(engine.pid, signal.SIGKILL)
                    killed = True
            assert killed, "the worker was never killed"
            timeline = session.timeline
            assert timeline is not None
            assert timeline.device_failures, timeline.summary()
            position = timeline.device_failures[0][3]
            seam = "".join(record.text for record in timeline.tokens[:position])
            rest = options["max_tokens"] - position
            own = "".join([event.text async for event in cloud.stream(prompt + seam, max_tokens=rest)])
            return timeline, "".join(pieces), notices, own
        finally:
            await cloud.aclose()
            device.close()

    return asyncio.run(go())


def assert_seam_rule(timeline: Timeline, text: str, own: str, max_tokens: int) -> None:
    """The answer is complete, and is the text before the seam followed by the cloud's continuation of it:
    nothing repeated or dropped."""
    assert text == timeline.text
    assert len(timeline.tokens) == max_tokens or timeline.cloud_end == "stop", timeline.summary()
    position = timeline.device_failures[0][3]
    seam = "".join(record.text for record in timeline.tokens[:position])
    assert {record.source for record in timeline.tokens[position:]} == {"cloud"}
    continued = text[len(seam) :]
    assert continued, "the cloud continued the answer"
    # the cloud's own greedy continuation of the same text; as with the device's hand-off, the server
    # computes it again through another batch shape (its prompt cache), so a near-tie in the logits may
    # later pick another token: compared over the first characters
    assert continued[:HANDOFF_AGREEMENT_CHARS] == own[:HANDOFF_AGREEMENT_CHARS], (continued, own)


def test_the_worker_killed_mid_prefill_the_cloud_finishes_the_answer(cloud_url: str, model: Path) -> None:
    def prefilling(timeline: Timeline, _: Piece) -> bool:
        return timeline.prompt_tokens is not None and timeline.prompt_prefilled_s is None

    timeline, text, notices, own = killed_mid_answer(
        cloud_url, model, 600, prefilling, k=6, max_tokens=48, max_extensions=0
    )
    assert [notice.kind for notice in notices] == ["device-failed"]
    assert "killed by signal 9 (SIGKILL)" in notices[0].message
    assert timeline.device_failures[0][1] == "prefilling"
    assert timeline.handoff_position is None
    assert_seam_rule(timeline, text, own, 48)


def test_the_worker_killed_mid_decode_the_cloud_continues_after_the_devices_text(
    cloud_url: str, model: Path
) -> None:
    def decoding(_: Timeline, piece: Piece) -> bool:
        return piece.source == "device"

    timeline, text, notices, own = killed_mid_answer(
        cloud_url, model, 300, decoding, k=6, max_tokens=48, max_extensions=0
    )
    assert [notice.kind for notice in notices] == ["device-failed"]
    assert timeline.device_failures[0][1] == "decoding"
    handoff = timeline.handoff_position
    assert handoff is not None
    position = timeline.device_failures[0][3]
    assert position > handoff
    assert {record.source for record in timeline.tokens[handoff:position]} == {"device"}
    assert_seam_rule(timeline, text, own, 48)
