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
"""

from __future__ import annotations

import math

from pdcore.profiles.device import DeviceProfile

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
    """

    def __init__(
        self, profile: DeviceProfile | None, prompt_tokens: int, prompt_chars: int, prior_ratio: float = 1.0
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

    def observe_prompt(self, done: int, chunk: int, took: float) -> None:
        """A prompt chunk of ``chunk`` tokens, ending at ``done``, took ``took`` seconds."""
        self.actual_s += took
        self.predicted += self._prefill(done) - self._prefill(done - chunk)

    def observe_append(self, context: int, tokens: int, took: float) -> None:
        """``tokens`` received tokens appended at ``context`` took ``took`` seconds."""
        self.actual_s += took
        self.predicted += self._append(context, tokens)

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

    def estimate(self, now: float, prompt_done: int, context: int, tokens_left: int) -> float | None:
        """When the device will have prefilled the prompt and ``tokens_left`` more received tokens."""
        ratio = self.ratio
        if ratio is None:
            return None
        work = self._prefill(self.prompt_tokens) - self._prefill(prompt_done)
        work += self._append(context, tokens_left)
        return now + ratio * work
