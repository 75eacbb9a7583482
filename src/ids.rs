//! Identities: dispatchers, changefeeds, nodes, maintainer epochs and replication modes.

use std::fmt;
use std::sync::Arc;

/// A dispatcher's 128-bit identity. Never zero: the wire boundary refuses the all-zero id.
///
/// Maps key on the full 128-bit value (the reference system's decimal string key is not
/// injective, hazard R8).
///
/// Kept as two 64-bit halves rather than a `u128`: the same order and hash, but 8-byte
/// alignment, so the records and journal entries that embed one carry no padding for it
/// (issue 16: 16 bytes per in-flight dispatcher).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DispatcherId {
    // Field order is the order: high half first, as the 128-bit value compares.
    high: u64,
    low: u64,
}

impl DispatcherId {
    /// The smallest valid id (for range bounds).
    pub const MIN: DispatcherId = DispatcherId { high: 0, low: 1 };

    /// The id made of the wire halves, or `None` for the invalid all-zero id.
    pub fn new(high: u64, low: u64) -> Option<Self> {
        (high != 0 || low != 0).then_some(Self { high, low })
    }

    /// The high 64 bits as carried on the wire.
    pub fn high(self) -> u64 {
        self.high
    }

    /// The low 64 bits as carried on the wire.
    pub fn low(self) -> u64 {
        self.low
    }
}

impl std::hash::Hash for DispatcherId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As the 128-bit value hashes, so maps keyed by ids iterate as they always did.
        state.write_u128((u128::from(self.high) << 64) | u128::from(self.low));
    }
}

impl fmt::Debug for DispatcherId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "d{:x}.{:x}", self.high(), self.low())
    }
}

impl fmt::Display for DispatcherId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A `HashMap` keyed by ids, hashed by rustc-hash's Fx: fast, and deterministic, so iteration order
/// depends only on the insertion history and a simulated run replays exactly. Not for keys an
/// adversary chooses to collide: the keys are the maintainer's own ids and table keys (the hasher
/// comparison is in BENCHMARKS.md, `id_hashers_1m`).
pub type IdMap<K, V> = std::collections::HashMap<K, V, rustc_hash::FxBuildHasher>;

/// A `HashSet` of ids, hashed like [`IdMap`].
pub type IdSet<K> = std::collections::HashSet<K, rustc_hash::FxBuildHasher>;

/// A changefeed's identity. Routing uses `(high, low)` only; name and keyspace are informational.
#[derive(Clone, Default, PartialEq, Eq, Hash, Debug)]
pub struct ChangefeedId {
    /// High half of the global id.
    pub high: u64,
    /// Low half of the global id.
    pub low: u64,
    /// Human-readable name.
    pub name: String,
    /// Keyspace name.
    pub keyspace: String,
}

impl ChangefeedId {
    /// The routing key: the 128-bit global id.
    pub fn gid(&self) -> u128 {
        (u128::from(self.high) << 64) | u128::from(self.low)
    }
}

/// Replication mode. The two modes have independent spans, dispatchers and operators.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Mode {
    /// Normal replication to the downstream sink (wire value 0).
    Default,
    /// Redo-log replication (wire value 1).
    Redo,
}

impl Mode {
    /// The wire value (`int64` on the wire).
    pub fn as_i64(self) -> i64 {
        match self {
            Mode::Default => 0,
            Mode::Redo => 1,
        }
    }

    /// The mode for a wire value, `None` for any other value.
    pub fn from_i64(v: i64) -> Option<Self> {
        match v {
            0 => Some(Mode::Default),
            1 => Some(Mode::Redo),
            _ => None,
        }
    }

    /// Both modes, in wire order.
    pub const ALL: [Mode; 2] = [Mode::Default, Mode::Redo];
}

/// A maintainer epoch. Zero is legal and means "compatibility mode" (a pre-epoch peer).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Epoch(pub u64);

impl Epoch {
    /// The compatibility epoch.
    pub const COMPAT: Epoch = Epoch(0);
}

/// A node (server) identity as carried by the transport envelope.
#[derive(Clone, Eq, PartialOrd, Ord)]
pub struct NodeId(Arc<str>);

impl std::hash::Hash for NodeId {
    /// The string's hash, as equality compares strings.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl NodeId {
    /// Whether both are clones of one id (the same allocation): a check without comparing
    /// strings, for caches of ids seen.
    pub fn same_handle(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl PartialEq for NodeId {
    /// Two ids are equal when their strings are; clones of one id skip the comparison.
    fn eq(&self, other: &Self) -> bool {
        self.same_handle(other) || *self.0 == *other.0
    }
}

impl NodeId {
    /// A node id from its string form.
    pub fn new(id: &str) -> Self {
        Self(Arc::from(id))
    }

    /// The string form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A timestamp (TiDB TSO) in the upstream's time.
pub type Ts = u64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatcher_id_halves_round_trip_and_zero_is_refused() {
        let id = DispatcherId::new(23, 1).unwrap();
        assert_eq!((id.high(), id.low()), (23, 1));
        assert!(DispatcherId::new(0, 0).is_none());
        // Hazard R8: the reference key "low ++ high" collides for these two; ours does not.
        assert_ne!(DispatcherId::new(23, 1), DispatcherId::new(3, 12));
    }

    #[test]
    fn mode_wire_values() {
        for m in Mode::ALL {
            assert_eq!(Mode::from_i64(m.as_i64()), Some(m));
        }
        assert_eq!(Mode::from_i64(2), None);
        assert_eq!(Mode::from_i64(-1), None);
    }
}
