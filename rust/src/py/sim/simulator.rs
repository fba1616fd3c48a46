//! Binding of the trace-driven simulator (`crate::sim`): its inputs from numpy columns, the decision
//! loop, and its results as arrays.

use super::columns::{conversations, counts, times};
use super::config::PyCloudConfig;
use super::plan::{PyNativePolicy, PyPlan};
use crate::error::CoreError;
use crate::py::cost::PyDeviceCost;
use crate::py::errors::detached;
use crate::sim::metrics::QoeParams;
use crate::sim::policy::NativePolicy;
use crate::sim::{FleetClass, Inputs, Simulator, WhenBusy, Wire};
use crate::time::Nanos;
use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::{Mutex, MutexGuard, TryLockError};

/// The trace-driven simulator. One run is driven from one thread at a time: a second thread that calls
/// it while it runs gets `InvalidStateError` (not a borrow panic).
#[pyclass(name = "Simulator", module = "pdcore._core", frozen)]
pub struct PySimulator {
    inner: Mutex<Simulator>,
}

impl PySimulator {
    fn sim(&self) -> PyResult<MutexGuard<'_, Simulator>> {
        match self.inner.try_lock() {
            Ok(guard) => Ok(guard),
            Err(TryLockError::WouldBlock) => Err(CoreError::state(
                "the Simulator is in use by another thread",
                "drive one Simulator from one thread; build one per thread to run several",
            )
            .into()),
            Err(TryLockError::Poisoned(_)) => Err(CoreError::state(
                "the Simulator stopped in the middle of a step and cannot go on",
                "build a new Simulator",
            )
            .into()),
        }
    }
}

#[pymethods]
impl PySimulator {
    #[new]
    #[pyo3(signature = (*, arrival_s, prompt_tokens, output_tokens, one_way_s, cloud, device, bandwidth_bps,
        qoe_ttft_s = 1.0, qoe_tokens_per_s = 10.0, prompt_bytes_per_token = 0.0, stream_bytes_per_token = 0.0,
        session = None, turn = None, parent = None,
        shared_prefix_tokens = None, block_offsets = None, block_ids = None, block_tokens = 512,
        device_cache_tokens = 0, cloud_cache_tokens = 0, when_device_busy = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        arrival_s: PyReadonlyArray1<'_, f64>,
        prompt_tokens: PyReadonlyArray1<'_, i64>,
        output_tokens: PyReadonlyArray1<'_, i64>,
        one_way_s: PyReadonlyArray1<'_, f64>,
        cloud: &PyCloudConfig,
        device: &PyDeviceCost,
        bandwidth_bps: f64,
        qoe_ttft_s: f64,
        qoe_tokens_per_s: f64,
        prompt_bytes_per_token: f64,
        stream_bytes_per_token: f64,
        session: Option<PyReadonlyArray1<'_, i64>>,
        turn: Option<PyReadonlyArray1<'_, i64>>,
        parent: Option<PyReadonlyArray1<'_, i64>>,
        shared_prefix_tokens: Option<PyReadonlyArray1<'_, i64>>,
        block_offsets: Option<PyReadonlyArray1<'_, i64>>,
        block_ids: Option<PyReadonlyArray1<'_, u64>>,
        block_tokens: u32,
        device_cache_tokens: u64,
        cloud_cache_tokens: u64,
        when_device_busy: Option<&str>,
    ) -> PyResult<Self> {
        let conv = conversations(
            prompt_tokens.len()?,
            [session, turn, parent, shared_prefix_tokens],
            block_offsets,
            block_ids,
            (block_tokens, device_cache_tokens, cloud_cache_tokens),
        )?;
        let inp = Inputs {
            arrival: times(&arrival_s, "arrival_s")?,
            prompt: counts(&prompt_tokens, "prompt_tokens")?,
            output: counts(&output_tokens, "output_tokens")?,
            one_way_s: one_way_s.as_array().to_vec(),
            bandwidth_bytes_per_s: bandwidth_bps / 8.0,
            qoe: QoeParams { ttft_s: qoe_ttft_s, tokens_per_s: qoe_tokens_per_s },
            wire: Wire { prompt_bytes_per_token, stream_bytes_per_token },
            conv,
        };
        let rule = when_device_busy.map(WhenBusy::parse).transpose()?;
        let mut sim = Simulator::new(inp, cloud.inner.clone(), device.inner.clone())?;
        sim.set_one_answer_per_device(rule)?;
        Ok(Self { inner: Mutex::new(sim) })
    }

    fn next_decision(&self, py: Python<'_>) -> PyResult<Option<u32>> {
        let mut guard = self.sim()?;
        let sim: &mut Simulator = &mut guard;
        detached(py, || sim.next_decision())
    }

    /// Gives the run a fleet (`crate::sim::fleet`): per class a device (None: no capable device, the
    /// cloud alone) and a downlink; per request its class.
    #[pyo3(signature = (*, devices, bandwidth_bps, device_class))]
    fn set_fleet(
        &self,
        devices: Vec<Option<PyRef<'_, PyDeviceCost>>>,
        bandwidth_bps: Vec<f64>,
        device_class: PyReadonlyArray1<'_, i64>,
    ) -> PyResult<()> {
        if devices.len() != bandwidth_bps.len() {
            return Err(CoreError::invalid(
                "bandwidth_bps",
                format!("has {} entries for {} device classes", bandwidth_bps.len(), devices.len()),
                "pass one bandwidth per class",
            )
            .into());
        }
        let classes = devices
            .iter()
            .zip(&bandwidth_bps)
            .map(|(d, &b)| FleetClass {
                device: d.as_ref().map(|d| d.inner.clone()),
                bandwidth_bytes_per_s: b / 8.0,
            })
            .collect();
        let class_of = counts(&device_class, "device_class")?;
        Ok(self.sim()?.set_fleet(classes, &class_of)?)
    }

    fn run_policies(&self, py: Python<'_>, policies: Vec<PyRef<'_, PyNativePolicy>>) -> PyResult<()> {
        let rules: Vec<NativePolicy> = policies.iter().map(|p| p.inner.clone()).collect();
        let mut guard = self.sim()?;
        let sim: &mut Simulator = &mut guard;
        detached(py, || sim.run_policies(&rules))
    }

    #[getter]
    fn device_classes(&self) -> PyResult<usize> {
        Ok(self.sim()?.device_classes())
    }

    fn decide(&self, request: u32, plan: &PyPlan) -> PyResult<()> {
        Ok(self.sim()?.decide(request, plan.inner)?)
    }

    fn run_policy(&self, py: Python<'_>, policy: &PyNativePolicy) -> PyResult<()> {
        let mut guard = self.sim()?;
        let sim: &mut Simulator = &mut guard;
        let rule = &policy.inner;
        detached(py, || sim.run_policy(rule))
    }

    fn cloud_load<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let l = self.sim()?.cloud_load();
        let d = PyDict::new(py);
        d.set_item("waiting_requests", l.waiting_requests)?;
        d.set_item("waiting_prefill_tokens", l.waiting_prefill_tokens)?;
        d.set_item("running_decode", l.running_decode)?;
        d.set_item("decode_capacity", l.decode_capacity)?;
        d.set_item("kv_used_frac", l.kv_used_frac)?;
        d.set_item("prefill_backlog_s", l.prefill_backlog_s)?;
        Ok(d)
    }

    fn record_timeline(&self, request: u32) -> PyResult<()> {
        Ok(self.sim()?.record_timeline(request)?)
    }

    #[pyo3(signature = (request=None))]
    fn timeline<'py>(&self, py: Python<'py>, request: Option<u32>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let sim = self.sim()?;
        let found = match request {
            Some(i) => sim.timeline_for(i),
            None => sim.timeline(),
        };
        let Some(tl) = found else { return Ok(None) };
        let secs = |v: &[Nanos]| v.iter().map(|t| t.as_secs()).collect::<Vec<f64>>();
        let (at, estimate): (Vec<Nanos>, Vec<Nanos>) = tl.handoff_estimates.iter().copied().unzip();
        let d = PyDict::new(py);
        d.set_item("cloud_arrivals_s", secs(&tl.cloud_arrivals).into_pyarray(py))?;
        d.set_item("displays_s", secs(&tl.displays).into_pyarray(py))?;
        d.set_item("from_cloud", tl.from_cloud.clone().into_pyarray(py))?;
        d.set_item("handoff_s", tl.handoff.map(Nanos::as_secs))?;
        d.set_item("handoff_estimates_at_s", secs(&at).into_pyarray(py))?;
        d.set_item("handoff_estimates_s", secs(&estimate).into_pyarray(py))?;
        Ok(Some(d))
    }

    /// The prompt tokens `request` (waiting for a plan) finds cached: `(device, cloud)`.
    fn cached(&self, request: u32) -> PyResult<(u32, u32)> {
        let mut sim = self.sim()?;
        if request as usize >= sim.len() {
            return Err(CoreError::invalid(
                "request",
                format!("= {request} but the workload has {} requests", sim.len()),
                "pick a request index in range",
            )
            .into());
        }
        let c = sim.cached(request);
        Ok((c.device, c.cloud))
    }

    fn cloud_lone_prefill_s(&self, prompt_tokens: u32) -> PyResult<f64> {
        Ok(self.sim()?.cloud_lone_prefill_s(prompt_tokens))
    }

    #[getter]
    fn now(&self) -> PyResult<f64> {
        Ok(self.sim()?.now().as_secs())
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.sim()?.len())
    }

    fn results<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let mut sim = self.sim()?;
        let r = sim.take_results()?;
        let d = PyDict::new(py);
        let float_cols = [
            ("ttft_s", r.ttft_s),
            ("e2e_s", r.e2e_s),
            ("tpot_s", r.tpot_s),
            ("max_gap_s", r.max_gap_s),
            ("handoff_gap_s", r.handoff_gap_s),
            ("handoff_stall_s", r.handoff_stall_s),
            ("qoe", r.qoe),
            ("cloud_prefill_gpu_s", r.cloud_prefill_gpu_s),
            ("cloud_decode_gpu_s", r.cloud_decode_gpu_s),
            ("cloud_decode_tokens", r.cloud_decode_tokens),
            ("cloud_tokens_kept", r.cloud_tokens_kept),
            ("cloud_tokens_discarded", r.cloud_tokens_discarded),
            ("device_prefill_tokens", r.device_prefill_tokens),
            ("device_decode_tokens", r.device_decode_tokens),
            ("handoff_pos", r.handoff_pos),
            ("cloud_ttft_s", r.cloud_ttft_s),
            ("cloud_tpot_s", r.cloud_tpot_s),
            ("displayed_tokens", r.displayed_tokens),
            ("finish_s", r.finish_s),
            ("refine_ratio", r.refine_ratio),
            ("bytes_up", r.bytes_up),
            ("bytes_down", r.bytes_down),
            ("radio_s", r.radio_s),
            ("device_cached_tokens", r.device_cached_tokens),
            ("cloud_cached_tokens", r.cloud_cached_tokens),
        ];
        for (name, col) in float_cols {
            d.set_item(name, col.into_pyarray(py))?;
        }
        if sim.one_answer_per_device().is_some() {
            d.set_item("device_busy", r.device_busy.into_pyarray(py))?;
            d.set_item("device_wait_s", r.device_wait_s.into_pyarray(py))?;
        }
        d.set_item("served_by", r.served_by.into_pyarray(py))?;
        d.set_item("mode", r.mode.into_pyarray(py))?;
        d.set_item("k_site", r.k_site.into_pyarray(py))?;
        Ok(d)
    }

    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.sim()?.summary();
        let d = PyDict::new(py);
        d.set_item("events", s.events as f64)?;
        d.set_item("iterations", s.iterations as f64)?;
        d.set_item("makespan_s", s.makespan_s)?;
        d.set_item("cloud_gpu_s_prefill", s.cloud_gpu_s_prefill)?;
        d.set_item("cloud_gpu_s_decode", s.cloud_gpu_s_decode)?;
        d.set_item("itl_p50_s", s.itl_p50_s)?;
        d.set_item("itl_p90_s", s.itl_p90_s)?;
        d.set_item("itl_p99_s", s.itl_p99_s)?;
        d.set_item("itl_mean_s", s.itl_mean_s)?;
        Ok(d)
    }
}
