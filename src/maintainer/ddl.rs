//! Table-set changes (create, drop) and the stopping maintainer (its trigger removes and the
//! inert step).

use std::collections::BTreeSet;

use crate::ids::{DispatcherId, Mode, Ts};
use crate::messages::{ComponentState, OperatorType, ToNode};
use crate::span::TableSpan;

use super::core::Maintainer;
use super::event::{Event, Lifecycle, Output};
use super::operator::{remove_request, AfterRemove, Operator};
use super::schema::TableInfo;
use super::spans::{SpanRecord, TableKey};

impl Maintainer {
    pub(super) fn create_table(&mut self, table: TableInfo, spans: usize, commit_ts: Ts) {
        let key = (table.keyspace_id, table.table_id);
        if self.dropped.contains(&key) {
            return self
                .refuse("create table", format!("table {} was dropped; ids are not reused", table.table_id));
        }
        if self.live.contains_key(&key) {
            return;
        }
        for mode in self.mode_list() {
            self.create_table_in(mode, table, spans, commit_ts);
        }
    }

    /// Creates `table` in one mode (a mode's barrier applies its DDLs to its own spans): its
    /// records start at `commit_ts`. A dropped table is never created again (I8); of a table the
    /// mode already has records of, only the holes are filled.
    pub(super) fn create_table_in(&mut self, mode: Mode, table: TableInfo, spans: usize, commit_ts: Ts) {
        let key = (table.keyspace_id, table.table_id);
        if self.modes[mode].dropping.contains_key(&key) {
            // Another mode's barrier already passed a later DDL that drops it: created here all
            // the same (this mode's events before that drop still need its spans), until this
            // mode's barrier drops it too.
            return self.place_table(mode, key, table.schema_id, spans, commit_ts);
        }
        if self.dropped.contains(&key) {
            return;
        }
        self.live.entry(key).or_insert((table, commit_ts));
        self.place_table(mode, key, table.schema_id, spans, commit_ts);
    }

    /// Absent records for a table the mode has none of, in `spans` equal parts; of a table it
    /// knows already (its spans came with a bootstrap), only what no span covers.
    fn place_table(&mut self, mode: Mode, key: TableKey, schema_id: i64, spans: usize, commit_ts: Ts) {
        if self.modes[mode].sc.has_table(key) {
            return self.repair(mode, key);
        }
        let whole = TableSpan::whole_table(key.0, key.1);
        let parts =
            if spans > 1 { whole.split_even(spans).unwrap_or_else(|| vec![whole]) } else { vec![whole] };
        for span in parts {
            self.insert_absent(mode, span, schema_id, commit_ts);
        }
    }

    /// DROP TABLE in every mode.
    pub(super) fn drop_table(&mut self, now_ms: u64, table: TableInfo) {
        for mode in self.mode_list() {
            self.drop_table_in(now_ms, mode, (table.keyspace_id, table.table_id));
        }
    }

    /// DROP TABLE in one mode: remove targets are captured first, operators cancelled second,
    /// records deleted last (I8: a dropped table stays dropped), then a Remove goes to every
    /// captured node.
    pub(super) fn drop_table_in(&mut self, now_ms: u64, mode: Mode, key: TableKey) {
        if let Some(was) = self.live.remove(&key) {
            // The first mode to drop it: the others still place it until their own barrier does.
            for other in self.mode_list().filter(|m| *m != mode) {
                self.modes[other].dropping.insert(key, was);
            }
        }
        self.modes[mode].dropping.remove(&key);
        self.dropped.insert(key);
        let records: Vec<SpanRecord> = self.modes[mode].sc.table(key).cloned().collect();
        // 1. Capture each bound record's node before any cancel hook can move it.
        let removes: Vec<Operator> = records
            .iter()
            .filter_map(|r| {
                let node = r.node.clone()?;
                Some(Operator::remove(r, node, OperatorType::Remove, AfterRemove::Nothing))
            })
            .collect();
        // 2. Cancel every operator on the table's ids (including Removes already running).
        let ids: BTreeSet<DispatcherId> = records.iter().map(|r| r.id).collect();
        for id in &ids {
            let changes = self.modes[mode].oc.cancel(*id);
            self.apply(mode, changes);
        }
        // 3. Delete the records.
        for r in &records {
            let _ = self.modes[mode].sc.delete(r.guard());
        }
        // 4. Remove the dispatchers from the captured nodes.
        for op in removes {
            let _ = self.admit(now_ms, mode, op);
        }
    }

    pub(super) fn stop(&mut self, now_ms: u64) {
        // The only thing an inert maintainer still does: remove its own table triggers, so the
        // next maintainer's bootstrap is not refused for a trigger mismatch on this node. The
        // removes are resent until a heartbeat shows the triggers stopped (a lost remove would
        // otherwise block the next maintainer forever).
        for state in &mut self.modes {
            state.oc.quiesce();
        }
        self.lifecycle = Lifecycle::Removing;
        self.triggers_left = self.modes.iter().map(|s| s.trigger).collect();
        self.next_trigger_remove_ms = now_ms;
        self.send_trigger_removes(now_ms);
    }

    pub(super) fn send_trigger_removes(&mut self, now_ms: u64) {
        if self.triggers_left.is_empty() || now_ms < self.next_trigger_remove_ms {
            return;
        }
        self.next_trigger_remove_ms = now_ms.saturating_add(self.cfg.resend_ms);
        for state in &self.modes {
            if !self.triggers_left.contains(&state.trigger) {
                continue;
            }
            let request = remove_request(
                &self.cfg.changefeed,
                state.mode,
                self.cfg.epoch,
                state.trigger,
                Some(TableSpan::table_trigger(self.cfg.keyspace_id)),
                OperatorType::Remove,
            );
            self.effects.push(Output::Send { to: self.cfg.node.clone(), message: ToNode::Schedule(request) });
        }
    }

    pub(super) fn step_inert(&mut self, now_ms: u64, event: Event) {
        match event {
            Event::Tick => self.send_trigger_removes(now_ms),
            Event::Heartbeat { from, heartbeat } if from == self.cfg.node => {
                let mine: Vec<DispatcherId> = self.modes.iter().map(|s| s.trigger).collect();
                for s in heartbeat.statuses.iter().filter(|s| mine.contains(&s.id)) {
                    if matches!(s.state, ComponentState::Stopped | ComponentState::Removed) {
                        self.triggers_left.retain(|t| *t != s.id);
                    } else if !self.triggers_left.contains(&s.id) {
                        // Back again (a delayed duplicate of our own bootstrap re-created it):
                        // remove it again.
                        self.triggers_left.push(s.id);
                        self.next_trigger_remove_ms = now_ms;
                    }
                }
            }
            _ => {}
        }
    }
}
