//! The coordinator's store on etcd: the election that makes a coordinator, and its
//! [`MetaRequest`]s run as transactions guarded by the winning key (K1: a write of a deposed
//! coordinator changes nothing and answers [`MetaError::Deposed`]).
//!
//! A changefeed is two keys, as in the reference (cluster.md §2): `info/<name>` (identity,
//! definition, state, epoch) and `status/<name>` (checkpoint, progress), in JSON. Epoch bumps and
//! lifecycle changes compare the info key's mod revision (K3), checkpoint writes the status key's
//! and only go up (K11).

use dispatcher_core::coordinator::{FeedState, MetaError, MetaOp, MetaValue, Progress, StoredChangefeed};
use dispatcher_core::ids::{ChangefeedId, Epoch, NodeId, Ts};
use etcd_client::{Client, Compare, CompareOp, GetOptions, Txn, TxnOp, TxnOpResponse};
use serde::{Deserialize, Serialize};

use crate::meta::{Keys, Session};

/// A won election: the winning key and its create revision (the coordinator's version, K2).
#[derive(Clone, Debug)]
pub struct Leadership {
    /// The winning key.
    pub key: Vec<u8>,
    /// Its create revision.
    pub revision: i64,
    /// The store's revision when the campaign answered: a view of the election at or past it
    /// shows this key leading (the one before it gone).
    pub seen_at: i64,
}

/// Campaigns for coordinator under the session's lease; returns once this process leads.
pub async fn campaign(
    session: &Session,
    keys: &Keys,
    node: &NodeId,
) -> Result<Leadership, etcd_client::Error> {
    let mut client = session.client();
    let name = keys.owners().trim_end_matches('/').to_owned();
    let won = client.campaign(name, node.to_string(), session.lease()).await?;
    let leader = won
        .leader()
        .ok_or_else(|| etcd_client::Error::InvalidArgs("campaign without a leader key".into()))?;
    let seen_at = won.header().map_or(leader.rev(), |h| h.revision());
    Ok(Leadership { key: leader.key().to_vec(), revision: leader.rev(), seen_at })
}

#[derive(Serialize, Deserialize)]
struct Info {
    high: u64,
    low: u64,
    name: String,
    keyspace: String,
    config: Vec<u8>,
    state: String,
    epoch: u64,
}

#[derive(Serialize, Deserialize)]
struct Status {
    #[serde(rename = "checkpoint-ts")]
    checkpoint_ts: Ts,
    progress: u8,
}

fn progress_code(p: Progress) -> u8 {
    match p {
        Progress::None => 1,
        Progress::Removing => 2,
        Progress::Stopping => 3,
    }
}

fn progress_of(code: u8) -> Progress {
    match code {
        2 => Progress::Removing,
        3 => Progress::Stopping,
        _ => Progress::None,
    }
}

fn load_ops(prefix: &str) -> Vec<TxnOp> {
    let all = Some(GetOptions::new().with_prefix());
    vec![TxnOp::get(format!("{prefix}info/"), all.clone()), TxnOp::get(format!("{prefix}status/"), all)]
}

/// The changefeeds of a load's two prefix reads (info, then status); a changefeed missing either
/// key or with an unreadable one is left out.
fn parse_all(got: Vec<TxnOpResponse>) -> Vec<StoredChangefeed> {
    let mut infos = Vec::new();
    let mut statuses = std::collections::BTreeMap::new();
    for (i, r) in got.into_iter().enumerate() {
        let TxnOpResponse::Get(g) = r else { continue };
        for kv in g.kvs() {
            let name = String::from_utf8_lossy(kv.key()).rsplit('/').next().unwrap_or_default().to_owned();
            if i == 0 {
                if let Ok(info) = serde_json::from_slice::<Info>(kv.value()) {
                    infos.push(info);
                }
            } else if let Ok(status) = serde_json::from_slice::<Status>(kv.value()) {
                statuses.insert(name, status);
            }
        }
    }
    infos
        .into_iter()
        .filter_map(|info| {
            let status = statuses.remove(&info.name)?;
            EtcdStore::stored(info, status)
        })
        .collect()
}

/// Reads every stored changefeed of `cluster` at one revision, without leading (for `list` and
/// `status`).
pub async fn load(client: &mut Client, cluster: &str) -> Result<Vec<StoredChangefeed>, etcd_client::Error> {
    let txn = Txn::new().and_then(load_ops(&prefix_of(cluster)));
    Ok(parse_all(client.txn(txn).await?.op_responses()))
}

fn prefix_of(cluster: &str) -> String {
    format!("/tidb/cdc/{cluster}/default/changefeed/")
}

/// Checkpoints written per transaction: etcd refuses a transaction of more than 128 compares or
/// operations (`--max-txn-ops`), and each also carries the election guard.
pub const CHECKPOINTS_PER_TXN: usize = 100;

/// The coordinator's store: one per leadership.
pub struct EtcdStore {
    client: Client,
    prefix: String,
    lead: Leadership,
}

fn unavailable(_: etcd_client::Error) -> MetaError {
    MetaError::Unavailable
}

impl EtcdStore {
    /// The store of the coordinator that won `lead`, for cluster `cluster` and keyspace `default`.
    pub fn new(client: Client, cluster: &str, lead: Leadership) -> Self {
        EtcdStore { client, prefix: prefix_of(cluster), lead }
    }

    fn info_key(&self, name: &str) -> String {
        format!("{}info/{name}", self.prefix)
    }

    fn status_key(&self, name: &str) -> String {
        format!("{}status/{name}", self.prefix)
    }

    fn guard(&self) -> Compare {
        Compare::create_revision(self.lead.key.clone(), CompareOp::Equal, self.lead.revision)
    }

    /// Runs `when` (plus the guard) then `then`; a failed compare is `Deposed` if the guard is
    /// what failed, else `Conflict`.
    async fn guarded(
        &mut self,
        mut when: Vec<Compare>,
        then: Vec<TxnOp>,
    ) -> Result<Vec<TxnOpResponse>, MetaError> {
        when.push(self.guard());
        let txn = Txn::new().when(when).and_then(then).or_else(vec![TxnOp::get(self.lead.key.clone(), None)]);
        let response = self.client.txn(txn).await.map_err(unavailable)?;
        if response.succeeded() {
            return Ok(response.op_responses());
        }
        let still_leads = response.op_responses().into_iter().any(|r| match r {
            TxnOpResponse::Get(g) => {
                g.kvs().first().is_some_and(|kv| kv.create_revision() == self.lead.revision)
            }
            _ => false,
        });
        Err(if still_leads { MetaError::Conflict } else { MetaError::Deposed })
    }

    async fn read(&mut self, name: &str) -> Result<Option<(Info, i64, Status, i64)>, MetaError> {
        let ops = vec![TxnOp::get(self.info_key(name), None), TxnOp::get(self.status_key(name), None)];
        let got = self.guarded(Vec::new(), ops).await?;
        let mut kvs = got.into_iter().filter_map(|r| match r {
            TxnOpResponse::Get(g) => g.kvs().first().map(|kv| (kv.value().to_vec(), kv.mod_revision())),
            _ => None,
        });
        let (Some((info, info_rev)), Some((status, status_rev))) = (kvs.next(), kvs.next()) else {
            return Ok(None);
        };
        let info: Info = serde_json::from_slice(&info).map_err(|_| MetaError::Conflict)?;
        let status: Status = serde_json::from_slice(&status).map_err(|_| MetaError::Conflict)?;
        Ok(Some((info, info_rev, status, status_rev)))
    }

    fn stored(info: Info, status: Status) -> Option<StoredChangefeed> {
        Some(StoredChangefeed {
            id: ChangefeedId { high: info.high, low: info.low, name: info.name, keyspace: info.keyspace },
            config: info.config,
            state: FeedState::from_name(&info.state)?,
            epoch: Epoch(info.epoch),
            checkpoint_ts: status.checkpoint_ts,
            progress: progress_of(status.progress),
        })
    }

    /// Raises the stored checkpoints of `list` in one transaction: one guarded read of their
    /// status keys, then one guarded write of those that go up (K11: never down; the progress is
    /// kept as stored, the reference's H2), each compared on the mod revision it was read at. A
    /// lifecycle write that lands in between fails the compare: read again, up to three times,
    /// then answer `Conflict` (nothing of this batch was written; the next save tries again).
    async fn save_checkpoints(&mut self, list: &[(ChangefeedId, Ts)]) -> Result<(), MetaError> {
        for _ in 0..3 {
            let reads = list.iter().map(|(id, _)| TxnOp::get(self.status_key(&id.name), None)).collect();
            let got = self.guarded(Vec::new(), reads).await?;
            let (mut when, mut then) = (Vec::new(), Vec::new());
            for ((id, ts), read) in list.iter().zip(got) {
                let TxnOpResponse::Get(g) = read else { continue };
                let Some(kv) = g.kvs().first() else { continue }; // removed meanwhile
                let Ok(mut status) = serde_json::from_slice::<Status>(kv.value()) else { continue };
                if *ts <= status.checkpoint_ts {
                    continue;
                }
                status.checkpoint_ts = *ts;
                let key = self.status_key(&id.name);
                when.push(Compare::mod_revision(key.clone(), CompareOp::Equal, kv.mod_revision()));
                then.push(TxnOp::put(key, serde_json::to_vec(&status).unwrap_or_default(), None));
            }
            if then.is_empty() {
                return Ok(());
            }
            match self.guarded(when, then).await {
                Ok(_) => return Ok(()),
                Err(MetaError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        // Not written: the coordinator keeps its stored checkpoints as they were and saves again.
        Err(MetaError::Conflict)
    }

    /// Runs one request.
    pub async fn run(&mut self, op: MetaOp) -> Result<MetaValue, MetaError> {
        match op {
            MetaOp::LoadAll => {
                let got = self.guarded(Vec::new(), load_ops(&self.prefix)).await?;
                Ok(MetaValue::Loaded(parse_all(got)))
            }
            MetaOp::Create(s) => {
                let name = s.id.name.clone();
                let info = Info {
                    high: s.id.high,
                    low: s.id.low,
                    name: name.clone(),
                    keyspace: s.id.keyspace.clone(),
                    config: s.config.clone(),
                    state: s.state.name().into(),
                    epoch: s.epoch.0,
                };
                let status = Status { checkpoint_ts: s.checkpoint_ts, progress: progress_code(s.progress) };
                let (ik, sk) = (self.info_key(&name), self.status_key(&name));
                let when = vec![
                    Compare::create_revision(ik.clone(), CompareOp::Equal, 0),
                    Compare::create_revision(sk.clone(), CompareOp::Equal, 0),
                ];
                let then = vec![
                    TxnOp::put(ik, serde_json::to_vec(&info).unwrap_or_default(), None),
                    TxnOp::put(sk, serde_json::to_vec(&status).unwrap_or_default(), None),
                ];
                self.guarded(when, then).await.map(|_| MetaValue::Done)
            }
            MetaOp::BumpEpoch { changefeed } => {
                // Read, raise, compare-and-put on the info key's mod revision: strictly increasing
                // epochs even against a concurrent writer (K3).
                for _ in 0..10 {
                    let Some((mut info, info_rev, _, _)) = self.read(&changefeed.name).await? else {
                        return Err(MetaError::Conflict);
                    };
                    info.epoch += 1;
                    let key = self.info_key(&changefeed.name);
                    let when = vec![Compare::mod_revision(key.clone(), CompareOp::Equal, info_rev)];
                    let then = vec![TxnOp::put(key, serde_json::to_vec(&info).unwrap_or_default(), None)];
                    match self.guarded(when, then).await {
                        Ok(_) => return Ok(MetaValue::Bumped(Epoch(info.epoch))),
                        Err(MetaError::Conflict) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Err(MetaError::Unavailable)
            }
            MetaOp::SetLifecycle { changefeed, state, progress } => {
                let Some((mut info, info_rev, mut status, status_rev)) = self.read(&changefeed.name).await?
                else {
                    return Err(MetaError::Conflict);
                };
                info.state = state.name().into();
                status.progress = progress_code(progress);
                let (ik, sk) = (self.info_key(&changefeed.name), self.status_key(&changefeed.name));
                let when = vec![
                    Compare::mod_revision(ik.clone(), CompareOp::Equal, info_rev),
                    Compare::mod_revision(sk.clone(), CompareOp::Equal, status_rev),
                ];
                let then = vec![
                    TxnOp::put(ik, serde_json::to_vec(&info).unwrap_or_default(), None),
                    TxnOp::put(sk, serde_json::to_vec(&status).unwrap_or_default(), None),
                ];
                self.guarded(when, then).await.map(|_| MetaValue::Done)
            }
            MetaOp::SaveCheckpoints(list) => {
                for chunk in list.chunks(CHECKPOINTS_PER_TXN) {
                    self.save_checkpoints(chunk).await?;
                }
                Ok(MetaValue::Done)
            }
            MetaOp::Delete { changefeed } => {
                let (ik, sk) = (self.info_key(&changefeed.name), self.status_key(&changefeed.name));
                let when = vec![Compare::create_revision(ik.clone(), CompareOp::Greater, 0)];
                let then = vec![TxnOp::delete(ik, None), TxnOp::delete(sk, None)];
                self.guarded(when, then).await.map(|_| MetaValue::Done)
            }
        }
    }
}
