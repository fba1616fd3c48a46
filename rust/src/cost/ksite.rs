//! Where P/D-Device's `k` decode tokens are decoded in a P/D-disaggregated cloud, and what each place
//! costs (ours; the paper says the cloud helps each device "only in its prefill phase" and publishes no
//! placement rule).
//!
//! - [`KSite::Pool`] (what any cloud request does): after the prefill, the prompt's KV cache crosses the
//!   link to a decode replica ([`KvLink::transfer_s`]), waits there for a decode slot, and decodes at the
//!   decode pool's pace ([`CloudCost::lone_decode_s`] is its lower bound).
//! - [`KSite::Prefill`]: the prefill instance that just prefilled the prompt keeps its KV cache and
//!   decodes the `k` tokens in its next iterations, alongside the prefill chunks of the prompts queued
//!   behind (chunked-prefill style, as Sarathi-Serve mixes them): no transfer and no decode slot, but each
//!   step lasts a whole prefill iteration ([`CloudCost::prefill_instance_decode_s`]). While a prefill
//!   instance holds decoding sequences it caps its iteration's token budget so that one iteration fits in
//!   the largest display gap ([`CloudCost::prefill_decode_budget`]), Sarathi-Serve's rule of choosing the
//!   chunk size from the time-between-tokens objective; without the cap one iteration of the shipped
//!   A100 profile's 2048-token budget takes ~140 ms, and every `k` token would miss a 50 ms gap.
//!
//! A colocated cloud has one place only (every replica prefills and decodes); the site is then moot.
//!
//! The bridge at the first token (ours): where the cloud offers both sites, a request planned for the
//! pool is still the prefill instance's to place when its prompt is prefilled. The instance then knows
//! what the plan could not: its link's queue and the decode replica's batch. If the pool's first decode
//! gap ([`pool_first_gap_s`], every term a bound) would exceed the largest display gap and the instance
//! has KV room for the `k` tokens, it sends the cache as planned but keeps decoding the request itself,
//! in iterations cut to fit the gap, until the cache has landed; at its next iteration the request moves
//! to the decode replica, whose first step follows the instance's last token by at most two of its
//! iterations. The device cannot pace a token it has not received, so the cloud's own first gap is the
//! one part of the largest display gap that only the cloud can bound: this is how P/D-Device keeps it
//! within `max_tpot` by design rather than by a fast link. Bridging only while the cache crosses (a few
//! iterations) matters: keeping such a request on the instance for all its `k` tokens held its chunks
//! cut for seconds and raised P/D-Device's TTFT p99 on the Azure conversation trace (phone, one A100
//! per pool) from 995 ms to 1.65 s, at the same largest-gap p99 of 50 ms.
//!
//! The optimizer's rule where the cloud offers both ([`choose_site`]), in order:
//! 1. no cloud decode token (`k = 0`, or the device alone): nothing to place ([`SiteReason::NoDecode`]);
//! 2. the prefill instance is done with all `k` tokens, each step within `max_tpot`, before the pool's
//!    first decode token would arrive: the prefill instance ([`SiteReason::Few`]; no transfer, no decode
//!    slot). The pool's first gap is the transfer, at most one decode step of waiting for a slot, the
//!    write and one decode step;
//! 3. otherwise the pool ([`SiteReason::PoolFirst`]): every step a prefill instance decodes caps the
//!    prefill chunks of everyone queued behind it, a cost to other requests' first tokens that a
//!    per-request estimate does not see, and the bridge keeps the pool's late first tokens off the
//!    display. Choosing the site where the `k` tokens are done sooner instead put a third of the requests
//!    on the prefill instance and raised TTFT p50 on the same trace from 143 to 172 ms.
//!
//! The site actually used is each request's `k_site` result.

use super::cloud::CloudCost;
use super::gap::within_objective;
use crate::error::{CoreError, Result};

/// Where the `k` decode tokens of a P/D-Device request are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum KSite {
    /// The decode pool, after a KV transfer.
    Pool = 0,
    /// The prefill instance that prefilled the prompt.
    Prefill = 1,
}

impl KSite {
    /// The names used at the Python boundary, indexed by discriminant.
    pub const NAMES: [&'static str; 2] = ["pool", "prefill"];

    /// Parses a site name; `arg` names the argument in the error.
    pub fn parse(name: &str, arg: &'static str) -> Result<Self> {
        match name {
            "pool" => Ok(Self::Pool),
            "prefill" => Ok(Self::Prefill),
            other => Err(CoreError::invalid(arg, format!("is {other:?}"), "use \"pool\" or \"prefill\"")),
        }
    }

    /// The site's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// The sites a cloud offers to P/D-Device's `k` tokens (a cloud option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum KSites {
    /// The decode pool only (as any cloud request).
    Pool = 0,
    /// The prefill instance only.
    Prefill = 1,
    /// Either; each plan says which.
    Both = 2,
}

impl KSites {
    /// The names used at the Python boundary, indexed by discriminant.
    pub const NAMES: [&'static str; 3] = ["pool", "prefill", "both"];

    /// Parses a name; `arg` names the argument in the error.
    pub fn parse(name: &str, arg: &'static str) -> Result<Self> {
        match name {
            "pool" => Ok(Self::Pool),
            "prefill" => Ok(Self::Prefill),
            "both" => Ok(Self::Both),
            other => {
                Err(CoreError::invalid(arg, format!("is {other:?}"), "use \"pool\", \"prefill\" or \"both\""))
            }
        }
    }

    /// The name.
    #[must_use]
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Whether `site` is offered.
    #[must_use]
    pub fn allows(self, site: KSite) -> bool {
        matches!((self, site), (Self::Both, _) | (Self::Pool, KSite::Pool) | (Self::Prefill, KSite::Prefill))
    }
}

/// Why the optimizer placed the `k` tokens where it did (module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SiteReason {
    /// Only one site is offered.
    Only = 0,
    /// No cloud decode token to place.
    NoDecode = 1,
    /// The prefill instance is done with the `k` tokens before the pool's first would arrive.
    Few = 2,
    /// Both or neither keep it: the pool, which leaves the prefill instance's chunks whole.
    PoolFirst = 3,
}

impl SiteReason {
    /// The names used at the Python boundary, indexed by discriminant.
    pub const NAMES: [&'static str; 4] = ["only-site", "no-decode", "few", "pool-first"];

    /// The reason's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// The KV-cache link between a prefill replica and the decode pool, and the write of a received cache.
///
/// A prefill replica sends one cache at a time over its link (first come, first served): a cache
/// that finds the link busy waits for the ones ahead, which is the bandwidth contention between the
/// pools (the simulator keeps each prefill replica's link busy until its last transfer ends). On arrival
/// the decode replica writes the cache into its paged KV cache, `write_token_s` per token, in its next
/// iteration. The prefill side's own write is inside the fitted prefill slope (the measured forward
/// passes write the cache); the cloud profiles give `write_token_s` with its derivation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KvLink {
    /// KV-cache bytes per token of the cloud's model.
    pub bytes_per_token: f64,
    /// The link's bandwidth, bytes/s.
    pub bytes_per_s: f64,
    /// Seconds per token to write a received cache into a decode replica's KV cache.
    pub write_token_s: f64,
}

impl KvLink {
    /// Checks both fields (finite, > 0).
    pub fn validate(&self) -> Result<()> {
        for (name, v) in
            [("kv_bytes_per_token", self.bytes_per_token), ("kv_link_bytes_per_s", self.bytes_per_s)]
        {
            if !(v.is_finite() && v > 0.0) {
                return Err(CoreError::invalid(name, format!("is {v}"), "give a finite value > 0"));
            }
        }
        if !(self.write_token_s.is_finite() && self.write_token_s >= 0.0) {
            return Err(CoreError::invalid(
                "kv_write_token_s",
                format!("is {}", self.write_token_s),
                "give a finite time >= 0 seconds",
            ));
        }
        Ok(())
    }

    /// Seconds for a decode replica to write the received cache of `tokens` tokens.
    #[must_use]
    pub fn write_s(&self, tokens: u32) -> f64 {
        self.write_token_s * f64::from(tokens)
    }

    /// Seconds on the link for the KV cache of `tokens` tokens, the link to itself.
    #[must_use]
    pub fn transfer_s(&self, tokens: u32) -> f64 {
        f64::from(tokens) * self.bytes_per_token / self.bytes_per_s
    }
}

/// The cloud's bound on a pool request's first decode gap, as its prefill instance sees it at the first
/// token (module doc, the bridge at the first token; ours): the wait for its own link (`link_wait_s`),
/// the transfer, the rest of the decode iteration under way when the cache lands (`residual_s`, at most
/// one iteration), the write of the cache and the iteration that decodes its first token
/// (`iteration_s`).
#[must_use]
pub fn pool_first_gap_s(
    link: &KvLink,
    prompt: u32,
    link_wait_s: f64,
    residual_s: f64,
    iteration_s: f64,
) -> f64 {
    let cache = prompt.saturating_add(1);
    link_wait_s + link.transfer_s(cache) + residual_s + link.write_s(cache) + iteration_s
}

/// What one site would do with a request's `k` tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SiteEstimate {
    /// The site.
    pub site: KSite,
    /// Seconds between the cloud's first token and its first decode token.
    pub first_gap_s: f64,
    /// Seconds per later decode step.
    pub step_s: f64,
    /// Seconds from the first token until the `k`-th decode token: how long the site holds the request.
    pub hold_s: f64,
}

/// The context the budget rule prices its decode step at: a long prompt's (the decode terms are
/// small next to the prefill chunk's; a longer context adds `decode_context_s` per token).
pub const BUDGET_RULE_CONTEXT: u32 = 4096;

impl CloudCost {
    /// The token budget of a prefill instance's iteration while it decodes (module doc): the largest
    /// `b <= max_tokens_per_iteration` such that one decode step at [`BUDGET_RULE_CONTEXT`] plus a
    /// `b − 1`-token first chunk takes at most `max_tpot_s`; at least 2 (one decode, one prefill token).
    #[must_use]
    pub fn prefill_decode_budget(&self, max_tpot_s: f64) -> u32 {
        let fits = |b: u32| {
            let chunk = f64::from(b - 1);
            self.iteration(chunk, chunk * chunk, 1.0, f64::from(BUDGET_RULE_CONTEXT)).total_s <= max_tpot_s
        };
        let (mut lo, mut hi) = (2_u32, self.max_tokens_per_iteration.max(2));
        if fits(hi) {
            return hi;
        }
        // the iteration time rises with b: bisect for the largest b that fits
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
        let (mut lo, mut hi) = (0_u32, max_chunk);
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

    /// What placing `k` decode tokens of a `prompt`-token request at `site` costs (module doc); `budget`
    /// is the prefill instance's token budget while it decodes.
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

/// The site for `k` tokens between two estimates, and why (module doc, rules 2 and 3; rule 1 is the
/// caller's, which knows `k`).
#[must_use]
pub fn choose_site(pool: &SiteEstimate, prefill: &SiteEstimate, max_tpot_s: f64) -> (KSite, SiteReason) {
    let steps_ok =
        within_objective(prefill.first_gap_s, max_tpot_s) && within_objective(prefill.step_s, max_tpot_s);
    if steps_ok && prefill.hold_s <= pool.first_gap_s {
        return (KSite::Prefill, SiteReason::Few);
    }
    (KSite::Pool, SiteReason::PoolFirst)
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

    const ALL: u32 = u32::MAX;
    const LINK: KvLink = KvLink { bytes_per_token: 131_072.0, bytes_per_s: 25e9, write_token_s: 1.29e-7 };

    #[test]
    fn a_prefill_instance_step_is_a_lone_step_on_an_idle_instance() {
        let c = a100();
        assert_eq!(c.prefill_instance_decode_s(1000, 0.0, ALL), c.lone_decode_s(1000));
    }

    #[test]
    fn a_prefill_instance_step_carries_the_rest_of_the_budget() {
        let c = a100();
        let full = c.prefill_instance_decode_s(1000, 1e9, ALL);
        let want =
            c.base_s + 511.0 * c.prefill_token_s + 511.0 * 511.0 * c.prefill_attn_s + c.lone_decode_s(1000)
                - c.base_s;
        assert!((full - want).abs() < 1e-15, "{full} {want}");
        let part = c.prefill_instance_decode_s(1000, 100.4, ALL);
        assert!((part - (c.lone_decode_s(1000) + 100.0 * 5e-5 + 1e4 * 1e-9)).abs() < 1e-15);
        assert_eq!(c.prefill_instance_decode_s(1000, f64::INFINITY, ALL), full);
    }

    #[test]
    fn the_budget_rule_keeps_an_iteration_within_the_gap() {
        // the shipped A100 profile's coefficients: a full 2048-token iteration takes ~140 ms
        let c = CloudCost {
            base_s: 0.01644,
            prefill_token_s: 5.139e-5,
            prefill_attn_s: 4.144e-9,
            decode_seq_s: 2.136e-5,
            decode_context_s: 1.003e-7,
            max_tokens_per_iteration: 2048,
        };
        let b = c.prefill_decode_budget(0.05);
        let at = |b: u32| c.prefill_instance_decode_s(BUDGET_RULE_CONTEXT, 1e9, b);
        assert!(at(b) <= 0.05 && at(b + 1) > 0.05, "{b}: {} {}", at(b), at(b + 1));
        assert!((500..700).contains(&b), "{b}");
        assert_eq!(c.prefill_decode_budget(1.0), 2048, "a loose gap keeps the whole budget");
        assert_eq!(c.prefill_decode_budget(0.001), 2, "an impossible gap still decodes");
    }

    #[test]
    fn the_chunk_rule_fills_an_iteration_up_to_the_gap() {
        let c = a100();
        let total = |chunk: u32| {
            c.iteration(f64::from(chunk), CloudCost::chunk_attention(3000, chunk), 2.0, 4000.0).total_s
        };
        let chunk = c.chunk_within(0.02, 0.0, 0.0, 3000, 512, 2.0, 4000.0);
        assert!(total(chunk) <= 0.02 && total(chunk + 1) > 0.02, "{chunk}");
        assert_eq!(c.chunk_within(1.0, 0.0, 0.0, 3000, 512, 2.0, 4000.0), 512);
        assert_eq!(c.chunk_within(0.001, 0.0, 0.0, 3000, 512, 2.0, 4000.0), 0, "the decodes alone miss it");
    }

    #[test]
    fn the_transfer_is_the_cache_over_the_link() {
        assert!((LINK.transfer_s(1000) - 1000.0 * 131_072.0 / 25e9).abs() < 1e-18);
        assert!(KvLink { bytes_per_s: 0.0, ..LINK }.validate().is_err());
        assert!(LINK.validate().is_ok());
    }

    #[test]
    fn the_pool_gap_holds_the_transfer() {
        let c = a100();
        let e = c.site_estimate(KSite::Pool, 999, 10, 0.0, &LINK, ALL);
        let step = c.lone_decode_s(999);
        assert_eq!(e.first_gap_s, pool_first_gap_s(&LINK, 999, 0.0, step, step));
        assert!((LINK.write_s(1000) - 1.29e-4).abs() < 1e-15);
        assert!(KvLink { write_token_s: -1.0, ..LINK }.validate().is_err());
        assert_eq!(e.hold_s, e.first_gap_s + 9.0 * c.lone_decode_s(999));
    }

    #[test]
    fn few_tokens_stay_on_the_prefill_instance_when_the_pool_is_slower_to_start() {
        let c = a100();
        let slow = KvLink { bytes_per_s: 1e9, ..LINK }; // 131 ms for 1000 tokens
        let pool = c.site_estimate(KSite::Pool, 999, 10, 0.0, &slow, ALL);
        let prefill = c.site_estimate(KSite::Prefill, 999, 10, 0.0, &slow, ALL);
        assert!(prefill.hold_s <= pool.first_gap_s);
        assert_eq!(choose_site(&pool, &prefill, 0.05), (KSite::Prefill, SiteReason::Few));
        // a hundred tokens outlast the transfer: the pool
        let pool = c.site_estimate(KSite::Pool, 999, 100, 0.0, &slow, ALL);
        let prefill = c.site_estimate(KSite::Prefill, 999, 100, 0.0, &slow, ALL);
        assert_eq!(choose_site(&pool, &prefill, 0.05), (KSite::Pool, SiteReason::PoolFirst));
    }

    #[test]
    fn a_slow_prefill_iteration_keeps_the_tokens_in_the_pool() {
        // a budget of 2048 tokens makes a loaded prefill iteration ~110 ms, above the gap
        let c = CloudCost { max_tokens_per_iteration: 2048, ..a100() };
        let slow = KvLink { bytes_per_s: 1e8, ..LINK };
        let pool = c.site_estimate(KSite::Pool, 999, 1, 1e6, &slow, ALL);
        let prefill = c.site_estimate(KSite::Prefill, 999, 1, 1e6, &slow, ALL);
        // (the simulator caps the budget by the gap; an uncapped instance is what this rule guards)
        assert!(prefill.first_gap_s > 0.05 && prefill.hold_s < pool.first_gap_s);
        assert_eq!(choose_site(&pool, &prefill, 0.05), (KSite::Pool, SiteReason::PoolFirst));
    }

    #[test]
    fn with_both_or_neither_within_the_gap_the_pool_wins() {
        let c = a100();
        // idle, the prefill instance would be done sooner, but its steps would cap others' chunks
        let pool = c.site_estimate(KSite::Pool, 999, 10, 0.0, &LINK, ALL);
        let prefill = c.site_estimate(KSite::Prefill, 999, 10, 0.0, &LINK, ALL);
        assert!(prefill.hold_s < pool.hold_s && pool.first_gap_s < 0.05 && prefill.first_gap_s < 0.05);
        assert_eq!(choose_site(&pool, &prefill, 0.05), (KSite::Pool, SiteReason::PoolFirst));
        // neither within 10 ms
        assert_eq!(choose_site(&pool, &prefill, 0.01), (KSite::Pool, SiteReason::PoolFirst));
    }

    #[test]
    fn the_pool_first_gap_adds_its_terms() {
        let gap = pool_first_gap_s(&LINK, 999, 0.002, 0.01, 0.02);
        let cache = 1000.0;
        let expected = 0.002 + cache * 131_072.0 / 25e9 + 0.01 + cache * 1.29e-7 + 0.02;
        assert!((gap - expected).abs() < 1e-15, "{gap} {expected}");
    }

    #[test]
    fn names_parse_back() {
        for s in [KSite::Pool, KSite::Prefill] {
            assert_eq!(KSite::parse(s.name(), "k_site").unwrap(), s);
        }
        for s in [KSites::Pool, KSites::Prefill, KSites::Both] {
            assert_eq!(KSites::parse(s.name(), "k_sites").unwrap(), s);
        }
        assert!(KSite::parse("decode", "k_site").unwrap_err().to_string().starts_with("k_site"));
        assert!(KSites::Both.allows(KSite::Prefill) && !KSites::Pool.allows(KSite::Prefill));
    }
}
