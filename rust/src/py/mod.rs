//! PyO3 bindings: thin wrappers that convert arguments, call the core and convert results.
//! Compiled only with the `python` feature.

mod buffer;
mod cost;
mod errors;
mod event_loop;
mod money;
mod pacing;
mod planner;
mod renamed;
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

/// A whole number from any Python integer (numpy's too), with an error naming the argument for a bool, a
/// non-integer or a value beyond 64 bits (instead of a bare `OverflowError`).
pub(crate) fn whole(v: &Bound<'_, PyAny>, arg: &'static str) -> PyResult<i64> {
    if v.is_instance_of::<pyo3::types::PyBool>() {
        return Err(CoreError::invalid(arg, "is a bool", "pass a whole number").into());
    }
    let Ok(index) = v.call_method0("__index__") else {
        let shown = v.repr().map_or_else(|_| "?".to_owned(), |r| r.to_string());
        return Err(CoreError::invalid(
            arg,
            format!("= {shown} is not a whole number"),
            "pass a whole number",
        )
        .into());
    };
    index.extract::<i64>().map_err(|_| {
        let shown = index.repr().map_or_else(|_| "?".to_owned(), |r| r.to_string());
        CoreError::invalid(
            arg,
            format!("= {shown} is beyond the 64-bit range"),
            "pass a whole number in range",
        )
        .into()
    })
}

/// A count in the range of `T` from any Python integer ([`whole`], then [`count`]).
pub(crate) fn count_of<T: TryFrom<i64>>(v: &Bound<'_, PyAny>, arg: &'static str) -> PyResult<T> {
    count(whole(v, arg)?, arg)
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
    money::register(m)?;
    sim::register(m)?;
    planner::register(m)?;
    Ok(())
}
