//! The swarm explorer: each seed draws its own cluster shape, its own subset of operations and
//! faults with their own weights, a few focus tables, and how often a fault is aimed at an
//! operator phase (`run_until` + the fault) rather than at a random time.
//!
//! Swarm testing (Groce et al., ISSTA 2012) beats one fixed mix: a seed that draws only merges,
//! blocked closes and failovers goes deep into that corner, where a mix of nineteen kinds spread
//! thin rarely arrives. Phase-aimed faults reach the short windows (a merge draining, a move's
//! origin closing, a bootstrap in progress) that a fault at a random time almost never hits.

use crate::ids::Mode;
use crate::messages::MessageKind;

use super::coverage::Phase;
use super::random::Shape;
use super::rng::Rng;
use super::scenario::{Num, Scenario, Step, TableSpec, Verb, What};

mod motifs;
use motifs::{
    aimed_fault, bounce_before_progress, crash_node, failover_storm, held_remove_closes_returned_span, index,
    merge, merge_copy_outlives_abandon, merge_interrupted, message_fault, move_interrupted,
    returning_maintainer, side_by_side,
};

/// What a seed may draw.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Feature {
    Move,
    Split,
    Merge,
    CreateTable,
    DropTable,
    TruncateTable,
    BlockCreate,
    BlockClose,
    Unblock,
    CrashNode,
    RestartNode,
    CrashMaintainer,
    MoveMaintainer,
    Partition,
    Heal,
    Delay,
    Drop,
    Duplicate,
    HealMessages,
    // Motifs: short timelines shaped after faults the sweeps found, drawn less often than the
    // kinds above but heavily weighted when drawn, so a seed that has one repeats it.
    /// A merge whose node then goes silent (heartbeats lost or cut off) until it is given up.
    MergeCutOff,
    /// The maintainer fails over and comes back to an earlier host while that host's old
    /// bootstrap requests are still on the wire.
    ReturningMaintainer,
    /// A move whose first create is held back; the span moves on right after the resend built
    /// the dispatcher, before it made progress, so the late copy lands after it closed.
    MoveOnBeforeProgress,
    /// A move's destination crashes while the origin closes and comes back soon, with the
    /// removes and creates of the move reordered on the wire.
    DestBouncesWhileClosing,
    /// Every copy of a merge request held back until just past the maintainer's give-up, and
    /// the removes that follow the withdrawal held back too: the merge reaches the node after
    /// its merged id was removed there, before its sources are. Often the removes' resends are
    /// held back past the sources' placement again on the same node, and the heartbeats that
    /// would report the second close are lost; sometimes the maintainer is then cut off for
    /// long, and sometimes the same spans are merged again.
    MergeOvertakesWithdrawal,
    /// A merge taken up and handed over while its node is silent, so the maintainer gives it
    /// up and withdraws it; the merged dispatcher closes, the sources are placed again on the
    /// same node (the least loaded one), and a late copy of the merge request lands there. A
    /// node that joins meanwhile is where ranges go next.
    MergeCopyOutlivesAbandon,
    /// A move (of one span or a whole table) whose first removes are held back until the spans
    /// have moved back to their origin: the late copies close them there, the heartbeats
    /// reporting that are lost, and then either the maintainer is cut off for longer than three
    /// complete heartbeat rounds or the spans are merged at once (closed ones as sources).
    HeldRemoveClosesReturnedSpan,
    /// A node restarted empty (the least loaded, where spans go next) takes a span, loses it to
    /// a move whose first remove to it is held back, and takes it again: the held copy lands just
    /// after the new create and closes it before it progressed, so the create resent at that
    /// checkpoint is refused for good and the span must be placed again under a fresh id.
    BounceBeforeProgress,
    /// Barrier: ALTER TABLE (blocking where the table is split).
    AlterTable,
    /// Barrier: RENAME TABLE (the id changes), sometimes into another schema.
    RenameTable,
    /// Barrier: DROP DATABASE.
    DropDatabase,
    /// Barrier: ALTER DATABASE.
    AlterDatabase,
    /// Barrier: CREATE VIEW (an All-level DDL).
    CreateView,
    /// Barrier: the writer's downstream write held back on a node.
    BlockWrite,
    /// Load: a part of a table is written at a new rate (a hotspot appears, moves or cools).
    SetLoad,
    /// Load: a table's region count changes.
    SetRegions,
}

/// Drawn only when the timeline runs the barrier.
const BARRIER_FEATURES: [Feature; 6] = [
    Feature::AlterTable,
    Feature::RenameTable,
    Feature::DropDatabase,
    Feature::AlterDatabase,
    Feature::CreateView,
    Feature::BlockWrite,
];

/// The barrier phases a fault after a DDL aims at.
const BARRIER_PHASES: [Phase; 3] = [Phase::BarrierWaiting, Phase::BarrierWriting, Phase::BarrierPassing];

/// Schemas the barrier explorer spreads its tables over.
const SCHEMAS: i64 = 3;

/// Motifs: each on in a seed with probability 1/4, weight 2..=10.
const MOTIFS: [Feature; 8] = [
    Feature::MergeCutOff,
    Feature::ReturningMaintainer,
    Feature::MoveOnBeforeProgress,
    Feature::DestBouncesWhileClosing,
    Feature::MergeOvertakesWithdrawal,
    Feature::MergeCopyOutlivesAbandon,
    Feature::HeldRemoveClosesReturnedSpan,
    Feature::BounceBeforeProgress,
];

const FEATURES: [Feature; 19] = [
    Feature::Move,
    Feature::Split,
    Feature::Merge,
    Feature::CreateTable,
    Feature::DropTable,
    Feature::TruncateTable,
    Feature::BlockCreate,
    Feature::BlockClose,
    Feature::Unblock,
    Feature::CrashNode,
    Feature::RestartNode,
    Feature::CrashMaintainer,
    Feature::MoveMaintainer,
    Feature::Partition,
    Feature::Heal,
    Feature::Delay,
    Feature::Drop,
    Feature::Duplicate,
    Feature::HealMessages,
];

/// Faults that can be aimed at a phase.
const AIMED: [Feature; 8] = [
    Feature::CrashMaintainer,
    Feature::MoveMaintainer,
    Feature::CrashNode,
    Feature::BlockClose,
    Feature::BlockCreate,
    Feature::Partition,
    Feature::Drop,
    Feature::Duplicate,
];

/// The cluster as the generator tracks it (the simulator decides the rest).
struct Cluster {
    nodes: Vec<String>,
    alive: Vec<bool>,
    /// Where the maintainer runs (failover: the first live node, as the simulator does).
    host: usize,
    blocked: Vec<(String, What)>,
    live: Vec<(i64, usize)>,
    next_table: i64,
    /// DDLs travel through the barrier.
    barrier: bool,
    /// Each table's schema (barrier).
    schema_of: std::collections::BTreeMap<i64, i64>,
}

impl Cluster {
    fn up(&self) -> Vec<usize> {
        (0..self.alive.len()).filter(|i| self.alive[*i]).collect()
    }

    fn pick_node(&self, rng: &mut Rng) -> Option<String> {
        let up = self.up();
        up.get(rng.below(up.len())).map(|i| self.nodes[*i].clone())
    }

    fn kill(&mut self, i: usize) {
        self.alive[i] = false;
        let name = self.nodes[i].clone();
        self.blocked.retain(|(b, _)| *b != name);
        if i == self.host {
            self.host = self.alive.iter().position(|a| *a).unwrap_or(0);
        }
    }
}

/// One seed's draw.
struct Draw {
    weights: Vec<(Feature, u64)>,
    focus: Vec<i64>,
    /// Percent of operations followed by a phase-aimed fault.
    aim: u64,
    redo: bool,
    /// The load checker's round (load timelines).
    round_ms: u64,
}

impl Draw {
    fn has(&self, f: Feature) -> bool {
        self.weights.iter().any(|(g, _)| *g == f)
    }

    fn pick(&self, rng: &mut Rng) -> Feature {
        let total: u64 = self.weights.iter().map(|(_, w)| w).sum();
        let mut r = rng.range(0, total.saturating_sub(1));
        for (f, w) in &self.weights {
            if r < *w {
                return *f;
            }
            r -= w;
        }
        self.weights[0].0
    }
}

fn step(verb: Verb) -> Step {
    Step { line: 0, verb }
}

/// The timeline of `seed`. `shape` fixes nodes and tables when they are non-zero; otherwise the
/// seed draws them (2–8 nodes, 1–60 tables, up to 4 spans each, 6–30 operations).
pub fn generate(seed: u64, shape: Shape) -> Scenario {
    let mut rng = Rng::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed_5a4d);
    let nodes_n = if shape.nodes > 0 { shape.nodes } else { 2 + rng.below(7) };
    let tables_n = if shape.tables > 0 {
        shape.tables
    } else {
        match rng.below(10) {
            0..=4 => 1 + rng.below(6),
            5..=7 => 7 + rng.below(14),
            _ => 21 + rng.below(40),
        }
    };
    let max_spans = 1 + rng.below(4);
    let operations = 6 + rng.below(25);
    let nodes: Vec<String> = (1..=nodes_n).map(|i| format!("n{i}")).collect();
    let schema_of = |id: i64| if shape.barrier { 1 + id % SCHEMAS } else { 1 };
    let tables: Vec<TableSpec> = (1..=tables_n as i64)
        .map(|id| TableSpec {
            id,
            spans: 1 + rng.below(max_spans),
            schema: schema_of(id),
            regions: 1,
            bytes_per_s: Default::default(),
        })
        .collect();
    let mut tables = tables;
    let mut scheduler = super::scenario::SchedulerSpec::default();
    if shape.load {
        // Drawn only with load, so the other explorers' timelines stay as they were.
        for t in &mut tables {
            t.regions = 1 + rng.below(300) as u64;
            t.bytes_per_s = Num((rng.below(8) * MIB) as f64);
        }
        scheduler.enable_table_across_nodes = true;
        scheduler.write_key_threshold = [10, 20, 40][rng.below(3)] * MIB as u64;
        scheduler.region_threshold = [0, 100, 400, 10_000][rng.below(4)];
        scheduler.region_count_per_span = [10, 100][rng.below(2)];
        scheduler.check_balance_interval_ms = [1_000, 3_000, 15_000][rng.below(3)];
    }
    let redo = rng.chance(30);
    let balance = rng.chance(30);

    // The swarm draw: each feature on with probability 1/2 and a weight 1..=8; at least two on.
    let mut weights: Vec<(Feature, u64)> = Vec::new();
    for f in FEATURES {
        if rng.chance(50) {
            weights.push((f, rng.range(1, 8)));
        }
    }
    for f in MOTIFS {
        if rng.chance(25) {
            weights.push((f, rng.range(2, 10)));
        }
    }
    while weights.len() < 2 {
        let f = FEATURES[rng.below(FEATURES.len())];
        if !weights.iter().any(|(g, _)| *g == f) {
            weights.push((f, rng.range(1, 8)));
        }
    }
    let mut syncpoint_interval_ms = 0;
    if shape.barrier {
        for f in BARRIER_FEATURES {
            if rng.chance(50) {
                weights.push((f, rng.range(1, 8)));
            }
        }
        if rng.chance(40) {
            syncpoint_interval_ms = [1_000, 2_000, 5_000][rng.below(3)];
        }
    }
    if shape.load {
        weights.push((Feature::SetLoad, rng.range(4, 12)));
        weights.push((Feature::SetRegions, rng.range(1, 4)));
    }
    let focus_n = 1 + rng.below(3);
    let focus: Vec<i64> = (0..focus_n).map(|_| 1 + rng.below(tables_n) as i64).collect();
    let aim = [0, 20, 50, 80][rng.below(4)];
    let round_ms = scheduler.check_balance_interval_ms;
    let draw = Draw { weights, focus, aim, redo, round_ms };

    let mut c = Cluster {
        alive: vec![true; nodes.len()],
        nodes: nodes.clone(),
        host: 0,
        blocked: Vec::new(),
        live: tables.iter().map(|t| (t.id, t.spans)).collect(),
        next_table: tables_n as i64 + 1,
        barrier: shape.barrier,
        schema_of: tables.iter().map(|t| (t.id, t.schema)).collect(),
    };
    let mut steps = vec![step(Verb::Settle { max_ms: 60_000 })];
    for _ in 0..operations {
        let feature = draw.pick(&mut rng);
        let before = steps.len();
        let aimed_at = operation(&mut rng, &draw, &mut c, feature, &mut steps);
        if let Some(phases) = aimed_at.filter(|_| rng.chance(draw.aim)) {
            aimed_fault(&mut rng, &draw, &mut c, phases, &mut steps);
        }
        if steps.len() == before || rng.chance(80) {
            steps.push(step(Verb::Run { ms: gap(&mut rng) }));
        }
    }
    super::random::epilogue(&mut steps, std::mem::take(&mut c.blocked), &c.nodes, &c.alive, 180_000);
    Scenario {
        name: format!("swarm-{seed}"),
        maintainer: nodes[0].clone(),
        nodes,
        redo,
        balance,
        seed,
        syncpoint_interval_ms,
        scheduler,
        tables,
        steps,
    }
}

/// A pause between steps: often short (a window still open), sometimes long.
fn gap(rng: &mut Rng) -> u64 {
    match rng.below(10) {
        0..=3 => rng.range(0, 100),
        4..=7 => rng.range(100, 600),
        _ => rng.range(600, 2_000),
    }
}

fn table(rng: &mut Rng, draw: &Draw, c: &Cluster) -> Option<(i64, usize)> {
    if rng.chance(75) {
        let focused: Vec<(i64, usize)> =
            c.live.iter().filter(|(t, _)| draw.focus.contains(t)).copied().collect();
        if let Some(t) = focused.get(rng.below(focused.len())) {
            return Some(*t);
        }
    }
    c.live.get(rng.below(c.live.len())).copied()
}

fn mode(rng: &mut Rng, draw: &Draw) -> Mode {
    if draw.redo && rng.chance(35) {
        Mode::Redo
    } else {
        Mode::Default
    }
}

/// Appends the steps of one operation or fault; returns the phases a follow-up fault may aim at.
fn operation(
    rng: &mut Rng,
    draw: &Draw,
    c: &mut Cluster,
    feature: Feature,
    steps: &mut Vec<Step>,
) -> Option<&'static [Phase]> {
    let mode = mode(rng, draw);
    match feature {
        Feature::Move => {
            let (table, spans) = table(rng, draw, c)?;
            let to = c.pick_node(rng)?;
            let span = if rng.chance(30) { None } else { Some(rng.below(spans.max(1))) };
            // A create held back on the wire past its resend (the resend gets through first).
            if rng.chance(40) {
                let kind = Some(MessageKind::ScheduleDispatcherRequest);
                let (dest, ms) = (Some(to.clone()), rng.range(600, 3_000));
                steps.push(step(Verb::DelayMessages { kind, from: None, to: dest, ms, count: Some(1) }));
            }
            if rng.chance(20) {
                // Resent removes and creates overtaking each other on the wire.
                let kind = Some(MessageKind::ScheduleDispatcherRequest);
                let (count, ms) = (rng.range(2, 8) as u32, rng.range(30, 400));
                steps.push(step(Verb::DelayMessages { kind, from: None, to: None, ms, count: Some(count) }));
            }
            steps.push(step(Verb::Move { table, span, to: to.clone(), mode }));
            // ... and the span moves on before the late copy lands, sometimes before the new
            // dispatcher made any progress.
            if rng.chance(45) {
                if let Some(next) = c.pick_node(rng) {
                    // Often just after a resent create (500 ms apart) built the dispatcher.
                    let ms = match rng.below(3) {
                        0 => rng.range(480, 760),
                        1 => rng.range(30, 480),
                        _ => rng.range(760, 1_500),
                    };
                    steps.push(step(Verb::Run { ms }));
                    steps.push(step(Verb::Move { table, span, to: next, mode }));
                }
            } else if rng.chance(40) {
                move_interrupted(rng, c, to, steps);
                return None;
            }
            Some(&[Phase::MoveRemoveOrigin, Phase::NodeClosing, Phase::MoveAddDest, Phase::NodeCreating])
        }
        Feature::Split => {
            let (table, spans) = table(rng, draw, c)?;
            let span = Some(rng.below(spans.max(1)));
            let into = 2 + rng.below(2);
            steps.push(step(Verb::Split { table, span, into, mode }));
            if let Some(entry) = c.live.iter_mut().find(|(t, _)| *t == table) {
                entry.1 += into - 1;
            }
            Some(&[Phase::SplitRemoving, Phase::NodeClosing, Phase::AddCreating, Phase::NodeCreating])
        }
        Feature::Merge => {
            let (table, spans) = table(rng, draw, c)?;
            let (spans, on) = side_by_side(rng, c, table, spans, mode, 50, steps)?;
            if rng.chance(20) {
                // The merge request held back or repeated on the wire.
                let kind = Some(MessageKind::MergeDispatcherRequest);
                let count = 1 + rng.below(8) as u32;
                // Half the time near the maintainer's give-up point for an unanswered merge
                // (5 sends, 500 ms apart in the simulator): the boundary where races live.
                let near_bound = rng.chance(50);
                let ms = if near_bound { rng.range(2_200, 3_200) } else { rng.range(300, 4_000) };
                steps.push(step(if rng.chance(50) {
                    Verb::DuplicateMessages { kind, from: None, to: None, count }
                } else {
                    Verb::DelayMessages { kind, from: None, to: None, ms, count: Some(count) }
                }));
                if near_bound && rng.chance(50) {
                    // The withdrawal's removes held back too, so a late merge copy can run first.
                    let kind = Some(MessageKind::ScheduleDispatcherRequest);
                    let (count, ms) = (rng.range(3, 10) as u32, rng.range(50, 800));
                    steps.push(step(Verb::DelayMessages {
                        kind,
                        from: None,
                        to: None,
                        ms,
                        count: Some(count),
                    }));
                }
            }
            merge(rng, c, table, spans, mode, steps);
            if rng.chance(60) {
                merge_interrupted(rng, c, table, on, steps);
                return None;
            }
            Some(&[
                Phase::MergeMerging,
                Phase::NodeMergePreparing,
                Phase::NodeMergeDraining,
                Phase::NodeMergeHandedOver,
                Phase::MergeWithdrawing,
            ])
        }
        Feature::MergeCutOff => {
            let (table, spans) = table(rng, draw, c)?;
            let (spans, on) = side_by_side(rng, c, table, spans, mode, 0, steps)?;
            merge(rng, c, table, spans, mode, steps);
            let phases = [Phase::NodeMergePreparing, Phase::NodeMergeDraining, Phase::MergeMerging];
            let phase = phases[rng.below(phases.len())];
            steps.push(step(Verb::RunUntil { phase, max_ms: rng.range(300, 2_000) }));
            // Silent for several heartbeat periods up to well past the merge's send bound.
            if rng.chance(50) {
                let (kind, count) = (Some(MessageKind::HeartBeatRequest), rng.range(8, 30) as u32);
                steps.push(step(Verb::DropMessages { kind, from: on, to: None, count }));
            } else if let Some(on) = on {
                steps.push(step(Verb::Partition { nodes: vec![on] }));
                steps.push(step(Verb::Run { ms: rng.range(2_000, 7_000) }));
                steps.push(step(Verb::Heal));
            }
            steps.push(step(Verb::Run { ms: rng.range(1_000, 4_000) }));
            None
        }
        Feature::MergeOvertakesWithdrawal => {
            let (table, spans) = table(rng, draw, c)?;
            let (spans, on) = side_by_side(rng, c, table, spans, mode, 0, steps)?;
            // The maintainer gives an unanswered merge up after 5 sends 500 ms apart (the
            // simulator's settings): copies held back a little longer all land after that.
            let kind = Some(MessageKind::MergeDispatcherRequest);
            let (ms, count) = (rng.range(2_450, 2_850), rng.range(5, 8) as u32);
            steps.push(step(Verb::DelayMessages { kind, from: None, to: None, ms, count: Some(count) }));
            merge(rng, c, table, spans, mode, steps);
            steps.push(step(Verb::RunUntil { phase: Phase::MergeWithdrawing, max_ms: 4_000 }));
            let kind = Some(MessageKind::ScheduleDispatcherRequest);
            let (ms, count) = (rng.range(200, 1_000), rng.range(2, 4) as u32);
            steps.push(step(Verb::DelayMessages { kind, from: None, to: None, ms, count: Some(count) }));
            if rng.chance(65) {
                // The held-back copies are the removes' resends (500 ms after the first sends,
                // which close the sources); they land after the sources were placed again on the
                // same node under the same ids and close them again. The heartbeats that would
                // report those closes are lost.
                steps.push(step(Verb::Run { ms: ms + rng.range(450, 750) }));
                let (kind, count) = (Some(MessageKind::HeartBeatRequest), rng.range(2, 4) as u32);
                steps.push(step(Verb::DropMessages { kind, from: on, to: None, count }));
            }
            steps.push(step(Verb::Run { ms: rng.range(500, 2_000) }));
            if rng.chance(35) {
                // The maintainer cut off for long right after: the Stopped of a source closed by a
                // held-back remove, and every repeat of it, can be lost with its heartbeats.
                let host = c.nodes[c.host].clone();
                steps.push(step(Verb::Partition { nodes: vec![host] }));
                steps.push(step(Verb::Run { ms: rng.range(25_000, 45_000) }));
                steps.push(step(Verb::Heal));
            }
            if rng.chance(50) {
                // The same spans merged again: a source closed behind the maintainer's back is
                // met here.
                merge(rng, c, table, spans, mode, steps);
                steps.push(step(Verb::Run { ms: rng.range(1_000, 3_000) }));
            }
            None
        }
        Feature::MergeCopyOutlivesAbandon => {
            merge_copy_outlives_abandon(rng, draw, c, mode, steps);
            None
        }
        Feature::HeldRemoveClosesReturnedSpan => {
            held_remove_closes_returned_span(rng, draw, c, mode, steps);
            None
        }
        Feature::BounceBeforeProgress => {
            bounce_before_progress(rng, draw, c, mode, steps);
            None
        }
        Feature::ReturningMaintainer => {
            returning_maintainer(rng, c, steps);
            None
        }
        Feature::MoveOnBeforeProgress => {
            let (table, spans) = table(rng, draw, c)?;
            let span = Some(rng.below(spans.max(1)));
            let to = c.pick_node(rng)?;
            let kind = Some(MessageKind::ScheduleDispatcherRequest);
            let (dest, ms) = (Some(to.clone()), rng.range(700, 2_000));
            steps.push(step(Verb::DelayMessages { kind, from: None, to: dest, ms, count: Some(1) }));
            steps.push(step(Verb::Move { table, span, to: to.clone(), mode }));
            // The first create to run is the resend's; the dispatcher works a few ms later and
            // first progresses at its node's next heartbeat period.
            steps.push(step(Verb::RunUntil { phase: Phase::NodeCreating, max_ms: rng.range(600, 1_500) }));
            steps.push(step(Verb::Run { ms: rng.range(0, 120) }));
            let others: Vec<String> =
                c.up().into_iter().map(|i| c.nodes[i].clone()).filter(|n| *n != to).collect();
            let next = others.get(rng.below(others.len())).cloned().unwrap_or(to);
            steps.push(step(Verb::Move { table, span, to: next, mode }));
            None
        }
        Feature::DestBouncesWhileClosing => {
            let (table, spans) = table(rng, draw, c)?;
            let span = Some(rng.below(spans.max(1)));
            let to = c.pick_node(rng)?;
            if rng.chance(70) {
                let kind = Some(MessageKind::ScheduleDispatcherRequest);
                let (count, ms) = (rng.range(2, 6) as u32, rng.range(30, 200));
                steps.push(step(Verb::DelayMessages { kind, from: None, to: None, ms, count: Some(count) }));
            }
            steps.push(step(Verb::Move { table, span, to: to.clone(), mode }));
            steps.push(step(Verb::RunUntil { phase: Phase::NodeClosing, max_ms: rng.range(200, 1_000) }));
            let i = index(c, &to);
            if c.up().len() > 1 && c.alive[i] {
                c.kill(i);
                steps.push(step(Verb::CrashNode { node: to.clone() }));
                steps.push(step(Verb::Run { ms: rng.range(20, 250) }));
                c.alive[i] = true;
                steps.push(step(Verb::RestartNode { node: to }));
            }
            None
        }
        Feature::CreateTable => {
            let t = c.next_table;
            c.next_table += 1;
            let spans = 1 + rng.below(3);
            c.live.push((t, spans));
            c.schema_of.insert(t, 1);
            steps.push(step(Verb::CreateTable { table: t, spans }));
            Some(&[Phase::AddCreating, Phase::NodeCreating])
        }
        Feature::DropTable => {
            let (t, _) = table(rng, draw, c)?;
            c.live.retain(|(x, _)| *x != t);
            steps.push(step(Verb::DropTable { table: t }));
            if c.barrier {
                return Some(&BARRIER_PHASES);
            }
            Some(&[Phase::RemoveRemoving, Phase::NodeClosing])
        }
        Feature::TruncateTable => {
            let (t, _) = table(rng, draw, c)?;
            c.live.retain(|(x, _)| *x != t);
            let new_table = c.next_table;
            c.next_table += 1;
            c.live.push((new_table, 1));
            let schema = c.schema_of.get(&t).copied().unwrap_or(1);
            c.schema_of.insert(new_table, schema);
            steps.push(step(Verb::TruncateTable { table: t, new_table }));
            if c.barrier {
                return Some(&BARRIER_PHASES);
            }
            Some(&[Phase::RemoveRemoving, Phase::AddCreating, Phase::NodeClosing])
        }
        Feature::AlterTable => {
            let (table, _) = table(rng, draw, c)?;
            steps.push(step(Verb::AlterTable { table }));
            Some(&BARRIER_PHASES)
        }
        Feature::RenameTable => {
            let (t, _) = table(rng, draw, c)?;
            c.live.retain(|(x, _)| *x != t);
            let new_table = c.next_table;
            c.next_table += 1;
            c.live.push((new_table, 1));
            let schema = rng.chance(30).then(|| 1 + rng.below(SCHEMAS as usize) as i64);
            let old = c.schema_of.get(&t).copied().unwrap_or(1);
            c.schema_of.insert(new_table, schema.unwrap_or(old));
            steps.push(step(Verb::RenameTable { table: t, new_table, schema }));
            Some(&BARRIER_PHASES)
        }
        Feature::DropDatabase => {
            let schema = 1 + rng.below(SCHEMAS as usize) as i64;
            let schema_of = &c.schema_of;
            c.live.retain(|(t, _)| schema_of.get(t).copied().unwrap_or(1) != schema);
            steps.push(step(Verb::DropDatabase { schema }));
            Some(&BARRIER_PHASES)
        }
        Feature::AlterDatabase => {
            let schema = 1 + rng.below(SCHEMAS as usize) as i64;
            steps.push(step(Verb::AlterDatabase { schema }));
            Some(&BARRIER_PHASES)
        }
        Feature::CreateView => {
            steps.push(step(Verb::CreateView));
            Some(&BARRIER_PHASES)
        }
        Feature::BlockWrite => {
            let node = c.pick_node(rng)?;
            c.blocked.push((node.clone(), What::Write));
            steps.push(step(Verb::Block { node, what: What::Write }));
            None
        }
        Feature::BlockCreate | Feature::BlockClose => {
            let node = c.pick_node(rng)?;
            let what = if feature == Feature::BlockCreate { What::Create } else { What::Close };
            c.blocked.push((node.clone(), what));
            steps.push(step(Verb::Block { node, what }));
            None
        }
        Feature::Unblock => {
            if c.blocked.is_empty() {
                return None;
            }
            let (node, what) = c.blocked.remove(rng.below(c.blocked.len()));
            steps.push(step(Verb::Unblock { node, what }));
            None
        }
        Feature::CrashNode => {
            crash_node(rng, c, steps);
            Some(&[Phase::Bootstrapping])
        }
        Feature::RestartNode => {
            let down: Vec<usize> = (0..c.alive.len()).filter(|i| !c.alive[*i]).collect();
            let i = *down.get(rng.below(down.len()))?;
            c.alive[i] = true;
            steps.push(step(Verb::RestartNode { node: c.nodes[i].clone() }));
            None
        }
        Feature::CrashMaintainer | Feature::MoveMaintainer => {
            failover_storm(rng, c, feature == Feature::CrashMaintainer, steps);
            Some(&[Phase::Bootstrapping])
        }
        Feature::Partition => {
            let cut: Vec<String> = c.nodes.iter().filter(|_| rng.chance(40)).cloned().collect();
            if cut.is_empty() || cut.len() == c.nodes.len() {
                return None;
            }
            steps.push(step(Verb::Partition { nodes: cut }));
            None
        }
        Feature::Heal => {
            steps.push(step(Verb::Heal));
            None
        }
        Feature::Delay | Feature::Drop | Feature::Duplicate => {
            steps.push(step(message_fault(rng, c, feature)));
            None
        }
        Feature::HealMessages => {
            steps.push(step(Verb::HealMessages));
            None
        }
        Feature::SetLoad => {
            let (table, _) = table(rng, draw, c)?;
            // A part on a grid of eighths (sometimes the whole table), a rate from idle to far
            // past any threshold drawn.
            let (from, to) = if rng.chance(30) {
                (0, 8)
            } else {
                let a = rng.below(8);
                (a, a + 1 + rng.below(8 - a))
            };
            let bytes = [0, 1, 5, 30, 100, 300][rng.below(6)] * MIB;
            steps.push(step(Verb::SetLoad {
                table,
                bytes_per_s: Num(bytes as f64),
                from: Num(from as f64 / 8.0),
                to: Num(to as f64 / 8.0),
            }));
            // Long enough for the checker to see full windows and act, often.
            steps.push(step(Verb::Run { ms: rng.range(1, 5) * draw.round_ms }));
            Some(&[Phase::SplitRemoving, Phase::MoveRemoveOrigin, Phase::MergeMerging])
        }
        Feature::SetRegions => {
            let (table, _) = table(rng, draw, c)?;
            let count = [1, 50, 200, 1_000][rng.below(4)] as u64;
            steps.push(step(Verb::SetRegions { table, count }));
            steps.push(step(Verb::Run { ms: rng.range(1, 5) * draw.round_ms }));
            Some(&[Phase::SplitRemoving, Phase::MoveRemoveOrigin])
        }
    }
}

const MIB: usize = 1024 * 1024;
