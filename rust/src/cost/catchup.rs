//! How many cloud tokens P/D-Device needs: the catch-up fixed point (ours; the paper has the cloud
//! stream the first token plus `k` decode tokens, enough for the device to catch up, but publishes no
//! formula for `k`).
//!
//! Notation, times in seconds from the request's arrival at the device:
//! - `L` the prompt length and `L_r = max(1, ceil(r·L))` the prompt the device prefills (`r` the refine
//!   ratio; the simulator rounds the same way);
//! - `F` the arrival of the cloud's first token at the device, `g` the cloud's first decode gap and `c`
//!   the time between its later tokens (token `i >= 1` arrives at `F + g + (i − 1)·c`; `g = c` unless
//!   given: in a disaggregated cloud the first decode token also waits for the KV transfer and a decode
//!   slot), `m` the largest display gap (`max_tpot`);
//! - `pre(x)` and `app(x, j)` the device's prefill and append prices ([`DeviceCost`]);
//! - `P = S + pre(L_r)` when the device's prompt is prefilled, with `S = 0`, or `S = F` when `r < 1`
//!   (the refined prompt travels with the first token); with `r = 1` and `c` leading tokens in the
//!   device's session cache, `P = app(c, L − c)` (the device's remaining prefill).
//!
//! The cloud sends `n = k + 1` tokens. `T(n)` is when the device is ready with its own first token: from
//! `P` it prefills, in one step, every token that has arrived and it has not prefilled yet, and repeats
//! until none is left (the simulator's catch-up). The buffer of `n` tokens, shown no faster than it
//! arrives and at most `m` apart, shows its last token by `F + (n − 1)·d` with `d = max(m, c)`, so the
//! hand-off gap stays within `m` when `T(n) <= F + (n − 1)·d + m`. A first gap `g` above `m` would let
//! the buffer last longer, but `g` is an estimate and the display may not count on it: it delays the
//! arrivals `T` sees, never the display (both sides err towards a larger `k`).
//!
//! `k` is `n − 1` for the smallest such `n`, found by iterating `n <- ceil((T(n) − F − m)/d) + 1` from
//! `n = 1` until it stops changing. `T` does not decrease with `n`, so the iterates increase and never
//! pass the smallest solution: the iteration stops exactly there.
//!
//! Edge cases: without refinement, if `P < F` the device's own first token comes before the cloud's and
//! the cloud is not needed (`device_alone`, `k = 0`). When appending costs the device at least `d` per
//! token for every longer prefix, there is no fixed point: the iteration passes `max_k + 1` and the
//! result is `k = max_k` with `converged` false (the cloud streams nearly the whole answer).
//!
//! Cost: every `T(n)` is read off one run of the device's steps against an endless stream
//! ([`Trajectory`]), extended as the iterates grow, so a solve costs at most one device step per token up
//! to `max_k + 1` and a binary search per iterate, however slowly the iterates climb (a tight `max_tpot`
//! makes them climb one token at a time, up to `max_k`); running `T(n)` afresh per iterate cost a step per
//! token per iterate. And when the cloud's tokens come at least `m` apart while the device's fastest step
//! is slower than `m` plus any shortfall of the first gap (and than the later gaps, so it never waits for
//! a token), no `n` past the first few can satisfy the condition: the buffer runs out before every
//! hand-off. The iterates stop there ([`no_fixed_point_beyond`] states the bound) with the same `k`,
//! `converged` and `T(max_k + 1)` as iterating on would give.

use super::device::DeviceCost;
use crate::error::{CoreError, Result};

/// The cap on `k` unless the caller gives one: above the longest outputs of the shipped traces, so a
/// capped plan is cloud-only.
/// (The Python signatures spell it as the literal 4096; a test keeps them equal.)
pub const DEFAULT_MAX_K: u32 = 4096;

/// Slack in the ceiling and floor, so times equal to a multiple of the pace up to float rounding count
/// as equal.
const EPS: f64 = 1e-9;

/// The inputs of the fixed point (module doc for the symbols).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CatchUpInput {
    /// `L`, at least 1.
    pub prompt_tokens: u32,
    /// `F`, seconds from the request's arrival, finite and >= 0.
    pub first_token_s: f64,
    /// `m`, seconds, finite and > 0.
    pub max_tpot_s: f64,
    /// `r`, in (0, 1].
    pub refine_ratio: f64,
    /// `c`, seconds, finite and >= 0 (0: the whole stream arrives at once).
    pub cloud_tpot_s: f64,
    /// `g`, seconds, finite and >= 0; `None` is `c`.
    pub first_gap_s: Option<f64>,
    /// The cap on `k`.
    pub max_k: u32,
    /// Leading prompt tokens already in the device's cache (a follow-up turn's session cache); with
    /// `r = 1` the device prefills only the rest ([`DeviceCost::prompt_s`]). A refined prompt is not a
    /// prefix of the full one, so with `r < 1` nothing is reused.
    pub device_cached_tokens: u32,
}

/// The solution of the fixed point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CatchUp {
    /// Cloud decode tokens after the first (`n − 1`).
    pub k: u32,
    /// The device's own first token comes before the cloud's (`k` is 0).
    pub device_alone: bool,
    /// False when there is no fixed point up to `max_k` (`k` is then `max_k`).
    pub converged: bool,
    /// `T(k + 1)`, or `P` when `device_alone`, seconds from arrival.
    pub device_ready_s: f64,
    /// Fixed-point iterations run (0 for the device alone; when no fixed point is proved early, those run
    /// until then).
    pub iterations: u32,
}

/// The prompt length the device prefills: `max(1, ceil(r·L))`.
#[must_use]
pub fn refined_prompt_tokens(prompt_tokens: u32, refine_ratio: f64) -> u32 {
    ((f64::from(prompt_tokens) * refine_ratio).ceil() as u32).max(1)
}

impl CatchUpInput {
    /// Checks every field; errors name the argument and the fix.
    pub fn validate(&self) -> Result<()> {
        if self.prompt_tokens == 0 {
            return Err(CoreError::invalid(
                "prompt_tokens",
                "is 0",
                "pass a whole number of tokens, at least 1",
            ));
        }
        if !(self.first_token_s.is_finite() && self.first_token_s >= 0.0) {
            return Err(CoreError::invalid(
                "first_token_s",
                format!("is {}", self.first_token_s),
                "pass the expected arrival of the cloud's first token, finite seconds >= 0",
            ));
        }
        if !(self.max_tpot_s.is_finite() && self.max_tpot_s > 0.0) {
            return Err(CoreError::invalid(
                "max_tpot_s",
                format!("is {}", self.max_tpot_s),
                "pass the largest display gap, finite seconds > 0",
            ));
        }
        if !(self.refine_ratio.is_finite() && self.refine_ratio > 0.0 && self.refine_ratio <= 1.0) {
            return Err(CoreError::invalid(
                "refine_ratio",
                format!("is {}", self.refine_ratio),
                "pass the kept fraction of the prompt in (0, 1]",
            ));
        }
        if !(self.cloud_tpot_s.is_finite() && self.cloud_tpot_s >= 0.0) {
            return Err(CoreError::invalid(
                "cloud_tpot_s",
                format!("is {}", self.cloud_tpot_s),
                "pass the cloud's time between tokens, finite seconds >= 0",
            ));
        }
        if let Some(g) = self.first_gap_s {
            if !(g.is_finite() && g >= 0.0) {
                return Err(CoreError::invalid(
                    "first_gap_s",
                    format!("is {g}"),
                    "pass the cloud's first decode gap, finite seconds >= 0, or None for cloud_tpot_s",
                ));
            }
        }
        Ok(())
    }
}

/// Solves the catch-up fixed point (module doc).
pub fn solve_catchup(device: &DeviceCost, inp: &CatchUpInput) -> Result<CatchUp> {
    inp.validate()?;
    let f = inp.first_token_s;
    let m = inp.max_tpot_s;
    let c = inp.cloud_tpot_s;
    let refined = refined_prompt_tokens(inp.prompt_tokens, inp.refine_ratio);
    let start = if inp.refine_ratio < 1.0 { f } else { 0.0 };
    let prompt_done = if inp.refine_ratio >= 1.0 {
        device.prompt_s(refined, inp.device_cached_tokens.min(refined.saturating_sub(1)))
    } else {
        start + device.prefill_s(f64::from(refined))
    };
    if inp.refine_ratio >= 1.0 && prompt_done < f {
        return Ok(CatchUp {
            k: 0,
            device_alone: true,
            converged: true,
            device_ready_s: prompt_done,
            iterations: 0,
        });
    }
    let pace = m.max(c);
    let stream = Stream { f, g: inp.first_gap_s.unwrap_or(c), c };
    let mut device_at = Trajectory::new(device, f64::from(refined), prompt_done, stream);
    let cap = u64::from(inp.max_k) + 1;
    let hopeless = no_fixed_point_beyond(&mut device_at, m);
    let mut n = 1_u64;
    let mut iterations = 0_u32;
    loop {
        if hopeless.is_some_and(|beyond| n > beyond) {
            return Ok(CatchUp {
                k: inp.max_k,
                device_alone: false,
                converged: false,
                device_ready_s: device_at.ready(cap),
                iterations,
            });
        }
        iterations += 1;
        let t = device_at.ready(n);
        let needed = (((t - f - m) / pace - EPS).ceil() + 1.0).max(1.0);
        if needed <= n as f64 {
            return Ok(CatchUp {
                k: (n - 1) as u32,
                device_alone: false,
                converged: true,
                device_ready_s: t,
                iterations,
            });
        }
        if needed > cap as f64 {
            return Ok(CatchUp {
                k: inp.max_k,
                device_alone: false,
                converged: false,
                device_ready_s: device_at.ready(cap),
                iterations,
            });
        }
        n = needed as u64;
    }
}

/// Margin of [`no_fixed_point_beyond`], seconds: far above the rounding of the times and the slack `EPS`.
const HOPELESS_MARGIN_S: f64 = 1e-6;

/// A count of tokens beyond which no `n` satisfies the hand-off condition, when this bound proves it
/// (module doc, cost): the cloud's tokens come at least `m` apart (`d = c`), every gap after the second
/// token (`c`) is shorter than the device's fastest step `τ` (the smallest TPOT: every append costs at
/// least the step at its context), and `τ > m + max(0, c − g)`. Once the second token has arrived at a
/// step's start (`N₀` tokens there; at the start when the first gap `g` is shorter than `τ` too), every
/// step sees a new token, so the device never catches up, and the `n`-th token for `n > N₀`, arriving at
/// `F + g + (n − 2)·c`, still needs a step: `T(n) >= F + (n − 1)·c + (g − c) + τ`, past
/// `F + (n − 1)·d + m`. `None` when the bound does not apply (the iterates then decide). The margin
/// covers rounding.
fn no_fixed_point_beyond(device_at: &mut Trajectory<'_>, m: f64) -> Option<u64> {
    let Stream { g, c, .. } = device_at.stream;
    let tau = device_at.device.tpot_curve().ys().iter().copied().fold(f64::INFINITY, f64::min);
    let applies = c >= m && c <= tau - HOPELESS_MARGIN_S && tau > m + (c - g).max(0.0) + HOPELESS_MARGIN_S;
    if !applies {
        return None;
    }
    if g <= tau - HOPELESS_MARGIN_S {
        return Some(0);
    }
    // a first gap longer than a step: the device may catch up with the first token, and then takes over
    device_at.ready(2);
    let &(_, _, arrived) = device_at.steps.iter().find(|&&(_, _, arrived)| arrived >= 2)?;
    Some(arrived)
}

/// The cloud's stream as the device receives it: the first token at `F`, the second at `F + g`, then one
/// every `c` (module doc).
#[derive(Debug, Clone, Copy)]
struct Stream {
    f: f64,
    g: f64,
    c: f64,
}

impl Stream {
    /// Tokens arrived by `t` of an endless stream (`u64::MAX`: all of them, when `c` is 0).
    fn arrived_by(&self, t: f64) -> u64 {
        let Self { f, g, c } = *self;
        let per_token = |since: f64| ((since + EPS) / c).floor().max(0.0) as u64;
        if g.to_bits() == c.to_bits() {
            return if c <= 0.0 { u64::MAX } else { per_token(t - f).saturating_add(1) };
        }
        if t - f + EPS < g {
            return 1;
        }
        if c <= 0.0 {
            u64::MAX
        } else {
            per_token(t - f - g).saturating_add(2)
        }
    }
}

/// The device's catch-up with an endless stream, step by step from `P`: each step prefills every token
/// that has arrived and it has not prefilled yet. `T(n)` of a stream of `n` tokens follows the same steps
/// until the first one whose arrivals reach `n`, which prefills up to the `n`-th token and ends it (or
/// until the device has caught up with an earlier token, where it ends as well), so every `T(n)` is read
/// off one list of steps: the fixed point costs one step per token at most, not one per token per
/// iterate (the same sums in the same order as running each `T(n)` on its own, so bit for bit equal).
struct Trajectory<'a> {
    device: &'a DeviceCost,
    /// `L_r`, the tokens in the device's cache before the first received one.
    base: f64,
    stream: Stream,
    /// Per step: its start, the tokens prefilled before it, and those arrived at its start.
    steps: Vec<(f64, u64, u64)>,
}

impl<'a> Trajectory<'a> {
    fn new(device: &'a DeviceCost, base: f64, prompt_done: f64, stream: Stream) -> Self {
        let steps = vec![(prompt_done, 0, stream.arrived_by(prompt_done))];
        Self { device, base, stream, steps }
    }

    /// `T(n)`, the time the device has prefilled the first `n` tokens or caught up before they came.
    fn ready(&mut self, n: u64) -> f64 {
        loop {
            let (t, done, arrived) = *self.steps.last().expect("the first step");
            if arrived >= n || arrived <= done {
                break;
            }
            let next = t + self.device.append_s(self.base + done as f64, (arrived - done) as f64);
            self.steps.push((next, arrived, self.stream.arrived_by(next)));
        }
        // arrivals never decrease along the steps: the first whose arrivals reach `n`
        let s = self.steps.partition_point(|&(_, _, arrived)| arrived < n);
        match self.steps.get(s) {
            Some(&(t, done, _)) => t + self.device.append_s(self.base + done as f64, (n - done) as f64),
            None => self.steps.last().expect("the first step").0,
        }
    }
}

#[cfg(test)]
mod tests;
