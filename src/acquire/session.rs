//! A recording session: counters per CPU, one ring buffer per CPU, a poll loop that drains them.
//!
//! ```text
//!  target threads x CPUs  ──counters──>  CPU 0 ring  <── SET_OUTPUT ── other counters on CPU 0
//!                                        CPU 1 ring  <── ...
//!  poll(rings) -> drain every ring -> convert -> Reorder (time order across rings) -> out
//! ```

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use perf_event_open::sample::record::{Parser, RawRecord};

use super::convert::convert;
use super::counters::{
    online_cpus, uprobe_pmu_type, LockEvent, Opener, RingKind, Rings, SwitchEvent, What,
};
use super::launch::{self, spawn_stopped};
use super::order::Reorder;
use super::procfs;
use super::record::{Attach, AttachedThread, Record, SampleKind, SampleRecord};
use super::sample::{self, Recycler, StackBudget};
use super::{
    AcquireError, CallGraphMode, EventSpec, LockProbes, ProbeRole, SessionConfig, Stats, Target,
};

/// The least time between two looks at whether attached targets still run (a read of `/proc/PID/stat` each):
/// at every 4 ms tick of the reader (as it was then) they were a quarter of `record -p`'s CPU while recording.
const LIVENESS_EVERY: Duration = Duration::from_millis(50);

/// How long after its time stamp a record may still be unwritten in its ring (nanoseconds). A record waited
/// a whole round for the rings to pass it (perf's rule, `order`); taken at once when the round read every
/// ring to its end, the delay from sample to walk is half what it was for the same tick (the continuation
/// in live memory needs it short, see `pipeline::reader::CONTINUE_TICK`).
const WRITE_SLACK_NS: u64 = 1_000_000;

/// Turns one raw record into ours: samples through `sample::parse` into a pooled buffer, switch records
/// through `sample::parse_switch`, the rest through the crate's parser (`convert`).
struct RecordReader<'a> {
    parser: &'a Parser,
    /// The ring's kind: which counter took its samples.
    kind: RingKind,
    /// Lock probes by counter id.
    roles: &'a HashMap<u64, ProbeRole>,
    stack_limit: &'a dyn Fn(u32) -> Option<usize>,
    /// Keep no stack copies (hybrid CPU samples read while the reader is behind the kernel: see
    /// [`Session::drain`]).
    shed: bool,
    recycler: &'a Recycler,
    spare: &'a mut Vec<SampleRecord>,
}

impl RecordReader<'_> {
    fn read(&mut self, raw: &RawRecord<'_>) -> Option<Record> {
        let bytes = raw.as_raw().as_bytes();
        let sample_type = self.parser.sample_type;
        if sample::is_switch(bytes) {
            if let Some(record) = sample::parse_switch(bytes, sample_type) {
                return Some(record);
            }
        }
        if !(sample::supported(sample_type) && sample::is_sample(bytes)) {
            let (mode, parsed) = raw.parse();
            return match convert(mode, parsed) {
                Some(Record::Lost { time, count, .. }) => Some(Record::Lost {
                    time,
                    count,
                    off_cpu: self.kind == RingKind::Switch,
                }),
                other => other,
            };
        }
        if self.spare.is_empty() {
            self.recycler.refill(self.spare);
        }
        let mut s = self.spare.pop().unwrap_or_default();
        let id = sample::parse(
            bytes,
            sample_type,
            self.parser.user_regs,
            if self.shed {
                &|_| Some(0)
            } else {
                self.stack_limit
            },
            &mut s,
        )?;
        s.shed = self.shed;
        s.kind = match self.kind {
            RingKind::Cpu => SampleKind::Cpu,
            RingKind::Switch => SampleKind::SwitchOut,
            RingKind::Lock => match lock_kind(self.roles.get(&id).copied(), &mut s) {
                Some(kind) => kind,
                None => {
                    self.spare.push(s);
                    return None;
                }
            },
        };
        Some(Record::Sample(s))
    }
}

/// Whose lock probes' samples a session keeps: the probes fire in every process that maps the probed files
/// (see `Opener::open_locks`).
#[derive(Debug)]
enum LockTargets {
    /// `-a`.
    All,
    /// A launched command, `-p`: these processes and the children they fork (followed through the CPU
    /// counter's fork records, which come before a child's samples in time order).
    Processes(HashSet<u32>),
    /// `-t`: these threads' waits, and the releases of their processes' threads (the holders of their locks).
    Threads {
        tids: HashSet<u32>,
        pids: HashSet<u32>,
    },
}

impl LockTargets {
    /// Takes the lock samples of other processes out of `records[from..]` (in time order), their buffers
    /// kept for reuse in `spare`; returns how many.
    fn keep(
        &mut self,
        records: &mut Vec<Record>,
        from: usize,
        spare: &mut Vec<SampleRecord>,
    ) -> u64 {
        if matches!(self, LockTargets::All) {
            return 0;
        }
        let mut dropped = 0;
        let mut kept = from;
        for i in from..records.len() {
            let keep = match (&mut *self, &records[i]) {
                (LockTargets::Processes(pids), Record::Fork { pid, ppid, .. }) => {
                    if pid != ppid && pids.contains(ppid) {
                        pids.insert(*pid);
                    }
                    true
                }
                (LockTargets::Processes(pids), Record::Sample(s)) if s.kind.is_lock() => {
                    pids.contains(&s.pid)
                }
                (LockTargets::Threads { tids, pids }, Record::Sample(s)) if s.kind.is_lock() => {
                    match s.kind {
                        SampleKind::LockWake { .. } => pids.contains(&s.pid),
                        _ => tids.contains(&s.tid),
                    }
                }
                _ => true,
            };
            if keep {
                records.swap(kept, i);
                kept += 1;
            } else {
                dropped += 1;
            }
        }
        for record in records.drain(kept..) {
            if let Record::Sample(s) = record {
                if spare.len() < 1024 {
                    spare.push(s);
                }
            }
        }
        dropped
    }
}

/// What a lock probe's sample says, from its probe's role; the lock's address is taken out of its registers,
/// which are left as any sample's (the walk's). `None` for a sample of no known probe, or an entry without
/// its argument.
fn lock_kind(role: Option<ProbeRole>, s: &mut SampleRecord) -> Option<SampleKind> {
    let lock = s.user_regs.as_mut().and_then(crate::arch::take_first_arg);
    if s.user_regs.as_ref().is_some_and(Vec::is_empty) {
        s.user_regs = None;
    }
    match role? {
        ProbeRole::Wait => Some(SampleKind::LockWait { lock: lock? }),
        ProbeRole::Acquired => Some(SampleKind::LockAcquired),
        ProbeRole::Wake => Some(SampleKind::LockWake { lock: lock? }),
    }
}

/// A running recording. Dropping it closes the counters; a launched command keeps running (and is
/// reaped only by `read`/`finish` calls after it exits).
///
/// Record timestamps are `CLOCK_MONOTONIC` nanoseconds (comparable across CPUs and with user-space
/// clocks); records synthesized from `/proc` for what already ran are stamped 0 and come first.
///
/// ```no_run
/// use std::time::Duration;
/// use stacktop::acquire::{CallGraphMode, CommandOutput, Session, SessionConfig, Target};
///
/// let mut session = Session::start(SessionConfig {
///     target: Target::Command(vec!["ls".into()]),
///     event: "cpu-clock".parse()?,
///     frequency: 999,
///     call_graph: CallGraphMode::Fp,
///     command_output: CommandOutput::Inherit,
///     off_cpu: false,
///     locks: None,
/// })?;
/// let mut records = vec![];
/// while !session.is_finished() {
///     session.read(Duration::from_millis(100), &mut records)?;
/// }
/// session.finish(&mut records)?;
/// # Ok::<(), stacktop::acquire::AcquireError>(())
/// ```
pub struct Session {
    reorder: Reorder,
    rings: Rings,
    stats: Stats,
    event: EventSpec,
    call_graph: CallGraphMode,
    frequency: u64,
    max_stack: u16,
    notes: Vec<String>,
    child: Option<u32>,
    child_status: Option<i32>,
    /// Whether stacktop asked the launched command to end (`terminate_child`): its status is then ours.
    child_terminated: bool,
    /// Pids or tids whose end ends the session (`-p`, `-t`).
    watched: Vec<u32>,
    /// When `watched` was last looked up in `/proc` (see [`LIVENESS_EVERY`]).
    liveness_checked: std::cell::Cell<Option<std::time::Instant>>,
    finished: bool,
    /// Samples the consumer is done with, and the reader's own stock of them to refill.
    recycler: Recycler,
    spare: Vec<SampleRecord>,
    budget: StackBudget,
    /// Off-CPU recording: the stack bytes copied per switch-out (`None`: off).
    switch_stack: Option<u32>,
    /// Attached recordings with off-CPU time: the threads found, and when.
    attach: Option<Attach>,
    /// Every record stamped at or before this has been handed out (see [`Session::watermark`]).
    watermark: u64,
    /// When the counters were disabled.
    stopped_at: Option<u64>,
    /// Lock recording: the probes placed, and the stack bytes their entry samples copy.
    locks: Option<(LockProbes, u32)>,
    /// Whose lock samples are kept.
    lock_targets: LockTargets,
}

impl Session {
    /// Opens counters for the target and starts sampling (a command is launched here).
    pub fn start(cfg: SessionConfig) -> Result<Session, AcquireError> {
        if !Path::new("/proc/sys/kernel/perf_event_paranoid").exists() {
            return Err(AcquireError::Unsupported);
        }
        if matches!(&cfg.target, Target::Pids(v) | Target::Tids(v) if v.is_empty()) {
            return Err(AcquireError::NoTarget);
        }
        let mut notes = vec![];
        let mut frequency = cfg.frequency.max(1);
        if let Some(max) = procfs::max_sample_rate().filter(|&max| max > 0 && frequency > max) {
            // perf does the same: the kernel would refuse the counter (EINVAL).
            notes.push(format!(
                "-F {frequency} is above kernel.perf_event_max_sample_rate; sampling at {max} Hz"
            ));
            frequency = max;
        }
        let cpus = online_cpus();
        let max_stack = procfs::max_stack();
        // Only sizes the wakeup watermark; larger pages just mean earlier wakeups.
        let page_size = 4096u32;
        let switch_stack = cfg.off_cpu.then(|| cfg.call_graph.switch_stack_bytes());
        let lock_stack = cfg
            .locks
            .as_ref()
            .map(|_| cfg.call_graph.lock_stack_bytes());
        let mut rings = Rings::new(
            cfg.call_graph,
            frequency,
            cpus.len(),
            switch_stack,
            lock_stack,
        );
        let locks = match (&cfg.locks, lock_stack) {
            (Some(probes), Some(stack_bytes)) => Some(lock_event(
                probes,
                stack_bytes,
                rings
                    .lock_pages_log2
                    .first()
                    .map_or(page_size, |&exp| (page_size << exp) / 4),
            )?),
            _ => None,
        };
        let mut opener = Opener {
            spec: cfg.event,
            call_graph: cfg.call_graph,
            frequency,
            max_stack,
            // Not asked for: kernels up to at least 6.18 leave PERF_RECORD_MISC_MMAP_BUILD_ID set in the
            // shared mmap event once one counter asked for build-ids, so every other session on the machine
            // (a concurrent `perf record`, which perf 6.1 then aborts on) gets dev/inode records flagged as
            // build-ids. Build-ids are read from the files themselves instead (the symbolizer opens them
            // through /proc/PID/map_files while the process lives).
            build_id: false,
            inherit: !matches!(cfg.target, Target::Tids(_) | Target::System),
            enable_on_exec: matches!(cfg.target, Target::Command(_)),
            system: matches!(cfg.target, Target::System),
            // Wake up when a quarter of the (largest tried) ring is full.
            wakeup_bytes: (page_size << rings.pages_log2[0]) / 4,
            switches: switch_stack.map(|stack_bytes| SwitchEvent {
                stack_bytes,
                wakeup_bytes: rings
                    .switch_pages_log2
                    .first()
                    .map_or(page_size, |&exp| (page_size << exp) / 4),
            }),
            switches_opened: false,
            locks,
            notes,
        };
        // Lock probes are opened for every process (see `Opener::open_locks`), before the target's counters so
        // that a launched command is probed from its first instruction, and enabled at once: the samples of
        // other processes are dropped as they are read (`LockTargets`).
        let lock_what = match &cfg.target {
            Target::Command(argv) => What::Command(
                argv.first()
                    .map(|a| a.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
            Target::Pids(p) => What::Pid(p.first().copied().unwrap_or(0)),
            Target::Tids(t) => What::Tid(t.first().copied().unwrap_or(0)),
            Target::System => What::System,
        };
        for &cpu in &cpus {
            for (counter, role) in opener.open_locks(cpu, &lock_what)? {
                counter
                    .enable()
                    .map_err(|e| AcquireError::io("enabling a lock probe", e))?;
                rings.add_lock(cpu, counter, role)?;
            }
        }
        let mut synthetic = vec![];
        let mut child = None;
        let mut watched = vec![];
        // Threads that already ran: (pid, tid).
        let mut attached: Vec<(u32, u32)> = vec![];

        match &cfg.target {
            Target::Command(argv) => {
                let stopped = spawn_stopped(argv, &cfg.command_output)?;
                let what = What::Command(
                    argv.first()
                        .map(|a| a.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                );
                let pid = stopped.pid();
                for &cpu in &cpus {
                    open_counters(&mut opener, &mut rings, Some(pid), cpu, &what)?;
                }
                // Counters are armed with enable_on_exec: the command's first instruction is sampled.
                child = Some(stopped.release()?);
            }
            Target::Pids(pids) => {
                // A thread id names its process here, as in perf.
                let mut processes = vec![];
                for &pid in pids {
                    user_task(pid, AcquireError::NoSuchProcess { pid })?;
                    let tgid =
                        procfs::tgid(pid).map_err(|_| AcquireError::NoSuchProcess { pid })?;
                    if !processes.contains(&tgid) {
                        processes.push(tgid);
                    }
                }
                for pid in processes {
                    let tids = attach_threads(pid, &cpus, &mut opener, &mut rings)?;
                    procfs::synthesize(pid, &tids, 0, &mut synthetic);
                    attached.extend(tids.iter().map(|&tid| (pid, tid)));
                    watched.push(pid);
                }
            }
            Target::Tids(tids) => {
                for &tid in tids {
                    user_task(tid, AcquireError::NoSuchThread { tid })?;
                    let tgid = procfs::tgid(tid).map_err(|_| AcquireError::NoSuchThread { tid })?;
                    for &cpu in &cpus {
                        open_counters(&mut opener, &mut rings, Some(tid), cpu, &What::Tid(tid))?;
                    }
                    procfs::synthesize(tgid, &[tid], 0, &mut synthetic);
                    attached.push((tgid, tid));
                    watched.push(tid);
                }
            }
            Target::System => {
                for &cpu in &cpus {
                    open_counters(&mut opener, &mut rings, None, cpu, &What::System)?;
                }
                // The idle task has no /proc entry; perf calls it swapper.
                synthetic.push(Record::Comm {
                    pid: 0,
                    tid: 0,
                    time: 0,
                    name: "swapper".to_owned(),
                    exec: false,
                });
                // After the counters are open, so a process started meanwhile is seen by one or the other.
                for pid in procfs::pids().map_err(|e| AcquireError::io("listing /proc", e))? {
                    if let Ok(tids) = procfs::tasks(pid) {
                        procfs::synthesize(pid, &tids, 0, &mut synthetic);
                        attached.extend(tids.iter().map(|&tid| (pid, tid)));
                    }
                }
            }
        }

        if !opener.enable_on_exec {
            for counter in rings.counters() {
                counter
                    .enable()
                    .map_err(|e| AcquireError::io("enabling a counter", e))?;
            }
        }
        let switch_stack = opener.switches.map(|s| s.stack_bytes);
        // Read after enabling: a thread asleep now was asleep when its counters started, give or take the time
        // this loop takes (a thread that ran meanwhile shows it by switching out first).
        let attach = (switch_stack.is_some() && !attached.is_empty()).then(|| Attach {
            time: monotonic_now(),
            threads: attached
                .iter()
                .filter_map(|&(pid, tid)| {
                    Some(AttachedThread {
                        pid,
                        tid,
                        runnable: procfs::is_runnable(pid, tid)?,
                    })
                })
                .collect(),
        });

        let lock_targets = match &cfg.target {
            Target::System => LockTargets::All,
            Target::Tids(tids) => LockTargets::Threads {
                tids: tids.iter().copied().collect(),
                pids: attached.iter().map(|&(pid, _)| pid).collect(),
            },
            Target::Command(_) | Target::Pids(_) => {
                LockTargets::Processes(watched.iter().chain(&child).copied().collect())
            }
        };
        let mut reorder = Reorder::default();
        for record in synthetic {
            reorder.push(record);
        }
        Ok(Session {
            reorder,
            rings,
            stats: Stats::default(),
            event: opener.spec,
            call_graph: cfg.call_graph,
            frequency,
            max_stack,
            notes: opener.notes,
            child,
            child_status: None,
            child_terminated: false,
            watched,
            liveness_checked: std::cell::Cell::new(None),
            finished: false,
            recycler: Recycler::default(),
            spare: Vec::new(),
            budget: StackBudget::default(),
            switch_stack,
            attach,
            watermark: 0,
            stopped_at: None,
            locks: cfg.locks.zip(lock_stack),
            lock_targets,
        })
    }

    /// Waits up to `timeout` for data, drains the rings and appends the records that are now in
    /// timestamp order to `out` (records newer than what every ring has reached wait for the next call).
    pub fn read(&mut self, timeout: Duration, out: &mut Vec<Record>) -> Result<(), AcquireError> {
        if !self.finished {
            self.poll(timeout)?;
            let round_start = monotonic_now();
            let (_, dry) = self.drain();
            let from = out.len();
            // Every ring read to its end: everything stamped before the round began has been read, but for
            // records stamped and not yet written (the kernel writes a record as it stamps it; `WRITE_SLACK_NS`
            // covers the stack copy in between, and a guest CPU paused by its host).
            let read_to = dry.then(|| round_start.saturating_sub(WRITE_SLACK_NS));
            let limit = self.reorder.end_round(out, read_to);
            self.keep_target_locks(out, from);
            self.admit(out, from);
            // Every ring ran dry and every record read was handed out: nothing stamped before this round
            // began is still to come (the kernel writes a record as it stamps it).
            let reached = if dry && self.reorder.is_empty() {
                round_start
            } else {
                limit
            };
            self.watermark = self.watermark.max(reached);
        }
        self.reap();
        Ok(())
    }

    /// Every record stamped at or before this time (`CLOCK_MONOTONIC` nanoseconds) has been handed out by
    /// `read`: an interval still open at this time is open for certain (`top` charges open off-CPU intervals
    /// up to it).
    pub fn watermark(&self) -> u64 {
        self.watermark
    }

    fn poll(&self, timeout: Duration) -> Result<(), AcquireError> {
        let mut fds: Vec<libc::pollfd> = self
            .rings
            .rings
            .iter()
            .map(|r| libc::pollfd {
                fd: r.counter.file().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `fds` is a valid, initialized array of `fds.len()` pollfd structs that outlives the call.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                return Err(AcquireError::io("polling the ring buffers", err));
            }
        }
        Ok(())
    }

    /// Drains every ring once; returns how many records were taken, and whether every ring ran dry.
    ///
    /// A ring is read for at most its own size per round, though the kernel goes on writing while it is
    /// read: that covers every record it held when the round began, which is all the time order needs (see
    /// `order`), and a round always ends. Read to empty, a ring that fills as fast as it is read kept the
    /// reader in one round for ever, holding every record it read, and handing none on.
    fn drain(&mut self) -> (usize, bool) {
        let Session {
            rings,
            budget,
            recycler,
            spare,
            stats,
            reorder,
            call_graph,
            ..
        } = self;
        let hybrid = matches!(call_graph, CallGraphMode::Hybrid(_));
        // A full backlog drops samples anyway (`admit`): drop them here, before their stacks are copied, so a
        // reader that fell behind catches up with the rings instead of copying what will be thrown away. The
        // room left is counted down as this round copies.
        let mut room = recycler.room();
        // The walking thread sheds its backlog's hybrid CPU samples to their frame-pointer chains: those read
        // now would be shed too, so their stack copies are not kept (the backlog then holds several times as
        // many samples before it drops any).
        let backlog_sheds = recycler.backlog_share() > sample::SHED_ABOVE;
        let mut taken = 0;
        let mut dry = true;
        budget.with(|stack_limit| {
            for ring in &rings.rings {
                // `iter` is None only while another iterator over this sampler lives; none does here.
                let Some(iter) = ring.sampler.iter() else {
                    continue;
                };
                let mut iter = iter.into_cow();
                let mut reader = RecordReader {
                    parser: ring.sampler.parser(),
                    kind: ring.kind,
                    roles: &rings.roles,
                    // The budgets are learnt from CPU samples' walks; a blocked thread's stack is usually
                    // deeper than where its CPU time goes (the kernel copies it small anyway).
                    stack_limit: match ring.kind {
                        RingKind::Cpu => stack_limit,
                        RingKind::Switch | RingKind::Lock => &|_| None,
                    },
                    shed: false,
                    recycler,
                    spare: &mut *spare,
                };
                let mut read = 0usize;
                loop {
                    if read >= ring.bytes {
                        dry = false;
                        break;
                    }
                    // Also over half the ring read in one round: the ring was over half full when the round
                    // began, or the kernel fills it as fast as this round copies it out (a reader slowed by the
                    // first touches of the memory its backlog grows into lost thousands of samples in the first
                    // half second at 35,000 Hz). The rest of the round's CPU samples keep no stack copy and are
                    // walked by the kernel's frame-pointer chain alone, as the walking thread sheds when its
                    // backlog is full: a sample with its frame-pointer stack, not a lost one. Dwarf mode has
                    // no chain to fall back on.
                    reader.shed = hybrid
                        && ring.kind == RingKind::Cpu
                        && (backlog_sheds || read > ring.bytes / 2);
                    let Some(raw) = iter.lending_next() else {
                        break;
                    };
                    taken += 1;
                    let bytes = raw.as_raw().as_bytes();
                    read += bytes.len().max(8);
                    if sample::is_sample(bytes) {
                        match room.checked_sub(bytes.len()) {
                            Some(left) => room = left,
                            None => {
                                stats.lost += 1;
                                stats.dropped += 1;
                                match ring.kind {
                                    RingKind::Switch => stats.lost_off_cpu += 1,
                                    RingKind::Lock => stats.lost_locks += 1,
                                    RingKind::Cpu => {}
                                }
                                continue;
                            }
                        }
                    }
                    if let Some(record) = reader.read(&raw) {
                        stats.count(&record);
                        if let (Record::Lost { count, .. }, RingKind::Lock) = (&record, ring.kind) {
                            stats.lost_locks += count;
                        }
                        reorder.push(record);
                    }
                }
            }
        });
        (taken, dry)
    }

    /// The pool that processed samples go back to, so later samples reuse their buffers (see
    /// [`Recycler`]). Taking it bounds the backlog of samples read and not given back to
    /// [`sample::MAX_BACKLOG_BYTES`]: a consumer that takes it gives every batch back once processed.
    pub fn recycler(&self) -> Recycler {
        self.recycler.bound(sample::MAX_BACKLOG_BYTES);
        self.recycler.clone()
    }

    /// Drops the lock samples of processes other than the target's from `out[from..]` (see [`LockTargets`]).
    fn keep_target_locks(&mut self, out: &mut Vec<Record>, from: usize) {
        if self.locks.is_none() {
            return;
        }
        let dropped = self.lock_targets.keep(out, from, &mut self.spare);
        self.stats.locks = self.stats.locks.saturating_sub(dropped);
        self.stats.locks_elsewhere += dropped;
    }

    /// Hands `out[from..]` to the backlog; samples past its bound are dropped and counted as lost.
    fn admit(&mut self, out: &mut Vec<Record>, from: usize) {
        let dropped = self.recycler.admit(out, from, &mut self.spare);
        let all = dropped.cpu + dropped.switches + dropped.locks;
        self.stats.samples = self.stats.samples.saturating_sub(dropped.cpu);
        self.stats.switches = self.stats.switches.saturating_sub(dropped.switches);
        self.stats.locks = self.stats.locks.saturating_sub(dropped.locks);
        self.stats.lost += all;
        self.stats.dropped += all;
        self.stats.lost_off_cpu += dropped.switches;
        self.stats.lost_locks += dropped.locks;
    }

    /// The per-process limits on how much of each stack copy is kept (see [`StackBudget`]).
    pub fn stack_budget(&self) -> StackBudget {
        self.budget.clone()
    }

    fn reap(&mut self) {
        if let (Some(pid), None) = (self.child, self.child_status) {
            self.child_status = launch::wait(pid, false);
        }
    }

    /// Whether the target is gone: the launched command exited, or every attached pid/tid ended (looked up at
    /// most every [`LIVENESS_EVERY`]). A system-wide session never finishes by itself.
    pub fn is_finished(&self) -> bool {
        if self.child.is_some() {
            return self.child_status.is_some();
        }
        if self.watched.is_empty() {
            return false;
        }
        let now = std::time::Instant::now();
        if let Some(checked) = self.liveness_checked.get() {
            if now.duration_since(checked) < LIVENESS_EVERY {
                return false;
            }
        }
        self.liveness_checked.set(Some(now));
        self.watched.iter().all(|&id| !procfs::is_alive(id))
    }

    /// Stops the counters and appends everything still buffered, in time order. Later `read`s return
    /// nothing new.
    pub fn finish(&mut self, out: &mut Vec<Record>) -> Result<(), AcquireError> {
        if !self.finished {
            for counter in self.rings.counters() {
                // A counter whose task is gone may refuse; its data is in the ring all the same.
                let _ = counter.disable();
            }
            self.stopped_at = Some(monotonic_now());
            while self.drain().0 > 0 {}
            self.finished = true;
        }
        let from = out.len();
        self.reorder.flush_all(out);
        self.keep_target_locks(out, from);
        self.admit(out, from);
        self.reap();
        Ok(())
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Whether off-CPU time is recorded (asked for, and the machine allowed context-switch sampling).
    pub fn off_cpu(&self) -> bool {
        self.switch_stack.is_some()
    }

    /// Lock recording (`--locks`): the probes placed, and the user stack bytes each wait's and wake's sample
    /// copies.
    pub fn locks(&self) -> Option<(&LockProbes, u32)> {
        self.locks.as_ref().map(|(probes, bytes)| (probes, *bytes))
    }

    /// The user stack bytes copied per switch-out sample, when off-CPU time is recorded.
    pub fn switch_stack_bytes(&self) -> Option<u32> {
        self.switch_stack
    }

    /// Off-CPU recording of processes or threads that already ran (`-p`, `-t`, `-a`): which threads were
    /// found, in which state, and when the counters started.
    pub fn attach(&self) -> Option<&Attach> {
        self.attach.as_ref()
    }

    /// When `finish` stopped the counters (`CLOCK_MONOTONIC` nanoseconds): off-CPU intervals still open end
    /// there.
    pub fn stop_time(&self) -> Option<u64> {
        self.stopped_at
    }

    /// The event actually sampled, with modifiers: `cpu-clock`, `cpu-clock:u`.
    pub fn event_name(&self) -> String {
        self.event.to_string()
    }

    pub fn event(&self) -> EventSpec {
        self.event
    }

    /// The sampling frequency in Hz actually requested (lowered to the kernel's maximum if need be).
    pub fn frequency(&self) -> u64 {
        self.frequency
    }

    pub fn call_graph(&self) -> CallGraphMode {
        self.call_graph
    }

    /// The kernel's call chain limit the counters were opened with (`kernel.perf_event_max_stack`): a
    /// chain with this many addresses was probably cut (pass to `unwind::fp::Limits`).
    pub fn max_stack(&self) -> usize {
        self.max_stack as usize
    }

    /// What was changed from the request and why (event fallback, user-space only).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Asks a launched command that is still running to end (SIGTERM), as perf does when its recording is
    /// interrupted; `finish` then reaps it.
    pub fn terminate_child(&mut self) {
        self.reap();
        if let (Some(pid), None) = (self.child, self.child_status) {
            launch::terminate(pid);
            self.child_terminated = true;
        }
    }

    /// Pid of the launched command.
    pub fn child_pid(&self) -> Option<u32> {
        self.child
    }

    /// Exit status of the launched command once it exited (128 + signal number when killed by a
    /// signal, -1 when it could not be collected).
    pub fn child_exit_status(&self) -> Option<i32> {
        self.child_status
    }

    /// How the launched command failed when it ended by itself with a non-zero status or a signal (not when
    /// stacktop ended it): the status a `record` exits with, as perf's does.
    pub fn child_failure(&self) -> Option<i32> {
        match self.child_status {
            Some(status) if status > 0 && !self.child_terminated => Some(status),
            _ => None,
        }
    }
}

/// `CLOCK_MONOTONIC` now, in nanoseconds: the clock records are stamped with (`Clock::Monotonic`).
pub fn monotonic_now() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec that outlives the call; CLOCK_MONOTONIC always exists.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Opens the CPU counter for one target on one CPU, and beside it the context-switch counter when off-CPU
/// time is recorded; each goes to its CPU's ring of its kind.
fn open_counters(
    opener: &mut Opener,
    rings: &mut Rings,
    pid: Option<u32>,
    cpu: u32,
    what: &What,
) -> Result<(), AcquireError> {
    rings.add(cpu, RingKind::Cpu, opener.open(pid, cpu, what)?)?;
    if let Some(counter) = opener.open_switch(pid, cpu, what)? {
        rings.add(cpu, RingKind::Switch, counter)?;
    }
    Ok(())
}

/// What the lock probes are opened with: the PMU (refused with one line when the kernel has none, or the
/// architecture's lock address register is unknown) and each probe's path as the kernel takes it.
fn lock_event(
    probes: &LockProbes,
    stack_bytes: u32,
    wakeup_bytes: u32,
) -> Result<LockEvent, AcquireError> {
    if crate::arch::FIRST_ARG_REG.is_none() {
        return Err(AcquireError::LocksUnsupported);
    }
    let pmu = uprobe_pmu_type().ok_or(AcquireError::NoUprobes)?;
    let probes = probes
        .probes
        .iter()
        .map(|p| {
            let path = CString::new(p.path.as_os_str().as_bytes()).map_err(|_| {
                AcquireError::io(
                    format!("lock probe path {}", p.path.display()),
                    io::Error::new(io::ErrorKind::InvalidInput, "the path contains a NUL byte"),
                )
            })?;
            Ok((path, p.offset, p.role))
        })
        .collect::<Result<Vec<_>, AcquireError>>()?;
    Ok(LockEvent {
        pmu,
        probes,
        stack_bytes,
        wakeup_bytes,
    })
}

/// Checks that `id`, named with `-p` or `-t`, runs user code: a zombie or a kernel thread is refused with
/// one clear line instead of a recording that never ends (a kernel thread never exits) or holds nothing.
fn user_task(id: u32, missing: AcquireError) -> Result<(), AcquireError> {
    match procfs::task(id) {
        None => Err(missing),
        Some(procfs::Task::Zombie) => Err(AcquireError::Zombie { id }),
        Some(procfs::Task::Kernel) => Err(AcquireError::KernelThread { id }),
        Some(procfs::Task::User) => Ok(()),
    }
}

/// Opens counters on every thread of `pid`, re-reading its task list until no thread is new (a thread
/// created before its parent thread's counter was opened is not covered by inheritance). Returns the
/// threads covered.
fn attach_threads(
    pid: u32,
    cpus: &[u32],
    opener: &mut Opener,
    rings: &mut Rings,
) -> Result<Vec<u32>, AcquireError> {
    let mut done: HashSet<u32> = HashSet::new();
    let mut covered = vec![];
    loop {
        let tids = procfs::tasks(pid).map_err(|_| AcquireError::NoSuchProcess { pid })?;
        let new: Vec<u32> = tids.into_iter().filter(|t| !done.contains(t)).collect();
        if new.is_empty() {
            break;
        }
        for tid in new {
            done.insert(tid);
            let what = What::Pid(pid);
            let mut opened = false;
            for &cpu in cpus {
                match open_counters(opener, rings, Some(tid), cpu, &what) {
                    Ok(()) => opened = true,
                    // The thread ended meanwhile; the main thread ending means the process did.
                    Err(AcquireError::NoSuchProcess { .. }) if tid != pid => break,
                    Err(e) => return Err(e),
                }
            }
            if opened {
                covered.push(tid);
            }
        }
    }
    covered.sort_unstable();
    Ok(covered)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn lock_sample(pid: u32, tid: u32) -> Record {
        Record::Sample(SampleRecord {
            kind: SampleKind::LockWait { lock: 0x40 },
            pid,
            tid,
            ..SampleRecord::default()
        })
    }

    #[test]
    fn only_the_target_s_lock_samples_are_kept_children_included() {
        let mut targets = LockTargets::Processes([10].into_iter().collect());
        let fork = |pid, ppid| Record::Fork {
            pid,
            ppid,
            tid: pid,
            ptid: ppid,
            time: 0,
        };
        let cpu_elsewhere = Record::Sample(SampleRecord {
            pid: 99,
            tid: 99,
            ..SampleRecord::default()
        });
        let mut records = vec![
            lock_sample(10, 11),
            lock_sample(99, 99),
            fork(20, 10),
            lock_sample(20, 20),
            fork(30, 99),
            lock_sample(30, 30),
            cpu_elsewhere.clone(),
        ];
        let mut spare = Vec::new();
        assert_eq!(targets.keep(&mut records, 1, &mut spare), 2);
        assert_eq!(spare.len(), 2);
        assert_eq!(
            records,
            vec![
                lock_sample(10, 11),
                fork(20, 10),
                lock_sample(20, 20),
                fork(30, 99),
                cpu_elsewhere,
            ]
        );
        // -t: the thread's waits, and the releases of its process's threads (its locks' holders).
        let mut threads = LockTargets::Threads {
            tids: [11].into_iter().collect(),
            pids: [10].into_iter().collect(),
        };
        let wake = |pid, tid| {
            Record::Sample(SampleRecord {
                kind: SampleKind::LockWake { lock: 0x40 },
                pid,
                tid,
                ..SampleRecord::default()
            })
        };
        let mut records = vec![
            lock_sample(10, 11),
            lock_sample(10, 12),
            wake(10, 12),
            wake(99, 99),
        ];
        assert_eq!(threads.keep(&mut records, 0, &mut spare), 2);
        assert_eq!(records, vec![lock_sample(10, 11), wake(10, 12)]);
        let mut records = vec![lock_sample(10, 12)];
        assert_eq!(LockTargets::All.keep(&mut records, 0, &mut spare), 0);
        assert_eq!(records.len(), 1);
    }

    #[test]
    fn a_lock_probe_s_sample_says_its_role_and_lock_with_the_walk_s_registers_left() {
        let mut s = SampleRecord {
            user_regs: Some(vec![0x4040, 1, 2, 3]),
            ..SampleRecord::default()
        };
        assert_eq!(
            lock_kind(Some(ProbeRole::Wait), &mut s),
            Some(SampleKind::LockWait { lock: 0x4040 })
        );
        assert_eq!(s.user_regs, Some(vec![1, 2, 3]));
        // fp mode: the argument alone was sampled.
        let mut s = SampleRecord {
            user_regs: Some(vec![0x5050]),
            ..SampleRecord::default()
        };
        assert_eq!(
            lock_kind(Some(ProbeRole::Wake), &mut s),
            Some(SampleKind::LockWake { lock: 0x5050 })
        );
        assert_eq!(s.user_regs, None);
        let mut s = SampleRecord::default();
        assert_eq!(
            lock_kind(Some(ProbeRole::Acquired), &mut s),
            Some(SampleKind::LockAcquired)
        );
        assert_eq!(lock_kind(Some(ProbeRole::Wait), &mut s), None);
        assert_eq!(lock_kind(None, &mut s), None);
    }

    #[test]
    fn session_is_send() {
        fn is_send<T: Send>() {}
        is_send::<Session>();
    }
}
