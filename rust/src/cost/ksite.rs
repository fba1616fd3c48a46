//! Where P/D-Device's `k` decode tokens are decoded in a P/D-disaggregated cloud, and what each place
//! costs (ours; the paper says the cloud helps each device "only in its prefill phase" and publishes no
//! placement rule).
//!
//! - [`KSite::Pool`] (what any cloud request does): after the prefill, the prompt's KV cache crosses the
//!   link to a decode replica ([`KvLink::transfer_s`]), waits there for a decode slot, and decodes at the
//!   decode pool's pace ([`CloudCost::lone_decode_s`](super::CloudCost::lone_decode_s) is its lower bound).
//! - [`KSite::Prefill`]: the prefill instance that just prefilled the prompt keeps its KV cache and
//!   decodes the `k` tokens in its next iterations, alongside the prefill chunks of the prompts queued
//!   behind (chunked-prefill style, as Sarathi-Serve mixes them): no transfer and no decode slot, but each
//!   step lasts a whole prefill iteration ([`CloudCost::prefill_instance_decode_s`](super::CloudCost::prefill_instance_decode_s)). While a prefill
//!   instance holds decoding sequences it caps its iteration's token budget so that one iteration fits in
//!   the largest display gap ([`CloudCost::prefill_decode_budget`](super::CloudCost::prefill_decode_budget)), Sarathi-Serve's rule of choosing the
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

    /// What a cloud offers when nothing is said: both sites, each plan says which (the simulator's,
    /// the command line's and the optimizer's default; see [`Self::or_default`]).
    pub const DEFAULT: Self = Self::Both;

    /// The sites `given`, or else the default: [`Self::DEFAULT`] where a KV link prices the pool's
    /// transfer (`priced`), the pool alone where nothing does (a choice between the sites needs that
    /// price; the rule is ours).
    #[must_use]
    pub fn or_default(given: Option<Self>, priced: bool) -> Self {
        given.unwrap_or(if priced { Self::DEFAULT } else { Self::Pool })
    }

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
    /// Checks every field: the sizes finite and > 0, the write finite, >= 0 and within what hardware can
    /// take ([`super::bounds`]).
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
        super::bounds::KV_WRITE_TOKEN.check("kv_write_token_s", None, self.write_token_s, "s per token")
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
mod tests {
    use super::*;
    use crate::testing::KV_LINK as LINK;

    #[test]
    fn the_transfer_is_the_cache_over_the_link() {
        assert!((LINK.transfer_s(1000) - 1000.0 * 131_072.0 / 25e9).abs() < 1e-18);
        assert!(KvLink { bytes_per_s: 0.0, ..LINK }.validate().is_err());
        assert!(LINK.validate().is_ok());
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
        assert_eq!(KSites::or_default(None, true), KSites::Both);
        assert_eq!(KSites::or_default(None, false), KSites::Pool);
        assert_eq!(KSites::or_default(Some(KSites::Prefill), true), KSites::Prefill);
    }
}
