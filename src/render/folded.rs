//! Folded stacks (`a;b;c 123`), the text that inferno and Brendan Gregg's scripts read: one line per distinct
//! stack, frames root first, inline frames as frames of their own, kernel frames suffixed `_[k]`, then a
//! space and the sample count. No process name at the root. Lines are sorted, so output is deterministic.

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::profile::query::{filtered_samples, Filter, Frame, Matcher, UNKNOWN};
use crate::profile::Profile;

use super::text::sanitize;

/// What goes into the folded lines (the flamegraph uses the same builder).
#[derive(Clone, Debug, Default)]
pub struct FoldedOptions {
    pub filter: Filter,
    /// Mark inline frames with inferno's `_[i]` suffix (the flamegraph colours them apart).
    pub mark_inline: bool,
    /// Keep only samples with a matching function on the stack, and write each stack from the outermost
    /// matching frame toward the callers: `SYM;caller;caller's caller`.
    pub callers: Option<Matcher>,
}

/// The frame's name as a folded-stack frame: sanitized, `;` (the separator) replaced by `:`, `_[k]` for
/// kernel frames.
fn frame_text(profile: &Profile, frame: &Frame, mark_inline: bool) -> String {
    let key = profile.func_key(frame);
    let name = profile.func_name(&key);
    let mut text = sanitize(name).replace(';', ":");
    if key.module.kernel {
        text.push_str("_[k]");
    } else if mark_inline && frame.inlined {
        text.push_str("_[i]");
    }
    text
}

/// The folded lines with their sample counts, sorted by stack text.
pub fn folded_lines(profile: &Profile, opts: &FoldedOptions) -> Vec<(String, u64)> {
    let mut stacks: BTreeMap<String, u64> = BTreeMap::new();
    for sample in filtered_samples(profile, &opts.filter, true) {
        let frames = &sample.frames;
        let texts: Vec<String> = match &opts.callers {
            None => frames
                .iter()
                .rev()
                .map(|f| frame_text(profile, f, opts.mark_inline))
                .collect(),
            Some(matcher) => {
                let Some(at) = frames
                    .iter()
                    .rposition(|f| matcher.matches(profile, &profile.func_key(f)))
                else {
                    continue;
                };
                frames[at..]
                    .iter()
                    .map(|f| frame_text(profile, f, opts.mark_inline))
                    .collect()
            }
        };
        let line = if texts.is_empty() {
            UNKNOWN.to_owned()
        } else {
            texts.join(";")
        };
        *stacks.entry(line).or_default() += sample.group.count;
    }
    stacks.into_iter().filter(|(_, n)| *n > 0).collect()
}

/// Writes `stack count` lines.
pub fn write_folded(w: &mut impl Write, profile: &Profile, opts: &FoldedOptions) -> io::Result<()> {
    for (stack, count) in folded_lines(profile, opts) {
        writeln!(w, "{stack} {count}")?;
    }
    Ok(())
}
