//! The one planner of a turn, simulated and live: the optimizer's choice reduced to who serves it.
//!
//! [`plan_turn`] asks the optimizer ([`super::optimizer`]) for its choice and reduces it to a plan both the
//! simulator's built-in policies and the live runtime's session run:
//! - the device alone when the optimizer says so (its own first token comes first, or the weights on cost
//!   and energy prefer it);
//! - the cloud alone when the weights prefer it, or, for a turn with an answer cap (`max_tokens`, the live
//!   runtime's), when the device cannot catch up within the answer: no fixed point, or `k + 1` reaching
//!   the cap (ours: a split that hands off at the answer's end only costs the device's prefill);
//! - otherwise the split, with the catch-up's `k` (padded by `k_margin`, the live runtime's allowance for
//!   a real engine's appended-token price), its refinement ratio and site, `k` cut to the cloud's context
//!   room when one is given.
//!
//! A turn brings what it knows: its prompt, what the device's session cache and the cloud's prefix cache
//! hold of it (a follow-up), the expected arrival of the cloud's first token (the simulator's from the
//! cost model, [`PlanOptimizer::first_token_cached_s`]; the live runtime's given or learned), and the
//! cloud's decode pace when it is measured (else the cost model's at each offered site). The simulator
//! gives no cap ([`Turn::simulated`]), so its plans are the optimizer's choices exactly.

use super::choice::Cached;
use super::cloud::CloudCost;
use super::device::DeviceCost;
use super::ksite::{KSite, SiteReason};
use super::optimizer::PlanOptimizer;
use crate::error::{CoreError, Result};

/// Who serves a planned turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Serve {
    /// The device alone: the cloud is not asked.
    Device = 0,
    /// The cloud alone: the device does not prefill.
    Cloud = 1,
    /// The cloud's first `k + 1` tokens, then the device.
    Split = 2,
}

impl Serve {
    /// The names used at the Python boundary, indexed by discriminant.
    pub const NAMES: [&'static str; 3] = ["device", "cloud", "split"];

    /// The name at the Python boundary.
    #[must_use]
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// Why the planner chose who serves a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PlanReason {
    /// The split with the catch-up's `k`.
    CatchUp = 0,
    /// The device's own first token comes no later than the cloud's: the device alone.
    DeviceFirst = 1,
    /// The device has no catch-up fixed point within the cap on `k`: the cloud alone.
    NoFixedPoint = 2,
    /// The catch-up's `k + 1` reaches the answer's cap: the cloud alone.
    AnswerCap = 3,
    /// The optimizer's weights on cost and energy prefer one side ([`super::tradeoff`]).
    Weighed = 4,
}

impl PlanReason {
    /// The names used at the Python boundary, indexed by discriminant.
    pub const NAMES: [&'static str; 5] =
        ["catch-up", "device-first", "no-fixed-point", "answer-cap", "weighed"];

    /// The name at the Python boundary.
    #[must_use]
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// What a turn brings to the planner (module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Turn {
    /// The prompt, tokens (at least 1).
    pub prompt: u32,
    /// Leading prompt tokens the device's and the cloud's caches hold.
    pub cached: Cached,
    /// Expected arrival of the cloud's first token, seconds from the turn's start.
    pub first_token_s: f64,
    /// The cloud's time between streamed tokens when measured; `None`: the cost model's at each site.
    pub cloud_tpot_s: Option<f64>,
    /// The cloud's queued prefill tokens when known (the simulator's; prices the sites when both are
    /// offered).
    pub waiting_prefill_tokens: Option<f64>,
    /// The answer's cap in output positions; `None`: no cap, no reduction to the cloud by the catch-up.
    pub max_tokens: Option<u32>,
    /// Tokens the cloud's context window leaves after the prompt (negative: none); `None`: unknown.
    pub context_room: Option<i64>,
    /// The split asks for `ceil(k * (1 + k_margin))` tokens after the first; 0 keeps `k`.
    pub k_margin: f64,
    /// Reduce to one side (false: always the split, for measuring the split itself).
    pub reduce: bool,
}

impl Turn {
    /// A simulated request's turn: no cap, no margin, reduced.
    #[must_use]
    pub fn simulated(
        prompt: u32,
        cached: Cached,
        first_token_s: f64,
        waiting_prefill_tokens: Option<f64>,
    ) -> Self {
        Self {
            prompt,
            cached,
            first_token_s,
            cloud_tpot_s: None,
            waiting_prefill_tokens,
            max_tokens: None,
            context_room: None,
            k_margin: 0.0,
            reduce: true,
        }
    }

    fn validate(&self) -> Result<()> {
        if !(self.k_margin.is_finite() && self.k_margin >= 0.0) {
            return Err(CoreError::invalid(
                "k_margin",
                format!("is {}", self.k_margin),
                "pass a fraction >= 0, e.g. 0.2",
            ));
        }
        if self.max_tokens == Some(0) {
            return Err(CoreError::invalid("max_tokens", "is 0", "pass a whole number, at least 1"));
        }
        Ok(())
    }

    /// `k` cut to the cloud's context room: the request's `k + 1` tokens must fit it.
    fn fit_room(&self, k: u32) -> u32 {
        match self.context_room {
            Some(room) if i64::from(k) + 1 > room => u32::try_from((room - 1).max(0)).unwrap_or(0),
            _ => k,
        }
    }

    /// The `k` of a turn the cloud serves alone: the whole answer (after its first token), within the
    /// context room; 0 without a cap.
    fn cloud_k(&self) -> u32 {
        let Some(cap) = self.max_tokens else { return 0 };
        let fits = self.context_room.map_or(i64::from(cap), |room| room.min(i64::from(cap)));
        u32::try_from((fits - 1).max(0)).unwrap_or(0)
    }

    /// The split's `k`: the catch-up's, padded by the margin.
    fn padded(&self, k: u32) -> u32 {
        if self.k_margin > 0.0 {
            (f64::from(k) * (1.0 + self.k_margin)).ceil() as u32
        } else {
            k
        }
    }
}

/// The plan of a turn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TurnPlan {
    /// Who serves it.
    pub serve: Serve,
    /// Cloud tokens after the first: the split's, the cloud's whole answer, or 0 for the device.
    pub k: u32,
    /// The kept fraction of the prompt the device prefills (1 unless the split refines).
    pub refine_ratio: f64,
    /// Where the split's `k` tokens are decoded.
    pub k_site: KSite,
    /// Why there.
    pub k_site_reason: SiteReason,
    /// Why this side.
    pub reason: PlanReason,
    /// The split's `k` as the catch-up asked for it (padded, before any reduction or context cut).
    pub wanted_k: u32,
    /// Expected time of the device's own first token, seconds from the turn's start.
    pub device_ready_s: f64,
    /// Expected arrival of the cloud's first token, seconds from the turn's start.
    pub first_token_s: f64,
    /// False when the catch-up has no fixed point within the cap on `k`.
    pub converged: bool,
}

/// Plans one turn with `optimizer` (module doc).
pub fn plan_turn(optimizer: &PlanOptimizer, turn: &Turn) -> Result<TurnPlan> {
    turn.validate()?;
    let own = optimizer.own_choice(
        turn.prompt,
        turn.cached.device,
        turn.first_token_s,
        turn.cloud_tpot_s,
        turn.waiting_prefill_tokens,
    )?;
    let chosen = optimizer.weigh(turn.prompt, turn.cached, own);
    let wanted_k = turn.padded(chosen.k);
    let plan = |serve, k, reason| TurnPlan {
        serve,
        k,
        refine_ratio: chosen.refine_ratio,
        k_site: chosen.k_site,
        k_site_reason: chosen.k_site_reason,
        reason,
        wanted_k,
        device_ready_s: chosen.device_ready_s,
        first_token_s: chosen.first_token_s,
        converged: chosen.converged,
    };
    if !turn.reduce {
        return Ok(plan(Serve::Split, turn.fit_room(wanted_k), PlanReason::CatchUp));
    }
    if chosen.device_alone {
        let why = if own.device_alone { PlanReason::DeviceFirst } else { PlanReason::Weighed };
        return Ok(plan(Serve::Device, 0, why));
    }
    if chosen.cloud_alone {
        return Ok(plan(Serve::Cloud, turn.cloud_k(), PlanReason::Weighed));
    }
    if let Some(cap) = turn.max_tokens {
        if !chosen.converged || u64::from(wanted_k) + 1 >= u64::from(cap) {
            let why = if chosen.converged { PlanReason::AnswerCap } else { PlanReason::NoFixedPoint };
            return Ok(plan(Serve::Cloud, turn.cloud_k(), why));
        }
    }
    Ok(plan(Serve::Split, turn.fit_room(wanted_k), PlanReason::CatchUp))
}

/// The cloud of a planner that is told its first token and its pace ([`live_optimizer`]): never priced,
/// its coefficients only make a valid [`CloudCost`].
const TOLD_CLOUD: CloudCost = CloudCost {
    base_s: 1.0,
    prefill_token_s: 0.0,
    prefill_attn_s: 0.0,
    decode_seq_s: 0.0,
    decode_context_s: 0.0,
    prefill_knee_token_s: 0.0,
    prefill_knee_tokens: 0,
    max_tokens_per_iteration: 1,
};

/// The optimizer of a live turn: the device's prices, the largest display gap, no refinement, the decode
/// pool, no weights, `k` capped at `max_k`. The live runtime knows its cloud by what it measures (the
/// first token's arrival and the pace, both in its [`Turn`]), not by a cost model, so the optimizer's
/// cloud is never priced.
pub fn live_optimizer(device: DeviceCost, max_tpot_s: f64, max_k: u32) -> Result<PlanOptimizer> {
    PlanOptimizer::new(device, TOLD_CLOUD, max_tpot_s, &[], false, 1, max_k)
}

#[cfg(test)]
#[path = "planner_tests.rs"]
mod tests;
