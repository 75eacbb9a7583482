//! The orchestrator's pending message queue (ports of the reference's `TestPendingMessageQueue_*`
//! and `TestGetPendingMessageKey_SupportedTypes`).
//!
//! Invariants checked by the property test against a sequential model (a `VecDeque` of keys and a
//! `HashMap` of the latest message per key), stated first:
//! * every push gets the model's answer: queued, replaced, dropped, full or closed;
//! * every pop returns the model's message: the key that waited longest, with the last message
//!   that won its key;
//! * the waiting messages, their count and the drained flag match the model after every step;
//! * at the end, every waiting key has exactly one FIFO place and one reservation.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use dispatcher_core::ids::{ChangefeedId, Epoch, NodeId};
use dispatcher_core::messages::{BootstrapRequest, CloseRequest, MessageKind, PostBootstrapRequest};
use dispatcher_core::node::{PendingKey, PendingMessage, PendingQueue, PushError, Pushed};
use proptest::prelude::*;

fn cf(n: u64) -> ChangefeedId {
    ChangefeedId { high: 7, low: n, ..ChangefeedId::default() }
}

fn gid(n: u64) -> u128 {
    (7u128 << 64) | u128::from(n)
}

fn bootstrap(n: u64, epoch: u64, from: &str) -> PendingMessage {
    PendingMessage::Bootstrap {
        from: NodeId::new(from),
        request: BootstrapRequest { changefeed: cf(n), epoch: Epoch(epoch), ..BootstrapRequest::default() },
    }
}

fn post_bootstrap(n: u64, epoch: u64, from: &str) -> PendingMessage {
    PendingMessage::PostBootstrap {
        from: NodeId::new(from),
        request: PostBootstrapRequest { changefeed: cf(n), trigger: None, epoch: Epoch(epoch) },
    }
}

fn close(n: u64, epoch: u64, removed: bool) -> PendingMessage {
    PendingMessage::Close {
        from: NodeId::new("mt"),
        request: CloseRequest { changefeed: cf(n), removed, epoch: Epoch(epoch) },
    }
}

fn push(q: &PendingQueue, m: PendingMessage) -> Pushed {
    q.push(m).expect("accepted")
}

fn removed(m: &PendingMessage) -> bool {
    match m {
        PendingMessage::Close { request, .. } => request.removed,
        other => panic!("not a close: {other:?}"),
    }
}

/// TestPendingMessageQueue: one queued message per key.
#[test]
fn one_queued_message_per_key() {
    let q = PendingQueue::new(8);
    assert_eq!(push(&q, bootstrap(1, 2, "mt")), Pushed::Queued);
    assert_eq!(push(&q, bootstrap(1, 2, "mt")), Pushed::Dropped, "same key, same epoch");
    assert_eq!(push(&q, bootstrap(1, 1, "mt")), Pushed::Dropped, "same key, older epoch");
    assert_eq!(q.len(), 1);
    assert_eq!(q.pop(), Some(bootstrap(1, 2, "mt")));
    assert_eq!(q.pop(), None, "the duplicate was not queued behind it");
    q.check_quiescent();
}

/// TestPendingMessageQueue: re-enqueue allowed after pop.
#[test]
fn re_enqueue_allowed_after_pop() {
    let q = PendingQueue::new(8);
    assert_eq!(push(&q, close(1, 2, false)), Pushed::Queued);
    assert_eq!(q.pop(), Some(close(1, 2, false)));
    assert_eq!(push(&q, close(1, 2, false)), Pushed::Queued, "the popped key is free again");
    assert_eq!(q.pop(), Some(close(1, 2, false)));
    assert_eq!(q.pop(), None);
    q.check_quiescent();
}

/// TestPendingMessageQueue: FIFO across keys; a replacement keeps its key's place.
#[test]
fn fifo_across_keys() {
    let q = PendingQueue::new(8);
    assert_eq!(push(&q, bootstrap(1, 1, "mt")), Pushed::Queued);
    assert_eq!(push(&q, close(2, 1, false)), Pushed::Queued);
    assert_eq!(push(&q, post_bootstrap(1, 1, "mt")), Pushed::Queued);
    assert_eq!(push(&q, bootstrap(3, 1, "mt")), Pushed::Queued);
    assert_eq!(push(&q, close(2, 5, false)), Pushed::Replaced);
    let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
    assert_eq!(
        order,
        vec![bootstrap(1, 1, "mt"), close(2, 5, false), post_bootstrap(1, 1, "mt"), bootstrap(3, 1, "mt")]
    );
    q.check_quiescent();
}

/// TestPendingMessageQueue: Pop unblocks on close. Sans-IO: after `close` pushes are refused,
/// `pop` drains what was accepted and then returns `None` with `is_drained` set.
#[test]
fn close_then_pop_drains_and_ends() {
    let q = PendingQueue::new(8);
    assert!(!q.is_drained(), "an open queue is never drained");
    assert_eq!(push(&q, bootstrap(1, 1, "mt")), Pushed::Queued);
    assert_eq!(push(&q, close(2, 1, true)), Pushed::Queued);
    q.close();
    assert!(q.is_closed());
    let refused = q.push(bootstrap(3, 1, "mt")).expect_err("closed");
    assert!(matches!(refused, PushError::Closed { .. }));
    assert_eq!(refused.into_message(), bootstrap(3, 1, "mt"), "the message is handed back");
    assert!(
        matches!(q.push(bootstrap(1, 9, "mt")), Err(PushError::Closed { .. })),
        "even an upgrade of a waiting key is refused"
    );
    assert!(!q.is_drained(), "accepted messages are still waiting");
    assert_eq!(q.pop(), Some(bootstrap(1, 1, "mt")));
    assert_eq!(q.pop(), Some(close(2, 1, true)));
    assert_eq!(q.pop(), None);
    assert!(q.is_drained());
    q.close();
    assert!(q.is_drained(), "close is idempotent");
    q.check_quiescent();
}

/// TestPendingMessageQueue: removed=true upgrades a queued removed=false at an equal or higher
/// epoch; the reverse is dropped.
#[test]
fn removed_close_upgrades_a_queued_unremoved_close() {
    let q = PendingQueue::new(8);
    assert_eq!(push(&q, close(1, 2, false)), Pushed::Queued);
    assert_eq!(push(&q, close(1, 2, true)), Pushed::Replaced, "equal epoch, removed wins");
    assert_eq!(
        push(&q, close(1, 2, false)),
        Pushed::Dropped,
        "removed=false never downgrades at equal epoch"
    );
    assert_eq!(q.pop(), Some(close(1, 2, true)));

    assert_eq!(push(&q, close(2, 2, false)), Pushed::Queued);
    assert_eq!(push(&q, close(2, 3, true)), Pushed::Replaced, "higher epoch, removed wins");
    assert_eq!(push(&q, close(2, 3, true)), Pushed::Dropped, "an identical close is a duplicate");
    let popped = q.pop().expect("queued");
    assert!(removed(&popped));
    assert_eq!(popped.epoch(), Epoch(3));
    q.check_quiescent();
}

/// TestPendingMessageQueue: a stale removed=true cannot replace a newer-epoch close.
#[test]
fn stale_removed_close_cannot_replace_a_newer_epoch_close() {
    let q = PendingQueue::new(8);
    assert_eq!(push(&q, close(1, 3, false)), Pushed::Queued);
    assert_eq!(push(&q, close(1, 2, true)), Pushed::Dropped);
    assert_eq!(q.peek(&close(1, 0, false).key()), Some(close(1, 3, false)));
    assert_eq!(q.pop(), Some(close(1, 3, false)));
    assert_eq!(q.pop(), None);
    q.check_quiescent();
}

/// TestPendingMessageQueue: a newer-epoch bootstrap replaces a queued older one (sender
/// included); an equal or older one is dropped. Post-bootstrap follows the same rule.
#[test]
fn newer_epoch_bootstrap_replaces_a_queued_older_one_equal_or_older_is_dropped() {
    let q = PendingQueue::new(8);
    assert_eq!(push(&q, bootstrap(1, 2, "mt-a")), Pushed::Queued);
    assert_eq!(push(&q, bootstrap(1, 3, "mt-b")), Pushed::Replaced);
    assert_eq!(push(&q, bootstrap(1, 3, "mt-c")), Pushed::Dropped, "equal epoch");
    assert_eq!(push(&q, bootstrap(1, 1, "mt-d")), Pushed::Dropped, "older epoch");
    assert_eq!(push(&q, post_bootstrap(1, 4, "mt-a")), Pushed::Queued);
    assert_eq!(push(&q, post_bootstrap(1, 4, "mt-b")), Pushed::Dropped);
    assert_eq!(push(&q, post_bootstrap(1, 5, "mt-b")), Pushed::Replaced);
    let first = q.pop().expect("queued");
    assert_eq!(first, bootstrap(1, 3, "mt-b"));
    assert_eq!(first.from(), &NodeId::new("mt-b"));
    assert_eq!(q.pop(), Some(post_bootstrap(1, 5, "mt-b")));
    assert_eq!(q.pop(), None);
    q.check_quiescent();
}

/// TestPendingMessageQueue: an upgrade after pop is queued for the next round, behind the keys
/// already waiting; it is not dropped as a duplicate of the popped message.
#[test]
fn upgrade_after_pop_is_queued_for_the_next_round() {
    let q = PendingQueue::new(8);
    assert_eq!(push(&q, close(1, 2, false)), Pushed::Queued);
    assert_eq!(push(&q, bootstrap(2, 1, "mt")), Pushed::Queued);
    assert_eq!(q.pop(), Some(close(1, 2, false)));
    assert_eq!(push(&q, close(1, 2, true)), Pushed::Queued, "the key is free: queued, not replaced");
    assert_eq!(q.pop(), Some(bootstrap(2, 1, "mt")), "the other key keeps its earlier place");
    assert_eq!(q.pop(), Some(close(1, 2, true)));
    assert_eq!(q.pop(), None);
    q.check_quiescent();
}

/// TestGetPendingMessageKey_SupportedTypes: key = (changefeed, kind) for the three kinds.
#[test]
fn pending_key_is_changefeed_and_kind_for_the_three_kinds() {
    let cases = [
        (bootstrap(4, 1, "mt"), MessageKind::MaintainerBootstrapRequest),
        (post_bootstrap(4, 1, "mt"), MessageKind::MaintainerPostBootstrapRequest),
        (close(4, 1, false), MessageKind::MaintainerCloseRequest),
    ];
    let q = PendingQueue::new(8);
    for (message, kind) in &cases {
        assert_eq!(message.kind(), *kind);
        assert_eq!(message.key(), PendingKey { changefeed: gid(4), kind: *kind });
        assert_eq!(push(&q, message.clone()), Pushed::Queued, "kinds of one changefeed are independent keys");
    }
    assert_eq!(push(&q, bootstrap(5, 1, "mt")), Pushed::Queued, "changefeeds are independent keys");
    assert_eq!(bootstrap(5, 1, "mt").key().changefeed, gid(5));
    let keys: HashSet<_> = std::iter::from_fn(|| q.pop()).map(|m| m.key()).collect();
    assert_eq!(keys.len(), 4);
}

/// Capacity: a new key beyond the capacity is refused and handed back, leaving nothing behind;
/// replacing a waiting key still works; a pop makes room.
#[test]
fn full_queue_refuses_a_new_key_and_leaves_nothing_behind() {
    let q = PendingQueue::new(2);
    assert_eq!(push(&q, bootstrap(1, 1, "mt")), Pushed::Queued);
    assert_eq!(push(&q, bootstrap(2, 1, "mt")), Pushed::Queued);
    let refused = q.push(bootstrap(3, 1, "mt")).expect_err("full");
    assert!(matches!(refused, PushError::Full { capacity: 2, .. }));
    assert_eq!(refused.into_message(), bootstrap(3, 1, "mt"));
    assert_eq!(q.peek(&bootstrap(3, 1, "mt").key()), None, "no slot left behind");
    q.check_quiescent();
    assert_eq!(push(&q, bootstrap(1, 2, "mt")), Pushed::Replaced, "a replacement needs no room");
    assert_eq!(q.pop(), Some(bootstrap(1, 2, "mt")));
    assert_eq!(push(&q, bootstrap(3, 1, "mt")), Pushed::Queued);
    let rest: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
    assert_eq!(rest, vec![bootstrap(2, 1, "mt"), bootstrap(3, 1, "mt")]);
    q.check_quiescent();
}

/// Real threads: four pushers racing rising epochs on three keys against two poppers. The newest
/// message of every key is popped (never lost), nothing is refused for capacity (places held are
/// at most one per key in the FIFO plus one per pusher in transit), and the queue ends quiescent.
#[test]
fn concurrent_pushers_and_poppers_never_lose_the_newest_message() {
    const EPOCH_MAX: u64 = 300;
    let q = Arc::new(PendingQueue::new(3 + 4));
    let pushers: Vec<_> = (0..4)
        .map(|t| {
            let q = q.clone();
            std::thread::spawn(move || {
                for epoch in 1..=EPOCH_MAX {
                    for n in 0..3 {
                        let m = close(n, epoch, (epoch + t) % 2 == 0);
                        let _ = q.push(m).expect("never full, never closed while pushing");
                    }
                }
            })
        })
        .collect();
    let poppers: Vec<_> = (0..2)
        .map(|_| {
            let q = q.clone();
            std::thread::spawn(move || {
                let mut popped = Vec::new();
                loop {
                    match q.pop() {
                        Some(m) => popped.push(m),
                        None if q.is_drained() => return popped,
                        None => std::thread::yield_now(),
                    }
                }
            })
        })
        .collect();
    for p in pushers {
        p.join().unwrap();
    }
    q.close();
    let popped: Vec<PendingMessage> = poppers.into_iter().flat_map(|p| p.join().unwrap()).collect();
    for n in 0..3 {
        let key = close(n, 0, false).key();
        let newest = popped.iter().filter(|m| m.key() == key).map(|m| m.epoch()).max();
        assert_eq!(newest, Some(Epoch(EPOCH_MAX)), "changefeed {n}: the newest close was popped");
        let won = popped.iter().any(|m| m.key() == key && m.epoch() == Epoch(EPOCH_MAX) && removed(m));
        assert!(won, "changefeed {n}: the removed=true close of the last epoch won its key");
    }
    assert_eq!(q.pop(), None);
    q.check_quiescent();
}

// The sequential model.

#[derive(Clone, Debug)]
enum Action {
    Push { cf: u64, kind: u8, epoch: u64, removed: bool, from: u8 },
    Pop,
    Close,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        8 => (0..3u64, 0..3u8, 0..4u64, any::<bool>(), 0..2u8)
            .prop_map(|(cf, kind, epoch, removed, from)| Action::Push { cf, kind, epoch, removed, from }),
        5 => Just(Action::Pop),
        1 => Just(Action::Close),
    ]
}

fn message(n: u64, kind: u8, epoch: u64, removed: bool, from: u8) -> PendingMessage {
    let from = ["mt-a", "mt-b"][usize::from(from)];
    match kind {
        0 => bootstrap(n, epoch, from),
        1 => post_bootstrap(n, epoch, from),
        _ => PendingMessage::Close {
            from: NodeId::new(from),
            request: CloseRequest { changefeed: cf(n), removed, epoch: Epoch(epoch) },
        },
    }
}

/// The model's own replacement rule on (kind, epoch, removed): a strictly newer epoch wins; for a
/// close, `removed = true` also wins over `removed = false` at an epoch at least as high.
fn model_wins(kind: u8, new: (u64, bool), old: (u64, bool)) -> bool {
    let is_close = kind >= 2;
    new.0 > old.0 || (is_close && new.1 && !old.1 && new.0 >= old.0)
}

/// The model's answer to a push: what the queue says when it takes the message, or the refusal
/// by name ("full", "closed").
type Answer = Result<Pushed, &'static str>;

#[derive(Default)]
struct Model {
    order: VecDeque<(u64, u8)>,
    slots: HashMap<(u64, u8), (u64, bool, PendingMessage)>,
    capacity: usize,
    closed: bool,
}

impl Model {
    fn push(&mut self, cf: u64, kind: u8, epoch: u64, removed: bool, m: PendingMessage) -> Answer {
        if self.closed {
            return Err("closed");
        }
        match self.slots.get_mut(&(cf, kind)) {
            Some(slot) if model_wins(kind, (epoch, removed), (slot.0, slot.1)) => {
                *slot = (epoch, removed, m);
                Ok(Pushed::Replaced)
            }
            Some(_) => Ok(Pushed::Dropped),
            None if self.order.len() >= self.capacity => Err("full"),
            None => {
                self.slots.insert((cf, kind), (epoch, removed, m));
                self.order.push_back((cf, kind));
                Ok(Pushed::Queued)
            }
        }
    }

    fn pop(&mut self) -> Option<PendingMessage> {
        let key = self.order.pop_front()?;
        Some(self.slots.remove(&key).expect("model slot").2)
    }
}

proptest! {
    #[test]
    fn queue_matches_the_sequential_model(
        capacity in 1..5usize,
        actions in proptest::collection::vec(action(), 1..120),
    ) {
        let q = PendingQueue::new(capacity);
        let mut model = Model { capacity, ..Model::default() };
        for a in actions {
            match a {
                Action::Push { cf, kind, epoch, removed, from } => {
                    let m = message(cf, kind, epoch, removed, from);
                    let want = model.push(cf, kind, epoch, removed, m.clone());
                    let got = match q.push(m.clone()) {
                        Ok(pushed) => Ok(pushed),
                        Err(e @ PushError::Full { .. }) => { prop_assert_eq!(e.into_message(), m); Err("full") }
                        Err(e @ PushError::Closed { .. }) => { prop_assert_eq!(e.into_message(), m); Err("closed") }
                    };
                    prop_assert_eq!(got, want);
                }
                Action::Pop => prop_assert_eq!(q.pop(), model.pop()),
                Action::Close => {
                    q.close();
                    model.closed = true;
                }
            }
            prop_assert_eq!(q.len(), model.order.len());
            prop_assert_eq!(q.is_drained(), model.closed && model.order.is_empty());
            for ((cf, kind), (_, _, m)) in &model.slots {
                let waiting = q.peek(&message(*cf, *kind, 0, false, 0).key());
                prop_assert_eq!(waiting.as_ref(), Some(m));
            }
        }
        q.check_quiescent();
        while let Some(m) = q.pop() {
            prop_assert_eq!(Some(m), model.pop());
        }
        prop_assert_eq!(model.pop(), None);
    }
}
