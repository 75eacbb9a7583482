//! The maintainer's barrier: coverage of an event's tables by the spans that reported
//! (barrier.md §3.3), by key range, split or not.

use dispatcher_core::maintainer::barrier::Coverage;
use dispatcher_core::span::TableSpan;
use proptest::prelude::*;

/// The key at `at` thousandths of table `table`'s range (0 = its start).
fn key(table: i64, at: u16) -> Vec<u8> {
    let mut k = TableSpan::whole_table(0, table).start_key.to_vec();
    if at > 0 {
        k.extend_from_slice(b"_r");
        k.extend_from_slice(&at.to_be_bytes());
    }
    k
}

/// Table `table`'s span from `a` to `b` thousandths (1000 = the table's end).
fn part(table: i64, a: u16, b: u16) -> TableSpan {
    let end = if b >= 1000 { TableSpan::whole_table(0, table).end_key.to_vec() } else { key(table, b) };
    TableSpan::new(0, table, key(table, a), end).unwrap()
}

#[test]
fn a_whole_table_report_covers_it() {
    let mut c = Coverage::new([(0, 7)]);
    assert!(!c.covered());
    assert!(c.report(&TableSpan::whole_table(0, 7)));
    assert!(c.covered());
}

#[test]
fn split_table_is_covered_only_when_every_part_reported() {
    let mut c = Coverage::new([(0, 7)]);
    assert!(c.report(&part(7, 0, 300)));
    assert!(c.report(&part(7, 600, 1000)));
    assert!(!c.covered(), "a gap in the middle");
    assert_eq!(c.missing(), vec![(0, 7)]);
    assert!(c.report(&part(7, 300, 600)));
    assert!(c.covered());
}

#[test]
fn every_required_table_must_be_covered_and_others_are_ignored() {
    let mut c = Coverage::new([(0, 7), (0, 8)]);
    assert!(c.report(&TableSpan::whole_table(0, 7)));
    assert!(!c.report(&TableSpan::whole_table(0, 9)), "not required: ignored");
    assert!(!c.covered());
    c.mark_done(0, 8);
    assert!(c.covered(), "a table with no span left counts as covered");
    assert!(!c.report(&TableSpan::whole_table(0, 8)), "done: nothing more counts");
}

#[test]
fn overlapping_reports_cover_by_their_union_and_duplicates_count_once() {
    let mut c = Coverage::new([(0, 7)]);
    // A merge in progress: the merged span and one of its sources both report.
    assert!(c.report(&part(7, 0, 600)));
    assert!(c.report(&part(7, 300, 600)));
    assert!(c.report(&part(7, 0, 600)));
    assert!(!c.covered());
    assert!(c.report(&part(7, 500, 1000)));
    assert!(c.covered());
}

#[test]
fn a_table_trigger_requirement_is_covered_by_its_one_span() {
    let mut c = Coverage::new([(0, 0), (0, 7)]);
    assert!(c.report(&TableSpan::table_trigger(0)));
    assert!(c.report(&TableSpan::whole_table(0, 7)));
    assert!(c.covered(), "{:?}", c.missing());
}

proptest! {
    /// A table cut at random points: covered exactly when every piece reported (in any order,
    /// repeated or not), and reports of another table never help.
    #[test]
    fn covered_iff_every_piece_reported(
        mut cuts in prop::collection::btree_set(1u16..1000, 0..12),
        reported in prop::collection::vec(any::<prop::sample::Index>(), 0..30),
        other in any::<bool>(),
    ) {
        let points: Vec<u16> = std::iter::once(0).chain(std::mem::take(&mut cuts)).chain([1000]).collect();
        let pieces: Vec<TableSpan> = points.windows(2).map(|w| part(7, w[0], w[1])).collect();
        let mut c = Coverage::new([(0, 7)]);
        let mut seen = std::collections::BTreeSet::new();
        for i in &reported {
            let n = i.index(pieces.len());
            c.report(&pieces[n]);
            seen.insert(n);
        }
        if other {
            c.report(&TableSpan::whole_table(0, 8));
        }
        prop_assert_eq!(c.covered(), seen.len() == pieces.len());
    }
}
