//! The add operator, for each operator type it is built with.

use super::*;

fn add_rows(fx: &Fx, ty: OperatorType) -> Vec<Row> {
    let g = fx.g(2);
    let c = OperatorPhase::Creating;
    let create = Msg::Create("b", ty);
    let to_b = Change::Replicate { guard: g, on: node("b") };
    // Placed by its own create: the start of that create is noted for the record's Removes.
    let made = vec![to_b.clone(), Change::Started(g, CKPT)];
    let mut t = Table::default();
    t.at(c, &[]);
    t.dest_answers("", 2, g, create, made.clone());
    t.row("WaitingMerge from dest", St("b", 2, WaitingMerge, 110), c, create, vec![]);
    t.row("Working from another node", St("a", 2, Working, 110), c, create, vec![]);
    t.row("Removed from another node", St("c", 2, Removed, 110), c, create, vec![]);
    t.row("Working for another id from dest", St("b", 99, Working, 110), c, create, vec![]);
    t.row("Removed for another id from dest", St("b", 99, Removed, 110), c, create, vec![]);
    t.row("dest removed", Gone("b"), FAILED, QUIET, vec![Change::Absent(g)]);
    t.row("unrelated node a removed", Gone("a"), c, create, vec![]);
    t.row("unrelated node c removed", Gone("c"), c, create, vec![]);
    t.row("cancelled keeps dest for the DDL remove", Cancel, CANCELLED, QUIET, vec![to_b.clone()]);
    t.row("resent", Resent, c, create, vec![]);
    t.row("released", Released, c, create, vec![]);
    t.at(c, &[St("b", 2, Stopped, 105)]);
    t.row("Working after an ignored Stopped", St("b", 2, Working, 110), OK, QUIET, made);
    t.done("succeeded", &[St("b", 2, Working, 110)], OK, 2);
    t.done("dest removed", &[Gone("b")], FAILED, 2);
    t.done("dest Removed", &[St("b", 2, Removed, CKPT)], FAILED, 2);
    t.done("cancelled", &[Cancel], CANCELLED, 2);
    t.rows
}

#[test]
fn add_table() {
    let fx = Fx::new(Mode::Default);
    let mut n = 0;
    for ty in [OperatorType::Add, OperatorType::Split] {
        n += run(
            &format!("add({ty:?})"),
            &fx,
            |fx| Operator::add(fx.rec(2), node("b"), ty),
            &add_rows(&fx, ty),
        );
    }
    assert!(n > 80);
}
