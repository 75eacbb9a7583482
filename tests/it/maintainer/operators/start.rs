//! What every kind of operator does on start, and what its constructor refuses.

use super::*;

#[test]
fn start_table_every_kind() {
    let fx = Fx::new(Mode::Default);
    let (a, b) = (node("a"), node("b"));
    let remove = Operator::remove(fx.rec(1), a.clone(), OperatorType::Remove, AfterRemove::MarkAbsent);
    // (name, operator, (kind, blocks the checkpoint, affected nodes, source ids, message after
    // start), (phase after start, start changes)).
    type What<'a> = (OperatorKind, bool, &'a [&'a str], &'a [u64], Msg);
    type Start<'a> = (&'a str, Operator, What<'a>, (OperatorPhase, Vec<Change>));
    let rows: Vec<Start<'_>> = vec![
        (
            "add binds to dest",
            add_op(&fx.sc, 2),
            (OperatorKind::Add, true, &["b"], &[], Msg::Create("b", OperatorType::Add)),
            (OperatorPhase::Creating, vec![Change::Schedule { guard: fx.g(2), from: None, to: b }]),
        ),
        (
            "remove touches nothing",
            remove,
            (OperatorKind::Remove, false, &["a"], &[], Msg::Remove("a", OperatorType::Remove)),
            (OperatorPhase::Removing, vec![]),
        ),
        (
            "move marks scheduling, keeps origin",
            move_op(&fx.sc, 1),
            (OperatorKind::Move, true, &["a", "b"], &[], Msg::Remove("a", OperatorType::Move)),
            (OperatorPhase::RemoveOrigin, vec![Change::MarkScheduling(fx.g(1))]),
        ),
        (
            "move to its own node is done at once",
            Operator::moving(fx.rec(1), a.clone()).unwrap(),
            (OperatorKind::Move, true, &["a", "a"], &[], QUIET),
            (OK, vec![Change::Replicate { guard: fx.g(1), on: a }]),
        ),
        (
            "split marks scheduling",
            fx.split(),
            (OperatorKind::Split, true, &["a"], &[], Msg::Remove("a", OperatorType::Split)),
            (OperatorPhase::Removing, vec![Change::MarkScheduling(fx.g(1))]),
        ),
        (
            "merge marks every source scheduling",
            merge_op(&fx.sc, MAX_SENDS),
            (OperatorKind::Merge, false, &["a"], &[11, 12], Msg::Merge("a")),
            (
                OperatorPhase::Merging,
                vec![Change::MarkScheduling(fx.g(11)), Change::MarkScheduling(fx.g(12))],
            ),
        ),
        (
            "occupy touches nothing, sends nothing",
            occupy_op(&fx.sc, 11),
            (OperatorKind::Occupy, false, &["a"], &[], QUIET),
            (OperatorPhase::Holding, vec![]),
        ),
    ];
    for (name, mut op, (kind, blocks, nodes, sources, msg), (phase, changes)) in rows {
        assert_eq!(op.op_kind(), kind, "{name}: kind");
        assert_eq!(op.blocks_checkpoint(), blocks, "{name}: blocks checkpoint (I10 c)");
        let nodes: Vec<NodeId> = nodes.iter().map(|n| node(n)).collect();
        assert_eq!(op.affected_nodes().into_iter().cloned().collect::<Vec<_>>(), nodes, "{name}: nodes");
        let sources: Vec<DispatcherId> = sources.iter().map(|n| id(*n)).collect();
        assert_eq!(op.source_ids(), sources, "{name}: source ids");
        assert_eq!(op.start(), changes, "{name}: start changes");
        assert_eq!(op.phase(), phase, "{name}: phase after start");
        check_message(&fx, &op, msg, name);
    }
}

#[test]
fn constructors_refuse_unbound_records_and_name_the_record() {
    let fx = Fx::new(Mode::Default);
    let absent = fx.rec(2);
    assert!(Operator::moving(absent, node("b")).is_none(), "move needs an origin");
    assert!(Operator::split(absent, whole(3).split_even(2).unwrap()).is_none(), "split needs an origin");
    assert!(Operator::occupy(absent, id(13)).is_none(), "occupy needs the source's node");
    let merge = merge_op(&fx.sc, MAX_SENDS);
    assert_eq!((merge.id, merge.guard, merge.span.clone()), (id(13), fx.g(13), whole(2)));
    let occupy = occupy_op(&fx.sc, 12);
    assert_eq!(occupy.id, id(12));
    assert!(matches!(occupy.kind, Kind::Occupy { merge, .. } if merge == id(13)));
    let Kind::Split { checkpoint, .. } = fx.split().kind else { panic!("split") };
    assert_eq!(checkpoint, CKPT, "a split starts from the record's checkpoint");
}
