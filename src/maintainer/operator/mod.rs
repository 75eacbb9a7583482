//! Operators: the state machines that change where spans run.
//!
//! An operator is pure. It reacts to [`OpEvent`]s by moving to its next phase and returning the
//! span-controller [`Change`]s the operator controller must apply (each guarded by the incarnation
//! captured when the operator was built, so a change aimed at a replaced record is a no-op). The
//! message it wants on the wire is a function of its phase ([`Operator::message`]); the controller
//! sends it on entering a phase and again every resend interval.
//!
//! Corrections to the reference, as the issue asks: a move or split leaves its remove phase only on
//! a *terminal* status from the origin (`Stopped`/`Removed`) or the origin's death, never on any
//! other non-`Working` status; a merge releases its source reservations only after the sources left
//! the span controller; a merge the node never takes up is withdrawn after a bounded number of
//! sends (its merged dispatcher removed before the sources are handed back).
//!
//! Each kind keeps only the phases it can be in: an add, remove, split or occupy has one live
//! phase, a move has [`MovePhase`], a merge [`MergePhase`]; an ended operator has its [`OperatorOutcome`].
//! [`OperatorPhase`] is the flat label observers read ([`Operator::phase`]). The transitions of each kind
//! are in its own file: `add.rs`, `remove.rs`, `moving.rs`, `split.rs`, `merge.rs`, `occupy.rs`.

mod add;
mod merge;
mod moving;
mod occupy;
mod remove;
mod split;

use std::cell::Cell;

use crate::ids::{ChangefeedId, DispatcherId, Epoch, Mode, NodeId, Ts};
use crate::messages::{
    ComponentState, DispatcherConfig, MergeRequest, OperatorType, Order, ScheduleRequest, ToNode,
};
use crate::span::TableSpan;

use super::spans::{Guard, SpanController, SpanRecord, TableKey};

/// Which operator.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum OperatorKind {
    /// Create a span's dispatcher on a node.
    Add,
    /// Remove a span's dispatcher from a node.
    Remove,
    /// Remove from the origin, then create on the destination (same id).
    Move,
    /// Remove from the origin, then replace the span by consecutive parts.
    Split,
    /// Merge consecutive spans on one node into a new span.
    Merge,
    /// Hold a merge source so nothing else touches it.
    Occupy,
}

/// Where an operator is in its life, as observers see it (tests, the simulator's coverage).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum OperatorPhase {
    /// Add: waiting for the destination's `Working`.
    Creating,
    /// Remove / split: waiting for the node's terminal status.
    Removing,
    /// Move: waiting for the origin's terminal status.
    RemoveOrigin,
    /// Move: the destination died while the origin still runs; keep removing the origin.
    AbortRemoveOrigin,
    /// Move: the origin stopped; waiting for the destination's `Working`.
    AddDest,
    /// Merge: waiting for the merged dispatcher's `Working`.
    Merging,
    /// Merge: never seen taken up after its send bound; removing the merged dispatcher and
    /// waiting for its terminal status before the sources are handed back (the node may have
    /// taken the request up after all: the sources are never freed while it could still write).
    Withdrawing,
    /// Occupy: holding a merge source.
    Holding,
    /// Finished; the outcome says how.
    Done(OperatorOutcome),
}

/// The phases of a move.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MovePhase {
    /// Waiting for the origin's terminal status.
    RemoveOrigin,
    /// The destination died while the origin still runs; keep removing the origin.
    AbortRemoveOrigin,
    /// The origin stopped; waiting for the destination's `Working`.
    AddDest,
}

/// The phases of a merge.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MergePhase {
    /// Waiting for the merged dispatcher's `Working`.
    Merging,
    /// Never seen taken up after its send bound; removing the merged dispatcher and waiting for
    /// its terminal status before the sources are handed back.
    Withdrawing,
}

/// How an operator ended.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum OperatorOutcome {
    /// Did what it was built for.
    Succeeded,
    /// Could not (node died, dispatcher refused); the span is handed back to the scheduler.
    Failed,
    /// Cancelled by DDL or by the controller.
    Cancelled,
}

/// What happened to an operator.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OpEvent<'a> {
    /// A status for the operator's id (or, for a merge, one of its sources) from `from`.
    Status {
        /// The reporting node.
        from: &'a NodeId,
        /// The dispatcher the status is about.
        id: DispatcherId,
        /// Its component state.
        state: ComponentState,
        /// Its checkpoint.
        checkpoint: Ts,
    },
    /// The node left the cluster.
    NodeRemoved(&'a NodeId),
    /// The span is being deleted (DDL) or the operator is withdrawn: stop without touching it.
    Cancelled,
    /// The message was sent again (counts towards a merge's bound).
    Resent,
    /// The merge holding this occupy has finished its span-controller work.
    Released,
}

/// A span-controller change an operator asks for. Every change names the incarnation it expects.
#[derive(Clone, PartialEq, Debug)]
pub enum Change {
    /// Bind to `to` and mark scheduling; when `from` is given the record must still be bound there.
    Schedule {
        /// The record.
        guard: Guard,
        /// Expected current node.
        from: Option<NodeId>,
        /// New node.
        to: NodeId,
    },
    /// Mark scheduling, keeping the node.
    MarkScheduling(Guard),
    /// Mark replicating on `on` (the record must be bound there).
    Replicate {
        /// The record.
        guard: Guard,
        /// Expected (and kept) node.
        on: NodeId,
    },
    /// Mark absent (clears the node): the basic scheduler places it again.
    Absent(Guard),
    /// The node refused the create for good (it answered Removed: the id closed there in this
    /// term at the very checkpoint the create starts from, so the create cannot be told from a
    /// delayed copy of the one that made it). Replace the record by an absent one with a fresh
    /// id, same range and checkpoint: resending the same id would be refused forever.
    Renew(Guard),
    /// A merge source of a failed merge: removed from `on` (resent until the node answers) and
    /// then handed to the scheduler. What the node did with it is not trusted to the statuses
    /// seen so far: the drain may have closed it and its Stopped may have been lost.
    Evict {
        /// The source record.
        guard: Guard,
        /// The merge's node.
        on: NodeId,
    },
    /// A merge source handed back: replicating on `on` if its last reported state is alive,
    /// absent if it reported a terminal state (the node closed it while draining).
    Reclaim {
        /// The source record.
        guard: Guard,
        /// The merge's node.
        on: NodeId,
    },
    /// A floor for the record's dispatcher (`SpanRecord::started`): the start of the create that
    /// made it, or a merged dispatcher's first Working checkpoint.
    Started(Guard, Ts),
    /// Delete the record.
    Delete(Guard),
    /// Add absent records for every uncovered part of a live table.
    Repair(TableKey),
    /// Raise the record's checkpoint.
    RaiseCheckpoint(Guard, Ts),
    /// Replace the record by absent records for `into` (fresh ids), starting at `checkpoint`.
    Split {
        /// The record being replaced.
        guard: Guard,
        /// The consecutive parts.
        into: Vec<TableSpan>,
        /// Start point of the parts.
        checkpoint: Ts,
    },
    /// Finish the occupy operators of these source ids.
    Release(Vec<DispatcherId>),
}

/// What a finished Remove leaves behind.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum AfterRemove {
    /// Nothing (the record was already deleted, e.g. by DROP TABLE).
    Nothing,
    /// Hand the span back to the scheduler (a restored move or split remove phase).
    MarkAbsent,
    /// Delete the record and refill its table's holes (restored or bootstrap cleanup removes).
    DeleteAndRepair,
}

/// Per-kind state.
#[derive(Clone, PartialEq, Debug)]
pub enum Kind {
    /// See [`OperatorKind::Add`].
    Add {
        /// Destination.
        dest: NodeId,
        /// `O_Add`, or `O_Split` for the parts of a split.
        op_type: OperatorType,
    },
    /// See [`OperatorKind::Remove`].
    Remove {
        /// Node captured at construction; later record changes never redirect it.
        node: NodeId,
        /// Echoed on the wire so a later maintainer knows the intent.
        op_type: OperatorType,
        /// What happens on success.
        after: AfterRemove,
    },
    /// See [`OperatorKind::Move`].
    Move {
        /// Where the span runs now.
        origin: NodeId,
        /// Where it should run.
        dest: NodeId,
        /// Where the move is.
        phase: MovePhase,
    },
    /// See [`OperatorKind::Split`].
    Split {
        /// Where the span runs now.
        origin: NodeId,
        /// The parts, consecutive, tiling the span.
        into: Vec<TableSpan>,
        /// Highest checkpoint seen from the origin (the parts start here).
        checkpoint: Ts,
    },
    /// See [`OperatorKind::Merge`]. `Operator::id` is the merged (target) id.
    Merge {
        /// The node all sources sit on.
        node: NodeId,
        /// The sources, in key order.
        sources: Vec<Guard>,
        /// Whether the node was seen taking the merge up (a source waiting or closed, or the
        /// merged dispatcher reported), or the merge was restored from a node's journal.
        accepted: bool,
        /// Sends so far.
        sends: u32,
        /// Sends after which an unaccepted merge is withdrawn.
        max_sends: u32,
        /// Where the merge is.
        phase: MergePhase,
    },
    /// See [`OperatorKind::Occupy`].
    Occupy {
        /// The source's node.
        node: NodeId,
        /// The merge (target id) that holds it.
        merge: DispatcherId,
    },
}

/// One operator.
#[derive(Clone, PartialEq, Debug)]
pub struct Operator {
    /// The id it is registered under: the span's id, or the merged id for a merge.
    pub id: DispatcherId,
    /// The record it works on (the merge target for a merge). A Remove for a deleted record keeps
    /// the guard it had; every change against it is then a no-op.
    pub guard: Guard,
    /// The span it works on (for admission and for Remove messages).
    pub span: TableSpan,
    /// Per-kind state, with the kind's own phase.
    pub kind: Kind,
    /// How it ended; `None` while it runs.
    ended: Option<OperatorOutcome>,
    /// The start ts of the last create this operator sent. A node refuses a create for good
    /// (Removed) with the start ts it refused; a Removed naming another start answers a delayed
    /// copy of an older create of the id, not ours (seed 48827 of the swarm with motifs).
    sent_start: Cell<Option<Ts>>,
}

impl Operator {
    /// An add of `record` to `dest`.
    pub fn add(record: &SpanRecord, dest: NodeId, op_type: OperatorType) -> Self {
        Self::new(record, Kind::Add { dest, op_type })
    }

    /// A remove of `record` from `node` (captured now).
    pub fn remove(record: &SpanRecord, node: NodeId, op_type: OperatorType, after: AfterRemove) -> Self {
        Self::new(record, Kind::Remove { node, op_type, after })
    }

    /// A move of `record` from its node to `dest`. `None` if the record is not bound.
    pub fn moving(record: &SpanRecord, dest: NodeId) -> Option<Self> {
        let origin = record.node.clone()?;
        Some(Self::new(record, Kind::Move { origin, dest, phase: MovePhase::RemoveOrigin }))
    }

    /// A split of `record` into `into`. `None` if the record is not bound.
    ///
    /// `None` also when `into` does not tile the span exactly: two or more non-empty pieces, each
    /// starting where the previous ends, from the span's start to its end (L1).
    pub fn split(record: &SpanRecord, into: Vec<TableSpan>) -> Option<Self> {
        let tiles = into.len() >= 2
            && into.first().is_some_and(|p| p.start_key == record.span.start_key)
            && into.last().is_some_and(|p| p.end_key == record.span.end_key)
            && into.windows(2).all(|w| w[0].is_followed_by(&w[1]))
            && into.iter().all(|p| p.is_valid() && p.table_id == record.span.table_id);
        if !tiles {
            return None;
        }
        let origin = record.node.clone()?;
        let checkpoint = record.checkpoint;
        Some(Self::new(record, Kind::Split { origin, into, checkpoint }))
    }

    /// A merge of `sources` (key order, all on `node`) into `target`.
    pub fn merge(target: &SpanRecord, node: NodeId, sources: Vec<Guard>, max_sends: u32) -> Self {
        let kind =
            Kind::Merge { node, sources, accepted: false, sends: 0, max_sends, phase: MergePhase::Merging };
        Self::new(target, kind)
    }

    /// A merge restored from a node's merge journal: the node has taken it up (its sources were
    /// reported waiting), so it is never withdrawn for want of an acknowledgement.
    pub fn restored_merge(target: &SpanRecord, node: NodeId, sources: Vec<Guard>, max_sends: u32) -> Self {
        let kind =
            Kind::Merge { node, sources, accepted: true, sends: 0, max_sends, phase: MergePhase::Merging };
        Self::new(target, kind)
    }

    /// An occupy of merge source `record` on behalf of merge `merge`.
    pub fn occupy(record: &SpanRecord, merge: DispatcherId) -> Option<Self> {
        let node = record.node.clone()?;
        Some(Self::new(record, Kind::Occupy { node, merge }))
    }

    fn new(record: &SpanRecord, kind: Kind) -> Self {
        let sent_start = Cell::new(None);
        Self {
            id: record.id,
            guard: record.guard(),
            span: record.span.clone(),
            kind,
            ended: None,
            sent_start,
        }
    }

    /// Where the operator is, as a flat label.
    pub fn phase(&self) -> OperatorPhase {
        if let Some(outcome) = self.ended {
            return OperatorPhase::Done(outcome);
        }
        match &self.kind {
            Kind::Add { .. } => OperatorPhase::Creating,
            Kind::Remove { .. } | Kind::Split { .. } => OperatorPhase::Removing,
            Kind::Move { phase: MovePhase::RemoveOrigin, .. } => OperatorPhase::RemoveOrigin,
            Kind::Move { phase: MovePhase::AbortRemoveOrigin, .. } => OperatorPhase::AbortRemoveOrigin,
            Kind::Move { phase: MovePhase::AddDest, .. } => OperatorPhase::AddDest,
            Kind::Merge { phase: MergePhase::Merging, .. } => OperatorPhase::Merging,
            Kind::Merge { phase: MergePhase::Withdrawing, .. } => OperatorPhase::Withdrawing,
            Kind::Occupy { .. } => OperatorPhase::Holding,
        }
    }

    /// Which operator this is.
    pub fn op_kind(&self) -> OperatorKind {
        match self.kind {
            Kind::Add { .. } => OperatorKind::Add,
            Kind::Remove { .. } => OperatorKind::Remove,
            Kind::Move { .. } => OperatorKind::Move,
            Kind::Split { .. } => OperatorKind::Split,
            Kind::Merge { .. } => OperatorKind::Merge,
            Kind::Occupy { .. } => OperatorKind::Occupy,
        }
    }

    /// Whether the operator has finished.
    pub fn is_finished(&self) -> bool {
        self.ended.is_some()
    }

    /// Whether the operator holds the committed checkpoint at its record's checkpoint (I10 c):
    /// everything that will start a dispatcher.
    pub fn blocks_checkpoint(&self) -> bool {
        matches!(self.kind, Kind::Add { .. } | Kind::Move { .. } | Kind::Split { .. })
    }

    /// Nodes whose death matters to the operator.
    pub fn affected_nodes(&self) -> Vec<&NodeId> {
        match &self.kind {
            Kind::Add { dest, .. } => vec![dest],
            Kind::Remove { node, .. } | Kind::Merge { node, .. } | Kind::Occupy { node, .. } => vec![node],
            Kind::Move { origin, dest, .. } => vec![origin, dest],
            Kind::Split { origin, .. } => vec![origin],
        }
    }

    /// The ids this operator reserves besides its own (a merge's sources are reserved by their
    /// occupy operators, registered separately).
    pub fn source_ids(&self) -> Vec<DispatcherId> {
        match &self.kind {
            Kind::Merge { sources, .. } => sources.iter().map(|g| g.id).collect(),
            _ => Vec::new(),
        }
    }

    /// Starts the operator: the span-controller changes of admission.
    pub fn start(&mut self) -> Vec<Change> {
        let guard = self.guard;
        match &self.kind {
            Kind::Add { dest, .. } => vec![Change::Schedule { guard, from: None, to: dest.clone() }],
            Kind::Remove { .. } | Kind::Occupy { .. } => Vec::new(),
            Kind::Move { origin, dest, .. } if origin == dest => {
                let on = origin.clone();
                self.finish(OperatorOutcome::Succeeded, vec![Change::Replicate { guard, on }])
            }
            Kind::Move { .. } | Kind::Split { .. } => vec![Change::MarkScheduling(guard)],
            Kind::Merge { sources, .. } => sources.iter().map(|g| Change::MarkScheduling(*g)).collect(),
        }
    }

    /// Feeds one event; returns the span-controller changes it causes.
    pub fn on(&mut self, event: OpEvent<'_>) -> Vec<Change> {
        if self.is_finished() {
            return Vec::new();
        }
        if event == OpEvent::Cancelled {
            return self.cancel();
        }
        match self.kind {
            Kind::Add { .. } => self.on_add(event),
            Kind::Remove { .. } => self.on_remove(event),
            Kind::Move { .. } => self.on_move(event),
            Kind::Split { .. } => self.on_split(event),
            Kind::Merge { .. } => self.on_merge(event),
            Kind::Occupy { .. } => self.on_occupy(event),
        }
    }

    /// Whether a status from `from` about `id` is this operator's own dispatcher on `node`.
    fn mine(&self, from: &NodeId, node: &NodeId, id: DispatcherId) -> bool {
        id == self.id && from == node
    }

    /// The record runs on `on`, made by this operator's create: replicating there, with the start
    /// of the last create sent as its `started`.
    fn bound_by_create(&self, guard: Guard, on: NodeId) -> Vec<Change> {
        let mut changes = vec![Change::Replicate { guard, on }];
        changes.extend(self.sent_start.get().map(|ts| Change::Started(guard, ts)));
        changes
    }

    /// Whether a Removed answering a create at `start` refuses the last create this operator sent
    /// (with any other start it answers a delayed copy of an older create).
    fn refuses_ours(&self, start: Ts) -> bool {
        self.sent_start.get() == Some(start)
    }

    fn cancel(&mut self) -> Vec<Change> {
        let guard = self.guard;
        let changes = match &self.kind {
            // Keep the node so the DDL's remove, built from the record, targets the right place.
            // Until the origin stopped (also after the dest died, S18) the record is on the origin.
            Kind::Move { origin, phase: MovePhase::RemoveOrigin | MovePhase::AbortRemoveOrigin, .. } => {
                vec![Change::Replicate { guard, on: origin.clone() }]
            }
            Kind::Move { dest, .. } => vec![Change::Replicate { guard, on: dest.clone() }],
            Kind::Add { dest, .. } => vec![Change::Replicate { guard, on: dest.clone() }],
            Kind::Split { origin, .. } => vec![Change::Replicate { guard, on: origin.clone() }],
            Kind::Merge { node, sources, .. } => {
                let mut c: Vec<Change> =
                    sources.iter().map(|g| Change::Reclaim { guard: *g, on: node.clone() }).collect();
                c.push(Change::Delete(guard));
                c.push(Change::Release(sources.iter().map(|g| g.id).collect()));
                c
            }
            Kind::Remove { .. } | Kind::Occupy { .. } => Vec::new(),
        };
        self.finish(OperatorOutcome::Cancelled, changes)
    }

    fn finish(&mut self, outcome: OperatorOutcome, changes: Vec<Change>) -> Vec<Change> {
        self.ended = Some(outcome);
        changes
    }

    /// The message this phase wants delivered, and where.
    pub fn message(&self, ctx: &MessageContext<'_>) -> Option<(NodeId, ToNode)> {
        let remove = |node: &NodeId, op_type| {
            Some((node.clone(), ToNode::Schedule(self.remove_request(ctx, node, op_type))))
        };
        if self.is_finished() {
            return None;
        }
        match &self.kind {
            Kind::Add { dest, op_type } => {
                Some((dest.clone(), ToNode::Schedule(self.create_request(ctx, *op_type)?)))
            }
            Kind::Remove { node, op_type, .. } => remove(node, *op_type),
            Kind::Move { origin, phase: MovePhase::RemoveOrigin | MovePhase::AbortRemoveOrigin, .. } => {
                remove(origin, OperatorType::Move)
            }
            Kind::Move { dest, phase: MovePhase::AddDest, .. } => {
                Some((dest.clone(), ToNode::Schedule(self.create_request(ctx, OperatorType::Move)?)))
            }
            Kind::Split { origin, .. } => remove(origin, OperatorType::Split),
            Kind::Merge { node, sources, phase: MergePhase::Merging, .. } => Some((
                node.clone(),
                ToNode::Merge(MergeRequest {
                    changefeed: ctx.changefeed.clone(),
                    sources: sources.iter().map(|g| g.id).collect(),
                    merged: self.id,
                    mode: ctx.sc.mode(),
                    epoch: ctx.epoch,
                }),
            )),
            Kind::Merge { node, phase: MergePhase::Withdrawing, .. } => remove(node, OperatorType::Remove),
            Kind::Occupy { .. } => None,
        }
    }

    fn create_request(&self, ctx: &MessageContext<'_>, op_type: OperatorType) -> Option<ScheduleRequest> {
        let record = ctx.sc.get_guarded(self.guard)?;
        let (start_ts, skip_dml_as_start_ts) = create_start_ts(record, ctx.committed);
        self.sent_start.set(Some(start_ts));
        Some(ScheduleRequest {
            changefeed: ctx.changefeed.clone(),
            config: DispatcherConfig {
                id: record.id,
                mode: ctx.sc.mode(),
                start_ts,
                schema_id: record.schema_id,
                skip_dml_as_start_ts,
            },
            order: Order::Create { span: record.span.clone() },
            operator_type: op_type,
            epoch: ctx.epoch,
        })
    }

    /// A Remove of this operator's dispatcher on `node`, fenced by the record's `started` when
    /// the record is bound there (see [`remove_request`]).
    fn remove_request(
        &self,
        ctx: &MessageContext<'_>,
        node: &NodeId,
        op_type: OperatorType,
    ) -> ScheduleRequest {
        let bound = ctx.sc.get_guarded(self.guard).filter(|r| r.node.as_ref() == Some(node));
        let floor = bound.map_or(0, |r| r.started);
        let mut request = remove_request(
            ctx.changefeed,
            ctx.sc.mode(),
            ctx.epoch,
            self.id,
            Some(self.span.clone()),
            op_type,
        );
        request.config.start_ts = floor;
        request
    }
}

/// A Remove request; span, mode and intent ride along so a later maintainer can restore it (I12).
///
/// Its `start_ts` is 0 here: any incarnation of the id. An operator that knows a floor for the
/// dispatcher it means (`SpanRecord::started`: at or above its start, at or below where it had got
/// when it was bound) puts it there instead, and the node drops a Remove whose floor is below the
/// live dispatcher's start ts: a delayed copy meant for an earlier dispatcher of the id (which
/// progressed past that floor before it stopped), that would otherwise close the new one behind
/// the maintainer's back while its node's watermark moves on without it. (The reference always
/// sends 0; its nodes ignore the field.)
pub fn remove_request(
    changefeed: &ChangefeedId,
    mode: Mode,
    epoch: Epoch,
    id: DispatcherId,
    span: Option<TableSpan>,
    operator_type: OperatorType,
) -> ScheduleRequest {
    ScheduleRequest {
        changefeed: changefeed.clone(),
        config: DispatcherConfig { id, mode, start_ts: 0, schema_id: 0, skip_dml_as_start_ts: false },
        order: Order::Remove { span },
        operator_type,
        epoch,
    }
}

/// The start ts of a create: the record's checkpoint, moved to replay a pending DDL or syncpoint
/// (B13: a span re-created mid-barrier replays it), and never below the committed checkpoint (I11).
pub fn create_start_ts(record: &SpanRecord, committed: Ts) -> (Ts, bool) {
    let mut start = record.checkpoint;
    let mut skip_dml = false;
    if let Some(block) = record.block {
        if block.is_sync_point {
            start = start.max(block.block_ts);
        } else {
            start = start.max(block.block_ts.saturating_sub(1));
            skip_dml = start + 1 == block.block_ts;
        }
    }
    if committed > start {
        start = committed;
        skip_dml = false;
    }
    (start, skip_dml)
}

/// What [`Operator::message`] needs besides the operator.
#[derive(Clone, Copy, Debug)]
pub struct MessageContext<'a> {
    /// The span controller of the operator's mode.
    pub sc: &'a SpanController,
    /// The maintainer's epoch.
    pub epoch: Epoch,
    /// The committed checkpoint of the mode.
    pub committed: Ts,
    /// The changefeed.
    pub changefeed: &'a ChangefeedId,
}
