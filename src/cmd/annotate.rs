//! `stacktop annotate SYM`: the function's source lines and disassembly with the share of its samples.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Result;

use crate::annotate::{annotate, ElfCode};
use crate::cli::AnnotateArgs;
use crate::pipeline::import::Detail;
use crate::profile::query::Matcher;
use crate::render::{write_annotation, AnnotateOptions};

pub fn run(args: AnnotateArgs) -> Result<ExitCode> {
    let profile = super::load_weighed(
        &args.input,
        None,
        args.samples.weight,
        false,
        Detail::Addresses,
    )?;
    let mut filter = args.samples.filter();
    // Off CPU, a thread's innermost frames are the kernel's scheduler: its own code's share is where it
    // entered the kernel (the system call that waited), so kernel frames are left out.
    filter.hide_kernel |= args.samples.weight.is_time();
    filter.check_labels(&profile)?;
    let mut code = ElfCode::new();
    let symbol = super::function_name(&profile, &args.symbol);
    let annotation = annotate(&profile, &Matcher::exact(&symbol), &filter, &mut code)?;
    let stdout = std::io::stdout();
    let color = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut out = std::io::BufWriter::new(stdout.lock());
    let opts = AnnotateOptions {
        color,
        summary_lines: 10,
    };
    write_annotation(&mut out, &profile, &annotation, &opts)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
