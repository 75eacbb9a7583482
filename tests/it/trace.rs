//! `sim --trace`: the timeline of a bundled failover scenario is well formed (every slice ends
//! on its own track, every arrow has one end) and shows what the scenario is about: the merged
//! dispatcher's states, the merge operator across the failover, messages with their outcome,
//! the counters and the failover marker.

use std::collections::{BTreeMap, BTreeSet};

use dispatcher_core::sim::run::run;
use dispatcher_core::sim::scenario::parse;
use dispatcher_core::sim::trace::Trace;
use dispatcher_core::sim::world::SimOptions;
use serde_json::Value;

/// A traced run: its events, track names by (pid, tid), process names by pid.
type Traced = (Vec<Value>, BTreeMap<(u64, u64), String>, BTreeMap<u64, String>);

fn traced(name: &str) -> Traced {
    let path = format!("{}/scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let scenario = parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
    let mut trace = Trace::new();
    assert!(run(&scenario, "", SimOptions::default(), Some(&mut trace)).passed);
    let json = trace.to_json();
    let events = json["traceEvents"].as_array().unwrap().clone();
    let mut tracks = BTreeMap::new();
    let mut processes = BTreeMap::new();
    for e in events.iter().filter(|e| e["ph"] == "M") {
        let name = e["args"]["name"].as_str().unwrap().to_string();
        match e["name"].as_str().unwrap() {
            "thread_name" => tracks.insert((e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap()), name),
            _ => processes.insert(e["pid"].as_u64().unwrap(), name),
        };
    }
    (events, tracks, processes)
}

fn track(e: &Value) -> (u64, u64) {
    (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap_or(0))
}

#[test]
fn trace_slices_nest_and_end_and_every_arrow_has_one_end() {
    let (events, _, _) = traced("s5-merge-interrupted-before-commit");
    let mut stacks: BTreeMap<(u64, u64), Vec<String>> = BTreeMap::new();
    let mut asyncs: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let (mut starts, mut ends) = (BTreeSet::new(), BTreeSet::new());
    let mut last_ts = 0;
    for e in events.iter().filter(|e| e["ph"] != "M") {
        let ts = e["ts"].as_u64().unwrap();
        assert!(ts >= last_ts, "events are in time order: {e}");
        last_ts = ts;
        match e["ph"].as_str().unwrap() {
            "B" => stacks.entry(track(e)).or_default().push(e["name"].as_str().unwrap().to_string()),
            "E" => {
                assert!(stacks.entry(track(e)).or_default().pop().is_some(), "an end without a begin: {e}")
            }
            "b" => {
                asyncs.entry(e["id"].as_u64().unwrap()).or_default().push(e["name"].as_str().unwrap().into())
            }
            "e" => {
                let open = asyncs.entry(e["id"].as_u64().unwrap()).or_default().pop();
                assert_eq!(open.as_deref(), e["name"].as_str(), "async slices end innermost first");
            }
            "s" => assert!(starts.insert(e["id"].as_u64().unwrap()), "one start per arrow"),
            "f" => {
                let id = e["id"].as_u64().unwrap();
                assert!(starts.contains(&id) && ends.insert(id), "an arrow ends once, after its start: {e}");
            }
            "X" | "i" | "C" => {}
            other => panic!("unexpected phase {other}"),
        }
    }
    assert!(stacks.values().all(Vec::is_empty), "every slice ends by the end of the run: {stacks:?}");
    assert!(asyncs.values().all(Vec::is_empty), "every operator slice ends: {asyncs:?}");
    assert!(!ends.is_empty() && ends.len() <= starts.len(), "messages arrive");
}

#[test]
fn trace_shows_the_merge_across_the_failover() {
    let (events, tracks, processes) = traced("s5-merge-interrupted-before-commit");
    let states_of = |suffix: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["ph"] == "B" && tracks.get(&track(e)).is_some_and(|t| t.starts_with(suffix)))
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    };
    // The merged dispatcher (span id .4) on its own track: prepared, ready, then what the
    // successor made of it.
    let merged = states_of("d6d74000000000001.4 ");
    assert!(
        merged.iter().any(|s| s == "preparing") && merged.iter().any(|s| s == "merge-ready"),
        "{merged:?}"
    );
    // The sources waited for it.
    assert!(states_of("d6d74000000000001.2 ").iter().any(|s| s == "waiting-merge"));
    // The merge operator, once per maintainer epoch, the first one ending with its maintainer.
    let merges: Vec<&Value> =
        events.iter().filter(|e| e["ph"] == "b" && e["name"] == "Merge d6d74000000000001.4").collect();
    let epochs: BTreeSet<u64> = merges.iter().map(|e| e["args"]["epoch"].as_u64().unwrap()).collect();
    assert_eq!(epochs, BTreeSet::from([1, 2]), "the merge is rebuilt by the successor");
    let outcomes: Vec<&str> = events
        .iter()
        .filter(|e| e["ph"] == "e" && e["name"] == "Merge d6d74000000000001.4")
        .map(|e| e["args"]["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes[0], "none reported (its maintainer is gone)", "{outcomes:?}");
    // Messages: received with the sender's epoch and the core's answer.
    assert!(events.iter().any(|e| e["ph"] == "X"
        && e["name"] == "MaintainerBootstrapRequest"
        && e["args"]["epoch"] == 2
        && e["args"]["outcome"] == "Applied"));
    // Counters and the failover marker.
    let counters: BTreeSet<&str> =
        events.iter().filter(|e| e["ph"] == "C").map(|e| e["name"].as_str().unwrap()).collect();
    for c in
        ["checkpoint default", "lag default", "operators in flight", "messages in flight", "maintainer epoch"]
    {
        assert!(counters.contains(c), "counter {c}: {counters:?}");
    }
    assert!(events.iter().any(|e| e["ph"] == "i"
        && e["s"] == "g"
        && e["name"].as_str().is_some_and(|n| n.starts_with("maintainer epoch 2 starts"))));
    assert!(processes.values().any(|p| p == "n1") && tracks.values().any(|t| t == "network"));
    let settled = events.iter().filter(|e| e["ph"] == "i" && e["s"] == "g" && e["name"] == "settled").count();
    assert!(settled >= 2, "each settle that converged is marked: {settled}");
}

/// `sim --report`: the page is self-contained (no external script, style, font or image), and
/// its timeline model has the lanes, bars, arrows and markers of the run it reports.
#[test]
fn report_is_self_contained_and_draws_the_run() {
    use dispatcher_core::sim::report::{html, model};
    let path = format!("{}/scenarios/s5-merge-interrupted-before-commit.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let scenario = parse(&text, &path).unwrap();
    let mut trace = Trace::new();
    let report = run(&scenario, "", SimOptions::default(), Some(&mut trace));
    let page = html(&trace, &scenario.name, &text, &report.line());
    for external in ["<script src", "<link", "@import", "url(", "<img", "@font-face"] {
        assert!(!page.contains(external), "the page loads nothing from outside: {external}");
    }
    assert!(page.contains("<svg") && page.contains("pass s5-merge-interrupted-before-commit"));
    assert!(page.contains("crash_maintainer"), "the scenario text is beside the timeline");

    let m = model(&trace);
    let lane =
        |process: &str, track: &str| m.lanes.iter().position(|l| l.0 == process && l.1.starts_with(track));
    let merged = lane("n1", "d6d74000000000001.4 ").expect("the merged dispatcher has a lane under n1");
    let states: Vec<&str> =
        m.bars.iter().filter(|b| b.0 == merged && b.3 == 1).map(|b| b.4.as_str()).collect();
    assert!(states.contains(&"preparing") && states.contains(&"merge-ready"), "{states:?}");
    // Operators that overlap get rows of their own, and never overlap within one.
    let rows: Vec<usize> = (0..m.lanes.len()).filter(|&l| m.lanes[l].1.starts_with("operators")).collect();
    assert!(rows.len() > 1, "the Merge and its two Occupy operators overlap: {:?}", m.lanes);
    for row in rows {
        let mut outer: Vec<_> = m.bars.iter().filter(|b| b.0 == row && b.3 == 0).collect();
        outer.sort_by_key(|b| b.1);
        assert!(outer.windows(2).all(|w| w[0].2 <= w[1].1), "row {row} overlaps: {outer:?}");
    }
    assert!(m.bars.iter().any(|b| b.3 == 0 && b.4.starts_with("Merge d6d74000000000001.4: ")));
    assert!(m.arrows.iter().any(|a| a.4 == "MaintainerBootstrapRequest" && a.5 == "Applied"));
    assert!(m.markers.iter().any(|x| x.1 == "maintainer" && x.2.starts_with("maintainer epoch 2 starts")));
    assert!(m.markers.iter().any(|x| x.1 == "fault" && x.2.contains("crash")));
    assert!(m.bars.iter().all(|b| b.1 <= b.2 && b.2 <= m.end && b.0 < m.lanes.len()));
}

/// A dropped message ends where it was lost, in a marked instant; a duplicated one is two
/// arrows from one send; responses to the maintainer carry the epoch they answer.
#[test]
fn trace_marks_lost_messages_and_draws_duplicates_twice() {
    let text = r#"
nodes = ["n1", "n2"]
maintainer = "n1"
seed = 3

[[tables]]
id = 1
spans = 2

[[steps]]
do = "drop_messages"
kind = "ScheduleDispatcherRequest"
count = 1

[[steps]]
do = "duplicate_messages"
kind = "ScheduleDispatcherRequest"
count = 1

[[steps]]
do = "settle"
"#;
    let scenario = parse(text, "inline.toml").unwrap();
    let mut trace = Trace::new();
    assert!(run(&scenario, "", SimOptions::default(), Some(&mut trace)).passed);
    let events = trace.events();
    let lost: Vec<&Value> = events.iter().filter(|e| e["name"] == "lost ScheduleDispatcherRequest").collect();
    assert_eq!(lost.len(), 1, "one request dropped");
    assert_eq!(lost[0]["args"]["why"], "dropped");
    // The duplicate: two arrows leave one track at one moment for one kind.
    let mut starts: BTreeMap<(u64, u64, u64), usize> = BTreeMap::new();
    for e in events.iter().filter(|e| e["ph"] == "s" && e["name"] == "ScheduleDispatcherRequest") {
        *starts
            .entry((e["ts"].as_u64().unwrap(), e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap()))
            .or_default() += 1;
    }
    assert_eq!(starts.values().filter(|n| **n == 2).count(), 1, "{starts:?}");
    assert!(events
        .iter()
        .any(|e| e["ph"] == "X" && e["name"] == "MaintainerBootstrapResponse" && e["args"]["epoch"] == 1));
}

/// Text from outside (a scenario's name and file, labels in the data) cannot break out of the
/// page: it is escaped once, and never searched again for the template's placeholders.
#[test]
fn report_escapes_what_it_is_given() {
    use dispatcher_core::sim::report::html;
    let mut trace = Trace::new();
    trace.marker(5, "violation", "I2 </script><!--<script> broke");
    let page = html(&trace, "<b>{{data}}</b>", "x </script><!--<script> {{title}}", "fail <i>");
    assert!(page.contains("&lt;b&gt;{{data}}&lt;/b&gt;"), "a placeholder in the title stays text");
    assert!(page.contains("x &lt;/script&gt;&lt;!--&lt;script&gt; {{title}}"));
    assert_eq!(page.matches("<script").count(), 2, "only the page's own two script elements");
    assert_eq!(page.matches("</script>").count(), 2);
    assert!(
        page.contains("I2 \\u003c/script>\\u003c!--\\u003cscript> broke"),
        "the label is in the data, escaped"
    );
}

/// A bootstrap that starts an operator for every span at once would need a row per operator:
/// the report keeps at most eight operator rows per maintainer node, shared beyond that.
#[test]
fn report_caps_operator_rows_per_node() {
    use dispatcher_core::sim::explorer::Explorer;
    use dispatcher_core::sim::random::Shape;
    use dispatcher_core::sim::report::model;
    let scenario = Explorer::Swarm
        .generate(3, Shape { nodes: 3, tables: 30, operations: 0, barrier: false, load: false });
    let mut trace = Trace::new();
    let _ = run(&scenario, "", SimOptions::default(), Some(&mut trace));
    let m = model(&trace);
    let mut rows: BTreeMap<&str, usize> = BTreeMap::new();
    for (process, track) in &m.lanes {
        if track.starts_with("operators") {
            *rows.entry(process.as_str()).or_default() += 1;
        }
    }
    assert!(rows.values().all(|n| *n <= 8), "{rows:?}");
    assert!(rows.values().any(|n| *n == 8), "the case needs the cap: {rows:?}");
}
