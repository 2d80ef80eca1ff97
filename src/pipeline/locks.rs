//! Lock contention (`--locks`): the lock probes' samples paired into waits, each charged to its waiter and to
//! the thread that released the lock to it. Sans-IO: [`Waits`] is fed the probes' hits (their samples still
//! unwalked: a stack is walked only when its wait is charged), a thread's blocking and its exit, in time
//! order, and hands back [`Ended`] waits; the pipeline ([`super::Pipeline`]) walks their stacks, names the
//! lock and adds them to the profile.
//!
//! ```text
//!   waiter  ──┤ LockWait (lock, stack) ├······ waits ······┤ LockAcquired ├── holds the lock
//!             start                                         end: nanos = end - start
//!   holder  ───── holds ─────┤ LockWake (lock, stack) ├── released
//!                            the last wake of the lock by another thread in [start, end]: the holder
//! ```
//! The holder is Go's mutex profile's: the stack that released the lock last before the wait ended, charged
//! with the whole wait it caused. A wait no release of its lock falls in (the holder let go while the waiter
//! still spun, or the release's record came after the wait's end on another CPU) is charged to its waiter
//! only, and counted (`no_holder`).
//!
//! Nothing is invented. A wait is charged from its start to its end as the probes saw them, or up to the stop
//! (`open_at_stop`). An end without its start (a lost record, or a wait begun before the recording attached)
//! is not charged (`unmatched_ends`); a start followed by another start of the same thread lost its end and
//! is not charged either (`ends_lost`). A thread that exits (a killed process) while waiting is not charged.
//!
//! Probes on every lock call (`--locks=pthread`: `pthread_mutex_lock` and `pthread_mutex_unlock` are probed,
//! not the contended path) see every call as a wait: one counts only if the thread blocked during it (it
//! switched out, not preempted, as off-CPU recording's switch records say), or, without switch records, if
//! it lasted [`PTHREAD_WAIT_NANOS`] or more.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use super::{module_key, module_spec, Pipeline, TRUNCATED};
use crate::acquire::record::{Record, SampleKind, SampleRecord};
use crate::addr::Svma;
use crate::profile::{LocationId, LockId, LockStats};
use crate::symbolize::Segment;

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
}

/// The load bias of a module (address = SVMA + bias) from one of its mappings: `[start, end)` mapping the file
/// from offset `pgoff`. A mapping starts on a page, so its first page may hold the end of the segment before
/// the one it was made for (rustc's `R E` segment starts mid-page, its `p_vaddr` a page further than its
/// `p_offset`); a short segment may end before the mapping's last page:
/// ```text
///   file:    | R segment ....|| R E segment ..............|       pgoff = page of the R E segment's start
///   mapping:  [start ......................................)     mostly the R E segment's bytes
/// ```
/// so the segment is the one that overlaps the mapping's bytes most.
fn load_bias(segments: &[Segment], start: u64, end: u64, pgoff: u64) -> Option<u64> {
    let file_end = pgoff.checked_add(end.checked_sub(start)?)?;
    let overlap = |s: &Segment| {
        let from = s.offset.max(pgoff);
        let to = s.offset.saturating_add(s.size).min(file_end);
        (to > from).then_some((to - from, from))
    };
    let (s, from) = segments
        .iter()
        .filter_map(|s| overlap(s).map(|(len, from)| (len, s, from)))
        .max_by_key(|&(len, _, _)| len)
        .map(|(_, s, from)| (s, from))?;
    let address = start.wrapping_add(from - pgoff);
    Some(address.wrapping_sub(s.vaddr.wrapping_add(from - s.offset)))
}

/// Lock recording, as the source says it was made.
#[derive(Clone, Debug, Default)]
pub struct LocksConfig {
    /// What was probed, one line each (the profile's `Meta.locks.probes`).
    pub probes: Vec<String>,
    /// The probes are hit at every lock call (`--locks=pthread`).
    pub every_call: bool,
    /// User stack bytes copied at each wait's and wake's probe (0: frame pointers only), for the notes.
    pub stack_bytes: u32,
}

/// The pipeline's lock state: the waits, and what it knows of the locks' names.
pub(super) struct Locks {
    waits: Waits<SampleRecord>,
    config: LocksConfig,
    /// Each lock's name once looked for, by (pid, address): `None` for a lock no symbol covers (the heap, a
    /// stack). Kept across the profile's generations.
    names: HashMap<(u32, u64), Option<(String, String)>>,
    /// Locks of the profile whose name waits for a module still loading in the background.
    unnamed: Vec<(u32, u64)>,
    /// Stacks walked (waiters' and holders'), and of them stacks cut before their root.
    walked: u64,
    truncated: u64,
}

impl Locks {
    /// `switches`: off-CPU recording's switch records come too (they tell a call-probed wait that blocked).
    pub(super) fn new(config: LocksConfig, switches: bool) -> Locks {
        Locks {
            waits: Waits::new(config.every_call, switches),
            config,
            names: HashMap::new(),
            unnamed: Vec::new(),
            walked: 0,
            truncated: 0,
        }
    }
}

impl Pipeline {
    /// The part of a record lock recording sees: a thread's blocking (for call probes), a thread's exit, an
    /// exec (the process's lock addresses name other things after it).
    pub(super) fn locks_see(&mut self, record: &Record) {
        let Some(locks) = &mut self.locks else {
            return;
        };
        match *record {
            Record::Switch {
                tid,
                out: true,
                preempt: false,
                ..
            } => locks.waits.switched_out(tid),
            Record::Exit { tid, .. } => locks.waits.exit(tid),
            Record::Comm {
                pid, exec: true, ..
            } => locks.names.retain(|&(p, _), _| p != pid),
            _ => {}
        }
    }

    /// A lock probe's hit: a wait begins (its sample kept, unwalked), a lock is released (the same), or a wait
    /// ends and is charged.
    pub(super) fn on_lock_sample(&mut self, sample: &SampleRecord) {
        let Some(mut locks) = self.locks.take() else {
            return;
        };
        let kept = |locks: &mut Locks| {
            let mut kept = locks.waits.spare().unwrap_or_default();
            kept.clone_from(sample);
            kept
        };
        match sample.kind {
            SampleKind::LockWait { lock } => {
                let kept = kept(&mut locks);
                locks
                    .waits
                    .start(sample.pid, sample.tid, sample.time, lock, kept);
            }
            SampleKind::LockWake { lock } => {
                let kept = kept(&mut locks);
                locks
                    .waits
                    .wake(sample.pid, sample.tid, sample.time, lock, kept);
            }
            SampleKind::LockAcquired => {
                if let Some(ended) = locks.waits.end(sample.tid, sample.time) {
                    self.charge_wait(&mut locks, ended);
                }
            }
            SampleKind::Cpu | SampleKind::SwitchOut => {}
        }
        self.locks = Some(locks);
    }

    /// Adds a wait to the profile: at its waiter's stack, and at its holder's (the last release's) when it
    /// has one.
    fn charge_wait(&mut self, locks: &mut Locks, ended: Ended<SampleRecord>) {
        let lock = self.lock_id(locks, ended.pid, ended.lock);
        let stack = self.lock_stack(locks, &ended.stack);
        let comm = self.comm_of(ended.pid, ended.tid);
        self.profile
            .add_lock_wait(&stack, (ended.pid, ended.tid, comm), lock, ended.nanos);
        if let Some((pid, tid)) = ended.holder {
            if let Some(wake) = locks.waits.last_wake(ended.pid, ended.lock) {
                let stack =
                    self.lock_stack_of(&wake.stack, &mut locks.walked, &mut locks.truncated);
                let comm = self.comm_of(pid, tid);
                self.profile
                    .add_lock_hold(&stack, (pid, tid, comm), lock, ended.nanos);
            }
        }
        locks.waits.give_back(ended.stack);
    }

    fn lock_stack(&mut self, locks: &mut Locks, sample: &SampleRecord) -> Vec<LocationId> {
        self.lock_stack_of(sample, &mut locks.walked, &mut locks.truncated)
    }

    /// The stack of a lock probe's sample, walked as a CPU sample's is.
    fn lock_stack_of(
        &mut self,
        sample: &SampleRecord,
        walked_count: &mut u64,
        truncated: &mut u64,
    ) -> Vec<LocationId> {
        let walked = self.walk(sample);
        let mut stack = Vec::with_capacity(walked.frames.len() + 1);
        for frame in &walked.frames {
            stack.push(self.location(sample.pid, frame.address, frame.kernel));
        }
        *walked_count += 1;
        if walked.truncated {
            *truncated += 1;
            stack.push(self.truncated_location());
        }
        self.walked = walked;
        stack
    }

    /// The profile's lock at `address` in `pid`, named when new to the profile (and its name can be told
    /// now; else once its module is loaded, see [`Pipeline::name_pending_locks`]).
    fn lock_id(&mut self, locks: &mut Locks, pid: u32, address: u64) -> LockId {
        let known = self.profile.locks.len();
        let id = self.profile.add_lock(pid, address);
        if id.index() >= known {
            match self.lock_name(locks, pid, address, false) {
                Some(Some((symbol, module))) => {
                    self.profile.set_lock_symbol(id, &symbol, Some(&module))
                }
                Some(None) => {}
                None => locks.unnamed.push((pid, address)),
            }
        }
        id
    }

    /// The name of the lock at `address` in `pid`: the data object of a module mapped by the process that
    /// holds it (`table_lock`, or `locks+0x28` inside an array or a struct) with the module's path;
    /// `Some(None)` when none does (the heap, a stack); `None` when a module that may hold it is still loading
    /// in the background and `force` is not set (`force` loads it here).
    ///
    /// The process stage keeps code mappings only; a module's data lies at the same load bias as its code:
    /// ```text
    ///   bias = code mapping's start - SVMA of its file offset        SVMA of the lock = address - bias
    /// ```
    /// which lands in a symbol of the module only if the address is inside the module's image (`.data` or
    /// `.bss`, even the part of `.bss` past the file's last page, which the kernel maps anonymous).
    fn lock_name(
        &mut self,
        locks: &mut Locks,
        pid: u32,
        address: u64,
        force: bool,
    ) -> Option<Option<(String, String)>> {
        if let Some(known) = locks.names.get(&(pid, address)) {
            return Some(known.clone());
        }
        let mut seen = HashSet::new();
        let mut pending = false;
        for (mapping, module) in self.processes.mappings(pid) {
            if module.is_pseudo() || module.is_anonymous() || !seen.insert(module_key(&module)) {
                continue;
            }
            let spec = module_spec(&module, &mapping, &self.processes, self.offline);
            if !force && self.background.is_some() && !self.symbolizer.is_loaded(&spec) {
                pending = true;
                continue;
            }
            let segments = self.symbolizer.segments(&spec);
            let Some(bias) = load_bias(&segments, mapping.start.0, mapping.end.0, mapping.pgoff.0)
            else {
                continue;
            };
            if let Some((name, offset)) = self
                .symbolizer
                .data_at(&spec, Svma(address.wrapping_sub(bias)))
            {
                let label = match offset {
                    0 => name,
                    n => format!("{name}+{n:#x}"),
                };
                let found = Some((label, module.path.clone()));
                locks.names.insert((pid, address), found.clone());
                return Some(found);
            }
        }
        if pending {
            return None;
        }
        locks.names.insert((pid, address), None);
        Some(None)
    }

    /// Names the profile's locks whose module was still loading when they were first met, loading it now if
    /// it still is (a refresh of `top`, the end of a recording).
    pub(super) fn name_pending_locks(&mut self) {
        let Some(mut locks) = self.locks.take() else {
            return;
        };
        for (pid, address) in std::mem::take(&mut locks.unnamed) {
            if let Some((symbol, module)) = self.lock_name(&mut locks, pid, address, true).flatten()
            {
                let id = self.profile.add_lock(pid, address);
                self.profile.set_lock_symbol(id, &symbol, Some(&module));
            }
        }
        self.locks = Some(locks);
    }

    /// The end of the recording (`time`: when the counters stopped, if known): the waits still going on are
    /// charged up to it. Sets the profile's lock figures.
    pub fn finish_locks(&mut self, time: Option<u64>) {
        let Some(mut locks) = self.locks.take() else {
            return;
        };
        let end = time.unwrap_or(0).max(self.latest_time);
        for ended in locks.waits.stop(end) {
            self.charge_wait(&mut locks, ended);
        }
        self.locks = Some(locks);
        self.set_lock_stats();
    }

    /// The profile's `Meta.locks`: what was probed, and the waits it could not measure or attribute.
    pub(super) fn set_lock_stats(&mut self) {
        if let Some(locks) = &self.locks {
            self.profile.meta.locks = LockStats {
                probes: locks.config.probes.clone(),
                ..locks.waits.stats().clone()
            };
        }
    }

    /// Processes let go (`release`): their locks' last releases and names go too.
    pub(super) fn locks_forget(&mut self, exited: &[u32]) {
        if let Some(locks) = &mut self.locks {
            for &pid in exited {
                locks.waits.forget_process(pid);
            }
            locks.names.retain(|(pid, _), _| !exited.contains(pid));
        }
    }

    /// What lock recording could not measure or attribute beyond `Meta.locks` (see [`WaitCounts`]), in notes.
    pub fn lock_notes(&self) -> Vec<String> {
        let Some(locks) = &self.locks else {
            return Vec::new();
        };
        let counts = locks.waits.counts();
        let mut notes = Vec::new();
        if counts.ends_lost > 0 {
            notes.push(format!(
                "locks: {} waits whose end was lost (records lost) are not charged",
                counts.ends_lost
            ));
        }
        if counts.ended_at_exit > 0 {
            notes.push(format!(
                "locks: {} waits cut by their thread's exit are not charged",
                counts.ended_at_exit
            ));
        }
        if locks.config.every_call {
            let how = if locks.waits.switches {
                "did not block".to_owned()
            } else {
                format!(
                    "took less than {} us (off-CPU recording would tell which blocked)",
                    PTHREAD_WAIT_NANOS / 1000
                )
            };
            notes.push(format!(
                "locks: every pthread_mutex_lock and pthread_mutex_unlock call was probed (--locks=pthread); {} calls {how} and are not counted as waits",
                counts.not_waited
            ));
        }
        if locks.truncated > 0 {
            let copy = match (locks.config.stack_bytes, &self.unwinders) {
                (0, _) | (_, None) => String::new(),
                (n, Some(_)) => format!(
                    " (each copies {n} bytes of user stack; --call-graph dwarf,BYTES copies more)"
                ),
            };
            notes.push(format!(
                "locks: {} of {} waiter and holder stacks were cut before their root{copy}: they end in {TRUNCATED}",
                locks.truncated, locks.walked
            ));
        }
        notes
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
    fn the_load_bias_comes_from_the_segment_a_mapping_was_made_for() {
        // rustc's layout: the R E segment starts mid-page, a page further in memory than in the file.
        let segments = [
            Segment {
                offset: 0,
                size: 0x19458,
                vaddr: 0,
            },
            Segment {
                offset: 0x19460,
                size: 0x43d40,
                vaddr: 0x1a460,
            },
        ];
        let base = 0x5569_e36b_7000;
        assert_eq!(
            load_bias(&segments, base + 0x1a000, base + 0x5e000, 0x19000),
            Some(base)
        );
        // gcc's, where offset and address agree, with a code segment shorter than half its mapping.
        let segments = [
            Segment {
                offset: 0,
                size: 0x848,
                vaddr: 0,
            },
            Segment {
                offset: 0x1000,
                size: 0x7fd,
                vaddr: 0x1000,
            },
            Segment {
                offset: 0x2dd0,
                size: 0x288,
                vaddr: 0x3dd0,
            },
        ];
        assert_eq!(
            load_bias(&segments, base + 0x1000, base + 0x2000, 0x1000),
            Some(base)
        );
        assert_eq!(load_bias(&segments, base, base, 0x9000), None);
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
