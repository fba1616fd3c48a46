//! The cloud's configuration: its deployment, its replicas and their iteration model, and the KV link
//! between its pools, checked in one place.

use crate::cost::{CloudCost, KSites, KvLink};
use crate::error::{CoreError, Result};

/// The most replicas a pool may have: every replica is simulated, so a mistyped count must not ask for
/// more memory than the machine has.
pub const MAX_REPLICAS: u32 = 1 << 16;

/// How the cloud is deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Deployment {
    /// Prefill and decode share each replica.
    Colocated = 0,
    /// Separate prefill and decode pools.
    Disaggregated = 1,
}

impl Deployment {
    /// The names used at the Python boundary, indexed by discriminant.
    pub const NAMES: [&'static str; 2] = ["colocated", "disaggregated"];

    /// Parses a deployment's name.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "colocated" => Ok(Self::Colocated),
            "disaggregated" => Ok(Self::Disaggregated),
            other => Err(CoreError::invalid(
                "deployment",
                format!("is {other:?}"),
                "use \"colocated\" or \"disaggregated\"",
            )),
        }
    }

    /// The deployment's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
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
    pub fn kv_link(&self) -> KvLink {
        KvLink {
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
