//! Old keyword and attribute names kept for one release: the bindings hand them to the package's one
//! helper, `pdcore.deprecation`, which warns (a `DeprecationWarning` naming the new name) and moves an old
//! keyword's value under its new name, as it does for the Python functions.

use crate::pacing::PaceConfig;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The seconds a binding received under the new names of renamed keywords (`given`, `None` for not
/// given), with their old spellings in `old` (the binding's `**old`) moved in by
/// `pdcore.deprecation.renamed_keywords`, which warns, and raises `TypeError` for both spellings of one
/// argument. Any other keyword in `old` is a `TypeError`, as Python raises for an unknown one.
pub(crate) fn renamed<const N: usize>(
    py: Python<'_>,
    owner: &str,
    old: Option<&Bound<'_, PyDict>>,
    given: [(&'static str, Option<f64>); N],
) -> PyResult<[Option<f64>; N]> {
    let Some(old) = old.filter(|d| !d.is_empty()) else {
        return Ok(given.map(|(_, v)| v));
    };
    let received = old.copy()?;
    for (name, v) in &given {
        if let Some(v) = v {
            received.set_item(name, v)?;
        }
    }
    let accepted: Vec<&str> = given.iter().map(|(name, _)| *name).collect();
    let kwargs = PyDict::new(py);
    kwargs.set_item("stacklevel", 1)?; // the binding has no Python frame: its caller is the first
    let moved = py
        .import("pdcore.deprecation")?
        .getattr("renamed_keywords")?
        .call((owner, received, accepted.clone()), Some(&kwargs))?
        .cast_into::<PyDict>()?;
    let mut out = [None; N];
    for (slot, name) in out.iter_mut().zip(&accepted) {
        if let Some(v) = moved.get_item(name)? {
            *slot = Some(v.extract()?);
            moved.del_item(name)?;
        }
    }
    if let Some((name, _)) = moved.iter().next() {
        let name = name.repr()?;
        return Err(PyTypeError::new_err(format!("{owner}() got an unexpected keyword argument {name}")));
    }
    Ok(out)
}

/// A required argument after [`renamed`]: the `TypeError` Python raises when it is missing.
pub(crate) fn required(owner: &str, name: &str, value: Option<f64>) -> PyResult<f64> {
    value.ok_or_else(|| PyTypeError::new_err(format!("{owner}() missing required argument: '{name}'")))
}

/// The pacing bounds of a binding's keywords `min_tpot_s` and `max_tpot_s`, both required, their old
/// spellings `min_tpot` and `max_tpot` included.
pub(crate) fn pace_bounds(
    py: Python<'_>,
    owner: &str,
    min_tpot_s: Option<f64>,
    max_tpot_s: Option<f64>,
    old: Option<&Bound<'_, PyDict>>,
) -> PyResult<PaceConfig> {
    let [min, max] = renamed(py, owner, old, [("min_tpot_s", min_tpot_s), ("max_tpot_s", max_tpot_s)])?;
    let (min, max) = (required(owner, "min_tpot_s", min)?, required(owner, "max_tpot_s", max)?);
    Ok(PaceConfig::from_secs(min, max)?)
}

/// Warns that `owner`'s attribute `new` was read by its old name `old`.
pub(crate) fn warn_attribute(py: Python<'_>, owner: &str, old: &str, new: &str) -> PyResult<()> {
    let kwargs = PyDict::new(py);
    kwargs.set_item("stacklevel", 1)?;
    py.import("pdcore.deprecation")?.getattr("warn_renamed")?.call((owner, old, new), Some(&kwargs))?;
    Ok(())
}
