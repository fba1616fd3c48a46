//! The device's prices: prefill, append and decode, from its two measured curves ([`super::curve`]).
//!
//! Appending `n` tokens to a KV cache of `c` tokens (the device prefilling cloud tokens it received) costs
//! `max(prefill(c + n) - prefill(c), tpot(c))` (ours): the marginal prefill cost, as if the tokens had been
//! part of one long prompt, but never less than one forward pass, which a decode step measures. Every
//! price is positive for `n >= 1`, because TPOT is positive everywhere (`Curve`'s rule).
//!
//! The step spread (ours): a device's model calls do not all take their price; `step_spread` is the
//! relative root-mean-square deviation of a call's time around its price (`[decode] step_spread` of a
//! profile, measured by `pdcore profile-device`; 0 by default). It prices nothing: the simulator draws a
//! per-call factor with that spread (`crate::sim::jitter`) and its hand-off guard covers it
//! ([`super::handoff::simulated_handoff`]). It is at most [`MAX_STEP_SPREAD`]: a device whose calls
//! stray further from their price than twice that price is not described by its curves.
//!
//! Seconds are the model's unit; the simulator converts each price to integer nanoseconds once, with
//! [`to_nanos`], so the simulated and the priced times of the same work agree to the nanosecond.

use super::curve::{Curve, Kind};
use crate::error::{CoreError, Result};
use crate::time::{round_non_negative, Nanos};

/// Seconds to the simulator's integer nanoseconds, rounded half away from zero (`f64::round`). Prices
/// are finite and non-negative by construction; below 2^52 ns (52 days) the rounding is done inline,
/// without the libm call baseline x86-64 makes for `f64::round`.
#[inline]
#[must_use]
pub fn to_nanos(secs: f64) -> Nanos {
    let y = secs * 1e9;
    if (0.0..4.5e15).contains(&y) {
        Nanos(round_non_negative(y))
    } else {
        Nanos(y.round() as i64)
    }
}

/// The largest step spread a device may have (module doc).
pub const MAX_STEP_SPREAD: f64 = 2.0;

/// One device's speed: prefill over prompt length, TPOT over context, its model's KV-cache size and the
/// spread of its calls' times around their prices (module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceCost {
    prefill: Curve,
    tpot: Curve,
    kv_bytes_per_token: f64,
    step_spread: f64,
}

impl DeviceCost {
    /// A device from measured points (see [`Curve::new`] for what is checked), named in errors by the
    /// profile keys `[prefill] prompt_tokens`, `[prefill] seconds`, `[decode] context_tokens` and
    /// `[decode] tpot_s`.
    pub fn new(
        prefill_tokens: Vec<f64>,
        prefill_s: Vec<f64>,
        decode_context: Vec<f64>,
        decode_tpot_s: Vec<f64>,
        kv_bytes_per_token: f64,
    ) -> Result<Self> {
        let prefill = Curve::new(
            Kind::Prefill,
            prefill_tokens,
            prefill_s,
            "[prefill] prompt_tokens",
            "[prefill] seconds",
        )?;
        let tpot = Curve::new(
            Kind::Tpot,
            decode_context,
            decode_tpot_s,
            "[decode] context_tokens",
            "[decode] tpot_s",
        )?;
        if !(kv_bytes_per_token.is_finite() && kv_bytes_per_token > 0.0) {
            return Err(CoreError::invalid(
                "kv_bytes_per_token",
                format!("is {kv_bytes_per_token}"),
                "give the device model's KV-cache bytes per token (> 0)",
            ));
        }
        Ok(Self { prefill, tpot, kv_bytes_per_token, step_spread: 0.0 })
    }

    /// The same device with its calls' relative spread set to `spread` (module doc), named in errors by
    /// the profile key `[decode] step_spread`: finite, from 0 to [`MAX_STEP_SPREAD`].
    pub fn with_step_spread(mut self, spread: f64) -> Result<Self> {
        if !(spread.is_finite() && (0.0..=MAX_STEP_SPREAD).contains(&spread)) {
            return Err(CoreError::invalid(
                "[decode] step_spread",
                format!("= {spread}"),
                "give the relative RMS spread of a model call's time around its price, from 0 to 2",
            ));
        }
        self.step_spread = spread;
        Ok(self)
    }

    /// The relative RMS spread of a model call's time around its price (module doc); 0 unless set.
    #[must_use]
    pub fn step_spread(&self) -> f64 {
        self.step_spread
    }

    /// The prefill curve.
    #[must_use]
    pub fn prefill_curve(&self) -> &Curve {
        &self.prefill
    }

    /// The TPOT curve.
    #[must_use]
    pub fn tpot_curve(&self) -> &Curve {
        &self.tpot
    }

    /// Seconds to prefill a prompt of `tokens` from an empty cache.
    #[must_use]
    pub fn prefill_s(&self, tokens: f64) -> f64 {
        self.prefill.at(tokens)
    }

    /// Seconds to append `n` tokens to a cache of `context` (module doc); nothing to append costs nothing.
    #[must_use]
    pub fn append_s(&self, context: f64, n: f64) -> f64 {
        if n <= 0.0 {
            return 0.0;
        }
        let marginal = self.prefill.at(context + n) - self.prefill.at(context);
        marginal.max(self.tpot.at(context))
    }

    /// Seconds to prefill a prompt of `prompt` tokens of which the first `cached` are already in the
    /// device's cache (a follow-up turn's session cache): the append of the rest, or the whole prefill
    /// with nothing cached (so no cache prices exactly as before).
    #[must_use]
    pub fn prompt_s(&self, prompt: u32, cached: u32) -> f64 {
        if cached == 0 {
            self.prefill_s(f64::from(prompt))
        } else {
            self.append_s(f64::from(cached), f64::from(prompt.saturating_sub(cached)))
        }
    }

    /// [`prompt_s`](Self::prompt_s) in nanoseconds.
    #[must_use]
    pub fn prompt(&self, prompt: u32, cached: u32) -> Nanos {
        to_nanos(self.prompt_s(prompt, cached))
    }

    /// Seconds per decoded token with `context` tokens in the cache.
    #[must_use]
    pub fn tpot_s(&self, context: f64) -> f64 {
        self.tpot.at(context)
    }

    /// [`prefill_s`](Self::prefill_s) in nanoseconds.
    #[must_use]
    pub fn prefill(&self, tokens: u64) -> Nanos {
        to_nanos(self.prefill_s(tokens as f64))
    }

    /// [`append_s`](Self::append_s) in nanoseconds.
    #[must_use]
    pub fn append(&self, context: u64, n: u64) -> Nanos {
        to_nanos(self.append_s(context as f64, n as f64))
    }

    /// [`tpot_s`](Self::tpot_s) in nanoseconds, at least 1 ns.
    #[must_use]
    pub fn tpot(&self, context: u64) -> Nanos {
        Nanos(to_nanos(self.tpot_s(context as f64)).0.max(1))
    }

    /// The decode steps at contexts `first_context`, `first_context + 1`, ... in nanoseconds (at least
    /// 1 ns each), equal to [`tpot`](Self::tpot) at each context; walks the curve instead of searching it
    /// per token.
    pub fn tpot_steps(&self, first_context: u64) -> impl Iterator<Item = Nanos> + '_ {
        let mut walk = self.tpot.walk();
        (first_context..).map(move |ctx| Nanos(to_nanos(walk.at(ctx as f64)).0.max(1)))
    }

    /// KV-cache bytes per token of the device's model.
    #[must_use]
    pub fn kv_bytes_per_token(&self) -> f64 {
        self.kv_bytes_per_token
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the prices compared are exact by construction
mod tests {
    use super::*;
    use crate::testing::toy_device;

    #[test]
    fn append_costs_at_least_a_decode_step() {
        let d = toy_device();
        assert_eq!(d.append(500, 1), Nanos::ms(20));
        assert_eq!(d.append(500, 100), Nanos::ms(100));
        assert_eq!(d.prefill(1000), Nanos::ms(1000));
    }

    #[test]
    fn steps_equal_the_priced_steps_and_rounding_is_f64_round() {
        let d =
            DeviceCost::new(vec![1.0], vec![1.0], vec![0.0, 100.0, 300.0], vec![0.01, 0.013, 0.0131], 1.0)
                .unwrap();
        let steps: Vec<Nanos> = d.tpot_steps(50).take(400).collect();
        for (i, s) in steps.iter().enumerate() {
            assert_eq!(*s, d.tpot(50 + i as u64));
        }
        for secs in [0.0, 1e-9, 0.5e-9, 1.5e-9, 2.5e-9, 0.012_345_678_9, 12.345_678_9, 4.6e6, 1e9] {
            assert_eq!(to_nanos(secs).0, (secs * 1e9).round() as i64, "{secs}");
        }
    }

    #[test]
    fn errors_name_the_profile_key() {
        let e = DeviceCost::new(vec![1.0], vec![1.0], vec![0.0, 5.0], vec![0.02, -1.0], 1.0).unwrap_err();
        assert!(e.to_string().starts_with("[decode] tpot_s[1]"), "{e}");
        let e = DeviceCost::new(vec![1.0], vec![1.0], vec![0.0], vec![0.02], 0.0).unwrap_err();
        assert!(e.to_string().starts_with("kv_bytes_per_token"), "{e}");
        for bad in [-0.1, 2.5, f64::NAN, f64::INFINITY] {
            let e = toy_device().with_step_spread(bad).unwrap_err();
            assert!(e.to_string().starts_with("[decode] step_spread"), "{e}");
        }
    }

    #[test]
    fn the_step_spread_defaults_to_zero_and_prices_nothing() {
        let d = toy_device();
        assert_eq!(d.step_spread(), 0.0);
        let spread = d.clone().with_step_spread(0.3).unwrap();
        assert_eq!(spread.step_spread(), 0.3);
        assert_eq!(spread.append(500, 100), d.append(500, 100));
        assert_eq!(spread.tpot(500), d.tpot(500));
        assert_ne!(spread, d);
        assert_eq!(d.clone().with_step_spread(MAX_STEP_SPREAD).unwrap().step_spread(), 2.0);
    }

    #[test]
    fn times_beyond_what_hardware_takes_are_refused() {
        let device = |px: Vec<f64>, py: Vec<f64>, dx: Vec<f64>, dy: Vec<f64>| {
            DeviceCost::new(px, py, dx, dy, 1.0).map(|_| ()).map_err(|e| e.to_string())
        };
        let ok = || (vec![100.0, 1000.0], vec![1.0, 20.0], vec![0.0, 4096.0], vec![0.02, 0.03]);
        let (px, py, dx, dy) = ok();
        assert!(device(px, py, dx, dy).is_ok());
        // 36 s a token, a point at 20 s a token
        for (py, at) in [
            (vec![3600.0, 3600.0], "[prefill] seconds[0] = 36 s per prompt token"),
            (vec![1.0, 20_000.0], "[prefill] seconds[1] = 20 s per prompt token"),
        ] {
            let e = device(ok().0, py, ok().2, ok().3).unwrap_err();
            assert!(e.starts_with(at), "{e}");
        }
        // a minute per decode step
        let e = device(ok().0, ok().1, vec![0.0], vec![60.0]).unwrap_err();
        assert!(e.starts_with("[decode] tpot_s[0] = 60 s is above 10 s"), "{e}");
    }
}
