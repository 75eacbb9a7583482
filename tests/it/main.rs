//! Integration tests: one binary. Each test names the case or invariant it covers.

mod cli;
mod coordinator;
mod host;
mod layout;
mod maintainer;
mod node;
mod report_browser;
mod simulator;
mod trace;
