//! P/D-Device and the naive split inside the simulator: cloud tokens arrive, the device prefills them in
//! chunks, the speed controller paces the display to the hand-off estimate, and the device takes over.

use super::decide::PROMPT;
use super::jitter::{jittered, Call};
use super::{Ev, Held, Mode, RaceState, Simulator, PRIO_CLOUD, PRIO_DEVICE, PRIO_DISPLAY};
use crate::buffer::Receipt;
use crate::cost::device::to_nanos;
use crate::cost::handoff::{simulated_handoff_with, HandoffTerms, SimulatedProgress};
use crate::error::Result;
use crate::pacing::SpeedController;
use crate::time::Nanos;

impl Simulator {
    pub(super) fn on_token_arrive(&mut self, i: u32, now: Nanos) -> Result<()> {
        let iu = i as usize;
        let out = self.inp.output[iu];
        // a token after the request finished on the device is discarded (the cloud's count less the kept)
        let Some(req) = self.reqs.get(i) else { return Ok(()) };
        let refined = req.plan.is_some_and(|p| p.refine_ratio < 1.0);
        let prompt_done = req.device_prefill_tokens > 0;
        let reused = u64::from(req.device_cached);
        let Some(pd) = self.reqs.get_mut(i).and_then(|r| r.pd.as_mut()) else { return Ok(()) };
        let Receipt::Kept(pos) = pd.buf.receive_cloud()? else { return Ok(()) };
        if pos == 0 && refined {
            // the refined prompt arrives with the first token: the device starts prefilling now
            let price = self.devices.of(i).prefill(u64::from(pd.prompt_len));
            let tokens = u64::from(pd.prompt_len);
            let done = now + jittered(price, self.devices.of(i).step_spread(), i, Call::Prompt, 0, tokens);
            if done > Nanos::LIMIT {
                return self.on_clock(i, done, PROMPT).map(|_| ());
            }
            pd.device_free_at = Some(done);
            self.lp.schedule(done, PRIO_DEVICE, Ev::PromptDone(i))?;
        }
        pd.first_arrival.get_or_insert(now);
        pd.last_arrival = now;
        let complete = pd.buf.received() == out;
        let mut keep = None;
        if complete {
            // the cloud delivered the whole answer: the device is not needed; it keeps what it prefilled
            pd.device_stopped = true;
            if refined {
                keep = Some(Held::nothing());
            } else if prompt_done {
                let tokens = u64::from(pd.prompt_len) + u64::from(pd.buf.prefilled());
                keep = Some(Held { reused, ..Held::from(tokens, now) });
            }
        }
        if let Some(held) = keep {
            self.record_device_cache(i, held);
        }
        if complete {
            self.device_done(i, now)?;
        }
        let Some(pd) = self.reqs[iu].pd.as_mut() else { unreachable!("checked above") };
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

    /// Revises the speed controller's target: the device's estimated hand-off plus the guard
    /// (`crate::cost::handoff`, the one hand-off model, shared with the live runtime). Revised at every
    /// arrival and every prefill step, so the controller spends the buffer over the time the device
    /// really needs.
    pub(super) fn revise_handoff(&mut self, i: u32) {
        let iu = i as usize;
        let prior_pace = to_nanos(self.cloud.cost().lone_decode_s(self.inp.prompt[iu]));
        let device = self.devices.of(i);
        let Some(pd) = self.reqs.get_mut(i).and_then(|r| r.pd.as_mut()) else { return };
        let quota = pd.cloud_quota;
        let Some(free_at) = pd.device_free_at else { return };
        let terms = match pd.handoff_terms.as_mut() {
            Some(t) if (t.prompt, t.quota) == (pd.prompt_len, quota) => t,
            _ => pd.handoff_terms.insert(HandoffTerms::new(device, pd.prompt_len, quota)),
        };
        let h = simulated_handoff_with(
            device,
            &SimulatedProgress {
                free_at,
                prompt: pd.prompt_len,
                started: pd.buf.prefilled() + pd.in_flight,
                quota,
                received: pd.buf.received(),
                first_arrival: pd.first_arrival,
                last_arrival: pd.last_arrival,
                prior_pace,
            },
            terms,
        );
        if let Some(c) = pd.ctrl.as_mut() {
            c.set_handoff(Some(h));
        }
        let now = self.now();
        if let Some(tl) = self.timeline_of(i) {
            if tl.handoff_estimates.last().is_none_or(|&(_, last)| last != h) {
                tl.handoff_estimates.push((now, h));
            }
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

    pub(super) fn on_display(&mut self, i: u32, gen: u32, now: Nanos) -> Result<()> {
        let iu = i as usize;
        let out = self.inp.output[iu];
        // done (retired or not): a stale display
        let Some(pd) = self.reqs.get_mut(i).and_then(|r| r.pd.as_mut()) else { return Ok(()) };
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

    pub(super) fn on_prompt_done(&mut self, i: u32, now: Nanos) -> Result<()> {
        let iu = i as usize;
        let Some(plan) = self.reqs.get(i).map(|r| r.plan.expect("planned")) else {
            // retired: a race the cloud won leaves the device free now; a split or speculative request
            // has nothing left on the device
            if self.out.mode[iu] == Mode::Race as u8 {
                self.device_done(i, now)?;
            }
            return Ok(());
        };
        if plan.mode == Mode::Spec {
            return self.on_spec_prompt_done(i, now);
        }
        if plan.mode == Mode::Race {
            let req = &mut self.reqs[iu];
            if req.race == RaceState::Open {
                req.race = RaceState::Device;
                req.device_prefill_tokens = self.inp.prompt[iu] - req.device_cached;
                self.lp.schedule(now + self.one_way[iu], PRIO_CLOUD, Ev::CloudCancel(i))?;
                self.finish_on_device(i, now, 0, plan.pace.min_tpot())?;
            } else {
                // the cloud won: the device's prefill was for nothing, and it is free now
                self.device_done(i, now)?;
            }
            return Ok(());
        }
        let Some(pd) = self.reqs[iu].pd.as_mut() else { return Ok(()) };
        if pd.device_stopped {
            return Ok(());
        }
        pd.buf.prefill_prompt();
        let streaming = pd.buf.received() > 0;
        let prompt_len = pd.prompt_len;
        self.reqs[iu].device_prefill_tokens += prompt_len - self.reqs[iu].device_cached;
        if plan.mode == Mode::Disco && streaming {
            // DiSCo's migration starts: the cloud stops when it hears of it; what it sent meanwhile is
            // prefilled before the device decodes on
            self.cloud_cancel_from_device(i, now)?;
        }
        self.device_step(i, now)
    }

    pub(super) fn on_chunk_done(&mut self, i: u32, n: u32, now: Nanos) -> Result<()> {
        let iu = i as usize;
        let Some(pd) = self.reqs.get_mut(i).and_then(|r| r.pd.as_mut()) else { return Ok(()) };
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
        let pd = self.reqs[iu].pd.as_mut().expect("pd state");
        let quota = pd.cloud_quota;
        let todo = pd.buf.received() - pd.buf.prefilled();
        if todo > 0 {
            let ctx = u64::from(pd.prompt_len + pd.buf.prefilled());
            let price = self.devices.of(i).append(ctx, u64::from(todo));
            let index = u64::from(pd.buf.prefilled());
            let spread = self.devices.of(i).step_spread();
            let done_at = now + jittered(price, spread, i, Call::Append, index, u64::from(todo));
            if done_at > Nanos::LIMIT {
                let what = "the device's prefill of the cloud's tokens ([prefill] seconds)";
                return self.on_clock(i, done_at, what).map(|_| ());
            }
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
        self.finish_on_device(i, now, pos, plan.pace.min_tpot())
    }

    fn cloud_cancel_from_device(&mut self, i: u32, now: Nanos) -> Result<()> {
        self.lp.schedule(now + self.one_way[i as usize], PRIO_CLOUD, Ev::CloudCancel(i))?;
        Ok(())
    }
}
