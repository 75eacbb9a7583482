//! Per-span traffic windows. A dispatcher's reported rate (`event_size_per_second`) is kept as
//! its latest value; once per round, every span that reported since the previous round gets that
//! value as its newest sample. A window is the last few samples, newest first. Products of a
//! split or merge start empty, so nothing acts on a reshaped table before fresh samples fill its
//! windows (L6, and the refill time of L8); the same holds after a failover, since this state is
//! soft and a new maintainer starts without it.

use std::collections::{BTreeMap, VecDeque};

use crate::ids::NodeId;
use crate::maintainer::spans::TableKey;

use crate::ids::{DispatcherId, IdMap};

#[derive(Debug, Default)]
struct SpanLoad {
    latest: f64,
    heard: bool,
    window: VecDeque<f64>,
}

/// The load state of one mode.
#[derive(Debug, Default)]
pub(in crate::maintainer) struct LoadState {
    spans: IdMap<DispatcherId, SpanLoad>,
    /// When the next round runs (`None`: at the next tick).
    pub(in crate::maintainer) next_round_ms: Option<u64>,
    /// Rounds run so far.
    pub(in crate::maintainer) round: u64,
    /// Spans found unsplittable, with the round from which they may be tried again.
    pub(in crate::maintainer) unsplittable: IdMap<DispatcherId, u64>,
    /// Per table: the balance and merge damping.
    pub(in crate::maintainer) tables: BTreeMap<TableKey, TableCheck>,
    /// Per span: its region count and the round it was read (refreshed every few rounds, like
    /// the reference's region-count refresher, so a round does not ask the source for every span).
    pub(in crate::maintainer) region_counts: IdMap<DispatcherId, (u64, u64)>,
}

/// The damping state of one table.
#[derive(Debug, Default, Clone)]
pub(in crate::maintainer) struct TableCheck {
    /// Consecutive imbalanced evaluations with the same most and least loaded nodes.
    pub(in crate::maintainer) score: u32,
    /// Those nodes at the last evaluation.
    pub(in crate::maintainer) extremes: Option<(NodeId, NodeId)>,
    /// Consecutive evaluations that wanted a merge.
    pub(in crate::maintainer) merge_wanted: u32,
    /// No decision on the table before this round (after an action: every sample fresh).
    pub(in crate::maintainer) rest_until: u64,
}

impl LoadState {
    /// A rate reported by the dispatcher bound to span `id`. Negative or non-finite values (bad
    /// input from a node) count as 0.
    pub(in crate::maintainer) fn observe(&mut self, id: DispatcherId, rate: f32) {
        let rate = f64::from(rate);
        let e = self.spans.entry(id).or_default();
        e.latest = if rate.is_finite() && rate > 0.0 { rate } else { 0.0 };
        e.heard = true;
    }

    /// Takes one sample of every span in `sampled` (the replicating ones) that reported since
    /// the last round; forgets every span not in `known` (a span being moved keeps its window:
    /// its traffic moves with it).
    pub(in crate::maintainer) fn sample(
        &mut self,
        known: impl Fn(DispatcherId) -> bool,
        sampled: &[DispatcherId],
        window: usize,
    ) {
        self.spans.retain(|id, _| known(*id));
        self.unsplittable.retain(|id, _| known(*id));
        self.region_counts.retain(|id, _| known(*id));
        for id in sampled {
            let e = self.spans.entry(*id).or_default();
            if e.heard {
                e.window.push_front(e.latest);
                e.window.truncate(window.max(1));
                e.heard = false;
            }
        }
        self.round += 1;
    }

    /// Adds span `id`'s samples, newest first, into `sums` (missing ones count 0).
    pub(in crate::maintainer) fn add_window(&self, id: DispatcherId, sums: &mut [f64]) {
        for (sum, s) in sums.iter_mut().zip(self.samples(id)) {
            *sum += s;
        }
    }

    /// Whether span `id` has `window` samples.
    pub(in crate::maintainer) fn full(&self, id: DispatcherId, window: usize) -> bool {
        self.spans.get(&id).is_some_and(|e| e.window.len() >= window.max(1))
    }

    /// Span `id`'s samples, newest first.
    pub(in crate::maintainer) fn samples(&self, id: DispatcherId) -> impl Iterator<Item = f64> + '_ {
        self.spans.get(&id).into_iter().flat_map(|e| e.window.iter().copied())
    }

    /// Span `id`'s newest sample (0 without one).
    pub(in crate::maintainer) fn newest(&self, id: DispatcherId) -> f64 {
        self.spans.get(&id).and_then(|e| e.window.front().copied()).unwrap_or(0.0)
    }
}
