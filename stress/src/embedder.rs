//! The embedder: runs what the node core asks for, a little later, from two threads.
//!
//! Like a real embedder it serializes its callbacks per dispatcher (one lock shard per key) and
//! may run the work of different dispatchers in any order and on any thread. It keeps its own
//! table of the dispatchers it runs and which of them write, and checks I2 on every start: no two
//! writing dispatchers of one changefeed and mode overlap.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_queue::SegQueue;
use dispatcher_core::ids::{DispatcherId, Mode, Ts};
use dispatcher_core::messages::{ComponentState, RunningError};
use dispatcher_core::node::{DispatcherManager, Effect, Outcome, Reaction};
use dispatcher_core::span::TableSpan;

use crate::history::{Clock, Event, Key};
use crate::world::Rng;

/// Which embedder misbehaviours a run allows (all are tolerated by the core's contract).
#[derive(Clone, Copy, Debug, Default)]
pub struct Quirks {
    /// Dispatchers close on their own now and then (an error, a dropped table).
    pub self_close: bool,
    /// Close reports are repeated at once, and some again later.
    pub duplicate_closes: bool,
}

/// One thing to do, not before `due`.
pub struct Item {
    pub due: Instant,
    pub dm: Arc<DispatcherManager>,
    pub cf: usize,
    pub work: Work,
}

#[allow(clippy::large_enum_variant)] // queued by value; boxing buys nothing here
pub enum Work {
    /// An effect of a core call; `issued` is the log position just after that call returned.
    Effect { effect: Effect, issued: u64 },
    /// The dispatcher caught up: report Working.
    Working(Mode, DispatcherId),
    /// The merged dispatcher's upstream is ready: report MergeReady.
    MergeReady(Mode, DispatcherId),
    /// The dispatcher closes on its own.
    SelfClose(Mode, DispatcherId),
    /// A late copy of a close report already made.
    LateClose(Mode, DispatcherId, Ts),
}

/// The embedder's own view: what runs, and what ran and closed (so that a Close arriving after a
/// dispatcher closed on its own is not mistaken for one arriving before it was built).
#[derive(Default)]
struct Table {
    running: HashMap<Key, Running>,
    gone: std::collections::HashSet<Key>,
}

impl Table {
    /// Forgets a Close held for `key` that was never built. True if there was one.
    fn forget_unbuilt(&mut self, key: &Key) -> bool {
        let held = self.running.get(key).is_some_and(|r| !r.built);
        if held {
            self.running.remove(key);
        }
        held
    }
}

#[derive(Clone, Debug)]
struct Running {
    span: TableSpan,
    start: Ts,
    /// Built (committed, or prepared as a merged dispatcher). False: a Close came first and the
    /// dispatcher is closed as soon as it is built.
    built: bool,
    writing: bool,
}

/// Counts for the run report.
#[derive(Default)]
pub struct Stats {
    pub commits: AtomicU64,
    pub withdrawn: AtomicU64,
    pub failed: AtomicU64,
    pub closes: AtomicU64,
    pub duplicate_closes: AtomicU64,
    pub merges_started: AtomicU64,
    pub i2_checks: AtomicU64,
    pub reports: AtomicU64,
    pub barriers: AtomicU64,
    pub orphan_closes: AtomicU64,
}

pub struct Embedder {
    pub clock: Clock,
    pub stats: Stats,
    pub quirks: Quirks,
    queue: SegQueue<Item>,
    /// Items submitted and not yet done (a done item's follow-ups are counted first).
    pending: AtomicU64,
    shards: Vec<Mutex<()>>,
    table: Mutex<Table>,
    violations: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Embedder {
    pub fn new(quirks: Quirks) -> Self {
        Self {
            clock: Clock::default(),
            stats: Stats::default(),
            quirks,
            queue: SegQueue::new(),
            pending: AtomicU64::new(0),
            shards: (0..64).map(|_| Mutex::new(())).collect(),
            table: Mutex::new(Table::default()),
            violations: Mutex::new(Vec::new()),
        }
    }

    pub fn violation(&self, v: String) {
        lock(&self.violations).push(v);
    }

    pub fn take_violations(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.violations))
    }

    pub fn is_idle(&self) -> bool {
        self.pending.load(Ordering::SeqCst) == 0
    }

    /// The dispatchers of `cf` the embedder runs, and placeholders for closes that came first.
    pub fn running(&self, cf: usize) -> Vec<(Mode, DispatcherId, bool)> {
        lock(&self.table)
            .running
            .iter()
            .filter(|(k, _)| k.0 == cf)
            .map(|(k, r)| (k.1, k.2, r.built))
            .collect()
    }

    /// Drops the closes held for dispatchers never built whose id `dm` no longer knows: a Remove
    /// that crossed a merge request being undone asked to close a merged dispatcher that will
    /// never be prepared (the contract of `Effect::Close`). Returns how many went.
    pub fn drop_orphan_closes(&self, cf: usize, dm: &DispatcherManager) -> u64 {
        let keys: Vec<Key> = lock(&self.table)
            .running
            .iter()
            .filter(|(k, r)| k.0 == cf && !r.built)
            .map(|(k, _)| *k)
            .collect();
        let mut dropped = 0;
        for key in keys {
            let _guard = self.shard(&key);
            if dm.registry().get(key.1, key.2).is_some() {
                continue;
            }
            if lock(&self.table).forget_unbuilt(&key) {
                dropped += 1;
            }
        }
        self.stats.orphan_closes.fetch_add(dropped, Ordering::Relaxed);
        dropped
    }

    fn shard(&self, key: &Key) -> MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        lock(&self.shards[(h.finish() % self.shards.len() as u64) as usize])
    }

    fn push(&self, item: Item) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        self.queue.push(item);
    }

    /// Hands over the effects of a core call that returned at log position `issued`: work on
    /// dispatchers is queued 0-200 µs ahead; a start or resume is a state change of the
    /// embedder itself and happens now.
    pub fn submit(
        &self,
        dm: &Arc<DispatcherManager>,
        cf: usize,
        step: Reaction,
        issued: u64,
        rng: &mut Rng,
        _log: &mut Vec<Event>,
    ) {
        for effect in step.effects {
            match effect {
                Effect::Create(_)
                | Effect::Close { .. }
                | Effect::CloseMergeSources { .. }
                | Effect::PrepareMerged { .. } => {
                    let due = Instant::now() + Duration::from_micros(rng.below(200));
                    self.push(Item { due, dm: dm.clone(), cf, work: Work::Effect { effect, issued } });
                }
                Effect::StartMerged { id, mode, start_ts, .. } => {
                    self.start_merged(dm, cf, mode, id, start_ts, rng)
                }
                Effect::Report(_) | Effect::ReportError(_) => {
                    self.stats.reports.fetch_add(1, Ordering::Relaxed);
                }
                Effect::DeliverBarrier { .. } => {
                    self.stats.barriers.fetch_add(1, Ordering::Relaxed);
                }
                // Sources stay attached until a drain closes them; nothing to do.
                Effect::ResumeSource { .. } => {}
                _ => {}
            }
        }
    }

    fn later(&self, dm: &Arc<DispatcherManager>, cf: usize, work: Work, rng: &mut Rng) {
        let due = Instant::now() + Duration::from_micros(rng.below(200));
        self.push(Item { due, dm: dm.clone(), cf, work });
    }

    /// One embedder thread: runs due items until `stop` says so and nothing is pending.
    pub fn run(&self, stop: &std::sync::atomic::AtomicBool, rng: &mut Rng) -> Vec<Event> {
        let mut log = Vec::new();
        let mut local: Vec<Item> = Vec::new();
        loop {
            while local.len() < 32 {
                match self.queue.pop() {
                    Some(item) => local.push(item),
                    None => break,
                }
            }
            let now = Instant::now();
            let mut did = false;
            let mut i = 0;
            while i < local.len() {
                if local[i].due <= now {
                    let item = local.swap_remove(i);
                    self.execute(item, rng, &mut log);
                    self.pending.fetch_sub(1, Ordering::SeqCst);
                    did = true;
                } else {
                    i += 1;
                }
            }
            if !did {
                if local.is_empty() && stop.load(Ordering::SeqCst) {
                    return log;
                }
                std::thread::yield_now();
            }
        }
    }

    fn execute(&self, item: Item, rng: &mut Rng, log: &mut Vec<Event>) {
        let Item { dm, cf, work, .. } = item;
        match work {
            Work::Effect { effect, issued } => match effect {
                Effect::Create(ticket) => {
                    let key = (cf, ticket.mode(), ticket.id());
                    let guard = self.shard(&key);
                    if rng.chance(2) && !ticket.spec().span.is_table_trigger() {
                        self.stats.failed.fetch_add(1, Ordering::Relaxed);
                        let error = RunningError {
                            code: "stress".into(),
                            message: "build failed".into(),
                            ..RunningError::default()
                        };
                        let step = dm.create_failed(&ticket, error);
                        drop(guard);
                        let at = self.clock.tick();
                        return self.submit(&dm, cf, step, at, rng, log);
                    }
                    let begin = self.clock.tick();
                    match dm.commit_create(&ticket) {
                        Ok(_) => {
                            let end = self.clock.tick();
                            self.stats.commits.fetch_add(1, Ordering::Relaxed);
                            let spec = ticket.spec();
                            if let Some(a) = &spec.admission {
                                log.push(Event::Committed { key, epoch: a.epoch.0, issued, begin, end });
                            }
                            let close_first = self.build(key, spec.span.clone(), spec.start_ts, true);
                            drop(guard);
                            if close_first {
                                self.close(&dm, key, rng, log);
                            } else {
                                self.later(&dm, cf, Work::Working(key.1, key.2), rng);
                                if self.quirks.self_close && rng.chance(4) && !spec.span.is_table_trigger() {
                                    self.later(&dm, cf, Work::SelfClose(key.1, key.2), rng);
                                }
                            }
                        }
                        Err(_) => {
                            // A Close held for this create is moot: nothing was built. Keeping
                            // it would close a later create of the same id (a resend).
                            lock(&self.table).forget_unbuilt(&key);
                            drop(guard);
                            self.stats.withdrawn.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Effect::PrepareMerged { spec, .. } => {
                    let key = (cf, spec.mode, spec.id);
                    let guard = self.shard(&key);
                    let close_first = self.build(key, spec.span.clone(), spec.start_ts, false);
                    drop(guard);
                    if close_first {
                        self.close(&dm, key, rng, log);
                    } else {
                        self.later(&dm, cf, Work::MergeReady(key.1, key.2), rng);
                    }
                }
                Effect::Close { id, mode } => self.close(&dm, (cf, mode, id), rng, log),
                Effect::CloseMergeSources { mode, sources, .. } => {
                    for s in sources {
                        self.close(&dm, (cf, mode, s), rng, log);
                    }
                }
                _ => {}
            },
            Work::Working(mode, id) => self.state(&dm, (cf, mode, id), ComponentState::Working, rng, log),
            Work::MergeReady(mode, id) => {
                self.state(&dm, (cf, mode, id), ComponentState::MergeReady, rng, log)
            }
            Work::SelfClose(mode, id) => {
                let known = lock(&self.table).running.get(&(cf, mode, id)).is_some_and(|r| r.built);
                if known {
                    self.close(&dm, (cf, mode, id), rng, log);
                }
            }
            Work::LateClose(mode, id, ckpt) => {
                let key = (cf, mode, id);
                let _guard = self.shard(&key);
                // Only while no dispatcher of this id runs here: the report carries no
                // incarnation, so an embedder must not send one that could name a newer one.
                if lock(&self.table).running.contains_key(&key) {
                    return;
                }
                self.stats.duplicate_closes.fetch_add(1, Ordering::Relaxed);
                let step = dm.dispatcher_closed(id, mode, ckpt, None);
                if step.outcome == Outcome::Applied && !step.effects.is_empty() {
                    self.violation(format!("a late close report of cf{cf} {mode:?} {id}, which no longer runs, changed something: {:?}", step.effects));
                }
            }
        }
    }

    /// Registers a built dispatcher. Returns true when a Close for it came first.
    fn build(&self, key: Key, span: TableSpan, start: Ts, writing: bool) -> bool {
        let mut table = lock(&self.table);
        table.gone.remove(&key);
        if let Some(r) = table.running.get(&key) {
            if !r.built {
                table.running.insert(key, Running { span, start, built: true, writing: false });
                return true;
            }
            drop(table);
            self.violation(format!("cf{} {:?} {} built twice", key.0, key.1, key.2));
            return false;
        }
        if writing {
            self.check_i2(&table.running, key, &span);
        }
        table.running.insert(key, Running { span, start, built: true, writing });
        false
    }

    fn check_i2(&self, table: &HashMap<Key, Running>, key: Key, span: &TableSpan) {
        self.stats.i2_checks.fetch_add(1, Ordering::Relaxed);
        if span.is_table_trigger() {
            return;
        }
        for (k, r) in table.iter() {
            if k.0 == key.0 && k.1 == key.1 && k.2 != key.2 && r.writing && r.span.overlaps(span) {
                self.violation(format!(
                    "I2: cf{} {:?} {} starts writing {:?} while {} still writes {:?}",
                    key.0, key.1, key.2, span, k.2, r.span
                ));
            }
        }
    }

    fn start_merged(
        &self,
        dm: &Arc<DispatcherManager>,
        cf: usize,
        mode: Mode,
        id: DispatcherId,
        start: Ts,
        rng: &mut Rng,
    ) {
        let key = (cf, mode, id);
        let guard = self.shard(&key);
        {
            let mut table = lock(&self.table);
            let Some(r) = table.running.get(&key).cloned() else {
                // A Remove of the merged dispatcher can cross its hand-over: its Close may run
                // first, and then there is nothing left to start.
                if table.gone.contains(&key) {
                    return;
                }
                drop(table);
                drop(guard);
                return self
                    .violation(format!("StartMerged of cf{cf} {mode:?} {id}, which was never prepared"));
            };
            self.check_i2(&table.running, key, &r.span);
            table.running.insert(key, Running { writing: true, start, ..r });
        }
        drop(guard);
        self.stats.merges_started.fetch_add(1, Ordering::Relaxed);
        self.later(dm, cf, Work::Working(mode, id), rng);
    }

    fn state(
        &self,
        dm: &Arc<DispatcherManager>,
        key: Key,
        state: ComponentState,
        rng: &mut Rng,
        log: &mut Vec<Event>,
    ) {
        let guard = self.shard(&key);
        let Some(r) = lock(&self.table).running.get(&key).cloned() else { return };
        if !r.built {
            return;
        }
        let step = dm.dispatcher_state_changed(key.2, key.1, state, r.start + 1);
        drop(guard);
        let at = self.clock.tick();
        self.submit(dm, key.0, step, at, rng, log);
    }

    /// Stops a dispatcher and reports it closed (or remembers the close for when it is built).
    fn close(&self, dm: &Arc<DispatcherManager>, key: Key, rng: &mut Rng, log: &mut Vec<Event>) {
        let guard = self.shard(&key);
        let running = {
            let mut table = lock(&self.table);
            match table.running.get(&key).cloned() {
                Some(r) if r.built => {
                    table.running.remove(&key);
                    table.gone.insert(key);
                    Some(r)
                }
                Some(_) => None,
                // Closed already (on its own): nothing to do.
                None if table.gone.contains(&key) => None,
                // Not built yet (a merged dispatcher whose PrepareMerged is still queued).
                None => {
                    let placeholder =
                        Running { span: TableSpan::table_trigger(0), start: 0, built: false, writing: false };
                    table.running.insert(key, placeholder);
                    None
                }
            }
        };
        let Some(r) = running else { return };
        let ckpt = r.start + rng.below(3);
        self.stats.closes.fetch_add(1, Ordering::Relaxed);
        let at = self.clock.tick();
        let mut steps = vec![dm.dispatcher_closed(key.2, key.1, ckpt, None)];
        log.push(Event::Closed { key, at, end: self.clock.tick() });
        if self.quirks.duplicate_closes {
            if rng.chance(30) {
                self.stats.duplicate_closes.fetch_add(1, Ordering::Relaxed);
                steps.push(dm.dispatcher_closed(key.2, key.1, ckpt, None));
            }
            if rng.chance(20) {
                self.later(dm, key.0, Work::LateClose(key.1, key.2, ckpt), rng);
            }
        }
        drop(guard);
        let at = self.clock.tick();
        for step in steps {
            self.submit(dm, key.0, step, at, rng, log);
        }
    }
}
