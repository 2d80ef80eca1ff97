//! Drawing: reads the `App`, never changes it. Three header lines (then a warning about the stacks, the view
//! with the totals of each kind when the session has off-CPU time or lock waits, and the lock totals when it
//! records locks), the open screen (table, tree, annotate, the locks table or a lock's trees; in a view of
//! time, with the times beside the percentages), a footer with the prompt, a message (on as many lines as it
//! needs) or key hints, and the help overlay on top. Colours are limited to bold, reverse and red, which read
//! on dark and light themes; with `NO_COLOR`, only bold and reverse.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState};
use ratatui::Frame;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::app::{note, AnnotateView, App, Prompt, Screen, SortColumn, TreeView};
use super::input::HELP;
use crate::annotate::{LineKind, HOT_PERCENT};
use crate::profile::query::Direction;
use crate::profile::Weigh;
use crate::render::text::sanitize_message;

mod locks;

/// Styling choices; `color: false` for `NO_COLOR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// `NO_COLOR` set (to anything non-empty) turns colour off.
    pub fn from_env() -> Theme {
        Theme {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    fn hot(self, percent: f64) -> Style {
        if percent >= HOT_PERCENT {
            let s = Style::default().add_modifier(Modifier::BOLD);
            if self.color {
                s.fg(Color::Red)
            } else {
                s
            }
        } else {
            Style::default()
        }
    }

    fn selected(self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    fn title(self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
}

/// Rows of the body available for the table on a terminal of `width` x `height` (the event loop sets
/// `App::page`): what the header and footer of [`draw`] leave, less the table's title and column lines.
pub fn page_rows(app: &App, width: u16, height: u16) -> usize {
    let (header, footer) = frame_heights(app, width, height);
    usize::from(height.saturating_sub(header + footer + 2)).max(1)
}

/// The header's and the footer's heights: three header lines (one more with a stack warning, one more for
/// the view with off-CPU time or lock waits, one more for the lock totals); a footer as tall as its message
/// needs, leaving the header and a body row.
fn frame_heights(app: &App, width: u16, height: u16) -> (u16, u16) {
    let locks = app.locks_available();
    let header = 3
        + u16::from(app.status.unwind_warning.is_some())
        + u16::from(app.off_cpu_available() || locks)
        + u16::from(locks);
    let lines = footer_lines(app, width, Theme { color: false }).len();
    let footer = u16::try_from(lines)
        .unwrap_or(u16::MAX)
        .clamp(1, height.saturating_sub(header + 1).max(1));
    (header, footer)
}

pub fn draw(frame: &mut Frame<'_>, app: &App, theme: Theme) {
    let area = frame.area();
    let (header_lines, footer_height) = frame_heights(app, area.width, area.height);
    let footer_lines = footer_lines(app, area.width, theme);
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(header_lines),
        Constraint::Min(1),
        Constraint::Length(footer_height),
    ])
    .areas(frame.area());
    draw_header(frame, header, app, theme);
    match app.screens.last() {
        None => draw_table(frame, body, app, theme),
        Some(Screen::Tree(tree)) => draw_tree(frame, body, tree, app.view(), theme),
        Some(Screen::Annotate(view)) => draw_annotate(frame, body, view, app.view(), theme),
        Some(Screen::Locks(view)) => locks::draw_locks(frame, body, app, view, theme),
        Some(Screen::Lock(view)) => locks::draw_lock(frame, body, app, view, theme),
    }
    frame.render_widget(Paragraph::new(footer_lines), footer);
    if app.help {
        draw_help(frame, frame.area(), theme);
    }
}

fn draw_header(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let s = &app.status;
    let mode = if app.cumulative_mode() {
        "cumulative"
    } else {
        "decaying"
    };
    let first = vec![
        Span::styled("stacktop top", theme.title()),
        Span::raw(format!(
            "  {} {} Hz  unwind {}  {}",
            s.event, s.frequency, s.call_graph, s.target
        )),
    ];
    let second = format!(
        "{:.0} samples/s  {} samples  lost {}  throttled {}  own CPU {:.1}%",
        s.samples_per_sec, s.samples, s.lost, s.throttled, s.cpu_percent
    );
    let mut third = vec![Span::raw(format!("[{mode}]"))];
    if let Some(ended) = &s.ended {
        third.push(Span::styled(format!(" ENDED ({ended})"), theme.title()));
    }
    if app.paused {
        third.push(Span::styled(" PAUSED", theme.title()));
    }
    let mut rest = format!("  sort: {}", app.sort.name());
    if let Some(f) = &app.symbol_filter {
        rest.push_str(&format!("  filter: {}", crate::render::sanitize(f)));
    }
    match &app.limit {
        Some(super::app::Limit::Comm(c)) => {
            rest.push_str(&format!("  thread: {}", crate::render::sanitize(c)))
        }
        Some(super::app::Limit::Process(p)) => {
            rest.push_str(&format!("  process: {}", crate::render::sanitize(p)))
        }
        Some(super::app::Limit::Pid(p)) => rest.push_str(&format!("  pid: {p}")),
        Some(super::app::Limit::Tid(t)) => rest.push_str(&format!("  tid: {t}")),
        None => {}
    }
    if let Some(m) = &app.module_limit {
        rest.push_str(&format!(
            "  module: {}",
            crate::render::sanitize(crate::render::text::short_module(m))
        ));
    }
    if app.hide_kernel {
        rest.push_str("  kernel hidden");
    }
    // Last, as the longest: the launched command's output file.
    if let Some(out) = &s.output_file {
        rest.push_str(&format!("  output: {}", crate::render::sanitize(out)));
    }
    third.push(Span::raw(rest));
    let mut lines = vec![Line::from(first), Line::from(second), Line::from(third)];
    if let Some(warning) = &s.unwind_warning {
        lines.push(Line::from(Span::styled(
            format!("warning: {warning}"),
            theme.hot(100.0),
        )));
    }
    if app.off_cpu_available() || app.locks_available() {
        lines.push(view_line(app, theme));
    }
    if app.locks_available() {
        let t = app.totals;
        lines.push(Line::from(vec![
            Span::styled("locks:", theme.title()),
            Span::raw(format!(
                " {} waits  {} waited  {} caused by holders  (L: locks)",
                t.contentions,
                time(t.delay),
                time(t.caused_delay)
            )),
        ]));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

/// `view: off-cpu  cpu 1.20 s  blocked 800 ms  runnable 220 ms  (w: next view)`: what the screens weigh and
/// the totals of each kind in the sums shown (CPU as time when its period is, else as samples; off-CPU time
/// when the session has some).
fn view_line(app: &App, theme: Theme) -> Line<'static> {
    let t = app.totals;
    let cpu = if app.meta().period_unit == "nanoseconds" {
        time(t.period)
    } else {
        format!("{} samples", t.count)
    };
    let mut rest = format!("  cpu {cpu}");
    if app.off_cpu_available() {
        rest.push_str(&format!(
            "  blocked {}  runnable {}",
            time(t.blocked),
            time(t.runnable)
        ));
    }
    rest.push_str("  (w: next view)");
    Line::from(vec![
        Span::styled(format!("view: {}", app.view()), theme.title()),
        Span::raw(rest),
    ])
}

/// Nanoseconds in at most 7 columns: `0.25 ms`, `12.5 ms`, `812 ms`, `1.23 s`, `12.3 s`, `123 s`.
pub fn time(nanos: u64) -> String {
    let ms = nanos as f64 / 1e6;
    let s = nanos as f64 / 1e9;
    if ms < 9.995 {
        format!("{ms:.2} ms")
    } else if ms < 99.95 {
        format!("{ms:.1} ms")
    } else if ms < 999.5 {
        format!("{ms:.0} ms")
    } else if s < 9.995 {
        format!("{s:.2} s")
    } else if s < 99.95 {
        format!("{s:.1} s")
    } else {
        format!("{s:.0} s")
    }
}

fn pct(p: f64) -> String {
    format!("{p:6.2}%")
}

fn draw_table(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let arrow = |c: SortColumn, name: &'static str| {
        if app.sort == c {
            format!("{name}*")
        } else {
            name.to_owned()
        }
    };
    // A view of time has each percentage followed by its time.
    let timed = app.view().is_time();
    let mut header = vec![Cell::from(arrow(SortColumn::SelfPct, "   Self"))];
    if timed {
        header.push(Cell::from("   time"));
    }
    header.push(Cell::from(arrow(SortColumn::Total, "  Total")));
    if timed {
        header.push(Cell::from("   time"));
    }
    header.extend([
        Cell::from(arrow(SortColumn::Command, "Command")),
        Cell::from(arrow(SortColumn::Module, "Module")),
        Cell::from(arrow(SortColumn::Symbol, "Symbol")),
    ]);
    let header = Row::new(header).style(theme.title());
    // Only the rows on screen are built: under `-a` the table can hold thousands. The window is the one
    // ratatui would scroll to from the top (the selected row last when it is below the first page).
    let visible = usize::from(area.height.saturating_sub(1)).max(1);
    let first = app.selected.saturating_sub(visible - 1);
    let rows = app.rows.iter().skip(first).take(visible).map(|r| {
        let symbol = if r.kernel {
            format!("[k] {}", r.symbol)
        } else {
            format!("[.] {}", r.symbol)
        };
        let mut cells = vec![Cell::from(pct(r.self_pct)).style(theme.hot(r.self_pct))];
        if timed {
            cells.push(Cell::from(format!("{:>7}", time(r.self_weight))));
        }
        cells.push(Cell::from(pct(r.total_pct)));
        if timed {
            cells.push(Cell::from(format!("{:>7}", time(r.total_weight))));
        }
        cells.extend([
            Cell::from(r.comm.clone()),
            Cell::from(r.module.clone()),
            Cell::from(symbol),
        ]);
        Row::new(cells)
    });
    // Wider terminals give the names more room; the symbol takes what is left (in a view of time, the
    // times take theirs from the command and the module).
    let wide = area.width >= 120;
    let mut widths = vec![Constraint::Length(8)];
    if timed {
        widths.push(Constraint::Length(7));
    }
    widths.push(Constraint::Length(8));
    if timed {
        widths.push(Constraint::Length(7));
    }
    widths.extend(match (wide, timed) {
        (true, _) => [Constraint::Length(16), Constraint::Length(24)],
        (false, false) => [Constraint::Length(10), Constraint::Length(17)],
        (false, true) => [Constraint::Length(9), Constraint::Length(11)],
    });
    widths.push(Constraint::Fill(1));
    let table = Table::new(rows, widths)
        .header(header)
        .row_highlight_style(theme.selected());
    let mut state =
        TableState::default().with_selected((!app.rows.is_empty()).then_some(app.selected - first));
    if app.rows.is_empty() {
        let text = if !(app.ended || app.status.samples > 0) {
            "waiting for samples..."
        } else if app.view().is_lock() {
            "no lock wait matches"
        } else if timed && app.sort == SortColumn::SelfPct {
            // Off CPU, the innermost frame of a switch-out is the scheduler's: a function that waited has
            // total time, not self time.
            "no off-CPU time matches as self time (off CPU that is mostly the scheduler's): s sorts by total"
        } else if timed {
            "no off-CPU time matches"
        } else {
            "no samples match"
        };
        frame.render_widget(Paragraph::new(vec![Line::from(""), Line::from(text)]), area);
        return;
    }
    frame.render_stateful_widget(table, area, &mut state);
}

/// A tree row's function, indented by its depth, with its expand marker and module.
fn tree_label(r: &super::app::TreeRow) -> String {
    let marker = match (r.has_children, r.expanded) {
        (false, _) => "  ",
        (true, true) => "- ",
        (true, false) => "+ ",
    };
    format!("{}{marker}{}  {}", "  ".repeat(r.depth), r.symbol, r.module)
}

fn draw_tree(frame: &mut Frame<'_>, area: Rect, tree: &TreeView, weigh: Weigh, theme: Theme) {
    let way = match tree.direction {
        Direction::Callers => "callers of",
        Direction::Callees => "callees of",
    };
    let title = Line::from(vec![
        Span::styled(
            format!(
                "{way} {} ({})",
                crate::render::sanitize(&tree.func.name),
                crate::render::sanitize(crate::render::text::short_module(&tree.func.module))
            ),
            theme.title(),
        ),
        Span::raw(if weigh.is_time() {
            format!(
                "  {:.2}% of all {weigh} time, {}",
                tree.function_pct,
                time(tree.function_weight)
            )
        } else {
            format!("  {:.2}% of all samples", tree.function_pct)
        }),
    ]);
    let [title_area, head_area, rows_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(title), title_area);
    let timed = weigh.is_time();
    let head = if timed {
        " of func   of all     time  function"
    } else {
        " of func   of all  function"
    };
    frame.render_widget(Paragraph::new(Line::styled(head, theme.title())), head_area);
    let rows = tree.rows.iter().map(|r| {
        let mut cells = vec![
            Cell::from(pct(r.of_function)).style(theme.hot(r.of_function)),
            Cell::from(pct(r.of_all)),
        ];
        if timed {
            cells.push(Cell::from(format!("{:>8}", time(r.weight))));
        }
        cells.push(Cell::from(tree_label(r)));
        Row::new(cells)
    });
    let mut widths = vec![Constraint::Length(8), Constraint::Length(8)];
    if timed {
        widths.push(Constraint::Length(8));
    }
    widths.push(Constraint::Fill(1));
    let table = Table::new(rows, widths).row_highlight_style(theme.selected());
    let mut state =
        TableState::default().with_selected((!tree.rows.is_empty()).then_some(tree.selected));
    if tree.rows.is_empty() {
        frame.render_widget(Paragraph::new("no samples of this function"), rows_area);
    } else {
        frame.render_stateful_widget(table, rows_area, &mut state);
    }
}

fn draw_annotate(
    frame: &mut Frame<'_>,
    area: Rect,
    view: &AnnotateView,
    weigh: Weigh,
    theme: Theme,
) {
    let [title_area, rows_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    let mut title = format!(
        "annotate {} ({})",
        crate::render::sanitize(&view.func.name),
        crate::render::sanitize(crate::render::text::short_module(&view.func.module))
    );
    // The shares are of the view's weight; CPU, the default, goes unsaid.
    if weigh.is_time() {
        title.push_str(&format!("  shares of {weigh} time"));
    }
    frame.render_widget(
        Paragraph::new(Line::styled(title, theme.title())),
        title_area,
    );
    let annotation = match &view.result {
        None => {
            frame.render_widget(Paragraph::new("annotating..."), rows_area);
            return;
        }
        Some(Err(message)) => {
            // Why the function cannot be annotated, often with a long path: all of it, over as many lines as
            // it needs.
            let lines = wrap(&sanitize_message(message), rows_area.width);
            frame.render_widget(Paragraph::new(lines.join("\n")), rows_area);
            return;
        }
        Some(Ok(a)) => a,
    };
    let mut rows_area = rows_area;
    if let Some(note) = &note(annotation) {
        let lines = wrap(&sanitize_message(note), rows_area.width);
        let [note_area, rest] = Layout::vertical([
            Constraint::Length(u16::try_from(lines.len()).unwrap_or(u16::MAX)),
            Constraint::Min(1),
        ])
        .areas(rows_area);
        frame.render_widget(Paragraph::new(lines.join("\n")), note_area);
        rows_area = rest;
    }
    let rows = annotation.lines.iter().map(|l| {
        let share = if l.share > 0.0 {
            pct(l.share)
        } else {
            String::new()
        };
        let text = crate::render::sanitize(&l.text);
        let body = match (l.kind, l.address, &l.inlined_from) {
            (LineKind::Asm, Some(a), _) => format!("   {:>8x}:  {text}", a.0),
            (LineKind::Source, _, Some(f)) => {
                format!(
                    "{:>5}  {text}  [inlined {}]",
                    l.line,
                    crate::render::sanitize(f)
                )
            }
            _ => format!("{:>5}  {text}", l.line),
        };
        Row::new(vec![Cell::from(share), Cell::from(body)]).style(theme.hot(l.share))
    });
    let table = Table::new(rows, [Constraint::Length(8), Constraint::Fill(1)])
        .row_highlight_style(theme.selected());
    let mut state = TableState::default()
        .with_selected((!annotation.lines.is_empty()).then_some(view.selected));
    frame.render_stateful_widget(table, rows_area, &mut state);
}

/// The footer: the prompt being typed, else the message (wrapped to the screen's width: a message says why
/// something did not happen and must be read whole), else the key hints of the screen.
fn footer_lines(app: &App, width: u16, theme: Theme) -> Vec<Line<'static>> {
    if let Some((kind, text)) = &app.prompt {
        let label = match kind {
            Prompt::Filter => "filter symbols (regex or text, empty: all): ",
            Prompt::Limit => "limit to a thread or process name, pid or tid (empty: all): ",
        };
        return vec![Line::from(vec![
            Span::styled(label, theme.title()),
            Span::raw(crate::render::sanitize(text).into_owned()),
        ])];
    }
    if let Some(message) = &app.message {
        return wrap(&sanitize_message(message), width)
            .into_iter()
            .map(Line::from)
            .collect();
    }
    let hints = match app.screens.last() {
        None if app.locks_available() => {
            "Enter callers  a annotate  L locks  / filter  s sort  ? all keys  q quit"
        }
        None => "Enter callers  a annotate  / filter  s sort  space pause  ? all keys  q quit",
        Some(Screen::Tree(_)) => {
            "Enter/Right expand  Left collapse  c callers<->callees  Esc back  ? keys"
        }
        Some(Screen::Annotate(_)) => "n next hot line  Up/Down move  Esc back  ? keys  q quit",
        Some(Screen::Locks(_)) => "Enter waiters and holders  s sort  Esc back  ? keys  q quit",
        Some(Screen::Lock(_)) => {
            "Tab waiters<->holders  Enter/Right expand  Left collapse  Esc back  ? keys"
        }
    };
    vec![Line::from(hints)]
}

/// `text` in lines of at most `width` columns, broken at spaces, and inside a word (a long path) only when the
/// word alone is wider than a line.
fn wrap(text: &str, width: u16) -> Vec<String> {
    let width = usize::from(width).max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut used = 0;
    for word in text.split_whitespace() {
        let w = word.width();
        if used > 0 && used + 1 + w <= width {
            line.push(' ');
            line.push_str(word);
            used += 1 + w;
            continue;
        }
        if used > 0 {
            lines.push(std::mem::take(&mut line));
            used = 0;
        }
        for c in word.chars() {
            let w = c.width().unwrap_or(0);
            if used > 0 && used + w > width {
                lines.push(std::mem::take(&mut line));
                used = 0;
            }
            line.push(c);
            used += w;
        }
    }
    if used > 0 || lines.is_empty() {
        lines.push(line);
    }
    lines
}

fn draw_help(frame: &mut Frame<'_>, area: Rect, theme: Theme) {
    let height = (HELP.len() as u16 + 2).min(area.height);
    let width = 70.min(area.width);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let lines: Vec<Line<'_>> = HELP
        .iter()
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(format!(" {key:<12}"), theme.title()),
                Span::raw(format!(" {what}")),
            ])
        })
        .collect();
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" keys (any key closes) "),
        ),
        popup,
    );
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrap_breaks_at_spaces_and_cuts_only_words_wider_than_a_line() {
        assert_eq!(
            wrap("cannot annotate foo: no symbol", 16),
            ["cannot annotate", "foo: no symbol"]
        );
        assert_eq!(
            wrap("in /usr/lib/libfoo.so.6 now", 10),
            ["in", "/usr/lib/l", "ibfoo.so.6", "now"]
        );
        // Wide characters count two columns.
        assert_eq!(wrap("日本語 ab", 6), ["日本語", "ab"]);
        assert_eq!(wrap("日本語", 5), ["日本", "語"]);
        assert_eq!(wrap("", 10), [""]);
        assert_eq!(wrap("abc", 0), ["a", "b", "c"]);
    }
}
