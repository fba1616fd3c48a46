//! The trace-driven P/D-Device simulator.
//!
//! One request is one user with one device and one network path; the cloud is shared. The turns of a
//! conversation share their device: its session cache ([`caches`]) and, under the one-answer rule, an
//! option, its time (`busy`: a request that finds it busy goes to the cloud, or waits). The simulator
//! runs on [`queue::EventQueue`] (the order of [`crate::event_loop::EventLoop`]) and returns to the
//! caller at each request arrival, where a policy (in Python) picks a [`Plan`]; every token-level event
//! stays here.
//!
//! Per mode (all times from the request's arrival `t0`; `d` is the per-request one-way network delay):
//! - `Cloud`: the cloud generates every token; each is displayed when it arrives (`emit + d`).
//! - `Device`: the device prefills the whole prompt and decodes every token.
//! - `Pd` (P/D-Device): the cloud is asked for `min(k + 1, output)` tokens. The device starts prefilling
//!   at once (or, with refinement `r < 1`, when the refined prompt arrives with the first cloud token),
//!   then prefills the received cloud tokens in chunks; as soon as it has prefilled every received token
//!   it takes over: the rest of the cloud stream is cancelled (the cloud hears of it `d` later) and the
//!   device decodes from that position. Cloud tokens are displayed through the
//!   [`crate::pacing::SpeedController`] with the device's hand-off estimate, revised after each prefill
//!   step and fixed at the take-over.
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
//! Determinism: events tie-break by (time, priority, seq); the caller samples network delays with an
//! explicit seed; the device's step spread draws each call's factor from a hash of the call ([`jitter`]),
//! never from a generator's state, so no draw depends on the order events run in.
//!
//! Files: `inputs` (what a run simulates, checked), `decide` (a plan applied), `busy` (one answer at a
//! time per device, an option), `display` (what reaches the screen), `pd` and `spec` (the split and
//! speculative modes' events), `clock` (the clock's range), [`jitter`] (the device's step spread),
//! [`queue`] (the event queue), `live` (the requests in flight, each dropped when it ends), [`cloud`],
//! [`caches`], [`metrics`], [`results`], [`plan`] and [`policy`].

mod busy;
pub mod caches;
mod clock;
pub mod cloud;
mod decide;
mod display;
pub mod fleet;
mod inputs;
pub mod jitter;
mod live;
pub mod metrics;
mod pd;
pub mod plan;
pub mod policy;
pub mod queue;
pub mod results;
mod spec;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::cost::{DeviceCost, KSite, KSites};
use crate::error::{CoreError, Result};
use crate::time::Nanos;
use busy::DeviceHolds;
pub use busy::{DeviceBusy, WhenBusy};
use caches::{DeviceCache, Held, PrefixCache};
use cloud::{Cloud, CloudConfig, CloudLoad, Emission};
use fleet::Devices;
pub use fleet::FleetClass;
pub use inputs::{Conversations, Inputs, Wire};
use live::{Pd, RaceState, Reqs};
use metrics::GapHistogram;
pub use plan::{Mode, Plan};
use queue::EventQueue;
pub use results::{DecodedAt, Results, ServedBy, Summary, Timeline};

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

/// The simulator.
#[derive(Debug)]
pub struct Simulator {
    inp: Inputs,
    /// `inp.one_way_s` in the clock's nanoseconds.
    one_way: Vec<Nanos>,
    /// Each request's device and downlink ([`fleet`]).
    devices: Devices,
    cloud: Cloud,
    lp: EventQueue<Ev>,
    /// The requests in flight ([`live`]).
    reqs: Reqs,
    /// The results, each request's written as it is retired and as its bytes and tokens arrive.
    out: Results,
    /// The results were moved out ([`Simulator::take_results`]).
    results_taken: bool,
    hist: GapHistogram,
    pending_decision: Option<u32>,
    finished: usize,
    emitted: Vec<Emission>,
    /// Recorded timelines by request (empty: nothing recorded, the common case, checked first).
    timelines: BTreeMap<u32, Timeline>,
    device_cache: DeviceCache,
    prefix_cache: PrefixCache,
    holds: DeviceHolds,
}

impl Simulator {
    /// Validates the inputs and builds a simulator positioned before the first arrival.
    pub fn new(inp: Inputs, cloud: CloudConfig, device: DeviceCost) -> Result<Self> {
        let mut inp = inp;
        inp.check()?;
        let n = inp.arrival.len();
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
        let mut lp = EventQueue::with_capacity(1024);
        if n > 0 {
            lp.schedule(inp.arrival[0], PRIO_ARRIVE, Ev::Arrive(0))?;
        }
        let devices = Devices::single(device, inp.bandwidth_bytes_per_s);
        Ok(Self {
            inp,
            one_way,
            devices,
            cloud,
            lp,
            reqs: Reqs::new(n),
            out: Results::filled(n),
            results_taken: false,
            hist: GapHistogram::default(),
            pending_decision: None,
            finished: 0,
            emitted: Vec::new(),
            timelines: BTreeMap::new(),
            device_cache,
            prefix_cache,
            holds: DeviceHolds::default(),
        })
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
        self.reqs.len() == 0
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
                    self.reqs.arrive(i);
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
                    self.out.cloud_cached_tokens[i as usize] = f64::from(cached);
                    self.cloud.submit_cached(
                        i,
                        self.inp.prompt[i as usize],
                        cached,
                        quota,
                        sites,
                        spec,
                        &mut self.lp,
                    )?;
                    self.submitted(i, quota);
                }
                Ev::IterEnd(r) => {
                    let mut emitted = std::mem::take(&mut self.emitted);
                    emitted.clear();
                    self.cloud.iteration_end(r, now, &mut self.lp, &mut emitted)?;
                    for e in &emitted {
                        self.on_emission(e.req, e.first, e.tokens, now)?;
                    }
                    self.emitted = emitted;
                }
                Ev::KvArrive(i, r) => self.cloud.kv_arrived(i, r, &mut self.lp)?,
                Ev::CloudCancel(i) => self.cloud.cancel(i),
                Ev::TokenArrive(i) => self.on_token_arrive(i, now)?,
                Ev::PromptDone(i) => self.on_prompt_done(i, now)?,
                Ev::ChunkDone(i, n) => self.on_chunk_done(i, n, now)?,
                Ev::Display(i, gen) => self.on_display(i, gen, now)?,
                Ev::SpecDrafts(i) => self.cloud.drafts_arrived(i, &mut self.lp)?,
                Ev::SpecResult(i, n) => self.on_spec_result(i, n, now)?,
            }
            self.cloud_departures();
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
}
