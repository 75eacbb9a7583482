//! The heartbeat path: coalescing, rounds and the error report, watermarks and the seq protocol
//! (I10, hazard R2), inbound fencing and routing, block-status batching and de-duplication (B15),
//! and the wire forms. Shared here: managers with heartbeat settings, dispatcher set-up, and
//! builders of barrier answers and block statuses.

mod block;
mod coalescing;
mod inbound;
mod rounds;
mod watermark;
mod wire;

use std::sync::Arc;

use dispatcher_core::ids::{ChangefeedId, DispatcherId, Epoch, Mode, Ts};
use dispatcher_core::messages::*;
use dispatcher_core::node::*;
use dispatcher_core::node::{HeartbeatConfig, Outbound};

use super::manager::{bootstrap_request, config, create_at, id, mt, remove, span, ticket};

/// A manager of changefeed (1, 2), bootstrapped by `mt` at epoch 2, redo enabled and ready.
fn manager_with(heartbeat: HeartbeatConfig) -> DispatcherManager {
    let changefeed = ChangefeedId { high: 1, low: 2, ..ChangefeedId::default() };
    let dm = DispatcherManager::with_heartbeat(ManagerConfig { changefeed, ..config(true) }, heartbeat);
    dm.mark_redo_ready();
    assert_eq!(dm.handle_bootstrap(&mt(), &bootstrap_request(2, None)).outcome, Outcome::Applied);
    dm
}

/// A manager of changefeed (1, 2) with the default heartbeat settings.
fn manager() -> DispatcherManager {
    manager_with(HeartbeatConfig::default())
}

fn spanned(n: u64) -> dispatcher_core::span::TableSpan {
    span(n as i64 + 1, b"a", b"z")
}

/// Admits a create at `start_ts` and returns its ticket (not yet committed).
fn admit(dm: &DispatcherManager, d: DispatcherId, start_ts: Ts) -> CreateTicket {
    let step = dm.handle_schedule(&mt(), create_at(d, spanned(d.low()), Mode::Default, 2, start_ts));
    assert_eq!(step.outcome, Outcome::Applied, "{step:?}");
    ticket(&step)
}

/// Creates, commits and returns the status handle of a dispatcher starting at `start_ts`.
fn committed(dm: &DispatcherManager, d: DispatcherId, start_ts: Ts) -> StatusHandle {
    let t = admit(dm, d, start_ts);
    dm.commit_create(&t).unwrap();
    dm.status_handle(&t)
}

/// `committed`, then reported Working at `start_ts`.
fn working_from(dm: &DispatcherManager, d: DispatcherId, start_ts: Ts) -> StatusHandle {
    let h = committed(dm, d, start_ts);
    working(dm, d, start_ts);
    h
}

fn close(dm: &DispatcherManager, d: DispatcherId, final_ts: Ts) {
    let _ = dm.handle_schedule(&mt(), remove(d, Mode::Default, 2, OperatorType::Remove));
    assert_eq!(dm.dispatcher_closed(d, Mode::Default, final_ts, None).outcome, Outcome::Applied);
}

fn statuses(out: &[Outbound]) -> Vec<DispatcherStatus> {
    out.iter().flat_map(|o| o.request.statuses.clone()).collect()
}

/// Reports `d` Working at `checkpoint`.
fn working(dm: &DispatcherManager, d: DispatcherId, checkpoint: Ts) {
    let _ = dm.dispatcher_state_changed(d, Mode::Default, ComponentState::Working, checkpoint);
}

/// An answer to a barrier at 90 that is not passed yet.
fn answer(influence: Influence) -> BarrierAnswer {
    let action =
        Some(BarrierAction { pass: false, event: BarrierEvent { commit_ts: 90, is_sync_point: false } });
    BarrierAnswer { influence, action, ack: None, ignored: None }
}

fn response(epoch: u64, mode: Mode, answers: Vec<BarrierAnswer>) -> HeartBeatResponse {
    HeartBeatResponse { changefeed: ChangefeedId::default(), answers, mode, epoch: Epoch(epoch) }
}

/// A status blocked at ts 10, with one added table in its detail.
fn block(d: u64, stage: BlockStage, sync: bool, mode: Mode) -> BlockStatus {
    let added = vec![AddedTable { table_id: 5, schema_id: 1, splitable: true }];
    let detail = Arc::new(BlockDetail { need_added_tables: added, ..BlockDetail::default() });
    let state = BlockState { is_blocked: true, block_ts: 10, is_sync_point: sync, stage, detail };
    BlockStatus { id: id(d), mode, state }
}

/// A default-mode status that is not a syncpoint.
fn plain(d: u64, stage: BlockStage) -> BlockStatus {
    block(d, stage, false, Mode::Default)
}

fn request_of(statuses: Vec<BlockStatus>) -> BlockStatusRequest {
    BlockStatusRequest { changefeed: ChangefeedId::default(), mode: Mode::Default, statuses }
}
