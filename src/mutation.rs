//! Deliberate bugs, for showing that the checkers find them.
//!
//! Each variant re-opens one fault that was found and fixed, at the place where the fix lives.
//! The simulator's own tests and the mutation figures of BENCHMARKS.md run the random explorer
//! against each one (`dispatcher-core sim --random --mutation NAME`): an explorer that cannot
//! find a known bug again would not find the next one either. Nothing sets one in production; an
//! embedder never needs this module.

use std::fmt;
use std::str::FromStr;

crate::names::named_enum! {
    "mutation";
    /// One re-opened fault. The maintainer reads those marked *maintainer*, the node core the
    /// rest.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
    pub enum Mutation {
        /// *Maintainer.* Bootstrap restores a journaled move as "place it again" without removing
        /// the origin (the checker's first self-test: caught as I2).
        RestoreMoveWithoutRemove = "restore-move-without-remove",
        /// *Maintainer.* A merge rebuilt from a node's merge journal starts as "not yet taken up",
        /// so it is given up after the send bound while the node still drains it.
        RestoredMergeUnaccepted = "restored-merge-unaccepted",
        /// *Maintainer.* A merge not seen taken up is given up at its send bound at once, sources
        /// handed back, instead of first removing the merged dispatcher and waiting for it to go.
        AbandonUnacceptedMerge = "abandon-unaccepted-merge",
        /// *Maintainer.* Sources of a merge that ends without its merged dispatcher are bound back
        /// to the node by their last reported state instead of being removed and placed again, so a
        /// source the drain closed whose Stopped was lost stays "replicating" where nothing runs.
        MergeSourcesNotEvicted = "merge-sources-not-evicted",
        /// *Node.* A Remove of a source of a draining merge lets the merge hand over anyway.
        HandOverDespiteRemove = "hand-over-despite-remove",
        /// *Node.* A Remove of an unknown id does not refuse a later merge request for that id.
        ForgetRemovedMergeIds = "forget-removed-merge-ids",
        /// *Node.* A resent merge request that finds its merge in progress reports nothing unless
        /// the merged dispatcher already works.
        QuietMergeResend = "quiet-merge-resend",
        /// *Node.* No final-checkpoint tombstones: a delayed duplicate create of a dispatcher that
        /// closed in this owner's term runs again.
        NoStaleCreateTombstones = "no-stale-create-tombstones",
        /// *Node.* A merged dispatcher that closes mid-drain leaves the sources it already drained
        /// live and unreported.
        StrandDrainedSources = "strand-drained-sources",
        /// *Node.* A bootstrap from a newer epoch refused for an older owner's trigger leaves that
        /// trigger running, so the newer owner depends on the older one to remove it.
        KeepOlderTriggers = "keep-older-triggers",
        /// *Node.* A create starting exactly where a dispatcher of its id stopped without ever
        /// progressing is not taken for a copy of the create that made it.
        EqualStartNotStale = "equal-start-not-stale",
        /// *Node.* A heartbeat round lists synthetic statuses (answers about closed or unknown ids)
        /// after the live dispatchers' statuses, so an old Stopped can follow the Working of an id
        /// re-created since.
        SyntheticStatusesLast = "synthetic-statuses-last",
        /// *Maintainer.* A create the node refused for good (Removed) is placed again under the same
        /// id, which the node refuses again, forever (seed 408).
        RenewNotOnRefusal = "renew-not-on-refusal",
        /// *Node.* A create older than where its id stopped in this term is dropped without an
        /// answer, so an owner that lost that Stopped resends it forever (seed 5086).
        SilentStaleCreates = "silent-stale-creates",
        /// *Node.* A merge request whose merged id already ran and closed in this term is taken up
        /// again, draining sources placed since (seed 13866).
        MergeAfterMergedClosed = "merge-after-merged-closed",
        /// *Node.* A closed dispatcher's Stopped is reported once: lost with its heartbeat, the owner
        /// never learns (seed 31757).
        StoppedReportedOnce = "stopped-reported-once",
        /// *Node.* Only the bootstrap that changed the owner withdraws the older owners' unexecuted
        /// creates; a concurrent bootstrap of the same new owner answers without them (issue 15, 1).
        SameOwnerBootstrapSkipsWithdrawal = "same-owner-bootstrap-skips-withdrawal",
        /// *Node.* A duplicate close report of a drained merge source counts it again (issue 15, 5).
        DrainCountedTwice = "drain-counted-twice",
        /// *Node.* A Remove replaces whatever entry its span holds, even a later create's of another
        /// incarnation, which then loses its journal entry (issue 15, fault 4).
        RemoveReplacesAnyHolder = "remove-replaces-any-holder",
        /// *Node.* An undone merge request (or one whose reservation fails) removes only its own
        /// journal entry, leaking a Remove of the merged id that replaced it (issue 15, fault 3;
        /// issue 16's stress seed 105).
        UndoFinishesOwnEntryOnly = "undo-finishes-own-entry-only",
        /// *Node.* A source that closes on its own while its merge is still preparing is closed
        /// without ending the merge, which may then begin draining it (issue 15, fault 2).
        SelfCloseSkipsPreparingMerge = "self-close-skips-preparing-merge",
        /// *Node.* A Remove resend fenced after its admission removes its own entry instead of
        /// putting back the in-flight Remove it replaced (found by the node-stress harness).
        FencedRemoveErasesReplaced = "fenced-remove-erases-replaced",
        /// *Node.* A create or merge of the current owner replaces an older owner's in-flight
        /// Remove of the span's dispatcher, then fails on the still-occupied span and leaves no
        /// entry (found by the node-stress harness).
        CreateReplacesStaleRemove = "create-replaces-stale-remove",
        /// *Node.* Complete rounds repeat a closed dispatcher's Stopped three times only, which an
        /// owner cut off for longer loses for good (seed 26138).
        StoppedRepeatsBounded = "stopped-repeats-bounded",
        /// *Maintainer.* A merge source's Stopped counts as the node having taken the merge up,
        /// though a held-back remove may have closed it (seed 32053).
        SourceStoppedAcceptsMerge = "source-stopped-accepts-merge",
        /// *Maintainer.* The barrier tells every span that reported to write, not one writer (B1).
        BarrierEveryReporterWrites = "barrier-every-reporter-writes",
        /// *Maintainer.* The barrier sends Pass together with the Write, not after its DONE (B2).
        BarrierPassWithWrite = "barrier-pass-with-write",
        /// *Maintainer.* The barrier picks the writer at the first WAITING, without waiting for
        /// every affected span (B3).
        BarrierWriteAtFirstReport = "barrier-write-at-first-report",
        /// *Maintainer.* The barrier applies an event's table-set changes when it picks the writer,
        /// before the write (B8; the reference's issue #3443: DML lost after TRUNCATE).
        BarrierApplyBeforeWrite = "barrier-apply-before-write",
        /// *Node.* A delayed Remove sent before the live dispatcher of its id was created (its
        /// floor below that dispatcher's start ts) closes it anyway, behind the maintainer's back
        /// (barrier seed 7289: a span moved away and back lost its dispatcher and its DML).
        StaleRemoveApplies = "stale-remove-applies",
        /// *Coordinator.* A stop goes out at the running maintainer's own epoch (the stored one
        /// when none is known) instead of a fresh one, so a close cannot take over the dispatcher
        /// managers a dead or moved maintainer left (coordinator-world seed 4).
        StopAtRunningEpoch = "stop-at-running-epoch",
        /// *Coordinator.* A lifecycle write whose outcome is unknown (the store's reply lost) is
        /// answered `Unavailable` and forgotten, though it may have landed: a pause stored that
        /// way is never run, its maintainer and dispatchers go on (coordinator world with lost
        /// store replies).
        LifecycleUnknownForgotten = "lifecycle-unknown-forgotten",
        /// *Maintainer.* A load round reads spans whose window is not full yet, the missing
        /// samples as 0 (against L6), so the fresh pieces of a split look cold at once.
        LoadPartialWindows = "load-partial-windows",
    }
}

/// A set of mutations (most runs: none, or one).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Mutations(u64);

impl Mutations {
    /// No mutation: the real code.
    pub const NONE: Mutations = Mutations(0);

    /// Whether `m` is switched on.
    pub fn has(self, m: Mutation) -> bool {
        self.0 & (1 << m as u64) != 0
    }

    /// Whether nothing is switched on.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// This set with `m` switched on too.
    pub fn with(self, m: Mutation) -> Mutations {
        Mutations(self.0 | (1 << m as u64))
    }

    /// The members, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Mutation> {
        Mutation::ALL.into_iter().filter(move |m| self.has(*m))
    }
}

impl From<Mutation> for Mutations {
    fn from(m: Mutation) -> Self {
        Mutations::NONE.with(m)
    }
}

impl fmt::Display for Mutations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Mutation::name).collect();
        f.write_str(&names.join(","))
    }
}

impl FromStr for Mutations {
    type Err = String;

    /// Comma-separated names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .try_fold(Mutations::NONE, |set, n| Ok(set.with(n.parse()?)))
    }
}
