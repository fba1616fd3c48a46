//! Fixtures shared by the crate's tests: one cloud and one device every cost test can price by hand.

use crate::cost::{CloudCost, DeviceCost, KvLink};

/// An A100-like cloud replica with round coefficients: 5 ms per iteration, 50 µs per prefill token,
/// 1 ns per attention unit, 0.1 ms per decoding sequence, 20 ns per context token, 512 tokens an
/// iteration.
pub(crate) fn a100() -> CloudCost {
    CloudCost {
        base_s: 0.005,
        prefill_token_s: 5e-5,
        prefill_attn_s: 1e-9,
        decode_seq_s: 1e-4,
        decode_context_s: 2e-8,
        prefill_knee_token_s: 0.0,
        prefill_knee_tokens: 0,
        max_tokens_per_iteration: 512,
    }
}

/// A toy device: 1 ms per prompt token, 20 ms per decode step at any context, 1 byte of KV cache a token.
pub(crate) fn toy_device() -> DeviceCost {
    DeviceCost::new(vec![1000.0], vec![1.0], vec![0.0], vec![0.02], 1.0).expect("a valid device")
}

/// A 25 GB/s KV link carrying a 128 KiB-a-token cache, written at 129 ns a token.
pub(crate) const KV_LINK: KvLink =
    KvLink { bytes_per_token: 131_072.0, bytes_per_s: 25e9, write_token_s: 1.29e-7 };
