//! A cascade close: `MaintainerCloseRequest` to every member until each has answered success.
//! It runs for a hosted maintainer told to stop with cascade, and alone (a removal-only
//! maintainer) when the coordinator removes a changefeed this node does not host.

use std::collections::BTreeSet;

use crate::ids::{ChangefeedId, Epoch, NodeId};
use crate::messages::{CloseRequest, CloseResponse, ToNode};

/// One changefeed's cascade close.
#[derive(Clone, Debug)]
pub(crate) struct Closer {
    pub changefeed: ChangefeedId,
    pub epoch: Epoch,
    pub removed: bool,
    acked: BTreeSet<NodeId>,
    sent_ms: Option<u64>,
}

impl Closer {
    pub fn new(changefeed: ChangefeedId, epoch: Epoch, removed: bool) -> Self {
        Closer { changefeed, epoch, removed, acked: BTreeSet::new(), sent_ms: None }
    }

    /// Close requests due at `now_ms` to the members that have not answered yet.
    pub fn due(&mut self, now_ms: u64, resend_ms: u64, members: &BTreeSet<NodeId>) -> Vec<(NodeId, ToNode)> {
        if self.sent_ms.is_some_and(|t| now_ms < t + resend_ms) {
            return Vec::new();
        }
        self.sent_ms = Some(now_ms);
        let request =
            CloseRequest { changefeed: self.changefeed.clone(), removed: self.removed, epoch: self.epoch };
        members.difference(&self.acked).map(|n| (n.clone(), ToNode::Close(request.clone()))).collect()
    }

    /// A node's answer. A node answers success once the changefeed's dispatchers are closed there
    /// (or it never had them); an answer for another epoch is someone else's.
    pub fn answered(&mut self, from: &NodeId, response: &CloseResponse) {
        if response.epoch == self.epoch && response.success {
            self.acked.insert(from.clone());
        }
    }

    /// Whether every member has answered (members that left count as closed: their dispatchers
    /// went with them).
    pub fn done(&self, members: &BTreeSet<NodeId>) -> bool {
        members.is_subset(&self.acked)
    }
}
