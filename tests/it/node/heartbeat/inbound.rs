//! Inbound: heartbeat responses fenced by epoch (I1), barrier answers routed to the dispatchers
//! they name, redo control messages (hazard R10).

use dispatcher_core::ids::{DispatcherId, Epoch, Mode, NodeId};

use dispatcher_core::messages::*;
use dispatcher_core::node::*;

use super::{admit, answer, committed, manager, response, spanned};
use crate::node::manager::{bootstrap_request, create, id, mt, redo_not_ready, ticket};

fn delivered(step: &Reaction) -> Vec<DispatcherId> {
    let mut ids: Vec<_> = step
        .effects
        .iter()
        .filter_map(|e| if let Effect::DeliverBarrier { id, .. } = e { Some(*id) } else { None })
        .collect();
    ids.sort();
    ids
}

/// TestHeartBeatResponseAllowedByMaintainerEpoch / ...HandlerDropsStaleMaintainerEpoch.
#[test]
fn heartbeat_response_is_fenced_by_epoch() {
    let dm = manager();
    let _ = committed(&dm, id(1), 100);
    let normal = || vec![answer(Influence::Normal { ids: vec![id(1)] })];
    for (from, epoch) in [(NodeId::new("old"), 1), (mt(), 0), (mt(), 1), (NodeId::new("other"), 2)] {
        let step = dm.handle_heartbeat_response(&from, response(epoch, Mode::Default, normal()));
        assert_eq!(step.outcome, Outcome::Dropped(DropReason::Fenced), "{from} {epoch}");
        assert!(step.effects.is_empty());
    }
    let step = dm.handle_heartbeat_response(&mt(), response(2, Mode::Default, normal()));
    assert_eq!(delivered(&step), vec![id(1)]);
}

#[test]
fn heartbeat_response_routes_normal_db_and_all_and_skips_unknown_dispatchers() {
    let dm = manager();
    let _ = dm.handle_bootstrap(&mt(), &bootstrap_request(2, None));
    let _ = committed(&dm, id(1), 100);
    let _ = committed(&dm, id(2), 100);
    let mut other_schema = create(id(3), spanned(3), Mode::Default, 2);
    other_schema.config.schema_id = 7;
    dm.commit_create(&ticket(&dm.handle_schedule(&mt(), other_schema))).unwrap();
    let _creating = admit(&dm, id(4), 100);

    let ask =
        |mode, influence| dm.handle_heartbeat_response(&mt(), response(2, mode, vec![answer(influence)]));
    let step = ask(Mode::Default, Influence::Normal { ids: vec![id(1), id(42), id(4)] });
    assert_eq!(step.outcome, Outcome::Applied);
    assert_eq!(delivered(&step), vec![id(1)], "unknown and not-yet-live dispatchers are skipped");
    assert_eq!(delivered(&ask(Mode::Default, Influence::Db { schema_id: 7 })), vec![id(3)]);
    assert_eq!(delivered(&ask(Mode::Default, Influence::All)), vec![id(1), id(2), id(3)]);
    let step = ask(Mode::Redo, Influence::All);
    assert_eq!(
        step.outcome,
        Outcome::Dropped(DropReason::Unknown),
        "no redo dispatcher: reaches nobody, no panic"
    );
    let step = ask(Mode::Default, Influence::Normal { ids: vec![id(42)] });
    assert_eq!(step.outcome, Outcome::Dropped(DropReason::Unknown));
}

#[test]
fn db_answers_also_reach_the_table_trigger() {
    let dm = manager();
    let trigger = id(100);
    let step = dm.handle_bootstrap(&mt(), &bootstrap_request(3, Some(trigger)));
    assert_eq!(step.outcome, Outcome::Applied);
    let mut in_schema = create(id(1), spanned(1), Mode::Default, 3);
    in_schema.config.schema_id = 7;
    dm.commit_create(&ticket(&dm.handle_schedule(&mt(), in_schema))).unwrap();
    let step = dm.handle_heartbeat_response(
        &mt(),
        response(3, Mode::Default, vec![answer(Influence::Db { schema_id: 7 })]),
    );
    assert_eq!(delivered(&step), vec![id(1), trigger]);
    let checkpoint =
        dm.handle_checkpoint_ts(&CheckpointTsMessage { changefeed: Default::default(), checkpoint_ts: 77 });
    assert!(
        matches!(checkpoint.effects[..], [Effect::SinkCheckpoint { trigger: t, checkpoint_ts: 77 }] if t == trigger)
    );
}

/// TestRedoResolvedTsForwardMessageHandlerDropsStaleMaintainerEpoch (and hazard R10 for redo answers).
#[test]
fn redo_control_messages_are_fenced_and_monotone() {
    let dm = manager();
    let fwd = |epoch, ts| RedoResolvedTsForward {
        changefeed: Default::default(),
        resolved_ts: ts,
        epoch: Epoch(epoch),
    };
    let _ = dm.handle_redo_resolved_ts_forward(&mt(), &fwd(2, 50));
    let stale = dm.handle_redo_resolved_ts_forward(&NodeId::new("old"), &fwd(1, 100));
    assert_eq!(stale.outcome, Outcome::Dropped(DropReason::Fenced));
    assert_eq!(dm.redo_global_ts(), 50);
    let up = dm.handle_redo_resolved_ts_forward(&mt(), &fwd(2, 120));
    assert!(matches!(up.effects[..], [Effect::RedoGlobalTsAdvanced { resolved_ts: 120 }]));
    let down = dm.handle_redo_resolved_ts_forward(&mt(), &fwd(2, 110));
    assert!(down.effects.is_empty(), "never lowered");
    assert_eq!(dm.redo_global_ts(), 120);
    let meta =
        RedoMetaMessage { changefeed: Default::default(), resolved_ts: 1, checkpoint_ts: 1, epoch: Epoch(1) };
    let meta = dm.handle_redo_meta(&NodeId::new("old"), &meta);
    assert_eq!(meta.outcome, Outcome::Dropped(DropReason::Fenced));

    let not_ready = redo_not_ready();
    let step =
        not_ready.handle_heartbeat_response(&mt(), response(2, Mode::Redo, vec![answer(Influence::All)]));
    assert_eq!(
        step.outcome,
        Outcome::Dropped(DropReason::RedoNotReady),
        "R10: no panic on an early redo answer"
    );
}
