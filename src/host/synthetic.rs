//! The built-in synthetic changefeed: tables `1..=N` of schema 1, each cut into `K` equal spans,
//! replicated by dispatchers that follow an upstream clock instead of a database. It lets a
//! cluster (and the simulator's coordinator world) run without one.

use super::DispatcherDriver;
use crate::ids::{ChangefeedId, DispatcherId, Mode, NodeId, Ts};
use crate::maintainer::manager::MaintainerFactory;
use crate::maintainer::{Ddl, Maintainer, MaintainerConfig, MemorySchema, TableInfo};
use crate::messages::AddMaintainer;

/// A synthetic changefeed's definition, stored as the changefeed's config:
/// `tables=N[,spans=K][,redo]`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SyntheticDefinition {
    /// Tables `1..=tables`.
    pub tables: i64,
    /// Equal spans each table is cut into when it is first placed (at least 1).
    pub spans_per_table: usize,
    /// Whether the redo mode runs too.
    pub redo: bool,
}

impl SyntheticDefinition {
    /// `tables` tables of one span, no redo.
    pub fn new(tables: i64) -> Self {
        SyntheticDefinition { tables, spans_per_table: 1, redo: false }
    }

    /// The config bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut s = format!("tables={}", self.tables);
        if self.spans_per_table != 1 {
            s.push_str(&format!(",spans={}", self.spans_per_table));
        }
        if self.redo {
            s.push_str(",redo");
        }
        s.into_bytes()
    }

    /// Reads config bytes; `None` when they are not a synthetic definition.
    pub fn decode(config: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(config).ok()?;
        let mut parts = text.split(',');
        let tables: i64 = parts.next()?.strip_prefix("tables=")?.parse().ok()?;
        let mut def = SyntheticDefinition::new(tables);
        for part in parts {
            match part {
                "redo" => def.redo = true,
                _ => def.spans_per_table = part.strip_prefix("spans=")?.parse().ok().filter(|k| *k >= 1)?,
            }
        }
        (tables >= 0).then_some(def)
    }
}

/// Builds maintainers for synthetic changefeeds: the tables are created at ts 1, so every start
/// checkpoint sees them all.
#[derive(Clone, Copy, Debug, Default)]
pub struct SyntheticFactory;

impl MaintainerFactory for SyntheticFactory {
    fn build(
        &mut self,
        add: &AddMaintainer,
        node: &NodeId,
        members: &[NodeId],
    ) -> Result<Maintainer, String> {
        let def = SyntheticDefinition::decode(&add.config).ok_or("config is not a synthetic definition")?;
        let mut schema = MemorySchema::new();
        let mut cfg =
            MaintainerConfig::new(add.changefeed.clone(), node.clone(), add.epoch, add.checkpoint_ts);
        for t in 1..=def.tables {
            schema.apply(1, Ddl::Create(TableInfo { keyspace_id: 0, table_id: t, schema_id: 1 }));
            if def.spans_per_table > 1 {
                cfg.table_spans.insert((0, t), def.spans_per_table);
            }
        }
        cfg.redo = def.redo;
        cfg.resend_ms = 500;
        cfg.bootstrap_resend_ms = 500;
        Ok(Maintainer::new(cfg, Box::new(schema), members))
    }
}

/// Dispatchers that open and close at once and have replicated up to `origin + now` at every
/// moment: the simulator's upstream clock, with `now` its simulated milliseconds.
#[derive(Clone, Copy, Debug)]
pub struct SyntheticDispatchers {
    /// The upstream ts at time 0.
    pub origin: Ts,
}

impl DispatcherDriver for SyntheticDispatchers {
    fn open(
        &mut self,
        _: &ChangefeedId,
        _: Mode,
        _: DispatcherId,
        _: &crate::span::TableSpan,
        _: Ts,
    ) -> Result<(), String> {
        Ok(())
    }

    fn progress(&mut self, _: &ChangefeedId, _: Mode, _: DispatcherId, now_ms: u64) -> Ts {
        self.origin + now_ms
    }

    fn close(&mut self, _: &ChangefeedId, _: Mode, _: DispatcherId, now_ms: u64) -> Ts {
        self.origin + now_ms
    }
}
