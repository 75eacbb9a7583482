//! The coordinator: one per cluster, elected in etcd. It places each changefeed's maintainer on a
//! node, moves and stops it, rebuilds its view after its own failover, and stores checkpoints.
//!
//! [`Coordinator`] is sans-IO like the maintainer: [`Coordinator::step`] takes the time and one
//! [`Event`] (a tick, the membership, a node's message, the store's reply, a user's request) and
//! returns [`Output`]s (messages to maintainer managers, store requests, answers). The store
//! (etcd) is reached only through [`MetaRequest`]s, each answered by a [`MetaReply`].
//!
//! | module | |
//! |---|---|
//! | `core` | the coordinator, its bootstrap and placement |
//! | `operator` | add, move (remove first) and stop |
//! | `changefeed` | one changefeed in memory, and its view |
//! | `meta` | what is stored, and the store's requests and replies |
//! | `event` | the event and output enums, users' requests |

mod changefeed;
mod core;
mod event;
mod meta;
mod operator;

pub use self::core::{Coordinator, CoordinatorConfig};
pub use changefeed::{FeedView, Placement};
pub use event::{Event, Member, Output, Request, RequestError};
pub use meta::{
    FeedState, MetaError, MetaOp, MetaReply, MetaRequest, MetaValue, Progress, StoredChangefeed, Ticket,
};
