//! The heartbeat path: coalescing, rounds, watermarks and the seq protocol (I10, hazard B2),
//! the error report, inbound fencing and routing, block-status batching and de-duplication.
//!
//! Invariants checked by the property tests, stated first:
//! * coalescer vs a "last value wins" model: after every round the statuses of each dispatcher are
//!   exactly its unreported transitions in order (or one progress status), carrying its latest
//!   checkpoint; reported checkpoints never go backwards; a Stopped is reported exactly once, with
//!   its final checkpoint, whatever follows it; a full queue loses nothing;
//! * watermark vs a maintainer model applying its acceptance rule: the accepted watermark is
//!   never above the checkpoint of a live dispatcher it accounts for (seq), nor above the start of
//!   a dispatcher whose create is in flight (B2).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use dispatcher_core::ids::{ChangefeedId, DispatcherId, Epoch, Mode, NodeId, Ts};
use dispatcher_core::messages::*;
use dispatcher_core::node::heartbeat::block::{batch, Enqueued, Offered};
use dispatcher_core::node::heartbeat::slot::PENDING_MAX;
use dispatcher_core::node::heartbeat::{
    BlockStatusBuffer, BlockStatusQueue, Collector, HeartbeatConfig, Outbound, RoundKind, Schedule,
};
use dispatcher_core::node::registry::Phase;
use dispatcher_core::node::*;
use dispatcher_core::wire::pb;
use proptest::prelude::*;

use super::manager::{bootstrap_request, create, id, mt, remove, span, ticket};

fn manager_with(config: HeartbeatConfig) -> DispatcherManager {
    let dm = DispatcherManager::with_heartbeat(
        ManagerConfig {
            node: NodeId::new("n1"),
            changefeed: ChangefeedId { high: 1, low: 2, ..ChangefeedId::default() },
            keyspace_id: 0,
            redo_enabled: true,
        },
        config,
    );
    dm.mark_redo_ready();
    assert_eq!(dm.handle_bootstrap(&mt(), &bootstrap_request(2, None)).outcome, Outcome::Applied);
    dm
}

fn spanned(n: u64) -> dispatcher_core::span::TableSpan {
    span(n as i64 + 1, b"a", b"z")
}

/// Admits a create at `start_ts` and returns its ticket (not yet committed).
fn admit(dm: &DispatcherManager, d: DispatcherId, start_ts: Ts) -> CreateTicket {
    let mut request = create(d, spanned(d.low()), Mode::Default, 2);
    request.config.start_ts = start_ts;
    let step = dm.handle_schedule(&mt(), request);
    assert_eq!(step.outcome, Outcome::Applied, "{step:?}");
    ticket(&step)
}

/// Creates, commits and returns the status handle of a dispatcher starting at `start_ts`.
fn committed(dm: &DispatcherManager, d: DispatcherId, start_ts: Ts) -> StatusHandle {
    let t = admit(dm, d, start_ts);
    dm.commit_create(&t).unwrap();
    dm.status_handle(&t)
}

fn close(dm: &DispatcherManager, d: DispatcherId, final_ts: Ts) {
    let _ = dm.handle_schedule(&mt(), remove(d, Mode::Default, 2, OperatorType::Remove));
    assert_eq!(dm.dispatcher_closed(d, Mode::Default, final_ts, None).outcome, Outcome::Applied);
}

fn statuses(out: &[Outbound]) -> Vec<DispatcherStatus> {
    out.iter().flat_map(|o| o.request.statuses.clone()).collect()
}

// ---------------------------------------------------------------------------------------------
// Coalescer against the "last value wins" model
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Progress { d: u8, checkpoint: u16 },
    State { d: u8, state: u8, checkpoint: u16 },
    Stop { d: u8, checkpoint: u16 },
    Round,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..4, 0u16..400).prop_map(|(d, checkpoint)| Op::Progress { d, checkpoint }),
        3 => (0u8..4, 0u8..3, 0u16..400).prop_map(|(d, state, checkpoint)| Op::State { d, state, checkpoint }),
        1 => (0u8..4, 0u16..400).prop_map(|(d, checkpoint)| Op::Stop { d, checkpoint }),
        3 => Just(Op::Round),
    ]
}

#[derive(Debug)]
struct Model {
    checkpoint: Ts,
    latest: ComponentState,
    pending: Vec<ComponentState>,
    dirty: bool,
    stopped: bool,
    stop_sent: bool,
    last_reported: Ts,
}

impl Model {
    fn push(&mut self, s: ComponentState) {
        if self.pending.len() == PENDING_MAX {
            *self.pending.last_mut().unwrap() = s;
        } else {
            self.pending.push(s);
        }
        self.latest = s;
        self.dirty = true;
    }

    fn expected(&mut self, d: DispatcherId) -> Vec<DispatcherStatus> {
        if !self.dirty || self.stop_sent {
            self.dirty = false;
            return Vec::new();
        }
        let status = |state| DispatcherStatus {
            id: d,
            mode: Mode::Default,
            state,
            checkpoint_ts: self.checkpoint,
            event_size_per_second: 0.0,
        };
        let out: Vec<_> = if self.pending.is_empty() {
            let reportable = !matches!(self.latest, ComponentState::Initializing);
            if reportable {
                vec![status(self.latest)]
            } else {
                vec![]
            }
        } else {
            self.pending.iter().map(|s| status(*s)).collect()
        };
        self.dirty = false;
        self.pending.clear();
        self.stop_sent = self.stopped;
        out
    }
}

const STATES: [ComponentState; 3] =
    [ComponentState::Working, ComponentState::WaitingMerge, ComponentState::Initializing];

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Last value wins, no state transition (and no terminal Stopped) lost, checkpoints monotone,
    /// under arbitrary interleavings of updates and rounds, with a queue so small it overflows.
    #[test]
    fn coalescer_matches_the_last_value_wins_model(ops in proptest::collection::vec(op(), 1..120)) {
        let dm = manager_with(HeartbeatConfig { queue_capacity: 2, ..HeartbeatConfig::default() });
        let mut collector = Collector::new(&dm);
        let mut handles = Vec::new();
        let mut model = Vec::new();
        for n in 0..4u64 {
            handles.push(committed(&dm, id(n + 1), 100));
            model.push(Model {
                checkpoint: 100,
                latest: ComponentState::Initializing,
                pending: Vec::new(),
                dirty: false,
                stopped: false,
                stop_sent: false,
                last_reported: 0,
            });
        }
        for op in ops {
            match op {
                Op::Progress { d, checkpoint } => {
                    let (m, c) = (&mut model[usize::from(d)], u64::from(checkpoint));
                    let _ = dm.report_progress(&handles[usize::from(d)], c, c, 0.0);
                    if !m.stopped {
                        m.checkpoint = m.checkpoint.max(c);
                        m.dirty = true;
                    }
                }
                Op::State { d, state, checkpoint } => {
                    let (m, c) = (&mut model[usize::from(d)], u64::from(checkpoint));
                    let to = STATES[usize::from(state)];
                    let _ = dm.dispatcher_state_changed(id(u64::from(d) + 1), Mode::Default, to, c);
                    if !m.stopped {
                        m.checkpoint = m.checkpoint.max(c);
                        if m.latest != to {
                            m.push(to);
                        }
                    }
                }
                Op::Stop { d, checkpoint } => {
                    let m = &mut model[usize::from(d)];
                    if !m.stopped {
                        close(&dm, id(u64::from(d) + 1), u64::from(checkpoint));
                        m.checkpoint = m.checkpoint.max(u64::from(checkpoint));
                        m.push(ComponentState::Stopped);
                        m.stopped = true;
                    }
                }
                Op::Round => {
                    let out = collector.round(&dm, RoundKind::Periodic);
                    prop_assert_eq!(out.len(), 1);
                    let mut got: BTreeMap<DispatcherId, Vec<DispatcherStatus>> = BTreeMap::new();
                    for s in statuses(&out) {
                        got.entry(s.id).or_default().push(s);
                    }
                    for (n, m) in model.iter_mut().enumerate() {
                        let d = id(n as u64 + 1);
                        let want = m.expected(d);
                        let have = got.remove(&d).unwrap_or_default();
                        prop_assert_eq!(&have, &want, "dispatcher {:?} model {:?}", d, m);
                        for s in &have {
                            prop_assert!(s.checkpoint_ts >= m.last_reported, "checkpoint went backwards");
                            m.last_reported = s.checkpoint_ts;
                        }
                    }
                    prop_assert!(got.is_empty(), "statuses of unknown dispatchers: {:?}", got);
                }
            }
        }
        // A final round reports everything still dirty: nothing is ever lost.
        let out = collector.round(&dm, RoundKind::Periodic);
        let all = statuses(&out);
        for (n, m) in model.iter_mut().enumerate() {
            let d = id(n as u64 + 1);
            let want = m.expected(d);
            let have: Vec<_> = all.iter().filter(|s| s.id == d).cloned().collect();
            prop_assert_eq!(have, want);
        }
    }
}

#[test]
fn an_update_enqueues_a_slot_once_until_it_is_taken() {
    let dm = manager_with(HeartbeatConfig::default());
    let h = committed(&dm, id(1), 100);
    assert_eq!(dm.report_progress(&h, 110, 120, 1.0), heartbeat::Update::Enqueued);
    assert_eq!(dm.report_progress(&h, 130, 140, 1.0), heartbeat::Update::Coalesced);
    assert_eq!(dm.coalescer().queued(), 1);
    let out = Collector::new(&dm).round(&dm, RoundKind::Periodic);
    assert!(statuses(&out).is_empty(), "an Initializing dispatcher reports no progress");
    assert_eq!(dm.report_progress(&h, 150, 150, 1.0), heartbeat::Update::Enqueued, "taken: clean again");
}

#[test]
fn a_full_queue_keeps_the_slot_dirty_for_the_next_sweep() {
    let dm = manager_with(HeartbeatConfig { queue_capacity: 1, ..HeartbeatConfig::default() });
    let a = committed(&dm, id(1), 100);
    let b = committed(&dm, id(2), 100);
    let _ = dm.dispatcher_state_changed(id(1), Mode::Default, ComponentState::Working, 100);
    let _ = dm.dispatcher_state_changed(id(2), Mode::Default, ComponentState::Working, 100);
    let mut collector = Collector::new(&dm);
    let _ = collector.round(&dm, RoundKind::Periodic);
    assert_eq!(dm.report_progress(&a, 200, 200, 0.0), heartbeat::Update::Enqueued);
    assert_eq!(dm.report_progress(&b, 300, 300, 0.0), heartbeat::Update::Overflowed);
    let got = statuses(&collector.round(&dm, RoundKind::Periodic));
    let ckpt = |d| got.iter().find(|s| s.id == d).map(|s| s.checkpoint_ts);
    assert_eq!(ckpt(id(1)), Some(200));
    assert_eq!(ckpt(id(2)), Some(300), "the overflowed slot is swept in the very next round");
}

#[test]
fn a_stopped_that_does_not_fit_the_queue_is_spilled_not_lost() {
    let dm = manager_with(HeartbeatConfig { queue_capacity: 1, ..HeartbeatConfig::default() });
    let a = committed(&dm, id(1), 100);
    let _b = committed(&dm, id(2), 100);
    let _ = Collector::new(&dm).round(&dm, RoundKind::Periodic);
    assert_eq!(dm.report_progress(&a, 200, 200, 0.0), heartbeat::Update::Enqueued);
    close(&dm, id(2), 250);
    assert!(dm.registry().get(Mode::Default, id(2)).is_none(), "the closed record left the registry");
    let got = statuses(&Collector::new(&dm).round(&dm, RoundKind::Periodic));
    let stopped: Vec<_> = got.iter().filter(|s| s.state == ComponentState::Stopped).collect();
    assert_eq!(stopped.len(), 1);
    assert_eq!((stopped[0].id, stopped[0].checkpoint_ts), (id(2), 250));
}

#[test]
fn stopped_racing_a_later_checkpoint_update_keeps_its_final_checkpoint() {
    let dm = manager_with(HeartbeatConfig::default());
    let h = committed(&dm, id(1), 100);
    let _ = dm.report_progress(&h, 150, 150, 0.0);
    close(&dm, id(1), 160);
    assert_eq!(dm.report_progress(&h, 999, 999, 0.0), heartbeat::Update::Coalesced);
    let mut collector = Collector::new(&dm);
    let got = statuses(&collector.round(&dm, RoundKind::Periodic));
    assert_eq!(got.last().map(|s| (s.state, s.checkpoint_ts)), Some((ComponentState::Stopped, 160)));
    let _ = dm.report_progress(&h, 1000, 1000, 0.0);
    assert!(statuses(&collector.round(&dm, RoundKind::Periodic)).is_empty(), "Stopped exactly once");
}

#[test]
fn requests_are_cut_at_batch_items_max() {
    let dm = manager_with(HeartbeatConfig { batch_items_max: 3, ..HeartbeatConfig::default() });
    let handles: Vec<_> = (1..=7).map(|n| committed(&dm, id(n), 100)).collect();
    for n in 1..=7 {
        let _ = dm.dispatcher_state_changed(id(n), Mode::Default, ComponentState::Working, 100);
    }
    let _ = &handles;
    let out = Collector::new(&dm).round(&dm, RoundKind::Periodic);
    assert_eq!(out.iter().map(|o| o.request.statuses.len()).collect::<Vec<_>>(), vec![3, 3, 1]);
    assert!(out.iter().all(|o| o.to == mt() && o.request.watermark == out[0].request.watermark));
}

#[test]
fn no_owner_no_round_and_nothing_drained() {
    let dm = DispatcherManager::new(ManagerConfig {
        node: NodeId::new("n1"),
        changefeed: ChangefeedId::default(),
        keyspace_id: 0,
        redo_enabled: false,
    });
    assert!(Collector::new(&dm).round(&dm, RoundKind::Periodic).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Round boundaries and complete-status cadence
// ---------------------------------------------------------------------------------------------

#[test]
fn periodic_rounds_start_after_the_initial_delay_and_follow_the_period() {
    let mut s = Schedule::new(&HeartbeatConfig::default());
    assert_eq!(s.poll(0, false), None);
    assert_eq!(s.poll(999, false), None);
    assert_eq!(s.poll(1000, false), Some(RoundKind::Periodic));
    assert_eq!(s.poll(1000, false), None, "one round per due time");
    assert_eq!(s.poll(1199, false), None);
    assert_eq!(s.poll(1200, false), Some(RoundKind::Periodic));
    assert_eq!(s.next_due_ms(), Some(1400));
    // Far behind: missed rounds are skipped, not replayed.
    assert_eq!(s.poll(5000, false), Some(RoundKind::Periodic));
    assert_eq!(s.poll(5001, false), None);
    assert_eq!(s.next_due_ms(), Some(5200));
}

/// TestHeartbeatIntervalsByPerformanceMode.
#[test]
fn low_latency_rounds_start_at_once_every_50_ms() {
    let mut s = Schedule::new(&HeartbeatConfig::low_latency());
    assert_eq!(s.poll(7, false), Some(RoundKind::Periodic));
    assert_eq!(s.poll(56, false), None);
    assert_eq!(s.poll(57, false), Some(RoundKind::Periodic));
}

#[test]
fn a_state_change_is_flushed_within_the_window_unless_a_periodic_round_comes_first() {
    let mut s = Schedule::new(&HeartbeatConfig::default());
    assert_eq!(s.poll(0, false), None);
    assert_eq!(s.poll(1000, false), Some(RoundKind::Periodic));
    assert_eq!(s.poll(1050, true), None, "the window opens when the change is noticed");
    assert_eq!(s.next_due_ms(), Some(1060));
    assert_eq!(s.poll(1059, false), None);
    assert_eq!(s.poll(1060, false), Some(RoundKind::StateChange));
    assert_eq!(s.poll(1061, false), None, "the window is closed");
    assert_eq!(s.poll(1195, true), None);
    assert_eq!(s.poll(1200, false), Some(RoundKind::Periodic), "the periodic round drains it");
    assert_eq!(s.poll(1205, false), None, "and closes the window");
}

#[test]
fn every_fiftieth_periodic_round_is_complete() {
    let mut s = Schedule::new(&HeartbeatConfig::default());
    let _ = s.poll(0, false);
    let mut kinds = Vec::new();
    for tick in 0..100u64 {
        kinds.push(s.poll(1000 + tick * 200, false).unwrap());
    }
    let complete: Vec<_> =
        kinds.iter().enumerate().filter(|(_, k)| **k == RoundKind::Complete).map(|(i, _)| i + 1).collect();
    assert_eq!(complete, vec![50, 100], "10 s / 200 ms, counted from the first tick");
}

#[test]
fn a_complete_round_lists_every_live_dispatcher_but_initializing_ones() {
    let dm = manager_with(HeartbeatConfig::default());
    let _a = committed(&dm, id(1), 100);
    let _b = committed(&dm, id(2), 100);
    let _c = committed(&dm, id(3), 100);
    let _ = dm.dispatcher_state_changed(id(1), Mode::Default, ComponentState::Working, 120);
    let _ = dm.dispatcher_state_changed(id(2), Mode::Default, ComponentState::Working, 130);
    let mut collector = Collector::new(&dm);
    let _ = collector.round(&dm, RoundKind::Periodic);
    let out = collector.round(&dm, RoundKind::Complete);
    assert!(out.iter().all(|o| o.request.complete));
    let mut listed: Vec<_> = statuses(&out).iter().map(|s| (s.id, s.state, s.checkpoint_ts)).collect();
    listed.sort_by_key(|l| (l.0, l.2));
    assert_eq!(
        listed,
        vec![(id(1), ComponentState::Working, 120), (id(2), ComponentState::Working, 130)],
        "dispatcher 3 is still Initializing"
    );
    let periodic = collector.round(&dm, RoundKind::Periodic);
    assert!(!periodic[0].request.complete);
    assert!(statuses(&periodic).is_empty(), "a periodic round lists only what changed");
}

/// Found by the swarm explorer (seed 31757): a dispatcher's Stopped lost with its heartbeat left
/// its span bound to this node for good. Complete rounds list the Stopped of every dispatcher
/// closed in this owner's term again (final checkpoint), unless a dispatcher of that id is live.
#[test]
fn a_complete_round_repeats_the_stopped_of_dispatchers_closed_this_term() {
    let dm = manager_with(HeartbeatConfig::default());
    let _a = committed(&dm, id(1), 100);
    let _b = committed(&dm, id(2), 100);
    let _ = dm.dispatcher_state_changed(id(2), Mode::Default, ComponentState::Working, 130);
    close(&dm, id(1), 150);
    let mut collector = Collector::new(&dm);
    let first = collector.round(&dm, RoundKind::Periodic);
    assert!(statuses(&first).iter().any(|s| s.id == id(1) && s.state == ComponentState::Stopped));
    // That round is lost. The next periodic one does not repeat it; a complete one does.
    let periodic = collector.round(&dm, RoundKind::Periodic);
    assert!(!statuses(&periodic).iter().any(|s| s.id == id(1)));
    let complete = collector.round(&dm, RoundKind::Complete);
    let listed: Vec<_> = statuses(&complete).iter().map(|s| (s.id, s.state, s.checkpoint_ts)).collect();
    assert!(listed.contains(&(id(1), ComponentState::Stopped, 150)), "{listed:?}");
    assert!(listed.contains(&(id(2), ComponentState::Working, 130)), "{listed:?}");
    let stopped_at = listed.iter().position(|l| l.0 == id(1)).unwrap();
    let working_at = listed.iter().position(|l| l.0 == id(2)).unwrap();
    assert!(working_at < stopped_at, "repeated Stopped statuses follow the live ones");
    // Created again under the same id: the old Stopped is no longer repeated.
    let _again = committed(&dm, id(1), 150);
    let complete = collector.round(&dm, RoundKind::Complete);
    assert!(!statuses(&complete).iter().any(|s| s.id == id(1) && s.state == ComponentState::Stopped));
}

/// Found by the swarm explorer (seed 26138): three repeats were all lost while the maintainer was
/// cut off for 25 s, and the span stayed bound where nothing ran (C1); with gaps doubling forever,
/// several long outages pushed the next repeat past the settle window (seed 23269). Complete rounds
/// now repeat a closed dispatcher's Stopped at rounds 1, 2, 4, 8 after the close and then every 8th,
/// for as long as the owner's term lasts.
#[test]
fn a_closed_dispatchers_stopped_is_repeated_at_capped_doubling_gaps_for_the_whole_term() {
    let dm = manager_with(HeartbeatConfig::default());
    let _a = committed(&dm, id(1), 100);
    close(&dm, id(1), 150);
    let mut collector = Collector::new(&dm);
    let _first = collector.round(&dm, RoundKind::Periodic);
    // The complete rounds after the close (counted from 1) that carry it.
    let rounds: Vec<u32> = (1..=40)
        .filter(|_| {
            let complete = collector.round(&dm, RoundKind::Complete);
            statuses(&complete).iter().any(|s| s.id == id(1) && s.state == ComponentState::Stopped)
        })
        .collect();
    assert_eq!(rounds, vec![1, 2, 4, 8, 16, 24, 32, 40]);
}

#[test]
fn poll_runs_the_state_change_round_inside_its_window() {
    let dm = manager_with(HeartbeatConfig::default());
    let _ = committed(&dm, id(1), 100);
    let mut collector = Collector::new(&dm);
    assert!(collector.poll(&dm, 0).heartbeats.is_empty());
    let first = collector.poll(&dm, 1000);
    assert_eq!(first.round, Some(RoundKind::Periodic));
    let _ = dm.dispatcher_state_changed(id(1), Mode::Default, ComponentState::Working, 100);
    let noticed = collector.poll(&dm, 1003);
    assert_eq!(noticed.round, None);
    assert_eq!(noticed.next_due_ms, Some(1013));
    let flushed = collector.poll(&dm, 1013);
    assert_eq!(flushed.round, Some(RoundKind::StateChange));
    assert_eq!(
        statuses(&flushed.heartbeats).iter().map(|s| s.state).collect::<Vec<_>>(),
        vec![ComponentState::Working]
    );
}

// ---------------------------------------------------------------------------------------------
// Watermarks and the seq protocol (I10). Hazard B2 is the reference's seq hole: a watermark the
// maintainer accepts can sit above the checkpoint of a dispatcher its seq claims to cover.
// ---------------------------------------------------------------------------------------------

/// The maintainer's acceptance rule for a node watermark (maintainer.go:911-919).
fn accept(old: Option<Watermark>, new: Watermark) -> Watermark {
    match old {
        Some(old)
            if !(new.seq > old.seq || (new.seq == old.seq && new.checkpoint_ts > old.checkpoint_ts)) =>
        {
            old
        }
        _ => new,
    }
}

/// The B2 invariant on what the maintainer holds: never above a live dispatcher's checkpoint it
/// accounts for (seq), never above a dispatcher whose create is in flight (when the watermark is
/// delivered: a create admitted later is the maintainer's own in-flight operator).
fn check_accepted(dm: &DispatcherManager, accepted: Watermark) -> Result<(), String> {
    check(dm, accepted, true)
}

fn check(dm: &DispatcherManager, accepted: Watermark, creating: bool) -> Result<(), String> {
    for r in dm.registry().records() {
        if r.mode != Mode::Default {
            continue;
        }
        let state = r.state();
        let bound = match state.phase {
            Phase::Creating if creating => r.start_ts(),
            Phase::Live if r.seq() != 0 && r.seq() <= accepted.seq => r.checkpoint_ts(),
            _ => continue,
        };
        if accepted.checkpoint_ts > bound {
            return Err(format!(
                "accepted {accepted:?} above {:?} ({state:?}, seq {}) at {bound}",
                r.id,
                r.seq()
            ));
        }
    }
    Ok(())
}

/// B2 (b), a status paired with an older snapshot: Z1 (start 150) and Z2 (start 180) created
/// together; Z2 turns Working first. The reference sends {180, seq 6}, then can never correct it.
#[test]
fn watermark_b2_new_dispatcher_below_reported_watermark() {
    let dm = manager_with(HeartbeatConfig::default());
    let old = committed(&dm, id(9), 200);
    let _ = dm.dispatcher_state_changed(id(9), Mode::Default, ComponentState::Working, 200);
    let mut collector = Collector::new(&dm);
    let mut accepted = None;
    let deliver = |out: Vec<Outbound>, accepted: &mut Option<Watermark>| {
        for o in out {
            *accepted = Some(accept(*accepted, o.request.watermark.unwrap()));
            check_accepted(&dm, accepted.unwrap()).unwrap();
        }
    };
    deliver(collector.round(&dm, RoundKind::Periodic), &mut accepted);
    let _ = dm.report_progress(&old, 300, 300, 0.0);
    let z1 = admit(&dm, id(1), 150);
    let z2 = admit(&dm, id(2), 180);
    dm.commit_create(&z2).unwrap();
    let _ = dm.dispatcher_state_changed(id(2), Mode::Default, ComponentState::Working, 180);
    let early = collector.round(&dm, RoundKind::StateChange);
    let wm = early[0].request.watermark.unwrap();
    assert!(wm.checkpoint_ts <= 150, "Z1's create is in flight: the watermark stays at its start ({wm:?})");
    deliver(early, &mut accepted);
    dm.commit_create(&z1).unwrap();
    let _ = dm.dispatcher_state_changed(id(1), Mode::Default, ComponentState::Working, 150);
    deliver(collector.round(&dm, RoundKind::StateChange), &mut accepted);
    deliver(collector.round(&dm, RoundKind::Periodic), &mut accepted);
    assert_eq!(accepted.unwrap().checkpoint_ts, 150);
}

/// B2 (a): a Stopped for an unknown dispatcher (a late Remove resend) carries no seq of its own,
/// so it cannot lift the watermark's seq above a dispatcher the watermark does not cover.
#[test]
fn watermark_b2_synthetic_stopped_does_not_raise_the_seq() {
    let dm = manager_with(HeartbeatConfig::default());
    let _ = committed(&dm, id(9), 200);
    let _ = dm.dispatcher_state_changed(id(9), Mode::Default, ComponentState::Working, 200);
    let mut collector = Collector::new(&dm);
    let first = collector.round(&dm, RoundKind::Periodic)[0].request.watermark.unwrap();
    let _z = committed(&dm, id(1), 150);
    let late = dm.handle_schedule(&mt(), remove(id(7), Mode::Default, 2, OperatorType::Remove));
    assert!(late
        .effects
        .iter()
        .any(|e| matches!(e, Effect::Report(s) if s.state == ComponentState::Stopped)));
    let out = collector.round(&dm, RoundKind::StateChange);
    let wm = out[0].request.watermark.unwrap();
    assert!(statuses(&out).iter().any(|s| s.id == id(7) && s.state == ComponentState::Stopped));
    assert!(wm.seq > first.seq, "the seq covers Z");
    assert!(wm.checkpoint_ts <= 150, "so the watermark covers Z's start: {wm:?}");
}

/// TestCollectComponentStatusWhenChangedWatermarkSeqNoFallback, in this design: the seq of
/// successive watermarks never falls back, whatever round kinds alternate.
#[test]
fn watermark_seq_never_falls_back() {
    let dm = manager_with(HeartbeatConfig::default());
    let mut collector = Collector::new(&dm);
    let mut last = 0;
    for n in 1..=6 {
        let _ = committed(&dm, id(n), 100 + n);
        for kind in [RoundKind::StateChange, RoundKind::Periodic, RoundKind::StateChange] {
            let _ = dm.dispatcher_state_changed(id(n), Mode::Default, ComponentState::Working, 100 + n);
            for o in collector.round(&dm, kind) {
                let wm = o.request.watermark.unwrap();
                assert!(wm.seq >= last, "{kind:?}: seq {} after {last}", wm.seq);
                last = wm.seq;
            }
        }
    }
    assert_eq!(last, dm.registry().current_seq());
}

#[test]
fn watermark_is_neutral_without_dispatchers_and_redo_is_max_until_ready() {
    let dm = DispatcherManager::new(ManagerConfig {
        node: NodeId::new("n1"),
        changefeed: ChangefeedId::default(),
        keyspace_id: 0,
        redo_enabled: true,
    });
    let _ = dm.handle_bootstrap(&mt(), &bootstrap_request(2, None));
    let out = Collector::new(&dm).round(&dm, RoundKind::Periodic);
    let r = &out[0].request;
    assert_eq!((r.watermark.unwrap().checkpoint_ts, r.watermark.unwrap().resolved_ts), (u64::MAX, u64::MAX));
    assert_eq!(r.redo_watermark, Some(Watermark::NONE), "redo not ready");
}

#[test]
fn watermark_is_the_minimum_of_checkpoints_and_of_resolved_ts() {
    let dm = manager_with(HeartbeatConfig::default());
    let a = committed(&dm, id(1), 100);
    let b = committed(&dm, id(2), 100);
    let _ = dm.dispatcher_state_changed(id(1), Mode::Default, ComponentState::Working, 100);
    let _ = dm.dispatcher_state_changed(id(2), Mode::Default, ComponentState::Working, 100);
    let mut collector = Collector::new(&dm);
    let _ = collector.round(&dm, RoundKind::Periodic); // folds the creation floor in
    let _ = dm.report_progress(&a, 300, 320, 0.0);
    let _ = dm.report_progress(&b, 250, 400, 0.0);
    let wm = collector.round(&dm, RoundKind::Periodic)[0].request.watermark.unwrap();
    assert_eq!((wm.checkpoint_ts, wm.resolved_ts), (250, 320));
}

/// A merge: the sources' WaitingMerge is reported (never coalesced away; the merged dispatcher is
/// born Preparing, which is no transition and, as in the reference, not reported); the merged
/// dispatcher writes nothing before the hand-over and is not in the watermark, the sources are;
/// after the hand-over the merged start bounds the watermark and its Initializing is reported.
#[test]
fn merge_transitions_are_reported_and_preparing_is_not_in_the_watermark() {
    let dm = manager_with(HeartbeatConfig::default());
    for (n, (lo, hi)) in [(1u64, (b"a", b"m")), (2, (b"m", b"z"))] {
        let mut request = create(id(n), span(50, lo, hi), Mode::Default, 2);
        request.config.start_ts = 100;
        dm.commit_create(&ticket(&dm.handle_schedule(&mt(), request))).unwrap();
        let _ = dm.dispatcher_state_changed(id(n), Mode::Default, ComponentState::Working, 100);
    }
    let mut collector = Collector::new(&dm);
    let _ = collector.round(&dm, RoundKind::Periodic);
    let merge = MergeRequest {
        changefeed: ChangefeedId::default(),
        sources: vec![id(1), id(2)],
        merged: id(3),
        mode: Mode::Default,
        epoch: Epoch(2),
    };
    assert_eq!(dm.handle_merge(&mt(), merge).outcome, Outcome::Applied);
    let sources: Vec<_> =
        [id(1), id(2)].iter().map(|d| dm.status_handle_of(Mode::Default, *d).unwrap()).collect();
    let _ = dm.report_progress(&sources[0], 300, 300, 0.0);
    let _ = dm.report_progress(&sources[1], 250, 250, 0.0);
    let out = collector.round(&dm, RoundKind::Periodic);
    let mut seen: Vec<_> = statuses(&out).iter().map(|s| (s.id, s.state)).collect();
    seen.sort_by_key(|x| x.0);
    assert_eq!(seen, vec![(id(1), ComponentState::WaitingMerge), (id(2), ComponentState::WaitingMerge)]);
    // The merged record sits at its provisional start (100); the watermark ignores it.
    assert_eq!(dm.registry().get(Mode::Default, id(3)).unwrap().checkpoint_ts(), 100);
    let wm = collector.round(&dm, RoundKind::Periodic)[0].request.watermark.unwrap();
    assert_eq!(wm.checkpoint_ts, 250, "sources count, Preparing does not");
    let _ = dm.dispatcher_state_changed(id(3), Mode::Default, ComponentState::MergeReady, 0);
    let _ = dm.dispatcher_closed(id(1), Mode::Default, 300, None);
    let _ = dm.dispatcher_closed(id(2), Mode::Default, 260, None);
    let out = collector.round(&dm, RoundKind::StateChange);
    let wm = out[0].request.watermark.unwrap();
    assert!(wm.checkpoint_ts <= 260, "after the hand-over the merged start bounds it: {wm:?}");
    let stops: Vec<_> = statuses(&out)
        .into_iter()
        .filter(|s| s.state == ComponentState::Stopped)
        .map(|s| (s.id, s.checkpoint_ts))
        .collect();
    assert_eq!(stops.len(), 2, "both sources' Stopped with their final checkpoints: {stops:?}");
    assert!(statuses(&out).iter().any(|s| s.id == id(3) && s.state == ComponentState::Initializing));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Whatever mix of creates, commits, state changes, progress, removals and rounds: what the
    /// maintainer model accepts never overshoots a dispatcher it accounts for (B2 closed).
    #[test]
    fn watermark_never_above_an_unflushed_dispatcher(script in proptest::collection::vec((0u8..7, 0u8..6, 0u16..300), 1..80)) {
        let dm = manager_with(HeartbeatConfig::default());
        let mut collector = Collector::new(&dm);
        let mut tickets: HashMap<u8, CreateTicket> = HashMap::new();
        let mut handles: HashMap<u8, StatusHandle> = HashMap::new();
        let mut accepted = None;
        for (action, d, v) in script {
            let did = id(u64::from(d) + 1);
            match action {
                0 => {
                    if dm.registry().get_alive(Mode::Default, did).is_none() {
                        let mut request = create(did, spanned(u64::from(d) + 1), Mode::Default, 2);
                        request.config.start_ts = 100 + u64::from(v);
                        let step = dm.handle_schedule(&mt(), request);
                        if step.outcome == Outcome::Applied {
                            tickets.insert(d, ticket(&step));
                        }
                    }
                }
                1 => {
                    if let Some(t) = tickets.remove(&d) {
                        if dm.commit_create(&t).is_ok() {
                            handles.insert(d, dm.status_handle(&t));
                        }
                    }
                }
                2 => {
                    let _ = dm.dispatcher_state_changed(did, Mode::Default, ComponentState::Working, 0);
                }
                3 => {
                    if let Some(h) = handles.get(&d) {
                        let c = h.record().checkpoint_ts() + u64::from(v);
                        let _ = dm.report_progress(h, c, c, 0.0);
                    }
                }
                4 => {
                    let _ = dm.handle_schedule(&mt(), remove(did, Mode::Default, 2, OperatorType::Remove));
                    if let Some(h) = handles.remove(&d) {
                        let _ = dm.dispatcher_closed(did, Mode::Default, h.record().checkpoint_ts(), None);
                    }
                }
                _ => {
                    let kind = [RoundKind::Periodic, RoundKind::StateChange, RoundKind::Complete][usize::from(v % 3)];
                    for o in collector.round(&dm, kind) {
                        accepted = Some(accept(accepted, o.request.watermark.unwrap()));
                        if let Err(e) = check_accepted(&dm, accepted.unwrap()) {
                            return Err(TestCaseError::fail(e));
                        }
                    }
                }
            }
            if let Some(a) = accepted {
                if let Err(e) = check(&dm, a, false) {
                    return Err(TestCaseError::fail(format!("after {action}: {e}")));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Error path: the first error wins and is resent until cleared
// ---------------------------------------------------------------------------------------------

#[test]
fn the_first_error_is_reported_at_once_and_resent_until_cleared() {
    let dm = manager_with(HeartbeatConfig::default());
    let mut collector = Collector::new(&dm);
    let first = RunningError { code: "E1".into(), message: "sink".into(), ..RunningError::default() };
    assert!(dm.report_error(first));
    assert!(!dm.report_error(RunningError { code: "E2".into(), ..RunningError::default() }), "first wins");
    let errs = |p: &heartbeat::Poll| -> Vec<RunningError> {
        p.heartbeats.iter().filter_map(|o| o.request.err.clone()).collect()
    };
    let p = collector.poll(&dm, 0);
    let sent = errs(&p);
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].code.as_str(), sent[0].node.as_str()), ("E1", "n1"), "the node id is filled in");
    let only = p.heartbeats.iter().find(|o| o.request.err.is_some()).unwrap();
    assert!(
        only.request.watermark.is_none() && only.request.statuses.is_empty(),
        "an error report carries only the error"
    );
    assert!(errs(&collector.poll(&dm, 4999)).is_empty());
    assert_eq!(errs(&collector.poll(&dm, 5000)).len(), 1, "resent every 5 s");
    assert!(dm.clear_error());
    assert!(errs(&collector.poll(&dm, 20_000)).is_empty(), "cleared: no more");
    assert!(dm.report_error(RunningError { code: "E3".into(), ..RunningError::default() }));
    assert_eq!(errs(&collector.poll(&dm, 20_001))[0].code, "E3", "a new error after a clear is first again");
}

#[test]
fn a_failed_create_reports_its_error_on_the_heartbeat_path() {
    let dm = manager_with(HeartbeatConfig::default());
    let t = admit(&dm, id(1), 100);
    let _ = dm.create_failed(&t, RunningError { code: "C4".into(), ..RunningError::default() });
    assert_eq!(dm.coalescer().error().as_ref().as_ref().map(|e| e.code.as_str()), Some("C4"));
}

// ---------------------------------------------------------------------------------------------
// Inbound: fenced by epoch (I1), barrier answers routed to the dispatchers they name
// ---------------------------------------------------------------------------------------------

fn answer(influence: Influence) -> BarrierAnswer {
    BarrierAnswer {
        influence,
        action: Some(BarrierAction {
            pass: false,
            event: BarrierEvent { commit_ts: 90, is_sync_point: false },
        }),
        ack: None,
        ignored: None,
    }
}

fn response(epoch: u64, mode: Mode, answers: Vec<BarrierAnswer>) -> HeartBeatResponse {
    HeartBeatResponse { changefeed: ChangefeedId::default(), answers, mode, epoch: Epoch(epoch) }
}

fn delivered(step: &Step) -> Vec<DispatcherId> {
    let mut ids: Vec<_> = step
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::DeliverBarrier { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    ids.sort();
    ids
}

/// TestHeartBeatResponseAllowedByMaintainerEpoch / ...HandlerDropsStaleMaintainerEpoch.
#[test]
fn heartbeat_response_is_fenced_by_epoch() {
    let dm = manager_with(HeartbeatConfig::default());
    let _ = committed(&dm, id(1), 100);
    let normal = || vec![answer(Influence::Normal { ids: vec![id(1)] })];
    for (from, epoch) in [(NodeId::new("old"), 1), (mt(), 0), (mt(), 1), (NodeId::new("other"), 2)] {
        let step = dm.handle_heartbeat_response(&from, response(epoch, Mode::Default, normal()));
        assert_eq!(step.outcome, Outcome::Dropped(DropReason::Fenced), "{from} {epoch}");
        assert!(step.effects.is_empty());
    }
    let step = dm.handle_heartbeat_response(&mt(), response(2, Mode::Default, normal()));
    assert_eq!(delivered(&step), vec![id(1)]);
}

#[test]
fn heartbeat_response_routes_normal_db_and_all_and_skips_unknown_dispatchers() {
    let dm = manager_with(HeartbeatConfig::default());
    let _ = dm.handle_bootstrap(&mt(), &bootstrap_request(2, None));
    let _ = committed(&dm, id(1), 100);
    let _ = committed(&dm, id(2), 100);
    let mut other_schema = create(id(3), spanned(3), Mode::Default, 2);
    other_schema.config.schema_id = 7;
    let t = ticket(&dm.handle_schedule(&mt(), other_schema));
    dm.commit_create(&t).unwrap();
    let _creating = admit(&dm, id(4), 100);

    let step = dm.handle_heartbeat_response(
        &mt(),
        response(2, Mode::Default, vec![answer(Influence::Normal { ids: vec![id(1), id(42), id(4)] })]),
    );
    assert_eq!(step.outcome, Outcome::Applied);
    assert_eq!(delivered(&step), vec![id(1)], "unknown and not-yet-live dispatchers are skipped");

    let step = dm.handle_heartbeat_response(
        &mt(),
        response(2, Mode::Default, vec![answer(Influence::Db { schema_id: 7 })]),
    );
    assert_eq!(delivered(&step), vec![id(3)]);

    let step = dm.handle_heartbeat_response(&mt(), response(2, Mode::Default, vec![answer(Influence::All)]));
    assert_eq!(delivered(&step), vec![id(1), id(2), id(3)]);

    let step = dm.handle_heartbeat_response(&mt(), response(2, Mode::Redo, vec![answer(Influence::All)]));
    assert_eq!(
        step.outcome,
        Outcome::Dropped(DropReason::Unknown),
        "no redo dispatcher: reaches nobody, no panic"
    );

    let step = dm.handle_heartbeat_response(
        &mt(),
        response(2, Mode::Default, vec![answer(Influence::Normal { ids: vec![id(42)] })]),
    );
    assert_eq!(step.outcome, Outcome::Dropped(DropReason::Unknown));
}

#[test]
fn db_answers_also_reach_the_table_trigger() {
    let dm = manager_with(HeartbeatConfig::default());
    let trigger = id(100);
    let step = dm.handle_bootstrap(&mt(), &bootstrap_request(3, Some(trigger)));
    assert_eq!(step.outcome, Outcome::Applied);
    let mut in_schema = create(id(1), spanned(1), Mode::Default, 3);
    in_schema.config.schema_id = 7;
    dm.commit_create(&ticket(&dm.handle_schedule(&mt(), in_schema))).unwrap();
    let step = dm.handle_heartbeat_response(
        &mt(),
        response(3, Mode::Default, vec![answer(Influence::Db { schema_id: 7 })]),
    );
    assert_eq!(delivered(&step), vec![id(1), trigger]);
    let checkpoint = dm.handle_checkpoint_ts(&CheckpointTsMessage {
        changefeed: ChangefeedId::default(),
        checkpoint_ts: 77,
    });
    assert!(
        matches!(checkpoint.effects[..], [Effect::SinkCheckpoint { trigger: t, checkpoint_ts: 77 }] if t == trigger)
    );
}

/// TestRedoResolvedTsForwardMessageHandlerDropsStaleMaintainerEpoch (and B10 for redo answers).
#[test]
fn redo_control_messages_are_fenced_and_monotone() {
    let dm = manager_with(HeartbeatConfig::default());
    let fwd = |epoch, ts| RedoResolvedTsForward {
        changefeed: ChangefeedId::default(),
        resolved_ts: ts,
        epoch: Epoch(epoch),
    };
    let _ = dm.handle_redo_resolved_ts_forward(&mt(), &fwd(2, 50));
    let stale = dm.handle_redo_resolved_ts_forward(&NodeId::new("old"), &fwd(1, 100));
    assert_eq!(stale.outcome, Outcome::Dropped(DropReason::Fenced));
    assert_eq!(dm.redo_global_ts(), 50);
    let up = dm.handle_redo_resolved_ts_forward(&mt(), &fwd(2, 120));
    assert!(matches!(up.effects[..], [Effect::RedoGlobalTsAdvanced { resolved_ts: 120 }]));
    let down = dm.handle_redo_resolved_ts_forward(&mt(), &fwd(2, 110));
    assert!(down.effects.is_empty(), "never lowered");
    assert_eq!(dm.redo_global_ts(), 120);
    let meta = dm.handle_redo_meta(
        &NodeId::new("old"),
        &RedoMetaMessage {
            changefeed: ChangefeedId::default(),
            resolved_ts: 1,
            checkpoint_ts: 1,
            epoch: Epoch(1),
        },
    );
    assert_eq!(meta.outcome, Outcome::Dropped(DropReason::Fenced));

    let not_ready = DispatcherManager::new(ManagerConfig {
        node: NodeId::new("n1"),
        changefeed: ChangefeedId::default(),
        keyspace_id: 0,
        redo_enabled: true,
    });
    let _ = not_ready.handle_bootstrap(&mt(), &bootstrap_request(2, None));
    let step =
        not_ready.handle_heartbeat_response(&mt(), response(2, Mode::Redo, vec![answer(Influence::All)]));
    assert_eq!(
        step.outcome,
        Outcome::Dropped(DropReason::RedoNotReady),
        "B10: no panic on an early redo answer"
    );
}

#[test]
fn a_response_without_influenced_dispatchers_is_refused_at_the_wire() {
    let p = pb::HeartBeatResponse {
        changefeed_id: None,
        dispatcher_statuses: vec![pb::DispatcherStatus::default()],
        mode: 0,
        maintainer_epoch: 2,
    };
    assert!(matches!(
        HeartBeatResponse::try_from(&p),
        Err(dispatcher_core::wire::WireError::Missing { field: "influencedDispatchers", .. })
    ));
    let ok = response(2, Mode::Redo, vec![answer(Influence::Db { schema_id: 4 }), answer(Influence::All)]);
    let wire = pb::HeartBeatResponse::from(&ok);
    assert!(wire.dispatcher_statuses.iter().all(|s| s
        .influenced_dispatchers
        .as_ref()
        .unwrap()
        .exclude_dispatcher_id
        .is_some()));
    assert_eq!(HeartBeatResponse::try_from(&wire), Ok(ok));
}

#[test]
fn heartbeat_request_round_trips_through_the_wire() {
    let request = Heartbeat {
        changefeed: ChangefeedId { high: 1, low: 2, name: "cf".into(), keyspace: "ks".into() },
        watermark: Some(Watermark { checkpoint_ts: 5, resolved_ts: 6, seq: 7 }),
        redo_watermark: Some(Watermark::NONE),
        statuses: vec![DispatcherStatus {
            id: id(3),
            mode: Mode::Redo,
            state: ComponentState::Stopped,
            checkpoint_ts: 9,
            event_size_per_second: 1.5,
        }],
        complete: true,
        err: None,
    };
    let wire = pb::HeartBeatRequest::from(&request);
    assert!(wire.compelete_status);
    assert_eq!(Heartbeat::try_from(&wire), Ok(request));
}

// ---------------------------------------------------------------------------------------------
// Block statuses: batching and de-duplication (B15)
// ---------------------------------------------------------------------------------------------

fn block(d: u64, stage: BlockStage, block_ts: Ts, sync: bool, mode: Mode) -> BlockStatus {
    BlockStatus {
        id: id(d),
        mode,
        state: BlockState {
            is_blocked: true,
            block_ts,
            is_sync_point: sync,
            stage,
            detail: Arc::new(BlockDetail {
                need_added_tables: vec![AddedTable { table_id: 5, schema_id: 1, splitable: true }],
                ..BlockDetail::default()
            }),
        },
    }
}

/// TestBlockStatusBufferDeduplicatesPendingDone / ...PendingWaiting / ...AllowsAgainAfterTake.
#[test]
fn buffer_dedupes_pending_waiting_and_done_until_taken() {
    for stage in [BlockStage::Waiting, BlockStage::Done] {
        let buffer = BlockStatusBuffer::new(16);
        assert_eq!(buffer.offer(block(1, stage, 10, false, Mode::Default)), Ok(Offered::Buffered));
        assert_eq!(buffer.offer(block(1, stage, 10, false, Mode::Default)), Ok(Offered::Duplicate));
        assert_eq!(buffer.len(), 1);
        assert_eq!(buffer.take(), Some(block(1, stage, 10, false, Mode::Default)), "materialized intact");
        assert_eq!(
            buffer.offer(block(1, stage, 10, false, Mode::Default)),
            Ok(Offered::Buffered),
            "again after take"
        );
    }
}

/// TestBlockStatusBufferKeepsWaitingBeforeDone / ...KeepsDistinctDoneKeys; NONE never deduped.
#[test]
fn buffer_keeps_distinct_keys_in_order_and_never_dedupes_none() {
    let buffer = BlockStatusBuffer::new(16);
    let offers = [
        block(1, BlockStage::Waiting, 10, false, Mode::Default),
        block(1, BlockStage::Done, 10, false, Mode::Default),
        block(1, BlockStage::Done, 10, false, Mode::Default),
        block(1, BlockStage::Done, 10, true, Mode::Default),
        block(1, BlockStage::Done, 10, false, Mode::Redo),
        block(1, BlockStage::None, 10, false, Mode::Default),
        block(1, BlockStage::None, 10, false, Mode::Default),
    ];
    for o in offers.iter().cloned() {
        let _ = buffer.offer(o).unwrap();
    }
    let taken: Vec<_> = std::iter::from_fn(|| buffer.take()).collect();
    let want: Vec<_> = offers.iter().enumerate().filter(|(i, _)| *i != 2).map(|(_, o)| o.clone()).collect();
    assert_eq!(taken, want);
}

#[test]
fn a_full_buffer_hands_the_status_back_and_frees_its_key() {
    let buffer = BlockStatusBuffer::new(1);
    let _ = buffer.offer(block(1, BlockStage::None, 10, false, Mode::Default)).unwrap();
    let back = buffer.offer(block(2, BlockStage::Waiting, 10, false, Mode::Default)).unwrap_err();
    assert_eq!(back.0.id, id(2));
    let _ = buffer.take();
    assert_eq!(buffer.offer(block(2, BlockStage::Waiting, 10, false, Mode::Default)), Ok(Offered::Buffered));
}

/// TestCollectBlockStatusRequestSplitsOversizedMessages.
#[test]
fn batches_split_by_mode_and_at_2048() {
    let mut all = Vec::new();
    for n in 0..2050u64 {
        all.push(block(n + 1, BlockStage::None, 10, false, Mode::Default));
    }
    for n in 0..2049u64 {
        all.push(block(n + 1, BlockStage::None, 10, false, Mode::Redo));
    }
    let out = batch(&ChangefeedId::default(), all, 2048);
    let shape: Vec<_> = out.iter().map(|r| (r.mode, r.statuses.len())).collect();
    assert_eq!(shape, vec![(Mode::Default, 2048), (Mode::Default, 2), (Mode::Redo, 2048), (Mode::Redo, 1)]);
    assert_eq!(out[1].statuses[1].id, id(2050), "original order kept");
    assert!(out.iter().all(|r| r.statuses.iter().all(|s| s.mode == r.mode)));
}

/// TestCollectBlockStatusRequestKeepsLateArrivalInSameBatch.
#[test]
fn a_late_arrival_within_the_window_joins_the_batch() {
    let dm = manager_with(HeartbeatConfig::default());
    let mut collector = Collector::new(&dm);
    let _ = dm.block_statuses().offer(block(1, BlockStage::Waiting, 10, false, Mode::Default)).unwrap();
    assert!(collector.poll(&dm, 0).block_statuses.is_empty(), "window opens");
    let _ = dm.block_statuses().offer(block(2, BlockStage::Waiting, 10, false, Mode::Default)).unwrap();
    assert!(collector.poll(&dm, 9).block_statuses.is_empty());
    let out = collector.poll(&dm, 10).block_statuses;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].request.statuses.iter().map(|s| s.id).collect::<Vec<_>>(), vec![id(1), id(2)]);
    assert_eq!(out[0].to, mt());
}

fn request_of(statuses: Vec<BlockStatus>) -> BlockStatusRequest {
    BlockStatusRequest { changefeed: ChangefeedId::default(), mode: Mode::Default, statuses }
}

/// TestBlockStatusRequestQueueDeduplicatesQueuedAndInFlightDone / ...Waiting.
#[test]
fn send_queue_dedupes_across_queued_and_in_flight() {
    for stage in [BlockStage::Done, BlockStage::Waiting] {
        let q = BlockStatusQueue::new(8);
        let s = || request_of(vec![block(1, stage, 10, false, Mode::Default)]);
        assert_eq!(q.enqueue(mt(), s()).unwrap(), Enqueued::Queued { dropped: 0 });
        assert_eq!(q.enqueue(mt(), s()).unwrap(), Enqueued::AllDuplicates, "queued");
        let in_flight = q.pop().unwrap();
        assert!(q.pop().is_none(), "only the first was queued");
        assert_eq!(q.enqueue(mt(), s()).unwrap(), Enqueued::AllDuplicates, "in flight");
        assert_eq!(
            q.enqueue(NodeId::new("mt2"), s()).unwrap(),
            Enqueued::Queued { dropped: 0 },
            "another target is another key"
        );
        q.sent(&in_flight);
        assert_eq!(
            q.enqueue(mt(), s()).unwrap(),
            Enqueued::Queued { dropped: 0 },
            "accepted after send completes"
        );
    }
}

/// ...KeepsDistinctDoneKeys / ...KeepsWaitingAndDoneDistinct.
#[test]
fn send_queue_keeps_distinct_keys_and_filters_inside_a_request() {
    let q = BlockStatusQueue::new(8);
    let r = request_of(vec![
        block(1, BlockStage::Waiting, 10, false, Mode::Default),
        block(1, BlockStage::Done, 10, false, Mode::Default),
        block(1, BlockStage::Done, 10, true, Mode::Default),
        block(1, BlockStage::Done, 10, false, Mode::Default),
        block(1, BlockStage::None, 10, false, Mode::Default),
        block(1, BlockStage::None, 10, false, Mode::Default),
    ]);
    assert_eq!(q.enqueue(mt(), r).unwrap(), Enqueued::Queued { dropped: 1 });
    let sent = q.pop().unwrap();
    let stages: Vec<_> =
        sent.request.statuses.iter().map(|s| (s.state.stage, s.state.is_sync_point)).collect();
    assert_eq!(
        stages,
        vec![
            (BlockStage::Waiting, false),
            (BlockStage::Done, false),
            (BlockStage::Done, true),
            (BlockStage::None, false),
            (BlockStage::None, false)
        ]
    );
}

#[test]
fn a_full_send_queue_hands_the_request_back_and_frees_its_keys() {
    let q = BlockStatusQueue::new(1);
    let s = |d| request_of(vec![block(d, BlockStage::Done, 10, false, Mode::Default)]);
    let _ = q.enqueue(mt(), s(1)).unwrap();
    let full = q.enqueue(mt(), s(2)).unwrap_err();
    assert_eq!(full.request, s(2));
    let _ = q.pop().unwrap();
    assert_eq!(q.enqueue(mt(), s(2)).unwrap(), Enqueued::Queued { dropped: 0 }, "its key was released");
}

#[test]
fn block_status_request_round_trips_through_the_wire() {
    let r = request_of(vec![block(1, BlockStage::Done, 10, true, Mode::Default)]);
    let wire = pb::BlockStatusRequest::from(&r);
    assert_eq!(BlockStatusRequest::try_from(&wire), Ok(r));
}

proptest! {
    /// The direct encoder writes exactly what prost writes for the same request.
    #[test]
    fn direct_heartbeat_encoding_equals_prost(
        high in any::<u64>(), low in any::<u64>(), name in ".{0,8}",
        wm in proptest::option::of((any::<u64>(), any::<u64>(), any::<u64>())),
        rows in proptest::collection::vec((1u64..u64::MAX, 0usize..7, any::<u64>(), prop_oneof![Just(0.0f32), any::<f32>()], any::<bool>()), 0..20),
        complete in any::<bool>(),
        err in proptest::option::of(".{0,6}"),
    ) {
        let request = Heartbeat {
            changefeed: ChangefeedId { high, low, name: name.clone(), keyspace: name },
            watermark: wm.map(|(c, r, s)| Watermark { checkpoint_ts: c, resolved_ts: r, seq: s }),
            redo_watermark: Some(Watermark::NONE),
            statuses: rows.into_iter().map(|(d, st, c, rate, redo)| DispatcherStatus {
                id: DispatcherId::new(d, d.rotate_left(7)).unwrap(),
                mode: if redo { Mode::Redo } else { Mode::Default },
                state: ComponentState::ALL[st],
                checkpoint_ts: c,
                event_size_per_second: rate,
            }).collect(),
            complete,
            err: err.map(|m| RunningError { code: "E".into(), message: m, ..RunningError::default() }),
        };
        use prost::Message;
        let direct = dispatcher_core::wire::encode::heartbeat_to_vec(&request);
        prop_assert_eq!(direct.len(), dispatcher_core::wire::encode::heartbeat_len(&request));
        prop_assert_eq!(direct, pb::HeartBeatRequest::from(&request).encode_to_vec());
    }
}

/// Found by the swarm explorer (seed 36034): a resent Remove of a dispatcher that had closed is
/// answered with a synthetic Stopped; if the same id is re-created on the node before the next
/// round, that round must list the old Stopped before the new dispatcher's Working, or the
/// maintainer takes the new dispatcher for stopped and places it again elsewhere (I2).
#[test]
fn a_synthetic_stopped_is_listed_before_the_working_of_an_id_re_created_since() {
    let dm = manager_with(HeartbeatConfig::default());
    let _ = committed(&dm, id(1), 100);
    let _ = dm.dispatcher_state_changed(id(1), Mode::Default, ComponentState::Working, 100);
    close(&dm, id(1), 150);
    let mut collector = Collector::new(&dm);
    let _ = collector.round(&dm, RoundKind::Periodic);
    // The resent Remove finds the id closed: a synthetic Stopped is queued.
    let _ = dm.handle_schedule(&mt(), remove(id(1), Mode::Default, 2, OperatorType::Move));
    // The id is created again on this node and reports Working, all before the next round.
    let _ = committed(&dm, id(1), 150);
    let _ = dm.dispatcher_state_changed(id(1), Mode::Default, ComponentState::Working, 150);
    let listed: Vec<ComponentState> = statuses(&collector.round(&dm, RoundKind::Periodic))
        .iter()
        .filter(|s| s.id == id(1))
        .map(|s| s.state)
        .collect();
    // The old Stopped is dropped outright: the id is live again when the round goes out, so it
    // could only be misread (issue 9 review). Nothing terminal may follow the Working.
    assert_eq!(listed, vec![ComponentState::Working], "{listed:?}");
}
