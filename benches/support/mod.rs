//! Setup shared by the node-core benchmarks (`operators`, `memory`): one create request and a
//! manager owned by maintainer `mt` at epoch 2.

use dispatcher_core::ids::{ChangefeedId, DispatcherId, Epoch, Mode, NodeId};
use dispatcher_core::messages::*;
use dispatcher_core::node::{DispatcherManager, ManagerConfig};
use dispatcher_core::span::TableSpan;

/// The maintainer that owns every benchmark manager.
pub fn maintainer() -> NodeId {
    NodeId::new("mt")
}

/// A create of dispatcher `i + 1` on `span`, from the owner's epoch.
pub fn create(i: u64, span: TableSpan) -> ScheduleRequest {
    ScheduleRequest {
        changefeed: ChangefeedId::default(),
        config: DispatcherConfig {
            id: DispatcherId::new(1, i + 1).unwrap(),
            mode: Mode::Default,
            start_ts: 100,
            schema_id: 1,
            skip_dml_as_start_ts: false,
        },
        order: Order::Create { span },
        operator_type: OperatorType::Add,
        epoch: Epoch(2),
    }
}

/// An empty manager, bootstrapped by [`maintainer`] at epoch 2.
pub fn bootstrapped() -> DispatcherManager {
    let dm = DispatcherManager::new(ManagerConfig {
        node: NodeId::new("n1"),
        changefeed: ChangefeedId::default(),
        keyspace_id: 0,
        redo_enabled: false,
    });
    let bootstrap = BootstrapRequest {
        start_ts: 1,
        is_new_changefeed: true,
        epoch: Epoch(2),
        ..BootstrapRequest::default()
    };
    let _ = dm.handle_bootstrap(&maintainer(), &bootstrap);
    dm
}
