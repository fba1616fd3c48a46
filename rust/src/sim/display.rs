//! What reaches the screen: the cloud's tokens as each mode treats them on arrival, the device's own
//! tokens from its hand-off position, and the request's end.

use super::jitter::{jittered, prompt_time, Call};
use super::{Ev, Held, Mode, RaceState, Simulator, PRIO_TOKEN};
use crate::cost::device::to_nanos;
use crate::error::Result;
use crate::time::Nanos;

impl Simulator {
    /// Cloud tokens emitted at `now` head for request `i`'s device: each goes down the wire, and its mode
    /// decides what the device does with it.
    pub(super) fn on_emission(&mut self, i: u32, first: bool, tokens: u32, now: Nanos) -> Result<()> {
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
        // every emitted token goes down the wire, displayed or not (a verification round's at once)
        self.received(i, f64::from(tokens) * wire.stream_bytes_per_token, arrive);
        if first {
            self.out.cloud_ttft_s[iu] = (arrive - self.inp.arrival[iu]).as_secs();
        }
        // a retired request has no split state (it is done): nothing more arrives with its tokens
        let Some(req) = self.reqs.get(i) else { return Ok(()) };
        let plan = req.plan.expect("planned");
        if let Some(pd) = req.pd.as_ref().filter(|_| first && plan.refine_ratio < 1.0) {
            let bytes = f64::from(pd.prompt_len) * wire.prompt_bytes_per_token;
            self.received(i, bytes, arrive);
        }
        let req = &mut self.reqs[iu];
        if req.done {
            return Ok(());
        }
        match plan.mode {
            Mode::Cloud => self.display_cloud_inline(i, arrive),
            Mode::Race => {
                if req.race == RaceState::Open {
                    let device_ready = self.inp.arrival[iu]
                        + prompt_time(self.devices.of(i), i, self.inp.prompt[iu], req.device_cached);
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
                if self.reqs.get(i).is_none_or(|r| r.done) {
                    return self.device_done(i, arrive); // a one-token answer
                }
                let prompt = self.inp.prompt[iu];
                // the device already holds its cached prefix: only the rest is sent
                let bytes =
                    f64::from(prompt - self.reqs[iu].device_cached) * self.devices.of(i).kv_bytes_per_token();
                let what = "the download of its KV cache (the device's bandwidth)";
                let kv_at =
                    self.on_clock(i, arrive + to_nanos(bytes / self.devices.bandwidth_of(i)), what)?;
                self.received(i, bytes, kv_at);
                // token 0 came from the cloud; the device runs it through to produce token 1
                let step = self.devices.of(i).tpot(u64::from(prompt));
                let ready = kv_at + jittered(step, self.devices.of(i).step_spread(), i, Call::Decode, 1, 1);
                self.finish_on_device(i, ready, 1, plan.pace.min_tpot())?;
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

    /// Records the display of one of request `i`'s tokens at `t`.
    pub(super) fn record(&mut self, i: u32, t: Nanos, from_cloud: bool) {
        let arrival = self.inp.arrival[i as usize];
        self.reqs[i as usize].metrics.record(arrival, t, self.inp.qoe, &mut self.hist);
        if let Some(tl) = self.timeline_of(i) {
            tl.displays.push(t);
            tl.from_cloud.push(from_cloud);
        }
    }

    /// Displays a cloud token at its arrival `at`, finishing the request with its last token.
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
    /// one decode step apart (each its TPOT times its factor, [`super::jitter`]), none sooner than `min_tpot` after the previous display; the device then holds the
    /// context it computed, each token from the end of the step that ran it ([`super::caches`]).
    pub(super) fn finish_on_device(
        &mut self,
        i: u32,
        first_ready: Nanos,
        from: u32,
        min_tpot: Nanos,
    ) -> Result<()> {
        let iu = i as usize;
        let out = self.inp.output[iu];
        let (arrival, qoe) = (self.inp.arrival[iu], self.inp.qoe);
        let ctx0 = u64::from(self.reqs[iu].pd.as_ref().map_or(self.inp.prompt[iu], |p| p.prompt_len));
        let refined = self.reqs[iu].plan.is_some_and(|p| p.refine_ratio < 1.0);
        // a refined prompt's cache is no prefix of the conversation
        let keeps = !refined && self.device_cache.keeps();
        let mut later = Vec::with_capacity(if keeps { (out - from - 1) as usize } else { 0 });
        // the token at position `pos` is followed by a decode step at context `ctx0 + pos + 1`: read from
        // the device's kept steps, walked past them
        let (device, kept) = self.devices.steps_to(i, ctx0 + u64::from(out) + 1);
        let first_context = ctx0 + u64::from(from) + 1;
        let mut steps = kept
            .get(usize::try_from(first_context).unwrap_or(usize::MAX)..)
            .unwrap_or_default()
            .iter()
            .copied()
            .chain(device.tpot_steps(first_context.max(kept.len() as u64)));
        let spread = device.step_spread();
        let hist = &mut self.hist;
        let mut timeline = if self.timelines.is_empty() { None } else { self.timelines.get_mut(&i) };
        let req = &mut self.reqs[iu];
        let mut ready = first_ready;
        let mut last_ready = first_ready;
        let mut prev = req.metrics.first().map(|_| req.metrics.last());
        for pos in from..out {
            last_ready = ready;
            let t = prev.map_or(ready, |p| ready.max(p + min_tpot));
            if t > Nanos::LIMIT {
                // past the clock (saturated there, if it came to that): the rest would be too
                prev = Some(t);
                break;
            }
            if pos == from {
                req.first_device_display = Some(t);
            }
            req.metrics.record(arrival, t, qoe, hist);
            if let Some(tl) = timeline.as_mut() {
                tl.displays.push(t);
                tl.from_cloud.push(false);
            }
            prev = Some(t);
            let step = steps.next().expect("an endless sequence of steps");
            ready += jittered(step, spread, i, Call::Decode, u64::from(pos) + 1, 1);
            // the step that produced token `pos + 1` ran token `pos` through the model: its KV exists now
            if keeps && pos + 1 < out {
                later.push(ready);
            }
        }
        req.device_decode_tokens += out - from;
        if req.handoff_pos < 0 {
            req.handoff_pos = i64::from(from);
        }
        drop(steps);
        let reused = u64::from(req.device_cached);
        // the last display comes after every step that ran a token, or is the first past the clock
        let last = prev.expect("at least one token");
        self.on_clock(i, last, "the device's decode of its answer ([prefill] seconds, [decode] tpot_s)")?;
        // the device holds its prompt and the answer but its last token, which is never run through the
        // model: the prompt and the tokens before `from` once the first is ready, then one per step
        let held = if refined {
            Held::nothing()
        } else {
            Held { reused, ready: ctx0 + u64::from(from), at: first_ready, later }
        };
        self.record_device_cache(i, held);
        self.finish(i);
        // its device work ends with the step that produced its last token
        self.device_done(i, last_ready)
    }
}
