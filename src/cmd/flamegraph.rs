//! `stacktop flamegraph`: an SVG flamegraph (inferno) of a recorded profile.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::FlamegraphArgs;
use crate::cmd::load_profile_event;
use crate::profile::query::Matcher;
use crate::render::{write_flamegraph, FlamegraphOptions};

pub fn run(args: FlamegraphArgs) -> Result<ExitCode> {
    let profile = load_profile_event(&args.input, args.event.as_deref())?;
    let opts = FlamegraphOptions {
        title: args.title.clone(),
        inverted: args.inverted,
        reverse: args.reverse,
        callers: args.callers.as_deref().map(Matcher::exact),
        ..FlamegraphOptions::default()
    };
    let mut svg = Vec::new();
    write_flamegraph(&mut svg, &profile, &opts).context("rendering the flamegraph")?;
    let write = |path: &std::path::Path| -> std::io::Result<()> {
        let mut file = std::fs::File::create(path)?;
        file.write_all(&svg)?;
        file.flush()
    };
    write(&args.output).with_context(|| {
        format!(
            "cannot write {}: check the directory exists and is writable",
            args.output.display()
        )
    })?;
    eprintln!("stacktop: wrote {}", args.output.display());
    Ok(ExitCode::SUCCESS)
}
