//! The schedulers: absent spans to the least-loaded ready node, and balance moves.

use std::collections::BTreeMap;

use crate::ids::{DispatcherId, Mode, NodeId};
use crate::messages::OperatorType;

use super::core::Maintainer;
use super::event::Output;
use super::operator::Operator;
use super::operator::OperatorKind;
use super::spans::{SpanState, TableKey};
use crate::span::TableSpan;

impl Maintainer {
    /// Basic scheduler: absent spans to the ready node with the fewest spans of the mode, while
    /// fewer than `max_in_flight` operators are in flight.
    pub(super) fn schedule_absent(&mut self, now_ms: u64, mode: Mode) {
        let nodes = self.ready_nodes();
        if nodes.is_empty() {
            return;
        }
        let budget = self.cfg.max_in_flight.saturating_sub(self.modes[mode].oc.len());
        if budget == 0 {
            return;
        }
        let mut load: BTreeMap<NodeId, usize> =
            nodes.iter().map(|n| (n.clone(), self.modes[mode].sc.count_on(n))).collect();
        let absent: Vec<DispatcherId> = self.modes[mode].sc.absent().take(budget).collect();
        // Pieces of split tables placed this round, per (table, node), for the spread.
        let mut placed: BTreeMap<(TableKey, NodeId), usize> = BTreeMap::new();
        for id in absent {
            let Some(record) = self.modes[mode].sc.get(id) else { continue };
            let spread = self.spread_target(mode, record, &load, &placed);
            let dest = match spread {
                Some(dest) => dest,
                None => {
                    let Some((dest, _)) = load.iter().min_by_key(|(n, c)| (**c, (*n).clone())) else {
                        return;
                    };
                    dest.clone()
                }
            };
            let table = record.table();
            let op = Operator::add(record, dest.clone(), OperatorType::Add);
            if self.admit(now_ms, mode, op).is_ok() {
                *load.entry(dest.clone()).or_default() += 1;
                *placed.entry((table, dest)).or_default() += 1;
            }
        }
    }

    /// Balance scheduler: when nothing is in flight and nothing is absent, move spans from the
    /// most to the least loaded ready node until counts differ by at most one (bounded per round).
    pub(super) fn balance(&mut self, now_ms: u64, mode: Mode) {
        let state = &self.modes[mode];
        if !state.oc.is_empty() || state.sc.absent_len() > 0 {
            return;
        }
        let nodes = self.ready_nodes();
        if nodes.len() < 2 {
            return;
        }
        let mut load: BTreeMap<NodeId, usize> =
            nodes.iter().map(|n| (n.clone(), state.sc.count_on(n))).collect();
        for _ in 0..self.cfg.balance_moves_max {
            let (Some((hi, hc)), Some((lo, lc))) = (
                load.iter()
                    .max_by_key(|(n, c)| (**c, std::cmp::Reverse((*n).clone())))
                    .map(|(n, c)| (n.clone(), *c)),
                load.iter().min_by_key(|(n, c)| (**c, (*n).clone())).map(|(n, c)| (n.clone(), *c)),
            ) else {
                return;
            };
            if hc <= lc + 1 {
                return;
            }
            let sc = &self.modes[mode].sc;
            // With load-driven scheduling on, parts of split tables are placed by traffic: the
            // count balance moves whole tables only (as the reference's).
            let whole_only = self.cfg.load.across_nodes;
            let candidate = sc
                .on_node(&hi)
                .filter_map(|id| sc.get(id))
                .find(|r| {
                    r.state == SpanState::Replicating
                        && self.modes[mode].oc.get(r.id).is_none()
                        && (!whole_only
                            || r.span == TableSpan::whole_table(r.span.keyspace_id, r.span.table_id))
                })
                .and_then(|r| Operator::moving(r, lo.clone()));
            let Some(op) = candidate else { return };
            let (id, span) = (op.id, op.span.clone());
            if self.admit(now_ms, mode, op).is_err() {
                return;
            }
            let kind = OperatorKind::Move;
            self.effects.push(Output::SchedulerStarted { mode, id, kind, span, reason: "span count" });
            *load.entry(hi).or_default() -= 1;
            *load.entry(lo).or_default() += 1;
        }
    }
}
