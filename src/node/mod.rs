//! The node side: one [`DispatcherManager`] per (node, changefeed).
//!
//! | module | what it holds |
//! |---|---|
//! | `barrier` | what one dispatcher does at a block event (flush, WAITING, write or pass, DONE), for embedders to drive |
//! | `fence` | the maintainer epoch fence: owner, admission and take-over tables |
//! | `registry` | dispatchers by id, per-table span sets, the record state word |
//! | `journal` | the in-flight operator journal, one operator per (mode, span) |
//! | `merge` | the merge journal and a merge's progress word |
//! | `heartbeat` | status coalescing, heartbeat rounds, watermarks, block statuses, inbound answers |
//! | `manager` | scheduling requests and embedder callbacks |
//! | `bootstrap` | bootstrap snapshot, post-bootstrap, close |
//! | `orchestrator` | the node's entry point (`handle`): one manager per changefeed, close tombstones |
//! | `pending` | the orchestrator's intake queue: one message per (changefeed, kind) |
//! | `effect` | what the core asks the embedder to do |

pub mod barrier;
pub(crate) mod bootstrap;
pub(crate) mod effect;
pub(crate) mod fence;
pub(crate) mod heartbeat;
pub(crate) mod journal;
pub(crate) mod manager;
pub(crate) mod merge;
pub(crate) mod orchestrator;
pub(crate) mod pending;
pub(crate) mod registry;

pub use effect::{CreateTicket, DropReason, Effect, Outcome, Reaction, Reply};
pub use fence::{Fence, Owner};
pub use heartbeat::{
    batch, BlockBatcher, BlockOutbound, BlockStatusBuffer, BlockStatusQueue, Coalescer, Collector, Enqueued,
    HeartbeatConfig, Offered, Outbound, Poll, Report, RoundKind, Schedule, StatusHandle, StatusSlot, Update,
    PENDING_MAX,
};
pub use journal::{Admitted, AdmittedRef, Busy, Hold, OpEntry, OpKey, OpRequest, OperatorTable, RequestKind};
pub use manager::{CreateWithdrawn, DispatcherManager, ManagerConfig};
pub use merge::{MergeEntry, MergeJournal, MergePhase};
pub use orchestrator::Orchestrator;
pub use pending::{PendingKey, PendingMessage, PendingQueue, PushError, Pushed};
pub use registry::{DispatcherRecord, RecordPhase, RecordSpec, RecordState, Registry};
