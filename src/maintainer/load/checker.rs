//! One round of load-driven decisions for one mode, and the placement of a split table's absent
//! pieces by traffic.
//!
//! A table is looked at only when it is quiet: no operator on any of its spans, every span
//! replicating, none waiting at a DDL or syncpoint (the barrier decides when those move, B1), and
//! every span with a full window of samples (L4, L6). A round starts at most
//! [`LoadConfig::splits_per_round`](super::LoadConfig) splits over all tables (L7).

use std::collections::BTreeMap;

use crate::ids::{DispatcherId, Mode, NodeId, Ts};
use crate::maintainer::core::Maintainer;
use crate::maintainer::event::Output;
use crate::maintainer::operator::{Operator, OperatorKind};
use crate::maintainer::spans::{SpanRecord, SpanState, TableKey};
use crate::mutation::Mutation;
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

/// Moves that put pairs of adjacent spans on one node so they can be merged (ours; the
/// reference's move-for-merge, without its randomness): for each pair of neighbours on
/// different nodes whose sum fits the merge limits (`fits`), the lighter goes to the other's
/// node. A move is taken when every node's traffic stays within the current extremes widened to
/// the balance tolerance around the mean, or the busiest node stays below the balance floor, so
/// traffic balance never has a reason to undo it (L8, L9); a move that would leave those bounds
/// waits for one in the opposite direction that brings them back (a compensation). At most
/// `MOVES_MAX` moves, as (row, node index).
fn move_for_merge(
    rows: &[Row],
    records: &[&SpanRecord],
    nodes: usize,
    fits: &dyn Fn(f64, u64) -> bool,
    regions: impl Fn(&Row) -> u64,
    cfg: &super::LoadConfig,
) -> Vec<(usize, usize)> {
    const MOVES_MAX: usize = 8;
    let mut traffic = vec![0.0; nodes];
    for row in rows {
        traffic[row.node] += row.newest;
    }
    let avg = traffic.iter().sum::<f64>() / nodes.max(1) as f64;
    let hi = traffic.iter().copied().fold(0.0, f64::max).max(avg * cfg.max_traffic_percentage);
    let lo = traffic.iter().copied().fold(f64::INFINITY, f64::min).min(avg * cfg.min_traffic_percentage);
    let within =
        |t: &[f64]| t.iter().all(|x| *x <= hi && *x >= lo) || t.iter().all(|x| *x < BALANCE_TRAFFIC_MIN);
    let mut taken = vec![false; rows.len()];
    let mut moves: Vec<(usize, usize)> = Vec::new();
    // A move waiting for its compensation: (row, pair partner, from, to).
    let mut waiting: Vec<(usize, usize, usize, usize)> = Vec::new();
    for i in 0..rows.len().saturating_sub(1) {
        let j = i + 1;
        if moves.len() + 2 > MOVES_MAX {
            break;
        }
        let pair_ok = !taken[i]
            && !taken[j]
            && rows[i].node != rows[j].node
            && records[i].span.is_followed_by(&records[j].span)
            && fits(rows[i].newest + rows[j].newest, regions(&rows[i]) + regions(&rows[j]));
        if !pair_ok {
            continue;
        }
        let (m, stay) = if rows[i].newest <= rows[j].newest { (i, j) } else { (j, i) };
        let (from, to, x) = (rows[m].node, rows[stay].node, rows[m].newest);
        let mut after = traffic.clone();
        after[from] -= x;
        after[to] += x;
        if within(&after) {
            traffic = after;
            moves.push((m, to));
            taken[i] = true;
            taken[j] = true;
            continue;
        }
        // Does an earlier waiting move the other way bring both within bounds?
        let partner = waiting.iter().position(|&(w, wp, wf, wt)| {
            let apart = ![i, j].contains(&w) && ![i, j].contains(&wp);
            if !apart || taken[w] || taken[wp] || wf != to || wt != from {
                return false;
            }
            let mut both = after.clone();
            both[wf] -= rows[w].newest;
            both[wt] += rows[w].newest;
            within(&both)
        });
        match partner {
            Some(k) => {
                let (w, wp, wf, wt) = waiting.swap_remove(k);
                traffic = after;
                traffic[wf] -= rows[w].newest;
                traffic[wt] += rows[w].newest;
                moves.push((w, wt));
                moves.push((m, to));
                for t in [i, j, w, wp] {
                    taken[t] = true;
                }
            }
            None => waiting.push((m, stay, from, to)),
        }
    }
    moves
}

/// One span of a quiet table as a round reads it: what the decisions need, fetched once.
#[derive(Clone, Copy)]
struct Row {
    id: DispatcherId,
    /// Its node, as an index into the round's ready nodes.
    node: usize,
    /// Its newest sample.
    newest: f64,
    /// Its region count (after the refresh; `None` with region checks off).
    regions: Option<u64>,
    /// Its region count as last read, and the round it was read.
    regions_read: Option<(u64, u64)>,
    /// Every sample of its window at or above the traffic threshold.
    hot: bool,
    /// Under the reference's rules, its run of hot samples.
    streak: u32,
    /// Found unsplittable, and not yet to be tried again.
    set_aside: bool,
    /// The table's only span.
    alone: bool,
}

/// A quiet table's rows in key order, with their windows side by side (`window` samples a
/// row, newest first).
struct Rows {
    rows: Vec<Row>,
    samples: Vec<f64>,
    window: usize,
    /// The oldest checkpoint of the table's spans.
    min_checkpoint: Ts,
}

impl Rows {
    /// Row `i`'s samples, newest first.
    fn samples(&self, i: usize) -> &[f64] {
        &self.samples[i * self.window..(i + 1) * self.window]
    }
}

/// The round's ready nodes, and where a record's node is among them. Records bound to one node
/// mostly share one allocation of its id, so the strings are compared once per allocation seen.
struct Ready {
    nodes: Vec<NodeId>,
    seen: Vec<(NodeId, Option<usize>)>,
}

impl Ready {
    const SEEN_MAX: usize = 64;

    fn new(nodes: Vec<NodeId>) -> Self {
        Self { nodes, seen: Vec::new() }
    }

    fn index(&mut self, node: &NodeId) -> Option<usize> {
        if let Some((_, at)) = self.seen.iter().find(|(n, _)| n.same_handle(node)) {
            return *at;
        }
        let at = self.nodes.iter().position(|n| n == node);
        if self.seen.len() < Self::SEEN_MAX {
            self.seen.push((node.clone(), at));
        }
        at
    }
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
    pub(in crate::maintainer) fn observe_load(
        &mut self,
        now_ms: u64,
        mode: Mode,
        id: DispatcherId,
        rate: f32,
    ) {
        let cfg = &self.cfg.load;
        if !cfg.across_nodes {
            return;
        }
        match cfg.rules {
            Rules::Ours => self.modes[mode].load.observe(id, rate),
            Rules::Reference => {
                let t = cfg.traffic_threshold();
                self.modes[mode].load.observe_sample(id, rate, now_ms, REFERENCE_SAMPLE_MS, cfg.window(), t);
            }
        }
    }

    fn load_round(&mut self, now_ms: u64, mode: Mode) {
        let window = self.cfg.load.window();
        self.modes[mode].sc.sort_tables();
        let mut ready = Ready::new(self.ready_nodes());
        let sampled: Vec<DispatcherId> = self.modes[mode]
            .sc
            .records()
            .filter(|r| {
                r.state == SpanState::Replicating && r.node.as_ref().is_some_and(|n| ready.index(n).is_some())
            })
            .map(|r| r.id)
            .collect();
        let state = &mut self.modes[mode];
        let sc = &state.sc;
        state.load.sample(|id| sc.get(id).is_some(), sc.deletions(), &sampled, window);
        let reference = self.cfg.load.rules == Rules::Reference;
        // The reference's split-table scheduler skips a round while the mode has any operator or
        // absent span (scheduling.md §8).
        if reference && (!self.modes[mode].oc.is_empty() || self.modes[mode].sc.absent_len() > 0) {
            return;
        }
        let tables: Vec<TableKey> = self.modes[mode].sc.tables().collect();
        self.modes[mode].load.tables.retain(|t, _| tables.binary_search(t).is_ok());
        let mut budget = Budget { splits: self.cfg.load.splits_per_round };
        let round = self.modes[mode].load.round;
        for table in tables {
            let Some(mut rows) = self.quiet_table(mode, table, &mut ready) else { continue };
            self.refresh_region_counts(mode, &mut rows);
            let resting = self.modes[mode].load.tables.get(&table).is_some_and(|c| round < c.rest_until);
            if resting {
                continue;
            }
            let rows = &rows;
            let ready = &ready.nodes;
            let split = self.split_hot(now_ms, mode, rows, ready.len(), &mut budget);
            let acted = split
                || (rows.rows.len() > 1
                    && if reference {
                        // The reference's order: merge the whole table, balance, merge locally.
                        let started = |m: Merge| matches!(m, Merge::Started);
                        started(self.merge_cold(now_ms, mode, table, rows, ready, Scope::Whole))
                            || self.balance_traffic(now_ms, mode, table, rows, ready)
                            || started(self.merge_cold(now_ms, mode, table, rows, ready, Scope::Local))
                    } else {
                        // A table that wants merging is not balanced meanwhile (the two would
                        // undo each other's moves).
                        match self.merge_cold(now_ms, mode, table, rows, ready, Scope::Any) {
                            Merge::Started => true,
                            Merge::Wanted => false,
                            Merge::No => self.balance_traffic(now_ms, mode, table, rows, ready),
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
    /// `REGION_REFRESH_ROUNDS` (with region checks off, none), into its row.
    fn refresh_region_counts(&mut self, mode: Mode, table: &mut Rows) {
        const REGION_REFRESH_ROUNDS: u64 = 4;
        if self.cfg.load.region_threshold == 0 {
            return;
        }
        let state = &mut self.modes[mode];
        let round = state.load.round;
        for row in &mut table.rows {
            if let Some((count, at)) = row.regions_read {
                if round < at + REGION_REFRESH_ROUNDS {
                    row.regions = Some(count);
                    continue;
                }
            }
            let Some(r) = state.sc.get(row.id) else { continue };
            let got = self.regions.regions(&r.span).ok().and_then(|g| clamp(&r.span, &g));
            let count = got.map_or(0, |g| g.len() as u64);
            state.load.set_regions(row.id, count, round);
            row.regions = Some(count);
        }
    }

    /// Splits the hot or region-heavy spans of one quiet table, within the round's budget.
    fn split_hot(
        &mut self,
        now_ms: u64,
        mode: Mode,
        table: &Rows,
        nodes: usize,
        budget: &mut Budget,
    ) -> bool {
        let window = self.cfg.load.window();
        let mut acted = false;
        for (i, row) in table.rows.iter().enumerate() {
            if budget.splits == 0 {
                break;
            }
            let Some(pieces) = self.split_wanted(mode, table, i, nodes) else { continue };
            let round = self.modes[mode].load.round;
            match pieces {
                Some(pieces) => {
                    let Some(record) = self.modes[mode].sc.get(row.id).cloned() else { continue };
                    if let Some(op) = Operator::split(&record, pieces) {
                        if self.admit(now_ms, mode, op).is_ok() {
                            budget.splits -= 1;
                            acted = true;
                            self.started(mode, &record, OperatorKind::Split, None, "traffic or regions");
                        }
                    }
                }
                None => {
                    // It cannot be cut (one region, fewer regions than pieces, no answer). The
                    // reference retries it every round and nothing else of its table runs (H2);
                    // we set it aside for a window and go on with the table.
                    match self.cfg.load.rules {
                        Rules::Ours => {
                            self.modes[mode].load.unsplittable.insert(row.id, round + window as u64);
                        }
                        Rules::Reference => return true,
                    }
                }
            }
        }
        acted
    }

    /// Each ready node's traffic of the table, one sum per sample of the window (newest first),
    /// node after node.
    fn node_sums(&self, table: &Rows, nodes: usize) -> Vec<f64> {
        let w = table.window;
        let mut sums = vec![0.0; nodes * w];
        for (i, row) in table.rows.iter().enumerate() {
            for (sum, s) in sums[row.node * w..(row.node + 1) * w].iter_mut().zip(table.samples(i)) {
                *sum += s;
            }
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
        table_key: TableKey,
        table: &Rows,
        ready: &[NodeId],
    ) -> bool {
        const MOVES_MAX: usize = 4;
        let cfg = &self.cfg.load;
        let w = cfg.window();
        if ready.len() < 2 {
            return false;
        }
        let sums = self.node_sums(table, ready.len());
        let node = |i: usize| &sums[i * w..(i + 1) * w];
        let n = ready.len() as f64;
        let avg: Vec<f64> = (0..w).map(|k| (0..ready.len()).map(|i| node(i)[k]).sum::<f64>() / n).collect();
        // The most and least loaded by the newest sample, ties to the node id.
        let by_newest =
            |a: &usize, b: &usize| node(*a)[0].total_cmp(&node(*b)[0]).then(ready[*a].cmp(&ready[*b]));
        let (Some(max_ix), Some(min_ix)) =
            ((0..ready.len()).max_by(by_newest), (0..ready.len()).min_by(by_newest))
        else {
            return false;
        };
        let (max, min) = (node(max_ix), node(min_ix));
        let (over, under, busy) = match cfg.rules {
            // Ours: the busiest node above 1 MiB/s in every sample, whichever side is off (one
            // busy sample of an idle table is a spike, not a load to spread).
            Rules::Ours => (
                (0..w).all(|i| max[i] > avg[i] * cfg.max_traffic_percentage),
                (0..w).all(|i| min[i] < avg[i] * cfg.min_traffic_percentage),
                max.iter().all(|x| *x >= BALANCE_TRAFFIC_MIN),
            ),
            // The reference tests the least loaded node first and then skips the other test
            // (H4); it needs some node above 1 MiB/s in some sample.
            Rules::Reference => {
                let under = (0..w).all(|i| min[i] <= avg[i] * cfg.min_traffic_percentage);
                let over = !under
                    && (0..w).all(|i| {
                        max[i] >= avg[i] * cfg.max_traffic_percentage && max[i] >= BALANCE_TRAFFIC_MIN
                    });
                (over, under, sums.iter().any(|x| *x > BALANCE_TRAFFIC_MIN))
            }
        };
        let (rules, threshold) = (cfg.rules, cfg.balance_score_threshold);
        let check = self.modes[mode].load.tables.entry(table_key).or_default();
        if !(over || under) || !busy {
            check.score = 0;
            check.extremes = None;
            return false;
        }
        let (max_node, min_node) = (&ready[max_ix], &ready[min_ix]);
        let needed = match rules {
            Rules::Ours => {
                let same = check.extremes.as_ref().is_some_and(|(a, b)| a == max_node && b == min_node);
                check.score = if same { check.score + 1 } else { 1 };
                check.extremes = Some((max_node.clone(), min_node.clone()));
                1
            }
            Rules::Reference => {
                check.score_reference(max_node, min_node, under);
                threshold.max(1)
            }
        };
        if check.score < needed {
            return false;
        }
        let diff = (avg[0] - min[0]).min(max[0] - avg[0]);
        let sc = &self.modes[mode].sc;
        let mut on_max: Vec<(f64, &SpanRecord)> = table
            .rows
            .iter()
            .filter(|row| row.node == max_ix)
            .filter_map(|row| Some((row.newest, sc.get(row.id)?)))
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
        let min_node = min_node.clone();
        if picked.is_empty() {
            let Some(big) = on_max
                .iter()
                .rev()
                .find(|(t, _)| *t <= 2.0 * diff)
                .or(on_max.first())
                .map(|(_, r)| (*r).clone())
            else {
                return false;
            };
            let regions = self.regions.regions(&big.span).ok().unwrap_or_default();
            let cut = by_written_bytes(&big.span, &regions, 2);
            if let Some(op) = cut.and_then(|p| Operator::split(&big, p)) {
                if self.admit(now_ms, mode, op).is_ok() {
                    self.started(mode, &big, OperatorKind::Split, None, "traffic balance");
                    return true;
                }
            }
            return false;
        }
        let moves = picked.into_iter().map(|r| (r, min_node.clone())).collect();
        self.start_moves(now_ms, mode, moves, "traffic balance")
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
        table_key: TableKey,
        table: &Rows,
        ready: &[NodeId],
        scope: Scope,
    ) -> Merge {
        const MERGE_ROUNDS: u32 = 5;
        const MERGES_MAX: usize = 8;
        let cfg = &self.cfg.load;
        let reference = cfg.rules == Rules::Reference;
        // Ours bounds the moves and the sources of one merge; the reference does not.
        let (moves_max, sources_max) = if reference { (usize::MAX, usize::MAX) } else { (16, 64) };
        let t = cfg.traffic_threshold();
        let rt = cfg.region_threshold;
        let rows = &table.rows;
        let mut totals = vec![0.0; cfg.window()];
        for i in 0..rows.len() {
            for (sum, s) in totals.iter_mut().zip(table.samples(i)) {
                *sum += s;
            }
        }
        let regions = |row: &Row| if rt > 0 { row.regions.unwrap_or(1) } else { 0 };
        let total_regions: u64 = rows.iter().map(regions).sum();
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
            Scope::Any => whole_cold || rows.len() > upper,
            Scope::Whole => whole_cold,
            Scope::Local => !whole_cold && rows.len() > upper,
        };
        // L10: no merge while the table lags (the reference gates its local merges only, H9);
        // the clock is asked only when a merge is wanted.
        let gated = !(reference && whole_cold);
        let lagging = wanted
            && gated
            && self
                .regions
                .lag_ms(now_ms, table.min_checkpoint)
                .is_some_and(|lag| lag > cfg.merge_lag_max_ms);
        let check = self.modes[mode].load.tables.entry(table_key).or_default();
        if !wanted || lagging {
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
        let sc = &self.modes[mode].sc;
        let Some(records) = rows.iter().map(|row| sc.get(row.id)).collect::<Option<Vec<&SpanRecord>>>()
        else {
            return Merge::Wanted;
        };
        if whole_cold {
            // Gather on the node carrying most of the table's traffic (then most spans, then id).
            let mut per_node: Vec<(f64, usize)> = vec![(0.0, 0); ready.len()];
            for row in rows {
                per_node[row.node].0 += row.newest;
                per_node[row.node].1 += 1;
            }
            let Some(target) = (0..ready.len()).filter(|i| per_node[*i].1 > 0).max_by(|a, b| {
                let (x, y) = (per_node[*a], per_node[*b]);
                x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)).then(ready[*b].cmp(&ready[*a]))
            }) else {
                return Merge::Wanted;
            };
            let away: Vec<SpanRecord> = rows
                .iter()
                .zip(&records)
                .filter(|(row, _)| row.node != target)
                .take(moves_max)
                .map(|(_, r)| (*r).clone())
                .collect();
            if !away.is_empty() {
                let target = ready[target].clone();
                let moves = away.into_iter().map(|r| (r, target.clone())).collect();
                let acted = self.start_moves(now_ms, mode, moves, "move to merge a cold table");
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
        for i in 0..rows.len() {
            let joins = run.last().is_some_and(|last| {
                let sum_t: f64 = run.iter().map(|j| rows[*j].newest).sum::<f64>() + rows[i].newest;
                let sum_r: u64 = run.iter().map(|j| regions(&rows[*j])).sum::<u64>() + regions(&rows[i]);
                rows[*last].node == rows[i].node
                    && records[*last].span.is_followed_by(&records[i].span)
                    && run.len() < sources_max
                    && fits(sum_t, sum_r)
            });
            if !joins {
                close(&mut run, &mut runs);
            }
            run.push(i);
        }
        close(&mut run, &mut runs);
        if runs.is_empty() && !whole_cold && !reference {
            // No neighbours share a node: move some together first (the merge follows at the
            // table's next evaluation; moved spans keep their windows).
            let moves = move_for_merge(rows, &records, ready.len(), &fits, regions, cfg);
            let moves: Vec<(SpanRecord, NodeId)> =
                moves.into_iter().map(|(i, to)| (records[i].clone(), ready[to].clone())).collect();
            let acted = self.start_moves(now_ms, mode, moves, "move cold neighbours together");
            return if acted { Merge::Started } else { Merge::Wanted };
        }
        let merges: Vec<(Vec<DispatcherId>, SpanRecord, TableSpan)> = runs
            .into_iter()
            .take(MERGES_MAX)
            .map(|run| {
                let (first, last) = (records[run[0]], records[run[run.len() - 1]]);
                let ids = run.iter().map(|i| rows[*i].id).collect();
                (ids, first.clone(), first.span.joined_with(&last.span))
            })
            .collect();
        let mut acted = false;
        for (ids, first, union) in merges {
            if self.start_merge(now_ms, mode, &ids).is_ok() {
                self.started(mode, &first, OperatorKind::Merge, Some(union), "cold spans");
                acted = true;
            }
        }
        if !acted {
            return Merge::Wanted;
        }
        if let Some(check) = self.modes[mode].load.tables.get_mut(&table_key) {
            check.merge_wanted = 0;
        }
        Merge::Started
    }

    /// The spans of `table` in key order, read once, if the table may be reshaped now.
    fn quiet_table(&self, mode: Mode, table: TableKey, ready: &mut Ready) -> Option<Rows> {
        let state = &self.modes[mode];
        let window = self.cfg.load.window();
        let t = self.cfg.load.traffic_threshold();
        let round = state.load.round;
        let mut rows = Rows { rows: Vec::new(), samples: Vec::new(), window, min_checkpoint: Ts::MAX };
        // Most rounds find no operator and nothing set aside: those lookups are skipped then.
        let operators = !state.oc.is_empty();
        let set_aside = !state.load.unsplittable.is_empty();
        let partial = self.cfg.mutation.has(Mutation::LoadPartialWindows);
        for r in state.sc.table(table) {
            if r.state != SpanState::Replicating
                || r.block.is_some()
                || (operators && state.oc.get(r.id).is_some())
            {
                return None;
            }
            let node = ready.index(r.node.as_ref()?)?;
            let load = state.load.span(r.id).filter(|l| partial || l.window.len() >= window)?;
            rows.min_checkpoint = rows.min_checkpoint.min(r.checkpoint);
            let samples = load.window.as_slice();
            rows.samples.extend(samples.iter().take(window));
            rows.samples.extend(std::iter::repeat_n(0.0, window.saturating_sub(samples.len())));
            rows.rows.push(Row {
                id: r.id,
                node,
                newest: load.window.front().unwrap_or(0.0),
                regions: None,
                regions_read: load.regions,
                hot: t > 0.0 && samples.iter().all(|s| *s >= t),
                streak: load.streak,
                set_aside: set_aside
                    && state.load.unsplittable.get(&r.id).is_some_and(|again| round < *again),
                alone: false,
            });
        }
        if rows.rows.is_empty() || rows.rows.iter().any(|row| state.barrier.writing(row.id)) {
            return None;
        }
        if let [only] = rows.rows.as_mut_slice() {
            only.alone = true;
        }
        Some(rows)
    }

    /// `None`: no split wanted. `Some(None)`: wanted but the span cannot be cut. `Some(Some(p))`:
    /// cut into `p`.
    #[allow(clippy::option_option)]
    fn split_wanted(
        &self,
        mode: Mode,
        table: &Rows,
        i: usize,
        nodes: usize,
    ) -> Option<Option<Vec<TableSpan>>> {
        let cfg = &self.cfg.load;
        let row = &table.rows[i];
        if row.set_aside {
            return None;
        }
        let record = self.modes[mode].sc.get(row.id)?;
        let t = cfg.traffic_threshold();
        let rt = cfg.region_threshold;
        // Only the table's one span can be the whole table.
        let whole =
            row.alone && record.span == TableSpan::whole_table(record.span.keyspace_id, record.span.table_id);
        let hot = t > 0.0
            && match cfg.rules {
                Rules::Ours => row.hot,
                // The reference's traffic score: three hot samples in a row for a whole table,
                // four for a piece (scheduling.md §5.1, §5.2).
                Rules::Reference => row.streak >= if whole { 3 } else { 4 },
            };
        let count = row.regions.unwrap_or(0);
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
            (row.newest / (t * share)).ceil() as usize
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

    /// Starts a move of each span to its node; whether any was admitted.
    fn start_moves(
        &mut self,
        now_ms: u64,
        mode: Mode,
        moves: Vec<(SpanRecord, NodeId)>,
        reason: &'static str,
    ) -> bool {
        let mut acted = false;
        for (r, to) in moves {
            if let Some(op) = Operator::moving(&r, to) {
                if self.admit(now_ms, mode, op).is_ok() {
                    self.started(mode, &r, OperatorKind::Move, None, reason);
                    acted = true;
                }
            }
        }
        acted
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
