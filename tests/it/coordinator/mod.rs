//! The coordinator level: the messages between the coordinator and every node's maintainer
//! manager through the typed boundary, and the coordinator core stepped against an in-memory store.

mod bootstrap;
mod boundary;
pub(crate) mod harness;
mod manager;
mod model;
mod operators;
mod world;
