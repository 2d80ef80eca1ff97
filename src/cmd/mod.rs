//! One file per subcommand: each wires the stages together and does nothing else.

pub mod annotate;
pub mod convert;
pub mod flamegraph;
pub mod import;
pub mod output;
pub mod pipeline;
pub mod record;
pub mod report;
pub mod top;

use std::path::Path;

use anyhow::{Context, Result};

use crate::format::{pprof, read_input, Input};
use crate::profile::Profile;

/// Reads a profile file given with `-i`: stacktop's pprof or a perf.data file (told apart by content).
pub fn load_profile(path: &Path) -> Result<Profile> {
    load_profile_event(path, None)
}

/// Like [`load_profile`]; `event` picks one event of a perf.data file holding several (default: the first).
/// The file is opened once and its type told from the bytes read, so a pipe (`/dev/stdin`) works for pprof.
pub fn load_profile_event(path: &Path, event: Option<&str>) -> Result<Profile> {
    let context = || format!("cannot read profile {}", path.display());
    match read_input(path).with_context(context)? {
        Input::PerfData => import::load_perf_data(path, event)
            .with_context(|| format!("cannot read perf.data file {}", path.display())),
        Input::Pprof(bytes) => pprof::read_pprof(&bytes).with_context(context),
    }
}
