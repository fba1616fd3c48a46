//! A policy's plan applied to its request: the plan checked, the one-answer-per-device rule applied when
//! it is on ([`super::busy`]), the caches looked up and the first events of its mode scheduled (the
//! per-mode rules are the [`super`] module doc's).

use super::busy::Gate;
use super::jitter::prompt_time;
use super::{spec, Ev, Mode, Pd, Plan, Simulator, PRIO_CLOUD, PRIO_DEVICE};
use crate::buffer::TokenBuffer;
use crate::error::{CoreError, Result};
use crate::pacing::SpeedController;
use crate::time::Nanos;

/// What a device prefill prices, for errors.
pub(super) const PROMPT: &str = "the device's prefill of its prompt ([prefill] seconds)";

impl Simulator {
    /// The tokens request `i`'s plan asks of the cloud.
    pub(super) fn cloud_quota(&self, i: u32) -> u32 {
        let out = self.inp.output[i as usize];
        match self.reqs[i as usize].plan.map(|p| (p.mode, p.k)) {
            Some((Mode::Pd | Mode::Naive, k)) => k.saturating_add(1).min(out),
            Some((Mode::KvTransfer, _)) => 1,
            _ => out,
        }
    }

    /// Applies `plan` to the request returned by [`next_decision`](Self::next_decision).
    pub fn decide(&mut self, i: u32, plan: Plan) -> Result<()> {
        self.check_plan(i, plan)?;
        self.pending_decision = None;
        // a request with no capable device is the cloud's alone, whatever was planned ([`super::fleet`])
        let plan = if self.devices.capable(i) { plan } else { Plan::new(Mode::Cloud, 0, 1.0, plan.pace)? };
        let iu = i as usize;
        let t0 = self.inp.arrival[iu];
        let d = self.one_way[iu];
        // the one-answer rule may serve it from the cloud, or start its device-only plan later
        let gate = self.gate(i, plan)?;
        let plan = if let Gate::Now(p) = gate { p } else { plan };
        self.reqs[iu].plan = Some(plan);
        self.out.mode[iu] = plan.mode as u8;
        match gate {
            Gate::Now(_) if plan.mode == Mode::Device => return self.start_device(i, t0),
            Gate::Now(_) => {}
            Gate::At(start) => return self.start_device(i, start),
            Gate::Queued => return Ok(()),
        }
        // a refined prompt is not a prefix of the full one: it reuses nothing; the cloud alone uses no device
        let uses_device_cache = match plan.mode {
            Mode::Cloud | Mode::Device => false,
            Mode::Pd | Mode::Naive | Mode::Disco => plan.refine_ratio >= 1.0,
            Mode::Race | Mode::KvTransfer | Mode::Spec => true,
        };
        let cached =
            if uses_device_cache { self.device_cache.lookup(&self.inp.conv.turns, i, t0) } else { 0 };
        self.reqs[iu].device_cached = cached;
        self.lp.schedule(t0 + d, PRIO_CLOUD, Ev::CloudSubmit(i))?;
        self.reqs[iu].awaits_submit = true;
        self.out.bytes_up[iu] = f64::from(self.inp.prompt[iu]) * self.inp.wire.prompt_bytes_per_token;
        match plan.mode {
            Mode::Cloud | Mode::KvTransfer => {}
            Mode::Device => unreachable!("started above"),
            Mode::Race => {
                let p = prompt_time(self.devices.of(i), i, self.inp.prompt[iu], cached);
                let done = self.on_clock(i, t0 + p, PROMPT)?;
                self.lp.schedule(done, PRIO_DEVICE, Ev::PromptDone(i))?;
            }
            Mode::Spec => {
                let p = prompt_time(self.devices.of(i), i, self.inp.prompt[iu], cached);
                self.reqs[iu].device_prefill_tokens = self.inp.prompt[iu] - cached;
                self.reqs[iu].spec = Some(spec::SpecState::default());
                let done = self.on_clock(i, t0 + p, PROMPT)?;
                self.lp.schedule(done, PRIO_DEVICE, Ev::PromptDone(i))?;
            }
            Mode::Pd | Mode::Naive | Mode::Disco => self.start_split(i, plan, cached)?,
        }
        Ok(())
    }

    /// Starts request `i`'s device-only plan at `start` (its arrival, or when its busy device is free):
    /// the device prefills what its session cache lacks then, and decodes the answer.
    pub(super) fn start_device(&mut self, i: u32, start: Nanos) -> Result<()> {
        let iu = i as usize;
        let min_tpot = self.reqs[iu].plan.expect("planned").pace.min_tpot();
        let cached = self.device_cache.lookup(&self.inp.conv.turns, i, start);
        let req = &mut self.reqs[iu];
        req.device_cached = cached;
        req.device_wait = start - self.inp.arrival[iu];
        req.device_prefill_tokens = self.inp.prompt[iu] - cached;
        let p = prompt_time(self.devices.of(i), i, self.inp.prompt[iu], cached);
        let done = self.on_clock(i, start + p, PROMPT)?;
        self.finish_on_device(i, done, 0, min_tpot)
    }

    /// Refuses a plan for a request that is not waiting for one, draft settings off a `"spec"` plan, and a
    /// site the cloud does not offer.
    fn check_plan(&self, i: u32, plan: Plan) -> Result<()> {
        if self.pending_decision != Some(i) {
            return Err(CoreError::state(
                format!(
                    "decide: request {i} is not waiting for a plan (waiting: {:?})",
                    self.pending_decision
                ),
                "plan the request that next_decision() returned",
            ));
        }
        if (plan.mode == Mode::Spec) != plan.spec.is_some() {
            return Err(CoreError::invalid(
                "plan",
                format!(
                    "of request {i} has mode {:?} and draft settings {:?}",
                    Mode::NAMES[plan.mode as usize],
                    plan.spec
                ),
                "give gamma and alpha with mode \"spec\", and only with it",
            ));
        }
        if matches!(plan.mode, Mode::Pd | Mode::Naive | Mode::Disco) && !self.cloud.offers(plan.k_site) {
            return Err(CoreError::invalid(
                "k_site",
                format!(
                    "of request {i}'s plan is {:?} but the cloud's k_sites is {:?}",
                    plan.k_site.name(),
                    self.cloud.k_sites().name()
                ),
                "plan a site the cloud offers, or offer it (k_sites = \"both\")",
            ));
        }
        Ok(())
    }

    /// Starts a split (P/D-Device, the naive split, DiSCo): the token buffer, the speed controller (not in
    /// the naive split) and the device's prefill of the full prompt; a refined one starts when it arrives.
    fn start_split(&mut self, i: u32, plan: Plan, cached: u32) -> Result<()> {
        let iu = i as usize;
        let t0 = self.inp.arrival[iu];
        let quota = self.cloud_quota(i);
        let prompt_len = ((f64::from(self.inp.prompt[iu]) * plan.refine_ratio).ceil() as u32).max(1);
        let ctrl =
            (plan.mode != Mode::Naive).then(|| SpeedController::new(plan.pace, Some(u64::from(quota)), None));
        let mut pd = Box::new(Pd {
            buf: TokenBuffer::new(Some(quota)),
            ctrl,
            prompt_len,
            cloud_quota: 0,
            display_gen: 0,
            display_at: None,
            device_stopped: false,
            device_free_at: None,
            in_flight: 0,
            first_arrival: None,
            last_arrival: Nanos::ZERO,
            handoff_terms: None,
        });
        if plan.refine_ratio >= 1.0 {
            let done =
                self.on_clock(i, t0 + prompt_time(self.devices.of(i), i, prompt_len, cached), PROMPT)?;
            pd.device_free_at = Some(done);
            self.lp.schedule(done, PRIO_DEVICE, Ev::PromptDone(i))?;
        }
        self.reqs[iu].pd = Some(pd);
        self.revise_handoff(i);
        Ok(())
    }
}
