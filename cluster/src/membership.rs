//! What a node sees of the cluster in etcd: the live members (their registrations) and the
//! coordinator election, read at one revision and then watched from the next, so no change falls
//! between the read and the watch. A broken or compacted watch starts over with a fresh read.
//!
//! A member is keyed by (id, create revision of its registration): a process that restarts under
//! the same id is a new member. The leader is the election key with the lowest create revision
//! (etcd's election recipe); its create revision is the coordinator's version (K2).

use std::collections::BTreeMap;
use std::time::Duration;

use dispatcher_core::ids::NodeId;
use etcd_client::{Client, Compare, EventType, GetOptions, Txn, TxnOp, TxnOpResponse, WatchOptions};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::meta::Keys;

/// What a node writes under its registration key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capture {
    /// The node's id.
    pub id: String,
    /// Its gRPC address.
    pub address: String,
}

/// One live member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// Its registration's create revision (the process's incarnation).
    pub incarnation: u64,
    /// Where it listens.
    pub address: String,
}

/// The elected coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Elected {
    /// Its node.
    pub node: NodeId,
    /// Its election key.
    pub key: Vec<u8>,
    /// The key's create revision: the coordinator's version.
    pub version: u64,
}

/// The cluster as etcd shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// Live members by id.
    pub members: BTreeMap<NodeId, Registration>,
    /// The election's keys: key → (create revision, node).
    campaigns: BTreeMap<Vec<u8>, (u64, NodeId)>,
    /// The revision this view is at.
    pub revision: i64,
}

impl ClusterView {
    /// The current leader: the campaign with the lowest create revision.
    pub fn leader(&self) -> Option<Elected> {
        self.campaigns.iter().min_by_key(|(_, (rev, _))| *rev).map(|(key, (rev, node))| Elected {
            node: node.clone(),
            key: key.clone(),
            version: *rev,
        })
    }

    fn apply(&mut self, keys: &Keys, key: &[u8], value: &[u8], create_revision: i64, put: bool) {
        let text = String::from_utf8_lossy(key);
        if let Some(id) = text.strip_prefix(keys.captures().as_str()) {
            let id = NodeId::new(id);
            if !put {
                self.members.remove(&id);
            } else if let Ok(c) = serde_json::from_slice::<Capture>(value) {
                self.members
                    .insert(id, Registration { incarnation: create_revision as u64, address: c.address });
            }
        } else if text.starts_with(keys.owners().as_str()) {
            if put {
                let node = NodeId::new(&String::from_utf8_lossy(value));
                self.campaigns.insert(key.to_vec(), (create_revision as u64, node));
            } else {
                self.campaigns.remove(key);
            }
        }
    }
}

/// Reads the members and the election at one revision.
pub async fn read(client: &mut Client, keys: &Keys) -> Result<ClusterView, etcd_client::Error> {
    let all = Some(GetOptions::new().with_prefix());
    let txn = Txn::new()
        .when(Vec::<Compare>::new())
        .and_then(vec![TxnOp::get(keys.captures(), all.clone()), TxnOp::get(keys.owners(), all)]);
    let response = client.txn(txn).await?;
    let mut view =
        ClusterView { revision: response.header().map_or(0, |h| h.revision()), ..ClusterView::default() };
    for r in response.op_responses() {
        if let TxnOpResponse::Get(g) = r {
            for kv in g.kvs() {
                view.apply(keys, kv.key(), kv.value(), kv.create_revision(), true);
            }
        }
    }
    Ok(view)
}

/// Keeps `tx` at the cluster's current view until the receivers are gone.
pub async fn follow(mut client: Client, keys: Keys, tx: watch::Sender<ClusterView>) {
    // Both prefixes share this parent; one watch sees both.
    let parent = keys.captures().trim_end_matches('/').rsplit_once('/').map(|(p, _)| format!("{p}/"));
    let parent = parent.unwrap_or_default();
    loop {
        if tx.is_closed() {
            return;
        }
        let mut view = match read(&mut client, &keys).await {
            Ok(view) => view,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        tx.send_replace(view.clone());
        let options = WatchOptions::new().with_prefix().with_start_revision(view.revision + 1);
        let Ok(mut stream) = client.watch(parent.as_str(), Some(options)).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        loop {
            let message = match tokio::time::timeout(Duration::from_secs(5), stream.message()).await {
                Ok(Ok(Some(m))) => m,
                Err(_) if !tx.is_closed() => continue, // quiet: keep waiting
                _ => break,                            // broken, ended or compacted: read again
            };
            if message.canceled() || message.compact_revision() > 0 {
                break;
            }
            for event in message.events() {
                let Some(kv) = event.kv() else { continue };
                let put = event.event_type() == EventType::Put;
                view.apply(&keys, kv.key(), kv.value(), kv.create_revision(), put);
                view.revision = view.revision.max(kv.mod_revision());
            }
            tx.send_replace(view.clone());
        }
    }
}
