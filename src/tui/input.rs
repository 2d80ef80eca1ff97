//! Keys -> state changes. Nothing here draws or does I/O; the event loop passes each key to `handle_key`.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{hottest_line, App, Prompt, Screen};
use crate::profile::query::Direction;

/// Every key, as the help overlay lists it.
pub const HELP: &[(&str, &str)] = &[
    (
        "Up/Down j/k",
        "move; the selection then follows the function",
    ),
    ("PgUp/PgDn", "move a page"),
    ("Home/End", "top row (kept as rows reorder) / last row"),
    ("Enter", "callers of the function; in a tree: expand"),
    ("Right/Left", "expand / collapse (tree)"),
    ("c", "switch callers <-> callees (tree)"),
    ("a", "annotate the function (n: next hot line)"),
    ("/", "filter symbols (substring or regex)"),
    ("s", "sort by the next column"),
    ("t", "limit to a thread or process name, pid or tid"),
    ("d", "limit to the module of the row (again: all)"),
    ("K", "hide / show kernel frames"),
    ("w", "weigh CPU -> off-CPU -> wall time -> lock wait, hold"),
    ("L", "locks (top --locks); Enter: the waiters and holders"),
    ("Tab", "waiters <-> holders (a lock's screen)"),
    ("z", "decaying <-> cumulative"),
    ("space", "pause / resume"),
    ("Esc", "back"),
    ("?", "this help"),
    ("q Ctrl-C", "quit"),
];

pub fn handle_key(app: &mut App, key: KeyEvent) {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        app.quit = true;
        return;
    }
    if app.prompt.is_some() {
        prompt_key(app, key);
        return;
    }
    app.message = None;
    if app.help {
        // Any key closes the help; q still quits.
        app.help = false;
        if key.code == KeyCode::Char('q') {
            app.quit = true;
        }
        return;
    }
    match key.code {
        KeyCode::Char('q') => app.quit = true,
        KeyCode::Char('?') => app.help = true,
        KeyCode::Char(' ') => {
            let paused = !app.paused;
            app.set_paused(paused);
        }
        KeyCode::Char('z') if !app.ended => {
            app.set_cumulative_mode(!app.cumulative_mode());
            app.refresh();
        }
        KeyCode::Char('w') => app.next_view(),
        KeyCode::Char('L') => app.toggle_locks(),
        KeyCode::Char('K') => {
            app.hide_kernel = !app.hide_kernel;
            app.refresh();
        }
        KeyCode::Char('/') => {
            app.prompt = Some((
                Prompt::Filter,
                app.symbol_filter.clone().unwrap_or_default(),
            ))
        }
        KeyCode::Char('t') => {
            let text = app
                .selected_row()
                .map(|r| r.comm.clone())
                .unwrap_or_default();
            app.prompt = Some((Prompt::Limit, text));
        }
        KeyCode::Esc | KeyCode::Backspace => {
            app.screens.pop();
        }
        _ => match app.screens.last() {
            None => table_key(app, key),
            Some(Screen::Tree(_)) => tree_key(app, key),
            Some(Screen::Annotate(_)) => annotate_key(app, key),
            Some(Screen::Locks(_)) => locks_key(app, key),
            Some(Screen::Lock(_)) => match key.code {
                KeyCode::Tab | KeyCode::BackTab => app.switch_lock_side(),
                _ => tree_key(app, key),
            },
        },
    }
}

/// New position after a movement key, or None when the key is not one.
fn moved(key: KeyCode, at: usize, len: usize, page: usize) -> Option<usize> {
    let last = len.saturating_sub(1);
    Some(match key {
        KeyCode::Up | KeyCode::Char('k') => at.saturating_sub(1),
        KeyCode::Down | KeyCode::Char('j') => (at + 1).min(last),
        KeyCode::PageUp => at.saturating_sub(page.max(1)),
        KeyCode::PageDown => (at + page.max(1)).min(last),
        KeyCode::Home | KeyCode::Char('g') => 0,
        KeyCode::End | KeyCode::Char('G') => last,
        _ => return None,
    })
}

fn table_key(app: &mut App, key: KeyEvent) {
    if let Some(at) = moved(key.code, app.selected, app.rows.len(), app.page) {
        // Home goes back to the top row and keeps it there; any other move picks a function to follow.
        let home = matches!(key.code, KeyCode::Home | KeyCode::Char('g'));
        app.select(at, !home);
        return;
    }
    match key.code {
        KeyCode::Enter | KeyCode::Right => app.open_tree(Direction::Callers),
        KeyCode::Char('a') => {
            if let Some(row) = app.selected_row() {
                let func = row.func.clone();
                app.open_annotate(func);
            }
        }
        KeyCode::Char('s') => {
            app.sort = app.sort.next();
            app.select(0, false);
            app.refresh();
        }
        KeyCode::Char('d') => app.toggle_module_limit(),
        _ => {}
    }
}

fn locks_key(app: &mut App, key: KeyEvent) {
    let Some(Screen::Locks(view)) = app.screens.last() else {
        return;
    };
    if let Some(at) = moved(key.code, view.selected, app.lock_rows.len(), app.page) {
        let home = matches!(key.code, KeyCode::Home | KeyCode::Char('g'));
        app.select_lock(at, !home);
        return;
    }
    match key.code {
        KeyCode::Enter | KeyCode::Right => app.open_lock(),
        KeyCode::Char('s') => app.sort_locks(),
        _ => {}
    }
}

fn tree_key(app: &mut App, key: KeyEvent) {
    let page = app.page;
    let Some(tree) = app.tree_mut() else {
        return;
    };
    let lock = tree.lock.is_some();
    if let Some(at) = moved(key.code, tree.selected, tree.rows.len(), page) {
        tree.selected = at;
        return;
    }
    let Some(row) = tree.rows.get(tree.selected).cloned() else {
        if key.code == KeyCode::Char('c') && !lock {
            switch_direction(app);
        }
        return;
    };
    match key.code {
        KeyCode::Enter | KeyCode::Right | KeyCode::Char('l') => {
            tree.touched = true;
            if row.has_children {
                if key.code == KeyCode::Enter && row.expanded {
                    tree.expanded.remove(&row.path);
                } else {
                    tree.expanded.insert(row.path);
                }
            }
        }
        KeyCode::Left | KeyCode::Char('h') => {
            tree.touched = true;
            if row.expanded {
                tree.expanded.remove(&row.path);
            } else if let Some(parent) = tree.rows[..tree.selected]
                .iter()
                .rposition(|r| r.depth + 1 == row.depth)
            {
                // Already collapsed: go to the parent, as file trees do.
                tree.selected = parent;
            }
        }
        // A lock's trees are its waits' callers; annotate weighs the app's view.
        KeyCode::Char('c') if lock => return,
        KeyCode::Char('a') if lock => {
            app.message = Some(
                "annotate from the function table (w weighs it by lock wait or hold)".to_owned(),
            );
            return;
        }
        KeyCode::Char('c') => return switch_direction(app),
        KeyCode::Char('a') => {
            if row.path.len() == 1 || !row.symbol.starts_with('[') {
                if let Some(func) = row.path.last().cloned() {
                    app.open_annotate(func);
                }
            }
            return;
        }
        _ => return,
    }
    app.refill_tree();
}

fn switch_direction(app: &mut App) {
    if let Some(tree) = app.tree_mut() {
        tree.direction = match tree.direction {
            Direction::Callers => Direction::Callees,
            Direction::Callees => Direction::Callers,
        };
        tree.expanded.retain(|p| p.len() == 1);
        tree.selected = 0;
    }
    app.refill_tree();
}

fn annotate_key(app: &mut App, key: KeyEvent) {
    let page = app.page;
    let Some(Screen::Annotate(view)) = app.screens.last_mut() else {
        return;
    };
    let Some(Ok(annotation)) = &view.result else {
        return;
    };
    let lines = &annotation.lines;
    if let Some(at) = moved(key.code, view.selected, lines.len(), page) {
        view.selected = at;
        return;
    }
    if key.code == KeyCode::Char('n') {
        // Next hot line after the selection, wrapping around (annotate decides which are hot).
        if let Some(i) = annotation
            .next_hot(view.selected)
            .or_else(|| hottest_line(lines))
        {
            view.selected = i;
        }
    }
}

fn prompt_key(app: &mut App, key: KeyEvent) {
    let Some((kind, text)) = app.prompt.as_mut() else {
        return;
    };
    match key.code {
        KeyCode::Esc => app.prompt = None,
        KeyCode::Enter => {
            let (kind, text) = (*kind, text.clone());
            app.prompt = None;
            match kind {
                Prompt::Filter => app.set_symbol_filter(&text),
                Prompt::Limit => app.set_limit(&text),
            }
        }
        KeyCode::Backspace => {
            text.pop();
        }
        // The line editing keys of a shell: Ctrl-U clears the line, Ctrl-W deletes the last word.
        KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => text.clear(),
        KeyCode::Char('w') if key.modifiers.contains(KeyModifiers::CONTROL) => {
            let kept = text.trim_end().len();
            let word = text[..kept].rfind(char::is_whitespace).map_or(0, |i| i + 1);
            text.truncate(word);
        }
        // Other control combinations are not text.
        KeyCode::Char(_) if key.modifiers.contains(KeyModifiers::CONTROL) => {}
        KeyCode::Char(c) => text.push(c),
        _ => {}
    }
}
