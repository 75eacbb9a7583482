//! The one way in and out: bytes of a given [`MessageKind`] decoded once into the typed message
//! a core handles ([`ToNode`], [`ToMaintainer`], [`ToManager`], [`ToCoordinator`]), and typed
//! messages encoded with their kind.
//! The simulator, the fuzz targets and any embedder's transport use these and nothing else.

use prost::Message;

use crate::messages::{
    CheckpointTsMessage, MessageKind, Receiver, SetDrainTarget, ToCoordinator, ToMaintainer, ToManager,
    ToNode,
};
use crate::wire::{pb, WireError};

fn decode<P, D>(kind: MessageKind, bytes: &[u8]) -> Result<D, WireError>
where
    P: Message + Default,
    for<'a> D: TryFrom<&'a P, Error = WireError>,
{
    let pb = P::decode(bytes).map_err(|_| WireError::Undecodable { message: kind.name() })?;
    D::try_from(&pb)
}

fn not_handled(kind: MessageKind, receiver: Receiver) -> WireError {
    WireError::NotHandled { message: kind.name(), receiver: receiver.name() }
}

/// Decodes and validates a message for the node core.
///
/// ```
/// use dispatcher_core::messages::MessageKind;
/// use dispatcher_core::wire::{decode_to_node, WireError};
///
/// let refused = decode_to_node(MessageKind::HeartBeatRequest, &[]).unwrap_err();
/// assert!(matches!(refused, WireError::NotHandled { receiver: "node", .. }));
/// ```
pub fn decode_to_node(kind: MessageKind, bytes: &[u8]) -> Result<ToNode, WireError> {
    Ok(match kind {
        MessageKind::ScheduleDispatcherRequest => {
            ToNode::Schedule(decode::<pb::ScheduleDispatcherRequest, _>(kind, bytes)?)
        }
        MessageKind::MergeDispatcherRequest => {
            ToNode::Merge(decode::<pb::MergeDispatcherRequest, _>(kind, bytes)?)
        }
        MessageKind::MaintainerBootstrapRequest => {
            ToNode::Bootstrap(decode::<pb::MaintainerBootstrapRequest, _>(kind, bytes)?)
        }
        MessageKind::MaintainerPostBootstrapRequest => {
            ToNode::PostBootstrap(decode::<pb::MaintainerPostBootstrapRequest, _>(kind, bytes)?)
        }
        MessageKind::MaintainerCloseRequest => {
            ToNode::Close(decode::<pb::MaintainerCloseRequest, _>(kind, bytes)?)
        }
        MessageKind::HeartBeatResponse => ToNode::Barrier(decode::<pb::HeartBeatResponse, _>(kind, bytes)?),
        _ => return Err(not_handled(kind, Receiver::Node)),
    })
}

/// Decodes and validates a message for the maintainer core.
pub fn decode_to_maintainer(kind: MessageKind, bytes: &[u8]) -> Result<ToMaintainer, WireError> {
    Ok(match kind {
        MessageKind::HeartBeatRequest => {
            ToMaintainer::Heartbeat(decode::<pb::HeartBeatRequest, _>(kind, bytes)?)
        }
        MessageKind::MaintainerBootstrapResponse => {
            ToMaintainer::Bootstrap(decode::<pb::MaintainerBootstrapResponse, _>(kind, bytes)?)
        }
        MessageKind::MaintainerPostBootstrapResponse => {
            ToMaintainer::PostBootstrap(decode::<pb::MaintainerPostBootstrapResponse, _>(kind, bytes)?)
        }
        MessageKind::MaintainerCloseResponse => {
            ToMaintainer::Close(decode::<pb::MaintainerCloseResponse, _>(kind, bytes)?)
        }
        MessageKind::BlockStatusRequest => {
            ToMaintainer::BlockStatus(decode::<pb::BlockStatusRequest, _>(kind, bytes)?)
        }
        _ => return Err(not_handled(kind, Receiver::Maintainer)),
    })
}

/// Decodes and validates a message from the coordinator for a node's maintainer manager.
///
/// ```
/// use dispatcher_core::messages::MessageKind;
/// use dispatcher_core::wire::{decode_to_manager, WireError};
///
/// // Version 0 is the reference's "no coordinator yet"; between our processes it is refused.
/// let refused = decode_to_manager(MessageKind::CoordinatorBootstrapRequest, &[]).unwrap_err();
/// assert!(matches!(refused, WireError::NotPositive { field: "version", .. }));
/// ```
pub fn decode_to_manager(kind: MessageKind, bytes: &[u8]) -> Result<ToManager, WireError> {
    Ok(match kind {
        MessageKind::CoordinatorBootstrapRequest => {
            ToManager::Bootstrap(decode::<pb::CoordinatorBootstrapRequest, _>(kind, bytes)?)
        }
        MessageKind::AddMaintainerRequest => {
            ToManager::AddMaintainer(decode::<pb::AddMaintainerRequest, _>(kind, bytes)?)
        }
        MessageKind::RemoveMaintainerRequest => {
            ToManager::RemoveMaintainer(decode::<pb::RemoveMaintainerRequest, _>(kind, bytes)?)
        }
        MessageKind::SetNodeLivenessRequest => {
            ToManager::SetLiveness(decode::<pb::SetNodeLivenessRequest, _>(kind, bytes)?)
        }
        MessageKind::SetDispatcherDrainTargetRequest => {
            let pb = pb::SetDispatcherDrainTargetRequest::decode(bytes)
                .map_err(|_| WireError::Undecodable { message: kind.name() })?;
            ToManager::SetDrainTarget(SetDrainTarget::from(&pb))
        }
        MessageKind::CheckpointTsMessage => {
            let pb = pb::CheckpointTsMessage::decode(bytes)
                .map_err(|_| WireError::Undecodable { message: kind.name() })?;
            ToManager::Checkpoint(CheckpointTsMessage::from(&pb))
        }
        _ => return Err(not_handled(kind, Receiver::Manager)),
    })
}

/// Decodes and validates a message from a node's maintainer manager for the coordinator.
pub fn decode_to_coordinator(kind: MessageKind, bytes: &[u8]) -> Result<ToCoordinator, WireError> {
    Ok(match kind {
        MessageKind::CoordinatorBootstrapResponse => {
            ToCoordinator::Bootstrap(decode::<pb::CoordinatorBootstrapResponse, _>(kind, bytes)?)
        }
        MessageKind::MaintainerHeartbeat => {
            ToCoordinator::Maintainers(decode::<pb::MaintainerHeartbeat, _>(kind, bytes)?)
        }
        MessageKind::NodeHeartbeat => ToCoordinator::Node(decode::<pb::NodeHeartbeat, _>(kind, bytes)?),
        MessageKind::SetNodeLivenessResponse => {
            ToCoordinator::Liveness(decode::<pb::SetNodeLivenessResponse, _>(kind, bytes)?)
        }
        _ => return Err(not_handled(kind, Receiver::Coordinator)),
    })
}

/// Encodes a message for a node, with its kind.
pub fn encode_to_node(message: &ToNode) -> (MessageKind, Vec<u8>) {
    let bytes = match message {
        ToNode::Schedule(r) => pb::ScheduleDispatcherRequest::from(r).encode_to_vec(),
        ToNode::Merge(r) => pb::MergeDispatcherRequest::from(r).encode_to_vec(),
        ToNode::Bootstrap(r) => pb::MaintainerBootstrapRequest::from(r).encode_to_vec(),
        ToNode::PostBootstrap(r) => pb::MaintainerPostBootstrapRequest::from(r).encode_to_vec(),
        ToNode::Close(r) => pb::MaintainerCloseRequest::from(r).encode_to_vec(),
        ToNode::Barrier(r) => pb::HeartBeatResponse::from(r).encode_to_vec(),
    };
    (message.kind(), bytes)
}

/// Encodes a message for a maintainer, with its kind.
pub fn encode_to_maintainer(message: &ToMaintainer) -> (MessageKind, Vec<u8>) {
    let bytes = match message {
        ToMaintainer::Heartbeat(r) => pb::HeartBeatRequest::from(r).encode_to_vec(),
        ToMaintainer::Bootstrap(r) => super::encode::bootstrap_response_to_vec(r),
        ToMaintainer::PostBootstrap(r) => pb::MaintainerPostBootstrapResponse::from(r).encode_to_vec(),
        ToMaintainer::Close(r) => pb::MaintainerCloseResponse::from(r).encode_to_vec(),
        ToMaintainer::BlockStatus(r) => pb::BlockStatusRequest::from(r).encode_to_vec(),
    };
    (message.kind(), bytes)
}

/// Encodes a message for a maintainer manager, with its kind.
pub fn encode_to_manager(message: &ToManager) -> (MessageKind, Vec<u8>) {
    let bytes = match message {
        ToManager::Bootstrap(r) => pb::CoordinatorBootstrapRequest::from(r).encode_to_vec(),
        ToManager::AddMaintainer(r) => pb::AddMaintainerRequest::from(r).encode_to_vec(),
        ToManager::RemoveMaintainer(r) => pb::RemoveMaintainerRequest::from(r).encode_to_vec(),
        ToManager::SetLiveness(r) => pb::SetNodeLivenessRequest::from(r).encode_to_vec(),
        ToManager::SetDrainTarget(r) => pb::SetDispatcherDrainTargetRequest::from(r).encode_to_vec(),
        ToManager::Checkpoint(r) => pb::CheckpointTsMessage::from(r).encode_to_vec(),
    };
    (message.kind(), bytes)
}

/// Encodes a message for the coordinator, with its kind.
pub fn encode_to_coordinator(message: &ToCoordinator) -> (MessageKind, Vec<u8>) {
    let bytes = match message {
        ToCoordinator::Bootstrap(r) => pb::CoordinatorBootstrapResponse::from(r).encode_to_vec(),
        ToCoordinator::Maintainers(r) => pb::MaintainerHeartbeat::from(r).encode_to_vec(),
        ToCoordinator::Node(r) => pb::NodeHeartbeat::from(r).encode_to_vec(),
        ToCoordinator::Liveness(r) => pb::SetNodeLivenessResponse::from(r).encode_to_vec(),
    };
    (message.kind(), bytes)
}
