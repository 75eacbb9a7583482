//! Merge: consecutive spans on one node become a new span. The merge releases its source
//! reservations only after the sources left the span controller, and a merge the node never takes
//! up is withdrawn (its merged dispatcher removed) before the sources are handed back (I2).

use super::{Change, Kind, MergePhase, OpEvent, Operator, OperatorOutcome};
use crate::messages::ComponentState;

impl Operator {
    pub(super) fn on_merge(&mut self, event: OpEvent<'_>) -> Vec<Change> {
        let (guard, own) = (self.guard, self.id);
        let Kind::Merge { node, sources, accepted, sends, max_sends, phase } = &mut self.kind else {
            return Vec::new();
        };
        match (*phase, event) {
            (MergePhase::Merging, OpEvent::Status { from, id, state, checkpoint }) if from == node => {
                if id == own && state == ComponentState::Working {
                    let on = node.clone();
                    let mut changes: Vec<Change> = sources.iter().map(|g| Change::Delete(*g)).collect();
                    changes.push(Change::Replicate { guard, on });
                    // Its start was decided on the node at hand-over; its first Working reports a
                    // checkpoint at or above it, a floor for its Removes.
                    changes.push(Change::Started(guard, checkpoint));
                    changes.push(Change::Release(sources.iter().map(|g| g.id).collect()));
                    return self.finish(OperatorOutcome::Succeeded, changes);
                }
                if id == own && state.is_terminal() {
                    // The merged dispatcher is gone (the node aborted the merge, or ended it
                    // mid-drain): every source is evicted and placed again.
                    return self.abandon_merge();
                }
                if id == own {
                    // Preparing, MergeReady or Initializing: the node has it.
                    *accepted = true;
                } else if sources.iter().any(|g| g.id == id) {
                    match state {
                        // Waiting: only a merge parks a source, so the node has taken it up. A
                        // source's Stopped proves nothing: a held-back remove (an earlier
                        // withdrawal's eviction) may have closed it, and a merge taken up is heard
                        // of through its merged id. Counting it would resend a request the node
                        // refuses for a missing source forever (C3, seed 32053).
                        ComponentState::WaitingMerge => *accepted = true,
                        // A source working again after it waited: the node aborted the merge
                        // before its commit point (the merged dispatcher never reported).
                        ComponentState::Working if *accepted => return self.abandon_merge(),
                        _ => {}
                    }
                }
                Vec::new()
            }
            (MergePhase::Merging, OpEvent::Resent) => {
                *sends += 1;
                if !*accepted && *sends > *max_sends {
                    // Silence is not a refusal: the request (or a delayed copy) may still be taken
                    // up. Remove the merged dispatcher first; hand the sources back after.
                    *phase = MergePhase::Withdrawing;
                }
                Vec::new()
            }
            (MergePhase::Withdrawing, OpEvent::Status { from, id, state, .. })
                if from == node && id == own && state.is_terminal() =>
            {
                self.abandon_merge()
            }
            (_, OpEvent::NodeRemoved(n)) if n == node => {
                let mut changes: Vec<Change> = sources.iter().map(|g| Change::Absent(*g)).collect();
                changes.push(Change::Delete(guard));
                changes.push(Change::Release(sources.iter().map(|g| g.id).collect()));
                self.finish(OperatorOutcome::Failed, changes)
            }
            _ => Vec::new(),
        }
    }

    /// The merge failed with its merged dispatcher gone or never started: the target goes and
    /// every source is evicted (removed, then placed again).
    fn abandon_merge(&mut self) -> Vec<Change> {
        let Kind::Merge { node, sources, .. } = &self.kind else { return Vec::new() };
        let mut changes =
            vec![Change::Delete(self.guard), Change::Release(sources.iter().map(|g| g.id).collect())];
        changes.extend(sources.iter().map(|g| Change::Evict { guard: *g, on: node.clone() }));
        self.finish(OperatorOutcome::Failed, changes)
    }
}
