"""The hand-off estimate of a live request: when the device will have caught up with the cloud.

The device's remaining work is priced with its profile (`DeviceProfile`): the rest of the prompt
prefill, ``prefill_s(L) - prefill_s(done)``, plus the received tokens still to append, each model call at
``max(append_prefill_s(ctx, n), decode_tpot_s(ctx))`` (a call costs at least one decode step). That
prediction is scaled by the measured speed ratio, the time the device's work so far took over the time
the profile predicted for it, blended with a prior ratio at the weight of `PRIOR_WEIGHT_TOKENS` tokens of
prefill, so that one noisy chunk does not swing the estimate. Without a profile, work is counted in tokens
and the ratio becomes the measured seconds per token (no estimate until something was measured).

Cloud pieces are counted in device tokens at the ratio measured on the pieces appended so far; before the
first append, at the prompt's device tokens per character times the characters per piece received.

Between two progress reports the device is in the middle of a chunk: the time since the last report
(`HandoffEstimator.anchor_s`) is credited against that chunk's predicted cost, never more. Without the
credit, an estimate made mid-chunk (when a cloud token arrives or the cloud's stream ends) counts the
chunk in full from ``now`` and jumps later by up to one chunk's time, then falls back at the next report:
measured on a 512-token prompt, a one-revision jump of 0.8 s on a 4.6 s hand-off, which the speed
controller turned into a run of gaps at its ceiling. If the chunk overruns its predicted cost, the
overrun moves the estimate later, as it should. (The rule is ours.)

The speed controller is given the estimate plus a guard of one device decode step at the hand-off's
context (`HandoffEstimator.guard`; the simulator's rule too). The estimate is unbiased, so without a guard
the device is late for half the hand-offs: measured over 9 live requests, 2 hand-off gaps of 59 and 67 ms
against a 45 ms pace: the device was ready 14-22 ms after the buffer ran out (about one model
call). A buffer that
lasts a step longer only makes the device's first token wait that step; the cloud tokens still buffered
when the device is ready are shown at once.
"""

from __future__ import annotations

import math

from pdcore.profiles.device import DeviceProfile
from pdcore.runtime.device import DEFAULT_APPEND_CHUNK_TOKENS, DEFAULT_CHUNK_TOKENS

__all__ = ["PRIOR_WEIGHT_TOKENS", "HandoffEstimator"]

PRIOR_WEIGHT_TOKENS = 512
"""The weight of the prior speed ratio, in tokens of prompt prefill."""


class HandoffEstimator:
    """When the device will be ready to take over (module docstring).

    Args:
        profile: The device profile, or ``None`` (then the estimate is extrapolated from measurements).
        prompt_tokens: The prompt's length in device tokens.
        prompt_chars: The prompt's length in characters (device tokens per character, for cloud pieces).
        prior_ratio: The speed ratio assumed before anything is measured.
        started_at: When the device starts working on the prompt (clock seconds; the first anchor).
        prompt_chunk_tokens: Prompt tokens per model call (`Device.chunk_tokens`).
        append_chunk_tokens: Received tokens per model call (`Device.append_chunk_tokens`).
    """

    def __init__(
        self,
        profile: DeviceProfile | None,
        prompt_tokens: int,
        prompt_chars: int,
        prior_ratio: float = 1.0,
        *,
        started_at: float = 0.0,
        prompt_chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
        append_chunk_tokens: int = DEFAULT_APPEND_CHUNK_TOKENS,
    ) -> None:
        self.profile = profile
        self.prior_ratio = prior_ratio
        self.prior_weight = 0.0 if profile is None else float(profile.prefill_s(PRIOR_WEIGHT_TOKENS))
        self.prompt_tokens = prompt_tokens
        self.tokens_per_char = prompt_tokens / max(prompt_chars, 1)
        self.actual_s = 0.0
        self.predicted = 0.0
        self.pieces_appended = 0
        self.tokens_appended = 0
        self.anchor_s = started_at
        """When the device's last progress report came (or it started): the current chunk began then."""
        self.prompt_chunk_tokens = max(1, prompt_chunk_tokens)
        self.append_chunk_tokens = max(1, append_chunk_tokens)

    def _prefill(self, tokens: float) -> float:
        return float(self.profile.prefill_s(tokens)) if self.profile is not None else tokens

    def _append(self, context: int, tokens: int) -> float:
        if tokens <= 0:
            return 0.0
        if self.profile is None:
            return float(tokens)
        return max(
            float(self.profile.append_prefill_s(context, tokens)), float(self.profile.decode_tpot_s(context))
        )

    @property
    def ratio(self) -> float | None:
        """Measured time over profile-predicted time, blended with the prior ratio at the weight of
        `PRIOR_WEIGHT_TOKENS` tokens of prefill (so one noisy first chunk does not swing the estimate);
        ``None`` without a profile until something was measured."""
        if self.profile is None:
            return self.actual_s / self.predicted if self.predicted > 0.0 else None
        weight = self.prior_weight
        return (self.actual_s + self.prior_ratio * weight) / (self.predicted + weight)

    def observe_prompt(self, done: int, chunk: int, took: float, *, at: float) -> None:
        """A prompt chunk of ``chunk`` tokens, ending at ``done``, took ``took`` seconds (reported at
        ``at``)."""
        self.actual_s += took
        self.predicted += self._prefill(done) - self._prefill(done - chunk)
        self.anchor_s = at

    def observe_append(self, context: int, tokens: int, took: float, *, at: float) -> None:
        """``tokens`` received tokens appended at ``context`` took ``took`` seconds; reported at ``at``."""
        self.actual_s += took
        self.predicted += self._append(context, tokens)
        self.anchor_s = at

    def count_pieces(self, pieces: int, tokens: int) -> None:
        """``pieces`` cloud pieces came to ``tokens`` device tokens."""
        self.pieces_appended += pieces
        self.tokens_appended += tokens

    def tokens_for(self, pieces: int, chars_per_piece: float | None) -> int:
        """Device tokens for ``pieces`` cloud pieces: at the ratio measured once some were appended;
        before that, the characters of the pieces received so far at the prompt's tokens per character;
        one token per piece when nothing arrived."""
        if pieces <= 0:
            return 0
        if self.pieces_appended > 0 and self.tokens_appended > 0:
            per_piece = self.tokens_appended / self.pieces_appended
        elif chars_per_piece is None:
            per_piece = 1.0
        else:
            per_piece = max(1.0, chars_per_piece * self.tokens_per_char)
        return math.ceil(pieces * per_piece)

    def guard(self, context: int, tokens_left: int) -> float:
        """One device decode step at the hand-off's context, at the measured speed (module docstring); 0
        before anything is measured without a profile."""
        ratio = self.ratio
        if ratio is None:
            return 0.0
        if self.profile is None:
            return ratio
        return ratio * float(self.profile.decode_tpot_s(context + tokens_left))

    def estimate(self, now: float, prompt_done: int, context: int, tokens_left: int) -> float | None:
        """When the device will have prefilled the prompt and ``tokens_left`` more received tokens: the
        work left at the profile's prices times the speed ratio, less the time already spent on the current
        chunk (at most its own price; module docstring)."""
        ratio = self.ratio
        if ratio is None:
            return None
        work = self._prefill(self.prompt_tokens) - self._prefill(prompt_done)
        work += self._append(context, tokens_left)
        if prompt_done < self.prompt_tokens:
            end = min(prompt_done + self.prompt_chunk_tokens, self.prompt_tokens)
            current = self._prefill(end) - self._prefill(prompt_done)
        else:
            current = self._append(context, min(self.append_chunk_tokens, tokens_left))
        spent = min(max(0.0, now - self.anchor_s), ratio * current)
        return max(
            now, now + ratio * work - spent
        )  # never before now (float rounding when work is all spent)
