//! A deterministic discrete-event engine.
//!
//! Events are ordered by `(time, priority, seq)`: earlier time first, then lower priority value, then
//! insertion order. `seq` is owned by the loop instance, so equal times and priorities pop in the order
//! they were scheduled and two runs of the same program produce the same sequence (no global counters).
//! Time never goes backwards: scheduling before `now` is an error, and so is scheduling past the clock's
//! limit ([`Nanos::LIMIT`]).
//!
//! The loop is generic over the event payload. The simulator keeps token-level events in Rust and hands
//! control back to Python only at request-level decisions: it calls [`EventLoop::pop_until`] in a loop
//! and returns when an event needs a policy, much like SimPy's `peek`/`step`/`run(until=)`.
//! Cancellation is left to the owner (a stale event is one whose generation no longer matches), which
//! keeps the heap a plain binary heap.

use crate::error::{CoreError, Result};
use crate::time::{check_clock, Nanos};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// An event waiting in the queue.
#[derive(Debug, Clone)]
pub struct Scheduled<E> {
    /// When it fires.
    pub at: Nanos,
    /// Lower fires first among equal times.
    pub priority: i32,
    /// Insertion order, unique within one loop.
    pub seq: u64,
    /// The payload.
    pub event: E,
}

impl<E> Scheduled<E> {
    fn key(&self) -> (Nanos, i32, u64) {
        (self.at, self.priority, self.seq)
    }
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl<E> Eq for Scheduled<E> {}
impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Scheduled<E> {
    // BinaryHeap is a max-heap: reverse so the smallest key is on top.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key().cmp(&self.key())
    }
}

/// The event queue and the clock.
#[derive(Debug, Clone)]
pub struct EventLoop<E> {
    now: Nanos,
    seq: u64,
    processed: u64,
    heap: BinaryHeap<Scheduled<E>>,
}

impl<E> Default for EventLoop<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventLoop<E> {
    /// An empty loop at time zero.
    #[must_use]
    pub fn new() -> Self {
        Self { now: Nanos::ZERO, seq: 0, processed: 0, heap: BinaryHeap::new() }
    }

    /// An empty loop with room for `n` pending events.
    #[must_use]
    pub fn with_capacity(n: usize) -> Self {
        Self { heap: BinaryHeap::with_capacity(n), ..Self::new() }
    }

    /// The current time: that of the last event popped.
    #[must_use]
    pub fn now(&self) -> Nanos {
        self.now
    }

    /// Events popped so far.
    #[must_use]
    pub fn processed(&self) -> u64 {
        self.processed
    }

    /// Events waiting.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.heap.len()
    }

    /// Schedules `event` at `at`, from now to [`Nanos::LIMIT`] (the clock's range, [`crate::time`]);
    /// returns its sequence number.
    pub fn schedule(&mut self, at: Nanos, priority: i32, event: E) -> Result<u64> {
        if at < self.now {
            return Err(CoreError::invalid(
                "at",
                format!("= {at} is before the loop's current time {}", self.now),
                "schedule events at or after now()",
            ));
        }
        check_clock(at, "at", None, || "an event".to_owned(), "schedule events within the clock's range")?;
        Ok(self.push(at, priority, event))
    }

    /// Schedules `event` `delay` after now.
    pub fn schedule_in(&mut self, delay: Nanos, priority: i32, event: E) -> Result<u64> {
        self.schedule(self.now.saturating_add(delay), priority, event)
    }

    #[inline]
    fn push(&mut self, at: Nanos, priority: i32, event: E) -> u64 {
        let seq = self.seq;
        self.seq += 1;
        self.heap.push(Scheduled { at, priority, seq, event });
        seq
    }

    /// The time of the next event, if any.
    #[must_use]
    pub fn peek(&self) -> Option<Nanos> {
        self.heap.peek().map(|s| s.at)
    }

    /// Pops the next event and advances the clock to it.
    pub fn pop(&mut self) -> Option<Scheduled<E>> {
        let next = self.heap.pop()?;
        self.now = next.at;
        self.processed += 1;
        Some(next)
    }

    /// Pops the next event if it fires at or before `until`; otherwise advances the clock to `until`
    /// (if later than now) and returns `None`.
    pub fn pop_until(&mut self, until: Nanos) -> Option<Scheduled<E>> {
        if self.peek().is_some_and(|t| t <= until) {
            return self.pop();
        }
        if until > self.now && until != Nanos::MAX {
            self.now = until;
        }
        None
    }

    /// Runs `handler` on every event up to `until`; the handler may schedule more through the loop it is
    /// given. Returns the number of events handled.
    pub fn run<F>(&mut self, until: Nanos, mut handler: F) -> Result<u64>
    where
        F: FnMut(&mut Self, Scheduled<E>) -> Result<()>,
    {
        let start = self.processed;
        while let Some(ev) = self.pop_until(until) {
            handler(self, ev)?;
        }
        Ok(self.processed - start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn orders_by_time_priority_then_insertion() {
        let mut lp = EventLoop::new();
        lp.schedule(Nanos(5), 0, "c").unwrap();
        lp.schedule(Nanos(1), 1, "b").unwrap();
        lp.schedule(Nanos(1), 0, "a1").unwrap();
        lp.schedule(Nanos(1), 0, "a2").unwrap();
        let order: Vec<_> = std::iter::from_fn(|| lp.pop().map(|e| e.event)).collect();
        assert_eq!(order, vec!["a1", "a2", "b", "c"]);
        assert_eq!(lp.now(), Nanos(5));
        assert!(lp.schedule(Nanos(4), 0, "late").is_err());
        assert!(lp.schedule(Nanos::LIMIT, 0, "last").is_ok());
        let e = lp.schedule_in(Nanos::LIMIT, 0, "past").unwrap_err();
        assert!(e.to_string().contains("beyond the simulated clock's limit"), "{e}");
        assert_eq!(lp.pending(), 1);
    }

    #[test]
    fn run_handles_follow_up_events_and_stops_at_until() {
        let mut lp = EventLoop::new();
        lp.schedule(Nanos(0), 0, 0_u32).unwrap();
        let n = lp
            .run(Nanos(10), |lp, ev| {
                lp.schedule_in(Nanos(3), 0, ev.event + 1)?;
                Ok(())
            })
            .unwrap();
        assert_eq!(n, 4); // t = 0, 3, 6, 9
        assert_eq!(lp.now(), Nanos(10));
        assert_eq!(lp.peek(), Some(Nanos(12)));
    }

    proptest! {
        #[test]
        fn pops_sorted_and_stable(evs in prop::collection::vec((0_i64..50, -2_i32..3), 0..300)) {
            let mut lp = EventLoop::new();
            for (i, &(t, p)) in evs.iter().enumerate() { lp.schedule(Nanos(t), p, i).unwrap(); }
            let mut expected: Vec<usize> = (0..evs.len()).collect();
            expected.sort_by_key(|&i| (evs[i].0, evs[i].1, i));
            let got: Vec<usize> = std::iter::from_fn(|| lp.pop().map(|e| e.event)).collect();
            prop_assert_eq!(got, expected);
        }
    }
}
