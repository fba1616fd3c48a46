//! The Python exception tree and the one conversion from [`CoreError`].
//!
//! `PdcoreError` is a plain exception class; `InvalidInputError` also derives from `ValueError`,
//! `InvalidStateError` from `RuntimeError` and `DeadlineMissedError` from `RuntimeError`, so callers
//! can catch either the pdcore type or the builtin one. Multiple bases need `type(name, bases, dict)`,
//! which is why those three are built at first use instead of with `create_exception!`.

use crate::error::CoreError;
use pyo3::exceptions::{PyException, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

pyo3::create_exception!(
    pdcore.exceptions,
    PdcoreError,
    PyException,
    "Base class of every error pdcore raises on purpose."
);

static INVALID_INPUT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static INVALID_STATE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DEADLINE_MISSED: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn subclass(py: Python<'_>, name: &str, doc: &str, builtin: Bound<'_, PyType>) -> PyResult<Py<PyType>> {
    let bases = PyTuple::new(py, [py.get_type::<PdcoreError>(), builtin])?;
    let ns = PyDict::new(py);
    ns.set_item("__module__", "pdcore.exceptions")?;
    ns.set_item("__doc__", doc)?;
    let ty = py.get_type::<PyType>().call1((name, bases, ns))?;
    Ok(ty.cast_into::<PyType>()?.unbind())
}

/// `pdcore.InvalidInputError(PdcoreError, ValueError)`.
pub fn invalid_input_error(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    INVALID_INPUT
        .get_or_try_init(py, || {
            subclass(
                py,
                "InvalidInputError",
                "A bad argument, trace row or profile value; the message names it and the fix.",
                py.get_type::<PyValueError>(),
            )
        })
        .map(|t| t.bind(py))
}

/// `pdcore.InvalidStateError(PdcoreError, RuntimeError)`.
pub fn invalid_state_error(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    INVALID_STATE
        .get_or_try_init(py, || {
            subclass(
                py,
                "InvalidStateError",
                "A call the object's current state does not allow; the message says what to do instead.",
                py.get_type::<PyRuntimeError>(),
            )
        })
        .map(|t| t.bind(py))
}

/// `pdcore.DeadlineMissedError(PdcoreError, RuntimeError)`, raised by the strict live runtime.
pub fn deadline_missed_error(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    DEADLINE_MISSED
        .get_or_try_init(py, || {
            subclass(
                py,
                "DeadlineMissedError",
                "The real-time runtime fell behind the wall clock by more than its tolerance.",
                py.get_type::<PyRuntimeError>(),
            )
        })
        .map(|t| t.bind(py))
}

impl From<CoreError> for PyErr {
    fn from(err: CoreError) -> Self {
        Python::attach(|py| {
            let ty = match err {
                CoreError::InvalidInput { .. } => invalid_input_error(py),
                CoreError::InvalidState { .. } => invalid_state_error(py),
            };
            match ty {
                Ok(ty) => PyErr::from_type(ty.clone(), err.to_string()),
                Err(e) => e,
            }
        })
    }
}

/// Runs pure-Rust work with the GIL released and maps its error. Work given here must not call back
/// into Python.
pub fn detached<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    T: Send,
    F: Send + FnOnce() -> Result<T, CoreError>,
{
    py.detach(work).map_err(PyErr::from)
}

/// Registers the exception classes on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("PdcoreError", py.get_type::<PdcoreError>())?;
    m.add("InvalidInputError", invalid_input_error(py)?)?;
    m.add("InvalidStateError", invalid_state_error(py)?)?;
    m.add("DeadlineMissedError", deadline_missed_error(py)?)?;
    Ok(())
}
