//! Memory the kernel hands us or takes back: freed heap returned, other processes' memory read, files mapped.
//!
//! `top -a` loads the symbols and unwind tables of every large binary that runs (a Rust build's rustc and
//! LLVM: hundreds of MB) and drops them when the last process mapping them exits; the live profile's tables
//! are rebuilt from time to time. glibc's malloc keeps most of what is freed that way resident (the pages sit
//! between live allocations, in several threads' arenas), so the RSS would stay at the session's peak.

/// Returns the free pages of every malloc arena to the kernel (glibc's `malloc_trim`). Its cost grows with
/// the heap (milliseconds for hundreds of MB): call it after large frees, not per sample.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes a plain integer, touches only malloc's own state under its locks, and may be
    // called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Reads other processes' memory (`process_vm_readv`), for walks continued past their stack copy (see
/// `unwind::live`). Needs the right to ptrace the process (the same user, or CAP_SYS_PTRACE; Yama's
/// `ptrace_scope` may narrow it to descendants): otherwise each process is refused once, and said so.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessMemory;

impl crate::unwind::live::LiveMemory for ProcessMemory {
    fn read(
        &mut self,
        pid: u32,
        address: u64,
        buf: &mut [u8],
    ) -> Result<usize, crate::unwind::live::LiveError> {
        use crate::unwind::live::LiveError;
        let (Ok(pid), Ok(remote)) = (libc::pid_t::try_from(pid), usize::try_from(address)) else {
            return Err(LiveError::Unmapped);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let remote = libc::iovec {
            iov_base: remote as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // SAFETY: `local` describes `buf`, which is valid for writes of its length and outlives the call; the
        // remote iovec is only an address in the other process, which the kernel checks (EFAULT), never
        // dereferenced here.
        let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
        if n >= 0 {
            return Ok(n as usize);
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => Err(LiveError::NotPermitted),
            Some(libc::ESRCH) => Err(LiveError::Exited),
            _ => Err(LiveError::Unmapped),
        }
    }

    fn now(&self) -> u64 {
        super::monotonic_now()
    }
}

/// A file mapped read-only: large binaries are parsed in place, so that only the pages parsed become
/// resident, and they are the page cache's (shared with the running program, reclaimable), where reading a
/// 150 MB `librustc_driver` whole put all of it on stacktop's heap for the parse.
pub struct MappedFile(memmap2::Mmap);

impl MappedFile {
    pub fn map(file: &std::fs::File) -> std::io::Result<MappedFile> {
        // SAFETY: the mapping is private and read-only, and lives as long as the `MappedFile`, which callers
        // hold only while they parse (what they keep is copied out). What mmap cannot rule out is another
        // process truncating the file meanwhile: touching a page past its new end raises SIGBUS. The files
        // mapped are binaries and libraries that processes run from: installers and linkers replace those by
        // writing a new file and renaming it over (the old inode stays whole); a linker rewriting in place
        // the very binary being parsed, in the milliseconds of a parse, is the risk taken (perf and samply
        // map the files they read the same way).
        unsafe { memmap2::Mmap::map(file) }.map(MappedFile)
    }
}

impl std::ops::Deref for MappedFile {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}
