//! Move: remove from the origin, then create on the destination under the same id. A move
//! leaves its remove phase only on a terminal status from the origin or the origin's death.

use super::{Change, Kind, MovePhase, OpEvent, Operator, OperatorOutcome};
use crate::messages::ComponentState;

impl Operator {
    pub(super) fn on_move(&mut self, event: OpEvent<'_>) -> Vec<Change> {
        let guard = self.guard;
        let Kind::Move { origin, dest, phase } = &self.kind else { return Vec::new() };
        let phase = *phase;
        // What the event says about each end, decided before any node id is cloned.
        let (from_origin, from_dest) = match event {
            OpEvent::Status { from, id, .. } => (self.mine(from, origin, id), self.mine(from, dest, id)),
            _ => (false, false),
        };
        let (origin_died, dest_died) = match event {
            OpEvent::NodeRemoved(n) => (n == origin, n == dest),
            _ => (false, false),
        };
        let to_dest = || Change::Schedule { guard, from: Some(origin.clone()), to: dest.clone() };
        match (phase, event) {
            (MovePhase::RemoveOrigin, OpEvent::Status { state, checkpoint, .. })
                if from_origin && state.is_terminal() =>
            {
                // The destination starts where the origin stopped (never lower: a 0 is a no-op).
                let changes = vec![Change::RaiseCheckpoint(guard, checkpoint), to_dest()];
                self.set_move_phase(MovePhase::AddDest);
                changes
            }
            (MovePhase::RemoveOrigin, OpEvent::NodeRemoved(_)) if origin_died => {
                let changes = vec![to_dest()];
                self.set_move_phase(MovePhase::AddDest);
                changes
            }
            (MovePhase::RemoveOrigin, OpEvent::NodeRemoved(_)) if dest_died => {
                // The destination died first: the origin may still run (I2); keep removing it
                // and mark the span absent only once it stopped.
                self.set_move_phase(MovePhase::AbortRemoveOrigin);
                Vec::new()
            }
            (MovePhase::AbortRemoveOrigin, OpEvent::Status { state, checkpoint, .. })
                if from_origin && state.is_terminal() =>
            {
                let changes = vec![Change::RaiseCheckpoint(guard, checkpoint), Change::Absent(guard)];
                self.finish(OperatorOutcome::Failed, changes)
            }
            (MovePhase::AbortRemoveOrigin, OpEvent::NodeRemoved(_)) if origin_died => {
                self.finish(OperatorOutcome::Failed, vec![Change::Absent(guard)])
            }
            (MovePhase::AddDest, OpEvent::Status { state, checkpoint, .. }) if from_dest => match state {
                ComponentState::Working => {
                    let changes = self.bound_by_create(guard, dest.clone());
                    self.finish(OperatorOutcome::Succeeded, changes)
                }
                // As for an add: resend from where a dispatcher of this id stopped on `dest`.
                ComponentState::Stopped => vec![Change::RaiseCheckpoint(guard, checkpoint)],
                // The destination refused the create for good (as for an add).
                ComponentState::Removed if self.refuses_ours(checkpoint) => {
                    self.finish(OperatorOutcome::Failed, vec![Change::Renew(guard)])
                }
                _ => Vec::new(),
            },
            (MovePhase::AddDest, OpEvent::NodeRemoved(_)) if dest_died => {
                self.finish(OperatorOutcome::Failed, vec![Change::Absent(guard)])
            }
            _ => Vec::new(),
        }
    }

    fn set_move_phase(&mut self, next: MovePhase) {
        if let Kind::Move { phase, .. } = &mut self.kind {
            debug_assert_eq!(*phase, MovePhase::RemoveOrigin, "a move only leaves RemoveOrigin forward");
            *phase = next;
        }
    }
}
