//! The cloud's prices: one replica's iteration time, and what a lone request costs.
//!
//! Iteration time (DistServe's fitted form, extended with chunk offsets):
//! `t = base + prefill_token·ΣP + prefill_attn·Σ((offset + chunk)² − offset²) + decode_seq·B + decode_context·Σctx`,
//! for prefill chunks of `chunk` tokens after `offset` cached ones, `B` decoding sequences and their
//! contexts `ctx`. The attention term makes a prompt's total `prefill_attn·len²` however it is chunked,
//! matching the unchunked fit. The simulator's replicas ([`crate::sim::cloud`]) run exactly these
//! iterations; the lone-request prices below are the same iterations with nothing else in the batch, and
//! are what the optimizer plans with.

use crate::error::{CoreError, Result};

/// The iteration-time coefficients of one cloud replica, all in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CloudCost {
    /// Fixed time per iteration.
    pub base_s: f64,
    /// Per prefill token.
    pub prefill_token_s: f64,
    /// Per unit of `chunk·(2·offset + chunk)`.
    pub prefill_attn_s: f64,
    /// Per decoding sequence.
    pub decode_seq_s: f64,
    /// Per context token of decoding sequences.
    pub decode_context_s: f64,
    /// Token budget of one iteration (prefill chunks and decode tokens).
    pub max_tokens_per_iteration: u32,
}

/// The parts of one iteration's time, seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IterationTime {
    /// The prefill terms.
    pub prefill_s: f64,
    /// The decode terms.
    pub decode_s: f64,
    /// `base + prefill + decode`.
    pub total_s: f64,
}

impl CloudCost {
    /// Checks every coefficient: finite, non-negative, and some time per iteration of either kind.
    pub fn validate(&self) -> Result<()> {
        let coef = [
            ("base_s", self.base_s),
            ("prefill_token_s", self.prefill_token_s),
            ("prefill_attn_s", self.prefill_attn_s),
            ("decode_seq_s", self.decode_seq_s),
            ("decode_context_s", self.decode_context_s),
        ];
        for (name, v) in coef {
            if !(v.is_finite() && v >= 0.0) {
                return Err(CoreError::invalid(
                    name,
                    format!("is {v}"),
                    "give a finite coefficient >= 0 seconds",
                ));
            }
        }
        if self.base_s + self.decode_seq_s <= 0.0 || self.prefill_token_s + self.base_s <= 0.0 {
            return Err(CoreError::invalid(
                "base_s",
                "and the per-token coefficients make iterations take no time",
                "give base_s > 0 or positive per-token costs",
            ));
        }
        if self.max_tokens_per_iteration == 0 {
            return Err(CoreError::invalid("max_tokens_per_iteration", "is 0", "give a positive count"));
        }
        Ok(())
    }

    /// The attention units of a prefill chunk of `chunk` tokens after `offset` cached ones.
    #[must_use]
    pub fn chunk_attention(offset: u32, chunk: u32) -> f64 {
        f64::from(chunk) * f64::from(2 * offset + chunk)
    }

    /// One iteration with `prefill_tokens` prefill tokens of `attention` units (sum of
    /// [`chunk_attention`](Self::chunk_attention)) and `batch` decoding sequences holding `context` tokens.
    #[must_use]
    pub fn iteration(&self, prefill_tokens: f64, attention: f64, batch: f64, context: f64) -> IterationTime {
        let prefill_s = self.prefill_token_s * prefill_tokens + self.prefill_attn_s * attention;
        let decode_s = self.decode_seq_s * batch + self.decode_context_s * context;
        IterationTime { prefill_s, decode_s, total_s: self.base_s + prefill_s + decode_s }
    }

    /// The prefill of `prompt` tokens alone on an idle replica, chunked by the iteration budget; the
    /// first token is emitted at the end of the last chunk.
    #[must_use]
    pub fn lone_prefill_s(&self, prompt: u32) -> f64 {
        self.lone_prefill_from_s(0, prompt)
    }

    /// [`lone_prefill_s`](Self::lone_prefill_s) of a prompt whose first `cached` tokens are in the prefix
    /// cache: only the rest is prefilled, its attention over the cached tokens included.
    #[must_use]
    pub fn lone_prefill_from_s(&self, cached: u32, prompt: u32) -> f64 {
        let mut done = cached.min(prompt);
        let mut t = 0.0;
        while done < prompt {
            let chunk = (prompt - done).min(self.max_tokens_per_iteration);
            t += self.base_s
                + self.prefill_token_s * f64::from(chunk)
                + self.prefill_attn_s * Self::chunk_attention(done, chunk);
            done += chunk;
        }
        t
    }

    /// One decode step of a lone sequence with `context` tokens.
    #[must_use]
    pub fn lone_decode_s(&self, context: u32) -> f64 {
        self.base_s + self.decode_seq_s + self.decode_context_s * f64::from(context)
    }

    /// Seconds per queued prefill token when iterations are full of prefill: the per-token cost plus the
    /// base cost shared by a full budget.
    #[must_use]
    pub fn queued_prefill_token_s(&self) -> f64 {
        self.prefill_token_s + self.base_s / f64::from(self.max_tokens_per_iteration)
    }

    /// A lower bound of the wait before a new prompt starts prefilling (ours): the prompt tokens waiting
    /// ahead of it beyond one iteration's budget per prefill replica, at the per-token prefill cost,
    /// `max(0, W − budget·R) · prefill_token_s / R`. A lower bound because chunked prefill packs a new
    /// prompt into the iteration under way whenever the budget has room; overestimating the wait is what
    /// causes stalls (the cloud's tokens then arrive earlier than planned and run out before the device is
    /// ready), while underestimating it only costs cloud tokens.
    #[must_use]
    pub fn queue_wait_lower_bound_s(&self, waiting_prefill_tokens: f64, prefill_replicas: u32) -> f64 {
        let replicas = f64::from(prefill_replicas.max(1));
        let ahead = waiting_prefill_tokens - f64::from(self.max_tokens_per_iteration) * replicas;
        ahead.max(0.0) * self.prefill_token_s / replicas
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the prices compared are exact by construction
mod tests {
    use super::*;

    fn a100() -> CloudCost {
        CloudCost {
            base_s: 0.005,
            prefill_token_s: 5e-5,
            prefill_attn_s: 1e-9,
            decode_seq_s: 1e-4,
            decode_context_s: 2e-8,
            max_tokens_per_iteration: 512,
        }
    }

    #[test]
    fn lone_prefill_charges_attention_once_however_chunked() {
        let c = a100();
        let one_chunk = CloudCost { max_tokens_per_iteration: 4096, ..c };
        let l = 1500_u32;
        let chunks = 3.0; // 512 + 512 + 476
        let want = c.base_s * chunks + c.prefill_token_s * f64::from(l) + c.prefill_attn_s * f64::from(l * l);
        assert!((c.lone_prefill_s(l) - want).abs() < 1e-12);
        let want_one = c.base_s + c.prefill_token_s * f64::from(l) + c.prefill_attn_s * f64::from(l * l);
        assert!((one_chunk.lone_prefill_s(l) - want_one).abs() < 1e-12);
        assert_eq!(c.lone_prefill_s(0), 0.0);
    }

    #[test]
    fn iteration_matches_the_lone_prices() {
        let c = a100();
        let it = c.iteration(0.0, 0.0, 1.0, 700.0);
        assert!((it.total_s - c.lone_decode_s(700)).abs() < 1e-15);
        let it = c.iteration(300.0, CloudCost::chunk_attention(0, 300), 0.0, 0.0);
        assert!((it.total_s - c.lone_prefill_s(300)).abs() < 1e-15);
    }

    #[test]
    fn queue_wait_bound_ignores_what_one_iteration_absorbs() {
        let c = a100();
        assert_eq!(c.queue_wait_lower_bound_s(400.0, 1), 0.0);
        assert!((c.queue_wait_lower_bound_s(1512.0, 1) - 1000.0 * 5e-5).abs() < 1e-15);
        assert!((c.queue_wait_lower_bound_s(2024.0, 2) - 1000.0 * 5e-5 / 2.0).abs() < 1e-15);
    }

    #[test]
    fn validate_rejects_bad_coefficients() {
        assert!(CloudCost { base_s: f64::NAN, ..a100() }.validate().is_err());
        assert!(CloudCost { prefill_attn_s: -1.0, ..a100() }.validate().is_err());
        assert!(CloudCost { base_s: 0.0, decode_seq_s: 0.0, ..a100() }.validate().is_err());
        assert!(CloudCost { max_tokens_per_iteration: 0, ..a100() }.validate().is_err());
        assert!(a100().validate().is_ok());
    }
}
