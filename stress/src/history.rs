//! The event log and the after-the-fact checks (I12, snapshot completeness).
//!
//! Every thread appends to its own log; each event carries positions on one SeqCst counter
//! ([`Clock`]), taken just before a call into the core (`begin`) and just after it returned
//! (`end`). SeqCst makes those positions one total order consistent with what each thread saw,
//! so "the commit returned before the bootstrap began" is a fact about the run, and the rules
//! below only flag what no linearization of the core's calls could allow.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use dispatcher_core::ids::{DispatcherId, Mode};
use dispatcher_core::span::TableSpan;

/// The one SeqCst counter that orders the log.
#[derive(Default)]
pub struct Clock(AtomicU64);

impl Clock {
    pub fn tick(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst)
    }
}

/// (changefeed, mode, dispatcher).
pub type Key = (usize, Mode, DispatcherId);

#[derive(Clone, Debug)]
pub enum Event {
    /// A create or merge request on `span` was handled between `at` and `end`.
    Asked { cf: usize, mode: Mode, span: TableSpan, at: u64, end: u64 },
    /// `commit_create` succeeded for a create of owner `epoch` whose ticket was handed out at
    /// `issued`.
    Committed { key: Key, epoch: u64, issued: u64, begin: u64, end: u64 },
    /// A merge request was taken up (its merged dispatcher is live, preparing).
    Prepared { key: Key, at: u64 },
    /// The embedder reported `key` closed (`dispatcher_closed` ran between `at` and `end`).
    Closed { key: Key, at: u64, end: u64 },
    /// A Remove of `key` (span `span`) from owner `epoch` asked for its close.
    RemoveApplied { key: Key, span: TableSpan, epoch: u64, begin: u64, end: u64 },
    /// A bootstrap of owner `epoch` answered with this snapshot.
    Bootstrap { cf: usize, epoch: u64, begin: u64, end: u64, snapshot: Snapshot },
}

/// What a bootstrap answer listed.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub spans: HashSet<(Mode, DispatcherId)>,
    pub creates: HashSet<(Mode, DispatcherId)>,
    pub removes: HashSet<(Mode, DispatcherId)>,
}

impl Snapshot {
    pub fn of(response: &dispatcher_core::messages::BootstrapResponse) -> Self {
        use dispatcher_core::messages::ScheduleAction;
        let mut s =
            Snapshot { spans: response.spans.iter().map(|b| (b.mode, b.id)).collect(), ..Self::default() };
        for op in &response.operators {
            let key = (op.config.mode, op.config.id);
            match op.action() {
                ScheduleAction::Create => s.creates.insert(key),
                ScheduleAction::Remove => s.removes.insert(key),
            };
        }
        s
    }
}

/// What the checks looked at.
#[derive(Default, Debug, Clone, Copy)]
pub struct Checked {
    pub bootstraps: u64,
    pub pairs: u64,
}

/// Checks one round's merged log. Returns the violations found (empty: clean).
pub fn check(events: &[Event], out: &mut Checked) -> Vec<String> {
    let mut closes: HashMap<Key, Vec<(u64, u64)>> = HashMap::new();
    // Dispatchers the embedder was told to build (a create committed, a merged one prepared).
    let mut announced: HashMap<Key, Vec<u64>> = HashMap::new();
    for e in events {
        match e {
            Event::Closed { key, at, end } => closes.entry(*key).or_default().push((*at, *end)),
            Event::Committed { key, begin: at, .. } | Event::Prepared { key, at } => {
                announced.entry(*key).or_default().push(*at)
            }
            _ => {}
        }
    }
    // A close report of `key` overlapped the interval from `after` to `before`.
    let closed_between = |key: &Key, after: u64, before: u64| {
        closes.get(key).is_some_and(|v| v.iter().any(|&(at, end)| after < end && at < before))
    };
    let mut violations = Vec::new();
    for b in events {
        let Event::Bootstrap { cf, epoch: e, begin: b0, end: b1, snapshot } = b else { continue };
        out.bootstraps += 1;
        for ev in events {
            match ev {
                // A create admitted before the bootstrap began that executed: an older owner's must
                // have executed before the answer and be listed as a dispatcher (I12); the same
                // owner's is listed as a dispatcher or as an in-flight create.
                Event::Committed { key, epoch: c, issued, begin, end }
                    if key.0 == *cf && issued < b0 && c <= e =>
                {
                    out.pairs += 1;
                    if closed_between(key, *begin, *b1) {
                        continue;
                    }
                    let k = (key.1, key.2);
                    if c < e && begin > b1 {
                        violations.push(format!(
                            "I12: cf{cf} {:?} {} admitted for owner e{c} executed (commit at {begin}) after the node answered the bootstrap of e{e} ({b0}..{b1})",
                            key.1, key.2
                        ));
                    } else if c < e && !snapshot.spans.contains(&k) {
                        violations.push(format!(
                            "snapshot: cf{cf} {:?} {} of owner e{c} executed (commit {begin}..{end}) but the bootstrap of e{e} ({b0}..{b1}) does not list it",
                            key.1, key.2
                        ));
                    } else if c == e && !snapshot.spans.contains(&k) && !snapshot.creates.contains(&k) {
                        violations.push(format!(
                            "snapshot: cf{cf} {:?} {} of e{e} (ticket at {issued}, commit {begin}..{end}) is neither a dispatcher nor a create in the same owner's re-bootstrap ({b0}..{b1})",
                            key.1, key.2
                        ));
                    }
                }
                // A merged dispatcher taken up before the bootstrap and not closed is listed.
                Event::Prepared { key, at } if key.0 == *cf && at < b0 => {
                    out.pairs += 1;
                    if !closed_between(key, *at, *b1) && !snapshot.spans.contains(&(key.1, key.2)) {
                        violations.push(format!(
                            "snapshot: cf{cf} merged {:?} {} prepared at {at} is missing from the bootstrap of e{e} ({b0}..{b1})",
                            key.1, key.2
                        ));
                    }
                }
                // A Remove in flight (its dispatcher not closed) is recoverable: listed with its
                // dispatcher. Nothing may take its journal entry meanwhile: a create or merge of
                // the span is Busy, a fenced resend puts it back, a newer one is listed itself.
                Event::RemoveApplied { key, span, epoch: r, begin, end }
                    if key.0 == *cf && end < b0 && r <= e =>
                {
                    out.pairs += 1;
                    // A merged dispatcher whose merge request was undone under the Remove was
                    // never announced: its record went with the undo, and so did the Remove.
                    let Some(born) =
                        announced.get(key).and_then(|v| v.iter().filter(|&&at| at < *begin).max())
                    else {
                        continue;
                    };
                    // Closed since it was built (a drained merge source, released without a
                    // second report when the Remove ended its merge): nothing runs to list.
                    if closed_between(key, *born, *b1) {
                        continue;
                    }
                    let k = (key.1, key.2);
                    if !snapshot.spans.contains(&k) || !snapshot.removes.contains(&k) {
                        violations.push(format!(
                            "I12: cf{cf} Remove of {:?} {} from e{r} ({begin}..{end}) is in flight but the bootstrap of e{e} ({b0}..{b1}) lists {}",
                            key.1,
                            key.2,
                            match (snapshot.spans.contains(&k), snapshot.removes.contains(&k)) {
                                (false, false) => "neither the dispatcher nor the Remove",
                                (false, true) => "the Remove without the dispatcher",
                                _ => "the dispatcher without its Remove",
                            }
                        ));
                        trace(events, key, span, begin.saturating_sub(3000), *b1 + 200);
                    }
                }
                _ => {}
            }
        }
    }
    violations
}

/// With `STRESS_TRACE` set, prints every event about `key` or a span overlapping `span`.
fn trace(events: &[Event], key: &Key, span: &TableSpan, from: u64, to: u64) {
    if std::env::var_os("STRESS_TRACE").is_none() {
        return;
    }
    let mut lines = Vec::new();
    for e in events {
        let (hit, at) = match e {
            Event::Asked { cf, mode, span: s, at, .. } => {
                (*cf == key.0 && *mode == key.1 && s.overlaps(span), *at)
            }
            Event::Prepared { key: k, at } | Event::Closed { key: k, at, .. } => (k == key, *at),
            Event::Committed { key: k, begin, .. } | Event::RemoveApplied { key: k, begin, .. } => {
                (k == key, *begin)
            }
            Event::Bootstrap { cf, begin, .. } => (*cf == key.0, *begin),
        };
        if !hit || !(from..=to).contains(&at) {
            continue;
        }
        let line = match e {
            Event::Bootstrap { epoch, begin, end, snapshot, .. } => {
                let k = (key.1, key.2);
                format!(
                    "bootstrap e{epoch} {begin}..{end} span={} create={} remove={}",
                    snapshot.spans.contains(&k),
                    snapshot.creates.contains(&k),
                    snapshot.removes.contains(&k)
                )
            }
            Event::Asked { mode, span, at, end, .. } => format!("asked {mode:?} {span:?} {at}..{end}"),
            other => format!("{other:?}"),
        };
        lines.push((at, line));
    }
    lines.sort();
    for (_, line) in lines {
        eprintln!("  {line}");
    }
}
