//! Operator requests from outside the maintainer (move, split, merge), checked against the
//! running mode before an operator is admitted.

use crate::ids::{DispatcherId, Mode, NodeId};
use crate::messages::ComponentState;

use super::core::Maintainer;
use super::event::Lifecycle;
use super::operator::Operator;
use super::spans::{Guard, NewSpan, SpanRecord, SpanState};

impl Maintainer {
    pub(super) fn request_move(&mut self, now_ms: u64, mode: Mode, id: DispatcherId, to: NodeId) {
        const R: &str = "move";
        let Some(mode) = self.running_mode(R, mode) else { return };
        if !self.nodes.get(&to).is_some_and(|i| i.ready) {
            return self.refuse(R, format!("node {to} is not a ready member"));
        }
        let op = match self.modes[mode].sc.get(id) {
            Some(r) if r.state == SpanState::Replicating => Operator::moving(r, to),
            Some(r) => return self.refuse(R, format!("span {id} is {:?}", r.state)),
            None => return self.refuse(R, format!("no span {id} in {mode:?} mode")),
        };
        if let Some(op) = op {
            if let Err(why) = self.admit(now_ms, mode, op) {
                self.refuse(R, format!("{why:?}"));
            }
        }
    }

    pub(super) fn request_split(&mut self, now_ms: u64, mode: Mode, id: DispatcherId, into: usize) {
        const R: &str = "split";
        let Some(mode) = self.running_mode(R, mode) else { return };
        let op = match self.modes[mode].sc.get(id) {
            Some(r) if r.state == SpanState::Replicating => match r.span.split_even(into) {
                Some(parts) => Operator::split(r, parts),
                None => return self.refuse(R, format!("span {:?} cannot be cut into {into}", r.span)),
            },
            Some(r) => return self.refuse(R, format!("span {id} is {:?}", r.state)),
            None => return self.refuse(R, format!("no span {id} in {mode:?} mode")),
        };
        if let Some(op) = op {
            if let Err(why) = self.admit(now_ms, mode, op) {
                self.refuse(R, format!("{why:?}"));
            }
        }
    }

    pub(super) fn request_merge(&mut self, now_ms: u64, mode: Mode, ids: &[DispatcherId]) {
        const R: &str = "merge";
        let Some(mode) = self.running_mode(R, mode) else { return };
        if let Err(why) = self.start_merge(now_ms, mode, ids) {
            self.refuse(R, why);
        }
    }

    /// Admits a merge of `ids` (two or more adjacent replicating spans on one node, in key
    /// order) into a new span that starts at their lowest checkpoint (L2); on refusal nothing
    /// changed.
    pub(super) fn start_merge(
        &mut self,
        now_ms: u64,
        mode: Mode,
        ids: &[DispatcherId],
    ) -> Result<(), String> {
        let sc = &self.modes[mode].sc;
        let records: Option<Vec<&SpanRecord>> = ids.iter().map(|id| sc.get(*id)).collect();
        let Some(records) = records else { return Err("unknown span".into()) };
        let node = records.first().and_then(|r| r.node.clone());
        let valid = records.len() >= 2
            && records.iter().all(|r| r.state == SpanState::Replicating && r.node == node)
            && records.windows(2).all(|w| w[0].span.is_followed_by(&w[1].span));
        let (true, Some(node)) = (valid, node) else {
            return Err("spans must be two or more adjacent replicating spans on one node".into());
        };
        let span = records[0].span.joined_with(&records[records.len() - 1].span);
        let checkpoint = records.iter().map(|r| r.checkpoint).min().unwrap_or(0).max(1);
        let schema_id = records[0].schema_id;
        let guards: Vec<Guard> = records.iter().map(|r| r.guard()).collect();
        let target_id = self.mint();
        let new = NewSpan {
            id: target_id,
            span,
            schema_id,
            checkpoint,
            component: ComponentState::Preparing,
            block: None,
        };
        let Some(target) = self.modes[mode].sc.insert(new, SpanState::Scheduling, Some(node.clone())) else {
            return Err("merged id taken".into());
        };
        if let Err(why) = self.admit_merge(now_ms, mode, target, node, guards, false) {
            let _ = self.modes[mode].sc.delete(target);
            return Err(format!("{why:?}"));
        }
        Ok(())
    }

    pub(super) fn running_mode(&mut self, request: &'static str, mode: Mode) -> Option<Mode> {
        if self.lifecycle != Lifecycle::Running {
            self.refuse(request, "the maintainer is not bootstrapped".into());
            return None;
        }
        if !self.has_mode(mode) {
            self.refuse(request, format!("{mode:?} mode is not enabled"));
            return None;
        }
        Some(mode)
    }
}
