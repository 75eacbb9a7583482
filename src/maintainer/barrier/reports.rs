//! What the barrier does with dispatchers' reports, as steps of the maintainer: block statuses
//! in, ACKs, Writes and Passes out, table-set changes applied, the tick's resends, and the
//! rebuild from a bootstrap (barrier.md §3.4-§3.7, §5, §7). The rules are in the parent module.

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::{DispatcherId, Mode, NodeId, Ts};
use crate::messages::{
    BarrierAction, BarrierAnswer, BarrierEvent, BlockDetail, BlockStage, BlockState, BlockStatus,
    BlockStatusRequest, HeartBeatResponse, Influence, InfluenceKind, PendingBlock, ToNode,
};

use super::{key_of, Blocked, Key, Phase, Scope};
use crate::maintainer::core::Maintainer;
use crate::maintainer::event::{Lifecycle, Output};
use crate::maintainer::schema::TableInfo;
use crate::maintainer::spans::{SpanState, TableKey};
use crate::mutation::Mutation;

/// Answers gathered while handling one step, sent as one response per node.
#[derive(Default)]
struct Outbox {
    answers: BTreeMap<NodeId, Vec<BarrierAnswer>>,
    acks: BTreeMap<(NodeId, Key), Vec<DispatcherId>>,
}

fn event_of(key: Key) -> BarrierEvent {
    BarrierEvent { commit_ts: key.0, is_sync_point: key.1 }
}

fn pending_of(key: Key) -> PendingBlock {
    PendingBlock { block_ts: key.0, is_sync_point: key.1 }
}

impl Outbox {
    fn ack(&mut self, to: &NodeId, key: Key, id: DispatcherId) {
        self.acks.entry((to.clone(), key)).or_default().push(id);
    }

    fn ignored(&mut self, to: &NodeId, key: Key, id: DispatcherId) {
        let answer = BarrierAnswer {
            influence: Influence::Normal { ids: vec![id] },
            action: None,
            ack: None,
            ignored: Some(event_of(key)),
        };
        self.answers.entry(to.clone()).or_default().push(answer);
    }

    fn action(&mut self, to: &NodeId, key: Key, pass: bool, influence: Influence) {
        let action = Some(BarrierAction { pass, event: event_of(key) });
        let answer = BarrierAnswer { influence, action, ack: None, ignored: None };
        self.answers.entry(to.clone()).or_default().push(answer);
    }

    fn is_empty(&self) -> bool {
        self.answers.is_empty() && self.acks.is_empty()
    }
}

impl Maintainer {
    /// A node's block statuses (barrier.md §3.4). Dropped (documented) before the bootstrap
    /// finished, from a node that has not answered it, or for a mode not scheduled; a status of
    /// another mode than its request's is dropped (B18).
    pub(crate) fn on_block_statuses(&mut self, now_ms: u64, from: &NodeId, request: BlockStatusRequest) {
        if self.lifecycle != Lifecycle::Running
            || !self.nodes.get(from).is_some_and(|i| i.ready)
            || !self.has_mode(request.mode)
        {
            return;
        }
        let mode = request.mode;
        let mut out = Outbox::default();
        let mut touched = BTreeSet::new();
        for status in request.statuses {
            if status.mode == mode {
                if let Some(key) = self.on_block_status(now_ms, mode, from, status, &mut out) {
                    touched.insert(key);
                }
            }
        }
        for key in touched {
            self.drive(now_ms, mode, key, false, &mut out);
        }
        self.post(mode, out);
    }

    /// One status; returns the key of the event it touched, to be driven after the batch.
    fn on_block_status(
        &mut self,
        now_ms: u64,
        mode: Mode,
        from: &NodeId,
        status: BlockStatus,
        out: &mut Outbox,
    ) -> Option<Key> {
        let BlockStatus { id, state, .. } = status;
        let key = key_of(&state);
        let trigger = self.modes[mode].trigger;
        if id == trigger {
            if *from != self.cfg.node {
                return None; // our trigger runs on our node; a copy elsewhere is an orphan
            }
        } else {
            let record = self.modes[mode].sc.get(id)?; // unknown: dropped, it resends (barrier.md §3.4)
            if record.node.as_ref() != Some(from) {
                return None; // a copy where the record is not bound: being removed
            }
            if record.state != SpanState::Replicating {
                // Known but not admitted yet (its operator is still running): resend soon.
                if matches!(state.stage, BlockStage::Waiting | BlockStage::None) {
                    out.ignored(from, key, id);
                }
                return None;
            }
        }
        match state.stage {
            BlockStage::Waiting => self.on_waiting(now_ms, mode, from, id, &state, out),
            BlockStage::Done => self.on_done(now_ms, mode, id, key),
            BlockStage::None if id == trigger => {
                self.on_local(now_ms, mode, from, id, &state, out);
                None
            }
            // WRITING is never sent as a status; NONE only by the trigger.
            _ => None,
        }
    }

    fn on_waiting(
        &mut self,
        now_ms: u64,
        mode: Mode,
        from: &NodeId,
        id: DispatcherId,
        state: &BlockState,
        out: &mut Outbox,
    ) -> Option<Key> {
        let key = key_of(state);
        let trigger = self.modes[mode].trigger;
        let ms = &mut self.modes[mode];
        if id != trigger {
            // It flushed everything below the event (B4): its progress is at least ts − 1.
            if let Some(guard) = ms.sc.get(id).map(|r| r.guard()) {
                let _ = ms.sc.raise_checkpoint(guard, key.0.saturating_sub(1));
            }
            ms.sc.set_block(id, pending_of(key));
        }
        if ms.barrier.completed.contains(&key) {
            // Re-created below an event already written and passed: pass it at once.
            out.ack(from, key, id);
            out.action(from, key, true, Influence::Normal { ids: vec![id] });
            return None;
        }
        if id == trigger && ms.barrier.earlier_unapplied(key) {
            let wide =
                ms.barrier.events.get(&key).map_or_else(|| Scope::of(state).wide(), |e| e.scope.wide());
            if wide {
                // B9: a DB/All participant set is read only after every earlier table-set change
                // is applied. Not acknowledged: the trigger reports again.
                return None;
            }
        }
        let event = ms.barrier.events.entry(key).or_insert_with(|| {
            let mut e = Blocked::new(state);
            e.next_send_ms = now_ms;
            e
        });
        event.waiting.insert(id);
        out.ack(from, key, id);
        if event.phase == Phase::Passing {
            // Met it after the write (re-created or moved): pass it now.
            out.action(from, key, true, Influence::Normal { ids: vec![id] });
        }
        Some(key)
    }

    fn on_done(&mut self, now_ms: u64, mode: Mode, id: DispatcherId, key: Key) -> Option<Key> {
        let trigger = self.modes[mode].trigger;
        let ms = &mut self.modes[mode];
        ms.sc.clear_block(id, pending_of(key));
        let event = ms.barrier.events.get_mut(&key)?;
        // A DONE before the write was confirmed to us: from the writer, its write is durable;
        // from anyone else, it passed the event on an earlier maintainer's Pass, which came only
        // after the write. Either way the write happened (B2 holds for the Pass phase).
        if event.phase != Phase::Passing {
            event.phase = Phase::Passing;
            event.next_send_ms = now_ms;
        }
        // The table-set changes follow the trigger's DONE (B7, B8): it has passed every earlier
        // event, so their changes are applied by now (or the DONE is not counted and comes again).
        if id == trigger && !self.apply_once(now_ms, mode, key) {
            return None;
        }
        if let Some(event) = self.modes[mode].barrier.events.get_mut(&key) {
            event.done.insert(id);
        }
        Some(key)
    }

    /// Applies the event's table-set changes once, in key order: false (nothing done) while an
    /// earlier event's changes are still to apply.
    fn apply_once(&mut self, now_ms: u64, mode: Mode, key: Key) -> bool {
        let barrier = &self.modes[mode].barrier;
        let Some(event) = barrier.events.get(&key) else { return true };
        if event.applied {
            return true;
        }
        if barrier.earlier_unapplied(key) {
            return false;
        }
        let detail = event.detail.clone();
        if !self.modes[mode].barrier.applied.contains(&key) {
            self.apply_table_changes(now_ms, mode, key.0, &detail);
            self.modes[mode].barrier.applied.insert(key);
        }
        if let Some(event) = self.modes[mode].barrier.events.get_mut(&key) {
            event.applied = true;
        }
        true
    }

    /// A non-blocking DDL the trigger wrote locally and reports because it changes the table set
    /// (stage NONE, barrier.md §1.4). Applied once, in key order after every earlier event's
    /// changes, then acknowledged (B8); until then not acknowledged, so the trigger reports again.
    fn on_local(
        &mut self,
        now_ms: u64,
        mode: Mode,
        from: &NodeId,
        id: DispatcherId,
        state: &BlockState,
        out: &mut Outbox,
    ) {
        let key = key_of(state);
        let barrier = &self.modes[mode].barrier;
        if !barrier.applied.contains(&key) {
            if barrier.earlier_unapplied(key) {
                return;
            }
            self.apply_table_changes(now_ms, mode, key.0, &state.detail.clone());
            self.modes[mode].barrier.applied.insert(key);
        }
        out.ack(from, key, id);
    }

    /// Applies an event's table-set changes to `mode`, in the order B8 names: drops (removes,
    /// then records deleted), adds (starting at the event's ts), schema moves.
    fn apply_table_changes(&mut self, now_ms: u64, mode: Mode, commit_ts: Ts, detail: &BlockDetail) {
        let keyspace = self.cfg.keyspace_id;
        if let Some(dropped) = &detail.need_dropped_tables {
            let tables: BTreeSet<TableKey> = match dropped.kind {
                InfluenceKind::Normal => {
                    dropped.table_ids.iter().filter(|t| **t != 0).map(|t| (keyspace, *t)).collect()
                }
                InfluenceKind::Db => {
                    // The schema's tables as of the event: those live since before it, and this
                    // mode's spans of those another mode's barrier dropped already. Changes apply
                    // in key order, and a trigger-written event is promoted only on the trigger's
                    // own progress, so every table created before the event is known by now; one
                    // created (or moved in) after it, or not known yet, is not dropped, should
                    // the event be applied late (after a failover): an older change never undoes
                    // a newer one (B8, H-G).
                    let schema = dropped.schema_id;
                    let live = self
                        .live
                        .iter()
                        .filter(|(_, (info, since))| info.schema_id == schema && *since < commit_ts)
                        .map(|(t, _)| *t);
                    let sc = &self.modes[mode].sc;
                    let gone = sc.records().filter(|r| r.schema_id == schema).map(|r| r.table());
                    live.chain(gone.filter(|t| self.dropped.contains(t))).collect()
                }
                InfluenceKind::All => {
                    self.refuse("block event", format!("an event at {commit_ts} drops every table; ignored"));
                    BTreeSet::new()
                }
            };
            for table in tables {
                self.drop_table_in(now_ms, mode, table);
            }
        }
        // Table 0 is the table trigger's, never a table to place (a wire default: dropped).
        for added in detail.need_added_tables.iter().filter(|t| t.table_id > 0) {
            let info =
                TableInfo { keyspace_id: keyspace, table_id: added.table_id, schema_id: added.schema_id };
            let spans = self.cfg.table_spans.get(&(keyspace, added.table_id)).copied().unwrap_or(1);
            self.create_table_in(mode, info, spans, commit_ts);
        }
        for change in &detail.updated_schemas {
            let table = (keyspace, change.table_id);
            if let Some((info, _)) = self.live.get_mut(&table) {
                info.schema_id = change.new_schema_id;
            }
            self.modes[mode].sc.set_schema(table, change.new_schema_id);
        }
    }

    /// Moves one event on as far as it can go now: coverage → Write, the write's resend, the
    /// Pass waves, completion. `force`: scan coverage whatever the hint says (the tick).
    fn drive(&mut self, now_ms: u64, mode: Mode, key: Key, force: bool, out: &mut Outbox) {
        let keyspace = self.cfg.keyspace_id;
        let own = self.cfg.node.clone();
        let resend = self.cfg.resend_ms;
        let trigger = self.modes[mode].trigger;
        let Some(phase) = self.modes[mode].barrier.events.get(&key).map(|e| e.phase) else { return };
        if phase == Phase::Collecting {
            let ms = &mut self.modes[mode];
            let trigger_cp = ms.barrier.trigger_checkpoint;
            let Some(event) = ms.barrier.events.get_mut(&key) else { return };
            if force && event.seen_passed(&ms.sc, keyspace, trigger_cp) {
                // B12: an affected span is past it; it was written under an earlier maintainer.
                // Its table-set changes wait for the trigger (its DONE, or its progress past it).
                event.phase = Phase::Passing;
                event.next_send_ms = now_ms;
            } else if event.all_waiting(&ms.sc, keyspace, trigger, force)
                || (self.cfg.mutation.has(Mutation::BarrierWriteAtFirstReport) && !event.waiting.is_empty())
            {
                let writer = if event.trigger {
                    Some(trigger)
                } else {
                    event.waiting.iter().rev().copied().find(|id| *id != trigger)
                };
                event.writer = writer;
                event.phase = Phase::Writing;
                event.next_send_ms = now_ms;
                if self.cfg.mutation.has(Mutation::BarrierApplyBeforeWrite) {
                    let _ = self.apply_once(now_ms, mode, key);
                }
            } else {
                return;
            }
        }
        let pending_apply = self.modes[mode].barrier.events.get(&key).is_some_and(|e| {
            e.phase == Phase::Passing && !e.applied && self.modes[mode].barrier.trigger_checkpoint > key.0
        });
        if pending_apply {
            // The trigger is past the event: its earlier changes are applied, this one's now.
            self.apply_once(now_ms, mode, key);
        }
        let ms = &mut self.modes[mode];
        let trigger_cp = ms.barrier.trigger_checkpoint;
        let Some(event) = ms.barrier.events.get_mut(&key) else { return };
        match event.phase {
            Phase::Collecting => {}
            Phase::Writing => {
                if now_ms < event.next_send_ms {
                    return;
                }
                let valid = |id: DispatcherId| Blocked::node_of(&ms.sc, id, trigger, &own);
                let writer = match event.writer.and_then(|w| valid(w).map(|n| (w, n))) {
                    Some(found) => Some(found),
                    // The writer vanished (moved, split, merged): another one (H-I: never a
                    // panic). The trigger never vanishes under its own maintainer.
                    None if !event.trigger => {
                        event.writer = event.reselect(&ms.sc, keyspace);
                        event.writer.and_then(|w| valid(w).map(|n| (w, n)))
                    }
                    None => None,
                };
                if let Some((writer, node)) = writer {
                    out.action(&node, key, false, Influence::Normal { ids: vec![writer] });
                }
                // The faults re-opened: every other reporter told to write too, or passed already.
                for (fault, pass) in
                    [(Mutation::BarrierEveryReporterWrites, false), (Mutation::BarrierPassWithWrite, true)]
                {
                    if !self.cfg.mutation.has(fault) {
                        continue;
                    }
                    for id in event.waiting.iter().filter(|id| Some(**id) != event.writer) {
                        if let Some(node) = valid(*id) {
                            out.action(&node, key, pass, Influence::Normal { ids: vec![*id] });
                        }
                    }
                }
                event.next_send_ms = now_ms.saturating_add(resend);
            }
            Phase::Passing => {
                if event.applied && event.all_done(&ms.sc, keyspace, trigger, trigger_cp) {
                    ms.barrier.events.remove(&key);
                    ms.barrier.completed.insert(key);
                    return;
                }
                if now_ms < event.next_send_ms {
                    return;
                }
                event.next_send_ms = now_ms.saturating_add(resend);
                let pass_trigger = event.trigger && !event.done.contains(&trigger) && trigger_cp <= key.0;
                match &event.scope {
                    Scope::Normal(_) => {
                        let mut by_node: BTreeMap<NodeId, Vec<DispatcherId>> = BTreeMap::new();
                        for r in event.pending_pass(&ms.sc, keyspace) {
                            if let Some(node) = &r.node {
                                by_node.entry(node.clone()).or_default().push(r.id);
                            }
                        }
                        if pass_trigger {
                            by_node.entry(own.clone()).or_default().push(trigger);
                        }
                        for (node, ids) in by_node {
                            out.action(&node, key, true, Influence::Normal { ids });
                        }
                    }
                    Scope::Db(schema) => {
                        let mut nodes: BTreeSet<NodeId> =
                            event.pending_pass(&ms.sc, keyspace).filter_map(|r| r.node.clone()).collect();
                        if pass_trigger {
                            nodes.insert(own.clone());
                        }
                        for node in nodes {
                            out.action(&node, key, true, Influence::Db { schema_id: *schema });
                        }
                    }
                    Scope::All => {
                        for node in self.nodes.iter().filter(|(_, i)| i.ready).map(|(n, _)| n) {
                            out.action(node, key, true, Influence::All);
                        }
                    }
                }
            }
        }
    }

    /// The barrier's tick (the maintainer's): forget what the committed checkpoint passed, then
    /// drive every event, in key order.
    pub(crate) fn barrier_tick(&mut self, now_ms: u64, mode: Mode) {
        let committed = self.modes[mode].committed;
        let barrier = &mut self.modes[mode].barrier;
        // A span re-created at the committed checkpoint may still meet a syncpoint at exactly
        // that ts, so keep what is not strictly below it.
        barrier.completed.retain(|k| k.0 >= committed);
        barrier.applied.retain(|k| k.0 >= committed);
        let keys: Vec<Key> = barrier.events.keys().copied().collect();
        let mut out = Outbox::default();
        for key in keys {
            self.drive(now_ms, mode, key, true, &mut out);
        }
        self.post(mode, out);
    }

    /// Rebuilds the events in flight from the bootstrap snapshot's block states (B17): a span
    /// WAITING counts as a report; a span WRITING may have written, so it is taken as the writer
    /// (a passer mid-Pass answers the Write with DONE, which proves the write: H-C is harmless).
    /// Spans whose record was not rebuilt are ignored (they are removed as orphans).
    pub(crate) fn rebuild_barrier(
        &mut self,
        now_ms: u64,
        mode: Mode,
        states: Vec<(DispatcherId, BlockState)>,
    ) {
        let ms = &mut self.modes[mode];
        for (id, state) in states {
            if ms.sc.get(id).is_none() {
                continue;
            }
            let key = key_of(&state);
            let event = ms.barrier.events.entry(key).or_insert_with(|| {
                let mut e = Blocked::new(&state);
                e.next_send_ms = now_ms;
                e
            });
            match state.stage {
                BlockStage::Waiting => {
                    event.waiting.insert(id);
                }
                BlockStage::Writing if event.phase == Phase::Collecting => {
                    event.waiting.insert(id);
                    event.phase = Phase::Writing;
                    event.writer = Some(id);
                }
                _ => {}
            }
        }
        // An event being written had its coverage checked by an earlier maintainer: every span
        // it blocks had flushed up to it. A span placed anew now (a hole: its dispatcher was in
        // transit at the bootstrap; already being placed, or about to be) starts at the event,
        // not below it: its DML below the event is downstream already, and replayed after the
        // write it would land behind the DDL (B3, barrier seed 7832).
        let keyspace = self.cfg.keyspace_id;
        let ms = &mut self.modes[mode];
        let writing: Vec<(Key, Scope)> = ms
            .barrier
            .events
            .values()
            .filter(|e| e.phase == Phase::Writing)
            .map(|e| (e.key, e.scope.clone()))
            .collect();
        for (key, scope) in writing {
            let holes: Vec<DispatcherId> = scope
                .records(&ms.sc, keyspace)
                .into_iter()
                .filter(|r| r.state != SpanState::Replicating)
                .filter(|r| r.block.is_none_or(|b| (b.block_ts, b.is_sync_point) < key))
                .map(|r| r.id)
                .collect();
            for id in holes {
                ms.sc.set_block(id, pending_of(key));
            }
        }
    }

    /// Sends the gathered answers: one `HeartBeatResponse` per node, fenced by our epoch.
    fn post(&mut self, mode: Mode, out: Outbox) {
        if out.is_empty() {
            return;
        }
        let Outbox { mut answers, acks } = out;
        for ((node, key), ids) in acks {
            let ack = BarrierAnswer {
                influence: Influence::Normal { ids },
                action: None,
                ack: Some(event_of(key)),
                ignored: None,
            };
            // ACKs first: a dispatcher applies ACK, then ignored, then the action (barrier.md §2).
            answers.entry(node).or_default().insert(0, ack);
        }
        for (to, answers) in answers {
            let message = ToNode::Barrier(HeartBeatResponse {
                changefeed: self.cfg.changefeed.clone(),
                answers,
                mode,
                epoch: self.cfg.epoch,
            });
            self.effects.push(Output::Send { to, message });
        }
    }
}
