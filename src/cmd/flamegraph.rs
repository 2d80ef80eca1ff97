//! `stacktop flamegraph`: an SVG flamegraph (inferno) of a recorded profile.

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::FlamegraphArgs;
use crate::format::output::{write_output, Access};
use crate::profile::query::Matcher;
use crate::render::{write_flamegraph, FlamegraphOptions};

pub fn run(args: FlamegraphArgs) -> Result<ExitCode> {
    let filter = args.samples.filter();
    let profile = super::load_functions(
        &args.input,
        args.event.as_deref(),
        args.samples.weight,
        true,
        &filter,
        false,
    )?;
    let opts = FlamegraphOptions {
        title: args.title.clone(),
        inverted: args.inverted,
        reverse: args.reverse,
        callers: args
            .callers
            .as_deref()
            .map(|sym| Matcher::exact(&super::function_name(&profile, sym))),
        filter,
        ..FlamegraphOptions::default()
    };
    let mut svg = Vec::new();
    write_flamegraph(&mut svg, &profile, &opts).context("rendering the flamegraph")?;
    write_output(&args.output, Access::Shared, |out| out.write_all(&svg))?;
    eprintln!("stacktop: wrote {}", args.output.display());
    Ok(ExitCode::SUCCESS)
}
