//! Handing freed memory back to the kernel.
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
