//! The split operator.

use super::*;

fn split_rows(fx: &Fx) -> Vec<Row> {
    let g = fx.g(1);
    let r = OperatorPhase::Removing;
    let rm = Msg::Remove("a", OperatorType::Split);
    let split = |checkpoint| vec![Change::Split { guard: g, into: split_parts(), checkpoint }];
    let mut t = Table::default();
    t.at(r, &[]);
    t.row("origin Stopped above the record", St("a", 1, Stopped, 150), OK, QUIET, split(150));
    t.row("origin Stopped below the record", St("a", 1, Stopped, 40), OK, QUIET, split(CKPT));
    t.row("origin Stopped(0): never existed", St("a", 1, Stopped, 0), OK, QUIET, split(CKPT));
    t.row("origin Removed", St("a", 1, Removed, 120), OK, QUIET, split(120));
    t.row("origin Working", St("a", 1, Working, 150), r, rm, vec![]);
    t.row("origin WaitingMerge is not terminal", St("a", 1, WaitingMerge, 150), r, rm, vec![]);
    t.row("origin Initializing is not terminal", St("a", 1, Initializing, 150), r, rm, vec![]);
    t.row("another node Stopped", St("b", 1, Stopped, 150), r, rm, vec![]);
    t.row("origin Stopped for another id", St("a", 99, Stopped, 150), r, rm, vec![]);
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
