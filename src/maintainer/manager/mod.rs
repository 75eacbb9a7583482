//! The maintainer manager: one per node. It takes the coordinator's commands, hosts the
//! maintainers placed on its node, routes the nodes' answers to them, and reports every
//! maintainer and the node itself to the coordinator.
//!
//! Sans-IO like the cores it hosts: [`MaintainerManager::step`] takes the time and one
//! [`ManagerEvent`] and returns [`ManagerOutput`]s. Its rules, against cluster.md §6.4:
//!
//! | rule | |
//! |---|---|
//! | K2 | a coordinator bootstrap is answered only at a version ≥ the highest seen; commands come only from the coordinator answered last, and stop at once when the shell reports a newer election (the reference takes them until the newer bootstrap arrives, its H6) |
//! | K6, K7 | an add is admitted only above the changefeed's highest epoch ever seen here, and only once the maintainer before it has fully stopped |
//! | K9 | liveness moves ALIVE → DRAINING → STOPPING one step at a time, for this node lifetime only; STOPPING takes no add |
//! | K8 | once fenced (the shell lost its lease) every maintainer stops at once and nothing more is sent |
//! | cascade | a cascade remove takes every member's dispatcher manager of the changefeed over at its epoch and closes it, resent until each answers, then reports stopped; for a changefeed not hosted here it runs alone (a removal-only maintainer) |

mod closer;

use std::collections::{BTreeMap, BTreeSet};

use self::closer::Closer;
use super::{Event, Lifecycle, Maintainer, Output};
use crate::ids::{ChangefeedId, Epoch, Mode, NodeId, Ts};
use crate::messages::{
    AddMaintainer, ComponentState, CoordinatorBootstrapResponse, CoordinatorVersion, DrainTarget,
    MaintainerHeartbeat, MaintainerStatus, NodeEpoch, NodeHeartbeat, NodeLiveness, NodeLivenessApplied,
    RemoveMaintainer, RunningError, ToCoordinator, ToMaintainer, ToManager, ToNode,
};

/// Builds the maintainer an admitted add asks for. The embedder decides what a changefeed's
/// `config` means (its tables, schema source and options).
pub trait MaintainerFactory {
    /// A maintainer for `add` on `node`, given the current members.
    fn build(&mut self, add: &AddMaintainer, node: &NodeId, members: &[NodeId])
        -> Result<Maintainer, String>;
}

/// The manager's timers.
#[derive(Clone, Debug)]
pub struct ManagerConfig {
    /// A maintainer's status is reported at least this often (reference: 1 s).
    pub status_ms: u64,
    /// The node heartbeat's period (reference: 5 s).
    pub node_heartbeat_ms: u64,
    /// Resend period of unanswered close requests.
    pub resend_ms: u64,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig { status_ms: 1_000, node_heartbeat_ms: 5_000, resend_ms: 500 }
    }
}

/// What happens to the manager.
#[derive(Debug)]
pub enum ManagerEvent {
    /// Time passed (the reference ticks every 200 ms).
    Tick,
    /// The live members with their registrations, each time they change. A node registered
    /// again under the same id (it restarted) has left and joined: its old process ran nothing
    /// that survives.
    Members(Vec<(NodeId, u64)>),
    /// The shell saw an election in etcd: commands from any other coordinator stop now.
    Elected {
        /// The winner's node.
        node: NodeId,
        /// Its version.
        version: CoordinatorVersion,
    },
    /// A message from the coordinator.
    FromCoordinator {
        /// The sending node.
        from: NodeId,
        /// The message.
        message: ToManager,
    },
    /// A node's message for a hosted maintainer.
    FromNode {
        /// The sending node.
        from: NodeId,
        /// The message.
        message: ToMaintainer,
    },
    /// The shell could not prove its lease valid: stop everything, at once and for good.
    Fenced,
}

/// What the shell must do after a step.
#[derive(Clone, PartialEq, Debug)]
pub enum ManagerOutput {
    /// Deliver a message to the coordinator.
    ToCoordinator {
        /// The coordinator's node.
        to: NodeId,
        /// The message.
        message: ToCoordinator,
    },
    /// Deliver a maintainer's (or a close's) message to a node.
    ToNode {
        /// The node.
        to: NodeId,
        /// The message.
        message: ToNode,
    },
    /// A hosted maintainer's notice (checkpoint advanced, operator finished, …), for logs and
    /// metrics.
    Notice {
        /// The changefeed.
        changefeed: ChangefeedId,
        /// The maintainer's epoch.
        epoch: Epoch,
        /// The notice.
        output: Output,
    },
}

/// Where a hosted changefeed is.
#[derive(Debug)]
enum Hosting {
    /// Its maintainer runs.
    Running(Box<Maintainer>),
    /// Closing its dispatchers everywhere (the maintainer, if any, is inert).
    Closing(Closer),
    /// Stopped; reported once more, then forgotten (its epoch stays in the high-water mark).
    Stopped,
}

#[derive(Debug)]
struct Hosted {
    changefeed: ChangefeedId,
    epoch: Epoch,
    hosting: Hosting,
    checkpoint: Ts,
    errors: Vec<RunningError>,
    reported_ms: Option<u64>,
    /// Reports sent since it stopped: a stopped one is forgotten after [`STOPPED_REPORTS`].
    stopped_reports: u32,
    changed: bool,
    /// Bootstrapped, and its first checkpoint not reported yet: that one goes out at once, not
    /// at the next period, so a recovered changefeed's progress reaches the coordinator sooner.
    fresh: bool,
}

/// How many periodic reports a stopped maintainer gets before it is forgotten: the coordinator
/// acts on one, and a lost report must not leave it believing the maintainer runs.
const STOPPED_REPORTS: u32 = 5;

impl Hosted {
    /// A new entry, to be reported at the next tick.
    fn new(changefeed: ChangefeedId, epoch: Epoch, hosting: Hosting, checkpoint: Ts) -> Self {
        Hosted {
            changefeed,
            epoch,
            hosting,
            checkpoint,
            errors: Vec::new(),
            reported_ms: None,
            stopped_reports: 0,
            changed: true,
            fresh: false,
        }
    }

    fn status(&self) -> MaintainerStatus {
        // A close in progress is reported working (its stop is not done) but never bootstrapped,
        // so no add or adoption takes it for a running maintainer.
        let (state, bootstrap_done) = match &self.hosting {
            Hosting::Running(m) => (ComponentState::Working, m.lifecycle() == Lifecycle::Running),
            Hosting::Closing(_) => (ComponentState::Working, false),
            Hosting::Stopped => (ComponentState::Stopped, false),
        };
        let feed_state = match &self.hosting {
            Hosting::Closing(_) => "closing",
            _ if !self.errors.is_empty() => "warning",
            _ => "normal",
        };
        MaintainerStatus {
            changefeed: self.changefeed.clone(),
            feed_state: feed_state.into(),
            state,
            checkpoint_ts: self.checkpoint,
            errors: self.errors.clone(),
            bootstrap_done,
            last_synced_ts: 0,
            drain: None,
            epoch: self.epoch,
        }
    }
}

/// The maintainer manager of one node.
pub struct MaintainerManager {
    me: NodeId,
    node_epoch: NodeEpoch,
    config: ManagerConfig,
    factory: Box<dyn MaintainerFactory>,
    liveness: NodeLiveness,
    members: BTreeSet<NodeId>,
    incarnations: BTreeMap<NodeId, u64>,
    /// The highest coordinator version seen (by bootstrap or election).
    highest: Option<CoordinatorVersion>,
    /// The coordinator whose bootstrap was answered last, while it is the highest seen.
    coordinator: Option<NodeId>,
    drain_target: Option<DrainTarget>,
    hosted: BTreeMap<u128, Hosted>,
    /// Per changefeed, the highest epoch ever admitted or removed here (K6).
    high_water: BTreeMap<u128, Epoch>,
    node_heartbeat_ms: Option<u64>,
    fenced: bool,
    now: u64,
    out: Vec<ManagerOutput>,
}

impl std::fmt::Debug for MaintainerManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaintainerManager")
            .field("me", &self.me)
            .field("liveness", &self.liveness)
            .field("coordinator", &self.coordinator)
            .field("hosted", &self.hosted.len())
            .finish_non_exhaustive()
    }
}

impl MaintainerManager {
    /// The manager of node `me` in its lifetime `node_epoch`.
    pub fn new(
        me: NodeId,
        node_epoch: NodeEpoch,
        config: ManagerConfig,
        factory: Box<dyn MaintainerFactory>,
    ) -> Self {
        MaintainerManager {
            me,
            node_epoch,
            config,
            factory,
            liveness: NodeLiveness::Alive,
            members: BTreeSet::new(),
            incarnations: BTreeMap::new(),
            highest: None,
            coordinator: None,
            drain_target: None,
            hosted: BTreeMap::new(),
            high_water: BTreeMap::new(),
            node_heartbeat_ms: None,
            fenced: false,
            now: 0,
            out: Vec::new(),
        }
    }

    /// Takes one event at time `now_ms` and returns what the shell must do.
    pub fn step(&mut self, now_ms: u64, event: ManagerEvent) -> Vec<ManagerOutput> {
        if self.fenced {
            return Vec::new();
        }
        self.now = self.now.max(now_ms);
        match event {
            ManagerEvent::Tick => self.tick(),
            ManagerEvent::Members(members) => self.set_members(members),
            ManagerEvent::Elected { version, .. } => {
                if self.highest.is_none_or(|h| version > h) {
                    self.highest = Some(version);
                    self.coordinator = None; // until it bootstraps us
                }
            }
            ManagerEvent::FromCoordinator { from, message } => self.on_coordinator(from, message),
            ManagerEvent::FromNode { from, message } => self.on_node(from, message),
            ManagerEvent::Fenced => self.fence(),
        }
        std::mem::take(&mut self.out)
    }

    /// A user's span request (move, split or merge) for the maintainer of `changefeed` running
    /// here, stepped at once; any other event, a changefeed not running here, or a fenced
    /// manager is refused with nothing changed. A refusal by the maintainer itself comes back as
    /// an [`Output::Refused`] notice among the outputs.
    pub fn operate(
        &mut self,
        now_ms: u64,
        changefeed: &ChangefeedId,
        event: Event,
    ) -> Result<Vec<ManagerOutput>, String> {
        if self.fenced {
            return Err("this node is fenced".into());
        }
        if !matches!(event, Event::MoveSpan { .. } | Event::SplitSpan { .. } | Event::MergeSpans { .. }) {
            return Err("only span requests are taken from users".into());
        }
        if self.maintainer(changefeed).is_none() {
            return Err(format!("no maintainer of {} runs here", changefeed.name));
        }
        self.now = self.now.max(now_ms);
        self.step_maintainer(changefeed.gid(), event);
        Ok(std::mem::take(&mut self.out))
    }

    /// The liveness this node applies.
    pub fn liveness(&self) -> NodeLiveness {
        self.liveness
    }

    /// The coordinator this node takes commands from.
    pub fn coordinator(&self) -> Option<&NodeId> {
        self.coordinator.as_ref()
    }

    /// Every hosted changefeed's status.
    pub fn statuses(&self) -> Vec<MaintainerStatus> {
        self.hosted.values().map(Hosted::status).collect()
    }

    /// The maintainer running for a changefeed, if any.
    pub fn maintainer(&self, changefeed: &ChangefeedId) -> Option<&Maintainer> {
        match &self.hosted.get(&changefeed.gid())?.hosting {
            Hosting::Running(m) => Some(m),
            _ => None,
        }
    }

    /// Whether the node fenced itself.
    pub fn fenced(&self) -> bool {
        self.fenced
    }

    // ---- coordinator ----

    fn on_coordinator(&mut self, from: NodeId, message: ToManager) {
        if let ToManager::Bootstrap(request) = &message {
            if self.highest.is_some_and(|h| request.version < h) {
                return; // K2: an older coordinator
            }
            self.highest = Some(request.version);
            self.coordinator = Some(from.clone());
            let response = CoordinatorBootstrapResponse {
                statuses: self.statuses(),
                drain_protocol_version: 1,
                drain_target: self.drain_target.clone(),
            };
            self.out
                .push(ManagerOutput::ToCoordinator { to: from, message: ToCoordinator::Bootstrap(response) });
            self.node_heartbeat(true);
            return;
        }
        if self.coordinator.as_ref() != Some(&from) {
            return; // not the coordinator this node answered (or none yet): a documented drop
        }
        match message {
            ToManager::Bootstrap(_) => {}
            ToManager::AddMaintainer(add) => self.add(add),
            ToManager::RemoveMaintainer(remove) => self.remove(remove),
            ToManager::SetLiveness(request) => {
                if request.node_epoch == self.node_epoch && self.liveness.steps_to(request.target) {
                    self.liveness = request.target;
                }
                let applied = NodeLivenessApplied { applied: self.liveness, node_epoch: self.node_epoch };
                self.out.push(ManagerOutput::ToCoordinator {
                    to: from,
                    message: ToCoordinator::Liveness(applied),
                });
                self.node_heartbeat(true);
            }
            ToManager::SetDrainTarget(request) => {
                self.drain_target = request.target;
                self.node_heartbeat(true);
            }
            // The checkpoint the coordinator stored: our maintainers keep their own; nothing to do.
            ToManager::Checkpoint(_) => {}
        }
    }

    /// K6, K7, K9: admit an add only above every epoch seen for the changefeed, once the one
    /// before it stopped, and not while stopping.
    fn add(&mut self, add: AddMaintainer) {
        let gid = add.changefeed.gid();
        if !self.liveness.accepts_maintainers() {
            self.refuse_add(&add);
            return;
        }
        if let Some(h) = self.hosted.get_mut(&gid) {
            if h.epoch == add.epoch {
                h.changed = true; // a resend: report again so the coordinator sees it
                return;
            }
            if !matches!(h.hosting, Hosting::Stopped) {
                return; // the previous one has not stopped yet; the coordinator resends
            }
        }
        if self.high_water.get(&gid).is_some_and(|h| add.epoch <= *h) {
            self.refuse_add(&add); // an older placement's add, delayed
            return;
        }
        self.high_water.insert(gid, add.epoch);
        let members: Vec<NodeId> = self.members.iter().cloned().collect();
        let hosting = match self.factory.build(&add, &self.me, &members) {
            Ok(m) => Hosting::Running(Box::new(m)),
            Err(message) => {
                let error = RunningError {
                    time: String::new(),
                    node: self.me.to_string(),
                    code: "build".into(),
                    message,
                };
                let mut stopped = Hosted::new(add.changefeed, add.epoch, Hosting::Stopped, add.checkpoint_ts);
                stopped.errors.push(error);
                self.hosted.insert(gid, stopped);
                return;
            }
        };
        let hosted = Hosted::new(add.changefeed, add.epoch, hosting, add.checkpoint_ts);
        self.hosted.insert(gid, hosted);
        self.step_maintainer(gid, Event::Tick);
    }

    /// Answers a refused add with a stopped status at its epoch, so that the coordinator does
    /// not resend it forever (a delayed one is not expected there and changes nothing).
    fn refuse_add(&mut self, add: &AddMaintainer) {
        let status =
            Hosted::new(add.changefeed.clone(), add.epoch, Hosting::Stopped, add.checkpoint_ts).status();
        self.report(vec![status]);
    }

    fn remove(&mut self, remove: RemoveMaintainer) {
        let gid = remove.changefeed.gid();
        // K6: a cascade remove at or below the highest epoch seen here, for a changefeed not
        // hosted, is a resend or a delayed copy of a close already run: answered, not rerun.
        let stale =
            self.high_water.get(&gid).is_some_and(|h| remove.epoch <= *h) && !self.hosted.contains_key(&gid);
        let high = self.high_water.entry(gid).or_insert(remove.epoch);
        *high = (*high).max(remove.epoch);
        let now = self.now;
        let me = self.me.clone();
        let Some(h) = self.hosted.get_mut(&gid) else {
            if remove.cascade && !stale {
                // Not hosted here: a removal-only maintainer closes the dispatchers everywhere.
                let closer = Closer::new(
                    remove.changefeed.clone(),
                    remove.epoch,
                    remove.removed,
                    (me, None, None),
                    now,
                );
                let hosted = Hosted::new(remove.changefeed, remove.epoch, Hosting::Closing(closer), 0);
                self.hosted.insert(gid, hosted);
                self.drive_closers();
            } else {
                // Nothing runs here for it: say so, at the epoch asked about.
                let status = Hosted::new(remove.changefeed, remove.epoch, Hosting::Stopped, 0).status();
                self.report(vec![status]);
            }
            return;
        };
        let exact = h.epoch == remove.epoch;
        let newer = remove.epoch > h.epoch;
        match (&mut h.hosting, remove.cascade) {
            (Hosting::Running(m), false) if exact => {
                let outputs = m.step(self.now, Event::Stop);
                h.hosting = Hosting::Stopped;
                h.changed = true;
                self.absorb(gid, outputs);
            }
            (Hosting::Running(m), true) if exact || newer => {
                // At its own epoch the close takes this node over with the maintainer's triggers;
                // at a newer one the node closes them.
                let triggers = |mode| m.view(mode).map(|v| v.trigger).filter(|_| exact);
                let own = (me, triggers(Mode::Default), triggers(Mode::Redo));
                let outputs = m.step(now, Event::Stop);
                h.epoch = remove.epoch;
                h.hosting = Hosting::Closing(Closer::new(
                    h.changefeed.clone(),
                    remove.epoch,
                    remove.removed,
                    own,
                    now,
                ));
                h.changed = true;
                self.absorb(gid, outputs);
                self.drive_closers();
            }
            (Hosting::Stopped | Hosting::Closing(_), true) if newer => {
                h.epoch = remove.epoch;
                let closer =
                    Closer::new(h.changefeed.clone(), remove.epoch, remove.removed, (me, None, None), now);
                h.hosting = Hosting::Closing(closer);
                h.changed = true;
                self.drive_closers();
            }
            (Hosting::Stopped | Hosting::Closing(_), _) if exact => h.changed = true,
            _ => {} // another epoch's remove: not ours to act on
        }
    }

    fn node_heartbeat(&mut self, force: bool) {
        let Some(to) = self.coordinator.clone() else { return };
        let due = self.node_heartbeat_ms.is_none_or(|t| self.now >= t + self.config.node_heartbeat_ms);
        if !force && !due {
            return;
        }
        self.node_heartbeat_ms = Some(self.now);
        let heartbeat = NodeHeartbeat {
            liveness: self.liveness,
            node_epoch: self.node_epoch,
            drain_target: self.drain_target.clone(),
        };
        self.out.push(ManagerOutput::ToCoordinator { to, message: ToCoordinator::Node(heartbeat) });
    }

    fn report(&mut self, statuses: Vec<MaintainerStatus>) {
        let Some(to) = self.coordinator.clone() else { return };
        if statuses.is_empty() {
            return;
        }
        let message = ToCoordinator::Maintainers(MaintainerHeartbeat { statuses });
        self.out.push(ManagerOutput::ToCoordinator { to, message });
    }

    // ---- nodes ----

    fn on_node(&mut self, from: NodeId, message: ToMaintainer) {
        let gid = match &message {
            ToMaintainer::Heartbeat(m) => m.changefeed.gid(),
            ToMaintainer::Bootstrap(m) => m.changefeed.gid(),
            ToMaintainer::PostBootstrap(m) => m.changefeed.gid(),
            ToMaintainer::Close(m) => m.changefeed.gid(),
            ToMaintainer::BlockStatus(m) => m.changefeed.gid(),
        };
        let Some(h) = self.hosted.get_mut(&gid) else { return };
        match (&mut h.hosting, message) {
            (Hosting::Closing(closer), ToMaintainer::Close(response)) => {
                closer.answered(&from, &response);
                self.drive_closers();
            }
            (Hosting::Closing(closer), ToMaintainer::Bootstrap(response)) => {
                if let Some(close) = closer.bootstrapped(&from, &response) {
                    self.out.push(ManagerOutput::ToNode { to: from, message: close });
                }
                self.drive_closers();
            }
            (Hosting::Running(_), message) => {
                if let Some(event) = Event::received(from, message) {
                    self.step_maintainer(gid, event);
                }
            }
            _ => {}
        }
    }

    fn set_members(&mut self, members: Vec<(NodeId, u64)>) {
        let new: BTreeMap<NodeId, u64> = members.into_iter().collect();
        let left: Vec<NodeId> = self
            .incarnations
            .iter()
            .filter(|(n, inc)| new.get(*n) != Some(*inc))
            .map(|(n, _)| n.clone())
            .collect();
        let joined: Vec<NodeId> = new
            .iter()
            .filter(|(n, inc)| self.incarnations.get(*n) != Some(*inc))
            .map(|(n, _)| n.clone())
            .collect();
        self.members = new.keys().cloned().collect();
        self.incarnations = new;
        let gids: Vec<u128> = self.hosted.keys().copied().collect();
        for gid in gids {
            for node in &left {
                self.step_maintainer(gid, Event::NodeLeft(node.clone()));
            }
            for node in &joined {
                self.step_maintainer(gid, Event::NodeJoined(node.clone()));
            }
        }
        self.drive_closers();
    }

    // ---- hosted maintainers ----

    fn step_maintainer(&mut self, gid: u128, event: Event) {
        let now = self.now;
        let Some(Hosted { hosting: Hosting::Running(m), .. }) = self.hosted.get_mut(&gid) else { return };
        let outputs = m.step(now, event);
        self.absorb(gid, outputs);
    }

    fn absorb(&mut self, gid: u128, outputs: Vec<Output>) {
        let Some(h) = self.hosted.get_mut(&gid) else { return };
        for output in outputs {
            match output {
                Output::Send { to, message } => self.out.push(ManagerOutput::ToNode { to, message }),
                other => {
                    match &other {
                        Output::CheckpointAdvanced { mode: Mode::Default, checkpoint_ts } => {
                            if h.fresh && *checkpoint_ts > h.checkpoint {
                                h.fresh = false;
                                h.changed = true;
                            }
                            h.checkpoint = h.checkpoint.max(*checkpoint_ts);
                        }
                        Output::Bootstrapped => {
                            h.changed = true;
                            h.fresh = true;
                        }
                        _ => {}
                    }
                    let notice = ManagerOutput::Notice {
                        changefeed: h.changefeed.clone(),
                        epoch: h.epoch,
                        output: other,
                    };
                    self.out.push(notice);
                }
            }
        }
    }

    fn drive_closers(&mut self) {
        let (now, resend) = (self.now, self.config.resend_ms);
        for h in self.hosted.values_mut() {
            let Hosting::Closing(closer) = &mut h.hosting else { continue };
            if closer.done(&self.members, now) {
                h.hosting = Hosting::Stopped;
                h.changed = true;
                continue;
            }
            for (to, message) in closer.due(now, resend, &self.members) {
                self.out.push(ManagerOutput::ToNode { to, message });
            }
        }
    }

    fn tick(&mut self) {
        let gids: Vec<u128> = self.hosted.keys().copied().collect();
        for gid in gids {
            self.step_maintainer(gid, Event::Tick);
        }
        self.drive_closers();
        // Statuses that changed or are due; stopped ones a few more times, then forgotten.
        let (now, period) = (self.now, self.config.status_ms);
        let mut statuses = Vec::new();
        if self.coordinator.is_some() {
            for h in self.hosted.values_mut() {
                if h.changed || h.reported_ms.is_none_or(|t| now >= t + period) {
                    statuses.push(h.status());
                    h.changed = false;
                    h.reported_ms = Some(now);
                    if matches!(h.hosting, Hosting::Stopped) {
                        h.stopped_reports += 1;
                    }
                }
            }
            self.hosted.retain(|_, h| {
                !(matches!(h.hosting, Hosting::Stopped) && h.stopped_reports >= STOPPED_REPORTS)
            });
        }
        self.report(statuses);
        self.node_heartbeat(false);
    }

    /// K8: the lease is not provably valid. Every maintainer stops now; nothing is sent after.
    fn fence(&mut self) {
        for h in self.hosted.values_mut() {
            if let Hosting::Running(m) = &mut h.hosting {
                let _ = m.step(self.now, Event::Stop);
            }
            h.hosting = Hosting::Stopped;
        }
        self.liveness = NodeLiveness::Stopping;
        self.fenced = true;
        self.out.clear();
    }
}
