//! The split operator.

use super::*;

fn split_rows(fx: &Fx) -> Vec<Row> {
    let g = fx.g(1);
    let r = OperatorPhase::Removing;
    let rm = Msg::Remove("a", OperatorType::Split);
    let split = |checkpoint| vec![Change::Split { guard: g, into: split_parts(), checkpoint }];
    let mut t = Table::default();
    t.at(r, &[]);
    // The parts start at the origin's final checkpoint, never below the record's.
    t.origin_answers("", rm, (OK, QUIET), |ts: Ts| split(ts.max(CKPT)));
    t.row("origin Stopped below the record", St("a", 1, Stopped, 40), OK, QUIET, split(CKPT));
    t.row("origin removed: placed again unsplit", Gone("a"), FAILED, QUIET, vec![Change::Absent(g)]);
    t.row("unrelated node removed", Gone("b"), r, rm, vec![]);
    t.row(
        "cancelled keeps origin",
        Cancel,
        CANCELLED,
        QUIET,
        vec![Change::Replicate { guard: g, on: node("a") }],
    );
    t.row("resent", Resent, r, rm, vec![]);
    t.row("released", Released, r, rm, vec![]);
    t.at(r, &[St("a", 1, Working, 500)]);
    t.row("Working does not move the start point", St("a", 1, Stopped, 150), OK, QUIET, split(150));
    t.done("succeeded", &[St("a", 1, Stopped, 150)], OK, 1);
    t.done("origin died", &[Gone("a")], FAILED, 1);
    t.done("cancelled", &[Cancel], CANCELLED, 1);
    t.rows
}

#[test]
fn split_table() {
    let fx = Fx::new(Mode::Default);
    let n = run("split", &fx, Fx::split, &split_rows(&fx));
    assert!(n > 50);
}
