//! The deterministic cluster simulator behind `dispatcher-core sim` (scenario-format.md): the real
//! maintainer and one real node core per node, simulated dispatchers, a seeded network carrying
//! encoded protobuf bytes, faults, and an invariant checker after every event.

pub(crate) mod check;
pub mod cli;
pub mod cluster;
pub(crate) mod coverage;
pub mod explorer;
pub mod random;
pub mod report;
pub mod rng;
pub mod run;
pub mod scenario;
pub(crate) mod swarm;
pub mod trace;
pub(crate) mod violation;
pub mod world;
