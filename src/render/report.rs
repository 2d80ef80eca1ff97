//! The `perf report --stdio` shaped report: a `#` header stating what was recorded, a column header, then one
//! line per entry (hottest first, ties by name) with its call graph beneath.
//!
//! ```text
//! # Children      Self  Command  Shared Object  Symbol
//! # ........  ........  .......  .............  ......
//! #
//!     99.92%     0.00%  t        t              [.] main
//! ```

use std::io::{self, Write};

use crate::profile::query::{
    percent, top_functions, EntryGraphs, Filter, GraphMode, GraphOptions, RowKey, SortKey, TopRow,
    Weight,
};
use crate::profile::Profile;

use super::graph::write_entry_graph;
use super::text::{ms, sanitize, short_module, write_header, write_threads};

/// What `stacktop report` prints (not the callers/callees trees: see `calltree`).
#[derive(Clone, Debug, PartialEq)]
pub struct ReportOptions {
    /// perf's `--children` (default): a Children column, entries sorted by it, graphs from the entry down.
    pub children: bool,
    /// `-n`: a Samples column (the entry's self sample count, as perf shows it).
    pub show_samples: bool,
    /// `--sort`: the columns that make an entry (default `comm,dso,sym`).
    pub sort: Vec<SortKey>,
    /// `-g`: how each entry's call graph is drawn.
    pub graph: GraphOptions,
    /// `--pid/--tid/--comm`, `--percent-limit`, hidden kernel frames, modules.
    pub filter: Filter,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            children: true,
            show_samples: false,
            sort: SortKey::DEFAULT.to_vec(),
            graph: GraphOptions::default(),
            filter: Filter::default(),
        }
    }
}

/// One entry's column texts, computed once so widths can be measured.
struct Cells {
    keys: Vec<String>,
}

fn key_cells(profile: &Profile, sort: &[SortKey], key: &RowKey) -> Cells {
    let mut keys = Vec::new();
    for k in sort {
        let text = match k {
            SortKey::Comm => key
                .comm
                .map_or(String::new(), |c| sanitize(profile.str(c)).into_owned()),
            SortKey::Pid => key.pid.map_or(String::new(), |p| p.to_string()),
            SortKey::Tid => key.tid.map_or(String::new(), |t| t.to_string()),
            SortKey::Dso => key.dso.map_or(String::new(), |m| {
                sanitize(short_module(profile.module_name(&m))).into_owned()
            }),
            SortKey::Sym => key.sym.map_or(String::new(), |s| {
                let mark = if s.module.kernel { "[k]" } else { "[.]" };
                format!("{mark} {}", sanitize(profile.func_name(&s)))
            }),
        };
        keys.push(text);
    }
    Cells { keys }
}

fn key_title(k: SortKey) -> &'static str {
    match k {
        SortKey::Comm => "Command",
        SortKey::Pid => "Pid",
        SortKey::Tid => "Tid",
        SortKey::Dso => "Shared Object",
        SortKey::Sym => "Symbol",
    }
}

/// Numbers right-aligned, text left-aligned, as perf does.
fn key_right_aligned(k: SortKey) -> bool {
    matches!(k, SortKey::Pid | SortKey::Tid)
}

/// Writes the report. Percentages are of the samples that pass `opts.filter`.
pub fn write_report(w: &mut impl Write, profile: &Profile, opts: &ReportOptions) -> io::Result<()> {
    let sort: Vec<SortKey> = if opts.sort.is_empty() {
        SortKey::DEFAULT.to_vec()
    } else {
        opts.sort.clone()
    };
    let top = top_functions(profile, &opts.filter, &sort, opts.children);
    let total = top.total;
    write_header(w, profile, total)?;
    if sort.contains(&SortKey::Tid) {
        write_threads(w, profile)?;
    }
    let time = profile.weighed.as_ref().is_some_and(|v| v.by.is_time());

    let cells: Vec<Cells> = top
        .rows
        .iter()
        .map(|r| key_cells(profile, &sort, &r.key))
        .collect();
    // Columns: (title, width, right-aligned). The first is printed after "# " or two spaces.
    let mut columns: Vec<(&str, usize, bool)> = Vec::new();
    if opts.children {
        columns.push(("Children", 8, true));
    }
    columns.push(("Self", 8, true));
    // A time view states the entry's time (its Children, else its Self) as well.
    let time_width = top
        .rows
        .iter()
        .map(|r| ms(primary(opts, r).period).len())
        .max()
        .unwrap_or(0)
        .max(7);
    if time {
        columns.push(("Time ms", time_width, true));
    }
    if opts.show_samples {
        columns.push(("Samples", 12, true));
    }
    for (i, k) in sort.iter().enumerate() {
        let width = cells
            .iter()
            .map(|c| c.keys[i].chars().count())
            .max()
            .unwrap_or(0);
        columns.push((
            key_title(*k),
            width.max(key_title(*k).len()),
            key_right_aligned(*k),
        ));
    }
    let last = columns.len() - 1;
    let header: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (title, width, right))| pad(title, *width, *right, i == last))
        .collect();
    writeln!(w, "# {}", header.join("  "))?;
    let dots: Vec<String> = columns
        .iter()
        .map(|(_, width, _)| ".".repeat(*width))
        .collect();
    writeln!(w, "# {}", dots.join("  "))?;
    writeln!(w, "#")?;

    let mut graph = GraphOptions {
        order: Some(opts.graph.order(opts.children)),
        ..opts.graph
    };
    // As in perf, `--percent-limit` also hides call graph branches under that percentage.
    if opts.filter.percent_limit > 0.0 {
        graph.threshold = opts.filter.percent_limit;
    }
    // Each entry's graph is built when it is drawn and dropped after, so only one is held at a time.
    let mut graphs = (graph.mode != GraphMode::None).then(|| {
        let keys: Vec<RowKey> = top.rows.iter().map(|r| r.key).collect();
        EntryGraphs::new(profile, &opts.filter, &sort, &keys, opts.children, &graph)
    });
    for (i, (row, cells)) in top.rows.iter().zip(&cells).enumerate() {
        write_row(w, opts, &columns, row, cells, total.period, time)?;
        if let Some(graphs) = &mut graphs {
            let entry = if opts.children { row.total } else { row.self_ };
            write_entry_graph(w, profile, &graphs.tree(i), entry, total, &graph)?;
        }
    }
    if let Some(other) = top.other {
        let mut texts = Vec::new();
        if opts.children {
            texts.push(String::new());
        }
        texts.push(format!("{:.2}%", percent(other.period, total.period)));
        if time {
            texts.push(ms(other.period));
        }
        if opts.show_samples {
            texts.push(other.count.to_string());
        }
        texts.extend(sort.iter().map(|k| {
            if *k == SortKey::Sym {
                "[other]".to_owned()
            } else {
                String::new()
            }
        }));
        write_cells(w, &columns, &texts)?;
    }
    Ok(())
}

fn write_row(
    w: &mut impl Write,
    opts: &ReportOptions,
    columns: &[(&str, usize, bool)],
    row: &TopRow,
    cells: &Cells,
    total: u64,
    time: bool,
) -> io::Result<()> {
    let mut texts = Vec::new();
    if opts.children {
        texts.push(format!("{:.2}%", percent(row.total.period, total)));
    }
    texts.push(format!("{:.2}%", percent(row.self_.period, total)));
    if time {
        texts.push(ms(primary(opts, row).period));
    }
    if opts.show_samples {
        texts.push(row.self_.count.to_string());
    }
    texts.extend(cells.keys.iter().cloned());
    write_cells(w, columns, &texts)
}

/// The weight the entries are sorted by: Children with `--children`, else Self.
fn primary(opts: &ReportOptions, row: &TopRow) -> Weight {
    if opts.children {
        row.total
    } else {
        row.self_
    }
}

fn write_cells(
    w: &mut impl Write,
    columns: &[(&str, usize, bool)],
    texts: &[String],
) -> io::Result<()> {
    let last = columns.len() - 1;
    let line: Vec<String> = columns
        .iter()
        .zip(texts)
        .enumerate()
        .map(|(i, ((_, width, right), text))| pad(text, *width, *right, i == last))
        .collect();
    writeln!(w, "  {}", line.join("  ").trim_end())
}

fn pad(text: &str, width: usize, right: bool, last: bool) -> String {
    if right {
        format!("{text:>width$}")
    } else if last {
        text.to_owned()
    } else {
        format!("{text:<width$}")
    }
}
