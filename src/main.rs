//! The `akv-csi-provider` binary: parses the command line, starts the runtime and dispatches to
//! the server (default), `lint` or `mount`.

use std::process::ExitCode;

use clap::Parser;

use akv_csi_provider::cli::{self, Cli, Command};
use akv_csi_provider::logging;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.serve.version {
        println!("{}", cli::version_json());
        return ExitCode::SUCCESS;
    }
    // File reads (cloud environment files, the cluster CA) and DNS lookups run on tokio's
    // blocking pool; a burst of mounts would otherwise start a thread (and a malloc arena) for
    // each. They take microseconds to milliseconds, so a few threads serve any burst.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(8)
        .build()
        .expect("tokio runtime");
    let result = match cli.command {
        Some(Command::Lint(args)) => return cli::lint::run(&args),
        Some(Command::Mount(args)) => {
            logging::init(args.verbosity, false);
            runtime.block_on(cli::mount(args))
        }
        None => {
            logging::init(cli.serve.verbosity, cli.serve.log_format_json);
            runtime.block_on(cli::serve(cli.serve))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
