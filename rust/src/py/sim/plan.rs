//! Bindings of a policy's plan for one request and of the built-in policies planned inside the simulator
//! (`crate::sim::plan`, `crate::sim::policy`).

use crate::cost::{KSite, SpecDecode, DEFAULT_MAX_TPOT_S};
use crate::error::CoreError;
use crate::pacing::PaceConfig;
use crate::py::cost::{PyPlanOptimizer, PyRouterRule};
use crate::py::renamed::{pace_bounds, renamed, warn_attribute};
use crate::py::{count_of, whole};
use crate::sim::policy::NativePolicy;
use crate::sim::{Mode, Plan};
use pyo3::prelude::*;
use pyo3::types::PyDict;

// The text signature of `Plan` shows the default largest gap as a literal (pyo3 takes a string there):
// it must read as the constant the default is.
#[allow(clippy::float_cmp)]
const _: () = assert!(DEFAULT_MAX_TPOT_S == 0.05, "update Plan's text_signature");

/// A policy's decision for one request.
#[pyclass(name = "Plan", module = "pdcore._core", frozen)]
#[derive(Clone)]
pub struct PyPlan {
    pub(crate) inner: Plan,
}

#[pymethods]
impl PyPlan {
    #[new]
    #[pyo3(signature = (mode, *, k = None, refine_ratio = 1.0, min_tpot_s = None, max_tpot_s = None,
        k_site = "pool", gamma = None, alpha = None, **old),
        text_signature = "(mode, *, k=0, refine_ratio=1.0, min_tpot_s=0.0, max_tpot_s=0.05, k_site='pool', gamma=None, alpha=None, **old)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        mode: &str,
        k: Option<Bound<'_, PyAny>>,
        refine_ratio: f64,
        min_tpot_s: Option<f64>,
        max_tpot_s: Option<f64>,
        k_site: &str,
        gamma: Option<Bound<'_, PyAny>>,
        alpha: Option<f64>,
        old: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let [min, max] = renamed(py, "Plan", old, [("min_tpot_s", min_tpot_s), ("max_tpot_s", max_tpot_s)])?;
        let pace = PaceConfig::from_secs(min.unwrap_or(0.0), max.unwrap_or(DEFAULT_MAX_TPOT_S))?;
        let k = k.map_or(Ok(0), |k| whole(&k, "k"))?;
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
                Some(SpecDecode::new(count_of(&gamma, "gamma")?, alpha)?)
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
    fn min_tpot_s(&self) -> f64 {
        self.inner.pace.min_tpot().as_secs()
    }
    #[getter]
    fn max_tpot_s(&self) -> f64 {
        self.inner.pace.max_tpot().as_secs()
    }
    /// Deprecated: `min_tpot_s`.
    #[getter]
    fn min_tpot(&self, py: Python<'_>) -> PyResult<f64> {
        warn_attribute(py, "Plan", "min_tpot", "min_tpot_s")?;
        Ok(self.min_tpot_s())
    }
    /// Deprecated: `max_tpot_s`.
    #[getter]
    fn max_tpot(&self, py: Python<'_>) -> PyResult<f64> {
        warn_attribute(py, "Plan", "max_tpot", "max_tpot_s")?;
        Ok(self.max_tpot_s())
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
            "Plan({:?}, k={}, refine_ratio={}, min_tpot_s={}, max_tpot_s={}{site})",
            self.mode(),
            self.k(),
            self.refine_ratio(),
            self.min_tpot_s(),
            self.max_tpot_s()
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

/// A built-in policy planned inside the simulator (`crate::sim::policy`).
#[pyclass(name = "NativePolicy", module = "pdcore._core", frozen)]
pub struct PyNativePolicy {
    pub(crate) inner: NativePolicy,
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
    #[pyo3(signature = (mode, *, optimizer, min_tpot_s = None, max_tpot_s = None, **old),
        text_signature = "(mode, *, optimizer, min_tpot_s, max_tpot_s, **old)")]
    fn auto(
        py: Python<'_>,
        mode: &str,
        optimizer: &PyPlanOptimizer,
        min_tpot_s: Option<f64>,
        max_tpot_s: Option<f64>,
        old: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let pace = pace_bounds(py, "NativePolicy.auto", min_tpot_s, max_tpot_s, old)?;
        Ok(Self { inner: NativePolicy::auto(Mode::parse(mode)?, pace, optimizer.inner.clone())? })
    }

    /// `short` for prompts of at most `threshold` tokens, `long` for longer ones.
    #[staticmethod]
    #[pyo3(signature = (*, threshold, short, long))]
    fn by_prompt(threshold: &Bound<'_, PyAny>, short: &PyPlan, long: &PyPlan) -> PyResult<Self> {
        let threshold = count_of(threshold, "threshold")?;
        Ok(Self { inner: NativePolicy::ByPrompt { threshold, short: short.inner, long: long.inner } })
    }

    /// The whole-request router: device or cloud per request by `rule`.
    #[staticmethod]
    #[pyo3(signature = (rule, *, min_tpot_s = None, max_tpot_s = None, **old),
        text_signature = "(rule, *, min_tpot_s, max_tpot_s, **old)")]
    fn router(
        py: Python<'_>,
        rule: &PyRouterRule,
        min_tpot_s: Option<f64>,
        max_tpot_s: Option<f64>,
        old: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let pace = pace_bounds(py, "NativePolicy.router", min_tpot_s, max_tpot_s, old)?;
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
