//! The motifs: timelines aimed at a window (a fault at an operator phase, a merge copy that
//! outlives its abandon, a maintainer that returns, a failover storm, ...) and the fault helpers
//! they share.

use crate::ids::Mode;
use crate::messages::MessageKind;

use super::{step, table, Cluster, Draw, Feature, AIMED};
use crate::sim::coverage::Phase;
use crate::sim::rng::Rng;
use crate::sim::scenario::{Step, Verb, What, TRAVELLING_KINDS};

/// `run_until` one of `phases`, then a fault drawn from the seed's enabled faults.
pub(super) fn aimed_fault(
    rng: &mut Rng,
    draw: &Draw,
    c: &mut Cluster,
    phases: &[Phase],
    steps: &mut Vec<Step>,
) {
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
pub(super) fn side_by_side(
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
pub(super) fn merge(
    rng: &mut Rng,
    c: &mut Cluster,
    table: i64,
    spans: usize,
    mode: Mode,
    steps: &mut Vec<Step>,
) {
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
pub(super) fn merge_copy_outlives_abandon(
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
pub(super) fn held_remove_closes_returned_span(
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
pub(super) fn bounce_before_progress(
    rng: &mut Rng,
    draw: &Draw,
    c: &mut Cluster,
    mode: Mode,
    steps: &mut Vec<Step>,
) {
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

pub(super) fn returning_maintainer(rng: &mut Rng, c: &mut Cluster, steps: &mut Vec<Step>) {
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
pub(super) fn merge_interrupted(
    rng: &mut Rng,
    c: &mut Cluster,
    table: i64,
    on: Option<String>,
    steps: &mut Vec<Step>,
) {
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
pub(super) fn move_interrupted(rng: &mut Rng, c: &mut Cluster, dest: String, steps: &mut Vec<Step>) {
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
pub(super) fn failover_storm(rng: &mut Rng, c: &mut Cluster, crash: bool, steps: &mut Vec<Step>) {
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

pub(super) fn index(c: &Cluster, node: &str) -> usize {
    c.nodes.iter().position(|n| n == node).unwrap_or(0)
}

fn crash_maintainer(c: &mut Cluster, steps: &mut Vec<Step>) {
    if c.up().len() > 1 {
        let host = c.host;
        c.kill(host);
        steps.push(step(Verb::CrashMaintainer));
    }
}

pub(super) fn crash_node(rng: &mut Rng, c: &mut Cluster, steps: &mut Vec<Step>) {
    if c.up().len() > 1 {
        if let Some(node) = c.pick_node(rng) {
            let i = index(c, &node);
            c.kill(i);
            steps.push(step(Verb::CrashNode { node }));
        }
    }
}

pub(super) fn message_fault(rng: &mut Rng, c: &Cluster, feature: Feature) -> Verb {
    // Block statuses and heartbeat responses travel only with the barrier (the last two kinds).
    let kinds =
        if c.barrier { &TRAVELLING_KINDS[..] } else { &TRAVELLING_KINDS[..TRAVELLING_KINDS.len() - 2] };
    let kind = rng.chance(85).then(|| kinds[rng.below(kinds.len())]);
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
