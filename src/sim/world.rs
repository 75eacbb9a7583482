//! The simulated cluster: virtual time, a seeded network that carries encoded protobuf bytes, the
//! real node core per node with simulated dispatchers, and the real maintainer (and its failed or
//! moved predecessors, whose messages may still be in flight).
//!
//! Everything runs on one thread from one seed: the same scenario and seed give the same run,
//! event for event. The checker (`check.rs`) watches every event through [`Monitor`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use prost::Message;

use crate::ids::{ChangefeedId, DispatcherId, Epoch, Mode, NodeId, Ts};
use crate::maintainer::{
    Ddl, Effect as MEffect, Event as MEvent, Lifecycle, Maintainer, MaintainerConfig, MemorySchema,
    Mutations, Outgoing, TableInfo,
};
use crate::messages::*;
use crate::node::heartbeat::Collector;
use crate::node::{
    CreateTicket, DispatcherManager, Effect as NEffect, Orchestrator, Outcome, Reply, Step as NStep,
};
use crate::span::TableSpan;
use crate::wire::pb;

use super::coverage::{Coverage, Phase};
use super::trace::Trace;
use super::violation::Violation;

/// Tunables of a simulated run. Times are simulated milliseconds.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Node heartbeat period.
    pub heartbeat_ms: u64,
    /// Maintainer tick period.
    pub tick_ms: u64,
    /// One-way link latency, uniformly in `[lo, hi]`.
    pub latency_ms: (u64, u64),
    /// Time to build a dispatcher.
    pub create_ms: (u64, u64),
    /// Time to close a dispatcher.
    pub close_ms: (u64, u64),
    /// A broken node that applies any maintainer's control messages (checker self-test).
    pub ignore_fence: bool,
    /// A broken maintainer (checker self-test).
    pub mutation: Mutations,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            heartbeat_ms: 200,
            tick_ms: 50,
            latency_ms: (1, 5),
            create_ms: (5, 40),
            close_ms: (5, 30),
            ignore_fence: false,
            mutation: Mutations::NONE,
        }
    }
}

/// splitmix64: small, fast, and the same everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x5deece66d)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi]`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Uniform in `[0, n)`; 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}

/// Upstream ts at simulated time `now_ms`: one ts unit per millisecond, from 1,000.
pub fn upstream_ts(now_ms: u64) -> Ts {
    1_000 + now_ms
}

/// How far behind upstream a working dispatcher's checkpoint runs.
const LAG: Ts = 50;

/// A simulated dispatcher: what the embedder runs for one record of the node core.
#[derive(Clone, Debug)]
pub struct SimDispatcher {
    /// Its id.
    pub id: DispatcherId,
    /// Its mode.
    pub mode: Mode,
    /// Its key range.
    pub span: TableSpan,
    /// Component state as the embedder runs it.
    pub state: ComponentState,
    /// Flushed checkpoint.
    pub checkpoint: Ts,
    /// A close was asked for and has not finished; until it does, the dispatcher still writes.
    pub closing: bool,
}

impl SimDispatcher {
    /// Whether it may write downstream right now (I2).
    pub fn writes(&self) -> bool {
        matches!(
            self.state,
            ComponentState::Working | ComponentState::Initializing | ComponentState::WaitingMerge
        )
    }
}

/// What a blocked failpoint holds back.
#[derive(Clone, Debug)]
enum Parked {
    Create(CreateTicket),
    Close(Mode, DispatcherId),
}

/// One simulated node.
pub struct SimNode {
    /// Its id.
    pub id: NodeId,
    /// Up or crashed.
    pub alive: bool,
    /// Bumped at every crash: events for an older incarnation are void.
    pub incarnation: u64,
    /// The real node core.
    pub orchestrator: Orchestrator,
    /// Dispatchers it runs.
    pub dispatchers: BTreeMap<(Mode, DispatcherId), SimDispatcher>,
    /// Creates in flight (built but not committed): their start ts hold the watermark.
    creating: BTreeMap<(Mode, DispatcherId), Ts>,
    flush_scheduled: bool,
    last_progress_ms: u64,
    /// The node core's heartbeat collector, for the manager it was built for.
    collector: Option<(Arc<DispatcherManager>, Collector)>,
    block_create: bool,
    block_close: bool,
    parked: Vec<Parked>,
    /// Closes asked for while the dispatcher was still being built: done once it is.
    close_after_create: BTreeSet<(Mode, DispatcherId)>,
}

impl SimNode {
    /// Modes of the creates this node holds that are not built yet.
    pub fn creating_modes(&self) -> impl Iterator<Item = Mode> + '_ {
        self.creating.keys().map(|(mode, _)| *mode)
    }

    fn new(id: NodeId, mutation: Mutations) -> Self {
        Self {
            orchestrator: Orchestrator::mutated(id.clone(), mutation),
            id,
            alive: true,
            incarnation: 0,
            dispatchers: BTreeMap::new(),
            creating: BTreeMap::new(),
            flush_scheduled: false,
            last_progress_ms: 0,
            collector: None,
            block_create: false,
            block_close: false,
            parked: Vec::new(),
            close_after_create: BTreeSet::new(),
        }
    }
}

/// A maintainer and where it runs.
pub struct Host {
    /// Its epoch.
    pub epoch: Epoch,
    /// Its node.
    pub node: NodeId,
    /// The real maintainer.
    pub maintainer: Maintainer,
    /// False once its node crashed.
    pub alive: bool,
}

/// A message fault of the scenario format.
#[derive(Clone, Debug)]
pub struct Fault {
    /// Wire message name, or any.
    pub kind: Option<String>,
    /// Sending node, or any.
    pub from: Option<String>,
    /// Receiving node, or any.
    pub to: Option<String>,
    /// What happens to a matching message.
    pub action: FaultAction,
    /// How many more messages it applies to; `None` until healed.
    pub remaining: Option<u32>,
}

/// What a fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Hold back this long.
    Delay(u64),
    /// Lose it.
    Drop,
    /// Deliver it twice.
    Duplicate,
}

#[derive(Clone, Debug)]
enum Ev {
    Deliver {
        from: NodeId,
        to: NodeId,
        kind: &'static str,
        bytes: Vec<u8>,
        from_incarnation: u64,
        to_incarnation: u64,
    },
    CreateDone {
        node: NodeId,
        inc: u64,
        ticket: CreateTicket,
    },
    CloseDone {
        node: NodeId,
        inc: u64,
        mode: Mode,
        id: DispatcherId,
    },
    MergeReady {
        node: NodeId,
        inc: u64,
        mode: Mode,
        id: DispatcherId,
    },
    MergedWorking {
        node: NodeId,
        inc: u64,
        mode: Mode,
        id: DispatcherId,
    },
    NodeTick {
        node: NodeId,
        inc: u64,
    },
    Flush {
        node: NodeId,
        inc: u64,
    },
    MaintainerTick {
        epoch: Epoch,
    },
}

/// The simulated cluster.
pub struct World {
    /// Current simulated time.
    pub now: u64,
    /// Tunables.
    pub opts: SimOptions,
    rng: Rng,
    queue: BTreeMap<(u64, u64), Ev>,
    next_seq: u64,
    /// Nodes by id, in the scenario's order.
    pub nodes: BTreeMap<NodeId, SimNode>,
    /// Node ids in scenario order (failover picks the first live one).
    pub order: Vec<NodeId>,
    /// Every maintainer that ever ran, oldest first; the last is current.
    pub hosts: Vec<Host>,
    /// Whether redo mode is on.
    pub redo: bool,
    balance: bool,
    /// The upstream schema.
    pub schema: MemorySchema,
    /// Live tables now.
    pub live: BTreeSet<i64>,
    /// Dropped tables and their drop ts.
    pub dropped: BTreeMap<i64, Ts>,
    table_spans: BTreeMap<(u32, i64), usize>,
    /// The checkpoint the coordinator persisted (the current maintainer's last committed).
    pub persisted: BTreeMap<Mode, Ts>,
    partition: BTreeSet<NodeId>,
    faults: Vec<Fault>,
    /// Control messages (maintainer to node) in flight.
    pub control_in_flight: usize,
    /// Events processed.
    pub events: u64,
    /// The first safety violation seen, if any.
    pub violation: Option<Violation>,
    /// The timeline, when recording.
    pub trace: Option<Trace>,
    /// What this run exercised so far.
    pub coverage: Coverage,
    pub(super) writers_dirty: bool,
    monitor: Option<Box<dyn Monitor>>,
}

/// What watches the world (the invariant checker of `check.rs`): told at each point where an
/// invariant can break, it answers with the first violation it sees. The world stops at the first
/// one.
pub trait Monitor {
    /// A node applied a control message of `epoch` from `from` (I1).
    fn control_applied(
        &mut self,
        w: &World,
        node: &NodeId,
        from: &NodeId,
        kind: &str,
        epoch: Epoch,
    ) -> Option<Violation>;
    /// Maintainer `index` is about to send `message` to `to` (I8, I11, I13).
    fn sending(&mut self, w: &World, index: usize, to: &NodeId, message: &Outgoing) -> Option<Violation>;
    /// Maintainer `index` was stepped (I3-I8, I10).
    fn maintainer_stepped(&mut self, w: &World, index: usize) -> Option<Violation>;
    /// Some dispatcher started or stopped writing (I2).
    fn writers_changed(&mut self, w: &World) -> Option<Violation>;
}

const CHANGEFEED: ChangefeedId =
    ChangefeedId { high: 1, low: 1, name: String::new(), keyspace: String::new() };

impl World {
    /// A cluster of `nodes` with `tables` (id, initial spans) live from ts 1, the first maintainer
    /// (epoch 1) on `maintainer`. Nothing has run yet.
    pub fn new(
        nodes: &[String],
        maintainer_on: &str,
        tables: &[(i64, usize)],
        redo: bool,
        balance: bool,
        seed: u64,
        opts: SimOptions,
    ) -> Self {
        let order: Vec<NodeId> = nodes.iter().map(|n| NodeId::new(n)).collect();
        let mut schema = MemorySchema::new();
        let mut live = BTreeSet::new();
        let mut table_spans = BTreeMap::new();
        for (id, spans) in tables {
            schema.apply(1, Ddl::Create(table_info(*id)));
            live.insert(*id);
            table_spans.insert((0, *id), *spans);
        }
        let mutation = opts.mutation;
        let mut w = World {
            now: 0,
            opts,
            rng: Rng::new(seed),
            queue: BTreeMap::new(),
            next_seq: 0,
            nodes: order.iter().map(|n| (n.clone(), SimNode::new(n.clone(), mutation))).collect(),
            order: order.clone(),
            hosts: Vec::new(),
            redo,
            balance,
            schema,
            live,
            dropped: BTreeMap::new(),
            table_spans,
            persisted: [(Mode::Default, 1_000), (Mode::Redo, 1_000)].into_iter().collect(),
            partition: BTreeSet::new(),
            faults: Vec::new(),
            control_in_flight: 0,
            events: 0,
            violation: None,
            trace: None,
            coverage: Coverage::default(),
            writers_dirty: false,
            monitor: None,
        };
        for n in &order {
            w.schedule(w.opts.heartbeat_ms, Ev::NodeTick { node: n.clone(), inc: 0 });
        }
        w.start_maintainer(NodeId::new(maintainer_on));
        w
    }

    /// The current maintainer.
    pub fn current(&self) -> Option<&Host> {
        self.hosts.last().filter(|h| h.alive)
    }

    fn schedule(&mut self, after_ms: u64, ev: Ev) {
        let key = (self.now + after_ms, self.next_seq);
        self.next_seq += 1;
        self.queue.insert(key, ev);
    }

    fn trace_instant(&mut self, node: &NodeId, category: &str, name: String) {
        let now = self.now;
        if let Some(t) = &mut self.trace {
            t.instant(now, node.as_str(), category, &name);
        }
    }

    /// The same world, watched by `monitor` from now on.
    pub fn watched_by(mut self, monitor: Box<dyn Monitor>) -> Self {
        self.monitor = Some(monitor);
        self
    }

    /// Asks the monitor (if any; taken out while it is being asked) and records what it found.
    fn watch(&mut self, ask: impl FnOnce(&mut dyn Monitor, &World) -> Option<Violation>) {
        let Some(mut monitor) = self.monitor.take() else { return };
        let found = ask(monitor.as_mut(), self);
        self.monitor = Some(monitor);
        if let Some(v) = found {
            self.violate(v);
        }
    }

    pub(super) fn violate(&mut self, v: Violation) {
        if self.violation.is_none() {
            if let Some(t) = &mut self.trace {
                t.instant(self.now, "checker", "violation", &v.to_string());
            }
            self.violation = Some(v);
        }
    }

    // ---- maintainers ----

    fn start_maintainer(&mut self, on: NodeId) {
        let epoch = Epoch(self.hosts.last().map_or(1, |h| h.epoch.0 + 1));
        let start = |mode| self.persisted.get(&mode).copied().unwrap_or(1_000);
        let mut cfg = MaintainerConfig::new(CHANGEFEED, on.clone(), epoch, start(Mode::Default));
        cfg.redo_start_checkpoint = Some(start(Mode::Redo));
        cfg.redo = self.redo;
        cfg.balance = self.balance;
        cfg.resend_ms = 500;
        cfg.bootstrap_resend_ms = 500;
        cfg.balance_interval_ms = 2_000;
        cfg.table_spans = self.table_spans.clone();
        cfg.mutation = self.opts.mutation;
        let members: Vec<NodeId> = self.order.iter().filter(|n| self.nodes[*n].alive).cloned().collect();
        let maintainer = Maintainer::new(cfg, Box::new(self.schema.clone()), &members);
        self.hosts.push(Host { epoch, node: on.clone(), maintainer, alive: true });
        self.trace_instant(&on, "maintainer", format!("maintainer epoch {} starts", epoch.0));
        self.schedule(0, Ev::MaintainerTick { epoch });
    }

    /// Steps every live maintainer of `epoch` (or the current one) and carries out its effects.
    fn step_maintainer(&mut self, index: usize, event: MEvent) {
        if !self.hosts[index].alive {
            return;
        }
        let now = self.now;
        let effects = self.hosts[index].maintainer.step(now, event);
        let (from, epoch) = (self.hosts[index].node.clone(), self.hosts[index].epoch);
        let current = index + 1 == self.hosts.len();
        for effect in effects {
            match effect {
                MEffect::Send { to, message } => {
                    if std::env::var_os("DC_SIM_DEBUG").is_some() {
                        eprintln!("{now} send e{} -> {to}: {message:?}", epoch.0);
                    }
                    self.watch(|m, w| m.sending(w, index, &to, &message));
                    let (kind, bytes) = encode_outgoing(&message);
                    self.control_in_flight += 1;
                    self.send(from.clone(), to, kind, bytes);
                }
                MEffect::CheckpointAdvanced { mode, checkpoint_ts } => {
                    if current {
                        let persisted = self.persisted.entry(mode).or_insert(0);
                        if checkpoint_ts < *persisted {
                            let v = Violation::new("I9", now, format!(
                                "{mode:?} committed checkpoint went back from {persisted} to {checkpoint_ts} (epoch {})",
                                epoch.0
                            ));
                            self.violate(v);
                        }
                        let persisted = self.persisted.entry(mode).or_insert(0);
                        *persisted = (*persisted).max(checkpoint_ts);
                    }
                }
                MEffect::OperatorFinished { mode, id, kind, outcome } => {
                    self.trace_instant(&from, "operator", format!("{kind:?} {id} {mode:?} {outcome:?}"));
                }
                MEffect::Bootstrapped => {
                    self.trace_instant(&from, "maintainer", format!("epoch {} bootstrapped", epoch.0));
                }
                MEffect::Refused { request, reason } => {
                    self.trace_instant(&from, "maintainer", format!("refused {request}: {reason}"));
                }
                MEffect::NodeError { node, error } => {
                    self.trace_instant(&from, "maintainer", format!("error from {node}: {}", error.message));
                }
            }
        }
        self.watch(|m, w| m.maintainer_stepped(w, index));
    }

    /// Hands an event to the current maintainer.
    pub fn to_maintainer(&mut self, event: MEvent) {
        if let Some(i) = self.hosts.iter().rposition(|h| h.alive) {
            if i + 1 == self.hosts.len() {
                self.step_maintainer(i, event);
            }
        }
    }

    // ---- network ----

    fn link_cut(&self, a: &NodeId, b: &NodeId) -> bool {
        self.partition.contains(a) != self.partition.contains(b)
    }

    fn send(&mut self, from: NodeId, to: NodeId, kind: &'static str, bytes: Vec<u8>) {
        let mut copies = 1;
        let mut extra = 0;
        for f in &mut self.faults {
            let matches = f.kind.as_deref().is_none_or(|k| k == kind)
                && f.from.as_deref().is_none_or(|n| n == from.as_str())
                && f.to.as_deref().is_none_or(|n| n == to.as_str())
                && f.remaining != Some(0);
            if !matches {
                continue;
            }
            if let Some(r) = &mut f.remaining {
                *r -= 1;
            }
            let label = match f.action {
                FaultAction::Drop => {
                    copies = 0;
                    "drop"
                }
                FaultAction::Duplicate => {
                    copies = 2;
                    "duplicate"
                }
                FaultAction::Delay(ms) => {
                    extra = ms;
                    "delay"
                }
            };
            *self.coverage.messages.entry((label, kind)).or_default() += 1;
            break;
        }
        if copies == 0 || self.link_cut(&from, &to) {
            if is_control(kind) {
                self.control_in_flight -= 1;
            }
            self.trace_instant(&from, "network", format!("lost {kind} to {to}"));
            return;
        }
        if copies == 2 && is_control(kind) {
            self.control_in_flight += 1;
        }
        let to_incarnation = self.nodes.get(&to).map_or(0, |n| n.incarnation);
        let from_incarnation = self.nodes.get(&from).map_or(0, |n| n.incarnation);
        for _ in 0..copies {
            let (lo, hi) = self.opts.latency_ms;
            let delay = self.rng.range(lo, hi) + extra;
            let ev = Ev::Deliver {
                from: from.clone(),
                to: to.clone(),
                kind,
                bytes: bytes.clone(),
                from_incarnation,
                to_incarnation,
            };
            self.schedule(delay, ev);
        }
    }

    /// Cuts every link between `nodes` and the rest.
    pub fn partition(&mut self, nodes: &[String]) {
        self.partition = nodes.iter().map(|n| NodeId::new(n)).collect();
    }

    /// Restores all links.
    pub fn heal(&mut self) {
        self.partition.clear();
    }

    /// Adds a message fault.
    pub fn add_fault(&mut self, fault: Fault) {
        self.faults.push(fault);
    }

    /// Ends every message fault.
    pub fn heal_messages(&mut self) {
        self.faults.clear();
    }

    // ---- time ----

    /// Runs events up to `until_ms` (inclusive), then sets the clock there.
    pub fn run_until(&mut self, until_ms: u64) {
        self.run_while(until_ms, |_| false);
        self.now = self.now.max(until_ms);
    }

    /// Runs events up to `until_ms` until some operator is in `phase`; the clock stays at the
    /// event that reached it. Returns whether it was reached.
    pub fn run_until_phase(&mut self, phase: Phase, until_ms: u64) -> bool {
        if self.reached(phase) {
            return true;
        }
        let reached = self.run_while(until_ms, |w| w.reached(phase));
        if !reached {
            self.now = self.now.max(until_ms);
        }
        reached
    }

    /// Runs events up to `until_ms`, stopping early (true) once `stop` holds after an event.
    fn run_while(&mut self, until_ms: u64, mut stop: impl FnMut(&World) -> bool) -> bool {
        while self.violation.is_none() {
            let Some((&(at, seq), _)) = self.queue.iter().next() else { break };
            if at > until_ms {
                break;
            }
            let ev = self.queue.remove(&(at, seq)).unwrap_or_else(|| unreachable!());
            self.now = at;
            self.events += 1;
            self.handle(ev);
            if self.writers_dirty {
                self.writers_dirty = false;
                self.watch(|m, w| m.writers_changed(w));
            }
            if stop(self) {
                return true;
            }
        }
        false
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { from, to, kind, bytes, from_incarnation, to_incarnation } => {
                if is_control(kind) {
                    self.control_in_flight -= 1;
                }
                // A crash breaks the sender's connections: what it had in flight is gone.
                let sender_gone = self.nodes.get(&from).is_some_and(|n| n.incarnation != from_incarnation);
                if self.link_cut(&from, &to) || sender_gone {
                    return;
                }
                if is_to_maintainer(kind) {
                    self.deliver_to_maintainer(&from, &to, kind, &bytes);
                } else {
                    let alive =
                        self.nodes.get(&to).is_some_and(|n| n.alive && n.incarnation == to_incarnation);
                    if alive {
                        self.deliver_to_node(&from, &to, kind, &bytes);
                    }
                }
            }
            Ev::CreateDone { node, inc, ticket } => {
                if self.node_is(&node, inc) {
                    self.finish_create(&node, ticket);
                }
            }
            Ev::CloseDone { node, inc, mode, id } => {
                if self.node_is(&node, inc) {
                    self.finish_close(&node, mode, id);
                }
            }
            Ev::MergeReady { node, inc, mode, id } => {
                if self.node_is(&node, inc) {
                    self.set_state(&node, mode, id, ComponentState::MergeReady);
                }
            }
            Ev::MergedWorking { node, inc, mode, id } => {
                if self.node_is(&node, inc) {
                    self.set_state(&node, mode, id, ComponentState::Working);
                }
            }
            Ev::NodeTick { node, inc } => {
                if self.node_is(&node, inc) {
                    self.node_tick(&node);
                    let period = self.opts.heartbeat_ms;
                    self.schedule(period, Ev::NodeTick { node, inc });
                }
            }
            Ev::Flush { node, inc } => {
                if self.node_is(&node, inc) {
                    if let Some(n) = self.nodes.get_mut(&node) {
                        n.flush_scheduled = false;
                    }
                    self.poll_collector(&node);
                }
            }
            Ev::MaintainerTick { epoch } => {
                if let Some(i) = self.hosts.iter().position(|h| h.epoch == epoch && h.alive) {
                    self.step_maintainer(i, MEvent::Tick);
                    let period = self.opts.tick_ms;
                    self.schedule(period, Ev::MaintainerTick { epoch });
                }
            }
        }
    }

    fn node_is(&self, node: &NodeId, inc: u64) -> bool {
        self.nodes.get(node).is_some_and(|n| n.alive && n.incarnation == inc)
    }

    // ---- node side ----

    fn deliver_to_node(&mut self, from: &NodeId, to: &NodeId, kind: &'static str, bytes: &[u8]) {
        let redo = self.redo;
        let ignore_fence = self.opts.ignore_fence;
        let Some(node) = self.nodes.get(to) else { return };
        let orch = &node.orchestrator;
        let manager = orch.manager(&CHANGEFEED);
        // The broken-node variant: rewrite every control message as if its current owner sent it.
        let owner = manager.as_ref().map(|m| m.owner());
        let (fence_from, fence_epoch) = match (&owner, ignore_fence) {
            (Some(o), true) => (o.maintainer.clone().unwrap_or_else(|| from.clone()), Some(o.epoch)),
            _ => (from.clone(), None),
        };
        let (epoch, step): (Epoch, Option<NStep>) = match kind {
            "MaintainerBootstrapRequest" => {
                let Some(req) = decode::<pb::MaintainerBootstrapRequest, BootstrapRequest>(bytes) else {
                    return;
                };
                let step = orch.handle_bootstrap(from, &req, redo);
                if step.outcome == Outcome::Applied {
                    if let Some(m) = orch.manager(&CHANGEFEED) {
                        if redo {
                            m.mark_redo_ready();
                        }
                    }
                }
                (req.epoch, Some(step))
            }
            "ScheduleDispatcherRequest" => {
                let Some(mut req) = decode::<pb::ScheduleDispatcherRequest, ScheduleRequest>(bytes) else {
                    return;
                };
                let epoch = req.epoch;
                if let Some(e) = fence_epoch {
                    req.epoch = e;
                }
                (epoch, manager.map(|m| m.handle_schedule(&fence_from, req)))
            }
            "MergeDispatcherRequest" => {
                let Some(mut req) = decode::<pb::MergeDispatcherRequest, MergeRequest>(bytes) else { return };
                let epoch = req.epoch;
                if let Some(e) = fence_epoch {
                    req.epoch = e;
                }
                (epoch, manager.map(|m| m.handle_merge(&fence_from, req)))
            }
            "MaintainerPostBootstrapRequest" => {
                let Some(req) = decode::<pb::MaintainerPostBootstrapRequest, PostBootstrapRequest>(bytes)
                else {
                    return;
                };
                (req.epoch, manager.map(|m| m.handle_post_bootstrap(from, &req)))
            }
            "MaintainerCloseRequest" => {
                let Some(req) = decode::<pb::MaintainerCloseRequest, CloseRequest>(bytes) else { return };
                (req.epoch, Some(orch.handle_close(from, &req)))
            }
            _ => return,
        };
        let Some(step) = step else { return };
        if step.outcome == Outcome::Applied {
            self.watch(|m, w| m.control_applied(w, to, from, kind, epoch));
        }
        self.trace_instant(to, "node", format!("{kind} from {from} epoch {}: {:?}", epoch.0, step.outcome));
        self.node_effects(to, step.effects);
    }

    fn node_effects(&mut self, node: &NodeId, effects: Vec<NEffect>) {
        for effect in effects {
            self.node_effect(node, effect);
        }
    }

    fn node_effect(&mut self, node_id: &NodeId, effect: NEffect) {
        let inc = self.nodes[node_id].incarnation;
        match effect {
            NEffect::Create(ticket) => {
                let key = (ticket.mode(), ticket.id());
                let start = ticket.spec().start_ts;
                let n = self.nodes.get_mut(node_id).unwrap_or_else(|| unreachable!());
                n.creating.insert(key, start);
                if n.block_create {
                    n.parked.push(Parked::Create(ticket));
                } else {
                    let (lo, hi) = self.opts.create_ms;
                    let d = self.rng.range(lo, hi);
                    self.schedule(d, Ev::CreateDone { node: node_id.clone(), inc, ticket });
                }
            }
            NEffect::Close { id, mode } => self.begin_close(node_id, mode, id),
            NEffect::PrepareMerged { spec, sources } => {
                let n = self.nodes.get_mut(node_id).unwrap_or_else(|| unreachable!());
                for s in &sources {
                    if let Some(d) = n.dispatchers.get_mut(&(spec.mode, *s)) {
                        d.state = ComponentState::WaitingMerge;
                    }
                }
                n.dispatchers.insert(
                    (spec.mode, spec.id),
                    SimDispatcher {
                        id: spec.id,
                        mode: spec.mode,
                        span: spec.span.clone(),
                        state: ComponentState::Preparing,
                        checkpoint: spec.start_ts,
                        closing: false,
                    },
                );
                let (lo, hi) = self.opts.create_ms;
                let d = self.rng.range(lo, hi);
                self.schedule(d, Ev::MergeReady { node: node_id.clone(), inc, mode: spec.mode, id: spec.id });
            }
            NEffect::CloseMergeSources { mode, sources, .. } => {
                for s in sources {
                    self.begin_close(node_id, mode, s);
                }
            }
            NEffect::StartMerged { id, mode, start_ts, .. } => {
                let n = self.nodes.get_mut(node_id).unwrap_or_else(|| unreachable!());
                if let Some(d) = n.dispatchers.get_mut(&(mode, id)) {
                    d.state = ComponentState::Initializing;
                    d.checkpoint = start_ts;
                }
                self.writers_dirty = true;
                let (lo, hi) = self.opts.create_ms;
                let d = self.rng.range(lo, hi);
                self.schedule(d, Ev::MergedWorking { node: node_id.clone(), inc, mode, id });
            }
            NEffect::ResumeSource { id, mode } => {
                let n = self.nodes.get_mut(node_id).unwrap_or_else(|| unreachable!());
                if let Some(d) = n.dispatchers.get_mut(&(mode, id)) {
                    d.state = ComponentState::Working;
                }
                self.writers_dirty = true;
                self.schedule_flush(node_id);
            }
            // Queued on the heartbeat path by the core itself: only a hint to poll soon.
            NEffect::Report(_) => self.schedule_flush(node_id),
            // Barrier answers, sink and redo meta updates: the simulated sink has none.
            NEffect::DeliverBarrier { .. }
            | NEffect::SinkCheckpoint { .. }
            | NEffect::UpdateRedoMeta { .. }
            | NEffect::RedoGlobalTsAdvanced { .. } => {}
            NEffect::ReportError(error) => {
                self.trace_instant(node_id, "node", format!("error: {}", error.message));
            }
            NEffect::Reply { to, reply } => {
                let (kind, bytes) = match &reply {
                    Reply::Bootstrap(r) => (
                        "MaintainerBootstrapResponse",
                        pb::MaintainerBootstrapResponse::from(r).encode_to_vec(),
                    ),
                    Reply::PostBootstrap(r) => (
                        "MaintainerPostBootstrapResponse",
                        pb::MaintainerPostBootstrapResponse::from(r).encode_to_vec(),
                    ),
                    Reply::Close(r) => {
                        ("MaintainerCloseResponse", pb::MaintainerCloseResponse::from(r).encode_to_vec())
                    }
                };
                self.send(node_id.clone(), to, kind, bytes);
            }
        }
    }

    fn schedule_flush(&mut self, node_id: &NodeId) {
        let Some(n) = self.nodes.get_mut(node_id) else { return };
        if !n.flush_scheduled {
            n.flush_scheduled = true;
            let inc = n.incarnation;
            self.schedule(10, Ev::Flush { node: node_id.clone(), inc });
        }
    }

    fn finish_create(&mut self, node_id: &NodeId, ticket: CreateTicket) {
        let Some(manager) = self.nodes[node_id].orchestrator.manager(&CHANGEFEED) else { return };
        let (mode, id) = (ticket.mode(), ticket.id());
        let spec = ticket.spec();
        if let Some(n) = self.nodes.get_mut(node_id) {
            n.creating.remove(&(mode, id));
        }
        if manager.commit_create(&ticket).is_err() {
            return; // withdrawn: discarded unstarted
        }
        let n = self.nodes.get_mut(node_id).unwrap_or_else(|| unreachable!());
        n.dispatchers.insert(
            (mode, id),
            SimDispatcher {
                id,
                mode,
                span: spec.span.clone(),
                state: ComponentState::Working,
                checkpoint: spec.start_ts,
                closing: false,
            },
        );
        self.writers_dirty = true;
        self.trace_instant(
            node_id,
            "dispatcher",
            format!("{id} {mode:?} {:?} created at {}", spec.span, spec.start_ts),
        );
        let step = manager.dispatcher_state_changed(id, mode, ComponentState::Working, spec.start_ts);
        self.node_effects(node_id, step.effects);
        let close_now = self.nodes.get_mut(node_id).is_some_and(|n| n.close_after_create.remove(&(mode, id)));
        if close_now {
            self.begin_close(node_id, mode, id);
        }
    }

    fn begin_close(&mut self, node_id: &NodeId, mode: Mode, id: DispatcherId) {
        let inc = self.nodes[node_id].incarnation;
        let n = self.nodes.get_mut(node_id).unwrap_or_else(|| unreachable!());
        match n.dispatchers.get_mut(&(mode, id)) {
            Some(d) => d.closing = true,
            None if n.creating.contains_key(&(mode, id)) => {
                // Still being built (a live-at-once trigger whose build is held back): close it
                // as soon as it exists.
                n.close_after_create.insert((mode, id));
                return;
            }
            None => {}
        }
        if n.block_close {
            n.parked.push(Parked::Close(mode, id));
            return;
        }
        let (lo, hi) = self.opts.close_ms;
        let d = self.rng.range(lo, hi);
        self.schedule(d, Ev::CloseDone { node: node_id.clone(), inc, mode, id });
    }

    fn finish_close(&mut self, node_id: &NodeId, mode: Mode, id: DispatcherId) {
        let Some(manager) = self.nodes[node_id].orchestrator.manager(&CHANGEFEED) else { return };
        let n = self.nodes.get_mut(node_id).unwrap_or_else(|| unreachable!());
        let Some(d) = n.dispatchers.remove(&(mode, id)) else { return };
        self.writers_dirty = true;
        self.trace_instant(node_id, "dispatcher", format!("{id} {mode:?} closed at {}", d.checkpoint));
        let step = manager.dispatcher_closed(id, mode, d.checkpoint, None);
        self.node_effects(node_id, step.effects);
    }

    fn set_state(&mut self, node_id: &NodeId, mode: Mode, id: DispatcherId, state: ComponentState) {
        let Some(manager) = self.nodes[node_id].orchestrator.manager(&CHANGEFEED) else { return };
        let n = self.nodes.get_mut(node_id).unwrap_or_else(|| unreachable!());
        let Some(d) = n.dispatchers.get_mut(&(mode, id)) else { return };
        d.state = state;
        let ckpt = d.checkpoint;
        self.writers_dirty = true;
        let step = manager.dispatcher_state_changed(id, mode, state, ckpt);
        self.node_effects(node_id, step.effects);
    }

    /// Progress (every heartbeat period), then whatever the node's real heartbeat collector has
    /// due: rounds with watermarks and statuses, to the node's current owner.
    fn node_tick(&mut self, node_id: &NodeId) {
        let Some(manager) = self.nodes[node_id].orchestrator.manager(&CHANGEFEED) else { return };
        let now = self.now;
        let ts = upstream_ts(now).saturating_sub(LAG);
        let dropped = &self.dropped;
        let n = self.nodes.get_mut(node_id).unwrap_or_else(|| unreachable!());
        if now.saturating_sub(n.last_progress_ms) >= self.opts.heartbeat_ms {
            n.last_progress_ms = now;
            for d in n.dispatchers.values_mut() {
                // A dispatcher of a dropped table is parked at the DROP (its barrier never passes
                // for it): it cannot flush past the DDL.
                let ts = dropped.get(&d.span.table_id).map_or(ts, |drop| ts.min(drop.saturating_sub(1)));
                if d.state == ComponentState::Working && ts > d.checkpoint {
                    d.checkpoint = ts;
                    if let Some(handle) = manager.status_handle_of(d.mode, d.id) {
                        let _ = manager.report_progress(&handle, ts, ts, 0.0);
                    }
                }
            }
        }
        self.poll_collector(node_id);
    }

    fn poll_collector(&mut self, node_id: &NodeId) {
        let Some(manager) = self.nodes[node_id].orchestrator.manager(&CHANGEFEED) else { return };
        let now = self.now;
        let n = self.nodes.get_mut(node_id).unwrap_or_else(|| unreachable!());
        let fresh = n.collector.as_ref().is_none_or(|(m, _)| !Arc::ptr_eq(m, &manager));
        if fresh {
            n.collector = Some((manager.clone(), Collector::new(&manager)));
        }
        let Some((_, collector)) = n.collector.as_mut() else { return };
        let poll = collector.poll(&manager, now);
        for out in poll.heartbeats {
            let bytes = pb::HeartBeatRequest::from(&out.request).encode_to_vec();
            self.send(node_id.clone(), out.to, "HeartBeatRequest", bytes);
        }
    }

    fn deliver_to_maintainer(&mut self, from: &NodeId, to: &NodeId, kind: &'static str, bytes: &[u8]) {
        let Some(index) = self.hosts.iter().rposition(|h| h.alive && h.node == *to) else { return };
        let event = match kind {
            "HeartBeatRequest" => {
                let Some(heartbeat) = decode::<pb::HeartBeatRequest, Heartbeat>(bytes) else { return };
                MEvent::Heartbeat { from: from.clone(), heartbeat }
            }
            "MaintainerBootstrapResponse" => {
                let Some(response) = decode::<pb::MaintainerBootstrapResponse, BootstrapResponse>(bytes)
                else {
                    return;
                };
                MEvent::BootstrapResponse { from: from.clone(), response }
            }
            "MaintainerPostBootstrapResponse" => {
                let Some(response) =
                    decode::<pb::MaintainerPostBootstrapResponse, PostBootstrapResponse>(bytes)
                else {
                    return;
                };
                MEvent::PostBootstrapResponse { from: from.clone(), response }
            }
            _ => return,
        };
        self.step_maintainer(index, event);
    }

    // ---- scenario operations ----

    /// The span ids of `table` in `mode`, in key order, as the current maintainer sees them.
    pub fn spans_of(&self, table: i64, mode: Mode) -> Vec<DispatcherId> {
        let Some(h) = self.current() else { return Vec::new() };
        let Some(v) = h.maintainer.view(mode) else { return Vec::new() };
        v.spans.table((0, table)).map(|r| r.id).collect()
    }

    /// A DDL reaching the changefeed now.
    pub fn ddl_create(&mut self, table: i64, spans: usize) {
        let ts = upstream_ts(self.now);
        if self.live.contains(&table) || self.dropped.contains_key(&table) {
            return;
        }
        self.schema.apply(ts, Ddl::Create(table_info(table)));
        self.live.insert(table);
        self.table_spans.insert((0, table), spans);
        self.trace_instant(&NodeId::new("upstream"), "ddl", format!("CREATE TABLE {table} at {ts}"));
        self.to_maintainer(MEvent::CreateTable { table: table_info(table), spans, commit_ts: ts });
    }

    /// DROP TABLE now.
    pub fn ddl_drop(&mut self, table: i64) {
        let ts = upstream_ts(self.now);
        if !self.live.remove(&table) {
            return;
        }
        self.schema.apply(ts, Ddl::Drop(table_info(table)));
        self.dropped.insert(table, ts);
        self.trace_instant(&NodeId::new("upstream"), "ddl", format!("DROP TABLE {table} at {ts}"));
        self.to_maintainer(MEvent::DropTable { table: table_info(table), commit_ts: ts });
    }

    /// TRUNCATE TABLE now: `table` dropped, `new_table` created, one commit ts.
    pub fn ddl_truncate(&mut self, table: i64, new_table: i64) {
        let ts = upstream_ts(self.now);
        if !self.live.contains(&table)
            || self.live.contains(&new_table)
            || self.dropped.contains_key(&new_table)
        {
            return;
        }
        self.live.remove(&table);
        self.schema.apply(ts, Ddl::Drop(table_info(table)));
        self.schema.apply(ts, Ddl::Create(table_info(new_table)));
        self.dropped.insert(table, ts);
        self.live.insert(new_table);
        self.trace_instant(
            &NodeId::new("upstream"),
            "ddl",
            format!("TRUNCATE TABLE {table} -> {new_table} at {ts}"),
        );
        self.to_maintainer(MEvent::TruncateTable {
            table: table_info(table),
            new_table: table_info(new_table),
            commit_ts: ts,
        });
    }

    /// Sets or lifts a failpoint; lifting releases the held work.
    pub fn set_block(&mut self, node_id: &str, create: bool, on: bool) {
        let node_id = NodeId::new(node_id);
        let what =
            format!("{} {}", if on { "block" } else { "unblock" }, if create { "create" } else { "close" });
        self.trace_instant(&node_id, "fault", what);
        let Some(n) = self.nodes.get_mut(&node_id) else { return };
        if create {
            n.block_create = on;
        } else {
            n.block_close = on;
        }
        if on {
            return;
        }
        let inc = n.incarnation;
        let held: Vec<Parked> = std::mem::take(&mut n.parked);
        let mut keep = Vec::new();
        for p in held {
            match p {
                Parked::Create(ticket) if create => {
                    let (lo, hi) = self.opts.create_ms;
                    let d = self.rng.range(lo, hi);
                    self.schedule(d, Ev::CreateDone { node: node_id.clone(), inc, ticket });
                }
                Parked::Close(mode, id) if !create => {
                    let (lo, hi) = self.opts.close_ms;
                    let d = self.rng.range(lo, hi);
                    self.schedule(d, Ev::CloseDone { node: node_id.clone(), inc, mode, id });
                }
                other => keep.push(other),
            }
        }
        if let Some(n) = self.nodes.get_mut(&node_id) {
            n.parked = keep;
        }
    }

    /// The node dies: its dispatchers, journal and memory are gone; the others see it leave. If
    /// it hosted the current maintainer, a new one (next epoch) starts on the first live node.
    pub fn crash_node(&mut self, node_id: &str) {
        let node_id = NodeId::new(node_id);
        let Some(n) = self.nodes.get_mut(&node_id) else { return };
        if !n.alive {
            return;
        }
        n.alive = false;
        n.incarnation += 1;
        n.dispatchers.clear();
        n.creating.clear();
        n.parked.clear();
        n.close_after_create.clear();
        n.collector = None;
        // Failpoints live in the process: a restarted node comes back without them.
        n.block_create = false;
        n.block_close = false;
        n.flush_scheduled = false;
        n.orchestrator = Orchestrator::mutated(node_id.clone(), self.opts.mutation);
        self.writers_dirty = true;
        for h in &mut self.hosts {
            if h.node == node_id {
                h.alive = false;
            }
        }
        self.trace_instant(&node_id, "fault", "crash".into());
        for i in 0..self.hosts.len() {
            self.step_maintainer(i, MEvent::NodeLeft(node_id.clone()));
        }
        // The coordinator restarts a maintainer whose node died: next epoch, first live node.
        if self.hosts.last().is_some_and(|h| h.node == node_id) {
            if let Some(next) = self.order.iter().find(|n| self.nodes[*n].alive).cloned() {
                self.start_maintainer(next);
            }
        }
    }

    /// A crashed node comes back empty and rejoins.
    pub fn restart_node(&mut self, node_id: &str) {
        let node_id = NodeId::new(node_id);
        let Some(n) = self.nodes.get_mut(&node_id) else { return };
        if n.alive {
            return;
        }
        n.alive = true;
        // A new process: what was sent to the dead one (its connections were refused) is void
        // too, not delivered to the new one.
        n.incarnation += 1;
        let inc = n.incarnation;
        self.trace_instant(&node_id, "fault", "restart".into());
        let period = self.opts.heartbeat_ms;
        self.schedule(period, Ev::NodeTick { node: node_id.clone(), inc });
        for i in 0..self.hosts.len() {
            self.step_maintainer(i, MEvent::NodeJoined(node_id.clone()));
        }
        // With every node down there was no maintainer; the coordinator starts one now.
        if self.current().is_none() {
            if let Some(next) = self.order.iter().find(|n| self.nodes[*n].alive).cloned() {
                self.start_maintainer(next);
            }
        }
    }

    /// The maintainer's node dies; a new maintainer (next epoch) starts on the first live node.
    pub fn crash_maintainer(&mut self) {
        let Some(host) = self.hosts.last().map(|h| h.node.clone()) else { return };
        self.crash_node(host.as_str());
    }

    /// Ownership moves to `to` with the next epoch; the old maintainer is told to stop.
    pub fn move_maintainer(&mut self, to: &str) {
        let to = NodeId::new(to);
        if !self.nodes.get(&to).is_some_and(|n| n.alive) {
            return;
        }
        if let Some(i) = self.hosts.iter().rposition(|h| h.alive) {
            self.step_maintainer(i, MEvent::Stop);
        }
        self.start_maintainer(to);
    }
}

fn table_info(id: i64) -> TableInfo {
    TableInfo { keyspace_id: 0, table_id: id, schema_id: 1 }
}

fn is_control(kind: &str) -> bool {
    matches!(
        kind,
        "ScheduleDispatcherRequest"
            | "MergeDispatcherRequest"
            | "MaintainerBootstrapRequest"
            | "MaintainerPostBootstrapRequest"
            | "MaintainerCloseRequest"
    )
}

fn is_to_maintainer(kind: &str) -> bool {
    matches!(
        kind,
        "HeartBeatRequest"
            | "MaintainerBootstrapResponse"
            | "MaintainerPostBootstrapResponse"
            | "MaintainerCloseResponse"
    )
}

fn decode<P, D>(bytes: &[u8]) -> Option<D>
where
    P: Message + Default,
    for<'a> D: TryFrom<&'a P>,
{
    let pb = P::decode(bytes).ok()?;
    D::try_from(&pb).ok()
}

fn encode_outgoing(message: &Outgoing) -> (&'static str, Vec<u8>) {
    match message {
        Outgoing::Schedule(r) => {
            ("ScheduleDispatcherRequest", pb::ScheduleDispatcherRequest::from(r).encode_to_vec())
        }
        Outgoing::Merge(r) => ("MergeDispatcherRequest", pb::MergeDispatcherRequest::from(r).encode_to_vec()),
        Outgoing::Bootstrap(r) => {
            ("MaintainerBootstrapRequest", pb::MaintainerBootstrapRequest::from(r).encode_to_vec())
        }
        Outgoing::PostBootstrap(r) => {
            ("MaintainerPostBootstrapRequest", pb::MaintainerPostBootstrapRequest::from(r).encode_to_vec())
        }
        Outgoing::Close(r) => ("MaintainerCloseRequest", pb::MaintainerCloseRequest::from(r).encode_to_vec()),
    }
}

impl World {
    /// Every operator phase in flight now, with its mode: the current maintainer's operators
    /// (or its bootstrap) and every live node's creates, closes and merges. Repeats kept.
    pub fn in_flight(&self) -> Vec<(Phase, Mode)> {
        let mut out = Vec::new();
        if let Some(host) = self.current() {
            let m = &host.maintainer;
            if m.lifecycle() == Lifecycle::Bootstrapping {
                out.push((Phase::Bootstrapping, Mode::Default));
            }
            for mode in m.modes() {
                let Some(view) = m.view(mode) else { continue };
                for op in view.operators.operators() {
                    if let Some(p) = Phase::of_operator(op.op_kind(), op.phase) {
                        out.push((p, mode));
                    }
                }
            }
        }
        for node in self.nodes.values().filter(|n| n.alive) {
            out.extend(node.creating_modes().map(|mode| (Phase::NodeCreating, mode)));
            out.extend(node.dispatchers.values().filter(|d| d.closing).map(|d| (Phase::NodeClosing, d.mode)));
            for m in node.orchestrator.managers() {
                for entry in m.merges().entries() {
                    if let Some(p) = Phase::of_merge(entry.phase()) {
                        out.push((p, entry.request.mode));
                    }
                }
            }
        }
        out
    }

    /// Whether some operator is in `phase` now.
    pub fn reached(&self, phase: Phase) -> bool {
        self.in_flight().iter().any(|(p, _)| *p == phase)
    }
}
