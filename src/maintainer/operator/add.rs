//! Add: create a span's dispatcher on a node, and wait for its `Working`.

use super::{Change, Kind, OpEvent, Operator, OperatorOutcome};
use crate::messages::ComponentState;

impl Operator {
    pub(super) fn on_add(&mut self, event: OpEvent<'_>) -> Vec<Change> {
        let (guard, Kind::Add { dest, .. }) = (self.guard, &self.kind) else { return Vec::new() };
        match event {
            OpEvent::Status { from, id, state, checkpoint } if self.mine(from, dest, id) => {
                match state {
                    ComponentState::Working => {
                        let changes = self.bound_by_create(guard, dest.clone());
                        self.finish(OperatorOutcome::Succeeded, changes)
                    }
                    ComponentState::Removed if self.refuses_ours(checkpoint) => {
                        self.finish(OperatorOutcome::Failed, vec![Change::Renew(guard)])
                    }
                    // A Stopped here is the answer to an older remove of this id, or a create
                    // refused as older than where a dispatcher of this id stopped on `dest`:
                    // neither tells us the create failed for good. Keep resending, from that
                    // dispatcher's final checkpoint when it is higher (data up to it is flushed).
                    ComponentState::Stopped => vec![Change::RaiseCheckpoint(guard, checkpoint)],
                    _ => Vec::new(),
                }
            }
            OpEvent::NodeRemoved(n) if n == dest => {
                self.finish(OperatorOutcome::Failed, vec![Change::Absent(guard)])
            }
            _ => Vec::new(),
        }
    }
}
