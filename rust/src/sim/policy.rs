//! The built-in policies, planned inside the simulator.
//!
//! A [`NativePolicy`] plans every request without leaving Rust, so a run needs no call into Python per
//! request. It gives exactly the plans the Python policies of the same settings give (both ask the one
//! optimizer, [`crate::cost::optimizer`], with the same inputs: the request's prompt, the tokens it finds
//! cached on the device and in the cloud, its one-way delay and the cloud's queued prefill tokens at the
//! arrival). [`NativePolicy::Auto`] reduces the optimizer's choice with the planner the live runtime's
//! session uses ([`crate::cost::planner`]), with no answer cap; custom Python policies still plan through the
//! decision loop ([`Simulator::next_decision`] and [`Simulator::decide`]).

use super::plan::{Mode, Plan};
use super::Simulator;
use crate::cost::planner::{plan_turn, Serve, Turn};
use crate::cost::{PlanOptimizer, RouterRule};
use crate::error::{CoreError, Result};
use crate::pacing::PaceConfig;

/// A built-in policy's rule.
#[derive(Debug, Clone)]
pub enum NativePolicy {
    /// Every request gets the same plan (cloud-only, device-only, kv-transfer, race, a fixed-`k` split).
    Fixed(Plan),
    /// P/D-Device or the naive split with the optimizer's `k` and refinement per request; the device
    /// alone when it answers first; the device or the cloud alone when the optimizer's weights on cost
    /// and energy prefer it.
    Auto {
        /// `Pd` or `Naive`.
        mode: Mode,
        /// The display pacing bounds of every plan.
        pace: PaceConfig,
        /// The optimizer.
        optimizer: Box<PlanOptimizer>,
    },
    /// One plan for requests whose device prefill covers at most `threshold` tokens (the prompt less
    /// what the device's session cache holds), another for the rest (DiSCo's length-threshold dispatch).
    ByPrompt {
        /// The most tokens to prefill that get `short`.
        threshold: u32,
        /// The plan of a prompt of at most `threshold` tokens.
        short: Plan,
        /// The plan of a longer prompt.
        long: Plan,
    },
    /// The whole-request router: the device alone when [`RouterRule::on_device`] says so, else the cloud.
    Router {
        /// The rule.
        rule: RouterRule,
        /// The display pacing bounds of every plan.
        pace: PaceConfig,
    },
}

impl NativePolicy {
    /// An automatic split policy; `mode` must be `Pd` or `Naive`.
    pub fn auto(mode: Mode, pace: PaceConfig, optimizer: PlanOptimizer) -> Result<Self> {
        if !matches!(mode, Mode::Pd | Mode::Naive) {
            return Err(CoreError::invalid(
                "mode",
                format!("is {:?}", Mode::NAMES[mode as usize]),
                "an automatic k needs mode \"pd\" or \"naive\"",
            ));
        }
        Ok(Self::Auto { mode, pace, optimizer: Box::new(optimizer) })
    }

    /// The display pacing bounds of its plans (the short plan's, by prompt).
    #[must_use]
    pub fn pace(&self) -> PaceConfig {
        match self {
            Self::Fixed(plan) | Self::ByPrompt { short: plan, .. } => plan.pace,
            Self::Auto { pace, .. } | Self::Router { pace, .. } => *pace,
        }
    }

    /// The plan of request `i`, which is waiting for one in `sim`.
    pub fn plan(&self, sim: &mut Simulator, i: u32) -> Result<Plan> {
        match self {
            Self::Fixed(plan) => Ok(*plan),
            Self::Auto { mode, pace, optimizer } => {
                let iu = i as usize;
                let (prompt, one_way_s) = (sim.inp.prompt[iu], sim.inp.one_way_s[iu]);
                let waiting = Some(sim.cloud_load().waiting_prefill_tokens);
                let cached = sim.cached(i);
                let first = optimizer.first_token_cached_s(prompt, cached.cloud, one_way_s, waiting);
                let p = plan_turn(optimizer, &Turn::simulated(prompt, cached, first, waiting))?;
                match p.serve {
                    Serve::Device => Plan::new(Mode::Device, 0, 1.0, *pace),
                    Serve::Cloud => Plan::new(Mode::Cloud, 0, 1.0, *pace),
                    Serve::Split => Ok(Plan::new(*mode, p.k, p.refine_ratio, *pace)?.at_site(p.k_site)),
                }
            }
            Self::ByPrompt { threshold, short, long } => {
                let uncached = sim.inp.prompt[i as usize] - sim.cached(i).device;
                Ok(if uncached <= *threshold { *short } else { *long })
            }
            Self::Router { rule, pace } => {
                let cached = sim.cached(i).device;
                let mode = if rule.on_device(sim.devices.of(i), sim.inp.prompt[i as usize], cached) {
                    Mode::Device
                } else {
                    Mode::Cloud
                };
                Plan::new(mode, 0, 1.0, *pace)
            }
        }
    }
}

impl Simulator {
    /// Runs every remaining request under `policy` to the end (with a fleet, the one policy plans every
    /// class: see [`run_policies`](Self::run_policies)).
    pub fn run_policy(&mut self, policy: &NativePolicy) -> Result<()> {
        self.run_policies(std::slice::from_ref(policy))
    }

    /// Runs every remaining request to the end, each planned by its device class's policy
    /// (`policies[class]`, [`super::fleet`]; one policy plans every class). A request with no capable
    /// device is not planned: the cloud serves it ([`Simulator::decide`]).
    ///
    /// # Errors
    /// Neither one policy nor one per class, or what planning and the run raise.
    pub fn run_policies(&mut self, policies: &[NativePolicy]) -> Result<()> {
        let classes = self.devices.classes();
        if policies.is_empty() || (policies.len() != 1 && policies.len() != classes) {
            return Err(CoreError::invalid(
                "policies",
                format!("has {} policies for {classes} device classes", policies.len()),
                "pass one policy, or one per device class in the fleet's order",
            ));
        }
        while let Some(i) = self.next_decision()? {
            let c = self.devices.class_of(i);
            let policy = &policies[if policies.len() == 1 { 0 } else { c }];
            let plan = if self.devices.class_capable(c) {
                policy.plan(&mut *self, i)?
            } else {
                Plan::new(Mode::Cloud, 0, 1.0, policy.pace())?
            };
            self.decide(i, plan)?;
        }
        Ok(())
    }
}
