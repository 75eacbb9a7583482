//! Direct encoders for the two outbound messages that can be large: `Heartbeat` (the hottest)
//! and the bootstrap response (one entry per dispatcher: 100,000 on a big node). Bytes go
//! straight from the domain value, without building the prost tree first and with one length
//! pass per nested message. The output is byte-for-byte what prost produces from the converted
//! value (proto3: default scalars omitted, fields in number order); tests hold the two to that.
//! `lastSyncedTs` (field 4 of `Watermark`) is not tracked by this core and is always omitted (0).

use prost::bytes::BufMut;
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};

use crate::ids::{ChangefeedId, DispatcherId};
use crate::messages::{
    BootstrapResponse, BootstrapSpan, DispatcherStatus, Heartbeat, RunningError, Watermark,
};
use crate::span::TableSpan;

use super::pb;

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
    encode_head(r, buf);
    let mut tmp = [0u8; STATUS_MAX];
    for s in &r.statuses {
        let n = status_into(s, &mut tmp);
        buf.put_slice(&tmp[..n]);
    }
    encode_tail(r, buf);
}

/// The protobuf encoding of `r` as a vector (its capacity an upper bound, no length pass).
pub fn heartbeat_to_vec(r: &Heartbeat) -> Vec<u8> {
    // A status encodes to at most STATUS_MAX bytes, so the capacity bound needs no length pass.
    let mut buf =
        Vec::with_capacity(128 + r.statuses.len() * STATUS_MAX + r.err.as_ref().map_or(0, error_body));
    encode_heartbeat(r, &mut buf);
    buf
}

/// Upper bound of one encoded `statuses` entry: key + 1-byte length + a body of at most
/// 2 (id key, len) + 2 * 11 (id halves) + 11 (state) + 11 (checkpoint) + 5 (rate) + 11 (mode).
const STATUS_MAX: usize = 2 + 2 + 22 + 11 + 11 + 5 + 11;

#[inline]
fn varint_at(mut v: u64, out: &mut [u8], mut i: usize) -> usize {
    while v >= 0x80 {
        out[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    out[i] = v as u8;
    i + 1
}

#[inline]
fn field_at(key: u8, v: u64, out: &mut [u8], i: usize) -> usize {
    if v == 0 {
        return i;
    }
    out[i] = key;
    varint_at(v, out, i + 1)
}

/// One `statuses` entry (field 4 of `HeartBeatRequest`), byte for byte what prost writes, into
/// `out`; returns its length. The body is always shorter than 128 bytes, so each length is one
/// byte and is patched in after the body.
fn status_into(s: &DispatcherStatus, out: &mut [u8; STATUS_MAX]) -> usize {
    out[0] = (4 << 3) | 2;
    out[2] = (1 << 3) | 2; // ID
    let mut i = field_at(1 << 3, s.id.high(), out, 4);
    i = field_at(2 << 3, s.id.low(), out, i);
    out[3] = (i - 4) as u8;
    i = field_at(2 << 3, s.state.as_i32() as u64, out, i);
    i = field_at(3 << 3, s.checkpoint_ts, out, i);
    if s.event_size_per_second != 0.0 {
        out[i] = (4 << 3) | 5;
        out[i + 1..i + 5].copy_from_slice(&s.event_size_per_second.to_le_bytes());
        i += 5;
    }
    i = field_at(5 << 3, s.mode.as_i64() as u64, out, i);
    out[1] = (i - 2) as u8;
    i
}

fn encode_head(r: &Heartbeat, buf: &mut impl BufMut) {
    put_changefeed(1, &r.changefeed, buf);
    if let Some(w) = &r.watermark {
        put_watermark(2, w, buf);
    }
    if let Some(w) = &r.redo_watermark {
        put_watermark(3, w, buf);
    }
}

fn encode_tail(r: &Heartbeat, buf: &mut impl BufMut) {
    if r.complete {
        encode_key(5, WireType::Varint, buf);
        buf.put_u8(1);
    }
    if let Some(e) = &r.err {
        put_error(6, e, buf);
    }
}

fn put_error(tag: u32, e: &RunningError, buf: &mut impl BufMut) {
    put_nested(tag, error_body(e), buf);
    put_str(1, &e.time, buf);
    put_str(2, &e.node, buf);
    put_str(3, &e.code, buf);
    put_str(4, &e.message, buf);
}

fn put_changefeed(tag: u32, c: &ChangefeedId, buf: &mut impl BufMut) {
    put_nested(tag, changefeed_body(c), buf);
    put_u64(1, c.high, buf);
    put_u64(2, c.low, buf);
    put_str(3, &c.name, buf);
    put_str(4, &c.keyspace, buf);
}

fn bytes_len(tag: u32, b: &[u8]) -> usize {
    if b.is_empty() {
        0
    } else {
        key_len(tag) + encoded_len_varint(b.len() as u64) + b.len()
    }
}

fn put_bytes(tag: u32, b: &[u8], buf: &mut impl BufMut) {
    if !b.is_empty() {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(b.len() as u64, buf);
        buf.put_slice(b);
    }
}

fn span_body(s: &TableSpan) -> usize {
    u64_len(1, s.table_id as u64)
        + bytes_len(2, &s.start_key)
        + bytes_len(3, &s.end_key)
        + u64_len(4, u64::from(s.keyspace_id))
}

/// One `spans` entry's body (`BootstrapTableSpan`); `block` is its barrier state, converted once.
fn bootstrap_span_body(s: &BootstrapSpan, block: Option<&pb::State>) -> usize {
    nested_len(1, id_body(s.id))
        + u64_len(2, s.schema_id as u64)
        + nested_len(3, span_body(&s.span))
        + u64_len(4, s.state.as_i32() as u64)
        + u64_len(5, s.checkpoint_ts)
        + block.map_or(0, |b| prost::encoding::message::encoded_len(6, b))
        + u64_len(7, s.mode.as_i64() as u64)
}

fn put_bootstrap_span(s: &BootstrapSpan, buf: &mut impl BufMut) {
    let block = s.block.as_deref().map(pb::State::from);
    put_nested(2, bootstrap_span_body(s, block.as_ref()), buf);
    put_nested(1, id_body(s.id), buf);
    put_u64(1, s.id.high(), buf);
    put_u64(2, s.id.low(), buf);
    put_u64(2, s.schema_id as u64, buf);
    put_nested(3, span_body(&s.span), buf);
    put_u64(1, s.span.table_id as u64, buf);
    put_bytes(2, &s.span.start_key, buf);
    put_bytes(3, &s.span.end_key, buf);
    put_u64(4, u64::from(s.span.keyspace_id), buf);
    put_u64(4, s.state.as_i32() as u64, buf);
    put_u64(5, s.checkpoint_ts, buf);
    if let Some(b) = &block {
        prost::encoding::message::encode(6, b, buf);
    }
    put_u64(7, s.mode.as_i64() as u64, buf);
}

/// The protobuf encoding of a bootstrap response (`MaintainerBootstrapResponse`), written straight
/// from the domain value: no protobuf copy of its span entries (keys included) is built. The
/// journals and the error, small, go through prost.
pub fn bootstrap_response_to_vec(r: &BootstrapResponse) -> Vec<u8> {
    // Most entries take 40-60 bytes; the vector grows if keys are longer.
    let mut buf = Vec::with_capacity(256 + r.spans.len() * 64);
    put_changefeed(1, &r.changefeed, &mut buf);
    for s in &r.spans {
        put_bootstrap_span(s, &mut buf);
    }
    if let Some(e) = &r.err {
        put_error(3, e, &mut buf);
    }
    put_u64(4, r.checkpoint_ts, &mut buf);
    put_u64(5, r.redo_checkpoint_ts, &mut buf);
    for op in &r.operators {
        prost::encoding::message::encode(6, &pb::ScheduleDispatcherRequest::from(op), &mut buf);
    }
    put_u64(7, r.epoch.0, &mut buf);
    for m in &r.merge_operators {
        prost::encoding::message::encode(8, &pb::MergeDispatcherRequest::from(m), &mut buf);
    }
    buf
}
