//! A broken invariant, as the checker reports it.

use std::fmt;

/// A broken invariant: which, when, about what.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Violation {
    /// The invariant's name (`I2`, `C1`, ...).
    pub check: String,
    /// Simulated time.
    pub at_ms: u64,
    /// The span, dispatcher or node involved, and how.
    pub detail: String,
}

impl Violation {
    /// A violation of `check` at `at_ms`.
    pub fn new(check: &str, at_ms: u64, detail: String) -> Self {
        Self { check: check.to_string(), at_ms, detail }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {} ms: {}", self.check, self.at_ms, self.detail)
    }
}
