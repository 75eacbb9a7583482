//! The protocol's messages as validated domain values.
//!
//! These are what the cores read and write. They derive neither `prost::Message` nor `serde`:
//! only `crate::wire` converts between them and the protobuf types, and all validation of outside
//! input happens in that conversion.

use crate::ids::{ChangefeedId, DispatcherId, Epoch, Mode, Ts};
use crate::span::TableSpan;

mod barrier;
mod coordination;
mod envelope;

pub use barrier::*;
pub use coordination::*;
pub use envelope::*;

/// What a scheduling request asks the node to do.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ScheduleAction {
    /// Create the dispatcher (wire 0).
    Create,
    /// Remove the dispatcher (wire 1).
    Remove,
}

/// Which maintainer operator sent a request. The node stores and echoes it, never branches on it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum OperatorType {
    /// Add a span (wire 0).
    Add,
    /// Remove a span (wire 1).
    Remove,
    /// Move a span between nodes (wire 2).
    Move,
    /// Split a span (wire 3).
    Split,
    /// Merge adjacent spans (wire 4).
    Merge,
}

/// A dispatcher's component state as reported to the maintainer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ComponentState {
    /// Replicating (wire 0).
    Working,
    /// Closed; its final checkpoint is reported with it (wire 1).
    Stopped,
    /// Removed (wire 2; never emitted by a node).
    Removed,
    /// Created, waiting for its first event (wire 3).
    Initializing,
    /// A merged dispatcher waiting for its upstream to prepare (wire 4).
    Preparing,
    /// A merged dispatcher whose upstream is ready (wire 5).
    MergeReady,
    /// A merge source waiting for the merge to take over (wire 6).
    WaitingMerge,
}

impl ComponentState {
    /// Whether the dispatcher is gone for good (`Stopped` or `Removed`).
    pub fn is_terminal(self) -> bool {
        matches!(self, ComponentState::Stopped | ComponentState::Removed)
    }

    /// All states in wire order.
    pub const ALL: [ComponentState; 7] = [
        ComponentState::Working,
        ComponentState::Stopped,
        ComponentState::Removed,
        ComponentState::Initializing,
        ComponentState::Preparing,
        ComponentState::MergeReady,
        ComponentState::WaitingMerge,
    ];

    /// The wire value.
    pub fn as_i32(self) -> i32 {
        match self {
            ComponentState::Working => 0,
            ComponentState::Stopped => 1,
            ComponentState::Removed => 2,
            ComponentState::Initializing => 3,
            ComponentState::Preparing => 4,
            ComponentState::MergeReady => 5,
            ComponentState::WaitingMerge => 6,
        }
    }

    /// The state for a wire value.
    pub fn from_i32(v: i32) -> Option<Self> {
        Self::ALL.get(usize::try_from(v).ok()?).copied()
    }
}

/// What a scheduling request says about one dispatcher.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct DispatcherConfig {
    /// The dispatcher.
    pub id: DispatcherId,
    /// Its mode.
    pub mode: Mode,
    /// Where replication starts (Create only).
    pub start_ts: Ts,
    /// The table's schema id.
    pub schema_id: i64,
    /// Skip DML at exactly `start_ts` (Create only).
    pub skip_dml_as_start_ts: bool,
}

/// `ScheduleDispatcherRequest`: create or remove one dispatcher.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ScheduleRequest {
    /// The changefeed.
    pub changefeed: ChangefeedId,
    /// The dispatcher.
    pub config: DispatcherConfig,
    /// Create or remove, with the span each needs.
    pub order: Order,
    /// The maintainer operator that sent it.
    pub operator_type: OperatorType,
    /// The sending maintainer's epoch.
    pub epoch: Epoch,
}

/// What a scheduling request asks. A Create always names its span, so a request that could not be
/// carried out does not get past the wire boundary.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Order {
    /// Create the dispatcher over `span`.
    Create {
        /// The span to replicate.
        span: TableSpan,
    },
    /// Remove the dispatcher. The span is optional on the wire; when present it lets a later
    /// maintainer correlate the journaled remove with a span.
    Remove {
        /// The dispatcher's span, if the sender gave it.
        span: Option<TableSpan>,
    },
}

impl Order {
    /// The order for `action` over `span`; `None` for a Create without a span.
    pub fn new(action: ScheduleAction, span: Option<TableSpan>) -> Option<Order> {
        match (action, span) {
            (ScheduleAction::Create, Some(span)) => Some(Order::Create { span }),
            (ScheduleAction::Create, None) => None,
            (ScheduleAction::Remove, span) => Some(Order::Remove { span }),
        }
    }

    /// The action without its data.
    pub fn action(&self) -> ScheduleAction {
        match self {
            Order::Create { .. } => ScheduleAction::Create,
            Order::Remove { .. } => ScheduleAction::Remove,
        }
    }

    /// The span, always present for a Create.
    pub fn span(&self) -> Option<&TableSpan> {
        match self {
            Order::Create { span } => Some(span),
            Order::Remove { span } => span.as_ref(),
        }
    }
}

impl ScheduleRequest {
    /// Create or remove.
    pub fn action(&self) -> ScheduleAction {
        self.order.action()
    }

    /// The dispatcher's span, always present for a Create.
    pub fn span(&self) -> Option<&TableSpan> {
        self.order.span()
    }
}

/// `MergeDispatcherRequest`: merge adjacent dispatchers on one node into a new one.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct MergeRequest {
    /// The changefeed.
    pub changefeed: ChangefeedId,
    /// The sources, in ascending key order as sent (adjacency is checked pairwise in this order).
    pub sources: Vec<DispatcherId>,
    /// The dispatcher to create over the joined span.
    pub merged: DispatcherId,
    /// Mode of all of them.
    pub mode: Mode,
    /// The sending maintainer's epoch.
    pub epoch: Epoch,
}

/// `TableSpanStatus`: one dispatcher's state and progress.
#[derive(Clone, PartialEq, Debug)]
pub struct DispatcherStatus {
    /// The dispatcher.
    pub id: DispatcherId,
    /// Its mode.
    pub mode: Mode,
    /// Its state.
    pub state: ComponentState,
    /// Its checkpoint (for Stopped: the final one).
    pub checkpoint_ts: Ts,
    /// Event rate, for the balance scheduler.
    pub event_size_per_second: f32,
}

/// `RunningError`: an error reported to the maintainer.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct RunningError {
    /// Free-form time of the error.
    pub time: String,
    /// The node reporting it.
    pub node: String,
    /// A short code.
    pub code: String,
    /// The message.
    pub message: String,
}

/// A barrier (blocking DDL or syncpoint) a dispatcher is parked on: the part of `State` the core reads.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct PendingBlock {
    /// Commit ts of the blocking event.
    pub block_ts: Ts,
    /// Whether it is a syncpoint rather than a DDL.
    pub is_sync_point: bool,
}

/// `MaintainerBootstrapRequest`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct BootstrapRequest {
    /// The changefeed.
    pub changefeed: ChangefeedId,
    /// The changefeed configuration (opaque JSON for the embedder).
    pub config: Vec<u8>,
    /// Start ts for a newly created table trigger.
    pub start_ts: Ts,
    /// Table trigger of the default mode, set only for the maintainer's own node.
    pub trigger: Option<DispatcherId>,
    /// Whether the changefeed is new.
    pub is_new_changefeed: bool,
    /// Table trigger of the redo mode.
    pub redo_trigger: Option<DispatcherId>,
    /// Keyspace of the changefeed.
    pub keyspace_id: u32,
    /// The new maintainer's epoch.
    pub epoch: Epoch,
}

/// `BootstrapTableSpan`: one dispatcher in a bootstrap snapshot.
#[derive(Clone, PartialEq, Debug)]
pub struct BootstrapSpan {
    /// The dispatcher.
    pub id: DispatcherId,
    /// Its mode.
    pub mode: Mode,
    /// Its schema id.
    pub schema_id: i64,
    /// Its span.
    pub span: TableSpan,
    /// Its state.
    pub state: ComponentState,
    /// Its checkpoint.
    pub checkpoint_ts: Ts,
    /// Its barrier state (`block_state`), passed through whole; `None` when it reported none.
    /// Boxed: most spans report none, and a million of these are moved around at a failover
    /// (16 bytes less kept a node's `(NodeId, BootstrapSpan)` at two cache lines, issue 16).
    pub block: Option<Box<BlockState>>,
}

impl BootstrapSpan {
    /// The barrier a re-created dispatcher must replay from: a blocked state that is not done
    /// (B13: a span re-created mid-barrier replays it; a state without a stage counts, as older
    /// nodes send).
    pub fn pending_block(&self) -> Option<PendingBlock> {
        self.block
            .as_ref()
            .filter(|b| b.is_blocked && b.stage != BlockStage::Done)
            .map(|b| PendingBlock { block_ts: b.block_ts, is_sync_point: b.is_sync_point })
    }
}

/// `MaintainerBootstrapResponse`.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct BootstrapResponse {
    /// The changefeed.
    pub changefeed: ChangefeedId,
    /// Every dispatcher of both modes.
    pub spans: Vec<BootstrapSpan>,
    /// Set on failure (then nothing else but changefeed and epoch is).
    pub err: Option<RunningError>,
    /// Start ts of the default-mode table trigger, 0 if this node has none.
    pub checkpoint_ts: Ts,
    /// Start ts of the redo table trigger, 0 if none.
    pub redo_checkpoint_ts: Ts,
    /// In-flight create/remove operators (see the node core's snapshot rules).
    pub operators: Vec<ScheduleRequest>,
    /// The node's owner epoch after the bootstrap.
    pub epoch: Epoch,
    /// The merge journal.
    pub merge_operators: Vec<MergeRequest>,
}

/// `MaintainerPostBootstrapRequest` (the schema payload stays with the embedder).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PostBootstrapRequest {
    /// The changefeed.
    pub changefeed: ChangefeedId,
    /// The table trigger the maintainer expects on this node.
    pub trigger: Option<DispatcherId>,
    /// The maintainer's epoch.
    pub epoch: Epoch,
}

/// `MaintainerPostBootstrapResponse`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PostBootstrapResponse {
    /// The changefeed.
    pub changefeed: ChangefeedId,
    /// The trigger id echoed on success.
    pub trigger: Option<DispatcherId>,
    /// Set on failure.
    pub err: Option<RunningError>,
    /// The request's epoch.
    pub epoch: Epoch,
}

/// `MaintainerCloseRequest`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CloseRequest {
    /// The changefeed.
    pub changefeed: ChangefeedId,
    /// True: the changefeed is removed; false: paused.
    pub removed: bool,
    /// The maintainer's epoch.
    pub epoch: Epoch,
}

/// `MaintainerCloseResponse`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CloseResponse {
    /// The changefeed.
    pub changefeed: ChangefeedId,
    /// True once the changefeed's dispatchers are all closed (or the request was stale).
    pub success: bool,
    /// The request's epoch.
    pub epoch: Epoch,
}

/// A node's progress for one mode, as carried by a heartbeat (`heartbeatpb.Watermark`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Watermark {
    /// Minimum checkpoint over the node's dispatchers of the mode (and creates in flight).
    pub checkpoint_ts: Ts,
    /// Minimum resolved ts over the same set.
    pub resolved_ts: Ts,
    /// Grows whenever a dispatcher is added, so a lower checkpoint with a higher `seq` is news.
    pub seq: u64,
}

impl Watermark {
    /// The watermark of a node that has nothing to report for the mode: no constraint.
    pub const NONE: Watermark = Watermark { checkpoint_ts: Ts::MAX, resolved_ts: Ts::MAX, seq: 0 };
}

/// What a node sends its maintainer periodically (`heartbeatpb.HeartBeatRequest`).
#[derive(Clone, PartialEq, Debug, Default)]
pub struct Heartbeat {
    /// The changefeed the heartbeat is about.
    pub changefeed: ChangefeedId,
    /// Progress of the default mode; `None` in error-only heartbeats.
    pub watermark: Option<Watermark>,
    /// Progress of the redo mode, when the node reports it.
    pub redo_watermark: Option<Watermark>,
    /// Dispatcher statuses, each naming its mode.
    pub statuses: Vec<DispatcherStatus>,
    /// Whether `statuses` lists every dispatcher of the node (a complete sweep).
    pub complete: bool,
    /// The node's first unreported running error, if any.
    pub err: Option<RunningError>,
}

impl Heartbeat {
    /// The watermark reported for `mode`.
    pub fn watermark(&self, mode: Mode) -> Option<Watermark> {
        match mode {
            Mode::Default => self.watermark,
            Mode::Redo => self.redo_watermark,
        }
    }
}
