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
    if profile.weighed.as_ref().is_some_and(|v| v.by.is_time()) {
        // The addresses of a time view are where the threads were when they left the CPU (the return
        // addresses of the calls that waited, for the callers' frames).
        writeln!(
            w,
            "# Self time: {} ms ({:.2}% of all) in {} {}; percents are shares of {name}'s time",
            super::text::ms(a.samples.period),
            a.percent_of_all(),
            a.samples.count,
            profile
                .weighed
                .as_ref()
                .map_or("samples", |v| v.by.count_noun()),
        )?;
    } else {
        writeln!(
            w,
            "# Self samples: {} ({:.2}% of all), event count {}; percents are shares of {name}'s event count",
            a.samples.count,
            a.percent_of_all(),
            a.samples.period
        )?;
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::addr::Svma;
    use crate::annotate::{SourceShare, ViewLine};
    use crate::profile::query::Weight;
    use crate::profile::Meta;

    fn row(kind: LineKind, address: Option<u64>, text: &str, count: u64) -> ViewLine {
        ViewLine {
            kind,
            address: address.map(Svma),
            instruction: None,
            file: (kind == LineKind::Source).then(|| "/src/hot.c".to_owned()),
            line: if kind == LineKind::Source { 11 } else { 0 },
            inlined_from: None,
            text: text.to_owned(),
            weight: Weight {
                count,
                period: count,
            },
            share: count as f64 * 10.0,
            hot: count > 0,
            hottest: count >= 6,
        }
    }

    #[test]
    fn text_layout() {
        let profile = Profile::new(Meta {
            event: "cpu-clock".to_owned(),
            frequency: 999,
            call_graph: "fp".to_owned(),
            ..Meta::default()
        });
        let mut src = row(LineKind::Source, None, "x = x * K;\x1b[2J", 10);
        src.inlined_from = Some("mix".to_owned());
        let a = Annotation {
            function: "hot".to_owned(),
            module: "/bin/app".to_owned(),
            build_id: Some("abcd".to_owned()),
            opened: "/bin/app".to_owned(),
            debug_info: DebugInfo::Embedded,
            start: Svma(0x1000),
            size: 8,
            samples: Weight {
                count: 10,
                period: 10,
            },
            total: Weight {
                count: 20,
                period: 20,
            },
            outside: Weight::default(),
            instructions: Vec::new(),
            sources: vec![SourceShare {
                file: "/src/hot.c".to_owned(),
                line: 11,
                text: None,
                weight: Weight {
                    count: 10,
                    period: 10,
                },
                share: 100.0,
            }],
            lines: vec![
                src,
                row(LineKind::Asm, Some(0x1000), "imul   %rcx,%rax", 0),
                row(LineKind::Asm, Some(0x1004), "add    $0x1,%rdx", 7),
                row(LineKind::Asm, Some(0x1008), "cmp    %rdi,%rdx", 3),
            ],
            hot_lines: vec![0, 2, 3],
            hottest: Some(2),
            hottest_source: Some(0),
            notes: vec!["a note".to_owned()],
        };
        let mut out = Vec::new();
        let opts = AnnotateOptions {
            color: false,
            summary_lines: 10,
        };
        write_annotation(&mut out, &profile, &a, &opts).unwrap();
        let text = String::from_utf8(out).unwrap();
        let body: Vec<&str> = text.lines().skip_while(|l| l.starts_with('#')).collect();
        let rule = "-".repeat(59);
        assert_eq!(
            body,
            [
                "   Percent | Source code & Disassembly of hot (AT&T syntax)",
                rule.as_str(),
                ">>  100.00 : hot.c:11       x = x * K;\\x1b[2J   [inlined mix]",
                "      0.00 :     1000:      imul   %rcx,%rax",
                ">>   70.00 :     1004:      add    $0x1,%rdx",
                ">    30.00 :     1008:      cmp    %rdi,%rdx",
            ]
        );
        assert!(text.contains("# Annotate: hot in /bin/app (build-id abcd)\n"));
        assert!(text.contains("# Self samples: 10 (50.00% of all), event count 10;"));
        assert!(text.contains("# Note: a note\n"));
        assert!(text.contains("#   100.00%  /src/hot.c:11\n"));
    }
}
