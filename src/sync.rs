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
use std::sync::atomic::{fence, AtomicPtr};
#[cfg(not(dispatcher_loom))]
pub use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[cfg(dispatcher_loom)]
use loom::sync::atomic::{fence, AtomicPtr};
#[cfg(dispatcher_loom)]
pub use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A sequentially consistent fence: the two sides of a store-then-check handshake (each writes
/// its own location, fences, then reads the other's) cannot both miss each other's write. Loom
/// models `fence(SeqCst)` exactly (it treats SeqCst *accesses* as AcqRel), so handshakes use this
/// rather than SeqCst loads and stores.
pub fn fence_seq_cst() {
    fence(Ordering::SeqCst);
}

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
        Self::with_capacity(0)
    }

    /// An empty map sized for `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Self {
        // Blocking resizes: a writer that starts a resize finishes the copy. papaya's default
        // (incremental) copies a few entries per write, and a map whose writes stop mid-copy
        // leaves every later read probing the old table and then the new one: 120-140 ns per
        // lookup instead of ~12 (issue 16). The journal's index and the registry are read far
        // more than written, which is the case papaya documents blocking mode for.
        let inner = papaya::HashMap::builder()
            .capacity(capacity)
            .hasher(FixedHasher::default())
            .resize_mode(papaya::ResizeMode::Blocking)
            .build();
        Self { inner }
    }

    /// A clone of the value at `key`. Happens-after the write that stored it.
    #[inline]
    pub fn get(&self, key: &K) -> Option<V> {
        self.inner.pin().get(key).cloned()
    }

    /// Runs `f` on the value at `key` without cloning it (the map stays pinned meanwhile).
    #[inline]
    pub fn with<R>(&self, key: &K, f: impl FnOnce(&V) -> R) -> Option<R> {
        self.inner.pin().get(key).map(f)
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

    /// Runs `f` on a clone of the value at `key`, after the lock is released (so the model
    /// explores what `f` does against other threads, as it would race under papaya).
    pub fn with<R>(&self, key: &K, f: impl FnOnce(&V) -> R) -> Option<R> {
        let value = self.get(key)?;
        Some(f(&value))
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

    /// Runs `f` on the current value without taking a reference count (arc-swap's guarded
    /// load), for reads that need not keep the value.
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.inner.load())
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

    /// Runs `f` on the current value.
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.load())
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

/// A value replaced rarely and read on every request, read with one load and no reference count.
///
/// Every value ever published stays allocated until the cell is dropped, which is what lets a
/// reader hold a plain `&T` for as long as it borrows the cell. The cost is memory: one value per
/// publication for the cell's life. It suits a maintainer owner, replaced once per failover.
pub struct Published<T> {
    head: AtomicPtr<Generation<T>>,
}

struct Generation<T> {
    value: T,
    previous: *mut Generation<T>,
}

// SAFETY: the cell owns its values (dropped in `Drop`, by the one thread holding `&mut self`) and
// hands out only shared references to them, so it is as thread-safe as `T` is for shared use.
#[allow(unsafe_code)]
unsafe impl<T: Send + Sync> Send for Published<T> {}
// SAFETY: as above.
#[allow(unsafe_code)]
unsafe impl<T: Send + Sync> Sync for Published<T> {}

#[allow(unsafe_code)]
impl<T> Published<T> {
    /// A cell holding `value`.
    pub fn new(value: T) -> Self {
        let first = Box::into_raw(Box::new(Generation { value, previous: std::ptr::null_mut() }));
        Self { head: AtomicPtr::new(first) }
    }

    /// The value in force. Acquire: pairs with the Release of the publication that installed it.
    pub fn load(&self) -> &T {
        let head = self.head.load(Ordering::Acquire);
        // SAFETY: `head` is never null and no generation is freed before the cell is dropped,
        // which cannot happen while `&self` is borrowed.
        unsafe { &(*head).value }
    }

    /// Publishes `value` if the cell still holds `current` (by address). On success returns the
    /// new value in force; otherwise the value in force and `value` back.
    pub fn compare_and_publish(&self, current: &T, value: T) -> Result<&T, (&T, T)> {
        let head = self.head.load(Ordering::Acquire);
        // SAFETY: as in `load`.
        let found = unsafe { &(*head).value };
        if !std::ptr::eq(found, current) {
            return Err((found, value));
        }
        let next = Box::into_raw(Box::new(Generation { value, previous: head }));
        // AcqRel: Release publishes the new value; Acquire makes a failed attempt's `found` whole.
        match self.head.compare_exchange(head, next, Ordering::AcqRel, Ordering::Acquire) {
            // SAFETY: `next` is now the head, never freed before the cell.
            Ok(_) => Ok(unsafe { &(*next).value }),
            Err(found) => {
                // SAFETY: `next` was never shared (the exchange failed); `found` as in `load`.
                let next = unsafe { Box::from_raw(next) };
                Err((unsafe { &(*found).value }, next.value))
            }
        }
    }
}

#[allow(unsafe_code)]
impl<T> Drop for Published<T> {
    fn drop(&mut self) {
        let mut next = self.head.load(Ordering::Acquire);
        while !next.is_null() {
            // SAFETY: `&mut self`: no reader is left; each generation is freed once, walking back.
            let generation = unsafe { Box::from_raw(next) };
            next = generation.previous;
        }
    }
}

/// The cell holds no value, will never hold one again, and is being taken out of its index.
const SEALED: u64 = 1;
/// A value was installed or removed since the last [`ArcSlot::seal_if_idle`] (second chance).
const TOUCHED: u64 = 1 << 1;
/// One reader taking a reference (bits 2..16 count readers in the middle of a `load`).
const READER: u64 = 1 << 2;
const READERS: u64 = 0xFFFC;
/// The value's address lives in the 48 bits above the flags and reader count.
const ADDRESS_SHIFT: u32 = 16;

/// An `Option<Arc<T>>` in one atomic word: installed and removed by compare-and-swap on the
/// value's address, read without a lock or a deferred reclaimer.
///
/// The word packs the address of the held value, a count of readers in the middle of a
/// [`ArcSlot::load`], and two flags. A reader first adds itself to the word (one RMW, which also
/// tells it the address), takes a strong reference on the value, then takes itself back off the
/// word. A swap that removes a value with readers still counted on the word adds their number to
/// the value's strong count before it lets go of the cell's own reference, and those readers, who
/// then find the word changed, each drop one reference instead (split reference counting). Counts
/// of one value are interchangeable, so a value that leaves and comes back (a revert) cannot make
/// the counts go wrong, only move from one reader to another.
///
/// Requires values at addresses below 2^48 (every 64-bit target Rust's allocator serves today);
/// a higher address is refused by an assertion rather than corrupting the word. At most 16,383
/// readers may be in the middle of a `load` of one cell at once.
pub struct ArcSlot<T> {
    word: AtomicU64,
    owns: std::marker::PhantomData<Arc<T>>,
}

/// Why [`ArcSlot::swap_if`] did not swap: the value handed back and whether the cell is sealed.
#[derive(Debug)]
pub struct NotSwapped<T> {
    /// The value that was to be installed.
    pub value: Option<Arc<T>>,
    /// The cell is sealed (its owner must use a fresh one).
    pub sealed: bool,
}

/// The cell is sealed: it will never hold a value again.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Sealed;

fn address_of<T>(word: u64) -> *const T {
    (word >> ADDRESS_SHIFT) as usize as *const T
}

fn word_of<T>(value: Option<&Arc<T>>) -> u64 {
    let address = value.map_or(0, |v| Arc::as_ptr(v) as usize as u64);
    assert!(address >> (64 - ADDRESS_SHIFT) == 0, "ArcSlot: value above the 48-bit address space");
    address << ADDRESS_SHIFT
}

impl<T> Default for ArcSlot<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[allow(unsafe_code)]
impl<T> ArcSlot<T> {
    /// An empty cell, marked touched: a sweep between its creation and its first use clears
    /// the mark instead of sealing it, so a new cell always reaches the admission it was made for.
    pub fn new() -> Self {
        Self { word: AtomicU64::new(TOUCHED), owns: std::marker::PhantomData }
    }

    /// Whether the cell holds exactly `value` (by address). One load.
    pub fn holds(&self, value: &Arc<T>) -> bool {
        address_of::<T>(self.word.load(Ordering::Acquire)) == Arc::as_ptr(value)
    }

    /// Whether the cell is sealed. One load.
    pub fn is_sealed(&self) -> bool {
        self.word.load(Ordering::Acquire) & SEALED != 0
    }

    /// Whether the cell holds no value (sealed or not). One load.
    pub fn is_vacant(&self) -> bool {
        address_of::<T>(self.word.load(Ordering::Acquire)).is_null()
    }

    /// A strong reference to the value held, if any. One load when the cell is empty; three
    /// RMWs (word, strong count, word) when it holds a value.
    pub fn load(&self) -> Result<Option<Arc<T>>, Sealed> {
        let word = self.word.load(Ordering::Acquire);
        if word & SEALED != 0 {
            return Err(Sealed);
        }
        if address_of::<T>(word).is_null() {
            return Ok(None);
        }
        // Acquire: pairs with the Release of the swap that installed the address, so the value's
        // contents are visible.
        let word = self.word.fetch_add(READER, Ordering::Acquire);
        debug_assert_ne!(word & READERS, READERS, "ArcSlot: reader count overflow");
        let address = address_of::<T>(word);
        let value = (!address.is_null()).then(|| {
            // SAFETY: the reader count this thread just added to a word holding `address` keeps
            // the value alive: a swap removing it first moves that count into the strong count.
            unsafe {
                Arc::increment_strong_count(address);
                Arc::from_raw(address)
            }
        });
        self.leave(address);
        if word & SEALED != 0 {
            return Err(Sealed);
        }
        Ok(value)
    }

    /// Runs `f` on the value held (or `None`), without taking a strong reference: the reader
    /// count keeps the value alive while `f` runs. Two RMWs on the word when the cell holds a
    /// value, one load when it is empty. What `f` sees may be replaced the moment it returns; a
    /// caller that wants to swap it out must [`ArcSlot::load`] it first (holding a reference is
    /// what keeps its address from being reused).
    pub fn read<R>(&self, f: impl FnOnce(Option<&T>) -> R) -> Result<R, Sealed> {
        let word = self.word.load(Ordering::Acquire);
        if word & SEALED != 0 {
            return Err(Sealed);
        }
        if address_of::<T>(word).is_null() {
            return Ok(f(None));
        }
        // Acquire: as in `load`.
        let word = self.word.fetch_add(READER, Ordering::Acquire);
        debug_assert_ne!(word & READERS, READERS, "ArcSlot: reader count overflow");
        let address = address_of::<T>(word);
        let out = (word & SEALED == 0).then(|| {
            // SAFETY: as in `load`: our reader count keeps the value alive until `leave`.
            f((!address.is_null()).then(|| unsafe { &*address }))
        });
        self.leave(address);
        out.ok_or(Sealed)
    }

    /// Takes one reader of `address` back off the word, or, if a swap moved it into the strong
    /// count (the word holds something else, or no reader of this value is left on it), drops
    /// one strong reference instead.
    fn leave(&self, address: *const T) {
        let mut word = self.word.load(Ordering::Relaxed);
        loop {
            if address_of::<T>(word) != address || word & READERS == 0 {
                if !address.is_null() {
                    // SAFETY: the count moved into the strong count is ours to drop (see type
                    // docs). If the swap has not added it yet, the swapper's own reference keeps
                    // the value alive until it has (see `swap_if`).
                    unsafe { Arc::decrement_strong_count(address) };
                }
                return;
            }
            // Release: our strong increment happens-before a swap that reads this count, so that
            // swap's drop of the cell's reference cannot free the value under us.
            match self.word.compare_exchange_weak(word, word - READER, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(found) => word = found,
            }
        }
    }

    /// Replaces the value if the cell holds `expected` (by address; `None` = empty) and is not
    /// sealed. Returns the value removed, or hands `value` back.
    #[inline]
    pub fn swap_if(
        &self,
        expected: Option<&Arc<T>>,
        value: Option<Arc<T>>,
    ) -> Result<Option<Arc<T>>, NotSwapped<T>> {
        let expected = expected.map_or(std::ptr::null(), Arc::as_ptr);
        let next = word_of(value.as_ref()) | TOUCHED;
        let mut word = self.word.load(Ordering::Acquire);
        loop {
            if word & SEALED != 0 || address_of::<T>(word) != expected {
                return Err(NotSwapped { value, sealed: word & SEALED != 0 });
            }
            // AcqRel: Release publishes the new value to readers; Acquire makes the readers'
            // strong increments (published by their Release in `leave`) precede our drop below.
            match self.word.compare_exchange_weak(word, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(found) => word = found,
            }
        }
        // The cell owns the new value's reference from here on.
        std::mem::forget(value);
        // Loom cannot see std's reference counts; a scheduling point here lets it run readers
        // between the exchange and the transfer below (the models count every drop).
        #[cfg(dispatcher_loom)]
        let _ = self.word.load(Ordering::Relaxed);
        if expected.is_null() {
            return Ok(None);
        }
        // A reader that finds the word changed may drop its count before we add it here; the
        // strong count then dips below the truth for a moment, but never to zero: the caller holds
        // its own reference to `expected` (the signature demands one) until we return.
        for _ in 0..(word & READERS) / READER {
            // SAFETY: the caller's reference and the cell's (released below) keep it alive.
            unsafe { Arc::increment_strong_count(expected) };
        }
        // SAFETY: the cell's own reference, taken out of the word by the exchange above.
        Ok(Some(unsafe { Arc::from_raw(expected) }))
    }

    /// Seals the cell if it holds no value, has no reader, and was not touched since the last
    /// call (which clears the mark): a second chance, so a busy cell is never sealed between two
    /// uses. Returns whether the cell is sealed now.
    pub fn seal_if_idle(&self) -> bool {
        let word = self.word.load(Ordering::Acquire);
        if word == SEALED {
            return true;
        }
        if word == TOUCHED {
            let _ = self.word.compare_exchange(word, 0, Ordering::AcqRel, Ordering::Relaxed);
            return false;
        }
        word == 0 && self.word.compare_exchange(0, SEALED, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    }
}

#[allow(unsafe_code)]
impl<T> Drop for ArcSlot<T> {
    fn drop(&mut self) {
        let address = address_of::<T>(self.word.load(Ordering::Acquire));
        if !address.is_null() {
            // SAFETY: `&mut self`: no reader is left; this is the cell's own reference.
            drop(unsafe { Arc::from_raw(address) });
        }
    }
}

impl<T> std::fmt::Debug for ArcSlot<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let word = self.word.load(Ordering::Acquire);
        f.debug_struct("ArcSlot")
            .field("occupied", &!address_of::<T>(word).is_null())
            .field("sealed", &(word & SEALED != 0))
            .finish()
    }
}
