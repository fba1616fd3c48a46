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
//!
//! Determinism: events tie-break by (time, priority, seq); no randomness inside (the caller samples
//! network delays with an explicit seed).

pub mod cloud;
pub mod device;
pub mod metrics;

use crate::buffer::{Receipt, TokenBuffer};
use crate::error::{CoreError, Result};
use crate::event_loop::EventLoop;
use crate::pacing::{PaceConfig, SpeedController};
use crate::time::Nanos;
use cloud::{Cloud, CloudConfig, CloudLoad, Emission};
use device::DeviceModel;
use metrics::{DisplayMetrics, GapHistogram, QoeParams};

pub(crate) const PRIO_CLOUD: i32 = 0;
const PRIO_TOKEN: i32 = 1;
const PRIO_DEVICE: i32 = 2;
const PRIO_DISPLAY: i32 = 3;
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
}

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Cloud only.
    Cloud = 0,
    /// Device only.
    Device = 1,
    /// P/D-Device.
    Pd = 2,
    /// P/D-Device without the speed controller.
    Naive = 3,
    /// Cloud prefill and KV-cache transfer to the device.
    KvTransfer = 4,
    /// Cloud and device race for the first token.
    Race = 5,
}

impl Mode {
    /// The names used at the Python boundary, indexed by discriminant.
    pub const NAMES: [&'static str; 6] = ["cloud", "device", "pd", "naive", "kv-transfer", "race"];

    /// Parses a mode name.
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "cloud" => Self::Cloud,
            "device" => Self::Device,
            "pd" => Self::Pd,
            "naive" => Self::Naive,
            "kv-transfer" => Self::KvTransfer,
            "race" => Self::Race,
            other => {
                return Err(CoreError::invalid(
                    "mode",
                    format!("is {other:?}"),
                    "use one of cloud, device, pd, naive, kv-transfer, race",
                ))
            }
        })
    }
}

/// A policy's decision for one request.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// The mode.
    pub mode: Mode,
    /// Cloud decode tokens after the first (P/D-Device and naive split).
    pub k: u32,
    /// Fraction of the prompt the device prefills, in (0, 1].
    pub refine_ratio: f64,
    /// Display pacing bounds.
    pub pace: PaceConfig,
}

impl Plan {
    /// Validates a plan.
    pub fn new(mode: Mode, k: u32, refine_ratio: f64, pace: PaceConfig) -> Result<Self> {
        if !(refine_ratio.is_finite() && refine_ratio > 0.0 && refine_ratio <= 1.0) {
            return Err(CoreError::invalid(
                "refine_ratio",
                format!("is {refine_ratio}"),
                "give the kept fraction of the prompt in (0, 1]",
            ));
        }
        Ok(Self { mode, k, refine_ratio, pace })
    }
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
    /// One-way network delay per request.
    pub one_way: Vec<Nanos>,
    /// Device downlink bandwidth, bytes/s (KV transfer).
    pub bandwidth_bytes_per_s: f64,
    /// QoE parameters.
    pub qoe: QoeParams,
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
    cloud_first_arrival: Option<Nanos>,
    last_cloud_display: Option<Nanos>,
    first_device_display: Option<Nanos>,
    handoff_pos: i64,
    device_prefill_tokens: u32,
    device_decode_tokens: u32,
    cloud_kept: u32,
    cloud_discarded: u32,
}

impl Default for Req {
    fn default() -> Self {
        Self {
            plan: None,
            metrics: DisplayMetrics::default(),
            done: false,
            race: RaceState::Open,
            pd: None,
            cloud_first_arrival: None,
            last_cloud_display: None,
            first_device_display: None,
            handoff_pos: -1,
            device_prefill_tokens: 0,
            device_decode_tokens: 0,
            cloud_kept: 0,
            cloud_discarded: 0,
        }
    }
}

/// Per-request results, one entry per request.
#[derive(Debug, Clone, Default)]
pub struct Results {
    /// Time to first displayed token, s.
    pub ttft_s: Vec<f64>,
    /// Arrival to last displayed token, s.
    pub e2e_s: Vec<f64>,
    /// Mean display gap after the first token, s.
    pub tpot_s: Vec<f64>,
    /// Largest display gap, s.
    pub max_gap_s: Vec<f64>,
    /// Display gap at the hand-off (NaN without one), s.
    pub handoff_gap_s: Vec<f64>,
    /// Part of the hand-off gap above the plan's `max_tpot`, s.
    pub handoff_stall_s: Vec<f64>,
    /// Andes-style QoE.
    pub qoe: Vec<f64>,
    /// Cloud GPU-seconds in prefill.
    pub cloud_prefill_gpu_s: Vec<f64>,
    /// Cloud GPU-seconds in decode.
    pub cloud_decode_gpu_s: Vec<f64>,
    /// Tokens the cloud decoded (after the first), displayed or not.
    pub cloud_decode_tokens: Vec<f64>,
    /// Cloud tokens displayed.
    pub cloud_tokens_kept: Vec<f64>,
    /// Cloud tokens that reached the device after the hand-off.
    pub cloud_tokens_discarded: Vec<f64>,
    /// Tokens the device prefilled (prompt and received tokens).
    pub device_prefill_tokens: Vec<f64>,
    /// Tokens the device decoded.
    pub device_decode_tokens: Vec<f64>,
    /// First device position (-1 without a hand-off).
    pub handoff_pos: Vec<f64>,
    /// 0 cloud, 1 device, 2 both.
    pub served_by: Vec<u8>,
    /// Arrival of the cloud's first token at the device, from request arrival (NaN if none).
    pub cloud_ttft_s: Vec<f64>,
    /// Mean cloud-side time between decode tokens (NaN with fewer than two).
    pub cloud_tpot_s: Vec<f64>,
    /// Tokens displayed.
    pub displayed_tokens: Vec<f64>,
    /// Time of the last display, s.
    pub finish_s: Vec<f64>,
    /// Mode index (see [`Mode::NAMES`]).
    pub mode: Vec<u8>,
}

/// Aggregate counters of a run.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Events processed.
    pub events: u64,
    /// Cloud iterations.
    pub iterations: u64,
    /// Time of the last event, s.
    pub makespan_s: f64,
    /// Cloud GPU-seconds in prefill.
    pub cloud_gpu_s_prefill: f64,
    /// Cloud GPU-seconds in decode.
    pub cloud_gpu_s_decode: f64,
    /// Inter-token latency percentiles over all displayed tokens, s.
    pub itl_p50_s: f64,
    /// See `itl_p50_s`.
    pub itl_p90_s: f64,
    /// See `itl_p50_s`.
    pub itl_p99_s: f64,
    /// Mean inter-token latency, s.
    pub itl_mean_s: f64,
}

/// The simulator.
#[derive(Debug)]
pub struct Simulator {
    inp: Inputs,
    device: DeviceModel,
    cloud: Cloud,
    lp: EventLoop<Ev>,
    reqs: Vec<Req>,
    hist: GapHistogram,
    pending_decision: Option<u32>,
    finished: usize,
    emitted: Vec<Emission>,
    timeline: Option<(u32, Timeline)>,
}

/// Token-level record of one request, for plots: when each cloud token reached the device and when
/// each token was displayed and from which source.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// Arrival times of cloud tokens at the device.
    pub cloud_arrivals: Vec<Nanos>,
    /// Display times, in output order.
    pub displays: Vec<Nanos>,
    /// Whether each displayed token came from the cloud.
    pub from_cloud: Vec<bool>,
    /// When the device took over, if it did.
    pub handoff: Option<Nanos>,
}

fn secs_to_nanos(s: f64) -> Nanos {
    Nanos((s * 1e9).round() as i64)
}

impl Simulator {
    /// Validates the inputs and builds a simulator positioned before the first arrival.
    pub fn new(inp: Inputs, cloud: CloudConfig, device: DeviceModel) -> Result<Self> {
        let n = inp.arrival.len();
        for (name, len) in [
            ("prompt_tokens", inp.prompt.len()),
            ("output_tokens", inp.output.len()),
            ("one_way_s", inp.one_way.len()),
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
        let cloud = Cloud::new(cloud, n)?;
        let mut lp = EventLoop::with_capacity(1024);
        if n > 0 {
            lp.schedule(inp.arrival[0], PRIO_ARRIVE, Ev::Arrive(0))?;
        }
        let reqs = (0..n).map(|_| Req::default()).collect();
        Ok(Self {
            inp,
            device,
            cloud,
            lp,
            reqs,
            hist: GapHistogram::default(),
            pending_decision: None,
            finished: 0,
            emitted: Vec::new(),
            timeline: None,
        })
    }

    /// Records the token-level timeline of request `i` (one request per run; call before running).
    pub fn record_timeline(&mut self, i: u32) -> Result<()> {
        if i as usize >= self.reqs.len() {
            return Err(CoreError::invalid(
                "request",
                format!("= {i} but the workload has {} requests", self.reqs.len()),
                "pick a request index in range",
            ));
        }
        self.timeline = Some((i, Timeline::default()));
        Ok(())
    }

    /// The recorded timeline, if any.
    #[must_use]
    pub fn timeline(&self) -> Option<&Timeline> {
        self.timeline.as_ref().map(|(_, t)| t)
    }

    fn timeline_of(&mut self, i: u32) -> Option<&mut Timeline> {
        match self.timeline.as_mut() {
            Some((j, t)) if *j == i => Some(t),
            _ => None,
        }
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
        self.cloud.lone_prefill_s(prompt)
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
                    self.cloud.submit(i, self.inp.prompt[i as usize], quota, &mut self.lp);
                }
                Ev::IterEnd(r) => {
                    let mut emitted = std::mem::take(&mut self.emitted);
                    emitted.clear();
                    self.cloud.iteration_end(r, now, &mut self.lp, &mut emitted);
                    for e in &emitted {
                        self.on_emission(e.req, e.first, now)?;
                    }
                    self.emitted = emitted;
                }
                Ev::KvArrive(i, r) => self.cloud.kv_arrived(i, r, &mut self.lp),
                Ev::CloudCancel(i) => self.cloud.cancel(i),
                Ev::TokenArrive(i) => self.on_token_arrive(i, now)?,
                Ev::PromptDone(i) => self.on_prompt_done(i, now)?,
                Ev::ChunkDone(i, n) => self.on_chunk_done(i, n, now)?,
                Ev::Display(i, gen) => self.on_display(i, gen, now)?,
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
        self.pending_decision = None;
        let iu = i as usize;
        let t0 = self.inp.arrival[iu];
        let d = self.inp.one_way[iu];
        self.reqs[iu].plan = Some(plan);
        if plan.mode != Mode::Device {
            self.lp.schedule(t0 + d, PRIO_CLOUD, Ev::CloudSubmit(i))?;
        }
        match plan.mode {
            Mode::Cloud | Mode::KvTransfer => {}
            Mode::Device => {
                let p = self.device.prefill(u64::from(self.inp.prompt[iu]));
                self.reqs[iu].device_prefill_tokens = self.inp.prompt[iu];
                self.finish_on_device(i, t0 + p, 0, plan.pace.min_tpot());
            }
            Mode::Race => {
                let p = self.device.prefill(u64::from(self.inp.prompt[iu]));
                self.lp.schedule(t0 + p, PRIO_DEVICE, Ev::PromptDone(i))?;
            }
            Mode::Pd | Mode::Naive => {
                let quota = self.cloud_quota(i);
                let prompt_len = ((f64::from(self.inp.prompt[iu]) * plan.refine_ratio).ceil() as u32).max(1);
                let ctrl = (plan.mode == Mode::Pd)
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
                    let p = self.device.prefill(u64::from(prompt_len));
                    pd.device_free_at = Some(t0 + p);
                    self.lp.schedule(t0 + p, PRIO_DEVICE, Ev::PromptDone(i))?;
                }
                self.reqs[iu].pd = Some(pd);
                self.revise_handoff(i);
            }
        }
        Ok(())
    }

    fn on_emission(&mut self, i: u32, first: bool, now: Nanos) -> Result<()> {
        let iu = i as usize;
        let arrive = now + self.inp.one_way[iu];
        if let Some(tl) = self.timeline_of(i) {
            tl.cloud_arrivals.push(arrive);
        }
        let req = &mut self.reqs[iu];
        if first {
            req.cloud_first_arrival = Some(arrive);
        }
        if req.done {
            return Ok(());
        }
        let plan = req.plan.expect("planned");
        match plan.mode {
            Mode::Cloud => self.display_cloud_inline(i, arrive),
            Mode::Race => {
                if req.race == RaceState::Open {
                    let device_ready =
                        self.inp.arrival[iu] + self.device.prefill(u64::from(self.inp.prompt[iu]));
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
                let bytes = f64::from(prompt) * self.device.kv_bytes_per_token();
                let kv_at = arrive + secs_to_nanos(bytes / self.inp.bandwidth_bytes_per_s);
                // token 0 came from the cloud; the device runs it through to produce token 1
                let ready = kv_at + self.device.tpot(u64::from(prompt));
                self.finish_on_device(i, ready, 1, plan.pace.min_tpot());
            }
            Mode::Pd | Mode::Naive => {
                self.lp.schedule(arrive, PRIO_TOKEN, Ev::TokenArrive(i))?;
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
        let ctx0 = u64::from(self.reqs[iu].pd.as_ref().map_or(self.inp.prompt[iu], |p| p.prompt_len));
        let mut ready = first_ready;
        let mut prev = self.reqs[iu].metrics.first().map(|_| self.reqs[iu].metrics.last());
        for pos in from..out {
            let t = prev.map_or(ready, |p| ready.max(p + min_tpot));
            if pos == from {
                self.reqs[iu].first_device_display = Some(t);
            }
            self.record(i, t, false);
            prev = Some(t);
            ready += self.device.tpot(ctx0 + u64::from(pos) + 1);
        }
        let req = &mut self.reqs[iu];
        req.device_decode_tokens += out - from;
        if req.handoff_pos < 0 {
            req.handoff_pos = i64::from(from);
        }
        self.finish(i);
    }

    fn finish(&mut self, i: u32) {
        let req = &mut self.reqs[i as usize];
        debug_assert!(!req.done);
        req.done = true;
        req.pd = None;
        self.finished += 1;
    }

    fn on_token_arrive(&mut self, i: u32, now: Nanos) -> Result<()> {
        let iu = i as usize;
        let out = self.inp.output[iu];
        let refined = self.reqs[iu].plan.is_some_and(|p| p.refine_ratio < 1.0);
        let Some(pd) = self.reqs[iu].pd.as_mut() else {
            self.reqs[iu].cloud_discarded += 1; // the request already finished on the device
            return Ok(());
        };
        let Receipt::Kept(pos) = pd.buf.receive_cloud()? else {
            self.reqs[iu].cloud_discarded += 1;
            return Ok(());
        };
        if pos == 0 && refined {
            // the refined prompt arrives with the first token: the device starts prefilling now
            let p = self.device.prefill(u64::from(pd.prompt_len));
            pd.device_free_at = Some(now + p);
            self.lp.schedule(now + p, PRIO_DEVICE, Ev::PromptDone(i))?;
        }
        pd.first_arrival.get_or_insert(now);
        pd.last_arrival = now;
        let complete = pd.buf.received() == out;
        if complete {
            // the cloud delivered the whole answer: the device is not needed
            pd.device_stopped = true;
        }
        if let Some(c) = pd.ctrl.as_mut() {
            c.push(now)?;
            if complete {
                c.set_handoff(Some(now));
            } else {
                self.revise_handoff(i);
            }
            self.schedule_display(i, now)?;
        } else {
            pd.buf.display()?;
            self.reqs[iu].cloud_kept += 1;
            self.reqs[iu].last_cloud_display = Some(now);
            self.record(i, now, true);
            if complete {
                self.finish(i);
            }
        }
        Ok(())
    }

    /// The device's estimate of when its own first token will be ready (ours): the later of
    /// - its prefill finishing: the step under way, then the `quota` tokens not yet being prefilled
    ///   appended in one step;
    /// - the last cloud token arriving (at the stream's observed pace, or the cloud's lone decode step
    ///   before two tokens have arrived) and then being prefilled in one forward pass.
    ///
    /// The speed controller paces to that estimate plus one device decode step at the hand-off's context
    /// (the hand-off guard, ours, the live runtime's rule too: `pdcore.runtime.handoff`): a live
    /// estimate is off by about one model call, and a buffer that lasts a step longer costs only the
    /// device's first token waiting that step, while one that runs out a step early is a stall.
    ///
    /// Revised at every arrival and every prefill step, so the speed controller spends the buffer over
    /// the time the device really needs.
    fn revise_handoff(&mut self, i: u32) {
        let iu = i as usize;
        let quota = self.cloud.reqs[iu].quota;
        let prior = secs_to_nanos(self.cloud.lone_decode_s(self.inp.prompt[iu]));
        let device = &self.device;
        let Some(pd) = self.reqs[iu].pd.as_mut() else { return };
        let Some(free_at) = pd.device_free_at else { return };
        let started = pd.buf.prefilled() + pd.in_flight;
        let left = quota.saturating_sub(started);
        let prompt = u64::from(pd.prompt_len);
        let mut h = free_at;
        if left > 0 {
            h += device.append(prompt + u64::from(started), u64::from(left));
        }
        let received = pd.buf.received();
        if let Some(first) = pd.first_arrival {
            if received < quota {
                let pace = if received >= 2 {
                    Nanos((pd.last_arrival - first).0 / i64::from(received - 1))
                } else {
                    prior
                };
                let last = pd.last_arrival + Nanos(pace.0 * i64::from(quota - received));
                h = h.max(last + device.append(prompt + u64::from(quota) - 1, 1));
            }
        }
        h += device.tpot(prompt + u64::from(quota));
        if let Some(c) = pd.ctrl.as_mut() {
            c.set_handoff(Some(h));
        }
    }

    fn schedule_display(&mut self, i: u32, now: Nanos) -> Result<()> {
        let pd = self.reqs[i as usize].pd.as_mut().expect("pd state");
        let Some(due) = pd.ctrl.as_ref().and_then(SpeedController::next_due) else { return Ok(()) };
        let at = due.max(now);
        if pd.display_at == Some(at) {
            return Ok(());
        }
        pd.display_gen += 1;
        pd.display_at = Some(at);
        self.lp.schedule(at, PRIO_DISPLAY, Ev::Display(i, pd.display_gen))?;
        Ok(())
    }

    fn on_display(&mut self, i: u32, gen: u32, now: Nanos) -> Result<()> {
        let iu = i as usize;
        let out = self.inp.output[iu];
        let Some(pd) = self.reqs[iu].pd.as_mut() else { return Ok(()) };
        if gen != pd.display_gen {
            return Ok(());
        }
        pd.display_at = None;
        let ctrl = pd.ctrl.as_mut().expect("paced");
        let t = ctrl.mark_shown(Some(now))?;
        pd.buf.display()?;
        let done = pd.buf.displayed() == out;
        self.reqs[iu].cloud_kept += 1;
        self.reqs[iu].last_cloud_display = Some(t);
        self.record(i, t, true);
        if done {
            self.finish(i);
            return Ok(());
        }
        self.schedule_display(i, now)
    }

    fn on_prompt_done(&mut self, i: u32, now: Nanos) -> Result<()> {
        let iu = i as usize;
        let plan = self.reqs[iu].plan.expect("planned");
        if plan.mode == Mode::Race {
            let req = &mut self.reqs[iu];
            if req.race == RaceState::Open {
                req.race = RaceState::Device;
                req.device_prefill_tokens = self.inp.prompt[iu];
                self.lp.schedule(now + self.inp.one_way[iu], PRIO_CLOUD, Ev::CloudCancel(i))?;
                self.finish_on_device(i, now, 0, plan.pace.min_tpot());
            }
            return Ok(());
        }
        let Some(pd) = self.reqs[iu].pd.as_mut() else { return Ok(()) };
        if pd.device_stopped {
            return Ok(());
        }
        pd.buf.prefill_prompt();
        self.reqs[iu].device_prefill_tokens += self.reqs[iu].pd.as_ref().map_or(0, |p| p.prompt_len);
        self.device_step(i, now)
    }

    fn on_chunk_done(&mut self, i: u32, n: u32, now: Nanos) -> Result<()> {
        let iu = i as usize;
        let Some(pd) = self.reqs[iu].pd.as_mut() else { return Ok(()) };
        if pd.device_stopped {
            return Ok(());
        }
        pd.buf.prefill_received(n)?;
        pd.in_flight = 0;
        self.reqs[iu].device_prefill_tokens += n;
        self.device_step(i, now)
    }

    /// After a prefill step: prefill what arrived meanwhile, or take over when caught up.
    fn device_step(&mut self, i: u32, now: Nanos) -> Result<()> {
        let iu = i as usize;
        let quota = self.cloud.reqs[iu].quota;
        let pd = self.reqs[iu].pd.as_mut().expect("pd state");
        let todo = pd.buf.received() - pd.buf.prefilled();
        if todo > 0 {
            let ctx = u64::from(pd.prompt_len + pd.buf.prefilled());
            let done_at = now + self.device.append(ctx, u64::from(todo));
            pd.device_free_at = Some(done_at);
            pd.in_flight = todo;
            self.lp.schedule(done_at, PRIO_DEVICE, Ev::ChunkDone(i, todo))?;
            self.revise_handoff(i);
            return self.schedule_display(i, now);
        }
        // caught up: take over
        let pos = pd.buf.take_over()?;
        let plan = self.reqs[iu].plan.expect("planned");
        if pos < quota {
            self.cloud_cancel_from_device(i, now)?;
        }
        let pd = self.reqs[iu].pd.as_mut().expect("pd state");
        let mut flushed = Vec::new();
        if let Some(c) = pd.ctrl.as_mut() {
            c.set_handoff(Some(now));
            c.set_expected(Some(c.received()));
            // flush buffered cloud tokens with the hand-off now known
            while let Some(due) = c.next_due() {
                flushed.push(c.mark_shown(Some(due.max(now)))?);
                pd.buf.display()?;
            }
            pd.display_gen += 1; // invalidate any pending display event
        }
        for t in flushed {
            self.record(i, t, true);
            self.reqs[iu].cloud_kept += 1;
            self.reqs[iu].last_cloud_display = Some(t);
        }
        if let Some(tl) = self.timeline_of(i) {
            tl.handoff = Some(now);
        }
        self.reqs[iu].handoff_pos = i64::from(pos);
        self.finish_on_device(i, now, pos, plan.pace.min_tpot());
        Ok(())
    }

    fn cloud_cancel_from_device(&mut self, i: u32, now: Nanos) -> Result<()> {
        self.lp.schedule(now + self.inp.one_way[i as usize], PRIO_CLOUD, Ev::CloudCancel(i))?;
        Ok(())
    }

    /// Per-request results (call after [`next_decision`](Self::next_decision) returned `None`).
    #[must_use]
    pub fn results(&self) -> Results {
        let n = self.reqs.len();
        let mut r = Results::default();
        let nan = f64::NAN;
        for (iu, req) in self.reqs.iter().enumerate() {
            let arrival = self.inp.arrival[iu];
            let m = &req.metrics;
            let c = &self.cloud.reqs[iu];
            let plan = req.plan;
            let first = m.first();
            r.ttft_s.push(first.map_or(nan, |f| (f - arrival).as_secs()));
            r.e2e_s.push(if first.is_some() { (m.last() - arrival).as_secs() } else { nan });
            r.tpot_s.push(m.tpot_s());
            r.max_gap_s.push(m.max_gap().as_secs());
            let gap = match (req.last_cloud_display, req.first_device_display) {
                (Some(c), Some(d)) => (d - c).as_secs(),
                _ => nan,
            };
            r.handoff_gap_s.push(gap);
            let max_tpot = plan.map_or(0.0, |p| p.pace.max_tpot().as_secs());
            r.handoff_stall_s.push(if gap.is_nan() { 0.0 } else { (gap - max_tpot).max(0.0) });
            r.qoe.push(m.qoe(arrival, self.inp.qoe));
            r.cloud_prefill_gpu_s.push(c.gpu_prefill_s);
            r.cloud_decode_gpu_s.push(c.gpu_decode_s);
            r.cloud_decode_tokens.push(f64::from(c.generated.saturating_sub(1)));
            r.cloud_tokens_kept.push(f64::from(req.cloud_kept));
            r.cloud_tokens_discarded.push(f64::from(c.generated.saturating_sub(req.cloud_kept)));
            r.device_prefill_tokens.push(f64::from(req.device_prefill_tokens));
            r.device_decode_tokens.push(f64::from(req.device_decode_tokens));
            r.handoff_pos.push(req.handoff_pos as f64);
            r.served_by.push(match (req.cloud_kept > 0, req.device_decode_tokens > 0) {
                (true, false) => 0,
                (false, true) => 1,
                _ => 2,
            });
            r.cloud_ttft_s.push(req.cloud_first_arrival.map_or(nan, |t| (t - arrival).as_secs()));
            r.cloud_tpot_s.push(if c.gap_count > 0 {
                c.gap_sum.as_secs() / f64::from(c.gap_count)
            } else {
                nan
            });
            r.displayed_tokens.push(f64::from(m.count()));
            r.finish_s.push(if first.is_some() { m.last().as_secs() } else { nan });
            r.mode.push(plan.map_or(u8::MAX, |p| p.mode as u8));
        }
        debug_assert_eq!(r.ttft_s.len(), n);
        r
    }

    /// Aggregate counters.
    #[must_use]
    pub fn summary(&self) -> Summary {
        Summary {
            events: self.lp.processed(),
            iterations: self.cloud.iterations,
            makespan_s: self.lp.now().as_secs(),
            cloud_gpu_s_prefill: self.cloud.gpu_prefill_s,
            cloud_gpu_s_decode: self.cloud.gpu_decode_s,
            itl_p50_s: self.hist.quantile_s(0.5),
            itl_p90_s: self.hist.quantile_s(0.9),
            itl_p99_s: self.hist.quantile_s(0.99),
            itl_mean_s: self.hist.mean_s(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloud::Deployment;
    use device::Curve;
    use proptest::prelude::*;

    fn cloud(deployment: Deployment) -> CloudConfig {
        CloudConfig {
            deployment,
            replicas: 1,
            prefill_replicas: 1,
            decode_replicas: 1,
            base_s: 0.005,
            prefill_token_s: 5e-5,
            prefill_attn_s: 1e-9,
            decode_seq_s: 1e-4,
            decode_context_s: 2e-8,
            max_batch_size: 16,
            max_tokens_per_iteration: 512,
            kv_cache_tokens: 20_000,
            gpus_per_replica: 1,
            kv_bytes_per_token: 131_072.0,
            kv_link_bytes_per_s: 25e9,
        }
    }

    fn device() -> DeviceModel {
        let p = Curve::new(vec![128.0, 1024.0], vec![0.5, 6.0], true, "p").unwrap();
        let t = Curve::new(vec![0.0, 2048.0], vec![0.015, 0.025], false, "t").unwrap();
        DeviceModel::new(p, t, 20_000.0).unwrap()
    }

    fn run(reqs: &[(i64, u32, u32)], plan: Plan, dep: Deployment) -> (Results, Simulator) {
        let inp = Inputs {
            arrival: reqs.iter().map(|r| Nanos::ms(r.0)).collect(),
            prompt: reqs.iter().map(|r| r.1).collect(),
            output: reqs.iter().map(|r| r.2).collect(),
            one_way: vec![Nanos::ms(10); reqs.len()],
            bandwidth_bytes_per_s: 10e6,
            qoe: QoeParams { ttft_s: 1.0, tokens_per_s: 10.0 },
        };
        let mut sim = Simulator::new(inp, cloud(dep), device()).unwrap();
        while let Some(i) = sim.next_decision().unwrap() {
            sim.decide(i, plan).unwrap();
        }
        (sim.results(), sim)
    }

    fn plan(mode: Mode, k: u32) -> Plan {
        Plan::new(mode, k, 1.0, PaceConfig::new(Nanos::ZERO, Nanos::ms(50)).unwrap()).unwrap()
    }

    #[test]
    fn device_only_ttft_is_the_prefill_time() {
        let (r, _) = run(&[(0, 1024, 5)], plan(Mode::Device, 0), Deployment::Colocated);
        assert!((r.ttft_s[0] - 6.0).abs() < 1e-9, "{}", r.ttft_s[0]);
    }

    #[test]
    fn cloud_only_light_load_ttft_is_rtt_plus_prefill() {
        let (r, sim) = run(&[(0, 1000, 3)], plan(Mode::Cloud, 0), Deployment::Colocated);
        let want = 0.020 + sim.cloud_lone_prefill_s(1000);
        assert!((r.ttft_s[0] - want).abs() < 1e-6, "{} vs {want}", r.ttft_s[0]);
    }

    #[test]
    fn pd_device_with_enough_tokens_is_smooth_and_hands_off() {
        let (r, _) = run(&[(0, 1024, 400)], plan(Mode::Pd, 200), Deployment::Disaggregated);
        assert!(r.ttft_s[0] < 0.2, "ttft {}", r.ttft_s[0]);
        assert!(r.max_gap_s[0] <= 0.050 + 1e-9, "max gap {}", r.max_gap_s[0]);
        assert!(r.handoff_pos[0] > 0.0);
        assert!((r.displayed_tokens[0] - 400.0).abs() < 0.5);
    }

    #[test]
    fn timeline_records_cloud_prefix_then_device() {
        let inp = Inputs {
            arrival: vec![Nanos::ZERO],
            prompt: vec![1024],
            output: vec![300],
            one_way: vec![Nanos::ms(10)],
            bandwidth_bytes_per_s: 10e6,
            qoe: QoeParams { ttft_s: 1.0, tokens_per_s: 10.0 },
        };
        let mut sim = Simulator::new(inp, cloud(Deployment::Disaggregated), device()).unwrap();
        sim.record_timeline(0).unwrap();
        while let Some(i) = sim.next_decision().unwrap() {
            sim.decide(i, plan(Mode::Pd, 200)).unwrap();
        }
        let tl = sim.timeline().unwrap();
        assert_eq!(tl.displays.len(), 300);
        assert!(tl.displays.windows(2).all(|w| w[0] <= w[1]));
        let cloud = tl.from_cloud.iter().take_while(|&&c| c).count();
        assert!(cloud > 0 && cloud < 300);
        assert!(tl.from_cloud[cloud..].iter().all(|&c| !c));
        assert!(tl.handoff.is_some());
        assert!(tl.cloud_arrivals.len() >= cloud);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn every_token_displayed_once(
            reqs in prop::collection::vec((0_i64..300, 1_u32..3000, 1_u32..300), 1..25),
            mode in 0_u8..6, k in 0_u32..200, disagg in any::<bool>(),
        ) {
            let mut reqs = reqs;
            let mut t = 0;
            for r in &mut reqs { t += r.0; r.0 = t; }
            let mode = Mode::parse(Mode::NAMES[mode as usize]).unwrap();
            let dep = if disagg { Deployment::Disaggregated } else { Deployment::Colocated };
            let (r, _) = run(&reqs, plan(mode, k), dep);
            for (i, req) in reqs.iter().enumerate() {
                prop_assert!((r.displayed_tokens[i] - f64::from(req.2)).abs() < 0.5);
                prop_assert!(r.ttft_s[i] > 0.0);
            }
        }
    }
}
