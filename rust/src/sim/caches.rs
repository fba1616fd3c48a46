//! The caches conversations make useful: the device's session KV cache and the cloud's prefix cache.
//!
//! **Device session cache.** Each device keeps, per session, the KV cache of the leading tokens of that
//! session's context it computed itself: the prompt it prefilled (including what it reused) and the
//! answer tokens it prefilled or decoded. It is recorded when the device's part of a request is settled
//! (the simulator settles the device's decode at the take-over), as `held` tokens of that request's
//! context (prompt then answer; the last answer token is sampled but never run through the model, so a
//! device-decoded answer leaves `prompt + output − 1`). A later request of the session reuses
//! `min(held, common prefix, prompt − 1)` tokens, where the common prefix of the held request's context
//! and the new prompt is the smallest `shared_prefix_tokens` on the path between them through their
//! parents (at least one token is always prefilled: the last prompt token's logits start the answer).
//! Rules:
//! - a turn the cloud answered alone, or a race the cloud won, leaves the session's entry as it was
//!   (the device did not see those tokens; the older entry stays a valid prefix);
//! - a refined prompt's KV is not a prefix of the full one: a refined turn reuses nothing and drops
//!   the session's entry;
//! - a P/D-Device turn the cloud finished keeps what the device had prefilled (prompt and received
//!   tokens) when its prompt was done, and leaves the entry as it was otherwise;
//! - a speculative-decoding turn reuses the cache for its prompt but leaves the entry as it was (what
//!   the drafter keeps of the verified answer is not modelled).
//!
//! Memory: each device has `budget_tokens` (the profile's byte budget over `kv_bytes_per_token`). An
//! entry longer than the budget keeps its leading tokens (only a prefix can be reused); then sessions
//! are evicted least recently used first (used = looked up by a request's plan or recorded) until the
//! device's entries fit. A budget of 0 keeps nothing: every request prefills its whole prompt, as
//! without conversations.
//!
//! **Cloud prefix cache.** One cache of `capacity_blocks` blocks shared by the prefill-capable replicas,
//! as Mooncake's KVCache-centric design pools the cache of the whole prefill cluster (its Conductor
//! sends a request wherever its prefix is) rather than vLLM's per-instance automatic prefix caching,
//! which would need cache-aware routing to hit; fetching a cached block from the pool is not priced.
//! A request's hit is the leading run of its block ids found in the cache when it reaches the cloud,
//! `min(run × block_tokens, prompt − 1)` tokens, and those blocks are held for it; its blocks are added
//! when its prefill completes. Eviction is vLLM's: least recently used block first and, among blocks
//! last used together, the one deepest in its prefix first.

use std::collections::{BTreeSet, HashMap};

/// The device's session KV caches (module doc).
#[derive(Debug, Default)]
pub struct DeviceCache {
    budget_tokens: u64,
    /// Per device: its sessions' entries.
    devices: HashMap<u32, Vec<Entry>>,
    clock: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    session: u32,
    /// The request whose context the entry holds.
    req: u32,
    held: u64,
    used: u64,
}

/// A request's place in its conversation, as the caches need it.
#[derive(Debug, Clone, Copy)]
pub struct Turn {
    /// The device that serves it.
    pub device: u32,
    /// Its session.
    pub session: u32,
    /// Its parent request, if any.
    pub parent: Option<u32>,
    /// Leading prompt tokens equal to the parent's context.
    pub shared: u32,
    /// Its turn number (1 = first).
    pub turn: u32,
    /// Its prompt tokens.
    pub prompt: u32,
}

impl DeviceCache {
    /// A cache of `budget_tokens` per device.
    #[must_use]
    pub fn new(budget_tokens: u64) -> Self {
        Self { budget_tokens, devices: HashMap::new(), clock: 0 }
    }

    /// The common prefix of request `held`'s context and request `i`'s prompt: the smallest shared
    /// prefix on the path between them through their parents (0 when they are not connected).
    fn common(turns: &[Turn], held: u32, i: u32) -> u64 {
        let (mut a, mut b) = (i, held);
        let mut m = u64::MAX;
        while a != b {
            let (ta, tb) = (turns[a as usize], turns[b as usize]);
            let step_a = ta.turn >= tb.turn;
            let t = if step_a { ta } else { tb };
            let Some(p) = t.parent else { return 0 };
            m = m.min(u64::from(t.shared));
            if step_a {
                a = p;
            } else {
                b = p;
            }
        }
        m
    }

    /// The tokens request `i` finds cached, without marking the session used.
    #[must_use]
    pub fn peek(&self, turns: &[Turn], i: u32) -> u32 {
        let t = turns[i as usize];
        if self.budget_tokens == 0 || t.parent.is_none() {
            return 0;
        }
        let Some(entries) = self.devices.get(&t.device) else { return 0 };
        let Some(e) = entries.iter().find(|e| e.session == t.session) else { return 0 };
        let reuse = e.held.min(Self::common(turns, e.req, i)).min(u64::from(t.prompt - 1));
        reuse as u32
    }

    /// [`peek`](Self::peek), marking the session used.
    pub fn lookup(&mut self, turns: &[Turn], i: u32) -> u32 {
        let got = self.peek(turns, i);
        let t = turns[i as usize];
        self.clock += 1;
        let clock = self.clock;
        if let Some(e) =
            self.devices.get_mut(&t.device).and_then(|v| v.iter_mut().find(|e| e.session == t.session))
        {
            e.used = clock;
        }
        got
    }

    /// Records that the device holds `held` leading tokens of request `i`'s context (0 drops the
    /// session's entry), then evicts least recently used sessions of that device to fit the budget.
    ///
    /// # Panics
    /// Never: eviction runs only while the device's entries exceed the budget, so one is left to evict.
    pub fn record(&mut self, turns: &[Turn], i: u32, held: u64) {
        if self.budget_tokens == 0 {
            return;
        }
        let t = turns[i as usize];
        self.clock += 1;
        let entries = self.devices.entry(t.device).or_default();
        entries.retain(|e| e.session != t.session);
        if held > 0 {
            let held = held.min(self.budget_tokens);
            entries.push(Entry { session: t.session, req: i, held, used: self.clock });
        }
        let mut total: u64 = entries.iter().map(|e| e.held).sum();
        while total > self.budget_tokens {
            let (at, _) =
                entries.iter().enumerate().min_by_key(|(_, e)| e.used).expect("over budget: not empty");
            total -= entries.swap_remove(at).held;
        }
    }

    /// The sessions device `device` holds, least recently used first, with their tokens.
    #[must_use]
    pub fn sessions(&self, device: u32) -> Vec<(u32, u64)> {
        let mut v: Vec<Entry> = self.devices.get(&device).cloned().unwrap_or_default();
        v.sort_by_key(|e| e.used);
        v.iter().map(|e| (e.session, e.held)).collect()
    }
}

/// The cloud's shared prefix cache (module doc).
#[derive(Debug, Default)]
pub struct PrefixCache {
    capacity_blocks: u64,
    /// Block id → (last use, position in its prefix).
    blocks: HashMap<u64, (u64, u32)>,
    /// Eviction order: (last use, deeper first, id).
    order: BTreeSet<(u64, std::cmp::Reverse<u32>, u64)>,
    clock: u64,
}

impl PrefixCache {
    /// A cache of `capacity_blocks` blocks (0: no cache).
    #[must_use]
    pub fn new(capacity_blocks: u64) -> Self {
        Self { capacity_blocks, ..Self::default() }
    }

    /// The leading blocks of `ids` in the cache.
    #[must_use]
    pub fn peek(&self, ids: &[u64]) -> u32 {
        ids.iter().take_while(|id| self.blocks.contains_key(id)).count() as u32
    }

    /// [`peek`](Self::peek), marking the blocks found used.
    pub fn lookup(&mut self, ids: &[u64]) -> u32 {
        let run = self.peek(ids);
        if run > 0 {
            self.clock += 1;
            for &id in &ids[..run as usize] {
                self.touch(id);
            }
        }
        run
    }

    fn touch(&mut self, id: u64) {
        if let Some(&(used, pos)) = self.blocks.get(&id) {
            self.order.remove(&(used, std::cmp::Reverse(pos), id));
            self.order.insert((self.clock, std::cmp::Reverse(pos), id));
            self.blocks.insert(id, (self.clock, pos));
        }
    }

    /// Adds a prefilled prompt's blocks, evicting to fit.
    ///
    /// # Panics
    /// Never: eviction runs only while the cache holds more blocks than its capacity.
    pub fn insert(&mut self, ids: &[u64]) {
        if self.capacity_blocks == 0 || ids.is_empty() {
            return;
        }
        self.clock += 1;
        for (pos, &id) in ids.iter().enumerate() {
            if self.blocks.contains_key(&id) {
                self.touch(id);
            } else {
                let pos = pos as u32;
                self.blocks.insert(id, (self.clock, pos));
                self.order.insert((self.clock, std::cmp::Reverse(pos), id));
            }
        }
        while self.blocks.len() as u64 > self.capacity_blocks {
            let (_, _, id) = self.order.pop_first().expect("over capacity: not empty");
            self.blocks.remove(&id);
        }
    }

    /// Blocks held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether nothing is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(device: u32, session: u32, parent: Option<u32>, shared: u32, turn: u32, prompt: u32) -> Turn {
        Turn { device, session, parent, shared, turn, prompt }
    }

    #[test]
    fn a_follow_up_reuses_the_common_prefix_of_what_the_device_holds() {
        let turns =
            [turn(0, 0, None, 0, 1, 100), turn(0, 0, Some(0), 150, 2, 170), turn(0, 0, Some(1), 200, 3, 230)];
        let mut c = DeviceCache::new(10_000);
        assert_eq!(c.lookup(&turns, 0), 0);
        c.record(&turns, 0, 149); // prompt 100 + answer 50 − 1
        assert_eq!(c.peek(&turns, 1), 149);
        // turn 2 answered by the cloud: the entry of turn 1 stays, valid up to the shared 150
        assert_eq!(c.peek(&turns, 2), 149);
        c.record(&turns, 1, 199);
        assert_eq!(c.peek(&turns, 2), 199);
        // a refined turn drops the entry
        c.record(&turns, 1, 0);
        assert_eq!(c.peek(&turns, 2), 0);
    }

    #[test]
    fn at_least_one_token_is_prefilled() {
        let turns = [turn(0, 0, None, 0, 1, 100), turn(0, 0, Some(0), 100, 2, 100)];
        let mut c = DeviceCache::new(10_000);
        c.record(&turns, 0, 500);
        assert_eq!(c.peek(&turns, 1), 99);
    }

    #[test]
    fn sessions_are_evicted_least_recently_used_first() {
        // two sessions on device 0, one on device 1; 300 tokens per device
        let turns = [
            turn(0, 0, None, 0, 1, 100),
            turn(0, 1, None, 0, 1, 100),
            turn(1, 2, None, 0, 1, 100),
            turn(0, 0, Some(0), 150, 2, 160),
            turn(0, 3, None, 0, 1, 100),
            turn(0, 1, Some(1), 150, 2, 160),
        ];
        let mut c = DeviceCache::new(300);
        c.record(&turns, 0, 150);
        c.record(&turns, 1, 120);
        c.record(&turns, 2, 290);
        assert_eq!(c.sessions(0), vec![(0, 150), (1, 120)]);
        assert_eq!(c.lookup(&turns, 3), 150); // session 0 is now the most recent
        c.record(&turns, 4, 100); // 370 > 300: session 1, least recently used, goes
        assert_eq!(c.sessions(0), vec![(0, 150), (3, 100)]);
        assert_eq!(c.peek(&turns, 5), 0);
        assert_eq!(c.sessions(1), vec![(2, 290)], "another device's budget is its own");
        // an entry longer than the budget keeps its leading tokens
        c.record(&turns, 3, 1000);
        assert_eq!(c.sessions(0), vec![(0, 300)]);
    }

    #[test]
    fn a_zero_budget_keeps_nothing() {
        let turns = [turn(0, 0, None, 0, 1, 100), turn(0, 0, Some(0), 150, 2, 160)];
        let mut c = DeviceCache::new(0);
        c.record(&turns, 0, 150);
        assert_eq!(c.lookup(&turns, 1), 0);
    }

    #[test]
    fn siblings_share_their_parents_prefix() {
        let turns =
            [turn(0, 0, None, 0, 1, 100), turn(0, 0, Some(0), 120, 2, 130), turn(0, 0, Some(0), 110, 2, 140)];
        let mut c = DeviceCache::new(1000);
        c.record(&turns, 1, 150);
        assert_eq!(c.peek(&turns, 2), 110);
    }

    #[test]
    fn the_prefix_cache_evicts_the_least_recent_and_deepest_blocks_first() {
        let mut c = PrefixCache::new(4);
        c.insert(&[1, 2, 3]);
        assert_eq!(c.peek(&[1, 2, 9]), 2);
        c.insert(&[7, 8]); // 5 blocks: block 3, deepest of the older prefix, goes
        assert_eq!(c.peek(&[1, 2, 3]), 2);
        assert_eq!(c.lookup(&[1, 2]), 2); // 1 and 2 are now the most recent
        c.insert(&[5]); // 8 goes (older than 1, 2, deeper than 7), then nothing else
        assert_eq!(c.peek(&[7, 8]), 1);
        assert_eq!(c.len(), 4);
        let mut none = PrefixCache::new(0);
        none.insert(&[1, 2]);
        assert!(none.is_empty());
    }
}
