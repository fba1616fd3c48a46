//! The cloud's prices: one replica's iteration time, and what a lone request costs.
//!
//! Iteration time (DistServe's fitted form, extended with chunk offsets):
//! `t = base + prefill_token·ΣP + prefill_attn·Σ((offset + chunk)² − offset²) + decode_seq·B + decode_context·Σctx`,
//! for prefill chunks of `chunk` tokens after `offset` cached ones, `B` decoding sequences and their
//! contexts `ctx`.
//!
//! The prefill knee (ours): below `prefill_knee_tokens` tokens an iteration's matrix multiplications are
//! bound by reading the weights, not by FLOPs, so its first `max(0, knee − B)` prefill tokens cost
//! `prefill_knee_token_s` each instead of `prefill_token_s`. Fits to Vidur's measured operator tables
//! (docs/cloud-profiles.md) misprice short prefills by up to 27% without it. A knee of 0 (the default)
//! leaves the form above unchanged, bit for bit. The attention term makes a prompt's total `prefill_attn·len²` however it is chunked,
//! matching the unchunked fit. The simulator's replicas ([`crate::sim::cloud`]) run exactly these
//! iterations; the lone-request prices below are the same iterations with nothing else in the batch, and
//! are what the optimizer plans with.
//!
//! A prefill instance that decodes (P/D-Device's `k` tokens, [`super::ksite`] states the rules) is priced
//! here too: its token budget while it decodes ([`CloudCost::prefill_decode_budget`]), the chunk that keeps
//! an iteration within the largest gap ([`CloudCost::chunk_within`]), its decode step beside the queued
//! prompts' chunks, and what each site would do with a request's `k` tokens
//! ([`CloudCost::site_estimate`]).

use super::bounds;
use super::ksite::{pool_first_gap_s, KSite, KvLink, SiteEstimate};
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
    /// Per prefill token below the knee (the weight-bound part of an iteration).
    pub prefill_knee_token_s: f64,
    /// Tokens of an iteration (prefill and decode) priced below the knee; 0 turns the knee off.
    pub prefill_knee_tokens: u32,
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

/// The context the budget rule prices its decode step at: a long prompt's (the decode terms are
/// small next to the prefill chunk's; a longer context adds `decode_context_s` per token).
pub const BUDGET_RULE_CONTEXT: u32 = 4096;

impl CloudCost {
    /// Checks every coefficient: finite, non-negative, within what hardware can take ([`bounds`]), and
    /// some time per iteration of either kind.
    pub fn validate(&self) -> Result<()> {
        let coef = [
            ("base_s", self.base_s, bounds::ITERATION_BASE),
            ("prefill_token_s", self.prefill_token_s, bounds::PREFILL_TOKEN),
            ("prefill_attn_s", self.prefill_attn_s, bounds::PREFILL_ATTENTION),
            ("decode_seq_s", self.decode_seq_s, bounds::DECODE_SEQUENCE),
            ("decode_context_s", self.decode_context_s, bounds::DECODE_CONTEXT),
            ("prefill_knee_token_s", self.prefill_knee_token_s, bounds::PREFILL_KNEE_TOKEN),
        ];
        for (name, v, bound) in coef {
            if !(v.is_finite() && v >= 0.0) {
                return Err(CoreError::invalid(
                    name,
                    format!("is {v}"),
                    "give a finite coefficient >= 0 seconds",
                ));
            }
            bound.check(name, None, v, "s")?;
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
        let prefill_s = self.prefill_token_s * prefill_tokens
            + self.prefill_attn_s * attention
            + self.knee_s(prefill_tokens, batch);
        let decode_s = self.decode_seq_s * batch + self.decode_context_s * context;
        IterationTime { prefill_s, decode_s, total_s: self.base_s + prefill_s + decode_s }
    }

    /// The knee's correction of an iteration's prefill price (see the module docs): the prefill tokens
    /// below the knee that `batch` decoding sequences leave, at the knee price instead of the full one;
    /// 0.0 without a knee.
    #[must_use]
    pub fn knee_s(&self, prefill_tokens: f64, batch: f64) -> f64 {
        if self.prefill_knee_tokens == 0 {
            return 0.0;
        }
        let below = (f64::from(self.prefill_knee_tokens) - batch).max(0.0).min(prefill_tokens);
        (self.prefill_knee_token_s - self.prefill_token_s) * below
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
                + self.prefill_attn_s * Self::chunk_attention(done, chunk)
                + self.knee_s(f64::from(chunk), 0.0);
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

    /// The token budget of a prefill instance's iteration while it decodes ([`super::ksite`]): the largest
    /// `b <= max_tokens_per_iteration` such that one decode step at [`BUDGET_RULE_CONTEXT`] plus a
    /// `b − 1`-token first chunk takes at most `max_tpot_s`; at least 2 (one decode, one prefill token).
    #[must_use]
    pub fn prefill_decode_budget(&self, max_tpot_s: f64) -> u32 {
        let fits = |b: u32| {
            let chunk = f64::from(b - 1);
            self.iteration(chunk, chunk * chunk, 1.0, f64::from(BUDGET_RULE_CONTEXT)).total_s <= max_tpot_s
        };
        let hi = self.max_tokens_per_iteration.max(2);
        if fits(hi) {
            return hi;
        }
        largest_fitting(2, hi, fits)
    }

    /// The largest prefill chunk of at most `max_chunk` tokens after `offset` cached ones that an
    /// iteration already holding `prefill_tokens` prefill tokens of `attention` units and `batch` decoding
    /// sequences of `context` tokens can take and still last at most `gap_s` (0 when none fits): how a
    /// prefill instance that decodes keeps every iteration, so every one of its decode tokens, within the
    /// largest gap (Sarathi-Serve's rule, applied per iteration).
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub fn chunk_within(
        &self,
        gap_s: f64,
        prefill_tokens: f64,
        attention: f64,
        offset: u32,
        max_chunk: u32,
        batch: f64,
        context: f64,
    ) -> u32 {
        let fits = |c: u32| {
            let it = self.iteration(
                prefill_tokens + f64::from(c),
                attention + Self::chunk_attention(offset, c),
                batch,
                context,
            );
            it.total_s <= gap_s
        };
        if fits(max_chunk) {
            return max_chunk;
        }
        if !fits(0) {
            return 0;
        }
        largest_fitting(0, max_chunk, fits)
    }

    /// One decode step of a sequence kept on a prefill instance whose iterations hold at most `budget`
    /// tokens: the iteration that carries it also carries prefill chunks of the prompts queued there, up
    /// to the rest of the budget. `queued_prefill_tokens` is the queue of one prefill replica; its chunk is
    /// priced as a prompt's first (no cached tokens before it), an estimate since the offset is unknown at
    /// planning time.
    #[must_use]
    pub fn prefill_instance_decode_s(&self, context: u32, queued_prefill_tokens: f64, budget: u32) -> f64 {
        let chunk = self.prefill_instance_chunk(queued_prefill_tokens, budget);
        self.iteration(chunk, chunk * chunk, 1.0, f64::from(context)).total_s
    }

    /// The prefill tokens that share an iteration with one decode step on a prefill instance.
    fn prefill_instance_chunk(&self, queued_prefill_tokens: f64, budget: u32) -> f64 {
        let room = f64::from(self.max_tokens_per_iteration.min(budget).saturating_sub(1));
        if queued_prefill_tokens.is_finite() {
            queued_prefill_tokens.clamp(0.0, room).floor()
        } else {
            room
        }
    }

    /// What placing `k` decode tokens of a `prompt`-token request at `site` costs ([`super::ksite`], the
    /// optimizer's rule); `budget` is the prefill instance's token budget while it decodes.
    #[must_use]
    pub fn site_estimate(
        &self,
        site: KSite,
        prompt: u32,
        k: u32,
        queued_prefill_tokens: f64,
        link: &KvLink,
        budget: u32,
    ) -> SiteEstimate {
        let lone = self.lone_decode_s(prompt);
        let (first_gap_s, step_s) = match site {
            // a decode slot opens within one step of the cache landing
            KSite::Pool => (pool_first_gap_s(link, prompt, 0.0, lone, lone), lone),
            KSite::Prefill => {
                let step = self.prefill_instance_decode_s(prompt, queued_prefill_tokens, budget);
                (step, step)
            }
        };
        let hold_s = if k == 0 { 0.0 } else { first_gap_s + f64::from(k - 1) * step_s };
        SiteEstimate { site, first_gap_s, step_s, hold_s }
    }
}

/// The largest `n` in `lo..hi` that fits, by bisection, taking `lo` as fitting (the caller's floor) and
/// `hi` as not: an iteration lasts longer with every token it takes, so `fits` holds up to some count and
/// fails beyond it. The one search behind the budget rule and the chunk rule.
fn largest_fitting(mut lo: u32, mut hi: u32, fits: impl Fn(u32) -> bool) -> u32 {
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests;
