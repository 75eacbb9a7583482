//! dispatcher-core across processes: the networked shell around the library's sans-IO cores
//! (`docs/cluster-plan.md`). The library that embedders link stays free of tokio, tonic and etcd;
//! this crate has them.
//!
//! | module | |
//! |---|---|
//! | [`transport`] | the message center: one gRPC stream per peer pair, handshake, bounded queues, reconnect |
//! | [`meta`] | etcd: the session (a lease kept alive), the node's registration, the local fence |
//! | [`membership`] | the members and the election as etcd shows them, read then watched |
//! | [`store`] | the election, and the coordinator's requests as transactions guarded by the winning key |
//! | [`node`] | one node process: the library's `NodeHost` owned by one task, fed by all of the above |
//! | [`admin`] | the admin service the commands call |
//! | [`requests`] | users' span requests stored in etcd, so they outlive a maintainer change |
//! | [`metrics`] | the Prometheus text endpoint |
//! | [`cli`] | the `node`, `changefeed` and `status` commands |
//! | [`harness`] | a local cluster of real processes, for tests and measurements |

pub mod admin;
pub mod cli;
pub mod harness;
pub mod membership;
pub mod meta;
pub mod metrics;
pub mod node;
pub mod requests;
pub mod store;
pub mod transport;
