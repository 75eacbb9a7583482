//! The maintainer's barrier, driven through `Maintainer::step` by scripted nodes: one test per
//! rule of barrier.md §10 it keeps (B2-B18) and per hazard of §9.2 it is built to avoid.
//!
//! The changefeed: node a (the maintainer's, hosting the table trigger) and node b. Table 1 is
//! split in two, span 11 on a and span 12 on b; table 2 is whole, span 21 on b. Both tables are
//! in schema 1, replicating from checkpoint 100. Events are at ts 150 unless said otherwise.

use std::sync::Arc;

use dispatcher_core::ids::{DispatcherId, Mode, Ts};
use dispatcher_core::maintainer::barrier::Phase;
use dispatcher_core::maintainer::*;
use dispatcher_core::messages::*;

use super::harness::*;

const T: Ts = 150;
const DDL: (Ts, bool) = (T, false);

/// A maintainer on nodes a and b (tables 1 and 2), bootstrapped with these spans.
fn boot(a: Vec<BootstrapSpan>, b: Vec<BootstrapSpan>) -> Maintainer {
    let mut m = maintainer(&["a", "b"], &[1, 2]);
    bootstrap_spans(&mut m, vec![("a", a), ("b", b)]);
    m
}

fn cluster() -> Maintainer {
    let m = boot(
        vec![bspan(11, part(1, 2, 0), ComponentState::Working, CP)],
        vec![
            bspan(12, part(1, 2, 1), ComponentState::Working, CP),
            bspan(21, whole(2), ComponentState::Working, CP),
        ],
    );
    for id in [11, 12, 21] {
        assert_eq!(record(&m, did(id)).unwrap().state, SpanState::Replicating, "span {id} replicates");
    }
    m
}

fn trigger(m: &Maintainer) -> DispatcherId {
    m.view(Mode::Default).unwrap().trigger
}

fn normal(tables: &[i64]) -> InfluencedTables {
    InfluencedTables { kind: InfluenceKind::Normal, table_ids: tables.to_vec(), schema_id: 0 }
}

fn db(schema: i64) -> InfluencedTables {
    InfluencedTables { kind: InfluenceKind::Db, table_ids: Vec::new(), schema_id: schema }
}

fn added(table: i64) -> AddedTable {
    AddedTable { table_id: table, schema_id: 1, splitable: false }
}

fn state(key: (Ts, bool), stage: BlockStage, detail: BlockDetail) -> BlockState {
    BlockState {
        is_blocked: stage != BlockStage::None,
        block_ts: key.0,
        is_sync_point: key.1,
        stage,
        detail: Arc::new(detail),
    }
}

fn blocks(tables: InfluencedTables) -> BlockDetail {
    BlockDetail { block_tables: Some(tables), ..Default::default() }
}

/// TRUNCATE TABLE 2 at `ts`: blocks [2, 0], drops 2, adds `new`.
fn truncate(new: i64) -> BlockDetail {
    BlockDetail {
        block_tables: Some(normal(&[2, 0])),
        need_dropped_tables: Some(normal(&[2])),
        need_added_tables: vec![added(new)],
        ..Default::default()
    }
}

fn waiting(key: (Ts, bool), detail: BlockDetail) -> BlockState {
    state(key, BlockStage::Waiting, detail)
}

fn done(key: (Ts, bool)) -> BlockState {
    state(key, BlockStage::Done, BlockDetail::default())
}

fn report(m: &mut Maintainer, now: u64, node: &str, id: DispatcherId, state: BlockState) -> Vec<Output> {
    report_mode(m, now, node, id, state, Mode::Default)
}

fn report_mode(
    m: &mut Maintainer,
    now: u64,
    node: &str,
    id: DispatcherId,
    state: BlockState,
    mode: Mode,
) -> Vec<Output> {
    let request = BlockStatusRequest {
        changefeed: m.config().changefeed.clone(),
        statuses: vec![BlockStatus { id, mode, state }],
        mode,
    };
    m.step(now, Event::BlockStatus { from: n(node), request })
}

/// Barrier answers among the effects: (to, answer), each response checked for our epoch.
fn answers(m: &Maintainer, effects: &[Output]) -> Vec<(String, BarrierAnswer)> {
    let mut out = Vec::new();
    for e in effects {
        if let Output::Send { to, message: ToNode::Barrier(r) } = e {
            assert_eq!(r.epoch, m.config().epoch, "every barrier answer is fenced by our epoch (B16)");
            out.extend(r.answers.iter().map(|a| (to.to_string(), a.clone())));
        }
    }
    out
}

/// (to, pass, ts, syncpoint, influence) of every action.
fn actions(m: &Maintainer, effects: &[Output]) -> Vec<(String, bool, (Ts, bool), Influence)> {
    answers(m, effects)
        .into_iter()
        .filter_map(|(to, a)| {
            let act = a.action?;
            Some((to, act.pass, (act.event.commit_ts, act.event.is_sync_point), a.influence))
        })
        .collect()
}

fn acks(m: &Maintainer, effects: &[Output]) -> Vec<(String, (Ts, bool), Influence)> {
    answers(m, effects)
        .into_iter()
        .filter_map(|(to, a)| a.ack.map(|e| (to, (e.commit_ts, e.is_sync_point), a.influence)))
        .collect()
}

fn ids(v: &[u64]) -> Influence {
    Influence::Normal { ids: v.iter().map(|i| did(*i)).collect() }
}

fn phase(m: &Maintainer, key: (Ts, bool)) -> Option<Phase> {
    m.view(Mode::Default).unwrap().barrier.event(key).map(|e| e.phase)
}

fn idle(m: &Maintainer) -> bool {
    m.view(Mode::Default).unwrap().barrier.is_idle()
}

fn write(to: &str, key: (Ts, bool), writer: DispatcherId) -> (String, bool, (Ts, bool), Influence) {
    (to.into(), false, key, Influence::Normal { ids: vec![writer] })
}

#[test]
fn split_table_ddl_is_written_once_after_every_span_waits_then_passed_by_the_rest() {
    let mut m = cluster();
    let e = report(&mut m, 1, "a", did(11), waiting(DDL, blocks(normal(&[1]))));
    assert_eq!(acks(&m, &e), vec![("a".into(), DDL, ids(&[11]))]);
    assert!(actions(&m, &e).is_empty(), "half the table reported: no Write yet (B3)");
    assert_eq!(phase(&m, DDL), Some(Phase::Collecting));

    let e = report(&mut m, 2, "b", did(12), waiting(DDL, blocks(normal(&[1]))));
    assert_eq!(actions(&m, &e), vec![write("b", DDL, did(12))], "the span that completed coverage writes");
    assert_eq!(record(&m, did(12)).unwrap().checkpoint, T - 1, "a waiting span flushed below the event");

    let e = report(&mut m, 3, "b", did(12), done(DDL));
    assert_eq!(
        actions(&m, &e),
        vec![("a".into(), true, DDL, ids(&[11]))],
        "Pass after the write's DONE (B2)"
    );
    assert_eq!(phase(&m, DDL), Some(Phase::Passing));

    let e = report(&mut m, 4, "a", did(11), done(DDL));
    assert!(actions(&m, &e).is_empty());
    assert!(idle(&m), "every span passed: complete (B14)");
    assert!(m.view(Mode::Default).unwrap().barrier.completed(DDL));
}

#[test]
fn a_reporter_that_stops_replicating_no_longer_counts_toward_the_write() {
    let mut m = cluster();
    report(&mut m, 1, "a", did(11), waiting(DDL, blocks(normal(&[1]))));
    m.step(2, Event::MoveSpan { mode: Mode::Default, id: did(11), to: n("b") });
    assert_ne!(record(&m, did(11)).unwrap().state, SpanState::Replicating);
    let e = report(&mut m, 3, "b", did(12), waiting(DDL, blocks(normal(&[1]))));
    assert!(actions(&m, &e).is_empty(), "span 11 is moving: its report is void (double check, B3)");
    let e = m.step(4, Event::Tick);
    assert!(actions(&m, &e).is_empty());
    assert_eq!(phase(&m, DDL), Some(Phase::Collecting));
}

#[test]
fn a_known_span_that_is_not_replicating_is_told_to_report_again_and_an_unknown_one_is_dropped() {
    let mut m = cluster();
    m.step(1, Event::MoveSpan { mode: Mode::Default, id: did(21), to: n("a") });
    let e = report(&mut m, 2, "b", did(21), waiting(DDL, blocks(normal(&[2, 0]))));
    let got = answers(&m, &e);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.ignored, Some(BarrierEvent { commit_ts: T, is_sync_point: false }));
    assert!(idle(&m), "not admitted");

    let e = report(&mut m, 3, "b", did(999), waiting(DDL, blocks(normal(&[2, 0]))));
    assert!(answers(&m, &e).is_empty(), "an unknown dispatcher is dropped; it resends");
    assert!(idle(&m));
}

#[test]
fn truncate_is_written_by_the_trigger_and_its_table_changes_applied_only_after_its_done() {
    let mut m = cluster();
    let tr = trigger(&m);
    report(&mut m, 1, "b", did(21), waiting(DDL, truncate(3)));
    let e = report(&mut m, 2, "a", tr, waiting(DDL, truncate(3)));
    assert_eq!(actions(&m, &e), vec![write("a", DDL, tr)], "table 0 is listed: the trigger writes (B7)");
    assert!(
        !table_spans(&m, 2).is_empty() && table_spans(&m, 3).is_empty(),
        "nothing applied before the write (B8)"
    );

    report(&mut m, 3, "a", tr, done(DDL));
    assert!(table_spans(&m, 2).is_empty(), "table 2 dropped at the writer's DONE");
    let e = m.step(4, Event::Tick);
    let removes: Vec<_> = schedules(&e).into_iter().filter(|s| s.1 == ScheduleAction::Remove).collect();
    assert_eq!(removes.len(), 1, "its dispatcher is removed: {removes:?}");
    assert_eq!(removes[0].3, did(21));
    let new = table_spans(&m, 3);
    assert_eq!(new.len(), 1, "table 3 added");
    let id3 = m.view(Mode::Default).unwrap().spans.table((0, 3)).next().unwrap().id;
    assert_eq!(record(&m, id3).unwrap().checkpoint, T, "a new table starts at the DDL's ts (B10)");
    assert!(idle(&m), "table 2 has no span left and the trigger is done: complete");
}

#[test]
fn table_changes_apply_in_key_order_whatever_order_the_dones_arrive_in() {
    let mut m = cluster();
    let tr = trigger(&m);
    let first = (140, false);
    let second = (160, false);
    let drop1 = BlockDetail {
        block_tables: Some(normal(&[1, 0])),
        need_dropped_tables: Some(normal(&[1])),
        ..Default::default()
    };
    report(&mut m, 1, "b", did(21), waiting(first, truncate(3)));
    report(&mut m, 1, "a", tr, waiting(first, truncate(3)));
    report(&mut m, 1, "a", did(11), waiting(second, drop1.clone()));
    report(&mut m, 1, "b", did(12), waiting(second, drop1.clone()));
    report(&mut m, 1, "a", tr, waiting(second, drop1));
    assert_eq!(phase(&m, first), Some(Phase::Writing));
    assert_eq!(phase(&m, second), Some(Phase::Writing));

    report(&mut m, 2, "a", tr, done(second));
    assert_eq!(table_spans(&m, 1).len(), 2, "the later drop waits for the earlier change (B8)");
    let later = m.view(Mode::Default).unwrap().barrier.event(second).cloned().unwrap();
    assert!(!later.applied && !later.done.contains(&tr), "its DONE is not counted: {later:?}");

    report(&mut m, 3, "a", tr, done(first));
    assert!(table_spans(&m, 2).is_empty() && table_spans(&m, 3).len() == 1, "the earlier one applied");
    let e = m.step(2_000, Event::Tick);
    assert!(actions(&m, &e).iter().any(|a| a.0 == "a" && a.2 == second), "resent to the trigger");
    report(&mut m, 2_001, "a", tr, done(second));
    assert!(table_spans(&m, 1).is_empty(), "then the later one applies");
}

#[test]
fn a_local_ddl_that_adds_a_table_is_acknowledged_only_once_applied_and_never_applied_twice() {
    let mut m = cluster();
    let tr = trigger(&m);
    let create = |table| BlockDetail { need_added_tables: vec![added(table)], ..Default::default() };
    let key = (170, false);
    // An earlier event with table changes is still unapplied: the NONE waits, unacknowledged.
    report(&mut m, 1, "b", did(21), waiting(DDL, truncate(3)));
    report(&mut m, 1, "a", tr, waiting(DDL, truncate(3)));
    let e = report(&mut m, 2, "a", tr, state(key, BlockStage::None, create(5)));
    assert!(acks(&m, &e).is_empty() && table_spans(&m, 5).is_empty(), "B8: after the earlier change");

    report(&mut m, 3, "a", tr, done(DDL));
    let e = report(&mut m, 4, "a", tr, state(key, BlockStage::None, create(5)));
    assert_eq!(acks(&m, &e), vec![("a".into(), key, Influence::Normal { ids: vec![tr] })]);
    assert_eq!(table_spans(&m, 5).len(), 1);

    // Table 5 dropped by a later event, then a late copy of the NONE: acknowledged, not re-applied.
    let drop5 = BlockDetail {
        block_tables: Some(normal(&[5, 0])),
        need_dropped_tables: Some(normal(&[5])),
        ..Default::default()
    };
    report(&mut m, 5, "a", tr, waiting((180, false), drop5));
    report(&mut m, 6, "a", tr, done((180, false)));
    assert!(table_spans(&m, 5).is_empty());
    let e = report(&mut m, 7, "a", tr, state(key, BlockStage::None, create(5)));
    assert_eq!(acks(&m, &e).len(), 1);
    assert!(table_spans(&m, 5).is_empty(), "an older change never lands after a newer one (H-G)");
}

/// H-L, wire defaults: an added-table entry left at table 0 names the table trigger's span, which
/// is never placed as a table; the event is still acknowledged and the real entry applied.
#[test]
fn an_added_table_at_the_wire_default_zero_is_dropped_and_the_rest_applied() {
    let mut m = cluster();
    let tr = trigger(&m);
    let key = (170, false);
    let detail = BlockDetail { need_added_tables: vec![added(0), added(5)], ..Default::default() };
    let e = report(&mut m, 1, "a", tr, state(key, BlockStage::None, detail));
    assert_eq!(acks(&m, &e).len(), 1);
    assert!(table_spans(&m, 0).is_empty(), "no span for table 0");
    assert_eq!(table_spans(&m, 5).len(), 1);
    sound(&m);
}

#[test]
fn a_db_event_waits_for_the_trigger_and_every_span_of_the_schema_and_passes_by_schema() {
    let mut m = cluster();
    let tr = trigger(&m);
    for (node, id) in [("a", did(11)), ("b", did(12))] {
        report(&mut m, 1, node, id, waiting(DDL, blocks(db(1))));
    }
    let e = report(&mut m, 2, "a", tr, waiting(DDL, blocks(db(1))));
    assert!(actions(&m, &e).is_empty(), "table 2 of schema 1 has not reported");
    let e = report(&mut m, 3, "b", did(21), waiting(DDL, blocks(db(1))));
    assert_eq!(actions(&m, &e), vec![write("a", DDL, tr)], "DB events are written by the trigger (B7)");
    let e = report(&mut m, 4, "a", tr, done(DDL));
    let mut passes = actions(&m, &e);
    passes.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        passes,
        vec![
            ("a".into(), true, DDL, Influence::Db { schema_id: 1 }),
            ("b".into(), true, DDL, Influence::Db { schema_id: 1 })
        ]
    );
    for (node, id) in [("a", 11), ("b", 12), ("b", 21)] {
        assert!(!idle(&m));
        report(&mut m, 5, node, did(id), done(DDL));
    }
    assert!(idle(&m));
}

#[test]
fn the_trigger_report_of_a_wide_event_is_refused_while_an_earlier_table_change_is_unapplied() {
    let mut m = cluster();
    let tr = trigger(&m);
    let sync = (T + 10, true);
    report(&mut m, 1, "b", did(21), waiting(DDL, truncate(3)));
    report(&mut m, 1, "a", tr, waiting(DDL, truncate(3)));
    let e = report(&mut m, 2, "a", tr, waiting(sync, BlockDetail::default()));
    assert!(acks(&m, &e).is_empty(), "B9: not acknowledged, so the trigger reports it again");
    assert!(m.view(Mode::Default).unwrap().barrier.event(sync).is_none());

    report(&mut m, 3, "a", tr, done(DDL));
    let e = report(&mut m, 4, "a", tr, waiting(sync, BlockDetail::default()));
    assert_eq!(acks(&m, &e).len(), 1, "accepted once the earlier change is applied");
    assert_eq!(phase(&m, sync), Some(Phase::Collecting), "every span of the changefeed must report");
}

#[test]
fn a_ddl_and_a_syncpoint_at_one_ts_are_two_events() {
    let mut m = cluster();
    let tr = trigger(&m);
    let sync = (T, true);
    for (node, id) in [("a", did(11)), ("b", did(12))] {
        report(&mut m, 1, node, id, waiting(DDL, blocks(normal(&[1]))));
    }
    for (node, id) in [("a", tr), ("a", did(11)), ("b", did(12)), ("b", did(21))] {
        report(&mut m, 2, node, id, waiting(sync, BlockDetail::default()));
    }
    assert_eq!(phase(&m, DDL), Some(Phase::Writing));
    assert_eq!(
        phase(&m, sync),
        Some(Phase::Writing),
        "a syncpoint's scope is everything; the trigger writes"
    );
    report(&mut m, 3, "a", tr, done(sync));
    assert_eq!(phase(&m, DDL), Some(Phase::Writing), "the syncpoint's DONE says nothing of the DDL (B5)");
    assert_eq!(phase(&m, sync), Some(Phase::Passing));
}

#[test]
fn the_write_is_resent_until_done_and_goes_to_another_span_when_the_writer_vanishes() {
    let mut m = cluster();
    report(&mut m, 1, "a", did(11), waiting(DDL, blocks(normal(&[1]))));
    report(&mut m, 2, "b", did(12), waiting(DDL, blocks(normal(&[1]))));
    let e = m.step(500, Event::Tick);
    assert!(actions(&m, &e).is_empty(), "resent at most once per resend interval");
    let e = m.step(1_002, Event::Tick);
    assert_eq!(actions(&m, &e), vec![write("b", DDL, did(12))], "resent until DONE (B15)");
    // Its node leaves (the writer is pinned against moves, splits and merges while it writes).
    m.step(1_003, Event::NodeLeft(n("b")));
    let e = m.step(2_100, Event::Tick);
    assert_eq!(
        actions(&m, &e),
        vec![write("a", DDL, did(11))],
        "a vanished writer is replaced, never a panic (H-I)"
    );
}

#[test]
fn pass_is_resent_until_every_span_passed_and_a_span_that_stops_replicating_is_excused() {
    let mut m = cluster();
    report(&mut m, 1, "a", did(11), waiting(DDL, blocks(normal(&[1]))));
    report(&mut m, 2, "b", did(12), waiting(DDL, blocks(normal(&[1]))));
    report(&mut m, 3, "b", did(12), done(DDL));
    let e = m.step(1_100, Event::Tick);
    assert_eq!(actions(&m, &e), vec![("a".into(), true, DDL, ids(&[11]))], "Pass resent (B15)");
    m.step(1_200, Event::MoveSpan { mode: Mode::Default, id: did(11), to: n("b") });
    m.step(1_300, Event::Tick);
    assert!(idle(&m), "a span no longer running is excused; re-created, it meets the event again (H-E)");
}

#[test]
fn a_span_recreated_below_a_completed_event_is_passed_at_once_without_a_new_event() {
    let mut m = cluster();
    report(&mut m, 1, "a", did(11), waiting(DDL, blocks(normal(&[1]))));
    report(&mut m, 2, "b", did(12), waiting(DDL, blocks(normal(&[1]))));
    report(&mut m, 3, "b", did(12), done(DDL));
    report(&mut m, 4, "a", did(11), done(DDL));
    assert!(idle(&m));
    let e = report(&mut m, 5, "a", did(11), waiting(DDL, blocks(normal(&[1]))));
    assert_eq!(actions(&m, &e), vec![("a".into(), true, DDL, ids(&[11]))]);
    assert_eq!(acks(&m, &e).len(), 1);
    assert!(idle(&m), "no phantom event (H-H)");
}

#[test]
fn the_checkpoint_stays_at_the_ts_of_an_event_adding_tables_until_it_is_done() {
    let mut m = cluster();
    let tr = trigger(&m);
    report(&mut m, 1, "b", did(21), waiting(DDL, truncate(3)));
    for node in ["a", "b"] {
        let hb = heartbeat(&[], 1, T + 100);
        m.step(2, Event::Heartbeat { from: n(node), heartbeat: hb });
    }
    m.step(3, Event::Tick);
    assert_eq!(m.view(Mode::Default).unwrap().committed, T, "capped at the adding event's ts (B10)");
    report(&mut m, 4, "a", tr, waiting(DDL, truncate(3)));
    let mut sent = report(&mut m, 5, "a", tr, done(DDL));
    sent.extend(m.step(6, Event::Tick));
    assert!(
        m.view(Mode::Default).unwrap().committed <= T,
        "the new table's span holds it until it replicates"
    );
    let create =
        schedules(&sent).into_iter().find(|s| s.1 == ScheduleAction::Create).expect("table 3 placed");
    status(&mut m, 7, &create.0, create.3, ComponentState::Working, T + 100);
    for node in ["a", "b"] {
        let hb = heartbeat(&[], 2, T + 100);
        m.step(8, Event::Heartbeat { from: n(node), heartbeat: hb });
    }
    m.step(9, Event::Tick);
    assert_eq!(
        m.view(Mode::Default).unwrap().committed,
        T + 100,
        "done, and the new table replicates: the cap is gone"
    );
}

#[test]
fn a_status_of_another_mode_and_statuses_before_the_bootstrap_are_dropped() {
    let mut m = cluster();
    let e = report_mode(&mut m, 1, "a", did(11), waiting(DDL, blocks(normal(&[1]))), Mode::Redo);
    assert!(answers(&m, &e).is_empty() && idle(&m), "redo is not scheduled here (B18)");

    let mut fresh = maintainer(&["a", "b"], &[1, 2]);
    let e = report(&mut fresh, 1, "a", did(11), waiting(DDL, blocks(normal(&[1]))));
    assert!(answers(&fresh, &e).is_empty(), "not bootstrapped: a documented drop; it resends");
}

#[test]
fn a_removing_maintainer_emits_no_barrier_traffic() {
    let mut m = cluster();
    report(&mut m, 1, "a", did(11), waiting(DDL, blocks(normal(&[1]))));
    report(&mut m, 2, "b", did(12), waiting(DDL, blocks(normal(&[1]))));
    m.step(3, Event::Stop);
    let mut effects = m.step(5_000, Event::Tick);
    effects.extend(report(&mut m, 5_001, "b", did(12), done(DDL)));
    assert!(answers(&m, &effects).is_empty(), "B16: inert");
}

// ---- failover: the rebuild from bootstrap block states (B17) ----

fn blocked(
    id: u64,
    span: dispatcher_core::span::TableSpan,
    stage: BlockStage,
    detail: BlockDetail,
) -> BootstrapSpan {
    BootstrapSpan {
        block: Some(Box::new(state(DDL, stage, detail))),
        ..bspan(id, span, ComponentState::Working, T - 1)
    }
}

#[test]
fn recovered_waiting_marks_never_complete_an_event_before_its_write() {
    // H-A: 11 was acknowledged WAITING by the old maintainer, 12 was writing.
    let mut m = boot(
        vec![blocked(11, part(1, 2, 0), BlockStage::Waiting, blocks(normal(&[1])))],
        vec![
            blocked(12, part(1, 2, 1), BlockStage::Writing, blocks(normal(&[1]))),
            bspan(21, whole(2), ComponentState::Working, CP),
        ],
    );
    assert_eq!(phase(&m, DDL), Some(Phase::Writing), "the WRITING span is taken as the writer");
    let e = m.step(10, Event::Tick);
    assert_eq!(actions(&m, &e), vec![write("b", DDL, did(12))]);
    let e = m.step(2_000, Event::Tick);
    assert!(!idle(&m), "still waiting for the write's DONE");
    assert_eq!(actions(&m, &e), vec![write("b", DDL, did(12))]);
    let e = report(&mut m, 2_001, "b", did(12), done(DDL));
    assert_eq!(actions(&m, &e), vec![("a".into(), true, DDL, ids(&[11]))], "the recovered waiter is passed");
    report(&mut m, 2_002, "a", did(11), done(DDL));
    assert!(idle(&m));
}

#[test]
fn a_span_placed_anew_under_an_event_being_written_starts_at_the_event() {
    // 12 is writing the ALTER of split table 1; 11's dispatcher was in transit at the bootstrap
    // (no report): its hole is placed again. Coverage was checked before the Write, so its DML
    // below T is downstream: it starts at T - 1 (skipping DML there) and meets the event, never
    // replaying DML below it after the write (B3, barrier seed 7832).
    let mut m = boot(
        vec![],
        vec![
            blocked(12, part(1, 2, 1), BlockStage::Writing, blocks(normal(&[1]))),
            bspan(21, whole(2), ComponentState::Working, CP),
        ],
    );
    let hole = table_spans(&m, 1).into_iter().find(|s| s.0 == part(1, 2, 0)).expect("the hole");
    assert_eq!(hole.1, SpanState::Absent);
    let e = m.step(10, Event::Tick);
    let creates: Vec<_> = schedules(&e).into_iter().filter(|s| s.1 == ScheduleAction::Create).collect();
    assert_eq!(creates.len(), 1, "{creates:?}");
    assert_eq!(creates[0].4, T - 1, "starts at the event, not at the checkpoint {CP}");
    // An event only waited on (coverage not checked yet) leaves a hole's start alone.
    let mut m = boot(
        vec![],
        vec![
            blocked(12, part(1, 2, 1), BlockStage::Waiting, blocks(normal(&[1]))),
            bspan(21, whole(2), ComponentState::Working, CP),
        ],
    );
    let e = m.step(10, Event::Tick);
    let creates: Vec<_> = schedules(&e).into_iter().filter(|s| s.1 == ScheduleAction::Create).collect();
    assert_eq!(creates.len(), 1, "{creates:?}");
    assert!(creates[0].4 < T - 1, "below the event: it must flush its DML first");
}

#[test]
fn a_recovered_event_with_table_changes_applies_them_at_the_new_triggers_done() {
    // H-B: rebuilt from 21's WAITING; the new trigger meets the TRUNCATE again and writes it.
    let mut m = boot(
        vec![bspan(11, part(1, 2, 0), ComponentState::Working, CP)],
        vec![
            bspan(12, part(1, 2, 1), ComponentState::Working, CP),
            blocked(21, whole(2), BlockStage::Waiting, truncate(3)),
        ],
    );
    let tr = trigger(&m);
    let e = report(&mut m, 1, "a", tr, waiting(DDL, truncate(3)));
    assert_eq!(actions(&m, &e), vec![write("a", DDL, tr)]);
    report(&mut m, 2, "a", tr, done(DDL));
    assert!(table_spans(&m, 2).is_empty() && table_spans(&m, 3).len() == 1, "applied, not stuck");
    assert!(idle(&m));
}

#[test]
fn a_recovered_db_event_the_old_trigger_wrote_is_forwarded_on_the_new_triggers_checkpoint() {
    // H-D: every span of schema 1 waits; the new trigger already starts past the event.
    let mut m = boot(
        vec![blocked(11, part(1, 2, 0), BlockStage::Waiting, blocks(db(1)))],
        vec![
            blocked(12, part(1, 2, 1), BlockStage::Waiting, blocks(db(1))),
            blocked(21, whole(2), BlockStage::Waiting, blocks(db(1))),
        ],
    );
    let tr = trigger(&m);
    let e = m.step(10, Event::Tick);
    assert!(actions(&m, &e).is_empty(), "no evidence yet: the trigger may still meet it");
    status(&mut m, 20, "a", tr, ComponentState::Working, T + 5);
    let e = m.step(30, Event::Tick);
    assert_eq!(phase(&m, DDL), Some(Phase::Passing), "the trigger is past it: the write happened (B12)");
    let mut to: Vec<String> = actions(&m, &e).into_iter().filter(|a| a.1).map(|a| a.0).collect();
    to.sort();
    assert_eq!(to, vec!["a".to_string(), "b".to_string()]);
}

#[test]
fn the_writer_is_pinned_until_its_done() {
    // Found by the barrier sweep (seed 1327): a writer split away mid-write completed its write
    // after the resend had chosen another writer, and the DDL was written twice (B1).
    let mut m = cluster();
    report(&mut m, 1, "a", did(11), waiting(DDL, blocks(normal(&[1]))));
    report(&mut m, 2, "b", did(12), waiting(DDL, blocks(normal(&[1]))));
    assert_eq!(phase(&m, DDL), Some(Phase::Writing));
    let e = m.step(3, Event::MoveSpan { mode: Mode::Default, id: did(12), to: n("a") });
    assert!(e.iter().any(|o| matches!(o, Output::Refused { .. })), "refused: {e:?}");
    m.step(4, Event::SplitSpan { mode: Mode::Default, id: did(12), into: 2 });
    assert_eq!(record(&m, did(12)).unwrap().state, SpanState::Replicating, "still where it writes");
    report(&mut m, 5, "b", did(12), done(DDL));
    m.step(6, Event::MoveSpan { mode: Mode::Default, id: did(12), to: n("a") });
    assert_ne!(record(&m, did(12)).unwrap().state, SpanState::Replicating, "free to move once done");
}

#[test]
fn a_table_another_mode_already_dropped_is_still_created_where_its_drop_is_still_ahead() {
    // Found by the barrier sweep (seed 147): redo passed TRUNCATE 2 -> 5 and then TRUNCATE
    // 5 -> 9 before the default mode passed the first; the default mode then never created
    // table 5, and an ALTER of it between the two was never written there.
    let mut m = maintainer_with(&["a", "b"], schema(&[1, 2]), |c| c.redo = true);
    let both = |id: u64, span: dispatcher_core::span::TableSpan, node_offset: u64| {
        [Mode::Default, Mode::Redo].map(|mode| BootstrapSpan {
            mode,
            ..bspan(
                id + if mode == Mode::Redo { node_offset } else { 0 },
                span.clone(),
                ComponentState::Working,
                CP,
            )
        })
    };
    let mut a = both(11, part(1, 2, 0), 100).to_vec();
    a.extend(both(21, whole(2), 100));
    let b = both(12, part(1, 2, 1), 100).to_vec();
    bootstrap_spans(&mut m, vec![("a", a), ("b", b)]);
    let redo_trigger = m.view(Mode::Redo).unwrap().trigger;
    let truncate_5_9 = BlockDetail {
        block_tables: Some(normal(&[5, 0])),
        need_dropped_tables: Some(normal(&[5])),
        need_added_tables: vec![added(9)],
        ..Default::default()
    };
    let later = (T + 20, false);
    // Redo: both TRUNCATEs, one after the other (table 5 has no redo span yet when the second
    // is written: nothing of it to wait for).
    report_mode(&mut m, 1, "a", did(121), waiting(DDL, truncate(5)), Mode::Redo);
    report_mode(&mut m, 1, "a", redo_trigger, waiting(DDL, truncate(5)), Mode::Redo);
    report_mode(&mut m, 2, "a", redo_trigger, done(DDL), Mode::Redo);
    report_mode(&mut m, 3, "a", redo_trigger, waiting(later, truncate_5_9.clone()), Mode::Redo);
    report_mode(&mut m, 4, "a", redo_trigger, done(later), Mode::Redo);
    assert!(m.view(Mode::Redo).unwrap().spans.table((0, 5)).next().is_none(), "redo: table 5 gone");
    // Default: only the first so far.
    let tr = trigger(&m);
    report(&mut m, 5, "a", did(21), waiting(DDL, truncate(5)));
    report(&mut m, 5, "a", tr, waiting(DDL, truncate(5)));
    report(&mut m, 6, "a", tr, done(DDL));
    assert_eq!(table_spans(&m, 5).len(), 1, "default: table 5 created, its drop still ahead here");
    let dropped_at = m.view(Mode::Default).unwrap().spans.table((0, 5)).next().map(|r| r.id);
    assert!(dropped_at.is_some());
}
