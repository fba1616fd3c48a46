"""The native core of pdcore, compiled from ``rust/src`` (PyO3).

Times cross this boundary as float seconds and are kept inside as integer nanoseconds: every float is
checked (finite, ``0 <= t <= 9.2e6`` s) and rounded to the nearest nanosecond, so schedules are exact and
runs are reproducible bit for bit. Every error raised on purpose derives from :class:`PdcoreError`; bad
arguments raise :class:`InvalidInputError` (also a ``ValueError``) and calls the object's state does not
allow raise :class:`InvalidStateError` (also a ``RuntimeError``). Messages name the argument, the index
for array arguments, and the fix.
"""

from typing import Any, final

import numpy as np
import numpy.typing as npt
from typing_extensions import Self, deprecated, disjoint_base

__all__ = [
    "CLOCK_LIMIT_S",
    "DECODED_AT",
    "DEFAULT_K_SITES",
    "DEFAULT_MAX_K",
    "DEFAULT_MAX_TPOT_S",
    "DEPLOYMENTS",
    "DEVICE_BUSY",
    "GAP_SLACK_S",
    "K_SITES",
    "LIVE_GUARD_STEPS",
    "MAX_STEP_SPREAD",
    "MODES",
    "PRIOR_SPREAD_CALLS",
    "PRIOR_WEIGHT_TOKENS",
    "ROUTER_BUCKETS",
    "SERVED_BY",
    "SPREAD_Z",
    "TIME_BOUNDS",
    "WHEN_DEVICE_BUSY",
    "CatchUp",
    "Choice",
    "CloudConfig",
    "CloudCost",
    "DeadlineMissedError",
    "DeviceCost",
    "EventLoop",
    "HandoffEstimator",
    "InvalidInputError",
    "InvalidStateError",
    "NativePolicy",
    "PdcoreError",
    "Plan",
    "PlanOptimizer",
    "Prices",
    "RouterRule",
    "Simulator",
    "SpeedController",
    "TokenBuffer",
    "TurnPlan",
    "Weights",
    "__version__",
    "gap_within",
    "pace",
    "plan_turn",
    "refined_prompt_tokens",
    "solve_catchup",
    "within_objective",
]

__version__: str
"""The crate version; ``pdcore`` checks it against the installed package so a stale build fails loudly."""

class PdcoreError(Exception):
    """Base class of every error pdcore raises on purpose."""

class InvalidInputError(PdcoreError, ValueError):
    """A bad argument, trace row or profile value; the message names it and the fix."""

class InvalidStateError(PdcoreError, RuntimeError):
    """A call the object's current state does not allow; the message says what to do instead."""

class DeadlineMissedError(PdcoreError, RuntimeError):
    """The real-time runtime fell behind the wall clock by more than its tolerance."""

def pace(
    arrivals: npt.NDArray[np.float64],
    *,
    handoff_at: float,
    min_tpot_s: float,
    max_tpot_s: float,
    **old: float,
) -> npt.NDArray[np.float64]:
    """Display times for a stream of cloud tokens: the speed controller in batch form.

    The pacing rule is ours: the paper (arXiv 2508.09035) describes a speed controller but publishes no
    formula. Let ``a[0..n)`` be the arrival times of the cloud's tokens at the device, ``h`` the hand-off
    time (the earliest time the device's own first token can be displayed) and ``[min_tpot_s, max_tpot_s]``
    the allowed display gap. Then::

        s[0] = a[0]
        s[i] = max(a[i], s[i-1] + g[i])                               for i >= 1
        g[i] = clamp(floor((h - s[i-1]) / (n - i + 1)), min_tpot_s, max_tpot_s)

    ``n - i + 1`` counts the gaps still to fill from ``s[i-1]`` to the hand-off: the ``n - i`` tokens
    left plus the hand-off gap ``h - s[n-1]``. So each token is shown at the even share of the time left
    until the device takes over, never faster than ``min_tpot_s`` and never slower than ``max_tpot_s``. All
    times are integer nanoseconds inside (the division truncates; a negative share is clamped up to
    ``min_tpot_s >= 0`` either way), so these invariants hold exactly:

    - I1 ``s[0] == a[0]``.
    - I2 ``s[i] >= a[i]`` and ``s[i] - s[i-1] >= min_tpot_s``.
    - I3 if ``a[i] <= s[i-1] + max_tpot_s`` then ``s[i] - s[i-1] <= max_tpot_s``, else ``s[i] == a[i]``.
    - I4 causal: ``s[i]`` uses only ``s[i-1]``, ``h``, ``n`` and ``a[i]``, and ``a[i]`` only when
      ``a[i] >= s[i]``, so the same rule runs live (:class:`SpeedController`) and in batch.
    - I5 if ``n * max_tpot_s >= h - a[0]`` and every ``a[i] <= a[0] + i * p`` with
      ``p = clamp(floor((h - a[0]) / n), min_tpot_s, max_tpot_s)``, every gap including ``h - s[n-1]`` is
      ``<= max_tpot_s``.
    - I6 one display time per token, in order.

    The work runs in one O(n) pass with the GIL released. ``pdcore.pace`` wraps this function for any
    array-like input.

    Args:
        arrivals: Arrival times in seconds, one-dimensional float64, non-decreasing. Non-contiguous
            arrays are copied first.
        handoff_at: The hand-off time ``h`` in seconds.
        min_tpot_s: The smallest display gap in seconds, ``>= 0`` (required).
        max_tpot_s: The largest display gap in seconds (the TPOT SLO), ``> min_tpot_s`` (required).
        **old: ``min_tpot`` and ``max_tpot``, the deprecated names of the two (a ``DeprecationWarning``).

    Returns:
        The display times in seconds, a new float64 array of the same length (empty for empty input).

    Raises:
        InvalidInputError: An arrival is NaN, infinite, negative, too large or earlier than the one
            before it (the message names ``arrivals[i]``); ``handoff_at``, ``min_tpot_s`` or ``max_tpot_s``
            is not a valid time; or ``max_tpot_s <= min_tpot_s``.
        TypeError: ``arrivals`` is not a one-dimensional float64 array.
    """

@final
class SpeedController:
    """The streaming speed controller: the pacing rule of :func:`pace`, one token at a time.

    Feed arrivals with :meth:`push`, revise the hand-off estimate with :meth:`set_handoff`, ask
    :meth:`next_due` when the next buffered token may be shown and confirm with :meth:`mark_shown`. With a
    fixed hand-off and ``expected_tokens`` equal to the stream length it produces exactly the schedule of
    :func:`pace`. Without a hand-off estimate it paces at ``max_tpot_s``, which makes the buffer last
    longest; without an expected stream length it spreads the tokens received so far until the hand-off
    (``n - i + 1`` becomes ``buffered + 1``). A stream longer than ``expected_tokens`` falls back to one
    gap left, i.e. the pace to ``h``.

    Args:
        min_tpot_s: The smallest display gap in seconds, ``>= 0`` (required).
        max_tpot_s: The largest display gap in seconds (the TPOT SLO), ``> min_tpot_s`` (required).
        expected_tokens: How many tokens the cloud will stream (``n``), if known.
        handoff_at: The hand-off estimate ``h`` in seconds, if known.
        **old: ``min_tpot`` and ``max_tpot``, the deprecated names of the bounds (a ``DeprecationWarning``).

    Raises:
        InvalidInputError: A time is not finite and non-negative, or ``max_tpot_s <= min_tpot_s``.
    """

    def __new__(
        cls,
        *,
        min_tpot_s: float,
        max_tpot_s: float,
        expected_tokens: int | None = None,
        handoff_at: float | None = None,
        **old: float,
    ) -> Self: ...
    def push(self, at: float) -> None:
        """Records a token that arrived at ``at`` seconds.

        Raises:
            InvalidInputError: ``at`` is not a valid time or is earlier than the previous arrival.
        """

    def set_handoff(self, at: float | None) -> None:
        """Revises the hand-off estimate (seconds, or ``None`` for unknown); applies to unshown tokens.

        Raises:
            InvalidInputError: ``at`` is not a valid time.
        """

    def set_expected(self, n: int | None) -> None:
        """Revises the stream length, e.g. to the tokens received when the stream was cut."""

    def next_due(self) -> float | None:
        """The display time (seconds) of the next buffered token, or ``None`` when the buffer is empty."""

    def mark_shown(self, at: float | None = None) -> float:
        """Marks the next buffered token shown, at its due time or at ``at`` (a late display).

        Args:
            at: When the token was actually shown, in seconds; not earlier than :meth:`next_due`.

        Returns:
            The display time used, in seconds; later gaps are measured from it.

        Raises:
            InvalidStateError: No token is buffered.
            InvalidInputError: ``at`` is earlier than the token's due time or not a valid time.
        """

    @property
    def received(self) -> int:
        """Tokens received so far."""

    @property
    def shown(self) -> int:
        """Tokens shown so far."""

    @property
    def buffered(self) -> int:
        """Tokens received but not yet shown."""

    @property
    def last_shown(self) -> float | None:
        """When the last token was shown, in seconds."""

    @property
    def handoff_at(self) -> float | None:
        """The hand-off estimate in force, in seconds."""

    @property
    def expected_tokens(self) -> int | None:
        """The expected stream length in force."""

    @property
    def min_tpot_s(self) -> float:
        """The smallest display gap, in seconds."""

    @property
    def max_tpot_s(self) -> float:
        """The largest display gap (the TPOT SLO), in seconds."""

    @property
    @deprecated("min_tpot is min_tpot_s")
    def min_tpot(self) -> float:
        """Deprecated: `min_tpot_s`."""

    @property
    @deprecated("max_tpot is max_tpot_s")
    def max_tpot(self) -> float:
        """Deprecated: `max_tpot_s`."""

@final
class TokenBuffer:
    """Per-request token accounting across the cloud-to-device hand-off.

    Output positions ``0..`` are filled from two sources: the cloud's stream fills ``0..handoff``, the
    device's own decode fills ``handoff..``. The device can prefill only tokens it has received; it takes
    over only once caught up (prompt prefilled and every received token prefilled), at position
    ``received``, and cloud tokens arriving after that are discarded and counted, never displayed.
    Positions are displayed once each, in order. A cut cloud stream keeps every token received before
    the cut.

    Args:
        cloud_expected: How many tokens the cloud was asked for (``k + 1``), if known; the stream is
            finished once that many arrived.
    """

    def __new__(cls, *, cloud_expected: int | None = None) -> Self: ...
    def receive_cloud(self) -> int | None:
        """A cloud token arrived.

        Returns:
            Its output position, or ``None`` when it arrived after the hand-off and was discarded.

        Raises:
            InvalidStateError: The cloud stream has finished or been cut.
        """

    def cut_cloud(self) -> None:
        """The cloud stream ended early; the tokens received so far stay."""

    def prefill_prompt(self) -> None:
        """The device finished prefilling the prompt."""

    def prefill_received(self, n: int) -> None:
        """The device prefilled ``n`` more received tokens (the amortized prefill).

        Raises:
            InvalidStateError: The prompt is not prefilled yet.
            InvalidInputError: ``prefilled + n`` would exceed ``received``.
        """

    def take_over(self) -> int:
        """The device takes over; the rest of an open cloud stream is cancelled.

        Returns:
            The hand-off position, equal to ``received``.

        Raises:
            InvalidStateError: The device has not caught up (see :attr:`caught_up`).
        """

    def generate(self) -> int:
        """The device decoded its next token.

        Returns:
            The token's output position.

        Raises:
            InvalidStateError: The device has not taken over.
        """

    def display(self) -> tuple[int, str]:
        """Displays the next position.

        Returns:
            The position and its source, ``"cloud"`` or ``"device"``.

        Raises:
            InvalidStateError: Nothing is available to display.
        """

    @property
    def caught_up(self) -> bool:
        """True when the prompt and every received token are prefilled and the device has not taken over."""

    @property
    def available(self) -> int:
        """Positions that can be displayed: received cloud tokens before the hand-off, then device ones."""

    @property
    def received(self) -> int:
        """Cloud tokens received and kept."""

    @property
    def prefilled(self) -> int:
        """Received cloud tokens the device has prefilled."""

    @property
    def prompt_prefilled(self) -> bool:
        """Whether the prompt is prefilled on the device."""

    @property
    def generated(self) -> int:
        """Tokens decoded by the device."""

    @property
    def displayed(self) -> int:
        """Tokens displayed."""

    @property
    def discarded(self) -> int:
        """Cloud tokens that arrived after the hand-off and were dropped."""

    @property
    def handoff(self) -> int | None:
        """The hand-off position, once the device took over."""

    @property
    def stream(self) -> str:
        """The cloud stream's state: ``"open"``, ``"finished"``, ``"cut"`` or ``"cancelled"``."""

@final
class EventLoop:
    """A deterministic event queue holding Python objects.

    Events pop in ``(time, priority, seq)`` order: earlier time first, then lower priority value, then
    insertion order (``seq`` belongs to this loop, so two identical runs pop identical sequences). Time
    never goes backwards: scheduling before :attr:`now` raises :class:`InvalidInputError`.
    """

    def __new__(cls) -> Self: ...
    def schedule(self, at: float, event: Any, *, priority: int = 0) -> int:
        """Schedules ``event`` at ``at`` seconds.

        Args:
            at: When it fires, in seconds; not before :attr:`now`.
            event: Any Python object, returned by :meth:`step`.
            priority: Lower fires first among equal times.

        Returns:
            The event's sequence number, unique within this loop.

        Raises:
            InvalidInputError: ``at`` is not a valid time or is before :attr:`now`.
        """

    def schedule_in(self, delay: float, event: Any, *, priority: int = 0) -> int:
        """Schedules ``event`` ``delay`` seconds after :attr:`now`; see :meth:`schedule`."""

    def peek(self) -> float | None:
        """The time of the next event in seconds, or ``None`` when nothing is pending."""

    def step(self, until: float | None = None) -> tuple[float, Any] | None:
        """Pops the next event and advances :attr:`now` to it.

        Args:
            until: Pop only an event due at or before this time (seconds). When none is, :attr:`now`
                advances to ``until`` (if later) and ``None`` is returned.

        Returns:
            ``(time, event)``, or ``None`` when no event is due.

        Raises:
            InvalidInputError: ``until`` is not a valid time.
        """

    @property
    def now(self) -> float:
        """The current time in seconds: that of the last event popped, or the last ``until`` reached."""

    @property
    def pending(self) -> int:
        """Events waiting."""

    @property
    def processed(self) -> int:
        """Events popped so far."""

    def __len__(self) -> int: ...

@final
class CloudConfig:
    """The cloud's deployment and iteration-time model, validated.

    One iteration of a replica takes (DistServe's fitted form, extended with chunk offsets)::

        t = base + prefill_token * sum(P) + prefill_attn * sum((offset + chunk)^2 - offset^2)
                 + decode_seq * B + decode_context * sum(ctx)

    for prefill chunks of ``chunk`` tokens after ``offset`` cached ones (``P`` tokens prefilled in all)
    and ``B`` decoding sequences with contexts ``ctx``.

    Args:
        deployment: ``"colocated"`` (every replica prefills and decodes) or ``"disaggregated"``
            (prefill replicas ship KV caches to decode replicas over ``kv_link_bytes_per_s``).
        replicas: Replicas of a colocated deployment.
        prefill_replicas: Prefill replicas of a disaggregated deployment.
        decode_replicas: Decode replicas of a disaggregated deployment.
        base_s: Fixed cost of one iteration, seconds.
        prefill_token_s: Cost per prefilled token, seconds.
        prefill_attn_s: Cost per unit of ``(offset + chunk)^2 - offset^2``, seconds.
        decode_seq_s: Cost per decoding sequence, seconds.
        decode_context_s: Cost per token of decoding context, seconds.
        max_batch_size: Sequences in one iteration at most.
        max_tokens_per_iteration: Tokens in one iteration at most.
        kv_cache_tokens: KV-cache capacity of a replica, tokens.
        gpus_per_replica: GPUs of one replica (for GPU-seconds).
        kv_bytes_per_token: KV-cache size of one token, bytes.
        kv_link_bytes_per_s: Bandwidth of the prefill-to-decode link, bytes per second.
        k_sites: Where P/D-Device's ``k`` tokens may be decoded in a disaggregated cloud: ``"pool"`` (the
            decode pool, after a KV transfer, as any request), ``"prefill"`` (the prefill instance that
            prefilled the prompt, beside its prefill chunks) or ``"both"`` (each plan's ``k_site``).
        prefill_decode_budget: A prefill replica's token budget per iteration while it decodes ``k``
            tokens (`CloudCost.prefill_decode_budget`); 0 keeps ``max_tokens_per_iteration``.
        kv_write_token_s: Seconds per token for a decode replica to write a received KV cache, priced
            in the iteration that admits it. Each prefill replica sends one cache at a time over its link.
        prefill_decode_gap_s: The longest iteration of a prefill replica while it decodes ``k`` tokens:
            its prefill chunks are cut to fit (`CloudCost.chunk_within`); 0 leaves them uncut.
        prefill_knee_token_s: Cost per prefill token below the knee, seconds (`CloudCost`).
        prefill_knee_tokens: Tokens of an iteration below the knee; 0 (the default) turns it off.

    Raises:
        InvalidInputError: An unknown deployment or a value out of range; the message names it.
    """

    def __new__(
        cls,
        *,
        deployment: str,
        replicas: int = 1,
        prefill_replicas: int = 1,
        decode_replicas: int = 1,
        base_s: float,
        prefill_token_s: float,
        prefill_attn_s: float,
        decode_seq_s: float,
        decode_context_s: float,
        max_batch_size: int,
        max_tokens_per_iteration: int,
        kv_cache_tokens: int,
        gpus_per_replica: int,
        kv_bytes_per_token: float,
        kv_link_bytes_per_s: float,
        k_sites: str = "pool",
        prefill_decode_budget: int = 0,
        kv_write_token_s: float = 0.0,
        prefill_decode_gap_s: float = 0.0,
        prefill_knee_token_s: float = 0.0,
        prefill_knee_tokens: int = 0,
    ) -> Self: ...
    @property
    def deployment(self) -> str:
        """``"colocated"`` or ``"disaggregated"``."""
    @property
    def k_sites(self) -> str:
        """Where P/D-Device's ``k`` tokens may be decoded: ``"pool"``, ``"prefill"`` or ``"both"``."""

DEFAULT_MAX_K: int
"""The cap on ``k`` unless the caller gives one (4096)."""

LIVE_GUARD_STEPS: float
"""Device decode steps the live hand-off guard holds (2; the simulator's guard is one step)."""

PRIOR_WEIGHT_TOKENS: int
"""The weight of the live hand-off estimator's prior speed ratio, in tokens of prompt prefill (512)."""

PRIOR_SPREAD_CALLS: float
"""The weight of the live hand-off estimator's prior spread, in model calls (8)."""

SPREAD_Z: float
"""Spreads of the exposed calls the live hand-off guard adds (2.33, a one-sided 99% normal quantile); the
simulator's guard adds as many of its device's step spread."""

MAX_STEP_SPREAD: float
"""The largest step spread a device may have (2: a call's RMS deviation twice its price), ``[decode]
step_spread``'s bound."""

GAP_SLACK_S: float
"""The slack of the gap rule, seconds: one nanosecond, the simulator's clock resolution."""

ROUTER_BUCKETS: int
"""Entries of a full :class:`RouterRule` table: one per power of two of a prompt length (32)."""

TIME_BOUNDS: tuple[tuple[str, float, str], ...]
"""The largest value each time coefficient of a profile may have: ``(profile key, seconds, why)``, generous
bounds of what hardware can take (``[iteration] base_s`` 10 s, ``[kv_transfer] write_token_s`` 1 s per
token, ``[decode] tpot_s`` 10 s a step, ...); a value above its bound is refused, not priced."""

CLOCK_LIMIT_S: float
"""The latest time a simulated run may reach, seconds (1e9): a time priced beyond it is an error naming
the request (or the cloud replica's batch) and what was priced, never a saturated result."""

DEFAULT_MAX_TPOT_S: float
"""The largest display gap when none is given, seconds (0.05: the paper's "tens of milliseconds" maximum
TPOT, 20 tokens/s); the default ``max_tpot_s`` of :class:`Plan` and of a run's objectives."""

MODES: tuple[str, ...]
"""Plan modes, indexed by the simulator's ``mode`` result: ``"cloud"``, ``"device"``, ``"pd"``, ``"naive"``,
``"kv-transfer"``, ``"race"``, ``"disco"``, ``"spec"``."""

SERVED_BY: tuple[str, ...]
"""Who displayed a request's tokens, indexed by the simulator's ``served_by`` result: ``"cloud"``,
``"device"``, ``"both"``."""

DECODED_AT: tuple[str, ...]
"""Where a disaggregated cloud decoded a request's tokens after the first, indexed by the simulator's
``k_site`` result: ``"pool"``, ``"prefill"``, ``"none"`` (no cloud decode token, or a colocated cloud),
``"bridge"`` (on its prefill instance while its KV cache crossed to the decode pool, then there)."""

DEVICE_BUSY: tuple[str, ...]
"""What the one-answer-per-device rule did to a request, indexed by the simulator's ``device_busy`` result:
``"free"`` (its device was free, its plan left the device alone), ``"cloud"`` (its device was busy with
an earlier answer: the cloud served the whole answer), ``"waited"`` (its device-only plan waited for the
device)."""

WHEN_DEVICE_BUSY: tuple[str, ...]
"""The rules of :class:`Simulator`'s ``when_device_busy``: ``"cloud"``, ``"wait"``."""

K_SITES: tuple[str, ...]
"""Where a disaggregated cloud may decode P/D-Device's ``k`` tokens (:class:`CloudConfig` and
:class:`PlanOptimizer` ``k_sites``): ``"pool"``, ``"prefill"``, ``"both"``."""

DEFAULT_K_SITES: str
"""What a cloud offers P/D-Device's ``k`` tokens when nothing is said: ``"both"`` (each plan says which);
the default of a run and, where a KV link prices the pool's transfer, of :class:`PlanOptimizer`."""

DEPLOYMENTS: tuple[str, ...]
"""The cloud deployments the simulator models (:class:`CloudConfig` ``deployment``): ``"colocated"``,
``"disaggregated"``."""

@final
class DeviceCost:
    """One device's prices, the one device model of pdcore (Rust ``cost::device``).

    Prefill time over prompt length runs from ``(0, 0)`` below the first point, interpolates between
    points and continues along the last segment beyond the last. TPOT over context is flat below the first
    point, interpolated between points, and beyond the last point continues along the last segment only
    if it rises, else stays at the last measured value. Appending ``n`` tokens to a cache of ``c`` costs
    ``max(prefill(c + n) - prefill(c), tpot(c))``. The rules are pdcore's own.

    The step spread prices nothing: the simulator draws each device call's time around its price with it
    (Rust ``sim::jitter``) and its hand-off guard covers it.

    Args:
        prefill_tokens: Prompt lengths measured, strictly increasing, each >= 1.
        prefill_s: Prefill time at each length, seconds, > 0 and non-decreasing.
        decode_context: Context lengths measured, strictly increasing, each >= 0.
        decode_tpot_s: Time per output token at each context, seconds, > 0.
        kv_bytes_per_token: The device model's KV-cache size of one token, bytes (> 0).
        step_spread: The relative RMS spread of a model call's time around its price (``[decode]
            step_spread``), finite, from 0 to 2.

    Raises:
        InvalidInputError: Mismatched lengths, no points, or a value out of range or order; the message
            names the profile key (``[prefill] seconds[2]``) and the fix.
    """

    def __new__(
        cls,
        *,
        prefill_tokens: list[float],
        prefill_s: list[float],
        decode_context: list[float],
        decode_tpot_s: list[float],
        kv_bytes_per_token: float,
        step_spread: float = 0.0,
    ) -> Self: ...
    def prefill_s(self, tokens: npt.ArrayLike) -> Any:
        """Seconds to prefill a prompt of ``tokens`` (a float, or an array of the input's shape).

        Raises:
            InvalidInputError: A token count is negative or not finite.
        """

    def append_s(self, context: npt.ArrayLike, tokens: npt.ArrayLike) -> Any:
        """Seconds to append ``tokens`` to a cache of ``context`` (broadcast for arrays).

        Raises:
            InvalidInputError: A token count is negative or not finite.
        """

    def tpot_s(self, context: npt.ArrayLike) -> Any:
        """Seconds per decoded token at a context of ``context`` (a float, or an array).

        Raises:
            InvalidInputError: A token count is negative or not finite.
        """

    @property
    def kv_bytes_per_token(self) -> float:
        """The device model's KV-cache bytes per token."""

    @property
    def step_spread(self) -> float:
        """The relative RMS spread of a model call's time around its price (0 unless given)."""

    def __eq__(self, value: object, /) -> bool: ...

@final
class CloudCost:
    """One cloud replica's prices (Rust ``cost::cloud``): DistServe's iteration-time form with chunk offsets.

    ``t = base + prefill_token * P + prefill_attn * sum(chunk * (2 * offset + chunk)) + decode_seq * B
    + decode_context * sum(ctx)``; the lone-request prices are the same iterations with nothing else in
    the batch. With a knee (``prefill_knee_tokens = K > 0``, ours) the first ``max(0, K - B)`` prefill
    tokens cost ``prefill_knee_token_s`` instead of ``prefill_token_s``.

    Raises:
        InvalidInputError: A coefficient that is negative or not finite, iterations that take no time, or a
            zero token budget.
    """

    def __new__(
        cls,
        *,
        base_s: float,
        prefill_token_s: float,
        prefill_attn_s: float,
        decode_seq_s: float,
        decode_context_s: float,
        max_tokens_per_iteration: int,
        prefill_knee_token_s: float = 0.0,
        prefill_knee_tokens: int = 0,
    ) -> Self: ...
    def iteration_s(
        self, prefill_lens: list[int], decode_contexts: list[int], *, prefill_offsets: list[int] | None = None
    ) -> float:
        """One iteration's seconds (0.0 for an empty one).

        Raises:
            InvalidInputError: A chunk below 1 token, a negative context or offset, or one offset per chunk
                missing.
        """

    def lone_prefill_s(self, prompt_tokens: int) -> float:
        """A prompt prefilled alone on an idle replica, chunked by the token budget, seconds."""

    def lone_decode_s(self, context_tokens: int) -> float:
        """One decode step of a lone sequence, seconds."""

    def queued_prefill_token_s(self) -> float:
        """Seconds per queued prefill token when iterations are full of prefill."""

    def prefill_instance_decode_s(
        self, context_tokens: int, queued_prefill_tokens: float, budget_tokens: int
    ) -> float:
        """One decode step of a sequence kept on its prefill instance, seconds: an iteration carrying the
        step and up to the rest of a ``budget_tokens`` budget of the ``queued_prefill_tokens`` queued
        there."""

    def prefill_decode_budget(self, max_tpot_s: float, **old: float) -> int:
        """The token budget of a prefill instance's iteration while it decodes: the largest whose
        iteration (one decode step and a first chunk) fits in ``max_tpot_s`` (required; Sarathi-Serve's
        rule). ``max_tpot=`` is its deprecated name (a ``DeprecationWarning``).

        Raises:
            InvalidInputError: ``max_tpot_s`` is not finite and > 0.
        """

    def queue_wait_lower_bound_s(self, waiting_prefill_tokens: float, prefill_replicas: int) -> float:
        """A lower bound of a new prompt's wait: tokens ahead beyond one budget per replica, at the
        per-token prefill cost, seconds."""

    @property
    def max_tokens_per_iteration(self) -> int:
        """The token budget of one iteration."""

@final
class CatchUp:
    """The solution of the catch-up fixed point (:func:`solve_catchup`)."""

    @property
    def k(self) -> int:
        """Cloud decode tokens after the first."""
    @property
    def device_alone(self) -> bool:
        """The device's own first token comes before the cloud's (``k`` is 0)."""
    @property
    def converged(self) -> bool:
        """False when there is no fixed point up to ``max_k`` (``k`` is then ``max_k``)."""
    @property
    def device_ready_s(self) -> float:
        """When the device's own first token is ready, seconds from arrival."""
    @property
    def iterations(self) -> int:
        """Fixed-point iterations run."""

def solve_catchup(
    prompt_tokens: int,
    *,
    device: DeviceCost,
    first_token_s: float,
    max_tpot_s: float,
    refine_ratio: float = 1.0,
    cloud_tpot_s: float = 0.0,
    max_k: int = 4096,
    first_gap_s: float | None = None,
    device_cached_tokens: int = 0,
    **old: float,
) -> CatchUp:
    """The smallest ``k`` with which the device catches up within the display pace ``max_tpot_s``
    (required; Rust ``cost::catchup``); ``first_gap_s`` is the cloud's first decode gap when it differs
    from ``cloud_tpot_s``. ``max_tpot=`` is the deprecated name of ``max_tpot_s`` (a
    ``DeprecationWarning``).

    Raises:
        InvalidInputError: An argument out of range.
    """

def refined_prompt_tokens(prompt_tokens: int, refine_ratio: float) -> int:
    """The prompt the device prefills at refinement ratio ``r``: ``max(1, ceil(r * L))``."""

@final
class Choice:
    """The optimizer's choice for one request (:class:`PlanOptimizer`)."""

    @property
    def device_alone(self) -> bool:
        """The device alone answers."""
    @property
    def cloud_alone(self) -> bool:
        """The cloud alone answers (only with :class:`Weights` that prefer it)."""
    @property
    def k(self) -> int:
        """Cloud decode tokens after the first (0 when ``device_alone``)."""
    @property
    def refine_ratio(self) -> float:
        """The refinement ratio (1 when ``device_alone``)."""
    @property
    def first_token_s(self) -> float:
        """Expected arrival of the cloud's first token, seconds from arrival."""
    @property
    def device_ready_s(self) -> float:
        """Expected time of the device's own first token, seconds from arrival."""
    @property
    def converged(self) -> bool:
        """False when the catch-up has no fixed point up to ``max_k``."""
    @property
    def k_site(self) -> str:
        """Where the ``k`` tokens are decoded: ``"pool"`` or ``"prefill"``."""
    @property
    def k_site_reason(self) -> str:
        """Why there: ``"only-site"`` (one site offered), ``"no-decode"`` (no cloud decode token),
        ``"few"`` (the prefill instance is done with the ``k`` tokens before the pool's first would arrive)
        or ``"pool-first"`` (otherwise: the pool, which leaves the prefill instance's chunks whole)."""

@final
class PlanOptimizer:
    """The per-request choice of ``k``, refinement and the device-alone fallback (Rust ``cost::optimizer``).

    ``max_tpot_s`` (required) is the display pace it plans for; ``max_tpot=`` is its deprecated name (a
    ``DeprecationWarning``). With ``k_sites="both"`` it also picks where the ``k`` tokens are decoded
    (Rust ``cost::ksite``), pricing the decode pool's KV transfer with ``kv_bytes_per_token`` over
    ``kv_link_bytes_per_s``. Without ``k_sites`` it offers `DEFAULT_K_SITES` (both) when the KV link is
    given and the pool alone when it is not (nothing prices the pool's transfer). With ``weights`` it
    weighs its plan, the device alone and the cloud alone by latency, cost and energy (Rust
    ``cost::tradeoff``). With ``cloud_kv_cache_tokens`` (one replica's KV cache) a prompt that
    neither the cloud nor the device can hold (1 TiB of KV cache at the device model's bytes per token) is
    refused by every choice (Rust ``cost::fit``).

    Raises:
        InvalidInputError: A bad pace, ratio, replica count, cap or site, ``k_sites="both"`` without
            the KV link, or a cloud KV cache below 2 tokens.
    """

    def __new__(
        cls,
        *,
        device: DeviceCost,
        cloud: CloudCost,
        max_tpot_s: float,
        refine_ratios: list[float] = ...,
        load_adaptive: bool = True,
        prefill_replicas: int = 1,
        max_k: int = 4096,
        k_sites: str | None = None,
        kv_bytes_per_token: float | None = None,
        kv_link_bytes_per_s: float | None = None,
        kv_write_token_s: float = 0.0,
        weights: Weights | None = None,
        cloud_kv_cache_tokens: int | None = None,
        **old: float,
    ) -> Self: ...
    @property
    def k_sites(self) -> str:
        """Where the ``k`` tokens may be decoded: ``"pool"``, ``"prefill"`` or ``"both"``."""
    @property
    def prefill_decode_budget(self) -> int:
        """The prefill instance's token budget while it decodes (`CloudCost.prefill_decode_budget`)."""
    @property
    def refine_ratios(self) -> list[float]:
        """The ratios tried, largest first (1.0 among them)."""
    def first_token_s(
        self,
        prompt_tokens: int,
        *,
        one_way_s: float,
        waiting_prefill_tokens: float | None = None,
        cloud_cached_tokens: int = 0,
    ) -> float:
        """Expected arrival of the cloud's first token, seconds from the request's arrival (its prefill
        covers the prompt past ``cloud_cached_tokens``)."""
    def choose(
        self,
        prompt_tokens: int,
        *,
        one_way_s: float,
        waiting_prefill_tokens: float | None = None,
        device_cached_tokens: int = 0,
        cloud_cached_tokens: int = 0,
    ) -> Choice:
        """The smallest ``k`` over the allowed ratios, or the device alone, with the prompt tokens the
        request finds cached on the device and in the cloud.

        Raises:
            InvalidInputError: A bad prompt length or delay, or a prompt neither side can hold.
        """
    def choose_at(
        self,
        prompt_tokens: int,
        refine_ratio: float,
        *,
        one_way_s: float,
        waiting_prefill_tokens: float | None = None,
        device_cached_tokens: int = 0,
        cloud_cached_tokens: int = 0,
    ) -> Choice:
        """The catch-up ``k`` at a fixed ratio.

        Raises:
            InvalidInputError: A bad prompt length, ratio or delay, or a prompt neither side can hold.
        """

@final
class TurnPlan:
    """The plan of one turn (Rust ``cost::planner``): who serves it and how."""

    @property
    def serve(self) -> str:
        """``"device"`` (the device alone), ``"cloud"`` (the cloud alone) or ``"split"`` (the cloud's first
        ``k + 1`` tokens, then the device)."""
    @property
    def k(self) -> int:
        """Cloud tokens after the first: the split's, the cloud's whole answer, or 0 for the device."""
    @property
    def refine_ratio(self) -> float:
        """The kept fraction of the prompt the device prefills."""
    @property
    def k_site(self) -> str:
        """Where the split's ``k`` tokens are decoded: ``"pool"`` or ``"prefill"``."""
    @property
    def k_site_reason(self) -> str:
        """Why there (`Choice.k_site_reason`)."""
    @property
    def reason(self) -> str:
        """Why this side: ``"catch-up"`` (the split with the catch-up's ``k``), ``"device-first"`` (the
        device's own first token comes first), ``"no-fixed-point"`` (the device never catches up),
        ``"answer-cap"`` (``k + 1`` reaches ``max_tokens``) or ``"weighed"`` (the optimizer's weights)."""
    @property
    def wanted_k(self) -> int:
        """The split's ``k`` as the catch-up asked for it (padded, before any reduction or context cut)."""
    @property
    def device_ready_s(self) -> float:
        """Expected time of the device's own first token, seconds from the turn's start."""
    @property
    def first_token_s(self) -> float:
        """Expected arrival of the cloud's first token, seconds from the turn's start."""
    @property
    def converged(self) -> bool:
        """False when the catch-up has no fixed point up to ``max_k``."""

def plan_turn(
    prompt_tokens: int,
    *,
    device: DeviceCost,
    max_tpot_s: float,
    first_token_s: float,
    cloud_tpot_s: float = 0.0,
    device_cached_tokens: int = 0,
    cloud_cached_tokens: int = 0,
    max_tokens: int | None = None,
    context_room: int | None = None,
    k_margin: float = 0.0,
    reduce: bool = True,
    max_k: int = 4096,
    **old: float,
) -> TurnPlan:
    """Plans a live turn with the planner the simulator's built-in policies use (Rust ``cost::planner``).

    The turn is told the cloud's first token (``first_token_s``, seconds from its start) and its pace
    (``cloud_tpot_s``); the device is priced by ``device``. The device alone when its own first token comes
    first; the cloud alone when it cannot catch up within ``max_tokens`` (no fixed point, or ``k + 1``
    reaching it); otherwise the split with the catch-up's ``k`` padded to ``ceil(k * (1 + k_margin))``
    and cut to the cloud's ``context_room``. ``reduce=False`` always splits. ``max_tpot_s`` (required) is
    the display pace; ``max_tpot=`` is its deprecated name (a ``DeprecationWarning``).

    Raises:
        InvalidInputError: An argument out of range.
    """

@final
class RouterRule:
    """The whole-request router's rule (Rust ``cost::router``, after RouteLLM, arXiv 2406.18665).

    The predicted answer length of a prompt of ``p`` tokens is ``predicted_output[floor(log2 p)]`` (the
    last entry past the end). The device takes the request when, alone, it meets both objectives for that
    answer: its prefill within ``ttft_slo_s``, and each decode step up to the predicted last token within
    ``max_tpot_s`` (one nanosecond of slack); otherwise the cloud does. The prefill covers what the
    device's session cache does not hold.

    Args:
        predicted_output: Predicted answer tokens per prompt bucket, 1 to 32 entries, each >= 1.
        ttft_slo_s: The time-to-first-token objective, seconds.
        max_tpot_s: The largest-gap objective, seconds.

    Raises:
        InvalidInputError: An empty or oversized table, a zero entry, or an objective not finite and > 0.
    """

    def __new__(cls, *, predicted_output: list[int], ttft_slo_s: float, max_tpot_s: float) -> Self: ...
    def predicted_output(self, prompt_tokens: int) -> int:
        """The predicted answer length of a request with ``prompt_tokens`` tokens."""
    def on_device(self, device: DeviceCost, prompt_tokens: int, cached_tokens: int | None = None) -> bool:
        """Whether ``device`` takes a request of ``prompt_tokens`` tokens, the first ``cached_tokens`` of
        which its session cache holds (its prefill covers the rest)."""

@disjoint_base
class HandoffEstimator:
    """The live runtime's hand-off estimate (Rust ``cost::handoff``); `pdcore.runtime.HandoffEstimator`
    wraps it with a device profile.

    Raises:
        InvalidInputError: A negative count or time, or a prior ratio that is not finite and above 0.
    """

    def __new__(
        cls,
        device: DeviceCost | None,
        prompt_tokens: int,
        prompt_chars: int,
        prior_ratio: float = 1.0,
        *,
        started_at: float = 0.0,
        prompt_chunk_tokens: int,
        append_chunk_tokens: int,
        prior_spread: float = 0.0,
    ) -> Self: ...
    @property
    def ratio(self) -> float | None:
        """Measured over predicted time, blended with the prior; None without a model before a measurement."""
    @property
    def prior_spread(self) -> float:
        """The relative spread of a call's time assumed before anything is measured."""
    @property
    def spread(self) -> float:
        """The calls' relative spread: the RMS of their relative errors, blended with the prior."""
    @property
    def measured_spread(self) -> tuple[float, int] | None:
        """The measured spread alone and the calls it covers; None before a call was measured."""
    @property
    def prior_ratio(self) -> float:
        """The ratio assumed before anything is measured."""
    @property
    def prior_weight(self) -> float:
        """The prior's weight, seconds of predicted prefill."""
    @property
    def actual_s(self) -> float:
        """Measured seconds of device work so far."""
    @property
    def predicted(self) -> float:
        """The model's seconds (tokens, without a model) for the same work."""
    @property
    def anchor_s(self) -> float:
        """When the last progress report came (the current chunk began then)."""
    @property
    def prompt_tokens(self) -> int:
        """The prompt's length in device tokens."""
    @property
    def device(self) -> DeviceCost | None:
        """The device model, if any."""
    def observe_prompt(self, done: int, chunk: int, took: float, *, at: float) -> None:
        """A prompt chunk of ``chunk`` tokens, ending at ``done``, took ``took`` seconds."""
    def observe_append(self, context: int, tokens: int, took: float, *, at: float) -> None:
        """``tokens`` received tokens appended at ``context`` took ``took`` seconds."""
    def count_pieces(self, pieces: int, tokens: int) -> None:
        """``pieces`` cloud pieces came to ``tokens`` device tokens."""
    def tokens_for(self, pieces: int, chars_per_piece: float | None) -> int:
        """Device tokens for ``pieces`` cloud pieces."""
    def guard(self, context: int, tokens_left: int) -> float:
        """`LIVE_GUARD_STEPS` device decode steps at the hand-off's context plus `SPREAD_Z` spreads of the
        last append and the first step, at the measured speed, seconds."""
    def append_step(self, context: int) -> float | None:
        """One model call appending a single token at ``context`` at the measured speed, seconds."""
    def append_per_token(self, context: int) -> float | None:
        """The marginal time of one more token appended at ``context`` in full chunks, seconds."""
    def estimate(self, now: float, prompt_done: int, context: int, tokens_left: int) -> float | None:
        """When the device will have caught up, clock seconds, never before ``now``."""

def within_objective(seconds: Any, objective_s: float) -> Any:
    """The gap rule (Rust ``cost::gap``): whether a time (a display gap, a TTFT) is within its objective,
    ``seconds <= objective_s + GAP_SLACK_S``; an undefined time (NaN) counts as met. A bool for a number,
    a bool array of the same shape for anything else numpy reads as float64."""

@deprecated("gap_within is within_objective")
def gap_within(gap_s: Any, max_tpot: float) -> Any:
    """Deprecated: `within_objective`."""

@final
class Plan:
    """A policy's decision for one request.

    Args:
        mode: ``"cloud"``, ``"device"``, ``"pd"`` (P/D-Device), ``"naive"`` (P/D-Device without the
            speed controller), ``"kv-transfer"``, ``"race"``, ``"disco"`` (DiSCo's race and migration) or
            ``"spec"`` (speculative decoding: the device drafts, the cloud verifies).
        k: Cloud decode tokens after the first (``pd`` and ``naive``): the cloud is asked for
            ``min(k + 1, output)`` tokens.
        refine_ratio: Fraction of the prompt the device prefills, in ``(0, 1]``.
        min_tpot_s: The smallest display gap of the speed controller, seconds.
        max_tpot_s: The largest display gap (the TPOT SLO), seconds.
        k_site: Where a disaggregated cloud decodes the ``k`` tokens: ``"pool"`` (the decode pool) or
            ``"prefill"`` (the prefill instance that prefilled the prompt); the cloud must offer it
            (`CloudConfig` ``k_sites``).
        gamma: Draft tokens per round, 1 to 64 (mode ``"spec"`` only, and needed there).
        alpha: The acceptance rate of a draft token, in ``[0, 1]`` (mode ``"spec"`` only, and needed
            there); a round yields the Leviathan et al. expected count, deterministically (Rust
            ``cost::spec``).
        **old: ``min_tpot`` and ``max_tpot``, the deprecated names of the pacing bounds (a
            ``DeprecationWarning``).

    Raises:
        InvalidInputError: An unknown mode or site, ``refine_ratio`` outside ``(0, 1]``, bad pacing
            bounds, or draft settings missing from a ``"spec"`` plan, given to another or out of range.
    """

    def __new__(
        cls,
        mode: str,
        *,
        k: int = 0,
        refine_ratio: float = 1.0,
        min_tpot_s: float = 0.0,
        max_tpot_s: float = DEFAULT_MAX_TPOT_S,
        k_site: str = "pool",
        gamma: int | None = None,
        alpha: float | None = None,
        **old: float,
    ) -> Self: ...
    @property
    def mode(self) -> str:
        """The mode's name."""
    @property
    def gamma(self) -> int | None:
        """Draft tokens per round (``"spec"`` plans; None otherwise)."""
    @property
    def alpha(self) -> float | None:
        """The acceptance rate of a draft token (``"spec"`` plans; None otherwise)."""
    @property
    def k_site(self) -> str:
        """Where the ``k`` tokens are decoded: ``"pool"`` or ``"prefill"``."""

    @property
    def k(self) -> int:
        """Cloud decode tokens after the first."""

    @property
    def refine_ratio(self) -> float:
        """Fraction of the prompt the device prefills."""

    @property
    def min_tpot_s(self) -> float:
        """The smallest display gap, seconds."""

    @property
    def max_tpot_s(self) -> float:
        """The largest display gap, seconds."""

    @property
    @deprecated("min_tpot is min_tpot_s")
    def min_tpot(self) -> float:
        """Deprecated: `min_tpot_s`."""

    @property
    @deprecated("max_tpot is max_tpot_s")
    def max_tpot(self) -> float:
        """Deprecated: `max_tpot_s`."""

    def __eq__(self, value: object, /) -> bool: ...

@final
class NativePolicy:
    """A built-in policy's rule, planned inside the simulator (:meth:`Simulator.run_policy`)."""

    @staticmethod
    def fixed(plan: Plan) -> NativePolicy:
        """Every request gets ``plan``."""
    @staticmethod
    def auto(
        mode: str,
        *,
        optimizer: PlanOptimizer,
        min_tpot_s: float,
        max_tpot_s: float,
        **old: float,
    ) -> NativePolicy:
        """The optimizer's plan per request, in ``mode`` (``"pd"`` or ``"naive"``) or on the device alone,
        each plan with these pacing bounds (both required; ``min_tpot=`` and ``max_tpot=`` are their
        deprecated names).

        Raises:
            InvalidInputError: Another mode, or bad pacing bounds.
        """
    @staticmethod
    def by_prompt(*, threshold: int, short: Plan, long: Plan) -> NativePolicy:
        """``short`` for requests whose device prefill covers at most ``threshold`` tokens (the prompt less
        what the device's session cache holds), ``long`` for the rest.

        Raises:
            InvalidInputError: A threshold that is not a whole number in ``0..2**32``.
        """
    @staticmethod
    def router(rule: RouterRule, *, min_tpot_s: float, max_tpot_s: float, **old: float) -> NativePolicy:
        """The device alone where ``rule`` says so, else the cloud, each plan with these pacing bounds
        (both required; ``min_tpot=`` and ``max_tpot=`` are their deprecated names).

        Raises:
            InvalidInputError: Bad pacing bounds.
        """

@final
class Prices:
    """The prices of a deployment (the cost model's ``cost::money``): the cloud's dollars per GPU-hour,
    the device's joules per prefilled and decoded token, its SoC power while waiting on the network, its
    radio (linear model of Huang et al., MobiSys 2012) and its stated battery.

    Args:
        usd_per_gpu_hour: Dollars per GPU-hour.
        prefill_j_per_token: Device joules per prefilled token.
        decode_j_per_token: Device joules per decoded token.
        wait_w: Device SoC power while a request's connection is open, W.
        radio_base_w: Radio power while a request's connection is open, W.
        radio_up_j_per_byte: Radio joules per byte sent.
        radio_down_j_per_byte: Radio joules per byte received.
        radio_fixed_j: Radio joules once per request that used the network (promotion and tail).
        battery_wh: The stated battery, Wh.

    Raises:
        InvalidInputError: A price is negative or not finite, or the battery is not above 0 (the message
            names it).
    """

    def __new__(
        cls,
        *,
        usd_per_gpu_hour: float,
        prefill_j_per_token: float,
        decode_j_per_token: float,
        wait_w: float,
        radio_base_w: float,
        radio_up_j_per_byte: float,
        radio_down_j_per_byte: float,
        radio_fixed_j: float,
        battery_wh: float,
    ) -> Self: ...
    @property
    def usd_per_gpu_hour(self) -> float:
        """Dollars per GPU-hour."""

    @property
    def battery_wh(self) -> float:
        """The stated battery, Wh."""

    def bill(
        self,
        *,
        gpu_s: npt.NDArray[np.float64],
        prefill_tokens: npt.NDArray[np.float64],
        decode_tokens: npt.NDArray[np.float64],
        bytes_up: npt.NDArray[np.float64],
        bytes_down: npt.NDArray[np.float64],
        radio_s: npt.NDArray[np.float64],
    ) -> dict[str, npt.NDArray[np.float64]]:
        """Per request: ``usd``, ``compute_j``, ``network_j``, ``device_j`` and ``battery_pct``.

        Raises:
            InvalidInputError: The arrays differ in length.
        """

@final
class Weights:
    """The optimizer's weights on cost and energy (Rust ``cost::tradeoff``): among the plans expected to
    meet the SLOs it keeps the smallest ``TTFT + cost_weight x $ per 1,000 requests + energy_weight x
    device J``, each estimated at ``prices`` for an answer of ``expected_output_tokens``.

    Args:
        cost_weight: Seconds of TTFT one dollar per 1,000 requests is worth, >= 0.
        energy_weight: Seconds of TTFT one joule of device energy is worth, >= 0.
        prices: The deployment's prices.
        gpus_per_replica: GPUs one cloud replica occupies, >= 1.
        expected_output_tokens: The answer length the estimates assume, >= 1.
        ttft_slo_s: The TTFT objective, seconds (infinite for none).
        prompt_bytes_per_token: Bytes per prompt token sent as text.
        stream_bytes_per_token: Bytes per streamed token.

    Raises:
        InvalidInputError: A value out of range (the message names it).
    """

    def __new__(
        cls,
        *,
        cost_weight: float,
        energy_weight: float,
        prices: Prices,
        gpus_per_replica: float,
        expected_output_tokens: float,
        ttft_slo_s: float,
        prompt_bytes_per_token: float,
        stream_bytes_per_token: float,
    ) -> Self: ...
    @property
    def cost_weight(self) -> float:
        """Seconds of TTFT per dollar per 1,000 requests."""

    @property
    def energy_weight(self) -> float:
        """Seconds of TTFT per joule."""

@final
class Simulator:
    """The trace-driven P/D-Device simulator: token-level events in Rust, decisions in Python.

    Call :meth:`next_decision` to run (with the GIL released) until a request arrives, then
    :meth:`decide` its :class:`Plan`; repeat until :meth:`next_decision` returns ``None``, then read
    :meth:`results` and :meth:`summary`. Events tie-break by ``(time, priority, seq)``, so a run is
    deterministic.

    Args:
        arrival_s: Request arrival times, non-decreasing, seconds, float64.
        prompt_tokens: Prompt tokens per request, int64.
        output_tokens: Output tokens per request, int64.
        one_way_s: One-way network delay per request, seconds, float64.
        cloud: The cloud.
        device: The device.
        bandwidth_bps: Device downlink bandwidth, bits per second (KV transfer).
        qoe_ttft_s: Expected time to first token of the QoE metric, seconds.
        qoe_tokens_per_s: Expected reading speed of the QoE metric, tokens per second.
        prompt_bytes_per_token: Bytes per prompt token sent as text (the ``bytes_up`` result; 0 counts
            no bytes).
        stream_bytes_per_token: Bytes per streamed token, framing included (the ``bytes_down`` result).
        session: Conversations (all four of ``session``, ``turn``, ``parent``, ``shared_prefix_tokens``
            or none): each request's session (its device), turn, parent (-1 for none) and the tokens it
            shares with the parent's context.
        turn: See ``session``.
        parent: See ``session``.
        shared_prefix_tokens: See ``session``.
        block_offsets: Request ``i``'s cloud prefix blocks are ``block_ids[block_offsets[i]:
            block_offsets[i + 1]]`` (both or neither).
        block_ids: See ``block_offsets``.
        block_tokens: Tokens per prefix block.
        device_cache_tokens: The device's session-cache budget, tokens (0: no cache).
        cloud_cache_tokens: The cloud's prefix-cache capacity, tokens (0: no cache).
        when_device_busy: None (the default): each device serves its requests side by side. Else a device
            serves one answer at a time (a request holds its device from its arrival until its device
            work ends), and a request that finds its device busy is served by the cloud for the whole
            answer (``"cloud"``: a run with a cloud), or, with a device-only plan, waits for the device,
            first come first served (``"wait"``: a run without one); :meth:`results` then adds
            ``device_busy`` (uint8, :data:`DEVICE_BUSY`) and ``device_wait_s``.

    Raises:
        InvalidInputError: A bad time or token count (the message names the array and index), arrays of
            different lengths, a byte size that is negative or not finite, or an unknown
            ``when_device_busy``.
    """

    def __new__(
        cls,
        *,
        arrival_s: npt.NDArray[np.float64],
        prompt_tokens: npt.NDArray[np.int64],
        output_tokens: npt.NDArray[np.int64],
        one_way_s: npt.NDArray[np.float64],
        cloud: CloudConfig,
        device: DeviceCost,
        bandwidth_bps: float,
        qoe_ttft_s: float = 1.0,
        qoe_tokens_per_s: float = 10.0,
        prompt_bytes_per_token: float = 0.0,
        stream_bytes_per_token: float = 0.0,
        session: npt.NDArray[np.int64] | None = None,
        turn: npt.NDArray[np.int64] | None = None,
        parent: npt.NDArray[np.int64] | None = None,
        shared_prefix_tokens: npt.NDArray[np.int64] | None = None,
        block_offsets: npt.NDArray[np.int64] | None = None,
        block_ids: npt.NDArray[np.uint64] | None = None,
        block_tokens: int = 512,
        device_cache_tokens: int = 0,
        cloud_cache_tokens: int = 0,
        when_device_busy: str | None = None,
    ) -> Self: ...
    def cached(self, request: int) -> tuple[int, int]:
        """The prompt tokens ``request`` (waiting for a plan) finds cached now: ``(device, cloud)``.

        Raises:
            InvalidInputError: ``request`` is out of range.
        """
    def next_decision(self) -> int | None:
        """Runs until a request needs a plan and returns its index; ``None`` when all have finished.

        Raises:
            InvalidStateError: The previous request has not been planned yet.
        """

    def run_policy(self, policy: NativePolicy) -> None:
        """Runs every remaining request to the end, planned by ``policy`` inside the simulator.

        Raises:
            InvalidInputError: The policy's optimizer rejects a request.
            InvalidStateError: A request is waiting for a plan from :meth:`decide`.
        """

    def run_policies(self, policies: list[NativePolicy]) -> None:
        """Runs every remaining request to the end, each planned by its device class's policy
        (``policies[class]``, in the fleet's order; one policy plans every class). A request of a class
        with no capable device is not planned: the cloud serves it.

        Raises:
            InvalidInputError: Neither one policy nor one per class, or a policy's optimizer rejects a
                request.
            InvalidStateError: A request is waiting for a plan from :meth:`decide`.
        """

    def set_fleet(
        self,
        *,
        devices: list[DeviceCost | None],
        bandwidth_bps: list[float],
        device_class: npt.NDArray[np.int64],
    ) -> None:
        """Gives the run a fleet; call before the first decision. Each request then runs on its class's
        device (``devices[device_class[i]]``) and downlink (``bandwidth_bps``, bits per second), and the
        built-in policies plan it with that device. A class whose device is None has no capable device:
        its requests are served by the cloud alone, whatever the policy plans (ours: such a client
        cannot run the model). Without a fleet every request is class 0 of the constructor's device and
        bandwidth.

        Raises:
            InvalidInputError: No class, more than 65,536, a bandwidth that is not finite and above 0,
                lists of different lengths, a ``device_class`` that is not one index per request, or an
                index out of range.
            InvalidStateError: The run has started.
        """

    @property
    def device_classes(self) -> int:
        """The number of device classes (1 without a fleet)."""

    def decide(self, request: int, plan: Plan) -> None:
        """Applies ``plan`` to the request :meth:`next_decision` returned (a request with no capable
        device gets a cloud-only plan instead, :meth:`set_fleet`).

        Raises:
            InvalidStateError: ``request`` is not the one waiting for a plan.
        """

    def cloud_load(self) -> dict[str, float]:
        """The cloud's current load: ``waiting_requests``, ``waiting_prefill_tokens``,
        ``running_decode``, ``decode_capacity``, ``kv_used_frac`` and ``prefill_backlog_s``."""

    def record_timeline(self, request: int) -> None:
        """Records the token-level timeline of one request; call before running, once per request to
        record several.

        Raises:
            InvalidInputError: ``request`` is out of range.
        """

    def timeline(self, request: int | None = None) -> dict[str, Any] | None:
        """The recorded timeline of ``request`` (None: the lowest recorded request): ``cloud_arrivals_s``,
        ``displays_s`` (float64 arrays), ``from_cloud`` (bool array), ``handoff_s`` (float or ``None``),
        and the hand-off estimate each time it was set or changed, ``handoff_estimates_at_s`` (when) and
        ``handoff_estimates_s`` (the estimate), float64 arrays; ``None`` if that request was not recorded."""

    def cloud_lone_prefill_s(self, prompt_tokens: int) -> float:
        """The modelled prefill time of ``prompt_tokens`` alone on a cloud replica, seconds."""

    @property
    def now(self) -> float:
        """The simulation clock, seconds."""

    def __len__(self) -> int: ...
    def results(self) -> dict[str, npt.NDArray[Any]]:
        """Per-request results, one array entry per request (float64; ``served_by`` and ``mode`` uint8),
        among them ``bytes_up``, ``bytes_down`` and ``radio_s`` (seconds from the request's send to the
        last byte it received; 0 without network use), and with ``when_device_busy`` ``device_busy``
        (uint8, :data:`DEVICE_BUSY`) and ``device_wait_s`` (seconds its device-only plan waited). Once the
        run has ended they are moved out, not copied (a run's results are held once): a second call raises."""

    def summary(self) -> dict[str, float]:
        """Run counters and the inter-token latency distribution."""
