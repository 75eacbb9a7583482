//! What the coordinator keeps durably, and the requests it makes of the store that keeps it (etcd
//! in a cluster, a simulated store in the simulator). The core never waits: it emits a
//! [`MetaRequest`] with a [`Ticket`] and goes on; the shell runs it and steps the reply back in.
//!
//! The shell runs every write as one transaction guarded by the coordinator's election key (it
//! still exists, with the create revision the coordinator won with). A write that fails the guard
//! answers [`MetaError::Deposed`], after which the core issues nothing more (invariant K1).

use crate::ids::{ChangefeedId, Epoch, Ts};

/// Names one request, so that its reply finds what asked for it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Ticket(pub u64);

/// A changefeed's lifecycle state as stored (the reference's `state` of the info key).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum FeedState {
    /// Replicating, or waiting to be placed.
    Normal,
    /// Paused by a user.
    Stopped,
    /// Failed; stays stopped until resumed.
    Failed,
    /// Reached its target ts.
    Finished,
}

impl FeedState {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            FeedState::Normal => "normal",
            FeedState::Stopped => "stopped",
            FeedState::Failed => "failed",
            FeedState::Finished => "finished",
        }
    }

    /// The state for a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [FeedState::Normal, FeedState::Stopped, FeedState::Failed, FeedState::Finished]
            .into_iter()
            .find(|s| s.name() == name)
    }

    /// Whether a changefeed in this state should have a maintainer.
    pub fn runs(self) -> bool {
        self == FeedState::Normal
    }
}

/// A stop in progress, stored before the stop is sent so that a successor coordinator finishes it
/// (invariant K13; the reference's `progress` of the status key).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Progress {
    /// Nothing pending.
    None,
    /// The changefeed is being paused (its maintainer and dispatchers are being stopped).
    Stopping,
    /// The changefeed is being removed; its keys go once everything stopped.
    Removing,
}

/// One changefeed as the store keeps it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StoredChangefeed {
    /// Its identity.
    pub id: ChangefeedId,
    /// Its definition, opaque to the coordinator (passed to the maintainer).
    pub config: Vec<u8>,
    /// Its lifecycle state.
    pub state: FeedState,
    /// The epoch of its latest placement (bumped before each).
    pub epoch: Epoch,
    /// Its persisted checkpoint; never decreases.
    pub checkpoint_ts: Ts,
    /// A stop in progress.
    pub progress: Progress,
}

/// What the coordinator asks of the store.
#[derive(Clone, PartialEq, Debug)]
pub enum MetaOp {
    /// Read every changefeed. Answered by [`MetaValue::Loaded`].
    LoadAll,
    /// Store a new changefeed if none with its id or name exists. Answered by
    /// [`MetaValue::Done`], or [`MetaError::Conflict`] when one does.
    Create(StoredChangefeed),
    /// Raise the changefeed's epoch by compare-and-swap: the new one is strictly above every epoch
    /// ever stored for it. Answered by [`MetaValue::Bumped`].
    BumpEpoch {
        /// The changefeed (its `(high, low)` id).
        changefeed: ChangefeedId,
    },
    /// Store a lifecycle change (pause, resume, remove, the end of a stop); the checkpoint is
    /// untouched. Answered by [`MetaValue::Done`].
    SetLifecycle {
        /// The changefeed.
        changefeed: ChangefeedId,
        /// Its new state.
        state: FeedState,
        /// Its new progress.
        progress: Progress,
    },
    /// Raise checkpoints, each only if above the stored one, leaving lifecycle fields alone
    /// (invariant K11). Answered by [`MetaValue::Done`].
    SaveCheckpoints(Vec<(ChangefeedId, Ts)>),
    /// Delete the changefeed's keys (after its removal stopped everything). Answered by
    /// [`MetaValue::Done`].
    Delete {
        /// The changefeed.
        changefeed: ChangefeedId,
    },
}

/// A request to the store.
#[derive(Clone, PartialEq, Debug)]
pub struct MetaRequest {
    /// Its ticket, echoed in the reply.
    pub ticket: Ticket,
    /// What to do.
    pub op: MetaOp,
}

/// A successful answer.
#[derive(Clone, PartialEq, Debug)]
pub enum MetaValue {
    /// The write is durable.
    Done,
    /// The epoch now stored.
    Bumped(Epoch),
    /// Every stored changefeed.
    Loaded(Vec<StoredChangefeed>),
}

/// Why a request failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum MetaError {
    /// The election key is gone or was re-created: another coordinator may act. Nothing was written.
    #[error("no longer the coordinator")]
    Deposed,
    /// The compare failed (a changefeed with that id or name exists, or the one named is gone).
    #[error("conflict")]
    Conflict,
    /// The store could not be reached in time; whether the write happened is unknown. The core
    /// retries what it needs on its timers.
    #[error("store unavailable")]
    Unavailable,
}

/// The store's answer to one request.
#[derive(Clone, PartialEq, Debug)]
pub struct MetaReply {
    /// The request's ticket.
    pub ticket: Ticket,
    /// Its outcome.
    pub outcome: Result<MetaValue, MetaError>,
}
