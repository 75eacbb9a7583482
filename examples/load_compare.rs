//! Load-driven scheduling, ours beside the reference's rules, in the simulator: one run per
//! rule set on the same timeline (4 nodes; table 1 with 64 regions next to three cold tables;
//! `write-key-threshold` 20 MiB/s, the other settings at the reference's defaults):
//!
//! 1. table 1 turns hot (100 MiB/s over its whole range): time until its traffic is balanced
//!    (the busiest node at most 1.25 times the mean, `expect_balanced`), operators the
//!    schedulers started in the 20 minutes after (both rule sets have settled by then), and the
//!    busiest node over the mean then;
//! 2. 30 minutes of the same load: operators started (goal 0);
//! 3. the hotspot moves to the last quarter of the key range: time until balanced again;
//! 4. the table cools to 1 MiB/s: spans left 10 minutes later, against the span count before
//!    the hotspot (goal at most twice).
//!
//! ```text
//! cargo run --release --example load_compare
//! ```
//!
//! Nothing here asserts: it prints the figures for BENCHMARKS.md.

use dispatcher_core::ids::Mode;
use dispatcher_core::maintainer::load::{LoadConfig, Rules};
use dispatcher_core::sim::run::settle;
use dispatcher_core::sim::world::{SimOptions, Traffic, World};

const MIB: f64 = 1024.0 * 1024.0;
const MINUTE: u64 = 60_000;

fn ratio(world: &World, table: i64) -> f64 {
    let shares = world.node_traffic(Some(table));
    let total: f64 = shares.values().sum();
    let mean = total / shares.len().max(1) as f64;
    let max = shares.values().copied().fold(0.0, f64::max);
    if total > 0.0 {
        max / mean
    } else {
        1.0
    }
}

/// Runs second by second for at most `limit_ms`; the time until table 1 is balanced.
fn until_balanced(world: &mut World, limit_ms: u64) -> Option<u64> {
    let start = world.now;
    while world.now < start + limit_ms {
        world.run_until(world.now + 1_000);
        if ratio(world, 1) <= 1.25 {
            return Some(world.now - start);
        }
    }
    None
}

fn run(rules: Rules) -> Vec<String> {
    let mut traffic = Traffic::default();
    traffic.set_table(1, 64, MIB);
    for t in 2..=4 {
        traffic.set_table(t, 1, MIB);
    }
    let load =
        LoadConfig { across_nodes: true, write_key_threshold: 20.0 * MIB, rules, ..LoadConfig::default() };
    let opts = SimOptions { load, traffic, ..SimOptions::default() };
    let nodes: Vec<String> = (1..=4).map(|i| format!("n{i}")).collect();
    let tables: Vec<(i64, usize, i64)> = (1..=4).map(|t| (t, 1, 1)).collect();
    let mut world = World::new(&nodes, "n1", &tables, false, true, 7, 0, opts);
    settle(&mut world, 120_000).expect("settles");
    let spans_before = world.spans_of(1, Mode::Default).len();
    let mut out = Vec::new();

    // 1. The hotspot appears.
    world.update_traffic(|t| t.set_load(1, 100.0 * MIB, 0.0, 1.0));
    let (t0, ops0) = (world.now, world.scheduler_started.len());
    let balanced = until_balanced(&mut world, 20 * MINUTE);
    world.run_until(t0 + 20 * MINUTE);
    out.push(balanced.map_or("not within 20 min".into(), |ms| format!("{:.0} s", ms as f64 / 1_000.0)));
    out.push(format!("{}", world.scheduler_started.len() - ops0));
    out.push(format!("{:.2}", ratio(&world, 1)));

    // 2. Steady load for 30 minutes.
    let ops = world.scheduler_started.len();
    world.run_until(world.now + 30 * MINUTE);
    out.push(format!("{}", world.scheduler_started.len() - ops));

    // 3. The hotspot moves to the last quarter.
    world.update_traffic(|t| {
        t.set_load(1, 0.0, 0.0, 0.75);
        t.set_load(1, 100.0 * MIB, 0.75, 1.0);
    });
    let moved = until_balanced(&mut world, 20 * MINUTE);
    out.push(moved.map_or("not within 20 min".into(), |ms| format!("{:.0} s", ms as f64 / 1_000.0)));

    // 4. It cools down.
    world.update_traffic(|t| t.set_load(1, MIB, 0.0, 1.0));
    world.run_until(world.now + 10 * MINUTE);
    out.push(format!("{} (before the hotspot: {spans_before})", world.spans_of(1, Mode::Default).len()));
    out
}

fn main() {
    let rows = [
        "hotspot to balanced (goal <= 90 s)",
        "operators started in the 20 min after",
        "busiest node / mean 20 min after (goal <= 1.25)",
        "operators started in 30 min of steady load (goal 0)",
        "hotspot moved to the last quarter: to balanced",
        "spans 10 min after the load cooled (goal <= 2x before)",
    ];
    let ours = run(Rules::Ours);
    let reference = run(Rules::Reference);
    println!("| case | ours | reference's rules |");
    println!("|---|---|---|");
    for (i, row) in rows.iter().enumerate() {
        println!("| {row} | {} | {} |", ours[i], reference[i]);
    }
}
