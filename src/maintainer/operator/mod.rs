//! Operators: the state machines that change where spans run.
//!
//! An operator is pure. It reacts to [`OpEvent`]s by moving to its next [`Phase`] and returning the
//! span-controller [`Change`]s the operator controller must apply (each guarded by the incarnation
//! captured when the operator was built, so a change aimed at a replaced record is a no-op). The
//! message it wants on the wire is a function of its phase ([`Operator::message`]); the controller
//! sends it on entering a phase and again every resend interval.
//!
//! Corrections to the reference, as the issue asks: a move or split leaves its remove phase only on
//! a *terminal* status from the origin (`Stopped`/`Removed`) or the origin's death, never on any
//! other non-`Working` status; a merge releases its source reservations only after the sources left
//! the span controller; a merge the node never takes up is abandoned after a bounded number of sends.

use std::cell::Cell;

use crate::ids::{ChangefeedId, DispatcherId, Epoch, Mode, NodeId, Ts};
use crate::messages::{
    ComponentState, DispatcherConfig, MergeRequest, OperatorType, Order, ScheduleRequest, ToNode,
};
use crate::span::TableSpan;

use super::spans::{Guard, SpanController, SpanRecord, TableKey};

/// Which operator.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum OpKind {
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

/// Where an operator is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Phase {
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
    Done(Outcome),
}

/// How an operator ended.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Outcome {
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
    /// See [`OpKind::Add`].
    Add {
        /// Destination.
        dest: NodeId,
        /// `O_Add`, or `O_Split` for the parts of a split.
        op_type: OperatorType,
    },
    /// See [`OpKind::Remove`].
    Remove {
        /// Node captured at construction; later record changes never redirect it.
        node: NodeId,
        /// Echoed on the wire so a later maintainer knows the intent.
        op_type: OperatorType,
        /// What happens on success.
        after: AfterRemove,
    },
    /// See [`OpKind::Move`].
    Move {
        /// Where the span runs now.
        origin: NodeId,
        /// Where it should run.
        dest: NodeId,
    },
    /// See [`OpKind::Split`].
    Split {
        /// Where the span runs now.
        origin: NodeId,
        /// The parts, consecutive, tiling the span.
        into: Vec<TableSpan>,
        /// Highest checkpoint seen from the origin (the parts start here).
        checkpoint: Ts,
    },
    /// See [`OpKind::Merge`]. `Operator::id` is the merged (target) id.
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
        /// Sends after which an unaccepted merge is abandoned.
        max_sends: u32,
    },
    /// See [`OpKind::Occupy`].
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
    /// Per-kind state.
    pub kind: Kind,
    /// Current phase.
    pub phase: Phase,
    /// The start ts of the last create this operator sent. A node refuses a create for good
    /// (Removed) with the start ts it refused; a Removed naming another start answers a delayed
    /// copy of an older create of the id, not ours (seed 48827 of the swarm with motifs).
    sent_start: Cell<Option<Ts>>,
}

impl Operator {
    /// An add of `record` to `dest`.
    pub fn add(record: &SpanRecord, dest: NodeId, op_type: OperatorType) -> Self {
        Self::new(record, Kind::Add { dest, op_type }, Phase::Creating)
    }

    /// A remove of `record` from `node` (captured now).
    pub fn remove(record: &SpanRecord, node: NodeId, op_type: OperatorType, after: AfterRemove) -> Self {
        Self::new(record, Kind::Remove { node, op_type, after }, Phase::Removing)
    }

    /// A move of `record` from its node to `dest`. `None` if the record is not bound.
    pub fn moving(record: &SpanRecord, dest: NodeId) -> Option<Self> {
        let origin = record.node.clone()?;
        Some(Self::new(record, Kind::Move { origin, dest }, Phase::RemoveOrigin))
    }

    /// A split of `record` into `into`. `None` if the record is not bound.
    pub fn split(record: &SpanRecord, into: Vec<TableSpan>) -> Option<Self> {
        let origin = record.node.clone()?;
        let checkpoint = record.checkpoint;
        Some(Self::new(record, Kind::Split { origin, into, checkpoint }, Phase::Removing))
    }

    /// A merge of `sources` (key order, all on `node`) into `target`.
    pub fn merge(target: &SpanRecord, node: NodeId, sources: Vec<Guard>, max_sends: u32) -> Self {
        let kind = Kind::Merge { node, sources, accepted: false, sends: 0, max_sends };
        Self::new(target, kind, Phase::Merging)
    }

    /// A merge restored from a node's merge journal: the node has taken it up (its sources were
    /// reported waiting), so it is never withdrawn for want of an acknowledgement.
    pub fn restored_merge(target: &SpanRecord, node: NodeId, sources: Vec<Guard>, max_sends: u32) -> Self {
        let kind = Kind::Merge { node, sources, accepted: true, sends: 0, max_sends };
        Self::new(target, kind, Phase::Merging)
    }

    /// An occupy of merge source `record` on behalf of merge `merge`.
    pub fn occupy(record: &SpanRecord, merge: DispatcherId) -> Option<Self> {
        let node = record.node.clone()?;
        Some(Self::new(record, Kind::Occupy { node, merge }, Phase::Holding))
    }

    fn new(record: &SpanRecord, kind: Kind, phase: Phase) -> Self {
        let sent_start = Cell::new(None);
        Self { id: record.id, guard: record.guard(), span: record.span.clone(), kind, phase, sent_start }
    }

    /// Which operator this is.
    pub fn op_kind(&self) -> OpKind {
        match self.kind {
            Kind::Add { .. } => OpKind::Add,
            Kind::Remove { .. } => OpKind::Remove,
            Kind::Move { .. } => OpKind::Move,
            Kind::Split { .. } => OpKind::Split,
            Kind::Merge { .. } => OpKind::Merge,
            Kind::Occupy { .. } => OpKind::Occupy,
        }
    }

    /// Whether the operator has finished.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Done(_))
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
            Kind::Move { origin, dest } => vec![origin, dest],
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
            Kind::Move { origin, dest } if origin == dest => {
                self.phase = Phase::Done(Outcome::Succeeded);
                vec![Change::Replicate { guard, on: origin.clone() }]
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
        let guard = self.guard;
        let terminal = |s: ComponentState| matches!(s, ComponentState::Stopped | ComponentState::Removed);
        let id = self.id;
        let for_me = |from: &NodeId, node: &NodeId, sid: DispatcherId| sid == id && from == node;
        // Whether a Removed answering a create at `start` refuses the last create this operator
        // sent (with any other start it answers a delayed copy of an older create).
        let sent_start = self.sent_start.get();
        let refuses_ours = |start: Ts| sent_start == Some(start);
        match (&mut self.kind, self.phase, event) {
            // ---- add ----
            (Kind::Add { dest, .. }, Phase::Creating, OpEvent::Status { from, id, state, checkpoint })
                if for_me(from, dest, id) =>
            {
                let on = dest.clone();
                match state {
                    ComponentState::Working => {
                        self.finish(Outcome::Succeeded, vec![Change::Replicate { guard, on }])
                    }
                    ComponentState::Removed if refuses_ours(checkpoint) => {
                        self.finish(Outcome::Failed, vec![Change::Renew(guard)])
                    }
                    // A Stopped here is the answer to an older remove of this id, or a create
                    // refused as older than where a dispatcher of this id stopped on `dest`:
                    // neither tells us the create failed for good. Keep resending, from that
                    // dispatcher's final checkpoint when it is higher (data up to it is flushed).
                    ComponentState::Stopped => vec![Change::RaiseCheckpoint(guard, checkpoint)],
                    _ => Vec::new(),
                }
            }
            (Kind::Add { dest, .. }, Phase::Creating, OpEvent::NodeRemoved(n)) if n == dest => {
                self.finish(Outcome::Failed, vec![Change::Absent(guard)])
            }
            // ---- remove ----
            (
                Kind::Remove { node, after, .. },
                Phase::Removing,
                OpEvent::Status { from, id, state, checkpoint },
            ) if for_me(from, node, id) && terminal(state) => {
                let after = *after;
                let mut changes = vec![Change::RaiseCheckpoint(guard, checkpoint)];
                changes.extend(self.after_remove(after));
                self.finish(Outcome::Succeeded, changes)
            }
            (Kind::Remove { node, after, .. }, Phase::Removing, OpEvent::NodeRemoved(n)) if n == node => {
                let after = *after;
                let changes = self.after_remove(after);
                self.finish(Outcome::Succeeded, changes)
            }
            // ---- move ----
            (
                Kind::Move { origin, dest },
                Phase::RemoveOrigin,
                OpEvent::Status { from, id, state, checkpoint },
            ) if for_me(from, origin, id) && terminal(state) => {
                // The destination starts where the origin stopped (never lower: a 0 is a no-op).
                let change = Change::Schedule { guard, from: Some(origin.clone()), to: dest.clone() };
                self.phase = Phase::AddDest;
                vec![Change::RaiseCheckpoint(guard, checkpoint), change]
            }
            (Kind::Move { origin, dest }, Phase::RemoveOrigin, OpEvent::NodeRemoved(n)) if n == origin => {
                let change = Change::Schedule { guard, from: Some(origin.clone()), to: dest.clone() };
                self.phase = Phase::AddDest;
                vec![change]
            }
            (Kind::Move { dest, .. }, Phase::RemoveOrigin, OpEvent::NodeRemoved(n)) if n == dest => {
                // S18: the origin may still run; keep removing it, mark absent only once it stopped.
                self.phase = Phase::AbortRemoveOrigin;
                Vec::new()
            }
            (
                Kind::Move { origin, .. },
                Phase::AbortRemoveOrigin,
                OpEvent::Status { from, id, state, checkpoint },
            ) if for_me(from, origin, id) && terminal(state) => self.finish(
                Outcome::Failed,
                vec![Change::RaiseCheckpoint(guard, checkpoint), Change::Absent(guard)],
            ),
            (Kind::Move { origin, .. }, Phase::AbortRemoveOrigin, OpEvent::NodeRemoved(n)) if n == origin => {
                self.finish(Outcome::Failed, vec![Change::Absent(guard)])
            }
            (Kind::Move { dest, .. }, Phase::AddDest, OpEvent::Status { from, id, state, .. })
                if for_me(from, dest, id) && state == ComponentState::Working =>
            {
                let on = dest.clone();
                self.finish(Outcome::Succeeded, vec![Change::Replicate { guard, on }])
            }
            (Kind::Move { dest, .. }, Phase::AddDest, OpEvent::Status { from, id, state, checkpoint })
                if for_me(from, dest, id) && state == ComponentState::Stopped =>
            {
                // As for an add: resend from where a dispatcher of this id stopped on `dest`.
                vec![Change::RaiseCheckpoint(guard, checkpoint)]
            }
            (Kind::Move { dest, .. }, Phase::AddDest, OpEvent::Status { from, id, state, checkpoint })
                if for_me(from, dest, id) && state == ComponentState::Removed && refuses_ours(checkpoint) =>
            {
                // The destination refused the create for good (as for an add).
                self.finish(Outcome::Failed, vec![Change::Renew(guard)])
            }
            (Kind::Move { dest, .. }, Phase::AddDest, OpEvent::NodeRemoved(n)) if n == dest => {
                self.finish(Outcome::Failed, vec![Change::Absent(guard)])
            }
            // ---- split ----
            (
                Kind::Split { origin, checkpoint, .. },
                Phase::Removing,
                OpEvent::Status { from, id, state, checkpoint: c },
            ) if for_me(from, origin, id) && terminal(state) => {
                *checkpoint = (*checkpoint).max(c);
                let Kind::Split { into, checkpoint, .. } = &self.kind else { unreachable!() };
                let change = Change::Split { guard, into: into.clone(), checkpoint: *checkpoint };
                self.finish(Outcome::Succeeded, vec![change])
            }
            (Kind::Split { origin, .. }, Phase::Removing, OpEvent::NodeRemoved(n)) if n == origin => {
                // The origin is gone with its dispatcher; the span is placed again unsplit.
                self.finish(Outcome::Failed, vec![Change::Absent(guard)])
            }
            // ---- merge ----
            (
                Kind::Merge { node, sources, accepted, .. },
                Phase::Merging,
                OpEvent::Status { from, id, state, .. },
            ) if from == node => {
                if id == self.id && state == ComponentState::Working {
                    let node = node.clone();
                    let sources = sources.clone();
                    let mut changes: Vec<Change> = sources.iter().map(|g| Change::Delete(*g)).collect();
                    changes.push(Change::Replicate { guard, on: node });
                    changes.push(Change::Release(sources.iter().map(|g| g.id).collect()));
                    return self.finish(Outcome::Succeeded, changes);
                }
                if id == self.id && terminal(state) {
                    // The merged dispatcher is gone (the node aborted the merge, or ended it
                    // mid-drain): every source is evicted and placed again.
                    return self.abandon_merge();
                }
                if id == self.id {
                    // Preparing, MergeReady or Initializing: the node has it.
                    *accepted = true;
                } else if sources.iter().any(|g| g.id == id) {
                    match state {
                        // Waiting: only a merge parks a source, so the node has taken it up. A
                        // source's Stopped proves nothing: a held-back remove (an earlier
                        // withdrawal's eviction) may have closed it, and a merge taken up is heard
                        // of through its merged id. Counting it would resend a request the node
                        // refuses for a missing source forever (C3, seed 32053).
                        ComponentState::WaitingMerge => *accepted = true,
                        // A source working again after it waited: the node aborted the merge
                        // before its commit point (the merged dispatcher never reported).
                        ComponentState::Working if *accepted => return self.abandon_merge(),
                        _ => {}
                    }
                }
                Vec::new()
            }
            (Kind::Merge { accepted, sends, max_sends, .. }, Phase::Merging, OpEvent::Resent) => {
                *sends += 1;
                if !*accepted && *sends > *max_sends {
                    // Silence is not a refusal: the request (or a delayed copy) may still be taken
                    // up. Remove the merged dispatcher first; hand the sources back after.
                    self.phase = Phase::Withdrawing;
                }
                Vec::new()
            }
            (Kind::Merge { node, .. }, Phase::Withdrawing, OpEvent::Status { from, id, state, .. })
                if from == node && id == self.id && terminal(state) =>
            {
                self.abandon_merge()
            }
            (
                Kind::Merge { node, sources, .. },
                Phase::Merging | Phase::Withdrawing,
                OpEvent::NodeRemoved(n),
            ) if n == node => {
                let mut changes: Vec<Change> = sources.iter().map(|g| Change::Absent(*g)).collect();
                changes.push(Change::Delete(guard));
                changes.push(Change::Release(sources.iter().map(|g| g.id).collect()));
                self.finish(Outcome::Failed, changes)
            }
            // ---- occupy ----
            (Kind::Occupy { .. }, Phase::Holding, OpEvent::Released) => {
                self.finish(Outcome::Succeeded, Vec::new())
            }
            (Kind::Occupy { node, .. }, Phase::Holding, OpEvent::NodeRemoved(n)) if n == node => {
                // The merge sees the same node death and marks the sources absent itself.
                self.finish(Outcome::Failed, Vec::new())
            }
            _ => Vec::new(),
        }
    }

    /// The merge failed with its merged dispatcher gone or never started: the target goes and
    /// every source is evicted (removed, then placed again).
    fn abandon_merge(&mut self) -> Vec<Change> {
        let Kind::Merge { node, sources, .. } = &self.kind else { return Vec::new() };
        let mut changes =
            vec![Change::Delete(self.guard), Change::Release(sources.iter().map(|g| g.id).collect())];
        changes.extend(sources.iter().map(|g| Change::Evict { guard: *g, on: node.clone() }));
        self.finish(Outcome::Failed, changes)
    }

    fn after_remove(&self, after: AfterRemove) -> Vec<Change> {
        match after {
            AfterRemove::Nothing => Vec::new(),
            AfterRemove::MarkAbsent => vec![Change::Absent(self.guard)],
            AfterRemove::DeleteAndRepair => {
                vec![Change::Delete(self.guard), Change::Repair((self.span.keyspace_id, self.span.table_id))]
            }
        }
    }

    fn cancel(&mut self) -> Vec<Change> {
        let guard = self.guard;
        let changes = match &self.kind {
            // Keep the node so the DDL's remove, built from the record, targets the right place.
            // Until the origin stopped (also after the dest died, S18) the record is on the origin.
            Kind::Move { origin, .. }
                if matches!(self.phase, Phase::RemoveOrigin | Phase::AbortRemoveOrigin) =>
            {
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
        self.finish(Outcome::Cancelled, changes)
    }

    fn finish(&mut self, outcome: Outcome, changes: Vec<Change>) -> Vec<Change> {
        self.phase = Phase::Done(outcome);
        changes
    }

    /// The message this phase wants delivered, and where.
    pub fn message(&self, ctx: &MessageContext<'_>) -> Option<(NodeId, ToNode)> {
        let remove = |node: &NodeId, op_type| {
            Some((node.clone(), ToNode::Schedule(self.remove_request(ctx, op_type))))
        };
        match (&self.kind, self.phase) {
            (Kind::Add { dest, op_type }, Phase::Creating) => {
                Some((dest.clone(), ToNode::Schedule(self.create_request(ctx, *op_type)?)))
            }
            (Kind::Remove { node, op_type, .. }, Phase::Removing) => remove(node, *op_type),
            (Kind::Move { origin, .. }, Phase::RemoveOrigin | Phase::AbortRemoveOrigin) => {
                remove(origin, OperatorType::Move)
            }
            (Kind::Move { dest, .. }, Phase::AddDest) => {
                Some((dest.clone(), ToNode::Schedule(self.create_request(ctx, OperatorType::Move)?)))
            }
            (Kind::Split { origin, .. }, Phase::Removing) => remove(origin, OperatorType::Split),
            (Kind::Merge { node, sources, .. }, Phase::Merging) => Some((
                node.clone(),
                ToNode::Merge(MergeRequest {
                    changefeed: ctx.changefeed.clone(),
                    sources: sources.iter().map(|g| g.id).collect(),
                    merged: self.id,
                    mode: ctx.sc.mode(),
                    epoch: ctx.epoch,
                }),
            )),
            (Kind::Merge { node, .. }, Phase::Withdrawing) => remove(node, OperatorType::Remove),
            _ => None,
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

    fn remove_request(&self, ctx: &MessageContext<'_>, op_type: OperatorType) -> ScheduleRequest {
        remove_request(ctx.changefeed, ctx.sc.mode(), ctx.epoch, self.id, Some(self.span.clone()), op_type)
    }
}

/// A Remove request; span, mode and intent ride along so a later maintainer can restore it (I12).
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
