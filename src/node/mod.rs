//! The node side: one [`DispatcherManager`] per (node, changefeed).
//!
//! | module | what it holds |
//! |---|---|
//! | [`fence`] | the maintainer epoch fence: owner, admission and take-over tables |
//! | [`registry`] | dispatchers by id, per-table span sets, the record state word |
//! | [`journal`] | the in-flight operator journal, one operator per (mode, span) |
//! | [`merge`] | the merge journal and a merge's progress word |
//! | [`heartbeat`] | status coalescing, heartbeat rounds, watermarks, block statuses, inbound answers |
//! | [`manager`] | scheduling requests and embedder callbacks |
//! | [`bootstrap`] | bootstrap snapshot, post-bootstrap, close |
//! | [`orchestrator`] | the node's entry point (`handle`): one manager per changefeed, close tombstones |
//! | [`pending`] | the orchestrator's intake queue: one message per (changefeed, kind) |
//! | [`effect`] | what the core asks the embedder to do |

pub mod bootstrap;
pub mod effect;
pub mod fence;
pub mod heartbeat;
pub mod journal;
pub mod manager;
pub mod merge;
pub mod orchestrator;
pub mod pending;
pub mod registry;

pub use effect::{CreateTicket, DropReason, Effect, Outcome, Reaction, Reply};
pub use fence::{Fence, Owner};
pub use heartbeat::{Collector, HeartbeatConfig, StatusHandle};
pub use manager::{CreateWithdrawn, DispatcherManager, ManagerConfig};
pub use orchestrator::Orchestrator;
pub use pending::{PendingKey, PendingMessage, PendingQueue, PushError, Pushed};
