//! One node process's roles, hosted together and stepped as one sans-IO core: the node core
//! ([`Orchestrator`] with a heartbeat [`Collector`] per changefeed), the [`MaintainerManager`]
//! with the maintainers placed here, the [`Coordinator`] while this process leads, and the
//! dispatchers the node core asks for (through a [`DispatcherDriver`]).
//!
//! The coordinator world of the simulator and the networked `dispatcher-cluster` process step
//! the same [`NodeHost`]: the shell supplies time, membership, the election it observes, decoded
//! bytes off the wire and the store's answers; the host answers with messages to send and store
//! requests to run. It never reads a clock, blocks or does IO.
//!
//! | event | what the host does |
//! |---|---|
//! | [`HostEvent::Tick`] | hands a changed membership and a newer election to the manager (and the coordinator), starts the coordinator when this process won and drops it when it did not, ticks every core, advances the dispatchers and polls the heartbeat collectors |
//! | [`HostEvent::Received`] | decodes by kind and routes to the core the kind names; an undecodable frame is a counted [`HostOutput::Dropped`] |
//! | [`HostEvent::Meta`] | the store's answer, for the coordinator of that generation only |
//! | [`HostEvent::Request`], [`HostEvent::Operate`] | a user's request to the coordinator, or to a maintainer hosted here |
//! | [`HostEvent::Fenced`] | the lease could not be proven: every role stops at once and for good |

mod request;
mod synthetic;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

pub use self::request::{OperationKind, OperationState, SpanOperation};
pub use self::synthetic::{SyntheticDefinition, SyntheticDispatchers, SyntheticFactory};
use crate::coordinator::{
    Coordinator, CoordinatorConfig, Event as CoEvent, FeedView, Member, MetaReply, MetaRequest,
    Output as CoOutput, Request, RequestError,
};
use crate::ids::{ChangefeedId, DispatcherId, Epoch, Mode, NodeId, Ts};
use crate::maintainer::manager::{
    MaintainerFactory, MaintainerManager, ManagerConfig, ManagerEvent, ManagerOutput,
};
use crate::maintainer::{Lifecycle, OperatorKind, Output as MaintainerOutput};
use crate::messages::*;
use crate::mutation::Mutations;
use crate::node::heartbeat::Collector;
use crate::node::{DispatcherManager, Effect, Orchestrator, Outcome};
use crate::span::TableSpan;
use crate::wire;

/// Runs the dispatchers the node core asks for. Creation and close are synchronous here: a
/// driver whose dispatchers take time to build reports them later through the node core's own
/// calls, which this host does not offer yet.
pub trait DispatcherDriver {
    /// Starts replicating `span` from `start_ts`; an error is reported to the maintainer.
    fn open(
        &mut self,
        changefeed: &ChangefeedId,
        mode: Mode,
        id: DispatcherId,
        span: &TableSpan,
        start_ts: Ts,
    ) -> Result<(), String>;
    /// How far dispatcher `id` replicated by `now_ms` (its checkpoint and resolved ts).
    fn progress(&mut self, changefeed: &ChangefeedId, mode: Mode, id: DispatcherId, now_ms: u64) -> Ts;
    /// Stops dispatcher `id` (it may never have been opened: its create was withdrawn); returns its
    /// final checkpoint.
    fn close(&mut self, changefeed: &ChangefeedId, mode: Mode, id: DispatcherId, now_ms: u64) -> Ts;
}

/// The host's settings.
#[derive(Clone, Debug, Default)]
pub struct HostConfig {
    /// The maintainer manager's timers.
    pub manager: ManagerConfig,
    /// The coordinator's timers, used when this process leads.
    pub coordinator: CoordinatorConfig,
    /// Whether the node core accepts redo-mode dispatchers (the redo storage of the synthetic
    /// dispatchers is ready at once).
    pub redo: bool,
    /// Deliberate bugs, for the simulator's own tests.
    pub mutation: Mutations,
    /// Emit [`HostOutput::Trace`] lines for this changefeed.
    pub trace: Option<String>,
}

/// The coordinator election as the shell observes it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Leader {
    /// The winner's node.
    pub node: NodeId,
    /// Its version (the winning key's create revision).
    pub version: u64,
    /// Whether this process is the winner (the shell campaigned and holds the key).
    pub mine: bool,
}

/// A user's request for a span of a changefeed whose maintainer runs here.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SpanRequest {
    /// Move the `index`-th span of `table` (key order) to a node.
    Move {
        /// The table.
        table: i64,
        /// The span's index within the table.
        index: usize,
        /// Destination.
        to: NodeId,
    },
    /// Split the `index`-th span of `table` into `into` equal parts.
    Split {
        /// The table.
        table: i64,
        /// The span's index.
        index: usize,
        /// Parts.
        into: usize,
    },
    /// Merge the adjacent spans `indexes` of `table`.
    Merge {
        /// The table.
        table: i64,
        /// The spans' indexes, ascending.
        indexes: Vec<usize>,
    },
}

/// What happens to the host.
#[derive(Debug)]
pub enum HostEvent {
    /// Time passed. The shell passes the membership and the election it currently observes.
    Tick {
        /// Live members.
        members: Vec<Member>,
        /// The current election winner, if any.
        leader: Option<Leader>,
    },
    /// Bytes of one message off the wire.
    Received {
        /// The sending node.
        from: NodeId,
        /// The sending process's registration (from its stream's handshake).
        incarnation: u64,
        /// The message's kind (the frame's type).
        kind: MessageKind,
        /// Its payload.
        bytes: Vec<u8>,
    },
    /// The store's answer to a [`HostOutput::Meta`].
    Meta {
        /// The generation the request carried.
        generation: u64,
        /// The answer.
        reply: MetaReply,
    },
    /// A user's request for the coordinator.
    Request {
        /// The shell's id for it.
        id: u64,
        /// The request.
        request: Request,
    },
    /// A user's span operation for a maintainer hosted here (see [`NodeHost::resolve`]).
    Operate {
        /// The shell's id for it.
        id: u64,
        /// The changefeed's name.
        changefeed: String,
        /// The operation.
        operation: SpanOperation,
    },
    /// The lease could not be proven valid.
    Fenced,
}

/// One message for another process.
#[derive(Clone, PartialEq, Debug)]
pub enum Outbound {
    /// For the node's maintainer manager.
    ToManager(ToManager),
    /// For the coordinator.
    ToCoordinator(ToCoordinator),
    /// For the node core.
    ToNode(ToNode),
    /// For a maintainer.
    ToMaintainer(ToMaintainer),
}

impl Outbound {
    /// Its kind and payload on the wire.
    pub fn encode(&self) -> (MessageKind, Vec<u8>) {
        match self {
            Outbound::ToManager(m) => wire::encode_to_manager(m),
            Outbound::ToCoordinator(m) => wire::encode_to_coordinator(m),
            Outbound::ToNode(m) => wire::encode_to_node(m),
            Outbound::ToMaintainer(m) => wire::encode_to_maintainer(m),
        }
    }
}

/// What the shell must do after a step, in order.
#[derive(Clone, PartialEq, Debug)]
pub enum HostOutput {
    /// Send a message.
    Send {
        /// The node.
        to: NodeId,
        /// The message.
        message: Outbound,
    },
    /// Run a store request as the coordinator `version` and step the answer back in with
    /// `generation`.
    Meta {
        /// The coordinator instance that asked.
        generation: u64,
        /// Its version: the store guards the write with it.
        version: u64,
        /// The request.
        request: MetaRequest,
    },
    /// A user's request was answered.
    Answered {
        /// Its id.
        id: u64,
        /// Accepted, or why not.
        result: Result<(), String>,
    },
    /// This process started leading as coordinator `version`.
    Leading {
        /// The version.
        version: u64,
    },
    /// The coordinator `version` here lost its election (the store said so); the shell should
    /// campaign again.
    Deposed {
        /// The deposed coordinator's version.
        version: u64,
    },
    /// A frame was dropped: undecodable, or for a role this process does not have.
    Dropped {
        /// Its kind.
        kind: MessageKind,
        /// Why.
        reason: String,
    },
    /// A hosted maintainer's notice (checkpoint advanced, operator finished, refused request).
    Notice {
        /// The changefeed.
        changefeed: ChangefeedId,
        /// The maintainer's epoch.
        epoch: Epoch,
        /// What happened.
        notice: MaintainerOutput,
    },
    /// A trace line for [`HostConfig::trace`].
    Trace(String),
}

/// A dispatcher this node runs.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HostedDispatcher {
    /// Its key range.
    pub span: TableSpan,
    /// Its state.
    pub state: ComponentState,
    /// Its checkpoint at the last tick.
    pub checkpoint_ts: Ts,
}

/// The roles of one node process. See the module documentation.
pub struct NodeHost {
    id: NodeId,
    config: HostConfig,
    manager: MaintainerManager,
    orchestrator: Orchestrator,
    /// Each changefeed's heartbeat collector, with the dispatcher manager it was built for (a
    /// manager retired and built again gets a fresh collector).
    collectors: BTreeMap<u128, (Arc<DispatcherManager>, Collector)>,
    changefeeds: BTreeMap<u128, ChangefeedId>,
    dispatchers: BTreeMap<(u128, Mode, DispatcherId), HostedDispatcher>,
    driver: Box<dyn DispatcherDriver + Send>,
    coordinator: Option<Coordinator>,
    generation: u64,
    members_seen: Vec<(NodeId, u64)>,
    elected_seen: u64,
}

impl NodeHost {
    /// A host for node `id` registered as `incarnation` (its session key's create revision).
    pub fn new(
        id: NodeId,
        incarnation: u64,
        config: HostConfig,
        factory: Box<dyn MaintainerFactory + Send>,
        driver: Box<dyn DispatcherDriver + Send>,
    ) -> Self {
        let manager =
            MaintainerManager::new(id.clone(), NodeEpoch(incarnation), config.manager.clone(), factory);
        let orchestrator = Orchestrator::mutated(id.clone(), config.mutation).with_redo(config.redo);
        NodeHost {
            id,
            config,
            manager,
            orchestrator,
            collectors: BTreeMap::new(),
            changefeeds: BTreeMap::new(),
            dispatchers: BTreeMap::new(),
            driver,
            coordinator: None,
            generation: 0,
            members_seen: Vec::new(),
            elected_seen: 0,
        }
    }

    /// Steps one event at `now_ms` (the shell's monotonic clock).
    pub fn step(&mut self, now_ms: u64, event: HostEvent) -> Vec<HostOutput> {
        let mut out = Vec::new();
        match event {
            HostEvent::Tick { members, leader } => self.tick(now_ms, members, leader, &mut out),
            HostEvent::Received { from, incarnation, kind, bytes } => {
                self.received(now_ms, from, incarnation, kind, &bytes, &mut out)
            }
            HostEvent::Meta { generation, reply } => {
                if generation == self.generation {
                    if let Some(co) = self.coordinator.as_mut() {
                        let outputs = co.step(now_ms, CoEvent::Meta(reply));
                        self.coordinator_outputs(outputs, &mut out);
                    }
                }
            }
            HostEvent::Request { id, request } => match self.coordinator.as_mut() {
                Some(co) => {
                    let outputs = co.step(now_ms, CoEvent::Request { id, request });
                    self.coordinator_outputs(outputs, &mut out);
                }
                None => out.push(HostOutput::Answered {
                    id,
                    result: Err("this node is not the coordinator".into()),
                }),
            },
            HostEvent::Operate { id, changefeed, operation } => {
                let result = self.operate(now_ms, &changefeed, operation, &mut out);
                out.push(HostOutput::Answered { id, result });
            }
            HostEvent::Fenced => {
                let outputs = self.manager.step(now_ms, ManagerEvent::Fenced);
                self.coordinator = None;
                self.manager_outputs(outputs, &mut out);
            }
        }
        out
    }

    /// Drops the coordinator (the process resigns or dies); the next election decides again.
    pub fn resign(&mut self) {
        self.coordinator = None;
    }

    /// This node's id.
    pub fn id(&self) -> &NodeId {
        &self.id
    }

    /// The maintainer manager.
    pub fn manager(&self) -> &MaintainerManager {
        &self.manager
    }

    /// The node core.
    pub fn orchestrator(&self) -> &Orchestrator {
        &self.orchestrator
    }

    /// The coordinator, while this process leads.
    pub fn coordinator(&self) -> Option<&Coordinator> {
        self.coordinator.as_ref()
    }

    /// The coordinator's view of every changefeed, while this process leads.
    pub fn feeds(&self) -> Vec<FeedView> {
        self.coordinator.as_ref().map(|c| c.changefeeds().collect()).unwrap_or_default()
    }

    /// Every dispatcher this node runs, by (changefeed, mode, id), in that order.
    pub fn dispatchers(
        &self,
    ) -> impl Iterator<Item = (&ChangefeedId, Mode, DispatcherId, &HostedDispatcher)> + '_ {
        self.dispatchers
            .iter()
            .filter_map(|((gid, mode, id), d)| Some((self.changefeeds.get(gid)?, *mode, *id, d)))
    }

    /// Whether this node runs a dispatcher of the changefeed `gid`.
    pub fn runs_any_of(&self, gid: u128) -> bool {
        self.dispatchers
            .range((gid, Mode::Default, DispatcherId::MIN)..)
            .next()
            .is_some_and(|(k, _)| k.0 == gid)
    }

    /// The changefeeds the node core has heard of.
    pub fn changefeeds(&self) -> impl Iterator<Item = &ChangefeedId> + '_ {
        self.changefeeds.values()
    }

    // ---- events ----

    fn tick(&mut self, now: u64, sessions: Vec<Member>, leader: Option<Leader>, out: &mut Vec<HostOutput>) {
        let members: Vec<(NodeId, u64)> = sessions.iter().map(|m| (m.node.clone(), m.incarnation)).collect();
        let mut outputs = Vec::new();
        if members != self.members_seen {
            self.members_seen = members.clone();
            outputs.extend(self.manager.step(now, ManagerEvent::Members(members)));
            if let Some(co) = self.coordinator.as_mut() {
                let co_out = co.step(now, CoEvent::Members(sessions.clone()));
                self.manager_outputs(std::mem::take(&mut outputs), out);
                self.coordinator_outputs(co_out, out);
            }
        }
        if let Some(leader) = leader {
            if leader.version > self.elected_seen {
                self.elected_seen = leader.version;
                let event = ManagerEvent::Elected {
                    node: leader.node.clone(),
                    version: CoordinatorVersion(leader.version as i64),
                };
                outputs.extend(self.manager.step(now, event));
            }
            // A win under a key re-created since (a new version) is a new coordinator.
            let current = self.coordinator.as_ref().is_some_and(|c| c.version().0 as u64 == leader.version);
            if leader.mine && !current {
                let version = CoordinatorVersion(leader.version as i64);
                let mut co = Coordinator::new(self.id.clone(), version, self.config.coordinator.clone());
                self.generation += 1;
                let first = co.step(now, CoEvent::Members(sessions));
                self.coordinator = Some(co);
                out.push(HostOutput::Leading { version: leader.version });
                self.coordinator_outputs(first, out);
            } else if !leader.mine {
                self.coordinator = None;
            }
        }
        outputs.extend(self.manager.step(now, ManagerEvent::Tick));
        self.manager_outputs(outputs, out);
        if let Some(co) = self.coordinator.as_mut() {
            let co_out = co.step(now, CoEvent::Tick);
            self.coordinator_outputs(co_out, out);
        }
        self.progress(now, out);
    }

    /// Dispatchers advance; every changefeed's heartbeat collector reports.
    fn progress(&mut self, now: u64, out: &mut Vec<HostOutput>) {
        for (gid, cf) in &self.changefeeds {
            let Some(dm) = self.orchestrator.manager(cf) else { continue };
            let from = (*gid, Mode::Default, DispatcherId::MIN);
            for ((g, mode, did), d) in self.dispatchers.range_mut(from..) {
                if g != gid {
                    break;
                }
                if d.state != ComponentState::Working {
                    continue;
                }
                let ts = self.driver.progress(cf, *mode, *did, now);
                d.checkpoint_ts = ts;
                if let Some(handle) = dm.status_handle_of(*mode, *did) {
                    let _ = dm.report_progress(&handle, ts, ts, 0.0);
                }
            }
            let entry = self.collectors.entry(*gid).or_insert_with(|| (dm.clone(), Collector::new(&dm)));
            if !Arc::ptr_eq(&entry.0, &dm) {
                *entry = (dm.clone(), Collector::new(&dm));
            }
            let poll = entry.1.poll(&dm, now);
            for o in poll.heartbeats {
                out.push(HostOutput::Send {
                    to: o.to,
                    message: Outbound::ToMaintainer(ToMaintainer::Heartbeat(o.request)),
                });
            }
            for o in poll.block_statuses {
                let message = Outbound::ToMaintainer(ToMaintainer::BlockStatus(o.request));
                out.push(HostOutput::Send { to: o.to, message });
            }
        }
    }

    fn received(
        &mut self,
        now: u64,
        from: NodeId,
        incarnation: u64,
        kind: MessageKind,
        bytes: &[u8],
        out: &mut Vec<HostOutput>,
    ) {
        let dropped = |reason: String| HostOutput::Dropped { kind, reason };
        match kind.receiver() {
            Receiver::Manager => match wire::decode_to_manager(kind, bytes) {
                Ok(message) => {
                    let outputs = self.manager.step(now, ManagerEvent::FromCoordinator { from, message });
                    self.manager_outputs(outputs, out);
                }
                Err(e) => out.push(dropped(e.to_string())),
            },
            Receiver::Coordinator => match wire::decode_to_coordinator(kind, bytes) {
                Ok(message) => match self.coordinator.as_mut() {
                    Some(co) => {
                        let outputs = co.step(now, CoEvent::Received { from, incarnation, message });
                        self.coordinator_outputs(outputs, out);
                    }
                    None => out.push(dropped("not the coordinator".into())),
                },
                Err(e) => out.push(dropped(e.to_string())),
            },
            Receiver::Maintainer => match wire::decode_to_maintainer(kind, bytes) {
                Ok(message) => {
                    let outputs = self.manager.step(now, ManagerEvent::FromNode { from, message });
                    self.manager_outputs(outputs, out);
                }
                Err(e) => out.push(dropped(e.to_string())),
            },
            Receiver::Node => match wire::decode_to_node(kind, bytes) {
                Ok(message) => {
                    let cf = message.changefeed().clone();
                    self.trace(
                        &cf,
                        || format!("{from} -> {} {kind} epoch {}", self.id, message.epoch().0),
                        out,
                    );
                    self.changefeeds.insert(cf.gid(), cf.clone());
                    let bootstrap = matches!(message, ToNode::Bootstrap(_));
                    let reaction = self.orchestrator.handle(&from, message);
                    if bootstrap && self.config.redo && reaction.outcome == Outcome::Applied {
                        if let Some(dm) = self.orchestrator.manager(&cf) {
                            dm.mark_redo_ready();
                        }
                    }
                    self.node_effects(now, &cf, reaction.effects, out);
                }
                Err(e) => out.push(dropped(e.to_string())),
            },
        }
    }

    fn trace(&self, cf: &ChangefeedId, line: impl FnOnce() -> String, out: &mut Vec<HostOutput>) {
        if self.config.trace.as_deref() == Some(cf.name.as_str()) {
            out.push(HostOutput::Trace(line()));
        }
    }

    /// Carries out the node core's effects on the driver's dispatchers, which open and close at
    /// once; merges complete in the same step.
    fn node_effects(&mut self, now: u64, cf: &ChangefeedId, effects: Vec<Effect>, out: &mut Vec<HostOutput>) {
        let gid = cf.gid();
        let mut queue: VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            let dm = self.orchestrator.manager(cf);
            match effect {
                Effect::Create(ticket) => {
                    let Some(dm) = dm else { continue };
                    if dm.commit_create(&ticket).is_err() {
                        continue;
                    }
                    let spec = ticket.spec();
                    if let Err(message) = self.driver.open(cf, spec.mode, spec.id, &spec.span, spec.start_ts)
                    {
                        queue.extend(dm.create_failed(&ticket, self.error(message)).effects);
                        continue;
                    }
                    let d = HostedDispatcher {
                        span: spec.span.clone(),
                        state: ComponentState::Working,
                        checkpoint_ts: spec.start_ts,
                    };
                    self.dispatchers.insert((gid, spec.mode, spec.id), d);
                    self.trace(cf, || format!("{} creates {:?} {:?}", self.id, spec.id, spec.span), out);
                    let r = dm.dispatcher_state_changed(
                        spec.id,
                        spec.mode,
                        ComponentState::Working,
                        spec.start_ts,
                    );
                    queue.extend(r.effects);
                }
                // A close of a dispatcher never built (its create was withdrawn) is still
                // answered: the node core waits for it.
                Effect::Close { id, mode } => {
                    self.dispatchers.remove(&(gid, mode, id));
                    self.trace(cf, || format!("{} closes {id:?}", self.id), out);
                    if let Some(dm) = dm {
                        let checkpoint = self.driver.close(cf, mode, id, now);
                        queue.extend(dm.dispatcher_closed(id, mode, checkpoint, None).effects);
                    }
                }
                Effect::Reply { to, reply } => {
                    let message: ToMaintainer = reply.into();
                    self.trace(cf, || format!("{} replies {message:?}", self.id), out);
                    out.push(HostOutput::Send { to, message: Outbound::ToMaintainer(message) });
                }
                Effect::PrepareMerged { spec, sources } => {
                    let Some(dm) = dm else { continue };
                    for s in &sources {
                        if let Some(d) = self.dispatchers.get_mut(&(gid, spec.mode, *s)) {
                            d.state = ComponentState::WaitingMerge;
                        }
                    }
                    let d = HostedDispatcher {
                        span: spec.span.clone(),
                        state: ComponentState::Preparing,
                        checkpoint_ts: spec.start_ts,
                    };
                    self.dispatchers.insert((gid, spec.mode, spec.id), d);
                    let r = dm.dispatcher_state_changed(
                        spec.id,
                        spec.mode,
                        ComponentState::MergeReady,
                        spec.start_ts,
                    );
                    queue.extend(r.effects);
                }
                Effect::CloseMergeSources { mode, sources, .. } => {
                    for id in sources {
                        queue.push_back(Effect::Close { id, mode });
                    }
                }
                Effect::StartMerged { id, mode, start_ts, .. } => {
                    let Some(dm) = dm else { continue };
                    let Some(d) = self.dispatchers.get_mut(&(gid, mode, id)) else { continue };
                    if let Err(message) = self.driver.open(cf, mode, id, &d.span, start_ts) {
                        let error = self.error(message);
                        dm.report_error(error);
                        continue;
                    }
                    d.state = ComponentState::Working;
                    d.checkpoint_ts = start_ts;
                    queue.extend(
                        dm.dispatcher_state_changed(id, mode, ComponentState::Working, start_ts).effects,
                    );
                }
                Effect::ResumeSource { id, mode } => {
                    if let Some(d) = self.dispatchers.get_mut(&(gid, mode, id)) {
                        d.state = ComponentState::Working;
                    }
                }
                // Synthetic dispatchers write nowhere: no sink checkpoint, redo meta or barrier
                // to hand on; reports travel on the heartbeat path already.
                Effect::Report(_)
                | Effect::ReportError(_)
                | Effect::DeliverBarrier { .. }
                | Effect::SinkCheckpoint { .. }
                | Effect::UpdateRedoMeta { .. }
                | Effect::RedoGlobalTsAdvanced { .. } => {}
            }
        }
    }

    fn error(&self, message: String) -> RunningError {
        RunningError { time: String::new(), node: self.id.to_string(), code: "open".into(), message }
    }

    fn manager_outputs(&mut self, outputs: Vec<ManagerOutput>, out: &mut Vec<HostOutput>) {
        for output in outputs {
            out.push(match output {
                ManagerOutput::ToCoordinator { to, message } => {
                    HostOutput::Send { to, message: Outbound::ToCoordinator(message) }
                }
                ManagerOutput::ToNode { to, message } => {
                    HostOutput::Send { to, message: Outbound::ToNode(message) }
                }
                ManagerOutput::Notice { changefeed, epoch, output } => {
                    HostOutput::Notice { changefeed, epoch, notice: output }
                }
            });
        }
    }

    fn coordinator_outputs(&mut self, outputs: Vec<CoOutput>, out: &mut Vec<HostOutput>) {
        let version = self.coordinator.as_ref().map_or(0, |c| c.version().0 as u64);
        for output in outputs {
            match output {
                CoOutput::Send { to, message } => {
                    out.push(HostOutput::Send { to, message: Outbound::ToManager(message) })
                }
                CoOutput::Meta(request) => {
                    out.push(HostOutput::Meta { generation: self.generation, version, request })
                }
                CoOutput::Answered { id, result } => out.push(HostOutput::Answered {
                    id,
                    result: result.map_err(|e: RequestError| e.to_string()),
                }),
                CoOutput::Initialized => {}
                CoOutput::Deposed => {
                    self.coordinator = None;
                    out.push(HostOutput::Deposed { version });
                }
            }
        }
    }
}

/// How a maintainer hosted here sees one table's spans and its operators, for status.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MaintainerReport {
    /// The changefeed.
    pub changefeed: ChangefeedId,
    /// The epoch.
    pub epoch: Epoch,
    /// Bootstrapping, running or removing.
    pub lifecycle: Lifecycle,
    /// The committed checkpoint of each mode.
    pub checkpoints: Vec<(Mode, Ts)>,
    /// Operators in flight, over all modes.
    pub operators: usize,
    /// The same by kind (kinds with none left out).
    pub operators_by_kind: Vec<(OperatorKind, usize)>,
    /// Tables with their whole key ranges.
    pub tables: Vec<TableSpan>,
}

impl NodeHost {
    /// Every maintainer running here, as status reports it.
    pub fn maintainers(&self) -> Vec<MaintainerReport> {
        let mut reports = Vec::new();
        for status in self.manager.statuses() {
            let Some(m) = self.manager.maintainer(&status.changefeed) else { continue };
            let mut checkpoints = Vec::new();
            let mut operators = 0;
            let mut by_kind: BTreeMap<OperatorKind, usize> = BTreeMap::new();
            let mut tables = std::collections::BTreeSet::new();
            for mode in m.modes() {
                let Some(view) = m.view(mode) else { continue };
                checkpoints.push((mode, view.committed));
                operators += view.operators.len();
                for op in view.operators.operators() {
                    *by_kind.entry(op.op_kind()).or_default() += 1;
                }
                for r in view.spans.records() {
                    if !r.span.is_table_trigger() {
                        tables.insert((r.span.keyspace_id, r.span.table_id));
                    }
                }
            }
            reports.push(MaintainerReport {
                changefeed: status.changefeed.clone(),
                epoch: m.config().epoch,
                lifecycle: m.lifecycle(),
                checkpoints,
                operators,
                operators_by_kind: by_kind.into_iter().collect(),
                tables: tables.into_iter().map(|(ks, t)| TableSpan::whole_table(ks, t)).collect(),
            });
        }
        reports
    }
}
