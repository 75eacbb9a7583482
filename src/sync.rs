//! The one home of every atomic, concurrent container and shared-pointer swap in the crate.
//!
//! Normal builds use `std` atomics, [`papaya`] for lock-free maps and [`arc_swap`] for read-mostly
//! snapshots. Under the crate-specific cfg `dispatcher_loom` (never plain `loom`, so a global
//! `--cfg loom` does not flip other crates) the same names are backed by `loom` primitives so the
//! loom models in `loom-tests/` can explore every interleaving of our own protocols.
//!
//! papaya and arc-swap cannot run under loom. Their stand-ins are a loom `Mutex<HashMap>` and a loom
//! `RwLock<Arc<T>>`: both are *stronger* (linearizable) than what the real structures promise per key,
//! so the protocols built on top must rely only on per-key linearizability of `Map` operations and on
//! pointer-level compare-and-swap of `Swap`, which papaya and arc-swap do document. Every
//! cross-structure ordering the protocols need goes through an [`AtomicU64`] of our own, which loom
//! models faithfully.
//!
//! `clippy.toml` forbids `std::sync::Mutex`, `std::sync::RwLock`, `papaya::HashMap` and
//! `arc_swap::ArcSwap` anywhere else. It cannot forbid `std::sync::atomic` (this module re-exports
//! those types, and clippy cannot tell a re-export from a direct use), so `.ci/run` greps that no
//! other file under `src/` names `std::sync::atomic`.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // reason: this is the shim itself

use std::hash::Hash;
use std::sync::Arc;

#[cfg(not(dispatcher_loom))]
pub use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[cfg(dispatcher_loom)]
pub use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What a [`Map::compute`] closure decides for one key.
#[derive(Debug)]
pub enum Op<V, T> {
    /// Store this value (insert or replace).
    Insert(V),
    /// Delete the key.
    Remove,
    /// Leave the key as it is and return this value.
    Abort(T),
}

/// What a [`Map::compute`] call did.
#[derive(Debug)]
pub enum Computed<V, T> {
    /// The key was absent and now holds the value.
    Inserted,
    /// The key held `old` and now holds the new value.
    Replaced {
        /// The value that was replaced.
        old: V,
    },
    /// The key held this value and is now absent.
    Removed(V),
    /// Nothing changed.
    Aborted(T),
    /// The closure asked to remove a key that was absent; nothing changed.
    Absent,
}

/// A concurrent map with per-key atomic read-modify-write.
///
/// Values are cheap to clone (`Arc`s or small copies): reads hand out clones so no guard escapes.
/// Concurrency contract: every method is linearizable per key; [`Map::values`] is a weak snapshot
/// (it sees every entry present for the whole iteration, and may or may not see concurrent changes).
pub struct Map<K, V> {
    #[cfg(not(dispatcher_loom))]
    inner: papaya::HashMap<K, V, FixedHasher>,
    #[cfg(dispatcher_loom)]
    inner: loom::sync::Mutex<std::collections::HashMap<K, V>>,
}

impl<K, V> Default for Map<K, V>
where
    K: Hash + Eq + Clone + Send + Sync,
    V: Clone + Send + Sync,
{
    fn default() -> Self {
        Self::new()
    }
}

/// rustc-hash's Fx, seedless: iteration order then depends only on what was inserted, so a seeded
/// simulation replays the same (statuses in a heartbeat, records in a snapshot come out of these
/// maps). Keys come from the maintainer, not from arbitrary clients, so flooding one bucket on
/// purpose is not a concern here.
#[cfg(not(dispatcher_loom))]
type FixedHasher = rustc_hash::FxBuildHasher;

#[cfg(not(dispatcher_loom))]
impl<K, V> Map<K, V>
where
    K: Hash + Eq + Clone + Send + Sync,
    V: Clone + Send + Sync,
{
    /// An empty map.
    pub fn new() -> Self {
        Self { inner: papaya::HashMap::with_hasher(FixedHasher::default()) }
    }

    /// An empty map sized for `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { inner: papaya::HashMap::with_capacity_and_hasher(capacity, FixedHasher::default()) }
    }

    /// A clone of the value at `key`. Happens-after the write that stored it.
    pub fn get(&self, key: &K) -> Option<V> {
        self.inner.pin().get(key).cloned()
    }

    /// Atomically decides what to do with one key from its current value. The closure may run more
    /// than once (papaya retries it when the entry changed under it), so it must be pure.
    pub fn compute<T>(&self, key: K, mut f: impl FnMut(Option<&V>) -> Op<V, T>) -> Computed<V, T> {
        let map = self.inner.pin();
        // papaya panics when asked to remove an absent entry; we report `Absent` instead.
        let outcome = map.compute(key, |entry| {
            let present = entry.is_some();
            match f(entry.map(|(_, v)| v)) {
                Op::Insert(v) => papaya::Operation::Insert(v),
                Op::Remove if present => papaya::Operation::Remove,
                Op::Remove => papaya::Operation::Abort(None),
                Op::Abort(t) => papaya::Operation::Abort(Some(t)),
            }
        });
        match outcome {
            papaya::Compute::Inserted(_, _) => Computed::Inserted,
            papaya::Compute::Updated { old: (_, old), .. } => Computed::Replaced { old: old.clone() },
            papaya::Compute::Removed(_, old) => Computed::Removed(old.clone()),
            papaya::Compute::Aborted(Some(t)) => Computed::Aborted(t),
            papaya::Compute::Aborted(None) => Computed::Absent,
        }
    }

    /// Removes `key` only if `pred` holds for its current value (remove-if-same, never blind).
    /// Returns the removed value.
    pub fn remove_if(&self, key: &K, mut pred: impl FnMut(&V) -> bool) -> Option<V> {
        match self.inner.pin().remove_if(key, |_, v| pred(v)) {
            Ok(Some((_, v))) => Some(v.clone()),
            Ok(None) | Err(_) => None,
        }
    }

    /// A weak snapshot of the values (see the type's contract).
    pub fn values(&self) -> Vec<V> {
        self.inner.pin().values().cloned().collect()
    }

    /// A weak snapshot of the entries.
    pub fn entries(&self) -> Vec<(K, V)> {
        self.inner.pin().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Visits every entry without cloning (weak snapshot, same contract as [`Map::values`]).
    pub fn for_each(&self, mut f: impl FnMut(&K, &V)) {
        for (k, v) in self.inner.pin().iter() {
            f(k, v);
        }
    }

    /// Number of entries (approximate under concurrent change).
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the map is empty (approximate under concurrent change).
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

#[cfg(dispatcher_loom)]
impl<K, V> Map<K, V>
where
    K: Hash + Eq + Clone + Send + Sync,
    V: Clone + Send + Sync,
{
    /// An empty map.
    pub fn new() -> Self {
        Self { inner: loom::sync::Mutex::new(std::collections::HashMap::new()) }
    }

    /// An empty map sized for `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { inner: loom::sync::Mutex::new(std::collections::HashMap::with_capacity(capacity)) }
    }

    /// A clone of the value at `key`.
    pub fn get(&self, key: &K) -> Option<V> {
        self.inner.lock().unwrap().get(key).cloned()
    }

    /// Atomically decides what to do with one key from its current value.
    pub fn compute<T>(&self, key: K, mut f: impl FnMut(Option<&V>) -> Op<V, T>) -> Computed<V, T> {
        let mut map = self.inner.lock().unwrap();
        match f(map.get(&key)) {
            Op::Insert(v) => match map.insert(key, v) {
                Some(old) => Computed::Replaced { old },
                None => Computed::Inserted,
            },
            Op::Remove => match map.remove(&key) {
                Some(old) => Computed::Removed(old),
                None => Computed::Absent,
            },
            Op::Abort(t) => Computed::Aborted(t),
        }
    }

    /// Removes `key` only if `pred` holds for its current value.
    pub fn remove_if(&self, key: &K, mut pred: impl FnMut(&V) -> bool) -> Option<V> {
        let mut map = self.inner.lock().unwrap();
        if map.get(key).is_some_and(&mut pred) {
            map.remove(key)
        } else {
            None
        }
    }

    /// A snapshot of the values.
    pub fn values(&self) -> Vec<V> {
        self.inner.lock().unwrap().values().cloned().collect()
    }

    /// A snapshot of the entries.
    pub fn entries(&self) -> Vec<(K, V)> {
        self.inner.lock().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Visits every entry (a snapshot taken under the lock, visited after it is released).
    pub fn for_each(&self, mut f: impl FnMut(&K, &V)) {
        for (k, v) in self.entries() {
            f(&k, &v);
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.inner.lock().unwrap().is_empty()
    }
}

/// A shared pointer that readers load without locking and writers replace by compare-and-swap.
pub struct Swap<T> {
    #[cfg(not(dispatcher_loom))]
    inner: arc_swap::ArcSwap<T>,
    #[cfg(dispatcher_loom)]
    inner: loom::sync::RwLock<Arc<T>>,
}

#[cfg(not(dispatcher_loom))]
impl<T> Swap<T> {
    /// A swap cell holding `value`.
    pub fn new(value: Arc<T>) -> Self {
        Self { inner: arc_swap::ArcSwap::new(value) }
    }

    /// The current value. Acquire: pairs with the Release of the CAS that published it.
    pub fn load(&self) -> Arc<T> {
        self.inner.load_full()
    }

    /// Replaces `current` by `new` if the cell still holds `current` (pointer identity).
    /// Returns the value found: equal to `current` (by pointer) exactly when the swap happened.
    pub fn compare_and_swap(&self, current: &Arc<T>, new: Arc<T>) -> Result<(), Arc<T>> {
        let found = self.inner.compare_and_swap(current, new);
        if Arc::ptr_eq(&found, current) {
            Ok(())
        } else {
            Err(arc_swap::Guard::into_inner(found))
        }
    }
}

#[cfg(dispatcher_loom)]
impl<T> Swap<T> {
    /// A swap cell holding `value`.
    pub fn new(value: Arc<T>) -> Self {
        Self { inner: loom::sync::RwLock::new(value) }
    }

    /// The current value.
    pub fn load(&self) -> Arc<T> {
        self.inner.read().unwrap().clone()
    }

    /// Replaces `current` by `new` if the cell still holds `current` (pointer identity).
    pub fn compare_and_swap(&self, current: &Arc<T>, new: Arc<T>) -> Result<(), Arc<T>> {
        let mut slot = self.inner.write().unwrap();
        if Arc::ptr_eq(&slot, current) {
            *slot = new;
            Ok(())
        } else {
            Err(slot.clone())
        }
    }
}

/// A bounded multi-producer multi-consumer FIFO queue that never blocks.
///
/// Normal builds use [`crossbeam_queue::ArrayQueue`] (lock-free, one CAS per push or pop); under
/// `dispatcher_loom` a loom `Mutex<VecDeque>` with the same capacity, which is linearizable and so
/// stronger than the lock-free queue, whose push and pop are linearizable too. Protocols built on
/// it may rely on: a `push` that returns `Ok` happens-before the `pop` that returns the value, and
/// a full queue hands the value back.
pub struct Queue<T> {
    #[cfg(not(dispatcher_loom))]
    inner: crossbeam_queue::ArrayQueue<T>,
    #[cfg(dispatcher_loom)]
    inner: loom::sync::Mutex<std::collections::VecDeque<T>>,
    #[cfg(dispatcher_loom)]
    capacity: usize,
}

#[cfg(not(dispatcher_loom))]
impl<T> Queue<T> {
    /// An empty queue holding at most `capacity` (at least 1) values.
    pub fn new(capacity: usize) -> Self {
        Self { inner: crossbeam_queue::ArrayQueue::new(capacity.max(1)) }
    }

    /// Appends `value`, or hands it back when the queue is full.
    pub fn push(&self, value: T) -> Result<(), T> {
        self.inner.push(value)
    }

    /// Removes the oldest value.
    pub fn pop(&self) -> Option<T> {
        self.inner.pop()
    }

    /// Number of values (approximate under concurrency).
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the queue is empty (approximate under concurrency).
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }
}

#[cfg(dispatcher_loom)]
impl<T> Queue<T> {
    /// An empty queue holding at most `capacity` (at least 1) values.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self { inner: loom::sync::Mutex::new(std::collections::VecDeque::with_capacity(capacity)), capacity }
    }

    /// Appends `value`, or hands it back when the queue is full.
    pub fn push(&self, value: T) -> Result<(), T> {
        let mut q = self.inner.lock().unwrap();
        if q.len() >= self.capacity {
            return Err(value);
        }
        q.push_back(value);
        Ok(())
    }

    /// Removes the oldest value.
    pub fn pop(&self) -> Option<T> {
        self.inner.lock().unwrap().pop_front()
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().len()
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.inner.lock().unwrap().is_empty()
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}
