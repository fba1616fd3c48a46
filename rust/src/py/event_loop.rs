//! Bindings of the event loop with Python payloads, for Python-side orchestration (the live runtime,
//! tests, user experiments). The simulator uses the Rust loop directly with Rust events.

use crate::event_loop::EventLoop;
use crate::time::Nanos;
use pyo3::prelude::*;

/// A deterministic event queue holding Python objects.
#[pyclass(name = "EventLoop", module = "pdcore._core")]
pub struct PyEventLoop {
    inner: EventLoop<Py<PyAny>>,
}

#[pymethods]
impl PyEventLoop {
    #[new]
    fn new() -> Self {
        Self { inner: EventLoop::new() }
    }

    #[pyo3(signature = (at, event, *, priority = 0))]
    fn schedule(&mut self, at: f64, event: Py<PyAny>, priority: i32) -> PyResult<u64> {
        Ok(self.inner.schedule(Nanos::from_secs(at, "at", None)?, priority, event)?)
    }

    #[pyo3(signature = (delay, event, *, priority = 0))]
    fn schedule_in(&mut self, delay: f64, event: Py<PyAny>, priority: i32) -> PyResult<u64> {
        Ok(self.inner.schedule_in(Nanos::from_secs(delay, "delay", None)?, priority, event)?)
    }

    fn peek(&self) -> Option<f64> {
        self.inner.peek().map(Nanos::as_secs)
    }

    #[pyo3(signature = (until = None))]
    fn step(&mut self, until: Option<f64>) -> PyResult<Option<(f64, Py<PyAny>)>> {
        let until = match until {
            Some(t) => Nanos::from_secs(t, "until", None)?,
            None => Nanos::MAX,
        };
        Ok(self.inner.pop_until(until).map(|s| (s.at.as_secs(), s.event)))
    }

    #[getter]
    fn now(&self) -> f64 {
        self.inner.now().as_secs()
    }
    #[getter]
    fn pending(&self) -> usize {
        self.inner.pending()
    }
    #[getter]
    fn processed(&self) -> u64 {
        self.inner.processed()
    }

    fn __len__(&self) -> usize {
        self.inner.pending()
    }

    fn __repr__(&self) -> String {
        format!("EventLoop(now={}, pending={})", self.now(), self.pending())
    }
}
