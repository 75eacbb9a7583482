//! A cascade close: every member's dispatcher manager of the changefeed is taken over at the
//! close's epoch (a bootstrap, the only thing that changes a node's owner), then closed, each
//! request resent until answered. The coordinator stops a changefeed at a freshly stored epoch,
//! above every owner its dispatcher managers have had, so the takeover is accepted everywhere; a
//! table trigger of an older owner in the way is closed by the node and the resend succeeds.
//!
//! A member that never answers the takeover (a node refuses it silently when a close at this
//! epoch or later already ran there, or a newer maintainer owns the changefeed there) is given
//! up on after [`GIVE_UP_MS`]. A member that took the takeover is never given up on: its close is
//! under way and is waited for until it answers or leaves.

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::{ChangefeedId, DispatcherId, Epoch, NodeId};
use crate::messages::{BootstrapRequest, BootstrapResponse, CloseRequest, CloseResponse, ToNode};

/// Where one member is in the close.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Step {
    /// Taking its dispatcher manager over at the close's epoch.
    Bootstrap,
    /// Closing it.
    Close,
    /// Closed, or owned by a newer maintainer (not ours to close).
    Done,
}

/// How long a close keeps resending to a node that does not answer.
pub(crate) const GIVE_UP_MS: u64 = 30_000;

/// One changefeed's cascade close.
#[derive(Clone, Debug)]
pub(crate) struct Closer {
    pub changefeed: ChangefeedId,
    pub epoch: Epoch,
    pub removed: bool,
    /// The closing node and the table triggers its own maintainer of this epoch created there
    /// (a close at a hosted maintainer's own epoch takes its node over with them).
    own: (NodeId, Option<DispatcherId>, Option<DispatcherId>),
    steps: BTreeMap<NodeId, Step>,
    sent_ms: Option<u64>,
    started_ms: u64,
}

impl Closer {
    pub fn new(
        changefeed: ChangefeedId,
        epoch: Epoch,
        removed: bool,
        own: (NodeId, Option<DispatcherId>, Option<DispatcherId>),
        now_ms: u64,
    ) -> Self {
        Closer { changefeed, epoch, removed, own, steps: BTreeMap::new(), sent_ms: None, started_ms: now_ms }
    }

    fn step(&self, node: &NodeId) -> Step {
        self.steps.get(node).copied().unwrap_or(Step::Bootstrap)
    }

    /// Requests due at `now_ms` to the members not done yet.
    pub fn due(&mut self, now_ms: u64, resend_ms: u64, members: &BTreeSet<NodeId>) -> Vec<(NodeId, ToNode)> {
        if self.sent_ms.is_some_and(|t| now_ms < t + resend_ms) {
            return Vec::new();
        }
        let due: Vec<(NodeId, ToNode)> =
            members.iter().filter_map(|n| Some((n.clone(), self.request(n, self.step(n))?))).collect();
        if !due.is_empty() {
            self.sent_ms = Some(now_ms);
        }
        due
    }

    fn request(&self, to: &NodeId, step: Step) -> Option<ToNode> {
        let changefeed = self.changefeed.clone();
        let (own, trigger, redo_trigger) = &self.own;
        let (trigger, redo_trigger) = if to == own { (*trigger, *redo_trigger) } else { (None, None) };
        match step {
            Step::Bootstrap => Some(ToNode::Bootstrap(BootstrapRequest {
                changefeed,
                config: Vec::new(),
                start_ts: 0,
                trigger,
                is_new_changefeed: false,
                redo_trigger,
                keyspace_id: 0,
                epoch: self.epoch,
            })),
            Step::Close => {
                Some(ToNode::Close(CloseRequest { changefeed, removed: self.removed, epoch: self.epoch }))
            }
            Step::Done => None,
        }
    }

    /// A node's bootstrap answer: taken over (now close it at once). An error (an older
    /// trigger in the way, which the node is closing) is retried on the timer.
    pub fn bootstrapped(&mut self, from: &NodeId, response: &BootstrapResponse) -> Option<ToNode> {
        if response.epoch != self.epoch || self.step(from) != Step::Bootstrap || response.err.is_some() {
            return None;
        }
        self.steps.insert(from.clone(), Step::Close);
        self.request(from, Step::Close)
    }

    /// A node's close answer: success once the changefeed's dispatchers are closed there.
    pub fn answered(&mut self, from: &NodeId, response: &CloseResponse) {
        if response.epoch == self.epoch && response.success && self.step(from) == Step::Close {
            self.steps.insert(from.clone(), Step::Done);
        }
    }

    /// Whether every member is done: closed, or (after [`GIVE_UP_MS`]) never answering the
    /// takeover. Members that left count as closed (their dispatchers went with them); with no
    /// members known yet nothing is done.
    pub fn done(&self, members: &BTreeSet<NodeId>, now_ms: u64) -> bool {
        let given_up = now_ms >= self.started_ms + GIVE_UP_MS;
        !members.is_empty()
            && members.iter().all(|n| match self.step(n) {
                Step::Done => true,
                Step::Bootstrap => given_up,
                Step::Close => false,
            })
    }
}
