//! The whole-request router's rule: each request entirely on the device or entirely on the cloud.
//!
//! After RouteLLM (Ong et al., "RouteLLM: Learning to Route LLMs with Preference Data", arXiv 2406.18665),
//! which sends a query to the cheap model when a predictor says the cheap model suffices and to the
//! strong one otherwise. Here the cheap side is the device and "suffices" is pdcore's objectives (RouteLLM
//! scores answer quality; the objective and the predictor below are ours):
//!
//! - The predictor: the answer length of a request is the entry of its prompt's bucket, the bucket of a
//!   prompt of `p` tokens being `floor(log2 p)` (prompts of 1, 2-3, 4-7, ... tokens; buckets past the end
//!   of the table use its last entry). The caller fills the table (pdcore's router: a quantile of the
//!   trace's answer lengths per bucket).
//! - The rule: the device takes the request when, alone, it meets both objectives for the predicted
//!   answer of `o` tokens: its prefill of the prompt within the TTFT objective (of what its session
//!   cache does not hold, [`DeviceCost::prompt_s`]), and each of its decode steps up to the predicted last
//!   token (contexts `p + 1` to `p + o - 1`) within the largest-gap objective, both by the one gap rule
//!   ([`within_objective`], one nanosecond of slack). Otherwise the cloud takes it.

use super::device::DeviceCost;
use super::gap::within_objective;
use crate::error::{CoreError, Result};

/// Buckets of the predictor's table: one per power of two of a `u32` prompt.
pub const ROUTER_BUCKETS: usize = 32;

/// The router's rule (module doc).
#[derive(Debug, Clone)]
pub struct RouterRule {
    predicted: Vec<u32>,
    ttft_slo_s: f64,
    max_tpot_s: f64,
}

impl RouterRule {
    /// A rule with the predicted answer length per prompt bucket (at least one entry, at most
    /// [`ROUTER_BUCKETS`], each >= 1) and the two objectives (finite, > 0).
    pub fn new(predicted: Vec<u32>, ttft_slo_s: f64, max_tpot_s: f64) -> Result<Self> {
        if predicted.is_empty() || predicted.len() > ROUTER_BUCKETS {
            return Err(CoreError::invalid(
                "predicted_output",
                format!("has {} entries", predicted.len()),
                "give one predicted answer length per prompt bucket floor(log2(prompt)), 1 to 32 entries",
            ));
        }
        if let Some(b) = predicted.iter().position(|&o| o == 0) {
            return Err(CoreError::invalid_at(
                "predicted_output",
                b,
                "is 0",
                "predict at least one answer token",
            ));
        }
        for (name, v) in [("ttft_slo_s", ttft_slo_s), ("max_tpot_s", max_tpot_s)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(CoreError::invalid(name, format!("is {v}"), "give a finite time > 0, seconds"));
            }
        }
        Ok(Self { predicted, ttft_slo_s, max_tpot_s })
    }

    /// The predicted answer length of a request with `prompt` tokens.
    #[must_use]
    pub fn predicted_output(&self, prompt: u32) -> u32 {
        let bucket = prompt.max(1).ilog2() as usize;
        self.predicted[bucket.min(self.predicted.len() - 1)]
    }

    /// Whether the device takes a request of `prompt` tokens whose first `cached` the device's session
    /// cache holds (module doc).
    #[must_use]
    pub fn on_device(&self, device: &DeviceCost, prompt: u32, cached: u32) -> bool {
        if !within_objective(device.prompt_s(prompt, cached.min(prompt)), self.ttft_slo_s) {
            return false;
        }
        let steps = self.predicted_output(prompt) - 1;
        device
            .tpot_steps(u64::from(prompt) + 1)
            .take(steps as usize)
            .all(|step| within_objective(step.as_secs(), self.max_tpot_s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> DeviceCost {
        // prefill 1 ms a token; decode 20 ms at an empty cache, 60 ms at 4,000 tokens
        DeviceCost::new(vec![1000.0], vec![1.0], vec![0.0, 4000.0], vec![0.020, 0.060], 1.0).unwrap()
    }

    #[test]
    fn the_predictor_reads_the_prompts_power_of_two() {
        let rule = RouterRule::new(vec![5, 6, 7, 8], 1.0, 0.05).unwrap();
        assert_eq!(rule.predicted_output(1), 5);
        assert_eq!(rule.predicted_output(2), 6);
        assert_eq!(rule.predicted_output(3), 6);
        assert_eq!(rule.predicted_output(7), 7);
        assert_eq!(rule.predicted_output(8), 8);
        assert_eq!(rule.predicted_output(100_000), 8, "past the table: its last entry");
    }

    #[test]
    fn the_device_takes_what_it_serves_within_both_objectives() {
        let d = device();
        // tpot reaches 50 ms at context 3,000: a 1,000-token prompt may decode up to 2,000 tokens
        let rule = |o: u32| RouterRule::new(vec![o; 32], 1.0, 0.05).unwrap();
        assert!(rule(2001).on_device(&d, 1000, 0), "last step at context 3,000: 50 ms");
        assert!(!rule(2002).on_device(&d, 1000, 0), "last step at context 3,001: over 50 ms");
        // the prefill: 1,000 tokens take 1 s, within a 1 s objective; 1,001 do not, unless the session
        // cache holds some of them
        assert!(rule(1).on_device(&d, 1000, 0));
        assert!(!rule(1).on_device(&d, 1001, 0));
        assert!(rule(1).on_device(&d, 1800, 900));
    }

    #[test]
    fn bad_tables_and_objectives_are_named() {
        assert!(RouterRule::new(vec![], 1.0, 0.05).unwrap_err().to_string().starts_with("predicted_output"));
        assert!(RouterRule::new(vec![1, 0], 1.0, 0.05).unwrap_err().to_string().contains("[1]"));
        assert!(RouterRule::new(vec![1], f64::NAN, 0.05).unwrap_err().to_string().starts_with("ttft_slo_s"));
        assert!(RouterRule::new(vec![1], 1.0, 0.0).unwrap_err().to_string().starts_with("max_tpot_s"));
    }
}
