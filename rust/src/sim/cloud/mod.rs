//! The cloud: replicas with iteration-level continuous batching (Orca/vLLM) and chunked prefill
//! (Sarathi), colocated or P/D-disaggregated (P/D-Serve, DistServe, Splitwise).
//!
//! Each replica runs iterations back to back while it has work. An iteration's batch is every decoding
//! sequence (one token each) plus prefill chunks taken first-come-first-served from admitted requests
//! until the per-iteration token budget is spent. A waiting request is admitted when the replica's KV
//! cache can hold its prompt plus the tokens it will generate there and the batch has room (FCFS, so a
//! large request blocks those behind it). A request too large for an empty cache is admitted alone.
//! Queueing delay is never assumed: it is the time a request spends waiting in these queues.
//!
//! Iteration time is [`CloudCost::iteration`], the one cloud price model (`crate::cost::cloud`).
//! GPU-seconds of an iteration (`t × gpus_per_replica`) are charged to requests: the prefill terms to
//! prefill chunks by tokens, the decode terms to decoding sequences equally, `base` by token share.
//!
//! Disaggregated: prefill replicas only prefill and emit the first token; the KV cache then moves to the
//! least-loaded decode replica over the prefill replica's link of `kv_link_bytes_per_s`, one cache at a
//! time (a cache waits for the transfers ahead of it: the pools' bandwidth contention), and the decode
//! replica writes it into its cache in the iteration that admits it (`kv_write_token_s` per token,
//! [`crate::cost::KvLink`]); there the request waits for admission and decodes. Requests that need no decode token never reach the decode pool. A request
//! submitted to decode on its prefill instance (P/D-Device's `k` tokens, [`crate::cost::ksite`]) reserves
//! its prompt and its tokens there, stays after its first token and decodes in that replica's iterations
//! beside the prefill chunks, as on a colocated replica. One planned for the pool in a cloud that offers
//! both sites may be bridged at its first token: its prefill instance decodes it while its cache
//! crosses and hands it to the decode replica at its first iteration after the cache landed (the
//! instance's reservation is freed then; the decode replica reserves and writes the cache as for any
//! arrival).
//!
//! Speculative decoding ([`crate::cost::spec`]): a speculative request holds its decode slot (and cache)
//! from its first token to its last, but joins an iteration only when its drafts have arrived
//! ([`Cloud::drafts_arrived`]); that iteration verifies them (its decode term plus `gamma` draft tokens
//! priced as a prefill chunk after its context, `gamma + 1` tokens of the budget) and emits the round's
//! tokens at once. An iteration's decode terms, the verifications included, are charged to its decoding
//! sequences by their tokens in it (1, or `gamma + 1` when verifying).
//!
//! Files: `config` (the cloud's settings, checked), `records` (the requests in the cloud, each record
//! dropped when it leaves), `replica` (a replica's admission and next batch, its price and GPU-seconds),
//! `iteration` (an iteration's start and end), `transfer` (KV caches between the pools and the bridge).

mod config;
mod iteration;
mod records;
mod replica;
mod transfer;

pub use config::{CloudConfig, Deployment, MAX_REPLICAS};
pub use records::CloudReqs;

use super::Ev;
use crate::cost::{CloudCost, KSite, KSites, SpecDecode};
use crate::error::Result;
use crate::sim::queue::EventQueue;
use crate::time::Nanos;
use replica::{Replica, Role};

/// Cloud-side state of one request.
#[derive(Debug, Clone, Default)]
#[allow(clippy::struct_excessive_bools)] // independent facts of one request's life, not a state machine
pub struct CloudReq {
    /// Prompt tokens.
    pub prompt: u32,
    /// Tokens the cloud is asked to generate (first token included).
    pub quota: u32,
    /// Tokens generated so far.
    pub generated: u32,
    prefilled: u32,
    /// The client cancelled the rest of the stream.
    pub cancelled: bool,
    reserved: u64,
    /// GPU-seconds of prefill charged to this request.
    pub gpu_prefill_s: f64,
    /// GPU-seconds of decode charged to this request.
    pub gpu_decode_s: f64,
    /// Sum and count of cloud-side inter-token times (decode tokens).
    pub gap_sum: Nanos,
    /// Number of gaps in `gap_sum`.
    pub gap_count: u32,
    /// When the last token was emitted.
    pub last_emit: Nanos,
    /// Decodes on its prefill instance instead of the decode pool.
    pub decode_on_prefill: bool,
    /// Speculative decoding's settings (None: one token per iteration).
    pub spec: Option<SpecDecode>,
    /// Verification rounds done.
    pub rounds: u32,
    /// The replica the request decodes on, once there.
    replica: Option<u32>,
    /// Planned for the pool, but its prefill instance may bridge it at the first token
    /// ([`crate::cost::ksite`], the bridge at the first token).
    pub may_bridge: bool,
    /// Decoded on its prefill instance while its cache crossed to the pool, then in the pool.
    pub bridged: bool,
    /// While bridged: the decode replica its cache reached, which takes it at the prefill instance's
    /// next iteration.
    handover: Option<u32>,
}

/// A token the cloud emitted at the end of an iteration.
#[derive(Debug, Clone, Copy)]
pub struct Emission {
    /// The request.
    pub req: u32,
    /// Whether it is the request's first token.
    pub first: bool,
    /// Tokens emitted at once (a verification round's; 1 otherwise).
    pub tokens: u32,
}

/// A snapshot of the cloud's load, for policies.
#[derive(Debug, Clone, Copy, Default)]
pub struct CloudLoad {
    /// Requests waiting for admission to a prefill-capable replica.
    pub waiting_requests: f64,
    /// Prompt tokens not yet prefilled (waiting or admitted).
    pub waiting_prefill_tokens: f64,
    /// Sequences decoding.
    pub running_decode: f64,
    /// Decode batch slots in all decode-capable replicas.
    pub decode_capacity: f64,
    /// Fraction of the KV cache in use.
    pub kv_used_frac: f64,
    /// Queued prefill work per prefill-capable replica, seconds.
    pub prefill_backlog_s: f64,
}

/// The cloud.
#[derive(Debug)]
pub struct Cloud {
    cfg: CloudConfig,
    replicas: Vec<Replica>,
    /// Per-request state of the requests in the cloud ([`records`]).
    pub reqs: CloudReqs,
    /// Iterations run.
    pub iterations: u64,
    /// GPU-seconds charged to prefill and decode.
    pub gpu_prefill_s: f64,
    /// See `gpu_prefill_s`.
    pub gpu_decode_s: f64,
    /// Cancellations and hand-overs so far: a replica whose lists were cleaned at this count has nothing
    /// to release ([`Cloud::try_start`]).
    changes: u64,
}

impl Cloud {
    /// A cloud for `n_requests`.
    pub fn new(cfg: CloudConfig, n_requests: usize) -> Result<Self> {
        cfg.validate()?;
        let replicas = match cfg.deployment {
            Deployment::Colocated => (0..cfg.replicas).map(|_| Replica::new(Role::Mixed)).collect(),
            Deployment::Disaggregated => (0..cfg.prefill_replicas)
                .map(|_| Replica::new(Role::Prefill))
                .chain((0..cfg.decode_replicas).map(|_| Replica::new(Role::Decode)))
                .collect(),
        };
        Ok(Self {
            cfg,
            replicas,
            reqs: CloudReqs::new(n_requests),
            iterations: 0,
            gpu_prefill_s: 0.0,
            gpu_decode_s: 0.0,
            changes: 0,
        })
    }

    fn least_loaded(&self, role: Role) -> usize {
        let mut best = usize::MAX;
        let mut best_load = usize::MAX;
        for (i, r) in self.replicas.iter().enumerate() {
            if r.role == role && r.load() < best_load {
                best = i;
                best_load = r.load();
            }
        }
        best
    }

    /// A request reaches the cloud asking for `quota` tokens, decoded on its prefill instance when
    /// `decode_on_prefill` (disaggregated; a colocated replica always decodes what it prefilled), by
    /// verification rounds with `spec`; one planned for the pool `may_bridge` on its prefill instance while
    /// its cache crosses.
    pub fn submit(
        &mut self,
        req: u32,
        prompt: u32,
        quota: u32,
        (decode_on_prefill, may_bridge): (bool, bool),
        spec: Option<SpecDecode>,
        lp: &mut EventQueue<Ev>,
    ) -> Result<()> {
        self.submit_cached(req, prompt, 0, quota, (decode_on_prefill, may_bridge), spec, lp)
    }

    /// [`submit`](Self::submit) of a request whose first `cached` prompt tokens are in the prefix cache:
    /// its prefill starts after them (priced by the same iteration model, attention over them included);
    /// its KV reservation and transfer still cover the whole prompt.
    #[allow(clippy::too_many_arguments)]
    pub fn submit_cached(
        &mut self,
        req: u32,
        prompt: u32,
        cached: u32,
        quota: u32,
        (decode_on_prefill, may_bridge): (bool, bool),
        spec: Option<SpecDecode>,
        lp: &mut EventQueue<Ev>,
    ) -> Result<()> {
        let prefilled = cached.min(prompt.saturating_sub(1));
        let record =
            CloudReq { prompt, quota, prefilled, decode_on_prefill, spec, may_bridge, ..CloudReq::default() };
        self.reqs.insert(req, record);
        let role = if self.cfg.deployment == Deployment::Colocated { Role::Mixed } else { Role::Prefill };
        let r = self.least_loaded(role);
        self.replicas[r].waiting.push_back(req);
        self.try_start(r, lp)
    }

    /// The client cancels the rest of the stream; the request leaves at its replica's next iteration.
    pub fn cancel(&mut self, req: u32) {
        // one that left already (done) has nothing to cancel
        if let Some(c) = self.reqs.get_mut(req) {
            c.cancelled = true;
            self.changes += 1;
        }
    }

    /// A speculative request's drafts reached the cloud: they join the next iteration of its replica (or,
    /// before it has one, the first after its admission).
    pub fn drafts_arrived(&mut self, req: u32, lp: &mut EventQueue<Ev>) -> Result<()> {
        let Some(c) = self.reqs.get_mut(req) else { return Ok(()) };
        if c.cancelled || c.generated >= c.quota {
            return Ok(());
        }
        let replica = c.replica;
        self.reqs.set_awaits_drafts(req, false);
        match replica {
            Some(r) => self.try_start(r as usize, lp),
            None => Ok(()),
        }
    }

    /// The current load.
    #[must_use]
    pub fn load(&self) -> CloudLoad {
        let mut l = CloudLoad::default();
        let mut kv_used = 0;
        let mut kv_cap = 0;
        let mut prefill_replicas = 0.0_f64;
        for r in &self.replicas {
            kv_used += r.kv_used;
            kv_cap += self.cfg.kv_cache_tokens;
            if r.role != Role::Decode {
                prefill_replicas += 1.0;
                l.waiting_requests += r.waiting.len() as f64;
                for &id in r.waiting.iter().chain(r.prefilling.iter()) {
                    let c = &self.reqs[id as usize];
                    l.waiting_prefill_tokens += f64::from(c.prompt - c.prefilled);
                }
            }
            if r.role != Role::Prefill {
                l.running_decode += r.running.len() as f64;
                l.decode_capacity += f64::from(self.cfg.max_batch_size);
            }
        }
        l.kv_used_frac = kv_used as f64 / kv_cap.max(1) as f64;
        let per_tok = self.cfg.cost.queued_prefill_token_s();
        l.prefill_backlog_s = l.waiting_prefill_tokens * per_tok / prefill_replicas.max(1.0);
        l
    }

    /// Whether the cloud has separate prefill and decode pools.
    #[must_use]
    pub fn is_disaggregated(&self) -> bool {
        self.cfg.deployment == Deployment::Disaggregated
    }

    /// Where P/D-Device's `k` tokens may be decoded.
    #[must_use]
    pub fn k_sites(&self) -> KSites {
        self.cfg.k_sites
    }

    /// Whether a plan may decode its `k` tokens at `site`: any site on a colocated cloud (a replica
    /// decodes what it prefilled), the offered ones on a disaggregated cloud.
    #[must_use]
    pub fn offers(&self, site: KSite) -> bool {
        self.cfg.deployment == Deployment::Colocated || self.cfg.k_sites.allows(site)
    }

    /// The cloud's price model.
    #[must_use]
    pub fn cost(&self) -> &CloudCost {
        &self.cfg.cost
    }
}

#[cfg(test)]
mod tests;
