//! The loader: a file parsed by the `toml` crate (its spans give every error a line), then each
//! section checked field by field into the typed [`Scenario`].

use std::collections::BTreeMap;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::{
    DdlRef, Num, Rules, Scenario, ScenarioError, SchedulerSpec, Step, TableSpec, Verb, What,
    MAX_OVER_MEAN_DEFAULT, RUN_UNTIL_MAX_MS_DEFAULT, SETTLE_MAX_MS_DEFAULT, SPANS_MAX, TRAVELLING_KINDS,
};
use crate::ids::Mode;
use crate::messages::MessageKind;

/// Parses and validates a scenario file. `file` is only used in errors and for the default `name`
/// (the file stem).
pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
    let lines = Lines(text.match_indices('\n').map(|(i, _)| i).collect());
    let table = DeTable::parse(text).map_err(|e| ScenarioError {
        file: file.to_owned(),
        line: lines.of(e.span().map_or(0, |s| s.start)),
        field: "syntax".to_owned(),
        message: e.message().to_owned(),
    })?;
    load(&Doc::new(table.get_ref(), text, &lines), file)
}

/// The byte offsets of a text's line feeds, to turn a span into a 1-based line.
struct Lines(Vec<usize>);

impl Lines {
    fn of(&self, offset: usize) -> usize {
        self.0.partition_point(|&n| n < offset) + 1
    }
}

/// `key = value` and the line of its key.
struct Entry<'a> {
    key: &'a str,
    line: usize,
    value: &'a DeValue<'a>,
}

/// The top level, the `[scheduler]` table or one `[[...]]` element: its header as written (for
/// errors), the header's line (1 for the top level) and its entries in file order.
struct Section<'a> {
    header: &'static str,
    line: usize,
    entries: Vec<Entry<'a>>,
}

/// A parsed file cut into the top level, the `[scheduler]` table and the `[[tables]]` and
/// `[[steps]]` sections.
struct Doc<'a> {
    top: Section<'a>,
    scheduler: Option<Section<'a>>,
    tables: Vec<Section<'a>>,
    steps: Vec<Section<'a>>,
}

impl<'a> Doc<'a> {
    fn new(top: &'a DeTable<'a>, text: &str, lines: &Lines) -> Doc<'a> {
        let mut doc = Doc {
            top: section(top, "the top level", 1, lines),
            scheduler: None,
            tables: Vec::new(),
            steps: Vec::new(),
        };
        // Only a `[scheduler]` header makes the section; an inline or dotted `scheduler` table stays
        // a top-level key and is refused there.
        let scheduler =
            top.iter().find(|(k, _)| k.get_ref() == "scheduler").and_then(|(_, v)| match v.get_ref() {
                DeValue::Table(t) if text[v.span()].starts_with('[') => {
                    Some(section(t, "[scheduler]", lines.of(v.span().start), lines))
                }
                _ => None,
            });
        if let Some(scheduler) = scheduler {
            doc.top.entries.retain(|e| e.key != "scheduler");
            doc.scheduler = Some(scheduler);
        }
        for (name, header) in [("tables", "[[tables]]"), ("steps", "[[steps]]")] {
            let Some(at) = doc.top.entries.iter().position(|e| e.key == name) else { continue };
            // Only `[[name]]` headers make sections; an inline `name = [...]` stays a top-level key
            // and is refused there, so that one layout is the contract.
            let DeValue::Array(items) = doc.top.entries[at].value else { continue };
            let headers: Option<Vec<Section<'a>>> = items
                .iter()
                .map(|item| match item.get_ref() {
                    DeValue::Table(t) if text[item.span()].starts_with("[[") => {
                        Some(section(t, header, lines.of(item.span().start), lines))
                    }
                    _ => None,
                })
                .collect();
            if let Some(sections) = headers.filter(|s| !s.is_empty()) {
                doc.top.entries.remove(at);
                *(if name == "tables" { &mut doc.tables } else { &mut doc.steps }) = sections;
            }
        }
        doc
    }
}

fn section<'a>(table: &'a DeTable<'a>, header: &'static str, line: usize, lines: &Lines) -> Section<'a> {
    let mut keyed: Vec<(usize, Entry<'a>)> = table
        .iter()
        .map(|(k, v)| {
            let start = k.span().start;
            (start, Entry { key: k.get_ref(), line: lines.of(start), value: v.get_ref() })
        })
        .collect();
    keyed.sort_by_key(|(start, _)| *start);
    Section { header, line, entries: keyed.into_iter().map(|(_, e)| e).collect() }
}

/// The value's type with its article, for "expected X, found Y".
fn describe(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// An integer's value, wide enough for `i64::MIN ..= u64::MAX` and beyond (`None` past `i128`).
fn integer(v: &DeValue<'_>) -> Option<Option<i128>> {
    match v {
        DeValue::Integer(i) => Some(i128::from_str_radix(i.as_str(), i.radix()).ok()),
        _ => None,
    }
}

fn load(doc: &Doc<'_>, file: &str) -> Result<Scenario, ScenarioError> {
    let top = Fields { file, section: &doc.top };
    for e in &top.section.entries {
        if !TOP_KEYS.contains(&e.key) {
            let message = if matches!(e.key, "tables" | "steps") {
                format!("write `[[{}]]` sections instead of a `{}` key", e.key, e.key)
            } else if e.key == "scheduler" {
                "write a `[scheduler]` section (a table header) instead".to_owned()
            } else {
                format!(
                    "unknown top-level key (expected one of: {}; and the sections [scheduler], \
                     [[tables]], [[steps]])",
                    TOP_KEYS.join(", ")
                )
            };
            return Err(top.err(e.line, e.key, message));
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
    let syncpoint_interval_ms = top.ms("syncpoint_interval_ms")?.unwrap_or(0);
    let scheduler = match &doc.scheduler {
        Some(section) => scheduler(&Fields { file, section })?,
        None => SchedulerSpec::default(),
    };

    let mut tables = Vec::with_capacity(doc.tables.len());
    let mut declared: BTreeMap<i64, usize> = BTreeMap::new();
    for section in &doc.tables {
        let f = Fields { file, section };
        f.known(&["id", "spans", "schema", "regions", "bytes_per_s"], None)?;
        let id = f.required("id", f.table("id")?)?;
        if let Some(first) = declared.insert(id, f.line_of("id")) {
            return Err(f.fail("id", format!("table {id} is already declared on line {first}")));
        }
        let spans = f.spans("spans")?.unwrap_or(1);
        let schema = f.table("schema")?.unwrap_or(1);
        let regions = f.regions("regions")?.unwrap_or(1);
        let bytes_per_s = f.rate("bytes_per_s")?.unwrap_or(Num(0.0));
        tables.push(TableSpec { id, spans, schema, regions, bytes_per_s });
    }

    let mut steps = Vec::with_capacity(doc.steps.len());
    for section in &doc.steps {
        let f = Fields { file, section };
        steps.push(Step { line: section.line, verb: step_verb(&f, &nodes)? });
    }

    for (i, section) in doc.steps.iter().enumerate() {
        if let Verb::ExpectDdl { at: DdlRef::Step(at), .. } = steps[i].verb {
            if !steps.get(at).is_some_and(|s| s.verb.is_ddl()) {
                let f = Fields { file, section };
                return Err(f.fail("at", format!("step {at} is not a DDL step")));
            }
        }
    }

    Ok(Scenario {
        name,
        nodes,
        maintainer,
        redo,
        balance,
        seed,
        syncpoint_interval_ms,
        scheduler,
        tables,
        steps,
    })
}

/// The `[scheduler]` keys, as the reference names them (and our `rules`).
const SCHEDULER_KEYS: [&str; 9] = [
    "enable-table-across-nodes",
    "region-threshold",
    "region-count-per-span",
    "write-key-threshold",
    "balance-score-threshold",
    "min-traffic-percentage",
    "max-traffic-percentage",
    "check-balance-interval-ms",
    "rules",
];

fn scheduler(f: &Fields<'_>) -> Result<SchedulerSpec, ScenarioError> {
    f.known(&SCHEDULER_KEYS, None)?;
    let d = SchedulerSpec::default();
    let whole = |key| f.bounded(key, 0, u64::MAX.into());
    let positive = |key| f.bounded(key, 1, u64::MAX.into());
    let rules = match f.string("rules")? {
        None => d.rules,
        Some("ours") => Rules::Ours,
        Some("reference") => Rules::Reference,
        Some(other) => {
            return Err(
                f.fail("rules", format!("unknown rules `{other}` (expected \"ours\" or \"reference\")"))
            )
        }
    };
    Ok(SchedulerSpec {
        enable_table_across_nodes: f
            .boolean("enable-table-across-nodes")?
            .unwrap_or(d.enable_table_across_nodes),
        region_threshold: whole("region-threshold")?.unwrap_or(d.region_threshold),
        region_count_per_span: positive("region-count-per-span")?.unwrap_or(d.region_count_per_span),
        write_key_threshold: whole("write-key-threshold")?.unwrap_or(d.write_key_threshold),
        balance_score_threshold: positive("balance-score-threshold")?.unwrap_or(d.balance_score_threshold),
        min_traffic_percentage: f
            .number_in("min-traffic-percentage", "must be between 0 and 1 (both excluded)", |v| {
                v > 0.0 && v < 1.0
            })?
            .unwrap_or(d.min_traffic_percentage),
        max_traffic_percentage: f
            .number_in("max-traffic-percentage", "must be greater than 1", |v| v > 1.0)?
            .unwrap_or(d.max_traffic_percentage),
        check_balance_interval_ms: positive("check-balance-interval-ms")?
            .unwrap_or(d.check_balance_interval_ms),
        rules,
    })
}

const TOP_KEYS: [&str; 7] =
    ["name", "nodes", "maintainer", "redo", "balance", "seed", "syncpoint_interval_ms"];

const MESSAGE_FAULT: [&str; 4] = ["kind", "from", "to", "count"];

fn step_verb(f: &Fields<'_>, nodes: &[String]) -> Result<Verb, ScenarioError> {
    let name = f.required("do", f.string("do")?)?;
    let known = |fields: &[&str]| f.known(fields, Some(name));
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
        "alter_table" => {
            known(&["table"])?;
            Verb::AlterTable { table: f.required("table", f.table("table")?)? }
        }
        "rename_table" => {
            known(&["table", "new_table", "schema"])?;
            let table = f.required("table", f.table("table")?)?;
            let new_table = f.required("new_table", f.table("new_table")?)?;
            if new_table == table {
                return Err(f.fail("new_table", "must differ from `table`"));
            }
            Verb::RenameTable { table, new_table, schema: f.table("schema")? }
        }
        "drop_database" => {
            known(&["schema"])?;
            Verb::DropDatabase { schema: f.required("schema", f.table("schema")?)? }
        }
        "alter_database" => {
            known(&["schema"])?;
            Verb::AlterDatabase { schema: f.required("schema", f.table("schema")?)? }
        }
        "create_view" => {
            known(&[])?;
            Verb::CreateView
        }
        "expect_ddl" => {
            known(&["at", "written"])?;
            let at = match f.entry("at") {
                None => return Err(f.fail("at", "required: \"last\" or the index of a DDL step")),
                Some(_) => match f.string("at") {
                    Ok(Some("last")) => DdlRef::Last,
                    Ok(Some(other)) => {
                        return Err(
                            f.fail("at", format!("unknown `{other}` (expected \"last\" or a step index)"))
                        )
                    }
                    _ => DdlRef::Step(f.required("at", f.index("at")?)?),
                },
            };
            Verb::ExpectDdl { at, written: f.index("written")?.unwrap_or(1) }
        }
        "set_load" => {
            known(&["table", "bytes_per_s", "from", "to"])?;
            let table = f.required("table", f.table("table")?)?;
            let bytes_per_s = f.required("bytes_per_s", f.rate("bytes_per_s")?)?;
            let from = f.fraction("from")?.unwrap_or(Num(0.0));
            let to = f.fraction("to")?.unwrap_or(Num(1.0));
            if from.get() >= to.get() {
                // Name the field that is written down (`to` may be left at its default).
                let key = if f.entry("to").is_some() { "to" } else { "from" };
                return Err(f.fail(key, format!("`from` ({from}) must be less than `to` ({to})")));
            }
            Verb::SetLoad { table, bytes_per_s, from, to }
        }
        "set_regions" => {
            known(&["table", "count"])?;
            Verb::SetRegions {
                table: f.required("table", f.table("table")?)?,
                count: f.required("count", f.regions("count")?)?,
            }
        }
        "expect_spans" => {
            known(&["table", "mode", "min", "max"])?;
            let table = f.required("table", f.table("table")?)?;
            let mode = f.mode()?;
            let min = f.required("min", f.index("min")?)?;
            let max = f.required("max", f.index("max")?)?;
            if max < min {
                return Err(f.fail("max", format!("must be at least `min` ({min}), got {max}")));
            }
            Verb::ExpectSpans { table, mode, min, max }
        }
        "expect_balanced" => {
            known(&["max_over_mean", "table"])?;
            Verb::ExpectBalanced {
                max_over_mean: f
                    .number_in("max_over_mean", "must be at least 1", |v| v >= 1.0)?
                    .unwrap_or(MAX_OVER_MEAN_DEFAULT),
                table: f.table("table")?,
            }
        }
        "expect_quiet" => {
            known(&["ms"])?;
            Verb::ExpectQuiet { ms: f.required("ms", f.bounded("ms", 1, u64::MAX.into())?)? }
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
    section: &'a Section<'a>,
}

impl<'a> Fields<'a> {
    fn err(&self, line: usize, field: &str, message: impl Into<String>) -> ScenarioError {
        ScenarioError { file: self.file.to_owned(), line, field: field.to_owned(), message: message.into() }
    }

    fn entry(&self, key: &str) -> Option<&'a Entry<'a>> {
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

    /// Rejects any key not in `allowed` (typos must not silently fall back to defaults). For a
    /// step, `verb` names it, and `do` is allowed besides its own fields.
    fn known(&self, allowed: &[&str], verb: Option<&str>) -> Result<(), ScenarioError> {
        let stray = self
            .section
            .entries
            .iter()
            .find(|e| verb.is_none_or(|_| e.key != "do") && !allowed.contains(&e.key));
        let Some(e) = stray else { return Ok(()) };
        let message = match verb {
            Some(verb) => format!("unknown field for `{verb}` (its fields: {})", list(allowed)),
            None => format!("unknown field for {} (expected: {})", self.section.header, list(allowed)),
        };
        Err(self.err(e.line, e.key, message))
    }

    fn mismatch(&self, e: &Entry<'_>, expected: &str) -> ScenarioError {
        self.err(e.line, e.key, format!("expected {expected}, found {}", describe(e.value)))
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>, ScenarioError> {
        match self.entry(key) {
            None => Ok(None),
            Some(Entry { value: DeValue::String(s), .. }) => Ok(Some(s)),
            Some(e) => Err(self.mismatch(e, "a string")),
        }
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, ScenarioError> {
        match self.entry(key) {
            None => Ok(None),
            Some(Entry { value: DeValue::Boolean(b), .. }) => Ok(Some(*b)),
            Some(e) => Err(self.mismatch(e, "a boolean")),
        }
    }

    /// An integer in `min ..= max`, converted to `T` (which holds that range).
    fn bounded<T: TryFrom<i128>>(&self, key: &str, min: i128, max: i128) -> Result<Option<T>, ScenarioError> {
        let v = match self.entry(key) {
            None => return Ok(None),
            Some(e) => match integer(e.value) {
                Some(Some(v)) => v,
                Some(None) => return Err(self.fail(key, "out of range")),
                None => return Err(self.mismatch(e, "an integer")),
            },
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

    /// A number of regions, >= 1.
    fn regions(&self, key: &str) -> Result<Option<u64>, ScenarioError> {
        self.bounded(key, 1, u64::MAX.into())
    }

    /// A finite number, written as a TOML integer or float; `-0.0` reads as `0.0`.
    fn number(&self, key: &str) -> Result<Option<f64>, ScenarioError> {
        let v = match self.entry(key) {
            None => return Ok(None),
            Some(e) => match e.value {
                // Past 2^53 the nearest `f64`, as a TOML float of those digits would give.
                DeValue::Integer(_) => match integer(e.value) {
                    Some(Some(i)) => i as f64,
                    _ => return Err(self.fail(key, "out of range")),
                },
                DeValue::Float(x) => x
                    .as_str()
                    .parse::<f64>()
                    .map_err(|_| self.fail(key, format!("unreadable number `{}`", x.as_str())))?,
                _ => return Err(self.mismatch(e, "a number")),
            },
        };
        if !v.is_finite() {
            return Err(self.fail(key, format!("must be a finite number, got {v}")));
        }
        Ok(Some(v + 0.0))
    }

    /// A finite number for which `ok` holds; `rule` says which when it does not.
    fn number_in(
        &self,
        key: &str,
        rule: &str,
        ok: impl Fn(f64) -> bool,
    ) -> Result<Option<Num>, ScenarioError> {
        match self.number(key)? {
            None => Ok(None),
            Some(v) if ok(v) => Ok(Some(Num(v))),
            Some(v) => Err(self.fail(key, format!("{rule}, got {}", Num(v)))),
        }
    }

    /// A write rate in bytes/s, >= 0.
    fn rate(&self, key: &str) -> Result<Option<Num>, ScenarioError> {
        self.number_in(key, "must not be negative", |v| v >= 0.0)
    }

    /// A fraction of a table's key range, in [0, 1].
    fn fraction(&self, key: &str) -> Result<Option<Num>, ScenarioError> {
        self.number_in(key, "must be between 0 and 1", |v| (0.0..=1.0).contains(&v))
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
            Some("write") => Ok(Some(What::Write)),
            Some(other) => {
                Err(self
                    .fail("what", format!("unknown `{other}` (expected \"create\", \"close\" or \"write\")")))
            }
        }
    }

    fn kind(&self) -> Result<Option<MessageKind>, ScenarioError> {
        let Some(name) = self.string("kind")? else { return Ok(None) };
        match name.parse::<MessageKind>().ok() {
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

    fn array(&self, key: &str, expected: &str) -> Result<Option<&'a [Spanned<DeValue<'a>>]>, ScenarioError> {
        match self.entry(key) {
            None => Ok(None),
            Some(Entry { value: DeValue::Array(items), .. }) => Ok(Some(items)),
            Some(e) => Err(self.mismatch(e, expected)),
        }
    }

    fn strings(&self, key: &str) -> Result<Option<Vec<String>>, ScenarioError> {
        let Some(items) = self.array(key, "an array of strings")? else { return Ok(None) };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match item.get_ref() {
                DeValue::String(s) => out.push(s.to_string()),
                other => {
                    let message = format!("expected an array of strings, found {} in it", describe(other));
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
            let Some(v) = integer(item.get_ref()) else {
                let message =
                    format!("expected an array of integers, found {} in it", describe(item.get_ref()));
                return Err(self.fail("spans", message));
            };
            let v = v.ok_or_else(|| self.fail("spans", "out of range"))?;
            check_range(v, 0, usize::MAX as i128).map_err(|m| self.fail("spans", m))?;
            let i = usize::try_from(v).map_err(|_| self.fail("spans", format!("{v} is out of range")))?;
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
