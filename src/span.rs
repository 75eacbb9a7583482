//! Table spans: half-open key ranges of one table, their order, overlap and adjacency.

use std::cmp::Ordering;
use std::fmt;

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
    pub start_key: Vec<u8>,
    /// Exclusive end key; empty = unbounded.
    pub end_key: Vec<u8>,
}

impl TableSpan {
    /// A span; `None` if it would be empty (`start_key >= end_key` with a bounded end).
    pub fn new(keyspace_id: u32, table_id: i64, start_key: Vec<u8>, end_key: Vec<u8>) -> Option<Self> {
        let span = Self { keyspace_id, table_id, start_key, end_key };
        span.is_valid().then_some(span)
    }

    /// The span of a keyspace's table trigger (DDL) dispatcher: table 0, from the record prefix of
    /// table 0 to that of table 1 in TiDB's memcomparable key encoding.
    pub fn table_trigger(keyspace_id: u32) -> Self {
        const TABLE_0: [u8; 9] = [b't', 0x80, 0, 0, 0, 0, 0, 0, 0];
        const TABLE_1: [u8; 9] = [b't', 0x80, 0, 0, 0, 0, 0, 0, 1];
        Self { keyspace_id, table_id: 0, start_key: TABLE_0.to_vec(), end_key: TABLE_1.to_vec() }
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
}
