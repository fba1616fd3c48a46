//! Binding of the one planner (`crate::cost::planner`) for the live runtime: a turn told its cloud's first
//! token and pace, planned with the device's prices. Thin: the rule lives in the core.

use super::cost::PyDeviceCost;
use super::renamed::{renamed, required};
use crate::cost::planner::{live_optimizer, plan_turn, Turn, TurnPlan};
use crate::cost::Cached;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The plan of one turn.
#[pyclass(name = "TurnPlan", module = "pdcore._core", frozen, get_all)]
pub struct PyTurnPlan {
    serve: &'static str,
    k: u32,
    refine_ratio: f64,
    k_site: &'static str,
    k_site_reason: &'static str,
    reason: &'static str,
    wanted_k: u32,
    device_ready_s: f64,
    first_token_s: f64,
    converged: bool,
}

impl From<TurnPlan> for PyTurnPlan {
    fn from(p: TurnPlan) -> Self {
        Self {
            serve: p.serve.name(),
            k: p.k,
            refine_ratio: p.refine_ratio,
            k_site: p.k_site.name(),
            k_site_reason: p.k_site_reason.name(),
            reason: p.reason.name(),
            wanted_k: p.wanted_k,
            device_ready_s: p.device_ready_s,
            first_token_s: p.first_token_s,
            converged: p.converged,
        }
    }
}

#[pymethods]
impl PyTurnPlan {
    fn __repr__(&self) -> String {
        format!(
            "TurnPlan(serve={:?}, k={}, refine_ratio={}, k_site={:?}, reason={:?}, wanted_k={}, \
             device_ready_s={}, first_token_s={}, converged={})",
            self.serve,
            self.k,
            self.refine_ratio,
            self.k_site,
            self.reason,
            self.wanted_k,
            self.device_ready_s,
            self.first_token_s,
            if self.converged { "True" } else { "False" },
        )
    }
}

/// Plans one live turn (`crate::cost::planner::plan_turn` with `live_optimizer`).
#[pyfunction(name = "plan_turn")]
#[pyo3(signature = (prompt_tokens, *, device, max_tpot_s = None, first_token_s, cloud_tpot_s = 0.0,
    device_cached_tokens = 0, cloud_cached_tokens = 0, max_tokens = None, context_room = None,
    k_margin = 0.0, reduce = true, max_k = 4096, **old),
    text_signature = "(prompt_tokens, *, device, max_tpot_s, first_token_s, cloud_tpot_s=0.0, \
        device_cached_tokens=0, cloud_cached_tokens=0, max_tokens=None, context_room=None, k_margin=0.0, \
        reduce=True, max_k=4096, **old)")]
#[allow(clippy::too_many_arguments)] // the keyword arguments of one Python function
pub fn py_plan_turn(
    py: Python<'_>,
    prompt_tokens: i64,
    device: &PyDeviceCost,
    max_tpot_s: Option<f64>,
    first_token_s: f64,
    cloud_tpot_s: f64,
    device_cached_tokens: i64,
    cloud_cached_tokens: i64,
    max_tokens: Option<i64>,
    context_room: Option<i64>,
    k_margin: f64,
    reduce: bool,
    max_k: i64,
    old: Option<&Bound<'_, PyDict>>,
) -> PyResult<PyTurnPlan> {
    let [max_tpot_s] = renamed(py, "plan_turn", old, [("max_tpot_s", max_tpot_s)])?;
    let max_tpot_s = required("plan_turn", "max_tpot_s", max_tpot_s)?;
    let optimizer = live_optimizer(device.inner.clone(), max_tpot_s, super::count(max_k, "max_k")?)?;
    let turn = Turn {
        prompt: super::count(prompt_tokens, "prompt_tokens")?,
        cached: Cached {
            device: super::count(device_cached_tokens, "device_cached_tokens")?,
            cloud: super::count(cloud_cached_tokens, "cloud_cached_tokens")?,
        },
        first_token_s,
        cloud_tpot_s: Some(cloud_tpot_s),
        waiting_prefill_tokens: None,
        max_tokens: max_tokens.map(|m| super::count(m, "max_tokens")).transpose()?,
        context_room,
        k_margin,
        reduce,
    };
    Ok(plan_turn(&optimizer, &turn)?.into())
}

/// Registers the planner's class and function.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTurnPlan>()?;
    m.add_function(wrap_pyfunction!(py_plan_turn, m)?)?;
    Ok(())
}
