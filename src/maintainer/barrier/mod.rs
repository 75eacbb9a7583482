//! The maintainer's barrier (barrier.md §3; issue 11, in progress): what "every affected span has
//! reported" means ([`coverage`]). Events, writer selection, Write and Pass, resends and the
//! schedule changes come next.

pub mod coverage;

pub use coverage::Coverage;
