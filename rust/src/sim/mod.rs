//! The trace-driven P/D-Device simulator.
//!
//! One request is one user with one device and one network path; the cloud is shared. The simulator
//! runs on [`EventLoop`] and returns to the caller at each request arrival, where a policy (in Python)
//! picks a [`Plan`]; every token-level event stays here.
//!
//! Per mode (all times from the request's arrival `t0`; `d` is the per-request one-way network delay):
//! - `Cloud`: the cloud generates every token; each is displayed when it arrives (`emit + d`).
//! - `Device`: the device prefills the whole prompt and decodes every token.
//! - `Pd` (P/D-Device): the cloud is asked for `min(k + 1, output)` tokens. The device starts prefilling
//!   at once (or, with refinement `r < 1`, when the refined prompt arrives with the first cloud token),
//!   then prefills the received cloud tokens in chunks; as soon as it has prefilled every received token
//!   it takes over: the rest of the cloud stream is cancelled (the cloud hears of it `d` later) and the
//!   device decodes from that position. Cloud tokens are displayed through the [`SpeedController`] with
//!   the device's hand-off estimate, revised after each prefill step and fixed at the take-over.
//!   If the device finishes its prompt before any cloud token arrives, it answers alone.
//! - `Naive`: as `Pd`, but cloud tokens are displayed on arrival (no controller).
//! - `KvTransfer`: the cloud prefills, emits the first token and ships the prompt's KV cache (in the
//!   device model's size) over the device's downlink; the device decodes the rest from it.
//! - `Race`: both start; if the cloud's first token arrives before the device's prompt is prefilled the
//!   cloud serves the whole answer, otherwise the device does and the cloud is cancelled.
//! - `Disco` (DiSCo, arXiv 2502.11417): as `Pd` with the cloud asked for the whole answer, and the
//!   migration started when the device has prefilled the prompt: if the cloud has streamed tokens by then
//!   (it won the race for the first token) the device cancels the cloud at once (the cloud hears of it
//!   `d` later and stops), prefills the tokens received, in chunks, until the last one in flight has
//!   arrived and been prefilled, and decodes on from there; the speed controller is the token buffer. If
//!   no cloud token has arrived, the device answers alone (it won the race).
//! - `Spec` (speculative edge-cloud decoding, [`crate::cost::spec`]): the cloud prefills and sends the
//!   first token, then holds the request's decode slot for the whole answer. The device prefills the
//!   prompt from `t0`; until it has both the prompt and the first token, the stream shows only the first
//!   token and waits. Then each round: the device drafts `gamma` tokens (one decode step each), sends them
//!   (`d`), the cloud verifies them in its next iteration and sends back the round's tokens (`d`), which
//!   are shown at once on arrival (no sooner than `min_tpot` apart); the next round starts then.
//!
//! Determinism: events tie-break by (time, priority, seq); no randomness inside (the caller samples
//! network delays with an explicit seed).

pub mod caches;
pub mod cloud;
pub mod metrics;
mod pd;
pub mod plan;
pub mod policy;
pub mod results;
mod spec;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::buffer::TokenBuffer;
use crate::cost::device::to_nanos;
use crate::cost::{Cached, DeviceCost, KSite, KSites};
use crate::error::{CoreError, Result};
use crate::event_loop::EventLoop;
use crate::pacing::SpeedController;
use crate::time::Nanos;
use caches::{DeviceCache, PrefixCache, Turn};
use cloud::{Cloud, CloudConfig, CloudLoad, Emission};
use metrics::{DisplayMetrics, GapHistogram, QoeParams};
pub use plan::{Mode, Plan};
pub use results::{Results, Summary, Timeline};

pub(crate) const PRIO_CLOUD: i32 = 0;
const PRIO_TOKEN: i32 = 1;
pub(crate) const PRIO_DEVICE: i32 = 2;
pub(crate) const PRIO_DISPLAY: i32 = 3;
const PRIO_ARRIVE: i32 = 4;

/// Events of the simulation.
#[derive(Debug, Clone, Copy)]
pub enum Ev {
    /// A request arrives at its device (a policy decision).
    Arrive(u32),
    /// A request reaches the cloud.
    CloudSubmit(u32),
    /// A cloud replica finished an iteration.
    IterEnd(u32),
    /// A KV cache reached a decode replica.
    KvArrive(u32, u32),
    /// A cancellation reached the cloud.
    CloudCancel(u32),
    /// A streamed cloud token reached the device.
    TokenArrive(u32),
    /// The device finished prefilling the prompt (or, in a race, its own first token is ready).
    PromptDone(u32),
    /// The device finished prefilling `n` received tokens.
    ChunkDone(u32, u32),
    /// The next buffered cloud token is due on screen (generation-checked).
    Display(u32, u32),
    /// A speculative request's drafts reached the cloud.
    SpecDrafts(u32),
    /// `n` verified tokens of a speculative request reached the device.
    SpecResult(u32, u32),
}

/// The workload and environment of one run.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// Arrival times, non-decreasing.
    pub arrival: Vec<Nanos>,
    /// Prompt tokens per request (>= 1).
    pub prompt: Vec<u32>,
    /// Output tokens per request (>= 1).
    pub output: Vec<u32>,
    /// One-way network delay per request, seconds (finite, >= 0); policies plan with these values.
    pub one_way_s: Vec<f64>,
    /// Device downlink bandwidth, bytes/s (KV transfer).
    pub bandwidth_bytes_per_s: f64,
    /// QoE parameters.
    pub qoe: QoeParams,
    /// Bytes on the wire per text token.
    pub wire: Wire,
    /// Sessions, turns and the caches they use ([`caches`]); the default is single-turn, no caches.
    pub conv: Conversations,
}

/// Bytes on the device's network per token of text (the `bytes_up` and `bytes_down` results).
///
/// A request that reaches the cloud sends its prompt as text (`prompt_bytes_per_token` per token); the
/// cloud streams each token it generates in its own message (`stream_bytes_per_token`, the token and its
/// framing); a refined prompt comes back as text with the first token; a kv-transfer's cache comes down
/// at the device model's `kv_bytes_per_token`. Speculative decoding sends each round's drafts up and its
/// verified tokens down at `stream_bytes_per_token` a token (ours: a draft travels as a streamed token
/// does).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wire {
    /// Bytes per prompt token sent as text.
    pub prompt_bytes_per_token: f64,
    /// Bytes per streamed token, framing included.
    pub stream_bytes_per_token: f64,
}

impl Wire {
    /// Refuses sizes that are negative or not finite.
    pub fn validate(&self) -> Result<()> {
        for (key, value) in [
            ("prompt_bytes_per_token", self.prompt_bytes_per_token),
            ("stream_bytes_per_token", self.stream_bytes_per_token),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(CoreError::invalid(key, format!("is {value}"), "give finite bytes >= 0"));
            }
        }
        Ok(())
    }
}

/// The conversations of a workload and the caches' sizes ([`caches`] states the rules).
#[derive(Debug, Clone, Default)]
pub struct Conversations {
    /// Per request (empty: every request is its own first turn on its own device).
    pub turns: Vec<Turn>,
    /// Request `i`'s cloud prefix blocks are `block_ids[block_offsets[i]..block_offsets[i + 1]]`
    /// (empty: no blocks).
    pub block_offsets: Vec<usize>,
    /// See `block_offsets`.
    pub block_ids: Vec<u64>,
    /// Tokens per block.
    pub block_tokens: u32,
    /// The device's session-cache budget, tokens (its memory budget over its KV bytes per token).
    pub device_cache_tokens: u64,
    /// The cloud's prefix-cache capacity, tokens.
    pub cloud_cache_tokens: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RaceState {
    Open,
    Cloud,
    Device,
}

#[derive(Debug)]
struct Pd {
    buf: TokenBuffer,
    ctrl: Option<SpeedController>,
    prompt_len: u32,
    display_gen: u32,
    display_at: Option<Nanos>,
    device_stopped: bool,
    /// When the device's current prefill step ends (prompt or chunk); `None` before the prompt starts.
    device_free_at: Option<Nanos>,
    /// Received tokens in the prefill step under way.
    in_flight: u32,
    first_arrival: Option<Nanos>,
    last_arrival: Nanos,
}

#[derive(Debug)]
struct Req {
    plan: Option<Plan>,
    metrics: DisplayMetrics,
    done: bool,
    race: RaceState,
    pd: Option<Box<Pd>>,
    spec: Option<spec::SpecState>,
    cloud_first_arrival: Option<Nanos>,
    last_cloud_display: Option<Nanos>,
    first_device_display: Option<Nanos>,
    handoff_pos: i64,
    device_prefill_tokens: u32,
    device_decode_tokens: u32,
    cloud_kept: u32,
    cloud_discarded: u32,
    bytes_up: f64,
    bytes_down: f64,
    /// When the last byte for this request reached the device (`None`: the network was not used).
    last_down: Option<Nanos>,
    /// Prompt tokens the device found in its session cache (what its prefill skipped).
    device_cached: u32,
    /// Prompt tokens the cloud found in its prefix cache.
    cloud_cached: u32,
}

impl Default for Req {
    fn default() -> Self {
        Self {
            plan: None,
            metrics: DisplayMetrics::default(),
            done: false,
            race: RaceState::Open,
            pd: None,
            spec: None,
            cloud_first_arrival: None,
            last_cloud_display: None,
            first_device_display: None,
            handoff_pos: -1,
            device_prefill_tokens: 0,
            device_decode_tokens: 0,
            cloud_kept: 0,
            cloud_discarded: 0,
            bytes_up: 0.0,
            bytes_down: 0.0,
            last_down: None,
            device_cached: 0,
            cloud_cached: 0,
        }
    }
}

/// The simulator.
#[derive(Debug)]
pub struct Simulator {
    inp: Inputs,
    /// `inp.one_way_s` in the clock's nanoseconds.
    one_way: Vec<Nanos>,
    device: DeviceCost,
    cloud: Cloud,
    lp: EventLoop<Ev>,
    reqs: Vec<Req>,
    hist: GapHistogram,
    pending_decision: Option<u32>,
    finished: usize,
    emitted: Vec<Emission>,
    /// Recorded timelines by request (empty: nothing recorded, the common case, checked first).
    timelines: BTreeMap<u32, Timeline>,
    device_cache: DeviceCache,
    prefix_cache: PrefixCache,
}

impl Simulator {
    /// Validates the inputs and builds a simulator positioned before the first arrival.
    pub fn new(inp: Inputs, cloud: CloudConfig, device: DeviceCost) -> Result<Self> {
        let n = inp.arrival.len();
        for (name, len) in [
            ("prompt_tokens", inp.prompt.len()),
            ("output_tokens", inp.output.len()),
            ("one_way_s", inp.one_way_s.len()),
        ] {
            if len != n {
                return Err(CoreError::invalid(
                    name,
                    format!("has {len} entries but arrival_s has {n}"),
                    "pass one value per request",
                ));
            }
        }
        for i in 0..n {
            if i > 0 && inp.arrival[i] < inp.arrival[i - 1] {
                return Err(CoreError::invalid_at(
                    "arrival_s",
                    i,
                    format!("= {} is earlier than the previous request", inp.arrival[i]),
                    "sort requests by arrival time",
                ));
            }
            if inp.prompt[i] == 0 {
                return Err(CoreError::invalid_at(
                    "prompt_tokens",
                    i,
                    "is 0",
                    "every request needs a prompt token",
                ));
            }
            if inp.output[i] == 0 {
                return Err(CoreError::invalid_at(
                    "output_tokens",
                    i,
                    "is 0",
                    "every request generates at least one token",
                ));
            }
        }
        if !(inp.bandwidth_bytes_per_s.is_finite() && inp.bandwidth_bytes_per_s > 0.0) {
            return Err(CoreError::invalid(
                "bandwidth_bps",
                format!("gives {} bytes/s", inp.bandwidth_bytes_per_s),
                "give a finite bandwidth > 0",
            ));
        }
        inp.wire.validate()?;
        if !(inp.qoe.ttft_s.is_finite() && inp.qoe.ttft_s >= 0.0) {
            return Err(CoreError::invalid(
                "qoe_ttft_s",
                format!("is {}", inp.qoe.ttft_s),
                "give a finite time >= 0",
            ));
        }
        if !(inp.qoe.tokens_per_s.is_finite() && inp.qoe.tokens_per_s > 0.0) {
            return Err(CoreError::invalid(
                "qoe_tokens_per_s",
                format!("is {}", inp.qoe.tokens_per_s),
                "give a finite speed > 0",
            ));
        }
        let mut inp = inp;
        Self::check_conversations(&mut inp)?;
        let device_cache = DeviceCache::new(inp.conv.device_cache_tokens);
        let prefix_cache =
            PrefixCache::new(inp.conv.cloud_cache_tokens / u64::from(inp.conv.block_tokens.max(1)));
        let one_way = inp
            .one_way_s
            .iter()
            .enumerate()
            .map(|(i, &s)| Nanos::from_secs(s, "one_way_s", Some(i)))
            .collect::<Result<Vec<_>>>()?;
        let cloud = Cloud::new(cloud, n)?;
        let mut lp = EventLoop::with_capacity(1024);
        if n > 0 {
            lp.schedule(inp.arrival[0], PRIO_ARRIVE, Ev::Arrive(0))?;
        }
        let reqs = (0..n).map(|_| Req::default()).collect();
        Ok(Self {
            inp,
            one_way,
            device,
            cloud,
            lp,
            reqs,
            hist: GapHistogram::default(),
            pending_decision: None,
            finished: 0,
            emitted: Vec::new(),
            timelines: BTreeMap::new(),
            device_cache,
            prefix_cache,
        })
    }

    /// Fills single-turn conversations and checks given ones.
    fn check_conversations(inp: &mut Inputs) -> Result<()> {
        let n = inp.arrival.len();
        let conv = &mut inp.conv;
        if conv.turns.is_empty() {
            conv.turns = (0..n as u32)
                .map(|i| Turn {
                    device: i,
                    session: i,
                    parent: None,
                    shared: 0,
                    turn: 1,
                    prompt: inp.prompt[i as usize],
                })
                .collect();
        }
        if conv.block_offsets.is_empty() {
            conv.block_offsets = vec![0; n + 1];
        }
        if conv.turns.len() != n || conv.block_offsets.len() != n + 1 {
            return Err(CoreError::invalid(
                "session",
                format!(
                    "has {} entries (block_offsets {}) for {n} requests",
                    conv.turns.len(),
                    conv.block_offsets.len()
                ),
                "pass one session, turn, parent and shared prefix per request and n + 1 block offsets",
            ));
        }
        if conv.block_offsets[0] != 0
            || conv.block_offsets[n] != conv.block_ids.len()
            || conv.block_offsets.windows(2).any(|w| w[1] < w[0])
        {
            return Err(CoreError::invalid(
                "block_offsets",
                "are not non-decreasing offsets from 0 to the number of block ids",
                "pass request i's blocks as block_ids[block_offsets[i]..block_offsets[i + 1]]",
            ));
        }
        if conv.block_tokens == 0 && !conv.block_ids.is_empty() {
            return Err(CoreError::invalid(
                "block_tokens",
                "is 0",
                "give the tokens of one prefix block, >= 1",
            ));
        }
        for i in 0..n {
            conv.turns[i].prompt = inp.prompt[i];
            let t = conv.turns[i];
            if let Some(p) = t.parent {
                if p as usize >= i || conv.turns[p as usize].session != t.session {
                    return Err(CoreError::invalid_at(
                        "parent",
                        i,
                        format!("= {p} is not an earlier request of session {}", t.session),
                        "give the previous turn of the same session, or none",
                    ));
                }
            }
            if t.shared > t.prompt || (t.parent.is_none() && t.shared > 0) {
                return Err(CoreError::invalid_at(
                    "shared_prefix_tokens",
                    i,
                    format!("= {} with a prompt of {} and parent {:?}", t.shared, t.prompt, t.parent),
                    "give 0 .. prompt_tokens, and 0 without a parent",
                ));
            }
        }
        Ok(())
    }

    /// Records the token-level timeline of request `i` (call before running; call once per request to
    /// record several).
    pub fn record_timeline(&mut self, i: u32) -> Result<()> {
        if i as usize >= self.reqs.len() {
            return Err(CoreError::invalid(
                "request",
                format!("= {i} but the workload has {} requests", self.reqs.len()),
                "pick a request index in range",
            ));
        }
        self.timelines.entry(i).or_default();
        Ok(())
    }

    /// The recorded timeline of the lowest recorded request, if any.
    #[must_use]
    pub fn timeline(&self) -> Option<&Timeline> {
        self.timelines.values().next()
    }

    /// The recorded timeline of request `i`, if it was recorded.
    #[must_use]
    pub fn timeline_for(&self, i: u32) -> Option<&Timeline> {
        self.timelines.get(&i)
    }

    fn timeline_of(&mut self, i: u32) -> Option<&mut Timeline> {
        if self.timelines.is_empty() {
            return None;
        }
        self.timelines.get_mut(&i)
    }

    /// Number of requests.
    #[must_use]
    pub fn len(&self) -> usize {
        self.reqs.len()
    }

    /// Whether the workload is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// The simulation clock.
    #[must_use]
    pub fn now(&self) -> Nanos {
        self.lp.now()
    }

    /// The cloud's current load.
    #[must_use]
    pub fn cloud_load(&self) -> CloudLoad {
        self.cloud.load()
    }

    /// The modelled lone prefill time of `prompt` tokens in the cloud, s.
    #[must_use]
    pub fn cloud_lone_prefill_s(&self, prompt: u32) -> f64 {
        self.cloud.cost().lone_prefill_s(prompt)
    }

    /// Runs until a request needs a plan and returns it; `None` when every request has finished.
    pub fn next_decision(&mut self) -> Result<Option<u32>> {
        if let Some(i) = self.pending_decision {
            return Err(CoreError::state(
                format!("next_decision: request {i} is still waiting for a plan"),
                "call decide(request, plan) before asking for the next decision",
            ));
        }
        while let Some(ev) = self.lp.pop() {
            let now = ev.at;
            match ev.event {
                Ev::Arrive(i) => {
                    let next = i as usize + 1;
                    if next < self.reqs.len() {
                        self.lp.schedule(self.inp.arrival[next], PRIO_ARRIVE, Ev::Arrive(next as u32))?;
                    }
                    self.pending_decision = Some(i);
                    return Ok(Some(i));
                }
                Ev::CloudSubmit(i) => {
                    let quota = self.cloud_quota(i);
                    let split = self.reqs[i as usize]
                        .plan
                        .filter(|p| matches!(p.mode, Mode::Pd | Mode::Naive | Mode::Disco));
                    let on_prefill = split.is_some_and(|p| p.k_site == KSite::Prefill);
                    let may_bridge = split.is_some_and(|p| p.k_site == KSite::Pool)
                        && self.cloud.k_sites() == KSites::Both;
                    let spec = self.reqs[i as usize].plan.and_then(|p| p.spec);
                    let sites = (on_prefill, may_bridge);
                    let cached = self.cloud_cache_hit(i, true);
                    self.reqs[i as usize].cloud_cached = cached;
                    self.cloud.submit_cached(
                        i,
                        self.inp.prompt[i as usize],
                        cached,
                        quota,
                        sites,
                        spec,
                        &mut self.lp,
                    );
                }
                Ev::IterEnd(r) => {
                    let mut emitted = std::mem::take(&mut self.emitted);
                    emitted.clear();
                    self.cloud.iteration_end(r, now, &mut self.lp, &mut emitted);
                    for e in &emitted {
                        self.on_emission(e.req, e.first, e.tokens, now)?;
                    }
                    self.emitted = emitted;
                }
                Ev::KvArrive(i, r) => self.cloud.kv_arrived(i, r, &mut self.lp),
                Ev::CloudCancel(i) => self.cloud.cancel(i),
                Ev::TokenArrive(i) => self.on_token_arrive(i, now)?,
                Ev::PromptDone(i) => self.on_prompt_done(i, now)?,
                Ev::ChunkDone(i, n) => self.on_chunk_done(i, n, now)?,
                Ev::Display(i, gen) => self.on_display(i, gen, now)?,
                Ev::SpecDrafts(i) => self.cloud.drafts_arrived(i, &mut self.lp),
                Ev::SpecResult(i, n) => self.on_spec_result(i, n, now)?,
            }
        }
        if self.finished != self.reqs.len() {
            return Err(CoreError::state(
                format!(
                    "the simulation ran out of events with {} of {} requests unfinished",
                    self.reqs.len() - self.finished,
                    self.reqs.len()
                ),
                "this is a bug in the simulator: report it with the workload",
            ));
        }
        Ok(None)
    }

    /// Prompt tokens request `i` finds in the cloud's prefix cache ([`caches`]); `take` marks them used.
    fn cloud_cache_hit(&mut self, i: u32, take: bool) -> u32 {
        let ids = &self.inp.conv.block_ids
            [self.inp.conv.block_offsets[i as usize]..self.inp.conv.block_offsets[i as usize + 1]];
        if ids.is_empty() {
            return 0;
        }
        let run = if take { self.prefix_cache.lookup(ids) } else { self.prefix_cache.peek(ids) };
        let tokens = u64::from(run) * u64::from(self.inp.conv.block_tokens);
        tokens.min(u64::from(self.inp.prompt[i as usize] - 1)) as u32
    }

    /// The prompt tokens request `i` (waiting for a plan) would find cached now: in its device's session
    /// cache and in the cloud's prefix cache (what policies plan with; the cloud's hit is taken again when
    /// the request reaches it, a one-way delay later).
    #[must_use]
    pub fn cached(&mut self, i: u32) -> Cached {
        Cached {
            device: self.device_cache.peek(&self.inp.conv.turns, i),
            cloud: self.cloud_cache_hit(i, false),
        }
    }

    /// Records what the device holds of request `i`'s context when its part is settled ([`caches`]).
    fn record_device_cache(&mut self, i: u32, held: u64) {
        self.device_cache.record(&self.inp.conv.turns, i, held);
    }

    fn cloud_quota(&self, i: u32) -> u32 {
        let out = self.inp.output[i as usize];
        match self.reqs[i as usize].plan.map(|p| (p.mode, p.k)) {
            Some((Mode::Pd | Mode::Naive, k)) => k.saturating_add(1).min(out),
            Some((Mode::KvTransfer, _)) => 1,
            _ => out,
        }
    }

    /// Applies `plan` to the request returned by [`next_decision`](Self::next_decision).
    pub fn decide(&mut self, i: u32, plan: Plan) -> Result<()> {
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
        self.pending_decision = None;
        let iu = i as usize;
        let t0 = self.inp.arrival[iu];
        let d = self.one_way[iu];
        self.reqs[iu].plan = Some(plan);
        // a refined prompt is not a prefix of the full one: it reuses nothing; the cloud alone uses no device
        let uses_device_cache = match plan.mode {
            Mode::Cloud => false,
            Mode::Pd | Mode::Naive | Mode::Disco => plan.refine_ratio >= 1.0,
            Mode::Device | Mode::Race | Mode::KvTransfer | Mode::Spec => true,
        };
        let cached = if uses_device_cache { self.device_cache.lookup(&self.inp.conv.turns, i) } else { 0 };
        self.reqs[iu].device_cached = cached;
        if plan.mode != Mode::Device {
            self.lp.schedule(t0 + d, PRIO_CLOUD, Ev::CloudSubmit(i))?;
            self.reqs[iu].bytes_up = f64::from(self.inp.prompt[iu]) * self.inp.wire.prompt_bytes_per_token;
        }
        match plan.mode {
            Mode::Cloud | Mode::KvTransfer => {}
            Mode::Device => {
                let p = self.device.prompt(self.inp.prompt[iu], cached);
                self.reqs[iu].device_prefill_tokens = self.inp.prompt[iu] - cached;
                self.finish_on_device(i, t0 + p, 0, plan.pace.min_tpot());
            }
            Mode::Race => {
                let p = self.device.prompt(self.inp.prompt[iu], cached);
                self.lp.schedule(t0 + p, PRIO_DEVICE, Ev::PromptDone(i))?;
            }
            Mode::Spec => {
                let p = self.device.prompt(self.inp.prompt[iu], cached);
                self.reqs[iu].device_prefill_tokens = self.inp.prompt[iu] - cached;
                self.reqs[iu].spec = Some(spec::SpecState::default());
                self.lp.schedule(t0 + p, PRIO_DEVICE, Ev::PromptDone(i))?;
            }
            Mode::Pd | Mode::Naive | Mode::Disco => {
                let quota = self.cloud_quota(i);
                let prompt_len = ((f64::from(self.inp.prompt[iu]) * plan.refine_ratio).ceil() as u32).max(1);
                let ctrl = (plan.mode != Mode::Naive)
                    .then(|| SpeedController::new(plan.pace, Some(u64::from(quota)), None));
                let mut pd = Box::new(Pd {
                    buf: TokenBuffer::new(Some(quota)),
                    ctrl,
                    prompt_len,
                    display_gen: 0,
                    display_at: None,
                    device_stopped: false,
                    device_free_at: None,
                    in_flight: 0,
                    first_arrival: None,
                    last_arrival: Nanos::ZERO,
                });
                if plan.refine_ratio >= 1.0 {
                    let p = self.device.prompt(prompt_len, cached);
                    pd.device_free_at = Some(t0 + p);
                    self.lp.schedule(t0 + p, PRIO_DEVICE, Ev::PromptDone(i))?;
                }
                self.reqs[iu].pd = Some(pd);
                self.revise_handoff(i);
            }
        }
        Ok(())
    }

    fn on_emission(&mut self, i: u32, first: bool, tokens: u32, now: Nanos) -> Result<()> {
        let iu = i as usize;
        let arrive = now + self.one_way[iu];
        if let Some(tl) = self.timeline_of(i) {
            tl.cloud_arrivals.extend(std::iter::repeat_n(arrive, tokens as usize));
        }
        let wire = self.inp.wire;
        if first {
            // the prompt is prefilled: its blocks join the cloud's prefix cache
            let c = &self.inp.conv;
            let ids = &c.block_ids[c.block_offsets[iu]..c.block_offsets[iu + 1]];
            self.prefix_cache.insert(ids);
        }
        let req = &mut self.reqs[iu];
        let plan = req.plan.expect("planned");
        // every emitted token goes down the wire, displayed or not (a verification round's at once)
        req.bytes_down += f64::from(tokens) * wire.stream_bytes_per_token;
        req.last_down = Some(req.last_down.map_or(arrive, |t| t.max(arrive)));
        if first {
            req.cloud_first_arrival = Some(arrive);
            if let Some(pd) = req.pd.as_ref().filter(|_| plan.refine_ratio < 1.0) {
                req.bytes_down += f64::from(pd.prompt_len) * wire.prompt_bytes_per_token;
            }
        }
        if req.done {
            return Ok(());
        }
        match plan.mode {
            Mode::Cloud => self.display_cloud_inline(i, arrive),
            Mode::Race => {
                if req.race == RaceState::Open {
                    let device_ready =
                        self.inp.arrival[iu] + self.device.prompt(self.inp.prompt[iu], req.device_cached);
                    if arrive <= device_ready {
                        req.race = RaceState::Cloud;
                    }
                }
                if req.race == RaceState::Cloud {
                    self.display_cloud_inline(i, arrive);
                }
            }
            Mode::KvTransfer => {
                self.display_cloud_inline(i, arrive);
                if self.reqs[iu].done {
                    return Ok(()); // a one-token answer
                }
                let prompt = self.inp.prompt[iu];
                // the device already holds its cached prefix: only the rest is sent
                let bytes =
                    f64::from(prompt - self.reqs[iu].device_cached) * self.device.kv_bytes_per_token();
                let kv_at = arrive + to_nanos(bytes / self.inp.bandwidth_bytes_per_s);
                let req = &mut self.reqs[iu];
                req.bytes_down += bytes;
                req.last_down = Some(req.last_down.map_or(kv_at, |t| t.max(kv_at)));
                // token 0 came from the cloud; the device runs it through to produce token 1
                let ready = kv_at + self.device.tpot(u64::from(prompt));
                self.finish_on_device(i, ready, 1, plan.pace.min_tpot());
            }
            Mode::Pd | Mode::Naive | Mode::Disco => {
                self.lp.schedule(arrive, PRIO_TOKEN, Ev::TokenArrive(i))?;
            }
            Mode::Spec => {
                self.lp.schedule(arrive, PRIO_TOKEN, Ev::SpecResult(i, tokens))?;
            }
            Mode::Device => unreachable!("device-only requests never reach the cloud"),
        }
        Ok(())
    }

    fn record(&mut self, i: u32, t: Nanos, from_cloud: bool) {
        let arrival = self.inp.arrival[i as usize];
        self.reqs[i as usize].metrics.record(arrival, t, self.inp.qoe, &mut self.hist);
        if let Some(tl) = self.timeline_of(i) {
            tl.displays.push(t);
            tl.from_cloud.push(from_cloud);
        }
    }

    fn display_cloud_inline(&mut self, i: u32, at: Nanos) {
        self.record(i, at, true);
        let iu = i as usize;
        let req = &mut self.reqs[iu];
        req.cloud_kept += 1;
        req.last_cloud_display = Some(at);
        if req.metrics.count() == self.inp.output[iu] {
            self.finish(i);
        }
    }

    /// Displays device tokens from position `from` onward: the first ready at `first_ready`, the rest
    /// one TPOT apart, none sooner than `min_tpot` after the previous display.
    fn finish_on_device(&mut self, i: u32, first_ready: Nanos, from: u32, min_tpot: Nanos) {
        let iu = i as usize;
        let out = self.inp.output[iu];
        let (arrival, qoe) = (self.inp.arrival[iu], self.inp.qoe);
        let ctx0 = u64::from(self.reqs[iu].pd.as_ref().map_or(self.inp.prompt[iu], |p| p.prompt_len));
        // the token at position `pos` is followed by a decode step at context `ctx0 + pos + 1`
        let mut steps = self.device.tpot_steps(ctx0 + u64::from(from) + 1);
        let hist = &mut self.hist;
        let mut timeline = if self.timelines.is_empty() { None } else { self.timelines.get_mut(&i) };
        let req = &mut self.reqs[iu];
        let mut ready = first_ready;
        let mut prev = req.metrics.first().map(|_| req.metrics.last());
        for pos in from..out {
            let t = prev.map_or(ready, |p| ready.max(p + min_tpot));
            if pos == from {
                req.first_device_display = Some(t);
            }
            req.metrics.record(arrival, t, qoe, hist);
            if let Some(tl) = timeline.as_mut() {
                tl.displays.push(t);
                tl.from_cloud.push(false);
            }
            prev = Some(t);
            ready += steps.next().expect("an endless sequence of steps");
        }
        req.device_decode_tokens += out - from;
        if req.handoff_pos < 0 {
            req.handoff_pos = i64::from(from);
        }
        let refined = req.plan.is_some_and(|p| p.refine_ratio < 1.0);
        drop(steps);
        // the device holds its prompt and the answer (the last token is never run through the model); a
        // refined prompt's cache is no prefix of the conversation
        let held = if refined { 0 } else { u64::from(self.inp.prompt[iu]) + u64::from(out) - 1 };
        self.record_device_cache(i, held);
        self.finish(i);
    }

    fn finish(&mut self, i: u32) {
        let req = &mut self.reqs[i as usize];
        debug_assert!(!req.done);
        req.done = true;
        req.pd = None;
        self.finished += 1;
    }
}
