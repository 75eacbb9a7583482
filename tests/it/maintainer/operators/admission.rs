//! The operator controller's admission (I3: one operator per id and per key range, except
//! occupies inside their merge and removes among removes), and a quiesced controller.

use super::*;

#[test]
fn controller_admits_one_operator_per_id() {
    let (sc, mut oc) = (controller_sc(), OperatorController::new());
    assert_eq!(oc.admit(move_op(&sc, 3), &sc, 0), Ok(vec![Change::MarkScheduling(rec(&sc, 3).guard())]));
    assert_eq!(oc.admit(remove_op(&sc, 3), &sc, 0), Err(Refusal::IdBusy(id(3))));
    assert_eq!(oc.admit(move_op(&sc, 3), &sc, 0), Err(Refusal::IdBusy(id(3))));
    admit_merge(&mut oc, &sc, 5);
    assert_eq!(oc.admit(move_op(&sc, 11), &sc, 0), Err(Refusal::IdBusy(id(11))), "a source is reserved");
    assert_eq!(oc.admit(remove_op(&sc, 13), &sc, 0), Err(Refusal::IdBusy(id(13))), "and the target");
    assert_eq!(oc.len(), 4);
    assert_eq!(
        (oc.count(OperatorKind::Occupy), oc.count(OperatorKind::Merge), oc.count(OperatorKind::Move)),
        (2, 1, 1)
    );
}

#[test]
fn controller_admits_one_operator_per_key_range() {
    let (sc, mut oc) = (controller_sc(), OperatorController::new());
    oc.admit(move_op(&sc, 1), &sc, 0).unwrap();
    assert_eq!(oc.admit(move_op(&sc, 2), &sc, 0), Err(Refusal::SpanBusy(id(1))), "overlapping span");
    assert_eq!(oc.admit(remove_op(&sc, 2), &sc, 0), Err(Refusal::SpanBusy(id(1))), "a remove vs a move");
    oc.admit(move_op(&sc, 3), &sc, 0).expect("another table");
    oc.admit(move_op(&sc, 4), &sc, 0).expect("adjacent span of table 5");
    oc.admit(move_op(&sc, 5), &sc, 0).expect("the other half: adjacent is not overlapping");
    admit_merge(&mut oc, &sc, 5);
    assert_eq!(oc.overlapping(&whole(2), &[]), Some(id(11)));
    assert_eq!(oc.overlapping(&whole(2), &[id(11), id(12)]), Some(id(13)));
    assert_eq!(oc.overlapping(&whole(7), &[]), None);
}

#[test]
fn controller_lets_removes_overlap_removes_only() {
    let (sc, mut oc) = (controller_sc(), OperatorController::new());
    oc.admit(remove_op(&sc, 1), &sc, 0).unwrap();
    assert_eq!(oc.admit(remove_op(&sc, 2), &sc, 0), Ok(vec![]), "two overlapping removes");
    assert_eq!(oc.admit(move_op(&sc, 2), &sc, 0), Err(Refusal::IdBusy(id(2))));
    let mut oc = OperatorController::new();
    oc.admit(remove_op(&sc, 1), &sc, 0).unwrap();
    assert_eq!(oc.admit(move_op(&sc, 2), &sc, 0), Err(Refusal::SpanBusy(id(1))), "a move over a remove");
    let mut oc = OperatorController::new();
    oc.admit(Operator::split(rec(&sc, 2), whole(1).split_even(4).unwrap()[..2].to_vec()).unwrap(), &sc, 0)
        .unwrap();
    assert_eq!(oc.admit(remove_op(&sc, 1), &sc, 0), Err(Refusal::SpanBusy(id(2))), "a remove over a split");
}

#[test]
fn controller_checks_the_record_but_admits_the_remove_of_a_deleted_one() {
    let mut sc = controller_sc();
    let mut oc = OperatorController::new();
    let remove = remove_op(&sc, 3);
    let mv = move_op(&sc, 3);
    let add = add_op(&sc, 20);
    let stale_add = add_op(&sc, 1);
    let stale_remove = remove_op(&sc, 1);
    sc.delete(rec(&sc, 3).guard()).unwrap();
    sc.delete(rec(&sc, 20).guard()).unwrap();
    // Record 1 replaced by a new incarnation under the same id: the old guard is stale.
    sc.delete(rec(&sc, 1).guard()).unwrap();
    sc.insert(new_span(1, whole(1), 10, None), SpanState::Absent, None).unwrap();
    assert_ne!(rec(&sc, 1).guard(), stale_remove.guard);
    assert_eq!(oc.admit(mv, &sc, 0), Err(Refusal::NoSpan), "move of a deleted record");
    assert_eq!(oc.admit(add, &sc, 0), Err(Refusal::NoSpan), "add of a deleted record");
    assert_eq!(oc.admit(stale_add, &sc, 0), Err(Refusal::NoSpan), "add with a stale incarnation");
    assert_eq!(oc.admit(stale_remove, &sc, 0), Err(Refusal::NoSpan), "remove with a stale incarnation");
    assert!(oc.is_empty(), "refusals admit nothing");
    assert_eq!(oc.admit(remove, &sc, 0), Ok(vec![]), "remove of a deleted record");
    let (messages, _) = oc.due(0, 1_000, &ctx(&sc));
    assert_eq!(sent(&messages), vec![msg("a", "remove", 3)], "and its remove goes out");
}

#[test]
fn controller_admits_occupies_inside_their_merge_in_either_order() {
    let sc = controller_sc();
    // Occupies first (the maintainer's order), then the merge over them.
    let mut oc = OperatorController::new();
    admit_merge(&mut oc, &sc, 5);
    assert_eq!(oc.admit(move_op(&sc, 13), &sc, 0), Err(Refusal::IdBusy(id(13))));
    // Merge first, then its occupies.
    let mut oc = OperatorController::new();
    let changes = oc.admit(merge_op(&sc, 5), &sc, 0).unwrap();
    assert_eq!(changes.len(), 2, "{changes:?}");
    oc.admit(occupy_op(&sc, 11), &sc, 0).expect("occupy inside its merge");
    oc.admit(occupy_op(&sc, 12), &sc, 0).expect("occupy inside its merge");
    // An occupy on behalf of another merge is not inside it.
    let mut oc = OperatorController::new();
    oc.admit(merge_op(&sc, 5), &sc, 0).unwrap();
    let foreign = Operator::occupy(rec(&sc, 11), id(77)).unwrap();
    assert_eq!(oc.admit(foreign, &sc, 0), Err(Refusal::SpanBusy(id(13))));
    // And nothing else gets inside a merge.
    let mut oc = OperatorController::new();
    admit_merge(&mut oc, &sc, 5);
    let other = Operator::remove(rec(&sc, 13), node("a"), OperatorType::Remove, AfterRemove::Nothing);
    assert_eq!(oc.admit(other, &sc, 0), Err(Refusal::IdBusy(id(13))));
}

#[test]
fn controller_quiesced_refuses_routes_nothing_and_sends_nothing() {
    let (sc, mut oc) = (controller_sc(), OperatorController::new());
    oc.admit(move_op(&sc, 1), &sc, 0).unwrap();
    admit_merge(&mut oc, &sc, 1);
    oc.quiesce();
    assert!(oc.is_quiesced());
    assert_eq!(oc.admit(move_op(&sc, 3), &sc, 0), Err(Refusal::Quiesced));
    let (messages, changes) = oc.due(0, 1_000, &ctx(&sc));
    assert!(messages.is_empty() && changes.is_empty(), "{messages:?} {changes:?}");
    let (messages, changes) = oc.due(50_000, 1_000, &ctx(&sc));
    assert!(messages.is_empty() && changes.is_empty(), "a frozen merge is not abandoned either");
    assert_eq!(oc.on_status(&node("a"), id(1), Stopped, 20), vec![]);
    assert_eq!(phase(&oc, 1), OperatorPhase::RemoveOrigin);
    assert_eq!(oc.on_node_removed(&node("a")), vec![]);
    assert_eq!(phase(&oc, 1), OperatorPhase::RemoveOrigin);
    assert_eq!(phase(&oc, 13), OperatorPhase::Merging);
    assert_eq!(oc.len(), 4, "frozen operators stay (their checkpoint constraint too)");
    assert_eq!(oc.min_blocking_checkpoint(&sc), Some(10));
}

#[test]
fn controller_finished_but_unreaped_operators_still_hold_id_and_span() {
    let (sc, mut oc) = (controller_sc(), OperatorController::new());
    oc.admit(move_op(&sc, 1), &sc, 0).unwrap();
    let _ = oc.cancel(id(1));
    assert_eq!(oc.admit(move_op(&sc, 1), &sc, 0), Err(Refusal::IdBusy(id(1))));
    assert_eq!(oc.admit(move_op(&sc, 2), &sc, 0), Err(Refusal::SpanBusy(id(1))));
    assert!(oc.due(0, 100, &ctx(&sc)).0.is_empty(), "a finished operator sends nothing");
}
