//! The operator controller of one mode (I3: one operator per id): admission, status routing, resends.
//!
//! At most one operator per dispatcher id and at most one per key range: an operator is refused if
//! its id is taken or its span overlaps the span of another operator, except a merge's occupy
//! operators, which sit inside the merge's own span by design. Operators are kept in id order so a
//! run is deterministic. The controller does not touch the span controller itself: operators
//! return [`Change`]s and the maintainer applies them, in order, guarded by incarnation.

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::{DispatcherId, NodeId, Ts};
use crate::messages::ComponentState;

use super::operator::{Change, Kind, MessageContext, OpEvent, Operator, OperatorKind, OperatorOutcome};
use super::spans::{SpanController, TableKey};
use crate::messages::ToNode;

/// Why an operator was not admitted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Refusal {
    /// Another operator has this id.
    IdBusy(DispatcherId),
    /// Another operator works on an overlapping span.
    SpanBusy(DispatcherId),
    /// The record the operator names is gone or replaced.
    NoSpan,
    /// The controller is frozen (removing mode, I13).
    Quiesced,
}

/// An operator that just finished.
#[derive(Clone, PartialEq, Debug)]
pub struct Finished {
    /// Its id.
    pub id: DispatcherId,
    /// Which operator.
    pub kind: OperatorKind,
    /// How it ended.
    pub outcome: OperatorOutcome,
}

#[derive(Debug)]
struct Slot {
    op: Operator,
    next_send_ms: u64,
}

/// In-flight operators of one mode.
#[derive(Debug, Default)]
pub struct OperatorController {
    ops: BTreeMap<DispatcherId, Slot>,
    by_table: BTreeMap<TableKey, BTreeSet<DispatcherId>>,
    /// Merge source id → merge id, so source statuses reach the merge.
    source_of: BTreeMap<DispatcherId, DispatcherId>,
    quiesced: bool,
}

impl OperatorController {
    /// An empty controller.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of operators.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether no operator is in flight.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The operator registered under `id`.
    pub fn get(&self, id: DispatcherId) -> Option<&Operator> {
        self.ops.get(&id).map(|s| &s.op)
    }

    /// Every operator, in id order.
    pub fn operators(&self) -> impl Iterator<Item = &Operator> + '_ {
        self.ops.values().map(|s| &s.op)
    }

    /// Number of operators of a kind.
    pub fn count(&self, kind: OperatorKind) -> usize {
        self.ops.values().filter(|s| s.op.op_kind() == kind).count()
    }

    /// Freezes the controller: no admission, no sends (removing mode, I13).
    pub fn quiesce(&mut self) {
        self.quiesced = true;
    }

    /// Whether the controller is frozen.
    pub fn is_quiesced(&self) -> bool {
        self.quiesced
    }

    /// The operator whose span overlaps `span` (other than `except`), if any.
    pub fn overlapping(
        &self,
        span: &crate::span::TableSpan,
        except: &[DispatcherId],
    ) -> Option<DispatcherId> {
        let ids = self.by_table.get(&(span.keyspace_id, span.table_id))?;
        ids.iter()
            .copied()
            .find(|id| !except.contains(id) && self.ops.get(id).is_some_and(|s| s.op.span.overlaps(span)))
    }

    /// Admits `op`: its id must be free, its record current (a Remove may name a deleted record),
    /// and its span free of other operators. On success the operator is started and its start
    /// changes are returned; its first message goes out on the next [`Self::due`].
    pub fn admit(
        &mut self,
        mut op: Operator,
        sc: &SpanController,
        now_ms: u64,
    ) -> Result<Vec<Change>, Refusal> {
        if self.quiesced {
            return Err(Refusal::Quiesced);
        }
        if self.ops.contains_key(&op.id) {
            return Err(Refusal::IdBusy(op.id));
        }
        let removes_deleted = matches!(op.kind, Kind::Remove { .. }) && sc.get(op.id).is_none();
        if !removes_deleted && sc.get_guarded(op.guard).is_none() {
            return Err(Refusal::NoSpan);
        }
        let except: Vec<DispatcherId> = match &op.kind {
            Kind::Occupy { merge, .. } => vec![*merge],
            Kind::Merge { sources, .. } => sources.iter().map(|g| g.id).collect(),
            _ => Vec::new(),
        };
        // Removes may overlap each other (two rejected overlapping dispatchers removed at once);
        // nothing may overlap an operator that starts a dispatcher, and vice versa.
        let is_remove = matches!(op.kind, Kind::Remove { .. });
        let busy = self.by_table.get(&(op.span.keyspace_id, op.span.table_id)).and_then(|ids| {
            ids.iter().copied().find(|id| {
                !except.contains(id)
                    && self.ops.get(id).is_some_and(|s| {
                        s.op.span.overlaps(&op.span)
                            && !(is_remove && matches!(s.op.kind, Kind::Remove { .. }))
                    })
            })
        });
        if let Some(other) = busy {
            return Err(Refusal::SpanBusy(other));
        }
        let changes = op.start();
        for source in op.source_ids() {
            self.source_of.insert(source, op.id);
        }
        self.by_table.entry((op.span.keyspace_id, op.span.table_id)).or_default().insert(op.id);
        self.ops.insert(op.id, Slot { op, next_send_ms: now_ms });
        Ok(changes)
    }

    /// Routes a status to the operator it concerns (its own id, or the merge holding a source).
    pub fn on_status(
        &mut self,
        from: &NodeId,
        id: DispatcherId,
        state: ComponentState,
        checkpoint: Ts,
    ) -> Vec<Change> {
        if self.quiesced {
            return Vec::new();
        }
        let target = match self.ops.get(&id) {
            Some(slot) if !matches!(slot.op.kind, Kind::Occupy { .. }) => Some(id),
            _ => self.source_of.get(&id).copied(),
        };
        let Some(target) = target else { return Vec::new() };
        let Some(slot) = self.ops.get_mut(&target) else { return Vec::new() };
        let before = slot.op.phase();
        let changes = slot.op.on(OpEvent::Status { from, id, state, checkpoint });
        if slot.op.phase() != before {
            // A new phase sends its message at once.
            slot.next_send_ms = 0;
        }
        changes
    }

    /// Tells every operator that `node` left.
    pub fn on_node_removed(&mut self, node: &NodeId) -> Vec<Change> {
        if self.quiesced {
            return Vec::new();
        }
        let mut changes = Vec::new();
        for slot in self.ops.values_mut() {
            let before = slot.op.phase();
            changes.extend(slot.op.on(OpEvent::NodeRemoved(node)));
            if slot.op.phase() != before {
                slot.next_send_ms = 0;
            }
        }
        changes
    }

    /// Cancels the operator registered under `id` (DDL, or a rollback). Returns its changes.
    pub fn cancel(&mut self, id: DispatcherId) -> Vec<Change> {
        self.ops.get_mut(&id).map(|s| s.op.on(OpEvent::Cancelled)).unwrap_or_default()
    }

    /// Releases the occupy operators of `sources`.
    pub fn release(&mut self, sources: &[DispatcherId]) {
        for id in sources {
            self.source_of.remove(id);
            if let Some(slot) = self.ops.get_mut(id) {
                slot.op.on(OpEvent::Released);
            }
        }
    }

    /// Removes finished operators and reports them.
    pub fn reap(&mut self) -> Vec<Finished> {
        let done: Vec<DispatcherId> =
            self.ops.iter().filter(|(_, s)| s.op.is_finished()).map(|(id, _)| *id).collect();
        let mut finished = Vec::with_capacity(done.len());
        for id in done {
            let Some(slot) = self.ops.remove(&id) else { continue };
            let table = (slot.op.span.keyspace_id, slot.op.span.table_id);
            if let Some(set) = self.by_table.get_mut(&table) {
                set.remove(&id);
                if set.is_empty() {
                    self.by_table.remove(&table);
                }
            }
            for source in slot.op.source_ids() {
                if self.source_of.get(&source) == Some(&id) {
                    self.source_of.remove(&source);
                }
            }
            let super::operator::OperatorPhase::Done(outcome) = slot.op.phase() else { continue };
            finished.push(Finished { id, kind: slot.op.op_kind(), outcome });
        }
        finished
    }

    /// Messages due at `now_ms`, each operator at most once per `resend_ms`. Also returns the
    /// changes of merges that gave up after their bounded sends.
    pub fn due(
        &mut self,
        now_ms: u64,
        resend_ms: u64,
        ctx: &MessageContext<'_>,
    ) -> (Vec<(NodeId, ToNode)>, Vec<Change>) {
        let mut out = Vec::new();
        let mut changes = Vec::new();
        if self.quiesced {
            return (out, changes);
        }
        for slot in self.ops.values_mut() {
            if slot.op.is_finished() || slot.next_send_ms > now_ms {
                continue;
            }
            if matches!(slot.op.kind, Kind::Merge { .. }) {
                changes.extend(slot.op.on(OpEvent::Resent));
                if slot.op.is_finished() {
                    continue;
                }
            }
            if let Some(message) = slot.op.message(ctx) {
                out.push(message);
            }
            slot.next_send_ms = now_ms.saturating_add(resend_ms);
        }
        (out, changes)
    }

    /// Minimum checkpoint of the records of operators that will start a dispatcher (I10 c).
    pub fn min_blocking_checkpoint(&self, sc: &SpanController) -> Option<Ts> {
        self.ops
            .values()
            .filter(|s| s.op.blocks_checkpoint() && !s.op.is_finished())
            .filter_map(|s| sc.get_guarded(s.op.guard).map(|r| r.checkpoint))
            .min()
    }
}
