//! Watermarks and the seq protocol (I10). Hazard R2 is the reference's seq hole: a watermark the
//! maintainer accepts can sit above the checkpoint of a dispatcher its seq claims to cover.
//!
//! The property test checks a maintainer model applying its acceptance rule: the accepted
//! watermark is never above the checkpoint of a live dispatcher it accounts for (seq), nor above
//! the start of a dispatcher whose create is in flight (R2).

use std::collections::HashMap;

use dispatcher_core::ids::Mode;
use dispatcher_core::messages::*;
use dispatcher_core::node::*;
use proptest::prelude::*;

use super::{admit, committed, manager, spanned, statuses, working, working_from};
use crate::node::manager::{create_at, id, live, merge, mt, redo_not_ready, remove, span, ticket};

/// The maintainer's acceptance rule for a node watermark (maintainer.go:911-919).
fn accept(old: Option<Watermark>, new: Watermark) -> Watermark {
    match old {
        Some(old)
            if !(new.seq > old.seq || (new.seq == old.seq && new.checkpoint_ts > old.checkpoint_ts)) =>
        {
            old
        }
        _ => new,
    }
}

/// The R2 invariant on what the maintainer holds: never above a live dispatcher's checkpoint it
/// accounts for (seq), never above a dispatcher whose create is in flight (when the watermark is
/// delivered, `creating`: a create admitted later is the maintainer's own in-flight operator).
fn check(dm: &DispatcherManager, accepted: Watermark, creating: bool) -> Result<(), String> {
    for r in dm.registry().records() {
        if r.mode != Mode::Default {
            continue;
        }
        let state = r.state();
        let bound = match state.phase {
            RecordPhase::Creating if creating => r.start_ts(),
            RecordPhase::Live if r.seq() != 0 && r.seq() <= accepted.seq => r.checkpoint_ts(),
            _ => continue,
        };
        if accepted.checkpoint_ts > bound {
            return Err(format!(
                "accepted {accepted:?} above {:?} ({state:?}, seq {}) at {bound}",
                r.id,
                r.seq()
            ));
        }
    }
    Ok(())
}

/// R2 (b), a status paired with an older snapshot: Z1 (start 150) and Z2 (start 180) created
/// together; Z2 turns Working first. The reference sends {180, seq 6}, then can never correct it.
#[test]
fn watermark_r2_new_dispatcher_below_reported_watermark() {
    let dm = manager();
    let old = working_from(&dm, id(9), 200);
    let mut collector = Collector::new(&dm);
    let mut accepted = None;
    let deliver = |out: Vec<Outbound>, accepted: &mut Option<Watermark>| {
        for o in out {
            *accepted = Some(accept(*accepted, o.request.watermark.unwrap()));
            check(&dm, accepted.unwrap(), true).unwrap();
        }
    };
    deliver(collector.round(&dm, RoundKind::Periodic), &mut accepted);
    let _ = dm.report_progress(&old, 300, 300, 0.0);
    let z1 = admit(&dm, id(1), 150);
    let z2 = admit(&dm, id(2), 180);
    dm.commit_create(&z2).unwrap();
    working(&dm, id(2), 180);
    let early = collector.round(&dm, RoundKind::StateChange);
    let wm = early[0].request.watermark.unwrap();
    assert!(wm.checkpoint_ts <= 150, "Z1's create is in flight: the watermark stays at its start ({wm:?})");
    deliver(early, &mut accepted);
    dm.commit_create(&z1).unwrap();
    working(&dm, id(1), 150);
    deliver(collector.round(&dm, RoundKind::StateChange), &mut accepted);
    deliver(collector.round(&dm, RoundKind::Periodic), &mut accepted);
    assert_eq!(accepted.unwrap().checkpoint_ts, 150);
}

/// R2 (a): a Stopped for an unknown dispatcher (a late Remove resend) carries no seq of its own,
/// so it cannot lift the watermark's seq above a dispatcher the watermark does not cover.
#[test]
fn watermark_r2_synthetic_stopped_does_not_raise_the_seq() {
    let dm = manager();
    let _ = working_from(&dm, id(9), 200);
    let mut collector = Collector::new(&dm);
    let first = collector.round(&dm, RoundKind::Periodic)[0].request.watermark.unwrap();
    let _z = committed(&dm, id(1), 150);
    let late = dm.handle_schedule(&mt(), remove(id(7), Mode::Default, 2, OperatorType::Remove));
    assert!(late
        .effects
        .iter()
        .any(|e| matches!(e, Effect::Report(s) if s.state == ComponentState::Stopped)));
    let out = collector.round(&dm, RoundKind::StateChange);
    let wm = out[0].request.watermark.unwrap();
    assert!(statuses(&out).iter().any(|s| s.id == id(7) && s.state == ComponentState::Stopped));
    assert!(wm.seq > first.seq, "the seq covers Z");
    assert!(wm.checkpoint_ts <= 150, "so the watermark covers Z's start: {wm:?}");
}

/// TestCollectComponentStatusWhenChangedWatermarkSeqNoFallback, in this design: the seq of
/// successive watermarks never falls back, whatever round kinds alternate.
#[test]
fn watermark_seq_never_falls_back() {
    let dm = manager();
    let mut collector = Collector::new(&dm);
    let mut last = 0;
    for n in 1..=6 {
        let _ = committed(&dm, id(n), 100 + n);
        for kind in [RoundKind::StateChange, RoundKind::Periodic, RoundKind::StateChange] {
            working(&dm, id(n), 100 + n);
            for o in collector.round(&dm, kind) {
                let wm = o.request.watermark.unwrap();
                assert!(wm.seq >= last, "{kind:?}: seq {} after {last}", wm.seq);
                last = wm.seq;
            }
        }
    }
    assert_eq!(last, dm.registry().current_seq());
}

#[test]
fn watermark_is_neutral_without_dispatchers_and_redo_is_max_until_ready() {
    let dm = redo_not_ready();
    let out = Collector::new(&dm).round(&dm, RoundKind::Periodic);
    let r = &out[0].request;
    assert_eq!((r.watermark.unwrap().checkpoint_ts, r.watermark.unwrap().resolved_ts), (u64::MAX, u64::MAX));
    assert_eq!(r.redo_watermark, Some(Watermark::NONE), "redo not ready");
}

#[test]
fn watermark_is_the_minimum_of_checkpoints_and_of_resolved_ts() {
    let dm = manager();
    let a = working_from(&dm, id(1), 100);
    let b = working_from(&dm, id(2), 100);
    let mut collector = Collector::new(&dm);
    let _ = collector.round(&dm, RoundKind::Periodic); // folds the creation floor in
    let _ = dm.report_progress(&a, 300, 320, 0.0);
    let _ = dm.report_progress(&b, 250, 400, 0.0);
    let wm = collector.round(&dm, RoundKind::Periodic)[0].request.watermark.unwrap();
    assert_eq!((wm.checkpoint_ts, wm.resolved_ts), (250, 320));
}

/// A merge: the sources' WaitingMerge is reported (never coalesced away; the merged dispatcher is
/// born Preparing, which is no transition and, as in the reference, not reported); the merged
/// dispatcher writes nothing before the hand-over and is not in the watermark, the sources are;
/// after the hand-over the merged start bounds the watermark and its Initializing is reported.
#[test]
fn merge_transitions_are_reported_and_preparing_is_not_in_the_watermark() {
    let dm = manager();
    live(&dm, id(1), span(50, b"a", b"m"), Mode::Default);
    live(&dm, id(2), span(50, b"m", b"z"), Mode::Default);
    let mut collector = Collector::new(&dm);
    let _ = collector.round(&dm, RoundKind::Periodic);
    assert_eq!(dm.handle_merge(&mt(), merge(&[id(1), id(2)], id(3))).outcome, Outcome::Applied);
    let sources: Vec<_> =
        [id(1), id(2)].iter().map(|d| dm.status_handle_of(Mode::Default, *d).unwrap()).collect();
    let _ = dm.report_progress(&sources[0], 300, 300, 0.0);
    let _ = dm.report_progress(&sources[1], 250, 250, 0.0);
    let out = collector.round(&dm, RoundKind::Periodic);
    let mut seen: Vec<_> = statuses(&out).iter().map(|s| (s.id, s.state)).collect();
    seen.sort_by_key(|x| x.0);
    assert_eq!(seen, vec![(id(1), ComponentState::WaitingMerge), (id(2), ComponentState::WaitingMerge)]);
    // The merged record sits at its provisional start (100); the watermark ignores it.
    assert_eq!(dm.registry().get(Mode::Default, id(3)).unwrap().checkpoint_ts(), 100);
    let wm = collector.round(&dm, RoundKind::Periodic)[0].request.watermark.unwrap();
    assert_eq!(wm.checkpoint_ts, 250, "sources count, Preparing does not");
    let _ = dm.dispatcher_state_changed(id(3), Mode::Default, ComponentState::MergeReady, 0);
    let _ = dm.dispatcher_closed(id(1), Mode::Default, 300, None);
    let _ = dm.dispatcher_closed(id(2), Mode::Default, 260, None);
    let out = collector.round(&dm, RoundKind::StateChange);
    let wm = out[0].request.watermark.unwrap();
    assert!(wm.checkpoint_ts <= 260, "after the hand-over the merged start bounds it: {wm:?}");
    let stops: Vec<_> = statuses(&out)
        .into_iter()
        .filter(|s| s.state == ComponentState::Stopped)
        .map(|s| (s.id, s.checkpoint_ts))
        .collect();
    assert_eq!(stops.len(), 2, "both sources' Stopped with their final checkpoints: {stops:?}");
    assert!(statuses(&out).iter().any(|s| s.id == id(3) && s.state == ComponentState::Initializing));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Whatever mix of creates, commits, state changes, progress, removals and rounds: what the
    /// maintainer model accepts never overshoots a dispatcher it accounts for (R2 closed).
    #[test]
    fn watermark_never_above_an_unflushed_dispatcher(script in proptest::collection::vec((0u8..7, 0u8..6, 0u16..300), 1..80)) {
        let dm = manager();
        let mut collector = Collector::new(&dm);
        let mut tickets: HashMap<u8, CreateTicket> = HashMap::new();
        let mut handles: HashMap<u8, StatusHandle> = HashMap::new();
        let mut accepted = None;
        for (action, d, v) in script {
            let did = id(u64::from(d) + 1);
            match action {
                0 => {
                    if dm.registry().get_alive(Mode::Default, did).is_none() {
                        let request = create_at(did, spanned(u64::from(d) + 1), Mode::Default, 2, 100 + u64::from(v));
                        let step = dm.handle_schedule(&mt(), request);
                        if step.outcome == Outcome::Applied {
                            tickets.insert(d, ticket(&step));
                        }
                    }
                }
                1 => {
                    if let Some(t) = tickets.remove(&d) {
                        if dm.commit_create(&t).is_ok() {
                            handles.insert(d, dm.status_handle(&t));
                        }
                    }
                }
                2 => working(&dm, did, 0),
                3 => {
                    if let Some(h) = handles.get(&d) {
                        let c = h.record().checkpoint_ts() + u64::from(v);
                        let _ = dm.report_progress(h, c, c, 0.0);
                    }
                }
                4 => {
                    let _ = dm.handle_schedule(&mt(), remove(did, Mode::Default, 2, OperatorType::Remove));
                    if let Some(h) = handles.remove(&d) {
                        let _ = dm.dispatcher_closed(did, Mode::Default, h.record().checkpoint_ts(), None);
                    }
                }
                _ => {
                    let kind = [RoundKind::Periodic, RoundKind::StateChange, RoundKind::Complete][usize::from(v % 3)];
                    for o in collector.round(&dm, kind) {
                        accepted = Some(accept(accepted, o.request.watermark.unwrap()));
                        if let Err(e) = check(&dm, accepted.unwrap(), true) {
                            return Err(TestCaseError::fail(e));
                        }
                    }
                }
            }
            if let Some(a) = accepted {
                if let Err(e) = check(&dm, a, false) {
                    return Err(TestCaseError::fail(format!("after {action}: {e}")));
                }
            }
        }
    }
}
