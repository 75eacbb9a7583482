//! Running a scenario: each step of the timeline against a [`World`], with the checker after
//! every event and convergence at every `settle`.

use serde_json::{json, Value};

use crate::ids::{Mode, NodeId};
use crate::maintainer::Event;

use super::check::Checker;
use super::coverage::Coverage;
use super::scenario::{DdlRef, Scenario, Verb, What};
use super::trace::Trace;
use super::violation::Violation;
use super::world::{Fault, FaultAction, SimOptions, World};

/// One failed check of a scenario.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Failure {
    /// 1-based step number (0: before the first step).
    pub step: usize,
    /// Invariant or expectation name (`I2`, `C1`, `expect`, ...).
    pub check: String,
    /// Simulated time.
    pub at_ms: u64,
    /// What was wrong.
    pub detail: String,
}

/// The outcome of one scenario.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Report {
    /// Scenario name.
    pub name: String,
    /// File it came from, if any.
    pub file: String,
    /// Whether every check held.
    pub passed: bool,
    /// Simulated time at the end.
    pub sim_ms: u64,
    /// Events processed.
    pub events: u64,
    /// What failed (the run stops at the first failure).
    pub failures: Vec<Failure>,
    /// What the run exercised (phases interrupted by faults, messages hit).
    pub coverage: Coverage,
}

impl Report {
    /// The `--json` form of scenario-format.md.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "file": self.file,
            "passed": self.passed,
            "sim_ms": self.sim_ms,
            "events": self.events,
            "failures": self.failures.iter().map(|f| json!({
                "step": f.step, "check": f.check, "at_ms": f.at_ms, "detail": f.detail,
            })).collect::<Vec<_>>(),
        })
    }

    /// The one-line form.
    pub fn line(&self) -> String {
        let head = format!(
            "{} {}  sim {} ms, {} events",
            if self.passed { "pass" } else { "FAIL" },
            self.name,
            self.sim_ms,
            self.events
        );
        match self.failures.first() {
            None => head,
            Some(f) => format!("{head}  step {}: {} at {} ms: {}", f.step, f.check, f.at_ms, f.detail),
        }
    }
}

/// How long `settle` keeps running after quiescence for the checkpoint to catch up (C5).
const CATCH_UP_MS: u64 = 5_000;
/// How far behind upstream the checkpoint may be at the end of a settle.
const CATCH_UP_SLACK: u64 = 1_500;

/// The maintainers' load-driven scheduling settings of a scenario's `[scheduler]`.
pub fn load_config(spec: &crate::sim::scenario::SchedulerSpec) -> crate::maintainer::load::LoadConfig {
    use crate::maintainer::load::{LoadConfig, Rules};
    LoadConfig {
        across_nodes: spec.enable_table_across_nodes,
        region_threshold: spec.region_threshold,
        region_count_per_span: spec.region_count_per_span,
        write_key_threshold: spec.write_key_threshold as f64,
        balance_score_threshold: u32::try_from(spec.balance_score_threshold).unwrap_or(u32::MAX),
        min_traffic_percentage: spec.min_traffic_percentage.get(),
        max_traffic_percentage: spec.max_traffic_percentage.get(),
        check_balance_interval_ms: spec.check_balance_interval_ms,
        rules: match spec.rules {
            crate::sim::scenario::Rules::Ours => Rules::Ours,
            crate::sim::scenario::Rules::Reference => Rules::Reference,
        },
        ..LoadConfig::default()
    }
}

/// Runs `scenario` with `opts`; records a timeline into `trace` when given.
pub fn run(scenario: &Scenario, file: &str, opts: SimOptions, trace: Option<&mut Trace>) -> Report {
    let tables: Vec<(i64, usize, i64)> = scenario.tables.iter().map(|t| (t.id, t.spans, t.schema)).collect();
    let mut opts = opts;
    opts.barrier |= uses_barrier(scenario);
    opts.load = load_config(&scenario.scheduler);
    for t in &scenario.tables {
        opts.traffic.set_table(t.id, t.regions, t.bytes_per_s.get());
    }
    let mut world = World::new(
        &scenario.nodes,
        &scenario.maintainer,
        &tables,
        scenario.redo,
        scenario.balance,
        scenario.seed,
        scenario.syncpoint_interval_ms,
        opts,
    )
    .watched_by(Box::new(Checker::default()));
    if trace.is_some() {
        world.trace = Some(Trace::new());
    }
    let mut failures = Vec::new();
    for (i, step) in scenario.steps.iter().enumerate() {
        if let Some(fault) = fault_label(&step.verb) {
            let in_flight = world.in_flight();
            world.coverage.struck(fault, &in_flight);
        }
        world.current_step = i;
        let stepped = run_step(&mut world, &step.verb);
        world.observe_trace();
        if let Err(f) = stepped {
            // A failed step (a settle that never converged, an `expect` that did not hold) is
            // the run's first violation too: marked like one.
            world.mark("violation", &f.to_string());
            failures.push(Failure { step: i + 1, check: f.check, at_ms: f.at_ms, detail: f.detail });
            break;
        }
        if let Some(v) = world.violation.clone() {
            failures.push(Failure { step: i + 1, check: v.check, at_ms: v.at_ms, detail: v.detail });
            break;
        }
    }
    if let (Some(out), Some(mut t)) = (trace, world.trace.take()) {
        t.finish(world.now);
        *out = t;
    }
    Report {
        name: scenario.name.clone(),
        file: file.to_string(),
        passed: failures.is_empty(),
        sim_ms: world.now,
        events: world.events,
        failures,
        coverage: std::mem::take(&mut world.coverage),
    }
}

/// Whether a scenario needs the barrier in the simulator: syncpoints, schemas, or a verb only
/// the barrier gives meaning to.
pub fn uses_barrier(scenario: &Scenario) -> bool {
    scenario.syncpoint_interval_ms > 0
        || scenario.tables.iter().any(|t| t.schema != 1)
        || scenario.steps.iter().any(|s| {
            matches!(
                s.verb,
                Verb::AlterTable { .. }
                    | Verb::RenameTable { .. }
                    | Verb::DropDatabase { .. }
                    | Verb::AlterDatabase { .. }
                    | Verb::CreateView
                    | Verb::ExpectDdl { .. }
                    | Verb::Block { what: What::Write, .. }
                    | Verb::Unblock { what: What::Write, .. }
            )
        })
}

/// The coverage label of a fault step; `None` for operations and checks.
fn fault_label(verb: &Verb) -> Option<&'static str> {
    Some(match verb {
        Verb::CrashMaintainer => "crash_maintainer",
        Verb::MoveMaintainer { .. } => "move_maintainer",
        Verb::CrashNode { .. } => "crash_node",
        Verb::RestartNode { .. } => "restart_node",
        Verb::Partition { .. } => "partition",
        Verb::Block { what: What::Create, .. } => "block_create",
        Verb::Block { what: What::Close, .. } => "block_close",
        Verb::Block { what: What::Write, .. } => "block_write",
        Verb::DelayMessages { .. } => "delay",
        Verb::DropMessages { .. } => "drop",
        Verb::DuplicateMessages { .. } => "duplicate",
        _ => return None,
    })
}

fn span_ids(world: &World, table: i64, span: Option<usize>, mode: Mode) -> Vec<crate::ids::DispatcherId> {
    let all = world.spans_of(table, mode);
    match span {
        None => all,
        Some(i) => all.get(i).copied().into_iter().collect(),
    }
}

fn expectation(world: &World, detail: String) -> Violation {
    Violation::new("expect", world.now, detail)
}

/// Runs one step. Operations that name something that does not exist at that moment are
/// ignored (the maintainer refuses them; scenario-format.md: as the maintainer sees it).
pub fn run_step(world: &mut World, verb: &Verb) -> Result<(), Violation> {
    match verb {
        Verb::Run { ms } => {
            let until = world.now + ms;
            world.run_until(until);
        }
        Verb::RunUntil { phase, max_ms } => {
            let until = world.now + max_ms;
            let reached = world.run_until_phase(*phase, until);
            *world.coverage.triggers.entry((*phase, reached)).or_default() += 1;
        }
        Verb::Settle { max_ms } => settle(world, *max_ms)?,
        Verb::Move { table, span, to, mode } => {
            for id in span_ids(world, *table, *span, *mode) {
                world.to_maintainer(Event::MoveSpan { mode: *mode, id, to: NodeId::new(to) });
            }
        }
        Verb::Split { table, span, into, mode } => {
            for id in span_ids(world, *table, *span, *mode) {
                world.to_maintainer(Event::SplitSpan { mode: *mode, id, into: *into });
            }
        }
        Verb::Merge { table, spans, mode } => {
            let all = world.spans_of(*table, *mode);
            let ids: Option<Vec<_>> = spans.iter().map(|i| all.get(*i).copied()).collect();
            if let Some(ids) = ids {
                world.to_maintainer(Event::MergeSpans { mode: *mode, ids });
            }
        }
        Verb::CreateTable { table, spans } => world.ddl_create(*table, *spans),
        Verb::DropTable { table } => world.ddl_drop(*table),
        Verb::TruncateTable { table, new_table } => world.ddl_truncate(*table, *new_table),
        Verb::Block { node, what: What::Write } => world.set_write_block(node, true),
        Verb::Unblock { node, what: What::Write } => world.set_write_block(node, false),
        Verb::Block { node, what } => world.set_block(node, *what == What::Create, true),
        Verb::Unblock { node, what } => world.set_block(node, *what == What::Create, false),
        Verb::AlterTable { table } => world.ddl_alter_table(*table),
        Verb::RenameTable { table, new_table, schema } => world.ddl_rename(*table, *new_table, *schema),
        Verb::DropDatabase { schema } => world.ddl_drop_database(*schema),
        Verb::AlterDatabase { schema } => world.ddl_alter_database(*schema),
        Verb::CreateView => world.ddl_create_view(),
        Verb::ExpectDdl { at, written } => {
            let key = match at {
                DdlRef::Last => world.last_ddl,
                DdlRef::Step(i) => world.upstream.values().find(|e| e.step == Some(*i)).map(|e| e.key),
            };
            let Some(key) = key else {
                return Err(expectation(world, format!("no DDL was issued by {at:?}")));
            };
            if let Some(why) = Checker::ddl_not_done(world, key, *written) {
                return Err(expectation(world, why));
            }
        }
        Verb::CrashNode { node } => world.crash_node(node),
        Verb::RestartNode { node } => world.restart_node(node),
        Verb::CrashMaintainer => world.crash_maintainer(),
        Verb::MoveMaintainer { to } => world.move_maintainer(to),
        Verb::Partition { nodes } => world.partition(nodes),
        Verb::Heal => world.heal(),
        Verb::DelayMessages { kind, from, to, ms, count } => world.add_fault(Fault {
            kind: *kind,
            from: from.clone(),
            to: to.clone(),
            action: FaultAction::Delay(*ms),
            remaining: *count,
        }),
        Verb::DropMessages { kind, from, to, count } => world.add_fault(Fault {
            kind: *kind,
            from: from.clone(),
            to: to.clone(),
            action: FaultAction::Drop,
            remaining: Some(*count),
        }),
        Verb::DuplicateMessages { kind, from, to, count } => world.add_fault(Fault {
            kind: *kind,
            from: from.clone(),
            to: to.clone(),
            action: FaultAction::Duplicate,
            remaining: Some(*count),
        }),
        Verb::HealMessages => world.heal_messages(),
        Verb::Expect { table, replicas, mode, on } => {
            let working = Checker::working(world, *table, *mode);
            if working.len() != *replicas {
                return Err(expectation(
                    world,
                    format!(
                        "table {table} has {} Working {mode:?} dispatchers, expected {replicas}: {working:?}",
                        working.len()
                    ),
                ));
            }
            if let Some(on) = on {
                if let Some((n, id)) = working.iter().find(|(n, _)| n.as_str() != on) {
                    return Err(expectation(
                        world,
                        format!("table {table}: {id} runs on {n}, expected all on {on}"),
                    ));
                }
            }
        }
        Verb::ExpectDropped { table } => {
            if let Some(what) = Checker::table_present(world, *table) {
                return Err(expectation(world, format!("table {table} should be dropped: {what}")));
            }
        }
        Verb::SetLoad { table, bytes_per_s, from, to } => {
            let (table, rate, from, to) = (*table, bytes_per_s.get(), from.get(), to.get());
            world.update_traffic(|t| t.set_load(table, rate, from, to));
        }
        Verb::SetRegions { table, count } => {
            let (table, count) = (*table, *count);
            world.update_traffic(|t| t.set_regions(table, count));
        }
        Verb::ExpectSpans { table, mode, min, max } => {
            let spans = world.spans_of(*table, *mode).len();
            if spans < *min || spans > *max {
                return Err(expectation(
                    world,
                    format!("table {table} has {spans} {mode:?} spans, expected {min} to {max}"),
                ));
            }
        }
        Verb::ExpectBalanced { max_over_mean, table } => {
            let shares = world.node_traffic(*table);
            let total: f64 = shares.values().sum();
            let mean = total / shares.len().max(1) as f64;
            let (top, max) = shares
                .iter()
                .fold((None, 0.0f64), |acc, (n, v)| if *v > acc.1 { (Some(n), *v) } else { acc });
            if total > 0.0 && max > max_over_mean.get() * mean {
                let of = table.map_or("all tables".to_string(), |t| format!("table {t}"));
                let top = top.map_or(String::new(), ToString::to_string);
                return Err(expectation(
                    world,
                    format!(
                        "traffic of {of}: {top} carries {max:.0} B/s, {:.2} times the mean {mean:.0} (at most {}): {shares:?}",
                        max / mean,
                        max_over_mean.get()
                    ),
                ));
            }
        }
        Verb::ExpectQuiet { ms } => {
            let (from, before) = (world.now, world.scheduler_started.len());
            world.run_until(from + ms);
            if let Some((at, mode, kind, _)) = world.scheduler_started.get(before).cloned() {
                return Err(expectation(
                    world,
                    format!("the schedulers started a {kind:?} ({mode:?}) at {at} ms, in a quiet window from {from} ms"),
                ));
            }
        }
    }
    Ok(())
}

/// Runs until quiescent (C1-C4, C6), then until the checkpoint caught up (C5), or fails with
/// the reason it is still not converged after `max_ms`.
pub fn settle(world: &mut World, max_ms: u64) -> Result<(), Violation> {
    world.mark("settle", "settle");
    let deadline = world.now + max_ms;
    let catch_up_deadline = deadline + CATCH_UP_MS;
    let step = 100;
    loop {
        if world.violation.is_some() {
            return Ok(()); // reported by the caller
        }
        // Quiescent (the balance scheduler may start moves at any time, so this is re-checked
        // whenever time passed), and the checkpoint caught up with upstream.
        let why = match Checker::not_converged(world) {
            Some(why) if world.now >= deadline => {
                let detail = format!("not converged after {max_ms} ms: {}", why.detail);
                return Err(Violation::new(&why.check, world.now, detail));
            }
            Some(why) => Some(why),
            None => match Checker::lagging(world, CATCH_UP_SLACK) {
                Some(lag) if world.now >= catch_up_deadline => return Err(lag),
                other => other,
            },
        };
        if why.is_none() {
            world.mark("settle", "settled");
            return Ok(());
        }
        let until = world.now + step;
        world.run_until(until);
    }
}
