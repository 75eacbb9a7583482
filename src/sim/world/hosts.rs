//! The maintainers: every host that ever ran one, stepped with its events; what it sends goes
//! through the monitor first. Crashes and moves start the next epoch on the first live node.

use super::*;
use crate::maintainer::OperatorKind;

impl World {
    /// L8, under our rules: a range the schedulers split is not merged back, nor a merged one
    /// split again, before its windows could fill again (a window of rounds less one: a new
    /// maintainer's first round samples what it heard before it).
    fn ping_pong(&self, mode: Mode, kind: OperatorKind, span: &TableSpan) -> Option<Violation> {
        let load = &self.opts.load;
        if !load.across_nodes || load.rules != crate::maintainer::load::Rules::Ours {
            return None;
        }
        let opposite = match kind {
            OperatorKind::Split => OperatorKind::Merge,
            OperatorKind::Merge => OperatorKind::Split,
            _ => return None,
        };
        let cooldown = (load.window() as u64).saturating_sub(1) * load.check_balance_interval_ms;
        let (at, _, _, earlier) = self.scheduler_started.iter().rev().find(|(at, m, k, s)| {
            *m == mode && *k == opposite && s.overlaps(span) && self.now.saturating_sub(*at) < cooldown
        })?;
        let detail = format!(
            "{mode:?} {kind:?} of {span:?} {} ms after the {opposite:?} of {earlier:?}",
            self.now - at
        );
        Some(Violation::new("L8", self.now, detail))
    }

    pub(super) fn start_maintainer(&mut self, on: NodeId) {
        let epoch = Epoch(self.hosts.last().map_or(1, |h| h.epoch.0 + 1));
        let start = |mode| self.persisted.get(&mode).copied().unwrap_or(1_000);
        let mut cfg = MaintainerConfig::new(CHANGEFEED, on.clone(), epoch, start(Mode::Default));
        cfg.redo_start_checkpoint = Some(start(Mode::Redo));
        cfg.redo = self.redo;
        cfg.balance = self.balance;
        cfg.resend_ms = 500;
        cfg.bootstrap_resend_ms = 500;
        cfg.balance_interval_ms = 2_000;
        cfg.table_spans = self.table_spans.clone();
        cfg.mutation = self.opts.mutation;
        cfg.load = self.opts.load.clone();
        let members: Vec<NodeId> = self.order.iter().filter(|n| self.nodes[*n].alive).cloned().collect();
        // With the barrier, DDLs after where the triggers start reach the maintainer through
        // them: it reads the schema only up to there.
        cfg.ddls_through_barrier = self.opts.barrier;
        let schema = self.schema.clone();
        let regions = Box::new(SimRegions(self.traffic.clone()));
        let maintainer = Maintainer::new(cfg, Box::new(schema), &members).with_regions(regions);
        self.hosts.push(Host { epoch, node: on.clone(), maintainer, alive: true });
        if let Some(t) = &mut self.trace {
            t.marker(self.now, "maintainer", &format!("maintainer epoch {} starts on {on}", epoch.0));
        }
        self.schedule(0, Ev::MaintainerTick { epoch });
    }

    /// Steps every live maintainer of `epoch` (or the current one) and carries out its effects.
    pub(super) fn step_maintainer(&mut self, index: usize, event: Event) {
        if !self.hosts[index].alive {
            return;
        }
        let now = self.now;
        let effects = self.hosts[index].maintainer.step(now, event);
        let (from, epoch) = (self.hosts[index].node.clone(), self.hosts[index].epoch);
        let current = index + 1 == self.hosts.len();
        for effect in effects {
            match effect {
                Output::Send { to, message } => {
                    if self.debug {
                        eprintln!("{now} send e{} -> {to}: {message:?}", epoch.0);
                    }
                    self.watch(|m, w| m.sending(w, index, &to, &message));
                    let (kind, bytes) = crate::wire::encode_to_node(&message);
                    self.control_in_flight += 1;
                    self.send(from.clone(), to, kind, bytes);
                }
                Output::CheckpointAdvanced { mode, checkpoint_ts } => {
                    if self.debug {
                        eprintln!("checkpoint {now} e{} {mode:?} {checkpoint_ts}", epoch.0);
                    }
                    if current {
                        let persisted = self.persisted.entry(mode).or_insert(0);
                        if checkpoint_ts < *persisted {
                            let v = Violation::new("I9", now, format!(
                                "{mode:?} committed checkpoint went back from {persisted} to {checkpoint_ts} (epoch {})",
                                epoch.0
                            ));
                            self.violate(v);
                        }
                        let persisted = self.persisted.entry(mode).or_insert(0);
                        *persisted = (*persisted).max(checkpoint_ts);
                    }
                }
                Output::OperatorFinished { mode, id, kind, outcome } => {
                    if let Some(t) = &mut self.trace {
                        t.operator_outcome(&from, epoch.0, mode, id, kind, format!("{outcome:?}"));
                    }
                }
                Output::Bootstrapped => {
                    self.trace_instant(&from, "maintainer", format!("epoch {} bootstrapped", epoch.0));
                }
                Output::SchedulerStarted { mode, id, kind, span, reason } => {
                    if current {
                        if let Some(v) = self.ping_pong(mode, kind, &span) {
                            self.violate(v);
                        }
                        self.scheduler_started.push((now, mode, kind, span));
                    }
                    self.trace_instant(&from, "maintainer", format!("{kind:?} of {id} started ({reason})"));
                }
                Output::Refused { request, reason } => {
                    self.trace_instant(&from, "maintainer", format!("refused {request}: {reason}"));
                }
                Output::NodeError { node, error } => {
                    self.trace_instant(&from, "maintainer", format!("error from {node}: {}", error.message));
                }
            }
        }
        self.watch(|m, w| m.maintainer_stepped(w, index));
    }

    /// Hands an event to the current maintainer.
    pub fn to_maintainer(&mut self, event: Event) {
        if let Some(i) = self.hosts.iter().rposition(|h| h.alive) {
            if i + 1 == self.hosts.len() {
                self.step_maintainer(i, event);
            }
        }
    }

    /// Hands a message to the live maintainer on `to`. Returns the epoch of the request it
    /// answers (if any) and what became of it (for the trace).
    pub(super) fn deliver_to_maintainer(
        &mut self,
        from: &NodeId,
        to: &NodeId,
        kind: MessageKind,
        bytes: &[u8],
    ) -> (Option<u64>, String) {
        let Some(index) = self.hosts.iter().rposition(|h| h.alive && h.node == *to) else {
            return (None, "no maintainer there".into());
        };
        let Ok(message) = crate::wire::decode_to_maintainer(kind, bytes) else {
            return (None, "undecodable".into());
        };
        let epoch = message.epoch().map(|e| e.0);
        let Some(event) = Event::received(from.clone(), message) else {
            return (epoch, "not for the maintainer".into());
        };
        self.step_maintainer(index, event);
        (epoch, format!("to the maintainer of epoch {}", self.hosts[index].epoch.0))
    }

    /// The maintainer's node dies; a new maintainer (next epoch) starts on the first live node.
    pub fn crash_maintainer(&mut self) {
        let Some(host) = self.hosts.last().map(|h| h.node.clone()) else { return };
        self.crash_node(host.as_str());
    }

    /// Ownership moves to `to` with the next epoch; the old maintainer is told to stop.
    pub fn move_maintainer(&mut self, to: &str) {
        let to = NodeId::new(to);
        if !self.nodes.get(&to).is_some_and(|n| n.alive) {
            return;
        }
        if let Some(i) = self.hosts.iter().rposition(|h| h.alive) {
            self.step_maintainer(i, Event::Stop);
        }
        self.start_maintainer(to);
    }
}
