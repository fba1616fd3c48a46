//! Bindings of the speed controller: `pace` (batch, numpy in and out) and `SpeedController` (streaming).

use super::errors::detached;
use super::renamed::{pace_bounds, warn_attribute};
use crate::pacing::{pace_secs_into, SpeedController};
use crate::time::Nanos;
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;

fn opt_secs(v: Option<f64>, arg: &'static str) -> PyResult<Option<Nanos>> {
    Ok(v.map(|s| Nanos::from_secs(s, arg, None)).transpose()?)
}

/// Display times for a stream of cloud tokens; see `_core.pyi` for the rule.
#[pyfunction]
#[pyo3(signature = (arrivals, *, handoff_at, min_tpot_s = None, max_tpot_s = None, **old),
    text_signature = "(arrivals, *, handoff_at, min_tpot_s, max_tpot_s, **old)")]
pub fn pace<'py>(
    py: Python<'py>,
    arrivals: PyReadonlyArray1<'py, f64>,
    handoff_at: f64,
    min_tpot_s: Option<f64>,
    max_tpot_s: Option<f64>,
    old: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let cfg = pace_bounds(py, "pace", min_tpot_s, max_tpot_s, old)?;
    let handoff = Nanos::from_secs(handoff_at, "handoff_at", None)?;
    let view = arrivals.as_array();
    let contiguous;
    let a: &[f64] = if let Some(s) = view.as_slice() {
        s
    } else {
        contiguous = view.to_vec();
        &contiguous
    };
    let mut out = vec![0.0_f64; a.len()];
    detached(py, || pace_secs_into(a, handoff, cfg, &mut out))?;
    Ok(out.into_pyarray(py))
}

/// The streaming speed controller.
#[pyclass(name = "SpeedController", module = "pdcore._core")]
pub struct PySpeedController {
    inner: SpeedController,
}

#[pymethods]
impl PySpeedController {
    #[new]
    #[pyo3(signature = (*, min_tpot_s = None, max_tpot_s = None, expected_tokens = None, handoff_at = None,
        **old), text_signature = "(*, min_tpot_s, max_tpot_s, expected_tokens=None, handoff_at=None, **old)")]
    fn new(
        py: Python<'_>,
        min_tpot_s: Option<f64>,
        max_tpot_s: Option<f64>,
        expected_tokens: Option<Bound<'_, PyAny>>,
        handoff_at: Option<f64>,
        old: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let cfg = pace_bounds(py, "SpeedController", min_tpot_s, max_tpot_s, old)?;
        let handoff = opt_secs(handoff_at, "handoff_at")?;
        // a negative or huge count is the caller's mistake, named as such rather than an OverflowError
        let expected = expected_tokens.map(|n| super::count_of(&n, "expected_tokens")).transpose()?;
        Ok(Self { inner: SpeedController::new(cfg, expected, handoff) })
    }

    fn push(&mut self, at: f64) -> PyResult<()> {
        Ok(self.inner.push(Nanos::from_secs(at, "at", None)?)?)
    }

    #[pyo3(signature = (at))]
    fn set_handoff(&mut self, at: Option<f64>) -> PyResult<()> {
        self.inner.set_handoff(opt_secs(at, "at")?);
        Ok(())
    }

    #[pyo3(signature = (n))]
    fn set_expected(&mut self, n: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        self.inner.set_expected(n.map(|n| super::count_of(&n, "n")).transpose()?);
        Ok(())
    }

    fn next_due(&self) -> Option<f64> {
        self.inner.next_due().map(Nanos::as_secs)
    }

    #[pyo3(signature = (at = None))]
    fn mark_shown(&mut self, at: Option<f64>) -> PyResult<f64> {
        Ok(self.inner.mark_shown(opt_secs(at, "at")?)?.as_secs())
    }

    #[getter]
    fn received(&self) -> u64 {
        self.inner.received()
    }
    #[getter]
    fn shown(&self) -> u64 {
        self.inner.shown()
    }
    #[getter]
    fn buffered(&self) -> u64 {
        self.inner.buffered()
    }
    #[getter]
    fn last_shown(&self) -> Option<f64> {
        self.inner.last_shown().map(Nanos::as_secs)
    }
    #[getter]
    fn handoff_at(&self) -> Option<f64> {
        self.inner.handoff().map(Nanos::as_secs)
    }
    #[getter]
    fn expected_tokens(&self) -> Option<u64> {
        self.inner.expected()
    }
    #[getter]
    fn min_tpot_s(&self) -> f64 {
        self.inner.config().min_tpot().as_secs()
    }
    #[getter]
    fn max_tpot_s(&self) -> f64 {
        self.inner.config().max_tpot().as_secs()
    }
    /// Deprecated: `min_tpot_s`.
    #[getter]
    fn min_tpot(&self, py: Python<'_>) -> PyResult<f64> {
        warn_attribute(py, "SpeedController", "min_tpot", "min_tpot_s")?;
        Ok(self.min_tpot_s())
    }
    /// Deprecated: `max_tpot_s`.
    #[getter]
    fn max_tpot(&self, py: Python<'_>) -> PyResult<f64> {
        warn_attribute(py, "SpeedController", "max_tpot", "max_tpot_s")?;
        Ok(self.max_tpot_s())
    }

    fn __repr__(&self) -> String {
        format!(
            "SpeedController(min_tpot_s={}, max_tpot_s={}, expected_tokens={:?}, handoff_at={:?}, received={}, shown={})",
            self.min_tpot_s(),
            self.max_tpot_s(),
            self.inner.expected(),
            self.handoff_at(),
            self.inner.received(),
            self.inner.shown()
        )
    }
}
