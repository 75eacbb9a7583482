//! Scripted nodes for driving `Maintainer::step` in tests: hand-made bootstrap responses,
//! heartbeats and statuses, and readers for the effects.

use dispatcher_core::ids::{ChangefeedId, DispatcherId, Epoch, Mode, NodeId, Ts};
use dispatcher_core::maintainer::*;
use dispatcher_core::messages::*;
use dispatcher_core::span::TableSpan;

pub fn n(s: &str) -> NodeId {
    NodeId::new(s)
}

pub fn did(n: u64) -> DispatcherId {
    DispatcherId::new(0, n).unwrap()
}

pub fn table(id: i64) -> TableInfo {
    TableInfo { keyspace_id: 0, table_id: id, schema_id: 1 }
}

pub fn whole(t: i64) -> TableSpan {
    TableSpan::whole_table(0, t)
}

/// Part `i` of table `t` cut into `of` equal spans.
pub fn part(t: i64, of: usize, i: usize) -> TableSpan {
    whole(t).split_even(of).unwrap()[i].clone()
}

/// A schema where `tables` were created at ts 1.
pub fn schema(tables: &[i64]) -> MemorySchema {
    let mut s = MemorySchema::new();
    for t in tables {
        s.apply(1, Ddl::Create(table(*t)));
    }
    s
}

pub const EPOCH: Epoch = Epoch(7);
pub const CP: Ts = 100;

/// A maintainer at epoch 7 on node `nodes[0]`, starting from checkpoint 100.
pub fn maintainer_with(
    nodes: &[&str],
    schema: MemorySchema,
    tune: impl FnOnce(&mut MaintainerConfig),
) -> Maintainer {
    let mut cfg = MaintainerConfig::new(ChangefeedId::default(), n(nodes[0]), EPOCH, CP);
    tune(&mut cfg);
    let nodes: Vec<NodeId> = nodes.iter().map(|s| n(s)).collect();
    Maintainer::new(cfg, Box::new(schema), &nodes)
}

pub fn maintainer(nodes: &[&str], tables: &[i64]) -> Maintainer {
    maintainer_with(nodes, schema(tables), |_| {})
}

/// A maintainer on node `a` whose schema has `tables` created at ts 1, then `ddl` at `ts`.
pub fn maintainer_after(tables: &[i64], ts: Ts, ddl: Ddl) -> Maintainer {
    let mut s = schema(tables);
    s.apply(ts, ddl);
    maintainer_with(&["a"], s, |_| {})
}

pub fn bspan(id: u64, span: TableSpan, state: ComponentState, checkpoint: Ts) -> BootstrapSpan {
    BootstrapSpan {
        id: did(id),
        mode: Mode::Default,
        schema_id: 1,
        span,
        state,
        checkpoint_ts: checkpoint,
        block: None,
    }
}

pub fn response(spans: Vec<BootstrapSpan>) -> BootstrapResponse {
    BootstrapResponse { spans, epoch: EPOCH, ..Default::default() }
}

/// A schedule request journaled by the previous owner (epoch 6), starting at `CP`.
pub fn journaled(id: u64, span: TableSpan, action: ScheduleAction, op: OperatorType) -> ScheduleRequest {
    let create = crate::node::manager::create_at(did(id), span.clone(), Mode::Default, 6, CP);
    let order = Order::new(action, Some(span)).expect("a span is given");
    ScheduleRequest { order, operator_type: op, ..create }
}

/// Ticks once (bootstrap requests go out), answers from each node, returns the effects of the
/// answers.
pub fn bootstrap(m: &mut Maintainer, answers: Vec<(&str, BootstrapResponse)>) -> Vec<Output> {
    m.step(0, Event::Tick);
    let mut effects = Vec::new();
    for (node, response) in answers {
        effects.extend(m.step(0, Event::BootstrapResponse { from: n(node), response }));
    }
    effects
}

/// `bootstrap`, each node answering with just its spans.
pub fn bootstrap_spans(m: &mut Maintainer, answers: Vec<(&str, Vec<BootstrapSpan>)>) -> Vec<Output> {
    bootstrap(m, answers.into_iter().map(|(node, spans)| (node, response(spans))).collect())
}

pub fn heartbeat(statuses: &[(DispatcherId, ComponentState, Ts)], seq: u64, watermark: Ts) -> Heartbeat {
    Heartbeat {
        watermark: Some(Watermark { checkpoint_ts: watermark, resolved_ts: watermark, seq }),
        statuses: statuses
            .iter()
            .map(|(id, state, ckpt)| DispatcherStatus {
                id: *id,
                mode: Mode::Default,
                state: *state,
                checkpoint_ts: *ckpt,
                event_size_per_second: 0.0,
            })
            .collect(),
        ..Default::default()
    }
}

/// One status from `node`, in a heartbeat without a watermark.
pub fn status(
    m: &mut Maintainer,
    now: u64,
    node: &str,
    id: DispatcherId,
    state: ComponentState,
    ckpt: Ts,
) -> Vec<Output> {
    let heartbeat = Heartbeat { watermark: None, ..heartbeat(&[(id, state, ckpt)], 0, 0) };
    m.step(now, Event::Heartbeat { from: n(node), heartbeat })
}

/// The schedule requests among the effects: (to, action, operator type, id, start ts).
pub fn schedules(effects: &[Output]) -> Vec<(String, ScheduleAction, OperatorType, DispatcherId, Ts)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Output::Send { to, message: ToNode::Schedule(r) } => {
                Some((to.to_string(), r.action(), r.operator_type, r.config.id, r.config.start_ts))
            }
            _ => None,
        })
        .collect()
}

pub fn merges(effects: &[Output]) -> Vec<(String, MergeRequest)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Output::Send { to, message: ToNode::Merge(r) } => Some((to.to_string(), r.clone())),
            _ => None,
        })
        .collect()
}

pub fn record(m: &Maintainer, id: DispatcherId) -> Option<SpanRecord> {
    m.view(Mode::Default).unwrap().spans.get(id).cloned()
}

pub fn state_of(m: &Maintainer, id: DispatcherId) -> Option<(SpanState, Option<String>)> {
    record(m, id).map(|r| (r.state, r.node.map(|n| n.to_string())))
}

/// What `state_of` answers for a span replicating on `node`.
pub fn replicating(node: &str) -> Option<(SpanState, Option<String>)> {
    Some((SpanState::Replicating, Some(node.into())))
}

/// What `state_of` answers for an absent span.
pub fn absent() -> Option<(SpanState, Option<String>)> {
    Some((SpanState::Absent, None))
}

pub fn op_of(m: &Maintainer, id: DispatcherId) -> Option<(OperatorKind, OperatorPhase)> {
    m.view(Mode::Default).unwrap().operators.get(id).map(|o| (o.op_kind(), o.phase()))
}

/// Spans of table `t` as (span, state, node), in key order.
pub fn table_spans(m: &Maintainer, t: i64) -> Vec<(TableSpan, SpanState, Option<String>)> {
    let v = m.view(Mode::Default).unwrap();
    v.spans.table((0, t)).map(|r| (r.span.clone(), r.state, r.node.as_ref().map(|n| n.to_string()))).collect()
}

/// Asserts the span controller's indexes agree with its records (no ghosts).
pub fn sound(m: &Maintainer) {
    for mode in m.modes().collect::<Vec<_>>() {
        m.view(mode).unwrap().spans.check_indexes().unwrap();
    }
}

pub fn orphans(m: &Maintainer) -> Vec<(String, DispatcherId)> {
    m.orphans().map(|(node, _, id)| (node.to_string(), *id)).collect()
}
