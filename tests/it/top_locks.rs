//! `stacktop top`'s locks screens (`L`, Enter on a lock, Tab) and its lock views (`w`): screens drawn into
//! ratatui's `TestBackend` from a hand-built profile with lock waits (golden files `tests/golden/top-lock*.txt`,
//! `STACKTOP_BLESS=1` rewrites them), live updates carrying waits, and the real binary in tmux, on a recorded
//! profile and live on a contended C workload.
//!
//! The profile (innermost frame first; command `locks_table`, pid 7; cpu-clock, 1 ms per sample):
//! ```text
//! lock        side    stack                                                           tid  waits  time
//! table_lock  waiter  __lll_lock_wait <- pthread_mutex_lock <- reader_often <- worker     8  3      30 ms
//! table_lock  waiter  __lll_lock_wait <- pthread_mutex_lock <- reader_often <- worker     9  3      30 ms
//! table_lock  waiter  __lll_lock_wait <- pthread_mutex_lock <- reader_rarely <- worker  10  1      20 ms
//! table_lock  holder  __lll_lock_wake <- pthread_mutex_unlock <- slow_update <- worker  11  6      60 ms
//! table_lock  holder  __lll_lock_wake <- pthread_mutex_unlock <- fast_lookup <- worker  12  1      15 ms
//! 0x55550000  waiter  __lll_lock_wait <- pthread_mutex_lock <- worker                    8  2       4 ms
//! CPU         slow_update <- worker (tid 11) 30 samples; reader_often <- worker (tid 8) 10 samples
//! off-CPU     pthread_mutex_lock <- reader_often <- worker (tid 8): 6 switch-outs, 60 ms blocked
//! ```
//! (every stack ends in `worker <- start_thread`). By hand: table_lock 7 waits, 80 ms, longest 20 ms (the one
//! wait of reader_rarely), 3 threads, 75 ms caused (5 ms of waits with no release seen); its waiters
//! reader_often 75%, reader_rarely 25%; its holders slow_update 80%, fast_lookup 20%. The heap lock: 2 waits,
//! 4 ms, longest 3 ms, 1 thread, named by its first waiter's callers. In all: 9 waits, 84 ms, 75 ms caused.

use std::time::Duration;

use ratatui::crossterm::event::KeyCode;
use stacktop::cmd::top::recorded_status;
use stacktop::profile::{
    Function, Line, LocationId, LockStats, Mapping, Meta, OffCpuStats, Profile, TableMarks, Values,
    Weigh,
};
use stacktop::tui::app::Side;
use stacktop::tui::{App, Screen, Status, Update};

use crate::common::*;
use crate::top::{caller_row, first_row, goldens, press, screen, typed, Tmux};

const APP: &str = "/usr/bin/locks_table";
const LIBC: &str = "/usr/lib/x86_64-linux-gnu/libc.so.6";
const MS: u64 = 1_000_000;

fn meta(off_cpu: bool) -> Meta {
    Meta {
        event: "cpu-clock".into(),
        period_unit: "nanoseconds".into(),
        frequency: 1000,
        call_graph: "hybrid".into(),
        off_cpu: OffCpuStats {
            enabled: off_cpu,
            ..OffCpuStats::default()
        },
        locks: LockStats {
            enabled: true,
            probes: vec![format!("glibc: __lll_lock_wait, __lll_lock_wake in {LIBC}")],
            ..LockStats::default()
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
    p.add_location(stacktop::profile::Location {
        mapping: Some(mapping),
        address,
        lines: vec![Line { function, line: 0 }],
    })
}

/// The profile of the module comment; its off-CPU group and `meta.off_cpu` only with `off_cpu`.
pub fn profile(off_cpu: bool) -> Profile {
    let mut p = Profile::new(meta(off_cpu));
    let [often, rarely, slow, fast, worker] = [
        "reader_often",
        "reader_rarely",
        "slow_update",
        "fast_lookup",
        "worker",
    ]
    .map(|n| loc(&mut p, APP, n));
    let [wait, lock, wake, unlock, start] = [
        "__lll_lock_wait",
        "pthread_mutex_lock",
        "__lll_lock_wake",
        "pthread_mutex_unlock",
        "start_thread",
    ]
    .map(|n| loc(&mut p, LIBC, n));
    let comm = p.intern("locks_table");
    let table = p.add_lock(7, 0x4040);
    p.set_lock_symbol(table, "table_lock", Some(APP));
    let heap = p.add_lock(7, 0x5555_0000);
    for (tid, caller, waits, ms) in [(8, often, 3, 10), (9, often, 3, 10), (10, rarely, 1, 20)] {
        for _ in 0..waits {
            p.add_lock_wait(
                &[wait, lock, caller, worker, start],
                (7, tid, comm),
                table,
                ms * MS,
            );
        }
    }
    for (tid, holder, holds, ms) in [(11, slow, 6, 10), (12, fast, 1, 15)] {
        for _ in 0..holds {
            p.add_lock_hold(
                &[wake, unlock, holder, worker, start],
                (7, tid, comm),
                table,
                ms * MS,
            );
        }
    }
    for ms in [3, 1] {
        p.add_lock_wait(&[wait, lock, worker, start], (7, 8, comm), heap, ms * MS);
    }
    p.add_sample(&[slow, worker, start], 7, 11, comm, 30, 30 * MS);
    p.add_sample(&[often, worker, start], 7, 8, comm, 10, 10 * MS);
    if off_cpu {
        let blocked = Values {
            switches: 6,
            blocked: 60 * MS,
            ..Values::default()
        };
        p.add_sample_values(&[lock, often, worker, start], 7, 8, comm, blocked);
    }
    p
}

fn app(off_cpu: bool) -> App {
    let profile = profile(off_cpu);
    let mut status = recorded_status(&profile, "locks.pb.gz");
    status.samples_per_sec = 1000.0;
    App::frozen(profile, status)
}

/// The locks table: name, waits, wait in ms, longest in ms, threads, caused in ms.
fn lock_rows(app: &App) -> Vec<(String, u64, u64, u64, usize, u64)> {
    app.lock_rows
        .iter()
        .map(|r| {
            (
                r.name.clone(),
                r.contentions,
                r.delay / MS,
                r.longest / MS,
                r.threads,
                r.caused_delay / MS,
            )
        })
        .collect()
}

/// One side's tree of the open lock screen: depth, symbol, share of the side rounded to 0.01.
fn side_rows(app: &App, side: Side) -> Vec<(usize, String, f64)> {
    match app.screens.last() {
        Some(Screen::Lock(view)) => view
            .tree(side)
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
        other => panic!("no lock screen open: {other:?}"),
    }
}

fn node(depth: usize, name: &str, pct: f64) -> (usize, String, f64) {
    (depth, name.to_owned(), pct)
}

/// The function table's rows: symbol, self percentage rounded to 0.01, self weight in ms.
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

fn highlighted(app: &mut App) -> Vec<String> {
    let (_, lines) = crate::top::screen_and_highlight(app, 100, 30);
    lines
}

/// `L` lists the locks most waited-for first, a global by its symbol and module, a heap lock by its address
/// and the callers of its first wait, with the figures the waits dictate; the header adds the lock totals.
/// `s` sorts by the next column, the selection follows a lock once moved, `L` goes back.
pub fn locks_table_ranks_and_names_the_locks() {
    let mut app = app(true);
    let s = screen(&mut app, 80, 24);
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(
        lines[3], "view: cpu  cpu 40.0 ms  blocked 60.0 ms  runnable 0.00 ms  (w: next view)",
        "{s}"
    );
    assert_eq!(
        lines[4], "locks: 9 waits  84.0 ms waited  75.0 ms caused by holders  (L: locks)",
        "{s}"
    );
    assert!(s.contains("L locks"), "no hint of the key:\n{s}");
    // The CPU table: no row of the lock waits' stacks, which hold no CPU sample.
    assert_eq!(
        rows(&app),
        [
            ("slow_update".to_owned(), 75.0, 30),
            ("reader_often".to_owned(), 25.0, 10)
        ]
    );

    press(&mut app, &[KeyCode::Char('L')]);
    assert!(matches!(app.screens.last(), Some(Screen::Locks(_))));
    let table = ("table_lock [locks_table]".to_owned(), 7, 80, 20, 3, 75);
    let heap = (
        "0x55550000 (first: worker <- start_thread)".to_owned(),
        2,
        4,
        3,
        1,
        0,
    );
    assert_eq!(lock_rows(&app), [table.clone(), heap.clone()]);
    let s = screen(&mut app, 80, 24);
    assert!(
        s.lines()
            .any(|l| l == "80.0 ms        7  20.0 ms        3  75.0 ms  table_lock [locks_table]"),
        "{s}"
    );
    assert!(s.contains("   Wait*   Waits"), "{s}");
    assert_eq!(highlighted(&mut app).len(), 1);
    assert!(highlighted(&mut app)[0].ends_with("table_lock [locks_table]"));
    goldens("locks-table", &mut app);

    // Moved to the heap lock: it stays selected when the sort puts it elsewhere... until `s` goes back to
    // the top row, as the function table's `s` does.
    press(&mut app, &[KeyCode::Down]);
    assert_eq!(app.selected_lock().map(|r| r.threads), Some(1));
    press(&mut app, &[KeyCode::Char('s')]);
    assert_eq!(app.lock_sort.name(), "waits");
    assert_eq!(lock_rows(&app)[0], table);
    assert!(highlighted(&mut app)[0].ends_with("table_lock [locks_table]"));
    for _ in 0..4 {
        press(&mut app, &[KeyCode::Char('s')]);
    }
    // By name: the address sorts before the symbol.
    assert_eq!(app.lock_sort.name(), "lock");
    assert_eq!(lock_rows(&app), [heap, table]);
    assert!(screen(&mut app, 80, 24).contains("Lock*"));
    press(&mut app, &[KeyCode::Char('s')]);
    assert_eq!(app.lock_sort.name(), "wait");

    // `t` limits the locks to a thread's waits: tid 10 waited for table_lock only, once, 20 ms.
    press(&mut app, &[KeyCode::Char('t')]);
    for _ in 0.."locks_table".len() {
        press(&mut app, &[KeyCode::Backspace]);
    }
    typed(&mut app, "10");
    press(&mut app, &[KeyCode::Enter]);
    assert_eq!(
        lock_rows(&app),
        [("table_lock [locks_table]".to_owned(), 1, 20, 20, 1, 0)]
    );
    press(&mut app, &[KeyCode::Char('t')]);
    for _ in 0..2 {
        press(&mut app, &[KeyCode::Backspace]);
    }
    press(&mut app, &[KeyCode::Enter]);
    assert_eq!(app.lock_rows.len(), 2);

    // `L` again: back to the function table.
    press(&mut app, &[KeyCode::Char('L')]);
    assert!(app.screens.is_empty());
}

/// Enter on a lock: its waiters' callers weighed by their wait above its holders' weighed by the wait they
/// caused, whatever the table weighs; the chains of single callers open by themselves down to the callers
/// that tell the waiters apart; Tab moves the keys to the other tree.
pub fn a_lock_shows_its_waiters_and_holders() {
    let mut app = app(true);
    press(&mut app, &[KeyCode::Char('L'), KeyCode::Enter]);
    let waiters = [
        node(0, "__lll_lock_wait", 100.0),
        node(1, "pthread_mutex_lock", 100.0),
        node(2, "reader_often", 75.0),
        node(2, "reader_rarely", 25.0),
    ];
    let holders = [
        node(0, "__lll_lock_wake", 100.0),
        node(1, "pthread_mutex_unlock", 100.0),
        node(2, "slow_update", 80.0),
        node(2, "fast_lookup", 20.0),
    ];
    assert_eq!(side_rows(&app, Side::Waiters), waiters);
    assert_eq!(side_rows(&app, Side::Holders), holders);
    let s = screen(&mut app, 80, 24);
    assert!(
        s.contains("lock table_lock [locks_table]  7 waits  80.0 ms  longest 20.0 ms  3 threads"),
        "{s}"
    );
    assert!(
        s.contains("> waiters, weighed by their wait  80.0 ms"),
        "{s}"
    );
    assert!(
        s.contains("  holders (released it to a waiter), weighed by the wait they caused  75.0 ms"),
        "{s}"
    );
    assert!(
        s.lines()
            .any(|l| l == " 75.00%   60.0 ms     + reader_often  locks_table"),
        "{s}"
    );
    // One selection, in the waiters' tree.
    let lit = highlighted(&mut app);
    assert!(
        lit.len() == 1 && lit[0].contains("__lll_lock_wait"),
        "{lit:?}"
    );
    goldens("lock", &mut app);

    // Expanding reader_often shows its caller; the tree keeps what the user opened.
    press(&mut app, &[KeyCode::Down, KeyCode::Down, KeyCode::Right]);
    assert_eq!(side_rows(&app, Side::Waiters)[3], node(3, "worker", 75.0));
    // `c` does not turn a lock's tree into callees; `a` says where annotate is.
    press(&mut app, &[KeyCode::Char('c')]);
    assert_eq!(side_rows(&app, Side::Waiters).len(), 5);
    press(&mut app, &[KeyCode::Char('a')]);
    assert!(app
        .message
        .as_deref()
        .is_some_and(|m| m.contains("annotate from the function table")));
    assert!(app.requests.is_empty());

    // Tab: the holders' tree takes the keys.
    press(&mut app, &[KeyCode::Tab, KeyCode::Down, KeyCode::Down]);
    let lit = highlighted(&mut app);
    assert!(lit.len() == 1 && lit[0].contains("slow_update"), "{lit:?}");
    press(&mut app, &[KeyCode::Right]);
    assert_eq!(side_rows(&app, Side::Holders)[3], node(3, "worker", 80.0));

    // `w` changes the table's view; the lock's trees keep theirs.
    press(&mut app, &[KeyCode::Char('w')]);
    assert_eq!(app.view(), Weigh::OffCpu);
    assert_eq!(
        side_rows(&app, Side::Holders)[2],
        node(2, "slow_update", 80.0)
    );
    assert_eq!(
        side_rows(&app, Side::Waiters)[2],
        node(2, "reader_often", 75.0)
    );

    // Esc: the locks table; the heap lock's trees: one chain of callers, and no holder seen.
    press(&mut app, &[KeyCode::Esc]);
    assert!(matches!(app.screens.last(), Some(Screen::Locks(_))));
    press(&mut app, &[KeyCode::Down, KeyCode::Enter]);
    assert_eq!(
        side_rows(&app, Side::Waiters),
        [
            node(0, "__lll_lock_wait", 100.0),
            node(1, "pthread_mutex_lock", 100.0),
            node(2, "worker", 100.0),
            node(3, "start_thread", 100.0)
        ]
    );
    assert!(side_rows(&app, Side::Holders).is_empty());
    let s = screen(&mut app, 80, 24);
    assert!(
        s.contains("no release of this lock seen before a wait ended"),
        "{s}"
    );
    assert!(
        s.contains("lock 0x55550000 (first: worker <- start_thread)  2 waits"),
        "{s}"
    );
    // `L` from a lock's screen: back to the locks table; Esc: the function table.
    press(&mut app, &[KeyCode::Char('L')]);
    assert!(matches!(app.screens.last(), Some(Screen::Locks(_))));
    press(&mut app, &[KeyCode::Esc]);
    assert!(app.screens.is_empty());
}

/// `w` goes on from wall to lock-wait and lock-hold in a session with locks: the function table weighs the
/// waits at the waiters' stacks, then at the holders'; its callers trees too. Without off-CPU time, `w` goes
/// straight from CPU to the lock views; `--weight lock-wait` starts there.
pub fn w_weighs_the_functions_by_lock_wait_and_hold() {
    let mut app = app(true);
    press(&mut app, &[KeyCode::Char('w'), KeyCode::Char('w')]);
    assert_eq!(app.view(), Weigh::Wall);
    press(&mut app, &[KeyCode::Char('w')]);
    assert_eq!(app.view(), Weigh::LockWait);
    assert_eq!(rows(&app), [("__lll_lock_wait".to_owned(), 100.0, 84)]);
    let s = screen(&mut app, 80, 24);
    assert!(
        s.lines()
            .nth(3)
            .is_some_and(|l| l.starts_with("view: lock-wait  cpu 40.0 ms  blocked 60.0 ms")),
        "{s}"
    );
    // The callers of pthread_mutex_lock by lock wait: every lock's.
    press(&mut app, &[KeyCode::Char('/')]);
    typed(&mut app, "^pthread_mutex_lock$");
    press(&mut app, &[KeyCode::Enter, KeyCode::Char('s')]);
    press(&mut app, &[KeyCode::Enter]);
    let Some(Screen::Tree(tree)) = app.screens.last() else {
        panic!("no tree");
    };
    let callers: Vec<(String, f64)> = tree
        .rows
        .iter()
        .skip(1)
        .map(|r| (r.symbol.clone(), (r.of_function * 100.0).round() / 100.0))
        .collect();
    assert_eq!(
        callers,
        [
            ("reader_often".to_owned(), 71.43),
            ("reader_rarely".to_owned(), 23.81),
            ("worker".to_owned(), 4.76)
        ]
    );
    let s = screen(&mut app, 120, 40);
    assert!(s.contains("100.00% of all lock-wait time, 84.0 ms"), "{s}");
    press(&mut app, &[KeyCode::Esc, KeyCode::Char('/')]);
    for _ in 0.."^pthread_mutex_lock$".len() {
        press(&mut app, &[KeyCode::Backspace]);
    }
    press(
        &mut app,
        &[KeyCode::Enter, KeyCode::Char('s'), KeyCode::Char('s')],
    );
    press(&mut app, &[KeyCode::Char('s'), KeyCode::Char('s')]);
    press(&mut app, &[KeyCode::Char('w')]);
    assert_eq!(app.view(), Weigh::LockHold);
    assert_eq!(rows(&app), [("__lll_lock_wake".to_owned(), 100.0, 75)]);
    press(&mut app, &[KeyCode::Char('w')]);
    assert_eq!(app.view(), Weigh::Cpu);

    // No off-CPU time: CPU, lock wait, lock hold.
    let mut app = self::app(false);
    let s = screen(&mut app, 80, 24);
    assert_eq!(
        s.lines().nth(3),
        Some("view: cpu  cpu 40.0 ms  (w: next view)"),
        "{s}"
    );
    for view in [Weigh::LockWait, Weigh::LockHold, Weigh::Cpu] {
        press(&mut app, &[KeyCode::Char('w')]);
        assert_eq!(app.view(), view);
        assert_eq!(app.message, None);
    }
    app.start_view(Weigh::LockWait);
    assert_eq!(app.view(), Weigh::LockWait);
    assert_eq!(rows(&app), [("__lll_lock_wait".to_owned(), 100.0, 84)]);

    // A profile without locks: `--weight lock-hold` falls back to CPU, saying how to record locks.
    let profile = crate::render::profile();
    let status = recorded_status(&profile, "app.pb.gz");
    let mut app = App::frozen(profile, status);
    app.start_view(Weigh::LockHold);
    assert_eq!(app.view(), Weigh::Cpu);
    assert_eq!(
        app.message.as_deref(),
        Some("no lock waits in this profile: record with --locks to see lock contention")
    );
}

/// Without lock recording, `L` says how to get it and the screens stay; live, a locks table opened before
/// the first update closes with the same message once it is known that locks are not recorded. With lock
/// recording on and no wait yet, the table says so.
pub fn without_lock_recording_l_says_how_to_record_them() {
    let profile = crate::render::profile();
    let status = recorded_status(&profile, "app.pb.gz");
    let mut app = App::frozen(profile, status);
    let s = screen(&mut app, 80, 24);
    assert!(!s.contains("locks:") && !s.contains("L locks"), "{s}");
    press(&mut app, &[KeyCode::Char('L')]);
    assert!(app.screens.is_empty());
    assert_eq!(
        app.message.as_deref(),
        Some("no lock waits in this profile: record with --locks to see lock contention")
    );

    let live = "lock recording is off: start top with --locks to see lock contention";
    let mut feed = Feed::new(false);
    let mut app = App::live(Status::default());
    press(&mut app, &[KeyCode::Char('L')]);
    assert!(matches!(app.screens.last(), Some(Screen::Locks(_))));
    assert!(screen(&mut app, 80, 24).contains("waiting for samples..."));
    app.update(feed.update(&[]));
    assert!(app.screens.is_empty());
    assert_eq!(app.message.as_deref(), Some(live));
    press(&mut app, &[KeyCode::Char('L')]);
    assert!(app.screens.is_empty());
    assert_eq!(app.message.as_deref(), Some(live));
    assert!(live.len() <= 80);

    let mut feed = Feed::new(true);
    let mut app = App::live(Status::default());
    app.update(feed.update(&[]));
    press(&mut app, &[KeyCode::Char('L')]);
    let s = screen(&mut app, 80, 24);
    assert!(
        s.contains("no contended lock wait yet (a wait counts once it ends)"),
        "{s}"
    );
    assert!(
        s.contains("locks: 0 waits  0.00 ms waited  0.00 ms caused by holders"),
        "{s}"
    );
}

/// `top --help` lists the lock keys and views.
pub fn help_lists_the_lock_keys() {
    let help = stdout_of(&mut stacktop(&["top", "--help"]));
    for line in [
        "L            locks (top --locks); Enter: the waiters and holders",
        "Tab          waiters <-> holders (a lock's screen)",
        "weigh CPU -> off-CPU -> wall time -> lock wait, hold",
        "wall|lock-wait|lock-hold>",
    ] {
        assert!(help.contains(line), "no {line:?} in:\n{help}");
    }
}

/// A wait as the live sampler sends it: (lock address, caller, waiter tid, wait in ms, holder function).
type Wait = (u64, &'static str, u32, u64, &'static str);

/// Updates as the live sampler sends them, with lock waits: each call adds waits at
/// `__lll_lock_wait <- pthread_mutex_lock <- CALLER` and their holds at `__lll_lock_wake <- HOLDER`.
struct Feed {
    store: Profile,
    marks: TableMarks,
}

impl Feed {
    fn new(locks: bool) -> Feed {
        let mut meta = meta(false);
        meta.locks.enabled = locks;
        Feed {
            store: Profile::new(meta),
            marks: TableMarks::default(),
        }
    }

    fn update(&mut self, waits: &[Wait]) -> Update {
        let p = &mut self.store;
        let comm = p.intern("w");
        let wait = loc(p, LIBC, "__lll_lock_wait");
        let lock_fn = loc(p, LIBC, "pthread_mutex_lock");
        let wake = loc(p, LIBC, "__lll_lock_wake");
        for &(address, caller, tid, ms, holder) in waits {
            let lock = p.add_lock(1, address);
            let caller = loc(p, APP, caller);
            let holder = loc(p, APP, holder);
            p.add_lock_wait(&[wait, lock_fn, caller], (1, tid, comm), lock, ms * MS);
            p.add_lock_hold(&[wake, holder], (1, 99, comm), lock, ms * MS);
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

/// Live: the locks table's waits decay as the CPU view's samples do (7/8 per refresh) and add up in the
/// cumulative mode, a lock whose few waits decayed to none stays listed for its time, the selection follows
/// a lock once moved, and an open lock's trees follow the updates.
pub fn live_lock_waits_decay_and_accumulate() {
    let mut feed = Feed::new(true);
    let mut app = App::live(Status::default());
    press(&mut app, &[KeyCode::Char('L')]);
    app.update(feed.update(&[(0x10, "take_a", 2, 16, "hold_a")]));
    assert_eq!(
        lock_rows(&app),
        [("0x10 (first: take_a)".to_owned(), 1, 16, 16, 1, 16)]
    );
    app.update(feed.update(&[
        (0x20, "take_b", 3, 40, "hold_b"),
        (0x20, "take_b", 4, 40, "hold_b"),
    ]));
    // 0x10's one wait decayed to none (rounded down), its 16 ms to 14 ms: still listed, by its time.
    assert_eq!(
        lock_rows(&app),
        [
            ("0x20 (first: take_b)".to_owned(), 2, 80, 40, 2, 80),
            ("0x10 (first: take_a)".to_owned(), 0, 14, 16, 1, 14)
        ]
    );
    assert!(screen(&mut app, 80, 24).contains("[decaying]"));
    // Moved to 0x10: followed as it climbs back to the top.
    press(&mut app, &[KeyCode::Down]);
    app.update(feed.update(&[(0x10, "take_a2", 2, 500, "hold_a")]));
    assert!(lock_rows(&app)[0].0.starts_with("0x10"));
    assert!(app
        .selected_lock()
        .is_some_and(|r| r.name.starts_with("0x10")));
    // Its screen: take_a2's 500 ms against take_a's 12.25 ms.
    press(&mut app, &[KeyCode::Enter]);
    let waiters = side_rows(&app, Side::Waiters);
    assert_eq!(waiters[2].1, "take_a2");
    assert_eq!(waiters[3].1, "take_a");
    assert!(waiters[2].2 > 97.0, "{waiters:?}");
    // An update with a new caller and a new holder: the open trees show them.
    app.update(feed.update(&[(0x10, "take_c", 5, 2000, "hold_c")]));
    assert_eq!(side_rows(&app, Side::Waiters)[2].1, "take_c");
    let holders: Vec<String> = side_rows(&app, Side::Holders)
        .into_iter()
        .map(|r| r.1)
        .collect();
    assert_eq!(holders, ["__lll_lock_wake", "hold_c", "hold_a"]);
    // Cumulative: every wait, every millisecond.
    press(&mut app, &[KeyCode::Char('z'), KeyCode::Esc]);
    assert_eq!(
        lock_rows(&app),
        [
            ("0x10 (first: take_a)".to_owned(), 3, 2516, 2000, 2, 2516),
            ("0x20 (first: take_b)".to_owned(), 2, 80, 40, 2, 80)
        ]
    );
    assert!(screen(&mut app, 80, 24)
        .contains("locks: 5 waits  2.60 s waited  2.60 s caused by holders"));
    // Many refreshes later, 0x20 has decayed away from the decaying sums, not from the cumulative ones.
    press(&mut app, &[KeyCode::Char('z')]);
    for _ in 0..200 {
        app.update(feed.update(&[(0x10, "take_a", 2, 10, "hold_a")]));
    }
    assert_eq!(app.lock_rows.len(), 1, "{:?}", lock_rows(&app));
    press(&mut app, &[KeyCode::Char('z')]);
    assert_eq!(app.lock_rows.len(), 2);
}

/// The keys on a recorded profile with locks (the module comment's, written as pprof), in the real binary:
/// `L` lists table_lock first, Enter shows its waiters (reader_often before reader_rarely) and its holders
/// (slow_update before fast_lookup).
pub fn locks_of_a_recorded_profile_in_tmux() {
    if !tool_available("tmux") {
        return;
    }
    let file = scratch_file("top-locks.pb.gz");
    stacktop::format::pprof::write_pprof_file(&profile(true), &file).unwrap();
    let command = format!("{} top -i {}; sleep 60", stacktop_bin(), file.display());
    let tmux = Tmux::start(&command);
    tmux.wait_for("the table", Duration::from_secs(20), |s| {
        first_row(s).is_some_and(|r| r.contains("slow_update"))
    });
    tmux.keys(&["L"]);
    let screen = tmux.wait_for("the locks table", Duration::from_secs(10), |s| {
        s.contains("locks waited for")
    });
    let rows: Vec<&str> = screen
        .lines()
        .skip_while(|l| !l.contains("Waits"))
        .skip(1)
        .take(2)
        .collect();
    assert!(
        rows.len() == 2
            && rows[0].ends_with("table_lock [locks_table]")
            && rows[0].contains("80.0 ms")
            && rows[1].contains("0x55550000 (first: worker <- start_thread)"),
        "{screen}"
    );
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the lock's trees", Duration::from_secs(10), |s| {
        s.contains("lock table_lock")
    });
    assert_in_order(
        &screen,
        &["reader_often", "reader_rarely", "holders (released"],
    );
    assert_in_order(
        &screen,
        &["holders (released", "slow_update", "fast_lookup"],
    );
    assert_eq!(caller_row(&screen, "reader_often").map(|r| r.0), Some(75.0));
    assert_eq!(caller_row(&screen, "slow_update").map(|r| r.0), Some(80.0));
    tmux.keys(&["q"]);
}

/// Asserts that each of `names` is on a line of `screen` below the line of the one before.
fn assert_in_order(screen: &str, names: &[&str]) {
    let line_of = |name: &str| {
        screen
            .lines()
            .position(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no {name} on the screen:\n{screen}"))
    };
    for pair in names.windows(2) {
        assert!(
            line_of(pair[0]) < line_of(pair[1]),
            "{} should be above {}:\n{screen}",
            pair[0],
            pair[1]
        );
    }
}

/// `top --locks` on threads that wait for one global mutex from two callers (`assets/top_lockwait.c`: 3 of
/// 4 waits under wait_often, each as long on average; the main thread holds the lock in `hold`): `L` lists
/// the lock by its symbol, Enter shows wait_often above wait_rarely in the waiters' tree, and `hold` among
/// the holders.
pub fn live_locks_of_a_contended_workload_in_tmux() {
    if !perf_available() || !root_or_skip("placing uprobes") || !tool_available("tmux") {
        return;
    }
    let bin = build_c("top_lockwait.c", "top_lockwait", &[]);
    let command = format!(
        "{} top --locks -e cpu-clock -d 0.5 -- {} 60; sleep 60",
        stacktop_bin(),
        bin.display()
    );
    let tmux = Tmux::start(&command);
    let screen = tmux.wait_for("the table", Duration::from_secs(20), |s| {
        first_row(s).is_some_and(|r| r.contains('%')) || s.contains("--locks")
    });
    assert!(
        screen.contains("locks:") && screen.contains("(L: locks)"),
        "no lock totals in the header of `top --locks`:\n{screen}"
    );
    tmux.keys(&["L"]);
    let screen = tmux.wait_for(
        "the lock's row in the locks table",
        Duration::from_secs(20),
        |s| {
            s.lines()
                .skip_while(|l| !l.contains("Waits"))
                .nth(1)
                .is_some_and(|l| l.contains("lock [top_lockwait]"))
        },
    );
    eprintln!("locks table:\n{screen}");
    tmux.keys(&["Enter"]);
    tmux.wait_for(
        "the waiters' tree with both callers",
        Duration::from_secs(20),
        |s| {
            s.contains("lock lock [top_lockwait]")
                && caller_row(s, "wait_often").is_some()
                && caller_row(s, "wait_rarely").is_some()
        },
    );
    // A few refreshes more (the decaying sums weigh the last few seconds).
    std::thread::sleep(Duration::from_secs(3));
    let screen = tmux.screen();
    eprintln!("lock screen:\n{screen}");
    let row = |name: &str| {
        caller_row(&screen, name).unwrap_or_else(|| panic!("no {name} in the trees:\n{screen}"))
    };
    let (often, rarely) = (row("wait_often"), row("wait_rarely"));
    assert!(
        often.1 < rarely.1 && often.0 > rarely.0,
        "wait_often ({:.1}%) should be listed before wait_rarely ({:.1}%):\n{screen}",
        often.0,
        rarely.0
    );
    let holders = screen
        .lines()
        .position(|l| l.contains("holders (released it"))
        .unwrap_or_else(|| panic!("no holders' tree:\n{screen}"));
    assert!(
        screen
            .lines()
            .skip(holders)
            .any(|l| l.split_whitespace().any(|w| w == "hold")),
        "no `hold` among the holders:\n{screen}"
    );
    tmux.keys(&["q"]);
}

crate::tests![
    locks_table_ranks_and_names_the_locks,
    a_lock_shows_its_waiters_and_holders,
    w_weighs_the_functions_by_lock_wait_and_hold,
    without_lock_recording_l_says_how_to_record_them,
    help_lists_the_lock_keys,
    live_lock_waits_decay_and_accumulate,
    locks_of_a_recorded_profile_in_tmux,
    live_locks_of_a_contended_workload_in_tmux,
];
