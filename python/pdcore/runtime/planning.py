"""How a live session plans an answer: the simulator's planner on the session's learned figures, and the
words each plan is told in.

Plan (``k="auto"``). Before anything is sent the prompt is counted with the device's tokenizer (on a sample
of it, `pdcore.runtime.settings.TOKENIZE_SAMPLE_CHARS`: the cloud request leaves before the prompt is
tokenized whole; the session learns tokens per character from each prompt) unless the device holds cached
conversations, whose reuse needs the prompt's tokens (`pdcore.runtime.session`). It is planned by the
planner the simulator's built-in policies use (`pdcore._core.plan_turn`, the Rust crate's
``cost::planner``): the catch-up on the profile scaled by the learned speed ratio (`ScaledProfile`), with
the cloud's first-token delay given or learned from earlier answers and its pace, ``k`` padded by
``k_margin``, and the tokens the device finds in its conversation cache. When the device's own first token
would come first, the device answers alone and the cloud is not asked (plan ``"device-only"``); when the
device cannot catch up within the answer (no fixed point, or ``k`` reaching ``max_tokens``; the rule is
ours), the cloud serves the whole answer and the device does not prefill at all unless the cloud fails
(plan ``"cloud-only"``); ``k`` is cut to the cloud's context room (`plan_words`).

A busy device (ours; `pdcore.runtime.device_gate`): an answer that arrives while the device serves another
is planned ``"cloud-only"`` when the session has a cloud (`BUSY_CLOUD`): waiting would add the other
answer's whole remaining time to its first token, which the cloud's own first token beats. A session
without one (device-only mode) queues the answer for the device (`BUSY_WAIT`); the timeline records the
wait.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass

from pdcore._core import TurnPlan
from pdcore.exceptions import DeviceFailedError
from pdcore.profiles.device import DeviceProfile
from pdcore.runtime.device import Device
from pdcore.runtime.request_state import Mode
from pdcore.runtime.settings import TOKENIZE_SAMPLE_CHARS

__all__ = ["BUSY_CLOUD", "BUSY_WAIT", "PromptCount", "ScaledProfile", "count_prompt", "plan_words"]

BUSY_CLOUD = (
    "the device is busy with another answer: the cloud serves the whole answer and the device does not "
    "prefill unless the cloud fails"
)
"""The plan reason of a P/D-Device answer that found the device busy."""

BUSY_WAIT = "the device is busy with another answer and no cloud can serve this one: it waits for the device"
"""The plan reason of a device-only answer that found the device busy (the wait is appended when over)."""


class ScaledProfile:
    """The device profile with its prefill scaled by the learned speed ratio, built once per ratio (and
    its cost model with it), not per request."""

    def __init__(self) -> None:
        self._last: tuple[DeviceProfile, float, DeviceProfile] | None = None

    def __call__(self, profile: DeviceProfile, ratio: float) -> DeviceProfile:
        """``profile`` with ``prefill_seconds`` times ``ratio`` (``profile`` itself at 1)."""
        if ratio == 1.0:
            return profile
        last = self._last
        if last is None or last[0] is not profile or last[1] != ratio:
            scaled = dataclasses.replace(
                profile, prefill_seconds=tuple(v * ratio for v in profile.prefill_seconds)
            )
            last = self._last = (profile, ratio, scaled)
        return last[2]


def plan_words(turn: TurnPlan, prompt_tokens: int, *, max_tokens: int, reduce: bool) -> tuple[Mode, str, int]:
    """The planner's ``turn`` as the session's ``(plan, reason, k)`` (module docstring); ``reduce``: the
    session serves a request from one side when P/D-Device cannot pay off."""
    if turn.serve == "device":
        return (
            "device-only",
            f"the device's own first token ({turn.device_ready_s * 1e3:.0f} ms) comes before the "
            f"cloud's ({turn.first_token_s * 1e3:.0f} ms): the device answers alone and the cloud is not "
            "asked",
            turn.k,
        )
    if turn.serve == "cloud":
        needs = f"needs k = {turn.wanted_k} of {max_tokens}"
        why = "never catches up" if not turn.converged else needs
        return (
            "cloud-only",
            f"the device {why} on a {prompt_tokens}-token prompt: the cloud serves the whole answer and "
            "the device does not prefill unless the cloud fails",
            turn.k,
        )
    k = turn.wanted_k if not reduce else turn.k
    return "pd-device", f"k = {k} from the catch-up rule", turn.k


@dataclass(frozen=True, slots=True)
class PromptCount:
    """A prompt as the plan counts it, before the cloud request leaves.

    Attributes:
        tokens: Its length in device tokens (estimated from a sample unless ``exact`` is given).
        tokens_per_char: Device tokens per character measured now, or ``None`` (the device was busy).
        exact: The whole prompt's device tokens, when it was tokenized whole (the device then does not
            tokenize it again).
        cached: The prompt tokens the device finds in its conversation cache.
    """

    tokens: int
    tokens_per_char: float | None
    exact: list[int] | None = None
    cached: int = 0


def count_prompt(device: Device, prompt: str, tokens_per_char: float, *, whole: bool = True) -> PromptCount:
    """Counts ``prompt`` for the plan, fast (``tokens_per_char``: the session's learned figure, used when
    the device cannot be asked). A device that holds cached conversations tokenizes it whole when the plan
    reads the cache (``whole``: ``k="auto"``): the tokens it reuses are the longest common prefix with a
    cached entry, which a sample cannot tell. A plan with a fixed ``k`` does not read them: the device
    finds its cached prefix itself when it starts, after the cloud request has left."""
    # The cloud request leaves before the prompt is tokenized whole (1,840 tokens took 4-8 ms on the 2-core
    # development machine, all of it added to the first token): the plan counts the prompt at the tokens
    # per character of its first `TOKENIZE_SAMPLE_CHARS` characters, tokenized by the device while its worker
    # is idle (about half a millisecond; a busy one, such as a fresh worker starting, is not waited for);
    # the device tokenizes it whole right after.
    # With cached conversations the prompt is tokenized whole and compared with each entry: a 13-turn chat
    # of 4,291 characters (975 tokens) took a median 7 ms through SmolLM2's worker on the shared 2-core
    # development machine, the lookup over 8 entries 0.1 ms. That delay buys a plan that knows the cache:
    # a follow-up the device answers alone is not sent to the cloud at all.
    sample = prompt[:TOKENIZE_SAMPLE_CHARS]
    measured = None
    with contextlib.suppress(DeviceFailedError):  # a worker dead since: its next call reports it
        if whole and device.ready and device.conversations:
            exact = device.tokenize_idle(prompt)
            cached = device.conversations.reusable(device.engine, exact)
            return PromptCount(len(exact), len(exact) / max(len(prompt), 1), exact, cached)
        if device.ready:
            measured = len(device.tokenize_idle(sample)) / max(len(sample), 1)
    per_char = tokens_per_char if measured is None else measured
    return PromptCount(max(1, round(len(prompt) * per_char)), measured)
