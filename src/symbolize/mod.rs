//! (module, address) -> frames with inline functions and file:line: ELF, DWARF, kallsyms, JIT maps.
//!
//! Owns: turning a file offset in a mapped module, a kernel address or a JIT address into a list of frames,
//! innermost inline frame first, each a demangled function name with source file and line when known. Leaves
//! to others: which module an address belongs to and its file offset (`process`), unwinding (`unwind`),
//! interning the frames (`profile`), escaping names for a terminal (`render`, `tui`).
//!
//! Shape (like the addr2line crate): `elf.rs`, `symbols.rs`, `kallsyms.rs`, `perfmap.rs` and `demangle.rs` are
//! pure views over bytes or text; `loader.rs` is the only part that opens files. [`Symbolizer`] ties them
//! together and caches: each module is loaded once (keyed by build-id, else by path), each (module, offset) is
//! resolved once, DWARF is parsed lazily by `addr2line`.
//!
//! Naming:
//! - The outermost (non-inline) frame of an address is named by the ELF symbol users know among the aliases at
//!   that address: global or weak before local, fewest leading underscores, version suffix dropped
//!   (`pthread_mutex_lock`, not `___pthread_mutex_lock` or `pthread_mutex_lock@@GLIBC_2.2.5`). DWARF adds the
//!   inline frames above it and file:line.
//! - Rust (legacy and v0, without hash) and C++ names are demangled; C names are left alone.
//! - x86-64 PLT stubs, which no symbol table lists, are named as perf does: `memcpy@plt`.
//! - Kernel module symbols carry their module: `nft_do_chain [nf_tables]`.
//! - JIT code is named from `/tmp/perf-PID.map`; an address it does not list is left to the caller
//!   ([`Symbolizer::symbolize_jit`] returns `None`), which can name it through `symbolize_user` on the mapping.
//!
//! Debug info is looked for in the binary, then in a separate debug file (build-id path under `/usr/lib/debug`,
//! then `.gnu_debuglink`), completed by a `dwz` supplementary file (`.gnu_debugaltlink`); see `loader.rs`.
//! Compressed debug sections (zlib, zstd) are read.
//!
//! # Unknown frames
//! An address nobody can name still gets a frame of its own, so the profile (which interns functions by name)
//! keeps distinct unknown addresses apart, as `perf report` does. Its `function` is
//! ```text
//!   [unknown] MODULE+0xOFFSET[ (REASON)]
//! ```
//! with MODULE the module's file name (`libfoo.so`, `[vdso]`, `[anon]` for an anonymous mapping), OFFSET the
//! file offset in hex (what `process` computed from the mapping), and REASON one of
//! - `build-id mismatch`: the file on disk is not the one that was profiled, so it was not used;
//! - `unreadable`: no candidate file could be opened or parsed (see [`Symbolizer::module_status`]);
//! - `loading`: the module is being read on a background thread (`top`, see [`background`]); a [`Resolution`]
//!   names the address once it is read ([`Frame::is_loading`] tells these placeholders apart).
//!
//! No reason means the module was read but has no symbol for the address (a stripped binary). Kernel
//! addresses without a symbol (or with `kernel.kptr_restrict` hiding them) are `[unknown] [kernel.kallsyms]+0xADDR`.
//! [`Frame::is_unknown`] tells these apart from named frames. Such frames have no file and line 0, except a
//! frame DWARF places at a file:line without naming its function: it keeps the file:line under the unknown name.

pub mod background;
mod bytes;
mod demangle;
mod elf;
mod kallsyms;
mod loader;
mod memory;
mod perfmap;
mod symbols;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use bytes::{module_data, ModuleData};
pub use demangle::demangle;
pub use elf::{has_debug_info, offset_to_svma, read_build_id, Segment};
pub use kallsyms::Kallsyms;
pub use loader::perf_build_id_cache;
#[doc(hidden)]
pub use memory::MemoryModule;
pub use perfmap::PerfMap;

use crate::addr::{Avma, FileOffset, Svma};
use elf::{DwarfSource, ElfModule};
use loader::OpenFailure;

/// The prefix of every unknown frame's function name.
pub const UNKNOWN: &str = "[unknown]";

/// The module name used for kernel addresses.
pub const KERNEL_MODULE: &str = "[kernel.kallsyms]";

/// What the caller knows about a mapped module.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ModuleSpec {
    /// The path as mapped (may end in ` (deleted)`), or a pseudo path such as `[vdso]`; empty when anonymous.
    pub path: String,
    /// The GNU build-id recorded for the mapping, if any; a file with another build-id is not used (a file
    /// without one cannot be checked and is used). Trailing zero padding of a fixed-size field is ignored.
    pub build_id: Option<Vec<u8>>,
    /// The process, while it lives: the file is then opened through `/proc/PID/...` first.
    pub pid: Option<u32>,
    /// The mapping's address range (for `/proc/PID/map_files/START-END`).
    pub map_start: u64,
    pub map_end: u64,
}

/// One symbolized frame.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    /// Demangled function name, or an unknown-frame name (see the module docs).
    pub function: String,
    /// Source file from DWARF, when known.
    pub file: Option<String>,
    /// Source line, 0 when unknown.
    pub line: u32,
}

impl Frame {
    /// True for the placeholder frames of addresses no symbol or debug info names.
    pub fn is_unknown(&self) -> bool {
        self.function.starts_with(UNKNOWN)
    }

    /// True for the placeholder of an address whose module is still loading (see the module docs).
    pub fn is_loading(&self) -> bool {
        is_loading_name(&self.function)
    }
}

/// The reason that ends a loading placeholder's name.
const LOADING: &str = " (loading)";

/// True for a function name that is a loading placeholder (see the module docs).
pub fn is_loading_name(name: &str) -> bool {
    name.starts_with(UNKNOWN) && name.ends_with(LOADING)
}

/// The placeholder frame of an address whose module is still loading: `[unknown] MODULE+0xOFFSET (loading)`.
pub fn loading_frames(module: &ModuleSpec, offset: FileOffset) -> Arc<[Frame]> {
    vec![Frame {
        function: format!(
            "{UNKNOWN} {}+{:#x}{LOADING}",
            module_name(&module.path),
            offset.0
        ),
        file: None,
        line: 0,
    }]
    .into()
}

/// The frames of an address that was first named by a loading placeholder: `module` is the mapped path and
/// `address` the location's address (the lookup address in the process), as the profile holds them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    pub module: String,
    pub address: u64,
    pub frames: Arc<[Frame]>,
}

/// Loads modules the way [`Symbolizer`] does, on any thread: what [`Symbolizer::loader`] hands out.
#[derive(Clone, Debug)]
pub struct ModuleLoader {
    debug_dirs: Vec<PathBuf>,
}

impl ModuleLoader {
    /// Reads `spec`'s file, its debug file and its symbols (which may take seconds for a large library).
    pub fn load(&self, spec: &ModuleSpec) -> LoadedModule {
        LoadedModule {
            key: ModuleKey::of(spec),
            module: load_module(spec, &self.debug_dirs),
        }
    }
}

/// A module read by a [`ModuleLoader`], to be installed in a [`Symbolizer`].
pub struct LoadedModule {
    key: ModuleKey,
    module: Module,
}

impl LoadedModule {
    pub fn key(&self) -> &ModuleKey {
        &self.key
    }

    pub fn status(&self) -> &ModuleStatus {
        &self.module.status
    }
}

/// A function symbol of a loaded module, for annotating its code: the name frames use and its SVMA range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionSymbol {
    pub name: String,
    pub start: Svma,
    pub size: u64,
}

/// Where a loaded module's debug info comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DebugInfo {
    /// Symbols only (from `.symtab`/`.dynsym`): function names, no inline frames, no file:line.
    None,
    /// DWARF in the binary itself.
    Embedded,
    /// DWARF in a separate debug file.
    Separate(PathBuf),
}

/// What became of a module, for reports ("3 modules had no debug info", "libfoo.so: build-id mismatch").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModuleStatus {
    /// No address of this module has been symbolized yet.
    NotLoaded,
    Loaded {
        /// The file actually read (may be a `/proc/PID/...` path).
        opened: PathBuf,
        build_id: Option<Vec<u8>>,
        /// Number of distinct function addresses in the symbol tables.
        symbols: usize,
        debug_info: DebugInfo,
    },
    /// The file found has a different build-id than the one recorded; it was not used.
    BuildIdMismatch {
        opened: PathBuf,
        expected: Vec<u8>,
        found: Vec<u8>,
    },
    /// No candidate file could be read; `reason` lists why, per candidate.
    Unreadable { reason: String },
    /// A mapping with no file behind it (`[heap]`, `[stack]`, anonymous memory).
    NotAFile,
}

/// What the symbolizer keys a loaded module by: its build-id when the mapping stated one, else its path
/// (without a ` (deleted)` mark).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ModuleKey {
    BuildId(Vec<u8>),
    Path(String),
}

impl ModuleKey {
    pub fn new(path: &str, build_id: Option<&[u8]>) -> ModuleKey {
        match build_id {
            Some(id) if !id.is_empty() => ModuleKey::BuildId(id.to_vec()),
            _ => ModuleKey::Path(loader::clean_path(path).to_owned()),
        }
    }

    pub fn of(spec: &ModuleSpec) -> ModuleKey {
        ModuleKey::new(&spec.path, spec.build_id.as_deref())
    }
}

struct Module {
    /// Short name used in unknown frames.
    name: String,
    elf: Option<ElfModule>,
    status: ModuleStatus,
    /// Frames by file offset, each resolved once; evicted with the module.
    frames: HashMap<u64, Arc<[Frame]>>,
}

struct JitMap {
    map: PerfMap,
    /// Length of the file when read (`None`: no file); a JIT appends as it compiles, so a miss rereads a grown file.
    len: Option<u64>,
    /// Frames by address, each resolved once; forgotten with the process.
    frames: HashMap<u64, Arc<[Frame]>>,
    /// When the file's length was last looked at (each look reads `/proc/PID/status` too).
    checked: Instant,
    /// The file was longer than `loader::MAX_PERF_MAP_BYTES`; only its first lines were read.
    cut: bool,
}

/// Resolves addresses to frames, caching modules and results. Not thread-safe by itself (`&mut self`), but
/// `Send`: one symbolizer can live on a worker thread.
pub struct Symbolizer {
    debug_dirs: Vec<PathBuf>,
    kallsyms_path: PathBuf,
    perf_map_dir: PathBuf,
    /// A JIT map is looked at again for a missing address at most this often (see `with_jit_recheck`).
    jit_recheck: Duration,
    modules: HashMap<ModuleKey, Module>,
    kallsyms: Option<Kallsyms>,
    kernel_frames: HashMap<u64, Arc<[Frame]>>,
    /// JIT maps by pid.
    jit_maps: HashMap<u32, JitMap>,
    /// What the profile's readers should know (a JIT map read only in part), each said once; see `take_notes`.
    notes: Vec<String>,
    /// Processes whose JIT map was found too long, so it is said once per process, not at every reread.
    noted_cut: HashSet<u32>,
}

impl Default for Symbolizer {
    fn default() -> Self {
        Symbolizer::new()
    }
}

/// The short module name shown in unknown frames: the file name, or the pseudo path as is.
pub fn module_name(path: &str) -> String {
    let path = loader::clean_path(path);
    if path.is_empty() {
        "[anon]".to_owned()
    } else if path.starts_with('[') {
        path.to_owned()
    } else {
        path.rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .unwrap_or(path)
            .to_owned()
    }
}

impl Symbolizer {
    /// Modules loaded (each keeps its file's symbols, debug info and resolved frames until it is evicted).
    pub fn module_count(&self) -> usize {
        self.modules.len()
    }

    /// Evicts the loaded modules for which `keep` is false, with every frame resolved in them, and returns how
    /// many went. A later lookup in an evicted module loads it again. Kernel symbols are not modules: they stay.
    pub fn retain_modules(&mut self, mut keep: impl FnMut(&ModuleKey) -> bool) -> usize {
        let before = self.modules.len();
        self.modules.retain(|key, _| keep(key));
        before - self.modules.len()
    }

    /// A loader that reads modules as this symbolizer would (same debug directories), on another thread.
    pub fn loader(&self) -> ModuleLoader {
        ModuleLoader {
            debug_dirs: self.debug_dirs.clone(),
        }
    }

    /// Adds a module read by a [`ModuleLoader`]; returns false (and drops it) when the symbolizer already has
    /// that module.
    pub fn install(&mut self, loaded: LoadedModule) -> bool {
        match self.modules.entry(loaded.key) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(loaded.module);
                true
            }
        }
    }

    /// Whether `module` is loaded (or was found unreadable): `symbolize_user` then reads no file.
    pub fn is_loaded(&self, module: &ModuleSpec) -> bool {
        self.modules.contains_key(&ModuleKey::of(module))
    }

    /// Like `symbolize_user`, but `None` instead of loading a module that is not loaded yet.
    pub fn symbolize_loaded(
        &mut self,
        module: &ModuleSpec,
        offset: FileOffset,
    ) -> Option<Arc<[Frame]>> {
        let m = self.modules.get_mut(&ModuleKey::of(module))?;
        Some(m.frames_at(offset))
    }

    /// Forgets the JIT map of `pid` and the frames read from it (after the process exited; a reused pid reads
    /// its own map).
    pub fn forget_process(&mut self, pid: u32) {
        self.jit_maps.remove(&pid);
    }

    /// Processes whose JIT map is held.
    pub fn jit_process_count(&self) -> usize {
        self.jit_maps.len()
    }

    pub fn new() -> Symbolizer {
        Symbolizer {
            debug_dirs: vec![PathBuf::from("/usr/lib/debug")],
            kallsyms_path: PathBuf::from("/proc/kallsyms"),
            perf_map_dir: PathBuf::from("/tmp"),
            jit_recheck: Duration::ZERO,
            modules: HashMap::new(),
            kallsyms: None,
            kernel_frames: HashMap::new(),
            jit_maps: HashMap::new(),
            notes: Vec::new(),
            noted_cut: HashSet::new(),
        }
    }

    /// The notes gathered since the last call (see the `notes` field).
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// Roots searched for separate debug files, in order (default `/usr/lib/debug`).
    pub fn with_debug_dirs(mut self, dirs: Vec<PathBuf>) -> Symbolizer {
        self.debug_dirs = dirs;
        self
    }

    /// Use these kernel symbols instead of reading `/proc/kallsyms` (e.g. from a recording's metadata).
    pub fn with_kallsyms(mut self, kallsyms: Kallsyms) -> Symbolizer {
        self.kallsyms = Some(kallsyms);
        self
    }

    /// Looks for a grown JIT map on a missing address at most once per `every` (default: on every miss).
    /// `top` resolves every address again each refresh; garbage return addresses outside any mapping
    /// would otherwise cost a `stat` and a read of `/proc/PID/status` each, each time.
    pub fn with_jit_recheck(mut self, every: Duration) -> Symbolizer {
        self.jit_recheck = every;
        self
    }

    /// Directory holding `perf-PID.map` files (default `/tmp`).
    pub fn with_perf_map_dir(mut self, dir: PathBuf) -> Symbolizer {
        self.perf_map_dir = dir;
        self
    }

    /// Frames for a user-space address, innermost inline frame first; `offset` is the file offset of the lookup
    /// address (already `ra - 1` for return addresses). Never empty: an unknown address gets an unknown frame.
    pub fn symbolize_user(&mut self, module: &ModuleSpec, offset: FileOffset) -> Arc<[Frame]> {
        self.load(module).frames_at(offset)
    }

    /// The frame for a kernel address, from `/proc/kallsyms` (read once, on first use).
    pub fn symbolize_kernel(&mut self, addr: Avma) -> Arc<[Frame]> {
        if let Some(frames) = self.kernel_frames.get(&addr.0) {
            return frames.clone();
        }
        let path = &self.kallsyms_path;
        let kallsyms = self.kallsyms.get_or_insert_with(|| {
            Kallsyms::parse(&std::fs::read_to_string(path).unwrap_or_default())
        });
        let function = match kallsyms.lookup(addr) {
            Some(name) => name.to_owned(),
            None => format!("{UNKNOWN} {KERNEL_MODULE}+{:#x}", addr.0),
        };
        let frames: Arc<[Frame]> = vec![Frame {
            function,
            file: None,
            line: 0,
        }]
        .into();
        self.kernel_frames.insert(addr.0, frames.clone());
        frames
    }

    /// The frame for an address in JIT-compiled code of `pid`, from `/tmp/perf-PID.map`; `None` when there is no
    /// such file or it does not list the address (the caller then names the frame as unknown in its mapping).
    pub fn symbolize_jit(&mut self, pid: u32, addr: Avma) -> Option<Arc<[Frame]>> {
        if let Some(frames) = self.jit_maps.get(&pid).and_then(|j| j.frames.get(&addr.0)) {
            return Some(frames.clone());
        }
        let dir = &self.perf_map_dir;
        let read = || {
            let found = loader::perf_map_file(dir, pid);
            let len = found.as_ref().map(|(_, len)| *len);
            let (bytes, cut) = found
                .and_then(|(path, _)| loader::read_perf_map(&path))
                .unwrap_or_default();
            JitMap {
                map: PerfMap::parse(&bytes),
                len,
                frames: HashMap::new(),
                checked: Instant::now(),
                cut,
            }
        };
        let recheck = self.jit_recheck;
        let jit = self.jit_maps.entry(pid).or_insert_with(read);
        if jit.map.lookup(addr).is_none() && jit.checked.elapsed() >= recheck {
            if loader::perf_map_file(dir, pid).map(|(_, len)| len) != jit.len {
                *jit = read();
            } else {
                jit.checked = Instant::now();
            }
        }
        if jit.cut && self.noted_cut.insert(pid) {
            self.notes.push(format!(
                "the JIT map perf-{pid}.map is larger than {} MiB: only its first {} MiB were read, so JIT code \
                 listed after that is [unknown]",
                loader::MAX_PERF_MAP_BYTES >> 20,
                loader::MAX_PERF_MAP_BYTES >> 20
            ));
        }
        let function = demangle(jit.map.lookup(addr)?);
        let frames: Arc<[Frame]> = vec![Frame {
            function,
            file: None,
            line: 0,
        }]
        .into();
        jit.frames.insert(addr.0, frames.clone());
        Some(frames)
    }

    /// What became of `module` so far, without loading it.
    pub fn module_status(&self, module: &ModuleSpec) -> ModuleStatus {
        match self.modules.get(&ModuleKey::of(module)) {
            Some(m) => m.status.clone(),
            None => ModuleStatus::NotLoaded,
        }
    }

    /// Loads `module` now (if it is not yet) and says what became of it.
    pub fn load_module(&mut self, module: &ModuleSpec) -> ModuleStatus {
        self.load(module).status.clone()
    }

    /// The `PT_LOAD` segments of `module` (loading it); empty when it could not be read.
    pub fn segments(&mut self, module: &ModuleSpec) -> Vec<Segment> {
        self.load(module)
            .elf
            .as_ref()
            .map(|e| e.segments().to_vec())
            .unwrap_or_default()
    }

    /// The function symbol containing `svma` in `module` (for annotate: the range of code to disassemble).
    pub fn function_at(&mut self, module: &ModuleSpec, svma: Svma) -> Option<FunctionSymbol> {
        self.load(module).elf.as_ref()?.function_at(svma)
    }

    /// The function symbols of `module` named `name` (as frames name them: the alias users know, demangled).
    pub fn functions_named(&mut self, module: &ModuleSpec, name: &str) -> Vec<FunctionSymbol> {
        self.load(module)
            .elf
            .as_ref()
            .map(|e| e.functions_named(name))
            .unwrap_or_default()
    }

    fn load(&mut self, spec: &ModuleSpec) -> &mut Module {
        let debug_dirs = &self.debug_dirs;
        self.modules
            .entry(ModuleKey::of(spec))
            .or_insert_with(|| load_module(spec, debug_dirs))
    }
}

impl Module {
    /// The frames at `offset`, resolved once.
    fn frames_at(&mut self, offset: FileOffset) -> Arc<[Frame]> {
        if let Some(frames) = self.frames.get(&offset.0) {
            return frames.clone();
        }
        let unknown = unknown_name(self, offset);
        let mut frames = match &self.elf {
            Some(elf) => elf
                .svma(offset)
                .map(|svma| elf.frames(svma, &unknown))
                .unwrap_or_default(),
            None => Vec::new(),
        };
        if frames.is_empty() {
            frames.push(Frame {
                function: unknown,
                file: None,
                line: 0,
            });
        }
        let frames: Arc<[Frame]> = frames.into();
        self.frames.insert(offset.0, frames.clone());
        frames
    }
}

fn unknown_name(module: &Module, offset: FileOffset) -> String {
    let reason = match module.status {
        ModuleStatus::BuildIdMismatch { .. } => " (build-id mismatch)",
        ModuleStatus::Unreadable { .. } => " (unreadable)",
        _ => "",
    };
    format!("{UNKNOWN} {}+{:#x}{reason}", module.name, offset.0)
}

fn load_module(spec: &ModuleSpec, debug_dirs: &[PathBuf]) -> Module {
    let name = module_name(&spec.path);
    let path = loader::clean_path(&spec.path);
    let opened = if path == "[vdso]" {
        loader::read_vdso(spec).ok_or_else(|| {
            OpenFailure::Unreadable("[vdso]: could not copy it out of process memory".to_owned())
        })
    } else if path.is_empty() || path.starts_with('[') || path.starts_with("//anon") {
        return Module {
            name,
            elf: None,
            status: ModuleStatus::NotAFile,
            frames: HashMap::new(),
        };
    } else {
        loader::open_binary(spec)
    };
    let binary = match opened {
        Ok(binary) => binary,
        Err(OpenFailure::Mismatch {
            opened,
            expected,
            found,
        }) => {
            let status = ModuleStatus::BuildIdMismatch {
                opened,
                expected,
                found,
            };
            return Module {
                name,
                elf: None,
                status,
                frames: HashMap::new(),
            };
        }
        Err(OpenFailure::Unreadable(reason)) => {
            return Module {
                name,
                elf: None,
                status: ModuleStatus::Unreadable { reason },
                frames: HashMap::new(),
            };
        }
    };
    // A binary with its own DWARF needs no debug file; looking costs a few failed opens per module otherwise.
    let debug = if binary.file.dwarf.is_none() {
        loader::find_debug_file(spec, &binary.file, debug_dirs)
    } else {
        None
    };
    let debug_path = debug.as_ref().map(|d| d.path.clone());
    // The supplementary file is named by whichever file holds the DWARF; a relative name is relative to it.
    let sup = match &debug {
        Some(d) if d.file.dwarf.is_some() => d
            .file
            .debugaltlink
            .as_ref()
            .and_then(|link| loader::find_sup_file(spec, link, d.path.parent(), debug_dirs)),
        _ => binary.file.debugaltlink.as_ref().and_then(|link| {
            let dir = Path::new(loader::clean_path(&spec.path)).parent();
            loader::find_sup_file(spec, link, dir, debug_dirs)
        }),
    };
    let elf = ElfModule::new(binary.file, debug.map(|d| d.file), sup.map(|s| s.file));
    let debug_info = match (elf.dwarf_source(), debug_path) {
        (DwarfSource::Separate, Some(path)) => DebugInfo::Separate(path),
        (DwarfSource::None, _) => DebugInfo::None,
        _ => DebugInfo::Embedded,
    };
    let status = ModuleStatus::Loaded {
        opened: binary.path,
        build_id: elf.build_id().map(<[u8]>::to_vec),
        symbols: elf.symbol_count(),
        debug_info,
    };
    Module {
        name,
        elf: Some(elf),
        status,
        frames: HashMap::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn symbolizer_can_move_to_a_worker_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<Symbolizer>();
    }

    /// The module and file offset of an address of this process, from `/proc/self/maps`.
    pub(crate) fn own_code(addr: u64) -> (ModuleSpec, FileOffset) {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        for line in maps.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (start, end) = fields[0].split_once('-').unwrap();
            let start = u64::from_str_radix(start, 16).unwrap();
            let end = u64::from_str_radix(end, 16).unwrap();
            if (start..end).contains(&addr) {
                let pgoff = u64::from_str_radix(fields[2], 16).unwrap();
                let spec = ModuleSpec {
                    path: fields[5..].join(" "),
                    ..ModuleSpec::default()
                };
                return (spec, FileOffset(addr - start + pgoff));
            }
        }
        panic!("{addr:#x} is not mapped");
    }

    #[test]
    fn evicted_modules_take_their_frames_and_load_again() {
        let mut s = Symbolizer::new().with_debug_dirs(vec![]);
        let (libc, offset) = own_code(libc::getpid as *const () as u64);
        assert!(libc.path.contains("libc"), "{}", libc.path);
        let first = s.symbolize_user(&libc, offset);
        assert_eq!(first.last().map(|f| f.function.as_str()), Some("getpid"));
        let gone = ModuleSpec {
            path: "/nonexistent/libgone.so".to_owned(),
            ..ModuleSpec::default()
        };
        s.symbolize_user(&gone, FileOffset(0x10));
        s.symbolize_user(&gone, FileOffset(0x20));
        assert_eq!(s.module_count(), 2);
        let frames = |s: &Symbolizer| s.modules.values().map(|m| m.frames.len()).sum::<usize>();
        assert_eq!(frames(&s), 3);

        let key = ModuleKey::of(&libc);
        assert_eq!(s.retain_modules(|k| k != &key), 1);
        assert_eq!(s.module_count(), 1);
        assert_eq!(frames(&s), 2, "the evicted module's frames went with it");
        assert_eq!(s.module_status(&libc), ModuleStatus::NotLoaded);
        assert!(matches!(
            s.module_status(&gone),
            ModuleStatus::Unreadable { .. }
        ));

        // A later lookup loads the module again and resolves the same frames afresh.
        let again = s.symbolize_user(&libc, offset);
        assert_eq!(again, first);
        assert!(!Arc::ptr_eq(&again, &first));
        assert!(matches!(
            s.module_status(&libc),
            ModuleStatus::Loaded { .. }
        ));
        assert_eq!(s.retain_modules(|_| false), 2);
        assert_eq!((s.module_count(), frames(&s)), (0, 0));
    }

    /// A JIT map in a directory of its own, named for a pid no process has (so only the directory is searched).
    fn jit_map(name: &str, bytes: &[u8]) -> (PathBuf, u32) {
        let dir = std::env::temp_dir().join(format!("stacktop-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pid = 4_000_000_001;
        std::fs::write(dir.join(format!("perf-{pid}.map")), bytes).unwrap();
        (dir, pid)
    }

    fn jit_name(s: &mut Symbolizer, pid: u32, addr: u64) -> Option<String> {
        s.symbolize_jit(pid, Avma(addr))
            .map(|f| f[0].function.clone())
    }

    #[test]
    fn jit_map_with_a_line_that_is_not_utf8_keeps_its_other_lines() {
        // Before: the map was read as one UTF-8 string, so this one byte made every JIT frame unknown.
        let (dir, pid) = jit_map(
            "jit-utf8",
            b"1000 100 before\n2000 100 bad\xffname\n3000 100 after\n",
        );
        let mut s = Symbolizer::new().with_perf_map_dir(dir.clone());
        assert_eq!(jit_name(&mut s, pid, 0x1010).as_deref(), Some("before"));
        assert_eq!(jit_name(&mut s, pid, 0x3010).as_deref(), Some("after"));
        assert_eq!(
            jit_name(&mut s, pid, 0x2010).as_deref(),
            Some("bad\u{fffd}name")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn huge_jit_map_is_read_only_up_to_the_cap() {
        // A sparse file: one symbol at the start, another 100 MiB in (past the cap), zeros between.
        let (dir, pid) = jit_map("jit-huge", b"1000 100 first\n");
        let path = dir.join(format!("perf-{pid}.map"));
        {
            use std::io::{Seek, SeekFrom, Write};
            let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.seek(SeekFrom::Start(100 << 20)).unwrap();
            f.write_all(b"\n2000 100 late\n").unwrap();
        }
        let mut s = Symbolizer::new().with_perf_map_dir(dir.clone());
        let begin = Instant::now();
        assert_eq!(jit_name(&mut s, pid, 0x1010).as_deref(), Some("first"));
        // Before: the whole file was read (a 2 GB map took 2 GB and 30 s), and `late` was found.
        assert_eq!(jit_name(&mut s, pid, 0x2010), None);
        assert!(begin.elapsed() < Duration::from_secs(10));
        let notes = s.take_notes();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("64 MiB"), "{notes:?}");
        // Said once, though every miss looks at the file again.
        assert_eq!(jit_name(&mut s, pid, 0x2010), None);
        assert!(s.take_notes().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn forgotten_process_rereads_its_jit_map() {
        let dir = std::env::temp_dir().join(format!("stacktop-jit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A pid no process has: the map is found in the directory only.
        let pid = 4_000_000_000;
        let map = dir.join(format!("perf-{pid}.map"));
        std::fs::write(&map, "1000 100 first\n").unwrap();
        let mut s = Symbolizer::new().with_perf_map_dir(dir.clone());
        let name = |s: &mut Symbolizer| {
            s.symbolize_jit(pid, Avma(0x1010))
                .map(|f| f[0].function.clone())
        };
        assert_eq!(name(&mut s).as_deref(), Some("first"));
        assert_eq!(s.jit_process_count(), 1);
        s.forget_process(pid);
        assert_eq!(s.jit_process_count(), 0);
        // The pid is reused by a process with a map of the same length: it is read, not the cached frame.
        std::fs::write(&map, "1000 100 again\n").unwrap();
        assert_eq!(name(&mut s).as_deref(), Some("again"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn module_names() {
        assert_eq!(
            module_name("/usr/lib/x86_64-linux-gnu/libc.so.6"),
            "libc.so.6"
        );
        assert_eq!(module_name("/tmp/a.out (deleted)"), "a.out");
        assert_eq!(module_name("[vdso]"), "[vdso]");
        assert_eq!(module_name(""), "[anon]");
        assert_eq!(module_name("relative"), "relative");
    }

    #[test]
    fn missing_file_costs_only_its_own_frames() {
        let mut s = Symbolizer::new();
        let spec = ModuleSpec {
            path: "/nonexistent/libgone.so".to_owned(),
            ..ModuleSpec::default()
        };
        let frames = s.symbolize_user(&spec, FileOffset(0x1234));
        assert_eq!(
            &*frames,
            &[Frame {
                function: "[unknown] libgone.so+0x1234 (unreadable)".to_owned(),
                file: None,
                line: 0
            }]
        );
        assert!(frames[0].is_unknown());
        assert!(matches!(
            s.module_status(&spec),
            ModuleStatus::Unreadable { .. }
        ));
    }

    #[test]
    fn devices_are_not_read() {
        let mut s = Symbolizer::new();
        let spec = ModuleSpec {
            path: "/dev/zero".to_owned(),
            ..ModuleSpec::default()
        };
        assert_eq!(
            s.symbolize_user(&spec, FileOffset(0))[0].function,
            "[unknown] zero+0x0 (unreadable)"
        );
        match s.module_status(&spec) {
            ModuleStatus::Unreadable { reason } => {
                assert!(reason.contains("not a regular file"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pseudo_mappings_are_named() {
        let mut s = Symbolizer::new();
        let heap = ModuleSpec {
            path: "[heap]".to_owned(),
            ..ModuleSpec::default()
        };
        assert_eq!(
            s.symbolize_user(&heap, FileOffset(0x10))[0].function,
            "[unknown] [heap]+0x10"
        );
        assert_eq!(s.module_status(&heap), ModuleStatus::NotAFile);
        let anon = ModuleSpec::default();
        assert_eq!(
            s.symbolize_user(&anon, FileOffset(0x20))[0].function,
            "[unknown] [anon]+0x20"
        );
    }

    #[test]
    fn kernel_from_given_kallsyms() {
        let k = Kallsyms::parse("ffffffff81000000 T _stext\nffffffff81001000 T do_syscall_64\n");
        let mut s = Symbolizer::new().with_kallsyms(k);
        assert_eq!(
            s.symbolize_kernel(Avma(0xffffffff81001010))[0].function,
            "do_syscall_64"
        );
        assert_eq!(
            s.symbolize_kernel(Avma(0x1000))[0].function,
            "[unknown] [kernel.kallsyms]+0x1000"
        );
        let restricted = Kallsyms::parse("0000000000000000 T _stext\n");
        let mut s = Symbolizer::new().with_kallsyms(restricted);
        assert_eq!(
            s.symbolize_kernel(Avma(0xffffffff81001010))[0].function,
            "[unknown] [kernel.kallsyms]+0xffffffff81001010"
        );
    }
}
