//! PyO3 bindings: thin wrappers that convert arguments, call the core and convert results.
//! Compiled only with the `python` feature.

mod buffer;
mod cost;
mod errors;
mod event_loop;
mod pacing;
mod sim;

use crate::error::CoreError;
use pyo3::prelude::*;

/// A non-negative count from a Python int, with an error naming the argument.
pub(crate) fn count<T: TryFrom<i64>>(v: i64, arg: &'static str) -> PyResult<T> {
    T::try_from(v).map_err(|_| {
        CoreError::invalid(arg, format!("= {v} is not a valid count"), "pass a whole number >= 0 in range")
            .into()
    })
}

/// The native module `pdcore._core`.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", crate::VERSION)?;
    errors::register(m)?;
    m.add_function(wrap_pyfunction!(pacing::pace, m)?)?;
    m.add_class::<pacing::PySpeedController>()?;
    m.add_class::<buffer::PyTokenBuffer>()?;
    m.add_class::<event_loop::PyEventLoop>()?;
    cost::register(m)?;
    sim::register(m)?;
    Ok(())
}
