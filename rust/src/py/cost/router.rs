//! Binding of the whole-request router's rule (`crate::cost::router`).

use super::PyDeviceCost;
use crate::cost::RouterRule;
use crate::py::{count, count_of};
use pyo3::prelude::*;

/// The whole-request router's rule (`crate::cost::router`).
#[pyclass(name = "RouterRule", module = "pdcore._core", frozen)]
pub struct PyRouterRule {
    pub(crate) inner: RouterRule,
}

#[pymethods]
impl PyRouterRule {
    #[new]
    #[pyo3(signature = (*, predicted_output, ttft_slo_s, max_tpot_s))]
    fn new(predicted_output: Vec<i64>, ttft_slo_s: f64, max_tpot_s: f64) -> PyResult<Self> {
        let predicted =
            predicted_output.iter().map(|&o| count(o, "predicted_output")).collect::<PyResult<Vec<u32>>>()?;
        Ok(Self { inner: RouterRule::new(predicted, ttft_slo_s, max_tpot_s)? })
    }

    fn predicted_output(&self, prompt_tokens: &Bound<'_, PyAny>) -> PyResult<u32> {
        Ok(self.inner.predicted_output(count_of(prompt_tokens, "prompt_tokens")?))
    }

    #[pyo3(signature = (device, prompt_tokens, cached_tokens = None))]
    fn on_device(
        &self,
        device: &PyDeviceCost,
        prompt_tokens: &Bound<'_, PyAny>,
        cached_tokens: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let prompt = count_of(prompt_tokens, "prompt_tokens")?;
        let cached = cached_tokens.map_or(Ok(0), |c| count_of(&c, "cached_tokens"))?;
        Ok(self.inner.on_device(&device.inner, prompt, cached))
    }

    fn __repr__(&self) -> String {
        format!("RouterRule({:?})", self.inner)
    }
}
