//! When the collector runs a round: pure time arithmetic over the embedder's clock.
//!
//! * Periodic rounds every `period_ms` (the first `initial_delay_ms` after the first poll). If the
//!   collector falls behind by more than a period, missed rounds are skipped, not replayed.
//! * Every `complete_every_ticks()`-th periodic round is a complete one (first on that tick, as the
//!   reference counts).
//! * A state change noticed at a poll opens a window; the poll at or after `noticed +
//!   state_change_window_ms` runs a state-change round, unless a periodic round came first (it
//!   drains the same changes).

use super::HeartbeatConfig;

/// What kind of round to run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RoundKind {
    /// Dirty slots and full-scan watermarks.
    Periodic,
    /// Dirty slots early, with the between-scans watermark.
    StateChange,
    /// A periodic round that also lists every dispatcher (`compeleteStatus`).
    Complete,
}

/// The round clock of one collector.
#[derive(Clone, Debug)]
pub struct Schedule {
    period_ms: u64,
    initial_delay_ms: u64,
    window_ms: u64,
    complete_every_ticks: u64,
    next_periodic_ms: Option<u64>,
    window_deadline_ms: Option<u64>,
    ticks: u64,
}

impl Schedule {
    /// A schedule with the intervals of `config`; its clock starts at the first poll.
    pub fn new(config: &HeartbeatConfig) -> Self {
        Self {
            period_ms: config.effective_period_ms(),
            initial_delay_ms: config.effective_initial_delay_ms(),
            window_ms: config.state_change_window_ms,
            complete_every_ticks: config.complete_every_ticks(),
            next_periodic_ms: None,
            window_deadline_ms: None,
            ticks: 0,
        }
    }

    /// The round due at `now_ms`, if any. `change_noticed`: a state change arrived since the last
    /// poll.
    pub fn poll(&mut self, now_ms: u64, change_noticed: bool) -> Option<RoundKind> {
        let next = *self.next_periodic_ms.get_or_insert(now_ms.saturating_add(self.initial_delay_ms));
        if change_noticed && self.window_deadline_ms.is_none() {
            self.window_deadline_ms = Some(now_ms.saturating_add(self.window_ms));
        }
        if now_ms >= next {
            self.ticks += 1;
            let mut following = next.saturating_add(self.period_ms);
            if following <= now_ms {
                following = now_ms.saturating_add(self.period_ms);
            }
            self.next_periodic_ms = Some(following);
            self.window_deadline_ms = None;
            return Some(if self.ticks % self.complete_every_ticks == 0 {
                RoundKind::Complete
            } else {
                RoundKind::Periodic
            });
        }
        match self.window_deadline_ms {
            Some(deadline) if now_ms >= deadline => {
                self.window_deadline_ms = None;
                Some(RoundKind::StateChange)
            }
            _ => None,
        }
    }

    /// When the next round is due (the embedder should poll then, or when woken earlier).
    pub fn next_due_ms(&self) -> Option<u64> {
        match (self.next_periodic_ms, self.window_deadline_ms) {
            (Some(p), Some(w)) => Some(p.min(w)),
            (p, w) => p.or(w),
        }
    }

    /// Periodic rounds so far.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }
}
