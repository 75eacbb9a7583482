//! Focused loops: one race of issue 15, set up single-threaded, its threads released together
//! by a barrier, checked after they join; many times over.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use dispatcher_core::ids::{ChangefeedId, DispatcherId, Epoch, Mode, NodeId};
use dispatcher_core::messages::{
    BootstrapRequest, ComponentState, DispatcherConfig, MergeRequest, OperatorType, Order, ScheduleAction,
    ScheduleRequest,
};
use dispatcher_core::mutation::Mutations;
use dispatcher_core::node::RecordPhase;
use dispatcher_core::node::{CreateTicket, DispatcherManager, Effect, ManagerConfig, Outcome, Reaction};
use dispatcher_core::span::TableSpan;

use crate::world::{id, maintainer};

/// The races, by the name `--focus` takes.
pub const RACES: [&str; 7] = [
    "bootstrap-twice",
    "self-close-merge",
    "undo-remove-merged",
    "refused-merge-remove",
    "remove-resend",
    "duplicate-close",
    "block-reports",
];

/// What a focused loop found.
pub struct Found {
    pub iterations: u64,
    pub failures: u64,
    pub first: Option<(u64, Duration, String)>,
}

pub fn run(race: &str, iterations: u64, mutation: Mutations, stop_at_first: bool) -> Result<Found, String> {
    let once: fn(Mutations) -> Option<String> = match race {
        "bootstrap-twice" => bootstrap_twice,
        "self-close-merge" => self_close_merge,
        "undo-remove-merged" => undo_remove_merged,
        "refused-merge-remove" => refused_merge_remove,
        "remove-resend" => remove_resend,
        "duplicate-close" => duplicate_close,
        "block-reports" => block_reports,
        other => return Err(format!("unknown race {other}; one of {}", RACES.join(", "))),
    };
    let started = Instant::now();
    let mut found = Found { iterations: 0, failures: 0, first: None };
    for i in 0..iterations {
        found.iterations += 1;
        if let Some(why) = once(mutation) {
            found.failures += 1;
            if found.first.is_none() {
                found.first = Some((i, started.elapsed(), why));
            }
            if stop_at_first {
                break;
            }
        }
    }
    Ok(found)
}

fn span(a: &[u8], b: &[u8]) -> TableSpan {
    TableSpan::new(0, 1, a.to_vec(), b.to_vec()).expect("a valid span")
}

fn manager(mutation: Mutations) -> Arc<DispatcherManager> {
    let dm = DispatcherManager::new(ManagerConfig {
        node: NodeId::new("n1"),
        changefeed: ChangefeedId::default(),
        keyspace_id: 0,
        redo_enabled: false,
    })
    .mutated(mutation);
    let _ = dm.handle_bootstrap(&maintainer(2), &bootstrap(2));
    Arc::new(dm)
}

fn bootstrap(epoch: u64) -> BootstrapRequest {
    BootstrapRequest { start_ts: 1, epoch: Epoch(epoch), ..BootstrapRequest::default() }
}

fn request(d: DispatcherId, action: ScheduleAction, span: TableSpan, start: u64) -> ScheduleRequest {
    ScheduleRequest {
        changefeed: ChangefeedId::default(),
        config: DispatcherConfig {
            id: d,
            mode: Mode::Default,
            start_ts: start,
            schema_id: 1,
            skip_dml_as_start_ts: false,
        },
        order: Order::new(action, Some(span)).expect("a span is given"),
        operator_type: OperatorType::Add,
        epoch: Epoch(2),
    }
}

fn create(dm: &DispatcherManager, d: DispatcherId, s: TableSpan, start: u64) -> Option<CreateTicket> {
    let step = dm.handle_schedule(&maintainer(2), request(d, ScheduleAction::Create, s, start));
    step.effects.into_iter().find_map(|e| if let Effect::Create(t) = e { Some(t) } else { None })
}

fn remove(dm: &DispatcherManager, d: DispatcherId) -> Reaction {
    dm.handle_schedule(&maintainer(2), request(d, ScheduleAction::Remove, span(b"a", b"z"), 0))
}

/// Dispatchers 1 (a..m) and 2 (m..z), live and working.
fn two_working(dm: &DispatcherManager) {
    for (d, s) in [(id(1), span(b"a", b"m")), (id(2), span(b"m", b"z"))] {
        dm.commit_create(&create(dm, d, s, 100).expect("a ticket")).expect("commits");
        let _ = dm.dispatcher_state_changed(d, Mode::Default, ComponentState::Working, 120);
    }
}

fn merge_request() -> MergeRequest {
    MergeRequest {
        changefeed: ChangefeedId::default(),
        sources: vec![id(1), id(2)],
        merged: id(3),
        mode: Mode::Default,
        epoch: Epoch(2),
    }
}

/// Runs `ops` on their own threads, released together.
fn race<T: Send>(ops: Vec<Box<dyn FnOnce() -> T + Send + '_>>) -> Vec<T> {
    let barrier = Barrier::new(ops.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = ops
            .into_iter()
            .map(|op| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    op()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a racing thread panicked")).collect()
    })
}

/// The embedder after the race: every close and drain asked for is done, started merged
/// dispatchers report Working, until nothing more is asked. Returns whether a merged
/// dispatcher started.
fn settle(dm: &DispatcherManager, mut effects: Vec<Effect>) -> bool {
    let mut started = false;
    let mut i = 0;
    while i < effects.len() {
        let more = match &effects[i] {
            Effect::Close { id, mode } => dm.dispatcher_closed(*id, *mode, 130, None).effects,
            Effect::CloseMergeSources { sources, mode, .. } => {
                sources.iter().flat_map(|s| dm.dispatcher_closed(*s, *mode, 130, None).effects).collect()
            }
            Effect::StartMerged { id, mode, .. } => {
                started = true;
                dm.dispatcher_state_changed(*id, *mode, ComponentState::Working, 130).effects
            }
            _ => Vec::new(),
        };
        effects.extend(more);
        i += 1;
    }
    started
}

fn lists(step: &Reaction, d: DispatcherId) -> bool {
    step.bootstrap_response().is_some_and(|r| r.spans.iter().any(|s| s.id == d))
}

/// Fault 1: two bootstraps of one new owner against the commit of an older owner's create.
fn bootstrap_twice(m: Mutations) -> Option<String> {
    let dm = manager(m);
    let ticket = create(&dm, id(1), span(b"a", b"m"), 100)?;
    let (a, b, c) = (dm.clone(), dm.clone(), dm.clone());
    let out = race::<(Option<Reaction>, bool)>(vec![
        Box::new(move || (Some(a.handle_bootstrap(&maintainer(3), &bootstrap(3))), false)),
        Box::new(move || (Some(b.handle_bootstrap(&maintainer(3), &bootstrap(3))), false)),
        Box::new(move || (None, c.commit_create(&ticket).is_ok())),
    ]);
    let executed = out[2].1;
    for step in out.iter().filter_map(|o| o.0.as_ref()) {
        if step.outcome == Outcome::Applied && executed && !lists(step, id(1)) {
            return Some("the old owner's create executed but a bootstrap answer omits it (I12)".into());
        }
    }
    None
}

/// Fault 2: the merged dispatcher turning MergeReady against a source closing on its own.
fn self_close_merge(m: Mutations) -> Option<String> {
    let dm = manager(m);
    two_working(&dm);
    if dm.handle_merge(&maintainer(2), merge_request()).outcome != Outcome::Applied {
        return Some("the merge was not taken up".into());
    }
    let (a, b) = (dm.clone(), dm.clone());
    let steps = race::<Reaction>(vec![
        Box::new(move || a.dispatcher_state_changed(id(3), Mode::Default, ComponentState::MergeReady, 0)),
        Box::new(move || b.dispatcher_closed(id(1), Mode::Default, 130, None)),
    ]);
    let started = settle(&dm, steps.into_iter().flat_map(|s| s.effects).collect());
    if !dm.merges().is_empty() {
        return Some(format!("the merge is stranded in {:?}", dm.merges().entries()[0].phase()));
    }
    if !dm.operators().is_empty() {
        return Some("a journal entry is left".into());
    }
    let records = dm.registry().records();
    let live: Vec<_> =
        records.iter().filter(|r| r.state().phase == RecordPhase::Live).map(|r| r.id).collect();
    if started && live != vec![id(3)] {
        return Some(format!("the merged dispatcher started beside {live:?}"));
    }
    None
}

/// Fault 3: a merge request undone (a source removed while it parks them) against a Remove of
/// its merged id.
fn undo_remove_merged(m: Mutations) -> Option<String> {
    let dm = manager(m);
    two_working(&dm);
    let (a, b) = (dm.clone(), dm.clone());
    let steps = race::<Vec<Reaction>>(vec![
        Box::new(move || vec![a.handle_merge(&maintainer(2), merge_request())]),
        Box::new(move || vec![remove(&b, id(3)), remove(&b, id(1))]),
    ]);
    settle(&dm, steps.into_iter().flatten().flat_map(|s| s.effects).collect());
    if dm.merges().is_empty()
        && dm.registry().get_alive(Mode::Default, id(3)).is_none()
        && !dm.operators().is_empty()
    {
        let (key, entry) = &dm.operators().entries()[0];
        return Some(format!("a journal entry outlived the merge: {:?} on {:?}", entry.kind(), key.span));
    }
    None
}

/// Issue 16, stress seed 105: a merge refused by its reservation (merged dispatcher 4 of an
/// aborted merge still holds the span, its Close not yet run) against a Remove of the refused
/// merge's id. The reservation claims the id before it checks the span; a Remove that finds the
/// record in that moment replaces the merge's journal entry, and nothing would ever finish it.
/// The Remove starts after a spin that varies from one iteration to the next, so that over a run
/// it lands all along the merge's path.
fn refused_merge_remove(m: Mutations) -> Option<String> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static ITERATION: AtomicU64 = AtomicU64::new(0);
    let spins = ITERATION.fetch_add(1, Ordering::Relaxed) % 512;
    let dm = manager(m);
    two_working(&dm);
    let first = MergeRequest { merged: id(4), ..merge_request() };
    if dm.handle_merge(&maintainer(2), first).outcome != Outcome::Applied {
        return Some("the first merge was not taken up".into());
    }
    let _ = dm.dispatcher_state_changed(id(1), Mode::Default, ComponentState::Working, 120);
    let aborted = dm.dispatcher_state_changed(id(4), Mode::Default, ComponentState::MergeReady, 0);
    let (a, b) = (dm.clone(), dm.clone());
    let steps = race::<Reaction>(vec![
        Box::new(move || a.handle_merge(&maintainer(2), merge_request())),
        Box::new(move || {
            for _ in 0..spins {
                std::hint::spin_loop();
            }
            remove(&b, id(3))
        }),
    ]);
    settle(&dm, aborted.effects.into_iter().chain(steps.into_iter().flat_map(|s| s.effects)).collect());
    if dm.registry().get_alive(Mode::Default, id(3)).is_none() && !dm.operators().is_empty() {
        let (key, entry) = &dm.operators().entries()[0];
        return Some(format!(
            "a journal entry outlived the refused merge: {:?} (target {}) on {:?}",
            entry.kind(),
            entry.target,
            key.span
        ));
    }
    // The owner removed the merged id: a late copy of the request must not start it (I2).
    let late = dm.handle_merge(&maintainer(2), merge_request());
    if late.effects.iter().any(|e| matches!(e, Effect::PrepareMerged { .. })) {
        return Some("a late copy of the merge request was taken up after its merged id was removed".into());
    }
    None
}

/// Fault 4: a resent Remove of X against X's close and a create of another dispatcher on X's span.
fn remove_resend(m: Mutations) -> Option<String> {
    let dm = manager(m);
    let s = span(b"a", b"m");
    dm.commit_create(&create(&dm, id(1), s.clone(), 100)?).ok()?;
    let first = remove(&dm, id(1));
    if !first.effects.iter().any(|e| matches!(e, Effect::Close { .. })) {
        return Some("the first Remove asked for no close".into());
    }
    let (a, b) = (dm.clone(), dm.clone());
    let out = race::<Option<CreateTicket>>(vec![
        Box::new(move || {
            let _ = remove(&a, id(1));
            None
        }),
        Box::new(move || {
            let _ = b.dispatcher_closed(id(1), Mode::Default, 150, None);
            create(&b, id(2), s, 150)
        }),
    ]);
    if out[1].is_some() {
        // Creating, not yet committed: a re-bootstrap of the same owner must report it.
        let again = dm.handle_bootstrap(&maintainer(2), &bootstrap(2));
        let reported =
            again.bootstrap_response().is_some_and(|r| r.operators.iter().any(|o| o.config.id == id(2)));
        if !reported {
            return Some(
                "the new create lost its journal entry: a same-owner re-bootstrap does not report it".into(),
            );
        }
    }
    None
}

/// Fault 5 (single-threaded): a duplicate close report of a drained source.
fn duplicate_close(m: Mutations) -> Option<String> {
    let dm = manager(m);
    two_working(&dm);
    let _ = dm.handle_merge(&maintainer(2), merge_request());
    let ready = dm.dispatcher_state_changed(id(3), Mode::Default, ComponentState::MergeReady, 0);
    if !ready.effects.iter().any(|e| matches!(e, Effect::CloseMergeSources { .. })) {
        return Some("the merge did not begin draining".into());
    }
    let first = dm.dispatcher_closed(id(1), Mode::Default, 130, None);
    let again = dm.dispatcher_closed(id(1), Mode::Default, 130, None);
    let started =
        [first, again].iter().flat_map(|s| &s.effects).any(|e| matches!(e, Effect::StartMerged { .. }));
    if started {
        return Some(
            "the merged dispatcher starts while source 2 still runs (I2): the duplicate report counted"
                .into(),
        );
    }
    None
}

/// The block-event word (barrier): a dispatcher done with the event at 10 meets the one at 20 and
/// reports WAITING, WRITING and DONE for it, while a regenerated DONE for 10 (an old Pass resent)
/// and a late WAITING resend for 20 land from other threads, and a new owner's bootstrap reads
/// the word. The snapshot never shows the event at 10 once 20 was noted before it started, and
/// the word ends on 20's DONE (B17).
fn block_reports(m: Mutations) -> Option<String> {
    use dispatcher_core::messages::{BlockDetail, BlockStage, BlockState, BlockStatus};
    let dm = manager(m);
    let ticket = create(&dm, id(1), span(b"a", b"m"), 100)?;
    dm.commit_create(&ticket).ok()?;
    let at = |ts: u64, stage: BlockStage| BlockStatus {
        id: id(1),
        mode: Mode::Default,
        state: BlockState {
            is_blocked: stage != BlockStage::Done,
            block_ts: ts,
            is_sync_point: false,
            stage,
            detail: Arc::new(BlockDetail::default()),
        },
    };
    let _ = dm.report_block_status(at(10, BlockStage::Done));
    let (a, b, c, d) = (dm.clone(), dm.clone(), dm.clone(), dm.clone());
    let out = race::<Option<(bool, Option<u64>)>>(vec![
        Box::new(move || {
            for stage in [BlockStage::Waiting, BlockStage::Writing, BlockStage::Done] {
                let _ = a.report_block_status(at(20, stage));
            }
            None
        }),
        Box::new(move || {
            let _ = b.report_block_status(at(10, BlockStage::Done));
            None
        }),
        Box::new(move || {
            let _ = c.report_block_status(at(20, BlockStage::Waiting));
            None
        }),
        Box::new(move || {
            // Whether 20 was noted before the snapshot began, and what the snapshot carries.
            let before = d
                .registry()
                .get_alive(Mode::Default, id(1))
                .and_then(|r| r.barrier_state())
                .is_some_and(|s| s.block_ts == 20);
            let step = d.handle_bootstrap(&maintainer(3), &bootstrap(3));
            let ts = step
                .bootstrap_response()?
                .spans
                .iter()
                .find(|s| s.id == id(1))?
                .block
                .as_ref()
                .map(|b| b.block_ts);
            Some((before, ts))
        }),
    ]);
    if let Some(Some((true, Some(10)))) = out.get(3) {
        return Some("the snapshot went back to the event at 10 after 20 was noted (B17)".into());
    }
    let end = dm.registry().get_alive(Mode::Default, id(1)).and_then(|r| r.barrier_state());
    match end {
        Some(s) if s.block_ts == 20 && s.stage == BlockStage::Done => None,
        other => Some(format!("the word ends on {:?}, not 20's DONE", other.map(|s| (s.block_ts, s.stage)))),
    }
}
