"""Continuation requests of a split answer: when the cloud is asked for more tokens, and how many.

If the device still falls behind what the buffer can cover once the cloud has sent its quota, the cloud
stream (`pdcore.runtime.cloud_stream.CloudStream.maybe_extend`) sends a continuation request (the prompt
plus the text received) for more tokens, at most ``max_extensions`` times: a pause in the display is worse
than a few extra cloud tokens.

When (`extension_due`). The undisplayed tokens last at most until the last display plus one paced gap
each. A continuation is considered when that is less than `EXTENSION_LEAD_S` plus twice the cloud's
first-token delay away (decide late, with the best estimate, but early enough for new tokens to arrive),
and sent when the hand-off estimate lies more than one gap beyond it.

How many (`extension_tokens`, ours). Each token asked for adds one paced gap to the buffer but also its own
append to the device's work, and arrives only after the continuation's first-token delay at the stream's
pace, so the continuation asks for enough tokens that both the device and the last arrival are within what
the buffer covers, padded by ``k_margin``. Before this rule continuations asked for the gap over the pace
alone: over 33 seeded live requests, both hand-off gaps above 50 ms (68.7 and 177.2 ms) came after four
continuations of 3 to 7 tokens each, the device always a few tokens short.

A device without a speed profile, whose hand-off cannot be estimated until a call of its own is measured, is
taken to be later than anything the buffer covers (ours): the continuation asks for the rest of the answer
(`extension_tokens` with an infinite estimate). Without this rule such a device left the display to run dry
after the cloud's first ``k`` tokens until its prompt was prefilled: live, with ``k`` = 3 and a model given
without a profile, the first answer of a fresh server paused 0.59-0.90 s (three runs). The cloud tokens it
costs are few: the device takes over as soon as it has prefilled what it received, and the rest of the
stream is cancelled.

The stall rule (ours). The rules above act on the hand-off estimate, which is revised when the device or the
cloud makes progress; a device that makes none (a call that never ends, a model starved of the CPU by the
user's other work) leaves the estimate where it was, in time, and the display would run dry and wait for it.
So a display that has shown every received token before the hand-off waits for the device until its gap
reaches ``max_tpot`` or the hand-off estimate passes, whichever is later; then the cloud is asked for the rest
of the answer in one continuation (`CloudStream.unstall`, with a ``device-late`` notice), and the device takes
over if it catches up. That continuation is one more than ``max_extensions`` counts (the estimate's
continuations may have used them all on a device that was then on time), unless it is 0, which asks the cloud
for nothing more. A device that keeps to its estimate is waited for as planned, even past ``max_tpot`` when no
continuation is left to ask for. Without this rule, two busy loops at normal priority beside `pdcore serve` on
two cores (the device's model at the lowest priority) froze the display of 30 answers for 6 to 70 s each
(median 11.9 s, ``benches/python/serve_bench.py --part handoffs --busy 2``) until the device caught up or its
call deadline declared it failed.

When the next and the last token are due (`next_arrival_due`, `last_arrival_due`): at the stream's median
gap after its latest arrival, or after the first-token delay of a request not answered yet. The device
takes over as soon as it has prefilled everything received: when it will have done so before the next
token is due (a continuation's first-token delay is such a pause), the hand-off is then, and the tokens
still asked for are dropped; otherwise it works through the stream, and the hand-off is no earlier than
the last token's arrival plus a call of its own (`pdcore.runtime.request`). Before this distinction the
estimate always waited for the last token: over 120 seeded live requests, the one hand-off gap above
50 ms (61.6 ms) was a device that caught up during a continuation's first-token delay, while the buffer
was paced for the continuation's last token.
"""

from __future__ import annotations

import math

__all__ = ["EXTENSION_LEAD_S", "extension_due", "extension_tokens", "last_arrival_due", "next_arrival_due"]

EXTENSION_LEAD_S = 0.3
"""How long before the buffer could run dry a continuation request is considered (plus twice the cloud's
first-token delay)."""


def extension_due(
    now: float, covered: float, estimate: float, *, pace_s: float, first_token_s: float
) -> bool:
    """Whether a continuation is sent now: the buffer, lasting until ``covered``, runs dry within the lead
    time and the device (due at ``estimate``) is more than one paced gap later (module docstring)."""
    soon = covered - now <= EXTENSION_LEAD_S + 2.0 * first_token_s
    return soon and estimate > covered + pace_s


def extension_tokens(
    now: float,
    covered: float,
    estimate: float,
    *,
    per_token_s: float,
    pace_s: float,
    gap_s: float,
    first_token_s: float,
    k_margin: float,
    max_tokens: int,
) -> int:
    """Tokens a continuation asks for (module docstring): the buffer covers ``covered`` and the device is
    due at ``estimate`` (with the guard); every token asked for adds ``pace_s`` to the first and
    ``per_token_s`` (the device's append of one more received token) to the second, and the last one
    arrives ``first_token_s`` and the stream's gaps (``gap_s``) from ``now``. When the device appends no
    faster than the display shows (or the cloud streams no faster), no number of tokens closes the gap:
    the rest of the answer (``max_tokens``) is asked for, as it is when ``estimate`` is infinite (the
    hand-off cannot be estimated yet: module docstring)."""
    if not math.isfinite(estimate) or per_token_s >= pace_s or gap_s >= pace_s:
        return max_tokens
    device = (estimate - covered) / (pace_s - per_token_s)
    arrival = (now + first_token_s + per_token_s - covered) / (pace_s - gap_s)
    return math.ceil(max(device, arrival, 0.0) * (1.0 + k_margin)) + 1


def next_arrival_due(
    now: float, *, left: int, gap_s: float, sent_at: float, first_token_s: float, last_arrival: float | None
) -> float | None:
    """When the next of ``left`` tokens still asked for should arrive (never before ``now``): ``gap_s``
    after ``last_arrival``, or ``first_token_s`` after ``sent_at`` when the request has not answered yet;
    ``None`` when nothing is left."""
    if left <= 0:
        return None
    if last_arrival is None:
        return max(now, sent_at + first_token_s)
    return max(now, last_arrival + gap_s)


def last_arrival_due(
    now: float, *, left: int, gap_s: float, sent_at: float, first_token_s: float, last_arrival: float | None
) -> float | None:
    """When the last of ``left`` tokens still asked for should arrive (never before ``now``): ``gap_s``
    apart after ``last_arrival`` (the latest of this request), or after ``first_token_s`` from ``sent_at``
    when the request has not answered yet; ``None`` when nothing is left."""
    if left <= 0:
        return None
    if last_arrival is None:
        return max(now, sent_at + first_token_s) + (left - 1) * gap_s
    return max(now, last_arrival) + left * gap_s
