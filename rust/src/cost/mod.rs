//! The cost model: how long every piece of work takes, written once.
//!
//! The simulator, the optimizer, the live runtime and `pdcore validate` all price work with this module
//! (through the PyO3 bindings on the Python side); a second implementation exists only as the deliberate
//! pure-Python oracle of the simulator in `benches/`, checked bit for bit.
//!
//! - [`bounds`]: the largest value each time coefficient of a profile may have (what hardware can take).
//! - [`curve`]: piecewise-linear curves over measured points, with one documented rule beyond them.
//! - [`device`]: the device's prefill, append and decode prices.
//! - [`cloud`]: the cloud's iteration model and the prices of a lone request.
//! - [`catchup`]: the catch-up fixed point that gives P/D-Device's `k`.
//! - [`choice`]: the optimizer's choice for one request and the cached prompt tokens it plans with.
//! - [`fit`]: where a prompt fits (the device's KV memory, one cloud replica's KV cache).
//! - [`optimizer`]: the per-request choice of `k`, refinement and the device-alone fallback.
//! - [`planner`]: that choice reduced to who serves a turn, for the simulator and the live runtime.
//! - [`ksite`]: where P/D-Device's `k` decode tokens are decoded (decode pool or prefill instance).
//! - [`handoff`]: the hand-off estimate (simulated and live) and its guard.
//! - [`gap`]: whether a display gap is within the objective, and the objective's default.
//! - [`router`]: the whole-request router's rule (device or cloud by the predicted answer).
//! - [`money`]: what an answer costs in cloud dollars and device energy.
//! - [`spec`]: speculative edge-cloud decoding (rounds, their yield and the verification's price).
//! - [`tradeoff`]: the optimizer's weights on latency, cost and energy.
//!
//! The paper (arXiv 2508.09035) publishes no formulas; every rule here is pdcore's own and says why.

pub mod bounds;
pub mod catchup;
pub mod choice;
pub mod cloud;
pub mod curve;
pub mod device;
pub mod fit;
pub mod gap;
pub mod handoff;
pub mod ksite;
pub mod money;
pub mod optimizer;
pub mod planner;
pub mod router;
pub mod spec;
pub mod tradeoff;

pub use bounds::{TimeBound, TIME_BOUNDS};
pub use catchup::{solve_catchup, CatchUp, CatchUpInput, DEFAULT_MAX_K};
pub use choice::{Cached, Choice};
pub use cloud::CloudCost;
pub use curve::Curve;
pub use device::{DeviceCost, MAX_STEP_SPREAD};
pub use fit::{PromptLimits, DEVICE_KV_BYTES};
pub use gap::{within_objective, DEFAULT_MAX_TPOT_S, GAP_SLACK_S};
pub use handoff::{HandoffEstimator, LIVE_GUARD_STEPS, PRIOR_SPREAD_CALLS, PRIOR_WEIGHT_TOKENS, SPREAD_Z};
pub use ksite::{pool_first_gap_s, KSite, KSites, KvLink, SiteReason};
pub use money::{Bill, Prices, Usage};
pub use optimizer::PlanOptimizer;
pub use router::{RouterRule, ROUTER_BUCKETS};
pub use spec::{SpecDecode, MAX_DRAFT_TOKENS};
pub use tradeoff::{Estimate, Weights};
