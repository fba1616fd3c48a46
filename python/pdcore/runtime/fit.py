"""Fitting the cost model to what was measured (the rules are ours): least squares on relative error with
non-negative coefficients (`fit_relative`), the method the shipped profiles were fitted with.

- `fit_prefill`, `fit_decode`: the device profile's curves (``pdcore profile-device``,
  `pdcore.runtime.profiler`).
- `fit_iteration`: the cloud's iteration model (`pdcore._core.CloudCost`), the one cloud fit of both
  ``pdcore profile-cloud`` (`pdcore.runtime.cloud_profiler.fit_cloud_profile`) and ``pdcore validate``'s
  calibration (`pdcore.runtime.validate.fit_cloud`), over two kinds of rows at once:

  - first-token rows: ``TTFT - RTT = base * chunks + prefill_token * L + prefill_attn * L**2``, with
    ``chunks = ceil(L / max_tokens_per_iteration)`` (the first token comes after the last chunk). A
    ``cached`` prompt (a prefix cache holds it) costs no prefill: only ``base``;
  - decode rows, the median gap per (streams decoding, context in bins of 64 tokens a stream):
    ``gap = base + decode_seq * B + decode_context * sum(context)``.

  The server's handling of a request before its first step is folded into ``base``, unless it is fitted
  apart (``handling``: a first-token row then adds ``handling_s``, which ``pdcore validate`` adds to the
  one-way delay). Fitted apart, ``base`` is as large as both kinds of rows allow: ``decode_seq`` and
  ``handling_s`` are never both above zero (the shared fixed cost is the smaller of the two intercepts,
  each side keeps its own remainder).

  With the physics guard's floors (``floors``: `pdcore.profiles.cloud_tables.physics_floors` of the GPU and
  model measured), ``prefill_token_s`` is at least the FLOPs floor of a prefill token and ``base_s`` at least
  the time to read the weights once, so no fitted step is priced faster than the hardware allows (a fit held
  at a floor says so in `CloudFit.held`).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from pdcore.exceptions import InvalidInputError

__all__ = ["CloudFit", "fit_decode", "fit_iteration", "fit_prefill", "fit_relative"]

_TERMS = ((0, 1, 2), (1, 2), (0, 1), (0, 2), (1,), (2,), (0,))
"""The subsets of ``(1, n, n**2)`` `fit_prefill` tries, the fullest first."""

_DECODE_TERMS = ((0, 1), (0,), (1,))
"""The subsets of ``(1, n)`` `fit_decode` tries, the fullest first."""

_BASE, _PREFILL_TOKEN, _PREFILL_ATTN, _DECODE_SEQ, _DECODE_CONTEXT, _HANDLING = range(6)
"""The columns of `fit_iteration`'s rows."""

CONTEXT_BIN_TOKENS = 64
"""The width, per stream, of the context bins whose gaps `fit_iteration` takes the median of."""


def fit_relative(
    what: str,
    design: npt.ArrayLike,
    seconds: Sequence[float],
    subsets: Sequence[tuple[int, ...]],
    floors: Sequence[float] | None = None,
) -> list[float]:
    """Least squares on relative error of ``design @ c`` against ``seconds`` with every ``c[i] >= 0``: the
    unconstrained optimum of each subset of the columns, the best whose coefficients are all ``>= 0`` (the
    constrained optimum lies on a face where the negative ones are zero). The rule is ours; the shipped
    cloud profiles were fitted the same way. With ``floors`` (one per column) every ``c[i] >= floors[i]``
    instead: the same search over ``c - floors``, a column outside the subset held at its floor (and every
    column at its floor a candidate).

    Raises:
        InvalidInputError: No rows, rows and times of different sizes, or a time that is not a positive
            number.
    """
    matrix = np.asarray(design, dtype=np.float64)
    if matrix.ndim != 2 or not len(matrix) or len(matrix) != len(seconds):
        raise InvalidInputError(f"{what}: {len(matrix)} rows and {len(seconds)} times; pass one time per row")
    if any(not (math.isfinite(t) and t > 0) for t in seconds):
        raise InvalidInputError(f"{what}: times {list(seconds)!r}; each must be a positive number")
    t = np.asarray(seconds, dtype=np.float64)
    columns = matrix / t[:, None]
    floor = np.zeros(matrix.shape[1]) if floors is None else np.asarray(floors, dtype=np.float64)
    target = 1.0 - columns @ floor
    best: tuple[float, list[float]] | None = None
    if floors is not None:  # every coefficient at its floor is a candidate too
        best = (float(np.sum((columns @ floor - 1.0) ** 2)), [float(f) for f in floor])
    for terms in subsets:
        if len(terms) > len(t):
            continue
        solution, *_ = np.linalg.lstsq(columns[:, terms], target, rcond=None)
        if np.any(solution < 0.0) or not np.all(np.isfinite(solution)):
            continue
        full = [float(f) for f in floor]
        for term, value in zip(terms, solution, strict=True):
            full[term] += float(value)
        error = float(np.sum((columns @ np.asarray(full) - 1.0) ** 2))
        if best is None or error < best[0] - 1e-12:
            best = (error, full)
    if best is None:
        raise InvalidInputError(f"{what}: no non-negative fit of the measurements; fix: measure more points")
    return best[1]


def _fit_non_negative(
    what: str,
    lengths: Sequence[int],
    seconds: Sequence[float],
    degree: int,
    subsets: Sequence[tuple[int, ...]],
) -> list[float]:
    """`fit_relative` on the powers ``n**0 .. n**degree`` of the lengths."""
    if not lengths or len(lengths) != len(seconds):
        raise InvalidInputError(
            f"{what}: {len(lengths)} lengths and {len(seconds)} times; pass one time per length"
        )
    n = np.asarray(lengths, dtype=np.float64)
    return fit_relative(what, np.stack([n**power for power in range(degree + 1)], axis=1), seconds, subsets)


def fit_prefill(lengths: Sequence[int], seconds: Sequence[float]) -> tuple[float, float, float]:
    """The prefill curve ``c0 + c1 * n + c2 * n**2`` closest to the measured ``seconds`` in relative error,
    with every coefficient ``>= 0`` (`pdcore.runtime.profiler`; the rule is ours).

    Returns:
        ``(c0, c1, c2)``.

    Raises:
        InvalidInputError: No lengths, lengths and times of different sizes, or a time that is not a
            positive number.
    """
    c0, c1, c2 = _fit_non_negative("fit_prefill", lengths, seconds, 2, _TERMS)
    return c0, c1, c2


def fit_decode(contexts: Sequence[int], tpot_s: Sequence[float]) -> tuple[float, float]:
    """The decode curve ``d0 + d1 * n`` closest to the measured TPOT in relative error, with ``d0, d1 >= 0``
    (`pdcore.runtime.profiler`; the rule is ours): never falling with the context, positive wherever a
    point was measured.

    Returns:
        ``(d0, d1)``.

    Raises:
        InvalidInputError: No contexts, contexts and times of different sizes, or a time that is not a
            positive number.
    """
    d0, d1 = _fit_non_negative("fit_decode", contexts, tpot_s, 1, _DECODE_TERMS)
    return d0, d1


@dataclass(frozen=True)
class CloudFit:
    """The fitted iteration model and how well it fits.

    Attributes:
        base_s, prefill_token_s, prefill_attn_s, decode_seq_s, decode_context_s: The coefficients.
        max_tokens_per_iteration: The chunk size the prefill rows were fitted with.
        prefill_error: Largest relative error on the first-token rows.
        decode_error: Largest relative error on the decode rows (medians per batch and context).
        decode_rows: The decode rows: (streams decoding, sum of contexts, median gap).
        handling_s: The request's handling before its first step, when fitted apart from ``base_s``.
        held: The keys the physics guard's floors held up (the unconstrained fit priced them faster than
            the hardware allows), e.g. ``("prefill_token_s",)``.
    """

    base_s: float
    prefill_token_s: float
    prefill_attn_s: float
    decode_seq_s: float
    decode_context_s: float
    max_tokens_per_iteration: int
    prefill_error: float
    decode_error: float
    decode_rows: tuple[tuple[int, float, float], ...] = field(default=())
    handling_s: float = 0.0
    held: tuple[str, ...] = ()


def _subsets(*, cached: bool, handling: bool) -> tuple[tuple[int, ...], ...]:
    """The subsets of the columns `fit_iteration` tries, fullest first; each holds ``base`` (an iteration
    always costs something)."""
    count = 6 if handling else 5
    return tuple(
        terms
        for size in range(count, 0, -1)
        for terms in itertools.combinations(range(count), size)
        if _BASE in terms
        and not (cached and (_PREFILL_TOKEN in terms or _PREFILL_ATTN in terms))
        and not (_DECODE_SEQ in terms and _HANDLING in terms)
    )


def _decode_rows(gaps: Sequence[tuple[int, float, float]]) -> tuple[tuple[int, float, float], ...]:
    """The median gap (and context) per streams decoding and context bin."""
    groups: dict[tuple[int, int], list[float]] = {}
    contexts: dict[tuple[int, int], list[float]] = {}
    for batch, ctx, gap in gaps:
        if gap <= 0:
            continue
        key = (batch, int(ctx // (CONTEXT_BIN_TOKENS * batch)))
        groups.setdefault(key, []).append(gap)
        contexts.setdefault(key, []).append(ctx)
    return tuple(
        (key[0], statistics.median(contexts[key]), statistics.median(found))
        for key, found in sorted(groups.items())
    )


def fit_iteration(
    first_tokens: Sequence[tuple[int, float]],
    gaps: Sequence[tuple[int, float, float]],
    *,
    rtt_s: float,
    max_tokens_per_iteration: int = 512,
    cached: bool = False,
    handling: bool = False,
    what: str = "profile-cloud",
    source: str = "the endpoint",
    floors: tuple[float, float] | None = None,
) -> CloudFit:
    """Fits the cloud's iteration model (module docstring).

    Args:
        first_tokens: ``(prompt tokens, first token's arrival in seconds from sending)`` per request.
        gaps: ``(streams decoding, sum of their contexts, seconds)`` per inter-token gap.
        rtt_s: The round trip, taken off every first token.
        max_tokens_per_iteration: The server's prompt batch (the prefill's chunk size).
        cached: The prompts were in the server's prefix cache (no prefill cost).
        handling: Fit the request's handling before its first step apart from ``base_s``.
        what: The command named in errors.
        source: What was measured, named in errors.
        floors: The least ``prefill_token_s`` and ``base_s`` (seconds) the hardware allows, or None.

    Raises:
        InvalidInputError: No first-token time above the round trip, or no non-negative fit.
    """
    chunk = max_tokens_per_iteration
    if isinstance(chunk, bool) or chunk < 1:
        raise InvalidInputError(f"max_tokens_per_iteration = {chunk!r}; pass the server's prompt batch, >= 1")
    prefill_rows: list[list[float]] = []
    prefill_t: list[float] = []
    for tokens, first in first_tokens:
        handled = first - rtt_s
        if handled <= 0:
            continue
        chunks = 1 if cached else math.ceil(tokens / chunk)
        size = 0.0 if cached else float(tokens)
        prefill_rows.append([float(chunks), size, size**2, 0.0, 0.0, *([1.0] if handling else [])])
        prefill_t.append(handled)
    if not prefill_rows:
        raise InvalidInputError(
            f"every first-token time of {source} is within the round trip ({rtt_s * 1e3:.1f} ms); fix: "
            "measure longer prompts"
        )
    decode_rows = _decode_rows(gaps)
    extra = [0.0] if handling else []
    rows = prefill_rows + [[1.0, 0.0, 0.0, float(b), c, *extra] for b, c, _ in decode_rows]
    times = prefill_t + [g for _, _, g in decode_rows]
    subsets = _subsets(cached=cached, handling=handling)
    coef = fit_relative(what, rows, times, subsets)
    held: tuple[str, ...] = ()
    if floors is not None:
        least = [0.0] * len(rows[0])
        least[_PREFILL_TOKEN], least[_BASE] = (0.0 if cached else floors[0]), floors[1]
        held = tuple(
            key
            for key, column in (("prefill_token_s", _PREFILL_TOKEN), ("base_s", _BASE))
            if coef[column] < least[column]
        )
        coef = fit_relative(what, rows, times, subsets, least)
    predicted = np.asarray(rows) @ np.asarray(coef)
    relative = np.abs(predicted - np.asarray(times)) / np.asarray(times)
    n = len(prefill_rows)
    return CloudFit(
        base_s=coef[_BASE],
        prefill_token_s=coef[_PREFILL_TOKEN],
        prefill_attn_s=coef[_PREFILL_ATTN],
        decode_seq_s=coef[_DECODE_SEQ],
        decode_context_s=coef[_DECODE_CONTEXT],
        max_tokens_per_iteration=chunk,
        prefill_error=float(relative[:n].max()),
        decode_error=float(relative[n:].max()) if len(relative) > n else math.nan,
        decode_rows=decode_rows,
        handling_s=coef[_HANDLING] if handling else 0.0,
        held=held,
    )
