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
    /// Admits through the borrowing form ([`OperatorTable::admit_ref`]), then at once keeps it
    /// (0), completes it (1) or reverts it to the entry it replaced (2).
    AdmitRef {
        key: u8,
        epoch: u8,
        replace_below: u8,
        then: u8,
    },
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
        (0u8..6, 0u8..4, 0u8..4, 0u8..3).prop_map(|(key, epoch, replace_below, then)| Action::AdmitRef {
            key,
            epoch,
            replace_below,
            then
        }),
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
                Action::AdmitRef { key: k, epoch, replace_below, then } => {
                    let e = entry(epoch, n as u64);
                    let may = |h: &OpEntry| h.epoch() < Epoch(u64::from(replace_below));
                    let before = model.get(&key(k)).cloned();
                    let want = before.as_ref().is_none_or(|h| may(h));
                    let got = table.admit_ref(&key(k), &e, may);
                    prop_assert_eq!(got.is_ok(), want);
                    if let Ok(admitted) = got {
                        prop_assert!(Arc::ptr_eq(admitted.entry(), &e));
                        prop_assert_eq!(admitted.replaced().map(Arc::as_ptr), before.as_ref().map(Arc::as_ptr));
                        model.insert(key(k), e.clone());
                        match then {
                            0 => {}
                            1 => {
                                prop_assert!(admitted.finish());
                                prop_assert!(!admitted.finish(), "a second completion finds nothing");
                                model.remove(&key(k));
                            }
                            _ => {
                                prop_assert!(admitted.revert(before.as_ref()));
                                match &before {
                                    Some(b) => model.insert(key(k), b.clone()),
                                    None => model.remove(&key(k)),
                                };
                            }
                        }
                    }
                    issued.push((key(k), e));
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

proptest! {
    /// A journal entry keeps its request in a compact form; what the snapshot rebuilds from it,
    /// the key and the manager's changefeed is the request as sent (a Remove's span, when given,
    /// is the span of the dispatcher it removes, which is the key's).
    #[test]
    fn entries_rebuild_the_request_they_were_made_from(
        create in any::<bool>(),
        span_given in any::<bool>(),
        redo in any::<bool>(),
        n in 1u64..1000,
        start_ts in any::<u64>(),
        schema_id in any::<i64>(),
        skip in any::<bool>(),
        op in 0usize..5,
        epoch in any::<u64>(),
    ) {
        let mode = if redo { Mode::Redo } else { Mode::Default };
        let key = OpKey { mode, span: span(n as i64, b"a", b"m") };
        let order = if create {
            Order::Create { span: key.span.clone() }
        } else {
            Order::Remove { span: span_given.then(|| key.span.clone()) }
        };
        let operator_type =
            [OperatorType::Add, OperatorType::Remove, OperatorType::Move, OperatorType::Split, OperatorType::Merge][op];
        let changefeed = dispatcher_core::ids::ChangefeedId {
            high: n,
            low: 7,
            name: "feed".into(),
            keyspace: "ks".into(),
        };
        let request = ScheduleRequest {
            changefeed: changefeed.clone(),
            config: DispatcherConfig { id: id(n), mode, start_ts, schema_id, skip_dml_as_start_ts: skip },
            order,
            operator_type,
            epoch: Epoch(epoch),
        };
        let entry = OpEntry::new(OpRequest::Schedule(request.clone()), NodeId::new("mt"), 1);
        prop_assert_eq!(entry.schedule_request(&key, &changefeed), Some(request));
        prop_assert_eq!(entry.epoch(), Epoch(epoch));
        prop_assert_eq!(entry.id(), id(n));
    }
}

/// A merge's entry names the merged dispatcher and rebuilds no schedule request (the merge
/// journal reports merges).
#[test]
fn a_merge_entry_names_its_merged_dispatcher() {
    let request = MergeRequest {
        changefeed: Default::default(),
        sources: vec![id(1), id(2)],
        merged: id(3),
        mode: Mode::Default,
        epoch: Epoch(5),
    };
    let entry = OpEntry::new(OpRequest::Merge(request), NodeId::new("mt"), 1);
    assert_eq!(
        (entry.kind(), entry.id(), entry.epoch()),
        (dispatcher_core::node::RequestKind::Merge, id(3), Epoch(5))
    );
    assert_eq!(entry.schedule_request(&key(0), &Default::default()), None);
}
