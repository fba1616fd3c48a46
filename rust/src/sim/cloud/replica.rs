//! One replica of the cloud: its queues and KV cache, its FCFS admission, and the batch of its next
//! iteration with that batch's price and GPU-seconds (the rules are the [`super`] module doc's).

use super::{CloudConfig, CloudReqs};
use crate::cost::CloudCost;
use crate::time::Nanos;
use std::collections::VecDeque;

/// What a replica does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Mixed,
    Prefill,
    Decode,
}

/// One replica: its queues, its KV cache, the batch of the iteration under way and its link.
#[derive(Debug)]
pub(super) struct Replica {
    pub(super) role: Role,
    pub(super) busy: bool,
    pub(super) waiting: VecDeque<u32>,
    pub(super) prefilling: VecDeque<u32>,
    pub(super) running: Vec<u32>,
    pub(super) kv_used: u64,
    pub(super) cur_decode: Vec<u32>,
    pub(super) cur_prefill: Vec<(u32, u32)>,
    /// Tokens of received caches admitted and not yet written (decode replicas).
    pub(super) to_write: u64,
    /// When the replica's KV link is free again (prefill replicas).
    pub(super) link_free: Nanos,
    /// When the iteration under way ends (meaningful while `busy`).
    pub(super) busy_until: Nanos,
    /// KV caches on their way to this replica (decode replicas).
    pub(super) inbound: u32,
    /// The cloud's count of cancellations and hand-overs when this replica last released its own.
    pub(super) released_at: u64,
}

impl Replica {
    pub(super) fn new(role: Role) -> Self {
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
            released_at: 0,
        }
    }

    pub(super) fn load(&self) -> usize {
        self.waiting.len() + self.prefilling.len() + self.running.len()
    }

    /// Admits waiting requests first come first served while the KV cache and the batch have room;
    /// `ri` is this replica's index.
    pub(super) fn admit(&mut self, ri: usize, reqs: &mut CloudReqs, cfg: &CloudConfig) {
        while let Some(&id) = self.waiting.front() {
            let c = &reqs[id as usize];
            let need = match self.role {
                Role::Prefill if !c.decode_on_prefill => u64::from(c.prompt),
                Role::Prefill | Role::Mixed | Role::Decode => u64::from(c.prompt) + u64::from(c.quota),
            }
            .min(cfg.kv_cache_tokens);
            let seqs = self.running.len() + self.prefilling.len();
            if self.kv_used + need > cfg.kv_cache_tokens || seqs >= cfg.max_batch_size as usize {
                break;
            }
            self.waiting.pop_front();
            self.kv_used += need;
            reqs[id as usize].reserved = need;
            if self.role == Role::Decode {
                self.to_write += u64::from(reqs[id as usize].prompt) + 1;
                reqs[id as usize].replica = Some(ri as u32);
                self.running.push(id);
            } else {
                self.prefilling.push_back(id);
            }
        }
    }

    /// Builds the next iteration's batch: every decoding sequence but speculative ones still waiting for
    /// drafts, then prefill chunks within the rest of the token budget; `None` when there is nothing to
    /// run.
    pub(super) fn batch(&mut self, reqs: &CloudReqs, cfg: &CloudConfig) -> Option<Batch> {
        self.cur_decode.clear();
        let (mut verify_tokens, mut verify_attn) = (0.0, 0.0);
        for &id in &self.running {
            if reqs.awaits_drafts(id) {
                continue;
            }
            let c = &reqs[id as usize];
            if let Some(spec) = c.spec {
                let (tokens, attn) = spec.verify_terms(c.prompt + c.generated);
                verify_tokens += tokens;
                verify_attn += attn;
            }
            self.cur_decode.push(id);
        }
        self.cur_prefill.clear();
        let mut cap = cfg.cost.max_tokens_per_iteration;
        if self.role == Role::Prefill && !self.cur_decode.is_empty() && cfg.prefill_decode_budget > 0 {
            cap = cap.min(cfg.prefill_decode_budget);
        }
        let budget = (cap as usize).saturating_sub(self.cur_decode.len() + verify_tokens as usize);
        let b = self.cur_decode.len() as f64;
        let ctx: f64 = self
            .cur_decode
            .iter()
            .map(|&id| f64::from(reqs[id as usize].prompt + reqs[id as usize].generated))
            .sum();
        let (prefill_tokens, attn) = fill_prefill(self, reqs, cfg, budget, b, ctx);
        if self.cur_decode.is_empty() && self.cur_prefill.is_empty() {
            return None;
        }
        Some(Batch {
            prefill_tokens,
            attention: attn,
            decodes: b,
            context: ctx,
            verify_tokens,
            verify_attention: verify_attn,
        })
    }
}

/// Adds prefill chunks to `rep`'s batch, first come first served, within `budget` tokens and, on a
/// prefill replica that decodes, within its iteration time (`prefill_decode_gap_s`); returns the prefill
/// tokens and their attention units.
fn fill_prefill(
    rep: &mut Replica,
    reqs: &CloudReqs,
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

/// The terms of one iteration's batch, as the iteration model prices them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Batch {
    /// Prefill tokens of the chunks.
    prefill_tokens: f64,
    /// Attention units of the chunks ([`CloudCost::chunk_attention`]).
    attention: f64,
    /// Decoding sequences.
    decodes: f64,
    /// Their context tokens.
    context: f64,
    /// Draft tokens verified (speculative sequences).
    verify_tokens: f64,
    /// Their attention units.
    verify_attention: f64,
}

impl Batch {
    /// The iteration's prefill part, decode part and total, seconds: the iteration model, plus the write
    /// of the `to_write` cache tokens admitted since the last iteration and the drafts verified, priced as
    /// prefill tokens after their sequences' contexts (both in the decode part).
    pub(super) fn time(&self, cfg: &CloudConfig, to_write: u64) -> (f64, f64, f64) {
        let it = cfg.cost.iteration(self.prefill_tokens, self.attention, self.decodes, self.context);
        let write = cfg.kv_write_token_s * to_write as f64;
        let verify =
            cfg.cost.prefill_token_s * self.verify_tokens + cfg.cost.prefill_attn_s * self.verify_attention;
        (it.prefill_s, it.decode_s + write + verify, it.total_s + write + verify)
    }

    /// The batch in words, for errors: its prefill tokens, decoding sequences and their context, drafts
    /// verified and `to_write` cache tokens written.
    pub(super) fn describe(&self, to_write: u64) -> String {
        format!(
            "{} prefill tokens, {} decoding sequences over {} context tokens, {} drafts to verify and {} \
             received cache tokens to write",
            self.prefill_tokens as u64,
            self.decodes as u64,
            self.context as u64,
            self.verify_tokens as u64,
            to_write
        )
    }

    /// Charges the iteration's GPU-seconds to the requests in `rep`'s batch (the prefill terms to the
    /// chunks by tokens, the decode terms to the decoding sequences by their tokens in it, `base` by token
    /// share); returns the prefill and the decode GPU-seconds.
    pub(super) fn charge(
        &self,
        rep: &Replica,
        reqs: &mut CloudReqs,
        cfg: &CloudConfig,
        (prefill_part, decode_part): (f64, f64),
    ) -> (f64, f64) {
        let gpus = f64::from(cfg.gpus_per_replica);
        let decode_tokens = self.decodes + self.verify_tokens;
        let share_p = self.prefill_tokens / (self.prefill_tokens + decode_tokens);
        let gpu_p = (prefill_part + cfg.cost.base_s * share_p) * gpus;
        let gpu_d = (decode_part + cfg.cost.base_s * (1.0 - share_p)) * gpus;
        for &(id, chunk) in &rep.cur_prefill {
            reqs[id as usize].gpu_prefill_s += gpu_p * f64::from(chunk) / self.prefill_tokens;
        }
        for &id in &rep.cur_decode {
            let c = &mut reqs[id as usize];
            if self.verify_tokens > 0.0 {
                let tokens = 1.0 + c.spec.map_or(0.0, |s| f64::from(s.gamma));
                c.gpu_decode_s += gpu_d * tokens / decode_tokens;
            } else {
                c.gpu_decode_s += gpu_d / self.decodes;
            }
        }
        (gpu_p, gpu_d)
    }
}
