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
from typing_extensions import Self

__all__ = [
    "CloudConfig",
    "DeadlineMissedError",
    "DeviceConfig",
    "EventLoop",
    "InvalidInputError",
    "InvalidStateError",
    "PdcoreError",
    "Plan",
    "Simulator",
    "SpeedController",
    "TokenBuffer",
    "__version__",
    "pace",
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
    min_tpot: float,
    max_tpot: float,
) -> npt.NDArray[np.float64]:
    """Display times for a stream of cloud tokens: the speed controller in batch form.

    The pacing rule is ours: the paper (arXiv 2508.09035) describes a speed controller but publishes no
    formula. Let ``a[0..n)`` be the arrival times of the cloud's tokens at the device, ``h`` the hand-off
    time (the earliest time the device's own first token can be displayed) and ``[min_tpot, max_tpot]``
    the allowed display gap. Then::

        s[0] = a[0]
        s[i] = max(a[i], s[i-1] + g[i])                               for i >= 1
        g[i] = clamp(floor((h - s[i-1]) / (n - i + 1)), min_tpot, max_tpot)

    ``n - i + 1`` counts the gaps still to fill from ``s[i-1]`` to the hand-off: the ``n - i`` tokens
    left plus the hand-off gap ``h - s[n-1]``. So each token is shown at the even share of the time left
    until the device takes over, never faster than ``min_tpot`` and never slower than ``max_tpot``. All
    times are integer nanoseconds inside (the division truncates; a negative share is clamped up to
    ``min_tpot >= 0`` either way), so these invariants hold exactly:

    - I1 ``s[0] == a[0]``.
    - I2 ``s[i] >= a[i]`` and ``s[i] - s[i-1] >= min_tpot``.
    - I3 if ``a[i] <= s[i-1] + max_tpot`` then ``s[i] - s[i-1] <= max_tpot``, else ``s[i] == a[i]``.
    - I4 causal: ``s[i]`` uses only ``s[i-1]``, ``h``, ``n`` and ``a[i]``, and ``a[i]`` only when
      ``a[i] >= s[i]``, so the same rule runs live (:class:`SpeedController`) and in batch.
    - I5 if ``n * max_tpot >= h - a[0]`` and every ``a[i] <= a[0] + i * p`` with
      ``p = clamp(floor((h - a[0]) / n), min_tpot, max_tpot)``, every gap including ``h - s[n-1]`` is
      ``<= max_tpot``.
    - I6 one display time per token, in order.

    The work runs in one O(n) pass with the GIL released. ``pdcore.pace`` wraps this function for any
    array-like input.

    Args:
        arrivals: Arrival times in seconds, one-dimensional float64, non-decreasing. Non-contiguous
            arrays are copied first.
        handoff_at: The hand-off time ``h`` in seconds.
        min_tpot: The smallest display gap in seconds, ``>= 0``.
        max_tpot: The largest display gap in seconds (the TPOT SLO), ``> min_tpot``.

    Returns:
        The display times in seconds, a new float64 array of the same length (empty for empty input).

    Raises:
        InvalidInputError: An arrival is NaN, infinite, negative, too large or earlier than the one
            before it (the message names ``arrivals[i]``); ``handoff_at``, ``min_tpot`` or ``max_tpot``
            is not a valid time; or ``max_tpot <= min_tpot``.
        TypeError: ``arrivals`` is not a one-dimensional float64 array.
    """

@final
class SpeedController:
    """The streaming speed controller: the pacing rule of :func:`pace`, one token at a time.

    Feed arrivals with :meth:`push`, revise the hand-off estimate with :meth:`set_handoff`, ask
    :meth:`next_due` when the next buffered token may be shown and confirm with :meth:`mark_shown`. With a
    fixed hand-off and ``expected_tokens`` equal to the stream length it produces exactly the schedule of
    :func:`pace`. Without a hand-off estimate it paces at ``max_tpot``, which makes the buffer last
    longest; without an expected stream length it spreads the tokens received so far until the hand-off
    (``n - i + 1`` becomes ``buffered + 1``). A stream longer than ``expected_tokens`` falls back to one
    gap left, i.e. the pace to ``h``.

    Args:
        min_tpot: The smallest display gap in seconds, ``>= 0``.
        max_tpot: The largest display gap in seconds (the TPOT SLO), ``> min_tpot``.
        expected_tokens: How many tokens the cloud will stream (``n``), if known.
        handoff_at: The hand-off estimate ``h`` in seconds, if known.

    Raises:
        InvalidInputError: A time is not finite and non-negative, or ``max_tpot <= min_tpot``.
    """

    def __new__(
        cls,
        *,
        min_tpot: float,
        max_tpot: float,
        expected_tokens: int | None = None,
        handoff_at: float | None = None,
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
    def min_tpot(self) -> float:
        """The smallest display gap, in seconds."""

    @property
    def max_tpot(self) -> float:
        """The largest display gap (the TPOT SLO), in seconds."""

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
    ) -> Self: ...
    @property
    def deployment(self) -> str:
        """``"colocated"`` or ``"disaggregated"``."""

@final
class DeviceConfig:
    """The device's measured prefill and decode curves, piecewise linear between the points.

    Below the first point prefill time interpolates from ``(0, 0)`` and TPOT is held flat; beyond the
    last point both extrapolate along the last segment. Appending ``n`` tokens to a context of ``c``
    costs ``max(prefill(c + n) - prefill(c), tpot(c))``.

    Args:
        prefill_tokens: Prompt lengths measured, strictly increasing, float64.
        prefill_s: Prefill time at each length, seconds, float64.
        decode_context: Context lengths measured, strictly increasing, float64.
        decode_tpot_s: Time per output token at each context, seconds, float64.
        kv_bytes_per_token: The device model's KV-cache size of one token, bytes (KV transfer).

    Raises:
        InvalidInputError: Mismatched lengths, no points, or a value that is not finite, negative or out
            of order; the message names the argument.
    """

    def __new__(
        cls,
        *,
        prefill_tokens: npt.NDArray[np.float64],
        prefill_s: npt.NDArray[np.float64],
        decode_context: npt.NDArray[np.float64],
        decode_tpot_s: npt.NDArray[np.float64],
        kv_bytes_per_token: float,
    ) -> Self: ...
    def prefill_s(self, tokens: int) -> float:
        """Prefill time of a prompt of ``tokens``, seconds."""

    def append_s(self, context: int, tokens: int) -> float:
        """Time to append ``tokens`` to a context of ``context`` tokens, seconds."""

    def tpot_s(self, context: int) -> float:
        """Decode time per token at a context of ``context`` tokens, seconds."""

@final
class Plan:
    """A policy's decision for one request.

    Args:
        mode: ``"cloud"``, ``"device"``, ``"pd"`` (P/D-Device), ``"naive"`` (P/D-Device without the
            speed controller), ``"kv-transfer"`` or ``"race"``.
        k: Cloud decode tokens after the first (``pd`` and ``naive``): the cloud is asked for
            ``min(k + 1, output)`` tokens.
        refine_ratio: Fraction of the prompt the device prefills, in ``(0, 1]``.
        min_tpot: The smallest display gap of the speed controller, seconds.
        max_tpot: The largest display gap (the TPOT SLO), seconds.

    Raises:
        InvalidInputError: An unknown mode, ``refine_ratio`` outside ``(0, 1]`` or bad pacing bounds.
    """

    def __new__(
        cls,
        mode: str,
        *,
        k: int = 0,
        refine_ratio: float = 1.0,
        min_tpot: float = 0.0,
        max_tpot: float = 0.05,
    ) -> Self: ...
    @property
    def mode(self) -> str:
        """The mode's name."""

    @property
    def k(self) -> int:
        """Cloud decode tokens after the first."""

    @property
    def refine_ratio(self) -> float:
        """Fraction of the prompt the device prefills."""

    @property
    def min_tpot(self) -> float:
        """The smallest display gap, seconds."""

    @property
    def max_tpot(self) -> float:
        """The largest display gap, seconds."""

    def __eq__(self, value: object, /) -> bool: ...

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

    Raises:
        InvalidInputError: A bad time or token count (the message names the array and index), or
            arrays of different lengths.
    """

    def __new__(
        cls,
        *,
        arrival_s: npt.NDArray[np.float64],
        prompt_tokens: npt.NDArray[np.int64],
        output_tokens: npt.NDArray[np.int64],
        one_way_s: npt.NDArray[np.float64],
        cloud: CloudConfig,
        device: DeviceConfig,
        bandwidth_bps: float,
        qoe_ttft_s: float = 1.0,
        qoe_tokens_per_s: float = 10.0,
    ) -> Self: ...
    def next_decision(self) -> int | None:
        """Runs until a request needs a plan and returns its index; ``None`` when all have finished.

        Raises:
            InvalidStateError: The previous request has not been planned yet.
        """

    def decide(self, request: int, plan: Plan) -> None:
        """Applies ``plan`` to the request :meth:`next_decision` returned.

        Raises:
            InvalidStateError: ``request`` is not the one waiting for a plan.
        """

    def cloud_load(self) -> dict[str, float]:
        """The cloud's current load: ``waiting_requests``, ``waiting_prefill_tokens``,
        ``running_decode``, ``decode_capacity``, ``kv_used_frac`` and ``prefill_backlog_s``."""

    def record_timeline(self, request: int) -> None:
        """Records the token-level timeline of one request; call before running.

        Raises:
            InvalidInputError: ``request`` is out of range.
        """

    def timeline(self) -> dict[str, Any] | None:
        """The recorded timeline: ``cloud_arrivals_s``, ``displays_s`` (float64 arrays),
        ``from_cloud`` (bool array) and ``handoff_s`` (float or ``None``); ``None`` if none recorded."""

    def cloud_lone_prefill_s(self, prompt_tokens: int) -> float:
        """The modelled prefill time of ``prompt_tokens`` alone on a cloud replica, seconds."""

    @property
    def now(self) -> float:
        """The simulation clock, seconds."""

    def __len__(self) -> int: ...
    def results(self) -> dict[str, npt.NDArray[Any]]:
        """Per-request results, one array entry per request (float64; ``served_by`` and ``mode`` uint8)."""

    def summary(self) -> dict[str, float]:
        """Run counters and the inter-token latency distribution."""
