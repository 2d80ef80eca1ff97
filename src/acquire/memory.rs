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
///
/// A module's DWARF is read in place too, for as long as the module is loaded (`top` keeps it for the
/// session), where a copy put stacktop's own 52 MB of line tables on the heap when it symbolized itself.
pub struct MappedFile(memmap2::Mmap);

impl MappedFile {
    pub fn map(file: &std::fs::File) -> std::io::Result<MappedFile> {
        // SAFETY: the mapping is private and read-only, and lives as long as the `MappedFile`. What mmap
        // cannot rule out is another process truncating the file meanwhile: touching a page past its new end
        // raises SIGBUS. The files mapped are binaries and libraries that processes run from: installers and
        // linkers replace those by writing a new file and renaming it over, or unlink it first (GNU ld, lld,
        // cargo's copies), so the old inode stays whole; an executable being run cannot be opened for writing
        // (ETXTBSY). A library rewritten in place would crash the programs running it first; that is the risk
        // taken (perf and samply map the files they read the same way, libdw keeps its DWARF mapped).
        unsafe { memmap2::Mmap::map(file) }.map(MappedFile)
    }
}

impl std::ops::Deref for MappedFile {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// The bytes of a file, read whole or mapped.
pub enum FileBytes {
    Read(Box<[u8]>),
    Mapped(MappedFile),
}

impl FileBytes {
    /// Drops a mapped file's pages from this process's memory (they stay in the page cache, and come back on
    /// the next read of them, as a minor fault): a parse reads a large library's whole symbol and string
    /// tables once, and a lookup in its DWARF pages of it here and there, which would otherwise all stay in
    /// the RSS while the module is loaded. Does nothing to bytes read whole.
    pub fn release_pages(&self) {
        if let FileBytes::Mapped(MappedFile(map)) = self {
            // SAFETY: MADV_DONTNEED on a private mapping discards the pages' private copies: this one is
            // read-only, so it has none, and the next read of a page finds the file's bytes again (the
            // unchecked part of the advice is only about writable mappings losing their writes). Slices of
            // the mapping held meanwhile see the same bytes before and after.
            let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }
}

impl std::ops::Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Read(bytes) => bytes,
            FileBytes::Mapped(mapped) => mapped,
        }
    }
}

/// A range of a file's bytes, shared: what gimli reads DWARF through, in place (no copy of the sections), the
/// file's bytes living as long as some reader of them does.
#[derive(Clone)]
pub struct SharedBytes {
    file: std::sync::Arc<FileBytes>,
    start: usize,
    end: usize,
}

impl SharedBytes {
    /// `range` of `file`; `None` when the file is shorter.
    pub fn new(
        file: &std::sync::Arc<FileBytes>,
        range: std::ops::Range<usize>,
    ) -> Option<SharedBytes> {
        file.get(range.clone())?;
        Some(SharedBytes {
            file: std::sync::Arc::clone(file),
            start: range.start,
            end: range.end,
        })
    }

    /// Bytes of their own (a decompressed section, a test's).
    pub fn owned(bytes: Box<[u8]>) -> SharedBytes {
        let end = bytes.len();
        SharedBytes {
            file: std::sync::Arc::new(FileBytes::Read(bytes)),
            start: 0,
            end,
        }
    }
}

impl std::ops::Deref for SharedBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // Checked in `new`, and the file's bytes never change length.
        self.file.get(self.start..self.end).unwrap_or(&[])
    }
}

impl std::fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedBytes({}..{})", self.start, self.end)
    }
}

// SAFETY: the bytes `deref` returns live in the `FileBytes` behind the `Arc` (a heap allocation or a mapping,
// neither of which moves or changes while the `Arc` holds it), not in the `SharedBytes` value: moving it does
// not move them.
unsafe impl stable_deref_trait::StableDeref for SharedBytes {}

// SAFETY: a clone holds the same `Arc` and range, so it derefs to the very same bytes.
unsafe impl stable_deref_trait::CloneStableDeref for SharedBytes {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Arc;

    #[test]
    fn mapped_bytes_read_the_same_after_their_pages_are_released() {
        let mut file = tempfile::tempfile().unwrap();
        let contents: Vec<u8> = (0..3 * 4096 + 17).map(|i| (i % 251) as u8).collect();
        file.write_all(&contents).unwrap();
        let mapped = Arc::new(FileBytes::Mapped(MappedFile::map(&file).unwrap()));
        let middle = SharedBytes::new(&mapped, 4000..8200).unwrap();
        assert_eq!(&*middle, &contents[4000..8200]);
        mapped.release_pages();
        assert_eq!(&*middle, &contents[4000..8200]);
        assert_eq!(&**mapped, &contents[..]);
        // Clones read the same bytes; a range past the end is refused.
        assert_eq!(&*middle.clone(), &*middle);
        assert!(SharedBytes::new(&mapped, 0..contents.len() + 1).is_none());
        let read = Arc::new(FileBytes::Read(contents.clone().into()));
        read.release_pages();
        assert_eq!(&*SharedBytes::new(&read, 1..3).unwrap(), &contents[1..3]);
        assert_eq!(&*SharedBytes::owned(Box::from(&b"abc"[..])), b"abc");
    }
}
