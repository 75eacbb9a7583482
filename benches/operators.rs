//! Node-core benchmarks, each against the reference system's design in the same group: a
//! `Mutex<HashMap>` journal behind a mutex fence. The baseline's map uses the same key, entry and
//! hasher (rustc-hash's Fx) as ours, so a gain from hashing or key layout is not counted as one
//! of the lock-free design.
//!
//! Run: `cargo bench --bench operators`. Results and the machine: BENCHMARKS.md.

#![allow(missing_docs, clippy::disallowed_types, clippy::disallowed_methods)] // reason: bench harness: the baseline is a mutex by design, and timing reads the clock

use std::collections::HashMap;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dispatcher_core::ids::{Epoch, Mode, NodeId};
use dispatcher_core::messages::*;
use dispatcher_core::node::{DispatcherManager, Effect, Fence};
use dispatcher_core::node::{OpEntry, OpKey, OpRequest, OperatorTable};
use dispatcher_core::span::TableSpan;

mod support;
use dispatcher_core::wire;
use rustc_hash::FxBuildHasher;

fn span(i: u64) -> TableSpan {
    TableSpan::new(
        0,
        (i / 16) as i64 + 1,
        (i % 16).to_be_bytes().to_vec(),
        (i % 16 + 1).to_be_bytes().to_vec(),
    )
    .unwrap()
}

fn request(i: u64) -> ScheduleRequest {
    support::create(i, span(i))
}

/// The reference design: one fence mutex held across the whole admission, a mutex-guarded map.
/// This one keeps every span's key in the map and toggles its entry (the same "no churn in the
/// map" layout as ours), so a pair neither allocates nor clones a key: what is left to compare is
/// the locks against the compare-and-swaps.
struct MutexJournal {
    fence: Mutex<(NodeId, Epoch)>,
    ops: Mutex<HashMap<OpKey, Option<Arc<OpEntry>>, FxBuildHasher>>,
}

impl MutexJournal {
    fn admit(&self, from: &NodeId, key: &OpKey, entry: &Arc<OpEntry>) -> bool {
        let fence = self.fence.lock().unwrap();
        if fence.0 != *from || fence.1 != entry.epoch() {
            return false;
        }
        let mut ops = self.ops.lock().unwrap();
        let slot = match ops.get_mut(key) {
            Some(slot) => slot,
            None => ops.entry(key.clone()).or_default(),
        };
        if slot.is_some() {
            return false;
        }
        *slot = Some(entry.clone());
        true
    }

    fn finish(&self, key: &OpKey, entry: &Arc<OpEntry>) -> bool {
        let mut ops = self.ops.lock().unwrap();
        match ops.get_mut(key) {
            Some(slot) if slot.as_ref().is_some_and(|e| Arc::ptr_eq(e, entry)) => {
                *slot = None;
                true
            }
            _ => false,
        }
    }
}

/// The baseline as it was measured before issue 16: insert and remove per pair, the key cloned
/// into the map each time. Kept for history beside the fair one above.
struct ChurningMutexJournal {
    fence: Mutex<(NodeId, Epoch)>,
    ops: Mutex<HashMap<OpKey, Arc<OpEntry>, FxBuildHasher>>,
}

impl ChurningMutexJournal {
    fn admit(&self, from: &NodeId, key: &OpKey, entry: &Arc<OpEntry>) -> bool {
        let fence = self.fence.lock().unwrap();
        if fence.0 != *from || fence.1 != entry.epoch() {
            return false;
        }
        let mut ops = self.ops.lock().unwrap();
        if ops.contains_key(key) {
            return false;
        }
        ops.insert(key.clone(), entry.clone());
        true
    }

    fn finish(&self, key: &OpKey, entry: &Arc<OpEntry>) -> bool {
        let mut ops = self.ops.lock().unwrap();
        if ops.get(key).is_some_and(|e| Arc::ptr_eq(e, entry)) {
            ops.remove(key);
            true
        } else {
            false
        }
    }
}

/// Ours: fence load, a compare-and-swap of the span's cell, the fence handshake, and the
/// compare-and-swap back. Like the baseline, the caller keeps its entry and the table takes its
/// own reference (`admit_ref`); the manager's path, which hands its entry to the table, is
/// `manager_create_commit_remove_close` below.
struct LockFreeJournal {
    fence: Fence,
    ops: OperatorTable,
}

trait Journal: Send + Sync {
    fn pair(&self, from: &NodeId, key: &OpKey, entry: &Arc<OpEntry>) -> bool;
}

impl Journal for MutexJournal {
    fn pair(&self, from: &NodeId, key: &OpKey, entry: &Arc<OpEntry>) -> bool {
        self.admit(from, key, entry) && self.finish(key, entry)
    }
}

impl Journal for ChurningMutexJournal {
    fn pair(&self, from: &NodeId, key: &OpKey, entry: &Arc<OpEntry>) -> bool {
        self.admit(from, key, entry) && self.finish(key, entry)
    }
}

impl Journal for LockFreeJournal {
    // Written as the manager writes it (one match per step). Wrapping the proof in an `Option`
    // returned from a helper cost 9 ns here: LLVM moved the 24-byte value through the stack and
    // reloaded it with a 16-byte load that store-forwarding cannot serve.
    fn pair(&self, from: &NodeId, key: &OpKey, entry: &Arc<OpEntry>) -> bool {
        let Some(owner) = self.fence.admit(from, entry.epoch()) else { return false };
        let Ok(admitted) = self.ops.admit_ref(key, entry, |_| false) else { return false };
        if !self.fence.still_current(owner) {
            admitted.finish();
            return false;
        }
        admitted.finish()
    }
}

fn journals() -> Vec<(&'static str, Arc<dyn Journal>)> {
    let mt = NodeId::new("mt");
    let fence = Fence::new(None, Epoch(0));
    let _ = fence.take_over(&mt, Epoch(2));
    vec![
        ("lock_free", Arc::new(LockFreeJournal { fence, ops: OperatorTable::new() }) as Arc<dyn Journal>),
        (
            "mutex_baseline",
            Arc::new(MutexJournal {
                fence: Mutex::new((mt.clone(), Epoch(2))),
                ops: Mutex::new(HashMap::default()),
            }),
        ),
        (
            "mutex_churn_old_baseline",
            Arc::new(ChurningMutexJournal {
                fence: Mutex::new((mt, Epoch(2))),
                ops: Mutex::new(HashMap::default()),
            }),
        ),
    ]
}

/// Spans per thread; a power of two (see the mask in `run_pairs`).
const KEYS: u64 = 1024;

fn entries(offset: u64) -> Vec<(OpKey, Arc<OpEntry>)> {
    (0..KEYS)
        .map(|i| {
            let r = request(offset + i);
            let key = OpKey { mode: Mode::Default, span: r.span().cloned().unwrap() };
            (key, OpEntry::new(OpRequest::Schedule(r), NodeId::new("mt"), i))
        })
        .collect()
}

/// Runs `iters` admit+complete pairs split over `threads` threads; `hot` = all on one span.
fn run_pairs(journal: &Arc<dyn Journal>, threads: u64, hot: bool, iters: u64) -> Duration {
    let barrier = Arc::new(Barrier::new(threads as usize + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let journal = journal.clone();
            let barrier = barrier.clone();
            let work = if hot { entries(0)[..1].to_vec() } else { entries(t * KEYS) };
            std::thread::spawn(move || {
                let mt = NodeId::new("mt");
                barrier.wait();
                let per_thread = iters / threads;
                for i in 0..per_thread {
                    // A mask, not `%`: a 64-bit division per pair would add the same ~10 ns to
                    // every design and shrink every ratio toward 1 (work.len() is 1 or KEYS).
                    let (key, entry) = &work[i as usize & (work.len() - 1)];
                    std::hint::black_box(journal.pair(&mt, key, entry));
                }
                barrier.wait();
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    barrier.wait();
    let elapsed = start.elapsed();
    for h in handles {
        h.join().unwrap();
    }
    elapsed
}

fn admission(c: &mut Criterion) {
    let mut group = c.benchmark_group("admission_completion");
    group.throughput(Throughput::Elements(1));
    for (name, journal) in journals() {
        for (threads, hot) in [(1, false), (2, false), (2, true), (4, false), (8, false)] {
            let case = format!("{threads}t_{}", if hot { "hot_span" } else { "distinct_spans" });
            group.bench_with_input(BenchmarkId::new(name, &case), &(threads, hot), |b, &(threads, hot)| {
                b.iter_custom(|iters| run_pairs(&journal, threads, hot, iters.max(threads)))
            });
        }
    }
    group.finish();
}

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("lookup");
    let table = OperatorTable::new();
    let baseline = Mutex::new(HashMap::<_, _, FxBuildHasher>::default());
    let work = entries(0);
    for (k, e) in &work {
        let _ = table.admit(k, e.clone(), |_| false);
        baseline.lock().unwrap().insert(k.clone(), e.clone());
    }
    let mut i = 0usize;
    group.bench_function("lock_free", |b| {
        b.iter(|| {
            i = (i + 1) % work.len();
            std::hint::black_box(table.get(&work[i].0))
        })
    });
    group.bench_function("mutex_baseline", |b| {
        b.iter(|| {
            i = (i + 1) % work.len();
            std::hint::black_box(baseline.lock().unwrap().get(&work[i].0).cloned())
        })
    });
    group.finish();
}

fn manager_with(n: u64) -> DispatcherManager {
    let dm = support::bootstrapped();
    let mt = support::maintainer();
    for i in 0..n {
        let step = dm.handle_schedule(&mt, request(i));
        for e in &step.effects {
            if let Effect::Create(t) = e {
                dm.commit_create(t).unwrap();
            }
        }
    }
    dm
}

fn snapshot(c: &mut Criterion) {
    let mut group = c.benchmark_group("bootstrap_snapshot_100k");
    group.sample_size(10);
    let dm = manager_with(100_000);
    let owner = dm.owner();
    // Both encode with the wire's direct encoder (what `wire::encode_to_maintainer` uses), so the
    // encoder is not what differs between the two.
    group.bench_function("lock_free_snapshot_encode", |b| {
        b.iter(|| {
            let response = dm.snapshot(owner);
            wire::bootstrap_response_to_vec(&response).len()
        })
    });
    // Baseline: the same records behind one mutex, read under the fence lock, then encoded.
    let records: Mutex<Vec<BootstrapSpan>> = Mutex::new(dm.snapshot(owner).spans);
    let fence = Mutex::new(());
    group.bench_function("mutex_baseline_snapshot_encode", |b| {
        b.iter(|| {
            let _fence = fence.lock().unwrap();
            let spans = records.lock().unwrap().clone();
            let response = BootstrapResponse { spans, ..Default::default() };
            wire::bootstrap_response_to_vec(&response).len()
        })
    });
    group.finish();
}

fn full_create(c: &mut Criterion) {
    let mut group = c.benchmark_group("manager_create_commit_remove_close");
    group.throughput(Throughput::Elements(1));
    let dm = manager_with(0);
    let mt = NodeId::new("mt");
    let mut i = 0u64;
    group.bench_function("one_thread", |b| {
        b.iter(|| {
            i += 1;
            let r = request(i % 4096);
            let id = r.config.id;
            let step = dm.handle_schedule(&mt, r);
            if let Some(Effect::Create(t)) = step.effects.first() {
                dm.commit_create(t).unwrap();
            }
            let rm = ScheduleRequest {
                order: Order::Remove { span: None },
                operator_type: OperatorType::Remove,
                ..request(i % 4096)
            };
            let _ = dm.handle_schedule(&mt, rm);
            dm.dispatcher_closed(id, Mode::Default, 100, None)
        })
    });
    group.finish();
}

criterion_group!(benches, admission, lookup, snapshot, full_create);
criterion_main!(benches);
