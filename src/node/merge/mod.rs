//! Merges on the node: the merge's lifecycle as manager methods, over the [`journal`].
//!
//! A merge is journaled under its merged dispatcher id and occupies the merged span in the
//! operator journal. The lifecycle (take a request up, drain, hand over, abort, end) reads and
//! writes the registry and the operator journal, so it lives on the manager; the journal itself
//! never calls back into it.

pub mod journal;

use std::sync::Arc;

use crate::ids::{DispatcherId, Mode, NodeId};
use crate::messages::{ComponentState, MergeRequest};
use crate::mutation::Mutation;
use crate::sync::{AtomicU64, Computed, Op};

use super::effect::{DropReason, Effect, Reaction};
use super::journal::{Hold, OpEntry, OpKey, OpRequest};
use super::manager::DispatcherManager;
use super::registry::{transition, DispatcherRecord, RecordPhase, RecordSpec, RecordState, Refused};

pub use journal::{progress, MergeEntry, MergeJournal, MergePhase};

impl DispatcherManager {
    /// A Remove arrived for `id`: every merge it takes part in that has not handed over stops.
    /// One still preparing is aborted (sources back to Working). One draining is ended: the
    /// merged dispatcher is closed instead of started, and the drained sources are released. The
    /// owner asked for a participant to go, so the merged dispatcher must never start writing
    /// (I2): the owner may already be placing the removed range elsewhere.
    pub(crate) fn stop_merges_involving(&self, mode: Mode, id: DispatcherId) -> Vec<Effect> {
        let mut effects = Vec::new();
        for entry in self.merges.involving(mode, id) {
            effects.extend(self.abort_merge(&entry));
            if !self.has_mutation(Mutation::HandOverDespiteRemove) {
                effects.extend(self.end_draining_merge(&entry));
            }
        }
        effects
    }

    /// Ends a draining merge without handing over: merged dispatcher closed, drained sources
    /// released (the rest are closing already and report Stopped when they finish).
    fn end_draining_merge(&self, entry: &Arc<MergeEntry>) -> Vec<Effect> {
        if !matches!(entry.phase(), MergePhase::Draining { .. }) || entry.advance(progress::end).is_none() {
            return Vec::new();
        }
        let (mode, merged_id) = (entry.request.mode, entry.request.merged);
        self.merges.refuse_later(mode, merged_id);
        self.merges.drop_entry(entry);
        entry.hold.finish();
        let mut effects: Vec<Effect> =
            entry.sources.iter().filter_map(|s| release_drained(self, s)).collect();
        if let Ok(before) = entry.merged.transition(transition::request_removal) {
            if !before.removing {
                effects.push(Effect::Close { id: merged_id, mode });
            }
        }
        effects
    }

    /// Aborts a merge that has not started draining: sources back to Working, merged closed.
    fn abort_merge(&self, entry: &Arc<MergeEntry>) -> Vec<Effect> {
        if entry.advance(progress::abort).is_none() {
            return Vec::new();
        }
        let (mode, merged_id) = (entry.request.mode, entry.request.merged);
        // Tombstone first, then drop the entry: a resend arriving in between is refused.
        self.merges.refuse_later(mode, merged_id);
        self.merges.drop_entry(entry);
        entry.hold.finish();
        let mut effects = Vec::new();
        for source in &entry.sources {
            let back = source.transition(|s| {
                transition::swap_component(s, ComponentState::WaitingMerge, ComponentState::Working)
            });
            if back.is_ok() {
                self.note_state(source, ComponentState::Working);
                effects.push(Effect::ResumeSource { id: source.id, mode });
            }
        }
        if let Ok(before) = entry.merged.transition(transition::request_removal) {
            if !before.removing {
                effects.push(Effect::Close { id: merged_id, mode });
            }
        }
        effects
    }

    /// A merge source was closed. A draining merge counts it, and the last one hands over
    /// (`Ok`). A merge still preparing is aborted first, so that it can never begin draining a
    /// source that is gone (issue 15, fault 2): the abort and `begin_drain` are CASes on the same
    /// phase word, so exactly one wins. If the abort loses, the merge is draining and counts
    /// this close like any other. `Err` carries the abort's effects (the other sources resumed,
    /// the merged dispatcher closed) for a caller that then closes `record` as usual; an empty
    /// one when `record` takes part in no open merge as a source.
    pub(crate) fn merge_source_closed(
        &self,
        record: &Arc<DispatcherRecord>,
    ) -> Result<Reaction, Vec<Effect>> {
        let Some(entry) =
            self.merges.involving(record.mode, record.id).into_iter().find(|e| e.has_source(record))
        else {
            return Err(Vec::new());
        };
        let phase = entry.phase();
        if phase == MergePhase::Preparing && !self.has_mutation(Mutation::SelfCloseSkipsPreparingMerge) {
            let effects = self.abort_merge(&entry);
            // Lost to `begin_drain`: count the close below. Otherwise the merge is over (here or
            // elsewhere), and the source is closing, not resumed.
            if !matches!(entry.phase(), MergePhase::Draining { .. }) {
                let resumes_self =
                    |e: &Effect| matches!(e, Effect::ResumeSource { id, .. } if *id == record.id);
                return Err(effects.into_iter().filter(|e| !resumes_self(e)).collect());
            }
        } else if !matches!(phase, MergePhase::Draining { .. }) {
            return Err(Vec::new());
        }
        // Release: publishes the final checkpoint recorded by the caller.
        match record.transition(transition::drain) {
            Ok(_) => {}
            Err(Refused::Drained) if self.has_mutation(Mutation::DrainCountedTwice) => {}
            Err(Refused::Drained) => return Ok(Reaction::dropped(DropReason::Duplicate)),
            Err(_) => return Ok(Reaction::dropped(DropReason::Unknown)),
        }
        match entry.advance(progress::source_drained) {
            Some(MergePhase::HandedOver) => Ok(Reaction::applied(self.hand_over_merge(&entry))),
            Some(_) => Ok(Reaction::applied(Vec::new())),
            // The merge ended under us (its merged dispatcher closed): this source is simply
            // closed. Whoever wins the close CAS releases it and reports its Stopped.
            None => Ok(Reaction::applied(release_drained(self, record).into_iter().collect())),
        }
    }

    /// All sources closed: start the merged dispatcher, then release the sources (in that order, so
    /// the node's watermark never jumps over the span).
    fn hand_over_merge(&self, entry: &Arc<MergeEntry>) -> Vec<Effect> {
        let (start_ts, skip_dml_as_start_ts) = merged_start(&entry.sources);
        let merged = &entry.merged;
        // The floor first: a state-change watermark can never rise above the merged span's start.
        self.registry.lower_floor(merged.mode, start_ts);
        merged.restart_at(start_ts);
        if merged.transition(|s| transition::set_component(s, ComponentState::Initializing)).is_ok() {
            self.note_state(merged, ComponentState::Initializing);
        }
        let mut effects =
            vec![Effect::StartMerged { id: merged.id, mode: merged.mode, start_ts, skip_dml_as_start_ts }];
        for source in &entry.sources {
            if source.transition(transition::close).is_ok() {
                effects.push(self.release_closed(source));
            }
        }
        effects
    }

    /// The merged dispatcher changed state: MergeReady starts draining (or aborts if a source is
    /// gone); Working after hand-over finishes the merge.
    pub(crate) fn merged_state_changed(
        &self,
        record: &Arc<DispatcherRecord>,
        state: ComponentState,
    ) -> Vec<Effect> {
        let Some(entry) = self.merges.get(record.mode, record.id).filter(|e| Arc::ptr_eq(&e.merged, record))
        else {
            return Vec::new();
        };
        match state {
            ComponentState::MergeReady => {
                let merged_gone = record.state().removing;
                let source_gone = entry.sources.iter().any(|s| {
                    let st = s.state();
                    st.phase != RecordPhase::Live
                        || st.removing
                        || st.component != ComponentState::WaitingMerge
                });
                if merged_gone || source_gone {
                    return self.abort_merge(&entry);
                }
                let n = entry.sources.len() as u32;
                if entry.advance(|p| progress::begin_drain(p, n)).is_none() {
                    return Vec::new();
                }
                vec![Effect::CloseMergeSources {
                    merged: record.id,
                    mode: record.mode,
                    sources: entry.sources.iter().map(|s| s.id).collect(),
                }]
            }
            ComponentState::Working => {
                if entry.advance(progress::finish).is_some() {
                    self.merges.drop_entry(&entry);
                    entry.hold.finish();
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// The merged dispatcher itself was closed: a merge still preparing is aborted.
    pub(crate) fn merged_closed(&self, record: &Arc<DispatcherRecord>) -> Vec<Effect> {
        match self.merges.get(record.mode, record.id).filter(|e| Arc::ptr_eq(&e.merged, record)) {
            Some(entry) => {
                let mut effects = self.abort_merge(&entry);
                // Whatever phase it was in, a closed merged dispatcher ends the merge. Sources a
                // draining merge already closed would otherwise wait for a hand-over that never
                // comes: they are released (and report Stopped) here.
                if entry.advance(progress::end).is_some()
                    && !self.has_mutation(Mutation::StrandDrainedSources)
                {
                    effects.extend(entry.sources.iter().filter_map(|s| release_drained(self, s)));
                }
                self.merges.drop_entry(&entry);
                entry.hold.finish();
                effects
            }
            None => Vec::new(),
        }
    }
}

impl DispatcherManager {
    /// Takes back a merged record that will never be prepared (its reservation failed, or the
    /// request was undone): the record closes and leaves the registry, and whatever holds its key
    /// for it goes, our entry or a Remove of the merged id that replaced it meanwhile (issue 15,
    /// fault 3), which nothing else would finish: no dispatcher was built, so none will report
    /// closing. A Remove whose `request_removal` comes after this close fails it and finishes
    /// its own entry; one that came before is finished here (its entry was in place before its
    /// `request_removal`).
    ///
    /// If such a Remove was applied (the record was being removed when it closed here), the owner
    /// has withdrawn the merge: a later copy of the request must not start it (I2), and the
    /// Remove is answered Stopped, since no dispatcher will ever report it.
    fn take_back_merged(&self, merged: &Arc<DispatcherRecord>, key: &OpKey, hold: &Hold) -> Vec<Effect> {
        let mut effects = Vec::new();
        if let Ok(before) = merged.transition(transition::close) {
            self.registry.release(merged);
            if before.removing {
                self.merges.refuse_later(merged.mode, merged.id);
                effects.push(self.report_synthetic(super::manager::stopped(merged.id, merged.mode, 0)));
            }
        }
        if self.has_mutation(Mutation::UndoFinishesOwnEntryOnly) {
            hold.finish();
        } else {
            self.operators.finish_if(key, |e| e.target == merged.incarnation);
        }
        effects
    }
}

/// Releases a merge source that was drained (closed by its merge) when the merge will not hand
/// over. Exactly one caller wins the close CAS.
fn release_drained(dm: &DispatcherManager, source: &Arc<DispatcherRecord>) -> Option<Effect> {
    let s = source.state();
    if !(s.phase == RecordPhase::Live && s.drained) {
        return None;
    }
    source.transition(transition::close).ok()?;
    Some(dm.release_closed(source))
}

/// The merged dispatcher's start ts: the minimum of the sources' final checkpoints, or the common
/// barrier when every source is parked on the same one (B13: restart at T−1 skipping DML for a DDL,
/// at T for a syncpoint).
pub fn merged_start(sources: &[Arc<DispatcherRecord>]) -> (u64, bool) {
    let min_checkpoint = sources.iter().map(|s| s.checkpoint_ts()).min().unwrap_or(0);
    let blocks: Vec<_> = sources.iter().map(|s| s.pending_block()).collect();
    match blocks.first().copied().flatten() {
        Some(first) if blocks.iter().all(|b| *b == Some(first)) => {
            if first.is_sync_point {
                (first.block_ts, false)
            } else {
                // A DDL barrier: restart just below it and skip the DML at the restart ts.
                (first.block_ts - 1, true)
            }
        }
        _ => (min_checkpoint, false),
    }
}

impl DispatcherManager {
    /// Handles a `MergeDispatcherRequest` from maintainer node `from`: fenced (I1), then the merged
    /// dispatcher is prepared over live, Working, adjacent sources and the merge journaled (I12).
    pub fn handle_merge(&self, from: &NodeId, request: MergeRequest) -> Reaction {
        let owner = match self.admit_control(from, request.epoch, request.mode) {
            Ok(owner) => owner,
            Err(why) => return Reaction::dropped(why),
        };
        let (mode, merged_id) = (request.mode, request.merged);
        if self.merges.was_aborted(mode, merged_id) {
            return Reaction::dropped(DropReason::MergeAborted);
        }
        if request.sources.len() < 2 {
            return Reaction::dropped(DropReason::MergeRefused("fewer than two sources"));
        }
        // M2: the merged dispatcher exists already (a resend, or an outdated request).
        if let Some(merged) = self.registry.get_alive(mode, merged_id) {
            let s = merged.state();
            let mut effects = Vec::new();
            // Whatever phase it is in, say so: a resend (or a successor's restored merge) learns
            // that the merge was taken up, and a Working one finishes it.
            let quiet =
                self.has_mutation(Mutation::QuietMergeResend) && s.component != ComponentState::Working;
            if s.phase == RecordPhase::Live && !quiet {
                effects.push(self.report_synthetic(crate::messages::DispatcherStatus {
                    id: merged_id,
                    mode,
                    state: s.component,
                    checkpoint_ts: merged.checkpoint_ts(),
                    event_size_per_second: 0.0,
                }));
            }
            return Reaction::dropped_with(DropReason::AlreadyExists, effects);
        }
        // Again after the registry, as for creates: an abort or a close writes its mark before
        // the merged record is released, so a merged id found neither alive nor marked here
        // never ran (an abort completing between the first check and the lookup is caught).
        if self.merges.was_aborted(mode, merged_id) {
            return Reaction::dropped(DropReason::MergeAborted);
        }
        // The merged id already ran and closed in this owner's term: a late copy of the request
        // that made it, after the owner withdrew the merge and placed the sources again. Taking it
        // up would drain those new sources into a dispatcher the owner has given up on (C1, seed
        // 13866 of the swarm with motifs). Merged ids are minted once per merge, so no new
        // request can name it.
        if self.closed.get(&(mode, merged_id)).is_some()
            && !self.has_mutation(Mutation::MergeAfterMergedClosed)
        {
            return Reaction::dropped(DropReason::MergeAborted);
        }
        // M3: every source live, Working, not removing, adjacent in the given order.
        let mut sources = Vec::with_capacity(request.sources.len());
        for id in &request.sources {
            let Some(source) = self.registry.get_alive(mode, *id) else {
                return Reaction::dropped(DropReason::MergeRefused("source dispatcher missing"));
            };
            let s = source.state();
            if s.phase != RecordPhase::Live || s.removing || s.component != ComponentState::Working {
                return Reaction::dropped(DropReason::MergeRefused("source dispatcher not working"));
            }
            sources.push(source);
        }
        if sources.windows(2).any(|w| !w[0].span.is_followed_by(&w[1].span)) {
            return Reaction::dropped(DropReason::MergeRefused("sources not adjacent"));
        }
        let (first, last) = (&sources[0], &sources[sources.len() - 1]);
        let span = first.span.joined_with(&last.span);
        let merged = self.registry.make(
            RecordSpec {
                id: merged_id,
                mode,
                span: span.clone(),
                schema_id: first.schema_id,
                start_ts: sources.iter().map(|s| s.checkpoint_ts()).min().unwrap_or(0),
                skip_dml_as_start_ts: false,
                admission: None,
            },
            RecordState {
                phase: RecordPhase::Live,
                component: ComponentState::Preparing,
                ..RecordState::CREATING
            },
        );
        let key = OpKey { mode, span };
        let op = OpEntry::new(OpRequest::Merge(request.clone()), from.clone(), merged.incarnation);
        let admitted = match self.operators.admit(&key, op, |h| self.may_displace(owner, h)) {
            Ok(admitted) => admitted,
            Err(_) => return Reaction::dropped(DropReason::Busy),
        };
        let source_ids: Vec<_> = sources.iter().map(|s| s.id).collect();
        if let Err(conflict) = self.registry.reserve(&merged, &source_ids) {
            // The reservation claims the id before it checks the span, so for a moment the
            // merged record was in the registry, Live: a Remove of the merged id may have found
            // it and replaced our entry (stress seed 105).
            let effects = self.take_back_merged(&merged, &key, admitted.hold());
            return Reaction::dropped_with(conflict.into(), effects);
        }
        let entry = Arc::new(MergeEntry {
            request,
            from: from.clone(),
            merged: merged.clone(),
            sources,
            hold: admitted.hold().clone(),
            word: AtomicU64::new(progress::pack(MergePhase::Preparing)),
        });
        // Each source Working → WaitingMerge by one CAS, not the reference's check-then-set; a
        // source that changed under us undoes all.
        let mut parked = 0;
        for source in &entry.sources {
            let r = source.transition(|s| {
                transition::swap_component(s, ComponentState::Working, ComponentState::WaitingMerge)
            });
            if r.is_err() || source.state().removing {
                break;
            }
            parked += 1;
        }
        let journaled = parked == entry.sources.len()
            && matches!(
                self.merges.entries.compute((mode, merged_id), |found| match found {
                    Some(_) => Op::Abort(()),
                    None => Op::Insert(entry.clone()),
                }),
                Computed::Inserted
            );
        if !journaled || !self.fence.still_current(owner) {
            for source in &entry.sources[..parked] {
                let _ = source.transition(|s| {
                    transition::swap_component(s, ComponentState::WaitingMerge, ComponentState::Working)
                });
            }
            self.merges.drop_entry(&entry);
            let effects = self.take_back_merged(&merged, &key, admitted.hold());
            let why = if journaled { DropReason::Fenced } else { DropReason::MergeRefused("source changed") };
            return Reaction::dropped_with(why, effects);
        }
        for source in &entry.sources {
            self.note_state(source, ComponentState::WaitingMerge);
        }
        Reaction::applied(vec![Effect::PrepareMerged { spec: merged.spec(), sources: source_ids }])
    }
}
