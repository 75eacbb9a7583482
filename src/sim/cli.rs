//! `dispatcher-core sim`: argument handling, output, exit status (scenario-format.md).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use super::coverage::Coverage;
use super::explorer::Explorer;
use super::random::{shrink, Shape};
use super::run::{run, Report};
use super::scenario::{parse, to_toml, Scenario};
use super::trace::Trace;
use super::world::SimOptions;

/// Prints a line to stdout; a closed pipe (`| head`) ends the output quietly instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Usage of the `sim` subcommand.
pub const USAGE: &str = "\
  dispatcher-core sim [--json] [--trace FILE] [--mutation NAME[,NAME..]] [FILE_OR_DIR...]
                                          run scenario files (a directory: every *.toml in it);
                                          no path: the bundled scenarios/
  dispatcher-core sim --random --seeds N [--from S] [--nodes K] [--tables T]
                     [--explorer swarm|classic] [--mutation NAME[,NAME..]] [--stop-at-first]
                     [--emit] [--json] [--trace FILE]
                                          run N seeded random timelines; failing seeds are
                                          shrunk into sim-failures/seed-S.toml; prints what the
                                          sweep exercised (coverage). The swarm explorer (default)
                                          draws each seed's shape unless --nodes/--tables fix it;
                                          --mutation re-opens a fixed bug (see src/mutation.rs);
                                          --emit prints the timelines instead of running them";

#[derive(Default)]
struct Args {
    json: bool,
    trace: Option<PathBuf>,
    random: bool,
    seeds: u64,
    from: u64,
    /// Zero: not given (the swarm draws it, the classic explorer uses its default).
    shape: Shape,
    explorer: Explorer,
    mutation: crate::mutation::Mutations,
    stop_at_first: bool,
    emit: bool,
    paths: Vec<PathBuf>,
}

fn bounded(flag: &str, v: Option<&String>, lo: u64, hi: u64) -> Result<u64, String> {
    let n = number(flag, v)?;
    if n < lo || n > hi {
        return Err(format!("sim: {flag}: {n} is out of range {lo}..={hi}"));
    }
    Ok(n)
}

fn number(flag: &str, v: Option<&String>) -> Result<u64, String> {
    let v = v.ok_or_else(|| format!("sim: {flag} needs a number"))?;
    v.parse().map_err(|_| format!("sim: {flag}: not a number: {v}"))
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut a =
        Args { seeds: 100, shape: Shape { nodes: 0, tables: 0, operations: 0 }, ..Default::default() };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--json" => a.json = true,
            "--trace" => a.trace = Some(it.next().ok_or("sim: --trace needs a FILE")?.into()),
            "--random" => a.random = true,
            "--seeds" => a.seeds = number(arg, it.next())?,
            "--from" => a.from = number(arg, it.next())?,
            "--nodes" => a.shape.nodes = bounded(arg, it.next(), 1, 16)? as usize,
            "--tables" => a.shape.tables = bounded(arg, it.next(), 1, 1_000)? as usize,
            "--explorer" => {
                a.explorer = match it.next().map(String::as_str) {
                    Some("swarm") => Explorer::Swarm,
                    Some("classic") => Explorer::Classic,
                    other => {
                        return Err(format!("sim: --explorer: expected swarm or classic, got {other:?}"))
                    }
                }
            }
            "--mutation" => {
                let name = it.next().ok_or("sim: --mutation needs a NAME")?;
                a.mutation = name.parse().map_err(|e| format!("sim: --mutation: {e}"))?;
            }
            "--stop-at-first" => a.stop_at_first = true,
            "--emit" => a.emit = true,
            s if s.starts_with("--") => return Err(format!("sim: unknown option {s}")),
            path => a.paths.push(path.into()),
        }
    }
    if !a.random
        && (a.explorer != Explorer::default()
            || a.stop_at_first
            || a.emit
            || a.shape.nodes + a.shape.tables > 0)
    {
        return Err("sim: --explorer, --stop-at-first, --emit, --nodes and --tables need --random".into());
    }
    Ok(a)
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

fn trace_path(base: &Path, name: &str, many: bool) -> PathBuf {
    if !many {
        return base.to_path_buf();
    }
    let stem = base.file_stem().and_then(|s| s.to_str()).unwrap_or("trace");
    base.with_file_name(format!("{stem}-{name}.json"))
}

fn write_trace(path: &Path, trace: &Trace) -> Result<(), String> {
    std::fs::write(path, trace.to_json().to_string()).map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs the subcommand; returns the exit status (0 all passed, 1 a failure, 2 bad input).
pub fn main(args: &[String]) -> u8 {
    let a = match parse_args(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("dispatcher-core: {e}\nusage:\n{USAGE}");
            return 2;
        }
    };
    if a.random {
        return random(&a);
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
        let opts = SimOptions { mutation: a.mutation, ..SimOptions::default() };
        let report = run(scenario, file, opts, a.trace.as_ref().map(|_| &mut trace));
        if let Some(base) = &a.trace {
            let path = trace_path(base, &scenario.name, scenarios.len() > 1);
            if let Err(e) = write_trace(&path, &trace) {
                eprintln!("dispatcher-core: sim: {e}");
                return 2;
            }
        }
        if !a.json {
            out!("{}", report.line());
        }
        reports.push(report);
    }
    finish(&a, &reports)
}

fn finish(a: &Args, reports: &[Report]) -> u8 {
    let failed = reports.iter().filter(|r| !r.passed).count();
    if a.json {
        let all: Vec<_> = reports.iter().map(Report::to_json).collect();
        out!("{}", serde_json::Value::Array(all));
    } else {
        out!("{} scenarios, {} passed, {failed} failed", reports.len(), reports.len() - failed);
    }
    u8::from(failed > 0)
}

fn random(a: &Args) -> u8 {
    let tty = std::io::stderr().is_terminal();
    let opts = SimOptions { mutation: a.mutation, ..SimOptions::default() };
    let mut reports = Vec::new();
    let mut coverage = Coverage::default();
    let total = a.seeds;
    for (done, seed) in (a.from..a.from.saturating_add(a.seeds)).enumerate() {
        let scenario = a.explorer.generate(seed, a.shape);
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
                if let Err(e) = write_trace(&trace_path(base, &scenario.name, a.seeds > 1), &trace) {
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
fn replay_command(a: &Args, seed: u64) -> String {
    let mut cmd = format!("dispatcher-core sim --random --seeds 1 --from {seed}");
    if a.shape.nodes > 0 {
        cmd += &format!(" --nodes {}", a.shape.nodes);
    }
    if a.shape.tables > 0 {
        cmd += &format!(" --tables {}", a.shape.tables);
    }
    if a.explorer != Explorer::default() {
        cmd += &format!(" --explorer {}", a.explorer.name());
    }
    if !a.mutation.is_empty() {
        cmd += &format!(" --mutation {}", a.mutation);
    }
    cmd
}
