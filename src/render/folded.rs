//! Folded stacks (`a;b;c 123`), the text that inferno and Brendan Gregg's scripts read: one line per distinct
//! stack, frames root first, inline frames as frames of their own, kernel frames suffixed `_[k]`, then a
//! space and the sample count (in a time view, `report --folded --weight off-cpu`, microseconds). No process name at the root. Lines are sorted, so output is deterministic.
//!
//! The readers of this text (inferno, flamegraph.pl) take the number after a line's last space as its count,
//! and a number before that one as the first count of a differential flamegraph; they skip a line starting
//! with `# `. So a frame name ending in ` 123`, or starting with `# `, has that space written as a no-break
//! space (U+00A0), which looks the same: `a;foo 123 5` would otherwise be a frame `foo` whose count went from
//! 123 to 5.

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
    /// Count microseconds (the period of a time view, in nanoseconds, over 1,000) rather than samples.
    pub micros: bool,
}

/// The frame's name as a folded-stack frame: sanitized, `;` (the separator) replaced by `:`, `_[k]` for
/// kernel frames, kept apart from the counts (see the module docs).
fn frame_text(profile: &Profile, frame: &Frame, mark_inline: bool) -> String {
    let key = profile.func_key(frame);
    let name = profile.func_name(&key);
    let mut text = sanitize(name).replace(';', ":");
    if key.module.kernel {
        text.push_str("_[k]");
    } else if mark_inline && frame.inlined {
        text.push_str("_[i]");
    }
    apart_from_counts(text)
}

/// Replaces the space before a trailing count-like word (digits with at most one `.`, as inferno's
/// `rfind_samples` accepts them), and the one of a leading `# `, with a no-break space. Trailing whitespace
/// is looked past: the readers trim it after taking the count off.
fn apart_from_counts(mut text: String) -> String {
    const NO_BREAK_SPACE: &str = "\u{a0}";
    let body = text.trim_end();
    if let Some(space) = body.rfind(' ') {
        let word = &body[space + 1..];
        let count_like = word.chars().all(|c| c.is_ascii_digit() || c == '.')
            && word.chars().filter(|&c| c == '.').count() <= 1;
        if count_like {
            text.replace_range(space..space + 1, NO_BREAK_SPACE);
        }
    }
    let indent = text.len() - text.trim_start().len();
    if text[indent..].starts_with("# ") {
        text.replace_range(indent + 1..indent + 2, NO_BREAK_SPACE);
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
        let value = if opts.micros {
            sample.group.period / 1_000
        } else {
            sample.group.count
        };
        *stacks.entry(line).or_default() += value;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_cannot_be_read_out_of_names() {
        let apart = |s: &str| apart_from_counts(s.to_owned());
        assert_eq!(apart("foo 123"), "foo\u{a0}123");
        assert_eq!(apart("foo 1.5"), "foo\u{a0}1.5");
        assert_eq!(apart("foo 12  "), "foo\u{a0}12  ");
        assert_eq!(apart("a 1 2"), "a 1\u{a0}2");
        assert_eq!(apart("# root"), "#\u{a0}root");
        assert_eq!(apart("# 7"), "#\u{a0}7");
        for kept in [
            "foo",
            "foo 1.2.3",
            "foo bar",
            "v2 x",
            "foo_123",
            "#root",
            "123",
            "",
        ] {
            assert_eq!(apart(kept), kept);
        }
    }
}
