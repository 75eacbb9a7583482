//! The coordinator's operators and requests: add (epoch stored first), move (remove first), stop
//! (lifecycle stored first), placement, checkpoints, and the fence of a deposed coordinator.

use dispatcher_core::coordinator::*;
use dispatcher_core::ids::{Epoch, NodeId};
use dispatcher_core::messages::*;

use super::harness::*;

fn create(c: &mut Cluster, id: u64, name: &str) {
    c.request(id, Request::Create { id: cf(name), config: b"{}".to_vec(), start_ts: 100 });
}

#[test]
fn k3_an_add_carries_only_an_epoch_the_store_already_has() {
    let mut c = Cluster::started(vec![running("a", 3)], &[1]);
    c.take_sent();
    c.hold = true;
    c.tick(1);
    assert_eq!(c.held.len(), 1, "the bump is asked first");
    assert!(c.adds().is_empty(), "nothing is sent before the bump is stored");
    assert_eq!(c.view("a").operator, Some("add"));
    c.release();
    assert_eq!(c.store["a"].epoch, Epoch(4));
    assert_eq!(c.adds(), [(node(1), "a".into(), Epoch(4))]);
    // Resent until the report shows it working and bootstrapped (K16), then bound.
    c.take_sent();
    c.tick(500);
    assert_eq!(c.adds(), [(node(1), "a".into(), Epoch(4))]);
    let mut not_yet = status("a", 4, true, 100);
    not_yet.bootstrap_done = false;
    c.report(1, vec![not_yet]);
    assert_eq!(c.view("a").operator, Some("add"), "F4: working is not enough before its bootstrap");
    c.run_on("a", 1);
    assert_eq!(c.view("a").operator, None);
}

#[test]
fn k4_an_epoch_whose_node_left_is_never_sent_elsewhere() {
    let mut c = Cluster::started(vec![running("a", 3)], &[1, 2]);
    c.take_sent();
    c.tick(1);
    let [(to, _, epoch)]: [_; 1] = c.adds().try_into().unwrap_or_else(|a| panic!("{a:?}"));
    let stays = if to == node(1) { 2 } else { 1 };
    c.members(&[stays]);
    assert_eq!(c.view("a").placement, Placement::Absent);
    c.take_sent();
    c.tick(1);
    assert_eq!(c.adds(), [(node(stays), "a".into(), Epoch(epoch.0 + 1))]);
}

#[test]
fn k4_a_bump_answered_after_its_add_was_cancelled_is_never_sent() {
    let mut c = Cluster::started(vec![running("a", 3)], &[1]);
    c.take_sent();
    c.hold = true;
    c.tick(1);
    c.members(&[]);
    c.release();
    assert!(c.adds().is_empty());
    assert_eq!(c.view("a").epoch, Epoch(4), "the stored epoch is still learned");
}

#[test]
fn placement_goes_to_the_least_loaded_alive_node_and_never_to_a_draining_or_silent_one() {
    let mut c = Cluster::started(vec![running("a", 1), running("b", 1), running("c", 1)], &[1, 2, 3]);
    c.liveness(3, NodeLiveness::Draining);
    c.take_sent();
    c.tick(1);
    let mut targets: Vec<NodeId> = c.adds().into_iter().map(|(to, _, _)| to).collect();
    targets.sort();
    assert_eq!(targets, [node(1), node(1), node(2)]);
    // K14: a node not heard from for 30 s takes nothing.
    let mut c = Cluster::started(vec![running("a", 1)], &[1, 2]);
    c.now += 29_000;
    c.liveness(2, NodeLiveness::Alive);
    c.take_sent();
    c.tick(2_000);
    assert_eq!(c.adds(), [(node(2), "a".into(), Epoch(2))]);
}

#[test]
fn placement_is_bounded_by_the_operator_limit() {
    let feeds = (0..25).map(|i| running(&format!("f{i:02}"), 1)).collect();
    let mut c = Cluster::started(feeds, &[1, 2]);
    c.take_sent();
    c.tick(1);
    assert_eq!(c.adds().len(), 10);
}

#[test]
fn k5_a_move_adds_at_the_target_only_after_the_origin_stopped() {
    let mut c = Cluster::started(vec![running("a", 3)], &[1, 2]);
    c.tick(1);
    let (from, _, _) = c.adds()[0].clone();
    let (origin, target) = if from == node(1) { (1, 2) } else { (2, 1) };
    let epoch = c.run_on("a", origin);
    c.take_sent();
    c.request(1, Request::MoveMaintainer { name: "a".into(), to: node(target) });
    assert_eq!(c.answers, [(1, Ok(()))]);
    assert_eq!(c.removes(), [(node(origin), "a".into(), epoch, false, false)]);
    // Still working at the origin: resent, nothing added.
    c.report(origin, vec![status("a", epoch.0, true, 150)]);
    c.tick(500);
    assert!(c.adds().is_empty());
    assert_eq!(c.removes().len(), 2);
    // Stopped: its final checkpoint is kept (the reference drops it, its H3), then the add.
    c.report(origin, vec![status("a", epoch.0, false, 180)]);
    assert_eq!(c.view("a").checkpoint_ts, 180);
    let [(to, _, new)]: [_; 1] = c.adds().try_into().unwrap_or_else(|a| panic!("{a:?}"));
    assert_eq!(to, node(target));
    assert!(new > epoch);
    c.run_on("a", target);
    assert_eq!(c.view("a").operator, None);
}

#[test]
fn k5_an_origin_that_left_counts_as_stopped() {
    let mut c = Cluster::started(vec![running("a", 3)], &[1, 2]);
    c.tick(1);
    let origin = if c.adds()[0].0 == node(1) { 1 } else { 2 };
    c.run_on("a", origin);
    c.take_sent();
    c.request(1, Request::MoveMaintainer { name: "a".into(), to: node(3 - origin) });
    c.members(&[3 - origin]);
    assert_eq!(c.adds().len(), 1);
    assert_eq!(c.adds()[0].0, node(3 - origin));
}

#[test]
fn a_move_whose_target_left_before_the_origin_stopped_is_given_up() {
    let mut c = Cluster::started(vec![running("a", 3)], &[1, 2]);
    c.tick(1);
    let origin = if c.adds()[0].0 == node(1) { 1 } else { 2 };
    let epoch = c.run_on("a", origin);
    c.request(1, Request::MoveMaintainer { name: "a".into(), to: node(3 - origin) });
    c.members(&[origin]);
    assert_eq!(c.view("a").operator, None);
    assert_eq!(c.view("a").placement, Placement::Bound { node: node(origin), epoch, working: true });
    // The remove had reached the origin: it stops, and is placed again (on the one node left).
    c.report(origin, vec![status("a", epoch.0, false, 100)]);
    c.take_sent();
    c.tick(2_000);
    assert_eq!(c.adds(), [(node(origin), "a".into(), Epoch(epoch.0 + 1))]);
}

#[test]
fn a_move_is_refused_to_an_unknown_node_the_same_node_or_while_busy() {
    let mut c = Cluster::started(vec![running("a", 3)], &[1]);
    c.tick(1);
    c.request(1, Request::MoveMaintainer { name: "a".into(), to: node(1) });
    c.run_on("a", 1);
    c.request(2, Request::MoveMaintainer { name: "a".into(), to: node(1) });
    c.request(3, Request::MoveMaintainer { name: "a".into(), to: node(9) });
    c.request(4, Request::MoveMaintainer { name: "zz".into(), to: node(1) });
    assert_eq!(
        c.answers,
        [
            (1, Err(RequestError::Busy("a".into()))),
            (2, Err(RequestError::Node(node(1)))),
            (3, Err(RequestError::Node(node(9)))),
            (4, Err(RequestError::UnknownChangefeed("zz".into()))),
        ]
    );
}

#[test]
fn k13_a_pause_is_stored_before_the_stop_is_sent_and_ends_with_progress_cleared() {
    let mut c = Cluster::started(vec![running("a", 3)], &[1]);
    c.tick(1);
    let epoch = c.run_on("a", 1);
    c.take_sent();
    c.hold = true;
    c.request(1, Request::Pause { name: "a".into() });
    assert!(c.removes().is_empty(), "nothing is sent before the lifecycle is stored");
    assert!(c.answers.is_empty());
    c.release();
    assert_eq!(c.answers, [(1, Ok(()))]);
    assert_eq!((c.store["a"].state, c.store["a"].progress), (FeedState::Stopped, Progress::Stopping));
    // The stop goes out at a new epoch, stored first like any other.
    assert!(c.removes().is_empty());
    c.release();
    let stop = Epoch(epoch.0 + 1);
    assert_eq!(c.removes(), [(node(1), "a".into(), stop, true, false)]);
    c.report(1, vec![status("a", epoch.0, false, 130)]);
    assert_eq!(c.view("a").operator, Some("stop"), "its own epoch stopping is not the stop's");
    c.report(1, vec![status("a", stop.0, false, 130)]);
    assert_eq!(c.view("a").state, "stopping", "until the end is stored");
    c.release();
    assert_eq!(c.view("a").state, "stopped");
    assert_eq!(c.store["a"].progress, Progress::None);
    // A paused changefeed is not placed again; resume makes it run.
    c.hold = false;
    c.take_sent();
    c.tick(1_000);
    assert!(c.adds().is_empty());
    c.request(2, Request::Resume { name: "a".into() });
    c.tick(1);
    assert_eq!(c.adds(), [(node(1), "a".into(), Epoch(epoch.0 + 2))]);
    assert_eq!(c.answers[1], (2, Ok(())));
}

#[test]
fn k13_a_removal_deletes_the_keys_only_after_everything_stopped() {
    let mut c = Cluster::started(vec![running("a", 3)], &[1, 2]);
    c.tick(1);
    let at = if c.adds()[0].0 == node(1) { 1 } else { 2 };
    let epoch = c.run_on("a", at);
    c.take_sent();
    c.request(1, Request::Remove { name: "a".into() });
    assert_eq!(c.store["a"].progress, Progress::Removing);
    let stop = Epoch(epoch.0 + 1);
    assert_eq!(c.removes(), [(node(at), "a".into(), stop, true, true)]);
    if at == 2 {
        // Its node dies: the remove goes through the coordinator's own node (n1), at yet another
        // epoch (the first may have taken some dispatcher managers over from n2).
        c.take_sent();
        c.members(&[1]);
        let again = Epoch(epoch.0 + 2);
        assert_eq!(c.removes(), [(node(1), "a".into(), again, true, true)]);
        assert!(c.store.contains_key("a"));
        c.report(1, vec![status("a", again.0, false, 100)]);
    } else {
        c.report(1, vec![status("a", stop.0, false, 100)]);
    }
    assert!(!c.store.contains_key("a"));
    assert!(c.co.changefeed("a").is_none());
}

#[test]
fn a_remove_during_a_pause_takes_over_and_a_second_pause_is_refused() {
    let mut c = Cluster::started(vec![running("a", 3)], &[1]);
    c.tick(1);
    let epoch = c.run_on("a", 1);
    c.request(1, Request::Pause { name: "a".into() });
    c.request(2, Request::Pause { name: "a".into() });
    c.take_sent();
    c.request(3, Request::Remove { name: "a".into() });
    assert_eq!(c.answers[1], (2, Err(RequestError::State { name: "a".into(), state: "stopping" })));
    assert_eq!(c.answers[2], (3, Ok(())));
    let stop = Epoch(epoch.0 + 2);
    assert_eq!(c.removes(), [(node(1), "a".into(), stop, true, true)]);
    c.report(1, vec![status("a", stop.0, false, 100)]);
    assert!(!c.store.contains_key("a"));
}

#[test]
fn create_stores_the_changefeed_then_places_it_and_refuses_a_duplicate() {
    let mut c = Cluster::started(Vec::new(), &[1]);
    create(&mut c, 1, "a");
    create(&mut c, 2, "a");
    assert_eq!(c.answers, [(1, Ok(())), (2, Err(RequestError::Exists("a".into())))]);
    assert_eq!(c.store["a"].checkpoint_ts, 100);
    c.take_sent();
    c.tick(1);
    let add = c.sent.iter().find_map(|(_, m)| match m {
        ToManager::AddMaintainer(a) => Some(a.clone()),
        _ => None,
    });
    let add = add.expect("an add");
    assert!(add.is_new);
    assert_eq!((add.checkpoint_ts, add.epoch), (100, Epoch(1)));
}

#[test]
fn a_create_whose_first_write_went_unanswered_is_not_refused_by_its_own_success() {
    let mut c = Cluster::started(Vec::new(), &[1]);
    c.hold = true;
    create(&mut c, 1, "a");
    // The store wrote it but the answer was lost.
    let request = c.held.pop_front().unwrap();
    let MetaOp::Create(s) = request.op.clone() else { panic!() };
    c.store.insert("a".into(), s);
    c.step(Event::Meta(MetaReply { ticket: request.ticket, outcome: Err(MetaError::Unavailable) }));
    assert!(c.held.is_empty() && c.answers.is_empty(), "asked again after a wait, unanswered meanwhile");
    c.tick(1_000);
    c.release(); // the retry meets the first write
    assert_eq!(c.answers, [(1, Ok(()))]);
    assert!(c.co.changefeed("a").is_some());
}

#[test]
fn k11_checkpoints_are_stored_batched_upward_only_and_never_touch_the_lifecycle() {
    let mut c = Cluster::started(vec![running("a", 3), running("b", 3)], &[1]);
    c.tick(1);
    let ea = c.run_on("a", 1);
    let eb = c.run_on("b", 1);
    c.report(1, vec![status("a", ea.0, true, 500), status("b", eb.0, true, 600)]);
    c.requests.clear();
    c.tick(1_000);
    let saves: Vec<_> = c.requests.iter().filter(|op| matches!(op, MetaOp::SaveCheckpoints(_))).collect();
    assert_eq!(saves.len(), 1, "one write for both: {saves:?}");
    assert_eq!((c.store["a"].checkpoint_ts, c.store["b"].checkpoint_ts), (500, 600));
    // A lower report (a lagging node) moves nothing back; no write without progress.
    c.report(1, vec![status("a", ea.0, true, 450)]);
    c.requests.clear();
    c.tick(1_000);
    assert!(c.requests.iter().all(|op| !matches!(op, MetaOp::SaveCheckpoints(_))));
    assert_eq!(c.view("a").checkpoint_ts, 500);
    // At most once per interval.
    c.report(1, vec![status("a", ea.0, true, 700)]);
    c.tick(10);
    assert_eq!(c.store["a"].checkpoint_ts, 500);
    c.tick(1_000);
    assert_eq!(c.store["a"].checkpoint_ts, 700);
    assert_eq!((c.store["a"].state, c.store["a"].progress), (FeedState::Normal, Progress::None));
}

#[test]
fn a_fresh_placements_first_checkpoint_is_stored_at_once_and_later_ones_at_the_interval() {
    let mut c = Cluster::started(vec![running("a", 3)], &[1]);
    c.tick(1);
    let ea = c.run_on("a", 1);
    c.tick(1_000);
    c.tick(10);
    // The first progress of the new placement (a recovery's) does not wait out the interval.
    c.report(1, vec![status("a", ea.0, true, 500)]);
    c.tick(10);
    assert_eq!(c.store["a"].checkpoint_ts, 500);
    // The next one does.
    c.report(1, vec![status("a", ea.0, true, 700)]);
    c.tick(10);
    assert_eq!(c.store["a"].checkpoint_ts, 500);
    c.tick(1_000);
    assert_eq!(c.store["a"].checkpoint_ts, 700);
}

#[test]
fn only_the_placed_maintainers_reports_count_and_strays_are_stopped() {
    let mut c = Cluster::started(vec![running("a", 3)], &[1, 2]);
    c.tick(1);
    let at = if c.adds()[0].0 == node(1) { 1 } else { 2 };
    let epoch = c.run_on("a", at);
    c.take_sent();
    // An old placement still running on the other node: stopped alone, its checkpoint ignored.
    c.report(3 - at, vec![status("a", epoch.0 - 1, true, 9_999)]);
    assert_eq!(c.removes(), [(node(3 - at), "a".into(), Epoch(epoch.0 - 1), false, false)]);
    assert_eq!(c.view("a").checkpoint_ts, 100);
    // A node that is not a member is not read at all.
    c.take_sent();
    c.report(9, vec![status("a", epoch.0, true, 9_999)]);
    assert!(c.sent.is_empty());
    assert_eq!(c.view("a").checkpoint_ts, 100);
}

#[test]
fn a_maintainer_that_stops_by_itself_is_placed_again_after_a_wait_that_grows() {
    let mut c = Cluster::started(vec![running("a", 3)], &[1]);
    c.tick(1);
    let mut epoch = c.run_on("a", 1);
    for wait in [2_000, 4_000, 8_000] {
        // It stops (after running, or before ever coming up): each time it waits longer.
        c.report(1, vec![status("a", epoch.0, false, 100)]);
        assert_eq!(c.view("a").placement, Placement::Absent);
        c.take_sent();
        c.tick(wait - 1);
        assert!(c.adds().is_empty(), "placed before {wait} ms");
        c.tick(1);
        assert_eq!(c.adds(), [(node(1), "a".into(), Epoch(epoch.0 + 1))]);
        epoch = Epoch(epoch.0 + 1);
    }
    // Once one comes up, the count starts again.
    c.run_on("a", 1);
    c.report(1, vec![status("a", epoch.0, false, 100)]);
    c.take_sent();
    c.tick(2_000);
    assert_eq!(c.adds().len(), 1);
}

#[test]
fn k1_a_deposed_coordinator_issues_nothing_more() {
    let mut c = Cluster::started(vec![running("a", 3)], &[1]);
    c.take_sent();
    c.fail_next = Some(MetaError::Deposed);
    c.tick(1);
    assert_eq!(c.notices.last(), Some(&Output::Deposed));
    assert!(c.co.deposed());
    assert!(c.adds().is_empty());
    c.tick(1_000);
    c.request(1, Request::Pause { name: "a".into() });
    assert!(c.sent.is_empty() && c.answers.is_empty());
}

#[test]
fn a_node_that_joins_later_is_bootstrapped_before_it_takes_anything() {
    let mut c = Cluster::started(Vec::new(), &[1]);
    c.members(&[1, 2]);
    assert!(c
        .sent
        .iter()
        .any(|(to, m)| to == &node(2) && m.kind() == MessageKind::CoordinatorBootstrapRequest));
    c.liveness(1, NodeLiveness::Draining);
    create(&mut c, 1, "a");
    c.take_sent();
    c.tick(1);
    assert!(c.adds().is_empty(), "n2 has not answered, n1 drains");
    c.bootstrap_answer(2, Vec::new());
    c.tick(1);
    assert_eq!(c.adds(), [(node(2), "a".into(), Epoch(1))]);
}

#[test]
fn a_restarted_node_is_a_new_member_and_runs_nothing_of_its_past() {
    let mut c = Cluster::started(vec![running("a", 3)], &[1, 2]);
    c.tick(1);
    let at = if c.adds()[0].0 == node(1) { 1 } else { 2 };
    c.run_on("a", at);
    // Same id, new registration.
    let members =
        [1, 2].map(|n| Member { node: node(n), incarnation: if n == at { 100 } else { u64::from(n) } });
    c.step(Event::Members(members.to_vec()));
    assert_eq!(c.view("a").placement, Placement::Absent);
}

#[test]
fn a_pause_of_a_changefeed_never_placed_closes_through_the_own_node_at_a_new_epoch() {
    let mut c = Cluster::started(Vec::new(), &[1, 2]);
    create(&mut c, 1, "a");
    c.take_sent();
    c.request(2, Request::Pause { name: "a".into() });
    assert_eq!(c.answers[1], (2, Ok(())));
    // Epoch 0 was never sent and the wire refuses it: the stop takes a fresh one.
    assert_eq!(c.removes(), [(node(1), "a".into(), Epoch(1), true, false)]);
    c.report(1, vec![status("a", 1, false, 100)]);
    assert_eq!(c.view("a").state, "stopped");
    assert_eq!(c.view("a").operator, None);
}

#[test]
fn a_pause_while_a_move_waits_for_its_epoch_closes_what_the_origin_left() {
    let mut c = Cluster::started(vec![running("a", 3)], &[1, 2]);
    c.tick(1);
    let origin = if c.adds()[0].0 == node(1) { 1 } else { 2 };
    let epoch = c.run_on("a", origin);
    c.request(1, Request::MoveMaintainer { name: "a".into(), to: node(3 - origin) });
    c.hold = true;
    c.report(origin, vec![status("a", epoch.0, false, 100)]); // the origin stopped: bump asked
    assert_eq!(c.held.len(), 1);
    c.hold = false;
    c.take_sent();
    c.request(2, Request::Pause { name: "a".into() });
    // The origin stopped its maintainer, not its dispatchers: they are closed through the own
    // node at an epoch above the origin's.
    let removes = c.removes();
    assert_eq!(removes.len(), 1, "{removes:?}");
    assert_eq!((removes[0].0.clone(), removes[0].3), (node(1), true));
    assert!(removes[0].2 > epoch);
    // The move's late bump is not sent anywhere.
    c.hold = true;
    let held = std::mem::take(&mut c.held);
    c.hold = false;
    c.held = held;
    c.release();
    assert!(c.adds().is_empty());
}

#[test]
fn a_reply_that_ends_a_replaced_stop_is_ignored() {
    let mut c = Cluster::started(vec![running("a", 3)], &[1]);
    c.tick(1);
    let epoch = c.run_on("a", 1);
    c.request(1, Request::Pause { name: "a".into() });
    c.hold = true;
    c.report(1, vec![status("a", epoch.0 + 1, false, 100)]); // the pause ends: its write is held
    let finish_pause = c.held.pop_front().unwrap();
    c.hold = false;
    c.request(2, Request::Remove { name: "a".into() });
    let finish = c.answer_now(finish_pause);
    c.step(Event::Meta(finish));
    assert!(c.co.changefeed("a").is_some(), "the remove is not done by the pause's write");
    assert_eq!(c.view("a").operator, Some("remove"));
}

#[test]
fn a_delete_retried_after_an_unknown_outcome_that_landed_finishes_the_removal() {
    let mut c = Cluster::started(vec![running("a", 3)], &[1]);
    c.tick(1);
    let epoch = c.run_on("a", 1);
    c.request(1, Request::Remove { name: "a".into() });
    c.hold = true;
    c.report(1, vec![status("a", epoch.0 + 1, false, 100)]);
    let delete = c.held.pop_front().unwrap();
    c.store.remove("a"); // it landed, but the answer was lost
    c.step(Event::Meta(MetaReply { ticket: delete.ticket, outcome: Err(MetaError::Unavailable) }));
    c.hold = false;
    c.tick(1_000);
    assert!(c.co.changefeed("a").is_none());
}

#[test]
fn a_message_of_a_previous_process_under_the_same_id_is_dropped() {
    let mut c = Cluster::started(vec![running("a", 3)], &[1, 2]);
    let members = [Member { node: node(1), incarnation: 1 }, Member { node: node(2), incarnation: 20 }];
    c.step(Event::Members(members.to_vec()));
    c.take_sent();
    // The old n2 (incarnation 2) answers the bootstrap late: not the new process's answer.
    c.bootstrap_answer(2, vec![status("a", 3, true, 100)]);
    c.tick(500);
    assert!(c
        .sent
        .iter()
        .any(|(to, m)| to == &node(2) && m.kind() == MessageKind::CoordinatorBootstrapRequest));
    assert!(c.removes().is_empty());
}

#[test]
fn a_stray_of_a_paused_changefeed_is_stopped_with_cascade() {
    let mut c = Cluster::started(vec![stored("p", 4, FeedState::Stopped, Progress::None)], &[1, 2]);
    c.take_sent();
    c.report(2, vec![status("p", 3, true, 100)]);
    assert_eq!(c.removes(), [(node(2), "p".into(), Epoch(3), true, false)]);
}

#[test]
fn a_placed_maintainer_not_heard_from_for_30_s_is_placed_again_at_a_new_epoch() {
    let mut c = Cluster::started(vec![running("a", 3)], &[1, 2]);
    c.tick(1);
    let at = if c.adds()[0].0 == node(1) { 1 } else { 2 };
    let epoch = c.run_on("a", at);
    c.liveness(1, NodeLiveness::Alive);
    c.liveness(2, NodeLiveness::Alive);
    c.take_sent();
    c.tick(29_000);
    assert!(c.adds().is_empty());
    c.report(at, vec![status("a", epoch.0, true, 200)]); // heard: the clock starts again
    c.tick(29_000);
    assert!(c.adds().is_empty());
    c.liveness(1, NodeLiveness::Alive);
    c.liveness(2, NodeLiveness::Alive);
    c.tick(2_000);
    c.tick(2_000);
    let adds = c.adds();
    assert_eq!(adds.len(), 1, "{adds:?}");
    assert!(adds[0].2 > epoch);
}
