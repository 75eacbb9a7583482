//! Move: remove from the origin, then create on the destination under the same id. A move
//! leaves its remove phase only on a terminal status from the origin or the origin's death.

use super::{Change, Kind, MovePhase, OpEvent, Operator, OperatorOutcome};
use crate::messages::ComponentState;

impl Operator {
    pub(super) fn on_move(&mut self, event: OpEvent<'_>) -> Vec<Change> {
        let guard = self.guard;
        let Kind::Move { origin, dest, phase } = &self.kind else { return Vec::new() };
        let (origin, dest, phase) = (origin.clone(), dest.clone(), *phase);
        let to_dest = Change::Schedule { guard, from: Some(origin.clone()), to: dest.clone() };
        match (phase, event) {
            (MovePhase::RemoveOrigin, OpEvent::Status { from, id, state, checkpoint })
                if self.mine(from, &origin, id) && state.is_terminal() =>
            {
                // The destination starts where the origin stopped (never lower: a 0 is a no-op).
                self.set_move_phase(MovePhase::AddDest);
                vec![Change::RaiseCheckpoint(guard, checkpoint), to_dest]
            }
            (MovePhase::RemoveOrigin, OpEvent::NodeRemoved(n)) if *n == origin => {
                self.set_move_phase(MovePhase::AddDest);
                vec![to_dest]
            }
            (MovePhase::RemoveOrigin, OpEvent::NodeRemoved(n)) if *n == dest => {
                // The destination died first: the origin may still run (I2); keep removing it
                // and mark the span absent only once it stopped.
                self.set_move_phase(MovePhase::AbortRemoveOrigin);
                Vec::new()
            }
            (MovePhase::AbortRemoveOrigin, OpEvent::Status { from, id, state, checkpoint })
                if self.mine(from, &origin, id) && state.is_terminal() =>
            {
                let changes = vec![Change::RaiseCheckpoint(guard, checkpoint), Change::Absent(guard)];
                self.finish(OperatorOutcome::Failed, changes)
            }
            (MovePhase::AbortRemoveOrigin, OpEvent::NodeRemoved(n)) if *n == origin => {
                self.finish(OperatorOutcome::Failed, vec![Change::Absent(guard)])
            }
            (MovePhase::AddDest, OpEvent::Status { from, id, state, checkpoint })
                if self.mine(from, &dest, id) =>
            {
                match state {
                    ComponentState::Working => {
                        self.finish(OperatorOutcome::Succeeded, vec![Change::Replicate { guard, on: dest }])
                    }
                    // As for an add: resend from where a dispatcher of this id stopped on `dest`.
                    ComponentState::Stopped => vec![Change::RaiseCheckpoint(guard, checkpoint)],
                    // The destination refused the create for good (as for an add).
                    ComponentState::Removed if self.refuses_ours(checkpoint) => {
                        self.finish(OperatorOutcome::Failed, vec![Change::Renew(guard)])
                    }
                    _ => Vec::new(),
                }
            }
            (MovePhase::AddDest, OpEvent::NodeRemoved(n)) if *n == dest => {
                self.finish(OperatorOutcome::Failed, vec![Change::Absent(guard)])
            }
            _ => Vec::new(),
        }
    }

    fn set_move_phase(&mut self, next: MovePhase) {
        if let Kind::Move { phase, .. } = &mut self.kind {
            debug_assert!(
                matches!((*phase, next), (MovePhase::RemoveOrigin, _)),
                "a move only leaves RemoveOrigin forward"
            );
            *phase = next;
        }
    }
}
