//! Whether a time is within its objective (the gap rule), and the largest gap's default objective.
//!
//! A gap meets a largest-gap objective `max_tpot_s` when `gap <= max_tpot_s + GAP_SLACK_S`. The slack of
//! one nanosecond is the resolution of the simulator's clock: a gap the speed controller paced at
//! exactly `max_tpot_s` in integer nanoseconds reads back as `max_tpot_s` plus float rounding in seconds,
//! and must count as met. An undefined gap (NaN: a request with fewer than two displayed tokens) has
//! nothing to miss and counts as met. The same rule holds a TTFT to its objective. It is written once,
//! here: the simulator, the optimizer, the router, the report's attainment figures, the grid check and
//! the live timeline all call [`within_objective`] (Python through `pdcore._core.within_objective`).

/// The slack of the rule, seconds (one nanosecond, the simulator's clock resolution).
pub const GAP_SLACK_S: f64 = 1e-9;

/// The largest display gap when none is given, seconds: 50 ms, the paper's "tens of milliseconds"
/// maximum TPOT (20 tokens/s). A plan's default pace and the default objective of a run.
pub const DEFAULT_MAX_TPOT_S: f64 = 0.05;

/// Whether `gap_s` is within `max_tpot_s` (module doc).
#[must_use]
pub fn within_objective(gap_s: f64, max_tpot_s: f64) -> bool {
    gap_s.is_nan() || gap_s <= max_tpot_s + GAP_SLACK_S
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the prices compared are exact by construction
mod tests {
    use super::*;

    #[test]
    fn rule() {
        assert!(within_objective(0.05, 0.05));
        assert!(within_objective(0.05 + 0.5e-9, 0.05));
        assert!(!within_objective(0.05 + 2e-9, 0.05));
        assert!(within_objective(f64::NAN, 0.05));
        assert!(!within_objective(f64::INFINITY, 0.05));
    }
}
