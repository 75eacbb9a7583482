//! The envelope: which message a byte string is ([`MessageKind`]) and the typed messages each core
//! takes in ([`ToNode`], [`ToMaintainer`]).

use super::*;

/// Declares [`MessageKind`] from one list: each kind's doc, name and direction.
macro_rules! message_kinds {
    ($($(#[doc = $doc:literal])* $kind:ident => to_node: $to_node:literal,)*) => {
        /// The kind of a message between a maintainer and a node: the protobuf message's name on
        /// the wire. A transport carries the kind beside the bytes (the reference's message type
        /// field).
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
        pub enum MessageKind {
            $($(#[doc = $doc])* $kind,)*
        }

        impl MessageKind {
            /// Every kind, in the order above.
            pub const ALL: [MessageKind; [$(stringify!($kind)),*].len()] = [$(MessageKind::$kind),*];

            /// The protobuf message name.
            pub fn name(self) -> &'static str {
                match self {
                    $(MessageKind::$kind => stringify!($kind),)*
                }
            }

            /// Whether the kind goes from a maintainer to a node (otherwise from a node to a
            /// maintainer).
            pub fn to_node(self) -> bool {
                match self {
                    $(MessageKind::$kind => $to_node,)*
                }
            }
        }
    };
}

message_kinds! {
    /// Maintainer to node: create or remove a dispatcher.
    ScheduleDispatcherRequest => to_node: true,
    /// Maintainer to node: merge dispatchers.
    MergeDispatcherRequest => to_node: true,
    /// Node to maintainer: watermarks and dispatcher statuses.
    HeartBeatRequest => to_node: false,
    /// Maintainer to node: barrier answers (not handled by the node core yet).
    HeartBeatResponse => to_node: true,
    /// Node to maintainer: barrier statuses (not handled by the maintainer core yet).
    BlockStatusRequest => to_node: false,
    /// Maintainer to node: ask for a bootstrap snapshot, taking ownership.
    MaintainerBootstrapRequest => to_node: true,
    /// Node to maintainer: the snapshot.
    MaintainerBootstrapResponse => to_node: false,
    /// Maintainer to node: finish the bootstrap on the maintainer's own node.
    MaintainerPostBootstrapRequest => to_node: true,
    /// Node to maintainer: its answer.
    MaintainerPostBootstrapResponse => to_node: false,
    /// Maintainer to node: close the changefeed.
    MaintainerCloseRequest => to_node: true,
    /// Node to maintainer: its answer.
    MaintainerCloseResponse => to_node: false,
}

impl MessageKind {
    /// The kind of a protobuf message name.
    pub fn from_name(name: &str) -> Option<MessageKind> {
        MessageKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl std::fmt::Display for MessageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
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
}

impl ToMaintainer {
    /// The message's kind.
    pub fn kind(&self) -> MessageKind {
        match self {
            ToMaintainer::Heartbeat(_) => MessageKind::HeartBeatRequest,
            ToMaintainer::Bootstrap(_) => MessageKind::MaintainerBootstrapResponse,
            ToMaintainer::PostBootstrap(_) => MessageKind::MaintainerPostBootstrapResponse,
            ToMaintainer::Close(_) => MessageKind::MaintainerCloseResponse,
        }
    }
}
