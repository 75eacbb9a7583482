//! A Chrome trace-event timeline of a simulated run (Perfetto and chrome://tracing open it):
//! one process per node (plus the upstream and the checker), one thread per category (network,
//! node, dispatcher, operator, maintainer, ddl, fault), an instant event per happening.

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// The recorder.
#[derive(Debug, Default)]
pub struct Trace {
    events: Vec<Value>,
    pids: BTreeMap<String, usize>,
    tids: BTreeMap<String, usize>,
}

impl Trace {
    /// An empty timeline.
    pub fn new() -> Self {
        Self::default()
    }

    fn pid(&mut self, process: &str) -> usize {
        let next = self.pids.len() + 1;
        *self.pids.entry(process.to_string()).or_insert(next)
    }

    fn tid(&mut self, thread: &str) -> usize {
        let next = self.tids.len() + 1;
        *self.tids.entry(thread.to_string()).or_insert(next)
    }

    /// Something happened on `process` (a node) at simulated `at_ms`.
    pub fn instant(&mut self, at_ms: u64, process: &str, category: &str, name: &str) {
        let (pid, tid) = (self.pid(process), self.tid(category));
        self.events.push(json!({
            "name": name, "cat": category, "ph": "i", "s": "t",
            "ts": at_ms * 1_000, "pid": pid, "tid": tid,
        }));
    }

    /// The whole timeline as trace-event JSON, with process and thread names.
    pub fn to_json(&self) -> Value {
        let mut events = Vec::with_capacity(self.events.len() + 64);
        for (name, pid) in &self.pids {
            events.push(json!({"name": "process_name", "ph": "M", "pid": pid, "args": {"name": name}}));
            for (thread, tid) in &self.tids {
                events.push(json!({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": thread}}));
            }
        }
        events.extend(self.events.iter().cloned());
        json!({ "traceEvents": events, "displayTimeUnit": "ms" })
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
