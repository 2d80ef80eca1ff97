//! One file per subcommand: each wires the stages together and does nothing else.

pub mod annotate;
pub mod convert;
pub mod flamegraph;
pub mod record;
pub mod report;
pub mod top;

use std::path::Path;

use anyhow::{bail, Result};

use crate::pipeline::import::{load_profile_event, Detail};
use crate::profile::query::Filter;
use crate::profile::{Profile, Weigh};

/// `load_weighed` for an output that names functions, never lines (`report`, `flamegraph`), whose samples
/// `filter` picks: a perf.data file is read by function, and by stack alone unless `filter` or the output
/// (`by_thread`) needs processes or threads (see `import::Detail`). A filter that matches nothing is
/// checked on a reading with them, whose error lists the processes seen too.
fn load_functions(
    input: &Path,
    event: Option<&str>,
    by: Weigh,
    mark: bool,
    filter: &Filter,
    by_thread: bool,
) -> Result<Profile> {
    let detail = Detail::for_functions(filter, by_thread);
    let profile = load_weighed(input, event, by, mark, detail)?;
    if detail == Detail::Stacks && filter.check_labels(&profile).is_err() {
        let profile = load_weighed(input, event, by, mark, Detail::Functions)?;
        filter.check_labels(&profile)?;
        return Ok(profile);
    }
    filter.check_labels(&profile)?;
    Ok(profile)
}

/// The profile in `input` (its `event` when a perf.data file holds several), projected onto the view `by`
/// (with `mark`, the off-CPU time on a `[blocked]` or `[runnable]` frame: the flamegraph's form). A time view
/// of a file without off-CPU time, or a wall view of one whose CPU event is not a clock, is an error that
/// says how to record one.
fn load_weighed(
    input: &Path,
    event: Option<&str>,
    by: Weigh,
    mark: bool,
    detail: Detail,
) -> Result<Profile> {
    let mut profile = load_locks(input, event, by.is_lock(), detail)?;
    if by.is_time() && !by.is_lock() && !profile.meta.off_cpu.enabled && !profile.has_off_cpu() {
        bail!(
            "{} has no off-CPU time: record with off-CPU sampling on (the default for `stacktop record -- CMD`,              -p and -t; add --off-cpu with -a), or for perf: perf record -e context-switches -c 1              --call-graph dwarf --switch-events --sample-cpu",
            input.display()
        );
    }
    let clock = profile.meta.period_unit == "nanoseconds";
    if by == Weigh::Wall && !clock && profile.totals().count > 0 {
        bail!(
            "--weight wall adds CPU time to off-CPU time, but {} samples {} (not a clock): use --weight off-cpu,              or record with -e cpu-clock",
            input.display(),
            crate::render::sanitize(&profile.meta.event)
        );
    }
    profile.weigh(by, mark);
    Ok(profile)
}

/// The profile in `input`; with `locks`, one that has lock waits, else an error that says how to record one.
fn load_locks(input: &Path, event: Option<&str>, locks: bool, detail: Detail) -> Result<Profile> {
    let profile = load_profile_event(input, event, detail)?;
    if locks && !profile.meta.locks.enabled && !profile.has_locks() {
        bail!(
            "{} has no lock waits: record with `stacktop record --locks` (with a command, -p or -t)",
            input.display()
        );
    }
    Ok(profile)
}

/// `name`, or the name `profile` gives the function `name` is another alias of (perf may print
/// `___pthread_mutex_lock` for `pthread_mutex_lock`), said on stderr.
fn function_name(profile: &Profile, name: &str) -> String {
    match crate::pipeline::aliases::resolve_alias(profile, name) {
        Some(known) => {
            eprintln!(
                "stacktop: {} is named {} here (another name of the same address)",
                crate::render::sanitize(name),
                crate::render::sanitize(&known)
            );
            known
        }
        None => name.to_owned(),
    }
}
