//! Binding of the gap rule (`crate::cost::gap`): `within_objective`, and its old name `gap_within`.

use crate::cost::within_objective;
use crate::py::renamed::warn_attribute;
use numpy::{AllowTypeChange, IntoPyArray, PyArrayLikeDyn, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt};

/// The gap rule (`crate::cost::gap`): a bool for a number, elementwise (a bool array of the same shape)
/// for anything else numpy reads as float64.
#[pyfunction(name = "within_objective")]
pub fn py_within_objective<'py>(
    py: Python<'py>,
    seconds: &Bound<'py, PyAny>,
    objective_s: f64,
) -> PyResult<Bound<'py, PyAny>> {
    if seconds.is_instance_of::<PyFloat>() || seconds.is_instance_of::<PyInt>() {
        let s: f64 = seconds.extract()?;
        return Ok(PyBool::new(py, within_objective(s, objective_s)).to_owned().into_any());
    }
    let values: PyArrayLikeDyn<'py, f64, AllowTypeChange> = seconds.extract()?;
    let view = values.as_array();
    let out: Vec<bool> = view.iter().map(|&s| within_objective(s, objective_s)).collect();
    let shape = view.shape().to_vec();
    Ok(out.into_pyarray(py).reshape(shape)?.into_any())
}

/// Deprecated: `within_objective`.
#[pyfunction]
#[pyo3(signature = (gap_s, max_tpot))]
pub fn gap_within<'py>(
    py: Python<'py>,
    gap_s: &Bound<'py, PyAny>,
    max_tpot: f64,
) -> PyResult<Bound<'py, PyAny>> {
    warn_attribute(py, "pdcore._core", "gap_within", "within_objective")?;
    py_within_objective(py, gap_s, max_tpot)
}
