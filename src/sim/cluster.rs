//! The coordinator world: every level of the cluster at once, stepped deterministically from one
//! seed. Each node runs a real [`MaintainerManager`] (hosting real maintainers) and a real
//! [`Orchestrator`]; the elected node also runs the real [`Coordinator`]. A simulated etcd keeps
//! sessions under leases in simulated time, elects the live session with the lowest create
//! revision, and runs the coordinator's store requests as transactions guarded by its election
//! key. Every message crosses the wire encoders and decoders with a random delay, and some are
//! lost.
//!
//! Faults, drawn from the seed during the fault window: `kill -9` of a node (it restarts a few
//! seconds later as a new session), `SIGSTOP` past the lease (on waking it finds its lease gone and
//! fences itself before doing anything, then restarts), and users' requests (create, pause,
//! resume, remove, move a maintainer). Dispatchers start and close at once; merges and the
//! barrier are the single-changefeed world's business.
//!
//! Checked after every event: K1 (store writes come from one coordinator at a time, in version
//! order), K3 (an add carries an epoch the store already has), K4 (an epoch is added on one node
//! only), K11 (a stored checkpoint never goes down). Checked once the faults stop and the
//! cluster settled: every running changefeed has exactly one maintainer, on a live node, at the
//! stored epoch and bootstrapped, and its tables are tiled by working dispatchers on live nodes
//! with no overlap; paused and removed changefeeds run nothing anywhere; checkpoints advanced.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use super::rng::Rng;
use crate::coordinator::{
    Coordinator, CoordinatorConfig, FeedState, Member, MetaError, MetaOp, MetaReply, MetaRequest, MetaValue,
    Progress, Request, StoredChangefeed,
};
use crate::host::{
    HostConfig, HostEvent, HostOutput, Leader, NodeHost, Outbound, SyntheticDefinition, SyntheticDispatchers,
    SyntheticFactory,
};
use crate::ids::{ChangefeedId, Epoch, Mode, NodeId, Ts};
use crate::maintainer::Lifecycle;
use crate::messages::*;
use crate::mutation::Mutations;
use crate::span::TableSpan;

/// The coordinator world's shape and timers.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Nodes.
    pub nodes: usize,
    /// Changefeeds created at the start.
    pub changefeeds: usize,
    /// Tables per changefeed.
    pub tables: i64,
    /// Lease TTL of every session.
    pub ttl_ms: u64,
    /// Faults and requests happen during this window.
    pub fault_ms: u64,
    /// After it, the cluster must converge within this long.
    pub settle_ms: u64,
    /// Messages lost, in percent.
    pub loss_percent: u64,
    /// Store writes whose reply is lost (the write landed or not, half each, and the coordinator
    /// is told `Unavailable`), in percent: what an etcd restart or a cut connection does.
    pub unknown_percent: u64,
    /// On a failure, describe every node's maintainers and dispatchers in the report.
    pub explain: bool,
    /// Log every message and dispatcher change of this changefeed into the report's explanation.
    pub trace: Option<String>,
    /// Deliberate bugs in the coordinator and the node cores (see [`crate::mutation`]).
    pub mutation: Mutations,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            nodes: 3,
            changefeeds: 4,
            tables: 3,
            ttl_ms: 3_000,
            fault_ms: 30_000,
            settle_ms: 40_000,
            loss_percent: 1,
            unknown_percent: 2,
            explain: false,
            trace: None,
            mutation: Mutations::NONE,
        }
    }
}

/// What one run did and found.
#[derive(Clone, Debug, Default)]
pub struct ClusterReport {
    /// The seed.
    pub seed: u64,
    /// Events stepped.
    pub events: u64,
    /// Broken invariants, each `"K<n> at <ms>: detail"`.
    pub violations: Vec<String>,
    /// Coordinators started.
    pub elections: u64,
    /// Processes killed.
    pub crashes: u64,
    /// Processes paused past their lease (each fenced itself on waking).
    pub fences: u64,
    /// Users' requests, and how many were accepted.
    pub requests: (u64, u64),
    /// Adds the coordinators sent (first sends only).
    pub adds: u64,
    /// Simulated time at which the cluster was found converged.
    pub converged_ms: Option<u64>,
    /// With [`ClusterOptions::explain`], the state at the end of a failed run.
    pub explanation: String,
}

/// Runs one seed.
pub fn run(seed: u64, opts: &ClusterOptions) -> ClusterReport {
    let mut world = ClusterWorld::new(seed, opts.clone());
    world.run();
    world.report
}

const NODE_TICK_MS: u64 = 200;
const ETCD_TICK_MS: u64 = 50;

/// The synthetic changefeed definition: how many tables it has.
fn config(tables: i64) -> Vec<u8> {
    SyntheticDefinition::new(tables).encode()
}

fn table_count(config: &[u8]) -> Option<i64> {
    SyntheticDefinition::decode(config).map(|d| d.tables)
}

fn changefeed(i: usize) -> ChangefeedId {
    ChangefeedId { high: 1, low: i as u64 + 1, name: format!("cf{i}"), keyspace: "default".into() }
}

#[derive(Debug)]
enum Ev {
    Deliver { from: NodeId, from_inc: u64, to: NodeId, to_inc: u64, kind: MessageKind, bytes: Vec<u8> },
    MetaReply { node: NodeId, inc: u64, generation: u64, reply: MetaReply },
    NodeTick { node: NodeId, inc: u64 },
    EtcdTick,
    Restart { node: NodeId },
    Wake { node: NodeId, inc: u64 },
    Fault,
    Check,
}

struct SimNode {
    id: NodeId,
    /// Its session's create revision; 0 while down.
    inc: u64,
    paused: bool,
    /// Held while paused: deliveries and replies, replayed on waking if not fenced.
    held: Vec<Ev>,
    /// When its last keep-alive was answered (the lease holds until this + TTL at etcd).
    renewed_ms: u64,
    /// Every role of the process.
    host: NodeHost,
}

struct Etcd {
    revision: u64,
    /// Live sessions: node → (create revision, lease expiry).
    sessions: BTreeMap<NodeId, (u64, u64)>,
    feeds: BTreeMap<String, StoredChangefeed>,
    highest_write_version: u64,
}

impl Etcd {
    fn owner(&self) -> Option<(NodeId, u64)> {
        self.sessions.iter().min_by_key(|(_, (rev, _))| *rev).map(|(n, (rev, _))| (n.clone(), *rev))
    }
}

struct ClusterWorld {
    opts: ClusterOptions,
    rng: Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: Vec<Option<Ev>>,
    nodes: BTreeMap<NodeId, SimNode>,
    etcd: Etcd,
    /// K4: the node each (changefeed, epoch) was added on.
    added: BTreeMap<(String, Epoch), NodeId>,
    /// Changefeeds removed for good (their names are not reused).
    removed: BTreeSet<String>,
    /// Stored checkpoints when the faults stopped: converged means past them.
    checkpoints_at_calm: BTreeMap<String, Ts>,
    /// Consecutive checks that found the cluster converged.
    calm_checks: u32,
    next_request: u64,
    report: ClusterReport,
}

impl ClusterWorld {
    fn new(seed: u64, opts: ClusterOptions) -> Self {
        let mut w = ClusterWorld {
            rng: Rng::new(seed),
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: Vec::new(),
            nodes: BTreeMap::new(),
            etcd: Etcd {
                revision: 1,
                sessions: BTreeMap::new(),
                feeds: BTreeMap::new(),
                highest_write_version: 0,
            },
            added: BTreeMap::new(),
            removed: BTreeSet::new(),
            checkpoints_at_calm: BTreeMap::new(),
            calm_checks: 0,
            next_request: 1,
            report: ClusterReport { seed, ..ClusterReport::default() },
            opts,
        };
        for i in 0..w.opts.changefeeds {
            let id = changefeed(i);
            let stored = StoredChangefeed {
                id: id.clone(),
                config: config(w.opts.tables),
                state: FeedState::Normal,
                epoch: Epoch(0),
                checkpoint_ts: 1_000,
                progress: Progress::None,
            };
            w.etcd.feeds.insert(id.name.clone(), stored);
        }
        for i in 1..=w.opts.nodes {
            let id = NodeId::new(&format!("n{i}"));
            w.start_node(id);
        }
        w.schedule(0, Ev::EtcdTick);
        w.schedule(1_000, Ev::Fault);
        w.schedule(w.opts.fault_ms, Ev::Check);
        w
    }

    fn schedule(&mut self, after_ms: u64, ev: Ev) {
        self.seq += 1;
        self.events.push(Some(ev));
        self.queue.push(Reverse((self.now + after_ms, self.seq, self.events.len() - 1)));
    }

    fn violate(&mut self, check: &str, detail: String) {
        self.report.violations.push(format!("{check} at {} ms: {detail}", self.now));
    }

    fn run(&mut self) {
        let end = self.opts.fault_ms + self.opts.settle_ms;
        while let Some(Reverse((at, _, index))) = self.queue.pop() {
            if at > end || self.report.converged_ms.is_some() || !self.report.violations.is_empty() {
                break;
            }
            self.now = at;
            let Some(ev) = self.events[index].take() else { continue };
            self.report.events += 1;
            self.handle(ev);
        }
        if self.report.converged_ms.is_none() && self.report.violations.is_empty() {
            let why = self.unconverged().unwrap_or_else(|| "no check ran".into());
            self.violate(
                "converge",
                format!("not converged {} ms after the faults: {why}", self.opts.settle_ms),
            );
        }
        if self.opts.explain && !self.report.violations.is_empty() {
            let state = self.explain();
            self.report.explanation.push_str(&state);
        }
    }

    fn explain(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for (name, f) in &self.etcd.feeds {
            let _ = writeln!(
                out,
                "store {name}: {:?} {:?} epoch {} checkpoint {}",
                f.state, f.progress, f.epoch.0, f.checkpoint_ts
            );
        }
        for n in self.nodes.values() {
            let _ = writeln!(
                out,
                "node {} inc {} paused {} coordinator {}",
                n.id,
                n.inc,
                n.paused,
                n.host.coordinator().is_some()
            );
            for v in n.host.feeds() {
                let _ = writeln!(out, "  co {v:?}");
            }
            for st in n.host.manager().statuses() {
                let _ = writeln!(
                    out,
                    "  hosts {} epoch {} {:?} boot {}",
                    st.changefeed.name, st.epoch.0, st.state, st.bootstrap_done
                );
                if let Some(m) = n.host.manager().maintainer(&st.changefeed) {
                    if let Some(view) = m.view(Mode::Default) {
                        for r in view.spans.records() {
                            let _ = writeln!(
                                out,
                                "    span {:?} {:?} on {:?} {:?}",
                                r.span, r.state, r.node, r.component
                            );
                        }
                        let _ = writeln!(out, "    operators {}", view.operators.len());
                    }
                }
            }
            for (cf, mode, id, d) in n.host.dispatchers() {
                let _ = writeln!(out, "  dispatcher {} {mode:?} {id:?} {:?}", cf.name, d.span);
            }
            for cf in n.host.changefeeds() {
                if let Some(dm) = n.host.orchestrator().manager(cf) {
                    let _ = writeln!(out, "  dm {} owner {:?}", cf.name, dm.owner());
                }
            }
        }
        out
    }

    // ---- processes ----

    fn start_node(&mut self, id: NodeId) {
        // Registration is create-if-absent: a restarted process waits out its predecessor's lease.
        if self.etcd.sessions.contains_key(&id) {
            self.schedule(ETCD_TICK_MS, Ev::Restart { node: id });
            return;
        }
        self.etcd.revision += 1;
        let inc = self.etcd.revision;
        let config = HostConfig {
            coordinator: CoordinatorConfig { mutation: self.opts.mutation, ..CoordinatorConfig::default() },
            mutation: self.opts.mutation,
            trace: self.opts.trace.clone(),
            ..HostConfig::default()
        };
        let driver = SyntheticDispatchers { origin: upstream(0) };
        let host = NodeHost::new(id.clone(), inc, config, Box::new(SyntheticFactory), Box::new(driver));
        let node =
            SimNode { id: id.clone(), inc, paused: false, held: Vec::new(), renewed_ms: self.now, host };
        self.nodes.insert(id.clone(), node);
        self.etcd.sessions.insert(id.clone(), (inc, self.now + self.opts.ttl_ms));
        let offset = self.rng.range(1, NODE_TICK_MS);
        self.schedule(offset, Ev::NodeTick { node: id, inc });
    }

    /// `kill -9`: the process and everything in it is gone; its session expires with its lease.
    fn kill(&mut self, id: &NodeId) {
        if let Some(n) = self.nodes.get_mut(id) {
            n.inc = 0;
            n.host.resign();
        }
        self.report.crashes += 1;
        let after = self.rng.range(2_000, 6_000);
        self.schedule(after, Ev::Restart { node: id.clone() });
    }

    fn live(&self, id: &NodeId, inc: u64) -> bool {
        self.nodes.get(id).is_some_and(|n| n.inc == inc && inc != 0)
    }

    // ---- events ----

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { ref to, to_inc, .. } | Ev::MetaReply { node: ref to, inc: to_inc, .. }
                if self.nodes.get(to).is_some_and(|n| n.paused && n.inc == to_inc) =>
            {
                let to = to.clone();
                self.nodes.get_mut(&to).expect("checked").held.push(ev);
            }
            Ev::Deliver { from, from_inc, to, to_inc, kind, bytes } => {
                // What a process had already written still arrives after it died or fenced
                // itself (the receiver's buffers drain); only the receiver must be the same
                // process. Receivers tell stale senders apart by incarnation and epoch.
                if self.live(&to, to_inc) {
                    self.deliver(&from, from_inc, &to, kind, &bytes);
                }
            }
            Ev::MetaReply { node, inc, generation, reply } => {
                if !self.live(&node, inc) {
                    return;
                }
                let n = self.nodes.get_mut(&node).expect("live");
                let outputs = n.host.step(self.now, HostEvent::Meta { generation, reply });
                self.host_outputs(&node, outputs);
            }
            Ev::NodeTick { node, inc } => {
                if !self.live(&node, inc) {
                    return;
                }
                if !self.nodes[&node].paused {
                    self.node_tick(&node);
                }
                self.schedule(NODE_TICK_MS / 2, Ev::NodeTick { node, inc });
            }
            Ev::EtcdTick => {
                let now = self.now;
                self.etcd.sessions.retain(|_, (_, expires)| *expires > now);
                self.schedule(ETCD_TICK_MS, Ev::EtcdTick);
            }
            Ev::Restart { node } => self.start_node(node),
            Ev::Wake { node, inc } => self.wake(&node, inc),
            Ev::Fault => {
                self.fault();
                if self.now + 1_000 < self.opts.fault_ms {
                    let next = self.rng.range(300, 2_500);
                    self.schedule(next, Ev::Fault);
                }
            }
            Ev::Check => {
                if self.checkpoints_at_calm.is_empty() {
                    self.checkpoints_at_calm =
                        self.etcd.feeds.iter().map(|(n, f)| (n.clone(), f.checkpoint_ts)).collect();
                }
                // Converged only when it holds at five checks in a row, a second apart: messages
                // still in flight get delivered, and a state that only passes by once does not
                // count.
                if self.unconverged().is_none() {
                    self.calm_checks += 1;
                } else {
                    self.calm_checks = 0;
                }
                if self.calm_checks >= 5 {
                    self.report.converged_ms = Some(self.now);
                } else {
                    self.schedule(1_000, Ev::Check);
                }
            }
        }
    }

    fn wake(&mut self, id: &NodeId, inc: u64) {
        if !self.live(id, inc) {
            return;
        }
        let ttl = self.opts.ttl_ms;
        let n = self.nodes.get_mut(id).expect("live");
        n.paused = false;
        // K8: the shell compares its clock with the lease deadline before anything else.
        if self.now >= n.renewed_ms + ttl {
            let outputs = n.host.step(self.now, HostEvent::Fenced);
            n.held.clear();
            n.inc = 0;
            if !outputs.is_empty() {
                self.violate("K8", format!("{id} sent {} messages while fencing", outputs.len()));
            }
            self.report.fences += 1;
            let after = self.rng.range(1_000, 3_000);
            self.schedule(after, Ev::Restart { node: id.clone() });
            return;
        }
        for ev in std::mem::take(&mut n.held) {
            self.handle(ev);
        }
    }

    fn node_tick(&mut self, id: &NodeId) {
        let now = self.now;
        let ttl = self.opts.ttl_ms;
        let owner = self.etcd.owner();
        let members: Vec<Member> = self
            .etcd
            .sessions
            .iter()
            .map(|(node, (rev, _))| Member { node: node.clone(), incarnation: *rev })
            .collect();
        let n = self.nodes.get_mut(id).expect("ticked nodes exist");
        // Keep-alive: renewed while the session exists; a process whose session is gone fences.
        match self.etcd.sessions.get_mut(id) {
            Some((rev, expires)) if *rev == n.inc && *expires > now => {
                *expires = now + ttl;
                n.renewed_ms = now;
            }
            _ => {
                let _ = n.host.step(now, HostEvent::Fenced);
                n.inc = 0;
                self.report.fences += 1;
                self.schedule(1_000, Ev::Restart { node: id.clone() });
                return;
            }
        }
        // Watches: membership and the election (leadership watched, not polled: the
        // reference's H5).
        let leader =
            owner.map(|(node, version)| Leader { mine: &node == id && version == n.inc, node, version });
        let outputs = n.host.step(now, HostEvent::Tick { members, leader });
        self.host_outputs(id, outputs);
    }

    fn send(&mut self, from: &NodeId, to: &NodeId, kind: MessageKind, bytes: Vec<u8>) {
        if self.rng.chance(self.opts.loss_percent) {
            return;
        }
        let from_inc = self.nodes.get(from).map_or(0, |n| n.inc);
        let to_inc = self.nodes.get(to).map_or(0, |n| n.inc);
        let delay = self.rng.range(1, 25);
        self.schedule(
            delay,
            Ev::Deliver { from: from.clone(), from_inc, to: to.clone(), to_inc, kind, bytes },
        );
    }

    fn deliver(&mut self, from: &NodeId, from_inc: u64, to: &NodeId, kind: MessageKind, bytes: &[u8]) {
        let event =
            HostEvent::Received { from: from.clone(), incarnation: from_inc, kind, bytes: bytes.to_vec() };
        let outputs = self.nodes.get_mut(to).expect("live").host.step(self.now, event);
        self.host_outputs(to, outputs);
    }

    fn host_outputs(&mut self, id: &NodeId, outputs: Vec<HostOutput>) {
        for output in outputs {
            match output {
                HostOutput::Send { to, message } => {
                    if let Outbound::ToManager(ToManager::AddMaintainer(add)) = &message {
                        self.check_add(&to, add);
                    }
                    let (kind, bytes) = message.encode();
                    self.send(id, &to, kind, bytes);
                }
                HostOutput::Meta { generation, version, request } => {
                    self.store(id, generation, version, request)
                }
                HostOutput::Answered { result, .. } => {
                    if result.is_ok() {
                        self.report.requests.1 += 1;
                    }
                }
                HostOutput::Leading { .. } => self.report.elections += 1,
                HostOutput::Trace(line) => {
                    let now = self.now;
                    self.report.explanation.push_str(&format!("{now} {line}\n"));
                }
                HostOutput::Deposed { .. } | HostOutput::Dropped { .. } | HostOutput::Notice { .. } => {}
            }
        }
    }

    /// K3 and K4 at the moment an add leaves the coordinator.
    fn check_add(&mut self, to: &NodeId, add: &AddMaintainer) {
        let name = add.changefeed.name.clone();
        let stored = self.etcd.feeds.get(&name).map(|f| f.epoch);
        if stored.is_none_or(|e| e < add.epoch) {
            self.violate(
                "K3",
                format!("add of {name} at epoch {} but the store has {stored:?}", add.epoch.0),
            );
        }
        match self.added.get(&(name.clone(), add.epoch)) {
            Some(first) if first != to => {
                let detail = format!("{name} epoch {} added on {first} and on {to}", add.epoch.0);
                self.violate("K4", detail);
            }
            Some(_) => {}
            None => {
                self.added.insert((name, add.epoch), to.clone());
                self.report.adds += 1;
            }
        }
    }

    // ---- the simulated etcd ----

    fn store(&mut self, id: &NodeId, generation: u64, version: u64, request: MetaRequest) {
        let inc = self.nodes[id].inc;
        // K1: every write is guarded by the writer's election key.
        let leads = self.etcd.owner().is_some_and(|(owner, rev)| &owner == id && rev == version);
        let outcome = if !leads {
            Err(MetaError::Deposed)
        } else {
            if !matches!(request.op, MetaOp::LoadAll) {
                if version < self.etcd.highest_write_version {
                    self.violate(
                        "K1",
                        format!(
                            "a write of coordinator {version} after one of {}",
                            self.etcd.highest_write_version
                        ),
                    );
                }
                self.etcd.highest_write_version = self.etcd.highest_write_version.max(version);
            }
            let write = !matches!(request.op, MetaOp::LoadAll);
            if write && self.rng.chance(self.opts.unknown_percent) {
                if self.rng.chance(50) {
                    let _ = self.apply(request.op);
                }
                Err(MetaError::Unavailable)
            } else {
                self.apply(request.op)
            }
        };
        let reply = MetaReply { ticket: request.ticket, outcome };
        let delay = self.rng.range(1, 10);
        self.schedule(delay, Ev::MetaReply { node: id.clone(), inc, generation, reply });
    }

    fn apply(&mut self, op: MetaOp) -> Result<MetaValue, MetaError> {
        let feeds = &mut self.etcd.feeds;
        match op {
            MetaOp::LoadAll => Ok(MetaValue::Loaded(feeds.values().cloned().collect())),
            MetaOp::Create(s) => {
                if feeds.contains_key(&s.id.name) {
                    return Err(MetaError::Conflict);
                }
                feeds.insert(s.id.name.clone(), s);
                Ok(MetaValue::Done)
            }
            MetaOp::BumpEpoch { changefeed } => {
                let f = feeds.get_mut(&changefeed.name).ok_or(MetaError::Conflict)?;
                f.epoch = Epoch(f.epoch.0 + 1);
                Ok(MetaValue::Bumped(f.epoch))
            }
            MetaOp::SetLifecycle { changefeed, state, progress } => {
                let f = feeds.get_mut(&changefeed.name).ok_or(MetaError::Conflict)?;
                f.state = state;
                f.progress = progress;
                Ok(MetaValue::Done)
            }
            MetaOp::SaveCheckpoints(list) => {
                let mut lowered = Vec::new();
                for (id, ts) in list {
                    if let Some(f) = feeds.get_mut(&id.name) {
                        if ts < f.checkpoint_ts {
                            lowered.push(format!("{} {} < {}", id.name, ts, f.checkpoint_ts));
                        }
                        f.checkpoint_ts = f.checkpoint_ts.max(ts);
                    }
                }
                for l in lowered {
                    self.violate("K11", format!("a checkpoint write below the stored one: {l}"));
                }
                Ok(MetaValue::Done)
            }
            MetaOp::Delete { changefeed } => {
                feeds.remove(&changefeed.name);
                self.removed.insert(changefeed.name);
                Ok(MetaValue::Done)
            }
        }
    }

    // ---- faults and requests ----

    fn fault(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().cloned().collect();
        let up: Vec<NodeId> =
            ids.iter().filter(|id| self.nodes[*id].inc != 0 && !self.nodes[*id].paused).cloned().collect();
        let down = ids.len() - up.len();
        match self.rng.below(10) {
            0 | 1 if down == 0 && up.len() > 1 => {
                let victim = up[self.rng.below(up.len())].clone();
                self.kill(&victim);
            }
            2 if down == 0 && up.len() > 1 => {
                let victim = up[self.rng.below(up.len())].clone();
                let n = self.nodes.get_mut(&victim).expect("up");
                n.paused = true;
                let inc = n.inc;
                // Half of the pauses end inside the lease (the process goes on), half past it (it
                // finds its lease gone and fences itself).
                let ms = if self.rng.chance(50) {
                    self.rng.range(300, self.opts.ttl_ms.saturating_sub(800).max(301))
                } else {
                    self.opts.ttl_ms + self.rng.range(200, 3_000)
                };
                self.schedule(ms, Ev::Wake { node: victim, inc });
            }
            _ => self.user_request(),
        }
    }

    fn user_request(&mut self) {
        let Some(owner) =
            self.nodes.values().find(|n| n.host.coordinator().is_some() && !n.paused).map(|n| n.id.clone())
        else {
            return;
        };
        let names: Vec<String> = self.etcd.feeds.keys().cloned().collect();
        let pick = |rng: &mut Rng| names.get(rng.below(names.len().max(1))).cloned();
        let request = match self.rng.below(6) {
            0 => match pick(&mut self.rng) {
                Some(name) => Request::Pause { name },
                None => return,
            },
            1 => match pick(&mut self.rng) {
                Some(name) => Request::Resume { name },
                None => return,
            },
            2 if self.rng.chance(40) => match pick(&mut self.rng) {
                Some(name) => Request::Remove { name },
                None => return,
            },
            3 => {
                let i = self.opts.changefeeds + self.next_request as usize;
                Request::Create {
                    id: changefeed(i),
                    config: config(self.opts.tables),
                    start_ts: upstream(self.now),
                }
            }
            _ => {
                let Some(name) = pick(&mut self.rng) else { return };
                let ids: Vec<NodeId> = self.nodes.keys().cloned().collect();
                let to = ids[self.rng.below(ids.len())].clone();
                Request::MoveMaintainer { name, to }
            }
        };
        let id = self.next_request;
        self.next_request += 1;
        self.report.requests.0 += 1;
        let n = self.nodes.get_mut(&owner).expect("found");
        let outputs = n.host.step(self.now, HostEvent::Request { id, request });
        self.host_outputs(&owner, outputs);
    }

    // ---- convergence ----

    /// Why the cluster is not converged, or `None` when it is.
    fn unconverged(&self) -> Option<String> {
        let live: BTreeSet<&NodeId> =
            self.nodes.values().filter(|n| n.inc != 0 && !n.paused).map(|n| &n.id).collect();
        if live.len() != self.nodes.len() {
            return Some("a node is down".into());
        }
        let co = self
            .nodes
            .values()
            .filter(|n| n.host.coordinator().is_some_and(Coordinator::initialized))
            .count();
        if co != 1 {
            return Some(format!("{co} initialized coordinators"));
        }
        for (name, feed) in &self.etcd.feeds {
            let gid = feed.id.gid();
            let running: Vec<(&NodeId, Epoch, bool)> = self
                .nodes
                .values()
                .filter_map(|n| {
                    let m = n.host.manager().maintainer(&feed.id)?;
                    Some((&n.id, m.config().epoch, m.lifecycle() == Lifecycle::Running))
                })
                .collect();
            if feed.progress != Progress::None {
                return Some(format!("{name}: a stop is still pending ({:?})", feed.progress));
            }
            if let Some(n) = self
                .nodes
                .values()
                .find(|n| n.host.manager().statuses().iter().any(|s| s.feed_state == "closing"))
            {
                return Some(format!("{} still closes a changefeed", n.id));
            }
            let should_run = feed.state == FeedState::Normal;
            if !should_run {
                if !running.is_empty() {
                    return Some(format!("{name} is {:?} but runs {running:?}", feed.state));
                }
                if let Some(n) = self.nodes.values().find(|n| n.host.runs_any_of(gid)) {
                    return Some(format!("{name} is {:?} but {} has its dispatchers", feed.state, n.id));
                }
                continue;
            }
            if running.len() != 1 || running[0].1 != feed.epoch || !running[0].2 {
                return Some(format!("{name} at stored epoch {} runs {running:?}", feed.epoch.0));
            }
            let calm = self.checkpoints_at_calm.get(name).copied().unwrap_or(1_000);
            if feed.checkpoint_ts <= calm {
                return Some(format!("{name}: stored checkpoint {} not past {calm}", feed.checkpoint_ts));
            }
            // One table trigger, on the maintainer's node; every dispatcher manager of the
            // changefeed owned by the running maintainer.
            let maintainer = running[0].0;
            let triggers: Vec<&NodeId> = self
                .nodes
                .values()
                .flat_map(|n| n.host.dispatchers().map(move |(cf, mode, _, d)| (&n.id, cf, mode, d)))
                .filter(|(_, cf, mode, d)| {
                    cf.gid() == gid && *mode == Mode::Default && d.span.is_table_trigger()
                })
                .map(|(node, ..)| node)
                .collect();
            if triggers != [maintainer] {
                return Some(format!("{name}: table triggers on {triggers:?}, maintainer on {maintainer}"));
            }
            for n in self.nodes.values() {
                if let Some(dm) = n.host.orchestrator().manager(&feed.id) {
                    let owner = dm.owner();
                    if owner.epoch != feed.epoch || owner.maintainer.as_ref() != Some(maintainer) {
                        return Some(format!("{name}: {}'s dispatcher manager is owned by {owner:?}", n.id));
                    }
                }
            }
            let tables = table_count(&feed.config).unwrap_or(0);
            for t in 1..=tables {
                let mut spans: Vec<&TableSpan> = self
                    .nodes
                    .values()
                    .flat_map(|n| n.host.dispatchers())
                    .filter(|(cf, mode, _, d)| {
                        cf.gid() == gid && *mode == Mode::Default && d.span.table_id == t
                    })
                    .map(|(.., d)| &d.span)
                    .collect();
                spans.sort_by(|a, b| a.start_key.cmp(&b.start_key));
                let whole = TableSpan::whole_table(0, t);
                let tiled = spans.first().is_some_and(|s| s.start_key == whole.start_key)
                    && spans.last().is_some_and(|s| s.end_key == whole.end_key)
                    && spans.windows(2).all(|w| w[0].end_key == w[1].start_key);
                if !tiled {
                    return Some(format!("{name} table {t} is covered by {spans:?}"));
                }
            }
        }
        for name in &self.removed {
            let Some(gid) = (0..self.opts.changefeeds + self.next_request as usize)
                .map(changefeed)
                .find(|c| &c.name == name)
                .map(|c| c.gid())
            else {
                continue;
            };
            if let Some(n) = self.nodes.values().find(|n| n.host.runs_any_of(gid)) {
                return Some(format!("removed {name} still has dispatchers on {}", n.id));
            }
        }
        None
    }
}

/// Runs `seeds` seeds from `from`; returns the reports of those that broke an invariant, and the
/// total of events.
pub fn sweep(from: u64, seeds: u64, opts: &ClusterOptions) -> (Vec<ClusterReport>, u64) {
    let mut failed = Vec::new();
    let mut events = 0;
    for seed in from..from + seeds {
        let report = run(seed, opts);
        events += report.events;
        if !report.violations.is_empty() {
            failed.push(report);
        }
    }
    (failed, events)
}

/// The ts a dispatcher of this world reports at `now_ms` (the synthetic upstream clock).
fn upstream(now_ms: u64) -> Ts {
    1_000 + now_ms
}
