//! Block statuses: batching and de-duplication (B15), in the buffer and in the send queue.

use dispatcher_core::ids::{ChangefeedId, Mode, NodeId};
use dispatcher_core::messages::*;
use dispatcher_core::node::{batch, BlockStatusBuffer, BlockStatusQueue, Collector, Enqueued, Offered};

use super::{block, manager, plain, request_of};
use crate::node::manager::{id, mt};

/// A request queued whole, nothing filtered out.
const QUEUED: Enqueued = Enqueued::Queued { dropped: 0 };

/// TestBlockStatusBufferDeduplicatesPendingDone / ...PendingWaiting / ...AllowsAgainAfterTake.
#[test]
fn buffer_dedupes_pending_waiting_and_done_until_taken() {
    for stage in [BlockStage::Waiting, BlockStage::Done] {
        let buffer = BlockStatusBuffer::new(16);
        assert_eq!(buffer.offer(plain(1, stage)), Ok(Offered::Buffered));
        assert_eq!(buffer.offer(plain(1, stage)), Ok(Offered::Duplicate));
        assert_eq!(buffer.len(), 1);
        assert_eq!(buffer.take(), Some(plain(1, stage)), "materialized intact");
        assert_eq!(buffer.offer(plain(1, stage)), Ok(Offered::Buffered), "again after take");
    }
}

/// TestBlockStatusBufferKeepsWaitingBeforeDone / ...KeepsDistinctDoneKeys; NONE never deduped.
#[test]
fn buffer_keeps_distinct_keys_in_order_and_never_dedupes_none() {
    let buffer = BlockStatusBuffer::new(16);
    let offers = [
        plain(1, BlockStage::Waiting),
        plain(1, BlockStage::Done),
        plain(1, BlockStage::Done),
        block(1, BlockStage::Done, true, Mode::Default),
        block(1, BlockStage::Done, false, Mode::Redo),
        plain(1, BlockStage::None),
        plain(1, BlockStage::None),
    ];
    for o in offers.iter().cloned() {
        let _ = buffer.offer(o).unwrap();
    }
    let taken: Vec<_> = std::iter::from_fn(|| buffer.take()).collect();
    let want: Vec<_> = offers.iter().enumerate().filter(|(i, _)| *i != 2).map(|(_, o)| o.clone()).collect();
    assert_eq!(taken, want);
}

#[test]
fn a_full_buffer_hands_the_status_back_and_frees_its_key() {
    let buffer = BlockStatusBuffer::new(1);
    let _ = buffer.offer(plain(1, BlockStage::None)).unwrap();
    let back = buffer.offer(plain(2, BlockStage::Waiting)).unwrap_err();
    assert_eq!(back.0.id, id(2));
    let _ = buffer.take();
    assert_eq!(buffer.offer(plain(2, BlockStage::Waiting)), Ok(Offered::Buffered));
}

/// TestCollectBlockStatusRequestSplitsOversizedMessages.
#[test]
fn batches_split_by_mode_and_at_2048() {
    let redo = (1..=2049).map(|n| block(n, BlockStage::None, false, Mode::Redo));
    let all = (1..=2050).map(|n| plain(n, BlockStage::None)).chain(redo).collect();
    let out = batch(&ChangefeedId::default(), all, 2048);
    let shape: Vec<_> = out.iter().map(|r| (r.mode, r.statuses.len())).collect();
    assert_eq!(shape, vec![(Mode::Default, 2048), (Mode::Default, 2), (Mode::Redo, 2048), (Mode::Redo, 1)]);
    assert_eq!(out[1].statuses[1].id, id(2050), "original order kept");
    assert!(out.iter().all(|r| r.statuses.iter().all(|s| s.mode == r.mode)));
}

/// TestCollectBlockStatusRequestKeepsLateArrivalInSameBatch.
#[test]
fn a_late_arrival_within_the_window_joins_the_batch() {
    let dm = manager();
    let mut collector = Collector::new(&dm);
    let _ = dm.block_statuses().offer(plain(1, BlockStage::Waiting)).unwrap();
    assert!(collector.poll(&dm, 0).block_statuses.is_empty(), "window opens");
    let _ = dm.block_statuses().offer(plain(2, BlockStage::Waiting)).unwrap();
    assert!(collector.poll(&dm, 9).block_statuses.is_empty());
    let out = collector.poll(&dm, 10).block_statuses;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].request.statuses.iter().map(|s| s.id).collect::<Vec<_>>(), vec![id(1), id(2)]);
    assert_eq!(out[0].to, mt());
}

/// TestBlockStatusRequestQueueDeduplicatesQueuedAndInFlightDone / ...Waiting.
#[test]
fn send_queue_dedupes_across_queued_and_in_flight() {
    for stage in [BlockStage::Done, BlockStage::Waiting] {
        let q = BlockStatusQueue::new(8);
        let s = || request_of(vec![plain(1, stage)]);
        assert_eq!(q.enqueue(mt(), s()).unwrap(), QUEUED);
        assert_eq!(q.enqueue(mt(), s()).unwrap(), Enqueued::AllDuplicates, "queued");
        let in_flight = q.pop().unwrap();
        assert!(q.pop().is_none(), "only the first was queued");
        assert_eq!(q.enqueue(mt(), s()).unwrap(), Enqueued::AllDuplicates, "in flight");
        assert_eq!(q.enqueue(NodeId::new("mt2"), s()).unwrap(), QUEUED, "another target is another key");
        q.sent(&in_flight);
        assert_eq!(q.enqueue(mt(), s()).unwrap(), QUEUED, "accepted after send completes");
    }
}

/// ...KeepsDistinctDoneKeys / ...KeepsWaitingAndDoneDistinct.
#[test]
fn send_queue_keeps_distinct_keys_and_filters_inside_a_request() {
    let q = BlockStatusQueue::new(8);
    let r = request_of(vec![
        plain(1, BlockStage::Waiting),
        plain(1, BlockStage::Done),
        block(1, BlockStage::Done, true, Mode::Default),
        plain(1, BlockStage::Done),
        plain(1, BlockStage::None),
        plain(1, BlockStage::None),
    ]);
    assert_eq!(q.enqueue(mt(), r).unwrap(), Enqueued::Queued { dropped: 1 });
    let sent = q.pop().unwrap();
    let stages: Vec<_> =
        sent.request.statuses.iter().map(|s| (s.state.stage, s.state.is_sync_point)).collect();
    assert_eq!(
        stages,
        vec![
            (BlockStage::Waiting, false),
            (BlockStage::Done, false),
            (BlockStage::Done, true),
            (BlockStage::None, false),
            (BlockStage::None, false)
        ]
    );
}

#[test]
fn a_full_send_queue_hands_the_request_back_and_frees_its_keys() {
    let q = BlockStatusQueue::new(1);
    let s = |d| request_of(vec![plain(d, BlockStage::Done)]);
    let _ = q.enqueue(mt(), s(1)).unwrap();
    let full = q.enqueue(mt(), s(2)).unwrap_err();
    assert_eq!(full.request, s(2));
    let _ = q.pop().unwrap();
    assert_eq!(q.enqueue(mt(), s(2)).unwrap(), QUEUED, "its key was released");
}
