//! The heartbeat path: dispatcher progress and state to the maintainer, barrier answers back.
//!
//! | module | what it holds |
//! |---|---|
//! | [`slot`] | the per-dispatcher latest-value slot and its packed report word |
//! | [`coalescer`] | the manager's bounded queue of dirty slots, overflow fallback, errors |
//! | [`schedule`] | when rounds happen: periodic, state-change window, complete status |
//! | [`watermark`] | the mode watermarks and the `seq` protocol (hazard R2 closed) |
//! | [`collector`] | rounds: drain, coalesce, build `Heartbeat`s per target |
//! | [`block`] | block-status buffer, batching, and the send queue's WAITING/DONE de-duplication |
//! | [`inbound`] | `HeartBeatResponse` and the other maintainer → node messages, fenced and routed |
//!
//! Producers write slots and never block; one collector per manager runs rounds when the embedder
//! polls it with the current time. Nothing here reads a clock or sends anything.

pub(crate) mod block;
pub(crate) mod coalescer;
pub(crate) mod collector;
pub(crate) mod inbound;
pub(crate) mod schedule;
pub(crate) mod slot;
pub(crate) mod watermark;

pub use block::{batch, BlockBatcher, BlockOutbound, BlockStatusBuffer, BlockStatusQueue, Enqueued, Offered};
pub use coalescer::{Coalescer, StatusHandle, Update};
pub use collector::{Collector, Outbound, Poll};
pub use schedule::{RoundKind, Schedule};
pub use slot::{Report, StatusSlot, PENDING_MAX};

/// Heartbeat intervals and limits. Every interval is in milliseconds of the embedder's clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// Periodic round interval in normal mode (reference: 200 ms).
    pub period_ms: u64,
    /// Periodic round interval in low-latency mode (reference: 50 ms).
    pub low_latency_period_ms: u64,
    /// Use the low-latency interval (and no initial delay).
    pub low_latency: bool,
    /// Delay of the first periodic round after the first poll (reference: 1 s; 0 in low latency).
    pub initial_delay_ms: u64,
    /// A state change is sent at most this long after the collector noticed it (reference: 10 ms).
    pub state_change_window_ms: u64,
    /// A complete status (every dispatcher) every this often (reference: 10 s).
    pub complete_status_every_ms: u64,
    /// Most statuses in one request (reference: 2048).
    pub batch_items_max: usize,
    /// Capacity of the dirty-slot queue; when full, slots stay dirty for the next sweep.
    pub queue_capacity: usize,
    /// Capacity of the queue of statuses for dispatchers without a slot (Stopped for unknown).
    pub synthetic_capacity: usize,
    /// Resend the running error this often until it is cleared (reference: 5 s).
    pub error_resend_every_ms: u64,
    /// Block statuses are batched for this long after the first one (reference: 10 ms).
    pub block_status_window_ms: u64,
    /// Capacity of the block-status buffer (reference: 16384).
    pub block_buffer_capacity: usize,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            period_ms: 200,
            low_latency_period_ms: 50,
            low_latency: false,
            initial_delay_ms: 1_000,
            state_change_window_ms: 10,
            complete_status_every_ms: 10_000,
            batch_items_max: 2_048,
            queue_capacity: 16_384,
            synthetic_capacity: 4_096,
            error_resend_every_ms: 5_000,
            block_status_window_ms: 10,
            block_buffer_capacity: 16_384,
        }
    }
}

impl HeartbeatConfig {
    /// The low-latency preset: 50 ms rounds, first round at once.
    pub fn low_latency() -> Self {
        Self { low_latency: true, ..Self::default() }
    }

    /// The periodic interval in force.
    pub fn effective_period_ms(&self) -> u64 {
        if self.low_latency {
            self.low_latency_period_ms.max(1)
        } else {
            self.period_ms.max(1)
        }
    }

    /// The initial delay in force.
    pub fn effective_initial_delay_ms(&self) -> u64 {
        if self.low_latency {
            0
        } else {
            self.initial_delay_ms
        }
    }

    /// Periodic rounds per complete status (at least 1): the `complete_status_every_ms`-th tick.
    pub fn complete_every_ticks(&self) -> u64 {
        (self.complete_status_every_ms / self.effective_period_ms()).max(1)
    }
}
