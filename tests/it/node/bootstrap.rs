//! Bootstrap snapshot, post-bootstrap and close (invariant I12; hazard R3 is a snapshot that shows
//! a dispatcher but not the Remove in flight on it).

use dispatcher_core::ids::{Epoch, Mode, NodeId};
use dispatcher_core::messages::*;
use dispatcher_core::node::*;

use super::manager::*;

fn response(step: &Reaction) -> BootstrapResponse {
    step.bootstrap_response().expect("a bootstrap response").clone()
}

/// I12: a create admitted under the old owner and not yet executed when the new owner
/// bootstraps never executes, and is not reported.
#[test]
fn i12_old_epoch_create_not_yet_executed_is_withdrawn_by_bootstrap() {
    let dm = manager();
    let step = dm.handle_schedule(&mt(), create(id(1), span(1, b"a", b"m"), Mode::Default, 2));
    let t = ticket(&step);
    let b = dm.handle_bootstrap(&NodeId::new("mt2"), &bootstrap_request(3, None));
    let r = response(&b);
    assert_eq!(r.epoch, Epoch(3));
    assert!(r.spans.is_empty());
    assert!(r.operators.is_empty(), "a stale create is never reported");
    assert!(dm.commit_create(&t).is_err(), "and never executes");
    assert!(dm.operators().is_empty());
}

/// I12, other branch: a create that executed before the bootstrap is in the snapshot.
#[test]
fn i12_old_epoch_create_that_executed_is_in_the_snapshot() {
    let dm = manager();
    let step = dm.handle_schedule(&mt(), create(id(1), span(1, b"a", b"m"), Mode::Default, 2));
    dm.commit_create(&ticket(&step)).unwrap();
    let r = response(&dm.handle_bootstrap(&NodeId::new("mt2"), &bootstrap_request(3, None)));
    assert_eq!(r.spans.len(), 1);
    assert_eq!(r.spans[0].state, ComponentState::Initializing);
    assert_eq!(r.spans[0].checkpoint_ts, 100);
}

/// TestBootstrapResponseRestoresCurrentOperatorsAndStaleRemoves /
/// TestBootstrapResponseUsesSpanSnapshotForStaleRemove.
#[test]
fn snapshot_reports_current_operators_and_stale_removes_of_present_dispatchers_only() {
    let dm = manager();
    live(&dm, id(1), span(1, b"a", b"m"), Mode::Default);
    let _ = dm.handle_schedule(&mt(), remove(id(1), Mode::Default, 2, OperatorType::Move));
    // Re-bootstrap by the same owner: its own create is current and reported.
    let step = dm.handle_schedule(&mt(), create(id(2), span(2, b"a", b"m"), Mode::Default, 2));
    let same = response(&dm.handle_bootstrap(&mt(), &bootstrap_request(2, None)));
    assert_eq!(same.operators.len(), 2);
    drop(step);
    // New owner: the stale create is gone, the stale remove stays because id(1) is still present.
    let r = response(&dm.handle_bootstrap(&NodeId::new("mt2"), &bootstrap_request(3, None)));
    assert_eq!(r.operators.len(), 1);
    assert_eq!(r.operators[0].config.id, id(1));
    assert_eq!(r.operators[0].operator_type, OperatorType::Move);
    assert_eq!(r.operators[0].epoch, Epoch(2), "echoed with its original epoch");
    // Once the dispatcher is gone, its stale remove is not reported any more.
    let _ = dm.dispatcher_closed(id(1), Mode::Default, 150, None);
    let r = response(&dm.handle_bootstrap(&NodeId::new("mt3"), &bootstrap_request(4, None)));
    assert!(r.operators.is_empty());
    assert!(r.spans.is_empty());
}

/// R3: a dispatcher reported alive while its removal is in flight carries its Remove.
#[test]
fn r3_dispatcher_being_removed_is_reported_with_its_remove() {
    let dm = manager();
    live(&dm, id(1), span(1, b"a", b"m"), Mode::Default);
    let _ = dm.handle_schedule(&mt(), remove(id(1), Mode::Default, 2, OperatorType::Remove));
    let r = response(&dm.handle_bootstrap(&NodeId::new("mt2"), &bootstrap_request(3, None)));
    let alive: Vec<_> = r.spans.iter().map(|s| s.id).collect();
    let removing: Vec<_> = r.operators.iter().map(|o| o.config.id).collect();
    assert_eq!(alive, vec![id(1)]);
    assert_eq!(removing, vec![id(1)]);
}

#[test]
fn bootstrap_from_an_older_epoch_is_dropped_without_response() {
    let dm = manager();
    let step = dm.handle_bootstrap(&NodeId::new("old"), &bootstrap_request(1, None));
    assert_eq!(step.outcome, Outcome::Dropped(DropReason::Fenced));
    assert!(step.effects.is_empty());
    assert_eq!(dm.owner().epoch, Epoch(2));
}

/// TestHandleBootstrapTriggerMismatchKeepsOldMaintainerOwner / NilTriggerRejectsExistingTableTrigger.
#[test]
fn trigger_mismatch_answers_an_error_and_keeps_the_owner() {
    let dm = manager();
    let _ = dm.handle_bootstrap(&mt(), &bootstrap_request(2, Some(id(100))));
    assert_eq!(dm.trigger(Mode::Default).map(|t| t.id), Some(id(100)));
    for trigger in [Some(id(101)), None] {
        let step = dm.handle_bootstrap(&NodeId::new("new"), &bootstrap_request(3, trigger));
        let r = response(&step);
        assert!(r.err.is_some());
        assert_eq!(r.epoch, Epoch(3));
        assert_eq!(dm.owner().maintainer, Some(mt()));
        assert_eq!(dm.owner().epoch, Epoch(2));
    }
    let ok = response(&dm.handle_bootstrap(&NodeId::new("new"), &bootstrap_request(3, Some(id(100)))));
    assert!(ok.err.is_none());
    assert_eq!(ok.checkpoint_ts, 10, "checkpoint_ts is the trigger's start ts");
    assert!(ok.spans.iter().any(|s| s.id == id(100) && s.span.is_table_trigger()));
}

/// Found by the swarm explorer (seed 8128): a maintainer moved away, a delayed copy of its own
/// bootstrap re-created its trigger on its old node, and the next two maintainers were refused
/// there forever (trigger mismatch): the stopped one could no longer hear that its trigger was
/// back. A bootstrap from a strictly newer epoch now closes the older owner's trigger in its way;
/// its resend then takes over. The same epoch never does (its trigger is its own).
#[test]
fn newer_owner_refused_for_an_older_trigger_closes_it_and_takes_over_on_resend() {
    let dm = manager();
    let _ = dm.handle_bootstrap(&mt(), &bootstrap_request(2, Some(id(100))));
    let same_epoch = dm.handle_bootstrap(&mt(), &bootstrap_request(2, Some(id(101))));
    assert!(response(&same_epoch).err.is_some());
    assert!(!has_close(&same_epoch, id(100)), "the same owner's trigger is never closed for it");
    let newer = dm.handle_bootstrap(&NodeId::new("new"), &bootstrap_request(5, Some(id(105))));
    assert!(response(&newer).err.is_some(), "refused while the old trigger still runs");
    assert!(has_close(&newer, id(100)), "the older owner's trigger is closed");
    assert_eq!(dm.owner().epoch, Epoch(2));
    let again = dm.handle_bootstrap(&NodeId::new("new"), &bootstrap_request(5, Some(id(105))));
    assert!(!has_close(&again, id(100)), "closed once");
    let _ = dm.dispatcher_closed(id(100), Mode::Default, 10, None);
    let ok = response(&dm.handle_bootstrap(&NodeId::new("new"), &bootstrap_request(5, Some(id(105)))));
    assert!(ok.err.is_none());
    assert_eq!(dm.owner().epoch, Epoch(5));
    assert_eq!(dm.trigger(Mode::Default).map(|t| t.id), Some(id(105)));
}

#[test]
fn post_bootstrap_echoes_a_matching_trigger_and_errors_otherwise() {
    let dm = manager();
    let _ = dm.handle_bootstrap(&mt(), &bootstrap_request(2, Some(id(100))));
    let ask = |t| PostBootstrapRequest { changefeed: Default::default(), trigger: t, epoch: Epoch(2) };
    let ok = dm.handle_post_bootstrap(&mt(), &ask(Some(id(100))));
    assert!(
        matches!(&ok.effects[0], Effect::Reply { reply: Reply::PostBootstrap(r), .. } if r.err.is_none() && r.trigger == Some(id(100)))
    );
    let bad = dm.handle_post_bootstrap(&mt(), &ask(Some(id(5))));
    assert!(
        matches!(&bad.effects[0], Effect::Reply { reply: Reply::PostBootstrap(r), .. } if r.err.is_some() && r.epoch == Epoch(2))
    );
    let stale = dm.handle_post_bootstrap(&NodeId::new("x"), &ask(Some(id(100))));
    assert_eq!(stale.outcome, Outcome::Dropped(DropReason::Fenced));
}

/// TestHandleCloseRequestAcksStaleMaintainerEpoch and the admitted close (a create in flight is
/// withdrawn with its journal entry).
#[test]
fn close_acks_stale_senders_and_succeeds_once_every_dispatcher_closed() {
    let dm = manager();
    live(&dm, id(1), span(1, b"a", b"m"), Mode::Default);
    let creating = dm.handle_schedule(&mt(), create(id(3), span(3, b"a", b"m"), Mode::Default, 2));
    let in_flight = ticket(&creating);
    let close = |from: &NodeId, epoch| {
        let request = CloseRequest { changefeed: Default::default(), removed: true, epoch: Epoch(epoch) };
        dm.handle_close(from, &request)
    };
    let success = |s: &Reaction| match s.effects.last() {
        Some(Effect::Reply { reply: Reply::Close(r), .. }) => r.success,
        other => panic!("{other:?}"),
    };
    let stale = close(&NodeId::new("old"), 1);
    assert!(success(&stale));
    assert!(!dm.is_closing(), "a stale close touches nothing");
    let first = close(&mt(), 2);
    assert!(!success(&first));
    assert!(has_close(&first, id(1)));
    assert!(dm.is_removed());
    assert!(dm.operators().is_empty(), "the create in flight was withdrawn with its entry");
    assert!(dm.commit_create(&in_flight).is_err(), "and never executes");
    let create_after = dm.handle_schedule(&mt(), create(id(2), span(2, b"a", b"m"), Mode::Default, 2));
    assert_eq!(create_after.outcome, Outcome::Dropped(DropReason::Closing));
    let _ = dm.dispatcher_closed(id(1), Mode::Default, 150, None);
    assert!(success(&close(&mt(), 2)));
}

/// `spans[].block_state` carries the dispatcher's barrier state whole (stage and the pass-through
/// tables included), so a maintainer can rebuild its barrier from the snapshot (B17: failover
/// rebuilds every in-flight blocking event); it also survives the wire both ways.
#[test]
fn snapshot_carries_each_dispatchers_barrier_state_whole() {
    use dispatcher_core::wire::pb;
    let dm = manager();
    live(&dm, id(1), span(1, b"a", b"m"), Mode::Default);
    live(&dm, id(2), span(1, b"m", b"z"), Mode::Default);
    let dropped = InfluencedTables { kind: InfluenceKind::Normal, table_ids: vec![1], schema_id: 0 };
    let detail = BlockDetail { need_dropped_tables: Some(dropped), ..BlockDetail::default() };
    let state = BlockState {
        is_blocked: true,
        block_ts: 500,
        is_sync_point: false,
        stage: BlockStage::Writing,
        detail: std::sync::Arc::new(detail),
    };
    let _ = dm.report_block_status(BlockStatus { id: id(1), mode: Mode::Default, state: state.clone() });
    let r = response(&dm.handle_bootstrap(&NodeId::new("mt2"), &bootstrap_request(3, None)));
    let reported = |d| r.spans.iter().find(|s| s.id == d).unwrap().block.as_deref().cloned();
    assert_eq!(reported(id(1)), Some(state));
    assert_eq!(reported(id(2)), None, "no barrier reported: none in the snapshot");
    let wire = pb::MaintainerBootstrapResponse::from(&r);
    let on_wire = wire.spans.iter().find_map(|s| s.block_state.as_ref()).unwrap();
    assert_eq!((on_wire.stage, on_wire.block_ts), (2, 500));
    assert_eq!(BootstrapResponse::try_from(&wire).unwrap(), r);
    assert_eq!(
        r.spans.iter().find(|s| s.id == id(1)).unwrap().pending_block(),
        Some(PendingBlock { block_ts: 500, is_sync_point: false })
    );
}

/// A DONE regenerated for an event passed long ago (an old Write or Pass resent) does not hide
/// the event the dispatcher waits on now from the snapshot: found by the simulator (a syncpoint
/// stalled after a failover because its WAITING, acknowledged by the old maintainer, was
/// overwritten by a DONE for an earlier ALTER and never reached the new one). A DONE for the
/// pending event itself does replace it.
#[test]
fn a_regenerated_done_for_an_older_event_keeps_the_pending_one_in_the_snapshot() {
    let dm = manager();
    live(&dm, id(1), span(1, b"a", b"m"), Mode::Default);
    let at = |ts, sync, stage| BlockState {
        is_blocked: true,
        block_ts: ts,
        is_sync_point: sync,
        stage,
        detail: std::sync::Arc::default(),
    };
    let report = |state| dm.report_block_status(BlockStatus { id: id(1), mode: Mode::Default, state });
    let _ = report(at(500, true, BlockStage::Waiting));
    let _ = report(at(400, false, BlockStage::Done));
    let snapshot =
        |epoch| response(&dm.handle_bootstrap(&NodeId::new("mt2"), &bootstrap_request(epoch, None)));
    let r = snapshot(3);
    assert_eq!(
        r.spans[0].block.as_deref(),
        Some(&at(500, true, BlockStage::Waiting)),
        "still waiting on the syncpoint"
    );
    let _ = report(at(500, true, BlockStage::Done));
    let r = snapshot(4);
    assert_eq!(r.spans[0].pending_block(), None, "its own DONE ends it");
}

/// A dispatcher told to write reports WRITING before it writes: the node keeps it for the next
/// snapshot (a new maintainer must know this write may land: barrier seed 7832) and sends none,
/// and a late resend of its WAITING does not put it back.
#[test]
fn a_writing_dispatcher_is_writing_in_the_snapshot_and_its_writing_is_never_sent() {
    use dispatcher_core::node::barrier::{BlockEvent, DispatcherBarrier, Step};
    let dm = manager();
    live(&dm, id(1), span(1, b"a", b"m"), Mode::Default);
    let mut barrier = DispatcherBarrier::new(false);
    let event = BlockEvent {
        commit_ts: 500,
        is_sync_point: false,
        blocking: true,
        wide: false,
        not_sync: false,
        detail: std::sync::Arc::default(),
    };
    let mut offered = Vec::new();
    let mut carry = |steps: Vec<Step>, barrier: &mut DispatcherBarrier| -> Vec<Step> {
        let mut more = Vec::new();
        for step in steps {
            match step {
                Step::Report(state) => {
                    offered.push(dm.report_block_status(BlockStatus {
                        id: id(1),
                        mode: Mode::Default,
                        state,
                    }));
                }
                Step::Flush => more.extend(barrier.flushed(1).unwrap()),
                other => more.push(other),
            }
        }
        more
    };
    let steps = barrier.meet(event).unwrap();
    let rest = carry(steps, &mut barrier);
    let rest = carry(rest, &mut barrier);
    assert!(rest.is_empty());
    let write = BarrierAnswer {
        influence: Influence::All,
        action: Some(BarrierAction {
            pass: false,
            event: BarrierEvent { commit_ts: 500, is_sync_point: false },
        }),
        ack: None,
        ignored: None,
    };
    let steps = barrier.answer(&write, 500, 2);
    let rest = carry(steps, &mut barrier);
    assert_eq!(rest, vec![Step::Write]);
    assert_eq!(offered.last(), Some(&Ok(Offered::Noted)), "a WRITING is kept, not sent");
    let r = response(&dm.handle_bootstrap(&NodeId::new("mt2"), &bootstrap_request(3, None)));
    assert_eq!(r.spans[0].block.as_ref().map(|b| b.stage), Some(BlockStage::Writing));
}

/// The direct encoder of the bootstrap response writes exactly what prost writes from the
/// converted value, for a real snapshot (a barrier state, an operator in flight, a merge).
#[test]
fn direct_bootstrap_encoding_of_a_snapshot_equals_prost() {
    use dispatcher_core::wire::{bootstrap_response_to_vec, pb};
    use prost::Message;
    let dm = manager();
    live(&dm, id(1), span(1, b"a", b"m"), Mode::Default);
    live(&dm, id(2), span(1, b"m", b""), Mode::Default);
    let state = BlockState {
        is_blocked: true,
        block_ts: 500,
        is_sync_point: true,
        stage: BlockStage::Waiting,
        detail: std::sync::Arc::default(),
    };
    let _ = dm.report_block_status(BlockStatus { id: id(2), mode: Mode::Default, state });
    let _ = dm.handle_schedule(&mt(), remove(id(1), Mode::Default, 2, OperatorType::Remove));
    let r = response(&dm.handle_bootstrap(&mt(), &bootstrap_request(2, None)));
    assert!(!r.operators.is_empty() && r.spans.iter().any(|s| s.block.is_some()), "the case is covered");
    assert_eq!(bootstrap_response_to_vec(&r), pb::MaintainerBootstrapResponse::from(&r).encode_to_vec());
}

proptest::proptest! {
    /// The same for arbitrary responses: negative schema ids, unbounded and empty keys, every
    /// component state, both modes, barrier states, operators, an error.
    #[test]
    fn direct_bootstrap_encoding_equals_prost(
        rows in proptest::collection::vec(
            (1u64..u64::MAX, proptest::num::i64::ANY, proptest::collection::vec(proptest::num::u8::ANY, 0..12),
             proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 1..12)),
             0usize..7, proptest::num::u64::ANY, proptest::bool::ANY,
             proptest::option::of((proptest::num::u64::ANY, proptest::bool::ANY))),
            0..12),
        ops in proptest::collection::vec(1u64..1000, 0..3),
        (checkpoint, redo, epoch) in (proptest::num::u64::ANY, proptest::num::u64::ANY, proptest::num::u64::ANY),
        err in proptest::option::of(".{0,6}"),
        name in ".{0,6}",
    ) {
        use dispatcher_core::ids::{ChangefeedId, DispatcherId};
        use dispatcher_core::span::TableSpan;
        use dispatcher_core::wire::{bootstrap_response_to_vec, pb};
        use prost::Message;
        let spans = rows.into_iter().map(|(d, schema, start, end, st, ts, redo, block)| BootstrapSpan {
            id: DispatcherId::new(d, d.rotate_left(11)).unwrap(),
            mode: if redo { Mode::Redo } else { Mode::Default },
            schema_id: schema,
            // Not necessarily a valid span: the encoder writes whatever the value holds.
            span: TableSpan { keyspace_id: (d % 3) as u32, table_id: schema.rotate_left(5), start_key: start.into(), end_key: end.unwrap_or_default().into() },
            state: ComponentState::ALL[st],
            checkpoint_ts: ts,
            block: block.map(|(b, sync)| Box::new(BlockState {
                is_blocked: sync,
                block_ts: b,
                is_sync_point: sync,
                stage: BlockStage::Done,
                detail: std::sync::Arc::default(),
            })),
        }).collect();
        let r = BootstrapResponse {
            changefeed: ChangefeedId { high: epoch, low: checkpoint, name: name.clone(), keyspace: name },
            spans,
            err: err.map(|m| RunningError { code: "E".into(), message: m, ..RunningError::default() }),
            checkpoint_ts: checkpoint,
            redo_checkpoint_ts: redo,
            operators: ops.iter().map(|&n| remove(id(n), Mode::Default, epoch, OperatorType::Remove)).collect(),
            epoch: Epoch(epoch),
            ..BootstrapResponse::default()
        };
        proptest::prop_assert_eq!(bootstrap_response_to_vec(&r), pb::MaintainerBootstrapResponse::from(&r).encode_to_vec());
    }
}
