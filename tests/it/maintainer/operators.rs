//! Operator transition tables and operator-controller rules, with the corrections stated at the
//! top of src/maintainer/operator.rs.
//!
//! Each operator kind has one table of rows `(name, starting phase + setup events, event, expected
//! next phase, expected message, expected changes)`, driven by one loop ([`run`]). The setup events
//! bring a freshly started operator to the starting phase, which is asserted, so a row cannot pass
//! by starting from the wrong phase. Every assertion names its row.

use dispatcher_core::ids::{ChangefeedId, DispatcherId, Epoch, Mode, NodeId, Ts};
use dispatcher_core::maintainer::operator::{create_start_ts, MessageContext};
use dispatcher_core::maintainer::{
    AfterRemove, Change, Finished, Guard, Kind, NewSpan, OpEvent, OpKind, Operator, OperatorController,
    Outcome, Phase, Refusal, SpanController, SpanRecord, SpanState,
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

const OK: Phase = Phase::Done(Outcome::Succeeded);
const FAILED: Phase = Phase::Done(Outcome::Failed);
const CANCELLED: Phase = Phase::Done(Outcome::Cancelled);

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

    fn add(&self) -> Operator {
        Operator::add(self.rec(2), node("b"), OperatorType::Add)
    }

    fn moving(&self) -> Operator {
        Operator::moving(self.rec(1), node("b")).unwrap()
    }

    fn split(&self) -> Operator {
        Operator::split(self.rec(1), split_parts()).unwrap()
    }

    fn merge(&self) -> Operator {
        Operator::merge(self.rec(13), node("a"), vec![self.g(11), self.g(12)], MAX_SENDS)
    }

    fn occupy(&self, n: u64) -> Operator {
        Operator::occupy(self.rec(n), id(13)).unwrap()
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
    from: Phase,
    setup: Vec<Ev>,
    event: Ev,
    next: Phase,
    msg: Msg,
    changes: Vec<Change>,
}

fn row(
    name: impl Into<String>,
    from: Phase,
    setup: &[Ev],
    event: Ev,
    next: Phase,
    msg: Msg,
    changes: Vec<Change>,
) -> Row {
    Row { name: name.into(), from, setup: setup.to_vec(), event, next, msg, changes }
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
        assert_eq!(op.phase, r.from, "{name}: the setup did not reach the starting phase");
        let changes = feed(&mut op, r.event);
        assert_eq!(op.phase, r.next, "{name}: next phase");
        assert_eq!(op.is_finished(), matches!(r.next, Phase::Done(_)), "{name}: is_finished");
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
        (Msg::Create(to, ty), Some((at, ToNode::Schedule(req)))) => {
            assert_eq!(at, node(to), "{name}: create target");
            assert_eq!(req.action, ScheduleAction::Create, "{name}: action");
            assert_eq!(req.operator_type, ty, "{name}: operator type");
            assert_eq!(req.epoch, EPOCH, "{name}: epoch");
            assert_eq!(req.changefeed, fx.cf, "{name}: changefeed");
            assert_eq!(req.config.id, op.id, "{name}: id");
            assert_eq!(req.config.mode, fx.sc.mode(), "{name}: mode");
            let record = fx.sc.get_guarded(op.guard).expect("record of a create");
            assert_eq!(req.config.span.as_ref(), Some(&record.span), "{name}: span");
            assert_eq!(req.config.schema_id, 5, "{name}: schema");
            // The fixture records have no pending block and a checkpoint above COMMITTED.
            assert_eq!(req.config.start_ts, CKPT, "{name}: start ts");
            assert!(!req.config.skip_dml_as_start_ts, "{name}: skip dml");
        }
        (Msg::Remove(to, ty), Some((at, ToNode::Schedule(req)))) => {
            assert_eq!(at, node(to), "{name}: remove target");
            assert_eq!(req.action, ScheduleAction::Remove, "{name}: action");
            assert_eq!(req.operator_type, ty, "{name}: operator type");
            assert_eq!(req.epoch, EPOCH, "{name}: epoch");
            assert_eq!(req.changefeed, fx.cf, "{name}: changefeed");
            assert_eq!(req.config.id, op.id, "{name}: id");
            assert_eq!(req.config.mode, fx.sc.mode(), "{name}: mode");
            assert_eq!(req.config.span.as_ref(), Some(&op.span), "{name}: span rides along");
            assert_eq!(req.config.start_ts, 0, "{name}: start ts");
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

/// Rows proving that a finished operator ignores everything: `label` is how it finished.
fn after_done(label: &str, setup: &[Ev], done: Phase, own: u64) -> Vec<Row> {
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
    events
        .into_iter()
        .map(|e| row(format!("done ({label}), then {e:?}"), done, setup, e, done, Msg::Nothing, vec![]))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// start()

#[test]
fn start_table_every_kind() {
    let fx = Fx::new(Mode::Default);
    let (a, b) = (node("a"), node("b"));
    let remove = |after| Operator::remove(fx.rec(1), a.clone(), OperatorType::Remove, after);
    type Start<'a> =
        (&'a str, Operator, Phase, Vec<Change>, OpKind, bool, Vec<NodeId>, Vec<DispatcherId>, Msg);
    let rows: Vec<Start<'_>> = vec![
        (
            "add binds to dest",
            fx.add(),
            Phase::Creating,
            vec![Change::Schedule { guard: fx.g(2), from: None, to: b.clone() }],
            OpKind::Add,
            true,
            vec![b.clone()],
            vec![],
            Msg::Create("b", OperatorType::Add),
        ),
        (
            "remove touches nothing",
            remove(AfterRemove::MarkAbsent),
            Phase::Removing,
            vec![],
            OpKind::Remove,
            false,
            vec![a.clone()],
            vec![],
            Msg::Remove("a", OperatorType::Remove),
        ),
        (
            "move marks scheduling, keeps origin",
            fx.moving(),
            Phase::RemoveOrigin,
            vec![Change::MarkScheduling(fx.g(1))],
            OpKind::Move,
            true,
            vec![a.clone(), b.clone()],
            vec![],
            Msg::Remove("a", OperatorType::Move),
        ),
        (
            "move to its own node is done at once",
            Operator::moving(fx.rec(1), a.clone()).unwrap(),
            OK,
            vec![Change::Replicate { guard: fx.g(1), on: a.clone() }],
            OpKind::Move,
            true,
            vec![a.clone(), a.clone()],
            vec![],
            Msg::Nothing,
        ),
        (
            "split marks scheduling",
            fx.split(),
            Phase::Removing,
            vec![Change::MarkScheduling(fx.g(1))],
            OpKind::Split,
            true,
            vec![a.clone()],
            vec![],
            Msg::Remove("a", OperatorType::Split),
        ),
        (
            "merge marks every source scheduling",
            fx.merge(),
            Phase::Merging,
            vec![Change::MarkScheduling(fx.g(11)), Change::MarkScheduling(fx.g(12))],
            OpKind::Merge,
            false,
            vec![a.clone()],
            vec![id(11), id(12)],
            Msg::Merge("a"),
        ),
        (
            "occupy touches nothing, sends nothing",
            fx.occupy(11),
            Phase::Holding,
            vec![],
            OpKind::Occupy,
            false,
            vec![a.clone()],
            vec![],
            Msg::Nothing,
        ),
    ];
    for (name, mut op, phase, changes, kind, blocks, nodes, sources, msg) in rows {
        assert_eq!(op.op_kind(), kind, "{name}: kind");
        assert_eq!(op.blocks_checkpoint(), blocks, "{name}: blocks checkpoint (I10 c)");
        assert_eq!(op.affected_nodes().into_iter().cloned().collect::<Vec<_>>(), nodes, "{name}: nodes");
        assert_eq!(op.source_ids(), sources, "{name}: source ids");
        assert_eq!(op.start(), changes, "{name}: start changes");
        assert_eq!(op.phase, phase, "{name}: phase after start");
        check_message(&fx, &op, msg, name);
    }
}

#[test]
fn constructors_refuse_unbound_records_and_name_the_record() {
    let fx = Fx::new(Mode::Default);
    let absent = fx.rec(2);
    assert!(Operator::moving(absent, node("b")).is_none(), "move needs an origin");
    assert!(Operator::split(absent, whole(3).split_even(2).unwrap()).is_none(), "split needs an origin");
    assert!(Operator::occupy(absent, id(13)).is_none(), "occupy needs the source's node");
    let merge = fx.merge();
    assert_eq!((merge.id, merge.guard, merge.span.clone()), (id(13), fx.g(13), whole(2)));
    let occupy = fx.occupy(12);
    assert_eq!(occupy.id, id(12));
    assert!(matches!(occupy.kind, Kind::Occupy { merge, .. } if merge == id(13)));
    let Kind::Split { checkpoint, .. } = fx.split().kind else { panic!("split") };
    assert_eq!(checkpoint, CKPT, "a split starts from the record's checkpoint");
}

// ---------------------------------------------------------------------------------------------
// Add

fn add_rows(fx: &Fx, ty: OperatorType) -> Vec<Row> {
    let g = fx.g(2);
    let c = Phase::Creating;
    let create = Msg::Create("b", ty);
    let to_b = Change::Replicate { guard: g, on: node("b") };
    let mut rows = vec![
        row("Working from dest", c, &[], St("b", 2, Working, 110), OK, Msg::Nothing, vec![to_b.clone()]),
        row(
            "Removed from dest at the start sent: refused for good, placed again under a fresh id",
            c,
            &[],
            St("b", 2, Removed, CKPT),
            FAILED,
            Msg::Nothing,
            vec![Change::Renew(g)],
        ),
        // Seed 48827: the refusal of a delayed copy of an older create (another start).
        row(
            "Removed from dest at another start is a copy's",
            c,
            &[],
            St("b", 2, Removed, 90),
            c,
            create,
            vec![],
        ),
        row(
            "Stopped from dest: keep resending, from its checkpoint",
            c,
            &[],
            St("b", 2, Stopped, 110),
            c,
            create,
            vec![Change::RaiseCheckpoint(g, 110)],
        ),
        row("Initializing from dest", c, &[], St("b", 2, Initializing, 110), c, create, vec![]),
        row("WaitingMerge from dest", c, &[], St("b", 2, WaitingMerge, 110), c, create, vec![]),
        row("Working from another node", c, &[], St("a", 2, Working, 110), c, create, vec![]),
        row("Removed from another node", c, &[], St("c", 2, Removed, 110), c, create, vec![]),
        row("Working for another id from dest", c, &[], St("b", 99, Working, 110), c, create, vec![]),
        row("Removed for another id from dest", c, &[], St("b", 99, Removed, 110), c, create, vec![]),
        row("dest removed", c, &[], Gone("b"), FAILED, Msg::Nothing, vec![Change::Absent(g)]),
        row("unrelated node a removed", c, &[], Gone("a"), c, create, vec![]),
        row("unrelated node c removed", c, &[], Gone("c"), c, create, vec![]),
        row("cancelled keeps dest for the DDL remove", c, &[], Cancel, CANCELLED, Msg::Nothing, vec![to_b]),
        row("resent", c, &[], Resent, c, create, vec![]),
        row("released", c, &[], Released, c, create, vec![]),
        row(
            "Working after an ignored Stopped",
            c,
            &[St("b", 2, Stopped, 105)],
            St("b", 2, Working, 110),
            OK,
            Msg::Nothing,
            vec![Change::Replicate { guard: g, on: node("b") }],
        ),
    ];
    rows.extend(after_done("succeeded", &[St("b", 2, Working, 110)], OK, 2));
    rows.extend(after_done("dest removed", &[Gone("b")], FAILED, 2));
    rows.extend(after_done("dest Removed", &[St("b", 2, Removed, CKPT)], FAILED, 2));
    rows.extend(after_done("cancelled", &[Cancel], CANCELLED, 2));
    rows
}

#[test]
fn add_table() {
    let fx = Fx::new(Mode::Default);
    let mut n = 0;
    for ty in [OperatorType::Add, OperatorType::Split] {
        n += run(
            &format!("add({ty:?})"),
            &fx,
            |fx| Operator::add(fx.rec(2), node("b"), ty),
            &add_rows(&fx, ty),
        );
    }
    assert!(n > 80);
}

// ---------------------------------------------------------------------------------------------
// Remove, for each AfterRemove and each constructed OperatorType

fn remove_rows(fx: &Fx, after: AfterRemove, ty: OperatorType) -> Vec<Row> {
    let g = fx.g(1);
    let r = Phase::Removing;
    let msg = Msg::Remove("a", ty);
    let hook: Vec<Change> = match after {
        AfterRemove::Nothing => vec![],
        AfterRemove::MarkAbsent => vec![Change::Absent(g)],
        AfterRemove::DeleteAndRepair => vec![Change::Delete(g), Change::Repair((0, 1))],
    };
    let with_ckpt = |ts| [vec![Change::RaiseCheckpoint(g, ts)], hook.clone()].concat();
    let mut rows = vec![
        row("Stopped from node", r, &[], St("a", 1, Stopped, 130), OK, Msg::Nothing, with_ckpt(130)),
        row("Removed from node", r, &[], St("a", 1, Removed, 140), OK, Msg::Nothing, with_ckpt(140)),
        row(
            "Stopped(0): dispatcher never existed",
            r,
            &[],
            St("a", 1, Stopped, 0),
            OK,
            Msg::Nothing,
            with_ckpt(0),
        ),
        row("Working from node", r, &[], St("a", 1, Working, 130), r, msg, vec![]),
        row("WaitingMerge from node is not gone", r, &[], St("a", 1, WaitingMerge, 130), r, msg, vec![]),
        row("Initializing from node", r, &[], St("a", 1, Initializing, 130), r, msg, vec![]),
        row("Stopped from another node", r, &[], St("b", 1, Stopped, 130), r, msg, vec![]),
        row("Removed from another node", r, &[], St("c", 1, Removed, 130), r, msg, vec![]),
        row("Stopped for another id from node", r, &[], St("a", 99, Stopped, 130), r, msg, vec![]),
        row("node removed: dispatcher gone", r, &[], Gone("a"), OK, Msg::Nothing, hook.clone()),
        row("unrelated node removed", r, &[], Gone("b"), r, msg, vec![]),
        row("cancelled skips the hook", r, &[], Cancel, CANCELLED, Msg::Nothing, vec![]),
        row("resent", r, &[], Resent, r, msg, vec![]),
        row("released", r, &[], Released, r, msg, vec![]),
        row(
            "Stopped after WaitingMerge",
            r,
            &[St("a", 1, WaitingMerge, 120)],
            St("a", 1, Stopped, 130),
            OK,
            Msg::Nothing,
            with_ckpt(130),
        ),
    ];
    rows.extend(after_done("stopped", &[St("a", 1, Stopped, 130)], OK, 1));
    rows.extend(after_done("node removed", &[Gone("a")], OK, 1));
    rows.extend(after_done("cancelled", &[Cancel], CANCELLED, 1));
    rows
}

#[test]
fn remove_table_for_every_after_remove_and_operator_type() {
    let fx = Fx::new(Mode::Default);
    let mut n = 0;
    for after in [AfterRemove::Nothing, AfterRemove::MarkAbsent, AfterRemove::DeleteAndRepair] {
        for ty in [OperatorType::Remove, OperatorType::Move, OperatorType::Split] {
            let make = |fx: &Fx| Operator::remove(fx.rec(1), node("a"), ty, after);
            n += run(&format!("remove({after:?}, {ty:?})"), &fx, make, &remove_rows(&fx, after, ty));
        }
    }
    assert!(n > 400);
}

/// The node is captured at construction; a record later rebound elsewhere, or deleted, does
/// not redirect the remove, and the remove of a deleted record still goes out.
#[test]
fn remove_keeps_its_captured_node_and_outlives_its_record() {
    let mut fx = Fx::new(Mode::Default);
    let mut op = Operator::remove(fx.rec(1), node("a"), OperatorType::Remove, AfterRemove::Nothing);
    let _ = op.start();
    let g = fx.g(1);
    fx.sc.transition(g, None, None, SpanState::Scheduling, Some(node("b"))).unwrap();
    check_message(&fx, &op, Msg::Remove("a", OperatorType::Remove), "rebound record");
    assert!(feed(&mut op, St("b", 1, Stopped, 130)).is_empty(), "the new node's Stopped is not ours");
    assert_eq!(op.phase, Phase::Removing);
    fx.sc.delete(g).unwrap();
    check_message(&fx, &op, Msg::Remove("a", OperatorType::Remove), "deleted record");
    assert_eq!(feed(&mut op, St("a", 1, Stopped, 130)), vec![Change::RaiseCheckpoint(g, 130)]);
    assert_eq!(op.phase, OK);
}

// ---------------------------------------------------------------------------------------------
// Move (I2: nothing is placed again before the origin stopped, even when the dest dies first)

fn move_rows(fx: &Fx) -> Vec<Row> {
    let g = fx.g(1);
    let (ro, abort, ad) = (Phase::RemoveOrigin, Phase::AbortRemoveOrigin, Phase::AddDest);
    let rm = Msg::Remove("a", OperatorType::Move);
    let cr = Msg::Create("b", OperatorType::Move);
    let schedule = Change::Schedule { guard: g, from: Some(node("a")), to: node("b") };
    let bind = || vec![schedule.clone()];
    // A terminal status folds the origin's final checkpoint first (the dest starts there).
    let fold_bind = |ts| vec![Change::RaiseCheckpoint(g, ts), schedule.clone()];
    let fold_absent = |ts| vec![Change::RaiseCheckpoint(g, ts), Change::Absent(g)];
    let on = |n: &str| vec![Change::Replicate { guard: g, on: node(n) }];
    let absent = || vec![Change::Absent(g)];
    let to_abort: &[Ev] = &[Gone("b")];
    let to_add: &[Ev] = &[St("a", 1, Stopped, 130)];
    let mut rows = vec![
        // RemoveOrigin
        row("origin Stopped", ro, &[], St("a", 1, Stopped, 130), ad, cr, fold_bind(130)),
        row("origin Removed", ro, &[], St("a", 1, Removed, 140), ad, cr, fold_bind(140)),
        row("origin Stopped(0): never existed", ro, &[], St("a", 1, Stopped, 0), ad, cr, fold_bind(0)),
        row("origin Working", ro, &[], St("a", 1, Working, 130), ro, rm, vec![]),
        row("origin WaitingMerge is not terminal", ro, &[], St("a", 1, WaitingMerge, 130), ro, rm, vec![]),
        row("origin Initializing is not terminal", ro, &[], St("a", 1, Initializing, 130), ro, rm, vec![]),
        row("dest Stopped", ro, &[], St("b", 1, Stopped, 130), ro, rm, vec![]),
        row("dest Working", ro, &[], St("b", 1, Working, 130), ro, rm, vec![]),
        row("unrelated node Stopped", ro, &[], St("c", 1, Stopped, 130), ro, rm, vec![]),
        row("origin Stopped for another id", ro, &[], St("a", 99, Stopped, 130), ro, rm, vec![]),
        row("origin removed", ro, &[], Gone("a"), ad, cr, bind()),
        row("S18: dest removed first", ro, &[], Gone("b"), abort, rm, vec![]),
        row("unrelated node removed", ro, &[], Gone("c"), ro, rm, vec![]),
        row("cancelled keeps origin", ro, &[], Cancel, CANCELLED, Msg::Nothing, on("a")),
        row("resent", ro, &[], Resent, ro, rm, vec![]),
        row("released", ro, &[], Released, ro, rm, vec![]),
        // AbortRemoveOrigin: keep removing the origin; absent only once it stopped or died.
        row(
            "abort: origin Stopped",
            abort,
            to_abort,
            St("a", 1, Stopped, 130),
            FAILED,
            Msg::Nothing,
            fold_absent(130),
        ),
        row(
            "abort: origin Removed",
            abort,
            to_abort,
            St("a", 1, Removed, 140),
            FAILED,
            Msg::Nothing,
            fold_absent(140),
        ),
        row("abort: origin Working", abort, to_abort, St("a", 1, Working, 130), abort, rm, vec![]),
        row("abort: origin WaitingMerge", abort, to_abort, St("a", 1, WaitingMerge, 130), abort, rm, vec![]),
        row("abort: origin Initializing", abort, to_abort, St("a", 1, Initializing, 130), abort, rm, vec![]),
        row("abort: dead dest's late Stopped", abort, to_abort, St("b", 1, Stopped, 130), abort, rm, vec![]),
        row(
            "abort: origin Stopped for another id",
            abort,
            to_abort,
            St("a", 99, Stopped, 130),
            abort,
            rm,
            vec![],
        ),
        row("abort: origin removed", abort, to_abort, Gone("a"), FAILED, Msg::Nothing, absent()),
        row("abort: dest removed again", abort, to_abort, Gone("b"), abort, rm, vec![]),
        row("abort: unrelated node removed", abort, to_abort, Gone("c"), abort, rm, vec![]),
        row("abort: cancelled keeps origin", abort, to_abort, Cancel, CANCELLED, Msg::Nothing, on("a")),
        row("abort: resent", abort, to_abort, Resent, abort, rm, vec![]),
        // AddDest
        row("add: dest Working", ad, to_add, St("b", 1, Working, 130), OK, Msg::Nothing, on("b")),
        row(
            "add: dest Stopped: keep resending, from its checkpoint",
            ad,
            to_add,
            St("b", 1, Stopped, 130),
            ad,
            cr,
            vec![Change::RaiseCheckpoint(g, 130)],
        ),
        row(
            "add: dest Removed at the start sent (refused for good, placed again under a fresh id)",
            ad,
            to_add,
            St("b", 1, Removed, CKPT),
            FAILED,
            Msg::Nothing,
            vec![Change::Renew(g)],
        ),
        row(
            "add: dest Removed at another start is a copy's",
            ad,
            to_add,
            St("b", 1, Removed, 90),
            ad,
            cr,
            vec![],
        ),
        row("add: dest Initializing", ad, to_add, St("b", 1, Initializing, 130), ad, cr, vec![]),
        row("add: origin Working", ad, to_add, St("a", 1, Working, 130), ad, cr, vec![]),
        row("add: origin Stopped again", ad, to_add, St("a", 1, Stopped, 130), ad, cr, vec![]),
        row("add: dest Working for another id", ad, to_add, St("b", 99, Working, 130), ad, cr, vec![]),
        row("add: dest removed", ad, to_add, Gone("b"), FAILED, Msg::Nothing, absent()),
        row("add: origin removed", ad, to_add, Gone("a"), ad, cr, vec![]),
        row("add: unrelated node removed", ad, to_add, Gone("c"), ad, cr, vec![]),
        row("add: cancelled keeps dest", ad, to_add, Cancel, CANCELLED, Msg::Nothing, on("b")),
        row("add: resent", ad, to_add, Resent, ad, cr, vec![]),
        row(
            "add after origin died: dest Working",
            ad,
            &[Gone("a")],
            St("b", 1, Working, 130),
            OK,
            Msg::Nothing,
            on("b"),
        ),
        row(
            "add after origin died: dest removed",
            ad,
            &[Gone("a")],
            Gone("b"),
            FAILED,
            Msg::Nothing,
            absent(),
        ),
    ];
    rows.extend(after_done("succeeded", &[St("a", 1, Stopped, 130), St("b", 1, Working, 140)], OK, 1));
    rows.extend(after_done("aborted", &[Gone("b"), St("a", 1, Stopped, 130)], FAILED, 1));
    rows.extend(after_done("dest died in add", &[Gone("a"), Gone("b")], FAILED, 1));
    rows.extend(after_done("cancelled", &[Cancel], CANCELLED, 1));
    rows
}

#[test]
fn move_table() {
    let fx = Fx::new(Mode::Default);
    let n = run("move", &fx, Fx::moving, &move_rows(&fx));
    assert!(n > 80);
}

// ---------------------------------------------------------------------------------------------
// Split

fn split_rows(fx: &Fx) -> Vec<Row> {
    let g = fx.g(1);
    let r = Phase::Removing;
    let rm = Msg::Remove("a", OperatorType::Split);
    let split = |checkpoint| vec![Change::Split { guard: g, into: split_parts(), checkpoint }];
    let mut rows = vec![
        row(
            "origin Stopped above the record",
            r,
            &[],
            St("a", 1, Stopped, 150),
            OK,
            Msg::Nothing,
            split(150),
        ),
        row(
            "origin Stopped below the record",
            r,
            &[],
            St("a", 1, Stopped, 40),
            OK,
            Msg::Nothing,
            split(CKPT),
        ),
        row(
            "origin Stopped(0): never existed",
            r,
            &[],
            St("a", 1, Stopped, 0),
            OK,
            Msg::Nothing,
            split(CKPT),
        ),
        row("origin Removed", r, &[], St("a", 1, Removed, 120), OK, Msg::Nothing, split(120)),
        row("origin Working", r, &[], St("a", 1, Working, 150), r, rm, vec![]),
        row("origin WaitingMerge is not terminal", r, &[], St("a", 1, WaitingMerge, 150), r, rm, vec![]),
        row("origin Initializing is not terminal", r, &[], St("a", 1, Initializing, 150), r, rm, vec![]),
        row("another node Stopped", r, &[], St("b", 1, Stopped, 150), r, rm, vec![]),
        row("origin Stopped for another id", r, &[], St("a", 99, Stopped, 150), r, rm, vec![]),
        row(
            "origin removed: placed again unsplit",
            r,
            &[],
            Gone("a"),
            FAILED,
            Msg::Nothing,
            vec![Change::Absent(g)],
        ),
        row("unrelated node removed", r, &[], Gone("b"), r, rm, vec![]),
        row(
            "cancelled keeps origin",
            r,
            &[],
            Cancel,
            CANCELLED,
            Msg::Nothing,
            vec![Change::Replicate { guard: g, on: node("a") }],
        ),
        row("resent", r, &[], Resent, r, rm, vec![]),
        row("released", r, &[], Released, r, rm, vec![]),
        row(
            "Working does not move the start point",
            r,
            &[St("a", 1, Working, 500)],
            St("a", 1, Stopped, 150),
            OK,
            Msg::Nothing,
            split(150),
        ),
    ];
    rows.extend(after_done("succeeded", &[St("a", 1, Stopped, 150)], OK, 1));
    rows.extend(after_done("origin died", &[Gone("a")], FAILED, 1));
    rows.extend(after_done("cancelled", &[Cancel], CANCELLED, 1));
    rows
}

#[test]
fn split_table() {
    let fx = Fx::new(Mode::Default);
    let n = run("split", &fx, Fx::split, &split_rows(&fx));
    assert!(n > 50);
}

// ---------------------------------------------------------------------------------------------
// Merge, with the corrections: release after the sources left; bounded abandonment

fn merge_rows(fx: &Fx) -> Vec<Row> {
    let (g11, g12, gt) = (fx.g(11), fx.g(12), fx.g(13));
    let m = Phase::Merging;
    let mm = Msg::Merge("a");
    let release = || Change::Release(vec![id(11), id(12)]);
    let done = vec![
        Change::Delete(g11),
        Change::Delete(g12),
        Change::Replicate { guard: gt, on: node("a") },
        release(),
    ];
    // Abandoned (node aborted, or withdrawn): the target goes and every source is evicted
    // (removed, then placed again): what the node did with it is not trusted to statuses.
    let back = vec![
        Change::Delete(gt),
        release(),
        Change::Evict { guard: g11, on: node("a") },
        Change::Evict { guard: g12, on: node("a") },
    ];
    // Cancelled (the table is going): sources handed back to the node for the DDL's removes, or
    // to the scheduler if they reported a terminal state (`Reclaim` decides on the record).
    let cancelled = vec![
        Change::Reclaim { guard: g11, on: node("a") },
        Change::Reclaim { guard: g12, on: node("a") },
        Change::Delete(gt),
        release(),
    ];
    let node_died = vec![Change::Absent(g11), Change::Absent(g12), Change::Delete(gt), release()];
    let accepted: &[Ev] = &[St("a", 11, WaitingMerge, 100)];
    let (w, wm) = (Phase::Withdrawing, Msg::Remove("a", OperatorType::Remove));
    let withdrawn: &[Ev] = &[Resent, Resent, Resent];
    let mut rows = vec![
        row("target Working", m, &[], St("a", 13, Working, 100), OK, Msg::Nothing, done.clone()),
        row(
            "target Working after acceptance",
            m,
            accepted,
            St("a", 13, Working, 100),
            OK,
            Msg::Nothing,
            done.clone(),
        ),
        row(
            "target Stopped: node aborted",
            m,
            &[],
            St("a", 13, Stopped, 100),
            FAILED,
            Msg::Nothing,
            back.clone(),
        ),
        row(
            "target Removed: node aborted",
            m,
            &[],
            St("a", 13, Removed, 100),
            FAILED,
            Msg::Nothing,
            back.clone(),
        ),
        row(
            "target Stopped after acceptance",
            m,
            accepted,
            St("a", 13, Stopped, 100),
            FAILED,
            Msg::Nothing,
            back.clone(),
        ),
        row("target Initializing", m, &[], St("a", 13, Initializing, 100), m, mm, vec![]),
        row("target WaitingMerge", m, &[], St("a", 13, WaitingMerge, 100), m, mm, vec![]),
        row("target MergeReady", m, &[], St("a", 13, ComponentState::MergeReady, 100), m, mm, vec![]),
        row("target Working from another node", m, &[], St("b", 13, Working, 100), m, mm, vec![]),
        row("target Stopped from another node", m, &[], St("b", 13, Stopped, 100), m, mm, vec![]),
        row("source WaitingMerge (accepts)", m, &[], St("a", 11, WaitingMerge, 100), m, mm, vec![]),
        row("source Working", m, &[], St("a", 11, Working, 100), m, mm, vec![]),
        row(
            "source Working again after acceptance: node aborted",
            m,
            accepted,
            St("a", 11, Working, 100),
            FAILED,
            Msg::Nothing,
            back.clone(),
        ),
        row("source Stopped (after the commit point)", m, &[], St("a", 12, Stopped, 100), m, mm, vec![]),
        row("another id Working", m, &[], St("a", 99, Working, 100), m, mm, vec![]),
        row("node removed", m, &[], Gone("a"), FAILED, Msg::Nothing, node_died.clone()),
        row("node removed after acceptance", m, accepted, Gone("a"), FAILED, Msg::Nothing, node_died.clone()),
        row("unrelated node removed", m, &[], Gone("b"), m, mm, vec![]),
        row("cancelled", m, &[], Cancel, CANCELLED, Msg::Nothing, cancelled.clone()),
        row("cancelled after acceptance", m, accepted, Cancel, CANCELLED, Msg::Nothing, cancelled.clone()),
        row("released", m, &[], Released, m, mm, vec![]),
        // Bounded wait: each Resent is one send; MAX_SENDS sends, then withdraw: remove the
        // merged dispatcher, and hand the sources back only once it is known gone.
        row("send 1", m, &[], Resent, m, mm, vec![]),
        row("send 2 = max", m, &[Resent], Resent, m, mm, vec![]),
        row("send 3: never taken up, withdrawn", m, &[Resent, Resent], Resent, w, wm, vec![]),
        row(
            "withdrawn: target Stopped, abandoned",
            w,
            withdrawn,
            St("a", 13, Stopped, 100),
            FAILED,
            Msg::Nothing,
            back.clone(),
        ),
        row(
            "withdrawn: target Removed, abandoned",
            w,
            withdrawn,
            St("a", 13, Removed, 100),
            FAILED,
            Msg::Nothing,
            back.clone(),
        ),
        row(
            "withdrawn: target Working, still removing",
            w,
            withdrawn,
            St("a", 13, Working, 100),
            w,
            wm,
            vec![],
        ),
        row(
            "withdrawn: target Stopped from another node",
            w,
            withdrawn,
            St("b", 13, Stopped, 100),
            w,
            wm,
            vec![],
        ),
        row("withdrawn: source Stopped", w, withdrawn, St("a", 11, Stopped, 100), w, wm, vec![]),
        row("withdrawn: source WaitingMerge", w, withdrawn, St("a", 11, WaitingMerge, 100), w, wm, vec![]),
        row("withdrawn: resent", w, withdrawn, Resent, w, wm, vec![]),
        row("withdrawn: node removed", w, withdrawn, Gone("a"), FAILED, Msg::Nothing, node_died),
        row("withdrawn: unrelated node removed", w, withdrawn, Gone("b"), w, wm, vec![]),
        row("withdrawn: cancelled", w, withdrawn, Cancel, CANCELLED, Msg::Nothing, cancelled),
        row(
            "source Stopped does not accept (a held-back remove may have closed it): withdrawn",
            m,
            &[St("a", 12, Stopped, 100), Resent, Resent],
            Resent,
            w,
            wm,
            vec![],
        ),
        row(
            "target Preparing accepts (a resend found the merge)",
            m,
            &[St("a", 13, ComponentState::Preparing, 100), Resent, Resent],
            Resent,
            m,
            mm,
            vec![],
        ),
        row(
            "accepted: never abandoned",
            m,
            &[St("a", 12, WaitingMerge, 100), Resent, Resent],
            Resent,
            m,
            mm,
            vec![],
        ),
        row(
            "accepted between sends: never abandoned",
            m,
            &[Resent, Resent, St("a", 11, WaitingMerge, 100), Resent, Resent, Resent],
            Resent,
            m,
            mm,
            vec![],
        ),
        row(
            "WaitingMerge from another node does not accept",
            m,
            &[St("b", 11, WaitingMerge, 100), Resent, Resent],
            Resent,
            w,
            wm,
            vec![].clone(),
        ),
        row(
            "WaitingMerge of a non-source does not accept",
            m,
            &[St("a", 99, WaitingMerge, 100), Resent, Resent],
            Resent,
            w,
            wm,
            vec![].clone(),
        ),
        row(
            "a live status of the target accepts",
            m,
            &[St("a", 13, WaitingMerge, 100), Resent, Resent],
            Resent,
            m,
            mm,
            vec![],
        ),
        row(
            "source Working does not accept",
            m,
            &[St("a", 11, Working, 100), Resent, Resent],
            Resent,
            w,
            wm,
            vec![],
        ),
        row(
            "target Working after max sends",
            m,
            &[Resent, Resent],
            St("a", 13, Working, 100),
            OK,
            Msg::Nothing,
            done,
        ),
    ];
    rows.extend(after_done("succeeded", &[St("a", 13, Working, 100)], OK, 13));
    rows.extend(after_done("abandoned", &[Resent, Resent, Resent, St("a", 13, Stopped, 100)], FAILED, 13));
    rows.extend(after_done("node died", &[Gone("a")], FAILED, 13));
    rows.extend(after_done("cancelled", &[Cancel], CANCELLED, 13));
    rows
}

#[test]
fn merge_table() {
    let fx = Fx::new(Mode::Default);
    let n = run("merge", &fx, Fx::merge, &merge_rows(&fx));
    assert!(n > 70);
}

#[test]
fn merge_tracks_acceptance_and_sends() {
    let fx = Fx::new(Mode::Default);
    let mut op = fx.merge();
    let _ = op.start();
    let state = |op: &Operator| match op.kind {
        Kind::Merge { accepted, sends, .. } => (accepted, sends),
        _ => unreachable!(),
    };
    assert_eq!(state(&op), (false, 0));
    let _ = feed(&mut op, Resent);
    let _ = feed(&mut op, St("b", 11, WaitingMerge, 100));
    assert_eq!(state(&op), (false, 1));
    let _ = feed(&mut op, St("a", 12, WaitingMerge, 100));
    assert_eq!(state(&op), (true, 1));
}

// ---------------------------------------------------------------------------------------------
// Occupy

fn occupy_rows() -> Vec<Row> {
    let h = Phase::Holding;
    let nothing = Msg::Nothing;
    let mut rows = vec![
        row("released by its merge", h, &[], Released, OK, nothing, vec![]),
        row("its node removed (the merge marks absent)", h, &[], Gone("a"), FAILED, nothing, vec![]),
        row("unrelated node removed", h, &[], Gone("b"), h, nothing, vec![]),
        row("cancelled", h, &[], Cancel, CANCELLED, nothing, vec![]),
        row("source Working", h, &[], St("a", 11, Working, 100), h, nothing, vec![]),
        row("source Stopped", h, &[], St("a", 11, Stopped, 100), h, nothing, vec![]),
        row("source Removed", h, &[], St("a", 11, Removed, 100), h, nothing, vec![]),
        row("source WaitingMerge", h, &[], St("a", 11, WaitingMerge, 100), h, nothing, vec![]),
        row("source Stopped from another node", h, &[], St("b", 11, Stopped, 100), h, nothing, vec![]),
        row("merge target Working", h, &[], St("a", 13, Working, 100), h, nothing, vec![]),
        row("another id Stopped", h, &[], St("a", 99, Stopped, 100), h, nothing, vec![]),
        row("resent", h, &[], Resent, h, nothing, vec![]),
    ];
    rows.extend(after_done("released", &[Released], OK, 11));
    rows.extend(after_done("node died", &[Gone("a")], FAILED, 11));
    rows.extend(after_done("cancelled", &[Cancel], CANCELLED, 11));
    rows
}

#[test]
fn occupy_table() {
    let fx = Fx::new(Mode::Default);
    let n = run("occupy", &fx, |fx| fx.occupy(11), &occupy_rows());
    assert!(n > 40);
}

// ---------------------------------------------------------------------------------------------
// Messages: epoch, mode, start ts

#[test]
fn messages_carry_the_context_epoch_and_the_controller_mode() {
    for mode in [Mode::Default, Mode::Redo] {
        let fx = Fx::new(mode);
        let mut in_add_dest = fx.moving();
        let _ = in_add_dest.start();
        let _ = feed(&mut in_add_dest, St("a", 1, Stopped, 130));
        let ops = [
            ("add", fx.add(), OperatorType::Add),
            (
                "remove",
                Operator::remove(fx.rec(1), node("a"), OperatorType::Move, AfterRemove::Nothing),
                OperatorType::Move,
            ),
            ("move remove", fx.moving(), OperatorType::Move),
            ("move create", in_add_dest, OperatorType::Move),
            ("split", fx.split(), OperatorType::Split),
            ("merge", fx.merge(), OperatorType::Merge),
        ];
        for epoch in [Epoch(1), Epoch(42)] {
            let ctx = fx.ctx_with(epoch, COMMITTED);
            for (name, op, ty) in &ops {
                let name = format!("{name} ({mode:?}, {epoch:?})");
                match op.message(&ctx) {
                    Some((_, ToNode::Schedule(req))) => {
                        assert_eq!(req.epoch, epoch, "{name}: epoch");
                        assert_eq!(req.config.mode, mode, "{name}: mode");
                        assert_eq!(req.operator_type, *ty, "{name}: operator type");
                    }
                    Some((_, ToNode::Merge(req))) => {
                        assert_eq!(*ty, OperatorType::Merge, "{name}");
                        assert_eq!(req.epoch, epoch, "{name}: epoch");
                        assert_eq!(req.mode, mode, "{name}: mode");
                    }
                    other => panic!("{name}: unexpected {other:?}"),
                }
            }
        }
    }
}

/// Create start ts (B13, I11): `(checkpoint, block, committed) → (start_ts, skip_dml_as_start_ts)`.
#[test]
fn create_start_ts_table() {
    let ddl = |block_ts| Some(PendingBlock { block_ts, is_sync_point: false });
    let sync = |block_ts| Some(PendingBlock { block_ts, is_sync_point: true });
    type StartRow = (&'static str, Ts, Option<PendingBlock>, Ts, (Ts, bool));
    let rows: [StartRow; 14] = [
        ("no block: the checkpoint", 100, None, 0, (100, false)),
        ("no block, committed below", 100, None, 99, (100, false)),
        ("no block, committed equal", 100, None, 100, (100, false)),
        ("no block, committed above: clamp (I11)", 100, None, 150, (150, false)),
        ("syncpoint ahead: replay it", 100, sync(120), 0, (120, false)),
        ("syncpoint behind: the checkpoint", 100, sync(80), 0, (100, false)),
        ("syncpoint, committed above: clamp", 100, sync(120), 130, (130, false)),
        ("DDL just ahead: skip its DML", 100, ddl(101), 0, (100, true)),
        ("DDL further ahead: replay from block-1", 100, ddl(120), 0, (119, true)),
        ("DDL at the checkpoint: passed, no skip", 100, ddl(100), 0, (100, false)),
        ("DDL behind: the checkpoint", 100, ddl(50), 0, (100, false)),
        ("DDL, committed equal to block-1: no clamp, skip kept", 100, ddl(120), 119, (119, true)),
        ("DDL, committed above: clamp, stale replay abandoned", 100, ddl(120), 120, (120, false)),
        ("DDL, committed far above", 100, ddl(101), 500, (500, false)),
    ];
    let mut sc = SpanController::new(Mode::Default);
    for (i, (name, checkpoint, block, committed, want)) in rows.into_iter().enumerate() {
        let n = i as u64 + 1;
        sc.insert(new_span(n, whole(n as i64), checkpoint, block), SpanState::Absent, None).unwrap();
        let record = sc.get(id(n)).unwrap();
        assert_eq!(create_start_ts(record, committed), want, "{name}");
        // The create message uses exactly that rule.
        let op = Operator::add(record, node("b"), OperatorType::Add);
        let cf = ChangefeedId::default();
        let ctx = MessageContext { sc: &sc, epoch: EPOCH, committed, changefeed: &cf };
        let Some((_, ToNode::Schedule(req))) = op.message(&ctx) else { panic!("{name}: no create") };
        assert_eq!((req.config.start_ts, req.config.skip_dml_as_start_ts), want, "{name}: message");
    }
}

#[test]
fn a_create_for_a_gone_record_is_not_sent() {
    let mut fx = Fx::new(Mode::Default);
    let add = fx.add();
    let mut mv = fx.moving();
    let _ = mv.start();
    let _ = feed(&mut mv, Gone("a"));
    assert_eq!(mv.phase, Phase::AddDest);
    // The committed checkpoint clamps the move's create as well.
    let Some((_, ToNode::Schedule(req))) = mv.message(&fx.ctx_with(EPOCH, 500)) else { panic!("create") };
    assert_eq!((req.config.start_ts, req.config.skip_dml_as_start_ts), (500, false));
    fx.sc.delete(fx.g(2)).unwrap();
    fx.sc.delete(fx.g(1)).unwrap();
    assert_eq!(add.message(&fx.ctx()), None);
    assert_eq!(mv.message(&fx.ctx()), None);
}

// ---------------------------------------------------------------------------------------------
// OperatorController (I3: one operator per id)

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

/// Admits the occupies and the merge, in the order the maintainer does.
fn admit_merge(oc: &mut OperatorController, sc: &SpanController, max_sends: u32) {
    oc.admit(occupy_op(sc, 11), sc, 0).expect("occupy 11");
    oc.admit(occupy_op(sc, 12), sc, 0).expect("occupy 12");
    oc.admit(merge_op(sc, max_sends), sc, 0).expect("merge");
}

fn ctx<'a>(sc: &'a SpanController, cf: &'a ChangefeedId) -> MessageContext<'a> {
    MessageContext { sc, epoch: EPOCH, committed: 0, changefeed: cf }
}

/// `(target node, action or "merge", id)` of each message, for compact assertions.
fn sent(messages: &[(NodeId, ToNode)]) -> Vec<(String, &'static str, DispatcherId)> {
    messages
        .iter()
        .map(|(to, m)| match m {
            ToNode::Schedule(r) => {
                let what = if r.action == ScheduleAction::Create { "create" } else { "remove" };
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

fn phase(oc: &OperatorController, n: u64) -> Phase {
    oc.get(id(n)).expect("operator").phase
}

#[test]
fn controller_admits_one_operator_per_id() {
    let sc = controller_sc();
    let mut oc = OperatorController::new();
    assert_eq!(oc.admit(move_op(&sc, 3), &sc, 0), Ok(vec![Change::MarkScheduling(rec(&sc, 3).guard())]));
    assert_eq!(oc.admit(remove_op(&sc, 3), &sc, 0), Err(Refusal::IdBusy(id(3))));
    assert_eq!(oc.admit(move_op(&sc, 3), &sc, 0), Err(Refusal::IdBusy(id(3))));
    admit_merge(&mut oc, &sc, 5);
    assert_eq!(oc.admit(move_op(&sc, 11), &sc, 0), Err(Refusal::IdBusy(id(11))), "a source is reserved");
    assert_eq!(oc.admit(remove_op(&sc, 13), &sc, 0), Err(Refusal::IdBusy(id(13))), "and the target");
    assert_eq!(oc.len(), 4);
    assert_eq!((oc.count(OpKind::Occupy), oc.count(OpKind::Merge), oc.count(OpKind::Move)), (2, 1, 1));
}

#[test]
fn controller_admits_one_operator_per_key_range() {
    let sc = controller_sc();
    let mut oc = OperatorController::new();
    oc.admit(move_op(&sc, 1), &sc, 0).unwrap();
    assert_eq!(oc.admit(move_op(&sc, 2), &sc, 0), Err(Refusal::SpanBusy(id(1))), "overlapping span");
    assert_eq!(oc.admit(remove_op(&sc, 2), &sc, 0), Err(Refusal::SpanBusy(id(1))), "a remove vs a move");
    oc.admit(move_op(&sc, 3), &sc, 0).expect("another table");
    oc.admit(move_op(&sc, 4), &sc, 0).expect("adjacent span of table 5");
    oc.admit(move_op(&sc, 5), &sc, 0).expect("the other half: adjacent is not overlapping");
    admit_merge(&mut oc, &sc, 5);
    assert_eq!(oc.overlapping(&whole(2), &[]), Some(id(11)));
    assert_eq!(oc.overlapping(&whole(2), &[id(11), id(12)]), Some(id(13)));
    assert_eq!(oc.overlapping(&whole(7), &[]), None);
}

#[test]
fn controller_lets_removes_overlap_removes_only() {
    let sc = controller_sc();
    let mut oc = OperatorController::new();
    oc.admit(remove_op(&sc, 1), &sc, 0).unwrap();
    assert_eq!(oc.admit(remove_op(&sc, 2), &sc, 0), Ok(vec![]), "two overlapping removes");
    assert_eq!(oc.admit(move_op(&sc, 2), &sc, 0), Err(Refusal::IdBusy(id(2))));
    let mut oc = OperatorController::new();
    oc.admit(remove_op(&sc, 1), &sc, 0).unwrap();
    assert_eq!(oc.admit(move_op(&sc, 2), &sc, 0), Err(Refusal::SpanBusy(id(1))), "a move over a remove");
    let mut oc = OperatorController::new();
    oc.admit(Operator::split(rec(&sc, 2), whole(1).split_even(4).unwrap()[..2].to_vec()).unwrap(), &sc, 0)
        .unwrap();
    assert_eq!(oc.admit(remove_op(&sc, 1), &sc, 0), Err(Refusal::SpanBusy(id(2))), "a remove over a split");
}

#[test]
fn controller_checks_the_record_but_admits_the_remove_of_a_deleted_one() {
    let mut sc = controller_sc();
    let mut oc = OperatorController::new();
    let remove = remove_op(&sc, 3);
    let mv = move_op(&sc, 3);
    let add = add_op(&sc, 20);
    let stale_add = add_op(&sc, 1);
    let stale_remove = remove_op(&sc, 1);
    sc.delete(rec(&sc, 3).guard()).unwrap();
    sc.delete(rec(&sc, 20).guard()).unwrap();
    // Record 1 replaced by a new incarnation under the same id: the old guard is stale.
    sc.delete(rec(&sc, 1).guard()).unwrap();
    sc.insert(new_span(1, whole(1), 10, None), SpanState::Absent, None).unwrap();
    assert_ne!(rec(&sc, 1).guard(), stale_remove.guard);
    assert_eq!(oc.admit(mv, &sc, 0), Err(Refusal::NoSpan), "move of a deleted record");
    assert_eq!(oc.admit(add, &sc, 0), Err(Refusal::NoSpan), "add of a deleted record");
    assert_eq!(oc.admit(stale_add, &sc, 0), Err(Refusal::NoSpan), "add with a stale incarnation");
    assert_eq!(oc.admit(stale_remove, &sc, 0), Err(Refusal::NoSpan), "remove with a stale incarnation");
    assert!(oc.is_empty(), "refusals admit nothing");
    assert_eq!(oc.admit(remove, &sc, 0), Ok(vec![]), "remove of a deleted record");
    let cf = ChangefeedId::default();
    let (messages, _) = oc.due(0, 1_000, &ctx(&sc, &cf));
    assert_eq!(sent(&messages), vec![msg("a", "remove", 3)], "and its remove goes out");
}

#[test]
fn controller_admits_occupies_inside_their_merge_in_either_order() {
    let sc = controller_sc();
    // Occupies first (the maintainer's order), then the merge over them.
    let mut oc = OperatorController::new();
    admit_merge(&mut oc, &sc, 5);
    assert_eq!(oc.admit(move_op(&sc, 13), &sc, 0), Err(Refusal::IdBusy(id(13))));
    // Merge first, then its occupies.
    let mut oc = OperatorController::new();
    let changes = oc.admit(merge_op(&sc, 5), &sc, 0).unwrap();
    assert_eq!(changes.len(), 2, "{changes:?}");
    oc.admit(occupy_op(&sc, 11), &sc, 0).expect("occupy inside its merge");
    oc.admit(occupy_op(&sc, 12), &sc, 0).expect("occupy inside its merge");
    // An occupy on behalf of another merge is not inside it.
    let mut oc = OperatorController::new();
    oc.admit(merge_op(&sc, 5), &sc, 0).unwrap();
    let foreign = Operator::occupy(rec(&sc, 11), id(77)).unwrap();
    assert_eq!(oc.admit(foreign, &sc, 0), Err(Refusal::SpanBusy(id(13))));
    // And nothing else gets inside a merge.
    let mut oc = OperatorController::new();
    admit_merge(&mut oc, &sc, 5);
    let other = Operator::remove(rec(&sc, 13), node("a"), OperatorType::Remove, AfterRemove::Nothing);
    assert_eq!(oc.admit(other, &sc, 0), Err(Refusal::IdBusy(id(13))));
}

#[test]
fn controller_quiesced_refuses_routes_nothing_and_sends_nothing() {
    let sc = controller_sc();
    let cf = ChangefeedId::default();
    let mut oc = OperatorController::new();
    oc.admit(move_op(&sc, 1), &sc, 0).unwrap();
    admit_merge(&mut oc, &sc, 1);
    oc.quiesce();
    assert!(oc.is_quiesced());
    assert_eq!(oc.admit(move_op(&sc, 3), &sc, 0), Err(Refusal::Quiesced));
    let (messages, changes) = oc.due(0, 1_000, &ctx(&sc, &cf));
    assert!(messages.is_empty() && changes.is_empty(), "{messages:?} {changes:?}");
    let (messages, changes) = oc.due(50_000, 1_000, &ctx(&sc, &cf));
    assert!(messages.is_empty() && changes.is_empty(), "a frozen merge is not abandoned either");
    assert_eq!(oc.on_status(&node("a"), id(1), Stopped, 20), vec![]);
    assert_eq!(phase(&oc, 1), Phase::RemoveOrigin);
    assert_eq!(oc.on_node_removed(&node("a")), vec![]);
    assert_eq!(phase(&oc, 1), Phase::RemoveOrigin);
    assert_eq!(phase(&oc, 13), Phase::Merging);
    assert_eq!(oc.len(), 4, "frozen operators stay (their checkpoint constraint too)");
    assert_eq!(oc.min_blocking_checkpoint(&sc), Some(10));
}

#[test]
fn controller_resends_at_most_once_per_interval() {
    let sc = controller_sc();
    let cf = ChangefeedId::default();
    let mut oc = OperatorController::new();
    oc.admit(remove_op(&sc, 3), &sc, 1_000).unwrap();
    let mut due = |now| sent(&oc.due(now, 500, &ctx(&sc, &cf)).0);
    assert_eq!(due(999), vec![], "not before admission time");
    assert_eq!(due(1_000), vec![msg("a", "remove", 3)], "first send at admission time");
    assert_eq!(due(1_000), vec![]);
    assert_eq!(due(1_499), vec![]);
    assert_eq!(due(1_500), vec![msg("a", "remove", 3)]);
    assert_eq!(due(1_700), vec![]);
    assert_eq!(
        due(5_000),
        vec![msg("a", "remove", 3)],
        "a late poll sends once, not once per missed interval"
    );
    assert_eq!(due(5_000), vec![]);
}

#[test]
fn controller_sends_at_once_on_a_phase_change_only() {
    let sc = controller_sc();
    let cf = ChangefeedId::default();
    let mut oc = OperatorController::new();
    oc.admit(move_op(&sc, 3), &sc, 0).unwrap();
    oc.admit(move_op(&sc, 4), &sc, 0).unwrap();
    let due = |oc: &mut OperatorController, now| sent(&oc.due(now, 1_000, &ctx(&sc, &cf)).0);
    assert_eq!(due(&mut oc, 0), vec![msg("a", "remove", 3), msg("a", "remove", 4)]);
    assert_eq!(oc.on_status(&node("a"), id(3), Working, 30), vec![], "no phase change");
    assert_eq!(due(&mut oc, 10), vec![], "so no early resend");
    let g3 = rec(&sc, 3).guard();
    assert_eq!(
        oc.on_status(&node("a"), id(3), Stopped, 30),
        vec![
            Change::RaiseCheckpoint(g3, 30),
            Change::Schedule { guard: g3, from: Some(node("a")), to: node("b") }
        ]
    );
    assert_eq!(due(&mut oc, 10), vec![msg("b", "create", 3)], "the new phase's message at once");
    assert_eq!(due(&mut oc, 20), vec![]);
    assert_eq!(oc.on_node_removed(&node("b")), vec![Change::Absent(g3)], "move 3 fails in AddDest");
    assert_eq!(phase(&oc, 4), Phase::AbortRemoveOrigin, "S18 for move 4");
    assert_eq!(due(&mut oc, 20), vec![msg("a", "remove", 4)], "the abort phase sends at once");
    assert_eq!(due(&mut oc, 30), vec![]);
    assert_eq!(oc.reap(), vec![Finished { id: id(3), kind: OpKind::Move, outcome: Outcome::Failed }]);
}

#[test]
fn controller_routes_merge_source_statuses_to_the_merge() {
    let sc = controller_sc();
    let mut oc = OperatorController::new();
    admit_merge(&mut oc, &sc, 1);
    assert_eq!(oc.on_status(&node("a"), id(11), WaitingMerge, 110), vec![]);
    assert!(
        matches!(oc.get(id(13)).unwrap().kind, Kind::Merge { accepted: true, .. }),
        "routed to the merge"
    );
    assert_eq!(phase(&oc, 11), Phase::Holding, "the occupy ignores it");
    let (g11, g12, gt) = (rec(&sc, 11).guard(), rec(&sc, 12).guard(), rec(&sc, 13).guard());
    assert_eq!(oc.on_status(&node("a"), id(12), Stopped, 120), vec![], "a source's Stopped ends nothing");
    assert_eq!(
        oc.on_status(&node("a"), id(13), Working, 110),
        vec![
            Change::Delete(g11),
            Change::Delete(g12),
            Change::Replicate { guard: gt, on: node("a") },
            Change::Release(vec![id(11), id(12)]),
        ]
    );
    assert_eq!(phase(&oc, 11), Phase::Holding, "occupies held until the release is applied");
    assert_eq!(oc.reap(), vec![Finished { id: id(13), kind: OpKind::Merge, outcome: Outcome::Succeeded }]);
    assert_eq!(
        oc.on_status(&node("a"), id(11), Stopped, 110),
        vec![],
        "a late source Stopped hits the occupy"
    );
    assert_eq!(phase(&oc, 11), Phase::Holding);
    oc.release(&[id(11), id(12)]);
    let mut finished = oc.reap();
    finished.sort_by_key(|f| f.id);
    assert_eq!(
        finished,
        vec![
            Finished { id: id(11), kind: OpKind::Occupy, outcome: Outcome::Succeeded },
            Finished { id: id(12), kind: OpKind::Occupy, outcome: Outcome::Succeeded },
        ]
    );
    assert!(oc.is_empty());
    assert_eq!(oc.on_status(&node("a"), id(11), Stopped, 110), vec![], "nothing left to route to");
}

#[test]
fn controller_withdraws_an_unaccepted_merge_after_max_sends() {
    let sc = controller_sc();
    let cf = ChangefeedId::default();
    let (g11, g12, gt) = (rec(&sc, 11).guard(), rec(&sc, 12).guard(), rec(&sc, 13).guard());
    let mut oc = OperatorController::new();
    admit_merge(&mut oc, &sc, 3);
    let (mut merges, mut removes) = (0, 0);
    let mut changes = Vec::new();
    for step in 0..10 {
        let (messages, c) = oc.due(step * 100, 100, &ctx(&sc, &cf));
        merges += sent(&messages).iter().filter(|m| m.1 == "merge").count();
        removes += sent(&messages).iter().filter(|m| *m == &msg("a", "remove", 13)).count();
        changes.extend(c);
    }
    assert_eq!(merges, 3, "exactly max_sends merge sends");
    assert!(removes >= 6, "then the merged dispatcher is removed, resent until it is gone");
    assert!(changes.is_empty(), "the sources stay held while the merged id could still start");
    assert_eq!(phase(&oc, 13), Phase::Withdrawing);
    assert!(oc.reap().is_empty());
    // The node answers the remove: only now are the sources handed back.
    assert_eq!(
        oc.on_status(&node("a"), id(13), Stopped, 0),
        vec![
            Change::Delete(gt),
            Change::Release(vec![id(11), id(12)]),
            Change::Evict { guard: g11, on: node("a") },
            Change::Evict { guard: g12, on: node("a") },
        ]
    );
    assert_eq!(oc.reap(), vec![Finished { id: id(13), kind: OpKind::Merge, outcome: Outcome::Failed }]);

    // Accepted: keeps sending.
    let mut oc = OperatorController::new();
    admit_merge(&mut oc, &sc, 3);
    let _ = oc.on_status(&node("a"), id(12), WaitingMerge, 120);
    let mut merges = 0;
    for step in 0..10 {
        let (messages, changes) = oc.due(step * 100, 100, &ctx(&sc, &cf));
        assert!(changes.is_empty());
        merges += messages.len();
    }
    assert_eq!(merges, 10);
    assert_eq!(phase(&oc, 13), Phase::Merging);
}

#[test]
fn controller_reaps_each_finished_operator_once_and_frees_its_id_and_span() {
    let sc = controller_sc();
    let mut oc = OperatorController::new();
    oc.admit(add_op(&sc, 20), &sc, 0).unwrap();
    oc.admit(move_op(&sc, 1), &sc, 0).unwrap();
    oc.admit(remove_op(&sc, 3), &sc, 0).unwrap();
    assert_eq!(oc.reap(), vec![], "nothing finished yet");
    let _ = oc.on_status(&node("b"), id(20), Working, 200);
    let _ = oc.on_node_removed(&node("a")); // remove 3 succeeds, move 1 goes to AddDest
    assert!(oc.cancel(id(1)).contains(&Change::Replicate { guard: rec(&sc, 1).guard(), on: node("b") }));
    assert_eq!(oc.cancel(id(99)), vec![], "cancelling nothing");
    assert_eq!(
        oc.reap(),
        vec![
            Finished { id: id(1), kind: OpKind::Move, outcome: Outcome::Cancelled },
            Finished { id: id(3), kind: OpKind::Remove, outcome: Outcome::Succeeded },
            Finished { id: id(20), kind: OpKind::Add, outcome: Outcome::Succeeded },
        ]
    );
    assert_eq!(oc.reap(), vec![], "reported once");
    assert!(oc.is_empty() && oc.get(id(1)).is_none());
    oc.admit(move_op(&sc, 2), &sc, 0).expect("the span of 1 is free again");
    oc.admit(remove_op(&sc, 3), &sc, 0).expect("id 3 is free again");
}

#[test]
fn controller_finished_but_unreaped_operators_still_hold_id_and_span() {
    let sc = controller_sc();
    let mut oc = OperatorController::new();
    oc.admit(move_op(&sc, 1), &sc, 0).unwrap();
    let _ = oc.cancel(id(1));
    assert_eq!(oc.admit(move_op(&sc, 1), &sc, 0), Err(Refusal::IdBusy(id(1))));
    assert_eq!(oc.admit(move_op(&sc, 2), &sc, 0), Err(Refusal::SpanBusy(id(1))));
    let cf = ChangefeedId::default();
    assert!(oc.due(0, 100, &ctx(&sc, &cf)).0.is_empty(), "a finished operator sends nothing");
}

#[test]
fn controller_min_blocking_checkpoint_counts_add_move_split_only() {
    let sc = controller_sc();
    let mut oc = OperatorController::new();
    assert_eq!(oc.min_blocking_checkpoint(&sc), None);
    oc.admit(remove_op(&sc, 1), &sc, 0).unwrap(); // checkpoint 10
    admit_merge(&mut oc, &sc, 5); // checkpoints 110, 120, 110
    assert_eq!(oc.min_blocking_checkpoint(&sc), None, "remove, merge and occupy do not block");
    oc.admit(add_op(&sc, 20), &sc, 0).unwrap();
    assert_eq!(oc.min_blocking_checkpoint(&sc), Some(200), "add");
    oc.admit(Operator::split(rec(&sc, 5), whole(5).split_even(4).unwrap()[2..].to_vec()).unwrap(), &sc, 0)
        .unwrap();
    assert_eq!(oc.min_blocking_checkpoint(&sc), Some(50), "split");
    oc.admit(move_op(&sc, 4), &sc, 0).unwrap();
    assert_eq!(oc.min_blocking_checkpoint(&sc), Some(40), "move");
    let _ = oc.on_node_removed(&node("b")); // the move aborts (S18) but still blocks
    assert_eq!(oc.min_blocking_checkpoint(&sc), Some(40));
    let _ = oc.on_status(&node("a"), id(4), Stopped, 45);
    assert_eq!(oc.min_blocking_checkpoint(&sc), Some(50), "finished, even before reap, no longer blocks");
}

#[test]
fn controller_tells_every_operator_about_a_dead_node() {
    let sc = controller_sc();
    let mut oc = OperatorController::new();
    oc.admit(move_op(&sc, 1), &sc, 0).unwrap();
    oc.admit(remove_op(&sc, 3), &sc, 0).unwrap();
    oc.admit(add_op(&sc, 20), &sc, 0).unwrap();
    admit_merge(&mut oc, &sc, 5);
    let changes = oc.on_node_removed(&node("c"));
    assert!(changes.is_empty(), "unrelated node: {changes:?}");
    let changes = oc.on_node_removed(&node("a"));
    let g = |n| rec(&sc, n).guard();
    assert_eq!(
        changes,
        vec![
            Change::Schedule { guard: g(1), from: Some(node("a")), to: node("b") },
            Change::Absent(g(11)),
            Change::Absent(g(12)),
            Change::Delete(g(13)),
            Change::Release(vec![id(11), id(12)]),
        ],
        "in id order: move 1, remove 3 (no hook), occupies (nothing), merge 13"
    );
    assert_eq!(phase(&oc, 1), Phase::AddDest);
    assert_eq!(phase(&oc, 20), Phase::Creating);
    assert_eq!(
        oc.reap(),
        vec![
            Finished { id: id(3), kind: OpKind::Remove, outcome: Outcome::Succeeded },
            Finished { id: id(11), kind: OpKind::Occupy, outcome: Outcome::Failed },
            Finished { id: id(12), kind: OpKind::Occupy, outcome: Outcome::Failed },
            Finished { id: id(13), kind: OpKind::Merge, outcome: Outcome::Failed },
        ]
    );
}
