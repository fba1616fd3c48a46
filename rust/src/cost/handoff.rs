//! When the device will have caught up with the cloud (the hand-off estimate), and the guard added to it.
//!
//! Both estimators below price the device's remaining work with the one device model ([`DeviceCost`]):
//!
//! - [`simulated_handoff`], the simulator's, knows the device's speed exactly: the later of its prefill
//!   finishing (the step under way, then the tokens not yet being prefilled appended in one step) and the
//!   last cloud token arriving (at the stream's observed pace, or the cloud's lone decode step before two
//!   tokens have arrived) and then being prefilled in one forward pass.
//! - [`HandoffEstimator`], the live runtime's, scales the model by a measured speed ratio (the time the
//!   device's work so far took over the time the model predicted for it, blended with a prior ratio at the
//!   weight of [`PRIOR_WEIGHT_TOKENS`] tokens of prefill, so one noisy chunk does not swing the estimate).
//!   Between two progress reports the device is in the middle of a chunk: the time since the last report
//!   is credited against that chunk's predicted cost, never more; without the credit an estimate made
//!   mid-chunk jumps later by up to one chunk's time (measured on a 512-token prompt: 0.8 s on a 4.6 s
//!   hand-off). Without a device model, work is counted in tokens and the ratio becomes the measured
//!   seconds per token.
//!
//! The guard (ours): the speed controller is given the estimate plus device decode steps at the hand-off's
//! context: one in the simulator, whose device keeps its profile's speed on average (the step is the
//! device's own first token; its spread is covered apart, below), and [`LIVE_GUARD_STEPS`] in the live runtime. The live estimate is unbiased, so without
//! a guard the device is late for half the hand-offs (measured over 9 live requests: hand-off gaps of 59
//! and 67 ms against a 45 ms pace, the device ready 14–22 ms after the buffer ran out, about one model
//! call); with one step it was still late by 21–30 ms in about one hand-off in 25 (a clean CI run: 71 and
//! 75 ms gaps, the device's last append and first decode step slower than measured so far), which the
//! second step covers. A buffer that lasts longer only makes the device's first token wait; the cloud
//! tokens still buffered are shown meanwhile.
//!
//! The spread (ours). The steps cover the median call; a call slower than its median is covered by the
//! device's measured spread: every progress report compares the call's time with the model's price at the
//! ratio measured before it, and the root mean square of those relative errors (blended with a prior
//! spread, learned by the session from earlier answers, at the weight of [`PRIOR_SPREAD_CALLS`] calls) is
//! the spread. The guard adds [`SPREAD_Z`] spreads of the calls still exposed when the estimate was last
//! revised: the last append and the first decode step. On a shared 2-core host whose other core ran the
//! cloud, single calls ran up to 3× their median, which no fixed number of steps covers without paying
//! it on every hand-off. The simulator's device has the profile's step spread
//! ([`DeviceCost::step_spread`], each call's time drawn around its price by `crate::sim::jitter`), which
//! its guard covers with the same term: [`SPREAD_Z`] spreads of the last append the estimate counts and
//! of its decode step (nothing is added at a spread of 0, so such a device hands off as before).
//!
//! The trickle (ours). Once the device has caught up with what arrived, each token the cloud still sends
//! costs one model call of its own, so the hand-off comes no earlier than the last token's arrival plus
//! that call ([`HandoffEstimator::append_step`]); a continuation's tokens each add their marginal append
//! ([`HandoffEstimator::append_per_token`]) to the device's work.

use super::device::{to_nanos, DeviceCost};
use crate::time::Nanos;

/// The weight of the live estimator's prior speed ratio, in tokens of prompt prefill.
pub const PRIOR_WEIGHT_TOKENS: u32 = 512;

/// Decode steps the live runtime's guard holds (module doc).
pub const LIVE_GUARD_STEPS: f64 = 2.0;

/// The weight of the prior spread, in model calls (module doc).
pub const PRIOR_SPREAD_CALLS: f64 = 8.0;

/// Spreads of the exposed calls the live guard adds (module doc): a one-sided 99% normal quantile.
pub const SPREAD_Z: f64 = 2.33;

/// The guard: one device decode step at the hand-off's context, seconds.
#[must_use]
pub fn guard_s(device: &DeviceCost, handoff_context: f64) -> f64 {
    device.tpot_s(handoff_context)
}

/// What the simulator knows of one P/D-Device request when it revises the estimate.
#[derive(Debug, Clone, Copy)]
pub struct SimulatedProgress {
    /// When the device's current prefill step (prompt or chunk) ends.
    pub free_at: Nanos,
    /// The prompt the device prefills (refined).
    pub prompt: u32,
    /// Received tokens prefilled or being prefilled.
    pub started: u32,
    /// Tokens the cloud was asked for.
    pub quota: u32,
    /// Tokens received so far.
    pub received: u32,
    /// Arrival of the first cloud token, if any.
    pub first_arrival: Option<Nanos>,
    /// Arrival of the latest cloud token.
    pub last_arrival: Nanos,
    /// The cloud's lone decode step, the pace assumed before two tokens arrived.
    pub prior_pace: Nanos,
}

/// The terms of [`simulated_handoff`] fixed for one request, its prompt and quota: the trickle (the last
/// cloud token's own append) and the guard's decode step at the hand-off's context, and the append of
/// the tokens not yet being prefilled, kept for the last count of tokens started (it changes only at a
/// prefill step, the estimate at every arrival). The simulator keeps them per request
/// ([`simulated_handoff_with`]) instead of pricing them at every revision (ours, for speed: the same
/// values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandoffTerms {
    /// The prompt the terms were priced for.
    pub prompt: u32,
    /// The quota the terms were priced for.
    pub quota: u32,
    trickle: Nanos,
    step: Nanos,
    /// The tokens started and the append of the rest of the quota after them, last priced.
    rest: Option<(u32, Nanos)>,
}

impl HandoffTerms {
    /// The terms for a prompt of `prompt` tokens and a quota of `quota` cloud tokens.
    #[must_use]
    pub fn new(device: &DeviceCost, prompt: u32, quota: u32) -> Self {
        let end = u64::from(prompt) + u64::from(quota);
        // read only while tokens are still to come (`quota >= 1`)
        let trickle = device.append(end.saturating_sub(1), 1);
        Self { prompt, quota, trickle, step: device.tpot(end), rest: None }
    }
}

/// The simulator's hand-off estimate plus the guard (module doc), in simulated time: one decode step,
/// and for a device with a step spread `s` ([`DeviceCost::step_spread`]) also [`SPREAD_Z`]` * s` times the
/// exposed calls, the last append the estimate counts and that decode step, as the live guard adds.
#[must_use]
pub fn simulated_handoff(device: &DeviceCost, p: &SimulatedProgress) -> Nanos {
    simulated_handoff_with(device, p, &mut HandoffTerms::new(device, p.prompt, p.quota))
}

/// [`simulated_handoff`] with the request's fixed terms already priced (`terms`, for `p`'s prompt and
/// quota).
#[must_use]
pub fn simulated_handoff_with(device: &DeviceCost, p: &SimulatedProgress, terms: &mut HandoffTerms) -> Nanos {
    debug_assert_eq!((terms.prompt, terms.quota), (p.prompt, p.quota));
    let left = p.quota.saturating_sub(p.started);
    let prompt = u64::from(p.prompt);
    let mut h = p.free_at;
    let mut last_call = Nanos::ZERO;
    if left > 0 {
        last_call = match terms.rest {
            Some((started, rest)) if started == p.started => rest,
            _ => device.append(prompt + u64::from(p.started), u64::from(left)),
        };
        terms.rest = Some((p.started, last_call));
        h += last_call;
    }
    if let Some(first) = p.first_arrival {
        if p.received < p.quota {
            let pace = if p.received >= 2 {
                Nanos((p.last_arrival - first).0 / i64::from(p.received - 1))
            } else {
                p.prior_pace
            };
            let last = p.last_arrival + Nanos(pace.0.saturating_mul(i64::from(p.quota - p.received)));
            let trickle = terms.trickle;
            if last + trickle > h {
                h = last + trickle;
                last_call = trickle;
            }
        }
    }
    let step = terms.step;
    let spread = device.step_spread();
    if spread > 0.0 {
        h += to_nanos(SPREAD_Z * spread * (last_call + step).as_secs());
    }
    h + step
}

/// The live runtime's hand-off estimate (module doc). Times are seconds on the runtime's clock.
#[derive(Debug, Clone)]
pub struct HandoffEstimator {
    device: Option<DeviceCost>,
    /// The speed ratio assumed before anything is measured.
    pub prior_ratio: f64,
    /// The prior's weight, seconds of predicted prefill (0 without a device model).
    pub prior_weight: f64,
    /// The prompt's length in device tokens.
    pub prompt_tokens: u64,
    tokens_per_char: f64,
    /// Measured seconds of device work so far.
    pub actual_s: f64,
    /// The model's seconds (or tokens, without a model) for the same work.
    pub predicted: f64,
    pieces_appended: u64,
    tokens_appended: u64,
    /// When the device's last progress report came (or it started): the current chunk began then.
    pub anchor_s: f64,
    prompt_chunk_tokens: u64,
    append_chunk_tokens: u64,
    /// The spread assumed before anything is measured (module doc), relative.
    pub prior_spread: f64,
    errors_sq: f64,
    calls: u64,
}

impl HandoffEstimator {
    /// An estimator for a prompt of `prompt_tokens` device tokens and `prompt_chars` characters, starting
    /// at `started_at`, prefilling `prompt_chunk_tokens` prompt tokens and `append_chunk_tokens` received
    /// tokens per model call.
    #[must_use]
    pub fn new(
        device: Option<DeviceCost>,
        prompt_tokens: u64,
        prompt_chars: u64,
        prior_ratio: f64,
        started_at: f64,
        prompt_chunk_tokens: u64,
        append_chunk_tokens: u64,
    ) -> Self {
        let prior_weight = device.as_ref().map_or(0.0, |d| d.prefill_s(f64::from(PRIOR_WEIGHT_TOKENS)));
        Self {
            device,
            prior_ratio,
            prior_weight,
            prompt_tokens,
            tokens_per_char: prompt_tokens as f64 / prompt_chars.max(1) as f64,
            actual_s: 0.0,
            predicted: 0.0,
            pieces_appended: 0,
            tokens_appended: 0,
            anchor_s: started_at,
            prompt_chunk_tokens: prompt_chunk_tokens.max(1),
            append_chunk_tokens: append_chunk_tokens.max(1),
            prior_spread: 0.0,
            errors_sq: 0.0,
            calls: 0,
        }
    }

    /// The same estimator assuming `spread` (relative, finite and >= 0) before anything is measured.
    #[must_use]
    pub fn with_prior_spread(mut self, spread: f64) -> Self {
        self.prior_spread = spread;
        self
    }

    /// The device model, if any.
    #[must_use]
    pub fn device(&self) -> Option<&DeviceCost> {
        self.device.as_ref()
    }

    fn prefill(&self, tokens: u64) -> f64 {
        self.device.as_ref().map_or(tokens as f64, |d| d.prefill_s(tokens as f64))
    }

    fn append(&self, context: u64, tokens: u64) -> f64 {
        if tokens == 0 {
            return 0.0;
        }
        self.device.as_ref().map_or(tokens as f64, |d| d.append_s(context as f64, tokens as f64))
    }

    /// Measured time over predicted time, blended with the prior; `None` without a device model until
    /// something was measured.
    #[must_use]
    pub fn ratio(&self) -> Option<f64> {
        if self.device.is_none() {
            return (self.predicted > 0.0).then(|| self.actual_s / self.predicted);
        }
        let w = self.prior_weight;
        Some((self.actual_s + self.prior_ratio * w) / (self.predicted + w))
    }

    /// A prompt chunk of `chunk` tokens, ending at `done`, took `took` seconds (reported at `at`).
    pub fn observe_prompt(&mut self, done: u64, chunk: u64, took: f64, at: f64) {
        let price = self.prefill(done) - self.prefill(done.saturating_sub(chunk));
        self.observe(price, took, at);
    }

    fn observe(&mut self, price: f64, took: f64, at: f64) {
        if let Some(ratio) = self.ratio() {
            let expected = ratio * price;
            if expected > 0.0 {
                let error = took / expected - 1.0;
                self.errors_sq += error * error;
                self.calls += 1;
            }
        }
        self.actual_s += took;
        self.predicted += price;
        self.anchor_s = at;
    }

    /// The device's spread (module doc): the root mean square of the calls' relative errors, blended with
    /// the prior spread.
    #[must_use]
    pub fn spread(&self) -> f64 {
        let w = PRIOR_SPREAD_CALLS;
        ((self.prior_spread * self.prior_spread * w + self.errors_sq) / (w + self.calls as f64)).sqrt()
    }

    /// The measured spread alone (no prior), and the calls it covers: what a session learns from.
    #[must_use]
    pub fn measured_spread(&self) -> Option<(f64, u64)> {
        (self.calls > 0).then(|| ((self.errors_sq / self.calls as f64).sqrt(), self.calls))
    }

    /// `tokens` received tokens appended at `context` took `took` seconds (reported at `at`).
    pub fn observe_append(&mut self, context: u64, tokens: u64, took: f64, at: f64) {
        let price = self.append(context, tokens);
        self.observe(price, took, at);
    }

    /// `pieces` cloud pieces came to `tokens` device tokens.
    pub fn count_pieces(&mut self, pieces: u64, tokens: u64) {
        self.pieces_appended += pieces;
        self.tokens_appended += tokens;
    }

    /// Device tokens for `pieces` cloud pieces: at the ratio measured once some were appended; before
    /// that, `chars_per_piece` at the prompt's tokens per character; one token per piece when nothing
    /// arrived.
    #[must_use]
    pub fn tokens_for(&self, pieces: u64, chars_per_piece: Option<f64>) -> u64 {
        if pieces == 0 {
            return 0;
        }
        let per_piece = if self.pieces_appended > 0 && self.tokens_appended > 0 {
            self.tokens_appended as f64 / self.pieces_appended as f64
        } else {
            chars_per_piece.map_or(1.0, |c| (c * self.tokens_per_char).max(1.0))
        };
        (pieces as f64 * per_piece).ceil() as u64
    }

    /// The guard at the measured speed (module doc): [`LIVE_GUARD_STEPS`] device decode steps at
    /// `context + tokens_left`, plus [`SPREAD_Z`] spreads of the last append call and the first decode
    /// step; 0 before anything is measured without a device model (then tokens' measured time).
    #[must_use]
    pub fn guard(&self, context: u64, tokens_left: u64) -> f64 {
        let Some(ratio) = self.ratio() else { return 0.0 };
        let end = context + tokens_left;
        let last = self.append_chunk_tokens.min(tokens_left.max(1));
        let (step, exposed) = match &self.device {
            None => (1.0, last as f64 + 1.0),
            Some(d) => {
                let step = guard_s(d, end as f64);
                (step, d.append_s(end.saturating_sub(last) as f64, last as f64) + step)
            }
        };
        ratio * (LIVE_GUARD_STEPS * step + SPREAD_Z * self.spread() * exposed)
    }

    /// One model call appending a single token at `context`, at the measured speed: what each token the
    /// cloud still sends costs once the device has caught up (module doc); `None` as for [`Self::ratio`].
    #[must_use]
    pub fn append_step(&self, context: u64) -> Option<f64> {
        Some(self.ratio()? * self.append(context, 1))
    }

    /// The marginal time of one more received token appended at `context` in full chunks, at the measured
    /// speed (module doc); `None` as for [`Self::ratio`].
    #[must_use]
    pub fn append_per_token(&self, context: u64) -> Option<f64> {
        let chunk = self.append_chunk_tokens;
        Some(self.ratio()? * self.append(context, chunk) / chunk as f64)
    }

    /// When the device will have prefilled the prompt and `tokens_left` more received tokens, seconds
    /// on the runtime's clock, never before `now`; `None` without a model before anything was measured.
    #[must_use]
    pub fn estimate(&self, now: f64, prompt_done: u64, context: u64, tokens_left: u64) -> Option<f64> {
        let ratio = self.ratio()?;
        let prompt_done = prompt_done.min(self.prompt_tokens);
        let mut work = self.prefill(self.prompt_tokens) - self.prefill(prompt_done);
        work += self.append(context, tokens_left);
        let current = if prompt_done < self.prompt_tokens {
            let end = (prompt_done + self.prompt_chunk_tokens).min(self.prompt_tokens);
            self.prefill(end) - self.prefill(prompt_done)
        } else {
            self.append(context, self.append_chunk_tokens.min(tokens_left))
        };
        let spent = (now - self.anchor_s).max(0.0).min(ratio * current);
        // never before now (float rounding when the work is all spent)
        Some(now.max(now + ratio * work - spent))
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the prices compared are exact by construction
mod tests {
    use super::*;
    use crate::testing::toy_device as device;

    #[test]
    fn estimate_credits_the_chunk_under_way_up_to_its_price() {
        let mut e = HandoffEstimator::new(Some(device()), 1000, 4000, 1.0, 0.0, 256, 16);
        assert_eq!(e.ratio(), Some(1.0));
        // at t = 0.1 s, 100 ms into the first 256-token chunk (priced 0.256 s)
        let at = e.estimate(0.1, 0, 1000, 0).unwrap();
        assert!((at - 1.0).abs() < 1e-12, "{at}");
        // long past the chunk's price: only its price is credited
        let late = e.estimate(5.0, 0, 1000, 0).unwrap();
        assert!((late - (5.0 + 1.0 - 0.256)).abs() < 1e-12, "{late}");
        e.observe_prompt(256, 256, 0.512, 0.512);
        let r = e.ratio().unwrap();
        assert!(r > 1.0 && r < 2.0, "{r}");
        // one call at twice its price: a relative error of 1, blended with a zero prior over 8 calls
        let spread = (1.0f64 / 9.0).sqrt();
        assert!((e.spread() - spread).abs() < 1e-12);
        let exposed = device().append_s(1000.0, 10.0) + 0.02;
        let want = r * (LIVE_GUARD_STEPS * 0.02 + SPREAD_Z * spread * exposed);
        assert!((e.guard(1000, 10) - want).abs() < 1e-12, "{} {want}", e.guard(1000, 10));
    }

    #[test]
    fn the_spread_is_learned_from_calls_and_blended_with_the_prior() {
        let d = device();
        let mut e =
            HandoffEstimator::new(Some(d.clone()), 1000, 4000, 1.0, 0.0, 256, 16).with_prior_spread(0.3);
        assert!((e.spread() - 0.3).abs() < 1e-12);
        assert_eq!(e.measured_spread(), None);
        // calls exactly at their price leave the measured spread at 0 and pull the blend down
        for i in 1..=8u64 {
            let price = d.append_s((1000 + 16 * (i - 1)) as f64, 16.0);
            e.observe_append(1000 + 16 * (i - 1), 16, price * e.ratio().unwrap(), i as f64);
        }
        let (measured, calls) = e.measured_spread().unwrap();
        assert!(measured < 1e-9 && calls == 8, "{measured} {calls}");
        assert!((e.spread() - (0.09f64 * 8.0 / 16.0).sqrt()).abs() < 1e-9, "{}", e.spread());
        // a wider spread widens the guard
        let calm = e.guard(1200, 16);
        e.observe_append(1128, 16, 3.0 * d.append_s(1128.0, 16.0), 9.0);
        assert!(e.guard(1200, 16) > calm);
    }

    #[test]
    fn a_trickled_token_costs_a_whole_call_and_a_chunked_one_its_share() {
        let d = device();
        let e = HandoffEstimator::new(Some(d.clone()), 1000, 4000, 1.0, 0.0, 256, 16);
        assert!((e.append_step(1200).unwrap() - d.append_s(1200.0, 1.0)).abs() < 1e-15);
        assert!((e.append_per_token(1200).unwrap() - d.append_s(1200.0, 16.0) / 16.0).abs() < 1e-15);
        assert!(e.append_per_token(1200).unwrap() <= e.append_step(1200).unwrap());
        let blind = HandoffEstimator::new(None, 100, 400, 1.0, 0.0, 50, 8);
        assert_eq!(blind.append_step(100), None);
    }

    #[test]
    fn without_a_model_it_counts_tokens() {
        let mut e = HandoffEstimator::new(None, 100, 400, 1.0, 0.0, 50, 8);
        assert_eq!(e.estimate(0.0, 0, 100, 5), None);
        assert_eq!(e.guard(100, 5), 0.0);
        e.observe_prompt(50, 50, 0.5, 0.5);
        assert_eq!(e.ratio(), Some(0.01));
        let at = e.estimate(0.5, 50, 100, 10).unwrap();
        assert!((at - (0.5 + 0.01 * 60.0)).abs() < 1e-12, "{at}");
        assert_eq!(e.tokens_for(3, Some(8.0)), 6);
        e.count_pieces(4, 10);
        assert_eq!(e.tokens_for(3, Some(8.0)), 8);
        assert_eq!(e.tokens_for(0, None), 0);
    }

    #[test]
    fn kept_terms_give_the_estimate_priced_afresh_at_every_revision() {
        let d = device().with_step_spread(0.2).unwrap();
        let mut terms = HandoffTerms::new(&d, 700, 40);
        // arrivals and prefill steps as a request sees them: `started` moves only at a step
        for (k, started) in [(1_u32, 0_u32), (2, 0), (3, 2), (4, 2), (5, 2), (9, 5), (40, 9), (40, 40)] {
            let p = SimulatedProgress {
                free_at: Nanos::ms(400 + 10 * i64::from(k)),
                prompt: 700,
                started,
                quota: 40,
                received: k,
                first_arrival: Some(Nanos::ms(100)),
                last_arrival: Nanos::ms(100 + 25 * i64::from(k)),
                prior_pace: Nanos::ms(30),
            };
            assert_eq!(simulated_handoff_with(&d, &p, &mut terms), simulated_handoff(&d, &p), "{k}");
        }
    }

    #[test]
    fn simulated_estimate_waits_for_the_last_token() {
        let d = device();
        let p = SimulatedProgress {
            free_at: Nanos::ms(500),
            prompt: 1000,
            started: 0,
            quota: 11,
            received: 1,
            first_arrival: Some(Nanos::ms(200)),
            last_arrival: Nanos::ms(200),
            prior_pace: Nanos::ms(30),
        };
        // the last token arrives at 200 + 10 * 30 = 500 ms, is prefilled in one 20 ms pass, plus the guard
        assert_eq!(simulated_handoff(&d, &p), Nanos::ms(540));
        // a spread adds SPREAD_Z spreads of the last append (20 ms) and the decode step (20 ms)
        let spread = d.with_step_spread(0.3).unwrap();
        let want = Nanos::ms(540) + to_nanos(SPREAD_Z * 0.3 * 0.040);
        assert_eq!(simulated_handoff(&spread, &p), want);
        assert!(want > Nanos::ms(567) && want < Nanos::ms(569), "{want:?}");
    }
}
