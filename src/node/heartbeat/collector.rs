//! Rounds: the one collector of a manager drains dirty slots, takes each slot's latest value,
//! and builds `Heartbeat`s for the owner maintainer (periodic, complete and state-change rounds).
//!
//! A round is `begin → drain → coalesce → build`, one unit with no I/O:
//!
//! 1. the target is the owner maintainer at round time; with no owner nothing is drained;
//! 2. drain the queue (at most its capacity: producers cannot make a round unbounded), the spill
//!    of sealed slots, a sweep of dirty unqueued slots when a push overflowed (and in every
//!    complete round), and the statuses without slots;
//! 3. a complete round adds every live dispatcher not already reported;
//! 4. then the watermarks (after the drain, so their seq covers every status taken: hazard R2);
//! 5. statuses are cut into requests of at most `batch_items_max`, each carrying both watermarks.
//!
//! The error report is independent of rounds: the first running error is sent at once and
//! resent every `error_resend_every_ms` until it is cleared.

use std::collections::HashSet;
use std::sync::Arc;

use crate::ids::{DispatcherId, Mode, NodeId};
use crate::messages::{ComponentState, DispatcherStatus, Heartbeat, RunningError, Watermark};
use crate::node::manager::{DispatcherManager, Tombstone};
use crate::node::registry::{DispatcherRecord, RecordPhase};
use crate::sync::Op;

use super::block::{BlockBatcher, BlockOutbound};
use super::schedule::{RoundKind, Schedule};
use super::slot::Report;
use super::watermark::{self, Aggregate};
use super::HeartbeatConfig;

/// A heartbeat to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Outbound {
    /// The maintainer node (resolved when the request was built).
    pub to: NodeId,
    /// The request.
    pub request: Heartbeat,
}

/// What one poll produced.
#[derive(Clone, Debug, Default)]
pub struct Poll {
    /// The round that ran, if any.
    pub round: Option<RoundKind>,
    /// Heartbeats to send, in order.
    pub heartbeats: Vec<Outbound>,
    /// Block-status batches, in order.
    pub block_statuses: Vec<BlockOutbound>,
    /// Poll again at this time at the latest (earlier when woken by a state change).
    pub next_due_ms: Option<u64>,
}

/// The collector of one manager. Single-threaded by contract (`&mut self`).
pub struct Collector {
    config: HeartbeatConfig,
    schedule: Schedule,
    last: [Aggregate; 2],
    error_sent: Option<(Arc<Option<RunningError>>, u64)>,
    blocks: BlockBatcher,
}

fn mode_index(mode: Mode) -> usize {
    match mode {
        Mode::Default => 0,
        Mode::Redo => 1,
    }
}

/// Whether a progress-only report of a dispatcher in `state` is sent (the reference sends none
/// for a dispatcher that is initializing or is a merged dispatcher not yet handed over).
fn reports_progress(state: ComponentState) -> bool {
    !matches!(state, ComponentState::Initializing | ComponentState::Preparing | ComponentState::MergeReady)
}

/// Appends the statuses of one taken report: one per pending transition, in order, or one with
/// the latest state for a progress-only change.
pub fn emit(record: &DispatcherRecord, report: Option<Report>, out: &mut Vec<DispatcherStatus>) {
    let Some(r) = report else { return };
    let status = |state| DispatcherStatus {
        id: record.id,
        mode: record.mode,
        state,
        checkpoint_ts: r.checkpoint_ts,
        event_size_per_second: r.event_size_per_second,
    };
    let pending = r.pending.as_slice();
    if pending.is_empty() {
        if reports_progress(r.latest) {
            out.push(status(r.latest));
        }
    } else {
        out.extend(pending.iter().map(|s| status(*s)));
    }
}

impl Collector {
    /// A collector for `dm`, with the manager's heartbeat configuration.
    pub fn new(dm: &DispatcherManager) -> Self {
        let config = dm.heartbeat_config().clone();
        Self {
            schedule: Schedule::new(&config),
            last: [Aggregate::NONE; 2],
            error_sent: None,
            blocks: BlockBatcher::new(&config),
            config,
        }
    }

    /// The round clock.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Everything due at `now_ms`: the error report, a round, block-status batches.
    pub fn poll(&mut self, dm: &DispatcherManager, now_ms: u64) -> Poll {
        let mut poll = Poll::default();
        let error_due = self.errors(dm, now_ms, &mut poll.heartbeats);
        if let Some(kind) = self.schedule.poll(now_ms, dm.coalescer().take_changed()) {
            poll.round = Some(kind);
            poll.heartbeats.extend(self.round(dm, kind));
        }
        let owner = dm.owner();
        let to = owner.maintainer.as_ref();
        poll.block_statuses = self.blocks.poll(dm.block_statuses(), to, &dm.config().changefeed, now_ms);
        poll.next_due_ms =
            [self.schedule.next_due_ms(), self.blocks.next_due_ms(), error_due].into_iter().flatten().min();
        poll
    }

    fn errors(&mut self, dm: &DispatcherManager, now_ms: u64, out: &mut Vec<Outbound>) -> Option<u64> {
        let current = dm.coalescer().error();
        let Some(error) = current.as_ref() else {
            self.error_sent = None;
            return None;
        };
        let due_ms = match &self.error_sent {
            Some((sent, at)) if Arc::ptr_eq(sent, &current) => {
                at.saturating_add(self.config.error_resend_every_ms)
            }
            _ => now_ms,
        };
        if now_ms < due_ms {
            return Some(due_ms);
        }
        // No owner yet: retry at the resend cadence (a bootstrap installs one), never spin.
        let Some(to) = dm.owner().maintainer.clone() else {
            return Some(now_ms.saturating_add(self.config.error_resend_every_ms));
        };
        let mut err = error.clone();
        if err.node.is_empty() {
            err.node = dm.config().node.to_string();
        }
        out.push(Outbound {
            to,
            request: Heartbeat {
                changefeed: dm.config().changefeed.clone(),
                err: Some(err),
                ..Heartbeat::default()
            },
        });
        self.error_sent = Some((current.clone(), now_ms));
        Some(now_ms.saturating_add(self.config.error_resend_every_ms))
    }

    /// Runs one round of `kind` now (also what `poll` runs when a round is due).
    pub fn round(&mut self, dm: &DispatcherManager, kind: RoundKind) -> Vec<Outbound> {
        let Some(to) = dm.owner().maintainer.clone() else { return Vec::new() };
        let coalescer = dm.coalescer();
        let mut statuses = Vec::with_capacity(coalescer.queued().min(self.config.batch_items_max));
        // Synthetic statuses first: each speaks of an incarnation that was not live when it was
        // queued (a Stopped answering a Remove of a closed id), so it is older than any slot
        // status of a dispatcher of that id created since. Sent after it, an old Stopped would
        // read as the new dispatcher stopping (found by the swarm explorer, seed 36034).
        let synthetic_last = dm.has_mutation(crate::mutation::Mutation::SyntheticStatusesLast);
        for _ in 0..self.config.synthetic_capacity {
            if synthetic_last {
                break;
            }
            let Some(status) = coalescer.pop_synthetic() else { break };
            if !outdated(dm, &status) {
                statuses.push(status);
            }
        }
        for _ in 0..coalescer.capacity() {
            let Some(record) = coalescer.pop() else { break };
            emit(&record, record.status.take(true), &mut statuses);
        }
        for record in coalescer.drain_spill() {
            emit(&record, record.status.take(true), &mut statuses);
        }
        if coalescer.take_overflowed() || kind == RoundKind::Complete {
            dm.registry().for_each(|record| {
                if record.status.needs_sweep() {
                    emit(record, record.status.take(false), &mut statuses);
                }
            });
        }
        for _ in 0..self.config.synthetic_capacity {
            if !synthetic_last {
                break;
            }
            let Some(status) = coalescer.pop_synthetic() else { break };
            if !outdated(dm, &status) {
                statuses.push(status);
            }
        }
        if kind == RoundKind::Complete {
            self.complete(dm, &mut statuses);
            // Housekeeping off the request path: spans no operator named since the previous
            // complete round leave the journal's index (see `journal`).
            dm.operators().sweep_idle();
        }
        let (watermark, redo_watermark) = self.watermarks(dm, kind);
        if kind == RoundKind::StateChange && statuses.is_empty() {
            return Vec::new();
        }
        let request = |statuses| Outbound {
            to: to.clone(),
            request: Heartbeat {
                changefeed: dm.config().changefeed.clone(),
                watermark: Some(watermark),
                redo_watermark: Some(redo_watermark),
                statuses,
                complete: kind == RoundKind::Complete,
                err: None,
            },
        };
        let max = self.config.batch_items_max.max(1);
        if statuses.len() <= max {
            return vec![request(statuses)];
        }
        let mut out = Vec::with_capacity(statuses.len().div_ceil(max));
        let mut rest = statuses.into_iter().peekable();
        while rest.peek().is_some() {
            out.push(request(rest.by_ref().take(max).collect()));
        }
        out
    }

    /// Every live dispatcher not yet in `statuses`, with its current state (none for Initializing,
    /// Preparing or MergeReady ones).
    fn complete(&self, dm: &DispatcherManager, statuses: &mut Vec<DispatcherStatus>) {
        let seen: HashSet<(Mode, DispatcherId)> = statuses.iter().map(|s| (s.mode, s.id)).collect();
        dm.registry().for_each(|record| {
            let state = record.state();
            if state.phase != RecordPhase::Live
                || !reports_progress(state.component)
                || record.status.is_sealed()
                || seen.contains(&(record.mode, record.id))
            {
                return;
            }
            statuses.push(DispatcherStatus {
                id: record.id,
                mode: record.mode,
                state: state.component,
                checkpoint_ts: record.status.checkpoint_ts(),
                event_size_per_second: record.status.event_size_per_second(),
            });
        });
        // Dispatchers closed in this owner's term, none of their id live since: their Stopped again,
        // with the final checkpoint. The first one may have been lost with its heartbeat, and the
        // owner would keep the span bound here while nothing runs (C1, seed 31757 of the swarm with
        // motifs). Listed after every live status, only while no dispatcher of the id is live,
        // and at the complete rounds `repeats_at` picks (every tombstone ages by one per complete
        // round: one map update each, the price of outliving any outage).
        if dm.has_mutation(crate::mutation::Mutation::StoppedReportedOnce) {
            return;
        }
        let mut aged = Vec::new();
        dm.closed.for_each(|(mode, id), tombstone| {
            if seen.contains(&(*mode, *id)) || dm.registry().get_alive(*mode, *id).is_some() {
                return;
            }
            let bounded = dm.has_mutation(crate::mutation::Mutation::StoppedRepeatsBounded);
            if (bounded && tombstone.age < 3) || (!bounded && crate::node::manager::repeats_at(tombstone.age))
            {
                statuses.push(crate::node::manager::stopped(*id, *mode, tombstone.final_ts));
            }
            aged.push((*mode, *id));
        });
        for key in aged {
            dm.closed.compute(key, |found| match found {
                Some(t) => Op::Insert(Tombstone { age: t.age.saturating_add(1), ..*t }),
                None => Op::Abort(()),
            });
        }
    }

    fn watermark(&mut self, dm: &DispatcherManager, mode: Mode, kind: RoundKind) -> Watermark {
        let i = mode_index(mode);
        match kind {
            RoundKind::StateChange => watermark::between_scans(dm.registry(), mode, self.last[i]),
            RoundKind::Periodic | RoundKind::Complete => {
                self.last[i] = watermark::scan(dm.registry(), mode);
                self.last[i].watermark()
            }
        }
    }

    fn watermarks(&mut self, dm: &DispatcherManager, kind: RoundKind) -> (Watermark, Watermark) {
        let normal = self.watermark(dm, Mode::Default, kind);
        let redo = if dm.is_redo_ready() { self.watermark(dm, Mode::Redo, kind) } else { Watermark::NONE };
        (normal, redo)
    }
}

/// A synthetic Stopped or Removed speaks of an incarnation that was not live when it was queued.
/// If a dispatcher of that id is live by the time it goes out, it is older than that dispatcher's
/// own statuses and would read as that dispatcher stopping: dropped.
fn outdated(dm: &DispatcherManager, status: &DispatcherStatus) -> bool {
    matches!(status.state, ComponentState::Stopped | ComponentState::Removed)
        && dm.registry().get_alive(status.mode, status.id).is_some()
}
