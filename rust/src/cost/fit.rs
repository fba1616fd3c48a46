//! Where a prompt fits (ours): a side can serve a prompt only if it can hold the prompt's KV cache and its
//! first token's.
//!
//! - The cloud: one replica's KV cache (a cloud profile's `[limits] kv_cache_tokens`), the limit the runs
//!   already fit their requests to (`--oversize`): a prompt of `L` tokens fits when `L + 1` do.
//! - The device: its profile gives no memory size, so the bound is what a device can physically hold,
//!   [`DEVICE_KV_BYTES`] of KV cache (1 TiB, more memory than any phone or laptop has) at the device
//!   model's `kv_bytes_per_token`: a prompt fits when `(L + 1)` tokens' KV does.
//!
//! A prompt that fits neither side is refused by the planner with both limits and the fix: no plan can
//! serve it, and pricing one (a cloud TTFT of 10^7 s for a prompt of 10^8 tokens) would be fiction.

use super::device::DeviceCost;
use crate::error::{CoreError, Result};

/// The most KV-cache memory a device may have, bytes: 1 TiB, beyond any phone or laptop (the largest
/// laptops hold 128 GB of memory in all).
pub const DEVICE_KV_BYTES: f64 = 1_099_511_627_776.0;

/// The longest prompt each side can hold (module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptLimits {
    /// The device's longest prompt, tokens.
    pub device_tokens: u64,
    /// The cloud's longest prompt, tokens (`None`: not known, no limit).
    pub cloud_tokens: Option<u64>,
}

impl PromptLimits {
    /// The device's limit from its model's KV bytes per token; the cloud's unknown.
    #[must_use]
    pub fn of_device(device: &DeviceCost) -> Self {
        let tokens = (DEVICE_KV_BYTES / device.kv_bytes_per_token()).floor() as u64;
        Self { device_tokens: tokens.saturating_sub(1), cloud_tokens: None }
    }

    /// These limits with the cloud's: one replica's KV cache of `kv_cache_tokens` (at least 2: a prompt
    /// token and the first answer token).
    pub fn with_cloud_kv_cache(self, kv_cache_tokens: u64) -> Result<Self> {
        if kv_cache_tokens < 2 {
            return Err(CoreError::invalid(
                "cloud_kv_cache_tokens",
                format!("= {kv_cache_tokens} holds no prompt and its first token"),
                "pass one cloud replica's KV-cache capacity in tokens, at least 2",
            ));
        }
        Ok(Self { cloud_tokens: Some(kv_cache_tokens - 1), ..self })
    }

    /// Whether a prompt of `prompt` tokens fits the device and the cloud.
    #[must_use]
    pub fn fits(&self, prompt: u32) -> (bool, bool) {
        let p = u64::from(prompt);
        (p <= self.device_tokens, self.cloud_tokens.is_none_or(|c| p <= c))
    }

    /// Refuses a prompt that fits neither side, naming both limits.
    pub fn check(&self, prompt: u32) -> Result<()> {
        // an unknown cloud limit fits every prompt
        let Some(cloud) = self.cloud_tokens.filter(|_| self.fits(prompt) == (false, false)) else {
            return Ok(());
        };
        Err(CoreError::invalid(
            "prompt_tokens",
            format!(
                "= {prompt} fits neither the device (at most {} tokens: 1 TiB of KV cache, \
                 more than any device has) nor one cloud replica (at most {cloud} tokens: its KV cache holds \
                 the prompt and its first token)",
                self.device_tokens
            ),
            "plan a prompt one side can hold: shorten it, or use a cloud profile with a larger [limits] \
             kv_cache_tokens",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::toy_device;

    #[test]
    fn a_prompt_beyond_both_limits_is_refused() {
        let device = DeviceCost::new(vec![1.0], vec![0.001], vec![0.0], vec![0.02], 114_688.0).unwrap();
        let limits = PromptLimits::of_device(&device).with_cloud_kv_cache(467_280).unwrap();
        assert_eq!(limits.device_tokens, 9_586_979);
        assert_eq!(limits.fits(467_279), (true, true));
        assert_eq!(limits.fits(467_280), (true, false));
        assert!(limits.check(9_586_979).is_ok());
        let e = limits.check(100_000_000).unwrap_err().to_string();
        assert!(
            e.starts_with("prompt_tokens = 100000000 fits neither the device (at most 9586979 tokens"),
            "{e}"
        );
        assert!(e.contains("nor one cloud replica (at most 467279 tokens"), "{e}");
        // a cloud whose cache holds it serves it; without the cloud's limit nothing is refused
        let big = PromptLimits::of_device(&device).with_cloud_kv_cache(200_000_000).unwrap();
        assert_eq!(big.fits(100_000_000), (false, true));
        assert!(PromptLimits::of_device(&toy_device()).check(u32::MAX).is_ok());
        assert!(PromptLimits::of_device(&device).with_cloud_kv_cache(1).is_err());
    }
}
