//! Merges on the node: the merge journal and the merge's lifecycle (node.md §3).
//!
//! A merge is journaled under its merged dispatcher id and occupies the merged span in the
//! operator journal. Its progress is one packed word per merge ([`MergeProgress`]):
//! `Preparing → Draining(remaining) → HandedOver → Finished`, or `Preparing → Aborted`. Exactly one
//! thread wins each step, so concurrent source closes hand over once, and an abort can never race
//! a hand-over. An aborted merged id is remembered for the rest of the owner's term, so a resent
//! request cannot resurrect the merge (hazard B5).

use std::sync::Arc;

use crate::ids::{DispatcherId, Mode, NodeId};
use crate::messages::{ComponentState, MergeRequest};
use crate::mutation::Mutation;
use crate::sync::{AtomicU64, Computed, Map, Op, Ordering};

use super::effect::{Drop, Effect, Step};
use super::manager::DispatcherManager;
use super::operators::{OpEntry, OpKey, OpRequest};
use super::registry::{transition, DispatcherRecord, Phase, RecordSpec, RecordState, Refused};

/// Where a merge is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MergePhase {
    /// Merged dispatcher built (Preparing / MergeReady); sources WaitingMerge but still writing.
    Preparing,
    /// Sources are being closed; `remaining` have not reported yet.
    Draining {
        /// Sources still to close.
        remaining: u32,
    },
    /// All sources closed; the merged dispatcher restarted from the joint start ts.
    HandedOver,
    /// The merged dispatcher reported Working: done.
    Finished,
    /// Given up before draining; sources were handed back.
    Aborted,
}

/// Pure transitions of a merge's progress word.
pub mod progress {
    use super::MergePhase;

    /// Pack into the word.
    pub fn pack(p: MergePhase) -> u64 {
        match p {
            MergePhase::Preparing => 0,
            MergePhase::Draining { remaining } => 1 | (u64::from(remaining) << 8),
            MergePhase::HandedOver => 2,
            MergePhase::Finished => 3,
            MergePhase::Aborted => 4,
        }
    }

    /// Unpack a word made by [`pack`].
    pub fn unpack(w: u64) -> MergePhase {
        match w & 0xff {
            0 => MergePhase::Preparing,
            1 => MergePhase::Draining { remaining: (w >> 8) as u32 },
            2 => MergePhase::HandedOver,
            3 => MergePhase::Finished,
            _ => MergePhase::Aborted,
        }
    }

    /// Start closing `sources` sources.
    pub fn begin_drain(p: MergePhase, sources: u32) -> Option<MergePhase> {
        (p == MergePhase::Preparing).then_some(MergePhase::Draining { remaining: sources })
    }

    /// One source closed; the last one hands over.
    pub fn source_drained(p: MergePhase) -> Option<MergePhase> {
        match p {
            MergePhase::Draining { remaining: 1 } => Some(MergePhase::HandedOver),
            MergePhase::Draining { remaining } if remaining > 1 => {
                Some(MergePhase::Draining { remaining: remaining - 1 })
            }
            _ => None,
        }
    }

    /// Give up: only before draining.
    pub fn abort(p: MergePhase) -> Option<MergePhase> {
        (p == MergePhase::Preparing).then_some(MergePhase::Aborted)
    }

    /// The merged dispatcher went away before the hand-over: end the merge, draining or not.
    pub fn end(p: MergePhase) -> Option<MergePhase> {
        matches!(p, MergePhase::Preparing | MergePhase::Draining { .. }).then_some(MergePhase::Aborted)
    }

    /// The merged dispatcher works.
    pub fn finish(p: MergePhase) -> Option<MergePhase> {
        (p == MergePhase::HandedOver).then_some(MergePhase::Finished)
    }
}

/// One journaled merge.
pub struct MergeEntry {
    /// The request as received (echoed in bootstrap responses).
    pub request: MergeRequest,
    /// The maintainer node that sent it.
    pub from: NodeId,
    /// The merged dispatcher.
    pub merged: Arc<DispatcherRecord>,
    /// The sources, in key order.
    pub sources: Vec<Arc<DispatcherRecord>>,
    key: OpKey,
    op: Arc<OpEntry>,
    word: AtomicU64,
}

impl MergeEntry {
    /// Current phase. Acquire: pairs with the AcqRel CAS in `advance`.
    pub fn phase(&self) -> MergePhase {
        progress::unpack(self.word.load(Ordering::Acquire))
    }

    /// Applies a transition with one CAS loop; `None` if it does not apply.
    fn advance(&self, f: impl Fn(MergePhase) -> Option<MergePhase>) -> Option<MergePhase> {
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let next = f(progress::unpack(current))?;
            match self.word.compare_exchange_weak(
                current,
                progress::pack(next),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(next),
                Err(found) => current = found,
            }
        }
    }

    fn has_source(&self, record: &Arc<DispatcherRecord>) -> bool {
        self.sources.iter().any(|s| Arc::ptr_eq(s, record))
    }
}

/// The merge journal, keyed by `(mode, merged dispatcher id)` (the full 128-bit id, hazard B8).
#[derive(Default)]
pub struct MergeJournal {
    entries: Map<(Mode, DispatcherId), Arc<MergeEntry>>,
    aborted: Map<(Mode, DispatcherId), ()>,
}

impl MergeJournal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    /// The journaled merge for a merged id.
    pub fn get(&self, mode: Mode, merged: DispatcherId) -> Option<Arc<MergeEntry>> {
        self.entries.get(&(mode, merged))
    }

    /// Requests of the merges in progress (what a bootstrap reports), in key order.
    pub fn in_progress(&self) -> Vec<MergeRequest> {
        let mut live: Vec<_> = self
            .entries
            .values()
            .into_iter()
            .filter(|e| !matches!(e.phase(), MergePhase::Aborted | MergePhase::Finished))
            .collect();
        live.sort_by(|a, b| (a.request.mode, &a.merged.span).cmp(&(b.request.mode, &b.merged.span)));
        live.into_iter().map(|e| e.request.clone()).collect()
    }

    /// Every journaled merge (any phase), in no particular order.
    pub fn entries(&self) -> Vec<Arc<MergeEntry>> {
        self.entries.values()
    }

    /// Number of journaled merges.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no merge is journaled.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a merge for this merged id was aborted under the current owner.
    pub fn was_aborted(&self, mode: Mode, merged: DispatcherId) -> bool {
        self.aborted.get(&(mode, merged)).is_some()
    }

    /// A new owner may legitimately re-issue any merge: forget the aborted ids.
    pub(crate) fn forget_aborted(&self) {
        for (key, ()) in self.aborted.entries() {
            self.aborted.remove_if(&key, |_| true);
        }
    }

    fn drop_entry(&self, entry: &Arc<MergeEntry>) {
        let key = (entry.request.mode, entry.request.merged);
        self.entries.remove_if(&key, |e| Arc::ptr_eq(e, entry));
    }

    fn involving(&self, mode: Mode, id: DispatcherId) -> Vec<Arc<MergeEntry>> {
        self.entries
            .values()
            .into_iter()
            .filter(|e| {
                e.request.mode == mode && (e.request.merged == id || e.sources.iter().any(|s| s.id == id))
            })
            .collect()
    }

    /// A Remove arrived for `id`: every merge it takes part in that has not handed over stops.
    /// One still preparing is aborted (sources back to Working). One draining is ended: the
    /// merged dispatcher is closed instead of started, and the drained sources are released. The
    /// owner asked for a participant to go, so the merged dispatcher must never start writing
    /// (I2): the owner may already be placing the removed range elsewhere.
    pub(crate) fn stop_involving(&self, dm: &DispatcherManager, mode: Mode, id: DispatcherId) -> Vec<Effect> {
        let mut effects = Vec::new();
        for entry in self.involving(mode, id) {
            effects.extend(self.abort(dm, &entry));
            if !dm.has_mutation(Mutation::HandOverDespiteRemove) {
                effects.extend(self.end_draining(dm, &entry));
            }
        }
        effects
    }

    /// Remembers `merged` as refused for the rest of the owner's term: a Remove for an id the
    /// node does not know may be the owner withdrawing a merge whose request is still in flight.
    pub(crate) fn refuse_later(&self, mode: Mode, merged: DispatcherId) {
        self.aborted.compute((mode, merged), |_| Op::<(), ()>::Insert(()));
    }

    /// Ends a draining merge without handing over: merged dispatcher closed, drained sources
    /// released (the rest are closing already and report Stopped when they finish).
    fn end_draining(&self, dm: &DispatcherManager, entry: &Arc<MergeEntry>) -> Vec<Effect> {
        if !matches!(entry.phase(), MergePhase::Draining { .. }) || entry.advance(progress::end).is_none() {
            return Vec::new();
        }
        let (mode, merged_id) = (entry.request.mode, entry.request.merged);
        self.refuse_later(mode, merged_id);
        self.drop_entry(entry);
        dm.operators.finish(&entry.key, &entry.op);
        let mut effects: Vec<Effect> = entry.sources.iter().filter_map(|s| release_drained(dm, s)).collect();
        if let Ok(before) = entry.merged.transition(transition::request_removal) {
            if !before.removing {
                effects.push(Effect::Close { id: merged_id, mode });
            }
        }
        effects
    }

    /// Aborts a merge that has not started draining: sources back to Working, merged closed.
    fn abort(&self, dm: &DispatcherManager, entry: &Arc<MergeEntry>) -> Vec<Effect> {
        if entry.advance(progress::abort).is_none() {
            return Vec::new();
        }
        let (mode, merged_id) = (entry.request.mode, entry.request.merged);
        // Tombstone first, then drop the entry: a resend arriving in between is refused.
        self.refuse_later(mode, merged_id);
        self.drop_entry(entry);
        dm.operators.finish(&entry.key, &entry.op);
        let mut effects = Vec::new();
        for source in &entry.sources {
            let back = source.transition(|s| {
                transition::swap_component(s, ComponentState::WaitingMerge, ComponentState::Working)
            });
            if back.is_ok() {
                dm.note_state(source, ComponentState::Working);
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
    pub(crate) fn source_closed(
        &self,
        dm: &DispatcherManager,
        record: &Arc<DispatcherRecord>,
    ) -> Result<Step, Vec<Effect>> {
        let Some(entry) = self.involving(record.mode, record.id).into_iter().find(|e| e.has_source(record))
        else {
            return Err(Vec::new());
        };
        let phase = entry.phase();
        if phase == MergePhase::Preparing && !dm.has_mutation(Mutation::SelfCloseSkipsPreparingMerge) {
            let effects = self.abort(dm, &entry);
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
            Err(Refused::Drained) if dm.has_mutation(Mutation::DrainCountedTwice) => {}
            Err(Refused::Drained) => return Ok(Step::dropped(Drop::Duplicate)),
            Err(_) => return Ok(Step::dropped(Drop::Unknown)),
        }
        match entry.advance(progress::source_drained) {
            Some(MergePhase::HandedOver) => Ok(Step::applied(self.hand_over(dm, &entry))),
            Some(_) => Ok(Step::applied(Vec::new())),
            // The merge ended under us (its merged dispatcher closed): this source is simply
            // closed. Whoever wins the close CAS releases it and reports its Stopped.
            None => Ok(Step::applied(release_drained(dm, record).into_iter().collect())),
        }
    }

    /// All sources closed: start the merged dispatcher, then release the sources (in that order, so
    /// the node's watermark never jumps over the span).
    fn hand_over(&self, dm: &DispatcherManager, entry: &Arc<MergeEntry>) -> Vec<Effect> {
        let (start_ts, skip_dml_as_start_ts) = merged_start(&entry.sources);
        let merged = &entry.merged;
        // The floor first: a state-change watermark can never rise above the merged span's start.
        dm.registry.lower_floor(merged.mode, start_ts);
        merged.restart_at(start_ts);
        if merged.transition(|s| transition::set_component(s, ComponentState::Initializing)).is_ok() {
            dm.note_state(merged, ComponentState::Initializing);
        }
        let mut effects =
            vec![Effect::StartMerged { id: merged.id, mode: merged.mode, start_ts, skip_dml_as_start_ts }];
        for source in &entry.sources {
            if source.transition(transition::close).is_ok() {
                effects.push(dm.release_closed(source));
            }
        }
        effects
    }

    /// The merged dispatcher changed state: MergeReady starts draining (or aborts if a source is
    /// gone); Working after hand-over finishes the merge.
    pub(crate) fn merged_state_changed(
        &self,
        dm: &DispatcherManager,
        record: &Arc<DispatcherRecord>,
        state: ComponentState,
    ) -> Vec<Effect> {
        let Some(entry) = self.get(record.mode, record.id).filter(|e| Arc::ptr_eq(&e.merged, record)) else {
            return Vec::new();
        };
        match state {
            ComponentState::MergeReady => {
                let merged_gone = record.state().removing;
                let source_gone = entry.sources.iter().any(|s| {
                    let st = s.state();
                    st.phase != Phase::Live || st.removing || st.component != ComponentState::WaitingMerge
                });
                if merged_gone || source_gone {
                    return self.abort(dm, &entry);
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
                    self.drop_entry(&entry);
                    dm.operators.finish(&entry.key, &entry.op);
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// The merged dispatcher itself was closed: a merge still preparing is aborted.
    pub(crate) fn merged_closed(
        &self,
        dm: &DispatcherManager,
        record: &Arc<DispatcherRecord>,
    ) -> Vec<Effect> {
        match self.get(record.mode, record.id).filter(|e| Arc::ptr_eq(&e.merged, record)) {
            Some(entry) => {
                let mut effects = self.abort(dm, &entry);
                // Whatever phase it was in, a closed merged dispatcher ends the merge. Sources a
                // draining merge already closed would otherwise wait for a hand-over that never
                // comes: they are released (and report Stopped) here.
                if entry.advance(progress::end).is_some() && !dm.has_mutation(Mutation::StrandDrainedSources)
                {
                    effects.extend(entry.sources.iter().filter_map(|s| release_drained(dm, s)));
                }
                self.drop_entry(&entry);
                dm.operators.finish(&entry.key, &entry.op);
                effects
            }
            None => Vec::new(),
        }
    }
}

/// Releases a merge source that was drained (closed by its merge) when the merge will not hand
/// over. Exactly one caller wins the close CAS.
fn release_drained(dm: &DispatcherManager, source: &Arc<DispatcherRecord>) -> Option<Effect> {
    let s = source.state();
    if !(s.phase == Phase::Live && s.drained) {
        return None;
    }
    source.transition(transition::close).ok()?;
    Some(dm.release_closed(source))
}

/// The merged dispatcher's start ts (node.md §3.4): the minimum of the sources' final checkpoints,
/// or the common barrier when every source is parked on the same one.
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
    /// Handles a `MergeDispatcherRequest` from maintainer node `from` (node.md §3.2–§3.3).
    pub fn handle_merge(&self, from: &NodeId, request: MergeRequest) -> Step {
        let owner = match self.admit_control(from, request.epoch, request.mode) {
            Ok(owner) => owner,
            Err(why) => return Step::dropped(why),
        };
        let (mode, merged_id) = (request.mode, request.merged);
        if self.merges.was_aborted(mode, merged_id) {
            return Step::dropped(Drop::MergeAborted);
        }
        if request.sources.len() < 2 {
            return Step::dropped(Drop::MergeRefused("fewer than two sources"));
        }
        // M2: the merged dispatcher exists already (a resend, or an outdated request).
        if let Some(merged) = self.registry.get_alive(mode, merged_id) {
            let s = merged.state();
            let mut effects = Vec::new();
            // Whatever phase it is in, say so: a resend (or a successor's restored merge) learns
            // that the merge was taken up, and a Working one finishes it.
            let quiet =
                self.has_mutation(Mutation::QuietMergeResend) && s.component != ComponentState::Working;
            if s.phase == Phase::Live && !quiet {
                effects.push(self.report_synthetic(crate::messages::DispatcherStatus {
                    id: merged_id,
                    mode,
                    state: s.component,
                    checkpoint_ts: merged.checkpoint_ts(),
                    event_size_per_second: 0.0,
                }));
            }
            return Step::dropped_with(Drop::AlreadyExists, effects);
        }
        // Again after the registry, as for creates: an abort or a close writes its mark before
        // the merged record is released, so a merged id found neither alive nor marked here
        // never ran (an abort completing between the first check and the lookup is caught).
        if self.merges.was_aborted(mode, merged_id) {
            return Step::dropped(Drop::MergeAborted);
        }
        // The merged id already ran and closed in this owner's term: a late copy of the request
        // that made it, after the owner withdrew the merge and placed the sources again. Taking it
        // up would drain those new sources into a dispatcher the owner has given up on (C1, seed
        // 13866 of the swarm with motifs). Merged ids are minted once per merge, so no new
        // request can name it.
        if self.closed.get(&(mode, merged_id)).is_some()
            && !self.has_mutation(Mutation::MergeAfterMergedClosed)
        {
            return Step::dropped(Drop::MergeAborted);
        }
        // M3: every source live, Working, not removing, adjacent in the given order.
        let mut sources = Vec::with_capacity(request.sources.len());
        for id in &request.sources {
            let Some(source) = self.registry.get_alive(mode, *id) else {
                return Step::dropped(Drop::MergeRefused("source dispatcher missing"));
            };
            let s = source.state();
            if s.phase != Phase::Live || s.removing || s.component != ComponentState::Working {
                return Step::dropped(Drop::MergeRefused("source dispatcher not working"));
            }
            sources.push(source);
        }
        if sources.windows(2).any(|w| !w[0].span.is_followed_by(&w[1].span)) {
            return Step::dropped(Drop::MergeRefused("sources not adjacent"));
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
            RecordState { phase: Phase::Live, component: ComponentState::Preparing, ..RecordState::CREATING },
        );
        let key = OpKey { mode, span };
        let op = OpEntry::new(OpRequest::Merge(request.clone()), from.clone(), merged.incarnation);
        let admitted = match self.operators.admit(key.clone(), op, |h| self.may_displace(&owner, h)) {
            Ok(admitted) => admitted,
            Err(_) => return Step::dropped(Drop::Busy),
        };
        let source_ids: Vec<_> = sources.iter().map(|s| s.id).collect();
        if let Err(conflict) = self.registry.reserve(&merged, &source_ids) {
            self.operators.finish(&key, &admitted.entry);
            return Step::dropped(conflict.into());
        }
        let entry = Arc::new(MergeEntry {
            request,
            from: from.clone(),
            merged: merged.clone(),
            sources,
            key: key.clone(),
            op: admitted.entry.clone(),
            word: AtomicU64::new(progress::pack(MergePhase::Preparing)),
        });
        // K7: each source Working → WaitingMerge by CAS; a source that changed under us undoes all.
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
        if !journaled || !self.fence.still_current(&owner) {
            for source in &entry.sources[..parked] {
                let _ = source.transition(|s| {
                    transition::swap_component(s, ComponentState::WaitingMerge, ComponentState::Working)
                });
            }
            self.merges.drop_entry(&entry);
            if merged.transition(transition::close).is_ok() {
                self.registry.release(&merged);
            }
            // Whatever now holds the key for this merged record goes: our entry, or a Remove of
            // the merged id that replaced it meanwhile (issue 15, fault 3), which nothing else
            // would finish once the record is released here.
            if self.has_mutation(Mutation::UndoFinishesOwnEntryOnly) {
                self.operators.finish(&key, &admitted.entry);
            } else {
                self.operators.finish_if(&key, |e| e.target == merged.incarnation);
            }
            return Step::dropped(if journaled {
                Drop::Fenced
            } else {
                Drop::MergeRefused("source changed")
            });
        }
        for source in &entry.sources {
            self.note_state(source, ComponentState::WaitingMerge);
        }
        Step::applied(vec![Effect::PrepareMerged { spec: merged.spec(), sources: source_ids }])
    }
}
