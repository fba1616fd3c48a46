//! Binding of the simulated cloud's configuration (`crate::sim::cloud::CloudConfig`).

use crate::cost::{CloudCost, KSites};
use crate::sim::cloud::{CloudConfig, Deployment};
use pyo3::prelude::*;

/// The cloud's deployment and iteration-time model.
#[pyclass(name = "CloudConfig", module = "pdcore._core", frozen)]
#[derive(Clone)]
pub struct PyCloudConfig {
    pub(crate) inner: CloudConfig,
}

#[pymethods]
impl PyCloudConfig {
    #[new]
    #[pyo3(signature = (*, deployment, replicas = 1, prefill_replicas = 1, decode_replicas = 1, base_s,
        prefill_token_s, prefill_attn_s, decode_seq_s, decode_context_s, max_batch_size,
        max_tokens_per_iteration, kv_cache_tokens, gpus_per_replica, kv_bytes_per_token, kv_link_bytes_per_s,
        k_sites = "pool", prefill_decode_budget = 0, kv_write_token_s = 0.0, prefill_decode_gap_s = 0.0,
        prefill_knee_token_s = 0.0, prefill_knee_tokens = 0))]
    #[allow(clippy::too_many_arguments, clippy::similar_names)] // the names are the profile's keys
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
        prefill_knee_token_s: f64,
        prefill_knee_tokens: u32,
    ) -> PyResult<Self> {
        let deployment = Deployment::parse(deployment)?;
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
                prefill_knee_token_s,
                prefill_knee_tokens,
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
        self.inner.deployment.name()
    }

    #[getter]
    fn k_sites(&self) -> &'static str {
        self.inner.k_sites.name()
    }

    fn __repr__(&self) -> String {
        format!("CloudConfig({:?})", self.inner)
    }
}
