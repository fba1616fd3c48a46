//! Speculative edge-cloud decoding: the device drafts, the cloud verifies.
//!
//! The device (the draft model) proposes `gamma` tokens; the cloud (the target model) verifies them in
//! one forward pass and keeps the accepted prefix plus one token of its own (the correction at the first
//! rejection, or a bonus token when all are accepted), as in Leviathan, Kalman and Matias, "Fast
//! Inference from Transformers via Speculative Decoding" (ICML 2023, arXiv 2211.17192), across the
//! network as in SLED (Li et al., arXiv 2506.09397: edge devices draft, a shared server verifies in
//! batches). With each draft accepted independently with probability `alpha`, a round yields
//! `E = (1 - alpha^(gamma+1)) / (1 - alpha)` tokens in expectation (`gamma + 1` at `alpha = 1`;
//! Leviathan et al., eq. 1).
//!
//! Our rules, where the papers leave the simulation open:
//! - Deterministic rounds: round `r` (from 1) yields `floor(r·E) − floor((r−1)·E)` tokens, so after any
//!   number of rounds the total is the expected one rounded down, and each round yields 1 to `gamma + 1`
//!   tokens (the cloud keeps what the answer still needs). `alpha^(gamma+1)` is a product of
//!   `gamma + 1` factors taken in order, so every implementation computes it to the same bits.
//! - The verification's price, in the cloud's iteration model ([`super::CloudCost::iteration`]): the
//!   sequence holds its decode slot (one decode term at its context, as any decoding sequence) and its
//!   `gamma` drafts are priced as a prefill chunk of `gamma` tokens after its context
//!   ([`verify_terms`](SpecDecode::verify_terms)); they use `gamma + 1` tokens of the iteration's budget.
//! - The device drafts `gamma` tokens per round, one decode step each at the contexts after the tokens
//!   already kept ([`draft`](SpecDecode::draft)); the last round drafts `gamma` too.

use super::cloud::CloudCost;
use super::device::DeviceCost;
use crate::error::{CoreError, Result};
use crate::time::Nanos;

/// The longest draft a plan may ask for.
pub const MAX_DRAFT_TOKENS: u32 = 64;

/// The settings of speculative decoding: draft length and acceptance rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpecDecode {
    /// Draft tokens per round, 1 to [`MAX_DRAFT_TOKENS`].
    pub gamma: u32,
    /// The probability that the cloud accepts a draft token, in [0, 1].
    pub alpha: f64,
}

impl SpecDecode {
    /// Checked settings.
    pub fn new(gamma: u32, alpha: f64) -> Result<Self> {
        if gamma == 0 || gamma > MAX_DRAFT_TOKENS {
            return Err(CoreError::invalid("gamma", format!("is {gamma}"), "draft 1 to 64 tokens per round"));
        }
        if !(alpha.is_finite() && (0.0..=1.0).contains(&alpha)) {
            return Err(CoreError::invalid(
                "alpha",
                format!("is {alpha}"),
                "give the acceptance rate of a draft token in [0, 1]",
            ));
        }
        Ok(Self { gamma, alpha })
    }

    /// The expected tokens a round yields (module doc).
    #[must_use]
    pub fn expected_tokens(&self) -> f64 {
        if self.alpha >= 1.0 {
            return f64::from(self.gamma + 1);
        }
        let mut power = 1.0;
        for _ in 0..=self.gamma {
            power *= self.alpha;
        }
        (1.0 - power) / (1.0 - self.alpha)
    }

    /// The tokens round `round` (from 1) yields: `floor(r·E) − floor((r−1)·E)`.
    #[must_use]
    pub fn round_tokens(&self, round: u32) -> u32 {
        let e = self.expected_tokens();
        let upto = |r: u32| (f64::from(r) * e).floor() as u32;
        upto(round) - upto(round.saturating_sub(1))
    }

    /// The verification's extra prefill terms beyond the sequence's decode term, for a sequence with
    /// `context` tokens: `gamma` tokens and their attention units after `context` cached ones.
    #[must_use]
    pub fn verify_terms(&self, context: u32) -> (f64, f64) {
        (f64::from(self.gamma), CloudCost::chunk_attention(context, self.gamma))
    }

    /// A verification round of a lone sequence with `context` tokens on an idle replica, seconds.
    #[must_use]
    pub fn lone_verify_s(&self, cost: &CloudCost, context: u32) -> f64 {
        let (tokens, attention) = self.verify_terms(context);
        cost.iteration(tokens, attention, 1.0, f64::from(context)).total_s
    }

    /// The device's time to draft a round after `context` tokens: `gamma` decode steps at contexts
    /// `context`, `context + 1`, ...
    #[must_use]
    pub fn draft(&self, device: &DeviceCost, context: u64) -> Nanos {
        device.tpot_steps(context).take(self.gamma as usize).fold(Nanos::ZERO, |a, b| a + b)
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the values compared are exact by construction
mod tests {
    use super::*;
    use crate::testing::a100;

    #[test]
    fn the_expected_tokens_follow_leviathan() {
        let s = SpecDecode::new(4, 0.5).unwrap();
        // (1 - 0.5^5) / 0.5 = 1.9375
        assert_eq!(s.expected_tokens(), 1.9375);
        assert_eq!(SpecDecode::new(4, 1.0).unwrap().expected_tokens(), 5.0);
        assert_eq!(SpecDecode::new(4, 0.0).unwrap().expected_tokens(), 1.0);
    }

    #[test]
    fn rounds_yield_the_expected_total_rounded_down() {
        let s = SpecDecode::new(4, 0.5).unwrap();
        let rounds: Vec<u32> = (1..=8).map(|r| s.round_tokens(r)).collect();
        // floor(r * 1.9375) = 1, 3, 5, 7, 9, 11, 13, 15
        assert_eq!(rounds, [1, 2, 2, 2, 2, 2, 2, 2]);
        let mut total = 0;
        for r in 1..=1000 {
            let n = s.round_tokens(r);
            assert!((1..=5).contains(&n));
            total += n;
            assert_eq!(total, (f64::from(r) * 1.9375).floor() as u32);
        }
        assert!((1..=20).all(|r| SpecDecode::new(3, 1.0).unwrap().round_tokens(r) == 4));
    }

    #[test]
    fn a_round_is_priced_by_the_iteration_model() {
        let cost = a100();
        let s = SpecDecode::new(4, 0.7).unwrap();
        let want = 0.005 + 5e-5 * 4.0 + 1e-9 * 4.0 * 2004.0 + 1e-4 + 2e-8 * 1000.0;
        assert!((s.lone_verify_s(&cost, 1000) - want).abs() < 1e-15);
        // no drafts, no extra: a decode step
        assert!(s.lone_verify_s(&cost, 1000) > cost.lone_decode_s(1000));
    }

    #[test]
    fn drafting_takes_gamma_decode_steps() {
        let d = DeviceCost::new(vec![100.0], vec![0.1], vec![0.0, 1000.0], vec![0.01, 0.02], 1.0).unwrap();
        let s = SpecDecode::new(3, 0.7).unwrap();
        let want = d.tpot(500) + d.tpot(501) + d.tpot(502);
        assert_eq!(s.draft(&d, 500), want);
    }

    #[test]
    fn bad_settings_are_named() {
        assert!(SpecDecode::new(0, 0.5).unwrap_err().to_string().starts_with("gamma"));
        assert!(SpecDecode::new(65, 0.5).unwrap_err().to_string().starts_with("gamma"));
        assert!(SpecDecode::new(4, 1.5).unwrap_err().to_string().starts_with("alpha"));
        assert!(SpecDecode::new(4, f64::NAN).unwrap_err().to_string().starts_with("alpha"));
    }
}
