//! Bindings of the per-request token buffer.

use crate::buffer::{CloudStream, Receipt, Source, TokenBuffer};
use pyo3::prelude::*;

/// Per-request token accounting across the hand-off.
#[pyclass(name = "TokenBuffer", module = "pdcore._core")]
pub struct PyTokenBuffer {
    inner: TokenBuffer,
}

fn source_name(s: Source) -> &'static str {
    match s {
        Source::Cloud => "cloud",
        Source::Device => "device",
    }
}

#[pymethods]
impl PyTokenBuffer {
    #[new]
    #[pyo3(signature = (*, cloud_expected = None))]
    fn new(cloud_expected: Option<Bound<'_, PyAny>>) -> PyResult<Self> {
        let cloud_expected = cloud_expected.map(|n| super::count_of(&n, "cloud_expected")).transpose()?;
        Ok(Self { inner: TokenBuffer::new(cloud_expected) })
    }

    fn receive_cloud(&mut self) -> PyResult<Option<u32>> {
        Ok(match self.inner.receive_cloud()? {
            Receipt::Kept(p) => Some(p),
            Receipt::Discarded => None,
        })
    }

    fn cut_cloud(&mut self) {
        self.inner.cut_cloud();
    }

    fn prefill_prompt(&mut self) {
        self.inner.prefill_prompt();
    }

    fn prefill_received(&mut self, n: i64) -> PyResult<()> {
        Ok(self.inner.prefill_received(super::count(n, "n")?)?)
    }

    fn take_over(&mut self) -> PyResult<u32> {
        Ok(self.inner.take_over()?)
    }

    fn generate(&mut self) -> PyResult<u32> {
        Ok(self.inner.generate()?)
    }

    fn display(&mut self) -> PyResult<(u32, &'static str)> {
        let (pos, src) = self.inner.display()?;
        Ok((pos, source_name(src)))
    }

    #[getter]
    fn caught_up(&self) -> bool {
        self.inner.caught_up()
    }
    #[getter]
    fn available(&self) -> u32 {
        self.inner.available()
    }
    #[getter]
    fn received(&self) -> u32 {
        self.inner.received()
    }
    #[getter]
    fn prefilled(&self) -> u32 {
        self.inner.prefilled()
    }
    #[getter]
    fn prompt_prefilled(&self) -> bool {
        self.inner.prompt_prefilled()
    }
    #[getter]
    fn generated(&self) -> u32 {
        self.inner.generated()
    }
    #[getter]
    fn displayed(&self) -> u32 {
        self.inner.displayed()
    }
    #[getter]
    fn discarded(&self) -> u32 {
        self.inner.discarded()
    }
    #[getter]
    fn handoff(&self) -> Option<u32> {
        self.inner.handoff()
    }
    #[getter]
    fn stream(&self) -> &'static str {
        match self.inner.stream() {
            CloudStream::Open => "open",
            CloudStream::Finished => "finished",
            CloudStream::Cut => "cut",
            CloudStream::Cancelled => "cancelled",
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "TokenBuffer(received={}, prefilled={}, handoff={:?}, generated={}, displayed={}, stream='{}')",
            self.received(),
            self.prefilled(),
            self.handoff(),
            self.generated(),
            self.displayed(),
            self.stream()
        )
    }
}
