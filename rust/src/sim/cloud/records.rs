//! The cloud's records of the requests it is serving: created when a request reaches the cloud, moved to
//! [`CloudReqs::left`] when it leaves for good, so a run holds a record only for the requests in the
//! cloud, not for every request of the workload (a million-request run held about 120 MB of them).
//!
//! Our rule: a request leaves the cloud when it is in no replica's queue and no event can bring it back:
//! its last token emitted (and its cache not on its way to the pool), or, cancelled, dropped from its
//! replica or its cache landed. What reaches it later (a late cancellation, the cache of a request a
//! prefill instance finished while bridging it) finds no record and changes nothing, as it changed
//! nothing on a finished record. The owner writes a leaving request's figures to its results and drops
//! the record ([`CloudReqs::drain_left`]).

use std::ops::{Index, IndexMut};

use super::CloudReq;

/// The records, by request index (one pointer per request of the workload), and those that left; and,
/// by request index too (one byte each), whether a speculative request is waiting for its drafts, which
/// a replica's batch reads for every running sequence without reaching its record (ours, for speed).
#[derive(Debug, Default)]
pub struct CloudReqs {
    slots: Vec<Option<Box<CloudReq>>>,
    left: Vec<(u32, Box<CloudReq>)>,
    awaits_drafts: Vec<bool>,
}

impl CloudReqs {
    /// Room for `n` requests, none in the cloud.
    pub(super) fn new(n: usize) -> Self {
        Self { slots: (0..n).map(|_| None).collect(), left: Vec::new(), awaits_drafts: vec![false; n] }
    }

    /// Request `req` reaches the cloud with `record` (a speculative one waiting for its first drafts).
    pub(super) fn insert(&mut self, req: u32, record: CloudReq) {
        self.awaits_drafts[req as usize] = record.spec.is_some();
        self.slots[req as usize] = Some(Box::new(record));
    }

    /// Whether speculative request `req` is waiting for drafts (false for any other request).
    #[inline]
    pub(super) fn awaits_drafts(&self, req: u32) -> bool {
        self.awaits_drafts[req as usize]
    }

    /// Speculative request `req` now waits for drafts (`true`: its round was verified) or has them.
    #[inline]
    pub(super) fn set_awaits_drafts(&mut self, req: u32, waits: bool) {
        self.awaits_drafts[req as usize] = waits;
    }

    /// Request `req`'s record, if it is in the cloud.
    #[must_use]
    pub fn get(&self, req: u32) -> Option<&CloudReq> {
        self.slots[req as usize].as_deref()
    }

    /// See [`get`](Self::get).
    pub(super) fn get_mut(&mut self, req: u32) -> Option<&mut CloudReq> {
        self.slots[req as usize].as_deref_mut()
    }

    /// Request `req` leaves the cloud (module doc).
    pub(super) fn leave(&mut self, req: u32) {
        if let Some(record) = self.slots[req as usize].take() {
            self.left.push((req, record));
        }
    }

    /// The requests that left since the last call, each with its record, handed to `write` and dropped.
    pub fn drain_left(&mut self, mut write: impl FnMut(u32, &CloudReq)) {
        for (req, record) in self.left.drain(..) {
            write(req, &record);
        }
    }

    /// Whether some request left since the last [`drain_left`](Self::drain_left).
    #[must_use]
    #[inline]
    pub fn any_left(&self) -> bool {
        !self.left.is_empty()
    }

    /// The records not yet drained: those of the requests in the cloud, then those that left.
    pub fn undrained(&self) -> impl Iterator<Item = (u32, &CloudReq)> {
        let in_cloud = self.slots.iter().enumerate().filter_map(|(i, s)| s.as_deref().map(|c| (i as u32, c)));
        in_cloud.chain(self.left.iter().map(|(i, c)| (*i, &**c)))
    }

    /// Request `req`'s record, in the cloud or left and not yet drained (tests).
    #[must_use]
    pub fn record(&self, req: u32) -> Option<&CloudReq> {
        self.get(req).or_else(|| self.left.iter().find(|(i, _)| *i == req).map(|(_, c)| &**c))
    }
}

impl Index<usize> for CloudReqs {
    type Output = CloudReq;
    #[inline]
    fn index(&self, i: usize) -> &CloudReq {
        self.slots[i].as_deref().expect("a request in the cloud")
    }
}

impl IndexMut<usize> for CloudReqs {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut CloudReq {
        self.slots[i].as_deref_mut().expect("a request in the cloud")
    }
}
