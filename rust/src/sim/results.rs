//! What a run reports: per-request results, aggregate counters and the token timelines of recorded requests.

use super::cloud::CloudReq;
use super::Simulator;
use crate::error::{CoreError, Result};
use crate::time::Nanos;

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
    /// Who displayed the tokens, a [`ServedBy`] code.
    pub served_by: Vec<u8>,
    /// Arrival of the cloud's first token at the device, from request arrival (NaN if none).
    pub cloud_ttft_s: Vec<f64>,
    /// Mean cloud-side time between decode tokens (NaN with fewer than two).
    pub cloud_tpot_s: Vec<f64>,
    /// Tokens displayed.
    pub displayed_tokens: Vec<f64>,
    /// Time of the last display, s.
    pub finish_s: Vec<f64>,
    /// Mode index (see [`Mode::NAMES`](super::Mode::NAMES)).
    pub mode: Vec<u8>,
    /// The kept fraction of the prompt the plan gave the device (1 without refinement).
    pub refine_ratio: Vec<f64>,
    /// Bytes the device sent for this request ([`Wire`](super::Wire)).
    pub bytes_up: Vec<f64>,
    /// Bytes the device received for this request: streamed tokens, a refined prompt, a KV cache.
    pub bytes_down: Vec<f64>,
    /// Seconds the device's connection was open: from the request's arrival (its send) to the last
    /// byte it received; 0 when it never used the network.
    pub radio_s: Vec<f64>,
    /// Where a disaggregated cloud decoded the request's tokens after the first, a [`DecodedAt`] code.
    pub k_site: Vec<u8>,
    /// Prompt tokens the device found in its session cache (its prefill skipped them).
    pub device_cached_tokens: Vec<f64>,
    /// Prompt tokens the cloud found in its prefix cache (its prefill skipped them).
    pub cloud_cached_tokens: Vec<f64>,
    /// What the one-answer-per-device rule did to the request, a [`DeviceBusy`](super::DeviceBusy) code.
    pub device_busy: Vec<u8>,
    /// How long the request waited for its busy device, s (0 unless its device-only plan waited).
    pub device_wait_s: Vec<f64>,
}

/// Who displayed a request's tokens (the `served_by` result's codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ServedBy {
    /// The cloud alone.
    Cloud = 0,
    /// The device alone.
    Device = 1,
    /// Both (the cloud's tokens, then the device's).
    Both = 2,
}

impl ServedBy {
    /// The names used at the Python boundary, indexed by code.
    pub const NAMES: [&'static str; 3] = ["cloud", "device", "both"];
}

/// Where a disaggregated cloud decoded a request's tokens after the first (the `k_site` result's codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum DecodedAt {
    /// The decode pool.
    Pool = 0,
    /// Its prefill instance.
    Prefill = 1,
    /// Nowhere: no cloud decode token, or a colocated cloud.
    Nowhere = 2,
    /// Its prefill instance while its cache crossed, then the pool (the bridge at the first token,
    /// [`crate::cost::ksite`]).
    Bridge = 3,
}

impl DecodedAt {
    /// The names used at the Python boundary, indexed by code.
    pub const NAMES: [&'static str; 4] = ["pool", "prefill", "none", "bridge"];
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
    /// `(when, estimate)` each time the speed controller's hand-off estimate was set or changed, in
    /// order (a revision to the same value is not repeated).
    pub handoff_estimates: Vec<(Nanos, Nanos)>,
}

impl Results {
    /// The results of `n` requests before any is written: nothing sent, received or cached, no cloud
    /// token (NaN), no plan (`u8::MAX`); the rest is written when each request is retired.
    pub(super) fn filled(n: usize) -> Self {
        let nan = vec![f64::NAN; n];
        let zero = vec![0.0; n];
        Self {
            ttft_s: nan.clone(),
            e2e_s: nan.clone(),
            tpot_s: nan.clone(),
            max_gap_s: zero.clone(),
            handoff_gap_s: nan.clone(),
            handoff_stall_s: zero.clone(),
            qoe: zero.clone(),
            cloud_prefill_gpu_s: zero.clone(),
            cloud_decode_gpu_s: zero.clone(),
            cloud_decode_tokens: zero.clone(),
            cloud_tokens_kept: zero.clone(),
            cloud_tokens_discarded: zero.clone(),
            device_prefill_tokens: zero.clone(),
            device_decode_tokens: zero.clone(),
            handoff_pos: vec![-1.0; n],
            served_by: vec![ServedBy::Both as u8; n],
            cloud_ttft_s: nan.clone(),
            cloud_tpot_s: nan.clone(),
            displayed_tokens: zero.clone(),
            finish_s: nan,
            mode: vec![u8::MAX; n],
            refine_ratio: vec![1.0; n],
            bytes_up: zero.clone(),
            bytes_down: zero.clone(),
            radio_s: zero.clone(),
            k_site: vec![DecodedAt::Nowhere as u8; n],
            device_cached_tokens: zero.clone(),
            cloud_cached_tokens: zero.clone(),
            device_busy: vec![0; n],
            device_wait_s: zero,
        }
    }
}

impl Simulator {
    /// Per-request results (call after [`next_decision`](Self::next_decision) returned `None`).
    #[must_use]
    pub fn results(&self) -> Results {
        let mut r = self.out.clone();
        self.cloud_columns(&mut r);
        r
    }

    /// [`results`](Self::results), moved out instead of copied once the run has ended (a run's results
    /// are held once, not twice, at its end); a second call after that is refused.
    ///
    /// # Errors
    /// The results were taken already.
    pub fn take_results(&mut self) -> Result<Results> {
        if self.results_taken {
            return Err(CoreError::state(
                "results: this run's results were taken already",
                "keep what the first call returned",
            ));
        }
        if self.finished != self.reqs.len() || self.pending_decision.is_some() {
            return Ok(self.results()); // mid-run: the run goes on writing them
        }
        self.results_taken = true;
        let mut r = std::mem::take(&mut self.out);
        self.cloud_columns(&mut r);
        Ok(r)
    }

    /// Completes the cloud's columns of `r`: those of the records not yet drained (requests in the cloud
    /// mid-run), then the
    /// tokens each discarded, from the tokens it generated (held in that column until now) and kept.
    fn cloud_columns(&self, r: &mut Results) {
        for radio in &mut r.radio_s {
            *radio /= 1e9; // held in nanoseconds during the run ([`Self::received`]): `Nanos::as_secs`
        }
        let disaggregated = self.cloud.is_disaggregated();
        for (i, c) in self.cloud.reqs.undrained() {
            cloud_figures(r, disaggregated, i, c);
        }
        for (discarded, &kept) in r.cloud_tokens_discarded.iter_mut().zip(&r.cloud_tokens_kept) {
            // counts, held exactly
            *discarded = (*discarded - kept).max(0.0);
        }
    }

    /// Writes the cloud's figures of the requests that left it since the last call ([`super::cloud::CloudReqs`]).
    #[inline]
    pub(super) fn cloud_departures(&mut self) {
        if self.cloud.reqs.any_left() {
            let disaggregated = self.cloud.is_disaggregated();
            let out = &mut self.out;
            self.cloud.reqs.drain_left(|i, c| cloud_figures(out, disaggregated, i, c));
        }
    }

    /// Request `i` reached the cloud, asked for `quota` tokens: its plan is read no more; retired if it
    /// is done.
    pub(super) fn submitted(&mut self, i: u32, quota: u32) {
        let req = &mut self.reqs[i as usize];
        req.awaits_submit = false;
        if let Some(pd) = req.pd.as_mut() {
            pd.cloud_quota = quota;
        }
        if req.done {
            self.retire(i);
        }
    }

    /// Marks request `i` done (every token displayed) and drops its split state; retires it unless its
    /// `CloudSubmit` is still to run ([`super::live`]).
    pub(super) fn finish(&mut self, i: u32) {
        let req = &mut self.reqs[i as usize];
        debug_assert!(!req.done);
        req.done = true;
        req.pd = None;
        self.finished += 1;
        if !req.awaits_submit {
            self.retire(i);
        }
    }

    /// Writes request `i`'s device-side results and drops its state.
    fn retire(&mut self, i: u32) {
        let req = self.reqs.retire(i);
        let iu = i as usize;
        let (arrival, nan) = (self.inp.arrival[iu], f64::NAN);
        let (r, m, plan) = (&mut self.out, &req.metrics, req.plan);
        let first = m.first();
        r.ttft_s[iu] = first.map_or(nan, |f| (f - arrival).as_secs());
        r.e2e_s[iu] = if first.is_some() { (m.last() - arrival).as_secs() } else { nan };
        r.tpot_s[iu] = m.tpot_s();
        r.max_gap_s[iu] = m.max_gap().as_secs();
        let gap = match (req.last_cloud_display, req.first_device_display) {
            (Some(c), Some(d)) => (d - c).as_secs(),
            _ => nan,
        };
        r.handoff_gap_s[iu] = gap;
        let max_tpot = plan.map_or(0.0, |p| p.pace.max_tpot().as_secs());
        r.handoff_stall_s[iu] = if gap.is_nan() { 0.0 } else { (gap - max_tpot).max(0.0) };
        r.qoe[iu] = m.qoe(arrival, self.inp.qoe);
        r.cloud_tokens_kept[iu] = f64::from(req.cloud_kept);
        r.device_prefill_tokens[iu] = f64::from(req.device_prefill_tokens);
        r.device_decode_tokens[iu] = f64::from(req.device_decode_tokens);
        r.handoff_pos[iu] = req.handoff_pos as f64;
        let served_by = match (req.cloud_kept > 0, req.device_decode_tokens > 0) {
            (true, false) => ServedBy::Cloud,
            (false, true) => ServedBy::Device,
            _ => ServedBy::Both,
        };
        r.served_by[iu] = served_by as u8;
        r.displayed_tokens[iu] = f64::from(m.count());
        r.finish_s[iu] = if first.is_some() { m.last().as_secs() } else { nan };
        r.mode[iu] = plan.map_or(u8::MAX, |p| p.mode as u8);
        r.refine_ratio[iu] = plan.map_or(1.0, |p| p.refine_ratio);
        r.device_cached_tokens[iu] = f64::from(req.device_cached);
        r.device_busy[iu] = req.busy as u8;
        r.device_wait_s[iu] = req.device_wait.as_secs();
    }

    /// Bytes for request `i` reached its device at `at` (the `bytes_down` and `radio_s` results).
    pub(super) fn received(&mut self, i: u32, bytes: f64, at: Nanos) {
        let iu = i as usize;
        self.out.bytes_down[iu] += bytes;
        // in nanoseconds until the results are read ([`Self::cloud_columns`]): one division a request,
        // not one a token; the same seconds, as the division is monotone and a nanosecond count of the
        // clock's range an exact float
        let radio = (at - self.inp.arrival[iu]).0 as f64;
        self.out.radio_s[iu] = self.out.radio_s[iu].max(radio);
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

/// Writes request `i`'s cloud figures from its record `c`; `cloud_tokens_discarded` holds the tokens it
/// generated until the run's end (`Simulator::cloud_columns`).
fn cloud_figures(r: &mut Results, disaggregated: bool, i: u32, c: &CloudReq) {
    let iu = i as usize;
    r.cloud_prefill_gpu_s[iu] = c.gpu_prefill_s;
    r.cloud_decode_gpu_s[iu] = c.gpu_decode_s;
    r.cloud_decode_tokens[iu] = f64::from(c.generated.saturating_sub(1));
    r.cloud_tokens_discarded[iu] = f64::from(c.generated);
    r.cloud_tpot_s[iu] =
        if c.gap_count > 0 { c.gap_sum.as_secs() / f64::from(c.gap_count) } else { f64::NAN };
    let decoded_at = match (disaggregated && c.generated > 1, c.bridged, c.decode_on_prefill) {
        (false, _, _) => DecodedAt::Nowhere,
        (true, true, _) => DecodedAt::Bridge,
        (true, false, true) => DecodedAt::Prefill,
        (true, false, false) => DecodedAt::Pool,
    };
    r.k_site[iu] = decoded_at as u8;
}
