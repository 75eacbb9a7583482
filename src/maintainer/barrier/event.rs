//! One block event in flight at the maintainer: what it blocks, where it is (collecting reports,
//! writing, passing), who reported, and the checks that move it on (barrier.md §3.2-§3.7).
//!
//! Every check reads the span controller as it is *now*: a reporter that vanished or stopped
//! replicating no longer counts (the reference's double check, PR #1643), a span that appeared
//! is waited for, and a span that went away is excused. Nothing is cached that could go stale
//! (the reference's H-E).

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::ids::{DispatcherId, NodeId, Ts};
use crate::messages::{BlockDetail, BlockState, InfluenceKind};

use super::coverage::Coverage;
use crate::maintainer::spans::{SpanController, SpanRecord, SpanState, TableKey};

/// An event's full key: (commit ts, syncpoint). At one ts the DDL (false) orders first (B5).
pub type Key = (Ts, bool);

/// The key of a block state.
pub fn key_of(state: &BlockState) -> Key {
    (state.block_ts, state.is_sync_point)
}

/// What an event blocks.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Scope {
    /// The listed tables (table 0, the table trigger, is never in the set: see `trigger`).
    Normal(BTreeSet<i64>),
    /// Every table of one schema.
    Db(i64),
    /// Every table.
    All,
}

impl Scope {
    /// The scope a report names; a syncpoint and an unset scope are `All` (the wire default,
    /// barrier.md H-L).
    pub fn of(state: &BlockState) -> Self {
        match (&state.detail.block_tables, state.is_sync_point) {
            (_, true) | (None, _) => Scope::All,
            (Some(t), false) => match t.kind {
                InfluenceKind::All => Scope::All,
                InfluenceKind::Db => Scope::Db(t.schema_id),
                InfluenceKind::Normal => {
                    Scope::Normal(t.table_ids.iter().copied().filter(|t| *t != 0).collect())
                }
            },
        }
    }

    /// Whether the scope is a schema or everything (its writer is always the trigger).
    pub fn wide(&self) -> bool {
        !matches!(self, Scope::Normal(_))
    }

    /// Whether `record` is one of the spans the event blocks.
    pub fn affects(&self, record: &SpanRecord) -> bool {
        match self {
            Scope::Normal(tables) => tables.contains(&record.span.table_id),
            Scope::Db(schema) => record.schema_id == *schema,
            Scope::All => true,
        }
    }

    /// The records the event blocks, now.
    pub fn records<'a>(&'a self, sc: &'a SpanController, keyspace: u32) -> Vec<&'a SpanRecord> {
        match self {
            Scope::Normal(tables) => tables.iter().flat_map(|t| sc.table((keyspace, *t))).collect(),
            _ => sc.records().filter(|r| self.affects(r)).collect(),
        }
    }
}

/// Where an event is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    /// Collecting WAITING reports (B3).
    Collecting,
    /// The writer was told to write; waiting for its DONE.
    Writing,
    /// The write is confirmed (or the event was seen passed, B12): every affected span is told to
    /// pass it, and DONEs are collected (B14).
    Passing,
}

/// One block event in flight.
#[derive(Clone, Debug)]
pub struct Blocked {
    /// Its key.
    pub key: Key,
    /// What it blocks.
    pub scope: Scope,
    /// The first report's payload (tables dropped, added, moved).
    pub detail: Arc<BlockDetail>,
    /// Whether the table trigger takes part (and writes, B7).
    pub trigger: bool,
    /// Where it is.
    pub phase: Phase,
    /// The writer, once chosen.
    pub writer: Option<DispatcherId>,
    /// Spans that reported WAITING (counted before the writer is chosen).
    pub waiting: BTreeSet<DispatcherId>,
    /// Spans that reported DONE after the write was confirmed.
    pub done: BTreeSet<DispatcherId>,
    /// Its table-set changes are applied (or it has none, or it was promoted by observation).
    pub applied: bool,
    /// When the next Write or Pass goes out.
    pub next_send_ms: u64,
    /// Reporters needed before a full coverage check is worth its scan (a lower bound learnt at
    /// the last check that failed), so a DB-wide event over many spans is not rescanned per report.
    pub hint: usize,
}

impl Blocked {
    /// A new event from its first report.
    pub fn new(state: &BlockState) -> Self {
        let scope = Scope::of(state);
        let listed_trigger = state
            .detail
            .block_tables
            .as_ref()
            .is_some_and(|t| t.kind == InfluenceKind::Normal && t.table_ids.contains(&0));
        let mut this = Self {
            key: key_of(state),
            trigger: scope.wide() || listed_trigger,
            scope,
            detail: state.detail.clone(),
            phase: Phase::Collecting,
            writer: None,
            waiting: BTreeSet::new(),
            done: BTreeSet::new(),
            applied: false,
            next_send_ms: 0,
            hint: 0,
        };
        this.applied = !this.schedules();
        // Every table-set change is written by the trigger (B7), whatever the report listed.
        this.trigger |= this.schedules();
        this
    }

    /// Whether the event changes the table set (drops, adds or moves tables between schemas).
    pub fn schedules(&self) -> bool {
        schedules(&self.detail)
    }

    /// Whether the event adds tables (the changefeed checkpoint stays at or below its ts, B10).
    pub fn adds_tables(&self) -> bool {
        !self.detail.need_added_tables.is_empty()
    }

    /// Whether every affected span has reported WAITING (B3): the trigger when it takes part,
    /// and each affected table's whole key range by replicating reporters that still exist.
    /// Reporters that vanished or stopped replicating are forgotten (the double check). Unless
    /// `force`d, the scan is skipped while fewer spans reported than the last scan showed were
    /// needed (replicating spans of a table never overlap, so each unreported one must report).
    pub fn all_waiting(
        &mut self,
        sc: &SpanController,
        keyspace: u32,
        trigger: DispatcherId,
        force: bool,
    ) -> bool {
        if self.trigger && !self.waiting.contains(&trigger) {
            return false;
        }
        if !force && self.waiting.len() < self.hint {
            return false;
        }
        let records = self.scope.records(sc, keyspace);
        let scope = &self.scope;
        self.waiting.retain(|id| {
            *id == trigger
                || sc.get(*id).is_some_and(|r| r.state == SpanState::Replicating && scope.affects(r))
        });
        let listed = self.listed(keyspace);
        let mut coverage = Coverage::new(records.iter().map(|r| r.table()).chain(listed.iter().copied()));
        for id in &self.waiting {
            if let Some(r) = sc.get(*id) {
                coverage.report(&r.span);
            }
        }
        // A listed table without any span (dropped, or never created here) has nothing to wait for.
        for table in listed {
            if !sc.has_table(table) {
                coverage.mark_done(table.0, table.1);
            }
        }
        let covered = coverage.covered();
        if !covered {
            let unreported = records
                .iter()
                .filter(|r| r.state == SpanState::Replicating && !self.waiting.contains(&r.id))
                .count();
            self.hint = self.waiting.len() + unreported.max(1);
        }
        covered
    }

    /// The listed tables of a Normal event.
    fn listed(&self, keyspace: u32) -> Vec<TableKey> {
        match &self.scope {
            Scope::Normal(tables) => tables.iter().map(|t| (keyspace, *t)).collect(),
            _ => Vec::new(),
        }
    }

    /// Whether every affected span that runs has passed the event (B14): reported DONE, or
    /// reported a checkpoint past it. Spans not replicating are excused: one that comes back
    /// below the event meets it again and is passed at once (the barrier remembers completed
    /// events).
    pub fn all_done(
        &self,
        sc: &SpanController,
        keyspace: u32,
        trigger: DispatcherId,
        trigger_cp: Ts,
    ) -> bool {
        if self.phase != Phase::Passing {
            return false;
        }
        if self.trigger && !self.done.contains(&trigger) && trigger_cp <= self.key.0 {
            return false;
        }
        self.pending_pass(sc, keyspace).next().is_none()
    }

    /// Affected replicating spans that have not passed the event yet.
    pub fn pending_pass<'a>(
        &'a self,
        sc: &'a SpanController,
        keyspace: u32,
    ) -> impl Iterator<Item = &'a SpanRecord> + 'a {
        self.scope.records(sc, keyspace).into_iter().filter(|r| {
            r.state == SpanState::Replicating && !self.done.contains(&r.id) && r.checkpoint <= self.key.0
        })
    }

    /// Strict evidence that the event was already passed (B12): an affected span, the trigger
    /// included when it takes part (the reference's DB forwarding ignores it, H-D), has a
    /// checkpoint past the event's ts, or is blocked on a later key. A promoted event's
    /// table-set changes still wait for the trigger (see the barrier's module docs). A checkpoint equal to the ts is not
    /// enough: a span re-created at that ts may still owe a syncpoint there.
    pub fn seen_passed(&self, sc: &SpanController, keyspace: u32, trigger_cp: Ts) -> bool {
        if self.trigger && trigger_cp > self.key.0 {
            return true;
        }
        self.scope.records(sc, keyspace).iter().any(|r| {
            r.checkpoint > self.key.0 || r.block.is_some_and(|b| (b.block_ts, b.is_sync_point) > self.key)
        })
    }

    /// A writer for a Normal event whose writer vanished: a replicating reporter, else any
    /// replicating affected span (it will meet the event and wait for the Write).
    pub fn reselect(&self, sc: &SpanController, keyspace: u32) -> Option<DispatcherId> {
        let valid = |id: &DispatcherId| sc.get(*id).is_some_and(|r| r.state == SpanState::Replicating);
        self.waiting.iter().copied().find(valid).or_else(|| {
            self.scope.records(sc, keyspace).iter().find(|r| r.state == SpanState::Replicating).map(|r| r.id)
        })
    }

    /// The node a dispatcher runs on: the trigger on the maintainer's own node, a span on its
    /// record's node while it replicates.
    pub fn node_of(
        sc: &SpanController,
        id: DispatcherId,
        trigger: DispatcherId,
        own: &NodeId,
    ) -> Option<NodeId> {
        if id == trigger {
            return Some(own.clone());
        }
        sc.get(id).filter(|r| r.state == SpanState::Replicating).and_then(|r| r.node.clone())
    }
}

/// Whether a report's payload changes the table set.
pub fn schedules(detail: &BlockDetail) -> bool {
    detail.need_dropped_tables.is_some()
        || !detail.need_added_tables.is_empty()
        || !detail.updated_schemas.is_empty()
}
