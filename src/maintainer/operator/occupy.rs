//! Occupy: hold a merge source so no other operator touches it until its merge released it.

use super::{Change, Kind, OpEvent, Operator, OperatorOutcome};

impl Operator {
    pub(super) fn on_occupy(&mut self, event: OpEvent<'_>) -> Vec<Change> {
        let Kind::Occupy { node, .. } = &self.kind else { return Vec::new() };
        match event {
            OpEvent::Released => self.finish(OperatorOutcome::Succeeded, Vec::new()),
            // The merge sees the same node death and marks the sources absent itself.
            OpEvent::NodeRemoved(n) if n == node => self.finish(OperatorOutcome::Failed, Vec::new()),
            _ => Vec::new(),
        }
    }
}
