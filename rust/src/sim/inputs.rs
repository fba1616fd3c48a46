//! What a run simulates: its requests, their network and display settings, the bytes a token takes on
//! the wire and the conversations the caches follow, checked before the run starts.

use super::caches::Turn;
use super::metrics::QoeParams;
use crate::error::{CoreError, Result};
use crate::time::Nanos;

/// The workload and environment of one run.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// Arrival times, non-decreasing.
    pub arrival: Vec<Nanos>,
    /// Prompt tokens per request (>= 1).
    pub prompt: Vec<u32>,
    /// Output tokens per request (>= 1).
    pub output: Vec<u32>,
    /// One-way network delay per request, seconds (finite, >= 0); policies plan with these values.
    pub one_way_s: Vec<f64>,
    /// Device downlink bandwidth, bytes/s (KV transfer).
    pub bandwidth_bytes_per_s: f64,
    /// QoE parameters.
    pub qoe: QoeParams,
    /// Bytes on the wire per text token.
    pub wire: Wire,
    /// Sessions, turns and the caches they use ([`super::caches`]); the default is single-turn, no caches.
    pub conv: Conversations,
}

/// Bytes on the device's network per token of text (the `bytes_up` and `bytes_down` results).
///
/// A request that reaches the cloud sends its prompt as text (`prompt_bytes_per_token` per token); the
/// cloud streams each token it generates in its own message (`stream_bytes_per_token`, the token and its
/// framing); a refined prompt comes back as text with the first token; a kv-transfer's cache comes down
/// at the device model's `kv_bytes_per_token`. Speculative decoding sends each round's drafts up and its
/// verified tokens down at `stream_bytes_per_token` a token (ours: a draft travels as a streamed token
/// does).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wire {
    /// Bytes per prompt token sent as text.
    pub prompt_bytes_per_token: f64,
    /// Bytes per streamed token, framing included.
    pub stream_bytes_per_token: f64,
}

impl Wire {
    /// Refuses sizes that are negative or not finite.
    pub fn validate(&self) -> Result<()> {
        for (key, value) in [
            ("prompt_bytes_per_token", self.prompt_bytes_per_token),
            ("stream_bytes_per_token", self.stream_bytes_per_token),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(CoreError::invalid(key, format!("is {value}"), "give finite bytes >= 0"));
            }
        }
        Ok(())
    }
}

/// The conversations of a workload and the caches' sizes ([`super::caches`] states the rules).
#[derive(Debug, Clone, Default)]
pub struct Conversations {
    /// Per request (empty: every request is its own first turn on its own device).
    pub turns: Vec<Turn>,
    /// Request `i`'s cloud prefix blocks are `block_ids[block_offsets[i]..block_offsets[i + 1]]`
    /// (empty: no blocks).
    pub block_offsets: Vec<usize>,
    /// See `block_offsets`.
    pub block_ids: Vec<u64>,
    /// Tokens per block.
    pub block_tokens: u32,
    /// The device's session-cache budget, tokens (its memory budget over its KV bytes per token).
    pub device_cache_tokens: u64,
    /// The cloud's prefix-cache capacity, tokens.
    pub cloud_cache_tokens: u64,
}

impl Inputs {
    /// Checks the per-request columns and the environment, then fills single-turn conversations and
    /// checks given ones; the first error names the argument and its fix.
    pub(super) fn check(&mut self) -> Result<()> {
        self.check_requests()?;
        self.check_environment()?;
        self.check_conversations()
    }

    /// One value per request in every column, arrivals in order, a prompt and an answer for each.
    fn check_requests(&self) -> Result<()> {
        let n = self.arrival.len();
        for (name, len) in [
            ("prompt_tokens", self.prompt.len()),
            ("output_tokens", self.output.len()),
            ("one_way_s", self.one_way_s.len()),
        ] {
            if len != n {
                return Err(CoreError::invalid(
                    name,
                    format!("has {len} entries but arrival_s has {n}"),
                    "pass one value per request",
                ));
            }
        }
        for i in 0..n {
            if i > 0 && self.arrival[i] < self.arrival[i - 1] {
                return Err(CoreError::invalid_at(
                    "arrival_s",
                    i,
                    format!("= {} is earlier than the previous request", self.arrival[i]),
                    "sort requests by arrival time",
                ));
            }
            if self.prompt[i] == 0 {
                return Err(CoreError::invalid_at(
                    "prompt_tokens",
                    i,
                    "is 0",
                    "every request needs a prompt token",
                ));
            }
            if self.output[i] == 0 {
                return Err(CoreError::invalid_at(
                    "output_tokens",
                    i,
                    "is 0",
                    "every request generates at least one token",
                ));
            }
        }
        Ok(())
    }

    /// The device's bandwidth, the wire's sizes and the QoE parameters.
    fn check_environment(&self) -> Result<()> {
        if !(self.bandwidth_bytes_per_s.is_finite() && self.bandwidth_bytes_per_s > 0.0) {
            return Err(CoreError::invalid(
                "bandwidth_bps",
                format!("gives {} bytes/s", self.bandwidth_bytes_per_s),
                "give a finite bandwidth > 0",
            ));
        }
        self.wire.validate()?;
        if !(self.qoe.ttft_s.is_finite() && self.qoe.ttft_s >= 0.0) {
            return Err(CoreError::invalid(
                "qoe_ttft_s",
                format!("is {}", self.qoe.ttft_s),
                "give a finite time >= 0",
            ));
        }
        if !(self.qoe.tokens_per_s.is_finite() && self.qoe.tokens_per_s > 0.0) {
            return Err(CoreError::invalid(
                "qoe_tokens_per_s",
                format!("is {}", self.qoe.tokens_per_s),
                "give a finite speed > 0",
            ));
        }
        Ok(())
    }

    /// Fills single-turn conversations and checks given ones.
    fn check_conversations(&mut self) -> Result<()> {
        let n = self.arrival.len();
        let conv = &mut self.conv;
        if conv.turns.is_empty() {
            conv.turns = (0..n as u32)
                .map(|i| Turn {
                    device: i,
                    session: i,
                    parent: None,
                    shared: 0,
                    turn: 1,
                    prompt: self.prompt[i as usize],
                })
                .collect();
        }
        if conv.block_offsets.is_empty() {
            conv.block_offsets = vec![0; n + 1];
        }
        if conv.turns.len() != n || conv.block_offsets.len() != n + 1 {
            return Err(CoreError::invalid(
                "session",
                format!(
                    "has {} entries (block_offsets {}) for {n} requests",
                    conv.turns.len(),
                    conv.block_offsets.len()
                ),
                "pass one session, turn, parent and shared prefix per request and n + 1 block offsets",
            ));
        }
        if conv.block_offsets[0] != 0
            || conv.block_offsets[n] != conv.block_ids.len()
            || conv.block_offsets.windows(2).any(|w| w[1] < w[0])
        {
            return Err(CoreError::invalid(
                "block_offsets",
                "are not non-decreasing offsets from 0 to the number of block ids",
                "pass request i's blocks as block_ids[block_offsets[i]..block_offsets[i + 1]]",
            ));
        }
        if conv.block_tokens == 0 && !conv.block_ids.is_empty() {
            return Err(CoreError::invalid(
                "block_tokens",
                "is 0",
                "give the tokens of one prefix block, >= 1",
            ));
        }
        for i in 0..n {
            conv.turns[i].prompt = self.prompt[i];
            let t = conv.turns[i];
            if let Some(p) = t.parent {
                if p as usize >= i || conv.turns[p as usize].session != t.session {
                    return Err(CoreError::invalid_at(
                        "parent",
                        i,
                        format!("= {p} is not an earlier request of session {}", t.session),
                        "give the previous turn of the same session, or none",
                    ));
                }
            }
            if t.shared > t.prompt || (t.parent.is_none() && t.shared > 0) {
                return Err(CoreError::invalid_at(
                    "shared_prefix_tokens",
                    i,
                    format!("= {} with a prompt of {} and parent {:?}", t.shared, t.prompt, t.parent),
                    "give 0 .. prompt_tokens, and 0 without a parent",
                ));
            }
        }
        Ok(())
    }
}
