//! Bindings of the live runtime's hand-off estimate (`crate::cost::handoff`).

use super::PyDeviceCost;
use crate::cost::HandoffEstimator;
use crate::error::CoreError;
use crate::py::count;
use pyo3::prelude::*;

/// The live runtime's hand-off estimate (`crate::cost::handoff`).
#[pyclass(name = "HandoffEstimator", module = "pdcore._core", subclass)]
pub struct PyHandoffEstimator {
    inner: HandoffEstimator,
}

fn non_negative(v: f64, arg: &'static str) -> PyResult<f64> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(CoreError::invalid(arg, format!("is {v}"), "pass finite seconds >= 0").into())
    }
}

#[pymethods]
impl PyHandoffEstimator {
    #[new]
    #[pyo3(signature = (device, prompt_tokens, prompt_chars, prior_ratio = 1.0, *, started_at = 0.0,
        prompt_chunk_tokens, append_chunk_tokens, prior_spread = 0.0))]
    #[allow(clippy::too_many_arguments)] // the Python constructor's arguments, one each
    fn new(
        device: Option<&PyDeviceCost>,
        prompt_tokens: i64,
        prompt_chars: i64,
        prior_ratio: f64,
        started_at: f64,
        prompt_chunk_tokens: i64,
        append_chunk_tokens: i64,
        prior_spread: f64,
    ) -> PyResult<Self> {
        if !(prior_ratio.is_finite() && prior_ratio > 0.0) {
            return Err(CoreError::invalid(
                "prior_ratio",
                format!("is {prior_ratio}"),
                "pass the assumed speed ratio, finite and > 0",
            )
            .into());
        }
        Ok(Self {
            inner: HandoffEstimator::new(
                device.map(|d| d.inner.clone()),
                count(prompt_tokens, "prompt_tokens")?,
                count(prompt_chars, "prompt_chars")?,
                prior_ratio,
                non_negative(started_at, "started_at")?,
                count(prompt_chunk_tokens, "prompt_chunk_tokens")?,
                count(append_chunk_tokens, "append_chunk_tokens")?,
            )
            .with_prior_spread(non_negative(prior_spread, "prior_spread")?),
        })
    }

    #[getter]
    fn ratio(&self) -> Option<f64> {
        self.inner.ratio()
    }
    #[getter]
    fn prior_ratio(&self) -> f64 {
        self.inner.prior_ratio
    }
    #[getter]
    fn prior_spread(&self) -> f64 {
        self.inner.prior_spread
    }
    #[getter]
    fn spread(&self) -> f64 {
        self.inner.spread()
    }
    #[getter]
    fn measured_spread(&self) -> Option<(f64, u64)> {
        self.inner.measured_spread()
    }
    #[getter]
    fn prior_weight(&self) -> f64 {
        self.inner.prior_weight
    }
    #[getter]
    fn actual_s(&self) -> f64 {
        self.inner.actual_s
    }
    #[getter]
    fn predicted(&self) -> f64 {
        self.inner.predicted
    }
    #[getter]
    fn anchor_s(&self) -> f64 {
        self.inner.anchor_s
    }
    #[getter]
    fn prompt_tokens(&self) -> u64 {
        self.inner.prompt_tokens
    }
    #[getter]
    fn device(&self) -> Option<PyDeviceCost> {
        self.inner.device().map(|d| PyDeviceCost { inner: d.clone() })
    }

    #[pyo3(signature = (done, chunk, took, *, at))]
    fn observe_prompt(&mut self, done: i64, chunk: i64, took: f64, at: f64) -> PyResult<()> {
        self.inner.observe_prompt(
            count(done, "done")?,
            count(chunk, "chunk")?,
            non_negative(took, "took")?,
            at,
        );
        Ok(())
    }

    #[pyo3(signature = (context, tokens, took, *, at))]
    fn observe_append(&mut self, context: i64, tokens: i64, took: f64, at: f64) -> PyResult<()> {
        self.inner.observe_append(
            count(context, "context")?,
            count(tokens, "tokens")?,
            non_negative(took, "took")?,
            at,
        );
        Ok(())
    }

    fn count_pieces(&mut self, pieces: i64, tokens: i64) -> PyResult<()> {
        self.inner.count_pieces(count(pieces, "pieces")?, count(tokens, "tokens")?);
        Ok(())
    }

    #[pyo3(signature = (pieces, chars_per_piece))]
    fn tokens_for(&self, pieces: i64, chars_per_piece: Option<f64>) -> PyResult<u64> {
        if pieces <= 0 {
            return Ok(0);
        }
        Ok(self.inner.tokens_for(count(pieces, "pieces")?, chars_per_piece))
    }

    fn guard(&self, context: i64, tokens_left: i64) -> PyResult<f64> {
        Ok(self.inner.guard(count(context, "context")?, count(tokens_left, "tokens_left")?))
    }

    fn append_step(&self, context: i64) -> PyResult<Option<f64>> {
        Ok(self.inner.append_step(count(context, "context")?))
    }

    fn append_per_token(&self, context: i64) -> PyResult<Option<f64>> {
        Ok(self.inner.append_per_token(count(context, "context")?))
    }

    fn estimate(&self, now: f64, prompt_done: i64, context: i64, tokens_left: i64) -> PyResult<Option<f64>> {
        Ok(self.inner.estimate(
            now,
            count(prompt_done, "prompt_done")?,
            count(context, "context")?,
            count(tokens_left, "tokens_left")?,
        ))
    }
}
