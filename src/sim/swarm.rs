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
use super::scenario::{Scenario, Step, TableSpec, Verb, What, TRAVELLING_KINDS};

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
}

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
    let tables: Vec<TableSpec> =
        (1..=tables_n as i64).map(|id| TableSpec { id, spans: 1 + rng.below(max_spans) }).collect();
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
    let focus_n = 1 + rng.below(3);
    let focus: Vec<i64> = (0..focus_n).map(|_| 1 + rng.below(tables_n) as i64).collect();
    let aim = [0, 20, 50, 80][rng.below(4)];
    let draw = Draw { weights, focus, aim, redo };

    let mut c = Cluster {
        alive: vec![true; nodes.len()],
        nodes: nodes.clone(),
        host: 0,
        blocked: Vec::new(),
        live: tables.iter().map(|t| (t.id, t.spans)).collect(),
        next_table: tables_n as i64 + 1,
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
            steps.push(step(Verb::CreateTable { table: t, spans }));
            Some(&[Phase::AddCreating, Phase::NodeCreating])
        }
        Feature::DropTable => {
            let (t, _) = table(rng, draw, c)?;
            c.live.retain(|(x, _)| *x != t);
            steps.push(step(Verb::DropTable { table: t }));
            Some(&[Phase::RemoveRemoving, Phase::NodeClosing])
        }
        Feature::TruncateTable => {
            let (t, _) = table(rng, draw, c)?;
            c.live.retain(|(x, _)| *x != t);
            let new_table = c.next_table;
            c.next_table += 1;
            c.live.push((new_table, 1));
            steps.push(step(Verb::TruncateTable { table: t, new_table }));
            Some(&[Phase::RemoveRemoving, Phase::AddCreating, Phase::NodeClosing])
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
    }
}

/// `run_until` one of `phases`, then a fault drawn from the seed's enabled faults.
fn aimed_fault(rng: &mut Rng, draw: &Draw, c: &mut Cluster, phases: &[Phase], steps: &mut Vec<Step>) {
    let phase = phases[rng.below(phases.len())];
    steps.push(step(Verb::RunUntil { phase, max_ms: rng.range(500, 4_000) }));
    let enabled: Vec<Feature> = AIMED.iter().copied().filter(|f| draw.has(*f)).collect();
    let fault = if enabled.is_empty() {
        [Feature::CrashMaintainer, Feature::MoveMaintainer][rng.below(2)]
    } else {
        enabled[rng.below(enabled.len())]
    };
    match fault {
        Feature::CrashMaintainer => crash_maintainer(c, steps),
        Feature::MoveMaintainer => {
            if let Some(to) = c.pick_node(rng) {
                c.host = index(c, &to);
                steps.push(step(Verb::MoveMaintainer { to }));
            }
        }
        Feature::CrashNode => crash_node(rng, c, steps),
        Feature::BlockClose | Feature::BlockCreate => {
            if let Some(node) = c.pick_node(rng) {
                let what = if fault == Feature::BlockCreate { What::Create } else { What::Close };
                c.blocked.push((node.clone(), what));
                steps.push(step(Verb::Block { node, what }));
            }
        }
        Feature::Partition => {
            if let Some(node) = c.pick_node(rng) {
                steps.push(step(Verb::Partition { nodes: vec![node] }));
            }
        }
        other => steps.push(step(message_fault(rng, c, other))),
    }
}

/// Makes `table` mergeable: split first when it has one span, then (unless the 5% draw leaves
/// it spread out) gather it on one node, whose closes are then blocked `block_pct` of the time
/// so the merge drains as long as they stay blocked. Returns its span count and that node.
fn side_by_side(
    rng: &mut Rng,
    c: &mut Cluster,
    table: i64,
    spans: usize,
    mode: Mode,
    block_pct: u64,
    steps: &mut Vec<Step>,
) -> Option<(usize, Option<String>)> {
    let spans = at_least_two_spans(rng, c, table, spans, mode, steps);
    let mut on = None;
    if rng.chance(95) {
        let to = c.pick_node(rng)?;
        steps.push(step(Verb::Move { table, span: None, to: to.clone(), mode }));
        steps.push(step(Verb::Run { ms: rng.range(300, 1_200) }));
        if rng.chance(block_pct) {
            c.blocked.push((to.clone(), What::Close));
            steps.push(step(Verb::Block { node: to.clone(), what: What::Close }));
        }
        on = Some(to);
    }
    Some((spans, on))
}

/// Splits span 0 of a one-span `table` into two or three; the table's span count after.
fn at_least_two_spans(
    rng: &mut Rng,
    c: &mut Cluster,
    table: i64,
    spans: usize,
    mode: Mode,
    steps: &mut Vec<Step>,
) -> usize {
    if spans >= 2 {
        return spans;
    }
    let into = 2 + rng.below(2);
    steps.push(step(Verb::Split { table, span: Some(0), into, mode }));
    steps.push(step(Verb::Run { ms: rng.range(300, 900) }));
    if let Some(entry) = c.live.iter_mut().find(|(t, _)| *t == table) {
        entry.1 = into;
    }
    into
}

/// A merge of two (sometimes three) adjacent spans of `table`.
fn merge(rng: &mut Rng, c: &mut Cluster, table: i64, spans: usize, mode: Mode, steps: &mut Vec<Step>) {
    let width = if spans >= 3 && rng.chance(25) { 3 } else { 2 };
    let first = rng.below(spans.saturating_sub(width - 1).max(1));
    let spans_at: Vec<usize> = (first..first + width).collect();
    steps.push(step(Verb::Merge { table, spans: spans_at, mode }));
    if let Some(entry) = c.live.iter_mut().find(|(t, _)| *t == table) {
        entry.1 = entry.1.saturating_sub(width - 1).max(1);
    }
}

/// The maintainer leaves a host and comes back to it within the hold-back of that host's
/// bootstrap requests: a failover to B (those requests held back), a move to C, then back to B
/// (C crashes when B would be its successor, or the maintainer is moved).
/// See [`Feature::MergeCopyOutlivesAbandon`].
fn merge_copy_outlives_abandon(
    rng: &mut Rng,
    draw: &Draw,
    c: &mut Cluster,
    mode: Mode,
    steps: &mut Vec<Step>,
) {
    // A node other than the maintainer's host is down first, to join again later (empty, so
    // the least loaded).
    let spare = c.up().into_iter().filter(|i| *i != c.host).nth(1).filter(|_| c.up().len() >= 3);
    if let Some(x) = spare {
        c.kill(x);
        steps.push(step(Verb::CrashNode { node: c.nodes[x].clone() }));
        steps.push(step(Verb::Run { ms: rng.range(800, 2_000) }));
    }
    let Some((table, spans)) = table(rng, draw, c) else { return };
    let Some((spans, Some(on))) = side_by_side(rng, c, table, spans, mode, 0, steps) else { return };
    // Everything else away from the merge's node, so the evicted sources come back to it.
    let others: Vec<String> = c.up().into_iter().map(|i| c.nodes[i].clone()).filter(|n| *n != on).collect();
    if !others.is_empty() {
        let tables: Vec<i64> = c.live.iter().map(|(t, _)| *t).filter(|t| *t != table).take(8).collect();
        for t in tables {
            let to = others[rng.below(others.len())].clone();
            steps.push(step(Verb::Move { table: t, span: None, to, mode }));
        }
        steps.push(step(Verb::Run { ms: rng.range(1_000, 2_500) }));
    }
    // The first copy of the merge request goes through; the resends are held back past the
    // maintainer's give-up (5 sends, 500 ms apart in the simulator) and the re-placement.
    let kind = Some(MessageKind::MergeDispatcherRequest);
    steps.push(step(Verb::DelayMessages { kind, from: None, to: None, ms: 1, count: Some(1) }));
    let ms = rng.range(2_000, 4_500);
    steps.push(step(Verb::DelayMessages { kind, from: None, to: None, ms, count: Some(6) }));
    merge(rng, c, table, spans, mode, steps);
    steps.push(step(Verb::RunUntil { phase: Phase::NodeMergePreparing, max_ms: 1_000 }));
    // Silent until the give-up; heard again at once, so the merged dispatcher's Stopped arrives
    // before the withdrawal's remove is resent.
    let (kind, count) = (Some(MessageKind::HeartBeatRequest), 30);
    steps.push(step(Verb::DropMessages { kind, from: Some(on), to: None, count }));
    steps.push(step(Verb::RunUntil { phase: Phase::MergeWithdrawing, max_ms: 4_000 }));
    steps.push(step(Verb::HealMessages));
    steps.push(step(Verb::Run { ms: rng.range(300, 1_000) }));
    if let Some(x) = spare {
        c.alive[x] = true;
        steps.push(step(Verb::RestartNode { node: c.nodes[x].clone() }));
    }
    steps.push(step(Verb::Run { ms: rng.range(2_000, 5_000) }));
    if rng.chance(50) {
        // The same spans merged again: whatever the first merge left behind is met here.
        merge(rng, c, table, spans, mode, steps);
        steps.push(step(Verb::Run { ms: rng.range(1_000, 3_000) }));
    }
}

/// See [`Feature::HeldRemoveClosesReturnedSpan`].
fn held_remove_closes_returned_span(
    rng: &mut Rng,
    draw: &Draw,
    c: &mut Cluster,
    mode: Mode,
    steps: &mut Vec<Step>,
) {
    let Some((table, spans)) = table(rng, draw, c) else { return };
    let Some(a) = c.pick_node(rng) else { return };
    let others: Vec<String> = c.up().into_iter().map(|i| c.nodes[i].clone()).filter(|n| *n != a).collect();
    let spans = at_least_two_spans(rng, c, table, spans, mode, steps);
    let Some(b) = others.get(rng.below(others.len())).cloned() else { return };
    steps.push(step(Verb::Move { table, span: None, to: a.clone(), mode }));
    steps.push(step(Verb::Run { ms: rng.range(1_000, 2_000) }));
    // The move's first remove held back; its resend (500 ms later) carries the move through.
    let s = rng.below(spans.max(1));
    // One span, or the whole table (every remove held back: no span of it stays Working there).
    let whole = rng.chance(60);
    let (span, count) = if whole { (None, spans as u32) } else { (Some(s), 1) };
    let kind = Some(MessageKind::ScheduleDispatcherRequest);
    let held = rng.range(3_000, 4_000);
    steps.push(step(Verb::DelayMessages {
        kind,
        from: None,
        to: Some(a.clone()),
        ms: held,
        count: Some(count),
    }));
    steps.push(step(Verb::Move { table, span, to: b, mode }));
    // Back once the move is through: often after the span progressed on `b`, sometimes at once
    // (before it did, so the create on `a` starts where the span stopped there).
    let back = if rng.chance(30) { rng.range(550, 750) } else { rng.range(1_700, 2_000) };
    steps.push(step(Verb::Run { ms: back }));
    steps.push(step(Verb::Move { table, span, to: a.clone(), mode }));
    // Back on `a` before the held copy lands.
    steps.push(step(Verb::Run { ms: (held - back).saturating_sub(rng.range(200, 700)) }));
    let kind = Some(MessageKind::HeartBeatRequest);
    if rng.chance(50) || spans < 2 {
        // The heartbeats reporting the close lost, then the maintainer cut off for longer than
        // three complete rounds.
        steps.push(step(Verb::DropMessages {
            kind,
            from: Some(a),
            to: None,
            count: rng.range(10, 25) as u32,
        }));
        steps.push(step(Verb::Run { ms: rng.range(800, 1_500) }));
        let host = c.nodes[c.host].clone();
        steps.push(step(Verb::Partition { nodes: vec![host] }));
        steps.push(step(Verb::Run { ms: rng.range(30_000, 45_000) }));
        steps.push(step(Verb::Heal));
    } else {
        // The heartbeats reporting the close lost (held back, they would be dropped as
        // reordered); the closed span and its neighbour merged before a complete round repeats
        // the Stopped, which may land while the merge is being asked.
        steps.push(step(Verb::DropMessages { kind, from: Some(a), to: None, count: rng.range(3, 6) as u32 }));
        steps.push(step(Verb::Run { ms: rng.range(300, 1_200) }));
        let first = if s + 1 < spans { s } else { s - 1 };
        steps.push(step(Verb::Merge { table, spans: vec![first, first + 1], mode }));
        if let Some(entry) = c.live.iter_mut().find(|(t, _)| *t == table) {
            entry.1 = entry.1.saturating_sub(1).max(1);
        }
        steps.push(step(Verb::Run { ms: rng.range(3_000, 5_000) }));
    }
}

/// See [`Feature::BounceBeforeProgress`].
fn bounce_before_progress(rng: &mut Rng, draw: &Draw, c: &mut Cluster, mode: Mode, steps: &mut Vec<Step>) {
    let up = c.up();
    let Some(a) = up.iter().copied().find(|i| *i != c.host) else { return };
    let Some(b) = up.iter().copied().rev().find(|i| *i != a) else { return };
    let (a, b) = (c.nodes[a].clone(), c.nodes[b].clone());
    // `a` restarts and joins with nothing on it: the least loaded node, where spans go next.
    let i = index(c, &a);
    c.kill(i);
    steps.push(step(Verb::CrashNode { node: a.clone() }));
    steps.push(step(Verb::Run { ms: rng.range(300, 1_500) }));
    c.alive[i] = true;
    steps.push(step(Verb::RestartNode { node: a.clone() }));
    steps.push(step(Verb::Run { ms: rng.range(1_000, 3_000) }));
    let Some((table, spans)) = table(rng, draw, c) else { return };
    let span = Some(rng.below(spans.max(1)));
    steps.push(step(Verb::Move { table, span, to: a.clone(), mode }));
    steps.push(step(Verb::Run { ms: rng.range(1_000, 2_000) }));
    // Away to `b` with the first remove to `a` held back (its resend, 500 ms later, carries the
    // move through), and back to `a`: the held copy lands just after the create there, often
    // before `a`'s next heartbeat period (200 ms) moved the new dispatcher's checkpoint, so it
    // closes where it started. The create resent at that checkpoint is refused for good, and
    // the span must be placed again under a fresh id.
    let away = rng.range(1_500, 2_000);
    let kind = Some(MessageKind::ScheduleDispatcherRequest);
    let (to, ms) = (Some(a.clone()), away + rng.range(100, 260));
    steps.push(step(Verb::DelayMessages { kind, from: None, to, ms, count: Some(1) }));
    steps.push(step(Verb::Move { table, span, to: b, mode }));
    steps.push(step(Verb::Run { ms: away }));
    steps.push(step(Verb::Move { table, span, to: a, mode }));
    steps.push(step(Verb::Run { ms: rng.range(1_500, 3_000) }));
}

fn returning_maintainer(rng: &mut Rng, c: &mut Cluster, steps: &mut Vec<Step>) {
    if c.up().len() < 3 {
        return;
    }
    // Where the first failover lands: the first live node after the host (a crash), or any
    // other live node (a move).
    let crash = rng.chance(50);
    let b = if crash {
        c.up().into_iter().find(|i| *i != c.host)
    } else {
        let others: Vec<usize> = c.up().into_iter().filter(|i| *i != c.host).collect();
        others.get(rng.below(others.len())).copied()
    };
    let Some(b) = b else { return };
    if rng.chance(70) {
        // On a quiet network: earlier cuts and message faults would decide the race instead.
        steps.push(step(Verb::Heal));
        steps.push(step(Verb::HealMessages));
    }
    // B's requests to itself (and, with a count above one, the next owner's to B) held back.
    let kind = Some(MessageKind::MaintainerBootstrapRequest);
    let to = if rng.chance(80) { Some(c.nodes[b].clone()) } else { None };
    let (hold, count) = (rng.range(900, 2_000), rng.range(2, 5) as u32);
    steps.push(step(Verb::DelayMessages { kind, from: None, to, ms: hold, count: Some(count) }));
    if crash {
        crash_maintainer(c, steps);
    } else {
        c.host = b;
        steps.push(step(Verb::MoveMaintainer { to: c.nodes[b].clone() }));
    }
    let others: Vec<usize> = c.up().into_iter().filter(|i| *i != b).collect();
    let Some(&cc) = others.get(rng.below(others.len())) else { return };
    // B stays long enough to resend its requests (500 ms apart in the simulator), so more than
    // one copy is held back.
    let away = if rng.chance(70) { rng.range(520, 900) } else { rng.range(150, 800) };
    steps.push(step(Verb::Run { ms: away }));
    c.host = cc;
    steps.push(step(Verb::MoveMaintainer { to: c.nodes[cc].clone() }));
    // Mostly back just as the held-back resend lands at B, so it arrives between B's terms.
    let back = if rng.chance(70) {
        (hold + rng.range(480, 640)).saturating_sub(away)
    } else {
        rng.range(150, 1_500)
    };
    steps.push(step(Verb::Run { ms: back }));
    let successor = c.up().into_iter().find(|i| *i != cc);
    if successor == Some(b) && rng.chance(60) {
        crash_maintainer(c, steps);
    } else {
        c.host = b;
        steps.push(step(Verb::MoveMaintainer { to: c.nodes[b].clone() }));
    }
    steps.push(step(Verb::Run { ms: rng.range(500, 2_000) }));
}

/// A merge interrupted at one of its phases: the maintainer fails over (sometimes twice), the
/// merge node is cut off or loses its heartbeats (so nothing acknowledges the merge), the table
/// is dropped, or the node dies. Then time passes, long enough for resend bounds to run out.
fn merge_interrupted(rng: &mut Rng, c: &mut Cluster, table: i64, on: Option<String>, steps: &mut Vec<Step>) {
    const PHASES: [Phase; 5] = [
        Phase::NodeMergePreparing,
        Phase::NodeMergeDraining,
        Phase::MergeMerging,
        Phase::NodeMergeHandedOver,
        Phase::MergeWithdrawing,
    ];
    let reach = if rng.chance(80) { 3 } else { PHASES.len() };
    let phase = PHASES[rng.below(reach)];
    steps.push(step(Verb::RunUntil { phase, max_ms: rng.range(300, 4_000) }));
    let node = on.or_else(|| c.pick_node(rng));
    match rng.below(8) {
        0 | 1 => crash_maintainer(c, steps),
        2 | 3 => {
            if let Some(to) = c.pick_node(rng) {
                c.host = index(c, &to);
                steps.push(step(Verb::MoveMaintainer { to }));
            }
        }
        4 => {
            if let Some(node) = node {
                steps.push(step(Verb::Partition { nodes: vec![node] }));
                steps.push(step(Verb::Run { ms: rng.range(1_000, 6_000) }));
                steps.push(step(Verb::Heal));
            }
        }
        5 => {
            let count = rng.range(5, 40) as u32;
            let kind = Some(MessageKind::HeartBeatRequest);
            steps.push(step(Verb::DropMessages { kind, from: node, to: None, count }));
        }
        6 => {
            c.live.retain(|(t, _)| *t != table);
            steps.push(step(Verb::DropTable { table }));
        }
        _ => {
            if let Some(node) = node {
                let i = index(c, &node);
                if c.up().len() > 1 && c.alive[i] {
                    c.kill(i);
                    steps.push(step(Verb::CrashNode { node }));
                }
            }
        }
    }
    if rng.chance(30) {
        steps.push(step(Verb::Run { ms: rng.range(0, 1_500) }));
        crash_maintainer(c, steps);
    }
    steps.push(step(Verb::Run { ms: rng.range(500, 4_000) }));
}

/// A move interrupted where it hurts: the destination crashes or is cut off while the origin
/// closes or the create is in flight, sometimes coming back soon (so the span may be placed on
/// the same nodes again), or the maintainer fails over.
fn move_interrupted(rng: &mut Rng, c: &mut Cluster, dest: String, steps: &mut Vec<Step>) {
    const PHASES: [Phase; 4] =
        [Phase::MoveRemoveOrigin, Phase::NodeClosing, Phase::MoveAddDest, Phase::NodeCreating];
    let phase = PHASES[rng.below(PHASES.len())];
    steps.push(step(Verb::RunUntil { phase, max_ms: rng.range(200, 2_000) }));
    match rng.below(4) {
        0 | 1 => {
            let i = index(c, &dest);
            if c.up().len() > 1 && c.alive[i] {
                c.kill(i);
                steps.push(step(Verb::CrashNode { node: dest.clone() }));
                if rng.chance(60) {
                    steps.push(step(Verb::Run { ms: rng.range(20, 600) }));
                    c.alive[i] = true;
                    steps.push(step(Verb::RestartNode { node: dest }));
                }
            }
        }
        2 => {
            steps.push(step(Verb::Partition { nodes: vec![dest] }));
            steps.push(step(Verb::Run { ms: rng.range(200, 3_000) }));
            steps.push(step(Verb::Heal));
        }
        _ => {
            let crash = rng.chance(50);
            failover_storm(rng, c, crash, steps);
        }
    }
}

/// A failover, often not alone: bootstrap messages held back or repeated around it (a delayed
/// copy of an old maintainer's own bootstrap), and a second failover soon after, sometimes
/// while the first successor still bootstraps.
fn failover_storm(rng: &mut Rng, c: &mut Cluster, crash: bool, steps: &mut Vec<Step>) {
    if rng.chance(60) {
        let kinds = [
            MessageKind::MaintainerBootstrapRequest,
            MessageKind::MaintainerBootstrapResponse,
            MessageKind::MaintainerPostBootstrapRequest,
        ];
        let kind = Some(kinds[if rng.chance(60) { 0 } else { rng.below(kinds.len()) }]);
        let count = rng.range(1, 4) as u32;
        steps.push(step(if rng.chance(70) {
            Verb::DelayMessages { kind, from: None, to: None, ms: rng.range(200, 2_500), count: Some(count) }
        } else {
            Verb::DuplicateMessages { kind, from: None, to: None, count }
        }));
    }
    let once = |rng: &mut Rng, c: &mut Cluster, crash: bool, steps: &mut Vec<Step>| {
        if crash {
            crash_maintainer(c, steps);
        } else if let Some(to) = c.pick_node(rng) {
            c.host = index(c, &to);
            steps.push(step(Verb::MoveMaintainer { to }));
        }
    };
    once(rng, c, crash, steps);
    // More failovers soon after, sometimes while a successor still bootstraps.
    let mut more = 0;
    while more < 3 && rng.chance(if more == 0 { 60 } else { 40 }) {
        more += 1;
        if rng.chance(50) {
            steps.push(step(Verb::RunUntil { phase: Phase::Bootstrapping, max_ms: rng.range(100, 1_000) }));
        }
        steps.push(step(Verb::Run { ms: rng.range(0, 1_500) }));
        let crash = rng.chance(50);
        once(rng, c, crash, steps);
    }
}

fn index(c: &Cluster, node: &str) -> usize {
    c.nodes.iter().position(|n| n == node).unwrap_or(0)
}

fn crash_maintainer(c: &mut Cluster, steps: &mut Vec<Step>) {
    if c.up().len() > 1 {
        let host = c.host;
        c.kill(host);
        steps.push(step(Verb::CrashMaintainer));
    }
}

fn crash_node(rng: &mut Rng, c: &mut Cluster, steps: &mut Vec<Step>) {
    if c.up().len() > 1 {
        if let Some(node) = c.pick_node(rng) {
            let i = index(c, &node);
            c.kill(i);
            steps.push(step(Verb::CrashNode { node }));
        }
    }
}

fn message_fault(rng: &mut Rng, c: &Cluster, feature: Feature) -> Verb {
    let kind = rng.chance(85).then(|| TRAVELLING_KINDS[rng.below(TRAVELLING_KINDS.len())]);
    let from = rng.chance(20).then(|| c.nodes[rng.below(c.nodes.len())].clone());
    let to = rng.chance(20).then(|| c.nodes[rng.below(c.nodes.len())].clone());
    let count = 1 + rng.below(4) as u32;
    match feature {
        Feature::Delay => {
            Verb::DelayMessages { kind, from, to, ms: rng.range(50, 1_500), count: Some(count) }
        }
        Feature::Drop => Verb::DropMessages { kind, from, to, count },
        _ => Verb::DuplicateMessages { kind, from, to, count },
    }
}
