//! The maintainer epoch fence: which maintainer owns this dispatcher manager, and which requests it
//! admits.
//!
//! The decision tables are pure functions ([`admits`], [`may_take_over`]) tested exhaustively. The
//! owner is a [`Published`] value: a request reads it with one load and no reference count; only a
//! bootstrap replaces it, by compare-and-swap, and then raises the fence *generation* word.
//!
//! Invariant I12 ("a request admitted under an old owner is either seen by the bootstrap's scan
//! or refuses itself") is a store-then-check handshake, without a lock and without a shared RMW
//! on the request path:
//!
//! * a request publishes what it made visible (journal entry, reserved dispatcher), issues a
//!   SeqCst fence, then *loads* the generation ([`Fence::still_current`]);
//! * a bootstrap raises the generation, issues a SeqCst fence ([`Fence::take_over`]), then scans.
//!
//! The two fences are ordered one way or the other: if the request's comes first, the scan sees
//! what the request published; if the bootstrap's comes first, the request's load sees the raised
//! generation and it withdraws. (An RMW on the generation word by every request would give the
//! same, but makes every admission write one shared cache line.)

use crate::ids::{Epoch, NodeId};
use crate::sync::{fence_seq_cst, AtomicU64, Ordering, Published};

/// The owner of a dispatcher manager: the maintainer whose requests it admits.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Owner {
    /// The maintainer's node, `None` before any owner is known.
    pub maintainer: Option<NodeId>,
    /// The maintainer's epoch (0 = compatibility mode).
    pub epoch: Epoch,
    /// How many owner changes this manager has seen; bumps by one per change.
    pub generation: u64,
}

impl Owner {
    /// Whether `(from, epoch)` names this very owner.
    pub fn is(&self, from: &NodeId, epoch: Epoch) -> bool {
        self.epoch == epoch && self.maintainer.as_ref() == Some(from)
    }
}

/// The admission rule (I1: single owner): may a control message from `from` at `epoch` act on a
/// manager owned by `owner`? A higher epoch is never adopted here; only a bootstrap changes owner.
pub fn admits(owner: &Owner, from: &NodeId, epoch: Epoch) -> bool {
    match (owner.epoch, &owner.maintainer) {
        (Epoch::COMPAT, None) => epoch == Epoch::COMPAT,
        (Epoch::COMPAT, Some(x)) => epoch == Epoch::COMPAT && x == from,
        (current, Some(x)) => epoch == current && x == from,
        (_, None) => false,
    }
}

/// The owner-change rule (I1): may a bootstrap from `from` at `epoch` take this manager
/// over (or re-bootstrap it idempotently)?
pub fn may_take_over(owner: &Owner, from: &NodeId, epoch: Epoch) -> bool {
    if owner.epoch == Epoch::COMPAT {
        return true;
    }
    if epoch == Epoch::COMPAT || epoch < owner.epoch {
        return false;
    }
    if epoch > owner.epoch {
        return true;
    }
    owner.maintainer.as_ref().is_none_or(|x| x == from)
}

/// A bootstrap that the fence refused.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("bootstrap from {from} at epoch {} refused by owner {owner:?}", epoch.0)]
pub struct TakeOverRefused {
    /// The refused sender.
    pub from: NodeId,
    /// The refused epoch.
    pub epoch: Epoch,
    /// The owner that stays.
    pub owner: Owner,
}

/// The outcome of a successful bootstrap on the fence.
#[derive(Clone, Debug)]
#[must_use]
pub struct TakenOver<'a> {
    /// The owner now in force.
    pub owner: &'a Owner,
    /// False for an idempotent re-bootstrap by the same owner.
    pub changed: bool,
}

/// The owner cell plus the generation word (see the module docs for the protocol).
pub struct Fence {
    owner: Published<Owner>,
    generation: AtomicU64,
}

/// A bound on compare-and-swap retries when bootstraps race each other. Each retry means another
/// bootstrap won, so this only bounds a pathological storm; exhausting it refuses the bootstrap.
const TAKE_OVER_RETRIES_MAX: usize = 64;

impl Fence {
    /// A fence owned by `maintainer` at `epoch` from the start (the bootstrap that created the
    /// manager), or by nobody.
    pub fn new(maintainer: Option<NodeId>, epoch: Epoch) -> Self {
        Self {
            owner: Published::new(Owner { maintainer, epoch, generation: 0 }),
            generation: AtomicU64::new(0),
        }
    }

    /// The owner in force now.
    pub fn owner(&self) -> &Owner {
        self.owner.load()
    }

    /// The owner, if it admits `(from, epoch)`.
    #[inline]
    pub fn admit(&self, from: &NodeId, epoch: Epoch) -> Option<&Owner> {
        let owner = self.owner.load();
        admits(owner, from, epoch).then_some(owner)
    }

    /// Whether no owner change has been published since `admitted_under` was loaded.
    ///
    /// Call it *after* publishing whatever the request made visible (journal entry, reserved
    /// dispatcher): the request's half of the handshake in the module docs, a SeqCst fence then a
    /// load. A false answer means a bootstrap may already have scanned without seeing what the
    /// caller published, so the caller must withdraw it.
    #[inline]
    pub fn still_current(&self, admitted_under: &Owner) -> bool {
        fence_seq_cst();
        self.generation.load(Ordering::Acquire) <= admitted_under.generation
    }

    /// Bootstrap: install `(from, epoch)` as owner if the owner-change table allows it.
    ///
    /// After this returns with `changed`, every request admitted under an older owner either
    /// published its entry before the caller's subsequent scan (and the scan sees it) or will find
    /// itself fenced in [`Fence::still_current`].
    pub fn take_over(&self, from: &NodeId, epoch: Epoch) -> Result<TakenOver<'_>, TakeOverRefused> {
        let mut current = self.owner.load();
        for _ in 0..TAKE_OVER_RETRIES_MAX {
            if !may_take_over(current, from, epoch) {
                break;
            }
            if current.is(from, epoch) {
                // Same owner (a resend, or a second worker running the same bootstrap): the
                // caller scans for stale creates too, so it needs the same handshake as the
                // bootstrap that made the change, which may not have raised the generation yet
                // (issue 15, fault 1).
                self.raise_generation(current.generation);
                return Ok(TakenOver { owner: current, changed: false });
            }
            let next = Owner { maintainer: Some(from.clone()), epoch, generation: current.generation + 1 };
            match self.owner.compare_and_publish(current, next) {
                Ok(next) => {
                    self.raise_generation(next.generation);
                    return Ok(TakenOver { owner: next, changed: true });
                }
                Err((found, _)) => current = found,
            }
        }
        Err(TakeOverRefused { from: from.clone(), epoch, owner: current.clone() })
    }

    /// The bootstrap's half of the handshake (module docs): raise, then a SeqCst fence, before
    /// the caller scans. fetch_max because a racing, later bootstrap may have raised it further.
    fn raise_generation(&self, to: u64) {
        self.generation.fetch_max(to, Ordering::AcqRel);
        fence_seq_cst();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(m: Option<&str>, e: u64) -> Owner {
        Owner { maintainer: m.map(NodeId::new), epoch: Epoch(e), generation: 0 }
    }

    /// `admits`, one row per (owner epoch, owner, request epoch, sender) case (I1).
    #[test]
    fn admission_table() {
        let (x, y) = (NodeId::new("x"), NodeId::new("y"));
        let rows = [
            (owner(None, 0), &x, 0, true),
            (owner(Some("x"), 0), &x, 0, true),
            (owner(Some("x"), 0), &y, 0, false),
            (owner(None, 0), &x, 1, false),
            (owner(Some("x"), 0), &x, 1, false),
            (owner(Some("x"), 2), &x, 0, false),
            (owner(Some("x"), 2), &x, 2, true),
            (owner(Some("x"), 2), &y, 2, false),
            (owner(Some("x"), 2), &x, 3, false),
            (owner(Some("x"), 2), &x, 1, false),
            (owner(None, 2), &x, 2, false),
        ];
        for (o, from, e, want) in rows {
            assert_eq!(admits(&o, from, Epoch(e)), want, "owner {o:?} from {from} epoch {e}");
        }
    }

    /// `may_take_over`, one row per (owner epoch, owner, bootstrap epoch, sender) case (I1).
    #[test]
    fn take_over_table() {
        let (x, y) = (NodeId::new("x"), NodeId::new("y"));
        let rows = [
            (owner(Some("x"), 0), &y, 0, true),
            (owner(None, 0), &y, 0, true),
            (owner(Some("x"), 0), &y, 5, true),
            (owner(Some("x"), 2), &y, 0, false),
            (owner(Some("x"), 2), &y, 1, false),
            (owner(Some("x"), 2), &x, 2, true),
            (owner(None, 2), &y, 2, true),
            (owner(Some("x"), 2), &y, 2, false),
            (owner(Some("x"), 2), &y, 3, true),
        ];
        for (o, from, e, want) in rows {
            assert_eq!(may_take_over(&o, from, Epoch(e)), want, "owner {o:?} from {from} epoch {e}");
        }
    }

    /// TestDispatcherManagerTryUpdateMaintainerEpoch.
    #[test]
    fn try_update_maintainer_epoch() {
        let (current, new) = (NodeId::new("current"), NodeId::new("new"));
        let fence = Fence::new(Some(current.clone()), Epoch(2));
        assert!(!may_take_over(fence.owner(), &current, Epoch(0)));
        assert!(may_take_over(fence.owner(), &new, Epoch(3)));
        assert_eq!(fence.owner().maintainer.as_ref(), Some(&current), "the predicate must not mutate");
        assert!(fence.take_over(&current, Epoch(0)).is_err());
        assert_eq!(fence.owner().epoch, Epoch(2));

        let compat = Fence::new(Some(NodeId::new("old")), Epoch(0));
        let t = compat.take_over(&new, Epoch(0)).unwrap();
        assert!(t.changed);
        assert_eq!(compat.owner().maintainer.as_ref(), Some(&new));
        assert_eq!(compat.owner().epoch, Epoch(0));
    }

    #[test]
    fn generation_moves_only_on_change() {
        let x = NodeId::new("x");
        let fence = Fence::new(Some(x.clone()), Epoch(2));
        let before = fence.owner();
        let again = fence.take_over(&x, Epoch(2)).unwrap();
        assert!(!again.changed);
        assert!(fence.still_current(before));
        let t = fence.take_over(&NodeId::new("y"), Epoch(3)).unwrap();
        assert!(t.changed);
        assert!(!fence.still_current(before));
        assert!(fence.still_current(t.owner));
    }
}
