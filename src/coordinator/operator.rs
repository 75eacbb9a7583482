//! The coordinator's operators: at most one per changefeed, each a small state machine that
//! resends its request on a timer until the reported maintainer statuses show its effect
//! (invariant K16: nothing is acked, "sent" never means "delivered").
//!
//! | operator | stages | done when |
//! |---|---|---|
//! | add | bump the epoch → add at the destination | the destination reports the new epoch working and bootstrapped |
//! | move | remove at the origin → bump → add at the target | the target reports the new epoch working and bootstrapped |
//! | stop | (lifecycle stored first) → cascade remove → store the end | the node reports the stopped epoch not working |
//!
//! The epoch is stored before any add carries it (K3), a bumped epoch goes to one node only (K4),
//! and a move adds at the target only after the origin stopped or left (K5).

use super::meta::Ticket;
use crate::ids::{Epoch, NodeId};

/// An add: place an absent changefeed's maintainer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Add {
    /// Where.
    pub dest: NodeId,
    /// How far.
    pub stage: AddStage,
}

/// The stages of an add.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum AddStage {
    /// Waiting for the store to bump the epoch.
    Bumping(Ticket),
    /// Sending the add with the bumped epoch.
    Adding {
        /// The new epoch.
        epoch: Epoch,
        /// When it was last sent.
        sent_ms: u64,
    },
}

/// A move: stop the maintainer at the origin first, then place it at the target.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Move {
    /// Where it runs.
    pub origin: NodeId,
    /// The epoch it runs at there.
    pub origin_epoch: Epoch,
    /// Where it goes.
    pub target: NodeId,
    /// How far.
    pub stage: MoveStage,
}

/// The stages of a move.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum MoveStage {
    /// Sending a non-cascade remove for the origin epoch.
    RemoveOrigin {
        /// When it was last sent.
        sent_ms: u64,
    },
    /// The origin stopped (or left); waiting for the store to bump the epoch.
    Bumping(Ticket),
    /// Sending the add at the target.
    AddTarget {
        /// The new epoch.
        epoch: Epoch,
        /// When it was last sent.
        sent_ms: u64,
    },
}

/// A stop: pause or remove. Its lifecycle change is stored before it starts (K13).
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Stop {
    /// The node whose maintainer to stop; `None` when none is known to run (or its node left):
    /// the remove then goes to the coordinator's own node, whose manager builds a removal-only
    /// maintainer that closes the changefeed's dispatchers everywhere.
    pub node: Option<NodeId>,
    /// The epoch to stop.
    pub epoch: Epoch,
    /// Remove for good (delete the keys at the end) rather than pause.
    pub removed: bool,
    /// How far.
    pub stage: StopStage,
}

/// The stages of a stop.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum StopStage {
    /// No running maintainer is known (never placed, its node left, or a placement was half
    /// way): the dispatchers it may have left are closed through the coordinator's own node, at
    /// an epoch above any they have seen, so the epoch is bumped first. `None` while waiting to
    /// retry after a failed bump.
    Bumping(Option<Ticket>),
    /// Sending the cascade remove.
    Stopping {
        /// When it was last sent.
        sent_ms: u64,
    },
    /// Everything stopped; storing the end (progress cleared, or the keys deleted). `None` while
    /// waiting to retry after a failed write.
    Finishing(Option<Ticket>),
}

/// One changefeed's operator.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum Operator {
    /// Place it.
    Add(Add),
    /// Move it.
    Move(Move),
    /// Stop it.
    Stop(Stop),
}

impl Operator {
    /// The operator's name in views and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Operator::Add(_) => "add",
            Operator::Move(_) => "move",
            Operator::Stop(s) if s.removed => "remove",
            Operator::Stop(_) => "stop",
        }
    }

    /// The ticket of the store request it waits for, if any.
    pub fn ticket(&self) -> Option<Ticket> {
        match self {
            Operator::Add(Add { stage: AddStage::Bumping(t), .. })
            | Operator::Move(Move { stage: MoveStage::Bumping(t), .. })
            | Operator::Stop(Stop {
                stage: StopStage::Finishing(Some(t)) | StopStage::Bumping(Some(t)),
                ..
            }) => Some(*t),
            _ => None,
        }
    }

    /// When the request of its current stage was last sent (0: never), if the stage sends one.
    pub fn sent_ms(&mut self) -> Option<&mut u64> {
        match self {
            Operator::Add(Add { stage: AddStage::Adding { sent_ms, .. }, .. })
            | Operator::Move(Move {
                stage: MoveStage::RemoveOrigin { sent_ms } | MoveStage::AddTarget { sent_ms, .. },
                ..
            })
            | Operator::Stop(Stop { stage: StopStage::Stopping { sent_ms }, .. }) => Some(sent_ms),
            _ => None,
        }
    }

    /// The node a new maintainer is (or will be) going to, for placement counts.
    pub fn destination(&self) -> Option<&NodeId> {
        match self {
            Operator::Add(a) => Some(&a.dest),
            Operator::Move(m) => Some(&m.target),
            Operator::Stop(_) => None,
        }
    }

    /// Whether a maintainer reporting `epoch` from `node` is one this operator works with (so it
    /// is not a stray to stop); `me` is the coordinator's own node, where node-less stops go.
    pub fn expects(&self, node: &NodeId, epoch: Epoch, me: &NodeId) -> bool {
        match self {
            Operator::Add(a) => {
                &a.dest == node && matches!(a.stage, AddStage::Adding { epoch: e, .. } if e == epoch)
            }
            Operator::Move(m) => {
                (&m.origin == node && m.origin_epoch == epoch)
                    || (&m.target == node
                        && matches!(m.stage, MoveStage::AddTarget { epoch: e, .. } if e == epoch))
            }
            Operator::Stop(s) => {
                s.epoch == epoch
                    && s.node.as_ref().unwrap_or(me) == node
                    && !matches!(s.stage, StopStage::Bumping(_))
            }
        }
    }
}
