//! Bindings of the catch-up fixed point (`crate::cost::catchup`) and the refined prompt's length.

use super::PyDeviceCost;
use crate::cost::catchup::refined_prompt_tokens;
use crate::cost::{solve_catchup, CatchUp, CatchUpInput};
use crate::error::CoreError;
use crate::py::count;
use crate::py::renamed::{renamed, required};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The solution of the catch-up fixed point.
#[pyclass(name = "CatchUp", module = "pdcore._core", frozen, get_all)]
pub struct PyCatchUp {
    k: u32,
    device_alone: bool,
    converged: bool,
    device_ready_s: f64,
    iterations: u32,
}

impl From<CatchUp> for PyCatchUp {
    fn from(s: CatchUp) -> Self {
        Self {
            k: s.k,
            device_alone: s.device_alone,
            converged: s.converged,
            device_ready_s: s.device_ready_s,
            iterations: s.iterations,
        }
    }
}

#[pymethods]
impl PyCatchUp {
    fn __repr__(&self) -> String {
        format!(
            "CatchUp(k={}, device_alone={}, converged={}, device_ready_s={}, iterations={})",
            self.k,
            if self.device_alone { "True" } else { "False" },
            if self.converged { "True" } else { "False" },
            self.device_ready_s,
            self.iterations
        )
    }
}

/// The catch-up fixed point (`crate::cost::catchup`).
#[pyfunction(name = "solve_catchup")]
#[pyo3(signature = (prompt_tokens, *, device, first_token_s, max_tpot_s = None, refine_ratio = 1.0,
    cloud_tpot_s = 0.0, max_k = 4096, first_gap_s = None, device_cached_tokens = 0, **old),
    text_signature = "(prompt_tokens, *, device, first_token_s, max_tpot_s, refine_ratio=1.0, cloud_tpot_s=0.0, \
        max_k=4096, first_gap_s=None, device_cached_tokens=0, **old)")]
#[allow(clippy::too_many_arguments)] // the keyword arguments of one Python function
pub fn py_solve_catchup(
    py: Python<'_>,
    prompt_tokens: i64,
    device: &PyDeviceCost,
    first_token_s: f64,
    max_tpot_s: Option<f64>,
    refine_ratio: f64,
    cloud_tpot_s: f64,
    max_k: i64,
    first_gap_s: Option<f64>,
    device_cached_tokens: i64,
    old: Option<&Bound<'_, PyDict>>,
) -> PyResult<PyCatchUp> {
    let [max_tpot_s] = renamed(py, "solve_catchup", old, [("max_tpot_s", max_tpot_s)])?;
    let inp = CatchUpInput {
        prompt_tokens: count(prompt_tokens, "prompt_tokens")?,
        first_token_s,
        max_tpot_s: required("solve_catchup", "max_tpot_s", max_tpot_s)?,
        refine_ratio,
        cloud_tpot_s,
        first_gap_s,
        max_k: count(max_k, "max_k")?,
        device_cached_tokens: count(device_cached_tokens, "device_cached_tokens")?,
    };
    Ok(solve_catchup(&device.inner, &inp)?.into())
}

/// The prompt the device prefills at a refinement ratio: `max(1, ceil(r * L))`.
#[pyfunction(name = "refined_prompt_tokens")]
pub fn py_refined_prompt_tokens(prompt_tokens: i64, refine_ratio: f64) -> PyResult<u32> {
    if !(refine_ratio.is_finite() && refine_ratio > 0.0 && refine_ratio <= 1.0) {
        return Err(CoreError::invalid(
            "refine_ratio",
            format!("is {refine_ratio}"),
            "pass the kept fraction of the prompt in (0, 1]",
        )
        .into());
    }
    Ok(refined_prompt_tokens(count(prompt_tokens, "prompt_tokens")?, refine_ratio))
}
