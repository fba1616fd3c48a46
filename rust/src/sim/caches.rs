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
//! Only tokens that exist can be reused (ours): an entry says when each of its tokens exists ([`Held`]):
//! the prefix its request found cached from the start, its prompt (and the cloud tokens prefilled with
//! it) once the device is ready with its first own token, then one answer token per decode step, when
//! the step that runs it through the model ends. A follow-up finds what exists when its own prefill
//! starts, at its arrival (every mode that reuses the cache starts the device's prefill at once; a
//! kv-transfer's shipped cache is cut by the same amount), and prefills the rest itself: it does not wait
//! for its parent to finish. That is what an engine with a shared prefix cache does (vLLM's automatic
//! prefix caching matches a new request against the blocks computed so far, a running request's
//! included, and computes the rest); a follow-up that arrives while its parent is still prefilling
//! reuses nothing of it.
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
//! when its prefill completes (its first token is emitted), so a follow-up that reaches the cloud while
//! its parent is still prefilling finds none of the parent's blocks. Eviction is vLLM's: least recently used block first and, among blocks
//! last used together, the one deepest in its prefix first.

use std::collections::{BTreeSet, HashMap};

use crate::cost::Cached;
use crate::time::Nanos;

/// The device's session KV caches (module doc).
#[derive(Debug, Default)]
pub struct DeviceCache {
    budget_tokens: u64,
    /// Per device: its sessions' entries.
    devices: HashMap<u32, Vec<Entry>>,
    clock: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    session: u32,
    /// The request whose context the entry holds.
    req: u32,
    /// Its tokens, the budget's share (at most the budget).
    held: u64,
    used: u64,
    /// When they exist.
    growth: Held,
}

/// The leading tokens of a request's context its device holds, and when each exists (module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    /// Tokens that existed before the request started (what it found cached).
    pub reused: u64,
    /// Tokens that exist from `at` on: its prompt and the tokens prefilled with it.
    pub ready: u64,
    /// When `ready` tokens exist.
    pub at: Nanos,
    /// When each later token exists, one token each, in order (the device's decode steps).
    pub later: Vec<Nanos>,
}

impl Held {
    /// Nothing: a refined turn drops the session's entry.
    #[must_use]
    pub fn nothing() -> Self {
        Self::default()
    }

    /// `tokens` that all exist from `at` on.
    #[must_use]
    pub fn from(tokens: u64, at: Nanos) -> Self {
        Self { reused: 0, ready: tokens, at, later: Vec::new() }
    }

    /// Every token held, once all exist.
    #[must_use]
    pub fn tokens(&self) -> u64 {
        self.ready + self.later.len() as u64
    }

    /// The leading tokens that exist at `t`.
    #[must_use]
    pub fn existing_at(&self, t: Nanos) -> u64 {
        if t < self.at {
            self.reused.min(self.ready)
        } else {
            self.ready + self.later.partition_point(|&x| x <= t) as u64
        }
    }
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

    /// Whether anything is ever kept (a budget above 0): when not, what a request holds need not be
    /// gathered.
    #[must_use]
    pub fn keeps(&self) -> bool {
        self.budget_tokens > 0
    }

    /// The tokens request `i` finds cached when it starts at `now`, without marking the session used.
    #[must_use]
    pub fn peek(&self, turns: &[Turn], i: u32, now: Nanos) -> u32 {
        let t = turns[i as usize];
        if self.budget_tokens == 0 || t.parent.is_none() {
            return 0;
        }
        let Some(entries) = self.devices.get(&t.device) else { return 0 };
        let Some(e) = entries.iter().find(|e| e.session == t.session) else { return 0 };
        let existing = e.held.min(e.growth.existing_at(now));
        let reuse = existing.min(Self::common(turns, e.req, i)).min(u64::from(t.prompt - 1));
        reuse as u32
    }

    /// [`peek`](Self::peek), marking the session used.
    pub fn lookup(&mut self, turns: &[Turn], i: u32, now: Nanos) -> u32 {
        let got = self.peek(turns, i, now);
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

    /// Records that the device holds the leading tokens of request `i`'s context that `held` says, as
    /// they come to exist (none drops the session's entry), then evicts least recently used sessions of
    /// that device to fit the budget.
    ///
    /// # Panics
    /// Never: eviction runs only while the device's entries exceed the budget, so one is left to evict.
    pub fn record(&mut self, turns: &[Turn], i: u32, held: Held) {
        if self.budget_tokens == 0 {
            return;
        }
        let t = turns[i as usize];
        self.clock += 1;
        let entries = self.devices.entry(t.device).or_default();
        entries.retain(|e| e.session != t.session);
        let tokens = held.tokens();
        if tokens > 0 {
            let share = tokens.min(self.budget_tokens);
            entries.push(Entry { session: t.session, req: i, held: share, used: self.clock, growth: held });
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

impl super::Simulator {
    /// Prompt tokens request `i` finds in the cloud's prefix cache (module doc); `take` marks them used.
    pub(super) fn cloud_cache_hit(&mut self, i: u32, take: bool) -> u32 {
        let ids = &self.inp.conv.block_ids
            [self.inp.conv.block_offsets[i as usize]..self.inp.conv.block_offsets[i as usize + 1]];
        if ids.is_empty() {
            return 0;
        }
        let run = if take { self.prefix_cache.lookup(ids) } else { self.prefix_cache.peek(ids) };
        let tokens = u64::from(run) * u64::from(self.inp.conv.block_tokens);
        tokens.min(u64::from(self.inp.prompt[i as usize] - 1)) as u32
    }

    /// The prompt tokens request `i` (waiting for a plan) finds cached at its arrival on its device and in
    /// the cloud (what policies plan with; the cloud's hit is taken again when the request reaches it).
    #[must_use]
    pub fn cached(&mut self, i: u32) -> Cached {
        Cached {
            device: self.device_cache.peek(&self.inp.conv.turns, i, self.inp.arrival[i as usize]),
            cloud: self.cloud_cache_hit(i, false),
        }
    }

    /// Records what the device holds of request `i`'s context, and when each token exists (module doc).
    pub(super) fn record_device_cache(&mut self, i: u32, held: Held) {
        self.device_cache.record(&self.inp.conv.turns, i, held);
    }
}

#[cfg(test)]
mod tests;
