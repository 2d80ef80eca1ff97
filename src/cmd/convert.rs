//! `stacktop convert -i IN -o OUT [--to pprof|folded]`: perf.data or pprof in (told apart by content),
//! pprof or folded stacks out (from `--to`, else from the output's name).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::cli::ConvertArgs;
use crate::format::output::{write_output, write_profile, Access};
use crate::pipeline::import::{load_profile_event, Detail};
use crate::render::{write_folded, FoldedOptions};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Pprof,
    Folded,
}

impl OutputFormat {
    /// From `--to`, else from the output name.
    pub fn choose(to: Option<&str>, output: &Path) -> Result<OutputFormat> {
        if let Some(to) = to {
            return match to {
                "pprof" => Ok(OutputFormat::Pprof),
                "folded" => Ok(OutputFormat::Folded),
                other => bail!("--to {other}: give pprof or folded"),
            };
        }
        let name = output
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if [".pb.gz", ".pb", ".pprof", ".pprof.gz"]
            .iter()
            .any(|s| name.ends_with(s))
        {
            Ok(OutputFormat::Pprof)
        } else if [".folded", ".txt"].iter().any(|s| name.ends_with(s)) {
            Ok(OutputFormat::Folded)
        } else {
            bail!(
                "cannot tell the output format from {}: name it .pb.gz/.pb/.pprof or .folded/.txt, or give --to pprof|folded",
                output.display()
            )
        }
    }
}

pub fn run(args: ConvertArgs) -> Result<ExitCode> {
    let format = OutputFormat::choose(args.to.as_deref(), &args.output)?;
    let profile = load_profile_event(&args.input, args.event.as_deref(), Detail::Addresses)?;
    match format {
        OutputFormat::Pprof => write_profile(&profile, &args.output)?,
        OutputFormat::Folded => write_output(&args.output, Access::Shared, |out| {
            write_folded(&mut &mut *out, &profile, &FoldedOptions::default())
        })?,
    }
    eprintln!(
        "stacktop: wrote {} ({} samples)",
        args.output.display(),
        profile.total_count()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn format_from_flag_then_name() {
        let p = Path::new;
        assert_eq!(
            OutputFormat::choose(None, p("a.pb.gz")).unwrap(),
            OutputFormat::Pprof
        );
        assert_eq!(
            OutputFormat::choose(None, p("a.pprof")).unwrap(),
            OutputFormat::Pprof
        );
        assert_eq!(
            OutputFormat::choose(None, p("a.folded")).unwrap(),
            OutputFormat::Folded
        );
        assert_eq!(
            OutputFormat::choose(Some("folded"), p("a.pb.gz")).unwrap(),
            OutputFormat::Folded
        );
        assert!(OutputFormat::choose(None, p("a.svg")).is_err());
        assert!(OutputFormat::choose(Some("json"), p("a.pb")).is_err());
    }
}
