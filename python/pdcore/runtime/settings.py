"""The live session's settings: their defaults, the modes and the checks where they enter.

`pdcore.runtime.session.Session` takes these as keyword arguments; `check_settings` raises for a value out
of range or a mode without the side it needs, naming the fix.
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

from pdcore.exceptions import InvalidInputError
from pdcore.profiles.device import DeviceProfile
from pdcore.runtime.cloud import CloudClient
from pdcore.runtime.device import Device
from pdcore.runtime.request_state import MODES, Mode

__all__ = [
    "DEFAULT_K_MARGIN",
    "DEFAULT_MAX_EXTENSIONS",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_PACING_MARGIN_S",
    "DEFAULT_TOKENS_PER_CHAR",
    "OLD_MODES",
    "TOKENIZE_SAMPLE_CHARS",
    "answer_limit",
    "check_settings",
    "session_mode",
]

OLD_MODES: dict[str, Mode] = {"pd": "pd-device", "device": "device-only", "cloud": "cloud-only"}
"""The modes' names before they took the policies' names; accepted, with a warning, for one release."""


DEFAULT_MAX_TOKENS = 256
"""The longest answer, in output positions."""

DEFAULT_TOKENS_PER_CHAR = 0.25
"""Tokens per character of English text with a BPE vocabulary (about four characters a token), until the
session has tokenized a prompt."""

DEFAULT_K_MARGIN = 0.2
"""How much ``k="auto"`` pads the catch-up's ``k``: 20% more cloud tokens. The catch-up rule prices the
appended tokens with the profile's prefill curve, but a real engine pays more for them (they attend to the
whole prompt, and every call has a fixed cost), so the unpadded ``k`` leaves the device a little late for
the hand-off; a spare token costs the cloud one decode step."""

DEFAULT_MAX_EXTENSIONS = 4
"""Continuation requests per answer when the device turns out slower than the buffer covers. Each one is
sized by the hand-off estimate of its moment, which keeps moving while a slow device is measured; with two
allowed, a device running 1.5x slower than its profile (a cloud stand-in sharing its cores) ran out of them
and stalled 126-173 ms at the hand-off. A continuation is only sent when needed and re-uses the cloud's
cached prefix, so allowing more costs nothing when the device keeps to its profile."""

TOKENIZE_SAMPLE_CHARS = 1024
"""Characters of the prompt the device tokenizes before the cloud request leaves
(`pdcore.runtime.session`)."""

DEFAULT_PACING_MARGIN_S = 0.005
"""How much below ``max_tpot_s`` the controller paces, so that the operating system's timer latency (about a
millisecond, more on a loaded machine) does not push a displayed gap above ``max_tpot_s``."""


def session_mode(mode: str) -> Mode:
    """The mode named by ``mode``; an old name (`OLD_MODES`) gives its new one, with a DeprecationWarning.

    Raises:
        InvalidInputError: ``mode`` names no mode.
    """
    if mode in OLD_MODES:
        new = OLD_MODES[mode]
        warnings.warn(
            f"mode {mode!r} is now called {new!r}; the old name will be removed in the next release",
            DeprecationWarning,
            stacklevel=3,
        )
        return new
    for known in MODES:
        if mode == known:
            return known
    raise InvalidInputError(f"mode = {mode!r}; fix: use one of {', '.join(MODES)}")


def _whole(value: object, minimum: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= minimum


def answer_limit(max_tokens: object, ceiling: int) -> int:
    """An answer's longest length: the ``max_tokens`` it asks for (None: ``ceiling``, the session's) within
    ``ceiling``.

    Raises:
        InvalidInputError: ``max_tokens`` is not a whole number >= 1.
    """
    if max_tokens is None:
        return ceiling
    if not _whole(max_tokens, 1):
        raise InvalidInputError(f"max_tokens = {max_tokens!r}; fix: pass a whole number of tokens >= 1")
    assert isinstance(max_tokens, int)
    return min(max_tokens, ceiling)


def check_settings(
    mode: Mode,
    cloud: CloudClient | None,
    device: Device | None,
    device_profile: DeviceProfile | None,
    k: int | Literal["auto"],
    *,
    max_tpot_s: float,
    min_tpot_s: float,
    max_tokens: int,
    pacing_margin_s: float,
    k_margin: float,
    max_extensions: int,
) -> None:
    """Raises `InvalidInputError` for a setting out of range, or a mode without the side it needs."""
    if mode in ("pd-device", "cloud-only") and cloud is None:
        raise InvalidInputError(f"mode {mode!r} needs a cloud; fix: pass cloud=CloudClient(url)")
    if mode in ("pd-device", "device-only") and device is None:
        raise InvalidInputError(f"mode {mode!r} needs a device; fix: pass device=Device.llama(path)")
    if not (isinstance(min_tpot_s, (int, float)) and math.isfinite(min_tpot_s) and min_tpot_s >= 0):
        raise InvalidInputError(f"min_tpot_s = {min_tpot_s!r}; pass seconds >= 0")
    if not (isinstance(max_tpot_s, (int, float)) and math.isfinite(max_tpot_s) and max_tpot_s > min_tpot_s):
        raise InvalidInputError(
            f"max_tpot_s = {max_tpot_s!r}; pass seconds above min_tpot_s = {min_tpot_s!r}"
        )
    if not (
        isinstance(pacing_margin_s, (int, float))
        and math.isfinite(pacing_margin_s)
        and 0 <= pacing_margin_s < max_tpot_s - min_tpot_s
    ):
        raise InvalidInputError(
            f"pacing_margin_s = {pacing_margin_s!r}; pass seconds >= 0 and below max_tpot_s - min_tpot_s"
        )
    if not (isinstance(k_margin, (int, float)) and math.isfinite(k_margin) and k_margin >= 0):
        raise InvalidInputError(f"k_margin = {k_margin!r}; pass a fraction >= 0, e.g. 0.2")
    if not _whole(max_extensions, 0):
        raise InvalidInputError(f"max_extensions = {max_extensions!r}; pass a whole number, 0 or more")
    if not _whole(max_tokens, 1):
        raise InvalidInputError(f"max_tokens = {max_tokens!r}; pass a whole number, at least 1")
    if k == "auto":
        if mode == "pd-device" and device_profile is None:
            raise InvalidInputError(
                "k='auto' needs the device profile; fix: pass device_profile=... (e.g. from "
                "`pdcore profile-device`) or a fixed k"
            )
    elif not _whole(k, 0):
        raise InvalidInputError(f"k = {k!r}; pass a whole number of tokens >= 0 or 'auto'")
