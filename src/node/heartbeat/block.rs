//! Block statuses (barrier progress): the manager's buffer that dispatchers offer
//! into, the collector's batching, and the node's send queue that de-duplicates WAITING and DONE
//! across queued and in-flight requests (B15: only identical copies still pending are dropped).
//!
//! De-duplication is by [`BlockKey`] (dispatcher, barrier ts, mode, syncpoint, stage) for WAITING
//! and DONE only; NONE (and WRITING) statuses are always kept, in order. Each key is one entry of
//! a concurrent map, claimed by insert-if-absent and moved `Queued → InFlight → gone` by
//! remove-if-same or compute, so no mutex is involved.

use crate::ids::{ChangefeedId, Mode, NodeId};
use crate::messages::{BlockKey, BlockStatus, BlockStatusRequest};
use crate::sync::{AtomicU64, Computed, Map, Op, Ordering, Queue};

use super::HeartbeatConfig;

/// What an offer did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[must_use]
pub enum Offered {
    /// Buffered.
    Buffered,
    /// An identical WAITING/DONE status is already buffered: this one is dropped.
    Duplicate,
    /// A WRITING status: kept on the dispatcher's record for the next bootstrap snapshot only
    /// (the maintainer never reads one as a status, barrier.md §4.4), not sent.
    Noted,
}

/// The buffer was full: the status is handed back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("block-status buffer full; status of {} handed back", .0.id)]
pub struct BufferFull(pub BlockStatus);

/// The manager's block-status buffer (the reference's `BlockStatusBuffer`).
pub struct BlockStatusBuffer {
    queue: Queue<BlockStatus>,
    pending: Map<BlockKey, ()>,
}

impl BlockStatusBuffer {
    /// An empty buffer of `capacity` statuses.
    pub fn new(capacity: usize) -> Self {
        Self { queue: Queue::new(capacity), pending: Map::new() }
    }

    /// Offers a status; a WAITING or DONE identical to one still buffered is dropped.
    pub fn offer(&self, status: BlockStatus) -> Result<Offered, BufferFull> {
        let key = status.dedupe_key();
        if let Some(key) = key {
            let claimed = self.pending.compute(key, |found| match found {
                Some(()) => Op::Abort(()),
                None => Op::Insert(()),
            });
            if matches!(claimed, Computed::Aborted(())) {
                return Ok(Offered::Duplicate);
            }
        }
        match self.queue.push(status) {
            Ok(()) => Ok(Offered::Buffered),
            Err(status) => {
                if let Some(key) = key {
                    self.pending.remove_if(&key, |_| true);
                }
                Err(BufferFull(status))
            }
        }
    }

    /// Takes the oldest status and releases its key (the same status may be offered again).
    pub fn take(&self) -> Option<BlockStatus> {
        let status = self.queue.pop()?;
        if let Some(key) = status.dedupe_key() {
            self.pending.remove_if(&key, |_| true);
        }
        Some(status)
    }

    /// Number of buffered statuses (approximate).
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is buffered (approximate).
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Capacity.
    pub fn capacity(&self) -> usize {
        self.queue.capacity()
    }
}

/// Splits statuses by mode (default first) and cuts each mode into chunks of at most `max`,
/// keeping the original order inside each mode.
pub fn batch(
    changefeed: &crate::ids::ChangefeedId,
    statuses: Vec<BlockStatus>,
    max: usize,
) -> Vec<BlockStatusRequest> {
    let max = max.max(1);
    let mut out = Vec::new();
    for mode in Mode::ALL {
        let of_mode: Vec<BlockStatus> = statuses.iter().filter(|s| s.mode == mode).cloned().collect();
        for chunk in of_mode.chunks(max) {
            out.push(BlockStatusRequest { changefeed: changefeed.clone(), statuses: chunk.to_vec(), mode });
        }
    }
    out
}

/// The collector's block-status window: the first status noticed opens it; when it ends, all
/// buffered statuses (late arrivals included) leave as one batch per mode and chunk.
#[derive(Clone, Debug)]
pub struct BlockBatcher {
    window_ms: u64,
    batch_items_max: usize,
    deadline_ms: Option<u64>,
}

/// A block-status batch to hand to the node's block-status queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockOutbound {
    /// The maintainer node.
    pub to: NodeId,
    /// The batch.
    pub request: BlockStatusRequest,
}

impl BlockBatcher {
    /// A batcher with the window and chunk size of `config`.
    pub fn new(config: &HeartbeatConfig) -> Self {
        Self {
            window_ms: config.block_status_window_ms,
            batch_items_max: config.batch_items_max,
            deadline_ms: None,
        }
    }

    /// The batches of `buffer` due at `now_ms`, addressed to `to` (the owner's maintainer; with
    /// none, they wait) for `changefeed`.
    pub fn poll(
        &mut self,
        buffer: &BlockStatusBuffer,
        to: Option<&NodeId>,
        changefeed: &ChangefeedId,
        now_ms: u64,
    ) -> Vec<BlockOutbound> {
        if self.deadline_ms.is_none() && !buffer.is_empty() {
            self.deadline_ms = Some(now_ms.saturating_add(self.window_ms));
        }
        match self.deadline_ms {
            Some(deadline) if now_ms >= deadline => {}
            _ => return Vec::new(),
        }
        let Some(to) = to else { return Vec::new() };
        self.deadline_ms = None;
        let mut taken = Vec::with_capacity(buffer.len());
        for _ in 0..buffer.capacity() {
            let Some(status) = buffer.take() else { break };
            taken.push(status);
        }
        batch(changefeed, taken, self.batch_items_max)
            .into_iter()
            .map(|request| BlockOutbound { to: to.clone(), request })
            .collect()
    }

    /// When the open window ends.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.deadline_ms
    }
}

/// Send-side key: a block key toward one maintainer.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct SendKey {
    /// Target maintainer.
    pub to: NodeId,
    /// The status key.
    pub key: BlockKey,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum KeyState {
    Queued(u64),
    InFlight(u64),
}

/// A request accepted by the queue.
#[derive(Debug)]
pub struct QueuedRequest {
    /// Target maintainer.
    pub to: NodeId,
    /// The request, filtered.
    pub request: BlockStatusRequest,
    ticket: u64,
    keys: Vec<SendKey>,
}

/// What an enqueue did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[must_use]
pub enum Enqueued {
    /// Queued, with `dropped` duplicate statuses filtered out.
    Queued {
        /// Statuses dropped as duplicates.
        dropped: usize,
    },
    /// Every status was a duplicate: nothing queued.
    AllDuplicates,
}

/// The queue was full: the request is handed back unchanged.
#[derive(Debug, thiserror::Error)]
#[error("block-status queue full")]
pub struct QueueFull {
    /// Target maintainer.
    pub to: NodeId,
    /// The request as offered.
    pub request: BlockStatusRequest,
}

/// The node's block-status send queue (the reference's `BlockStatusRequestQueue`), shared by all
/// managers: WAITING/DONE statuses already queued or in flight to the same maintainer are dropped.
pub struct BlockStatusQueue {
    queue: Queue<QueuedRequest>,
    keys: Map<SendKey, KeyState>,
    tickets: AtomicU64,
}

impl BlockStatusQueue {
    /// An empty queue of at most `capacity` requests (reference: 10000).
    pub fn new(capacity: usize) -> Self {
        Self { queue: Queue::new(capacity), keys: Map::new(), tickets: AtomicU64::new(0) }
    }

    /// Filters `request` against queued and in-flight keys and queues what survives.
    pub fn enqueue(&self, to: NodeId, request: BlockStatusRequest) -> Result<Enqueued, QueueFull> {
        // Relaxed: a unique counter.
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed) + 1;
        let mut keys = Vec::new();
        let mut kept = Vec::with_capacity(request.statuses.len());
        for status in &request.statuses {
            let Some(key) = status.dedupe_key() else {
                kept.push(status.clone());
                continue;
            };
            let key = SendKey { to: to.clone(), key };
            let claimed = self.keys.compute(key.clone(), |found| match found {
                Some(_) => Op::Abort(()),
                None => Op::Insert(KeyState::Queued(ticket)),
            });
            if matches!(claimed, Computed::Inserted) {
                keys.push(key);
                kept.push(status.clone());
            }
        }
        let dropped = request.statuses.len() - kept.len();
        if kept.is_empty() {
            return Ok(Enqueued::AllDuplicates);
        }
        let filtered =
            BlockStatusRequest { changefeed: request.changefeed.clone(), statuses: kept, mode: request.mode };
        match self.queue.push(QueuedRequest { to, request: filtered, ticket, keys }) {
            Ok(()) => Ok(Enqueued::Queued { dropped }),
            Err(back) => {
                for key in &back.keys {
                    self.keys.remove_if(key, |s| *s == KeyState::Queued(ticket));
                }
                Err(QueueFull { to: back.to, request })
            }
        }
    }

    /// The next request to send; its keys move to in-flight until [`BlockStatusQueue::sent`].
    pub fn pop(&self) -> Option<QueuedRequest> {
        let next = self.queue.pop()?;
        for key in &next.keys {
            let _ = self.keys.compute(key.clone(), |found| match found {
                Some(KeyState::Queued(t)) if *t == next.ticket => Op::Insert(KeyState::InFlight(next.ticket)),
                _ => Op::Abort(()),
            });
        }
        Some(next)
    }

    /// The send of `request` completed (successfully or not): its keys are released.
    pub fn sent(&self, request: &QueuedRequest) {
        for key in &request.keys {
            self.keys.remove_if(key, |s| *s == KeyState::InFlight(request.ticket));
        }
    }

    /// Requests queued (approximate).
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no request is queued (approximate).
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}
