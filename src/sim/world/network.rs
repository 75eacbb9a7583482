//! The simulated network: seeded latency, partitions and message faults on what crosses it
//! (protobuf bytes with their message kind).

use super::*;

impl World {
    pub(super) fn link_cut(&self, a: &NodeId, b: &NodeId) -> bool {
        self.partition.contains(a) != self.partition.contains(b)
    }

    pub(super) fn send(&mut self, from: NodeId, to: NodeId, kind: MessageKind, bytes: Vec<u8>) {
        let mut copies = 1;
        let mut extra = 0;
        for f in &mut self.faults {
            let matches = f.kind.is_none_or(|k| k == kind)
                && f.from.as_deref().is_none_or(|n| n == from.as_str())
                && f.to.as_deref().is_none_or(|n| n == to.as_str())
                && f.remaining != Some(0);
            if !matches {
                continue;
            }
            if let Some(r) = &mut f.remaining {
                *r -= 1;
            }
            let label = match f.action {
                FaultAction::Drop => {
                    copies = 0;
                    "drop"
                }
                FaultAction::Duplicate => {
                    copies = 2;
                    "duplicate"
                }
                FaultAction::Delay(ms) => {
                    extra = ms;
                    "delay"
                }
            };
            *self.coverage.messages.entry((label, kind.name())).or_default() += 1;
            break;
        }
        if copies == 0 || self.link_cut(&from, &to) {
            if kind.to_node() {
                self.control_in_flight -= 1;
            }
            let now = self.now;
            let why = if copies == 0 { "dropped" } else { "link cut" };
            if let Some(t) = &mut self.trace {
                t.lost(now, from.as_str(), to.as_str(), kind.name(), why);
            }
            return;
        }
        if copies == 2 && kind.to_node() {
            self.control_in_flight += 1;
        }
        let to_incarnation = self.nodes.get(&to).map_or(0, |n| n.incarnation);
        let from_incarnation = self.nodes.get(&from).map_or(0, |n| n.incarnation);
        for _ in 0..copies {
            let (lo, hi) = self.opts.latency_ms;
            let delay = self.rng.range(lo, hi) + extra;
            let now = self.now;
            let flow =
                self.trace.as_mut().map_or(0, |t| t.sent(now, from.as_str(), to.as_str(), kind.name()));
            let ev = Ev::Deliver {
                from: from.clone(),
                to: to.clone(),
                kind,
                bytes: bytes.clone(),
                from_incarnation,
                to_incarnation,
                flow,
            };
            self.schedule(delay, ev);
        }
    }

    /// Cuts every link between `nodes` and the rest.
    pub fn partition(&mut self, nodes: &[String]) {
        self.partition = nodes.iter().map(|n| NodeId::new(n)).collect();
    }

    /// Restores all links.
    pub fn heal(&mut self) {
        self.partition.clear();
    }

    /// Adds a message fault.
    pub fn add_fault(&mut self, fault: Fault) {
        self.faults.push(fault);
    }

    /// Ends every message fault.
    pub fn heal_messages(&mut self) {
        self.faults.clear();
    }
}

/// A message fault of the scenario format.
#[derive(Clone, Debug)]
pub struct Fault {
    /// Message kind, or any.
    pub kind: Option<MessageKind>,
    /// Sending node, or any.
    pub from: Option<String>,
    /// Receiving node, or any.
    pub to: Option<String>,
    /// What happens to a matching message.
    pub action: FaultAction,
    /// How many more messages it applies to; `None` until healed.
    pub remaining: Option<u32>,
}

/// What a fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Hold back this long.
    Delay(u64),
    /// Lose it.
    Drop,
    /// Deliver it twice.
    Duplicate,
}
