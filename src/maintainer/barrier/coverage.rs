//! Whether the reports of a barrier event cover every table it blocks (barrier.md §3.3, the
//! span range checker): for each required table, the union of the key ranges of the spans that
//! reported equals the table's whole key range. A table may also be marked done (it has no span
//! left, so nothing can report for it). Reports for tables outside the set are ignored, and a
//! report counts once however often it comes (the reference's table-id checker counts distinct
//! table ids and lets a duplicate in the required list cover nothing: H-F; here the required set
//! is a set, and coverage is by key range whether or not the table is split).

use std::collections::{BTreeMap, BTreeSet};

use crate::span::{Key, TableSpan};

/// The key ranges (start, end) reported for one table, ordered by start.
type Ranges = BTreeSet<(Key, Key)>;

/// The coverage of one barrier event's tables by the spans that reported.
#[derive(Clone, Debug, Default)]
pub struct Coverage {
    /// Per required table (keyspace, table id): the key ranges reported so far, by start key, or
    /// `None` once the table is done.
    tables: BTreeMap<(u32, i64), Option<Ranges>>,
}

impl Coverage {
    /// A coverage requiring `tables` (keyspace, table id), none reported yet.
    pub fn new(tables: impl IntoIterator<Item = (u32, i64)>) -> Self {
        Self { tables: tables.into_iter().map(|t| (t, Some(BTreeSet::new()))).collect() }
    }

    /// A span reported. Returns whether it counted (its table is required and not done yet).
    pub fn report(&mut self, span: &TableSpan) -> bool {
        match self.tables.get_mut(&(span.keyspace_id, span.table_id)) {
            Some(Some(ranges)) => {
                ranges.insert((span.start_key.clone(), span.end_key.clone()));
                true
            }
            _ => false,
        }
    }

    /// The table has no span left (dropped, or nothing to wait for): it counts as covered.
    pub fn mark_done(&mut self, keyspace_id: u32, table_id: i64) {
        if let Some(entry) = self.tables.get_mut(&(keyspace_id, table_id)) {
            *entry = None;
        }
    }

    /// Whether every required table is covered end to end (or done).
    pub fn covered(&self) -> bool {
        self.missing().is_empty()
    }

    /// The required tables not covered yet.
    pub fn missing(&self) -> Vec<(u32, i64)> {
        self.tables
            .iter()
            .filter(|(&(keyspace, table), ranges)| {
                ranges.as_ref().is_some_and(|r| !covers(&TableSpan::whole_table(keyspace, table), r))
            })
            .map(|(&t, _)| t)
            .collect()
    }
}

/// Whether `ranges` (start, end; an empty end is unbounded), sorted by start, cover `whole`.
fn covers(whole: &TableSpan, ranges: &Ranges) -> bool {
    // How far the union reaches from the table's start, walking ranges in start order.
    let mut reached: &[u8] = &whole.start_key;
    for (start, end) in ranges {
        if &start[..] > reached {
            break; // a gap
        }
        if end.is_empty() {
            return true; // unbounded: reaches past any end
        }
        if &end[..] > reached {
            reached = end;
        }
    }
    !whole.end_key.is_empty() && reached >= &whole.end_key[..]
}
