//! The coordinator's bootstrap after its election (cluster.md §6.6, invariant K10): nothing is
//! scheduled until every member answered and the store was read; at most one reported maintainer
//! per changefeed is adopted; everything else reported is stopped with its own epoch.

use dispatcher_core::coordinator::*;
use dispatcher_core::ids::Epoch;
use dispatcher_core::messages::*;

use super::harness::*;

#[test]
fn k10_nothing_is_scheduled_or_read_until_every_member_answered_and_the_store_was_loaded() {
    let mut c = Cluster::new(vec![running("a", 3)]);
    c.members(&[1, 2]);
    let asked: Vec<_> = c.take_sent().into_iter().map(|(to, m)| (to, m.kind())).collect();
    assert_eq!(
        asked,
        [
            (node(1), MessageKind::CoordinatorBootstrapRequest),
            (node(2), MessageKind::CoordinatorBootstrapRequest)
        ]
    );
    c.tick(1); // asks the store
    c.bootstrap_answer(1, Vec::new());
    // A heartbeat and a request before the bootstrap ends are not acted on.
    c.report(1, vec![status("a", 3, true, 500)]);
    c.request(1, Request::Pause { name: "a".into() });
    assert_eq!(c.answers, [(1, Err(RequestError::NotReady))]);
    c.tick(10_000 - 2);
    assert!(!c.co.initialized());
    assert!(c.adds().is_empty());
    // Unanswered members are asked again on the resend timer.
    assert!(c
        .sent
        .iter()
        .any(|(to, m)| to == &node(2) && m.kind() == MessageKind::CoordinatorBootstrapRequest));
    c.bootstrap_answer(2, Vec::new());
    assert!(c.co.initialized());
    assert_eq!(c.notices, [Output::Initialized]);
    // The heartbeat sent before was ignored: the checkpoint is the stored one.
    assert_eq!(c.view("a").checkpoint_ts, 100);
}

#[test]
fn k10_the_maintainer_at_the_stored_epoch_is_adopted_and_older_ones_are_stopped_with_their_own_epoch() {
    let mut c = Cluster::new(vec![running("a", 5)]);
    c.members(&[1, 2]);
    c.tick(1);
    c.bootstrap_answer(1, vec![status("a", 4, true, 300)]);
    c.bootstrap_answer(2, vec![status("a", 5, true, 400)]);
    assert_eq!(c.view("a").placement, Placement::Bound { node: node(2), epoch: Epoch(5), working: true });
    assert_eq!(c.view("a").checkpoint_ts, 400);
    // The stray is stopped alone (not cascade): its dispatchers are the adopted maintainer's.
    assert_eq!(c.removes(), [(node(1), "a".into(), Epoch(4), false, false)]);
    assert!(c.adds().is_empty(), "an adopted changefeed is not placed again");
}

#[test]
fn h11_one_epoch_reported_by_two_nodes_stops_both_instead_of_panicking() {
    let mut c = Cluster::new(vec![running("a", 5)]);
    c.members(&[1, 2]);
    c.tick(1);
    c.bootstrap_answer(1, vec![status("a", 5, true, 300)]);
    c.bootstrap_answer(2, vec![status("a", 5, true, 400)]);
    assert!(c.co.initialized());
    assert_eq!(c.view("a").placement, Placement::Absent);
    let mut removes = c.removes();
    removes.sort();
    assert_eq!(
        removes,
        [(node(1), "a".into(), Epoch(5), false, false), (node(2), "a".into(), Epoch(5), false, false)]
    );
    // The next placement bumps a new epoch.
    c.take_sent();
    c.tick(1);
    assert_eq!(c.adds().len(), 1);
    assert_eq!(c.adds()[0].2, Epoch(6));
}

#[test]
fn a_maintainer_of_a_changefeed_the_store_lacks_is_removed_everywhere() {
    let mut c = Cluster::new(Vec::new());
    c.members(&[1]);
    c.tick(1);
    c.bootstrap_answer(1, vec![status("gone", 9, true, 300), status("done", 2, false, 300)]);
    assert!(c.co.initialized());
    // Only the working one: a stopped maintainer needs nothing.
    assert_eq!(c.removes(), [(node(1), "gone".into(), Epoch(9), true, true)]);
}

#[test]
fn h4_a_member_that_never_answers_is_given_up_on_after_the_timeout() {
    let mut c = Cluster::new(vec![running("a", 1)]);
    c.members(&[1, 2]);
    c.tick(1);
    c.bootstrap_answer(1, Vec::new());
    c.tick(9_000);
    assert!(!c.co.initialized());
    c.tick(1_000);
    assert!(c.co.initialized(), "the reference waits forever here");
    // The mute node takes nothing: placement goes to the node that answered.
    c.take_sent();
    c.tick(1);
    assert_eq!(c.adds(), [(node(1), "a".into(), Epoch(2))]);
    // When it finally answers, what it runs is read like a heartbeat: a stray is stopped.
    c.take_sent();
    c.bootstrap_answer(2, vec![status("a", 1, true, 100)]);
    assert_eq!(c.removes(), [(node(2), "a".into(), Epoch(1), false, false)]);
}

#[test]
fn a_member_that_leaves_during_the_bootstrap_is_not_waited_for() {
    let mut c = Cluster::new(Vec::new());
    c.members(&[1, 2]);
    c.tick(1);
    c.bootstrap_answer(1, Vec::new());
    c.members(&[1]);
    assert!(c.co.initialized());
}

#[test]
fn h11_a_failed_load_is_asked_again_not_a_panic() {
    let mut c = Cluster::new(vec![running("a", 1)]);
    c.members(&[1]);
    c.fail_next = Some(MetaError::Unavailable);
    c.tick(1);
    c.bootstrap_answer(1, Vec::new());
    assert!(!c.co.initialized());
    c.tick(1_000);
    assert!(c.co.initialized());
    assert_eq!(c.requests.iter().filter(|op| **op == MetaOp::LoadAll).count(), 2);
}

#[test]
fn k13_a_stored_stop_is_resumed_by_the_new_coordinator() {
    let pausing = stored("p", 4, FeedState::Stopped, Progress::Stopping);
    let removing = stored("r", 2, FeedState::Normal, Progress::Removing);
    let mut c = Cluster::new(vec![pausing, removing]);
    c.members(&[1, 2]);
    c.tick(1);
    c.bootstrap_answer(1, vec![status("p", 4, true, 100)]);
    c.bootstrap_answer(2, Vec::new());
    let mut removes = c.removes();
    removes.sort();
    // Both at new epochs (stored first): "p" where it still runs (n1), "r", which runs nowhere
    // known, through the coordinator's own node, which closes what it left everywhere.
    assert_eq!(
        removes,
        [(node(1), "p".into(), Epoch(5), true, false), (node(1), "r".into(), Epoch(3), true, true)]
    );
    c.report(1, vec![status("p", 5, false, 120), status("r", 3, false, 100)]);
    assert_eq!(c.view("p").state, "stopped");
    assert_eq!(c.store["p"].progress, Progress::None);
    assert!(c.co.changefeed("r").is_none());
    assert!(!c.store.contains_key("r"), "the keys go only once everything stopped");
}

#[test]
fn a_stopped_changefeed_with_no_maintainer_stays_stopped() {
    let mut c = Cluster::started(vec![stored("p", 4, FeedState::Stopped, Progress::None)], &[1]);
    c.tick(1_000);
    assert!(c.sent.iter().all(|(_, m)| m.kind() == MessageKind::CoordinatorBootstrapRequest), "{:?}", c.sent);
    assert_eq!(c.view("p").placement, Placement::Absent);
}
