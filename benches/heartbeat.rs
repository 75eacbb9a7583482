//! Heartbeat-path benchmarks, each against baselines in the same group: a channel send per update
//! without coalescing (`std::sync::mpsc`, what an unbatched design costs) and a `Mutex<HashMap>`
//! accumulator (latest value per dispatcher under one lock).
//!
//! Run: `cargo bench --bench heartbeat`. Results and the machine: BENCHMARKS.md.

#![allow(missing_docs, clippy::disallowed_types, clippy::disallowed_methods)] // reason: bench harness: the baselines are a mutex and a channel by design, timing reads the clock, the collector thread sleeps

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use dispatcher_core::ids::{ChangefeedId, DispatcherId, Epoch, Mode, NodeId};
use dispatcher_core::messages::*;
use dispatcher_core::node::{Collector, HeartbeatConfig, RoundKind};
use dispatcher_core::node::{DispatcherManager, Effect, ManagerConfig, StatusHandle};
use dispatcher_core::span::TableSpan;
use dispatcher_core::wire::{heartbeat_to_vec, pb};
use prost::Message;

const DISPATCHERS: u64 = 2048;

fn manager(n: u64) -> (Arc<DispatcherManager>, Vec<StatusHandle>) {
    let dm = DispatcherManager::with_heartbeat(
        ManagerConfig {
            node: NodeId::new("n1"),
            changefeed: ChangefeedId::default(),
            keyspace_id: 0,
            redo_enabled: false,
        },
        HeartbeatConfig::default(),
    );
    let mt = NodeId::new("mt");
    let _ = dm.handle_bootstrap(&mt, &BootstrapRequest { epoch: Epoch(2), ..BootstrapRequest::default() });
    let mut handles = Vec::new();
    for i in 0..n {
        let id = DispatcherId::new(1, i + 1).unwrap();
        let request = ScheduleRequest {
            changefeed: ChangefeedId::default(),
            config: DispatcherConfig {
                id,
                mode: Mode::Default,
                start_ts: 100,
                schema_id: 1,
                skip_dml_as_start_ts: false,
            },
            order: Order::Create {
                span: TableSpan::new(0, i as i64 + 1, b"a".to_vec(), b"z".to_vec()).unwrap(),
            },
            operator_type: OperatorType::Add,
            epoch: Epoch(2),
        };
        let step = dm.handle_schedule(&mt, request);
        let Some(Effect::Create(ticket)) = step.effects.into_iter().next() else { panic!("create") };
        dm.commit_create(&ticket).unwrap();
        let _ = dm.dispatcher_state_changed(id, Mode::Default, ComponentState::Working, 100);
        handles.push(dm.status_handle(&ticket));
    }
    (Arc::new(dm), handles)
}

/// One status update as the baselines carry it.
#[derive(Clone, Copy)]
struct Progress {
    id: DispatcherId,
    checkpoint_ts: u64,
    #[allow(dead_code)] // reason: carried so the baselines move the same payload as the slot
    resolved_ts: u64,
    rate: f32,
}

impl Progress {
    fn at(id: DispatcherId, ts: u64) -> Self {
        Progress { id, checkpoint_ts: ts, resolved_ts: ts, rate: 1.0 }
    }
}

fn status_of(p: &Progress) -> DispatcherStatus {
    DispatcherStatus {
        id: p.id,
        mode: Mode::Default,
        state: ComponentState::Working,
        checkpoint_ts: p.checkpoint_ts,
        event_size_per_second: p.rate,
    }
}

fn encode(statuses: Vec<DispatcherStatus>) -> usize {
    pb::HeartBeatRequest::from(&heartbeat(statuses)).encode_to_vec().len()
}

/// The same request through the direct encoder ours uses, so the encoder is not what differs.
fn encode_direct(statuses: Vec<DispatcherStatus>) -> usize {
    heartbeat_to_vec(&heartbeat(statuses)).len()
}

/// How a baseline encodes its round.
type Encoder = fn(Vec<DispatcherStatus>) -> usize;

fn heartbeat(statuses: Vec<DispatcherStatus>) -> Heartbeat {
    Heartbeat {
        changefeed: ChangefeedId::default(),
        watermark: Some(Watermark::NONE),
        redo_watermark: Some(Watermark::NONE),
        statuses,
        complete: false,
        err: None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Design {
    Coalescer,
    Channel,
    MutexMap,
}

/// `iters` updates split over `producers` threads, each over its own dispatchers, while a
/// collector thread drains every millisecond. Returns the producers' wall time.
fn ingest(design: Design, producers: u64, iters: u64) -> Duration {
    let (dm, handles) = manager(DISPATCHERS);
    let map: Arc<Mutex<HashMap<DispatcherId, Progress>>> = Arc::new(Mutex::new(HashMap::new()));
    let (tx, rx) = mpsc::channel::<Progress>();
    let done = Arc::new(AtomicBool::new(false));
    let collector = {
        let (dm, map, done) = (dm.clone(), map.clone(), done.clone());
        std::thread::spawn(move || {
            let mut collector = Collector::new(&dm);
            let mut received: HashMap<DispatcherId, Progress> = HashMap::new();
            while !done.load(Ordering::Acquire) {
                match design {
                    Design::Coalescer => drop(collector.round(&dm, RoundKind::StateChange)),
                    Design::Channel => received.extend(rx.try_iter().map(|p| (p.id, p))),
                    Design::MutexMap => drop(std::mem::take(&mut *map.lock().unwrap())),
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            received.len()
        })
    };
    let barrier = Arc::new(Barrier::new(producers as usize + 1));
    let per = DISPATCHERS / producers;
    let threads: Vec<_> = (0..producers)
        .map(|t| {
            let mine: Vec<StatusHandle> = handles[(t * per) as usize..((t + 1) * per) as usize].to_vec();
            let (dm, map, tx, barrier) = (dm.clone(), map.clone(), tx.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let n = iters / producers;
                for i in 0..n {
                    let h = &mine[(i % per) as usize];
                    let ts = 100 + i;
                    match design {
                        Design::Coalescer => drop(std::hint::black_box(dm.report_progress(h, ts, ts, 1.0))),
                        Design::Channel => tx.send(Progress::at(h.record().id, ts)).unwrap(),
                        Design::MutexMap => {
                            let p = Progress::at(h.record().id, ts);
                            map.lock().unwrap().insert(p.id, p);
                        }
                    }
                }
                barrier.wait();
            })
        })
        .collect();
    drop(tx);
    barrier.wait();
    let start = Instant::now();
    barrier.wait();
    let elapsed = start.elapsed();
    for t in threads {
        t.join().unwrap();
    }
    done.store(true, Ordering::Release);
    collector.join().unwrap();
    elapsed
}

fn ingestion(c: &mut Criterion) {
    let mut group = c.benchmark_group("status_ingest");
    group.throughput(Throughput::Elements(1));
    for (design, name) in [
        (Design::Coalescer, "coalescer"),
        (Design::Channel, "mpsc_per_update_baseline"),
        (Design::MutexMap, "mutex_hashmap_baseline"),
    ] {
        for producers in [1u64, 2] {
            group.bench_with_input(BenchmarkId::new(name, format!("{producers}p")), &producers, |b, &p| {
                b.iter_custom(|iters| ingest(design, p, iters.max(p)))
            });
        }
    }
    group.finish();
}

/// One round over 2048 dirty dispatchers: drain, build, convert and encode.
fn round(c: &mut Criterion) {
    let mut group = c.benchmark_group("round_2048_statuses");
    group.throughput(Throughput::Elements(DISPATCHERS));
    let (dm, handles) = manager(DISPATCHERS);
    let mut collector = Collector::new(&dm);
    let _ = collector.round(&dm, RoundKind::Periodic);
    let mut ts = 1000u64;
    let mut dirty = || {
        ts += 1;
        for h in &handles {
            let _ = dm.report_progress(h, ts, ts, 1.0);
        }
    };
    for (name, kind) in [
        ("coalescer_state_change_round", RoundKind::StateChange),
        ("coalescer_periodic_round", RoundKind::Periodic),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                &mut dirty,
                |()| {
                    let out = collector.round(&dm, kind);
                    assert_eq!(out[0].request.statuses.len(), DISPATCHERS as usize);
                    out.iter().map(|o| heartbeat_to_vec(&o.request).len()).sum::<usize>()
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.bench_function("coalescer_state_change_round_without_encode", |b| {
        b.iter_batched(&mut dirty, |()| collector.round(&dm, RoundKind::StateChange), BatchSize::PerIteration)
    });
    let _ = collector.round(&dm, RoundKind::StateChange);
    dirty();
    let built = collector.round(&dm, RoundKind::StateChange);
    group.bench_function("encode_only_direct", |b| b.iter(|| heartbeat_to_vec(&built[0].request).len()));
    group.bench_function("encode_only_via_prost_tree", |b| {
        b.iter(|| pb::HeartBeatRequest::from(&built[0].request).encode_to_vec().len())
    });
    let ids: Vec<DispatcherId> = handles.iter().map(|h| h.record().id).collect();
    // The reference's accumulator, encoded as the reference encodes (the prost tree) and with the
    // direct encoder ours uses, so the encoder is not what differs.
    let encoders: [(&str, Encoder); 2] =
        [("mutex_hashmap_baseline", encode), ("mutex_hashmap_baseline_direct_encode", encode_direct)];
    for (name, encoder) in encoders {
        group.bench_function(name, |b| {
            let map: Mutex<HashMap<DispatcherId, Progress>> = Mutex::new(HashMap::new());
            b.iter_batched(
                || {
                    ts += 1;
                    let mut m = map.lock().unwrap();
                    for id in &ids {
                        m.insert(*id, Progress::at(*id, ts));
                    }
                },
                |()| {
                    let taken = std::mem::take(&mut *map.lock().unwrap());
                    encoder(taken.values().map(status_of).collect())
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.bench_function("mpsc_per_update_baseline", |b| {
        let (tx, rx) = mpsc::channel::<Progress>();
        b.iter_batched(
            || {
                ts += 1;
                for id in &ids {
                    tx.send(Progress::at(*id, ts)).unwrap();
                }
            },
            |()| encode(rx.try_iter().map(|p| status_of(&p)).collect()),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, ingestion, round);
criterion_main!(benches);
