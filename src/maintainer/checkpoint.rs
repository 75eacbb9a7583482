//! Watermarks in, the committed checkpoint out (I9-I11).

use std::collections::BTreeSet;

use crate::ids::{Mode, NodeId, Ts};
use crate::messages::Heartbeat;

use super::core::Maintainer;
use super::event::{Lifecycle, Output};

impl Maintainer {
    pub(super) fn on_heartbeat(&mut self, now_ms: u64, from: &NodeId, hb: Heartbeat) {
        if let Some(error) = hb.err.clone() {
            self.effects.push(Output::NodeError { node: from.clone(), error });
        }
        if self.lifecycle != Lifecycle::Running || !self.nodes.get(from).is_some_and(|i| i.ready) {
            // Before bootstrap, or from a node that has not answered ours: a documented drop.
            return;
        }
        // Watermarks first, statuses after (I10): a mode's watermark is rejected when its seq is
        // lower than the accepted one's, or the same with a lower checkpoint; then the heartbeat
        // is a reordered or stale one, and its statuses of that mode are dropped.
        // `fresh[mode]`: the mode is scheduled and its watermark (if any) was accepted.
        let mut fresh = [false; Mode::ALL.len()];
        for state in self.modes.iter_mut() {
            fresh[state.mode as usize] = match hb.watermark(state.mode) {
                None => true,
                Some(w) => {
                    let accept = state.watermarks.get(from).is_none_or(|old| {
                        w.seq > old.seq || (w.seq == old.seq && w.checkpoint_ts >= old.checkpoint_ts)
                    });
                    if accept {
                        state.watermarks.insert(from.clone(), w);
                    }
                    accept
                }
            };
        }
        for status in hb.statuses {
            if fresh[status.mode as usize] {
                self.on_status(now_ms, status.mode, from, &status);
            }
        }
    }

    /// Advances the committed checkpoint of a mode (I9-I11): the minimum of the
    /// unreplicated records, the records of operators that start dispatchers, and the watermark of
    /// every node that hosts a record plus the own node. Every one of those nodes must have
    /// reported; the result only ever moves forward.
    pub(super) fn advance_checkpoint(&mut self, mode: Mode) {
        let state = &self.modes[mode];
        let mut candidate = Ts::MAX;
        if let Some(ts) = state.sc.min_unreplicated_checkpoint() {
            candidate = candidate.min(ts);
        }
        if let Some(ts) = state.oc.min_blocking_checkpoint(&state.sc) {
            candidate = candidate.min(ts);
        }
        if let Some(ts) = state.barrier.checkpoint_cap() {
            // B10: a DDL adding tables is in flight; they start at its ts.
            candidate = candidate.min(ts);
        }
        let mut required: BTreeSet<&NodeId> = state.sc.bound_nodes().collect();
        required.insert(&self.cfg.node);
        for node in required {
            match state.watermarks.get(node) {
                Some(w) => candidate = candidate.min(w.checkpoint_ts),
                None => return,
            }
        }
        if candidate == Ts::MAX || candidate <= state.committed {
            return;
        }
        let mode = state.mode;
        self.modes[mode].committed = candidate;
        self.effects.push(Output::CheckpointAdvanced { mode, checkpoint_ts: candidate });
    }
}
