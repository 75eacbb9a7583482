//! Binary protobuf ⇄ canonical proto3 JSON for any message of `heartbeatpb`, by message name.
//!
//! The mapping is the standard one (as protoc and pbjson produce it): field names in lowerCamel
//! json form derived from the proto names (`maintainer_epoch` → `maintainerEpoch`, `TableID` stays
//! `TableID`), 64-bit integers as strings, bytes as base64, enums by name, default values omitted.
//! It is driven by the descriptor set compiled from `proto/heartbeat.proto` at build time.

use std::sync::OnceLock;

use prost::Message;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, SerializeOptions,
};

static DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/heartbeat.descriptors.bin"));
static POOL: OnceLock<DescriptorPool> = OnceLock::new();

/// The proto package every message lives in.
pub const PACKAGE: &str = "heartbeatpb";

/// Why a conversion failed. Each names the message and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// No message of that name in the schema.
    #[error("unknown message {name:?} (try one of: {})", message_names().join(", "))]
    UnknownMessage {
        /// The name asked for.
        name: String,
    },
    /// The bytes are not a valid encoding of the message.
    #[error("{message}: invalid protobuf: {reason}")]
    Decode {
        /// The message.
        message: String,
        /// What the decoder said.
        reason: String,
    },
    /// The text is not valid JSON for the message.
    #[error("{message}: invalid JSON: {reason}")]
    Json {
        /// The message.
        message: String,
        /// What the parser said.
        reason: String,
    },
}

fn pool() -> &'static DescriptorPool {
    // The set is produced by our own build script from our own proto; failing to read it is a
    // build defect, not bad input.
    POOL.get_or_init(|| DescriptorPool::decode(DESCRIPTORS).expect("embedded descriptor set is valid"))
}

/// Names of every message in the schema, sorted.
pub fn message_names() -> Vec<String> {
    let mut names: Vec<String> = pool().all_messages().map(|m| m.name().to_string()).collect();
    names.sort();
    names
}

/// The descriptor of a message given as `Name` or `heartbeatpb.Name`.
pub fn descriptor(name: &str) -> Result<MessageDescriptor, CodecError> {
    let full = if name.contains('.') { name.to_string() } else { format!("{PACKAGE}.{name}") };
    pool().get_message_by_name(&full).ok_or_else(|| CodecError::UnknownMessage { name: name.to_string() })
}

/// Decodes binary protobuf of message `name` and renders its canonical JSON.
pub fn decode_to_json(name: &str, bytes: &[u8]) -> Result<String, CodecError> {
    let desc = descriptor(name)?;
    let message = DynamicMessage::decode(desc.clone(), bytes)
        .map_err(|e| CodecError::Decode { message: desc.name().to_string(), reason: e.to_string() })?;
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::new(&mut out);
    message
        .serialize_with_options(&mut serializer, &SerializeOptions::new())
        .map_err(|e| CodecError::Json { message: desc.name().to_string(), reason: e.to_string() })?;
    String::from_utf8(out)
        .map_err(|e| CodecError::Json { message: desc.name().to_string(), reason: e.to_string() })
}

/// Parses canonical (or any accepted proto3) JSON of message `name` and encodes it to binary.
/// Unknown JSON fields are refused.
pub fn encode_from_json(name: &str, json: &str) -> Result<Vec<u8>, CodecError> {
    let desc = descriptor(name)?;
    let bad =
        |e: serde_json::Error| CodecError::Json { message: desc.name().to_string(), reason: e.to_string() };
    let mut de = serde_json::Deserializer::from_str(json);
    let message = DynamicMessage::deserialize_with_options(desc.clone(), &mut de, &DeserializeOptions::new())
        .map_err(bad)?;
    de.end().map_err(bad)?;
    Ok(message.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::pb;

    #[test]
    fn every_message_of_the_reference_is_present() {
        let names = message_names();
        for want in [
            "DispatcherID",
            "ChangefeedID",
            "TableSpan",
            "DispatcherConfig",
            "ScheduleDispatcherRequest",
            "MergeDispatcherRequest",
            "Watermark",
            "HeartBeatRequest",
            "TableSpanStatus",
            "HeartBeatResponse",
            "DispatcherStatus",
            "InfluencedDispatchers",
            "DispatcherAction",
            "ACK",
            "IgnoredBlockStatus",
            "BlockStatusRequest",
            "TableSpanBlockStatus",
            "State",
            "InfluencedTables",
            "Table",
            "SchemaIDChange",
            "RouteTableAdmission",
            "RunningError",
            "CheckpointTsMessage",
            "RedoMetaMessage",
            "RedoResolvedTsForwardMessage",
            "RedoResolvedTsProgressMessage",
            "MaintainerBootstrapRequest",
            "MaintainerBootstrapResponse",
            "BootstrapTableSpan",
            "MaintainerPostBootstrapRequest",
            "MaintainerPostBootstrapResponse",
            "SchemaInfo",
            "TableInfo",
            "MaintainerCloseRequest",
            "MaintainerCloseResponse",
            "NodeHeartbeat",
            "SetNodeLivenessRequest",
            "SetNodeLivenessResponse",
            "SetDispatcherDrainTargetRequest",
            "DrainProgress",
            "MaintainerStatus",
            "MaintainerHeartbeat",
            "CoordinatorBootstrapRequest",
            "CoordinatorBootstrapResponse",
            "AddMaintainerRequest",
            "RemoveMaintainerRequest",
            "LogCoordinatorResolvedTsRequest",
            "LogCoordinatorResolvedTsResponse",
            "ChecksumMeta",
            "DispatcherSetChecksum",
            "DispatcherSetChecksumAckResponse",
            "DispatcherSetChecksumUpdateRequest",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} missing");
        }
    }

    #[test]
    fn json_uses_canonical_names_strings_for_64_bit_and_enum_names() {
        let request = pb::ScheduleDispatcherRequest {
            changefeed_id: Some(pb::ChangefeedId {
                high: 1,
                low: 2,
                name: "cf".into(),
                keyspace: String::new(),
            }),
            config: Some(pb::DispatcherConfig {
                span: Some(pb::TableSpan {
                    table_id: 7,
                    start_key: b"a".to_vec(),
                    end_key: b"b".to_vec(),
                    keyspace_id: 0,
                }),
                start_ts: 100,
                dispatcher_id: Some(pb::DispatcherId { high: 3, low: 4 }),
                schema_id: 0,
                mode: 1,
                skip_dml_as_start_ts: false,
            }),
            schedule_action: pb::ScheduleAction::Remove as i32,
            operator_type: pb::OperatorType::OMove as i32,
            maintainer_epoch: 9,
        };
        let json = decode_to_json("ScheduleDispatcherRequest", &request.encode_to_vec()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["maintainerEpoch"], "9");
        assert_eq!(v["scheduleAction"], "Remove");
        assert_eq!(v["operatorType"], "O_Move");
        assert_eq!(v["changefeedID"]["high"], "1");
        assert_eq!(v["config"]["span"]["TableID"], "7");
        assert_eq!(v["config"]["span"]["StartKey"], "YQ==");
        assert_eq!(v["config"]["dispatcherID"]["low"], "4");
        assert_eq!(v["config"]["mode"], "1");
        assert!(v["config"].get("schemaID").is_none(), "defaults are omitted");
        let back = encode_from_json("heartbeatpb.ScheduleDispatcherRequest", &json).unwrap();
        assert_eq!(pb::ScheduleDispatcherRequest::decode(back.as_slice()).unwrap(), request);
    }

    /// Protobuf bytes built by hand from the reference's field numbers and types.
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn num(field: u64, v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        varint(field << 3, &mut out);
        varint(v, &mut out);
        out
    }

    fn len(field: u64, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint((field << 3) | 2, &mut out);
        varint(body.len() as u64, &mut out);
        out.extend_from_slice(body);
        out
    }

    fn msg(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }

    /// The coordinator-level messages decode from bytes laid out by the reference's field
    /// numbers, types and enum values (issue 12), and come back to the same bytes.
    #[test]
    fn coordinator_messages_follow_the_reference_numbers() {
        let cf = msg(&[num(1, 1), num(2, 2), len(3, b"cf")]);
        let drain = msg(&[len(1, b"n2"), num(2, 77), num(3, 5), num(4, 1)]);
        let error = msg(&[len(3, b"CDC:ErrX")]);
        let status = msg(&[
            len(1, &cf),
            len(2, b"normal"),
            num(3, 1),
            num(4, 450_000_000_000_000_000),
            len(5, &error),
            num(6, 1),
            num(7, 440),
            len(8, &drain),
            num(9, 9),
        ]);
        let cases: [(&str, Vec<u8>, serde_json::Value); 10] = [
            (
                "AddMaintainerRequest",
                msg(&[len(1, &cf), len(2, b"{}"), num(3, 400), num(4, 1), num(5, 7), num(6, 9)]),
                serde_json::json!({"id": {"high": "1", "low": "2", "name": "cf"}, "config": "e30=",
                    "checkpointTs": "400", "isNewChangefeed": true, "keyspaceId": 7, "maintainerEpoch": "9"}),
            ),
            (
                "RemoveMaintainerRequest",
                msg(&[len(1, &cf), num(2, 1), num(3, 1), num(4, 7), num(5, 9)]),
                serde_json::json!({"id": {"high": "1", "low": "2", "name": "cf"}, "cascade": true,
                    "removed": true, "keyspaceId": 7, "maintainerEpoch": "9"}),
            ),
            (
                "MaintainerHeartbeat",
                len(1, &status),
                serde_json::json!({"statuses": [{"changefeedID": {"high": "1", "low": "2", "name": "cf"},
                    "feedState": "normal", "state": "Stopped", "checkpointTs": "450000000000000000",
                    "err": [{"code": "CDC:ErrX"}], "bootstrapDone": true, "lastSyncedTs": "440",
                    "drainProgress": {"targetNodeId": "n2", "targetEpoch": "77", "targetDispatcherCount": 5,
                        "targetInflightDrainMoveCount": 1},
                    "maintainerEpoch": "9"}]}),
            ),
            (
                "NodeHeartbeat",
                msg(&[num(1, 1), num(2, 1_700_000_000), len(3, b"n2"), num(4, 77)]),
                serde_json::json!({"liveness": "DRAINING", "nodeEpoch": "1700000000",
                    "dispatcherDrainTargetNodeId": "n2", "dispatcherDrainTargetEpoch": "77"}),
            ),
            (
                "SetNodeLivenessRequest",
                msg(&[num(1, 2), num(2, 5)]),
                serde_json::json!({"target": "STOPPING", "nodeEpoch": "5"}),
            ),
            (
                "SetNodeLivenessResponse",
                msg(&[num(1, 1), num(2, 5)]),
                serde_json::json!({"applied": "DRAINING", "nodeEpoch": "5"}),
            ),
            (
                "SetDispatcherDrainTargetRequest",
                msg(&[len(1, b"n2"), num(2, 77)]),
                serde_json::json!({"targetNodeId": "n2", "targetEpoch": "77"}),
            ),
            ("CoordinatorBootstrapRequest", num(1, 3), serde_json::json!({"version": "3"})),
            (
                "CoordinatorBootstrapResponse",
                msg(&[len(1, &status), num(2, 1), len(3, b"n2"), num(4, 77)]),
                serde_json::json!({"statuses": [{"changefeedID": {"high": "1", "low": "2", "name": "cf"},
                    "feedState": "normal", "state": "Stopped", "checkpointTs": "450000000000000000",
                    "err": [{"code": "CDC:ErrX"}], "bootstrapDone": true, "lastSyncedTs": "440",
                    "drainProgress": {"targetNodeId": "n2", "targetEpoch": "77", "targetDispatcherCount": 5,
                        "targetInflightDrainMoveCount": 1},
                    "maintainerEpoch": "9"}],
                    "drainProtocolVersion": 1, "dispatcherDrainTargetNodeId": "n2", "dispatcherDrainTargetEpoch": "77"}),
            ),
            (
                "DispatcherSetChecksumUpdateRequest",
                msg(&[len(1, &cf), num(2, 3), num(3, 1), num(4, 8), len(5, &msg(&[num(1, 10), num(5, 11)]))]),
                serde_json::json!({"changefeedID": {"high": "1", "low": "2", "name": "cf"}, "epoch": "3",
                    "mode": "1", "seq": "8", "checksum": {"count": "10", "sumLow": "11"}}),
            ),
        ];
        for (name, bytes, want) in cases {
            let json = decode_to_json(name, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            let got: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(got, want, "{name}");
            let back = encode_from_json(&format!("heartbeatpb.{name}"), &json).unwrap();
            assert_eq!(back, bytes, "{name}: re-encoded bytes");
        }
    }

    #[test]
    fn typo_in_reference_schema_is_kept() {
        let hb = pb::HeartBeatRequest { compelete_status: true, ..Default::default() };
        let json = decode_to_json("HeartBeatRequest", &hb.encode_to_vec()).unwrap();
        assert_eq!(json, r#"{"compeleteStatus":true}"#);
    }

    #[test]
    fn errors_name_the_message() {
        let e = decode_to_json("Nope", b"").unwrap_err();
        assert!(matches!(e, CodecError::UnknownMessage { .. }));
        let e = decode_to_json("Watermark", &[0x08]).unwrap_err().to_string();
        assert!(e.starts_with("Watermark: invalid protobuf"), "{e}");
        let e = encode_from_json("Watermark", r#"{"bogus": 1}"#).unwrap_err().to_string();
        assert!(e.starts_with("Watermark: invalid JSON"), "{e}");
        let e = encode_from_json("Watermark", r#"{"seq": "1"} trailing"#).unwrap_err().to_string();
        assert!(e.starts_with("Watermark: invalid JSON"), "{e}");
    }
}
