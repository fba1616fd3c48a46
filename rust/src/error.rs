//! The crate's one error type. Every message names the offending input, where it is, and the fix,
//! because these errors reach users of the CLI through Python unchanged.

use std::fmt;

/// Where in an input a bad value sits: an argument, optionally an index into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The argument's name as the caller knows it (`arrivals`, `max_tpot`, ...).
    pub arg: &'static str,
    /// The element's index, for array arguments.
    pub index: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "{}[{i}]", self.arg),
            None => f.write_str(self.arg),
        }
    }
}

/// Errors raised by the core. Python sees `InvalidInput` as `pdcore.InvalidInputError` (a `ValueError`)
/// and `InvalidState` as `pdcore.InvalidStateError` (a `RuntimeError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// A caller-supplied value is unusable.
    #[error("{at} {problem}; {fix}")]
    InvalidInput {
        /// Which argument (and element).
        at: Location,
        /// What is wrong with it, including the value.
        problem: String,
        /// What to do instead.
        fix: &'static str,
    },
    /// An operation is not allowed in the object's current state (a protocol error by the caller).
    #[error("{what}; {fix}")]
    InvalidState {
        /// What was attempted and why it cannot happen now.
        what: String,
        /// What to do instead.
        fix: &'static str,
    },
}

impl CoreError {
    /// An invalid scalar argument.
    #[must_use]
    pub fn invalid(arg: &'static str, problem: impl Into<String>, fix: &'static str) -> Self {
        Self::InvalidInput { at: Location { arg, index: None }, problem: problem.into(), fix }
    }

    /// An invalid element of an array argument.
    #[must_use]
    pub fn invalid_at(
        arg: &'static str,
        index: usize,
        problem: impl Into<String>,
        fix: &'static str,
    ) -> Self {
        Self::InvalidInput { at: Location { arg, index: Some(index) }, problem: problem.into(), fix }
    }

    /// A call that the object's state does not allow.
    #[must_use]
    pub fn state(what: impl Into<String>, fix: &'static str) -> Self {
        Self::InvalidState { what: what.into(), fix }
    }
}

/// The crate's result alias.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_input_index_and_fix() {
        let e = CoreError::invalid_at("arrivals", 3, "is NaN", "pass finite times in seconds");
        assert_eq!(e.to_string(), "arrivals[3] is NaN; pass finite times in seconds");
        let e = CoreError::invalid("max_tpot", "must exceed min_tpot (0.1 <= 0.2)", "raise max_tpot");
        assert!(e.to_string().starts_with("max_tpot must exceed"));
    }
}
