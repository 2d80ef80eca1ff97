//! Lock contention (`--locks`): the locks threads waited for, and the queries of the locks view.
//!
//! A wait is recorded twice, as Go's two profiles record it: at the waiter's stack (`contentions` and `delay`,
//! Go's block profile) and at the stack of the thread whose release of the lock came last before the wait
//! ended (`caused_contentions` and `caused_delay`, Go's mutex profile: the end of the critical section that
//! made others wait). Both groups carry the lock's id; the lock itself (its address, its symbol when it is a
//! global, the longest wait) lives in [`Profile::locks`].

use std::collections::{BTreeMap, BTreeSet};

use super::{LocationId, LockId, NodeId, Profile, SampleGroup, StrId, Values};

/// A lock that threads waited for: one futex word in one process (for glibc's default mutex kinds and
/// Rust's std `Mutex`, the mutex's own address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lock {
    pub pid: u32,
    pub address: u64,
    /// Its symbol when it is a global (`table_lock`, or `locks+0x28` inside an array or struct).
    pub symbol: Option<StrId>,
    /// The module whose `.data` or `.bss` holds it.
    pub module: Option<StrId>,
    /// The waiter's stack of the first wait seen on it: names a lock on the heap by who took it.
    pub first: Option<NodeId>,
    /// The longest single wait, nanoseconds.
    pub longest: u64,
}

/// Which side of a wait a sample group stands for, as the pprof label `role` says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The thread that waited (Go's block profile).
    Waiter,
    /// The thread that released the lock to the waiter (Go's mutex profile).
    Holder,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Waiter => "waiter",
            Role::Holder => "holder",
        }
    }

    pub fn from_name(s: &str) -> Option<Role> {
        [Role::Waiter, Role::Holder]
            .into_iter()
            .find(|r| r.name() == s)
    }
}

/// How lock contention was recorded and what it could not measure. Nothing is invented: a wait is charged
/// only from its start to its end as the probes saw them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockStats {
    /// The probes were placed.
    pub enabled: bool,
    /// What was probed, one line each (`glibc: __lll_lock_wait, __lll_lock_wake in /lib/.../libc.so.6`).
    pub probes: Vec<String>,
    /// Waits still going on when the recording stopped: charged up to the stop.
    pub open_at_stop: u64,
    /// Ends of waits whose start was not seen (records lost, or the wait began before the attach): not charged.
    pub unmatched_ends: u64,
    /// Waits with no release of their lock seen before they ended: charged to their waiter only.
    pub no_holder: u64,
}

impl LockStats {
    /// `ENABLED OPEN_AT_STOP UNMATCHED_ENDS NO_HOLDER`: the pprof comment form (the probes go in comments of
    /// their own).
    pub fn to_comment(&self) -> String {
        format!(
            "{} {} {} {}",
            u8::from(self.enabled),
            self.open_at_stop,
            self.unmatched_ends,
            self.no_holder
        )
    }

    pub fn from_comment(s: &str) -> Option<LockStats> {
        let mut n = s.split_whitespace().map(str::parse::<u64>);
        let stats = LockStats {
            enabled: n.next()?.ok()? != 0,
            open_at_stop: n.next()?.ok()?,
            unmatched_ends: n.next()?.ok()?,
            no_holder: n.next()?.ok()?,
            probes: Vec::new(),
        };
        n.next().is_none().then_some(stats)
    }
}

/// One row of the locks view: a lock and its waits, summed over the sample groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockRow {
    pub lock: LockId,
    /// Contended waits and their total time, nanoseconds.
    pub contentions: u64,
    pub delay: u64,
    pub longest: u64,
    /// Threads that waited for it.
    pub threads: usize,
    /// Wait charged to holders (less than `delay` by the waits with no release seen).
    pub caused_delay: u64,
}

impl Profile {
    /// The lock at `address` in process `pid`, added if new.
    pub fn add_lock(&mut self, pid: u32, address: u64) -> LockId {
        if let Some(&id) = self.lock_ids.get(&(pid, address)) {
            return id;
        }
        let id = LockId(self.locks.len() as u32);
        self.locks.push(Lock {
            pid,
            address,
            symbol: None,
            module: None,
            first: None,
            longest: 0,
        });
        self.lock_ids.insert((pid, address), id);
        self.locks_changed.push(id);
        id
    }

    pub fn lock(&self, id: LockId) -> Option<&Lock> {
        self.locks.get(id.index())
    }

    /// Names a lock by its symbol (a global in `module`'s `.data` or `.bss`).
    pub fn set_lock_symbol(&mut self, id: LockId, symbol: &str, module: Option<&str>) {
        let symbol = self.intern(symbol);
        let module = module.map(|m| self.intern(m));
        if let Some(lock) = self.locks.get_mut(id.index()) {
            lock.symbol = Some(symbol);
            lock.module = module;
            self.locks_changed.push(id);
        }
    }

    /// A contended wait of `nanos` on `lock`, at the waiter's stack (innermost location first).
    pub fn add_lock_wait(
        &mut self,
        stack: &[LocationId],
        (pid, tid, comm): (u32, u32, StrId),
        lock: LockId,
        nanos: u64,
    ) {
        let leaf = self.intern_stack(stack);
        self.add_group((leaf, pid, tid, comm, Some(lock)), Values::wait(nanos));
        if let Some(l) = self.locks.get_mut(lock.index()) {
            if l.first.is_none() || nanos > l.longest {
                l.first = l.first.or(leaf);
                l.longest = l.longest.max(nanos);
                self.locks_changed.push(lock);
            }
        }
    }

    /// The same wait at the stack of the thread that released `lock` to the waiter.
    pub fn add_lock_hold(
        &mut self,
        stack: &[LocationId],
        (pid, tid, comm): (u32, u32, StrId),
        lock: LockId,
        nanos: u64,
    ) {
        let leaf = self.intern_stack(stack);
        self.add_group((leaf, pid, tid, comm, Some(lock)), Values::caused(nanos));
    }

    /// Adds a sum of lock values at a stack (a profile file's group, read back): `values` may hold waits or
    /// caused waits; the lock's longest wait and first stack are the caller's to set. Returns the stack's leaf.
    pub fn add_lock_values(
        &mut self,
        stack: &[LocationId],
        (pid, tid, comm): (u32, u32, StrId),
        lock: Option<LockId>,
        values: Values,
    ) -> Option<NodeId> {
        let leaf = self.intern_stack(stack);
        self.add_group((leaf, pid, tid, comm, lock), values);
        leaf
    }

    /// Sets what a profile file says of a lock: its longest wait and its first waiter's stack.
    pub fn set_lock_details(&mut self, id: LockId, longest: u64, first: Option<NodeId>) {
        if let Some(lock) = self.locks.get_mut(id.index()) {
            lock.longest = lock.longest.max(longest);
            lock.first = lock.first.or(first);
        }
    }

    /// Whether any group holds lock waits.
    pub fn has_locks(&self) -> bool {
        self.samples
            .iter()
            .any(|g| g.contentions > 0 || g.caused_contentions > 0)
    }

    /// How a lock is shown: its symbol, else its address.
    pub fn lock_label(&self, id: LockId) -> String {
        match self.lock(id) {
            Some(Lock {
                symbol: Some(symbol),
                ..
            }) => self.str(*symbol).to_owned(),
            Some(lock) => format!("{:#x}", lock.address),
            None => "[unknown lock]".to_owned(),
        }
    }

    /// Whether `name` names lock `id`: its symbol, or its address in hex (`0x` optional).
    pub fn lock_is(&self, id: LockId, name: &str) -> bool {
        let Some(lock) = self.lock(id) else {
            return false;
        };
        if lock.symbol.is_some_and(|s| self.str(s) == name) {
            return true;
        }
        let hex = name.strip_prefix("0x").unwrap_or(name);
        u64::from_str_radix(hex, 16).is_ok_and(|a| a == lock.address)
    }

    /// The locks view: one row per lock with waits, the most waited-for first. Reads the groups' own values:
    /// call it before [`Profile::weigh`].
    pub fn lock_rows(&self) -> Vec<LockRow> {
        self.lock_rows_of(|_| true)
    }

    /// [`Profile::lock_rows`] over the groups `keep` accepts (a report's label filters).
    pub fn lock_rows_of(&self, keep: impl Fn(&SampleGroup) -> bool) -> Vec<LockRow> {
        let mut sums: BTreeMap<LockId, (Values, BTreeSet<(u32, u32)>)> = BTreeMap::new();
        for g in self.samples.iter().filter(|g| keep(g)) {
            let Some(lock) = g.lock else { continue };
            let (values, threads) = sums.entry(lock).or_default();
            values.add(g.values());
            // Counted by time too: `top`'s decaying sums round a group's few waits down to none while
            // their time lasts.
            if g.contentions > 0 || g.delay > 0 {
                threads.insert((g.pid, g.tid));
            }
        }
        let mut rows: Vec<LockRow> = sums
            .into_iter()
            .filter(|(_, (v, _))| {
                v.contentions > 0 || v.caused_contentions > 0 || v.delay > 0 || v.caused_delay > 0
            })
            .map(|(lock, (v, threads))| LockRow {
                lock,
                contentions: v.contentions,
                delay: v.delay,
                longest: self.lock(lock).map_or(0, |l| l.longest),
                threads: threads.len(),
                caused_delay: v.caused_delay,
            })
            .collect();
        rows.sort_by(|a, b| {
            b.delay
                .cmp(&a.delay)
                .then(b.contentions.cmp(&a.contentions))
                .then(a.lock.cmp(&b.lock))
        });
        rows
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::profile::{Function, Line, Location, Weigh};

    fn profile() -> Profile {
        let mut p = Profile::default();
        let loc = |p: &mut Profile, name: &str| {
            let name = p.intern(name);
            let function = p.add_function(Function { name, file: None });
            p.add_location(Location {
                mapping: None,
                address: 0,
                lines: vec![Line { function, line: 0 }],
            })
        };
        let wait = loc(&mut p, "__lll_lock_wait");
        let wake = loc(&mut p, "__lll_lock_wake");
        let often = loc(&mut p, "reader_often");
        let slow = loc(&mut p, "slow_update");
        let comm = p.intern("w");
        let table = p.add_lock(7, 0x4040);
        p.set_lock_symbol(table, "table_lock", Some("/bin/w"));
        let heap = p.add_lock(7, 0x5555_0000);
        p.add_lock_wait(&[wait, often], (7, 8, comm), table, 3_000);
        p.add_lock_wait(&[wait, often], (7, 9, comm), table, 5_000);
        p.add_lock_hold(&[wake, slow], (7, 10, comm), table, 3_000);
        p.add_lock_hold(&[wake, slow], (7, 10, comm), table, 5_000);
        p.add_lock_wait(&[wait, slow], (7, 10, comm), heap, 100);
        p.add_sample(&[often], 7, 8, comm, 2, 2_000);
        p
    }

    #[test]
    fn rows_sum_each_lock_most_waited_first() {
        let p = profile();
        let rows = p.lock_rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(p.lock_label(rows[0].lock), "table_lock");
        assert_eq!(
            (rows[0].contentions, rows[0].delay, rows[0].longest),
            (2, 8_000, 5_000)
        );
        assert_eq!((rows[0].threads, rows[0].caused_delay), (2, 8_000));
        assert_eq!(p.lock_label(rows[1].lock), "0x55550000");
        assert!(p.lock_is(rows[1].lock, "0x55550000"));
        assert!(p.lock_is(rows[1].lock, "55550000"));
        assert!(p.lock_is(rows[0].lock, "table_lock"));
        assert!(!p.lock_is(rows[0].lock, "stats_lock"));
        let first = p.lock(rows[0].lock).unwrap().first;
        assert!(first.is_some());
    }

    #[test]
    fn a_lock_whose_waits_decayed_to_none_keeps_its_row_for_its_time() {
        let mut p = profile();
        // top's decaying sums: the heap lock's one wait rounds down to none, its 100 ns to 87.
        p.scale_values(7, 8, Values::default());
        let rows = p.lock_rows();
        assert_eq!(rows.len(), 2);
        let heap = &rows[1];
        assert_eq!(p.lock_label(heap.lock), "0x55550000");
        assert_eq!((heap.contentions, heap.delay, heap.threads), (0, 87, 1));
    }

    #[test]
    fn views_weigh_waiters_and_holders_apart() {
        let mut p = profile();
        p.weigh(Weigh::LockWait, false);
        assert_eq!((p.total_count(), p.total_period()), (3, 8_100));
        assert!(p.samples.iter().all(|g| g.lock.is_some()));
        let mut p = profile();
        p.weigh(Weigh::LockHold, false);
        assert_eq!((p.total_count(), p.total_period()), (2, 8_000));
        let mut p = profile();
        p.weigh(Weigh::Cpu, false);
        assert_eq!((p.total_count(), p.total_period()), (2, 2_000));
    }

    #[test]
    fn stats_comment_round_trips() {
        let stats = LockStats {
            enabled: true,
            open_at_stop: 1,
            unmatched_ends: 2,
            no_holder: 3,
            probes: Vec::new(),
        };
        assert_eq!(LockStats::from_comment(&stats.to_comment()), Some(stats));
        assert_eq!(LockStats::from_comment("1 2"), None);
    }
}
