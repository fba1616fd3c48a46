//! The speed controller: when the device displays each token the cloud streamed to it.
//!
//! # The pacing rule (ours: the paper, arXiv 2508.09035, describes a speed controller but publishes no
//! formula)
//!
//! Let `a[0..n)` be the arrival times of the cloud's tokens at the device, `h` the hand-off time (the
//! earliest time the device's own first token can be displayed) and `[min_tpot, max_tpot]` the allowed
//! display gap. Then
//!
//! ```text
//! s[0] = a[0]
//! s[i] = max(a[i], s[i-1] + g[i])                               for i >= 1
//! g[i] = clamp(floor((h - s[i-1]) / (n - i + 1)), min_tpot, max_tpot)
//! ```
//!
//! `n - i + 1` counts the gaps still to fill from `s[i-1]` to the hand-off: the `n - i` tokens left plus
//! the hand-off gap `h - s[n-1]`. So each token is shown at the even share of the time left until the
//! device takes over, never faster than `min_tpot` and never slower than `max_tpot`. Why this rule:
//!
//! - it spends the buffer evenly, so the stream stays smooth right up to the hand-off instead of
//!   dumping buffered tokens and then stalling (the "naive split" failure);
//! - it is causal: `s[i]` uses only `s[i-1]`, `h`, `n` and `a[i]`, and `a[i]` only when `a[i] >= s[i]`,
//!   so the same rule runs live ([`SpeedController`]) and in batch ([`pace`]);
//! - a revised hand-off estimate simply changes `h` for the tokens not yet shown;
//! - it is O(1) per token with no allocation.
//!
//! # Invariants (property-tested in Rust and Python)
//!
//! - I1 `s[0] == a[0]`.
//! - I2 `s[i] >= a[i]` and `s[i] - s[i-1] >= min_tpot`.
//! - I3 if `a[i] <= s[i-1] + max_tpot` then `s[i] - s[i-1] <= max_tpot`, else `s[i] == a[i]`.
//! - I4 causal, as above.
//! - I5 if `n * max_tpot >= h - a[0]` and every `a[i] <= a[0] + i * p` with
//!   `p = clamp(floor((h - a[0]) / n), min_tpot, max_tpot)`, every gap including `h - s[n-1]` is
//!   `<= max_tpot`. (Proof sketch: by induction `p * m <= h - s[i-1] <= max_tpot * m` with `m = n - i + 1`
//!   whenever `p` is unclamped, so each `g[i]` lies in `[p, max_tpot]` and no arrival is late; when `p`
//!   is clamped up to `min_tpot`, every gap is `min_tpot` and the hand-off gap is below it.)
//! - I6 one display time per token, in order.
//!
//! All times are integer nanoseconds, so the invariants hold exactly.

use crate::error::{CoreError, Result};
use crate::time::Nanos;
use std::collections::VecDeque;

/// The display-gap bounds of the controller, validated: `0 <= min_tpot < max_tpot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaceConfig {
    min_tpot: Nanos,
    max_tpot: Nanos,
}

impl PaceConfig {
    /// Validates the bounds.
    pub fn new(min_tpot: Nanos, max_tpot: Nanos) -> Result<Self> {
        if min_tpot < Nanos::ZERO {
            return Err(CoreError::invalid(
                "min_tpot_s",
                format!("is negative ({min_tpot})"),
                "pass min_tpot_s >= 0 seconds",
            ));
        }
        if max_tpot <= min_tpot {
            return Err(CoreError::invalid(
                "max_tpot_s",
                format!("must be greater than min_tpot_s ({max_tpot} <= {min_tpot})"),
                "pass max_tpot_s (the TPOT SLO) strictly above min_tpot_s",
            ));
        }
        Ok(Self { min_tpot, max_tpot })
    }

    /// Validates bounds given in float seconds.
    pub fn from_secs(min_tpot_s: f64, max_tpot_s: f64) -> Result<Self> {
        Self::new(
            Nanos::from_secs(min_tpot_s, "min_tpot_s", None)?,
            Nanos::from_secs(max_tpot_s, "max_tpot_s", None)?,
        )
    }

    /// The smallest display gap.
    #[must_use]
    pub fn min_tpot(&self) -> Nanos {
        self.min_tpot
    }

    /// The largest display gap (the TPOT SLO).
    #[must_use]
    pub fn max_tpot(&self) -> Nanos {
        self.max_tpot
    }

    /// The gap `g` after a token shown at `prev`, with `gaps_left >= 1` gaps to fill until `handoff`:
    /// `clamp(trunc((handoff - prev) / gaps_left), min_tpot, max_tpot)`.
    #[inline]
    #[must_use]
    pub fn gap(&self, prev: Nanos, handoff: Nanos, gaps_left: u64) -> Nanos {
        let share = (handoff.0 - prev.0) / gaps_left.max(1) as i64;
        Nanos(share.clamp(self.min_tpot.0, self.max_tpot.0))
    }

    /// [`gap`](Self::gap), given the previous token's share as a hint.
    ///
    /// While a paced buffer drains, `(handoff - prev) / gaps_left` keeps the same quotient for long
    /// runs (the remainder is carried along), so checking the hint with a multiplication computed off
    /// the critical path replaces the division that otherwise dominates the rule's latency. The result
    /// is always exactly `gap`'s.
    #[inline]
    #[must_use]
    pub fn gap_hinted(&self, prev: Nanos, handoff: Nanos, gaps_left: u64, hint: &mut i64) -> Nanos {
        let d = handoff.0 - prev.0;
        let m = gaps_left.max(1) as i64;
        let q = *hint;
        if q > self.min_tpot.0 && q < self.max_tpot.0 {
            if let Some(lo) = q.checked_mul(m) {
                // q > 0, so lo <= d < lo + m means trunc(d / m) == q, and q is inside the clamp
                if lo <= d && d - lo < m {
                    return Nanos(q);
                }
            }
        }
        let g = self.gap(prev, handoff, gaps_left);
        *hint = g.0;
        g
    }

    /// The display time of a token that arrived at `arrival`, after one shown at `prev`.
    #[inline]
    #[must_use]
    pub fn due(&self, prev: Nanos, arrival: Nanos, handoff: Nanos, gaps_left: u64) -> Nanos {
        (prev + self.gap(prev, handoff, gaps_left)).max(arrival)
    }

    /// [`due`](Self::due) with a share hint (see [`gap_hinted`](Self::gap_hinted)).
    #[inline]
    #[must_use]
    pub fn due_hinted(
        &self,
        prev: Nanos,
        arrival: Nanos,
        handoff: Nanos,
        gaps_left: u64,
        hint: &mut i64,
    ) -> Nanos {
        (prev + self.gap_hinted(prev, handoff, gaps_left, hint)).max(arrival)
    }
}

/// Gaps left to fill when token `index` (0-based) of `expected` is next: the tokens from `index` on plus
/// the hand-off gap. A stream longer than expected falls back to one gap (show at the pace to `h`).
#[inline]
fn gaps_left(expected: u64, index: u64) -> u64 {
    expected.saturating_sub(index).saturating_add(1)
}

fn decreasing(arg: &'static str, index: usize, now: Nanos, prev: Nanos) -> CoreError {
    CoreError::invalid_at(
        arg,
        index,
        format!("= {now} is earlier than the previous arrival {prev}"),
        "arrival times must be non-decreasing: pass them in stream order from one clock",
    )
}

/// Paces a whole stream: display times for `arrivals` (float seconds), written to `out`.
///
/// Fuses validation, conversion to nanoseconds and the rule in one O(n) pass without allocation.
/// `out` must have the same length as `arrivals`.
///
/// # Panics
/// If `out` and `arrivals` differ in length (a caller bug, not an input error).
pub fn pace_secs_into(arrivals: &[f64], handoff: Nanos, cfg: PaceConfig, out: &mut [f64]) -> Result<()> {
    assert_eq!(arrivals.len(), out.len(), "pace_secs_into: output length must match");
    let n = arrivals.len() as u64;
    let mut prev = Nanos::ZERO;
    let mut prev_arrival = Nanos::ZERO;
    let mut hint = 0;
    for (i, (&a, s)) in arrivals.iter().zip(out.iter_mut()).enumerate() {
        let a = Nanos::from_secs(a, "arrivals", Some(i))?;
        let shown = if i == 0 {
            a
        } else {
            if a < prev_arrival {
                return Err(decreasing("arrivals", i, a, prev_arrival));
            }
            cfg.due_hinted(prev, a, handoff, gaps_left(n, i as u64), &mut hint)
        };
        *s = shown.as_secs();
        prev = shown;
        prev_arrival = a;
    }
    Ok(())
}

/// Paces a whole stream given in nanoseconds (the simulator's form of [`pace_secs_into`]).
pub fn pace(arrivals: &[Nanos], handoff: Nanos, cfg: PaceConfig) -> Result<Vec<Nanos>> {
    let n = arrivals.len() as u64;
    let mut out = Vec::with_capacity(arrivals.len());
    let mut prev = Nanos::ZERO;
    let mut hint = 0;
    for (i, &a) in arrivals.iter().enumerate() {
        if a < Nanos::ZERO {
            return Err(CoreError::invalid_at(
                "arrivals",
                i,
                format!("is negative ({a})"),
                "pass times >= 0",
            ));
        }
        let shown = if i == 0 {
            a
        } else {
            if a < arrivals[i - 1] {
                return Err(decreasing("arrivals", i, a, arrivals[i - 1]));
            }
            cfg.due_hinted(prev, a, handoff, gaps_left(n, i as u64), &mut hint)
        };
        out.push(shown);
        prev = shown;
    }
    Ok(out)
}

/// The streaming form of the pacing rule, for the live runtime and the simulator.
///
/// Feed arrivals with [`push`](Self::push), revise the hand-off estimate with
/// [`set_handoff`](Self::set_handoff), ask [`next_due`](Self::next_due) when the next buffered token may
/// be shown and confirm with [`mark_shown`](Self::mark_shown). With a fixed hand-off and `expected`
/// equal to the stream length it produces exactly the schedule of [`pace`].
///
/// Without a hand-off estimate the controller paces at `max_tpot`, which makes the buffer last longest.
/// Without an expected stream length it spreads the tokens received so far until the hand-off.
#[derive(Debug, Clone)]
pub struct SpeedController {
    cfg: PaceConfig,
    expected: Option<u64>,
    handoff: Option<Nanos>,
    pending: VecDeque<Nanos>,
    received: u64,
    shown: u64,
    last_arrival: Option<Nanos>,
    last_shown: Option<Nanos>,
}

impl SpeedController {
    /// A controller with no tokens yet.
    #[must_use]
    pub fn new(cfg: PaceConfig, expected: Option<u64>, handoff: Option<Nanos>) -> Self {
        Self {
            cfg,
            expected,
            handoff,
            pending: VecDeque::new(),
            received: 0,
            shown: 0,
            last_arrival: None,
            last_shown: None,
        }
    }

    /// The bounds in force.
    #[must_use]
    pub fn config(&self) -> PaceConfig {
        self.cfg
    }

    /// Records a token that arrived at `at` (not earlier than the previous arrival).
    pub fn push(&mut self, at: Nanos) -> Result<()> {
        if let Some(prev) = self.last_arrival {
            if at < prev {
                return Err(decreasing("at", self.received as usize, at, prev));
            }
        }
        self.pending.push_back(at);
        self.last_arrival = Some(at);
        self.received += 1;
        Ok(())
    }

    /// Revises the hand-off estimate; applies to tokens not yet shown.
    pub fn set_handoff(&mut self, at: Option<Nanos>) {
        self.handoff = at;
    }

    /// Revises the stream length, e.g. to the tokens received when the stream was cut.
    pub fn set_expected(&mut self, expected: Option<u64>) {
        self.expected = expected;
    }

    /// The display time of the next buffered token, or `None` when the buffer is empty.
    #[must_use]
    pub fn next_due(&self) -> Option<Nanos> {
        let &arrival = self.pending.front()?;
        let Some(prev) = self.last_shown else { return Some(arrival) };
        let gap = match self.handoff {
            Some(h) => {
                let left = self.expected.map_or(self.received - self.shown + 1, |n| gaps_left(n, self.shown));
                self.cfg.gap(prev, h, left)
            }
            None => self.cfg.max_tpot,
        };
        Some((prev + gap).max(arrival))
    }

    /// Marks the next buffered token shown, at its due time or at `at` if given (a late display).
    /// Returns the display time used.
    pub fn mark_shown(&mut self, at: Option<Nanos>) -> Result<Nanos> {
        let Some(due) = self.next_due() else {
            return Err(CoreError::state(
                "mark_shown: no token is buffered",
                "call next_due() first and show a token only when it returns a time",
            ));
        };
        let shown = match at {
            Some(t) if t < due => {
                return Err(CoreError::invalid(
                    "at",
                    format!("= {t} is before the token's due time {due}"),
                    "show a token at or after next_due()",
                ))
            }
            Some(t) => t,
            None => due,
        };
        self.pending.pop_front();
        self.shown += 1;
        self.last_shown = Some(shown);
        Ok(shown)
    }

    /// Tokens received so far.
    #[must_use]
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Tokens shown so far.
    #[must_use]
    pub fn shown(&self) -> u64 {
        self.shown
    }

    /// Tokens received but not yet shown.
    #[must_use]
    pub fn buffered(&self) -> u64 {
        self.received - self.shown
    }

    /// When the last token was shown.
    #[must_use]
    pub fn last_shown(&self) -> Option<Nanos> {
        self.last_shown
    }

    /// The hand-off estimate in force.
    #[must_use]
    pub fn handoff(&self) -> Option<Nanos> {
        self.handoff
    }

    /// The expected stream length in force.
    #[must_use]
    pub fn expected(&self) -> Option<u64> {
        self.expected
    }
}

#[cfg(test)]
mod tests;
