//! The dispatcher registry: every dispatcher of one manager by `(mode, id)`, plus a per-table
//! copy-on-write span set that refuses overlapping dispatchers atomically.
//!
//! Each dispatcher is a [`DispatcherRecord`] whose lifecycle lives in one packed state word
//! ([`RecordState`]). Its transitions are pure functions over the decoded word, applied by a single
//! CAS loop ([`DispatcherRecord::transition`]); the two that decide races are
//! `commit` (Creating → Live, by the embedder once the dispatcher is built) and `cancel`
//! (Creating → Cancelled, by a bootstrap fencing an old owner's create, or by a Remove that arrives
//! first). Exactly one of them wins, so a create either executes or never does.

use std::sync::Arc;

use crate::ids::{DispatcherId, Epoch, Mode, NodeId, Ts};
use crate::messages::{BlockStage, BlockState, ComponentState, PendingBlock};
use crate::span::TableSpan;
use crate::sync::{AtomicU64, Map, Ordering, Swap};

use super::heartbeat::StatusSlot;

/// Where a dispatcher is in its life on this node.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RecordPhase {
    /// Admitted and reserved; the embedder is building it. Not yet reported anywhere.
    Creating,
    /// Built and running (whatever its component state).
    Live,
    /// Closed and released; terminal.
    Closed,
    /// Never executed: fenced or removed before it was committed; terminal.
    Cancelled,
}

/// The decoded state word of a dispatcher record.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RecordState {
    /// Lifecycle phase.
    pub phase: RecordPhase,
    /// Component state as the maintainer sees it.
    pub component: ComponentState,
    /// A removal was requested (the close effect has been issued once).
    pub removing: bool,
    /// Closed by the embedder as a merge source, waiting for the merged dispatcher to take over.
    pub drained: bool,
}

const PHASE_BITS: u64 = 0b11;
const COMPONENT_SHIFT: u32 = 2;
const COMPONENT_BITS: u64 = 0b111;
const REMOVING_BIT: u64 = 1 << 5;
const DRAINED_BIT: u64 = 1 << 6;

impl RecordState {
    /// The state of a freshly admitted dispatcher.
    pub const CREATING: RecordState = RecordState {
        phase: RecordPhase::Creating,
        component: ComponentState::Initializing,
        removing: false,
        drained: false,
    };

    /// Packs into the state word.
    pub fn pack(self) -> u64 {
        let phase = match self.phase {
            RecordPhase::Creating => 0,
            RecordPhase::Live => 1,
            RecordPhase::Closed => 2,
            RecordPhase::Cancelled => 3,
        };
        let component = u64::try_from(self.component.as_i32()).unwrap_or(0);
        phase
            | (component << COMPONENT_SHIFT)
            | if self.removing { REMOVING_BIT } else { 0 }
            | if self.drained { DRAINED_BIT } else { 0 }
    }

    /// Unpacks a state word produced by [`RecordState::pack`].
    pub fn unpack(word: u64) -> RecordState {
        let phase = match word & PHASE_BITS {
            0 => RecordPhase::Creating,
            1 => RecordPhase::Live,
            2 => RecordPhase::Closed,
            _ => RecordPhase::Cancelled,
        };
        let component = ComponentState::from_i32(((word >> COMPONENT_SHIFT) & COMPONENT_BITS) as i32)
            .unwrap_or(ComponentState::Working);
        RecordState { phase, component, removing: word & REMOVING_BIT != 0, drained: word & DRAINED_BIT != 0 }
    }

    /// Whether the dispatcher holds its span (reserved or running).
    pub fn is_alive(self) -> bool {
        matches!(self.phase, RecordPhase::Creating | RecordPhase::Live)
    }
}

/// Why a record transition did not apply. Expected races, not errors.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[must_use]
pub enum Refused {
    /// The record was not in the phase the transition needs; carries what was found.
    RecordPhase(RecordPhase),
    /// The component state was not the expected one.
    Component(ComponentState),
    /// A merge source already counted as drained (a duplicate close report).
    Drained,
}

/// Pure transitions over [`RecordState`]; each checks its precondition first.
pub mod transition {
    use super::*;

    /// The embedder built the dispatcher: Creating → Live (Initializing).
    pub fn commit(s: RecordState) -> Result<RecordState, Refused> {
        match s.phase {
            RecordPhase::Creating => Ok(RecordState { phase: RecordPhase::Live, ..s }),
            other => Err(Refused::RecordPhase(other)),
        }
    }

    /// Withdraw an admitted create that has not executed: Creating → Cancelled.
    pub fn cancel(s: RecordState) -> Result<RecordState, Refused> {
        match s.phase {
            RecordPhase::Creating => Ok(RecordState { phase: RecordPhase::Cancelled, ..s }),
            other => Err(Refused::RecordPhase(other)),
        }
    }

    /// Request removal: Live → Live + removing. Succeeds (rewriting the same word) when removal was
    /// already requested, so callers always get a read-modify-write to order against `close`; the
    /// caller issues the close only if the replaced state was not yet removing.
    pub fn request_removal(s: RecordState) -> Result<RecordState, Refused> {
        match s.phase {
            RecordPhase::Live => Ok(RecordState { removing: true, ..s }),
            other => Err(Refused::RecordPhase(other)),
        }
    }

    /// The embedder closed it: Live → Closed.
    pub fn close(s: RecordState) -> Result<RecordState, Refused> {
        match s.phase {
            RecordPhase::Live => {
                Ok(RecordState { phase: RecordPhase::Closed, component: ComponentState::Stopped, ..s })
            }
            other => Err(Refused::RecordPhase(other)),
        }
    }

    /// A merge source was closed by the merge: Live → Live + drained.
    pub fn drain(s: RecordState) -> Result<RecordState, Refused> {
        match s.phase {
            // Once only: a duplicate close report must not count the source twice (issue 15, 5).
            RecordPhase::Live if s.drained => Err(Refused::Drained),
            RecordPhase::Live => Ok(RecordState { drained: true, ..s }),
            other => Err(Refused::RecordPhase(other)),
        }
    }

    /// The component state changed while live.
    pub fn set_component(s: RecordState, to: ComponentState) -> Result<RecordState, Refused> {
        match s.phase {
            RecordPhase::Live => Ok(RecordState { component: to, ..s }),
            other => Err(Refused::RecordPhase(other)),
        }
    }

    /// Compare-and-set of the component state while live (merge source hand-offs).
    pub fn swap_component(
        s: RecordState,
        from: ComponentState,
        to: ComponentState,
    ) -> Result<RecordState, Refused> {
        match s.phase {
            RecordPhase::Live if s.component == from => Ok(RecordState { component: to, ..s }),
            RecordPhase::Live => Err(Refused::Component(s.component)),
            other => Err(Refused::RecordPhase(other)),
        }
    }
}

/// Who admitted a create, to judge it against a later owner.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Admission {
    /// The maintainer node that sent it.
    pub from: NodeId,
    /// Its epoch.
    pub epoch: Epoch,
}

/// One dispatcher on this node.
pub struct DispatcherRecord {
    /// Identity.
    pub id: DispatcherId,
    /// Mode.
    pub mode: Mode,
    /// Key range it replicates.
    pub span: TableSpan,
    /// Schema of its table.
    pub schema_id: i64,
    /// Skip DML at exactly the start ts.
    pub skip_dml_as_start_ts: bool,
    /// Unique per record on this manager: tells a re-created dispatcher from its predecessor.
    pub incarnation: u64,
    /// The request that admitted it (`None` for table triggers and merged dispatchers).
    pub admission: Option<Admission>,
    word: AtomicU64,
    start_ts: AtomicU64,
    /// What the heartbeat path reports: latest progress, report flags, pending transitions. Its
    /// checkpoint is the record's checkpoint.
    pub status: StatusSlot,
    seq: AtomicU64,
    /// What it remembers of barriers, for snapshots and merges (see [`BarrierMemo`]).
    barrier: Swap<BarrierMemo>,
}

/// What a record remembers of barriers: the last state its dispatcher reported
/// (`report_block_status`) and the barrier it closed on (`record_final`). One shared value until
/// either is set, so a record that never meets a barrier costs no allocation and no field for it
/// (issue 16: the closed-on barrier was two atomics in every record).
#[derive(Clone, Default, Debug)]
struct BarrierMemo {
    noted: Option<BlockState>,
    closed_on: Option<PendingBlock>,
}

impl std::fmt::Debug for DispatcherRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DispatcherRecord")
            .field("id", &self.id)
            .field("mode", &self.mode)
            .field("span", &self.span)
            .field("incarnation", &self.incarnation)
            .field("state", &self.state())
            .finish()
    }
}

/// The barrier state of a record that never reported one: one shared value, so a record costs
/// no allocation for it (most dispatchers never meet a barrier).
fn no_barrier() -> Arc<BarrierMemo> {
    static NONE: std::sync::OnceLock<Arc<BarrierMemo>> = std::sync::OnceLock::new();
    NONE.get_or_init(|| Arc::new(BarrierMemo::default())).clone()
}

/// The immutable description of a record, for building one.
#[derive(Clone, Debug)]
pub struct RecordSpec {
    /// Identity.
    pub id: DispatcherId,
    /// Mode.
    pub mode: Mode,
    /// Key range.
    pub span: TableSpan,
    /// Schema id.
    pub schema_id: i64,
    /// Start ts.
    pub start_ts: Ts,
    /// Skip DML at the start ts.
    pub skip_dml_as_start_ts: bool,
    /// Admitting request, if any.
    pub admission: Option<Admission>,
}

impl DispatcherRecord {
    fn new(spec: RecordSpec, incarnation: u64, state: RecordState) -> Self {
        Self {
            id: spec.id,
            mode: spec.mode,
            span: spec.span,
            schema_id: spec.schema_id,
            skip_dml_as_start_ts: spec.skip_dml_as_start_ts,
            incarnation,
            admission: spec.admission,
            word: AtomicU64::new(state.pack()),
            start_ts: AtomicU64::new(spec.start_ts),
            status: StatusSlot::new(spec.start_ts, state.component),
            seq: AtomicU64::new(0),
            barrier: Swap::new(no_barrier()),
        }
    }

    /// The current state. Acquire: pairs with the Release half of the CAS in `transition`.
    pub fn state(&self) -> RecordState {
        RecordState::unpack(self.word.load(Ordering::Acquire))
    }

    /// Applies a pure transition with one CAS loop. Returns the state it replaced.
    ///
    /// AcqRel: the winner publishes everything it wrote before (checkpoint, block) and sees
    /// everything the previous transition published. The loop retries only when another thread
    /// changed the word, so it is lock-free.
    pub fn transition(
        &self,
        f: impl Fn(RecordState) -> Result<RecordState, Refused>,
    ) -> Result<RecordState, Refused> {
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let (before, after) = (RecordState::unpack(current), f(RecordState::unpack(current))?);
            // A closed or cancelled record never comes back: its id cannot write again (I2).
            debug_assert!(before.is_alive() || !after.is_alive(), "{before:?} -> {after:?}");
            let next = after.pack();
            debug_assert_eq!(RecordState::unpack(next), after, "the state word round-trips");
            match self.word.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(RecordState::unpack(current)),
                Err(found) => current = found,
            }
        }
    }

    /// Start ts (a merged dispatcher's is decided at hand-over).
    pub fn start_ts(&self) -> Ts {
        self.start_ts.load(Ordering::Acquire)
    }

    /// Sets the start ts and resets the checkpoint to it (merge hand-over, before the merged
    /// dispatcher ever reported progress).
    pub fn restart_at(&self, ts: Ts) {
        // Release: published together with the Initializing transition that follows.
        self.start_ts.store(ts, Ordering::Release);
        self.status.restart(ts);
    }

    /// Last reported checkpoint (the final one once Stopped).
    pub fn checkpoint_ts(&self) -> Ts {
        self.status.checkpoint_ts()
    }

    /// Raises the checkpoint (it never goes backwards).
    pub fn advance_checkpoint(&self, ts: Ts) {
        self.status.raise_checkpoint(ts);
    }

    /// Records the final checkpoint (never below one already reported) and pending barrier of a
    /// close; published by the close transition that must follow.
    pub fn record_final(&self, checkpoint: Ts, block: Option<PendingBlock>) {
        self.status.raise_checkpoint(checkpoint);
        let mut current = self.barrier.load();
        while current.closed_on != block {
            let next = Arc::new(BarrierMemo { noted: current.noted.clone(), closed_on: block });
            match self.barrier.compare_and_swap(&current, next) {
                Ok(()) => return,
                Err(found) => current = found,
            }
        }
    }

    /// Remembers the dispatcher's latest barrier state (last writer wins).
    ///
    /// A state of an older event than the one noted, an earlier stage of the noted event, and a
    /// DONE for another event than the one noted as pending (WAITING or WRITING), do not replace
    /// it: a DONE regenerated for an event
    /// passed long ago (an old action resent) or a late resend must not hide the event the
    /// dispatcher waits on now from the next bootstrap snapshot (B17).
    pub fn note_barrier(&self, state: BlockState) {
        let key = (state.block_ts, state.is_sync_point);
        let rank = stage_rank(state.stage);
        let done = state.stage == BlockStage::Done;
        let mut current = self.barrier.load();
        loop {
            let stale = current.noted.as_ref().is_some_and(|c| {
                let noted = (c.block_ts, c.is_sync_point);
                // An older event's state is stale whatever its stage (a resend, a late copy), and
                // so is an earlier stage of the noted event (a WAITING resend taken before the
                // WRITING or DONE it now lands after).
                noted > key
                    || (noted == key && rank < stage_rank(c.stage))
                    || (done && matches!(c.stage, BlockStage::Waiting | BlockStage::Writing) && noted != key)
            });
            if stale {
                return;
            }
            let next = Arc::new(BarrierMemo { noted: Some(state.clone()), closed_on: current.closed_on });
            match self.barrier.compare_and_swap(&current, next) {
                Ok(()) => return,
                Err(found) => current = found,
            }
        }
    }

    /// The barrier state a bootstrap snapshot reports: the last one the dispatcher reported, else
    /// the barrier it closed on (as a blocked state without a stage), else none.
    pub fn barrier_state(&self) -> Option<BlockState> {
        if let Some(state) = self.barrier.with(|m| m.noted.clone()) {
            return Some(state);
        }
        self.pending_block().map(|b| BlockState {
            is_blocked: true,
            block_ts: b.block_ts,
            is_sync_point: b.is_sync_point,
            stage: BlockStage::None,
            detail: Arc::default(),
        })
    }

    /// The barrier recorded by the last `record_final`.
    pub fn pending_block(&self) -> Option<PendingBlock> {
        self.barrier.with(|m| m.closed_on)
    }

    /// The registry sequence number taken when the dispatcher went live (0 before).
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// Its description.
    pub fn spec(&self) -> RecordSpec {
        RecordSpec {
            id: self.id,
            mode: self.mode,
            span: self.span.clone(),
            schema_id: self.schema_id,
            start_ts: self.start_ts(),
            skip_dml_as_start_ts: self.skip_dml_as_start_ts,
            admission: self.admission.clone(),
        }
    }
}

/// Why a reservation failed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Conflict {
    /// A live dispatcher with this id exists.
    IdTaken(DispatcherId),
    /// A live dispatcher of the same mode overlaps the span.
    Overlaps(DispatcherId),
}

type TableKey = (Mode, u32, i64);
type SpanSet = Vec<Arc<DispatcherRecord>>;

/// Dispatchers by id, and live spans per table.
pub struct Registry {
    by_id: Map<(Mode, DispatcherId), Arc<DispatcherRecord>>,
    tables: Map<TableKey, Arc<Swap<SpanSet>>>,
    seq: AtomicU64,
    incarnations: AtomicU64,
    floors: [AtomicU64; 2],
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self {
            by_id: Map::new(),
            tables: Map::new(),
            seq: AtomicU64::new(0),
            incarnations: AtomicU64::new(0),
            floors: [AtomicU64::new(Ts::MAX), AtomicU64::new(Ts::MAX)],
        }
    }

    /// A new record in `state`, not yet reserved.
    pub fn make(&self, spec: RecordSpec, state: RecordState) -> Arc<DispatcherRecord> {
        // Relaxed: a unique counter; nothing is published through it.
        let incarnation = self.incarnations.fetch_add(1, Ordering::Relaxed) + 1;
        Arc::new(DispatcherRecord::new(spec, incarnation, state))
    }

    /// The record for `(mode, id)`, whatever its phase.
    pub fn get(&self, mode: Mode, id: DispatcherId) -> Option<Arc<DispatcherRecord>> {
        self.by_id.get(&(mode, id))
    }

    /// The record for `(mode, id)` if it holds its span (creating or live).
    pub fn get_alive(&self, mode: Mode, id: DispatcherId) -> Option<Arc<DispatcherRecord>> {
        self.get(mode, id).filter(|r| r.state().is_alive())
    }

    /// Every record (weak snapshot).
    pub fn records(&self) -> Vec<Arc<DispatcherRecord>> {
        self.by_id.values()
    }

    /// Number of records (approximate under concurrency).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there is no record.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    fn table(&self, key: TableKey) -> Arc<Swap<SpanSet>> {
        if let Some(cell) = self.tables.get(&key) {
            return cell;
        }
        let fresh = Arc::new(Swap::new(Arc::new(Vec::new())));
        match self.tables.compute(key, |found| match found {
            Some(cell) => crate::sync::Op::Abort(cell.clone()),
            None => crate::sync::Op::Insert(fresh.clone()),
        }) {
            crate::sync::Computed::Aborted(cell) => cell,
            _ => fresh,
        }
    }

    /// Reserves the record's id and span. `may_overlap` lists the dispatchers the span may
    /// overlap (a merged dispatcher over its own sources, which stop before it writes).
    ///
    /// Atomic per structure: the id is claimed by one insert-if-absent, the span by one CAS of
    /// the table's span set, so two overlapping reservations can never both succeed.
    pub fn reserve(
        &self,
        record: &Arc<DispatcherRecord>,
        may_overlap: &[DispatcherId],
    ) -> Result<(), Conflict> {
        let key = (record.mode, record.id);
        // Before anything can commit: the watermark floor covers this dispatcher from now on.
        self.lower_floor(record.mode, record.start_ts());
        if let crate::sync::Computed::Aborted(id) = self.by_id.compute(key, |found| match found {
            Some(r) if r.state().is_alive() => crate::sync::Op::Abort(r.id),
            _ => crate::sync::Op::Insert(record.clone()),
        }) {
            return Err(Conflict::IdTaken(id));
        }
        let cell = self.table((record.mode, record.span.keyspace_id, record.span.table_id));
        let mut current = cell.load();
        loop {
            let clash = current.iter().find(|r| {
                r.span.overlaps(&record.span) && r.state().is_alive() && !may_overlap.contains(&r.id)
            });
            if let Some(r) = clash {
                let id = r.id;
                self.by_id.remove_if(&key, |r| Arc::ptr_eq(r, record));
                return Err(Conflict::Overlaps(id));
            }
            let mut next: SpanSet = current.iter().filter(|r| r.state().is_alive()).cloned().collect();
            next.push(record.clone());
            match cell.compare_and_swap(&current, Arc::new(next)) {
                Ok(()) => {
                    // AcqRel: the reservation is visible before the seq moves, so a watermark
                    // whose seq covers this bump was computed by a scan that saw the record
                    // (its start ts then bounds the watermark, and the maintainer accepts the
                    // lower value because the seq rose: hazard R2 for creates in flight).
                    self.seq.fetch_add(1, Ordering::AcqRel);
                    return Ok(());
                }
                Err(found) => current = found,
            }
        }
    }

    /// Takes a live-sequence number for a record that just went live (the watermark `seq`
    /// protocol: incremented after the dispatcher is visible, read before a scan).
    pub fn assign_seq(&self, record: &DispatcherRecord) -> u64 {
        // AcqRel: the record's Live transition happens-before this increment, so a reader that
        // loads this seq (Acquire) before scanning will see the record.
        let seq = self.seq.fetch_add(1, Ordering::AcqRel) + 1;
        record.seq.store(seq, Ordering::Release);
        seq
    }

    /// The current sequence number (read before scanning, see [`Registry::assign_seq`]).
    pub fn current_seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// Lowers the mode's watermark floor to `start_ts` (hazard R2, see `heartbeat::watermark`):
    /// called for every dispatcher before it can take a sequence number.
    pub fn lower_floor(&self, mode: Mode, start_ts: Ts) {
        // AcqRel RMW: ordered before this dispatcher's `assign_seq` (program order, then the AcqRel
        // RMW there), so a reader that loads a seq covering it and then the floor sees this value.
        self.floors[floor_index(mode)].fetch_min(start_ts, Ordering::AcqRel);
    }

    /// The floor: minimum start ts of dispatchers reserved since the last [`Registry::take_floor`].
    pub fn floor(&self, mode: Mode) -> Ts {
        self.floors[floor_index(mode)].load(Ordering::Acquire)
    }

    /// Resets the floor and returns what it held (done by the scan that will account for it).
    pub fn take_floor(&self, mode: Mode) -> Ts {
        // AcqRel RMW: every `lower_floor` is either in the returned value or in the next one.
        self.floors[floor_index(mode)].swap(Ts::MAX, Ordering::AcqRel)
    }

    /// Visits every record without cloning (weak snapshot).
    pub fn for_each(&self, mut f: impl FnMut(&Arc<DispatcherRecord>)) {
        self.by_id.for_each(|_, r| f(r));
    }

    /// Releases the record's id and span, only if they still belong to this very record.
    pub fn release(&self, record: &Arc<DispatcherRecord>) {
        self.by_id.remove_if(&(record.mode, record.id), |r| Arc::ptr_eq(r, record));
        let Some(cell) = self.tables.get(&(record.mode, record.span.keyspace_id, record.span.table_id))
        else {
            return;
        };
        let mut current = cell.load();
        while current.iter().any(|r| Arc::ptr_eq(r, record)) {
            let next: SpanSet = current.iter().filter(|r| !Arc::ptr_eq(r, record)).cloned().collect();
            match cell.compare_and_swap(&current, Arc::new(next)) {
                Ok(()) => return,
                Err(found) => current = found,
            }
        }
    }

    /// Visits the records of each table's span set, tables in (mode, keyspace, table) order,
    /// each set as it is at its own load (weak snapshot: a record reserved and not released for
    /// the whole visit is in it; dead records not yet filtered out may be too).
    pub fn for_each_table_in_order(&self, mut f: impl FnMut(&[Arc<DispatcherRecord>])) {
        let mut tables: Vec<(TableKey, Arc<Swap<SpanSet>>)> = self.tables.entries();
        tables.sort_unstable_by_key(|(key, _)| *key);
        for (_, cell) in tables {
            f(&cell.load());
        }
    }

    /// Alive records of one table and mode whose spans overlap `span` (for tests and checks).
    pub fn overlapping(&self, mode: Mode, span: &TableSpan) -> Vec<Arc<DispatcherRecord>> {
        self.tables
            .get(&(mode, span.keyspace_id, span.table_id))
            .map(|cell| {
                cell.load()
                    .iter()
                    .filter(|r| r.state().is_alive() && r.span.overlaps(span))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn floor_index(mode: Mode) -> usize {
    match mode {
        Mode::Default => 0,
        Mode::Redo => 1,
    }
}

/// The order of a block event's stages at one dispatcher (None, the wire's unset stage, first:
/// it never replaces a stage that was reported).
fn stage_rank(stage: BlockStage) -> u8 {
    match stage {
        BlockStage::None => 0,
        BlockStage::Waiting => 1,
        BlockStage::Writing => 2,
        BlockStage::Done => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_word_round_trips_every_state() {
        for phase in [RecordPhase::Creating, RecordPhase::Live, RecordPhase::Closed, RecordPhase::Cancelled] {
            for component in ComponentState::ALL {
                for removing in [false, true] {
                    for drained in [false, true] {
                        let s = RecordState { phase, component, removing, drained };
                        assert_eq!(RecordState::unpack(s.pack()), s);
                    }
                }
            }
        }
    }

    #[test]
    fn commit_and_cancel_are_exclusive() {
        let s = RecordState::CREATING;
        let live = transition::commit(s).unwrap();
        assert_eq!(transition::cancel(live), Err(Refused::RecordPhase(RecordPhase::Live)));
        let cancelled = transition::cancel(s).unwrap();
        assert_eq!(transition::commit(cancelled), Err(Refused::RecordPhase(RecordPhase::Cancelled)));
    }

    #[test]
    fn removal_is_requested_once() {
        let live = transition::commit(RecordState::CREATING).unwrap();
        let removing = transition::request_removal(live).unwrap();
        assert!(removing.removing);
        assert_eq!(transition::request_removal(removing), Ok(removing), "idempotent, still an RMW");
        let closed = transition::close(removing).unwrap();
        assert_eq!(transition::request_removal(closed), Err(Refused::RecordPhase(RecordPhase::Closed)));
    }
}
