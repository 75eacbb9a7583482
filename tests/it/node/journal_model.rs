//! Differential property test: the operator journal against a `BTreeMap<(Mode, Span), Op>` model.
//!
//! Invariants checked after every operation: the journal holds exactly the model's entries (so at
//! most one operator per (mode, span)); admit succeeds iff the key is free or its holder may be
//! replaced; finish (by key or through the admission's hold) removes only the very entry it names;
//! a sweep never changes what the journal holds, and two sweeps in a row leave only the spans that
//! hold an operator in the index.

use std::collections::BTreeMap;
use std::sync::Arc;

use dispatcher_core::ids::{Epoch, Mode, NodeId};
use dispatcher_core::messages::*;
use dispatcher_core::node::{Hold, OpEntry, OpKey, OpRequest, OperatorTable};
use proptest::prelude::*;

use super::manager::{id, remove, span};

#[derive(Clone, Debug)]
enum Action {
    Admit {
        key: u8,
        epoch: u8,
        replace_below: u8,
    },
    Finish {
        key: u8,
        nth: u8,
    },
    FinishTarget {
        key: u8,
        target: u8,
    },
    /// Completes or reverts (to empty) through the hold of the nth successful admission.
    ByHold {
        nth: u8,
        revert: bool,
    },
    Sweep,
}

fn key(k: u8) -> OpKey {
    let mode = if k & 1 == 0 { Mode::Default } else { Mode::Redo };
    let table = i64::from(k >> 1);
    OpKey { mode, span: span(table, b"a", b"m") }
}

fn entry(epoch: u8, target: u64) -> Arc<OpEntry> {
    let request = remove(id(1), Mode::Default, u64::from(epoch), OperatorType::Remove);
    OpEntry::new(OpRequest::Schedule(request), NodeId::new("mt"), target)
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0u8..6, 0u8..4, 0u8..4).prop_map(|(key, epoch, replace_below)| Action::Admit {
            key,
            epoch,
            replace_below
        }),
        (0u8..6, 0u8..8).prop_map(|(key, nth)| Action::Finish { key, nth }),
        (0u8..6, 0u8..40).prop_map(|(key, target)| Action::FinishTarget { key, target }),
        (0u8..16, any::<bool>()).prop_map(|(nth, revert)| Action::ByHold { nth, revert }),
        Just(Action::Sweep),
    ]
}

proptest! {
    #[test]
    fn journal_matches_the_btreemap_model(actions in proptest::collection::vec(action(), 1..80)) {
        let table = OperatorTable::new();
        let mut model: BTreeMap<OpKey, Arc<OpEntry>> = BTreeMap::new();
        let mut issued: Vec<(OpKey, Arc<OpEntry>)> = Vec::new();
        let mut holds: Vec<(OpKey, Hold)> = Vec::new();
        let mut swept_before = false;
        for (n, a) in actions.into_iter().enumerate() {
            let sweep = matches!(a, Action::Sweep);
            match a {
                Action::Admit { key: k, epoch, replace_below } => {
                    let e = entry(epoch, n as u64);
                    let may = |h: &OpEntry| h.epoch() < Epoch(u64::from(replace_below));
                    let want = model.get(&key(k)).is_none_or(|h| may(h));
                    let got = table.admit(&key(k), e.clone(), may);
                    prop_assert_eq!(got.is_ok(), want);
                    if let Ok(admitted) = got {
                        prop_assert!(Arc::ptr_eq(admitted.entry(), &e));
                        holds.push((key(k), admitted.into_hold()));
                        model.insert(key(k), e.clone());
                    }
                    issued.push((key(k), e));
                }
                Action::Finish { key: k, nth } => {
                    let candidates: Vec<_> = issued.iter().filter(|(ik, _)| *ik == key(k)).collect();
                    if let Some((ik, e)) = candidates.get(usize::from(nth) % candidates.len().max(1)) {
                        let want = model.get(ik).is_some_and(|h| Arc::ptr_eq(h, e));
                        prop_assert_eq!(table.finish(ik, e), want);
                        if want {
                            model.remove(ik);
                        }
                    }
                }
                Action::ByHold { nth, revert } => {
                    if let Some((k, hold)) = holds.get(usize::from(nth) % holds.len().max(1)) {
                        let want = model.get(k).is_some_and(|h| Arc::ptr_eq(h, hold.entry()));
                        let got = if revert { hold.revert(None) } else { hold.finish() };
                        prop_assert_eq!(got, want);
                        if want {
                            model.remove(k);
                        }
                    }
                }
                Action::Sweep => {
                    table.sweep_idle();
                    if swept_before {
                        prop_assert_eq!(table.spans(), model.len(), "two sweeps leave only busy spans");
                    }
                }
                Action::FinishTarget { key: k, target } => {
                    let want = model.get(&key(k)).is_some_and(|h| h.target == u64::from(target));
                    let got = table.finish_if(&key(k), |h| h.target == u64::from(target));
                    prop_assert_eq!(got.is_some(), want);
                    if want {
                        model.remove(&key(k));
                    }
                }
            }
            swept_before = sweep;
            prop_assert!(table.spans() >= model.len());
            prop_assert_eq!(table.len(), model.len());
            let mut have: Vec<_> = table.entries();
            have.sort_by(|a, b| a.0.cmp(&b.0));
            prop_assert_eq!(have.len(), model.len());
            for ((hk, he), (mk, me)) in have.iter().zip(model.iter()) {
                prop_assert_eq!(hk, mk);
                prop_assert!(Arc::ptr_eq(he, me));
            }
        }
    }
}
