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
    /// Fixed-point iterations run.
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
                "max_tpot",
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
    let g = inp.first_gap_s.unwrap_or(c);
    let uniform = g.to_bits() == c.to_bits();
    let base = f64::from(refined);
    // tokens arrived by `t` (the first at F, the second at F + g, then every c)
    let arrived_by = |t: f64, n: u64| -> u64 {
        if uniform {
            return if c <= 0.0 { n } else { n.min(((t - f + EPS) / c).floor().max(0.0) as u64 + 1) };
        }
        if t - f + EPS < g {
            return n.min(1);
        }
        let later = if c <= 0.0 { n } else { ((t - f - g + EPS) / c).floor().max(0.0) as u64 + 2 };
        n.min(later)
    };
    // T(n): prefill what has arrived, step by step, until nothing new has
    let ready = |n: u64| -> f64 {
        let mut t = prompt_done;
        let mut done = 0_u64;
        loop {
            let arrived = arrived_by(t, n);
            if arrived <= done {
                return t;
            }
            t += device.append_s(base + done as f64, (arrived - done) as f64);
            done = arrived;
        }
    };
    let cap = u64::from(inp.max_k) + 1;
    let mut n = 1_u64;
    let mut iterations = 0_u32;
    loop {
        iterations += 1;
        let t = ready(n);
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
                device_ready_s: ready(cap),
                iterations,
            });
        }
        n = needed as u64;
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the prices compared are exact by construction
mod tests {
    use super::*;
    use crate::testing::toy_device as toy;
    use proptest::prelude::*;

    fn input(prompt: u32, f: f64, m: f64) -> CatchUpInput {
        CatchUpInput {
            prompt_tokens: prompt,
            first_token_s: f,
            max_tpot_s: m,
            refine_ratio: 1.0,
            cloud_tpot_s: 0.0,
            first_gap_s: None,
            max_k: DEFAULT_MAX_K,
            device_cached_tokens: 0,
        }
    }

    #[test]
    fn a_cached_prefix_leaves_the_rest_to_prefill() {
        // 1000 tokens with 900 cached: the device's prompt is done after appending 100 (0.1 s), before
        // the cloud's first token at 0.2 s, so it answers alone; without the cache it needs k tokens
        let cold = solve_catchup(&toy(), &input(1000, 0.2, 0.05)).unwrap();
        assert!(!cold.device_alone && cold.k > 0);
        let warm =
            solve_catchup(&toy(), &CatchUpInput { device_cached_tokens: 900, ..input(1000, 0.2, 0.05) })
                .unwrap();
        assert!(warm.device_alone);
        assert!((warm.device_ready_s - toy().append_s(900.0, 100.0)).abs() < 1e-12);
        // a refined prompt reuses nothing
        let refined = CatchUpInput { refine_ratio: 0.5, ..input(1000, 0.2, 0.05) };
        let with_cache = CatchUpInput { device_cached_tokens: 900, ..refined };
        assert_eq!(solve_catchup(&toy(), &refined).unwrap(), solve_catchup(&toy(), &with_cache).unwrap());
    }

    #[test]
    fn the_documented_example() {
        // the smallest n with 1.0 + max(0.001 n, 0.02) <= 0.2 + 0.05 n is 17
        let s = solve_catchup(&toy(), &input(1000, 0.2, 0.05)).unwrap();
        assert_eq!(s.k, 16);
        assert!(s.converged && !s.device_alone);
    }

    #[test]
    fn device_alone_when_it_is_first() {
        let s = solve_catchup(&toy(), &input(100, 0.2, 0.05)).unwrap();
        assert!(s.device_alone);
        assert_eq!(s.k, 0);
        assert!((s.device_ready_s - 0.1).abs() < 1e-12);
    }

    #[test]
    fn no_fixed_point_caps_k() {
        // appending costs 60 ms a token at least, the pace is 50 ms: never catches up
        let slow = DeviceCost::new(vec![1000.0], vec![60.0], vec![0.0], vec![0.06], 1.0).unwrap();
        let s = solve_catchup(&slow, &CatchUpInput { max_k: 300, ..input(1000, 0.2, 0.05) }).unwrap();
        assert!(!s.converged);
        assert_eq!(s.k, 300);
    }

    #[test]
    fn rejects_bad_inputs() {
        for bad in [
            CatchUpInput { prompt_tokens: 0, ..input(1, 0.2, 0.05) },
            input(1, f64::NAN, 0.05),
            input(1, 0.2, 0.0),
            CatchUpInput { refine_ratio: 1.5, ..input(1, 0.2, 0.05) },
            CatchUpInput { cloud_tpot_s: -1.0, ..input(1, 0.2, 0.05) },
            CatchUpInput { first_gap_s: Some(f64::NAN), ..input(1, 0.2, 0.05) },
            CatchUpInput { first_gap_s: Some(-0.01), ..input(1, 0.2, 0.05) },
            CatchUpInput { first_gap_s: Some(f64::INFINITY), ..input(1, 0.2, 0.05) },
        ] {
            assert!(solve_catchup(&toy(), &bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_late_first_decode_token_needs_more_tokens() {
        // 20 ms appends; the cloud's tokens every 20 ms but its first decode token 120 ms after the first
        let base = CatchUpInput { cloud_tpot_s: 0.02, ..input(1000, 0.2, 0.05) };
        let late = CatchUpInput { first_gap_s: Some(0.12), ..base };
        let (a, b) = (solve_catchup(&toy(), &base).unwrap(), solve_catchup(&toy(), &late).unwrap());
        assert!(b.k >= a.k, "{a:?} {b:?}");
        // at k the last token shows by F + k d and the device is ready within m of it
        assert!(b.device_ready_s <= 0.2 + f64::from(b.k) * 0.05 + 0.05 + 1e-9);
        // and one token fewer would not do
        let fewer = CatchUpInput { max_k: b.k - 1, ..late };
        assert!(!solve_catchup(&toy(), &fewer).unwrap().converged);
    }

    #[test]
    fn a_first_gap_equal_to_the_pace_changes_nothing() {
        let base = CatchUpInput { cloud_tpot_s: 0.03, ..input(2000, 0.3, 0.05) };
        let same = CatchUpInput { first_gap_s: Some(0.03), ..base };
        assert_eq!(solve_catchup(&toy(), &base).unwrap(), solve_catchup(&toy(), &same).unwrap());
    }

    proptest! {
        #[test]
        fn with_a_first_gap_the_hand_off_gap_condition_holds(
            prompt in 1_u32..4000, f in 0.0_f64..2.0, m in 0.01_f64..0.2, c in 0.0_f64..0.05,
            g in 0.0_f64..0.2, tpot in 0.005_f64..0.08,
        ) {
            let d = DeviceCost::new(vec![1000.0], vec![1.0], vec![0.0], vec![tpot], 1.0).unwrap();
            let inp = CatchUpInput { cloud_tpot_s: c, first_gap_s: Some(g), max_k: 2000, ..input(prompt, f, m) };
            let s = solve_catchup(&d, &inp).unwrap();
            if s.converged && !s.device_alone {
                prop_assert!(s.device_ready_s <= f + f64::from(s.k) * m.max(c) + m + 1e-6);
            }
        }

        #[test]
        fn k_is_the_smallest_that_catches_up(
            prompt in 1_u32..6000, f in 0.0_f64..3.0, m in 0.01_f64..0.2, c in 0.0_f64..0.05,
            per_tok in 1e-4_f64..5e-3, tpot in 0.005_f64..0.08,
        ) {
            let d = DeviceCost::new(vec![1000.0], vec![per_tok * 1000.0], vec![0.0], vec![tpot], 1.0).unwrap();
            let inp = CatchUpInput { cloud_tpot_s: c, max_k: 2000, ..input(prompt, f, m) };
            let s = solve_catchup(&d, &inp).unwrap();
            if s.converged && !s.device_alone {
                let pace = m.max(c);
                // the hand-off gap condition holds at k ...
                prop_assert!(s.device_ready_s <= f + f64::from(s.k) * pace + m + 1e-6);
            }
        }
    }
}
