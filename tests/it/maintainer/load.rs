//! Load-driven scheduling, one decision per test: the maintainer driven by scripted heartbeats
//! that carry each span's traffic, with a region source of equal regions.

use dispatcher_core::maintainer::load::{Region, RegionSource, Rules};
use dispatcher_core::maintainer::{Event, Maintainer, OperatorKind, Output};
use dispatcher_core::messages::{ComponentState, DispatcherStatus, Heartbeat};
use dispatcher_core::span::TableSpan;

use super::harness::*;

const MIB: f32 = 1024.0 * 1024.0;
const ROUND: u64 = 1_000;
const END: u128 = 1 << 64;

/// Every table has `regions` equal regions with equal writes; every checkpoint is `lag` ms
/// behind the upstream (unknown when `None`).
struct Equal {
    regions: u128,
    lag: Option<u64>,
}

impl RegionSource for Equal {
    fn regions(&self, span: &TableSpan) -> Result<Vec<Region>, String> {
        let n = self.regions;
        Ok((0..n)
            .filter_map(|i| TableSpan::at_positions(0, span.table_id, i * END / n, (i + 1) * END / n))
            .map(|s| Region { start_key: s.start_key, end_key: s.end_key, written_bytes: 100 })
            .collect())
    }

    fn lag_ms(&self, _now_ms: u64, _checkpoint: u64) -> Option<u64> {
        self.lag
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
    .with_regions(Box::new(Equal { regions, lag: None }));
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

/// A running maintainer on nodes a and b with table 1 in equal parts (ids 21, 22, ...), part
/// `i` on `layout[i]`, load-driven scheduling on under `rules` (traffic threshold 10 MiB/s, a
/// round every `every` ms), 64 equal regions, checkpoints `lag` ms behind.
fn parts_on(layout: &[&str], rules: Rules, every: u64, lag: Option<u64>) -> Maintainer {
    let mut m = maintainer_with(&["a", "b"], schema(&[1]), |cfg| {
        cfg.load.across_nodes = true;
        cfg.load.write_key_threshold = 10.0 * f64::from(MIB);
        cfg.load.check_balance_interval_ms = every;
        cfg.load.rules = rules;
    })
    .with_regions(Box::new(Equal { regions: 64, lag }));
    let of = layout.len();
    let on = |node: &str| {
        (0..of)
            .filter(|i| layout[*i] == node)
            .map(|i| bspan(21 + i as u64, part(1, of, i), ComponentState::Working, CP))
            .collect()
    };
    bootstrap_spans(&mut m, vec![("a", on("a")), ("b", on("b"))]);
    m
}

fn parts_on_a(of: usize, rules: Rules, every: u64) -> Maintainer {
    parts_on(&vec!["a"; of], rules, every, None)
}

/// One round `every` ms after the last: part `i` reports `rates[i]` from its node (all on a
/// unless `layout` says otherwise), then the tick.
fn round_of_parts(m: &mut Maintainer, now: &mut u64, every: u64, rates: &[f32]) -> Vec<Output> {
    round_on(m, now, every, rates, &vec!["a"; rates.len()])
}

fn round_on(m: &mut Maintainer, now: &mut u64, every: u64, rates: &[f32], layout: &[&str]) -> Vec<Output> {
    *now += every;
    for node in ["a", "b"] {
        let statuses = rates
            .iter()
            .enumerate()
            .filter(|(i, _)| layout[*i] == node)
            .map(|(i, rate)| DispatcherStatus {
                id: did(21 + i as u64),
                mode: dispatcher_core::ids::Mode::Default,
                state: ComponentState::Working,
                checkpoint_ts: CP + *now,
                event_size_per_second: *rate,
            })
            .collect();
        let heartbeat = Heartbeat { statuses, ..Default::default() };
        m.step(*now, Event::Heartbeat { from: n(node), heartbeat });
    }
    m.step(*now, Event::Tick)
}

#[test]
fn split_count_and_placement_a_hot_whole_table_is_cut_at_region_boundaries_into_a_multiple_of_the_nodes_and_spread(
) {
    let mut m = running(64);
    let mut now = 0;
    let mut split = Vec::new();
    for _ in 0..6 {
        split.extend(started(&round(&mut m, &mut now, 40.0 * MIB)));
    }
    assert_eq!(split, [(OperatorKind::Split, whole(1))]);
    // The origin stops; the pieces are placed.
    now += 10;
    status(&mut m, now, "a", did(11), ComponentState::Stopped, CP + now);
    m.step(now + 10, Event::Tick);
    let spans = table_spans(&m, 1);
    // 40 MiB/s in pieces of at most 3/4 of 10 MiB/s: 6, already a multiple of the 2 nodes.
    assert_eq!(spans.len(), 6, "{spans:?}");
    assert!(spans.windows(2).all(|w| w[0].0.is_followed_by(&w[1].0)), "the pieces tile the table");
    assert_eq!(spans[0].0.joined_with(&spans[5].0), whole(1));
    for (span, _, _) in &spans {
        let (lo, hi) = span.positions().unwrap();
        assert!(lo % (END / 64) == 0 && hi % (END / 64) == 0, "{span:?} is cut inside a region");
    }
    // Equal writes, so equal pieces, spread over both nodes as they are placed (not all on the
    // origin waiting for traffic balance).
    let on = |node: &str| spans.iter().filter(|s| s.2.as_deref() == Some(node)).count();
    assert_eq!((on("a"), on("b")), (3, 3), "{spans:?}");
    sound(&m);
}

#[test]
fn l9_traffic_balance_moves_the_largest_spans_that_fit_the_gap_and_no_more() {
    // Four parts on a at 8, 6, 3 and 1 MiB/s, none hot; b carries nothing. The mean is 9, so
    // the gap is 9: the 8 goes, then the 1 (the largest below it that fits what is left); the
    // 6 would overshoot.
    let rates = [8.0 * MIB, 6.0 * MIB, 3.0 * MIB, 1.0 * MIB];
    let mut m = parts_on_a(4, Rules::Ours, ROUND);
    let mut now = 0;
    let mut moves = Vec::new();
    let mut rounds = 0;
    while moves.is_empty() && rounds < 8 {
        moves = started(&round_of_parts(&mut m, &mut now, ROUND, &rates));
        rounds += 1;
    }
    assert_eq!(moves, [(OperatorKind::Move, part(1, 4, 0)), (OperatorKind::Move, part(1, 4, 3))]);
    assert_eq!(rounds, 3, "ours acts on the first full window");
    for id in [did(22), did(23)] {
        assert_eq!(op_of(&m, id), None, "{id} stays");
    }
}

/// The round (from 1) at which the cold table (four parts at 0.1 MiB/s, below the 1 MiB/s
/// that traffic balance looks at) is merged back, with `warm` rounds in which part 1 writes
/// 5 MiB/s (the table 5.3 MiB/s, above half the threshold).
fn cold_merge_round(
    rules: Rules,
    every: u64,
    warm: &[usize],
) -> Option<(usize, Vec<(OperatorKind, TableSpan)>)> {
    cold_merge_round_lagging(rules, every, warm, None)
}

fn cold_merge_round_lagging(
    rules: Rules,
    every: u64,
    warm: &[usize],
    lag: Option<u64>,
) -> Option<(usize, Vec<(OperatorKind, TableSpan)>)> {
    let mut m = parts_on(&["a"; 4], rules, every, lag);
    let mut now = 0;
    for r in 1..=20 {
        let cold = 0.1 * MIB;
        let rates = [if warm.contains(&r) { 5.0 * MIB } else { cold }, cold, cold, cold];
        let seen = started(&round_of_parts(&mut m, &mut now, every, &rates));
        if !seen.is_empty() {
            return Some((r, seen));
        }
    }
    None
}

#[test]
fn merge_damping_a_cold_table_merges_back_after_five_cold_evaluations_and_a_warm_sample_restarts_the_count() {
    let (at, merged) = cold_merge_round(Rules::Ours, ROUND, &[]).expect("merged back");
    assert_eq!(merged, [(OperatorKind::Merge, whole(1))], "one merge of the four parts");
    // Three rounds fill the windows, then five evaluations want the merge.
    assert_eq!(at, 3 + 4);
    // A warm sample in round 5 is in the window for three rounds: the count restarts after it
    // (and traffic balance does not act on one busy sample of an idle table).
    let (later, merged) = cold_merge_round(Rules::Ours, ROUND, &[5]).expect("merged back");
    assert_eq!(merged, [(OperatorKind::Merge, whole(1))]);
    assert_eq!(later, 5 + 2 + 5);
    // The reference's whole-table merge is undamped (H9): it merges at its first evaluation
    // (its samples come every 10 s, so rounds 10 s apart).
    let (reference, _) = cold_merge_round(Rules::Reference, 10_000, &[]).expect("merged back");
    assert_eq!(reference, 3);
}

#[test]
fn l10_a_lagging_table_is_not_merged_back_and_the_references_whole_table_merge_ignores_lag() {
    // Checkpoints 40 s behind (over the 30 s gate): never, in 20 rounds.
    assert_eq!(cold_merge_round_lagging(Rules::Ours, ROUND, &[], Some(40_000)), None);
    // 10 s behind: as without a clock.
    let (at, _) = cold_merge_round_lagging(Rules::Ours, ROUND, &[], Some(10_000)).expect("merged back");
    assert_eq!(at, 3 + 4);
    // The reference gates only its local merges (H9).
    let (at, _) = cold_merge_round_lagging(Rules::Reference, 10_000, &[], Some(40_000)).expect("merged");
    assert_eq!(at, 3);
}

#[test]
fn move_then_merge_cold_neighbours_on_different_nodes_are_moved_together_in_compensating_pairs() {
    // Six parts alternating between a and b at 1 MiB/s: 6 MiB/s is not cold enough to merge the
    // whole table, but six spans are more than 2·max(1, 1, 2) = 4, and no neighbours share a
    // node. One move alone would put 4 MiB/s on one node (over 1.25 × the mean of 3), so the
    // moves come in pairs that leave each node's traffic as it was: part 0 joins part 1 on b,
    // part 3 joins part 4 on a.
    let layout = ["a", "b", "a", "b", "a", "b"];
    let mut m = parts_on(&layout, Rules::Ours, ROUND, None);
    let rates = [MIB; 6];
    let mut now = 0;
    let mut moves = Vec::new();
    let mut rounds = 0;
    while moves.is_empty() && rounds < 12 {
        moves = started(&round_on(&mut m, &mut now, ROUND, &rates, &layout));
        rounds += 1;
    }
    assert_eq!(moves, [(OperatorKind::Move, part(1, 6, 0)), (OperatorKind::Move, part(1, 6, 3))]);
    assert_eq!(rounds, 3 + 4, "after the windows and five evaluations that want a merge");
    for id in [22, 23, 25, 26] {
        assert_eq!(op_of(&m, did(id)), None, "part {} stays", id - 21);
    }
}
