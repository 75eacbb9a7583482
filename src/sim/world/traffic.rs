//! The upstream's writes in the simulator: each table has a write rate spread over its key range
//! (piecewise even: `set_load` rewrites a part of it) and a number of equal-width regions. The
//! simulated dispatchers report the rate of the part they cover (the simulated sink keeps up), and
//! the maintainer's [`RegionSource`] is this model, read through a [`Swap`] so the world can
//! change it while the maintainer holds it.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::maintainer::load::{Region, RegionSource};
use crate::span::TableSpan;
use crate::sync::Swap;

const END: u128 = 1 << 64;

/// Written bytes of a region: its rate over this many seconds.
const REGION_WINDOW_S: f64 = 60.0;

/// One table's writes.
#[derive(Clone, Debug, PartialEq)]
struct TableTraffic {
    regions: u64,
    /// `(from, density)`, sorted by `from`, the first at 0: from each `from` up to the next one
    /// (or 1), the table is written at `density` bytes per second per unit of key range.
    steps: Vec<(f64, f64)>,
}

impl TableTraffic {
    fn new(regions: u64, bytes_per_s: f64) -> Self {
        Self { regions: regions.max(1), steps: vec![(0.0, bytes_per_s.max(0.0))] }
    }

    /// Bytes per second written to `[a, b)` (fractions of the key range).
    fn rate(&self, a: f64, b: f64) -> f64 {
        let mut total = 0.0;
        for (i, (from, density)) in self.steps.iter().enumerate() {
            let to = self.steps.get(i + 1).map_or(1.0, |s| s.0);
            let (lo, hi) = (a.max(*from), b.min(to));
            if hi > lo {
                total += (hi - lo) * density;
            }
        }
        total
    }

    fn density_at(&self, x: f64) -> f64 {
        self.steps.iter().take_while(|(from, _)| *from <= x).last().map_or(0.0, |s| s.1)
    }

    fn set(&mut self, from: f64, to: f64, bytes_per_s: f64) {
        let density = bytes_per_s.max(0.0) / (to - from);
        let after = self.density_at(to);
        let mut steps: Vec<(f64, f64)> = self.steps.iter().copied().filter(|(x, _)| *x < from).collect();
        steps.push((from, density));
        if to < 1.0 {
            steps.push((to, after));
        }
        steps.extend(self.steps.iter().copied().filter(|(x, _)| *x > to));
        self.steps = steps;
    }
}

/// The upstream's writes and regions, per table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Traffic {
    tables: BTreeMap<i64, TableTraffic>,
}

fn fraction(position: u128) -> f64 {
    position as f64 / END as f64
}

impl Traffic {
    /// Declares `table` with `regions` regions written at `bytes_per_s` evenly.
    pub fn set_table(&mut self, table: i64, regions: u64, bytes_per_s: f64) {
        self.tables.insert(table, TableTraffic::new(regions, bytes_per_s));
    }

    /// From now on `[from, to)` of the table is written at `bytes_per_s` in total.
    pub fn set_load(&mut self, table: i64, bytes_per_s: f64, from: f64, to: f64) {
        let t = self.tables.entry(table).or_insert_with(|| TableTraffic::new(1, 0.0));
        if from < to {
            t.set(from, to, bytes_per_s);
        }
    }

    /// The table now has `count` equal regions.
    pub fn set_regions(&mut self, table: i64, count: u64) {
        self.tables.entry(table).or_insert_with(|| TableTraffic::new(1, 0.0)).regions = count.max(1);
    }

    /// Bytes per second written to `span` (0 for a table the model does not know).
    pub fn rate(&self, span: &TableSpan) -> f64 {
        let (Some(t), Some((lo, hi))) = (self.tables.get(&span.table_id), span.positions()) else {
            return 0.0;
        };
        t.rate(fraction(lo), fraction(hi))
    }

    /// The regions of `table` overlapping `span`, with the bytes written to each over a minute.
    pub fn regions(&self, span: &TableSpan) -> Vec<Region> {
        let whole = || {
            vec![Region {
                start_key: span.start_key.clone(),
                end_key: span.end_key.clone(),
                written_bytes: 0,
            }]
        };
        let (Some(t), Some((lo, hi))) = (self.tables.get(&span.table_id), span.positions()) else {
            return whole();
        };
        let n = u128::from(t.regions);
        let first = lo * n / END;
        let last = (hi * n).div_ceil(END).min(n);
        (first..last)
            .filter_map(|i| {
                let (a, b) = (i * END / n, (i + 1) * END / n);
                let s = TableSpan::at_positions(span.keyspace_id, span.table_id, a, b)?;
                let bytes = t.rate(fraction(a), fraction(b)) * REGION_WINDOW_S;
                Some(Region { start_key: s.start_key, end_key: s.end_key, written_bytes: bytes as u64 })
            })
            .collect()
    }
}

/// The maintainer's region source in the simulator.
pub struct SimRegions(pub Arc<Swap<Traffic>>);

impl RegionSource for SimRegions {
    fn regions(&self, span: &TableSpan) -> Result<Vec<Region>, String> {
        Ok(self.0.with(|t| t.regions(span)))
    }

    /// The maintainer runs on the simulated clock, and upstream ts count milliseconds.
    fn lag_ms(&self, now_ms: u64, checkpoint: crate::ids::Ts) -> Option<u64> {
        Some(super::upstream_ts(now_ms).saturating_sub(checkpoint))
    }
}

/// Replaces the model with `f` applied to a copy (the world is its only writer).
pub fn update(cell: &Swap<Traffic>, f: impl FnOnce(&mut Traffic)) {
    let current = cell.load();
    let mut next = (*current).clone();
    f(&mut next);
    let _ = cell.compare_and_swap(&current, Arc::new(next));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_load_rewrites_a_part_and_keeps_the_rest() {
        let mut t = Traffic::default();
        t.set_table(1, 4, 400.0);
        let whole = TableSpan::whole_table(0, 1);
        assert!((t.rate(&whole) - 400.0).abs() < 1e-6);
        t.set_load(1, 1_000.0, 0.5, 0.75);
        // [0, .5) at 400/unit = 200, [.5, .75) = 1000, [.75, 1) at 400/unit = 100.
        assert!((t.rate(&whole) - 1_300.0).abs() < 1e-6);
        let right = TableSpan::at_positions(0, 1, END / 2, END).unwrap();
        assert!((t.rate(&right) - 1_100.0).abs() < 1e-6);
        let regions = t.regions(&whole);
        assert_eq!(regions.len(), 4);
        assert_eq!(regions[2].written_bytes, 60_000);
        let part = TableSpan::at_positions(0, 1, END / 8, END / 2).unwrap();
        assert_eq!(t.regions(&part).len(), 2);
    }
}
