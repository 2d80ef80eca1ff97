//! Flamegraph SVG through the inferno library: folded lines built here (see `folded`) are handed to
//! `inferno::flamegraph::from_lines`, so the two stages meet only at the folded text, as in inferno itself.
//!
//! Determinism: the lines are sorted, colours come from a hash of the name (`deterministic`), the JavaScript
//! is left out and the XML is pretty-printed, so the same profile gives the same bytes. inferno XML-escapes
//! names and titles (`&`, `<`, quotes) but writes every other character as given, so what XML 1.0 forbids
//! (C0 controls, U+FFFE, U+FFFF) is made visible by `sanitize` first, in frames, title and subtitle alike;
//! every text written into the SVG goes through it. Names that inferno's line parser would misread (a trailing
//! number taken for a differential count) are handled where the folded lines are built (see `folded`).
//!
//! `--callers SYM` answers "who calls SYM": each sample with SYM on its stack contributes the stack from
//! SYM's outermost occurrence toward its callers, so SYM is the single root and the frames above it are its
//! callers, widest first; the immediate callers sit right on top of SYM and merge across call sites.

use std::io::{self, Write};

use inferno::flamegraph::{self, color, Direction, Options};

use crate::profile::query::{Filter, Matcher};
use crate::profile::Profile;

use super::folded::{folded_lines, FoldedOptions};
use super::text::sanitize;

#[derive(Clone, Debug, Default)]
pub struct FlamegraphOptions {
    /// Defaults to "Flame Graph" (or "Callers of SYM").
    pub title: Option<String>,
    /// Icicle graph: roots at the top.
    pub inverted: bool,
    /// Reverse each stack so it starts at the leaf: frames merge at the leaves (a "reverse flamegraph").
    pub reverse: bool,
    /// Only SYM's callers (see the module docs).
    pub callers: Option<Matcher>,
    pub filter: Filter,
    /// Image width in pixels (inferno's default 1200 when `None`).
    pub width: Option<usize>,
}

/// Renders the flamegraph. A profile with no samples gives inferno's "no stack counts" error as an
/// `io::Error` of kind `InvalidData`.
pub fn write_flamegraph(
    w: &mut impl Write,
    profile: &Profile,
    opts: &FlamegraphOptions,
) -> io::Result<()> {
    let folded = FoldedOptions {
        filter: opts.filter.clone(),
        mark_inline: true,
        callers: opts.callers.clone(),
    };
    let lines: Vec<String> = folded_lines(profile, &folded)
        .into_iter()
        .map(|(stack, count)| format!("{stack} {count}"))
        .collect();
    if lines.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no samples to draw (after filters)",
        ));
    }
    let mut options = Options::default();
    options.title = match (&opts.title, &opts.callers) {
        (Some(t), _) => sanitize(t).into_owned(),
        (None, Some(m)) => format!("Callers of {}", sanitize(&m.to_string())),
        (None, None) => "Flame Graph".to_owned(),
    };
    options.subtitle = Some(subtitle(profile));
    options.count_name = "samples".to_owned();
    options.colors = color::Palette::Multi(color::MultiPalette::Java);
    options.deterministic = true;
    options.pretty_xml = true;
    options.no_javascript = true;
    options.reverse_stack_order = opts.reverse;
    options.image_width = opts.width;
    if opts.inverted {
        options.direction = Direction::Inverted;
    }
    flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), w)
}

/// Event, samples, lost and throttled samples and the unwinding mode, in one line.
fn subtitle(profile: &Profile) -> String {
    let meta = &profile.meta;
    let event = if meta.event.is_empty() {
        "unknown event"
    } else {
        meta.event.as_str()
    };
    let mut s = format!("{}", sanitize(event));
    if meta.frequency > 0 {
        s.push_str(&format!(" at {} Hz", meta.frequency));
    }
    s.push_str(&format!(
        ", {} samples, {} lost, {} throttled",
        profile.total_count(),
        meta.lost,
        meta.throttled
    ));
    if !meta.call_graph.is_empty() {
        s.push_str(&format!(", unwinding: {}", sanitize(&meta.call_graph)));
    }
    s
}
