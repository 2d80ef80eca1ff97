//! The text of `stacktop annotate SYM`: the recording's header, the function's, the hottest source lines,
//! then source rows interleaved with the disassembly as `perf annotate --stdio` lays it out:
//! ```text
//!    Percent | Source code & Disassembly of hot_a (AT&T syntax)
//! ---------------------------------------------------------------
//!     100.00 : split.c:6      __attribute__((noinline)) void hot_a(unsigned long units) { BURN_BODY(1); }
//!       0.00 :     1230:      imul   $0x30d40,%rdi,%rdi
//! >>   92.52 :     125c:      add    $0x1,%rdx
//! ```
//! A source row (`FILE:LINE  TEXT`) heads the instructions generated for it; its percent is theirs. An
//! instruction row is `ADDRESS:  INSTRUCTION`, at its SVMA as objdump prints it. `>>` marks the hottest source
//! row and the hottest instruction, `> ` other rows at `HOT_PERCENT` or more. Colour only when asked (the CLI
//! asks when stdout is a terminal and `NO_COLOR` is unset). Names and source text pass through `sanitize`.

use std::io::{self, Write};

use crate::annotate::{Annotation, LineKind, HOT_PERCENT};
use crate::profile::Profile;
use crate::symbolize::DebugInfo;

use super::text::{sanitize, short_module, trim_end, write_header};

#[derive(Clone, Copy, Debug, Default)]
pub struct AnnotateOptions {
    /// ANSI colours for hot rows.
    pub color: bool,
    /// Hottest source lines listed in the header.
    pub summary_lines: usize,
}

pub fn write_annotation(
    w: &mut impl Write,
    profile: &Profile,
    a: &Annotation,
    opts: &AnnotateOptions,
) -> io::Result<()> {
    write_header(w, profile, a.total)?;
    let name = sanitize(&a.function);
    write!(w, "# Annotate: {name} in {}", sanitize(&a.module))?;
    match &a.build_id {
        Some(id) => writeln!(w, " (build-id {})", sanitize(id))?,
        None => writeln!(w)?,
    }
    writeln!(
        w,
        "# Self samples: {} ({:.2}% of all), event count {}; percents are shares of {name}'s event count",
        a.samples.count,
        a.percent_of_all(),
        a.samples.period
    )?;
    let debug = match &a.debug_info {
        DebugInfo::None => "none, disassembly only".to_owned(),
        DebugInfo::Embedded => format!("DWARF in {}", sanitize(&a.opened)),
        DebugInfo::Separate(path) => format!("DWARF in {}", sanitize(&path.display().to_string())),
    };
    writeln!(w, "# Source lines: {debug}")?;
    writeln!(
        w,
        "# Code: {} bytes at {:#x} in {}, AT&T syntax; '>>' marks the hottest, '>' rows at {HOT_PERCENT}% or more",
        a.size,
        a.start.0,
        sanitize(&a.opened)
    )?;
    for note in &a.notes {
        writeln!(w, "# Note: {}", sanitize(note))?;
    }
    let hot_sources: Vec<_> = a
        .sources
        .iter()
        .filter(|s| s.weight.period > 0)
        .take(opts.summary_lines)
        .collect();
    if !hot_sources.is_empty() {
        writeln!(w, "#")?;
        writeln!(w, "# Hottest source lines:")?;
        for s in hot_sources {
            writeln!(w, "# {:>8.2}%  {}:{}", s.share, sanitize(&s.file), s.line)?;
        }
    }
    writeln!(w, "#")?;
    let title = format!("   Percent | Source code & Disassembly of {name} (AT&T syntax)");
    writeln!(w, "{title}")?;
    writeln!(w, "{}", "-".repeat(title.chars().count().max(40)))?;
    for l in &a.lines {
        let marker = if l.hottest {
            ">>"
        } else if l.hot {
            "> "
        } else {
            "  "
        };
        let body = match l.kind {
            LineKind::Source => {
                let file = l.file.as_deref().map_or("?", short_module);
                let place = format!("{}:{}", sanitize(file), l.line);
                let mut body = format!("{place:<14} {}", sanitize(&l.text));
                if let Some(from) = &l.inlined_from {
                    body.push_str(&format!("   [inlined {}]", sanitize(from)));
                }
                body
            }
            LineKind::Asm => format!(
                "{:>8x}:      {}",
                l.address.map_or(0, |a| a.0),
                sanitize(&l.text)
            ),
        };
        let row = format!("{marker}{:>8.2} : {body}", l.share);
        let row = trim_end(&row);
        if opts.color && l.hot {
            let style = if l.hottest { "\x1b[1;31m" } else { "\x1b[31m" };
            writeln!(w, "{style}{row}\x1b[0m")?;
        } else {
            writeln!(w, "{row}")?;
        }
    }
    Ok(())
}
