//! Binding of the gap rule (`crate::cost::gap`).

use crate::cost::within_objective;
use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods};
use pyo3::prelude::*;

/// The gap rule (`crate::cost::gap`), for a scalar or elementwise for an array.
#[pyfunction]
pub fn gap_within<'py>(
    py: Python<'py>,
    gap_s: &Bound<'py, PyAny>,
    max_tpot: f64,
) -> PyResult<Bound<'py, PyAny>> {
    if let Ok(arr) = gap_s.cast::<PyArrayDyn<f64>>() {
        let ro = arr.readonly();
        let view = ro.as_array();
        let out: Vec<bool> = view.iter().map(|&g| within_objective(g, max_tpot)).collect();
        let shape = view.shape().to_vec();
        return Ok(out.into_pyarray(py).reshape(shape)?.into_any());
    }
    let g: f64 = gap_s.extract()?;
    Ok(pyo3::types::PyBool::new(py, within_objective(g, max_tpot)).to_owned().into_any())
}
