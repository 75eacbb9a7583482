//! What every node-side fuzz target checks after each step.

use dispatcher_core::messages::ComponentState;
use dispatcher_core::node::RequestKind;
use dispatcher_core::node::RecordPhase;
use dispatcher_core::node::DispatcherManager;

/// No two alive dispatchers of one mode overlap (but a merge's sources and its merged
/// dispatcher), and every journal entry is backed by the record it concerns (a Create by a
/// record still creating, a Remove by a live one): no leaked operator.
pub fn check(dm: &DispatcherManager) {
    let records = dm.registry().records();
    let alive: Vec<_> = records.iter().filter(|r| r.state().is_alive()).collect();
    for (i, a) in alive.iter().enumerate() {
        for b in &alive[i + 1..] {
            let merge_pair = a.state().component == ComponentState::Preparing
                || b.state().component == ComponentState::Preparing
                || a.state().component == ComponentState::WaitingMerge
                || b.state().component == ComponentState::WaitingMerge;
            assert!(
                a.mode != b.mode || !a.span.overlaps(&b.span) || merge_pair,
                "overlapping alive dispatchers {a:?} {b:?}"
            );
        }
    }
    for (key, entry) in dm.operators().entries() {
        let backing = records.iter().find(|r| r.incarnation == entry.target);
        match entry.kind() {
            RequestKind::Create => assert!(
                backing.is_some_and(|r| r.state().phase == RecordPhase::Creating),
                "leaked create at {key:?}: {backing:?}"
            ),
            RequestKind::Remove => assert!(
                backing.is_some_and(|r| r.state().phase == RecordPhase::Live),
                "leaked remove at {key:?}: {backing:?}"
            ),
            RequestKind::Merge => assert!(backing.is_some(), "leaked merge at {key:?}"),
        }
    }
}

