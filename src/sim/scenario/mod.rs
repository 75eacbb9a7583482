//! Scenario files: the input of `dispatcher-core sim`.
//!
//! A scenario sets up a simulated cluster, drives it through a timeline of operations and faults,
//! and states what must hold. The verbs, fields and defaults are a public contract (the
//! scenario-format document); this module holds the typed model, `load.rs` turns a file into a
//! validated [`Scenario`] (the `toml` crate parses, with spans, so every error names a line) and
//! `write.rs` turns one back into a file.
//!
//! ## Errors
//!
//! A file either loads completely or yields one [`ScenarioError`] naming the file, the 1-based line
//! and the field, displayed as `file:line: field: message`. The line is the one holding the
//! offending field, or the section's header (line 1 for the top level) when a required field is
//! missing. TOML syntax errors name the field `syntax`. Bad input never panics.
//!
//! Integers may go up to `u64::MAX` (one more bit than TOML's `i64`: the loader reads the digits
//! itself) so that every `seed` can be written down. A number field (a rate, a fraction, a ratio)
//! takes a TOML integer or float, read into a [`Num`]; NaN and the infinities are refused.
//!
//! ## Round trip
//!
//! [`to_toml`] writes a valid scenario in a canonical layout that [`parse`] reads back to an equal
//! value; the simulator's shrinker saves reproducers with it. [`Step::line`] records where a step
//! was read from and is not part of a step's identity: equality ignores it (as a compiler's token
//! equality ignores spans), so a shrunk scenario still equals its reloaded reproducer.

mod load;
#[cfg(test)]
mod tests;
mod write;

pub use load::parse;
pub use write::to_toml;

use crate::ids::Mode;
use crate::messages::MessageKind;

pub use super::coverage::Phase;

/// The message kinds this simulator sends: a `kind` field names one of them. A fault on any
/// other kind would match nothing, so naming one is a load error (/// changefeed close requests have no scenario verb).
pub const TRAVELLING_KINDS: [MessageKind; 9] = [
    MessageKind::ScheduleDispatcherRequest,
    MessageKind::MergeDispatcherRequest,
    MessageKind::HeartBeatRequest,
    MessageKind::MaintainerBootstrapRequest,
    MessageKind::MaintainerBootstrapResponse,
    MessageKind::MaintainerPostBootstrapRequest,
    MessageKind::MaintainerPostBootstrapResponse,
    MessageKind::BlockStatusRequest,
    MessageKind::HeartBeatResponse,
];

/// The most spans a table may start with or a split may produce: a limit on what one line of a
/// scenario can make the simulator allocate.
pub const SPANS_MAX: usize = 4096;

/// `run_until`'s `max_ms` when the step does not give one.
pub const RUN_UNTIL_MAX_MS_DEFAULT: u64 = 5_000;

/// `settle`'s `max_ms` when the step does not give one.
pub const SETTLE_MAX_MS_DEFAULT: u64 = 120_000;

/// `expect_balanced`'s `max_over_mean` when the step does not give one.
pub const MAX_OVER_MEAN_DEFAULT: Num = Num(1.25);

/// A finite number read from a scenario file (a TOML integer or float), compared by its bits so
/// that a [`Scenario`] keeps a total equality: the round trip and the shrinker compare scenarios
/// with `==`. The loader never yields NaN, an infinity or `-0.0` (it reads `-0.0` as `0.0`), so
/// for the values it yields this is the usual numeric equality.
#[derive(Clone, Copy, Debug, Default)]
pub struct Num(pub f64);

impl Num {
    /// The value.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl PartialEq for Num {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Num {}

impl std::fmt::Display for Num {
    /// The shortest form that reads back to the same `f64` (`1.0`, `0.25`, `1e-7`), which is
    /// also a TOML float.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Whose rules the load-driven schedulers follow (`[scheduler]`'s `rules`, our own field).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Rules {
    /// Our damping rules (`"ours"`, the default).
    #[default]
    Ours,
    /// The reference system's rules (`"reference"`), to benchmark ours against.
    Reference,
}

impl Rules {
    /// The name used in scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            Rules::Ours => "ours",
            Rules::Reference => "reference",
        }
    }
}

/// The `[scheduler]` table: the reference's per-changefeed scheduler settings under its names
/// (`enable-table-across-nodes`, ...), plus `check-balance-interval-ms` and our `rules`. Values
/// are kept as written; normalising them (such as raising a small `write_key_threshold`) is the
/// scheduler's job. [`Default`] gives the reference's defaults.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SchedulerSpec {
    /// `enable-table-across-nodes`: whether tables may be split across nodes (the splitter, the
    /// split checkers and the balance-split scheduler run). Default false.
    pub enable_table_across_nodes: bool,
    /// `region-threshold`: a table with at least this many regions is split by region count;
    /// 0 disables region checks. Default 10000.
    pub region_threshold: u64,
    /// `region-count-per-span`: the most regions per span when splitting by region count, >= 1.
    /// Default 100.
    pub region_count_per_span: u64,
    /// `write-key-threshold`: the write rate in bytes/s above which a span is split by traffic;
    /// 0 disables traffic split. Positive values below 10485760 are kept here as written (the
    /// scheduler raises them). Default 0.
    pub write_key_threshold: u64,
    /// `balance-score-threshold`: consecutive imbalanced rounds before a traffic-balance action,
    /// >= 1. Default 20.
    pub balance_score_threshold: u64,
    /// `min-traffic-percentage`: the least-loaded node's imbalance factor, in (0, 1). Default 0.8.
    pub min_traffic_percentage: Num,
    /// `max-traffic-percentage`: the most-loaded node's imbalance factor, > 1. Default 1.25.
    pub max_traffic_percentage: Num,
    /// `check-balance-interval-ms`: the period of the balance checks in simulated milliseconds,
    /// > 0. Default 15000.
    pub check_balance_interval_ms: u64,
    /// `rules`: ours or the reference's. Default [`Rules::Ours`].
    pub rules: Rules,
}

impl Default for SchedulerSpec {
    fn default() -> Self {
        SchedulerSpec {
            enable_table_across_nodes: false,
            region_threshold: 10_000,
            region_count_per_span: 100,
            write_key_threshold: 0,
            balance_score_threshold: 20,
            min_traffic_percentage: Num(0.8),
            max_traffic_percentage: Num(1.25),
            check_balance_interval_ms: 15_000,
            rules: Rules::Ours,
        }
    }
}

/// A loaded, validated scenario.
///
/// ```
/// use dispatcher_core::sim::scenario::{parse, Verb};
///
/// let s = parse("nodes = [\"n1\", \"n2\"]\n[[steps]]\ndo = \"crash_node\"\nnode = \"n2\"\n", "dir/crash.toml")?;
/// assert_eq!(s.name, "crash");
/// assert_eq!(s.maintainer, "n1");
/// assert_eq!(s.steps[0].line, 2);
/// assert_eq!(s.steps[0].verb, Verb::CrashNode { node: "n2".into() });
/// # Ok::<(), dispatcher_core::sim::scenario::ScenarioError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Scenario {
    /// Shown in reports; defaults to the file stem.
    pub name: String,
    /// The node ids, in declaration order: at least one, distinct, none empty.
    pub nodes: Vec<String>,
    /// The node where the first maintainer (epoch 1) runs; one of `nodes`, default `nodes[0]`.
    pub maintainer: String,
    /// Whether every table is also replicated in redo mode.
    pub redo: bool,
    /// Whether the balance scheduler may move spans on its own.
    pub balance: bool,
    /// Seeds message latency jitter and every other random choice.
    pub seed: u64,
    /// Every default-mode dispatcher meets a syncpoint at each multiple of this in upstream time
    /// (0: no syncpoints).
    pub syncpoint_interval_ms: u64,
    /// The `[scheduler]` table, defaults where the file gives none.
    pub scheduler: SchedulerSpec,
    /// The tables that exist when the changefeed starts, ids distinct.
    pub tables: Vec<TableSpec>,
    /// The timeline, run in order.
    pub steps: Vec<Step>,
}

/// A table that exists when the changefeed starts.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TableSpec {
    /// The table id, > 0.
    pub id: i64,
    /// Into how many equal spans the table's key range is cut: 1 ..= [`SPANS_MAX`], default 1.
    pub spans: usize,
    /// Its schema (database) id, >= 1, default 1.
    pub schema: i64,
    /// How many equal-width regions the upstream has for it, >= 1, default 1.
    pub regions: u64,
    /// Its write rate in bytes/s, spread evenly over its key range: >= 0, default 0.
    pub bytes_per_s: Num,
}

/// One step of the timeline.
///
/// Equality compares the verb only: `line` is provenance (see the module docs).
#[derive(Clone, Debug)]
pub struct Step {
    /// The 1-based line of the step's `[[steps]]` header, for reports.
    pub line: usize,
    /// What the step does.
    pub verb: Verb,
}

impl PartialEq for Step {
    fn eq(&self, other: &Self) -> bool {
        self.verb == other.verb
    }
}

impl Eq for Step {}

/// Which dispatcher work a failpoint holds back.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum What {
    /// Dispatcher creation, after the request is journaled.
    Create,
    /// Dispatcher closing.
    Close,
    /// The writer's downstream write of a block event (DDL or syncpoint).
    Write,
}

impl What {
    /// The name used in scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            What::Create => "create",
            What::Close => "close",
            What::Write => "write",
        }
    }
}

/// A step's verb with its fields, defaults applied.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Verb {
    /// `run`: advance simulated time.
    Run {
        /// How long, in simulated milliseconds.
        ms: u64,
    },
    /// `run_until`: advance simulated time until some operator is in `phase` (checked after every
    /// event), or `max_ms` passed; reaching it or not is not a failure. The next step then strikes
    /// at that moment: a fault at a chosen phase, the way failpoints do in an integration test.
    RunUntil {
        /// The phase waited for.
        phase: Phase,
        /// The time limit in simulated milliseconds, default [`RUN_UNTIL_MAX_MS_DEFAULT`].
        max_ms: u64,
    },
    /// `settle`: run until quiescent; fails if that takes longer than `max_ms`.
    Settle {
        /// The time limit in simulated milliseconds, default [`SETTLE_MAX_MS_DEFAULT`].
        max_ms: u64,
    },
    /// `move`: ask the maintainer to move span(s) of a table to a node.
    Move {
        /// The table id.
        table: i64,
        /// The 0-based span index in key order; `None` means every span of the table.
        span: Option<usize>,
        /// The destination node.
        to: String,
        /// The replication mode.
        mode: Mode,
    },
    /// `split`: ask the maintainer to split span(s) into equal parts.
    Split {
        /// The table id.
        table: i64,
        /// The 0-based span index in key order; `None` means every span of the table.
        span: Option<usize>,
        /// Into how many spans: 2 ..= [`SPANS_MAX`], default 2.
        into: usize,
        /// The replication mode.
        mode: Mode,
    },
    /// `merge`: ask the maintainer to merge adjacent spans that sit on one node.
    Merge {
        /// The table id.
        table: i64,
        /// Two or more adjacent span indices in increasing order, default `[0, 1]`.
        spans: Vec<usize>,
        /// The replication mode.
        mode: Mode,
    },
    /// `create_table`: a CREATE TABLE reaches the changefeed.
    CreateTable {
        /// The new table's id.
        table: i64,
        /// Its number of equal spans, 1 ..= [`SPANS_MAX`], default 1.
        spans: usize,
    },
    /// `drop_table`: a DROP TABLE reaches the changefeed.
    DropTable {
        /// The dropped table's id.
        table: i64,
    },
    /// `truncate_table`: `table` is dropped and `new_table` created in one DDL.
    TruncateTable {
        /// The truncated table's id.
        table: i64,
        /// The id of the table that replaces it (differs from `table`).
        new_table: i64,
    },
    /// `block`: a failpoint holds back dispatcher creation or closing on a node.
    Block {
        /// The node.
        node: String,
        /// The work held back.
        what: What,
    },
    /// `unblock`: lift a failpoint; the blocked work completes.
    Unblock {
        /// The node.
        node: String,
        /// The work released.
        what: What,
    },
    /// `crash_node`: the node dies with all its state.
    CrashNode {
        /// The node.
        node: String,
    },
    /// `restart_node`: a crashed node comes back empty and rejoins.
    RestartNode {
        /// The node.
        node: String,
    },
    /// `crash_maintainer`: the node hosting the current maintainer dies.
    CrashMaintainer,
    /// `move_maintainer`: maintainer ownership moves with the next epoch.
    MoveMaintainer {
        /// The new maintainer's node.
        to: String,
    },
    /// `partition`: cut every link between these nodes and the rest.
    Partition {
        /// One side of the cut: distinct, at least one.
        nodes: Vec<String>,
    },
    /// `heal`: restore all links.
    Heal,
    /// `delay_messages`: hold matching messages back.
    DelayMessages {
        /// One of [`TRAVELLING_KINDS`]; `None` matches every kind.
        kind: Option<MessageKind>,
        /// The sending node; `None` matches any.
        from: Option<String>,
        /// The receiving node; `None` matches any.
        to: Option<String>,
        /// The delay in simulated milliseconds.
        ms: u64,
        /// How many messages (>= 1); `None` means every one until `heal_messages`.
        count: Option<u32>,
    },
    /// `drop_messages`: lose matching messages.
    DropMessages {
        /// One of [`TRAVELLING_KINDS`]; `None` matches every kind.
        kind: Option<MessageKind>,
        /// The sending node; `None` matches any.
        from: Option<String>,
        /// The receiving node; `None` matches any.
        to: Option<String>,
        /// How many messages, >= 1, default 1.
        count: u32,
    },
    /// `duplicate_messages`: deliver matching messages twice.
    DuplicateMessages {
        /// One of [`TRAVELLING_KINDS`]; `None` matches every kind.
        kind: Option<MessageKind>,
        /// The sending node; `None` matches any.
        from: Option<String>,
        /// The receiving node; `None` matches any.
        to: Option<String>,
        /// How many messages, >= 1, default 1.
        count: u32,
    },
    /// `heal_messages`: end all message faults.
    HealMessages,
    /// `expect`: the table has exactly `replicas` Working dispatchers in `mode` across live nodes.
    Expect {
        /// The table id.
        table: i64,
        /// The exact number of Working dispatchers.
        replicas: usize,
        /// The replication mode.
        mode: Mode,
        /// If given, every one of them is on this node.
        on: Option<String>,
    },
    /// `expect_dropped`: no dispatcher of the table exists and the maintainer tracks none of it.
    ExpectDropped {
        /// The table id.
        table: i64,
    },
    /// `alter_table`: a single-table DDL (blocking when the table is split, local otherwise).
    AlterTable {
        /// The table id.
        table: i64,
    },
    /// `rename_table`: the table's id changes (`table` dropped, `new_table` added) in one DDL.
    RenameTable {
        /// The renamed table's id.
        table: i64,
        /// Its new id (differs from `table`).
        new_table: i64,
        /// The new table's schema; `None`: the table's.
        schema: Option<i64>,
    },
    /// `drop_database`: every table of the schema dropped in one DB-level DDL.
    DropDatabase {
        /// The schema id.
        schema: i64,
    },
    /// `alter_database`: a DB-level DDL that changes no table set.
    AlterDatabase {
        /// The schema id.
        schema: i64,
    },
    /// `create_view`: an All-level DDL.
    CreateView,
    /// `expect_ddl`: that DDL was written downstream exactly `written` times, and every
    /// dispatcher it affected has passed it.
    ExpectDdl {
        /// Which DDL.
        at: DdlRef,
        /// How many times it was applied downstream, default 1.
        written: usize,
    },
    /// `set_load`: from now on the part `[from, to)` of the table's key range is written at
    /// `bytes_per_s` in total, evenly over that part; the rest of the table keeps its rate.
    SetLoad {
        /// The table id.
        table: i64,
        /// The total rate of that part in bytes/s, >= 0.
        bytes_per_s: Num,
        /// Where the part starts, as a fraction of the key range: in [0, 1), default 0.
        from: Num,
        /// Where it ends (exclusive): in (`from`, 1], default 1.
        to: Num,
    },
    /// `set_regions`: the upstream now has `count` equal regions for the table.
    SetRegions {
        /// The table id.
        table: i64,
        /// The number of regions, >= 1.
        count: u64,
    },
    /// `expect_spans`: the table has between `min` and `max` spans (inclusive) in `mode`.
    ExpectSpans {
        /// The table id.
        table: i64,
        /// The replication mode.
        mode: Mode,
        /// The fewest spans.
        min: usize,
        /// The most spans, >= `min`.
        max: usize,
    },
    /// `expect_balanced`: over alive nodes, the largest node's share of traffic (of `table`, or
    /// of all tables) is at most `max_over_mean` times the mean.
    ExpectBalanced {
        /// The bound, >= 1, default [`MAX_OVER_MEAN_DEFAULT`].
        max_over_mean: Num,
        /// The table id; `None`: all tables.
        table: Option<i64>,
    },
    /// `expect_quiet`: run `ms`; fails if a split, merge or move that the schedulers started on
    /// their own (not a user's request, not a failover repair) begins during it.
    ExpectQuiet {
        /// How long, in simulated milliseconds, > 0.
        ms: u64,
    },
}

/// Which DDL step an `expect_ddl` names.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DdlRef {
    /// The most recent DDL step.
    Last,
    /// The DDL step with this 0-based index in `[[steps]]`.
    Step(usize),
}

impl Verb {
    /// Whether the verb issues a DDL.
    pub fn is_ddl(&self) -> bool {
        matches!(
            self,
            Verb::CreateTable { .. }
                | Verb::DropTable { .. }
                | Verb::TruncateTable { .. }
                | Verb::AlterTable { .. }
                | Verb::RenameTable { .. }
                | Verb::DropDatabase { .. }
                | Verb::AlterDatabase { .. }
                | Verb::CreateView
        )
    }
}

impl Verb {
    /// Every verb's name as written in `do = "..."`, in the contract's order.
    pub const NAMES: [&'static str; 34] = [
        "run",
        "run_until",
        "settle",
        "move",
        "split",
        "merge",
        "create_table",
        "drop_table",
        "truncate_table",
        "block",
        "unblock",
        "crash_node",
        "restart_node",
        "crash_maintainer",
        "move_maintainer",
        "partition",
        "heal",
        "delay_messages",
        "drop_messages",
        "duplicate_messages",
        "heal_messages",
        "expect",
        "expect_dropped",
        "alter_table",
        "rename_table",
        "drop_database",
        "alter_database",
        "create_view",
        "expect_ddl",
        "set_load",
        "set_regions",
        "expect_spans",
        "expect_balanced",
        "expect_quiet",
    ];

    /// The verb's name as written in `do = "..."`.
    pub fn name(&self) -> &'static str {
        match self {
            Verb::Run { .. } => "run",
            Verb::RunUntil { .. } => "run_until",
            Verb::Settle { .. } => "settle",
            Verb::Move { .. } => "move",
            Verb::Split { .. } => "split",
            Verb::Merge { .. } => "merge",
            Verb::CreateTable { .. } => "create_table",
            Verb::DropTable { .. } => "drop_table",
            Verb::TruncateTable { .. } => "truncate_table",
            Verb::Block { .. } => "block",
            Verb::Unblock { .. } => "unblock",
            Verb::CrashNode { .. } => "crash_node",
            Verb::RestartNode { .. } => "restart_node",
            Verb::CrashMaintainer => "crash_maintainer",
            Verb::MoveMaintainer { .. } => "move_maintainer",
            Verb::Partition { .. } => "partition",
            Verb::Heal => "heal",
            Verb::DelayMessages { .. } => "delay_messages",
            Verb::DropMessages { .. } => "drop_messages",
            Verb::DuplicateMessages { .. } => "duplicate_messages",
            Verb::HealMessages => "heal_messages",
            Verb::Expect { .. } => "expect",
            Verb::ExpectDropped { .. } => "expect_dropped",
            Verb::AlterTable { .. } => "alter_table",
            Verb::RenameTable { .. } => "rename_table",
            Verb::DropDatabase { .. } => "drop_database",
            Verb::AlterDatabase { .. } => "alter_database",
            Verb::CreateView => "create_view",
            Verb::ExpectDdl { .. } => "expect_ddl",
            Verb::SetLoad { .. } => "set_load",
            Verb::SetRegions { .. } => "set_regions",
            Verb::ExpectSpans { .. } => "expect_spans",
            Verb::ExpectBalanced { .. } => "expect_balanced",
            Verb::ExpectQuiet { .. } => "expect_quiet",
        }
    }
}

/// Why a scenario file could not be loaded. Displayed as `file:line: field: message`.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("{file}:{line}: {field}: {message}")]
pub struct ScenarioError {
    /// The file, as passed to [`parse`].
    pub file: String,
    /// The 1-based line.
    pub line: usize,
    /// The offending field (`syntax` for a syntax error that belongs to no key).
    pub field: String,
    /// What is wrong.
    pub message: String,
}
