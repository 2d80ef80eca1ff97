//! The acquisition errors; each message ends with what the user can do about it.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum AcquireError {
    #[error(
        "permission denied opening {event} for {target}: kernel.perf_event_paranoid is {paranoid}; \
         run as root or grant CAP_PERFMON (e.g. `sudo setcap cap_perfmon,cap_sys_ptrace+ep stacktop`)"
    )]
    PermissionDenied {
        event: String,
        target: String,
        paranoid: String,
    },
    #[error("no such process: {pid}; check the pid (e.g. with `ps -p {pid}`)")]
    NoSuchProcess { pid: u32 },
    #[error("no such thread: {tid}; check the thread id (e.g. with `ps -T`)")]
    NoSuchThread { tid: u32 },
    #[error("{id} has exited (a zombie its parent has not reaped): there is nothing left to sample; check the id (e.g. with `ps -o pid,stat,comm -p {id}`)")]
    Zombie { id: u32 },
    #[error("{id} is a kernel thread, which runs no user code; sample the whole system with -a to see kernel time")]
    KernelThread { id: u32 },
    #[error("unknown event `{name}`; valid events are cpu-clock, task-clock and cycles, optionally with :u or :k")]
    UnknownEvent { name: String },
    #[error("invalid call graph mode `{mode}`; use fp, hybrid[,STACK_BYTES] or dwarf[,STACK_BYTES] (at most 65528 bytes)")]
    InvalidCallGraph { mode: String },
    #[error("command not found: {command}; check its spelling and PATH")]
    CommandNotFound { command: String },
    #[error("cannot execute {command}: {source}; check that it is an executable file")]
    Exec { command: String, source: io::Error },
    #[error("no command given; pass one after `--`")]
    EmptyCommand,
    #[error("no pid or tid given; pass at least one to -p or -t")]
    NoTarget,
    #[error("perf events are not available on this system (no /proc/sys/kernel/perf_event_paranoid); use a kernel built with CONFIG_PERF_EVENTS")]
    Unsupported,
    #[error("opening {event} for {target} failed: {source}; try another event with -e (cpu-clock always exists)")]
    Open {
        event: String,
        target: String,
        source: io::Error,
    },
    #[error(
        "cannot map the ring buffer for CPU {cpu}: {source}; raise kernel.perf_event_mlock_kb or run as root"
    )]
    RingBuffer { cpu: u32, source: io::Error },
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("--locks needs the kernel's uprobe PMU (/sys/bus/event_source/devices/uprobe), which this kernel lacks; use a kernel built with CONFIG_UPROBE_EVENTS, or record without --locks")]
    NoUprobes,
    #[error("permission denied placing lock probes (uprobes) for {target}: they need root, CAP_PERFMON or CAP_SYS_ADMIN whatever kernel.perf_event_paranoid says; run as root (or `sudo setcap cap_perfmon,cap_sys_ptrace+ep stacktop`), or record without --locks")]
    LockProbesDenied { target: String },
    #[error("placing a lock probe at {path}+{offset:#x} for {target} failed: {source}; record without --locks")]
    LockProbe {
        path: String,
        offset: u64,
        target: String,
        source: io::Error,
    },
    #[error("--locks reads a lock's address from a register this architecture's support does not sample yet (x86_64 only); record without --locks")]
    LocksUnsupported,
}

impl AcquireError {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> AcquireError {
        AcquireError::Io {
            what: what.into(),
            source,
        }
    }
}
