//! The merge journal: the merges a node has taken up, keyed by `(mode, merged dispatcher id)`.
//!
//! Each entry's progress is one packed word ([`progress`]):
//! `Preparing → Draining(remaining) → HandedOver → Finished`, or `Preparing → Aborted`
//! ([`progress::abort`]), or `Draining → Aborted` ([`progress::end`]: a participant was removed or
//! the merged dispatcher closed). Every step is a CAS on the word and exactly one thread wins it,
//! so concurrent source closes hand over once. An abort races `begin_drain`, and an end races the
//! last source's `source_drained`: whichever CAS lands first wins, so either the merge hands over
//! and the end's CAS fails, or the merge ends and the late source close only releases its source.
//! An aborted merged id is remembered for the rest of the owner's term, so a resent request
//! cannot resurrect the merge (hazard R5). The journal holds data only; the lifecycle that moves
//! an entry along lives on the manager (`super`).

use std::sync::Arc;

use crate::ids::{DispatcherId, Mode, NodeId};
use crate::messages::MergeRequest;
use crate::node::journal::Hold;
use crate::node::registry::DispatcherRecord;
use crate::sync::{AtomicU64, Map, Op, Ordering};

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
    /// Given up before the hand-over: while preparing, the sources were handed back; while
    /// draining, the merged dispatcher was closed and the drained sources released.
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

    /// The merge will not hand over (a participant removed, or the merged dispatcher closed): end
    /// it, draining or not. Races the last [`source_drained`]; one CAS wins.
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
    pub(super) hold: Hold,
    pub(super) word: AtomicU64,
}

impl MergeEntry {
    /// Current phase. Acquire: pairs with the AcqRel CAS in `advance`.
    pub fn phase(&self) -> MergePhase {
        progress::unpack(self.word.load(Ordering::Acquire))
    }

    /// Applies a transition with one CAS loop; `None` if it does not apply.
    pub(super) fn advance(&self, f: impl Fn(MergePhase) -> Option<MergePhase>) -> Option<MergePhase> {
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

    pub(super) fn has_source(&self, record: &Arc<DispatcherRecord>) -> bool {
        self.sources.iter().any(|s| Arc::ptr_eq(s, record))
    }
}

/// The merge journal, keyed by `(mode, merged dispatcher id)` (the full 128-bit id, hazard R8).
#[derive(Default)]
pub struct MergeJournal {
    pub(super) entries: Map<(Mode, DispatcherId), Arc<MergeEntry>>,
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

    pub(super) fn drop_entry(&self, entry: &Arc<MergeEntry>) {
        let key = (entry.request.mode, entry.request.merged);
        self.entries.remove_if(&key, |e| Arc::ptr_eq(e, entry));
    }

    pub(super) fn involving(&self, mode: Mode, id: DispatcherId) -> Vec<Arc<MergeEntry>> {
        self.entries
            .values()
            .into_iter()
            .filter(|e| {
                e.request.mode == mode && (e.request.merged == id || e.sources.iter().any(|s| s.id == id))
            })
            .collect()
    }

    /// Remembers `merged` as refused for the rest of the owner's term: a Remove for an id the
    /// node does not know may be the owner withdrawing a merge whose request is still in flight.
    pub(crate) fn refuse_later(&self, mode: Mode, merged: DispatcherId) {
        self.aborted.compute((mode, merged), |_| Op::<(), ()>::Insert(()));
    }
}
