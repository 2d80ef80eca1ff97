//! The locks screens of a `--locks` session. `L` opens the locks table: one row per lock, as `report --locks`
//! lists them (a global by its symbol, a heap lock by its address and the callers of its first wait), with
//! its waits, total and longest wait, waiting threads and the wait charged to holders. Enter opens a lock's
//! screen: the waiters' callers tree weighed by their wait above the holders' tree (the code that released the
//! lock to a waiter) weighed by the wait they caused; Tab moves between the two.
//!
//! The table reads the shown sums with every value (the profile's groups are projected onto the app's view).
//! Each tree weighs its own view (lock-wait, lock-hold), whatever the app's view: the shown sums projected
//! onto it, as the app's own projection is made, kept until the sums change.

use std::cmp::Reverse;
use std::collections::BTreeSet;

use super::app::{App, FuncRef, Screen};
use super::tree::{func_ref, show, single_chains, TreeView};
use crate::profile::query::{filtered_samples, function_tree, CallTree, Direction, Matcher};
use crate::profile::{LockId, Weigh};
use crate::render::locks::lock_name;

/// Which side of a lock's waits a tree shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The threads that waited, weighed by their wait (Go's block profile).
    Waiters,
    /// The code that released the lock to a waiter, weighed by the wait it caused (Go's mutex profile).
    Holders,
}

impl Side {
    pub fn weigh(self) -> Weigh {
        match self {
            Side::Waiters => Weigh::LockWait,
            Side::Holders => Weigh::LockHold,
        }
    }

    pub fn other(self) -> Side {
        match self {
            Side::Waiters => Side::Holders,
            Side::Holders => Side::Waiters,
        }
    }
}

/// The lock a tree is about, and which side of its waits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockTree {
    pub lock: LockId,
    pub side: Side,
}

/// One row of the locks table; the name is sanitized for the terminal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockTableRow {
    pub lock: LockId,
    /// `table_lock [app]`, or `0x55d0c8a2b2a0 (first: reader_often <- worker)`.
    pub name: String,
    /// Contended waits and their time, nanoseconds (decaying or cumulative, as the function table's).
    pub contentions: u64,
    pub delay: u64,
    /// The longest single wait of the session.
    pub longest: u64,
    /// Threads that waited for it.
    pub threads: usize,
    /// Wait charged to holders.
    pub caused_delay: u64,
}

/// The column the locks table is sorted by (`s` on it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LockSort {
    #[default]
    Wait,
    Waits,
    Longest,
    Threads,
    Caused,
    Lock,
}

impl LockSort {
    pub fn next(self) -> LockSort {
        match self {
            LockSort::Wait => LockSort::Waits,
            LockSort::Waits => LockSort::Longest,
            LockSort::Longest => LockSort::Threads,
            LockSort::Threads => LockSort::Caused,
            LockSort::Caused => LockSort::Lock,
            LockSort::Lock => LockSort::Wait,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LockSort::Wait => "wait",
            LockSort::Waits => "waits",
            LockSort::Longest => "longest",
            LockSort::Threads => "threads",
            LockSort::Caused => "caused",
            LockSort::Lock => "lock",
        }
    }
}

/// The locks table's screen (`L`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocksView {
    pub selected: usize,
    /// The lock the user moved to, followed as rows reorder; `None`: the selection stays on the top row (the
    /// function table's rule).
    pub followed: Option<LockId>,
}

/// A lock's screen: its waiters' and holders' trees.
#[derive(Clone, Debug, PartialEq)]
pub struct LockView {
    pub lock: LockId,
    /// As the locks table names it (kept when the lock leaves the table: decayed, or out of a limit).
    pub name: String,
    pub waiters: TreeView,
    pub holders: TreeView,
    /// The tree the keys move in.
    pub focus: Side,
}

impl LockView {
    pub fn tree(&self, side: Side) -> &TreeView {
        match side {
            Side::Waiters => &self.waiters,
            Side::Holders => &self.holders,
        }
    }

    fn tree_mut(&mut self, side: Side) -> &mut TreeView {
        match side {
            Side::Waiters => &mut self.waiters,
            Side::Holders => &mut self.holders,
        }
    }

    pub fn focused_mut(&mut self) -> &mut TreeView {
        self.tree_mut(self.focus)
    }
}

impl App {
    /// Whether the session has lock waits to show: it records them (`--locks`), or some came.
    pub fn locks_available(&self) -> bool {
        self.locks_seen || self.profile.meta.locks.enabled
    }

    /// Why there are no locks to show, and how to get them.
    pub(super) fn no_locks(&self) -> &'static str {
        if self.recorded {
            "no lock waits in this profile: record with --locks to see lock contention"
        } else {
            "lock recording is off: start top with --locks to see lock contention"
        }
    }

    /// `L`: the locks table, or back from it (and from a lock's screen to it). A session without lock
    /// recording says how to get one instead.
    pub fn toggle_locks(&mut self) {
        match self.screens.last() {
            Some(Screen::Locks(_) | Screen::Lock(_)) => {
                self.screens.pop();
            }
            _ if self.informed && !self.locks_available() => {
                self.message = Some(self.no_locks().to_owned());
            }
            _ => self.screens.push(Screen::Locks(LocksView::default())),
        }
    }

    /// The selected row of the open locks table.
    pub fn selected_lock(&self) -> Option<&LockTableRow> {
        match self.screens.last() {
            Some(Screen::Locks(view)) => self.lock_rows.get(view.selected),
            _ => None,
        }
    }

    /// The locks table's row of `lock`, if it has waits in the sums shown.
    pub fn lock_row(&self, lock: LockId) -> Option<&LockTableRow> {
        self.lock_rows.iter().find(|r| r.lock == lock)
    }

    /// Moves the locks table's selection to row `at`; `follow`: it then stays on that lock as rows reorder.
    pub fn select_lock(&mut self, at: usize, follow: bool) {
        let last = self.lock_rows.len().saturating_sub(1);
        let followed = self.lock_rows.get(at.min(last)).map(|r| r.lock);
        if let Some(Screen::Locks(view)) = self.screens.last_mut() {
            view.selected = at.min(last);
            view.followed = followed.filter(|_| follow);
        }
    }

    /// `s` on the locks table: the next column, the selection back on the top row.
    pub fn sort_locks(&mut self) {
        self.lock_sort = self.lock_sort.next();
        self.select_lock(0, false);
        self.refresh();
    }

    /// Enter on the locks table: the selected lock's screen.
    pub fn open_lock(&mut self) {
        let Some((lock, name)) = self.selected_lock().map(|r| (r.lock, r.name.clone())) else {
            return;
        };
        let tree = |side| {
            TreeView::new(
                FuncRef {
                    name: String::new(),
                    module: String::new(),
                },
                Direction::Callers,
                Some(LockTree { lock, side }),
            )
        };
        let mut view = LockView {
            lock,
            name,
            waiters: tree(Side::Waiters),
            holders: tree(Side::Holders),
            focus: Side::Waiters,
        };
        self.fill_lock_view(&mut view);
        self.screens.push(Screen::Lock(view));
    }

    /// Tab on a lock's screen: the keys move in the other tree.
    pub fn switch_lock_side(&mut self) {
        if let Some(Screen::Lock(view)) = self.screens.last_mut() {
            view.focus = view.focus.other();
        }
    }

    /// The locks table's rows from the shown sums, with the label limits (`t`), sorted as `lock_sort` says.
    pub(super) fn make_lock_rows(&mut self) {
        self.lock_rows.clear();
        if !self.locks_available() {
            return;
        }
        let filter = self.filter();
        // The sums with every value, in the profile for the time of the query.
        self.profile.swap_samples(&mut self.sums);
        let profile = &self.profile;
        let rows = profile.lock_rows_of(|g| filter.accepts_labels(profile, g));
        let mut rows: Vec<LockTableRow> = rows
            .into_iter()
            .map(|r| LockTableRow {
                lock: r.lock,
                name: lock_name(profile, r.lock),
                contentions: r.contentions,
                delay: r.delay,
                longest: r.longest,
                threads: r.threads,
                caused_delay: r.caused_delay,
            })
            .collect();
        self.profile.swap_samples(&mut self.sums);
        // `lock_rows_of` orders by wait, then waits, then lock: the other columns re-sort stably from it.
        match self.lock_sort {
            LockSort::Wait => {}
            LockSort::Waits => rows.sort_by_key(|r| Reverse(r.contentions)),
            LockSort::Longest => rows.sort_by_key(|r| Reverse(r.longest)),
            LockSort::Threads => rows.sort_by_key(|r| Reverse(r.threads)),
            LockSort::Caused => rows.sort_by_key(|r| Reverse(r.caused_delay)),
            LockSort::Lock => rows.sort_by(|a, b| a.name.cmp(&b.name)),
        }
        self.lock_rows = rows;
    }

    /// Keeps a locks table's selection on the top row, or on the lock followed while it is listed.
    pub(super) fn follow_lock(&self, view: &mut LocksView) {
        let at = view
            .followed
            .and_then(|id| self.lock_rows.iter().position(|r| r.lock == id))
            .unwrap_or(if view.followed.is_some() {
                view.selected
            } else {
                0
            });
        view.selected = at.min(self.lock_rows.len().saturating_sub(1));
    }

    /// Fills both trees of a lock's screen, each in its own view.
    pub(super) fn fill_lock_view(&mut self, view: &mut LockView) {
        if let Some(row) = self.lock_row(view.lock) {
            view.name.clone_from(&row.name);
        }
        for side in [Side::Waiters, Side::Holders] {
            let tree = view.tree_mut(side);
            self.in_view(side.weigh(), |app| app.fill_lock_tree(tree));
        }
    }

    /// Runs `f` with the profile's groups the shown sums projected onto `by`, then puts the app's projection
    /// back. The projection is kept for the next call until the sums or the view change.
    fn in_view<R>(&mut self, by: Weigh, f: impl FnOnce(&App) -> R) -> R {
        if by == self.view() {
            return f(self);
        }
        let kept = self.lock_sets.iter().position(|(w, _)| *w == by);
        let mut set = match kept {
            Some(i) => self.lock_sets.swap_remove(i).1,
            None => {
                let mut set = self.sums.clone();
                self.profile.swap_samples(&mut set);
                self.profile.weigh(by, false);
                self.profile.swap_samples(&mut set);
                set
            }
        };
        self.profile.swap_samples(&mut set);
        let result = f(self);
        self.profile.swap_samples(&mut set);
        self.lock_sets.push((by, set));
        result
    }

    /// One tree of a lock, from a profile weighed in its side's view: the callers of the functions on top of
    /// the lock's stacks (the probed ones: glibc's `__lll_lock_wait` and `__lll_lock_wake`, Rust's
    /// `lock_contended` and `wake`, or `pthread_mutex_lock` with `--locks=pthread`).
    fn fill_lock_tree(&self, tree: &mut TreeView) {
        let Some(side) = tree.lock.clone() else {
            return;
        };
        let profile = self.profile();
        let mut filter = self.filter();
        filter.modules.clear();
        let calltree = match profile.lock(side.lock) {
            // A lock is one process's futex word: its pid and address, as its id.
            Some(lock) if filter.pids.is_empty() || filter.pids.contains(&lock.pid) => {
                filter.pids = vec![lock.pid];
                filter.locks = vec![format!("{:#x}", lock.address)];
                let tops: BTreeSet<String> = filtered_samples(profile, &filter, false)
                    .iter()
                    .filter_map(|s| s.frames.first())
                    .map(|f| profile.func_key(f))
                    .filter(|k| k.name.is_some())
                    .map(|k| regex::escape(profile.func_name(&k)))
                    .collect();
                let pattern = tops.into_iter().collect::<Vec<_>>().join("|");
                match Matcher::regex(&pattern) {
                    Ok(matcher) if !pattern.is_empty() => {
                        function_tree(profile, &filter, &matcher, Direction::Callers)
                    }
                    _ => CallTree::default(),
                }
            }
            _ => CallTree::default(),
        };
        if let Some(&root) = calltree.roots.first() {
            tree.func = func_ref(profile, &calltree.nodes[root].func, false);
        }
        if !tree.touched {
            tree.expanded = single_chains(profile, &calltree);
        }
        show(profile, &calltree, tree);
    }
}
