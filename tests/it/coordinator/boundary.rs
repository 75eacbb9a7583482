//! Coordination messages through the typed boundary: `wire::decode_to_manager`,
//! `wire::decode_to_coordinator` and their encoders, and the reference transport's numbering.

use dispatcher_core::ids::{ChangefeedId, Epoch, NodeId};
use dispatcher_core::messages::*;
use dispatcher_core::wire::{
    decode_to_coordinator, decode_to_maintainer, decode_to_manager, decode_to_node, encode_to_coordinator,
    encode_to_manager, io_type, kind_of_io_type, pb, topic, Topic, WireError,
};
use prost::Message;

fn changefeed(n: u64) -> ChangefeedId {
    ChangefeedId { high: 7, low: n, name: format!("cf-{n}"), keyspace: "default".into() }
}

fn status(n: u64, epoch: u64, state: ComponentState) -> MaintainerStatus {
    MaintainerStatus {
        changefeed: changefeed(n),
        feed_state: "normal".into(),
        state,
        checkpoint_ts: 400 + n,
        errors: vec![RunningError {
            time: "t".into(),
            node: "n2".into(),
            code: "CDC:ErrSink".into(),
            message: "sink down".into(),
        }],
        bootstrap_done: n % 2 == 0,
        last_synced_ts: 390,
        drain: (n == 2).then(|| DrainProgress {
            target: DrainTarget { node: NodeId::new("n3"), epoch: 11 },
            dispatchers: 5,
            moves_in_flight: 2,
        }),
        epoch: Epoch(epoch),
    }
}

fn drain_target() -> Option<DrainTarget> {
    Some(DrainTarget { node: NodeId::new("n3"), epoch: 11 })
}

fn decoders(kind: MessageKind) -> [(Receiver, Option<WireError>); 4] {
    [
        (Receiver::Node, decode_to_node(kind, &[]).err()),
        (Receiver::Maintainer, decode_to_maintainer(kind, &[]).err()),
        (Receiver::Manager, decode_to_manager(kind, &[]).err()),
        (Receiver::Coordinator, decode_to_coordinator(kind, &[]).err()),
    ]
}

#[test]
fn each_kind_is_taken_by_its_receivers_decoder_and_refused_by_the_other_three() {
    for kind in MessageKind::ALL {
        for (receiver, error) in decoders(kind) {
            let refused = matches!(error, Some(WireError::NotHandled { .. }));
            assert_eq!(refused, receiver != kind.receiver(), "{kind} at the {}: {error:?}", receiver.name());
        }
    }
}

#[test]
fn every_message_for_a_maintainer_manager_round_trips() {
    let messages = [
        ToManager::Bootstrap(CoordinatorBootstrapRequest { version: CoordinatorVersion(42) }),
        ToManager::AddMaintainer(AddMaintainer {
            changefeed: changefeed(1),
            config: br#"{"sink-uri":"blackhole://"}"#.to_vec(),
            checkpoint_ts: 450,
            is_new: true,
            keyspace_id: 3,
            epoch: Epoch(9),
        }),
        ToManager::RemoveMaintainer(RemoveMaintainer {
            changefeed: changefeed(1),
            cascade: true,
            removed: false,
            keyspace_id: 3,
            epoch: Epoch(9),
        }),
        ToManager::SetLiveness(SetNodeLiveness { target: NodeLiveness::Draining, node_epoch: NodeEpoch(17) }),
        ToManager::SetDrainTarget(SetDrainTarget { target: drain_target() }),
        ToManager::SetDrainTarget(SetDrainTarget { target: None }),
        ToManager::Checkpoint(CheckpointTsMessage { changefeed: changefeed(2), checkpoint_ts: 470 }),
    ];
    for message in messages {
        let (kind, bytes) = encode_to_manager(&message);
        assert_eq!(kind, message.kind());
        assert_eq!(kind.receiver(), Receiver::Manager);
        assert_eq!(decode_to_manager(kind, &bytes), Ok(message));
    }
}

#[test]
fn every_message_for_the_coordinator_round_trips() {
    let messages = [
        ToCoordinator::Bootstrap(CoordinatorBootstrapResponse {
            statuses: vec![status(1, 9, ComponentState::Working), status(2, 4, ComponentState::Stopped)],
            drain_protocol_version: 1,
            drain_target: drain_target(),
        }),
        ToCoordinator::Bootstrap(CoordinatorBootstrapResponse::default()),
        ToCoordinator::Maintainers(MaintainerHeartbeat {
            statuses: vec![status(2, 9, ComponentState::Working)],
        }),
        ToCoordinator::Node(NodeHeartbeat {
            liveness: NodeLiveness::Stopping,
            node_epoch: NodeEpoch(u64::MAX),
            drain_target: drain_target(),
        }),
        ToCoordinator::Liveness(NodeLivenessApplied {
            applied: NodeLiveness::Alive,
            node_epoch: NodeEpoch(1),
        }),
    ];
    for message in messages {
        let (kind, bytes) = encode_to_coordinator(&message);
        assert_eq!(kind, message.kind());
        assert_eq!(kind.receiver(), Receiver::Coordinator);
        assert_eq!(decode_to_coordinator(kind, &bytes), Ok(message));
    }
}

/// Field numbers laid by hand from the reference's schema (cluster.md §6.1), decoded through the
/// typed decoder: what a reference coordinator sends is read as the same request here.
#[test]
fn reference_bytes_decode_to_the_same_request() {
    // AddMaintainerRequest{id = 1: {high = 1: 7, low = 2: 1}, checkpoint_ts = 3: 450,
    // is_new_changefeed = 4: true, keyspace_id = 5: 3, maintainer_epoch = 6: 9}
    let bytes = [0x0a, 0x04, 0x08, 0x07, 0x10, 0x01, 0x18, 0xc2, 0x03, 0x20, 0x01, 0x28, 0x03, 0x30, 0x09];
    let decoded = decode_to_manager(MessageKind::AddMaintainerRequest, &bytes).unwrap();
    let ToManager::AddMaintainer(add) = decoded else { panic!("{decoded:?}") };
    assert_eq!((add.changefeed.high, add.changefeed.low), (7, 1));
    assert_eq!((add.checkpoint_ts, add.is_new, add.keyspace_id, add.epoch), (450, true, 3, Epoch(9)));
    // NodeHeartbeat{liveness = 1: DRAINING, node_epoch = 2: 17, drain target = 3: "n3", 4: 11}
    let bytes = [0x08, 0x01, 0x10, 0x11, 0x1a, 0x02, b'n', b'3', 0x20, 0x0b];
    let decoded = decode_to_coordinator(MessageKind::NodeHeartbeat, &bytes).unwrap();
    assert_eq!(
        decoded,
        ToCoordinator::Node(NodeHeartbeat {
            liveness: NodeLiveness::Draining,
            node_epoch: NodeEpoch(17),
            drain_target: drain_target(),
        })
    );
    // And ours lays them out the same way.
    assert_eq!(encode_to_coordinator(&decoded).1, bytes);
}

fn refused_manager(kind: MessageKind, message: impl Message) -> WireError {
    decode_to_manager(kind, &message.encode_to_vec()).unwrap_err()
}

fn refused_coordinator(kind: MessageKind, message: impl Message) -> WireError {
    decode_to_coordinator(kind, &message.encode_to_vec()).unwrap_err()
}

fn pb_changefeed() -> Option<pb::ChangefeedId> {
    Some(pb::ChangefeedId { high: 7, low: 1, ..Default::default() })
}

#[test]
fn a_zero_epoch_or_version_is_refused_not_read_as_compatibility_mode() {
    let add = pb::AddMaintainerRequest { id: pb_changefeed(), checkpoint_ts: 450, ..Default::default() };
    assert_eq!(
        refused_manager(MessageKind::AddMaintainerRequest, add.clone()),
        WireError::NotPositive { message: "AddMaintainerRequest", field: "maintainer_epoch" }
    );
    let no_start = pb::AddMaintainerRequest { checkpoint_ts: 0, maintainer_epoch: 9, ..add };
    assert_eq!(
        refused_manager(MessageKind::AddMaintainerRequest, no_start),
        WireError::NotPositive { message: "AddMaintainerRequest", field: "checkpoint_ts" }
    );
    let remove = pb::RemoveMaintainerRequest { id: pb_changefeed(), cascade: true, ..Default::default() };
    assert_eq!(
        refused_manager(MessageKind::RemoveMaintainerRequest, remove),
        WireError::NotPositive { message: "RemoveMaintainerRequest", field: "maintainer_epoch" }
    );
    for version in [0, -5] {
        assert_eq!(
            refused_manager(
                MessageKind::CoordinatorBootstrapRequest,
                pb::CoordinatorBootstrapRequest { version }
            ),
            WireError::NotPositive { message: "CoordinatorBootstrapRequest", field: "version" }
        );
    }
    let liveness = pb::SetNodeLivenessRequest { target: 1, node_epoch: 0 };
    assert_eq!(
        refused_manager(MessageKind::SetNodeLivenessRequest, liveness),
        WireError::NotPositive { message: "SetNodeLivenessRequest", field: "node_epoch" }
    );
    assert_eq!(
        refused_coordinator(MessageKind::NodeHeartbeat, pb::NodeHeartbeat::default()),
        WireError::NotPositive { message: "NodeHeartbeat", field: "node_epoch" }
    );
    // One status without an epoch refuses the heartbeat it came in: its sender is not one of ours.
    let good = pb::MaintainerStatus::from(&status(1, 9, ComponentState::Working));
    let zero = pb::MaintainerStatus { maintainer_epoch: 0, ..good.clone() };
    let heartbeat = pb::MaintainerHeartbeat { statuses: vec![good, zero] };
    assert_eq!(
        refused_coordinator(MessageKind::MaintainerHeartbeat, heartbeat),
        WireError::NotPositive { message: "MaintainerStatus", field: "maintainer_epoch" }
    );
}

#[test]
fn malformed_coordination_messages_are_wire_errors_not_panics() {
    let no_id = pb::RemoveMaintainerRequest { maintainer_epoch: 3, ..Default::default() };
    assert_eq!(
        refused_manager(MessageKind::RemoveMaintainerRequest, no_id),
        WireError::Missing { message: "RemoveMaintainerRequest", field: "id" }
    );
    let liveness = pb::SetNodeLivenessRequest { target: 3, node_epoch: 4 };
    assert_eq!(
        refused_manager(MessageKind::SetNodeLivenessRequest, liveness),
        WireError::Enum { message: "SetNodeLivenessRequest", field: "target", value: 3 }
    );
    let answer = pb::SetNodeLivenessResponse { applied: -1, node_epoch: 4 };
    assert_eq!(
        refused_coordinator(MessageKind::SetNodeLivenessResponse, answer),
        WireError::Enum { message: "SetNodeLivenessResponse", field: "applied", value: -1 }
    );
    let state = pb::MaintainerStatus {
        state: 99,
        ..pb::MaintainerStatus::from(&status(1, 9, ComponentState::Working))
    };
    let response = pb::CoordinatorBootstrapResponse { statuses: vec![state], ..Default::default() };
    assert_eq!(
        refused_coordinator(MessageKind::CoordinatorBootstrapResponse, response),
        WireError::Enum { message: "MaintainerStatus", field: "state", value: 99 }
    );
    let garbage = [0xff, 0xff, 0xff];
    for kind in MessageKind::ALL {
        let error = match kind.receiver() {
            Receiver::Manager => decode_to_manager(kind, &garbage).err(),
            Receiver::Coordinator => decode_to_coordinator(kind, &garbage).err(),
            _ => continue,
        };
        assert_eq!(error, Some(WireError::Undecodable { message: kind.name() }), "{kind}");
    }
}

#[test]
fn an_empty_drain_target_reads_as_none() {
    let progress = pb::DrainProgress { target_dispatcher_count: 4, ..Default::default() };
    let s = pb::MaintainerStatus {
        drain_progress: Some(progress),
        ..pb::MaintainerStatus::from(&status(1, 9, ComponentState::Working))
    };
    let bytes = pb::MaintainerHeartbeat { statuses: vec![s] }.encode_to_vec();
    let Ok(ToCoordinator::Maintainers(h)) = decode_to_coordinator(MessageKind::MaintainerHeartbeat, &bytes)
    else {
        panic!()
    };
    assert_eq!(h.statuses[0].drain, None);
    let clear = pb::SetDispatcherDrainTargetRequest { target_node_id: String::new(), target_epoch: 5 };
    assert_eq!(
        decode_to_manager(MessageKind::SetDispatcherDrainTargetRequest, &clear.encode_to_vec()),
        Ok(ToManager::SetDrainTarget(SetDrainTarget { target: None }))
    );
}

#[test]
fn frames_carry_the_reference_type_numbers_and_topics() {
    let expected = [
        (MessageKind::HeartBeatRequest, 13, "maintainer-manager"),
        (MessageKind::ScheduleDispatcherRequest, 15, "heartbeat-collector"),
        (MessageKind::CheckpointTsMessage, 17, "maintainer-manager"),
        (MessageKind::CoordinatorBootstrapRequest, 24, "maintainer-manager"),
        (MessageKind::CoordinatorBootstrapResponse, 25, "coordinator"),
        (MessageKind::AddMaintainerRequest, 26, "maintainer-manager"),
        (MessageKind::RemoveMaintainerRequest, 27, "maintainer-manager"),
        (MessageKind::MaintainerHeartbeat, 28, "coordinator"),
        (MessageKind::MaintainerBootstrapRequest, 29, "dispatcher-manager-manager"),
        (MessageKind::MaintainerCloseResponse, 34, "maintainer"),
        (MessageKind::NodeHeartbeat, 42, "coordinator"),
        (MessageKind::SetNodeLivenessRequest, 43, "maintainer-manager"),
        (MessageKind::SetNodeLivenessResponse, 44, "coordinator"),
        (MessageKind::SetDispatcherDrainTargetRequest, 45, "maintainer-manager"),
    ];
    for (kind, number, name) in expected {
        assert_eq!((io_type(kind), topic(kind).name()), (number, name), "{kind}");
        assert_eq!(kind_of_io_type(number), Some(kind));
    }
    assert_eq!("coordinator".parse::<Topic>(), Ok(Topic::Coordinator));
    assert!("event-store".parse::<Topic>().is_err());
}
