//! The protobuf boundary: generated types, the canonical proto3 JSON mapping, and validated
//! conversions into domain types. All validation of outside input lives here.
//!
//! | module | what it holds |
//! |---|---|
//! | [`pb`] | the prost types of `proto/heartbeat.proto` (package `heartbeatpb`) |
//! | `json` | binary ⇄ canonical JSON for any message of the schema, by name |
//! | `envelope` | bytes of a [`MessageKind`](crate::messages::MessageKind) ⇄ the typed messages the cores handle |
//! | `convert` | `TryFrom<pb::X>` into domain values and `From<domain>` back |
//! | `encode` | direct encoding of the hottest outbound message (`HeartBeatRequest`) |
//! | `iotype` | the reference transport's message type numbers and topics for each [`MessageKind`](crate::messages::MessageKind) |

pub(crate) mod convert;
pub(crate) mod encode;
pub(crate) mod envelope;
pub(crate) mod iotype;
pub(crate) mod json;

/// The generated prost types of package `heartbeatpb`.
#[allow(missing_docs, clippy::all, clippy::pedantic)] // reason: generated code
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/heartbeatpb.rs"));
}

pub use convert::WireError;
pub use encode::{bootstrap_response_to_vec, heartbeat_len, heartbeat_to_vec};
pub use envelope::{
    decode_to_coordinator, decode_to_maintainer, decode_to_manager, decode_to_node, encode_to_coordinator,
    encode_to_maintainer, encode_to_manager, encode_to_node,
};
pub use iotype::{io_type, kind_of_io_type, topic, Topic, HANDSHAKE_IO_TYPE};
pub use json::{decode_to_json, encode_from_json, message_names, CodecError};
