//! Address spaces over time: processes, threads, comm names and mappings (from /proc and MMAP2).
