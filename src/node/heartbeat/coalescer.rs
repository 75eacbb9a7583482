//! The manager's side of status coalescing: a bounded queue of dirty slots, the overflow fallback,
//! statuses of dispatchers that have no slot, and the running error.
//!
//! Protocol (see `slot` for the word): an update marks its slot with one RMW; the one producer that
//! found the slot unqueued pushes it. A full queue hands the slot back: a live slot gives up its
//! ticket (`unqueue`) and stays dirty, and the overflow flag makes the collector's next round sweep
//! the registry for dirty, unqueued slots. A sealed (Stopped) slot is about to leave the registry,
//! where no sweep could find it, so it goes to the *spill* map instead, keyed by incarnation: a
//! terminal state is never lost.

use std::sync::Arc;

use crate::ids::Ts;
use crate::messages::{ComponentState, DispatcherStatus, RunningError};
use crate::sync::{AtomicBool, AtomicU64, Map, Ordering, Queue, Swap};

use super::slot::Marked;
use super::HeartbeatConfig;
use crate::node::registry::DispatcherRecord;

/// What an update did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[must_use]
pub enum Update {
    /// Nothing to report: same state, or the slot is sealed.
    Unchanged,
    /// Merged into a report already queued.
    Coalesced,
    /// The slot was queued by this update.
    Enqueued,
    /// The queue was full: the slot stays dirty for the next sweep (or spilled, if sealed).
    Overflowed,
}

/// A dispatcher's handle on its status slot, for the embedder's hot path.
#[derive(Clone, Debug)]
pub struct StatusHandle(pub(crate) Arc<DispatcherRecord>);

impl StatusHandle {
    /// A handle on a record's slot.
    pub fn new(record: Arc<DispatcherRecord>) -> Self {
        Self(record)
    }

    /// The record.
    pub fn record(&self) -> &Arc<DispatcherRecord> {
        &self.0
    }
}

/// The queue of dirty slots and its fallbacks (one per manager).
pub struct Coalescer {
    queue: Queue<Arc<DispatcherRecord>>,
    spill: Map<u64, Arc<DispatcherRecord>>,
    overflowed: AtomicBool,
    changed: AtomicBool,
    synthetic: Queue<DispatcherStatus>,
    synthetic_dropped: AtomicU64,
    error: Swap<Option<RunningError>>,
}

impl Coalescer {
    /// A coalescer with the capacities of `config`.
    pub fn new(config: &HeartbeatConfig) -> Self {
        Self {
            queue: Queue::new(config.queue_capacity),
            spill: Map::new(),
            overflowed: AtomicBool::new(false),
            changed: AtomicBool::new(false),
            synthetic: Queue::new(config.synthetic_capacity),
            synthetic_dropped: AtomicU64::new(0),
            error: Swap::new(Arc::new(None)),
        }
    }

    /// New progress of a dispatcher (the hot path): a few atomic operations, never blocks.
    pub fn progress(&self, handle: &StatusHandle, checkpoint_ts: Ts, resolved_ts: Ts, rate: f32) -> Update {
        let marked = handle.0.status.progress(checkpoint_ts, resolved_ts, rate);
        self.enqueue(&handle.0, marked)
    }

    /// A state change of a dispatcher; `Stopped` seals its slot with its current checkpoint.
    pub fn change_state(&self, record: &Arc<DispatcherRecord>, to: ComponentState) -> Update {
        let Some(marked) = record.status.change_state(to) else { return Update::Unchanged };
        // Release RMW: pairs with the Acquire swap in `take_changed`. A swap, not a store: the
        // flag's writes then form one RMW chain with the collector's swaps (and loom 0.7 loses a
        // plain store racing an RMW in its model, which its own coherence rules forbid).
        self.changed.swap(true, Ordering::Release);
        self.enqueue(record, marked)
    }

    fn enqueue(&self, record: &Arc<DispatcherRecord>, marked: Marked) -> Update {
        if marked == Marked::Coalesced {
            return Update::Coalesced;
        }
        let Err(record) = self.queue.push(record.clone()) else { return Update::Enqueued };
        if record.status.is_sealed() {
            // Keeps its QUEUED ticket: the spill holds it exactly like the queue would.
            self.spill.compute(record.incarnation, |_| crate::sync::Op::<_, ()>::Insert(record.clone()));
        } else {
            record.status.unqueue();
        }
        // Release RMW after the unqueue: the collector's Acquire swap that reads it sees the slot
        // unqueued (a swap rather than a store, see `change_state`).
        self.overflowed.swap(true, Ordering::Release);
        Update::Overflowed
    }

    /// Reports a status for a dispatcher that has no slot (Stopped for an unknown or already
    /// closed dispatcher, a merged dispatcher's Working re-emit). Not coalesced. A full queue drops
    /// it (counted): every such status answers a maintainer request that the maintainer resends.
    pub fn report_synthetic(&self, status: DispatcherStatus) -> bool {
        // Release RMW: pairs with `take_changed`.
        self.changed.swap(true, Ordering::Release);
        if self.synthetic.push(status).is_ok() {
            return true;
        }
        // Relaxed: a counter.
        self.synthetic_dropped.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Synthetic statuses dropped because their queue was full.
    pub fn synthetic_dropped(&self) -> u64 {
        self.synthetic_dropped.load(Ordering::Relaxed)
    }

    /// Records the manager's running error; only the first one (since the last clear) is kept.
    pub fn report_error(&self, error: RunningError) -> bool {
        let current = self.error.load();
        current.is_none() && self.error.compare_and_swap(&current, Arc::new(Some(error))).is_ok()
    }

    /// Clears the running error (the collector stops resending it).
    pub fn clear_error(&self) -> bool {
        let current = self.error.load();
        current.is_some() && self.error.compare_and_swap(&current, Arc::new(None)).is_ok()
    }

    /// The running error, if any (pointer identity tells one report from the next).
    pub fn error(&self) -> Arc<Option<RunningError>> {
        self.error.load()
    }

    // ---- collector side ----

    /// Next queued slot.
    pub fn pop(&self) -> Option<Arc<DispatcherRecord>> {
        self.queue.pop()
    }

    /// Number of queued slots (approximate).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Queue capacity.
    pub fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    /// Next synthetic status.
    pub fn pop_synthetic(&self) -> Option<DispatcherStatus> {
        self.synthetic.pop()
    }

    /// Whether a state change arrived since the last call.
    pub fn take_changed(&self) -> bool {
        // Acquire: pairs with the producers' Release stores.
        self.changed.swap(false, Ordering::Acquire)
    }

    /// Whether a push failed since the last call (a sweep is due).
    pub fn take_overflowed(&self) -> bool {
        // Acquire: pairs with the Release store after `unqueue`/spill in `enqueue`.
        self.overflowed.swap(false, Ordering::Acquire)
    }

    /// Sealed slots that did not fit in the queue.
    pub fn drain_spill(&self) -> Vec<Arc<DispatcherRecord>> {
        let spilled = self.spill.values();
        for record in &spilled {
            self.spill.remove_if(&record.incarnation, |r| Arc::ptr_eq(r, record));
        }
        spilled
    }
}
