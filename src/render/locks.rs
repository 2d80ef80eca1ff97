//! The locks view of `report --locks`: one row per lock, the most waited-for first, then for the selected lock
//! the waiters' callers tree weighed by their wait and the holders' tree weighed by the wait they caused.
//!
//! ```text
//! #   Wait ms  Waits  Longest ms  Threads  Caused ms  Lock
//!      2973.9    812        15.2        4     2973.9  table_lock [locks_table]
//!        12.0     33         1.1        4       12.0  stats_lock [locks_table]
//!         1.0      2         0.6        2        1.0  0x55d0c8a2b2a0 (first: reader_often <- worker)
//! ```
//! The trees start at the probed function on top of every stack (glibc's `__lll_lock_wait` and
//! `__lll_lock_wake`, Rust's `lock_contended` and `wake`), so they read as "who waited, through which callers".

use std::io::{self, Write};

use crate::profile::query::{Direction, Filter, Matcher, Weight};
use crate::profile::{LockId, LockRow, Profile, Weigh};

use super::calltree::{write_calltree_section, CalltreeOptions};
use super::text::{ms, sanitize, short_module, write_header};

/// How many outer frames of a heap lock's first waiter name it.
const FIRST_FRAMES: usize = 3;

#[derive(Clone, Debug, Default)]
pub struct LocksOptions {
    /// Label filters (pid, tid, comm, process) and the locks whose trees to show (`filter.locks`; none: the
    /// most waited-for one). `filter.percent_limit` folds tree nodes.
    pub filter: Filter,
}

/// Writes the header, the locks table and the selected locks' trees. `profile` must not be projected yet:
/// each tree is drawn from a projection of a copy.
pub fn write_locks(w: &mut impl Write, profile: &Profile, opts: &LocksOptions) -> io::Result<()> {
    let labels = Filter {
        locks: Vec::new(),
        ..opts.filter.clone()
    };
    let rows = profile.lock_rows_of(|g| labels.accepts_labels(profile, g));
    let waited = rows.iter().fold(Weight::default(), |sum, r| Weight {
        period: sum.period.saturating_add(r.delay),
        count: sum.count.saturating_add(r.contentions),
    });
    let all = Weight {
        period: profile.total_period(),
        count: profile.total_count(),
    };
    write_header(w, profile, all)?;
    if rows.is_empty() {
        writeln!(w, "# No contended lock wait was recorded.")?;
        return Ok(());
    }
    writeln!(
        w,
        "# {} locks waited for: {} waits, {} ms",
        rows.len(),
        waited.count,
        ms(waited.period)
    )?;
    writeln!(w, "#")?;
    writeln!(
        w,
        "# {:>9}  {:>7}  {:>10}  {:>7}  {:>9}  Lock",
        "Wait ms", "Waits", "Longest ms", "Threads", "Caused ms"
    )?;
    for row in &rows {
        writeln!(
            w,
            "  {:>9}  {:>7}  {:>10}  {:>7}  {:>9}  {}",
            ms(row.delay),
            row.contentions,
            ms(row.longest),
            row.threads,
            ms(row.caused_delay),
            lock_name(profile, row.lock)
        )?;
    }
    let selected: Vec<&LockRow> = if opts.filter.locks.is_empty() {
        rows.iter().take(1).collect()
    } else {
        rows.iter()
            .filter(|r| opts.filter.locks.iter().any(|n| profile.lock_is(r.lock, n)))
            .collect()
    };
    for row in selected {
        let label = profile.lock_label(row.lock);
        for (by, what) in [
            (Weigh::LockWait, "waiters, weighed by their wait"),
            (
                Weigh::LockHold,
                "holders (the code that released it to a waiter), weighed by the wait they caused",
            ),
        ] {
            writeln!(w, "#")?;
            writeln!(w, "# Lock {}: {what}", sanitize(&label))?;
            let mut view = profile.clone();
            view.weigh(by, false);
            let filter = Filter {
                locks: vec![label.clone()],
                ..labels.clone()
            };
            let Some(top) = top_function(&view, &filter) else {
                writeln!(w, "# (none)")?;
                continue;
            };
            let opts = CalltreeOptions {
                matcher: Matcher::exact(&top),
                direction: Direction::Callers,
                filter,
                show_module: true,
            };
            write_calltree_section(w, &view, &opts)?;
        }
    }
    Ok(())
}

/// A lock as the table shows it: its symbol and module, or its address and its first waiter's callers.
pub fn lock_name(profile: &Profile, id: LockId) -> String {
    let Some(lock) = profile.lock(id) else {
        return "[unknown lock]".to_owned();
    };
    if let Some(symbol) = lock.symbol {
        let symbol = sanitize(profile.str(symbol)).into_owned();
        return match lock.module {
            Some(m) => format!("{symbol} [{}]", sanitize(short_module(profile.str(m)))),
            None => symbol,
        };
    }
    let address = format!("{:#x}", lock.address);
    let callers = first_callers(profile, id);
    if callers.is_empty() {
        address
    } else {
        format!("{address} (first: {})", callers.join(" <- "))
    }
}

/// The callers in the first waiter's stack that took the lock: past the probed function and the lock
/// function that called it (`pthread_mutex_lock`, Rust's `Mutex::lock`), up to [`FIRST_FRAMES`].
fn first_callers(profile: &Profile, id: LockId) -> Vec<String> {
    let Some(first) = profile.lock(id).and_then(|l| l.first) else {
        return Vec::new();
    };
    let frames = profile.frames(Some(first));
    let mut names = frames
        .iter()
        .map(|f| profile.func_name(&profile.func_key(f)))
        .skip(1)
        .peekable();
    // A condition variable's wait takes its mutex back inside libc (`__pthread_mutex_cond_lock` under
    // `pthread_cond_wait`): its frames are the lock's too.
    let is_lock_function = |n: &str| {
        n.contains("mutex_lock")
            || n.contains("mutex_cond_lock")
            || n.contains("pthread_cond_")
            || n.ends_with("::lock")
            || n.contains("lock_contended")
    };
    while names.peek().is_some_and(|n| is_lock_function(n)) {
        names.next();
    }
    names
        .take(FIRST_FRAMES)
        .map(|n| sanitize(n).into_owned())
        .collect()
}

/// The function on top of the heaviest stack that passes `filter`: the probed function the tree starts at.
fn top_function(view: &Profile, filter: &Filter) -> Option<String> {
    let heaviest = view
        .samples
        .iter()
        .filter(|g| filter.accepts_labels(view, g))
        .max_by_key(|g| (g.period, g.count))?;
    let frames = view.frames(heaviest.leaf);
    let top = frames.first()?;
    Some(view.func_name(&view.func_key(top)).to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::profile::{Function, Line, Location, LocationId, LockStats, Mapping};

    /// Two locks: `table_lock` (waited for by `reader_often` 3 times as long as by `reader_rarely`, released
    /// mostly by `slow_update`) and a heap lock taken in `worker`.
    fn profile() -> Profile {
        let mut p = Profile::default();
        p.meta.locks = LockStats {
            enabled: true,
            probes: vec!["glibc: __lll_lock_wait, __lll_lock_wake in /lib/libc.so.6".into()],
            no_holder: 1,
            ..LockStats::default()
        };
        let app = p.intern("/usr/bin/locks_table");
        let mapping = p.add_mapping(Mapping {
            path: app,
            build_id: None,
            start: 0x1000,
            limit: 0x9000,
            offset: 0,
            kernel: false,
        });
        let loc = |p: &mut Profile, name: &str| -> LocationId {
            let name = p.intern(name);
            let function = p.add_function(Function { name, file: None });
            let address = 0x1000 + p.locations.len() as u64;
            p.add_location(Location {
                mapping: Some(mapping),
                address,
                lines: vec![Line { function, line: 0 }],
            })
        };
        let [wait, lock, often, rarely, worker, wake, unlock, slow, fast] = [
            "__lll_lock_wait",
            "pthread_mutex_lock",
            "reader_often",
            "reader_rarely",
            "worker",
            "__lll_lock_wake",
            "pthread_mutex_unlock",
            "slow_update",
            "fast_lookup",
        ]
        .map(|n| loc(&mut p, n));
        let comm = p.intern("w");
        let table = p.add_lock(7, 0x4040);
        p.set_lock_symbol(table, "table_lock", Some("/usr/bin/locks_table"));
        let heap = p.add_lock(7, 0x5555_0000);
        for (caller, tid, ms) in [(often, 8, 30), (often, 9, 30), (rarely, 10, 20)] {
            p.add_lock_wait(
                &[wait, lock, caller, worker],
                (7, tid, comm),
                table,
                ms * 1_000_000,
            );
        }
        p.add_lock_hold(
            &[wake, unlock, slow, worker],
            (7, 11, comm),
            table,
            60_000_000,
        );
        p.add_lock_hold(
            &[wake, unlock, fast, worker],
            (7, 12, comm),
            table,
            15_000_000,
        );
        p.add_lock_wait(&[wait, lock, worker], (7, 8, comm), heap, 1_000_000);
        p.add_sample(&[often, worker], 7, 8, comm, 10, 10_000_000);
        p
    }

    fn render(filter: Filter) -> String {
        let mut out = Vec::new();
        write_locks(&mut out, &profile(), &LocksOptions { filter }).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_table_ranks_locks_and_the_trees_split_waiters_and_holders() {
        let text = render(Filter::default());
        assert!(
            text.contains("# Locks: 4 contended waits, 81.0 ms waited; 75.0 ms charged"),
            "{text}"
        );
        assert!(
            text.contains("# Lock probes: glibc: __lll_lock_wait"),
            "{text}"
        );
        assert!(text.contains("1 with no release seen"), "{text}");
        let table = text.find("table_lock [locks_table]").unwrap();
        let heap = text.find("0x55550000 (first: worker)").unwrap();
        assert!(table < heap, "{text}");
        assert!(
            text.contains("       80.0        3        30.0        3       75.0  table_lock"),
            "{text}"
        );
        let waiters = text.find("# Lock table_lock: waiters").unwrap();
        let holders = text.find("# Lock table_lock: holders").unwrap();
        let (w, h) = (&text[waiters..holders], &text[holders..]);
        assert!(w.contains("75.00%") && w.contains("reader_often"), "{w}");
        assert!(w.contains("25.00%") && w.contains("reader_rarely"), "{w}");
        assert!(!w.contains("slow_update"), "{w}");
        assert!(h.contains("80.00%") && h.contains("slow_update"), "{h}");
        assert!(h.contains("20.00%") && h.contains("fast_lookup"), "{h}");
        assert!(!text.contains("0x55550000: waiters"), "{text}");
    }

    #[test]
    fn a_lock_chosen_by_address_gets_its_trees() {
        let text = render(Filter {
            locks: vec!["0x55550000".into()],
            ..Filter::default()
        });
        assert!(text.contains("# Lock 0x55550000: waiters"), "{text}");
        assert!(!text.contains("# Lock table_lock: waiters"), "{text}");
    }

    #[test]
    fn label_filters_apply_to_the_table() {
        let text = render(Filter {
            tids: vec![10],
            ..Filter::default()
        });
        assert!(
            text.contains("       20.0        1        30.0        1        0.0  table_lock"),
            "{text}"
        );
        assert!(!text.contains("0x55550000 (first"), "{text}");
    }

    #[test]
    fn flamegraphs_of_waiters_and_holders() {
        use crate::render::{write_flamegraph, FlamegraphOptions};
        let svg = |by: Weigh| {
            let mut p = profile();
            p.weigh(by, true);
            let mut out = Vec::new();
            write_flamegraph(&mut out, &p, &FlamegraphOptions::default()).unwrap();
            String::from_utf8(out).unwrap()
        };
        let waits = svg(Weigh::LockWait);
        assert!(waits.contains("Lock Wait Flame Graph"), "{waits}");
        assert!(waits.contains("4 lock waits, weighed: lock-wait (81.0 ms)"));
        assert!(waits.contains("reader_often") && !waits.contains("slow_update"));
        let holds = svg(Weigh::LockHold);
        assert!(holds.contains("Lock Holder Flame Graph"));
        assert!(holds.contains("slow_update") && !holds.contains("reader_often"));
    }
}
