//! Bindings of the cost model (`crate::cost`): device and cloud prices, the catch-up solver, the
//! optimizer, the live hand-off estimator, the gap rule and the router's rule, one file each as in the
//! core. Thin: every rule lives in the core.

mod catchup;
mod cloud;
mod device;
mod gap;
mod handoff;
mod optimizer;
mod router;

pub use cloud::PyCloudCost;
pub use device::PyDeviceCost;
pub use optimizer::PyPlanOptimizer;
pub use router::PyRouterRule;

use crate::cost::{ROUTER_BUCKETS, TIME_BOUNDS};
use crate::error::CoreError;
use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyFloat;

/// A finite count of tokens >= 0 (a float, so that array arguments broadcast), else an error naming it.
fn tokens(v: f64, arg: &'static str, index: Option<usize>) -> Result<f64, CoreError> {
    if v.is_finite() && v >= 0.0 {
        return Ok(v);
    }
    let problem = format!("= {v} is not a finite token count >= 0");
    let fix = "pass token counts, finite and 0 or more";
    Err(match index {
        Some(i) => CoreError::invalid_at(arg, i, problem, fix),
        None => CoreError::invalid(arg, problem, fix),
    })
}

/// A Python int or float, or a numpy array of them: a float for a scalar, a float64 array of the same
/// shape for an array.
enum Arg<'py> {
    Scalar(f64),
    Array(PyReadonlyArrayDyn<'py, f64>),
}

fn arg<'py>(v: &Bound<'py, PyAny>, name: &'static str) -> PyResult<Arg<'py>> {
    if let Ok(arr) = v.cast::<PyArrayDyn<f64>>() {
        if arr.ndim() > 0 {
            return Ok(Arg::Array(arr.readonly()));
        }
    }
    if v.is_instance_of::<pyo3::types::PyBool>() {
        return Err(CoreError::invalid(name, "is a bool", "pass a token count").into());
    }
    if let Ok(x) = v.extract::<f64>() {
        return Ok(Arg::Scalar(x));
    }
    let np = v.py().import("numpy")?;
    let arr = np.call_method1("asarray", (v, "float64")).map_err(|_| {
        PyErr::from(CoreError::invalid(name, "is not a number or an array of numbers", "pass token counts"))
    })?;
    let arr = arr.cast_into::<PyArrayDyn<f64>>()?;
    if arr.ndim() == 0 {
        return Ok(Arg::Scalar(arr.readonly().as_array().iter().copied().next().unwrap_or(f64::NAN)));
    }
    Ok(Arg::Array(arr.readonly()))
}

/// Applies a one-argument price to a scalar or elementwise to an array.
fn map1<'py>(
    py: Python<'py>,
    v: &Bound<'py, PyAny>,
    name: &'static str,
    f: impl Fn(f64) -> f64,
) -> PyResult<Bound<'py, PyAny>> {
    match arg(v, name)? {
        Arg::Scalar(x) => Ok(PyFloat::new(py, f(tokens(x, name, None)?)).into_any()),
        Arg::Array(a) => {
            let view = a.as_array();
            let mut out = Vec::with_capacity(view.len());
            for (i, &x) in view.iter().enumerate() {
                out.push(f(tokens(x, name, Some(i))?));
            }
            let shape = view.shape().to_vec();
            Ok(out.into_pyarray(py).reshape(shape)?.into_any())
        }
    }
}

/// Registers the cost-model classes and functions.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<device::PyDeviceCost>()?;
    m.add_class::<cloud::PyCloudCost>()?;
    m.add_class::<catchup::PyCatchUp>()?;
    m.add_class::<optimizer::PyChoice>()?;
    m.add_class::<optimizer::PyPlanOptimizer>()?;
    m.add_class::<handoff::PyHandoffEstimator>()?;
    m.add_class::<router::PyRouterRule>()?;
    m.add_function(wrap_pyfunction!(catchup::py_solve_catchup, m)?)?;
    m.add_function(wrap_pyfunction!(catchup::py_refined_prompt_tokens, m)?)?;
    m.add_function(wrap_pyfunction!(gap::py_within_objective, m)?)?;
    m.add_function(wrap_pyfunction!(gap::gap_within, m)?)?;
    m.add("DEFAULT_MAX_K", crate::cost::DEFAULT_MAX_K)?;
    m.add("PRIOR_WEIGHT_TOKENS", crate::cost::PRIOR_WEIGHT_TOKENS)?;
    m.add("LIVE_GUARD_STEPS", crate::cost::LIVE_GUARD_STEPS)?;
    m.add("PRIOR_SPREAD_CALLS", crate::cost::PRIOR_SPREAD_CALLS)?;
    m.add("SPREAD_Z", crate::cost::SPREAD_Z)?;
    m.add("MAX_STEP_SPREAD", crate::cost::MAX_STEP_SPREAD)?;
    m.add("GAP_SLACK_S", crate::cost::GAP_SLACK_S)?;
    m.add("DEFAULT_MAX_TPOT_S", crate::cost::DEFAULT_MAX_TPOT_S)?;
    m.add("ROUTER_BUCKETS", ROUTER_BUCKETS)?;
    let bounds: Vec<(&str, f64, &str)> = TIME_BOUNDS.iter().map(|b| (b.key, b.max_s, b.why)).collect();
    m.add("TIME_BOUNDS", pyo3::types::PyTuple::new(m.py(), bounds)?)?;
    m.add("CLOCK_LIMIT_S", crate::time::CLOCK_LIMIT_SECS)?;
    Ok(())
}
