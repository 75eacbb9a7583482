//! What one dispatcher does at a block event (a DDL or a syncpoint), as a sans-IO state machine
//! that an embedder's dispatcher drives (barrier.md §4): flush, report WAITING, wait for the
//! maintainer's action, write or pass, report DONE; the table trigger's count of reports awaiting
//! an ACK and its one-slot hold of DB/All events; resends; the checkpoint caps.
//!
//! The embedder tells it what happened ([`DispatcherBarrier::meet`], [`DispatcherBarrier::flushed`],
//! [`DispatcherBarrier::answer`], [`DispatcherBarrier::done`], [`DispatcherBarrier::tick`]) and does
//! the [`Step`]s it returns, in order: flush its DML below the event, write the event downstream,
//! pass it (advance progress without writing), report a block status to the node
//! ([`crate::node::DispatcherManager::report_block_status`]).
//!
//! Better than the reference in three places:
//! * an action matches the pending event on the full key, commit ts *and* syncpoint flag (hazard
//!   H-1: the reference compares the ts only, so a syncpoint's Write could execute a DDL at the
//!   same ts);
//! * the trigger's count only ever counts reports that are still unacknowledged (one per key), so
//!   a duplicate ACK cannot drive it negative (B19);
//! * an action for the pending event while it is still flushing or already being written is
//!   ignored, not answered DONE: a resent Write arriving mid-write must not announce a write that
//!   is not durable yet (B2).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::ids::Ts;
use crate::messages::{BarrierAnswer, BarrierEvent, BlockDetail, BlockStage, BlockState};

/// How long an unacknowledged report waits before it is offered again (the reference's 5 s).
pub const RESEND_MS: u64 = 5_000;

/// A block event a dispatcher met in its stream.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BlockEvent {
    /// Commit ts.
    pub commit_ts: Ts,
    /// A syncpoint (else a DDL).
    pub is_sync_point: bool,
    /// Coordinated by the maintainer (several tables, a split table, a schema, everything, or a
    /// syncpoint); a non-blocking DDL is written locally.
    pub blocking: bool,
    /// Its scope is a schema or everything (DB/All): the trigger holds it while reports await an
    /// ACK.
    pub wide: bool,
    /// A DDL the downstream need not execute (`NotSync`): passed instead of written.
    pub not_sync: bool,
    /// Tables it blocks, drops, adds, moves (forwarded in the status; a non-blocking DDL with
    /// table-set changes is reported by the trigger as `NONE`).
    pub detail: Arc<BlockDetail>,
}

impl BlockEvent {
    fn key(&self) -> Key {
        (self.commit_ts, self.is_sync_point)
    }

    /// Whether a non-blocking event changes the table set (the trigger reports it, stage NONE).
    fn schedules(&self) -> bool {
        !self.detail.need_added_tables.is_empty() || self.detail.need_dropped_tables.is_some()
    }
}

/// An event's full key: (commit ts, syncpoint). At one ts the DDL (false) comes first.
type Key = (Ts, bool);

/// What the embedder must do next, in order.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Step {
    /// Make every change below the event durable, then call [`DispatcherBarrier::flushed`].
    Flush,
    /// Write the event downstream, then call [`DispatcherBarrier::done`]. (Always preceded by
    /// the WRITING `Report`, which the node keeps for its bootstrap snapshot.)
    Write,
    /// Pass the event (progress only, nothing written), then call [`DispatcherBarrier::done`].
    Pass,
    /// Offer this block status to the node.
    Report(BlockState),
}

/// Where the dispatcher's pending blocking event is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    /// Flushing before its WAITING report.
    Flushing,
    /// Reported, waiting for the maintainer's action.
    Waiting,
    /// Writing (or passing) it.
    Writing,
}

/// An unacknowledged report, offered again every [`RESEND_MS`].
#[derive(Clone, Debug)]
struct Resend {
    state: BlockState,
    due_ms: u64,
}

/// Something the state machine refuses: an embedder calling it out of order.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum Misuse {
    /// A second block event while one is pending (the stream pauses at a block event).
    #[error("a block event at {0:?} met while {1:?} is pending")]
    Overlap(Key, Key),
    /// `flushed` or `done` without the matching step in progress.
    #[error("{0} with nothing in progress")]
    Unexpected(&'static str),
}

/// One dispatcher's barrier state (barrier.md §4.1).
#[derive(Clone, Debug)]
pub struct DispatcherBarrier {
    trigger: bool,
    pending: Option<(BlockEvent, Stage)>,
    /// A non-blocking event being flushed (false) or written locally (true).
    local: Option<(BlockEvent, bool)>,
    resends: BTreeMap<Key, Resend>,
    /// The trigger's one held DB/All event.
    held: Option<BlockEvent>,
    /// The trigger's pending add-table events: its checkpoint stays below the smallest.
    adding: BTreeMap<Key, ()>,
}

impl DispatcherBarrier {
    /// The state of a table dispatcher (`trigger = false`) or of the table trigger.
    pub fn new(trigger: bool) -> Self {
        Self {
            trigger,
            pending: None,
            local: None,
            resends: BTreeMap::new(),
            held: None,
            adding: BTreeMap::new(),
        }
    }

    /// Reports awaiting an ACK (the trigger's `pendingACKCount`; every dispatcher keeps them).
    pub fn unacknowledged(&self) -> usize {
        self.resends.len()
    }

    /// Whether the trigger holds a DB/All event until its reports are acknowledged.
    pub fn holding(&self) -> bool {
        self.held.is_some()
    }

    /// The dispatcher met `event` in its stream (which pauses until the event is done).
    pub fn meet(&mut self, event: BlockEvent) -> Result<Vec<Step>, Misuse> {
        // The stream pauses at a block event until it is done (or, held, released and done).
        let in_flight = self
            .pending
            .as_ref()
            .map(|(e, _)| e)
            .or(self.held.as_ref())
            .or(self.local.as_ref().map(|(e, _)| e));
        if let Some(other) = in_flight {
            return Err(Misuse::Overlap(event.key(), other.key()));
        }
        if !event.blocking {
            // Flushed, then written locally. The trigger caps its checkpoint before any of it
            // when the event adds tables (B10), until the maintainer acknowledges the report
            // that follows.
            if self.trigger && event.schedules() && !event.detail.need_added_tables.is_empty() {
                self.adding.insert(event.key(), ());
            }
            self.local = Some((event, false));
            return Ok(vec![Step::Flush]);
        }
        if self.trigger && event.wide && !self.resends.is_empty() {
            self.held = Some(event);
            return Ok(Vec::new());
        }
        self.pending = Some((event, Stage::Flushing));
        Ok(vec![Step::Flush])
    }

    /// The flush asked for by [`Step::Flush`] is durable: report WAITING (B4), or write a
    /// non-blocking event locally (pass it if the downstream need not execute it).
    pub fn flushed(&mut self, now_ms: u64) -> Result<Vec<Step>, Misuse> {
        if let Some((event, writing @ false)) = self.local.as_mut() {
            *writing = true;
            return Ok(vec![if event.not_sync { Step::Pass } else { Step::Write }]);
        }
        let Some((event, stage @ Stage::Flushing)) = self.pending.as_mut() else {
            return Err(Misuse::Unexpected("flushed"));
        };
        *stage = Stage::Waiting;
        let state = status(event, BlockStage::Waiting, true);
        self.resends.insert(event.key(), Resend { state: state.clone(), due_ms: now_ms + RESEND_MS });
        Ok(vec![Step::Report(state)])
    }

    /// A barrier answer the node delivered to this dispatcher (`DeliverBarrier`), applied ACK,
    /// then ignored, then action (barrier.md §2). `resolved_ts`: how far the dispatcher's stream
    /// has read, to tell a future event's action from a lost DONE.
    pub fn answer(&mut self, answer: &BarrierAnswer, resolved_ts: Ts, now_ms: u64) -> Vec<Step> {
        let mut steps = Vec::new();
        if let Some(ack) = answer.ack {
            steps.extend(self.acknowledged(key_of(ack)));
        }
        if let Some(ignored) = answer.ignored {
            if let (Some((event, Stage::Waiting)), Some(resend)) =
                (self.pending.as_ref(), self.resends.get_mut(&key_of(ignored)))
            {
                if event.key() == key_of(ignored) {
                    // Not admitted yet: offer it again now, not in five seconds.
                    resend.due_ms = now_ms + RESEND_MS;
                    steps.push(Step::Report(resend.state.clone()));
                }
            }
        }
        if let Some(action) = answer.action {
            steps.extend(self.act(key_of(action.event), action.pass, resolved_ts));
        }
        steps
    }

    fn acknowledged(&mut self, key: Key) -> Vec<Step> {
        // The add-table cap lifts with its ACK, even after removal stopped the resends.
        self.adding.remove(&key);
        // One count per key: a duplicate ACK finds nothing to cancel (B19).
        if self.resends.remove(&key).is_none() {
            return Vec::new();
        }
        if self.resends.is_empty() {
            if let Some(held) = self.held.take() {
                // Released: flush, then report (barrier.md §4.3).
                self.pending = Some((held, Stage::Flushing));
                return vec![Step::Flush];
            }
        }
        Vec::new()
    }

    /// A Write or Pass for `key` (B6: only the pending event, in WAITING, on its full key).
    fn act(&mut self, key: Key, pass: bool, resolved_ts: Ts) -> Vec<Step> {
        match self.pending.as_mut() {
            Some((event, stage @ Stage::Waiting)) if event.key() == key => {
                *stage = Stage::Writing;
                if pass {
                    return vec![Step::Pass];
                }
                // WRITING is noted for the next bootstrap snapshot before the write starts: a new
                // maintainer must know this write may land (it never reads it as a status).
                vec![Step::Report(status(event, BlockStage::Writing, true)), Step::Write]
            }
            // The held event: met, not reported; its action can only be a stray.
            None if self.held.as_ref().is_some_and(|h| h.key() == key) => Vec::new(),
            // A future event: not met yet, or later than the one pending.
            None if key.0 > resolved_ts => Vec::new(),
            Some((event, _)) if event.key() < key => Vec::new(),
            // The pending event itself, not waiting: still flushing (its report follows) or being
            // written (its DONE follows). The reference answers DONE here, which a resent Write
            // arriving mid-write would turn into a DONE before the write is durable (B2).
            Some((event, _)) if event.key() == key => Vec::new(),
            // Passed already, older than the pending one, or the pending one is not waiting for
            // it: answer DONE without doing anything, which regenerates a lost DONE.
            _ => vec![Step::Report(done(key))],
        }
    }

    /// The write or pass asked for is durable: report DONE and resume the stream (a non-blocking
    /// event the trigger schedules is reported NONE and resent until acknowledged).
    pub fn done(&mut self, now_ms: u64) -> Result<Vec<Step>, Misuse> {
        match self.local.take() {
            Some((event, true)) => {
                if !(self.trigger && event.schedules()) {
                    return Ok(Vec::new());
                }
                let state = status(&event, BlockStage::None, false);
                self.resends.insert(event.key(), Resend { state: state.clone(), due_ms: now_ms + RESEND_MS });
                return Ok(vec![Step::Report(state)]);
            }
            // Still flushing: nothing was written yet.
            flushing @ Some(_) => {
                self.local = flushing;
                return Err(Misuse::Unexpected("done"));
            }
            None => {}
        }
        match self.pending.take() {
            Some((event, Stage::Writing)) => {
                // Its WAITING is moot once it is done: were it still unacknowledged (the ACK
                // lost, the maintainer moved), resending it would report an event passed long
                // ago as the one waited on.
                self.resends.remove(&event.key());
                Ok(vec![Step::Report(done(event.key()))])
            }
            other => {
                self.pending = other;
                Err(Misuse::Unexpected("done"))
            }
        }
    }

    /// Reports whose resend time came, offered again (B15).
    pub fn tick(&mut self, now_ms: u64) -> Vec<Step> {
        let mut steps = Vec::new();
        for resend in self.resends.values_mut() {
            if resend.due_ms <= now_ms {
                resend.due_ms = now_ms + RESEND_MS;
                steps.push(Step::Report(resend.state.clone()));
            }
        }
        steps
    }

    /// The checkpoint the dispatcher may report, from its sink's `checkpoint`: below a pending
    /// blocking event (B11), and for the trigger below a table it adds until the maintainer
    /// acknowledged it (B10).
    pub fn checkpoint(&self, checkpoint: Ts) -> Ts {
        let mut cap = checkpoint;
        for event in self.pending.as_ref().map(|(e, _)| e).into_iter().chain(self.held.as_ref()) {
            cap = cap.min(event.commit_ts.saturating_sub(1));
        }
        if let Some((ts, _)) = self.adding.keys().next() {
            cap = cap.min(ts.saturating_sub(1));
        }
        cap
    }

    /// The pending blocking event's state for a bootstrap snapshot: WAITING or WRITING, never a
    /// non-blocking one (barrier.md §4.4).
    pub fn block_state(&self) -> Option<BlockState> {
        match &self.pending {
            Some((event, Stage::Waiting)) => Some(status(event, BlockStage::Waiting, true)),
            Some((event, Stage::Writing)) => Some(status(event, BlockStage::Writing, true)),
            _ => None,
        }
    }

    /// The dispatcher is being removed: nothing is resent any more, nothing held. A trigger's
    /// add-table cap stays until its ACK arrives (see [`DispatcherBarrier::may_close`]).
    pub fn removed(&mut self) {
        self.resends.clear();
        self.held = None;
    }

    /// Whether the dispatcher may close with a final checkpoint: not while the trigger's report
    /// of a table it adds awaits its ACK (its checkpoint must stay below that table's start
    /// until the maintainer holds the changefeed's; barrier.md §4.3), unless its sink failed.
    pub fn may_close(&self) -> bool {
        self.adding.is_empty()
    }
}

fn key_of(event: BarrierEvent) -> Key {
    (event.commit_ts, event.is_sync_point)
}

fn status(event: &BlockEvent, stage: BlockStage, blocked: bool) -> BlockState {
    BlockState {
        is_blocked: blocked,
        block_ts: event.commit_ts,
        is_sync_point: event.is_sync_point,
        stage,
        detail: event.detail.clone(),
    }
}

/// A DONE carries the key only (barrier.md §2).
fn done(key: Key) -> BlockState {
    BlockState {
        is_blocked: true,
        block_ts: key.0,
        is_sync_point: key.1,
        stage: BlockStage::Done,
        detail: Arc::default(),
    }
}
