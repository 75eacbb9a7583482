//! # dispatcher-core
//!
//! The scheduling core of a change-data-capture system, after TiCDC's new architecture.
//!
//! ## Concepts
//!
//! A *changefeed* replicates many tables. Each table is cut into key-range *spans*
//! ([`span::TableSpan`]); each span is replicated by a *dispatcher* on some node, in one of two
//! *modes* (normal and redo, independent of each other). One coordinator per changefeed, the
//! *maintainer*, decides which node runs which span and changes that through *operators* (add,
//! remove, move, split, merge), which reach the nodes as create/remove/merge requests.
//!
//! Each node runs one *dispatcher manager* per changefeed ([`node::DispatcherManager`]). It
//! executes the maintainer's requests and keeps a journal of the operators in flight. Every
//! maintainer has an *epoch*; when it dies or moves, a new maintainer with a higher epoch
//! *bootstraps*: every node answers with its dispatchers and its journal, and the new maintainer
//! rebuilds the unfinished operators from them.
//!
//! ## Guarantees of the node core
//!
//! * At most one in-flight operator per (mode, span), admitted by one atomic insert-if-absent.
//! * Never two live dispatchers of one mode covering the same key on a node.
//! * Only a bootstrap changes the owner; requests of any other owner are dropped.
//! * A create admitted under an older owner either executed before the bootstrap snapshot was built
//!   (and is in it) or never executes (invariant I12).
//! * A dispatcher reported alive in a snapshot while its removal is in flight is reported with its
//!   Remove (hazard R3 closed).
//! * No mutex on any request path; the core never blocks, sleeps, spawns or reads a clock.
//! * Heartbeat path: a status update costs a few atomic operations and never blocks; no update,
//!   state transition or terminal Stopped is lost, even when the bounded queue is full; reported
//!   checkpoints never go backwards; a watermark never exceeds the checkpoint of a dispatcher its
//!   `seq` accounts for, nor the start of a create in flight (hazard R2 closed).
//!
//! ## Layout
//!
//! | module | |
//! |---|---|
//! | [`ids`], [`span`] | identities and key ranges |
//! | [`messages`] | the protocol's messages as validated domain values |
//! | [`wire`] | protobuf types, JSON mapping, validation (the only place protobuf appears) |
//! | [`node`] | the dispatcher manager |
//! | [`maintainer`] | the per-changefeed coordinator: spans, operators, schedulers, recovery |
//! | [`coordinator`] | the cluster coordinator: maintainer placement, moves, stops, its bootstrap, checkpoints |
//! | [`sync`] | the one home of atomics and concurrent containers (loom-swappable) |

pub mod coordinator;
pub mod host;
pub mod ids;
pub mod maintainer;
pub mod messages;
pub mod mutation;
mod names;
pub mod node;
pub mod sim;
pub mod span;
pub mod sync;
pub mod wire;
