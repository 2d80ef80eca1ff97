//! The locks screens: the locks table (`L`), and a lock's screen, its waiters' tree above its holders' (the
//! focused one drawn with its selection).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::{pct, time, tree_label, Theme};
use crate::tui::app::{App, LockSort, LockView, LocksView, Side, TreeView};

pub(super) fn draw_locks(
    frame: &mut Frame<'_>,
    area: Rect,
    app: &App,
    view: &LocksView,
    theme: Theme,
) {
    let [title_area, table_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    let title = Line::from(vec![
        Span::styled("locks waited for", theme.title()),
        Span::raw(format!(
            "  {} {}  (Enter: its waiters and holders)",
            app.lock_rows.len(),
            if app.lock_rows.len() == 1 {
                "lock"
            } else {
                "locks"
            }
        )),
    ]);
    frame.render_widget(Paragraph::new(title), title_area);
    if app.lock_rows.is_empty() {
        let text = if !(app.ended || app.status.samples > 0) {
            "waiting for samples..."
        } else if app.limit.is_some() {
            "no lock wait matches the limit"
        } else if app.ended {
            "no contended lock wait was recorded"
        } else {
            "no contended lock wait yet (a wait counts once it ends)"
        };
        frame.render_widget(
            Paragraph::new(vec![Line::from(""), Line::from(text)]),
            table_area,
        );
        return;
    }
    let column = |c: LockSort, name: &str| {
        let star = if app.lock_sort == c { "*" } else { "" };
        Cell::from(format!("{name}{star}"))
    };
    let header = Row::new(vec![
        column(LockSort::Wait, "   Wait"),
        column(LockSort::Waits, "  Waits"),
        column(LockSort::Longest, "Longest"),
        column(LockSort::Threads, "Threads"),
        column(LockSort::Caused, " Caused"),
        column(LockSort::Lock, "Lock"),
    ])
    .style(theme.title());
    let visible = usize::from(table_area.height.saturating_sub(1)).max(1);
    let first = view.selected.saturating_sub(visible - 1);
    let rows = app.lock_rows.iter().skip(first).take(visible).map(|r| {
        Row::new(vec![
            Cell::from(format!("{:>7}", time(r.delay))),
            Cell::from(format!("{:>7}", r.contentions)),
            Cell::from(format!("{:>7}", time(r.longest))),
            Cell::from(format!("{:>7}", r.threads)),
            Cell::from(format!("{:>7}", time(r.caused_delay))),
            Cell::from(r.name.clone()),
        ])
    });
    let widths = [
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Fill(1),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .row_highlight_style(theme.selected());
    let mut state = TableState::default().with_selected(Some(view.selected - first));
    frame.render_stateful_widget(table, table_area, &mut state);
}

/// A lock's screen: a title with the lock's figures, then the waiters' tree above the holders'.
pub(super) fn draw_lock(
    frame: &mut Frame<'_>,
    area: Rect,
    app: &App,
    view: &LockView,
    theme: Theme,
) {
    let [title_area, waiters_area, holders_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Fill(1),
    ])
    .areas(area);
    let mut title = vec![Span::styled(format!("lock {}", view.name), theme.title())];
    if let Some(r) = app.lock_row(view.lock) {
        title.push(Span::raw(format!(
            "  {} waits  {}  longest {}  {} threads",
            r.contentions,
            time(r.delay),
            time(r.longest),
            r.threads
        )));
    }
    frame.render_widget(Paragraph::new(Line::from(title)), title_area);
    for (side, pane) in [(Side::Waiters, waiters_area), (Side::Holders, holders_area)] {
        draw_lock_pane(
            frame,
            pane,
            view.tree(side),
            side,
            view.focus == side,
            theme,
        );
    }
}

fn draw_lock_pane(
    frame: &mut Frame<'_>,
    area: Rect,
    tree: &TreeView,
    side: Side,
    focused: bool,
    theme: Theme,
) {
    let what = match side {
        Side::Waiters => "waiters, weighed by their wait",
        Side::Holders => "holders (released it to a waiter), weighed by the wait they caused",
    };
    let marker = if focused { "> " } else { "  " };
    let title = Line::from(vec![
        Span::styled(format!("{marker}{what}"), theme.title()),
        Span::raw(format!("  {}", time(tree.function_weight))),
    ]);
    let [title_area, head_area, rows_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(title), title_area);
    if tree.rows.is_empty() {
        let text = match side {
            Side::Waiters => "  no wait on this lock in the sums shown",
            Side::Holders => "  no release of this lock seen before a wait ended",
        };
        frame.render_widget(Paragraph::new(text), head_area);
        return;
    }
    frame.render_widget(
        Paragraph::new(Line::styled("   share     time  function", theme.title())),
        head_area,
    );
    let rows = tree.rows.iter().map(|r| {
        Row::new(vec![
            Cell::from(pct(r.of_function)).style(theme.hot(r.of_function)),
            Cell::from(format!("{:>8}", time(r.weight))),
            Cell::from(tree_label(r)),
        ])
    });
    let widths = [
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Fill(1),
    ];
    let table = Table::new(rows, widths).row_highlight_style(theme.selected());
    let mut state = TableState::default().with_selected(focused.then_some(tree.selected));
    frame.render_stateful_widget(table, rows_area, &mut state);
}
