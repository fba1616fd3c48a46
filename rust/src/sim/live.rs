//! The state of the requests in flight: created when a request arrives, dropped when it is retired (its
//! results written, [`super::results`]), so a run holds state only for the requests it is serving, not
//! for every request of the workload.
//!
//! Our rule: a request is retired when its device side is done (every token displayed) and the cloud
//! has heard of it (its `CloudSubmit` has run, for the plans that send one), the last event that reads
//! its plan. What reaches it later (cloud tokens still in flight, a race's losing prefill, a stale
//! display) reads only what the results already hold: its bytes, radio time and the cloud's first token
//! are written to the results as they happen, not kept here.

use std::ops::{Index, IndexMut};

use super::busy::DeviceBusy;
use super::metrics::DisplayMetrics;
use super::{spec, Plan};
use crate::buffer::TokenBuffer;
use crate::cost::handoff::HandoffTerms;
use crate::pacing::SpeedController;
use crate::time::Nanos;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RaceState {
    Open,
    Cloud,
    Device,
}

/// The split modes' device side (P/D-Device, the naive split, DiSCo).
#[derive(Debug)]
pub(super) struct Pd {
    pub(super) buf: TokenBuffer,
    pub(super) ctrl: Option<SpeedController>,
    pub(super) prompt_len: u32,
    /// The tokens the cloud has been asked for: 0 until the request reaches it.
    pub(super) cloud_quota: u32,
    pub(super) display_gen: u32,
    pub(super) display_at: Option<Nanos>,
    pub(super) device_stopped: bool,
    /// When the device's current prefill step ends (prompt or chunk); `None` before the prompt starts.
    pub(super) device_free_at: Option<Nanos>,
    /// Received tokens in the prefill step under way.
    pub(super) in_flight: u32,
    pub(super) first_arrival: Option<Nanos>,
    pub(super) last_arrival: Nanos,
    /// The hand-off estimate's terms fixed for its prompt and quota, priced at its first revision.
    pub(super) handoff_terms: Option<HandoffTerms>,
}

/// One request in flight.
#[derive(Debug)]
pub(super) struct Req {
    pub(super) plan: Option<Plan>,
    pub(super) metrics: DisplayMetrics,
    /// Every token displayed.
    pub(super) done: bool,
    /// Its `CloudSubmit` is scheduled and has not run yet (it reads the plan).
    pub(super) awaits_submit: bool,
    pub(super) race: RaceState,
    pub(super) pd: Option<Box<Pd>>,
    pub(super) spec: Option<spec::SpecState>,
    pub(super) last_cloud_display: Option<Nanos>,
    pub(super) first_device_display: Option<Nanos>,
    pub(super) handoff_pos: i64,
    pub(super) device_prefill_tokens: u32,
    pub(super) device_decode_tokens: u32,
    pub(super) cloud_kept: u32,
    /// Prompt tokens the device found in its session cache (what its prefill skipped).
    pub(super) device_cached: u32,
    /// What the one-answer-per-device rule did to it ([`super::busy`]).
    pub(super) busy: DeviceBusy,
    /// How long it waited for its device ([`super::busy`]).
    pub(super) device_wait: Nanos,
}

impl Default for Req {
    fn default() -> Self {
        Self {
            plan: None,
            metrics: DisplayMetrics::default(),
            done: false,
            awaits_submit: false,
            race: RaceState::Open,
            pd: None,
            spec: None,
            last_cloud_display: None,
            first_device_display: None,
            handoff_pos: -1,
            device_prefill_tokens: 0,
            device_decode_tokens: 0,
            cloud_kept: 0,
            device_cached: 0,
            busy: DeviceBusy::Free,
            device_wait: Nanos::ZERO,
        }
    }
}

/// The requests in flight, by request index (one pointer per request of the workload).
#[derive(Debug)]
pub(super) struct Reqs {
    slots: Vec<Option<Box<Req>>>,
    /// Requests that have arrived.
    arrived: usize,
}

impl Reqs {
    pub(super) fn new(n: usize) -> Self {
        Self { slots: (0..n).map(|_| None).collect(), arrived: 0 }
    }

    /// Requests in the workload.
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Requests that have arrived so far.
    pub(super) fn arrived(&self) -> usize {
        self.arrived
    }

    /// Request `i` arrives: its state starts.
    pub(super) fn arrive(&mut self, i: u32) {
        debug_assert!(self.slots[i as usize].is_none());
        self.slots[i as usize] = Some(Box::default());
        self.arrived += 1;
    }

    /// Request `i`'s state, if it is in flight.
    pub(super) fn get(&self, i: u32) -> Option<&Req> {
        self.slots[i as usize].as_deref()
    }

    /// See [`get`](Self::get).
    pub(super) fn get_mut(&mut self, i: u32) -> Option<&mut Req> {
        self.slots[i as usize].as_deref_mut()
    }

    /// Drops request `i`'s state, returning it.
    pub(super) fn retire(&mut self, i: u32) -> Box<Req> {
        self.slots[i as usize].take().expect("a request in flight")
    }
}

impl Index<usize> for Reqs {
    type Output = Req;
    #[inline]
    fn index(&self, i: usize) -> &Req {
        self.slots[i].as_deref().expect("a request in flight")
    }
}

impl IndexMut<usize> for Reqs {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut Req {
        self.slots[i].as_deref_mut().expect("a request in flight")
    }
}
