//! A fleet: each request's own device and downlink, by its device class.
//!
//! Without a fleet every request runs on the one device the simulator was built with, over the one
//! downlink of its [`super::Inputs`] (class 0 of a one-class list, so the lookups are the same vector
//! index either way and a run without a fleet is the run it always was). [`Simulator::set_fleet`] gives
//! the run a list of classes and each request its class index; from then on every device step, every
//! kv-transfer download and every built-in policy's plan uses the request's own class
//! ([`Devices::of`], [`Devices::bandwidth_of`]), and its network delay is already its own
//! (`Inputs::one_way_s`).
//!
//! A class with no capable device ([`FleetClass::device`] `None`) is served by the cloud alone whatever
//! the policy plans (ours: such a client cannot run the model, so no plan may put work on it): its
//! requests' plans become cloud-only plans at [`Simulator::decide`], after the plan is checked, and a
//! built-in policy does not plan them at all. Its slot in the device list holds the run's own device,
//! never used.
//!
//! Hot path: a lookup is one bounds-checked index into a `Vec`; nothing is allocated per event. A
//! device's decode steps are kept by context ([`Devices::steps_to`], ours, for speed): a device answer
//! reads each step from there instead of walking the curve per token, the same values.

use super::Simulator;
use crate::cost::DeviceCost;
use crate::error::{CoreError, Result};
use crate::time::Nanos;

/// Contexts whose decode step a class keeps (2 MiB each at most); a step past them is walked.
pub(super) const STEPS_KEPT: usize = 1 << 18;

/// One device class of a fleet.
#[derive(Debug, Clone)]
pub struct FleetClass {
    /// Its device, or `None`: no capable device (module doc).
    pub device: Option<DeviceCost>,
    /// Its downlink bandwidth, bytes/s (finite, > 0).
    pub bandwidth_bytes_per_s: f64,
}

/// The devices of a run: one per class, and each request's class (module doc).
#[derive(Debug)]
pub(super) struct Devices {
    /// By class; an incapable class holds the run's device, unused.
    all: Vec<DeviceCost>,
    /// By class: downlink bandwidth, bytes/s.
    bandwidth: Vec<f64>,
    /// By class: whether it has a capable device.
    capable: Vec<bool>,
    /// By request (empty: every request is class 0).
    class_of: Vec<u16>,
    /// By class: [`DeviceCost::tpot`] at contexts 0, 1, ..., filled on demand ([`Devices::steps_to`]).
    steps: Vec<Vec<Nanos>>,
}

impl Devices {
    /// One class: the run's device and downlink, for every request.
    pub(super) fn single(device: DeviceCost, bandwidth_bytes_per_s: f64) -> Self {
        Self {
            all: vec![device],
            bandwidth: vec![bandwidth_bytes_per_s],
            capable: vec![true],
            class_of: Vec::new(),
            steps: vec![Vec::new()],
        }
    }

    /// Request `i`'s device and its decode steps ([`DeviceCost::tpot`]) by context from 0 to `end`
    /// (exclusive), at most [`STEPS_KEPT`] of them.
    pub(super) fn steps_to(&mut self, i: u32, end: u64) -> (&DeviceCost, &[Nanos]) {
        let c = self.class_of(i);
        let end = usize::try_from(end).unwrap_or(usize::MAX).min(STEPS_KEPT);
        let (device, steps) = (&self.all[c], &mut self.steps[c]);
        if steps.len() < end {
            let start = steps.len();
            steps.extend(device.tpot_steps(start as u64).take(end - start));
        }
        (device, steps)
    }

    /// Request `i`'s class index.
    #[inline]
    pub(super) fn class_of(&self, i: u32) -> usize {
        if self.class_of.is_empty() {
            0
        } else {
            usize::from(self.class_of[i as usize])
        }
    }

    /// Request `i`'s device.
    #[inline]
    pub(super) fn of(&self, i: u32) -> &DeviceCost {
        &self.all[self.class_of(i)]
    }

    /// Request `i`'s downlink bandwidth, bytes/s.
    #[inline]
    pub(super) fn bandwidth_of(&self, i: u32) -> f64 {
        self.bandwidth[self.class_of(i)]
    }

    /// Whether request `i` has a capable device.
    #[inline]
    pub(super) fn capable(&self, i: u32) -> bool {
        self.capable[self.class_of(i)]
    }

    /// The number of classes (1 without a fleet).
    pub(super) fn classes(&self) -> usize {
        self.all.len()
    }

    /// Whether class `c` has a capable device.
    pub(super) fn class_capable(&self, c: usize) -> bool {
        self.capable[c]
    }
}

impl Simulator {
    /// Gives the run a fleet (module doc): `classes` and each request's class index in `class_of`; call
    /// before the first decision.
    ///
    /// # Errors
    /// The run has started, no class or more than 65,536, a bandwidth that is not finite and > 0, a
    /// `class_of` whose length is not the number of requests, or a class index out of range.
    pub fn set_fleet(&mut self, classes: Vec<FleetClass>, class_of: &[u32]) -> Result<()> {
        if self.reqs.arrived() > 0 || self.pending_decision.is_some() {
            return Err(CoreError::state(
                "fleet: the run has started",
                "set it on a new Simulator, before its first decision",
            ));
        }
        if classes.is_empty() || classes.len() > usize::from(u16::MAX) + 1 {
            return Err(CoreError::invalid(
                "fleet",
                format!("has {} classes", classes.len()),
                "give 1 to 65,536 device classes",
            ));
        }
        for (c, class) in classes.iter().enumerate() {
            let b = class.bandwidth_bytes_per_s;
            if !(b.is_finite() && b > 0.0) {
                return Err(CoreError::invalid_at(
                    "fleet_bandwidth_bps",
                    c,
                    format!("gives {b} bytes/s"),
                    "give each class a finite bandwidth > 0",
                ));
            }
        }
        if class_of.len() != self.reqs.len() {
            return Err(CoreError::invalid(
                "device_class",
                format!("has {} entries for {} requests", class_of.len(), self.reqs.len()),
                "pass one class index per request",
            ));
        }
        if let Some(i) = class_of.iter().position(|&c| c as usize >= classes.len()) {
            return Err(CoreError::invalid_at(
                "device_class",
                i,
                format!("= {} but the fleet has {} classes", class_of[i], classes.len()),
                "pass class indices below the number of classes",
            ));
        }
        let run_device = self.devices.all[0].clone();
        let capable: Vec<bool> = classes.iter().map(|c| c.device.is_some()).collect();
        let bandwidth = classes.iter().map(|c| c.bandwidth_bytes_per_s).collect();
        let all = classes.into_iter().map(|c| c.device.unwrap_or_else(|| run_device.clone())).collect();
        // every index is below the class count, itself at most 65,536: each fits a u16
        let class_of = class_of.iter().map(|&c| c as u16).collect();
        let steps = vec![Vec::new(); capable.len()];
        self.devices = Devices { all, bandwidth, capable, class_of, steps };
        Ok(())
    }

    /// The number of device classes (1 without a fleet).
    #[must_use]
    pub fn device_classes(&self) -> usize {
        self.devices.classes()
    }

    /// Request `i`'s device class (0 without a fleet).
    #[must_use]
    pub fn device_class(&self, i: u32) -> usize {
        self.devices.class_of(i)
    }

    /// Whether request `i` has a capable device (always, without a fleet).
    #[must_use]
    pub fn has_capable_device(&self, i: u32) -> bool {
        self.devices.capable(i)
    }
}
