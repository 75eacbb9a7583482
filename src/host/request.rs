//! Users' span requests (move, split, merge) for a maintainer hosted here. A request names spans
//! by index, as the user sees the table; [`NodeHost::resolve`] turns it into a
//! [`SpanOperation`] on key ranges, which the shell can store and step in again after a
//! maintainer failover: [`NodeHost::operation_state`] tells whether it is done, in flight, or
//! waiting to be admitted (again).

use super::{HostOutput, MaintainerOutput, ManagerOutput, NodeHost, SpanRequest};
use crate::ids::{ChangefeedId, DispatcherId, Mode, NodeId};
use crate::maintainer::{Event as MaintainerEvent, Lifecycle, Maintainer, ModeView, SpanRecord, SpanState};
use crate::span::TableSpan;

/// A span request on key ranges.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SpanOperation {
    /// The mode.
    pub mode: Mode,
    /// What to do.
    pub kind: OperationKind,
}

/// What a [`SpanOperation`] does.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum OperationKind {
    /// Move the span to a node.
    Move {
        /// The span.
        span: TableSpan,
        /// The node.
        to: NodeId,
    },
    /// Split the span into equal parts.
    Split {
        /// The span.
        span: TableSpan,
        /// Parts.
        into: usize,
    },
    /// Merge adjacent spans.
    Merge {
        /// The spans, in key order.
        spans: Vec<TableSpan>,
    },
}

impl OperationKind {
    /// The spans it acts on.
    pub fn sources(&self) -> Vec<&TableSpan> {
        match self {
            OperationKind::Move { span, .. } | OperationKind::Split { span, .. } => vec![span],
            OperationKind::Merge { spans } => spans.iter().collect(),
        }
    }
}

/// Where a stored operation stands in the maintainer's current view.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OperationState {
    /// Carried out, or moot: a split source is tiled by spans inside it, merge sources are one
    /// span, a moved span runs on its target (or was split since, or its target left the
    /// cluster), or the table is gone.
    Done,
    /// An operator works on a source span, or a source does not exist as such for another
    /// reason right now (its range unplaced after a remove, or placed again as part of a larger
    /// span after a failover), or a move's target has not answered this maintainer's bootstrap
    /// yet.
    InFlight,
    /// Every source span exists and is idle: admit it (again).
    Waiting,
}

impl NodeHost {
    fn running(&self, name: &str) -> Result<(ChangefeedId, &Maintainer), String> {
        let cf = self
            .manager
            .statuses()
            .into_iter()
            .map(|s| s.changefeed)
            .find(|c| c.name == name)
            .ok_or_else(|| format!("no maintainer of {name} runs on {}", self.id))?;
        let m =
            self.manager.maintainer(&cf).ok_or_else(|| format!("the maintainer of {name} is not running"))?;
        if m.lifecycle() != Lifecycle::Running {
            return Err(format!("the maintainer of {name} is still bootstrapping"));
        }
        Ok((cf, m))
    }

    /// Whether a maintainer of `name` (bootstrapping or running) is hosted here.
    pub fn runs_maintainer_of(&self, name: &str) -> bool {
        self.manager
            .statuses()
            .iter()
            .any(|s| s.changefeed.name == name && self.manager.maintainer(&s.changefeed).is_some())
    }

    /// Resolves a request's span indexes in the running maintainer's current view of `mode`.
    pub fn resolve(&self, name: &str, mode: Mode, request: &SpanRequest) -> Result<SpanOperation, String> {
        let (_, m) = self.running(name)?;
        let view = m.view(mode).ok_or_else(|| format!("{name} has no {mode:?} mode"))?;
        let pick = |table: i64, index: usize| -> Result<TableSpan, String> {
            let mut spans: Vec<&SpanRecord> = view
                .spans
                .records()
                .filter(|r| r.span.table_id == table && !r.span.is_table_trigger())
                .collect();
            if spans.is_empty() {
                return Err(format!("{name} has no table {table}"));
            }
            spans.sort_by(|a, b| a.span.start_key.cmp(&b.span.start_key));
            let count = spans.len();
            spans
                .get(index)
                .map(|r| r.span.clone())
                .ok_or_else(|| format!("table {table} has {count} spans, no span {index}"))
        };
        let kind = match request {
            SpanRequest::Move { table, index, to } => {
                OperationKind::Move { span: pick(*table, *index)?, to: to.clone() }
            }
            SpanRequest::Split { table, index, into } => {
                OperationKind::Split { span: pick(*table, *index)?, into: *into }
            }
            SpanRequest::Merge { table, indexes } => {
                let spans = indexes.iter().map(|i| pick(*table, *i)).collect::<Result<Vec<_>, _>>()?;
                OperationKind::Merge { spans }
            }
        };
        Ok(SpanOperation { mode, kind })
    }

    /// Where `op` stands for the maintainer of `name` running here; `None` when none runs here.
    pub fn operation_state(&self, name: &str, op: &SpanOperation) -> Option<OperationState> {
        let (_, m) = self.running(name).ok()?;
        let view = m.view(op.mode)?;
        if let OperationKind::Move { to, .. } = &op.kind {
            match m.nodes().find(|(n, _)| *n == to) {
                None => return Some(OperationState::Done), // its target left: moot
                Some((_, false)) => return Some(OperationState::InFlight), // not bootstrapped yet
                Some(_) => {}
            }
        }
        let mut sources = Vec::new();
        for span in op.kind.sources() {
            match record_of(&view, span) {
                Some(r) => sources.push(r),
                None => {
                    let table_gone = !view.spans.records().any(|r| r.span.table_id == span.table_id);
                    let done = table_gone || changed_as_asked(&view, &op.kind, span);
                    return Some(if done { OperationState::Done } else { OperationState::InFlight });
                }
            }
        }
        let busy = |r: &SpanRecord| r.state != SpanState::Replicating || view.operators.get(r.id).is_some();
        if sources.iter().any(|r| busy(r)) {
            return Some(OperationState::InFlight);
        }
        if let OperationKind::Move { to, .. } = &op.kind {
            if sources.iter().all(|r| r.node.as_ref() == Some(to)) {
                return Some(OperationState::Done);
            }
        }
        Some(OperationState::Waiting)
    }

    /// Steps `op` into the maintainer of `name` running here; a refusal in that same step is
    /// the answer.
    pub(super) fn operate(
        &mut self,
        now: u64,
        name: &str,
        op: SpanOperation,
        out: &mut Vec<HostOutput>,
    ) -> Result<(), String> {
        let (cf, m) = self.running(name)?;
        let mode = op.mode;
        let view = m.view(mode).ok_or_else(|| format!("{name} has no {mode:?} mode"))?;
        let id_of = |span: &TableSpan| -> Result<DispatcherId, String> {
            record_of(&view, span).map(|r| r.id).ok_or_else(|| format!("{name} has no span {span:?} now"))
        };
        let event = match &op.kind {
            OperationKind::Move { span, to } => {
                MaintainerEvent::MoveSpan { mode, id: id_of(span)?, to: to.clone() }
            }
            OperationKind::Split { span, into } => {
                MaintainerEvent::SplitSpan { mode, id: id_of(span)?, into: *into }
            }
            OperationKind::Merge { spans } => {
                let ids = spans.iter().map(id_of).collect::<Result<Vec<_>, _>>()?;
                MaintainerEvent::MergeSpans { mode, ids }
            }
        };
        let outputs = self.manager.operate(now, &cf, event)?;
        let refusal = outputs.iter().find_map(|o| match o {
            ManagerOutput::Notice { output: MaintainerOutput::Refused { reason, .. }, .. } => {
                Some(reason.clone())
            }
            _ => None,
        });
        self.manager_outputs(outputs, out);
        refusal.map_or(Ok(()), Err)
    }
}

/// A source `span` no longer exists as such: whether that is the operation's doing (or makes it
/// moot) rather than a passing state. A split (or a move, made moot) is done once spans strictly
/// inside the source tile it; a merge once one span holds all its sources. A source covered by a
/// larger span that is not the merge (a failover filled its hole together with a neighbour's, to
/// be cut again as configured) is a passing state: wait.
fn changed_as_asked(view: &ModeView<'_>, kind: &OperationKind, span: &TableSpan) -> bool {
    let overlapping: Vec<&SpanRecord> = view.spans.records().filter(|r| r.span.overlaps(span)).collect();
    let cut_inside = tiles(&overlapping, span) && overlapping.iter().all(|r| contains(span, &r.span));
    match kind {
        // Cut where it was asked: every cut point of the even split starts a span. (A failover
        // fills each run of unplaced ranges with one span, so a part the old maintainer had not
        // placed yet may now run together with an unplaced neighbour: the cut stands.)
        OperationKind::Split { into, .. } => {
            let cuts = span.split_even(*into).map(|parts| parts.into_iter().skip(1).map(|p| p.start_key));
            let at_cuts = cuts
                .is_some_and(|mut cuts| cuts.all(|cut| overlapping.iter().any(|r| r.span.start_key == cut)));
            cut_inside || at_cuts
        }
        OperationKind::Move { .. } => cut_inside,
        OperationKind::Merge { spans } => {
            let (Some(first), Some(last)) = (spans.first(), spans.last()) else { return true };
            let union = first.joined_with(last);
            overlapping.iter().any(|r| r.span == union)
        }
    }
}

/// Whether `outer` holds every key of `inner` (an empty end key is unbounded).
fn contains(outer: &TableSpan, inner: &TableSpan) -> bool {
    let end_ok = outer.end_key.as_bytes().is_empty()
        || (!inner.end_key.as_bytes().is_empty() && inner.end_key <= outer.end_key);
    outer.start_key <= inner.start_key && end_ok
}

/// Whether `records` (all overlapping `span`) cover every key of it.
fn tiles(records: &[&SpanRecord], span: &TableSpan) -> bool {
    let mut sorted: Vec<&TableSpan> = records.iter().map(|r| &r.span).collect();
    sorted.sort_by(|a, b| a.start_key.cmp(&b.start_key));
    let mut reached = span.start_key.clone();
    for s in sorted {
        if s.start_key > reached {
            return false; // a gap
        }
        if s.end_key.as_bytes().is_empty() {
            return true; // unbounded
        }
        if s.end_key > reached {
            reached = s.end_key.clone();
        }
    }
    !span.end_key.as_bytes().is_empty() && reached >= span.end_key
}

/// The record whose key range is exactly `span`.
fn record_of<'a>(view: &ModeView<'a>, span: &TableSpan) -> Option<&'a SpanRecord> {
    view.spans.records().find(|r| &r.span == span)
}
