//! `stacktop top`'s views (`w`, `--weight`): screens drawn into ratatui's `TestBackend` from a hand-built
//! profile holding CPU samples and off-CPU time (golden files `tests/golden/top-offcpu-*.txt`,
//! `STACKTOP_BLESS=1` rewrites them), and live updates carrying off-CPU time.
//!
//! The profile (innermost frame first; command `app`, pid 100; cpu-clock, 1 ms per sample; off-CPU
//! recording on):
//! ```text
//!     stack                                           tid  CPU          switches  blocked  runnable
//! G1  compute <- often <- worker <- main              101  60 (60 ms)
//! G2  pthread_mutex_lock <- often <- worker <- main   101  30 (30 ms)   5         100 ms
//! G3  pthread_mutex_lock <- rarely <- worker <- main  102  10 (10 ms)   20        300 ms   20 ms
//! G4  nanosleep <- nap <- main  (command `napper`)    104               8         350 ms
//! G5  spin <- spinner <- main                         103  20 (20 ms)   10                 200 ms
//! ```
//! Totals: CPU 120 ms, blocked 750 ms, runnable 220 ms. By hand, self time:
//! - cpu: compute 60 (50%), pthread_mutex_lock 40 (33.33%), spin 20 (16.67%)
//! - off-cpu: pthread_mutex_lock 420 (43.30%), nanosleep 350 (36.08%), spin 200 (20.62%)
//! - wall: pthread_mutex_lock 460 (42.20%), nanosleep 350 (32.11%), spin 220 (20.18%), compute 60 (5.50%)
//! - blocked: pthread_mutex_lock 400 (53.33%), nanosleep 350 (46.67%)
//! - runnable: spin 200 (90.91%), pthread_mutex_lock 20 (9.09%)
//!
//! Callers of pthread_mutex_lock: in the CPU view often 30 (75%) before rarely 10 (25%); in the off-CPU view
//! rarely 320 (76.19%) before often 100 (23.81%).

use ratatui::crossterm::event::KeyCode;
use stacktop::cmd::top::recorded_status;
use stacktop::profile::{
    Function, Line, Location, LocationId, Mapping, Meta, OffCpuStats, Profile, TableMarks, Values,
    Weigh,
};
use stacktop::tui::app::Request;
use stacktop::tui::{App, Screen, Status, Update};

use crate::common::*;
use crate::top::{goldens, highlighted_symbol, press, screen, typed};

const APP: &str = "/usr/bin/app";
const LIBC: &str = "/usr/lib/x86_64-linux-gnu/libc.so.6";
const MS: u64 = 1_000_000;

fn meta() -> Meta {
    Meta {
        event: "cpu-clock".into(),
        period_unit: "nanoseconds".into(),
        frequency: 1000,
        call_graph: "hybrid".into(),
        off_cpu: OffCpuStats {
            enabled: true,
            ..OffCpuStats::default()
        },
        ..Meta::default()
    }
}

/// A one-line location of `name` in `module`.
fn loc(p: &mut Profile, module: &str, name: &str) -> LocationId {
    let path = p.intern(module);
    let mapping = p.add_mapping(Mapping {
        path,
        build_id: None,
        start: 0x40_0000,
        limit: 0x50_0000,
        offset: 0,
        kernel: false,
    });
    let name = p.intern(name);
    let function = p.add_function(Function { name, file: None });
    let address = 0x40_0000 + u64::from(name.0) * 0x100;
    p.add_location(Location {
        mapping: Some(mapping),
        address,
        lines: vec![Line { function, line: 0 }],
    })
}

fn values(cpu: u64, switches: u64, blocked_ms: u64, runnable_ms: u64) -> Values {
    Values {
        count: cpu,
        period: cpu * MS,
        switches,
        blocked: blocked_ms * MS,
        runnable: runnable_ms * MS,
        ..Values::default()
    }
}

/// The profile of the module comment.
pub fn profile() -> Profile {
    let mut p = Profile::new(meta());
    let [compute, often, rarely, worker, main, nap, spin, spinner] = [
        "compute", "often", "rarely", "worker", "main", "nap", "spin", "spinner",
    ]
    .map(|n| loc(&mut p, APP, n));
    let lock = loc(&mut p, LIBC, "pthread_mutex_lock");
    let nanosleep = loc(&mut p, LIBC, "nanosleep");
    let (app, napper) = (p.intern("app"), p.intern("napper"));
    p.add_sample_values(
        &[compute, often, worker, main],
        100,
        101,
        app,
        values(60, 0, 0, 0),
    );
    p.add_sample_values(
        &[lock, often, worker, main],
        100,
        101,
        app,
        values(30, 5, 100, 0),
    );
    p.add_sample_values(
        &[lock, rarely, worker, main],
        100,
        102,
        app,
        values(10, 20, 300, 20),
    );
    p.add_sample_values(
        &[nanosleep, nap, main],
        100,
        104,
        napper,
        values(0, 8, 350, 0),
    );
    p.add_sample_values(
        &[spin, spinner, main],
        100,
        103,
        app,
        values(20, 10, 0, 200),
    );
    p
}

fn app() -> App {
    let profile = profile();
    let mut status = recorded_status(&profile, "offcpu.pb.gz");
    status.samples_per_sec = 1000.0;
    App::frozen(profile, status)
}

/// The table's rows: symbol, self percentage rounded to 0.01, self weight in ms.
fn rows(app: &App) -> Vec<(String, f64, u64)> {
    app.rows
        .iter()
        .map(|r| {
            (
                r.symbol.clone(),
                (r.self_pct * 100.0).round() / 100.0,
                r.self_weight / MS,
            )
        })
        .collect()
}

fn row(name: &str, pct: f64, ms: u64) -> (String, f64, u64) {
    (name.to_owned(), pct, ms)
}

fn tree_rows(app: &App) -> Vec<(usize, String, f64)> {
    match app.screens.last() {
        Some(Screen::Tree(t)) => t
            .rows
            .iter()
            .map(|r| {
                (
                    r.depth,
                    r.symbol.clone(),
                    (r.of_function * 100.0).round() / 100.0,
                )
            })
            .collect(),
        other => panic!("no tree open: {other:?}"),
    }
}

/// `w` goes CPU -> off-CPU -> wall -> CPU; each view's table has the rows, order, percentages and times the
/// values dictate, and the header names the view and the totals of each kind.
pub fn w_cycles_the_views_and_the_table_follows() {
    let mut app = app();
    assert_eq!(app.view(), Weigh::Cpu);
    assert_eq!(
        rows(&app),
        [
            row("compute", 50.0, 60),
            row("pthread_mutex_lock", 33.33, 40),
            row("spin", 16.67, 20)
        ]
    );
    let s = screen(&mut app, 80, 24);
    let header = s.lines().nth(3).unwrap_or_default();
    assert_eq!(
        header, "view: cpu  cpu 120 ms  blocked 750 ms  runnable 220 ms  (w: next view)",
        "{s}"
    );
    // The CPU view's table is as before: no time columns.
    assert!(!s.contains("time"), "{s}");

    press(&mut app, &[KeyCode::Char('w')]);
    assert_eq!(app.view(), Weigh::OffCpu);
    assert_eq!(
        rows(&app),
        [
            row("pthread_mutex_lock", 43.3, 420),
            row("nanosleep", 36.08, 350),
            row("spin", 20.62, 200)
        ]
    );
    // The projection the screens read weighs off-CPU nanoseconds.
    assert_eq!(app.profile().total_period(), 970 * MS);
    let s = screen(&mut app, 80, 24);
    assert!(
        s.lines()
            .nth(3)
            .is_some_and(|l| l.starts_with("view: off-cpu  cpu 120 ms  blocked 750 ms")),
        "{s}"
    );
    assert!(
        s.lines()
            .any(|l| l.starts_with(" 43.30%   420 ms  43.30%   420 ms app")
                && l.ends_with("[.] pthread_mutex_lock")),
        "{s}"
    );
    assert_eq!(highlighted_symbol(&mut app), "pthread_mutex_lock");
    goldens("offcpu-table", &mut app);

    press(&mut app, &[KeyCode::Char('w')]);
    assert_eq!(app.view(), Weigh::Wall);
    assert_eq!(
        rows(&app),
        [
            row("pthread_mutex_lock", 42.2, 460),
            row("nanosleep", 32.11, 350),
            row("spin", 20.18, 220),
            row("compute", 5.5, 60)
        ]
    );
    assert!(screen(&mut app, 80, 24)
        .lines()
        .nth(3)
        .is_some_and(|l| l.starts_with("view: wall ")));

    press(&mut app, &[KeyCode::Char('w')]);
    assert_eq!(app.view(), Weigh::Cpu);
    assert_eq!(rows(&app)[0], row("compute", 50.0, 60));

    // --weight blocked / runnable start in those views; `w` goes on to wall.
    let mut app = self::app();
    app.start_view(Weigh::Blocked);
    assert_eq!(
        rows(&app),
        [
            row("pthread_mutex_lock", 53.33, 400),
            row("nanosleep", 46.67, 350)
        ]
    );
    app.start_view(Weigh::Runnable);
    assert_eq!(
        rows(&app),
        [row("spin", 90.91, 200), row("pthread_mutex_lock", 9.09, 20)]
    );
    assert!(screen(&mut app, 80, 24)
        .lines()
        .nth(3)
        .is_some_and(|l| l.starts_with("view: runnable ")));
    press(&mut app, &[KeyCode::Char('w')]);
    assert_eq!(app.view(), Weigh::Wall);
}

/// The callers tree of pthread_mutex_lock lists its callers in the view's order: often before rarely by CPU
/// samples, rarely before often by off-CPU time; an open tree follows `w`, and so does annotate.
pub fn callers_and_annotate_follow_the_view() {
    let mut app = app();
    press(&mut app, &[KeyCode::Char('/')]);
    typed(&mut app, "^pthread_mutex_lock$");
    press(&mut app, &[KeyCode::Enter, KeyCode::Enter]);
    assert_eq!(
        tree_rows(&app),
        [
            (0, "pthread_mutex_lock".to_owned(), 100.0),
            (1, "often".to_owned(), 75.0),
            (1, "rarely".to_owned(), 25.0)
        ]
    );
    assert!(screen(&mut app, 80, 24).contains("33.33% of all samples"));

    // `w` with the tree open: the same tree, weighed by off-CPU time.
    press(&mut app, &[KeyCode::Char('w')]);
    assert_eq!(
        tree_rows(&app),
        [
            (0, "pthread_mutex_lock".to_owned(), 100.0),
            (1, "rarely".to_owned(), 76.19),
            (1, "often".to_owned(), 23.81)
        ]
    );
    let s = screen(&mut app, 80, 24);
    assert!(
        s.contains("callers of pthread_mutex_lock (libc.so.6)  43.30% of all off-cpu time, 420 ms"),
        "{s}"
    );
    assert!(
        s.lines()
            .any(|l| l.starts_with(" 76.19%   32.99%    320 ms   + rarely  app")),
        "{s}"
    );
    // Expanded one level further: the callers' callers.
    press(&mut app, &[KeyCode::Down, KeyCode::Right]);
    goldens("offcpu-callers", &mut app);

    // Opened in the off-CPU view, from the table: the same order.
    press(&mut app, &[KeyCode::Esc, KeyCode::Enter]);
    assert_eq!(tree_rows(&app)[1], (1, "rarely".to_owned(), 76.19));
    // Callees of main in the off-CPU view: worker 420, nap 350, spinner 200.
    press(&mut app, &[KeyCode::Esc, KeyCode::Char('/')]);
    for _ in 0.."^pthread_mutex_lock$".len() {
        press(&mut app, &[KeyCode::Backspace]);
    }
    press(&mut app, &[KeyCode::Enter]);
    press(&mut app, &[KeyCode::Char('s')]);
    assert_eq!(app.rows[0].symbol, "main");
    assert_eq!(app.rows[0].total_weight, 620 * MS);
    press(&mut app, &[KeyCode::Enter, KeyCode::Char('c')]);
    let callees: Vec<String> = tree_rows(&app).into_iter().map(|r| r.1).collect();
    assert_eq!(callees, ["main", "worker", "nap", "spinner"]);
    press(&mut app, &[KeyCode::Esc]);

    // Annotate: the annotator gets the profile weighed in the view; `w` asks again for the open screen, and an
    // answer for the view left behind is dropped.
    press(
        &mut app,
        &[
            KeyCode::Char('s'),
            KeyCode::Char('s'),
            KeyCode::Char('s'),
            KeyCode::Char('s'),
        ],
    );
    assert_eq!(app.selected_row().unwrap().symbol, "pthread_mutex_lock");
    app.requests.clear();
    press(&mut app, &[KeyCode::Char('a')]);
    assert_eq!(app.requests.len(), 1);
    assert_eq!(app.profile().total_period(), 970 * MS);
    app.requests.clear();
    press(&mut app, &[KeyCode::Char('w')]);
    let Some(Request::Annotate(func)) = app.requests.first().cloned() else {
        panic!("no new annotate request: {:?}", app.requests);
    };
    assert_eq!(func.name, "pthread_mutex_lock");
    assert_eq!(app.view(), Weigh::Wall);
    assert_eq!(app.profile().total_period(), 1090 * MS);
    app.annotated_in(Weigh::OffCpu, &func, Err("stale".into()));
    let Some(Screen::Annotate(view)) = app.screens.last() else {
        panic!("no annotate screen");
    };
    assert_eq!(view.result, None, "an answer of the off-CPU view was taken");
    app.annotated_in(Weigh::Wall, &func, Err("no file".into()));
    let s = screen(&mut app, 80, 24);
    assert!(
        s.contains("annotate pthread_mutex_lock (libc.so.6)  shares of wall time"),
        "{s}"
    );
}

/// Sorting, filters, limits and the selection's rule work the same in a view of time: a `w` shows the
/// table from the top with the top row selected; a thread that only waited is found by `t` in every view.
pub fn sort_filter_limit_and_selection_in_a_time_view() {
    let mut app = app();
    press(&mut app, &[KeyCode::Char('w'), KeyCode::Down]);
    assert_eq!(highlighted_symbol(&mut app), "nanosleep");
    // Sorted by total (rows are per command): app's main (620 ms), pthread_mutex_lock and worker (420 ms,
    // by name), napper's nanosleep, nap and main (350 ms)...
    press(&mut app, &[KeyCode::Char('s')]);
    assert_eq!(highlighted_symbol(&mut app), "main");
    let totals: Vec<(&str, &str, u64)> = app
        .rows
        .iter()
        .map(|r| (r.comm.as_str(), r.symbol.as_str(), r.total_weight / MS))
        .take(4)
        .collect();
    assert_eq!(
        totals,
        [
            ("app", "main", 620),
            ("app", "pthread_mutex_lock", 420),
            ("app", "worker", 420),
            ("napper", "nanosleep", 350)
        ]
    );
    press(&mut app, &[KeyCode::Char('s')]);
    let s = screen(&mut app, 80, 24);
    assert!(s.contains("Command*"), "{s}");
    for _ in 0..3 {
        press(&mut app, &[KeyCode::Char('s')]);
    }
    // Moved, then another view: the top row of the new view is selected.
    press(&mut app, &[KeyCode::End]);
    assert_eq!(highlighted_symbol(&mut app), "spin");
    press(&mut app, &[KeyCode::Char('w')]);
    assert_eq!(app.view(), Weigh::Wall);
    assert_eq!(highlighted_symbol(&mut app), "pthread_mutex_lock");
    assert!(!app.follow);
    // A filter in the wall view.
    press(&mut app, &[KeyCode::Char('/')]);
    typed(&mut app, "^(spin|compute)$");
    press(&mut app, &[KeyCode::Enter]);
    assert_eq!(
        rows(&app),
        [row("spin", 20.18, 220), row("compute", 5.5, 60)]
    );
    press(&mut app, &[KeyCode::Char('/')]);
    for _ in 0.."^(spin|compute)$".len() {
        press(&mut app, &[KeyCode::Backspace]);
    }
    press(&mut app, &[KeyCode::Enter, KeyCode::Char('w')]);
    assert_eq!(app.view(), Weigh::Cpu);

    // `t napper` in the CPU view, where that thread has no sample: still its command name, not a process's.
    press(&mut app, &[KeyCode::Char('t')]);
    for _ in 0..10 {
        press(&mut app, &[KeyCode::Backspace]);
    }
    typed(&mut app, "napper");
    press(&mut app, &[KeyCode::Enter]);
    assert_eq!(
        app.limit,
        Some(stacktop::tui::Limit::Comm("napper".to_owned()))
    );
    assert!(app.rows.is_empty());
    assert!(screen(&mut app, 80, 24).contains("no samples match"));
    press(&mut app, &[KeyCode::Char('w')]);
    assert_eq!(rows(&app), [row("nanosleep", 100.0, 350)]);
    // The module limit (`d`) in the off-CPU view.
    press(&mut app, &[KeyCode::Char('t')]);
    for _ in 0..10 {
        press(&mut app, &[KeyCode::Backspace]);
    }
    press(
        &mut app,
        &[KeyCode::Enter, KeyCode::Down, KeyCode::Char('d')],
    );
    assert_eq!(app.module_limit.as_deref(), Some(LIBC));
    assert_eq!(
        rows(&app),
        [
            row("pthread_mutex_lock", 43.3, 420),
            row("nanosleep", 36.08, 350)
        ]
    );
    // Paging: a page is the rows on screen, the view line included in the header.
    assert_eq!(stacktop::tui::view::page_rows(&app, 80, 24), 17);
}

/// Updates as the live sampler sends them, with off-CPU time: each call adds the named one-frame stacks.
struct Feed {
    store: Profile,
    marks: TableMarks,
}

impl Feed {
    fn new(off_cpu: bool) -> Feed {
        let mut meta = meta();
        meta.off_cpu.enabled = off_cpu;
        Feed {
            store: Profile::new(meta),
            marks: TableMarks::default(),
        }
    }

    fn update(&mut self, samples: &[(&str, Values)]) -> Update {
        for &(name, v) in samples {
            let location = loc(&mut self.store, APP, name);
            let comm = self.store.intern("w");
            self.store.add_sample_values(&[location], 1, 1, comm, v);
        }
        Update {
            delta: self.store.take_delta(&mut self.marks, &[], Vec::new()),
            status: Status {
                samples: 1,
                ..Status::default()
            },
        }
    }
}

/// Live: the off-CPU view's times decay as the CPU view's samples do (7/8 per refresh) and add up in the
/// cumulative mode; the selection stays on the top row as rows reorder until moved.
pub fn live_off_cpu_times_decay_and_accumulate() {
    let mut feed = Feed::new(true);
    let mut app = App::live(Status::default());
    app.start_view(Weigh::OffCpu);
    app.update(feed.update(&[
        ("wait_a", values(0, 1, 100, 0)),
        ("run", values(50, 0, 0, 0)),
    ]));
    assert_eq!(app.view(), Weigh::OffCpu);
    assert_eq!(rows(&app), [row("wait_a", 100.0, 100)]);
    app.update(feed.update(&[("wait_b", values(0, 1, 400, 0))]));
    // wait_a decayed to 87.5 ms.
    assert_eq!(
        rows(&app),
        [row("wait_b", 82.05, 400), row("wait_a", 17.95, 87)]
    );
    assert_eq!(highlighted_symbol(&mut app), "wait_b");
    let s = screen(&mut app, 80, 24);
    assert!(s.contains("87.5 ms"), "{s}");
    assert!(s.contains("[decaying]"), "{s}");
    // Moved to wait_a: it stays selected as it climbs.
    press(&mut app, &[KeyCode::Down]);
    app.update(feed.update(&[("wait_a", values(0, 1, 2000, 0))]));
    assert_eq!(app.rows[0].symbol, "wait_a");
    assert_eq!(highlighted_symbol(&mut app), "wait_a");
    // Cumulative: every millisecond.
    press(&mut app, &[KeyCode::Char('z')]);
    assert_eq!(
        rows(&app),
        [row("wait_a", 84.0, 2100), row("wait_b", 16.0, 400)]
    );
    assert!(screen(&mut app, 80, 24).lines().nth(3).is_some_and(
        |l| l.starts_with("view: off-cpu  cpu 50.0 ms  blocked 2.50 s  runnable 0.00 ms")
    ));
    // Many refreshes later, a wait that stopped has decayed away from the decaying sums, not from the
    // cumulative ones.
    press(&mut app, &[KeyCode::Char('z')]);
    for _ in 0..200 {
        app.update(feed.update(&[("wait_b", values(0, 1, 10, 0))]));
    }
    assert_eq!(app.rows.len(), 1, "{:?}", rows(&app));
    press(&mut app, &[KeyCode::Char('z')]);
    assert_eq!(app.rows.len(), 2);
}

/// A session without off-CPU time: `w` says off-CPU recording is off and how to turn it on, and the CPU
/// table stays (no empty table); `--weight off-cpu` falls back to CPU with the same message once known.
pub fn without_off_cpu_w_says_how_to_record_it() {
    let mut app = {
        let profile = crate::render::profile();
        let status = recorded_status(&profile, "app.pb.gz");
        App::frozen(profile, status)
    };
    let before = app.rows.clone();
    let header = |app: &mut App| {
        screen(app, 80, 24)
            .lines()
            .nth(3)
            .unwrap_or_default()
            .to_owned()
    };
    assert!(header(&mut app).contains("Self"), "no view line");
    press(&mut app, &[KeyCode::Char('w')]);
    assert_eq!(app.view(), Weigh::Cpu);
    assert_eq!(app.rows, before);
    let message =
        "no off-CPU time in this profile: record with --off-cpu to weigh off-CPU or wall time";
    assert_eq!(app.message.as_deref(), Some(message));
    let s = screen(&mut app, 120, 40);
    assert_eq!(s.lines().nth(39), Some(message), "{s}");
    assert!(s.contains("[.] c"), "{s}");
    // The next key clears it.
    press(&mut app, &[KeyCode::Down]);
    assert_eq!(app.message, None);

    // Live, recording without off-CPU.
    let live_message =
        "off-CPU recording is off: start top with --off-cpu to weigh off-CPU or wall time";
    let mut feed = Feed::new(false);
    let mut app = App::live(Status::default());
    app.update(feed.update(&[("run", values(10, 0, 0, 0))]));
    press(&mut app, &[KeyCode::Char('w')]);
    assert_eq!(app.view(), Weigh::Cpu);
    assert_eq!(app.message.as_deref(), Some(live_message));
    assert!(live_message.len() <= 80);
    assert_eq!(rows(&app), [row("run", 100.0, 10)]);

    // `--weight off-cpu`: the live view waits for the first update to know.
    let mut feed = Feed::new(false);
    let mut app = App::live(Status::default());
    app.start_view(Weigh::OffCpu);
    assert_eq!(app.view(), Weigh::OffCpu);
    assert!(screen(&mut app, 80, 24).contains("waiting for samples..."));
    app.update(feed.update(&[("run", values(10, 0, 0, 0))]));
    assert_eq!(app.view(), Weigh::Cpu);
    assert_eq!(app.message.as_deref(), Some(live_message));
    assert_eq!(app.rows.len(), 1);
    // A recorded profile without any: at once.
    let profile = crate::render::profile();
    let status = recorded_status(&profile, "app.pb.gz");
    let mut app = App::frozen(profile, status);
    app.start_view(Weigh::Wall);
    assert_eq!(app.view(), Weigh::Cpu);
    assert_eq!(app.message.as_deref(), Some(message));

    // Off-CPU recording on but no time yet: the view is there, its table says so.
    let mut feed = Feed::new(true);
    let mut app = App::live(Status::default());
    app.update(feed.update(&[("run", values(10, 0, 0, 0))]));
    press(&mut app, &[KeyCode::Char('w')]);
    assert_eq!(app.view(), Weigh::OffCpu);
    assert_eq!(app.message, None);
    assert!(screen(&mut app, 80, 24).contains("no off-CPU time matches"));
}

/// `top --weight` takes the views' names, and says which it takes.
pub fn weight_option_is_checked() {
    let out = stacktop(&["top", "--weight", "idle", "-i", "none.pb.gz"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "unknown weight `idle` (expected cpu, off-cpu, blocked, runnable, wall, lock-wait or lock-hold)"
        ),
        "{stderr}"
    );
    let help = stdout_of(&mut stacktop(&["top", "--help"]));
    assert!(
        help.contains("--weight <cpu|off-cpu|blocked|runnable|wall|lock-wait|lock-hold>"),
        "{help}"
    );
    assert!(help.contains("weigh CPU -> off-CPU -> wall time"), "{help}");
}

crate::tests![
    w_cycles_the_views_and_the_table_follows,
    callers_and_annotate_follow_the_view,
    sort_filter_limit_and_selection_in_a_time_view,
    live_off_cpu_times_decay_and_accumulate,
    without_off_cpu_w_says_how_to_record_it,
    weight_option_is_checked,
];
