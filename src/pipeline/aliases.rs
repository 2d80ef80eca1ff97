//! Function names as other tools print them, resolved against a profile's binaries. A function has one name in
//! a profile (the ELF alias users know: `pthread_mutex_lock`), where perf may print another alias of the same
//! address (`___pthread_mutex_lock`, `__GI___pthread_mutex_unlock_usercnt`). A name that no function of the
//! profile has is looked up among the other aliases in the symbol tables of the profile's modules, as the
//! symbolizer reads them (the binary's, its debug file's), and stands for the function at that address.

use crate::annotate::hex_bytes;
use crate::profile::query::Matcher;
use crate::profile::Profile;
use crate::symbolize::{ModuleSpec, Symbolizer};

/// The name `profile` gives the function that `name` is another alias of, when no function of `profile` is
/// named `name` (a version suffix ignored) and a module of the profile has such an alias; `None` otherwise.
/// Modules are read in the order of the profile's mappings, until one has the alias: this costs reading
/// symbol tables only when the name is not found as given.
pub fn resolve_alias(profile: &Profile, name: &str) -> Option<String> {
    let wanted = Matcher::exact(name);
    if profile
        .functions
        .iter()
        .any(|f| wanted.matches_name(profile.str(f.name)))
    {
        return None;
    }
    let bare = wanted.to_string();
    let mut symbolizer = Symbolizer::default();
    let mut seen = std::collections::HashSet::new();
    for mapping in &profile.mappings {
        let path = profile.str(mapping.path);
        let build_id = mapping.build_id.map(|b| profile.str(b));
        if mapping.kernel || path.starts_with('[') || !seen.insert((path, build_id)) {
            continue;
        }
        let spec = ModuleSpec {
            path: path.to_owned(),
            build_id: build_id.and_then(hex_bytes),
            pid: None,
            map_start: mapping.start,
            map_end: mapping.limit,
        };
        let Some(function) = symbolizer.function_aliased(&spec, &bare) else {
            continue;
        };
        if profile
            .functions
            .iter()
            .any(|f| profile.str(f.name) == function.name)
        {
            return Some(function.name);
        }
    }
    None
}
