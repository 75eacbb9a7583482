//! The maintainer's barrier (barrier.md §3, §5-§7): one per mode. Dispatchers that meet a block
//! event (a DDL touching several spans, or a syncpoint) report WAITING and stop; once every
//! affected span has reported, one writer is told to Write; after its DONE the event's table-set
//! changes are applied, in key order, and every affected span is told to Pass; the event is
//! complete when every affected span that runs has passed it.
//!
//! Where it differs from the reference, on purpose:
//! * phases keep their own report sets, and completion requires the confirmed write, so marks
//!   recovered from a bootstrap can never complete an event before its write (H-A);
//! * table-set changes wait only for earlier events' changes, not for membership of a heap that
//!   a rebuilt event never joins (H-B); they are applied at the trigger's DONE or once the
//!   trigger is past the event, also for an event promoted by observation (its write is proven,
//!   and the trigger has applied every earlier change by then, so a late DROP DATABASE never
//!   drops a table created after it); they are idempotent (a dropped table stays dropped, I8);
//! * who must pass an event is read from the span controller at every check, never cached (H-E);
//!   forwarding looks at the trigger for DB events as well (H-D); a writer that vanished is
//!   replaced, never a panic (H-I);
//! * completed events are remembered until the committed checkpoint passes them, so a span
//!   re-created below one meets it again and is passed at once, instead of re-creating a phantom
//!   event that waits for everyone (H-H).

pub mod coverage;
mod event;
mod reports;

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::Ts;

pub use coverage::Coverage;
pub use event::{key_of, Blocked, Key, Phase, Scope};

/// One mode's barrier: the events in flight, by key (so in key order, B5, B8).
#[derive(Clone, Debug, Default)]
pub struct Barrier {
    pub(super) events: BTreeMap<Key, Blocked>,
    /// Events completed by this maintainer, until the committed checkpoint passes them.
    pub(super) completed: BTreeSet<Key>,
    /// Events whose table-set changes were applied, same bound (a late NONE is not applied twice).
    pub(super) applied: BTreeSet<Key>,
    /// The table trigger's last reported checkpoint (evidence for forwarding, B12).
    pub(super) trigger_checkpoint: Ts,
}

impl Barrier {
    /// The events in flight, in key order.
    pub fn events(&self) -> impl Iterator<Item = &Blocked> + '_ {
        self.events.values()
    }

    /// The event with `key`, if in flight.
    pub fn event(&self, key: Key) -> Option<&Blocked> {
        self.events.get(&key)
    }

    /// Whether no event is in flight.
    pub fn is_idle(&self) -> bool {
        self.events.is_empty()
    }

    /// Whether this maintainer completed the event with `key` (and still remembers it).
    pub fn completed(&self, key: Key) -> bool {
        self.completed.contains(&key)
    }

    /// The cap on the changefeed checkpoint: the ts of the earliest event in flight that adds
    /// tables (B10: the new tables start there).
    pub fn checkpoint_cap(&self) -> Option<Ts> {
        self.events.values().filter(|e| e.adds_tables()).map(|e| e.key.0).min()
    }

    /// Whether `id` is the writer of an event whose write is not confirmed yet (it is pinned: no
    /// move, split or merge until its DONE, B1).
    pub fn writing(&self, id: crate::ids::DispatcherId) -> bool {
        self.events.values().any(|e| e.phase == Phase::Writing && e.writer == Some(id))
    }

    /// Whether an event earlier than `key` still has table-set changes to apply (B8, B9).
    pub(super) fn earlier_unapplied(&self, key: Key) -> bool {
        self.events.range(..key).any(|(_, e)| !e.applied)
    }

    pub(crate) fn saw_trigger_checkpoint(&mut self, checkpoint: Ts) {
        self.trigger_checkpoint = self.trigger_checkpoint.max(checkpoint);
    }
}
