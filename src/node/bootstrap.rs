//! Bootstrap, post-bootstrap and close: how a new maintainer takes a manager over and what it is
//! told, with the snapshot made consistent with concurrent completions (I12: a Remove in flight is
//! reported with the dispatcher it removes).

use std::collections::HashSet;
use std::sync::Arc;

use crate::ids::{DispatcherId, Mode, NodeId};
use crate::messages::{
    BootstrapRequest, BootstrapResponse, BootstrapSpan, CloseRequest, CloseResponse, PostBootstrapRequest,
    PostBootstrapResponse, RunningError,
};
use crate::mutation::Mutation;
use crate::span::TableSpan;

use super::effect::{CreateTicket, DropReason, Effect, Reaction, Reply};
use super::fence::{self, Owner};
use super::journal::RequestKind;
use super::manager::DispatcherManager;
use super::registry::{transition, DispatcherRecord, RecordPhase, RecordSpec, RecordState};

impl DispatcherManager {
    /// Handles a `MaintainerBootstrapRequest` from maintainer node `from`.
    ///
    /// Guarantee (I12): when the response is built, every create admitted under an older owner has
    /// either executed (its dispatcher is in `spans`) or been withdrawn and will never execute; and
    /// a dispatcher reported alive whose removal is in flight is reported with its Remove.
    pub fn handle_bootstrap(&self, from: &NodeId, request: &BootstrapRequest) -> Reaction {
        if !fence::may_take_over(self.fence.owner(), from, request.epoch) {
            return Reaction::dropped(DropReason::Fenced);
        }
        // S9: validate the table triggers before touching the owner.
        if let Some(message) = self.trigger_mismatch(request) {
            let mut effects = Vec::new();
            if request.epoch > self.fence.owner().epoch && !self.has_mutation(Mutation::KeepOlderTriggers) {
                // The trigger in the way is an older owner's: close it, so the newer owner's
                // resend succeeds even if that owner can never remove it (it moved on and a
                // delayed copy of its own bootstrap re-created it, or it died mid-removal).
                effects.extend(self.close_older_triggers(request));
            }
            effects.push(self.bootstrap_error(from, request, "trigger mismatch", message));
            return Reaction::dropped_with(DropReason::Unknown, effects);
        }
        let taken = match self.fence.take_over(from, request.epoch) {
            Ok(taken) => taken,
            Err(_) => return Reaction::dropped(DropReason::Fenced),
        };
        // Every bootstrap withdraws the older owners' unexecuted creates before its snapshot, not
        // only the one that changed the owner: a second bootstrap of the same new owner (a resend,
        // or another worker) may answer while the first has not withdrawn yet, and a create it
        // neither withdrew nor listed would then execute unreported (I12, issue 15 fault 1).
        if taken.changed || !self.has_mutation(Mutation::SameOwnerBootstrapSkipsWithdrawal) {
            self.withdraw_stale_creates(taken.owner);
        }
        if taken.changed {
            self.merges.forget_aborted();
            // A new owner's creates carry its own start points: the old term's tombstones go.
            for (key, _) in self.closed.entries() {
                self.closed.remove_if(&key, |_| true);
            }
        }
        let mut effects = self.ensure_triggers(request);
        let response = self.snapshot(taken.owner);
        effects.push(Effect::Reply { to: from.clone(), reply: Reply::Bootstrap(response) });
        Reaction::applied(effects)
    }

    fn trigger_mismatch(&self, request: &BootstrapRequest) -> Option<String> {
        let wanted = [(Mode::Default, request.trigger), (Mode::Redo, request.redo_trigger)];
        for (mode, want) in wanted {
            if mode == Mode::Redo && !self.config.redo_enabled {
                continue;
            }
            match (want, self.trigger(mode)) {
                (None, Some(have)) => {
                    return Some(format!(
                        "{mode:?} table trigger {} present during nil trigger bootstrap",
                        have.id
                    ))
                }
                (Some(want), Some(have)) if have.id != want => {
                    return Some(format!(
                        "{mode:?} table trigger id mismatch: have {}, asked {want}",
                        have.id
                    ))
                }
                _ => {}
            }
        }
        None
    }

    /// Requests the close of every trigger that differs from the one the request names.
    fn close_older_triggers(&self, request: &BootstrapRequest) -> Vec<Effect> {
        let wanted = [(Mode::Default, request.trigger), (Mode::Redo, request.redo_trigger)];
        let mut effects = Vec::new();
        for (mode, want) in wanted {
            let Some(have) = self.trigger(mode) else { continue };
            if Some(have.id) == want {
                continue;
            }
            if let Ok(before) = have.transition(transition::request_removal) {
                if !before.removing {
                    effects.push(Effect::Close { id: have.id, mode });
                }
            }
        }
        effects
    }

    fn bootstrap_error(
        &self,
        to: &NodeId,
        request: &BootstrapRequest,
        code: &str,
        message: String,
    ) -> Effect {
        Effect::Reply {
            to: to.clone(),
            reply: Reply::Bootstrap(BootstrapResponse {
                changefeed: self.config.changefeed.clone(),
                err: Some(RunningError {
                    time: String::new(),
                    node: self.config.node.to_string(),
                    code: code.to_string(),
                    message,
                }),
                epoch: request.epoch,
                ..BootstrapResponse::default()
            }),
        }
    }

    /// After an owner change: every create admitted by an owner the new one would not admit, and
    /// not yet committed, is cancelled here; the commit CAS and this cancel CAS decide it once.
    fn withdraw_stale_creates(&self, owner: &Owner) {
        for record in self.registry.records() {
            let Some(admission) = &record.admission else { continue };
            if record.state().phase != RecordPhase::Creating
                || fence::admits(owner, &admission.from, admission.epoch)
            {
                continue;
            }
            self.cancel_creating(&record);
        }
    }

    /// Cancels a create that has not executed: the record leaves the registry and its create's
    /// journal entry goes (remove-if-same incarnation). The commit CAS and this cancel decide it
    /// once.
    fn cancel_creating(&self, record: &Arc<DispatcherRecord>) {
        if record.transition(transition::cancel).is_ok() {
            self.registry.release(record);
            let key = super::journal::OpKey { mode: record.mode, span: record.span.clone() };
            self.operators.finish_if(&key, |e| e.target == record.incarnation);
        }
    }

    /// Creates the table triggers the request names and this manager lacks (S11). They are live
    /// at once (the reference creates them synchronously); the embedder builds them from the
    /// returned tickets, whose commit is a no-op.
    fn ensure_triggers(&self, request: &BootstrapRequest) -> Vec<Effect> {
        let mut effects = Vec::new();
        for (mode, want) in [(Mode::Default, request.trigger), (Mode::Redo, request.redo_trigger)] {
            let Some(id) = want else { continue };
            if (mode == Mode::Redo && !self.config.redo_enabled) || self.trigger(mode).is_some() {
                continue;
            }
            if let Some(ticket) = self.make_trigger(mode, id, request.start_ts) {
                effects.push(Effect::Create(ticket));
            }
        }
        effects
    }

    fn make_trigger(&self, mode: Mode, id: DispatcherId, start_ts: u64) -> Option<CreateTicket> {
        let record = self.registry.make(
            RecordSpec {
                id,
                mode,
                span: TableSpan::table_trigger(self.config.keyspace_id),
                schema_id: 0,
                start_ts,
                skip_dml_as_start_ts: false,
                admission: None,
            },
            RecordState::CREATING,
        );
        self.registry.reserve(&record, &[]).ok()?;
        record.transition(transition::commit).ok()?;
        self.registry.assign_seq(&record);
        Some(CreateTicket { record, op: None })
    }

    /// Builds the bootstrap snapshot for `owner`: live dispatchers, the operators `owner` may see,
    /// open merges and the triggers' start ts.
    ///
    /// Operators are read *before* dispatchers (I12): a completion closes the record first
    /// and removes its operator after, so a dispatcher this scan still sees alive had its operator
    /// present when the operator scan ran.
    pub fn snapshot(&self, owner: &Owner) -> BootstrapResponse {
        let operators = self.operators.entries();
        // In key order without a global sort: tables in order, each table's few records sorted
        // in place (a sort of every record by a packed prefix was 7 % of a 100,000-span
        // snapshot, issue 16). Every record is in its table's span set from its reservation to
        // its release, so every Live one is visited.
        let mut live: Vec<Arc<DispatcherRecord>> = Vec::with_capacity(self.registry.len());
        self.registry.for_each_table_in_order(|records| {
            let start = live.len();
            live.extend(records.iter().filter(|r| r.state().phase == RecordPhase::Live).cloned());
            live[start..].sort_unstable_by(|a, b| (&a.span, a.id).cmp(&(&b.span, b.id)));
        });
        let spans: Vec<BootstrapSpan> = live
            .iter()
            .map(|r| BootstrapSpan {
                id: r.id,
                mode: r.mode,
                schema_id: r.schema_id,
                span: r.span.clone(),
                state: r.state().component,
                checkpoint_ts: r.checkpoint_ts(),
                block: r.barrier_state().map(Box::new),
            })
            .collect();
        // An older owner's Remove stays only while the snapshot lists its dispatcher. Those are
        // rare, so only their ids are looked for among the listed spans (a set of every listed
        // id cost a sixth of a 100,000-span snapshot, issue 16).
        let stale_removes: HashSet<(Mode, DispatcherId)> = operators
            .iter()
            .filter(|(_, e)| e.kind() == RequestKind::Remove && !fence::admits(owner, &e.from, e.epoch()))
            .map(|(key, e)| (key.mode, e.id()))
            .collect();
        let listed: HashSet<(Mode, DispatcherId)> = if stale_removes.is_empty() {
            HashSet::new()
        } else {
            spans.iter().map(|s| (s.mode, s.id)).filter(|k| stale_removes.contains(k)).collect()
        };
        let mut ops: Vec<_> = operators
            .into_iter()
            .filter(|(key, entry)| {
                let current = fence::admits(owner, &entry.from, entry.epoch());
                match entry.kind() {
                    RequestKind::Merge => false,
                    RequestKind::Create => current,
                    RequestKind::Remove => current || listed.contains(&(key.mode, entry.id())),
                }
            })
            .collect();
        ops.sort_by(|a, b| a.0.cmp(&b.0));
        let trigger_start = |mode| self.trigger(mode).map_or(0, |t| t.start_ts());
        BootstrapResponse {
            changefeed: self.config.changefeed.clone(),
            spans,
            err: None,
            checkpoint_ts: trigger_start(Mode::Default),
            redo_checkpoint_ts: if self.is_redo_ready() { trigger_start(Mode::Redo) } else { 0 },
            operators: ops
                .iter()
                .filter_map(|(key, entry)| entry.schedule_request(key, &self.config.changefeed))
                .collect(),
            epoch: owner.epoch,
            merge_operators: self.merges.in_progress(),
        }
    }

    /// Handles a `MaintainerPostBootstrapRequest`: the table trigger must exist and match.
    pub fn handle_post_bootstrap(&self, from: &NodeId, request: &PostBootstrapRequest) -> Reaction {
        if self.fence.admit(from, request.epoch).is_none() {
            return Reaction::dropped(DropReason::Fenced);
        }
        let have = self.trigger(Mode::Default).map(|t| t.id);
        let response = match (request.trigger, have) {
            (Some(want), Some(have)) if want == have => PostBootstrapResponse {
                changefeed: self.config.changefeed.clone(),
                trigger: Some(want),
                err: None,
                epoch: request.epoch,
            },
            _ => PostBootstrapResponse {
                changefeed: self.config.changefeed.clone(),
                trigger: None,
                err: Some(RunningError {
                    time: String::new(),
                    node: self.config.node.to_string(),
                    code: "table trigger missing".to_string(),
                    message: format!(
                        "post-bootstrap asked for {:?}, this node has {have:?}",
                        request.trigger
                    ),
                }),
                epoch: request.epoch,
            },
        };
        Reaction::applied(vec![Effect::Reply { to: from.clone(), reply: Reply::PostBootstrap(response) }])
    }

    /// Handles a `MaintainerCloseRequest`. A stale sender is acknowledged (`success = true`) without
    /// touching anything, so it stops retrying. An admitted close starts closing every dispatcher
    /// once and answers `success = true` only when none is left.
    pub fn handle_close(&self, from: &NodeId, request: &CloseRequest) -> Reaction {
        let reply = |success| Effect::Reply {
            to: from.clone(),
            reply: Reply::Close(CloseResponse {
                changefeed: self.config.changefeed.clone(),
                success,
                epoch: request.epoch,
            }),
        };
        if self.fence.admit(from, request.epoch).is_none() {
            return Reaction::dropped_with(DropReason::Fenced, vec![reply(true)]);
        }
        let mut effects = Vec::new();
        if self.mark_closing(request.removed) {
            for record in self.registry.records() {
                let state = record.state();
                match state.phase {
                    // A create in flight is withdrawn with its journal entry, as a bootstrap
                    // withdraws a stale one (its commit will fail; nothing else finishes it).
                    RecordPhase::Creating => self.cancel_creating(&record),
                    RecordPhase::Live => {
                        if let Ok(before) = record.transition(transition::request_removal) {
                            if !before.removing {
                                effects.push(Effect::Close { id: record.id, mode: record.mode });
                            }
                        }
                    }
                    RecordPhase::Closed | RecordPhase::Cancelled => {}
                }
            }
        }
        let done = self.registry.records().iter().all(|r| !r.state().is_alive());
        effects.push(reply(done));
        Reaction::applied(effects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ChangefeedId, Epoch};
    use crate::messages::{DispatcherConfig, OperatorType, Order, ScheduleRequest};
    use crate::node::manager::ManagerConfig;

    fn manager() -> DispatcherManager {
        DispatcherManager::new(ManagerConfig {
            node: NodeId::new("n1"),
            changefeed: ChangefeedId::default(),
            keyspace_id: 0,
            redo_enabled: false,
        })
    }

    fn bootstrap(epoch: u64) -> BootstrapRequest {
        BootstrapRequest { start_ts: 1, epoch: Epoch(epoch), ..BootstrapRequest::default() }
    }

    fn create(epoch: u64) -> ScheduleRequest {
        ScheduleRequest {
            changefeed: ChangefeedId::default(),
            config: DispatcherConfig {
                id: DispatcherId::new(0, 7).unwrap(),
                mode: Mode::Default,
                start_ts: 100,
                schema_id: 1,
                skip_dml_as_start_ts: false,
            },
            order: Order::Create { span: TableSpan::new(0, 1, b"a".to_vec(), b"m".to_vec()).unwrap() },
            operator_type: OperatorType::Add,
            epoch: Epoch(epoch),
        }
    }

    /// (executed, listed) for the interleaving below, with `mutation` switched on.
    fn interleaving(mutation: crate::mutation::Mutations) -> (bool, bool) {
        let dm = manager().mutated(mutation);
        let mt = NodeId::new("mt");
        assert_eq!(dm.handle_bootstrap(&mt, &bootstrap(2)).outcome, super::super::effect::Outcome::Applied);
        let step = dm.handle_schedule(&mt, create(2));
        let ticket = step
            .effects
            .iter()
            .find_map(|e| match e {
                Effect::Create(t) => Some(t.clone()),
                _ => None,
            })
            .expect("an e2 create ticket");
        // A: the swap alone, then preempted.
        let a = dm.fence.take_over(&mt, Epoch(3)).expect("A takes over");
        assert!(a.changed);
        // B: the whole bootstrap, while A is preempted.
        let b = dm.handle_bootstrap(&mt, &bootstrap(3));
        let response = b
            .effects
            .iter()
            .find_map(|e| match e {
                Effect::Reply { reply: Reply::Bootstrap(r), .. } => Some(r.clone()),
                _ => None,
            })
            .expect("B answers");
        let listed = response.spans.iter().any(|s| s.id == ticket.record.id);
        let executed = dm.commit_create(&ticket).is_ok();
        (executed, listed)
    }

    /// Issue 15, fault 1, as one interleaving: bootstrap A of the new owner (mt, e3) wins the owner
    /// swap and is preempted before withdrawing; bootstrap B of the same owner answers meanwhile.
    /// B must itself withdraw the e2 create still being built, or its answer omits a dispatcher
    /// that then executes (I12).
    #[test]
    fn second_bootstrap_of_the_same_new_owner_withdraws_before_answering() {
        let (executed, listed) = interleaving(crate::mutation::Mutations::NONE);
        assert!(!executed || listed, "the e2 create executed but B's snapshot omits it");
        assert!(!executed, "B withdrew the unexecuted e2 create");
        // The fault, re-opened: the interleaving shows it.
        let broken = interleaving(Mutation::SameOwnerBootstrapSkipsWithdrawal.into());
        assert_eq!(broken, (true, false), "without the fix the create runs unreported");
    }
}
