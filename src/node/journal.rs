//! The in-flight operator journal: at most one operator per `(mode, span)`, one table for both
//! modes.
//!
//! An entry keeps what the request said (its `OperatorType` and `maintainer_epoch` among it, in
//! a compact form, see [`OpEntry`]) and the node that sent it, plus the incarnation of the
//! dispatcher record it concerns.
//!
//! # Layout
//!
//! A read-mostly index maps each span to its *cell*, an [`ArcSlot`] (one atomic word) that holds
//! the span's operator or nothing. A span is put in the index the first time an operator names
//! it; after that, admission is one compare-and-swap of the cell from empty (or from a holder
//! that may be replaced) to the new entry, and completion one compare-and-swap from *that* entry
//! back to empty (remove-if-same, never a blind delete, so a completion can never take away a
//! newer operator that replaced the one it completes). Neither touches the index, allocates or
//! defers a reclamation: the churn of operators coming and going stays in the cells, and the
//! index (papaya, strong at reads) is only read.
//!
//! Cells of spans that no operator named for a while are taken out of the index by
//! [`OperatorTable::sweep_idle`] (second chance: a cell is sealed only when it was empty and
//! untouched since the previous sweep). A sealed cell refuses every later swap, so an admission
//! that finds one in the index puts a fresh cell in its place and admits there: an entry can
//! never land in a cell that is out of the index.

use std::sync::Arc;

use crate::ids::{ChangefeedId, DispatcherId, Epoch, Mode, NodeId, Ts};
use crate::messages::{DispatcherConfig, MergeRequest, OperatorType, Order, ScheduleRequest};
use crate::span::TableSpan;
use crate::sync::{ArcSlot, Map, NotSwapped, Op, Sealed};

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

/// The request an entry is made from.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum OpRequest {
    /// A create or remove.
    Schedule(ScheduleRequest),
    /// A merge.
    Merge(MergeRequest),
}

/// One in-flight operator, kept compact: what its request said beyond the journal key (mode and
/// span) and the manager's changefeed, from which [`OpEntry::schedule_request`] rebuilds the
/// request for a bootstrap snapshot. (The whole request was 192 bytes, a 64-byte changefeed id
/// and the span twice among them, in every entry: issue 16.)
///
/// A Remove's span is echoed as the span of the dispatcher it removes (the key), whether or not
/// the sender gave it; only whether it was given is kept.
#[derive(Debug)]
pub struct OpEntry {
    /// The maintainer node that sent it (from the transport envelope).
    pub from: NodeId,
    /// Incarnation of the dispatcher record it concerns.
    pub target: u64,
    epoch: Epoch,
    /// The dispatcher created or removed, or the merged dispatcher of a merge.
    id: DispatcherId,
    start_ts: Ts,
    schema_id: i64,
    kind: RequestKind,
    operator_type: OperatorType,
    skip_dml_as_start_ts: bool,
    span_given: bool,
}

impl OpEntry {
    /// A new entry for `request`.
    pub fn new(request: OpRequest, from: NodeId, target: u64) -> Arc<Self> {
        Arc::new(match request {
            OpRequest::Schedule(r) => {
                let (kind, span_given) = match &r.order {
                    Order::Create { .. } => (RequestKind::Create, true),
                    Order::Remove { span } => (RequestKind::Remove, span.is_some()),
                };
                Self {
                    from,
                    target,
                    epoch: r.epoch,
                    id: r.config.id,
                    start_ts: r.config.start_ts,
                    schema_id: r.config.schema_id,
                    kind,
                    operator_type: r.operator_type,
                    skip_dml_as_start_ts: r.config.skip_dml_as_start_ts,
                    span_given,
                }
            }
            OpRequest::Merge(r) => Self {
                from,
                target,
                epoch: r.epoch,
                id: r.merged,
                start_ts: 0,
                schema_id: 0,
                kind: RequestKind::Merge,
                operator_type: OperatorType::Merge,
                skip_dml_as_start_ts: false,
                span_given: true,
            },
        })
    }

    /// What kind of operator this is.
    pub fn kind(&self) -> RequestKind {
        self.kind
    }

    /// The epoch of the maintainer that sent it.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The dispatcher it creates or removes (a merge: the merged dispatcher).
    pub fn id(&self) -> DispatcherId {
        self.id
    }

    /// The create or remove request this entry journals, as the sender sent it to `changefeed`
    /// (the manager's) for `key`; `None` for a merge (the merge journal reports those).
    pub fn schedule_request(&self, key: &OpKey, changefeed: &ChangefeedId) -> Option<ScheduleRequest> {
        let order = match self.kind {
            RequestKind::Create => Order::Create { span: key.span.clone() },
            RequestKind::Remove => Order::Remove { span: self.span_given.then(|| key.span.clone()) },
            RequestKind::Merge => return None,
        };
        Some(ScheduleRequest {
            changefeed: changefeed.clone(),
            config: DispatcherConfig {
                id: self.id,
                mode: key.mode,
                start_ts: self.start_ts,
                schema_id: self.schema_id,
                skip_dml_as_start_ts: self.skip_dml_as_start_ts,
            },
            order,
            operator_type: self.operator_type,
            epoch: self.epoch,
        })
    }
}

/// An entry admitted in the journal, with its span's cell: completing or reverting it is one
/// compare-and-swap on that cell, with no index lookup. (A cell that holds an entry is never
/// swept, so the cell a hold names is the span's cell for as long as the entry is in it.)
#[derive(Clone, Debug)]
pub struct Hold {
    cell: Arc<Cell>,
    entry: Arc<OpEntry>,
}

impl Hold {
    /// The admitted entry.
    pub fn entry(&self) -> &Arc<OpEntry> {
        &self.entry
    }

    /// Completes the entry: empties the cell only if it still holds this very entry.
    #[inline]
    pub fn finish(&self) -> bool {
        finish_in(&self.cell, &self.entry)
    }

    /// Takes the admission back: if the cell still holds the entry, puts `restore` in its place
    /// (the entry it replaced), or empties it. One atomic step.
    pub fn revert(&self, restore: Option<&Arc<OpEntry>>) -> bool {
        revert_in(&self.cell, &self.entry, restore)
    }
}

#[inline]
fn finish_in(cell: &Cell, entry: &Arc<OpEntry>) -> bool {
    cell.swap_if(Some(entry), None).is_ok()
}

fn revert_in(cell: &Cell, entry: &Arc<OpEntry>, restore: Option<&Arc<OpEntry>>) -> bool {
    cell.swap_if(Some(entry), restore.cloned()).is_ok()
}

/// Proof that an entry won admission: only a successful swap in [`OperatorTable::admit`] builds
/// one. It owns its entry (see [`AdmittedRef`] for the form that borrows it).
#[derive(Debug)]
#[must_use]
pub struct Admitted {
    hold: Hold,
    replaced: Option<Arc<OpEntry>>,
}

impl Admitted {
    /// The entry that is now in the table.
    pub fn entry(&self) -> &Arc<OpEntry> {
        &self.hold.entry
    }

    /// The hold on the entry (to complete or revert it).
    #[inline]
    pub fn hold(&self) -> &Hold {
        &self.hold
    }

    /// The entry it replaced, if any.
    pub fn replaced(&self) -> Option<&Arc<OpEntry>> {
        self.replaced.as_ref()
    }

    /// The hold, the proof spent.
    #[inline]
    pub fn into_hold(self) -> Hold {
        self.hold
    }
}

/// Proof that an entry the caller keeps won admission ([`OperatorTable::admit_ref`]): the same
/// as [`Admitted`], but the entry stays the caller's, so completing costs no reference count of
/// it (the caller's reference is what keeps the entry's address from being reused while the
/// completion compares it).
#[derive(Debug)]
#[must_use]
pub struct AdmittedRef<'e> {
    cell: Arc<Cell>,
    entry: &'e Arc<OpEntry>,
    replaced: Option<Arc<OpEntry>>,
}

impl AdmittedRef<'_> {
    /// The entry that is now in the table.
    pub fn entry(&self) -> &Arc<OpEntry> {
        self.entry
    }

    /// The entry it replaced, if any.
    pub fn replaced(&self) -> Option<&Arc<OpEntry>> {
        self.replaced.as_ref()
    }

    /// Completes the entry (as [`Hold::finish`]).
    #[inline]
    pub fn finish(&self) -> bool {
        finish_in(&self.cell, self.entry)
    }

    /// Takes the admission back (as [`Hold::revert`]).
    pub fn revert(&self, restore: Option<&Arc<OpEntry>>) -> bool {
        revert_in(&self.cell, self.entry, restore)
    }

    /// The span's cell and the replaced entry, the proof spent (no longer tied to the entry).
    fn into_parts(self) -> (Arc<Cell>, Option<Arc<OpEntry>>) {
        (self.cell, self.replaced)
    }
}

/// The table refused an entry because another operator holds the key and may not be replaced.
/// An expected race.
#[derive(Debug)]
#[must_use]
pub struct Busy;

/// The in-flight operator journal (see the module docs for the layout).
#[derive(Default)]
pub struct OperatorTable {
    index: Map<OpKey, Arc<Cell>>,
}

type Cell = ArcSlot<OpEntry>;

/// What an admission attempt in one cell came to: the entry replaced, or Busy.
enum Placed {
    Done(Result<Option<Arc<OpEntry>>, Busy>),
    /// The cell was sealed by a sweep: the entry comes back, to be admitted in a fresh cell.
    Sealed(Arc<OpEntry>),
}

impl OperatorTable {
    /// An empty journal.
    pub fn new() -> Self {
        Self { index: Map::new() }
    }

    /// Admits `entry` at `key` if the key is free or its holder may be replaced
    /// (`may_replace(holder)`), in one atomic step on the span's cell.
    #[inline]
    pub fn admit(
        &self,
        key: &OpKey,
        entry: Arc<OpEntry>,
        may_replace: impl Fn(&OpEntry) -> bool,
    ) -> Result<Admitted, Busy> {
        let (cell, replaced) = self.admit_ref(key, &entry, may_replace)?.into_parts();
        Ok(Admitted { hold: Hold { cell, entry }, replaced })
    }

    /// [`OperatorTable::admit`] for an entry the caller keeps: the table takes its own reference
    /// and the proof borrows the caller's.
    #[inline]
    pub fn admit_ref<'e>(
        &self,
        key: &OpKey,
        entry: &'e Arc<OpEntry>,
        may_replace: impl Fn(&OpEntry) -> bool,
    ) -> Result<AdmittedRef<'e>, Busy> {
        let mut mine = entry.clone();
        loop {
            // The cell is taken out of the index with a reference of its own (the one the proof
            // keeps), so the attempt runs outside the index's guard.
            if let Some(cell) = self.index.get(key) {
                match Self::admit_in(&cell, mine, &may_replace) {
                    Placed::Done(Ok(replaced)) => return Ok(AdmittedRef { cell, entry, replaced }),
                    Placed::Done(Err(busy)) => return Err(busy),
                    Placed::Sealed(back) => mine = back,
                }
            }
            self.open_cell(key);
        }
    }

    /// One admission attempt in `cell`: empty → entry, or holder → entry if `may_replace(holder)`.
    #[inline]
    fn admit_in(cell: &Cell, entry: Arc<OpEntry>, may_replace: &impl Fn(&OpEntry) -> bool) -> Placed {
        let mut entry = entry;
        let mut expected: Option<Arc<OpEntry>> = None;
        loop {
            match cell.swap_if(expected.as_ref(), Some(entry)) {
                Ok(replaced) => return Placed::Done(Ok(replaced)),
                Err(NotSwapped { value, sealed }) => {
                    entry = value.expect("the entry comes back");
                    if sealed {
                        return Placed::Sealed(entry);
                    }
                }
            }
            // Judge the holder on a borrowed view (no reference count taken): a refusal, the
            // common outcome on a busy span, costs two RMWs on the cell word.
            match cell.read(|holder| holder.map(may_replace)) {
                Err(Sealed) => return Placed::Sealed(entry),
                Ok(None) => expected = None,
                Ok(Some(false)) => return Placed::Done(Err(Busy)),
                // To replace it, hold it: a reference keeps its address from being reused by
                // a newer entry before the swap (which compares addresses). Judged again on
                // what is held, in case it changed meanwhile.
                Ok(Some(true)) => match cell.load() {
                    Err(Sealed) => return Placed::Sealed(entry),
                    Ok(None) => expected = None,
                    Ok(Some(holder)) if may_replace(&holder) => expected = Some(holder),
                    Ok(Some(_)) => return Placed::Done(Err(Busy)),
                },
            }
        }
    }

    /// Puts a fresh cell at `key` unless a live (unsealed) one is there already.
    fn open_cell(&self, key: &OpKey) {
        let fresh = Arc::new(Cell::new());
        self.index.compute(key.clone(), |found| match found {
            Some(cell) if !cell.is_sealed() => Op::Abort(()),
            _ => Op::Insert(fresh.clone()),
        });
    }

    /// Completes `entry`: empties `key`'s cell only if it still holds this very entry.
    pub fn finish(&self, key: &OpKey, entry: &Arc<OpEntry>) -> bool {
        self.index.with(key, |cell| cell.swap_if(Some(entry), None).is_ok()).unwrap_or(false)
    }

    /// Takes back an admission that is dropped after all (fenced): if `key` still holds `entry`,
    /// puts `restore` back in its place (the entry it replaced), or empties the key. One atomic
    /// step, so a resend that is fenced need not erase the operator it replaced.
    pub fn revert(&self, key: &OpKey, entry: &Arc<OpEntry>, restore: Option<&Arc<OpEntry>>) -> bool {
        self.index.with(key, |cell| cell.swap_if(Some(entry), restore.cloned()).is_ok()).unwrap_or(false)
    }

    /// Removes the entry at `key` only if `pred` holds for it. Returns what was removed.
    pub fn finish_if(
        &self,
        key: &OpKey,
        mut pred: impl FnMut(&Arc<OpEntry>) -> bool,
    ) -> Option<Arc<OpEntry>> {
        self.index
            .with(key, |cell| loop {
                let Ok(Some(holder)) = cell.load() else { return None };
                if !pred(&holder) {
                    return None;
                }
                if let Ok(removed) = cell.swap_if(Some(&holder), None) {
                    return removed;
                }
            })
            .flatten()
    }

    /// The entry at `key`.
    pub fn get(&self, key: &OpKey) -> Option<Arc<OpEntry>> {
        self.index.with(key, |cell| cell.load().ok().flatten()).flatten()
    }

    /// Every entry (weak snapshot: an entry in place for the whole scan is in it).
    pub fn entries(&self) -> Vec<(OpKey, Arc<OpEntry>)> {
        let mut entries = Vec::new();
        self.index.for_each(|key, cell| {
            if let Ok(Some(entry)) = cell.load() {
                entries.push((key.clone(), entry));
            }
        });
        entries
    }

    /// Number of entries (a scan of the index; approximate under concurrency).
    pub fn len(&self) -> usize {
        let mut n = 0;
        self.index.for_each(|_, cell| n += usize::from(!cell.is_vacant()));
        n
    }

    /// Whether the journal holds no entry (a scan, as [`OperatorTable::len`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of spans in the index, with or without an operator.
    pub fn spans(&self) -> usize {
        self.index.len()
    }

    /// Takes out of the index the cells of spans that held no operator since the previous sweep.
    /// Cheap enough for every heartbeat round: one load per cell, an RMW for each cell it clears
    /// or seals. Returns how many it took out.
    pub fn sweep_idle(&self) -> usize {
        let mut sealed = Vec::new();
        self.index.for_each(|key, cell| {
            if cell.seal_if_idle() {
                sealed.push((key.clone(), cell.clone()));
            }
        });
        for (key, cell) in &sealed {
            self.index.remove_if(key, |found| Arc::ptr_eq(found, cell));
        }
        sealed.len()
    }
}
