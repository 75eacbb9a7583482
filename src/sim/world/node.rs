//! The nodes: each a real `Orchestrator` whose effects the world carries out on simulated
//! dispatchers (creates and closes that take time, failpoints, merges), ticking its heartbeat
//! collector; crashes and restarts.

use super::*;

impl World {
    /// Hands a message to node `to`'s core. Returns the sender's epoch and what the core did
    /// with it (for the trace).
    pub(super) fn deliver_to_node(
        &mut self,
        from: &NodeId,
        to: &NodeId,
        kind: MessageKind,
        bytes: &[u8],
    ) -> (Option<u64>, String) {
        let Ok(mut message) = crate::wire::decode_to_node(kind, bytes) else {
            return (None, "undecodable".into());
        };
        let Some(node) = self.nodes.get(to) else { return (None, "no such node".into()) };
        let orch = &node.orchestrator;
        let epoch = message.epoch();
        // The broken-node variant: schedule and merge requests rewritten as if the node's
        // current owner sent them.
        let mut sender = from.clone();
        if let (true, Some(manager)) = (self.opts.ignore_fence, orch.manager(&CHANGEFEED)) {
            let owner = manager.owner();
            if let ToNode::Schedule(ScheduleRequest { epoch, .. })
            | ToNode::Merge(MergeRequest { epoch, .. }) = &mut message
            {
                *epoch = owner.epoch;
                sender = owner.maintainer.clone().unwrap_or_else(|| from.clone());
            }
        }
        let bootstrap = matches!(message, ToNode::Bootstrap(_));
        let step = orch.handle(&sender, message);
        // The simulated redo storage is ready as soon as a bootstrap built the manager.
        if bootstrap && self.redo && step.outcome == Outcome::Applied {
            if let Some(m) = orch.manager(&CHANGEFEED) {
                m.mark_redo_ready();
            }
        }
        if step.outcome == Outcome::Applied {
            self.watch(|m, w| m.control_applied(w, to, from, kind, epoch));
        }
        let outcome = format!("{:?}", step.outcome);
        self.node_effects(to, step.effects);
        (Some(epoch.0), outcome)
    }

    pub(super) fn node_effects(&mut self, node: &NodeId, effects: Vec<Effect>) {
        for effect in effects {
            self.node_effect(node, effect);
        }
    }

    pub(super) fn node_effect(&mut self, node_id: &NodeId, effect: Effect) {
        let inc = self.nodes[node_id].incarnation;
        match effect {
            Effect::Create(ticket) => {
                let key = (ticket.mode(), ticket.id());
                let start = ticket.spec().start_ts;
                let n = self.nodes.get_mut(node_id).unwrap_or_else(|| unreachable!());
                n.creating.insert(key, start);
                if n.block_create {
                    n.parked.push(Parked::Create(ticket));
                } else {
                    let (lo, hi) = self.opts.create_ms;
                    let d = self.rng.range(lo, hi);
                    self.schedule(d, Ev::CreateDone { node: node_id.clone(), inc, ticket });
                }
            }
            Effect::Close { id, mode } => self.begin_close(node_id, mode, id),
            Effect::PrepareMerged { spec, sources } => {
                let owner_epoch =
                    self.nodes[node_id].orchestrator.manager(&CHANGEFEED).map_or(0, |m| m.owner().epoch.0);
                let n = self.nodes.get_mut(node_id).unwrap_or_else(|| unreachable!());
                for s in &sources {
                    if let Some(d) = n.dispatchers.get_mut(&(spec.mode, *s)) {
                        d.state = ComponentState::WaitingMerge;
                    }
                }
                n.closed.remove(&(spec.mode, spec.id));
                n.dispatchers.insert(
                    (spec.mode, spec.id),
                    SimDispatcher {
                        id: spec.id,
                        mode: spec.mode,
                        span: spec.span.clone(),
                        state: ComponentState::Preparing,
                        checkpoint: spec.start_ts,
                        closing: false,
                        barrier: self
                            .opts
                            .barrier
                            .then(|| SimBarrier::new(false, spec.start_ts, owner_epoch)),
                    },
                );
                let (lo, hi) = self.opts.create_ms;
                let d = self.rng.range(lo, hi);
                self.schedule(d, Ev::MergeReady { node: node_id.clone(), inc, mode: spec.mode, id: spec.id });
            }
            Effect::CloseMergeSources { mode, sources, .. } => {
                for s in sources {
                    self.begin_close(node_id, mode, s);
                }
            }
            Effect::StartMerged { id, mode, start_ts, .. } => {
                let n = self.nodes.get_mut(node_id).unwrap_or_else(|| unreachable!());
                if let Some(d) = n.dispatchers.get_mut(&(mode, id)) {
                    d.state = ComponentState::Initializing;
                    d.checkpoint = start_ts;
                    if let Some(b) = d.barrier.as_mut() {
                        *b = SimBarrier::new(false, start_ts, b.created_epoch);
                    }
                }
                self.writers_dirty = true;
                let (lo, hi) = self.opts.create_ms;
                let d = self.rng.range(lo, hi);
                self.schedule(d, Ev::MergedWorking { node: node_id.clone(), inc, mode, id });
            }
            Effect::ResumeSource { id, mode } => {
                let n = self.nodes.get_mut(node_id).unwrap_or_else(|| unreachable!());
                if let Some(d) = n.dispatchers.get_mut(&(mode, id)) {
                    d.state = ComponentState::Working;
                }
                self.writers_dirty = true;
                self.schedule_flush(node_id);
            }
            // Queued on the heartbeat path by the core itself: only a hint to poll soon.
            Effect::Report(_) => self.schedule_flush(node_id),
            Effect::DeliverBarrier { id, mode, answer } => self.deliver_barrier(node_id, mode, id, &answer),
            // Sink and redo meta updates: the simulated sink has none.
            Effect::SinkCheckpoint { .. }
            | Effect::UpdateRedoMeta { .. }
            | Effect::RedoGlobalTsAdvanced { .. } => {}
            Effect::ReportError(error) => {
                self.trace_instant(node_id, "node", format!("error: {}", error.message));
            }
            Effect::Reply { to, reply } => {
                let (kind, bytes) = crate::wire::encode_to_maintainer(&reply.into());
                self.send(node_id.clone(), to, kind, bytes);
            }
        }
    }

    pub(super) fn schedule_flush(&mut self, node_id: &NodeId) {
        let Some(n) = self.nodes.get_mut(node_id) else { return };
        if !n.flush_scheduled {
            n.flush_scheduled = true;
            let inc = n.incarnation;
            self.schedule(10, Ev::Flush { node: node_id.clone(), inc });
        }
    }

    pub(super) fn finish_create(&mut self, node_id: &NodeId, ticket: CreateTicket) {
        let Some(manager) = self.nodes[node_id].orchestrator.manager(&CHANGEFEED) else { return };
        let (mode, id) = (ticket.mode(), ticket.id());
        let spec = ticket.spec();
        if let Some(n) = self.nodes.get_mut(node_id) {
            n.creating.remove(&(mode, id));
        }
        if manager.commit_create(&ticket).is_err() {
            return; // withdrawn: discarded unstarted
        }
        let start =
            if self.opts.barrier { self.sink_start(mode, &spec.span, spec.start_ts) } else { spec.start_ts };
        let owner_epoch = manager.owner().epoch.0;
        let n = self.nodes.get_mut(node_id).unwrap_or_else(|| unreachable!());
        n.closed.remove(&(mode, id));
        n.dispatchers.insert(
            (mode, id),
            SimDispatcher {
                id,
                mode,
                span: spec.span.clone(),
                state: ComponentState::Working,
                checkpoint: start,
                closing: false,
                barrier: self
                    .opts
                    .barrier
                    .then(|| SimBarrier::new(spec.span.is_table_trigger(), start, owner_epoch)),
            },
        );
        self.writers_dirty = true;
        let step = manager.dispatcher_state_changed(id, mode, ComponentState::Working, start);
        self.node_effects(node_id, step.effects);
        let close_now = self.nodes.get_mut(node_id).is_some_and(|n| n.close_after_create.remove(&(mode, id)));
        if close_now {
            self.begin_close(node_id, mode, id);
        }
    }

    pub(super) fn begin_close(&mut self, node_id: &NodeId, mode: Mode, id: DispatcherId) {
        let inc = self.nodes[node_id].incarnation;
        let n = self.nodes.get_mut(node_id).unwrap_or_else(|| unreachable!());
        match n.dispatchers.get_mut(&(mode, id)) {
            Some(d) => d.closing = true,
            None if n.creating.contains_key(&(mode, id)) => {
                // Still being built (a live-at-once trigger whose build is held back): close it
                // as soon as it exists.
                n.close_after_create.insert((mode, id));
                return;
            }
            None => {}
        }
        if n.block_close {
            n.parked.push(Parked::Close(mode, id));
            return;
        }
        let (lo, hi) = self.opts.close_ms;
        let d = self.rng.range(lo, hi);
        self.schedule(d, Ev::CloseDone { node: node_id.clone(), inc, mode, id });
    }

    pub(super) fn finish_close(&mut self, node_id: &NodeId, mode: Mode, id: DispatcherId) {
        let Some(manager) = self.nodes[node_id].orchestrator.manager(&CHANGEFEED) else { return };
        let n = self.nodes.get_mut(node_id).unwrap_or_else(|| unreachable!());
        let Some(d) = n.dispatchers.remove(&(mode, id)) else { return };
        n.closed.insert((mode, id), d.checkpoint);
        self.writers_dirty = true;
        let step = manager.dispatcher_closed(id, mode, d.checkpoint, None);
        self.node_effects(node_id, step.effects);
    }

    pub(super) fn set_state(
        &mut self,
        node_id: &NodeId,
        mode: Mode,
        id: DispatcherId,
        state: ComponentState,
    ) {
        let Some(manager) = self.nodes[node_id].orchestrator.manager(&CHANGEFEED) else { return };
        let n = self.nodes.get_mut(node_id).unwrap_or_else(|| unreachable!());
        let Some(d) = n.dispatchers.get_mut(&(mode, id)) else { return };
        d.state = state;
        let ckpt = d.checkpoint;
        self.writers_dirty = true;
        let step = manager.dispatcher_state_changed(id, mode, state, ckpt);
        self.node_effects(node_id, step.effects);
    }

    /// Progress (every heartbeat period), then whatever the node's real heartbeat collector has
    /// due: rounds with watermarks and statuses, to the node's current owner.
    pub(super) fn node_tick(&mut self, node_id: &NodeId) {
        let Some(manager) = self.nodes[node_id].orchestrator.manager(&CHANGEFEED) else { return };
        let now = self.now;
        let ts = upstream_ts(now).saturating_sub(LAG);
        let dropped = &self.dropped;
        if self.opts.barrier {
            self.issue_syncpoints();
            let n = self.nodes.get_mut(node_id).unwrap_or_else(|| unreachable!());
            if now.saturating_sub(n.last_progress_ms) >= self.opts.heartbeat_ms {
                n.last_progress_ms = now;
                let keys: Vec<(Mode, DispatcherId)> = n.dispatchers.keys().copied().collect();
                for key in keys {
                    self.stream(node_id, key, ts);
                }
            }
            self.barrier_resends(node_id);
            self.poll_collector(node_id);
            return;
        }
        let n = self.nodes.get_mut(node_id).unwrap_or_else(|| unreachable!());
        if now.saturating_sub(n.last_progress_ms) >= self.opts.heartbeat_ms {
            n.last_progress_ms = now;
            let traffic = self.traffic.load();
            for d in n.dispatchers.values_mut() {
                // A dispatcher of a dropped table is parked at the DROP (its barrier never passes
                // for it): it cannot flush past the DDL.
                let ts = dropped.get(&d.span.table_id).map_or(ts, |drop| ts.min(drop.saturating_sub(1)));
                if d.state == ComponentState::Working && ts > d.checkpoint {
                    d.checkpoint = ts;
                    if let Some(handle) = manager.status_handle_of(d.mode, d.id) {
                        let rate = traffic.rate(&d.span) as f32;
                        let _ = manager.report_progress(&handle, ts, ts, rate);
                    }
                }
            }
        }
        self.poll_collector(node_id);
    }

    pub(super) fn poll_collector(&mut self, node_id: &NodeId) {
        let Some(manager) = self.nodes[node_id].orchestrator.manager(&CHANGEFEED) else { return };
        let now = self.now;
        let n = self.nodes.get_mut(node_id).unwrap_or_else(|| unreachable!());
        let fresh = n.collector.as_ref().is_none_or(|(m, _)| !Arc::ptr_eq(m, &manager));
        if fresh {
            n.collector = Some((manager.clone(), Collector::new(&manager)));
        }
        let Some((_, collector)) = n.collector.as_mut() else { return };
        let poll = collector.poll(&manager, now);
        for out in poll.heartbeats {
            let (kind, bytes) = crate::wire::encode_to_maintainer(&ToMaintainer::Heartbeat(out.request));
            self.send(node_id.clone(), out.to, kind, bytes);
        }
        for out in poll.block_statuses {
            let (kind, bytes) = crate::wire::encode_to_maintainer(&ToMaintainer::BlockStatus(out.request));
            self.send(node_id.clone(), out.to, kind, bytes);
        }
        // The next heartbeat round comes with the node's tick; a block-status batch window
        // (10 ms) ends sooner.
        if let Some(due) = poll.next_due_ms.filter(|due| *due > now && *due <= now + 20) {
            // Block statuses wait out the batch window: poll again when it ends.
            if self.opts.barrier && !self.nodes[node_id].flush_scheduled {
                let inc = self.nodes[node_id].incarnation;
                if let Some(n) = self.nodes.get_mut(node_id) {
                    n.flush_scheduled = true;
                }
                self.schedule(due - now, Ev::Flush { node: node_id.clone(), inc });
            }
        }
    }

    /// Sets or lifts a failpoint on creates (`create`), closes, or (`write`) block-event writes;
    /// lifting releases the held work.
    pub fn set_block(&mut self, node_id: &str, create: bool, on: bool) {
        self.set_failpoint(node_id, create, false, on);
    }

    /// Sets or lifts the failpoint on the downstream writes of block events.
    pub fn set_write_block(&mut self, node_id: &str, on: bool) {
        self.set_failpoint(node_id, false, true, on);
    }

    fn set_failpoint(&mut self, node_id: &str, create: bool, write: bool, on: bool) {
        let node_id = NodeId::new(node_id);
        let work = if write {
            "write"
        } else if create {
            "create"
        } else {
            "close"
        };
        let what = format!("{} {work}", if on { "block" } else { "unblock" });
        self.trace_instant(&node_id, "fault", what);
        let Some(n) = self.nodes.get_mut(&node_id) else { return };
        if write {
            n.block_write = on;
        } else if create {
            n.block_create = on;
        } else {
            n.block_close = on;
        }
        if on {
            return;
        }
        let inc = n.incarnation;
        let held: Vec<Parked> = std::mem::take(&mut n.parked);
        let mut keep = Vec::new();
        for p in held {
            match p {
                Parked::Create(ticket) if create && !write => {
                    let (lo, hi) = self.opts.create_ms;
                    let d = self.rng.range(lo, hi);
                    self.schedule(d, Ev::CreateDone { node: node_id.clone(), inc, ticket });
                }
                Parked::Write(mode, id) if write => {
                    let d = self.rng.range(1, 10);
                    self.schedule(d, Ev::WriteDone { node: node_id.clone(), inc, mode, id });
                }
                Parked::Close(mode, id) if !create && !write => {
                    let (lo, hi) = self.opts.close_ms;
                    let d = self.rng.range(lo, hi);
                    self.schedule(d, Ev::CloseDone { node: node_id.clone(), inc, mode, id });
                }
                other => keep.push(other),
            }
        }
        if let Some(n) = self.nodes.get_mut(&node_id) {
            n.parked = keep;
        }
    }

    /// The node dies: its dispatchers, journal and memory are gone; the others see it leave. If
    /// it hosted the current maintainer, a new one (next epoch) starts on the first live node.
    pub fn crash_node(&mut self, node_id: &str) {
        let node_id = NodeId::new(node_id);
        let Some(n) = self.nodes.get_mut(&node_id) else { return };
        if !n.alive {
            return;
        }
        n.alive = false;
        n.incarnation += 1;
        n.dispatchers.clear();
        n.creating.clear();
        n.parked.clear();
        n.close_after_create.clear();
        n.collector = None;
        // Failpoints live in the process: a restarted node comes back without them.
        n.block_create = false;
        n.block_close = false;
        n.block_write = false;
        n.flush_scheduled = false;
        n.orchestrator = Orchestrator::mutated(node_id.clone(), self.opts.mutation).with_redo(self.redo);
        self.writers_dirty = true;
        for h in &mut self.hosts {
            if h.node == node_id {
                h.alive = false;
            }
        }
        self.trace_instant(&node_id, "fault", "crash".into());
        for i in 0..self.hosts.len() {
            self.step_maintainer(i, Event::NodeLeft(node_id.clone()));
        }
        // The coordinator restarts a maintainer whose node died: next epoch, first live node.
        if self.hosts.last().is_some_and(|h| h.node == node_id) {
            if let Some(next) = self.order.iter().find(|n| self.nodes[*n].alive).cloned() {
                self.start_maintainer(next);
            }
        }
    }

    /// A crashed node comes back empty and rejoins.
    pub fn restart_node(&mut self, node_id: &str) {
        let node_id = NodeId::new(node_id);
        let Some(n) = self.nodes.get_mut(&node_id) else { return };
        if n.alive {
            return;
        }
        n.alive = true;
        // A new process: what was sent to the dead one (its connections were refused) is void
        // too, not delivered to the new one.
        n.incarnation += 1;
        let inc = n.incarnation;
        self.trace_instant(&node_id, "fault", "restart".into());
        let period = self.opts.heartbeat_ms;
        self.schedule(period, Ev::NodeTick { node: node_id.clone(), inc });
        for i in 0..self.hosts.len() {
            self.step_maintainer(i, Event::NodeJoined(node_id.clone()));
        }
        // With every node down there was no maintainer; the coordinator starts one now.
        if self.current().is_none() {
            if let Some(next) = self.order.iter().find(|n| self.nodes[*n].alive).cloned() {
                self.start_maintainer(next);
            }
        }
    }
}
