//! Opening the counters and their rings: what the kernel is asked for (with the fallbacks of a machine
//! without a PMU or kernel access), how big each CPU's ring is, and which counters write into which ring.

use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::AsRawFd;

use perf_event_open::config::{
    CallChain, Clock, Cpu, Inherit, OnExecve, Opts, Proc, RecordIdFormat, RegsMask, SampleOn, Size,
    Target as PerfTarget, UseBuildId, WakeUpOn,
};
use perf_event_open::count::Counter;
use perf_event_open::event::dp::DynamicPmu;
use perf_event_open::event::hw::Hardware;
use perf_event_open::event::sw::Software;
use perf_event_open::sample::Sampler;

use super::{procfs, AcquireError, CallGraphMode, EventKind, EventSpec, ProbeRole, USER_REGS_MASK};
use crate::arch::{FIRST_ARG_REG, LOCK_REGS_MASK};

/// `PERF_EVENT_IOC_SET_OUTPUT` = `_IO('$', 5)`: send this counter's records to another counter's ring.
const PERF_EVENT_IOC_SET_OUTPUT: libc::c_ulong = 0x2405;

/// Ring sizes to try, as log2 of data pages, largest first; smaller ones when the locked-memory limit
/// (`kernel.perf_event_mlock_kb`, 516 KiB per CPU for unprivileged users) refuses. Frame-pointer samples
/// are small: 64 pages (256 KiB) per CPU. Samples with a stack copy are kilobytes each: at least 4 MiB per
/// CPU, more at high rates (see [`stack_ring_pages_log2`]).
const RING_PAGES_LOG2_FP: &[u8] = &[6, 5, 4, 3];
const RING_PAGES_LOG2_STACK_MIN: u8 = 10;
/// 32 MiB per CPU at most...
const RING_PAGES_LOG2_STACK_MAX: u8 = 13;
/// ... and 128 MiB over all CPUs.
const RING_BYTES_ALL_CPUS_MAX: u64 = 128 << 20;
/// How long the kernel must be able to go on writing samples while the reader is not scheduled: on a
/// loaded machine a woken thread may wait tens of milliseconds for a CPU.
const RING_SLACK_MILLIS: u64 = 50;

/// What a ring holds. Context switches get rings of their own: their rate is the target's, not the sampling
/// frequency, so they are sized apart; a full one loses switches, never CPU samples; and a sample's ring says
/// which counter took it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum RingKind {
    /// The CPU sampling event's samples, and the records of the target's life (mmap, comm, fork, exit).
    Cpu,
    /// Context-switch samples (one per switch-out) and switch records (out and in).
    Switch,
    /// Lock probes' samples (`--locks`): their rate is the target's contention's; a sample's counter id says
    /// which probe took it ([`Rings::roles`]).
    Lock,
}

pub(super) struct Ring {
    // Field order matters for drop: the sampler's mapping goes before the counter it belongs to.
    pub(super) sampler: Sampler,
    pub(super) counter: Counter,
    /// Size of its data area.
    pub(super) bytes: usize,
    pub(super) kind: RingKind,
}

/// Off-CPU recording: the context-switch counter opened beside each CPU counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SwitchEvent {
    /// User stack bytes copied per switch-out (0 in fp mode).
    pub(super) stack_bytes: u32,
    pub(super) wakeup_bytes: u32,
}

/// Lock recording: the uprobes opened beside each CPU counter.
pub(super) struct LockEvent {
    /// The uprobe PMU's `perf_event_attr.type` (`/sys/bus/event_source/devices/uprobe/type`).
    pub(super) pmu: u32,
    /// Each probe's file (NUL-terminated: the kernel copies it during `perf_event_open`), file offset and role.
    pub(super) probes: Vec<(CString, u64, ProbeRole)>,
    /// User stack bytes copied at the entry probes (0 in fp mode).
    pub(super) stack_bytes: u32,
    pub(super) wakeup_bytes: u32,
}

/// The uprobe PMU's type, from sysfs; `None` when the kernel has none (no `CONFIG_UPROBE_EVENTS`).
pub(super) fn uprobe_pmu_type() -> Option<u32> {
    fs::read_to_string("/sys/bus/event_source/devices/uprobe/type")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// What the kernel is asked for; fallbacks (no PMU, no kernel access, old kernel) change it once, on the
/// first counter, and every later counter is opened the same way.
pub(super) struct Opener {
    pub(super) spec: EventSpec,
    pub(super) call_graph: CallGraphMode,
    pub(super) frequency: u64,
    pub(super) max_stack: u16,
    pub(super) build_id: bool,
    pub(super) inherit: bool,
    pub(super) enable_on_exec: bool,
    pub(super) system: bool,
    pub(super) wakeup_bytes: u32,
    /// Off-CPU recording (`None`: off, or turned off because the machine refused it).
    pub(super) switches: Option<SwitchEvent>,
    /// Whether a switch counter was opened: refusing one after that is an error, not a fallback.
    pub(super) switches_opened: bool,
    /// Lock probes (`None`: off).
    pub(super) locks: Option<LockEvent>,
    pub(super) notes: Vec<String>,
}

impl Opener {
    pub(super) fn opts(&self) -> Opts {
        let mut o = Opts::default();
        o.exclude.user = self.spec.exclude_user;
        o.exclude.kernel = self.spec.exclude_kernel;
        o.exclude.hv = true;
        o.inherit = self.inherit.then_some(Inherit::NewChild);
        o.on_execve = self.enable_on_exec.then_some(OnExecve::Enable);
        o.enable = false;
        o.sample_on = SampleOn::Freq(self.frequency);
        o.sample_format.period = true;
        let stack = self.call_graph.stack_bytes();
        if stack > 0 && USER_REGS_MASK != 0 {
            o.sample_format.user_regs = Some(RegsMask(USER_REGS_MASK));
            o.sample_format.user_stack = Some(Size(stack));
        }
        o.sample_format.call_chain = Some(CallChain {
            // dwarf mode unwinds user space itself; the kernel's user chain would only cost ring space.
            exclude_user: matches!(self.call_graph, CallGraphMode::Dwarf(_)),
            exclude_kernel: self.spec.exclude_kernel,
            defer_user: false,
            max_stack_frames: self.max_stack,
        });
        o.record_id_all = true;
        o.record_id_format = RecordIdFormat {
            task: true,
            time: true,
            cpu: true,
            ..RecordIdFormat::default()
        };
        o.extra_record.comm = true;
        o.extra_record.task = true;
        o.extra_record.mmap.code = true;
        o.extra_record.mmap.ext = Some(UseBuildId(self.build_id));
        o.wake_up.on = WakeUpOn::Bytes(self.wakeup_bytes);
        // CLOCK_MONOTONIC stamps: comparable across CPUs and with the clock user space reads.
        o.timer = Some(Clock::Monotonic);
        o
    }

    /// The context-switch counter's options: the CPU counter's sample layout (so one stack walk serves both),
    /// a sample at every switch-out, switch records (`context_switch`) for when each thread runs again, and
    /// none of the records of the target's life, which the CPU counter sends already.
    ///
    /// The sample is taken in the scheduler, in kernel mode, so the event must not exclude the kernel even
    /// when the CPU event does (`:u`): only its kernel call chain is left out then. The user registers and
    /// stack are the thread's own (the kernel reads them from the thread's saved user state).
    ///
    /// In hybrid mode the kernel's user chain is not asked for: walking the user frame pointers from the
    /// scheduler cost the switch-heavy benchmark half a microsecond per switch, as much as the kernel chain,
    /// while a blocked thread's whole stack fits in the copy ([`crate::acquire::SWITCH_HYBRID_STACK_BYTES`]):
    /// the tables walk it, with the frame-pointer chain re-walked inside the copy where they cannot. A deeper
    /// stack ends in `[truncated]` at the copy's end.
    pub(super) fn switch_opts(&self, switch: SwitchEvent) -> Opts {
        let mut o = self.opts();
        if let (Some(chain), CallGraphMode::Hybrid(_)) =
            (o.sample_format.call_chain.as_mut(), self.call_graph)
        {
            chain.exclude_user = switch.stack_bytes > 0;
        }
        o.exclude.kernel = false;
        o.exclude.user = false;
        o.sample_on = SampleOn::Count(1);
        if switch.stack_bytes > 0 && USER_REGS_MASK != 0 {
            o.sample_format.user_regs = Some(RegsMask(USER_REGS_MASK));
            o.sample_format.user_stack = Some(Size(switch.stack_bytes));
        } else {
            o.sample_format.user_regs = None;
            o.sample_format.user_stack = None;
        }
        o.extra_record.comm = false;
        o.extra_record.task = false;
        o.extra_record.mmap.code = false;
        o.extra_record.mmap.ext = None;
        o.extra_record.ctx_switch = true;
        o.wake_up.on = WakeUpOn::Bytes(switch.wakeup_bytes);
        o
    }

    /// A lock probe's options, for all roles the same sample layout (they share one ring and one parser): the
    /// first argument's register beside the walk's, and in the stack-copying modes a stack copy and the
    /// kernel's chain as CPU samples take them. The wait's end (`Acquired`) needs only the thread and the time:
    /// its chain is left out and its copy is 0 bytes (the layout says so per record).
    ///
    /// A uprobe's sample is taken in the probed thread's context with its user registers, whatever the CPU
    /// event excludes: the user side is never excluded, the kernel side always (it has no kernel chain). One
    /// sample per hit (period 1); none of the target's life records, which the CPU counter sends already.
    ///
    /// Never inherited: the kernel opens an inherited uprobe event anew in the new task, reading the probe's
    /// path from `config1` again, a pointer into stacktop's memory that means nothing in the target's (seen
    /// on Linux 6.1: every `clone` of the target then failed with EFAULT). The probes are opened for every
    /// process instead (see [`Opener::open_locks`]).
    pub(super) fn lock_opts(&self, locks: &LockEvent, role: ProbeRole) -> Opts {
        let mut o = self.opts();
        o.inherit = None;
        o.on_execve = None;
        o.exclude.user = false;
        o.exclude.kernel = true;
        o.sample_on = SampleOn::Count(1);
        let stack = locks.stack_bytes > 0 && USER_REGS_MASK != 0;
        o.sample_format.user_regs = Some(RegsMask(if stack {
            LOCK_REGS_MASK
        } else {
            FIRST_ARG_REG.map_or(0, |r| 1 << r)
        }));
        o.sample_format.user_stack = stack.then_some(Size(match role {
            ProbeRole::Acquired => 0,
            ProbeRole::Wait | ProbeRole::Wake => locks.stack_bytes,
        }));
        if let Some(chain) = o.sample_format.call_chain.as_mut() {
            chain.exclude_kernel = true;
            if role == ProbeRole::Acquired {
                chain.exclude_user = true;
            }
        }
        o.record_id_format.id = true;
        o.extra_record.comm = false;
        o.extra_record.task = false;
        o.extra_record.mmap.code = false;
        o.extra_record.mmap.ext = None;
        o.wake_up.on = WakeUpOn::Bytes(locks.wakeup_bytes);
        o
    }

    /// Opens every lock probe on one CPU for every process, if lock recording is on: a probe opened for a
    /// task would have to be inherited to follow the threads and children the target creates, which uprobe
    /// events cannot be (see [`Opener::lock_opts`]). The kernel places the breakpoints in every process that
    /// maps the probed file, and the session keeps only the target's samples (`LockTargets`). The first
    /// refusal is an error: `--locks` was asked for, and a recording without its probes says nothing of locks.
    pub(super) fn open_locks(
        &mut self,
        cpu: u32,
        what: &What,
    ) -> Result<Vec<(Counter, ProbeRole)>, AcquireError> {
        let Some(locks) = &self.locks else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(locks.probes.len());
        for (path, offset, role) in &locks.probes {
            let event = DynamicPmu {
                ty: locks.pmu,
                config: 0,
                // The path's address: `path` outlives the call, and the kernel copies the string in it.
                config1: path.as_ptr() as u64,
                config2: *offset,
                config3: 0,
            };
            match Counter::new(
                event,
                Opener::target(None, cpu),
                self.lock_opts(locks, *role),
            ) {
                Ok(counter) => out.push((counter, *role)),
                Err(err) => {
                    return Err(match (err.raw_os_error(), what) {
                        (Some(libc::ESRCH), What::Pid(pid)) => {
                            AcquireError::NoSuchProcess { pid: *pid }
                        }
                        (Some(libc::ESRCH), What::Tid(tid)) => {
                            AcquireError::NoSuchThread { tid: *tid }
                        }
                        (Some(libc::EACCES | libc::EPERM), _) => AcquireError::LockProbesDenied {
                            target: what.to_string(),
                        },
                        _ => AcquireError::LockProbe {
                            path: path.to_string_lossy().into_owned(),
                            offset: *offset,
                            target: what.to_string(),
                            source: err,
                        },
                    })
                }
            }
        }
        Ok(out)
    }

    fn target(pid: Option<u32>, cpu: u32) -> PerfTarget {
        match pid {
            Some(pid) => (Proc(pid), Cpu(cpu)).into(),
            None => (Proc::ALL, Cpu(cpu)).into(),
        }
    }

    /// Opens the context-switch counter beside a CPU counter just opened for the same target, if off-CPU
    /// recording is on. A machine that refuses the first one (no kernel sampling allowed: the sample is taken
    /// in the scheduler) turns off-CPU recording off, with a note; `Ok(None)` then.
    pub(super) fn open_switch(
        &mut self,
        pid: Option<u32>,
        cpu: u32,
        what: &What,
    ) -> Result<Option<Counter>, AcquireError> {
        let Some(switch) = self.switches else {
            return Ok(None);
        };
        let err = match Counter::new(
            Software::CtxSwitch,
            Opener::target(pid, cpu),
            self.switch_opts(switch),
        ) {
            Ok(counter) => {
                self.switches_opened = true;
                return Ok(Some(counter));
            }
            Err(err) => err,
        };
        let refused = matches!(
            err.raw_os_error(),
            Some(libc::EACCES | libc::EPERM | libc::EINVAL | libc::EOPNOTSUPP | libc::ENOENT)
        ) || err.kind() == io::ErrorKind::Unsupported;
        if refused && !self.switches_opened {
            self.switches = None;
            self.notes.push(format!(
                "off-CPU time not recorded: context-switch sampling was refused ({err}; it needs root or kernel.perf_event_paranoid <= 1, now {})",
                procfs::paranoid()
            ));
            return Ok(None);
        }
        Err(self.error(err, what))
    }

    pub(super) fn try_open(&self, pid: Option<u32>, cpu: u32) -> io::Result<Counter> {
        let target = Opener::target(pid, cpu);
        let opts = self.opts();
        match self.spec.kind {
            EventKind::CpuClock => Counter::new(Software::CpuClock, target, opts),
            EventKind::TaskClock => Counter::new(Software::TaskClock, target, opts),
            EventKind::Cycles => Counter::new(Hardware::CpuCycle, target, opts),
        }
    }

    /// Opens a counter, falling back where the machine cannot do what was asked.
    pub(super) fn open(
        &mut self,
        pid: Option<u32>,
        cpu: u32,
        what: &What,
    ) -> Result<Counter, AcquireError> {
        loop {
            let err = match self.try_open(pid, cpu) {
                Ok(counter) => return Ok(counter),
                Err(err) => err,
            };
            let errno = err.raw_os_error();
            if self.spec.kind == EventKind::Cycles
                && matches!(errno, Some(libc::ENOENT | libc::EOPNOTSUPP | libc::ENODEV))
            {
                self.spec.kind = EventKind::CpuClock;
                self.notes.push(
                    "cycles: no hardware counter on this machine; using cpu-clock".to_owned(),
                );
                continue;
            }
            if matches!(errno, Some(libc::EACCES | libc::EPERM))
                && !self.spec.exclude_kernel
                && !self.spec.exclude_user
                && !self.system
            {
                self.spec.exclude_kernel = true;
                self.notes.push(format!(
                    "kernel sampling not permitted (kernel.perf_event_paranoid is {}); recording user space only",
                    procfs::paranoid()
                ));
                continue;
            }
            // Kernels before 5.12 reject the build-id bit; the crate refuses features it was not built for.
            if self.build_id
                && (errno == Some(libc::EINVAL) || err.kind() == io::ErrorKind::Unsupported)
            {
                self.build_id = false;
                continue;
            }
            return Err(self.error(err, what));
        }
    }

    pub(super) fn error(&self, err: io::Error, what: &What) -> AcquireError {
        match (err.raw_os_error(), what) {
            (Some(libc::ESRCH), What::Pid(pid)) => AcquireError::NoSuchProcess { pid: *pid },
            (Some(libc::ESRCH), What::Tid(tid)) => AcquireError::NoSuchThread { tid: *tid },
            (Some(libc::EACCES | libc::EPERM), _) => AcquireError::PermissionDenied {
                event: self.spec.to_string(),
                target: what.to_string(),
                paranoid: procfs::paranoid(),
            },
            _ => AcquireError::Open {
                event: self.spec.to_string(),
                target: what.to_string(),
                source: err,
            },
        }
    }
}

/// What a counter is opened for, for error messages.
pub(super) enum What {
    Command(String),
    Pid(u32),
    Tid(u32),
    System,
}

impl std::fmt::Display for What {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            What::Command(c) => write!(f, "command `{c}`"),
            What::Pid(p) => write!(f, "pid {p}"),
            What::Tid(t) => write!(f, "tid {t}"),
            What::System => f.write_str("all CPUs"),
        }
    }
}

/// Rings and counters being set up: the first counter of a kind on a CPU gets the ring, the others write into
/// it.
pub(super) struct Rings {
    /// Ring sizes to try for CPU rings, and for context-switch rings.
    pub(super) pages_log2: Vec<u8>,
    pub(super) switch_pages_log2: Vec<u8>,
    pub(super) lock_pages_log2: Vec<u8>,
    pub(super) rings: Vec<Ring>,
    pub(super) by_cpu: BTreeMap<(u32, RingKind), usize>,
    pub(super) redirected: Vec<Counter>,
    /// Lock probes by counter id (`PERF_SAMPLE_ID`: an inherited counter's samples carry its parent's id).
    pub(super) roles: HashMap<u64, ProbeRole>,
}

impl Rings {
    pub(super) fn add(
        &mut self,
        cpu: u32,
        kind: RingKind,
        counter: Counter,
    ) -> Result<(), AcquireError> {
        if let Some(&i) = self.by_cpu.get(&(cpu, kind)) {
            let owner = self.rings[i].counter.file().as_raw_fd();
            let fd = counter.file().as_raw_fd();
            // SAFETY: both fds are open perf_event fds owned by live `Counter`s; SET_OUTPUT takes the
            // target fd as a plain integer argument and touches no memory of ours.
            let rc = unsafe { libc::ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT as _, owner) };
            if rc != 0 {
                return Err(AcquireError::RingBuffer {
                    cpu,
                    source: io::Error::last_os_error(),
                });
            }
            self.redirected.push(counter);
            return Ok(());
        }
        let mut last = None;
        let sizes = match kind {
            RingKind::Cpu => self.pages_log2.clone(),
            RingKind::Switch => self.switch_pages_log2.clone(),
            RingKind::Lock => self.lock_pages_log2.clone(),
        };
        for exp in sizes {
            match counter.sampler(exp) {
                Ok(sampler) => {
                    self.by_cpu.insert((cpu, kind), self.rings.len());
                    self.rings.push(Ring {
                        sampler,
                        counter,
                        bytes: 4096 << exp,
                        kind,
                    });
                    return Ok(());
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOMEM)) => {
                    last = Some(e)
                }
                Err(e) => return Err(AcquireError::RingBuffer { cpu, source: e }),
            }
        }
        Err(AcquireError::RingBuffer {
            cpu,
            source: last.unwrap_or_else(|| io::Error::other("no ring size fits")),
        })
    }

    /// A lock probe to its CPU's lock ring, its role known by its id.
    pub(super) fn add_lock(
        &mut self,
        cpu: u32,
        counter: Counter,
        role: ProbeRole,
    ) -> Result<(), AcquireError> {
        let id = counter
            .id()
            .map_err(|e| AcquireError::io("reading a lock probe's id", e))?;
        self.roles.insert(id, role);
        self.add(cpu, RingKind::Lock, counter)
    }

    /// `switch_stack`: the stack bytes copied per switch-out, when off-CPU time is recorded; `lock_stack`, per
    /// lock probe's sample, when lock contention is.
    pub(super) fn new(
        call_graph: CallGraphMode,
        frequency: u64,
        cpus: usize,
        switch_stack: Option<u32>,
        lock_stack: Option<u32>,
    ) -> Rings {
        Rings {
            pages_log2: match call_graph.stack_bytes() {
                0 => RING_PAGES_LOG2_FP.to_vec(),
                stack => (3..=stack_ring_pages_log2(stack, frequency, cpus))
                    .rev()
                    .collect(),
            },
            switch_pages_log2: switch_stack.map_or_else(Vec::new, |stack| {
                (3..=switch_ring_pages_log2(stack, cpus)).rev().collect()
            }),
            lock_pages_log2: lock_stack.map_or_else(Vec::new, |stack| {
                (3..=lock_ring_pages_log2(stack, cpus)).rev().collect()
            }),
            rings: vec![],
            by_cpu: BTreeMap::new(),
            redirected: vec![],
            roles: HashMap::new(),
        }
    }

    pub(super) fn counters(&self) -> impl Iterator<Item = &Counter> {
        self.rings
            .iter()
            .map(|r| &r.counter)
            .chain(&self.redirected)
    }
}

/// The largest ring to try when samples carry `stack` bytes of stack copy: [`RING_SLACK_MILLIS`] of
/// samples at `frequency`, within the bounds above.
pub(super) fn stack_ring_pages_log2(stack: u32, frequency: u64, cpus: usize) -> u8 {
    // A record reserves its whole copy, plus registers, chain and header.
    let record = u64::from(stack) + 1024;
    slack_ring_pages_log2(frequency, record, cpus)
}

/// The switch-out rate per CPU a context-switch ring is sized for. With 1 KiB copies that is a 16 MiB ring per
/// CPU: 35 ms of the most `benches/offcpu_vs_perf.sh` reaches while recorded (365,000 switches a second on one
/// CPU, 1.3 KiB of ring each), which the reader drains at every quarter without losing any.
const SWITCH_RATE: u64 = 150_000;

/// The largest context-switch ring to try when each switch-out sample carries `stack` bytes of stack copy:
/// [`RING_SLACK_MILLIS`] of switch-outs at [`SWITCH_RATE`] (a sample and its two switch records), within the
/// bounds of stack rings.
pub(super) fn switch_ring_pages_log2(stack: u32, cpus: usize) -> u8 {
    // The sample's header, ids, registers and chains (a scheduler chain is ~20 kernel frames), and the two
    // 40-byte records.
    let per_switch = u64::from(stack) + 768;
    slack_ring_pages_log2(SWITCH_RATE, per_switch, cpus)
}

/// The contended waits per second per CPU a lock ring is sized for: each is a wait sample and a wake sample
/// with their stack copies, and the wait's end. A program that contends harder than this loses lock samples
/// (counted) when the reader is not scheduled for [`RING_SLACK_MILLIS`]; with 4 KiB copies this is an 8 MiB
/// ring per CPU.
const LOCK_RATE: u64 = 10_000;

/// The largest lock ring to try when entry probes copy `stack` bytes of stack: [`RING_SLACK_MILLIS`] of waits
/// at [`LOCK_RATE`], within the bounds of stack rings.
pub(super) fn lock_ring_pages_log2(stack: u32, cpus: usize) -> u8 {
    // Two samples with a copy, registers and chains, and the small one of the end.
    let per_wait = 2 * (u64::from(stack) + 512) + 128;
    slack_ring_pages_log2(LOCK_RATE, per_wait, cpus)
}

/// A stack ring's size (log2 of pages) for `rate` records a second of `bytes` each: [`RING_SLACK_MILLIS`] of
/// them, at most [`RING_BYTES_ALL_CPUS_MAX`] over `cpus`, within the bounds of stack rings.
fn slack_ring_pages_log2(rate: u64, bytes: u64, cpus: usize) -> u8 {
    let wanted = rate.saturating_mul(bytes).saturating_mul(RING_SLACK_MILLIS) / 1000;
    let per_cpu_cap = RING_BYTES_ALL_CPUS_MAX / cpus.max(1) as u64;
    let bytes = wanted.min(per_cpu_cap).max(1);
    let pages = bytes.div_ceil(4096).next_power_of_two();
    (pages.trailing_zeros() as u8).clamp(RING_PAGES_LOG2_STACK_MIN, RING_PAGES_LOG2_STACK_MAX)
}

pub(super) fn online_cpus() -> Vec<u32> {
    let parsed = fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| parse_cpu_list(s.trim()));
    parsed.unwrap_or_else(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        (0..n as u32).collect()
    })
}

/// `0-3,5,7-8` -> `[0, 1, 2, 3, 5, 7, 8]`.
pub(super) fn parse_cpu_list(s: &str) -> Option<Vec<u32>> {
    let mut cpus = vec![];
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<u32>().ok()?..=b.parse::<u32>().ok()?),
            None => cpus.push(part.parse().ok()?),
        }
    }
    (!cpus.is_empty()).then_some(cpus)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_lists() {
        assert_eq!(parse_cpu_list("0-1"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0,2-3,7"), Some(vec![0, 2, 3, 7]));
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn rings_grow_with_the_sample_rate_within_bounds() {
        // 16 KiB copies at 1 kHz: the 4 MiB floor.
        assert_eq!(stack_ring_pages_log2(16384, 1000, 2), 10);
        // At 25 kHz, 50 ms of 17 KiB records is 21 MiB: 32 MiB.
        assert_eq!(stack_ring_pages_log2(16384, 25000, 2), 13);
        // 4 KiB copies at 10 kHz: 2.5 MiB, still the floor.
        assert_eq!(stack_ring_pages_log2(4096, 10000, 2), 10);
        // Many CPUs share 128 MiB; never below the floor.
        assert_eq!(stack_ring_pages_log2(16384, 25000, 32), 10);
        assert_eq!(stack_ring_pages_log2(16384, 25000, 8), 12);
        assert_eq!(stack_ring_pages_log2(65528, 100000, 1024), 10);
        assert_eq!(stack_ring_pages_log2(u32::MAX, u64::MAX, 0), 13);
        let rings = Rings::new(CallGraphMode::Hybrid(16384), 25000, 2, None, None);
        assert_eq!(rings.pages_log2.first(), Some(&13));
        assert_eq!(rings.pages_log2.last(), Some(&3));
    }
}
