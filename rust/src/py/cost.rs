//! Bindings of the cost model (`crate::cost`): device and cloud prices, the catch-up solver, the
//! optimizer, the live hand-off estimator and the gap rule. Thin: every rule lives in the core.

use crate::cost::catchup::refined_prompt_tokens;
use crate::cost::{
    solve_catchup, within_objective, Cached, CatchUp, CatchUpInput, Choice, CloudCost, DeviceCost,
    HandoffEstimator, KSites, KvLink, PlanOptimizer, RouterRule, ROUTER_BUCKETS,
};
use crate::error::CoreError;
use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyFloat;

/// A finite count of tokens >= 0 (a float, so that array arguments broadcast), else an error naming it.
fn tokens(v: f64, arg: &'static str, index: Option<usize>) -> Result<f64, CoreError> {
    if v.is_finite() && v >= 0.0 {
        return Ok(v);
    }
    let problem = format!("= {v} is not a finite token count >= 0");
    let fix = "pass token counts, finite and 0 or more";
    Err(match index {
        Some(i) => CoreError::invalid_at(arg, i, problem, fix),
        None => CoreError::invalid(arg, problem, fix),
    })
}

/// A Python int or float, or a numpy array of them: a float for a scalar, a float64 array of the same
/// shape for an array.
enum Arg<'py> {
    Scalar(f64),
    Array(PyReadonlyArrayDyn<'py, f64>),
}

fn arg<'py>(v: &Bound<'py, PyAny>, name: &'static str) -> PyResult<Arg<'py>> {
    if let Ok(arr) = v.cast::<PyArrayDyn<f64>>() {
        if arr.ndim() > 0 {
            return Ok(Arg::Array(arr.readonly()));
        }
    }
    if v.is_instance_of::<pyo3::types::PyBool>() {
        return Err(CoreError::invalid(name, "is a bool", "pass a token count").into());
    }
    if let Ok(x) = v.extract::<f64>() {
        return Ok(Arg::Scalar(x));
    }
    let np = v.py().import("numpy")?;
    let arr = np.call_method1("asarray", (v, "float64")).map_err(|_| {
        PyErr::from(CoreError::invalid(name, "is not a number or an array of numbers", "pass token counts"))
    })?;
    let arr = arr.cast_into::<PyArrayDyn<f64>>()?;
    if arr.ndim() == 0 {
        return Ok(Arg::Scalar(arr.readonly().as_array().iter().copied().next().unwrap_or(f64::NAN)));
    }
    Ok(Arg::Array(arr.readonly()))
}

/// Applies a one-argument price to a scalar or elementwise to an array.
fn map1<'py>(
    py: Python<'py>,
    v: &Bound<'py, PyAny>,
    name: &'static str,
    f: impl Fn(f64) -> f64,
) -> PyResult<Bound<'py, PyAny>> {
    match arg(v, name)? {
        Arg::Scalar(x) => Ok(PyFloat::new(py, f(tokens(x, name, None)?)).into_any()),
        Arg::Array(a) => {
            let view = a.as_array();
            let mut out = Vec::with_capacity(view.len());
            for (i, &x) in view.iter().enumerate() {
                out.push(f(tokens(x, name, Some(i))?));
            }
            let shape = view.shape().to_vec();
            Ok(out.into_pyarray(py).reshape(shape)?.into_any())
        }
    }
}

/// One device's prices (`crate::cost::device`).
#[pyclass(name = "DeviceCost", module = "pdcore._core", frozen)]
#[derive(Clone)]
pub struct PyDeviceCost {
    pub(crate) inner: DeviceCost,
}

#[pymethods]
impl PyDeviceCost {
    #[new]
    #[pyo3(signature = (*, prefill_tokens, prefill_s, decode_context, decode_tpot_s, kv_bytes_per_token))]
    fn new(
        prefill_tokens: Vec<f64>,
        prefill_s: Vec<f64>,
        decode_context: Vec<f64>,
        decode_tpot_s: Vec<f64>,
        kv_bytes_per_token: f64,
    ) -> PyResult<Self> {
        Ok(Self {
            inner: DeviceCost::new(
                prefill_tokens,
                prefill_s,
                decode_context,
                decode_tpot_s,
                kv_bytes_per_token,
            )?,
        })
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

    fn __repr__(&self) -> String {
        let (p, t) = (self.inner.prefill_curve(), self.inner.tpot_curve());
        format!(
            "DeviceCost(prefill_tokens={:?}, prefill_s={:?}, decode_context={:?}, decode_tpot_s={:?}, kv_bytes_per_token={})",
            p.xs(),
            p.ys(),
            t.xs(),
            t.ys(),
            self.inner.kv_bytes_per_token()
        )
    }

    fn __eq__(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}

/// One cloud replica's prices (`crate::cost::cloud`).
#[pyclass(name = "CloudCost", module = "pdcore._core", frozen)]
#[derive(Clone)]
pub struct PyCloudCost {
    pub(crate) inner: CloudCost,
}

#[pymethods]
impl PyCloudCost {
    #[new]
    #[pyo3(signature = (*, base_s, prefill_token_s, prefill_attn_s, decode_seq_s, decode_context_s,
        max_tokens_per_iteration))]
    fn new(
        base_s: f64,
        prefill_token_s: f64,
        prefill_attn_s: f64,
        decode_seq_s: f64,
        decode_context_s: f64,
        max_tokens_per_iteration: i64,
    ) -> PyResult<Self> {
        let inner = CloudCost {
            base_s,
            prefill_token_s,
            prefill_attn_s,
            decode_seq_s,
            decode_context_s,
            max_tokens_per_iteration: super::count(max_tokens_per_iteration, "max_tokens_per_iteration")?,
        };
        inner.validate()?;
        Ok(Self { inner })
    }

    fn lone_prefill_s(&self, prompt_tokens: i64) -> PyResult<f64> {
        Ok(self.inner.lone_prefill_s(super::count(prompt_tokens, "prompt_tokens")?))
    }

    fn lone_decode_s(&self, context_tokens: i64) -> PyResult<f64> {
        Ok(self.inner.lone_decode_s(super::count(context_tokens, "context_tokens")?))
    }

    #[pyo3(signature = (prefill_lens, decode_contexts, *, prefill_offsets = None))]
    fn iteration_s(
        &self,
        prefill_lens: Vec<i64>,
        decode_contexts: Vec<i64>,
        prefill_offsets: Option<Vec<i64>>,
    ) -> PyResult<f64> {
        if prefill_lens.is_empty() && decode_contexts.is_empty() {
            return Ok(0.0);
        }
        let offsets = prefill_offsets.unwrap_or_else(|| vec![0; prefill_lens.len()]);
        if offsets.len() != prefill_lens.len() {
            return Err(CoreError::invalid(
                "prefill_offsets",
                format!("has {} entries but prefill_lens has {}", offsets.len(), prefill_lens.len()),
                "pass one offset per prefill chunk",
            )
            .into());
        }
        let (mut tokens, mut attention) = (0.0, 0.0);
        for (i, (&len, &off)) in prefill_lens.iter().zip(&offsets).enumerate() {
            let len = u32::try_from(len).ok().filter(|&l| l >= 1).ok_or_else(|| {
                CoreError::invalid_at(
                    "prefill_lens",
                    i,
                    format!("= {len}"),
                    "a prefill chunk holds 1 to 2^32 tokens",
                )
            })?;
            let off = u32::try_from(off).map_err(|_| {
                CoreError::invalid_at(
                    "prefill_offsets",
                    i,
                    format!("= {off}"),
                    "an offset is 0 to 2^32 tokens",
                )
            })?;
            tokens += f64::from(len);
            attention += CloudCost::chunk_attention(off, len);
        }
        let mut context = 0.0;
        for (i, &c) in decode_contexts.iter().enumerate() {
            if c < 0 {
                return Err(CoreError::invalid_at(
                    "decode_contexts",
                    i,
                    format!("= {c}"),
                    "a context length cannot be negative",
                )
                .into());
            }
            context += c as f64;
        }
        Ok(self.inner.iteration(tokens, attention, decode_contexts.len() as f64, context).total_s)
    }

    fn queued_prefill_token_s(&self) -> f64 {
        self.inner.queued_prefill_token_s()
    }

    fn prefill_instance_decode_s(
        &self,
        context_tokens: i64,
        queued_prefill_tokens: f64,
        budget_tokens: i64,
    ) -> PyResult<f64> {
        let ctx = super::count(context_tokens, "context_tokens")?;
        let q = tokens(queued_prefill_tokens, "queued_prefill_tokens", None)?;
        let b = super::count(budget_tokens, "budget_tokens")?;
        Ok(self.inner.prefill_instance_decode_s(ctx, q, b))
    }

    fn prefill_decode_budget(&self, max_tpot: f64) -> PyResult<u32> {
        if !(max_tpot.is_finite() && max_tpot > 0.0) {
            return Err(CoreError::invalid(
                "max_tpot",
                format!("is {max_tpot}"),
                "pass the largest display gap, finite seconds > 0",
            )
            .into());
        }
        Ok(self.inner.prefill_decode_budget(max_tpot))
    }

    fn queue_wait_lower_bound_s(&self, waiting_prefill_tokens: f64, prefill_replicas: i64) -> PyResult<f64> {
        let w = tokens(waiting_prefill_tokens, "waiting_prefill_tokens", None)?;
        let r: u32 = super::count(prefill_replicas, "prefill_replicas")?;
        if r == 0 {
            return Err(CoreError::invalid("prefill_replicas", "is 0", "pass a count >= 1").into());
        }
        Ok(self.inner.queue_wait_lower_bound_s(w, r))
    }

    #[getter]
    fn max_tokens_per_iteration(&self) -> u32 {
        self.inner.max_tokens_per_iteration
    }

    fn __repr__(&self) -> String {
        format!("CloudCost({:?})", self.inner)
    }
}

/// The solution of the catch-up fixed point.
#[pyclass(name = "CatchUp", module = "pdcore._core", frozen, get_all)]
pub struct PyCatchUp {
    k: u32,
    device_alone: bool,
    converged: bool,
    device_ready_s: f64,
    iterations: u32,
}

impl From<CatchUp> for PyCatchUp {
    fn from(s: CatchUp) -> Self {
        Self {
            k: s.k,
            device_alone: s.device_alone,
            converged: s.converged,
            device_ready_s: s.device_ready_s,
            iterations: s.iterations,
        }
    }
}

#[pymethods]
impl PyCatchUp {
    fn __repr__(&self) -> String {
        format!(
            "CatchUp(k={}, device_alone={}, converged={}, device_ready_s={}, iterations={})",
            self.k,
            if self.device_alone { "True" } else { "False" },
            if self.converged { "True" } else { "False" },
            self.device_ready_s,
            self.iterations
        )
    }
}

/// The catch-up fixed point (`crate::cost::catchup`).
#[pyfunction(name = "solve_catchup")]
#[pyo3(signature = (prompt_tokens, *, device, first_token_s, max_tpot, refine_ratio = 1.0, cloud_tpot_s = 0.0,
    max_k = 4096, first_gap_s = None, device_cached_tokens = 0))]
#[allow(clippy::too_many_arguments)] // the keyword arguments of one Python function
pub fn py_solve_catchup(
    prompt_tokens: i64,
    device: &PyDeviceCost,
    first_token_s: f64,
    max_tpot: f64,
    refine_ratio: f64,
    cloud_tpot_s: f64,
    max_k: i64,
    first_gap_s: Option<f64>,
    device_cached_tokens: i64,
) -> PyResult<PyCatchUp> {
    let inp = CatchUpInput {
        prompt_tokens: super::count(prompt_tokens, "prompt_tokens")?,
        first_token_s,
        max_tpot_s: max_tpot,
        refine_ratio,
        cloud_tpot_s,
        first_gap_s,
        max_k: super::count(max_k, "max_k")?,
        device_cached_tokens: super::count(device_cached_tokens, "device_cached_tokens")?,
    };
    Ok(solve_catchup(&device.inner, &inp)?.into())
}

/// The prompt the device prefills at a refinement ratio: `max(1, ceil(r * L))`.
#[pyfunction(name = "refined_prompt_tokens")]
pub fn py_refined_prompt_tokens(prompt_tokens: i64, refine_ratio: f64) -> PyResult<u32> {
    if !(refine_ratio.is_finite() && refine_ratio > 0.0 && refine_ratio <= 1.0) {
        return Err(CoreError::invalid(
            "refine_ratio",
            format!("is {refine_ratio}"),
            "pass the kept fraction of the prompt in (0, 1]",
        )
        .into());
    }
    Ok(refined_prompt_tokens(super::count(prompt_tokens, "prompt_tokens")?, refine_ratio))
}

/// The optimizer's choice for one request.
#[pyclass(name = "Choice", module = "pdcore._core", frozen, get_all)]
pub struct PyChoice {
    device_alone: bool,
    cloud_alone: bool,
    k: u32,
    refine_ratio: f64,
    first_token_s: f64,
    device_ready_s: f64,
    converged: bool,
    k_site: &'static str,
    k_site_reason: &'static str,
}

impl From<Choice> for PyChoice {
    fn from(c: Choice) -> Self {
        Self {
            device_alone: c.device_alone,
            cloud_alone: c.cloud_alone,
            k: c.k,
            refine_ratio: c.refine_ratio,
            first_token_s: c.first_token_s,
            device_ready_s: c.device_ready_s,
            converged: c.converged,
            k_site: c.k_site.name(),
            k_site_reason: c.k_site_reason.name(),
        }
    }
}

/// The per-request optimizer (`crate::cost::optimizer`).
#[pyclass(name = "PlanOptimizer", module = "pdcore._core", frozen)]
pub struct PyPlanOptimizer {
    pub(crate) inner: PlanOptimizer,
}

fn waiting(v: Option<f64>) -> PyResult<Option<f64>> {
    Ok(v.map(|w| tokens(w, "waiting_prefill_tokens", None)).transpose()?)
}

#[pymethods]
impl PyPlanOptimizer {
    #[new]
    #[pyo3(signature = (*, device, cloud, max_tpot, refine_ratios = vec![1.0], load_adaptive = true,
        prefill_replicas = 1, max_k = 4096, k_sites = "pool", kv_bytes_per_token = None,
        kv_link_bytes_per_s = None, kv_write_token_s = 0.0, weights = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        device: &PyDeviceCost,
        cloud: &PyCloudCost,
        max_tpot: f64,
        refine_ratios: Vec<f64>,
        load_adaptive: bool,
        prefill_replicas: i64,
        max_k: i64,
        k_sites: &str,
        kv_bytes_per_token: Option<f64>,
        kv_link_bytes_per_s: Option<f64>,
        kv_write_token_s: f64,
        weights: Option<&super::money::PyWeights>,
    ) -> PyResult<Self> {
        let link = match (kv_bytes_per_token, kv_link_bytes_per_s) {
            (Some(bytes_per_token), Some(bytes_per_s)) => {
                Some(KvLink { bytes_per_token, bytes_per_s, write_token_s: kv_write_token_s })
            }
            (None, None) => None,
            _ => {
                return Err(CoreError::invalid(
                    "kv_link_bytes_per_s",
                    "and kv_bytes_per_token are not given together",
                    "pass both (the KV link that prices the decode pool) or neither",
                )
                .into())
            }
        };
        let mut inner = PlanOptimizer::new(
            device.inner.clone(),
            cloud.inner,
            max_tpot,
            &refine_ratios,
            load_adaptive,
            super::count(prefill_replicas, "prefill_replicas")?,
            super::count(max_k, "max_k")?,
        )?
        .with_k_sites(KSites::parse(k_sites, "k_sites")?, link)?;
        if let Some(w) = weights {
            inner = inner.with_weights(w.inner)?;
        }
        Ok(Self { inner })
    }

    #[getter]
    fn k_sites(&self) -> &'static str {
        self.inner.k_sites.name()
    }

    #[getter]
    fn prefill_decode_budget(&self) -> u32 {
        self.inner.prefill_decode_budget()
    }

    #[getter]
    fn refine_ratios(&self) -> Vec<f64> {
        self.inner.ratios.clone()
    }

    #[pyo3(signature = (prompt_tokens, *, one_way_s, waiting_prefill_tokens = None, cloud_cached_tokens = 0))]
    fn first_token_s(
        &self,
        prompt_tokens: i64,
        one_way_s: f64,
        waiting_prefill_tokens: Option<f64>,
        cloud_cached_tokens: i64,
    ) -> PyResult<f64> {
        let p: u32 = super::count(prompt_tokens, "prompt_tokens")?;
        let c: u32 = super::count(cloud_cached_tokens, "cloud_cached_tokens")?;
        Ok(self.inner.first_token_cached_s(p, c, one_way_s, waiting(waiting_prefill_tokens)?))
    }

    #[pyo3(signature = (prompt_tokens, *, one_way_s, waiting_prefill_tokens = None, device_cached_tokens = 0,
        cloud_cached_tokens = 0))]
    fn choose(
        &self,
        prompt_tokens: i64,
        one_way_s: f64,
        waiting_prefill_tokens: Option<f64>,
        device_cached_tokens: i64,
        cloud_cached_tokens: i64,
    ) -> PyResult<PyChoice> {
        let p: u32 = super::count(prompt_tokens, "prompt_tokens")?;
        let cached = cached(device_cached_tokens, cloud_cached_tokens)?;
        Ok(self.inner.choose_cached(p, cached, one_way_s, waiting(waiting_prefill_tokens)?)?.into())
    }

    #[pyo3(signature = (prompt_tokens, refine_ratio, *, one_way_s, waiting_prefill_tokens = None,
        device_cached_tokens = 0, cloud_cached_tokens = 0))]
    fn choose_at(
        &self,
        prompt_tokens: i64,
        refine_ratio: f64,
        one_way_s: f64,
        waiting_prefill_tokens: Option<f64>,
        device_cached_tokens: i64,
        cloud_cached_tokens: i64,
    ) -> PyResult<PyChoice> {
        let p: u32 = super::count(prompt_tokens, "prompt_tokens")?;
        let cached = cached(device_cached_tokens, cloud_cached_tokens)?;
        let w = waiting(waiting_prefill_tokens)?;
        Ok(self.inner.choose_at_cached(p, refine_ratio, cached, one_way_s, w)?.into())
    }
}

fn cached(device: i64, cloud: i64) -> PyResult<Cached> {
    Ok(Cached {
        device: super::count(device, "device_cached_tokens")?,
        cloud: super::count(cloud, "cloud_cached_tokens")?,
    })
}

/// The live runtime's hand-off estimate (`crate::cost::handoff`).
#[pyclass(name = "HandoffEstimator", module = "pdcore._core", subclass)]
pub struct PyHandoffEstimator {
    inner: HandoffEstimator,
}

fn non_negative(v: f64, arg: &'static str) -> PyResult<f64> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(CoreError::invalid(arg, format!("is {v}"), "pass finite seconds >= 0").into())
    }
}

#[pymethods]
impl PyHandoffEstimator {
    #[new]
    #[pyo3(signature = (device, prompt_tokens, prompt_chars, prior_ratio = 1.0, *, started_at = 0.0,
        prompt_chunk_tokens, append_chunk_tokens))]
    fn new(
        device: Option<&PyDeviceCost>,
        prompt_tokens: i64,
        prompt_chars: i64,
        prior_ratio: f64,
        started_at: f64,
        prompt_chunk_tokens: i64,
        append_chunk_tokens: i64,
    ) -> PyResult<Self> {
        if !(prior_ratio.is_finite() && prior_ratio > 0.0) {
            return Err(CoreError::invalid(
                "prior_ratio",
                format!("is {prior_ratio}"),
                "pass the assumed speed ratio, finite and > 0",
            )
            .into());
        }
        Ok(Self {
            inner: HandoffEstimator::new(
                device.map(|d| d.inner.clone()),
                super::count(prompt_tokens, "prompt_tokens")?,
                super::count(prompt_chars, "prompt_chars")?,
                prior_ratio,
                non_negative(started_at, "started_at")?,
                super::count(prompt_chunk_tokens, "prompt_chunk_tokens")?,
                super::count(append_chunk_tokens, "append_chunk_tokens")?,
            ),
        })
    }

    #[getter]
    fn ratio(&self) -> Option<f64> {
        self.inner.ratio()
    }
    #[getter]
    fn prior_ratio(&self) -> f64 {
        self.inner.prior_ratio
    }
    #[getter]
    fn prior_weight(&self) -> f64 {
        self.inner.prior_weight
    }
    #[getter]
    fn actual_s(&self) -> f64 {
        self.inner.actual_s
    }
    #[getter]
    fn predicted(&self) -> f64 {
        self.inner.predicted
    }
    #[getter]
    fn anchor_s(&self) -> f64 {
        self.inner.anchor_s
    }
    #[getter]
    fn prompt_tokens(&self) -> u64 {
        self.inner.prompt_tokens
    }
    #[getter]
    fn device(&self) -> Option<PyDeviceCost> {
        self.inner.device().map(|d| PyDeviceCost { inner: d.clone() })
    }

    #[pyo3(signature = (done, chunk, took, *, at))]
    fn observe_prompt(&mut self, done: i64, chunk: i64, took: f64, at: f64) -> PyResult<()> {
        self.inner.observe_prompt(
            super::count(done, "done")?,
            super::count(chunk, "chunk")?,
            non_negative(took, "took")?,
            at,
        );
        Ok(())
    }

    #[pyo3(signature = (context, tokens, took, *, at))]
    fn observe_append(&mut self, context: i64, tokens: i64, took: f64, at: f64) -> PyResult<()> {
        self.inner.observe_append(
            super::count(context, "context")?,
            super::count(tokens, "tokens")?,
            non_negative(took, "took")?,
            at,
        );
        Ok(())
    }

    fn count_pieces(&mut self, pieces: i64, tokens: i64) -> PyResult<()> {
        self.inner.count_pieces(super::count(pieces, "pieces")?, super::count(tokens, "tokens")?);
        Ok(())
    }

    #[pyo3(signature = (pieces, chars_per_piece))]
    fn tokens_for(&self, pieces: i64, chars_per_piece: Option<f64>) -> PyResult<u64> {
        if pieces <= 0 {
            return Ok(0);
        }
        Ok(self.inner.tokens_for(super::count(pieces, "pieces")?, chars_per_piece))
    }

    fn guard(&self, context: i64, tokens_left: i64) -> PyResult<f64> {
        Ok(self.inner.guard(super::count(context, "context")?, super::count(tokens_left, "tokens_left")?))
    }

    fn estimate(&self, now: f64, prompt_done: i64, context: i64, tokens_left: i64) -> PyResult<Option<f64>> {
        Ok(self.inner.estimate(
            now,
            super::count(prompt_done, "prompt_done")?,
            super::count(context, "context")?,
            super::count(tokens_left, "tokens_left")?,
        ))
    }
}

/// The gap rule (`crate::cost::gap`), for a scalar or elementwise for an array.
#[pyfunction]
pub fn gap_within<'py>(
    py: Python<'py>,
    gap_s: &Bound<'py, PyAny>,
    max_tpot: f64,
) -> PyResult<Bound<'py, PyAny>> {
    if let Ok(arr) = gap_s.cast::<PyArrayDyn<f64>>() {
        let ro = arr.readonly();
        let view = ro.as_array();
        let out: Vec<bool> = view.iter().map(|&g| within_objective(g, max_tpot)).collect();
        let shape = view.shape().to_vec();
        return Ok(out.into_pyarray(py).reshape(shape)?.into_any());
    }
    let g: f64 = gap_s.extract()?;
    Ok(pyo3::types::PyBool::new(py, within_objective(g, max_tpot)).to_owned().into_any())
}

/// The whole-request router's rule (`crate::cost::router`).
#[pyclass(name = "RouterRule", module = "pdcore._core", frozen)]
pub struct PyRouterRule {
    pub(crate) inner: RouterRule,
}

#[pymethods]
impl PyRouterRule {
    #[new]
    #[pyo3(signature = (*, predicted_output, ttft_slo_s, max_tpot_s))]
    fn new(predicted_output: Vec<i64>, ttft_slo_s: f64, max_tpot_s: f64) -> PyResult<Self> {
        let predicted = predicted_output
            .iter()
            .map(|&o| super::count(o, "predicted_output"))
            .collect::<PyResult<Vec<u32>>>()?;
        Ok(Self { inner: RouterRule::new(predicted, ttft_slo_s, max_tpot_s)? })
    }

    fn predicted_output(&self, prompt_tokens: &Bound<'_, PyAny>) -> PyResult<u32> {
        Ok(self.inner.predicted_output(super::count_of(prompt_tokens, "prompt_tokens")?))
    }

    #[pyo3(signature = (device, prompt_tokens, cached_tokens = None))]
    fn on_device(
        &self,
        device: &PyDeviceCost,
        prompt_tokens: &Bound<'_, PyAny>,
        cached_tokens: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let prompt = super::count_of(prompt_tokens, "prompt_tokens")?;
        let cached = cached_tokens.map_or(Ok(0), |c| super::count_of(&c, "cached_tokens"))?;
        Ok(self.inner.on_device(&device.inner, prompt, cached))
    }

    fn __repr__(&self) -> String {
        format!("RouterRule({:?})", self.inner)
    }
}

/// Registers the cost-model classes and functions.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDeviceCost>()?;
    m.add_class::<PyCloudCost>()?;
    m.add_class::<PyCatchUp>()?;
    m.add_class::<PyChoice>()?;
    m.add_class::<PyPlanOptimizer>()?;
    m.add_class::<PyHandoffEstimator>()?;
    m.add_class::<PyRouterRule>()?;
    m.add_function(wrap_pyfunction!(py_solve_catchup, m)?)?;
    m.add_function(wrap_pyfunction!(py_refined_prompt_tokens, m)?)?;
    m.add_function(wrap_pyfunction!(gap_within, m)?)?;
    m.add("DEFAULT_MAX_K", crate::cost::DEFAULT_MAX_K)?;
    m.add("PRIOR_WEIGHT_TOKENS", crate::cost::PRIOR_WEIGHT_TOKENS)?;
    m.add("LIVE_GUARD_STEPS", crate::cost::LIVE_GUARD_STEPS)?;
    m.add("GAP_SLACK_S", crate::cost::GAP_SLACK_S)?;
    m.add("ROUTER_BUCKETS", ROUTER_BUCKETS)?;
    Ok(())
}
