//! One file per subcommand: each wires the stages together and does nothing else.

pub mod annotate;
pub mod convert;
pub mod flamegraph;
pub mod record;
pub mod report;
pub mod top;

use crate::profile::Profile;

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
