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
use crate::profile::{Profile, Weigh, BLOCKED, RUNNABLE};
use std::collections::{BTreeMap, HashSet};

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
    let view = profile.weighed.as_ref().map_or(Weigh::Cpu, |w| w.by);
    let folded = FoldedOptions {
        filter: opts.filter.clone(),
        mark_inline: true,
        callers: opts.callers.clone(),
        micros: view.is_time(),
    };
    let mut folded = folded_lines(profile, &folded);
    let mut palette = color::PaletteMap::default();
    if view.is_time() && !view.is_lock() {
        folded = off_cpu_marked(folded, &mut palette);
    }
    let lines: Vec<String> = folded
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
        (None, None) => match view {
            Weigh::Cpu => "Flame Graph".to_owned(),
            Weigh::Wall => "Wall-clock Flame Graph (CPU and off-CPU time)".to_owned(),
            Weigh::LockWait => "Lock Wait Flame Graph (the waiters, by the time they waited)".to_owned(),
            Weigh::LockHold => {
                "Lock Holder Flame Graph (the code that released a lock to waiters, by the wait it caused)"
                    .to_owned()
            }
            _ => format!(
                "Off-CPU Flame Graph ({})",
                super::text::view_description(view)
            ),
        },
    };
    options.subtitle = Some(subtitle(profile));
    options.count_name = "samples".to_owned();
    options.colors = color::Palette::Multi(color::MultiPalette::Java);
    if view.is_time() {
        // Counts are microseconds; titles say milliseconds.
        options.count_name = "ms".to_owned();
        options.factor = 0.001;
        if !view.is_lock() {
            options.palette_map = Some(&mut palette);
        }
    }
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
    let legend: &[(&str, &str)] = if view.is_time() && !view.is_lock() {
        &OFF_CPU_LEGEND
    } else {
        &LEGEND
    };
    w.write_all(&with_legend(svg, warning.as_deref(), legend))
}

/// inferno's annotation (one it strips from the names it shows) put on frames of off-CPU time only.
const OFF_CPU_ANNOTATION: &str = "_[w]";
const BLOCKED_COLOR: color::Color = color::Color {
    r: 40,
    g: 60,
    b: 190,
};
const RUNNABLE_COLOR: color::Color = color::Color {
    r: 160,
    g: 80,
    b: 210,
};

/// Colours the off-CPU part of a time view's stacks apart. An off-CPU stack ends in a `[blocked]` or
/// `[runnable]` frame (`Profile::weigh`'s marks). Its frames past the longest root-first prefix it shares
/// with some CPU stack are frames only off-CPU time passes through: they get [`OFF_CPU_ANNOTATION`] and a
/// blue colour in `palette`, and the marks colours of their own. The shared frames keep their names, so they
/// still merge with the CPU stacks' frames in the wall view; in the off-CPU view no stack is CPU, so every
/// frame is blue. (A `--callers` graph starts at the function, above the mark: its stacks are left as they
/// are.)
fn off_cpu_marked(
    lines: Vec<(String, u64)>,
    palette: &mut color::PaletteMap,
) -> Vec<(String, u64)> {
    let is_off = |stack: &str| {
        let leaf = stack.rsplit(';').next().unwrap_or(stack);
        leaf == BLOCKED || leaf == RUNNABLE
    };
    let mut cpu_prefixes: HashSet<&str> = HashSet::new();
    for (stack, _) in lines.iter().filter(|(s, _)| !is_off(s)) {
        cpu_prefixes.insert(stack);
        for (i, _) in stack.match_indices(';') {
            cpu_prefixes.insert(&stack[..i]);
        }
    }
    palette.insert(BLOCKED, BLOCKED_COLOR);
    palette.insert(RUNNABLE, RUNNABLE_COLOR);
    let mut marked: BTreeMap<String, u64> = BTreeMap::new();
    for (stack, count) in &lines {
        if !is_off(stack) {
            *marked.entry(stack.clone()).or_default() += count;
            continue;
        }
        let frames: Vec<&str> = stack.split(';').collect();
        // Shared frames: the longest prefix some CPU stack has.
        let mut shared = 0;
        let mut end = 0;
        for (i, frame) in frames.iter().enumerate() {
            end += frame.len() + usize::from(i > 0);
            if !cpu_prefixes.contains(&stack[..end]) {
                break;
            }
            shared = i + 1;
        }
        let last = frames.len() - 1;
        let texts: Vec<String> = frames
            .iter()
            .enumerate()
            .map(|(i, frame)| {
                if i < shared || i == last {
                    return (*frame).to_owned();
                }
                let bare = ["_[k]", "_[i]"]
                    .iter()
                    .find_map(|a| frame.strip_suffix(a))
                    .unwrap_or(frame);
                let name = format!("{bare}{OFF_CPU_ANNOTATION}");
                if palette.get(&name).is_none() {
                    palette.insert(&name, off_cpu_color(bare));
                }
                name
            })
            .collect();
        *marked.entry(texts.join(";")).or_default() += count;
    }
    marked.into_iter().collect()
}

/// A blue from the name's hash: stable across runs, varied between neighbours.
fn off_cpu_color(name: &str) -> color::Color {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let v = (hash % 1000) as f64 / 1000.0;
    let w = ((hash / 1000) % 1000) as f64 / 1000.0;
    color::Color {
        r: (70.0 + 60.0 * v) as u8,
        g: (110.0 + 70.0 * v) as u8,
        b: (200.0 + 55.0 * w) as u8,
    }
}

/// The colours frames get from inferno's "java" palette, by how stacktop names them (see `folded`): the
/// swatches show each range's middle.
/// A time view's colours: off-CPU frames in blues, the wait on top of them, CPU frames as [`LEGEND`] says.
const OFF_CPU_LEGEND: [(&str, &str); 4] = [
    ("rgb(100,145,228)", "off-CPU only"),
    ("rgb(40,60,190)", "[blocked]: gave up the CPU"),
    ("rgb(160,80,210)", "[runnable]: waited for a CPU"),
    ("rgb(227,90,90)", "CPU (wall view)"),
];

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
fn with_legend(svg: Vec<u8>, warning: Option<&str>, legend: &[(&str, &str)]) -> Vec<u8> {
    match String::from_utf8(svg) {
        Ok(text) => legend_added(&text, warning, legend)
            .unwrap_or(text)
            .into_bytes(),
        Err(e) => e.into_bytes(),
    }
}

fn legend_added(svg: &str, warning: Option<&str>, legend: &[(&str, &str)]) -> Option<String> {
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
    for (i, (color, label)) in legend.iter().enumerate() {
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
    match profile.weighed.as_ref().filter(|w| w.by.is_time()) {
        Some(w) if w.by.is_lock() => s.push_str(&format!(
            ", {} samples, {} lock waits, weighed: {} ({} ms), {} lost, {} throttled",
            w.totals.count,
            w.totals.contentions,
            w.by,
            super::text::ms(profile.total_period()),
            meta.lost,
            meta.throttled
        )),
        Some(w) => s.push_str(&format!(
            ", {} samples, {} switch-outs, weighed: {} ({} ms), {} lost, {} throttled",
            w.totals.count,
            w.totals.switches,
            w.by,
            super::text::ms(profile.total_period()),
            meta.lost,
            meta.throttled
        )),
        None => s.push_str(&format!(
            ", {} samples, {} lost, {} throttled",
            profile.total_count(),
            meta.lost,
            meta.throttled
        )),
    }
    if !meta.call_graph.is_empty() {
        s.push_str(&format!(", unwinding: {}", sanitize(&meta.call_graph)));
    }
    s
}
