"""Perturbed profiles: one cost term of a cloud or device profile scaled by a factor (`scaled`).

The report's section on the cost model (`pdcore.report.cost_band`) reruns its headline figures with each
cost term scaled in turn, to show which conclusions hold when a term is off by a margin. A term is:

- for a cloud profile, one coefficient of its ``[iteration]`` model (`CLOUD_TERMS`:
  ``base_s``, ``prefill_token_s``, ``prefill_attn_s``, ``decode_seq_s``, ``decode_context_s``);
- for a device profile, one of its two measured curves (`DEVICE_TERMS`): ``prefill`` scales every
  prefill time, ``decode`` every decode TPOT, so the curve keeps its shape.

Rules: the scaled profile is a new object built through the profile's own constructor
(`dataclasses.replace`), so it is validated as any profile is and a profile the loader would refuse is
refused here too (`ProfileError`); nothing else changes, not its name, its source or its energy (energy
per token is a figure of its own, not derived from the times on load); the file it was read from is never
touched. A factor of exactly 1 returns a profile equal to the one given.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TypeVar

from pdcore.exceptions import InvalidInputError
from pdcore.profiles.cloud import CloudProfile
from pdcore.profiles.device import DeviceProfile

__all__ = ["CLOUD_TERMS", "DEVICE_TERMS", "MAX_FACTOR", "scaled", "terms_of"]

CLOUD_TERMS = ("base_s", "prefill_token_s", "prefill_attn_s", "decode_seq_s", "decode_context_s")
"""The cost terms of a cloud profile: the coefficients of its iteration model (`CloudProfile`)."""

DEVICE_TERMS = ("prefill", "decode")
"""The cost terms of a device profile: its prefill-time curve and its decode-TPOT curve."""

MAX_FACTOR = 100.0
"""The largest factor `scaled` takes (ours: a perturbation, not a different machine)."""

Profile = TypeVar("Profile", CloudProfile, DeviceProfile)


def terms_of(profile: CloudProfile | DeviceProfile) -> tuple[str, ...]:
    """The cost terms `scaled` can change on ``profile`` (`CLOUD_TERMS` or `DEVICE_TERMS`)."""
    return CLOUD_TERMS if isinstance(profile, CloudProfile) else DEVICE_TERMS


def _check_factor(factor: float) -> float:
    bad = isinstance(factor, bool) or not isinstance(factor, (int, float))
    if bad or not (0.0 < float(factor) <= MAX_FACTOR) or not math.isfinite(float(factor)):
        raise InvalidInputError(
            f"factor = {factor!r}; fix: pass a finite number above 0 and at most {MAX_FACTOR:g} "
            "(0.8 and 1.2 are 20% below and above the profile)"
        )
    return float(factor)


def scaled(profile: Profile, term: str, factor: float) -> Profile:
    """A copy of ``profile`` with one cost term multiplied by ``factor`` (module docstring).

    Args:
        profile: A cloud or device profile.
        term: One of `terms_of(profile)`.
        factor: The multiplier, finite, above 0 and at most `MAX_FACTOR`.

    Returns:
        A new profile of the same kind; with ``factor == 1`` it equals ``profile``.

    Raises:
        InvalidInputError: ``term`` is not a cost term of this kind of profile, or ``factor`` is out of
            range.
        ProfileError: The scaled profile breaks a rule every profile must keep (the message names the key).
    """
    if not isinstance(profile, (CloudProfile, DeviceProfile)):
        raise InvalidInputError(
            f"profile = {profile!r} is a {type(profile).__name__}; fix: pass a CloudProfile or a "
            "DeviceProfile (pdcore.profiles.load_cloud_profile, load_device_profile)"
        )
    known = terms_of(profile)
    if term not in known:
        kind = "cloud" if isinstance(profile, CloudProfile) else "device"
        raise InvalidInputError(
            f"term {term!r} is not a cost term of a {kind} profile; fix: pass one of {', '.join(known)}"
        )
    factor = _check_factor(factor)
    if factor == 1.0:
        return replace(profile)
    if isinstance(profile, CloudProfile):
        changed: Profile = replace(profile, **{term: getattr(profile, term) * factor})
        return changed
    if term == "prefill":
        prefill = tuple(value * factor for value in profile.prefill_seconds)
        slower: Profile = replace(profile, prefill_seconds=prefill)
        return slower
    decode = tuple(value * factor for value in profile.decode_tpot)
    moved: Profile = replace(profile, decode_tpot=decode)
    return moved
