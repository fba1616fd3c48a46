"""The arguments of the optimizer's public calls, checked where they enter, before the core sees them.

The core (`pdcore._core`) reads integers as 64-bit and floats as doubles: a bool would pass as 1, a str or
an integer beyond 64 bits would end in a ``TypeError`` or ``OverflowError`` from the binding. Each kind of
argument is checked here once, by `pdcore.limits`' strict parsers, and a bad one is an `InvalidInputError`
naming the argument, its range and the fix:

- token counts (a prompt, cached tokens): whole numbers from 0 (a prompt from 1) to
  `pdcore.limits.MAX_TOKENS`;
- seconds (a delay, the expected first token, a pace): finite, from 0 to `pdcore.limits.MAX_SLO_S` (a
  display gap above 0);
- refinement ratios: in (0, 1];
- ``max_k``: a whole number from 0 to `pdcore.limits.MAX_K`; replicas from 1 to
  `pdcore.limits.MAX_REPLICAS`.

numpy's integers and floats are read as Python's (a prompt length taken from an array is one).
"""

from __future__ import annotations

import numbers

from pdcore.limits import MAX_K, MAX_REPLICAS, MAX_SLO_S, MAX_TOKENS, check_float, check_int

__all__ = [
    "check_gap",
    "check_max_k",
    "check_refine_ratio",
    "check_replicas",
    "check_seconds",
    "check_tokens",
]


def _plain(value: object) -> object:
    """A numpy integer or float as Python's; anything else (a bool too) as given."""
    if isinstance(value, (int, float)):  # a bool is an int: check_int refuses it
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def check_tokens(value: object, name: str, *, minimum: int = 0) -> int:
    """A token count: a whole number from ``minimum`` to `pdcore.limits.MAX_TOKENS`."""
    return check_int(_plain(value), name, minimum=minimum, maximum=MAX_TOKENS, unit="tokens")


def check_seconds(value: object, name: str) -> float:
    """A time: finite seconds from 0 to `pdcore.limits.MAX_SLO_S`."""
    return check_float(_plain(value), name, minimum=0.0, maximum=MAX_SLO_S, unit="s")


def check_gap(value: object, name: str) -> float:
    """A display gap: finite seconds above 0, at most `pdcore.limits.MAX_SLO_S`."""
    return check_float(_plain(value), name, minimum=0.0, maximum=MAX_SLO_S, above_minimum=True, unit="s")


def check_refine_ratio(value: object, name: str = "refine_ratio") -> float:
    """A refinement ratio: the kept fraction of the prompt, in (0, 1]."""
    return check_float(_plain(value), name, minimum=0.0, maximum=1.0, above_minimum=True)


def check_max_k(value: object) -> int:
    """The cap on ``k``: a whole number from 0 to `pdcore.limits.MAX_K`."""
    return check_int(_plain(value), "max_k", minimum=0, maximum=MAX_K)


def check_replicas(value: object, name: str) -> int:
    """A count of replicas: a whole number from 1 to `pdcore.limits.MAX_REPLICAS`."""
    return check_int(_plain(value), name, minimum=1, maximum=MAX_REPLICAS)
