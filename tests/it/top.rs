//! `stacktop top`: screens drawn into ratatui's `TestBackend` from the hand-built profile of `render.rs`
//! (golden files `tests/golden/top-*.txt`, `STACKTOP_BLESS=1` rewrites them), key sequences driving the app
//! state, the callers of `pthread_mutex_lock` from a real recording, and the real binary in tmux.

use std::process::Command;
use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Modifier;
use ratatui::Terminal;
use stacktop::acquire::{
    CallGraphMode, CommandOutput, SessionConfig, Target, TOP_HYBRID_STACK_BYTES,
};
use stacktop::addr::Svma;
use stacktop::annotate::{Annotation, LineKind, ViewLine};
use stacktop::cmd::top::recorded_status;
use stacktop::pipeline::live::Sampler;
use stacktop::profile::query::Weight;
use stacktop::symbolize::DebugInfo;
use stacktop::tui::app::{Limit, Request, SortColumn};
use stacktop::tui::event_loop::{apply, Wake};
use stacktop::tui::input::handle_key;
use stacktop::tui::view::{draw, page_rows, Theme};
use stacktop::tui::{App, FuncRef, Screen, Status, Update};

use crate::common::*;
use crate::render::{golden, profile};

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

fn app() -> App {
    let profile = profile();
    let mut status = recorded_status(&profile, "app.pb.gz");
    status.samples_per_sec = 1000.0;
    App::frozen(profile, status)
}

/// The screen as text, one line per row, trailing spaces trimmed.
pub fn screen(app: &mut App, width: u16, height: u16) -> String {
    screen_and_highlight(app, width, height).0
}

/// The screen as text, and the lines drawn in reverse video (the selection).
pub fn screen_and_highlight(app: &mut App, width: u16, height: u16) -> (String, Vec<String>) {
    app.page = page_rows(app, width, height);
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|f| draw(f, app, Theme { color: false }))
        .unwrap();
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    let mut highlighted = Vec::new();
    for y in 0..height {
        let mut line = String::new();
        let mut reversed = false;
        for x in 0..width {
            line.push_str(buffer[(x, y)].symbol());
            reversed |= buffer[(x, y)].modifier.contains(Modifier::REVERSED);
        }
        let line = line.trim_end();
        if reversed {
            highlighted.push(line.to_owned());
        }
        out.push_str(line);
        out.push('\n');
    }
    (out, highlighted)
}

/// The one highlighted table line's symbol column.
pub fn highlighted_symbol(app: &mut App) -> String {
    let (s, lines) = screen_and_highlight(app, 80, 24);
    assert_eq!(lines.len(), 1, "one highlighted line:\n{s}");
    let symbol = lines[0].split("[.] ").nth(1).unwrap_or_default();
    symbol.to_owned()
}

pub fn goldens(name: &str, app: &mut App) {
    for (w, h) in SIZES {
        golden(
            &format!("top-{name}-{w}x{h}.txt"),
            screen(app, w, h).as_bytes(),
        );
    }
}

pub fn press(app: &mut App, keys: &[KeyCode]) {
    for &k in keys {
        handle_key(app, KeyEvent::new(k, KeyModifiers::NONE));
    }
}

pub fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, &[KeyCode::Char(c)]);
    }
}

fn func(name: &str) -> FuncRef {
    FuncRef {
        name: name.to_owned(),
        module: "/usr/bin/app".to_owned(),
    }
}

pub fn table_screen() {
    let mut app = app();
    assert_eq!(app.rows[0].symbol, "c");
    assert_eq!(app.selected, 0);
    goldens("table", &mut app);
}

/// A table far longer than the screen: only the rows on screen are drawn, and the selected one is always
/// among them (the last one when it is below the first page), as ratatui scrolls from the top.
pub fn long_table_scrolls_to_the_selection() {
    let mut app = long_app();
    let s = screen(&mut app, 80, 24);
    let first = table_line(&s, "func_000").expect("first row on screen");
    assert!(!s.contains("func_099"));
    press(&mut app, &[KeyCode::End]);
    let s = screen(&mut app, 80, 24);
    let last = table_line(&s, "func_099").expect("selected last row on screen");
    assert!(!s.contains("func_000"));
    assert!(last > first, "{s}");
    for _ in 0..10 {
        press(&mut app, &[KeyCode::Up]);
    }
    let s = screen(&mut app, 80, 24);
    assert_eq!(table_line(&s, "func_089"), Some(last), "{s}");
    press(&mut app, &[KeyCode::Home]);
    let s = screen(&mut app, 80, 24);
    assert_eq!(table_line(&s, "func_000"), Some(first), "{s}");
}

/// A recorded profile of 100 functions, `func_000` hottest to `func_099`, of command `app`.
fn long_app() -> App {
    use stacktop::profile::{Function, Line, Location, Meta, Profile};
    let mut p = Profile::new(Meta::default());
    let comm = p.intern("app");
    for i in 0..100u64 {
        let name = p.intern(&format!("func_{i:03}"));
        let function = p.add_function(Function { name, file: None });
        let location = p.add_location(Location {
            mapping: None,
            address: i,
            lines: vec![Line { function, line: 0 }],
        });
        p.add_sample(&[location], 1, 1, comm, 1, 1000 - i);
    }
    let status = recorded_status(&p, "long.pb");
    App::frozen(p, status)
}

fn table_line(screen: &str, name: &str) -> Option<usize> {
    screen.lines().position(|l| l.contains(name))
}

/// Setting a filter, a limit or the sort and lifting it again shows the table from the top with the top row
/// selected, wherever the selection was (clearing a `/` filter left the table scrolled down to where the
/// filtered list's first row sits in the whole one).
pub fn clearing_a_filter_shows_the_top() {
    let mut app = long_app();
    let first = table_line(&screen(&mut app, 80, 24), "func_000").expect("first row");
    let ctrl_u = |app: &mut App| {
        handle_key(
            app,
            KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL),
        )
    };
    let at_the_top = |app: &mut App, what: &str| {
        let (s, highlighted) = screen_and_highlight(app, 80, 24);
        assert_eq!(table_line(&s, "func_000"), Some(first), "{what}:\n{s}");
        assert!(!s.contains("func_099"), "{what}:\n{s}");
        assert_eq!(highlighted.len(), 1, "{what}:\n{s}");
        assert!(highlighted[0].contains("func_000"), "{what}:\n{s}");
        assert_eq!(
            app.selected_row().map(|r| r.symbol.as_str()),
            Some("func_000")
        );
    };
    // A filter, from the last row.
    press(&mut app, &[KeyCode::End, KeyCode::Char('/')]);
    typed(&mut app, "func_09");
    press(&mut app, &[KeyCode::Enter]);
    assert_eq!(app.rows.len(), 10);
    let s = screen(&mut app, 80, 24);
    assert_eq!(table_line(&s, "func_090"), Some(first), "{s}");
    press(&mut app, &[KeyCode::End, KeyCode::Char('/')]);
    ctrl_u(&mut app);
    press(&mut app, &[KeyCode::Enter]);
    assert_eq!(app.rows.len(), 100);
    at_the_top(&mut app, "filter cleared");
    // The `t` limit.
    press(&mut app, &[KeyCode::End, KeyCode::Up, KeyCode::Char('t')]);
    ctrl_u(&mut app);
    typed(&mut app, "app");
    press(&mut app, &[KeyCode::Enter]);
    at_the_top(&mut app, "limit set");
    press(&mut app, &[KeyCode::End, KeyCode::Char('t')]);
    ctrl_u(&mut app);
    press(&mut app, &[KeyCode::Enter]);
    assert_eq!(app.limit, None);
    at_the_top(&mut app, "limit lifted");
    // The `d` module limit.
    press(&mut app, &[KeyCode::End, KeyCode::Char('d')]);
    assert!(app.module_limit.is_some());
    at_the_top(&mut app, "module limit set");
    press(&mut app, &[KeyCode::End, KeyCode::Char('d')]);
    assert_eq!(app.module_limit, None);
    at_the_top(&mut app, "module limit lifted");
    // Round the sort columns.
    press(&mut app, &[KeyCode::End]);
    for _ in 0..5 {
        press(&mut app, &[KeyCode::Char('s')]);
    }
    assert_eq!(app.sort, SortColumn::SelfPct);
    at_the_top(&mut app, "sorted");
}

pub fn callers_tree_screen() {
    let mut app = app();
    // c's callers: a 60%, b 40% of c; expand a.
    press(&mut app, &[KeyCode::Enter, KeyCode::Down, KeyCode::Right]);
    goldens("callers", &mut app);
}

/// An annotation as `annotate::annotate` builds it: source rows, each followed by its instructions.
fn annotation() -> Annotation {
    let source = |line: u32, text: &str, share: f64| ViewLine {
        kind: LineKind::Source,
        address: None,
        instruction: None,
        file: Some("app.c".to_owned()),
        line,
        inlined_from: None,
        text: text.to_owned(),
        weight: Weight::default(),
        share,
        hot: share >= 5.0,
        hottest: false,
    };
    let asm = |address: u64, text: &str, share: f64| ViewLine {
        kind: LineKind::Asm,
        address: Some(Svma(address)),
        ..source(0, text, share)
    };
    let lines = vec![
        source(10, "void c(unsigned n) {", 0.0),
        asm(0x401400, "push rbp", 2.0),
        source(11, "    for (unsigned i = 0; i < n; i++)", 18.0),
        asm(0x401404, "cmp eax, edi", 18.0),
        source(12, "        x += i * i;", 80.0),
        asm(0x401408, "imul ecx, ecx", 55.0),
        asm(0x40140b, "add edx, ecx", 25.0),
        source(13, "}", 0.0),
        asm(0x401410, "ret", 0.0),
    ];
    let hot_lines = (0..lines.len()).filter(|&i| lines[i].hot).collect();
    Annotation {
        function: "c".to_owned(),
        module: "/usr/bin/app".to_owned(),
        build_id: None,
        opened: "/usr/bin/app".to_owned(),
        debug_info: DebugInfo::Embedded,
        start: Svma(0x401400),
        size: 0x11,
        samples: Weight::default(),
        total: Weight::default(),
        outside: Weight::default(),
        instructions: Vec::new(),
        sources: Vec::new(),
        lines,
        hot_lines,
        hottest: Some(5),
        hottest_source: Some(4),
        notes: Vec::new(),
    }
}

pub fn annotate_screen() {
    let mut app = app();
    press(&mut app, &[KeyCode::Char('a')]);
    assert_eq!(
        app.requests,
        vec![stacktop::tui::app::Request::Annotate(func("c"))]
    );
    app.requests.clear();
    app.annotated(&func("c"), Ok(annotation()));
    // The hottest line is selected first; n goes to the next hot one and wraps.
    let selected = |app: &App| match app.screens.last() {
        Some(Screen::Annotate(v)) => v.selected,
        _ => usize::MAX,
    };
    assert_eq!(selected(&app), 4);
    press(&mut app, &[KeyCode::Char('n')]);
    assert_eq!(selected(&app), 5);
    press(&mut app, &[KeyCode::Char('n'), KeyCode::Char('n')]);
    // 6, then past the end to the first hot line (2% is not hot).
    assert_eq!(selected(&app), 2);
    press(&mut app, &[KeyCode::Home]);
    goldens("annotate", &mut app);
}

pub fn help_screen() {
    let mut app = app();
    press(&mut app, &[KeyCode::Char('?')]);
    assert!(app.help);
    goldens("help", &mut app);
    press(&mut app, &[KeyCode::Char('x')]);
    assert!(!app.help && !app.quit);
}

pub fn keys_drive_the_state() {
    let mut app = app();
    // Move and come back.
    press(
        &mut app,
        &[KeyCode::Down, KeyCode::Char('j'), KeyCode::Char('k')],
    );
    assert_eq!(app.selected, 1);
    press(&mut app, &[KeyCode::End]);
    assert_eq!(app.selected, app.rows.len() - 1);
    press(&mut app, &[KeyCode::Home]);
    assert_eq!(app.selected, 0);

    // Callers of c, expand a, collapse, go to the parent, switch to callees, back.
    press(&mut app, &[KeyCode::Enter]);
    let tree = |app: &App| match app.screens.last() {
        Some(Screen::Tree(t)) => t.clone(),
        other => panic!("no tree open: {other:?}"),
    };
    let t = tree(&app);
    let names: Vec<&str> = t.rows.iter().map(|r| r.symbol.as_str()).collect();
    assert_eq!(names, ["c", "a", "b"]);
    assert!((t.rows[1].of_function - 60.0).abs() < 1e-9);
    assert!((t.rows[1].of_all - 30.0).abs() < 1e-9);
    press(&mut app, &[KeyCode::Down, KeyCode::Enter]);
    let names: Vec<String> = tree(&app).rows.iter().map(|r| r.symbol.clone()).collect();
    assert_eq!(names, ["c", "a", "main", "b"]);
    press(&mut app, &[KeyCode::Left]);
    assert_eq!(tree(&app).rows.len(), 3);
    press(&mut app, &[KeyCode::Left]);
    assert_eq!(tree(&app).selected, 0);
    press(&mut app, &[KeyCode::Char('c')]);
    let t = tree(&app);
    assert_eq!(t.direction, stacktop::profile::query::Direction::Callees);
    assert_eq!(t.rows.len(), 1, "c calls nothing: {:?}", t.rows);
    press(&mut app, &[KeyCode::Esc]);
    assert!(app.screens.is_empty());

    // Filter by regex, then by plain text that is not a valid regex.
    press(&mut app, &[KeyCode::Char('/')]);
    typed(&mut app, "^(b|rec)$");
    press(&mut app, &[KeyCode::Enter]);
    let names: Vec<&str> = app.rows.iter().map(|r| r.symbol.as_str()).collect();
    assert_eq!(names, ["b", "rec"]);
    press(&mut app, &[KeyCode::Char('/')]);
    for _ in 0..9 {
        press(&mut app, &[KeyCode::Backspace]);
    }
    typed(&mut app, "evil\x1b[");
    press(&mut app, &[KeyCode::Enter]);
    assert_eq!(app.rows.len(), 1);
    assert_eq!(app.rows[0].symbol, "evil\\x1b[31mname");
    press(&mut app, &[KeyCode::Char('/'), KeyCode::Esc]);
    assert_eq!(app.rows.len(), 1, "Esc cancels the prompt");
    // Ctrl-U clears the typed line (it used to insert a `u`), Ctrl-W a word.
    press(&mut app, &[KeyCode::Char('/')]);
    typed(&mut app, " two words");
    let ctrl =
        |app: &mut App, c| handle_key(app, KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL));
    ctrl(&mut app, 'w');
    assert_eq!(app.prompt.as_ref().unwrap().1, "evil\x1b[ two ");
    ctrl(&mut app, 'u');
    assert_eq!(app.prompt.as_ref().unwrap().1, "");
    press(&mut app, &[KeyCode::Enter]);
    assert_eq!(app.symbol_filter, None);

    // Sort: by total, rows with no self time appear (main at 100%).
    press(&mut app, &[KeyCode::Char('s')]);
    assert_eq!(app.sort, SortColumn::Total);
    // Rows are per command: _start of `app` has 90%, `worker` the other 10%.
    assert_eq!(app.rows[0].symbol, "_start");
    assert!(
        (app.rows[0].total_pct - 90.0).abs() < 1e-9,
        "{:?}",
        app.rows
    );
    press(
        &mut app,
        &[KeyCode::Char('s'), KeyCode::Char('s'), KeyCode::Char('s')],
    );
    assert_eq!(app.sort, SortColumn::Symbol);
    press(&mut app, &[KeyCode::Char('s')]);
    assert_eq!(app.sort, SortColumn::SelfPct);

    // Limit to a command, a pid, then lift it.
    press(&mut app, &[KeyCode::Char('t')]);
    for _ in 0..3 {
        press(&mut app, &[KeyCode::Backspace]);
    }
    typed(&mut app, "worker");
    press(&mut app, &[KeyCode::Enter]);
    assert_eq!(app.limit, Some(Limit::Comm("worker".into())));
    assert_eq!(app.rows.len(), 1);
    assert!((app.rows[0].self_pct - 100.0).abs() < 1e-9);
    press(&mut app, &[KeyCode::Char('t')]);
    for _ in 0..6 {
        press(&mut app, &[KeyCode::Backspace]);
    }
    typed(&mut app, "101");
    press(&mut app, &[KeyCode::Enter]);
    assert_eq!(app.limit, Some(Limit::Tid(101)));
    assert_eq!(app.rows[0].symbol, "sys_write");
    press(&mut app, &[KeyCode::Char('t')]);
    for _ in 0..20 {
        press(&mut app, &[KeyCode::Backspace]);
    }
    press(&mut app, &[KeyCode::Enter]);
    assert_eq!(app.limit, None);
    // A name no thread has is a process's name (its main thread's, or its program's file name).
    let mut with_program = profile();
    with_program.set_program(200, "server", Some("/usr/sbin/server"));
    let mut other = App::frozen(with_program, recorded_status(&profile(), "app.pb.gz"));
    press(&mut other, &[KeyCode::Char('t')]);
    for _ in 0..3 {
        press(&mut other, &[KeyCode::Backspace]);
    }
    typed(&mut other, "server");
    press(&mut other, &[KeyCode::Enter]);
    assert_eq!(other.limit, Some(Limit::Process("server".into())));
    let names: Vec<&str> = other.rows.iter().map(|r| r.symbol.as_str()).collect();
    assert_eq!(names, ["evil\\x1b[31mname"]);

    // Module limit, kernel frames hidden.
    let kernel = app
        .rows
        .iter()
        .position(|r| r.symbol == "sys_write")
        .unwrap();
    app.selected = kernel;
    press(&mut app, &[KeyCode::Char('d')]);
    assert_eq!(app.module_limit.as_deref(), Some("[kernel.kallsyms]"));
    assert!(app.rows.iter().all(|r| r.kernel));
    press(&mut app, &[KeyCode::Char('d'), KeyCode::Char('K')]);
    assert_eq!(app.module_limit, None);
    assert!(app.rows.iter().all(|r| !r.kernel));
    // Without its kernel frame, write's sample ends in write.
    assert!(app.rows.iter().any(|r| r.symbol == "write"));

    // A frozen profile stays cumulative; space pauses; q quits.
    press(&mut app, &[KeyCode::Char('z'), KeyCode::Char(' ')]);
    assert!(app.cumulative_mode() && app.paused);
    press(&mut app, &[KeyCode::Char('q')]);
    assert!(app.quit);
    let mut app = self::app();
    handle_key(
        &mut app,
        KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
    );
    assert!(app.quit);
}

pub fn live_updates_decay_and_accumulate() {
    use stacktop::profile::{Function, Line, Location, Meta, Profile, TableMarks};
    use stacktop::tui::{Status, Update};
    // Each update holds 100 samples of one function, cut from one sampler-side profile as `top` does; after a
    // switch, the decaying view follows the present.
    let mut store = Profile::new(Meta::default());
    let mut marks = TableMarks::default();
    let mut delta = |name: &str| {
        let n = store.intern(name);
        let f = store.add_function(Function {
            name: n,
            file: None,
        });
        let l = store.add_location(Location {
            mapping: None,
            address: u64::from(n.0),
            lines: vec![Line {
                function: f,
                line: 0,
            }],
        });
        let comm = store.intern("w");
        store.add_sample(&[l], 1, 1, comm, 100, 100_000);
        Update {
            delta: store.take_delta(&mut marks, &[], Vec::new()),
            status: Status::default(),
        }
    };
    let mut app = App::live(Status::default());
    for _ in 0..10 {
        app.update(delta("old"));
    }
    for _ in 0..10 {
        app.update(delta("new"));
    }
    assert_eq!(app.rows[0].symbol, "new");
    assert!(app.rows[0].self_pct > 70.0, "{:?}", app.rows);
    press(&mut app, &[KeyCode::Char('z')]);
    assert!((app.rows[0].self_pct - 50.0).abs() < 1e-9, "{:?}", app.rows);
    // An update while the cumulative sums are shown goes into both sums.
    app.update(delta("new"));
    let cumulative = 100.0 * 1100.0 / 2100.0;
    assert!(
        (app.rows[0].self_pct - cumulative).abs() < 1e-9,
        "{:?}",
        app.rows
    );
    press(&mut app, &[KeyCode::Char('z')]);
    assert_eq!(app.rows[0].symbol, "new");
    assert!(app.rows[0].self_pct > 75.0, "{:?}", app.rows);
    // Paused: updates are held, the screen stays.
    press(&mut app, &[KeyCode::Char(' ')]);
    let before = app.rows.clone();
    app.update(delta("newer"));
    assert_eq!(app.rows, before);
    press(&mut app, &[KeyCode::Char(' ')]);
    assert!(app.rows.iter().any(|r| r.symbol == "newer"));
    // The end freezes on the cumulative profile.
    let mut last = delta("new");
    last.status.ended = Some("exit 0".into());
    app.update(last);
    assert!(app.ended && app.cumulative_mode());
}

/// Updates as the live sampler sends them, cut from one sampler-side profile: each call adds `count` samples
/// of each named function (a one-frame stack, command `w`).
struct Feed {
    store: stacktop::profile::Profile,
    marks: stacktop::profile::TableMarks,
}

impl Feed {
    fn new() -> Feed {
        Feed {
            store: stacktop::profile::Profile::new(stacktop::profile::Meta::default()),
            marks: stacktop::profile::TableMarks::default(),
        }
    }

    fn update(&mut self, samples: &[(&str, u64)]) -> Update {
        use stacktop::profile::{Function, Line, Location};
        let store = &mut self.store;
        for &(name, count) in samples {
            let n = store.intern(name);
            let function = store.add_function(Function {
                name: n,
                file: None,
            });
            let location = store.add_location(Location {
                mapping: None,
                address: u64::from(n.0),
                lines: vec![Line { function, line: 0 }],
            });
            let comm = store.intern("w");
            store.add_sample(&[location], 1, 1, comm, count, count * 1000);
        }
        Update {
            delta: store.take_delta(&mut self.marks, &[], Vec::new()),
            status: Status::default(),
        }
    }
}

fn symbols(app: &App) -> Vec<&str> {
    app.rows.iter().map(|r| r.symbol.as_str()).collect()
}

fn tree_of(app: &App) -> String {
    match app.screens.last() {
        Some(Screen::Tree(t)) => t.func.name.clone(),
        other => panic!("no tree open: {other:?}"),
    }
}

/// Rows reorder at every refresh. Until the user moves the selection it stays on the top row, whatever function
/// is there (it used to follow the first function, which a moment later was on row 2 while the user pressed
/// Enter on row 1); once moved, it follows the function picked; Home goes back to the top row.
pub fn selection_stays_on_top_until_moved() {
    let mut feed = Feed::new();
    let mut app = App::live(Status::default());
    app.update(feed.update(&[("a", 100)]));
    assert_eq!(highlighted_symbol(&mut app), "a");
    app.update(feed.update(&[("b", 300)]));
    assert_eq!(symbols(&app), ["b", "a"]);
    assert_eq!(highlighted_symbol(&mut app), "b");
    press(&mut app, &[KeyCode::Enter]);
    assert_eq!(tree_of(&app), "b");
    press(&mut app, &[KeyCode::Esc]);

    // Moved to a: a stays selected as it climbs to the top and as b overtakes it again.
    press(&mut app, &[KeyCode::Down]);
    assert_eq!(highlighted_symbol(&mut app), "a");
    app.update(feed.update(&[("a", 1000)]));
    assert_eq!(symbols(&app), ["a", "b"]);
    assert_eq!(highlighted_symbol(&mut app), "a");
    app.update(feed.update(&[("b", 5000)]));
    assert_eq!(symbols(&app), ["b", "a"]);
    assert_eq!(highlighted_symbol(&mut app), "a");
    press(&mut app, &[KeyCode::Char('a')]);
    assert_eq!(
        app.requests,
        [Request::Annotate(FuncRef {
            name: "a".into(),
            module: "[unknown]".into()
        })]
    );
    app.requests.clear();
    press(&mut app, &[KeyCode::Esc]);

    // Up to the top row is still a pick; Home is the top row whatever it holds.
    press(&mut app, &[KeyCode::Up]);
    app.update(feed.update(&[("a", 50_000)]));
    assert_eq!(symbols(&app), ["a", "b"]);
    assert_eq!(highlighted_symbol(&mut app), "b");
    press(&mut app, &[KeyCode::Home]);
    assert_eq!(highlighted_symbol(&mut app), "a");
    app.update(feed.update(&[("b", 500_000)]));
    assert_eq!(symbols(&app), ["b", "a"]);
    assert_eq!(highlighted_symbol(&mut app), "b");
    press(&mut app, &[KeyCode::Enter]);
    assert_eq!(tree_of(&app), "b");
}

/// A key acts on the row highlighted on the screen drawn last, even when an update that reorders the rows
/// arrived after that draw and before the key (the event loop applies both before drawing again).
pub fn keys_act_on_the_row_drawn_before_an_update() {
    let key = |code| Wake::Key(KeyEvent::new(code, KeyModifiers::NONE));
    let mut feed = Feed::new();
    let mut app = App::live(Status::default());
    app.update(feed.update(&[("a", 100), ("b", 50)]));
    assert_eq!(highlighted_symbol(&mut app), "a");
    let b_on_top = Wake::Update(Box::new(feed.update(&[("b", 1000)])));
    apply(&mut app, vec![b_on_top, key(KeyCode::Enter)]).unwrap();
    assert_eq!(tree_of(&app), "a");
    // The update is in: the table under the tree has b on top now.
    assert_eq!(symbols(&app), ["b", "a"]);

    // Moving then opening, in one burst, opens what the moves reached on the screen the user saw.
    apply(&mut app, vec![key(KeyCode::Esc)]).unwrap();
    assert_eq!(highlighted_symbol(&mut app), "b");
    let a_on_top = Wake::Update(Box::new(feed.update(&[("a", 10_000)])));
    apply(
        &mut app,
        vec![key(KeyCode::Down), a_on_top, key(KeyCode::Char('a'))],
    )
    .unwrap();
    assert_eq!(
        app.requests,
        [Request::Annotate(FuncRef {
            name: "a".into(),
            module: "[unknown]".into()
        })]
    );
    assert_eq!(symbols(&app), ["a", "b"]);

    // Pausing holds the update that arrived after the draw: the screen stays as the user saw it.
    let mut app = App::live(Status::default());
    app.update(feed.update(&[("a", 100_000)]));
    let before = app.rows.clone();
    let update = Wake::Update(Box::new(feed.update(&[("b", 1_000_000)])));
    apply(&mut app, vec![update, key(KeyCode::Char(' '))]).unwrap();
    assert!(app.paused);
    assert_eq!(app.rows, before);
}

/// The lines of `screen` from `from` to `to` (not included), trimmed, joined by spaces: wrapped text, read back.
fn unwrapped(screen: &str, from: usize, to: usize) -> String {
    let lines: Vec<&str> = screen.lines().collect();
    lines[from..to]
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// At 80 columns, why a row cannot be annotated (`a` on a stripped library's row) and a footer message are read
/// whole, over as many lines as they need (both were cut at the screen's width).
pub fn long_messages_wrap_at_80_columns() {
    let name = "[unknown] libQt6WebEngineCore.so.6.4.2+0x5e3a1c0 (fde)";
    let mut feed = Feed::new();
    let mut app = App::live(Status::default());
    app.update(feed.update(&[(name, 100), ("main", 10)]));
    press(&mut app, &[KeyCode::Char('a')]);
    let Some(Request::Annotate(func)) = app.requests.pop() else {
        panic!("no annotate request");
    };
    assert_eq!(func.name, name);
    let result = stacktop::cmd::top::annotator()(app.profile(), &func);
    let Err(why) = result.clone() else {
        panic!("annotated a function without a module file");
    };
    assert!(why.len() > 80 && why.starts_with(name), "{why}");
    app.annotated(&func, result);
    let s = screen(&mut app, 80, 24);
    let title = table_line(&s, "annotate [unknown]").expect("annotate title");
    assert_eq!(unwrapped(&s, title + 1, 23), why, "{s}");

    // A message in the footer takes the lines it needs under the table.
    press(&mut app, &[KeyCode::Esc]);
    let message =
        "the profile's tables could not take this update (string 123456 of 4096 referenced by \
                   location 77 of mapping /usr/lib/x86_64-linux-gnu/libQt6WebEngineCore.so.6.4.2); \
                   restart stacktop top";
    app.message = Some(message.to_owned());
    let s = screen(&mut app, 80, 24);
    let footer = table_line(&s, "the profile's tables").expect("message on screen");
    assert!(footer > 5 && footer < 23, "{s}");
    assert_eq!(unwrapped(&s, footer, 24), message, "{s}");
    assert!(s.lines().all(|l| l.chars().count() <= 80));
    assert!(s.contains("[.] main"), "the table is still there:\n{s}");
    // The next key clears it and the key hints come back.
    press(&mut app, &[KeyCode::Down]);
    let s = screen(&mut app, 80, 24);
    assert!(
        s.lines()
            .last()
            .is_some_and(|l| l.starts_with("Enter callers")),
        "{s}"
    );
}

pub fn mutex_callers_75_25_from_a_live_recording() {
    if !perf_available() {
        return;
    }
    let bin = build_c("mutex.c", "mutex", &[]);
    let config = SessionConfig {
        target: Target::Command(vec![bin.into_os_string(), "3".into()]),
        event: "cpu-clock".parse().unwrap(),
        frequency: 999,
        // `top`'s default mode: hybrid with its 4 KiB copies.
        call_graph: CallGraphMode::parse("hybrid", TOP_HYBRID_STACK_BYTES).unwrap(),
        command_output: CommandOutput::Null,
        off_cpu: false,
        locks: None,
    };
    let sampler = Sampler::start(config, Duration::from_millis(500), None).unwrap();
    let mut app = App::live(sampler.status.clone());
    let (updates, handle) = sampler.into_parts();
    let mut refreshes = 0;
    for update in updates.iter() {
        let end = update.status.ended.is_some();
        app.update(update);
        refreshes += 1;
        if end {
            break;
        }
    }
    handle.stop().unwrap();
    assert!(refreshes >= 4, "only {refreshes} refreshes in 3 s");
    assert!(app.ended && app.cumulative_mode());
    assert_eq!(app.status.ended.as_deref(), Some("exit 0"));
    // As a user would: filter, Enter.
    press(&mut app, &[KeyCode::Char('/')]);
    typed(&mut app, "^pthread_mutex_lock$");
    press(&mut app, &[KeyCode::Enter, KeyCode::Enter]);
    let Some(Screen::Tree(tree)) = app.screens.last() else {
        panic!("no callers tree; rows: {:?}", app.rows);
    };
    let share = |name: &str| {
        tree.rows
            .iter()
            .filter(|r| r.depth == 1 && r.symbol == name)
            .map(|r| r.of_function)
            .sum::<f64>()
    };
    let (often, rarely) = (share("lock_often"), share("lock_rarely"));
    eprintln!("callers of pthread_mutex_lock in the TUI: lock_often {often:.1}%, lock_rarely {rarely:.1}%");
    assert!(
        often + rarely > 90.0,
        "callers do not add up: {:?}",
        tree.rows
    );
    assert_near("lock_often", often * 100.0 / (often + rarely), 75.0, 7.0);
    assert_eq!(app.status.unwind_warning, None);
}

/// `top --call-graph fp` on a program whose library keeps no frame pointers: the header's fourth line says
/// what share of the stacks are wrong, and in which module.
pub fn live_fp_view_warns_of_code_without_frame_pointers() {
    if !perf_available() {
        return;
    }
    let lib = crate::frameless::library(false);
    let bin = build_c("dlopen.c", "dlopen", &[]);
    let config = SessionConfig {
        target: Target::Command(vec![bin.into_os_string(), lib.into_os_string(), "2".into()]),
        event: "cpu-clock".parse().unwrap(),
        frequency: 999,
        call_graph: CallGraphMode::parse("fp", TOP_HYBRID_STACK_BYTES).unwrap(),
        command_output: CommandOutput::Null,
        off_cpu: false,
        locks: None,
    };
    let sampler = Sampler::start(config, Duration::from_millis(500), None).unwrap();
    let mut app = App::live(sampler.status.clone());
    let (updates, handle) = sampler.into_parts();
    for update in updates.iter() {
        let end = update.status.ended.is_some();
        app.update(update);
        if end {
            break;
        }
    }
    handle.stop().unwrap();
    assert!(app.status.samples >= 1000, "{} samples", app.status.samples);
    let warning = app.status.unwind_warning.clone().unwrap_or_default();
    let percent: f64 = warning
        .split_once("% of stacks cross code without frame pointers (libstacktop_nofp.so")
        .and_then(|(p, _)| p.parse().ok())
        .unwrap_or_else(|| panic!("warning: {warning:?}"));
    let in_lib: f64 = app
        .rows
        .iter()
        .filter(|r| r.module == "libstacktop_nofp.so")
        .map(|r| r.self_pct)
        .sum();
    assert!(
        in_lib > 90.0,
        "the library has {in_lib:.1}%: {:?}",
        app.rows
    );
    assert_near("stacks through the library", percent, in_lib, 2.0);
    assert!(
        warning.ends_with("use --call-graph hybrid or dwarf"),
        "{warning}"
    );
    let screen = screen(&mut app, 120, 40);
    let line = screen.lines().nth(3).unwrap_or_default();
    let expected: String = format!("warning: {warning}").chars().take(120).collect();
    assert_eq!(line, expected.trim_end(), "{screen}");
    // Then the table (after the view line when the recording has off-CPU time).
    let next = 4 + usize::from(app.off_cpu_available());
    assert!(
        screen.lines().nth(next).is_some_and(|l| l.contains("Self")),
        "{screen}"
    );
}

/// A tmux session that is killed when the test ends, however it ends.
pub struct Tmux {
    name: String,
}

impl Tmux {
    /// A session of its own name: the last one killed may still be going away. Killing the last session
    /// ends the tmux server, and a new session asked for meanwhile can fail with it: tried again then.
    pub fn start(command: &str) -> Tmux {
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("stacktop-it-{}-{n}", std::process::id());
        let mut tries = 0;
        loop {
            let out = Command::new("tmux")
                .args([
                    "new-session",
                    "-d",
                    "-s",
                    &name,
                    "-x",
                    "100",
                    "-y",
                    "30",
                    command,
                ])
                .output()
                .unwrap();
            tries += 1;
            if out.status.success() {
                return Tmux { name };
            }
            assert!(
                tries < 5,
                "tmux new-session failed {tries} times ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen with its colours and attributes (`capture-pane -e`): the lines drawn in reverse video.
    pub fn reversed_lines(&self) -> Vec<String> {
        let out = Command::new("tmux")
            .args(["capture-pane", "-e", "-p", "-t", &self.name])
            .output()
            .unwrap();
        let sgr = regex::Regex::new(r"\x1b\[([0-9;:]*)m").unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| {
                sgr.captures_iter(l)
                    .any(|c| c[1].split([';', ':']).any(|p| p == "7"))
            })
            .map(|l| sgr.replace_all(l, "").into_owned())
            .collect()
    }

    fn display(&self, format: &str) -> String {
        stdout_of(Command::new("tmux").args(["display-message", "-p", "-t", &self.name, format]))
            .trim()
            .to_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
        run(Command::new("tmux")
            .args(["send-keys", "-t", &self.name])
            .args(keys));
    }

    /// Polls the screen until `ok` holds; panics with the last screen after `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            if start.elapsed() > timeout {
                panic!("timed out waiting for {what}; screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .output();
    }
}

/// The first table row under the column header.
pub fn first_row(screen: &str) -> Option<&str> {
    let mut lines = screen.lines();
    lines.find(|l| l.contains("Self") && l.contains("Symbol"))?;
    lines.next()
}

pub fn live_view_in_tmux() {
    if !perf_available() || !tool_available("tmux") {
        return;
    }
    let bin = build_c("split.c", "split", &[]);
    let exit_file = scratch_file("top-exit.txt");
    let _ = std::fs::remove_file(&exit_file);
    let command = format!(
        "{} top -e cpu-clock -d 0.5 -- {} 60; echo top-exit=$? > {}; echo back-in-the-shell; sleep 60",
        stacktop_bin(),
        bin.display(),
        exit_file.display()
    );
    let tmux = Tmux::start(&command);
    let started = Instant::now();
    let screen = tmux.wait_for("hot_a on the first row", Duration::from_secs(20), |s| {
        first_row(s).is_some_and(|r| r.contains("hot_a"))
    });
    eprintln!(
        "hot_a on the first row after {:.1}s:\n{screen}",
        started.elapsed().as_secs_f64()
    );
    // The highlight is on the top row, the one Enter opens (not on a function seen first at start).
    let reversed = tmux.reversed_lines();
    assert!(
        reversed.len() == 1 && reversed[0].contains("hot_a"),
        "highlighted: {reversed:?}\n{}",
        tmux.screen()
    );
    assert!(screen.contains("output: "), "no output file in the header");
    let output_file: String = screen[screen.find("output: ").unwrap() + "output: ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(tmux.display("#{alternate_on}"), "1");

    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("callers of hot_a", Duration::from_secs(10), |s| {
        s.contains("callers of hot_a") && s.lines().any(|l| l.contains("main"))
    });
    eprintln!("callers:\n{screen}");

    // Annotate: BURN_BODY is a macro, so all of hot_a's code is on its source line 6, which is hot.
    tmux.keys(&["a"]);
    let screen = tmux.wait_for("hot_a's hot source line", Duration::from_secs(20), |s| {
        s.contains("annotate hot_a")
            && s.lines().any(|l| {
                l.contains("void hot_a(")
                    && l.split_whitespace()
                        .next()
                        .and_then(|p| p.strip_suffix('%'))
                        .and_then(|p| p.parse::<f64>().ok())
                        .is_some_and(|p| p >= 50.0)
            })
    });
    eprintln!("annotate:\n{screen}");
    // One Esc at a time: a terminal reads two in a row as one Alt+Esc.
    tmux.keys(&["Escape"]);
    tmux.wait_for("the callers again", Duration::from_secs(10), |s| {
        s.contains("callers of hot_a")
    });
    tmux.keys(&["Escape"]);
    tmux.wait_for("the table again", Duration::from_secs(10), |s| {
        first_row(s).is_some()
    });

    tmux.keys(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !exit_file.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = std::fs::read_to_string(&exit_file).unwrap_or_default();
    assert_eq!(status.trim(), "top-exit=0", "screen:\n{}", tmux.screen());
    let screen = tmux.wait_for("the shell", Duration::from_secs(5), |s| {
        s.contains("back-in-the-shell")
    });
    assert!(
        !screen.contains("samples/s"),
        "the TUI is still on screen:\n{screen}"
    );
    assert_eq!(
        tmux.display("#{alternate_on}"),
        "0",
        "alternate screen left on"
    );
    assert_eq!(tmux.display("#{cursor_flag}"), "1", "cursor left hidden");
    // The workload printed nothing: its output file does not stay behind.
    assert!(
        output_file.ends_with(".out") && !std::path::Path::new(&output_file).exists(),
        "{output_file} left behind"
    );
}

/// The row of the callers tree on `screen` naming `caller`: its "of func" percentage and its line.
pub fn caller_row(screen: &str, caller: &str) -> Option<(f64, usize)> {
    screen.lines().enumerate().find_map(|(i, l)| {
        let mut words = l.split_whitespace();
        let pct = words.next()?.strip_suffix('%')?.parse().ok()?;
        words.any(|w| w == caller).then_some((pct, i))
    })
}

/// In the `top` running in `tmux`, after `w`: filters the table to `function`, opens its callers tree and
/// checks that `first` is listed before `second` with a larger share of the view's time; returns the screen.
/// Fails, saying why, when `w` answers that there is no off-CPU time.
fn off_cpu_callers_in_order(tmux: &Tmux, function: &str, first: &str, second: &str) -> String {
    tmux.wait_for("the table", Duration::from_secs(20), |s| {
        first_row(s).is_some_and(|r| r.contains('%'))
    });
    tmux.keys(&["w"]);
    let screen = tmux.wait_for(
        "the off-CPU view or why there is none",
        Duration::from_secs(10),
        |s| s.contains("view: off-cpu") || s.contains("off-CPU recording is off"),
    );
    assert!(
        !screen.contains("off-CPU recording is off"),
        "`top -- COMMAND` recorded no off-CPU time, so `w` has no off-CPU view to show: this test can pass \
         only once top's live sampler records off-CPU time (issue 13's recording side, on by default for a \
         launched command).\n{screen}"
    );
    // Off CPU the self time is the scheduler's (the innermost frame of every switch-out): the function that
    // waited has total time only, so the table is sorted by total.
    tmux.keys(&["s"]);
    tmux.wait_for("the table sorted by total", Duration::from_secs(10), |s| {
        s.contains("sort: total")
    });
    tmux.keys(&["/"]);
    tmux.keys(&["-l", &format!("^{function}$")]);
    tmux.keys(&["Enter"]);
    tmux.wait_for(
        &format!("{function} on the first row"),
        Duration::from_secs(20),
        |s| first_row(s).is_some_and(|r| r.contains(function)),
    );
    tmux.keys(&["Enter"]);
    tmux.wait_for(
        "the callers tree with both callers",
        Duration::from_secs(20),
        |s| {
            s.contains(&format!("callers of {function}"))
                && caller_row(s, first).is_some()
                && caller_row(s, second).is_some()
        },
    );
    // A few refreshes more (a live view's decaying sums weigh the last few seconds).
    std::thread::sleep(Duration::from_secs(3));
    let screen = tmux.screen();
    eprintln!("callers of {function} in the off-CPU view:\n{screen}");
    assert!(
        screen.contains("of all off-cpu time"),
        "the tree is not weighed by off-CPU time:\n{screen}"
    );
    let row = |name: &str| {
        caller_row(&screen, name).unwrap_or_else(|| panic!("no {name} in the tree:\n{screen}"))
    };
    let (a, b) = (row(first), row(second));
    assert!(
        a.1 < b.1 && a.0 > b.0,
        "{first} ({:.1}%) should be listed before {second} ({:.1}%):\n{screen}",
        a.0,
        b.0
    );
    screen
}

/// `w` in a live `top` of threads that wait in `pthread_mutex_lock` from two callers
/// (`assets/top_lockwait.c`: 3/4 of the waiting under wait_often, 1/4 under wait_rarely): the off-CPU view's
/// callers tree of pthread_mutex_lock lists wait_often first, then wait_rarely. Until top records off-CPU
/// time (issue 13's recording side), `w` answers that off-CPU recording is off, and this test fails saying so.
pub fn off_cpu_callers_of_a_lock_in_tmux() {
    if !perf_available() || !tool_available("tmux") {
        return;
    }
    let bin = build_c("top_lockwait.c", "top_lockwait", &[]);
    let command = format!(
        "{} top -e cpu-clock -d 0.5 -- {} 60; sleep 60",
        stacktop_bin(),
        bin.display()
    );
    let tmux = Tmux::start(&command);
    off_cpu_callers_in_order(&tmux, "pthread_mutex_lock", "wait_often", "wait_rarely");
    tmux.keys(&["q"]);
}

/// The same keys on a recorded profile with CPU and off-CPU values (`top_weigh.rs`'s, written as pprof), in
/// the real binary: `w`, then the callers of pthread_mutex_lock list rarely (320 ms) before often (100 ms),
/// the reverse of their CPU order; `--weight off-cpu` starts in that view.
pub fn off_cpu_view_of_a_recorded_profile_in_tmux() {
    if !tool_available("tmux") {
        return;
    }
    let file = scratch_file("top-offcpu.pb.gz");
    stacktop::format::pprof::write_pprof_file(&crate::top_weigh::profile(), &file).unwrap();
    let command = format!("{} top -i {}; sleep 60", stacktop_bin(), file.display());
    let tmux = Tmux::start(&command);
    let screen = off_cpu_callers_in_order(&tmux, "pthread_mutex_lock", "rarely", "often");
    assert!(
        screen.contains("43.30% of all off-cpu time, 420 ms"),
        "{screen}"
    );
    tmux.keys(&["q"]);
    drop(tmux);
    let command = format!(
        "{} top -i {} --weight off-cpu; sleep 60",
        stacktop_bin(),
        file.display()
    );
    let tmux = Tmux::start(&command);
    let screen = tmux.wait_for("the off-CPU table", Duration::from_secs(20), |s| {
        first_row(s).is_some_and(|r| r.contains("pthread_mutex_lock"))
    });
    assert!(
        screen.contains("view: off-cpu  cpu 120 ms  blocked 750 ms"),
        "{screen}"
    );
    tmux.keys(&["q"]);
}

pub fn top_help_lists_the_keys() {
    let out = crate::common::stdout_of(&mut crate::common::stacktop(&["top", "--help"]));
    for line in [
        "Keys:",
        "callers of the function",
        "decaying <-> cumulative",
        "q Ctrl-C",
    ] {
        assert!(out.contains(line), "no {line:?} in:\n{out}");
    }
}

/// A page is what the header and the footer leave: a fourth header line (a stack warning) and a message on
/// several lines shorten it, so PgDn moves by the rows on screen.
pub fn a_page_is_the_rows_on_screen() {
    let mut app = app();
    assert_eq!(page_rows(&app, 80, 24), 18);
    app.status.unwind_warning = Some("stacks through libc.so.6 are wrong".into());
    assert_eq!(page_rows(&app, 80, 24), 17);
    app.message = Some("word ".repeat(40));
    assert_eq!(page_rows(&app, 80, 24), 15, "a message on three lines");
}

crate::tests![
    top_help_lists_the_keys,
    a_page_is_the_rows_on_screen,
    table_screen,
    long_table_scrolls_to_the_selection,
    clearing_a_filter_shows_the_top,
    callers_tree_screen,
    annotate_screen,
    help_screen,
    keys_drive_the_state,
    live_updates_decay_and_accumulate,
    selection_stays_on_top_until_moved,
    keys_act_on_the_row_drawn_before_an_update,
    long_messages_wrap_at_80_columns,
    mutex_callers_75_25_from_a_live_recording,
    live_fp_view_warns_of_code_without_frame_pointers,
    live_view_in_tmux,
    off_cpu_callers_of_a_lock_in_tmux,
    off_cpu_view_of_a_recorded_profile_in_tmux,
];
