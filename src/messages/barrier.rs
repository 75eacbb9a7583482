//! The barrier's messages: block statuses from dispatchers and the maintainer's answers, and the
//! per-dispatcher progress messages that ride the same heartbeat path.

use super::*;

/// Which dispatchers a barrier answer applies to (`InfluencedDispatchers`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Influence {
    /// Every dispatcher of the response's mode (wire 0).
    All,
    /// Every dispatcher of one schema, plus the table trigger (wire 1).
    Db {
        /// The schema.
        schema_id: i64,
    },
    /// The listed dispatchers (wire 2).
    Normal {
        /// The dispatchers.
        ids: Vec<DispatcherId>,
    },
}

/// A barrier event, named by its commit ts and kind (`ACK`, `IgnoredBlockStatus`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct BarrierEvent {
    /// Commit ts of the event.
    pub commit_ts: Ts,
    /// Whether it is a syncpoint.
    pub is_sync_point: bool,
}

/// What a dispatcher must do with its pending barrier event (`DispatcherAction`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BarrierAction {
    /// True: pass the event without writing it (wire `Pass`); false: write it (wire `Write`).
    pub pass: bool,
    /// The event.
    pub event: BarrierEvent,
}

/// `DispatcherStatus` of a `HeartBeatResponse`: one barrier answer and whom it is for. The core
/// routes it; the dispatcher interprets it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BarrierAnswer {
    /// Whom it is for.
    pub influence: Influence,
    /// Write or pass the pending event.
    pub action: Option<BarrierAction>,
    /// The block status for this event was received.
    pub ack: Option<BarrierEvent>,
    /// The block status for this event was ignored: resend it.
    pub ignored: Option<BarrierEvent>,
}

/// `HeartBeatResponse`: the maintainer's answers to block-status traffic, fenced by epoch.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HeartBeatResponse {
    /// The changefeed.
    pub changefeed: ChangefeedId,
    /// The answers.
    pub answers: Vec<BarrierAnswer>,
    /// Mode of every dispatcher they concern.
    pub mode: Mode,
    /// The sending maintainer's epoch.
    pub epoch: Epoch,
}

/// `CheckpointTsMessage`: the changefeed checkpoint for the table trigger's sink. Not fenced.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CheckpointTsMessage {
    /// The changefeed.
    pub changefeed: ChangefeedId,
    /// The checkpoint.
    pub checkpoint_ts: Ts,
}

/// `RedoMetaMessage`: redo meta progress for the redo table trigger. Fenced.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RedoMetaMessage {
    /// The changefeed.
    pub changefeed: ChangefeedId,
    /// Redo resolved ts.
    pub resolved_ts: Ts,
    /// Redo checkpoint.
    pub checkpoint_ts: Ts,
    /// The sending maintainer's epoch.
    pub epoch: Epoch,
}

/// `RedoResolvedTsForwardMessage`: the global redo resolved ts. Fenced.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RedoResolvedTsForward {
    /// The changefeed.
    pub changefeed: ChangefeedId,
    /// The global redo resolved ts.
    pub resolved_ts: Ts,
    /// The sending maintainer's epoch.
    pub epoch: Epoch,
}

// ---- block status ----

/// Where a dispatcher is in passing a barrier (`BlockStage`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum BlockStage {
    /// No stage (wire 0); never de-duplicated.
    None,
    /// Waiting for the maintainer's action (wire 1).
    Waiting,
    /// Writing the event (wire 2).
    Writing,
    /// Done with the event (wire 3).
    Done,
}

impl BlockStage {
    /// All stages in wire order.
    pub const ALL: [BlockStage; 4] =
        [BlockStage::None, BlockStage::Waiting, BlockStage::Writing, BlockStage::Done];

    /// The wire value.
    pub fn as_i32(self) -> i32 {
        match self {
            BlockStage::None => 0,
            BlockStage::Waiting => 1,
            BlockStage::Writing => 2,
            BlockStage::Done => 3,
        }
    }

    /// The stage for a wire value.
    pub fn from_i32(v: i32) -> Option<Self> {
        Self::ALL.get(usize::try_from(v).ok()?).copied()
    }
}

/// Scope kind of a set of tables (`InfluenceType` inside `InfluencedTables`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum InfluenceKind {
    /// All tables (wire 0).
    All,
    /// One schema (wire 1).
    Db,
    /// Listed tables (wire 2).
    Normal,
}

/// `InfluencedTables`: the tables a barrier touches. Pass-through.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct InfluencedTables {
    /// Scope kind.
    pub kind: InfluenceKind,
    /// Table ids (Normal).
    pub table_ids: Vec<i64>,
    /// Schema id (Db).
    pub schema_id: i64,
}

/// `Table`: a table the maintainer must start replicating. Pass-through.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct AddedTable {
    /// Table id.
    pub table_id: i64,
    /// Schema id.
    pub schema_id: i64,
    /// Whether it may be split.
    pub splitable: bool,
}

/// `SchemaIDChange`: a table moved between schemas. Pass-through.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct SchemaIdChange {
    /// Table id.
    pub table_id: i64,
    /// Old schema id.
    pub old_schema_id: i64,
    /// New schema id.
    pub new_schema_id: i64,
}

/// `RouteTableAdmission`: a route-admission change. Pass-through; `action` is the wire value.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct RouteTableAdmission {
    /// Source schema.
    pub source_schema: String,
    /// Source table.
    pub source_table: String,
    /// Target schema.
    pub target_schema: String,
    /// Target table.
    pub target_table: String,
    /// `ADMIT = 0`, `RELEASE = 1`, `RELEASE_SCHEMA = 2`.
    pub action: i32,
}

/// The parts of a barrier `State` the core never reads, only forwards.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct BlockDetail {
    /// Tables blocked by the event.
    pub block_tables: Option<InfluencedTables>,
    /// Tables the event drops.
    pub need_dropped_tables: Option<InfluencedTables>,
    /// Tables the event adds.
    pub need_added_tables: Vec<AddedTable>,
    /// Schema moves.
    pub updated_schemas: Vec<SchemaIdChange>,
    /// Route admissions.
    pub route_table_admissions: Vec<RouteTableAdmission>,
}

/// `State`: a dispatcher's progress through one barrier event.
///
/// `detail` is shared, immutable: a queued status never aliases anything the dispatcher mutates.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct BlockState {
    /// Whether the dispatcher is blocked on the event.
    pub is_blocked: bool,
    /// Commit ts of the event.
    pub block_ts: Ts,
    /// Whether it is a syncpoint.
    pub is_sync_point: bool,
    /// Stage.
    pub stage: BlockStage,
    /// Pass-through payload.
    pub detail: std::sync::Arc<BlockDetail>,
}

/// `TableSpanBlockStatus`: one dispatcher's barrier state.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct BlockStatus {
    /// The dispatcher.
    pub id: DispatcherId,
    /// Its mode.
    pub mode: Mode,
    /// Its barrier state.
    pub state: BlockState,
}

impl BlockStatus {
    /// The de-duplication key (dispatcher, barrier, stage), for WAITING and DONE only.
    pub fn dedupe_key(&self) -> Option<BlockKey> {
        matches!(self.state.stage, BlockStage::Waiting | BlockStage::Done).then_some(BlockKey {
            id: self.id,
            block_ts: self.state.block_ts,
            mode: self.mode,
            is_sync_point: self.state.is_sync_point,
            stage: self.state.stage,
        })
    }
}

/// Identity of a WAITING or DONE block status for de-duplication.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct BlockKey {
    /// The dispatcher.
    pub id: DispatcherId,
    /// The barrier's commit ts.
    pub block_ts: Ts,
    /// Mode.
    pub mode: Mode,
    /// Syncpoint or DDL.
    pub is_sync_point: bool,
    /// WAITING or DONE.
    pub stage: BlockStage,
}

/// `BlockStatusRequest`: a batch of block statuses of one mode.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BlockStatusRequest {
    /// The changefeed.
    pub changefeed: ChangefeedId,
    /// The statuses, all of `mode`.
    pub statuses: Vec<BlockStatus>,
    /// Mode.
    pub mode: Mode,
}
