//! The barrier in the simulator: the upstream's block events (DDLs at their commit ts, syncpoints
//! at each multiple of the interval), the simulated dispatchers that meet them in their streams
//! and drive the node core's [`DispatcherBarrier`], and the simulated sink that records every
//! downstream write of a block event (deduplicated by commit ts, as a MySQL-class sink's
//! `ddl_ts` does).
//!
//! The dispatcher's stream is its checkpoint: advancing it from `c` to `c'` writes the DML in
//! `(c, c']`. That makes the safety of the barrier checkable on every advance (B3: no DML below
//! a blocking event already written; B4: nothing at or past an event not yet passed) and on
//! every pass (B2: the event was written first).

use crate::node::barrier::{BlockEvent, DispatcherBarrier, Step};

use super::*;

/// A block event's full key: (commit ts, syncpoint).
pub type Key = (Ts, bool);

/// What a block event blocks, as the upstream states it (`BlockTables`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Blocks {
    /// The listed tables (0 is the table trigger).
    Normal(Vec<i64>),
    /// Every table of a schema, and the trigger.
    Db(i64),
    /// Everything.
    All,
}

/// A DDL or a syncpoint upstream.
#[derive(Clone, Debug)]
pub struct UpstreamEvent {
    /// Its key.
    pub key: Key,
    /// Its name in traces and reports (`TRUNCATE TABLE 2 -> 3`).
    pub name: String,
    /// What it blocks.
    pub blocks: Blocks,
    /// Tables it drops, adds, moves.
    pub detail: Arc<BlockDetail>,
    /// The scenario step that issued it (a DDL), for `expect_ddl`.
    pub step: Option<usize>,
}

impl UpstreamEvent {
    /// Whether dispatcher `d` (of a table in schema `schema`) meets the event in its stream, and
    /// if so whether it is blocking there (`Some(true)`: coordinated by the barrier) or written
    /// locally (`Some(false)`), as barrier.md §1.1 rules.
    pub fn involves(&self, d: &SimDispatcher, schema: i64) -> Option<bool> {
        if self.key.1 {
            // Redo dispatchers skip syncpoints (barrier.md §1.6).
            return (d.mode == Mode::Default).then_some(true);
        }
        let trigger = d.span.is_table_trigger();
        match &self.blocks {
            Blocks::All => Some(true),
            Blocks::Db(s) => (trigger || schema == *s).then_some(true),
            Blocks::Normal(ids) => {
                let me = if trigger { 0 } else { d.span.table_id };
                if !ids.contains(&me) {
                    return None;
                }
                if ids.len() >= 2 {
                    Some(true)
                } else if trigger {
                    Some(false) // [0]: CREATE TABLE and the like, written by the trigger alone
                } else {
                    // [t]: coordinated only when the table is split into several spans.
                    Some(d.span != TableSpan::whole_table(d.span.keyspace_id, d.span.table_id))
                }
            }
        }
    }

    fn block_event(&self, blocking: bool) -> BlockEvent {
        BlockEvent {
            commit_ts: self.key.0,
            is_sync_point: self.key.1,
            blocking,
            wide: self.key.1 || !matches!(self.blocks, Blocks::Normal(_)),
            not_sync: false,
            detail: self.detail.clone(),
        }
    }
}

/// One downstream write of a block event.
#[derive(Clone, Debug)]
pub struct SinkWrite {
    /// The mode's sink.
    pub mode: Mode,
    /// The event.
    pub key: Key,
    /// The dispatcher that wrote it.
    pub by: DispatcherId,
    /// Its node.
    pub node: NodeId,
    /// The epoch of the node's owner when the write began: the maintainer generation whose Write
    /// it obeyed (a write begun under one owner may finish under the next).
    pub epoch: u64,
    /// When.
    pub at_ms: u64,
    /// The sink had it already (its `ddl_ts`): nothing was applied again.
    pub deduped: bool,
    /// The writer's node incarnation (a crash since means the writer is gone).
    pub node_incarnation: u64,
}

/// The barrier's part of a simulated dispatcher.
#[derive(Clone, Debug)]
pub struct SimBarrier {
    /// The node core's state machine, driven by the world.
    pub state: DispatcherBarrier,
    /// The last event passed (or, at start, `(start ts, false)`: a DDL at the start ts was
    /// applied before, a syncpoint there is still met).
    pub passed: Key,
    /// The event met and not done yet.
    pub pending: Option<Key>,
    /// The epoch of its node's owner when it was created (its maintainer generation).
    pub created_epoch: u64,
    /// The event whose downstream write is under way (its completion is due), with the epoch of
    /// the node's owner when the write began (the maintainer generation whose Write it obeys).
    pub writing: Option<(Key, u64)>,
}

impl SimBarrier {
    /// The barrier state of a dispatcher starting at `start_ts`, created under `epoch`.
    pub fn new(trigger: bool, start_ts: Ts, epoch: u64) -> Self {
        Self {
            state: DispatcherBarrier::new(trigger),
            passed: (start_ts, false),
            pending: None,
            created_epoch: epoch,
            writing: None,
        }
    }
}

impl World {
    /// The commit ts of a DDL issued now: the upstream ts; with the barrier, just after the last
    /// DDL when one was issued in the same millisecond (one DDL per commit ts), and never the
    /// start ts.
    pub(super) fn ddl_ts(&self) -> Ts {
        if !self.opts.barrier {
            return upstream_ts(self.now);
        }
        let last = self.last_ddl.map_or(0, |k| k.0 + 1);
        // Past the changefeed's start ts, which the first maintainer's schema snapshot holds.
        upstream_ts(self.now).max(last).max(upstream_ts(0) + 1)
    }

    /// A new upstream DDL at `ts` (from [`World::ddl_ts`]), issued by the current step.
    pub(super) fn issue(&mut self, ts: Ts, name: String, blocks: Blocks, detail: BlockDetail) -> Key {
        let key = (ts, false);
        self.trace_instant(&NodeId::new("upstream"), "ddl", format!("{name} at {ts}"));
        let step = Some(self.current_step);
        self.upstream.insert(key, UpstreamEvent { key, name, blocks, detail: Arc::new(detail), step });
        self.last_ddl = Some(key);
        key
    }

    /// Syncpoints at each multiple of the interval up to the upstream ts now.
    pub(super) fn issue_syncpoints(&mut self) {
        let interval = self.syncpoint_interval_ms;
        if interval == 0 {
            return;
        }
        let now_ts = upstream_ts(self.now);
        while self.next_syncpoint <= now_ts {
            let key = (self.next_syncpoint, true);
            let name = format!("SYNCPOINT {}", key.0);
            let detail = Arc::new(BlockDetail::default());
            self.upstream.insert(key, UpstreamEvent { key, name, blocks: Blocks::All, detail, step: None });
            self.next_syncpoint = self.next_syncpoint.saturating_add(interval);
        }
    }

    /// The schema of a table now.
    pub fn schema_of(&self, table: i64) -> i64 {
        self.table_schema.get(&table).copied().unwrap_or(1)
    }

    /// The next event dispatcher `d` meets after what it passed, with whether it blocks there.
    fn next_event(&self, d: &SimDispatcher, after: Key) -> Option<(UpstreamEvent, bool)> {
        let schema = self.schema_of(d.span.table_id);
        self.upstream
            .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            .find_map(|(_, e)| e.involves(d, schema).map(|b| (e.clone(), b)))
    }

    /// Where a dispatcher's DML ends: a dropped table has none from its DROP on (a dispatcher
    /// still closing past it writes none; it still meets later events).
    fn dml_end(&self, d: &SimDispatcher) -> Ts {
        if d.span.is_table_trigger() {
            return Ts::MAX;
        }
        self.dropped.get(&d.span.table_id).copied().unwrap_or(Ts::MAX)
    }

    /// Moves a dispatcher's stream toward `target` through the events it meets: up to the next
    /// one (its DML below it written), then the event is met and handled by the barrier; the
    /// stream stops there until the event is done.
    pub(super) fn stream(&mut self, node: &NodeId, key: (Mode, DispatcherId), target: Ts) {
        loop {
            let Some(d) = self.nodes.get(node).and_then(|n| n.dispatchers.get(&key)) else { return };
            let Some(b) = &d.barrier else { return };
            if b.pending.is_some() || d.state != ComponentState::Working {
                return;
            }
            let passed = b.passed;
            match self.next_event(d, passed) {
                Some((event, blocking)) if event.key.0 <= target => {
                    self.advance(node, key, event.key.0.saturating_sub(1));
                    if self.closing(node, key) {
                        // Being closed: it flushes what it had below the event, takes no new one.
                        return;
                    }
                    let Some(b) = self.barrier_of(node, key) else { return };
                    b.pending = Some(event.key);
                    match b.state.meet(event.block_event(blocking)) {
                        Ok(steps) => self.dispatcher_steps(node, key, steps),
                        Err(misuse) => {
                            let v = Violation::new("B19", self.now, format!("{node} {key:?}: {misuse}"));
                            return self.violate(v);
                        }
                    }
                }
                _ => return self.advance(node, key, target),
            }
        }
    }

    fn barrier_of(&mut self, node: &NodeId, key: (Mode, DispatcherId)) -> Option<&mut SimBarrier> {
        self.nodes.get_mut(node)?.dispatchers.get_mut(&key)?.barrier.as_mut()
    }

    /// Whether the dispatcher is being closed.
    fn closing(&self, node: &NodeId, key: (Mode, DispatcherId)) -> bool {
        self.nodes.get(node).and_then(|n| n.dispatchers.get(&key)).is_some_and(|d| d.closing)
    }

    /// The dispatcher's stream advances to `to`: the DML in between is written. Checked: no
    /// blocking event it meets below `to` is still unpassed (B4), and no blocking event above its
    /// checkpoint was written yet (B3: its DML below that event would land after it).
    fn advance(&mut self, node: &NodeId, key: (Mode, DispatcherId), to: Ts) {
        let Some(d) = self.nodes.get(node).and_then(|n| n.dispatchers.get(&key)) else { return };
        if to <= d.checkpoint {
            return;
        }
        let schema = self.schema_of(d.span.table_id);
        let from = d.checkpoint;
        let passed = d.barrier.as_ref().map_or((Ts::MAX, true), |b| b.passed);
        // A dropped table has no DML from its DROP on: past it, nothing below a later event.
        let dml = from.saturating_add(1) < self.dml_end(d);
        let mut found = None;
        for (event_key, e) in self.upstream.range((from + 1, false)..) {
            if *event_key <= passed || e.involves(d, schema) != Some(true) {
                continue;
            }
            if event_key.0 <= to {
                let detail = format!("{node} {key:?} wrote up to {to} past {} it has not passed", e.name);
                found = Some(Violation::new("B4", self.now, detail));
                break;
            }
            // The table trigger writes no DML: a new one replaying DDLs already written is
            // deduplicated by the sink (`ddl_ts`).
            // A syncpoint written under an earlier generation than the dispatcher's: it is a
            // re-created span replaying DML the syncpoint's snapshot already holds (at least
            // once); only DDLs raise a new span's start (`ddl_ts`).
            let replay = event_key.1
                && d.barrier.as_ref().is_some_and(|b| {
                    self.sink
                        .iter()
                        .any(|w| w.mode == key.0 && w.key == *event_key && w.epoch < b.created_epoch)
                });
            if event_key.0 > from + 1
                && dml
                && !d.span.is_table_trigger()
                && !replay
                && self.written(key.0, *event_key)
            {
                let detail = format!(
                    "{node} {key:?} writes DML from {from} below {} already written downstream",
                    e.name
                );
                found = Some(Violation::new("B3", self.now, detail));
                break;
            }
        }
        if let Some(v) = found {
            return self.violate(v);
        }
        let Some(d) = self.nodes.get_mut(node).and_then(|n| n.dispatchers.get_mut(&key)) else { return };
        d.checkpoint = to;
        self.report_checkpoint(node, key);
    }

    /// Tells the node core the dispatcher's checkpoint, capped by its barrier (B10, B11).
    pub(super) fn report_checkpoint(&mut self, node: &NodeId, key: (Mode, DispatcherId)) {
        let Some(n) = self.nodes.get(node) else { return };
        let Some(d) = n.dispatchers.get(&key) else { return };
        let Some(manager) = n.orchestrator.manager(&CHANGEFEED) else { return };
        let ts = d.barrier.as_ref().map_or(d.checkpoint, |b| b.state.checkpoint(d.checkpoint));
        if let Some(handle) = manager.status_handle_of(key.0, key.1) {
            let rate = self.rate(&d.span) as f32;
            let _ = manager.report_progress(&handle, ts, ts, rate);
        }
    }

    /// Carries out what the dispatcher's barrier asks, in order.
    pub(super) fn dispatcher_steps(&mut self, node: &NodeId, key: (Mode, DispatcherId), steps: Vec<Step>) {
        let inc = self.nodes.get(node).map_or(0, |n| n.incarnation);
        for step in steps {
            match step {
                // The simulated dispatcher holds nothing unflushed: durable at once.
                Step::Flush => {
                    let now = self.now;
                    let Some(b) = self.barrier_of(node, key) else { return };
                    match b.state.flushed(now) {
                        Ok(more) => self.dispatcher_steps(node, key, more),
                        Err(misuse) => {
                            let v = Violation::new("B19", self.now, format!("{node} {key:?}: {misuse}"));
                            return self.violate(v);
                        }
                    }
                }
                Step::Report(state) => {
                    let Some(manager) =
                        self.nodes.get(node).and_then(|n| n.orchestrator.manager(&CHANGEFEED))
                    else {
                        return;
                    };
                    let _ = manager.report_block_status(BlockStatus { id: key.1, mode: key.0, state });
                    self.schedule_flush(node);
                }
                Step::Write => {
                    let owner = self
                        .nodes
                        .get(node)
                        .and_then(|n| n.orchestrator.manager(&CHANGEFEED))
                        .map_or(0, |m| m.owner().epoch.0);
                    if let Some(b) = self.barrier_of(node, key) {
                        b.writing = b.pending.map(|k| (k, owner));
                    }
                    let n = self.nodes.get_mut(node).unwrap_or_else(|| unreachable!());
                    if n.block_write {
                        n.parked.push(Parked::Write(key.0, key.1));
                    } else {
                        let d = self.rng.range(1, 10);
                        self.schedule(d, Ev::WriteDone { node: node.clone(), inc, mode: key.0, id: key.1 });
                    }
                }
                Step::Pass => {
                    let pending = self.barrier_of(node, key).and_then(|b| b.pending);
                    if let Some(event) = pending {
                        if !self.written(key.0, event) {
                            let name = self.upstream.get(&event).map_or("?".into(), |e| e.name.clone());
                            let detail = format!("{node} {key:?} passed {name} before it was written");
                            return self.violate(Violation::new("B2", self.now, detail));
                        }
                    }
                    self.event_done(node, key);
                }
            }
        }
    }

    /// The write asked for is durable: recorded in the sink (B1 checked), then done.
    pub(super) fn write_done(&mut self, node: &NodeId, mode: Mode, id: DispatcherId) {
        let key = (mode, id);
        // Only the write this dispatcher started (not one of an earlier dispatcher of its id).
        let started =
            self.barrier_of(node, key).and_then(|b| b.writing.take().filter(|(w, _)| b.pending == Some(*w)));
        let Some((event, epoch)) = started else { return };
        let deduped = self.written(mode, event);
        let blocking = self.upstream.get(&event).is_some_and(|e| {
            self.nodes
                .get(node)
                .and_then(|n| n.dispatchers.get(&key))
                .and_then(|d| e.involves(d, self.schema_of(d.span.table_id)))
                == Some(true)
        });
        if blocking {
            // A second writer under one generation; unless the first was lost with its node
            // before its DONE could tell the maintainer (no maintainer can know such a write
            // happened: the sink's `ddl_ts` makes the second a no-op, and B1 allows no more).
            let alive =
                |w: &&SinkWrite| self.nodes.get(&w.node).is_some_and(|n| n.incarnation == w.node_incarnation);
            if let Some(twice) =
                self.sink.iter().filter(alive).find(|w| w.mode == mode && w.key == event && w.epoch == epoch)
            {
                let name = self.upstream.get(&event).map_or("?".into(), |e| e.name.clone());
                let detail = format!(
                    "{mode:?} {name} written by {} on {} and again by {id} on {node} under one maintainer (epoch {epoch})",
                    twice.by, twice.node
                );
                return self.violate(Violation::new("B1", self.now, detail));
            }
        }
        if self.debug {
            eprintln!("sink {} {mode:?} {event:?} by {id} on {node} e{epoch} deduped {deduped}", self.now);
        }
        self.sink.push(SinkWrite {
            mode,
            key: event,
            by: id,
            node: node.clone(),
            epoch,
            at_ms: self.now,
            deduped,
            node_incarnation: self.nodes.get(node).map_or(0, |n| n.incarnation),
        });
        self.event_done(node, key);
    }

    /// The write or pass of the pending event is durable: the barrier reports DONE and the
    /// stream resumes past the event.
    fn event_done(&mut self, node: &NodeId, key: (Mode, DispatcherId)) {
        let now = self.now;
        let Some(b) = self.barrier_of(node, key) else { return };
        match b.state.done(now) {
            Ok(steps) => {
                if let Some(event) = b.pending.take() {
                    b.passed = b.passed.max(event);
                }
                self.dispatcher_steps(node, key, steps);
                self.report_checkpoint(node, key);
            }
            Err(misuse) => {
                let v = Violation::new("B19", self.now, format!("{node} {key:?}: {misuse}"));
                self.violate(v);
            }
        }
    }

    /// A barrier answer the node core routed to a dispatcher.
    pub(super) fn deliver_barrier(
        &mut self,
        node: &NodeId,
        mode: Mode,
        id: DispatcherId,
        answer: &BarrierAnswer,
    ) {
        let now = self.now;
        let key = (mode, id);
        let Some(d) = self.nodes.get_mut(node).and_then(|n| n.dispatchers.get_mut(&key)) else { return };
        let read = d.checkpoint;
        let Some(b) = d.barrier.as_mut() else { return };
        let steps = b.state.answer(answer, read, now);
        self.dispatcher_steps(node, key, steps);
        self.report_checkpoint(node, key);
    }

    /// Reports whose resend time came, for every dispatcher of the node (B15).
    pub(super) fn barrier_resends(&mut self, node: &NodeId) {
        let now = self.now;
        let keys: Vec<(Mode, DispatcherId)> =
            self.nodes.get(node).map(|n| n.dispatchers.keys().copied().collect()).unwrap_or_default();
        for key in keys {
            let Some(b) = self.barrier_of(node, key) else { continue };
            let steps = b.state.tick(now);
            if !steps.is_empty() {
                self.dispatcher_steps(node, key, steps);
            }
        }
    }

    /// Where a dispatcher created now for `span` starts, from `start_ts`: a MySQL-class sink
    /// raises a table's dispatcher to the commit ts of the last DDL it executed for the table
    /// (its `ddl_ts`), so no DML below a finished DDL is replayed after it (barrier.md §5.4). The
    /// table trigger is not raised: a new maintainer reads the schema at its start checkpoint and
    /// learns the DDLs after it from its trigger, which replays them (the sink deduplicates
    /// those already written).
    pub(super) fn sink_start(&self, mode: Mode, span: &TableSpan, start_ts: Ts) -> Ts {
        if span.is_table_trigger() {
            return start_ts;
        }
        let schema = self.schema_of(span.table_id);
        let probe = SimDispatcher {
            id: DispatcherId::new(0, 1).unwrap_or_else(|| unreachable!()),
            mode,
            span: span.clone(),
            state: ComponentState::Working,
            checkpoint: start_ts,
            closing: false,
            barrier: None,
        };
        let ddl_ts = self
            .sink
            .iter()
            .filter(|w| w.mode == mode && !w.key.1 && w.key.0 > start_ts)
            .filter(|w| self.upstream.get(&w.key).is_some_and(|e| e.involves(&probe, schema).is_some()))
            .map(|w| w.key.0)
            .max();
        ddl_ts.unwrap_or(start_ts).max(start_ts)
    }

    /// Whether the mode's sink has the event.
    pub fn written(&self, mode: Mode, key: Key) -> bool {
        self.sink.iter().any(|w| w.mode == mode && w.key == key)
    }

    /// How many times the event was applied downstream in `mode` (deduplicated copies excluded).
    pub fn applied_writes(&self, mode: Mode, key: Key) -> usize {
        self.sink.iter().filter(|w| w.mode == mode && w.key == key && !w.deduped).count()
    }
}
