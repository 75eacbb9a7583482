//! Loom models of the node-side block-event state where it is touched from more than one thread:
//! the barrier state a dispatcher reports is noted on its record (`report_block_status`, one
//! compare-and-swap loop on the record's barrier word), while an action delivered on the inbound
//! path makes the dispatcher report again and a bootstrap snapshot reads the word.
//!
//! Run: `RUSTFLAGS="--cfg dispatcher_loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p loom-tests --release`
//! Without the cfg this file compiles to nothing.
#![cfg(dispatcher_loom)]

use std::sync::Arc;

use dispatcher_core::ids::{ChangefeedId, DispatcherId, Epoch, Mode};
use dispatcher_core::messages::*;
use dispatcher_core::mutation::Mutations;
use dispatcher_core::node::{DispatcherManager, Effect};
use dispatcher_core::span::TableSpan;
use loom::thread;
use loom_tests::{mt, owned_manager};

fn id() -> DispatcherId {
    DispatcherId::new(0, 1).unwrap()
}

/// A manager owned by `mt` at epoch 2 with dispatcher 1 live.
fn manager() -> DispatcherManager {
    let dm = owned_manager(Mutations::NONE);
    let create = ScheduleRequest {
        changefeed: ChangefeedId::default(),
        config: DispatcherConfig {
            id: id(),
            mode: Mode::Default,
            start_ts: 100,
            schema_id: 1,
            skip_dml_as_start_ts: false,
        },
        order: Order::Create { span: TableSpan::new(0, 1, b"a".to_vec(), b"m".to_vec()).unwrap() },
        operator_type: OperatorType::Add,
        epoch: Epoch(2),
    };
    let step = dm.handle_schedule(&mt(), create);
    for effect in &step.effects {
        if let Effect::Create(ticket) = effect {
            dm.commit_create(ticket).expect("the create commits");
        }
    }
    dm
}

fn state(ts: u64, stage: BlockStage) -> BlockStatus {
    BlockStatus {
        id: id(),
        mode: Mode::Default,
        state: BlockState {
            is_blocked: stage != BlockStage::Done,
            block_ts: ts,
            is_sync_point: false,
            stage,
            detail: Arc::new(BlockDetail::default()),
        },
    }
}

fn noted(dm: &DispatcherManager) -> Option<(u64, BlockStage)> {
    let record = dm.registry().get_alive(Mode::Default, id())?;
    record.barrier_state().map(|s| (s.block_ts, s.stage))
}

/// The dispatcher, done with the event at 10, meets the event at 20 and reports WAITING, while a
/// Pass for 10 resent by the maintainer makes it report DONE for 10 again (the action arriving
/// while it reports), and a bootstrap snapshot reads the record. In every interleaving the
/// WAITING for 20 is what the record keeps (an older event's DONE never hides it, B17), and a
/// reader never sees the noted event go back.
#[test]
fn an_older_events_done_racing_a_new_waiting_never_hides_it() {
    loom::model(|| {
        let dm = Arc::new(manager());
        let _ = dm.report_block_status(state(10, BlockStage::Done));
        let waiting = {
            let dm = dm.clone();
            thread::spawn(move || {
                let _ = dm.report_block_status(state(20, BlockStage::Waiting));
            })
        };
        let regenerated = {
            let dm = dm.clone();
            thread::spawn(move || {
                let _ = dm.report_block_status(state(10, BlockStage::Done));
            })
        };
        let first = noted(&dm).expect("a state is noted");
        let second = noted(&dm).expect("a state is noted");
        assert!(first.0 <= second.0, "the noted event went back: {first:?} then {second:?}");
        for seen in [first, second] {
            assert!(
                seen == (10, BlockStage::Done) || seen == (20, BlockStage::Waiting),
                "a state nobody reported: {seen:?}"
            );
        }
        waiting.join().unwrap();
        regenerated.join().unwrap();
        assert_eq!(noted(&dm), Some((20, BlockStage::Waiting)));
    });
}

/// Two reports of one event racing (the dispatcher's WRITING and DONE after its Write action,
/// and a resend of its WAITING taken before them): the record never leaves that event, and ends
/// on the DONE in every interleaving (an earlier stage of the noted event is a late copy).
#[test]
fn a_late_waiting_resend_never_undoes_a_done_of_the_same_event() {
    loom::model(|| {
        let dm = Arc::new(manager());
        let _ = dm.report_block_status(state(20, BlockStage::Waiting));
        let writer = {
            let dm = dm.clone();
            thread::spawn(move || {
                let _ = dm.report_block_status(state(20, BlockStage::Writing));
                let _ = dm.report_block_status(state(20, BlockStage::Done));
            })
        };
        let _ = dm.report_block_status(state(20, BlockStage::Waiting));
        let mid = noted(&dm).expect("a state is noted");
        assert_eq!(mid.0, 20, "another event: {mid:?}");
        writer.join().unwrap();
        assert_eq!(noted(&dm), Some((20, BlockStage::Done)));
    });
}
