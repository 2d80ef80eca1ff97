//! Thin entry point: parse the command line, run the subcommand, and turn any error into one line on stderr
//! and a non-zero exit. A closed stdout (`stacktop report | head`) ends quietly with status 0.

use std::process::ExitCode;

use clap::Parser;
use stacktop::cli::{Args, Command};
use stacktop::cmd;

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Record(a) => cmd::record::run(a),
        Command::Report(a) => cmd::report::run(a),
        Command::Flamegraph(a) => cmd::flamegraph::run(a),
        Command::Top(a) => cmd::top::run(a),
        Command::Annotate(a) => cmd::annotate::run(a),
        Command::Convert(a) => cmd::convert::run(a),
    };
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("stacktop: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
