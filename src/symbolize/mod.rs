//! (module, address) -> frames with inline functions and file:line: ELF, DWARF, kallsyms, JIT maps.
//!
//! Owns: turning a file offset in a mapped module, a kernel address or a JIT address into a list of frames,
//! innermost inline frame first, each a demangled function name with source file and line when known. Leaves
//! to others: which module an address belongs to and its file offset (`process`), unwinding (`unwind`),
//! interning the frames (`profile`), escaping names for a terminal (`render`, `tui`).
//!
//! Shape (like the addr2line crate): `elf.rs`, `symbols.rs`, `fde.rs`, `kallsyms.rs`, `perfmap.rs` and
//! `demangle.rs` are pure views over bytes or text; `loader.rs` is the only part that opens files.
//! [`Symbolizer`] ties them together and caches: each module is loaded once (keyed by build-id, else by path),
//! each (module, offset) is resolved once, DWARF is parsed lazily by `addr2line`.
//!
//! Naming:
//! - Code without a symbol is named by the start of its FDE in the unwind tables (see "Unknown frames").
//! - The outermost (non-inline) frame of an address is named by the ELF symbol users know among the aliases at
//!   that address: global or weak before local, fewest leading underscores, version suffix dropped
//!   (`pthread_mutex_lock`, not `___pthread_mutex_lock` or `pthread_mutex_lock@@GLIBC_2.2.5`). DWARF adds the
//!   inline frames above it and file:line.
//! - Rust (legacy and v0, without hash) and C++ names are demangled; C names are left alone.
//! - x86-64 PLT stubs, which no symbol table lists, are named as perf does: `memcpy@plt`.
//! - Kernel module symbols carry their module: `nft_do_chain [nf_tables]`.
//! - JIT code is named from `/tmp/perf-PID.map`; an address it does not list is left to the caller
//!   ([`Symbolizer::symbolize_jit`] returns `None`), which names it unknown and may ask again once the JIT
//!   has written more lines ([`Symbolizer::refresh_jit_map`], then [`Symbolizer::symbolize_jit_as_read`]).
//!
//! Debug info is looked for in the binary, then in a separate debug file (build-id path under `/usr/lib/debug`,
//! then `.gnu_debuglink`), completed by a `dwz` supplementary file (`.gnu_debugaltlink`); see `loader.rs`.
//! Compressed debug sections (zlib, zstd) are read.
//!
//! # Unknown frames
//! An address no symbol, debug info or FDE names still gets a frame of its own, so the profile (which interns
//! functions by name) keeps distinct unknown addresses apart, as `perf report` does. Its `function` is
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
//! No reason means the module was read but has neither a symbol nor an FDE (below) for the address. Kernel
//! addresses without a symbol (or with `kernel.kptr_restrict` hiding them) are `[unknown] [kernel.kallsyms]+0xADDR`.
//!
//! Code of a read module that no symbol covers but an FDE of its unwind tables does (`.eh_frame`,
//! `.debug_frame`: `strip` keeps them, and most distro daemons are stripped) is named after the function that
//! FDE describes, by where it starts:
//! ```text
//!   [unknown] MODULE+0xSTART (fde)
//! ```
//! with START the file offset of the FDE's first byte, in the same terms as OFFSET above (for an unstripped
//! build of the same source, START is the offset of the function's symbol). All the addresses of one function,
//! its return addresses included, then make one frame: its samples one row, and each of its callers one
//! caller, where a name per address (what `perf report` shows) gives a row per sampled instruction. The name
//! keeps the `[unknown]` prefix because it is a placeholder stacktop derives, not a name the binary states,
//! and what treats placeholders apart keeps doing so ([`Frame::is_unknown`]; close-name suggestions skip
//! them). The ` (fde)` mark tells it from the per-address name of the address START; grep for it.
//!
//! [`Frame::is_unknown`] tells these apart from named frames. Such frames have no file and line 0, except a
//! frame DWARF places at a file:line without naming its function: it keeps the file:line under the unknown name.

pub mod background;
mod demangle;
mod elf;
pub mod exits;
mod fde;
mod kallsyms;
mod loader;
mod memory;
mod module;
mod perfmap;
mod symbols;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use demangle::demangle;
pub use elf::{has_debug_info, offset_to_svma, read_build_id, svma_to_offset, Segment};
pub use kallsyms::Kallsyms;
pub use loader::perf_build_id_cache;
pub use loader::{module_build_id, module_data, ModuleData};
#[doc(hidden)]
pub use memory::MemoryModule;
pub use perfmap::PerfMap;

use crate::addr::{Avma, FileOffset, Svma};
use module::{load_module, Module};

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

/// The placeholder frame of all the addresses of a module still loading whose names nothing shows before it is
/// read (`record`'s, see `background`): `[unknown] MODULE (loading)`, `name` being the module's (its file
/// name, or [`KERNEL_MODULE`]).
pub fn loading_module_frames(name: &str) -> Arc<[Frame]> {
    vec![Frame {
        function: format!("{UNKNOWN} {name}{LOADING}"),
        file: None,
        line: 0,
    }]
    .into()
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
    /// See [`Symbolizer::with_symbols_only_for`].
    symbols_only: Option<(u32, PathBuf)>,
}

impl ModuleLoader {
    /// Reads `spec`'s file, its debug file and its symbols (which may take seconds for a large library).
    pub fn load(&self, spec: &ModuleSpec) -> LoadedModule {
        LoadedModule {
            key: ModuleKey::of(spec),
            module: load_module(
                spec,
                &self.debug_dirs,
                None,
                symbols_only(&self.symbols_only, spec),
            ),
            partial: false,
        }
    }

    /// Reads of `spec`'s files only what naming the addresses at `offsets` takes: the module answers
    /// [`LoadedModule::frames_at`] of them as a whole one would, and is not for a [`Symbolizer`] (which
    /// refuses it). Where the whole symbol table of a large library is tens of MB of names, this keeps those of
    /// the sampled functions.
    pub fn load_for(&self, spec: &ModuleSpec, offsets: &[FileOffset]) -> LoadedModule {
        LoadedModule {
            key: ModuleKey::of(spec),
            module: load_module(
                spec,
                &self.debug_dirs,
                Some(offsets),
                symbols_only(&self.symbols_only, spec),
            ),
            partial: true,
        }
    }
}

/// Whether `spec` is the program file of the process named symbols-only (see
/// [`Symbolizer::with_symbols_only_for`]); the libraries that process maps are other programs' too.
fn symbols_only(only: &Option<(u32, PathBuf)>, spec: &ModuleSpec) -> bool {
    only.as_ref().is_some_and(|(pid, program)| {
        spec.pid == Some(*pid) && Path::new(loader::clean_path(&spec.path)) == program
    })
}

/// A module read by a [`ModuleLoader`], to be installed in a [`Symbolizer`].
pub struct LoadedModule {
    key: ModuleKey,
    module: Module,
    /// Read for some offsets only ([`ModuleLoader::load_for`]).
    partial: bool,
}

impl LoadedModule {
    /// The frames at `offset`, as [`Symbolizer::symbolize_user`] gives them once the module is installed
    /// (for a module read with [`ModuleLoader::load_for`], only at the offsets it was read for).
    pub fn frames_at(&mut self, offset: FileOffset) -> Arc<[Frame]> {
        self.module.frames_at(offset)
    }

    /// Lets go of the pages read so far of the module's mapped files: naming many addresses reads pages of
    /// its DWARF here and there, which would otherwise add up in the RSS.
    pub fn release_pages(&self) {
        if let Some(elf) = &self.module.elf {
            elf.release_pages();
        }
    }

    /// True for a module read for some offsets only.
    pub fn is_partial(&self) -> bool {
        self.partial
    }

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
    /// See [`Symbolizer::with_symbols_only_for`].
    symbols_only: Option<(u32, PathBuf)>,
    modules: HashMap<ModuleKey, Module>,
    kallsyms: Option<Kallsyms>,
    /// `preload_kernel_symbols`: the thread reading them.
    kallsyms_loading: Option<std::thread::JoinHandle<Kallsyms>>,
    kernel_frames: HashMap<u64, Arc<[Frame]>>,
    /// JIT maps by pid.
    jit_maps: HashMap<u32, JitMap>,
    /// What the profile's readers should know (a JIT map read only in part), each said once; see `take_notes`.
    notes: Vec<String>,
    /// Processes whose JIT map was found too long, so it is said once per process, not at every reread.
    noted_cut: HashSet<u32>,
    /// Whether a module's frames are kept by offset (see [`Symbolizer::without_frame_cache`]).
    keep_frames: bool,
}

impl Default for Symbolizer {
    fn default() -> Self {
        Symbolizer::new()
    }
}

/// The frame of a kernel address: its symbol, or unknown.
fn kernel_frame(kallsyms: &Kallsyms, addr: Avma) -> Arc<[Frame]> {
    let function = match kallsyms.lookup(addr) {
        Some(name) => name.to_owned(),
        None => format!("{UNKNOWN} {KERNEL_MODULE}+{:#x}", addr.0),
    };
    vec![Frame {
        function,
        file: None,
        line: 0,
    }]
    .into()
}

fn read_kallsyms(path: &Path) -> Kallsyms {
    Kallsyms::parse(&std::fs::read_to_string(path).unwrap_or_default())
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

    /// Evicts one loaded module (see [`Symbolizer::retain_modules`]).
    pub fn evict(&mut self, key: &ModuleKey) {
        self.modules.remove(key);
    }

    /// A loader that reads modules as this symbolizer would (same debug directories), on another thread.
    pub fn loader(&self) -> ModuleLoader {
        ModuleLoader {
            debug_dirs: self.debug_dirs.clone(),
            symbols_only: self.symbols_only.clone(),
        }
    }

    /// Adds a module read by a [`ModuleLoader`]; returns false (and drops it) when the symbolizer already has
    /// that module, or when it was read for some offsets only ([`ModuleLoader::load_for`]).
    pub fn install(&mut self, loaded: LoadedModule) -> bool {
        if loaded.partial {
            return false;
        }
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
            symbols_only: None,
            modules: HashMap::new(),
            kallsyms: None,
            kallsyms_loading: None,
            kernel_frames: HashMap::new(),
            jit_maps: HashMap::new(),
            notes: Vec::new(),
            noted_cut: HashSet::new(),
            keep_frames: true,
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

    /// Names the code of `program` in process `pid` (stacktop's own, which `-a` samples too) from its symbol
    /// table alone: its DWARF (line tables and inline trees: tens of MB parsed for stacktop's binary, and as
    /// many of its file's pages resident) is never read. The libraries the process maps keep their debug
    /// info: other processes share them. Another process running the same program shares its module (keyed
    /// by build-id) and may get the same names.
    pub fn with_symbols_only_for(mut self, pid: u32, program: PathBuf) -> Symbolizer {
        self.symbols_only = Some((pid, program));
        self
    }

    /// Starts reading the kernel's symbols on a thread of their own, for the first kernel address to find them
    /// read (80 ms here, 120,000 lines of `/proc/kallsyms`): a consumer of context switches at a million a
    /// second cannot stop that long for its first sample without losing samples behind it.
    pub fn preload_kernel_symbols(&mut self) {
        if self.kallsyms.is_some() || self.kallsyms_loading.is_some() {
            return;
        }
        let path = self.kallsyms_path.clone();
        self.kallsyms_loading = std::thread::Builder::new()
            .name("stacktop-kallsyms".to_owned())
            .spawn(move || read_kallsyms(&path))
            .ok();
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

    /// Keeps no module's frames once made: for a caller that asks for each module offset once and keeps
    /// what it gets (a perf.data import, whose pipeline keeps a location per offset). A build's file names
    /// a million return addresses; their frames, kept twice, were a fifth of a flamegraph's memory.
    pub fn without_frame_cache(mut self) -> Symbolizer {
        self.keep_frames = false;
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
        let keep = self.keep_frames;
        self.load(module).frames_keeping(offset, keep)
    }

    /// The frame for a kernel address, from `/proc/kallsyms` (read once, on first use).
    pub fn symbolize_kernel(&mut self, addr: Avma) -> Arc<[Frame]> {
        if let Some(frames) = self.kernel_frames.get(&addr.0) {
            return frames.clone();
        }
        let path = &self.kallsyms_path;
        let loading = self.kallsyms_loading.take();
        let kallsyms = self.kallsyms.get_or_insert_with(|| {
            loading
                .and_then(|thread| thread.join().ok())
                .unwrap_or_else(|| read_kallsyms(path))
        });
        let frames = kernel_frame(kallsyms, addr);
        self.kernel_frames.insert(addr.0, frames.clone());
        frames
    }

    /// Names these kernel addresses at once, reading of `/proc/kallsyms` only the symbols they need, line by
    /// line (the end of a recording: see [`Kallsyms::parse_for`]); [`Symbolizer::symbolize_kernel`] then
    /// returns their frames. Does nothing when the whole table is read or being read already.
    pub fn prepare_kernel(&mut self, addresses: &[u64]) {
        if self.kallsyms.is_some() || self.kallsyms_loading.is_some() {
            return;
        }
        let mut wanted: Vec<u64> = addresses
            .iter()
            .copied()
            .filter(|a| !self.kernel_frames.contains_key(a))
            .collect();
        if wanted.is_empty() {
            return;
        }
        wanted.sort_unstable();
        wanted.dedup();
        let kallsyms = match std::fs::File::open(&self.kallsyms_path) {
            Ok(file) => Kallsyms::parse_for(std::io::BufReader::new(file), &wanted),
            Err(_) => Kallsyms::default(),
        };
        for address in wanted {
            let frames = kernel_frame(&kallsyms, Avma(address));
            self.kernel_frames.insert(address, frames);
        }
    }

    /// The frame for an address in JIT-compiled code of `pid`, from `/tmp/perf-PID.map`; `None` when there is no
    /// such file or it does not list the address (the caller then names the frame as unknown in its mapping).
    /// An address the map does not list makes it look at the file again (see [`Symbolizer::refresh_jit_map`]).
    pub fn symbolize_jit(&mut self, pid: u32, addr: Avma) -> Option<Arc<[Frame]>> {
        let listed = self
            .jit_maps
            .get(&pid)
            .is_some_and(|j| j.map.lookup(addr).is_some());
        if !listed {
            self.refresh_jit_map(pid);
        }
        self.symbolize_jit_as_read(pid, addr)
    }

    /// Reads the JIT map of `pid` anew when its file's length changed since it was read (a JIT appends as it
    /// compiles), or for the first time. The file is looked at no more often than the recheck interval says
    /// (see [`Symbolizer::with_jit_recheck`]).
    pub fn refresh_jit_map(&mut self, pid: u32) {
        let dir = &self.perf_map_dir;
        let jit = match self.jit_maps.entry(pid) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(read_jit_map(dir, pid));
                return;
            }
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        };
        if jit.checked.elapsed() < self.jit_recheck {
            return;
        }
        if loader::perf_map_file(dir, pid).map(|(_, len)| len) != jit.len {
            *jit = read_jit_map(dir, pid);
        } else {
            jit.checked = Instant::now();
        }
    }

    /// Like [`Symbolizer::symbolize_jit`], from the map as last read: the file is read only if it never was.
    /// For naming many addresses again after one [`Symbolizer::refresh_jit_map`].
    pub fn symbolize_jit_as_read(&mut self, pid: u32, addr: Avma) -> Option<Arc<[Frame]>> {
        let dir = &self.perf_map_dir;
        let jit = self
            .jit_maps
            .entry(pid)
            .or_insert_with(|| read_jit_map(dir, pid));
        if let Some(frames) = jit.frames.get(&addr.0) {
            return Some(frames.clone());
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

    /// The function symbol containing `svma` in `module` (for annotate: the range of code to disassemble),
    /// else the function its FDE gives (see "Unknown frames" in the module docs).
    pub fn function_at(&mut self, module: &ModuleSpec, svma: Svma) -> Option<FunctionSymbol> {
        self.load(module).function_at(svma)
    }

    /// The function symbols of `module` named `name` (as frames name them: the alias users know, demangled),
    /// else the function of the FDE so named.
    pub fn functions_named(&mut self, module: &ModuleSpec, name: &str) -> Vec<FunctionSymbol> {
        self.load(module).functions_named(name)
    }

    /// The data object of `module` containing `svma` (a variable of a writable section: `.data`, `.bss`),
    /// demangled, with the offset of `svma` in it: what names a lock at that address.
    pub fn data_at(&mut self, module: &ModuleSpec, svma: Svma) -> Option<(String, u64)> {
        self.load(module).elf.as_ref()?.data_at(svma)
    }

    /// The function symbols of `module` whose mangled name contains `hint` and whose demangled name
    /// `matches` (see `ElfModule::functions_where`).
    pub fn functions_where(
        &mut self,
        module: &ModuleSpec,
        hint: &str,
        matches: &dyn Fn(&str) -> bool,
    ) -> Vec<FunctionSymbol> {
        match &self.load(module).elf {
            Some(elf) => elf.functions_where(hint, matches),
            None => Vec::new(),
        }
    }

    /// The function of `module` that `name` names as another alias of its address, under the name frames
    /// get (see [`crate::pipeline::aliases`]).
    pub fn function_aliased(&mut self, module: &ModuleSpec, name: &str) -> Option<FunctionSymbol> {
        self.load(module).elf.as_ref()?.function_aliased(name)
    }

    fn load(&mut self, spec: &ModuleSpec) -> &mut Module {
        let debug_dirs = &self.debug_dirs;
        let only = symbols_only(&self.symbols_only, spec);
        self.modules
            .entry(ModuleKey::of(spec))
            .or_insert_with(|| load_module(spec, debug_dirs, None, only))
    }
}

/// The JIT map of `pid` as its file is now (empty when there is none).
fn read_jit_map(dir: &Path, pid: u32) -> JitMap {
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests;
