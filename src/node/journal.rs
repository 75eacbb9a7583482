//! The in-flight operator journal: at most one operator per `(mode, span)`, one table for both
//! modes.
//!
//! An entry keeps the original request (with its `OperatorType` and `maintainer_epoch`) and the
//! node that sent it, plus the incarnation of the dispatcher record it concerns. Admission is one
//! atomic insert-if-absent (or replace-if-allowed) on the key; completion removes the entry only if
//! the key still holds *that* entry (remove-if-same, never a blind delete), so a completion can
//! never take away a newer operator that replaced the one it completes.

use std::sync::Arc;

use crate::ids::{Epoch, Mode, NodeId};
use crate::messages::{MergeRequest, ScheduleAction, ScheduleRequest};
use crate::span::TableSpan;
use crate::sync::{Computed, Map, Op};

/// The journal key: one operator per span per mode.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct OpKey {
    /// Mode of the span.
    pub mode: Mode,
    /// The span (for a Remove: the span of the dispatcher it removes; for a merge: the merged span).
    pub span: TableSpan,
}

/// What an operator entry is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum RequestKind {
    /// A scheduled create.
    Create,
    /// A scheduled remove.
    Remove,
    /// A merge occupying the merged span.
    Merge,
}

/// The request an entry journals.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum OpRequest {
    /// A create or remove.
    Schedule(ScheduleRequest),
    /// A merge.
    Merge(MergeRequest),
}

/// One in-flight operator.
#[derive(Debug)]
pub struct OpEntry {
    /// The original request.
    pub request: OpRequest,
    /// The maintainer node that sent it (from the transport envelope).
    pub from: NodeId,
    /// Incarnation of the dispatcher record it concerns.
    pub target: u64,
}

impl OpEntry {
    /// A new entry.
    pub fn new(request: OpRequest, from: NodeId, target: u64) -> Arc<Self> {
        Arc::new(Self { request, from, target })
    }

    /// What kind of operator this is.
    pub fn kind(&self) -> RequestKind {
        match &self.request {
            OpRequest::Schedule(r) if r.action() == ScheduleAction::Create => RequestKind::Create,
            OpRequest::Schedule(_) => RequestKind::Remove,
            OpRequest::Merge(_) => RequestKind::Merge,
        }
    }

    /// The epoch of the maintainer that sent it.
    pub fn epoch(&self) -> Epoch {
        match &self.request {
            OpRequest::Schedule(r) => r.epoch,
            OpRequest::Merge(r) => r.epoch,
        }
    }
}

/// Proof that an entry won admission: only a successful insert in [`OperatorTable::admit`] builds
/// one.
#[derive(Debug)]
#[must_use]
pub struct Admitted {
    entry: Arc<OpEntry>,
    replaced: Option<Arc<OpEntry>>,
}

impl Admitted {
    /// The entry that is now in the table.
    pub fn entry(&self) -> &Arc<OpEntry> {
        &self.entry
    }

    /// The entry it replaced, if any.
    pub fn replaced(&self) -> Option<&Arc<OpEntry>> {
        self.replaced.as_ref()
    }

    /// The admitted entry, the proof spent.
    pub fn into_entry(self) -> Arc<OpEntry> {
        self.entry
    }
}

/// The table refused an entry because another operator holds the key. An expected race.
#[derive(Debug)]
#[must_use]
pub struct Busy {
    holder: Arc<OpEntry>,
}

impl Busy {
    /// The entry that holds the key.
    pub fn holder(&self) -> &Arc<OpEntry> {
        &self.holder
    }
}

/// The in-flight operator journal.
#[derive(Default)]
pub struct OperatorTable {
    entries: Map<OpKey, Arc<OpEntry>>,
}

impl OperatorTable {
    /// An empty journal.
    pub fn new() -> Self {
        Self { entries: Map::new() }
    }

    /// Admits `entry` at `key` if the key is free or its holder may be replaced
    /// (`may_replace(holder)`), in one atomic step.
    pub fn admit(
        &self,
        key: OpKey,
        entry: Arc<OpEntry>,
        may_replace: impl Fn(&OpEntry) -> bool,
    ) -> Result<Admitted, Busy> {
        match self.entries.compute(key, |found| match found {
            Some(holder) if !may_replace(holder) => Op::Abort(holder.clone()),
            _ => Op::Insert(entry.clone()),
        }) {
            Computed::Inserted => Ok(Admitted { entry, replaced: None }),
            Computed::Replaced { old } => Ok(Admitted { entry, replaced: Some(old) }),
            Computed::Aborted(holder) => Err(Busy { holder }),
            Computed::Removed(_) | Computed::Absent => unreachable!("admit never removes"),
        }
    }

    /// Completes `entry`: removes it only if `key` still holds this very entry.
    pub fn finish(&self, key: &OpKey, entry: &Arc<OpEntry>) -> bool {
        self.entries.remove_if(key, |held| Arc::ptr_eq(held, entry)).is_some()
    }

    /// Takes back an admission that is dropped after all (fenced): if `key` still holds `entry`,
    /// puts `restore` back in its place (the entry it replaced), or empties the key. One atomic
    /// step, so a resend that is fenced need not erase the operator it replaced.
    pub fn revert(&self, key: &OpKey, entry: &Arc<OpEntry>, restore: Option<&Arc<OpEntry>>) -> bool {
        let outcome = self.entries.compute(key.clone(), |found| match (found, restore) {
            (Some(held), Some(old)) if Arc::ptr_eq(held, entry) => Op::Insert(old.clone()),
            (Some(held), None) if Arc::ptr_eq(held, entry) => Op::Remove,
            _ => Op::Abort(()),
        });
        !matches!(outcome, Computed::Aborted(()) | Computed::Absent)
    }

    /// Removes the entry at `key` only if `pred` holds for it. Returns what was removed.
    pub fn finish_if(&self, key: &OpKey, pred: impl FnMut(&Arc<OpEntry>) -> bool) -> Option<Arc<OpEntry>> {
        self.entries.remove_if(key, pred)
    }

    /// The entry at `key`.
    pub fn get(&self, key: &OpKey) -> Option<Arc<OpEntry>> {
        self.entries.get(key)
    }

    /// Every entry (weak snapshot).
    pub fn entries(&self) -> Vec<(OpKey, Arc<OpEntry>)> {
        self.entries.entries()
    }

    /// Number of entries (approximate under concurrency).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the journal is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
