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

use super::Ev;
use crate::cost::{pool_first_gap_s, within_objective, CloudCost, KSites, SpecDecode};
use crate::error::{CoreError, Result};
use crate::event_loop::EventLoop;
use crate::time::Nanos;
use std::collections::VecDeque;

/// The most replicas a pool may have: every replica is simulated, so a mistyped count must not ask for
/// more memory than the machine has.
pub const MAX_REPLICAS: u32 = 1 << 16;

/// How the cloud is deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deployment {
    /// Prefill and decode share each replica.
    Colocated,
    /// Separate prefill and decode pools.
    Disaggregated,
}

/// The cloud's configuration.
#[derive(Debug, Clone)]
pub struct CloudConfig {
    /// Colocated or disaggregated.
    pub deployment: Deployment,
    /// Replicas (colocated).
    pub replicas: u32,
    /// Prefill replicas (disaggregated).
    pub prefill_replicas: u32,
    /// Decode replicas (disaggregated).
    pub decode_replicas: u32,
    /// The iteration-time model of one replica.
    pub cost: CloudCost,
    /// Most sequences in one iteration.
    pub max_batch_size: u32,
    /// KV-cache capacity per replica, tokens.
    pub kv_cache_tokens: u64,
    /// GPUs per replica.
    pub gpus_per_replica: u32,
    /// KV bytes per token of the cloud's model.
    pub kv_bytes_per_token: f64,
    /// Bandwidth between the prefill and decode pools, bytes/s.
    pub kv_link_bytes_per_s: f64,
    /// Where P/D-Device's `k` tokens may be decoded (disaggregated).
    pub k_sites: KSites,
    /// A prefill replica's token budget per iteration while it decodes (`k` tokens on the prefill
    /// instance; [`CloudCost::prefill_decode_budget`]); 0 keeps `max_tokens_per_iteration`.
    pub prefill_decode_budget: u32,
    /// Seconds per token for a decode replica to write a received KV cache ([`crate::cost::KvLink`]).
    pub kv_write_token_s: f64,
    /// The longest iteration of a prefill replica while it decodes (its prefill chunks are cut to fit,
    /// [`CloudCost::chunk_within`]); 0 leaves them uncut.
    pub prefill_decode_gap_s: f64,
}

impl CloudConfig {
    /// The KV link's prices ([`crate::cost::KvLink`]).
    #[must_use]
    pub fn kv_link(&self) -> crate::cost::KvLink {
        crate::cost::KvLink {
            bytes_per_token: self.kv_bytes_per_token,
            bytes_per_s: self.kv_link_bytes_per_s,
            write_token_s: self.kv_write_token_s,
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        self.cost.validate()?;
        let counts = [
            ("replicas", u64::from(self.replicas)),
            ("prefill_replicas", u64::from(self.prefill_replicas)),
            ("decode_replicas", u64::from(self.decode_replicas)),
            ("max_batch_size", u64::from(self.max_batch_size)),
            ("kv_cache_tokens", self.kv_cache_tokens),
            ("gpus_per_replica", u64::from(self.gpus_per_replica)),
        ];
        for (name, v) in counts {
            if v == 0 {
                return Err(CoreError::invalid(name, "is 0", "give a positive count"));
            }
        }
        for (name, v) in [
            ("replicas", self.replicas),
            ("prefill_replicas", self.prefill_replicas),
            ("decode_replicas", self.decode_replicas),
        ] {
            if v > MAX_REPLICAS {
                return Err(CoreError::invalid(
                    name,
                    format!("= {v} is more than {MAX_REPLICAS} replicas"),
                    "simulate a cloud of at most 65,536 replicas per pool",
                ));
            }
        }
        self.kv_link().validate()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Mixed,
    Prefill,
    Decode,
}

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
    /// A speculative request's drafts have arrived and await verification.
    pub drafts_ready: bool,
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

#[derive(Debug)]
struct Replica {
    role: Role,
    busy: bool,
    waiting: VecDeque<u32>,
    prefilling: VecDeque<u32>,
    running: Vec<u32>,
    kv_used: u64,
    cur_decode: Vec<u32>,
    cur_prefill: Vec<(u32, u32)>,
    /// Tokens of received caches admitted and not yet written (decode replicas).
    to_write: u64,
    /// When the replica's KV link is free again (prefill replicas).
    link_free: Nanos,
    /// When the iteration under way ends (meaningful while `busy`).
    busy_until: Nanos,
    /// KV caches on their way to this replica (decode replicas).
    inbound: u32,
}

impl Replica {
    fn new(role: Role) -> Self {
        Self {
            role,
            busy: false,
            waiting: VecDeque::new(),
            prefilling: VecDeque::new(),
            running: Vec::new(),
            kv_used: 0,
            cur_decode: Vec::new(),
            cur_prefill: Vec::new(),
            to_write: 0,
            link_free: Nanos::ZERO,
            busy_until: Nanos::ZERO,
            inbound: 0,
        }
    }

    fn load(&self) -> usize {
        self.waiting.len() + self.prefilling.len() + self.running.len()
    }
}

/// Adds prefill chunks to `rep`'s batch, first come first served, within `budget` tokens and, on a
/// prefill replica that decodes, within its iteration time (`prefill_decode_gap_s`); returns the prefill
/// tokens and their attention units.
fn fill_prefill(
    rep: &mut Replica,
    reqs: &[CloudReq],
    cfg: &CloudConfig,
    mut budget: usize,
    b: f64,
    ctx: f64,
) -> (f64, f64) {
    let gap =
        if rep.role == Role::Prefill && !rep.cur_decode.is_empty() { cfg.prefill_decode_gap_s } else { 0.0 };
    let mut prefill_tokens = 0.0;
    let mut attn = 0.0;
    for &id in &rep.prefilling {
        if budget == 0 {
            break;
        }
        let c = &reqs[id as usize];
        let mut chunk = ((c.prompt - c.prefilled) as usize).min(budget) as u32;
        if gap > 0.0 {
            let fits = cfg.cost.chunk_within(gap, prefill_tokens, attn, c.prefilled, chunk, b, ctx);
            if fits < chunk {
                budget = fits as usize; // this chunk fills the iteration
            }
            chunk = fits;
            if chunk == 0 {
                break;
            }
        }
        budget -= chunk as usize;
        rep.cur_prefill.push((id, chunk));
        prefill_tokens += f64::from(chunk);
        attn += CloudCost::chunk_attention(c.prefilled, chunk);
    }
    (prefill_tokens, attn)
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
    /// Per-request state, indexed by request.
    pub reqs: Vec<CloudReq>,
    /// Iterations run.
    pub iterations: u64,
    /// GPU-seconds charged to prefill and decode.
    pub gpu_prefill_s: f64,
    /// See `gpu_prefill_s`.
    pub gpu_decode_s: f64,
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
            reqs: vec![CloudReq::default(); n_requests],
            iterations: 0,
            gpu_prefill_s: 0.0,
            gpu_decode_s: 0.0,
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
        lp: &mut EventLoop<Ev>,
    ) {
        self.submit_cached(req, prompt, 0, quota, (decode_on_prefill, may_bridge), spec, lp);
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
        lp: &mut EventLoop<Ev>,
    ) {
        let prefilled = cached.min(prompt.saturating_sub(1));
        self.reqs[req as usize] =
            CloudReq { prompt, quota, prefilled, decode_on_prefill, spec, may_bridge, ..CloudReq::default() };
        let role = if self.cfg.deployment == Deployment::Colocated { Role::Mixed } else { Role::Prefill };
        let r = self.least_loaded(role);
        self.replicas[r].waiting.push_back(req);
        self.try_start(r, lp);
    }

    /// The client cancels the rest of the stream; the request leaves at its replica's next iteration.
    pub fn cancel(&mut self, req: u32) {
        self.reqs[req as usize].cancelled = true;
    }

    /// A speculative request's drafts reached the cloud: they join the next iteration of its replica (or,
    /// before it has one, the first after its admission).
    pub fn drafts_arrived(&mut self, req: u32, lp: &mut EventLoop<Ev>) {
        let c = &mut self.reqs[req as usize];
        if c.cancelled || c.generated >= c.quota {
            return;
        }
        c.drafts_ready = true;
        if let Some(r) = c.replica {
            self.try_start(r as usize, lp);
        }
    }

    /// A KV cache arrived at decode replica `replica`.
    pub fn kv_arrived(&mut self, req: u32, replica: u32, lp: &mut EventLoop<Ev>) {
        self.replicas[replica as usize].inbound -= 1;
        let c = &mut self.reqs[req as usize];
        if c.cancelled {
            return;
        }
        if c.bridged {
            // still decoding on its prefill instance: it moves at that replica's next iteration
            if c.decode_on_prefill && c.generated < c.quota {
                c.handover = Some(replica);
            }
            return;
        }
        self.replicas[replica as usize].waiting.push_back(req);
        self.try_start(replica as usize, lp);
    }

    /// Drops replica `ri`'s cancelled requests, freeing their cache, and lets go of the bridged ones whose
    /// cache has landed; returns those with the decode replica that takes each.
    fn release(&mut self, ri: usize) -> Vec<(u32, u32)> {
        let reqs = &mut self.reqs;
        let rep = &mut self.replicas[ri];
        let mut freed = 0;
        let mut handed: Vec<(u32, u32)> = Vec::new();
        let mut keep = |id: &u32| {
            let c = &mut reqs[*id as usize];
            if c.cancelled {
                freed += c.reserved;
            } else if let Some(d) = c.handover.take() {
                freed += c.reserved;
                c.reserved = 0;
                c.decode_on_prefill = false;
                handed.push((*id, d));
                return false;
            }
            !c.cancelled
        };
        rep.running.retain(&mut keep);
        rep.prefilling.retain(&mut keep);
        rep.waiting.retain(|id| !reqs[*id as usize].cancelled);
        rep.kv_used -= freed;
        handed
    }

    fn try_start(&mut self, ri: usize, lp: &mut EventLoop<Ev>) {
        if self.replicas[ri].busy {
            return;
        }
        let handed = self.release(ri);
        let cfg = &self.cfg;
        let reqs = &mut self.reqs;
        let rep = &mut self.replicas[ri];
        // admit FCFS while the cache and the batch have room
        while let Some(&id) = rep.waiting.front() {
            let c = &reqs[id as usize];
            let need = match rep.role {
                Role::Prefill if !c.decode_on_prefill => u64::from(c.prompt),
                Role::Prefill | Role::Mixed | Role::Decode => u64::from(c.prompt) + u64::from(c.quota),
            }
            .min(cfg.kv_cache_tokens);
            let seqs = rep.running.len() + rep.prefilling.len();
            if rep.kv_used + need > cfg.kv_cache_tokens || seqs >= cfg.max_batch_size as usize {
                break;
            }
            rep.waiting.pop_front();
            rep.kv_used += need;
            reqs[id as usize].reserved = need;
            if rep.role == Role::Decode {
                rep.to_write += u64::from(reqs[id as usize].prompt) + 1;
                reqs[id as usize].replica = Some(ri as u32);
                rep.running.push(id);
            } else {
                rep.prefilling.push_back(id);
            }
        }
        // build the batch: every decoding sequence but speculative ones still waiting for drafts
        rep.cur_decode.clear();
        let (mut verify_tokens, mut verify_attn) = (0.0, 0.0);
        for &id in &rep.running {
            let c = &reqs[id as usize];
            match c.spec {
                None => rep.cur_decode.push(id),
                Some(spec) if c.drafts_ready => {
                    let (tokens, attn) = spec.verify_terms(c.prompt + c.generated);
                    verify_tokens += tokens;
                    verify_attn += attn;
                    rep.cur_decode.push(id);
                }
                Some(_) => {}
            }
        }
        rep.cur_prefill.clear();
        let mut cap = cfg.cost.max_tokens_per_iteration;
        if rep.role == Role::Prefill && !rep.cur_decode.is_empty() && cfg.prefill_decode_budget > 0 {
            cap = cap.min(cfg.prefill_decode_budget);
        }
        let budget = (cap as usize).saturating_sub(rep.cur_decode.len() + verify_tokens as usize);
        let b = rep.cur_decode.len() as f64;
        let ctx: f64 = rep
            .cur_decode
            .iter()
            .map(|&id| f64::from(reqs[id as usize].prompt + reqs[id as usize].generated))
            .sum();
        let (prefill_tokens, attn) = fill_prefill(rep, reqs, cfg, budget, b, ctx);
        if rep.cur_decode.is_empty() && rep.cur_prefill.is_empty() {
            self.hand_over(handed, lp);
            return;
        }
        let it = cfg.cost.iteration(prefill_tokens, attn, b, ctx);
        // the caches admitted since the last iteration are written in this one
        let write = cfg.kv_write_token_s * rep.to_write as f64;
        rep.to_write = 0;
        // the drafts verified, priced as prefill tokens after their sequences' contexts
        let verify = cfg.cost.prefill_token_s * verify_tokens + cfg.cost.prefill_attn_s * verify_attn;
        let (prefill_part, decode_part, t) =
            (it.prefill_s, it.decode_s + write + verify, it.total_s + write + verify);
        // charge GPU-seconds now; the iteration is committed
        let gpus = f64::from(cfg.gpus_per_replica);
        let decode_tokens = b + verify_tokens;
        let share_p = prefill_tokens / (prefill_tokens + decode_tokens);
        let gpu_p = (prefill_part + cfg.cost.base_s * share_p) * gpus;
        let gpu_d = (decode_part + cfg.cost.base_s * (1.0 - share_p)) * gpus;
        for &(id, chunk) in &rep.cur_prefill {
            reqs[id as usize].gpu_prefill_s += gpu_p * f64::from(chunk) / prefill_tokens;
        }
        for &id in &rep.cur_decode {
            let c = &mut reqs[id as usize];
            if verify_tokens > 0.0 {
                let tokens = 1.0 + c.spec.map_or(0.0, |s| f64::from(s.gamma));
                c.gpu_decode_s += gpu_d * tokens / decode_tokens;
            } else {
                c.gpu_decode_s += gpu_d / b;
            }
        }
        self.gpu_prefill_s += gpu_p;
        self.gpu_decode_s += gpu_d;
        self.iterations += 1;
        rep.busy = true;
        let dur = Nanos(((t * 1e9).round() as i64).max(1));
        rep.busy_until = lp.now() + dur;
        lp.schedule_in(dur, super::PRIO_CLOUD, Ev::IterEnd(ri as u32)).expect("future time");
        self.hand_over(handed, lp);
    }

    /// Bridged requests leave their prefill instance for the decode replicas their caches reached.
    fn hand_over(&mut self, handed: Vec<(u32, u32)>, lp: &mut EventLoop<Ev>) {
        for (id, d) in handed {
            self.replicas[d as usize].waiting.push_back(id);
            self.try_start(d as usize, lp);
        }
    }

    /// An iteration of replica `ri` ended at `now`: emits tokens into `out` and starts the next one.
    ///
    /// # Panics
    /// Never in practice: follow-up events are scheduled in the future of `now`.
    pub fn iteration_end(&mut self, ri: u32, now: Nanos, lp: &mut EventLoop<Ev>, out: &mut Vec<Emission>) {
        let ri = ri as usize;
        let role = self.replicas[ri].role;
        // caches leaving over the link, in the order of their first tokens; `true`: the instance may keep it
        let mut leaving: Vec<(u32, bool)> = Vec::new();
        {
            let reqs = &mut self.reqs;
            let rep = &mut self.replicas[ri];
            rep.busy = false;
            let mut freed = 0;
            for &id in &rep.cur_decode {
                let c = &mut reqs[id as usize];
                if c.cancelled {
                    continue;
                }
                // a verification round yields its tokens at once (what the answer still needs)
                let tokens = c.spec.map_or(1, |s| {
                    c.rounds += 1;
                    c.drafts_ready = false;
                    s.round_tokens(c.rounds).min(c.quota - c.generated)
                });
                c.generated += tokens;
                c.gap_sum += now - c.last_emit;
                c.gap_count += tokens;
                c.last_emit = now;
                out.push(Emission { req: id, first: false, tokens });
                if c.generated >= c.quota {
                    freed += c.reserved;
                    c.reserved = 0;
                }
            }
            rep.running.retain(|&id| {
                let c = &reqs[id as usize];
                c.cancelled || c.generated < c.quota
            });
            for &(id, chunk) in &rep.cur_prefill {
                let c = &mut reqs[id as usize];
                c.prefilled += chunk;
            }
            while let Some(&id) = rep.prefilling.front() {
                let c = &mut reqs[id as usize];
                if c.prefilled < c.prompt {
                    break;
                }
                rep.prefilling.pop_front();
                if c.cancelled {
                    freed += c.reserved;
                    c.reserved = 0;
                    continue;
                }
                c.generated = 1;
                c.last_emit = now;
                out.push(Emission { req: id, first: true, tokens: 1 });
                if c.quota > 1 && role == Role::Prefill && !c.decode_on_prefill && c.may_bridge {
                    leaving.push((id, true));
                } else if c.quota <= 1 || (role == Role::Prefill && !c.decode_on_prefill) {
                    freed += c.reserved;
                    c.reserved = 0;
                    if c.quota > 1 {
                        leaving.push((id, false));
                    }
                } else {
                    c.replica = Some(ri as u32);
                    rep.running.push(id);
                }
            }
            rep.kv_used -= freed;
        }
        for (id, may_keep) in leaving {
            if may_keep {
                let bridge = self.bridges_at_first_token(ri, id, now);
                let rep = &mut self.replicas[ri];
                let c = &mut self.reqs[id as usize];
                if bridge {
                    // decode here while the cache crosses; `kv_arrived` hands it over
                    rep.kv_used += u64::from(c.quota);
                    c.reserved += u64::from(c.quota);
                    c.decode_on_prefill = true;
                    c.bridged = true;
                    rep.running.push(id);
                } else {
                    rep.kv_used -= c.reserved;
                    c.reserved = 0;
                }
            }
            let d = self.least_loaded(Role::Decode);
            self.replicas[d].inbound += 1;
            let dur = self.transfer_time(id);
            // one cache at a time on the replica's link
            let rep = &mut self.replicas[ri];
            rep.link_free = rep.link_free.max(now) + dur;
            let at = rep.link_free;
            lp.schedule(at, super::PRIO_CLOUD, Ev::KvArrive(id, d as u32)).expect("future time");
        }
        self.try_start(ri, lp);
    }

    /// How long request `id`'s KV cache (its prompt and first token) takes on a prefill replica's link.
    fn transfer_time(&self, id: u32) -> Nanos {
        let seconds = self.cfg.kv_link().transfer_s(self.reqs[id as usize].prompt + 1);
        Nanos((seconds * 1e9).round() as i64)
    }

    /// Whether prefill replica `ri` bridges request `id`, planned for the pool: decodes it while its cache
    /// crosses (the bridge at the first token, [`crate::cost::ksite`]), because the pool's first decode
    /// gap would exceed the gap the instance's own iterations are cut to; it needs KV room for them.
    fn bridges_at_first_token(&self, ri: usize, id: u32, now: Nanos) -> bool {
        let objective = self.cfg.prefill_decode_gap_s;
        let rep = &self.replicas[ri];
        let c = &self.reqs[id as usize];
        if objective <= 0.0 || rep.kv_used + u64::from(c.quota) > self.cfg.kv_cache_tokens {
            return false;
        }
        let link = self.cfg.kv_link();
        let link_wait = (rep.link_free - now).max(Nanos::ZERO);
        let lands = now + link_wait + self.transfer_time(id);
        let d = &self.replicas[self.least_loaded(Role::Decode)];
        let (mut batch, mut context) = (1.0, f64::from(c.prompt) + 1.0);
        for &other in d.running.iter().chain(d.waiting.iter()) {
            let o = &self.reqs[other as usize];
            batch += 1.0;
            context += f64::from(o.prompt + o.generated);
        }
        let iteration = self.cfg.cost.iteration(0.0, 0.0, batch, context).total_s;
        // an idle replica with nothing on its way starts at once; a busy one ends its iteration first;
        // otherwise an iteration may be under way when the cache lands (one started by a cache ahead)
        let residual = if !d.busy && d.inbound == 0 {
            0.0
        } else if d.busy && lands <= d.busy_until {
            (d.busy_until - lands).as_secs()
        } else {
            iteration
        };
        let gap = pool_first_gap_s(&link, c.prompt, link_wait.as_secs(), residual, iteration);
        !within_objective(gap, objective)
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
    pub fn offers(&self, site: crate::cost::KSite) -> bool {
        self.cfg.deployment == Deployment::Colocated || self.cfg.k_sites.allows(site)
    }

    /// The cloud's price model.
    #[must_use]
    pub fn cost(&self) -> &CloudCost {
        &self.cfg.cost
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // GPU-seconds and prices compared are exact by construction
mod tests {
    use super::*;
    use crate::sim::Ev;

    fn config(deployment: Deployment, kv_cache_tokens: u64) -> CloudConfig {
        CloudConfig {
            deployment,
            replicas: 1,
            prefill_replicas: 1,
            decode_replicas: 1,
            cost: CloudCost {
                base_s: 0.005,
                prefill_token_s: 5e-5,
                prefill_attn_s: 1e-9,
                decode_seq_s: 1e-4,
                decode_context_s: 2e-8,
                max_tokens_per_iteration: 512,
            },
            max_batch_size: 16,
            kv_cache_tokens,
            gpus_per_replica: 2,
            kv_bytes_per_token: 1000.0,
            kv_link_bytes_per_s: 1e6,
            k_sites: KSites::Both,
            prefill_decode_budget: 0,
            kv_write_token_s: 0.0,
            prefill_decode_gap_s: 0.0,
        }
    }

    /// Runs the cloud alone until nothing is left, returning each emission with its time.
    fn drain(cloud: &mut Cloud, lp: &mut EventLoop<Ev>) -> Vec<(Nanos, u32, bool)> {
        let mut out = Vec::new();
        let mut emitted = Vec::new();
        while let Some(ev) = lp.pop() {
            match ev.event {
                Ev::IterEnd(r) => {
                    emitted.clear();
                    cloud.iteration_end(r, ev.at, lp, &mut emitted);
                    out.extend(emitted.iter().map(|e| (ev.at, e.req, e.first)));
                }
                Ev::KvArrive(i, r) => cloud.kv_arrived(i, r, lp),
                other => panic!("unexpected event {other:?}"),
            }
        }
        out
    }

    #[test]
    fn a_late_pool_request_is_bridged_until_its_cache_lands() {
        // 1000 tokens x 1000 bytes over 1 MB/s: one second on the link, far above a 50 ms gap
        let cfg = CloudConfig { prefill_decode_gap_s: 0.05, ..config(Deployment::Disaggregated, 100_000) };
        let (cost, link) = (cfg.cost, cfg.kv_link());
        let mut cloud = Cloud::new(cfg, 1).unwrap();
        let mut lp = EventLoop::with_capacity(8);
        cloud.submit(0, 999, 200, (false, true), None, &mut lp);
        let out = drain(&mut cloud, &mut lp);
        assert_eq!(out.len(), 200);
        let first = out[0].0;
        let landed = first + Nanos((link.transfer_s(1000) * 1e9).round() as i64);
        // every gap within the objective: lone steps on the prefill instance, then on the decode replica
        let gaps: Vec<f64> = out.windows(2).map(|w| (w[1].0 - w[0].0).as_secs()).collect();
        assert!(gaps.iter().all(|&g| g <= 0.05), "{gaps:?}");
        // tokens before the landing came from the prefill instance at its lone pace ...
        let before = out.iter().filter(|e| e.0 <= landed).count();
        assert!(before > 50, "{before}");
        assert!((gaps[0] - cost.lone_decode_s(1000)).abs() < 2e-9);
        // ... then the request moved: the prefill replica holds nothing, the decode replica decoded the rest
        let c = &cloud.reqs[0];
        assert!(c.bridged && !c.decode_on_prefill && c.generated == 200);
        assert_eq!(cloud.replicas[0].kv_used, 0);
        assert!(cloud.replicas[1].running.is_empty() && cloud.replicas[1].kv_used == 0);
        assert!(out.last().unwrap().0 > landed);
        // planned for the pool without the bridge: the first decode token waits for the whole transfer
        let cfg = config(Deployment::Disaggregated, 100_000);
        let mut cloud = Cloud::new(cfg, 1).unwrap();
        let mut lp = EventLoop::with_capacity(8);
        cloud.submit(0, 999, 200, (false, false), None, &mut lp);
        let out = drain(&mut cloud, &mut lp);
        assert!((out[1].0 - out[0].0).as_secs() > 1.0);
        assert!(!cloud.reqs[0].bridged);
    }

    #[test]
    fn a_pool_request_within_the_gap_is_not_bridged() {
        // a fast link: the pool's first decode token comes within 50 ms
        let cfg = CloudConfig {
            prefill_decode_gap_s: 0.05,
            kv_link_bytes_per_s: 1e12,
            ..config(Deployment::Disaggregated, 100_000)
        };
        let mut cloud = Cloud::new(cfg, 1).unwrap();
        let mut lp = EventLoop::with_capacity(8);
        cloud.submit(0, 999, 20, (false, true), None, &mut lp);
        let out = drain(&mut cloud, &mut lp);
        assert_eq!(out.len(), 20);
        assert!(!cloud.reqs[0].bridged);
        assert!(out.windows(2).all(|w| (w[1].0 - w[0].0).as_secs() <= 0.05));
    }

    #[test]
    fn a_lone_request_costs_the_lone_prices() {
        let cfg = config(Deployment::Colocated, 100_000);
        let cost = cfg.cost;
        let mut cloud = Cloud::new(cfg, 1).unwrap();
        let mut lp = EventLoop::with_capacity(8);
        cloud.submit(0, 1000, 3, (false, false), None, &mut lp);
        let out = drain(&mut cloud, &mut lp);
        assert_eq!(out.len(), 3);
        assert!(out[0].2 && !out[1].2 && !out[2].2);
        let first = out[0].0.as_secs();
        assert!((first - cost.lone_prefill_s(1000)).abs() < 2e-9, "{first}");
        let step = (out[1].0 - out[0].0).as_secs();
        assert!((step - cost.lone_decode_s(1001)).abs() < 2e-9, "{step}");
        assert_eq!(cloud.reqs[0].generated, 3);
        // every GPU-second is charged to the one request, prefill and decode apart
        assert_eq!(cloud.gpu_prefill_s, cloud.reqs[0].gpu_prefill_s);
        assert_eq!(cloud.gpu_decode_s, cloud.reqs[0].gpu_decode_s);
        let total = cloud.gpu_prefill_s + cloud.gpu_decode_s;
        assert!((total - 2.0 * out[2].0.as_secs()).abs() < 1e-8, "{total}");
        assert_eq!(cloud.load().kv_used_frac, 0.0, "the cache is freed at the end");
    }

    #[test]
    fn admission_waits_for_kv_cache_room() {
        // room for one request's prompt plus answer at a time
        let mut cloud = Cloud::new(config(Deployment::Colocated, 1200), 2).unwrap();
        let mut lp = EventLoop::with_capacity(8);
        cloud.submit(0, 1000, 50, (false, false), None, &mut lp);
        cloud.submit(1, 1000, 50, (false, false), None, &mut lp);
        let load = cloud.load();
        assert_eq!(load.waiting_requests, 1.0);
        assert_eq!(load.waiting_prefill_tokens, 2000.0);
        let out = drain(&mut cloud, &mut lp);
        let last_of_0 = out.iter().filter(|e| e.1 == 0).map(|e| e.0).max().unwrap();
        let first_of_1 = out.iter().find(|e| e.1 == 1 && e.2).unwrap().0;
        assert!(first_of_1 > last_of_0, "request 1 starts prefilling only after request 0 left");
    }

    #[test]
    fn disaggregated_decode_waits_for_the_kv_transfer() {
        let cfg = config(Deployment::Disaggregated, 100_000);
        let mut cloud = Cloud::new(cfg, 1).unwrap();
        let mut lp = EventLoop::with_capacity(8);
        cloud.submit(0, 999, 2, (false, false), None, &mut lp);
        let out = drain(&mut cloud, &mut lp);
        assert_eq!(out.len(), 2);
        // 1000 tokens x 1000 bytes over 1 MB/s: one second on the link, then one decode step
        let gap = (out[1].0 - out[0].0).as_secs();
        let step = cloud.cost().lone_decode_s(1000);
        assert!((gap - (1.0 + step)).abs() < 2e-9, "{gap}");
    }

    #[test]
    fn decoding_on_the_prefill_instance_skips_the_transfer_and_the_pool() {
        let cfg = config(Deployment::Disaggregated, 100_000);
        let mut cloud = Cloud::new(cfg, 2).unwrap();
        let mut lp = EventLoop::with_capacity(8);
        cloud.submit(0, 999, 4, (true, false), None, &mut lp);
        let out = drain(&mut cloud, &mut lp);
        assert_eq!(out.len(), 4);
        // no second on the link: each decode step is a lone step on the prefill replica
        for (w, ctx) in out.windows(2).zip(1000_u32..) {
            let gap = (w[1].0 - w[0].0).as_secs();
            assert!((gap - cloud.cost().lone_decode_s(ctx)).abs() < 2e-9, "{gap}");
        }
        assert_eq!(cloud.load().kv_used_frac, 0.0, "the prefill replica frees the cache at the end");
    }

    #[test]
    fn a_decoding_prefill_instance_keeps_its_iterations_within_the_gap() {
        let cfg = CloudConfig { prefill_decode_gap_s: 0.012, ..config(Deployment::Disaggregated, 100_000) };
        let mut cloud = Cloud::new(cfg, 2).unwrap();
        let mut lp = EventLoop::with_capacity(8);
        cloud.submit(0, 10, 6, (true, false), None, &mut lp);
        cloud.submit(1, 3000, 1, (false, false), None, &mut lp);
        let out = drain(&mut cloud, &mut lp);
        let steps: Vec<Nanos> = out.iter().filter(|e| e.1 == 0).map(|e| e.0).collect();
        assert_eq!(steps.len(), 6);
        for w in steps.windows(2) {
            assert!((w[1] - w[0]).as_secs() <= 0.012 + 1e-9, "{:?}", w[1] - w[0]);
        }
        // without decodes the prompt takes whole-budget chunks again, and is done
        assert_eq!(out.iter().filter(|e| e.1 == 1).count(), 1);
    }

    #[test]
    fn a_decoding_prefill_instance_caps_its_chunks() {
        let cfg = CloudConfig { prefill_decode_budget: 100, ..config(Deployment::Disaggregated, 100_000) };
        let cost = cfg.cost;
        let mut cloud = Cloud::new(cfg, 2).unwrap();
        let mut lp = EventLoop::with_capacity(8);
        cloud.submit(0, 10, 3, (true, false), None, &mut lp);
        cloud.submit(1, 2000, 1, (false, false), None, &mut lp);
        let out = drain(&mut cloud, &mut lp);
        // request 0 prefills alone (request 1 comes during that iteration); its decode steps then ride
        // with 99-token chunks of request 1's prompt
        let steps: Vec<Nanos> = out.iter().filter(|e| e.1 == 0).map(|e| e.0).collect();
        let it = cost.iteration(99.0, CloudCost::chunk_attention(99, 99), 1.0, 12.0).total_s;
        assert!(((steps[2] - steps[1]).as_secs() - it).abs() < 2e-9, "{steps:?}");
        // once nothing decodes there, the whole budget is back
        assert_eq!(out.iter().filter(|e| e.1 == 1).count(), 1);
    }

    #[test]
    fn caches_share_the_link_and_are_written_on_arrival() {
        let cfg = CloudConfig { kv_write_token_s: 1e-4, ..config(Deployment::Disaggregated, 100_000) };
        let cost = cfg.cost;
        let mut cloud = Cloud::new(cfg, 2).unwrap();
        let mut lp = EventLoop::with_capacity(8);
        // request 1 joins request 0's second chunk: both are prefilled by the same iteration
        cloud.submit(0, 999, 2, (false, false), None, &mut lp);
        cloud.submit(1, 9, 2, (false, false), None, &mut lp);
        let out = drain(&mut cloud, &mut lp);
        let at = |req: u32, first: bool| out.iter().find(|e| e.1 == req && e.2 == first).unwrap().0;
        let sent = at(0, true);
        assert_eq!(sent, at(1, true), "prefilled together");
        // 1000 tokens x 1000 bytes at 1 MB/s: request 0's cache takes 1 s; its first decode step also
        // writes the 1000 tokens received
        let first = (at(0, false) - sent).as_secs();
        assert!((first - (1.0 + cost.lone_decode_s(1000) + 1e-4 * 1000.0)).abs() < 2e-9, "{first}");
        // request 1's 10-token cache (10 ms alone) waits for request 0's on the link
        assert!((at(1, false) - sent).as_secs() > 1.01, "{:?}", at(1, false) - sent);
    }

    #[test]
    fn a_request_needing_no_decode_never_reaches_the_decode_pool() {
        let mut cloud = Cloud::new(config(Deployment::Disaggregated, 100_000), 1).unwrap();
        let mut lp = EventLoop::with_capacity(8);
        cloud.submit(0, 300, 1, (false, false), None, &mut lp);
        let out = drain(&mut cloud, &mut lp);
        assert_eq!(out.len(), 1);
        assert_eq!(cloud.gpu_decode_s, 0.0);
    }

    #[test]
    fn a_cancelled_stream_stops_and_frees_its_cache() {
        let mut cloud = Cloud::new(config(Deployment::Colocated, 100_000), 1).unwrap();
        let mut lp = EventLoop::with_capacity(8);
        cloud.submit(0, 100, 1000, (false, false), None, &mut lp);
        let mut emitted = Vec::new();
        let mut tokens = 0;
        while let Some(ev) = lp.pop() {
            if let Ev::IterEnd(r) = ev.event {
                emitted.clear();
                cloud.iteration_end(r, ev.at, &mut lp, &mut emitted);
                tokens += emitted.len();
                if tokens == 5 {
                    cloud.cancel(0);
                }
            }
        }
        assert_eq!(tokens, 5, "nothing is emitted after the cancel");
        assert_eq!(cloud.load().kv_used_frac, 0.0);
    }

    #[test]
    fn config_validation_names_the_field() {
        let mut cfg = config(Deployment::Colocated, 100);
        cfg.decode_replicas = 0;
        assert!(cfg.validate().unwrap_err().to_string().starts_with("decode_replicas"));
        let mut cfg = config(Deployment::Colocated, 100);
        cfg.kv_link_bytes_per_s = f64::NAN;
        assert!(cfg.validate().unwrap_err().to_string().starts_with("kv_link_bytes_per_s"));
        let mut cfg = config(Deployment::Disaggregated, 100);
        cfg.decode_replicas = 1_000_000_000;
        assert!(cfg.validate().unwrap_err().to_string().starts_with("decode_replicas = 1000000000 is more"));
        let mut cfg = config(Deployment::Colocated, 100);
        cfg.cost.base_s = -1.0;
        assert!(cfg.validate().unwrap_err().to_string().starts_with("base_s"));
    }
}
