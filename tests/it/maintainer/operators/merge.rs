//! The merge operator, with the corrections: release after the sources left; bounded
//! abandonment. And the occupy operators that hold a merge's sources.

use super::*;

fn merge_rows(fx: &Fx) -> Vec<Row> {
    let (g11, g12, gt) = (fx.g(11), fx.g(12), fx.g(13));
    let m = OperatorPhase::Merging;
    let mm = Msg::Merge("a");
    let release = || Change::Release(vec![id(11), id(12)]);
    let (done, back) = (merged(&fx.sc, 100), abandoned(&fx.sc));
    // Cancelled (the table is going): sources handed back to the node for the DDL's removes, or
    // to the scheduler if they reported a terminal state (`Reclaim` decides on the record).
    let cancelled = vec![
        Change::Reclaim { guard: g11, on: node("a") },
        Change::Reclaim { guard: g12, on: node("a") },
        Change::Delete(gt),
        release(),
    ];
    let node_died = vec![Change::Absent(g11), Change::Absent(g12), Change::Delete(gt), release()];
    let accepted: &[Ev] = &[St("a", 11, WaitingMerge, 100)];
    let (w, wm) = (OperatorPhase::Withdrawing, Msg::Remove("a", OperatorType::Remove));
    let withdrawn: &[Ev] = &[Resent, Resent, Resent];
    let mut t = Table::default();
    t.at(m, &[]);
    t.row("target Working", St("a", 13, Working, 100), OK, QUIET, done.clone());
    t.row("target Stopped: node aborted", St("a", 13, Stopped, 100), FAILED, QUIET, back.clone());
    t.row("target Removed: node aborted", St("a", 13, Removed, 100), FAILED, QUIET, back.clone());
    t.row("target Initializing", St("a", 13, Initializing, 100), m, mm, vec![]);
    t.row("target WaitingMerge", St("a", 13, WaitingMerge, 100), m, mm, vec![]);
    t.row("target MergeReady", St("a", 13, ComponentState::MergeReady, 100), m, mm, vec![]);
    t.row("target Working from another node", St("b", 13, Working, 100), m, mm, vec![]);
    t.row("target Stopped from another node", St("b", 13, Stopped, 100), m, mm, vec![]);
    t.row("source WaitingMerge (accepts)", St("a", 11, WaitingMerge, 100), m, mm, vec![]);
    t.row("source Working", St("a", 11, Working, 100), m, mm, vec![]);
    t.row("source Stopped (after the commit point)", St("a", 12, Stopped, 100), m, mm, vec![]);
    t.row("another id Working", St("a", 99, Working, 100), m, mm, vec![]);
    t.row("node removed", Gone("a"), FAILED, QUIET, node_died.clone());
    t.row("unrelated node removed", Gone("b"), m, mm, vec![]);
    t.row("cancelled", Cancel, CANCELLED, QUIET, cancelled.clone());
    t.row("released", Released, m, mm, vec![]);
    t.at(m, accepted);
    t.row("target Working after acceptance", St("a", 13, Working, 100), OK, QUIET, done.clone());
    t.row("target Stopped after acceptance", St("a", 13, Stopped, 100), FAILED, QUIET, back.clone());
    let aborted = "source Working again after acceptance: node aborted";
    t.row(aborted, St("a", 11, Working, 100), FAILED, QUIET, back.clone());
    t.row("node removed after acceptance", Gone("a"), FAILED, QUIET, node_died.clone());
    t.row("cancelled after acceptance", Cancel, CANCELLED, QUIET, cancelled.clone());
    t.at(m, &[]);
    // Bounded wait: each Resent is one send; MAX_SENDS sends, then withdraw: remove the
    // merged dispatcher, and hand the sources back only once it is known gone.
    t.row("send 1", Resent, m, mm, vec![]);
    t.at(m, &[Resent]);
    t.row("send 2 = max", Resent, m, mm, vec![]);
    t.at(m, &[Resent, Resent]);
    t.row("send 3: never taken up, withdrawn", Resent, w, wm, vec![]);
    t.at(w, withdrawn);
    t.row("withdrawn: target Stopped, abandoned", St("a", 13, Stopped, 100), FAILED, QUIET, back.clone());
    t.row("withdrawn: target Removed, abandoned", St("a", 13, Removed, 100), FAILED, QUIET, back.clone());
    t.row("withdrawn: target Working, still removing", St("a", 13, Working, 100), w, wm, vec![]);
    t.row("withdrawn: target Stopped from another node", St("b", 13, Stopped, 100), w, wm, vec![]);
    t.row("withdrawn: source Stopped", St("a", 11, Stopped, 100), w, wm, vec![]);
    t.row("withdrawn: source WaitingMerge", St("a", 11, WaitingMerge, 100), w, wm, vec![]);
    t.row("withdrawn: resent", Resent, w, wm, vec![]);
    t.row("withdrawn: node removed", Gone("a"), FAILED, QUIET, node_died);
    t.row("withdrawn: unrelated node removed", Gone("b"), w, wm, vec![]);
    t.row("withdrawn: cancelled", Cancel, CANCELLED, QUIET, cancelled);
    t.at(m, &[St("a", 12, Stopped, 100), Resent, Resent]);
    t.row(
        "source Stopped does not accept (a held-back remove may have closed it): withdrawn",
        Resent,
        w,
        wm,
        vec![],
    );
    t.at(m, &[St("a", 13, ComponentState::Preparing, 100), Resent, Resent]);
    t.row("target Preparing accepts (a resend found the merge)", Resent, m, mm, vec![]);
    t.at(m, &[St("a", 12, WaitingMerge, 100), Resent, Resent]);
    t.row("accepted: never abandoned", Resent, m, mm, vec![]);
    t.at(m, &[Resent, Resent, St("a", 11, WaitingMerge, 100), Resent, Resent, Resent]);
    t.row("accepted between sends: never abandoned", Resent, m, mm, vec![]);
    t.at(m, &[St("b", 11, WaitingMerge, 100), Resent, Resent]);
    t.row("WaitingMerge from another node does not accept", Resent, w, wm, vec![]);
    t.at(m, &[St("a", 99, WaitingMerge, 100), Resent, Resent]);
    t.row("WaitingMerge of a non-source does not accept", Resent, w, wm, vec![]);
    t.at(m, &[St("a", 13, WaitingMerge, 100), Resent, Resent]);
    t.row("a live status of the target accepts", Resent, m, mm, vec![]);
    t.at(m, &[St("a", 11, Working, 100), Resent, Resent]);
    t.row("source Working does not accept", Resent, w, wm, vec![]);
    t.at(m, &[Resent, Resent]);
    t.row("target Working after max sends", St("a", 13, Working, 100), OK, QUIET, done);
    t.done("succeeded", &[St("a", 13, Working, 100)], OK, 13);
    t.done("abandoned", &[Resent, Resent, Resent, St("a", 13, Stopped, 100)], FAILED, 13);
    t.done("node died", &[Gone("a")], FAILED, 13);
    t.done("cancelled", &[Cancel], CANCELLED, 13);
    t.rows
}

#[test]
fn merge_table() {
    let fx = Fx::new(Mode::Default);
    let n = run("merge", &fx, |fx| merge_op(&fx.sc, MAX_SENDS), &merge_rows(&fx));
    assert!(n > 70);
}

#[test]
fn merge_tracks_acceptance_and_sends() {
    let fx = Fx::new(Mode::Default);
    let mut op = merge_op(&fx.sc, MAX_SENDS);
    let _ = op.start();
    let state = |op: &Operator| match op.kind {
        Kind::Merge { accepted, sends, .. } => (accepted, sends),
        _ => unreachable!(),
    };
    assert_eq!(state(&op), (false, 0));
    let _ = feed(&mut op, Resent);
    let _ = feed(&mut op, St("b", 11, WaitingMerge, 100));
    assert_eq!(state(&op), (false, 1));
    let _ = feed(&mut op, St("a", 12, WaitingMerge, 100));
    assert_eq!(state(&op), (true, 1));
}

fn occupy_rows() -> Vec<Row> {
    let h = OperatorPhase::Holding;
    let mut t = Table::default();
    t.at(h, &[]);
    t.row("released by its merge", Released, OK, QUIET, vec![]);
    t.row("its node removed (the merge marks absent)", Gone("a"), FAILED, QUIET, vec![]);
    t.row("unrelated node removed", Gone("b"), h, QUIET, vec![]);
    t.row("cancelled", Cancel, CANCELLED, QUIET, vec![]);
    t.row("source Working", St("a", 11, Working, 100), h, QUIET, vec![]);
    t.row("source Stopped", St("a", 11, Stopped, 100), h, QUIET, vec![]);
    t.row("source Removed", St("a", 11, Removed, 100), h, QUIET, vec![]);
    t.row("source WaitingMerge", St("a", 11, WaitingMerge, 100), h, QUIET, vec![]);
    t.row("source Stopped from another node", St("b", 11, Stopped, 100), h, QUIET, vec![]);
    t.row("merge target Working", St("a", 13, Working, 100), h, QUIET, vec![]);
    t.row("another id Stopped", St("a", 99, Stopped, 100), h, QUIET, vec![]);
    t.row("resent", Resent, h, QUIET, vec![]);
    t.done("released", &[Released], OK, 11);
    t.done("node died", &[Gone("a")], FAILED, 11);
    t.done("cancelled", &[Cancel], CANCELLED, 11);
    t.rows
}

#[test]
fn occupy_table() {
    let fx = Fx::new(Mode::Default);
    let n = run("occupy", &fx, |fx| occupy_op(&fx.sc, 11), &occupy_rows());
    assert!(n > 40);
}
