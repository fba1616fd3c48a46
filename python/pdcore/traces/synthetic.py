"""A seeded synthetic workload fitted to the Azure LLM inference trace 2023 (conversation).

The package ships no trace data: its default workload is drawn from distributions fitted to the published
statistics of that trace (19,366 requests over 3,502 s, 5.5 req/s; prompt p50/p90/p99 = 1020/2734/4142
tokens; output p50/p90/p99 = 129/424/601 tokens, mean 211).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from pdcore.exceptions import InvalidInputError
from pdcore.traces.workload import Workload

__all__ = [
    "LONG_ANSWER_TOKENS",
    "OUTPUT_LOGNORMAL",
    "PROMPT_LOGNORMAL",
    "TARGET_STATS",
    "synthetic_default",
    "synthetic_long_answer",
]

PROMPT_LOGNORMAL: tuple[float, float, float] = (6.9952, 0.9004, 4430.0)
"""Prompt tokens: (mu, sigma, upper bound) of a lognormal truncated to (0, upper]."""

OUTPUT_LOGNORMAL: tuple[float, float, float] = (5.2275, 1.3475, 682.0)
"""Output tokens: (mu, sigma, upper bound) of a lognormal truncated to (0, upper]."""

TARGET_STATS: dict[str, float] = {
    "rate_rps": 5.5,
    "prompt_p50": 1020.0,
    "prompt_p90": 2734.0,
    "prompt_p99": 4142.0,
    "output_p50": 129.0,
    "output_p90": 424.0,
    "output_p99": 601.0,
    "output_mean": 211.0,
}
"""The Azure 2023 conversation-trace statistics the distributions were fitted to."""


def _truncated_lognormal(
    rng: np.random.Generator, n: int, mu: float, sigma: float, upper: float
) -> npt.NDArray[np.float64]:
    """Draws ``n`` values from a lognormal truncated to (0, upper] by rejection (acceptance > 80% here)."""
    out = np.empty(n, dtype=np.float64)
    filled = 0
    while filled < n:
        draw = rng.lognormal(mu, sigma, size=max(2 * (n - filled), 64))
        kept = draw[draw <= upper]
        take = min(len(kept), n - filled)
        out[filled : filled + take] = kept[:take]
        filled += take
    return out


def _tokens(values: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    return np.maximum(np.rint(values), 1.0).astype(np.int64)


def synthetic_default(*, seed: int = 0, n_requests: int = 2000, rate_rps: float = 5.5) -> Workload:
    """Draws a synthetic chat workload fitted to the Azure LLM inference trace 2023 (conversation).

    Distributions (prompt and output lengths are drawn independently; the trace's log-log correlation
    between them is below 0.1):

    - Prompt tokens: lognormal with mu = 6.9952, sigma = 0.9004, truncated to (0, 4430], rounded to the
      nearest integer and clamped to at least 1. Fitted by solving exactly the three quantile equations
      ``q_p = exp(mu + sigma * Phi^-1(p * Phi((ln U - mu) / sigma)))`` for p = 0.5, 0.9, 0.99 against the
      targets 1020, 2734 and 4142 (an untruncated lognormal through p50 and p90 would put p99 near 6,100:
      the trace's tail is lighter, hence the upper bound U). Fitted mean: 1,295 tokens.
    - Output tokens: lognormal with mu = 5.2275, sigma = 1.3475, truncated to (0, 682], rounded and clamped
      to at least 1. Four targets (p50 129, p90 424, p99 601, mean 211) and three parameters: the fit
      minimises the largest absolute log error (a minimax fit), which leaves p50/p90/p99 at 140/460/652
      (+8.6% each) and the mean at 194 (-7.9%). The trace's output lengths are bimodal (one cluster near 100
      tokens, another near 400), which no unimodal family reproduces more closely; a least-squares fit
      instead trades a 12% low mean for quantiles within 6%.
    - Arrivals: a Poisson process at ``rate_rps`` (exponential inter-arrival gaps), the first request at
      t = 0. The trace's inter-arrival coefficient of variation is about 1.1, close to the exponential's 1;
      its minute-scale rate drift is not modelled.

    The draw is deterministic for a seed: gaps, then prompts, then outputs, all from
    ``np.random.default_rng(seed)``.

    Args:
        seed: Seed for ``np.random.default_rng``; a non-negative integer.
        n_requests: Number of requests, at least 1.
        rate_rps: Mean arrival rate in requests per second, finite and greater than 0.

    Returns:
        A workload named ``"synthetic-azure-conv"`` whose source records the seed, count and rate.

    Raises:
        InvalidInputError: ``seed`` is negative or not an integer, ``n_requests`` is below 1, or
            ``rate_rps`` is not a finite number greater than 0.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidInputError(f"--seed must be a non-negative integer, got {seed!r}; pass e.g. 0")
    if isinstance(n_requests, bool) or not isinstance(n_requests, (int, np.integer)) or n_requests < 1:
        raise InvalidInputError(
            f"--requests must be a whole number of at least 1, got {n_requests!r}; pass e.g. 2000"
        )
    try:
        rate = float(rate_rps)
    except (TypeError, ValueError):
        rate = math.nan
    if not math.isfinite(rate) or rate <= 0.0:
        raise InvalidInputError(
            f"--rate must be a finite number of requests per second greater than 0, got {rate_rps!r}; "
            "pass e.g. 5.5"
        )
    count = int(n_requests)
    rng = np.random.default_rng(int(seed))
    gaps = rng.exponential(1.0 / rate, size=count - 1)
    arrivals = np.concatenate(([0.0], np.cumsum(gaps)))
    prompts = _tokens(_truncated_lognormal(rng, count, *PROMPT_LOGNORMAL))
    outputs = _tokens(_truncated_lognormal(rng, count, *OUTPUT_LOGNORMAL))
    return Workload(
        name="synthetic-azure-conv",
        arrival_s=arrivals,
        prompt_tokens=prompts,
        output_tokens=outputs,
        source=f"synthetic:seed={int(seed)},n_requests={count},rate_rps={rate:g}",
    )


LONG_ANSWER_TOKENS: tuple[int, int] = (1000, 4000)
"""Answer lengths of the long-answer workload: uniform over this closed range of tokens."""


def synthetic_long_answer(*, seed: int = 0, n_requests: int = 2000, rate_rps: float = 1.0) -> Workload:
    """Draws a seeded long-answer workload: the conversation prompts with reasoning-length answers.

    Prompts and arrivals are drawn as in `synthetic_default` (the same generator, in the same order);
    answers are then replaced by draws uniform over `LONG_ANSWER_TOKENS` (1,000 to 4,000 tokens), the range
    of a reasoning model's answer with its thinking tokens. The range is an assumption stated here, not a
    fit to a published trace. Long answers make the decode phase the larger part of a cloud-only
    request's GPU time, which is where P/D-Device's whole-cloud gain can grow.

    Args:
        seed: Seed for ``np.random.default_rng``; a non-negative integer.
        n_requests: Number of requests, at least 1.
        rate_rps: Mean arrival rate in requests per second, finite and greater than 0.

    Returns:
        A workload named ``"synthetic-long-answer"``.

    Raises:
        InvalidInputError: As `synthetic_default`.
    """
    base = synthetic_default(seed=seed, n_requests=n_requests, rate_rps=rate_rps)
    rng = np.random.default_rng([int(seed), 1])
    low, high = LONG_ANSWER_TOKENS
    outputs = rng.integers(low, high, size=len(base), endpoint=True, dtype=np.int64)
    return Workload(
        name="synthetic-long-answer",
        arrival_s=base.arrival_s,
        prompt_tokens=base.prompt_tokens,
        output_tokens=outputs,
        source=f"synthetic-long-answer:seed={int(seed)},n_requests={len(base)},rate_rps={float(rate_rps):g}",
    )
