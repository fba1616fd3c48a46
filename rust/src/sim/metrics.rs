//! Per-request display metrics, accumulated token by token without keeping per-token data, and a
//! log-bucketed histogram of inter-token gaps across all requests (for ITL percentiles).
//!
//! QoE follows Andes (arXiv 2404.16283): the user expects the first token after `ttft` and then tokens
//! at `tokens_per_s`; the expected delivery curve reaches level `y` at `ttft + y / v`. With `s_j` the
//! display time of token `j` (from the request's arrival) and `T` the later of the expected and actual
//! completion, QoE = `∫min(A, E) / ∫E` over `[0, T]` = 1 - delay area / expected area, where `A` is the
//! actual curve. Tokens shown faster than expected earn nothing extra. We compute it exactly per token
//! as `O·T - Σ_j ∫_{j-1}^{j} max(s_j, ttft + y/v) dy` over `O·T - ∫_0^O (ttft + y/v) dy`.

use crate::time::Nanos;

/// The QoE parameters.
#[derive(Debug, Clone, Copy)]
pub struct QoeParams {
    /// Expected time to first token, seconds.
    pub ttft_s: f64,
    /// Expected token delivery speed, tokens per second.
    pub tokens_per_s: f64,
}

/// Streaming display metrics of one request.
#[derive(Debug, Clone, Default)]
pub struct DisplayMetrics {
    first: Option<Nanos>,
    last: Nanos,
    count: u32,
    max_gap: Nanos,
    /// `Σ_j ∫ max(s_j, ttft + y/v) dy`, seconds·tokens.
    qoe_acc: f64,
}

impl DisplayMetrics {
    /// Records the display of the next token at `t`, for a request that arrived at `arrival`.
    #[inline]
    pub fn record(&mut self, arrival: Nanos, t: Nanos, qoe: QoeParams, hist: &mut GapHistogram) {
        if self.first.is_some() {
            let gap = t - self.last;
            self.max_gap = self.max_gap.max(gap);
            hist.add(gap);
        } else {
            self.first = Some(t);
        }
        self.last = t;
        self.count += 1;
        let s = (t - arrival).as_secs();
        let j = f64::from(self.count);
        let (a, v) = (qoe.ttft_s, qoe.tokens_per_s);
        let y_star = (s - a) * v; // where the expected curve crosses s
        self.qoe_acc += if y_star <= j - 1.0 {
            a + (2.0 * j - 1.0) / (2.0 * v)
        } else if y_star >= j {
            s
        } else {
            s * (y_star - j + 1.0) + a * (j - y_star) + (j * j - y_star * y_star) / (2.0 * v)
        };
    }

    /// Tokens displayed.
    #[must_use]
    pub fn count(&self) -> u32 {
        self.count
    }
    /// First display time.
    #[must_use]
    pub fn first(&self) -> Option<Nanos> {
        self.first
    }
    /// Last display time.
    #[must_use]
    pub fn last(&self) -> Nanos {
        self.last
    }
    /// Largest gap between consecutive displays.
    #[must_use]
    pub fn max_gap(&self) -> Nanos {
        self.max_gap
    }

    /// Mean gap after the first token (vLLM's TPOT), seconds; NaN with fewer than two tokens.
    #[must_use]
    pub fn tpot_s(&self) -> f64 {
        match self.first {
            Some(f) if self.count > 1 => (self.last - f).as_secs() / f64::from(self.count - 1),
            _ => f64::NAN,
        }
    }

    /// The Andes-style QoE in `[0, 1]`.
    #[must_use]
    pub fn qoe(&self, arrival: Nanos, qoe: QoeParams) -> f64 {
        let o = f64::from(self.count);
        if self.count == 0 {
            return 0.0;
        }
        let (a, v) = (qoe.ttft_s, qoe.tokens_per_s);
        let t = (self.last - arrival).as_secs().max(a + o / v);
        let expected = o * t - (o * a + o * o / (2.0 * v));
        if expected <= 0.0 {
            return 1.0;
        }
        ((o * t - self.qoe_acc) / expected).clamp(0.0, 1.0)
    }
}

const SUB_BITS: u32 = 6;
const SUB: usize = 1 << SUB_BITS;

/// A log-bucketed histogram of gaps in nanoseconds: 64 buckets per power of two (under 1.6% error).
#[derive(Debug, Clone)]
pub struct GapHistogram {
    counts: Vec<u64>,
    total: u64,
    sum_ns: f64,
}

impl Default for GapHistogram {
    fn default() -> Self {
        Self { counts: vec![0; 64 * SUB], total: 0, sum_ns: 0.0 }
    }
}

impl GapHistogram {
    #[inline]
    fn bucket(v: u64) -> usize {
        if v < SUB as u64 {
            return v as usize;
        }
        let e = v.ilog2();
        let mantissa = (v >> (e - SUB_BITS)) as usize & (SUB - 1);
        (e - SUB_BITS + 1) as usize * SUB + mantissa
    }

    fn lower_bound(b: usize) -> f64 {
        if b < SUB {
            return b as f64;
        }
        let e = (b / SUB) as u32 + SUB_BITS - 1;
        let m = (b % SUB) as u64;
        ((1_u64 << e) + (m << (e - SUB_BITS))) as f64
    }

    /// Adds one gap.
    #[inline]
    pub fn add(&mut self, gap: Nanos) {
        let v = gap.0.max(0) as u64;
        self.counts[Self::bucket(v)] += 1;
        self.total += 1;
        self.sum_ns += v as f64;
    }

    /// Gaps recorded.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Mean gap, seconds (NaN when empty).
    #[must_use]
    pub fn mean_s(&self) -> f64 {
        if self.total == 0 {
            f64::NAN
        } else {
            self.sum_ns / self.total as f64 / 1e9
        }
    }

    /// The `q`-quantile in seconds (bucket midpoint; NaN when empty).
    #[must_use]
    pub fn quantile_s(&self, q: f64) -> f64 {
        if self.total == 0 {
            return f64::NAN;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let lo = Self::lower_bound(b);
                let hi = Self::lower_bound(b + 1);
                return (lo + hi) / 2.0 / 1e9;
            }
        }
        f64::NAN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_within_two_percent() {
        let mut h = GapHistogram::default();
        for ms in 1..=1000 {
            h.add(Nanos::ms(ms));
        }
        for (q, want) in [(0.5, 0.5), (0.9, 0.9), (0.99, 0.99)] {
            let got = h.quantile_s(q);
            assert!((got - want).abs() / want < 0.02, "q{q}: {got} vs {want}");
        }
        assert!((h.mean_s() - 0.5005).abs() < 1e-9);
    }

    #[test]
    fn qoe_is_one_when_on_time_and_falls_with_delay() {
        let p = QoeParams { ttft_s: 1.0, tokens_per_s: 10.0 };
        let mut hist = GapHistogram::default();
        let on_time = |delay: f64, hist: &mut GapHistogram| {
            let mut m = DisplayMetrics::default();
            for j in 0..50 {
                m.record(Nanos::ZERO, Nanos::secs(delay + 1.0 + f64::from(j) / 10.0), p, hist);
            }
            m.qoe(Nanos::ZERO, p)
        };
        assert!((on_time(0.0, &mut hist) - 1.0).abs() < 0.02);
        let late = on_time(3.0, &mut hist);
        assert!(late < 0.8 && late > 0.0, "{late}");
    }

    #[test]
    fn tokens_faster_than_expected_do_not_exceed_one() {
        let p = QoeParams { ttft_s: 1.0, tokens_per_s: 10.0 };
        let mut m = DisplayMetrics::default();
        let mut hist = GapHistogram::default();
        for _ in 0..20 {
            m.record(Nanos::ZERO, Nanos::ms(100), p, &mut hist);
        }
        assert!(m.qoe(Nanos::ZERO, p) <= 1.0);
        assert_eq!(m.max_gap(), Nanos::ZERO);
    }
}
