//! Scheduling requests and callbacks: the epoch fence (I1), the operator journal (I12) and the
//! reference's races (R1, R4, R6, R9, each stated at its test).

use dispatcher_core::ids::{ChangefeedId, DispatcherId, Epoch, Mode, NodeId};
use dispatcher_core::messages::*;
use dispatcher_core::node::*;
use dispatcher_core::span::TableSpan;

pub fn mt() -> NodeId {
    NodeId::new("mt")
}

pub fn id(n: u64) -> DispatcherId {
    DispatcherId::new(0, n).unwrap()
}

pub fn span(table: i64, a: &[u8], b: &[u8]) -> TableSpan {
    TableSpan::new(0, table, a.to_vec(), b.to_vec()).unwrap()
}

/// Node `n1` of the default changefeed.
pub fn config(redo_enabled: bool) -> ManagerConfig {
    ManagerConfig {
        node: NodeId::new("n1"),
        changefeed: ChangefeedId::default(),
        keyspace_id: 0,
        redo_enabled,
    }
}

/// A manager bootstrapped by `mt` at epoch 2, redo enabled and ready.
pub fn manager() -> DispatcherManager {
    let dm = DispatcherManager::new(config(true));
    dm.mark_redo_ready();
    let step = dm.handle_bootstrap(&mt(), &bootstrap_request(2, None));
    assert_eq!(step.outcome, Outcome::Applied);
    dm
}

/// A manager bootstrapped by `mt` at epoch 2, redo enabled but not ready.
pub fn redo_not_ready() -> DispatcherManager {
    let dm = DispatcherManager::new(config(true));
    let _ = dm.handle_bootstrap(&mt(), &bootstrap_request(2, None));
    dm
}

pub fn bootstrap_request(epoch: u64, trigger: Option<DispatcherId>) -> BootstrapRequest {
    BootstrapRequest { start_ts: 10, trigger, epoch: Epoch(epoch), ..BootstrapRequest::default() }
}

pub fn create(d: DispatcherId, s: TableSpan, mode: Mode, epoch: u64) -> ScheduleRequest {
    create_at(d, s, mode, epoch, 100)
}

pub fn create_at(d: DispatcherId, s: TableSpan, mode: Mode, epoch: u64, start_ts: u64) -> ScheduleRequest {
    let config = DispatcherConfig { start_ts, schema_id: 1, ..config_of(d, mode) };
    request(config, Order::Create { span: s }, OperatorType::Add, epoch)
}

pub fn remove(d: DispatcherId, mode: Mode, epoch: u64, op: OperatorType) -> ScheduleRequest {
    request(config_of(d, mode), Order::Remove { span: None }, op, epoch)
}

/// The config of a remove: no start ts, no schema.
fn config_of(id: DispatcherId, mode: Mode) -> DispatcherConfig {
    DispatcherConfig { id, mode, start_ts: 0, schema_id: 0, skip_dml_as_start_ts: false }
}

fn request(config: DispatcherConfig, order: Order, op: OperatorType, epoch: u64) -> ScheduleRequest {
    let changefeed = ChangefeedId::default();
    ScheduleRequest { changefeed, config, order, operator_type: op, epoch: Epoch(epoch) }
}

/// A merge of `sources` into `merged` from the owner at epoch 2.
pub fn merge(sources: &[DispatcherId], merged: DispatcherId) -> MergeRequest {
    let changefeed = ChangefeedId::default();
    MergeRequest { changefeed, sources: sources.to_vec(), merged, mode: Mode::Default, epoch: Epoch(2) }
}

pub fn ticket(step: &Reaction) -> CreateTicket {
    step.effects
        .iter()
        .find_map(|e| if let Effect::Create(t) = e { Some(t.clone()) } else { None })
        .expect("a create effect")
}

pub fn has_close(step: &Reaction, d: DispatcherId) -> bool {
    step.effects.iter().any(|e| matches!(e, Effect::Close { id, .. } if *id == d))
}

pub fn reported(step: &Reaction, d: DispatcherId, state: ComponentState) -> Option<u64> {
    step.effects.iter().find_map(|e| match e {
        Effect::Report(s) if s.id == d && s.state == state => Some(s.checkpoint_ts),
        _ => None,
    })
}

/// Creates and commits a live dispatcher, returning nothing.
pub fn live(dm: &DispatcherManager, d: DispatcherId, s: TableSpan, mode: Mode) {
    let step = dm.handle_schedule(&mt(), create(d, s, mode, 2));
    assert_eq!(step.outcome, Outcome::Applied);
    dm.commit_create(&ticket(&step)).unwrap();
    let _ = dm.dispatcher_state_changed(d, mode, ComponentState::Working, 100);
}

/// A live dispatcher removed by a move and closed at `final_ts`.
pub fn moved_away(dm: &DispatcherManager, d: DispatcherId, s: TableSpan, final_ts: u64) {
    live(dm, d, s, Mode::Default);
    let _ = dm.handle_schedule(&mt(), remove(d, Mode::Default, 2, OperatorType::Move));
    let _ = dm.dispatcher_closed(d, Mode::Default, final_ts, None);
}

#[test]
fn p10_create_is_journaled_until_committed() {
    let dm = manager();
    let step = dm.handle_schedule(&mt(), create(id(1), span(1, b"a", b"m"), Mode::Default, 2));
    assert_eq!(step.outcome, Outcome::Applied);
    assert_eq!(dm.operators().len(), 1, "the create is journaled before it executes");
    let seq = dm.commit_create(&ticket(&step)).unwrap();
    assert!(seq > 0);
    assert_eq!(dm.operators().len(), 0, "completion removes the create");
    assert!(dm.registry().get_alive(Mode::Default, id(1)).is_some());
}

#[test]
fn p7_duplicate_create_for_a_journaled_span_is_busy() {
    let dm = manager();
    let s = span(1, b"a", b"m");
    let _first = dm.handle_schedule(&mt(), create(id(1), s.clone(), Mode::Default, 2));
    let second = dm.handle_schedule(&mt(), create(id(1), s, Mode::Default, 2));
    assert_eq!(second.outcome, Outcome::Dropped(DropReason::AlreadyExists));
    let other_id = dm.handle_schedule(&mt(), create(id(2), span(1, b"a", b"m"), Mode::Default, 2));
    assert_eq!(other_id.outcome, Outcome::Dropped(DropReason::Busy));
}

#[test]
fn p9_create_for_an_existing_dispatcher_is_an_idempotent_drop() {
    let dm = manager();
    live(&dm, id(1), span(1, b"a", b"m"), Mode::Default);
    let again = dm.handle_schedule(&mt(), create(id(1), span(1, b"a", b"m"), Mode::Default, 2));
    assert_eq!(again.outcome, Outcome::Dropped(DropReason::AlreadyExists));
    assert!(again.effects.is_empty());
    assert!(dm.operators().is_empty());
}

#[test]
fn overlapping_create_in_the_same_mode_is_refused_and_other_mode_is_independent() {
    let dm = manager();
    live(&dm, id(1), span(1, b"a", b"m"), Mode::Default);
    let clash = dm.handle_schedule(&mt(), create(id(2), span(1, b"f", b"z"), Mode::Default, 2));
    assert_eq!(clash.outcome, Outcome::Dropped(DropReason::Overlaps(id(1))));
    assert!(dm.operators().is_empty(), "the refused create leaves no journal entry");
    let redo = dm.handle_schedule(&mt(), create(id(3), span(1, b"f", b"z"), Mode::Redo, 2));
    assert_eq!(redo.outcome, Outcome::Applied);
}

#[test]
fn p4_requests_from_a_stale_or_foreign_maintainer_are_fenced() {
    let dm = manager();
    for (from, epoch) in [(mt(), 1), (mt(), 0), (mt(), 3), (NodeId::new("other"), 2)] {
        let step = dm.handle_schedule(&from, create(id(1), span(1, b"a", b"m"), Mode::Default, epoch));
        assert_eq!(step.outcome, Outcome::Dropped(DropReason::Fenced), "{from} {epoch}");
    }
    assert!(dm.operators().is_empty());
}

#[test]
fn p5_redo_requests_are_dropped_until_redo_is_ready() {
    let dm = redo_not_ready();
    let step = dm.handle_schedule(&mt(), create(id(1), span(1, b"a", b"m"), Mode::Redo, 2));
    assert_eq!(step.outcome, Outcome::Dropped(DropReason::RedoNotReady));
    dm.mark_redo_ready();
    let step = dm.handle_schedule(&mt(), create(id(1), span(1, b"a", b"m"), Mode::Redo, 2));
    assert_eq!(step.outcome, Outcome::Applied);
}

#[test]
fn remove_of_an_unknown_dispatcher_answers_stopped_and_journals_nothing() {
    let dm = manager();
    let step = dm.handle_schedule(&mt(), remove(id(9), Mode::Default, 2, OperatorType::Remove));
    assert_eq!(reported(&step, id(9), ComponentState::Stopped), Some(0));
    assert!(dm.operators().is_empty());
}

#[test]
fn remove_is_journaled_and_overwrites_an_older_remove_with_the_newer_operator_type() {
    let dm = manager();
    live(&dm, id(1), span(1, b"a", b"m"), Mode::Default);
    let first = dm.handle_schedule(&mt(), remove(id(1), Mode::Default, 2, OperatorType::Remove));
    assert!(has_close(&first, id(1)));
    let resend = dm.handle_schedule(&mt(), remove(id(1), Mode::Default, 2, OperatorType::Move));
    assert_eq!(resend.outcome, Outcome::Applied);
    assert!(!has_close(&resend, id(1)), "the close is issued once");
    let entries = dm.operators().entries();
    assert_eq!(entries.len(), 1);
    let (key, entry) = &entries[0];
    let r = entry.schedule_request(key, &ChangefeedId::default()).expect("a schedule request");
    assert_eq!(r, remove(id(1), Mode::Default, 2, OperatorType::Move), "the newer request, as sent");
    let closed = dm.dispatcher_closed(id(1), Mode::Default, 150, None);
    assert_eq!(reported(&closed, id(1), ComponentState::Stopped), Some(150));
    assert!(dm.operators().is_empty(), "completion removes the remove");
    assert!(dm.registry().get_alive(Mode::Default, id(1)).is_none());
}

#[test]
fn remove_of_a_create_not_yet_executed_cancels_it() {
    let dm = manager();
    let step = dm.handle_schedule(&mt(), create(id(1), span(1, b"a", b"m"), Mode::Default, 2));
    let t = ticket(&step);
    let rm = dm.handle_schedule(&mt(), remove(id(1), Mode::Default, 2, OperatorType::Remove));
    assert_eq!(reported(&rm, id(1), ComponentState::Stopped), Some(0));
    assert!(dm.commit_create(&t).is_err(), "the cancelled create never executes");
    assert!(dm.operators().is_empty());
    assert!(dm.registry().get_alive(Mode::Default, id(1)).is_none());
}

/// R1: a remove resend that arrives after the dispatcher was cleaned must not leak an entry that
/// blocks a later create of the same id.
#[test]
fn r1_late_remove_resend_leaks_nothing_and_a_later_create_is_admitted() {
    let dm = manager();
    let s = span(1, b"a", b"m");
    moved_away(&dm, id(1), s.clone(), 150);
    let resend = dm.handle_schedule(&mt(), remove(id(1), Mode::Default, 2, OperatorType::Move));
    assert_eq!(
        reported(&resend, id(1), ComponentState::Stopped),
        Some(150),
        "a resent remove answers with the real final checkpoint, not 0"
    );
    assert!(dm.operators().is_empty());
    let back = dm.handle_schedule(&mt(), create_at(id(1), s, Mode::Default, 2, 150));
    assert_eq!(back.outcome, Outcome::Applied, "a move back to this node reuses the id");
}

/// A create delayed on the wire past the life of the dispatcher it created (same owner, same
/// id) must not run it a second time: its start ts is below where that dispatcher stopped.
#[test]
fn delayed_duplicate_create_of_a_closed_dispatcher_is_stale() {
    let dm = manager();
    let s = span(1, b"a", b"m");
    moved_away(&dm, id(1), s.clone(), 150);
    let late = dm.handle_schedule(&mt(), create_at(id(1), s.clone(), Mode::Default, 2, 100));
    assert_eq!(late.outcome, Outcome::Dropped(DropReason::Stale));
    assert_eq!(
        reported(&late, id(1), ComponentState::Stopped),
        Some(150),
        "answered with where the dispatcher stopped: an owner that lost that Stopped resends from there (seed 5086)"
    );
    assert!(dm.operators().is_empty(), "nothing journaled for a stale create");
    // Another id for the same span is a different dispatcher: not stale.
    let other = dm.handle_schedule(&mt(), create_at(id(2), s.clone(), Mode::Default, 2, 100));
    assert_eq!(other.outcome, Outcome::Applied);
    // A new owner forgets the old term's tombstones (its creates carry its own start points).
    let step = dm.handle_bootstrap(&mt(), &bootstrap_request(3, None));
    assert_eq!(step.outcome, Outcome::Applied);
    let after = dm.handle_schedule(&mt(), create_at(id(1), span(2, b"a", b"m"), Mode::Default, 3, 100));
    assert_eq!(after.outcome, Outcome::Applied);
}

/// A Remove delayed on the wire past the life of the dispatcher it meant (same owner, same id)
/// must not close the dispatcher created since: its floor is below that one's start ts. It would
/// close it behind the owner's back, and the node's watermark would move on without it (barrier
/// seed 7289: DML lost, an ALTER never written).
#[test]
fn delayed_remove_of_an_earlier_incarnation_is_stale_and_spares_the_live_one() {
    let dm = manager();
    let s = span(1, b"a", b"m");
    moved_away(&dm, id(1), s.clone(), 150);
    let step = dm.handle_schedule(&mt(), create_at(id(1), s.clone(), Mode::Default, 2, 300));
    dm.commit_create(&ticket(&step)).unwrap();
    let _ = dm.dispatcher_state_changed(id(1), Mode::Default, ComponentState::Working, 300);
    let fenced = |floor| {
        let mut r = remove(id(1), Mode::Default, 2, OperatorType::Move);
        r.config.start_ts = floor;
        r
    };
    let late = dm.handle_schedule(&mt(), fenced(150));
    assert_eq!(late.outcome, Outcome::Dropped(DropReason::Stale));
    assert!(dm.registry().get_alive(Mode::Default, id(1)).is_some(), "the live incarnation runs on");
    assert!(dm.operators().is_empty(), "nothing journaled for a stale remove");
    // A floor at the live one's start is this incarnation's own Remove.
    let ours = dm.handle_schedule(&mt(), fenced(300));
    assert_eq!(ours.outcome, Outcome::Applied);
    assert!(ours.effects.iter().any(|e| matches!(e, Effect::Close { id: d, .. } if *d == id(1))));
}

/// A Remove without a floor (0: what the reference sends) means any incarnation.
#[test]
fn remove_without_a_floor_closes_whichever_incarnation_runs() {
    let dm = manager();
    let s = span(1, b"a", b"m");
    moved_away(&dm, id(1), s.clone(), 150);
    let step = dm.handle_schedule(&mt(), create_at(id(1), s, Mode::Default, 2, 300));
    dm.commit_create(&ticket(&step)).unwrap();
    let any = dm.handle_schedule(&mt(), remove(id(1), Mode::Default, 2, OperatorType::Remove));
    assert_eq!(any.outcome, Outcome::Applied);
    assert!(any.effects.iter().any(|e| matches!(e, Effect::Close { id: d, .. } if *d == id(1))));
}

/// R4 (the reference's cleanup racing a re-creation of the same id): completing an old
/// incarnation never removes the journal entry of a re-created one.
#[test]
fn r4_completion_of_an_old_incarnation_leaves_the_new_entry() {
    let dm = manager();
    let s = span(1, b"a", b"m");
    moved_away(&dm, id(1), s.clone(), 150);
    let again = dm.handle_schedule(&mt(), create_at(id(1), s, Mode::Default, 2, 150));
    assert_eq!(dm.operators().len(), 1);
    // A duplicate close report for the old incarnation finds the new, still-creating record.
    let dup = dm.dispatcher_closed(id(1), Mode::Default, 150, None);
    assert_eq!(dup.outcome, Outcome::Dropped(DropReason::Unknown));
    assert_eq!(dm.operators().len(), 1);
    let fresh = dm.registry().get(Mode::Default, id(1)).unwrap();
    assert_eq!(fresh.checkpoint_ts(), 150, "the stale report must not touch the new record");
    assert!(dm.commit_create(&ticket(&again)).is_ok());
}

/// R9: a failed create withdraws its journal entry so the maintainer's resend can retry.
#[test]
fn r9_failed_create_withdraws_its_entry_and_reports_the_error() {
    let dm = manager();
    let s = span(1, b"a", b"m");
    let step = dm.handle_schedule(&mt(), create(id(1), s.clone(), Mode::Default, 2));
    let failed = dm.create_failed(&ticket(&step), RunningError { code: "E".into(), ..Default::default() });
    assert!(failed.effects.iter().any(|e| matches!(e, Effect::ReportError(r) if r.code == "E")));
    assert!(dm.operators().is_empty());
    let retry = dm.handle_schedule(&mt(), create(id(1), s, Mode::Default, 2));
    assert_eq!(retry.outcome, Outcome::Applied);
}

#[test]
fn unknown_dispatcher_callbacks_are_documented_drops() {
    let dm = manager();
    let c = dm.dispatcher_closed(id(7), Mode::Default, 1, None);
    assert_eq!(c.outcome, Outcome::Dropped(DropReason::Unknown));
    let s = dm.dispatcher_state_changed(id(7), Mode::Redo, ComponentState::Working, 1);
    assert_eq!(s.outcome, Outcome::Dropped(DropReason::Unknown));
}

#[test]
fn working_transition_is_reported_once_with_its_checkpoint() {
    let dm = manager();
    let step = dm.handle_schedule(&mt(), create(id(1), span(1, b"a", b"m"), Mode::Default, 2));
    dm.commit_create(&ticket(&step)).unwrap();
    let w = dm.dispatcher_state_changed(id(1), Mode::Default, ComponentState::Working, 120);
    assert_eq!(reported(&w, id(1), ComponentState::Working), Some(120));
    let again = dm.dispatcher_state_changed(id(1), Mode::Default, ComponentState::Working, 130);
    assert_eq!(reported(&again, id(1), ComponentState::Working), None);
}

/// Many threads admitting and completing creates on overlapping spans: never two live overlapping
/// dispatchers, never more than one entry per span.
#[test]
fn concurrent_creates_on_one_span_admit_exactly_one() {
    for round in 0..50 {
        let dm = std::sync::Arc::new(manager());
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                let dm = dm.clone();
                std::thread::spawn(move || {
                    let step =
                        dm.handle_schedule(&mt(), create(id(10 + t), span(1, b"a", b"m"), Mode::Default, 2));
                    match step.outcome {
                        Outcome::Applied => dm.commit_create(&ticket(&step)).is_ok() as u32,
                        _ => 0,
                    }
                })
            })
            .collect();
        let admitted: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(admitted, 1, "round {round}");
        assert_eq!(dm.registry().overlapping(Mode::Default, &span(1, b"a", b"m")).len(), 1);
    }
}

/// R6: a dispatcher's seq is taken after it is visible as live, so a reader that reads the seq
/// before scanning sees every dispatcher whose seq is not above it.
#[test]
fn r6_seq_is_taken_after_the_dispatcher_is_live() {
    let dm = manager();
    let step = dm.handle_schedule(&mt(), create(id(1), span(1, b"a", b"m"), Mode::Default, 2));
    let t = ticket(&step);
    let record = dm.registry().get(Mode::Default, id(1)).unwrap();
    assert_eq!(record.seq(), 0, "no seq while creating");
    let before = dm.registry().current_seq();
    let seq = dm.commit_create(&t).unwrap();
    assert_eq!(seq, before + 1);
    assert_eq!(record.seq(), seq);
    let read = dm.registry().current_seq();
    let records = dm.registry().records();
    assert!(records.iter().any(|r| r.id == id(1) && r.seq() != 0 && r.seq() <= read));
}

/// Found by the swarm explorer (seed 11801): the dispatcher a create built closed before it
/// progressed at all, so a late copy of that create starts exactly at the final checkpoint and
/// `start < final` does not catch it. A create at the final checkpoint of a same-id dispatcher
/// that never moved past its own start is refused too, answered with Removed so that a genuinely
/// new create at that point (moved away and back without progress) fails and is placed again.
#[test]
fn copy_of_a_create_whose_dispatcher_never_progressed_is_refused_with_removed() {
    let dm = manager();
    let s = span(1, b"a", b"m");
    let first = dm.handle_schedule(&mt(), create_at(id(1), s.clone(), Mode::Default, 2, 150));
    dm.commit_create(&ticket(&first)).unwrap();
    let _ = dm.handle_schedule(&mt(), remove(id(1), Mode::Default, 2, OperatorType::Move));
    let _ = dm.dispatcher_closed(id(1), Mode::Default, 150, None);
    let copy = dm.handle_schedule(&mt(), create_at(id(1), s.clone(), Mode::Default, 2, 150));
    assert_eq!(copy.outcome, Outcome::Dropped(DropReason::Stale));
    assert_eq!(reported(&copy, id(1), ComponentState::Removed), Some(150));
    assert!(dm.registry().get_alive(Mode::Default, id(1)).is_none());
    // A dispatcher that did progress: a create at its final checkpoint is a new one.
    let second = dm.handle_schedule(&mt(), create_at(id(2), span(2, b"a", b"m"), Mode::Default, 2, 100));
    dm.commit_create(&ticket(&second)).unwrap();
    let _ = dm.handle_schedule(&mt(), remove(id(2), Mode::Default, 2, OperatorType::Move));
    let _ = dm.dispatcher_closed(id(2), Mode::Default, 160, None);
    let again = dm.handle_schedule(&mt(), create_at(id(2), span(2, b"a", b"m"), Mode::Default, 2, 160));
    assert_eq!(again.outcome, Outcome::Applied);
}

/// Found by node-stress: a new owner's create of a span whose dispatcher an older owner is still
/// removing is Busy. It used to replace the older Remove's entry, fail on the occupied span and
/// leave the journal empty, so the next snapshot listed the closing dispatcher as if it stayed.
#[test]
fn create_of_a_span_an_older_owner_is_removing_is_busy_and_keeps_the_remove() {
    let dm = manager();
    let s = span(1, b"a", b"m");
    live(&dm, id(1), s.clone(), Mode::Default);
    let rm = dm.handle_schedule(&mt(), remove(id(1), Mode::Default, 2, OperatorType::Move));
    assert!(has_close(&rm, id(1)));
    let mt2 = NodeId::new("mt2");
    assert_eq!(dm.handle_bootstrap(&mt2, &bootstrap_request(3, None)).outcome, Outcome::Applied);
    let step = dm.handle_schedule(&mt2, create_at(id(2), s.clone(), Mode::Default, 3, 150));
    assert_eq!(step.outcome, Outcome::Dropped(DropReason::Busy));
    let again = dm.handle_bootstrap(&mt2, &bootstrap_request(3, None));
    let response = again.bootstrap_response().unwrap();
    assert!(response.spans.iter().any(|b| b.id == id(1)));
    assert!(
        response.operators.iter().any(|op| op.action() == ScheduleAction::Remove && op.config.id == id(1)),
        "the older owner's Remove is still in flight and must be reported"
    );
    let _ = dm.dispatcher_closed(id(1), Mode::Default, 150, None);
    assert!(dm.operators().is_empty());
    let step = dm.handle_schedule(&mt2, create_at(id(2), s, Mode::Default, 3, 150));
    assert_eq!(step.outcome, Outcome::Applied, "once the span is free the create is admitted");
}
