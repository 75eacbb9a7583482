//! The invariant checker: safety after every event (the I-invariants below, as far as the model
//! holds the state they speak of) and convergence at `settle` (C1-C6). Two rows are not checked
//! in this file: I9 is checked by the world itself, in `world/hosts.rs`; I12 is not checked by the
//! simulator at all (loom `node.rs`, the node-stress event log and `tests/it/node/bootstrap.rs`
//! check it).
//!
//! | check | where | what |
//! |---|---|---|
//! | I1 | every control message a node applies | no node applies a message of an epoch older than a bootstrap it answered |
//! | I2 | every dispatcher state change | never two writing dispatchers (Working, Initializing, waiting to merge, or closing) of one mode covering one key, across live nodes |
//! | I3, I4 | every maintainer step | at most one operator per span (merge and occupy, remove and remove excepted); every scheduling span has an operator |
//! | I5, I6 | every maintainer step | span-controller indexes agree with the records (no ghost, absent iff unbound) |
//! | I7 | every maintainer step | a table's spans are disjoint (merge target vs its sources and temporary coverage under a Remove excepted) |
//! | I8 | every Create sent; every maintainer step | no Create for a table that is not live now; no span of a dropped table |
//! | I9 | every checkpoint advance of the current maintainer (in `world/hosts.rs`, not here) | the committed checkpoint never goes back, across maintainers |
//! | I10 | every maintainer step | the committed checkpoint never passes an unflushed span, a creating dispatcher it tracks, or where the dispatcher of a span it holds replicating closed |
//! | I11 | every Create sent | its start ts is at least the committed checkpoint |
//! | I12 | not in the simulator: loom `node.rs`, node-stress (`history.rs`), `tests/it/node/bootstrap.rs` | an in-flight Remove is in the next snapshot; an older owner's create ran before the snapshot or never runs |
//! | I13 | every step of a stopped maintainer | it sends no Create and no Remove other than its triggers' |
//! | C1-C4, C6 | `settle` | every live table exactly tiled by Working dispatchers bound as the maintainer believes, nothing else running, no operator, nothing absent, in every mode |
//! | C5 | `settle` | the committed checkpoint catches up with upstream time |
//! | B1 | every downstream write of a block event (`world/upstream.rs`) | one writer per event per maintainer generation |
//! | B2 | every pass of a block event (`world/upstream.rs`) | the event was written first |
//! | B3, B4 | every advance of a dispatcher's stream (`world/upstream.rs`) | no DML below a written blocking event; nothing at or past an event not yet passed |
//! | B8 | every maintainer step | an event's table-set changes are applied only after its write |
//! | B14 | `settle` (barrier mode) | no event in flight; every DDL (and every syncpoint older than a few intervals) written once and passed by every dispatcher it affects |
//! | B16 | every message a maintainer sends | a stopped maintainer sends no barrier traffic |

use std::collections::BTreeMap;

use crate::ids::{Epoch, Mode, NodeId, Ts};
use crate::maintainer::{Kind, Lifecycle, MergePhase, SpanState};
use crate::messages::{ComponentState, ScheduleAction};
use crate::messages::{MessageKind, ToNode};
use crate::span::TableSpan;

pub use super::violation::Violation;
use super::world::{upstream_ts, Monitor, World};

/// Whether maintainer `index` applied the DROP of `table` in `mode` (barrier mode): the event's
/// table-set changes are applied, or it completed. (Not "its committed checkpoint reached the
/// DROP": a span the maintainer re-created for the table after the DROP was written starts at the
/// sink's DDL ts, past it, and lives on until the trigger replays the DROP and it is applied.)
fn drop_applied(w: &World, index: usize, mode: Mode, table: i64) -> bool {
    let Some(ts) = w.dropped.get(&table) else { return false };
    let Some(view) = w.hosts[index].maintainer.view(mode) else { return false };
    let key = (*ts, false);
    view.barrier.completed(key) || view.barrier.event(key).is_some_and(|e| e.applied)
}

/// L1, as a state check: the maintainer's spans of every live table it tracks cover the table's key
/// range with no gap. (Overlaps are legitimate while a merge's target and its sources both
/// exist, or a withdrawn target waits for its removal; two live writers are I2's business. That
/// a split's pieces tile the span they replace is checked where the split is admitted.)
fn untiled(
    w: &World,
    m: &crate::maintainer::Maintainer,
    view: &crate::maintainer::ModeView<'_>,
) -> Option<String> {
    // A table being dropped loses its spans one by one as they pass the DROP; one the maintainer
    // has not learnt yet (its CREATE still to come through the barrier) is covered when it does.
    let live = |t: &crate::maintainer::TableKey| {
        m.is_live(*t) && w.live.contains(&t.1) && !w.dropped.contains_key(&t.1)
    };
    for table in view.spans.tables().filter(live) {
        let mut spans: Vec<&TableSpan> = view.spans.table(table).map(|r| &r.span).collect();
        spans.sort();
        let whole = TableSpan::whole_table(table.0, table.1);
        let mut covered = whole.start_key.clone();
        for s in &spans {
            if s.start_key > covered {
                return Some(format!("table {} has a gap before {s:?}: {spans:?}", table.1));
            }
            if s.end_key.is_empty() || s.end_key > covered {
                covered = s.end_key.clone();
            }
        }
        if covered != whole.end_key {
            return Some(format!("table {} is not covered to its end: {spans:?}", table.1));
        }
    }
    None
}

fn modes(redo: bool) -> &'static [Mode] {
    if redo {
        &[Mode::Default, Mode::Redo]
    } else {
        &[Mode::Default]
    }
}

/// The checker's own state: what it remembers between events, which the world does not need.
#[derive(Default)]
pub struct Checker {
    /// The newest bootstrap epoch each node incarnation answered (I1).
    answered: BTreeMap<(NodeId, u64), Epoch>,
    /// Each maintainer's committed checkpoint at its last step (I10).
    last_committed: BTreeMap<(Epoch, Mode), Ts>,
}

impl Monitor for Checker {
    /// I1: a node applied a control message of `epoch` from `from`.
    fn control_applied(
        &mut self,
        w: &World,
        node: &NodeId,
        from: &NodeId,
        kind: MessageKind,
        epoch: Epoch,
    ) -> Option<Violation> {
        // A restarted node remembers nothing: the epochs it answered are per incarnation.
        let incarnation = w.nodes.get(node)?.incarnation;
        let answered = self.answered.entry((node.clone(), incarnation)).or_insert(Epoch(0));
        if kind == MessageKind::MaintainerBootstrapRequest {
            *answered = (*answered).max(epoch);
            return None;
        }
        (epoch < *answered).then(|| {
            let detail = format!(
                "{node} applied a {kind} of epoch {} from {from} after answering the bootstrap of epoch {}",
                epoch.0, answered.0
            );
            Violation::new("I1", w.now, detail)
        })
    }

    /// I8, I11, I13 on a message a maintainer is about to send.
    fn sending(&mut self, w: &World, index: usize, to: &NodeId, message: &ToNode) -> Option<Violation> {
        let now = w.now;
        let host = &w.hosts[index];
        let stopped = host.maintainer.lifecycle() == Lifecycle::Removing;
        if let (ToNode::Barrier(_), true) = (message, stopped) {
            let detail = format!("epoch {} sent barrier traffic to {to} after it was stopped", host.epoch.0);
            return Some(Violation::new("B16", now, detail));
        }
        let ToNode::Schedule(r) = message else { return None };
        let trigger = r.span().is_some_and(TableSpan::is_table_trigger);
        if stopped && !trigger {
            let detail = format!(
                "epoch {} sent {:?} {} to {to} after it was stopped",
                host.epoch.0,
                r.action(),
                r.config.id
            );
            return Some(Violation::new("I13", now, detail));
        }
        if r.action() != ScheduleAction::Create {
            return None;
        }
        let Some(span) = &r.span() else { return None };
        let gone = if w.opts.barrier {
            // With the barrier a dropped table's spans are placed until its DROP is applied.
            !w.live.contains(&span.table_id)
                && (!w.dropped.contains_key(&span.table_id)
                    || drop_applied(w, index, r.config.mode, span.table_id))
        } else {
            !w.live.contains(&span.table_id)
        };
        if gone {
            let detail = format!(
                "Create {} for table {} that is not live ({span:?}) to {to}",
                r.config.id, span.table_id
            );
            return Some(Violation::new("I8", now, detail));
        }
        let committed = host.maintainer.view(r.config.mode).map_or(0, |v| v.committed);
        if r.config.start_ts < committed {
            let detail = format!(
                "Create {} {span:?} starts at {} below the committed checkpoint {committed}",
                r.config.id, r.config.start_ts
            );
            return Some(Violation::new("I11", now, detail));
        }
        None
    }

    /// I3-I6, I8, I10 on the maintainer just stepped (the current one).
    fn maintainer_stepped(&mut self, w: &World, index: usize) -> Option<Violation> {
        if index + 1 != w.hosts.len() || !w.hosts[index].alive {
            return None;
        }
        let now = w.now;
        let mut found: Option<Violation> = None;
        for mode in modes(w.redo) {
            let m = &w.hosts[index].maintainer;
            let Some(view) = m.view(*mode) else { continue };
            if let Err(e) = view.spans.check_indexes() {
                found = Some(Violation::new("I6", now, format!("{mode:?}: {e}")));
                break;
            }
            // B8: an event's table-set changes are applied only after its write is durable.
            if let Some(e) =
                view.barrier.events().find(|e| e.applied && e.schedules() && !w.written(*mode, e.key))
            {
                let name = w.upstream.get(&e.key).map_or_else(|| format!("{:?}", e.key), |u| u.name.clone());
                found = Some(Violation::new(
                    "B8",
                    now,
                    format!("{mode:?} {name}: table set changed before its write"),
                ));
                break;
            }
            // With the barrier, each mode applies a CREATE or DROP when its own barrier passes
            // it, so a mode may hold part of a table the other has: L1 is checked without it.
            if let Some(detail) = untiled(w, m, &view).filter(|_| !w.opts.barrier) {
                found = Some(Violation::new("L1", now, format!("{mode:?} {detail}")));
                break;
            }
            // L2: while a merge runs, each of its sources that still exists is bound to the
            // merge's node (a node merges only its own dispatchers).
            let apart = view.operators.operators().find_map(|op| {
                let Kind::Merge { node, sources, phase: MergePhase::Merging, .. } = &op.kind else {
                    return None;
                };
                let elsewhere = sources.iter().find_map(|g| {
                    view.spans.get(g.id).filter(|r| r.node.as_ref().is_some_and(|n| n != node))
                })?;
                Some(format!(
                    "{mode:?} merge {} on {node}: source {} {:?} is bound to {:?}",
                    op.id, elsewhere.id, elsewhere.span, elsewhere.node
                ))
            });
            if let Some(detail) = apart {
                found = Some(Violation::new("L2", now, detail));
                break;
            }
            for r in view.spans.records() {
                if r.state == SpanState::Scheduling && view.operators.get(r.id).is_none() {
                    found = Some(Violation::new(
                        "I4",
                        now,
                        format!("{mode:?} span {} {:?} scheduling without an operator", r.id, r.span),
                    ));
                    break;
                }
                let dropped = w.dropped.contains_key(&r.span.table_id)
                    && (!w.opts.barrier || drop_applied(w, index, *mode, r.span.table_id));
                if dropped {
                    found = Some(Violation::new(
                        "I8",
                        now,
                        format!("{mode:?} span {} of dropped table {} survives", r.id, r.span.table_id),
                    ));
                    break;
                }
            }
            // I10 (b): the committed checkpoint may only move to at most the lowest unreplicated
            // span (a span may lag below it from before: its dispatcher had flushed further).
            let key = (w.hosts[index].epoch, *mode);
            let last = self.last_committed.get(&key).copied().unwrap_or(0);
            if view.committed > last {
                if let Some(low) =
                    view.spans.min_unreplicated_checkpoint().filter(|low| view.committed > *low)
                {
                    let detail = format!(
                        "{mode:?} committed checkpoint moved to {} past an unreplicated span at {low}",
                        view.committed
                    );
                    found = Some(Violation::new("I10", now, detail));
                }
            }
            self.last_committed.insert(key, view.committed);
            if found.is_some() {
                break;
            }
            // I7: the spans of a table are disjoint, except a merge's target and its sources and
            // a span kept as temporary coverage under a Remove.
            'tables: for table in view.spans.tables() {
                let spans: Vec<_> = view.spans.table(table).collect();
                for (i, a) in spans.iter().enumerate() {
                    for b in spans[i + 1..]
                        .iter()
                        .take_while(|b| a.span.overlaps(&b.span) || b.span.start_key < a.span.end_key)
                    {
                        if !a.span.overlaps(&b.span) {
                            continue;
                        }
                        use crate::maintainer::OperatorKind::*;
                        let excused = |id| {
                            view.operators
                                .get(id)
                                .is_some_and(|o| matches!(o.op_kind(), Merge | Occupy | Remove))
                        };
                        if !excused(a.id) && !excused(b.id) {
                            let detail = format!(
                                "{mode:?} spans {} {:?} and {} {:?} overlap",
                                a.id, a.span, b.id, b.span
                            );
                            found = Some(Violation::new("I7", now, detail));
                            break 'tables;
                        }
                    }
                }
            }
            if found.is_some() {
                break;
            }
            let ops: Vec<_> = view.operators.operators().collect();
            for (i, a) in ops.iter().enumerate() {
                for b in &ops[i + 1..] {
                    use crate::maintainer::OperatorKind::*;
                    let allowed = matches!(
                        (a.op_kind(), b.op_kind()),
                        (Remove, Remove) | (Merge, Occupy) | (Occupy, Merge)
                    );
                    if !allowed && a.span.overlaps(&b.span) {
                        found = Some(Violation::new(
                            "I3",
                            now,
                            format!("{mode:?} operators {} and {} overlap on {:?}", a.id, b.id, a.span),
                        ));
                    }
                }
            }
            if found.is_some() {
                break;
            }
            // I10 (a): a dispatcher being created for a tracked span starts at or above committed.
            // One of a dropped table that stands at its DROP has nothing left to write (a new
            // maintainer still tracks it until its trigger replays the DROP).
            for n in w.nodes.values().filter(|n| n.alive) {
                for d in n.dispatchers.values().filter(|d| d.mode == *mode && d.writes() && !d.closing) {
                    let bound = view.spans.get(d.id).is_some_and(|r| r.node.as_ref() == Some(&n.id));
                    let finished = w
                        .dropped
                        .get(&d.span.table_id)
                        .is_some_and(|drop| d.checkpoint.saturating_add(1) >= *drop);
                    if bound && !finished && d.checkpoint < view.committed {
                        let detail = format!(
                            "{mode:?} committed checkpoint {} passed dispatcher {} on {} at {}",
                            view.committed, d.id, n.id, d.checkpoint
                        );
                        found = Some(Violation::new("I10", now, detail));
                    }
                }
            }
            // I10 (c): a span held replicating on a node where its dispatcher closed, with no
            // operator that asked for it (a close behind the maintainer's back), holds the
            // committed checkpoint where that dispatcher stopped: past it, its DML is lost.
            for r in view.spans.records() {
                if r.state != SpanState::Replicating || view.operators.get(r.id).is_some() {
                    continue;
                }
                let Some(n) = r.node.as_ref().and_then(|n| w.nodes.get(n)).filter(|n| n.alive) else {
                    continue;
                };
                let stopped = n.closed.get(&(*mode, r.id));
                if let Some(stopped) = stopped.filter(|ts| view.committed > **ts) {
                    let detail = format!(
                        "{mode:?} committed checkpoint {} passed span {} held replicating on {}, whose dispatcher closed there at {stopped}",
                        view.committed, r.id, n.id
                    );
                    found = Some(Violation::new("I10", now, detail));
                }
            }
        }
        found
    }

    /// I2: never two writers for one key of one mode.
    fn writers_changed(&mut self, w: &World) -> Option<Violation> {
        let now = w.now;
        let mut writers: Vec<(Mode, &TableSpan, &NodeId, crate::ids::DispatcherId)> = Vec::new();
        for n in w.nodes.values().filter(|n| n.alive) {
            for d in n.dispatchers.values() {
                // A closing dispatcher keeps the state it wrote in until it is gone; a merged one
                // still preparing (or ready) never wrote.
                if d.writes() && !d.span.is_table_trigger() {
                    writers.push((d.mode, &d.span, &n.id, d.id));
                }
            }
        }
        writers.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let mut found = None;
        for (i, a) in writers.iter().enumerate() {
            for b in writers[i + 1..].iter().take_while(|b| b.0 == a.0 && b.1.table_id == a.1.table_id) {
                if a.1.overlaps(b.1) {
                    found = Some(format!(
                        "{:?}: {} on {} {:?} and {} on {} {:?} both write",
                        a.0, a.3, a.2, a.1, b.3, b.2, b.1
                    ));
                    break;
                }
            }
            if found.is_some() {
                break;
            }
        }
        found.map(|detail| Violation::new("I2", now, detail))
    }
}

/// Convergence (C1-C6) and the `expect` verbs: questions asked of the world at a step.
impl Checker {
    /// Why the cluster is not quiescent yet (C1-C4, C6), or `None` when it is.
    pub fn not_converged(w: &World) -> Option<Violation> {
        let now = w.now;
        let v = |check: &str, detail: String| Some(Violation::new(check, now, detail));
        let Some(host) = w.current() else { return v("C3", "no live maintainer".into()) };
        let m = &host.maintainer;
        if m.lifecycle() != Lifecycle::Running {
            return v("C3", format!("maintainer epoch {} not bootstrapped", host.epoch.0));
        }
        if w.control_in_flight > 0 {
            return v("C3", format!("{} control messages in flight", w.control_in_flight));
        }
        if let Some(why) = Self::barrier_not_settled(w) {
            return Some(why);
        }
        if let Some((node, _, id)) = m.orphans().next() {
            return v("C2", format!("orphan {id} on {node} still being removed"));
        }
        for mode in modes(w.redo) {
            let Some(view) = m.view(*mode) else { return v("C6", format!("{mode:?} mode missing")) };
            if let Some(op) = view.operators.operators().next() {
                return v(
                    "C3",
                    format!(
                        "{mode:?} operator {:?} {} still in flight ({:?})",
                        op.op_kind(),
                        op.id,
                        op.phase()
                    ),
                );
            }
            if let Some(id) = view.spans.absent().next() {
                return v("C4", format!("{mode:?} span {id} absent"));
            }
            // C1: every live table tiled by replicating spans, each run by exactly one Working
            // dispatcher with its id on its node.
            for table in &w.live {
                let spans: Vec<_> = view.spans.table((0, *table)).collect();
                let whole = TableSpan::whole_table(0, *table);
                let tiles = !spans.is_empty()
                    && spans[0].span.start_key == whole.start_key
                    && spans[spans.len() - 1].span.end_key == whole.end_key
                    && spans.windows(2).all(|w| w[0].span.is_followed_by(&w[1].span));
                if !tiles {
                    return v(
                        "C1",
                        format!(
                            "{mode:?} table {table} is not exactly tiled: {:?}",
                            spans.iter().map(|r| &r.span).collect::<Vec<_>>()
                        ),
                    );
                }
                for r in spans {
                    let node = r.node.as_ref().and_then(|n| w.nodes.get(n)).filter(|n| n.alive);
                    let running = node.and_then(|n| n.dispatchers.get(&(*mode, r.id)));
                    if r.state != SpanState::Replicating
                        || running.is_none_or(|d| d.state != ComponentState::Working || d.closing)
                    {
                        return v(
                            "C1",
                            format!(
                                "{mode:?} span {} {:?} is {:?} on {:?} but runs as {:?}",
                                r.id,
                                r.span,
                                r.state,
                                r.node,
                                running.map(|d| d.state)
                            ),
                        );
                    }
                }
            }
            // C2: nothing runs that the maintainer does not bind there (its own triggers aside).
            for n in w.nodes.values().filter(|n| n.alive) {
                for d in n.dispatchers.values().filter(|d| d.mode == *mode) {
                    if d.span.is_table_trigger() {
                        if d.id != view.trigger {
                            return v("C2", format!("old trigger {} still on {}", d.id, n.id));
                        }
                        continue;
                    }
                    let bound = view.spans.get(d.id).is_some_and(|r| r.node.as_ref() == Some(&n.id));
                    if !bound {
                        return v(
                            "C2",
                            format!(
                                "{mode:?} dispatcher {} {:?} on {} is not bound there",
                                d.id, d.span, n.id
                            ),
                        );
                    }
                }
            }
        }
        None
    }

    /// The barrier at `settle` (barrier mode): no event in flight in any barrier or at any
    /// dispatcher, and every DDL issued (and every syncpoint older than a few intervals) written
    /// downstream exactly once and passed by every dispatcher it affected.
    pub fn barrier_not_settled(w: &World) -> Option<Violation> {
        if !w.opts.barrier {
            return None;
        }
        let now = w.now;
        let v = |check: &str, detail: String| Some(Violation::new(check, now, detail));
        let host = w.current()?;
        let horizon =
            upstream_ts(now).saturating_sub(w.syncpoint_interval_ms.saturating_mul(2).saturating_add(1_000));
        let due = |key: &(Ts, bool)| !key.1 || key.0 <= horizon;
        for mode in modes(w.redo) {
            let Some(view) = host.maintainer.view(*mode) else { continue };
            if let Some(e) = view.barrier.events().find(|e| due(&e.key)) {
                if w.debug {
                    eprintln!("stuck {e:?}");
                    for r in view.spans.records() {
                        eprintln!(
                            "  record {} {:?} {:?} {:?} ckpt {} block {:?}",
                            r.id, r.span, r.state, r.node, r.checkpoint, r.block
                        );
                    }
                    eprintln!("  trigger {}", view.trigger);
                }
                return v("B14", format!("{mode:?} block event {:?} still in flight ({:?})", e.key, e.phase));
            }
        }
        for n in w.nodes.values().filter(|n| n.alive) {
            for d in n.dispatchers.values() {
                if let Some(pending) = d.barrier.as_ref().and_then(|b| b.pending).filter(|k| due(k)) {
                    return v(
                        "B14",
                        format!(
                            "{:?} dispatcher {} on {} still at block event {pending:?}",
                            d.mode, d.id, n.id
                        ),
                    );
                }
            }
        }
        for key in w.upstream.keys().filter(|k| due(k)) {
            if let Some(why) = Self::ddl_not_done(w, *key, 1) {
                return v("B14", why);
            }
        }
        None
    }

    /// Why the block event `key` is not written exactly `written` times in every mode it
    /// concerns, or not passed by every live dispatcher it affects; `None` when it is done.
    pub fn ddl_not_done(w: &World, key: (Ts, bool), written: usize) -> Option<String> {
        let event = w.upstream.get(&key)?;
        for mode in modes(w.redo) {
            if key.1 && *mode == Mode::Redo {
                continue; // redo dispatchers skip syncpoints
            }
            let applied = w.applied_writes(*mode, key);
            if applied != written {
                return Some(format!("{mode:?} {} written {applied} times, expected {written}", event.name));
            }
            for n in w.nodes.values().filter(|n| n.alive) {
                for d in
                    n.dispatchers.values().filter(|d| d.mode == *mode && d.state == ComponentState::Working)
                {
                    let Some(b) = &d.barrier else { continue };
                    if event.involves(d, w.schema_of(d.span.table_id)).is_some() && b.passed < key {
                        return Some(format!(
                            "{mode:?} dispatcher {} on {} has not passed {} (passed {:?})",
                            d.id, n.id, event.name, b.passed
                        ));
                    }
                }
            }
        }
        None
    }

    /// C5: the committed checkpoint of every mode is within `slack` of upstream time.
    pub fn lagging(w: &World, slack: Ts) -> Option<Violation> {
        let host = w.current()?;
        let target = upstream_ts(w.now).saturating_sub(slack);
        for mode in modes(w.redo) {
            let committed = host.maintainer.view(*mode).map_or(0, |v| v.committed);
            if committed < target {
                let detail = format!(
                    "{mode:?} committed checkpoint {committed} behind upstream {}",
                    upstream_ts(w.now)
                );
                return Some(Violation::new("C5", w.now, detail));
            }
        }
        None
    }

    /// Working dispatchers of `table` in `mode` on live nodes, with their nodes.
    pub fn working(w: &World, table: i64, mode: Mode) -> Vec<(NodeId, crate::ids::DispatcherId)> {
        let mut out = Vec::new();
        for n in w.nodes.values().filter(|n| n.alive) {
            for d in n.dispatchers.values() {
                if d.mode == mode
                    && d.span.table_id == table
                    && d.state == ComponentState::Working
                    && !d.closing
                {
                    out.push((n.id.clone(), d.id));
                }
            }
        }
        out
    }

    /// Whether any dispatcher of `table` exists on a live node (any mode), or the maintainer
    /// tracks a span of it.
    pub fn table_present(w: &World, table: i64) -> Option<String> {
        for n in w.nodes.values().filter(|n| n.alive) {
            if let Some(d) = n.dispatchers.values().find(|d| d.span.table_id == table) {
                return Some(format!("dispatcher {} of table {table} on {}", d.id, n.id));
            }
        }
        let host = w.current()?;
        for mode in modes(w.redo) {
            if let Some(r) = host.maintainer.view(*mode).and_then(|v| v.spans.table((0, table)).next()) {
                return Some(format!("the maintainer tracks {mode:?} span {} of table {table}", r.id));
            }
        }
        None
    }
}
