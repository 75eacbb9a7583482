//! A Chrome trace-event timeline of a simulated run (Perfetto and chrome://tracing open it).
//!
//! One process per node (plus `upstream` and `checker`). Under a node:
//!
//! * one track per dispatcher, a slice from its creation request to its close, with its states
//!   (creating, working, waiting-merge, closing, ...) nested in it;
//! * a `network` track: every message is a short send slice on the sender's track and a receive
//!   slice on the receiver's, joined by a flow arrow (kind, epoch and outcome in the args); a lost
//!   message ends in a `lost` slice, a duplicate shows as two arrows;
//! * on the maintainer's node, one async slice per operator from admission to its end, its phases
//!   nested, its outcome in the end's args;
//! * counters: the maintainer's checkpoint and lag per mode, operators and messages in flight, the
//!   maintainer epoch;
//! * instants for what happened on it (faults, errors), and global markers for failovers and the
//!   first violation.
//!
//! The world is observed after every event ([`Trace::observe`]): slices open and close on what
//! changed, so nothing in the cores has to report to the trace.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::ids::{DispatcherId, Mode, NodeId};
use crate::maintainer::{OperatorKind, OperatorPhase};
use crate::span::TableSpan;

/// One dispatcher as the trace sees it after an event. Cheap to build for every record at every
/// event: its strings are made only when its slice opens.
#[derive(Clone, Debug)]
pub struct DispatcherView {
    /// Its node.
    pub node: NodeId,
    /// The node's incarnation (bumped by a crash: a restarted node's records are new ones).
    pub node_incarnation: u64,
    /// Its mode.
    pub mode: Mode,
    /// Its id.
    pub id: DispatcherId,
    /// The node core's record incarnation (a re-created id is another slice).
    pub incarnation: u64,
    /// Its span.
    pub span: TableSpan,
    /// Its state: creating, closing, or its component state.
    pub state: &'static str,
}

/// One maintainer operator in flight after an event.
#[derive(Clone, Debug)]
pub struct OperatorView {
    /// The maintainer's node.
    pub node: NodeId,
    /// The maintainer's epoch.
    pub epoch: u64,
    /// The mode.
    pub mode: Mode,
    /// The span's dispatcher id.
    pub id: DispatcherId,
    /// Which operator.
    pub kind: OperatorKind,
    /// Its phase.
    pub phase: OperatorPhase,
}

/// What the world looks like after an event.
#[derive(Debug, Default)]
pub struct Frame {
    /// Every dispatcher record of every live node.
    pub dispatchers: Vec<DispatcherView>,
    /// Every operator of every live maintainer.
    pub operators: Vec<OperatorView>,
    /// Counters: (name, value), on the `cluster` process.
    pub counters: Vec<(String, i64)>,
}

type DispatcherKey = (NodeId, u64, Mode, DispatcherId, u64);
type OperatorKey = (NodeId, u64, Mode, DispatcherId, OperatorKind);

/// A mode's name in the trace.
pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Default => "default",
        Mode::Redo => "redo",
    }
}

/// An open dispatcher slice: its track and the state slice open inside it.
#[derive(Debug)]
struct OpenDispatcher {
    pid: usize,
    tid: usize,
    state: &'static str,
}

/// An open operator slice: its async id and the phase open inside it.
#[derive(Debug)]
struct OpenOperator {
    pid: usize,
    tid: usize,
    id: u64,
    phase: OperatorPhase,
}

/// The recorder.
#[derive(Debug, Default)]
pub struct Trace {
    events: Vec<Value>,
    pids: BTreeMap<String, usize>,
    tids: BTreeMap<(usize, String), usize>,
    dispatchers: BTreeMap<DispatcherKey, OpenDispatcher>,
    operators: BTreeMap<OperatorKey, OpenOperator>,
    /// Outcomes reported during the current event, for the operator slices that end in it.
    outcomes: BTreeMap<OperatorKey, String>,
    counters: BTreeMap<String, i64>,
    next_id: u64,
}

/// What is there now, by key, and the keys of `open` slices that are gone.
fn changes<K: Ord + Clone, V, O>(
    open: &BTreeMap<K, O>,
    now: impl IntoIterator<Item = (K, V)>,
) -> (BTreeMap<K, V>, Vec<K>) {
    let seen: BTreeMap<K, V> = now.into_iter().collect();
    let gone = open.keys().filter(|k| !seen.contains_key(*k)).cloned().collect();
    (seen, gone)
}

/// Simulated milliseconds to trace microseconds.
fn us(at_ms: u64) -> u64 {
    at_ms * 1_000
}

impl Trace {
    /// An empty timeline.
    pub fn new() -> Self {
        Self::default()
    }

    fn pid(&mut self, process: &str) -> usize {
        if let Some(pid) = self.pids.get(process) {
            return *pid;
        }
        let pid = self.pids.len() + 1;
        self.pids.insert(process.to_string(), pid);
        pid
    }

    fn tid(&mut self, pid: usize, thread: &str) -> usize {
        if let Some(tid) = self.tids.get(&(pid, thread.to_string())) {
            return *tid;
        }
        let tid = self.tids.len() + 1;
        self.tids.insert((pid, thread.to_string()), tid);
        tid
    }

    fn track(&mut self, process: &str, thread: &str) -> (usize, usize) {
        let pid = self.pid(process);
        (pid, self.tid(pid, thread))
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Something happened on `process` (a node) at simulated `at_ms`.
    pub fn instant(&mut self, at_ms: u64, process: &str, category: &str, name: &str) {
        let (pid, tid) = self.track(process, category);
        self.events.push(json!({
            "name": name, "cat": category, "ph": "i", "s": "t",
            "ts": us(at_ms), "pid": pid, "tid": tid,
        }));
    }

    /// A marker across the whole timeline (a failover, a fault, the first violation).
    pub fn marker(&mut self, at_ms: u64, category: &str, name: &str) {
        let (pid, tid) = self.track("checker", category);
        self.events.push(json!({
            "name": name, "cat": category, "ph": "i", "s": "g",
            "ts": us(at_ms), "pid": pid, "tid": tid,
        }));
    }

    /// A message leaves `from` for `to`: a send slice and the start of its flow. Returns the
    /// flow's id, which its delivery names.
    pub fn sent(&mut self, at_ms: u64, from: &str, to: &str, kind: &str) -> u64 {
        let id = self.next_id();
        let (pid, tid) = self.track(from, "network");
        let ts = us(at_ms);
        self.events.push(json!({
            "name": kind, "cat": "message", "ph": "X", "ts": ts, "dur": 1, "pid": pid, "tid": tid,
            "args": {"to": to},
        }));
        self.events.push(
            json!({"name": kind, "cat": "message", "ph": "s", "id": id, "ts": ts, "pid": pid, "tid": tid}),
        );
        id
    }

    /// A message that never left `from` (dropped by a fault or a cut link).
    pub fn lost(&mut self, at_ms: u64, from: &str, to: &str, kind: &str, why: &str) {
        let (pid, tid) = self.track(from, "network");
        self.events.push(json!({
            "name": format!("lost {kind}"), "cat": "message", "ph": "i", "s": "t", "ts": us(at_ms),
            "pid": pid, "tid": tid, "args": {"to": to, "why": why},
        }));
    }

    /// Message `flow` reached `to` (or was discarded there): a receive slice, the end of its
    /// arrow, and what became of it.
    pub fn delivered(
        &mut self,
        at_ms: u64,
        flow: u64,
        to: &str,
        kind: &str,
        epoch: Option<u64>,
        outcome: &str,
    ) {
        if flow == 0 {
            return;
        }
        let (pid, tid) = self.track(to, "network");
        let ts = us(at_ms);
        let mut args = json!({"outcome": outcome});
        if let Some(epoch) = epoch {
            args["epoch"] = json!(epoch);
        }
        self.events.push(json!({
            "name": kind, "cat": "message", "ph": "X", "ts": ts, "dur": 1, "pid": pid, "tid": tid,
            "args": args,
        }));
        self.events.push(json!({
            "name": kind, "cat": "message", "ph": "f", "bp": "e", "id": flow, "ts": ts, "pid": pid, "tid": tid,
        }));
    }

    /// An operator ended during the current event, with `outcome` (attached to its slice's end).
    pub fn operator_outcome(
        &mut self,
        node: &NodeId,
        epoch: u64,
        mode: Mode,
        id: DispatcherId,
        kind: OperatorKind,
        outcome: String,
    ) {
        self.outcomes.insert((node.clone(), epoch, mode, id, kind), outcome);
    }

    /// The world after an event at `at_ms`: opens, nests and closes slices on what changed.
    pub fn observe(&mut self, at_ms: u64, frame: Frame) {
        let ts = us(at_ms);
        self.observe_dispatchers(ts, frame.dispatchers);
        self.observe_operators(ts, frame.operators);
        let pid = self.pid("cluster");
        for (name, value) in frame.counters {
            if self.counters.get(&name) != Some(&value) {
                self.events
                    .push(json!({"name": name, "ph": "C", "ts": ts, "pid": pid, "args": {"value": value}}));
                self.counters.insert(name, value);
            }
        }
        self.outcomes.clear();
    }

    fn observe_dispatchers(&mut self, ts: u64, now: Vec<DispatcherView>) {
        let keyed =
            now.into_iter().map(|d| ((d.node.clone(), d.node_incarnation, d.mode, d.id, d.incarnation), d));
        let (seen, gone) = changes(&self.dispatchers, keyed);
        for key in gone {
            let Some(open) = self.dispatchers.remove(&key) else { continue };
            self.end(ts, open.pid, open.tid);
            self.end(ts, open.pid, open.tid);
        }
        for (key, d) in seen {
            match self.dispatchers.get_mut(&key) {
                Some(open) if open.state == d.state => {}
                Some(open) => {
                    let (pid, tid) = (open.pid, open.tid);
                    open.state = d.state;
                    self.end(ts, pid, tid);
                    self.begin(ts, pid, tid, d.state, json!({}));
                }
                None => {
                    let (mode, span) = (mode_name(d.mode), format!("{:?}", d.span));
                    let (pid, tid) = self.track(d.node.as_str(), &format!("{} {mode}", d.id));
                    let args = json!({"span": span, "mode": mode, "incarnation": d.incarnation});
                    self.begin(ts, pid, tid, &format!("{} {span}", d.id), args);
                    self.begin(ts, pid, tid, d.state, json!({}));
                    self.dispatchers.insert(key, OpenDispatcher { pid, tid, state: d.state });
                }
            }
        }
    }

    fn observe_operators(&mut self, ts: u64, now: Vec<OperatorView>) {
        let keyed = now.into_iter().map(|o| ((o.node.clone(), o.epoch, o.mode, o.id, o.kind), o));
        let (seen, gone) = changes(&self.operators, keyed);
        for key in gone {
            let Some(open) = self.operators.remove(&key) else { continue };
            let outcome = self
                .outcomes
                .get(&key)
                .cloned()
                .unwrap_or_else(|| "none reported (its maintainer is gone)".into());
            self.async_event(ts, &open, "e", &format!("{:?}", open.phase), json!({}));
            let name = format!("{:?} {}", key.4, key.3);
            self.async_event(ts, &open, "e", &name, json!({"outcome": outcome}));
        }
        for (key, o) in seen {
            match self.operators.get(&key) {
                Some(open) if open.phase == o.phase => {}
                Some(open) => {
                    let (pid, tid, id, old) = (open.pid, open.tid, open.id, open.phase);
                    let open = OpenOperator { pid, tid, id, phase: o.phase };
                    self.async_event(ts, &open, "e", &format!("{old:?}"), json!({}));
                    self.async_event(ts, &open, "b", &format!("{:?}", o.phase), json!({}));
                    self.operators.insert(key, open);
                }
                None => {
                    let (pid, tid) = self.track(o.node.as_str(), "operators");
                    let open = OpenOperator { pid, tid, id: self.next_id(), phase: o.phase };
                    let args = json!({"epoch": o.epoch, "mode": mode_name(o.mode)});
                    self.async_event(ts, &open, "b", &format!("{:?} {}", o.kind, o.id), args);
                    self.async_event(ts, &open, "b", &format!("{:?}", o.phase), json!({}));
                    self.operators.insert(key, open);
                }
            }
        }
    }

    fn begin(&mut self, ts: u64, pid: usize, tid: usize, name: &str, args: Value) {
        self.events.push(json!({"name": name, "ph": "B", "ts": ts, "pid": pid, "tid": tid, "args": args}));
    }

    fn end(&mut self, ts: u64, pid: usize, tid: usize) {
        self.events.push(json!({"ph": "E", "ts": ts, "pid": pid, "tid": tid}));
    }

    fn async_event(&mut self, ts: u64, open: &OpenOperator, ph: &str, name: &str, args: Value) {
        self.events.push(json!({
            "name": name, "cat": "operator", "ph": ph, "id": open.id, "ts": ts,
            "pid": open.pid, "tid": open.tid, "args": args,
        }));
    }

    /// Closes every slice still open at `at_ms` (the end of the run), so each one has an end.
    pub fn finish(&mut self, at_ms: u64) {
        let open: Vec<OperatorKey> = self.operators.keys().cloned().collect();
        for key in open {
            self.outcomes.entry(key).or_insert_with(|| "in flight at the end of the run".to_string());
        }
        self.observe(at_ms, Frame::default());
    }

    /// The whole timeline as trace-event JSON, with process and track names.
    pub fn to_json(&self) -> Value {
        let mut events = Vec::with_capacity(self.events.len() + self.tids.len() + self.pids.len());
        for (name, pid) in &self.pids {
            events.push(json!({"name": "process_name", "ph": "M", "pid": pid, "args": {"name": name}}));
        }
        for ((pid, thread), tid) in &self.tids {
            events.push(
                json!({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": thread}}),
            );
        }
        events.extend(self.events.iter().cloned());
        json!({ "traceEvents": events, "displayTimeUnit": "ms" })
    }

    /// Process names by pid, and track names by (pid, tid).
    pub fn names(&self) -> (BTreeMap<u64, String>, BTreeMap<(u64, u64), String>) {
        let processes = self.pids.iter().map(|(name, pid)| (*pid as u64, name.clone())).collect();
        let tracks =
            self.tids.iter().map(|((pid, name), tid)| ((*pid as u64, *tid as u64), name.clone())).collect();
        (processes, tracks)
    }

    /// The recorded events (without the naming metadata), in order.
    pub fn events(&self) -> &[Value] {
        &self.events
    }

    /// Number of recorded events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}
