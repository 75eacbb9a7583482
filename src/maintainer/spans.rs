//! The span controller: the maintainer's record of every desired dispatcher of one mode.
//!
//! Each span record is in one of three scheduling states (absent, scheduling, replicating) and,
//! unless absent, bound to a node. Every record carries an *incarnation* minted when it is inserted;
//! every state transition names the incarnation it expects (and, where it matters, the node and
//! the state), so a late status or a finish hook aimed at a record that has since been replaced or
//! deleted is refused instead of resurrecting it as a ghost span (I6: no ghosts).

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::{DispatcherId, IdMap, IdSet, Mode, NodeId, Ts};
use crate::messages::{ComponentState, PendingBlock};
use crate::span::TableSpan;

/// Scheduling state of a span record.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SpanState {
    /// Desired, no operator places it, bound to no node.
    Absent,
    /// An operator is working on it; bound to the operator's current node.
    Scheduling,
    /// Believed to run on its node.
    Replicating,
}

/// `(keyspace, table)`: the unit DDL creates and drops.
pub type TableKey = (u32, i64);

/// One desired dispatcher.
#[derive(Clone, PartialEq, Debug)]
pub struct SpanRecord {
    /// Dispatcher id; stable across moves.
    pub id: DispatcherId,
    /// Immutable key range.
    pub span: TableSpan,
    /// Schema of the table.
    pub schema_id: i64,
    /// Minted on insert; a transition naming another incarnation is stale.
    pub incarnation: u64,
    /// Scheduling state.
    pub state: SpanState,
    /// Bound node; `None` exactly when absent.
    pub node: Option<NodeId>,
    /// Last accepted checkpoint (monotone).
    pub checkpoint: Ts,
    /// Last accepted component state.
    pub component: ComponentState,
    /// Last pending DDL/syncpoint seen for the span, for a safe restart point.
    pub block: Option<PendingBlock>,
    /// A floor for the dispatcher the record is bound to: at or above its start ts, at or below
    /// where it had got when it was bound (the start of the create that made it, the checkpoint it
    /// reported at bootstrap, or a merged dispatcher's first Working checkpoint); 0 when unknown. A Remove carries it so that the node can tell a
    /// delayed copy meant for an earlier dispatcher of the id (see `operator::remove_request`).
    /// Forgotten whenever the record changes node.
    pub started: Ts,
}

impl SpanRecord {
    /// The record's table.
    pub fn table(&self) -> TableKey {
        (self.span.keyspace_id, self.span.table_id)
    }

    /// A guard naming this record as it is now.
    pub fn guard(&self) -> Guard {
        Guard { id: self.id, incarnation: self.incarnation }
    }
}

/// What a transition expects: this id at this incarnation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Guard {
    /// The record's id.
    pub id: DispatcherId,
    /// The incarnation the caller saw.
    pub incarnation: u64,
}

/// Why a transition was refused: the record changed under the caller. Always a no-op.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stale {
    /// No record with that id at that incarnation.
    Gone,
    /// The record is bound to another node than expected.
    Node,
    /// The record is in another state than expected.
    State,
}

/// A new record, before it has an incarnation.
#[derive(Clone, PartialEq, Debug)]
pub struct NewSpan {
    /// Dispatcher id.
    pub id: DispatcherId,
    /// Key range.
    pub span: TableSpan,
    /// Schema of the table.
    pub schema_id: i64,
    /// Initial checkpoint (the start ts of its first dispatcher, before clamping).
    pub checkpoint: Ts,
    /// Initial component state.
    pub component: ComponentState,
    /// Pending block, if known.
    pub block: Option<PendingBlock>,
}

/// One table's ids. Inserts only add to the set (a million of them at bootstrap must stay
/// cheap); the key order is rebuilt by [`SpanController::sort_tables`] for the tables that
/// changed, so that rounds reading every table in key order do not sort each time.
#[derive(Debug, Default)]
struct TableIndex {
    ids: IdSet<DispatcherId>,
    /// The ids in key order (span, then id); valid only when `sorted_fresh`.
    sorted: Vec<DispatcherId>,
    sorted_fresh: bool,
}

/// The records of one mode, with the indexes schedulers and DDL need.
#[derive(Debug)]
pub struct SpanController {
    mode: Mode,
    records: IdMap<DispatcherId, SpanRecord>,
    next_incarnation: u64,
    absent: BTreeSet<DispatcherId>,
    /// How many records each node has bound (the records themselves are found by a scan: the
    /// node index is read rarely, on node loss and by the balance scheduler, and a million
    /// inserts into per-node sets cost more than those scans).
    by_node: BTreeMap<NodeId, usize>,
    /// Ids per table, with their key order as of the last [`Self::sort_tables`].
    by_table: BTreeMap<TableKey, TableIndex>,
    /// Multiset of checkpoints of absent and scheduling records.
    unreplicated: BTreeMap<Ts, usize>,
    /// Records deleted so far (readers that keep per-record state prune it when this moved).
    deletions: u64,
}

impl SpanController {
    /// An empty controller for `mode`.
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            records: IdMap::default(),
            next_incarnation: 1,
            absent: BTreeSet::new(),
            by_node: BTreeMap::new(),
            by_table: BTreeMap::new(),
            deletions: 0,
            unreplicated: BTreeMap::new(),
        }
    }

    /// The mode this controller schedules.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The record with this id.
    pub fn get(&self, id: DispatcherId) -> Option<&SpanRecord> {
        self.records.get(&id)
    }

    /// The record this guard names, if it is still that incarnation.
    pub fn get_guarded(&self, guard: Guard) -> Option<&SpanRecord> {
        self.records.get(&guard.id).filter(|r| r.incarnation == guard.incarnation)
    }

    /// Inserts a record in `state`, bound to `node` unless absent. Returns its guard, or `None`
    /// when the id is already taken (ids are never reused for another span).
    pub fn insert(&mut self, new: NewSpan, state: SpanState, node: Option<NodeId>) -> Option<Guard> {
        let std::collections::hash_map::Entry::Vacant(slot) = self.records.entry(new.id) else { return None };
        let node = if state == SpanState::Absent { None } else { node };
        if state != SpanState::Absent && node.is_none() {
            return None;
        }
        let incarnation = self.next_incarnation;
        self.next_incarnation += 1;
        let record = SpanRecord {
            id: new.id,
            span: new.span,
            schema_id: new.schema_id,
            incarnation,
            state,
            node,
            checkpoint: new.checkpoint,
            component: new.component,
            block: new.block,
            // A record inserted replicating stands for a reported dispatcher (bootstrap).
            started: if state == SpanState::Replicating { new.checkpoint } else { 0 },
        };
        let guard = record.guard();
        let (table, id, checkpoint) = (record.table(), record.id, record.checkpoint);
        // Index before the record moves into the map, borrowing its node (no refcount traffic).
        let index = self.by_table.entry(table).or_default();
        index.ids.insert(id);
        index.sorted_fresh = false;
        index_into(
            &mut self.absent,
            &mut self.by_node,
            &mut self.unreplicated,
            id,
            state,
            record.node.as_ref(),
            checkpoint,
        );
        slot.insert(record);
        Some(guard)
    }

    /// Deletes the record this guard names. Returns it, or `Stale::Gone`.
    pub fn delete(&mut self, guard: Guard) -> Result<SpanRecord, Stale> {
        self.get_guarded(guard).ok_or(Stale::Gone)?;
        let record = self.records.remove(&guard.id).ok_or(Stale::Gone)?;
        self.deletions += 1;
        self.unindex(&record);
        let table = record.table();
        if let Some(index) = self.by_table.get_mut(&table) {
            index.ids.remove(&record.id);
            index.sorted_fresh = false;
            if index.ids.is_empty() {
                self.by_table.remove(&table);
            }
        }
        Ok(record)
    }

    /// Moves the record to `state`, bound to `node` (ignored for absent). The transition applies
    /// only if the record is still `guard`'s incarnation, and, when given, still bound to
    /// `expect_node` and in `expect_state`.
    pub fn transition(
        &mut self,
        guard: Guard,
        expect_node: Option<&NodeId>,
        expect_state: Option<SpanState>,
        state: SpanState,
        node: Option<NodeId>,
    ) -> Result<(), Stale> {
        let record = self.get_guarded(guard).ok_or(Stale::Gone)?;
        if expect_node.is_some_and(|n| record.node.as_ref() != Some(n)) {
            return Err(Stale::Node);
        }
        if expect_state.is_some_and(|s| record.state != s) {
            return Err(Stale::State);
        }
        let node = match state {
            SpanState::Absent => None,
            _ => node.or_else(|| record.node.clone()),
        };
        if state != SpanState::Absent && node.is_none() {
            // Never leave a scheduling or replicating record without a node (I5).
            return Err(Stale::Node);
        }
        let mut record = self.records.remove(&guard.id).ok_or(Stale::Gone)?;
        self.unindex(&record);
        if record.node != node {
            record.started = 0;
        }
        record.state = state;
        record.node = node;
        self.index(&record);
        // I5: absent exactly when unbound, and the absent index says the same.
        debug_assert_eq!(record.node.is_none(), state == SpanState::Absent);
        debug_assert_eq!(self.absent.contains(&record.id), state == SpanState::Absent);
        self.records.insert(record.id, record);
        Ok(())
    }

    /// Notes the floor of the dispatcher the record is bound to (`started`): for a create, the
    /// start of the last one sent (a node runs the first to arrive, and starts only grow between
    /// resends).
    pub fn note_started(&mut self, guard: Guard, ts: Ts) {
        if let Some(record) = self.records.get_mut(&guard.id).filter(|r| r.incarnation == guard.incarnation) {
            if record.node.is_some() {
                record.started = ts;
            }
        }
    }

    /// Accepts a status from `from` for the record with `id`: only if the record is bound to
    /// `from`, and only if the checkpoint does not go backwards (an equal checkpoint may change the
    /// component state). Returns whether it was accepted.
    pub fn update_status(
        &mut self,
        id: DispatcherId,
        from: &NodeId,
        component: ComponentState,
        checkpoint: Ts,
    ) -> bool {
        let Some(record) = self.records.get_mut(&id) else { return false };
        if record.node.as_ref() != Some(from) || checkpoint < record.checkpoint {
            return false;
        }
        let old = record.checkpoint;
        record.checkpoint = checkpoint;
        record.component = component;
        if record.state != SpanState::Replicating && old != checkpoint {
            untrack(&mut self.unreplicated, old);
            *self.unreplicated.entry(checkpoint).or_default() += 1;
        }
        true
    }

    /// Raises a record's checkpoint (never lowers it), whatever its node.
    pub fn raise_checkpoint(&mut self, guard: Guard, checkpoint: Ts) -> Result<(), Stale> {
        let record = self.records.get_mut(&guard.id).filter(|r| r.incarnation == guard.incarnation);
        let record = record.ok_or(Stale::Gone)?;
        if checkpoint > record.checkpoint {
            let old = std::mem::replace(&mut record.checkpoint, checkpoint);
            if record.state != SpanState::Replicating {
                untrack(&mut self.unreplicated, old);
                *self.unreplicated.entry(checkpoint).or_default() += 1;
            }
        }
        Ok(())
    }

    /// Records the block event a record's dispatcher reported waiting on: the restart point of
    /// a dispatcher re-created mid-barrier comes from it (B13).
    pub fn set_block(&mut self, id: DispatcherId, block: PendingBlock) {
        if let Some(record) = self.records.get_mut(&id) {
            record.block = Some(block);
        }
    }

    /// Forgets a record's block event once its dispatcher reported it done (a different one
    /// recorded since stays).
    pub fn clear_block(&mut self, id: DispatcherId, done: PendingBlock) {
        if let Some(record) = self.records.get_mut(&id).filter(|r| r.block == Some(done)) {
            record.block = None;
        }
    }

    /// Moves every record of `table` to schema `schema_id` (a DDL moved the table, B8).
    pub fn set_schema(&mut self, table: TableKey, schema_id: i64) {
        for id in self.by_table.get(&table).into_iter().flat_map(|t| t.ids.iter()) {
            if let Some(record) = self.records.get_mut(id) {
                record.schema_id = schema_id;
            }
        }
    }

    /// Ids of absent records, in id order.
    pub fn absent(&self) -> impl Iterator<Item = DispatcherId> + '_ {
        self.absent.iter().copied()
    }

    /// Number of absent records.
    pub fn absent_len(&self) -> usize {
        self.absent.len()
    }

    /// Ids of records bound to `node` (in no particular, but reproducible, order).
    pub fn on_node(&self, node: &NodeId) -> impl Iterator<Item = DispatcherId> + '_ {
        let node = node.clone();
        self.records.values().filter(move |r| r.node.as_ref() == Some(&node)).map(|r| r.id)
    }

    /// Nodes with at least one bound record.
    pub fn bound_nodes(&self) -> impl Iterator<Item = &NodeId> + '_ {
        self.by_node.keys()
    }

    /// Number of records bound to `node`.
    pub fn count_on(&self, node: &NodeId) -> usize {
        self.by_node.get(node).copied().unwrap_or(0)
    }

    /// Records of one table, in key order (span, then id): from the order kept by
    /// [`Self::sort_tables`] when the table has not changed since, else sorted here.
    pub fn table(&self, table: TableKey) -> impl Iterator<Item = &SpanRecord> + '_ {
        let index = self.by_table.get(&table);
        let records: Vec<&SpanRecord> = match index {
            Some(t) if t.sorted_fresh => t.sorted.iter().filter_map(|id| self.records.get(id)).collect(),
            _ => {
                let ids = index.into_iter().flat_map(|t| t.ids.iter());
                let mut records: Vec<&SpanRecord> = ids.filter_map(|id| self.records.get(id)).collect();
                records.sort_unstable_by(|a, b| a.span.cmp(&b.span).then(a.id.cmp(&b.id)));
                records
            }
        };
        records.into_iter()
    }

    /// Records deleted so far.
    pub fn deletions(&self) -> u64 {
        self.deletions
    }

    /// Rebuilds the key order of every table that changed since the last call.
    pub fn sort_tables(&mut self) {
        let records = &self.records;
        for index in self.by_table.values_mut().filter(|t| !t.sorted_fresh) {
            let mut order: Vec<&SpanRecord> = index.ids.iter().filter_map(|id| records.get(id)).collect();
            order.sort_unstable_by(|a, b| a.span.cmp(&b.span).then(a.id.cmp(&b.id)));
            index.sorted.clear();
            index.sorted.extend(order.iter().map(|r| r.id));
            index.sorted_fresh = true;
        }
    }

    /// Makes room for `additional` more records.
    pub fn reserve(&mut self, additional: usize) {
        self.records.reserve(additional);
    }

    /// Tables with at least one record.
    pub fn tables(&self) -> impl Iterator<Item = TableKey> + '_ {
        self.by_table.keys().copied()
    }

    /// Whether the table has records.
    pub fn has_table(&self, table: TableKey) -> bool {
        self.by_table.contains_key(&table)
    }

    /// Every record, in no particular order.
    pub fn records(&self) -> impl Iterator<Item = &SpanRecord> + '_ {
        self.records.values()
    }

    /// Minimum checkpoint over absent and scheduling records (`None` if there are none).
    pub fn min_unreplicated_checkpoint(&self) -> Option<Ts> {
        self.unreplicated.keys().next().copied()
    }

    /// The parts of `range` (one table's span) no record covers, in key order.
    pub fn holes(&self, range: &TableSpan) -> Vec<TableSpan> {
        let table = (range.keyspace_id, range.table_id);
        // The table index is in start-key order already; only spans with equal starts may come
        // in id order, which the sweep tolerates.
        holes_in(range, self.table(table).map(|r| &r.span).filter(|s| s.overlaps(range)))
    }

    /// Checks the controller's own structure: every index agrees with the records. Used by tests
    /// and the simulator's checker (I5, I6).
    pub fn check_indexes(&self) -> Result<(), String> {
        let mut tracked = BTreeMap::<Ts, usize>::new();
        let mut bound_count = BTreeMap::<&NodeId, usize>::new();
        for r in self.records.values() {
            let bound = r.node.is_some() && r.state != SpanState::Absent;
            if let (true, Some(n)) = (bound, &r.node) {
                *bound_count.entry(n).or_default() += 1;
            }
            match r.state {
                SpanState::Absent if r.node.is_some() || !self.absent.contains(&r.id) => {
                    return Err(format!("absent span {} bound or unindexed", r.id));
                }
                SpanState::Scheduling | SpanState::Replicating if !bound => {
                    return Err(format!("{:?} span {} not in its node index", r.state, r.id));
                }
                _ => {}
            }
            if r.state != SpanState::Replicating {
                *tracked.entry(r.checkpoint).or_default() += 1;
            }
        }
        if bound_count.len() != self.by_node.len()
            || bound_count.iter().any(|(n, c)| self.by_node.get(*n) != Some(c))
        {
            return Err("node index disagrees with the records' bindings".into());
        }
        let indexed: usize = self.by_node.values().sum::<usize>() + self.absent.len();
        if indexed != self.records.len() {
            return Err(format!("{indexed} indexed, {} records (ghost)", self.records.len()));
        }
        if tracked != self.unreplicated {
            return Err("checkpoint tracker disagrees with the records (ghost)".into());
        }
        for (table, index) in &self.by_table {
            let stale = index.sorted_fresh
                && (index.sorted.len() != index.ids.len()
                    || index.sorted.iter().any(|id| !index.ids.contains(id)));
            if stale {
                return Err(format!("table {table:?}: its key order lists other records than its index"));
            }
        }
        Ok(())
    }

    fn index(&mut self, r: &SpanRecord) {
        index_into(
            &mut self.absent,
            &mut self.by_node,
            &mut self.unreplicated,
            r.id,
            r.state,
            r.node.as_ref(),
            r.checkpoint,
        );
    }

    fn unindex(&mut self, r: &SpanRecord) {
        self.absent.remove(&r.id);
        if let Some(node) = &r.node {
            if let Some(count) = self.by_node.get_mut(node) {
                *count -= 1;
                if *count == 0 {
                    self.by_node.remove(node);
                }
            }
        }
        if r.state != SpanState::Replicating {
            untrack(&mut self.unreplicated, r.checkpoint);
        }
    }
}

fn index_into(
    absent: &mut BTreeSet<DispatcherId>,
    by_node: &mut BTreeMap<NodeId, usize>,
    unreplicated: &mut BTreeMap<Ts, usize>,
    id: DispatcherId,
    state: SpanState,
    node: Option<&NodeId>,
    checkpoint: Ts,
) {
    match (state, node) {
        (SpanState::Absent, _) | (_, None) => {
            absent.insert(id);
        }
        (_, Some(node)) => match by_node.get_mut(node) {
            Some(count) => *count += 1,
            None => {
                by_node.insert(node.clone(), 1);
            }
        },
    }
    if state != SpanState::Replicating {
        *unreplicated.entry(checkpoint).or_default() += 1;
    }
}

fn untrack(set: &mut BTreeMap<Ts, usize>, ts: Ts) {
    if let Some(n) = set.get_mut(&ts) {
        *n -= 1;
        if *n == 0 {
            set.remove(&ts);
        }
    }
}

/// The parts of `range` not covered by `covered` (in start-key order; overlaps tolerated).
pub fn holes_in<'a>(range: &TableSpan, covered: impl IntoIterator<Item = &'a TableSpan>) -> Vec<TableSpan> {
    let mut holes = Vec::new();
    let mut cursor: &[u8] = &range.start_key;
    let past_end = |k: &[u8]| !range.end_key.is_empty() && k >= &range.end_key[..];
    let hole =
        |from: &[u8], to: &[u8]| TableSpan { start_key: from.into(), end_key: to.into(), ..range.clone() };
    for s in covered {
        if past_end(cursor) {
            return holes;
        }
        if s.start_key[..] > *cursor {
            let to: &[u8] = if past_end(&s.start_key) { &range.end_key } else { &s.start_key };
            holes.push(hole(cursor, to));
        }
        if s.end_key.is_empty() {
            return holes;
        }
        if s.end_key[..] > *cursor {
            cursor = &s.end_key;
        }
    }
    if !past_end(cursor) {
        holes.push(hole(cursor, &range.end_key));
    }
    holes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> DispatcherId {
        DispatcherId::new(0, n).unwrap()
    }

    fn new_span(n: u64, span: TableSpan) -> NewSpan {
        NewSpan {
            id: id(n),
            span,
            schema_id: 1,
            checkpoint: 10,
            component: ComponentState::Working,
            block: None,
        }
    }

    #[test]
    fn stale_incarnation_transitions_are_refused_and_leave_no_ghost() {
        let mut sc = SpanController::new(Mode::Default);
        let whole = TableSpan::whole_table(0, 1);
        let old =
            sc.insert(new_span(1, whole.clone()), SpanState::Replicating, Some(NodeId::new("a"))).unwrap();
        sc.delete(old).unwrap();
        let new = sc.insert(new_span(2, whole), SpanState::Absent, None).unwrap();
        assert_eq!(sc.transition(old, None, None, SpanState::Absent, None), Err(Stale::Gone));
        assert_eq!(sc.delete(old), Err(Stale::Gone));
        sc.check_indexes().unwrap();
        assert_eq!(sc.absent().collect::<Vec<_>>(), vec![new.id]);
        assert_eq!(sc.len(), 1);
    }

    #[test]
    fn started_is_known_for_a_reported_dispatcher_and_forgotten_when_the_node_changes() {
        let mut sc = SpanController::new(Mode::Default);
        let (a, b) = (NodeId::new("a"), NodeId::new("b"));
        let g = sc
            .insert(new_span(1, TableSpan::whole_table(0, 1)), SpanState::Replicating, Some(a.clone()))
            .unwrap();
        assert_eq!(sc.get(id(1)).unwrap().started, 10, "adopted: the checkpoint it reported");
        sc.transition(g, None, None, SpanState::Replicating, None).unwrap();
        assert_eq!(sc.get(id(1)).unwrap().started, 10, "same node: the same dispatcher");
        sc.transition(g, Some(&a), None, SpanState::Scheduling, Some(b.clone())).unwrap();
        assert_eq!(sc.get(id(1)).unwrap().started, 0, "another node: not known until its create is");
        sc.note_started(g, 40);
        assert_eq!(sc.get(id(1)).unwrap().started, 40);
        sc.transition(g, None, None, SpanState::Absent, None).unwrap();
        assert_eq!(sc.get(id(1)).unwrap().started, 0);
        sc.note_started(g, 50);
        assert_eq!(sc.get(id(1)).unwrap().started, 0, "an absent record runs nothing");
        let absent = sc.insert(new_span(2, TableSpan::whole_table(0, 2)), SpanState::Absent, None).unwrap();
        assert_eq!(sc.get(absent.id).unwrap().started, 0);
    }

    #[test]
    fn transitions_check_the_expected_node_and_state() {
        let mut sc = SpanController::new(Mode::Default);
        let (a, b) = (NodeId::new("a"), NodeId::new("b"));
        let g = sc
            .insert(new_span(1, TableSpan::whole_table(0, 1)), SpanState::Replicating, Some(a.clone()))
            .unwrap();
        let to_b = |sc: &mut SpanController, from| {
            sc.transition(g, Some(from), None, SpanState::Scheduling, Some(b.clone()))
        };
        assert_eq!(to_b(&mut sc, &b), Err(Stale::Node));
        assert_eq!(to_b(&mut sc, &a), Ok(()));
        assert_eq!(
            sc.transition(g, None, Some(SpanState::Replicating), SpanState::Absent, None),
            Err(Stale::State)
        );
        assert_eq!(sc.count_on(&b), 1);
        assert_eq!(sc.count_on(&a), 0);
        sc.check_indexes().unwrap();
    }

    #[test]
    fn status_is_accepted_only_from_the_bound_node_and_never_backwards() {
        let mut sc = SpanController::new(Mode::Default);
        let a = NodeId::new("a");
        sc.insert(new_span(1, TableSpan::whole_table(0, 1)), SpanState::Scheduling, Some(a.clone())).unwrap();
        assert!(!sc.update_status(id(1), &NodeId::new("b"), ComponentState::Working, 50));
        assert!(sc.update_status(id(1), &a, ComponentState::Working, 50));
        assert!(!sc.update_status(id(1), &a, ComponentState::Stopped, 40));
        assert!(sc.update_status(id(1), &a, ComponentState::Stopped, 50));
        assert_eq!(sc.get(id(1)).unwrap().component, ComponentState::Stopped);
        assert_eq!(sc.min_unreplicated_checkpoint(), Some(50));
        sc.check_indexes().unwrap();
    }

    #[test]
    fn holes_tolerate_overlaps_and_open_ends() {
        let whole = TableSpan::whole_table(0, 3);
        let parts = whole.split_even(4).unwrap();
        let covered = [&parts[0], &parts[0], &parts[2]];
        let holes = holes_in(&whole, covered);
        assert_eq!(holes, vec![parts[1].clone(), parts[3].clone()]);
        assert!(holes_in(&whole, &parts).is_empty());
        assert_eq!(holes_in(&whole, []), vec![whole.clone()]);
    }
}
