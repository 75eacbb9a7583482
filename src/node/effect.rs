//! What the node core asks its embedder to do, and what it tells it.
//!
//! The core never creates, closes or sends anything itself: each call returns a [`Reaction`], an
//! outcome plus a list of [`Effect`]s, and the embedder reports back through the manager's
//! callbacks (`commit_create`, `create_failed`, `dispatcher_closed`, `dispatcher_state_changed`).

use std::sync::Arc;

use crate::ids::{DispatcherId, Mode, NodeId, Ts};
use crate::messages::{
    BarrierAnswer, BootstrapResponse, CloseResponse, DispatcherStatus, PostBootstrapResponse, RunningError,
    ToMaintainer,
};

use super::journal::Hold;
use super::registry::{DispatcherRecord, RecordSpec};

/// A create the embedder must execute: build the dispatcher `spec()` describes, then call
/// `DispatcherManager::commit_create` (which may refuse: then discard it without starting it) or
/// `DispatcherManager::create_failed`.
#[derive(Debug, Clone)]
pub struct CreateTicket {
    pub(crate) record: Arc<DispatcherRecord>,
    pub(crate) op: Option<Hold>,
}

impl CreateTicket {
    /// What to build.
    pub fn spec(&self) -> RecordSpec {
        self.record.spec()
    }

    /// The dispatcher id.
    pub fn id(&self) -> DispatcherId {
        self.record.id
    }

    /// The dispatcher's mode.
    pub fn mode(&self) -> Mode {
        self.record.mode
    }
}

/// A response to a maintainer request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Answer to a bootstrap.
    Bootstrap(BootstrapResponse),
    /// Answer to a post-bootstrap.
    PostBootstrap(PostBootstrapResponse),
    /// Answer to a close.
    Close(CloseResponse),
}

impl From<Reply> for ToMaintainer {
    fn from(reply: Reply) -> Self {
        match reply {
            Reply::Bootstrap(r) => ToMaintainer::Bootstrap(r),
            Reply::PostBootstrap(r) => ToMaintainer::PostBootstrap(r),
            Reply::Close(r) => ToMaintainer::Close(r),
        }
    }
}

/// One thing the embedder must do.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Build a dispatcher (see [`CreateTicket`]).
    Create(CreateTicket),
    /// Close a dispatcher, then call `dispatcher_closed` with its final checkpoint.
    ///
    /// Under concurrent calls a Close can reach the embedder before the effect that builds its
    /// dispatcher (a Remove of a merged dispatcher overtaking its `PrepareMerged`): keep it and
    /// close the dispatcher as soon as it is built. If a Remove crossed a merge request that was
    /// then undone, the merged dispatcher is never prepared at all; such a held close may be
    /// dropped once `registry().get` no longer knows the id (nothing will build it then). A
    /// `StartMerged` that arrives after such a Close has closed its dispatcher starts nothing.
    Close {
        /// The dispatcher.
        id: DispatcherId,
        /// Its mode.
        mode: Mode,
    },
    /// Build the merged dispatcher in state Preparing (not writing) and prepare its upstream; call
    /// `dispatcher_state_changed(.., MergeReady, ..)` when the upstream is ready.
    PrepareMerged {
        /// What to build (its start ts is provisional).
        spec: RecordSpec,
        /// The sources it will replace, in key order.
        sources: Vec<DispatcherId>,
    },
    /// Detach these merge sources from their upstream and close them; call `dispatcher_closed`
    /// for each with its final checkpoint and pending barrier.
    CloseMergeSources {
        /// The merged dispatcher.
        merged: DispatcherId,
        /// Mode of all of them.
        mode: Mode,
        /// The sources.
        sources: Vec<DispatcherId>,
    },
    /// Start the merged dispatcher from `start_ts` (it becomes Initializing).
    StartMerged {
        /// The merged dispatcher.
        id: DispatcherId,
        /// Its mode.
        mode: Mode,
        /// Where it starts.
        start_ts: Ts,
        /// Skip DML at exactly `start_ts`.
        skip_dml_as_start_ts: bool,
    },
    /// An aborted merge hands this source back: re-attach it to its upstream; it is Working again.
    ResumeSource {
        /// The source.
        id: DispatcherId,
        /// Its mode.
        mode: Mode,
    },
    /// This status was queued on the heartbeat path (the collector sends it). Informational: the
    /// embedder must not send it itself.
    Report(DispatcherStatus),
    /// This error was recorded on the heartbeat path (the collector reports the first one until it
    /// is cleared). Informational.
    ReportError(RunningError),
    /// Hand a maintainer's barrier answer to this dispatcher (from a fenced `HeartBeatResponse`).
    DeliverBarrier {
        /// The dispatcher.
        id: DispatcherId,
        /// Its mode.
        mode: Mode,
        /// The answer, shared by every dispatcher it names.
        answer: Arc<BarrierAnswer>,
    },
    /// Pass the changefeed checkpoint to the table trigger's sink (`CheckpointTsMessage`).
    SinkCheckpoint {
        /// The table trigger.
        trigger: DispatcherId,
        /// The checkpoint.
        checkpoint_ts: Ts,
    },
    /// Update the redo meta of the redo table trigger (`RedoMetaMessage`).
    UpdateRedoMeta {
        /// The redo table trigger.
        trigger: DispatcherId,
        /// Redo checkpoint.
        checkpoint_ts: Ts,
        /// Redo resolved ts.
        resolved_ts: Ts,
    },
    /// The global redo resolved ts rose: wake the cached events of every normal dispatcher.
    RedoGlobalTsAdvanced {
        /// The new value.
        resolved_ts: Ts,
    },
    /// Send this response to a maintainer node.
    Reply {
        /// Destination.
        to: NodeId,
        /// The response.
        reply: Reply,
    },
}

/// Why a request was dropped without effect. Each is an expected, documented drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    /// The epoch fence refused the sender (or the owner changed while it was being admitted).
    Fenced,
    /// A redo request before redo is ready; the maintainer resends.
    RedoNotReady,
    /// A create for a dispatcher that already exists here (idempotent).
    AlreadyExists,
    /// Another operator holds the span in this mode.
    Busy,
    /// The span overlaps a live dispatcher of the same mode on this node.
    Overlaps(DispatcherId),
    /// A merge request that does not satisfy the merge preconditions (named).
    MergeRefused(&'static str),
    /// A merge resend for a merged id whose merge was aborted.
    MergeAborted,
    /// The request names a dispatcher or merge this manager does not have.
    Unknown,
    /// The request names a changefeed this node has no manager of (not bootstrapped, or closed).
    UnknownChangefeed,
    /// A report the manager has already taken (a duplicate close of a drained merge source).
    Duplicate,
    /// The manager is closing or closed.
    Closing,
    /// A create whose start ts is below the final checkpoint of a dispatcher with the same id
    /// that closed during the current owner's term: a delayed duplicate of a create that already
    /// ran (a later, legitimate create of that id starts at or above where it stopped). Or a
    /// Remove whose floor (its `start_ts`, non-zero) is below the live dispatcher's start ts: sent
    /// before that incarnation was created, for an earlier one.
    Stale,
}

impl From<super::registry::Conflict> for DropReason {
    fn from(conflict: super::registry::Conflict) -> Self {
        match conflict {
            super::registry::Conflict::IdTaken(_) => DropReason::AlreadyExists,
            super::registry::Conflict::Overlaps(other) => DropReason::Overlaps(other),
        }
    }
}

/// What a call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The request was applied.
    Applied,
    /// The request was dropped, and why.
    Dropped(DropReason),
}

/// The result of one call into the core.
#[derive(Debug)]
#[must_use]
pub struct Reaction {
    /// What happened to the request.
    pub outcome: Outcome,
    /// What the embedder must now do.
    pub effects: Vec<Effect>,
}

impl Reaction {
    /// Applied, with these effects.
    pub fn applied(effects: Vec<Effect>) -> Self {
        Self { outcome: Outcome::Applied, effects }
    }

    /// Dropped for `why`, with no effect.
    pub fn dropped(why: DropReason) -> Self {
        Self { outcome: Outcome::Dropped(why), effects: Vec::new() }
    }

    /// The bootstrap response among the effects, if any.
    pub fn bootstrap_response(&self) -> Option<&BootstrapResponse> {
        self.effects.iter().find_map(|e| match e {
            Effect::Reply { reply: Reply::Bootstrap(r), .. } => Some(r),
            _ => None,
        })
    }

    /// Dropped for `why`, with these effects.
    pub fn dropped_with(why: DropReason, effects: Vec<Effect>) -> Self {
        Self { outcome: Outcome::Dropped(why), effects }
    }
}
