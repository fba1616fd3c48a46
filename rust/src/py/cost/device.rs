//! Bindings of the device's prices (`crate::cost::device`), for a scalar or elementwise for an array.

use super::{arg, map1, tokens, Arg};
use crate::cost::DeviceCost;
use numpy::{IntoPyArray, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyFloat;

/// One device's prices (`crate::cost::device`).
#[pyclass(name = "DeviceCost", module = "pdcore._core", frozen)]
#[derive(Clone)]
pub struct PyDeviceCost {
    pub(crate) inner: DeviceCost,
}

#[pymethods]
impl PyDeviceCost {
    #[new]
    #[pyo3(signature = (*, prefill_tokens, prefill_s, decode_context, decode_tpot_s, kv_bytes_per_token,
        step_spread = 0.0))]
    fn new(
        prefill_tokens: Vec<f64>,
        prefill_s: Vec<f64>,
        decode_context: Vec<f64>,
        decode_tpot_s: Vec<f64>,
        kv_bytes_per_token: f64,
        step_spread: f64,
    ) -> PyResult<Self> {
        let inner =
            DeviceCost::new(prefill_tokens, prefill_s, decode_context, decode_tpot_s, kv_bytes_per_token)?
                .with_step_spread(step_spread)?;
        Ok(Self { inner })
    }

    fn prefill_s<'py>(&self, py: Python<'py>, tokens: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        map1(py, tokens, "prompt_tokens", |x| self.inner.prefill_s(x))
    }

    fn append_s<'py>(
        &self,
        py: Python<'py>,
        context: &Bound<'py, PyAny>,
        tokens: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let (Arg::Scalar(c), Arg::Scalar(n)) =
            (arg(context, "context_tokens")?, arg(tokens, "new_tokens")?)
        {
            let c = self::tokens(c, "context_tokens", None)?;
            let n = self::tokens(n, "new_tokens", None)?;
            return Ok(PyFloat::new(py, self.inner.append_s(c, n)).into_any());
        }
        let np = py.import("numpy")?;
        let pair = np.call_method1("broadcast_arrays", (context, tokens))?;
        let flat = |a: Bound<'py, PyAny>| -> PyResult<Vec<f64>> {
            np.call_method1("ravel", (a,))?.call_method1("astype", ("float64",))?.extract()
        };
        let shape: Vec<usize> = pair.get_item(0)?.getattr("shape")?.extract()?;
        let (c, n) = (flat(pair.get_item(0)?)?, flat(pair.get_item(1)?)?);
        let mut out = Vec::with_capacity(c.len());
        for (i, (&ci, &ni)) in c.iter().zip(&n).enumerate() {
            let ci = self::tokens(ci, "context_tokens", Some(i))?;
            let ni = self::tokens(ni, "new_tokens", Some(i))?;
            out.push(self.inner.append_s(ci, ni));
        }
        Ok(out.into_pyarray(py).reshape(shape)?.into_any())
    }

    fn tpot_s<'py>(&self, py: Python<'py>, context: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        map1(py, context, "context_tokens", |x| self.inner.tpot_s(x))
    }

    #[getter]
    fn kv_bytes_per_token(&self) -> f64 {
        self.inner.kv_bytes_per_token()
    }

    #[getter]
    fn step_spread(&self) -> f64 {
        self.inner.step_spread()
    }

    fn __repr__(&self) -> String {
        let (p, t) = (self.inner.prefill_curve(), self.inner.tpot_curve());
        format!(
            "DeviceCost(prefill_tokens={:?}, prefill_s={:?}, decode_context={:?}, decode_tpot_s={:?}, kv_bytes_per_token={}, step_spread={})",
            p.xs(),
            p.ys(),
            t.xs(),
            t.ys(),
            self.inner.kv_bytes_per_token(),
            self.inner.step_spread()
        )
    }

    fn __eq__(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}
