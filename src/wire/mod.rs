//! The protobuf boundary: generated types, the canonical proto3 JSON mapping, and validated
//! conversions into domain types. All validation of outside input lives here.
//!
//! | module | what it holds |
//! |---|---|
//! | [`pb`] | the prost types of `proto/heartbeat.proto` (package `heartbeatpb`) |
//! | [`json`] | binary ⇄ canonical JSON for any message of the schema, by name |
//! | [`convert`] | `TryFrom<pb::X>` into domain values and `From<domain>` back |
//! | [`encode`] | direct encoding of the hottest outbound message (`HeartBeatRequest`) |

pub mod convert;
pub mod encode;
pub mod json;

/// The generated prost types of package `heartbeatpb`.
#[allow(missing_docs, clippy::all, clippy::pedantic)] // reason: generated code
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/heartbeatpb.rs"));
}

pub use convert::WireError;
pub use json::{decode_to_json, encode_from_json, message_names, CodecError};
