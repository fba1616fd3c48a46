//! The device model: prefill time over prompt length and decode TPOT over context, both piecewise-linear
//! over measured points.
//!
//! Modelling choices (ours; the paper gives none):
//! - below the first measured point, prefill time interpolates from `(0, 0)`; TPOT is held flat;
//! - beyond the last point both extrapolate along the last segment, so attention's growth continues;
//! - appending `n` tokens to a context of `c` (the amortized prefill of received cloud tokens) costs
//!   `max(prefill(c + n) - prefill(c), tpot(c))`: the marginal prefill cost, but never less than one
//!   forward pass, which a decode step measures.

use crate::error::{CoreError, Result};
use crate::time::Nanos;

/// A piecewise-linear function over strictly increasing `x`.
#[derive(Debug, Clone)]
pub struct Curve {
    x: Vec<f64>,
    y: Vec<f64>,
    from_origin: bool,
}

impl Curve {
    /// Validates the points: at least one, `x` finite, non-negative and strictly increasing, `y` finite
    /// and non-negative.
    pub fn new(x: Vec<f64>, y: Vec<f64>, from_origin: bool, arg: &'static str) -> Result<Self> {
        if x.is_empty() || x.len() != y.len() {
            return Err(CoreError::invalid(
                arg,
                format!("has {} x values and {} y values", x.len(), y.len()),
                "give at least one point and as many times as lengths",
            ));
        }
        for i in 0..x.len() {
            if !(x[i].is_finite() && x[i] >= 0.0) || (i > 0 && x[i] <= x[i - 1]) {
                return Err(CoreError::invalid_at(
                    arg,
                    i,
                    format!("token count {} is not finite, non-negative and increasing", x[i]),
                    "list measured points in strictly increasing token order",
                ));
            }
            if !(y[i].is_finite() && y[i] >= 0.0) {
                return Err(CoreError::invalid_at(
                    arg,
                    i,
                    format!("time {} s is not a finite non-negative number", y[i]),
                    "fix the measured time in the profile",
                ));
            }
        }
        Ok(Self { x, y, from_origin })
    }

    /// The value at `at`.
    #[must_use]
    pub fn at(&self, at: f64) -> f64 {
        let (x, y) = (&self.x, &self.y);
        let n = x.len();
        let i = x.partition_point(|&v| v <= at);
        let (x0, y0, x1, y1) = if i == 0 {
            if !self.from_origin {
                return y[0];
            }
            (0.0, 0.0, x[0], y[0])
        } else if i == n {
            if n == 1 {
                return if self.from_origin { y[0] * at / x[0].max(1.0) } else { y[0] };
            }
            (x[n - 2], y[n - 2], x[n - 1], y[n - 1])
        } else {
            (x[i - 1], y[i - 1], x[i], y[i])
        };
        let v = y0 + (y1 - y0) * (at - x0) / (x1 - x0);
        v.max(0.0)
    }
}

fn to_nanos(secs: f64) -> Nanos {
    Nanos((secs * 1e9).round() as i64)
}

/// One device's speed.
#[derive(Debug, Clone)]
pub struct DeviceModel {
    prefill: Curve,
    tpot: Curve,
    kv_bytes_per_token: f64,
}

impl DeviceModel {
    /// A model from measured points.
    pub fn new(prefill: Curve, tpot: Curve, kv_bytes_per_token: f64) -> Result<Self> {
        if !(kv_bytes_per_token.is_finite() && kv_bytes_per_token > 0.0) {
            return Err(CoreError::invalid(
                "kv_bytes_per_token",
                format!("is {kv_bytes_per_token}"),
                "give the device model's KV-cache bytes per token (> 0)",
            ));
        }
        Ok(Self { prefill, tpot, kv_bytes_per_token })
    }

    /// Prefill time of a prompt of `tokens`.
    #[must_use]
    pub fn prefill(&self, tokens: u64) -> Nanos {
        to_nanos(self.prefill.at(tokens as f64))
    }

    /// Time to append `n` tokens to a context of `ctx` (see the module doc).
    #[must_use]
    pub fn append(&self, ctx: u64, n: u64) -> Nanos {
        let marginal = self.prefill.at((ctx + n) as f64) - self.prefill.at(ctx as f64);
        to_nanos(marginal.max(self.tpot.at(ctx as f64)))
    }

    /// Decode time per token at context `ctx` (at least 1 ns).
    #[must_use]
    pub fn tpot(&self, ctx: u64) -> Nanos {
        Nanos(to_nanos(self.tpot.at(ctx as f64)).0.max(1))
    }

    /// KV-cache bytes per token of the device's model.
    #[must_use]
    pub fn kv_bytes_per_token(&self) -> f64 {
        self.kv_bytes_per_token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_and_extrapolates() {
        let c = Curve::new(vec![100.0, 200.0], vec![1.0, 3.0], true, "p").unwrap();
        assert!((c.at(50.0) - 0.5).abs() < 1e-12);
        assert!((c.at(150.0) - 2.0).abs() < 1e-12);
        assert!((c.at(300.0) - 5.0).abs() < 1e-12);
        let flat = Curve::new(vec![100.0, 200.0], vec![0.01, 0.02], false, "t").unwrap();
        assert!((flat.at(10.0) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn rejects_bad_points() {
        assert!(Curve::new(vec![1.0, 1.0], vec![0.0, 1.0], true, "p").is_err());
        let e = Curve::new(vec![1.0, 2.0], vec![0.0, f64::NAN], true, "prefill_s").unwrap_err();
        assert!(e.to_string().contains("prefill_s[1]"), "{e}");
    }

    #[test]
    fn append_costs_at_least_a_decode_step() {
        let p = Curve::new(vec![1000.0], vec![1.0], true, "p").unwrap();
        let t = Curve::new(vec![0.0], vec![0.02], false, "t").unwrap();
        let d = DeviceModel::new(p, t, 1.0).unwrap();
        assert_eq!(d.append(500, 1), Nanos::ms(20));
        assert_eq!(d.append(500, 100), Nanos::ms(100));
    }
}
