//! Bindings of a cloud replica's prices (`crate::cost::cloud`).

use super::tokens;
use crate::cost::CloudCost;
use crate::error::CoreError;
use crate::py::count;
use crate::py::renamed::{renamed, required};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// One cloud replica's prices (`crate::cost::cloud`).
#[pyclass(name = "CloudCost", module = "pdcore._core", frozen)]
#[derive(Clone)]
pub struct PyCloudCost {
    pub(crate) inner: CloudCost,
}

#[pymethods]
impl PyCloudCost {
    #[new]
    #[pyo3(signature = (*, base_s, prefill_token_s, prefill_attn_s, decode_seq_s, decode_context_s,
        max_tokens_per_iteration, prefill_knee_token_s = 0.0, prefill_knee_tokens = 0))]
    #[allow(clippy::too_many_arguments, clippy::similar_names)] // the names are the profile's keys
    fn new(
        base_s: f64,
        prefill_token_s: f64,
        prefill_attn_s: f64,
        decode_seq_s: f64,
        decode_context_s: f64,
        max_tokens_per_iteration: i64,
        prefill_knee_token_s: f64,
        prefill_knee_tokens: i64,
    ) -> PyResult<Self> {
        let inner = CloudCost {
            base_s,
            prefill_token_s,
            prefill_attn_s,
            decode_seq_s,
            decode_context_s,
            prefill_knee_token_s,
            prefill_knee_tokens: count(prefill_knee_tokens, "prefill_knee_tokens")?,
            max_tokens_per_iteration: count(max_tokens_per_iteration, "max_tokens_per_iteration")?,
        };
        inner.validate()?;
        Ok(Self { inner })
    }

    fn lone_prefill_s(&self, prompt_tokens: i64) -> PyResult<f64> {
        Ok(self.inner.lone_prefill_s(count(prompt_tokens, "prompt_tokens")?))
    }

    fn lone_decode_s(&self, context_tokens: i64) -> PyResult<f64> {
        Ok(self.inner.lone_decode_s(count(context_tokens, "context_tokens")?))
    }

    #[pyo3(signature = (prefill_lens, decode_contexts, *, prefill_offsets = None))]
    fn iteration_s(
        &self,
        prefill_lens: Vec<i64>,
        decode_contexts: Vec<i64>,
        prefill_offsets: Option<Vec<i64>>,
    ) -> PyResult<f64> {
        if prefill_lens.is_empty() && decode_contexts.is_empty() {
            return Ok(0.0);
        }
        let offsets = prefill_offsets.unwrap_or_else(|| vec![0; prefill_lens.len()]);
        if offsets.len() != prefill_lens.len() {
            return Err(CoreError::invalid(
                "prefill_offsets",
                format!("has {} entries but prefill_lens has {}", offsets.len(), prefill_lens.len()),
                "pass one offset per prefill chunk",
            )
            .into());
        }
        let (mut tokens, mut attention) = (0.0, 0.0);
        for (i, (&len, &off)) in prefill_lens.iter().zip(&offsets).enumerate() {
            let len = u32::try_from(len).ok().filter(|&l| l >= 1).ok_or_else(|| {
                CoreError::invalid_at(
                    "prefill_lens",
                    i,
                    format!("= {len}"),
                    "a prefill chunk holds 1 to 2^32 tokens",
                )
            })?;
            let off = u32::try_from(off).map_err(|_| {
                CoreError::invalid_at(
                    "prefill_offsets",
                    i,
                    format!("= {off}"),
                    "an offset is 0 to 2^32 tokens",
                )
            })?;
            tokens += f64::from(len);
            attention += CloudCost::chunk_attention(off, len);
        }
        let mut context = 0.0;
        for (i, &c) in decode_contexts.iter().enumerate() {
            if c < 0 {
                return Err(CoreError::invalid_at(
                    "decode_contexts",
                    i,
                    format!("= {c}"),
                    "a context length cannot be negative",
                )
                .into());
            }
            context += c as f64;
        }
        Ok(self.inner.iteration(tokens, attention, decode_contexts.len() as f64, context).total_s)
    }

    fn queued_prefill_token_s(&self) -> f64 {
        self.inner.queued_prefill_token_s()
    }

    fn prefill_instance_decode_s(
        &self,
        context_tokens: i64,
        queued_prefill_tokens: f64,
        budget_tokens: i64,
    ) -> PyResult<f64> {
        let ctx = count(context_tokens, "context_tokens")?;
        let q = tokens(queued_prefill_tokens, "queued_prefill_tokens", None)?;
        let b = count(budget_tokens, "budget_tokens")?;
        Ok(self.inner.prefill_instance_decode_s(ctx, q, b))
    }

    #[pyo3(signature = (max_tpot_s = None, **old), text_signature = "($self, max_tpot_s, **old)")]
    fn prefill_decode_budget(
        &self,
        py: Python<'_>,
        max_tpot_s: Option<f64>,
        old: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<u32> {
        let owner = "CloudCost.prefill_decode_budget";
        let [max_tpot_s] = renamed(py, owner, old, [("max_tpot_s", max_tpot_s)])?;
        let max_tpot_s = required(owner, "max_tpot_s", max_tpot_s)?;
        if !(max_tpot_s.is_finite() && max_tpot_s > 0.0) {
            return Err(CoreError::invalid(
                "max_tpot_s",
                format!("is {max_tpot_s}"),
                "pass the largest display gap, finite seconds > 0",
            )
            .into());
        }
        Ok(self.inner.prefill_decode_budget(max_tpot_s))
    }

    fn queue_wait_lower_bound_s(&self, waiting_prefill_tokens: f64, prefill_replicas: i64) -> PyResult<f64> {
        let w = tokens(waiting_prefill_tokens, "waiting_prefill_tokens", None)?;
        let r: u32 = count(prefill_replicas, "prefill_replicas")?;
        if r == 0 {
            return Err(CoreError::invalid("prefill_replicas", "is 0", "pass a count >= 1").into());
        }
        Ok(self.inner.queue_wait_lower_bound_s(w, r))
    }

    #[getter]
    fn max_tokens_per_iteration(&self) -> u32 {
        self.inner.max_tokens_per_iteration
    }

    fn __repr__(&self) -> String {
        format!("CloudCost({:?})", self.inner)
    }
}
