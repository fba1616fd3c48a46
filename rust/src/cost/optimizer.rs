//! The per-request choice of P/D-Device's settings (ours; the paper describes "an algorithm to decide
//! the best settings" but publishes none).
//!
//! Per request (prompt `L`, one-way delay `d`, the cloud's load): the cloud prefills the whole prompt
//! whatever `k` and `r` are, so its cost is smallest with the smallest feasible `k`: for each allowed
//! refinement ratio `r` that is the catch-up fixed point ([`super::catchup`]), and the choice is the
//! smallest `k` over the ratios (they are tried from the largest, so ties keep the better answer). The
//! pace is `max_tpot` itself, which stretches the buffer furthest. When the device's own first token
//! comes no later than the cloud's, the request goes to the device alone.
//!
//! `F`, the expected arrival of the cloud's first token, is the round trip plus the lone prefill plus,
//! when load-adaptive, [`CloudCost::queue_wait_lower_bound_s`] of the prompt tokens waiting ahead.
//!
//! Where the `k` tokens are decoded ([`super::ksite`]): with one site offered, there; with both, the
//! catch-up is solved at each site's decode pace (the pool's lone step, or the prefill instance's
//! iteration with the queue it holds) and [`super::ksite::choose_site`] picks one, with its reason.
//!
//! A prompt neither side can hold ([`super::fit`]) is refused, never priced.
//!
//! With weights on cost and energy ([`with_weights`](PlanOptimizer::with_weights)), that plan, the
//! device alone and the cloud alone are weighed against each other by [`super::tradeoff`]: the SLOs stay
//! constraints, the weights trade the expected TTFT against the cloud's dollars and the device's joules.

use super::catchup::{solve_catchup, CatchUpInput};
use super::choice::{Cached, Choice};
use super::cloud::CloudCost;
use super::device::DeviceCost;
use super::fit::PromptLimits;
use super::ksite::{choose_site, pool_first_gap_s, KSite, KSites, KvLink, SiteReason};
use super::tradeoff::{Estimate, Weights};
use crate::error::{CoreError, Result};

/// The optimizer's settings (module doc).
#[derive(Debug, Clone)]
pub struct PlanOptimizer {
    /// The device.
    pub device: DeviceCost,
    /// The cloud.
    pub cloud: CloudCost,
    /// The largest display gap, seconds.
    pub max_tpot_s: f64,
    /// The refinement ratios allowed, largest first, 1.0 among them.
    pub ratios: Vec<f64>,
    /// Add the queueing lower bound to `F`.
    pub load_adaptive: bool,
    /// Replicas that prefill.
    pub prefill_replicas: u32,
    /// The cap on `k`.
    pub max_k: u32,
    /// Where the `k` tokens may be decoded ([`KSites::Pool`] unless set with
    /// [`with_k_sites`](Self::with_k_sites)).
    pub k_sites: KSites,
    /// The KV link to the decode pool (prices the pool's first decode gap when both sites are offered).
    pub kv_link: Option<KvLink>,
    /// Weights on cost and energy ([`super::tradeoff`]); `None`: the smallest-`k` rule alone.
    pub weights: Option<Weights>,
    /// The longest prompt each side can hold ([`super::fit`]); the cloud's unknown unless set with
    /// [`with_cloud_kv_cache_tokens`](Self::with_cloud_kv_cache_tokens).
    pub limits: PromptLimits,
}

impl PlanOptimizer {
    /// Validates and builds an optimizer; `ratios` are sorted largest first, deduplicated, and 1.0 is
    /// added.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        device: DeviceCost,
        cloud: CloudCost,
        max_tpot_s: f64,
        ratios: &[f64],
        load_adaptive: bool,
        prefill_replicas: u32,
        max_k: u32,
    ) -> Result<Self> {
        cloud.validate()?;
        if !(max_tpot_s.is_finite() && max_tpot_s > 0.0) {
            return Err(CoreError::invalid(
                "max_tpot_s",
                format!("is {max_tpot_s}"),
                "pass the largest display gap, finite seconds > 0",
            ));
        }
        if prefill_replicas == 0 {
            return Err(CoreError::invalid("prefill_replicas", "is 0", "pass a count >= 1"));
        }
        let mut all = vec![1.0];
        for (i, &r) in ratios.iter().enumerate() {
            if !(r.is_finite() && r > 0.0 && r <= 1.0) {
                return Err(CoreError::invalid_at(
                    "refine_ratios",
                    i,
                    format!("is {r}"),
                    "pass kept fractions of the prompt in (0, 1]",
                ));
            }
            if !all.contains(&r) {
                all.push(r);
            }
        }
        all.sort_by(|a, b| b.total_cmp(a));
        Ok(Self {
            limits: PromptLimits::of_device(&device),
            device,
            cloud,
            max_tpot_s,
            ratios: all,
            load_adaptive,
            prefill_replicas,
            max_k,
            k_sites: KSites::Pool,
            kv_link: None,
            weights: None,
        })
    }

    /// Weighs each request's plans by latency, cost and energy ([`super::tradeoff`]).
    pub fn with_weights(mut self, weights: Weights) -> Result<Self> {
        weights.validate()?;
        self.weights = Some(weights);
        Ok(self)
    }

    /// The cloud's prompt limit: one replica's KV cache of `kv_cache_tokens` ([`super::fit`]).
    pub fn with_cloud_kv_cache_tokens(mut self, kv_cache_tokens: u64) -> Result<Self> {
        self.limits = self.limits.with_cloud_kv_cache(kv_cache_tokens)?;
        Ok(self)
    }

    /// Where the `k` tokens may be decoded; offering both needs the KV link that prices the pool.
    pub fn with_k_sites(mut self, k_sites: KSites, kv_link: Option<KvLink>) -> Result<Self> {
        if let Some(link) = &kv_link {
            link.validate()?;
        } else if k_sites == KSites::Both {
            return Err(CoreError::invalid(
                "kv_link_bytes_per_s",
                "is missing with k_sites = \"both\"",
                "pass the KV link (kv_bytes_per_token and kv_link_bytes_per_s) that prices the pool",
            ));
        }
        self.k_sites = k_sites;
        self.kv_link = kv_link;
        Ok(self)
    }

    /// The queued prompt tokens of one prefill replica, as the optimizer sees them.
    fn queued_per_replica(&self, waiting_prefill_tokens: Option<f64>) -> f64 {
        waiting_prefill_tokens.map_or(0.0, |w| w / f64::from(self.prefill_replicas))
    }

    /// The prefill instance's token budget while it decodes ([`CloudCost::prefill_decode_budget`]).
    #[must_use]
    pub fn prefill_decode_budget(&self) -> u32 {
        self.cloud.prefill_decode_budget(self.max_tpot_s)
    }

    /// The cloud's decode pace at `site` as the catch-up sees it: `(g, c)`, its first decode gap (`None`:
    /// `c`) and the time between its later tokens (module doc).
    fn site_pace(&self, site: KSite, prompt: u32) -> (Option<f64>, f64) {
        match site {
            KSite::Pool => {
                let step = self.cloud.lone_decode_s(prompt);
                let first = self.kv_link.map(|link| pool_first_gap_s(&link, prompt, 0.0, step, step));
                (first, step)
            }
            // the bound, not the queue seen now: each step is one iteration cut to fit the gap, and the
            // queue beside it is the one at the first token, not at the plan
            KSite::Prefill => (
                None,
                self.cloud.prefill_instance_decode_s(prompt, f64::INFINITY, self.prefill_decode_budget()),
            ),
        }
    }

    /// Expected arrival of the cloud's first token (module doc); `waiting_prefill_tokens` is the cloud's
    /// queue when known.
    #[must_use]
    pub fn first_token_s(&self, prompt: u32, one_way_s: f64, waiting_prefill_tokens: Option<f64>) -> f64 {
        self.first_token_cached_s(prompt, 0, one_way_s, waiting_prefill_tokens)
    }

    /// [`first_token_s`](Self::first_token_s) with the first `cloud_cached` prompt tokens in the cloud's
    /// prefix cache: the lone prefill covers the rest.
    #[must_use]
    pub fn first_token_cached_s(
        &self,
        prompt: u32,
        cloud_cached: u32,
        one_way_s: f64,
        waiting_prefill_tokens: Option<f64>,
    ) -> f64 {
        let queued = match waiting_prefill_tokens {
            Some(w) if self.load_adaptive => self.cloud.queue_wait_lower_bound_s(w, self.prefill_replicas),
            _ => 0.0,
        };
        2.0 * one_way_s + self.cloud.lone_prefill_from_s(cloud_cached, prompt) + queued
    }

    /// Refuses an empty prompt, one neither side can hold, and a bad delay.
    fn check(&self, prompt: u32, one_way_s: f64) -> Result<()> {
        if prompt == 0 {
            return Err(CoreError::invalid(
                "prompt_tokens",
                "is 0",
                "pass a whole number of tokens, at least 1",
            ));
        }
        self.limits.check(prompt)?;
        if !(one_way_s.is_finite() && one_way_s >= 0.0) {
            return Err(CoreError::invalid(
                "one_way_s",
                format!("is {one_way_s}"),
                "pass the one-way network delay, seconds >= 0",
            ));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn solve(
        &self,
        prompt: u32,
        device_cached: u32,
        first: f64,
        ratio: f64,
        site: KSite,
        pace: (Option<f64>, f64),
    ) -> Result<Choice> {
        let sol = solve_catchup(
            &self.device,
            &CatchUpInput {
                prompt_tokens: prompt,
                first_token_s: first,
                max_tpot_s: self.max_tpot_s,
                refine_ratio: ratio,
                cloud_tpot_s: pace.1,
                first_gap_s: pace.0,
                max_k: self.max_k,
                device_cached_tokens: device_cached,
            },
        )?;
        Ok(Choice {
            device_alone: sol.device_alone,
            cloud_alone: false,
            k: sol.k,
            refine_ratio: if sol.device_alone { 1.0 } else { ratio },
            first_token_s: first,
            device_ready_s: sol.device_ready_s,
            converged: sol.converged,
            k_site: site,
            k_site_reason: SiteReason::Only,
        })
    }

    /// The settings for one request: the smallest `k` over the allowed ratios, at the site
    /// [`choose_site`] picks when both are offered.
    pub fn choose(&self, prompt: u32, one_way_s: f64, waiting_prefill_tokens: Option<f64>) -> Result<Choice> {
        self.choose_cached(prompt, Cached::NONE, one_way_s, waiting_prefill_tokens)
    }

    /// [`choose`](Self::choose) for a request that finds `cached` prompt tokens in the device's and the
    /// cloud's caches: the cloud's first token comes after its remaining prefill, the device's prompt is
    /// done after its remaining prefill (full prompt only; a refined prompt reuses nothing).
    pub fn choose_cached(
        &self,
        prompt: u32,
        cached: Cached,
        one_way_s: f64,
        waiting_prefill_tokens: Option<f64>,
    ) -> Result<Choice> {
        self.check(prompt, one_way_s)?;
        let first = self.first_token_cached_s(prompt, cached.cloud, one_way_s, waiting_prefill_tokens);
        let own = self.place(prompt, waiting_prefill_tokens, |site, tpot| {
            self.best_over_ratios(prompt, cached.device, first, site, tpot)
        })?;
        Ok(self.weigh(prompt, cached, own))
    }

    /// The plan the weighted objective keeps among the optimizer's own, the device alone and the cloud
    /// alone ([`super::tradeoff`]); `own` unchanged without active weights or a plan that meets the SLOs.
    #[must_use]
    pub fn weigh(&self, prompt: u32, cached: Cached, own: Choice) -> Choice {
        let Some(w) = self.weights.filter(Weights::active) else { return own };
        let device = Choice {
            device_alone: true,
            cloud_alone: false,
            k: 0,
            refine_ratio: 1.0,
            converged: true,
            k_site: KSite::Pool,
            k_site_reason: SiteReason::NoDecode,
            ..own
        };
        let cloud = Choice { device_alone: false, cloud_alone: true, ..device };
        let estimate = |c: &Choice| -> Estimate {
            if c.device_alone {
                w.device_alone(&self.device, prompt, cached, self.max_tpot_s)
            } else if c.cloud_alone {
                w.cloud_alone(&self.cloud, prompt, cached, c.first_token_s, self.max_tpot_s)
            } else {
                w.split(&self.cloud, prompt, cached, c)
            }
        };
        let mut best: Option<(f64, Choice)> = None;
        let candidates = if own.device_alone { [own, cloud, cloud] } else { [own, device, cloud] };
        for c in candidates {
            let e = estimate(&c);
            if !w.feasible(&e) {
                continue;
            }
            let value = w.objective(&e);
            if best.is_none_or(|(b, _)| value < b) {
                best = Some((value, c));
            }
        }
        best.map_or(own, |(_, c)| c)
    }

    /// The optimizer's own choice, before [`weigh`](Self::weigh), for a request whose cloud's first token
    /// is expected at `first` (from [`first_token_cached_s`](Self::first_token_cached_s), or told, as the
    /// live runtime learns it): at the pace `cloud_tpot_s` when told (at the one site offered, the pool
    /// when both are), else at the cost model's pace of each offered site ([`super::planner`]).
    pub fn own_choice(
        &self,
        prompt: u32,
        device_cached: u32,
        first: f64,
        cloud_tpot_s: Option<f64>,
        waiting_prefill_tokens: Option<f64>,
    ) -> Result<Choice> {
        let best = |site, tpot| self.best_over_ratios(prompt, device_cached, first, site, tpot);
        match cloud_tpot_s {
            Some(c) if self.k_sites == KSites::Prefill => best(KSite::Prefill, (None, c)),
            Some(c) => best(KSite::Pool, (None, c)),
            None => self.place(prompt, waiting_prefill_tokens, best),
        }
    }

    /// The smallest `k` over the ratios with the cloud's decode pace `tpot` at `site`.
    fn best_over_ratios(
        &self,
        prompt: u32,
        device_cached: u32,
        first: f64,
        site: KSite,
        tpot: (Option<f64>, f64),
    ) -> Result<Choice> {
        let mut best: Option<Choice> = None;
        for &r in &self.ratios {
            let c = self.solve(prompt, device_cached, first, r, site, tpot)?;
            if c.device_alone {
                return Ok(c);
            }
            if best.is_none_or(|b| c.k < b.k) {
                best = Some(c);
            }
        }
        Ok(best.expect("ratios always hold 1.0"))
    }

    /// Solves at each offered site with `solve(site, tpot)` and keeps one (module doc).
    fn place(
        &self,
        prompt: u32,
        waiting_prefill_tokens: Option<f64>,
        solve: impl Fn(KSite, (Option<f64>, f64)) -> Result<Choice>,
    ) -> Result<Choice> {
        let queued = self.queued_per_replica(waiting_prefill_tokens);
        let at = |site| solve(site, self.site_pace(site, prompt));
        match (self.k_sites, self.kv_link) {
            (KSites::Pool, _) => at(KSite::Pool),
            (KSites::Prefill, _) => at(KSite::Prefill),
            (KSites::Both, None) => unreachable!("with_k_sites needs the link for both sites"),
            (KSites::Both, Some(link)) => {
                let pool = at(KSite::Pool)?;
                if pool.device_alone || pool.k == 0 {
                    return Ok(Choice { k_site_reason: SiteReason::NoDecode, ..pool });
                }
                let prefill = at(KSite::Prefill)?;
                let budget = self.prefill_decode_budget();
                let pool_est = self.cloud.site_estimate(KSite::Pool, prompt, pool.k, queued, &link, budget);
                let prefill_est =
                    self.cloud.site_estimate(KSite::Prefill, prompt, prefill.k, queued, &link, budget);
                let (site, reason) = choose_site(&pool_est, &prefill_est, self.max_tpot_s);
                let chosen = if site == KSite::Pool { pool } else { prefill };
                Ok(Choice { k_site_reason: reason, ..chosen })
            }
        }
    }

    /// The settings with the ratio fixed (allowed or not).
    pub fn choose_at(
        &self,
        prompt: u32,
        ratio: f64,
        one_way_s: f64,
        waiting_prefill_tokens: Option<f64>,
    ) -> Result<Choice> {
        self.choose_at_cached(prompt, ratio, Cached::NONE, one_way_s, waiting_prefill_tokens)
    }

    /// [`choose_at`](Self::choose_at) with cached prompt tokens ([`choose_cached`](Self::choose_cached)).
    pub fn choose_at_cached(
        &self,
        prompt: u32,
        ratio: f64,
        cached: Cached,
        one_way_s: f64,
        waiting_prefill_tokens: Option<f64>,
    ) -> Result<Choice> {
        self.check(prompt, one_way_s)?;
        let first = self.first_token_cached_s(prompt, cached.cloud, one_way_s, waiting_prefill_tokens);
        let own = self.place(prompt, waiting_prefill_tokens, |site, tpot| {
            self.solve(prompt, cached.device, first, ratio, site, tpot)
        })?;
        Ok(self.weigh(prompt, cached, own))
    }
}

#[cfg(test)]
mod tests;
