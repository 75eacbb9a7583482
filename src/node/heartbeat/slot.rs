//! The per-dispatcher status slot: the latest progress plus a packed word of report flags and the
//! state transitions not yet reported.
//!
//! Producers (the dispatcher's event path, the manager's callbacks) write the slot; the one
//! collector of the manager takes it. An update overwrites the latest values (checkpoint and
//! resolved ts by `fetch_max`, so they never go backwards) and sets `DIRTY | QUEUED` in the word
//! with one `fetch_or`; only the producer that found `QUEUED` clear enqueues the slot, so a slot is
//! in the queue at most once. A state change appends to a small list in the word (never coalesced
//! away up to [`PENDING_MAX`] per round; beyond that the intermediate ones collapse into the last).
//! `Stopped` *seals* the slot: its final checkpoint is fixed at that moment, later updates are
//! ignored, and the collector reports it exactly once (`FINAL_SENT`).
//!
//! The word's transitions are pure functions ([`word`]) tested exhaustively; [`StatusSlot`] applies
//! them with one atomic RMW or one CAS loop each.

use crate::ids::Ts;
use crate::messages::ComponentState;
use crate::sync::{AtomicU64, Ordering};

/// How many state transitions a slot keeps between two takes before collapsing the middle ones.
pub const PENDING_MAX: usize = 6;

/// Pure functions over the packed slot word.
///
/// Layout: bits 0–2 latest state; bit 3 `DIRTY` (unreported change); bit 4 `QUEUED` (the slot is
/// in the queue, or its producer is pushing it); bit 5 `SEALED` (Stopped, terminal); bit 6
/// `FINAL_SENT` (the Stopped was taken); bits 8–10 number of pending transitions; bits 11–28 the
/// pending states, 3 bits each, oldest first.
pub mod word {
    use super::{ComponentState, Pending, PENDING_MAX};

    const STATE_MASK: u64 = 0b111;
    /// Unreported change.
    pub const DIRTY: u64 = 1 << 3;
    /// In the queue (at most once).
    pub const QUEUED: u64 = 1 << 4;
    /// Stopped: terminal.
    pub const SEALED: u64 = 1 << 5;
    /// The Stopped report was taken.
    pub const FINAL_SENT: u64 = 1 << 6;
    const COUNT_SHIFT: u32 = 8;
    const COUNT_MASK: u64 = 0b111 << COUNT_SHIFT;
    const PENDING_SHIFT: u32 = 11;
    const PENDING_MASK: u64 = ((1 << (3 * PENDING_MAX)) - 1) << PENDING_SHIFT;

    fn code(s: ComponentState) -> u64 {
        u64::try_from(s.as_i32()).unwrap_or(0)
    }

    pub(super) fn state(c: u64) -> ComponentState {
        ComponentState::from_i32((c & STATE_MASK) as i32).unwrap_or(ComponentState::Working)
    }

    /// A fresh word: clean, latest state `s`, nothing pending.
    pub fn new(s: ComponentState) -> u64 {
        code(s)
    }

    /// The pending transitions, oldest first.
    pub fn pending(w: u64) -> Pending {
        let n = ((w & COUNT_MASK) >> COUNT_SHIFT) as usize;
        let mut p = Pending { states: [ComponentState::Working; PENDING_MAX], len: n.min(PENDING_MAX) };
        for (i, slot) in p.states.iter_mut().enumerate().take(p.len) {
            *slot = state(w >> (PENDING_SHIFT + 3 * i as u32));
        }
        p
    }

    /// Outcome of [`change`].
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    #[must_use]
    pub enum Change {
        /// The transition was recorded; the new word.
        Recorded(u64),
        /// The slot already is in that state: nothing to record.
        Same,
        /// The slot is sealed (Stopped): nothing changes any more.
        Sealed,
    }

    /// Record a transition to `to`: latest state, appended to the pending list (the last entry is
    /// overwritten when the list is full), `DIRTY | QUEUED` set; `Stopped` seals.
    pub fn change(w: u64, to: ComponentState) -> Change {
        if w & SEALED != 0 {
            return Change::Sealed;
        }
        if state(w) == to {
            return Change::Same;
        }
        let n = ((w & COUNT_MASK) >> COUNT_SHIFT) as usize;
        let at = n.min(PENDING_MAX - 1);
        let shift = PENDING_SHIFT + 3 * at as u32;
        let mut next = (w & !STATE_MASK & !(STATE_MASK << shift)) | code(to) | (code(to) << shift);
        next = (next & !COUNT_MASK) | (((at + 1) as u64) << COUNT_SHIFT);
        next |= DIRTY | QUEUED;
        if to == ComponentState::Stopped {
            next |= SEALED;
        }
        Change::Recorded(next)
    }

    /// What a take found.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub enum Taken {
        /// Nothing to report (clean, or a Stopped already reported).
        Clean,
        /// Report these transitions (possibly none: a progress-only change) with the latest state.
        Report {
            /// Pending transitions, oldest first.
            pending: Pending,
            /// Latest state.
            latest: ComponentState,
            /// Sealed: the report carries the final checkpoint.
            sealed: bool,
        },
    }

    /// Take the slot's report: clears `DIRTY` and the pending list, and `QUEUED` when taken off the
    /// queue (`from_queue`); a sealed slot is reported once, then `FINAL_SENT` suppresses it.
    pub fn take(w: u64, from_queue: bool) -> (u64, Taken) {
        let mut next = w & !DIRTY & !COUNT_MASK & !PENDING_MASK;
        if from_queue {
            next &= !QUEUED;
        }
        if w & DIRTY == 0 || w & FINAL_SENT != 0 {
            return (next, Taken::Clean);
        }
        let sealed = w & SEALED != 0;
        if sealed {
            next |= FINAL_SENT;
        }
        (next, Taken::Report { pending: pending(w), latest: state(w), sealed })
    }
}

/// Up to [`PENDING_MAX`] state transitions, oldest first.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Pending {
    states: [ComponentState; PENDING_MAX],
    len: usize,
}

impl Pending {
    /// The transitions.
    pub fn as_slice(&self) -> &[ComponentState] {
        &self.states[..self.len]
    }
}

/// What an update did, for its caller.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[must_use]
pub enum Marked {
    /// The slot was already queued (or sealed): the update is coalesced.
    Coalesced,
    /// This update found the slot unqueued: the caller must enqueue it (exactly one caller does).
    Enqueue,
}

/// One report taken off a slot.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Report {
    /// Transitions since the last take, oldest first (empty for a progress-only change).
    pub pending: Pending,
    /// Latest state.
    pub latest: ComponentState,
    /// Checkpoint to report: the final one when sealed.
    pub checkpoint_ts: Ts,
    /// Latest resolved ts.
    pub resolved_ts: Ts,
    /// Latest event rate.
    pub event_size_per_second: f32,
    /// The slot is sealed (this is its one Stopped report).
    pub sealed: bool,
}

/// The latest-value slot of one dispatcher (see the module docs).
#[derive(Debug)]
pub struct StatusSlot {
    word: AtomicU64,
    checkpoint_ts: AtomicU64,
    resolved_ts: AtomicU64,
    final_checkpoint_ts: AtomicU64,
    rate_bits: AtomicU64,
}

impl StatusSlot {
    /// A clean slot at `start_ts` in state `state`.
    pub fn new(start_ts: Ts, state: ComponentState) -> Self {
        Self {
            word: AtomicU64::new(word::new(state)),
            checkpoint_ts: AtomicU64::new(start_ts),
            resolved_ts: AtomicU64::new(start_ts),
            final_checkpoint_ts: AtomicU64::new(0),
            rate_bits: AtomicU64::new(0),
        }
    }

    fn marked(prev: u64) -> Marked {
        if prev & word::QUEUED == 0 {
            Marked::Enqueue
        } else {
            Marked::Coalesced
        }
    }

    /// The hot path: new progress. Two `fetch_max`, one store, one `fetch_or`; never blocks.
    pub fn progress(&self, checkpoint_ts: Ts, resolved_ts: Ts, event_size_per_second: f32) -> Marked {
        // Relaxed: a hint only; a seal racing past it is handled by the take (FINAL_SENT).
        if self.word.load(Ordering::Relaxed) & word::SEALED != 0 {
            return Marked::Coalesced;
        }
        // Relaxed: these values are published by the Release `fetch_or` below.
        self.checkpoint_ts.fetch_max(checkpoint_ts, Ordering::Relaxed);
        self.resolved_ts.fetch_max(resolved_ts, Ordering::Relaxed);
        self.rate_bits.store(u64::from(event_size_per_second.to_bits()), Ordering::Relaxed);
        // Release: pairs with the Acquire CAS of `take`, which then reads these values or newer.
        // If this RMW follows the take in the word's order it finds DIRTY clear and marks again.
        Self::marked(self.word.fetch_or(word::DIRTY | word::QUEUED, Ordering::Release))
    }

    /// Raises the checkpoint without marking the slot (a value recorded before a transition that
    /// marks it, such as the final checkpoint of a close).
    pub fn raise_checkpoint(&self, checkpoint_ts: Ts) {
        // Relaxed: published by the transition that follows (record word CAS, then `stop`).
        self.checkpoint_ts.fetch_max(checkpoint_ts, Ordering::Relaxed);
    }

    /// Restarts a slot that was never reported with progress (a merged dispatcher at hand-over):
    /// the one place a checkpoint is set lower. Not for live, reporting dispatchers.
    pub fn restart(&self, start_ts: Ts) {
        // Release: published with the Initializing transition that follows.
        self.checkpoint_ts.store(start_ts, Ordering::Release);
        self.resolved_ts.store(start_ts, Ordering::Release);
    }

    /// A state change. `None` if the slot is already in that state or sealed.
    pub fn change_state(&self, to: ComponentState) -> Option<Marked> {
        if to == ComponentState::Stopped {
            return self.stop();
        }
        self.apply_change(to)
    }

    /// Seals the slot as Stopped with its current checkpoint as the final one. `None` if it was
    /// already sealed.
    pub fn stop(&self) -> Option<Marked> {
        if self.is_sealed() {
            return None;
        }
        // AcqRel RMW (`fetch_max(0)` reads the latest value in the modification order): every
        // progress update ordered before it is included; later ones are not.
        let final_ts = self.checkpoint_ts.fetch_max(0, Ordering::AcqRel);
        // Relaxed: published by the Release CAS that seals.
        self.final_checkpoint_ts.store(final_ts, Ordering::Relaxed);
        self.apply_change(ComponentState::Stopped)
    }

    fn apply_change(&self, to: ComponentState) -> Option<Marked> {
        let mut current = self.word.load(Ordering::Relaxed);
        loop {
            let word::Change::Recorded(next) = word::change(current, to) else { return None };
            // Release: publishes the values written before (final checkpoint); pairs with `take`.
            match self.word.compare_exchange_weak(current, next, Ordering::Release, Ordering::Relaxed) {
                Ok(prev) => return Some(Self::marked(prev)),
                Err(found) => current = found,
            }
        }
    }

    /// Gives up a queue ticket whose push failed: the slot stays dirty for the sweep.
    pub(crate) fn unqueue(&self) {
        // Release: the sweep that sees QUEUED clear (Acquire) also sees DIRTY.
        self.word.fetch_and(!word::QUEUED, Ordering::Release);
    }

    /// Takes the slot's report (collector only). `from_queue`: the slot was popped off the queue
    /// (clears `QUEUED`); otherwise it was found by a sweep.
    pub fn take(&self, from_queue: bool) -> Option<Report> {
        let mut current = self.word.load(Ordering::Acquire);
        let taken = loop {
            let (next, taken) = word::take(current, from_queue);
            if next == current {
                break taken;
            }
            // Acquire: pairs with the producers' Release RMWs; the values read below are at least
            // those written before the RMW this CAS follows.
            match self.word.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break taken,
                Err(found) => current = found,
            }
        };
        let word::Taken::Report { pending, latest, sealed } = taken else { return None };
        Some(Report {
            pending,
            latest,
            checkpoint_ts: if sealed {
                self.final_checkpoint_ts.load(Ordering::Relaxed)
            } else {
                self.checkpoint_ts.load(Ordering::Relaxed)
            },
            resolved_ts: self.resolved_ts.load(Ordering::Relaxed),
            event_size_per_second: f32::from_bits(self.rate_bits.load(Ordering::Relaxed) as u32),
            sealed,
        })
    }

    /// Whether the slot is dirty and not in the queue (what a sweep takes).
    pub fn needs_sweep(&self) -> bool {
        let w = self.word.load(Ordering::Acquire);
        w & word::DIRTY != 0 && w & word::QUEUED == 0
    }

    /// Whether the slot is sealed (Stopped).
    pub fn is_sealed(&self) -> bool {
        self.word.load(Ordering::Acquire) & word::SEALED != 0
    }

    /// The checkpoint: the final one once sealed.
    pub fn checkpoint_ts(&self) -> Ts {
        if self.is_sealed() {
            self.final_checkpoint_ts.load(Ordering::Acquire)
        } else {
            self.checkpoint_ts.load(Ordering::Acquire)
        }
    }

    /// The latest resolved ts.
    pub fn resolved_ts(&self) -> Ts {
        self.resolved_ts.load(Ordering::Acquire)
    }

    /// The latest event rate.
    pub fn event_size_per_second(&self) -> f32 {
        f32::from_bits(self.rate_bits.load(Ordering::Relaxed) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::word::*;
    use super::*;
    use ComponentState::*;

    #[test]
    fn transitions_append_in_order_and_collapse_the_tail_when_full() {
        let mut w = new(Initializing);
        let seq = [Working, WaitingMerge, Working, MergeReady, Working, WaitingMerge, Working];
        for s in seq {
            match change(w, s) {
                Change::Recorded(n) => w = n,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(state(w), Working);
        let p = pending(w);
        assert_eq!(p.as_slice().len(), PENDING_MAX);
        assert_eq!(p.as_slice()[..5], seq[..5], "the oldest transitions are kept in order");
        assert_eq!(p.as_slice()[5], Working, "the last entry holds the latest state");
        assert_ne!(w & DIRTY, 0);
        assert_ne!(w & QUEUED, 0);
    }

    #[test]
    fn same_state_is_no_change_and_stopped_seals() {
        let w = new(Working);
        assert_eq!(change(w, Working), Change::Same);
        let Change::Recorded(s) = change(w, Stopped) else { panic!() };
        assert_ne!(s & SEALED, 0);
        for to in ComponentState::ALL {
            assert_eq!(change(s, to), Change::Sealed, "nothing follows Stopped ({to:?})");
        }
    }

    #[test]
    fn take_clears_and_reports_a_sealed_slot_once() {
        let Change::Recorded(w) = change(new(Working), Stopped) else { panic!() };
        let (w1, t) = take(w, true);
        assert!(matches!(t, Taken::Report { sealed: true, latest: Stopped, .. }));
        assert_eq!(w1 & (DIRTY | QUEUED), 0);
        assert_ne!(w1 & FINAL_SENT, 0);
        let (_, again) = take(w1 | DIRTY | QUEUED, true);
        assert_eq!(again, Taken::Clean, "a sealed slot reports Stopped exactly once");
    }

    #[test]
    fn a_sweep_take_keeps_the_queue_ticket() {
        let w = new(Working) | DIRTY | QUEUED;
        let (w1, t) = take(w, false);
        assert!(matches!(t, Taken::Report { .. }));
        assert_ne!(w1 & QUEUED, 0);
        assert_eq!(w1 & DIRTY, 0);
        let (w2, t2) = take(w1, true);
        assert_eq!(t2, Taken::Clean);
        assert_eq!(w2 & QUEUED, 0);
    }

    #[test]
    fn slot_progress_is_monotone_and_stop_fixes_the_final_checkpoint() {
        let slot = StatusSlot::new(100, Initializing);
        assert_eq!(slot.progress(150, 160, 1.0), Marked::Enqueue);
        assert_eq!(slot.progress(120, 130, 2.0), Marked::Coalesced);
        assert_eq!(slot.checkpoint_ts(), 150);
        assert_eq!(slot.stop(), Some(Marked::Coalesced));
        assert_eq!(slot.progress(500, 500, 0.0), Marked::Coalesced);
        let r = slot.take(true).unwrap();
        assert!(r.sealed);
        assert_eq!(r.checkpoint_ts, 150);
        assert_eq!(r.pending.as_slice(), &[Stopped]);
        assert_eq!(slot.checkpoint_ts(), 150, "the final checkpoint is what the slot reports");
        assert!(slot.take(true).is_none());
    }
}
