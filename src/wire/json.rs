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
