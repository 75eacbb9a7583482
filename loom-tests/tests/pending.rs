//! Loom models of the orchestrator's pending message queue (`node::pending`): pushers of one key
//! racing a popper, and a push racing `close`.
//!
//! Run: `RUSTFLAGS="--cfg dispatcher_loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p loom-tests --release`
//! Without the cfg this file compiles to nothing.
#![cfg(dispatcher_loom)]

use std::sync::Arc;

use dispatcher_core::ids::{ChangefeedId, Epoch, NodeId};
use dispatcher_core::messages::CloseRequest;
use dispatcher_core::node::{PendingMessage, PendingQueue, PushError, Pushed};
use loom::thread;

fn close(epoch: u64, removed: bool) -> PendingMessage {
    PendingMessage::Close {
        from: NodeId::new("mt"),
        request: CloseRequest { changefeed: ChangefeedId::default(), removed, epoch: Epoch(epoch) },
    }
}

/// Two pushers of one key (epochs 1 and 2) race a popper, then the queue is drained.
///
/// Checked in every interleaving: the epoch-2 message is popped, by the racing pop or by the
/// drain (never lost), unless it was refused as `Full` and handed back, which capacity 1 allows
/// while the other push holds the only place; a pop never finds a FIFO key without its slot,
/// which is what a key queued twice would cause (`pop` panics); each accepted message is popped
/// at most once; and nothing is left behind: no slot, FIFO key or place.
fn two_pushers_of_one_key_race_a_popper(capacity: usize) {
    loom::model(move || {
        let q = Arc::new(PendingQueue::new(capacity));
        let pushers: Vec<_> = [close(1, false), close(2, false)]
            .into_iter()
            .map(|m| {
                let q = q.clone();
                thread::spawn(move || q.push(m))
            })
            .collect();
        let mut popped: Vec<PendingMessage> = q.pop().into_iter().collect();
        let answers: Vec<_> = pushers.into_iter().map(|t| t.join().unwrap()).collect();
        q.check_quiescent();
        while let Some(m) = q.pop() {
            popped.push(m);
        }
        q.check_quiescent();
        assert!(q.is_empty());
        let accepted = answers.iter().filter(|a| matches!(a, Ok(Pushed::Queued))).count();
        assert_eq!(popped.len(), accepted, "one pop per queued key: popped {popped:?}, pushes {answers:?}");
        match &answers[1] {
            Ok(Pushed::Dropped) => panic!("nothing supersedes epoch 2: {answers:?}"),
            Ok(_) => assert!(
                popped.contains(&close(2, false)),
                "newest lost: popped {popped:?}, pushes {answers:?}"
            ),
            Err(PushError::Full { message, .. }) => {
                assert!(capacity < 2, "two keys' worth of places never run out here");
                assert_eq!(**message, close(2, false), "a refused message is handed back");
                assert!(!popped.contains(&close(2, false)));
            }
            Err(e) => panic!("unexpected refusal: {e}"),
        }
    });
}

#[test]
fn two_pushers_of_one_key_race_a_popper_with_room() {
    two_pushers_of_one_key_race_a_popper(2);
}

#[test]
fn two_pushers_of_one_key_race_a_popper_at_capacity_one() {
    two_pushers_of_one_key_race_a_popper(1);
}

/// A push racing `close` and a pop: an accepted push is always popped before the queue reports
/// itself drained, and a refused one is handed back and never popped.
#[test]
fn push_racing_close_is_popped_or_refused() {
    loom::model(|| {
        let q = Arc::new(PendingQueue::new(2));
        let pusher = {
            let q = q.clone();
            thread::spawn(move || q.push(close(3, true)))
        };
        q.close();
        let mut popped: Vec<PendingMessage> = q.pop().into_iter().collect();
        let drained_early = popped.is_empty() && q.is_drained();
        let answer = pusher.join().unwrap();
        while let Some(m) = q.pop() {
            popped.push(m);
        }
        assert!(q.is_drained());
        q.check_quiescent();
        match answer {
            Ok(Pushed::Queued) => {
                assert_eq!(popped, vec![close(3, true)]);
                assert!(!drained_early, "drained reported while an accepted push was still in flight");
            }
            Err(PushError::Closed { message }) => {
                assert_eq!(*message, close(3, true));
                assert!(popped.is_empty());
            }
            other => panic!("unexpected answer {other:?}"),
        }
    });
}
