//! The simulator's event queue: the order of [`crate::event_loop::EventLoop`], with a cheaper key.
//!
//! Events pop by `(time, priority, seq)` exactly as in [`EventLoop`](crate::event_loop::EventLoop):
//! earlier time first, then lower priority value, then insertion order, so a run pops the same events in
//! the same order whichever queue it uses. The three are packed into one `u128` (time in the high 64
//! bits, then the priority offset by `2^15` in 16 bits, then `seq` in 48 bits), so each comparison in the
//! heap is one integer comparison instead of three, and the heap is 4-ary (half the levels of a binary
//! heap to walk down at each pop), the smallest of four children picked by selects, not branches. A pop
//! leaves the root's slot vacant: an event scheduled next (a handler's follow-up, most often) takes it
//! and walks down once, where filling it with the last entry and adding the new one at the bottom would
//! walk the heap twice. Keys are unique (`seq`), so any valid heap pops them in one order. Ours, for
//! speed: a million-request run pops hundreds of millions of events, and the comparisons were a fifth of
//! a speculative run's time.
//!
//! Rules: times are never before `now` nor past [`Nanos::LIMIT`] (as in `EventLoop`); priorities fit in
//! an `i16`; at most `2^48` events per queue (far beyond any run: a million requests schedule well under
//! a billion).

use crate::error::{CoreError, Result};
use crate::time::{check_clock, Nanos};

const SEQ_BITS: u32 = 48;
const PRIORITY_OFFSET: i32 = 1 << 15;

/// An event taken from the queue.
#[derive(Debug, Clone, Copy)]
pub struct Due<E> {
    /// When it fires.
    pub at: Nanos,
    /// The payload.
    pub event: E,
}

#[derive(Debug, Clone, Copy)]
struct Entry<E> {
    key: u128,
    event: E,
}

/// The event queue and the clock.
#[derive(Debug, Clone)]
pub struct EventQueue<E> {
    now: Nanos,
    seq: u64,
    processed: u64,
    /// A 4-ary min-heap on `key`: half the levels of a binary heap, each level's children adjacent.
    heap: Vec<Entry<E>>,
    /// The root was popped and its slot is vacant (module doc): the next push fills it, or the next pop
    /// moves the last entry into it.
    hole: bool,
}

const ARITY: usize = 4;

impl<E: Copy> EventQueue<E> {
    /// An empty queue at time zero with room for `n` pending events.
    #[must_use]
    pub fn with_capacity(n: usize) -> Self {
        Self { now: Nanos::ZERO, seq: 0, processed: 0, heap: Vec::with_capacity(n), hole: false }
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

    /// Schedules `event` at `at`, from now to [`Nanos::LIMIT`], with a `priority` in the range of an
    /// `i16`.
    pub fn schedule(&mut self, at: Nanos, priority: i32, event: E) -> Result<()> {
        if at < self.now {
            return Err(CoreError::invalid(
                "at",
                format!("= {at} is before the loop's current time {}", self.now),
                "schedule events at or after now()",
            ));
        }
        if at > Nanos::LIMIT {
            check_clock(
                at,
                "at",
                None,
                || "an event".to_owned(),
                "schedule events within the clock's range",
            )?;
        }
        let Ok(rank) = u16::try_from(priority + PRIORITY_OFFSET) else {
            return Err(CoreError::invalid(
                "priority",
                format!("= {priority} is outside the queue's range"),
                "use a priority from -32768 to 32767",
            ));
        };
        if self.seq >> SEQ_BITS != 0 {
            return Err(CoreError::state(
                "the event queue has scheduled 2^48 events",
                "split the workload into smaller runs",
            ));
        }
        // `at >= now >= 0`, so the cast keeps its order
        let key = (u128::from(at.0 as u64) << 64) | (u128::from(rank) << SEQ_BITS) | u128::from(self.seq);
        self.seq += 1;
        self.push(Entry { key, event });
        Ok(())
    }

    /// Schedules `event` `delay` after now.
    pub fn schedule_in(&mut self, delay: Nanos, priority: i32, event: E) -> Result<()> {
        self.schedule(self.now.saturating_add(delay), priority, event)
    }

    /// Pops the next event and advances the clock to it.
    #[inline]
    pub fn pop(&mut self) -> Option<Due<E>> {
        if self.hole {
            self.fill_hole();
        }
        let next = *self.heap.first()?;
        self.hole = true;
        #[allow(clippy::cast_possible_wrap)] // scheduled from a non-negative `Nanos`
        let at = Nanos((next.key >> 64) as u64 as i64);
        self.now = at;
        self.processed += 1;
        Some(Due { at, event: next.event })
    }

    /// Moves the last entry into the vacant root (or drops the root's slot, the last one).
    #[inline]
    fn fill_hole(&mut self) {
        self.hole = false;
        let last = self.heap.pop().expect("a vacant root is a slot of the heap");
        if !self.heap.is_empty() {
            self.sift_down(last);
        }
    }

    #[inline]
    fn push(&mut self, entry: Entry<E>) {
        if self.hole {
            // into the vacant root: one walk down from the top instead of a walk down to fill it and
            // one up for the new entry
            self.hole = false;
            self.sift_down(entry);
            return;
        }
        let heap = &mut self.heap;
        let mut pos = heap.len();
        heap.push(entry);
        while pos > 0 {
            let parent = (pos - 1) / ARITY;
            if heap[parent].key <= entry.key {
                break;
            }
            heap[pos] = heap[parent];
            pos = parent;
        }
        heap[pos] = entry;
    }

    /// Puts `entry` in place of the root (vacant, or to be dropped) and restores the heap.
    #[inline]
    fn sift_down(&mut self, entry: Entry<E>) {
        let heap = &mut self.heap;
        let n = heap.len();
        let mut pos = 0;
        loop {
            let first = ARITY * pos + 1;
            if first >= n {
                break;
            }
            let best = if first + ARITY <= n {
                smallest_of_four(&heap[first..first + ARITY]) + first
            } else {
                let mut best = first;
                for child in first + 1..n {
                    if heap[child].key < heap[best].key {
                        best = child;
                    }
                }
                best
            };
            if heap[best].key >= entry.key {
                break;
            }
            heap[pos] = heap[best];
            pos = best;
        }
        heap[pos] = entry;
    }
}

/// The index of the smallest key of four children, by a tournament of selects rather than branches (the
/// comparisons of a sift-down are unpredictable, and a mispredicted branch cost more than the pop).
#[inline]
fn smallest_of_four<E>(children: &[Entry<E>]) -> usize {
    let k = [children[0].key, children[1].key, children[2].key, children[3].key];
    let a = usize::from(k[1] < k[0]);
    let b = 2 + usize::from(k[3] < k[2]);
    let (ka, kb) = (k[0].min(k[1]), k[2].min(k[3]));
    if kb < ka {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_loop::EventLoop;
    use proptest::prelude::*;

    #[test]
    fn rejects_the_past_the_clock_limit_and_a_priority_out_of_range() {
        let mut q = EventQueue::with_capacity(4);
        q.schedule(Nanos(5), 0, "a").unwrap();
        assert_eq!(q.pop().map(|d| (d.at, d.event)), Some((Nanos(5), "a")));
        assert!(q.schedule(Nanos(4), 0, "late").is_err());
        assert!(q.schedule(Nanos::LIMIT, -32768, "last").is_ok());
        assert!(q.schedule_in(Nanos::LIMIT, 0, "past").is_err());
        let e = q.schedule(Nanos(6), 40_000, "odd").unwrap_err();
        assert!(e.to_string().contains("priority"), "{e}");
        assert_eq!(q.processed(), 1);
    }

    proptest! {
        #[test]
        fn pops_as_the_event_loop_does(
            evs in prop::collection::vec((0_i64..50, -3_i32..4, 0_i64..20), 0..300),
        ) {
            // each popped event schedules its follow-up `dt` later, in both queues
            let (mut q, mut lp) = (EventQueue::with_capacity(8), EventLoop::new());
            for (i, &(t, p, _)) in evs.iter().enumerate() {
                q.schedule(Nanos(t), p, i).unwrap();
                lp.schedule(Nanos(t), p, i).unwrap();
            }
            let mut follow = evs.len();
            while let Some(a) = q.pop() {
                let b = lp.pop().unwrap();
                prop_assert_eq!((a.at, a.event), (b.at, b.event));
                if let Some(&(_, p, dt)) = evs.get(a.event) {
                    q.schedule_in(Nanos(dt), p, follow).unwrap();
                    lp.schedule_in(Nanos(dt), p, follow).unwrap();
                    follow += 1;
                }
            }
            prop_assert!(lp.pop().is_none());
        }
    }
}
