//! Where `--locks` puts its probes: which files of the target, which functions in them, at which file
//! offsets. The result is plain data for `acquire` ([`LockProbes`]), which only opens what it is told.
//!
//! Only the paths a lock takes when it is contended are probed, so an uncontended lock costs nothing:
//! - glibc: the entry of `__lll_lock_wait` (called by `pthread_mutex_lock` only when it must wait; its first
//!   argument is the futex word, the mutex's address for the default kinds) and each of its `ret`s (the wait
//!   is over: the thread holds the lock), and the entry of `__lll_lock_wake` (called by `pthread_mutex_unlock`
//!   only when a waiter is marked: the releaser's stack). Both are local symbols, in the separate debug file
//!   (`libc6-dbg` on Debian) that the symbolizer finds by build-id.
//! - Rust's standard library: its futex mutex's `lock_contended` (entry and `ret`s; `&self` is the futex word)
//!   and `wake` (entry), named `<std::sys::sync::mutex::futex::Mutex>::lock_contended` in Rust 1.95 and
//!   `std::sys::unix::locks::futex_mutex::Mutex::lock_contended` in older ones: matched on the name's tail.
//! - `--locks=pthread`: `pthread_mutex_lock` (entry and `ret`s) and `pthread_mutex_unlock` (entry), exported
//!   by every glibc, hit at every call (see `locks` for which calls count as waits).
//!
//! No return probes: a uretprobe replaces the return address on the waiting thread's stack with the kernel's
//! trampoline, and every stack walked inside the wait (off-CPU samples above all) would stop there.
//!
//! Which files:
//! - a command: its program (found on `PATH`, as it will be launched) and, unless the program is static, the
//!   libc it will load: `libc.so.6` of a `LD_LIBRARY_PATH` directory, else the system's (the one stacktop
//!   itself runs on). A uprobe is placed on a file's inode, so the command's children that load the same libc
//!   are probed too; a program another libc serves (a container's) is not.
//! - `-p`, `-t`: the files the process maps now (`/proc/PID/maps`, opened through `/proc/PID/map_files`, so
//!   a container's or a deleted file is the very one mapped): its libc, its program and a `libstd-*.so`.
//!   Libraries it loads later are not probed.
//! - `-a`: the system's libc, in every process that maps it (Rust programs' own mutexes are not probed).
//!
//! A probe is opened for every process (uprobe events cannot be inherited, see `acquire`), so the kernel
//! places its breakpoint in every process that maps the file: another program that contends a glibc mutex
//! meanwhile pays the probe's trap too, and its samples are dropped.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::acquire::{parse_maps, LockProbes, ProbeRole, Target, Uprobe};
use crate::addr::Svma;
use crate::symbolize::exits::exits;
use crate::symbolize::{svma_to_offset, FunctionSymbol, ModuleSpec, ModuleStatus, Symbolizer};

/// What `--locks` probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// The contended paths of glibc's and Rust's mutexes (`--locks`).
    Contended,
    /// Every `pthread_mutex_lock` and `pthread_mutex_unlock` call (`--locks=pthread`), plus Rust's contended
    /// paths: for a libc whose debug symbols are not installed.
    Pthread,
}

impl std::str::FromStr for LockMode {
    type Err = String;

    fn from_str(s: &str) -> Result<LockMode, String> {
        match s {
            "" | "contended" => Ok(LockMode::Contended),
            "pthread" => Ok(LockMode::Pthread),
            other => Err(format!(
                "unknown lock probe mode `{other}`; use --locks or --locks=pthread"
            )),
        }
    }
}

/// Why no probes could be planned; each message ends with what to do.
#[derive(Debug, thiserror::Error)]
pub enum LockPlanError {
    #[error("--locks: glibc's __lll_lock_wait and __lll_lock_wake were not found in {libc}: they are local symbols of its separate debug file; install it (libc6-dbg on Debian and Ubuntu, glibc-debuginfo on Fedora), or use --locks=pthread (probes every pthread_mutex_lock call: costlier)")]
    NoGlibcSymbols { libc: String },
    #[error("--locks: neither glibc's nor Rust's std mutex code was found in {target}; --locks probes glibc's pthread mutexes and Rust's std::sync::Mutex")]
    NoLockCode { target: String },
    #[error("no such process: {pid}; check the pid (e.g. with `ps -p {pid}`)")]
    NoProcess { pid: u32 },
    #[error(
        "--locks: cannot read /proc/{pid}/maps ({err}); check the pid (e.g. with `ps -p {pid}`)"
    )]
    Maps { pid: u32, err: std::io::Error },
}

/// A file whose functions may be probed.
#[derive(Clone, Debug)]
struct Candidate {
    /// How the file is named in the header (the path as mapped).
    shown: String,
    /// How the kernel opens it for the probe.
    open: PathBuf,
    spec: ModuleSpec,
    /// Searched for glibc's functions (a libc, or a static program).
    glibc: bool,
    /// Searched for Rust std's (a program, a `libstd`).
    rust: bool,
}

/// The probes of `mode` for `target`'s files.
pub fn plan(target: &Target, mode: LockMode) -> Result<LockProbes, LockPlanError> {
    let (candidates, what) = match target {
        Target::Command(argv) => (
            command_files(argv),
            "the command's program and libc".to_owned(),
        ),
        Target::Pids(ids) | Target::Tids(ids) => {
            let mut pids = Vec::new();
            for &id in ids {
                // A thread id names its process here, as in perf.
                let pid = crate::acquire::process_of(id).unwrap_or(id);
                if !pids.contains(&pid) {
                    pids.push(pid);
                }
            }
            let mut files = Vec::new();
            for pid in &pids {
                files.extend(process_files(*pid)?);
            }
            let list: Vec<String> = pids.iter().map(u32::to_string).collect();
            (files, format!("the files of process {}", list.join(",")))
        }
        Target::System => (
            system_libc()
                .map(|libc| vec![host_file(&libc, true, false)])
                .unwrap_or_default(),
            "the system's libc".to_owned(),
        ),
    };
    let mut symbolizer = Symbolizer::new();
    let mut probes = LockProbes {
        every_call: mode == LockMode::Pthread,
        ..LockProbes::default()
    };
    let mut libc_without_symbols = None;
    for file in &candidates {
        if file.glibc {
            let (wait, wake, kind) = match mode {
                LockMode::Contended => ("__lll_lock_wait", "__lll_lock_wake", "glibc"),
                LockMode::Pthread => (
                    "pthread_mutex_lock",
                    "pthread_mutex_unlock",
                    "glibc, every call",
                ),
            };
            let found = named(&mut symbolizer, &file.spec, wait).zip(named(
                &mut symbolizer,
                &file.spec,
                wake,
            ));
            match found {
                Some((wait, wake)) => {
                    add_pair(&mut symbolizer, file, kind, &wait, &wake, &mut probes)
                }
                None => {
                    let is_glibc =
                        named(&mut symbolizer, &file.spec, "pthread_mutex_lock").is_some();
                    if is_glibc && libc_without_symbols.is_none() {
                        libc_without_symbols = Some(file.shown.clone());
                    }
                }
            }
        }
        if file.rust {
            let wait = symbolizer
                .functions_where(&file.spec, "lock_contended", &|n| {
                    is_futex_mutex(n, "lock_contended")
                })
                .into_iter()
                .next();
            let wake = symbolizer
                .functions_where(&file.spec, "wake", &|n| is_futex_mutex(n, "wake"))
                .into_iter()
                .next();
            if let (Some(wait), Some(wake)) = (wait, wake) {
                add_pair(&mut symbolizer, file, "Rust std", &wait, &wake, &mut probes);
            }
        }
    }
    if probes.probes.is_empty() {
        return Err(match libc_without_symbols {
            Some(libc) => LockPlanError::NoGlibcSymbols { libc },
            None => LockPlanError::NoLockCode { target: what },
        });
    }
    if let Some(libc) = libc_without_symbols {
        probes.described.push(format!(
            "glibc: not probed: __lll_lock_wait and __lll_lock_wake not found in {libc} (install its debug symbols, libc6-dbg on Debian, or use --locks=pthread)"
        ));
    }
    Ok(probes)
}

/// Whether a demangled name is Rust std's futex mutex's `function`, whichever version spells its path:
/// `<std::sys::sync::mutex::futex::Mutex>::lock_contended` (1.84 to at least 1.95),
/// `std::sys::pal::unix::locks::futex_mutex::Mutex::lock_contended`, `std::sys::unix::locks::futex_mutex::...`.
fn is_futex_mutex(name: &str, function: &str) -> bool {
    let plain: String = name.chars().filter(|&c| c != '<' && c != '>').collect();
    plain.starts_with("std::")
        && plain.contains("futex")
        && plain
            .strip_suffix(function)
            .is_some_and(|head| head.ends_with("::Mutex::"))
}

/// The function `name` of a module (its own name or another alias of its address).
fn named(symbolizer: &mut Symbolizer, spec: &ModuleSpec, name: &str) -> Option<FunctionSymbol> {
    symbolizer
        .functions_named(spec, name)
        .into_iter()
        .find(|f| f.size > 0)
        .or_else(|| symbolizer.function_aliased(spec, name))
}

/// The probes of one wait function (its entry and its `ret`s) and one wake function (its entry) of `file`.
/// A wait function without a `ret` found is left out, with its wake (its waits would never end).
fn add_pair(
    symbolizer: &mut Symbolizer,
    file: &Candidate,
    kind: &str,
    wait: &FunctionSymbol,
    wake: &FunctionSymbol,
    out: &mut LockProbes,
) {
    let segments = symbolizer.segments(&file.spec);
    let (Some(wait_at), Some(wake_at)) = (
        svma_to_offset(&segments, wait.start),
        svma_to_offset(&segments, wake.start),
    ) else {
        return;
    };
    let opened = match symbolizer.module_status(&file.spec) {
        ModuleStatus::Loaded { opened, .. } => opened,
        _ => return,
    };
    let Some(code) = read_at(&opened, wait_at.0, wait.size) else {
        return;
    };
    let found = exits(&code, wait.start.0);
    let rets: Vec<u64> = found
        .rets
        .iter()
        .filter_map(|&ret| Some(svma_to_offset(&segments, Svma(ret))?.0))
        .collect();
    if rets.is_empty() {
        out.described.push(format!(
            "{kind}: not probed: no ret found in {} in {}",
            wait.name, file.shown
        ));
        return;
    }
    let probe = |offset, role| Uprobe {
        path: file.open.clone(),
        offset,
        role,
    };
    out.probes.push(probe(wait_at.0, ProbeRole::Wait));
    out.probes
        .extend(rets.iter().map(|&r| probe(r, ProbeRole::Acquired)));
    out.probes.push(probe(wake_at.0, ProbeRole::Wake));
    let tail = if found.jumps_out {
        " (it may also leave by a jump, whose waits' ends are not seen)"
    } else {
        ""
    };
    out.described.push(format!(
        "{kind}: {} (entry, {} ret{}){tail}, {} (entry) in {}",
        wait.name,
        rets.len(),
        if rets.len() == 1 { "" } else { "s" },
        wake.name,
        file.shown
    ));
}

/// `len` bytes of the file at `path` from `offset`.
fn read_at(path: &Path, offset: u64, len: u64) -> Option<Vec<u8>> {
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l > 0 && l <= 1 << 20)?;
    let file = File::open(path).ok()?;
    let mut buf = vec![0; len];
    file.read_exact_at(&mut buf, offset).ok()?;
    Some(buf)
}

/// A file of the host, by its path.
fn host_file(path: &Path, glibc: bool, rust: bool) -> Candidate {
    let shown = path.display().to_string();
    Candidate {
        spec: ModuleSpec {
            path: shown.clone(),
            ..ModuleSpec::default()
        },
        shown,
        open: path.to_path_buf(),
        glibc,
        rust,
    }
}

/// A command's program, and the libc it will load unless it is static.
fn command_files(argv: &[OsString]) -> Vec<Candidate> {
    let program = argv
        .first()
        .and_then(|p| crate::acquire::resolve_program(p));
    let mut files = Vec::new();
    let mut dynamic = true;
    if let Some(program) = program.and_then(|p| std::fs::canonicalize(p).ok()) {
        match elf_interp(&program) {
            // Not ELF (a script): its interpreter loads the libc.
            None => {}
            Some(has_interp) => {
                dynamic = has_interp;
                files.push(host_file(&program, !has_interp, true));
            }
        }
    }
    if dynamic {
        if let Some(libc) = command_libc() {
            files.push(host_file(&libc, true, false));
        }
    }
    files
}

/// Whether the ELF file at `path` has a program interpreter (is dynamically linked); `None` when it is not
/// an ELF file.
fn elf_interp(path: &Path) -> Option<bool> {
    use object::read::elf::{FileHeader, ProgramHeader};
    let file = File::open(path).ok()?;
    let cache = object::ReadCache::new(file);
    let header = object::elf::FileHeader64::<object::Endianness>::parse(&cache).ok()?;
    let endian = header.endian().ok()?;
    let headers = header.program_headers(endian, &cache).ok()?;
    Some(
        headers
            .iter()
            .any(|h| h.p_type(endian) == object::elf::PT_INTERP),
    )
}

/// The libc a launched command will load: `libc.so.6` in a `LD_LIBRARY_PATH` directory, else the system's.
fn command_libc() -> Option<PathBuf> {
    if let Some(dirs) = std::env::var_os("LD_LIBRARY_PATH") {
        for dir in std::env::split_paths(&dirs) {
            let libc = dir.join("libc.so.6");
            if libc.is_file() {
                return std::fs::canonicalize(libc).ok();
            }
        }
    }
    system_libc()
}

/// The system's libc: the one stacktop runs on, else `libc.so.6` in the usual directories.
fn system_libc() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let own = parse_maps(&maps)
        .into_iter()
        .find(|m| m.executable && is_libc(&m.path))
        .map(|m| PathBuf::from(m.path));
    own.or_else(|| {
        [
            "/lib/x86_64-linux-gnu",
            "/usr/lib/x86_64-linux-gnu",
            "/lib64",
            "/usr/lib64",
            "/lib",
            "/usr/lib",
        ]
        .iter()
        .map(|d| Path::new(d).join("libc.so.6"))
        .find(|p| p.is_file())
    })
}

/// `libc.so.6`, `libc-2.31.so`: glibc's shared library.
fn is_libc(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.starts_with("libc.so") || (name.starts_with("libc-") && name.ends_with(".so"))
}

/// The files process `pid` maps that may hold lock code: its libc, its program (static glibc, Rust std) and
/// a Rust `libstd-*.so`, each opened through `/proc/PID/map_files` (the very file mapped).
fn process_files(pid: u32) -> Result<Vec<Candidate>, LockPlanError> {
    let maps =
        std::fs::read_to_string(format!("/proc/{pid}/maps")).map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound => LockPlanError::NoProcess { pid },
            _ => LockPlanError::Maps { pid, err },
        })?;
    let program = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let entries = parse_maps(&maps);
    let has_libc = entries.iter().any(|m| is_libc(&m.path));
    let mut files: Vec<Candidate> = Vec::new();
    let mut seen = Vec::new();
    for m in entries
        .iter()
        .filter(|m| m.executable && m.path.starts_with('/'))
    {
        if seen.contains(&(m.dev, m.inode)) {
            continue;
        }
        seen.push((m.dev, m.inode));
        let path = m.path.strip_suffix(" (deleted)").unwrap_or(&m.path);
        let name = path.rsplit('/').next().unwrap_or(path);
        let is_program = program.as_deref().is_some_and(|p| {
            let p = p.to_string_lossy();
            p.strip_suffix(" (deleted)").unwrap_or(&p) == path
        });
        let glibc = is_libc(path) || (is_program && !has_libc);
        let rust = is_program || (name.starts_with("libstd-") && name.ends_with(".so"));
        if !glibc && !rust {
            continue;
        }
        let open = PathBuf::from(format!("/proc/{pid}/map_files/{:x}-{:x}", m.start, m.end));
        files.push(Candidate {
            shown: path.to_owned(),
            open,
            spec: ModuleSpec {
                path: m.path.clone(),
                build_id: None,
                pid: Some(pid),
                map_start: m.start,
                map_end: m.end,
            },
            glibc,
            rust,
        });
    }
    Ok(files)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rust_futex_mutex_names_of_every_version() {
        for name in [
            "<std::sys::sync::mutex::futex::Mutex>::lock_contended",
            "std::sys::sync::mutex::futex::Mutex::lock_contended",
            "std::sys::unix::locks::futex_mutex::Mutex::lock_contended",
            "std::sys::pal::unix::locks::futex_mutex::Mutex::lock_contended",
        ] {
            assert!(is_futex_mutex(name, "lock_contended"), "{name}");
            assert!(!is_futex_mutex(name, "wake"), "{name}");
        }
        assert!(is_futex_mutex(
            "<std::sys::sync::mutex::futex::Mutex>::wake",
            "wake"
        ));
        for other in [
            "<std::sys::sync::rwlock::futex::RwLock>::wake_writer_or_readers",
            "<std::sys::sync::condvar::futex::Condvar>::wake",
            "mycrate::futex::Mutex::lock_contended",
            "<std::sys::sync::mutex::futex::Mutex>::lock",
        ] {
            assert!(
                !is_futex_mutex(other, "lock_contended") && !is_futex_mutex(other, "wake"),
                "{other}"
            );
        }
    }

    #[test]
    fn lock_modes_parse() {
        assert_eq!("".parse::<LockMode>(), Ok(LockMode::Contended));
        assert_eq!("pthread".parse::<LockMode>(), Ok(LockMode::Pthread));
        assert!("spin"
            .parse::<LockMode>()
            .unwrap_err()
            .contains("--locks=pthread"));
    }

    /// The symbol `name`'s value in the ELF file at `path`, read here with `object` alone.
    fn symbol_value(path: &Path, name: &str) -> Option<u64> {
        use object::{Object, ObjectSymbol};
        let data = std::fs::read(path).ok()?;
        let file = object::File::parse(&*data).ok()?;
        file.symbols()
            .find(|s| s.name() == Ok(name))
            .map(|s| s.address())
    }

    /// The file offset of `svma` in the ELF file at `path`, through its `PT_LOAD` headers read here.
    fn file_offset(path: &Path, svma: u64) -> Option<u64> {
        use object::read::elf::{FileHeader, ProgramHeader};
        let data = std::fs::read(path).ok()?;
        let header = object::elf::FileHeader64::<object::Endianness>::parse(&*data).ok()?;
        let endian = header.endian().ok()?;
        header
            .program_headers(endian, &*data)
            .ok()?
            .iter()
            .filter(|h| h.p_type(endian) == object::elf::PT_LOAD)
            .find(|h| {
                let start = h.p_vaddr(endian);
                svma >= start && svma - start < h.p_filesz(endian)
            })
            .map(|h| svma - h.p_vaddr(endian) + h.p_offset(endian))
    }

    /// On the system's libc: the wait probe at `__lll_lock_wait`'s entry and the wake probe at
    /// `__lll_lock_wake`'s, as file offsets (the symbols' values from the debug file, turned into offsets
    /// through the libc's program headers, both read here independently), and an end probe on each `ret`
    /// byte inside the wait function. Without libc's debug file, the one-line error that says to install it.
    #[test]
    fn glibc_probes_sit_on_the_system_libc_s_functions_and_rets() {
        let Some(libc) = system_libc() else {
            panic!("no libc.so.6 found on this system");
        };
        let libc = std::fs::canonicalize(libc).unwrap();
        let target = Target::Command(vec!["true".into()]);
        let probes = match plan(&target, LockMode::Contended) {
            Ok(p) => p,
            Err(LockPlanError::NoGlibcSymbols { libc: named }) => {
                assert!(named.contains("libc"));
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let debug = {
            let data = std::fs::read(&libc).unwrap();
            let file = object::File::parse(&*data).unwrap();
            use object::Object;
            let id: String = file
                .build_id()
                .unwrap()
                .unwrap()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            PathBuf::from(format!(
                "/usr/lib/debug/.build-id/{}/{}.debug",
                &id[..2],
                &id[2..]
            ))
        };
        let mine: Vec<&Uprobe> = probes.probes.iter().filter(|p| p.path == libc).collect();
        let wait = symbol_value(&debug, "__lll_lock_wait").unwrap();
        let wake = symbol_value(&debug, "__lll_lock_wake").unwrap();
        let wait_at = file_offset(&libc, wait).unwrap();
        let wake_at = file_offset(&libc, wake).unwrap();
        let roles = |role| -> Vec<u64> {
            mine.iter()
                .filter(|p| p.role == role)
                .map(|p| p.offset)
                .collect()
        };
        assert_eq!(roles(ProbeRole::Wait), vec![wait_at]);
        assert_eq!(roles(ProbeRole::Wake), vec![wake_at]);
        let bytes = std::fs::read(&libc).unwrap();
        let ends = roles(ProbeRole::Acquired);
        assert!(!ends.is_empty());
        for end in ends {
            assert!(end > wait_at && end < wait_at + 0x200, "{end:#x}");
            assert_eq!(bytes[end as usize], 0xc3, "no ret at {end:#x}");
        }
        assert!(
            probes.described[0].contains("__lll_lock_wait (entry, ")
                && probes.described[0].contains("libc.so.6"),
            "{:?}",
            probes.described
        );
    }

    #[test]
    fn libc_names() {
        assert!(is_libc("/usr/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(is_libc("/lib/libc-2.31.so"));
        assert!(!is_libc("/usr/lib/libcrypto.so.3"));
        assert!(!is_libc("/usr/lib/libc++.so.1"));
    }
}
