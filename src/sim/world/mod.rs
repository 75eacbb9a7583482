//! The simulated cluster: virtual time, a seeded network that carries encoded protobuf bytes, the
//! real node core per node with simulated dispatchers, and the real maintainer (and its failed or
//! moved predecessors, whose messages may still be in flight).
//!
//! Everything runs on one thread from one seed: the same scenario and seed give the same run,
//! event for event. The checker (`check.rs`) watches every event through [`Monitor`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::ids::{ChangefeedId, DispatcherId, Epoch, Mode, NodeId, Ts};
use crate::maintainer::load::LoadConfig;
use crate::maintainer::{
    Ddl, Event, Lifecycle, Maintainer, MaintainerConfig, MemorySchema, Mutations, Output, TableInfo,
};
use crate::messages::*;
use crate::node::heartbeat::Collector;
use crate::node::{CreateTicket, DispatcherManager, Effect, Orchestrator, Outcome};
use crate::span::TableSpan;
use crate::sync::Swap;

use super::coverage::{Coverage, Phase};
use super::rng::Rng;
use super::trace::Trace;
use super::violation::Violation;

mod hosts;
mod network;
mod node;
mod traffic;
mod upstream;

pub use network::{Fault, FaultAction};
pub use traffic::{SimRegions, Traffic};
pub use upstream::{Blocks, Key, SimBarrier, SinkWrite, UpstreamEvent};

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
    /// DDLs and syncpoints travel through the barrier: dispatchers meet them in their streams
    /// (scenario-format.md, "Barrier verbs"); off, DDLs are handed to the maintainer directly.
    pub barrier: bool,
    /// Load-driven scheduling of the maintainers (the scenario's `[scheduler]`); off by default.
    pub load: LoadConfig,
    /// The upstream's writes and regions at the start (the scenario's `[[tables]]`).
    pub traffic: Traffic,
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
            barrier: false,
            load: LoadConfig::default(),
            traffic: Traffic::default(),
        }
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
    /// Its part in the barrier (when the world runs one).
    pub barrier: Option<SimBarrier>,
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
    Write(Mode, DispatcherId),
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
    /// Where each dispatcher closed in this incarnation stopped (until its id runs here again).
    pub closed: BTreeMap<(Mode, DispatcherId), Ts>,
    /// Creates in flight (built but not committed): their start ts hold the watermark.
    creating: BTreeMap<(Mode, DispatcherId), Ts>,
    flush_scheduled: bool,
    last_progress_ms: u64,
    /// The node core's heartbeat collector, for the manager it was built for.
    collector: Option<(Arc<DispatcherManager>, Collector)>,
    block_create: bool,
    block_close: bool,
    block_write: bool,
    parked: Vec<Parked>,
    /// Closes asked for while the dispatcher was still being built: done once it is.
    close_after_create: BTreeSet<(Mode, DispatcherId)>,
}

impl SimNode {
    /// Modes of the creates this node holds that are not built yet.
    pub fn creating_modes(&self) -> impl Iterator<Item = Mode> + '_ {
        self.creating.keys().map(|(mode, _)| *mode)
    }

    fn new(id: NodeId, mutation: Mutations, redo: bool) -> Self {
        Self {
            orchestrator: Orchestrator::mutated(id.clone(), mutation).with_redo(redo),
            id,
            alive: true,
            incarnation: 0,
            dispatchers: BTreeMap::new(),
            closed: BTreeMap::new(),
            creating: BTreeMap::new(),
            flush_scheduled: false,
            last_progress_ms: 0,
            collector: None,
            block_create: false,
            block_close: false,
            block_write: false,
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

#[derive(Clone, Debug)]
enum Ev {
    Deliver {
        from: NodeId,
        to: NodeId,
        kind: MessageKind,
        bytes: Vec<u8>,
        from_incarnation: u64,
        to_incarnation: u64,
        /// The trace's flow id of this copy (0 when the run is not traced).
        flow: u64,
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
    WriteDone {
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
    /// `DC_SIM_DEBUG` is set: maintainer sends, sink writes, checkpoints and stuck barrier events
    /// are printed to stderr (read once, not on every event).
    pub debug: bool,
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
    /// Operators the schedulers started on their own (balance moves, load-driven splits, merges
    /// and moves), in order: (time, mode, kind).
    pub scheduler_started: Vec<(u64, Mode, crate::maintainer::OperatorKind, TableSpan)>,
    /// The upstream's writes and regions now (the maintainers read it as their region source).
    pub traffic: Arc<Swap<Traffic>>,
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
    /// Block events upstream, by key (barrier mode).
    pub upstream: BTreeMap<Key, UpstreamEvent>,
    /// Every downstream write of a block event, in order.
    pub sink: Vec<SinkWrite>,
    /// Syncpoint interval in upstream ts (0: none).
    pub syncpoint_interval_ms: u64,
    next_syncpoint: Ts,
    /// The schema of each table (default 1).
    pub table_schema: BTreeMap<i64, i64>,
    /// The scenario step being run (0-based), for `expect_ddl`.
    pub current_step: usize,
    /// The most recent DDL's key.
    pub last_ddl: Option<Key>,
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
        kind: MessageKind,
        epoch: Epoch,
    ) -> Option<Violation>;
    /// Maintainer `index` is about to send `message` to `to` (I8, I11, I13).
    fn sending(&mut self, w: &World, index: usize, to: &NodeId, message: &ToNode) -> Option<Violation>;
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
    /// `tables`: (id, initial spans, schema). With `syncpoint_ms` > 0 (barrier mode), every
    /// default-mode dispatcher meets a syncpoint at each multiple of it in upstream time.
    #[allow(clippy::too_many_arguments)] // reason: the scenario's top level, one argument each
    pub fn new(
        nodes: &[String],
        maintainer_on: &str,
        tables: &[(i64, usize, i64)],
        redo: bool,
        balance: bool,
        seed: u64,
        syncpoint_ms: u64,
        opts: SimOptions,
    ) -> Self {
        let order: Vec<NodeId> = nodes.iter().map(|n| NodeId::new(n)).collect();
        let mut schema = MemorySchema::new();
        let mut live = BTreeSet::new();
        let mut table_spans = BTreeMap::new();
        let mut table_schema = BTreeMap::new();
        for (id, spans, schema_id) in tables {
            schema.apply(1, Ddl::Create(table_info_in(*id, *schema_id)));
            live.insert(*id);
            table_spans.insert((0, *id), *spans);
            table_schema.insert(*id, *schema_id);
        }
        let syncpoint_ms = if opts.barrier { syncpoint_ms } else { 0 };
        let next_syncpoint =
            upstream_ts(0).checked_div(syncpoint_ms).map_or(Ts::MAX, |n| (n + 1) * syncpoint_ms);
        let mutation = opts.mutation;
        let traffic = Arc::new(Swap::new(Arc::new(opts.traffic.clone())));
        let mut w = World {
            traffic,
            now: 0,
            opts,
            rng: Rng::new(seed),
            queue: BTreeMap::new(),
            next_seq: 0,
            nodes: order.iter().map(|n| (n.clone(), SimNode::new(n.clone(), mutation, redo))).collect(),
            order: order.clone(),
            hosts: Vec::new(),
            redo,
            balance,
            schema,
            live,
            dropped: BTreeMap::new(),
            debug: std::env::var_os("DC_SIM_DEBUG").is_some(),
            table_spans,
            persisted: [(Mode::Default, 1_000), (Mode::Redo, 1_000)].into_iter().collect(),
            scheduler_started: Vec::new(),
            partition: BTreeSet::new(),
            faults: Vec::new(),
            control_in_flight: 0,
            events: 0,
            violation: None,
            trace: None,
            coverage: Coverage::default(),
            writers_dirty: false,
            monitor: None,
            upstream: BTreeMap::new(),
            sink: Vec::new(),
            syncpoint_interval_ms: syncpoint_ms,
            next_syncpoint,
            table_schema,
            current_step: 0,
            last_ddl: None,
        };
        for n in &order {
            w.schedule(w.opts.heartbeat_ms, Ev::NodeTick { node: n.clone(), inc: 0 });
        }
        w.start_maintainer(NodeId::new(maintainer_on));
        w
    }

    /// Changes the upstream's writes or regions from now on.
    pub fn update_traffic(&mut self, f: impl FnOnce(&mut Traffic)) {
        traffic::update(&self.traffic, f);
    }

    /// Bytes per second each alive node's Working default-mode dispatchers replicate now, of
    /// `table` or of every table (alive nodes that run nothing count, at 0).
    pub fn node_traffic(&self, table: Option<i64>) -> BTreeMap<NodeId, f64> {
        let traffic = self.traffic.load();
        self.nodes
            .values()
            .filter(|n| n.alive)
            .map(|n| {
                let sum = n
                    .dispatchers
                    .values()
                    .filter(|d| {
                        d.mode == Mode::Default
                            && d.state == ComponentState::Working
                            && !d.span.is_table_trigger()
                            && table.is_none_or(|t| d.span.table_id == t)
                    })
                    .map(|d| traffic.rate(&d.span))
                    .fold(0.0, |a, b| a + b);
                (n.id.clone(), sum)
            })
            .collect()
    }

    /// Bytes per second written to `span` now.
    pub fn rate(&self, span: &TableSpan) -> f64 {
        self.traffic.with(|t| t.rate(span))
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

    /// An instant on `node`'s track of `category`; a fault is also a global marker.
    fn trace_instant(&mut self, node: &NodeId, category: &str, name: String) {
        let now = self.now;
        if let Some(t) = &mut self.trace {
            t.instant(now, node.as_str(), category, &name);
            if category == "fault" {
                t.marker(now, "fault", &format!("{node}: {name}"));
            }
        }
    }

    /// A global marker in the trace, if the run is traced (a settle begins or ends).
    pub fn mark(&mut self, category: &str, label: &str) {
        let now = self.now;
        if let Some(t) = &mut self.trace {
            t.marker(now, category, label);
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
                t.marker(self.now, "violation", &v.to_string());
            }
            self.violation = Some(v);
        }
    }

    // ---- maintainers ----

    // ---- network ----

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
            self.observe_trace();
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
            Ev::Deliver { from, to, kind, bytes, from_incarnation, to_incarnation, flow } => {
                if kind.to_node() {
                    self.control_in_flight -= 1;
                }
                // A crash breaks the sender's connections: what it had in flight is gone.
                let sender_gone = self.nodes.get(&from).is_some_and(|n| n.incarnation != from_incarnation);
                let (epoch, outcome) = if self.link_cut(&from, &to) {
                    (None, "link cut".to_string())
                } else if sender_gone {
                    (None, "sender crashed".to_string())
                } else if !kind.to_node() {
                    self.deliver_to_maintainer(&from, &to, kind, &bytes)
                } else if self.nodes.get(&to).is_some_and(|n| n.alive && n.incarnation == to_incarnation) {
                    self.deliver_to_node(&from, &to, kind, &bytes)
                } else {
                    (None, "receiver down".to_string())
                };
                let now = self.now;
                if let Some(t) = &mut self.trace {
                    t.delivered(now, flow, to.as_str(), kind.name(), epoch, &outcome);
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
            Ev::WriteDone { node, inc, mode, id } => {
                if self.node_is(&node, inc) {
                    self.write_done(&node, mode, id);
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
                    self.step_maintainer(i, Event::Tick);
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

    // ---- scenario operations ----

    /// The span ids of `table` in `mode`, in key order, as the current maintainer sees them.
    pub fn spans_of(&self, table: i64, mode: Mode) -> Vec<DispatcherId> {
        let Some(h) = self.current() else { return Vec::new() };
        let Some(v) = h.maintainer.view(mode) else { return Vec::new() };
        v.spans.table((0, table)).map(|r| r.id).collect()
    }

    /// A DDL reaching the changefeed now.
    pub fn ddl_create(&mut self, table: i64, spans: usize) {
        self.ddl_create_in(table, spans, 1);
    }

    /// CREATE TABLE in schema `schema` now.
    pub fn ddl_create_in(&mut self, table: i64, spans: usize, schema: i64) {
        let ts = self.ddl_ts();
        if self.live.contains(&table) || self.dropped.contains_key(&table) {
            return;
        }
        self.schema.apply(ts, Ddl::Create(table_info_in(table, schema)));
        self.live.insert(table);
        self.table_schema.insert(table, schema);
        self.table_spans.insert((0, table), spans);
        if self.opts.barrier {
            for host in self.hosts.iter_mut().filter(|h| h.alive) {
                host.maintainer.set_table_spans((0, table), spans);
            }
            let detail = BlockDetail { need_added_tables: vec![added(table, schema)], ..Default::default() };
            self.issue(ts, format!("CREATE TABLE {table}"), Blocks::Normal(vec![0]), detail);
            return;
        }
        self.trace_instant(&NodeId::new("upstream"), "ddl", format!("CREATE TABLE {table} at {ts}"));
        self.to_maintainer(Event::CreateTable { table: table_info(table), spans, commit_ts: ts });
    }

    /// DROP TABLE now.
    pub fn ddl_drop(&mut self, table: i64) {
        let ts = self.ddl_ts();
        if !self.live.remove(&table) {
            return;
        }
        let info = table_info_in(table, self.schema_of(table));
        self.schema.apply(ts, Ddl::Drop(info));
        self.dropped.insert(table, ts);
        if self.opts.barrier {
            let detail = BlockDetail {
                block_tables: Some(normal(&[table, 0])),
                need_dropped_tables: Some(normal(&[table])),
                ..Default::default()
            };
            self.issue(ts, format!("DROP TABLE {table}"), Blocks::Normal(vec![table, 0]), detail);
            return;
        }
        self.trace_instant(&NodeId::new("upstream"), "ddl", format!("DROP TABLE {table} at {ts}"));
        self.to_maintainer(Event::DropTable { table: table_info(table), commit_ts: ts });
    }

    /// TRUNCATE TABLE now: `table` dropped, `new_table` created, one commit ts.
    pub fn ddl_truncate(&mut self, table: i64, new_table: i64) {
        self.replace_table(table, new_table, None, "TRUNCATE");
    }

    /// RENAME TABLE now: the table's id changes (`table` dropped, `new_table` added in `schema`,
    /// by default the table's) in one DDL.
    pub fn ddl_rename(&mut self, table: i64, new_table: i64, schema: Option<i64>) {
        self.replace_table(table, new_table, schema, "RENAME");
    }

    fn replace_table(&mut self, table: i64, new_table: i64, schema: Option<i64>, verb: &str) {
        let ts = self.ddl_ts();
        if !self.live.contains(&table)
            || self.live.contains(&new_table)
            || self.dropped.contains_key(&new_table)
        {
            return;
        }
        let old_schema = self.schema_of(table);
        let schema = schema.unwrap_or(old_schema);
        self.live.remove(&table);
        self.schema.apply(ts, Ddl::Drop(table_info_in(table, old_schema)));
        self.schema.apply(ts, Ddl::Create(table_info_in(new_table, schema)));
        self.dropped.insert(table, ts);
        self.live.insert(new_table);
        self.table_schema.insert(new_table, schema);
        if self.opts.barrier {
            let detail = BlockDetail {
                block_tables: Some(normal(&[table, 0])),
                need_dropped_tables: Some(normal(&[table])),
                need_added_tables: vec![added(new_table, schema)],
                ..Default::default()
            };
            self.issue(
                ts,
                format!("{verb} TABLE {table} -> {new_table}"),
                Blocks::Normal(vec![table, 0]),
                detail,
            );
            return;
        }
        self.trace_instant(
            &NodeId::new("upstream"),
            "ddl",
            format!("{verb} TABLE {table} -> {new_table} at {ts}"),
        );
        self.to_maintainer(Event::TruncateTable {
            table: table_info(table),
            new_table: table_info(new_table),
            commit_ts: ts,
        });
    }

    /// ALTER TABLE now: a single-table DDL, blocking only where the table is split (barrier mode).
    pub fn ddl_alter_table(&mut self, table: i64) {
        if !self.opts.barrier || !self.live.contains(&table) {
            return;
        }
        let detail = BlockDetail { block_tables: Some(normal(&[table])), ..Default::default() };
        let ts = self.ddl_ts();
        self.issue(ts, format!("ALTER TABLE {table}"), Blocks::Normal(vec![table]), detail);
    }

    /// DROP DATABASE now: every table of the schema dropped in one DB-level DDL (barrier mode).
    pub fn ddl_drop_database(&mut self, schema: i64) {
        if !self.opts.barrier {
            return;
        }
        let ts = self.ddl_ts();
        let tables: Vec<i64> = self.live.iter().copied().filter(|t| self.schema_of(*t) == schema).collect();
        for table in tables {
            self.live.remove(&table);
            self.schema.apply(ts, Ddl::Drop(table_info_in(table, schema)));
            self.dropped.insert(table, ts);
        }
        let detail = BlockDetail {
            block_tables: Some(db(schema)),
            need_dropped_tables: Some(db(schema)),
            ..Default::default()
        };
        self.issue(ts, format!("DROP DATABASE {schema}"), Blocks::Db(schema), detail);
    }

    /// ALTER DATABASE now: a DB-level DDL that changes no table set (barrier mode).
    pub fn ddl_alter_database(&mut self, schema: i64) {
        if !self.opts.barrier {
            return;
        }
        let detail = BlockDetail { block_tables: Some(db(schema)), ..Default::default() };
        let ts = self.ddl_ts();
        self.issue(ts, format!("ALTER DATABASE {schema}"), Blocks::Db(schema), detail);
    }

    /// CREATE VIEW now: an All-level DDL (barrier mode).
    pub fn ddl_create_view(&mut self) {
        if !self.opts.barrier {
            return;
        }
        let detail = BlockDetail {
            block_tables: Some(InfluencedTables {
                kind: InfluenceKind::All,
                table_ids: Vec::new(),
                schema_id: 0,
            }),
            ..Default::default()
        };
        self.issue(self.ddl_ts(), "CREATE VIEW".into(), Blocks::All, detail);
    }
}

fn normal(tables: &[i64]) -> InfluencedTables {
    InfluencedTables { kind: InfluenceKind::Normal, table_ids: tables.to_vec(), schema_id: 0 }
}

fn db(schema: i64) -> InfluencedTables {
    InfluencedTables { kind: InfluenceKind::Db, table_ids: Vec::new(), schema_id: schema }
}

fn added(table: i64, schema: i64) -> AddedTable {
    AddedTable { table_id: table, schema_id: schema, splitable: true }
}

/// A component state's name in the trace.
fn state_name(state: ComponentState) -> &'static str {
    match state {
        ComponentState::Working => "working",
        ComponentState::Stopped => "stopped",
        ComponentState::Removed => "removed",
        ComponentState::Initializing => "initializing",
        ComponentState::Preparing => "preparing",
        ComponentState::MergeReady => "merge-ready",
        ComponentState::WaitingMerge => "waiting-merge",
    }
}

impl World {
    /// Shows the trace what the world looks like now: after every event, and after every
    /// scenario step (a crash or a restart changes the world outside any event).
    pub fn observe_trace(&mut self) {
        if self.trace.is_none() {
            return;
        }
        use super::trace::{DispatcherView, Frame, OperatorView};
        use crate::node::RecordPhase;
        let mut frame = Frame::default();
        for node in self.nodes.values().filter(|n| n.alive) {
            for manager in node.orchestrator.managers() {
                for r in manager.registry().records() {
                    let s = r.state();
                    let state = match s.phase {
                        RecordPhase::Creating => "creating",
                        RecordPhase::Live if s.removing => "closing",
                        RecordPhase::Live => state_name(s.component),
                        RecordPhase::Closed | RecordPhase::Cancelled => continue,
                    };
                    frame.dispatchers.push(DispatcherView {
                        node: node.id.clone(),
                        node_incarnation: node.incarnation,
                        mode: r.mode,
                        id: r.id,
                        incarnation: r.incarnation,
                        span: r.span.clone(),
                        state,
                    });
                }
            }
        }
        let mut messages = 0;
        for ev in self.queue.values() {
            if matches!(ev, Ev::Deliver { .. }) {
                messages += 1;
            }
        }
        let mut in_flight = 0;
        for host in self.hosts.iter().filter(|h| h.alive) {
            for mode in host.maintainer.modes() {
                let Some(view) = host.maintainer.view(mode) else { continue };
                for op in view.operators.operators() {
                    in_flight += 1;
                    frame.operators.push(OperatorView {
                        node: host.node.clone(),
                        epoch: host.epoch.0,
                        mode,
                        id: op.id,
                        kind: op.op_kind(),
                        phase: op.phase(),
                    });
                }
            }
        }
        frame.counters.push(("messages in flight".into(), messages));
        frame.counters.push(("operators in flight".into(), in_flight));
        if let Some(host) = self.current() {
            frame.counters.push(("maintainer epoch".into(), host.epoch.0 as i64));
            for mode in host.maintainer.modes() {
                let Some(view) = host.maintainer.view(mode) else { continue };
                let name = super::trace::mode_name(mode);
                let lag = upstream_ts(self.now).saturating_sub(view.committed);
                frame.counters.push((format!("checkpoint {name}"), view.committed as i64));
                frame.counters.push((format!("lag {name}"), lag as i64));
            }
        }
        let now = self.now;
        if let Some(t) = &mut self.trace {
            t.observe(now, frame);
        }
    }
}

fn table_info(id: i64) -> TableInfo {
    table_info_in(id, 1)
}

fn table_info_in(id: i64, schema: i64) -> TableInfo {
    TableInfo { keyspace_id: 0, table_id: id, schema_id: schema }
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
                    if let Some(p) = Phase::of_operator(op.op_kind(), op.phase()) {
                        out.push((p, mode));
                    }
                }
                out.extend(view.barrier.events().map(|e| (Phase::of_barrier(e.phase), mode)));
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
