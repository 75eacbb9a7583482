//! Rounds of concurrent traffic against one orchestrator, each ending in a quiescent check and
//! a drain to zero.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dispatcher_core::ids::{DispatcherId, Epoch, Mode};
use dispatcher_core::messages::{
    BarrierAction, BarrierAnswer, BarrierEvent, BlockStage, BlockState, BlockStatus, ComponentState,
    HeartBeatResponse, Influence, ScheduleAction,
};
use dispatcher_core::mutation::Mutations;
use dispatcher_core::node::{
    BlockBatcher, Collector, DispatcherManager, DispatcherRecord, Effect, Orchestrator, PendingMessage,
    PendingQueue, Reaction, RecordPhase, Reply, RoundKind,
};
use dispatcher_core::span::TableSpan;

use crate::embedder::{Embedder, Quirks};
use crate::history::{self, Checked, Event, Snapshot};
use crate::world::{self, Rng, CHANGEFEEDS, MERGED_IDS};

/// What a run does; `Mode::parse` names the presets.
#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    pub request_threads: usize,
    pub round: Duration,
    pub deadline: Duration,
    pub duplicate_bootstraps: bool,
    pub same_owner: bool,
    pub quirks: Quirks,
    pub mutation: Mutations,
    pub stop_at_first: bool,
}

impl Config {
    /// Switches on the named mode (`default`, `duplicate-bootstraps`, `same-owner`, `self-close`,
    /// `duplicate-closes`, `all`).
    pub fn mode(&mut self, name: &str) -> Result<(), String> {
        match name {
            "default" => {}
            "duplicate-bootstraps" => self.duplicate_bootstraps = true,
            "same-owner" => self.same_owner = true,
            "self-close" => self.quirks.self_close = true,
            "duplicate-closes" => self.quirks.duplicate_closes = true,
            "all" => {
                self.duplicate_bootstraps = true;
                self.same_owner = true;
                self.quirks.self_close = true;
                self.quirks.duplicate_closes = true;
            }
            other => return Err(format!("unknown mode {other}")),
        }
        Ok(())
    }
}

/// What a run did.
#[derive(Default, Debug)]
pub struct Report {
    pub rounds: u64,
    pub requests: u64,
    pub create_requests: u64,
    pub creates_committed: u64,
    pub bootstraps: u64,
    pub closes: u64,
    pub duplicate_closes: u64,
    pub merges_started: u64,
    pub withdrawn: u64,
    pub orphan_closes: u64,
    pub checks: u64,
    pub heartbeat_rounds: u64,
    pub violations: Vec<String>,
    /// Round and time of the first violation.
    pub first: Option<(u64, Duration)>,
}

/// The owner the request threads speak for: its epoch (its node follows from it).
struct Owner {
    epoch: AtomicU64,
}

struct Shared<'a> {
    cfg: &'a Config,
    orch: &'a Orchestrator,
    queue: &'a PendingQueue,
    embedder: &'a Embedder,
    owner: Owner,
    /// Traffic (requests, takeovers, heartbeats) stops.
    stop_traffic: AtomicBool,
    next_id: AtomicU64,
    next_merged: AtomicU64,
    requests: AtomicU64,
    create_requests: AtomicU64,
    heartbeat_rounds: AtomicU64,
    spans: Vec<TableSpan>,
}

pub fn run(cfg: &Config) -> Report {
    let started = Instant::now();
    let mut report = Report::default();
    let mut epoch = 1u64;
    let mut next_id = 1u64;
    let mut next_merged = MERGED_IDS;
    let mut round = 0u64;
    while started.elapsed() < cfg.deadline {
        let embedder = Embedder::new(cfg.quirks);
        let (violations, checked, e, ids, merged) =
            one_round(cfg, round, epoch, next_id, next_merged, &embedder, &mut report);
        epoch = e;
        next_id = ids;
        next_merged = merged;
        report.rounds += 1;
        report.checks +=
            checked.pairs + checked.bootstraps + embedder.stats.i2_checks.load(Ordering::Relaxed);
        report.bootstraps += checked.bootstraps;
        report.creates_committed += embedder.stats.commits.load(Ordering::Relaxed);
        report.closes += embedder.stats.closes.load(Ordering::Relaxed);
        report.duplicate_closes += embedder.stats.duplicate_closes.load(Ordering::Relaxed);
        report.merges_started += embedder.stats.merges_started.load(Ordering::Relaxed);
        report.withdrawn += embedder.stats.withdrawn.load(Ordering::Relaxed);
        report.orphan_closes += embedder.stats.orphan_closes.load(Ordering::Relaxed);
        if !violations.is_empty() {
            if report.first.is_none() {
                report.first = Some((round, started.elapsed()));
            }
            report.violations.extend(violations.into_iter().map(|v| format!("round {round}: {v}")));
            if cfg.stop_at_first {
                break;
            }
        }
        round += 1;
    }
    report
}

/// One round. Returns its violations, what the history checks covered, and the counters to
/// carry on (owner epoch, next ids).
fn one_round(
    cfg: &Config,
    round: u64,
    epoch: u64,
    next_id: u64,
    next_merged: u64,
    embedder: &Embedder,
    report: &mut Report,
) -> (Vec<String>, Checked, u64, u64, u64) {
    let orch = Orchestrator::mutated(dispatcher_core::ids::NodeId::new("n1"), cfg.mutation);
    let queue = PendingQueue::new(16);
    let sh = Shared {
        cfg,
        orch: &orch,
        queue: &queue,
        embedder,
        owner: Owner { epoch: AtomicU64::new(epoch) },
        stop_traffic: AtomicBool::new(false),
        next_id: AtomicU64::new(next_id),
        next_merged: AtomicU64::new(next_merged),
        requests: AtomicU64::new(0),
        create_requests: AtomicU64::new(0),
        heartbeat_rounds: AtomicU64::new(0),
        spans: world::spans(),
    };
    let stop_embedders = AtomicBool::new(false);
    let mut violations = Vec::new();
    let mut log: Vec<Event> = Vec::new();
    std::thread::scope(|s| {
        let embedders: Vec<_> = (0..2)
            .map(|i| {
                let stop = &stop_embedders;
                s.spawn(move || embedder.run(stop, &mut Rng::new(cfg.seed, round, 100 + i)))
            })
            .collect();
        // The first owner of the round takes over before any traffic.
        let mut rng = Rng::new(cfg.seed, round, 0);
        let first = sh.owner.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        for cf in 0..CHANGEFEEDS {
            bootstrap_now(&sh, cf, first, &mut rng, &mut log);
        }
        let mut traffic = Vec::new();
        for t in 0..cfg.request_threads {
            let sh = &sh;
            traffic.push(s.spawn(move || requests(sh, &mut Rng::new(cfg.seed, round, 1 + t as u64))));
        }
        let workers = if cfg.duplicate_bootstraps { 2 } else { 1 };
        for w in 0..workers {
            let sh = &sh;
            traffic.push(s.spawn(move || worker(sh, &mut Rng::new(cfg.seed, round, 50 + w))));
        }
        {
            let sh = &sh;
            traffic.push(s.spawn(move || takeovers(sh, &mut Rng::new(cfg.seed, round, 60))));
            traffic.push(s.spawn(move || heartbeats(sh)));
        }
        std::thread::sleep(cfg.round);
        sh.stop_traffic.store(true, Ordering::SeqCst);
        for t in traffic {
            log.extend(t.join().expect("a traffic thread panicked"));
        }
        // Whatever the takeover thread queued last is handled before the round is judged.
        log.extend(drain_queue(&sh, &mut rng));
        if !quiesce(embedder) {
            violations.push("the embedder never went idle (a livelock between core and embedder?)".into());
        }
        violations.extend(quiescent_checks(&sh, "after the traffic"));
        // Drain to zero: a fresh owner takes over and removes everything, or closes the changefeed.
        let last = sh.owner.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        let close_all = rng.chance(50);
        let managers: Vec<_> = (0..CHANGEFEEDS).map(|cf| orch.manager(&world::changefeed(cf))).collect();
        for cf in 0..CHANGEFEEDS {
            bootstrap_now(&sh, cf, last, &mut rng, &mut log);
        }
        quiesce(embedder);
        for (cf, dm) in managers.iter().enumerate() {
            let Some(dm) = dm else { continue };
            drain(&sh, cf, dm, last, close_all, &mut rng, &mut log);
        }
        violations.extend(drained_checks(&sh, &managers, close_all));
        stop_embedders.store(true, Ordering::SeqCst);
        for e in embedders {
            log.extend(e.join().expect("an embedder thread panicked"));
        }
    });
    violations.extend(embedder.take_violations());
    let mut checked = Checked::default();
    violations.extend(history::check(&log, &mut checked));
    report.requests += sh.requests.load(Ordering::Relaxed);
    report.create_requests += sh.create_requests.load(Ordering::Relaxed);
    report.heartbeat_rounds += sh.heartbeat_rounds.load(Ordering::Relaxed);
    (
        violations,
        checked,
        sh.owner.epoch.load(Ordering::SeqCst),
        sh.next_id.load(Ordering::SeqCst),
        sh.next_merged.load(Ordering::SeqCst),
    )
}

/// Waits (bounded) until the embedder has nothing left to do.
fn quiesce(embedder: &Embedder) -> bool {
    let until = Instant::now() + Duration::from_secs(10);
    while !embedder.is_idle() {
        if Instant::now() > until {
            return false;
        }
        std::thread::yield_now();
    }
    true
}

/// Handles a bootstrap at once on this thread, logs its answer, hands its effects over.
fn bootstrap_now(sh: &Shared, cf: usize, epoch: u64, rng: &mut Rng, log: &mut Vec<Event>) {
    let request = world::bootstrap(cf, epoch);
    handle_bootstrap(sh, cf, &world::maintainer(epoch), &request, rng, log);
}

fn handle_bootstrap(
    sh: &Shared,
    cf: usize,
    from: &dispatcher_core::ids::NodeId,
    request: &dispatcher_core::messages::BootstrapRequest,
    rng: &mut Rng,
    log: &mut Vec<Event>,
) {
    let begin = sh.embedder.clock.tick();
    let step = sh.orch.handle_bootstrap(from, request, true);
    let end = sh.embedder.clock.tick();
    if let Some(response) = step.bootstrap_response().filter(|r| r.err.is_none()) {
        log.push(Event::Bootstrap {
            cf,
            epoch: request.epoch.0,
            begin,
            end,
            snapshot: Snapshot::of(response),
        });
    }
    if let Some(dm) = sh.orch.manager(&world::changefeed(cf)) {
        dm.mark_redo_ready();
        sh.embedder.submit(&dm, cf, step, end, rng, log);
    }
}

/// An orchestrator worker: pops the pending queue and handles what it finds.
fn worker(sh: &Shared, rng: &mut Rng) -> Vec<Event> {
    let mut log = Vec::new();
    while !sh.stop_traffic.load(Ordering::SeqCst) {
        match sh.queue.pop() {
            Some(message) => handle_pending(sh, message, rng, &mut log),
            None => std::thread::yield_now(),
        }
    }
    log
}

fn drain_queue(sh: &Shared, rng: &mut Rng) -> Vec<Event> {
    let mut log = Vec::new();
    while let Some(message) = sh.queue.pop() {
        handle_pending(sh, message, rng, &mut log);
    }
    log
}

fn handle_pending(sh: &Shared, message: PendingMessage, rng: &mut Rng, log: &mut Vec<Event>) {
    match message {
        PendingMessage::Bootstrap { from, request } => {
            let cf = (request.changefeed.low - 1) as usize;
            handle_bootstrap(sh, cf, &from, &request, rng, log);
        }
        PendingMessage::PostBootstrap { from, request } => {
            if let Some(dm) = sh.orch.manager(&request.changefeed) {
                let _ = dm.handle_post_bootstrap(&from, &request);
            }
        }
        PendingMessage::Close { .. } => {}
    }
}

/// The takeover thread: a new owner every ~1.5 ms (or, in same-owner mode, now and then the
/// same owner again), each announced through the pending queue, and in duplicate mode also
/// handled directly on this thread, racing the worker that pops it.
fn takeovers(sh: &Shared, rng: &mut Rng) -> Vec<Event> {
    let mut log = Vec::new();
    while !sh.stop_traffic.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_micros(1000 + rng.below(1000)));
        let current = sh.owner.epoch.load(Ordering::SeqCst);
        let epoch = if sh.cfg.same_owner && rng.chance(40) { current } else { current + 1 };
        for cf in 0..CHANGEFEEDS {
            let from = world::maintainer(epoch);
            let request = world::bootstrap(cf, epoch);
            let _ = sh.queue.push(PendingMessage::Bootstrap { from: from.clone(), request: request.clone() });
            if sh.cfg.duplicate_bootstraps && rng.chance(60) {
                handle_bootstrap(sh, cf, &from, &request, rng, &mut log);
            }
            let _ = sh
                .queue
                .push(PendingMessage::PostBootstrap { from, request: world::post_bootstrap(cf, epoch) });
        }
        sh.owner.epoch.store(epoch, Ordering::SeqCst);
    }
    log
}

/// The checker's share of the traffic: heartbeat rounds and block-status batches of every manager.
fn heartbeats(sh: &Shared) -> Vec<Event> {
    let started = Instant::now();
    while !sh.stop_traffic.load(Ordering::SeqCst) {
        for dm in sh.orch.managers() {
            let mut collector = Collector::new(&dm);
            let kind = if sh.heartbeat_rounds.load(Ordering::Relaxed) % 4 == 0 {
                RoundKind::Complete
            } else {
                RoundKind::StateChange
            };
            let _ = collector.round(&dm, kind);
            let mut batcher = BlockBatcher::new(dm.heartbeat_config());
            let (owner, now_ms) = (dm.owner(), started.elapsed().as_millis() as u64 + 10_000);
            let _ =
                batcher.poll(dm.block_statuses(), owner.maintainer.as_ref(), &dm.config().changefeed, now_ms);
            sh.heartbeat_rounds.fetch_add(1, Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Vec::new()
}

/// Per-thread memory of recent creates, for resends and removes.
struct Recent(Vec<(usize, Mode, DispatcherId, TableSpan)>);

/// A request thread: creates, removes, merges, heartbeat responses and block statuses, 15 % of
/// them from the previous owner.
fn requests(sh: &Shared, rng: &mut Rng) -> Vec<Event> {
    let mut log = Vec::new();
    let mut recent = Recent(Vec::new());
    while !sh.stop_traffic.load(Ordering::SeqCst) {
        let cf = rng.below(CHANGEFEEDS as u64) as usize;
        let Some(dm) = sh.orch.manager(&world::changefeed(cf)) else {
            std::thread::yield_now();
            continue;
        };
        sh.requests.fetch_add(1, Ordering::Relaxed);
        // Pace the requests a little, so that on one core the embedder keeps up and dispatchers
        // live long enough to be merged, removed and bootstrapped around.
        if rng.chance(3) {
            std::thread::sleep(Duration::from_micros(20));
        } else {
            std::thread::yield_now();
        }
        let current = sh.owner.epoch.load(Ordering::SeqCst);
        let epoch = if rng.chance(15) && current > 2 { current - 1 } else { current };
        let from = world::maintainer(epoch);
        let mode = if rng.chance(30) { Mode::Redo } else { Mode::Default };
        let action = rng.below(100);
        if action < 45 {
            let (id, span) =
                match recent.0.iter().filter(|r| r.0 == cf && r.1 == mode).nth(rng.below(8) as usize) {
                    Some(r) if rng.chance(25) => (r.2, r.3.clone()),
                    _ => {
                        let id = world::id(sh.next_id.fetch_add(1, Ordering::Relaxed));
                        (id, pick_span(&sh.spans, rng))
                    }
                };
            if recent.0.len() >= 16 {
                recent.0.remove(0);
            }
            recent.0.push((cf, mode, id, span.clone()));
            sh.create_requests.fetch_add(1, Ordering::Relaxed);
            let asked = sh.embedder.clock.tick();
            let step = dm.handle_schedule(
                &from,
                world::schedule(cf, ScheduleAction::Create, mode, id, Some(span.clone()), epoch),
            );
            let at = sh.embedder.clock.tick();
            log.push(Event::Asked { cf, mode, span, at: asked, end: at });
            sh.embedder.submit(&dm, cf, step, at, rng, &mut log);
        } else if action < 72 {
            let target = match recent.0.iter().filter(|r| r.0 == cf).nth(rng.below(16) as usize) {
                Some(r) if rng.chance(50) => Some((r.1, r.2)),
                _ => live(&dm, rng).map(|(m, id, _)| (m, id)),
            };
            let Some((mode, id)) = target else { continue };
            let span = dm.registry().get(mode, id).map(|r| r.span.clone());
            let begin = sh.embedder.clock.tick();
            let step =
                dm.handle_schedule(&from, world::schedule(cf, ScheduleAction::Remove, mode, id, None, epoch));
            let end = sh.embedder.clock.tick();
            let closes = step.effects.iter().any(|e| matches!(e, Effect::Close { id: c, .. } if *c == id));
            if let (true, Some(span)) = (closes, span) {
                log.push(Event::RemoveApplied { key: (cf, mode, id), span, epoch, begin, end });
            }
            sh.embedder.submit(&dm, cf, step, end, rng, &mut log);
        } else if action < 88 {
            let pairs = world::merge_pairs();
            let (a, b) = pairs[rng.below(pairs.len() as u64) as usize];
            let on = |span: &TableSpan| {
                dm.registry().records().into_iter().find(|r| {
                    r.mode == mode
                        && r.span == *span
                        && r.state().phase == RecordPhase::Live
                        && r.state().component == ComponentState::Working
                })
            };
            let (Some(x), Some(y)) = (on(&sh.spans[a]), on(&sh.spans[b])) else { continue };
            let merged = world::id(sh.next_merged.fetch_add(1, Ordering::Relaxed));
            let request = world::merge(cf, mode, vec![x.id, y.id], merged, epoch);
            let copies = if rng.chance(20) { 2 } else { 1 };
            for _ in 0..copies {
                let asked = sh.embedder.clock.tick();
                let step = dm.handle_merge(&from, request.clone());
                let at = sh.embedder.clock.tick();
                log.push(Event::Asked { cf, mode, span: x.span.joined_with(&y.span), at: asked, end: at });
                if step.effects.iter().any(|e| matches!(e, Effect::PrepareMerged { .. })) {
                    log.push(Event::Prepared { key: (cf, mode, merged), at });
                }
                sh.embedder.submit(&dm, cf, step, at, rng, &mut log);
            }
        } else if action < 95 {
            let ids: Vec<_> =
                (0..3).filter_map(|_| live(&dm, rng)).filter(|l| l.0 == mode).map(|l| l.1).collect();
            let influence = if rng.chance(20) { Influence::All } else { Influence::Normal { ids } };
            let event = BarrierEvent { commit_ts: 200, is_sync_point: false };
            let answer = BarrierAnswer {
                influence,
                action: Some(BarrierAction { pass: rng.chance(50), event }),
                ack: Some(event),
                ignored: None,
            };
            let response = HeartBeatResponse {
                changefeed: world::changefeed(cf),
                answers: vec![answer],
                mode,
                epoch: Epoch(epoch),
            };
            let step: Reaction = dm.handle_heartbeat_response(&from, response);
            let at = sh.embedder.clock.tick();
            sh.embedder.submit(&dm, cf, step, at, rng, &mut log);
        } else if let Some((mode, id, _)) = live(&dm, rng) {
            let state = BlockState {
                is_blocked: true,
                block_ts: 200,
                is_sync_point: false,
                stage: BlockStage::Waiting,
                detail: Default::default(),
            };
            let _ = dm.report_block_status(BlockStatus { id, mode, state });
        }
    }
    log
}

/// A span to create: mostly a quarter, so that adjacent quarters are often live together and
/// merges have sources; now and then a half, which overlaps two quarters.
fn pick_span(spans: &[TableSpan], rng: &mut Rng) -> TableSpan {
    let table = rng.below(world::TABLES.len() as u64) as usize * 6;
    let within = if rng.chance(85) { rng.below(4) } else { 4 + rng.below(2) };
    spans[table + within as usize].clone()
}

/// The live dispatchers of `dm`, table triggers aside.
fn live_records(dm: &DispatcherManager) -> Vec<Arc<DispatcherRecord>> {
    dm.registry()
        .records()
        .into_iter()
        .filter(|r| r.state().phase == RecordPhase::Live && !r.span.is_table_trigger())
        .collect()
}

/// A random live dispatcher of `dm`.
fn live(dm: &DispatcherManager, rng: &mut Rng) -> Option<(Mode, DispatcherId, TableSpan)> {
    let records = live_records(dm);
    if records.is_empty() {
        return None;
    }
    let r = &records[rng.below(records.len() as u64) as usize];
    Some((r.mode, r.id, r.span.clone()))
}

/// With the embedder idle: the journals are empty and agree with the registry and the embedder.
fn quiescent_checks(sh: &Shared, when: &str) -> Vec<String> {
    let mut v = Vec::new();
    for cf in 0..CHANGEFEEDS {
        let Some(dm) = sh.orch.manager(&world::changefeed(cf)) else { continue };
        sh.embedder.drop_orphan_closes(cf, &dm);
        v.extend(journal_checks(sh, cf, &dm, when));
        // A complete heartbeat round lists every live dispatcher.
        let mut collector = Collector::new(&dm);
        let listed: HashSet<_> = collector
            .round(&dm, RoundKind::Complete)
            .into_iter()
            .flat_map(|o| o.request.statuses)
            .map(|s| (s.mode, s.id))
            .collect();
        for r in dm.registry().records() {
            if r.state().phase == RecordPhase::Live && !listed.contains(&(r.mode, r.id)) {
                v.push(format!("{when}: cf{cf} a complete heartbeat round omits live {:?} {}", r.mode, r.id));
            }
        }
    }
    v
}

fn journal_checks(sh: &Shared, cf: usize, dm: &DispatcherManager, when: &str) -> Vec<String> {
    let mut v = Vec::new();
    for (key, entry) in dm.operators().entries() {
        let id = entry.id();
        let record = dm.registry().get(key.mode, id).map(|r| (r.incarnation, r.state()));
        v.push(format!(
            "{when}: cf{cf} journal entry left on {:?} {:?}: {:?} of {id} at epoch {:?} from {} (target {}); \
             the registry holds {record:?}; owner epoch {:?}",
            key.mode,
            key.span,
            entry.kind(),
            entry.epoch(),
            entry.from,
            entry.target,
            dm.owner().epoch,
        ));
    }
    for entry in dm.merges().entries() {
        v.push(format!("{when}: cf{cf} merge left: {:?} in {:?}", entry.request, entry.phase()));
    }
    let running: HashSet<_> =
        sh.embedder.running(cf).into_iter().filter(|r| r.2).map(|r| (r.0, r.1)).collect();
    for (mode, id, built) in sh.embedder.running(cf) {
        if !built {
            v.push(format!(
                "{when}: cf{cf} the embedder holds a Close for {mode:?} {id}, which never got built"
            ));
        }
    }
    let mut live = HashSet::new();
    for r in dm.registry().records() {
        let s = r.state();
        match s.phase {
            RecordPhase::Live => {
                live.insert((r.mode, r.id));
                if s.removing
                    || s.drained
                    || (s.component != ComponentState::Working && !r.span.is_table_trigger())
                {
                    v.push(format!("{when}: cf{cf} {:?} {} is live but {:?}", r.mode, r.id, s));
                }
            }
            RecordPhase::Creating => {
                v.push(format!("{when}: cf{cf} {:?} {} is still creating", r.mode, r.id))
            }
            _ => {}
        }
    }
    for k in running.difference(&live) {
        v.push(format!(
            "{when}: cf{cf} the embedder runs {:?} {}, which the registry does not hold live",
            k.0, k.1
        ));
    }
    for k in live.difference(&running) {
        v.push(format!(
            "{when}: cf{cf} the registry holds {:?} {} live, which the embedder does not run",
            k.0, k.1
        ));
    }
    v
}

/// The last owner removes every dispatcher (or closes the changefeed), until nothing is left.
fn drain(
    sh: &Shared,
    cf: usize,
    dm: &Arc<DispatcherManager>,
    epoch: u64,
    close_all: bool,
    rng: &mut Rng,
    log: &mut Vec<Event>,
) {
    let from = world::maintainer(epoch);
    for _ in 0..20 {
        if close_all {
            let step = sh.orch.handle_close(&from, &world::close(cf, epoch));
            let done = step
                .effects
                .iter()
                .any(|e| matches!(e, Effect::Reply { reply: Reply::Close(r), .. } if r.success));
            let at = sh.embedder.clock.tick();
            sh.embedder.submit(dm, cf, step, at, rng, log);
            quiesce(sh.embedder);
            if done {
                return;
            }
        } else {
            let targets = live_records(dm);
            if targets.is_empty() {
                return;
            }
            for r in targets {
                let step = dm.handle_schedule(
                    &from,
                    world::schedule(cf, ScheduleAction::Remove, r.mode, r.id, None, epoch),
                );
                let at = sh.embedder.clock.tick();
                sh.embedder.submit(dm, cf, step, at, rng, log);
            }
            quiesce(sh.embedder);
        }
    }
}

fn drained_checks(sh: &Shared, managers: &[Option<Arc<DispatcherManager>>], close_all: bool) -> Vec<String> {
    let mut v = Vec::new();
    for (cf, dm) in managers.iter().enumerate() {
        let Some(dm) = dm else { continue };
        let when = if close_all { "after closing the changefeed" } else { "after removing everything" };
        v.extend(journal_checks(sh, cf, dm, when));
        let left: Vec<_> = dm
            .registry()
            .records()
            .into_iter()
            .filter(|r| r.state().is_alive() && (close_all || !r.span.is_table_trigger()))
            .map(|r| (r.mode, r.id))
            .collect();
        if !left.is_empty() {
            v.push(format!("{when}: cf{cf} still holds {left:?}"));
        }
        if close_all && sh.orch.manager(&world::changefeed(cf)).is_some() {
            v.push(format!("{when}: cf{cf} the manager never closed"));
        }
    }
    v
}
