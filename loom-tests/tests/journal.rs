//! Loom models of the journal's own words: the span cell ([`ArcSlot`]) and the fence handshake
//! that confirms an admission with a load (I12).
//!
//! The index of spans is a papaya map, which loom cannot run; its stand-in is a mutex, whose
//! lock and unlock would order the racing threads by themselves. So each model opens the span's
//! cell before the threads start, and what races is only our own atomics: the cell word, the
//! fence's owner and generation words, and the SeqCst fences between them.
//!
//! Run: `RUSTFLAGS="--cfg dispatcher_loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p loom-tests --release`
#![cfg(dispatcher_loom)]

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use dispatcher_core::ids::{ChangefeedId, DispatcherId, Epoch, Mode, NodeId};
use dispatcher_core::messages::*;
use dispatcher_core::node::{Fence, OpEntry, OpKey, OpRequest, OperatorTable};
use dispatcher_core::span::TableSpan;
use dispatcher_core::sync::{fence_seq_cst, ArcSlot, Ordering};
use loom::thread;

/// A value that counts its drops, to check that every reference is given back exactly once.
#[derive(Debug)]
struct Probe {
    tag: u64,
    drops: Arc<AtomicUsize>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.drops.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Two readers (one taking a reference, one borrowing) racing a swap that takes their value out and a revert that puts the very same value
/// back (the split counts of one value meeting themselves), plus a second value coming and going:
/// the reader gets one of the values or nothing, and when everything is dropped each value was
/// dropped exactly once (no reference leaked, none given back twice).
#[test]
fn cell_reader_racing_a_swap_and_a_revert_counts_every_reference() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let a = Arc::new(Probe { tag: 1, drops: drops.clone() });
        let b = Arc::new(Probe { tag: 2, drops: drops.clone() });
        let cell = Arc::new(ArcSlot::new());
        assert!(cell.swap_if(None, Some(a.clone())).is_ok());
        // One reader takes a reference, the other only borrows the value (`read`).
        let readers: Vec<_> = (0..2)
            .map(|borrow| {
                let cell = cell.clone();
                thread::spawn(move || {
                    if borrow == 1 {
                        cell.read(|p| p.map(|p| p.tag)).expect("never sealed")
                    } else {
                        cell.load().expect("never sealed").map(|p| p.tag)
                    }
                })
            })
            .collect();
        // Take `a` out for `b`, then revert: `a` comes back to the same cell.
        let out = cell.swap_if(Some(&a), Some(b.clone())).expect("holds a");
        assert!(out.is_some_and(|p| Arc::ptr_eq(&p, &a)));
        let back = cell.swap_if(Some(&b), Some(a.clone())).expect("holds b");
        assert!(back.is_some_and(|p| Arc::ptr_eq(&p, &b)));
        for reader in readers {
            let seen = reader.join().unwrap();
            assert!(matches!(seen, Some(1) | Some(2)), "a reader saw {seen:?}");
        }
        assert!(cell.holds(&a));
        assert_eq!(Arc::strong_count(&a), 2, "the caller's and the cell's: the readers gave theirs back");
        assert_eq!(Arc::strong_count(&b), 1, "only the caller's");
        drop((a, b));
        assert_eq!(drops.load(std::sync::atomic::Ordering::Relaxed), 1, "b is gone; the cell still holds a");
        drop(cell);
        assert_eq!(drops.load(std::sync::atomic::Ordering::Relaxed), 2, "each value dropped once");
    });
}

/// Two readers (one taking a reference, one borrowing) racing the removal of the value they read,
/// whose last other reference goes at once: whatever a reader got stays alive as long as it uses
/// it, and the value is dropped exactly once, after everyone is done.
#[test]
fn two_readers_racing_a_removal_give_every_reference_back() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let a = Arc::new(Probe { tag: 1, drops: drops.clone() });
        let cell = Arc::new(ArcSlot::new());
        assert!(cell.swap_if(None, Some(a.clone())).is_ok());
        let taker = {
            let cell = cell.clone();
            thread::spawn(move || cell.load().expect("never sealed").map(|p| p.tag))
        };
        let borrower = {
            let cell = cell.clone();
            let drops = drops.clone();
            thread::spawn(move || {
                cell.read(|p| {
                    p.map(|p| {
                        // The drop counter lives outside the value: reading it is safe even if
                        // the value were freed, and it says whether it was.
                        assert_eq!(
                            drops.load(std::sync::atomic::Ordering::Relaxed),
                            0,
                            "freed while borrowed"
                        );
                        p.tag
                    })
                })
                .expect("never sealed")
            })
        };
        let removed = cell.swap_if(Some(&a), None).expect("holds a");
        assert!(removed.is_some_and(|p| Arc::ptr_eq(&p, &a)));
        drop(a);
        for tag in [taker.join().unwrap(), borrower.join().unwrap()].into_iter().flatten() {
            assert_eq!(tag, 1, "a reader saw the value whole");
        }
        assert_eq!(drops.load(std::sync::atomic::Ordering::Relaxed), 1, "dropped once, after the readers");
        drop(cell);
        assert_eq!(drops.load(std::sync::atomic::Ordering::Relaxed), 1);
    });
}

fn entry(epoch: u64) -> Arc<OpEntry> {
    let span = TableSpan::new(0, 1, b"a".to_vec(), b"m".to_vec()).unwrap();
    let request = ScheduleRequest {
        changefeed: ChangefeedId::default(),
        config: DispatcherConfig {
            id: DispatcherId::new(0, 1).unwrap(),
            mode: Mode::Default,
            start_ts: 100,
            schema_id: 1,
            skip_dml_as_start_ts: false,
        },
        order: Order::Create { span },
        operator_type: OperatorType::Add,
        epoch: Epoch(epoch),
    };
    OpEntry::new(OpRequest::Schedule(request), NodeId::new("mt"), 1)
}

fn key() -> OpKey {
    OpKey { mode: Mode::Default, span: TableSpan::new(0, 1, b"a".to_vec(), b"m".to_vec()).unwrap() }
}

/// A journal whose span cell is open (admitted and completed once), and a fence owned by `mt`.
fn opened() -> (OperatorTable, Fence) {
    let table = OperatorTable::new();
    let warm = entry(2);
    assert!(table.admit(&key(), warm.clone(), |_| false).is_ok());
    assert!(table.finish(&key(), &warm));
    (table, Fence::new(Some(NodeId::new("mt")), Epoch(2)))
}

/// I12 on the journal's own words: an admission under the old owner, confirmed by a fence and a
/// load, racing a bootstrap that raises the generation, fences, then scans. If the admission
/// stays (confirmed), the scan saw it; otherwise the admission withdrew itself.
#[test]
fn confirmation_by_load_versus_a_bootstrap_scan() {
    loom::model(|| {
        let (table, fence) = opened();
        let shared = Arc::new((table, fence));
        let request = {
            let shared = shared.clone();
            thread::spawn(move || {
                let (table, fence) = &*shared;
                let Some(owner) = fence.admit(&NodeId::new("mt"), Epoch(2)).cloned() else {
                    return false; // the bootstrap came first: refused at the door
                };
                let e = entry(2);
                let admitted = table.admit(&key(), e.clone(), |_| false).is_ok();
                if admitted && !fence.still_current(&owner) {
                    assert!(table.finish(&key(), &e), "a withdrawal finds its own entry");
                    return false;
                }
                admitted
            })
        };
        let (table, fence) = &*shared;
        let taken = fence.take_over(&NodeId::new("mt2"), Epoch(3)).expect("a higher epoch takes over");
        assert!(taken.changed);
        let seen = !table.entries().is_empty();
        let confirmed = request.join().unwrap();
        assert!(!confirmed || seen, "an admission confirmed under the old owner that the scan missed");
    });
}

/// The same handshake with the request's fence left out (a plain load of the generation after
/// the cell's compare-and-swap): the model must find the interleaving where both sides miss each
/// other. This shows the model above can fail, and why `still_current` fences.
#[test]
#[should_panic(expected = "the scan missed")]
fn confirmation_without_the_fence_is_caught() {
    loom::model(|| {
        let (table, fence) = opened();
        let generation = Arc::new(dispatcher_core::sync::AtomicU64::new(0));
        let shared = Arc::new((table, fence, generation));
        let request = {
            let shared = shared.clone();
            thread::spawn(move || {
                let (table, _, generation) = &*shared;
                let e = entry(2);
                let admitted = table.admit(&key(), e.clone(), |_| false).is_ok();
                if admitted && generation.load(Ordering::Acquire) != 0 {
                    assert!(table.finish(&key(), &e));
                    return false;
                }
                admitted
            })
        };
        let (table, _, generation) = &*shared;
        generation.fetch_add(1, Ordering::AcqRel);
        fence_seq_cst();
        let seen = !table.entries().is_empty();
        let confirmed = request.join().unwrap();
        assert!(!confirmed || seen, "an admission confirmed under the old owner that the scan missed");
    });
}

/// A sweep racing an admission on an idle span: the admission lands in a cell that is in the
/// index (the old one, or a fresh one that replaced a sealed one), never in a sealed cell.
#[test]
fn sweep_racing_an_admission_never_strands_an_entry() {
    loom::model(|| {
        let (table, _) = opened();
        // One sweep clears the touch mark, so the next one may seal.
        assert_eq!(table.sweep_idle(), 0);
        let table = Arc::new(table);
        let admitter = {
            let table = table.clone();
            thread::spawn(move || {
                let e = entry(2);
                assert!(table.admit(&key(), e.clone(), |_| false).is_ok(), "the span is free");
                e
            })
        };
        let _ = table.sweep_idle();
        let e = admitter.join().unwrap();
        let held = table.get(&key()).expect("the admitted entry is reachable from the index");
        assert!(Arc::ptr_eq(&held, &e));
        assert!(table.finish(&key(), &e), "and its completion finds it");
        assert!(table.is_empty());
    });
}
