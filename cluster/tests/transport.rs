//! The message center over real loopback sockets: one stream per pair carrying both directions,
//! the handshake rule, counted drops, and reconnect with the queue kept.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dispatcher_cluster::transport::{pb, Counters, Inbound, MessageCenter, QUEUE_FRAMES};
use dispatcher_core::ids::NodeId;
use dispatcher_core::messages::MessageKind;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;

async fn serve(center: &Arc<MessageCenter>, listener: TcpListener) -> JoinHandle<()> {
    let service = center.service();
    tokio::spawn(async move {
        let incoming = TcpListenerStream::new(listener);
        let _ = tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming).await;
    })
}

async fn node(
    id: &str,
    incarnation: u64,
) -> (Arc<MessageCenter>, mpsc::Receiver<Inbound>, SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (center, inbox) = MessageCenter::new(NodeId::new(id), incarnation);
    let server = serve(&center, listener).await;
    (center, inbox, addr, server)
}

async fn next(inbox: &mut mpsc::Receiver<Inbound>) -> Inbound {
    tokio::time::timeout(Duration::from_secs(10), inbox.recv())
        .await
        .expect("a message in time")
        .expect("open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stream_per_pair_carries_both_directions_in_order() {
    let (a, mut a_in, a_addr, _sa) = node("a", 7).await;
    let (b, mut b_in, b_addr, _sb) = node("b", 9).await;
    a.add_peer(NodeId::new("b"), b_addr.to_string()); // a < b: a dials
    b.add_peer(NodeId::new("a"), a_addr.to_string());
    for i in 0..200u32 {
        assert!(a.send(&NodeId::new("b"), MessageKind::HeartBeatRequest, i.to_be_bytes().to_vec()));
    }
    for i in 0..200u32 {
        let m = next(&mut b_in).await;
        assert_eq!((m.from.as_str(), m.incarnation, m.kind), ("a", 7, MessageKind::HeartBeatRequest));
        assert_eq!(m.payload, i.to_be_bytes());
    }
    // The acceptor answers over the stream the dialer opened.
    assert!(b.send(&NodeId::new("a"), MessageKind::ScheduleDispatcherRequest, b"x".to_vec()));
    let m = next(&mut a_in).await;
    assert_eq!(
        (m.from.as_str(), m.kind, m.payload.as_slice()),
        ("b", MessageKind::ScheduleDispatcherRequest, &b"x"[..])
    );
    // A message to oneself never touches the network.
    assert!(a.send(&NodeId::new("a"), MessageKind::NodeHeartbeat, Vec::new()));
    assert_eq!(next(&mut a_in).await.from.as_str(), "a");
    assert_eq!(Counters::get(&b.counters().refused_streams), 0);
}

/// Messages queued together travel batched, one frame per run of one kind, and arrive in order
/// with their kinds and the sender's incarnation (the acceptor's too, from its answering
/// handshake).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_messages_of_one_kind_share_a_frame_and_arrive_in_order() {
    let (a, mut a_in, a_addr, _sa) = node("a", 7).await;
    let (b, _b_in, b_addr, _sb) = node("b", 9).await;
    // The acceptor b queues before the stream exists, so its writer finds them all queued.
    let kind =
        |i: u32| if i % 100 < 90 { MessageKind::HeartBeatRequest } else { MessageKind::BlockStatusRequest };
    b.add_peer(NodeId::new("a"), a_addr.to_string());
    for i in 0..1_000u32 {
        assert!(b.send(&NodeId::new("a"), kind(i), i.to_be_bytes().to_vec()));
    }
    a.add_peer(NodeId::new("b"), b_addr.to_string()); // a < b: a dials now
    for i in 0..1_000u32 {
        let m = next(&mut a_in).await;
        assert_eq!((m.from.as_str(), m.incarnation, m.kind), ("b", 9, kind(i)));
        assert_eq!(m.payload, i.to_be_bytes());
    }
    let (sent, frames) = (Counters::get(&b.counters().sent), Counters::get(&b.counters().frames));
    assert_eq!(sent, 1_000);
    assert!((20..100).contains(&frames), "20 runs of one kind, each in one or a few frames: {frames}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_without_a_handshake_or_for_another_node_is_refused_not_a_panic() {
    let (b, _b_in, b_addr, _sb) = node("b", 1).await;
    b.add_peer(NodeId::new("a"), "127.0.0.1:1".into());
    let mut client =
        pb::message_service_client::MessageServiceClient::connect(format!("http://{b_addr}")).await.unwrap();
    let first = |r#type: i32, to: &str| pb::Message {
        r#type,
        from: "a".into(),
        to: to.into(),
        topic: String::new(),
        payload: vec![b"{}".to_vec()],
    };
    for frame in [first(13, "b"), first(36, "c"), pb::Message { from: "z".into(), ..first(36, "b") }] {
        let refused = client.stream_messages(tokio_stream::iter([frame])).await;
        assert_eq!(refused.unwrap_err().code(), tonic::Code::FailedPrecondition);
    }
    assert_eq!(Counters::get(&b.counters().refused_streams), 3);
    // The server still serves a proper stream afterwards.
    let ok = client.stream_messages(tokio_stream::iter([first(36, "b")])).await;
    assert!(ok.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_or_an_unknown_peer_is_a_counted_drop() {
    let (a, _a_in, _a_addr, _sa) = node("a", 1).await;
    // A peer that never answers: its queue fills, and sends beyond it are dropped, not blocked.
    a.add_peer(NodeId::new("b"), "127.0.0.1:1".into());
    let sent = (0..QUEUE_FRAMES + 10)
        .filter(|_| a.send(&NodeId::new("b"), MessageKind::HeartBeatRequest, vec![0]))
        .count();
    assert!(sent <= QUEUE_FRAMES + 1, "{sent}");
    assert!(Counters::get(&a.counters().dropped_full) >= 9);
    assert!(!a.send(&NodeId::new("nobody"), MessageKind::HeartBeatRequest, vec![0]));
    assert_eq!(Counters::get(&a.counters().dropped_no_peer), 1);
}

/// A node process of its own: a runtime whose shutdown drops every task and connection of it,
/// as `kill -9` would, serving on `addr` (reused at once, as a restarted process would).
fn process(
    id: &str,
    incarnation: u64,
    addr: SocketAddr,
    peer: SocketAddr,
) -> (tokio::runtime::Runtime, mpsc::Receiver<Inbound>) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (center, inbox) = MessageCenter::new(NodeId::new(id), incarnation);
    rt.spawn(async move {
        center.add_peer(NodeId::new("a"), peer.to_string());
        // The previous process's listener may still be closing: try again for a while.
        let mut tries = 0;
        let listener = loop {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            match socket.bind(addr).and_then(|()| socket.listen(64)) {
                Ok(listener) => break listener,
                Err(e) if tries < 100 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("bind {addr}: {e}"),
            }
        };
        let incoming = TcpListenerStream::new(listener);
        let _ = tonic::transport::Server::builder()
            .add_service(center.service())
            .serve_with_incoming(incoming)
            .await;
    });
    (rt, inbox)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dialer_reconnects_and_what_was_queued_meanwhile_goes_out_in_order() {
    let (a, _a_in, a_addr, _sa) = node("a", 1).await;
    let b_addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let (b, mut b_in) = process("b", 2, b_addr, a_addr);
    a.add_peer(NodeId::new("b"), b_addr.to_string());
    a.send(&NodeId::new("b"), MessageKind::HeartBeatRequest, vec![1]);
    assert_eq!(next(&mut b_in).await.payload, [1]);
    // b's process dies; once a noticed and found nobody listening (its second dial), a keeps
    // queueing. (Sent earlier, a frame can go into the dead stream's buffers, or to the dying
    // process's listener still accepting: that loss is documented.)
    b.shutdown_background();
    let noticed = tokio::time::timeout(Duration::from_secs(10), async {
        while Counters::get(&a.counters().reconnects) < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    noticed.await.expect("the dialer noticed the broken stream");
    for i in 2..6u8 {
        a.send(&NodeId::new("b"), MessageKind::HeartBeatRequest, vec![i]);
    }
    // b comes back on the same address: a new process, a new center and inbox.
    let (b2, mut b2_in) = process("b", 3, b_addr, a_addr);
    let mut got = Vec::new();
    while got.len() < 3 {
        let m = match tokio::time::timeout(Duration::from_secs(10), b2_in.recv()).await {
            Ok(Some(m)) => m,
            other => panic!(
                "after {got:?}: {:?}, reconnects {}",
                other.is_ok(),
                Counters::get(&a.counters().reconnects)
            ),
        };
        got.push(m.payload[0]);
        if got.contains(&5) {
            break;
        }
    }
    // At most the frame in hand when the stream broke is lost; the rest arrive in order.
    let mut expected: Vec<u8> = (2..6).collect();
    expected.retain(|p| got.contains(p));
    assert_eq!(got, expected);
    assert!(got.len() >= 3, "{got:?}");
    assert!(Counters::get(&a.counters().reconnects) >= 1);
    b2.shutdown_background();
}

/// A peer that accepts connections and never answers (a hung process) does not hold the dialer:
/// each attempt times out and the dialer tries again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_accepts_and_never_answers_does_not_hold_the_dialer() {
    let (a, _a_in, _a_addr, _sa) = node("a", 1).await;
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            sockets.push(socket); // kept open, never read
        }
    });
    a.add_peer(NodeId::new("b"), addr.to_string());
    a.send(&NodeId::new("b"), MessageKind::HeartBeatRequest, vec![1]);
    let retried = tokio::time::timeout(Duration::from_secs(40), async {
        while Counters::get(&a.counters().reconnects) < 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    retried.await.expect("the dialer gave up on the silent peer and dialled again");
    held.abort();
}
