//! Loom models of the heartbeat hand-off: producers marking status slots while the collector
//! drains them (`node::heartbeat::{slot, coalescer}`).
//!
//! Run: `RUSTFLAGS="--cfg dispatcher_loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p loom-tests --release`
//! Without the cfg this file compiles to nothing.
#![cfg(dispatcher_loom)]

use std::sync::Arc;

use dispatcher_core::ids::{DispatcherId, Mode};
use dispatcher_core::messages::ComponentState;
use dispatcher_core::node::{
    Coalescer, DispatcherRecord, HeartbeatConfig, RecordSpec, RecordState, Registry, Report, StatusHandle,
};
use dispatcher_core::span::TableSpan;
use loom::thread;

fn record(registry: &Registry, n: u64) -> Arc<DispatcherRecord> {
    registry.make(
        RecordSpec {
            id: DispatcherId::new(0, n).unwrap(),
            mode: Mode::Default,
            span: TableSpan::new(0, n as i64, b"a".to_vec(), b"z".to_vec()).unwrap(),
            schema_id: 1,
            start_ts: 100,
            skip_dml_as_start_ts: false,
            admission: None,
        },
        RecordState::CREATING,
    )
}

fn coalescer(capacity: usize) -> Coalescer {
    Coalescer::new(&HeartbeatConfig { queue_capacity: capacity, ..HeartbeatConfig::default() })
}

/// What one collector round takes, in the collector's order: the queue, the spill, and a sweep
/// of `records` when a push overflowed.
fn drain(co: &Coalescer, records: &[Arc<DispatcherRecord>]) -> Vec<(u64, Report)> {
    let mut out = Vec::new();
    while let Some(r) = co.pop() {
        out.extend(r.status.take(true).map(|t| (r.id.low(), t)));
    }
    for r in co.drain_spill() {
        out.extend(r.status.take(true).map(|t| (r.id.low(), t)));
    }
    if co.take_overflowed() {
        for r in records {
            if r.status.needs_sweep() {
                out.extend(r.status.take(false).map(|t| (r.id.low(), t)));
            }
        }
    }
    out
}

/// A producer updating while the collector drains: the last value always reaches a round,
/// checkpoints reported never go backwards, and the slot is never queued twice.
#[test]
fn producer_updating_while_collector_drains() {
    loom::model(|| {
        let registry = Registry::new();
        let co = Arc::new(coalescer(4));
        let r = record(&registry, 1);
        let records = vec![r.clone()];
        let (c2, h) = (co.clone(), StatusHandle::new(r.clone()));
        let producer = thread::spawn(move || {
            let _ = c2.progress(&h, 150, 150, 0.0);
            let _ = c2.progress(&h, 200, 200, 0.0);
        });
        let mut reports = drain(&co, &records);
        producer.join().unwrap();
        assert!(co.queued() <= 1, "a slot is in the queue at most once");
        reports.extend(drain(&co, &records));
        assert_eq!(co.queued(), 0);
        let checkpoints: Vec<_> = reports.iter().map(|(_, t)| t.checkpoint_ts).collect();
        assert!(checkpoints.windows(2).all(|w| w[0] <= w[1]), "monotone: {checkpoints:?}");
        assert_eq!(checkpoints.last(), Some(&200), "the last value is never lost: {checkpoints:?}");
    });
}

/// A Stopped racing a later checkpoint update, while the collector drains: Stopped is reported
/// exactly once, with the final checkpoint the slot keeps, and nothing follows it.
#[test]
fn stopped_racing_a_later_checkpoint_update() {
    loom::model(|| {
        let registry = Registry::new();
        let co = Arc::new(coalescer(4));
        let r = record(&registry, 1);
        let records = vec![r.clone()];
        let h = StatusHandle::new(r.clone());
        let _ = co.progress(&h, 150, 150, 0.0);
        let _ = drain(&co, &records);
        let (c1, r1) = (co.clone(), r.clone());
        let stopper = thread::spawn(move || {
            let _ = c1.change_state(&r1, ComponentState::Stopped);
        });
        let (c2, h2) = (co.clone(), h.clone());
        let late = thread::spawn(move || {
            let _ = c2.progress(&h2, 300, 300, 0.0);
        });
        let mut reports = drain(&co, &records);
        stopper.join().unwrap();
        late.join().unwrap();
        reports.extend(drain(&co, &records));
        reports.extend(drain(&co, &records));
        let stops: Vec<_> = reports.iter().filter(|(_, t)| t.sealed).collect();
        assert_eq!(stops.len(), 1, "exactly one Stopped: {reports:?}");
        let final_ts = stops[0].1.checkpoint_ts;
        assert!(final_ts == 150 || final_ts == 300, "{final_ts}");
        assert_eq!(r.checkpoint_ts(), final_ts, "the slot keeps the final checkpoint it reported");
        let at = reports.iter().position(|(_, t)| t.sealed).unwrap();
        assert_eq!(at, reports.len() - 1, "nothing is reported after Stopped: {reports:?}");
        assert_eq!(stops[0].1.pending.as_slice().last(), Some(&ComponentState::Stopped));
    });
}

/// A queue of one slot, two producers: the one that does not fit stays dirty and the sweep of the
/// next round finds it; a Stopped that does not fit is spilled. Nothing is lost either way.
#[test]
fn queue_full_falls_back_to_sweep_and_spill() {
    loom::model(|| {
        let registry = Registry::new();
        let co = Arc::new(coalescer(1));
        let (a, b) = (record(&registry, 1), record(&registry, 2));
        let records = vec![a.clone(), b.clone()];
        let (c1, ha) = (co.clone(), StatusHandle::new(a.clone()));
        let pa = thread::spawn(move || c1.progress(&ha, 170, 170, 0.0));
        let (c2, b2) = (co.clone(), b.clone());
        let pb = thread::spawn(move || c2.change_state(&b2, ComponentState::Stopped));
        let mut reports = drain(&co, &records);
        let ua = pa.join().unwrap();
        let ub = pb.join().unwrap();
        reports.extend(drain(&co, &records));
        let _ = (ua, ub);
        let last_a = reports.iter().filter(|(d, _)| *d == 1).map(|(_, t)| t.checkpoint_ts).next_back();
        assert_eq!(last_a, Some(170), "a's update reached a round: {reports:?}");
        let stops = reports.iter().filter(|(d, t)| *d == 2 && t.sealed).count();
        assert_eq!(stops, 1, "b's Stopped reached a round exactly once: {reports:?}");
        assert_eq!(co.queued(), 0);
        assert!(!a.status.needs_sweep() && !b.status.needs_sweep(), "nothing left dirty");
    });
}
