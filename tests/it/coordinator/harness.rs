//! A coordinator stepped against an in-memory store that answers at once (or holds its requests
//! when a test wants to look between request and reply), recording what it sends.

use std::collections::{BTreeMap, VecDeque};

use dispatcher_core::coordinator::*;
use dispatcher_core::ids::{ChangefeedId, Epoch, NodeId};
use dispatcher_core::messages::*;

pub fn node(n: u32) -> NodeId {
    NodeId::new(&format!("n{n}"))
}

pub fn cf(name: &str) -> ChangefeedId {
    let low = name.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    ChangefeedId { high: 1, low, name: name.into(), keyspace: "default".into() }
}

pub fn stored(name: &str, epoch: u64, state: FeedState, progress: Progress) -> StoredChangefeed {
    StoredChangefeed {
        id: cf(name),
        config: b"{}".to_vec(),
        state,
        epoch: Epoch(epoch),
        checkpoint_ts: 100,
        progress,
    }
}

pub fn running(name: &str, epoch: u64) -> StoredChangefeed {
    stored(name, epoch, FeedState::Normal, Progress::None)
}

/// A maintainer's status as its node reports it.
pub fn status(name: &str, epoch: u64, working: bool, checkpoint_ts: u64) -> MaintainerStatus {
    MaintainerStatus {
        changefeed: cf(name),
        feed_state: "normal".into(),
        state: if working { ComponentState::Working } else { ComponentState::Stopped },
        checkpoint_ts,
        errors: Vec::new(),
        bootstrap_done: working,
        last_synced_ts: 0,
        drain: None,
        epoch: Epoch(epoch),
    }
}

pub struct Cluster {
    pub co: Coordinator,
    pub now: u64,
    pub store: BTreeMap<String, StoredChangefeed>,
    /// Store requests are held here instead of answered while `hold` is set.
    pub hold: bool,
    pub held: VecDeque<MetaRequest>,
    /// Every store request, in order.
    pub requests: Vec<MetaOp>,
    pub sent: Vec<(NodeId, ToManager)>,
    pub answers: Vec<(u64, Result<(), RequestError>)>,
    pub notices: Vec<Output>,
    /// Fail the next store request with this error.
    pub fail_next: Option<MetaError>,
}

impl Cluster {
    pub fn new(store: Vec<StoredChangefeed>) -> Self {
        Cluster {
            co: Coordinator::new(node(1), CoordinatorVersion(7), CoordinatorConfig::default()),
            now: 1_000,
            store: store.into_iter().map(|s| (s.id.name.clone(), s)).collect(),
            hold: false,
            held: VecDeque::new(),
            requests: Vec::new(),
            sent: Vec::new(),
            answers: Vec::new(),
            notices: Vec::new(),
            fail_next: None,
        }
    }

    pub fn step(&mut self, event: Event) {
        let mut queue = VecDeque::from([event]);
        while let Some(event) = queue.pop_front() {
            for output in self.co.step(self.now, event) {
                match output {
                    Output::Send { to, message } => self.sent.push((to, message)),
                    Output::Meta(request) => {
                        self.requests.push(request.op.clone());
                        if self.hold {
                            self.held.push_back(request);
                        } else {
                            queue.push_back(Event::Meta(self.answer(request)));
                        }
                    }
                    Output::Answered { id, result } => self.answers.push((id, result)),
                    other => self.notices.push(other),
                }
            }
        }
    }

    /// Answers the oldest held store request.
    pub fn release(&mut self) {
        let request = self.held.pop_front().expect("a held request");
        let reply = self.answer(request);
        self.step(Event::Meta(reply));
    }

    /// Answers a request taken out of `held`, without stepping the reply in.
    pub fn answer_now(&mut self, request: MetaRequest) -> MetaReply {
        self.answer(request)
    }

    fn answer(&mut self, request: MetaRequest) -> MetaReply {
        if let Some(e) = self.fail_next.take() {
            return MetaReply { ticket: request.ticket, outcome: Err(e) };
        }
        let outcome = match request.op {
            MetaOp::LoadAll => Ok(MetaValue::Loaded(self.store.values().cloned().collect())),
            MetaOp::Create(s) => {
                if self.store.contains_key(&s.id.name) {
                    Err(MetaError::Conflict)
                } else {
                    self.store.insert(s.id.name.clone(), s);
                    Ok(MetaValue::Done)
                }
            }
            MetaOp::BumpEpoch { changefeed } => match self.store.get_mut(&changefeed.name) {
                Some(s) => {
                    s.epoch = Epoch(s.epoch.0 + 1);
                    Ok(MetaValue::Bumped(s.epoch))
                }
                None => Err(MetaError::Conflict),
            },
            MetaOp::SetLifecycle { changefeed, state, progress } => {
                match self.store.get_mut(&changefeed.name) {
                    Some(s) => {
                        s.state = state;
                        s.progress = progress;
                        Ok(MetaValue::Done)
                    }
                    None => Err(MetaError::Conflict),
                }
            }
            MetaOp::SaveCheckpoints(list) => {
                for (id, ts) in list {
                    if let Some(s) = self.store.get_mut(&id.name) {
                        assert!(ts > s.checkpoint_ts, "K11: a checkpoint write must only go up");
                        s.checkpoint_ts = ts;
                    }
                }
                Ok(MetaValue::Done)
            }
            MetaOp::Delete { changefeed } => {
                self.store.remove(&changefeed.name);
                Ok(MetaValue::Done)
            }
        };
        MetaReply { ticket: request.ticket, outcome }
    }

    pub fn tick(&mut self, ms: u64) {
        self.now += ms;
        self.step(Event::Tick);
    }

    pub fn members(&mut self, nodes: &[u32]) {
        let members = nodes.iter().map(|&n| Member { node: node(n), incarnation: u64::from(n) }).collect();
        self.step(Event::Members(members));
    }

    pub fn bootstrap_answer(&mut self, n: u32, statuses: Vec<MaintainerStatus>) {
        let response =
            CoordinatorBootstrapResponse { statuses, drain_protocol_version: 1, drain_target: None };
        self.step(Event::Received {
            from: node(n),
            incarnation: u64::from(n),
            message: ToCoordinator::Bootstrap(response),
        });
    }

    pub fn report(&mut self, n: u32, statuses: Vec<MaintainerStatus>) {
        let heartbeat = MaintainerHeartbeat { statuses };
        self.step(Event::Received {
            from: node(n),
            incarnation: u64::from(n),
            message: ToCoordinator::Maintainers(heartbeat),
        });
    }

    pub fn liveness(&mut self, n: u32, liveness: NodeLiveness) {
        let heartbeat = NodeHeartbeat { liveness, node_epoch: NodeEpoch(5), drain_target: None };
        self.step(Event::Received {
            from: node(n),
            incarnation: u64::from(n),
            message: ToCoordinator::Node(heartbeat),
        });
    }

    pub fn request(&mut self, id: u64, request: Request) {
        self.step(Event::Request { id, request });
    }

    /// A coordinator on `nodes`, every node answering with nothing running, loaded, initialized.
    pub fn started(store: Vec<StoredChangefeed>, nodes: &[u32]) -> Self {
        let mut c = Cluster::new(store);
        c.members(nodes);
        c.tick(1);
        for &n in nodes {
            c.bootstrap_answer(n, Vec::new());
        }
        assert!(c.co.initialized());
        c
    }

    pub fn take_sent(&mut self) -> Vec<(NodeId, ToManager)> {
        std::mem::take(&mut self.sent)
    }

    /// The adds sent since the last `take_sent`, as (node, changefeed, epoch).
    pub fn adds(&self) -> Vec<(NodeId, String, Epoch)> {
        self.sent
            .iter()
            .filter_map(|(to, m)| match m {
                ToManager::AddMaintainer(a) => Some((to.clone(), a.changefeed.name.clone(), a.epoch)),
                _ => None,
            })
            .collect()
    }

    /// The removes sent since the last `take_sent`, as (node, changefeed, epoch, cascade, removed).
    pub fn removes(&self) -> Vec<(NodeId, String, Epoch, bool, bool)> {
        self.sent
            .iter()
            .filter_map(|(to, m)| match m {
                ToManager::RemoveMaintainer(r) => {
                    Some((to.clone(), r.changefeed.name.clone(), r.epoch, r.cascade, r.removed))
                }
                _ => None,
            })
            .collect()
    }

    pub fn view(&self, name: &str) -> FeedView {
        self.co.changefeed(name).expect("a known changefeed")
    }

    /// Places `name` on node `n` through an add answered by a working report; returns its epoch.
    pub fn run_on(&mut self, name: &str, n: u32) -> Epoch {
        let (to, _, epoch) = self.adds().into_iter().find(|(_, cf, _)| cf == name).expect("an add");
        assert_eq!(to, node(n));
        self.report(n, vec![status(name, epoch.0, true, 100)]);
        assert_eq!(self.view(name).placement, Placement::Bound { node: node(n), epoch, working: true });
        epoch
    }
}
