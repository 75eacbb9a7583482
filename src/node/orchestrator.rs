//! The node-wide intake of bootstrap and close requests: one dispatcher manager per changefeed,
//! created by its first bootstrap, and epoch tombstones of closed changefeeds so that a late
//! bootstrap from a maintainer older than the close cannot bring a removed changefeed back
//! (I1: once a newer maintainer has acted, an older one's messages are inert).

use std::sync::Arc;

use crate::ids::{ChangefeedId, Epoch, NodeId};
use crate::messages::{BootstrapRequest, CloseRequest, CloseResponse, ToNode};
use crate::mutation::Mutations;
use crate::sync::{Computed, Map, Op};

use super::effect::{DropReason, Effect, Outcome, Reaction, Reply};
use super::manager::{DispatcherManager, ManagerConfig};

/// All dispatcher managers of one node, by changefeed.
pub struct Orchestrator {
    node: NodeId,
    managers: Map<u128, Arc<DispatcherManager>>,
    tombstones: Map<u128, Epoch>,
    mutation: Mutations,
    redo_enabled: bool,
}

impl Orchestrator {
    /// An orchestrator for node `node` with no changefeed.
    pub fn new(node: NodeId) -> Self {
        Self {
            node,
            managers: Map::new(),
            tombstones: Map::new(),
            mutation: Mutations::NONE,
            redo_enabled: false,
        }
    }

    /// Whether changefeeds that [`handle`](Self::handle) creates have redo enabled (from the
    /// changefeed configuration, which the embedder parses; off by default).
    pub fn with_redo(self, redo_enabled: bool) -> Self {
        Self { redo_enabled, ..self }
    }

    /// The node's one entry point for a maintainer's message (decoded by
    /// [`crate::wire::decode_to_node`]): bootstrap and close here, the rest by the changefeed's
    /// manager. A message for a changefeed this node has no manager of is dropped as
    /// [`DropReason::UnknownChangefeed`]; the maintainer bootstraps before anything else.
    pub fn handle(&self, from: &NodeId, message: ToNode) -> Reaction {
        let manager = self.managers.get(&message.changefeed().gid());
        match (message, manager) {
            (ToNode::Bootstrap(request), _) => self.handle_bootstrap(from, &request, self.redo_enabled),
            (ToNode::Close(request), _) => self.handle_close(from, &request),
            (_, None) => Reaction::dropped(DropReason::UnknownChangefeed),
            (ToNode::Schedule(request), Some(manager)) => manager.handle_schedule(from, request),
            (ToNode::Merge(request), Some(manager)) => manager.handle_merge(from, request),
            (ToNode::PostBootstrap(request), Some(manager)) => manager.handle_post_bootstrap(from, &request),
            (ToNode::Barrier(response), Some(manager)) => manager.handle_heartbeat_response(from, response),
        }
    }

    /// An orchestrator whose managers carry a deliberate bug (see [`crate::mutation`]).
    #[doc(hidden)]
    pub fn mutated(node: NodeId, mutation: Mutations) -> Self {
        Self { mutation, ..Self::new(node) }
    }

    /// The manager of a changefeed, if one is published.
    pub fn manager(&self, changefeed: &ChangefeedId) -> Option<Arc<DispatcherManager>> {
        self.managers.get(&changefeed.gid())
    }

    /// Every published manager.
    pub fn managers(&self) -> Vec<Arc<DispatcherManager>> {
        self.managers.values()
    }

    /// The close tombstone of a changefeed: the highest epoch that closed it.
    pub fn tombstone(&self, changefeed: &ChangefeedId) -> Option<Epoch> {
        self.tombstones.get(&changefeed.gid())
    }

    /// Handles a bootstrap: creates the changefeed's manager on first sight (unless a close
    /// tombstone says this maintainer is not newer than the close), then lets it answer.
    /// `redo_enabled` comes from the changefeed configuration, which the embedder parses.
    pub fn handle_bootstrap(
        &self,
        from: &NodeId,
        request: &BootstrapRequest,
        redo_enabled: bool,
    ) -> Reaction {
        let gid = request.changefeed.gid();
        let mut existing = self.managers.get(&gid);
        if let Some(closing) = existing.as_ref().filter(|m| m.is_closing()) {
            // S10: a closed (paused or removed) manager is not reopened by a newer maintainer: once
            // its dispatchers are all closed it is retired (its close is over, whoever sent it)
            // and the newer maintainer starts a fresh one; until then the bootstrap is refused and
            // resent. Otherwise a close whose owner moved on before it finished would leave the
            // manager closing for good, refusing the newer maintainer's creates.
            let owner = closing.owner();
            let newer = request.epoch != Epoch::COMPAT && request.epoch > owner.epoch;
            if newer {
                if !closing.all_closed() {
                    return Reaction::dropped(DropReason::Closing);
                }
                let retired = CloseRequest {
                    changefeed: request.changefeed.clone(),
                    removed: closing.is_removed(),
                    epoch: owner.epoch,
                };
                self.managers.remove_if(&gid, |m| Arc::ptr_eq(m, closing));
                self.record_tombstone(gid, &retired);
                existing = None;
            }
        }
        let manager = match existing {
            Some(manager) => manager,
            None => {
                // S3: a closed changefeed comes back only with a strictly newer, non-compat epoch.
                if let Some(closed) = self.tombstones.get(&gid) {
                    if request.epoch == Epoch::COMPAT || request.epoch <= closed {
                        return Reaction::dropped(DropReason::Closing);
                    }
                }
                let fresh = Arc::new(
                    DispatcherManager::new(ManagerConfig {
                        node: self.node.clone(),
                        changefeed: request.changefeed.clone(),
                        keyspace_id: request.keyspace_id,
                        redo_enabled,
                    })
                    .mutated(self.mutation),
                );
                let published = match self.managers.compute(gid, |found| match found {
                    Some(winner) => Op::Abort(winner.clone()),
                    None => Op::Insert(fresh.clone()),
                }) {
                    Computed::Aborted(winner) => winner,
                    _ => fresh,
                };
                // S6: a published manager clears the tombstone.
                self.tombstones.remove_if(&gid, |_| true);
                published
            }
        };
        manager.handle_bootstrap(from, request)
    }

    /// Handles a close. An absent manager is acknowledged (and tombstoned); a present one is
    /// closed by its admitted owner and unpublished once empty; a stale sender is acknowledged
    /// without touching anything.
    pub fn handle_close(&self, from: &NodeId, request: &CloseRequest) -> Reaction {
        let gid = request.changefeed.gid();
        let Some(manager) = self.managers.get(&gid) else {
            self.record_tombstone(gid, request);
            let reply =
                CloseResponse { changefeed: request.changefeed.clone(), success: true, epoch: request.epoch };
            return Reaction::applied(vec![Effect::Reply { to: from.clone(), reply: Reply::Close(reply) }]);
        };
        let step = manager.handle_close(from, request);
        let closed = step.outcome == Outcome::Applied
            && step
                .effects
                .iter()
                .any(|e| matches!(e, Effect::Reply { reply: Reply::Close(r), .. } if r.success));
        if closed {
            self.managers.remove_if(&gid, |m| Arc::ptr_eq(m, &manager));
            self.record_tombstone(gid, request);
        }
        step
    }

    /// Tombstone rule: a compat (epoch 0) pause leaves none; otherwise keep the highest epoch.
    fn record_tombstone(&self, gid: u128, request: &CloseRequest) {
        if request.epoch == Epoch::COMPAT && !request.removed {
            return;
        }
        self.tombstones.compute(gid, |found| match found {
            Some(existing) if *existing >= request.epoch => Op::Abort(()),
            _ => Op::Insert(request.epoch),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cf() -> ChangefeedId {
        ChangefeedId { high: 1, low: 2, ..ChangefeedId::default() }
    }

    fn bootstrap(epoch: u64) -> BootstrapRequest {
        BootstrapRequest { changefeed: cf(), epoch: Epoch(epoch), ..BootstrapRequest::default() }
    }

    fn close(epoch: u64, removed: bool) -> CloseRequest {
        CloseRequest { changefeed: cf(), removed, epoch: Epoch(epoch) }
    }

    /// TestHandleBootstrapRequestRejectsClosedOlderMaintainerEpoch.
    #[test]
    fn bootstrap_older_than_the_close_tombstone_is_dropped() {
        let o = Orchestrator::new(NodeId::new("n1"));
        let mt = NodeId::new("mt");
        let _ = o.handle_close(&mt, &close(2, true));
        assert_eq!(o.tombstone(&cf()), Some(Epoch(2)));
        for epoch in [1, 2] {
            let step = o.handle_bootstrap(&mt, &bootstrap(epoch), false);
            assert_eq!(step.outcome, Outcome::Dropped(DropReason::Closing));
            assert!(step.effects.is_empty());
            assert!(o.manager(&cf()).is_none());
        }
        let step = o.handle_bootstrap(&mt, &bootstrap(3), false);
        assert_eq!(step.outcome, Outcome::Applied);
        assert!(o.manager(&cf()).is_some());
        assert_eq!(o.tombstone(&cf()), None, "a published manager clears the tombstone");
    }

    /// TestHandleCloseRequestDoesNotRecordEpochZeroTombstoneForCompatClose and
    /// TestHandleCloseRequestRecordsEpochZeroTombstoneForRemovedChangefeed.
    #[test]
    fn compat_close_tombstones_only_a_removed_changefeed() {
        let o = Orchestrator::new(NodeId::new("n1"));
        let mt = NodeId::new("mt");
        let _ = o.handle_close(&mt, &close(0, false));
        assert_eq!(o.tombstone(&cf()), None);
        let _ = o.handle_close(&mt, &close(0, true));
        assert_eq!(o.tombstone(&cf()), Some(Epoch(0)));
        let step = o.handle_bootstrap(&mt, &bootstrap(0), false);
        assert_eq!(step.outcome, Outcome::Dropped(DropReason::Closing));
    }

    /// TestHandleCloseRequestAcksStaleMaintainerEpoch at node level: the manager stays published.
    #[test]
    fn stale_close_is_acked_and_keeps_the_manager_and_an_admitted_one_unpublishes_it() {
        let o = Orchestrator::new(NodeId::new("n1"));
        let mt = NodeId::new("mt");
        let _ = o.handle_bootstrap(&mt, &bootstrap(2), false);
        let stale = o.handle_close(&NodeId::new("old"), &close(1, true));
        assert!(stale
            .effects
            .iter()
            .any(|e| matches!(e, Effect::Reply { reply: Reply::Close(r), .. } if r.success)));
        assert!(o.manager(&cf()).is_some());
        assert_eq!(o.tombstone(&cf()), None);
        let admitted = o.handle_close(&mt, &close(2, true));
        assert_eq!(admitted.outcome, Outcome::Applied);
        assert!(o.manager(&cf()).is_none(), "an empty manager closes at once");
        assert_eq!(o.tombstone(&cf()), Some(Epoch(2)));
    }

    /// S10: a newer maintainer's bootstrap on a closing manager waits for its dispatchers to
    /// close, then starts a fresh manager instead of inheriting the close.
    #[test]
    fn a_newer_bootstrap_retires_a_closing_manager_once_its_dispatchers_closed() {
        use crate::ids::{DispatcherId, Mode};
        use crate::messages::ComponentState;
        let o = Orchestrator::new(NodeId::new("n1"));
        let (old, new) = (NodeId::new("old"), NodeId::new("new"));
        let trigger = DispatcherId::new(9, 1).unwrap();
        let step =
            o.handle_bootstrap(&old, &BootstrapRequest { trigger: Some(trigger), ..bootstrap(2) }, false);
        let manager = o.manager(&cf()).unwrap();
        for effect in step.effects {
            if let Effect::Create(ticket) = effect {
                manager.commit_create(&ticket).unwrap();
                let _ =
                    manager.dispatcher_state_changed(ticket.id(), ticket.mode(), ComponentState::Working, 5);
            }
        }
        let closing = o.handle_close(&old, &close(2, false));
        assert!(closing.effects.iter().any(|e| matches!(e, Effect::Close { .. })));
        assert!(o.manager(&cf()).is_some_and(|m| m.is_closing()), "its trigger is still closing");
        // The close's owner moves on (it crashed, or a newer stop superseded it).
        let refused = o.handle_bootstrap(&new, &bootstrap(3), false);
        assert_eq!(refused.outcome, Outcome::Dropped(DropReason::Closing));
        let _ = manager.dispatcher_closed(trigger, Mode::Default, 5, None);
        let taken = o.handle_bootstrap(&new, &bootstrap(3), false);
        assert_eq!(taken.outcome, Outcome::Applied);
        let fresh = o.manager(&cf()).unwrap();
        assert!(!Arc::ptr_eq(&fresh, &manager));
        assert!(!fresh.is_closing());
        assert_eq!(fresh.owner().epoch, Epoch(3));
        // An older or equal epoch never retires it.
        let _ = o.handle_close(&new, &close(3, false));
        assert_eq!(
            o.handle_bootstrap(&old, &bootstrap(3), false).outcome,
            Outcome::Dropped(DropReason::Closing)
        );
    }
}
