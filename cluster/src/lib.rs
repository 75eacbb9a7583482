//! dispatcher-core across processes: the networked shell around the library's sans-IO cores
//! (`docs/cluster-plan.md`). The library that embedders link stays free of tokio, tonic and etcd;
//! this crate has them.
//!
//! | module | |
//! |---|---|
//! | [`transport`] | the message center: one gRPC stream per peer pair, handshake, bounded queues, reconnect |
//! | [`meta`] | etcd: the session (a lease kept alive), the node's registration, the local fence |
//! | [`store`] | the election, and the coordinator's requests as transactions guarded by the winning key |
//!
//! Still to come (plan milestones 5-8): the election and guarded transactions, the roles around
//! the coordinator, maintainer manager and node cores, the `node`, `changefeed` and `status`
//! commands, metrics.

pub mod meta;
pub mod store;
pub mod transport;
