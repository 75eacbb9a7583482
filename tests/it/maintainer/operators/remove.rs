//! The remove operator, for each AfterRemove and each constructed OperatorType.

use super::*;

fn remove_rows(fx: &Fx, after: AfterRemove, ty: OperatorType) -> Vec<Row> {
    let g = fx.g(1);
    let r = OperatorPhase::Removing;
    let msg = Msg::Remove("a", ty);
    let hook: Vec<Change> = match after {
        AfterRemove::Nothing => vec![],
        AfterRemove::MarkAbsent => vec![Change::Absent(g)],
        AfterRemove::DeleteAndRepair => vec![Change::Delete(g), Change::Repair((0, 1))],
    };
    let with_ckpt = |ts| [vec![Change::RaiseCheckpoint(g, ts)], hook.clone()].concat();
    let mut t = Table::default();
    t.at(r, &[]);
    t.origin_answers("", msg, (OK, QUIET), with_ckpt);
    t.row("Removed from another node", St("c", 1, Removed, 130), r, msg, vec![]);
    t.row("node removed: dispatcher gone", Gone("a"), OK, QUIET, hook.clone());
    t.row("unrelated node removed", Gone("b"), r, msg, vec![]);
    t.row("cancelled skips the hook", Cancel, CANCELLED, QUIET, vec![]);
    t.row("resent", Resent, r, msg, vec![]);
    t.row("released", Released, r, msg, vec![]);
    t.at(r, &[St("a", 1, WaitingMerge, 120)]);
    t.row("Stopped after WaitingMerge", St("a", 1, Stopped, 130), OK, QUIET, with_ckpt(130));
    t.done("stopped", &[St("a", 1, Stopped, 130)], OK, 1);
    t.done("node removed", &[Gone("a")], OK, 1);
    t.done("cancelled", &[Cancel], CANCELLED, 1);
    t.rows
}

#[test]
fn remove_table_for_every_after_remove_and_operator_type() {
    let fx = Fx::new(Mode::Default);
    let mut n = 0;
    for after in [AfterRemove::Nothing, AfterRemove::MarkAbsent, AfterRemove::DeleteAndRepair] {
        for ty in [OperatorType::Remove, OperatorType::Move, OperatorType::Split] {
            let make = |fx: &Fx| Operator::remove(fx.rec(1), node("a"), ty, after);
            n += run(&format!("remove({after:?}, {ty:?})"), &fx, make, &remove_rows(&fx, after, ty));
        }
    }
    assert!(n > 400);
}

/// The node is captured at construction; a record later rebound elsewhere, or deleted, does
/// not redirect the remove, and the remove of a deleted record still goes out.
#[test]
fn remove_keeps_its_captured_node_and_outlives_its_record() {
    let mut fx = Fx::new(Mode::Default);
    let mut op = Operator::remove(fx.rec(1), node("a"), OperatorType::Remove, AfterRemove::Nothing);
    let _ = op.start();
    let g = fx.g(1);
    fx.sc.transition(g, None, None, SpanState::Scheduling, Some(node("b"))).unwrap();
    check_message(&fx, &op, Msg::Remove("a", OperatorType::Remove), "rebound record");
    assert!(feed(&mut op, St("b", 1, Stopped, 130)).is_empty(), "the new node's Stopped is not ours");
    assert_eq!(op.phase(), OperatorPhase::Removing);
    fx.sc.delete(g).unwrap();
    check_message(&fx, &op, Msg::Remove("a", OperatorType::Remove), "deleted record");
    assert_eq!(feed(&mut op, St("a", 1, Stopped, 130)), vec![Change::RaiseCheckpoint(g, 130)]);
    assert_eq!(op.phase(), OK);
}
