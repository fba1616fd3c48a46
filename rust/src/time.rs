//! Time as integer nanoseconds.
//!
//! Invariant: every time inside the core is a [`Nanos`], an `i64` count of nanoseconds, so schedules are
//! exact and runs are bit-for-bit reproducible. Float seconds exist only at the Python boundary, where
//! [`Nanos::from_secs`] rounds to the nearest nanosecond after checking the value is finite, in range and
//! (for times) not negative. Converting back with [`Nanos::as_secs`] is monotone, so orderings survive.
//!
//! The clock's range: a run never reaches past [`Nanos::LIMIT`] (10^9 s, about 32 years), far below
//! `i64::MAX` (about 9.2·10^9 s). Prices are converted to nanoseconds once, and times add up saturating
//! at `i64::MAX` rather than wrapping, so a price or a sum too large for the clock stays beyond the limit
//! however it was reached; the simulator then refuses it where it was computed
//! ([`check_clock`]), naming the request and what was priced, and the event loop refuses to schedule past
//! the limit. A time is never clamped into range: a run either stays within the clock or fails.

use crate::error::{CoreError, Result};
use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// Nanoseconds per second.
pub const NANOS_PER_SEC: i64 = 1_000_000_000;

/// The largest time accepted from float seconds: about 106 days, far beyond any trace, and small enough
/// that `i64` sums of a few thousand such values cannot overflow.
pub const MAX_SECS: f64 = 9.2e6;

/// `y.round()` for `0 <= y < 2^52`, inline: `y - trunc(y)` is exact there, so this rounds half away
/// from zero exactly like `f64::round`, without the libm call baseline x86-64 makes for it.
#[inline]
pub(crate) fn round_non_negative(y: f64) -> i64 {
    let t = y as i64;
    if y - t as f64 >= 0.5 {
        t + 1
    } else {
        t
    }
}

/// The latest time a run may reach, in seconds (`pdcore.limits.MAX_SIM_TIME_S` on the Python side).
pub const CLOCK_LIMIT_SECS: f64 = 1e9;

/// `t`, the time `what` ends at, if the clock holds it ([`Nanos::LIMIT`]); else an error naming `arg`
/// (and `index`) and what was priced, with `fix`.
pub fn check_clock(
    t: Nanos,
    arg: &'static str,
    index: Option<usize>,
    what: impl FnOnce() -> String,
    fix: &'static str,
) -> Result<Nanos> {
    if t <= Nanos::LIMIT {
        return Ok(t);
    }
    let problem = format!(
        "{} would end at {}, beyond the simulated clock's limit of {CLOCK_LIMIT_SECS:e} s",
        what(),
        if t.0 == i64::MAX { "more than 9.2e9 s".to_owned() } else { format!("{:e} s", t.as_secs()) },
    );
    Err(match index {
        Some(i) => CoreError::invalid_at(arg, i, problem, fix),
        None => CoreError::invalid(arg, problem, fix),
    })
}

/// A time or duration in integer nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Nanos(pub i64);

impl Nanos {
    /// Zero.
    pub const ZERO: Self = Self(0);
    /// A time later than any real one; used as "never".
    pub const MAX: Self = Self(i64::MAX);
    /// The latest time a run may reach ([`CLOCK_LIMIT_SECS`]; module doc).
    pub const LIMIT: Self = Self(1_000_000_000 * NANOS_PER_SEC);

    /// Converts non-negative float seconds (NaN fails the range check), naming `arg` (and `index`) in the error.
    #[inline]
    pub fn from_secs(secs: f64, arg: &'static str, index: Option<usize>) -> Result<Self> {
        if (0.0..=MAX_SECS).contains(&secs) {
            return Ok(Self(round_non_negative(secs * 1e9)));
        }
        Err(Self::invalid_secs(secs, arg, index))
    }

    #[cold]
    #[inline(never)]
    fn invalid_secs(secs: f64, arg: &'static str, index: Option<usize>) -> CoreError {
        let problem = if secs.is_nan() {
            "is NaN".to_owned()
        } else if secs.is_infinite() {
            format!("is {secs}")
        } else if secs < 0.0 {
            format!("is negative ({secs} s)")
        } else {
            format!("is too large ({secs} s > {MAX_SECS} s)")
        };
        let fix = "pass finite, non-negative times and durations in seconds";
        match index {
            Some(i) => CoreError::invalid_at(arg, i, problem, fix),
            None => CoreError::invalid(arg, problem, fix),
        }
    }

    /// Converts from float seconds where the value is known good (tests, constants).
    ///
    /// # Panics
    /// If `secs` is not a valid time.
    #[must_use]
    pub fn secs(secs: f64) -> Self {
        Self::from_secs(secs, "secs", None).expect("valid seconds")
    }

    /// Milliseconds, for literals.
    #[must_use]
    pub const fn ms(ms: i64) -> Self {
        Self(ms * 1_000_000)
    }

    /// This time in float seconds (monotone: `a <= b` implies `a.as_secs() <= b.as_secs()`).
    #[inline]
    #[must_use]
    pub fn as_secs(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// Saturating addition, so "never" plus a duration stays "never".
    #[inline]
    #[must_use]
    pub fn saturating_add(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }
}

/// Saturating: a sum too large for the clock stays beyond [`Nanos::LIMIT`] instead of wrapping (module doc).
impl Add for Nanos {
    type Output = Self;
    #[inline]
    fn add(self, rhs: Self) -> Self {
        Self(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for Nanos {
    #[inline]
    fn add_assign(&mut self, rhs: Self) {
        self.0 = self.0.saturating_add(rhs.0);
    }
}

impl Sub for Nanos {
    type Output = Self;
    #[inline]
    fn sub(self, rhs: Self) -> Self {
        Self(self.0 - rhs.0)
    }
}

impl fmt::Display for Nanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.9} s", self.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_nearest_nanosecond_and_back() {
        assert_eq!(Nanos::secs(0.1), Nanos(100_000_000));
        assert_eq!(Nanos::secs(1.5e-9), Nanos(2));
        for ns in [0_i64, 1, 999, 123_456_789, 3_600_000_000_007] {
            let s = Nanos(ns).as_secs();
            assert_eq!(Nanos::secs(s), Nanos(ns), "round trip of {ns}");
        }
    }

    #[test]
    fn rejects_nan_inf_negative_and_huge() {
        for bad in [f64::NAN, f64::INFINITY, -1e-9, 1e12] {
            let e = Nanos::from_secs(bad, "h", None).unwrap_err();
            assert!(e.to_string().starts_with("h "), "{e}");
        }
        let e = Nanos::from_secs(f64::NAN, "arrivals", Some(4)).unwrap_err();
        assert!(e.to_string().contains("arrivals[4] is NaN"), "{e}");
    }

    #[test]
    fn inline_rounding_matches_f64_round() {
        for y in [0.0, 0.499_999_999_999_999_94, 0.5, 1.5, 2.5, 123_456.5, 4.5e15 + 0.5, 9.2e15] {
            assert_eq!(round_non_negative(y), y.round() as i64, "{y}");
        }
    }

    #[test]
    fn sums_past_the_clock_saturate_and_are_refused() {
        let huge = Nanos(i64::MAX - 5);
        assert_eq!(huge + Nanos(10), Nanos::MAX);
        let mut t = Nanos::LIMIT;
        t += huge;
        assert_eq!(t, Nanos::MAX);
        let fix = "check the profile";
        assert_eq!(check_clock(Nanos::LIMIT, "x", None, || "y".into(), fix), Ok(Nanos::LIMIT));
        let e = check_clock(t, "request", Some(3), || "its decode".into(), fix).unwrap_err().to_string();
        assert!(e.starts_with("request[3] its decode would end at more than 9.2e9 s, beyond"), "{e}");
        let e = check_clock(Nanos::LIMIT + Nanos(1_000_000_000), "x", None, || "y".into(), fix).unwrap_err();
        assert!(e.to_string().contains("would end at 1.000000001e9 s"), "{e}");
    }

    #[test]
    fn conversion_is_monotone() {
        let mut prev = f64::MIN;
        for ns in (0..2000).map(|i| i * 7 + 1_000_000_000_000) {
            let s = Nanos(ns).as_secs();
            assert!(s >= prev);
            prev = s;
        }
    }
}
