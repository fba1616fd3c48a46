"""The hand-off estimate of a live request: when the device will have caught up with the cloud.

The estimator is the cost model's (`pdcore._core.HandoffEstimator`, the Rust crate's ``cost::handoff``,
which also holds the simulator's estimate and the guard both use): the device's remaining work priced by
its profile (`DeviceProfile.cost`), scaled by the measured speed ratio blended with a prior at the weight
of `PRIOR_WEIGHT_TOKENS` tokens of prefill; the chunk under way credited with the time already spent on
it, up to its price; and a guard of `LIVE_GUARD_STEPS` (two) device decode steps at the hand-off's
context plus `SPREAD_Z` of the device's learned spreads of its exposed calls added to what the speed
controller is given. Without a profile, work is counted in tokens and
the ratio becomes the measured seconds per token. The reasons and the measurements behind each rule are
in that module's documentation.

Cloud pieces are counted in device tokens at the ratio measured on the pieces appended so far; before the
first append, at the prompt's device tokens per character times the characters per piece received.
"""

from __future__ import annotations

from pdcore._core import PRIOR_WEIGHT_TOKENS
from pdcore._core import HandoffEstimator as _HandoffEstimator
from pdcore.profiles.device import DeviceProfile
from pdcore.runtime.device import DEFAULT_APPEND_CHUNK_TOKENS, DEFAULT_CHUNK_TOKENS

__all__ = ["PRIOR_WEIGHT_TOKENS", "HandoffEstimator"]


class HandoffEstimator(_HandoffEstimator):
    """When the device will be ready to take over (module docstring).

    Args:
        profile: The device profile, or ``None`` (then the estimate is extrapolated from measurements).
        prompt_tokens: The prompt's length in device tokens.
        prompt_chars: The prompt's length in characters (device tokens per character, for cloud pieces).
        prior_ratio: The speed ratio assumed before anything is measured.
        started_at: When the device starts working on the prompt (clock seconds; the first anchor).
        prompt_chunk_tokens: Prompt tokens per model call (`Device.chunk_tokens`).
        append_chunk_tokens: Received tokens per model call (`Device.append_chunk_tokens`).
        prior_spread: The relative spread of a call's time assumed before anything is measured.
    """

    profile: DeviceProfile | None

    def __new__(
        cls,
        profile: DeviceProfile | None,
        prompt_tokens: int,
        prompt_chars: int,
        prior_ratio: float = 1.0,
        *,
        started_at: float = 0.0,
        prompt_chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
        append_chunk_tokens: int = DEFAULT_APPEND_CHUNK_TOKENS,
        prior_spread: float = 0.0,
    ) -> HandoffEstimator:
        self = super().__new__(
            cls,
            None if profile is None else profile.cost,
            prompt_tokens,
            prompt_chars,
            prior_ratio,
            started_at=started_at,
            prompt_chunk_tokens=prompt_chunk_tokens,
            append_chunk_tokens=append_chunk_tokens,
            prior_spread=prior_spread,
        )
        self.profile = profile
        return self
