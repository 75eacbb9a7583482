//! `dispatcher-core sim`: argument handling, output, exit status (the scenario-format contract).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use super::coverage::Coverage;
use super::explorer::Explorer;
use super::random::{shrink, Shape};
use super::run::{run, Report};
use super::scenario::{parse, to_toml, Scenario};
use super::trace::Trace;
use super::world::SimOptions;
use crate::mutation::Mutations;

/// Prints a line to stdout; a closed pipe (`| head`) ends the output quietly instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// What `dispatcher-core sim` was asked to do. With the `cli` feature the command line parses into
/// it (clap); the field docs are the `--help` text.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct SimCommand {
    /// Scenario files or directories (a directory: every *.toml in it); none: the bundled
    /// scenarios/.
    #[cfg_attr(feature = "cli", arg(value_name = "FILE_OR_DIR", conflicts_with = "random"))]
    pub paths: Vec<PathBuf>,
    /// Print one JSON array instead of one line per scenario or seed.
    #[cfg_attr(feature = "cli", arg(long))]
    pub json: bool,
    /// Write the timeline as Chrome trace-event JSON (one file per scenario when there are several).
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    pub trace: Option<PathBuf>,
    /// Write a self-contained HTML report of the run: an SVG timeline, the scenario and the
    /// result (one file per scenario when there are several).
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE.html"))]
    pub report: Option<PathBuf>,
    /// Re-open fixed bugs (comma-separated names; see src/mutation.rs).
    #[cfg_attr(feature = "cli", arg(long, value_name = "NAME[,NAME..]"))]
    pub mutation: Option<Mutations>,
    /// Run seeded random timelines instead of files; failing seeds are shrunk into
    /// sim-failures/seed-S.toml.
    #[cfg_attr(feature = "cli", arg(long))]
    pub random: bool,
    /// How many seeds.
    #[cfg_attr(feature = "cli", arg(long, value_name = "N", default_value_t = 100, requires = "random"))]
    pub seeds: u64,
    /// The first seed.
    #[cfg_attr(feature = "cli", arg(long, value_name = "S", default_value_t = 0, requires = "random"))]
    pub from: u64,
    /// Nodes in every timeline (default: the explorer's choice).
    #[cfg_attr(feature = "cli", arg(long, value_name = "K", requires = "random",
        value_parser = clap::value_parser!(u16).range(1..=16)))]
    pub nodes: Option<u16>,
    /// Tables at the start of every timeline (default: the explorer's choice).
    #[cfg_attr(feature = "cli", arg(long, value_name = "T", requires = "random",
        value_parser = clap::value_parser!(u16).range(1..=1000)))]
    pub tables: Option<u16>,
    /// The generator: swarm draws each seed's shape and aims faults at phases; classic is the
    /// fixed-mix baseline.
    #[cfg_attr(
        feature = "cli",
        arg(long, value_name = "swarm|classic", default_value = "swarm", requires = "random")
    )]
    pub explorer: Explorer,
    /// Stop after the first failing seed.
    #[cfg_attr(feature = "cli", arg(long, requires = "random"))]
    pub stop_at_first: bool,
    /// Print the timelines as scenario files instead of running them.
    #[cfg_attr(feature = "cli", arg(long, requires = "random"))]
    pub emit: bool,
    /// Carry every DDL through the barrier, in every scenario (those that use syncpoints,
    /// schemas or a barrier verb always do).
    #[cfg_attr(feature = "cli", arg(long))]
    pub barrier: bool,
    /// With `--random`: load-driven scheduling on in every timeline, with tables' regions and
    /// write rates, hotspots appearing, moving and cooling, region counts changing, and faults
    /// aimed at the splits, merges and moves they cause.
    #[cfg_attr(feature = "cli", arg(long, requires = "random"))]
    pub load: bool,
    /// The coordinator world instead: a simulated etcd, an elected coordinator, a maintainer
    /// manager per node hosting several changefeeds' maintainers; kill -9, SIGSTOP past the lease
    /// and users' requests (see src/sim/cluster.rs). `--nodes` and `--tables` apply.
    #[cfg_attr(feature = "cli", arg(long, requires = "random"))]
    pub coordinator: bool,
    /// Changefeeds at the start of every coordinator-world timeline.
    #[cfg_attr(feature = "cli", arg(long, value_name = "N", requires = "coordinator",
        value_parser = clap::value_parser!(u16).range(1..=100)))]
    pub changefeeds: Option<u16>,
    /// With `--coordinator`: print each failing seed's final state (store, coordinator view,
    /// maintainers, dispatchers).
    #[cfg_attr(feature = "cli", arg(long, requires = "coordinator"))]
    pub explain: bool,
}

impl SimCommand {
    fn shape(&self) -> Shape {
        let (nodes, tables) = (self.nodes.map_or(0, usize::from), self.tables.map_or(0, usize::from));
        Shape { nodes, tables, operations: 0, barrier: self.barrier, load: self.load }
    }

    fn mutations(&self) -> Mutations {
        self.mutation.unwrap_or_default()
    }
}

/// Scenario files named by `paths` (directories expand to their `*.toml`, in name order).
fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "toml"))
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn load(path: &Path) -> Result<Scenario, String> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    parse(&text, &name).map_err(|e| e.to_string())
}

/// Where the output of scenario `name` goes: `base` itself, or `STEM-NAME.EXT` beside it when
/// there are several.
fn output_path(base: &Path, name: &str, many: bool, ext: &str) -> PathBuf {
    if !many {
        return base.to_path_buf();
    }
    let stem = base.file_stem().and_then(|s| s.to_str()).unwrap_or("trace");
    base.with_file_name(format!("{stem}-{name}.{ext}"))
}

fn write_report(
    path: &Path,
    trace: &Trace,
    scenario: &Scenario,
    text: &str,
    report: &Report,
) -> Result<(), String> {
    let page = super::report::html(trace, &scenario.name, text, &report.line());
    std::fs::write(path, page).map_err(|e| format!("{}: {e}", path.display()))
}

fn write_trace(path: &Path, trace: &Trace) -> Result<(), String> {
    std::fs::write(path, trace.to_json().to_string()).map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs the subcommand; returns the exit status (0 all passed, 1 a failure, 2 bad input).
pub fn main(a: &SimCommand) -> u8 {
    if a.coordinator {
        return coordinator(a);
    }
    if a.random {
        return random(a);
    }
    let paths = if a.paths.is_empty() { vec![PathBuf::from("scenarios")] } else { a.paths.clone() };
    let files = match files(&paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("dispatcher-core: sim: {e}");
            return 2;
        }
    };
    // Parse everything first: a bad file is exit status 2 before anything runs.
    let mut scenarios = Vec::new();
    for f in &files {
        match load(f) {
            Ok(s) => scenarios.push((f.display().to_string(), s)),
            Err(e) => {
                eprintln!("dispatcher-core: sim: {e}");
                return 2;
            }
        }
    }
    let mut reports = Vec::new();
    for (file, scenario) in &scenarios {
        let mut trace = Trace::new();
        let opts = SimOptions { mutation: a.mutations(), barrier: a.barrier, ..SimOptions::default() };
        let traced = a.trace.is_some() || a.report.is_some();
        let report = run(scenario, file, opts, traced.then_some(&mut trace));
        let many = scenarios.len() > 1;
        let written = a
            .trace
            .iter()
            .map(|base| write_trace(&output_path(base, &scenario.name, many, "json"), &trace))
            .chain(a.report.iter().map(|base| {
                let text = std::fs::read_to_string(file).unwrap_or_else(|_| to_toml(scenario));
                write_report(
                    &output_path(base, &scenario.name, many, "html"),
                    &trace,
                    scenario,
                    &text,
                    &report,
                )
            }))
            .collect::<Result<Vec<()>, String>>();
        if let Err(e) = written {
            eprintln!("dispatcher-core: sim: {e}");
            return 2;
        }
        if !a.json {
            out!("{}", report.line());
        }
        reports.push(report);
    }
    finish(a, &reports)
}

fn finish(a: &SimCommand, reports: &[Report]) -> u8 {
    let failed = reports.iter().filter(|r| !r.passed).count();
    if a.json {
        let all: Vec<_> = reports.iter().map(Report::to_json).collect();
        out!("{}", serde_json::Value::Array(all));
    } else {
        out!("{} scenarios, {} passed, {failed} failed", reports.len(), reports.len() - failed);
    }
    u8::from(failed > 0)
}

fn coordinator(a: &SimCommand) -> u8 {
    use super::cluster::{run, ClusterOptions};
    let defaults = ClusterOptions::default();
    let opts = ClusterOptions {
        nodes: a.nodes.map_or(defaults.nodes, usize::from),
        changefeeds: a.changefeeds.map_or(defaults.changefeeds, usize::from),
        tables: a.tables.map_or(defaults.tables, i64::from),
        explain: a.explain,
        mutation: a.mutations(),
        ..defaults
    };
    let (mut ran, mut failed, mut events) = (0u64, 0u64, 0u64);
    for seed in a.from..a.from.saturating_add(a.seeds) {
        let report = run(seed, &opts);
        ran += 1;
        events += report.events;
        if report.violations.is_empty() {
            continue;
        }
        failed += 1;
        out!("seed {seed} FAILED: {}", report.violations.join("; "));
        let mut replay =
            format!("dispatcher-core sim --random --coordinator --seeds 1 --from {seed} --explain");
        for (flag, value) in [("--nodes", a.nodes), ("--tables", a.tables), ("--changefeeds", a.changefeeds)]
        {
            if let Some(v) = value {
                replay += &format!(" {flag} {v}");
            }
        }
        if !a.mutations().is_empty() {
            replay += &format!(" --mutation {}", a.mutations());
        }
        out!("  replay: {replay}");
        if a.explain {
            out!("{}", report.explanation);
        }
        if a.stop_at_first {
            break;
        }
    }
    out!("{ran} seeds, {} passed, {failed} failed, {events} events", ran - failed);
    u8::from(failed > 0)
}

fn random(a: &SimCommand) -> u8 {
    let tty = std::io::stderr().is_terminal();
    let opts = SimOptions { mutation: a.mutations(), barrier: a.barrier, ..SimOptions::default() };
    let mut reports = Vec::new();
    let mut coverage = Coverage::default();
    let total = a.seeds;
    for (done, seed) in (a.from..a.from.saturating_add(a.seeds)).enumerate() {
        let scenario = a.explorer.generate(seed, a.shape());
        if a.emit {
            out!(
                "# dispatcher-core sim --random --seeds 1 --from {seed} ({} explorer)\n{}",
                a.explorer.name(),
                to_toml(&scenario)
            );
            continue;
        }
        let report = match &a.trace {
            None => run(&scenario, "", opts.clone(), None),
            Some(base) => {
                let mut trace = Trace::new();
                let report = run(&scenario, "", opts.clone(), Some(&mut trace));
                if let Err(e) = write_trace(&output_path(base, &scenario.name, a.seeds > 1, "json"), &trace) {
                    eprintln!("dispatcher-core: sim: {e}");
                    return 2;
                }
                report
            }
        };
        coverage.add(&report.coverage);
        let failed_now = !report.passed;
        if failed_now {
            if tty {
                eprint!("\r\x1b[K");
            }
            out!("{}\n  replay: {}", report.line(), replay_command(a, seed));
            let (small, small_report) = shrink(&scenario, &opts);
            let dir = Path::new("sim-failures");
            let path = dir.join(format!("seed-{seed}.toml"));
            let saved = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, to_toml(&small)));
            // The shrunk timeline's report beside it, to look at rather than read.
            if saved.is_ok() {
                let mut trace = Trace::new();
                let replayed = run(&small, &path.display().to_string(), opts.clone(), Some(&mut trace));
                let page = path.with_extension("html");
                if let Err(e) = write_report(&page, &trace, &small, &to_toml(&small), &replayed) {
                    eprintln!("dispatcher-core: sim: {e}");
                }
            }
            match saved {
                Ok(()) => out!(
                    "  shrunk to {} steps ({}): dispatcher-core sim {}",
                    small.steps.len(),
                    small_report.failures.first().map_or("passes?", |f| f.check.as_str()),
                    path.display()
                ),
                Err(e) => eprintln!("dispatcher-core: sim: saving {}: {e}", path.display()),
            }
        }
        reports.push(report);
        if tty {
            let failed = reports.iter().filter(|r| !r.passed).count();
            let width = 30;
            let filled = (done as u64 + 1) * width / total.max(1);
            eprint!(
                "\r[{}{}] {}/{} seeds, {failed} failed",
                "#".repeat(filled as usize),
                ".".repeat((width - filled) as usize),
                done + 1,
                total
            );
            let _ = std::io::stderr().flush();
        }
        if failed_now && a.stop_at_first {
            break;
        }
    }
    if tty {
        eprintln!();
    }
    if a.emit {
        return 0;
    }
    let failed = reports.iter().filter(|r| !r.passed).count();
    if a.json {
        let all: Vec<_> = reports
            .iter()
            .map(|r| {
                let mut v = r.to_json();
                v["coverage"] = r.coverage.to_json();
                v
            })
            .collect();
        out!("{}", serde_json::Value::Array(all));
    } else {
        let events: u64 = reports.iter().map(|r| r.events).sum();
        out!("coverage ({} explorer):\n{}", a.explorer.name(), coverage.summary());
        out!("{} seeds, {} passed, {failed} failed, {events} events", reports.len(), reports.len() - failed);
    }
    u8::from(failed > 0)
}

/// The command that replays one seed exactly as this sweep ran it.
fn replay_command(a: &SimCommand, seed: u64) -> String {
    let mut cmd = format!("dispatcher-core sim --random --seeds 1 --from {seed}");
    if let Some(n) = a.nodes {
        cmd += &format!(" --nodes {n}");
    }
    if let Some(t) = a.tables {
        cmd += &format!(" --tables {t}");
    }
    if a.explorer != Explorer::default() {
        cmd += &format!(" --explorer {}", a.explorer.name());
    }
    if let Some(m) = a.mutation.filter(|m| !m.is_empty()) {
        cmd += &format!(" --mutation {m}");
    }
    if a.load {
        cmd += " --load";
    }
    if a.barrier {
        cmd += " --barrier";
    }
    cmd
}
