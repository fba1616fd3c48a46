//! What hardware can physically take: the largest value each time coefficient of a profile may have (ours).
//!
//! Each bound is generous by orders of magnitude over the slowest hardware that could serve the model
//! (a CPU core, a phone), yet finite, so an absurd value (a typo, milliseconds written as seconds, a fit
//! gone wrong, an hour to write one token) is refused where the profile is read, naming its key and the
//! fix, instead of being priced into a run. The bounds do not by themselves keep every priced time inside
//! the simulator's clock (a prompt of 10^8 tokens at the slowest allowed prices still takes longer than
//! the clock holds): that is the clock's own check ([`crate::time`]), which refuses such a time naming
//! the request and what was priced.

use crate::error::{CoreError, Result};

/// The largest value of one time coefficient, with its profile key and the reason.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeBound {
    /// The profile key the bound applies to, as errors name it.
    pub key: &'static str,
    /// The largest value, seconds (per the coefficient's unit).
    pub max_s: f64,
    /// Why no hardware takes longer, in one line.
    pub why: &'static str,
}

/// `[iteration] base_s`, the fixed cost of a cloud iteration.
pub const ITERATION_BASE: TimeBound = TimeBound {
    key: "[iteration] base_s",
    max_s: 10.0,
    why: "one pass over a model's weights takes an accelerator milliseconds and a CPU about a second",
};
/// `[iteration] prefill_token_s`, per prefill token.
pub const PREFILL_TOKEN: TimeBound = TimeBound {
    key: "[iteration] prefill_token_s",
    max_s: 10.0,
    why: "a CPU prefills even a 70B model at about ten tokens a second, a hundred times faster",
};
/// `[iteration] prefill_knee_token_s`, per prefill token below the knee.
pub const PREFILL_KNEE_TOKEN: TimeBound = TimeBound {
    key: "[iteration] prefill_knee_token_s",
    max_s: 10.0,
    why: "below the knee a token shares one pass over the weights, which takes a CPU about a second",
};
/// `[iteration] prefill_attn_s`, per unit of `chunk·(2·offset + chunk)` (half a query-key pair).
pub const PREFILL_ATTENTION: TimeBound = TimeBound {
    key: "[iteration] prefill_attn_s",
    max_s: 0.01,
    why: "one query-key pair of the largest models takes a slow CPU core a few milliseconds",
};
/// `[iteration] decode_seq_s`, per decoding sequence.
pub const DECODE_SEQUENCE: TimeBound = TimeBound {
    key: "[iteration] decode_seq_s",
    max_s: 10.0,
    why: "a decode step is one pass over the weights: about a second on a CPU",
};
/// `[iteration] decode_context_s`, per context token of the decoding sequences.
pub const DECODE_CONTEXT: TimeBound = TimeBound {
    key: "[iteration] decode_context_s",
    max_s: 0.01,
    why: "reading one token's KV cache (at most a few MB) takes a CPU about a millisecond",
};
/// `[kv_transfer] write_token_s`, per token of a received KV cache.
pub const KV_WRITE_TOKEN: TimeBound = TimeBound {
    key: "[kv_transfer] write_token_s",
    max_s: 1.0,
    why: "writing one token's KV cache (at most a few MB) takes even a disk milliseconds",
};
/// `[prefill] seconds` over `[prefill] prompt_tokens`: each point's time per token.
pub const DEVICE_PREFILL_TOKEN: TimeBound = TimeBound {
    key: "[prefill] seconds",
    max_s: 10.0,
    why: "a CPU prefills even a 70B model at about ten tokens a second, a hundred times faster",
};
/// `[decode] tpot_s`, one device decode step.
pub const DEVICE_DECODE_STEP: TimeBound = TimeBound {
    key: "[decode] tpot_s",
    max_s: 10.0,
    why: "a decode step is one pass over the weights: about a second on a CPU",
};
/// Every bound, as `pdcore.limits` lists them.
pub const TIME_BOUNDS: [TimeBound; 9] = [
    ITERATION_BASE,
    PREFILL_TOKEN,
    PREFILL_KNEE_TOKEN,
    PREFILL_ATTENTION,
    DECODE_SEQUENCE,
    DECODE_CONTEXT,
    KV_WRITE_TOKEN,
    DEVICE_PREFILL_TOKEN,
    DEVICE_DECODE_STEP,
];

impl TimeBound {
    /// Refuses `value` (already finite and >= 0) above the bound; the error names `arg` (and `index`),
    /// says what the value is (`what`: "s", "s per token", ...) and why.
    pub fn check(&self, arg: &'static str, index: Option<usize>, value: f64, what: &str) -> Result<()> {
        if value <= self.max_s {
            return Ok(());
        }
        let problem = format!(
            "= {value} {what} is above {} {what}, more than any hardware takes ({}: {})",
            self.max_s, self.key, self.why
        );
        let fix = "correct the profile's value (times are in seconds; limits: docs/limits.md)";
        Err(match index {
            Some(i) => CoreError::invalid_at(arg, i, problem, fix),
            None => CoreError::invalid(arg, problem, fix),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_above_its_bound_is_refused_with_its_key_and_reason() {
        assert!(KV_WRITE_TOKEN.check("kv_write_token_s", None, 1.0, "s per token").is_ok());
        let e = KV_WRITE_TOKEN.check("kv_write_token_s", None, 3600.0, "s per token").unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("kv_write_token_s = 3600 s per token is above 1 s per token"), "{text}");
        assert!(text.contains("[kv_transfer] write_token_s: writing one token's KV"), "{text}");
        assert!(text.contains("; correct the profile's value"), "{text}");
        let e = DEVICE_DECODE_STEP.check("[decode] tpot_s", Some(2), 11.0, "s").unwrap_err();
        assert!(e.to_string().starts_with("[decode] tpot_s[2] = 11 s is above 10 s"), "{e}");
    }

    #[test]
    fn every_bound_is_finite_and_positive() {
        for b in TIME_BOUNDS {
            assert!(b.max_s.is_finite() && b.max_s > 0.0, "{b:?}");
            assert!(!b.why.is_empty() && b.key.starts_with('['), "{b:?}");
        }
    }
}
