//! Load-driven scheduling, one decision per test: the maintainer driven by scripted heartbeats
//! that carry each span's traffic, with a region source of equal regions.

use dispatcher_core::maintainer::load::{Region, RegionSource};
use dispatcher_core::maintainer::{Event, Maintainer, OperatorKind, Output};
use dispatcher_core::messages::{ComponentState, DispatcherStatus, Heartbeat};
use dispatcher_core::span::TableSpan;

use super::harness::*;

const MIB: f32 = 1024.0 * 1024.0;
const ROUND: u64 = 1_000;
const END: u128 = 1 << 64;

/// Every table has `regions` equal regions with equal writes.
struct Equal {
    regions: u128,
}

impl RegionSource for Equal {
    fn regions(&self, span: &TableSpan) -> Result<Vec<Region>, String> {
        let n = self.regions;
        Ok((0..n)
            .filter_map(|i| TableSpan::at_positions(0, span.table_id, i * END / n, (i + 1) * END / n))
            .map(|s| Region { start_key: s.start_key, end_key: s.end_key, written_bytes: 100 })
            .collect())
    }
}

/// A running maintainer on nodes a and b with table 1 as one span (id 11) on a, load-driven
/// scheduling on (traffic threshold 10 MiB/s, a round a second), regions from `source`.
fn running(regions: u128) -> Maintainer {
    let mut m = maintainer_with(&["a", "b"], schema(&[1]), |cfg| {
        cfg.load.across_nodes = true;
        cfg.load.write_key_threshold = 10.0 * f64::from(MIB);
        cfg.load.check_balance_interval_ms = ROUND;
    })
    .with_regions(Box::new(Equal { regions }));
    bootstrap_spans(
        &mut m,
        vec![("a", vec![bspan(11, whole(1), ComponentState::Working, CP)]), ("b", vec![])],
    );
    m
}

/// One round: span 11 reports `rate`, then the round's tick.
fn round(m: &mut Maintainer, now: &mut u64, rate: f32) -> Vec<Output> {
    *now += ROUND;
    let status = DispatcherStatus {
        id: did(11),
        mode: dispatcher_core::ids::Mode::Default,
        state: ComponentState::Working,
        checkpoint_ts: CP + *now,
        event_size_per_second: rate,
    };
    let heartbeat = Heartbeat { statuses: vec![status], ..Default::default() };
    m.step(*now, Event::Heartbeat { from: n("a"), heartbeat });
    m.step(*now, Event::Tick)
}

fn started(effects: &[Output]) -> Vec<(OperatorKind, TableSpan)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Output::SchedulerStarted { kind, span, .. } => Some((*kind, span.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn l6_nothing_acts_before_the_window_is_full_then_a_hot_whole_table_is_split() {
    let mut m = running(64);
    let mut now = 0;
    // The first rounds fill the window (the first tick after bootstrap is a round too).
    let mut seen = Vec::new();
    for _ in 0..2 {
        seen.extend(started(&round(&mut m, &mut now, 40.0 * MIB)));
    }
    assert!(seen.is_empty(), "acted before three samples: {seen:?}");
    let mut effects = Vec::new();
    for _ in 0..2 {
        effects.extend(round(&mut m, &mut now, 40.0 * MIB));
    }
    assert_eq!(started(&effects), [(OperatorKind::Split, whole(1))]);
    assert_eq!(op_of(&m, did(11)).map(|o| o.0), Some(OperatorKind::Split));
}

#[test]
fn a_cold_whole_table_is_not_split() {
    let mut m = running(64);
    let mut now = 0;
    let mut effects = Vec::new();
    for _ in 0..8 {
        effects.extend(round(&mut m, &mut now, 5.0 * MIB));
    }
    assert!(started(&effects).is_empty(), "{:?}", started(&effects));
}

#[test]
fn h2_an_unsplittable_hot_span_is_set_aside_not_retried_every_round() {
    // One region: the hot span cannot be cut. Nothing is started, and the maintainer keeps
    // running its rounds (the reference retries the split each round and blocks the table).
    let mut m = running(1);
    let mut now = 0;
    let mut effects = Vec::new();
    for _ in 0..10 {
        effects.extend(round(&mut m, &mut now, 40.0 * MIB));
    }
    assert!(started(&effects).is_empty());
    assert_eq!(op_of(&m, did(11)), None);
}

#[test]
fn l1_a_split_whose_pieces_do_not_tile_the_span_is_not_admitted() {
    let m = running(64);
    let record = m.view(dispatcher_core::ids::Mode::Default).unwrap().spans.get(did(11)).cloned().unwrap();
    let half = |lo: u128, hi: u128| TableSpan::at_positions(0, 1, lo, hi).unwrap();
    let gap = vec![half(0, END / 4), half(END / 2, END)];
    let overlap = vec![half(0, END / 2), half(END / 4, END)];
    let short = vec![half(0, END / 4), half(END / 4, END / 2)];
    for pieces in [gap, overlap, short, vec![whole(1)]] {
        assert!(
            dispatcher_core::maintainer::Operator::split(&record, pieces.clone()).is_none(),
            "{pieces:?}"
        );
    }
    let good = vec![half(0, END / 2), half(END / 2, END)];
    assert!(dispatcher_core::maintainer::Operator::split(&record, good).is_some());
}
