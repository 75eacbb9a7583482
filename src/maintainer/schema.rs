//! What the maintainer needs to know about the upstream schema: which tables are live at a
//! timestamp, and which DDL came after it.
//!
//! Bootstrap asks both questions: the snapshot at the recovered start ts and the DDL history after
//! it together say whether a reported dispatcher's table is live, was created after the start ts,
//! was dropped since, or is simply unknown. Unknown is never taken for dropped: that could remove
//! the dispatchers of a live table (C1).

use std::collections::BTreeMap;

use crate::ids::Ts;

/// A table as the schema knows it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TableInfo {
    /// Keyspace of the table.
    pub keyspace_id: u32,
    /// Table id (> 0).
    pub table_id: i64,
    /// Schema (database) id.
    pub schema_id: i64,
}

/// A DDL that creates or drops a table (truncate is a drop and a create at one commit ts).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Ddl {
    /// The table comes into existence.
    Create(TableInfo),
    /// The table is gone.
    Drop(TableInfo),
}

/// The two questions bootstrap asks of the upstream schema.
pub trait SchemaView {
    /// Every table live at `ts`.
    fn tables_at(&self, ts: Ts) -> Vec<TableInfo>;
    /// Every create/drop with commit ts > `ts`, in commit order.
    fn history_after(&self, ts: Ts) -> Vec<(Ts, Ddl)>;
    /// The commit ts of the table's drop, when a drop is the last create/drop at or before
    /// `until` the schema holds for it (a dispatcher may outlive its table's DROP: one started
    /// at the sink's last DDL ts already stands past it).
    fn last_drop(&self, keyspace_id: u32, table_id: i64, until: Ts) -> Option<Ts>;
}

/// Where a table stands at bootstrap, after the snapshot and the history after it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fate {
    /// Live now; `since` is the start ts for new dispatchers' records (its create ts if it was
    /// created after the snapshot, else the snapshot ts).
    Live {
        /// The table.
        info: TableInfo,
        /// Earliest ts a new dispatcher of it may start at.
        since: Ts,
    },
    /// Dropped at this commit ts, after the snapshot.
    Dropped(Ts),
}

/// The fate of every table live at `ts`: what a maintainer whose DDLs come through the barrier
/// starts from (every later DDL reaches it through its triggers). A table not live then is unknown.
pub fn snapshot_fates(view: &dyn SchemaView, ts: Ts) -> BTreeMap<(u32, i64), Fate> {
    view.tables_at(ts)
        .into_iter()
        .map(|info| ((info.keyspace_id, info.table_id), Fate::Live { info, since: ts }))
        .collect()
}

/// The fate of every table the snapshot at `ts` or the history after it mentions. A table in
/// neither is unknown: absent from the map.
pub fn fates(view: &dyn SchemaView, ts: Ts) -> BTreeMap<(u32, i64), Fate> {
    let mut fates = snapshot_fates(view, ts);
    for (commit_ts, ddl) in view.history_after(ts) {
        match ddl {
            Ddl::Create(info) => {
                fates
                    .insert((info.keyspace_id, info.table_id), Fate::Live { info, since: commit_ts.max(ts) });
            }
            Ddl::Drop(info) => {
                fates.insert((info.keyspace_id, info.table_id), Fate::Dropped(commit_ts));
            }
        }
    }
    fates
}

/// An in-memory schema: a list of DDL in commit order. Used by tests, benches and the simulator.
#[derive(Clone, Debug, Default)]
pub struct MemorySchema {
    events: Vec<(Ts, Ddl)>,
}

impl MemorySchema {
    /// An empty schema.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a DDL at `commit_ts` (commit ts must not go backwards).
    pub fn apply(&mut self, commit_ts: Ts, ddl: Ddl) {
        debug_assert!(self.events.last().is_none_or(|(t, _)| *t <= commit_ts));
        self.events.push((commit_ts, ddl));
    }
}

impl SchemaView for MemorySchema {
    fn tables_at(&self, ts: Ts) -> Vec<TableInfo> {
        let mut live = BTreeMap::new();
        for (commit_ts, ddl) in &self.events {
            if *commit_ts > ts {
                break;
            }
            match ddl {
                Ddl::Create(info) => {
                    live.insert((info.keyspace_id, info.table_id), *info);
                }
                Ddl::Drop(info) => {
                    live.remove(&(info.keyspace_id, info.table_id));
                }
            }
        }
        live.into_values().collect()
    }

    fn history_after(&self, ts: Ts) -> Vec<(Ts, Ddl)> {
        self.events.iter().filter(|(t, _)| *t > ts).copied().collect()
    }

    fn last_drop(&self, keyspace_id: u32, table_id: i64, until: Ts) -> Option<Ts> {
        self.events.iter().rev().filter(|(ts, _)| *ts <= until).find_map(|(ts, ddl)| match ddl {
            Ddl::Drop(t) if (t.keyspace_id, t.table_id) == (keyspace_id, table_id) => Some(Some(*ts)),
            Ddl::Create(t) if (t.keyspace_id, t.table_id) == (keyspace_id, table_id) => Some(None),
            _ => None,
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: i64) -> TableInfo {
        TableInfo { keyspace_id: 0, table_id: id, schema_id: 1 }
    }

    #[test]
    fn last_drop_is_the_drop_only_when_no_create_came_after_it_until_then() {
        let mut s = MemorySchema::new();
        s.apply(5, Ddl::Create(t(1)));
        s.apply(5, Ddl::Create(t(2)));
        s.apply(20, Ddl::Drop(t(1)));
        s.apply(30, Ddl::Drop(t(2)));
        s.apply(40, Ddl::Create(t(2)));
        assert_eq!(s.last_drop(0, 1, Ts::MAX), Some(20));
        assert_eq!(s.last_drop(0, 1, 19), None, "not dropped yet then");
        assert_eq!(s.last_drop(0, 2, Ts::MAX), None, "created again after its drop");
        assert_eq!(s.last_drop(0, 2, 35), Some(30), "dropped then, created again later");
        assert_eq!(s.last_drop(0, 3, Ts::MAX), None, "never known");
    }

    #[test]
    fn fates_tell_dropped_from_created_later_from_unknown() {
        let mut s = MemorySchema::new();
        s.apply(5, Ddl::Create(t(1)));
        s.apply(5, Ddl::Create(t(2)));
        s.apply(20, Ddl::Drop(t(1)));
        s.apply(30, Ddl::Create(t(3)));
        let f = fates(&s, 10);
        assert_eq!(f[&(0, 1)], Fate::Dropped(20));
        assert_eq!(f[&(0, 2)], Fate::Live { info: t(2), since: 10 });
        assert_eq!(f[&(0, 3)], Fate::Live { info: t(3), since: 30 });
        assert!(!f.contains_key(&(0, 4)), "a table nobody mentions is unknown, not dropped");
        assert_eq!(s.tables_at(25), vec![t(2)]);
    }
}
