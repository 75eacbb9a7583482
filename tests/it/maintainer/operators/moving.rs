//! The move operator (I2: nothing is placed again before the origin stopped, even when the dest
//! dies first).

use super::*;

fn move_rows(fx: &Fx) -> Vec<Row> {
    let g = fx.g(1);
    let (ro, abort, ad) =
        (OperatorPhase::RemoveOrigin, OperatorPhase::AbortRemoveOrigin, OperatorPhase::AddDest);
    let rm = Msg::Remove("a", OperatorType::Move);
    let cr = Msg::Create("b", OperatorType::Move);
    let schedule = Change::Schedule { guard: g, from: Some(node("a")), to: node("b") };
    let bind = || vec![schedule.clone()];
    // A terminal status folds the origin's final checkpoint first (the dest starts there).
    let fold_bind = |ts| vec![Change::RaiseCheckpoint(g, ts), schedule.clone()];
    let fold_absent = |ts| vec![Change::RaiseCheckpoint(g, ts), Change::Absent(g)];
    let on = |n: &str| vec![Change::Replicate { guard: g, on: node(n) }];
    // Placed on the dest by its own create: that create's start is noted for later Removes.
    let made = || vec![Change::Replicate { guard: g, on: node("b") }, Change::Started(g, CKPT)];
    let absent = || vec![Change::Absent(g)];
    let to_abort: &[Ev] = &[Gone("b")];
    let to_add: &[Ev] = &[St("a", 1, Stopped, 130)];
    let mut t = Table::default();
    // RemoveOrigin
    t.at(ro, &[]);
    t.origin_answers("", rm, (ad, cr), fold_bind);
    t.row("dest Working", St("b", 1, Working, 130), ro, rm, vec![]);
    t.row("unrelated node Stopped", St("c", 1, Stopped, 130), ro, rm, vec![]);
    t.row("origin removed", Gone("a"), ad, cr, bind());
    t.row("S18: dest removed first", Gone("b"), abort, rm, vec![]);
    t.row("unrelated node removed", Gone("c"), ro, rm, vec![]);
    t.row("cancelled keeps origin", Cancel, CANCELLED, QUIET, on("a"));
    t.row("resent", Resent, ro, rm, vec![]);
    t.row("released", Released, ro, rm, vec![]);
    // AbortRemoveOrigin: keep removing the origin; absent only once it stopped or died.
    t.at(abort, to_abort);
    t.origin_answers("abort: ", rm, (FAILED, QUIET), fold_absent);
    t.row("abort: origin removed", Gone("a"), FAILED, QUIET, absent());
    t.row("abort: dest removed again", Gone("b"), abort, rm, vec![]);
    t.row("abort: unrelated node removed", Gone("c"), abort, rm, vec![]);
    t.row("abort: cancelled keeps origin", Cancel, CANCELLED, QUIET, on("a"));
    t.row("abort: resent", Resent, abort, rm, vec![]);
    // AddDest
    t.at(ad, to_add);
    t.dest_answers("add: ", 1, g, cr, made());
    t.row("add: origin Working", St("a", 1, Working, 130), ad, cr, vec![]);
    t.row("add: origin Stopped again", St("a", 1, Stopped, 130), ad, cr, vec![]);
    t.row("add: dest Working for another id", St("b", 99, Working, 130), ad, cr, vec![]);
    t.row("add: dest removed", Gone("b"), FAILED, QUIET, absent());
    t.row("add: origin removed", Gone("a"), ad, cr, vec![]);
    t.row("add: unrelated node removed", Gone("c"), ad, cr, vec![]);
    t.row("add: cancelled keeps dest", Cancel, CANCELLED, QUIET, on("b"));
    t.row("add: resent", Resent, ad, cr, vec![]);
    t.at(ad, &[Gone("a")]);
    t.row("add after origin died: dest Working", St("b", 1, Working, 130), OK, QUIET, made());
    t.row("add after origin died: dest removed", Gone("b"), FAILED, QUIET, absent());
    t.done("succeeded", &[St("a", 1, Stopped, 130), St("b", 1, Working, 140)], OK, 1);
    t.done("aborted", &[Gone("b"), St("a", 1, Stopped, 130)], FAILED, 1);
    t.done("dest died in add", &[Gone("a"), Gone("b")], FAILED, 1);
    t.done("cancelled", &[Cancel], CANCELLED, 1);
    t.rows
}

#[test]
fn move_table() {
    let fx = Fx::new(Mode::Default);
    let n = run("move", &fx, |fx| move_op(&fx.sc, 1), &move_rows(&fx));
    assert!(n > 80);
}
