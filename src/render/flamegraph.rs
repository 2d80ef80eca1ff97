//! Flamegraph SVG through the inferno library: folded lines built here (see `folded`) are handed to
//! `inferno::flamegraph::from_lines`, so the two stages meet only at the folded text, as in inferno itself.
//!
//! The SVG is interactive as inferno makes it (its script: search, click to zoom, the details line, reset;
//! `?s=NAME` in the URL searches and `?x=..&y=..` zooms), with a legend of the colours added under the graph.
//!
//! Determinism: the lines are sorted, colours come from a hash of the name (`deterministic`) and the XML is
//! pretty-printed, so the same profile gives the same bytes. inferno XML-escapes
//! names and titles (`&`, `<`, quotes) but writes every other character as given, so what XML 1.0 forbids
//! (C0 controls, U+FFFE, U+FFFF) is made visible by `sanitize` first, in frames, title and subtitle alike;
//! every text written into the SVG goes through it. Names that inferno's line parser would misread (a trailing
//! number taken for a differential count) are handled where the folded lines are built (see `folded`).
//!
//! `--callers SYM` answers "who calls SYM": each sample with SYM on its stack contributes the stack from
//! SYM's outermost occurrence toward its callers, so SYM is the single root and the frames above it are its
//! callers, widest first; the immediate callers sit right on top of SYM and merge across call sites.

use std::io::{self, Write};

use super::text::frameless_warning;

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
    options.reverse_stack_order = opts.reverse;
    options.image_width = opts.width;
    if opts.inverted {
        options.direction = Direction::Inverted;
    }
    let mut svg = Vec::new();
    flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut svg)?;
    let warning = frameless_warning(&profile.meta, profile.total_count()).map(|w| w.one_line());
    w.write_all(&with_legend(svg, warning.as_deref()))
}

/// The colours frames get from inferno's "java" palette, by how stacktop names them (see `folded`): the
/// swatches show each range's middle.
const LEGEND: [(&str, &str); 5] = [
    ("rgb(227,90,90)", "native code"),
    ("rgb(202,202,60)", "C++ and Rust (::)"),
    ("rgb(80,192,192)", "inlined"),
    ("rgb(222,122,0)", "kernel"),
    ("rgb(80,227,80)", "JIT, Java-like names"),
];

/// Height of the legend's row, in pixels (inferno's default font is 12 px).
const LEGEND_HEIGHT: u64 = 20;

/// Adds a row under inferno's SVG with one swatch and label per colour kind, and above it a row with the
/// `warning` about the stacks, if any (see `text::frameless_warning`): the image grows by [`LEGEND_HEIGHT`]
/// per row (its `height` and `viewBox`) and the rows go last. An SVG not in the expected shape (another
/// inferno version) is returned as it is.
fn with_legend(svg: Vec<u8>, warning: Option<&str>) -> Vec<u8> {
    match String::from_utf8(svg) {
        Ok(text) => legend_added(&text, warning).unwrap_or(text).into_bytes(),
        Err(e) => e.into_bytes(),
    }
}

fn legend_added(svg: &str, warning: Option<&str>) -> Option<String> {
    // `<svg version="1.1" width="1200" height="174" onload="init(evt)" viewBox="0 0 1200 174" ...>`
    let start = svg.find("<svg ")?;
    let head = &svg[..start + svg[start..].find('>')?];
    let attribute = |name: &str| -> Option<(usize, usize)> {
        let at = start + head[start..].find(name)? + name.len();
        Some((at, head[at..].find('"')?))
    };
    let (height_at, height_len) = attribute(" height=\"")?;
    let height: u64 = head[height_at..height_at + height_len].parse().ok()?;
    let (view_at, view_len) = attribute(" viewBox=\"")?;
    if view_at < height_at {
        return None;
    }
    let view: Vec<&str> = head[view_at..view_at + view_len].split(' ').collect();
    let [vx, vy, vw, vh] = view.as_slice() else {
        return None;
    };
    let vh: u64 = vh.parse().ok()?;
    let added = LEGEND_HEIGHT * (1 + u64::from(warning.is_some()));
    let grown = height + added;
    let close = svg.rfind("</svg>")?;
    let mut out = String::with_capacity(svg.len() + 1024);
    out.push_str(&svg[..height_at]);
    out.push_str(&grown.to_string());
    out.push_str(&svg[height_at + height_len..view_at]);
    out.push_str(&format!("{vx} {vy} {vw} {}", vh + added));
    out.push_str(&svg[view_at + view_len..close]);
    // The warning's text is sanitized already; what XML gives meaning to is escaped here.
    let height = match warning {
        Some(text) => {
            let text = text
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            out.push_str(&format!(
                "    <g id=\"unwind-warning\">\n        <rect x=\"0\" y=\"{height}\" width=\"100%\" height=\"{LEGEND_HEIGHT}\" fill=\"#ffd0d0\"/>\n        <text x=\"10\" y=\"{}\">Unwind quality: {text}</text>\n    </g>\n",
                height + 14,
            ));
            height + LEGEND_HEIGHT
        }
        None => height,
    };
    // Background under the new row, then the swatches, 170 px apart from the left margin.
    out.push_str(&format!(
        "    <g id=\"legend\">\n        <rect x=\"0\" y=\"{height}\" width=\"100%\" height=\"{LEGEND_HEIGHT}\" fill=\"#eeeeb0\"/>\n"
    ));
    for (i, (color, label)) in LEGEND.iter().enumerate() {
        let x = 10 + 170 * i;
        out.push_str(&format!(
            "        <rect x=\"{x}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{color}\"/>\n        <text x=\"{}\" y=\"{}\">{label}</text>\n",
            height + 3,
            x + 16,
            height + 13,
        ));
    }
    out.push_str("    </g>\n");
    out.push_str(&svg[close..]);
    Some(out)
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
