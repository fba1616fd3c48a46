//! What an answer costs: the cloud's dollars and the device's energy, from a run's per-request columns.
//!
//! The accounting reads only columns every mode fills ([`crate::sim::Results`]): cloud GPU-seconds
//! (prefill and decode), device prefill and decode tokens, bytes sent each way and the time the
//! device's radio was active. A new policy or mode that fills them gets its cost without a line here.
//!
//! - Dollars: `(cloud_prefill_gpu_s + cloud_decode_gpu_s) * usd_per_gpu_hour / 3600`. The simulator
//!   already attributes batched GPU time to requests (an iteration's GPU-seconds, `t x gpus_per_replica`:
//!   its prefill part to prefill chunks by tokens, its decode part to decoding sequences equally, its
//!   fixed part by token share; [`crate::sim::cloud`]), so a request pays for its share of each
//!   iteration it was in, and the sum over requests is the cloud's whole bill.
//! - Device energy, joules: compute (`prefill_j_per_token x device_prefill_tokens +
//!   decode_j_per_token x device_decode_tokens`) plus the radio and the waiting SoC. The radio follows
//!   the linear model of Huang et al. (MobiSys 2012): while a request's connection is open (`radio_s`,
//!   from the request's send to the last byte it receives) the radio draws `radio_base_w`, each byte
//!   costs `radio_up_j_per_byte` or `radio_down_j_per_byte` on top, and a request that used the network
//!   pays `radio_fixed_j` once (the promotion to the connected state and the tail after the last byte).
//!   While the connection is open the SoC stays awake at `wait_w`. Device compute that overlaps the
//!   open connection is counted in both (an upper bound, stated).
//! - Battery: `device_j / (battery_wh x 3600) x 100` percent of the stated battery.
//!
//! Every coefficient comes from a profile (cloud: the GPU-hour price; device: energy per token, waiting
//! power, battery; network: the radio), with its source cited there.

use crate::error::{CoreError, Result};

/// The prices of one deployment: the cloud's GPU-hour, the device's energy per token and its radio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    /// Dollars per GPU-hour of the cloud's GPU.
    pub usd_per_gpu_hour: f64,
    /// Device energy per prefilled token, J.
    pub prefill_j_per_token: f64,
    /// Device energy per decoded token, J.
    pub decode_j_per_token: f64,
    /// Device SoC power while a request waits on the network, W.
    pub wait_w: f64,
    /// Radio power while a request's connection is open, W.
    pub radio_base_w: f64,
    /// Radio energy per byte sent, J.
    pub radio_up_j_per_byte: f64,
    /// Radio energy per byte received, J.
    pub radio_down_j_per_byte: f64,
    /// Radio energy once per request that used the network (promotion and tail), J.
    pub radio_fixed_j: f64,
    /// The stated battery, Wh.
    pub battery_wh: f64,
}

/// What one request used, in the units the prices apply to.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Usage {
    /// Cloud GPU-seconds (prefill and decode).
    pub gpu_s: f64,
    /// Tokens the device prefilled.
    pub prefill_tokens: f64,
    /// Tokens the device decoded.
    pub decode_tokens: f64,
    /// Bytes the device sent.
    pub bytes_up: f64,
    /// Bytes the device received.
    pub bytes_down: f64,
    /// Seconds the device's connection for this request was open.
    pub radio_s: f64,
}

/// What one request cost.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Bill {
    /// Cloud dollars.
    pub usd: f64,
    /// Device energy in compute, J.
    pub compute_j: f64,
    /// Device energy in the radio and the waiting SoC, J.
    pub network_j: f64,
}

impl Bill {
    /// The device's whole energy, J.
    #[must_use]
    pub fn device_j(&self) -> f64 {
        self.compute_j + self.network_j
    }
}

impl Prices {
    /// Refuses a price that is negative or not finite, and a battery that is not above 0, naming the key.
    pub fn validate(&self) -> Result<()> {
        let fields = [
            ("usd_per_gpu_hour", self.usd_per_gpu_hour),
            ("prefill_j_per_token", self.prefill_j_per_token),
            ("decode_j_per_token", self.decode_j_per_token),
            ("wait_w", self.wait_w),
            ("radio_base_w", self.radio_base_w),
            ("radio_up_j_per_byte", self.radio_up_j_per_byte),
            ("radio_down_j_per_byte", self.radio_down_j_per_byte),
            ("radio_fixed_j", self.radio_fixed_j),
        ];
        for (key, value) in fields {
            if !(value.is_finite() && value >= 0.0) {
                return Err(CoreError::invalid(key, format!("is {value}"), "give a finite price >= 0"));
            }
        }
        if !(self.battery_wh.is_finite() && self.battery_wh > 0.0) {
            return Err(CoreError::invalid(
                "battery_wh",
                format!("is {}", self.battery_wh),
                "give the stated battery in Wh, finite and > 0",
            ));
        }
        Ok(())
    }

    /// Cloud dollars of `gpu_s` GPU-seconds.
    #[must_use]
    pub fn usd(&self, gpu_s: f64) -> f64 {
        gpu_s * self.usd_per_gpu_hour / 3600.0
    }

    /// The device's compute energy, J.
    #[must_use]
    pub fn compute_j(&self, prefill_tokens: f64, decode_tokens: f64) -> f64 {
        self.prefill_j_per_token * prefill_tokens + self.decode_j_per_token * decode_tokens
    }

    /// The radio's and the waiting SoC's energy for one request, J (0 without network use).
    #[must_use]
    pub fn network_j(&self, radio_s: f64, bytes_up: f64, bytes_down: f64) -> f64 {
        if radio_s <= 0.0 && bytes_up <= 0.0 && bytes_down <= 0.0 {
            return 0.0;
        }
        (self.radio_base_w + self.wait_w) * radio_s
            + self.radio_up_j_per_byte * bytes_up
            + self.radio_down_j_per_byte * bytes_down
            + self.radio_fixed_j
    }

    /// The bill of one request.
    #[must_use]
    pub fn bill(&self, u: &Usage) -> Bill {
        Bill {
            usd: self.usd(u.gpu_s),
            compute_j: self.compute_j(u.prefill_tokens, u.decode_tokens),
            network_j: self.network_j(u.radio_s, u.bytes_up, u.bytes_down),
        }
    }

    /// `joules` as a percentage of the stated battery.
    #[must_use]
    pub fn battery_pct(&self, joules: f64) -> f64 {
        joules / (self.battery_wh * 3600.0) * 100.0
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the bills compared are exact by construction
mod tests {
    use super::*;

    fn prices() -> Prices {
        Prices {
            usd_per_gpu_hour: 3.6,
            prefill_j_per_token: 0.002,
            decode_j_per_token: 0.05,
            wait_w: 0.5,
            radio_base_w: 1.0,
            radio_up_j_per_byte: 1e-6,
            radio_down_j_per_byte: 5e-7,
            radio_fixed_j: 2.0,
            battery_wh: 10.0,
        }
    }

    #[test]
    fn a_bill_by_hand() {
        let u = Usage {
            gpu_s: 2.0,
            prefill_tokens: 100.0,
            decode_tokens: 10.0,
            bytes_up: 1000.0,
            bytes_down: 2000.0,
            radio_s: 2.0,
        };
        let b = prices().bill(&u);
        assert_eq!(b.usd, 2.0 * 3.6 / 3600.0);
        assert!((b.compute_j - (0.2 + 0.5)).abs() < 1e-12);
        assert!((b.network_j - (1.5 * 2.0 + 1e-3 + 1e-3 + 2.0)).abs() < 1e-12);
        assert!((prices().battery_pct(36.0) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn no_network_no_radio() {
        let u = Usage { prefill_tokens: 5.0, decode_tokens: 3.0, ..Usage::default() };
        assert_eq!(prices().bill(&u).network_j, 0.0);
    }

    #[test]
    fn zero_prices_zero_bill() {
        let zero = Prices {
            usd_per_gpu_hour: 0.0,
            prefill_j_per_token: 0.0,
            decode_j_per_token: 0.0,
            wait_w: 0.0,
            radio_base_w: 0.0,
            radio_up_j_per_byte: 0.0,
            radio_down_j_per_byte: 0.0,
            radio_fixed_j: 0.0,
            battery_wh: 1.0,
        };
        zero.validate().unwrap();
        let u = Usage {
            gpu_s: 9.0,
            prefill_tokens: 9.0,
            decode_tokens: 9.0,
            bytes_up: 9.0,
            bytes_down: 9.0,
            radio_s: 9.0,
        };
        assert_eq!(zero.bill(&u), Bill::default());
    }

    #[test]
    fn bad_prices_are_named() {
        let bad = Prices { decode_j_per_token: f64::NAN, ..prices() };
        assert!(bad.validate().unwrap_err().to_string().contains("decode_j_per_token"));
        let bad = Prices { usd_per_gpu_hour: -1.0, ..prices() };
        assert!(bad.validate().unwrap_err().to_string().contains("usd_per_gpu_hour"));
        let bad = Prices { battery_wh: 0.0, ..prices() };
        assert!(bad.validate().unwrap_err().to_string().contains("battery_wh"));
    }
}
