"""How a live session plans an answer: the simulator's planner on the session's learned figures, and the
words each plan is told in.

Plan (``k="auto"``). Nothing is tokenized whole before the cloud request leaves (`count_prompt`): the
prompt is counted at the tokens per character the session learned from the device's own count of earlier
prompts (before the first count, from a sample the device tokenizes,
`pdcore.runtime.settings.TOKENIZE_SAMPLE_CHARS`), and the tokens a follow-up finds in the device's
conversation cache are estimated from the cached texts (`ConversationCache.estimate`). It is planned by the
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
        tokens: Its length in device tokens, estimated (`count_prompt`).
        tokens_per_char: Device tokens per character measured now on a sample, or ``None`` (not sampled).
        cached: The prompt tokens the device is estimated to find in its conversation cache.
    """

    tokens: int
    tokens_per_char: float | None
    cached: int = 0


def count_prompt(
    device: Device, prompt: str, tokens_per_char: float, *, learned: bool, cached: bool = True
) -> PromptCount:
    """Counts ``prompt`` for the plan without delaying the cloud request (module docstring).

    Args:
        device: The device.
        prompt: The prompt's text.
        tokens_per_char: The session's figure: learned from the device's count of earlier prompts when
            ``learned``, else a default.
        learned: Whether ``tokens_per_char`` was learned; when not, a sample of the prompt is tokenized
            by an idle device.
        cached: Estimate the tokens found in the conversation cache (the plan reads them with
            ``k="auto"``; with a fixed ``k`` the device finds its cached prefix itself when it starts).
    """
    # Ours, measured through SmolLM2's worker process on the shared 2-core development machine: a sample
    # of 1,024 characters takes about 1.2 ms to tokenize and a whole 8,000-character prompt about 8 ms, all
    # of it added to the first token when done before the cloud request leaves. The learned figure costs
    # nothing; the device counts the prompt exactly right after and the answer corrects its estimate then.
    measured = None
    found = 0
    with contextlib.suppress(DeviceFailedError):  # a worker dead since: its next call reports it
        if not learned and device.ready:
            sample = prompt[:TOKENIZE_SAMPLE_CHARS]
            measured = len(device.tokenize_idle(sample)) / max(len(sample), 1)
        if cached and device.conversations and device.ready:
            found = device.conversations.estimate(device.engine, prompt)
    per_char = tokens_per_char if measured is None else measured
    tokens = max(1, round(len(prompt) * per_char))
    return PromptCount(tokens, measured, max(0, min(found, tokens - 1)))
