//! Split: remove from the origin, then replace the span by consecutive parts (fresh ids) that
//! start at the highest checkpoint the origin reported.

use super::{Change, Kind, OpEvent, Operator, OperatorOutcome};

impl Operator {
    pub(super) fn on_split(&mut self, event: OpEvent<'_>) -> Vec<Change> {
        let guard = self.guard;
        let Kind::Split { origin, into, checkpoint } = &self.kind else { return Vec::new() };
        match event {
            OpEvent::Status { from, id, state, checkpoint: c }
                if self.mine(from, origin, id) && state.is_terminal() =>
            {
                let change = Change::Split { guard, into: into.clone(), checkpoint: (*checkpoint).max(c) };
                self.finish(OperatorOutcome::Succeeded, vec![change])
            }
            // The origin is gone with its dispatcher; the span is placed again unsplit.
            OpEvent::NodeRemoved(n) if n == origin => {
                self.finish(OperatorOutcome::Failed, vec![Change::Absent(guard)])
            }
            _ => Vec::new(),
        }
    }
}
