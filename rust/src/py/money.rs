//! Bindings of the accounting (`crate::cost::money`): a deployment's prices and the bill of a run.

use crate::cost::{Prices, Usage, Weights};
use crate::error::CoreError;
use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The prices of a deployment: the cloud's GPU-hour, the device's energy per token, its radio, its battery.
#[pyclass(name = "Prices", module = "pdcore._core", frozen)]
#[derive(Clone)]
pub struct PyPrices {
    pub(crate) inner: Prices,
}

#[pymethods]
impl PyPrices {
    #[new]
    #[pyo3(signature = (*, usd_per_gpu_hour, prefill_j_per_token, decode_j_per_token, wait_w, radio_base_w,
        radio_up_j_per_byte, radio_down_j_per_byte, radio_fixed_j, battery_wh))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        usd_per_gpu_hour: f64,
        prefill_j_per_token: f64,
        decode_j_per_token: f64,
        wait_w: f64,
        radio_base_w: f64,
        radio_up_j_per_byte: f64,
        radio_down_j_per_byte: f64,
        radio_fixed_j: f64,
        battery_wh: f64,
    ) -> PyResult<Self> {
        let inner = Prices {
            usd_per_gpu_hour,
            prefill_j_per_token,
            decode_j_per_token,
            wait_w,
            radio_base_w,
            radio_up_j_per_byte,
            radio_down_j_per_byte,
            radio_fixed_j,
            battery_wh,
        };
        inner.validate()?;
        Ok(Self { inner })
    }

    #[getter]
    fn usd_per_gpu_hour(&self) -> f64 {
        self.inner.usd_per_gpu_hour
    }

    #[getter]
    fn battery_wh(&self) -> f64 {
        self.inner.battery_wh
    }

    /// Per request: `usd`, `compute_j`, `network_j`, `device_j` and `battery_pct` (float64 arrays).
    #[pyo3(signature = (*, gpu_s, prefill_tokens, decode_tokens, bytes_up, bytes_down, radio_s))]
    #[allow(clippy::too_many_arguments)]
    fn bill<'py>(
        &self,
        py: Python<'py>,
        gpu_s: PyReadonlyArray1<'py, f64>,
        prefill_tokens: PyReadonlyArray1<'py, f64>,
        decode_tokens: PyReadonlyArray1<'py, f64>,
        bytes_up: PyReadonlyArray1<'py, f64>,
        bytes_down: PyReadonlyArray1<'py, f64>,
        radio_s: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let cols = [
            ("gpu_s", gpu_s.as_array()),
            ("prefill_tokens", prefill_tokens.as_array()),
            ("decode_tokens", decode_tokens.as_array()),
            ("bytes_up", bytes_up.as_array()),
            ("bytes_down", bytes_down.as_array()),
            ("radio_s", radio_s.as_array()),
        ];
        let n = cols[0].1.len();
        for (name, col) in &cols {
            if col.len() != n {
                return Err(CoreError::invalid(
                    name,
                    format!("has {} entries but gpu_s has {n}", col.len()),
                    "pass one value per request",
                )
                .into());
            }
        }
        let (mut usd, mut compute, mut network, mut device, mut battery) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for i in 0..n {
            let b = self.inner.bill(&Usage {
                gpu_s: cols[0].1[i],
                prefill_tokens: cols[1].1[i],
                decode_tokens: cols[2].1[i],
                bytes_up: cols[3].1[i],
                bytes_down: cols[4].1[i],
                radio_s: cols[5].1[i],
            });
            usd.push(b.usd);
            compute.push(b.compute_j);
            network.push(b.network_j);
            device.push(b.device_j());
            battery.push(self.inner.battery_pct(b.device_j()));
        }
        let d = PyDict::new(py);
        d.set_item("usd", usd.into_pyarray(py))?;
        d.set_item("compute_j", compute.into_pyarray(py))?;
        d.set_item("network_j", network.into_pyarray(py))?;
        d.set_item("device_j", device.into_pyarray(py))?;
        d.set_item("battery_pct", battery.into_pyarray(py))?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!("Prices({:?})", self.inner)
    }
}

/// The optimizer's weights on cost and energy (`crate::cost::tradeoff`).
#[pyclass(name = "Weights", module = "pdcore._core", frozen)]
#[derive(Clone)]
pub struct PyWeights {
    pub(crate) inner: Weights,
}

#[pymethods]
impl PyWeights {
    #[new]
    #[pyo3(signature = (*, cost_weight, energy_weight, prices, gpus_per_replica, expected_output_tokens,
        ttft_slo_s, prompt_bytes_per_token, stream_bytes_per_token))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        cost_weight: f64,
        energy_weight: f64,
        prices: &PyPrices,
        gpus_per_replica: f64,
        expected_output_tokens: f64,
        ttft_slo_s: f64,
        prompt_bytes_per_token: f64,
        stream_bytes_per_token: f64,
    ) -> PyResult<Self> {
        let inner = Weights {
            cost: cost_weight,
            energy: energy_weight,
            prices: prices.inner,
            gpus_per_replica,
            expected_output_tokens,
            ttft_slo_s,
            prompt_bytes_per_token,
            stream_bytes_per_token,
        };
        inner.validate()?;
        Ok(Self { inner })
    }

    #[getter]
    fn cost_weight(&self) -> f64 {
        self.inner.cost
    }

    #[getter]
    fn energy_weight(&self) -> f64 {
        self.inner.energy
    }

    fn __repr__(&self) -> String {
        format!("Weights({:?})", self.inner)
    }
}

/// Registers the accounting classes.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPrices>()?;
    m.add_class::<PyWeights>()?;
    Ok(())
}
