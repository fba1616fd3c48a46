//! A policy's decision for one request: the mode and its settings.

use crate::cost::{KSite, SpecDecode};
use crate::error::{CoreError, Result};
use crate::pacing::PaceConfig;

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Cloud only.
    Cloud = 0,
    /// Device only.
    Device = 1,
    /// P/D-Device.
    Pd = 2,
    /// P/D-Device without the speed controller.
    Naive = 3,
    /// Cloud prefill and KV-cache transfer to the device.
    KvTransfer = 4,
    /// Cloud and device race for the first token.
    Race = 5,
    /// DiSCo: a race for the first token, then the stream migrates from the cloud to the device.
    Disco = 6,
    /// Speculative decoding: the device drafts, the cloud verifies.
    Spec = 7,
}

impl Mode {
    /// The names used at the Python boundary, indexed by discriminant.
    pub const NAMES: [&'static str; 8] =
        ["cloud", "device", "pd", "naive", "kv-transfer", "race", "disco", "spec"];

    /// Parses a mode name.
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "cloud" => Self::Cloud,
            "device" => Self::Device,
            "pd" => Self::Pd,
            "naive" => Self::Naive,
            "kv-transfer" => Self::KvTransfer,
            "race" => Self::Race,
            "disco" => Self::Disco,
            "spec" => Self::Spec,
            other => {
                return Err(CoreError::invalid(
                    "mode",
                    format!("is {other:?}"),
                    "use one of cloud, device, pd, naive, kv-transfer, race, disco, spec",
                ))
            }
        })
    }
}

/// A policy's decision for one request.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// The mode.
    pub mode: Mode,
    /// Cloud decode tokens after the first (P/D-Device and naive split; DiSCo asks for the whole answer).
    pub k: u32,
    /// Fraction of the prompt the device prefills, in (0, 1].
    pub refine_ratio: f64,
    /// Display pacing bounds.
    pub pace: PaceConfig,
    /// Where a disaggregated cloud decodes the `k` tokens (P/D-Device and naive split) or DiSCo's stream.
    pub k_site: KSite,
    /// Draft length and acceptance rate (speculative decoding only).
    pub spec: Option<SpecDecode>,
}

impl Plan {
    /// Validates a plan.
    pub fn new(mode: Mode, k: u32, refine_ratio: f64, pace: PaceConfig) -> Result<Self> {
        if !(refine_ratio.is_finite() && refine_ratio > 0.0 && refine_ratio <= 1.0) {
            return Err(CoreError::invalid(
                "refine_ratio",
                format!("is {refine_ratio}"),
                "give the kept fraction of the prompt in (0, 1]",
            ));
        }
        Ok(Self { mode, k, refine_ratio, pace, k_site: KSite::Pool, spec: None })
    }

    /// A speculative-decoding plan.
    pub fn spec(spec: SpecDecode, pace: PaceConfig) -> Result<Self> {
        Ok(Self { spec: Some(spec), ..Self::new(Mode::Spec, 0, 1.0, pace)? })
    }

    /// The plan with the `k` tokens decoded at `site`.
    #[must_use]
    pub fn at_site(self, site: KSite) -> Self {
        Self { k_site: site, ..self }
    }
}
