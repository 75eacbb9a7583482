//! The coordination messages (coordinator ⇄ maintainer managers). Validated like the rest of
//! [`super`], and stricter in one way: these only travel between our own processes, so a zero
//! maintainer epoch, node epoch or coordinator version, or an add without a start checkpoint, is
//! refused ([`WireError::NotPositive`]) rather than read as the reference's compatibility value.

use super::*;
use crate::ids::NodeId;
use crate::messages::{
    AddMaintainer, CoordinatorBootstrapRequest, CoordinatorBootstrapResponse, CoordinatorVersion,
    DrainProgress, DrainTarget, MaintainerHeartbeat, MaintainerStatus, NodeEpoch, NodeHeartbeat,
    NodeLiveness, NodeLivenessApplied, RemoveMaintainer, SetDrainTarget, SetNodeLiveness,
};

fn positive(v: u64, message: &'static str, field: &'static str) -> Result<u64, WireError> {
    if v == 0 {
        return Err(WireError::NotPositive { message, field });
    }
    Ok(v)
}

fn epoch(v: u64, message: &'static str) -> Result<Epoch, WireError> {
    positive(v, message, "maintainer_epoch").map(Epoch)
}

fn node_epoch(v: u64, message: &'static str) -> Result<NodeEpoch, WireError> {
    positive(v, message, "node_epoch").map(NodeEpoch)
}

fn liveness(v: i32, message: &'static str, field: &'static str) -> Result<NodeLiveness, WireError> {
    NodeLiveness::from_i32(v).ok_or(WireError::Enum { message, field, value: v })
}

fn required_changefeed(
    v: Option<&pb::ChangefeedId>,
    message: &'static str,
    field: &'static str,
) -> Result<ChangefeedId, WireError> {
    required(v, message, field).map(|c| changefeed(Some(c)))
}

/// A drain target from its two wire fields: an empty node id means none.
fn drain_target(node: &str, epoch: u64) -> Option<DrainTarget> {
    (!node.is_empty()).then(|| DrainTarget { node: NodeId::new(node), epoch })
}

fn pb_drain_target(v: Option<&DrainTarget>) -> (String, u64) {
    v.map_or((String::new(), 0), |t| (t.node.as_str().to_owned(), t.epoch))
}

impl TryFrom<&pb::NodeHeartbeat> for NodeHeartbeat {
    type Error = WireError;

    fn try_from(v: &pb::NodeHeartbeat) -> Result<Self, WireError> {
        const M: &str = "NodeHeartbeat";
        Ok(NodeHeartbeat {
            liveness: liveness(v.liveness, M, "liveness")?,
            node_epoch: node_epoch(v.node_epoch, M)?,
            drain_target: drain_target(&v.dispatcher_drain_target_node_id, v.dispatcher_drain_target_epoch),
        })
    }
}

impl From<&NodeHeartbeat> for pb::NodeHeartbeat {
    fn from(v: &NodeHeartbeat) -> Self {
        let (node, epoch) = pb_drain_target(v.drain_target.as_ref());
        pb::NodeHeartbeat {
            liveness: v.liveness.as_i32(),
            node_epoch: v.node_epoch.0,
            dispatcher_drain_target_node_id: node,
            dispatcher_drain_target_epoch: epoch,
        }
    }
}

impl TryFrom<&pb::SetNodeLivenessRequest> for SetNodeLiveness {
    type Error = WireError;

    fn try_from(v: &pb::SetNodeLivenessRequest) -> Result<Self, WireError> {
        const M: &str = "SetNodeLivenessRequest";
        Ok(SetNodeLiveness {
            target: liveness(v.target, M, "target")?,
            node_epoch: node_epoch(v.node_epoch, M)?,
        })
    }
}

impl From<&SetNodeLiveness> for pb::SetNodeLivenessRequest {
    fn from(v: &SetNodeLiveness) -> Self {
        pb::SetNodeLivenessRequest { target: v.target.as_i32(), node_epoch: v.node_epoch.0 }
    }
}

impl TryFrom<&pb::SetNodeLivenessResponse> for NodeLivenessApplied {
    type Error = WireError;

    fn try_from(v: &pb::SetNodeLivenessResponse) -> Result<Self, WireError> {
        const M: &str = "SetNodeLivenessResponse";
        Ok(NodeLivenessApplied {
            applied: liveness(v.applied, M, "applied")?,
            node_epoch: node_epoch(v.node_epoch, M)?,
        })
    }
}

impl From<&NodeLivenessApplied> for pb::SetNodeLivenessResponse {
    fn from(v: &NodeLivenessApplied) -> Self {
        pb::SetNodeLivenessResponse { applied: v.applied.as_i32(), node_epoch: v.node_epoch.0 }
    }
}

impl From<&pb::SetDispatcherDrainTargetRequest> for SetDrainTarget {
    fn from(v: &pb::SetDispatcherDrainTargetRequest) -> Self {
        SetDrainTarget { target: drain_target(&v.target_node_id, v.target_epoch) }
    }
}

impl From<&SetDrainTarget> for pb::SetDispatcherDrainTargetRequest {
    fn from(v: &SetDrainTarget) -> Self {
        let (target_node_id, target_epoch) = pb_drain_target(v.target.as_ref());
        pb::SetDispatcherDrainTargetRequest { target_node_id, target_epoch }
    }
}

/// Drain progress without a target node says nothing; it reads as none.
fn drain_progress(v: Option<&pb::DrainProgress>) -> Option<DrainProgress> {
    let v = v?;
    Some(DrainProgress {
        target: drain_target(&v.target_node_id, v.target_epoch)?,
        dispatchers: v.target_dispatcher_count,
        moves_in_flight: v.target_inflight_drain_move_count,
    })
}

impl From<&DrainProgress> for pb::DrainProgress {
    fn from(v: &DrainProgress) -> Self {
        pb::DrainProgress {
            target_node_id: v.target.node.as_str().to_owned(),
            target_epoch: v.target.epoch,
            target_dispatcher_count: v.dispatchers,
            target_inflight_drain_move_count: v.moves_in_flight,
        }
    }
}

impl TryFrom<&pb::MaintainerStatus> for MaintainerStatus {
    type Error = WireError;

    fn try_from(v: &pb::MaintainerStatus) -> Result<Self, WireError> {
        const M: &str = "MaintainerStatus";
        Ok(MaintainerStatus {
            changefeed: required_changefeed(v.changefeed_id.as_ref(), M, "changefeedID")?,
            feed_state: v.feed_state.clone(),
            state: ComponentState::from_i32(v.state).ok_or(WireError::Enum {
                message: M,
                field: "state",
                value: v.state,
            })?,
            checkpoint_ts: v.checkpoint_ts,
            errors: v.err.iter().map(RunningError::from).collect(),
            bootstrap_done: v.bootstrap_done,
            last_synced_ts: v.last_synced_ts,
            drain: drain_progress(v.drain_progress.as_ref()),
            epoch: epoch(v.maintainer_epoch, M)?,
        })
    }
}

impl From<&MaintainerStatus> for pb::MaintainerStatus {
    fn from(v: &MaintainerStatus) -> Self {
        pb::MaintainerStatus {
            changefeed_id: pb_changefeed(&v.changefeed),
            feed_state: v.feed_state.clone(),
            state: v.state.as_i32(),
            checkpoint_ts: v.checkpoint_ts,
            err: v.errors.iter().map(pb::RunningError::from).collect(),
            bootstrap_done: v.bootstrap_done,
            last_synced_ts: v.last_synced_ts,
            drain_progress: v.drain.as_ref().map(pb::DrainProgress::from),
            maintainer_epoch: v.epoch.0,
        }
    }
}

fn statuses(v: &[pb::MaintainerStatus]) -> Result<Vec<MaintainerStatus>, WireError> {
    v.iter().map(MaintainerStatus::try_from).collect()
}

impl TryFrom<&pb::MaintainerHeartbeat> for MaintainerHeartbeat {
    type Error = WireError;

    fn try_from(v: &pb::MaintainerHeartbeat) -> Result<Self, WireError> {
        Ok(MaintainerHeartbeat { statuses: statuses(&v.statuses)? })
    }
}

impl From<&MaintainerHeartbeat> for pb::MaintainerHeartbeat {
    fn from(v: &MaintainerHeartbeat) -> Self {
        pb::MaintainerHeartbeat { statuses: v.statuses.iter().map(pb::MaintainerStatus::from).collect() }
    }
}

impl TryFrom<&pb::CoordinatorBootstrapRequest> for CoordinatorBootstrapRequest {
    type Error = WireError;

    fn try_from(v: &pb::CoordinatorBootstrapRequest) -> Result<Self, WireError> {
        if v.version <= 0 {
            return Err(WireError::NotPositive { message: "CoordinatorBootstrapRequest", field: "version" });
        }
        Ok(CoordinatorBootstrapRequest { version: CoordinatorVersion(v.version) })
    }
}

impl From<&CoordinatorBootstrapRequest> for pb::CoordinatorBootstrapRequest {
    fn from(v: &CoordinatorBootstrapRequest) -> Self {
        pb::CoordinatorBootstrapRequest { version: v.version.0 }
    }
}

impl TryFrom<&pb::CoordinatorBootstrapResponse> for CoordinatorBootstrapResponse {
    type Error = WireError;

    fn try_from(v: &pb::CoordinatorBootstrapResponse) -> Result<Self, WireError> {
        Ok(CoordinatorBootstrapResponse {
            statuses: statuses(&v.statuses)?,
            drain_protocol_version: v.drain_protocol_version,
            drain_target: drain_target(&v.dispatcher_drain_target_node_id, v.dispatcher_drain_target_epoch),
        })
    }
}

impl From<&CoordinatorBootstrapResponse> for pb::CoordinatorBootstrapResponse {
    fn from(v: &CoordinatorBootstrapResponse) -> Self {
        let (node, epoch) = pb_drain_target(v.drain_target.as_ref());
        pb::CoordinatorBootstrapResponse {
            statuses: v.statuses.iter().map(pb::MaintainerStatus::from).collect(),
            drain_protocol_version: v.drain_protocol_version,
            dispatcher_drain_target_node_id: node,
            dispatcher_drain_target_epoch: epoch,
        }
    }
}

impl TryFrom<&pb::AddMaintainerRequest> for AddMaintainer {
    type Error = WireError;

    fn try_from(v: &pb::AddMaintainerRequest) -> Result<Self, WireError> {
        const M: &str = "AddMaintainerRequest";
        Ok(AddMaintainer {
            changefeed: required_changefeed(v.id.as_ref(), M, "id")?,
            config: v.config.clone(),
            checkpoint_ts: positive(v.checkpoint_ts, M, "checkpoint_ts")?,
            is_new: v.is_new_changefeed,
            keyspace_id: v.keyspace_id,
            epoch: epoch(v.maintainer_epoch, M)?,
        })
    }
}

impl From<&AddMaintainer> for pb::AddMaintainerRequest {
    fn from(v: &AddMaintainer) -> Self {
        pb::AddMaintainerRequest {
            id: pb_changefeed(&v.changefeed),
            config: v.config.clone(),
            checkpoint_ts: v.checkpoint_ts,
            is_new_changefeed: v.is_new,
            keyspace_id: v.keyspace_id,
            maintainer_epoch: v.epoch.0,
        }
    }
}

impl TryFrom<&pb::RemoveMaintainerRequest> for RemoveMaintainer {
    type Error = WireError;

    fn try_from(v: &pb::RemoveMaintainerRequest) -> Result<Self, WireError> {
        const M: &str = "RemoveMaintainerRequest";
        Ok(RemoveMaintainer {
            changefeed: required_changefeed(v.id.as_ref(), M, "id")?,
            cascade: v.cascade,
            removed: v.removed,
            keyspace_id: v.keyspace_id,
            epoch: epoch(v.maintainer_epoch, M)?,
        })
    }
}

impl From<&RemoveMaintainer> for pb::RemoveMaintainerRequest {
    fn from(v: &RemoveMaintainer) -> Self {
        pb::RemoveMaintainerRequest {
            id: pb_changefeed(&v.changefeed),
            cascade: v.cascade,
            removed: v.removed,
            keyspace_id: v.keyspace_id,
            maintainer_epoch: v.epoch.0,
        }
    }
}
