//! `dispatcher-cluster`: the cluster's commands (`node`, `changefeed`, `status`), which the
//! `dispatcher-core` command runs by executing this binary. See `../shared/cluster-cli.md`.

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;
use dispatcher_cluster::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.render().to_string();
            let first: Vec<&str> = text.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
            eprintln!("dispatcher-core: {} (see --help)", first.join(" ").trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    // Structured lines on stderr; `DC_LOG=debug` shows finished operators and dropped frames.
    let level = match std::env::var("DC_LOG").as_deref() {
        Ok("debug") => tracing::Level::DEBUG,
        Ok("warn") => tracing::Level::WARN,
        Ok("error") => tracing::Level::ERROR,
        _ => tracing::Level::INFO,
    };
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(level).with_target(false).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dispatcher-core: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(cli::main(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("dispatcher-core: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
