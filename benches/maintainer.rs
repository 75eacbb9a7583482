//! Maintainer benchmarks at the scale: 1,000,000 spans reported by 10 nodes.
//!
//! * `bootstrap_recovery`: decode ten `MaintainerBootstrapResponse`s (100,000 spans each) and rebuild
//!   the span controller through `Maintainer::step`; the rebuild alone (responses decoded outside
//!   the timing); and the decode alone as the baseline, all in one group.
//! * `heartbeat_statuses`: one 2,048-status heartbeat through `Maintainer::step` on a maintainer
//!   tracking 1,000,000 spans, against a bare `HashMap` accumulator (the least any maintainer must
//!   do per status).
//!
//! * `id_hashers`: the maintainer's id maps (`IdMap`, hashed by rustc-hash's Fx) against the same
//!   `HashMap` hashed by foldhash's fixed-seed hasher and std's SipHash with fixed keys (the hasher
//!   the node's papaya maps used before): build a map of 1,000,000 dispatcher ids (the maintainer's sequential ones, and
//!   random ones as nodes make them), then look every id up.
//!
//! Run: `cargo bench --bench maintainer`. Results and the machine: BENCHMARKS.md.

#![allow(missing_docs, clippy::disallowed_types, clippy::disallowed_methods)] // reason: bench harness

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dispatcher_core::ids::{ChangefeedId, DispatcherId, Epoch, Mode, NodeId};
use dispatcher_core::maintainer::{
    Ddl, Event, Lifecycle, Maintainer, MaintainerConfig, MemorySchema, Output, TableInfo,
};
use dispatcher_core::messages::*;
use dispatcher_core::span::TableSpan;
use dispatcher_core::wire::pb;
use prost::Message;

const NODES: usize = 10;
const TABLES: i64 = 10_000;
const SPANS_PER_TABLE: usize = 100;
const EPOCH: Epoch = Epoch(3);

fn node(i: usize) -> NodeId {
    NodeId::new(&format!("n{i}"))
}

fn schema() -> MemorySchema {
    let mut s = MemorySchema::new();
    for t in 1..=TABLES {
        s.apply(1, Ddl::Create(TableInfo { keyspace_id: 0, table_id: t, schema_id: 1 }));
    }
    s
}

/// Every node's spans: `tables` tables of `per_table` spans each, part `i` of table `t` on node
/// `place(t, i)`, all Working at checkpoint 200.
fn spans_by_node(
    tables: i64,
    per_table: usize,
    place: impl Fn(i64, usize) -> usize,
) -> Vec<Vec<BootstrapSpan>> {
    let mut spans: Vec<Vec<BootstrapSpan>> = vec![Vec::new(); NODES];
    let mut next = 1u64;
    for t in 1..=tables {
        for (i, part) in TableSpan::whole_table(0, t).split_even(per_table).unwrap().into_iter().enumerate() {
            spans[place(t, i) % NODES].push(BootstrapSpan {
                id: DispatcherId::new(1, next).unwrap(),
                mode: Mode::Default,
                schema_id: 1,
                span: part,
                state: ComponentState::Working,
                checkpoint_ts: 200,
                block: None,
            });
            next += 1;
        }
    }
    spans
}

/// Ten encoded bootstrap responses; table `t` lives on node `t % 10`.
fn encoded_responses() -> Vec<(NodeId, Vec<u8>)> {
    spans_by_node(TABLES, SPANS_PER_TABLE, |t, _| t as usize)
        .into_iter()
        .enumerate()
        .map(|(i, spans)| {
            let response = BootstrapResponse { spans, epoch: EPOCH, ..Default::default() };
            (node(i), pb::MaintainerBootstrapResponse::from(&response).encode_to_vec())
        })
        .collect()
}

fn decode(responses: &[(NodeId, Vec<u8>)]) -> Vec<(NodeId, BootstrapResponse)> {
    responses
        .iter()
        .map(|(n, bytes)| {
            let pb = pb::MaintainerBootstrapResponse::decode(&bytes[..]).unwrap();
            (n.clone(), BootstrapResponse::try_from(pb).unwrap())
        })
        .collect()
}

fn fresh(schema: &MemorySchema) -> Maintainer {
    let nodes: Vec<NodeId> = (0..NODES).map(node).collect();
    let cfg = MaintainerConfig::new(ChangefeedId::default(), node(0), EPOCH, 100);
    let mut m = Maintainer::new(cfg, Box::new(schema.clone()), &nodes);
    m.step(0, Event::Tick);
    m
}

/// Steps the decoded responses through `m`, which ends running, and hands `m` back (for the
/// benches to drop outside the timing).
fn recover(mut m: Maintainer, decoded: Vec<(NodeId, BootstrapResponse)>) -> Maintainer {
    for (from, response) in decoded {
        black_box(m.step(1, Event::BootstrapResponse { from, response }));
    }
    assert!(m.lifecycle() == Lifecycle::Running);
    m
}

fn bootstrap_recovery(c: &mut Criterion) {
    let schema = schema();
    let responses = encoded_responses();
    let mut g = c.benchmark_group("bootstrap_recovery_1m_spans_10_nodes");
    g.sample_size(10);
    g.throughput(Throughput::Elements((TABLES as u64) * SPANS_PER_TABLE as u64));
    g.bench_function("decode_only", |b| b.iter(|| black_box(decode(&responses))));
    g.bench_function("rebuild_only", |b| {
        let setup = || (fresh(&schema), decode(&responses));
        b.iter_batched(setup, |(m, decoded)| recover(m, decoded), BatchSize::PerIteration)
    });
    g.bench_function("decode_and_rebuild", |b| {
        b.iter_batched(|| fresh(&schema), |m| recover(m, decode(&responses)), BatchSize::PerIteration)
    });
    g.finish();
}

fn heartbeat_statuses(c: &mut Criterion) {
    const BATCH: usize = 2048;
    let schema = schema();
    let mut m = recover(fresh(&schema), decode(&encoded_responses()));
    // The statuses node 3 would send: 2,048 of its dispatchers, all Working.
    let ids: Vec<DispatcherId> = {
        let view = m.view(Mode::Default).unwrap();
        view.spans.on_node(&node(3)).take(BATCH).collect()
    };
    let mut ckpt = 200;
    let mut next_heartbeat = || {
        ckpt += 1;
        Heartbeat {
            watermark: Some(Watermark { checkpoint_ts: 200, resolved_ts: 200, seq: 1 }),
            statuses: ids
                .iter()
                .map(|id| DispatcherStatus {
                    id: *id,
                    mode: Mode::Default,
                    state: ComponentState::Working,
                    checkpoint_ts: ckpt,
                    event_size_per_second: 0.0,
                })
                .collect(),
            ..Default::default()
        }
    };
    let mut g = c.benchmark_group("heartbeat_statuses_at_1m_spans");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("maintainer_step", |b| {
        b.iter_batched(
            &mut next_heartbeat,
            |hb| {
                let effects: Vec<Output> = m.step(2, Event::Heartbeat { from: node(3), heartbeat: hb });
                debug_assert!(effects.is_empty());
                effects
            },
            BatchSize::SmallInput,
        )
    });
    let mut baseline: HashMap<DispatcherId, (ComponentState, u64)> =
        ids.iter().map(|id| (*id, (ComponentState::Working, 200))).collect();
    g.bench_function("hashmap_accumulator", |b| {
        b.iter_batched(
            &mut next_heartbeat,
            |hb| {
                for s in &hb.statuses {
                    if let Some(slot) = baseline.get_mut(&s.id) {
                        if s.checkpoint_ts >= slot.1 {
                            *slot = (s.state, s.checkpoint_ts);
                        }
                    }
                }
                hb
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// Builds a map of `ids` with hasher `S`, then looks each one up; returns the sum of the values.
fn build_and_look_up<S: std::hash::BuildHasher + Default>(ids: &[DispatcherId]) -> usize {
    let mut map: HashMap<DispatcherId, usize, S> = HashMap::default();
    for (i, id) in ids.iter().enumerate() {
        map.insert(*id, i);
    }
    ids.iter().map(|id| map[id]).sum()
}

fn id_hashers(c: &mut Criterion) {
    const N: u64 = 1_000_000;
    // The maintainer's own ids: a tag in the high word and a counter (see `maintainer/core.rs`).
    let sequential: Vec<DispatcherId> =
        (1..=N).map(|i| DispatcherId::new(0x6d74 << 48, i).unwrap()).collect();
    // Ids as nodes make them: random 128-bit values.
    let mut rng = dispatcher_core::sim::rng::Rng::new(7);
    let random: Vec<DispatcherId> =
        (1..=N).map(|_| DispatcherId::new(rng.next_u64() | 1, rng.next_u64()).unwrap()).collect();
    type Sip = std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>;
    let mut g = c.benchmark_group("id_hashers_1m");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N));
    for (ids, name) in [(&sequential, "sequential"), (&random, "random")] {
        g.bench_function(format!("{name}/foldhash_fixed"), |b| {
            b.iter(|| black_box(build_and_look_up::<foldhash::fast::FixedState>(ids)))
        });
        g.bench_function(format!("{name}/fxhash"), |b| {
            b.iter(|| black_box(build_and_look_up::<rustc_hash::FxBuildHasher>(ids)))
        });
        g.bench_function(format!("{name}/siphash_fixed"), |b| {
            b.iter(|| black_box(build_and_look_up::<Sip>(ids)))
        });
    }
    g.finish();
}

/// A DB-level DDL over 10,000 dispatchers on 10 nodes (1,000 tables of 10 spans, one schema):
/// every span and the trigger waiting but one; measured, the last WAITING (coverage is checked,
/// the Write goes to the trigger) and the trigger's DONE (the table-set changes, none here, and
/// the Pass fan-out to every node).
fn barrier_db_ddl(c: &mut Criterion) {
    const DB_TABLES: i64 = 1_000;
    const DB_SPANS: usize = 10;
    let mut s = MemorySchema::new();
    for t in 1..=DB_TABLES {
        s.apply(1, Ddl::Create(TableInfo { keyspace_id: 0, table_id: t, schema_id: 1 }));
    }
    let spans = spans_by_node(DB_TABLES, DB_SPANS, |t, _| t as usize);
    let responses: Vec<(NodeId, BootstrapResponse)> = spans
        .into_iter()
        .enumerate()
        .map(|(i, spans)| (node(i), BootstrapResponse { spans, epoch: EPOCH, ..Default::default() }))
        .collect();
    let db = InfluencedTables { kind: InfluenceKind::Db, table_ids: Vec::new(), schema_id: 1 };
    let detail = std::sync::Arc::new(BlockDetail { block_tables: Some(db), ..Default::default() });
    let state = |stage| BlockState {
        is_blocked: true,
        block_ts: 300,
        is_sync_point: false,
        stage,
        detail: detail.clone(),
    };
    let request =
        |statuses| BlockStatusRequest { changefeed: ChangefeedId::default(), statuses, mode: Mode::Default };
    let status = |id, stage| BlockStatus { id, mode: Mode::Default, state: state(stage) };
    // Everything waiting but the last span of node 9; returns it with the maintainer and the trigger.
    let setup = || {
        let mut m = recover(fresh(&s), responses.clone());
        let trigger = m.view(Mode::Default).unwrap().trigger;
        let _ = m.step(
            2,
            Event::BlockStatus {
                from: node(0),
                request: request(vec![status(trigger, BlockStage::Waiting)]),
            },
        );
        let mut last = None;
        for (from, r) in &responses {
            let mut ids: Vec<DispatcherId> = r.spans.iter().map(|s| s.id).collect();
            if *from == node(NODES - 1) {
                last = ids.pop();
            }
            for chunk in ids.chunks(2048) {
                let statuses = chunk.iter().map(|id| status(*id, BlockStage::Waiting)).collect();
                let _ = m.step(2, Event::BlockStatus { from: from.clone(), request: request(statuses) });
            }
        }
        (m, trigger, last.unwrap())
    };
    let mut g = c.benchmark_group("barrier_db_ddl_10k_dispatchers_10_nodes");
    g.sample_size(10);
    g.bench_function("last_waiting_to_pass_fan_out", |b| {
        b.iter_batched(
            setup,
            |(mut m, trigger, last)| {
                let write = m.step(
                    3,
                    Event::BlockStatus {
                        from: node(NODES - 1),
                        request: request(vec![status(last, BlockStage::Waiting)]),
                    },
                );
                let pass = m.step(
                    4,
                    Event::BlockStatus {
                        from: node(0),
                        request: request(vec![status(trigger, BlockStage::Done)]),
                    },
                );
                assert!(!write.is_empty() && pass.len() >= NODES, "the Write, then Pass to every node");
                (m, write, pass)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// One load-driven scheduling round over 10,000 spans: 100 split tables of 100 spans, each
/// table's spans round-robin over 10 nodes at 5 MiB/s each (balanced, none hot enough to split,
/// too few to merge: the round evaluates every table and starts nothing). Timed: the `Tick` that
/// runs the round; the statuses that refill the windows are stepped before it, untimed.
fn load_round_with(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    across_nodes: bool,
) {
    const TABLES: i64 = 100;
    const PER_TABLE: usize = 100;
    const INTERVAL: u64 = 15_000;
    let mut schema = MemorySchema::new();
    for t in 1..=TABLES {
        schema.apply(1, Ddl::Create(TableInfo { keyspace_id: 0, table_id: t, schema_id: 1 }));
    }
    // Every table spread over all nodes, part i on node i % 10.
    let by_node = spans_by_node(TABLES, PER_TABLE, |_, i| i);
    let nodes: Vec<NodeId> = (0..NODES).map(node).collect();
    let mut cfg = MaintainerConfig::new(ChangefeedId::default(), node(0), EPOCH, 100);
    cfg.load.across_nodes = across_nodes;
    cfg.load.write_key_threshold = 10.0 * 1024.0 * 1024.0;
    cfg.load.check_balance_interval_ms = INTERVAL;
    let mut m = Maintainer::new(cfg, Box::new(schema), &nodes);
    m.step(0, Event::Tick);
    let heartbeats: Vec<(NodeId, Heartbeat)> = by_node
        .iter()
        .enumerate()
        .map(|(i, spans)| {
            let heartbeat = Heartbeat {
                watermark: Some(Watermark { checkpoint_ts: 200, resolved_ts: 200, seq: 1 }),
                statuses: spans
                    .iter()
                    .map(|s| DispatcherStatus {
                        id: s.id,
                        mode: Mode::Default,
                        state: ComponentState::Working,
                        checkpoint_ts: 200,
                        event_size_per_second: 5.0 * 1024.0 * 1024.0,
                    })
                    .collect(),
                ..Default::default()
            };
            (node(i), heartbeat)
        })
        .collect();
    for (i, spans) in by_node.into_iter().enumerate() {
        let response = BootstrapResponse { spans, epoch: EPOCH, ..Default::default() };
        m.step(1, Event::BootstrapResponse { from: node(i), response });
    }
    assert!(m.lifecycle() == Lifecycle::Running);
    let mut now = 1;
    let round = |m: &mut Maintainer, now: &mut u64| {
        for (from, hb) in &heartbeats {
            m.step(*now, Event::Heartbeat { from: from.clone(), heartbeat: hb.clone() });
        }
        *now += INTERVAL;
    };
    // Fill every window first.
    for _ in 0..4 {
        round(&mut m, &mut now);
        m.step(now, Event::Tick);
    }
    let name = if across_nodes { "tick_with_load_round" } else { "tick_without_load_scheduling" };
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                round(&mut m, &mut now);
                let start = std::time::Instant::now();
                let effects = black_box(m.step(now, Event::Tick));
                total += start.elapsed();
                assert!(
                    !effects.iter().any(|e| matches!(e, Output::SchedulerStarted { .. })),
                    "a balanced round starts nothing"
                );
            }
            total
        })
    });
}

fn load_round(c: &mut Criterion) {
    let mut g = c.benchmark_group("load_round_10k_spans_100_tables_10_nodes");
    g.throughput(Throughput::Elements(10_000));
    load_round_with(&mut g, true);
    load_round_with(&mut g, false);
    g.finish();
}

criterion_group!(benches, bootstrap_recovery, heartbeat_statuses, id_hashers, barrier_db_ddl, load_round);
criterion_main!(benches);
