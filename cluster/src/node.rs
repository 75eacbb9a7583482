//! One node process: the library's [`NodeHost`] (node core, maintainer manager, coordinator while
//! it leads) owned by one task, the roles loop, fed by the transport's inbox, the cluster view
//! watched in etcd, the election, the coordinator's store and the admin calls.
//!
//! | rule | |
//! |---|---|
//! | ready | listening, registered under its lease, then `node ID ready on HOST:PORT` |
//! | K8 fence | every tick and every send first checks the lease deadline; once it passed, or the keep-alive learnt the lease is gone, the host is fenced, nothing more is sent, and the process exits 3 |
//! | election | campaigns only while registered and ALIVE (K9, the reference's H16), and again after losing; the leader is read from the watched election keys, not polled (H5) |
//! | store | one store per won election, its requests run in order and answered back into the host; a request of an older leadership is answered `Deposed` |
//! | membership | the watched registrations: a new incarnation under a known id is a leave and a join; peers of the message center follow |
//! | stop | SIGTERM or SIGINT: resign, revoke the lease (registration and election key go at once), exit 0 |

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dispatcher_core::coordinator::{Member, MetaError, MetaReply, MetaRequest, Request};
use dispatcher_core::host::{
    DispatcherDriver, HostConfig, HostEvent, HostOutput, Leader, NodeHost, OperationState, SpanOperation,
    SpanRequest, SyntheticDefinition, SyntheticFactory,
};
use dispatcher_core::ids::{ChangefeedId, DispatcherId, Mode, NodeId, Ts};
use dispatcher_core::maintainer::Output as MaintainerOutput;
use dispatcher_core::messages::{MessageKind, NodeLiveness};
use dispatcher_core::span::TableSpan;
use tokio::sync::{mpsc, oneshot, watch};

use crate::admin::{
    self, AdminAnswer, AdminCall, Call, CoordinatorStatus, DispatcherJson, FeedJson, MaintainerJson,
    NodeStatus,
};
use crate::membership::{self, Capture, ClusterView};
use crate::meta::{Keys, Session, SessionError};
use crate::store::{campaign, EtcdStore, Leadership};
use crate::transport::MessageCenter;

/// How often the host ticks.
pub const TICK: Duration = Duration::from_millis(100);

/// A node process's settings.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// Its id.
    pub id: NodeId,
    /// The gRPC address to listen on.
    pub listen: String,
    /// etcd's client URLs.
    pub etcd: Vec<String>,
    /// The cluster's name in etcd.
    pub cluster: String,
    /// The session's lease TTL in seconds.
    pub lease_ttl_s: i64,
    /// Where to serve Prometheus text, if anywhere.
    pub metrics: Option<String>,
}

/// How a node process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Asked to stop; everything resigned (exit 0).
    Stopped,
    /// Its lease could not be proven: fenced (exit 3).
    Fenced,
}

/// Why a node could not start (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listen address.
    #[error("cannot listen on {0}: {1}")]
    Listen(String, std::io::Error),
    /// etcd.
    #[error("etcd: {0}")]
    Etcd(String),
    /// Another live process holds the id.
    #[error("node {0} is already running (its registration is live)")]
    Duplicate(NodeId),
}

/// The synthetic dispatchers of a real process: replicated up to the wall clock's milliseconds
/// since the Unix epoch.
struct WallClock;

fn unix_ms() -> Ts {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as Ts)
}

impl DispatcherDriver for WallClock {
    fn open(
        &mut self,
        _: &ChangefeedId,
        _: Mode,
        _: DispatcherId,
        _: &TableSpan,
        _: Ts,
    ) -> Result<(), String> {
        Ok(())
    }

    fn progress(&mut self, _: &ChangefeedId, _: Mode, _: DispatcherId, _: u64) -> Ts {
        unix_ms()
    }

    fn close(&mut self, _: &ChangefeedId, _: Mode, _: DispatcherId, _: u64) -> Ts {
        unix_ms()
    }
}

/// Runs a node until it is asked to stop (`stop` resolves) or fences itself. `ready` is called
/// once it listens and is registered, with the address it listens on.
pub async fn run(
    opts: NodeOptions,
    ready: impl FnOnce(&str),
    stop: impl std::future::Future<Output = ()>,
) -> Result<Exit, StartError> {
    let listener = tokio::net::TcpListener::bind(&opts.listen)
        .await
        .map_err(|e| StartError::Listen(opts.listen.clone(), e))?;
    let address = listener.local_addr().map_err(|e| StartError::Listen(opts.listen.clone(), e))?.to_string();
    let metrics = match &opts.metrics {
        Some(addr) => {
            Some(tokio::net::TcpListener::bind(addr).await.map_err(|e| StartError::Listen(addr.clone(), e))?)
        }
        None => None,
    };
    let keys = Keys::new(&opts.cluster);
    let capture = serde_json::to_string(&Capture { id: opts.id.to_string(), address: address.clone() })
        .unwrap_or_default();
    let start = Session::start(&opts.etcd, &keys, &opts.id, &capture, opts.lease_ttl_s);
    let session = match tokio::time::timeout(Duration::from_secs(10), start).await {
        Err(_) => {
            return Err(StartError::Etcd(format!("no answer from {} within 10 s", opts.etcd.join(","))))
        }
        Ok(Err(SessionError::Duplicate(id))) => return Err(StartError::Duplicate(id)),
        Ok(Err(e)) => return Err(StartError::Etcd(e.to_string())),
        Ok(Ok(session)) => Arc::new(session),
    };
    let (center, inbox) = MessageCenter::new(opts.id.clone(), session.incarnation());
    let gate = session.clone();
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stopping.clone();
    // Closed by the fence, and before the lease is revoked on a stop.
    center.set_gate(move || gate.valid() && !stopped.load(std::sync::atomic::Ordering::Acquire));
    let (calls_tx, calls) = mpsc::channel(64);
    let calls_metrics = calls_tx.clone();
    let (server_stop_tx, server_stop) = oneshot::channel::<()>();
    let server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(crate::transport::KEEP_ALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(crate::transport::KEEP_ALIVE_TIMEOUT))
        .add_service(center.service())
        .add_service(admin::Admin::service(calls_tx))
        .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), async {
            let _ = server_stop.await;
        });
    let server = tokio::spawn(server);
    if let Some(listener) = metrics {
        tokio::spawn(crate::metrics::serve(listener, calls_metrics));
    }
    let (view_tx, view) = watch::channel(ClusterView::default());
    tokio::spawn(membership::follow(session.client(), keys.clone(), view_tx));
    let (alive_tx, alive) = watch::channel(true);
    let (won_tx, won) = mpsc::channel(4);
    let campaigner =
        tokio::spawn(campaigner(session.clone(), keys.clone(), opts.id.clone(), view.clone(), alive, won_tx));
    ready(&address);
    tracing::info!(node = %opts.id, %address, incarnation = session.incarnation(), "registered and listening");

    let host = NodeHost::new(
        opts.id.clone(),
        session.incarnation(),
        HostConfig { redo: true, ..HostConfig::default() },
        Box::new(SyntheticFactory),
        Box::new(WallClock),
    );
    let (meta_tx, meta) = mpsc::unbounded_channel();
    let (internal_tx, internal) = mpsc::unbounded_channel();
    let mut roles = Roles {
        host,
        session: session.clone(),
        center,
        cluster: opts.cluster.clone(),
        started: Instant::now(),
        view,
        peers: BTreeMap::new(),
        lead: None,
        store: None,
        meta_tx,
        alive: alive_tx,
        pending: HashMap::new(),
        next_call: 1,
        boots: HashMap::new(),
        heartbeats: HashMap::new(),
        dropped: BTreeMap::new(),
        internal: internal_tx,
        recording: HashMap::new(),
        unloaded: std::collections::BTreeSet::new(),
        coordinator_calls: std::collections::HashSet::new(),
        requests: BTreeMap::new(),
        next_reconcile: Instant::now(),
    };
    let exit = roles.run(Inputs { inbox, meta, won, calls, internal }, stop).await;
    campaigner.abort();
    match exit {
        Exit::Fenced => tracing::error!(
            node = %opts.id,
            held_back = crate::transport::Counters::get(&roles.center.counters().dropped_fenced),
            "fenced: the lease could not be proven; nothing more is sent"
        ),
        Exit::Stopped => tracing::info!(node = %opts.id, "stopping: resigning and revoking the lease"),
    }
    if exit == Exit::Stopped {
        roles.host.resign();
        stopping.store(true, std::sync::atomic::Ordering::Release);
        let _ = tokio::time::timeout(Duration::from_secs(3), session.revoke()).await;
    }
    let _ = server_stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    Ok(exit)
}

/// Campaigns while ALIVE; after a win, waits until the view shows another leader, then campaigns
/// again.
async fn campaigner(
    session: Arc<Session>,
    keys: Keys,
    id: NodeId,
    mut view: watch::Receiver<ClusterView>,
    mut alive: watch::Receiver<bool>,
    won: mpsc::Sender<Leadership>,
) {
    loop {
        if alive.wait_for(|a| *a).await.is_err() {
            return;
        }
        let lead = match campaign(&session, &keys, &id).await {
            Ok(lead) => lead,
            Err(_) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if won.send(lead.clone()).await.is_err() {
            return;
        }
        // Lost once a view at or past the win shows another leader, or this key re-created.
        let lost = view.wait_for(|v| {
            v.revision >= lead.seen_at
                && v.leader().is_none_or(|l| l.key != lead.key || l.version != lead.revision as u64)
        });
        if lost.await.is_err() {
            return;
        }
    }
}

type MetaAnswer = (u64, MetaReply);

/// Refusals in a row after which a stored request stepped in again is dropped (one look a
/// second).
const REFUSALS: u32 = 10;

/// Looks (one a second) in a row after which a stored request still in flight is dropped.
const IN_FLIGHT_LOOKS: u32 = 300;

/// What the roles' own helper tasks hand back.
enum Internal {
    /// A span request was stored (its key and revision) or could not be: step it in and answer.
    Recorded { id: u64, changefeed: String, op: SpanOperation, key: Result<(String, i64), String> },
    /// A maintainer that bootstrapped here: its changefeed's stored requests (`None`: the read
    /// failed, try again).
    Loaded { changefeed: String, list: Option<Vec<crate::requests::Listed>> },
}

/// A stored span request of a maintainer running here.
struct StoredRequest {
    key: String,
    /// Its create revision: the later request on overlapping spans wins.
    revision: i64,
    op: SpanOperation,
    /// Refusals in a row when stepped in again (a refusal may be momentary: a node not yet
    /// ready after a failover); dropped after [`REFUSALS`].
    refusals: u32,
    /// Looks in a row that found it in flight; dropped after [`IN_FLIGHT_LOOKS`] (an operator
    /// takes seconds; a source that stays part of a larger span never comes back).
    in_flight: u32,
}

/// The task that owns the host.
/// Everything the roles task listens to.
struct Inputs {
    inbox: mpsc::Receiver<crate::transport::Inbound>,
    meta: mpsc::UnboundedReceiver<MetaAnswer>,
    won: mpsc::Receiver<Leadership>,
    calls: mpsc::Receiver<Call>,
    internal: mpsc::UnboundedReceiver<Internal>,
}

struct Roles {
    host: NodeHost,
    session: Arc<Session>,
    center: Arc<MessageCenter>,
    cluster: String,
    started: Instant,
    view: watch::Receiver<ClusterView>,
    /// The members the message center knows: id → (incarnation, address).
    peers: BTreeMap<NodeId, (u64, String)>,
    lead: Option<Leadership>,
    store: Option<mpsc::UnboundedSender<(u64, MetaRequest)>>,
    meta_tx: mpsc::UnboundedSender<MetaAnswer>,
    alive: watch::Sender<bool>,
    pending: HashMap<u64, oneshot::Sender<AdminAnswer>>,
    next_call: u64,
    /// Maintainers hosted here by (changefeed, epoch): when first seen, and how long their
    /// bootstrap took once it ended.
    boots: HashMap<(String, u64), (Instant, Option<Duration>)>,
    /// Heartbeats to maintainers here, by sender: the last arrival and the gap before it.
    heartbeats: HashMap<NodeId, (Instant, Duration)>,
    /// Frames the host dropped, by reason.
    dropped: BTreeMap<String, u64>,
    internal: mpsc::UnboundedSender<Internal>,
    /// Span requests being stepped in, by call id: (changefeed, key, stepped in again).
    recording: HashMap<u64, (String, String, bool)>,
    /// Changefeeds whose stored requests could not be read yet.
    unloaded: std::collections::BTreeSet<String>,
    /// Calls waiting for the coordinator's answer.
    coordinator_calls: std::collections::HashSet<u64>,
    /// Stored span requests of the maintainers running here, oldest first, by changefeed.
    requests: BTreeMap<String, Vec<StoredRequest>>,
    next_reconcile: Instant,
}

impl Roles {
    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    async fn run(&mut self, inputs: Inputs, stop: impl std::future::Future<Output = ()>) -> Exit {
        let Inputs { mut inbox, mut meta, mut won, mut calls, mut internal } = inputs;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut fenced = self.session.fenced();
        tokio::pin!(stop);
        let mut added = false;
        loop {
            if !self.session.valid() || *fenced.borrow() {
                let _ = self.host.step(self.now(), HostEvent::Fenced);
                return Exit::Fenced;
            }
            let event = tokio::select! {
                _ = &mut stop => return Exit::Stopped,
                _ = fenced.changed() => continue,
                _ = tick.tick() => self.tick_event(),
                Some(m) = inbox.recv() => {
                    if m.kind == MessageKind::AddMaintainerRequest {
                        added = true;
                    }
                    if m.kind == MessageKind::HeartBeatRequest {
                        let now = Instant::now();
                        let gap = self.heartbeats.get(&m.from).map_or(Duration::ZERO, |(last, _)| now - *last);
                        self.heartbeats.insert(m.from.clone(), (now, gap));
                    }
                    HostEvent::Received { from: m.from, incarnation: m.incarnation, kind: m.kind, bytes: m.payload }
                }
                Some((generation, reply)) = meta.recv() => HostEvent::Meta { generation, reply },
                Some(lead) = won.recv() => {
                    self.lead_with(lead);
                    continue;
                }
                Some((call, answer)) = calls.recv() => match self.call(call, answer) {
                    Some(event) => event,
                    None => continue,
                },
                Some(done) = internal.recv() => match self.internal(done) {
                    Some(event) => event,
                    None => continue,
                },
            };
            let outputs = self.host.step(self.now(), event);
            self.apply(outputs);
            if self.host.coordinator().is_none() && !self.coordinator_calls.is_empty() {
                // Its requests will never be answered by it: say so (the command asks again).
                for id in std::mem::take(&mut self.coordinator_calls) {
                    if let Some(answer) = self.pending.remove(&id) {
                        let error = Some("not the coordinator any more; ask again".to_owned());
                        let _ = answer.send(AdminAnswer { error, ..AdminAnswer::default() });
                    }
                }
            }
            if std::mem::take(&mut added) {
                self.follow_boots();
            }
            let _ = self.alive.send_if_modified(|a| {
                let now_alive = self.host.manager().liveness() == NodeLiveness::Alive;
                std::mem::replace(a, now_alive) != now_alive
            });
        }
    }

    fn tick_event(&mut self) -> HostEvent {
        self.follow_boots();
        if Instant::now() >= self.next_reconcile {
            self.next_reconcile = Instant::now() + Duration::from_secs(1);
            self.reconcile();
        }
        let view = self.view.borrow().clone();
        self.follow_peers(&view);
        let members = view
            .members
            .iter()
            .map(|(node, r)| Member { node: node.clone(), incarnation: r.incarnation })
            .collect();
        let leader = view.leader().map(|l| Leader {
            mine: self.lead.as_ref().is_some_and(|w| w.key == l.key && w.revision as u64 == l.version),
            node: l.node,
            version: l.version,
        });
        HostEvent::Tick { members, leader }
    }

    /// Starts the bootstrap clock of maintainers admitted since the last look, and forgets the
    /// ones no longer hosted.
    fn follow_boots(&mut self) {
        let now = Instant::now();
        let statuses = self.host.manager().statuses();
        self.boots.retain(|(cf, epoch), _| {
            statuses.iter().any(|s| s.changefeed.name == *cf && s.epoch.0 == *epoch)
        });
        for st in statuses {
            self.boots.entry((st.changefeed.name.clone(), st.epoch.0)).or_insert((now, None));
        }
    }

    fn follow_peers(&mut self, view: &ClusterView) {
        let me = self.host.id().clone();
        let gone: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(id, (inc, _))| view.members.get(*id).is_none_or(|r| r.incarnation != *inc))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            if let Some((incarnation, _)) = self.peers.remove(&id) {
                tracing::info!(node = %id, incarnation, "member left");
            }
            self.heartbeats.remove(&id);
            self.center.remove_peer(&id);
        }
        for (id, r) in &view.members {
            if *id != me && !self.peers.contains_key(id) {
                tracing::info!(node = %id, incarnation = r.incarnation, address = %r.address, "member joined");
                self.peers.insert(id.clone(), (r.incarnation, r.address.clone()));
                self.center.add_peer(id.clone(), r.address.clone());
            }
        }
    }

    /// This process won an election: a store for it, whose answers come back as meta events.
    fn lead_with(&mut self, lead: Leadership) {
        if self.lead.as_ref().is_some_and(|l| l.key == lead.key && l.revision == lead.revision) {
            return; // the same win reported again: one store per win keeps its requests in order
        }
        let (tx, mut requests) = mpsc::unbounded_channel::<(u64, MetaRequest)>();
        let mut store = EtcdStore::new(self.session.client(), &self.cluster, lead.clone());
        let answers = self.meta_tx.clone();
        let session = self.session.clone();
        tokio::spawn(async move {
            while let Some((generation, request)) = requests.recv().await {
                let outcome =
                    if session.valid() { store.run(request.op).await } else { Err(MetaError::Deposed) };
                if answers.send((generation, MetaReply { ticket: request.ticket, outcome })).is_err() {
                    return;
                }
            }
        });
        tracing::info!(version = lead.revision, "won the coordinator election");
        self.lead = Some(lead);
        self.store = Some(tx);
    }

    fn apply(&mut self, outputs: Vec<HostOutput>) {
        for output in outputs {
            match output {
                HostOutput::Send { to, message } => {
                    if !self.session.valid() {
                        return; // K8: the next turn fences
                    }
                    let (kind, bytes) = message.encode();
                    self.center.send(&to, kind, bytes);
                }
                HostOutput::Meta { generation, version, request } => {
                    let current = self.lead.as_ref().is_some_and(|l| l.revision as u64 == version);
                    match (&self.store, current) {
                        (Some(store), true) => {
                            let _ = store.send((generation, request));
                        }
                        _ => {
                            let reply =
                                MetaReply { ticket: request.ticket, outcome: Err(MetaError::Deposed) };
                            let _ = self.meta_tx.send((generation, reply));
                        }
                    }
                }
                HostOutput::Answered { id, result } => {
                    self.coordinator_calls.remove(&id);
                    if let Some((cf, key, again)) = self.recording.remove(&id) {
                        self.recorded(cf, key, again, result.as_ref().err());
                    }
                    if let Some(answer) = self.pending.remove(&id) {
                        let _ = answer.send(AdminAnswer { error: result.err(), ..AdminAnswer::default() });
                    }
                }
                HostOutput::Deposed { version } => {
                    tracing::warn!(version, "deposed: the store refused a write of this coordinator");
                    if self.lead.as_ref().is_some_and(|l| l.revision as u64 == version) {
                        self.lead = None;
                        self.store = None;
                    }
                }
                HostOutput::Leading { version } => tracing::info!(version, "coordinating"),
                HostOutput::Dropped { kind, reason } => {
                    tracing::debug!(%kind, %reason, "frame dropped");
                    // Labelled by kind and a fixed cause: the reason's text carries wire values.
                    let cause = if reason == "not the coordinator" { reason.as_str() } else { "undecodable" };
                    *self.dropped.entry(format!("{kind}: {cause}")).or_default() += 1;
                }
                HostOutput::Notice { changefeed, epoch, notice } => {
                    if notice == MaintainerOutput::Bootstrapped {
                        if let Some((since, took)) = self.boots.get_mut(&(changefeed.name.clone(), epoch.0)) {
                            *took = Some(since.elapsed());
                        }
                        self.load_requests(changefeed.name.clone());
                    }
                    log_notice(&changefeed.name, epoch.0, &notice)
                }
                HostOutput::Trace(_) => {}
            }
        }
    }

    /// An admin call: answered at once (status, bad input), or stepped into the host and answered
    /// by its `Answered` output.
    fn call(&mut self, call: AdminCall, answer: oneshot::Sender<AdminAnswer>) -> Option<HostEvent> {
        let refuse = |answer: oneshot::Sender<AdminAnswer>, why: String| {
            let _ = answer.send(AdminAnswer { error: Some(why), ..AdminAnswer::default() });
            None
        };
        let id = self.next_call;
        self.next_call += 1;
        if !matches!(call, AdminCall::Status | AdminCall::Metrics) {
            tracing::info!(?call, "admin request");
        }
        let event = match call {
            AdminCall::Status => {
                let _ = answer.send(AdminAnswer { status: Some(self.status()), ..AdminAnswer::default() });
                return None;
            }
            AdminCall::Metrics => {
                let _ = answer.send(AdminAnswer { metrics: Some(self.metrics()), ..AdminAnswer::default() });
                return None;
            }
            AdminCall::Create { name, tables, spans_per_table, redo } => {
                if !admin::valid_name(&name) {
                    return refuse(
                        answer,
                        format!("{name:?} is not a changefeed name (1 to 128 of A-Z a-z 0-9 _ - .)"),
                    );
                }
                let spans = tables.saturating_mul(spans_per_table as i64);
                if !(1..=admin::MAX_TABLES).contains(&tables)
                    || !(1..=admin::MAX_SPANS_PER_TABLE).contains(&spans_per_table)
                    || spans > admin::MAX_SPANS
                {
                    return refuse(
                        answer,
                        format!(
                            "tables must be 1 to {}, spans per table 1 to {}, and {} spans in all at most",
                            admin::MAX_TABLES,
                            admin::MAX_SPANS_PER_TABLE,
                            admin::MAX_SPANS
                        ),
                    );
                }
                let def = SyntheticDefinition { tables, spans_per_table, redo };
                let now = unix_ms();
                let changefeed =
                    ChangefeedId { high: now, low: fnv(&name), name, keyspace: "default".into() };
                HostEvent::Request {
                    id,
                    request: Request::Create { id: changefeed, config: def.encode(), start_ts: now },
                }
            }
            AdminCall::Pause { name } => HostEvent::Request { id, request: Request::Pause { name } },
            AdminCall::Resume { name } => HostEvent::Request { id, request: Request::Resume { name } },
            AdminCall::Remove { name } => HostEvent::Request { id, request: Request::Remove { name } },
            AdminCall::MoveMaintainer { name, to } => {
                HostEvent::Request { id, request: Request::MoveMaintainer { name, to: NodeId::new(&to) } }
            }
            AdminCall::Move { name, table, span, to, mode } => {
                let request = SpanRequest::Move { table, index: span, to: NodeId::new(&to) };
                return self.record(id, name, &mode, &request, answer);
            }
            AdminCall::Split { name, table, span, into, mode } => {
                if !(2..=admin::MAX_SPLIT).contains(&into) {
                    return refuse(answer, format!("a span is split into 2 to {} parts", admin::MAX_SPLIT));
                }
                let request = SpanRequest::Split { table, index: span, into };
                return self.record(id, name, &mode, &request, answer);
            }
            AdminCall::Merge { name, table, spans, mode } => {
                let request = SpanRequest::Merge { table, indexes: spans };
                return self.record(id, name, &mode, &request, answer);
            }
        };
        self.pending.insert(id, answer);
        self.coordinator_calls.insert(id);
        Some(event)
    }

    /// A span request: resolved on the running maintainer's view, stored in etcd, then stepped
    /// in (`Internal::Recorded`); answered once admitted, so an accepted request outlives a
    /// maintainer change.
    fn record(
        &mut self,
        id: u64,
        changefeed: String,
        mode: &str,
        request: &SpanRequest,
        answer: oneshot::Sender<AdminAnswer>,
    ) -> Option<HostEvent> {
        let resolved = admin::mode_of(mode)
            .ok_or_else(|| format!("unknown mode {mode}"))
            .and_then(|mode| self.host.resolve(&changefeed, mode, request));
        let op = match resolved {
            Ok(op) => op,
            Err(why) => {
                let _ = answer.send(AdminAnswer { error: Some(why), ..AdminAnswer::default() });
                return None;
            }
        };
        self.pending.insert(id, answer);
        let (mut client, cluster, done) =
            (self.session.client(), self.cluster.clone(), self.internal.clone());
        tokio::spawn(async move {
            let key = crate::requests::put(&mut client, &cluster, &changefeed, &op).await;
            let _ = done.send(Internal::Recorded { id, changefeed, op, key });
        });
        None
    }

    fn internal(&mut self, done: Internal) -> Option<HostEvent> {
        match done {
            Internal::Recorded { id, changefeed, op, key } => match key {
                Ok((key, revision)) => {
                    self.recording.insert(id, (changefeed.clone(), key.clone(), false));
                    // Kept now: `recorded` drops it again if the maintainer refuses it.
                    let stored = StoredRequest { key, revision, op: op.clone(), refusals: 0, in_flight: 0 };
                    self.requests.entry(changefeed.clone()).or_default().push(stored);
                    Some(HostEvent::Operate { id, changefeed, operation: op })
                }
                Err(why) => {
                    if let Some(answer) = self.pending.remove(&id) {
                        let _ = answer.send(AdminAnswer { error: Some(why), ..AdminAnswer::default() });
                    }
                    None
                }
            },
            Internal::Loaded { changefeed, list: None } => {
                self.unloaded.insert(changefeed);
                None
            }
            Internal::Loaded { changefeed, list: Some(list) } => {
                // Merged by key: a request recorded here while the list was read stays.
                let known = self.requests.entry(changefeed.clone()).or_default();
                let mut unreadable = Vec::new();
                for (key, revision, op) in list {
                    match op {
                        _ if known.iter().any(|r| r.key == key) => {}
                        Some(op) => {
                            known.push(StoredRequest { key, revision, op, refusals: 0, in_flight: 0 })
                        }
                        None => unreadable.push(key),
                    }
                }
                known.sort_by_key(|r| r.revision);
                tracing::info!(changefeed, requests = known.len(), "stored span requests loaded");
                for key in unreadable {
                    self.forget(key);
                }
                self.reconcile();
                None
            }
        }
    }

    /// A stored request was admitted (it supersedes older ones on overlapping spans) or refused
    /// (a user's first one goes at once; one stepped in again after [`REFUSALS`] in a row).
    fn recorded(&mut self, changefeed: String, key: String, again: bool, refusal: Option<&String>) {
        let Some(list) = self.requests.get_mut(&changefeed) else { return };
        let Some(at) = list.iter().position(|r| r.key == key) else { return };
        let mut gone = Vec::new();
        match refusal {
            None => {
                list[at].refusals = 0;
                let (revision, op) = (list[at].revision, list[at].op.clone());
                list.retain(|r| {
                    let superseded = r.revision < revision && crate::requests::overlap(&r.op, &op);
                    if superseded {
                        gone.push(r.key.clone());
                    }
                    !superseded
                });
            }
            Some(why) => {
                list[at].refusals += 1;
                if !again || list[at].refusals >= REFUSALS {
                    let dropped = list.remove(at);
                    if again {
                        tracing::warn!(changefeed, op = ?dropped.op, why, "a stored span request kept being refused; dropped");
                    }
                    gone.push(dropped.key);
                }
            }
        }
        for key in gone {
            self.forget(key);
        }
    }

    fn load_requests(&mut self, changefeed: String) {
        self.unloaded.remove(&changefeed);
        let (mut client, cluster, done) =
            (self.session.client(), self.cluster.clone(), self.internal.clone());
        tokio::spawn(async move {
            let list = crate::requests::list(&mut client, &cluster, &changefeed).await.ok();
            let _ = done.send(Internal::Loaded { changefeed, list });
        });
    }

    fn forget(&self, key: String) {
        let mut client = self.session.client();
        tokio::spawn(async move {
            let _ = client.delete(key, None).await;
        });
    }

    /// Steps in again every stored request still waiting, drops those done, forgets the
    /// changefeeds whose maintainer no longer runs here, and reads again the lists that failed.
    fn reconcile(&mut self) {
        let mut again = Vec::new();
        let mut gone = Vec::new();
        let host = &self.host;
        self.unloaded.retain(|cf| host.runs_maintainer_of(cf));
        for cf in self.unloaded.clone() {
            self.load_requests(cf);
        }
        let host = &self.host;
        self.requests.retain(|cf, list| {
            if !host.runs_maintainer_of(cf) {
                return false;
            }
            list.retain_mut(|r| match host.operation_state(cf, &r.op) {
                None => true,
                Some(OperationState::InFlight) => {
                    r.in_flight += 1;
                    if r.in_flight < IN_FLIGHT_LOOKS {
                        return true;
                    }
                    tracing::warn!(changefeed = cf, op = ?r.op, "a stored span request stayed in flight; dropped");
                    gone.push(r.key.clone());
                    false
                }
                Some(OperationState::Done) => {
                    gone.push(r.key.clone());
                    false
                }
                Some(OperationState::Waiting) => {
                    r.in_flight = 0;
                    again.push((cf.clone(), r.key.clone(), r.op.clone()));
                    true
                }
            });
            true
        });
        for key in gone {
            self.forget(key);
        }
        for (cf, key, op) in again {
            let id = self.next_call;
            self.next_call += 1;
            self.recording.insert(id, (cf.clone(), key, true));
            tracing::info!(changefeed = cf, ?op, "stepping a stored span request in again");
            let outputs =
                self.host.step(self.now(), HostEvent::Operate { id, changefeed: cf, operation: op });
            self.apply(outputs);
        }
    }

    /// Stored span requests of `changefeed` not yet admitted (in flight ones count as operators).
    fn waiting(&self, changefeed: &str) -> usize {
        self.requests.get(changefeed).map_or(0, |list| {
            list.iter()
                .filter(|r| self.host.operation_state(changefeed, &r.op) == Some(OperationState::Waiting))
                .count()
        })
    }

    fn metrics(&self) -> String {
        use crate::transport::Counters;
        let mut t = crate::metrics::Text::default();
        let host = &self.host;
        t.sample("dc_lease_valid", &[], u8::from(self.session.valid()));
        t.sample("dc_lease_remaining_seconds", &[], self.session.remaining().as_secs_f64());
        t.sample("dc_coordinator", &[], u8::from(host.coordinator().is_some()));
        if let Some(co) = host.coordinator() {
            t.sample("dc_coordinator_version", &[], co.version().0);
        }
        let mut dispatchers: BTreeMap<(String, &str, &str), usize> = BTreeMap::new();
        for (cf, mode, _, d) in host.dispatchers() {
            *dispatchers
                .entry((cf.name.clone(), admin::mode_name(mode), admin::state_name(d.state)))
                .or_default() += 1;
        }
        for ((cf, mode, state), n) in &dispatchers {
            t.sample("dc_dispatchers", &[("changefeed", cf), ("mode", mode), ("state", state)], n);
        }
        let now = unix_ms();
        for m in host.maintainers() {
            let cf = m.changefeed.name.as_str();
            for (kind, n) in &m.operators_by_kind {
                let kind = format!("{kind:?}").to_lowercase();
                t.sample("dc_maintainer_operators_in_flight", &[("changefeed", cf), ("kind", &kind)], n);
            }
            for (mode, ts) in &m.checkpoints {
                let labels = [("changefeed", cf), ("mode", admin::mode_name(*mode))];
                t.sample("dc_checkpoint_ts", &labels, ts);
                t.sample("dc_checkpoint_lag_seconds", &labels, now.saturating_sub(*ts) as f64 / 1000.0);
            }
        }
        for f in host.feeds() {
            t.sample("dc_persisted_checkpoint_ts", &[("changefeed", &f.name)], f.persisted_checkpoint_ts);
            if let Some(op) = f.operator {
                t.sample("dc_coordinator_operators_in_flight", &[("changefeed", &f.name), ("kind", op)], 1);
            }
        }
        for ((cf, epoch), (_, took)) in &self.boots {
            if let Some(took) = took {
                let epoch = epoch.to_string();
                t.sample(
                    "dc_bootstrap_duration_seconds",
                    &[("changefeed", cf), ("epoch", &epoch)],
                    took.as_secs_f64(),
                );
            }
        }
        for (from, (_, gap)) in &self.heartbeats {
            t.sample("dc_heartbeat_interval_seconds", &[("from", from.as_str())], gap.as_secs_f64());
        }
        let c = self.center.counters();
        for (event, counter) in [
            ("queued", &c.queued),
            ("sent", &c.sent),
            ("received", &c.received),
            ("dropped_queue_full", &c.dropped_full),
            ("dropped_no_peer", &c.dropped_no_peer),
            ("dropped_unknown_type", &c.dropped_unknown),
            ("dropped_fenced", &c.dropped_fenced),
        ] {
            t.sample("dc_messages_total", &[("event", event)], Counters::get(counter));
        }
        t.sample("dc_frames_sent_total", &[], Counters::get(&c.frames));
        t.sample("dc_reconnects_total", &[], Counters::get(&c.reconnects));
        t.sample("dc_streams_refused_total", &[], Counters::get(&c.refused_streams));
        for (reason, n) in &self.dropped {
            t.sample("dc_frames_dropped_total", &[("reason", reason)], n);
        }
        t.finish()
    }

    fn status(&self) -> NodeStatus {
        let host = &self.host;
        let coordinator = host.coordinator().map(|co| CoordinatorStatus {
            version: co.version().0 as u64,
            initialized: co.initialized(),
            changefeeds: host
                .feeds()
                .into_iter()
                .map(|f| FeedJson {
                    name: f.name,
                    state: f.state.into(),
                    epoch: f.epoch.0,
                    node: match f.placement {
                        dispatcher_core::coordinator::Placement::Bound { node, .. } => Some(node.to_string()),
                        dispatcher_core::coordinator::Placement::Absent => None,
                    },
                    checkpoint_ts: f.checkpoint_ts,
                    persisted_checkpoint_ts: f.persisted_checkpoint_ts,
                    operator: f.operator.map(str::to_owned),
                })
                .collect(),
        });
        NodeStatus {
            id: host.id().to_string(),
            incarnation: self.session.incarnation(),
            liveness: format!("{:?}", host.manager().liveness()).to_lowercase(),
            fenced: !self.session.valid(),
            coordinator,
            dispatchers: host.dispatchers().map(|(cf, mode, _, d)| DispatcherJson::of(cf, mode, d)).collect(),
            maintainers: host
                .maintainers()
                .iter()
                .map(|m| MaintainerJson {
                    requests_waiting: self.waiting(&m.changefeed.name),
                    ..MaintainerJson::of(m)
                })
                .collect(),
        }
    }
}

/// One log line per maintainer notice worth a line: bootstraps, finished operators, operators a
/// scheduler started, refusals and node errors (checkpoint advances are metrics, not lines).
fn log_notice(changefeed: &str, epoch: u64, notice: &MaintainerOutput) {
    match notice {
        MaintainerOutput::Bootstrapped => tracing::info!(changefeed, epoch, "maintainer bootstrapped"),
        MaintainerOutput::OperatorFinished { mode, id, kind, outcome } => {
            tracing::debug!(changefeed, epoch, ?mode, span = ?id, ?kind, ?outcome, "operator finished")
        }
        MaintainerOutput::Refused { request, reason } => {
            tracing::warn!(changefeed, epoch, request, reason, "request refused")
        }
        MaintainerOutput::NodeError { node, error } => {
            tracing::warn!(changefeed, epoch, node = %node, code = error.code, message = error.message, "node error")
        }
        MaintainerOutput::SchedulerStarted { mode, id, kind, span, reason } => {
            tracing::info!(changefeed, epoch, ?mode, dispatcher = ?id, span = ?span, ?kind, reason, "scheduler started an operator")
        }
        MaintainerOutput::CheckpointAdvanced { .. } | MaintainerOutput::Send { .. } => {}
    }
}

/// A stable 64-bit hash of a name (FNV-1a), the low half of a new changefeed's id.
fn fnv(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}
