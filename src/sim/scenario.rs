//! Scenario files: the input of `dispatcher-core sim`.
//!
//! A scenario sets up a simulated cluster, drives it through a timeline of operations and faults,
//! and states what must hold. The verbs, fields and defaults are a public contract
//! (`shared/scenario-format.md`); this module turns a file into a validated [`Scenario`] and back.
//!
//! ## The TOML subset
//!
//! The loader has its own small parser (no dependency, and it keeps line numbers). It reads:
//! comments (`#`), blank lines, `key = value` with bare keys, `[[tables]]` and `[[steps]]`
//! array-of-tables headers, and the values: basic strings `"..."` (escapes `\" \\ \n \t \r \b \f
//! \uXXXX \UXXXXXXXX`), literal strings `'...'`, integers (optional sign, `_` between digits),
//! booleans, and arrays of those (they may span lines, hold comments and end with a comma). Every
//! other TOML construct — `[table]` headers, floats, dates, inline tables, dotted or quoted keys,
//! multi-line strings, nested arrays, hex/octal/binary integers, a key set twice in one table — is
//! an error naming its line, never a silent misreading.
//!
//! Integers may go up to `u64::MAX` (one more bit than TOML's `i64`) so that every `seed` can be
//! written down.
//!
//! ## Errors
//!
//! A file either loads completely or yields one [`ScenarioError`] naming the file, the 1-based line
//! and the field, displayed as `file:line: field: message`. The line is the one holding the
//! offending field, or the section's header (line 1 for the top level) when a required field is
//! missing. Syntax errors that belong to no key name the field `syntax`. Bad input never panics.
//!
//! ## Round trip
//!
//! [`to_toml`] writes a valid scenario in a canonical layout that [`parse`] reads back to an equal
//! value; the simulator's shrinker saves reproducers with it. [`Step::line`] records where a step
//! was read from and is not part of a step's identity: equality ignores it (as a compiler's token
//! equality ignores spans), so a shrunk scenario still equals its reloaded reproducer.

use std::collections::BTreeMap;

use crate::ids::Mode;
use crate::messages::MessageKind;

pub use super::coverage::Phase;

/// The message kinds this simulator sends: a `kind` field names one of them. A fault on any
/// other kind would match nothing, so naming one is a load error (heartbeat responses and block
/// statuses arrive with the barrier; changefeed close requests have no scenario verb).
pub const TRAVELLING_KINDS: [MessageKind; 7] = [
    MessageKind::ScheduleDispatcherRequest,
    MessageKind::MergeDispatcherRequest,
    MessageKind::HeartBeatRequest,
    MessageKind::MaintainerBootstrapRequest,
    MessageKind::MaintainerBootstrapResponse,
    MessageKind::MaintainerPostBootstrapRequest,
    MessageKind::MaintainerPostBootstrapResponse,
];

/// The most spans a table may start with or a split may produce: a limit on what one line of a
/// scenario can make the simulator allocate.
pub const SPANS_MAX: usize = 4096;

/// `run_until`'s `max_ms` when the step does not give one.
pub const RUN_UNTIL_MAX_MS_DEFAULT: u64 = 5_000;

/// `settle`'s `max_ms` when the step does not give one.
pub const SETTLE_MAX_MS_DEFAULT: u64 = 120_000;

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
}

impl What {
    /// The name used in scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            What::Create => "create",
            What::Close => "close",
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
}

impl Verb {
    /// Every verb's name as written in `do = "..."`, in the contract's order.
    pub const NAMES: [&'static str; 23] = [
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

/// Parses and validates a scenario file. `file` is only used in errors and for the default `name`
/// (the file stem).
pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
    let doc = toml::parse(text).map_err(|e| ScenarioError {
        file: file.to_owned(),
        line: e.line,
        field: e.field,
        message: e.message,
    })?;
    load(&doc, file)
}

/// Writes a valid scenario as a file that [`parse`] reads back to an equal [`Scenario`]: the top
/// level in full, then the tables, then the steps, each step's fields in the contract's order and
/// left out where they hold their default.
pub fn to_toml(s: &Scenario) -> String {
    let mut w = Writer::default();
    w.field("name", quote(&s.name));
    w.field("nodes", string_array(&s.nodes));
    w.field("maintainer", quote(&s.maintainer));
    w.field("redo", s.redo);
    w.field("balance", s.balance);
    w.field("seed", s.seed);
    for t in &s.tables {
        w.header("tables");
        w.field("id", t.id);
        w.field_unless("spans", t.spans, 1);
    }
    for step in &s.steps {
        w.header("steps");
        w.field("do", quote(step.verb.name()));
        write_verb(&mut w, &step.verb);
    }
    w.out
}

// ---------------------------------------------------------------------------------------------
// Loading: the parsed document into typed, validated values.

fn load(doc: &toml::Doc, file: &str) -> Result<Scenario, ScenarioError> {
    let top = Fields { file, section: &doc.top };
    for e in &top.section.entries {
        if !TOP_KEYS.contains(&e.key.as_str()) {
            let message = if matches!(e.key.as_str(), "tables" | "steps") {
                format!("write `[[{}]]` sections instead of a `{}` key", e.key, e.key)
            } else {
                format!("unknown top-level key (expected one of: {})", TOP_KEYS.join(", "))
            };
            return Err(top.err(e.line, &e.key, message));
        }
    }

    let nodes = top.required("nodes", top.strings("nodes")?)?;
    if nodes.is_empty() {
        return Err(top.fail("nodes", "at least one node is required"));
    }
    for (i, n) in nodes.iter().enumerate() {
        if n.is_empty() {
            return Err(top.fail("nodes", "a node id must not be empty"));
        }
        if nodes[..i].contains(n) {
            return Err(top.fail("nodes", format!("node `{n}` is listed twice")));
        }
    }
    let maintainer = match top.node("maintainer", &nodes)? {
        Some(m) => m,
        None => nodes[0].clone(),
    };
    let name = match top.string("name")? {
        Some(n) => n.to_owned(),
        None => file_stem(file),
    };
    let redo = top.boolean("redo")?.unwrap_or(false);
    let balance = top.boolean("balance")?.unwrap_or(false);
    let seed = top.bounded("seed", 0, u64::MAX.into())?.unwrap_or(0);

    let mut tables = Vec::with_capacity(doc.tables.len());
    let mut declared: BTreeMap<i64, usize> = BTreeMap::new();
    for section in &doc.tables {
        let f = Fields { file, section };
        f.known(&["id", "spans"], "[[tables]]")?;
        let id = f.required("id", f.table("id")?)?;
        if let Some(first) = declared.insert(id, f.line_of("id")) {
            return Err(f.fail("id", format!("table {id} is already declared on line {first}")));
        }
        let spans = f.spans("spans")?.unwrap_or(1);
        tables.push(TableSpec { id, spans });
    }

    let mut steps = Vec::with_capacity(doc.steps.len());
    for section in &doc.steps {
        let f = Fields { file, section };
        steps.push(Step { line: section.line, verb: step_verb(&f, &nodes)? });
    }

    Ok(Scenario { name, nodes, maintainer, redo, balance, seed, tables, steps })
}

const TOP_KEYS: [&str; 6] = ["name", "nodes", "maintainer", "redo", "balance", "seed"];

const MESSAGE_FAULT: [&str; 4] = ["kind", "from", "to", "count"];

fn step_verb(f: &Fields<'_>, nodes: &[String]) -> Result<Verb, ScenarioError> {
    let name = f.required("do", f.string("do")?)?;
    let known = |fields: &[&str]| f.known_with_do(fields, name);
    let verb = match name {
        "run" => {
            known(&["ms"])?;
            Verb::Run { ms: f.required("ms", f.ms("ms")?)? }
        }
        "run_until" => {
            known(&["phase", "max_ms"])?;
            let phase = f.required("phase", f.string("phase")?)?;
            let phase = phase.parse().map_err(|e: String| f.fail("phase", e))?;
            Verb::RunUntil { phase, max_ms: f.ms("max_ms")?.unwrap_or(RUN_UNTIL_MAX_MS_DEFAULT) }
        }
        "settle" => {
            known(&["max_ms"])?;
            Verb::Settle { max_ms: f.ms("max_ms")?.unwrap_or(SETTLE_MAX_MS_DEFAULT) }
        }
        "move" => {
            known(&["table", "span", "to", "mode"])?;
            Verb::Move {
                table: f.required("table", f.table("table")?)?,
                span: f.index("span")?,
                to: f.required("to", f.node("to", nodes)?)?,
                mode: f.mode()?,
            }
        }
        "split" => {
            known(&["table", "span", "into", "mode"])?;
            Verb::Split {
                table: f.required("table", f.table("table")?)?,
                span: f.index("span")?,
                into: f.bounded("into", 2, SPANS_MAX as i128)?.unwrap_or(2),
                mode: f.mode()?,
            }
        }
        "merge" => {
            known(&["table", "spans", "mode"])?;
            Verb::Merge {
                table: f.required("table", f.table("table")?)?,
                spans: f.merge_spans()?.unwrap_or_else(|| vec![0, 1]),
                mode: f.mode()?,
            }
        }
        "create_table" => {
            known(&["table", "spans"])?;
            Verb::CreateTable {
                table: f.required("table", f.table("table")?)?,
                spans: f.spans("spans")?.unwrap_or(1),
            }
        }
        "drop_table" => {
            known(&["table"])?;
            Verb::DropTable { table: f.required("table", f.table("table")?)? }
        }
        "truncate_table" => {
            known(&["table", "new_table"])?;
            let table = f.required("table", f.table("table")?)?;
            let new_table = f.required("new_table", f.table("new_table")?)?;
            if new_table == table {
                return Err(f.fail("new_table", "must differ from `table`"));
            }
            Verb::TruncateTable { table, new_table }
        }
        "block" | "unblock" => {
            known(&["node", "what"])?;
            let node = f.required("node", f.node("node", nodes)?)?;
            let what = f.required("what", f.what()?)?;
            if name == "block" {
                Verb::Block { node, what }
            } else {
                Verb::Unblock { node, what }
            }
        }
        "crash_node" => {
            known(&["node"])?;
            Verb::CrashNode { node: f.required("node", f.node("node", nodes)?)? }
        }
        "restart_node" => {
            known(&["node"])?;
            Verb::RestartNode { node: f.required("node", f.node("node", nodes)?)? }
        }
        "crash_maintainer" => {
            known(&[])?;
            Verb::CrashMaintainer
        }
        "move_maintainer" => {
            known(&["to"])?;
            Verb::MoveMaintainer { to: f.required("to", f.node("to", nodes)?)? }
        }
        "partition" => {
            known(&["nodes"])?;
            Verb::Partition { nodes: f.required("nodes", f.partition(nodes)?)? }
        }
        "heal" => {
            known(&[])?;
            Verb::Heal
        }
        "delay_messages" => {
            known(&["kind", "from", "to", "ms", "count"])?;
            Verb::DelayMessages {
                kind: f.kind()?,
                from: f.node("from", nodes)?,
                to: f.node("to", nodes)?,
                ms: f.required("ms", f.ms("ms")?)?,
                count: f.count()?,
            }
        }
        "drop_messages" => {
            known(&MESSAGE_FAULT)?;
            Verb::DropMessages {
                kind: f.kind()?,
                from: f.node("from", nodes)?,
                to: f.node("to", nodes)?,
                count: f.count()?.unwrap_or(1),
            }
        }
        "duplicate_messages" => {
            known(&MESSAGE_FAULT)?;
            Verb::DuplicateMessages {
                kind: f.kind()?,
                from: f.node("from", nodes)?,
                to: f.node("to", nodes)?,
                count: f.count()?.unwrap_or(1),
            }
        }
        "heal_messages" => {
            known(&[])?;
            Verb::HealMessages
        }
        "expect" => {
            known(&["table", "replicas", "mode", "on"])?;
            Verb::Expect {
                table: f.required("table", f.table("table")?)?,
                replicas: f.required("replicas", f.index("replicas")?)?,
                mode: f.mode()?,
                on: f.node("on", nodes)?,
            }
        }
        "expect_dropped" => {
            known(&["table"])?;
            Verb::ExpectDropped { table: f.required("table", f.table("table")?)? }
        }
        other => {
            let message = format!("unknown verb `{other}` (expected one of: {})", Verb::NAMES.join(", "));
            return Err(f.fail("do", message));
        }
    };
    Ok(verb)
}

fn file_stem(file: &str) -> String {
    match std::path::Path::new(file).file_stem() {
        Some(stem) => stem.to_string_lossy().into_owned(),
        None => file.to_owned(),
    }
}

/// Typed, validated access to one section's entries; every error names the field's line.
struct Fields<'a> {
    file: &'a str,
    section: &'a toml::Section,
}

impl<'a> Fields<'a> {
    fn err(&self, line: usize, field: &str, message: impl Into<String>) -> ScenarioError {
        ScenarioError { file: self.file.to_owned(), line, field: field.to_owned(), message: message.into() }
    }

    fn entry(&self, key: &str) -> Option<&'a toml::Entry> {
        self.section.entries.iter().find(|e| e.key == key)
    }

    /// The line of the field, or of the section's header when it is absent.
    fn line_of(&self, key: &str) -> usize {
        self.entry(key).map_or(self.section.line, |e| e.line)
    }

    fn fail(&self, key: &str, message: impl Into<String>) -> ScenarioError {
        self.err(self.line_of(key), key, message)
    }

    fn required<T>(&self, key: &str, value: Option<T>) -> Result<T, ScenarioError> {
        value.ok_or_else(|| self.err(self.section.line, key, "missing required field"))
    }

    /// Rejects any key not in `allowed` (typos must not silently fall back to defaults).
    fn known(&self, allowed: &[&str], context: &str) -> Result<(), ScenarioError> {
        match self.section.entries.iter().find(|e| !allowed.contains(&e.key.as_str())) {
            None => Ok(()),
            Some(e) => Err(self.err(
                e.line,
                &e.key,
                format!("unknown field for {context} (expected: {})", list(allowed)),
            )),
        }
    }

    /// [`Fields::known`] for a step: `do` plus the verb's own fields.
    fn known_with_do(&self, allowed: &[&str], verb: &str) -> Result<(), ScenarioError> {
        match self.section.entries.iter().find(|e| e.key != "do" && !allowed.contains(&e.key.as_str())) {
            None => Ok(()),
            Some(e) => Err(self.err(
                e.line,
                &e.key,
                format!("unknown field for `{verb}` (its fields: {})", list(allowed)),
            )),
        }
    }

    fn mismatch(&self, e: &toml::Entry, expected: &str) -> ScenarioError {
        self.err(e.line, &e.key, format!("expected {expected}, found {}", e.value.describe()))
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>, ScenarioError> {
        match self.entry(key) {
            None => Ok(None),
            Some(toml::Entry { value: toml::Value::Str(s), .. }) => Ok(Some(s)),
            Some(e) => Err(self.mismatch(e, "a string")),
        }
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, ScenarioError> {
        match self.entry(key) {
            None => Ok(None),
            Some(toml::Entry { value: toml::Value::Bool(b), .. }) => Ok(Some(*b)),
            Some(e) => Err(self.mismatch(e, "a boolean")),
        }
    }

    /// An integer in `min ..= max`, converted to `T` (which holds that range).
    fn bounded<T: TryFrom<i128>>(&self, key: &str, min: i128, max: i128) -> Result<Option<T>, ScenarioError> {
        let v = match self.entry(key) {
            None => return Ok(None),
            Some(toml::Entry { value: toml::Value::Int(v), .. }) => *v,
            Some(e) => return Err(self.mismatch(e, "an integer")),
        };
        check_range(v, min, max).map_err(|m| self.fail(key, m))?;
        T::try_from(v).map(Some).map_err(|_| self.fail(key, format!("{v} is out of range")))
    }

    /// A duration in milliseconds.
    fn ms(&self, key: &str) -> Result<Option<u64>, ScenarioError> {
        self.bounded(key, 0, u64::MAX.into())
    }

    /// A table id, > 0.
    fn table(&self, key: &str) -> Result<Option<i64>, ScenarioError> {
        self.bounded(key, 1, i64::MAX.into())
    }

    /// A non-negative index or count.
    fn index(&self, key: &str) -> Result<Option<usize>, ScenarioError> {
        self.bounded(key, 0, usize::MAX as i128)
    }

    /// A number of spans, 1 ..= SPANS_MAX.
    fn spans(&self, key: &str) -> Result<Option<usize>, ScenarioError> {
        self.bounded(key, 1, SPANS_MAX as i128)
    }

    fn count(&self) -> Result<Option<u32>, ScenarioError> {
        self.bounded("count", 1, u32::MAX.into())
    }

    fn node(&self, key: &str, nodes: &[String]) -> Result<Option<String>, ScenarioError> {
        match self.string(key)? {
            None => Ok(None),
            Some(n) if nodes.iter().any(|m| m == n) => Ok(Some(n.to_owned())),
            Some(n) => Err(self.fail(key, unknown_node(n, nodes))),
        }
    }

    fn mode(&self) -> Result<Mode, ScenarioError> {
        match self.string("mode")? {
            None | Some("default") => Ok(Mode::Default),
            Some("redo") => Ok(Mode::Redo),
            Some(other) => {
                Err(self.fail("mode", format!("unknown mode `{other}` (expected \"default\" or \"redo\")")))
            }
        }
    }

    fn what(&self) -> Result<Option<What>, ScenarioError> {
        match self.string("what")? {
            None => Ok(None),
            Some("create") => Ok(Some(What::Create)),
            Some("close") => Ok(Some(What::Close)),
            Some(other) => {
                Err(self.fail("what", format!("unknown `{other}` (expected \"create\" or \"close\")")))
            }
        }
    }

    fn kind(&self) -> Result<Option<MessageKind>, ScenarioError> {
        let Some(name) = self.string("kind")? else { return Ok(None) };
        match MessageKind::from_name(name) {
            Some(k) if TRAVELLING_KINDS.contains(&k) => Ok(Some(k)),
            Some(_) => Err(self.fail(
                "kind",
                format!(
                    "message kind `{name}` never travels in this simulator: a fault on it would match nothing"
                ),
            )),
            None => {
                let names: Vec<&str> = TRAVELLING_KINDS.iter().map(|k| k.name()).collect();
                Err(self.fail(
                    "kind",
                    format!("unknown message kind `{name}` (expected one of: {})", names.join(", ")),
                ))
            }
        }
    }

    fn array(&self, key: &str, expected: &str) -> Result<Option<&'a [toml::Value]>, ScenarioError> {
        match self.entry(key) {
            None => Ok(None),
            Some(toml::Entry { value: toml::Value::Array(items), .. }) => Ok(Some(items)),
            Some(e) => Err(self.mismatch(e, expected)),
        }
    }

    fn strings(&self, key: &str) -> Result<Option<Vec<String>>, ScenarioError> {
        let Some(items) = self.array(key, "an array of strings")? else { return Ok(None) };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match item {
                toml::Value::Str(s) => out.push(s.clone()),
                other => {
                    let message = format!("expected an array of strings, found {} in it", other.describe());
                    return Err(self.fail(key, message));
                }
            }
        }
        Ok(Some(out))
    }

    fn merge_spans(&self) -> Result<Option<Vec<usize>>, ScenarioError> {
        let Some(items) = self.array("spans", "an array of integers")? else { return Ok(None) };
        let mut spans: Vec<usize> = Vec::with_capacity(items.len());
        for item in items {
            let toml::Value::Int(v) = item else {
                let message = format!("expected an array of integers, found {} in it", item.describe());
                return Err(self.fail("spans", message));
            };
            check_range(*v, 0, usize::MAX as i128).map_err(|m| self.fail("spans", m))?;
            let i = usize::try_from(*v).map_err(|_| self.fail("spans", format!("{v} is out of range")))?;
            if spans.last().is_some_and(|&prev| prev.checked_add(1) != Some(i)) {
                return Err(
                    self.fail("spans", "span indices must be adjacent and increasing, like [2, 3, 4]")
                );
            }
            spans.push(i);
        }
        if spans.len() < 2 {
            return Err(self.fail("spans", "a merge needs at least 2 spans"));
        }
        Ok(Some(spans))
    }

    fn partition(&self, nodes: &[String]) -> Result<Option<Vec<String>>, ScenarioError> {
        let Some(side) = self.strings("nodes")? else { return Ok(None) };
        if side.is_empty() {
            return Err(self.fail("nodes", "at least one node is required"));
        }
        for (i, n) in side.iter().enumerate() {
            if !nodes.contains(n) {
                return Err(self.fail("nodes", unknown_node(n, nodes)));
            }
            if side[..i].contains(n) {
                return Err(self.fail("nodes", format!("node `{n}` is listed twice")));
            }
        }
        Ok(Some(side))
    }
}

fn check_range(v: i128, min: i128, max: i128) -> Result<(), String> {
    if v < min {
        Err(if min == 0 {
            format!("must not be negative, got {v}")
        } else {
            format!("must be at least {min}, got {v}")
        })
    } else if v > max {
        Err(format!("must be at most {max}, got {v}"))
    } else {
        Ok(())
    }
}

fn list(items: &[&str]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

fn unknown_node(n: &str, nodes: &[String]) -> String {
    format!("unknown node {:?} (nodes: {})", n, nodes.join(", "))
}

// ---------------------------------------------------------------------------------------------
// Writing.

#[derive(Default)]
struct Writer {
    out: String,
}

impl Writer {
    fn header(&mut self, name: &str) {
        self.out.push_str("\n[[");
        self.out.push_str(name);
        self.out.push_str("]]\n");
    }

    fn field(&mut self, key: &str, value: impl std::fmt::Display) {
        self.out.push_str(&format!("{key} = {value}\n"));
    }

    fn field_unless<T: std::fmt::Display + PartialEq>(&mut self, key: &str, value: T, default: T) {
        if value != default {
            self.field(key, value);
        }
    }

    fn option(&mut self, key: &str, value: Option<impl std::fmt::Display>) {
        if let Some(v) = value {
            self.field(key, v);
        }
    }

    fn mode(&mut self, mode: Mode) {
        if mode == Mode::Redo {
            self.field("mode", "\"redo\"");
        }
    }

    fn message_filter(&mut self, kind: &Option<MessageKind>, from: &Option<String>, to: &Option<String>) {
        self.option("kind", kind.map(|k| quote(k.name())));
        self.option("from", from.as_deref().map(quote));
        self.option("to", to.as_deref().map(quote));
    }
}

fn write_verb(w: &mut Writer, verb: &Verb) {
    match verb {
        Verb::Run { ms } => w.field("ms", ms),
        Verb::RunUntil { phase, max_ms } => {
            w.field("phase", quote(phase.name()));
            w.field_unless("max_ms", *max_ms, RUN_UNTIL_MAX_MS_DEFAULT);
        }
        Verb::Settle { max_ms } => w.field_unless("max_ms", *max_ms, SETTLE_MAX_MS_DEFAULT),
        Verb::Move { table, span, to, mode } => {
            w.field("table", table);
            w.option("span", *span);
            w.field("to", quote(to));
            w.mode(*mode);
        }
        Verb::Split { table, span, into, mode } => {
            w.field("table", table);
            w.option("span", *span);
            w.field_unless("into", *into, 2);
            w.mode(*mode);
        }
        Verb::Merge { table, spans, mode } => {
            w.field("table", table);
            if spans[..] != [0, 1] {
                let items: Vec<String> = spans.iter().map(usize::to_string).collect();
                w.field("spans", format!("[{}]", items.join(", ")));
            }
            w.mode(*mode);
        }
        Verb::CreateTable { table, spans } => {
            w.field("table", table);
            w.field_unless("spans", *spans, 1);
        }
        Verb::DropTable { table } | Verb::ExpectDropped { table } => w.field("table", table),
        Verb::TruncateTable { table, new_table } => {
            w.field("table", table);
            w.field("new_table", new_table);
        }
        Verb::Block { node, what } | Verb::Unblock { node, what } => {
            w.field("node", quote(node));
            w.field("what", quote(what.as_str()));
        }
        Verb::CrashNode { node } | Verb::RestartNode { node } => w.field("node", quote(node)),
        Verb::MoveMaintainer { to } => w.field("to", quote(to)),
        Verb::Partition { nodes } => w.field("nodes", string_array(nodes)),
        Verb::CrashMaintainer | Verb::Heal | Verb::HealMessages => {}
        Verb::DelayMessages { kind, from, to, ms, count } => {
            w.message_filter(kind, from, to);
            w.field("ms", ms);
            w.option("count", *count);
        }
        Verb::DropMessages { kind, from, to, count } | Verb::DuplicateMessages { kind, from, to, count } => {
            w.message_filter(kind, from, to);
            w.field_unless("count", *count, 1);
        }
        Verb::Expect { table, replicas, mode, on } => {
            w.field("table", table);
            w.field("replicas", replicas);
            w.mode(*mode);
            w.option("on", on.as_deref().map(quote));
        }
    }
}

/// A TOML basic string holding exactly `s`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if toml::is_control(c) => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn string_array(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

// ---------------------------------------------------------------------------------------------
// The TOML subset.

mod toml {
    //! A line-tracking parser for the TOML subset described in the module docs. It builds an
    //! untyped document; the loader gives it meaning. No recursion beyond one array level, no
    //! indexing that can fail: arbitrary input returns an error, never a panic.

    use std::collections::BTreeMap;

    /// A value of the subset. Integers are wide enough for `i64::MIN ..= u64::MAX`.
    #[derive(Clone, Debug, PartialEq)]
    pub(super) enum Value {
        Str(String),
        Int(i128),
        Bool(bool),
        Array(Vec<Value>),
    }

    impl Value {
        /// The value's type with its article, for "expected X, found Y".
        pub(super) fn describe(&self) -> &'static str {
            match self {
                Value::Str(_) => "a string",
                Value::Int(_) => "an integer",
                Value::Bool(_) => "a boolean",
                Value::Array(_) => "an array",
            }
        }
    }

    /// `key = value` and the line of its key.
    #[derive(Debug)]
    pub(super) struct Entry {
        pub(super) key: String,
        pub(super) line: usize,
        pub(super) value: Value,
    }

    /// The top level or one `[[...]]` element: its header's line (1 for the top level) and its
    /// entries in file order, keys distinct.
    #[derive(Debug)]
    pub(super) struct Section {
        pub(super) line: usize,
        pub(super) entries: Vec<Entry>,
    }

    #[derive(Debug)]
    pub(super) struct Doc {
        pub(super) top: Section,
        pub(super) tables: Vec<Section>,
        pub(super) steps: Vec<Section>,
    }

    #[derive(Debug)]
    pub(super) struct SyntaxError {
        pub(super) line: usize,
        pub(super) field: String,
        pub(super) message: String,
    }

    type Result<T> = std::result::Result<T, SyntaxError>;

    /// The field named by a syntax error that belongs to no key.
    const SYNTAX: &str = "syntax";

    #[derive(Clone, Copy)]
    enum Target {
        Top,
        Tables,
        Steps,
    }

    pub(super) fn parse(text: &str) -> Result<Doc> {
        let mut p = Parser { chars: text.chars().collect(), pos: 0, line: 1 };
        if p.peek() == Some('\u{feff}') {
            p.pos += 1;
        }
        let mut doc =
            Doc { top: Section { line: 1, entries: Vec::new() }, tables: Vec::new(), steps: Vec::new() };
        let mut target = Target::Top;
        let mut section = Section { line: 1, entries: Vec::new() };
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        loop {
            p.skip_ws();
            let line = p.line;
            let field = match p.peek() {
                None => break,
                Some('#' | '\n' | '\r') => SYNTAX.to_owned(),
                Some('[') => {
                    let (next, name) = p.header()?;
                    let done = std::mem::replace(&mut section, Section { line, entries: Vec::new() });
                    doc.put(target, done);
                    target = next;
                    seen.clear();
                    name
                }
                Some(_) => {
                    let key = p.key()?;
                    let value = p.value(&key)?;
                    if let Some(first) = seen.get(&key) {
                        let message = format!("duplicate key (first set on line {first})");
                        return Err(SyntaxError { line, field: key, message });
                    }
                    seen.insert(key.clone(), line);
                    section.entries.push(Entry { key: key.clone(), line, value });
                    key
                }
            };
            p.end_of_line(&field)?;
        }
        doc.put(target, section);
        Ok(doc)
    }

    impl Doc {
        fn put(&mut self, target: Target, section: Section) {
            match target {
                Target::Top => self.top = section,
                Target::Tables => self.tables.push(section),
                Target::Steps => self.steps.push(section),
            }
        }
    }

    /// Characters TOML only admits escaped (tab excepted).
    pub(super) fn is_control(c: char) -> bool {
        (c < ' ' && c != '\t') || c == '\u{7f}'
    }

    fn is_bare(c: char) -> bool {
        c.is_ascii_alphanumeric() || c == '_' || c == '-'
    }

    /// Characters of an unquoted scalar (and of the unsupported ones we recognise to name them).
    fn is_token(c: char) -> bool {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.' | ':')
    }

    struct Parser {
        chars: Vec<char>,
        pos: usize,
        /// The 1-based line of `chars[pos]`.
        line: usize,
    }

    impl Parser {
        fn peek(&self) -> Option<char> {
            self.chars.get(self.pos).copied()
        }

        fn peek_at(&self, ahead: usize) -> Option<char> {
            self.chars.get(self.pos + ahead).copied()
        }

        fn next(&mut self) -> Option<char> {
            let c = self.peek()?;
            self.pos += 1;
            if c == '\n' {
                self.line += 1;
            }
            Some(c)
        }

        fn err(&self, field: &str, message: impl Into<String>) -> SyntaxError {
            SyntaxError { line: self.line, field: field.to_owned(), message: message.into() }
        }

        fn skip_ws(&mut self) {
            while matches!(self.peek(), Some(' ' | '\t')) {
                self.pos += 1;
            }
        }

        fn skip_comment(&mut self) {
            while self.peek().is_some_and(|c| c != '\n') {
                self.pos += 1;
            }
        }

        /// Consumes a line ending (`\n` or `\r\n`); false if there is none here.
        fn newline(&mut self, field: &str) -> Result<bool> {
            match self.peek() {
                Some('\n') => {}
                Some('\r') if self.peek_at(1) == Some('\n') => self.pos += 1,
                Some('\r') => {
                    return Err(self.err(field, "a carriage return must be followed by a line feed"))
                }
                _ => return Ok(false),
            }
            self.next();
            Ok(true)
        }

        /// After a header or a value: optional whitespace and comment, then the end of the line.
        fn end_of_line(&mut self, field: &str) -> Result<()> {
            self.skip_ws();
            if self.peek() == Some('#') {
                self.skip_comment();
            }
            match self.peek() {
                None => Ok(()),
                Some(c) => {
                    if self.newline(field)? {
                        Ok(())
                    } else {
                        Err(self.err(
                            field,
                            format!("unexpected `{}`; expected the end of the line", c.escape_debug()),
                        ))
                    }
                }
            }
        }

        /// Whitespace, comments and line endings, as allowed inside an array.
        fn skip_trivia(&mut self, field: &str) -> Result<()> {
            loop {
                self.skip_ws();
                if self.peek() == Some('#') {
                    self.skip_comment();
                }
                if !self.newline(field)? {
                    return Ok(());
                }
            }
        }

        fn bare(&mut self) -> String {
            let mut s = String::new();
            while let Some(c) = self.peek().filter(|&c| is_bare(c)) {
                s.push(c);
                self.pos += 1;
            }
            s
        }

        /// `[[tables]]` or `[[steps]]`: the target and the header as written (the field of any
        /// error on the rest of its line).
        fn header(&mut self) -> Result<(Target, String)> {
            self.next();
            if self.peek() != Some('[') {
                let mut text = String::from("[");
                while let Some(c) = self.peek().filter(|&c| c != '\n' && c != ']' && text.len() < 64) {
                    text.push(c);
                    self.pos += 1;
                }
                text.push(']');
                return Err(self.err(&text, "[table] headers are not supported; use [[tables]] or [[steps]]"));
            }
            self.next();
            self.skip_ws();
            let name = self.bare();
            self.skip_ws();
            if name.is_empty() {
                let message = match self.peek() {
                    Some('"' | '\'') => "quoted names are not supported; use [[tables]] or [[steps]]",
                    _ => "expected [[tables]] or [[steps]]",
                };
                return Err(self.err(SYNTAX, message));
            }
            let field = format!("[[{name}]]");
            if self.peek() == Some('.') {
                return Err(self.err(&field, "dotted names are not supported; use [[tables]] or [[steps]]"));
            }
            if !(self.peek() == Some(']') && self.peek_at(1) == Some(']')) {
                return Err(self.err(&field, "expected `]]`"));
            }
            self.pos += 2;
            match name.as_str() {
                "tables" => Ok((Target::Tables, field)),
                "steps" => Ok((Target::Steps, field)),
                _ => Err(self.err(&field, "unknown array of tables; expected [[tables]] or [[steps]]")),
            }
        }

        /// A bare key, then `=`.
        fn key(&mut self) -> Result<String> {
            let key = self.bare();
            if key.is_empty() {
                return Err(match self.peek() {
                    Some('"' | '\'') => self.err(SYNTAX, "quoted keys are not supported"),
                    Some(c) => self.err(SYNTAX, format!("expected a key, found `{}`", c.escape_debug())),
                    None => self.err(SYNTAX, "expected a key"),
                });
            }
            self.skip_ws();
            match self.peek() {
                Some('=') => {
                    self.pos += 1;
                    self.skip_ws();
                    Ok(key)
                }
                Some('.') => Err(self.err(&key, "dotted keys are not supported")),
                _ => Err(self.err(&key, "expected `=` after the key")),
            }
        }

        fn value(&mut self, field: &str) -> Result<Value> {
            match self.peek() {
                Some('"') => self.basic_string(field).map(Value::Str),
                Some('\'') => self.literal_string(field).map(Value::Str),
                Some('[') => self.array(field),
                Some('{') => Err(self.err(field, "inline tables are not supported")),
                Some(c) if is_token(c) => self.scalar(field),
                None | Some('\n' | '\r' | '#') => Err(self.err(field, "missing value")),
                Some(c) => Err(self.err(field, format!("expected a value, found `{}`", c.escape_debug()))),
            }
        }

        fn basic_string(&mut self, field: &str) -> Result<String> {
            let line = self.line;
            self.next();
            if self.peek() == Some('"') && self.peek_at(1) == Some('"') {
                return Err(self.err(field, "multi-line strings are not supported"));
            }
            let mut s = String::new();
            loop {
                match self.next() {
                    None | Some('\n') => {
                        return Err(SyntaxError {
                            line,
                            field: field.to_owned(),
                            message: "unterminated string".into(),
                        })
                    }
                    Some('"') => return Ok(s),
                    Some('\\') => s.push(self.escape(field)?),
                    Some(c) if is_control(c) => {
                        return Err(self.err(field, "control characters in strings must be escaped"))
                    }
                    Some(c) => s.push(c),
                }
            }
        }

        /// The character an escape sequence (after its backslash) stands for.
        fn escape(&mut self, field: &str) -> Result<char> {
            let digits = match self.next() {
                Some('b') => return Ok('\u{8}'),
                Some('t') => return Ok('\t'),
                Some('n') => return Ok('\n'),
                Some('f') => return Ok('\u{c}'),
                Some('r') => return Ok('\r'),
                Some('"') => return Ok('"'),
                Some('\\') => return Ok('\\'),
                Some('u') => 4,
                Some('U') => 8,
                Some(c) => {
                    return Err(self.err(field, format!("unsupported escape `\\{}`", c.escape_debug())))
                }
                None => return Err(self.err(field, "unterminated string")),
            };
            let mut code: u32 = 0;
            for _ in 0..digits {
                let Some(d) = self.peek().and_then(|c| c.to_digit(16)) else {
                    return Err(self.err(field, format!("a \\u escape needs {digits} hex digits")));
                };
                self.pos += 1;
                code = code * 16 + d;
            }
            char::from_u32(code)
                .ok_or_else(|| self.err(field, format!("U+{code:X} is not a unicode scalar value")))
        }

        fn literal_string(&mut self, field: &str) -> Result<String> {
            let line = self.line;
            self.next();
            if self.peek() == Some('\'') && self.peek_at(1) == Some('\'') {
                return Err(self.err(field, "multi-line strings are not supported"));
            }
            let mut s = String::new();
            loop {
                match self.next() {
                    None | Some('\n') => {
                        return Err(SyntaxError {
                            line,
                            field: field.to_owned(),
                            message: "unterminated string".into(),
                        })
                    }
                    Some('\'') => return Ok(s),
                    Some(c) if is_control(c) => {
                        return Err(self.err(field, "control characters are not allowed in literal strings"))
                    }
                    Some(c) => s.push(c),
                }
            }
        }

        fn array(&mut self, field: &str) -> Result<Value> {
            self.next();
            let mut items = Vec::new();
            loop {
                self.skip_trivia(field)?;
                match self.peek() {
                    Some(']') => {
                        self.next();
                        return Ok(Value::Array(items));
                    }
                    Some('[') => return Err(self.err(field, "nested arrays are not supported")),
                    None => return Err(self.err(field, "unterminated array")),
                    Some(_) => items.push(self.value(field)?),
                }
                self.skip_trivia(field)?;
                match self.peek() {
                    Some(',') => {
                        self.next();
                    }
                    Some(']') => {}
                    None => return Err(self.err(field, "unterminated array")),
                    Some(c) => {
                        return Err(self.err(
                            field,
                            format!("expected `,` or `]` in array, found `{}`", c.escape_debug()),
                        ))
                    }
                }
            }
        }

        /// A boolean or an integer (and a clear refusal of floats, dates and bare words).
        fn scalar(&mut self, field: &str) -> Result<Value> {
            let line = self.line;
            let mut token = String::new();
            while let Some(c) = self.peek().filter(|&c| is_token(c)) {
                token.push(c);
                self.pos += 1;
            }
            scalar(&token).map_err(|message| SyntaxError { line, field: field.to_owned(), message })
        }
    }

    fn scalar(token: &str) -> std::result::Result<Value, String> {
        match token {
            "true" => return Ok(Value::Bool(true)),
            "false" => return Ok(Value::Bool(false)),
            _ => {}
        }
        let (negative, body) = match token.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, token.strip_prefix('+').unwrap_or(token)),
        };
        if matches!(body, "inf" | "nan") {
            return Err("floats are not supported".into());
        }
        if !body.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!("expected a value, found `{token}` (strings must be quoted)"));
        }
        if body.starts_with("0x") || body.starts_with("0o") || body.starts_with("0b") {
            return Err("hexadecimal, octal and binary integers are not supported".into());
        }
        if body.contains(':') {
            return Err("dates and times are not supported".into());
        }
        if body.contains(['.', 'e', 'E']) {
            return Err("floats are not supported".into());
        }
        if body.contains('-') {
            return Err("dates and times are not supported".into());
        }
        let mut value: i128 = 0;
        let mut after_underscore = true; // so that a leading `_` is refused too
        for c in body.chars() {
            if c == '_' {
                if after_underscore {
                    return Err(format!("misplaced `_` in `{token}` (only between digits)"));
                }
                after_underscore = true;
                continue;
            }
            let Some(d) = c.to_digit(10) else { return Err(format!("invalid integer `{token}`")) };
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(i128::from(d)))
                .filter(|&v| v <= i128::from(u64::MAX))
                .ok_or_else(|| format!("integer `{token}` is out of range"))?;
            after_underscore = false;
        }
        if after_underscore {
            return Err(format!("misplaced `_` in `{token}` (only between digits)"));
        }
        if body.len() > 1 && body.starts_with('0') {
            return Err(format!("leading zeros are not allowed in `{token}`"));
        }
        let value = if negative { -value } else { value };
        if value < i128::from(i64::MIN) {
            return Err(format!("integer `{token}` is out of range"));
        }
        Ok(Value::Int(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every verb once, defaults mostly left out.
    const EVERY_VERB: &str = r#"# A scenario that uses every verb.
name = "every \"verb\"\t\\ \u00e9"
nodes = ["n1", 'n2', "n3",]
maintainer = "n2"
redo = true
balance = true
seed = 1_234

[[tables]]
id = 100
spans = 4

[[tables]] # trailing comment
id = +101

[[steps]]
do = "settle"

[[steps]]
do = "run"
ms = 500

[[steps]]
do = "move"
table = 100
span = 2
to = "n3"
mode = "redo"

[[steps]]
do = "split"
table = 100
into = 3

[[steps]]
do = "merge"
table = 100
spans = [
  1, # first
  2,
  3,
]
mode = "default"

[[steps]]
do = "create_table"
table = 102
spans = 2

[[steps]]
do = "drop_table"
table = 101

[[steps]]
do = "truncate_table"
table = 102
new_table = 103

[[steps]]
do = "block"
node = "n1"
what = "create"

[[steps]]
do = "unblock"
node = "n1"
what = "close"

[[steps]]
do = "crash_node"
node = "n3"

[[steps]]
do = "restart_node"
node = "n3"

[[steps]]
do = "crash_maintainer"

[[steps]]
do = "move_maintainer"
to = "n1"

[[steps]]
do = "partition"
nodes = ["n1"]

[[steps]]
do = "heal"

[[steps]]
do = "delay_messages"
kind = "HeartBeatRequest"
from = "n2"
ms = 250
count = 3

[[steps]]
do = "drop_messages"
to = "n1"

[[steps]]
do = "duplicate_messages"
kind = "MaintainerBootstrapResponse"
count = 2

[[steps]]
do = "heal_messages"

[[steps]]
do = "run_until"
phase = "node-merge-draining"
max_ms = 800

[[steps]]
do = "expect"
table = 100
replicas = 6
on = "n1"

[[steps]]
do = "expect_dropped"
table = 101
"#;

    #[test]
    fn a_fault_on_a_kind_that_never_travels_is_a_load_error() {
        let silent = MessageKind::ALL.into_iter().filter(|k| !TRAVELLING_KINDS.contains(k));
        for kind in silent {
            let text = format!("nodes = [\"a\"]\n[[steps]]\ndo = \"drop_messages\"\nkind = \"{kind}\"\n");
            let e = parse(&text, "f.toml").unwrap_err().to_string();
            assert!(e.starts_with("f.toml:4: kind: ") && e.contains("never travels"), "{e}");
        }
    }

    #[test]
    fn run_until_names_a_known_phase() {
        let ok =
            parse("nodes = [\"a\"]\n[[steps]]\ndo = \"run_until\"\nphase = \"merge-merging\"\n", "f.toml");
        assert_eq!(
            ok.unwrap().steps[0].verb,
            Verb::RunUntil { phase: Phase::MergeMerging, max_ms: RUN_UNTIL_MAX_MS_DEFAULT }
        );
        let e = parse("nodes = [\"a\"]\n[[steps]]\ndo = \"run_until\"\nphase = \"nope\"\n", "f.toml");
        assert!(e.unwrap_err().to_string().starts_with("f.toml:4: phase: unknown phase `nope`"));
        let e = parse("nodes = [\"a\"]\n[[steps]]\ndo = \"run_until\"\n", "f.toml");
        assert!(e.unwrap_err().to_string().contains("phase"));
    }

    fn header_lines(text: &str) -> Vec<usize> {
        text.lines().enumerate().filter(|(_, l)| l.trim() == "[[steps]]").map(|(i, _)| i + 1).collect()
    }

    fn s(v: &str) -> String {
        v.to_owned()
    }

    fn every_verb_expected() -> Vec<Verb> {
        vec![
            Verb::Settle { max_ms: 120_000 },
            Verb::Run { ms: 500 },
            Verb::Move { table: 100, span: Some(2), to: s("n3"), mode: Mode::Redo },
            Verb::Split { table: 100, span: None, into: 3, mode: Mode::Default },
            Verb::Merge { table: 100, spans: vec![1, 2, 3], mode: Mode::Default },
            Verb::CreateTable { table: 102, spans: 2 },
            Verb::DropTable { table: 101 },
            Verb::TruncateTable { table: 102, new_table: 103 },
            Verb::Block { node: s("n1"), what: What::Create },
            Verb::Unblock { node: s("n1"), what: What::Close },
            Verb::CrashNode { node: s("n3") },
            Verb::RestartNode { node: s("n3") },
            Verb::CrashMaintainer,
            Verb::MoveMaintainer { to: s("n1") },
            Verb::Partition { nodes: vec![s("n1")] },
            Verb::Heal,
            Verb::DelayMessages {
                kind: Some(MessageKind::HeartBeatRequest),
                from: Some(s("n2")),
                to: None,
                ms: 250,
                count: Some(3),
            },
            Verb::DropMessages { kind: None, from: None, to: Some(s("n1")), count: 1 },
            Verb::DuplicateMessages {
                kind: Some(MessageKind::MaintainerBootstrapResponse),
                from: None,
                to: None,
                count: 2,
            },
            Verb::HealMessages,
            Verb::RunUntil { phase: Phase::NodeMergeDraining, max_ms: 800 },
            Verb::Expect { table: 100, replicas: 6, mode: Mode::Default, on: Some(s("n1")) },
            Verb::ExpectDropped { table: 101 },
        ]
    }

    #[test]
    fn every_verb_parses_to_the_expected_values() {
        let sc = parse(EVERY_VERB, "scenarios/every.toml").unwrap();
        assert_eq!(sc.name, "every \"verb\"\t\\ é");
        assert_eq!(sc.nodes, ["n1", "n2", "n3"]);
        assert_eq!(sc.maintainer, "n2");
        assert!(sc.redo && sc.balance);
        assert_eq!(sc.seed, 1234);
        assert_eq!(sc.tables, [TableSpec { id: 100, spans: 4 }, TableSpec { id: 101, spans: 1 }]);
        let verbs: Vec<Verb> = sc.steps.iter().map(|st| st.verb.clone()).collect();
        assert_eq!(verbs, every_verb_expected());
        let lines: Vec<usize> = sc.steps.iter().map(|st| st.line).collect();
        assert_eq!(lines, header_lines(EVERY_VERB));
        // The example covers the whole vocabulary, in the contract's order.
        let mut names: Vec<&str> = sc.steps.iter().map(|st| st.verb.name()).collect();
        let mut all = Verb::NAMES.to_vec();
        names.sort_unstable();
        all.sort_unstable();
        assert_eq!(names, all);
    }

    #[test]
    fn defaults_are_applied() {
        let text = "nodes = [\"a\", \"b\"]\n\
                    [[tables]]\nid = 7\n\
                    [[steps]]\ndo = \"settle\"\n\
                    [[steps]]\ndo = \"split\"\ntable = 7\n\
                    [[steps]]\ndo = \"merge\"\ntable = 7\n\
                    [[steps]]\ndo = \"move\"\ntable = 7\nto = \"b\"\n\
                    [[steps]]\ndo = \"create_table\"\ntable = 8\n\
                    [[steps]]\ndo = \"delay_messages\"\nms = 5\n\
                    [[steps]]\ndo = \"drop_messages\"\n\
                    [[steps]]\ndo = \"duplicate_messages\"\n\
                    [[steps]]\ndo = \"expect\"\ntable = 7\nreplicas = 1\n";
        let sc = parse(text, "/tmp/some dir/defaults.scenario.toml").unwrap();
        assert_eq!(sc.name, "defaults.scenario");
        assert_eq!(sc.maintainer, "a");
        assert!(!sc.redo && !sc.balance);
        assert_eq!(sc.seed, 0);
        assert_eq!(sc.tables, [TableSpec { id: 7, spans: 1 }]);
        let verbs: Vec<Verb> = sc.steps.into_iter().map(|st| st.verb).collect();
        assert_eq!(
            verbs,
            [
                Verb::Settle { max_ms: SETTLE_MAX_MS_DEFAULT },
                Verb::Split { table: 7, span: None, into: 2, mode: Mode::Default },
                Verb::Merge { table: 7, spans: vec![0, 1], mode: Mode::Default },
                Verb::Move { table: 7, span: None, to: s("b"), mode: Mode::Default },
                Verb::CreateTable { table: 8, spans: 1 },
                Verb::DelayMessages { kind: None, from: None, to: None, ms: 5, count: None },
                Verb::DropMessages { kind: None, from: None, to: None, count: 1 },
                Verb::DuplicateMessages { kind: None, from: None, to: None, count: 1 },
                Verb::Expect { table: 7, replicas: 1, mode: Mode::Default, on: None },
            ]
        );
    }

    #[test]
    fn minimal_file_and_toml_details() {
        let sc = parse("\u{feff}nodes=['x']\r\n\r\n  # indented comment\r\n", "x").unwrap();
        assert_eq!(sc.name, "x");
        assert_eq!(sc.nodes, ["x"]);
        assert!(sc.tables.is_empty() && sc.steps.is_empty());
        // Escapes, literal strings keep backslashes, the widest integers.
        let sc = parse(
            "name = \"\\u0041\\U0001F600\\b\\f\\r\"\nnodes = ['C:\\x']\nseed = 18_446_744_073_709_551_615\n",
            "y.toml",
        )
        .unwrap();
        assert_eq!(sc.name, "A\u{1F600}\u{8}\u{c}\r");
        assert_eq!(sc.nodes, ["C:\\x"]);
        assert_eq!(sc.seed, u64::MAX);
    }

    #[test]
    fn display_names_file_line_and_field() {
        let e = parse("nodes = [\"n1\"]\nseed = -1\n", "dir/a.toml").unwrap_err();
        assert_eq!(e.to_string(), "dir/a.toml:2: seed: must not be negative, got -1");
        let boxed: Box<dyn std::error::Error> = Box::new(e);
        assert!(boxed.to_string().starts_with("dir/a.toml:2:"));
    }

    /// `(file text, line, field, part of the message)`. The texts that start with `|` get the
    /// prefix `nodes = ["n1", "n2"]` + `[[steps]]` (lines 1-2), so their first line is line 3.
    const ERRORS: &[(&str, usize, &str, &str)] = &[
        // Steps: verbs, fields, types.
        ("|do = \"jump\"", 3, "do", "unknown verb `jump`"),
        ("|do = \"run\"\nms = 1\nmz = 2", 5, "mz", "unknown field for `run`"),
        ("|do = \"heal\"\nnode = \"n1\"", 4, "node", "its fields: none"),
        ("|do = \"run\"", 2, "ms", "missing required field"),
        ("|ms = 1", 2, "do", "missing required field"),
        ("|do = 3", 3, "do", "expected a string, found an integer"),
        ("|do = \"run\"\nms = \"1\"", 4, "ms", "expected an integer, found a string"),
        ("|do = \"run\"\nms = -5", 4, "ms", "must not be negative"),
        ("|do = \"move\"\ntable = 1", 2, "to", "missing required field"),
        ("|do = \"move\"\ntable = 1\nto = \"n9\"", 5, "to", "unknown node \"n9\""),
        ("|do = \"move\"\ntable = 1\nspan = -1\nto = \"n1\"", 5, "span", "must not be negative"),
        ("|do = \"move\"\ntable = 1\nto = \"n1\"\nmode = \"fast\"", 6, "mode", "unknown mode"),
        ("|do = \"drop_table\"\ntable = 0", 4, "table", "must be at least 1, got 0"),
        ("|do = \"expect_dropped\"\ntable = -3", 4, "table", "must be at least 1"),
        ("|do = \"truncate_table\"\ntable = 4\nnew_table = 4", 5, "new_table", "must differ"),
        ("|do = \"create_table\"\ntable = 4\nspans = 0", 5, "spans", "must be at least 1"),
        ("|do = \"create_table\"\ntable = 4\nspans = 5000", 5, "spans", "must be at most 4096"),
        ("|do = \"split\"\ntable = 4\ninto = 1", 5, "into", "must be at least 2"),
        ("|do = \"merge\"\ntable = 4\nspans = [1]", 5, "spans", "at least 2 spans"),
        ("|do = \"merge\"\ntable = 4\nspans = [0, 2]", 5, "spans", "adjacent and increasing"),
        ("|do = \"merge\"\ntable = 4\nspans = [1, 0]", 5, "spans", "adjacent and increasing"),
        ("|do = \"merge\"\ntable = 4\nspans = [\"0\", \"1\"]", 5, "spans", "array of integers"),
        ("|do = \"merge\"\ntable = 4\nspans = 1", 5, "spans", "expected an array of integers"),
        ("|do = \"block\"\nnode = \"n1\"\nwhat = \"open\"", 5, "what", "\"create\" or \"close\""),
        ("|do = \"unblock\"\nnode = \"n1\"", 2, "what", "missing required field"),
        ("|do = \"crash_node\"\nnode = \"n3\"", 4, "node", "unknown node"),
        ("|do = \"move_maintainer\"\nto = \"\"", 4, "to", "unknown node"),
        ("|do = \"partition\"\nnodes = [\"n1\", \"x\"]", 4, "nodes", "unknown node \"x\""),
        ("|do = \"partition\"\nnodes = []", 4, "nodes", "at least one node"),
        ("|do = \"partition\"\nnodes = [\"n1\", \"n1\"]", 4, "nodes", "listed twice"),
        ("|do = \"drop_messages\"\nfrom = \"n7\"", 4, "from", "unknown node"),
        ("|do = \"drop_messages\"\ncount = 0", 4, "count", "must be at least 1"),
        ("|do = \"delay_messages\"\nms = 1\ncount = 4294967296", 5, "count", "at most 4294967295"),
        ("|do = \"delay_messages\"\nkind = \"Ping\"\nms = 1", 4, "kind", "unknown message kind"),
        ("|do = \"delay_messages\"", 2, "ms", "missing required field"),
        ("|do = \"duplicate_messages\"\nkinds = \"HeartBeatRequest\"", 4, "kinds", "unknown field"),
        ("|do = \"expect\"\ntable = 1\nreplicas = -1", 5, "replicas", "must not be negative"),
        ("|do = \"expect\"\ntable = 1\nreplicas = 1\non = \"n5\"", 6, "on", "unknown node"),
        ("|do = \"settle\"\nmax_ms = true", 4, "max_ms", "expected an integer, found a boolean"),
        // Top level.
        ("seed = 1", 1, "nodes", "missing required field"),
        ("nodes = []", 1, "nodes", "at least one node"),
        ("nodes = [\"a\", \"b\", \"a\"]", 1, "nodes", "`a` is listed twice"),
        ("nodes = [\"a\", \"\"]", 1, "nodes", "must not be empty"),
        ("nodes = [\"a\", 2]", 1, "nodes", "array of strings, found an integer"),
        ("nodes = \"a\"", 1, "nodes", "expected an array of strings, found a string"),
        ("nodes = [\"a\"]\nmaintainer = \"b\"", 2, "maintainer", "unknown node \"b\""),
        ("nodes = [\"a\"]\nsed = 1", 2, "sed", "unknown top-level key"),
        ("nodes = [\"a\"]\nsteps = []", 2, "steps", "[[steps]]"),
        ("nodes = [\"a\"]\nredo = 1", 2, "redo", "expected a boolean"),
        ("nodes = [\"a\"]\nname = 1", 2, "name", "expected a string"),
        // Tables.
        ("nodes = [\"a\"]\n[[tables]]\nid = 0", 3, "id", "must be at least 1"),
        ("nodes = [\"a\"]\n[[tables]]\nspans = 2", 2, "id", "missing required field"),
        ("nodes = [\"a\"]\n[[tables]]\nid = 1\nspans = 0", 4, "spans", "must be at least 1"),
        ("nodes = [\"a\"]\n[[tables]]\nid = 1\nspan = 2", 4, "span", "unknown field for [[tables]]"),
        ("nodes = [\"a\"]\n[[tables]]\nid = 1\n[[tables]]\nid = 1", 5, "id", "already declared on line 3"),
        // Syntax.
        ("nodes = [\"a\"]\n[table]", 2, "[table]", "headers are not supported"),
        ("nodes = [\"a\"]\n[[table]]", 2, "[[table]]", "unknown array of tables"),
        ("nodes = [\"a\"]\n[[steps.x]]", 2, "[[steps]]", "dotted names"),
        ("nodes = [\"a\"]\n[[steps]", 2, "[[steps]]", "expected `]]`"),
        ("nodes = [\"a\"]\n[[steps]] x", 2, "[[steps]]", "expected the end of the line"),
        ("nodes = [\"a\"]\nseed = 1.5", 2, "seed", "floats are not supported"),
        ("nodes = [\"a\"]\nseed = 1e3", 2, "seed", "floats are not supported"),
        ("nodes = [\"a\"]\nseed = nan", 2, "seed", "floats are not supported"),
        ("nodes = [\"a\"]\nseed = 1979-05-27", 2, "seed", "dates and times"),
        ("nodes = [\"a\"]\nseed = 07:32:00", 2, "seed", "dates and times"),
        ("nodes = [\"a\"]\nseed = 0x10", 2, "seed", "hexadecimal"),
        ("nodes = [\"a\"]\nseed = 012", 2, "seed", "leading zeros"),
        ("nodes = [\"a\"]\nseed = 1__2", 2, "seed", "misplaced `_`"),
        ("nodes = [\"a\"]\nseed = 12_", 2, "seed", "misplaced `_`"),
        ("nodes = [\"a\"]\nseed = 18446744073709551616", 2, "seed", "out of range"),
        ("nodes = [\"a\"]\nseed = -9223372036854775809", 2, "seed", "out of range"),
        ("nodes = [\"a\"]\nseed = 1 2", 2, "seed", "expected the end of the line"),
        ("nodes = [\"a\"]\nseed = ", 2, "seed", "missing value"),
        ("nodes = [\"a\"]\nseed = {a = 1}", 2, "seed", "inline tables"),
        ("nodes = [\"a\"]\nname = a", 2, "name", "strings must be quoted"),
        ("nodes = [\"a\"]\nname = \"\"\"a\"\"\"", 2, "name", "multi-line strings"),
        ("nodes = [\"a\"]\nname = '''a'''", 2, "name", "multi-line strings"),
        ("nodes = [\"a\"]\nname = \"a", 2, "name", "unterminated string"),
        ("nodes = [\"a\"]\nname = 'a\n'", 2, "name", "unterminated string"),
        ("nodes = [\"a\"]\nname = \"\\x\"", 2, "name", "unsupported escape"),
        ("nodes = [\"a\"]\nname = \"\\u12\"", 2, "name", "hex digits"),
        ("nodes = [\"a\"]\nname = \"\\uD800\"", 2, "name", "not a unicode scalar value"),
        ("nodes = [\"a\"]\nname = \"a\u{1}\"", 2, "name", "must be escaped"),
        ("nodes = [\"a\"]\nname.x = \"a\"", 2, "name", "dotted keys"),
        ("nodes = [\"a\"]\n\"name\" = \"a\"", 2, "syntax", "quoted keys"),
        ("nodes = [\"a\"]\nname \"a\"", 2, "name", "expected `=`"),
        ("nodes = [\"a\"]\n= 1", 2, "syntax", "expected a key"),
        ("nodes = [\"a\"]\nseed = 1\nseed = 2", 3, "seed", "duplicate key (first set on line 2)"),
        ("nodes = [\"a\"]\n[[steps]]\ndo = \"heal\"\ndo = \"heal\"", 4, "do", "duplicate key"),
        ("nodes = [\"a\",\n  \"b\"\n  \"c\"]", 3, "nodes", "expected `,` or `]`"),
        ("nodes = [\"a\", [\"b\"]]", 1, "nodes", "nested arrays"),
        ("nodes = [\"a\",\n", 2, "nodes", "unterminated array"),
        ("nodes = [\"a\"]\rseed = 1", 1, "nodes", "carriage return"),
        ("nodes = [\"a\"]\n\r", 2, "syntax", "carriage return"),
    ];

    #[test]
    fn each_validation_error_names_line_and_field() {
        for &(text, line, field, message) in ERRORS {
            let full = match text.strip_prefix('|') {
                Some(step) => format!("nodes = [\"n1\", \"n2\"]\n[[steps]]\n{step}\n"),
                None => text.to_owned(),
            };
            let e = match parse(&full, "case.toml") {
                Ok(sc) => panic!("expected an error for {text:?}, got {sc:?}"),
                Err(e) => e,
            };
            assert_eq!((e.line, e.field.as_str()), (line, field), "{text:?}: {e}");
            assert!(e.message.contains(message), "{text:?}: {e} (wanted {message:?})");
            assert_eq!(e.file, "case.toml");
        }
    }

    #[test]
    fn round_trip_of_the_example() {
        let sc = parse(EVERY_VERB, "every.toml").unwrap();
        let text = to_toml(&sc);
        let back = parse(&text, "elsewhere.toml").unwrap();
        assert_eq!(back, sc);
        // The writer's own layout: step lines are those of its headers, and it is a fixpoint.
        let lines: Vec<usize> = back.steps.iter().map(|st| st.line).collect();
        assert_eq!(lines, header_lines(&text));
        assert_eq!(to_toml(&back), text);
    }

    #[test]
    fn step_equality_ignores_the_line() {
        let a = Step { line: 3, verb: Verb::Heal };
        assert_eq!(a, Step { line: 30, verb: Verb::Heal });
        assert_ne!(a, Step { line: 3, verb: Verb::HealMessages });
    }

    // --- properties -----------------------------------------------------------------------

    fn mode() -> impl Strategy<Value = Mode> {
        prop_oneof![Just(Mode::Default), Just(Mode::Redo)]
    }

    fn table() -> impl Strategy<Value = i64> {
        prop_oneof![1i64..200, 1i64..=i64::MAX]
    }

    fn kind() -> impl Strategy<Value = Option<MessageKind>> {
        proptest::option::of(proptest::sample::select(TRAVELLING_KINDS.to_vec()))
    }

    fn verb(nodes: Vec<String>) -> impl Strategy<Value = Verb> {
        let node = proptest::sample::select(nodes.clone());
        let opt_node = proptest::option::of(node.clone());
        let side = proptest::sample::subsequence(nodes.clone(), 1..=nodes.len());
        let what = prop_oneof![Just(What::Create), Just(What::Close)];
        let span = proptest::option::of(prop_oneof![0usize..8, any::<usize>()]);
        let spans = 1usize..=SPANS_MAX;
        let count = 1u32..=u32::MAX;
        let filter = || (kind(), opt_node.clone(), opt_node.clone());
        proptest::strategy::Union::new(vec![
            any::<u64>().prop_map(|ms| Verb::Run { ms }).boxed(),
            prop_oneof![Just(SETTLE_MAX_MS_DEFAULT), any::<u64>()]
                .prop_map(|max_ms| Verb::Settle { max_ms })
                .boxed(),
            (table(), span.clone(), node.clone(), mode())
                .prop_map(|(table, span, to, mode)| Verb::Move { table, span, to, mode })
                .boxed(),
            (table(), span, 2usize..=SPANS_MAX, mode())
                .prop_map(|(table, span, into, mode)| Verb::Split { table, span, into, mode })
                .boxed(),
            (table(), 0usize..1000, 2usize..6, mode())
                .prop_map(|(table, first, n, mode)| Verb::Merge {
                    table,
                    spans: (first..first + n).collect(),
                    mode,
                })
                .boxed(),
            (table(), spans).prop_map(|(table, spans)| Verb::CreateTable { table, spans }).boxed(),
            table().prop_map(|table| Verb::DropTable { table }).boxed(),
            (table(), table())
                .prop_filter("distinct", |(a, b)| a != b)
                .prop_map(|(table, new_table)| Verb::TruncateTable { table, new_table })
                .boxed(),
            (node.clone(), what.clone()).prop_map(|(node, what)| Verb::Block { node, what }).boxed(),
            (node.clone(), what).prop_map(|(node, what)| Verb::Unblock { node, what }).boxed(),
            node.clone().prop_map(|node| Verb::CrashNode { node }).boxed(),
            node.clone().prop_map(|node| Verb::RestartNode { node }).boxed(),
            Just(Verb::CrashMaintainer).boxed(),
            node.prop_map(|to| Verb::MoveMaintainer { to }).boxed(),
            side.prop_map(|nodes| Verb::Partition { nodes }).boxed(),
            Just(Verb::Heal).boxed(),
            (filter(), any::<u64>(), proptest::option::of(count.clone()))
                .prop_map(|((kind, from, to), ms, count)| Verb::DelayMessages { kind, from, to, ms, count })
                .boxed(),
            (filter(), count.clone())
                .prop_map(|((kind, from, to), count)| Verb::DropMessages { kind, from, to, count })
                .boxed(),
            (filter(), count)
                .prop_map(|((kind, from, to), count)| Verb::DuplicateMessages { kind, from, to, count })
                .boxed(),
            Just(Verb::HealMessages).boxed(),
            (proptest::sample::select(Phase::ALL.to_vec()), any::<u64>())
                .prop_map(|(phase, max_ms)| Verb::RunUntil { phase, max_ms })
                .boxed(),
            (table(), 0usize..10, mode(), opt_node)
                .prop_map(|(table, replicas, mode, on)| Verb::Expect { table, replicas, mode, on })
                .boxed(),
            table().prop_map(|table| Verb::ExpectDropped { table }).boxed(),
        ])
    }

    /// Any string, newlines, quotes and control characters included.
    const ANY_TEXT: &str = "(?s).{0,8}";

    fn scenario() -> impl Strategy<Value = Scenario> {
        proptest::collection::btree_set("(?s).{1,6}", 1..5).prop_flat_map(|nodes| {
            let nodes: Vec<String> = nodes.into_iter().collect();
            let tables = proptest::collection::btree_map(table(), 1usize..=SPANS_MAX, 0..4)
                .prop_map(|m| m.into_iter().map(|(id, spans)| TableSpec { id, spans }).collect::<Vec<_>>());
            let steps = proptest::collection::vec(verb(nodes.clone()), 0..12)
                .prop_map(|vs| vs.into_iter().map(|verb| Step { line: 0, verb }).collect::<Vec<_>>());
            (
                ANY_TEXT,
                proptest::sample::select(nodes.clone()),
                Just(nodes),
                any::<(bool, bool, u64)>(),
                tables,
                steps,
            )
                .prop_map(|(name, maintainer, nodes, (redo, balance, seed), tables, steps)| {
                    Scenario { name, nodes, maintainer, redo, balance, seed, tables, steps }
                })
        })
    }

    /// Edits applied to a valid file: (position, operation, character).
    fn mutations() -> impl Strategy<Value = Vec<(proptest::sample::Index, u8, char)>> {
        let interesting = prop_oneof![
            proptest::sample::select(
                "[]{}\"'\\=#,._-+:\n\r\t 0123456789aeEx\u{0}\u{7f}\u{feff}é".chars().collect::<Vec<_>>()
            ),
            any::<char>(),
        ];
        proptest::collection::vec((any::<proptest::sample::Index>(), 0u8..5, interesting), 1..8)
    }

    fn mutate(text: &str, edits: &[(proptest::sample::Index, u8, char)]) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        for (at, op, c) in edits {
            if chars.is_empty() {
                chars.push(*c);
                continue;
            }
            let i = at.index(chars.len());
            match op {
                0 => chars.insert(i, *c),
                1 => {
                    chars.remove(i);
                }
                2 => chars[i] = *c,
                3 => {
                    // Cut a run of characters (a token, a line end, a quote ...).
                    let end = (i + 1 + (u32::from(*c) % 16) as usize).min(chars.len());
                    chars.drain(i..end);
                }
                _ => {
                    // Duplicate the line around i (duplicate keys, headers, steps).
                    let start = chars[..i].iter().rposition(|&c| c == '\n').map_or(0, |p| p + 1);
                    let end = chars[i..].iter().position(|&c| c == '\n').map_or(chars.len(), |p| i + p + 1);
                    let line: Vec<char> = chars[start..end].to_vec();
                    chars.splice(end..end, line);
                }
            }
        }
        chars.into_iter().collect()
    }

    /// What must hold for any input: no panic, and anything accepted round-trips.
    fn check_any(text: &str) -> Result<(), TestCaseError> {
        if let Ok(sc) = parse(text, "fuzz.toml") {
            let written = to_toml(&sc);
            let back =
                parse(&written, "fuzz.toml").map_err(|e| TestCaseError::fail(format!("{e}\n{written}")))?;
            prop_assert_eq!(&back, &sc);
            prop_assert_eq!(to_toml(&back), written);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn generated_scenarios_round_trip(sc in scenario()) {
            let text = to_toml(&sc);
            let back = parse(&text, "gen.toml").map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(&back, &sc);
            let lines: Vec<usize> = back.steps.iter().map(|st| st.line).collect();
            prop_assert_eq!(lines, header_lines(&text));
        }

        #[test]
        fn arbitrary_strings_never_panic(text in any::<String>()) {
            check_any(&text)?;
        }

        #[test]
        fn toml_shaped_strings_never_panic(text in "(?s)([a-z_]{1,6} ?= ?|\\[\\[[a-z]{0,6}\\]\\]|[\\[\\]{}\"'\\\\=#,._+:\n\r\t 0-9a-z-]|\"[a-z]{0,3}\"){0,40}") {
            check_any(&text)?;
        }

        #[test]
        fn mutations_of_a_valid_file_never_panic(edits in mutations()) {
            check_any(&mutate(EVERY_VERB, &edits))?;
        }
    }
}
