//! Merges on the node (I2: the merged dispatcher writes only after its sources closed; hazard R5:
//! a resend reviving an aborted merge).

use dispatcher_core::ids::{DispatcherId, Mode};
use dispatcher_core::messages::*;
use dispatcher_core::node::*;

use super::manager::*;

fn two_sources(dm: &DispatcherManager) {
    live(dm, id(1), span(1, b"a", b"m"), Mode::Default);
    live(dm, id(2), span(1, b"m", b"z"), Mode::Default);
    let _ = dm.dispatcher_state_changed(id(1), Mode::Default, ComponentState::Working, 300);
    let _ = dm.dispatcher_state_changed(id(2), Mode::Default, ComponentState::Working, 200);
}

/// `two_sources`, merging into 3.
fn merging(dm: &DispatcherManager) -> Reaction {
    two_sources(dm);
    dm.handle_merge(&mt(), merge(&[id(1), id(2)], id(3)))
}

/// `merging`, and the merged dispatcher ready: the sources drain.
fn draining(dm: &DispatcherManager) {
    let _ = merging(dm);
    let _ = dm.dispatcher_state_changed(id(3), Mode::Default, ComponentState::MergeReady, 0);
}

fn state(dm: &DispatcherManager, d: DispatcherId) -> ComponentState {
    dm.registry().get_alive(Mode::Default, d).expect("alive").state().component
}

/// TestMergeDispatcherNormal + TestDoMerge + TestDoMergeKeepsMergeJournalUntilSourcesAreCleaned.
#[test]
fn merge_normal_flow_hands_over_at_the_minimum_checkpoint() {
    let dm = manager();
    let step = merging(&dm);
    assert_eq!(step.outcome, Outcome::Applied);
    assert!(
        matches!(&step.effects[0], Effect::PrepareMerged { spec, .. } if spec.span == span(1, b"a", b"z"))
    );
    assert_eq!(state(&dm, id(3)), ComponentState::Preparing);
    assert_eq!(state(&dm, id(1)), ComponentState::WaitingMerge);
    assert_eq!(state(&dm, id(2)), ComponentState::WaitingMerge);
    assert_eq!(dm.merges().in_progress().len(), 1);

    let ready = dm.dispatcher_state_changed(id(3), Mode::Default, ComponentState::MergeReady, 0);
    assert!(ready
        .effects
        .iter()
        .any(|e| matches!(e, Effect::CloseMergeSources { sources, .. } if sources == &vec![id(1), id(2)])));
    let first = dm.dispatcher_closed(id(1), Mode::Default, 300, None);
    assert!(first.effects.is_empty(), "no hand-over before every source closed");
    assert!(dm.registry().get_alive(Mode::Default, id(1)).is_some(), "sources stay until the hand-over");
    let last = dm.dispatcher_closed(id(2), Mode::Default, 200, None);
    assert!(matches!(
        &last.effects[0],
        Effect::StartMerged { start_ts: 200, skip_dml_as_start_ts: false, .. }
    ));
    assert_eq!(reported(&last, id(1), ComponentState::Stopped), Some(300));
    assert_eq!(reported(&last, id(2), ComponentState::Stopped), Some(200));
    assert_eq!(state(&dm, id(3)), ComponentState::Initializing);
    assert_eq!(dm.merges().in_progress().len(), 1, "journal kept until the merged dispatcher works");
    let _ = dm.dispatcher_state_changed(id(3), Mode::Default, ComponentState::Working, 200);
    assert!(dm.merges().in_progress().is_empty());
    assert!(dm.operators().is_empty());
}

#[test]
fn merge_preconditions_are_refused_by_name() {
    let dm = manager();
    two_sources(&dm);
    live(&dm, id(5), span(1, b"z", b"zz"), Mode::Default);
    let cases = [
        (merge(&[id(1)], id(9)), DropReason::MergeRefused("fewer than two sources")),
        (merge(&[id(1), id(8)], id(9)), DropReason::MergeRefused("source dispatcher missing")),
        (merge(&[id(2), id(1)], id(9)), DropReason::MergeRefused("sources not adjacent")),
        (merge(&[id(1), id(5)], id(9)), DropReason::MergeRefused("sources not adjacent")),
        (merge(&[id(1), id(2)], id(1)), DropReason::AlreadyExists),
    ];
    for (request, why) in cases {
        assert_eq!(dm.handle_merge(&mt(), request).outcome, Outcome::Dropped(why));
    }
    let step = dm.handle_schedule(&mt(), create(id(6), span(2, b"a", b"m"), Mode::Default, 2));
    dm.commit_create(&ticket(&step)).unwrap();
    live(&dm, id(7), span(2, b"m", b"z"), Mode::Default);
    let not_working = dm.handle_merge(&mt(), merge(&[id(6), id(7)], id(9)));
    assert_eq!(
        not_working.outcome,
        Outcome::Dropped(DropReason::MergeRefused("source dispatcher not working"))
    );
    assert!(dm.merges().is_empty());
    assert_eq!(state(&dm, id(1)), ComponentState::Working, "a refused merge mutates nothing");
}

/// TestDoMergeAbortWhenSourceDispatcherRemoving, TestAbortMergeRestoresSourceDispatchersRegistration
/// and R5: the surviving source is Working again and reports progress again (its status slot is
/// live: the Rust analogue of re-registering with the event collector); an aborted merge is not
/// resurrected by a resend.
#[test]
fn r5_remove_of_a_source_aborts_and_a_resend_does_not_resurrect_the_merge() {
    let dm = manager();
    let _ = merging(&dm);
    let rm = dm.handle_schedule(&mt(), remove(id(1), Mode::Default, 2, OperatorType::Remove));
    assert!(rm.effects.iter().any(|e| matches!(e, Effect::ResumeSource { id: d, .. } if *d == id(2))));
    assert!(has_close(&rm, id(3)), "the merged dispatcher is closed");
    assert!(has_close(&rm, id(1)));
    assert_eq!(state(&dm, id(2)), ComponentState::Working);
    let handle = dm.status_handle_of(Mode::Default, id(2)).expect("the source reports again");
    let _ = dm.report_progress(&handle, 350, 350, 0.0);
    assert_eq!(dm.registry().get_alive(Mode::Default, id(2)).unwrap().checkpoint_ts(), 350);
    assert!(dm.merges().in_progress().is_empty());
    let resend = dm.handle_merge(&mt(), merge(&[id(1), id(2)], id(3)));
    assert_eq!(resend.outcome, Outcome::Dropped(DropReason::MergeAborted));
    let _ = dm.dispatcher_closed(id(3), Mode::Default, 0, None);
    let again = dm.handle_merge(&mt(), merge(&[id(1), id(2)], id(3)));
    assert_eq!(again.outcome, Outcome::Dropped(DropReason::MergeAborted));
    assert!(dm.merges().in_progress().is_empty());
}

/// M2: a resend after the merged dispatcher works re-emits Working.
#[test]
fn m2_resend_after_finish_reemits_working() {
    let dm = manager();
    draining(&dm);
    let _ = dm.dispatcher_closed(id(1), Mode::Default, 300, None);
    let _ = dm.dispatcher_closed(id(2), Mode::Default, 200, None);
    let _ = dm.dispatcher_state_changed(id(3), Mode::Default, ComponentState::Working, 250);
    let resend = dm.handle_merge(&mt(), merge(&[id(1), id(2)], id(3)));
    assert_eq!(resend.outcome, Outcome::Dropped(DropReason::AlreadyExists));
    assert_eq!(reported(&resend, id(3), ComponentState::Working), Some(250));
}

/// The pending-DDL start-ts rule: all sources parked on one DDL restart just below it.
#[test]
fn merged_start_ts_follows_a_common_pending_barrier() {
    let dm = manager();
    draining(&dm);
    let ddl = Some(PendingBlock { block_ts: 500, is_sync_point: false });
    let _ = dm.dispatcher_closed(id(1), Mode::Default, 300, ddl);
    let last = dm.dispatcher_closed(id(2), Mode::Default, 200, ddl);
    assert!(matches!(
        &last.effects[0],
        Effect::StartMerged { start_ts: 499, skip_dml_as_start_ts: true, .. }
    ));
}

/// The journal reports the merge in a bootstrap, with the original merged id.
#[test]
fn bootstrap_reports_the_merge_journal() {
    let dm = manager();
    let _ = merging(&dm);
    let step = dm.handle_bootstrap(&dispatcher_core::ids::NodeId::new("mt2"), &bootstrap_request(3, None));
    let r = step.bootstrap_response().unwrap();
    assert_eq!(r.merge_operators.len(), 1);
    assert_eq!(r.merge_operators[0].merged, id(3));
    assert!(r.spans.iter().any(|s| s.id == id(3) && s.state == ComponentState::Preparing));
}

/// R10: a redo merge before redo is ready is a documented drop, not a crash.
#[test]
fn r10_redo_merge_before_redo_is_ready_is_dropped() {
    let dm = redo_not_ready();
    let request = MergeRequest { mode: Mode::Redo, ..merge(&[id(1), id(2)], id(3)) };
    assert_eq!(dm.handle_merge(&mt(), request).outcome, Outcome::Dropped(DropReason::RedoNotReady));
    assert!(dm.merges().is_empty());
}

/// Found by the simulator (random seed 6671): DROP TABLE removes the merged dispatcher and the
/// sources while the merge is draining. A source that the merge had already closed must not wait
/// forever for a hand-over that no longer comes: it is released and reports Stopped, and so is
/// the source that closes after the merged dispatcher went.
#[test]
fn merged_dispatcher_closing_mid_drain_releases_the_drained_sources() {
    let dm = manager();
    draining(&dm);
    let first = dm.dispatcher_closed(id(1), Mode::Default, 300, None);
    assert!(first.effects.is_empty(), "drained, waiting for the other source");
    let merged_gone = dm.dispatcher_closed(id(3), Mode::Default, 0, None);
    assert_eq!(reported(&merged_gone, id(1), ComponentState::Stopped), Some(300), "drained source released");
    assert!(dm.registry().get_alive(Mode::Default, id(1)).is_none());
    let second = dm.dispatcher_closed(id(2), Mode::Default, 200, None);
    assert_eq!(reported(&second, id(2), ComponentState::Stopped), Some(200));
    assert!(dm.merges().in_progress().is_empty());
    assert!(dm.registry().get_alive(Mode::Default, id(2)).is_none());
}

/// Issue 9, node side: a Remove of a source reaching a merge that is already draining ends the
/// merge without handing over. The owner asked for that range to go (it may be placing it
/// elsewhere once the source reports Stopped), so the merged dispatcher must never start (I2).
#[test]
fn remove_of_a_source_while_draining_ends_the_merge_without_hand_over() {
    let dm = manager();
    draining(&dm);
    let first = dm.dispatcher_closed(id(1), Mode::Default, 300, None);
    assert!(first.effects.is_empty(), "draining: source 1 closed, source 2 still closing");
    let rm = dm.handle_schedule(&mt(), remove(id(2), Mode::Default, 2, OperatorType::Move));
    assert!(has_close(&rm, id(3)), "the merged dispatcher is closed instead of started");
    assert_eq!(reported(&rm, id(1), ComponentState::Stopped), Some(300), "the drained source is released");
    assert!(dm.merges().in_progress().is_empty());
    let last = dm.dispatcher_closed(id(2), Mode::Default, 200, None);
    assert!(
        !last.effects.iter().any(|e| matches!(e, Effect::StartMerged { .. })),
        "no hand-over after the merge ended: {:?}",
        last.effects
    );
    assert_eq!(reported(&last, id(2), ComponentState::Stopped), Some(200));
    let merged = dm.dispatcher_closed(id(3), Mode::Default, 0, None);
    assert_eq!(merged.outcome, Outcome::Applied);
    assert!(dm.registry().get_alive(Mode::Default, id(3)).is_none());
    assert!(dm.operators().is_empty(), "nothing leaked in the journal");
    let resend = dm.handle_merge(&mt(), merge(&[id(1), id(2)], id(3)));
    assert_ne!(resend.outcome, Outcome::Applied);
}

/// Issue 9, node side: the owner withdraws a merge it never saw taken up by removing the merged
/// id. If the node does not know the id yet (the merge request is delayed), the Remove answers
/// Stopped and the delayed request is refused when it arrives: the merge cannot start after the
/// owner has handed its sources back.
#[test]
fn remove_of_an_unknown_merged_id_refuses_the_delayed_merge_request() {
    let dm = manager();
    two_sources(&dm);
    let rm = dm.handle_schedule(&mt(), remove(id(3), Mode::Default, 2, OperatorType::Remove));
    assert_eq!(reported(&rm, id(3), ComponentState::Stopped), Some(0));
    let late = dm.handle_merge(&mt(), merge(&[id(1), id(2)], id(3)));
    assert_eq!(late.outcome, Outcome::Dropped(DropReason::MergeAborted));
    assert_eq!(state(&dm, id(1)), ComponentState::Working);
    assert_eq!(state(&dm, id(2)), ComponentState::Working);
}

/// Issue 9, node side: a resent merge request that finds its merge in progress says where it is
/// (the merged dispatcher's state), so the owner knows it was taken up and never withdraws it.
#[test]
fn resent_merge_reports_the_merged_dispatcher_state_in_every_phase() {
    let dm = manager();
    let _ = merging(&dm);
    for state in [ComponentState::Preparing, ComponentState::MergeReady] {
        if state == ComponentState::MergeReady {
            let _ = dm.dispatcher_state_changed(id(3), Mode::Default, state, 0);
        }
        let again = dm.handle_merge(&mt(), merge(&[id(1), id(2)], id(3)));
        assert_eq!(again.outcome, Outcome::Dropped(DropReason::AlreadyExists));
        assert!(reported(&again, id(3), state).is_some(), "{state:?}: {:?}", again.effects);
    }
}

/// Found by the swarm explorer (seed 13866): the merged id ran and closed in this owner's term
/// (handed over, working, then removed), and the owner placed the sources again. A late copy of
/// the merge request must not drain those new sources into a merge given up on. Run with the
/// fault re-opened too, which takes the copy up.
#[test]
fn late_copy_of_a_merge_whose_merged_id_closed_this_term_is_refused() {
    use dispatcher_core::mutation::{Mutation, Mutations};
    for mutation in [Mutations::NONE, Mutation::MergeAfterMergedClosed.into()] {
        let dm = manager().mutated(mutation);
        assert_eq!(merging(&dm).outcome, Outcome::Applied);
        let _ = dm.dispatcher_state_changed(id(3), Mode::Default, ComponentState::MergeReady, 0);
        let _ = dm.dispatcher_closed(id(1), Mode::Default, 300, None);
        let handed = dm.dispatcher_closed(id(2), Mode::Default, 200, None);
        assert!(handed.effects.iter().any(|e| matches!(e, Effect::StartMerged { .. })));
        let _ = dm.dispatcher_state_changed(id(3), Mode::Default, ComponentState::Working, 200);
        assert!(dm.merges().in_progress().is_empty(), "the merge finished");
        let _ = dm.handle_schedule(&mt(), remove(id(3), Mode::Default, 2, OperatorType::Remove));
        assert_eq!(dm.dispatcher_closed(id(3), Mode::Default, 250, None).outcome, Outcome::Applied);
        // The sources, placed again here (from where they stopped) and working.
        for (d, from, to, at) in [(id(1), b"a", b"m", 300), (id(2), b"m", b"z", 200)] {
            let step = dm.handle_schedule(&mt(), create_at(d, span(1, from, to), Mode::Default, 2, at));
            assert_eq!(step.outcome, Outcome::Applied, "{step:?}");
            dm.commit_create(&ticket(&step)).unwrap();
        }
        let _ = dm.dispatcher_state_changed(id(1), Mode::Default, ComponentState::Working, 250);
        let _ = dm.dispatcher_state_changed(id(2), Mode::Default, ComponentState::Working, 250);
        let late = dm.handle_merge(&mt(), merge(&[id(1), id(2)], id(3)));
        if mutation.is_empty() {
            assert_eq!(late.outcome, Outcome::Dropped(DropReason::MergeAborted));
            assert_eq!(state(&dm, id(1)), ComponentState::Working);
            assert_eq!(state(&dm, id(2)), ComponentState::Working);
            assert!(dm.registry().get_alive(Mode::Default, id(3)).is_none());
        } else {
            assert_eq!(late.outcome, Outcome::Applied, "re-opened: the copy drains the new sources");
        }
    }
}

/// Issue 15, fault 5 (single-threaded): a duplicate close report of a drained source must not
/// count it twice. Counted twice, the hand-over ran while the other source was still running
/// (its record closed and released under the embedder) and StartMerged overlapped it (I2).
#[test]
fn duplicate_close_report_of_a_drained_source_is_counted_once() {
    // The fault, re-opened: the duplicate hands over while source 2 still runs.
    let broken = manager().mutated(dispatcher_core::mutation::Mutation::DrainCountedTwice.into());
    draining(&broken);
    let _ = broken.dispatcher_closed(id(1), Mode::Default, 300, None);
    let again = broken.dispatcher_closed(id(1), Mode::Default, 310, None);
    assert!(again.effects.iter().any(|e| matches!(e, Effect::StartMerged { .. })), "{:?}", again.effects);

    let dm = manager();
    assert_eq!(merging(&dm).outcome, Outcome::Applied);
    let _ = dm.dispatcher_state_changed(id(3), Mode::Default, ComponentState::MergeReady, 0);
    let first = dm.dispatcher_closed(id(1), Mode::Default, 300, None);
    assert_eq!(first.outcome, Outcome::Applied);
    let again = dm.dispatcher_closed(id(1), Mode::Default, 310, None);
    assert_eq!(again.outcome, Outcome::Dropped(DropReason::Duplicate));
    assert!(again.effects.is_empty(), "no hand-over on a duplicate: {:?}", again.effects);
    assert!(dm.registry().get_alive(Mode::Default, id(2)).is_some(), "the other source still runs");
    assert_eq!(state(&dm, id(3)), ComponentState::MergeReady);
    let last = dm.dispatcher_closed(id(2), Mode::Default, 200, None);
    assert!(matches!(&last.effects[0], Effect::StartMerged { start_ts: 200, .. }), "{:?}", last.effects);
    assert_eq!(reported(&last, id(1), ComponentState::Stopped), Some(300), "the first report's checkpoint");
}

/// Issue 15, fault 2: a source that closes on its own (an error, its table dropped) while its
/// merge is still preparing ends the merge there and then: the other source resumes, the merged
/// dispatcher is closed, and a MergeReady arriving later drains nothing. Before the fix the close
/// left the merge preparing, and a MergeReady whose source check had already passed went on to
/// drain a source that was gone (the loom model of `loom-tests/tests/node.rs` (i) is that race).
#[test]
fn source_closing_on_its_own_while_the_merge_prepares_ends_the_merge() {
    // The fault, re-opened: the close leaves the merge preparing, journaled, sources parked.
    let broken = manager().mutated(dispatcher_core::mutation::Mutation::SelfCloseSkipsPreparingMerge.into());
    let _ = merging(&broken);
    let _ = broken.dispatcher_closed(id(1), Mode::Default, 300, None);
    assert_eq!(broken.merges().in_progress().len(), 1, "re-opened: the merge outlives its source");
    assert_eq!(state(&broken, id(2)), ComponentState::WaitingMerge);

    let dm = manager();
    assert_eq!(merging(&dm).outcome, Outcome::Applied);
    let closed = dm.dispatcher_closed(id(1), Mode::Default, 300, None);
    assert_eq!(closed.outcome, Outcome::Applied);
    assert_eq!(reported(&closed, id(1), ComponentState::Stopped), Some(300));
    let resumed: Vec<DispatcherId> = closed
        .effects
        .iter()
        .filter_map(|e| if let Effect::ResumeSource { id, .. } = e { Some(*id) } else { None })
        .collect();
    assert_eq!(resumed, vec![id(2)], "the other source resumes, the closing one does not");
    assert!(closed.effects.iter().any(|e| matches!(e, Effect::Close { id: d, .. } if *d == id(3))));
    assert!(dm.merges().in_progress().is_empty(), "the merge ended with its source");
    assert_eq!(state(&dm, id(2)), ComponentState::Working);
    // The merged dispatcher's MergeReady, already on its way, starts nothing.
    let ready = dm.dispatcher_state_changed(id(3), Mode::Default, ComponentState::MergeReady, 0);
    assert!(
        !ready.effects.iter().any(|e| matches!(e, Effect::CloseMergeSources { .. })),
        "{:?}",
        ready.effects
    );
    let _ = dm.dispatcher_closed(id(3), Mode::Default, 0, None);
    assert!(dm.operators().is_empty(), "journal entries left: {}", dm.operators().len());
    assert!(dm.registry().get_alive(Mode::Default, id(2)).is_some());
}

/// A merge refused by its reservation (merged dispatcher 4 of an aborted merge still holds the
/// span) leaves nothing: no journal entry, no merged record, and a Remove of the refused id
/// answers Stopped at once. The race of this branch with a Remove of the merged id is the loom
/// model `merge_refused_by_its_reservation_racing_a_remove_of_its_merged_id_leaks_no_entry` and
/// node-stress's `--focus refused-merge-remove`.
#[test]
fn merge_refused_by_its_reservation_leaves_no_entry_and_no_record() {
    let dm = manager();
    two_sources(&dm);
    assert_eq!(dm.handle_merge(&mt(), merge(&[id(1), id(2)], id(4))).outcome, Outcome::Applied);
    let _ = dm.dispatcher_state_changed(id(1), Mode::Default, ComponentState::Working, 300);
    let aborted = dm.dispatcher_state_changed(id(4), Mode::Default, ComponentState::MergeReady, 0);
    assert!(aborted.effects.iter().any(|e| matches!(e, Effect::Close { id: d, .. } if *d == id(4))));
    assert!(dm.operators().is_empty(), "the aborted merge finished its entry");

    let refused = dm.handle_merge(&mt(), merge(&[id(1), id(2)], id(3)));
    assert_eq!(refused.outcome, Outcome::Dropped(DropReason::Overlaps(id(4))));
    assert!(dm.operators().is_empty(), "{:?}", dm.operators().entries());
    assert!(dm.registry().get(Mode::Default, id(3)).is_none());
    assert_eq!(state(&dm, id(1)), ComponentState::Working);
    assert_eq!(state(&dm, id(2)), ComponentState::Working);
    let removed = dm.handle_schedule(&mt(), remove(id(3), Mode::Default, 2, OperatorType::Remove));
    assert_eq!(reported(&removed, id(3), ComponentState::Stopped), Some(0));
    assert!(dm.operators().is_empty());
}
