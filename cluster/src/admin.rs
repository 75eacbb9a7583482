//! The admin service every node serves beside the message service: the `changefeed` and
//! `status` commands call it with one JSON document and get one back. A call for the coordinator
//! (create, pause, resume, remove, move-maintainer) is answered once the coordinator stored it; a
//! span call (move, split, merge) by the node whose maintainer runs the changefeed, once the
//! maintainer admitted it; `status` by every node, from what it runs.

use dispatcher_core::host::{HostedDispatcher, MaintainerReport};
use dispatcher_core::ids::{ChangefeedId, Mode};
use dispatcher_core::maintainer::Lifecycle;
use dispatcher_core::messages::ComponentState;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status};

use crate::transport::pb::admin_service_server::{AdminService, AdminServiceServer};
use crate::transport::pb::{AdminReply, AdminRequest};

/// One call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "kebab-case")]
pub enum AdminCall {
    /// What this node runs.
    Status,
    /// The Prometheus text (`crate::metrics`).
    Metrics,
    /// Create a synthetic changefeed (coordinator).
    Create {
        /// Its name.
        name: String,
        /// Tables `1..=tables`.
        tables: i64,
        /// Spans per table.
        spans_per_table: usize,
        /// With the redo mode.
        redo: bool,
    },
    /// Pause (coordinator).
    Pause {
        /// The changefeed.
        name: String,
    },
    /// Resume (coordinator).
    Resume {
        /// The changefeed.
        name: String,
    },
    /// Remove (coordinator).
    Remove {
        /// The changefeed.
        name: String,
    },
    /// Move the maintainer (coordinator).
    MoveMaintainer {
        /// The changefeed.
        name: String,
        /// The node.
        to: String,
    },
    /// Move a span (the maintainer's node).
    Move {
        /// The changefeed.
        name: String,
        /// The table.
        table: i64,
        /// The span's index.
        span: usize,
        /// The node.
        to: String,
        /// `default` or `redo`.
        mode: String,
    },
    /// Split a span (the maintainer's node).
    Split {
        /// The changefeed.
        name: String,
        /// The table.
        table: i64,
        /// The span's index.
        span: usize,
        /// Parts.
        into: usize,
        /// `default` or `redo`.
        mode: String,
    },
    /// Merge spans (the maintainer's node).
    Merge {
        /// The changefeed.
        name: String,
        /// The table.
        table: i64,
        /// The spans' indexes.
        spans: Vec<usize>,
        /// `default` or `redo`.
        mode: String,
    },
}

/// The answer to a call.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminAnswer {
    /// Why the call was refused, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<NodeStatus>,
    /// For `metrics`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
}

/// What one node runs and knows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node's id.
    pub id: String,
    /// Its incarnation.
    pub incarnation: u64,
    /// `alive`, `draining` or `stopping`.
    pub liveness: String,
    /// Whether its lease is still proven.
    pub fenced: bool,
    /// The coordinator's view, when this node leads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinator: Option<CoordinatorStatus>,
    /// The dispatchers it runs.
    pub dispatchers: Vec<DispatcherJson>,
    /// The maintainers it runs.
    pub maintainers: Vec<MaintainerJson>,
}

/// The coordinator's view.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordinatorStatus {
    /// Its version.
    pub version: u64,
    /// Whether it finished its bootstrap.
    pub initialized: bool,
    /// Its changefeeds.
    pub changefeeds: Vec<FeedJson>,
}

/// A changefeed as the coordinator sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedJson {
    /// Its name.
    pub name: String,
    /// Its state word.
    pub state: String,
    /// The stored epoch.
    pub epoch: u64,
    /// Where its maintainer runs.
    pub node: Option<String>,
    /// The checkpoint last reported.
    pub checkpoint_ts: u64,
    /// The checkpoint stored.
    pub persisted_checkpoint_ts: u64,
    /// The coordinator operator in flight.
    pub operator: Option<String>,
}

/// One dispatcher, as `status --json` lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatcherJson {
    /// Its changefeed.
    pub changefeed: String,
    /// `default` or `redo`.
    pub mode: String,
    /// Its table (0 for the table trigger).
    pub table: i64,
    /// Lowercase hex.
    pub start_key: String,
    /// Lowercase hex.
    pub end_key: String,
    /// `working`, `creating`, `closing`, `waiting_merge`, `stopped`, `preparing`.
    pub state: String,
    /// Its checkpoint.
    pub checkpoint_ts: u64,
}

/// One table's whole key range.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableJson {
    /// The table.
    pub id: i64,
    /// Lowercase hex.
    pub start_key: String,
    /// Lowercase hex.
    pub end_key: String,
}

/// A maintainer running on the node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintainerJson {
    /// Its changefeed.
    pub changefeed: String,
    /// Its epoch.
    pub epoch: u64,
    /// `bootstrapping`, `running` or `removing`.
    pub lifecycle: String,
    /// The default mode's committed checkpoint.
    pub checkpoint_ts: u64,
    /// The redo mode's, when it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redo_checkpoint_ts: Option<u64>,
    /// Operators in flight.
    pub operators_in_flight: usize,
    /// Stored span requests not admitted yet (after a failover, until the next look).
    #[serde(default)]
    pub requests_waiting: usize,
    /// Its live tables.
    pub tables: Vec<TableJson>,
}

/// Lowercase hex of a key.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The contract's word for a mode.
pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Default => "default",
        Mode::Redo => "redo",
    }
}

/// The mode a word names.
pub fn mode_of(word: &str) -> Option<Mode> {
    match word {
        "default" => Some(Mode::Default),
        "redo" => Some(Mode::Redo),
        _ => None,
    }
}

/// The contract's word for a dispatcher state.
pub fn state_name(state: ComponentState) -> &'static str {
    match state {
        ComponentState::Working => "working",
        ComponentState::Stopped | ComponentState::Removed => "stopped",
        ComponentState::Initializing => "creating",
        ComponentState::Preparing | ComponentState::MergeReady => "preparing",
        ComponentState::WaitingMerge => "waiting_merge",
    }
}

impl DispatcherJson {
    /// One hosted dispatcher.
    pub fn of(changefeed: &ChangefeedId, mode: Mode, d: &HostedDispatcher) -> Self {
        DispatcherJson {
            changefeed: changefeed.name.clone(),
            mode: mode_name(mode).into(),
            table: d.span.table_id,
            start_key: hex(d.span.start_key.as_bytes()),
            end_key: hex(d.span.end_key.as_bytes()),
            state: state_name(d.state).into(),
            checkpoint_ts: d.checkpoint_ts,
        }
    }
}

impl MaintainerJson {
    /// One hosted maintainer.
    pub fn of(m: &MaintainerReport) -> Self {
        let of_mode = |mode| m.checkpoints.iter().find(|(md, _)| *md == mode).map(|(_, ts)| *ts);
        MaintainerJson {
            changefeed: m.changefeed.name.clone(),
            epoch: m.epoch.0,
            lifecycle: match m.lifecycle {
                Lifecycle::Bootstrapping => "bootstrapping",
                Lifecycle::Running => "running",
                Lifecycle::Removing => "removing",
            }
            .into(),
            checkpoint_ts: of_mode(Mode::Default).unwrap_or(0),
            redo_checkpoint_ts: of_mode(Mode::Redo),
            operators_in_flight: m.operators,
            requests_waiting: 0,
            tables: m
                .tables
                .iter()
                .map(|t| TableJson {
                    id: t.table_id,
                    start_key: hex(t.start_key.as_bytes()),
                    end_key: hex(t.end_key.as_bytes()),
                })
                .collect(),
        }
    }
}

/// How long a call waits for the node's answer.
pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Largest changefeed a `create` may ask for: tables, spans per table, spans in all.
pub const MAX_TABLES: i64 = 100_000;
/// See [`MAX_TABLES`].
pub const MAX_SPANS_PER_TABLE: usize = 1_000;
/// See [`MAX_TABLES`].
pub const MAX_SPANS: i64 = 1_000_000;
/// Most parts a split may cut a span into.
pub const MAX_SPLIT: usize = 1_000;

/// Whether `name` may name a changefeed: 1 to 128 of `A-Z a-z 0-9 _ - .` (it is a key segment
/// in etcd, so no `/`).
pub fn valid_name(name: &str) -> bool {
    (1..=128).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// A call handed to the node's roles, with where to answer.
pub type Call = (AdminCall, oneshot::Sender<AdminAnswer>);

/// The gRPC face of the admin calls: each goes to the node's roles and waits for its answer.
pub struct Admin {
    calls: mpsc::Sender<Call>,
}

impl Admin {
    /// The service, handing calls to `calls`.
    pub fn service(calls: mpsc::Sender<Call>) -> AdminServiceServer<Admin> {
        AdminServiceServer::new(Admin { calls })
    }
}

#[tonic::async_trait]
impl AdminService for Admin {
    async fn call(&self, request: Request<AdminRequest>) -> Result<Response<AdminReply>, Status> {
        let call: AdminCall = serde_json::from_str(&request.into_inner().json)
            .map_err(|e| Status::invalid_argument(format!("not an admin call: {e}")))?;
        let (tx, rx) = oneshot::channel();
        self.calls.send((call, tx)).await.map_err(|_| Status::unavailable("the node is stopping"))?;
        let answer = match tokio::time::timeout(CALL_TIMEOUT, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => return Err(Status::unavailable("the node stopped before answering")),
            Err(_) => return Err(Status::deadline_exceeded("the node did not answer in time")),
        };
        let json = serde_json::to_string(&answer).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(AdminReply { json }))
    }
}

/// Calls node `address` (`host:port`) within `timeout`.
pub async fn call(
    address: &str,
    request: &AdminCall,
    timeout: std::time::Duration,
) -> Result<AdminAnswer, String> {
    use crate::transport::pb::admin_service_client::AdminServiceClient;
    let work = async {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| format!("bad address {address}: {e}"))?
            .connect_timeout(timeout);
        let channel = endpoint.connect().await.map_err(|e| format!("cannot reach {address}: {e}"))?;
        let json = serde_json::to_string(request).map_err(|e| e.to_string())?;
        let reply = AdminServiceClient::new(channel)
            .max_decoding_message_size(256 << 20)
            .call(AdminRequest { json })
            .await
            .map_err(|e| format!("{address}: {}", e.message()))?;
        serde_json::from_str(&reply.into_inner().json).map_err(|e| format!("{address}: bad answer: {e}"))
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| format!("{address} did not answer in time"))?
}
