//! The messages operators send: the context's epoch, the controller's mode, the create start ts
//! (B13, I11), and no create for a record that is gone.

use super::*;

#[test]
fn messages_carry_the_context_epoch_and_the_controller_mode() {
    for mode in [Mode::Default, Mode::Redo] {
        let fx = Fx::new(mode);
        let mut in_add_dest = move_op(&fx.sc, 1);
        let _ = in_add_dest.start();
        let _ = feed(&mut in_add_dest, St("a", 1, Stopped, 130));
        let ops = [
            ("add", add_op(&fx.sc, 2), OperatorType::Add),
            (
                "remove",
                Operator::remove(fx.rec(1), node("a"), OperatorType::Move, AfterRemove::Nothing),
                OperatorType::Move,
            ),
            ("move remove", move_op(&fx.sc, 1), OperatorType::Move),
            ("move create", in_add_dest, OperatorType::Move),
            ("split", fx.split(), OperatorType::Split),
            ("merge", merge_op(&fx.sc, MAX_SENDS), OperatorType::Merge),
        ];
        for epoch in [Epoch(1), Epoch(42)] {
            let ctx = fx.ctx_with(epoch, COMMITTED);
            for (name, op, ty) in &ops {
                let name = format!("{name} ({mode:?}, {epoch:?})");
                match op.message(&ctx) {
                    Some((_, ToNode::Schedule(req))) => {
                        assert_eq!(req.epoch, epoch, "{name}: epoch");
                        assert_eq!(req.config.mode, mode, "{name}: mode");
                        assert_eq!(req.operator_type, *ty, "{name}: operator type");
                    }
                    Some((_, ToNode::Merge(req))) => {
                        assert_eq!(*ty, OperatorType::Merge, "{name}");
                        assert_eq!(req.epoch, epoch, "{name}: epoch");
                        assert_eq!(req.mode, mode, "{name}: mode");
                    }
                    other => panic!("{name}: unexpected {other:?}"),
                }
            }
        }
    }
}

/// Create start ts (B13, I11): `(checkpoint, block, committed) → (start_ts, skip_dml_as_start_ts)`.
#[test]
fn create_start_ts_table() {
    let ddl = |block_ts| Some(PendingBlock { block_ts, is_sync_point: false });
    let sync = |block_ts| Some(PendingBlock { block_ts, is_sync_point: true });
    type StartRow = (&'static str, Ts, Option<PendingBlock>, Ts, (Ts, bool));
    let rows: [StartRow; 14] = [
        ("no block: the checkpoint", 100, None, 0, (100, false)),
        ("no block, committed below", 100, None, 99, (100, false)),
        ("no block, committed equal", 100, None, 100, (100, false)),
        ("no block, committed above: clamp (I11)", 100, None, 150, (150, false)),
        ("syncpoint ahead: replay it", 100, sync(120), 0, (120, false)),
        ("syncpoint behind: the checkpoint", 100, sync(80), 0, (100, false)),
        ("syncpoint, committed above: clamp", 100, sync(120), 130, (130, false)),
        ("DDL just ahead: skip its DML", 100, ddl(101), 0, (100, true)),
        ("DDL further ahead: replay from block-1", 100, ddl(120), 0, (119, true)),
        ("DDL at the checkpoint: passed, no skip", 100, ddl(100), 0, (100, false)),
        ("DDL behind: the checkpoint", 100, ddl(50), 0, (100, false)),
        ("DDL, committed equal to block-1: no clamp, skip kept", 100, ddl(120), 119, (119, true)),
        ("DDL, committed above: clamp, stale replay abandoned", 100, ddl(120), 120, (120, false)),
        ("DDL, committed far above", 100, ddl(101), 500, (500, false)),
    ];
    let mut sc = SpanController::new(Mode::Default);
    for (i, (name, checkpoint, block, committed, want)) in rows.into_iter().enumerate() {
        let n = i as u64 + 1;
        sc.insert(new_span(n, whole(n as i64), checkpoint, block), SpanState::Absent, None).unwrap();
        let record = sc.get(id(n)).unwrap();
        assert_eq!(create_start_ts(record, committed), want, "{name}");
        // The create message uses exactly that rule.
        let op = Operator::add(record, node("b"), OperatorType::Add);
        let cf = ChangefeedId::default();
        let ctx = MessageContext { sc: &sc, epoch: EPOCH, committed, changefeed: &cf };
        let Some((_, ToNode::Schedule(req))) = op.message(&ctx) else { panic!("{name}: no create") };
        assert_eq!((req.config.start_ts, req.config.skip_dml_as_start_ts), want, "{name}: message");
    }
}

#[test]
fn a_create_for_a_gone_record_is_not_sent() {
    let mut fx = Fx::new(Mode::Default);
    let add = add_op(&fx.sc, 2);
    let mut mv = move_op(&fx.sc, 1);
    let _ = mv.start();
    let _ = feed(&mut mv, Gone("a"));
    assert_eq!(mv.phase(), OperatorPhase::AddDest);
    // The committed checkpoint clamps the move's create as well.
    let Some((_, ToNode::Schedule(req))) = mv.message(&fx.ctx_with(EPOCH, 500)) else { panic!("create") };
    assert_eq!((req.config.start_ts, req.config.skip_dml_as_start_ts), (500, false));
    fx.sc.delete(fx.g(2)).unwrap();
    fx.sc.delete(fx.g(1)).unwrap();
    assert_eq!(add.message(&fx.ctx()), None);
    assert_eq!(mv.message(&fx.ctx()), None);
}
