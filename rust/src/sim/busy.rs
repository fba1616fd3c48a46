//! One answer at a time per device: the live runtime's rule for a device that is busy, in the simulator.
//!
//! Off by default (every device then serves its requests side by side, as the simulator always has: one
//! request is one user); [`Simulator::set_one_answer_per_device`] turns it on with its [`WhenBusy`]. Under
//! it a device serves one answer at a time, as the live runtime's device does
//! (`pdcore.runtime.device_gate`, whose reasons are `pdcore.runtime.planning`'s `BUSY_CLOUD` and
//! `BUSY_WAIT`). Requests share a device when their
//! conversation columns give them one (a session's turns; single-turn requests each have their own).
//!
//! - A request *holds* its device from its arrival, when its plan puts work on the device, until that work
//!   ends: its last decode step ([`Simulator::finish_on_device`]: a device-only answer, a P/D-Device
//!   take-over, a race the device won, a kv-transfer), the moment the cloud delivered the whole answer of a
//!   split (the device stops), the end of the device's prefill in a race the cloud won, the last verified
//!   round of a speculative answer. Not until its last token is shown: the next answer gets the device as
//!   soon as it is free. A cloud-only plan never holds it.
//! - A request whose device is held by an earlier request (or promised to one that waits) when it arrives
//!   finds it *busy*. Its plan is then served by the cloud for the whole answer and the device does
//!   nothing for it ([`DeviceBusy::Cloud`]): waiting would add the other answer's remaining time to its
//!   first token, which the cloud's own first token beats (the live P/D-Device session's rule and reason).
//!   Under [`WhenBusy::Wait`], the rule of a run without a cloud (the device-only policy, as the live
//!   device-only session), a device-only plan instead waits for the device, first come first served: its
//!   device work starts when the device is free ([`DeviceBusy::Waited`]; its TTFT counts the wait, and its
//!   session cache is looked up then, so it reuses what the answer before it left); a plan that asks the
//!   cloud is still served by the cloud.
//!
//! Which of the two applies is the run's (the live session decides by its mode, before planning): a policy
//! that can ask the cloud gets [`WhenBusy::Cloud`] for all its plans, device-alone ones included.

use std::collections::{HashMap, VecDeque};

use super::{Mode, Plan, Simulator};
use crate::error::{CoreError, Result};
use crate::time::Nanos;

/// What the one-answer rule did to a request (the `device_busy` result's codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum DeviceBusy {
    /// Its device was free, its plan left the device alone, or the rule is off.
    #[default]
    Free = 0,
    /// Its device was busy: the cloud served the whole answer instead of its plan (its `mode` result is
    /// the cloud's).
    Cloud = 1,
    /// Its device was busy: its device-only plan waited for it.
    Waited = 2,
}

impl DeviceBusy {
    /// The names used at the Python boundary, indexed by code.
    pub const NAMES: [&'static str; 3] = ["free", "cloud", "waited"];
}

/// What a request that finds its device busy gets (module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenBusy {
    /// The cloud serves the whole answer.
    Cloud,
    /// A device-only plan waits for the device; any other plan is served by the cloud.
    Wait,
}

impl WhenBusy {
    /// The names used at the Python boundary.
    pub const NAMES: [&'static str; 2] = ["cloud", "wait"];

    /// The rule named `name` ([`NAMES`](Self::NAMES)).
    ///
    /// # Errors
    /// An unknown name.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "cloud" => Ok(Self::Cloud),
            "wait" => Ok(Self::Wait),
            _ => Err(CoreError::invalid(
                "when_device_busy",
                format!("is {name:?}"),
                "use \"cloud\" (a run with a cloud) or \"wait\" (a device-only run), or None for no rule",
            )),
        }
    }
}

/// One device under the rule.
#[derive(Debug, Default)]
struct Hold {
    /// The request whose device work is under way with no known end.
    holder: Option<u32>,
    /// When the device work planned so far with a known end ends.
    free_at: Nanos,
    /// Device-only requests waiting for the holder, in order of arrival.
    waiting: VecDeque<u32>,
}

/// Every device's holder and waiters (module doc); empty and unused while the rule is off.
#[derive(Debug, Default)]
pub(super) struct DeviceHolds {
    rule: Option<WhenBusy>,
    devices: HashMap<u32, Hold>,
}

/// What the rule makes of a request's plan.
pub(super) enum Gate {
    /// Serve this plan now.
    Now(Plan),
    /// Start its device-only plan at this time.
    At(Nanos),
    /// It waits for the device's holder.
    Queued,
}

impl Simulator {
    /// Sets the one-answer-per-device rule (module doc; `None`, the default: devices serve their requests
    /// side by side); call before the first decision.
    ///
    /// # Errors
    /// A request has been planned already.
    pub fn set_one_answer_per_device(&mut self, rule: Option<WhenBusy>) -> Result<()> {
        if self.reqs.arrived() > 0 || self.pending_decision.is_some() {
            return Err(CoreError::state(
                "one_answer_per_device: the run has started",
                "set it on a new Simulator, before its first decision",
            ));
        }
        self.holds.rule = rule;
        Ok(())
    }

    /// The one-answer-per-device rule, if any (module doc).
    #[must_use]
    pub fn one_answer_per_device(&self) -> Option<WhenBusy> {
        self.holds.rule
    }

    /// Applies the rule to request `i`'s `plan` at its arrival (module doc).
    pub(super) fn gate(&mut self, i: u32, plan: Plan) -> Result<Gate> {
        let Some(rule) = self.holds.rule.filter(|_| plan.mode != Mode::Cloud) else {
            return Ok(Gate::Now(plan));
        };
        let iu = i as usize;
        let t0 = self.inp.arrival[iu];
        let hold = self.holds.devices.entry(self.inp.conv.turns[iu].device).or_default();
        let busy = hold.holder.is_some() || !hold.waiting.is_empty() || hold.free_at > t0;
        if !busy {
            if plan.mode != Mode::Device {
                hold.holder = Some(i);
            }
            return Ok(Gate::Now(plan));
        }
        if plan.mode != Mode::Device || rule == WhenBusy::Cloud {
            self.reqs[iu].busy = DeviceBusy::Cloud;
            return Ok(Gate::Now(Plan::new(Mode::Cloud, 0, 1.0, plan.pace)?));
        }
        self.reqs[iu].busy = DeviceBusy::Waited;
        if hold.holder.is_some() {
            hold.waiting.push_back(i);
            return Ok(Gate::Queued);
        }
        Ok(Gate::At(hold.free_at))
    }

    /// Request `i`'s device work ends at `at`: the device is free from then on (if `i` held it, the
    /// requests waiting for it start, in order).
    pub(super) fn device_done(&mut self, i: u32, at: Nanos) -> Result<()> {
        if self.holds.rule.is_none() {
            return Ok(());
        }
        let device = self.inp.conv.turns[i as usize].device;
        let hold = self.holds.devices.entry(device).or_default();
        hold.free_at = hold.free_at.max(at);
        if hold.holder != Some(i) {
            return Ok(());
        }
        hold.holder = None;
        while let Some(j) = self.holds.devices.get_mut(&device).and_then(|h| h.waiting.pop_front()) {
            let free_at = self.holds.devices[&device].free_at;
            let start = free_at.max(self.inp.arrival[j as usize]);
            // its device work ends at a known time: `device_done(j, ..)` moves `free_at` past it
            self.start_device(j, start)?;
        }
        Ok(())
    }
}
