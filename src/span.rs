//! Table spans: half-open key ranges of one table, their order, overlap and adjacency.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

/// A key's immutable bytes: inline when short, shared behind one allocation when long.
///
/// Table prefixes (9 bytes) and row keys of a table (19 bytes raw) fit inline, so a span of such
/// keys is one flat value: cloning it copies its words and touches no reference count, and
/// hashing or comparing it follows no pointer (issue 16: reading scattered key blocks was a third
/// of a 100,000-span bootstrap snapshot, and every copy of a span carried two 40-byte blocks). A
/// longer key is shared: its copies cost one reference count each.
///
/// Layout: 24 bytes, 8-aligned, every bit pattern a plain byte. The last byte is the length of an
/// inline key (0..=23, the bytes before it zero past the length) or [`SHARED`], in which case
/// the first two words are the address and length of an `Arc<[u8]>` this key holds a strong
/// reference to. A tagged `enum` was tried first: its tag byte became the niche of every
/// `Option` around a span, and rustc then moved such values from byte offset 1, in unaligned
/// 16-byte pieces that stalled on store forwarding (a 1,000,000-span maintainer rebuild went
/// from 0.93 s to 1.40 s).
#[repr(C, align(8))]
pub struct Key {
    raw: [u8; KEY_BYTES],
}

const KEY_BYTES: usize = 24;
/// The last byte of a shared key.
const SHARED: u8 = 0xFF;

/// The longest key kept inline.
pub const INLINE_KEY_MAX: usize = KEY_BYTES - 1;

impl Key {
    /// The empty key (an unbounded end).
    pub const EMPTY: Key = Key { raw: [0; KEY_BYTES] };

    /// A key holding `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        let mut raw = [0; KEY_BYTES];
        if bytes.len() <= INLINE_KEY_MAX {
            raw[..bytes.len()].copy_from_slice(bytes);
            // The cast cannot truncate: len <= INLINE_KEY_MAX < SHARED.
            raw[KEY_BYTES - 1] = bytes.len() as u8;
        } else {
            let shared: Arc<[u8]> = Arc::from(bytes);
            // Exposed, not cast: `shared` turns the address back into a pointer.
            let address = Arc::into_raw(shared).cast::<u8>().expose_provenance() as u64;
            raw[..8].copy_from_slice(&address.to_ne_bytes());
            raw[8..16].copy_from_slice(&(bytes.len() as u64).to_ne_bytes());
            raw[KEY_BYTES - 1] = SHARED;
        }
        Key { raw }
    }

    /// The shared allocation this key holds a reference to, if it is not inline.
    #[inline]
    fn shared(&self) -> Option<*const [u8]> {
        (self.raw[KEY_BYTES - 1] == SHARED).then(|| {
            let word =
                |i: usize| u64::from_ne_bytes(self.raw[i..i + 8].try_into().expect("8 bytes")) as usize;
            std::ptr::slice_from_raw_parts(std::ptr::with_exposed_provenance::<u8>(word(0)), word(8))
        })
    }

    /// The key's bytes.
    #[inline]
    #[allow(unsafe_code)]
    pub fn as_bytes(&self) -> &[u8] {
        match self.shared() {
            None => &self.raw[..usize::from(self.raw[KEY_BYTES - 1])],
            // SAFETY: the address and length came from `Arc::into_raw` of a live `Arc<[u8]>`,
            // and this key holds a strong reference to it until it is dropped.
            Some(shared) => unsafe { &*shared },
        }
    }

    /// Whether the key's bytes live in the value itself (no allocation).
    pub fn is_inline(&self) -> bool {
        self.raw[KEY_BYTES - 1] != SHARED
    }
}

impl Clone for Key {
    #[inline]
    #[allow(unsafe_code)]
    fn clone(&self) -> Self {
        if let Some(shared) = self.shared() {
            // SAFETY: as in `as_bytes`: `shared` is a live `Arc<[u8]>` this key holds a
            // reference to; the copy takes one of its own.
            unsafe { Arc::increment_strong_count(shared) };
        }
        Key { raw: self.raw }
    }
}

impl Drop for Key {
    #[inline]
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        if let Some(shared) = self.shared() {
            // SAFETY: gives back the one strong reference this key holds (from `new` or `clone`).
            drop(unsafe { Arc::from_raw(shared) });
        }
    }
}

impl Default for Key {
    fn default() -> Self {
        Key::EMPTY
    }
}

impl std::ops::Deref for Key {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for Key {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        if self.is_inline() && other.is_inline() {
            // Length byte and zero tail included: equal arrays exactly when equal keys.
            self.raw == other.raw
        } else {
            // An inline key and a shared one never have the same length.
            self.as_bytes() == other.as_bytes()
        }
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl std::hash::Hash for Key {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(self))
    }
}

impl From<&[u8]> for Key {
    fn from(bytes: &[u8]) -> Self {
        Key::new(bytes)
    }
}

impl From<Vec<u8>> for Key {
    fn from(bytes: Vec<u8>) -> Self {
        Key::new(&bytes)
    }
}

impl<const N: usize> From<[u8; N]> for Key {
    fn from(bytes: [u8; N]) -> Self {
        Key::new(&bytes)
    }
}

impl<const N: usize> From<&[u8; N]> for Key {
    fn from(bytes: &[u8; N]) -> Self {
        Key::new(bytes)
    }
}

/// A key range `[start_key, end_key)` of one table in one keyspace.
///
/// An empty `end_key` means "unbounded". The wire boundary guarantees `start_key < end_key` for
/// bounded spans, so every span here is non-empty.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TableSpan {
    /// Keyspace the table lives in.
    pub keyspace_id: u32,
    /// Table id (0 is the table trigger's span).
    pub table_id: i64,
    /// Inclusive start key.
    pub start_key: Key,
    /// Exclusive end key; empty = unbounded.
    pub end_key: Key,
}

impl TableSpan {
    /// A span; `None` if it would be empty (`start_key >= end_key` with a bounded end).
    pub fn new(
        keyspace_id: u32,
        table_id: i64,
        start_key: impl Into<Key>,
        end_key: impl Into<Key>,
    ) -> Option<Self> {
        let span = Self { keyspace_id, table_id, start_key: start_key.into(), end_key: end_key.into() };
        span.is_valid().then_some(span)
    }

    /// The span of a keyspace's table trigger (DDL) dispatcher: table 0, from the record prefix of
    /// table 0 to that of table 1 in TiDB's memcomparable key encoding.
    pub fn table_trigger(keyspace_id: u32) -> Self {
        const TABLE_0: [u8; 9] = [b't', 0x80, 0, 0, 0, 0, 0, 0, 0];
        const TABLE_1: [u8; 9] = [b't', 0x80, 0, 0, 0, 0, 0, 0, 1];
        Self { keyspace_id, table_id: 0, start_key: Key::from(TABLE_0), end_key: Key::from(TABLE_1) }
    }

    /// The whole key range of one table: `t` followed by the sign-flipped big-endian table id, up to
    /// the same prefix of the next table id (the comparable encoding of the reference system).
    pub fn whole_table(keyspace_id: u32, table_id: i64) -> Self {
        Self {
            keyspace_id,
            table_id,
            start_key: Key::from(table_prefix(table_id)),
            end_key: Key::from(table_prefix(table_id.wrapping_add(1))),
        }
    }

    /// Cuts this span into `parts` consecutive spans of (nearly) equal width that tile it exactly.
    ///
    /// Positions inside a table are the table prefix followed by a big-endian `u64`, so a span whose
    /// bounds are the table prefix, the next table's prefix or such a position can be cut; `None`
    /// for any other span, for `parts < 2`, or when the span is too narrow to cut that often.
    pub fn split_even(&self, parts: usize) -> Option<Vec<TableSpan>> {
        let lo = key_position(self.table_id, &self.start_key)?;
        let hi = key_position(self.table_id, &self.end_key)?;
        let n = u128::try_from(parts).ok()?;
        if parts < 2 || hi <= lo || hi - lo < n {
            return None;
        }
        let width = hi - lo;
        let mut cuts = vec![self.start_key.clone()];
        for i in 1..n {
            cuts.push(position_key(self.table_id, lo + width * i / n));
        }
        cuts.push(self.end_key.clone());
        Some(
            cuts.windows(2)
                .map(|w| TableSpan {
                    keyspace_id: self.keyspace_id,
                    table_id: self.table_id,
                    start_key: w[0].clone(),
                    end_key: w[1].clone(),
                })
                .collect(),
        )
    }

    /// Where this span lies inside its table, as positions (0 at the table's start, `2^64` at its
    /// end; see [`TableSpan::split_even`]); `None` for a span whose bounds have another shape.
    pub fn positions(&self) -> Option<(u128, u128)> {
        Some((key_position(self.table_id, &self.start_key)?, key_position(self.table_id, &self.end_key)?))
    }

    /// The span of table `table_id` between two positions (`lo < hi <= 2^64`), the inverse of
    /// [`TableSpan::positions`]; `None` for an empty or out-of-range pair.
    pub fn at_positions(keyspace_id: u32, table_id: i64, lo: u128, hi: u128) -> Option<Self> {
        const END: u128 = 1 << 64;
        if lo >= hi || hi > END {
            return None;
        }
        let key = |p: u128| match p {
            0 => Key::from(table_prefix(table_id)),
            END => Key::from(table_prefix(table_id.wrapping_add(1))),
            p => position_key(table_id, p),
        };
        Some(Self { keyspace_id, table_id, start_key: key(lo), end_key: key(hi) })
    }

    /// Whether this is a table trigger's span (table id 0).
    pub fn is_table_trigger(&self) -> bool {
        self.table_id == 0
    }

    /// Whether the range is non-empty.
    pub fn is_valid(&self) -> bool {
        self.end_key.is_empty() || self.start_key < self.end_key
    }

    /// Whether the two spans share at least one key (same keyspace and table, intersecting ranges).
    pub fn overlaps(&self, other: &TableSpan) -> bool {
        self.keyspace_id == other.keyspace_id
            && self.table_id == other.table_id
            && end_after(&self.end_key, &other.start_key)
            && end_after(&other.end_key, &self.start_key)
    }

    /// Whether `next` starts exactly where `self` ends, in the same table (the merge precondition).
    pub fn is_followed_by(&self, next: &TableSpan) -> bool {
        self.keyspace_id == next.keyspace_id
            && self.table_id == next.table_id
            && !self.end_key.is_empty()
            && self.end_key == next.start_key
    }

    /// The span covering `self` and `last`: start of `self`, end of `last`.
    pub fn joined_with(&self, last: &TableSpan) -> TableSpan {
        TableSpan {
            keyspace_id: self.keyspace_id,
            table_id: last.table_id,
            start_key: self.start_key.clone(),
            end_key: last.end_key.clone(),
        }
    }
}

/// `end` (exclusive, empty = unbounded) lies after `key`.
/// `t` + the table id with its sign bit flipped, big-endian: byte order equals numeric order.
fn table_prefix(table_id: i64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = b't';
    key[1..].copy_from_slice(&((table_id as u64) ^ (1 << 63)).to_be_bytes());
    key
}

/// A key's position inside its table: 0 at the table prefix, `2^64` at the next table's prefix,
/// the suffix value for `prefix ++ u64`. `None` for keys of any other shape.
fn key_position(table_id: i64, key: &[u8]) -> Option<u128> {
    let prefix = table_prefix(table_id);
    if key == prefix {
        return Some(0);
    }
    if key == table_prefix(table_id.wrapping_add(1)) {
        return Some(1 << 64);
    }
    let suffix: [u8; 8] = key.strip_prefix(&prefix[..])?.try_into().ok()?;
    Some(u128::from(u64::from_be_bytes(suffix)))
}

fn position_key(table_id: i64, position: u128) -> Key {
    let mut key = table_prefix(table_id).to_vec();
    // Callers only pass positions strictly inside the table, so the cast cannot truncate.
    key.extend_from_slice(&(position as u64).to_be_bytes());
    key.into()
}

fn end_after(end: &[u8], key: &[u8]) -> bool {
    end.is_empty() || key < end
}

impl Ord for TableSpan {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.keyspace_id, self.table_id, &self.start_key)
            .cmp(&(other.keyspace_id, other.table_id, &other.start_key))
            .then_with(|| match (self.end_key.is_empty(), other.end_key.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => self.end_key.cmp(&other.end_key),
            })
    }
}

impl PartialOrd for TableSpan {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for TableSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}[{}..", self.table_id, hex(&self.start_key))?;
        if self.end_key.is_empty() {
            f.write_str("∞)")
        } else {
            write!(f, "{})", hex(&self.end_key))
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64, a: &[u8], b: &[u8]) -> TableSpan {
        TableSpan::new(0, t, a.to_vec(), b.to_vec()).unwrap()
    }

    /// Keys up to the inline bound live in the value, longer ones are shared; either way a key
    /// is its bytes: equality, order and hash follow the bytes alone, at every length around
    /// the bound.
    #[test]
    fn keys_are_their_bytes_inline_or_shared() {
        use std::hash::BuildHasher;
        let hasher = rustc_hash::FxBuildHasher;
        let bytes: Vec<Vec<u8>> = (0..=INLINE_KEY_MAX + 3)
            .flat_map(|n| [vec![7u8; n], (0..n as u8).collect(), vec![0u8; n]])
            .collect();
        for a in &bytes {
            let ka = Key::from(a.clone());
            assert_eq!(ka.as_bytes(), &a[..]);
            assert_eq!(ka.is_inline(), a.len() <= INLINE_KEY_MAX, "{} bytes", a.len());
            assert_eq!(hasher.hash_one(&ka), hasher.hash_one(Key::new(a)));
            for b in &bytes {
                let kb = Key::from(&b[..]);
                assert_eq!(ka == kb, a == b, "{a:?} vs {b:?}");
                assert_eq!(ka.cmp(&kb), a.cmp(b), "{a:?} vs {b:?}");
            }
        }
        assert!(Key::EMPTY.is_empty());
        assert_eq!(Key::default(), Key::from(Vec::new()));
    }

    /// A shared key's copies each hold the allocation: dropping any of them, in any order, leaves
    /// the others' bytes whole (run under Miri in CI, which would see a use after free or a
    /// leak).
    #[test]
    fn shared_keys_count_their_copies() {
        let long: Vec<u8> = (0..40).collect();
        let first = Key::from(long.clone());
        assert!(!first.is_inline());
        let mut copies: Vec<Key> = (0..8).map(|_| first.clone()).collect();
        drop(first);
        while let Some(k) = copies.pop() {
            assert_eq!(k.as_bytes(), &long[..]);
            assert!(copies.iter().all(|c| *c == k));
        }
        let inline = Key::from(&long[..INLINE_KEY_MAX]);
        let copy = inline.clone();
        drop(inline);
        assert_eq!(copy.as_bytes(), &long[..INLINE_KEY_MAX]);
    }

    #[test]
    fn empty_ranges_are_refused() {
        assert!(TableSpan::new(0, 1, b"b".to_vec(), b"a".to_vec()).is_none());
        assert!(TableSpan::new(0, 1, b"a".to_vec(), b"a".to_vec()).is_none());
        assert!(TableSpan::new(0, 1, b"a".to_vec(), vec![]).is_some());
    }

    #[test]
    fn overlap_is_half_open_and_per_table() {
        assert!(s(1, b"a", b"m").overlaps(&s(1, b"l", b"z")));
        assert!(!s(1, b"a", b"m").overlaps(&s(1, b"m", b"z")));
        assert!(!s(1, b"a", b"m").overlaps(&s(2, b"a", b"m")));
        assert!(s(1, b"a", b"").overlaps(&s(1, b"x", b"y")));
        assert!(s(1, b"", b"").overlaps(&s(1, b"x", b"")));
    }

    #[test]
    fn adjacency_and_join() {
        let (a, b) = (s(1, b"a", b"m"), s(1, b"m", b"z"));
        assert!(a.is_followed_by(&b));
        assert!(!b.is_followed_by(&a));
        assert!(!a.is_followed_by(&s(2, b"m", b"z")));
        assert_eq!(a.joined_with(&b), s(1, b"a", b"z"));
    }

    #[test]
    fn whole_table_spans_tile_the_key_space_in_table_order() {
        let (a, b) = (TableSpan::whole_table(0, 41), TableSpan::whole_table(0, 42));
        assert_eq!(a.end_key, b.start_key);
        assert!(!a.is_followed_by(&b), "adjacency is within one table");
        assert!(a < b);
        assert!(TableSpan::whole_table(0, -1) < TableSpan::whole_table(0, 0));
        assert_eq!(TableSpan::whole_table(0, 0), TableSpan::table_trigger(0));
    }

    #[test]
    fn split_even_tiles_the_span_and_splits_again() {
        let whole = TableSpan::whole_table(0, 7);
        let parts = whole.split_even(3).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].start_key, whole.start_key);
        assert_eq!(parts[2].end_key, whole.end_key);
        assert!(parts.windows(2).all(|w| w[0].is_followed_by(&w[1]) && w[0] < w[1]));
        let again = parts[1].split_even(2).unwrap();
        assert!(again[0].is_followed_by(&again[1]));
        assert_eq!(again[0].joined_with(&again[1]), parts[1]);
        assert!(whole.split_even(1).is_none());
        assert!(s(7, b"a", b"b").split_even(2).is_none());
    }
}
