//! One round of load-driven decisions for one mode, and the placement of a split table's absent
//! pieces by traffic.
//!
//! A table is looked at only when it is quiet: no operator on any of its spans, every span
//! replicating, none waiting at a DDL or syncpoint (the barrier decides when those move, B1), and
//! every span with a full window of samples (L4, L6). A round starts at most
//! [`LoadConfig::splits_per_round`](super::LoadConfig) splits over all tables (L7).

use std::collections::BTreeMap;

use crate::ids::{DispatcherId, Mode, NodeId};
use crate::maintainer::core::Maintainer;
use crate::maintainer::event::Output;
use crate::maintainer::operator::{Operator, OperatorKind};
use crate::maintainer::spans::{SpanRecord, SpanState, TableKey};
use crate::span::TableSpan;

use super::regions::{by_region_count, by_written_bytes, clamp, presplit_pieces};
use super::{Rules, BALANCE_TRAFFIC_MIN};

/// What the merge check did for a table.
enum Merge {
    /// It started moves or merges.
    Started,
    /// The table wants merging but waits (damping, or nothing admissible now).
    Wanted,
    /// The table does not want merging.
    No,
}

/// Under the reference's rules a span's traffic is sampled from the complete status its node
/// sends every 10 s (scheduling.md §1.2, §3), not once per round.
const REFERENCE_SAMPLE_MS: u64 = 10_000;

/// Which merges a merge check may start.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Whichever the table wants (ours).
    Any,
    /// Only the whole table's (the reference's step 2).
    Whole,
    /// Only local runs (the reference's step 4).
    Local,
}

/// What is left of a round's bounds (L7).
struct Budget {
    splits: usize,
}

/// Above this many regions a hot span is cut by region count, not by written bytes (the
/// reference's `MaxRegionCountForWriteBytesSplit`).
const WRITE_BYTES_REGIONS_MAX: usize = 5_000;

/// Our split target: pieces at most this share of the traffic threshold, so a fresh piece is not
/// itself split again at once (L8) and a merge back needs the traffic to fall well below it.
const PIECE_SHARE: f64 = 0.75;

impl Maintainer {
    /// Runs a load round for every mode when one is due.
    pub(in crate::maintainer) fn load_tick(&mut self, now_ms: u64) {
        if !self.cfg.load.across_nodes {
            return;
        }
        for mode in self.mode_list() {
            let due = self.modes[mode].load.next_round_ms.is_none_or(|t| now_ms >= t);
            if due {
                let interval = self.cfg.load.check_balance_interval_ms.max(1);
                self.modes[mode].load.next_round_ms = Some(now_ms.saturating_add(interval));
                self.load_round(now_ms, mode);
            }
        }
    }

    /// A span's reported traffic.
    pub(in crate::maintainer) fn observe_load(&mut self, now_ms: u64, mode: Mode, id: DispatcherId, rate: f32) {
        let cfg = &self.cfg.load;
        if !cfg.across_nodes {
            return;
        }
        match cfg.rules {
            Rules::Ours => self.modes[mode].load.observe(id, rate),
            Rules::Reference => {
                let t = cfg.traffic_threshold();
                self.modes[mode].load.observe_sample(id, rate, now_ms, REFERENCE_SAMPLE_MS, cfg.window, t);
            }
        }
    }

    fn load_round(&mut self, now_ms: u64, mode: Mode) {
        let window = self.cfg.load.window;
        let ready = self.ready_nodes();
        let sampled: Vec<DispatcherId> = self.modes[mode]
            .sc
            .records()
            .filter(|r| {
                r.state == SpanState::Replicating && r.node.as_ref().is_some_and(|n| ready.contains(n))
            })
            .map(|r| r.id)
            .collect();
        let state = &mut self.modes[mode];
        let sc = &state.sc;
        state.load.sample(|id| sc.get(id).is_some(), &sampled, window);
        let reference = self.cfg.load.rules == Rules::Reference;
        // The reference's split-table scheduler skips a round while the mode has any operator or
        // absent span (scheduling.md §8).
        if reference && (!self.modes[mode].oc.is_empty() || self.modes[mode].sc.absent_len() > 0) {
            return;
        }
        let tables: Vec<TableKey> = self.modes[mode].sc.tables().collect();
        self.modes[mode].load.tables.retain(|t, _| tables.contains(t));
        let mut budget = Budget { splits: self.cfg.load.splits_per_round };
        let round = self.modes[mode].load.round;
        for table in tables {
            let Some(spans) = self.quiet_table(mode, table, &ready) else { continue };
            self.refresh_region_counts(mode, &spans);
            let resting = self.modes[mode].load.tables.get(&table).is_some_and(|c| round < c.rest_until);
            if resting {
                continue;
            }
            let split = self.split_hot(now_ms, mode, &spans, ready.len(), &mut budget);
            let acted = split
                || (spans.len() > 1
                    && if reference {
                        // The reference's order: merge the whole table, balance, merge locally.
                        let started = |m: Merge| matches!(m, Merge::Started);
                        started(self.merge_cold(now_ms, mode, table, &spans, &ready, Scope::Whole))
                            || self.balance_traffic(now_ms, mode, table, &spans, &ready)
                            || started(self.merge_cold(now_ms, mode, table, &spans, &ready, Scope::Local))
                    } else {
                        // A table that wants merging is not balanced meanwhile (the two would
                        // undo each other's moves).
                        match self.merge_cold(now_ms, mode, table, &spans, &ready, Scope::Any) {
                            Merge::Started => true,
                            Merge::Wanted => false,
                            Merge::No => self.balance_traffic(now_ms, mode, table, &spans, &ready),
                        }
                    });
            if acted {
                // Ours: nothing more on the table until its every sample was taken after this.
                let rest = if reference { 0 } else { window as u64 };
                let check = self.modes[mode].load.tables.entry(table).or_default();
                check.rest_until = round + rest;
                check.score = 0;
                check.extremes = None;
                if reference {
                    check.merge_wanted = 0;
                }
            }
        }
    }

    /// Reads the region count of each span whose count is missing or older than
    /// `REGION_REFRESH_ROUNDS` (with region checks off, none).
    fn refresh_region_counts(&mut self, mode: Mode, spans: &[SpanRecord]) {
        const REGION_REFRESH_ROUNDS: u64 = 4;
        if self.cfg.load.region_threshold == 0 {
            return;
        }
        let round = self.modes[mode].load.round;
        for r in spans {
            let counts = &self.modes[mode].load.region_counts;
            if counts.get(&r.id).is_some_and(|c| round < c.1 + REGION_REFRESH_ROUNDS) {
                continue;
            }
            let got = self.regions.regions(&r.span).ok().and_then(|g| clamp(&r.span, &g));
            let count = got.map_or(0, |g| g.len() as u64);
            self.modes[mode].load.region_counts.insert(r.id, (count, round));
        }
    }

    /// Splits the hot or region-heavy spans of one quiet table, within the round's budget.
    fn split_hot(
        &mut self,
        now_ms: u64,
        mode: Mode,
        spans: &[SpanRecord],
        nodes: usize,
        budget: &mut Budget,
    ) -> bool {
        let window = self.cfg.load.window;
        let mut acted = false;
        for record in spans {
            if budget.splits == 0 {
                break;
            }
            let Some(pieces) = self.split_wanted(mode, record, nodes) else { continue };
            let round = self.modes[mode].load.round;
            match pieces {
                Some(pieces) => {
                    if let Some(op) = Operator::split(record, pieces) {
                        if self.admit(now_ms, mode, op).is_ok() {
                            budget.splits -= 1;
                            acted = true;
                            self.started(mode, record, OperatorKind::Split, None, "traffic or regions");
                        }
                    }
                }
                None => {
                    // It cannot be cut (one region, fewer regions than pieces, no answer). The
                    // reference retries it every round and nothing else of its table runs (H2);
                    // we set it aside for a window and go on with the table.
                    match self.cfg.load.rules {
                        Rules::Ours => {
                            self.modes[mode].load.unsplittable.insert(record.id, round + window as u64);
                        }
                        Rules::Reference => return true,
                    }
                }
            }
        }
        acted
    }

    /// Each ready node's traffic of the table, one sum per sample of the window (newest first).
    fn node_sums(&self, mode: Mode, spans: &[SpanRecord], ready: &[NodeId]) -> BTreeMap<NodeId, Vec<f64>> {
        let window = self.cfg.load.window;
        let load = &self.modes[mode].load;
        let mut sums: BTreeMap<NodeId, Vec<f64>> =
            ready.iter().map(|n| (n.clone(), vec![0.0; window])).collect();
        for r in spans {
            let Some(sum) = r.node.as_ref().and_then(|n| sums.get_mut(n)) else { continue };
            load.add_window(r.id, sum);
        }
        sums
    }

    /// Traffic balance of a split table across nodes: when the most loaded node stays above
    /// `max-traffic-percentage` of the mean (or the least below `min-traffic-percentage`) in
    /// every sample of the window, with the same two nodes, move spans from the most to the
    /// least loaded node whose traffic sums to at most the smaller of the two gaps to the mean
    /// (L9: no overshoot), at most four; with none small enough, split the largest that fits
    /// twice the gap in two. Ours acts on the first such window (all of it taken since the
    /// table's last change); the reference's rules wait `balance-score-threshold` rounds.
    fn balance_traffic(
        &mut self,
        now_ms: u64,
        mode: Mode,
        table: TableKey,
        spans: &[SpanRecord],
        ready: &[NodeId],
    ) -> bool {
        const MOVES_MAX: usize = 4;
        let cfg = self.cfg.load.clone();
        if ready.len() < 2 {
            return false;
        }
        let sums = self.node_sums(mode, spans, ready);
        let n = ready.len() as f64;
        let avg: Vec<f64> = (0..cfg.window).map(|i| sums.values().map(|v| v[i]).sum::<f64>() / n).collect();
        let by_newest =
            |a: &(&NodeId, &Vec<f64>), b: &(&NodeId, &Vec<f64>)| a.1[0].total_cmp(&b.1[0]).then(a.0.cmp(b.0));
        let (Some((max_node, max)), Some((min_node, min))) =
            (sums.iter().max_by(by_newest), sums.iter().min_by(by_newest))
        else {
            return false;
        };
        let (over, under, busy) = match cfg.rules {
            Rules::Ours => (
                (0..cfg.window)
                    .all(|i| max[i] > avg[i] * cfg.max_traffic_percentage && max[i] >= BALANCE_TRAFFIC_MIN),
                (0..cfg.window).all(|i| min[i] < avg[i] * cfg.min_traffic_percentage),
                max[0] >= BALANCE_TRAFFIC_MIN,
            ),
            // The reference tests the least loaded node first and then skips the other test
            // (H4); it needs some node above 1 MiB/s in some sample.
            Rules::Reference => {
                let under = (0..cfg.window).all(|i| min[i] <= avg[i] * cfg.min_traffic_percentage);
                let over = !under
                    && (0..cfg.window).all(|i| {
                        max[i] >= avg[i] * cfg.max_traffic_percentage && max[i] >= BALANCE_TRAFFIC_MIN
                    });
                (over, under, sums.values().flatten().any(|x| *x > BALANCE_TRAFFIC_MIN))
            }
        };
        let extremes = (max_node.clone(), min_node.clone());
        let check = self.modes[mode].load.tables.entry(table).or_default();
        if !(over || under) || !busy {
            check.score = 0;
            check.extremes = None;
            return false;
        }
        let needed = match cfg.rules {
            Rules::Ours => {
                check.score = if check.extremes.as_ref() == Some(&extremes) { check.score + 1 } else { 1 };
                check.extremes = Some(extremes.clone());
                1
            }
            Rules::Reference => {
                check.score_reference(&extremes.0, &extremes.1, under);
                cfg.balance_score_threshold.max(1)
            }
        };
        if check.score < needed {
            return false;
        }
        let (max_node, min_node) = extremes;
        let diff = (avg[0] - min[0]).min(max[0] - avg[0]);
        let load = &self.modes[mode].load;
        let mut on_max: Vec<(f64, &SpanRecord)> = spans
            .iter()
            .filter(|r| r.node.as_ref() == Some(&max_node))
            .map(|r| (load.newest(r.id), r))
            .collect();
        on_max.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.span.cmp(&b.1.span)));
        let mut left = diff;
        let mut picked: Vec<SpanRecord> = Vec::new();
        let mut below = on_max.len();
        while picked.len() < MOVES_MAX && left > 0.0 {
            // The largest span that fits what is left, among those below the last pick.
            let Some(i) = (0..below).rev().find(|i| on_max[*i].0 <= left && on_max[*i].0 > 0.0) else {
                break;
            };
            left -= on_max[i].0;
            picked.push(on_max[i].1.clone());
            below = i;
        }
        let mut acted = false;
        if picked.is_empty() {
            let Some(&(_, big)) = on_max.iter().rev().find(|(t, _)| *t <= 2.0 * diff).or(on_max.first())
            else {
                return false;
            };
            let regions = self.regions.regions(&big.span).ok().unwrap_or_default();
            let cut = by_written_bytes(&big.span, &regions, 2);
            if let Some(op) = cut.and_then(|p| Operator::split(big, p)) {
                if self.admit(now_ms, mode, op).is_ok() {
                    self.started(mode, big, OperatorKind::Split, None, "traffic balance");
                    acted = true;
                }
            }
            return acted;
        }
        for r in picked {
            if let Some(op) = Operator::moving(&r, min_node.clone()) {
                if self.admit(now_ms, mode, op).is_ok() {
                    self.started(mode, &r, OperatorKind::Move, None, "traffic balance");
                    acted = true;
                }
            }
        }
        acted
    }

    /// Merges of a split table that cooled down (L8: a merge product must not meet a split
    /// condition, so the margins are half the thresholds for the whole table and three quarters
    /// for a local run). After `MERGE_ROUNDS` consecutive evaluations that want one:
    /// * the whole table, when its traffic is at most half the traffic threshold in every sample
    ///   and its regions at most half the region threshold: its spans are moved (16 a round) to
    ///   the node that carries most of its traffic, then merged there in runs;
    /// * otherwise, when it has more than `2·max(⌈T/t⌉, ⌈R/rt⌉, nodes)` spans, runs of adjacent
    ///   spans on one node whose traffic and regions stay within three quarters of the
    ///   thresholds, at most eight merges a round.
    fn merge_cold(
        &mut self,
        now_ms: u64,
        mode: Mode,
        table: TableKey,
        spans: &[SpanRecord],
        ready: &[NodeId],
        scope: Scope,
    ) -> Merge {
        const MERGE_ROUNDS: u32 = 5;
        const MERGES_MAX: usize = 8;
        let cfg = self.cfg.load.clone();
        let reference = cfg.rules == Rules::Reference;
        // Ours bounds the moves and the sources of one merge; the reference does not.
        let (moves_max, sources_max) = if reference { (usize::MAX, usize::MAX) } else { (16, 64) };
        let t = cfg.traffic_threshold();
        let rt = cfg.region_threshold;
        let load = &self.modes[mode].load;
        let traffic: Vec<f64> = spans.iter().map(|r| load.newest(r.id)).collect();
        let mut totals = vec![0.0; cfg.window];
        for r in spans {
            load.add_window(r.id, &mut totals);
        }
        let regions: Vec<u64> = spans
            .iter()
            .map(|r| if rt > 0 { load.region_counts.get(&r.id).map_or(1, |c| c.0) } else { 0 })
            .collect();
        let total_regions: u64 = regions.iter().sum();
        let whole_cold =
            (t == 0.0 || totals.iter().all(|x| *x <= t / 2.0)) && (rt == 0 || total_regions <= rt / 2);
        let upper = 2 * [
            if t > 0.0 { (totals[0] / t).ceil() as usize } else { 0 },
            if rt > 0 { total_regions.div_ceil(rt) as usize } else { 0 },
            ready.len(),
        ]
        .into_iter()
        .max()
        .unwrap_or(1);
        let wanted = match scope {
            Scope::Any => whole_cold || spans.len() > upper,
            Scope::Whole => whole_cold,
            Scope::Local => !whole_cold && spans.len() > upper,
        };
        let check = self.modes[mode].load.tables.entry(table).or_default();
        if !wanted {
            if scope != Scope::Whole {
                check.merge_wanted = 0;
            }
            return Merge::No;
        }
        // The reference's whole-table merge is undamped (H9).
        let undamped = reference && whole_cold;
        if !undamped {
            check.merge_wanted += 1;
        }
        if !undamped && check.merge_wanted < MERGE_ROUNDS {
            return Merge::Wanted;
        }
        // Runs of adjacent spans on one node within the limits (the whole table: no limit).
        let fits = |traffic: f64, regions: u64| {
            whole_cold || ((t == 0.0 || traffic <= 0.75 * t) && (rt == 0 || regions <= rt / 4 * 3))
        };
        if whole_cold {
            // Gather on the node carrying most of the table's traffic (then most spans, then id).
            let mut per_node: BTreeMap<&NodeId, (f64, usize)> = BTreeMap::new();
            for (r, x) in spans.iter().zip(&traffic) {
                if let Some(n) = &r.node {
                    let e = per_node.entry(n).or_default();
                    e.0 += x;
                    e.1 += 1;
                }
            }
            let Some(target) = per_node
                .iter()
                .max_by(|a, b| a.1 .0.total_cmp(&b.1 .0).then(a.1 .1.cmp(&b.1 .1)).then(b.0.cmp(a.0)))
                .map(|(n, _)| (*n).clone())
            else {
                return Merge::Wanted;
            };
            let away: Vec<&SpanRecord> = spans.iter().filter(|r| r.node.as_ref() != Some(&target)).collect();
            if !away.is_empty() {
                let mut acted = false;
                for r in away.into_iter().take(moves_max) {
                    if let Some(op) = Operator::moving(r, target.clone()) {
                        if self.admit(now_ms, mode, op).is_ok() {
                            self.started(mode, r, OperatorKind::Move, None, "move to merge a cold table");
                            acted = true;
                        }
                    }
                }
                return if acted { Merge::Started } else { Merge::Wanted };
            }
        }
        let mut runs: Vec<Vec<usize>> = Vec::new();
        let mut run: Vec<usize> = Vec::new();
        let close = |run: &mut Vec<usize>, runs: &mut Vec<Vec<usize>>| {
            if run.len() >= 2 {
                runs.push(std::mem::take(run));
            }
            run.clear();
        };
        for i in 0..spans.len() {
            let joins = run.last().is_some_and(|last| {
                let sum_t: f64 = run.iter().map(|j| traffic[*j]).sum::<f64>() + traffic[i];
                let sum_r: u64 = run.iter().map(|j| regions[*j]).sum::<u64>() + regions[i];
                spans[*last].node == spans[i].node
                    && spans[*last].span.is_followed_by(&spans[i].span)
                    && run.len() < sources_max
                    && fits(sum_t, sum_r)
            });
            if !joins {
                close(&mut run, &mut runs);
            }
            run.push(i);
        }
        close(&mut run, &mut runs);
        let mut acted = false;
        for run in runs.into_iter().take(MERGES_MAX) {
            let ids: Vec<DispatcherId> = run.iter().map(|i| spans[*i].id).collect();
            let (first, last) = (&spans[run[0]], &spans[run[run.len() - 1]]);
            let union = first.span.joined_with(&last.span);
            if self.start_merge(now_ms, mode, &ids).is_ok() {
                self.started(mode, first, OperatorKind::Merge, Some(union), "cold spans");
                acted = true;
            }
        }
        if !acted {
            return Merge::Wanted;
        }
        if let Some(check) = self.modes[mode].load.tables.get_mut(&table) {
            check.merge_wanted = 0;
        }
        Merge::Started
    }

    /// The spans of `table` in key order if the table may be reshaped now.
    fn quiet_table(&self, mode: Mode, table: TableKey, ready: &[NodeId]) -> Option<Vec<SpanRecord>> {
        let state = &self.modes[mode];
        let window = self.cfg.load.window;
        let mut spans = Vec::new();
        for r in state.sc.table(table) {
            let quiet = r.state == SpanState::Replicating
                && r.block.is_none()
                && state.load.full(r.id, window)
                && state.oc.get(r.id).is_none()
                && r.node.as_ref().is_some_and(|n| ready.contains(n));
            if !quiet {
                return None;
            }
            spans.push(r);
        }
        if spans.is_empty() || spans.iter().any(|r| state.barrier.writing(r.id)) {
            return None;
        }
        Some(spans.into_iter().cloned().collect())
    }

    /// `None`: no split wanted. `Some(None)`: wanted but the span cannot be cut. `Some(Some(p))`:
    /// cut into `p`.
    #[allow(clippy::option_option)]
    fn split_wanted(&self, mode: Mode, record: &SpanRecord, nodes: usize) -> Option<Option<Vec<TableSpan>>> {
        let cfg = &self.cfg.load;
        let load = &self.modes[mode].load;
        if load.unsplittable.get(&record.id).is_some_and(|again| load.round < *again) {
            return None;
        }
        let t = cfg.traffic_threshold();
        let rt = cfg.region_threshold;
        let whole = record.span == TableSpan::whole_table(record.span.keyspace_id, record.span.table_id);
        let newest = load.newest(record.id);
        let hot = t > 0.0
            && match cfg.rules {
                Rules::Ours => load.samples(record.id).all(|s| s >= t),
                // The reference's traffic score: three hot samples in a row for a whole table,
                // four for a piece (scheduling.md §5.1, §5.2).
                Rules::Reference => load.streak(record.id) >= if whole { 3 } else { 4 },
            };
        let count = load.region_counts.get(&record.id).map_or(0, |c| c.0);
        // Whole tables split at the threshold, parts above it (the reference's margins).
        let many = rt > 0 && if whole { count >= rt } else { count > rt };
        if !hot && !many {
            return None;
        }
        let regions = self.regions.regions(&record.span).ok().and_then(|r| clamp(&record.span, &r));
        let count = regions.as_ref().map_or(0, Vec::len) as u64;
        let reference = cfg.rules == Rules::Reference;
        let mut pieces = if hot {
            let share = if reference { 1.0 } else { PIECE_SHARE };
            (newest / (t * share)).ceil() as usize
        } else {
            count.div_ceil(rt.max(1)) as usize
        };
        if whole {
            // Ours: a multiple of the node count, so pieces of equal traffic spread evenly.
            pieces = if reference {
                (2 * pieces).max(2 * nodes)
            } else {
                pieces.div_ceil(nodes.max(1)) * nodes.max(1)
            };
        }
        let pieces = pieces.clamp(2, 1_000);
        let regions = regions.unwrap_or_default();
        let cut = if hot && regions.len() < WRITE_BYTES_REGIONS_MAX {
            by_written_bytes(&record.span, &regions, pieces)
        } else {
            by_region_count(&record.span, &regions, pieces)
        };
        Some(cut)
    }

    /// The pieces a new table is cut into before it is first placed: by region count when the
    /// table has more regions than the threshold (load-driven scheduling on), else `parts` even
    /// pieces.
    pub(in crate::maintainer) fn initial_pieces(&self, whole: &TableSpan, parts: usize) -> Vec<TableSpan> {
        let cfg = &self.cfg.load;
        if cfg.across_nodes && cfg.region_threshold > 0 {
            if let Some(regions) = self.regions.regions(whole).ok().and_then(|r| clamp(whole, &r)) {
                let n =
                    presplit_pieces(regions.len() as u64, cfg.region_threshold, cfg.region_count_per_span);
                if let Some(pieces) = by_region_count(whole, &regions, n) {
                    return pieces;
                }
            }
        }
        if parts > 1 {
            if let Some(pieces) = whole.split_even(parts) {
                return pieces;
            }
        }
        vec![whole.clone()]
    }

    /// Where an absent span of a split table goes under our rules: the ready node with the fewest
    /// spans of that table, then the least traffic of it, then the fewest spans of the mode. So
    /// the pieces of a hot table's split (equal in written bytes) land on different nodes at
    /// once, instead of all by count and moved by traffic balance rounds later.
    pub(in crate::maintainer) fn spread_target(
        &self,
        mode: Mode,
        record: &SpanRecord,
        load: &BTreeMap<NodeId, usize>,
        placed: &BTreeMap<(TableKey, NodeId), usize>,
    ) -> Option<NodeId> {
        let cfg = &self.cfg.load;
        if !cfg.across_nodes || cfg.rules != Rules::Ours {
            return None;
        }
        let table = record.table();
        let state = &self.modes[mode];
        let mut spans_of: BTreeMap<NodeId, (usize, f64)> = BTreeMap::new();
        let mut split = false;
        for r in state.sc.table(table) {
            if r.id != record.id {
                split = true;
            }
            if let Some(n) = &r.node {
                let e = spans_of.entry(n.clone()).or_default();
                e.0 += 1;
                e.1 += state.load.newest(r.id);
            }
        }
        if !split {
            return None;
        }
        load.iter()
            .map(|(n, count)| {
                let (spans, traffic) = spans_of.get(n).copied().unwrap_or_default();
                let spans = spans + placed.get(&(table, n.clone())).copied().unwrap_or(0);
                (spans, traffic, *count, n)
            })
            .min_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)).then(a.3.cmp(b.3)))
            .map(|(_, _, _, n)| n.clone())
    }

    fn started(
        &mut self,
        mode: Mode,
        r: &SpanRecord,
        kind: OperatorKind,
        span: Option<TableSpan>,
        reason: &'static str,
    ) {
        let span = span.unwrap_or_else(|| r.span.clone());
        self.effects.push(Output::SchedulerStarted { mode, id: r.id, kind, span, reason });
    }
}
