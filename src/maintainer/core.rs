//! The maintainer's event loop: [`Maintainer::step`] routes each event (statuses, bootstrap,
//! membership, requests) and then ticks. Its other jobs live beside it: `scheduler.rs`,
//! `requests.rs`, `ddl.rs`, `checkpoint.rs`, `bootstrap.rs`; `event.rs` holds what goes in and out.

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::{ChangefeedId, DispatcherId, Epoch, Mode, NodeId, Ts};
use crate::messages::{
    BootstrapRequest, BootstrapResponse, CloseRequest, ComponentState, DispatcherStatus, OperatorType,
    PostBootstrapRequest, ToNode, Watermark,
};
use crate::span::TableSpan;

use super::barrier::Barrier;
use super::controller::{OperatorController, Refusal};
use super::event::{Event, Lifecycle, Output};
use super::load::{LoadConfig, LoadState, NoRegions, RegionSource};
use super::operator::{remove_request, AfterRemove, Change, MessageContext, Operator, OperatorKind};
use super::schema::{SchemaView, TableInfo};
use super::spans::{Guard, NewSpan, SpanController, SpanRecord, SpanState, TableKey};

/// Settings of one maintainer. Intervals are in milliseconds of the caller's clock.
#[derive(Clone, Debug)]
pub struct MaintainerConfig {
    /// The changefeed.
    pub changefeed: ChangefeedId,
    /// The node this maintainer runs on (it hosts the table triggers).
    pub node: NodeId,
    /// This maintainer's epoch; every control message carries it.
    pub epoch: Epoch,
    /// Keyspace of the changefeed's tables.
    pub keyspace_id: u32,
    /// The persisted checkpoint the maintainer starts from (the committed checkpoint's floor).
    pub start_checkpoint: Ts,
    /// The persisted redo checkpoint (the redo mode's floor); the default mode's when unset.
    pub redo_start_checkpoint: Option<Ts>,
    /// Whether every table is also replicated in redo mode.
    pub redo: bool,
    /// Whether the balance scheduler may move spans on its own.
    pub balance: bool,
    /// Minimum time between two sends of one operator's message.
    pub resend_ms: u64,
    /// Minimum time between two bootstrap requests to one node.
    pub bootstrap_resend_ms: u64,
    /// Most operators in flight the basic scheduler tops up to, per mode.
    pub max_in_flight: usize,
    /// Time between balance rounds.
    pub balance_interval_ms: u64,
    /// Most moves one balance round starts.
    pub balance_moves_max: usize,
    /// Sends after which a merge the node was never seen to take up is withdrawn
    /// (`OperatorPhase::Withdrawing`): the merged dispatcher is removed, and the sources are handed back
    /// only after its terminal status.
    pub merge_sends_max: u32,
    /// How many equal spans a table is cut into when it is first placed (default 1), like the
    /// reference's pre-split of large tables.
    pub table_spans: BTreeMap<TableKey, usize>,
    /// DDLs reach this maintainer through its table triggers' block statuses (the barrier), not
    /// as `Event::Ddl`. Bootstrap then takes the schema as it stood where the triggers start
    /// ([`MaintainerConfig::trigger_start`]): every later DDL comes through the barrier, in order,
    /// applied once after its write (B8), never early from the schema's history.
    pub ddls_through_barrier: bool,
    /// Load-driven scheduling (splits, merges and moves by traffic and regions); off by default.
    pub load: LoadConfig,
    /// A deliberate bug, for the simulator's own tests that its checker catches broken variants.
    /// Never set in production.
    #[doc(hidden)]
    pub mutation: Mutations,
}

pub use crate::mutation::{Mutation, Mutations};

impl MaintainerConfig {
    /// The persisted checkpoint `mode` starts from.
    pub fn start_of(&self, mode: Mode) -> Ts {
        match mode {
            Mode::Default => self.start_checkpoint,
            Mode::Redo => self.redo_start_checkpoint.unwrap_or(self.start_checkpoint),
        }
    }

    /// Where the table triggers start: the lowest checkpoint of the modes scheduled, so the redo
    /// trigger meets every DDL its mode has not passed (a bootstrap request carries one start ts).
    pub fn trigger_start(&self) -> Ts {
        if self.redo {
            self.start_of(Mode::Default).min(self.start_of(Mode::Redo))
        } else {
            self.start_of(Mode::Default)
        }
    }

    /// Defaults for a changefeed hosted on `node` at `epoch`, starting from `start_checkpoint`.
    pub fn new(changefeed: ChangefeedId, node: NodeId, epoch: Epoch, start_checkpoint: Ts) -> Self {
        Self {
            changefeed,
            node,
            epoch,
            keyspace_id: 0,
            start_checkpoint,
            redo_start_checkpoint: None,
            redo: false,
            balance: false,
            resend_ms: 1_000,
            bootstrap_resend_ms: 1_000,
            max_in_flight: 256,
            balance_interval_ms: 5_000,
            balance_moves_max: 4,
            merge_sends_max: 5,
            table_spans: BTreeMap::new(),
            ddls_through_barrier: false,
            load: LoadConfig::default(),
            mutation: Mutations::NONE,
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct NodeInfo {
    /// Answered our bootstrap (so it accepts our requests).
    pub(super) ready: bool,
    pub(super) next_bootstrap_ms: u64,
    /// Cached answer while bootstrapping.
    pub(super) response: Option<BootstrapResponse>,
}

/// Scheduling state of one mode.
#[derive(Debug)]
pub(super) struct ModeState {
    pub(super) mode: Mode,
    pub(super) sc: SpanController,
    pub(super) oc: OperatorController,
    pub(super) committed: Ts,
    pub(super) watermarks: BTreeMap<NodeId, Watermark>,
    pub(super) trigger: DispatcherId,
    pub(super) barrier: Barrier,
    /// Tables another mode's barrier dropped that this mode's has not yet (each mode applies a
    /// DDL when its own barrier passes it): still placed here until then.
    pub(super) dropping: BTreeMap<TableKey, (TableInfo, Ts)>,
    /// Traffic windows and the load checker's own state (soft: a new maintainer starts empty).
    pub(super) load: LoadState,
}

/// The scheduling state of each mode, indexed by the mode: default first, then redo when it is
/// enabled (indexing redo when it is not is a bug, and panics like any out-of-range index).
impl std::ops::Index<Mode> for Vec<ModeState> {
    type Output = ModeState;

    fn index(&self, mode: Mode) -> &ModeState {
        let state = &self[mode as usize];
        debug_assert_eq!(state.mode, mode);
        state
    }
}

impl std::ops::IndexMut<Mode> for Vec<ModeState> {
    fn index_mut(&mut self, mode: Mode) -> &mut ModeState {
        let state = &mut self[mode as usize];
        debug_assert_eq!(state.mode, mode);
        state
    }
}

/// A read-only view of one mode, for tests, the simulator's checker and benchmarks.
#[derive(Clone, Copy, Debug)]
pub struct ModeView<'a> {
    /// The span controller.
    pub spans: &'a SpanController,
    /// The operator controller.
    pub operators: &'a OperatorController,
    /// The committed checkpoint.
    pub committed: Ts,
    /// The table trigger's id.
    pub trigger: DispatcherId,
    /// The barrier: block events in flight.
    pub barrier: &'a Barrier,
}

/// The coordinator of one changefeed. See the module documentation.
pub struct Maintainer {
    pub(super) cfg: MaintainerConfig,
    pub(super) schema: Box<dyn SchemaView>,
    /// The upstream's regions, for load-driven splits.
    pub(super) regions: Box<dyn RegionSource>,
    pub(super) lifecycle: Lifecycle,
    pub(super) nodes: BTreeMap<NodeId, NodeInfo>,
    pub(super) modes: Vec<ModeState>,
    /// Tables the changefeed replicates now.
    pub(super) live: BTreeMap<TableKey, (TableInfo, Ts)>,
    /// Tables dropped while this maintainer ran or before (never scheduled again, I8).
    pub(super) dropped: BTreeSet<TableKey>,
    /// Dispatchers to remove that no span record stands for: (node, mode, id) → next send.
    pub(super) orphans: BTreeMap<(NodeId, Mode, DispatcherId), u64>,
    pub(super) next_id: u64,
    pub(super) last_balance_ms: u64,
    pub(super) post_bootstrap_acked: bool,
    pub(super) next_post_bootstrap_ms: u64,
    /// Stopped maintainer: its triggers not yet seen stopped.
    pub(super) triggers_left: Vec<DispatcherId>,
    pub(super) next_trigger_remove_ms: u64,
    pub(super) effects: Vec<Output>,
}

const ID_TAG: u64 = 0x6d74 << 48;

impl std::fmt::Debug for Maintainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Maintainer")
            .field("epoch", &self.cfg.epoch)
            .field("lifecycle", &self.lifecycle)
            .field("nodes", &self.nodes.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Maintainer {
    /// A maintainer for `cfg` that will bootstrap from `nodes` (the live members) on its first
    /// tick. `schema` answers the table questions of bootstrap.
    pub fn new(cfg: MaintainerConfig, schema: Box<dyn SchemaView>, nodes: &[NodeId]) -> Self {
        let mut this = Self {
            schema,
            regions: Box::new(NoRegions),
            lifecycle: Lifecycle::Bootstrapping,
            nodes: nodes.iter().map(|n| (n.clone(), NodeInfo::default())).collect(),
            modes: Vec::new(),
            live: BTreeMap::new(),
            dropped: BTreeSet::new(),
            orphans: BTreeMap::new(),
            next_id: 0,
            last_balance_ms: 0,
            post_bootstrap_acked: false,
            next_post_bootstrap_ms: 0,
            triggers_left: Vec::new(),
            next_trigger_remove_ms: 0,
            effects: Vec::new(),
            cfg,
        };
        let mut modes = vec![Mode::Default];
        if this.cfg.redo {
            modes.push(Mode::Redo);
        }
        for mode in modes {
            let trigger = this.mint();
            this.modes.push(ModeState {
                mode,
                sc: SpanController::new(mode),
                oc: OperatorController::new(),
                committed: this.cfg.start_of(mode),
                watermarks: BTreeMap::new(),
                trigger,
                barrier: Barrier::default(),
                dropping: BTreeMap::new(),
                load: LoadState::default(),
            });
        }
        this
    }

    /// Gives the maintainer the upstream's regions (load-driven splits cut at region
    /// boundaries; without a source every span is one region, so only traffic can split it and
    /// nothing is pre-split).
    pub fn with_regions(mut self, regions: Box<dyn RegionSource>) -> Self {
        self.regions = regions;
        self
    }

    /// Whether the maintainer replicates `table` now (created or bootstrapped, not dropped; a
    /// table another mode's barrier dropped but this one has not yet counts as live in none).
    pub fn is_live(&self, table: TableKey) -> bool {
        self.live.contains_key(&table)
    }

    /// The configuration.
    pub fn config(&self) -> &MaintainerConfig {
        &self.cfg
    }

    /// Where the maintainer is in its life.
    pub fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }

    /// The modes it schedules (default, then redo when enabled).
    pub fn modes(&self) -> impl Iterator<Item = Mode> + '_ {
        self.modes.iter().map(|s| s.mode)
    }

    /// A read-only view of one mode.
    pub fn view(&self, mode: Mode) -> Option<ModeView<'_>> {
        self.modes.iter().find(|s| s.mode == mode).map(|s| ModeView {
            spans: &s.sc,
            operators: &s.oc,
            committed: s.committed,
            trigger: s.trigger,
            barrier: &s.barrier,
        })
    }

    /// Nodes it knows, with whether they answered its bootstrap.
    pub fn nodes(&self) -> impl Iterator<Item = (&NodeId, bool)> + '_ {
        self.nodes.iter().map(|(n, i)| (n, i.ready))
    }

    /// Dispatchers it is removing without a span record (orphans): (node, mode, id).
    pub fn orphans(&self) -> impl Iterator<Item = &(NodeId, Mode, DispatcherId)> + '_ {
        self.orphans.keys()
    }

    /// Handles one event at `now_ms` and returns what the embedder must do.
    pub fn step(&mut self, now_ms: u64, event: Event) -> Vec<Output> {
        if self.lifecycle == Lifecycle::Removing {
            // Inert (I13): nothing but removing its own triggers until they are seen stopped.
            self.step_inert(now_ms, event);
            return std::mem::take(&mut self.effects);
        }
        match event {
            Event::Tick => self.tick(now_ms),
            Event::BootstrapResponse { from, response } => self.on_bootstrap_response(now_ms, from, response),
            Event::PostBootstrapResponse { from, response } => {
                if from == self.cfg.node && self.epoch_matches(response.epoch) && response.err.is_none() {
                    self.post_bootstrap_acked = true;
                }
            }
            Event::Heartbeat { from, heartbeat } => self.on_heartbeat(now_ms, &from, heartbeat),
            Event::BlockStatus { from, request } => self.on_block_statuses(now_ms, &from, request),
            Event::NodeJoined(node) => self.on_node_joined(now_ms, node),
            Event::NodeLeft(node) => self.on_node_left(now_ms, &node),
            Event::MoveSpan { mode, id, to } => self.request_move(now_ms, mode, id, to),
            Event::SplitSpan { mode, id, into } => self.request_split(now_ms, mode, id, into),
            Event::MergeSpans { mode, ids } => self.request_merge(now_ms, mode, &ids),
            Event::CreateTable { table, spans, commit_ts } => self.create_table(table, spans, commit_ts),
            Event::DropTable { table, commit_ts: _ } => self.drop_table(now_ms, table),
            Event::TruncateTable { table, new_table, commit_ts } => {
                self.drop_table(now_ms, table);
                self.create_table(new_table, 1, commit_ts);
            }
            Event::Stop => self.stop(now_ms),
            Event::Close { removed } => {
                for node in self.nodes.keys() {
                    let message = ToNode::Close(CloseRequest {
                        changefeed: self.cfg.changefeed.clone(),
                        removed,
                        epoch: self.cfg.epoch,
                    });
                    self.effects.push(Output::Send { to: node.clone(), message });
                }
                self.lifecycle = Lifecycle::Removing;
            }
        }
        std::mem::take(&mut self.effects)
    }

    pub(super) fn epoch_matches(&self, epoch: Epoch) -> bool {
        epoch == self.cfg.epoch || epoch.0 == 0 || self.cfg.epoch.0 == 0
    }

    pub(super) fn mint(&mut self) -> DispatcherId {
        self.next_id += 1;
        DispatcherId::new(ID_TAG | self.cfg.epoch.0, self.next_id)
            .unwrap_or_else(|| unreachable!("high is nonzero"))
    }

    pub(super) fn send(&mut self, to: NodeId, message: ToNode) {
        self.effects.push(Output::Send { to, message });
    }

    pub(super) fn refuse(&mut self, request: &'static str, reason: String) {
        self.effects.push(Output::Refused { request, reason });
    }

    /// How many equal spans a table is cut into when a DDL creates it (the pre-split hint,
    /// [`MaintainerConfig::table_spans`]).
    pub fn set_table_spans(&mut self, table: TableKey, spans: usize) {
        self.cfg.table_spans.insert(table, spans);
    }

    /// Whether the maintainer schedules `mode` (redo only when enabled).
    pub(super) fn has_mode(&self, mode: Mode) -> bool {
        self.modes.iter().any(|s| s.mode == mode)
    }

    /// The modes scheduled (default, then redo when enabled: the order of `self.modes`), by value,
    /// so the caller can mutate `self` while it walks them.
    pub(super) fn mode_list(&self) -> impl Iterator<Item = Mode> {
        Mode::ALL.into_iter().take(self.modes.len())
    }

    pub(super) fn ready_nodes(&self) -> Vec<NodeId> {
        self.nodes.iter().filter(|(_, i)| i.ready).map(|(n, _)| n.clone()).collect()
    }

    // ---- tick ----

    pub(super) fn tick(&mut self, now_ms: u64) {
        self.send_bootstrap_requests(now_ms);
        if self.lifecycle != Lifecycle::Running {
            return;
        }
        if !self.post_bootstrap_acked && now_ms >= self.next_post_bootstrap_ms {
            self.send_post_bootstrap();
            self.next_post_bootstrap_ms = now_ms.saturating_add(self.cfg.bootstrap_resend_ms);
        }
        for mode in self.mode_list() {
            self.schedule_absent(now_ms, mode);
        }
        if self.cfg.balance && now_ms.saturating_sub(self.last_balance_ms) >= self.cfg.balance_interval_ms {
            self.last_balance_ms = now_ms;
            for mode in self.mode_list() {
                self.balance(now_ms, mode);
            }
        }
        self.load_tick(now_ms);
        for mode in self.mode_list() {
            // Table-set changes first: an operator on a table just dropped is cancelled, not sent.
            self.barrier_tick(now_ms, mode);
            self.send_due(now_ms, mode);
            self.advance_checkpoint(mode);
        }
        self.send_orphan_removes(now_ms);
    }

    pub(super) fn send_bootstrap_requests(&mut self, now_ms: u64) {
        let due: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, i)| !i.ready && i.response.is_none() && i.next_bootstrap_ms <= now_ms)
            .map(|(n, _)| n.clone())
            .collect();
        for node in due {
            let request = self.bootstrap_request(&node);
            self.send(node.clone(), ToNode::Bootstrap(request));
            if let Some(info) = self.nodes.get_mut(&node) {
                info.next_bootstrap_ms = now_ms.saturating_add(self.cfg.bootstrap_resend_ms);
            }
        }
    }

    pub(super) fn bootstrap_request(&self, node: &NodeId) -> BootstrapRequest {
        let own = *node == self.cfg.node;
        let trigger =
            |mode| own.then(|| self.modes.iter().find(|s| s.mode == mode).map(|s| s.trigger)).flatten();
        BootstrapRequest {
            changefeed: self.cfg.changefeed.clone(),
            config: Vec::new(),
            start_ts: self.cfg.trigger_start(),
            trigger: trigger(Mode::Default),
            is_new_changefeed: false,
            redo_trigger: trigger(Mode::Redo),
            keyspace_id: self.cfg.keyspace_id,
            epoch: self.cfg.epoch,
        }
    }

    pub(super) fn send_post_bootstrap(&mut self) {
        let message = ToNode::PostBootstrap(PostBootstrapRequest {
            changefeed: self.cfg.changefeed.clone(),
            trigger: Some(self.modes[0].trigger),
            epoch: self.cfg.epoch,
        });
        self.send(self.cfg.node.clone(), message);
    }

    pub(super) fn send_due(&mut self, now_ms: u64, mode: Mode) {
        let changefeed = self.cfg.changefeed.clone();
        let state = &mut self.modes[mode];
        let ctx = MessageContext {
            sc: &state.sc,
            epoch: self.cfg.epoch,
            committed: state.committed,
            changefeed: &changefeed,
        };
        let (mut messages, mut changes) = state.oc.due(now_ms, self.cfg.resend_ms, &ctx);
        if self.cfg.mutation.has(Mutation::AbandonUnacceptedMerge) {
            // The fault re-opened: a withdrawal is not sent, the sources are handed back at once.
            let withdrawing: Vec<(NodeId, DispatcherId)> = state
                .oc
                .operators()
                .filter(|o| o.phase() == super::operator::OperatorPhase::Withdrawing)
                .filter_map(|o| o.affected_nodes().first().map(|n| ((*n).clone(), o.id)))
                .collect();
            messages.retain(|(_, msg)| {
                !matches!(msg, ToNode::Schedule(r) if withdrawing.iter().any(|(_, id)| *id == r.config.id))
            });
            for (node, id) in withdrawing {
                changes.extend(state.oc.on_status(&node, id, ComponentState::Stopped, 0));
            }
        }
        for (to, message) in messages {
            self.send(to, message);
        }
        self.apply(mode, changes);
    }

    pub(super) fn send_orphan_removes(&mut self, now_ms: u64) {
        let due: Vec<(NodeId, Mode, DispatcherId)> =
            self.orphans.iter().filter(|(_, at)| **at <= now_ms).map(|(k, _)| k.clone()).collect();
        for (node, mode, id) in due {
            let request =
                remove_request(&self.cfg.changefeed, mode, self.cfg.epoch, id, None, OperatorType::Remove);
            self.send(node.clone(), ToNode::Schedule(request));
            self.orphans.insert((node, mode, id), now_ms.saturating_add(self.cfg.resend_ms));
        }
    }

    /// Starts removing a dispatcher no span record stands for (sent on the next tick).
    pub(super) fn remove_orphan(&mut self, node: NodeId, mode: Mode, id: DispatcherId) {
        if self.nodes.get(&node).is_some_and(|i| i.ready) {
            self.orphans.entry((node, mode, id)).or_insert(0);
        }
    }

    // ---- span-controller changes ----

    /// Applies operator changes in order, then reaps finished operators.
    pub(super) fn apply(&mut self, mode: Mode, changes: Vec<Change>) {
        let mut evictions = Vec::new();
        for change in changes {
            match change {
                // After the reap: the finished merge and its occupies still hold the spans.
                Change::Evict { guard, on } => evictions.push((guard, on)),
                change => self.apply_one(mode, change),
            }
        }
        for f in self.modes[mode].oc.reap() {
            self.effects.push(Output::OperatorFinished { mode, id: f.id, kind: f.kind, outcome: f.outcome });
        }
        for (guard, on) in evictions {
            self.evict(mode, guard, on);
        }
    }

    /// Removes a failed merge's source from `on`, then hands its span to the scheduler.
    pub(super) fn evict(&mut self, mode: Mode, guard: Guard, on: NodeId) {
        let Some(record) = self.modes[mode].sc.get_guarded(guard).cloned() else { return };
        if record.node.as_ref() != Some(&on) {
            return;
        }
        if self.cfg.mutation.has(Mutation::MergeSourcesNotEvicted) {
            self.apply_one(mode, Change::Reclaim { guard, on });
            return;
        }
        let op = Operator::remove(&record, on.clone(), OperatorType::Move, AfterRemove::MarkAbsent);
        if self.admit(0, mode, op).is_err() {
            // Cannot happen once the merge is reaped; never leave the record unbound meanwhile.
            self.apply_one(mode, Change::Reclaim { guard, on });
        }
    }

    pub(super) fn apply_one(&mut self, mode: Mode, change: Change) {
        let state = &mut self.modes[mode];
        // Every change is guarded; a stale one is a no-op by design (I6), so results are ignored.
        match change {
            Change::Schedule { guard, from, to } => {
                let _ = state.sc.transition(guard, from.as_ref(), None, SpanState::Scheduling, Some(to));
            }
            Change::MarkScheduling(guard) => {
                let _ = state.sc.transition(guard, None, None, SpanState::Scheduling, None);
            }
            Change::Replicate { guard, on } => {
                let _ = state.sc.transition(guard, Some(&on), None, SpanState::Replicating, None);
            }
            Change::Absent(guard) => {
                let _ = state.sc.transition(guard, None, None, SpanState::Absent, None);
            }
            // Deferred by `apply`; one arriving here alone is evicted at once.
            Change::Evict { guard, on } => self.evict(mode, guard, on),
            Change::Reclaim { guard, on } => {
                let stopped = state.sc.get_guarded(guard).is_some_and(|r| {
                    matches!(r.component, ComponentState::Stopped | ComponentState::Removed)
                });
                let to = if stopped { SpanState::Absent } else { SpanState::Replicating };
                let _ = state.sc.transition(guard, Some(&on), None, to, None);
            }
            Change::Renew(guard) if self.cfg.mutation.has(Mutation::RenewNotOnRefusal) => {
                let _ = state.sc.transition(guard, None, None, SpanState::Absent, None);
            }
            Change::Renew(guard) => {
                if let Ok(old) = self.modes[mode].sc.delete(guard) {
                    self.insert_absent(mode, old.span, old.schema_id, old.checkpoint);
                }
            }
            Change::Delete(guard) => {
                let _ = state.sc.delete(guard);
            }
            Change::RaiseCheckpoint(guard, ts) => {
                let _ = state.sc.raise_checkpoint(guard, ts);
            }
            Change::Started(guard, ts) => state.sc.note_started(guard, ts),
            Change::Repair(table) => self.repair(mode, table),
            Change::Split { guard, into, checkpoint } => {
                if let Ok(old) = self.modes[mode].sc.delete(guard) {
                    for span in into {
                        self.insert_absent(mode, span, old.schema_id, checkpoint);
                    }
                }
            }
            Change::Release(sources) => state.oc.release(&sources),
        }
    }

    /// Inserts an absent record with a fresh id, unless its table is not live (I8).
    pub(super) fn insert_absent(
        &mut self,
        mode: Mode,
        span: TableSpan,
        schema_id: i64,
        checkpoint: Ts,
    ) -> Option<Guard> {
        let table = (span.keyspace_id, span.table_id);
        if !self.live.contains_key(&table) && !self.modes[mode].dropping.contains_key(&table) {
            return None;
        }
        let id = self.mint();
        let checkpoint = checkpoint.max(self.modes[mode].committed);
        let new =
            NewSpan { id, span, schema_id, checkpoint, component: ComponentState::Working, block: None };
        self.modes[mode].sc.insert(new, SpanState::Absent, None)
    }

    /// Adds absent records for the uncovered parts of a live table.
    pub(super) fn repair(&mut self, mode: Mode, table: TableKey) {
        let known = self.live.get(&table).or_else(|| self.modes[mode].dropping.get(&table));
        let Some((info, since)) = known.copied() else { return };
        let whole = TableSpan::whole_table(table.0, table.1);
        let parts = self.cfg.table_spans.get(&table).copied().unwrap_or(1);
        if !self.modes[mode].sc.has_table(table) {
            for part in self.initial_pieces(&whole, parts) {
                self.insert_absent(mode, part, info.schema_id, since);
            }
            return;
        }
        for hole in self.modes[mode].sc.holes(&whole) {
            self.insert_absent(mode, hole, info.schema_id, since);
        }
    }

    // ---- heartbeats ----

    pub(super) fn on_status(&mut self, now_ms: u64, mode: Mode, from: &NodeId, status: &DispatcherStatus) {
        let (id, state) = (status.id, status.state);
        let terminal = matches!(state, ComponentState::Stopped | ComponentState::Removed);
        if id == self.modes[mode].trigger {
            if *from == self.cfg.node {
                self.modes[mode].barrier.saw_trigger_checkpoint(status.checkpoint_ts);
            }
            return;
        }
        if terminal {
            self.orphans.remove(&(from.clone(), mode, id));
        }
        // A merge source counts too: its occupy operator is registered under its id.
        let had_operator = self.modes[mode].oc.get(id).is_some();
        if terminal && self.cfg.mutation.has(Mutation::SourceStoppedAcceptsMerge) {
            // The fault re-opened: a source's Stopped is taken for the merge taken up.
            let changes =
                self.modes[mode].oc.on_status(from, id, ComponentState::WaitingMerge, status.checkpoint_ts);
            self.apply(mode, changes);
        }
        let changes = self.modes[mode].oc.on_status(from, id, state, status.checkpoint_ts);
        self.apply(mode, changes);
        let sc = &mut self.modes[mode].sc;
        let Some(record) = sc.get(id) else {
            if !terminal && !had_operator {
                // Unknown to us and alive: an orphan (C2). Removed even if not Working.
                self.remove_orphan(from.clone(), mode, id);
            }
            return;
        };
        if record.node.as_ref() != Some(from) {
            // Bound elsewhere (or absent). A live copy here that no operator explains is removed
            // rather than ignored forever (C2: no orphans).
            if !terminal && !had_operator && self.modes[mode].oc.get(id).is_none() {
                self.remove_orphan(from.clone(), mode, id);
            }
            return;
        }
        // A terminal status older than what the record holds is a late copy about an earlier
        // incarnation of the id on this node (a stale answer overtaken by the new dispatcher's
        // Working): it must not unbind a dispatcher that runs.
        let accepted = sc.update_status(id, from, state, status.checkpoint_ts);
        if accepted && state == ComponentState::Working {
            self.observe_load(now_ms, mode, id, status.event_size_per_second);
        }
        if terminal && accepted && !had_operator && self.modes[mode].oc.get(id).is_none() {
            self.terminal_without_operator(mode, id);
        }
    }

    /// A bound span's dispatcher stopped and no operator expected it. The record exists, so the
    /// span is still wanted: unless another replicating span of the table covers it (a merge whose
    /// journal was lost), it is placed again.
    pub(super) fn terminal_without_operator(&mut self, mode: Mode, id: DispatcherId) {
        let sc = &self.modes[mode].sc;
        let Some(record) = sc.get(id) else { return };
        let covered = sc.table(record.table()).any(|o| {
            o.id != id
                && o.state == SpanState::Replicating
                && o.span.start_key <= record.span.start_key
                && (o.span.end_key.is_empty()
                    || (!record.span.end_key.is_empty() && o.span.end_key >= record.span.end_key))
        });
        let guard = record.guard();
        let change = if covered { Change::Delete(guard) } else { Change::Absent(guard) };
        self.apply(mode, vec![change]);
    }

    // ---- membership ----

    pub(super) fn on_node_joined(&mut self, now_ms: u64, node: NodeId) {
        // A rejoining node starts its `seq` afresh: forget what its previous life reported.
        for state in &mut self.modes {
            state.watermarks.remove(&node);
        }
        let info = self.nodes.entry(node.clone()).or_default();
        if info.ready || info.response.is_some() {
            return;
        }
        info.next_bootstrap_ms = now_ms;
        self.send_bootstrap_requests(now_ms);
    }

    pub(super) fn on_node_left(&mut self, now_ms: u64, node: &NodeId) {
        if self.nodes.remove(node).is_none() {
            return;
        }
        self.orphans.retain(|(n, _, _), _| n != node);
        match self.lifecycle {
            Lifecycle::Bootstrapping => self.try_finish_bootstrap(now_ms),
            Lifecycle::Running => {
                for mode in self.mode_list() {
                    self.modes[mode].watermarks.remove(node);
                    // Records bound there without an operator go back to the scheduler; every
                    // operator then decides for itself (C1 exact tiling, C3 no stuck operators).
                    let lost: Vec<Guard> = self.modes[mode]
                        .sc
                        .on_node(node)
                        .filter(|id| self.modes[mode].oc.get(*id).is_none())
                        .filter_map(|id| self.modes[mode].sc.get(id).map(SpanRecord::guard))
                        .collect();
                    self.apply(mode, lost.into_iter().map(Change::Absent).collect());
                    let changes = self.modes[mode].oc.on_node_removed(node);
                    self.apply(mode, changes);
                }
            }
            Lifecycle::Removing => {}
        }
    }

    // ---- schedulers ----

    /// Admits an operator and applies its start changes.
    pub(super) fn admit(&mut self, now_ms: u64, mode: Mode, op: Operator) -> Result<(), Refusal> {
        let state = &mut self.modes[mode];
        // The writer of a block event is pinned until its DONE: moved, split or merged away
        // mid-write, its write could still land after another writer was chosen (B1).
        let reshapes =
            matches!(op.op_kind(), OperatorKind::Move | OperatorKind::Split | OperatorKind::Occupy);
        if reshapes && state.barrier.writing(op.id) {
            return Err(Refusal::IdBusy(op.id));
        }
        let changes = state.oc.admit(op, &state.sc, now_ms)?;
        self.apply(mode, changes);
        Ok(())
    }

    // ---- user requests ----

    /// Admits a merge into the existing target record: an occupy per source, then the merge.
    /// `restored`: rebuilt from a node's merge journal, so already taken up by the node.
    /// On failure every occupy admitted here is cancelled and nothing else changed.
    pub(super) fn admit_merge(
        &mut self,
        now_ms: u64,
        mode: Mode,
        target: Guard,
        node: NodeId,
        sources: Vec<Guard>,
        restored: bool,
    ) -> Result<(), Refusal> {
        let mut occupied = Vec::new();
        for g in &sources {
            let op = self.modes[mode].sc.get_guarded(*g).and_then(|r| Operator::occupy(r, target.id));
            let result = match op {
                Some(op) => self.admit(now_ms, mode, op),
                None => Err(Refusal::NoSpan),
            };
            if let Err(why) = result {
                for id in occupied {
                    let changes = self.modes[mode].oc.cancel(id);
                    self.apply(mode, changes);
                }
                return Err(why);
            }
            occupied.push(g.id);
        }
        let op = {
            let sc = &self.modes[mode].sc;
            let record = sc.get_guarded(target).ok_or(Refusal::NoSpan)?;
            let max = self.cfg.merge_sends_max;
            if restored && !self.cfg.mutation.has(Mutation::RestoredMergeUnaccepted) {
                Operator::restored_merge(record, node, sources, max)
            } else {
                Operator::merge(record, node, sources, max)
            }
        };
        if let Err(why) = self.admit(now_ms, mode, op) {
            for id in occupied {
                let changes = self.modes[mode].oc.cancel(id);
                self.apply(mode, changes);
            }
            return Err(why);
        }
        Ok(())
    }

    // ---- DDL ----

    // ---- checkpoint ----
}
