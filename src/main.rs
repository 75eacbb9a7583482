//! The `dispatcher-core` command.

use std::io::{Read, Write};
use std::process::ExitCode;

use dispatcher_core::wire;

const USAGE_HEAD: &str = "\
usage:
  dispatcher-core decode MESSAGE [FILE]   binary protobuf (FILE or stdin) -> canonical JSON
  dispatcher-core encode MESSAGE [FILE]   JSON (FILE or stdin) -> binary protobuf on stdout
  dispatcher-core messages                list the message names
{SIM}

MESSAGE is a message of proto/heartbeat.proto (package heartbeatpb), e.g. ScheduleDispatcherRequest.
Errors: one line on stderr, exit status 2.";

fn usage() -> String {
    USAGE_HEAD.replace("{SIM}", dispatcher_core::sim::cli::USAGE)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("sim") {
        return ExitCode::from(dispatcher_core::sim::cli::main(&args[1..]));
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("dispatcher-core: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("decode") => {
            let (name, input) = message_and_input(&args[1..])?;
            let json = wire::decode_to_json(name, &input).map_err(|e| e.to_string())?;
            println!("{json}");
            Ok(())
        }
        Some("encode") => {
            let (name, input) = message_and_input(&args[1..])?;
            let text = String::from_utf8(input).map_err(|_| format!("{name}: input is not UTF-8 JSON"))?;
            let bytes = wire::encode_from_json(name, &text).map_err(|e| e.to_string())?;
            std::io::stdout().write_all(&bytes).map_err(|e| format!("writing output: {e}"))
        }
        Some("messages") => {
            for name in wire::message_names() {
                println!("{name}");
            }
            Ok(())
        }
        Some("-h" | "--help" | "help") => {
            println!("{}", usage());
            Ok(())
        }
        _ => Err(format!("expected a command\n{}", usage())),
    }
}

fn message_and_input(args: &[String]) -> Result<(&str, Vec<u8>), String> {
    let name = args.first().ok_or_else(|| format!("missing MESSAGE\n{}", usage()))?;
    if args.len() > 2 {
        return Err(format!("too many arguments\n{}", usage()));
    }
    let mut input = Vec::new();
    match args.get(1) {
        Some(path) => input = std::fs::read(path).map_err(|e| format!("{name}: reading {path}: {e}"))?,
        None => {
            std::io::stdin().read_to_end(&mut input).map_err(|e| format!("{name}: reading stdin: {e}"))?;
        }
    }
    Ok((name, input))
}
