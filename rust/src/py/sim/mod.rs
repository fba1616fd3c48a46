//! Bindings of the simulator: configuration records, plans, the built-in policies, the decision loop,
//! and the code-to-name tables of its results.

mod columns;
mod config;
mod plan;
mod simulator;

use crate::cost::KSites;
use crate::sim::cloud::Deployment;
use crate::sim::{DecodedAt, DeviceBusy, Mode, ServedBy, WhenBusy};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// Registers the simulator classes and the names its codes stand for (Python reads them from here, once).
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<config::PyCloudConfig>()?;
    m.add_class::<plan::PyNativePolicy>()?;
    m.add_class::<plan::PyPlan>()?;
    m.add_class::<simulator::PySimulator>()?;
    m.add("MODES", PyTuple::new(py, Mode::NAMES)?)?;
    m.add("SERVED_BY", PyTuple::new(py, ServedBy::NAMES)?)?;
    m.add("DECODED_AT", PyTuple::new(py, DecodedAt::NAMES)?)?;
    m.add("DEVICE_BUSY", PyTuple::new(py, DeviceBusy::NAMES)?)?;
    m.add("WHEN_DEVICE_BUSY", PyTuple::new(py, WhenBusy::NAMES)?)?;
    m.add("K_SITES", PyTuple::new(py, KSites::NAMES)?)?;
    m.add("DEFAULT_K_SITES", KSites::DEFAULT.name())?;
    m.add("DEPLOYMENTS", PyTuple::new(py, Deployment::NAMES)?)?;
    Ok(())
}
