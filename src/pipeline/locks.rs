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
//! it lasted [`PTHREAD_WAIT_NANOS`] or more. The rule holds for the whole recording: Rust's contended-path
//! probes, placed in that mode too, lose their waits that only spun.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use super::{module_key, module_spec, Pipeline};
use crate::acquire::record::{Record, SampleKind, SampleRecord};
use crate::addr::Svma;
use crate::profile::{LocationId, LockId, LockStats};
use crate::symbolize::Segment;

mod waits;
pub use waits::{Ended, WaitCounts, Waits, Wake, PTHREAD_WAIT_NANOS};

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
        *walked_count += 1;
        if self.push_locations(sample.pid, &walked, &mut stack) {
            *truncated += 1;
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
            let how = if locks.waits.sees_switches() {
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
            notes.push(self.cut_stacks_note(
                "locks",
                "waiter and holder",
                (locks.truncated, locks.walked),
                locks.config.stack_bytes,
            ));
        }
        notes
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
}
