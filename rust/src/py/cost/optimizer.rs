//! Bindings of the per-request optimizer (`crate::cost::optimizer`) and its choice.

use super::{tokens, PyCloudCost, PyDeviceCost};
use crate::cost::{Cached, Choice, KSites, KvLink, PlanOptimizer};
use crate::error::CoreError;
use crate::py::count;
use crate::py::money::PyWeights;
use crate::py::renamed::{renamed, required};
use pyo3::prelude::*;
use pyo3::types::PyDict;

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
    #[pyo3(signature = (*, device, cloud, max_tpot_s = None, refine_ratios = vec![1.0], load_adaptive = true,
        prefill_replicas = 1, max_k = 4096, k_sites = None, kv_bytes_per_token = None,
        kv_link_bytes_per_s = None, kv_write_token_s = 0.0, weights = None, cloud_kv_cache_tokens = None, **old),
        text_signature = "(*, device, cloud, max_tpot_s, refine_ratios=..., load_adaptive=True, prefill_replicas=1, \
            max_k=4096, k_sites=None, kv_bytes_per_token=None, kv_link_bytes_per_s=None, kv_write_token_s=0.0, \
            weights=None, cloud_kv_cache_tokens=None, **old)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        device: &PyDeviceCost,
        cloud: &PyCloudCost,
        max_tpot_s: Option<f64>,
        refine_ratios: Vec<f64>,
        load_adaptive: bool,
        prefill_replicas: i64,
        max_k: i64,
        k_sites: Option<&str>,
        kv_bytes_per_token: Option<f64>,
        kv_link_bytes_per_s: Option<f64>,
        kv_write_token_s: f64,
        weights: Option<&PyWeights>,
        cloud_kv_cache_tokens: Option<i64>,
        old: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let [max_tpot_s] = renamed(py, "PlanOptimizer", old, [("max_tpot_s", max_tpot_s)])?;
        let max_tpot_s = required("PlanOptimizer", "max_tpot_s", max_tpot_s)?;
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
            max_tpot_s,
            &refine_ratios,
            load_adaptive,
            count(prefill_replicas, "prefill_replicas")?,
            count(max_k, "max_k")?,
        )?
        .with_k_sites(
            KSites::or_default(k_sites.map(|s| KSites::parse(s, "k_sites")).transpose()?, link.is_some()),
            link,
        )?;
        if let Some(w) = weights {
            inner = inner.with_weights(w.inner)?;
        }
        if let Some(tokens) = cloud_kv_cache_tokens {
            inner = inner.with_cloud_kv_cache_tokens(count(tokens, "cloud_kv_cache_tokens")?)?;
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
        let p: u32 = count(prompt_tokens, "prompt_tokens")?;
        let c: u32 = count(cloud_cached_tokens, "cloud_cached_tokens")?;
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
        let p: u32 = count(prompt_tokens, "prompt_tokens")?;
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
        let p: u32 = count(prompt_tokens, "prompt_tokens")?;
        let cached = cached(device_cached_tokens, cloud_cached_tokens)?;
        let w = waiting(waiting_prefill_tokens)?;
        Ok(self.inner.choose_at_cached(p, refine_ratio, cached, one_way_s, w)?.into())
    }
}

fn cached(device: i64, cloud: i64) -> PyResult<Cached> {
    Ok(Cached { device: count(device, "device_cached_tokens")?, cloud: count(cloud, "cloud_cached_tokens")? })
}
