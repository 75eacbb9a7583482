//! One changefeed as the coordinator holds it: what the store has, where its maintainer runs, and
//! the operator in flight.

use super::meta::{FeedState, Progress, StoredChangefeed};
use super::operator::Operator;
use crate::ids::{Epoch, NodeId, Ts};

/// Where a changefeed's maintainer runs, as its reports show.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Placement {
    /// Nowhere (new, stopped, or its node left): the placement scheduler adds it when it should run.
    Absent,
    /// On `node` at `epoch`.
    Bound {
        /// The node.
        node: NodeId,
        /// The epoch it runs at.
        epoch: Epoch,
        /// Whether its last report was `Working`.
        working: bool,
    },
}

/// A changefeed in the coordinator's memory.
#[derive(Clone, Debug)]
pub(crate) struct Feed {
    /// What the store has (as of the last write this coordinator saw succeed, or the load).
    pub stored: StoredChangefeed,
    /// The highest checkpoint its maintainers reported (never below the stored one).
    pub checkpoint: Ts,
    /// Where its maintainer runs.
    pub placement: Placement,
    /// Its operator.
    pub op: Option<Operator>,
    /// Not placed before this time (backoff after a failed placement).
    pub retry_at_ms: u64,
    /// Created by this coordinator and never placed yet (the add says so).
    pub is_new: bool,
    /// A lifecycle write (a user's pause, resume or remove) is in flight.
    pub lifecycle_in_flight: bool,
    /// Placements that ended with the maintainer stopping by itself, since the last one that
    /// came up: the wait before the next grows with it.
    pub failures: u32,
    /// When its placed maintainer last reported.
    pub heard_ms: u64,
    /// Placed, and no checkpoint of that placement saved yet: the first one is saved at once
    /// instead of at the next interval, so a recovery is durable sooner.
    pub fresh: bool,
}

impl Feed {
    pub fn new(stored: StoredChangefeed, is_new: bool) -> Self {
        Feed {
            checkpoint: stored.checkpoint_ts,
            stored,
            placement: Placement::Absent,
            op: None,
            retry_at_ms: 0,
            is_new,
            lifecycle_in_flight: false,
            failures: 0,
            heard_ms: 0,
            fresh: false,
        }
    }

    /// Whether the placement scheduler should add it now.
    pub fn wants_placement(&self, now_ms: u64) -> bool {
        self.stored.state.runs()
            && self.stored.progress == Progress::None
            && self.placement == Placement::Absent
            && self.op.is_none()
            && !self.lifecycle_in_flight
            && now_ms >= self.retry_at_ms
    }

    /// The node its maintainer runs on (or is being placed on), for placement counts.
    pub fn load_on(&self) -> Option<&NodeId> {
        if let Some(dest) = self.op.as_ref().and_then(Operator::destination) {
            return Some(dest);
        }
        match &self.placement {
            Placement::Bound { node, .. } => Some(node),
            Placement::Absent => None,
        }
    }

    /// The state word a status view shows: the stored state, or the stop in progress.
    pub fn state_name(&self) -> &'static str {
        match self.stored.progress {
            Progress::Removing => "removing",
            Progress::Stopping => "stopping",
            Progress::None => self.stored.state.name(),
        }
    }
}

/// A changefeed as a status view shows it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FeedView {
    /// Its name.
    pub name: String,
    /// `normal`, `stopped`, `failed`, `finished`, or a stop in progress (`stopping`, `removing`).
    pub state: &'static str,
    /// Where its maintainer runs.
    pub placement: Placement,
    /// The stored epoch.
    pub epoch: Epoch,
    /// The highest checkpoint reported.
    pub checkpoint_ts: Ts,
    /// The stored checkpoint.
    pub persisted_checkpoint_ts: Ts,
    /// The operator in flight (`add`, `move`, `stop`, `remove`), if any.
    pub operator: Option<&'static str>,
}

impl From<&Feed> for FeedView {
    fn from(f: &Feed) -> Self {
        FeedView {
            name: f.stored.id.name.clone(),
            state: f.state_name(),
            placement: f.placement.clone(),
            epoch: f.stored.epoch,
            checkpoint_ts: f.checkpoint,
            persisted_checkpoint_ts: f.stored.checkpoint_ts,
            operator: f.op.as_ref().map(Operator::kind),
        }
    }
}

/// Whether a stored state and progress mean the changefeed must be stopped.
pub(crate) fn must_stop(state: FeedState, progress: Progress) -> bool {
    progress != Progress::None || !state.runs()
}
