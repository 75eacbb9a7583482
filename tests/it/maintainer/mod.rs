//! The maintainer: operator tables, the running maintainer driven by scripted nodes, and
//! bootstrap recovery.

mod barrier;
mod block_events;
mod harness;
mod load;
mod operators;
mod recovery;
mod scheduling;
