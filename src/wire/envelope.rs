//! The one way in and out: bytes of a given [`MessageKind`] decoded once into the typed message
//! a core handles ([`ToNode`], [`ToMaintainer`]), and typed messages encoded with their kind.
//! The simulator, the fuzz targets and any embedder's transport use these and nothing else.

use prost::Message;

use crate::messages::{MessageKind, ToMaintainer, ToNode};
use crate::wire::{pb, WireError};

fn decode<P, D>(kind: MessageKind, bytes: &[u8]) -> Result<D, WireError>
where
    P: Message + Default,
    for<'a> D: TryFrom<&'a P, Error = WireError>,
{
    let pb = P::decode(bytes).map_err(|_| WireError::Undecodable { message: kind.name() })?;
    D::try_from(&pb)
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
        _ => return Err(WireError::NotHandled { message: kind.name(), receiver: "node" }),
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
        _ => return Err(WireError::NotHandled { message: kind.name(), receiver: "maintainer" }),
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
