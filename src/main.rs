//! Thin entry point: parse the command line, run the subcommand, and turn any error into one line on stderr
//! and a non-zero exit. A closed stdout (`stacktop report | head`) ends quietly with status 0.
//!
//! Every error reaches the terminal here, and errors quote names: functions, module paths and event names
//! from profiled programs or profile files, and arguments that may have been pasted from them. So the whole
//! message is sanitized (control characters and bidi overrides made visible), as the outputs sanitize names.

use std::io::Write;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches};
use stacktop::cli::{Args, Command};
use stacktop::cmd;
use stacktop::render::sanitize_message;

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(code) => return code,
    };
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
            // Not eprintln!: with stderr on a full disk it would panic over the error being reported.
            let _ = writeln!(
                std::io::stderr(),
                "stacktop: {}",
                sanitize_message(&format!("{err:#}"))
            );
            ExitCode::FAILURE
        }
    }
}

/// `Args::parse`, except that a usage error, which quotes the argument it could not take (maybe a name pasted
/// from a profile), is printed sanitized line by line. It is rendered without colours: clap's colour codes
/// would not survive the sanitizing. Help and version quote nothing and are printed by clap as usual.
/// The command line, with `top --help` listing the keys of the live view.
fn cli() -> clap::Command {
    let keys: String = stacktop::tui::input::HELP
        .iter()
        .map(|(key, what)| format!("  {key:<12} {what}\n"))
        .collect();
    Args::command().mut_subcommand("top", |top| top.after_help(format!("Keys:\n{keys}")))
}

fn parse_args() -> Result<Args, ExitCode> {
    let mut plain = cli().styles(clap::builder::Styles::plain());
    let err = match plain
        .try_get_matches_from_mut(std::env::args_os())
        .and_then(|mut matches| {
            Args::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut plain.clone()))
        }) {
        Ok(args) => return Ok(args),
        Err(err) => err,
    };
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        // Parsed again with the colours, which clap drops itself where stdout is not a terminal.
        cli().try_get_matches().err().unwrap_or(err).exit();
    }
    for line in err.render().ansi().to_string().lines() {
        eprintln!("{}", sanitize_message(line));
    }
    Err(ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2)))
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
