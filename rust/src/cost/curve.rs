//! Piecewise-linear curves over measured points.
//!
//! Two kinds, one for each device measurement (the rules are ours; the paper gives none):
//! - **prefill** time over prompt length: below the first point it runs straight from `(0, 0)` (no prompt
//!   costs nothing); between points it interpolates; beyond the last point it continues along the last
//!   segment (with one point, along the line through the origin), so attention's growth continues. The
//!   times must be positive and non-decreasing, so the curve never falls.
//! - **TPOT** (time per output token) over context length: held flat below the first point; interpolated
//!   between points; beyond the last point it continues along the last segment only if that segment
//!   rises, and is otherwise held at the last measured value. A decode step never gets cheaper than the
//!   last measurement because the context grew (a noisy falling tail of raw medians would otherwise be
//!   extrapolated down to nothing). The times must be positive, so every step costs something.
//!
//! The measured times stay within what hardware can take ([`super::bounds`]): each prefill point's time
//! per token, each decode step. The slopes between points are not bounded (close points may be noisy);
//! a time extrapolated past the simulator's clock is refused there ([`crate::time`]).

use super::bounds::{DEVICE_DECODE_STEP, DEVICE_PREFILL_TOKEN};
use crate::error::{CoreError, Result};

/// Which rule a curve follows (module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Prefill time over prompt tokens.
    Prefill,
    /// Decode time per token over context tokens.
    Tpot,
}

/// A piecewise-linear curve over strictly increasing `x` (module doc for the rules).
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    x: Vec<f64>,
    y: Vec<f64>,
    kind: Kind,
    /// Beyond the last point: extrapolate along the last segment (else hold the last value).
    extend: bool,
}

impl Curve {
    /// Validates the points: at least one, as many `y` as `x`; `x` finite, strictly increasing, at
    /// least 1 token for prefill and 0 for TPOT; `y` finite and positive, and non-decreasing for
    /// prefill. `x_arg` and `y_arg` name the inputs in errors.
    pub fn new(
        kind: Kind,
        x: Vec<f64>,
        y: Vec<f64>,
        x_arg: &'static str,
        y_arg: &'static str,
    ) -> Result<Self> {
        if x.is_empty() {
            return Err(CoreError::invalid(x_arg, "is empty", "give at least one measured point"));
        }
        if x.len() != y.len() {
            return Err(CoreError::invalid(
                y_arg,
                format!("has {} values but {x_arg} has {}", y.len(), x.len()),
                "give one time per token count",
            ));
        }
        let x_min = if kind == Kind::Prefill { 1.0 } else { 0.0 };
        for i in 0..x.len() {
            if !(x[i].is_finite() && x[i] >= x_min) {
                return Err(CoreError::invalid_at(
                    x_arg,
                    i,
                    format!("= {} is not a finite token count >= {x_min}", x[i]),
                    "list measured token counts, finite and at least 1 (prefill) or 0 (decode)",
                ));
            }
            if i > 0 && x[i] <= x[i - 1] {
                return Err(CoreError::invalid_at(
                    x_arg,
                    i,
                    format!("= {} does not exceed the previous value {}", x[i], x[i - 1]),
                    "list the points in strictly increasing order",
                ));
            }
            if !(y[i].is_finite() && y[i] > 0.0) {
                return Err(CoreError::invalid_at(
                    y_arg,
                    i,
                    format!("= {} s is not a finite time > 0", y[i]),
                    "every step takes time: give the measured seconds, finite and above 0",
                ));
            }
            if kind == Kind::Prefill && i > 0 && y[i] < y[i - 1] {
                return Err(CoreError::invalid_at(
                    y_arg,
                    i,
                    format!("= {} s is below the previous point ({} s)", y[i], y[i - 1]),
                    "prefill time must not decrease as the prompt grows: fit the points (profile-device does)",
                ));
            }
        }
        let n = x.len();
        let extend = match kind {
            Kind::Prefill => true,
            Kind::Tpot => n >= 2 && y[n - 1] > y[n - 2],
        };
        Self::check_bounds(kind, &x, &y, y_arg)?;
        Ok(Self { x, y, kind, extend })
    }

    /// Refuses measured times beyond what hardware can take ([`super::bounds`]): a prefill point's time
    /// per token, a decode step.
    fn check_bounds(kind: Kind, x: &[f64], y: &[f64], y_arg: &'static str) -> Result<()> {
        for i in 0..x.len() {
            match kind {
                Kind::Prefill => {
                    DEVICE_PREFILL_TOKEN.check(y_arg, Some(i), y[i] / x[i], "s per prompt token")
                }
                Kind::Tpot => DEVICE_DECODE_STEP.check(y_arg, Some(i), y[i], "s"),
            }?;
        }
        Ok(())
    }

    /// The measured token counts.
    #[must_use]
    pub fn xs(&self) -> &[f64] {
        &self.x
    }

    /// The measured times.
    #[must_use]
    pub fn ys(&self) -> &[f64] {
        &self.y
    }

    /// A cursor for queries in non-decreasing order ([`CurveWalk::at`]).
    #[must_use]
    pub fn walk(&self) -> CurveWalk<'_> {
        CurveWalk { curve: self, i: 0 }
    }

    /// The value at `at` tokens (`at >= 0`).
    #[must_use]
    pub fn at(&self, at: f64) -> f64 {
        self.at_segment(at, self.x.partition_point(|&v| v <= at))
    }

    /// The value at `at`, where `i` is the number of points at or below `at`.
    #[inline]
    fn at_segment(&self, at: f64, i: usize) -> f64 {
        let (x, y) = (&self.x, &self.y);
        let n = x.len();
        let (x0, y0, x1, y1) = if i == 0 {
            match self.kind {
                Kind::Tpot => return y[0],
                Kind::Prefill => (0.0, 0.0, x[0], y[0]),
            }
        } else if i == n {
            if !self.extend {
                return y[n - 1];
            }
            if n == 1 {
                return y[0] * at / x[0]; // prefill with one point: the line through the origin
            }
            (x[n - 2], y[n - 2], x[n - 1], y[n - 1])
        } else {
            (x[i - 1], y[i - 1], x[i], y[i])
        };
        let v = y0 + (y1 - y0) * (at - x0) / (x1 - x0);
        v.max(0.0)
    }
}

/// Evaluates a curve at non-decreasing points, advancing through its segments instead of searching them:
/// the same values as [`Curve::at`].
#[derive(Debug, Clone)]
pub struct CurveWalk<'a> {
    curve: &'a Curve,
    /// Points at or below the last query.
    i: usize,
}

impl CurveWalk<'_> {
    /// The value at `at`, which must not be below the previous query's.
    #[inline]
    pub fn at(&mut self, at: f64) -> f64 {
        let x = &self.curve.x;
        while self.i < x.len() && x[self.i] <= at {
            self.i += 1;
        }
        self.curve.at_segment(at, self.i)
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the prices compared are exact by construction
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn prefill(x: &[f64], y: &[f64]) -> Curve {
        Curve::new(Kind::Prefill, x.to_vec(), y.to_vec(), "x", "y").unwrap()
    }

    fn tpot(x: &[f64], y: &[f64]) -> Curve {
        Curve::new(Kind::Tpot, x.to_vec(), y.to_vec(), "x", "y").unwrap()
    }

    #[test]
    fn prefill_runs_from_the_origin_and_extends_the_last_segment() {
        let c = prefill(&[100.0, 200.0], &[1.0, 3.0]);
        assert!((c.at(50.0) - 0.5).abs() < 1e-12);
        assert!((c.at(150.0) - 2.0).abs() < 1e-12);
        assert!((c.at(300.0) - 5.0).abs() < 1e-12);
        assert_eq!(c.at(0.0), 0.0);
        let one = prefill(&[1000.0], &[2.0]);
        assert!((one.at(3000.0) - 6.0).abs() < 1e-12);
    }

    #[test]
    fn falling_tpot_tail_is_held_at_the_last_value() {
        // the named regression: 30 ms at context 0 falling to 20 ms at 1,000
        let c = tpot(&[0.0, 1000.0], &[0.030, 0.020]);
        assert!((c.at(500.0) - 0.025).abs() < 1e-15);
        assert_eq!(c.at(1000.0), 0.020);
        assert_eq!(c.at(3000.0), 0.020);
        let rising = tpot(&[0.0, 1000.0], &[0.020, 0.030]);
        assert!((rising.at(2000.0) - 0.040).abs() < 1e-15);
        let flat = tpot(&[100.0, 200.0], &[0.01, 0.02]);
        assert_eq!(flat.at(10.0), 0.01);
    }

    #[test]
    fn rejects_bad_points() {
        assert!(Curve::new(Kind::Prefill, vec![1.0, 1.0], vec![1.0, 1.0], "x", "y").is_err());
        let e = Curve::new(Kind::Prefill, vec![1.0, 2.0], vec![1.0, f64::NAN], "x", "prefill_s").unwrap_err();
        assert!(e.to_string().contains("prefill_s[1]"), "{e}");
        let e = Curve::new(Kind::Tpot, vec![0.0, 2.0], vec![0.01, 0.0], "x", "tpot_s").unwrap_err();
        assert!(e.to_string().contains("tpot_s[1]") && e.to_string().contains("> 0"), "{e}");
        assert!(Curve::new(Kind::Prefill, vec![1.0, 2.0], vec![2.0, 1.0], "x", "y").is_err());
        assert!(Curve::new(Kind::Prefill, vec![0.0], vec![1.0], "x", "y").is_err());
        assert!(Curve::new(Kind::Tpot, vec![], vec![], "x", "y").is_err());
    }

    fn points() -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
        prop::collection::vec((1.0_f64..5000.0, 1e-4_f64..0.5), 1..6).prop_map(|pts| {
            let mut x = 0.0;
            pts.into_iter()
                .map(|(dx, y)| {
                    x += dx;
                    (x, y)
                })
                .unzip()
        })
    }

    proptest! {
        #[test]
        fn a_walk_equals_the_search((x, y) in points(), start in 0.0_f64..20_000.0) {
            let c = tpot(&x, &y);
            let mut w = c.walk();
            for k in 0..3000 {
                let at = start + f64::from(k) * 7.0;
                prop_assert_eq!(w.at(at).to_bits(), c.at(at).to_bits());
            }
        }

        #[test]
        fn tpot_never_falls_below_the_last_point_beyond_it((x, y) in points(), beyond in 0.0_f64..1e6) {
            let c = tpot(&x, &y);
            let last = *x.last().unwrap();
            prop_assert!(c.at(last + beyond) >= *y.last().unwrap());
            prop_assert!(c.at(beyond) > 0.0);
        }

        #[test]
        fn prefill_is_non_decreasing((x, mut y) in points(), a in 0.0_f64..40_000.0, b in 0.0_f64..40_000.0) {
            for i in 1..y.len() { if y[i] < y[i - 1] { y[i] = y[i - 1]; } }
            let c = prefill(&x, &y);
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(c.at(lo) <= c.at(hi) + 1e-12);
        }
    }
}
