//! Bootstrap recovery (I12), one test per rule and per branch (the rules are numbered in
//! src/maintainer/bootstrap.rs).

use dispatcher_core::ids::{Epoch, Mode, Ts};
use dispatcher_core::maintainer::*;
use dispatcher_core::messages::ComponentState::*;
use dispatcher_core::messages::*;

use super::harness::*;

/// A node's answer: dispatcher 11 of table 1 Working at `at` (none if `None`), and one journaled
/// `action` of 11 over table 1 by the previous owner.
fn journal(at: Option<Ts>, action: ScheduleAction, op: OperatorType) -> BootstrapResponse {
    let spans = at.map(|at| bspan(11, whole(1), Working, at)).into_iter().collect();
    BootstrapResponse { operators: vec![journaled(11, whole(1), action, op)], ..response(spans) }
}

/// A node's answer: table 1 as merge sources 11 (at 120) and 12 (at 125) and their merged
/// dispatcher 13, in the given states, with the merge of `sources` into 13 journaled.
fn merge_journaled(
    states: [ComponentState; 2],
    target: (ComponentState, Ts),
    sources: &[u64],
) -> BootstrapResponse {
    let spans = vec![
        bspan(11, part(1, 2, 0), states[0], 120),
        bspan(12, part(1, 2, 1), states[1], 125),
        bspan(13, whole(1), target.0, target.1),
    ];
    let sources: Vec<_> = sources.iter().map(|s| did(*s)).collect();
    let merge = MergeRequest { epoch: Epoch(6), ..crate::node::manager::merge(&sources, did(13)) };
    BootstrapResponse { merge_operators: vec![merge], ..response(spans) }
}

#[test]
fn reported_dispatcher_of_live_table_is_adopted_as_replicating() {
    let mut m = maintainer(&["a", "b"], &[1]);
    let effects =
        bootstrap_spans(&mut m, vec![("a", vec![]), ("b", vec![bspan(11, whole(1), Working, 120)])]);
    assert!(effects.contains(&Output::Bootstrapped));
    assert_eq!(state_of(&m, did(11)), replicating("b"));
    assert_eq!(table_spans(&m, 1).len(), 1, "no hole, nothing added");
    sound(&m);
}

#[test]
fn bootstrap_waits_for_every_node_and_sends_post_bootstrap_to_own_node() {
    let mut m = maintainer(&["a", "b"], &[1]);
    let e = bootstrap_spans(&mut m, vec![("a", vec![])]);
    assert!(!e.contains(&Output::Bootstrapped));
    assert_eq!(m.lifecycle(), Lifecycle::Bootstrapping);
    let e = m.step(0, Event::BootstrapResponse { from: n("b"), response: response(vec![]) });
    assert!(e.contains(&Output::Bootstrapped));
    assert!(e.iter().any(|e| matches!(e, Output::Send { to, message: ToNode::PostBootstrap(p) } if to.as_str() == "a" && p.epoch == EPOCH)));
}

#[test]
fn bootstrap_requests_carry_epoch_and_triggers_only_to_own_node() {
    let mut m = maintainer(&["a", "b"], &[1]);
    let e = m.step(0, Event::Tick);
    let reqs: Vec<(String, BootstrapRequest)> = e
        .iter()
        .filter_map(|e| match e {
            Output::Send { to, message: ToNode::Bootstrap(r) } => Some((to.to_string(), r.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(reqs.len(), 2);
    assert!(reqs.iter().all(|(_, r)| r.epoch == EPOCH && r.start_ts == CP));
    assert!(reqs[0].1.trigger.is_some() && reqs[0].0 == "a");
    assert!(reqs[1].1.trigger.is_none());
    // Unanswered requests are resent after the interval, not before.
    assert!(m.step(500, Event::Tick).is_empty());
    assert_eq!(m.step(1_000, Event::Tick).len(), 2);
}

#[test]
fn uncovered_live_table_becomes_absent_and_is_scheduled() {
    let mut m = maintainer(&["a", "b"], &[1, 2]);
    bootstrap_spans(&mut m, vec![("a", vec![]), ("b", vec![bspan(11, whole(1), Working, 120)])]);
    let spans = table_spans(&m, 2);
    assert_eq!(spans, vec![(whole(2), SpanState::Absent, None)]);
    let e = m.step(10, Event::Tick);
    let creates = schedules(&e);
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].0, "a", "least-loaded node (b hosts table 1)");
    assert_eq!((creates[0].1, creates[0].2), (ScheduleAction::Create, OperatorType::Add));
    assert!(creates[0].4 >= CP, "I11: start ts at least the committed checkpoint");
    sound(&m);
}

#[test]
fn holes_between_reported_spans_are_repaired() {
    let mut m = maintainer(&["a"], &[1]);
    let spans = vec![bspan(11, part(1, 4, 0), Working, 120), bspan(12, part(1, 4, 2), Working, 120)];
    bootstrap_spans(&mut m, vec![("a", spans)]);
    let spans = table_spans(&m, 1);
    let absent: Vec<_> = spans.iter().filter(|s| s.1 == SpanState::Absent).map(|s| s.0.clone()).collect();
    assert_eq!(absent, vec![part(1, 4, 1), part(1, 4, 3)]);
    sound(&m);
}

#[test]
fn same_id_reported_by_two_nodes_keeps_the_working_copy_and_removes_the_other() {
    let mut m = maintainer(&["a", "b"], &[1]);
    let (stopped, working) = (bspan(11, whole(1), Stopped, 150), bspan(11, whole(1), Working, 120));
    bootstrap_spans(&mut m, vec![("a", vec![stopped]), ("b", vec![working])]);
    assert_eq!(state_of(&m, did(11)), replicating("b"));
    assert_eq!(orphans(&m), vec![("a".to_string(), did(11))]);
    let e = m.step(1, Event::Tick);
    assert!(schedules(&e).contains(&("a".into(), ScheduleAction::Remove, OperatorType::Remove, did(11), 0)));
}

#[test]
fn identical_spans_with_two_ids_keep_one_and_remove_the_other_as_temporary_coverage() {
    let mut m = maintainer(&["a", "b"], &[1]);
    let (first, second) = (bspan(11, whole(1), Working, 120), bspan(12, whole(1), Working, 120));
    bootstrap_spans(&mut m, vec![("a", vec![first]), ("b", vec![second])]);
    assert_eq!(state_of(&m, did(11)), replicating("a"));
    assert_eq!(state_of(&m, did(12)), replicating("b"), "kept until it stopped");
    assert_eq!(op_of(&m, did(12)), Some((OperatorKind::Remove, OperatorPhase::Removing)));
    // Once it stopped, it is deleted and nothing needs repair (11 covers the table).
    status(&mut m, 5, "b", did(12), Stopped, 130);
    assert!(record(&m, did(12)).is_none());
    assert_eq!(table_spans(&m, 1).len(), 1);
    sound(&m);
}

#[test]
fn partial_overlap_keeps_the_narrower_first_and_repairs_the_hole_after_the_cleanup() {
    let parts = whole(1).split_even(4).unwrap();
    let wide = parts[0].joined_with(&parts[2]); // [0, 3/4)
    let mut m = maintainer(&["a", "b"], &[1]);
    let (narrow, wide) = (bspan(11, parts[0].clone(), Working, 120), bspan(12, wide, Working, 120));
    bootstrap_spans(&mut m, vec![("a", vec![narrow]), ("b", vec![wide])]);
    assert_eq!(op_of(&m, did(12)), Some((OperatorKind::Remove, OperatorPhase::Removing)));
    // Only the part nobody covers at all is absent now; the rest waits for the cleanup.
    let absent: Vec<_> =
        table_spans(&m, 1).into_iter().filter(|s| s.1 == SpanState::Absent).map(|s| s.0).collect();
    assert_eq!(absent, vec![parts[3].clone()]);
    status(&mut m, 5, "b", did(12), Stopped, 130);
    let absent: Vec<_> =
        table_spans(&m, 1).into_iter().filter(|s| s.1 == SpanState::Absent).map(|s| s.0).collect();
    assert_eq!(absent.len(), 2, "the hole under the removed span is refilled: {absent:?}");
    sound(&m);
}

#[test]
fn restored_o_remove_deletes_the_span_and_repairs_coverage() {
    let mut m = maintainer(&["a"], &[1]);
    bootstrap(&mut m, vec![("a", journal(Some(120), ScheduleAction::Remove, OperatorType::Remove))]);
    assert_eq!(op_of(&m, did(11)), Some((OperatorKind::Remove, OperatorPhase::Removing)));
    let e = m.step(1, Event::Tick);
    let removes = schedules(&e);
    assert!(removes
        .iter()
        .any(|s| s.3 == did(11) && s.1 == ScheduleAction::Remove && s.2 == OperatorType::Remove));
    status(&mut m, 2, "a", did(11), Stopped, 130);
    assert!(record(&m, did(11)).is_none());
    let spans = table_spans(&m, 1);
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].1, SpanState::Absent, "coverage repaired with a fresh span");
    sound(&m);
}

#[test]
fn s1_restored_move_remove_marks_the_span_absent_after_the_origin_stops() {
    let mut m = maintainer(&["a", "b"], &[1]);
    let r = journal(Some(120), ScheduleAction::Remove, OperatorType::Move);
    bootstrap(&mut m, vec![("a", r), ("b", response(vec![]))]);
    let e = m.step(1, Event::Tick);
    assert!(schedules(&e)
        .iter()
        .any(|s| s.0 == "a" && s.2 == OperatorType::Move && s.1 == ScheduleAction::Remove));
    assert!(
        schedules(&e).iter().all(|s| s.1 == ScheduleAction::Remove),
        "no create while the origin may run (I2)"
    );
    status(&mut m, 2, "a", did(11), Stopped, 130);
    assert_eq!(state_of(&m, did(11)), absent());
    assert_eq!(record(&m, did(11)).unwrap().checkpoint, 130, "the final checkpoint is kept");
    let e = m.step(3, Event::Tick);
    assert_eq!(schedules(&e).iter().filter(|s| s.1 == ScheduleAction::Create && s.3 == did(11)).count(), 1);
    sound(&m);
}

#[test]
fn s2_restored_split_remove_re_adds_the_span_unsplit() {
    let mut m = maintainer(&["a"], &[1]);
    bootstrap(&mut m, vec![("a", journal(Some(120), ScheduleAction::Remove, OperatorType::Split))]);
    assert_eq!(op_of(&m, did(11)), Some((OperatorKind::Remove, OperatorPhase::Removing)));
    status(&mut m, 2, "a", did(11), Stopped, 130);
    assert_eq!(table_spans(&m, 1), vec![(whole(1), SpanState::Absent, None)]);
}

#[test]
fn s3a_restored_remove_for_a_dropped_table_keeps_no_span() {
    let mut m = maintainer_after(&[1], 50, Ddl::Drop(table(1)));
    bootstrap(&mut m, vec![("a", journal(Some(40), ScheduleAction::Remove, OperatorType::Remove))]);
    assert!(record(&m, did(11)).is_none(), "no span for a dropped table");
    assert_eq!(
        op_of(&m, did(11)),
        Some((OperatorKind::Remove, OperatorPhase::Removing)),
        "but its dispatcher is removed"
    );
    status(&mut m, 2, "a", did(11), Stopped, 45);
    assert!(op_of(&m, did(11)).is_none());
    assert!(table_spans(&m, 1).is_empty(), "dropped stays dropped (I8)");
}

#[test]
fn s3b_table_dropped_after_the_start_ts_stays_dropped() {
    let mut m = maintainer_after(&[1], 150, Ddl::Drop(table(1))); // after the start ts (100)
    bootstrap(&mut m, vec![("a", journal(Some(120), ScheduleAction::Remove, OperatorType::Move))]);
    assert!(record(&m, did(11)).is_none());
    status(&mut m, 2, "a", did(11), Stopped, 130);
    let e = m.step(3, Event::Tick);
    assert!(schedules(&e).iter().all(|s| s.1 != ScheduleAction::Create), "no create for a dropped table");
    assert!(table_spans(&m, 1).is_empty());
}

#[test]
fn old_owner_remove_whose_dispatcher_is_gone_leaves_a_hole_that_is_repaired() {
    let mut m = maintainer(&["a"], &[1]);
    bootstrap(&mut m, vec![("a", journal(None, ScheduleAction::Remove, OperatorType::Remove))]);
    assert!(op_of(&m, did(11)).is_none());
    assert_eq!(table_spans(&m, 1), vec![(whole(1), SpanState::Absent, None)]);
}

#[test]
fn s11_stale_create_for_a_dropped_table_is_skipped() {
    let mut m = maintainer_after(&[1, 2], 90, Ddl::Drop(table(2)));
    let mut r = response(vec![bspan(11, whole(1), Working, 120)]);
    r.operators.push(journaled(21, whole(2), ScheduleAction::Create, OperatorType::Move));
    bootstrap(&mut m, vec![("a", r)]);
    assert!(record(&m, did(21)).is_none());
    assert!(op_of(&m, did(21)).is_none());
    let e = m.step(1, Event::Tick);
    assert!(schedules(&e).is_empty(), "{e:?}");
}

#[test]
fn current_owner_create_in_flight_is_restored_as_an_add_to_the_same_node() {
    let mut m = maintainer(&["a", "b"], &[1]);
    let r = journal(None, ScheduleAction::Create, OperatorType::Move);
    bootstrap(&mut m, vec![("a", response(vec![])), ("b", r)]);
    assert_eq!(state_of(&m, did(11)), Some((SpanState::Scheduling, Some("b".into()))));
    let e = m.step(1, Event::Tick);
    assert_eq!(schedules(&e), vec![("b".into(), ScheduleAction::Create, OperatorType::Add, did(11), CP)]);
}

#[test]
fn create_journaled_for_a_reported_dispatcher_is_not_restored() {
    let mut m = maintainer(&["a"], &[1]);
    bootstrap(&mut m, vec![("a", journal(Some(120), ScheduleAction::Create, OperatorType::Add))]);
    assert!(op_of(&m, did(11)).is_none());
    assert_eq!(state_of(&m, did(11)), replicating("a"));
}

#[test]
fn journals_that_disagree_resolve_to_the_remove() {
    let mut m = maintainer(&["a", "b"], &[1]);
    let ra = journal(Some(120), ScheduleAction::Remove, OperatorType::Move);
    bootstrap(&mut m, vec![("a", ra), ("b", journal(None, ScheduleAction::Create, OperatorType::Move))]);
    assert_eq!(op_of(&m, did(11)), Some((OperatorKind::Remove, OperatorPhase::Removing)));
    let e = m.step(1, Event::Tick);
    assert!(schedules(&e).iter().all(|s| s.1 == ScheduleAction::Remove), "{e:?}");
}

#[test]
fn s5_pre_commit_merge_with_evidence_is_restored_with_its_original_id_and_new_epoch() {
    let mut m = maintainer(&["a"], &[1]);
    let r = merge_journaled([WaitingMerge, WaitingMerge], (MergeReady, 0), &[11, 12]);
    bootstrap(&mut m, vec![("a", r)]);
    assert_eq!(op_of(&m, did(13)), Some((OperatorKind::Merge, OperatorPhase::Merging)));
    assert_eq!(op_of(&m, did(11)), Some((OperatorKind::Occupy, OperatorPhase::Holding)));
    assert_eq!(op_of(&m, did(12)), Some((OperatorKind::Occupy, OperatorPhase::Holding)));
    assert_eq!(record(&m, did(13)).unwrap().checkpoint, 120, "target starts at the sources' minimum");
    let e = m.step(1, Event::Tick);
    let sent = merges(&e);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.merged, did(13));
    assert_eq!(sent[0].1.epoch, EPOCH);
    // The node's merge completes: the sources leave, the merged span replicates.
    status(&mut m, 2, "a", did(13), Working, 126);
    assert!(record(&m, did(11)).is_none() && record(&m, did(12)).is_none());
    assert_eq!(state_of(&m, did(13)), replicating("a"));
    assert!(m.view(Mode::Default).unwrap().operators.is_empty(), "occupies released");
    sound(&m);
}

#[test]
fn merge_past_its_commit_point_adopts_the_target_and_removes_the_sources() {
    let mut m = maintainer(&["a"], &[1]);
    let r = merge_journaled([WaitingMerge, Stopped], (Initializing, 120), &[11, 12]);
    bootstrap(&mut m, vec![("a", r)]);
    assert_eq!(state_of(&m, did(13)), replicating("a"));
    assert!(record(&m, did(11)).is_none() && record(&m, did(12)).is_none());
    let mut o = orphans(&m);
    o.sort();
    assert_eq!(o, vec![("a".to_string(), did(11)), ("a".to_string(), did(12))]);
    sound(&m);
}

#[test]
fn pre_commit_merge_without_complete_evidence_removes_the_target_and_keeps_the_sources() {
    let mut m = maintainer(&["a"], &[1]);
    // Source 12 is Working: the node never got as far as waiting on it.
    let r = merge_journaled([WaitingMerge, Working], (Preparing, 0), &[11, 12]);
    bootstrap(&mut m, vec![("a", r)]);
    assert_eq!(op_of(&m, did(13)), Some((OperatorKind::Remove, OperatorPhase::Removing)));
    assert_eq!(state_of(&m, did(11)), replicating("a"));
    assert_eq!(state_of(&m, did(12)), replicating("a"));
    status(&mut m, 2, "a", did(13), Stopped, 0);
    assert!(record(&m, did(13)).is_none());
    assert_eq!(table_spans(&m, 1).len(), 2, "the sources tile the table; nothing to repair");
    sound(&m);
}

#[test]
fn merge_journal_whose_target_is_not_reported_is_stale() {
    let mut m = maintainer(&["a"], &[1]);
    let mut r = merge_journaled([Working, Working], (Working, 0), &[11, 12]);
    r.spans.pop(); // 13 is not reported
    bootstrap(&mut m, vec![("a", r)]);
    assert!(m.view(Mode::Default).unwrap().operators.is_empty());
    assert_eq!(table_spans(&m, 1).len(), 2);
}

#[test]
fn dispatcher_of_a_dropped_table_is_removed_without_a_span() {
    let mut m = maintainer_after(&[1, 2], 90, Ddl::Drop(table(2)));
    bootstrap_spans(&mut m, vec![("a", vec![bspan(21, whole(2), Working, 80)])]);
    assert!(record(&m, did(21)).is_none());
    assert_eq!(op_of(&m, did(21)), Some((OperatorKind::Remove, OperatorPhase::Removing)));
}

#[test]
fn dispatcher_standing_past_its_tables_drop_is_removed_not_adopted_as_unknown() {
    // Re-created after its DROP was written, it started at the sink's DDL ts: its checkpoint (95)
    // is past the DROP (90), so the history after it does not hold the drop; the schema does.
    let mut m = maintainer_after(&[1, 2], 90, Ddl::Drop(table(2)));
    bootstrap_spans(&mut m, vec![("a", vec![bspan(21, whole(2), Working, 95)])]);
    assert!(record(&m, did(21)).is_none(), "no span is kept for a dropped table");
    assert_eq!(op_of(&m, did(21)), Some((OperatorKind::Remove, OperatorPhase::Removing)));
}

#[test]
fn with_ddls_through_the_barrier_the_schema_is_read_only_where_the_triggers_start() {
    // Table 3 is created after the start (at 110) and table 2 dropped after it (at 120): both DDLs
    // will reach this maintainer through its triggers, which replay from the start. Until then
    // table 3 is not placed and table 2 still is (B8: applied once, after the write).
    let mut s = schema(&[1, 2]);
    s.apply(110, Ddl::Create(table(3)));
    s.apply(120, Ddl::Drop(table(2)));
    let mut m = maintainer_with(&["a"], s.clone(), |cfg| cfg.ddls_through_barrier = true);
    bootstrap_spans(&mut m, vec![("a", vec![])]);
    assert!(table_spans(&m, 3).is_empty(), "created after the start: not yet");
    assert_eq!(table_spans(&m, 2).len(), 1, "dropped after the start: placed until its DROP applies");
    // Read from the history instead (DDLs as events), both apply at once.
    let mut m = maintainer_with(&["a"], s, |_| {});
    bootstrap_spans(&mut m, vec![("a", vec![])]);
    assert_eq!(table_spans(&m, 3).len(), 1);
    assert!(table_spans(&m, 2).is_empty());
}

#[test]
fn dispatcher_of_an_unknown_table_is_tracked_not_dropped_and_not_recreated() {
    let mut m = maintainer(&["a"], &[1]);
    let spans = vec![bspan(11, whole(1), Working, 120), bspan(91, part(9, 2, 0), Working, 120)];
    bootstrap_spans(&mut m, vec![("a", spans)]);
    assert_eq!(state_of(&m, did(91)), replicating("a"));
    assert_eq!(table_spans(&m, 9).len(), 1, "no hole repair for a table the schema does not know");
    assert!(op_of(&m, did(91)).is_none());
}

#[test]
fn table_created_after_the_start_ts_is_adopted_not_ignored() {
    let mut m = maintainer_after(&[1], 110, Ddl::Create(table(3)));
    bootstrap_spans(&mut m, vec![("a", vec![bspan(31, whole(3), Working, 115)])]);
    assert_eq!(state_of(&m, did(31)), replicating("a"));
    assert_eq!(table_spans(&m, 1), vec![(whole(1), SpanState::Absent, None)]);
}

#[test]
fn node_leaving_during_bootstrap_is_not_waited_for() {
    let mut m = maintainer(&["a", "b"], &[1]);
    bootstrap_spans(&mut m, vec![("a", vec![])]);
    let e = m.step(1, Event::NodeLeft(n("b")));
    assert!(e.contains(&Output::Bootstrapped));
    assert_eq!(table_spans(&m, 1), vec![(whole(1), SpanState::Absent, None)], "its ranges are holes");
}

#[test]
fn node_joining_during_bootstrap_must_answer_too() {
    let mut m = maintainer(&["a"], &[1]);
    m.step(0, Event::Tick);
    let e = m.step(1, Event::NodeJoined(n("c")));
    assert!(e
        .iter()
        .any(|e| matches!(e, Output::Send { to, message: ToNode::Bootstrap(_) } if to.as_str() == "c")));
    let e = m.step(2, Event::BootstrapResponse { from: n("a"), response: response(vec![]) });
    assert!(!e.contains(&Output::Bootstrapped));
    let e = m.step(3, Event::BootstrapResponse { from: n("c"), response: response(vec![]) });
    assert!(e.contains(&Output::Bootstrapped));
}

#[test]
fn late_node_answer_after_bootstrap_has_its_unknown_dispatchers_removed() {
    let mut m = maintainer(&["a"], &[1]);
    bootstrap_spans(&mut m, vec![("a", vec![bspan(11, whole(1), Working, 120)])]);
    m.step(1, Event::NodeJoined(n("c")));
    let late = response(vec![bspan(11, whole(1), Working, 120)]);
    m.step(2, Event::BootstrapResponse { from: n("c"), response: late });
    assert_eq!(orphans(&m), vec![("c".to_string(), did(11))]);
    assert_eq!(state_of(&m, did(11)), replicating("a"), "the bound copy stays");
}

#[test]
fn old_table_trigger_on_another_node_is_removed() {
    let mut m = maintainer(&["a", "b"], &[1]);
    let old_trigger = bspan(99, dispatcher_core::span::TableSpan::table_trigger(0), Working, 100);
    bootstrap_spans(&mut m, vec![("a", vec![]), ("b", vec![old_trigger])]);
    assert_eq!(orphans(&m), vec![("b".to_string(), did(99))]);
}

#[test]
fn refused_bootstrap_is_asked_again_and_stale_epoch_answers_are_dropped() {
    let mut m = maintainer(&["a"], &[1]);
    m.step(0, Event::Tick);
    let stale = BootstrapResponse { epoch: Epoch(6), ..response(vec![bspan(11, whole(1), Working, 120)]) };
    assert!(m.step(1, Event::BootstrapResponse { from: n("a"), response: stale }).is_empty());
    let mut refused = response(vec![]);
    refused.err = Some(RunningError { message: "trigger mismatch".into(), ..Default::default() });
    let e = m.step(2, Event::BootstrapResponse { from: n("a"), response: refused });
    assert!(matches!(e[..], [Output::NodeError { .. }]));
    assert_eq!(m.lifecycle(), Lifecycle::Bootstrapping);
    let e = m.step(1_002, Event::Tick);
    assert!(e.iter().any(|e| matches!(e, Output::Send { message: ToNode::Bootstrap(_), .. })));
}

#[test]
fn redo_mode_is_recovered_independently() {
    let mut m = maintainer_with(&["a"], schema(&[1]), |c| c.redo = true);
    let redo = BootstrapSpan { mode: Mode::Redo, ..bspan(51, whole(1), Working, 120) };
    bootstrap_spans(&mut m, vec![("a", vec![bspan(11, whole(1), Working, 120), redo])]);
    let rv = m.view(Mode::Redo).unwrap();
    assert_eq!(rv.spans.get(did(51)).unwrap().state, SpanState::Replicating);
    assert!(rv.spans.get(did(11)).is_none());
    assert!(m.view(Mode::Default).unwrap().spans.get(did(51)).is_none());
}

/// B13: a dispatcher parked on a DDL (WRITING at 500) is re-created to replay it:
/// start at 499 with DML skipped, never below the committed checkpoint; a DONE barrier is
/// history and changes nothing.
#[test]
fn re_created_span_replays_the_ddl_its_dispatcher_was_parked_on() {
    let state = |stage| BlockState {
        is_blocked: true,
        block_ts: 500,
        is_sync_point: false,
        stage,
        detail: std::sync::Arc::default(),
    };
    for (stage, start) in [(BlockStage::Writing, 499), (BlockStage::Done, 400)] {
        let mut m = maintainer(&["a", "b"], &[1]);
        let parked =
            BootstrapSpan { block: Some(Box::new(state(stage))), ..bspan(11, whole(1), Working, 400) };
        bootstrap_spans(&mut m, vec![("a", vec![parked]), ("b", vec![])]);
        m.step(1, Event::NodeLeft(n("a")));
        let e = m.step(2, Event::Tick);
        let creates: Vec<_> = schedules(&e).into_iter().filter(|s| s.1 == ScheduleAction::Create).collect();
        assert_eq!(creates.len(), 1);
        assert_eq!(creates[0].4, start, "{stage:?}");
    }
}

/// Issue 9, root cause 1: a merge restored from a node's journal was rebuilt as "not yet taken
/// up" and given up after the send bound while the node was still draining it; the sources were
/// then placed again beside the merged dispatcher (I2). A restored merge is taken up by
/// definition: however many resends go unanswered, it waits for the node.
#[test]
fn restored_merge_is_never_given_up_for_want_of_an_acknowledgement() {
    let mut m = maintainer_with(&["a"], schema(&[1]), |c| c.merge_sends_max = 2);
    let r = merge_journaled([WaitingMerge, WaitingMerge], (MergeReady, 0), &[11, 12]);
    bootstrap(&mut m, vec![("a", r)]);
    let mut sent = 0;
    for t in 1..20 {
        let e = m.step(t * 1_000, Event::Tick);
        sent += merges(&e).len();
        assert!(schedules(&e).is_empty(), "nothing is removed or placed while the node drains: {e:?}");
    }
    assert!(sent > 2, "resent past the bound");
    assert_eq!(op_of(&m, did(13)), Some((OperatorKind::Merge, OperatorPhase::Merging)));
    // The drain finishes (sources report Stopped), then the merged dispatcher works.
    status(&mut m, 30_000, "a", did(11), Stopped, 120);
    status(&mut m, 30_001, "a", did(12), Stopped, 125);
    assert_eq!(op_of(&m, did(13)), Some((OperatorKind::Merge, OperatorPhase::Merging)));
    status(&mut m, 30_002, "a", did(13), Working, 130);
    assert!(record(&m, did(11)).is_none() && record(&m, did(12)).is_none());
    assert_eq!(state_of(&m, did(13)), replicating("a"));
    sound(&m);
}

/// Issue 9: a pre-commit merge without complete evidence whose target was MergeReady may be
/// draining: a waiting source may close on its own, and if its Stopped is lost the span would
/// stay "replicating" where nothing runs. Its waiting sources are removed and placed again.
#[test]
fn incomplete_merge_that_may_be_draining_evicts_its_waiting_sources() {
    let mut m = maintainer(&["a"], &[1]);
    // Evidence incomplete: the journal names a source (14) the node does not report.
    let r = merge_journaled([WaitingMerge, WaitingMerge], (MergeReady, 0), &[11, 12, 14]);
    bootstrap(&mut m, vec![("a", r)]);
    assert_eq!(op_of(&m, did(13)), Some((OperatorKind::Remove, OperatorPhase::Removing)));
    assert_eq!(op_of(&m, did(11)), Some((OperatorKind::Remove, OperatorPhase::Removing)));
    assert_eq!(op_of(&m, did(12)), Some((OperatorKind::Remove, OperatorPhase::Removing)));
    for (t, id) in [(2, 13), (3, 11), (4, 12)] {
        status(&mut m, t, "a", did(id), Stopped, 125);
    }
    assert!(record(&m, did(13)).is_none());
    for id in [11, 12] {
        assert_eq!(state_of(&m, did(id)), absent(), "{id} placed again");
    }
    sound(&m);
}
