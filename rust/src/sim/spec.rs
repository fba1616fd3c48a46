//! Speculative edge-cloud decoding inside the simulator (the `Spec` mode of the module doc): the device
//! drafts a round once it has the prompt and the tokens so far, the cloud verifies it
//! ([`super::cloud::Cloud::drafts_arrived`]), and the round's tokens are shown when they reach the device.
//!
//! Every token is shown once, in order: the first token from the cloud's prefill, then each round's,
//! the accepted drafts first and the cloud's own token last (the timeline marks the accepted drafts as
//! the device's). All of them count as the cloud's kept tokens (the cloud emitted them, verified); the
//! device's decoded tokens are the drafts it made, rejected ones included.

use super::{Ev, Simulator, PRIO_CLOUD};
use crate::cost::spec::SpecDecode;
use crate::error::Result;
use crate::time::Nanos;

/// The device side of a speculative request.
#[derive(Debug, Default)]
pub(super) struct SpecState {
    /// The device has prefilled the prompt.
    prompt_ready: bool,
    /// Verified tokens received so far.
    received: u32,
}

impl Simulator {
    /// `n` verified tokens reached the device: show them, then draft the next round if the device can.
    pub(super) fn on_spec_result(&mut self, i: u32, n: u32, now: Nanos) -> Result<()> {
        let iu = i as usize;
        if self.reqs.get(i).is_none_or(|r| r.done) {
            return Ok(());
        }
        let min_tpot = self.reqs[iu].plan.expect("planned").pace.min_tpot();
        let first_round = self.reqs[iu].metrics.count() == 0;
        for j in 0..n {
            let m = &self.reqs[iu].metrics;
            let t = if m.count() == 0 { now } else { now.max(m.last() + min_tpot) };
            self.record(i, t, first_round || j + 1 == n);
        }
        let req = &mut self.reqs[iu];
        req.cloud_kept += n;
        req.last_cloud_display = Some(req.metrics.last());
        let st = req.spec.as_mut().expect("spec state");
        st.received += n;
        if req.metrics.count() >= self.inp.output[iu] {
            self.finish(i);
            return self.device_done(i, now);
        }
        if st.prompt_ready {
            self.start_round(i, now)?;
        }
        Ok(())
    }

    /// The device prefilled the prompt: draft the first round if the first token is here.
    pub(super) fn on_spec_prompt_done(&mut self, i: u32, now: Nanos) -> Result<()> {
        let iu = i as usize;
        if self.reqs.get(i).is_none_or(|r| r.done) {
            return Ok(());
        }
        let st = self.reqs[iu].spec.as_mut().expect("spec state");
        st.prompt_ready = true;
        if st.received > 0 {
            self.start_round(i, now)?;
        }
        Ok(())
    }

    fn start_round(&mut self, i: u32, now: Nanos) -> Result<()> {
        let iu = i as usize;
        let spec = self.reqs[iu].plan.and_then(|p| p.spec).expect("spec plan");
        let received = self.reqs[iu].spec.as_ref().map_or(0, |s| s.received);
        let context = u64::from(self.inp.prompt[iu]) + u64::from(received);
        let drafted = self.draft_time(i, spec, context);
        let req = &mut self.reqs[iu];
        req.device_decode_tokens += spec.gamma;
        self.out.bytes_up[iu] += f64::from(spec.gamma) * self.inp.wire.stream_bytes_per_token;
        let what = "a round of drafts on the device ([decode] tpot_s)";
        let at = self.on_clock(i, now + drafted + self.one_way[iu], what)?;
        self.lp.schedule(at, PRIO_CLOUD, Ev::SpecDrafts(i))?;
        Ok(())
    }

    /// The device's time to draft a round after `context` tokens ([`SpecDecode::draft`]): its `gamma`
    /// decode steps read from the device's kept steps ([`super::fleet::Devices::steps_to`]), the same
    /// steps; past them, walked.
    pub(super) fn draft_time(&mut self, i: u32, spec: SpecDecode, context: u64) -> Nanos {
        let end = context + u64::from(spec.gamma);
        let (device, kept) = self.devices.steps_to(i, end);
        let round = usize::try_from(context).ok().zip(usize::try_from(end).ok());
        match round.and_then(|(first, last)| kept.get(first..last)) {
            Some(steps) => steps.iter().fold(Nanos::ZERO, |a, &b| a + b),
            None => spec.draft(device, context),
        }
    }
}
