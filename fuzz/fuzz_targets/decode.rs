//! Every top-level message: decoding arbitrary bytes never panics, the validated conversion never
//! panics, and decode → encode → decode is stable (binary and JSON).
#![no_main]

use dispatcher_core::messages::*;
use dispatcher_core::wire::{self, pb};
use libfuzzer_sys::fuzz_target;
use prost::Message;

const TOP_LEVEL: [&str; 27] = [
    "ScheduleDispatcherRequest",
    "MergeDispatcherRequest",
    "Heartbeat",
    "HeartBeatResponse",
    "BlockStatusRequest",
    "CheckpointTsMessage",
    "RedoMetaMessage",
    "RedoResolvedTsForwardMessage",
    "RedoResolvedTsProgressMessage",
    "MaintainerBootstrapRequest",
    "MaintainerBootstrapResponse",
    "MaintainerPostBootstrapRequest",
    "MaintainerPostBootstrapResponse",
    "MaintainerCloseRequest",
    "MaintainerCloseResponse",
    // Coordinator level: also through the typed decoders of the maintainer manager and the coordinator.
    "NodeHeartbeat",
    "SetNodeLivenessRequest",
    "SetNodeLivenessResponse",
    "SetDispatcherDrainTargetRequest",
    "MaintainerHeartbeat",
    "CoordinatorBootstrapRequest",
    "CoordinatorBootstrapResponse",
    "AddMaintainerRequest",
    "RemoveMaintainerRequest",
    "LogCoordinatorResolvedTsRequest",
    "LogCoordinatorResolvedTsResponse",
    "DispatcherSetChecksumUpdateRequest",
];

/// Typed decode must be stable: what we encode decodes to the same value.
fn stable<M: Message + Default + PartialEq + std::fmt::Debug>(bytes: &[u8]) -> Option<M> {
    let first = M::decode(bytes).ok()?;
    let again = M::decode(first.encode_to_vec().as_slice()).expect("re-encoded message decodes");
    // Floats: NaN payloads compare unequal; compare the encodings instead of the values.
    assert_eq!(first.encode_to_vec(), again.encode_to_vec());
    Some(first)
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let name = TOP_LEVEL[usize::from(selector) % TOP_LEVEL.len()];

    if let Ok(json) = wire::decode_to_json(name, bytes) {
        let bytes2 = wire::encode_from_json(name, &json).expect("canonical JSON re-encodes");
        let json2 = wire::decode_to_json(name, &bytes2).expect("re-encoded bytes decode");
        assert_eq!(json, json2);
    }

    // The coordination kinds: what the typed decoder accepts re-encodes to the same value.
    if let Ok(kind) = name.parse::<MessageKind>() {
        match kind.receiver() {
            Receiver::Manager => {
                if let Ok(d) = wire::decode_to_manager(kind, bytes) {
                    let (kind2, bytes2) = wire::encode_to_manager(&d);
                    assert_eq!(kind2, kind);
                    assert_eq!(wire::decode_to_manager(kind, &bytes2).as_ref(), Ok(&d));
                }
            }
            Receiver::Coordinator => {
                if let Ok(d) = wire::decode_to_coordinator(kind, bytes) {
                    let (kind2, bytes2) = wire::encode_to_coordinator(&d);
                    assert_eq!(kind2, kind);
                    assert_eq!(wire::decode_to_coordinator(kind, &bytes2).as_ref(), Ok(&d));
                }
            }
            Receiver::Node | Receiver::Maintainer => {}
        }
    }

    match name {
        "ScheduleDispatcherRequest" => {
            if let Some(m) = stable::<pb::ScheduleDispatcherRequest>(bytes) {
                if let Ok(d) = ScheduleRequest::try_from(&m) {
                    let back = pb::ScheduleDispatcherRequest::from(&d);
                    assert_eq!(ScheduleRequest::try_from(&back).as_ref(), Ok(&d));
                }
            }
        }
        "MergeDispatcherRequest" => {
            if let Some(m) = stable::<pb::MergeDispatcherRequest>(bytes) {
                if let Ok(d) = MergeRequest::try_from(&m) {
                    assert_eq!(MergeRequest::try_from(&pb::MergeDispatcherRequest::from(&d)).as_ref(), Ok(&d));
                }
            }
        }
        "MaintainerBootstrapRequest" => {
            if let Some(m) = stable::<pb::MaintainerBootstrapRequest>(bytes) {
                let _ = BootstrapRequest::try_from(&m);
            }
        }
        "MaintainerBootstrapResponse" => {
            if let Some(m) = stable::<pb::MaintainerBootstrapResponse>(bytes) {
                if let Ok(d) = BootstrapResponse::try_from(&m) {
                    let back = pb::MaintainerBootstrapResponse::from(&d);
                    assert_eq!(BootstrapResponse::try_from(&back).map(|r| r.spans.len()), Ok(d.spans.len()));
                }
            }
        }
        "MaintainerPostBootstrapRequest" => {
            if let Some(m) = stable::<pb::MaintainerPostBootstrapRequest>(bytes) {
                let _ = PostBootstrapRequest::try_from(&m);
            }
        }
        "MaintainerCloseRequest" => {
            if let Some(m) = stable::<pb::MaintainerCloseRequest>(bytes) {
                let _ = CloseRequest::try_from(&m);
            }
        }
        "Heartbeat" => {
            if let Some(m) = stable::<pb::HeartBeatRequest>(bytes) {
                for s in &m.statuses {
                    let _ = DispatcherStatus::try_from(s);
                }
                if let Ok(d) = Heartbeat::try_from(&m) {
                    let back = pb::HeartBeatRequest::from(&d);
                    // Floats: compare the re-encoded bytes (NaN payloads compare unequal).
                    let again = Heartbeat::try_from(&back).expect("a converted request converts back");
                    assert_eq!(pb::HeartBeatRequest::from(&again).encode_to_vec(), back.encode_to_vec());
                }
            }
        }
        "HeartBeatResponse" => {
            if let Some(m) = stable::<pb::HeartBeatResponse>(bytes) {
                if let Ok(d) = HeartBeatResponse::try_from(&m) {
                    assert_eq!(HeartBeatResponse::try_from(&pb::HeartBeatResponse::from(&d)).as_ref(), Ok(&d));
                }
            }
        }
        "BlockStatusRequest" => {
            if let Some(m) = stable::<pb::BlockStatusRequest>(bytes) {
                if let Ok(d) = BlockStatusRequest::try_from(&m) {
                    assert_eq!(BlockStatusRequest::try_from(&pb::BlockStatusRequest::from(&d)).as_ref(), Ok(&d));
                }
            }
        }
        "CheckpointTsMessage" => {
            if let Some(m) = stable::<pb::CheckpointTsMessage>(bytes) {
                let _ = CheckpointTsMessage::from(&m);
            }
        }
        "RedoMetaMessage" => {
            if let Some(m) = stable::<pb::RedoMetaMessage>(bytes) {
                let _ = RedoMetaMessage::from(&m);
            }
        }
        "RedoResolvedTsForwardMessage" => {
            if let Some(m) = stable::<pb::RedoResolvedTsForwardMessage>(bytes) {
                let _ = RedoResolvedTsForward::from(&m);
            }
        }
        "RedoResolvedTsProgressMessage" => drop(stable::<pb::RedoResolvedTsProgressMessage>(bytes)),
        "MaintainerPostBootstrapResponse" => drop(stable::<pb::MaintainerPostBootstrapResponse>(bytes)),
        "MaintainerCloseResponse" => drop(stable::<pb::MaintainerCloseResponse>(bytes)),
        "NodeHeartbeat" => drop(stable::<pb::NodeHeartbeat>(bytes)),
        "SetNodeLivenessRequest" => drop(stable::<pb::SetNodeLivenessRequest>(bytes)),
        "SetNodeLivenessResponse" => drop(stable::<pb::SetNodeLivenessResponse>(bytes)),
        "SetDispatcherDrainTargetRequest" => drop(stable::<pb::SetDispatcherDrainTargetRequest>(bytes)),
        "MaintainerHeartbeat" => drop(stable::<pb::MaintainerHeartbeat>(bytes)),
        "CoordinatorBootstrapRequest" => drop(stable::<pb::CoordinatorBootstrapRequest>(bytes)),
        "CoordinatorBootstrapResponse" => drop(stable::<pb::CoordinatorBootstrapResponse>(bytes)),
        "AddMaintainerRequest" => drop(stable::<pb::AddMaintainerRequest>(bytes)),
        "RemoveMaintainerRequest" => drop(stable::<pb::RemoveMaintainerRequest>(bytes)),
        "LogCoordinatorResolvedTsRequest" => drop(stable::<pb::LogCoordinatorResolvedTsRequest>(bytes)),
        "LogCoordinatorResolvedTsResponse" => drop(stable::<pb::LogCoordinatorResolvedTsResponse>(bytes)),
        _ => drop(stable::<pb::DispatcherSetChecksumUpdateRequest>(bytes)),
    }
});
