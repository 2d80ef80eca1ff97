//! The interleaved view of an annotation: source rows heading the instructions generated for them, per-line
//! totals, and the hot rows (see the parent module for what the shares mean).

use std::collections::BTreeMap;

use super::{
    add, Annotation, CodeSource, Instruction, LineKind, SourceShare, ViewLine, HOT_PERCENT,
};
use crate::profile::query::{percent, Weight};

/// The source position an instruction is shown under: its innermost frame with a file and line.
fn source_of(ins: &Instruction) -> Option<(&str, u32, &str)> {
    ins.frames
        .iter()
        .find_map(|f| Some((f.file.as_deref()?, f.line, f.function.as_str())).filter(|s| s.1 > 0))
}

/// Interleaves source rows with the instructions, sums per source line, marks the hot rows.
pub(super) fn build_view(a: &mut Annotation, code: &mut dyn CodeSource) {
    let mut lines: Vec<ViewLine> = Vec::new();
    let mut per_line: BTreeMap<(String, u32), Weight> = BTreeMap::new();
    let mut current: Option<(String, u32, String)> = None;
    let mut heading: Option<usize> = None;
    for (i, ins) in a.instructions.iter().enumerate() {
        if let Some((file, line, function)) = source_of(ins) {
            add(
                per_line.entry((file.to_owned(), line)).or_default(),
                ins.weight.count,
                ins.weight.period,
            );
            let same = current
                .as_ref()
                .is_some_and(|(f, l, func)| f == file && *l == line && func == function);
            if !same {
                current = Some((file.to_owned(), line, function.to_owned()));
                heading = Some(lines.len());
                lines.push(ViewLine {
                    kind: LineKind::Source,
                    address: None,
                    instruction: None,
                    file: Some(file.to_owned()),
                    line,
                    inlined_from: (function != a.function).then(|| function.to_owned()),
                    text: source_text(code, file, line).unwrap_or_default(),
                    weight: Weight::default(),
                    share: 0.0,
                    hot: false,
                    hottest: false,
                });
            }
        }
        if let Some(h) = heading {
            add(&mut lines[h].weight, ins.weight.count, ins.weight.period);
        }
        lines.push(ViewLine {
            kind: LineKind::Asm,
            address: Some(ins.address),
            instruction: Some(i),
            file: None,
            line: 0,
            inlined_from: None,
            text: ins.text.clone(),
            weight: ins.weight,
            share: ins.share,
            hot: false,
            hottest: false,
        });
    }
    let total = a.samples.period;
    for l in &mut lines {
        l.share = percent(l.weight.period, total);
    }
    let hottest_of = |kind: LineKind, lines: &[ViewLine]| {
        lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.kind == kind && l.weight.period > 0)
            // First of equals: the earliest row wins ties.
            .fold(None, |best: Option<(usize, u64)>, (i, l)| match best {
                Some((_, p)) if p >= l.weight.period => best,
                _ => Some((i, l.weight.period)),
            })
            .map(|(i, _)| i)
    };
    a.hottest = hottest_of(LineKind::Asm, &lines);
    a.hottest_source = hottest_of(LineKind::Source, &lines);
    for i in [a.hottest, a.hottest_source].into_iter().flatten() {
        lines[i].hottest = true;
    }
    for l in &mut lines {
        l.hot = l.hottest || (l.weight.period > 0 && l.share >= HOT_PERCENT);
    }
    a.hot_lines = (0..lines.len()).filter(|&i| lines[i].hot).collect();
    a.lines = lines;
    let mut sources: Vec<SourceShare> = per_line
        .into_iter()
        .map(|((file, line), weight)| SourceShare {
            text: source_text(code, &file, line),
            file,
            line,
            weight,
            share: percent(weight.period, total),
        })
        .collect();
    sources.sort_by(|x, y| {
        y.weight
            .period
            .cmp(&x.weight.period)
            .then_with(|| (&x.file, x.line).cmp(&(&y.file, y.line)))
    });
    a.sources = sources;
}

fn source_text(code: &mut dyn CodeSource, file: &str, line: u32) -> Option<String> {
    let lines = code.source(file)?;
    lines.get((line as usize).checked_sub(1)?).cloned()
}
