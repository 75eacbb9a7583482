//! The running operator controller: sends and resends, routing statuses, withdrawing merges,
//! reaping, the checkpoint it holds back, and dead nodes.

use super::*;

#[test]
fn controller_resends_at_most_once_per_interval() {
    let (sc, mut oc) = (controller_sc(), OperatorController::new());
    oc.admit(remove_op(&sc, 3), &sc, 1_000).unwrap();
    let mut due = |now| sent(&oc.due(now, 500, &ctx(&sc)).0);
    let remove_3 = vec![msg("a", "remove", 3)];
    assert_eq!(due(999), vec![], "not before admission time");
    assert_eq!(due(1_000), remove_3, "first send at admission time");
    assert_eq!(due(1_000), vec![]);
    assert_eq!(due(1_499), vec![]);
    assert_eq!(due(1_500), remove_3);
    assert_eq!(due(1_700), vec![]);
    assert_eq!(due(5_000), remove_3, "a late poll sends once, not once per missed interval");
    assert_eq!(due(5_000), vec![]);
}

#[test]
fn controller_sends_at_once_on_a_phase_change_only() {
    let (sc, mut oc) = (controller_sc(), OperatorController::new());
    oc.admit(move_op(&sc, 3), &sc, 0).unwrap();
    oc.admit(move_op(&sc, 4), &sc, 0).unwrap();
    let due = |oc: &mut OperatorController, now| sent(&oc.due(now, 1_000, &ctx(&sc)).0);
    assert_eq!(due(&mut oc, 0), vec![msg("a", "remove", 3), msg("a", "remove", 4)]);
    assert_eq!(oc.on_status(&node("a"), id(3), Working, 30), vec![], "no phase change");
    assert_eq!(due(&mut oc, 10), vec![], "so no early resend");
    let g3 = rec(&sc, 3).guard();
    assert_eq!(
        oc.on_status(&node("a"), id(3), Stopped, 30),
        vec![
            Change::RaiseCheckpoint(g3, 30),
            Change::Schedule { guard: g3, from: Some(node("a")), to: node("b") }
        ]
    );
    assert_eq!(due(&mut oc, 10), vec![msg("b", "create", 3)], "the new phase's message at once");
    assert_eq!(due(&mut oc, 20), vec![]);
    assert_eq!(oc.on_node_removed(&node("b")), vec![Change::Absent(g3)], "move 3 fails in AddDest");
    assert_eq!(phase(&oc, 4), OperatorPhase::AbortRemoveOrigin, "S18 for move 4");
    assert_eq!(due(&mut oc, 20), vec![msg("a", "remove", 4)], "the abort phase sends at once");
    assert_eq!(due(&mut oc, 30), vec![]);
    assert_eq!(oc.reap(), vec![finished(3, OperatorKind::Move, OperatorOutcome::Failed)]);
}

#[test]
fn controller_routes_merge_source_statuses_to_the_merge() {
    let (sc, mut oc) = (controller_sc(), OperatorController::new());
    admit_merge(&mut oc, &sc, 1);
    assert_eq!(oc.on_status(&node("a"), id(11), WaitingMerge, 110), vec![]);
    assert!(
        matches!(oc.get(id(13)).unwrap().kind, Kind::Merge { accepted: true, .. }),
        "routed to the merge"
    );
    assert_eq!(phase(&oc, 11), OperatorPhase::Holding, "the occupy ignores it");
    assert_eq!(oc.on_status(&node("a"), id(12), Stopped, 120), vec![], "a source's Stopped ends nothing");
    assert_eq!(oc.on_status(&node("a"), id(13), Working, 110), merged(&sc, 110));
    assert_eq!(phase(&oc, 11), OperatorPhase::Holding, "occupies held until the release is applied");
    assert_eq!(oc.reap(), vec![finished(13, OperatorKind::Merge, OperatorOutcome::Succeeded)]);
    assert_eq!(
        oc.on_status(&node("a"), id(11), Stopped, 110),
        vec![],
        "a late source Stopped hits the occupy"
    );
    assert_eq!(phase(&oc, 11), OperatorPhase::Holding);
    oc.release(&[id(11), id(12)]);
    let mut reaped = oc.reap();
    reaped.sort_by_key(|f| f.id);
    assert_eq!(
        reaped,
        vec![
            finished(11, OperatorKind::Occupy, OperatorOutcome::Succeeded),
            finished(12, OperatorKind::Occupy, OperatorOutcome::Succeeded),
        ]
    );
    assert!(oc.is_empty());
    assert_eq!(oc.on_status(&node("a"), id(11), Stopped, 110), vec![], "nothing left to route to");
}

#[test]
fn controller_withdraws_an_unaccepted_merge_after_max_sends() {
    let sc = controller_sc();
    let mut oc = OperatorController::new();
    admit_merge(&mut oc, &sc, 3);
    let (mut merges, mut removes) = (0, 0);
    let mut changes = Vec::new();
    for step in 0..10 {
        let (messages, c) = oc.due(step * 100, 100, &ctx(&sc));
        merges += sent(&messages).iter().filter(|m| m.1 == "merge").count();
        removes += sent(&messages).iter().filter(|m| *m == &msg("a", "remove", 13)).count();
        changes.extend(c);
    }
    assert_eq!(merges, 3, "exactly max_sends merge sends");
    assert!(removes >= 6, "then the merged dispatcher is removed, resent until it is gone");
    assert!(changes.is_empty(), "the sources stay held while the merged id could still start");
    assert_eq!(phase(&oc, 13), OperatorPhase::Withdrawing);
    assert!(oc.reap().is_empty());
    // The node answers the remove: only now are the sources handed back.
    assert_eq!(oc.on_status(&node("a"), id(13), Stopped, 0), abandoned(&sc));
    assert_eq!(oc.reap(), vec![finished(13, OperatorKind::Merge, OperatorOutcome::Failed)]);

    // Accepted: keeps sending.
    let mut oc = OperatorController::new();
    admit_merge(&mut oc, &sc, 3);
    let _ = oc.on_status(&node("a"), id(12), WaitingMerge, 120);
    let mut merges = 0;
    for step in 0..10 {
        let (messages, changes) = oc.due(step * 100, 100, &ctx(&sc));
        assert!(changes.is_empty());
        merges += messages.len();
    }
    assert_eq!(merges, 10);
    assert_eq!(phase(&oc, 13), OperatorPhase::Merging);
}

#[test]
fn controller_reaps_each_finished_operator_once_and_frees_its_id_and_span() {
    let (sc, mut oc) = (controller_sc(), OperatorController::new());
    oc.admit(add_op(&sc, 20), &sc, 0).unwrap();
    oc.admit(move_op(&sc, 1), &sc, 0).unwrap();
    oc.admit(remove_op(&sc, 3), &sc, 0).unwrap();
    assert_eq!(oc.reap(), vec![], "nothing finished yet");
    let _ = oc.on_status(&node("b"), id(20), Working, 200);
    let _ = oc.on_node_removed(&node("a")); // remove 3 succeeds, move 1 goes to AddDest
    assert!(oc.cancel(id(1)).contains(&Change::Replicate { guard: rec(&sc, 1).guard(), on: node("b") }));
    assert_eq!(oc.cancel(id(99)), vec![], "cancelling nothing");
    assert_eq!(
        oc.reap(),
        vec![
            finished(1, OperatorKind::Move, OperatorOutcome::Cancelled),
            finished(3, OperatorKind::Remove, OperatorOutcome::Succeeded),
            finished(20, OperatorKind::Add, OperatorOutcome::Succeeded),
        ]
    );
    assert_eq!(oc.reap(), vec![], "reported once");
    assert!(oc.is_empty() && oc.get(id(1)).is_none());
    oc.admit(move_op(&sc, 2), &sc, 0).expect("the span of 1 is free again");
    oc.admit(remove_op(&sc, 3), &sc, 0).expect("id 3 is free again");
}

#[test]
fn controller_min_blocking_checkpoint_counts_add_move_split_only() {
    let (sc, mut oc) = (controller_sc(), OperatorController::new());
    assert_eq!(oc.min_blocking_checkpoint(&sc), None);
    oc.admit(remove_op(&sc, 1), &sc, 0).unwrap(); // checkpoint 10
    admit_merge(&mut oc, &sc, 5); // checkpoints 110, 120, 110
    assert_eq!(oc.min_blocking_checkpoint(&sc), None, "remove, merge and occupy do not block");
    oc.admit(add_op(&sc, 20), &sc, 0).unwrap();
    assert_eq!(oc.min_blocking_checkpoint(&sc), Some(200), "add");
    oc.admit(Operator::split(rec(&sc, 5), whole(5).split_even(4).unwrap()[2..].to_vec()).unwrap(), &sc, 0)
        .unwrap();
    assert_eq!(oc.min_blocking_checkpoint(&sc), Some(50), "split");
    oc.admit(move_op(&sc, 4), &sc, 0).unwrap();
    assert_eq!(oc.min_blocking_checkpoint(&sc), Some(40), "move");
    let _ = oc.on_node_removed(&node("b")); // the move aborts (S18) but still blocks
    assert_eq!(oc.min_blocking_checkpoint(&sc), Some(40));
    let _ = oc.on_status(&node("a"), id(4), Stopped, 45);
    assert_eq!(oc.min_blocking_checkpoint(&sc), Some(50), "finished, even before reap, no longer blocks");
}

#[test]
fn controller_tells_every_operator_about_a_dead_node() {
    let (sc, mut oc) = (controller_sc(), OperatorController::new());
    oc.admit(move_op(&sc, 1), &sc, 0).unwrap();
    oc.admit(remove_op(&sc, 3), &sc, 0).unwrap();
    oc.admit(add_op(&sc, 20), &sc, 0).unwrap();
    admit_merge(&mut oc, &sc, 5);
    let changes = oc.on_node_removed(&node("c"));
    assert!(changes.is_empty(), "unrelated node: {changes:?}");
    let changes = oc.on_node_removed(&node("a"));
    let g = |n| rec(&sc, n).guard();
    assert_eq!(
        changes,
        vec![
            Change::Schedule { guard: g(1), from: Some(node("a")), to: node("b") },
            Change::Absent(g(11)),
            Change::Absent(g(12)),
            Change::Delete(g(13)),
            Change::Release(vec![id(11), id(12)]),
        ],
        "in id order: move 1, remove 3 (no hook), occupies (nothing), merge 13"
    );
    assert_eq!(phase(&oc, 1), OperatorPhase::AddDest);
    assert_eq!(phase(&oc, 20), OperatorPhase::Creating);
    assert_eq!(
        oc.reap(),
        vec![
            finished(3, OperatorKind::Remove, OperatorOutcome::Succeeded),
            finished(11, OperatorKind::Occupy, OperatorOutcome::Failed),
            finished(12, OperatorKind::Occupy, OperatorOutcome::Failed),
            finished(13, OperatorKind::Merge, OperatorOutcome::Failed),
        ]
    );
}
