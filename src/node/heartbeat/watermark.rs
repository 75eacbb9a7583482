//! The mode watermarks and the `seq` protocol, built so that the maintainer's checkpoint never
//! passes a live or creating dispatcher (I10: checkpoint safety). This closes the reference's seq
//! hole, hazard R2.
//!
//! **Invariant:** a watermark tagged `seq = s` is at most the checkpoint (and resolved ts) of every
//! live dispatcher of its mode whose seq is `≤ s`, and at most the start ts of every dispatcher
//! whose create is in flight.
//!
//! Two ways to compute one, both sound:
//!
//! The registry seq moves twice per dispatcher: when its create is reserved and when it commits
//! (both after the record is visible). So a maintainer that applies its acceptance rule ("higher
//! seq, or same seq and no lower checkpoint") accepts the lower watermark that a new dispatcher
//! causes, even while its create is still in flight.
//!
//! * [`scan`] (periodic and complete rounds): reset the mode's *floor* (minimum start ts of
//!   dispatchers reserved since the last scan), read the registry seq, then visit every record.
//!   The seq protocol makes every dispatcher with seq `≤ s` visible to the scan; dispatchers
//!   reserved around the scan are covered by the floor value the reset returned, which is folded in.
//! * [`between_scans`] (state-change rounds, O(1)): the last scan's result lowered by the current
//!   floor, tagged with the *current* seq. A dispatcher with seq `≤` that seq either was seen by the
//!   scan, or was reserved after the scan's floor reset; its `lower_floor` happens-before its seq,
//!   which happens-before our seq read, which precedes our floor read. Checkpoints only grow and
//!   start at the start ts, so the result is conservative.
//!
//! No status carries a seq of its own (R2 (a)), and a snapshot is never paired with a later seq
//! (R2 (b)): the seq is always read after the statuses of the round were taken.

use crate::ids::{Mode, Ts};
use crate::messages::{ComponentState, Watermark};
use crate::node::registry::{DispatcherRecord, RecordPhase, Registry};

/// A full scan's result for one mode: what the between-scans watermark builds on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Aggregate {
    /// Minimum checkpoint (floor included).
    pub checkpoint_ts: Ts,
    /// Minimum resolved ts (floor included).
    pub resolved_ts: Ts,
    /// The seq read before the scan.
    pub seq: u64,
}

impl Aggregate {
    /// Before any scan: neutral. The floor then covers every dispatcher ever reserved.
    pub const NONE: Aggregate = Aggregate { checkpoint_ts: Ts::MAX, resolved_ts: Ts::MAX, seq: 0 };

    /// As a watermark.
    pub fn watermark(self) -> Watermark {
        Watermark { checkpoint_ts: self.checkpoint_ts, resolved_ts: self.resolved_ts, seq: self.seq }
    }
}

/// What one record contributes to its mode's watermark: `(checkpoint, resolved)`.
///
/// Creating: its start ts (its create is in flight). Live: its latest progress, except a merged
/// dispatcher still Preparing or MergeReady (it writes nothing; its sources cover the span).
/// Closed or cancelled: nothing (a Stopped report carries its final checkpoint).
pub fn contribution(record: &DispatcherRecord) -> Option<(Ts, Ts)> {
    let state = record.state();
    match state.phase {
        RecordPhase::Creating => {
            let start = record.start_ts();
            Some((start, start))
        }
        RecordPhase::Live => match state.component {
            ComponentState::Preparing | ComponentState::MergeReady => None,
            _ => Some((record.status.checkpoint_ts(), record.status.resolved_ts())),
        },
        RecordPhase::Closed | RecordPhase::Cancelled => None,
    }
}

/// A full scan of `mode` (see the module docs for the order of its steps).
pub fn scan(registry: &Registry, mode: Mode) -> Aggregate {
    let floor = registry.take_floor(mode);
    let seq = registry.current_seq();
    let (mut checkpoint_ts, mut resolved_ts) = (floor, floor);
    registry.for_each(|record| {
        if record.mode != mode {
            return;
        }
        if let Some((c, r)) = contribution(record) {
            checkpoint_ts = checkpoint_ts.min(c);
            resolved_ts = resolved_ts.min(r);
        }
    });
    Aggregate { checkpoint_ts, resolved_ts, seq }
}

/// The O(1) watermark between two scans (see the module docs).
pub fn between_scans(registry: &Registry, mode: Mode, last: Aggregate) -> Watermark {
    // Seq first, floor second: the order the soundness argument needs.
    let seq = registry.current_seq();
    let floor = registry.floor(mode);
    Watermark {
        checkpoint_ts: last.checkpoint_ts.min(floor),
        resolved_ts: last.resolved_ts.min(floor),
        seq: seq.max(last.seq),
    }
}
