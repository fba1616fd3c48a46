//! What the optimizer chose for one request ([`Choice`]), and the cached prompt tokens it chose with
//! ([`Cached`]): the records [`super::optimizer`] returns and [`super::tradeoff`] weighs.

use super::ksite::{KSite, SiteReason};

/// Leading prompt tokens a request finds already cached (follow-up turns): in the device's session cache
/// and in the cloud's prefix cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cached {
    /// Tokens the device holds; its prefill covers the rest (with the full prompt only).
    pub device: u32,
    /// Tokens the cloud's prefix cache holds; its prefill covers the rest.
    pub cloud: u32,
}

impl Cached {
    /// Nothing cached: a first turn.
    pub const NONE: Self = Self { device: 0, cloud: 0 };
}

/// What the optimizer chose for one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    /// The device alone answers (no cloud tokens).
    pub device_alone: bool,
    /// The cloud alone answers (only with weights on cost and energy, [`super::tradeoff`]).
    pub cloud_alone: bool,
    /// Cloud decode tokens after the first (0 when `device_alone`).
    pub k: u32,
    /// The refinement ratio (1 when `device_alone`).
    pub refine_ratio: f64,
    /// Expected arrival of the cloud's first token, seconds from arrival.
    pub first_token_s: f64,
    /// Expected time of the device's own first token, seconds from arrival.
    pub device_ready_s: f64,
    /// False when the catch-up has no fixed point up to `max_k`.
    pub converged: bool,
    /// Where the `k` tokens are decoded.
    pub k_site: KSite,
    /// Why there.
    pub k_site_reason: SiteReason,
}
