//! The only part of stacktop that finds and opens a module's files: which files to open for a module, in which
//! order, and which separate debug file belongs to it. Everything found for symbols is handed to `elf.rs`
//! as bytes; the unwinder gets the binary's file, open ([`module_data`]), and reads only its tables. The vdso
//! has no file: it is read from the process's memory, else from our own (the same kernel's).
//!
//! Binary, while the process lives (so deleted files and containers work), then on the host:
//! ```text
//!   /proc/PID/map_files/START-END     the very file that is mapped (even if deleted or replaced)
//!   /proc/PID/root/PATH               PATH as the process sees it (containers, chroots)
//!   PATH                              the host's file (the process may have exited)
//! ```
//! Debug file, for each debug root (default `/usr/lib/debug`), then the same under `/proc/PID/root`:
//! ```text
//!   ROOT/.build-id/ab/cdef...debug    by the binary's build-id
//!   DIR/LINK, DIR/.debug/LINK, ROOT/DIR/LINK   by `.gnu_debuglink` (LINK) next to the binary (in DIR)
//! ```
//! A debug file is used only if its build-id equals the binary's; without build-ids, the debuglink CRC decides.
//!
//! Supplementary DWARF file (`dwz -m`, as in Debian's `-dbgsym` packages), named by the `.gnu_debugaltlink` of
//! the file holding the DWARF: its path as written (relative to that file's directory if relative), then
//! `ROOT/.build-id/ab/cdef...debug` by its build-id; used only if that build-id matches.

use crate::acquire::memory::{FileBytes, MappedFile};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object::read::ReadCache;

use super::elf::ElfFile;
use super::ModuleSpec;

/// A file that was opened and parsed.
pub struct Opened {
    pub path: PathBuf,
    pub file: ElfFile,
}

/// Why no binary could be used.
pub enum OpenFailure {
    /// A file was found, but its build-id is not the recorded one.
    Mismatch {
        opened: PathBuf,
        expected: Vec<u8>,
        found: Vec<u8>,
    },
    /// Nothing readable (missing, permission, not ELF): the reasons, one per candidate.
    Unreadable(String),
}

/// The path as recorded, without the kernel's ` (deleted)` mark.
pub fn clean_path(path: &str) -> &str {
    path.strip_suffix(" (deleted)").unwrap_or(path)
}

fn under_root(pid: u32, path: &Path) -> PathBuf {
    let rel = path.strip_prefix("/").unwrap_or(path);
    Path::new("/proc")
        .join(pid.to_string())
        .join("root")
        .join(rel)
}

/// True when the file `spec` maps is the host's file at its path (same device and inode), so it can be read
/// after the process is gone (deferred loading, see `background`). False for pseudo paths, a deleted path, and
/// a process whose mapped file cannot be checked (no `/proc/PID/map_files` access, or the mapping is gone):
/// those are read while the process lives.
pub fn same_file_on_host(spec: &ModuleSpec) -> bool {
    use std::os::unix::fs::MetadataExt;
    let path = Path::new(&spec.path);
    if !path.is_absolute() || spec.path.ends_with(" (deleted)") {
        return false;
    }
    let Ok(host) = std::fs::metadata(path) else {
        return false;
    };
    let Some(pid) = spec.pid else {
        // Nobody maps it any more: the host's file is the only one there is.
        return true;
    };
    if spec.map_end <= spec.map_start {
        return false;
    }
    let mapped = format!(
        "/proc/{pid}/map_files/{:x}-{:x}",
        spec.map_start, spec.map_end
    );
    std::fs::metadata(mapped)
        .is_ok_and(|m| host.is_file() && m.dev() == host.dev() && m.ino() == host.ino())
}

/// Candidate paths for the binary, most exact first.
pub fn binary_candidates(spec: &ModuleSpec) -> Vec<PathBuf> {
    let path = Path::new(clean_path(&spec.path));
    let mut out = Vec::new();
    if let Some(pid) = spec.pid {
        if spec.map_end > spec.map_start {
            out.push(PathBuf::from(format!(
                "/proc/{pid}/map_files/{:x}-{:x}",
                spec.map_start, spec.map_end
            )));
        }
        if path.is_absolute() {
            out.push(under_root(pid, path));
        }
    }
    out.push(path.to_path_buf());
    if let Some(cached) = spec
        .build_id
        .as_deref()
        .and_then(|id| perf_build_id_cache(id, "elf"))
    {
        out.push(cached);
    }
    out
}

/// `~/.debug/.build-id/xx/yyyy/FILE` in perf's build-id cache (`perf record` fills it with the binaries it
/// saw, `elf`, and the kernel's symbols, `kallsyms`); `None` when it does not exist.
pub fn perf_build_id_cache(build_id: &[u8], file: &str) -> Option<PathBuf> {
    if build_id.len() < 2 {
        return None;
    }
    let home = std::env::var_os("HOME")?;
    let id = hex(build_id);
    let path = Path::new(&home)
        .join(".debug/.build-id")
        .join(&id[..2])
        .join(&id[2..])
        .join(file);
    path.is_file().then_some(path)
}

/// Parses an ELF file: a small one read whole, a large one mapped (see `READ_WHOLE_LIMIT`).
pub fn parse_file(path: &Path) -> Result<ElfFile, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // A mapped device (`/dev/dri/renderD128`, `/dev/zero`) is no ELF file, and reading one can block.
    let meta = file
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    // Reading a file of ordinary size whole is far cheaper than object's ReadCache, which issues a read per
    // symbol name: on a rustc recording, loading librustc_driver and libLLVM took a fifth of `report` that way.
    // Only what ElfFile keeps outlives the buffer.
    // A large one is mapped: as fast, and only the sections parsed become resident (read whole, rustc's
    // 150 MB driver library set `record`'s peak RSS). Its DWARF is then read in place.
    let mapped = if meta.len() > READ_WHOLE_LIMIT {
        MappedFile::map(&file).ok()
    } else {
        None
    };
    let bytes = match mapped {
        Some(mapped) => FileBytes::Mapped(mapped),
        None => {
            let mut bytes = Vec::with_capacity(meta.len().min(MAX_MODULE_BYTES) as usize);
            let mut file = file;
            std::io::Read::read_to_end(&mut file, &mut bytes)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            FileBytes::Read(bytes.into_boxed_slice())
        }
    };
    ElfFile::parse(Arc::new(bytes)).map_err(|e| format!("{}: {e}", path.display()))
}

/// Files up to this size are read whole to be parsed; larger ones are mapped (or, failing that, read
/// piecemeal).
const READ_WHOLE_LIMIT: u64 = 16 << 20;

/// Opens the first usable candidate. A candidate with the wrong build-id is skipped (a later one may be right,
/// e.g. the host file after the process's own copy vanished), but it is what gets reported if none fits.
pub fn open_binary(spec: &ModuleSpec) -> Result<Opened, OpenFailure> {
    let mut mismatch = None;
    let mut reasons = Vec::new();
    for path in binary_candidates(spec) {
        let file = match parse_file(&path) {
            Ok(f) => f,
            Err(reason) => {
                reasons.push(reason);
                continue;
            }
        };
        match (&spec.build_id, &file.build_id) {
            (Some(expected), Some(found)) if !build_ids_match(expected, found) => {
                mismatch.get_or_insert(OpenFailure::Mismatch {
                    opened: path,
                    expected: expected.clone(),
                    found: found.clone(),
                });
            }
            _ => return Ok(Opened { path, file }),
        }
    }
    Err(mismatch.unwrap_or_else(|| OpenFailure::Unreadable(reasons.join("; "))))
}

/// True when a recorded build-id names a file's. Records with a fixed-size field (perf's MMAP2 event keeps 20
/// bytes) may pad a shorter id (16-byte md5 or uuid ids) with zeros.
pub fn build_ids_match(recorded: &[u8], file: &[u8]) -> bool {
    recorded == file
        || (!file.is_empty()
            && recorded.len() > file.len()
            && recorded.starts_with(file)
            && recorded[file.len()..].iter().all(|&b| b == 0))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone, Copy)]
enum Via {
    BuildId,
    Debuglink(u32),
}

/// Candidate debug files with how they were found, in search order.
fn debug_candidates(
    spec: &ModuleSpec,
    binary: &ElfFile,
    debug_dirs: &[PathBuf],
) -> Vec<(PathBuf, Via)> {
    let mut host = Vec::new();
    if let Some(id) = binary.build_id.as_deref().filter(|id| id.len() >= 2) {
        let id = hex(id);
        for root in debug_dirs {
            host.push((
                root.join(".build-id")
                    .join(&id[..2])
                    .join(format!("{}.debug", &id[2..])),
                Via::BuildId,
            ));
        }
    }
    let binary_path = Path::new(clean_path(&spec.path));
    if let (Some((link, crc)), Some(dir)) = (&binary.debuglink, binary_path.parent()) {
        // A debuglink is a file name; one with a directory in it is not followed.
        if !link.is_empty() && !link.contains('/') {
            let mut paths = vec![dir.join(link), dir.join(".debug").join(link)];
            let rel = dir.strip_prefix("/").unwrap_or(dir);
            paths.extend(debug_dirs.iter().map(|root| root.join(rel).join(link)));
            host.extend(
                paths
                    .into_iter()
                    .filter(|p| p != binary_path)
                    .map(|p| (p, Via::Debuglink(*crc))),
            );
        }
    }
    let mut out = Vec::new();
    if let Some(pid) = spec.pid {
        let in_container: Vec<_> = host
            .iter()
            .map(|(p, via)| (under_root(pid, p), *via))
            .collect();
        out.extend(host);
        out.extend(in_container);
    } else {
        out.extend(host);
    }
    out
}

/// The separate debug file for `binary`, if one is installed and verifiably belongs to it.
pub fn find_debug_file(
    spec: &ModuleSpec,
    binary: &ElfFile,
    debug_dirs: &[PathBuf],
) -> Option<Opened> {
    for (path, via) in debug_candidates(spec, binary, debug_dirs) {
        if !path.is_file() {
            continue;
        }
        let Ok(file) = parse_file(&path) else {
            continue;
        };
        let belongs = match (&binary.build_id, &file.build_id, via) {
            (Some(want), Some(have), _) => build_ids_match(want, have),
            (_, _, Via::Debuglink(crc)) => {
                std::fs::read(&path).is_ok_and(|d| crc32fast::hash(&d) == crc)
            }
            (_, _, Via::BuildId) => false,
        };
        if belongs {
            return Some(Opened { path, file });
        }
    }
    None
}

/// The supplementary DWARF file named by `link` (path, build-id) in a file that lives in `dir`.
pub fn find_sup_file(
    spec: &ModuleSpec,
    link: &(String, Vec<u8>),
    dir: Option<&Path>,
    debug_dirs: &[PathBuf],
) -> Option<Opened> {
    let (path, id) = link;
    let mut host = Vec::new();
    let path = Path::new(path);
    if path.is_absolute() {
        host.push(path.to_path_buf());
    } else if let Some(dir) = dir {
        host.push(dir.join(path));
    }
    if id.len() >= 2 {
        let id = hex(id);
        for root in debug_dirs {
            host.push(
                root.join(".build-id")
                    .join(&id[..2])
                    .join(format!("{}.debug", &id[2..])),
            );
        }
    }
    let mut candidates = host.clone();
    if let Some(pid) = spec.pid {
        candidates.extend(
            host.iter()
                .filter(|p| p.is_absolute())
                .map(|p| under_root(pid, p)),
        );
    }
    candidates
        .into_iter()
        .filter(|p| p.is_file())
        .filter_map(|p| parse_file(&p).ok().map(|file| Opened { path: p, file }))
        .find(|o| id.is_empty() || o.file.build_id.as_ref() == Some(id))
}

/// The JIT map of `pid` and its length: `DIR/perf-PID.map`, else, for a process in a container, the map it
/// wrote into its own `/tmp` under its own pid (the last `NSpid` of `/proc/PID/status`).
pub fn perf_map_file(dir: &Path, pid: u32) -> Option<(PathBuf, u64)> {
    let here = dir.join(format!("perf-{pid}.map"));
    let found = |p: PathBuf| {
        std::fs::metadata(&p)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| (p, m.len()))
    };
    if let Some(hit) = found(here) {
        return Some(hit);
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let ns_pid = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?;
    let ns_pid: u32 = ns_pid.parse().ok()?;
    found(under_root(
        pid,
        &Path::new("/tmp").join(format!("perf-{ns_pid}.map")),
    ))
}

/// At most this much of a JIT map is read. The map is written by the profiled program, which can make it any
/// size (a 2 GB map once took 2 GB and 30 s to read); a V8 or JVM map of a big, long-running program is a few
/// MiB to tens of MiB.
pub const MAX_PERF_MAP_BYTES: u64 = 64 << 20;

/// The bytes of the JIT map at `path`, at most `MAX_PERF_MAP_BYTES` of them, and whether the file was longer (the
/// bytes then end after the last complete line). `None` when it cannot be opened or is not a regular file: it is
/// opened without blocking, so a FIFO put in its place between the look and the open cannot hang the profiler.
pub fn read_perf_map(path: &Path) -> Option<(Vec<u8>, bool)> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let mut bytes = Vec::with_capacity(meta.len().min(MAX_PERF_MAP_BYTES + 1) as usize);
    file.take(MAX_PERF_MAP_BYTES + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    let cut = bytes.len() as u64 > MAX_PERF_MAP_BYTES;
    if cut {
        // The last line may be cut in the middle of its size or name: keep only whole lines.
        let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        bytes.truncate(whole);
    }
    Some((bytes, cut))
}

/// The `[vdso]` image, copied out of the process's memory (or, failing that, out of ours: every process of a
/// kernel maps the same vdso).
pub fn read_vdso(spec: &ModuleSpec) -> Option<Opened> {
    let (path, bytes) = vdso_bytes(spec)?;
    let file = ElfFile::parse_copy(&bytes).ok()?;
    Some(Opened { path, file })
}

/// A module's contents as found: its file, open, or bytes (the vdso, read from memory).
#[derive(Debug)]
pub enum ModuleData {
    File(File),
    Bytes(Arc<[u8]>),
}

/// Files larger than this are left alone.
const MAX_MODULE_BYTES: u64 = 1 << 30;

/// The module's file, opened, for a reader that takes only what it needs of it (the unwinder reads its
/// tables); the vdso, which has no file, as bytes.
pub fn module_data(spec: &ModuleSpec) -> Option<ModuleData> {
    if spec.path == "[vdso]" {
        return vdso_bytes(spec).map(|(_, bytes)| ModuleData::Bytes(bytes));
    }
    if spec.path.is_empty() || spec.path.starts_with('[') || spec.path.starts_with("//") {
        return None;
    }
    let candidates = binary_candidates(spec);
    candidates.into_iter().find_map(|candidate| {
        let file = File::open(&candidate).ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() > MAX_MODULE_BYTES {
            return None;
        }
        if let Some(want) = &spec.build_id {
            let have = super::elf::build_id_of(&ReadCache::new(&file));
            if have.is_some_and(|have| !build_ids_match(want, &have)) {
                return None;
            }
        }
        Some(ModuleData::File(file))
    })
}

/// The GNU build-id of the module's file, read from its headers alone (a few small reads: no symbols, no
/// debug info), for a profile that names its modules before their symbols are loaded.
pub fn module_build_id(spec: &ModuleSpec) -> Option<Vec<u8>> {
    match module_data(spec)? {
        ModuleData::File(file) => super::elf::build_id_of(&ReadCache::new(&file)),
        ModuleData::Bytes(bytes) => super::elf::read_build_id(&bytes),
    }
}

/// The vdso image of the process while it lives, else our own (the same kernel's), with where it was read.
fn vdso_bytes(spec: &ModuleSpec) -> Option<(PathBuf, Arc<[u8]>)> {
    let read = |pid: &str, start: u64, end: u64| -> Option<(PathBuf, Arc<[u8]>)> {
        let len = usize::try_from(end.checked_sub(start)?)
            .ok()
            .filter(|&l| l > 0 && l <= 1 << 24)?;
        let path = PathBuf::from(format!("/proc/{pid}/mem"));
        let mem = File::open(&path).ok()?;
        let mut buf = vec![0u8; len];
        mem.read_exact_at(&mut buf, start).ok()?;
        Some((path, Arc::from(buf)))
    };
    if let Some(found) = spec
        .pid
        .and_then(|pid| read(&pid.to_string(), spec.map_start, spec.map_end))
    {
        return Some(found);
    }
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let line = maps.lines().find(|l| l.ends_with("[vdso]"))?;
    let (start, end) = line.split_whitespace().next()?.split_once('-')?;
    read(
        "self",
        u64::from_str_radix(start, 16).ok()?,
        u64::from_str_radix(end, 16).ok()?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &str, pid: Option<u32>) -> ModuleSpec {
        ModuleSpec {
            path: path.to_owned(),
            build_id: None,
            pid,
            map_start: 0x7f00_0000_0000,
            map_end: 0x7f00_0001_0000,
        }
    }

    #[test]
    fn build_ids_match_exactly_or_zero_padded() {
        assert!(build_ids_match(&[1, 2, 3], &[1, 2, 3]));
        assert!(build_ids_match(&[1, 2, 3, 0, 0], &[1, 2, 3]));
        assert!(!build_ids_match(&[1, 2, 3, 0, 1], &[1, 2, 3]));
        assert!(!build_ids_match(&[1, 2], &[1, 2, 3]));
        assert!(!build_ids_match(&[0, 0], &[]));
        assert!(!build_ids_match(&[1, 2, 4], &[1, 2, 3]));
    }

    #[test]
    fn binary_candidates_in_order() {
        assert_eq!(
            binary_candidates(&spec("/usr/lib/libfoo.so (deleted)", Some(42))),
            vec![
                PathBuf::from("/proc/42/map_files/7f0000000000-7f0000010000"),
                PathBuf::from("/proc/42/root/usr/lib/libfoo.so"),
                PathBuf::from("/usr/lib/libfoo.so"),
            ]
        );
        assert_eq!(
            binary_candidates(&spec("/bin/true", None)),
            vec![PathBuf::from("/bin/true")]
        );
    }

    #[test]
    fn debug_candidates_in_order() {
        let binary = ElfFile {
            bytes: Arc::new(FileBytes::Read(Box::default())),
            made_names: Vec::new(),
            segments: Vec::new(),
            symbols: Vec::new(),
            build_id: Some(vec![0x93, 0xac, 0x61]),
            debuglink: Some(("libc.so.6.debug".to_owned(), 7)),
            debugaltlink: None,
            dwarf: None,
            fdes: Vec::new(),
            objects: Vec::new(),
        };
        let got: Vec<_> = debug_candidates(
            &spec("/lib/libc.so.6", None),
            &binary,
            &[PathBuf::from("/usr/lib/debug")],
        )
        .into_iter()
        .map(|(p, _)| p)
        .collect();
        assert_eq!(
            got,
            vec![
                PathBuf::from("/usr/lib/debug/.build-id/93/ac61.debug"),
                PathBuf::from("/lib/libc.so.6.debug"),
                PathBuf::from("/lib/.debug/libc.so.6.debug"),
                PathBuf::from("/usr/lib/debug/lib/libc.so.6.debug"),
            ]
        );
    }
}
