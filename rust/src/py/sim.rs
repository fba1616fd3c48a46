//! Bindings of the simulator: configuration records, plans and the decision loop.

use super::cost::{PyDeviceCost, PyPlanOptimizer, PyRouterRule};
use super::errors::detached;
use crate::cost::{CloudCost, KSite, KSites, SpecDecode};
use crate::error::CoreError;
use crate::pacing::PaceConfig;
use crate::sim::caches::Turn;
use crate::sim::cloud::{CloudConfig, Deployment};
use crate::sim::metrics::QoeParams;
use crate::sim::policy::NativePolicy;
use crate::sim::{Conversations, Inputs, Mode, Plan, Simulator, Wire};

use crate::time::Nanos;
use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::{Mutex, MutexGuard, TryLockError};

/// The cloud's deployment and iteration-time model.
#[pyclass(name = "CloudConfig", module = "pdcore._core", frozen)]
#[derive(Clone)]
pub struct PyCloudConfig {
    inner: CloudConfig,
}

#[pymethods]
impl PyCloudConfig {
    #[new]
    #[pyo3(signature = (*, deployment, replicas = 1, prefill_replicas = 1, decode_replicas = 1, base_s,
        prefill_token_s, prefill_attn_s, decode_seq_s, decode_context_s, max_batch_size,
        max_tokens_per_iteration, kv_cache_tokens, gpus_per_replica, kv_bytes_per_token, kv_link_bytes_per_s,
        k_sites = "pool", prefill_decode_budget = 0, kv_write_token_s = 0.0, prefill_decode_gap_s = 0.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        deployment: &str,
        replicas: u32,
        prefill_replicas: u32,
        decode_replicas: u32,
        base_s: f64,
        prefill_token_s: f64,
        prefill_attn_s: f64,
        decode_seq_s: f64,
        decode_context_s: f64,
        max_batch_size: u32,
        max_tokens_per_iteration: u32,
        kv_cache_tokens: u64,
        gpus_per_replica: u32,
        kv_bytes_per_token: f64,
        kv_link_bytes_per_s: f64,
        k_sites: &str,
        prefill_decode_budget: u32,
        kv_write_token_s: f64,
        prefill_decode_gap_s: f64,
    ) -> PyResult<Self> {
        let deployment = match deployment {
            "colocated" => Deployment::Colocated,
            "disaggregated" => Deployment::Disaggregated,
            other => {
                return Err(CoreError::invalid(
                    "deployment",
                    format!("is {other:?}"),
                    "use \"colocated\" or \"disaggregated\"",
                )
                .into())
            }
        };
        let inner = CloudConfig {
            deployment,
            replicas,
            prefill_replicas,
            decode_replicas,
            cost: CloudCost {
                base_s,
                prefill_token_s,
                prefill_attn_s,
                decode_seq_s,
                decode_context_s,
                max_tokens_per_iteration,
            },
            max_batch_size,
            kv_cache_tokens,
            gpus_per_replica,
            kv_bytes_per_token,
            kv_link_bytes_per_s,
            k_sites: KSites::parse(k_sites, "k_sites")?,
            prefill_decode_budget,
            kv_write_token_s,
            prefill_decode_gap_s,
        };
        inner.validate()?;
        Ok(Self { inner })
    }

    #[getter]
    fn deployment(&self) -> &'static str {
        match self.inner.deployment {
            Deployment::Colocated => "colocated",
            Deployment::Disaggregated => "disaggregated",
        }
    }

    #[getter]
    fn k_sites(&self) -> &'static str {
        self.inner.k_sites.name()
    }

    fn __repr__(&self) -> String {
        format!("CloudConfig({:?})", self.inner)
    }
}

/// A policy's decision for one request.
#[pyclass(name = "Plan", module = "pdcore._core", frozen)]
#[derive(Clone)]
pub struct PyPlan {
    inner: Plan,
}

#[pymethods]
impl PyPlan {
    #[new]
    #[pyo3(signature = (mode, *, k = None, refine_ratio = 1.0, min_tpot = 0.0, max_tpot = 0.05, k_site = "pool",
        gamma = None, alpha = None),
        text_signature = "(mode, *, k=0, refine_ratio=1.0, min_tpot=0.0, max_tpot=0.05, k_site='pool', gamma=None, alpha=None)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        mode: &str,
        k: Option<Bound<'_, PyAny>>,
        refine_ratio: f64,
        min_tpot: f64,
        max_tpot: f64,
        k_site: &str,
        gamma: Option<Bound<'_, PyAny>>,
        alpha: Option<f64>,
    ) -> PyResult<Self> {
        let pace = PaceConfig::from_secs(min_tpot, max_tpot)?;
        let k = k.map_or(Ok(0), |k| super::whole(&k, "k"))?;
        let k = u32::try_from(k).map_err(|_| {
            CoreError::invalid(
                "k",
                format!("= {k} is not a token count"),
                "pass cloud decode tokens in 0..2^32",
            )
        })?;
        let site = KSite::parse(k_site, "k_site")?;
        let mode = Mode::parse(mode)?;
        let spec = match (mode, gamma, alpha) {
            (Mode::Spec, Some(gamma), Some(alpha)) => {
                Some(SpecDecode::new(super::count_of(&gamma, "gamma")?, alpha)?)
            }
            (Mode::Spec, ..) => {
                return Err(CoreError::invalid(
                    "gamma",
                    "and alpha are needed by mode \"spec\"",
                    "pass the draft length gamma and the acceptance rate alpha",
                )
                .into())
            }
            (_, None, None) => None,
            _ => {
                return Err(CoreError::invalid(
                    "gamma",
                    "and alpha apply to mode \"spec\" only",
                    "leave them out, or plan mode \"spec\"",
                )
                .into())
            }
        };
        Ok(Self { inner: Plan { spec, ..Plan::new(mode, k, refine_ratio, pace)?.at_site(site) } })
    }

    #[getter]
    fn mode(&self) -> &'static str {
        Mode::NAMES[self.inner.mode as usize]
    }
    #[getter]
    fn k(&self) -> u32 {
        self.inner.k
    }
    #[getter]
    fn refine_ratio(&self) -> f64 {
        self.inner.refine_ratio
    }
    #[getter]
    fn k_site(&self) -> &'static str {
        self.inner.k_site.name()
    }
    #[getter]
    fn gamma(&self) -> Option<u32> {
        self.inner.spec.map(|s| s.gamma)
    }
    #[getter]
    fn alpha(&self) -> Option<f64> {
        self.inner.spec.map(|s| s.alpha)
    }
    #[getter]
    fn min_tpot(&self) -> f64 {
        self.inner.pace.min_tpot().as_secs()
    }
    #[getter]
    fn max_tpot(&self) -> f64 {
        self.inner.pace.max_tpot().as_secs()
    }

    fn __repr__(&self) -> String {
        let site = match self.inner.k_site {
            KSite::Pool => String::new(),
            KSite::Prefill => ", k_site='prefill'".to_owned(),
        };
        let site = match self.inner.spec {
            Some(s) => format!("{site}, gamma={}, alpha={}", s.gamma, s.alpha),
            None => site,
        };
        format!(
            "Plan({:?}, k={}, refine_ratio={}, min_tpot={}, max_tpot={}{site})",
            self.mode(),
            self.k(),
            self.refine_ratio(),
            self.min_tpot(),
            self.max_tpot()
        )
    }

    fn __eq__(&self, other: &Self) -> bool {
        let (a, b) = (&self.inner, &other.inner);
        a.mode == b.mode
            && a.k == b.k
            && a.refine_ratio.to_bits() == b.refine_ratio.to_bits()
            && a.pace == b.pace
            && a.k_site == b.k_site
            && a.spec.map(|s| (s.gamma, s.alpha.to_bits())) == b.spec.map(|s| (s.gamma, s.alpha.to_bits()))
    }
}

fn counts(arr: &PyReadonlyArray1<'_, i64>, arg: &'static str) -> PyResult<Vec<u32>> {
    arr.as_array()
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            u32::try_from(v).map_err(|_| {
                CoreError::invalid_at(arg, i, format!("= {v} is not a token count"), "pass counts in 0..2^32")
                    .into()
            })
        })
        .collect()
}

/// The conversation columns as the simulator takes them (all four per-request columns or none).
#[allow(clippy::too_many_arguments)]
fn conversations(
    n: usize,
    columns: [Option<PyReadonlyArray1<'_, i64>>; 4],
    block_offsets: Option<PyReadonlyArray1<'_, i64>>,
    block_ids: Option<PyReadonlyArray1<'_, u64>>,
    block_tokens: u32,
    device_cache_tokens: u64,
    cloud_cache_tokens: u64,
) -> PyResult<Conversations> {
    const NAMES: [&str; 4] = ["session", "turn", "parent", "shared_prefix_tokens"];
    let mut turns = Vec::new();
    if columns.iter().any(Option::is_some) {
        let mut cols: Vec<Vec<i64>> = Vec::with_capacity(4);
        for (col, name) in columns.iter().zip(NAMES) {
            let Some(col) = col else {
                return Err(CoreError::invalid(
                    name,
                    "is missing",
                    "pass session, turn, parent and shared_prefix_tokens together",
                )
                .into());
            };
            let v = col.as_array().to_vec();
            if v.len() != n {
                return Err(CoreError::invalid(
                    name,
                    format!("has {} entries for {n} requests", v.len()),
                    "pass one value per request",
                )
                .into());
            }
            cols.push(v);
        }
        #[allow(clippy::needless_range_loop)] // one row across the four columns
        for i in 0..n {
            let value = |c: usize, lo: i64| -> PyResult<u32> {
                let v = cols[c][i];
                if v < lo || v > i64::from(u32::MAX) {
                    return Err(CoreError::invalid_at(
                        NAMES[c],
                        i,
                        format!("= {v} is out of range"),
                        "pass a whole number in range",
                    )
                    .into());
                }
                Ok(u32::try_from(v.max(0)).expect("checked"))
            };
            let parent = value(2, -1)?;
            turns.push(Turn {
                device: value(0, 0)?,
                session: value(0, 0)?,
                parent: (cols[2][i] >= 0).then_some(parent),
                shared: value(3, 0)?,
                turn: value(1, 1)?,
                prompt: 0,
            });
        }
    }
    let (block_offsets, block_ids) = match (block_offsets, block_ids) {
        (Some(o), Some(b)) => {
            let offsets = o
                .as_array()
                .iter()
                .map(|&v| {
                    usize::try_from(v).map_err(|_| {
                        CoreError::invalid("block_offsets", format!("holds {v}"), "pass offsets >= 0")
                    })
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            (offsets, b.as_array().to_vec())
        }
        (None, None) => (Vec::new(), Vec::new()),
        _ => {
            return Err(CoreError::invalid(
                "block_ids",
                "and block_offsets are not given together",
                "pass both or neither",
            )
            .into())
        }
    };
    Ok(Conversations {
        turns,
        block_offsets,
        block_ids,
        block_tokens,
        device_cache_tokens,
        cloud_cache_tokens,
    })
}

fn times(arr: &PyReadonlyArray1<'_, f64>, arg: &'static str) -> PyResult<Vec<Nanos>> {
    arr.as_array().iter().enumerate().map(|(i, &v)| Ok(Nanos::from_secs(v, arg, Some(i))?)).collect()
}

/// A built-in policy planned inside the simulator (`crate::sim::policy`).
#[pyclass(name = "NativePolicy", module = "pdcore._core", frozen)]
pub struct PyNativePolicy {
    inner: NativePolicy,
}

#[pymethods]
impl PyNativePolicy {
    /// Every request gets `plan`.
    #[staticmethod]
    fn fixed(plan: &PyPlan) -> Self {
        Self { inner: NativePolicy::Fixed(plan.inner) }
    }

    /// The optimizer's plan per request, in `mode` ("pd" or "naive") or on the device alone.
    #[staticmethod]
    #[pyo3(signature = (mode, *, optimizer, min_tpot, max_tpot))]
    fn auto(mode: &str, optimizer: &PyPlanOptimizer, min_tpot: f64, max_tpot: f64) -> PyResult<Self> {
        let pace = PaceConfig::from_secs(min_tpot, max_tpot)?;
        Ok(Self { inner: NativePolicy::auto(Mode::parse(mode)?, pace, optimizer.inner.clone())? })
    }

    /// `short` for prompts of at most `threshold` tokens, `long` for longer ones.
    #[staticmethod]
    #[pyo3(signature = (*, threshold, short, long))]
    fn by_prompt(threshold: &Bound<'_, PyAny>, short: &PyPlan, long: &PyPlan) -> PyResult<Self> {
        let threshold = super::count_of(threshold, "threshold")?;
        Ok(Self { inner: NativePolicy::ByPrompt { threshold, short: short.inner, long: long.inner } })
    }

    /// The whole-request router: device or cloud per request by `rule`.
    #[staticmethod]
    #[pyo3(signature = (rule, *, min_tpot, max_tpot))]
    fn router(rule: &PyRouterRule, min_tpot: f64, max_tpot: f64) -> PyResult<Self> {
        let pace = PaceConfig::from_secs(min_tpot, max_tpot)?;
        Ok(Self { inner: NativePolicy::Router { rule: rule.inner.clone(), pace } })
    }

    fn __repr__(&self) -> String {
        match &self.inner {
            NativePolicy::Fixed(p) => format!("NativePolicy.fixed({p:?})"),
            NativePolicy::Auto { mode, .. } => {
                format!("NativePolicy.auto({:?})", Mode::NAMES[*mode as usize])
            }
            NativePolicy::ByPrompt { threshold, .. } => {
                format!("NativePolicy.by_prompt(threshold={threshold})")
            }
            NativePolicy::Router { .. } => "NativePolicy.router(...)".to_owned(),
        }
    }
}

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
        device_cache_tokens = 0, cloud_cache_tokens = 0))]
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
    ) -> PyResult<Self> {
        let conv = conversations(
            prompt_tokens.len()?,
            [session, turn, parent, shared_prefix_tokens],
            block_offsets,
            block_ids,
            block_tokens,
            device_cache_tokens,
            cloud_cache_tokens,
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
        Ok(Self { inner: Mutex::new(Simulator::new(inp, cloud.inner.clone(), device.inner.clone())?) })
    }

    fn next_decision(&self, py: Python<'_>) -> PyResult<Option<u32>> {
        let mut guard = self.sim()?;
        let sim: &mut Simulator = &mut guard;
        detached(py, || sim.next_decision())
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
        let r = self.sim()?.results();
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

/// Registers the simulator classes.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyCloudConfig>()?;
    m.add_class::<PyNativePolicy>()?;
    m.add_class::<PyPlan>()?;
    m.add_class::<PySimulator>()?;
    Ok(())
}
