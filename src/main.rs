//! The `dispatcher-core` command. Errors are one line on stderr with exit status 2; `--help` and
//! `--version` work on every subcommand.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};
use dispatcher_core::mutation::Mutations;
use dispatcher_core::sim::cli::SimCommand;
use dispatcher_core::sim::explorer::Explorer;
use dispatcher_core::wire;

/// Wire tools and the deterministic simulator of dispatcher-core.
#[derive(Parser)]
#[command(name = "dispatcher-core", version, propagate_version = true)]
#[command(after_help = "MESSAGE is a message of proto/heartbeat.proto (package heartbeatpb), \
                        e.g. ScheduleDispatcherRequest. Errors: one line on stderr, exit status 2.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Binary protobuf (FILE or stdin) -> canonical JSON.
    Decode {
        /// The message name, e.g. ScheduleDispatcherRequest.
        message: String,
        /// Read from FILE instead of stdin.
        file: Option<PathBuf>,
    },
    /// JSON (FILE or stdin) -> binary protobuf on stdout.
    Encode {
        /// The message name, e.g. ScheduleDispatcherRequest.
        message: String,
        /// Read from FILE instead of stdin.
        file: Option<PathBuf>,
    },
    /// List the message names.
    Messages,
    /// Run scenario files, or seeded random timelines with --random.
    Sim(Sim),
}

/// Scenario files (a directory: every *.toml in it; no path: the bundled scenarios/), or with
/// --random N seeded random timelines whose failing seeds are shrunk into sim-failures/seed-S.toml.
#[derive(clap::Args)]
struct Sim {
    /// Scenario files or directories.
    #[arg(value_name = "FILE_OR_DIR", conflicts_with = "random")]
    paths: Vec<PathBuf>,
    /// Print one JSON array instead of one line per scenario or seed.
    #[arg(long)]
    json: bool,
    /// Write the timeline as Chrome trace-event JSON (one file per scenario when there are several).
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Re-open fixed bugs (comma-separated names; see src/mutation.rs).
    #[arg(long, value_name = "NAME[,NAME..]")]
    mutation: Option<Mutations>,
    /// Run seeded random timelines instead of files.
    #[arg(long)]
    random: bool,
    /// How many seeds.
    #[arg(long, value_name = "N", default_value_t = 100, requires = "random")]
    seeds: u64,
    /// The first seed.
    #[arg(long, value_name = "S", default_value_t = 0, requires = "random")]
    from: u64,
    /// Nodes in every timeline (default: the explorer's choice).
    #[arg(long, value_name = "K", requires = "random", value_parser = clap::value_parser!(u16).range(1..=16))]
    nodes: Option<u16>,
    /// Tables at the start of every timeline (default: the explorer's choice).
    #[arg(long, value_name = "T", requires = "random", value_parser = clap::value_parser!(u16).range(1..=1000))]
    tables: Option<u16>,
    /// The generator: swarm draws each seed's shape and aims faults at phases; classic is the
    /// fixed-mix baseline.
    #[arg(long, value_name = "swarm|classic", default_value = "swarm", requires = "random")]
    explorer: Explorer,
    /// Stop after the first failing seed.
    #[arg(long, requires = "random")]
    stop_at_first: bool,
    /// Print the timelines as scenario files instead of running them.
    #[arg(long, requires = "random")]
    emit: bool,
}

impl From<Sim> for SimCommand {
    fn from(s: Sim) -> Self {
        SimCommand {
            paths: s.paths,
            json: s.json,
            trace: s.trace,
            mutation: s.mutation.unwrap_or_default(),
            random: s.random,
            seeds: s.seeds,
            from: s.from,
            nodes: s.nodes.map_or(0, usize::from),
            tables: s.tables.map_or(0, usize::from),
            explorer: s.explorer,
            stop_at_first: s.stop_at_first,
            emit: s.emit,
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // clap's message folded onto one line: the contract is one line on stderr, status 2.
            let message = if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                "expected a command".to_owned()
            } else {
                let text = e.render().to_string();
                let lines: Vec<&str> =
                    text.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
                lines.join(" ").trim_start_matches("error: ").to_owned()
            };
            eprintln!("dispatcher-core: {message} (see --help)");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Sim(sim) => return ExitCode::from(dispatcher_core::sim::cli::main(&sim.into())),
        Command::Decode { message, file } => read(&message, file).and_then(|input| {
            let json = wire::decode_to_json(&message, &input).map_err(|e| e.to_string())?;
            println!("{json}");
            Ok(())
        }),
        Command::Encode { message, file } => read(&message, file).and_then(|input| {
            let text = String::from_utf8(input).map_err(|_| format!("{message}: input is not UTF-8 JSON"))?;
            let bytes = wire::encode_from_json(&message, &text).map_err(|e| e.to_string())?;
            std::io::stdout().write_all(&bytes).map_err(|e| format!("writing output: {e}"))
        }),
        Command::Messages => {
            for name in wire::message_names() {
                println!("{name}");
            }
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("dispatcher-core: {message}");
            ExitCode::from(2)
        }
    }
}

fn read(message: &str, file: Option<PathBuf>) -> Result<Vec<u8>, String> {
    let mut input = Vec::new();
    match file {
        Some(path) => {
            input = std::fs::read(&path).map_err(|e| format!("{message}: reading {}: {e}", path.display()))?
        }
        None => {
            std::io::stdin().read_to_end(&mut input).map_err(|e| format!("{message}: reading stdin: {e}"))?;
        }
    }
    Ok(input)
}
