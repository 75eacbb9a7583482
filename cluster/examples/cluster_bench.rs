//! Measures a local 3-node cluster of real processes (`dispatcher_cluster::harness`): time from
//! `kill -9` of the maintainer's process to converged, a maintainer move end to end, and, with
//! 10,000 spans, the steady state's CPU per node and messages per second.
//!
//! ```text
//! cargo build --release -p dispatcher-cluster
//! cargo run --release -p dispatcher-cluster --example cluster_bench [-- ROUNDS]
//! ```
//!
//! Nothing here asserts a time: it prints figures for BENCHMARKS.md.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dispatcher_cluster::harness::{cpu_time, feed, sample, Cluster};

const ALL: [&str; 3] = ["n1", "n2", "n3"];
const TTL_S: u64 = 5;

fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let exe = std::env::current_exe().expect("own path");
    let bin = exe.parent().and_then(|p| p.parent()).expect("target dir").join("dispatcher-cluster");
    assert!(bin.exists(), "build it first: cargo build --release -p dispatcher-cluster");

    // kill -9 of the maintainer's process, 50 tables in 100 spans.
    let mut c = Cluster::start("bench-kill", &bin, &ALL, TTL_S);
    c.request(&["changefeed", "create", "--id", "cf", "--tables", "50", "--spans-per-table", "2"]);
    c.converge(&ALL, Instant::now(), &BTreeMap::new());
    let mut kills = Vec::new();
    for _ in 0..rounds {
        let victim = c.maintainer("cf");
        let also_coordinator = c.coordinator() == victim;
        let floor = c.floor();
        let at = Instant::now();
        c.kill9(&victim);
        let rest: Vec<&str> = ALL.into_iter().filter(|n| *n != victim).collect();
        let took = c.converge(&rest, at, &floor);
        kills.push((took, also_coordinator));
        c.start_node(&victim);
        let floor = c.floor();
        c.converge(&ALL, Instant::now(), &floor);
    }
    let moves = move_maintainer(&mut c, "cf", rounds);
    drop(c);
    let kills: Vec<String> = kills
        .iter()
        .map(|(t, co)| {
            format!("{:.1} s{}", t.as_secs_f64(), if *co { " (it was the coordinator's too)" } else { "" })
        })
        .collect();
    println!(
        "kill -9 of the maintainer's process to converged (TTL {TTL_S} s, 100 spans): {}",
        kills.join(", ")
    );
    println!("maintainer move to converged (100 spans): {}", list(&moves));

    // 10,000 spans in steady state.
    let mut c = Cluster::start("bench-10k", &bin, &[], 10);
    c.metrics = Some(BTreeMap::new());
    for id in ALL {
        c.start_node(id);
    }
    let at = Instant::now();
    c.request(&["changefeed", "create", "--id", "big", "--tables", "100", "--spans-per-table", "100"]);
    let placed = c.converge_within(&ALL, at, &BTreeMap::new(), Duration::from_secs(180));
    println!("10,000 spans created and placed in {:.1} s", placed.as_secs_f64());
    std::thread::sleep(Duration::from_secs(5));
    let window = Duration::from_secs(60);
    let before: Vec<(Duration, f64, f64)> = ALL.iter().map(|id| reading(&c, id)).collect();
    std::thread::sleep(window);
    let after: Vec<(Duration, f64, f64)> = ALL.iter().map(|id| reading(&c, id)).collect();
    let s = c.status();
    let maintainer = feed(&s, "big")["maintainer"]["node"].as_str().unwrap_or("?").to_owned();
    let coordinator = s["coordinator"]["node"].as_str().unwrap_or("?").to_owned();
    println!(
        "steady state over {} s (maintainer on {maintainer}, coordinator on {coordinator}):",
        window.as_secs()
    );
    for (i, id) in ALL.iter().enumerate() {
        let cpu = (after[i].0 - before[i].0).as_secs_f64() / window.as_secs_f64() * 100.0;
        let sent = (after[i].1 - before[i].1) / window.as_secs_f64();
        let received = (after[i].2 - before[i].2) / window.as_secs_f64();
        let spans = s["nodes"]
            .as_array()
            .and_then(|n| n.iter().find(|n| n["id"] == *id))
            .map_or(0, |n| n["dispatchers"].as_array().map_or(0, Vec::len));
        println!("  {id}: {spans} dispatchers, CPU {cpu:.2} % of one core, {sent:.0} messages/s sent, {received:.0} received");
    }
    let moves = move_maintainer(&mut c, "big", rounds);
    println!("maintainer move to converged (10,000 spans): {}", list(&moves));
}

/// CPU time, messages sent, messages received.
fn reading(c: &Cluster, id: &str) -> (Duration, f64, f64) {
    let text = c.metrics_of(id);
    let cpu = cpu_time(c.pid(id)).unwrap_or_default();
    let sent = sample(&text, "dc_messages_total{event=\"sent\"}").unwrap_or(0.0);
    let received = sample(&text, "dc_messages_total{event=\"received\"}").unwrap_or(0.0);
    (cpu, sent, received)
}

/// Moves the maintainer to the next node `rounds` times; the time from the request to two
/// converged readings with the maintainer on the target, each.
fn move_maintainer(c: &mut Cluster, cf: &str, rounds: usize) -> Vec<Duration> {
    let mut took = Vec::new();
    for _ in 0..rounds {
        let from = c.maintainer(cf);
        let to = ALL[(ALL.iter().position(|n| *n == from).unwrap_or(0) + 1) % ALL.len()];
        let floor = c.floor();
        let at = Instant::now();
        c.request(&["changefeed", "move-maintainer", "--id", cf, "--to", to]);
        let mut t = c.converge_within(&ALL, at, &floor, Duration::from_secs(120));
        while c.maintainer(cf) != to {
            t = c.converge_within(&ALL, at, &floor, Duration::from_secs(120));
        }
        took.push(t);
    }
    took
}

fn list(times: &[Duration]) -> String {
    let v: Vec<String> = times.iter().map(|t| format!("{:.1} s", t.as_secs_f64())).collect();
    v.join(", ")
}
