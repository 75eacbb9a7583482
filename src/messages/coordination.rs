//! Messages between the coordinator and the maintainer manager of every node: where each
//! changefeed's maintainer runs, at which epoch, and how each node is doing.
//!
//! These only travel between our own processes in cluster mode, where the reference's epoch 0
//! ("the sender predates epochs") has no use: the conversion in `crate::wire` refuses a zero
//! maintainer epoch, node epoch or coordinator version, so a value of these types always carries a
//! real one.

use super::{CheckpointTsMessage, ComponentState, MessageKind, RunningError};
use crate::ids::{ChangefeedId, Epoch, NodeId, Ts};

/// One lifetime of a node process: fixed at start, never 0. Commands aimed at a previous lifetime
/// (an older node epoch) are refused, so a restarted node under the same id is a new member.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct NodeEpoch(pub u64);

/// The elected coordinator's version: the create revision of its election key in etcd. A maintainer
/// manager follows the coordinator with the highest version it has seen and ignores the others.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct CoordinatorVersion(pub i64);

/// A node's liveness as the node itself applies it. It only moves forward, one step at a time.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum NodeLiveness {
    /// Serving: campaigns for coordinator, accepts maintainers, may receive moves (wire 0).
    Alive,
    /// Being emptied: accepts maintainers still in flight, but is chosen for nothing new (wire 1).
    Draining,
    /// About to exit: accepts no new maintainer (wire 2).
    Stopping,
}

impl NodeLiveness {
    /// The wire value.
    pub fn as_i32(self) -> i32 {
        match self {
            NodeLiveness::Alive => 0,
            NodeLiveness::Draining => 1,
            NodeLiveness::Stopping => 2,
        }
    }

    /// The liveness for a wire value, `None` for any other value.
    pub fn from_i32(v: i32) -> Option<Self> {
        match v {
            0 => Some(NodeLiveness::Alive),
            1 => Some(NodeLiveness::Draining),
            2 => Some(NodeLiveness::Stopping),
            _ => None,
        }
    }

    /// Whether `target` is the one step forward from here (the only change a node applies).
    pub fn steps_to(self, target: NodeLiveness) -> bool {
        target.as_i32() == self.as_i32() + 1
    }

    /// Whether a node in this state takes a new maintainer.
    pub fn accepts_maintainers(self) -> bool {
        self != NodeLiveness::Stopping
    }

    /// Whether the coordinator may place anything on a node in this state.
    pub fn schedulable(self) -> bool {
        self == NodeLiveness::Alive
    }
}

/// The node whose dispatchers every maintainer should move away, in one drain session.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct DrainTarget {
    /// The node being drained.
    pub node: NodeId,
    /// The drain session's epoch.
    pub epoch: u64,
}

/// `NodeHeartbeat`: a maintainer manager's periodic report of its node to the coordinator.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NodeHeartbeat {
    /// The liveness the node applies.
    pub liveness: NodeLiveness,
    /// The node's lifetime.
    pub node_epoch: NodeEpoch,
    /// The drain target the node has acknowledged, if any.
    pub drain_target: Option<DrainTarget>,
}

/// `SetNodeLivenessRequest`: the coordinator asks a node to move its liveness forward.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SetNodeLiveness {
    /// The liveness asked for.
    pub target: NodeLiveness,
    /// The node lifetime the request is for.
    pub node_epoch: NodeEpoch,
}

/// `SetNodeLivenessResponse`: the liveness the node applies after a request, whatever was asked.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NodeLivenessApplied {
    /// The liveness now applied.
    pub applied: NodeLiveness,
    /// The node's lifetime.
    pub node_epoch: NodeEpoch,
}

/// `SetDispatcherDrainTargetRequest`: the drain target every maintainer should work on; `None`
/// (an empty node id on the wire) clears it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SetDrainTarget {
    /// The target, or none.
    pub target: Option<DrainTarget>,
}

/// `DrainProgress`: how far one maintainer is in moving dispatchers off the drain target.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DrainProgress {
    /// The target it works on.
    pub target: DrainTarget,
    /// Its dispatchers still on the target.
    pub dispatchers: u32,
    /// Its moves off the target in flight.
    pub moves_in_flight: u32,
}

/// `MaintainerStatus`: one maintainer as its node reports it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MaintainerStatus {
    /// The changefeed.
    pub changefeed: ChangefeedId,
    /// The changefeed state the maintainer sees (`normal`, `warning`, `failed`, …); free-form.
    pub feed_state: String,
    /// `Working` while it runs; anything else once it stopped.
    pub state: ComponentState,
    /// The changefeed checkpoint it computed.
    pub checkpoint_ts: Ts,
    /// Errors it reports.
    pub errors: Vec<RunningError>,
    /// Whether its own bootstrap (of the dispatcher managers) finished.
    pub bootstrap_done: bool,
    /// The last commit ts known to be written downstream.
    pub last_synced_ts: Ts,
    /// Its drain progress, if a drain is on.
    pub drain: Option<DrainProgress>,
    /// The epoch it runs at.
    pub epoch: Epoch,
}

impl MaintainerStatus {
    /// Whether the maintainer runs (its state is `Working`).
    pub fn working(&self) -> bool {
        self.state == ComponentState::Working
    }
}

/// `MaintainerHeartbeat`: the maintainers a node runs whose status changed or is due.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct MaintainerHeartbeat {
    /// One status per maintainer.
    pub statuses: Vec<MaintainerStatus>,
}

/// `CoordinatorBootstrapRequest`: a newly elected coordinator asks a node what it runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CoordinatorBootstrapRequest {
    /// The coordinator's version.
    pub version: CoordinatorVersion,
}

/// `CoordinatorBootstrapResponse`: a node's maintainers and drain state.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct CoordinatorBootstrapResponse {
    /// Every maintainer the node runs.
    pub statuses: Vec<MaintainerStatus>,
    /// 0: a node without the drain protocol; 1: the current one.
    pub drain_protocol_version: u32,
    /// The drain target the node has, if any.
    pub drain_target: Option<DrainTarget>,
}

/// `AddMaintainerRequest`: start (or adopt) a changefeed's maintainer at an epoch the coordinator
/// persisted first.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AddMaintainer {
    /// The changefeed.
    pub changefeed: ChangefeedId,
    /// The changefeed's definition (opaque here; the reference puts its JSON info).
    pub config: Vec<u8>,
    /// The checkpoint to start from; never 0.
    pub checkpoint_ts: Ts,
    /// Whether the changefeed was just created (nothing to bootstrap from).
    pub is_new: bool,
    /// The keyspace.
    pub keyspace_id: u32,
    /// The new maintainer's epoch.
    pub epoch: Epoch,
}

/// `RemoveMaintainerRequest`: stop a changefeed's maintainer on a node.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RemoveMaintainer {
    /// The changefeed.
    pub changefeed: ChangefeedId,
    /// Also close the changefeed's dispatchers on every node (pause, remove); without it only the
    /// maintainer stops (a maintainer move).
    pub cascade: bool,
    /// The changefeed is being removed for good.
    pub removed: bool,
    /// The keyspace.
    pub keyspace_id: u32,
    /// The epoch of the maintainer to stop; any other is left alone.
    pub epoch: Epoch,
}

/// A message from the coordinator that a node's maintainer manager handles.
#[derive(Clone, PartialEq, Debug)]
pub enum ToManager {
    /// A new coordinator's bootstrap.
    Bootstrap(CoordinatorBootstrapRequest),
    /// Start a maintainer.
    AddMaintainer(AddMaintainer),
    /// Stop a maintainer.
    RemoveMaintainer(RemoveMaintainer),
    /// Move the node's liveness forward.
    SetLiveness(SetNodeLiveness),
    /// Set or clear the drain target.
    SetDrainTarget(SetDrainTarget),
    /// The persisted checkpoint of a changefeed.
    Checkpoint(CheckpointTsMessage),
}

impl ToManager {
    /// The message's kind.
    pub fn kind(&self) -> MessageKind {
        match self {
            ToManager::Bootstrap(_) => MessageKind::CoordinatorBootstrapRequest,
            ToManager::AddMaintainer(_) => MessageKind::AddMaintainerRequest,
            ToManager::RemoveMaintainer(_) => MessageKind::RemoveMaintainerRequest,
            ToManager::SetLiveness(_) => MessageKind::SetNodeLivenessRequest,
            ToManager::SetDrainTarget(_) => MessageKind::SetDispatcherDrainTargetRequest,
            ToManager::Checkpoint(_) => MessageKind::CheckpointTsMessage,
        }
    }
}

/// A message from a node's maintainer manager that the coordinator handles.
#[derive(Clone, PartialEq, Debug)]
pub enum ToCoordinator {
    /// The answer to a coordinator bootstrap.
    Bootstrap(CoordinatorBootstrapResponse),
    /// Maintainer statuses.
    Maintainers(MaintainerHeartbeat),
    /// The node's own report.
    Node(NodeHeartbeat),
    /// The answer to a liveness request.
    Liveness(NodeLivenessApplied),
}

impl ToCoordinator {
    /// The message's kind.
    pub fn kind(&self) -> MessageKind {
        match self {
            ToCoordinator::Bootstrap(_) => MessageKind::CoordinatorBootstrapResponse,
            ToCoordinator::Maintainers(_) => MessageKind::MaintainerHeartbeat,
            ToCoordinator::Node(_) => MessageKind::NodeHeartbeat,
            ToCoordinator::Liveness(_) => MessageKind::SetNodeLivenessResponse,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_steps_forward_one_state_at_a_time() {
        use NodeLiveness::*;
        for from in [Alive, Draining, Stopping] {
            for to in [Alive, Draining, Stopping] {
                let expected = matches!((from, to), (Alive, Draining) | (Draining, Stopping));
                assert_eq!(from.steps_to(to), expected, "{from:?} -> {to:?}");
            }
            assert_eq!(NodeLiveness::from_i32(from.as_i32()), Some(from));
        }
        assert_eq!(NodeLiveness::from_i32(3), None);
        assert_eq!(NodeLiveness::from_i32(-1), None);
        assert!(Draining.accepts_maintainers() && !Stopping.accepts_maintainers());
        assert!(Alive.schedulable() && !Draining.schedulable());
    }
}
