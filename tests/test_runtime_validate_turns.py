"""``validate(turns=N)`` and ``pdcore validate --turns N``: conversations against a scripted cloud and device,
compared with the simulator's session cache per turn."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("httpx", reason="the live runtime needs the `device` extra (httpx, httpx-sse)")
pytest.importorskip("httpx_sse", reason="the live runtime needs the `device` extra (httpx, httpx-sse)")

import typer
from rich.console import Console
from typer.testing import CliRunner

from pdcore import InvalidInputError
from pdcore.cli.runtime import register
from pdcore.cli.turn_table import turn_table
from pdcore.runtime import CloudClient, Device
from pdcore.runtime.testing import CloudScript, FakeCloud, FakeEngine
from pdcore.runtime.turn_prediction import Conversation, conversation_columns
from pdcore.runtime.validate import Comparison, TurnComparison, ValidationReport, validate
from pdcore.runtime.validate_turns import MAX_TURNS, check_turns, follow_up_message

ANSWER = " ".join(f"word{index}" for index in range(120)) + "."
# one character a cloud event: the fake device's tokens are bytes, so the cloud's pieces and the device's
# tokens count alike, as with one model on both sides
SCRIPT = CloudScript(list(ANSWER), first_delay_s=0.06, gap_s=0.004)


class RecordingEngine(FakeEngine):
    """A `FakeEngine` that records where each evaluation starts, and each restore and reset."""

    def __init__(self, answer: str, **options: Any) -> None:
        super().__init__(answer, **options)
        self.events: list[tuple[str, int, int]] = []

    def reset(self) -> None:
        super().reset()
        self.events.append(("reset", 0, 0))

    def load_state(self, key: int, keep_tokens: int) -> None:
        super().load_state(key, keep_tokens)
        self.events.append(("load", keep_tokens, 0))

    def eval(self, tokens: Sequence[int]) -> None:
        self.events.append(("eval", len(self.context), len(tokens)))
        super().eval(tokens)


def fake_engine() -> RecordingEngine:
    return RecordingEngine(ANSWER, prefill_token_s=0.0003, call_s=0.001, decode_s=0.003)


def run_turns(fake: FakeEngine, *, cache: bool = True, **options: Any) -> ValidationReport:
    """`validate` against the scripted cloud and ``fake``, the device keeping conversations."""

    async def go(url: str) -> ValidationReport:
        cloud = CloudClient(url)
        device = Device(lambda: fake, conversation_cache=cache)
        try:
            return await validate(cloud=cloud, device=device, device_profile=fake.profile(), **options)
        finally:
            await cloud.aclose()
            device.close()

    with FakeCloud(SCRIPT) as cloud:
        return asyncio.run(go(cloud.url))


@pytest.fixture(scope="module")
def three_turns() -> tuple[RecordingEngine, ValidationReport]:
    fake = fake_engine()
    report = run_turns(
        fake, requests=2, prompt_tokens=(200, 300), max_tokens=40, calibration_tokens=8, pings=2, turns=3
    )
    return fake, report


def test_follow_ups_reuse_the_device_cache_and_prefill_only_their_new_tokens(
    three_turns: tuple[RecordingEngine, ValidationReport],
) -> None:
    fake, report = three_turns
    assert report.turns == 3
    assert len(report.runs) == 6, "two conversations of three turns, in order"
    assert len(report.calibration) == 2, "one calibration per conversation, on its first turn"
    cached = [run.timeline.device_cached_tokens for run in report.runs]
    assert cached[0] == cached[3] == 0, "each conversation starts on an empty cache"
    assert all(cached[i] > 0 for i in (1, 2, 4, 5)), cached
    # each follow-up restored its cached prefix, then prefilled from there to the end of its prompt only
    loads = [index for index, event in enumerate(fake.events) if event[0] == "load"]
    assert [fake.events[index][1] for index in loads] == [cached[i] for i in (1, 2, 4, 5)]
    follow_ups = [report.runs[i] for i in (1, 2, 4, 5)]
    for index, run in zip(loads, follow_ups, strict=True):
        after = []
        for kind, start, tokens in fake.events[index + 1 :]:
            if kind != "eval":
                break
            after.append((start, tokens))
        assert after[0][0] == run.timeline.device_cached_tokens, "the prefill starts after the cached tokens"
        prompt_part = sum(tokens for start, tokens in after if start < run.prompt_tokens)
        assert prompt_part == run.prompt_tokens - run.timeline.device_cached_tokens


def test_the_simulator_predicts_each_turns_cached_tokens(
    three_turns: tuple[RecordingEngine, ValidationReport],
) -> None:
    _, report = three_turns
    assert [turn.turn for turn in report.per_turn] == [1, 2, 3]
    for turn in report.per_turn:
        assert turn.cached_agree, turn
        assert len(turn.ttft.live) == len(turn.ttft.predicted) == 2
        assert turn.ttft.floor_s == report.max_tpot_s
    assert report.per_turn[0].live_cached == report.per_turn[0].predicted_cached == (0, 0)
    # the answer ends on max_tokens: the device holds the previous prompt and all of its answer but the last
    # token, as the simulator's session cache does
    for conversation in (report.runs[:3], report.runs[3:]):
        for previous, run in itertools.pairwise(conversation):
            assert run.timeline.device_cached_tokens == previous.prompt_tokens + previous.output_tokens - 1
    # the aggregate comparisons are kept, over every turn
    assert {c.metric for c in report.comparisons} == {"ttft_s", "max_gap_s", "mean_gap_s"}
    assert all(len(c.live) == 6 for c in (*report.comparisons, *report.in_situ))


def test_the_report_and_its_json_carry_each_turn(
    three_turns: tuple[RecordingEngine, ValidationReport],
) -> None:
    _, report = three_turns
    document = json.loads(json.dumps(report.to_dict()))
    assert document["turns"] == 3
    assert set(document["per_turn"]) == {"1", "2", "3"}
    second = document["per_turn"]["2"]
    assert second["device_cached_tokens"]["live"] == list(report.per_turn[1].live_cached)
    assert second["device_cached_tokens"]["predicted"] == list(report.per_turn[1].predicted_cached)
    assert second["device_cached_tokens"]["tolerance_tokens"] == 4
    assert second["ttft_s"]["live"] == pytest.approx(list(report.per_turn[1].ttft.live))
    assert second["passed"] == report.per_turn[1].passed(report.tolerance)
    assert document["passed"] == report.passed
    assert len(document["runs"]) == 6
    assert all(entry["predicted_timeline"] is not None for entry in document["runs"])
    console = Console(record=True, width=160)
    console.print(turn_table(report))
    text = console.export_text()
    assert "per turn" in text
    assert text.count("pass") + text.count("fail") == 3


def test_a_turn_fails_on_cached_tokens_beyond_the_tolerance() -> None:
    ttft = Comparison(metric="ttft_s", live=(0.03, 0.03), predicted=(0.03, 0.03), floor_s=0.05)
    close = TurnComparison(turn=2, ttft=ttft, live_cached=(300, 400), predicted_cached=(299, 404))
    assert close.cached_errors == (-1, 4)
    assert close.passed(0.15)
    far = TurnComparison(turn=2, ttft=ttft, live_cached=(300, 400), predicted_cached=(300, 405))
    assert not far.cached_agree
    assert not far.passed(0.15)
    assert far.to_dict(0.15)["device_cached_tokens"]["agree"] is False


def test_one_turn_leaves_the_report_as_it_was() -> None:
    fake = fake_engine()
    report = run_turns(
        fake, cache=False, requests=1, prompt_tokens=(200,), max_tokens=30, calibration_tokens=8, pings=1
    )
    assert report.turns == 1
    assert report.per_turn == ()
    document = report.to_dict()
    assert "per_turn" not in document
    assert "turns" not in document


def test_conversation_columns_chain_the_turns() -> None:
    report_runs = three_turns_runs()
    conversation = Conversation(
        runs=report_runs, shared_prefix_tokens=(5, 240, 999_999), calibration=calibration_sample()
    )
    columns = conversation_columns(conversation)
    assert columns["turn"].tolist() == [1, 2, 3]
    assert columns["parent"].tolist() == [-1, 0, 1]
    assert columns["session"].tolist() == [0, 0, 0]
    # a first turn shares nothing; a shared prefix is at most the prompt
    assert columns["shared_prefix_tokens"].tolist() == [0, 240, report_runs[2].prompt_tokens]


def three_turns_runs() -> tuple[Any, ...]:
    from pdcore.runtime.timeline import Timeline, TokenRecord
    from pdcore.runtime.validate import LiveRun

    runs = []
    for prompt in (200, 300, 400):
        timeline = Timeline(mode="pd-device", prompt="p", started_at=0.0, max_tpot_s=0.05, min_tpot_s=0.0)
        timeline.prompt_tokens = prompt
        for position in range(3):
            at = 0.01 * (position + 1)
            timeline.tokens.append(
                TokenRecord(position=position, text="x", source="cloud", available_s=at, due_s=at, shown_s=at)
            )
        runs.append(LiveRun.from_timeline(timeline))
    return tuple(runs)


def calibration_sample() -> Any:
    from pdcore.runtime.validate import CalibrationSample

    return CalibrationSample(prompt_tokens=200, ttft_s=0.03, gaps_s=(0.01,))


def test_follow_up_messages_are_seeded_and_short() -> None:
    assert follow_up_message(7) == follow_up_message(7)
    assert follow_up_message(7) != follow_up_message(8)
    for seed in range(20):
        words = len(follow_up_message(seed).split())
        assert 10 <= words <= 70, words


@pytest.mark.parametrize("turns", [0, -1, MAX_TURNS + 1, 1000, True, 2.0])
def test_turns_out_of_range_are_refused(turns: Any) -> None:
    with pytest.raises(InvalidInputError, match=rf"turns = {turns!r}; fix: pass 1 .* to {MAX_TURNS} turns"):
        check_turns(turns)
    with pytest.raises(InvalidInputError, match=r"^--turns 0; fix"):
        check_turns(0, name="--turns")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"turns": 0}, "turns = 0"),
        ({"turns": 2, "cache": False}, "conversation_cache=True"),
        ({"turns": 2, "warm": False}, "drop warm=False"),
        ({"turns": 2, "baselines": True}, "drop baselines"),
    ],
)
def test_validate_refuses_what_a_conversation_run_cannot_honour(
    options: dict[str, Any], message: str
) -> None:
    fake = FakeEngine(ANSWER)
    cache = options.pop("cache", True)

    async def go() -> None:
        cloud = CloudClient("http://127.0.0.1:9")  # never reached: refused before the first ping
        device = Device(lambda: fake, conversation_cache=cache)
        try:
            await validate(cloud=cloud, device=device, device_profile=fake.profile(), **options)
        finally:
            await cloud.aclose()
            device.close()

    with pytest.raises(InvalidInputError, match=message):
        asyncio.run(go())


def cli() -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)
    register(app)
    return app


@pytest.mark.parametrize("turns", ["0", "17"])
def test_cli_refuses_bad_turns(turns: str, tmp_path: Path) -> None:
    profile = tmp_path / "device.toml"
    profile.write_text(FakeEngine(ANSWER).profile().to_toml(), encoding="utf-8")
    result = CliRunner().invoke(
        cli(), ["validate", "--profile", str(profile), "--cloud-url", "http://127.0.0.1:9", "--turns", turns]
    )
    assert result.exit_code == 2, result.output
    assert f"--turns {turns}; fix: pass 1 (single requests) to 16 turns" in result.output
    assert "Traceback" not in result.output


def test_cli_turns_runs_conversations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = fake_engine()
    built: list[dict[str, Any]] = []

    def llama(cls: type[Device], model: Any, **options: Any) -> Device:
        built.append(options)
        return cls(lambda: fake, profile=options["profile"], conversation_cache=options["conversation_cache"])

    monkeypatch.setattr(Device, "llama", classmethod(llama))
    profile = tmp_path / "device.toml"
    profile.write_text(fake.profile().to_toml(), encoding="utf-8")
    out = tmp_path / "validate.json"
    model = tmp_path / "model.gguf"  # never loaded: the scripted device stands in for it
    model.write_bytes(b"")
    with FakeCloud(SCRIPT) as cloud:
        result = CliRunner().invoke(
            cli(),
            ["validate", "--profile", str(profile), "--model", str(model), "--cloud-url", cloud.url,
             "--requests", "1",
             "--prompt-tokens", "150", "--max-tokens", "30", "--turns", "2", "--json", str(out)],
        )  # fmt: skip
    assert result.exit_code in {0, 1}, result.output
    assert built[0]["conversation_cache"] is True, "conversations need a device that keeps them"
    assert "per turn" in result.output
    assert "turn 2/2" in result.output
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["turns"] == 2
    assert document["per_turn"]["2"]["device_cached_tokens"]["live"][0] > 0
