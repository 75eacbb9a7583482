//! The node core: requests and callbacks, merges, bootstrap, the heartbeat path, the pending
//! queue and the typed boundary.

mod barrier;
mod bootstrap;
mod boundary;
mod heartbeat;
mod journal_model;
pub(crate) mod manager;
mod merge;
mod pending;
