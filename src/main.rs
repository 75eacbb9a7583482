//! The `dispatcher-core` command. Errors are one line on stderr with exit status 2; `--help` and
//! `--version` work on every subcommand.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};
use dispatcher_core::sim::cli::SimCommand;
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
    Sim(SimCommand),
    /// Run one node of a cluster (runs the sibling `dispatcher-cluster` binary).
    #[command(disable_help_flag = true)]
    Node(Cluster),
    /// Create, change and list a cluster's changefeeds (runs `dispatcher-cluster`).
    #[command(disable_help_flag = true)]
    Changefeed(Cluster),
    /// Show a cluster (runs `dispatcher-cluster`).
    #[command(disable_help_flag = true)]
    Status(Cluster),
}

/// The arguments of a cluster command, handed on untouched.
#[derive(clap::Args)]
struct Cluster {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<std::ffi::OsString>,
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
        Command::Sim(sim) => return ExitCode::from(dispatcher_core::sim::cli::main(&sim)),
        Command::Node(c) => cluster("node", c.args),
        Command::Changefeed(c) => cluster("changefeed", c.args),
        Command::Status(c) => cluster("status", c.args),
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

/// Runs `dispatcher-cluster COMMAND ARGS…` in this process's place (same PID, so a signal sent to
/// it reaches the node itself); the binary is looked for beside this one, then on the PATH.
fn cluster(command: &str, args: Vec<std::ffi::OsString>) -> Result<(), String> {
    const NAME: &str = "dispatcher-cluster";
    let beside =
        std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.join(NAME))).filter(|p| p.exists());
    let program = beside.map_or_else(|| std::ffi::OsString::from(NAME), |p| p.into_os_string());
    let mut child = std::process::Command::new(&program);
    child.arg(command).args(args);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let error = child.exec();
        Err(format!("cannot run {NAME} (build it with `cargo build -p dispatcher-cluster`): {error}"))
    }
    #[cfg(not(unix))]
    {
        let status = child.status().map_err(|e| format!("cannot run {NAME}: {e}"))?;
        std::process::exit(status.code().unwrap_or(2));
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
