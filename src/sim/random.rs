//! Random exploration: seeded timelines with every operation and fault, and shrinking a failing
//! timeline to a short scenario that still fails the same check.

use crate::ids::Mode;
use crate::messages::MessageKind;

use super::rng::Rng;
use super::run::{run, Report};
use super::scenario::{Scenario, Step, TableSpec, Verb, What};
use super::world::SimOptions;

/// Shape of the generated timelines.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Tables at the start.
    pub tables: usize,
    /// Operations and faults before the final settle.
    pub operations: usize,
    /// DDLs travel through the barrier: the explorer adds DDLs of every kind, syncpoints,
    /// schemas, the write failpoint and faults aimed at barrier phases.
    pub barrier: bool,
    /// Load-driven scheduling on: the explorer gives tables regions and write rates and mixes in
    /// hotspots appearing, moving and cooling and region counts changing (swarm explorer only).
    pub load: bool,
}

impl Default for Shape {
    fn default() -> Self {
        Self { nodes: 3, tables: 5, operations: 14, barrier: false, load: false }
    }
}

const KINDS: [MessageKind; 5] = [
    MessageKind::ScheduleDispatcherRequest,
    MessageKind::MergeDispatcherRequest,
    MessageKind::HeartBeatRequest,
    MessageKind::MaintainerBootstrapRequest,
    MessageKind::MaintainerBootstrapResponse,
];

fn step(verb: Verb) -> Step {
    Step { line: 0, verb }
}

/// The timeline of `seed`.
pub fn generate(seed: u64, shape: Shape) -> Scenario {
    let mut rng = Rng::new(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0xa5a5);
    let nodes: Vec<String> = (1..=shape.nodes.max(1)).map(|i| format!("n{i}")).collect();
    let tables: Vec<TableSpec> = (1..=shape.tables as i64)
        .map(|id| TableSpec {
            id,
            spans: 1 + rng.below(3),
            schema: 1,
            regions: 1,
            bytes_per_s: Default::default(),
        })
        .collect();
    let redo = rng.chance(25);
    let balance = rng.chance(30);
    let mut live: Vec<i64> = tables.iter().map(|t| t.id).collect();
    let mut next_table = shape.tables as i64 + 1;
    let mut alive: Vec<bool> = vec![true; nodes.len()];
    // Where the maintainer runs, as the simulator will place it (failover: first live node).
    let mut host = 0usize;
    let mut blocked: Vec<(String, What)> = Vec::new();
    let mut steps = vec![step(Verb::Settle { max_ms: 60_000 })];
    let pick_node = |rng: &mut Rng, alive: &[bool]| -> Option<String> {
        let up: Vec<usize> = (0..alive.len()).filter(|i| alive[*i]).collect();
        up.get(rng.below(up.len())).map(|i| nodes[*i].clone())
    };
    for _ in 0..shape.operations {
        let mode = if redo && rng.chance(30) { Mode::Redo } else { Mode::Default };
        let table = live.get(rng.below(live.len())).copied();
        let verb = match rng.below(19) {
            0 | 1 => table.zip(pick_node(&mut rng, &alive)).map(|(table, to)| Verb::Move {
                table,
                span: Some(rng.below(3)),
                to,
                mode,
            }),
            2 => table.map(|table| Verb::Split {
                table,
                span: Some(rng.below(3)),
                into: 2 + rng.below(2),
                mode,
            }),
            3 => table.map(|table| {
                let i = rng.below(3);
                Verb::Merge { table, spans: vec![i, i + 1], mode }
            }),
            4 => {
                let t = next_table;
                next_table += 1;
                live.push(t);
                Some(Verb::CreateTable { table: t, spans: 1 + rng.below(2) })
            }
            5 => table.map(|table| {
                live.retain(|t| *t != table);
                Verb::DropTable { table }
            }),
            6 => table.map(|table| {
                live.retain(|t| *t != table);
                let new_table = next_table;
                next_table += 1;
                live.push(new_table);
                Verb::TruncateTable { table, new_table }
            }),
            7 => pick_node(&mut rng, &alive).map(|node| {
                let what = if rng.chance(50) { What::Create } else { What::Close };
                blocked.push((node.clone(), what));
                Verb::Block { node, what }
            }),
            8 if !blocked.is_empty() => {
                let (node, what) = blocked.remove(rng.below(blocked.len()));
                Some(Verb::Unblock { node, what })
            }
            9 if alive.iter().filter(|a| **a).count() > 1 => {
                let node = pick_node(&mut rng, &alive);
                if let Some(n) = &node {
                    let i = nodes.iter().position(|x| x == n).unwrap_or(0);
                    alive[i] = false;
                    blocked.retain(|(b, _)| b != n);
                    if i == host {
                        host = alive.iter().position(|a| *a).unwrap_or(0);
                    }
                }
                node.map(|node| Verb::CrashNode { node })
            }
            10 => {
                let down: Vec<usize> = (0..alive.len()).filter(|i| !alive[*i]).collect();
                down.get(rng.below(down.len())).map(|i| {
                    alive[*i] = true;
                    Verb::RestartNode { node: nodes[*i].clone() }
                })
            }
            11 if alive.iter().filter(|a| **a).count() > 1 => {
                alive[host] = false;
                blocked.retain(|(b, _)| *b != nodes[host]);
                host = alive.iter().position(|a| *a).unwrap_or(0);
                Some(Verb::CrashMaintainer)
            }
            12 => pick_node(&mut rng, &alive).map(|to| {
                host = nodes.iter().position(|x| *x == to).unwrap_or(host);
                Verb::MoveMaintainer { to }
            }),
            13 => {
                let cut: Vec<String> = nodes.iter().filter(|_| rng.chance(40)).cloned().collect();
                (!cut.is_empty() && cut.len() < nodes.len()).then_some(Verb::Partition { nodes: cut })
            }
            14 => Some(Verb::Heal),
            15 => Some(Verb::DelayMessages {
                kind: rng.chance(70).then(|| KINDS[rng.below(KINDS.len())]),
                from: None,
                to: None,
                ms: 50 + rng.range(0, 1_500),
                count: Some(1 + rng.below(4) as u32),
            }),
            16 => Some(Verb::DropMessages {
                kind: Some(KINDS[rng.below(KINDS.len())]),
                from: None,
                to: None,
                count: 1 + rng.below(3) as u32,
            }),
            17 => Some(Verb::DuplicateMessages {
                kind: Some(KINDS[rng.below(KINDS.len())]),
                from: None,
                to: None,
                count: 1 + rng.below(3) as u32,
            }),
            _ => Some(Verb::HealMessages),
        };
        if let Some(verb) = verb {
            steps.push(step(verb));
        }
        steps.push(step(Verb::Run { ms: rng.range(20, 1_500) }));
    }
    epilogue(&mut steps, blocked, &nodes, &alive, 120_000);
    Scenario {
        name: format!("random-{seed}"),
        maintainer: nodes[0].clone(),
        nodes,
        redo,
        balance,
        seed,
        syncpoint_interval_ms: 0,
        scheduler: Default::default(),
        tables,
        steps,
    }
}

/// The end of every generated timeline: lift every fault, bring every node back, and demand
/// convergence within `settle_ms`.
pub(super) fn epilogue(
    steps: &mut Vec<Step>,
    blocked: Vec<(String, What)>,
    nodes: &[String],
    alive: &[bool],
    settle_ms: u64,
) {
    steps.push(step(Verb::Heal));
    steps.push(step(Verb::HealMessages));
    for (node, what) in blocked {
        steps.push(step(Verb::Unblock { node, what }));
    }
    for (node, up) in nodes.iter().zip(alive) {
        if !up {
            steps.push(step(Verb::RestartNode { node: node.clone() }));
        }
    }
    steps.push(step(Verb::Settle { max_ms: settle_ms }));
}

/// Runs the timeline of `seed` (classic explorer).
pub fn run_seed(seed: u64, shape: Shape) -> (Scenario, Report) {
    let scenario = generate(seed, shape);
    let report = run(&scenario, "", SimOptions::default(), None);
    (scenario, report)
}

/// What makes two failures "the same" for shrinking: the check and the shape of its detail
/// (numbers and ids blanked), so a shrink never trades the bug for another one.
fn signature(f: &super::run::Failure) -> String {
    let shape: String = f.detail.chars().map(|c| if c.is_ascii_hexdigit() { '#' } else { c }).collect();
    let shape: String = shape.split_whitespace().take(8).collect::<Vec<_>>().join(" ");
    format!("{} {shape}", f.check)
}

/// Removes steps from a failing scenario while it still fails the same check; returns the
/// shortest found and its report.
pub fn shrink(scenario: &Scenario, opts: &SimOptions) -> (Scenario, Report) {
    let first = run(scenario, "", opts.clone(), None);
    let Some(target) = first.failures.first().map(signature) else {
        return (scenario.clone(), first);
    };
    let mut best = scenario.clone();
    // Everything after the failing step is irrelevant.
    let failing_step = first.failures[0].step;
    best.steps.truncate(failing_step);
    let mut best_report = run(&best, "", opts.clone(), None);
    if best_report.failures.first().map(signature) != Some(target.clone()) {
        best = scenario.clone();
        best_report = first;
    }
    let mut changed = true;
    let mut rounds = 0;
    while changed && rounds < 8 {
        changed = false;
        rounds += 1;
        let mut i = 0;
        while i < best.steps.len() {
            // Recovery steps stay: without them a liveness failure is trivially reproduced.
            if matches!(
                best.steps[i].verb,
                Verb::Unblock { .. }
                    | Verb::Heal
                    | Verb::HealMessages
                    | Verb::RestartNode { .. }
                    | Verb::Settle { .. }
            ) {
                i += 1;
                continue;
            }
            let mut candidate = best.clone();
            candidate.steps.remove(i);
            let report = run(&candidate, "", opts.clone(), None);
            if report.failures.first().map(signature) == Some(target.clone()) {
                best = candidate;
                best_report = report;
                changed = true;
            } else {
                i += 1;
            }
        }
    }
    best.name = format!("{}-shrunk", scenario.name);
    (best, best_report)
}
