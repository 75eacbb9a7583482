//! The envelope: which message a byte string is ([`MessageKind`]) and the typed messages each core
//! takes in ([`ToNode`], [`ToMaintainer`]).

use super::*;

crate::names::named_enum! {
    "message kind";
    /// The kind of a message between a maintainer and a node: the protobuf message's name on the
    /// wire. A transport carries the kind beside the bytes (the reference's message type field).
    #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
    pub enum MessageKind {
        /// Maintainer to node: create or remove a dispatcher.
        ScheduleDispatcherRequest = "ScheduleDispatcherRequest",
        /// Maintainer to node: merge dispatchers.
        MergeDispatcherRequest = "MergeDispatcherRequest",
        /// Node to maintainer: watermarks and dispatcher statuses.
        HeartBeatRequest = "HeartBeatRequest",
        /// Maintainer to node: barrier answers (not handled by the node core yet).
        HeartBeatResponse = "HeartBeatResponse",
        /// Node to maintainer: barrier statuses (not handled by the maintainer core yet).
        BlockStatusRequest = "BlockStatusRequest",
        /// Maintainer to node: ask for a bootstrap snapshot, taking ownership.
        MaintainerBootstrapRequest = "MaintainerBootstrapRequest",
        /// Node to maintainer: the snapshot.
        MaintainerBootstrapResponse = "MaintainerBootstrapResponse",
        /// Maintainer to node: finish the bootstrap on the maintainer's own node.
        MaintainerPostBootstrapRequest = "MaintainerPostBootstrapRequest",
        /// Node to maintainer: its answer.
        MaintainerPostBootstrapResponse = "MaintainerPostBootstrapResponse",
        /// Maintainer to node: close the changefeed.
        MaintainerCloseRequest = "MaintainerCloseRequest",
        /// Node to maintainer: its answer.
        MaintainerCloseResponse = "MaintainerCloseResponse",
    }
}

impl MessageKind {
    /// Whether the kind goes from a maintainer to a node (otherwise from a node to a maintainer).
    pub fn to_node(self) -> bool {
        use MessageKind::*;
        matches!(
            self,
            ScheduleDispatcherRequest
                | MergeDispatcherRequest
                | HeartBeatResponse
                | MaintainerBootstrapRequest
                | MaintainerPostBootstrapRequest
                | MaintainerCloseRequest
        )
    }
}

/// A message from a maintainer that the node core handles: what `crate::wire` decodes for
/// `Orchestrator::handle`, and what a maintainer asks its transport to send.
#[derive(Clone, PartialEq, Debug)]
pub enum ToNode {
    /// Create or remove a dispatcher.
    Schedule(ScheduleRequest),
    /// Merge dispatchers.
    Merge(MergeRequest),
    /// Ask for a bootstrap snapshot (and take ownership).
    Bootstrap(BootstrapRequest),
    /// Finish the bootstrap on the maintainer's own node.
    PostBootstrap(PostBootstrapRequest),
    /// Close the changefeed on a node.
    Close(CloseRequest),
    /// Barrier answers (ACK, ignored, Write, Pass) for the node's dispatchers.
    Barrier(HeartBeatResponse),
}

impl ToNode {
    /// The message's kind.
    pub fn kind(&self) -> MessageKind {
        match self {
            ToNode::Schedule(_) => MessageKind::ScheduleDispatcherRequest,
            ToNode::Merge(_) => MessageKind::MergeDispatcherRequest,
            ToNode::Bootstrap(_) => MessageKind::MaintainerBootstrapRequest,
            ToNode::PostBootstrap(_) => MessageKind::MaintainerPostBootstrapRequest,
            ToNode::Close(_) => MessageKind::MaintainerCloseRequest,
            ToNode::Barrier(_) => MessageKind::HeartBeatResponse,
        }
    }

    /// The sending maintainer's epoch.
    pub fn epoch(&self) -> Epoch {
        match self {
            ToNode::Schedule(r) => r.epoch,
            ToNode::Merge(r) => r.epoch,
            ToNode::Bootstrap(r) => r.epoch,
            ToNode::PostBootstrap(r) => r.epoch,
            ToNode::Close(r) => r.epoch,
            ToNode::Barrier(r) => r.epoch,
        }
    }

    /// The changefeed it addresses.
    pub fn changefeed(&self) -> &ChangefeedId {
        match self {
            ToNode::Schedule(r) => &r.changefeed,
            ToNode::Merge(r) => &r.changefeed,
            ToNode::Bootstrap(r) => &r.changefeed,
            ToNode::PostBootstrap(r) => &r.changefeed,
            ToNode::Close(r) => &r.changefeed,
            ToNode::Barrier(r) => &r.changefeed,
        }
    }
}

/// A message from a node that the maintainer core handles.
#[derive(Clone, PartialEq, Debug)]
pub enum ToMaintainer {
    /// Watermarks and dispatcher statuses.
    Heartbeat(Heartbeat),
    /// A bootstrap snapshot.
    Bootstrap(BootstrapResponse),
    /// The answer to a post-bootstrap.
    PostBootstrap(PostBootstrapResponse),
    /// The answer to a close.
    Close(CloseResponse),
    /// Block statuses of one mode's dispatchers (the barrier's reports).
    BlockStatus(BlockStatusRequest),
}

impl ToMaintainer {
    /// The epoch of the maintainer request it answers (a heartbeat answers none).
    pub fn epoch(&self) -> Option<Epoch> {
        match self {
            ToMaintainer::Heartbeat(_) | ToMaintainer::BlockStatus(_) => None,
            ToMaintainer::Bootstrap(r) => Some(r.epoch),
            ToMaintainer::PostBootstrap(r) => Some(r.epoch),
            ToMaintainer::Close(r) => Some(r.epoch),
        }
    }

    /// The message's kind.
    pub fn kind(&self) -> MessageKind {
        match self {
            ToMaintainer::Heartbeat(_) => MessageKind::HeartBeatRequest,
            ToMaintainer::Bootstrap(_) => MessageKind::MaintainerBootstrapResponse,
            ToMaintainer::PostBootstrap(_) => MessageKind::MaintainerPostBootstrapResponse,
            ToMaintainer::Close(_) => MessageKind::MaintainerCloseResponse,
            ToMaintainer::BlockStatus(_) => MessageKind::BlockStatusRequest,
        }
    }
}
