//! Maintainer → node messages of the heartbeat path, fenced by epoch (I1) and routed to
//! the dispatchers they name. The answers themselves are pass-through effects for the embedder.
//!
//! | message | fence | routing / effect |
//! |---|---|---|
//! | `HeartBeatResponse` | yes (+ redo readiness, hazard R10) | Normal: the listed ids; DB: the schema's dispatchers plus the table trigger; All: every dispatcher of the mode → `DeliverBarrier` per live dispatcher |
//! | `CheckpointTsMessage` | none (it carries no epoch) | the default table trigger, unless closing → `SinkCheckpoint` |
//! | `RedoResolvedTsForwardMessage` | yes | monotone raise of the global redo resolved ts → `RedoGlobalTsAdvanced` when it rose |
//! | `RedoMetaMessage` | yes | the redo table trigger → `UpdateRedoMeta` |
//!
//! Documented drops, never panics: a dispatcher that is unknown, not live yet, or already closed
//! is skipped (the reference drops these silently too); a response that reaches nobody is
//! `DropReason::Unknown`.

use std::sync::Arc;

use crate::ids::{Mode, NodeId};
use crate::messages::{
    CheckpointTsMessage, HeartBeatResponse, Influence, RedoMetaMessage, RedoResolvedTsForward,
};
use crate::node::effect::{DropReason, Effect, Reaction};
use crate::node::manager::DispatcherManager;
use crate::node::registry::{DispatcherRecord, RecordPhase};

impl DispatcherManager {
    fn admit_inbound(&self, from: &NodeId, epoch: crate::ids::Epoch, mode: Mode) -> Result<(), DropReason> {
        self.fence.admit(from, epoch).ok_or(DropReason::Fenced)?;
        if mode == Mode::Redo && !self.is_redo_ready() {
            return Err(DropReason::RedoNotReady);
        }
        Ok(())
    }

    /// Handles a `HeartBeatResponse` from maintainer node `from`: fenced, then each answer goes to
    /// every live dispatcher it names.
    pub fn handle_heartbeat_response(&self, from: &NodeId, response: HeartBeatResponse) -> Reaction {
        if let Err(why) = self.admit_inbound(from, response.epoch, response.mode) {
            return Reaction::dropped(why);
        }
        let mode = response.mode;
        let mut effects = Vec::new();
        for answer in response.answers {
            let answer = Arc::new(answer);
            let mut deliver = |record: &DispatcherRecord| {
                effects.push(Effect::DeliverBarrier { id: record.id, mode, answer: answer.clone() });
            };
            match &answer.influence {
                Influence::Normal { ids } => {
                    for id in ids {
                        if let Some(record) = self.registry.get(mode, *id).filter(|r| is_live(r)) {
                            deliver(&record);
                        }
                    }
                }
                Influence::Db { schema_id } => self.registry.for_each(|r| {
                    if r.mode == mode
                        && is_live(r)
                        && (r.schema_id == *schema_id || r.span.is_table_trigger())
                    {
                        deliver(r);
                    }
                }),
                Influence::All => self.registry.for_each(|r| {
                    if r.mode == mode && is_live(r) {
                        deliver(r);
                    }
                }),
            }
        }
        if effects.is_empty() {
            return Reaction::dropped(DropReason::Unknown);
        }
        Reaction::applied(effects)
    }

    /// Handles a `CheckpointTsMessage` (not fenced: it has no epoch).
    pub fn handle_checkpoint_ts(&self, message: &CheckpointTsMessage) -> Reaction {
        if self.is_closing() {
            return Reaction::dropped(DropReason::Closing);
        }
        match self.trigger(Mode::Default) {
            Some(trigger) if is_live(&trigger) => Reaction::applied(vec![Effect::SinkCheckpoint {
                trigger: trigger.id,
                checkpoint_ts: message.checkpoint_ts,
            }]),
            _ => Reaction::dropped(DropReason::Unknown),
        }
    }

    /// Handles a `RedoResolvedTsForwardMessage`: the global redo resolved ts only rises.
    pub fn handle_redo_resolved_ts_forward(
        &self,
        from: &NodeId,
        message: &RedoResolvedTsForward,
    ) -> Reaction {
        if let Err(why) = self.admit_inbound(from, message.epoch, Mode::Redo) {
            return Reaction::dropped(why);
        }
        if self.raise_redo_global_ts(message.resolved_ts) {
            Reaction::applied(vec![Effect::RedoGlobalTsAdvanced { resolved_ts: message.resolved_ts }])
        } else {
            Reaction::applied(Vec::new())
        }
    }

    /// Handles a `RedoMetaMessage`: forwarded to the redo table trigger.
    pub fn handle_redo_meta(&self, from: &NodeId, message: &RedoMetaMessage) -> Reaction {
        if let Err(why) = self.admit_inbound(from, message.epoch, Mode::Redo) {
            return Reaction::dropped(why);
        }
        match self.trigger(Mode::Redo) {
            Some(trigger) if is_live(&trigger) => Reaction::applied(vec![Effect::UpdateRedoMeta {
                trigger: trigger.id,
                checkpoint_ts: message.checkpoint_ts,
                resolved_ts: message.resolved_ts,
            }]),
            _ => Reaction::dropped(DropReason::Unknown),
        }
    }
}

fn is_live(record: &DispatcherRecord) -> bool {
    record.state().phase == RecordPhase::Live
}
