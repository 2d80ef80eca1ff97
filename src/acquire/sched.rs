//! The scheduling priority of stacktop's own sampling threads.
//!
//! The thread that drains the rings and the one that unwinds what it drained do work in proportion to the
//! samples taken, nothing more. At nice 0 on a machine saturated by the very load being profiled (64 busy
//! threads on 2 CPUs), each gets 1/65 of the CPU time: the rings overflow and nearly every sample is lost
//! (kept: 0.4% of what `perf record -g` kept at `-F 25000`; at nice -10, 22% of a CPU, still too little).
//! Raised to [`SAMPLING_NICE`], they get the
//! time their samples need, and no more: the cost to the target is what the sampling rate asks for. `top`'s
//! symbol loading and UI, and a launched command, stay at the nice they started with. `perf record -r` does
//! the same with a real-time priority.

use std::io;

/// The nice value the sampling threads ask for (lower is more CPU; 0 is the default).
pub const SAMPLING_NICE: i32 = -20;

/// Raises the calling thread (only it: on Linux a nice value belongs to a thread) to [`SAMPLING_NICE`] when
/// allowed (root, or `CAP_SYS_NICE`); a thread already above it is left alone. Threads it creates later
/// inherit the value, so call it in the thread that samples, after spawning the others.
pub fn raise_sampling_thread() -> io::Result<()> {
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    // getpriority may return -1 as a value: errno tells an error apart.
    // SAFETY: writes the thread's errno, which only this thread reads.
    unsafe { *libc::__errno_location() = 0 };
    // SAFETY: plain syscall on our own thread id; no memory is passed.
    let current = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t) };
    if current == -1 && io::Error::last_os_error().raw_os_error() != Some(0) {
        return Err(io::Error::last_os_error());
    }
    if current <= SAMPLING_NICE {
        return Ok(());
    }
    // SAFETY: as above.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, SAMPLING_NICE) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The calling thread's nice value.
pub fn thread_nice() -> io::Result<i32> {
    // SAFETY: as in `raise_sampling_thread`.
    let tid = unsafe { libc::gettid() };
    // SAFETY: as in `raise_sampling_thread`.
    unsafe { *libc::__errno_location() = 0 };
    // SAFETY: as in `raise_sampling_thread`.
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t) };
    if nice == -1 && io::Error::last_os_error().raw_os_error() != Some(0) {
        return Err(io::Error::last_os_error());
    }
    Ok(nice)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn raising_changes_only_the_calling_thread() {
        let before = thread_nice().unwrap();
        let (raised, nice) = std::thread::spawn(|| {
            let raised = raise_sampling_thread();
            (raised, thread_nice().unwrap())
        })
        .join()
        .unwrap();
        match raised {
            Ok(()) => assert_eq!(nice, before.min(SAMPLING_NICE)),
            // Not allowed (no CAP_SYS_NICE): unchanged.
            Err(e) => {
                assert!(matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)));
                assert_eq!(nice, before);
            }
        }
        assert_eq!(thread_nice().unwrap(), before);
    }
}
