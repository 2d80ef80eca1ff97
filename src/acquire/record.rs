//! The typed record stream every source produces: live ring buffers (this module's siblings) and, later,
//! perf.data import. Later stages read only these types, never the kernel's layouts.

/// `PERF_CONTEXT_*` markers inside a kernel call chain (they are "addresses" >= `PERF_CONTEXT_MAX`).
pub const PERF_CONTEXT_HV: u64 = -32i64 as u64;
pub const PERF_CONTEXT_KERNEL: u64 = -128i64 as u64;
pub const PERF_CONTEXT_USER: u64 = -512i64 as u64;
pub const PERF_CONTEXT_GUEST: u64 = -2048i64 as u64;
pub const PERF_CONTEXT_GUEST_KERNEL: u64 = -2176i64 as u64;
pub const PERF_CONTEXT_GUEST_USER: u64 = -2560i64 as u64;
pub const PERF_CONTEXT_MAX: u64 = -4095i64 as u64;

/// Which counter took a sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SampleKind {
    /// The CPU sampling event (`-e`): the thread was running there.
    #[default]
    Cpu,
    /// A context switch (`PERF_COUNT_SW_CONTEXT_SWITCHES`, one sample per switch): the thread was leaving its
    /// CPU from there. Its interval off CPU ends at the thread's next switch-in ([`Record::Switch`]).
    SwitchOut,
    /// A lock probe (`--locks`) at the entry of a lock's contended path (glibc's `__lll_lock_wait`, Rust std's
    /// futex `Mutex::lock_contended`; or of `pthread_mutex_lock` in the fallback mode): the thread starts
    /// waiting for the lock whose futex word is at `lock` (the mutex's own address for glibc's default kinds
    /// and Rust's). Its stack is the waiter's.
    LockWait { lock: u64 },
    /// A lock probe on a `ret` of that path: the thread's wait ends, it holds the lock. No stack is taken.
    LockAcquired,
    /// A lock probe at the entry of the wake path (glibc's `__lll_lock_wake`, Rust std's `Mutex::wake`; or of
    /// `pthread_mutex_unlock`): the thread releases the lock at `lock` to a waiter. Its stack is the holder's.
    LockWake { lock: u64 },
}

impl SampleKind {
    /// A lock probe's hit (`--locks`).
    pub fn is_lock(self) -> bool {
        matches!(
            self,
            SampleKind::LockWait { .. } | SampleKind::LockAcquired | SampleKind::LockWake { .. }
        )
    }
}

/// One sample as the kernel delivered it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SampleRecord {
    pub kind: SampleKind,
    pub pid: u32,
    pub tid: u32,
    /// `perf_clock` nanoseconds, comparable across CPUs.
    pub time: u64,
    pub cpu: u32,
    /// Event count this sample stands for (nanoseconds for cpu-clock); every percentage is weighted by it.
    pub period: u64,
    /// True when the sample hit user mode (ip is a user address).
    pub user_mode: bool,
    /// The kernel's call chain, raw: `PERF_CONTEXT_KERNEL`, kernel ips, `PERF_CONTEXT_USER`, user ip, return
    /// addresses... The first address after each context marker is an instruction pointer, the rest are
    /// return addresses.
    pub callchain: Vec<u64>,
    /// User registers in `PERF_SAMPLE_REGS_USER` order of the requested mask (dwarf/hybrid modes), if sampled.
    pub user_regs: Option<Vec<u64>>,
    /// Copy of the user stack starting at the sampled stack pointer (dwarf/hybrid modes), if sampled.
    pub user_stack: Option<Vec<u8>>,
    /// Bytes of user stack asked for and bytes the kernel copied (0 and 0 when unknown). The kernel stops
    /// early at a stack page it cannot read in the sampling interrupt (one never touched); the reader may
    /// keep less than it copied (`StackBudget`), which these do not count.
    pub stack_asked: u32,
    pub stack_copied: u32,
    /// Hybrid mode: the reader kept no stack copy because it was behind the kernel (see
    /// `Session::drain`); the sample is walked by the kernel's frame-pointer chain alone.
    pub shed: bool,
}

/// A new mapping of a process (`PERF_RECORD_MMAP2`, or synthesized from `/proc/PID/maps`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MmapRecord {
    pub pid: u32,
    pub tid: u32,
    pub time: u64,
    pub start: u64,
    pub len: u64,
    /// File offset of `start`.
    pub pgoff: u64,
    /// Path as the kernel names it (`/usr/lib/...`, `[vdso]`, `//anon`, `[kernel.kallsyms]_text`).
    pub path: String,
    /// GNU build-id when the kernel sent it (`PERF_RECORD_MISC_MMAP_BUILD_ID`).
    pub build_id: Option<Vec<u8>>,
    pub executable: bool,
    /// Device and inode, when known (0 otherwise): identify a file together with the path.
    pub dev: u64,
    pub inode: u64,
}

/// The threads an attached recording (`-p`, `-t`, `-a`) found running when it started. A thread off CPU then
/// shows up first by switching in: its wait began before the recording, which saw only the part after
/// `time`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attach {
    /// When the counters were enabled (`CLOCK_MONOTONIC` nanoseconds, as record times).
    pub time: u64,
    pub threads: Vec<AttachedThread>,
}

/// A thread of [`Attach`], with its state as `/proc` said just after the counters were enabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttachedThread {
    pub pid: u32,
    pub tid: u32,
    /// `R`: on a CPU or waiting for one (preempted), not asleep.
    pub runnable: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Sample(SampleRecord),
    Mmap(MmapRecord),
    /// A thread's name changed; `exec` is set when it changed because of an exec (the address space is new).
    Comm {
        pid: u32,
        tid: u32,
        time: u64,
        name: String,
        exec: bool,
    },
    Fork {
        pid: u32,
        ppid: u32,
        tid: u32,
        ptid: u32,
        time: u64,
    },
    Exit {
        pid: u32,
        ppid: u32,
        tid: u32,
        ptid: u32,
        time: u64,
    },
    /// The kernel dropped `count` samples because a ring buffer was full. `off_cpu`: the ring was one of
    /// context switches, so switch-out samples or switch records may be among them (perf.data files do not
    /// tell: always set there).
    Lost {
        time: u64,
        count: u64,
        off_cpu: bool,
    },
    /// A thread left its CPU (`out`, with `preempt` when it was still runnable: preempted, not blocked) or
    /// came back to one (`PERF_RECORD_SWITCH`, `PERF_RECORD_SWITCH_CPU_WIDE`). `pid` and `tid` are the
    /// thread's own, whichever of the two records it is.
    Switch {
        pid: u32,
        tid: u32,
        time: u64,
        out: bool,
        preempt: bool,
    },
    /// The kernel throttled (`throttled: true`) or unthrottled sampling on a CPU.
    Throttle {
        time: u64,
        throttled: bool,
    },
}

impl Record {
    pub fn time(&self) -> u64 {
        match self {
            Record::Sample(s) => s.time,
            Record::Mmap(m) => m.time,
            Record::Comm { time, .. }
            | Record::Fork { time, .. }
            | Record::Exit { time, .. }
            | Record::Lost { time, .. }
            | Record::Switch { time, .. }
            | Record::Throttle { time, .. } => *time,
        }
    }
}
