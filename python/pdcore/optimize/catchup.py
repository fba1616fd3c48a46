"""How many cloud tokens P/D-Device needs: the catch-up fixed point.

The paper (arXiv 2508.09035) has the cloud stream the first token plus ``k`` decode tokens, enough for
the device to catch up, but publishes no formula for ``k``. The rule below is pdcore's own.

Notation, all times in seconds from the request's arrival at the device:

- ``L`` the prompt length and ``L_r = max(1, ceil(r * L))`` the prompt the device prefills (``r`` the
  refine ratio; the simulator rounds the same way);
- ``F`` the arrival of the cloud's first token at the device, ``c`` the time between the cloud's tokens
  (token ``i`` arrives at ``F + i * c``), ``m`` the largest display gap (``max_tpot``);
- ``pre(x)`` the device's prefill time of ``x`` tokens and ``app(x, j) = max(pre(x + j) - pre(x),
  tpot(x))`` the time to prefill ``j`` tokens appended to ``x`` cached ones: the marginal prefill cost,
  but never less than one forward pass (a decode step), as in the simulator's device model;
- ``P = S + pre(L_r)`` when the device's prompt is prefilled, with ``S = 0``, or ``S = F`` when ``r < 1``
  (the refined prompt travels with the first token).

The cloud sends ``n = k + 1`` tokens. ``T(n)`` is when the device is ready with its own first token: from
``P`` it prefills, in one step, every token that has arrived and it has not prefilled yet, and repeats
until none is left (the simulator's catch-up). The buffer of ``n`` tokens, shown no faster than it
arrives and at most ``m`` apart, shows its last token by ``F + (n - 1) * d`` with ``d = max(m, c)``, so the
hand-off gap stays within ``m`` when::

    T(n) <= F + (n - 1) * d + m          (with c <= m:  T(n) <= F + n * m)

``k`` is ``n - 1`` for the smallest such ``n``, found by iterating ``n <- ceil((T(n) - F - m) / d) + 1``
from ``n = 1`` until it stops changing. ``T`` does not decrease with ``n`` (more tokens never finish
sooner), so the iterates increase and never pass the smallest solution: the iteration stops exactly
there.

Edge cases:

- Device alone: without refinement, if ``P < F`` the device's own first token comes before the cloud's,
  so the cloud is not needed (``k = 0`` and `CatchUp.device_alone`; the simulator would let the device
  answer alone too).
- Early catch-up: if the device prefills every arrived token before the ``n``-th arrives, it takes over
  then and the rest of the stream is cancelled; ``T(n)`` is that time, which meets the condition.
- No fixed point: when appending costs the device at least ``d`` per token for every longer prefix (its
  prefill slope is not below the display pace), it never catches up with a paced stream. The iteration
  then passes ``max_k + 1`` and the result is ``k = max_k`` with `CatchUp.converged` false: the cloud
  streams (nearly) the whole answer, as cloud-only would.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

from pdcore.exceptions import InvalidInputError
from pdcore.profiles.cloud import CloudProfile
from pdcore.profiles.device import DeviceProfile

__all__ = [
    "DEFAULT_MAX_K",
    "CatchUp",
    "catchup_k",
    "cloud_decode_step_s",
    "cloud_prefill_s",
    "refined_prompt_tokens",
    "solve_catchup",
]

DEFAULT_MAX_K = 4096
"""The cap on ``k``: above the longest outputs of the shipped traces, so a capped plan is cloud-only."""

_EPS = 1e-9
"""Slack in the ceiling, so times equal to a multiple of the pace up to float rounding count as equal."""


@dataclass(frozen=True, slots=True)
class CatchUp:
    """The solution of the catch-up fixed point.

    Attributes:
        k: Cloud decode tokens after the first (``n - 1``).
        device_alone: The device's own first token comes no later than the cloud's (``k`` is 0).
        converged: False when there is no fixed point up to ``max_k`` (``k`` is then ``max_k``).
        device_ready_s: ``T(k + 1)``: when the device's first own token is ready, seconds from arrival
            (``P`` when ``device_alone``).
        iterations: Fixed-point iterations run.
    """

    k: int
    device_alone: bool
    converged: bool
    device_ready_s: float
    iterations: int


class _DeviceCurves:
    """The device model for one scalar at a time, without numpy: `DeviceProfile`'s piecewise-linear rules
    plus the simulator's one-forward-pass floor on an append."""

    __slots__ = ("_p_slopes", "_p_xs", "_p_ys", "_t_slopes", "_t_xs", "_t_ys")

    def __init__(self, device: DeviceProfile) -> None:
        self._p_xs = (0.0, *device.prefill_tokens)
        self._p_ys = (0.0, *device.prefill_seconds)
        self._p_slopes = _slopes(self._p_xs, self._p_ys)
        self._t_xs = device.decode_context_tokens
        self._t_ys = device.decode_tpot
        slopes = _slopes(self._t_xs, self._t_ys)
        # held flat below the first point; beyond the last, the last slope but never decreasing
        self._t_slopes = (*slopes[:-1], max(slopes[-1], 0.0)) if slopes else (0.0,)

    def prefill(self, tokens: float) -> float:
        segment = min(bisect_right(self._p_xs, tokens) - 1, len(self._p_slopes) - 1)
        return self._p_ys[segment] + self._p_slopes[segment] * (tokens - self._p_xs[segment])

    def tpot(self, context: float) -> float:
        if context <= self._t_xs[0]:
            return self._t_ys[0]
        segment = min(bisect_right(self._t_xs, context) - 1, len(self._t_slopes) - 1)
        return self._t_ys[segment] + self._t_slopes[segment] * (context - self._t_xs[segment])

    def append(self, context: float, new: float) -> float:
        return max(self.prefill(context + new) - self.prefill(context), self.tpot(context))


def _slopes(xs: tuple[float, ...], ys: tuple[float, ...]) -> tuple[float, ...]:
    return tuple((y1 - y0) / (x1 - x0) for x0, x1, y0, y1 in zip(xs, xs[1:], ys, ys[1:], strict=False))


@lru_cache(maxsize=32)
def _curves(device: DeviceProfile) -> _DeviceCurves:
    return _DeviceCurves(device)


def refined_prompt_tokens(prompt_tokens: int, refine_ratio: float) -> int:
    """The prompt length the device prefills, ``max(1, ceil(r * L))``, as the simulator computes it."""
    return max(1, math.ceil(prompt_tokens * refine_ratio))


def cloud_prefill_s(prompt_tokens: int, cloud: CloudProfile) -> float:
    """The cloud's prefill time of a prompt alone on an idle replica, in seconds.

    The prompt is prefilled in chunks of ``max_tokens_per_iteration``; a chunk of ``c`` tokens after ``o``
    already prefilled costs ``base_s + prefill_token_s * c + prefill_attn_s * ((o + c)**2 - o**2)``, the
    simulator's iteration model with nothing else in the batch (the attention term of a whole prompt is
    ``prefill_attn_s * L**2`` however it is chunked). The first token is emitted at the end of the last
    chunk.
    """
    budget = cloud.max_tokens_per_iteration
    total = 0.0
    done = 0
    while done < prompt_tokens:
        chunk = min(prompt_tokens - done, budget)
        total += (
            cloud.base_s + cloud.prefill_token_s * chunk + cloud.prefill_attn_s * chunk * (2 * done + chunk)
        )
        done += chunk
    return total


def cloud_decode_step_s(context_tokens: int, cloud: CloudProfile) -> float:
    """The cloud's time per decode token for one sequence alone on an idle replica, in seconds."""
    return cloud.base_s + cloud.decode_seq_s + cloud.decode_context_s * context_tokens


def _check(
    *,
    prompt_tokens: int,
    first_token_s: float,
    max_tpot: float,
    refine_ratio: float,
    cloud_tpot_s: float,
    max_k: int,
) -> None:
    if isinstance(prompt_tokens, bool) or not isinstance(prompt_tokens, int) or prompt_tokens < 1:
        raise InvalidInputError(
            f"prompt_tokens = {prompt_tokens!r}; pass a whole number of tokens, at least 1"
        )
    if not (math.isfinite(first_token_s) and first_token_s >= 0.0):
        raise InvalidInputError(
            f"first_token_s = {first_token_s!r}; pass the expected arrival of the cloud's first token, "
            "finite seconds >= 0"
        )
    if not (math.isfinite(max_tpot) and max_tpot > 0.0):
        raise InvalidInputError(f"max_tpot = {max_tpot!r}; pass the largest display gap, finite seconds > 0")
    if not (math.isfinite(refine_ratio) and 0.0 < refine_ratio <= 1.0):
        raise InvalidInputError(
            f"refine_ratio = {refine_ratio!r}; pass the kept fraction of the prompt in (0, 1]"
        )
    if not (math.isfinite(cloud_tpot_s) and cloud_tpot_s >= 0.0):
        raise InvalidInputError(
            f"cloud_tpot_s = {cloud_tpot_s!r}; pass the cloud's time between tokens, finite seconds >= 0"
        )
    if isinstance(max_k, bool) or not isinstance(max_k, int) or max_k < 0:
        raise InvalidInputError(f"max_k = {max_k!r}; pass a whole number of tokens, 0 or more")


def solve_catchup(
    prompt_tokens: int,
    *,
    device: DeviceProfile,
    first_token_s: float,
    max_tpot: float,
    refine_ratio: float = 1.0,
    cloud_tpot_s: float = 0.0,
    max_k: int = DEFAULT_MAX_K,
) -> CatchUp:
    """Solves the catch-up fixed point (module docstring) and reports how.

    Args:
        prompt_tokens: Prompt length ``L``, at least 1.
        device: The device's speed profile.
        first_token_s: ``F``, the expected arrival of the cloud's first token at the device, seconds from
            the request's arrival.
        max_tpot: ``m``, the largest display gap, seconds.
        refine_ratio: ``r`` in (0, 1]; below 1 the device starts prefilling at ``F``.
        cloud_tpot_s: ``c``, the cloud's time between streamed tokens; 0 treats the stream as arriving at
            once.
        max_k: The cap on ``k``.

    Returns:
        The solution.

    Raises:
        InvalidInputError: An argument is out of range.
    """
    _check(
        prompt_tokens=prompt_tokens,
        first_token_s=first_token_s,
        max_tpot=max_tpot,
        refine_ratio=refine_ratio,
        cloud_tpot_s=cloud_tpot_s,
        max_k=max_k,
    )
    curves = _curves(device)
    refined = refined_prompt_tokens(prompt_tokens, refine_ratio)
    start = first_token_s if refine_ratio < 1.0 else 0.0
    prompt_done = start + curves.prefill(refined)
    if refine_ratio >= 1.0 and prompt_done < first_token_s:
        return CatchUp(k=0, device_alone=True, converged=True, device_ready_s=prompt_done, iterations=0)

    pace = max(max_tpot, cloud_tpot_s)

    def ready(n: int) -> float:
        """T(n): prefill what has arrived, step by step, until nothing new has."""
        t = prompt_done
        done = 0
        while True:
            if cloud_tpot_s <= 0.0:
                arrived = n
            else:
                arrived = min(n, int((t - first_token_s + _EPS) // cloud_tpot_s) + 1)
            if arrived <= done:
                return t
            t += curves.append(refined + done, arrived - done)
            done = arrived

    n = 1
    iterations = 0
    while True:
        iterations += 1
        t = ready(n)
        needed = max(1, math.ceil((t - first_token_s - max_tpot) / pace - _EPS) + 1)
        if needed <= n:
            return CatchUp(
                k=n - 1, device_alone=False, converged=True, device_ready_s=t, iterations=iterations
            )
        if needed > max_k + 1:
            return CatchUp(
                k=max_k,
                device_alone=False,
                converged=False,
                device_ready_s=ready(max_k + 1),
                iterations=iterations,
            )
        n = needed


def catchup_k(
    prompt_tokens: int,
    *,
    device: DeviceProfile,
    first_token_s: float,
    max_tpot: float,
    refine_ratio: float = 1.0,
    cloud_tpot_s: float = 0.0,
    max_k: int = DEFAULT_MAX_K,
) -> int:
    """The smallest ``k`` with which the device catches up within the display pace (module docstring).

    Returns 0 when the device alone is faster, and ``max_k`` when there is no fixed point up to it; use
    `solve_catchup` to tell these cases apart.

    Example:
        >>> from pdcore.profiles.device import DeviceProfile
        >>> phone = DeviceProfile(
        ...     name="toy", description="1 ms per prompt token", hardware="-", model="-", engine="-",
        ...     prefill_tokens=(1000.0,), prefill_seconds=(1.0,), decode_context_tokens=(0.0,),
        ...     decode_tpot=(0.02,), citation="-", notes="-")
        >>> # the smallest n with 1.0 + max(0.001 * n, 0.02) <= 0.2 + 0.05 * n is 17
        >>> catchup_k(1000, device=phone, first_token_s=0.2, max_tpot=0.05)
        16
    """
    return solve_catchup(
        prompt_tokens,
        device=device,
        first_token_s=first_token_s,
        max_tpot=max_tpot,
        refine_ratio=refine_ratio,
        cloud_tpot_s=cloud_tpot_s,
        max_k=max_k,
    ).k
