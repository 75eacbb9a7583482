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
use super::Rules;

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
    pub(in crate::maintainer) fn observe_load(&mut self, mode: Mode, id: DispatcherId, rate: f32) {
        if self.cfg.load.across_nodes {
            self.modes[mode].load.observe(id, rate);
        }
    }

    fn load_round(&mut self, now_ms: u64, mode: Mode) {
        let window = self.cfg.load.window;
        let ready = self.ready_nodes();
        let live: Vec<DispatcherId> = self.modes[mode]
            .sc
            .records()
            .filter(|r| {
                r.state == SpanState::Replicating && r.node.as_ref().is_some_and(|n| ready.contains(n))
            })
            .map(|r| r.id)
            .collect();
        self.modes[mode].load.sample(&live, window);
        let mut splits_left = self.cfg.load.splits_per_round;
        let tables: Vec<TableKey> = self.modes[mode].sc.tables().collect();
        for table in tables {
            if splits_left == 0 {
                break;
            }
            let Some(spans) = self.quiet_table(mode, table, &ready) else { continue };
            for record in spans {
                if splits_left == 0 {
                    break;
                }
                let Some(pieces) = self.split_wanted(mode, &record, ready.len()) else { continue };
                let round = self.modes[mode].load.round;
                match pieces {
                    Some(pieces) => {
                        if let Some(op) = Operator::split(&record, pieces) {
                            if self.admit(now_ms, mode, op).is_ok() {
                                splits_left -= 1;
                                self.started(mode, record.id, OperatorKind::Split, "traffic or regions");
                            }
                        }
                    }
                    None => {
                        // It cannot be cut (one region, fewer regions than pieces, no answer).
                        // The reference retries it every round and nothing else of its table runs
                        // (H2); we wait a full window before trying it again.
                        if self.cfg.load.rules == Rules::Ours {
                            let again = round + window as u64;
                            self.modes[mode].load.unsplittable.insert(record.id, again);
                        }
                    }
                }
            }
        }
    }

    /// The spans of `table` in key order if the table may be reshaped now.
    fn quiet_table(&self, mode: Mode, table: TableKey, ready: &[NodeId]) -> Option<Vec<SpanRecord>> {
        let state = &self.modes[mode];
        let mut spans: Vec<SpanRecord> = state.sc.table(table).cloned().collect();
        spans.sort_by(|a, b| a.span.cmp(&b.span));
        let window = self.cfg.load.window;
        let quiet = spans.iter().all(|r| {
            r.state == SpanState::Replicating
                && r.node.as_ref().is_some_and(|n| ready.contains(n))
                && r.block.is_none()
                && state.oc.get(r.id).is_none()
                && !state.barrier.writing(r.id)
                && state.load.full(r.id, window)
        });
        (quiet && !spans.is_empty()).then_some(spans)
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
        let hot = t > 0.0 && load.samples(record.id).all(|s| s >= t);
        let regions = self.regions.regions(&record.span).ok().and_then(|r| clamp(&record.span, &r));
        let count = regions.as_ref().map_or(0, Vec::len) as u64;
        // Whole tables split at the threshold, parts above it (the reference's margins).
        let many = rt > 0 && if whole { count >= rt } else { count > rt };
        if !hot && !many {
            return None;
        }
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

    fn started(&mut self, mode: Mode, id: DispatcherId, kind: OperatorKind, reason: &'static str) {
        self.effects.push(Output::SchedulerStarted { mode, id, kind, reason });
    }
}
