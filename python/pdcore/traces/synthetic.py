"""A seeded synthetic workload fitted to the Azure LLM inference trace 2023 (conversation).

The package ships no trace data: its default workload is drawn from distributions fitted to the published
statistics of that trace (19,366 requests over 3,502 s, 5.5 req/s; prompt p50/p90/p99 = 1020/2734/4142
tokens; output p50/p90/p99 = 129/424/601 tokens, mean 211).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pdcore.limits import MAX_RATE, MAX_REQUESTS, MAX_SEED, check_float, check_int
from pdcore.traces.conversations import derive_blocks
from pdcore.traces.workload import Workload

__all__ = [
    "LONG_ANSWER_TOKENS",
    "MULTI_TURN",
    "OUTPUT_LOGNORMAL",
    "PROMPT_LOGNORMAL",
    "TARGET_STATS",
    "synthetic_default",
    "synthetic_long_answer",
    "synthetic_multi_turn",
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


def _checked(seed: object, n_requests: object, rate_rps: object) -> tuple[int, int, float]:
    """A generator's arguments, checked where they enter: ``(n_requests, seed, rate_rps)``.

    ``n_requests`` is at most `pdcore.limits.MAX_REQUESTS` (10,000,000): a generator holds a few 8-byte
    columns per request (and the simulator more), so ten million requests already take about a gigabyte,
    and a mistyped count (``10**12`` would ask numpy for terabytes) is refused rather than allocated.

    Raises:
        InvalidInputError: Naming the argument, its range and the fix.
    """
    numbers = [int(v) if isinstance(v, np.integer) else v for v in (n_requests, seed)]
    count = check_int(numbers[0], "n_requests", minimum=1, maximum=MAX_REQUESTS, unit="requests")
    seed_value = check_int(numbers[1], "seed", minimum=0, maximum=MAX_SEED)
    rate = check_float(rate_rps, "rate_rps", minimum=0.0, maximum=MAX_RATE, above_minimum=True, unit="req/s")
    return count, seed_value, rate


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
        seed: Seed for ``np.random.default_rng``; an integer from 0 to 2**64 - 1.
        n_requests: Number of requests, 1 to 10,000,000 (`pdcore.limits.MAX_REQUESTS`: ten million
            requests take about a gigabyte, so a larger count is refused rather than allocated).
        rate_rps: Mean arrival rate in requests per second, finite, above 0 and at most 1,000,000.

    Returns:
        A workload named ``"synthetic-azure-conv"`` whose source records the seed, count and rate.

    Raises:
        InvalidInputError: An argument of the wrong type (a bool, a str) or out of its range, named with
            the fix.
    """
    count, seed, rate = _checked(seed, n_requests, rate_rps)
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0 / rate, size=count - 1)
    arrivals = np.concatenate(([0.0], np.cumsum(gaps)))
    prompts = _tokens(_truncated_lognormal(rng, count, *PROMPT_LOGNORMAL))
    outputs = _tokens(_truncated_lognormal(rng, count, *OUTPUT_LOGNORMAL))
    return Workload(
        name="synthetic-azure-conv",
        arrival_s=arrivals,
        prompt_tokens=prompts,
        output_tokens=outputs,
        source=f"synthetic:seed={seed},n_requests={count},rate_rps={rate:g}",
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
        seed: Seed for ``np.random.default_rng``; an integer from 0 to 2**64 - 1.
        n_requests: Number of requests, 1 to 10,000,000 (as `synthetic_default`).
        rate_rps: Mean arrival rate in requests per second, finite, above 0 and at most 1,000,000.

    Returns:
        A workload named ``"synthetic-long-answer"``.

    Raises:
        InvalidInputError: As `synthetic_default`.
    """
    count, seed, rate = _checked(seed, n_requests, rate_rps)
    base = synthetic_default(seed=seed, n_requests=count, rate_rps=rate)
    rng = np.random.default_rng([seed, 1])
    low, high = LONG_ANSWER_TOKENS
    outputs = rng.integers(low, high, size=len(base), endpoint=True, dtype=np.int64)
    return Workload(
        name="synthetic-long-answer",
        arrival_s=base.arrival_s,
        prompt_tokens=base.prompt_tokens,
        output_tokens=outputs,
        source=f"synthetic-long-answer:seed={seed},n_requests={count},rate_rps={rate:g}",
    )


MULTI_TURN: dict[str, float] = {
    "turns_mean": 2.0,
    "turns_max": 16,
    "message_tokens_mean": 69.5,
    "think_lognormal_mu": 4.878,
    "think_lognormal_sigma": 0.978,
    "block_tokens": 512,
}
"""The multi-turn synthetic default's parameters (`synthetic_multi_turn` says where each comes from)."""


def synthetic_multi_turn(*, seed: int = 0, n_requests: int = 2000, rate_rps: float = 5.5) -> Workload:
    """Draws a seeded multi-turn chat workload: sessions of several turns whose context grows.

    Parameters, and where they come from:

    - Turns per session: 1 + a geometric count with mean ``turns_mean`` = 2.0 turns, capped at 16. The mean
      is LMSYS-Chat-1M's 2.0 turns per conversation (Zheng et al., arXiv 2309.11998, Table 1); the
      geometric shape (most sessions have one turn, a long tail) is an assumption. For comparison, the
      Mooncake conversation trace, read with pdcore's follow-up rule, has 1.63 requests per session and 69%
      single-request sessions.
    - Think time, from one turn's arrival to the next: lognormal with mu = 4.878, sigma = 0.978 (median
      131 s), fitted (mean and standard deviation of the log) to the 4,658 request-to-follow-up gaps of the
      Mooncake conversation trace (median 123 s, p10 42 s, p90 483 s).
    - First turn: prompt and answer lengths as `synthetic_default` (fitted to the Azure 2023 conversation
      trace). Follow-up turn: a new answer from the same distribution and a new user message of
      exponentially distributed length with mean ``message_tokens_mean`` = 69.5 tokens (LMSYS-Chat-1M's
      mean tokens per user prompt, same table; the exponential shape is an assumption).
    - Context growth: a follow-up's prompt is the previous prompt + the previous answer + the new message,
      and it shares the previous prompt and answer with its parent (``shared_prefix_tokens``).
    - Sessions start as a Poisson process at ``rate_rps / turns_mean`` per second, so the request rate is
      ``rate_rps`` on average once sessions overlap (the rate ramps up over the first minutes as follow-ups
      join: over 2,000 requests at 5.5 req/s it averages about 3.8 req/s); the first ``n_requests``
      requests by arrival are kept (a session cut by that horizon keeps its earlier turns).
    - Cloud prefix blocks of 512 tokens are derived from the sessions (`pdcore.traces.conversations`).

    The draw is deterministic for a seed.

    Args:
        seed: Seed for ``np.random.default_rng``; an integer from 0 to 2**64 - 1.
        n_requests: Number of requests, 1 to 10,000,000 (as `synthetic_default`).
        rate_rps: Mean request rate, finite, above 0 and at most 1,000,000.

    Returns:
        A workload named ``"synthetic-multi-turn"``.

    Raises:
        InvalidInputError: As `synthetic_default`.
    """
    count, seed, rate = _checked(seed, n_requests, rate_rps)
    rng = np.random.default_rng([seed, 2])
    session, turn, arrival = _draw_sessions(rng, count, rate)
    total = len(turn)
    first_prompt = _tokens(_truncated_lognormal(rng, total, *PROMPT_LOGNORMAL))
    answers = _tokens(_truncated_lognormal(rng, total, *OUTPUT_LOGNORMAL))
    message = np.maximum(np.rint(rng.exponential(MULTI_TURN["message_tokens_mean"], size=total)), 1).astype(
        np.int64
    )
    prompts = np.empty(total, dtype=np.int64)
    shared = np.zeros(total, dtype=np.int64)
    for i in range(total):
        if turn[i] == 1:
            prompts[i] = first_prompt[i]
        else:
            shared[i] = prompts[i - 1] + answers[i - 1]
            prompts[i] = shared[i] + message[i]
    order = np.argsort(arrival, kind="stable")[:count]
    parent, shared_kept, session_kept = _kept_conversations(order, session, turn, shared)
    block_tokens = int(MULTI_TURN["block_tokens"])
    offsets, ids = derive_blocks(prompts[order], parent, shared_kept, block_tokens)
    arrivals = arrival[order]
    return Workload(
        name="synthetic-multi-turn",
        arrival_s=arrivals - arrivals[0],
        prompt_tokens=prompts[order],
        output_tokens=answers[order],
        source=f"synthetic-multi-turn:seed={seed},n_requests={count},rate_rps={rate:g}",
        session=session_kept,
        turn=turn[order],
        parent=parent,
        shared_prefix_tokens=shared_kept,
        block_offsets=offsets,
        block_ids=ids,
        block_tokens=block_tokens,
    )


def _draw_sessions(
    rng: np.random.Generator, count: int, rate_rps: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Draws ``count`` sessions of `MULTI_TURN` turns: each turn's session, turn number and arrival time."""
    turns_mean = MULTI_TURN["turns_mean"]
    session_rate = rate_rps / turns_mean
    # enough sessions that their requests cover count, whatever the draw
    sessions = count
    turns = np.minimum(1 + rng.geometric(1.0 / turns_mean, size=sessions) - 1, int(MULTI_TURN["turns_max"]))
    starts = np.concatenate(([0.0], np.cumsum(rng.exponential(1.0 / session_rate, size=sessions - 1))))
    total = int(turns.sum())
    session = np.repeat(np.arange(sessions, dtype=np.int64), turns)
    turn = np.concatenate([np.arange(1, t + 1, dtype=np.int64) for t in turns.tolist()])
    think = rng.lognormal(MULTI_TURN["think_lognormal_mu"], MULTI_TURN["think_lognormal_sigma"], size=total)
    think[turn == 1] = 0.0
    # arrival of each turn: its session's start plus the think times before it
    first_of = np.concatenate(([0], np.cumsum(turns)[:-1]))
    cumulative = np.cumsum(think)
    arrival: npt.NDArray[np.float64] = starts[session] + cumulative - cumulative[first_of][session]
    return session, turn, arrival


def _kept_conversations(
    order: npt.NDArray[np.intp],
    session: npt.NDArray[np.int64],
    turn: npt.NDArray[np.int64],
    shared: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The parent, shared prefix and session of the turns kept (``order``: their indices by arrival), with
    parents renumbered to the kept indices and sessions in order of first appearance."""
    total = len(turn)
    new_index = np.full(total, -1, dtype=np.int64)
    new_index[order] = np.arange(len(order))
    parent_old = np.where(turn > 1, np.arange(total) - 1, -1)[order]
    parent = np.where(parent_old >= 0, new_index[np.maximum(parent_old, 0)], -1)
    shared_kept = np.where(parent >= 0, shared[order], 0)
    # renumber sessions in order of first appearance
    _, first_seen = np.unique(session[order], return_index=True)
    rank = np.empty(len(first_seen), dtype=np.int64)
    rank[np.argsort(first_seen, kind="stable")] = np.arange(len(first_seen))
    session_kept = rank[np.unique(session[order], return_inverse=True)[1]]
    return parent, shared_kept, session_kept
