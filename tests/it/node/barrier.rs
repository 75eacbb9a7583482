//! The dispatcher's side of the barrier (`node::barrier`, barrier.md §4): each transition of
//! §4.2 and each trigger rule of §4.3 by name, and a property over random inputs (B6: a write or
//! pass only for the pending event, on its full key, once).

use std::sync::Arc;

use dispatcher_core::messages::*;
use dispatcher_core::node::barrier::{BlockEvent, DispatcherBarrier, Misuse, Step, RESEND_MS};
use proptest::prelude::*;

fn ddl(ts: u64) -> BlockEvent {
    BlockEvent {
        commit_ts: ts,
        is_sync_point: false,
        blocking: true,
        wide: false,
        not_sync: false,
        detail: Arc::default(),
    }
}

fn syncpoint(ts: u64) -> BlockEvent {
    BlockEvent {
        commit_ts: ts,
        is_sync_point: true,
        blocking: true,
        wide: true,
        not_sync: false,
        detail: Arc::default(),
    }
}

fn create_table(ts: u64) -> BlockEvent {
    let added = AddedTable { table_id: 9, schema_id: 1, splitable: true };
    let detail = BlockDetail { need_added_tables: vec![added], ..BlockDetail::default() };
    BlockEvent {
        commit_ts: ts,
        is_sync_point: false,
        blocking: false,
        wide: false,
        not_sync: false,
        detail: Arc::new(detail),
    }
}

fn event(ts: u64, sp: bool) -> BarrierEvent {
    BarrierEvent { commit_ts: ts, is_sync_point: sp }
}

fn answer(
    action: Option<(bool, BarrierEvent)>,
    ack: Option<BarrierEvent>,
    ignored: Option<BarrierEvent>,
) -> BarrierAnswer {
    BarrierAnswer {
        influence: Influence::All,
        action: action.map(|(pass, event)| BarrierAction { pass, event }),
        ack,
        ignored,
    }
}

fn write(e: BarrierEvent) -> BarrierAnswer {
    answer(Some((false, e)), None, None)
}

fn pass(e: BarrierEvent) -> BarrierAnswer {
    answer(Some((true, e)), None, None)
}

fn ack(e: BarrierEvent) -> BarrierAnswer {
    answer(None, Some(e), None)
}

fn reported(steps: &[Step]) -> Vec<(u64, bool, BlockStage)> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Report(st) => Some((st.block_ts, st.is_sync_point, st.stage)),
            _ => None,
        })
        .collect()
}

/// Reaches WAITING on `e`.
fn waiting(b: &mut DispatcherBarrier, e: BlockEvent) {
    assert_eq!(b.meet(e).unwrap(), vec![Step::Flush]);
    let steps = b.flushed(0).unwrap();
    assert_eq!(reported(&steps).len(), 1);
}

#[test]
fn b4_a_blocking_event_is_flushed_before_waiting_is_reported() {
    let mut b = DispatcherBarrier::new(false);
    assert_eq!(b.meet(ddl(100)).unwrap(), vec![Step::Flush], "nothing is reported before the flush");
    assert_eq!(b.block_state(), None, "not WAITING yet");
    let steps = b.flushed(10).unwrap();
    assert_eq!(reported(&steps), vec![(100, false, BlockStage::Waiting)]);
    assert!(matches!(&steps[0], Step::Report(s) if s.is_blocked));
    assert_eq!(b.block_state().map(|s| s.stage), Some(BlockStage::Waiting));
}

/// A Write action's steps: the WRITING noted for the bootstrap snapshot (the maintainer never
/// reads it: the node keeps it), then the write itself.
fn writes(steps: &[Step], ts: u64) -> bool {
    reported(steps) == vec![(ts, false, BlockStage::Writing)] && steps.last() == Some(&Step::Write)
}

#[test]
fn write_action_writes_then_done_is_reported_and_the_stream_resumes() {
    let mut b = DispatcherBarrier::new(false);
    waiting(&mut b, ddl(100));
    let steps = b.answer(&write(event(100, false)), 100, 0);
    assert!(writes(&steps, 100), "{steps:?}");
    assert_eq!(b.block_state().map(|s| s.stage), Some(BlockStage::Writing), "a snapshot says WRITING");
    assert_eq!(reported(&b.done(5).unwrap()), vec![(100, false, BlockStage::Done)]);
    assert_eq!(b.block_state(), None);
    assert!(b.meet(ddl(200)).is_ok(), "the next event is met");
}

#[test]
fn pass_action_passes_without_writing() {
    let mut b = DispatcherBarrier::new(false);
    waiting(&mut b, ddl(100));
    assert_eq!(b.answer(&pass(event(100, false)), 100, 0), vec![Step::Pass]);
    assert_eq!(reported(&b.done(1).unwrap()), vec![(100, false, BlockStage::Done)]);
}

#[test]
fn h1_an_action_must_match_the_full_key_not_only_the_ts() {
    let mut b = DispatcherBarrier::new(false);
    waiting(&mut b, ddl(100));
    // A syncpoint's Write at the same ts is not the DDL's: a later key, ignored.
    assert_eq!(b.answer(&write(event(100, true)), 100, 0), Vec::<Step>::new());
    assert_eq!(b.block_state().map(|s| s.stage), Some(BlockStage::Waiting));
}

#[test]
fn b6_an_action_for_a_passed_or_older_event_answers_done_without_side_effect() {
    let mut b = DispatcherBarrier::new(false);
    waiting(&mut b, ddl(100));
    let _ = b.answer(&write(event(100, false)), 100, 0);
    let _ = b.done(1).unwrap();
    // A resent Write of the event already written: DONE again (a lost DONE regenerated).
    assert_eq!(reported(&b.answer(&write(event(100, false)), 150, 2)), vec![(100, false, BlockStage::Done)]);
    // Older than the pending one: DONE, nothing done.
    waiting(&mut b, ddl(200));
    assert_eq!(reported(&b.answer(&pass(event(90, false)), 200, 3)), vec![(90, false, BlockStage::Done)]);
    assert_eq!(b.block_state().map(|s| s.stage), Some(BlockStage::Waiting));
}

#[test]
fn b6_a_future_action_is_ignored() {
    let mut b = DispatcherBarrier::new(false);
    assert_eq!(b.answer(&write(event(500, false)), 400, 0), Vec::<Step>::new(), "not met yet");
    waiting(&mut b, ddl(100));
    assert_eq!(b.answer(&pass(event(300, false)), 100, 0), Vec::<Step>::new(), "later than the pending one");
}

#[test]
fn b2_a_write_resent_while_writing_is_not_answered_done_before_the_write_is_durable() {
    let mut b = DispatcherBarrier::new(false);
    waiting(&mut b, ddl(100));
    assert!(writes(&b.answer(&write(event(100, false)), 100, 0), 100));
    assert_eq!(b.answer(&write(event(100, false)), 100, 1), Vec::<Step>::new(), "no early DONE");
    assert_eq!(b.answer(&write(event(100, false)), 100, 1), Vec::<Step>::new());
    assert_eq!(reported(&b.done(2).unwrap()), vec![(100, false, BlockStage::Done)], "DONE once durable");
}

#[test]
fn b15_waiting_is_resent_until_acknowledged_and_ignored_resends_at_once() {
    let mut b = DispatcherBarrier::new(false);
    waiting(&mut b, ddl(100));
    assert!(b.tick(RESEND_MS - 1).is_empty());
    assert_eq!(reported(&b.tick(RESEND_MS)), vec![(100, false, BlockStage::Waiting)]);
    assert_eq!(
        reported(&b.answer(&answer(None, None, Some(event(100, false))), 100, RESEND_MS + 1)),
        vec![(100, false, BlockStage::Waiting)],
        "ignored: offered again now"
    );
    assert!(b.answer(&ack(event(100, false)), 100, RESEND_MS + 2).is_empty());
    assert_eq!(b.unacknowledged(), 0);
    assert!(b.tick(10 * RESEND_MS).is_empty(), "acknowledged: no more resends");
    assert!(writes(&b.answer(&write(event(100, false)), 100, 0), 100), "still waits for its action");
}

#[test]
fn b11_a_waiting_dispatcher_reports_below_the_event() {
    let mut b = DispatcherBarrier::new(false);
    assert_eq!(b.checkpoint(150), 150);
    waiting(&mut b, ddl(100));
    assert_eq!(b.checkpoint(150), 99);
    let _ = b.answer(&pass(event(100, false)), 100, 0);
    assert_eq!(b.checkpoint(150), 99, "until done");
    let _ = b.done(1).unwrap();
    assert_eq!(b.checkpoint(150), 150);
}

#[test]
fn trigger_holds_a_db_or_all_event_while_reports_await_an_ack_and_releases_it_at_zero() {
    let mut t = DispatcherBarrier::new(true);
    let _ = t.meet(create_table(100)).unwrap();
    let _ = t.flushed(0).unwrap();
    let _ = t.done(1).unwrap();
    assert_eq!(t.unacknowledged(), 1, "its NONE is not acknowledged yet");
    assert_eq!(t.meet(syncpoint(200)).unwrap(), Vec::<Step>::new(), "held");
    assert!(t.holding());
    assert!(matches!(t.meet(ddl(300)), Err(Misuse::Overlap(..))), "one slot (B19)");
    assert_eq!(t.answer(&ack(event(100, false)), 200, 4), vec![Step::Flush], "released at zero: flush first");
    assert!(!t.holding());
    assert_eq!(reported(&t.flushed(5).unwrap()), vec![(200, true, BlockStage::Waiting)]);
}

/// Found by the barrier sweep: a dispatcher whose WAITING was never acknowledged (the maintainer
/// moved before the ACK) kept resending it after passing the event, and the node core then noted
/// that old event as the one waited on, so a later bootstrap rebuilt the wrong event. Done, an
/// event's WAITING is withdrawn; a wide event is then not held for it either (receiving the
/// action proves the maintainer had the report).
#[test]
fn a_done_events_unacknowledged_waiting_is_withdrawn_not_resent() {
    let mut b = DispatcherBarrier::new(true);
    waiting(&mut b, ddl(100));
    let _ = b.answer(&write(event(100, false)), 100, 0);
    let _ = b.done(1).unwrap();
    assert_eq!(b.unacknowledged(), 0);
    assert!(b.tick(10 * RESEND_MS).is_empty(), "nothing resent");
    assert_eq!(b.meet(syncpoint(200)).unwrap(), vec![Step::Flush], "not held");
}

#[test]
fn b19_a_duplicate_ack_never_drives_the_count_below_zero() {
    let mut t = DispatcherBarrier::new(true);
    waiting(&mut t, ddl(100));
    let _ = t.answer(&ack(event(100, false)), 100, 0);
    let _ = t.answer(&ack(event(100, false)), 100, 0);
    let _ = t.answer(&ack(event(50, true)), 100, 0);
    assert_eq!(t.unacknowledged(), 0);
    // Still counts the next report.
    let _ = t.answer(&pass(event(100, false)), 100, 0);
    let _ = t.done(1).unwrap();
    waiting(&mut t, ddl(200));
    assert_eq!(t.unacknowledged(), 1);
}

#[test]
fn b10_a_trigger_adding_a_table_stays_below_it_until_acknowledged_and_reports_none() {
    let mut t = DispatcherBarrier::new(true);
    assert_eq!(t.meet(create_table(100)).unwrap(), vec![Step::Flush], "flushed first");
    assert_eq!(t.checkpoint(150), 99, "capped before any of it");
    assert_eq!(t.flushed(0).unwrap(), vec![Step::Write], "then written locally");
    let steps = t.done(1).unwrap();
    assert_eq!(reported(&steps), vec![(100, false, BlockStage::None)]);
    assert!(matches!(&steps[0], Step::Report(s) if !s.is_blocked && !s.detail.need_added_tables.is_empty()));
    assert_eq!(reported(&t.tick(1 + RESEND_MS)), vec![(100, false, BlockStage::None)], "resent");
    assert_eq!(t.checkpoint(150), 99);
    let _ = t.answer(&ack(event(100, false)), 150, 2);
    assert_eq!(t.checkpoint(150), 150, "lifted by the ACK");
    assert_eq!(t.block_state(), None, "a non-blocking event is never in a snapshot");
}

#[test]
fn a_non_blocking_ddl_of_a_table_dispatcher_is_written_locally_and_reported_nowhere() {
    let mut b = DispatcherBarrier::new(false);
    let alter = BlockEvent { blocking: false, ..ddl(100) };
    assert_eq!(b.meet(alter).unwrap(), vec![Step::Flush]);
    assert_eq!(b.done(0), Err(Misuse::Unexpected("done")), "not before the flush");
    assert_eq!(b.flushed(0).unwrap(), vec![Step::Write]);
    assert_eq!(b.done(1).unwrap(), Vec::<Step>::new());
    assert_eq!(b.unacknowledged(), 0);
    // A DDL the downstream need not execute is passed instead.
    let not_sync = BlockEvent { blocking: false, not_sync: true, ..ddl(200) };
    assert_eq!(b.meet(not_sync).unwrap(), vec![Step::Flush]);
    assert_eq!(b.flushed(2).unwrap(), vec![Step::Pass]);
    assert_eq!(b.done(3).unwrap(), Vec::<Step>::new());
}

#[test]
fn a_removed_trigger_keeps_its_add_table_cap_until_the_ack_and_may_not_close_before() {
    let mut t = DispatcherBarrier::new(true);
    let _ = t.meet(create_table(100)).unwrap();
    let _ = t.flushed(0).unwrap();
    let _ = t.done(1).unwrap();
    t.removed();
    assert!(t.tick(10 * RESEND_MS).is_empty(), "no more resends");
    assert_eq!((t.checkpoint(150), t.may_close()), (99, false), "the cap stays");
    let _ = t.answer(&ack(event(100, false)), 150, 2);
    assert_eq!((t.checkpoint(150), t.may_close()), (150, true));
}

#[test]
fn a_held_event_caps_the_checkpoint_and_its_stray_action_is_ignored() {
    let mut t = DispatcherBarrier::new(true);
    let _ = t.meet(create_table(100)).unwrap();
    let _ = t.flushed(0).unwrap();
    let _ = t.done(1).unwrap();
    assert!(t.meet(syncpoint(200)).unwrap().is_empty() && t.holding());
    assert_eq!(t.checkpoint(300), 99, "held at 200, and below the table it adds at 100");
    assert_eq!(
        t.answer(&write(event(200, true)), 200, 3),
        Vec::<Step>::new(),
        "held: a stray action is ignored"
    );
    let _ = t.answer(&ack(event(100, false)), 300, 4);
    assert!(!t.holding(), "released");
    assert_eq!(t.checkpoint(300), 199, "its event at 200 pending: stays below it");
}

#[test]
fn removal_cancels_every_resend_and_the_hold() {
    let mut t = DispatcherBarrier::new(true);
    waiting(&mut t, ddl(100));
    let _ = t.answer(&pass(event(100, false)), 100, 0);
    let _ = t.done(0).unwrap();
    let _ = t.meet(syncpoint(200)).unwrap();
    t.removed();
    assert_eq!((t.unacknowledged(), t.holding()), (0, false));
    assert!(t.tick(10 * RESEND_MS).is_empty());
}

#[test]
fn misuse_is_an_error_not_a_panic() {
    let mut b = DispatcherBarrier::new(false);
    assert_eq!(b.flushed(0), Err(Misuse::Unexpected("flushed")));
    assert_eq!(b.done(0), Err(Misuse::Unexpected("done")));
    waiting(&mut b, ddl(100));
    assert!(matches!(b.meet(ddl(200)), Err(Misuse::Overlap((200, false), (100, false)))));
    assert_eq!(b.done(0), Err(Misuse::Unexpected("done")), "not asked to write yet");
    assert_eq!(b.block_state().map(|s| s.stage), Some(BlockStage::Waiting), "unchanged");
}

#[derive(Clone, Debug)]
enum Input {
    Meet(u8, bool),
    Flushed,
    Done,
    Action(u8, bool, bool),
    Ack(u8, bool),
    Ignored(u8, bool),
    Tick,
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        (0u8..4, any::<bool>()).prop_map(|(t, s)| Input::Meet(t, s)),
        Just(Input::Flushed),
        Just(Input::Done),
        (0u8..4, any::<bool>(), any::<bool>()).prop_map(|(t, s, p)| Input::Action(t, s, p)),
        (0u8..4, any::<bool>()).prop_map(|(t, s)| Input::Ack(t, s)),
        (0u8..4, any::<bool>()).prop_map(|(t, s)| Input::Ignored(t, s)),
        Just(Input::Tick),
    ]
}

proptest! {
    /// Whatever arrives in whatever order: a Write or Pass is asked for only for the event the
    /// dispatcher met last, on its full key, after its WAITING report, at most once; DONE for
    /// that event is reported only after the embedder finished writing or passing it.
    #[test]
    fn b6_writes_and_passes_only_the_waiting_event_once(trigger in any::<bool>(), inputs in prop::collection::vec(input(), 1..60)) {
        let mut b = DispatcherBarrier::new(trigger);
        let mut met: Option<(u64, bool)> = None;
        let mut reported_waiting = false;
        let mut executing = false;
        let mut executed: std::collections::BTreeSet<(u64, bool)> = Default::default();
        let mut now = 0;
        for i in inputs {
            now += 1000;
            let steps = match i {
                Input::Meet(t, s) => {
                    let ts = 100 * (u64::from(t) + 1) + met.map_or(0, |m| m.0);
                    match b.meet(BlockEvent { commit_ts: ts, is_sync_point: s, blocking: true, wide: s, not_sync: false, detail: Arc::default() }) {
                        Ok(steps) => { met = Some((ts, s)); reported_waiting = false; steps }
                        Err(_) => Vec::new(),
                    }
                }
                Input::Flushed => b.flushed(now).unwrap_or_default(),
                Input::Done => match b.done(now) {
                    Ok(steps) => {
                        prop_assert!(executing, "done accepted only after a write or pass");
                        executing = false;
                        steps
                    }
                    Err(_) => Vec::new(),
                },
                Input::Action(t, s, p) => {
                    let ts = met.map_or(100, |m| m.0) + u64::from(t) * 50 - 50;
                    b.answer(&answer(Some((p, event(ts, s))), None, None), met.map_or(0, |m| m.0), now)
                }
                Input::Ack(t, s) => b.answer(&ack(event(met.map_or(100, |m| m.0) + u64::from(t) * 50 - 50, s)), 0, now),
                Input::Ignored(t, s) => b.answer(&answer(None, None, Some(event(met.map_or(100, |m| m.0) + u64::from(t) * 50 - 50, s))), 0, now),
                Input::Tick => b.tick(now),
            };
            for step in &steps {
                match step {
                    Step::Report(st) if st.stage == BlockStage::Waiting && Some((st.block_ts, st.is_sync_point)) == met => reported_waiting = true,
                    Step::Write | Step::Pass => {
                        let key = met.expect("an event was met");
                        prop_assert!(reported_waiting, "WAITING was reported before the action ran");
                        prop_assert!(executed.insert(key), "{key:?} written or passed twice");
                        executing = true;
                    }
                    Step::Report(st) if st.stage == BlockStage::Done && Some((st.block_ts, st.is_sync_point)) == met => {
                        prop_assert!(!executing, "DONE for the pending event only once it is durable");
                    }
                    _ => {}
                }
            }
        }
    }
}
