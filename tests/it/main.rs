//! Integration tests: one binary. Each test names the reference case or hazard it covers.

mod bootstrap;
mod harness;
mod recovery;
mod cli;
mod manager;
mod merge;
mod model;
