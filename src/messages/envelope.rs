//! The envelope: which message a byte string is ([`MessageKind`]), which core takes it in
//! ([`Receiver`]), and the typed messages of the node and maintainer cores ([`ToNode`],
//! [`ToMaintainer`]; the coordination ones are in `coordination`).

use super::*;

crate::names::named_enum! {
    "message kind";
    /// The kind of a message between two cores: the protobuf message's name. A transport carries
    /// the kind beside the bytes (the reference's message type field, `crate::wire::io_type`).
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
        /// Coordinator to manager: a new coordinator asks what the node runs.
        CoordinatorBootstrapRequest = "CoordinatorBootstrapRequest",
        /// Manager to coordinator: the node's maintainers and drain state.
        CoordinatorBootstrapResponse = "CoordinatorBootstrapResponse",
        /// Coordinator to manager: start a maintainer.
        AddMaintainerRequest = "AddMaintainerRequest",
        /// Coordinator to manager: stop a maintainer.
        RemoveMaintainerRequest = "RemoveMaintainerRequest",
        /// Manager to coordinator: maintainer statuses.
        MaintainerHeartbeat = "MaintainerHeartbeat",
        /// Coordinator to manager: a changefeed's persisted checkpoint.
        CheckpointTsMessage = "CheckpointTsMessage",
        /// Manager to coordinator: the node's liveness and lifetime.
        NodeHeartbeat = "NodeHeartbeat",
        /// Coordinator to manager: move the node's liveness forward.
        SetNodeLivenessRequest = "SetNodeLivenessRequest",
        /// Manager to coordinator: the liveness applied.
        SetNodeLivenessResponse = "SetNodeLivenessResponse",
        /// Coordinator to manager: set or clear the drain target.
        SetDispatcherDrainTargetRequest = "SetDispatcherDrainTargetRequest",
    }
}

/// The core a message is for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Receiver {
    /// A node's dispatcher manager core (`Orchestrator`).
    Node,
    /// A changefeed's maintainer.
    Maintainer,
    /// A node's maintainer manager (it hosts the maintainers placed on the node).
    Manager,
    /// The elected coordinator.
    Coordinator,
}

impl Receiver {
    /// The receiver's name in errors and logs.
    pub fn name(self) -> &'static str {
        match self {
            Receiver::Node => "node",
            Receiver::Maintainer => "maintainer",
            Receiver::Manager => "maintainer manager",
            Receiver::Coordinator => "coordinator",
        }
    }
}

impl MessageKind {
    /// The core that takes the kind in.
    pub fn receiver(self) -> Receiver {
        use MessageKind::*;
        match self {
            ScheduleDispatcherRequest
            | MergeDispatcherRequest
            | HeartBeatResponse
            | MaintainerBootstrapRequest
            | MaintainerPostBootstrapRequest
            | MaintainerCloseRequest => Receiver::Node,
            HeartBeatRequest
            | BlockStatusRequest
            | MaintainerBootstrapResponse
            | MaintainerPostBootstrapResponse
            | MaintainerCloseResponse => Receiver::Maintainer,
            CoordinatorBootstrapRequest
            | AddMaintainerRequest
            | RemoveMaintainerRequest
            | CheckpointTsMessage
            | SetNodeLivenessRequest
            | SetDispatcherDrainTargetRequest => Receiver::Manager,
            CoordinatorBootstrapResponse | MaintainerHeartbeat | NodeHeartbeat | SetNodeLivenessResponse => {
                Receiver::Coordinator
            }
        }
    }

    /// Whether the kind goes from a maintainer to a node.
    pub fn to_node(self) -> bool {
        self.receiver() == Receiver::Node
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
