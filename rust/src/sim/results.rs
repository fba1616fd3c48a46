//! What a run reports: per-request results, aggregate counters and the token timelines of recorded requests.

use super::Simulator;
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

impl Simulator {
    /// Per-request results (call after [`next_decision`](Self::next_decision) returned `None`).
    #[must_use]
    pub fn results(&self) -> Results {
        let n = self.reqs.len();
        let mut r = Results {
            ttft_s: Vec::with_capacity(n),
            e2e_s: Vec::with_capacity(n),
            tpot_s: Vec::with_capacity(n),
            max_gap_s: Vec::with_capacity(n),
            handoff_gap_s: Vec::with_capacity(n),
            handoff_stall_s: Vec::with_capacity(n),
            qoe: Vec::with_capacity(n),
            cloud_prefill_gpu_s: Vec::with_capacity(n),
            cloud_decode_gpu_s: Vec::with_capacity(n),
            cloud_decode_tokens: Vec::with_capacity(n),
            cloud_tokens_kept: Vec::with_capacity(n),
            cloud_tokens_discarded: Vec::with_capacity(n),
            device_prefill_tokens: Vec::with_capacity(n),
            device_decode_tokens: Vec::with_capacity(n),
            handoff_pos: Vec::with_capacity(n),
            served_by: Vec::with_capacity(n),
            cloud_ttft_s: Vec::with_capacity(n),
            cloud_tpot_s: Vec::with_capacity(n),
            displayed_tokens: Vec::with_capacity(n),
            finish_s: Vec::with_capacity(n),
            mode: Vec::with_capacity(n),
            refine_ratio: Vec::with_capacity(n),
            bytes_up: Vec::with_capacity(n),
            bytes_down: Vec::with_capacity(n),
            radio_s: Vec::with_capacity(n),
            k_site: Vec::with_capacity(n),
            device_cached_tokens: Vec::with_capacity(n),
            cloud_cached_tokens: Vec::with_capacity(n),
            device_busy: Vec::with_capacity(n),
            device_wait_s: Vec::with_capacity(n),
        };
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
            let served_by = match (req.cloud_kept > 0, req.device_decode_tokens > 0) {
                (true, false) => ServedBy::Cloud,
                (false, true) => ServedBy::Device,
                _ => ServedBy::Both,
            };
            r.served_by.push(served_by as u8);
            r.cloud_ttft_s.push(req.cloud_first_arrival.map_or(nan, |t| (t - arrival).as_secs()));
            r.cloud_tpot_s.push(if c.gap_count > 0 {
                c.gap_sum.as_secs() / f64::from(c.gap_count)
            } else {
                nan
            });
            r.displayed_tokens.push(f64::from(m.count()));
            r.finish_s.push(if first.is_some() { m.last().as_secs() } else { nan });
            r.mode.push(plan.map_or(u8::MAX, |p| p.mode as u8));
            r.refine_ratio.push(plan.map_or(1.0, |p| p.refine_ratio));
            r.bytes_up.push(req.bytes_up);
            r.bytes_down.push(req.bytes_down);
            r.radio_s.push(req.last_down.map_or(0.0, |t| (t - arrival).as_secs()));
            let decoded_at =
                match (self.cloud.is_disaggregated() && c.generated > 1, c.bridged, c.decode_on_prefill) {
                    (false, _, _) => DecodedAt::Nowhere,
                    (true, true, _) => DecodedAt::Bridge,
                    (true, false, true) => DecodedAt::Prefill,
                    (true, false, false) => DecodedAt::Pool,
                };
            r.k_site.push(decoded_at as u8);
            r.device_cached_tokens.push(f64::from(req.device_cached));
            r.cloud_cached_tokens.push(f64::from(req.cloud_cached));
            r.device_busy.push(req.busy as u8);
            r.device_wait_s.push(req.device_wait.as_secs());
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
