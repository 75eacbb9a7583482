//! Users' span requests (move, split, merge), stored in etcd once the maintainer admitted them,
//! so that a maintainer that takes over after a failover or a move carries them out too: it loads
//! its changefeed's requests when its bootstrap ends and steps in again every one still waiting
//! (`NodeHost::operation_state`), deleting those done or moot. A later request on overlapping
//! spans supersedes an earlier one. Keys: `/tidb/cdc/<cluster>/dispatcher-core/request/<cf>/<id>`,
//! values JSON with the spans' keys in lowercase hex.

use dispatcher_core::host::{OperationKind, SpanOperation};
use dispatcher_core::ids::NodeId;
use dispatcher_core::span::TableSpan;
use etcd_client::{Client, GetOptions};
use serde::{Deserialize, Serialize};

use crate::admin::{hex, mode_name, mode_of};

/// Where a changefeed's requests live (a prefix, ending in `/`).
pub fn prefix(cluster: &str, changefeed: &str) -> String {
    format!("/tidb/cdc/{cluster}/dispatcher-core/request/{changefeed}/")
}

#[derive(Serialize, Deserialize)]
struct Span {
    keyspace: u32,
    table: i64,
    start: String,
    end: String,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    mode: String,
    kind: String,
    spans: Vec<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    into: Option<usize>,
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// The stored form of an operation.
pub fn encode(op: &SpanOperation) -> Vec<u8> {
    let span = |s: &TableSpan| Span {
        keyspace: s.keyspace_id,
        table: s.table_id,
        start: hex(s.start_key.as_bytes()),
        end: hex(s.end_key.as_bytes()),
    };
    let stored = match &op.kind {
        OperationKind::Move { span: s, to } => Stored {
            mode: String::new(),
            kind: "move".into(),
            spans: vec![span(s)],
            to: Some(to.to_string()),
            into: None,
        },
        OperationKind::Split { span: s, into } => Stored {
            mode: String::new(),
            kind: "split".into(),
            spans: vec![span(s)],
            to: None,
            into: Some(*into),
        },
        OperationKind::Merge { spans } => Stored {
            mode: String::new(),
            kind: "merge".into(),
            spans: spans.iter().map(span).collect(),
            to: None,
            into: None,
        },
    };
    let stored = Stored { mode: mode_name(op.mode).into(), ..stored };
    serde_json::to_vec(&stored).unwrap_or_default()
}

/// An operation read back; `None` when the value is not one (it is then deleted as moot).
pub fn decode(value: &[u8]) -> Option<SpanOperation> {
    let stored: Stored = serde_json::from_slice(value).ok()?;
    let spans = stored
        .spans
        .iter()
        .map(|s| TableSpan::new(s.keyspace, s.table, unhex(&s.start)?, unhex(&s.end)?))
        .collect::<Option<Vec<_>>>()?;
    let first = spans.first()?.clone();
    let kind = match stored.kind.as_str() {
        "move" => OperationKind::Move { span: first, to: NodeId::new(stored.to.as_deref()?) },
        "split" => OperationKind::Split { span: first, into: stored.into? },
        "merge" => OperationKind::Merge { spans },
        _ => return None,
    };
    Some(SpanOperation { mode: mode_of(&stored.mode)?, kind })
}

/// Whether two operations act on an overlapping key range of one mode.
pub fn overlap(a: &SpanOperation, b: &SpanOperation) -> bool {
    a.mode == b.mode && a.kind.sources().iter().any(|x| b.kind.sources().iter().any(|y| x.overlaps(y)))
}

/// Stores `op` under a new key of `changefeed`; returns the key and its revision (which orders
/// requests: etcd's, not a node's clock).
pub async fn put(
    client: &mut Client,
    cluster: &str,
    changefeed: &str,
    op: &SpanOperation,
) -> Result<(String, i64), String> {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let key = format!("{}{nanos:024}-{}", prefix(cluster, changefeed), std::process::id());
    let put =
        client.put(key.as_str(), encode(op), None).await.map_err(|e| format!("storing the request: {e}"))?;
    let revision = put.header().map_or(0, |h| h.revision());
    Ok((key, revision))
}

/// A stored request: its key, its create revision, and the operation (`None` when unreadable).
pub type Listed = (String, i64, Option<SpanOperation>);

/// Every stored request of `changefeed`, oldest (lowest create revision) first.
pub async fn list(
    client: &mut Client,
    cluster: &str,
    changefeed: &str,
) -> Result<Vec<Listed>, etcd_client::Error> {
    let got = client.get(prefix(cluster, changefeed), Some(GetOptions::new().with_prefix())).await?;
    let mut listed: Vec<Listed> = got
        .kvs()
        .iter()
        .map(|kv| (String::from_utf8_lossy(kv.key()).into_owned(), kv.create_revision(), decode(kv.value())))
        .collect();
    listed.sort_by_key(|l| l.1);
    Ok(listed)
}

#[cfg(test)]
mod tests {
    use dispatcher_core::ids::Mode;

    use super::*;

    #[test]
    fn an_operation_survives_its_stored_form_and_garbage_is_refused() {
        let whole = TableSpan::whole_table(0, 7);
        let parts = whole.split_even(2).unwrap();
        for op in [
            SpanOperation {
                mode: Mode::Default,
                kind: OperationKind::Move { span: whole.clone(), to: NodeId::new("n2") },
            },
            SpanOperation { mode: Mode::Redo, kind: OperationKind::Split { span: whole.clone(), into: 3 } },
            SpanOperation { mode: Mode::Default, kind: OperationKind::Merge { spans: parts.clone() } },
        ] {
            assert_eq!(decode(&encode(&op)), Some(op));
        }
        assert_eq!(decode(b"{}"), None);
        assert_eq!(decode(br#"{"mode":"default","kind":"split","spans":[{"keyspace":0,"table":1,"start":"7","end":""}]}"#), None);
        let a = SpanOperation {
            mode: Mode::Default,
            kind: OperationKind::Split { span: whole.clone(), into: 2 },
        };
        let b = SpanOperation {
            mode: Mode::Default,
            kind: OperationKind::Move { span: parts[1].clone(), to: NodeId::new("n1") },
        };
        let c = SpanOperation { mode: Mode::Redo, ..b.clone() };
        assert!(overlap(&a, &b) && !overlap(&a, &c));
    }
}
