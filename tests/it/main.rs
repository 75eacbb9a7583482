//! Integration tests: one binary. Each test names the reference case or hazard it covers.

mod bootstrap;
mod cli;
mod heartbeat;
mod manager;
mod merge;
mod model;
