//! The simulator checks itself: bundled scenarios pass, runs replay exactly, and deliberately
//! broken variants of the maintainer and the node are caught by the invariant they break.

use dispatcher_core::maintainer::{Mutation, Mutations};
use dispatcher_core::sim::explorer::Explorer;
use dispatcher_core::sim::random::{generate, run_seed, shrink, Shape};
use dispatcher_core::sim::run::run;
use dispatcher_core::sim::scenario::{parse, Scenario};
use dispatcher_core::sim::world::SimOptions;

fn scenario(name: &str) -> Scenario {
    let path = format!("{}/scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap()
}

/// `s` passes as it is, and with `opts` (a fault re-opened) fails the invariant `check` first.
fn caught(s: &Scenario, name: &str, opts: SimOptions, check: &str) {
    assert!(run(s, "", SimOptions::default(), None).passed, "{name} passes");
    let report = run(s, "", opts, None);
    assert!(!report.passed, "{name} fails with the fault re-opened");
    assert_eq!(report.failures[0].check, check, "{name}: {}", report.line());
}

#[test]
fn every_bundled_scenario_passes() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "toml") {
            let s = parse(&std::fs::read_to_string(&path).unwrap(), &path.display().to_string()).unwrap();
            let report = run(&s, "", SimOptions::default(), None);
            assert!(report.passed, "{}", report.line());
            count += 1;
        }
    }
    assert!(count >= 22, "the reference cases in default and redo mode, and the found regressions");
}

#[test]
fn a_run_replays_event_for_event() {
    let (_, a) = run_seed(7, Shape::default());
    let (_, b) = run_seed(7, Shape::default());
    assert_eq!((a.sim_ms, a.events), (b.sim_ms, b.events));
    let (_, c) = run_seed(8, Shape::default());
    assert_ne!((a.sim_ms, a.events), (c.sim_ms, c.events), "seeds matter");
    assert_eq!(generate(7, Shape::default()), generate(7, Shape::default()));
}

#[test]
fn random_timelines_keep_every_invariant() {
    for seed in 0..40 {
        let (_, report) = run_seed(seed, Shape::default());
        assert!(report.passed, "seed {seed}: {}", report.line());
    }
}

/// S1 with a second table on the origin, so that a re-placed span lands elsewhere.
const MOVE_INTERRUPTED: &str = r#"
nodes = ["n1", "n2", "n3"]
maintainer = "n3"
[[tables]]
id = 1
[[tables]]
id = 2
[[steps]]
do = "settle"
[[steps]]
do = "move"
table = 1
to = "n1"
[[steps]]
do = "move"
table = 2
to = "n1"
[[steps]]
do = "settle"
[[steps]]
do = "block"
node = "n1"
what = "close"
[[steps]]
do = "move"
table = 1
to = "n2"
[[steps]]
do = "run"
ms = 300
[[steps]]
do = "crash_maintainer"
[[steps]]
do = "run"
ms = 2000
[[steps]]
do = "unblock"
node = "n1"
what = "close"
[[steps]]
do = "settle"
"#;

/// The broken maintainer restores a journaled move by placing the span again without removing
/// the origin, which still runs (its close is blocked): two writers, caught as I2.
#[test]
fn checker_catches_a_maintainer_that_restores_a_move_without_its_remove() {
    let s = parse(MOVE_INTERRUPTED, "move-interrupted.toml").unwrap();
    let opts = SimOptions { mutation: Mutation::RestoreMoveWithoutRemove.into(), ..SimOptions::default() };
    caught(&s, "move-interrupted", opts, "I2");
}

/// The broken node applies whatever a maintainer sends, so the old maintainer's delayed create
/// runs after the node answered the new one's bootstrap: caught as I1.
#[test]
fn checker_catches_a_node_that_ignores_the_epoch_fence() {
    let name = "s12-delayed-create-from-old-maintainer";
    caught(&scenario(name), name, SimOptions { ignore_fence: true, ..SimOptions::default() }, "I1");
}

/// A late copy of a merge request, after the maintainer gave the merge up and placed its
/// sources again on the same node: with the node's refusal of a merged id that already ran and
/// closed reverted, the copy drains the new sources and the merged dispatcher writes beside the
/// ranges placed again on a node that joined (I2), in both modes.
#[test]
fn a_late_merge_copy_after_an_abandoned_merge_is_refused() {
    for name in
        ["late-merge-copy-after-abandon-joined-node", "late-merge-copy-after-abandon-joined-node-redo"]
    {
        let opts = SimOptions { mutation: Mutation::MergeAfterMergedClosed.into(), ..SimOptions::default() };
        caught(&scenario(name), name, opts, "I2");
    }
}

/// Faults the swarm found that each began with a held-back Remove closing a dispatcher placed
/// again since. The node now drops such a Remove as stale (its floor is below the new
/// dispatcher's start), so each bundled pair (default, redo) passes, and:
/// - the first two now guard that fence: re-opened alone, the close behind the maintainer's back
///   is caught at the first committed checkpoint past it (I10), before what the swarm first saw
///   (a span bound where nothing runs, C1; a merge resent forever, C3). The rules those faults
///   broke keep their unit tests (`a_complete_round_repeats_the_stopped_of_dispatchers_closed_this_term`,
///   `controller_routes_merge_source_statuses_to_the_merge`);
/// - the third still shows its own fault: the fence re-opened alone passes, and with the renewal
///   reverted too the create is refused forever (C3).
#[test]
fn faults_begun_by_a_held_back_remove_stay_fixed() {
    let stale = Mutations::from(Mutation::StaleRemoveApplies);
    let cases = [
        ("found-stopped-repeats-lost-while-maintainer-cut-off", stale, "I10"),
        ("found-source-stopped-taken-for-merge-acceptance", stale, "I10"),
        ("refused-create-after-a-bounce-before-progress", stale.with(Mutation::RenewNotOnRefusal), "C3"),
    ];
    for (base, mutation, check) in cases {
        for name in [base.to_string(), format!("{base}-redo")] {
            caught(&scenario(&name), &name, SimOptions { mutation, ..SimOptions::default() }, check);
        }
    }
    let bounce = scenario("refused-create-after-a-bounce-before-progress");
    assert!(run(&bounce, "", SimOptions { mutation: stale, ..SimOptions::default() }, None).passed);
}

/// The syncpoint interval is any integer the format allows: the largest one means no syncpoint
/// in any run's lifetime, never an overflow in the settle's horizon.
#[test]
fn the_largest_syncpoint_interval_runs_without_overflow() {
    let text = "nodes = [\"n1\"]\nsyncpoint_interval_ms = 18446744073709551615\n[[tables]]\nid = 1\n[[steps]]\ndo = \"settle\"\n";
    let s = parse(text, "huge-interval.toml").unwrap();
    let report = run(&s, "", SimOptions::default(), None);
    assert!(report.passed, "{}", report.line());
}

#[test]
fn a_failure_shrinks_to_a_shorter_scenario_failing_the_same_check() {
    let s = parse(MOVE_INTERRUPTED, "move-interrupted.toml").unwrap();
    let opts = SimOptions { mutation: Mutation::RestoreMoveWithoutRemove.into(), ..SimOptions::default() };
    let (small, report) = shrink(&s, &opts);
    assert!(small.steps.len() < s.steps.len(), "{} -> {}", s.steps.len(), small.steps.len());
    assert_eq!(report.failures[0].check, "I2");
}

/// The swarm explorer: deterministic per seed, and seeds really differ in shape, features and
/// aimed faults (what makes it find what one fixed mix does not).
#[test]
fn swarm_seeds_replay_and_draw_their_own_shapes() {
    use dispatcher_core::sim::scenario::Verb;
    let free = Shape { nodes: 0, tables: 0, operations: 0, barrier: false, load: false };
    assert_eq!(Explorer::Swarm.generate(11, free), Explorer::Swarm.generate(11, free));
    let seeds: Vec<_> = (0..200).map(|s| Explorer::Swarm.generate(s, free)).collect();
    let nodes: std::collections::BTreeSet<usize> = seeds.iter().map(|s| s.nodes.len()).collect();
    assert_eq!(nodes, (2..=8).collect(), "every cluster size from 2 to 8 is drawn");
    let tables: Vec<usize> = seeds.iter().map(|s| s.tables.len()).collect();
    assert!(tables.contains(&1) && tables.iter().any(|t| *t > 20), "{tables:?}");
    let aimed =
        seeds.iter().filter(|s| s.steps.iter().any(|st| matches!(st.verb, Verb::RunUntil { .. }))).count();
    assert!(aimed > 50, "faults are aimed at phases in many seeds: {aimed}");
    let merges =
        seeds.iter().filter(|s| s.steps.iter().any(|st| matches!(st.verb, Verb::Merge { .. }))).count();
    assert!(merges > 30 && merges < 200, "merges are a feature some seeds draw: {merges}");
    // Fixed shapes are honoured.
    let fixed = Explorer::Swarm
        .generate(3, Shape { nodes: 4, tables: 7, operations: 0, barrier: false, load: false });
    assert_eq!((fixed.nodes.len(), fixed.tables.len()), (4, 7));
    for s in seeds.iter().take(30) {
        let report = run(s, "", SimOptions::default(), None);
        assert!(report.passed, "{}", report.line());
    }
}

/// The swarm finds a re-opened fault quickly where the classic explorer needs over a thousand
/// seeds (the mutation figures of BENCHMARKS.md, in small).
#[test]
fn swarm_finds_a_delayed_duplicate_create_without_its_tombstone() {
    let opts = SimOptions { mutation: Mutation::NoStaleCreateTombstones.into(), ..SimOptions::default() };
    let free = Shape { nodes: 0, tables: 0, operations: 0, barrier: false, load: false };
    let found =
        (0..200).find(|seed| !run(&Explorer::Swarm.generate(*seed, free), "", opts.clone(), None).passed);
    assert!(found.is_some(), "the swarm explorer finds the re-opened fault within 200 seeds");
}

/// H2 under the reference's rules: the unsplittable hot span is retried every round and the
/// rest of its table never balances, so the scenario that passes under ours fails its
/// `expect_balanced`.
#[test]
fn h2_under_the_references_rules_an_unsplittable_hot_span_blocks_its_table() {
    let mut s = scenario("load-unsplittable-hot-span-does-not-block-its-table");
    assert!(run(&s, "", SimOptions::default(), None).passed);
    s.scheduler.rules = dispatcher_core::sim::scenario::Rules::Reference;
    let report = run(&s, "", SimOptions::default(), None);
    assert!(!report.passed, "the table balanced under the reference's rules");
    assert!(report.failures[0].detail.contains("times the mean"), "{}", report.line());
}

/// A table turning hot on four nodes (the timeline of `examples/load_compare`): ours balances it
/// within 90 simulated seconds; under the reference's rules nothing moves before
/// `balance-score-threshold` evaluated rounds of imbalance (20 × 15 s), and it is balanced
/// within 20 minutes all the same.
#[test]
fn a_hotspot_is_balanced_within_90_s_under_ours_and_after_the_score_under_the_references() {
    use dispatcher_core::maintainer::load::{LoadConfig, Rules};
    use dispatcher_core::sim::run::settle;
    use dispatcher_core::sim::world::{Traffic, World};
    const MIB: f64 = 1024.0 * 1024.0;
    let balanced_after = |rules: Rules| {
        let mut traffic = Traffic::default();
        traffic.set_table(1, 64, MIB);
        for t in 2..=4 {
            traffic.set_table(t, 1, MIB);
        }
        let load = LoadConfig {
            across_nodes: true,
            write_key_threshold: 20.0 * MIB,
            rules,
            ..LoadConfig::default()
        };
        let opts = SimOptions { load, traffic, ..SimOptions::default() };
        let nodes: Vec<String> = (1..=4).map(|i| format!("n{i}")).collect();
        let tables: Vec<(i64, usize, i64)> = (1..=4).map(|t| (t, 1, 1)).collect();
        let mut world = World::new(&nodes, "n1", &tables, false, true, 7, 0, opts);
        settle(&mut world, 120_000).expect("settles");
        world.update_traffic(|t| t.set_load(1, 100.0 * MIB, 0.0, 1.0));
        let start = world.now;
        while world.now < start + 1_200_000 {
            world.run_until(world.now + 1_000);
            let shares = world.node_traffic(Some(1));
            let mean = shares.values().sum::<f64>() / shares.len() as f64;
            if shares.values().all(|x| *x <= 1.25 * mean) {
                return Some(world.now - start);
            }
        }
        None
    };
    let ours = balanced_after(Rules::Ours).expect("ours balances");
    assert!(ours <= 90_000, "ours took {ours} ms");
    let reference = balanced_after(Rules::Reference).expect("the reference's rules balance within 20 min");
    assert!(reference > 20 * 15_000, "the reference's rules balanced after {reference} ms");
}
