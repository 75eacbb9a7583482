//! Operator transition tables and operator-controller rules, with the corrections stated at the
//! top of src/maintainer/operator.rs.
//!
//! Each operator kind has one table of rows `(name, starting phase + setup events, event, expected
//! next phase, expected message, expected changes)`, driven by one loop ([`run`]). The setup events
//! bring a freshly started operator to the starting phase, which is asserted, so a row cannot pass
//! by starting from the wrong phase. Every assertion names its row. Shared here: the fixture, the
//! events, the table builder and driver, and the message check.

mod add;
mod admission;
mod controller;
mod merge;
mod messages;
mod moving;
mod remove;
mod split;
mod start;

use dispatcher_core::ids::{ChangefeedId, DispatcherId, Epoch, Mode, NodeId, Ts};
use dispatcher_core::maintainer::{
    create_start_ts, AfterRemove, Change, Finished, Guard, Kind, MessageContext, NewSpan, OpEvent, Operator,
    OperatorController, OperatorKind, OperatorOutcome, OperatorPhase, Refusal, SpanController, SpanRecord,
    SpanState,
};
use dispatcher_core::messages::{ComponentState, OperatorType, PendingBlock, ScheduleAction, ToNode};
use dispatcher_core::span::TableSpan;

use ComponentState::{Initializing, Removed, Stopped, WaitingMerge, Working};

const EPOCH: Epoch = Epoch(7);
/// Committed checkpoint of the default context: below every record's checkpoint, so no clamp.
const COMMITTED: Ts = 50;
/// Checkpoint of the operated records.
const CKPT: Ts = 100;
/// A merge in the tables gives up after this many unaccepted sends.
const MAX_SENDS: u32 = 2;

/// The message of a finished or silent operator.
const QUIET: Msg = Msg::Nothing;

const OK: OperatorPhase = OperatorPhase::Done(OperatorOutcome::Succeeded);
const FAILED: OperatorPhase = OperatorPhase::Done(OperatorOutcome::Failed);
const CANCELLED: OperatorPhase = OperatorPhase::Done(OperatorOutcome::Cancelled);

fn id(n: u64) -> DispatcherId {
    DispatcherId::new(0, n).unwrap()
}

fn node(s: &str) -> NodeId {
    NodeId::new(s)
}

fn whole(t: i64) -> TableSpan {
    TableSpan::whole_table(0, t)
}

fn new_span(n: u64, span: TableSpan, checkpoint: Ts, block: Option<PendingBlock>) -> NewSpan {
    NewSpan { id: id(n), span, schema_id: 5, checkpoint, component: Working, block }
}

/// The records the tables operate on, in one real span controller:
///
/// | id | span | state |
/// |---|---|---|
/// | 1 | table 1 | replicating on `a` (Remove, Move, Split work on it) |
/// | 2 | table 3 | absent (Add works on it) |
/// | 11, 12 | halves of table 2 | replicating on `a` (merge sources) |
/// | 13 | table 2 | scheduling on `a` (merge target) |
///
/// Id 99 has no record; node `c` hosts nothing.
struct Fx {
    sc: SpanController,
    cf: ChangefeedId,
}

impl Fx {
    fn new(mode: Mode) -> Self {
        let mut sc = SpanController::new(mode);
        let a = Some(node("a"));
        sc.insert(new_span(1, whole(1), CKPT, None), SpanState::Replicating, a.clone()).unwrap();
        sc.insert(new_span(2, whole(3), CKPT, None), SpanState::Absent, None).unwrap();
        let halves = whole(2).split_even(2).unwrap();
        sc.insert(new_span(11, halves[0].clone(), CKPT, None), SpanState::Replicating, a.clone()).unwrap();
        sc.insert(new_span(12, halves[1].clone(), CKPT + 20, None), SpanState::Replicating, a.clone())
            .unwrap();
        sc.insert(new_span(13, whole(2), CKPT, None), SpanState::Scheduling, a).unwrap();
        let cf = ChangefeedId { high: 1, low: 2, name: "cf".into(), keyspace: "ks".into() };
        Self { sc, cf }
    }

    fn rec(&self, n: u64) -> &SpanRecord {
        self.sc.get(id(n)).expect("fixture record")
    }

    fn g(&self, n: u64) -> Guard {
        self.rec(n).guard()
    }

    fn ctx(&self) -> MessageContext<'_> {
        self.ctx_with(EPOCH, COMMITTED)
    }

    fn ctx_with(&self, epoch: Epoch, committed: Ts) -> MessageContext<'_> {
        MessageContext { sc: &self.sc, epoch, committed, changefeed: &self.cf }
    }

    fn split(&self) -> Operator {
        Operator::split(self.rec(1), split_parts()).unwrap()
    }
}

fn split_parts() -> Vec<TableSpan> {
    whole(1).split_even(3).unwrap()
}

/// An event, owning nothing so rows can be `Copy`.
#[derive(Clone, Copy, Debug)]
enum Ev {
    /// Status `(from, id, state, checkpoint)`.
    St(&'static str, u64, ComponentState, Ts),
    /// Node removed.
    Gone(&'static str),
    Cancel,
    Resent,
    Released,
}
use Ev::{Cancel, Gone, Released, Resent, St};

fn feed(op: &mut Operator, ev: Ev) -> Vec<Change> {
    match ev {
        St(from, n, state, checkpoint) => {
            let from = node(from);
            op.on(OpEvent::Status { from: &from, id: id(n), state, checkpoint })
        }
        Gone(n) => {
            let n = node(n);
            op.on(OpEvent::NodeRemoved(&n))
        }
        Cancel => op.on(OpEvent::Cancelled),
        Resent => op.on(OpEvent::Resent),
        Released => op.on(OpEvent::Released),
    }
}

/// The message a phase wants: kind, target node, operator type.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Msg {
    Nothing,
    Create(&'static str, OperatorType),
    Remove(&'static str, OperatorType),
    Merge(&'static str),
}

struct Row {
    name: String,
    from: OperatorPhase,
    setup: Vec<Ev>,
    event: Ev,
    next: OperatorPhase,
    msg: Msg,
    changes: Vec<Change>,
}

/// A table under construction: each row starts from the phase and setup last given to `at`.
#[derive(Default)]
struct Table {
    rows: Vec<Row>,
    from: Option<(OperatorPhase, Vec<Ev>)>,
}

impl Table {
    /// The rows that follow start in phase `from`, reached by `setup` from a fresh start.
    fn at(&mut self, from: OperatorPhase, setup: &[Ev]) {
        self.from = Some((from, setup.to_vec()));
    }

    fn row(
        &mut self,
        name: impl Into<String>,
        event: Ev,
        next: OperatorPhase,
        msg: Msg,
        changes: Vec<Change>,
    ) {
        let (from, setup) = self.from.clone().expect("a starting phase");
        self.rows.push(Row { name: name.into(), from, setup, event, next, msg, changes });
    }

    /// Rows (names after `prefix`) for the origin `a` answering about dispatcher 1 while it is
    /// removed, the removal sending `msg`: Stopped, Removed and Stopped(0) (it never existed) end
    /// the removal in `end` with `gone(checkpoint)`; its live states, a Stopped from another node
    /// and one of another id change nothing.
    fn origin_answers(
        &mut self,
        prefix: &str,
        msg: Msg,
        end: (OperatorPhase, Msg),
        gone: impl Fn(Ts) -> Vec<Change>,
    ) {
        let (stay, _) = self.from.clone().expect("a starting phase");
        let name = |what: String| format!("{prefix}{what}");
        for (what, state, ts) in
            [("Stopped", Stopped, 130), ("Removed", Removed, 140), ("Stopped(0): never existed", Stopped, 0)]
        {
            self.row(name(format!("origin {what}")), St("a", 1, state, ts), end.0, end.1, gone(ts));
        }
        for state in [Working, WaitingMerge, Initializing] {
            let what = format!("origin {state:?} is not terminal");
            self.row(name(what), St("a", 1, state, 130), stay, msg, vec![]);
        }
        self.row(name("Stopped from another node".into()), St("b", 1, Stopped, 130), stay, msg, vec![]);
        self.row(name("origin Stopped for another id".into()), St("a", 99, Stopped, 130), stay, msg, vec![]);
    }

    /// Rows for the create's destination `b` answering about `own` (guard `g`), the create sending
    /// `msg`: Working places it (`placed`); Removed at the start sent refuses it for good, so it is
    /// placed again under a fresh id; Removed at another start is the refusal of a delayed copy of
    /// an older create (seed 48827); Stopped keeps it resending, from that checkpoint.
    fn dest_answers(&mut self, prefix: &str, own: u64, g: Guard, msg: Msg, placed: Vec<Change>) {
        let (stay, _) = self.from.clone().expect("a starting phase");
        let name = |what: &str| format!("{prefix}dest {what}");
        self.row(name("Working"), St("b", own, Working, 130), OK, QUIET, placed);
        let refused = name("Removed at the start sent: refused for good, placed again under a fresh id");
        self.row(refused, St("b", own, Removed, CKPT), FAILED, QUIET, vec![Change::Renew(g)]);
        let copy = name("Removed at another start is a copy's");
        self.row(copy, St("b", own, Removed, 90), stay, msg, vec![]);
        let resend = name("Stopped: keep resending, from its checkpoint");
        self.row(resend, St("b", own, Stopped, 130), stay, msg, vec![Change::RaiseCheckpoint(g, 130)]);
        self.row(name("Initializing"), St("b", own, Initializing, 130), stay, msg, vec![]);
    }

    /// Rows proving that a finished operator ignores everything: `label` is how it finished.
    fn done(&mut self, label: &str, setup: &[Ev], done: OperatorPhase, own: u64) {
        self.at(done, setup);
        let events = [
            St("a", own, Working, 999),
            St("b", own, Working, 999),
            St("a", own, Stopped, 999),
            St("b", own, Stopped, 999),
            St("a", own, Removed, 999),
            St("a", 11, WaitingMerge, 999),
            St("a", 11, Working, 999),
            Gone("a"),
            Gone("b"),
            Gone("c"),
            Cancel,
            Resent,
            Released,
        ];
        for e in events {
            self.row(format!("done ({label}), then {e:?}"), e, done, QUIET, vec![]);
        }
    }
}

/// Drives every row against a fresh, started operator. Returns the number of rows run.
fn run(table: &str, fx: &Fx, make: impl Fn(&Fx) -> Operator, rows: &[Row]) -> usize {
    assert!(!rows.is_empty(), "{table}: empty table");
    for r in rows {
        let name = format!("{table} / {}", r.name);
        let mut op = make(fx);
        // Each phase's message goes out as the operator enters it (and on every resend).
        let _ = op.start();
        let _ = op.message(&fx.ctx());
        for ev in &r.setup {
            let _ = feed(&mut op, *ev);
            let _ = op.message(&fx.ctx());
        }
        assert_eq!(op.phase(), r.from, "{name}: the setup did not reach the starting phase");
        let changes = feed(&mut op, r.event);
        assert_eq!(op.phase(), r.next, "{name}: next phase");
        assert_eq!(op.is_finished(), matches!(r.next, OperatorPhase::Done(_)), "{name}: is_finished");
        assert_eq!(changes, r.changes, "{name}: changes");
        check_message(fx, &op, r.msg, &name);
    }
    rows.len()
}

/// Checks `op.message` against the expectation: kind, node and OperatorType, plus the fields
/// every message must carry (epoch and changefeed of the context, mode of the span controller,
/// the operator's id and span, the create start point).
fn check_message(fx: &Fx, op: &Operator, want: Msg, name: &str) {
    let got = op.message(&fx.ctx());
    match (want, got) {
        (Msg::Nothing, None) => {}
        (Msg::Create(to, ty) | Msg::Remove(to, ty), Some((at, ToNode::Schedule(req)))) => {
            let (what, action) = match want {
                Msg::Create(..) => ("create", ScheduleAction::Create),
                _ => ("remove", ScheduleAction::Remove),
            };
            assert_eq!(at, node(to), "{name}: {what} target");
            assert_eq!(req.action(), action, "{name}: action");
            assert_eq!(req.operator_type, ty, "{name}: operator type");
            assert_eq!(req.epoch, EPOCH, "{name}: epoch");
            assert_eq!(req.changefeed, fx.cf, "{name}: changefeed");
            assert_eq!(req.config.id, op.id, "{name}: id");
            assert_eq!(req.config.mode, fx.sc.mode(), "{name}: mode");
            if action == ScheduleAction::Remove {
                assert_eq!(req.span(), Some(&op.span), "{name}: span rides along");
                // The floor of the incarnation it means: what a create of the record would start
                // at now (CKPT here), when the record is bound to the target; else any (0).
                let bound = fx.sc.get_guarded(op.guard).is_some_and(|r| r.node.as_ref() == Some(&at));
                let floor = if bound && op.op_kind() != OperatorKind::Merge { CKPT } else { 0 };
                assert_eq!(req.config.start_ts, floor, "{name}: start ts (floor)");
                return;
            }
            let record = fx.sc.get_guarded(op.guard).expect("record of a create");
            assert_eq!(req.span(), Some(&record.span), "{name}: span");
            assert_eq!(req.config.schema_id, 5, "{name}: schema");
            // The fixture records have no pending block and a checkpoint above COMMITTED.
            assert_eq!(req.config.start_ts, CKPT, "{name}: start ts");
            assert!(!req.config.skip_dml_as_start_ts, "{name}: skip dml");
        }
        (Msg::Merge(to), Some((at, ToNode::Merge(req)))) => {
            assert_eq!(at, node(to), "{name}: merge target");
            assert_eq!(req.sources, vec![id(11), id(12)], "{name}: sources in key order");
            assert_eq!(req.merged, id(13), "{name}: merged id");
            assert_eq!(req.epoch, EPOCH, "{name}: epoch");
            assert_eq!(req.mode, fx.sc.mode(), "{name}: mode");
            assert_eq!(req.changefeed, fx.cf, "{name}: changefeed");
        }
        (want, got) => panic!("{name}: message: want {want:?}, got {got:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The operator controller's fixture

/// A span controller for the controller tests. Records (all checkpoint = 10 × id unless noted):
/// 1: table 1 on a; 2: first half of table 1 on a (overlaps 1); 3: table 4 on a;
/// 4, 5: halves of table 5 on a; 11, 12: halves of table 2 on a (sources); 13: table 2 scheduling
/// on a (target); 2x: absent, table 6.
fn controller_sc() -> SpanController {
    let mut sc = SpanController::new(Mode::Default);
    let a = Some(node("a"));
    let rep = SpanState::Replicating;
    let halves = |t| whole(t).split_even(2).unwrap();
    sc.insert(new_span(1, whole(1), 10, None), rep, a.clone()).unwrap();
    sc.insert(new_span(2, halves(1)[0].clone(), 20, None), rep, a.clone()).unwrap();
    sc.insert(new_span(3, whole(4), 30, None), rep, a.clone()).unwrap();
    sc.insert(new_span(4, halves(5)[0].clone(), 40, None), rep, a.clone()).unwrap();
    sc.insert(new_span(5, halves(5)[1].clone(), 50, None), rep, a.clone()).unwrap();
    sc.insert(new_span(11, halves(2)[0].clone(), 110, None), rep, a.clone()).unwrap();
    sc.insert(new_span(12, halves(2)[1].clone(), 120, None), rep, a.clone()).unwrap();
    sc.insert(new_span(13, whole(2), 110, None), SpanState::Scheduling, a).unwrap();
    sc.insert(new_span(20, whole(6), 200, None), SpanState::Absent, None).unwrap();
    sc
}

// Operator builders for both fixtures (`Fx` adds 2, moves 1, merges 11 and 12 into 13).
fn rec(sc: &SpanController, n: u64) -> &SpanRecord {
    sc.get(id(n)).unwrap()
}

fn remove_op(sc: &SpanController, n: u64) -> Operator {
    Operator::remove(rec(sc, n), node("a"), OperatorType::Remove, AfterRemove::Nothing)
}

fn add_op(sc: &SpanController, n: u64) -> Operator {
    Operator::add(rec(sc, n), node("b"), OperatorType::Add)
}

fn move_op(sc: &SpanController, n: u64) -> Operator {
    Operator::moving(rec(sc, n), node("b")).unwrap()
}

fn merge_op(sc: &SpanController, max_sends: u32) -> Operator {
    Operator::merge(rec(sc, 13), node("a"), vec![rec(sc, 11).guard(), rec(sc, 12).guard()], max_sends)
}

fn occupy_op(sc: &SpanController, n: u64) -> Operator {
    Operator::occupy(rec(sc, n), id(13)).unwrap()
}

/// What the merge of 11 and 12 into 13 changes when it succeeds, the target's Working reporting
/// `at`: the sources go, the target replicates on `a` with `at` as the floor of its Removes, the
/// occupies are released.
fn merged(sc: &SpanController, at: Ts) -> Vec<Change> {
    let g = |n| rec(sc, n).guard();
    let target = Change::Replicate { guard: g(13), on: node("a") };
    let started = Change::Started(g(13), at);
    vec![Change::Delete(g(11)), Change::Delete(g(12)), target, started, Change::Release(vec![id(11), id(12)])]
}

/// What that merge changes when abandoned (the node aborted it, or it was withdrawn): the target
/// goes and every source is evicted (removed, then placed again): what the node did with it is
/// not trusted to statuses.
fn abandoned(sc: &SpanController) -> Vec<Change> {
    let evict = |n| Change::Evict { guard: rec(sc, n).guard(), on: node("a") };
    vec![Change::Delete(rec(sc, 13).guard()), Change::Release(vec![id(11), id(12)]), evict(11), evict(12)]
}

/// Admits the occupies and the merge, in the order the maintainer does.
fn admit_merge(oc: &mut OperatorController, sc: &SpanController, max_sends: u32) {
    oc.admit(occupy_op(sc, 11), sc, 0).expect("occupy 11");
    oc.admit(occupy_op(sc, 12), sc, 0).expect("occupy 12");
    oc.admit(merge_op(sc, max_sends), sc, 0).expect("merge");
}

/// The default changefeed.
static CF: ChangefeedId = ChangefeedId { high: 0, low: 0, name: String::new(), keyspace: String::new() };

fn ctx(sc: &SpanController) -> MessageContext<'_> {
    MessageContext { sc, epoch: EPOCH, committed: 0, changefeed: &CF }
}

/// `(target node, action or "merge", id)` of each message, for compact assertions.
fn sent(messages: &[(NodeId, ToNode)]) -> Vec<(String, &'static str, DispatcherId)> {
    messages
        .iter()
        .map(|(to, m)| match m {
            ToNode::Schedule(r) => {
                let what = if r.action() == ScheduleAction::Create { "create" } else { "remove" };
                (to.to_string(), what, r.config.id)
            }
            ToNode::Merge(r) => (to.to_string(), "merge", r.merged),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

fn msg(to: &str, what: &'static str, n: u64) -> (String, &'static str, DispatcherId) {
    (to.to_string(), what, id(n))
}

fn finished(n: u64, kind: OperatorKind, outcome: OperatorOutcome) -> Finished {
    Finished { id: id(n), kind, outcome }
}

fn phase(oc: &OperatorController, n: u64) -> OperatorPhase {
    oc.get(id(n)).expect("operator").phase()
}
