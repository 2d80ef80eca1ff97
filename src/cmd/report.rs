//! `stacktop report`: the call-graph report, the callers/callees trees, or collapsed stacks.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::ReportArgs;
use crate::pipeline::import::Detail;
use crate::profile::query::{Direction, Filter, GraphOptions, Matcher, SortKey};
use crate::render::{
    write_calltree, write_folded, write_locks, write_report, CalltreeOptions, FoldedOptions,
    LocksOptions, ReportOptions,
};

pub fn run(args: ReportArgs) -> Result<ExitCode> {
    if args.locks {
        return locks(&args);
    }
    let filter = Filter {
        percent_limit: args.percent_limit,
        ..args.samples.filter()
    };
    let sort = SortKey::parse_list(&args.sort).context("--sort")?;
    let by_thread = sort
        .iter()
        .any(|k| matches!(k, SortKey::Pid | SortKey::Tid));
    let profile = super::load_functions(
        &args.input,
        args.event.as_deref(),
        args.samples.weight,
        false,
        &filter,
        by_thread,
    )?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let tree = |matcher: Matcher, direction| CalltreeOptions {
        matcher,
        direction,
        filter: filter.clone(),
        show_module: true,
    };
    if let Some(sym) = &args.callers {
        write_calltree(
            &mut out,
            &profile,
            &tree(
                Matcher::exact(&super::function_name(&profile, sym)),
                Direction::Callers,
            ),
        )?;
    } else if let Some(re) = &args.callers_regex {
        let matcher = Matcher::regex(re).with_context(|| format!("--callers-regex {re:?}"))?;
        write_calltree(&mut out, &profile, &tree(matcher, Direction::Callers))?;
    } else if let Some(sym) = &args.callees {
        write_calltree(
            &mut out,
            &profile,
            &tree(
                Matcher::exact(&super::function_name(&profile, sym)),
                Direction::Callees,
            ),
        )?;
    } else if args.folded {
        let opts = FoldedOptions {
            filter,
            ..FoldedOptions::default()
        };
        write_folded(&mut out, &profile, &opts)?;
    } else {
        let opts = ReportOptions {
            children: !args.no_children,
            show_samples: args.show_samples,
            sort,
            graph: GraphOptions::parse(&args.call_graph).context("-g")?,
            filter,
        };
        write_report(&mut out, &profile, &opts)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `report --locks`: the locks table and the selected locks' trees (see `render::locks`).
fn locks(args: &ReportArgs) -> Result<ExitCode> {
    let profile = super::load_locks(&args.input, args.event.as_deref(), true, Detail::Addresses)?;
    let filter = Filter {
        percent_limit: args.percent_limit,
        ..args.samples.filter()
    };
    filter.check_labels(&profile)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    write_locks(&mut out, &profile, &LocksOptions { filter })?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
