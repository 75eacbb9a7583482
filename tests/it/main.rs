//! Integration tests: one binary. Each test names the reference case or hazard it covers.

mod bootstrap;
mod boundary;
mod cli;
mod harness;
mod heartbeat;
mod layout;
mod manager;
mod merge;
mod model;
mod operators;
mod pending;
mod recovery;
mod scheduling;
mod sim;
