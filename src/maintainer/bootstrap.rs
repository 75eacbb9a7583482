//! Failover recovery: rebuilding span state and unfinished operators from every node's bootstrap
//! snapshot (I12: in-flight intent survives a failover).
//!
//! The rules, in the order they run, per mode (each is a named test in `tests/it/maintainer/recovery.rs`):
//!
//! 1. **Start point.** The start ts is the highest trigger start ts any node reports, never below
//!    the persisted checkpoint. The schema snapshot at it plus the DDL history after it give every
//!    table's fate: live, dropped, or unknown (in neither). A table a dispatcher reports that is
//!    still unknown is dropped when the schema's last create/drop of it is a drop (the dispatcher
//!    may stand past it); otherwise it stays unknown, never taken for dropped.
//! 2. **Reports.** Every reported dispatcher of the mode is a candidate, except the current trigger.
//!    An old trigger is removed. When one id is reported by several nodes, one copy wins by a
//!    fixed order (Working or Initializing first, then the higher checkpoint, then the node id)
//!    and every other copy is removed: no live dispatcher is left whose statuses nobody reads.
//! 3. **Journaled removes** whose dispatcher the node still reports are restored as Remove
//!    operators with their intent: `O_Remove` deletes the span and refills the table's holes,
//!    `O_Move`/`O_Split` hand the span back to the scheduler; for a table that is not live the
//!    dispatcher is removed and no span is kept (the table-existence check the reference skips).
//! 4. **Journaled creates** (current owner only; the node never returns an older owner's) are
//!    restored as an add to the same node, unless the table is not live (stale create, S11), the
//!    dispatcher is already reported, or the span is covered by something reported.
//! 5. **Journaled merges**: a merged dispatcher past its commit point (Initializing or Working) is
//!    adopted and its sources removed; a pre-commit merge with complete evidence (target and every
//!    source reported on the node, sources waiting, consecutive, exactly covering the target) is
//!    restored with its original merged id, its occupied sources and the new epoch, as a merge the
//!    node has taken up (never withdrawn for want of an acknowledgement); a pre-commit target
//!    without complete evidence is removed (the node then aborts or ends the merge itself), and if
//!    it was MergeReady (the node may be draining) its waiting sources are removed and placed
//!    again, since one may close on its own.
//! 6. **Overlaps**: remaining candidates of a table are accepted in key order, narrower first; one
//!    that overlaps an accepted candidate or a span restored above is kept as temporary coverage
//!    under a Remove that deletes it and refills the hole once it has stopped.
//! 7. **Tiling**: accepted candidates of live tables are adopted as replicating on their node;
//!    every uncovered part of a live table becomes an absent span. Candidates of dropped tables are
//!    removed; candidates of unknown tables are adopted (tracked, never re-created).
//!
//! A node that answers after bootstrap finished has its dispatchers compared with the span
//! records: every dispatcher not bound to it is removed.

use std::collections::hash_map::Entry;
use std::collections::BTreeMap;

use crate::ids::{DispatcherId, IdMap, IdSet, Mode, NodeId, Ts};
use crate::messages::{
    BlockStage, BlockState, BootstrapResponse, BootstrapSpan, ComponentState, OperatorType, ScheduleAction,
};
use crate::span::{Key, TableSpan};

use super::core::Maintainer;
use super::event::{Lifecycle, Output};
use super::operator::{AfterRemove, Operator};
use super::schema::{fates, snapshot_fates, Fate};
use super::spans::{NewSpan, SpanRecord, SpanState};

/// A candidate: the node that reports it and what it reports.
#[derive(Default)]
struct Candidates {
    items: Vec<Option<(NodeId, BootstrapSpan)>>,
    index: IdMap<DispatcherId, usize>,
}

impl Candidates {
    fn with_capacity(n: usize) -> Self {
        let mut index = IdMap::default();
        index.reserve(n);
        Self { items: Vec::with_capacity(n), index }
    }

    fn get(&self, id: &DispatcherId) -> Option<&(NodeId, BootstrapSpan)> {
        self.items[*self.index.get(id)?].as_ref()
    }

    fn contains_key(&self, id: &DispatcherId) -> bool {
        self.get(id).is_some()
    }

    fn remove(&mut self, id: &DispatcherId) -> Option<(NodeId, BootstrapSpan)> {
        let i = self.index.remove(id)?;
        self.items[i].take()
    }

    fn values(&self) -> impl Iterator<Item = &(NodeId, BootstrapSpan)> + '_ {
        self.items.iter().flatten()
    }
}

fn state_rank(s: ComponentState) -> u8 {
    match s {
        ComponentState::Working | ComponentState::Initializing => 0,
        ComponentState::Stopped | ComponentState::Removed => 2,
        _ => 1,
    }
}

fn committed(s: ComponentState) -> bool {
    matches!(s, ComponentState::Working | ComponentState::Initializing)
}

fn into_new_span(c: BootstrapSpan) -> NewSpan {
    let block = c.pending_block();
    NewSpan {
        id: c.id,
        span: c.span,
        schema_id: c.schema_id,
        checkpoint: c.checkpoint_ts,
        component: c.state,
        block,
    }
}

fn new_span(c: &BootstrapSpan) -> NewSpan {
    NewSpan {
        id: c.id,
        span: c.span.clone(),
        schema_id: c.schema_id,
        checkpoint: c.checkpoint_ts,
        component: c.state,
        block: c.pending_block(),
    }
}

/// A record value that is never inserted: the subject of a Remove for a dispatcher no span
/// record stands for (its guard matches nothing, so its changes are no-ops).
fn detached(c: &BootstrapSpan) -> SpanRecord {
    SpanRecord {
        id: c.id,
        span: c.span.clone(),
        schema_id: c.schema_id,
        incarnation: 0,
        state: SpanState::Replicating,
        node: None,
        checkpoint: c.checkpoint_ts,
        component: c.state,
        block: c.pending_block(),
        started: 0,
    }
}

/// The spans of a snapshot blocked on an event, waiting for or carrying out its action (B17).
fn blocked_spans<'a>(
    responses: impl Iterator<Item = &'a BootstrapResponse>,
) -> Vec<(Mode, DispatcherId, BlockState)> {
    responses
        .flat_map(|r| &r.spans)
        .filter_map(|s| {
            let b = s.block.as_ref()?;
            matches!(b.stage, BlockStage::Waiting | BlockStage::Writing)
                .then(|| (s.mode, s.id, (**b).clone()))
        })
        .collect()
}

impl Maintainer {
    /// Rebuilds every mode's barrier from the blocked spans of the snapshots (B17).
    fn rebuild_barriers(&mut self, now_ms: u64, blocked: &[(Mode, DispatcherId, BlockState)]) {
        for mode in self.mode_list() {
            let states =
                blocked.iter().filter(|(m, _, _)| *m == mode).map(|(_, id, s)| (*id, s.clone())).collect();
            self.rebuild_barrier(now_ms, mode, states);
        }
    }

    pub(super) fn on_bootstrap_response(&mut self, now_ms: u64, from: NodeId, response: BootstrapResponse) {
        if !self.epoch_matches(response.epoch) {
            return; // an answer to an older maintainer's request: documented drop
        }
        let resend = self.cfg.bootstrap_resend_ms;
        let Some(info) = self.nodes.get_mut(&from) else { return };
        if info.ready || info.response.is_some() {
            return; // a duplicate
        }
        if let Some(error) = response.err.clone() {
            // Refused (e.g. an old trigger still present): ask again later.
            info.next_bootstrap_ms = now_ms.saturating_add(resend);
            self.effects.push(Output::NodeError { node: from, error });
            return;
        }
        match self.lifecycle {
            Lifecycle::Bootstrapping => {
                info.response = Some(response);
                self.try_finish_bootstrap(now_ms);
            }
            Lifecycle::Running => {
                info.ready = true;
                for state in &mut self.modes {
                    state.watermarks.remove(&from);
                }
                let blocked = blocked_spans(std::iter::once(&response));
                self.adopt_late(&from, &response);
                self.rebuild_barriers(now_ms, &blocked);
            }
            Lifecycle::Removing => {}
        }
    }

    pub(super) fn try_finish_bootstrap(&mut self, now_ms: u64) {
        if self.lifecycle != Lifecycle::Bootstrapping || self.nodes.values().any(|i| i.response.is_none()) {
            return;
        }
        let mut responses = BTreeMap::new();
        for (node, info) in &mut self.nodes {
            if let Some(r) = info.response.take() {
                responses.insert(node.clone(), r);
            }
            info.ready = true;
        }
        let blocked = blocked_spans(responses.values());
        self.recover(now_ms, responses);
        self.rebuild_barriers(now_ms, &blocked);
        self.lifecycle = Lifecycle::Running;
        self.effects.push(Output::Bootstrapped);
        self.send_post_bootstrap();
    }

    /// Rules 1-7 of the module documentation.
    fn recover(&mut self, now_ms: u64, mut responses: BTreeMap<NodeId, BootstrapResponse>) {
        // Rule 1. The snapshot plus the history after it is the schema now, whatever the ts.
        let start_ts = |mode: Mode| {
            let reported = responses.values().map(|r| match mode {
                Mode::Default => r.checkpoint_ts,
                Mode::Redo => r.redo_checkpoint_ts,
            });
            reported.max().unwrap_or(0).max(self.cfg.start_of(mode))
        };
        // The schema at the lowest mode's start: a table's records start no later than that in
        // any mode (the redo mode's spans must not start at the default mode's checkpoint and
        // skip what redo has not written yet); each mode then raises them to its own checkpoint.
        let snapshot = self.mode_list().map(start_ts).min().unwrap_or_else(|| start_ts(Mode::Default));
        // With the barrier, only the schema where the triggers start: every later DDL comes
        // through them and is applied once after its write (B8), not early from the history.
        let (point, fates) = if self.cfg.ddls_through_barrier {
            let point = self.cfg.trigger_start();
            (point, snapshot_fates(&*self.schema, point))
        } else {
            (Ts::MAX, fates(&*self.schema, snapshot))
        };
        for (table, fate) in &fates {
            match fate {
                // A DDL that reached this maintainer while it bootstrapped is newer than the view.
                Fate::Live { .. } if self.dropped.contains(table) => {}
                Fate::Live { info, since } => {
                    self.live.insert(*table, (*info, *since));
                }
                Fate::Dropped(_) => {
                    self.dropped.insert(*table);
                }
            }
        }
        // Every reported span, moved out of the responses, by mode: straight into the candidates
        // of its mode (spans of a mode not yet processed stay in the response for its turn).
        let _ = &mut responses;
        for mode in self.mode_list() {
            let cands = self.candidates(mode, &mut responses);
            self.resolve_unknown_tables(&cands, point);
            let cands = self.restore_journal(now_ms, mode, &responses, cands);
            let cands = self.restore_merges(now_ms, mode, &responses, cands);
            self.settle_candidates(now_ms, mode, cands);
        }
    }

    /// Rule 2.
    fn candidates(&mut self, mode: Mode, responses: &mut BTreeMap<NodeId, BootstrapResponse>) -> Candidates {
        let (mode, trigger) = (self.modes[mode].mode, self.modes[mode].trigger);
        let total: usize = responses.values().map(|r| r.spans.len()).sum();
        let mut cands = Candidates::with_capacity(total);
        let rank = |n: &NodeId, s: &BootstrapSpan| {
            (state_rank(s.state), std::cmp::Reverse(s.checkpoint_ts), n.clone())
        };
        let mut later = Vec::new();
        for (node, r) in responses.iter_mut() {
            for s in std::mem::take(&mut r.spans) {
                if s.mode != mode {
                    later.push(s);
                    continue;
                }
                let node = node.clone();
                if s.id == trigger {
                    continue;
                }
                if s.span.is_table_trigger() {
                    self.remove_orphan(node, mode, s.id); // an older maintainer's trigger
                    continue;
                }
                match cands.index.entry(s.id) {
                    Entry::Vacant(v) => {
                        v.insert(cands.items.len());
                        cands.items.push(Some((node, s)));
                    }
                    Entry::Occupied(o) => {
                        let id = *o.key();
                        let Some(held) = cands.items[*o.get()].as_mut() else { continue };
                        let loser = if rank(&node, &s) < rank(&held.0, &held.1) {
                            std::mem::replace(held, (node, s)).0
                        } else {
                            node
                        };
                        self.remove_orphan(loser, mode, id);
                    }
                }
            }
            r.spans = std::mem::take(&mut later);
        }
        cands
    }

    /// A table neither live nor dropped after rule 1 may have been dropped before the start ts
    /// (its dispatcher can stand past the DROP: one started at the sink's last DDL ts does): the
    /// schema's last word on it up to `point` (where the schema was read) says so, or it stays
    /// unknown.
    fn resolve_unknown_tables(&mut self, cands: &Candidates, point: Ts) {
        let mut unknown: Vec<(u32, i64)> = cands
            .values()
            .map(|(_, c)| (c.span.keyspace_id, c.span.table_id))
            .filter(|t| !self.live.contains_key(t) && !self.dropped.contains(t))
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        for table in unknown {
            if self.schema.last_drop(table.0, table.1, point).is_some() {
                self.dropped.insert(table);
            }
        }
    }

    fn table_live(&self, span: &TableSpan) -> bool {
        self.live.contains_key(&(span.keyspace_id, span.table_id))
    }

    /// Removes a reported dispatcher without keeping a span for it.
    fn remove_detached(&mut self, now_ms: u64, mode: Mode, node: &NodeId, c: &BootstrapSpan) {
        let op = Operator::remove(&detached(c), node.clone(), OperatorType::Remove, AfterRemove::Nothing);
        if self.admit(now_ms, mode, op).is_err() {
            self.remove_orphan(node.clone(), self.modes[mode].mode, c.id);
        }
    }

    /// Keeps a reported dispatcher as temporary coverage under a Remove that deletes it and
    /// refills the hole once it stopped (rule 6; also rule 3 with `O_Remove`).
    fn remove_covering(
        &mut self,
        now_ms: u64,
        mode: Mode,
        node: &NodeId,
        c: &BootstrapSpan,
        op_type: OperatorType,
    ) {
        let after = match op_type {
            OperatorType::Move | OperatorType::Split => AfterRemove::MarkAbsent,
            _ => AfterRemove::DeleteAndRepair,
        };
        let inserted = self.modes[mode].sc.insert(new_span(c), SpanState::Replicating, Some(node.clone()));
        let record = inserted.and_then(|g| self.modes[mode].sc.get_guarded(g).cloned());
        let Some(record) = record else {
            return self.remove_orphan(node.clone(), self.modes[mode].mode, c.id);
        };
        let op = Operator::remove(&record, node.clone(), op_type, after);
        if self.admit(now_ms, mode, op).is_err() {
            // Cannot happen for a fresh id; never leave the record without its remove.
            let _ = self.modes[mode].sc.delete(record.guard());
            self.remove_orphan(node.clone(), self.modes[mode].mode, c.id);
        }
    }

    /// Rules 3 and 4.
    fn restore_journal(
        &mut self,
        now_ms: u64,
        mode: Mode,
        responses: &BTreeMap<NodeId, BootstrapResponse>,
        mut cands: Candidates,
    ) -> Candidates {
        // Removes first: a remove always outranks a create of the same id (journals that disagree).
        for (node, r) in responses {
            for req in
                r.operators.iter().filter(|q| q.config.mode == mode && q.action() == ScheduleAction::Remove)
            {
                let id = req.config.id;
                let Some((cand_node, c)) = cands.get(&id) else { continue };
                if cand_node != node
                    || !matches!(
                        req.operator_type,
                        OperatorType::Remove | OperatorType::Move | OperatorType::Split
                    )
                {
                    continue;
                }
                let c = c.clone();
                if self.cfg.mutation.has(super::core::Mutation::RestoreMoveWithoutRemove)
                    && req.operator_type == OperatorType::Move
                {
                    // The deliberate bug: forget the remove, let the scheduler place it again.
                    cands.remove(&id);
                    let _ = self.modes[mode].sc.insert(new_span(&c), SpanState::Absent, None);
                    continue;
                }
                cands.remove(&id);
                if self.table_live(&c.span) {
                    self.remove_covering(now_ms, mode, node, &c, req.operator_type);
                } else {
                    self.remove_detached(now_ms, mode, node, &c);
                }
            }
        }
        for (node, r) in responses {
            for req in
                r.operators.iter().filter(|q| q.config.mode == mode && q.action() == ScheduleAction::Create)
            {
                let id = req.config.id;
                let Some(span) = req.span().cloned() else { continue };
                let table = (span.keyspace_id, span.table_id);
                let Some((info, since)) = self.live.get(&table).copied() else { continue }; // S11
                let sc = &self.modes[mode].sc;
                let covered = cands.values().any(|(_, c)| c.span.overlaps(&span))
                    || sc.table(table).any(|r| r.span.overlaps(&span));
                if cands.contains_key(&id) || sc.get(id).is_some() || covered {
                    continue;
                }
                let committed = self.modes[mode].committed;
                let new = NewSpan {
                    id,
                    span,
                    schema_id: info.schema_id,
                    checkpoint: req.config.start_ts.max(since).max(committed),
                    component: ComponentState::Working,
                    block: None,
                };
                let Some(guard) = self.modes[mode].sc.insert(new, SpanState::Absent, None) else { continue };
                let Some(record) = self.modes[mode].sc.get_guarded(guard).cloned() else { continue };
                if self.admit(now_ms, mode, Operator::add(&record, node.clone(), OperatorType::Add)).is_err()
                {
                    // Leave it absent: the basic scheduler places it.
                }
            }
        }
        cands
    }

    /// Rule 5.
    fn restore_merges(
        &mut self,
        now_ms: u64,
        mode: Mode,
        responses: &BTreeMap<NodeId, BootstrapResponse>,
        mut cands: Candidates,
    ) -> Candidates {
        for (node, r) in responses {
            for req in r.merge_operators.iter().filter(|q| q.mode == mode) {
                let on_node =
                    |id: &DispatcherId| cands.get(id).filter(|(n, _)| n == node).map(|(_, c)| c.clone());
                let Some(target) = on_node(&req.merged) else { continue }; // stale journal
                if !self.table_live(&target.span) {
                    continue; // rule 7 removes it with its table
                }
                let mut sources: Vec<BootstrapSpan> = Vec::new();
                for id in &req.sources {
                    if let Some(c) = on_node(id) {
                        if !sources.iter().any(|s| s.id == c.id) && c.id != target.id {
                            sources.push(c);
                        }
                    }
                }
                sources.sort_by(|a, b| a.span.cmp(&b.span));
                if committed(target.state) {
                    // Past the commit point: the merged span stands, the sources are leaving.
                    cands.remove(&target.id);
                    let _ = self.modes[mode].sc.insert(
                        new_span(&target),
                        SpanState::Replicating,
                        Some(node.clone()),
                    );
                    for s in &sources {
                        cands.remove(&s.id);
                        self.remove_orphan(node.clone(), mode, s.id);
                    }
                    continue;
                }
                let complete = sources.len() >= 2
                    && sources.len() == req.sources.len()
                    && sources.iter().all(|s| s.state == ComponentState::WaitingMerge)
                    && sources.windows(2).all(|w| w[0].span.is_followed_by(&w[1].span))
                    && sources[0].span.joined_with(&sources[sources.len() - 1].span) == target.span
                    && matches!(target.state, ComponentState::Preparing | ComponentState::MergeReady);
                cands.remove(&target.id);
                if !complete {
                    self.remove_covering(now_ms, mode, node, &target, OperatorType::Remove);
                    if target.state == ComponentState::MergeReady {
                        // The node may be draining: a waiting source may close on its own and
                        // its Stopped may never arrive. Remove it, then place it again.
                        for s in sources.iter().filter(|s| s.state == ComponentState::WaitingMerge) {
                            cands.remove(&s.id);
                            self.remove_covering(now_ms, mode, node, s, OperatorType::Move);
                        }
                    }
                    continue;
                }
                for s in &sources {
                    cands.remove(&s.id);
                }
                if !self.restore_merge(now_ms, mode, node, &target, &sources) {
                    // The sources stay adopted; the target goes (the node aborts its merge).
                    self.remove_covering(now_ms, mode, node, &target, OperatorType::Remove);
                }
            }
        }
        cands
    }

    fn restore_merge(
        &mut self,
        now_ms: u64,
        mode: Mode,
        node: &NodeId,
        target: &BootstrapSpan,
        sources: &[BootstrapSpan],
    ) -> bool {
        let mut guards = Vec::new();
        for s in sources {
            match self.modes[mode].sc.insert(new_span(s), SpanState::Replicating, Some(node.clone())) {
                Some(g) => guards.push(g),
                None => return false,
            }
        }
        let mut t = new_span(target);
        t.checkpoint = sources.iter().map(|s| s.checkpoint_ts).min().unwrap_or(1).max(1);
        let Some(tg) = self.modes[mode].sc.insert(t, SpanState::Scheduling, Some(node.clone())) else {
            return false;
        };
        if self.admit_merge(now_ms, mode, tg, node.clone(), guards, true).is_err() {
            let _ = self.modes[mode].sc.delete(tg);
            return false;
        }
        true
    }

    /// Rules 6 and 7.
    fn settle_candidates(&mut self, now_ms: u64, mode: Mode, cands: Candidates) {
        // The candidates' own slots (taken ones are `None`): no copy of a million entries.
        let mut list: Vec<Option<(NodeId, BootstrapSpan)>> = cands.items;
        self.modes[mode].sc.reserve(list.len());

        // Group positions by table, then order each table's candidates by key, narrower first,
        // then id: a total order, so the run is the same whatever order the nodes answered in.
        let mut by_table: IdMap<(u32, i64), Vec<u32>> = IdMap::default();
        for (i, c) in list.iter().enumerate() {
            if let Some((_, c)) = c {
                by_table.entry((c.span.keyspace_id, c.span.table_id)).or_default().push(i as u32);
            }
        }
        let mut tables: Vec<((u32, i64), Vec<u32>)> = by_table.into_iter().collect();
        tables.sort_unstable_by_key(|(t, _)| *t);
        let mut tiled: IdSet<(u32, i64)> = IdSet::default();
        for (table, mut positions) in tables {
            let key = |i: &u32| list[*i as usize].as_ref().map(|(_, c)| (&c.span, c.id));
            positions.sort_unstable_by(|a, b| key(a).cmp(&key(b)));
            let run: Vec<(NodeId, BootstrapSpan)> =
                positions.into_iter().filter_map(|i| list[i as usize].take()).collect();
            if self.dropped.contains(&table) {
                for (node, c) in &run {
                    self.remove_detached(now_ms, mode, node, c);
                }
                continue;
            }
            // Spans restored by the journal steps, then a sweep: in key order a candidate overlaps
            // an accepted one exactly when it starts before the furthest accepted end.
            let restored: Vec<TableSpan> = self.modes[mode].sc.table(table).map(|r| r.span.clone()).collect();
            let mut reach: Option<Key> = None; // furthest accepted end; empty = +inf
            let whole = TableSpan::whole_table(table.0, table.1);
            // Whether the accepted candidates alone tile the whole table so far (then the table
            // needs no hole repair: the common case, skipped for speed).
            let mut gapless = restored.is_empty();
            for (node, c) in run {
                let clashes_sweep =
                    reach.as_ref().is_some_and(|end| end.is_empty() || c.span.start_key < *end);
                if clashes_sweep || restored.iter().any(|s| s.overlaps(&c.span)) {
                    self.remove_covering(now_ms, mode, &node, &c, OperatorType::Remove);
                    gapless = false;
                    continue;
                }
                let expected_start = reach.as_ref().unwrap_or(&whole.start_key);
                gapless &= c.span.start_key == *expected_start;
                let further = match &reach {
                    None => true,
                    Some(end) => !end.is_empty() && (c.span.end_key.is_empty() || c.span.end_key > *end),
                };
                if further {
                    reach = Some(c.span.end_key.clone());
                }
                let _ = self.modes[mode].sc.insert(into_new_span(c), SpanState::Replicating, Some(node));
            }
            if gapless && reach.as_deref() == Some(&whole.end_key[..]) {
                tiled.insert(table);
            }
        }
        let live: Vec<(u32, i64)> = self.live.keys().filter(|t| !tiled.contains(*t)).copied().collect();
        for table in live {
            self.repair(mode, table);
        }
    }

    /// A node answered after bootstrap: whatever it runs that we do not bind to it is removed.
    fn adopt_late(&mut self, from: &NodeId, response: &BootstrapResponse) {
        for s in &response.spans {
            let mode = s.mode;
            if !self.has_mode(mode) {
                continue;
            }
            if s.id == self.modes[mode].trigger {
                continue;
            }
            let bound_here = self.modes[mode].sc.get(s.id).is_some_and(|r| r.node.as_ref() == Some(from));
            if !bound_here {
                self.remove_orphan(from.clone(), s.mode, s.id);
            }
        }
    }
}
