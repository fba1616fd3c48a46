"""``pdcore validate --turns N``: live conversations against the simulator's per-turn prediction.

With ``validate(turns=N)``, N > 1, each of the ``requests`` becomes a conversation of N turns on a device
that keeps conversations (``Device(..., conversation_cache=True)``, `pdcore.runtime.conversation_cache`):

- **Turn 1**: a user message of the chosen prompt length (real text, as single-request validate's,
  `pdcore.runtime.calibration.make_message`).
- **Turns 2..N**: the answer the session showed for the previous turn, as the assistant's message, then a
  short seeded user message (`follow_up_message`: 20 to 60 tokens of text asking to go on).
- Every prompt is the messages so far through the model's chat template (`Device.chat_template`,
  `pdcore.runtime.chat_template.render_chat`), so each turn's prompt begins with the previous prompt and
  its answer: the tokens the device already holds.

Rules (ours), and why:

- **A fresh cache per conversation.** Before its first turn a conversation finds the device's
  conversation cache empty (`forget_conversations`). The live cache is looked up by tokens, and every
  conversation begins with the chat template's head (24 tokens on SmolLM2: its default system prompt),
  which a first turn would reuse from another conversation; the simulator keeps one cache per
  conversation. Starting each conversation empty makes the live first turn the one the simulator models,
  and leaves the calibration a prefill of the whole prompt, as in single-request validate.
- **Calibration once per conversation, on turn 1**, as single-request validate calibrates a request
  (warm-up, calibration on the same prompt, warm-up, live run). Follow-ups are not calibrated: the device
  would prefill the whole conversation, not the new message the live turn prefills. The session is told the
  conversation's calibrated speed ratio before every turn, and the prediction scales the profile by it.
- **The cloud is warmed before every turn** (a one-token request with the turn's prompt), as a chat
  client's cloud would hold the conversation so far in its prefix cache; so ``warm`` must be on, and the
  one cloud fit prices every first token as a cached prompt's (`pdcore.runtime.prediction.fit_cloud`).
- **What the device holds of the previous turn**, the prediction's shared prefix of a follow-up, is
  measured from the texts: the longest common prefix of the previous prompt's tokens followed by its
  answer's tokens, and the new prompt's tokens (`pdcore.runtime.conversation_cache.common_prefix`). It is
  an input, like the prompt's length; the cached tokens themselves are the outcome compared.
- **Cached tokens agree within `CACHED_TOKENS_TOLERANCE` (4) tokens per conversation and turn**: the
  simulator holds a device-decoded answer's tokens but the last (sampled, never run), and an answer that
  ended on the model's end-of-turn token ran its last shown token too (one more live); the device tokenizes
  the cloud's text piece by piece, which can split a word the whole prompt's tokenization keeps together
  (a token or two). A larger difference is a failure of the model or of the runtime.

The prediction and comparison are `pdcore.runtime.turn_prediction`'s.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from pdcore.exceptions import InvalidInputError
from pdcore.profiles.cloud import CloudProfile
from pdcore.runtime.calibration import calibrate, make_message, warm_up
from pdcore.runtime.chat_template import render_chat
from pdcore.runtime.cloud import CloudClient
from pdcore.runtime.conversation_cache import common_prefix
from pdcore.runtime.device import Device
from pdcore.runtime.profiler import filler_text
from pdcore.runtime.session import Session
from pdcore.runtime.turn_prediction import Conversation, compare_conversations
from pdcore.runtime.validation_report import CACHED_TOKENS_TOLERANCE, LiveRun, ValidationReport

__all__ = [
    "CACHED_TOKENS_TOLERANCE",
    "FOLLOW_UP_TOKENS",
    "MAX_TURNS",
    "check_turns",
    "follow_up_message",
    "forget_conversations",
    "validate_conversations",
]

MAX_TURNS = 16
"""The most turns a conversation may have: the cap of the simulator's multi-turn default
(`pdcore.traces.synthetic.MULTI_TURN`); longer ones outgrow a small model's context window."""

FOLLOW_UP_TOKENS = (20, 60)
"""The range a follow-up message's length is drawn from, device tokens (about: sized by words)."""

FOLLOW_UP = "Go on with the story, and weave in these words: "

Message = Mapping[str, str]


def check_turns(turns: int, *, name: str = "turns") -> int:
    """``turns`` if it is a whole number from 1 to `MAX_TURNS`.

    Raises:
        InvalidInputError: It is not (the error names ``name``, e.g. ``--turns``).
    """
    if isinstance(turns, bool) or not isinstance(turns, int) or not 1 <= turns <= MAX_TURNS:
        shown = f"{name} {turns!r}" if name.startswith("--") else f"{name} = {turns!r}"
        raise InvalidInputError(
            f"{shown}; fix: pass 1 (single requests) to {MAX_TURNS} turns per conversation"
        )
    return turns


def check_conversation_settings(turns: int, device: Device, *, warm: bool, baselines: bool) -> None:
    """Refuses settings a conversation run cannot honour (module docstring).

    Raises:
        InvalidInputError: ``turns`` is out of range, or with ``turns > 1`` the device keeps no
            conversations, ``warm`` is off or ``baselines`` is on.
    """
    if check_turns(turns) == 1:
        return
    if device.conversations is None:
        raise InvalidInputError(
            f"turns = {turns} needs a device that keeps conversations; fix: build it with "
            "conversation_cache=True (Device.llama(..., conversation_cache=True))"
        )
    if not warm:
        raise InvalidInputError(
            f"turns = {turns} warms the cloud before every turn (a chat's cloud holds the conversation so "
            "far); fix: drop warm=False (--no-warm)"
        )
    if baselines:
        raise InvalidInputError(
            f"turns = {turns}: baselines time single requests, and their device answers would enter the "
            "conversation cache; fix: drop baselines (--baselines) or run with one turn"
        )


async def forget_conversations(device: Device) -> None:
    """Empties the device's conversation cache and frees the states its engine saved for it."""
    cache = device.conversations
    if cache is None or len(cache) == 0:
        return

    def job() -> None:
        engine = device.engine
        for key in cache.clear():
            engine.drop_state(key)

    await device.run(job)


def follow_up_message(seed: int) -> str:
    """A seeded follow-up user message of about 20 to 60 tokens (`FOLLOW_UP_TOKENS`)."""
    rng = random.Random(seed)
    tokens = rng.randint(*FOLLOW_UP_TOKENS)
    words = max(4, tokens * 3 // 4 - 9)  # the lead is about 12 tokens
    return FOLLOW_UP + filler_text(words, seed=seed)


async def _tokens(device: Device, text: str, *, prompt: bool) -> list[int]:
    return await device.run(lambda: device.engine.tokenize(text, prompt=prompt))


async def _turn(session: Session, prompt: str) -> tuple[LiveRun, str]:
    """One live turn: its record and the text the session showed."""
    async with await session.open(prompt) as answer:
        text = "".join([piece.text async for piece in answer])
    return LiveRun.from_timeline(answer.timeline), text


async def run_conversation(
    cloud: CloudClient,
    device: Device,
    session: Session,
    *,
    index: int,
    length: int,
    turns: int,
    min_events: int,
    max_events: int,
    say: Callable[[str], None],
) -> Conversation:
    """One conversation of ``turns`` turns, its first prompt about ``length`` tokens (module docstring)."""
    assert session.profile is not None
    await forget_conversations(device)
    template = device.chat_template

    def render(messages: Sequence[Message]) -> str:
        return render_chat(messages, template)

    first = await make_message(
        device, length, seed=index, render=lambda text: render([{"role": "user", "content": text}])
    )
    messages: list[Message] = [{"role": "user", "content": first}]
    prompt = render(messages)
    await warm_up(cloud, prompt)
    sample = await calibrate(
        cloud, device, session.profile, prompt, await device.count_tokens(prompt),
        min_events=min_events, max_events=max_events,
    )  # fmt: skip
    runs: list[LiveRun] = []
    shared = [0]
    text, held = "", np.zeros(0, dtype=np.int64)
    for turn in range(1, turns + 1):
        if turn > 1:
            follow_up = follow_up_message(1_000 * (index + 1) + turn)
            messages += [{"role": "assistant", "content": text}, {"role": "user", "content": follow_up}]
            prompt = render(messages)
            shared.append(common_prefix(held, np.asarray(await _tokens(device, prompt, prompt=True))))
        await warm_up(cloud, prompt)
        session.speed_ratio = sample.device_speed_ratio
        run, text = await _turn(session, prompt)
        runs.append(run)
        held = np.asarray(
            await _tokens(device, prompt, prompt=True) + await _tokens(device, text, prompt=False)
        )
        say(_turn_line(turn, turns, run, shared[-1]))
    return Conversation(runs=tuple(runs), shared_prefix_tokens=tuple(shared), calibration=sample)


async def validate_conversations(
    *,
    cloud: CloudClient,
    device: Device,
    session: Session,
    conversations: int,
    prompt_tokens: Sequence[int],
    turns: int,
    min_events: int,
    max_events: int,
    rtt_s: float,
    cloud_profile: CloudProfile | None,
    tolerance: float,
    say: Callable[[str], None],
) -> ValidationReport:
    """Runs ``conversations`` live conversations of ``turns`` turns and compares them with the simulator's
    prediction, per turn and over all turns (`pdcore.runtime.turn_prediction`)."""
    done = []
    for index in range(conversations):
        say(f"conversation {index + 1}/{conversations}")
        done.append(
            await run_conversation(
                cloud, device, session, index=index, length=prompt_tokens[index % len(prompt_tokens)],
                turns=turns, min_events=min_events, max_events=max_events, say=say,
            )
        )  # fmt: skip
    return compare_conversations(
        done, rtt_s=rtt_s, cloud_profile=cloud_profile, session=session, tolerance=tolerance
    )


def _turn_line(turn: int, turns: int, run: LiveRun, shared: int) -> str:
    handoff = "no hand-off" if run.handoff_position is None else f"hand-off at token {run.handoff_position}"
    return (
        f"  turn {turn}/{turns}: {run.prompt_tokens} prompt tokens, {run.timeline.device_cached_tokens} "
        f"cached on the device ({shared} shared with the previous turn), k={run.k}, TTFT "
        f"{run.ttft_s * 1e3:.0f} ms, max gap {run.max_gap_s * 1e3:.0f} ms, {handoff}"
    )
