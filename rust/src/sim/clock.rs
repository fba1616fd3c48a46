//! The clock's range inside the simulator ([`crate::time`]): a time a request's work would end at past
//! [`Nanos::LIMIT`] is refused where it is priced, naming the request, its lengths and what was priced
//! (the cloud's replicas name their batch the same way); no figure is ever computed from a saturated time.

use super::Simulator;
use crate::error::Result;
use crate::time::{check_clock, Nanos};

impl Simulator {
    /// `t`, when request `i`'s `what` ends, if the clock holds it; else an error naming the request, its
    /// lengths and what was priced.
    #[inline]
    pub(super) fn on_clock(&self, i: u32, t: Nanos, what: &'static str) -> Result<Nanos> {
        if t <= Nanos::LIMIT {
            return Ok(t);
        }
        let iu = i as usize;
        let (prompt, output) = (self.inp.prompt[iu], self.inp.output[iu]);
        check_clock(
            t,
            "request",
            Some(iu),
            || format!("(prompt {prompt} tokens, output {output}): {what}"),
            "check the profiles' time values and the requests' lengths (limits: docs/limits.md)",
        )
    }
}
