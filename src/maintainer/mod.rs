//! The maintainer: the per-changefeed coordinator that schedules spans onto nodes through
//! operators and recovers unfinished operators after a failover.
//!
//! [`Maintainer`] is sans-IO and single-threaded: [`Maintainer::step`] takes the current time and
//! one [`Event`] and returns the [`Output`]s (messages to nodes, notices for the embedder). It
//! never reads a clock, sleeps or does I/O, so the simulator and the tests step it exactly.

pub mod barrier;
mod bootstrap;
mod checkpoint;
pub(crate) mod controller;
mod core;
mod ddl;
mod event;
pub mod load;
pub mod manager;
pub(crate) mod operator;
mod requests;
mod scheduler;
pub(crate) mod schema;
pub(crate) mod spans;

pub use self::core::{Maintainer, MaintainerConfig, ModeView, Mutation, Mutations};
pub use controller::{Finished, OperatorController, Refusal};
pub use event::{Event, Lifecycle, Output};
pub use operator::{
    create_start_ts, AfterRemove, Change, Kind, MergePhase, MessageContext, OpEvent, Operator, OperatorKind,
    OperatorOutcome, OperatorPhase,
};
pub use schema::{Ddl, Fate, MemorySchema, SchemaView, TableInfo};
pub use spans::{Guard, NewSpan, SpanController, SpanRecord, SpanState, Stale, TableKey};
