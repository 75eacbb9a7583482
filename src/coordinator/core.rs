//! The coordinator core: [`Coordinator::step`] and the handlers it dispatches to.

use std::collections::BTreeMap;

use super::changefeed::{must_stop, Feed, FeedView, Placement};
use super::event::{Event, Member, Output, Request, RequestError};
use super::meta::{
    FeedState, MetaError, MetaOp, MetaReply, MetaRequest, MetaValue, Progress, StoredChangefeed, Ticket,
};
use super::operator::{Add, AddStage, Move, MoveStage, Operator, Stop, StopStage};
use crate::ids::{ChangefeedId, Epoch, NodeId, Ts};
use crate::messages::{
    AddMaintainer, CoordinatorBootstrapRequest, CoordinatorBootstrapResponse, CoordinatorVersion,
    MaintainerStatus, NodeEpoch, NodeLiveness, RemoveMaintainer, ToCoordinator, ToManager,
};
use crate::mutation::{Mutation, Mutations};

/// The coordinator's timers and bounds. Defaults follow the reference where it has one.
#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    /// Resend period of an unanswered bootstrap or operator request (reference: 500 ms).
    pub resend_ms: u64,
    /// How long the bootstrap waits for a member that does not answer before going on without it.
    /// The reference waits forever for a registered but mute node (its H4); going on is safe
    /// because every placement bumps the epoch, which fences whatever the mute node runs.
    pub bootstrap_timeout_ms: u64,
    /// A node not heard from for this long takes no new maintainer (reference: 30 s).
    pub stale_node_ms: u64,
    /// Checkpoints are stored at most this often (reference: 1 s).
    pub checkpoint_interval_ms: u64,
    /// At most this many operators in flight (reference `max-task-concurrency`: 10).
    pub max_operators: usize,
    /// Wait before placing again a changefeed whose placement failed.
    pub retry_ms: u64,
    /// Checkpoints per store write (etcd's default maximum of operations per transaction).
    pub checkpoints_per_write: usize,
    /// A placed maintainer not heard from for this long is placed again (at a new epoch, which
    /// fences it if it still runs somewhere unheard).
    pub silent_maintainer_ms: u64,
    /// Deliberate bugs, for the simulator's self-tests (see [`crate::mutation`]).
    pub mutation: Mutations,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            resend_ms: 500,
            bootstrap_timeout_ms: 10_000,
            stale_node_ms: 30_000,
            checkpoint_interval_ms: 1_000,
            max_operators: 10,
            retry_ms: 1_000,
            checkpoints_per_write: 128,
            silent_maintainer_ms: 30_000,
            mutation: Mutations::NONE,
        }
    }
}

/// A member as the coordinator tracks it.
#[derive(Clone, Debug)]
struct Node {
    incarnation: u64,
    /// Answered this coordinator's bootstrap (or was given up on, then answered late or not at
    /// all). Only answered nodes take maintainers; their heartbeats are read.
    answered: bool,
    /// Given up on during the bootstrap; its report is still read when it comes.
    given_up: bool,
    asked_ms: u64,
    liveness: NodeLiveness,
    node_epoch: Option<NodeEpoch>,
    last_seen_ms: u64,
}

/// Where the changefeed list is while bootstrapping.
#[derive(Clone, Debug)]
enum Load {
    /// To ask (again) at this time.
    At(u64),
    Asked,
    Loaded(Vec<StoredChangefeed>),
}

#[derive(Clone, Debug)]
enum Phase {
    Bootstrapping { started_ms: u64, load: Load, reports: BTreeMap<NodeId, Vec<MaintainerStatus>> },
    Running,
}

/// What a user's lifecycle write leads to once stored.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Then {
    Pause,
    Resume,
    Remove,
}

/// A store request in flight.
#[derive(Clone, Debug)]
enum Pending {
    Load,
    Create { stored: StoredChangefeed, request: u64, unknown_before: bool },
    Bump { name: String, gid: u128 },
    Lifecycle { name: String, gid: u128, request: u64, then: Then, state: FeedState, progress: Progress },
    FinishStop { name: String, gid: u128 },
    Checkpoints(Vec<(String, u128, Ts)>),
}

/// The coordinator: one per cluster, elected; places each changefeed's maintainer on a node,
/// moves and stops it, and stores checkpoints. Sans-IO: the shell steps it with the time and one
/// [`Event`], and carries out the [`Output`]s.
#[derive(Debug)]
pub struct Coordinator {
    me: NodeId,
    version: CoordinatorVersion,
    config: CoordinatorConfig,
    nodes: BTreeMap<NodeId, Node>,
    feeds: BTreeMap<String, Feed>,
    phase: Phase,
    pending: BTreeMap<Ticket, Pending>,
    next_ticket: u64,
    next_checkpoint_ms: u64,
    checkpoint_write: bool,
    /// A fresh placement's first checkpoint is waiting: save before the interval is up.
    save_soon: bool,
    /// Creates whose store write went unanswered, retried at their time.
    creates: Vec<(u64, StoredChangefeed, u64)>,
    /// Lifecycle writes whose outcome is unknown, written again at their time (the first field).
    lifecycles: Vec<(u64, Pending)>,
    deposed: bool,
    now: u64,
    out: Vec<Output>,
}

impl Coordinator {
    /// A coordinator just elected on node `me` with `version` (the create revision of its election
    /// key). It learns the members from the first [`Event::Members`].
    pub fn new(me: NodeId, version: CoordinatorVersion, config: CoordinatorConfig) -> Self {
        Coordinator {
            me,
            version,
            config,
            nodes: BTreeMap::new(),
            feeds: BTreeMap::new(),
            phase: Phase::Bootstrapping { started_ms: 0, load: Load::At(0), reports: BTreeMap::new() },
            pending: BTreeMap::new(),
            next_ticket: 1,
            next_checkpoint_ms: 0,
            checkpoint_write: false,
            save_soon: false,
            creates: Vec::new(),
            lifecycles: Vec::new(),
            deposed: false,
            now: 0,
            out: Vec::new(),
        }
    }

    /// Takes one event at time `now_ms` and returns what the shell must do.
    pub fn step(&mut self, now_ms: u64, event: Event) -> Vec<Output> {
        if self.deposed {
            return Vec::new();
        }
        self.now = self.now.max(now_ms);
        match event {
            Event::Tick => self.tick(),
            Event::Members(members) => self.members(members),
            Event::Received { from, incarnation, message } => self.received(from, incarnation, message),
            Event::Meta(reply) => self.meta(reply),
            Event::Request { id, request } => self.request(id, request),
        }
        if matches!(self.phase, Phase::Bootstrapping { .. }) {
            self.try_finish_bootstrap();
        }
        std::mem::take(&mut self.out)
    }

    /// Whether the bootstrap finished.
    pub fn initialized(&self) -> bool {
        matches!(self.phase, Phase::Running)
    }

    /// Whether the store refused a write for lost leadership.
    pub fn deposed(&self) -> bool {
        self.deposed
    }

    /// The coordinator's version.
    pub fn version(&self) -> CoordinatorVersion {
        self.version
    }

    /// Every changefeed, by name.
    pub fn changefeeds(&self) -> impl Iterator<Item = FeedView> + '_ {
        self.feeds.values().map(FeedView::from)
    }

    /// One changefeed.
    pub fn changefeed(&self, name: &str) -> Option<FeedView> {
        self.feeds.get(name).map(FeedView::from)
    }

    /// The liveness a node last reported (`None` for a node that is not a member).
    pub fn liveness(&self, node: &NodeId) -> Option<NodeLiveness> {
        self.nodes.get(node).map(|n| n.liveness)
    }

    // ---- plumbing ----

    /// The changefeed named `name` if it is still the one with `gid` (not removed and created
    /// again meanwhile).
    fn feed_mut(&mut self, name: &str, gid: u128) -> Option<&mut Feed> {
        self.feeds.get_mut(name).filter(|f| f.stored.id.gid() == gid)
    }

    fn send(&mut self, to: NodeId, message: ToManager) {
        self.out.push(Output::Send { to, message });
    }

    fn store(&mut self, op: MetaOp, pending: Pending) -> Ticket {
        let ticket = Ticket(self.next_ticket);
        self.next_ticket += 1;
        self.pending.insert(ticket, pending);
        self.out.push(Output::Meta(MetaRequest { ticket, op }));
        ticket
    }

    fn answer(&mut self, id: u64, result: Result<(), RequestError>) {
        self.out.push(Output::Answered { id, result });
    }

    fn ask_bootstrap(&mut self, node: NodeId) {
        let version = self.version;
        if let Some(n) = self.nodes.get_mut(&node) {
            n.asked_ms = self.now;
        }
        self.send(node, ToManager::Bootstrap(CoordinatorBootstrapRequest { version }));
    }

    /// Whether `node` may take a new maintainer (invariant K14, without drain).
    fn schedulable(&self, node: &NodeId) -> bool {
        self.nodes.get(node).is_some_and(|n| {
            n.answered
                && n.liveness.schedulable()
                && self.now.saturating_sub(n.last_seen_ms) <= self.config.stale_node_ms
        })
    }

    // ---- membership ----

    fn members(&mut self, members: Vec<Member>) {
        let current: BTreeMap<NodeId, u64> = members.into_iter().map(|m| (m.node, m.incarnation)).collect();
        let gone: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(id, n)| current.get(*id) != Some(&n.incarnation))
            .map(|(id, _)| id.clone())
            .collect();
        for node in gone {
            self.node_left(&node);
        }
        for (node, incarnation) in current {
            if self.nodes.contains_key(&node) {
                continue;
            }
            self.nodes.insert(
                node.clone(),
                Node {
                    incarnation,
                    answered: false,
                    given_up: false,
                    asked_ms: self.now,
                    liveness: NodeLiveness::Alive,
                    node_epoch: None,
                    last_seen_ms: self.now,
                },
            );
            if let Phase::Bootstrapping { started_ms, .. } = &mut self.phase {
                if self.nodes.len() == 1 {
                    // The first membership starts the bootstrap clock.
                    *started_ms = self.now;
                }
            }
            self.ask_bootstrap(node);
        }
    }

    /// A node's session ended (or it registered again): it runs nothing any more.
    fn node_left(&mut self, node: &NodeId) {
        self.nodes.remove(node);
        if let Phase::Bootstrapping { reports, .. } = &mut self.phase {
            reports.remove(node);
        }
        let now = self.now;
        let mut bump_move = Vec::new();
        let mut bump_stop = Vec::new();
        for (name, feed) in &mut self.feeds {
            if matches!(&feed.placement, Placement::Bound { node: n, .. } if n == node) {
                feed.placement = Placement::Absent;
                feed.retry_at_ms = now;
            }
            let Some(op) = &mut feed.op else { continue };
            match op {
                Operator::Add(a) if &a.dest == node => {
                    // K4: an epoch that may have reached the node is never sent elsewhere.
                    feed.op = None;
                    feed.placement = Placement::Absent;
                }
                Operator::Move(m) => {
                    let target_gone = &m.target == node;
                    let origin_gone = &m.origin == node;
                    match m.stage {
                        MoveStage::RemoveOrigin { .. } if target_gone => {
                            // Give the move up. The origin keeps running, unless the remove
                            // already reached it: then it reports stopped and is placed again.
                            feed.op = None;
                        }
                        MoveStage::RemoveOrigin { .. } if origin_gone => {
                            // K5: the origin left membership, so it runs nothing.
                            bump_move.push(name.clone());
                        }
                        MoveStage::Bumping(_) | MoveStage::AddTarget { .. } if target_gone => {
                            feed.op = None;
                            feed.placement = Placement::Absent;
                        }
                        _ => {}
                    }
                }
                Operator::Stop(s)
                    if s.node.as_ref() == Some(node) && matches!(s.stage, StopStage::Stopping { .. }) =>
                {
                    // What its maintainer left on the other nodes is closed through this node,
                    // at a new epoch.
                    s.node = None;
                    bump_stop.push(name.clone());
                }
                _ => {}
            }
        }
        for name in bump_move {
            self.bump_for_move(&name);
        }
        for name in bump_stop {
            self.bump_for_stop(&name);
        }
    }

    // ---- messages from nodes ----

    fn received(&mut self, from: NodeId, incarnation: u64, message: ToCoordinator) {
        let Some(node) = self.nodes.get_mut(&from).filter(|n| n.incarnation == incarnation) else {
            return; // not a member, or a previous process under its id: a documented drop
        };
        node.last_seen_ms = self.now;
        match message {
            ToCoordinator::Bootstrap(response) => self.bootstrap_response(from, response),
            ToCoordinator::Maintainers(heartbeat) => {
                if !node.answered || !self.initialized() {
                    return; // K10: heartbeats count only from nodes that answered, once running
                }
                for status in heartbeat.statuses {
                    self.status(&from, status);
                }
            }
            ToCoordinator::Node(heartbeat) => {
                Self::observe_liveness(node, heartbeat.node_epoch, heartbeat.liveness);
            }
            ToCoordinator::Liveness(applied) => {
                Self::observe_liveness(node, applied.node_epoch, applied.applied);
            }
        }
    }

    fn observe_liveness(node: &mut Node, epoch: NodeEpoch, liveness: NodeLiveness) {
        match node.node_epoch {
            Some(known) if epoch < known => {}
            Some(known) if epoch == known && liveness < node.liveness => {}
            _ => {
                node.node_epoch = Some(epoch);
                node.liveness = liveness;
            }
        }
    }

    fn bootstrap_response(&mut self, from: NodeId, response: CoordinatorBootstrapResponse) {
        let Some(node) = self.nodes.get_mut(&from) else { return };
        node.answered = true;
        match &mut self.phase {
            Phase::Bootstrapping { reports, .. } => {
                reports.insert(from, response.statuses);
            }
            Phase::Running => {
                // A node that joined after the bootstrap, or one given up on: what it runs is
                // read like a heartbeat (strays get stopped), never adopted over a placement.
                for status in response.statuses {
                    self.status(&from, status);
                }
            }
        }
    }

    /// One maintainer status from an answered member, while running.
    fn status(&mut self, from: &NodeId, status: MaintainerStatus) {
        let name = status.changefeed.name.clone();
        let Some(feed) = self.feeds.get_mut(&name).filter(|f| f.stored.id.gid() == status.changefeed.gid())
        else {
            if status.working() {
                // A maintainer of a changefeed the store does not have: remove it everywhere.
                let remove = RemoveMaintainer {
                    changefeed: status.changefeed.clone(),
                    cascade: true,
                    removed: true,
                    keyspace_id: 0,
                    epoch: status.epoch,
                };
                self.send(from.clone(), ToManager::RemoveMaintainer(remove));
            }
            return;
        };
        let expected = feed.op.as_ref().is_some_and(|op| op.expects(from, status.epoch, &self.me))
            || matches!(&feed.placement, Placement::Bound { node, epoch, .. } if node == from && *epoch == status.epoch);
        if !expected {
            if status.working() {
                // A stray: an older placement still running (a late bootstrap answer, a
                // maintainer that missed its remove). While the changefeed runs, stop the stray
                // alone: its dispatchers belong to the current placement, which fences them with
                // its higher epoch. While it is being stopped, close them too.
                let stopping = must_stop(feed.stored.state, feed.stored.progress);
                let removed = feed.stored.progress == Progress::Removing;
                let remove = Self::remove_message(feed, status.epoch, stopping, removed);
                self.send(from.clone(), remove);
            }
            return;
        }
        // The reporter is the placement or the operator's: its checkpoint counts (a moved
        // maintainer's final checkpoint too, which the reference drops, its H3).
        feed.checkpoint = feed.checkpoint.max(status.checkpoint_ts);
        if let Placement::Bound { node, epoch, working } = &mut feed.placement {
            if node == from && *epoch == status.epoch {
                feed.heard_ms = self.now;
                if feed.fresh && feed.checkpoint > feed.stored.checkpoint_ts {
                    feed.fresh = false;
                    self.save_soon = true;
                }
                *working = status.working();
                if !status.working() && feed.op.is_none() {
                    // It stopped on its own: place it again after a wait that grows.
                    feed.placement = Placement::Absent;
                    Self::failed(feed, self.now, self.config.retry_ms);
                }
            }
        }
        self.check_operator(&name, from, &status);
    }

    /// Offers a status to the changefeed's operator.
    fn check_operator(&mut self, name: &str, from: &NodeId, status: &MaintainerStatus) {
        let now = self.now;
        let retry = self.config.retry_ms;
        let Some(feed) = self.feeds.get_mut(name) else { return };
        let Some(op) = &mut feed.op else { return };
        let up = status.working() && status.bootstrap_done;
        match op {
            Operator::Add(Add { dest, stage: AddStage::Adding { epoch, .. } })
                if dest == from && *epoch == status.epoch =>
            {
                if up {
                    feed.placement = Placement::Bound { node: from.clone(), epoch: *epoch, working: true };
                    feed.heard_ms = now;
                    feed.fresh = true;
                    feed.op = None;
                    feed.is_new = false;
                    feed.failures = 0;
                } else if !status.working() {
                    // The node stopped it (or could not build it): place again later, with a new
                    // epoch.
                    feed.op = None;
                    feed.placement = Placement::Absent;
                    Self::failed(feed, now, retry);
                }
            }
            Operator::Move(m) => match m.stage {
                MoveStage::RemoveOrigin { .. }
                    if &m.origin == from && m.origin_epoch == status.epoch && !status.working() =>
                {
                    feed.placement = Placement::Absent;
                    self.bump_for_move(name);
                }
                MoveStage::AddTarget { epoch, .. } if &m.target == from && epoch == status.epoch => {
                    if up {
                        feed.placement = Placement::Bound { node: from.clone(), epoch, working: true };
                        feed.heard_ms = now;
                        feed.fresh = true;
                        feed.op = None;
                    } else if !status.working() {
                        feed.op = None;
                        feed.placement = Placement::Absent;
                        Self::failed(feed, now, retry);
                    }
                }
                _ => {}
            },
            Operator::Stop(s) => {
                let stopper = s.node.clone().unwrap_or_else(|| self.me.clone());
                if matches!(s.stage, StopStage::Stopping { .. })
                    && &stopper == from
                    && s.epoch == status.epoch
                    && !status.working()
                {
                    feed.placement = Placement::Absent;
                    self.finish_stop(name);
                }
            }
            Operator::Add(_) => {}
        }
    }

    /// A placement ended with its maintainer stopping by itself: the next one waits `retry_ms`
    /// doubled for each such end in a row, at most a minute.
    fn failed(feed: &mut Feed, now: u64, retry_ms: u64) {
        feed.failures += 1;
        feed.retry_at_ms = now + retry_ms.saturating_mul(1 << feed.failures.min(6)).min(60_000);
    }

    // ---- operators ----

    /// Asks the store for a new epoch for `name`'s operator, which waits in its bump stage.
    fn bump(&mut self, name: &str) -> Option<Ticket> {
        let feed = self.feeds.get(name)?;
        let (id, gid) = (feed.stored.id.clone(), feed.stored.id.gid());
        Some(self.store(MetaOp::BumpEpoch { changefeed: id }, Pending::Bump { name: name.to_owned(), gid }))
    }

    fn bump_for_move(&mut self, name: &str) {
        let Some(ticket) = self.bump(name) else { return };
        if let Some(Operator::Move(m)) = &mut self.feeds.get_mut(name).and_then(|f| f.op.as_mut()) {
            m.stage = MoveStage::Bumping(ticket);
        }
    }

    fn bump_for_stop(&mut self, name: &str) {
        let Some(ticket) = self.bump(name) else { return };
        if let Some(Operator::Stop(s)) = &mut self.feeds.get_mut(name).and_then(|f| f.op.as_mut()) {
            s.stage = StopStage::Bumping(Some(ticket));
        }
    }

    fn add_message(&self, feed: &Feed, epoch: Epoch) -> ToManager {
        ToManager::AddMaintainer(AddMaintainer {
            changefeed: feed.stored.id.clone(),
            config: feed.stored.config.clone(),
            checkpoint_ts: feed.checkpoint.max(1),
            is_new: feed.is_new,
            keyspace_id: 0,
            epoch,
        })
    }

    fn remove_message(feed: &Feed, epoch: Epoch, cascade: bool, removed: bool) -> ToManager {
        ToManager::RemoveMaintainer(RemoveMaintainer {
            changefeed: feed.stored.id.clone(),
            cascade,
            removed,
            keyspace_id: 0,
            epoch,
        })
    }

    /// Sends the operator's request if it is due (`force`: now).
    fn drive(&mut self, name: &str, force: bool) {
        let (now, resend) = (self.now, self.config.resend_ms);
        let due = |sent: u64| force || sent == 0 || now >= sent + resend;
        let me = self.me.clone();
        let Some(feed) = self.feeds.get(name) else { return };
        let send = match &feed.op {
            Some(Operator::Add(Add { dest, stage: AddStage::Adding { epoch, sent_ms } }))
                if due(*sent_ms) =>
            {
                Some((dest.clone(), self.add_message(feed, *epoch)))
            }
            Some(Operator::Move(m)) => match m.stage {
                MoveStage::RemoveOrigin { sent_ms } if due(sent_ms) => {
                    Some((m.origin.clone(), Self::remove_message(feed, m.origin_epoch, false, false)))
                }
                MoveStage::AddTarget { epoch, sent_ms } if due(sent_ms) => {
                    Some((m.target.clone(), self.add_message(feed, epoch)))
                }
                _ => None,
            },
            Some(Operator::Stop(s)) => match s.stage {
                StopStage::Stopping { sent_ms } if due(sent_ms) => {
                    Some((s.node.clone().unwrap_or(me), Self::remove_message(feed, s.epoch, true, s.removed)))
                }
                _ => None,
            },
            _ => None,
        };
        let Some((to, message)) = send else { return };
        if let Some(sent_ms) =
            self.feeds.get_mut(name).and_then(|f| f.op.as_mut()).and_then(Operator::sent_ms)
        {
            *sent_ms = now.max(1); // 0 means "never sent"
        }
        self.send(to, message);
    }

    /// Starts a stop whose lifecycle change is stored: a cascade remove at a new epoch, to the
    /// node of the maintainer known to run (or to be added at an epoch already sent), otherwise
    /// to the coordinator's own node, whose manager then closes what any earlier maintainer left.
    fn start_stop(&mut self, name: &str, removed: bool) {
        let Some(feed) = self.feeds.get_mut(name) else { return };
        if let Some(Operator::Stop(s)) = &feed.op {
            if s.removed || !removed {
                return; // a stop of the same or stronger kind is on
            }
        }
        let running = match (&feed.op, &feed.placement) {
            (Some(Operator::Add(Add { dest, stage: AddStage::Adding { epoch, .. } })), _) => {
                Some((dest.clone(), *epoch))
            }
            (Some(Operator::Move(m)), _) => match m.stage {
                MoveStage::RemoveOrigin { .. } => Some((m.origin.clone(), m.origin_epoch)),
                MoveStage::AddTarget { epoch, .. } => Some((m.target.clone(), epoch)),
                // The origin stopped its maintainer but not its dispatchers.
                MoveStage::Bumping(_) => None,
            },
            (Some(Operator::Stop(s)), _) => match s.stage {
                StopStage::Stopping { .. } => {
                    Some((s.node.clone().unwrap_or_else(|| self.me.clone()), s.epoch))
                }
                _ => None,
            },
            (_, Placement::Bound { node, epoch, .. }) => Some((node.clone(), *epoch)),
            _ => None,
        };
        // Always at a new epoch, above every owner the changefeed's dispatcher managers have had:
        // the close takes each of them over (only a bootstrap changes a node's owner) and a
        // maintainer placed half way, or a move's origin, is superseded.
        let (node, epoch) = match running {
            Some((node, epoch)) => (Some(node), epoch),
            None => (None, feed.stored.epoch),
        };
        if self.config.mutation.has(Mutation::StopAtRunningEpoch) {
            let stage = StopStage::Stopping { sent_ms: 0 };
            feed.op = Some(Operator::Stop(Stop { node, epoch, removed, stage }));
            self.drive(name, true);
            return;
        }
        feed.op = Some(Operator::Stop(Stop { node, epoch, removed, stage: StopStage::Bumping(None) }));
        self.bump_for_stop(name);
    }

    /// Everything of the changefeed stopped: store the end of the stop.
    fn finish_stop(&mut self, name: &str) {
        let Some(feed) = self.feeds.get(name) else { return };
        let Some(Operator::Stop(s)) = &feed.op else { return };
        let op = if s.removed {
            MetaOp::Delete { changefeed: feed.stored.id.clone() }
        } else {
            MetaOp::SetLifecycle {
                changefeed: feed.stored.id.clone(),
                state: feed.stored.state,
                progress: Progress::None,
            }
        };
        let pending = Pending::FinishStop { name: name.to_owned(), gid: feed.stored.id.gid() };
        let ticket = self.store(op, pending);
        if let Some(Operator::Stop(s)) = self.feeds.get_mut(name).and_then(|f| f.op.as_mut()) {
            s.stage = StopStage::Finishing(Some(ticket));
        }
    }

    // ---- time ----

    fn tick(&mut self) {
        if let Phase::Bootstrapping { .. } = self.phase {
            self.tick_bootstrap();
            return;
        }
        // Nodes that joined later still need this coordinator's bootstrap before taking commands.
        let unanswered: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, n)| !n.answered && self.now >= n.asked_ms + self.config.resend_ms)
            .map(|(id, _)| id.clone())
            .collect();
        for node in unanswered {
            self.ask_bootstrap(node);
        }
        let now = self.now;
        for (at, stored, request) in std::mem::take(&mut self.creates) {
            if now >= at {
                self.store(
                    MetaOp::Create(stored.clone()),
                    Pending::Create { stored, request, unknown_before: true },
                );
            } else {
                self.creates.push((at, stored, request));
            }
        }
        for (at, pending) in std::mem::take(&mut self.lifecycles) {
            let Pending::Lifecycle { name, gid, state, progress, .. } = &pending else { continue };
            if now < at {
                self.lifecycles.push((at, pending));
                continue;
            }
            let Some(feed) = self.feed_mut(name, *gid) else {
                if let Pending::Lifecycle { request, name, .. } = pending {
                    self.answer(request, Err(RequestError::UnknownChangefeed(name)));
                }
                continue;
            };
            let op = MetaOp::SetLifecycle {
                changefeed: feed.stored.id.clone(),
                state: *state,
                progress: *progress,
            };
            self.store(op, pending);
        }
        let names: Vec<String> = self.feeds.keys().cloned().collect();
        for name in &names {
            self.drive(name, false);
            // Store writes of a stop that failed are retried after their wait.
            let feed = &self.feeds[name];
            let due = now >= feed.retry_at_ms;
            match feed.op {
                Some(Operator::Stop(Stop { stage: StopStage::Finishing(None), .. })) if due => {
                    self.finish_stop(name)
                }
                Some(Operator::Stop(Stop { stage: StopStage::Bumping(None), .. })) if due => {
                    self.bump_for_stop(name)
                }
                _ => {}
            }
        }
        self.forget_silent();
        self.place();
        self.save_checkpoints();
    }

    /// A placed maintainer whose reports stopped (its last one lost, or its node cut off while
    /// its session lives) is placed again after `silent_maintainer_ms`.
    fn forget_silent(&mut self) {
        let (now, limit, retry) = (self.now, self.config.silent_maintainer_ms, self.config.retry_ms);
        for feed in self.feeds.values_mut() {
            let silent = feed.op.is_none()
                && matches!(feed.placement, Placement::Bound { .. })
                && now.saturating_sub(feed.heard_ms) > limit;
            if silent {
                feed.placement = Placement::Absent;
                Self::failed(feed, now, retry);
            }
        }
    }

    /// The placement scheduler: absent changefeeds that should run go to the schedulable node
    /// with the fewest maintainers, bounded by the operator limit.
    fn place(&mut self) {
        let mut in_flight = self.feeds.values().filter(|f| f.op.is_some()).count();
        let mut load: BTreeMap<NodeId, usize> =
            self.nodes.keys().filter(|n| self.schedulable(n)).map(|n| (n.clone(), 0)).collect();
        if load.is_empty() {
            return;
        }
        for feed in self.feeds.values() {
            if let Some(count) = feed.load_on().and_then(|n| load.get_mut(n)) {
                *count += 1;
            }
        }
        let wanting: Vec<String> =
            self.feeds.iter().filter(|(_, f)| f.wants_placement(self.now)).map(|(n, _)| n.clone()).collect();
        for name in wanting {
            if in_flight >= self.config.max_operators {
                break;
            }
            let Some((dest, _)) = load.iter().min_by_key(|(node, count)| (**count, (*node).clone())) else {
                break;
            };
            let dest = dest.clone();
            if let Some(count) = load.get_mut(&dest) {
                *count += 1;
            }
            in_flight += 1;
            // K3: the epoch is stored before the add carries it.
            let Some(ticket) = self.bump(&name) else { continue };
            if let Some(feed) = self.feeds.get_mut(&name) {
                feed.op = Some(Operator::Add(Add { dest, stage: AddStage::Bumping(ticket) }));
            }
        }
    }

    fn save_checkpoints(&mut self) {
        if self.checkpoint_write || (self.now < self.next_checkpoint_ms && !self.save_soon) {
            return;
        }
        self.save_soon = false;
        self.next_checkpoint_ms = self.now + self.config.checkpoint_interval_ms;
        let due: Vec<(String, ChangefeedId, Ts)> = self
            .feeds
            .iter()
            .filter(|(_, f)| f.checkpoint > f.stored.checkpoint_ts && f.stored.progress != Progress::Removing)
            .map(|(name, f)| (name.clone(), f.stored.id.clone(), f.checkpoint))
            .collect();
        for chunk in due.chunks(self.config.checkpoints_per_write.max(1)) {
            let op = MetaOp::SaveCheckpoints(chunk.iter().map(|(_, id, ts)| (id.clone(), *ts)).collect());
            let saved = chunk.iter().map(|(n, id, ts)| (n.clone(), id.gid(), *ts)).collect();
            self.store(op, Pending::Checkpoints(saved));
            self.checkpoint_write = true;
        }
    }

    // ---- store replies ----

    fn meta(&mut self, reply: MetaReply) {
        let Some(pending) = self.pending.remove(&reply.ticket) else { return };
        if reply.outcome == Err(MetaError::Deposed) {
            // K1: the store refused because the election key is not ours any more.
            self.deposed = true;
            self.out.clear();
            self.out.push(Output::Deposed);
            return;
        }
        let now = self.now;
        let retry = self.config.retry_ms;
        match pending {
            Pending::Load => {
                if let Phase::Bootstrapping { load, .. } = &mut self.phase {
                    *load = match reply.outcome {
                        Ok(MetaValue::Loaded(feeds)) => Load::Loaded(feeds),
                        // No panic on a failed load (the reference's H11): ask again.
                        _ => Load::At(now + retry),
                    };
                }
            }
            Pending::Create { stored, request, unknown_before } => match reply.outcome {
                Ok(_) => self.created(stored, request),
                // Every create goes through this coordinator and the memory check passed, so a
                // conflict after an unanswered attempt is that attempt having landed.
                Err(MetaError::Conflict) if unknown_before => self.created(stored, request),
                Err(MetaError::Conflict) => {
                    let name = stored.id.name.clone();
                    self.answer(request, Err(RequestError::Exists(name)));
                }
                // Unknown: asked again after a wait, the request unanswered until then.
                Err(_) => self.creates.push((now + retry, stored, request)),
            },
            Pending::Bump { name, gid } => self.bumped(&name, gid, reply.ticket, reply.outcome),
            Pending::Lifecycle { name, gid, request, then, state, progress } => {
                if self.feed_mut(&name, gid).is_none() {
                    return;
                }
                if reply.outcome.is_err() && self.config.mutation.has(Mutation::LifecycleUnknownForgotten) {
                    if let Some(feed) = self.feed_mut(&name, gid) {
                        feed.lifecycle_in_flight = false;
                    }
                    self.answer(request, Err(RequestError::Unavailable));
                    return;
                }
                if reply.outcome.is_err() {
                    // Whether it landed is unknown, and memory must not disagree with the store
                    // (a stored stop that memory never started would stay unrun): the write is
                    // idempotent, so it goes again after a wait, the request unanswered until a
                    // definite answer.
                    let again = Pending::Lifecycle { name, gid, request, then, state, progress };
                    self.lifecycles.push((now + retry, again));
                    return;
                }
                let Some(feed) = self.feed_mut(&name, gid) else { return };
                feed.lifecycle_in_flight = false;
                feed.stored.state = state;
                feed.stored.progress = progress;
                if then == Then::Resume {
                    feed.retry_at_ms = now;
                    feed.failures = 0;
                }
                self.answer(request, Ok(()));
                match then {
                    Then::Pause => self.start_stop(&name, false),
                    Then::Remove => self.start_stop(&name, true),
                    Then::Resume => {}
                }
            }
            Pending::FinishStop { name, gid } => {
                let Some(feed) = self.feed_mut(&name, gid) else { return };
                let Some(Operator::Stop(s)) = &mut feed.op else { return };
                if s.stage != StopStage::Finishing(Some(reply.ticket)) {
                    return; // a later stop replaced the one this write finished
                }
                let removed = s.removed;
                // A delete that meets no keys is a retry of one that landed.
                let done = reply.outcome.is_ok() || (removed && reply.outcome == Err(MetaError::Conflict));
                if !done {
                    s.stage = StopStage::Finishing(None);
                    feed.retry_at_ms = now + retry;
                    return;
                }
                if removed {
                    self.feeds.remove(&name);
                } else {
                    feed.op = None;
                    feed.stored.progress = Progress::None;
                }
            }
            Pending::Checkpoints(saved) => {
                self.checkpoint_write = false;
                if reply.outcome.is_ok() {
                    for (name, gid, ts) in saved {
                        if let Some(feed) = self.feed_mut(&name, gid) {
                            feed.stored.checkpoint_ts = feed.stored.checkpoint_ts.max(ts);
                        }
                    }
                }
            }
        }
    }

    fn created(&mut self, stored: StoredChangefeed, request: u64) {
        let name = stored.id.name.clone();
        self.feeds.insert(name, Feed::new(stored, true));
        self.answer(request, Ok(()));
    }

    fn bumped(&mut self, name: &str, gid: u128, ticket: Ticket, outcome: Result<MetaValue, MetaError>) {
        let now = self.now;
        let retry = self.config.retry_ms;
        let mine =
            self.feeds.get(name).is_some_and(|f| f.op.as_ref().and_then(Operator::ticket) == Some(ticket));
        // K14 again at the moment of sending: the destination may have gone meanwhile.
        let dest_ok = match self.feeds.get(name).and_then(|f| f.op.as_ref()) {
            Some(Operator::Add(a)) => self.schedulable(&a.dest),
            Some(Operator::Move(m)) => self.schedulable(&m.target),
            _ => true,
        };
        let Some(feed) = self.feed_mut(name, gid) else { return };
        let epoch = match outcome {
            Ok(MetaValue::Bumped(epoch)) => Some(epoch),
            _ => None,
        };
        if let Some(epoch) = epoch {
            feed.stored.epoch = feed.stored.epoch.max(epoch);
        }
        if !mine {
            return; // the operator was cancelled meanwhile; the epoch was never sent
        }
        match (&mut feed.op, epoch) {
            (Some(Operator::Stop(s)), Some(epoch)) => {
                s.epoch = epoch;
                s.stage = StopStage::Stopping { sent_ms: 0 };
            }
            (Some(Operator::Stop(s)), None) => {
                s.stage = StopStage::Bumping(None); // asked again after the wait
                feed.retry_at_ms = now + retry;
                return;
            }
            (Some(Operator::Add(a)), Some(epoch)) if dest_ok => {
                a.stage = AddStage::Adding { epoch, sent_ms: 0 }
            }
            (Some(Operator::Move(m)), Some(epoch)) if dest_ok => {
                m.stage = MoveStage::AddTarget { epoch, sent_ms: 0 }
            }
            _ => {
                // Not bumped (or unknown), or nowhere to go now: give the placement up (its epoch
                // was never sent) and try again later.
                feed.op = None;
                feed.placement = Placement::Absent;
                feed.retry_at_ms = now + retry;
                return;
            }
        }
        self.drive(name, true);
    }

    // ---- user requests ----

    fn request(&mut self, id: u64, request: Request) {
        if !self.initialized() {
            self.answer(id, Err(RequestError::NotReady));
            return;
        }
        let result = match request {
            Request::Create { id: cf, config, start_ts } => self.create(id, cf, config, start_ts),
            Request::Pause { name } => self.lifecycle(id, name, Then::Pause),
            Request::Resume { name } => self.lifecycle(id, name, Then::Resume),
            Request::Remove { name } => self.lifecycle(id, name, Then::Remove),
            Request::MoveMaintainer { name, to } => self.move_maintainer(name, to).map(|()| true),
        };
        match result {
            Ok(true) => self.answer(id, Ok(())),
            Ok(false) => {} // answered when the store answers
            Err(e) => self.answer(id, Err(e)),
        }
    }

    fn create(
        &mut self,
        request: u64,
        id: ChangefeedId,
        config: Vec<u8>,
        start_ts: Ts,
    ) -> Result<bool, RequestError> {
        let taken = self.feeds.values().any(|f| f.stored.id.gid() == id.gid() || f.stored.id.name == id.name)
            || self.pending.values().any(|p| matches!(p, Pending::Create { stored, .. } if stored.id.name == id.name || stored.id.gid() == id.gid()))
            || self.creates.iter().any(|(_, stored, _)| stored.id.name == id.name || stored.id.gid() == id.gid());
        if taken || id.name.is_empty() {
            return Err(RequestError::Exists(id.name));
        }
        let stored = StoredChangefeed {
            id,
            config,
            state: FeedState::Normal,
            epoch: Epoch(0),
            checkpoint_ts: start_ts.max(1),
            progress: Progress::None,
        };
        self.store(
            MetaOp::Create(stored.clone()),
            Pending::Create { stored, request, unknown_before: false },
        );
        Ok(false)
    }

    fn lifecycle(&mut self, request: u64, name: String, then: Then) -> Result<bool, RequestError> {
        let feed = self.feeds.get_mut(&name).ok_or_else(|| RequestError::UnknownChangefeed(name.clone()))?;
        if feed.lifecycle_in_flight {
            return Err(RequestError::Busy(name));
        }
        let (state, progress) = match then {
            Then::Pause if feed.stored.state.runs() && feed.stored.progress == Progress::None => {
                (FeedState::Stopped, Progress::Stopping)
            }
            Then::Resume if !feed.stored.state.runs() && feed.stored.progress == Progress::None => {
                (FeedState::Normal, Progress::None)
            }
            Then::Remove if feed.stored.progress != Progress::Removing => {
                (feed.stored.state, Progress::Removing)
            }
            _ => return Err(RequestError::State { name, state: feed.state_name() }),
        };
        if then == Then::Resume && feed.op.is_some() {
            return Err(RequestError::Busy(name));
        }
        feed.lifecycle_in_flight = true;
        // K13: the stop's lifecycle is stored before any stop is sent.
        let op = MetaOp::SetLifecycle { changefeed: feed.stored.id.clone(), state, progress };
        let gid = feed.stored.id.gid();
        self.store(op, Pending::Lifecycle { name, gid, request, then, state, progress });
        Ok(false)
    }

    fn move_maintainer(&mut self, name: String, to: NodeId) -> Result<(), RequestError> {
        let schedulable = self.schedulable(&to);
        let feed = self.feeds.get_mut(&name).ok_or_else(|| RequestError::UnknownChangefeed(name.clone()))?;
        if feed.op.is_some() || feed.lifecycle_in_flight {
            return Err(RequestError::Busy(name));
        }
        let Placement::Bound { node, epoch, working: true } = &feed.placement else {
            return Err(RequestError::State { name, state: "not running" });
        };
        if !schedulable || node == &to {
            return Err(RequestError::Node(to));
        }
        feed.op = Some(Operator::Move(Move {
            origin: node.clone(),
            origin_epoch: *epoch,
            target: to,
            stage: MoveStage::RemoveOrigin { sent_ms: 0 },
        }));
        self.drive(&name, true);
        Ok(())
    }

    // ---- bootstrap ----

    fn tick_bootstrap(&mut self) {
        let now = self.now;
        let Phase::Bootstrapping { started_ms, load, .. } = &mut self.phase else { return };
        let started_ms = *started_ms;
        if let Load::At(at) = *load {
            if now >= at {
                let ticket = Ticket(self.next_ticket);
                *load = Load::Asked;
                self.next_ticket += 1;
                self.pending.insert(ticket, Pending::Load);
                self.out.push(Output::Meta(MetaRequest { ticket, op: MetaOp::LoadAll }));
            }
        }
        let give_up = now >= started_ms + self.config.bootstrap_timeout_ms;
        let mut ask = Vec::new();
        for (id, node) in &mut self.nodes {
            if node.answered || node.given_up {
                continue;
            }
            if give_up {
                node.given_up = true;
            } else if now >= node.asked_ms + self.config.resend_ms {
                ask.push(id.clone());
            }
        }
        for node in ask {
            self.ask_bootstrap(node);
        }
    }

    fn try_finish_bootstrap(&mut self) {
        let Phase::Bootstrapping { load: Load::Loaded(_), .. } = &self.phase else { return };
        if self.nodes.is_empty() || self.nodes.values().any(|n| !n.answered && !n.given_up) {
            return;
        }
        let Phase::Bootstrapping { load: Load::Loaded(stored), reports, .. } =
            std::mem::replace(&mut self.phase, Phase::Running)
        else {
            unreachable!("checked above")
        };
        self.adopt(stored, reports);
        self.out.push(Output::Initialized);
    }

    /// K10: adopt at most one reported maintainer per changefeed (the one at the stored epoch),
    /// stop the others with their own epochs, resume stored stops, remove maintainers of
    /// changefeeds the store does not have.
    fn adopt(&mut self, stored: Vec<StoredChangefeed>, reports: BTreeMap<NodeId, Vec<MaintainerStatus>>) {
        for s in stored {
            self.feeds.insert(s.id.name.clone(), Feed::new(s, false));
        }
        let mut at_epoch: BTreeMap<String, Vec<(NodeId, MaintainerStatus)>> = BTreeMap::new();
        for (node, statuses) in reports {
            for status in statuses {
                let name = status.changefeed.name.clone();
                // Only a working, bootstrapped maintainer at the stored epoch is a placement to
                // adopt (a stopped one, a close in progress or one still bootstrapping is not).
                let matches = status.working()
                    && status.bootstrap_done
                    && self.feeds.get(&name).is_some_and(|f| {
                        f.stored.id.gid() == status.changefeed.gid() && f.stored.epoch == status.epoch
                    });
                if matches {
                    at_epoch.entry(name).or_default().push((node.clone(), status));
                } else {
                    // Stopped as a stray, or removed everywhere if the store lacks its changefeed.
                    self.stray_at_bootstrap(&node, status);
                }
            }
        }
        for (name, mut found) in at_epoch {
            let feed = self.feeds.get_mut(&name).expect("matched above");
            if found.len() == 1 {
                let (node, status) = found.pop().expect("one");
                feed.checkpoint = feed.checkpoint.max(status.checkpoint_ts);
                feed.placement = Placement::Bound { node, epoch: status.epoch, working: true };
                feed.heard_ms = self.now;
                feed.fresh = true;
            } else {
                // One epoch on two nodes breaks K4; the reference panics here (its H11). Stop
                // them all; the next placement bumps a new epoch.
                for (node, status) in found {
                    let remove = Self::remove_message(feed, status.epoch, false, false);
                    self.out.push(Output::Send { to: node, message: remove });
                }
            }
        }
        let stops: Vec<(String, bool)> = self
            .feeds
            .iter()
            .filter(|(_, f)| must_stop(f.stored.state, f.stored.progress))
            .map(|(name, f)| (name.clone(), f.stored.progress == Progress::Removing))
            .collect();
        for (name, removed) in stops {
            let feed = &self.feeds[&name];
            let idle = feed.stored.progress == Progress::None && feed.placement == Placement::Absent;
            if !idle {
                self.start_stop(&name, removed);
            }
        }
    }

    /// A reported maintainer not adopted. Of a changefeed the store lacks: removed everywhere.
    /// Of one that must stop: stopped with cascade, closing what it runs. Otherwise stopped alone.
    fn stray_at_bootstrap(&mut self, node: &NodeId, status: MaintainerStatus) {
        if !status.working() {
            return;
        }
        let feed =
            self.feeds.get(&status.changefeed.name).filter(|f| f.stored.id.gid() == status.changefeed.gid());
        let (cascade, removed) = match feed {
            None => (true, true),
            Some(f) => {
                (must_stop(f.stored.state, f.stored.progress), f.stored.progress == Progress::Removing)
            }
        };
        let remove = RemoveMaintainer {
            changefeed: status.changefeed,
            cascade,
            removed,
            keyspace_id: 0,
            epoch: status.epoch,
        };
        self.send(node.clone(), ToManager::RemoveMaintainer(remove));
    }
}
