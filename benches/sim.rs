//! Simulator throughput: simulated events per second on one seeded 3-node, 50-table timeline
//! with failovers and faults (the same generator `dispatcher-core sim --random` uses).
//!
//! Run: `cargo bench --bench sim`. The 1,000-seed sweep's wall time is measured with the command
//! itself (BENCHMARKS.md).

#![allow(missing_docs)] // reason: bench harness

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dispatcher_core::sim::random::{generate, Shape};
use dispatcher_core::sim::run::run;
use dispatcher_core::sim::world::SimOptions;

fn events_per_second(c: &mut Criterion) {
    let shape = Shape { nodes: 3, tables: 50, operations: 14, barrier: false, load: false };
    let mut g = c.benchmark_group("sim_events");
    for seed in [1u64, 2] {
        let scenario = generate(seed, shape);
        let report = run(&scenario, "", SimOptions::default(), None);
        assert!(report.passed, "{}", report.line());
        g.throughput(Throughput::Elements(report.events));
        g.bench_function(format!("seed_{seed}_3_nodes_50_tables"), |b| {
            b.iter(|| run(&scenario, "", SimOptions::default(), None))
        });
    }
    g.finish();
}

criterion_group!(benches, events_per_second);
criterion_main!(benches);
