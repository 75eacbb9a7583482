//! Loom models of dispatcher-core's concurrent protocols live in `tests/`; what several of them
//! build the same way lives here.

use dispatcher_core::ids::{ChangefeedId, Epoch, NodeId};
use dispatcher_core::messages::BootstrapRequest;
use dispatcher_core::mutation::Mutations;
use dispatcher_core::node::{DispatcherManager, ManagerConfig};

/// The maintainer node that owns the models' managers.
pub fn mt() -> NodeId {
    NodeId::new("mt")
}

/// A bootstrap request from the owner at `epoch`.
pub fn bootstrap(epoch: u64) -> BootstrapRequest {
    BootstrapRequest { start_ts: 1, epoch: Epoch(epoch), ..BootstrapRequest::default() }
}

/// Node `n1`'s manager of the default changefeed (no redo), with `mutation` re-opened, owned by
/// [`mt`] at epoch 2.
pub fn owned_manager(mutation: Mutations) -> DispatcherManager {
    let dm = DispatcherManager::new(ManagerConfig {
        node: NodeId::new("n1"),
        changefeed: ChangefeedId::default(),
        keyspace_id: 0,
        redo_enabled: false,
    })
    .mutated(mutation);
    let _ = dm.handle_bootstrap(&mt(), &bootstrap(2));
    dm
}
