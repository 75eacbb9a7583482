//! The dispatcher manager: one per (node, changefeed). Scheduling requests, embedder callbacks.
//!
//! Callable from many threads at once; no mutex anywhere on these paths. Every cross-thread
//! decision is one atomic step on one location (see the module docs of `fence`, `registry` and
//! `journal`), and every multi-structure sequence is ordered so that its readers (bootstrap,
//! completion) cannot observe a half-applied state that breaks an invariant; each such ordering is
//! commented where it is made.

use std::sync::Arc;

use crate::ids::{ChangefeedId, DispatcherId, Mode, NodeId, Ts};
use crate::messages::{ComponentState, DispatcherStatus, Order, PendingBlock, RunningError, ScheduleRequest};
use crate::mutation::{Mutation, Mutations};
use crate::span::TableSpan;
use crate::sync::{AtomicBool, AtomicU64, Map, Op, Ordering};

use super::effect::{CreateTicket, DropReason, Effect, Reaction};
use super::fence::{self, Fence, Owner};
use super::heartbeat::{BlockStatusBuffer, Coalescer, HeartbeatConfig, StatusHandle, Update};
use super::journal::{Hold, OpEntry, OpKey, OpRequest, OperatorTable, RequestKind};
use super::merge::journal::MergeJournal;
use super::registry::{
    transition, Admission, DispatcherRecord, RecordPhase, RecordSpec, RecordState, Refused, Registry,
};

/// Static configuration of one dispatcher manager.
#[derive(Clone, Debug)]
pub struct ManagerConfig {
    /// This node.
    pub node: NodeId,
    /// The changefeed.
    pub changefeed: ChangefeedId,
    /// Keyspace of the changefeed's tables.
    pub keyspace_id: u32,
    /// Whether the changefeed replicates in redo mode too.
    pub redo_enabled: bool,
}

/// A create the core refused to commit: the embedder must discard the dispatcher unstarted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("create of dispatcher {id} ({mode:?}) withdrawn before it executed ({phase:?})")]
pub struct CreateWithdrawn {
    /// The dispatcher.
    pub id: DispatcherId,
    /// Its mode.
    pub mode: Mode,
    /// The phase the record was found in.
    pub phase: RecordPhase,
}

const OPEN: u64 = 0;
const CLOSING_PAUSED: u64 = 1;
const CLOSING_REMOVED: u64 = 2;

/// Complete rounds between two repeats of a closed dispatcher's Stopped, at most.
const REPEAT_GAP_MAX: u32 = 8;

/// Whether the complete round at `age` (complete rounds since the close, from 0) repeats a closed
/// dispatcher's Stopped: rounds 1, 2, 4, 8 after the close, then every 8th, for the rest of the
/// owner's term. A fixed number of repeats can all be lost (a maintainer cut off for longer than
/// they last: C1, seed 26138 of the swarm with the late-merge-copy motif), and gaps that keep
/// doubling make the owner wait after an outage in proportion to how long ago the close was (C1
/// after several long outages, seed 23269). Capped gaps bound that wait to 8 complete rounds,
/// at the cost of repeating one in 8 of the term's closed dispatchers per complete round.
pub(crate) fn repeats_at(age: u32) -> bool {
    let round = age.saturating_add(1);
    if round <= REPEAT_GAP_MAX {
        round.is_power_of_two()
    } else {
        round % REPEAT_GAP_MAX == 0
    }
}

/// What the manager remembers of a dispatcher closed during the current owner's term.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Tombstone {
    /// Where it started.
    pub start: Ts,
    /// Its final checkpoint.
    pub final_ts: Ts,
    /// Complete rounds since it closed (saturating); see [`repeats_at`].
    pub age: u32,
}

/// The node side of scheduling for one changefeed.
pub struct DispatcherManager {
    pub(crate) config: ManagerConfig,
    pub(crate) fence: Fence,
    pub(crate) registry: Registry,
    pub(crate) operators: OperatorTable,
    pub(crate) merges: MergeJournal,
    /// Start and final checkpoint of dispatchers closed during the current owner's term, by (mode,
    /// id): the implicit incarnation that refuses delayed duplicate creates (`DropReason::Stale`) and
    /// makes a resent Remove answer with the real final checkpoint. Cleared when the owner
    /// changes; an entry goes when a dispatcher of that id is created again.
    pub(crate) closed: Map<(Mode, DispatcherId), Tombstone>,
    redo_ready: AtomicBool,
    pub(crate) closing: AtomicU64,
    heartbeat_config: HeartbeatConfig,
    coalescer: Coalescer,
    block_statuses: BlockStatusBuffer,
    redo_global_ts: AtomicU64,
    mutation: Mutations,
}

impl DispatcherManager {
    /// A manager with no owner yet; its first bootstrap installs one. Default heartbeat settings.
    pub fn new(config: ManagerConfig) -> Self {
        Self::with_heartbeat(config, HeartbeatConfig::default())
    }

    /// A manager with these heartbeat settings.
    pub fn with_heartbeat(config: ManagerConfig, heartbeat: HeartbeatConfig) -> Self {
        Self {
            config,
            coalescer: Coalescer::new(&heartbeat),
            block_statuses: BlockStatusBuffer::new(heartbeat.block_buffer_capacity),
            heartbeat_config: heartbeat,
            redo_global_ts: AtomicU64::new(0),
            fence: Fence::new(None, crate::ids::Epoch::COMPAT),
            registry: Registry::new(),
            operators: OperatorTable::new(),
            merges: MergeJournal::new(),
            closed: Map::new(),
            redo_ready: AtomicBool::new(false),
            closing: AtomicU64::new(OPEN),
            mutation: Mutations::NONE,
        }
    }

    /// This manager with a deliberate bugs (see [`crate::mutation`]); none is the real one.
    #[doc(hidden)]
    pub fn mutated(mut self, mutation: Mutations) -> Self {
        self.mutation = mutation;
        self
    }

    /// Whether the deliberate bug `m` is switched on.
    pub(crate) fn has_mutation(&self, m: Mutation) -> bool {
        self.mutation.has(m)
    }

    /// A dispatcher reports its barrier state: remembered on its record (so a bootstrap snapshot
    /// carries it whole, stage and pass-through detail included) and offered to the block-status
    /// path, except a WRITING, which only the snapshot carries. An unknown dispatcher's status is
    /// still offered (the maintainer may be waiting on it).
    pub fn report_block_status(
        &self,
        status: crate::messages::BlockStatus,
    ) -> Result<super::heartbeat::block::Offered, super::heartbeat::block::BufferFull> {
        if let Some(record) = self.registry.get_alive(status.mode, status.id) {
            record.note_barrier(status.state.clone());
        }
        if status.state.stage == crate::messages::BlockStage::Writing {
            return Ok(super::heartbeat::block::Offered::Noted);
        }
        self.block_statuses.offer(status)
    }

    /// The final checkpoint of `id` if it closed during the current owner's term, else 0.
    pub(crate) fn final_ts(&self, mode: Mode, id: DispatcherId) -> Ts {
        self.closed.get(&(mode, id)).map_or(0, |t| t.final_ts)
    }

    /// The configuration.
    pub fn config(&self) -> &ManagerConfig {
        &self.config
    }

    /// The owner in force.
    pub fn owner(&self) -> &Owner {
        self.fence.owner()
    }

    /// The registry (read-only use by embedders, checkers and tests).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The in-flight operator journal.
    pub fn operators(&self) -> &OperatorTable {
        &self.operators
    }

    /// The merge journal.
    pub fn merges(&self) -> &MergeJournal {
        &self.merges
    }

    /// The heartbeat settings.
    pub fn heartbeat_config(&self) -> &HeartbeatConfig {
        &self.heartbeat_config
    }

    /// The status coalescer (producers' side of the heartbeat path).
    pub fn coalescer(&self) -> &Coalescer {
        &self.coalescer
    }

    /// The block-status buffer dispatchers offer into.
    pub fn block_statuses(&self) -> &BlockStatusBuffer {
        &self.block_statuses
    }

    /// A handle on the status slot of the dispatcher `ticket` creates, for its hot path.
    pub fn status_handle(&self, ticket: &CreateTicket) -> StatusHandle {
        StatusHandle::new(ticket.record.clone())
    }

    /// A handle on the status slot of a live dispatcher.
    pub fn status_handle_of(&self, mode: Mode, id: DispatcherId) -> Option<StatusHandle> {
        self.registry.get_alive(mode, id).map(StatusHandle::new)
    }

    /// New progress of a dispatcher: the hot path, a few atomic operations, never blocks.
    pub fn report_progress(
        &self,
        handle: &StatusHandle,
        checkpoint_ts: Ts,
        resolved_ts: Ts,
        rate: f32,
    ) -> Update {
        self.coalescer.progress(handle, checkpoint_ts, resolved_ts, rate)
    }

    /// Records a running error: the first one is reported until cleared.
    pub fn report_error(&self, error: RunningError) -> bool {
        self.coalescer.report_error(error)
    }

    /// Clears the running error.
    pub fn clear_error(&self) -> bool {
        self.coalescer.clear_error()
    }

    /// The global redo resolved ts last forwarded by the maintainer.
    pub fn redo_global_ts(&self) -> Ts {
        self.redo_global_ts.load(Ordering::Acquire)
    }

    /// Raises the global redo resolved ts; true if it rose.
    pub(crate) fn raise_redo_global_ts(&self, ts: Ts) -> bool {
        // AcqRel RMW: monotone; exactly the raising caller sees a smaller previous value.
        self.redo_global_ts.fetch_max(ts, Ordering::AcqRel) < ts
    }

    /// Queues a status for a dispatcher without a live slot and returns its `Report` effect.
    pub(crate) fn report_synthetic(&self, status: DispatcherStatus) -> Effect {
        let _ = self.coalescer.report_synthetic(status.clone());
        Effect::Report(status)
    }

    /// Records a state change on a record's slot (never coalesced away).
    pub(crate) fn note_state(&self, record: &Arc<DispatcherRecord>, state: ComponentState) {
        let _ = self.coalescer.change_state(record, state);
    }

    /// Publishes that the redo components are ready; redo requests are dropped until then.
    pub fn mark_redo_ready(&self) {
        // Release: everything the embedder initialized for redo happens-before an Acquire reader
        // that sees the flag.
        self.redo_ready.store(self.config.redo_enabled, Ordering::Release);
    }

    /// Whether redo requests are accepted.
    pub fn is_redo_ready(&self) -> bool {
        self.redo_ready.load(Ordering::Acquire)
    }

    /// Whether a close request was admitted.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire) != OPEN
    }

    /// Whether the changefeed was removed (not just paused) by an admitted close. Sticky.
    pub fn is_removed(&self) -> bool {
        self.closing.load(Ordering::Acquire) == CLOSING_REMOVED
    }

    /// Whether none of its dispatchers is alive (every one closed or cancelled).
    pub(crate) fn all_closed(&self) -> bool {
        self.registry.records().iter().all(|r| !r.state().is_alive())
    }

    pub(crate) fn mark_closing(&self, removed: bool) -> bool {
        let to = if removed { CLOSING_REMOVED } else { CLOSING_PAUSED };
        // AcqRel RMW: the first closer (previous OPEN) issues the closes.
        self.closing.fetch_max(to, Ordering::AcqRel) == OPEN
    }

    /// The table trigger dispatcher of `mode`, if live.
    pub fn trigger(&self, mode: Mode) -> Option<Arc<DispatcherRecord>> {
        let span = TableSpan::table_trigger(self.config.keyspace_id);
        self.registry.overlapping(mode, &span).into_iter().find(|r| r.span.is_table_trigger())
    }

    /// Common admission for maintainer control messages: fence, closing, redo readiness.
    pub(crate) fn admit_control(
        &self,
        from: &NodeId,
        epoch: crate::ids::Epoch,
        mode: Mode,
    ) -> Result<&Owner, DropReason> {
        let owner = self.fence.admit(from, epoch).ok_or(DropReason::Fenced)?;
        if self.is_closing() {
            return Err(DropReason::Closing);
        }
        if mode == Mode::Redo && !self.is_redo_ready() {
            return Err(DropReason::RedoNotReady);
        }
        Ok(owner)
    }

    /// Handles a `ScheduleDispatcherRequest` from maintainer node `from`: fenced by owner and
    /// epoch (I1), then a create or a remove journaled so a failover can recover it (I12).
    pub fn handle_schedule(&self, from: &NodeId, request: ScheduleRequest) -> Reaction {
        let owner = match self.admit_control(from, request.epoch, request.config.mode) {
            Ok(owner) => owner,
            Err(why) => return Reaction::dropped(why),
        };
        match &request.order {
            Order::Create { span } => {
                let span = span.clone();
                self.create(from, owner, span, request)
            }
            Order::Remove { .. } => self.remove(from, owner, request),
        }
    }

    fn create(&self, from: &NodeId, owner: &Owner, span: TableSpan, request: ScheduleRequest) -> Reaction {
        let config = &request.config;
        let (mode, id) = (config.mode, config.id);
        if self.registry.get_alive(mode, id).is_some() {
            return Reaction::dropped(DropReason::AlreadyExists);
        }
        // Checked after the registry: a close writes its tombstone before it releases the record.
        // Stale: it starts below where that dispatcher stopped, or exactly there when that
        // dispatcher never moved past its own start (a copy of the create that made it, found by
        // the swarm explorer, seed 11801). The second case cannot tell a copy from a new create
        // at the same point, so it answers Removed: the maintainer places a genuinely new create
        // again under a fresh id (seed 408 of the swarm with motifs).
        let tombstone =
            self.closed.get(&(mode, id)).filter(|_| !self.has_mutation(Mutation::NoStaleCreateTombstones));
        if let Some(Tombstone { start: closed_start, final_ts, .. }) = tombstone {
            let s = config.start_ts;
            if s < final_ts {
                // Answered with the final checkpoint: when the create is the owner's own (it
                // never heard where that dispatcher stopped, its Stopped lost), it starts again
                // from there (seed 5086 of the swarm with motifs).
                if self.has_mutation(Mutation::SilentStaleCreates) {
                    return Reaction::dropped(DropReason::Stale);
                }
                return Reaction::dropped_with(
                    DropReason::Stale,
                    vec![self.report_synthetic(stopped(id, mode, final_ts))],
                );
            }
            if s == final_ts && closed_start == final_ts && !self.has_mutation(Mutation::EqualStartNotStale) {
                let removed = DispatcherStatus {
                    id,
                    mode,
                    state: ComponentState::Removed,
                    checkpoint_ts: final_ts,
                    event_size_per_second: 0.0,
                };
                return Reaction::dropped_with(DropReason::Stale, vec![self.report_synthetic(removed)]);
            }
        }
        let record = self.registry.make(
            RecordSpec {
                id,
                mode,
                span: span.clone(),
                schema_id: config.schema_id,
                start_ts: config.start_ts,
                skip_dml_as_start_ts: config.skip_dml_as_start_ts,
                admission: Some(Admission { from: from.clone(), epoch: request.epoch }),
            },
            RecordState::CREATING,
        );
        let key = OpKey { mode, span };
        let entry = OpEntry::new(OpRequest::Schedule(request), from.clone(), record.incarnation);
        // P6/P7: a current-owner holder makes this Busy; a stale one is replaced.
        let admitted = match self.operators.admit(&key, entry, |holder| self.may_displace(owner, holder)) {
            Ok(admitted) => admitted,
            Err(_busy) => return Reaction::dropped(DropReason::Busy),
        };
        if let Some(stale) = admitted.replaced() {
            self.retire(&key, stale);
        }
        if let Err(conflict) = self.registry.reserve(&record, &[]) {
            admitted.hold().finish();
            return Reaction::dropped(conflict.into());
        }
        // Everything this create reserved is published; confirm the owner (see `Fence`).
        if !self.fence.still_current(owner) {
            self.withdraw(&record, admitted.hold());
            return Reaction::dropped(DropReason::Fenced);
        }
        Reaction::applied(vec![Effect::Create(CreateTicket { record, op: Some(admitted.into_hold()) })])
    }

    /// Whether a create or merge of `owner` may take the key `holder` holds: only from an older
    /// owner, and never an in-flight Remove. That one's dispatcher still occupies the span (the
    /// new operator could only fail on it), and the next snapshot must list it until it closes.
    pub(crate) fn may_displace(&self, owner: &Owner, holder: &OpEntry) -> bool {
        !fence::admits(owner, &holder.from, holder.epoch())
            && (holder.kind() != RequestKind::Remove
                || self.has_mutation(Mutation::CreateReplacesStaleRemove))
    }

    /// A replaced stale entry's create must never execute: cancel its record if still creating.
    fn retire(&self, key: &OpKey, stale: &Arc<OpEntry>) {
        if stale.kind() != RequestKind::Create {
            return;
        }
        if let Some(record) = self.registry.get(key.mode, stale.id()) {
            if record.incarnation == stale.target && record.transition(transition::cancel).is_ok() {
                self.registry.release(&record);
            }
        }
    }

    /// Withdraws a create that never executed.
    pub(crate) fn withdraw(&self, record: &Arc<DispatcherRecord>, hold: &Hold) {
        if record.transition(transition::cancel).is_ok() {
            self.registry.release(record);
        }
        hold.finish();
    }

    fn remove(&self, from: &NodeId, owner: &Owner, request: ScheduleRequest) -> Reaction {
        let (mode, id) = (request.config.mode, request.config.id);
        let Some(record) = self.registry.get(mode, id) else {
            // A Remove of an unknown dispatcher: answer Stopped at once, journal nothing (with the
            // final checkpoint if it closed during this owner's term, so a lost Stopped costs
            // nothing).
            return Reaction::applied(vec![self.gone(mode, id, self.final_ts(mode, id))]);
        };
        match record.state().phase {
            RecordPhase::Closed | RecordPhase::Cancelled => {
                return Reaction::applied(vec![self.gone(mode, id, self.final_ts(mode, id))])
            }
            RecordPhase::Creating => {
                // The create has not executed: cancelling it wins or loses against the commit CAS.
                if record.transition(transition::cancel).is_ok() {
                    self.registry.release(&record);
                    let key = OpKey { mode, span: record.span.clone() };
                    self.operators.finish_if(&key, |e| e.target == record.incarnation);
                    return Reaction::applied(vec![self.report_synthetic(stopped(id, mode, 0))]);
                }
            }
            RecordPhase::Live => {
                // A floor below this dispatcher's start: the Remove was sent before it was created,
                // for an earlier incarnation of the id (a delayed copy). 0 means any incarnation.
                let floor = request.config.start_ts;
                if floor != 0 && floor < record.start_ts() && !self.has_mutation(Mutation::StaleRemoveApplies)
                {
                    return Reaction::dropped(DropReason::Stale);
                }
            }
        }
        let key = OpKey { mode, span: record.span.clone() };
        let entry = OpEntry::new(OpRequest::Schedule(request), from.clone(), record.incarnation);
        // A Remove of a known dispatcher replaces whatever the span holds for it (a finished
        // create, an older remove, its merge). An entry for another incarnation means this one closed
        // after the lookup above and a create of the span was admitted since (issue 15, fault 4):
        // that entry is not ours to replace, and the dispatcher we were asked about is gone.
        let ours = |holder: &OpEntry| {
            holder.target == record.incarnation || self.has_mutation(Mutation::RemoveReplacesAnyHolder)
        };
        let Ok(admitted) = self.operators.admit(&key, entry, ours) else {
            return Reaction::applied(vec![self.gone(mode, id, record.checkpoint_ts())]);
        };
        if !self.fence.still_current(owner) {
            // A fenced resend puts back the Remove it replaced: that one's dispatcher is closing
            // and the next snapshot must list it. (Any other entry it replaced was finished, or
            // is a merge's, whose end finishes it by pointer: those are not restored.)
            let restore = admitted.replaced().filter(|old| {
                old.kind() == RequestKind::Remove && !self.has_mutation(Mutation::FencedRemoveErasesReplaced)
            });
            if admitted.hold().revert(restore) {
                // Store-then-validate, as for the admission above: if the dispatcher closed
                // before the restore, its completion may have missed the restored entry. (The
                // replaced Remove was then admitted after that completion, found the record
                // closed and finished by pointer while this resend held the key.)
                if let Some(old) = restore.filter(|_| record.state().phase != RecordPhase::Live) {
                    self.operators.finish(&key, old);
                }
            }
            return Reaction::dropped(DropReason::Fenced);
        }
        let mut effects = self.stop_merges_involving(mode, id);
        // Store-then-validate (hazard R1), as one RMW on the record word: if this CAS precedes the
        // close CAS, the close's completion sees our entry and removes it; if it follows, we see
        // Closed here and remove our own entry. Either way nothing leaks.
        match record.transition(transition::request_removal) {
            Ok(before) if !before.removing => effects.push(Effect::Close { id, mode }),
            Ok(_) => {}
            Err(_) => {
                admitted.hold().finish();
                effects.push(self.gone(mode, id, record.checkpoint_ts()));
            }
        }
        Reaction::applied(effects)
    }

    /// The answer to a Remove of a dispatcher that is not (or no longer) here: Stopped at
    /// `checkpoint_ts`. The id may be a merge the owner is withdrawing while its request is still
    /// in flight, or one taken back while the Remove looked at it (a refused reservation): that
    /// request must not start it later (I2), so the id is refused for the owner's term.
    fn gone(&self, mode: Mode, id: DispatcherId, checkpoint_ts: Ts) -> Effect {
        if !self.has_mutation(Mutation::ForgetRemovedMergeIds) {
            self.merges.refuse_later(mode, id);
        }
        self.report_synthetic(stopped(id, mode, checkpoint_ts))
    }

    /// The embedder built the dispatcher of `ticket`. Returns its live sequence number, or refuses
    /// if the create was withdrawn (fenced by a bootstrap, or removed) before it executed: the
    /// embedder must then discard the dispatcher without starting it.
    pub fn commit_create(&self, ticket: &CreateTicket) -> Result<u64, CreateWithdrawn> {
        let record = &ticket.record;
        match record.transition(transition::commit) {
            Ok(_) => {
                self.closed.remove_if(&(record.mode, record.id), |_| true);
                let seq = self.registry.assign_seq(record);
                // The reference's completion step: complete the create only if the span still
                // holds this very entry (a Remove that replaced it stays).
                if let Some(hold) = &ticket.op {
                    hold.finish();
                }
                Ok(seq)
            }
            Err(Refused::RecordPhase(RecordPhase::Live)) if ticket.op.is_none() => Ok(record.seq()),
            Err(_) => Err(CreateWithdrawn { id: record.id, mode: record.mode, phase: record.state().phase }),
        }
    }

    /// The embedder failed to build the dispatcher of `ticket`. The create is withdrawn (its
    /// journal entry too, so the maintainer's resend can retry: hazard R9) and the error reported.
    pub fn create_failed(&self, ticket: &CreateTicket, error: RunningError) -> Reaction {
        match &ticket.op {
            Some(hold) => self.withdraw(&ticket.record, hold),
            None => {
                if ticket.record.transition(transition::close).is_ok() {
                    self.registry.release(&ticket.record);
                }
            }
        }
        let _ = self.coalescer.report_error(error.clone());
        Reaction::applied(vec![Effect::ReportError(error)])
    }

    /// The embedder closed a dispatcher (after a `Close`, a `CloseMergeSources`, or on its own),
    /// with its final checkpoint and the barrier it was parked on, if any.
    pub fn dispatcher_closed(
        &self,
        id: DispatcherId,
        mode: Mode,
        checkpoint_ts: Ts,
        block: Option<PendingBlock>,
    ) -> Reaction {
        // Only a live dispatcher can close: a late or duplicate report must not write its
        // checkpoint into a re-created, still-creating record of the same id.
        let Some(record) = self.registry.get(mode, id).filter(|r| r.state().phase == RecordPhase::Live)
        else {
            return Reaction::dropped(DropReason::Unknown);
        };
        if record.state().drained && !self.has_mutation(Mutation::DrainCountedTwice) {
            // A merge source already counted: its first report fixed the final checkpoint.
            return Reaction::dropped(DropReason::Duplicate);
        }
        record.record_final(checkpoint_ts, block);
        let aborted = match self.merge_source_closed(&record) {
            Ok(step) => return step,
            Err(aborted) => aborted,
        };
        // Release: publishes the final checkpoint recorded above.
        if record.transition(transition::close).is_err() {
            return Reaction::applied(aborted);
        }
        let mut effects = aborted;
        effects.push(self.release_closed(&record));
        effects.extend(self.merged_closed(&record));
        Reaction::applied(effects)
    }

    /// Releases a record that just went Closed: registry first, then its operator (remove-if-same
    /// incarnation: a re-created dispatcher's entry is never touched, hazard R4). Returns its
    /// Stopped report.
    pub(crate) fn release_closed(&self, record: &Arc<DispatcherRecord>) -> Effect {
        // Seal the slot first: its final checkpoint is fixed here and reaches the maintainer even
        // though the record leaves the registry (a full queue spills it, see `Coalescer`).
        self.note_state(record, ComponentState::Stopped);
        if !record.span.is_table_trigger() {
            let final_ts = record.checkpoint_ts();
            let entry = Tombstone { start: record.start_ts(), final_ts, age: 0 };
            self.closed.compute((record.mode, record.id), |_| Op::<Tombstone, ()>::Insert(entry));
        }
        self.registry.release(record);
        let key = OpKey { mode: record.mode, span: record.span.clone() };
        self.operators.finish_if(&key, |e| e.target == record.incarnation);
        Effect::Report(stopped(record.id, record.mode, record.checkpoint_ts()))
    }

    /// The embedder reports a component state change (Working, MergeReady, ...) and progress.
    pub fn dispatcher_state_changed(
        &self,
        id: DispatcherId,
        mode: Mode,
        state: ComponentState,
        checkpoint_ts: Ts,
    ) -> Reaction {
        let Some(record) = self.registry.get(mode, id) else {
            return Reaction::dropped(DropReason::Unknown);
        };
        if matches!(state, ComponentState::Stopped | ComponentState::Removed) {
            // Closing goes through `dispatcher_closed`, which carries the final checkpoint.
            return Reaction::dropped(DropReason::Unknown);
        }
        record.advance_checkpoint(checkpoint_ts);
        let Ok(before) = record.transition(|s| transition::set_component(s, state)) else {
            return Reaction::dropped(DropReason::Unknown);
        };
        self.note_state(&record, state);
        let mut effects = Vec::new();
        if state == ComponentState::Working && before.component != ComponentState::Working {
            effects.push(Effect::Report(DispatcherStatus {
                id,
                mode,
                state,
                checkpoint_ts: record.checkpoint_ts(),
                event_size_per_second: 0.0,
            }));
        }
        effects.extend(self.merged_state_changed(&record, state));
        Reaction::applied(effects)
    }
}

/// A Stopped status.
pub(crate) fn stopped(id: DispatcherId, mode: Mode, checkpoint_ts: Ts) -> DispatcherStatus {
    DispatcherStatus { id, mode, state: ComponentState::Stopped, checkpoint_ts, event_size_per_second: 0.0 }
}
