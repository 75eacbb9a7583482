//! Direct encoders for the hottest outbound message, `Heartbeat`: bytes straight from the
//! domain value, without building the prost tree first and with one length pass per nested
//! message. The output is byte-for-byte what `pb::HeartBeatRequest::from(&r).encode_to_vec()`
//! produces (proto3: default scalars omitted, fields in number order); a property test holds the
//! two to that. `lastSyncedTs` (field 4 of `Watermark`) is not tracked by this core and is
//! always omitted (0).

use prost::bytes::BufMut;
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};

use crate::ids::{ChangefeedId, DispatcherId};
use crate::messages::{DispatcherStatus, Heartbeat, RunningError, Watermark};

fn u64_len(tag: u32, v: u64) -> usize {
    if v == 0 {
        0
    } else {
        key_len(tag) + encoded_len_varint(v)
    }
}

fn put_u64(tag: u32, v: u64, buf: &mut impl BufMut) {
    if v != 0 {
        encode_key(tag, WireType::Varint, buf);
        encode_varint(v, buf);
    }
}

fn str_len(tag: u32, s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        key_len(tag) + encoded_len_varint(s.len() as u64) + s.len()
    }
}

fn put_str(tag: u32, s: &str, buf: &mut impl BufMut) {
    if !s.is_empty() {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(s.len() as u64, buf);
        buf.put_slice(s.as_bytes());
    }
}

fn nested_len(tag: u32, body: usize) -> usize {
    key_len(tag) + encoded_len_varint(body as u64) + body
}

fn put_nested(tag: u32, body: usize, buf: &mut impl BufMut) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(body as u64, buf);
}

fn changefeed_body(c: &ChangefeedId) -> usize {
    u64_len(1, c.high) + u64_len(2, c.low) + str_len(3, &c.name) + str_len(4, &c.keyspace)
}

fn watermark_body(w: &Watermark) -> usize {
    u64_len(1, w.checkpoint_ts) + u64_len(2, w.resolved_ts) + u64_len(3, w.seq)
}

fn id_body(id: DispatcherId) -> usize {
    u64_len(1, id.high()) + u64_len(2, id.low())
}

fn status_body(s: &DispatcherStatus) -> usize {
    let state = s.state.as_i32() as u64;
    nested_len(1, id_body(s.id))
        + u64_len(2, state)
        + u64_len(3, s.checkpoint_ts)
        + if s.event_size_per_second == 0.0 { 0 } else { key_len(4) + 4 }
        + u64_len(5, s.mode.as_i64() as u64)
}

fn error_body(e: &RunningError) -> usize {
    str_len(1, &e.time) + str_len(2, &e.node) + str_len(3, &e.code) + str_len(4, &e.message)
}

/// The encoded length of `r`.
pub fn heartbeat_len(r: &Heartbeat) -> usize {
    nested_len(1, changefeed_body(&r.changefeed))
        + r.watermark.as_ref().map_or(0, |w| nested_len(2, watermark_body(w)))
        + r.redo_watermark.as_ref().map_or(0, |w| nested_len(3, watermark_body(w)))
        + r.statuses.iter().map(|s| nested_len(4, status_body(s))).sum::<usize>()
        + if r.complete { key_len(5) + 1 } else { 0 }
        + r.err.as_ref().map_or(0, |e| nested_len(6, error_body(e)))
}

fn put_watermark(tag: u32, w: &Watermark, buf: &mut impl BufMut) {
    put_nested(tag, watermark_body(w), buf);
    put_u64(1, w.checkpoint_ts, buf);
    put_u64(2, w.resolved_ts, buf);
    put_u64(3, w.seq, buf);
}

/// Appends the protobuf encoding of `r` to `buf`.
pub fn encode_heartbeat(r: &Heartbeat, buf: &mut impl BufMut) {
    let c = &r.changefeed;
    put_nested(1, changefeed_body(c), buf);
    put_u64(1, c.high, buf);
    put_u64(2, c.low, buf);
    put_str(3, &c.name, buf);
    put_str(4, &c.keyspace, buf);
    if let Some(w) = &r.watermark {
        put_watermark(2, w, buf);
    }
    if let Some(w) = &r.redo_watermark {
        put_watermark(3, w, buf);
    }
    for s in &r.statuses {
        put_nested(4, status_body(s), buf);
        put_nested(1, id_body(s.id), buf);
        put_u64(1, s.id.high(), buf);
        put_u64(2, s.id.low(), buf);
        put_u64(2, s.state.as_i32() as u64, buf);
        put_u64(3, s.checkpoint_ts, buf);
        if s.event_size_per_second != 0.0 {
            encode_key(4, WireType::ThirtyTwoBit, buf);
            buf.put_f32_le(s.event_size_per_second);
        }
        put_u64(5, s.mode.as_i64() as u64, buf);
    }
    if r.complete {
        encode_key(5, WireType::Varint, buf);
        buf.put_u8(1);
    }
    if let Some(e) = &r.err {
        put_nested(6, error_body(e), buf);
        put_str(1, &e.time, buf);
        put_str(2, &e.node, buf);
        put_str(3, &e.code, buf);
        put_str(4, &e.message, buf);
    }
}

/// The protobuf encoding of `r` in a vector of exactly its length.
pub fn heartbeat_to_vec(r: &Heartbeat) -> Vec<u8> {
    let mut buf = Vec::with_capacity(heartbeat_len(r));
    encode_heartbeat(r, &mut buf);
    buf
}
