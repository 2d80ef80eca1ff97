//! What the fuzz targets share: text from bytes, and what a profile read from outside bytes is put through.

use std::borrow::Cow;

use stacktop::format::pprof::write_pprof;
use stacktop::profile::Profile;
use stacktop::render::{write_folded, write_report, FoldedOptions, ReportOptions};

/// Text parsers take `&str`; stacktop reads their files with `read_to_string`, which refuses invalid
/// UTF-8. Lossy conversion keeps every input useful instead of discarding most mutations.
pub fn text(data: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// What a profile read from outside bytes goes through next in `report`, `convert` and `flamegraph`: a
/// profile the reader accepted must not make these panic either.
pub fn exercise_profile(profile: &Profile) {
    let mut out = Vec::new();
    let _ = write_pprof(profile, &mut out, false);
    out.clear();
    let _ = write_folded(&mut out, profile, &FoldedOptions::default());
    out.clear();
    let _ = write_report(&mut out, profile, &ReportOptions::default());
}
