//! The sans-IO core of lock recording: the probes' hits, in time order, paired into waits (see `locks`'s
//! module docs for what is charged and what is counted).

use foldhash::{HashMap, HashMapExt};

use crate::profile::LockStats;

/// `--locks=pthread` without off-CPU recording: the least time inside `pthread_mutex_lock` that counts as a
/// wait. An uncontended call still takes the probes' traps: on the 2-CPU VM this was measured on (a uprobe's
/// trap costs 16 us there), 4.8% of 100,000 uncontended calls took 20 us or more, 0.5% 50 us, 0.03% 100 us
/// (interrupts, preemption). A contended wait shorter than this is missed: off-CPU recording (on by default
/// for a command, `-p` and `-t`) tells the calls that blocked instead, at any length.
pub const PTHREAD_WAIT_NANOS: u64 = 100_000;

/// How many locks' last releases are kept before the useless ones are let go (see [`Waits::wake`]): each
/// holds its sample's stack copy (4 KiB in hybrid mode), and a program with a lock per object may release
/// millions of locks.
const WAKES_KEPT: usize = 1024;

/// A thread's wait in progress.
#[derive(Debug)]
struct Pending<S> {
    pid: u32,
    lock: u64,
    start: u64,
    stack: S,
    /// It blocked during the wait (a switch-out that was not a preemption).
    blocked: bool,
}

/// The last release of a lock seen.
#[derive(Debug)]
pub struct Wake<S> {
    pub pid: u32,
    pub tid: u32,
    pub time: u64,
    pub stack: S,
}

/// A wait to charge: to its waiter's stack, and to the holder's when it has one.
#[derive(Debug, PartialEq, Eq)]
pub struct Ended<S> {
    pub pid: u32,
    pub tid: u32,
    /// The lock's address in `pid`.
    pub lock: u64,
    pub nanos: u64,
    /// The waiter's stack, to give back ([`Waits::give_back`]) once walked.
    pub stack: S,
    /// The holder: look its stack up with [`Waits::wake`].
    pub holder: Option<(u32, u32)>,
}

/// What `Waits` counted beyond [`LockStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitCounts {
    /// Waits charged.
    pub waits: u64,
    /// Waits whose end was lost (their thread began another): not charged.
    pub ends_lost: u64,
    /// `--locks=pthread`: calls that did not wait, not charged.
    pub not_waited: u64,
    /// Waits that had begun before a thread's exit: not charged.
    pub ended_at_exit: u64,
}

/// Per-thread waits and per-lock releases (see the module docs). `S` is a sample's stack, whatever the caller
/// keeps of one.
#[derive(Debug)]
pub struct Waits<S> {
    pending: HashMap<u32, Pending<S>>,
    /// The last release of each lock, by (pid, lock address).
    wakes: HashMap<(u32, u64), Wake<S>>,
    /// `wakes` is pruned when it grows past this.
    prune_at: usize,
    /// Probes on every call (`--locks=pthread`).
    every_call: bool,
    /// Switch records are recorded: `blocked` says whether a call waited.
    switches: bool,
    stats: LockStats,
    counts: WaitCounts,
    /// Stacks handed back, for the caller to reuse.
    spare: Vec<S>,
}

impl<S> Waits<S> {
    pub fn new(every_call: bool, switches: bool) -> Waits<S> {
        Waits {
            pending: HashMap::new(),
            wakes: HashMap::new(),
            prune_at: WAKES_KEPT,
            every_call,
            switches,
            stats: LockStats {
                enabled: true,
                ..LockStats::default()
            },
            counts: WaitCounts::default(),
            spare: Vec::new(),
        }
    }

    /// A stack to fill for the next hit, if one was handed back.
    pub fn spare(&mut self) -> Option<S> {
        self.spare.pop()
    }

    pub fn give_back(&mut self, stack: S) {
        if self.spare.len() < 64 {
            self.spare.push(stack);
        }
    }

    /// Thread `tid` of `pid` starts waiting for `lock` at `time`, from `stack`.
    pub fn start(&mut self, pid: u32, tid: u32, time: u64, lock: u64, stack: S) {
        let wait = Pending {
            pid,
            lock,
            start: time,
            stack,
            blocked: false,
        };
        if let Some(old) = self.pending.insert(tid, wait) {
            self.counts.ends_lost += 1;
            self.give_back(old.stack);
        }
    }

    /// Thread `tid` released `lock` at `time`, from `stack`. A release can only be the holder of a wait under
    /// way at it: once more than [`WAKES_KEPT`] locks' releases are kept, those older than every wait under
    /// way are let go (waits begun later cannot have them as holder).
    pub fn wake(&mut self, pid: u32, tid: u32, time: u64, lock: u64, stack: S) {
        let wake = Wake {
            pid,
            tid,
            time,
            stack,
        };
        if let Some(old) = self.wakes.insert((pid, lock), wake) {
            self.give_back(old.stack);
        }
        if self.wakes.len() > self.prune_at {
            let oldest = self.pending.values().map(|w| w.start).min().unwrap_or(time);
            let stale: Vec<(u32, u64)> = self
                .wakes
                .iter()
                .filter(|(_, w)| w.time < oldest)
                .map(|(&key, _)| key)
                .collect();
            for key in stale {
                if let Some(w) = self.wakes.remove(&key) {
                    self.give_back(w.stack);
                }
            }
            // Waits under way for long keep many releases: the next look is after as many more.
            self.prune_at = WAKES_KEPT.max(self.wakes.len() * 2);
        }
    }

    /// The last release of `lock` in `pid`.
    pub fn last_wake(&self, pid: u32, lock: u64) -> Option<&Wake<S>> {
        self.wakes.get(&(pid, lock))
    }

    /// Thread `tid` left its CPU without being preempted: a wait of a call-probed lock blocked.
    pub fn switched_out(&mut self, tid: u32) {
        if let Some(wait) = self.pending.get_mut(&tid) {
            wait.blocked = true;
        }
    }

    /// Thread `tid`'s wait ends at `time`: the wait to charge, if it counts.
    pub fn end(&mut self, tid: u32, time: u64) -> Option<Ended<S>> {
        let Some(wait) = self.pending.remove(&tid) else {
            self.stats.unmatched_ends += 1;
            return None;
        };
        let nanos = time.saturating_sub(wait.start);
        let waited = if !self.every_call {
            true
        } else if self.switches {
            wait.blocked
        } else {
            nanos >= PTHREAD_WAIT_NANOS
        };
        if !waited {
            self.counts.not_waited += 1;
            self.give_back(wait.stack);
            return None;
        }
        let holder = self
            .wakes
            .get(&(wait.pid, wait.lock))
            .filter(|w| w.tid != tid && (wait.start..=time).contains(&w.time))
            .map(|w| (w.pid, w.tid));
        if holder.is_none() {
            self.stats.no_holder += 1;
        }
        self.counts.waits += 1;
        Some(Ended {
            pid: wait.pid,
            tid,
            lock: wait.lock,
            nanos,
            stack: wait.stack,
            holder,
        })
    }

    /// Thread `tid` exited: a wait it had begun is not charged.
    pub fn exit(&mut self, tid: u32) {
        if let Some(wait) = self.pending.remove(&tid) {
            self.counts.ended_at_exit += 1;
            self.give_back(wait.stack);
        }
    }

    /// Process `pid` is gone: its locks' last releases are forgotten.
    pub fn forget_process(&mut self, pid: u32) {
        let gone: Vec<(u32, u64)> = self
            .wakes
            .keys()
            .filter(|(p, _)| *p == pid)
            .copied()
            .collect();
        for key in gone {
            if let Some(wake) = self.wakes.remove(&key) {
                self.give_back(wake.stack);
            }
        }
    }

    /// The recording stopped at `time`: the waits still going on are charged up to it, to their waiters only
    /// (a call-probed one only if it blocked or lasted long enough, as at its end).
    pub fn stop(&mut self, time: u64) -> Vec<Ended<S>> {
        let mut tids: Vec<u32> = self.pending.keys().copied().collect();
        tids.sort_unstable();
        let mut out = Vec::new();
        for tid in tids {
            let Some(wait) = self.pending.remove(&tid) else {
                continue;
            };
            let nanos = time.saturating_sub(wait.start);
            let waited =
                !self.every_call || wait.blocked || (!self.switches && nanos >= PTHREAD_WAIT_NANOS);
            if !waited {
                self.counts.not_waited += 1;
                self.give_back(wait.stack);
                continue;
            }
            self.stats.open_at_stop += 1;
            self.counts.waits += 1;
            out.push(Ended {
                pid: wait.pid,
                tid,
                lock: wait.lock,
                nanos,
                stack: wait.stack,
                holder: None,
            });
        }
        out
    }

    pub fn stats(&self) -> &LockStats {
        &self.stats
    }

    pub fn counts(&self) -> WaitCounts {
        self.counts
    }

    /// Whether switch records tell a call-probed wait that blocked.
    pub fn sees_switches(&self) -> bool {
        self.switches
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const LOCK: u64 = 0x4040;

    #[test]
    fn a_wait_is_charged_to_its_waiter_and_the_last_release_within_it() {
        let mut w: Waits<&str> = Waits::new(false, true);
        // A release before the wait began made nobody wait for it.
        w.wake(1, 9, 50, LOCK, "old");
        w.start(1, 2, 100, LOCK, "waiter");
        w.wake(1, 3, 150, LOCK, "other");
        w.wake(1, 4, 180, LOCK, "holder");
        let ended = w.end(2, 200).unwrap();
        assert_eq!(
            ended,
            Ended {
                pid: 1,
                tid: 2,
                lock: LOCK,
                nanos: 100,
                stack: "waiter",
                holder: Some((1, 4)),
            }
        );
        assert_eq!(w.last_wake(1, LOCK).unwrap().stack, "holder");
        // The waiter's own release after it waited holds nobody up: a wait that only that release falls in
        // has no holder.
        w.start(1, 2, 300, LOCK, "again");
        w.wake(1, 2, 310, LOCK, "self");
        let ended = w.end(2, 320).unwrap();
        assert_eq!(ended.holder, None);
        assert_eq!(w.stats().no_holder, 1);
        // Another lock's release is not this one's.
        w.start(1, 5, 400, LOCK, "x");
        w.wake(1, 3, 410, 0x5050, "elsewhere");
        assert_eq!(w.end(5, 420).unwrap().holder, None);
        assert_eq!(w.counts().waits, 3);
    }

    #[test]
    fn releases_no_wait_can_use_are_let_go_past_a_bound() {
        let mut w: Waits<u64> = Waits::new(false, true);
        w.start(1, 2, 500, LOCK, 0);
        for i in 0..WAKES_KEPT as u64 * 2 {
            w.wake(1, 3, i, 0x10_0000 + i, i);
        }
        // Kept: the releases since the wait under way began (the last one's, at 2047, among them).
        assert!(w.wakes.len() <= WAKES_KEPT * 2 - 500);
        assert!(w.last_wake(1, 0x10_0000 + 499).is_none());
        assert!(w.last_wake(1, 0x10_0000 + 500).is_some());
        w.wake(1, 3, 5_000, LOCK, 7);
        assert_eq!(w.end(2, 6_000).unwrap().holder, Some((1, 3)));
    }

    #[test]
    fn unpaired_hits_are_counted_not_charged() {
        let mut w: Waits<u32> = Waits::new(false, false);
        assert!(w.end(7, 10).is_none());
        assert_eq!(w.stats().unmatched_ends, 1);
        w.start(1, 7, 20, LOCK, 1);
        w.start(1, 7, 30, LOCK, 2);
        assert_eq!(w.counts().ends_lost, 1);
        assert_eq!(w.end(7, 35).unwrap().nanos, 5);
        w.start(1, 8, 40, LOCK, 3);
        w.exit(8);
        assert!(w.end(8, 50).is_none());
        assert_eq!(w.counts().ended_at_exit, 1);
        // The stacks of what was not charged come back for reuse.
        let mut spare = vec![];
        while let Some(s) = w.spare() {
            spare.push(s);
        }
        spare.sort_unstable();
        assert_eq!(spare, vec![1, 3]);
    }

    #[test]
    fn waits_open_at_the_stop_are_charged_up_to_it() {
        let mut w: Waits<u32> = Waits::new(false, true);
        w.start(1, 7, 100, LOCK, 1);
        w.start(1, 8, 150, LOCK, 2);
        let open = w.stop(1_000);
        assert_eq!(
            open.iter().map(|e| (e.tid, e.nanos)).collect::<Vec<_>>(),
            vec![(7, 900), (8, 850)]
        );
        assert!(open.iter().all(|e| e.holder.is_none()));
        assert_eq!(w.stats().open_at_stop, 2);
        assert_eq!(w.stats().no_holder, 0);
    }

    #[test]
    fn call_probes_count_only_calls_that_waited() {
        // With switch records: a call that blocked.
        let mut w: Waits<u32> = Waits::new(true, true);
        w.start(1, 7, 100, LOCK, 1);
        assert!(w.end(7, 1_000_000).is_none(), "long but never blocked");
        w.start(1, 7, 2_000_000, LOCK, 2);
        w.switched_out(7);
        assert_eq!(w.end(7, 2_000_500).unwrap().nanos, 500);
        assert_eq!(w.counts().not_waited, 1);
        // Without: a call that took long enough.
        let mut w: Waits<u32> = Waits::new(true, false);
        w.start(1, 7, 0, LOCK, 1);
        assert!(w.end(7, PTHREAD_WAIT_NANOS - 1).is_none());
        w.start(1, 7, 0, LOCK, 1);
        assert!(w.end(7, PTHREAD_WAIT_NANOS).is_some());
        // The contended-path probes count every wait, blocked or not.
        let mut w: Waits<u32> = Waits::new(false, true);
        w.start(1, 7, 0, LOCK, 1);
        assert!(w.end(7, 10).is_some());
    }
}
