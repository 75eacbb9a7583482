//! The writer: a [`Scenario`] as a file in the canonical layout that [`super::parse`] reads back.

use super::{
    DdlRef, Num, Scenario, SchedulerSpec, Verb, MAX_OVER_MEAN_DEFAULT, RUN_UNTIL_MAX_MS_DEFAULT,
    SETTLE_MAX_MS_DEFAULT,
};
use crate::ids::Mode;
use crate::messages::MessageKind;

/// Writes a valid scenario as a file that [`super::parse`] reads back to an equal [`Scenario`]:
/// the top level in full, then the `[scheduler]` table (only its fields that differ from their
/// defaults, and none of it when all hold them), then the tables, then the steps, each step's fields
/// in the contract's order and left out where they hold their default. Numbers are written in the
/// shortest form that reads back to the same `f64`.
pub fn to_toml(s: &Scenario) -> String {
    let mut w = Writer::default();
    w.field("name", quote(&s.name));
    w.field("nodes", string_array(&s.nodes));
    w.field("maintainer", quote(&s.maintainer));
    w.field("redo", s.redo);
    w.field("balance", s.balance);
    w.field("seed", s.seed);
    w.field_unless("syncpoint_interval_ms", s.syncpoint_interval_ms, 0);
    write_scheduler(&mut w, &s.scheduler);
    for t in &s.tables {
        w.header("tables");
        w.field("id", t.id);
        w.field_unless("spans", t.spans, 1);
        w.field_unless("schema", t.schema, 1);
        w.field_unless("regions", t.regions, 1);
        w.field_unless("bytes_per_s", t.bytes_per_s, Num(0.0));
    }
    for step in &s.steps {
        w.header("steps");
        w.field("do", quote(step.verb.name()));
        write_verb(&mut w, &step.verb);
    }
    w.out
}

#[derive(Default)]
struct Writer {
    out: String,
}

impl Writer {
    /// A `[name]` table header.
    fn table(&mut self, name: &str) {
        self.out.push_str("\n[");
        self.out.push_str(name);
        self.out.push_str("]\n");
    }

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

fn write_scheduler(w: &mut Writer, c: &SchedulerSpec) {
    let d = SchedulerSpec::default();
    if *c == d {
        return;
    }
    w.table("scheduler");
    w.field_unless("enable-table-across-nodes", c.enable_table_across_nodes, d.enable_table_across_nodes);
    w.field_unless("region-threshold", c.region_threshold, d.region_threshold);
    w.field_unless("region-count-per-span", c.region_count_per_span, d.region_count_per_span);
    w.field_unless("write-key-threshold", c.write_key_threshold, d.write_key_threshold);
    w.field_unless("balance-score-threshold", c.balance_score_threshold, d.balance_score_threshold);
    w.field_unless("min-traffic-percentage", c.min_traffic_percentage, d.min_traffic_percentage);
    w.field_unless("max-traffic-percentage", c.max_traffic_percentage, d.max_traffic_percentage);
    w.field_unless("check-balance-interval-ms", c.check_balance_interval_ms, d.check_balance_interval_ms);
    if c.rules != d.rules {
        w.field("rules", quote(c.rules.as_str()));
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
        Verb::DropTable { table } | Verb::ExpectDropped { table } | Verb::AlterTable { table } => {
            w.field("table", table)
        }
        Verb::RenameTable { table, new_table, schema } => {
            w.field("table", table);
            w.field("new_table", new_table);
            w.option("schema", *schema);
        }
        Verb::DropDatabase { schema } | Verb::AlterDatabase { schema } => w.field("schema", schema),
        Verb::CreateView => {}
        Verb::ExpectDdl { at, written } => {
            match at {
                DdlRef::Last => w.field("at", quote("last")),
                DdlRef::Step(i) => w.field("at", i),
            }
            w.field_unless("written", *written, 1);
        }
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
        Verb::SetLoad { table, bytes_per_s, from, to } => {
            w.field("table", table);
            w.field("bytes_per_s", bytes_per_s);
            w.field_unless("from", *from, Num(0.0));
            w.field_unless("to", *to, Num(1.0));
        }
        Verb::SetRegions { table, count } => {
            w.field("table", table);
            w.field("count", count);
        }
        Verb::ExpectSpans { table, mode, min, max } => {
            w.field("table", table);
            w.mode(*mode);
            w.field("min", min);
            w.field("max", max);
        }
        Verb::ExpectBalanced { max_over_mean, table } => {
            w.field_unless("max_over_mean", *max_over_mean, MAX_OVER_MEAN_DEFAULT);
            w.option("table", *table);
        }
        Verb::ExpectQuiet { ms } => w.field("ms", ms),
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
            c if (c < ' ' && c != '\t') || c == '\u{7f}' => out.push_str(&format!("\\u{:04X}", u32::from(c))),
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
