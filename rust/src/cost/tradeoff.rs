//! Latency against dollars and joules: the optimizer's weighted objective (ours; the paper has none).
//!
//! The SLOs stay constraints. Among the plans of one request that are expected to meet them (first
//! token within the TTFT objective, every display gap within `max_tpot`), the optimizer keeps the one
//! that minimises
//!
//! ```text
//!     expected TTFT (s) + cost_weight x cloud $ per 1,000 such requests + energy_weight x device J
//! ```
//!
//! so `cost_weight` is the seconds of first-token latency one dollar per thousand requests is worth, and
//! `energy_weight` the seconds one joule of the phone's battery is worth. With both weights 0 the
//! optimizer's own rule applies unchanged ([`super::optimizer`]); when no plan is expected to meet the
//! SLOs, so does that rule.
//!
//! The plans weighed, per request (prompt `L`, the cloud's first token expected at `F`, an expected
//! output of `E` tokens, since a request's true length is unknown when it is planned):
//! - the optimizer's own plan: the split with the smallest catch-up `k` (first token at `F`; gaps kept
//!   when the catch-up converged), or the device alone when it answers first;
//! - the device alone: first token after the device's prefill of `L`; gaps kept when the device's
//!   decode step at context `L + E` is within `max_tpot`; no cloud dollar;
//! - the cloud alone: first token at `F`; gaps kept when the cloud's lone decode step is within
//!   `max_tpot`; no device compute.
//!
//! Each plan's price is estimated with the prices of [`super::money`] on what it would use: cloud
//! GPU-seconds as the lone prefill of what the prefix cache lacks plus the lone decode step per cloud
//! token (a follow-up's device prefill likewise covers what its session cache lacks), times the GPUs of a
//! replica (the simulator shares batched iterations, so this is an upper bound of the bill); the
//! device's prefilled and decoded tokens; the wire's bytes; the radio open from the send to the last
//! cloud token's arrival. The estimates only rank plans; the run's bill is the simulator's.

use super::choice::{Cached, Choice};
use super::cloud::CloudCost;
use super::device::DeviceCost;
use super::gap::within_objective;
use super::money::Prices;
use crate::error::{CoreError, Result};

/// The weights of the objective and what the estimates need beyond the optimizer's models.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// Seconds of TTFT one dollar per 1,000 requests is worth (>= 0).
    pub cost: f64,
    /// Seconds of TTFT one joule of device energy per request is worth (>= 0).
    pub energy: f64,
    /// The prices.
    pub prices: Prices,
    /// GPUs one cloud replica occupies.
    pub gpus_per_replica: f64,
    /// The output length the estimates assume, tokens (>= 1).
    pub expected_output_tokens: f64,
    /// The TTFT objective, seconds.
    pub ttft_slo_s: f64,
    /// Bytes per prompt token sent as text.
    pub prompt_bytes_per_token: f64,
    /// Bytes per streamed token.
    pub stream_bytes_per_token: f64,
}

/// One plan's expected outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Expected TTFT, s.
    pub ttft_s: f64,
    /// Whether every display gap is expected within `max_tpot`.
    pub gaps_kept: bool,
    /// Expected cloud dollars.
    pub usd: f64,
    /// Expected device energy, J.
    pub device_j: f64,
}

impl Weights {
    /// Refuses weights or sizes out of range, naming them.
    pub fn validate(&self) -> Result<()> {
        self.prices.validate()?;
        for (key, value) in [
            ("cost_weight", self.cost),
            ("energy_weight", self.energy),
            ("prompt_bytes_per_token", self.prompt_bytes_per_token),
            ("stream_bytes_per_token", self.stream_bytes_per_token),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(CoreError::invalid(key, format!("is {value}"), "give a finite number >= 0"));
            }
        }
        if !(self.gpus_per_replica.is_finite() && self.gpus_per_replica >= 1.0) {
            return Err(CoreError::invalid(
                "gpus_per_replica",
                format!("is {}", self.gpus_per_replica),
                "give the GPUs of one replica, >= 1",
            ));
        }
        if !(self.expected_output_tokens.is_finite() && self.expected_output_tokens >= 1.0) {
            return Err(CoreError::invalid(
                "expected_output_tokens",
                format!("is {}", self.expected_output_tokens),
                "give the output length the estimates assume, >= 1 token",
            ));
        }
        if self.ttft_slo_s.is_nan() || self.ttft_slo_s <= 0.0 {
            return Err(CoreError::invalid(
                "ttft_slo_s",
                format!("is {}", self.ttft_slo_s),
                "give the TTFT objective, seconds > 0 (infinite for none)",
            ));
        }
        Ok(())
    }

    /// Whether the weights change anything (both 0: the optimizer's own rule).
    #[must_use]
    pub fn active(&self) -> bool {
        self.cost > 0.0 || self.energy > 0.0
    }

    /// The objective of an estimate (module doc).
    #[must_use]
    pub fn objective(&self, e: &Estimate) -> f64 {
        e.ttft_s + self.cost * e.usd * 1000.0 + self.energy * e.device_j
    }

    /// Whether an estimate meets the SLOs.
    #[must_use]
    pub fn feasible(&self, e: &Estimate) -> bool {
        e.gaps_kept && within_objective(e.ttft_s, self.ttft_slo_s)
    }

    /// The cloud's dollars: its prefill of what its prefix cache lacks, and `decode_tokens` lone steps.
    fn cloud_usd(&self, cloud: &CloudCost, prompt: u32, cached: Cached, decode_tokens: f64) -> f64 {
        let prefill = cloud.lone_prefill_from_s(cached.cloud, prompt);
        let gpu_s = (prefill + decode_tokens * cloud.lone_decode_s(prompt)) * self.gpus_per_replica;
        self.prices.usd(gpu_s)
    }

    /// The device alone (its prefill covers what its session cache lacks, as in the catch-up).
    #[must_use]
    pub fn device_alone(
        &self,
        device: &DeviceCost,
        prompt: u32,
        cached: Cached,
        max_tpot_s: f64,
    ) -> Estimate {
        let out = self.expected_output_tokens;
        let held = cached.device.min(prompt.saturating_sub(1));
        let last_context = f64::from(prompt) + out;
        Estimate {
            ttft_s: device.prompt_s(prompt, held),
            gaps_kept: within_objective(device.tpot_s(last_context), max_tpot_s),
            usd: 0.0,
            device_j: self.prices.compute_j(f64::from(prompt - held), out),
        }
    }

    /// The cloud alone, its first token expected at `first_token_s`.
    #[must_use]
    pub fn cloud_alone(
        &self,
        cloud: &CloudCost,
        prompt: u32,
        cached: Cached,
        first_token_s: f64,
        max_tpot_s: f64,
    ) -> Estimate {
        let out = self.expected_output_tokens;
        let step = cloud.lone_decode_s(prompt);
        let radio_s = first_token_s + (out - 1.0) * step;
        let up = f64::from(prompt) * self.prompt_bytes_per_token;
        Estimate {
            ttft_s: first_token_s,
            gaps_kept: within_objective(step, max_tpot_s),
            usd: self.cloud_usd(cloud, prompt, cached, out - 1.0),
            device_j: self.prices.network_j(radio_s, up, out * self.stream_bytes_per_token),
        }
    }

    /// A split (`choice` not on the device alone): `k + 1` cloud tokens, the rest on the device.
    #[must_use]
    pub fn split(&self, cloud: &CloudCost, prompt: u32, cached: Cached, choice: &Choice) -> Estimate {
        let out = self.expected_output_tokens;
        let streamed = (f64::from(choice.k) + 1.0).min(out);
        let step = cloud.lone_decode_s(prompt);
        let refined = (f64::from(prompt) * choice.refine_ratio).ceil().max(1.0);
        // the full prompt reuses the device's session cache; a refined one does not
        let held = if choice.refine_ratio < 1.0 {
            0.0
        } else {
            f64::from(cached.device.min(prompt.saturating_sub(1)))
        };
        let refined_text =
            if choice.refine_ratio < 1.0 { refined * self.prompt_bytes_per_token } else { 0.0 };
        let radio_s = choice.first_token_s + (streamed - 1.0) * step;
        let up = f64::from(prompt) * self.prompt_bytes_per_token;
        let down = streamed * self.stream_bytes_per_token + refined_text;
        Estimate {
            ttft_s: choice.first_token_s,
            gaps_kept: choice.converged,
            usd: self.cloud_usd(cloud, prompt, cached, streamed - 1.0),
            device_j: self.prices.compute_j(refined - held + streamed, (out - streamed).max(0.0))
                + self.prices.network_j(radio_s, up, down),
        }
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the estimates compared are exact by construction
mod tests {
    use super::*;
    use crate::cost::{KSite, SiteReason};
    use crate::testing::toy_device;

    fn weights(cost: f64, energy: f64) -> Weights {
        Weights {
            cost,
            energy,
            prices: Prices {
                usd_per_gpu_hour: 3600.0,
                prefill_j_per_token: 0.001,
                decode_j_per_token: 0.05,
                wait_w: 0.0,
                radio_base_w: 1.0,
                radio_up_j_per_byte: 0.0,
                radio_down_j_per_byte: 0.0,
                radio_fixed_j: 0.0,
                battery_wh: 10.0,
            },
            gpus_per_replica: 2.0,
            expected_output_tokens: 11.0,
            ttft_slo_s: 1.0,
            prompt_bytes_per_token: 4.0,
            stream_bytes_per_token: 100.0,
        }
    }

    fn cloud() -> CloudCost {
        CloudCost {
            base_s: 0.01,
            prefill_token_s: 0.0,
            prefill_attn_s: 0.0,
            decode_seq_s: 0.0,
            decode_context_s: 0.0,
            prefill_knee_token_s: 0.0,
            prefill_knee_tokens: 0,
            max_tokens_per_iteration: 512,
        }
    }

    #[test]
    fn estimates_by_hand() {
        let w = weights(1.0, 1.0);
        // every iteration takes 10 ms; a GPU-second costs $1; 2 GPUs
        let c = w.cloud_alone(&cloud(), 100, Cached::NONE, 0.05, 0.05);
        assert!((c.usd - 2.0 * (0.01 + 10.0 * 0.01)).abs() < 1e-12);
        assert!((c.device_j - (0.05 + 10.0 * 0.01)).abs() < 1e-12, "{c:?}");
        assert!(c.gaps_kept);
        let choice = Choice {
            device_alone: false,
            cloud_alone: false,
            k: 3,
            refine_ratio: 1.0,
            first_token_s: 0.05,
            device_ready_s: 0.2,
            converged: true,
            k_site: KSite::Pool,
            k_site_reason: SiteReason::Only,
        };
        let s = w.split(&cloud(), 100, Cached::NONE, &choice);
        assert!((s.usd - 2.0 * (0.01 + 3.0 * 0.01)).abs() < 1e-12);
        // 100 + 4 tokens prefilled, 7 decoded, the radio open for 50 + 30 ms
        assert!((s.device_j - (104.0 * 0.001 + 7.0 * 0.05 + 0.08)).abs() < 1e-12, "{s:?}");
        assert!((w.objective(&s) - (0.05 + s.usd * 1000.0 + s.device_j)).abs() < 1e-12);
    }

    #[test]
    fn a_follow_up_pays_for_what_its_caches_lack() {
        let w = weights(1.0, 1.0);
        let device = toy_device();
        let cold = w.device_alone(&device, 1000, Cached::NONE, 0.05);
        let warm = w.device_alone(&device, 1000, Cached { device: 900, cloud: 0 }, 0.05);
        assert!((cold.ttft_s - 1.0).abs() < 1e-12 && (warm.ttft_s - 0.1).abs() < 1e-12, "{warm:?}");
        assert!((cold.device_j - warm.device_j - 900.0 * 0.001).abs() < 1e-12);
        let mut cloud = cloud();
        cloud.prefill_token_s = 1e-3;
        let full = w.cloud_alone(&cloud, 1000, Cached::NONE, 0.05, 0.05);
        let cached = w.cloud_alone(&cloud, 1000, Cached { device: 0, cloud: 512 }, 0.05, 0.05);
        assert!(cached.usd < full.usd, "{cached:?} {full:?}");
    }

    #[test]
    fn the_slos_are_constraints() {
        let w = weights(0.0, 1.0);
        let slow = Estimate { ttft_s: 1.5, gaps_kept: true, usd: 0.0, device_j: 0.0 };
        assert!(!w.feasible(&slow));
        let stalls = Estimate { ttft_s: 0.1, gaps_kept: false, usd: 0.0, device_j: 0.0 };
        assert!(!w.feasible(&stalls));
        assert!(!weights(0.0, 0.0).active());
        assert!(weights(-1.0, 0.0).validate().is_err());
        assert!(Weights { expected_output_tokens: 0.5, ..w }.validate().is_err());
    }
}
