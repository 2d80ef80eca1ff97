//! One file per subcommand: each wires the stages together and does nothing else.

pub mod annotate;
pub mod flamegraph;
pub mod pipeline;
pub mod record;
pub mod report;
pub mod top;

use std::path::Path;

use anyhow::{Context, Result};

use crate::format::pprof;
use crate::profile::Profile;

/// Reads a profile file given with `-i`.
pub fn load_profile(path: &Path) -> Result<Profile> {
    pprof::read_pprof_file(path).with_context(|| format!("cannot read profile {}", path.display()))
}
