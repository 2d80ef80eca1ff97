//! perf_event_open: counters, ring buffers and the typed record stream. All kernel-facing `unsafe` lives here.
//!
//! [`Session`] opens one sampling counter per CPU for the target (a launched command, attached pids or
//! threads, or the whole system), gives each CPU one ring buffer, and turns the rings' contents into
//! [`record::Record`]s in timestamp order. Processes that already run when a session starts get
//! synthetic `Comm` and `Mmap` records from `/proc`, emitted before any sample.
//!
//! With `--locks` ([`LockProbes`]), uprobes through the kernel's uprobe PMU sit on the lock functions' entries
//! and `ret`s that `pipeline::lockplan` chose; their samples are [`record::SampleKind::LockWait`],
//! `LockAcquired` and `LockWake`, told apart by the counter id each sample carries.
//!
//! What this module leaves to others: address spaces over time (`process`), stack walking (`unwind`),
//! symbols (`symbolize`). It never changes kernel settings.

mod convert;
mod counters;
mod error;
mod event;
mod launch;
pub mod memory;
mod order;
mod procfs;
pub mod record;
pub mod sample;
pub mod sched;
mod session;
pub mod signals;

use std::ffi::OsString;

pub use error::AcquireError;
pub use event::{EventKind, EventSpec};
/// For the fuzz targets only.
#[doc(hidden)]
pub use procfs::{parse_maps, MapsEntry};
pub use sample::{Recycler, StackBudget};
pub use session::monotonic_now;
pub use session::Session;

/// Finds a command's program as `execvp` will when the command is launched: as given if it holds a `/`, else
/// in `PATH`.
pub fn resolve_program(program: &std::ffi::OsStr) -> Option<std::path::PathBuf> {
    launch::resolve(program)
}

/// The process (thread group) thread `tid` belongs to.
pub fn process_of(tid: u32) -> std::io::Result<u32> {
    procfs::tgid(tid)
}

/// What to profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Launch this command (program and arguments) and profile it and its descendants.
    Command(Vec<OsString>),
    /// Attach to these processes: all their threads, and threads and children they create later.
    Pids(Vec<u32>),
    /// Attach to these threads only.
    Tids(Vec<u32>),
    /// Every CPU, every process.
    System,
}

/// How call chains are recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallGraphMode {
    /// The kernel walks frame pointers (`PERF_SAMPLE_CALLCHAIN`), kernel and user.
    Fp,
    /// Frame-pointer chains plus a copy of this many bytes of user stack and the user registers
    /// ([`USER_REGS`]), for repairing frames that frame pointers skip. The default.
    Hybrid(u32),
    /// Kernel chains only, plus a copy of this many bytes of user stack and the user registers, for
    /// unwinding with `.eh_frame`.
    Dwarf(u32),
}

/// Stack bytes copied per sample in dwarf mode when the mode names no size (perf's default).
pub const DEFAULT_STACK_BYTES: u32 = 8192;
/// Stack bytes copied per sample in hybrid mode (the default mode) when the mode names no size: the kernel's
/// largest copy. The kernel copies from the stack pointer up to the first page it cannot read (the top of a
/// main thread's stack, a thread stack's neighbouring guard page), so a shallow stack costs what it did with
/// 16 KiB copies; only a stack deeper than that copies more, and such a stack is what needs it. On a rustc
/// compile (no frame pointers, deep stacks) 16 KiB copies left 62% of the walks to be continued in live memory,
/// one in six of them refused (the thread had moved on, or returned past the copy), and cost stacktop more CPU
/// than the kernel's larger copies do (`benches/README.md`, `continuation_vs_perf.sh`). A record reserves its
/// whole copy in the ring, which is sized for it (`counters.rs`).
pub const DEFAULT_HYBRID_STACK_BYTES: u32 = MAX_STACK_BYTES;
/// `top`'s hybrid copy when the mode names no size. `top` runs for hours over the whole machine, where the
/// ring traffic is the cost: every record reserves its full copy size, so 16 KiB records put each record's
/// first bytes on a cold page of their own, and reading them was most of the reader thread's time (see
/// `benches/README.md`). 4 KiB still holds the frameless frames of a libc call (a few hundred bytes) and
/// about 85 frames of 48 bytes; past the kernel's 127-frame chain a `top` stack ends in `[truncated]` where
/// `record`'s would go on.
pub const TOP_HYBRID_STACK_BYTES: u32 = 4096;
/// The stack bytes a hybrid mode that names no size copies per sample at `frequency`: `base` (record's
/// [`DEFAULT_HYBRID_STACK_BYTES`], top's [`TOP_HYBRID_STACK_BYTES`]) halved, down to top's, until the copies
/// come to at most [`STACK_COPY_BYTES_PER_CPU_SECOND`]. The kernel copies every sample's stack in the sampling
/// interrupt, and past that rate the copies, not the walks, were what lost samples: `record -a` on two busy
/// CPUs (`benches/sustained_rate.sh`) lost 18,507 samples in 8 s at 25,000 Hz with 16 KiB copies and none with
/// 4 KiB ones. The continuation in live memory completes the stacks a shorter copy cuts.
pub fn hybrid_bytes_at(base: u32, frequency: u64) -> u32 {
    let mut bytes = base;
    while bytes > TOP_HYBRID_STACK_BYTES
        && u64::from(bytes).saturating_mul(frequency) > STACK_COPY_BYTES_PER_CPU_SECOND
    {
        // Powers of two from the kernel's largest copy down: 32 KiB, 16 KiB...
        bytes = (bytes / 2).next_power_of_two();
    }
    bytes.max(base.min(TOP_HYBRID_STACK_BYTES))
}

/// See [`hybrid_bytes_at`]: the kernel's largest copies up to 2,048 Hz, 32 KiB up to 4,096 Hz, 16 KiB up to
/// 8,192 Hz, 8 KiB up to 16,384 Hz, 4 KiB above.
pub const STACK_COPY_BYTES_PER_CPU_SECOND: u64 = 128 << 20;

/// Stack bytes copied per switch-out sample in hybrid mode (at most the CPU samples' copy). Switch-out samples
/// carry no user frame-pointer chain (see `counters::Opener::switch_opts`): the copy is the whole user stack
/// they see. What walks of blocked stacks read, measured (`benches/README.md`): 200 to 530 bytes in programs
/// with frame pointers (nanosleep, a pipe, a contended mutex), 400 to 1,800 in memcached (95% under 1 KiB),
/// 1.4 to 1.9 KiB in Debian's python3.11 (its stacks then end in `[truncated]`, its waiting functions kept).
/// Each KiB more cost the switch-heavy benchmark about 0.2 us per switch; at 1 KiB stacktop's slowdown is
/// perf -g's, at 2 KiB 5% more. `--call-graph dwarf,N` copies N bytes at every switch.
pub const SWITCH_HYBRID_STACK_BYTES: u32 = 1024;
/// What off-CPU recording costs the target, as every header says it (measured with
/// `benches/offcpu_vs_perf.sh`).
pub const OFF_CPU_COST: &str =
    "each switch-out costs the target about 1.6 us (at 1,000 switches a second, 0.16% of its time; measured on a 2-CPU VM); --no-off-cpu turns it off";
/// Stack bytes copied per lock probe's sample in hybrid mode (at most the CPU samples' copy), at the entry of a
/// lock's wait and wake paths. The kernel's frame-pointer chain is taken too: the copy repairs the frameless
/// libc frames at the top (`__lll_lock_wait` under `pthread_mutex_lock`: under 200 bytes), the chain goes on
/// past the copy in code with frame pointers; code without them (Rust's release builds) is walked in the copy
/// alone, about 60 frames of 64 bytes. `--call-graph dwarf,N` copies N bytes. The wait's end takes no stack.
pub const LOCK_HYBRID_STACK_BYTES: u32 = 4096;
/// What lock probes cost the target, as `record`'s header says it. Measured on the 2-CPU VM the project runs
/// on, where a uprobe's trap alone costs 16 us (`perf stat -e probe_libc:pthread_mutex_lock`, counting only):
/// a hit with its 4 KiB stack copy cost 17.7 us (`--locks=pthread` on an uncontended lock/unlock loop, three
/// hits a pair; `perf record --call-graph dwarf,4096` on the same probe: 20.3 us). Traps are cheaper on bare
/// metal. An uncontended loop of 10M lock/unlock pairs ran at the same speed with and without `--locks`.
pub const LOCK_PROBE_COST: &str =
    "each contended wait costs its threads three probe hits (its start, its end, the release), about 18 us each on a 2-CPU VM where a uprobe's trap alone costs 16 us; an uncontended lock costs nothing (with --locks=pthread, every lock and unlock call is hit); the probes trap in every process that maps the probed files, not only the target's";
/// The kernel's largest user stack copy (a record's size is a u16).
pub const MAX_STACK_BYTES: u32 = 65528;

impl Default for CallGraphMode {
    fn default() -> CallGraphMode {
        CallGraphMode::Hybrid(DEFAULT_HYBRID_STACK_BYTES)
    }
}

impl CallGraphMode {
    /// Bytes of user stack copied per sample (0 in frame-pointer mode), as the kernel will be asked:
    /// a multiple of 8 no larger than [`MAX_STACK_BYTES`].
    pub fn stack_bytes(self) -> u32 {
        match self {
            CallGraphMode::Fp => 0,
            CallGraphMode::Hybrid(n) | CallGraphMode::Dwarf(n) => {
                (n.clamp(8, MAX_STACK_BYTES)) & !7
            }
        }
    }

    /// Bytes of user stack copied per lock probe's sample (see [`LOCK_HYBRID_STACK_BYTES`]).
    pub fn lock_stack_bytes(self) -> u32 {
        match self {
            CallGraphMode::Hybrid(_) => self.stack_bytes().min(LOCK_HYBRID_STACK_BYTES),
            CallGraphMode::Fp | CallGraphMode::Dwarf(_) => self.stack_bytes(),
        }
    }

    /// Bytes of user stack copied per switch-out sample (off-CPU time): hybrid mode copies at most
    /// [`SWITCH_HYBRID_STACK_BYTES`]; dwarf mode walks nothing but the copy, so it copies what CPU samples do.
    pub fn switch_stack_bytes(self) -> u32 {
        match self {
            CallGraphMode::Hybrid(_) => self.stack_bytes().min(SWITCH_HYBRID_STACK_BYTES),
            CallGraphMode::Fp | CallGraphMode::Dwarf(_) => self.stack_bytes(),
        }
    }
}

impl std::fmt::Display for CallGraphMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallGraphMode::Fp => f.write_str("fp"),
            CallGraphMode::Hybrid(_) => write!(f, "hybrid,{}", self.stack_bytes()),
            CallGraphMode::Dwarf(_) => write!(f, "dwarf,{}", self.stack_bytes()),
        }
    }
}

impl std::str::FromStr for CallGraphMode {
    type Err = AcquireError;

    /// perf's spelling: `fp`, `dwarf[,STACK_BYTES]`, and stacktop's `hybrid[,STACK_BYTES]`.
    fn from_str(s: &str) -> Result<CallGraphMode, AcquireError> {
        CallGraphMode::parse(s, DEFAULT_HYBRID_STACK_BYTES)
    }
}

impl CallGraphMode {
    /// Like `str::parse`, with `hybrid_bytes` copied per sample by a `hybrid` that names no size.
    pub fn parse(s: &str, hybrid_bytes: u32) -> Result<CallGraphMode, AcquireError> {
        let invalid = || AcquireError::InvalidCallGraph { mode: s.to_owned() };
        let (name, size) = s.split_once(',').unwrap_or((s, ""));
        let bytes = if size.is_empty() {
            if name.trim() == "hybrid" {
                hybrid_bytes
            } else {
                DEFAULT_STACK_BYTES
            }
        } else {
            size.trim().parse::<u32>().map_err(|_| invalid())?
        };
        if bytes == 0 || bytes > MAX_STACK_BYTES {
            return Err(invalid());
        }
        match (name.trim(), size.is_empty()) {
            ("fp", true) => Ok(CallGraphMode::Fp),
            ("hybrid", _) => Ok(CallGraphMode::Hybrid(bytes)),
            ("dwarf", _) => Ok(CallGraphMode::Dwarf(bytes)),
            _ => Err(invalid()),
        }
    }
}

pub use crate::arch::USER_REGS;
use crate::arch::USER_REGS_MASK;

/// Where a launched command's stdout and stderr go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CommandOutput {
    /// Shared with stacktop (perf's behaviour).
    #[default]
    Inherit,
    /// `/dev/null` (for the TUI, where the command would draw over the screen, and for tests).
    Null,
    /// Appended to this file, created if missing (the TUI names it in its header).
    File(std::path::PathBuf),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    pub target: Target,
    pub event: EventSpec,
    /// Samples per second per CPU (frequency mode: the kernel adjusts the period to hit it).
    pub frequency: u64,
    pub call_graph: CallGraphMode,
    pub command_output: CommandOutput,
    /// Record off-CPU time: a context-switch sample at every switch-out of a target thread (its stack walked
    /// like a CPU sample's) and the switch records that tell when it runs again.
    pub off_cpu: bool,
    /// Record lock contention (`--locks`): uprobes on the lock paths of the target's files (see [`LockProbes`]);
    /// `None`: off.
    pub locks: Option<LockProbes>,
}

/// What a lock probe's hit means (see [`record::SampleKind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeRole {
    /// The entry of a wait path: the first argument is the lock's address.
    Wait,
    /// A `ret` of a wait path: the wait is over.
    Acquired,
    /// The entry of a wake path: the first argument is the lock's address.
    Wake,
}

/// One uprobe: the instruction at `offset` in the file at `path` (a file offset, not an address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uprobe {
    pub path: std::path::PathBuf,
    pub offset: u64,
    pub role: ProbeRole,
}

/// Lock contention recording: where the probes go and what they are. The probes are the kernel's uprobe PMU's
/// (`perf_event_open`, no tracefs, no BPF), opened on the same targets as the CPU counters; the kernel removes
/// a probe with its last file descriptor, so none outlives stacktop, however it ends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockProbes {
    pub probes: Vec<Uprobe>,
    /// What was probed, one line each (`glibc: __lll_lock_wait, __lll_lock_wake in /lib/.../libc.so.6`), for
    /// the profile's header.
    pub described: Vec<String>,
    /// The probes are hit at every lock call, not only at contended ones (`--locks=pthread`): a wait counts
    /// only when the thread waited.
    pub every_call: bool,
}

/// Counts for the header of every output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// CPU samples.
    pub samples: u64,
    /// Switch-out samples (off-CPU recording).
    pub switches: u64,
    /// Samples the kernel dropped because a ring buffer was full (`PERF_RECORD_LOST` and `LOST_SAMPLES`).
    pub lost: u64,
    /// Of `lost`, the samples stacktop dropped itself because processing fell behind sampling (see
    /// [`Recycler`]).
    pub dropped: u64,
    /// Of `lost`, those of off-CPU recording: switch-out samples and switch records.
    pub lost_off_cpu: u64,
    /// Lock probes' samples (`--locks`): waits begun and ended, wakes.
    pub locks: u64,
    /// Of `lost`, those of lock probes.
    pub lost_locks: u64,
    /// Lock probes' samples of other processes than the target's, dropped (a probe fires in every process
    /// that maps its file).
    pub locks_elsewhere: u64,
    /// Times the kernel throttled sampling because it was too frequent.
    pub throttled: u64,
}

impl Stats {
    /// Counts one record read from a ring.
    pub(crate) fn count(&mut self, record: &record::Record) {
        match record {
            record::Record::Sample(s) => match s.kind {
                record::SampleKind::Cpu => self.samples += 1,
                record::SampleKind::SwitchOut => self.switches += 1,
                _ => self.locks += 1,
            },
            record::Record::Lost { count, off_cpu, .. } => {
                self.lost += count;
                if *off_cpu {
                    self.lost_off_cpu += count;
                }
            }
            record::Record::Throttle {
                throttled: true, ..
            } => self.throttled += 1,
            _ => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_default_hybrid_copy_shrinks_at_high_rates() {
        let record = |f| hybrid_bytes_at(DEFAULT_HYBRID_STACK_BYTES, f);
        assert_eq!(record(999), 65528);
        assert_eq!(record(2048), 65528);
        assert_eq!(record(4000), 32768);
        assert_eq!(record(5000), 16384);
        assert_eq!(record(8192), 16384);
        assert_eq!(record(10_000), 8192);
        assert_eq!(record(16_384), 8192);
        assert_eq!(record(25_000), 4096);
        assert_eq!(record(100_000), 4096);
        assert_eq!(hybrid_bytes_at(TOP_HYBRID_STACK_BYTES, 100_000), 4096);
        assert_eq!(hybrid_bytes_at(1024, 100_000), 1024);
    }

    #[test]
    fn parses_call_graph_modes() {
        assert_eq!("fp".parse::<CallGraphMode>().unwrap(), CallGraphMode::Fp);
        assert_eq!(
            "dwarf".parse::<CallGraphMode>().unwrap(),
            CallGraphMode::Dwarf(8192)
        );
        assert_eq!(
            "dwarf,4096".parse::<CallGraphMode>().unwrap(),
            CallGraphMode::Dwarf(4096)
        );
        assert_eq!(
            "hybrid,16384".parse::<CallGraphMode>().unwrap(),
            CallGraphMode::Hybrid(16384)
        );
        for bad in ["lbr", "fp,8", "dwarf,0", "dwarf,70000", "dwarf,x"] {
            let err = bad.parse::<CallGraphMode>().unwrap_err().to_string();
            assert!(err.contains(bad) && err.contains("hybrid"), "{err}");
        }
    }

    #[test]
    fn stack_sizes_are_what_the_kernel_accepts() {
        assert_eq!(CallGraphMode::Fp.stack_bytes(), 0);
        assert_eq!(CallGraphMode::Dwarf(1001).stack_bytes(), 1000);
        assert_eq!(CallGraphMode::Dwarf(1).stack_bytes(), 8);
        assert_eq!(
            CallGraphMode::Hybrid(u32::MAX).stack_bytes(),
            MAX_STACK_BYTES
        );
        assert_eq!(CallGraphMode::Dwarf(1001).to_string(), "dwarf,1000");
        assert_eq!(CallGraphMode::Fp.to_string(), "fp");
    }
}
