//! Per-span traffic windows. A dispatcher's reported rate (`event_size_per_second`) is kept as
//! its latest value; once per round, every span that reported since the previous round gets that
//! value as its newest sample. A window is the last few samples, newest first. Products of a
//! split or merge start empty, so nothing acts on a reshaped table before fresh samples fill its
//! windows (L6, and the refill time of L8); the same holds after a failover, since this state is
//! soft and a new maintainer starts without it.

use std::collections::BTreeMap;

use crate::ids::NodeId;
use crate::maintainer::spans::TableKey;

use crate::ids::{DispatcherId, IdMap};

#[derive(Debug, Default)]
pub(in crate::maintainer) struct SpanLoad {
    latest: f64,
    heard: bool,
    /// The samples, newest first.
    pub(in crate::maintainer) window: Window,
    /// Under the reference's rules: consecutive samples at or above the traffic threshold, and
    /// when the last sample was taken.
    pub(in crate::maintainer) streak: u32,
    pushed_ms: Option<u64>,
    /// The span's region count and the round it was read (refreshed every few rounds, like the
    /// reference's region-count refresher, so a round does not ask the source for every span).
    pub(in crate::maintainer) regions: Option<(u64, u64)>,
}

/// The most samples a window holds.
pub const WINDOW_MAX: usize = 8;

/// A span's last samples, newest first, kept inline (no allocation per span, one cache line to
/// read in a round).
#[derive(Debug, Default, Clone, Copy)]
pub(in crate::maintainer) struct Window {
    samples: [f64; WINDOW_MAX],
    len: u8,
}

impl Window {
    /// Puts `x` first, keeping at most `keep` samples (1 to [`WINDOW_MAX`]).
    fn push_front(&mut self, x: f64, keep: usize) {
        let keep = keep.clamp(1, WINDOW_MAX);
        self.samples.copy_within(0..WINDOW_MAX - 1, 1);
        self.samples[0] = x;
        self.len = (usize::from(self.len) + 1).min(keep) as u8;
    }

    /// The samples, newest first.
    pub(in crate::maintainer) fn as_slice(&self) -> &[f64] {
        &self.samples[..usize::from(self.len)]
    }

    /// How many samples it holds.
    pub(in crate::maintainer) fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// The newest sample.
    pub(in crate::maintainer) fn front(&self) -> Option<f64> {
        self.as_slice().first().copied()
    }
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
    /// The span controller's deletion count at the last pruning.
    deletions_seen: Option<u64>,
}

/// The damping state of one table.
#[derive(Debug, Default, Clone)]
pub(in crate::maintainer) struct TableCheck {
    /// Consecutive imbalanced evaluations with the same most and least loaded nodes.
    pub(in crate::maintainer) score: u32,
    /// Those nodes at the last evaluation (under the reference's rules: at the first one of the
    /// current score).
    pub(in crate::maintainer) extremes: Option<(NodeId, NodeId)>,
    /// Under the reference's rules, which side the score follows.
    pub(in crate::maintainer) cause: Cause,
    /// Consecutive evaluations that wanted a merge.
    pub(in crate::maintainer) merge_wanted: u32,
    /// No decision on the table before this round (after an action: every sample fresh).
    pub(in crate::maintainer) rest_until: u64,
}

/// The side of an imbalance the reference's score follows: it goes up only while that side's
/// node stays the same (scheduling.md §6, step 6).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(in crate::maintainer) enum Cause {
    /// First seen from the least loaded node (the reference then keeps both nodes, H4).
    #[default]
    Both,
    /// The most loaded node.
    Max,
    /// The least loaded node.
    Min,
}

impl TableCheck {
    /// One imbalanced evaluation under the reference's rules, with the most and least loaded
    /// nodes now, and whether the least loaded one caused it.
    pub(in crate::maintainer) fn score_reference(&mut self, max: &NodeId, min: &NodeId, by_min: bool) {
        let same = self.extremes.as_ref().map(|(a, b)| (a == max, b == min));
        let (score, cause) = match (self.score, self.cause, same) {
            (1.., Cause::Both, Some((true, true))) => (self.score + 1, Cause::Both),
            (1.., Cause::Both, Some((_, true))) | (1.., Cause::Min, Some((_, true))) => {
                (self.score + 1, Cause::Min)
            }
            (1.., Cause::Both, Some((true, _))) | (1.., Cause::Max, Some((true, _))) => {
                (self.score + 1, Cause::Max)
            }
            _ => {
                self.extremes = Some((max.clone(), min.clone()));
                (1, if by_min { Cause::Both } else { Cause::Max })
            }
        };
        self.score = score;
        self.cause = cause;
    }
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

    /// The reference's sampling: each status carries a sample, at most one per
    /// `every_ms` per span (its complete-status period), and a span's run of samples at or above
    /// `threshold` counts consecutive hot samples (the reference's traffic score).
    pub(in crate::maintainer) fn observe_sample(
        &mut self,
        id: DispatcherId,
        rate: f32,
        now_ms: u64,
        every_ms: u64,
        window: usize,
        threshold: f64,
    ) {
        let rate = f64::from(rate);
        let rate = if rate.is_finite() && rate > 0.0 { rate } else { 0.0 };
        let e = self.spans.entry(id).or_default();
        if e.pushed_ms.is_some_and(|t| now_ms < t.saturating_add(every_ms)) {
            return;
        }
        e.pushed_ms = Some(now_ms);
        e.latest = rate;
        e.window.push_front(rate, window);
        e.streak = if threshold > 0.0 && rate >= threshold { e.streak + 1 } else { 0 };
    }

    /// Records span `id`'s region count, read in `round`.
    pub(in crate::maintainer) fn set_regions(&mut self, id: DispatcherId, count: u64, round: u64) {
        if let Some(e) = self.spans.get_mut(&id) {
            e.regions = Some((count, round));
        }
    }

    /// Span `id`'s load.
    pub(in crate::maintainer) fn span(&self, id: DispatcherId) -> Option<&SpanLoad> {
        self.spans.get(&id)
    }

    /// Takes one sample of every span in `sampled` (the replicating ones) that reported since
    /// the last round. Spans no longer `known` are forgotten when some record was deleted since
    /// the last round (`deletions` moved), so a steady round does not look every span up. A
    /// span being moved keeps its window: its traffic moves with it.
    pub(in crate::maintainer) fn sample(
        &mut self,
        known: impl Fn(DispatcherId) -> bool,
        deletions: u64,
        sampled: &[DispatcherId],
        window: usize,
    ) {
        if self.deletions_seen != Some(deletions) {
            self.deletions_seen = Some(deletions);
            self.spans.retain(|id, _| known(*id));
            self.unsplittable.retain(|id, _| known(*id));
        }
        for id in sampled {
            let e = self.spans.entry(*id).or_default();
            if e.heard {
                e.window.push_front(e.latest, window);
                e.heard = false;
            }
        }
        self.round += 1;
    }

    /// Span `id`'s newest sample (0 without one).
    pub(in crate::maintainer) fn newest(&self, id: DispatcherId) -> f64 {
        self.spans.get(&id).and_then(|e| e.window.front()).unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> NodeId {
        NodeId::new(s)
    }

    #[test]
    fn a_window_keeps_the_newest_samples_first_and_at_most_what_it_is_told() {
        let mut w = Window::default();
        assert_eq!((w.len(), w.front()), (0, None));
        for x in 1..=5 {
            w.push_front(f64::from(x), 3);
        }
        assert_eq!(w.as_slice(), [5.0, 4.0, 3.0]);
        // Asked to keep more than it can hold, it keeps WINDOW_MAX.
        for x in 6..=20 {
            w.push_front(f64::from(x), 100);
        }
        assert_eq!(w.len(), WINDOW_MAX);
        assert_eq!(w.as_slice()[..2], [20.0, 19.0]);
        w.push_front(0.5, 0);
        assert_eq!(w.as_slice(), [0.5], "at least one");
    }

    #[test]
    fn the_references_score_follows_the_side_that_stays_the_same() {
        let mut c = TableCheck::default();
        // First seen from the least loaded node: the score keeps both nodes.
        c.score_reference(&n("a"), &n("b"), true);
        assert_eq!((c.score, c.cause), (1, Cause::Both));
        c.score_reference(&n("a"), &n("b"), true);
        assert_eq!((c.score, c.cause), (2, Cause::Both));
        // The most loaded node changed, the least did not: the score follows the least.
        c.score_reference(&n("c"), &n("b"), true);
        assert_eq!((c.score, c.cause), (3, Cause::Min));
        // From then on only that node counts.
        c.score_reference(&n("a"), &n("b"), false);
        assert_eq!((c.score, c.cause), (4, Cause::Min));
        c.score_reference(&n("a"), &n("c"), false);
        assert_eq!((c.score, c.cause), (1, Cause::Max), "a new least loaded node starts over");
        c.score_reference(&n("a"), &n("d"), false);
        assert_eq!((c.score, c.cause), (2, Cause::Max));
        c.score_reference(&n("d"), &n("c"), true);
        assert_eq!((c.score, c.cause), (1, Cause::Both), "a new most loaded node starts over");
        assert_eq!(c.extremes, Some((n("d"), n("c"))));
    }

    #[test]
    fn the_references_samples_come_at_most_once_per_period_and_count_a_hot_run() {
        let mut s = LoadState::default();
        let id = DispatcherId::MIN;
        s.observe_sample(id, 30.0, 0, 10_000, 3, 20.0);
        s.observe_sample(id, 30.0, 9_999, 10_000, 3, 20.0);
        let span =
            |s: &LoadState| (s.span(id).unwrap().window.as_slice().to_vec(), s.span(id).unwrap().streak);
        assert_eq!(span(&s), (vec![30.0], 1), "one sample per period");
        s.observe_sample(id, 30.0, 10_000, 10_000, 3, 20.0);
        s.observe_sample(id, 10.0, 20_000, 10_000, 3, 20.0);
        assert_eq!(span(&s).1, 0, "a cool sample ends the run");
        s.observe_sample(id, f32::NAN, 30_000, 10_000, 3, 20.0);
        assert_eq!(span(&s).0, vec![0.0, 10.0, 30.0], "bad rates count 0");
    }
}
