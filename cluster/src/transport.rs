//! The message center: one long-lived bidirectional gRPC stream per peer pair, carrying the
//! reference's frame (`proto.Message`: type, from, to, topic, payloads), with bounded queues.
//!
//! | rule | |
//! |---|---|
//! | who dials | the node with the smaller id dials; the other accepts (one stream per pair) |
//! | handshake | the first frame of a stream is a handshake (type 36, JSON payload naming the sender's incarnation) addressed to the acceptor's id; anything else closes the stream with an error status and is counted, never a panic (the reference panics, its H15). The acceptor answers with its own handshake first, so each side tags what it receives with the other's incarnation |
//! | sending | never blocks: a full queue (4,096 frames per peer) or an unknown peer is a counted drop; every protocol above resends on its timers (K16) |
//! | receiving | frames are routed into one bounded inbox with `send().await`, so a slow consumer pushes back through HTTP/2 flow control to the senders |
//! | batching | the writer packs the messages of one kind already queued into one frame (up to 256 of them or 1 MiB), as the reference's frame allows (`repeated bytes payload`) |
//! | liveness | a dial connects within 2 s, the call and the acceptor's handshake come within 5 s each, and HTTP/2 pings every 5 s both ways close a connection whose peer stopped answering for 5 s |
//! | reconnect | only the dialer, after 1 s growing ×1.1 up to 3 s. Lost: the frame whose write failed (and the message taken after it), what sat in gRPC and TCP buffers, frames received but not yet routed. Messages still queued go out on the next stream, in order: a stream's writer stops taking from the queue once its call is over |
//!
//! A frame whose type has no [`MessageKind`] (log service, redo progress, …) is a counted drop.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dispatcher_core::ids::NodeId;
use dispatcher_core::messages::MessageKind;
use dispatcher_core::wire::{io_type, kind_of_io_type, topic, HANDSHAKE_IO_TYPE};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

/// The generated types and service of `proto/message.proto` (package `proto`).
#[allow(missing_docs, non_camel_case_types, clippy::all, clippy::pedantic)] // reason: generated code
pub mod pb {
    tonic::include_proto!("proto");
}

use pb::message_service_client::MessageServiceClient;
use pb::message_service_server::{MessageService, MessageServiceServer};

/// Frames queued per peer before sends are dropped.
pub const QUEUE_FRAMES: usize = 4_096;

/// Messages received and not yet taken by the node's router.
pub const INBOX: usize = 4_096;

/// Held while a stream's writer may take from the peer's queue; dropped, the writer stops.
struct StreamGuard(#[allow(dead_code)] oneshot::Sender<()>);

/// At most this many queued messages of one kind travel in one frame.
pub const BATCH_PAYLOADS: usize = 256;

/// A frame stops taking more messages once its payloads reach this many bytes.
pub const BATCH_BYTES: usize = 1 << 20;

/// One message received from a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbound {
    /// The sending node.
    pub from: NodeId,
    /// Its incarnation, as its stream's handshake named it.
    pub incarnation: u64,
    /// What the payload is.
    pub kind: MessageKind,
    /// One encoded message of `kind`.
    pub payload: Vec<u8>,
}

/// What the transport did, for metrics.
#[derive(Debug, Default)]
pub struct Counters {
    /// Frames handed to a peer's queue.
    pub queued: AtomicU64,
    /// Messages written to a stream.
    pub sent: AtomicU64,
    /// Frames written to a stream (each carries one or more messages of one kind).
    pub frames: AtomicU64,
    /// Payloads routed to the inbox.
    pub received: AtomicU64,
    /// Sends dropped because the peer's queue was full.
    pub dropped_full: AtomicU64,
    /// Sends dropped because the peer is not known.
    pub dropped_no_peer: AtomicU64,
    /// Frames received whose type has no message kind here.
    pub dropped_unknown: AtomicU64,
    /// Streams refused (no handshake first, wrong addressee, unknown sender).
    pub refused_streams: AtomicU64,
    /// Dial attempts after the first.
    pub reconnects: AtomicU64,
    /// Frames not written because the gate was closed (the process fenced).
    pub dropped_fenced: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64) {
        // Relaxed: a statistic, read for metrics only.
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A counter's value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

struct Frame {
    kind: MessageKind,
    payload: Vec<u8>,
}

struct Peer {
    tx: mpsc::Sender<Frame>,
    /// The queue's receiving end, held by whichever stream is current.
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Frame>>>,
}

/// One node's end of the mesh.
pub struct MessageCenter {
    me: NodeId,
    incarnation: u64,
    inbox: mpsc::Sender<Inbound>,
    peers: Mutex<HashMap<NodeId, Arc<Peer>>>,
    counters: Arc<Counters>,
    /// Asked before every frame is written: a closed gate (the process fenced) drops it.
    gate: std::sync::OnceLock<Box<dyn Fn() -> bool + Send + Sync>>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Handshake {
    #[serde(rename = "Version")]
    version: u32,
    #[serde(rename = "StreamType")]
    stream_type: String,
    #[serde(rename = "Incarnation", default)]
    incarnation: u64,
}

impl MessageCenter {
    /// A center for node `me` in its lifetime `incarnation`, and the inbox its messages arrive in.
    pub fn new(me: NodeId, incarnation: u64) -> (Arc<Self>, mpsc::Receiver<Inbound>) {
        let (inbox, rx) = mpsc::channel(INBOX);
        let center = MessageCenter {
            me,
            incarnation,
            inbox,
            peers: Mutex::new(HashMap::new()),
            counters: Arc::new(Counters::default()),
            gate: std::sync::OnceLock::new(),
        };
        (Arc::new(center), rx)
    }

    /// Sets the gate every frame must pass just before it is written (the lease fence, K8): a
    /// frame queued before the process stopped is not written after it woke past its deadline.
    /// Set once; later calls are ignored.
    pub fn set_gate(&self, gate: impl Fn() -> bool + Send + Sync + 'static) {
        let _ = self.gate.set(Box::new(gate));
    }

    fn open(&self) -> bool {
        self.gate.get().is_none_or(|gate| gate())
    }

    /// The transport's counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The gRPC service to serve on this node's listen address.
    pub fn service(self: &Arc<Self>) -> MessageServiceServer<Service> {
        MessageServiceServer::new(Service { center: self.clone() }).max_decoding_message_size(256 << 20)
    }

    /// Adds a member reachable at `addr`: its queue exists from now on, and the node with the
    /// smaller id dials.
    pub fn add_peer(self: &Arc<Self>, id: NodeId, addr: String) {
        let (tx, rx) = mpsc::channel(QUEUE_FRAMES);
        let peer = Arc::new(Peer { tx, rx: Arc::new(tokio::sync::Mutex::new(rx)) });
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), peer.clone());
        if self.me < id {
            let center = self.clone();
            tokio::spawn(async move { center.dial_loop(id, addr, peer).await });
        }
    }

    /// Removes a member: its queue goes, and its stream ends with it.
    pub fn remove_peer(&self, id: &NodeId) {
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    fn peer(&self, id: &NodeId) -> Option<Arc<Peer>> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    /// Queues one message for `to`. Never blocks; a full queue or an unknown peer is a counted
    /// drop, and `false`.
    pub fn send(&self, to: &NodeId, kind: MessageKind, payload: Vec<u8>) -> bool {
        if to == &self.me {
            let message = Inbound { from: self.me.clone(), incarnation: self.incarnation, kind, payload };
            let ok = self.inbox.try_send(message).is_ok();
            Counters::add(if ok { &self.counters.received } else { &self.counters.dropped_full });
            return ok;
        }
        let Some(peer) = self.peer(to) else {
            Counters::add(&self.counters.dropped_no_peer);
            return false;
        };
        match peer.tx.try_send(Frame { kind, payload }) {
            Ok(()) => {
                Counters::add(&self.counters.queued);
                true
            }
            Err(_) => {
                Counters::add(&self.counters.dropped_full);
                false
            }
        }
    }

    fn frame(&self, to: &NodeId, frame: Frame) -> pb::Message {
        pb::Message {
            r#type: io_type(frame.kind),
            from: self.me.to_string(),
            to: to.to_string(),
            topic: topic(frame.kind).name().to_owned(),
            payload: vec![frame.payload],
        }
    }

    fn handshake(&self, to: &NodeId) -> pb::Message {
        let body = Handshake { version: 1, stream_type: "command".into(), incarnation: self.incarnation };
        pb::Message {
            r#type: HANDSHAKE_IO_TYPE,
            from: self.me.to_string(),
            to: to.to_string(),
            topic: String::new(),
            payload: vec![serde_json::to_vec(&body).unwrap_or_default()],
        }
    }

    /// The frames of the peer's queue as a stream, for as long as the stream lives: a task holds
    /// the queue's receiving end and forwards into a channel of one stream's life.
    ///
    /// The task also ends when the returned guard is dropped: the caller drops it when the call
    /// is over, so a stream whose transport dies without its body being dropped does not keep
    /// the queue (the next stream waits for it).
    fn outgoing(
        self: &Arc<Self>,
        to: NodeId,
        peer: &Arc<Peer>,
    ) -> (ReceiverStream<pb::Message>, StreamGuard) {
        let (tx, rx) = mpsc::channel(64);
        let (guard, mut stop) = oneshot::channel::<()>();
        let (center, queue) = (self.clone(), peer.rx.clone());
        tokio::spawn(async move {
            let mut queue = queue.lock_owned().await;
            let mut next: Option<Frame> = None;
            loop {
                let frame = match next.take() {
                    Some(frame) => frame,
                    // A stream that ended takes nothing more from the queue: what is queued
                    // waits for the next stream instead of going into a dead one.
                    None => tokio::select! {
                        biased;
                        _ = &mut stop => break,
                        () = tx.closed() => break,
                        got = queue.recv() => match got {
                            Some(frame) => frame,
                            None => break,
                        },
                    },
                };
                if !center.open() {
                    Counters::add(&center.counters.dropped_fenced);
                    continue;
                }
                // Batch what is already queued of the same kind into this frame.
                let kind = frame.kind;
                let mut message = center.frame(&to, frame);
                let mut bytes = message.payload[0].len();
                while message.payload.len() < BATCH_PAYLOADS && bytes < BATCH_BYTES {
                    match queue.try_recv() {
                        Ok(more) if more.kind == kind => {
                            bytes += more.payload.len();
                            message.payload.push(more.payload);
                        }
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let payloads = message.payload.len() as u64;
                if !center.open() {
                    center.counters.dropped_fenced.fetch_add(payloads, Ordering::Relaxed);
                    continue;
                }
                let sent = tokio::select! {
                    biased;
                    _ = &mut stop => false,
                    sent = tx.send(message) => sent.is_ok(),
                };
                if !sent {
                    break; // the stream ended: this batch and `next` are lost, the queue's rest waits
                }
                center.counters.sent.fetch_add(payloads, Ordering::Relaxed);
                Counters::add(&center.counters.frames);
            }
        });
        (ReceiverStream::new(rx), StreamGuard(guard))
    }

    /// Routes a stream's frames into the inbox until it ends.
    async fn incoming(&self, from: NodeId, incarnation: u64, mut stream: Streaming<pb::Message>) {
        while let Ok(Some(message)) = stream.message().await {
            let Some(kind) = kind_of_io_type(message.r#type) else {
                Counters::add(&self.counters.dropped_unknown);
                continue;
            };
            for payload in message.payload {
                let inbound = Inbound { from: from.clone(), incarnation, kind, payload };
                if self.inbox.send(inbound).await.is_err() {
                    return; // the node is gone
                }
                Counters::add(&self.counters.received);
            }
        }
    }

    async fn dial_loop(self: Arc<Self>, to: NodeId, addr: String, peer: Arc<Peer>) {
        let mut backoff = Duration::from_secs(1);
        let mut first = true;
        loop {
            if self.peer(&to).is_none_or(|p| !Arc::ptr_eq(&p, &peer)) {
                return; // removed (or replaced by a newer registration)
            }
            if !first {
                Counters::add(&self.counters.reconnects);
            }
            first = false;
            if let Some(channel) = dial(&addr).await {
                let mut client = MessageServiceClient::new(channel).max_decoding_message_size(256 << 20);
                let (outgoing, _guard) = self.outgoing(to.clone(), &peer);
                let requests = tokio_stream::iter([self.handshake(&to)]).chain(outgoing);
                let call = tokio::time::timeout(HANDSHAKE_TIMEOUT, client.stream_messages(requests)).await;
                if let Ok(Ok(response)) = call {
                    backoff = Duration::from_secs(1);
                    // The acceptor answers with its own handshake first: its incarnation tags
                    // everything it sends on this stream. A peer that accepted the call but
                    // never answers does not hold the dialer.
                    let mut stream = response.into_inner();
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.message()).await.unwrap_or(Ok(None))
                    {
                        Ok(Some(first)) if first.r#type == HANDSHAKE_IO_TYPE && first.from == to.as_str() => {
                            let incarnation = incarnation_of(&first);
                            // Ends with the stream, or once the peer is removed or replaced
                            // (a departed incarnation's frames are not routed any more).
                            let current = || self.peer(&to).is_some_and(|p| Arc::ptr_eq(&p, &peer));
                            tokio::select! {
                                _ = self.incoming(to.clone(), incarnation, stream) => {}
                                _ = async {
                                    while current() {
                                        tokio::time::sleep(Duration::from_millis(200)).await;
                                    }
                                } => return,
                            }
                        }
                        _ => Counters::add(&self.counters.refused_streams),
                    }
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = backoff.mul_f64(1.1).min(Duration::from_secs(3));
        }
    }
}

/// How long a dial may take to connect (a peer whose address drops packets).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the dialer waits for the call to open and for the acceptor's handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// HTTP/2 pings on every connection, both ways, and how long one may go unanswered before the
/// connection (and its stream) is closed: a peer that vanished without closing its socket is
/// noticed within about ten seconds, not at the next TCP timeout.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// See [`KEEP_ALIVE_INTERVAL`].
pub const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to `addr`, or `None` when it cannot be made in time.
async fn dial(addr: &str) -> Option<tonic::transport::Channel> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).ok()?;
    let endpoint = endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .tcp_nodelay(true);
    tokio::time::timeout(CONNECT_TIMEOUT + HANDSHAKE_TIMEOUT, endpoint.connect()).await.ok()?.ok()
}

/// The incarnation a handshake names (0 when it names none).
fn incarnation_of(handshake: &pb::Message) -> u64 {
    let body: Option<Handshake> = handshake.payload.first().and_then(|p| serde_json::from_slice(p).ok());
    body.map_or(0, |h| h.incarnation)
}

/// The gRPC service of a [`MessageCenter`].
pub struct Service {
    center: Arc<MessageCenter>,
}

type Outgoing = Pin<Box<dyn Stream<Item = Result<pb::Message, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl MessageService for Service {
    // The RPC keeps the reference's lowercase name (`/proto.MessageService/streamMessages`).
    #[allow(non_camel_case_types)]
    type streamMessagesStream = Outgoing;

    async fn stream_messages(
        &self,
        request: Request<Streaming<pb::Message>>,
    ) -> Result<Response<Self::streamMessagesStream>, Status> {
        let center = &self.center;
        let mut stream = request.into_inner();
        let refuse = |why: String| {
            Counters::add(&center.counters.refused_streams);
            Err(Status::failed_precondition(why))
        };
        let first = match stream.message().await {
            Ok(Some(first)) => first,
            _ => return refuse("the stream ended before its handshake".into()),
        };
        if first.r#type != HANDSHAKE_IO_TYPE {
            return refuse(format!("first frame of type {} is not a handshake", first.r#type));
        }
        if first.to != center.me.as_str() {
            return refuse(format!("addressed to {}, this is {}", first.to, center.me));
        }
        let from = NodeId::new(&first.from);
        let Some(peer) = center.peer(&from) else {
            return refuse(format!("{from} is not a member"));
        };
        let incarnation = incarnation_of(&first);
        let reader = center.clone();
        let sender = from.clone();
        tokio::spawn(async move { reader.incoming(sender, incarnation, stream).await });
        let answer = center.handshake(&from);
        // The guard lives as long as the stream handed to the server.
        let (frames, guard) = center.outgoing(from, &peer);
        let outgoing = tokio_stream::iter([answer]).chain(frames).map(move |m| {
            let _ = &guard;
            Ok(m)
        });
        Ok(Response::new(Box::pin(outgoing)))
    }
}
