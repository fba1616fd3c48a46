//! pdcore's native core: the pieces of cloud–device disaggregated inference (P/D-Device,
//! arXiv 2508.09035) that run per token and must be exact and fast.
//!
//! - [`time`]: integer-nanosecond time and the checked conversion from float seconds.
//! - [`cost`]: the one cost model: device and cloud prices, the catch-up solver, the optimizer, the
//!   hand-off estimate and the gap rule.
//! - [`sim`]: the trace-driven simulator.
//! - [`pacing`]: the speed controller that paces the cloud's tokens on the device.
//! - [`buffer`]: per-request token accounting across the cloud-to-device hand-off.
//! - [`event_loop`]: the deterministic discrete-event engine.
//! - [`error`]: the one error type of the crate.
//!
//! Nothing here depends on Python; the PyO3 bindings live in `py` and compile only with the `python`
//! feature, so `cargo test` and the criterion benches build without an interpreter.

pub mod buffer;
pub mod cost;
pub mod error;
pub mod event_loop;
pub mod pacing;
pub mod sim;
pub mod time;

#[cfg(test)]
pub(crate) mod testing;

#[cfg(feature = "python")]
mod py;

pub use buffer::{Source, TokenBuffer};
pub use error::CoreError;
pub use event_loop::{EventLoop, Scheduled};
pub use pacing::{pace, PaceConfig, SpeedController};
pub use time::Nanos;

/// The crate version, exported to Python as `pdcore._core.__version__`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
