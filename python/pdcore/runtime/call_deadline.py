"""How long one model call of a device in a worker process may take before it counts as a hang.

The rule (ours): `CALL_DEADLINE_FACTOR` times the profile's time for the call (``append_s(context,
tokens)``: a prefill chunk or a decode step) plus `CALL_DEADLINE_FLOOR_S`, so that a device ten times
slower than its profile on a loaded machine is slow, not hung. Without a profile,
`pdcore.runtime.worker.DEFAULT_CALL_DEADLINE_S`. Other calls (tokenize, reset, the greedy pick, the
conversation cache's saves and loads) get the floor. Past its deadline the worker is killed
(`pdcore.runtime.worker`).
"""

from __future__ import annotations

from pdcore.profiles.device import DeviceProfile
from pdcore.runtime.worker import DEFAULT_CALL_DEADLINE_S

__all__ = ["CALL_DEADLINE_FACTOR", "CALL_DEADLINE_FLOOR_S", "call_deadline_s"]

CALL_DEADLINE_FACTOR = 10.0
"""A model call's deadline is this many times the profile's time for it, plus `CALL_DEADLINE_FLOOR_S`."""

CALL_DEADLINE_FLOOR_S = 5.0
"""Seconds every model call in a worker process may take on top of its priced time."""


def call_deadline_s(
    profile: DeviceProfile | None,
    tokens: int,
    context: int,
    *,
    factor: float = CALL_DEADLINE_FACTOR,
    floor_s: float = CALL_DEADLINE_FLOOR_S,
) -> float:
    """The deadline of a model call evaluating ``tokens`` after ``context`` tokens (module docstring)."""
    if profile is None:
        return DEFAULT_CALL_DEADLINE_S
    return factor * float(profile.append_s(context, tokens)) + floor_s
