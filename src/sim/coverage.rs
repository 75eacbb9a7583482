//! What a run exercised: which operator phases were in flight when each fault struck, and which
//! message kinds each message fault actually hit. Summed over a sweep it shows what the random
//! explorer reached and what it never did; the same phases are what `run_until` waits for.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::ids::Mode;
use crate::maintainer::{OperatorKind, OperatorPhase};
use crate::node::merge::MergePhase;

crate::names::named_enum! {
    "phase";
    /// A phase of some operator's life, on the maintainer or on a node.
    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
    pub enum Phase {
        /// The maintainer waits for every node's bootstrap answer.
        Bootstrapping = "bootstrapping",
        /// An add waits for the destination's Working (its create is sent).
        AddCreating = "add-creating",
        /// A remove waits for the node's Stopped.
        RemoveRemoving = "remove-removing",
        /// A move waits for the origin to stop.
        MoveRemoveOrigin = "move-remove-origin",
        /// A move's destination died; the origin is still being removed.
        MoveAbortRemoveOrigin = "move-abort-remove-origin",
        /// A move waits for the destination's Working.
        MoveAddDest = "move-add-dest",
        /// A split waits for the origin to stop.
        SplitRemoving = "split-removing",
        /// A merge waits for the merged dispatcher's Working.
        MergeMerging = "merge-merging",
        /// A merge never seen taken up is being withdrawn.
        MergeWithdrawing = "merge-withdrawing",
        /// A node holds a create that is not built yet.
        NodeCreating = "node-creating",
        /// A node is closing a dispatcher that still writes.
        NodeClosing = "node-closing",
        /// A node's merge: merged dispatcher being prepared, sources waiting.
        NodeMergePreparing = "node-merge-preparing",
        /// A node's merge: sources being closed.
        NodeMergeDraining = "node-merge-draining",
        /// A node's merge: handed over, the merged dispatcher not yet Working.
        NodeMergeHandedOver = "node-merge-handed-over",
        /// A block event is collecting its spans' WAITING reports (barrier).
        BarrierWaiting = "barrier-waiting",
        /// A block event's writer was told to write it (barrier).
        BarrierWriting = "barrier-writing",
        /// A block event's write is confirmed; its spans are told to pass it (barrier).
        BarrierPassing = "barrier-passing",
    }
}

impl Phase {
    pub(super) fn of_operator(kind: OperatorKind, phase: OperatorPhase) -> Option<Phase> {
        Some(match (kind, phase) {
            (OperatorKind::Add, OperatorPhase::Creating) => Phase::AddCreating,
            (OperatorKind::Remove, OperatorPhase::Removing) => Phase::RemoveRemoving,
            (OperatorKind::Move, OperatorPhase::RemoveOrigin) => Phase::MoveRemoveOrigin,
            (OperatorKind::Move, OperatorPhase::AbortRemoveOrigin) => Phase::MoveAbortRemoveOrigin,
            (OperatorKind::Move, OperatorPhase::AddDest) => Phase::MoveAddDest,
            (OperatorKind::Split, OperatorPhase::Removing) => Phase::SplitRemoving,
            (OperatorKind::Merge, OperatorPhase::Merging) => Phase::MergeMerging,
            (OperatorKind::Merge, OperatorPhase::Withdrawing) => Phase::MergeWithdrawing,
            _ => return None,
        })
    }

    pub(super) fn of_barrier(p: crate::maintainer::barrier::Phase) -> Phase {
        use crate::maintainer::barrier::Phase as B;
        match p {
            B::Collecting => Phase::BarrierWaiting,
            B::Writing => Phase::BarrierWriting,
            B::Passing => Phase::BarrierPassing,
        }
    }

    pub(super) fn of_merge(p: MergePhase) -> Option<Phase> {
        match p {
            MergePhase::Preparing => Some(Phase::NodeMergePreparing),
            MergePhase::Draining { .. } => Some(Phase::NodeMergeDraining),
            MergePhase::HandedOver => Some(Phase::NodeMergeHandedOver),
            MergePhase::Finished | MergePhase::Aborted => None,
        }
    }
}

/// Counts of what a run (or a sweep) exercised.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct Coverage {
    /// (phase, fault, mode) → how many times that fault struck while that phase was in flight.
    pub interrupted: BTreeMap<(Phase, &'static str, Mode), u64>,
    /// (message fault, message kind) → how many messages it actually hit.
    pub messages: BTreeMap<(&'static str, &'static str), u64>,
    /// `run_until` steps: (phase, reached) → count.
    pub triggers: BTreeMap<(Phase, bool), u64>,
}

/// The fault labels of the coverage report, in report order.
pub const FAULTS: [&str; 11] = [
    "crash_maintainer",
    "move_maintainer",
    "crash_node",
    "partition",
    "block_create",
    "block_close",
    "block_write",
    "delay",
    "drop",
    "duplicate",
    "restart_node",
];

impl Coverage {
    /// Records that `fault` struck with `in_flight` in flight (each distinct phase and mode once).
    pub fn struck(&mut self, fault: &'static str, in_flight: &[(Phase, Mode)]) {
        let mut seen: Vec<(Phase, Mode)> = in_flight.to_vec();
        seen.sort();
        seen.dedup();
        for (p, mode) in seen {
            *self.interrupted.entry((p, fault, mode)).or_default() += 1;
        }
    }

    /// Adds another run's counts.
    pub fn add(&mut self, other: &Coverage) {
        for (k, v) in &other.interrupted {
            *self.interrupted.entry(*k).or_default() += v;
        }
        for (k, v) in &other.messages {
            *self.messages.entry(*k).or_default() += v;
        }
        for (k, v) in &other.triggers {
            *self.triggers.entry(*k).or_default() += v;
        }
    }

    /// The `--json` form: lists of counted tuples.
    pub fn to_json(&self) -> Value {
        json!({
            "interrupted": self.interrupted.iter().map(|((p, f, m), n)| json!({
                "phase": p.name(), "fault": f, "mode": mode_name(*m), "count": n,
            })).collect::<Vec<_>>(),
            "messages": self.messages.iter().map(|((a, k), n)| json!({
                "fault": a, "kind": k, "count": n,
            })).collect::<Vec<_>>(),
            "triggers": self.triggers.iter().map(|((p, r), n)| json!({
                "phase": p.name(), "reached": r, "count": n,
            })).collect::<Vec<_>>(),
        })
    }

    /// A text table: one row per phase, one column per fault (default + redo counts summed,
    /// redo in brackets), then the phases and faults never combined, and the message kinds hit.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = write!(s, "{:<26}", "phase \\ fault");
        for f in FAULTS {
            let _ = write!(s, " {:>11}", short(f));
        }
        s.push('\n');
        let mut never = Vec::new();
        for p in Phase::ALL {
            let _ = write!(s, "{:<26}", p.name());
            for f in FAULTS {
                let d = self.interrupted.get(&(p, f, Mode::Default)).copied().unwrap_or(0);
                let r = self.interrupted.get(&(p, f, Mode::Redo)).copied().unwrap_or(0);
                let cell = if r > 0 { format!("{d}({r})") } else { d.to_string() };
                let _ = write!(s, " {cell:>11}");
                if d + r == 0 {
                    never.push(format!("{}/{}", p.name(), short(f)));
                }
            }
            s.push('\n');
        }
        let _ = writeln!(
            s,
            "never combined ({} of {}): {}",
            never.len(),
            Phase::ALL.len() * FAULTS.len(),
            never.join(" ")
        );
        let hit: Vec<String> = self.messages.iter().map(|((a, k), n)| format!("{a} {k}: {n}")).collect();
        let _ = writeln!(s, "messages hit by faults: {}", hit.join(", "));
        let triggers: Vec<String> = Phase::ALL
            .iter()
            .filter_map(|p| {
                let yes = self.triggers.get(&(*p, true)).copied().unwrap_or(0);
                let no = self.triggers.get(&(*p, false)).copied().unwrap_or(0);
                (yes + no > 0).then(|| format!("{} {yes}/{}", p.name(), yes + no))
            })
            .collect();
        let _ = write!(s, "run_until reached: {}", triggers.join(", "));
        s
    }
}

fn short(fault: &str) -> &str {
    match fault {
        "crash_maintainer" => "crash-mt",
        "move_maintainer" => "move-mt",
        "crash_node" => "crash-node",
        "block_create" => "blk-create",
        "block_close" => "blk-close",
        "restart_node" => "restart",
        other => other,
    }
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Default => "default",
        Mode::Redo => "redo",
    }
}
