//! Remove: close a span's dispatcher on the node captured at construction, then do what
//! [`AfterRemove`] says.

use super::{AfterRemove, Change, Kind, OpEvent, Operator, OperatorOutcome};

impl Operator {
    pub(super) fn on_remove(&mut self, event: OpEvent<'_>) -> Vec<Change> {
        let Kind::Remove { node, after, .. } = &self.kind else { return Vec::new() };
        let after = *after;
        match event {
            OpEvent::Status { from, id, state, checkpoint }
                if self.mine(from, node, id) && state.is_terminal() =>
            {
                let mut changes = vec![Change::RaiseCheckpoint(self.guard, checkpoint)];
                changes.extend(self.after_remove(after));
                self.finish(OperatorOutcome::Succeeded, changes)
            }
            OpEvent::NodeRemoved(n) if n == node => {
                let changes = self.after_remove(after);
                self.finish(OperatorOutcome::Succeeded, changes)
            }
            _ => Vec::new(),
        }
    }

    fn after_remove(&self, after: AfterRemove) -> Vec<Change> {
        match after {
            AfterRemove::Nothing => Vec::new(),
            AfterRemove::MarkAbsent => vec![Change::Absent(self.guard)],
            AfterRemove::DeleteAndRepair => {
                vec![Change::Delete(self.guard), Change::Repair((self.span.keyspace_id, self.span.table_id))]
            }
        }
    }
}
