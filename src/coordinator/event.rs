//! The coordinator's one event enum and its outputs.

use super::meta::{MetaReply, MetaRequest};
use crate::ids::{ChangefeedId, NodeId, Ts};
use crate::messages::{ToCoordinator, ToManager};

/// A live node as membership (its session key in etcd) shows it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Member {
    /// Its id.
    pub node: NodeId,
    /// Its registration (the create revision of its session key): a node that restarts under the
    /// same id registers again and is a new member.
    pub incarnation: u64,
}

/// A user's request, read from the store's request keys by the shell.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Request {
    /// Create a changefeed starting at `start_ts`.
    Create {
        /// Its identity (the name must be new too).
        id: ChangefeedId,
        /// Its definition.
        config: Vec<u8>,
        /// Where replication starts.
        start_ts: Ts,
    },
    /// Pause a changefeed: stop its maintainer and dispatchers, keep its keys.
    Pause {
        /// Which.
        name: String,
    },
    /// Resume a paused or failed changefeed.
    Resume {
        /// Which.
        name: String,
    },
    /// Remove a changefeed for good.
    Remove {
        /// Which.
        name: String,
    },
    /// Move a changefeed's maintainer to another node.
    MoveMaintainer {
        /// Which.
        name: String,
        /// Where.
        to: NodeId,
    },
}

impl Request {
    /// The request's name in errors and logs.
    pub fn verb(&self) -> &'static str {
        match self {
            Request::Create { .. } => "create",
            Request::Pause { .. } => "pause",
            Request::Resume { .. } => "resume",
            Request::Remove { .. } => "remove",
            Request::MoveMaintainer { .. } => "move-maintainer",
        }
    }
}

/// Why a request was refused. Nothing changed.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum RequestError {
    /// The coordinator is still rebuilding its view after its election; ask again.
    #[error("the coordinator is not initialized yet")]
    NotReady,
    /// No changefeed by that name.
    #[error("unknown changefeed {0}")]
    UnknownChangefeed(String),
    /// A changefeed with that id or name exists.
    #[error("changefeed {0} already exists")]
    Exists(String),
    /// The changefeed's state does not allow it (resume of a running one, a second pause, …).
    #[error("changefeed {name} is {state}")]
    State {
        /// The changefeed.
        name: String,
        /// Its state, or the stop in progress.
        state: &'static str,
    },
    /// Another coordinator operation on the changefeed is in flight; ask again later.
    #[error("changefeed {0} has an operation in flight")]
    Busy(String),
    /// The node is not a live member that may take maintainers.
    #[error("node {0} cannot take a maintainer")]
    Node(NodeId),
    /// The store did not answer; whether the request took effect is unknown.
    #[error("the store is unavailable")]
    Unavailable,
}

/// What happens to the coordinator.
#[derive(Clone, PartialEq, Debug)]
pub enum Event {
    /// Time passed: resend what is unanswered, place, persist checkpoints.
    Tick,
    /// The whole membership, each time it changes.
    Members(Vec<Member>),
    /// A message from a node's maintainer manager.
    Received {
        /// The sending node.
        from: NodeId,
        /// The sending process's registration ([`Member::incarnation`]), as its stream's
        /// handshake named it: a message of a previous process under the same id is dropped.
        incarnation: u64,
        /// The message.
        message: ToCoordinator,
    },
    /// The store's answer to a [`MetaRequest`].
    Meta(MetaReply),
    /// A user's request; answered by [`Output::Answered`] with the same `id`.
    Request {
        /// The shell's name for it (its request key).
        id: u64,
        /// The request.
        request: Request,
    },
}

/// What the shell must do after a step.
#[derive(Clone, PartialEq, Debug)]
pub enum Output {
    /// Deliver a message to a node's maintainer manager.
    Send {
        /// The node.
        to: NodeId,
        /// The message.
        message: ToManager,
    },
    /// Run a request against the store and step its reply back in.
    Meta(MetaRequest),
    /// A user's request was accepted (stored) or refused.
    Answered {
        /// The request's id.
        id: u64,
        /// The result.
        result: Result<(), RequestError>,
    },
    /// Every member answered the bootstrap (or was given up on) and the changefeeds are loaded:
    /// the coordinator now schedules.
    Initialized,
    /// The store refused a write because this coordinator lost its election. It issues nothing
    /// more; the shell should drop it and campaign again.
    Deposed,
}
