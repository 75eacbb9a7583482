//! The orchestrator's pending message queue: bootstrap, post-bootstrap and close
//! requests wait here between the network receivers that push them and the workers that handle
//! them, at most one per (changefeed, message kind).
//!
//! # Rules
//!
//! * One queued message per [`PendingKey`]. A newer message for a queued key replaces the queued
//!   one when [`PendingMessage::supersedes`] says so (a strictly greater epoch; for a close, also
//!   `removed = true` over `removed = false` at an epoch at least as high); otherwise the newer
//!   one is dropped. A replacement keeps the key's place in the FIFO.
//! * Once popped, a key is free: the next message for it is queued behind every key already
//!   waiting, even if it is older than the one just popped.
//! * Keys leave in the order they entered (FIFO across keys).
//! * At most `capacity` keys wait at once. A push that would need one more key is refused with
//!   [`PushError::Full`], which hands the message back and leaves nothing behind; replacing the
//!   message of a waiting key never needs room and is never refused for capacity. `Full` is
//!   exact except while two pushes race to fill the same free key: both reserve a place before
//!   one of them fills the slot, so for that instant a push may be refused although only the
//!   racing key will end up taking a place. The refused caller keeps its message and may retry.
//! * [`PendingQueue::close`] refuses every later push ([`PushError::Closed`]); `pop` keeps handing
//!   out what was accepted, and [`PendingQueue::is_drained`] tells a worker when nothing accepted
//!   is left, which is the sans-IO form of the reference's "Pop unblocks on close".
//!
//! # Protocol
//!
//! Four parts, none of them a lock:
//!
//! * `slots`, a [`Map`] from key to the latest message. Replacement is decided inside one
//!   `compute`, so it is atomic per key.
//! * `order`, a bounded FIFO [`Queue`] of keys. A key is pushed only by the push whose `compute`
//!   took its slot from empty to full (`Computed::Inserted`), and the slot is removed only by the
//!   pop that took that key off the FIFO. So a key is in the FIFO at most once, every key in the
//!   FIFO has a slot (or is being popped), and every slot is in the FIFO or about to be pushed
//!   there by its inserter. A pop takes the key off the FIFO first and removes the slot second,
//!   so the key is free only once its slot is gone: a push landing in between replaces the slot
//!   and the pop returns that newer message; a push after the removal finds the slot empty and
//!   queues the key again for the next round.
//! * `reserved`, an [`AtomicU64`] counting the FIFO places taken: keys in the FIFO plus pushes
//!   about to fill a free key. A push whose first `compute` finds its key free reserves a place and decides again; only a
//!   reserved push may fill an empty slot, so the FIFO push after an insert always finds room
//!   and an inserted slot is never stranded outside the FIFO. A reserved push that lost the key
//!   to another inserter gives its place back; a pop gives one back as soon as the key is off
//!   the FIFO (before removing the slot, so a pop in progress never makes a push see `Full`).
//! * `gate`, an [`AtomicU64`]: the closed bit and the number of pushes in flight. A push enters
//!   the gate (one RMW) before touching anything and leaves it when done, so "closed, no push in
//!   flight, FIFO empty" is final.
//!
//! # Concurrency contract
//!
//! Any number of threads may push and pop at once. A `push` that returns `Queued` or `Replaced`
//! happens-before the `pop` that returns its message. Every message is accounted for: a `Queued`
//! or `Replaced` one is popped exactly once unless one that supersedes it replaces it while it
//! waits; a `Dropped` one lost to a waiting message that supersedes or equals it; a refused one is
//! handed back. So the newest message of a key is never silently lost. `pop` never blocks; it
//! returns `None` when the FIFO is empty, which may briefly be the case while a push that will
//! succeed is between its insert and its FIFO push.

use std::fmt;
use std::sync::Arc;

use crate::ids::{Epoch, NodeId};
use crate::messages::{BootstrapRequest, CloseRequest, MessageKind, PostBootstrapRequest};
use crate::sync::{AtomicU64, Computed, Map, Op, Ordering, Queue};

/// What the queue holds at most one message for: a changefeed (its 128-bit global id) and a kind.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct PendingKey {
    /// The changefeed's global id ([`crate::ids::ChangefeedId::gid`]).
    pub changefeed: u128,
    /// The message kind (a bootstrap, post-bootstrap or close request).
    pub kind: MessageKind,
}

/// A message waiting for the orchestrator, with the node that sent it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum PendingMessage {
    /// A bootstrap request.
    Bootstrap {
        /// The sending maintainer's node.
        from: NodeId,
        /// The request.
        request: BootstrapRequest,
    },
    /// A post-bootstrap request.
    PostBootstrap {
        /// The sending maintainer's node.
        from: NodeId,
        /// The request.
        request: PostBootstrapRequest,
    },
    /// A close request.
    Close {
        /// The sending maintainer's node.
        from: NodeId,
        /// The request.
        request: CloseRequest,
    },
}

impl PendingMessage {
    /// The message's kind.
    pub fn kind(&self) -> MessageKind {
        match self {
            Self::Bootstrap { .. } => MessageKind::MaintainerBootstrapRequest,
            Self::PostBootstrap { .. } => MessageKind::MaintainerPostBootstrapRequest,
            Self::Close { .. } => MessageKind::MaintainerCloseRequest,
        }
    }

    /// The key the message is queued under: its changefeed and its kind.
    pub fn key(&self) -> PendingKey {
        let changefeed = match self {
            Self::Bootstrap { request, .. } => request.changefeed.gid(),
            Self::PostBootstrap { request, .. } => request.changefeed.gid(),
            Self::Close { request, .. } => request.changefeed.gid(),
        };
        PendingKey { changefeed, kind: self.kind() }
    }

    /// The sender's maintainer epoch.
    pub fn epoch(&self) -> Epoch {
        match self {
            Self::Bootstrap { request, .. } => request.epoch,
            Self::PostBootstrap { request, .. } => request.epoch,
            Self::Close { request, .. } => request.epoch,
        }
    }

    /// The sending node.
    pub fn from(&self) -> &NodeId {
        match self {
            Self::Bootstrap { from, .. } | Self::PostBootstrap { from, .. } | Self::Close { from, .. } => {
                from
            }
        }
    }

    /// Whether this message replaces `queued`, a message waiting under the same key: a strictly
    /// greater epoch always does; a close with `removed = true` also replaces a close with
    /// `removed = false` whose epoch is not above its own (removal is the stronger request).
    /// Anything else is dropped in favour of the queued message.
    pub fn supersedes(&self, queued: &PendingMessage) -> bool {
        debug_assert_eq!(self.key(), queued.key(), "only messages of one key compete");
        if self.epoch() > queued.epoch() {
            return true;
        }
        match (self, queued) {
            (Self::Close { request: new, .. }, Self::Close { request: old, .. }) => {
                new.removed && !old.removed && new.epoch >= old.epoch
            }
            _ => false,
        }
    }
}

/// What an accepted push did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[must_use]
pub enum Pushed {
    /// The key was free: the message is queued at the back of the FIFO.
    Queued,
    /// The message replaced the one waiting under its key, keeping the key's place.
    Replaced,
    /// The message waiting under its key wins; the new one is dropped.
    Dropped,
}

/// A refused push. The message is handed back unchanged (boxed: a bootstrap request is large).
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The key was free but `capacity` keys are already waiting. Nothing was queued.
    #[error("pending message queue full ({capacity} keys waiting)")]
    Full {
        /// The queue's capacity in keys.
        capacity: usize,
        /// The refused message.
        message: Box<PendingMessage>,
    },
    /// The queue is closed.
    #[error("pending message queue closed")]
    Closed {
        /// The refused message.
        message: Box<PendingMessage>,
    },
}

impl PushError {
    /// The refused message.
    pub fn into_message(self) -> PendingMessage {
        match self {
            Self::Full { message, .. } | Self::Closed { message } => *message,
        }
    }
}

/// The closed bit of the gate word; the bits below it count pushes in flight.
const CLOSED: u64 = 1 << 63;

/// The queue of messages waiting for the orchestrator (see the module docs for rules and protocol).
pub struct PendingQueue {
    slots: Map<PendingKey, Arc<PendingMessage>>,
    order: Queue<PendingKey>,
    capacity: usize,
    reserved: AtomicU64,
    gate: AtomicU64,
}

/// What a push's `compute` decided when it did not store its message.
enum Refusal {
    /// The key is free but this push holds no reservation.
    NoRoom,
    /// The waiting message wins.
    Superseded,
}

impl PendingQueue {
    /// An empty, open queue in which at most `capacity` (at least 1) keys wait at once.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            slots: Map::with_capacity(capacity),
            order: Queue::new(capacity),
            capacity,
            reserved: AtomicU64::new(0),
            gate: AtomicU64::new(0),
        }
    }

    /// The capacity in keys.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Keys waiting (approximate under concurrent change).
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no key is waiting (approximate under concurrent change).
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// A clone of the message waiting under `key`, if any.
    pub fn peek(&self, key: &PendingKey) -> Option<PendingMessage> {
        self.slots.get(key).map(|m| PendingMessage::clone(&m))
    }

    /// Offers a message: queues it, lets it replace the one waiting under its key, or drops it,
    /// by the rules of the module docs. Refused (and handed back) when the queue is closed, or
    /// when its key is free and `capacity` keys are already waiting.
    pub fn push(&self, message: PendingMessage) -> Result<Pushed, PushError> {
        // Relaxed: being an RMW, the entry reads the gate at its place in the modification order,
        // so it sees any close ordered before it; nothing else is read through it. What
        // `is_drained` needs is carried by the Release exit (`leave_gate`).
        let before = self.gate.fetch_add(1, Ordering::Relaxed);
        if before & CLOSED != 0 {
            self.leave_gate();
            return Err(PushError::Closed { message: Box::new(message) });
        }
        let result = self.push_open(message);
        self.leave_gate();
        result
    }

    fn push_open(&self, message: PendingMessage) -> Result<Pushed, PushError> {
        let key = message.key();
        let message = Arc::new(message);
        // First decision without a reservation: a waiting key is replaced or the message dropped,
        // and neither needs room. Only a free key needs a place, reserved before a second
        // decision, so the FIFO push after an insert cannot fail and a replacement never holds a
        // place it does not need. The second decision holds a reservation and cannot ask again.
        let (outcome, reserved) = match self.decide(key, &message, false) {
            Computed::Aborted(Refusal::NoRoom) => {
                if !self.reserve() {
                    let message = Box::new(Arc::unwrap_or_clone(message));
                    return Err(PushError::Full { capacity: self.capacity, message });
                }
                (self.decide(key, &message, true), true)
            }
            outcome => (outcome, false),
        };
        match outcome {
            Computed::Inserted => {
                debug_assert!(reserved, "only a reserved push fills an empty slot");
                // Empty → full: this push, and only this one, owns the key's place in the FIFO.
                if self.order.push(key).is_err() {
                    panic!("pending queue: no room for {key:?} despite its reservation");
                }
                Ok(Pushed::Queued)
            }
            Computed::Replaced { .. } => {
                // The key keeps its one FIFO place (or its inserter is about to push it). A
                // reservation taken for a key that another push filled meanwhile goes back.
                self.release_if(reserved);
                Ok(Pushed::Replaced)
            }
            Computed::Aborted(Refusal::Superseded) => {
                self.release_if(reserved);
                Ok(Pushed::Dropped)
            }
            Computed::Aborted(Refusal::NoRoom) | Computed::Removed(_) | Computed::Absent => {
                unreachable!("a reserved push never lacks room, and a push never removes")
            }
        }
    }

    /// One atomic decision for `key` (the replacement rule, and whether a free key may be filled).
    fn decide(
        &self,
        key: PendingKey,
        message: &Arc<PendingMessage>,
        reserved: bool,
    ) -> Computed<Arc<PendingMessage>, Refusal> {
        self.slots.compute(key, |queued| match queued {
            None if reserved => Op::Insert(message.clone()),
            None => Op::Abort(Refusal::NoRoom),
            Some(queued) if message.supersedes(queued) => Op::Insert(message.clone()),
            Some(_) => Op::Abort(Refusal::Superseded),
        })
    }

    /// Takes the message of the key that has waited longest, or `None` when no key is in the FIFO.
    pub fn pop(&self) -> Option<PendingMessage> {
        let key = self.order.pop()?;
        // The key is off the FIFO, so its place can go back at once: a push for another key may
        // take it, and a push for this key that reserves it finds the slot still full and
        // replaces (handing its own reservation back) or finds it gone and queues the key again.
        self.release();
        // The slot exists (its key was in the FIFO) and only the pop that took the key removes
        // it. Removing it is what frees the key: a later push queues it for the next round.
        let Computed::Removed(message) = self.slots.compute(key, |_| Op::<_, ()>::Remove) else {
            panic!("pending queue: {key:?} was in the FIFO without a slot");
        };
        Some(Arc::unwrap_or_clone(message))
    }

    /// Refuses every later push. Messages already accepted stay poppable. Idempotent.
    pub fn close(&self) {
        // Release: what the closer did before closing happens-before an `is_closed` or
        // `is_drained` that sees the bit (their Acquire loads). Pushes need only the RMW's place in
        // the gate's modification order (see `push`).
        self.gate.fetch_or(CLOSED, Ordering::Release);
    }

    /// Whether the queue is closed.
    pub fn is_closed(&self) -> bool {
        // Acquire: pairs with the Release fetch_or of `close`.
        self.gate.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Whether the queue is closed, no push is in flight and no key waits: `pop` will never
    /// return a message again. A worker stops polling once `pop` returns `None` and this holds.
    pub fn is_drained(&self) -> bool {
        // Acquire: reading a count of zero synchronizes with the Release exit of every push that
        // entered before (their exits form one release sequence on the gate word), so their FIFO
        // pushes are visible to the emptiness check below; a push entering later sees CLOSED.
        let gate = self.gate.load(Ordering::Acquire);
        gate == CLOSED && self.order.is_empty()
    }

    /// Checks the queue's invariants. Meaningful only while no push or pop is running (tests
    /// and loom models call it after joining their threads): every waiting key is in the FIFO
    /// exactly once, every FIFO key has a slot, and the reservation count matches.
    #[doc(hidden)]
    pub fn check_quiescent(&self) {
        let slots = self.slots.len();
        let queued = self.order.len();
        let reserved = self.reserved.load(Ordering::Acquire);
        assert_eq!(slots, queued, "every slot has exactly one FIFO place and every FIFO key a slot");
        assert_eq!(reserved, queued as u64, "one reservation per waiting key");
        assert_eq!(self.gate.load(Ordering::Acquire) & !CLOSED, 0, "no push in flight");
    }

    /// Takes one place of the capacity, if any is left.
    fn reserve(&self) -> bool {
        // Acquire on success: pairs with the Release of `release`, so the pop that freed the place
        // happens-before our FIFO push, which therefore finds the place free.
        self.reserved
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |n| {
                (n < self.capacity as u64).then_some(n + 1)
            })
            .is_ok()
    }

    fn release(&self) {
        // Release: publishes the FIFO pop (or the abandoned reservation) to the next `reserve`.
        let before = self.reserved.fetch_sub(1, Ordering::Release);
        debug_assert!(before > 0, "released more places than reserved");
    }

    fn release_if(&self, reserved: bool) {
        if reserved {
            self.release();
        }
    }

    fn leave_gate(&self) {
        // Release: a push's effects (its slot and FIFO push) happen-before an `is_drained` that
        // reads the count this exit leaves.
        self.gate.fetch_sub(1, Ordering::Release);
    }
}

impl fmt::Debug for PendingQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingQueue")
            .field("capacity", &self.capacity)
            .field("waiting", &self.order.len())
            .field("closed", &self.is_closed())
            .finish()
    }
}
