//! `NodeHost`, every role of one node process as one sans-IO core, on two hosts wired by encoded
//! bytes and an in-memory store: a changefeed created through the coordinator runs, and users'
//! span requests resolve by index and report where they stand (`OperationState`), the state the
//! cluster process uses to carry a stored request through a maintainer change.

use std::collections::{BTreeMap, VecDeque};

use dispatcher_core::coordinator::{Member, Request};
use dispatcher_core::host::{
    HostConfig, HostEvent, HostOutput, Leader, NodeHost, OperationKind, OperationState, SpanRequest,
    SyntheticDefinition, SyntheticDispatchers, SyntheticFactory,
};
use dispatcher_core::ids::{Mode, NodeId};
use dispatcher_core::messages::MessageKind;

use crate::coordinator::harness::{cf, node, Cluster as Store};

struct Hosts {
    now: u64,
    hosts: BTreeMap<NodeId, (u64, NodeHost)>,
    store: Store,
    wire: VecDeque<(NodeId, u64, NodeId, MessageKind, Vec<u8>)>,
    answers: Vec<(u64, Result<(), String>)>,
}

impl Hosts {
    /// n1 (leading) and n2.
    fn new() -> Self {
        let mut hosts = BTreeMap::new();
        for (i, inc) in [(1, 11), (2, 12)] {
            let driver = SyntheticDispatchers { origin: 1_000 };
            let host = NodeHost::new(
                node(i),
                inc,
                HostConfig::default(),
                Box::new(SyntheticFactory),
                Box::new(driver),
            );
            hosts.insert(node(i), (inc, host));
        }
        Hosts { now: 0, hosts, store: Store::new(Vec::new()), wire: VecDeque::new(), answers: Vec::new() }
    }

    fn step(&mut self, id: &NodeId, event: HostEvent) {
        let mut events = VecDeque::from([event]);
        while let Some(event) = events.pop_front() {
            let (inc, host) = self.hosts.get_mut(id).expect("a host");
            let inc = *inc;
            for output in host.step(self.now, event) {
                match output {
                    HostOutput::Send { to, message } => {
                        let (kind, bytes) = message.encode();
                        self.wire.push_back((id.clone(), inc, to, kind, bytes));
                    }
                    HostOutput::Meta { generation, request, .. } => {
                        let reply = self.store.answer_now(request);
                        events.push_back(HostEvent::Meta { generation, reply });
                    }
                    HostOutput::Answered { id, result } => self.answers.push((id, result)),
                    _ => {}
                }
            }
        }
    }

    /// Ticks both hosts every 100 ms for `ms`, delivering every message at once.
    fn run(&mut self, ms: u64) {
        let members: Vec<Member> =
            self.hosts.iter().map(|(id, (inc, _))| Member { node: id.clone(), incarnation: *inc }).collect();
        for _ in 0..ms / 100 {
            self.now += 100;
            let ids: Vec<NodeId> = self.hosts.keys().cloned().collect();
            for id in &ids {
                let leader = Leader { node: node(1), version: 7, mine: *id == node(1) };
                self.step(id, HostEvent::Tick { members: members.clone(), leader: Some(leader) });
                self.pump();
            }
        }
    }

    fn pump(&mut self) {
        while let Some((from, incarnation, to, kind, bytes)) = self.wire.pop_front() {
            self.step(&to, HostEvent::Received { from, incarnation, kind, bytes });
        }
    }

    fn host(&self, id: &NodeId) -> &NodeHost {
        &self.hosts[id].1
    }

    /// The node whose maintainer of `name` runs.
    fn maintainer(&self, name: &str) -> NodeId {
        let ids: Vec<&NodeId> =
            self.hosts.keys().filter(|id| self.host(id).runs_maintainer_of(name)).collect();
        assert_eq!(ids.len(), 1, "one maintainer of {name}");
        ids[0].clone()
    }

    fn spans_of(&self, table: i64) -> Vec<(NodeId, dispatcher_core::span::TableSpan)> {
        let mut out: Vec<_> = self
            .hosts
            .iter()
            .flat_map(|(id, (_, h))| h.dispatchers().map(move |(_, _, _, d)| (id.clone(), d.span.clone())))
            .filter(|(_, s)| s.table_id == table)
            .collect();
        out.sort_by(|a, b| a.1.start_key.cmp(&b.1.start_key));
        out
    }
}

/// Two hosts with changefeed `cf` of three tables in two spans each, placed and running.
fn running() -> Hosts {
    let mut h = Hosts::new();
    h.run(1_000);
    let def = SyntheticDefinition { tables: 3, spans_per_table: 2, redo: false };
    h.step(
        &node(1),
        HostEvent::Request {
            id: 1,
            request: Request::Create { id: cf("cf"), config: def.encode(), start_ts: 1_000 },
        },
    );
    h.pump();
    h.run(3_000);
    assert_eq!(h.answers, [(1, Ok(()))], "the create was stored and answered");
    h
}

#[test]
fn a_changefeed_created_through_the_leading_host_runs_its_maintainer_and_tiles_its_tables() {
    let h = running();
    let m = h.maintainer("cf");
    for t in 1..=3 {
        let spans = h.spans_of(t);
        assert_eq!(spans.len(), 2, "table {t}: {spans:?}");
        assert!(spans[0].1.is_followed_by(&spans[1].1));
    }
    let triggers = h.spans_of(0);
    assert_eq!(triggers.len(), 1);
    assert_eq!(triggers[0].0, m, "the table trigger runs beside the maintainer");
    assert!(h.host(&node(1)).coordinator().is_some() && h.host(&node(2)).coordinator().is_none());
}

#[test]
fn a_span_request_resolves_by_index_and_its_state_goes_waiting_in_flight_done() {
    let mut h = running();
    let m = h.maintainer("cf");
    let split = SpanRequest::Split { table: 1, index: 0, into: 2 };
    let host = h.host(&m);
    assert_eq!(
        host.resolve("cf", Mode::Default, &SpanRequest::Split { table: 9, index: 0, into: 2 }).unwrap_err(),
        "cf has no table 9"
    );
    assert!(host
        .resolve("cf", Mode::Default, &SpanRequest::Split { table: 1, index: 5, into: 2 })
        .unwrap_err()
        .contains("no span 5"));
    assert!(host.resolve("nope", Mode::Default, &split).is_err());
    let other = if m == node(1) { node(2) } else { node(1) };
    assert!(h
        .host(&other)
        .resolve("cf", Mode::Default, &split)
        .unwrap_err()
        .contains("no maintainer of cf runs on"));

    let op = host.resolve("cf", Mode::Default, &split).unwrap();
    let OperationKind::Split { span, into: 2 } = &op.kind else { panic!("{op:?}") };
    assert_eq!(span, &h.spans_of(1)[0].1, "index 0 is the first span in key order");
    assert_eq!(host.operation_state("cf", &op), Some(OperationState::Waiting));
    assert_eq!(h.host(&other).operation_state("cf", &op), None, "no maintainer of cf there");

    h.step(&m, HostEvent::Operate { id: 9, changefeed: "cf".into(), operation: op.clone() });
    assert_eq!(h.answers.last(), Some(&(9, Ok(()))));
    assert_eq!(h.host(&m).operation_state("cf", &op), Some(OperationState::InFlight));
    h.pump();
    h.run(2_000);
    assert_eq!(h.spans_of(1).len(), 3, "split: the first span in two");
    assert_eq!(
        h.host(&m).operation_state("cf", &op),
        Some(OperationState::Done),
        "its range is covered by its parts"
    );
    // Stepping it in again now is refused: its span is gone.
    h.step(&m, HostEvent::Operate { id: 10, changefeed: "cf".into(), operation: op });
    assert!(h.answers.last().is_some_and(|(id, r)| *id == 10 && r.is_err()));

    // A move: waiting while the span is elsewhere, done once it runs on the target.
    let (on, _) = h.spans_of(2)[1].clone();
    let to = if on == node(1) { node(2) } else { node(1) };
    let mv = h
        .host(&m)
        .resolve("cf", Mode::Default, &SpanRequest::Move { table: 2, index: 1, to: to.clone() })
        .unwrap();
    let stay =
        h.host(&m).resolve("cf", Mode::Default, &SpanRequest::Move { table: 2, index: 1, to: on }).unwrap();
    assert_eq!(h.host(&m).operation_state("cf", &stay), Some(OperationState::Done), "already there");
    let away = h
        .host(&m)
        .resolve("cf", Mode::Default, &SpanRequest::Move { table: 2, index: 1, to: node(9) })
        .unwrap();
    assert_eq!(h.host(&m).operation_state("cf", &away), Some(OperationState::Done), "moot: n9 is no member");
    assert_eq!(h.host(&m).operation_state("cf", &mv), Some(OperationState::Waiting));
    h.step(&m, HostEvent::Operate { id: 11, changefeed: "cf".into(), operation: mv.clone() });
    h.pump();
    h.run(2_000);
    assert_eq!(h.spans_of(2)[1].0, to);
    assert_eq!(h.host(&m).operation_state("cf", &mv), Some(OperationState::Done));
}

/// A merge: waiting while its sources are two idle spans on one node, in flight once admitted,
/// done when one span is their union; stepping it in again then is refused.
#[test]
fn a_merge_request_is_done_when_one_span_holds_its_sources() {
    let mut h = running();
    let m = h.maintainer("cf");
    let spans = h.spans_of(3);
    // Both spans of table 3 onto one node first.
    if spans[0].0 != spans[1].0 {
        let to = spans[0].0.clone();
        let mv =
            h.host(&m).resolve("cf", Mode::Default, &SpanRequest::Move { table: 3, index: 1, to }).unwrap();
        h.step(&m, HostEvent::Operate { id: 20, changefeed: "cf".into(), operation: mv });
        h.pump();
        h.run(2_000);
    }
    let spans = h.spans_of(3);
    assert_eq!(spans[0].0, spans[1].0, "{spans:?}");
    let merge = h
        .host(&m)
        .resolve("cf", Mode::Default, &SpanRequest::Merge { table: 3, indexes: vec![0, 1] })
        .unwrap();
    assert_eq!(h.host(&m).operation_state("cf", &merge), Some(OperationState::Waiting));
    h.step(&m, HostEvent::Operate { id: 21, changefeed: "cf".into(), operation: merge.clone() });
    assert_eq!(h.answers.last(), Some(&(21, Ok(()))));
    assert_eq!(h.host(&m).operation_state("cf", &merge), Some(OperationState::InFlight));
    h.pump();
    h.run(3_000);
    let spans = h.spans_of(3);
    assert_eq!(spans.len(), 1, "merged: {spans:?}");
    assert_eq!(h.host(&m).operation_state("cf", &merge), Some(OperationState::Done));
    h.step(&m, HostEvent::Operate { id: 22, changefeed: "cf".into(), operation: merge });
    assert!(h.answers.last().is_some_and(|(id, r)| *id == 22 && r.is_err()));
}
