//! The reference transport's numbering: each frame carries a message type number (its `IOType`)
//! and a topic beside the payloads. We keep both so that frames are laid out the same way; routing
//! here goes by [`MessageKind::receiver`], so the topic is only written, never trusted.
//!
//! Numbers are the reference's (never reused there); the types it has and we do not handle (log
//! service events, redo progress, dispatcher heartbeats) have no [`MessageKind`] and are dropped
//! by [`kind_of_io_type`] returning `None`.

use crate::messages::MessageKind;

/// The type number of the stream handshake frame (its payload is not a protobuf message).
pub const HANDSHAKE_IO_TYPE: i32 = 36;

crate::names::named_enum! {
    "topic";
    /// A frame's topic: the reference's name of the component it is for.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
    pub enum Topic {
        /// The elected coordinator.
        Coordinator = "coordinator",
        /// A node's maintainer manager, and the maintainers it hosts.
        MaintainerManager = "maintainer-manager",
        /// A maintainer (close responses).
        Maintainer = "maintainer",
        /// A node's heartbeat collector (the node core's control inbox).
        HeartbeatCollector = "heartbeat-collector",
        /// A node's dispatcher orchestrator (bootstrap and close).
        DispatcherManagerManager = "dispatcher-manager-manager",
    }
}

/// Every kind with its type number and the topic it is sent on.
const TABLE: [(MessageKind, i32, Topic); 21] = {
    use MessageKind::*;
    use Topic as T;
    [
        (HeartBeatRequest, 13, T::MaintainerManager),
        (HeartBeatResponse, 14, T::HeartbeatCollector),
        (ScheduleDispatcherRequest, 15, T::HeartbeatCollector),
        (CheckpointTsMessage, 17, T::MaintainerManager),
        (BlockStatusRequest, 18, T::MaintainerManager),
        (MergeDispatcherRequest, 22, T::HeartbeatCollector),
        (CoordinatorBootstrapRequest, 24, T::MaintainerManager),
        (CoordinatorBootstrapResponse, 25, T::Coordinator),
        (AddMaintainerRequest, 26, T::MaintainerManager),
        (RemoveMaintainerRequest, 27, T::MaintainerManager),
        (MaintainerHeartbeat, 28, T::Coordinator),
        (MaintainerBootstrapRequest, 29, T::DispatcherManagerManager),
        (MaintainerBootstrapResponse, 30, T::MaintainerManager),
        (MaintainerPostBootstrapRequest, 31, T::DispatcherManagerManager),
        (MaintainerPostBootstrapResponse, 32, T::MaintainerManager),
        (MaintainerCloseRequest, 33, T::DispatcherManagerManager),
        (MaintainerCloseResponse, 34, T::Maintainer),
        (NodeHeartbeat, 42, T::Coordinator),
        (SetNodeLivenessRequest, 43, T::MaintainerManager),
        (SetNodeLivenessResponse, 44, T::Coordinator),
        (SetDispatcherDrainTargetRequest, 45, T::MaintainerManager),
    ]
};

fn row(kind: MessageKind) -> (MessageKind, i32, Topic) {
    // Every kind has a row (a test checks it); the fallback only keeps this total.
    TABLE.iter().copied().find(|r| r.0 == kind).unwrap_or((kind, 0, Topic::MaintainerManager))
}

/// The type number a frame of this kind carries.
pub fn io_type(kind: MessageKind) -> i32 {
    row(kind).1
}

/// The topic a frame of this kind is sent on. `CheckpointTsMessage` is the coordinator's, to a
/// maintainer manager; a maintainer passes the checkpoint to its own node's core in process.
pub fn topic(kind: MessageKind) -> Topic {
    row(kind).2
}

/// The kind of a frame's type number; `None` for the handshake and for types we do not handle.
pub fn kind_of_io_type(io_type: i32) -> Option<MessageKind> {
    TABLE.iter().find(|r| r.1 == io_type).map(|r| r.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_distinct_type_number() {
        for kind in MessageKind::ALL {
            assert_eq!(TABLE.iter().filter(|r| r.0 == kind).count(), 1, "{kind}");
            assert_eq!(kind_of_io_type(io_type(kind)), Some(kind));
        }
        assert_eq!(TABLE.len(), MessageKind::ALL.len());
        assert_eq!(kind_of_io_type(HANDSHAKE_IO_TYPE), None);
        assert_eq!(kind_of_io_type(0), None);
        assert_eq!(kind_of_io_type(-7), None);
    }

    #[test]
    fn topics_follow_the_receiver() {
        use crate::messages::Receiver;
        for kind in MessageKind::ALL {
            let t = topic(kind);
            let ok = match kind.receiver() {
                Receiver::Coordinator => t == Topic::Coordinator,
                Receiver::Manager => t == Topic::MaintainerManager,
                Receiver::Maintainer => matches!(t, Topic::MaintainerManager | Topic::Maintainer),
                Receiver::Node => matches!(t, Topic::HeartbeatCollector | Topic::DispatcherManagerManager),
            };
            assert!(ok, "{kind} on {t}");
            assert_eq!(t.name().parse::<Topic>(), Ok(t));
        }
    }
}
