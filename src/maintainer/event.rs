//! What happens to the maintainer ([`Event`]) and what it asks of the world ([`Output`]).

use crate::ids::{DispatcherId, Mode, NodeId, Ts};
use crate::messages::{
    BlockStatusRequest, BootstrapResponse, Heartbeat, PostBootstrapResponse, RunningError, ToMaintainer,
    ToNode,
};
use crate::span::TableSpan;

use super::operator::{OperatorKind, OperatorOutcome};
use super::schema::TableInfo;

/// Something that happened to the maintainer.
#[derive(Clone, PartialEq, Debug)]
pub enum Event {
    /// Time passed: resend, schedule, advance the checkpoint.
    Tick,
    /// A node answered the bootstrap request.
    BootstrapResponse {
        /// The node.
        from: NodeId,
        /// Its snapshot.
        response: BootstrapResponse,
    },
    /// The own node answered the post-bootstrap request.
    PostBootstrapResponse {
        /// The node.
        from: NodeId,
        /// Its answer.
        response: PostBootstrapResponse,
    },
    /// A node's heartbeat.
    Heartbeat {
        /// The node.
        from: NodeId,
        /// Its content.
        heartbeat: Heartbeat,
    },
    /// A node's block statuses (barrier reports of one mode).
    BlockStatus {
        /// The node.
        from: NodeId,
        /// The statuses.
        request: BlockStatusRequest,
    },
    /// A node joined the cluster.
    NodeJoined(NodeId),
    /// A node left the cluster (membership, not a missed heartbeat).
    NodeLeft(NodeId),
    /// The user asks to move a span to a node.
    MoveSpan {
        /// Mode of the span.
        mode: Mode,
        /// The span's dispatcher id.
        id: DispatcherId,
        /// Destination.
        to: NodeId,
    },
    /// The user asks to split a span into `into` equal parts.
    SplitSpan {
        /// Mode of the span.
        mode: Mode,
        /// The span's dispatcher id.
        id: DispatcherId,
        /// Number of parts.
        into: usize,
    },
    /// The user asks to merge adjacent spans that sit on one node.
    MergeSpans {
        /// Mode of the spans.
        mode: Mode,
        /// The spans, in key order.
        ids: Vec<DispatcherId>,
    },
    /// CREATE TABLE reached the changefeed.
    CreateTable {
        /// The table.
        table: TableInfo,
        /// How many equal spans to cut it into.
        spans: usize,
        /// Commit ts of the DDL.
        commit_ts: Ts,
    },
    /// DROP TABLE reached the changefeed.
    DropTable {
        /// The table.
        table: TableInfo,
        /// Commit ts of the DDL.
        commit_ts: Ts,
    },
    /// TRUNCATE TABLE: `table` is dropped and `new_table` created by one DDL.
    TruncateTable {
        /// The dropped table.
        table: TableInfo,
        /// The table that replaces it.
        new_table: TableInfo,
        /// Commit ts of the DDL.
        commit_ts: Ts,
    },
    /// The coordinator moved the changefeed elsewhere: go inert (I13), clean up the triggers.
    Stop,
    /// The changefeed is closed (paused or removed): tell every node, then go inert.
    Close {
        /// Removed (true) or paused (false).
        removed: bool,
    },
}

impl Event {
    /// The event of a node's message, decoded by [`crate::wire::decode_to_maintainer`]; `None`
    /// for a close answer, which the embedder's coordinator reads, not the maintainer core.
    pub fn received(from: NodeId, message: ToMaintainer) -> Option<Event> {
        Some(match message {
            ToMaintainer::Heartbeat(heartbeat) => Event::Heartbeat { from, heartbeat },
            ToMaintainer::Bootstrap(response) => Event::BootstrapResponse { from, response },
            ToMaintainer::PostBootstrap(response) => Event::PostBootstrapResponse { from, response },
            ToMaintainer::BlockStatus(request) => Event::BlockStatus { from, request },
            ToMaintainer::Close(_) => return None,
        })
    }
}

/// What the embedder must do or know after a step.
#[derive(Clone, PartialEq, Debug)]
pub enum Output {
    /// Deliver a control message to a node.
    Send {
        /// The node.
        to: NodeId,
        /// The message.
        message: ToNode,
    },
    /// Every tracked node answered; scheduling has started.
    Bootstrapped,
    /// An operator finished.
    OperatorFinished {
        /// Its mode.
        mode: Mode,
        /// Its id.
        id: DispatcherId,
        /// Which operator.
        kind: OperatorKind,
        /// How it ended.
        outcome: OperatorOutcome,
    },
    /// The committed checkpoint of a mode moved forward.
    CheckpointAdvanced {
        /// The mode.
        mode: Mode,
        /// The new committed checkpoint.
        checkpoint_ts: Ts,
    },
    /// A user request or DDL could not be carried out (a documented drop, nothing changed).
    Refused {
        /// Which request.
        request: &'static str,
        /// Why.
        reason: String,
    },
    /// A scheduler started an operator on its own (the balance scheduler's move, a load-driven
    /// split, merge or move), not for a user's request or a repair.
    SchedulerStarted {
        /// Its mode.
        mode: Mode,
        /// The span it acts on (a merge's: its first source).
        id: DispatcherId,
        /// Which operator.
        kind: OperatorKind,
        /// The key range it reshapes or moves (a merge's: the span it makes).
        span: TableSpan,
        /// Why, in a few words.
        reason: &'static str,
    },
    /// A node reported a running error (or refused the bootstrap).
    NodeError {
        /// The node.
        node: NodeId,
        /// The error.
        error: RunningError,
    },
}

/// Where the maintainer is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lifecycle {
    /// Waiting for every node's bootstrap response.
    Bootstrapping,
    /// Scheduling.
    Running,
    /// Inert: told to stop or closed (I13).
    Removing,
}
