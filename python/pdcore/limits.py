"""The limits every number is checked against where it enters pdcore, and the strict parsers that do it.

Every value read from a trace, a profile, a quality curve, a policy setting or a command-line flag is parsed
strictly and range-checked here, at the edge, so that nothing past it can overflow a 64-bit integer,
saturate the simulator's nanosecond clock, or be read the wrong way (``"false"`` is not true). Errors are
`InvalidInputError` (or `ProfileError` for profiles) naming the input and the fix. The same table is in
``docs/limits.md``.

========================  ==========================  ===================================================
what                      limit                       why
========================  ==========================  ===================================================
prompt / output tokens    1 .. 100,000,000 a request  10x the longest context any model offers
trace span                0 .. 100,000,000 s          about three years; arrivals stay exact in float64
requests                  1 .. 10,000,000             ``--requests``, ``--limit``, ``--capacity-window``
replicas (each pool)      1 .. 4,096                  ``--replicas``, ``--prefill-replicas``, ...
``k`` (policy setting)    0 .. 100,000,000            at most the longest output
profile seconds           0 .. 3,600 each value       an hour per measured point or coefficient
profile time coefficients 0 .. its physical bound     `PROFILE_TIME_BOUNDS`: what hardware can take
profile integers          1 .. 1,000,000,000          batch, tokens per iteration, KV tokens and bytes
objectives (SLO) seconds  (0, 3,600]                  ``--ttft-slo``, ``--max-tpot``
rates, rate scale         (0, 1,000,000]              req/s and replay speed-up
seed                      0 .. 2**64 - 1              the generator's seed width
simulated time            up to 1,000,000,000 s       the clock is int64 ns (2**63 ns is about 9.2e9 s)
========================  ==========================  ===================================================

Profile time coefficients are bounded by what hardware can physically take (the native core's
``TIME_BOUNDS``, generous by orders of magnitude but finite), so an absurd value (an hour to write one token
of KV cache) is refused with its key instead of being priced:

========================================  ===================  ============================================
key                                       limit                why
========================================  ===================  ============================================
``[iteration] base_s``                    10 s                 one pass over the weights: about 1 s on a CPU
``[iteration] prefill_token_s``           10 s                 a CPU prefills a 70B model at ~10 tokens/s
``[iteration] prefill_knee_token_s``      10 s                 below the knee a token shares one weight pass
``[iteration] prefill_attn_s``            0.01 s               a query-key pair: milliseconds on a CPU core
``[iteration] decode_seq_s``              10 s                 a decode step: one pass over the weights
``[iteration] decode_context_s``          0.01 s               reading one token's KV cache: ~1 ms on a CPU
``[kv_transfer] write_token_s``           1 s per token        writing one token's KV: milliseconds on a disk
``[prefill] seconds``                     10 s per token       each point's time over its prompt tokens
``[decode] tpot_s``                       10 s a step          each point: one pass over the weights
========================================  ===================  ============================================

A time the simulator computes beyond its clock (a valid but extreme combination of prices and lengths) is
an error naming the request and what was priced, never a saturated figure.

Booleans are ``true/false``, ``yes/no``, ``on/off`` or ``1/0`` (any case); anything else is an error.
"""

from __future__ import annotations

import math
from typing import Any

from pdcore._core import CLOCK_LIMIT_S, TIME_BOUNDS
from pdcore.exceptions import InvalidInputError

__all__ = [
    "LIMITS_DOC",
    "MAX_K",
    "MAX_PROFILE_INT",
    "MAX_PROFILE_SECONDS",
    "MAX_RATE",
    "MAX_REPLICAS",
    "MAX_REQUESTS",
    "MAX_SEED",
    "MAX_SIM_TIME_S",
    "MAX_SLO_S",
    "MAX_TOKENS",
    "MAX_TRACE_SPAN_S",
    "PROFILE_TIME_BOUNDS",
    "check_float",
    "check_int",
    "parse_bool",
    "time_bound",
]

LIMITS_DOC = "docs/limits.md"
"""Where the limits are documented for users; every range error points there."""

MAX_TOKENS = 100_000_000
"""Largest prompt or output of one request, in tokens."""

MAX_TRACE_SPAN_S = 100_000_000.0
"""Largest time between a trace's first and last arrival, in seconds."""

MAX_REQUESTS = 10_000_000
"""Most requests in a synthetic workload, a ``--limit`` or a capacity window."""

MAX_REPLICAS = 4096
"""Most replicas in one pool of the simulated cloud."""

MAX_K = MAX_TOKENS
"""Largest explicit ``k`` (cloud decode tokens after the first)."""

MAX_PROFILE_SECONDS = 3600.0
"""Largest time in a profile: one measured point or one per-token coefficient, in seconds."""

MAX_PROFILE_INT = 1_000_000_000
"""Largest integer in a profile (batch size, tokens per iteration, KV cache tokens, KV bytes per token)."""

MAX_SLO_S = 3600.0
"""Largest latency objective, in seconds."""

MAX_RATE = 1_000_000.0
"""Largest arrival rate (req/s) and replay speed-up."""

MAX_SEED = 2**64 - 1
"""Largest seed."""

MAX_SIM_TIME_S: float = CLOCK_LIMIT_S
"""Largest simulated time a run may reach (1e9 s): the clock is int64 nanoseconds (2**63 ns is about
9.2e9 s); the simulator refuses a time beyond it where it is priced."""

PROFILE_TIME_BOUNDS: tuple[tuple[str, float, str], ...] = TIME_BOUNDS
"""The largest value of each profile time coefficient as ``(profile key, seconds, why)`` (the module
docstring's second table); the native core checks them, `time_bound` reads one."""

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def time_bound(key: str) -> float:
    """The largest value of the profile time coefficient ``key`` (e.g. ``"[iteration] base_s"``), seconds.

    Raises:
        KeyError: ``key`` has no bound.
    """
    for bound_key, max_s, _ in PROFILE_TIME_BOUNDS:
        if bound_key == key:
            return max_s
    raise KeyError(key)


def parse_bool(value: Any, where: str) -> bool:
    """Reads a boolean strictly: a bool, or ``true/false``, ``yes/no``, ``on/off``, ``1/0`` in any case.

    Raises:
        InvalidInputError: Anything else, naming ``where``.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    elif isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise InvalidInputError(
        f"{where} = {value!r} is not a boolean; fix: write true or false (or yes/no, on/off, 1/0)"
    )


def check_int(value: Any, where: str, *, minimum: int, maximum: int, unit: str = "") -> int:
    """Returns ``value`` if it is an integer (not a bool) in ``[minimum, maximum]``.

    Raises:
        InvalidInputError: Naming ``where``, the range and ``docs/limits.md``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        integral = isinstance(value, float) and math.isfinite(value) and value == int(value)
        if not integral:
            raise InvalidInputError(f"{where} = {value!r} is not a whole number; fix: pass an integer")
        value = int(value)
    if not minimum <= value <= maximum:
        suffix = f" {unit}" if unit else ""
        raise InvalidInputError(
            f"{where} = {value} is out of range; fix: pass a whole number from {minimum:,} to "
            f"{maximum:,}{suffix} (limits: {LIMITS_DOC})"
        )
    return int(value)


def check_float(
    value: Any,
    where: str,
    *,
    minimum: float,
    maximum: float,
    above_minimum: bool = False,
    unit: str = "",
) -> float:
    """Returns ``value`` as a float if it is a finite real number in ``[minimum, maximum]``.

    ``above_minimum`` makes the lower end open: ``(minimum, maximum]``.

    Raises:
        InvalidInputError: Naming ``where``, the range and ``docs/limits.md``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(f"{where} = {value!r} is not a number; fix: pass a real number")
    number = float(value) if not isinstance(value, int) or abs(value) < 2**63 else math.inf
    low_ok = number > minimum if above_minimum else number >= minimum
    if not (math.isfinite(number) and low_ok and number <= maximum):
        bracket = "(" if above_minimum else "["
        suffix = f" {unit}" if unit else ""
        raise InvalidInputError(
            f"{where} = {value!r} is out of range; fix: pass a number in {bracket}{minimum:g}, {maximum:g}]"
            f"{suffix} (limits: {LIMITS_DOC})"
        )
    return number
