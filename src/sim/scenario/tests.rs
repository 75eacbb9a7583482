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

[scheduler]
enable-table-across-nodes = true
write-key-threshold = 1_000
max-traffic-percentage = 1.5
rules = "reference"

[[tables]]
id = 100
spans = 4
regions = 40
bytes_per_s = 2.5e6

[[tables]] # trailing comment
id = +101
bytes_per_s = 1000

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

[[steps]]
do = "alter_table"
table = 100

[[steps]]
do = "rename_table"
table = 100
new_table = 104
schema = 2

[[steps]]
do = "drop_database"
schema = 2

[[steps]]
do = "alter_database"
schema = 1

[[steps]]
do = "create_view"

[[steps]]
do = "expect_ddl"
at = 5
written = 1

[[steps]]
do = "expect_ddl"
at = "last"
written = 0

[[steps]]
do = "set_load"
table = 100
bytes_per_s = 1e6
from = 0.5

[[steps]]
do = "set_regions"
table = 100
count = 200

[[steps]]
do = "expect_spans"
table = 100
mode = "redo"
min = 2
max = 4

[[steps]]
do = "expect_balanced"

[[steps]]
do = "expect_quiet"
ms = 30_000
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
    let ok = parse("nodes = [\"a\"]\n[[steps]]\ndo = \"run_until\"\nphase = \"merge-merging\"\n", "f.toml");
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
        Verb::AlterTable { table: 100 },
        Verb::RenameTable { table: 100, new_table: 104, schema: Some(2) },
        Verb::DropDatabase { schema: 2 },
        Verb::AlterDatabase { schema: 1 },
        Verb::CreateView,
        Verb::ExpectDdl { at: DdlRef::Step(5), written: 1 },
        Verb::ExpectDdl { at: DdlRef::Last, written: 0 },
        Verb::SetLoad { table: 100, bytes_per_s: Num(1e6), from: Num(0.5), to: Num(1.0) },
        Verb::SetRegions { table: 100, count: 200 },
        Verb::ExpectSpans { table: 100, mode: Mode::Redo, min: 2, max: 4 },
        Verb::ExpectBalanced { max_over_mean: MAX_OVER_MEAN_DEFAULT, table: None },
        Verb::ExpectQuiet { ms: 30_000 },
    ]
}

/// A table as the loader makes it when only these fields are given.
fn table_spec(id: i64, spans: usize, schema: i64) -> TableSpec {
    TableSpec { id, spans, schema, regions: 1, bytes_per_s: Num(0.0) }
}

#[test]
fn every_verb_parses_to_the_expected_values() {
    let sc = parse(EVERY_VERB, "scenarios/every.toml").unwrap();
    assert_eq!(sc.name, "every \"verb\"\t\\ é");
    assert_eq!(sc.nodes, ["n1", "n2", "n3"]);
    assert_eq!(sc.maintainer, "n2");
    assert!(sc.redo && sc.balance);
    assert_eq!(sc.seed, 1234);
    assert_eq!(
        sc.scheduler,
        SchedulerSpec {
            enable_table_across_nodes: true,
            write_key_threshold: 1000,
            max_traffic_percentage: Num(1.5),
            rules: Rules::Reference,
            ..SchedulerSpec::default()
        }
    );
    assert_eq!(
        sc.tables,
        [
            TableSpec { id: 100, spans: 4, schema: 1, regions: 40, bytes_per_s: Num(2.5e6) },
            TableSpec { id: 101, spans: 1, schema: 1, regions: 1, bytes_per_s: Num(1000.0) },
        ]
    );
    let verbs: Vec<Verb> = sc.steps.iter().map(|st| st.verb.clone()).collect();
    assert_eq!(verbs, every_verb_expected());
    let lines: Vec<usize> = sc.steps.iter().map(|st| st.line).collect();
    assert_eq!(lines, header_lines(EVERY_VERB));
    // The example covers the whole vocabulary, in the contract's order.
    let mut names: Vec<&str> = sc.steps.iter().map(|st| st.verb.name()).collect();
    let mut all = Verb::NAMES.to_vec();
    names.sort_unstable();
    names.dedup();
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
    assert_eq!(sc.scheduler, SchedulerSpec::default());
    assert_eq!(sc.tables, [table_spec(7, 1, 1)]);
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
fn load_verbs_apply_their_defaults() {
    let text = "nodes = [\"a\", \"b\"]\n\
                [[steps]]\ndo = \"set_load\"\ntable = 7\nbytes_per_s = 500\n\
                [[steps]]\ndo = \"set_load\"\ntable = 7\nbytes_per_s = 0.5\nto = 0.25\n\
                [[steps]]\ndo = \"set_regions\"\ntable = 7\ncount = 1\n\
                [[steps]]\ndo = \"expect_spans\"\ntable = 7\nmin = 0\nmax = 0\n\
                [[steps]]\ndo = \"expect_balanced\"\n\
                [[steps]]\ndo = \"expect_balanced\"\nmax_over_mean = 1\ntable = 7\n\
                [[steps]]\ndo = \"expect_quiet\"\nms = 1\n";
    let verbs: Vec<Verb> = parse(text, "f.toml").unwrap().steps.into_iter().map(|st| st.verb).collect();
    assert_eq!(
        verbs,
        [
            Verb::SetLoad { table: 7, bytes_per_s: Num(500.0), from: Num(0.0), to: Num(1.0) },
            Verb::SetLoad { table: 7, bytes_per_s: Num(0.5), from: Num(0.0), to: Num(0.25) },
            Verb::SetRegions { table: 7, count: 1 },
            Verb::ExpectSpans { table: 7, mode: Mode::Default, min: 0, max: 0 },
            Verb::ExpectBalanced { max_over_mean: Num(1.25), table: None },
            Verb::ExpectBalanced { max_over_mean: Num(1.0), table: Some(7) },
            Verb::ExpectQuiet { ms: 1 },
        ]
    );
}

#[test]
fn load_numbers_take_integers_and_floats() {
    let rate = |v: &str| {
        let text = format!("nodes = [\"a\"]\n[[steps]]\ndo = \"set_load\"\ntable = 1\nbytes_per_s = {v}\n");
        match parse(&text, "f.toml").unwrap().steps[0].verb {
            Verb::SetLoad { bytes_per_s, .. } => bytes_per_s,
            ref other => panic!("{other:?}"),
        }
    };
    assert_eq!(rate("0"), Num(0.0));
    assert_eq!(rate("+12_500"), Num(12_500.0));
    assert_eq!(rate("1_000.5"), Num(1000.5));
    assert_eq!(rate("2.5E6"), Num(2.5e6));
    assert_eq!(rate("0.1"), Num(0.1));
    assert_eq!(rate("5e-324"), Num(5e-324));
    assert_eq!(rate("1.7976931348623157e308"), Num(f64::MAX));
    // An integer past 2^53 becomes the nearest f64; -0 and -0.0 read as 0.0.
    assert_eq!(rate("18446744073709551615"), Num(18_446_744_073_709_551_615.0));
    assert_eq!(rate("-0.0"), Num(0.0));
    assert_eq!(rate("-0"), Num(0.0));
}

#[test]
fn numbers_compare_by_bits_and_print_in_a_form_that_reads_back() {
    assert_eq!(Num(f64::NAN), Num(f64::NAN));
    assert_ne!(Num(0.0), Num(-0.0));
    assert_eq!(Num(0.1 + 0.2).get(), 0.1 + 0.2);
    for (v, text) in
        [(1.0, "1.0"), (0.25, "0.25"), (1e-7, "1e-7"), (1e17, "1e17"), (0.1 + 0.2, "0.30000000000000004")]
    {
        assert_eq!(Num(v).to_string(), text);
        assert_eq!(text.parse::<f64>().unwrap().to_bits(), f64::to_bits(v));
    }
}

#[test]
fn scheduler_defaults_are_the_reference_values() {
    let d = SchedulerSpec::default();
    assert_eq!(
        d,
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
    );
    assert_eq!(parse("nodes = [\"a\"]\n", "f.toml").unwrap().scheduler, d);
    // An empty section gives the defaults too, and the section may also come after the steps.
    assert_eq!(parse("nodes = [\"a\"]\n[scheduler]\n", "f.toml").unwrap().scheduler, d);
    let late = "nodes = [\"a\"]\n[[steps]]\ndo = \"heal\"\n[scheduler]\nrules = \"ours\"\n";
    let sc = parse(late, "f.toml").unwrap();
    assert_eq!((sc.scheduler, sc.steps.len()), (d, 1));
    assert_eq!(Rules::default(), Rules::Ours);
    assert_eq!((Rules::Ours.as_str(), Rules::Reference.as_str()), ("ours", "reference"));
}

#[test]
fn an_explicit_scheduler_table_sets_every_field() {
    let text = "nodes = [\"a\"]\n\
                [scheduler]\n\
                enable-table-across-nodes = true\n\
                region-threshold = 0\n\
                region-count-per-span = 7\n\
                write-key-threshold = 4_096\n\
                balance-score-threshold = 1\n\
                min-traffic-percentage = 0.5\n\
                max-traffic-percentage = 2\n\
                check-balance-interval-ms = 1\n\
                rules = \"reference\"\n";
    let sc = parse(text, "f.toml").unwrap();
    assert_eq!(
        sc.scheduler,
        SchedulerSpec {
            enable_table_across_nodes: true,
            region_threshold: 0,
            region_count_per_span: 7,
            // Kept as written: raising it to 10 MiB/s is the scheduler's job.
            write_key_threshold: 4096,
            balance_score_threshold: 1,
            min_traffic_percentage: Num(0.5),
            max_traffic_percentage: Num(2.0),
            check_balance_interval_ms: 1,
            rules: Rules::Reference,
        }
    );
    let written = to_toml(&sc);
    assert!(written.contains("\n[scheduler]\nenable-table-across-nodes = true\n"), "{written}");
    assert_eq!(parse(&written, "f.toml").unwrap(), sc);
}

#[test]
fn tables_take_regions_and_bytes_per_s() {
    let text = "nodes = [\"a\"]\n\
                [[tables]]\nid = 1\nregions = 12\nbytes_per_s = 3.5\n\
                [[tables]]\nid = 2\nbytes_per_s = 7\n\
                [[tables]]\nid = 3\nregions = 18_446_744_073_709_551_615\n\
                [[tables]]\nid = 4\n";
    let sc = parse(text, "f.toml").unwrap();
    assert_eq!(
        sc.tables,
        [
            TableSpec { id: 1, spans: 1, schema: 1, regions: 12, bytes_per_s: Num(3.5) },
            TableSpec { id: 2, spans: 1, schema: 1, regions: 1, bytes_per_s: Num(7.0) },
            TableSpec { id: 3, spans: 1, schema: 1, regions: u64::MAX, bytes_per_s: Num(0.0) },
            table_spec(4, 1, 1),
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
    ("|do = \"block\"\nnode = \"n1\"\nwhat = \"open\"", 5, "what", "\"create\", \"close\" or \"write\""),
    ("|do = \"expect_ddl\"\nat = 0", 4, "at", "not a DDL step"),
    ("|do = \"expect_ddl\"\nat = \"first\"", 4, "at", "expected \"last\" or a step index"),
    ("|do = \"rename_table\"\ntable = 3\nnew_table = 3", 5, "new_table", "must differ"),
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
    // Syntax: the toml crate's errors, at their line; TOML types the contract does not use are
    // type errors of the field; sections come only from `[[tables]]` and `[[steps]]` headers.
    ("nodes = [\"a\"]\n[table]", 2, "table", "unknown top-level key"),
    ("nodes = [\"a\"]\n[[table]]", 2, "table", "unknown top-level key"),
    ("nodes = [\"a\"]\n[[steps.x]]", 2, "steps", "write `[[steps]]` sections"),
    ("nodes = [\"a\"]\nsteps = [{do = \"heal\"}]", 2, "steps", "write `[[steps]]` sections"),
    ("nodes = [\"a\"]\n[[steps]", 2, "syntax", "expected `]`"),
    ("nodes = [\"a\"]\nseed = 1.5", 2, "seed", "expected an integer, found a float"),
    ("nodes = [\"a\"]\nseed = 1979-05-27", 2, "seed", "found a date-time"),
    ("nodes = [\"a\"]\nseed = {a = 1}", 2, "seed", "found a table"),
    ("nodes = [\"a\"]\nname.x = \"a\"", 2, "name", "found a table"),
    ("nodes = [\"a\"]\nseed = 012", 2, "syntax", "leading zero"),
    ("nodes = [\"a\"]\nseed = 18446744073709551616", 2, "seed", "must be at most 18446744073709551615"),
    ("nodes = [\"a\"]\nseed = -9223372036854775809", 2, "seed", "must not be negative"),
    ("nodes = [\"a\"]\nseed = 1000000000000000000000000000000000000000000", 2, "seed", "out of range"),
    ("nodes = [\"a\"]\nname = a", 2, "syntax", "must be quoted"),
    ("nodes = [\"a\"]\nname = \"a", 2, "syntax", "invalid basic string"),
    ("nodes = [\"a\"]\nseed = 1\nseed = 2", 3, "syntax", "duplicate key"),
    ("nodes = [\"a\"]\n[[steps]]\ndo = \"heal\"\ndo = \"heal\"", 4, "syntax", "duplicate key"),
    ("nodes = [\"a\",\n  \"b\"\n  \"c\"]", 3, "syntax", "missing comma"),
    ("nodes = [\"a\", [\"b\"]]", 1, "nodes", "array of strings, found an array in it"),
    ("nodes = [\"a\"]\rseed = 1", 1, "syntax", "carriage return"),
    // Load verbs.
    ("|do = \"set_load\"\ntable = 1", 2, "bytes_per_s", "missing required field"),
    ("|do = \"set_load\"\nbytes_per_s = 1", 2, "table", "missing required field"),
    ("|do = \"set_load\"\ntable = 0\nbytes_per_s = 1", 4, "table", "must be at least 1, got 0"),
    ("|do = \"set_load\"\ntable = 1\nbytes_per_s = -1", 5, "bytes_per_s", "must not be negative, got -1.0"),
    ("|do = \"set_load\"\ntable = 1\nbytes_per_s = -0.5", 5, "bytes_per_s", "must not be negative, got -0.5"),
    ("|do = \"set_load\"\ntable = 1\nbytes_per_s = nan", 5, "bytes_per_s", "must be a finite number, got NaN"),
    ("|do = \"set_load\"\ntable = 1\nbytes_per_s = +inf", 5, "bytes_per_s", "must be a finite number, got inf"),
    ("|do = \"set_load\"\ntable = 1\nbytes_per_s = 1e400", 5, "bytes_per_s", "must be a finite number"),
    ("|do = \"set_load\"\ntable = 1\nbytes_per_s = \"1\"", 5, "bytes_per_s", "expected a number, found a string"),
    ("|do = \"set_load\"\ntable = 1\nbytes_per_s = true", 5, "bytes_per_s", "expected a number, found a boolean"),
    ("|do = \"set_load\"\ntable = 1\nbytes_per_s = 1\nfrom = 1.5", 6, "from", "between 0 and 1, got 1.5"),
    ("|do = \"set_load\"\ntable = 1\nbytes_per_s = 1\nfrom = -0.1", 6, "from", "between 0 and 1, got -0.1"),
    ("|do = \"set_load\"\ntable = 1\nbytes_per_s = 1\nto = 2", 6, "to", "between 0 and 1, got 2.0"),
    ("|do = \"set_load\"\ntable = 1\nbytes_per_s = 1\nto = -inf", 6, "to", "must be a finite number"),
    ("|do = \"set_load\"\ntable = 1\nbytes_per_s = 1\nfrom = 0.5\nto = 0.5", 7, "to", "`from` (0.5) must be less than `to` (0.5)"),
    ("|do = \"set_load\"\ntable = 1\nbytes_per_s = 1\nto = 0.2\nfrom = 0.7", 6, "to", "must be less than `to` (0.2)"),
    ("|do = \"set_load\"\ntable = 1\nbytes_per_s = 1\nfrom = 1", 6, "from", "`from` (1.0) must be less than `to` (1.0)"),
    ("|do = \"set_load\"\ntable = 1\nbytes_per_s = 1\nto = 0", 6, "to", "must be less than `to` (0.0)"),
    ("|do = \"set_load\"\ntable = 1\nrate = 1", 5, "rate", "its fields: table, bytes_per_s, from, to"),
    ("|do = \"set_regions\"\ntable = 1", 2, "count", "missing required field"),
    ("|do = \"set_regions\"\ncount = 1", 2, "table", "missing required field"),
    ("|do = \"set_regions\"\ntable = 1\ncount = 0", 5, "count", "must be at least 1, got 0"),
    ("|do = \"set_regions\"\ntable = 1\ncount = 2.0", 5, "count", "expected an integer, found a float"),
    ("|do = \"set_regions\"\ntable = -1\ncount = 2", 4, "table", "must be at least 1"),
    ("|do = \"set_regions\"\ntable = 1\ncount = 2\nmode = \"redo\"", 6, "mode", "its fields: table, count"),
    ("|do = \"expect_spans\"\nmin = 1\nmax = 2", 2, "table", "missing required field"),
    ("|do = \"expect_spans\"\ntable = 1\nmax = 2", 2, "min", "missing required field"),
    ("|do = \"expect_spans\"\ntable = 1\nmin = 2", 2, "max", "missing required field"),
    ("|do = \"expect_spans\"\ntable = 1\nmin = 3\nmax = 2", 6, "max", "must be at least `min` (3), got 2"),
    ("|do = \"expect_spans\"\ntable = 1\nmin = -1\nmax = 2", 5, "min", "must not be negative"),
    ("|do = \"expect_spans\"\ntable = 1\nmode = \"both\"\nmin = 1\nmax = 2", 5, "mode", "unknown mode"),
    ("|do = \"expect_spans\"\ntable = 1\nmin = 1\nmax = 2\nspans = 1", 7, "spans", "its fields: table, mode, min, max"),
    ("|do = \"expect_balanced\"\nmax_over_mean = 0.99", 4, "max_over_mean", "must be at least 1, got 0.99"),
    ("|do = \"expect_balanced\"\nmax_over_mean = 0", 4, "max_over_mean", "must be at least 1, got 0.0"),
    ("|do = \"expect_balanced\"\nmax_over_mean = inf", 4, "max_over_mean", "must be a finite number"),
    ("|do = \"expect_balanced\"\nmax_over_mean = \"2\"", 4, "max_over_mean", "expected a number"),
    ("|do = \"expect_balanced\"\ntable = 0", 4, "table", "must be at least 1"),
    ("|do = \"expect_balanced\"\nmode = \"redo\"", 4, "mode", "its fields: max_over_mean, table"),
    ("|do = \"expect_quiet\"", 2, "ms", "missing required field"),
    ("|do = \"expect_quiet\"\nms = 0", 4, "ms", "must be at least 1, got 0"),
    ("|do = \"expect_quiet\"\nms = 1.5", 4, "ms", "expected an integer, found a float"),
    // Tables: regions and rates.
    ("nodes = [\"a\"]\n[[tables]]\nid = 1\nregions = 0", 4, "regions", "must be at least 1, got 0"),
    ("nodes = [\"a\"]\n[[tables]]\nid = 1\nregions = 1.0", 4, "regions", "expected an integer, found a float"),
    ("nodes = [\"a\"]\n[[tables]]\nid = 1\nbytes_per_s = -3", 4, "bytes_per_s", "must not be negative"),
    ("nodes = [\"a\"]\n[[tables]]\nid = 1\nbytes_per_s = nan", 4, "bytes_per_s", "must be a finite number"),
    ("nodes = [\"a\"]\n[[tables]]\nid = 1\nregion = 2", 4, "region", "spans, schema, regions, bytes_per_s"),
    // The [scheduler] table.
    ("nodes = [\"a\"]\n[scheduler]\nregion_threshold = 1", 3, "region_threshold", "unknown field for [scheduler] (expected: enable-table-across-nodes, region-threshold, region-count-per-span, write-key-threshold, balance-score-threshold, min-traffic-percentage, max-traffic-percentage, check-balance-interval-ms, rules)"),
    ("nodes = [\"a\"]\n[scheduler]\nenable-table-across-nodes = 1", 3, "enable-table-across-nodes", "expected a boolean"),
    ("nodes = [\"a\"]\n[scheduler]\nregion-threshold = -1", 3, "region-threshold", "must not be negative"),
    ("nodes = [\"a\"]\n[scheduler]\nregion-count-per-span = 0", 3, "region-count-per-span", "must be at least 1, got 0"),
    ("nodes = [\"a\"]\n[scheduler]\nwrite-key-threshold = 1.5e7", 3, "write-key-threshold", "expected an integer, found a float"),
    ("nodes = [\"a\"]\n[scheduler]\nwrite-key-threshold = -1", 3, "write-key-threshold", "must not be negative"),
    ("nodes = [\"a\"]\n[scheduler]\nbalance-score-threshold = 0", 3, "balance-score-threshold", "must be at least 1"),
    ("nodes = [\"a\"]\n[scheduler]\nmin-traffic-percentage = 1", 3, "min-traffic-percentage", "between 0 and 1 (both excluded), got 1.0"),
    ("nodes = [\"a\"]\n[scheduler]\nmin-traffic-percentage = 0.0", 3, "min-traffic-percentage", "got 0.0"),
    ("nodes = [\"a\"]\n[scheduler]\nmin-traffic-percentage = nan", 3, "min-traffic-percentage", "must be a finite number"),
    ("nodes = [\"a\"]\n[scheduler]\nmax-traffic-percentage = 1.0", 3, "max-traffic-percentage", "must be greater than 1, got 1.0"),
    ("nodes = [\"a\"]\n[scheduler]\nmax-traffic-percentage = \"2\"", 3, "max-traffic-percentage", "expected a number"),
    ("nodes = [\"a\"]\n[scheduler]\ncheck-balance-interval-ms = 0", 3, "check-balance-interval-ms", "must be at least 1"),
    ("nodes = [\"a\"]\n[scheduler]\nrules = \"tikv\"", 3, "rules", "unknown rules `tikv` (expected \"ours\" or \"reference\")"),
    ("nodes = [\"a\"]\n[scheduler]\nrules = 1", 3, "rules", "expected a string"),
    ("nodes = [\"a\"]\n[scheduler]\n[scheduler.more]\nrules = \"ours\"", 3, "more", "unknown field for [scheduler]"),
    ("nodes = [\"a\"]\n[scheduler]\nrules = \"ours\"\n[scheduler]", 4, "syntax", "duplicate key"),
    ("nodes = [\"a\"]\nscheduler = { rules = \"ours\" }", 2, "scheduler", "write a `[scheduler]` section"),
    ("nodes = [\"a\"]\nscheduler.rules = \"ours\"", 2, "scheduler", "write a `[scheduler]` section"),
    ("nodes = [\"a\"]\n[scheduler.rules]", 2, "scheduler", "write a `[scheduler]` section"),
    ("nodes = [\"a\"]\n[[scheduler]]", 2, "scheduler", "write a `[scheduler]` section"),
    ("nodes = [\"a\"]\nscheduler = \"ours\"", 2, "scheduler", "write a `[scheduler]` section"),
    ("nodes = [\"a\"]\n[schedulers]", 2, "schedulers", "and the sections [scheduler], [[tables]], [[steps]]"),
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
fn a_scenario_using_every_load_field_round_trips() {
    let verbs = [
        Verb::SetLoad { table: 1, bytes_per_s: Num(0.1), from: Num(0.0), to: Num(1.0) },
        Verb::SetLoad { table: 1, bytes_per_s: Num(0.0), from: Num(1.0 / 3.0), to: Num(0.5) },
        Verb::SetLoad { table: 2, bytes_per_s: Num(1e300), from: Num(5e-324), to: Num(1.0 - f64::EPSILON) },
        Verb::SetRegions { table: 2, count: u64::MAX },
        Verb::ExpectSpans { table: 1, mode: Mode::Redo, min: 0, max: usize::MAX },
        Verb::ExpectSpans { table: 1, mode: Mode::Default, min: 3, max: 3 },
        Verb::ExpectBalanced { max_over_mean: Num(1.25), table: Some(2) },
        Verb::ExpectBalanced { max_over_mean: Num(1.0000000000000002), table: None },
        Verb::ExpectQuiet { ms: u64::MAX },
    ];
    let sc = Scenario {
        name: s("load"),
        nodes: vec![s("n1"), s("n2")],
        maintainer: s("n1"),
        redo: true,
        balance: true,
        seed: 9,
        syncpoint_interval_ms: 0,
        scheduler: SchedulerSpec {
            enable_table_across_nodes: true,
            region_threshold: 0,
            region_count_per_span: u64::MAX,
            write_key_threshold: 1,
            balance_score_threshold: 3,
            min_traffic_percentage: Num(f64::MIN_POSITIVE),
            max_traffic_percentage: Num(1e17),
            check_balance_interval_ms: 1_000,
            rules: Rules::Reference,
        },
        tables: vec![
            TableSpec { id: 1, spans: 2, schema: 3, regions: 100_000, bytes_per_s: Num(12_345.678_9) },
            TableSpec { id: 2, spans: 1, schema: 1, regions: 1, bytes_per_s: Num(f64::MAX) },
            table_spec(3, 1, 1),
        ],
        steps: verbs.into_iter().map(|verb| Step { line: 0, verb }).collect(),
    };
    let text = to_toml(&sc);
    let back = parse(&text, "load.toml").unwrap();
    assert_eq!(back, sc, "{text}");
    assert_eq!(to_toml(&back), text);
    // The canonical layout: [scheduler] after the top-level keys, before the tables; defaults
    // left out.
    let at = |needle: &str| text.find(needle).unwrap_or_else(|| panic!("no {needle:?} in {text}"));
    assert!(at("seed = 9\n") < at("\n[scheduler]\n") && at("\n[scheduler]\n") < at("\n[[tables]]\n"));
    assert!(text.contains("\nbytes_per_s = 0.1\n") && !text.contains("from = 0.0"), "{text}");
    assert!(!text.contains("max_over_mean = 1.25") && !text.contains("regions = 1\n"), "{text}");
    // A default [scheduler] is not written at all.
    let plain = Scenario { scheduler: SchedulerSpec::default(), ..sc };
    let text = to_toml(&plain);
    assert!(!text.contains("[scheduler]"), "{text}");
    assert_eq!(parse(&text, "load.toml").unwrap(), plain);
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

/// A finite rate >= 0 (never -0.0, which the loader reads as 0.0).
fn rate() -> impl Strategy<Value = Num> {
    use proptest::num::f64::{NORMAL, POSITIVE, SUBNORMAL, ZERO};
    prop_oneof![Just(0.0), 0.0..1e9f64, POSITIVE | NORMAL | SUBNORMAL | ZERO].prop_map(Num)
}

/// A part `[from, to)` of a key range.
fn part() -> impl Strategy<Value = (Num, Num)> {
    let end = || prop_oneof![Just(0.0), Just(1.0), 0.0..=1.0f64];
    (end(), end()).prop_filter("a non-empty part", |(a, b)| a != b).prop_map(|(a, b)| {
        let (from, to) = if a < b { (a, b) } else { (b, a) };
        (Num(from), Num(to))
    })
}

fn scheduler_spec() -> impl Strategy<Value = SchedulerSpec> {
    let positive = || prop_oneof![Just(1u64), 1u64..=u64::MAX];
    let changed = (
        any::<bool>(),
        prop_oneof![Just(0u64), any::<u64>()],
        positive(),
        prop_oneof![Just(0u64), Just(10_485_760u64), any::<u64>()],
        positive(),
        prop_oneof![Just(0.8), 0.0..1.0f64].prop_filter("in (0, 1)", |v| *v > 0.0),
        prop_oneof![Just(1.25), 1.0..1e6f64].prop_filter("> 1", |v| *v > 1.0),
        positive(),
        prop_oneof![Just(Rules::Ours), Just(Rules::Reference)],
    )
        .prop_map(|(across, rt, per_span, wkt, score, min, max, interval, rules)| SchedulerSpec {
            enable_table_across_nodes: across,
            region_threshold: rt,
            region_count_per_span: per_span,
            write_key_threshold: wkt,
            balance_score_threshold: score,
            min_traffic_percentage: Num(min),
            max_traffic_percentage: Num(max),
            check_balance_interval_ms: interval,
            rules,
        });
    prop_oneof![Just(SchedulerSpec::default()), changed]
}

fn kind() -> impl Strategy<Value = Option<MessageKind>> {
    proptest::option::of(proptest::sample::select(TRAVELLING_KINDS.to_vec()))
}

fn verb(nodes: Vec<String>) -> impl Strategy<Value = Verb> {
    let node = proptest::sample::select(nodes.clone());
    let opt_node = proptest::option::of(node.clone());
    let side = proptest::sample::subsequence(nodes.clone(), 1..=nodes.len());
    let what = prop_oneof![Just(What::Create), Just(What::Close), Just(What::Write)];
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
        table().prop_map(|table| Verb::AlterTable { table }).boxed(),
        (table(), table(), proptest::option::of(table()))
            .prop_filter("distinct", |(a, b, _)| a != b)
            .prop_map(|(table, new_table, schema)| Verb::RenameTable { table, new_table, schema })
            .boxed(),
        table().prop_map(|schema| Verb::DropDatabase { schema }).boxed(),
        table().prop_map(|schema| Verb::AlterDatabase { schema }).boxed(),
        Just(Verb::CreateView).boxed(),
        (0usize..4).prop_map(|written| Verb::ExpectDdl { at: DdlRef::Last, written }).boxed(),
        (table(), rate(), part())
            .prop_map(|(table, bytes_per_s, (from, to))| Verb::SetLoad { table, bytes_per_s, from, to })
            .boxed(),
        (table(), 1u64..=u64::MAX).prop_map(|(table, count)| Verb::SetRegions { table, count }).boxed(),
        (table(), mode(), any::<usize>(), any::<usize>())
            .prop_map(|(table, mode, a, b)| Verb::ExpectSpans { table, mode, min: a.min(b), max: a.max(b) })
            .boxed(),
        (prop_oneof![Just(1.25), Just(1.0), 1.0..1e6f64], proptest::option::of(table()))
            .prop_map(|(m, table)| Verb::ExpectBalanced { max_over_mean: Num(m), table })
            .boxed(),
        (1u64..=u64::MAX).prop_map(|ms| Verb::ExpectQuiet { ms }).boxed(),
    ])
}

/// Any string, newlines, quotes and control characters included.
const ANY_TEXT: &str = "(?s).{0,8}";

fn scenario() -> impl Strategy<Value = Scenario> {
    proptest::collection::btree_set("(?s).{1,6}", 1..5).prop_flat_map(|nodes| {
        let nodes: Vec<String> = nodes.into_iter().collect();
        let regions = prop_oneof![Just(1u64), 1u64..=u64::MAX];
        let tables =
            proptest::collection::btree_map(table(), (1usize..=SPANS_MAX, table(), regions, rate()), 0..4)
                .prop_map(|m| {
                    m.into_iter()
                        .map(|(id, (spans, schema, regions, bytes_per_s))| TableSpec {
                            id,
                            spans,
                            schema,
                            regions,
                            bytes_per_s,
                        })
                        .collect::<Vec<_>>()
                });
        let steps = proptest::collection::vec(verb(nodes.clone()), 0..12)
            .prop_map(|vs| vs.into_iter().map(|verb| Step { line: 0, verb }).collect::<Vec<_>>());
        (
            ANY_TEXT,
            proptest::sample::select(nodes.clone()),
            Just(nodes),
            (any::<(bool, bool, u64)>(), prop_oneof![Just(0u64), any::<u64>()]),
            scheduler_spec(),
            tables,
            steps,
        )
            .prop_map(
                |(
                    name,
                    maintainer,
                    nodes,
                    ((redo, balance, seed), syncpoint_interval_ms),
                    scheduler,
                    tables,
                    steps,
                )| {
                    Scenario {
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
                    }
                },
            )
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
