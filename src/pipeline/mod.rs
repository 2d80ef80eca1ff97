//! The engine that `record`, `top` and perf.data import share: records in time order -> address spaces ->
//! stacks -> symbolized locations -> the profile.
//!
//! ```text
//!  acquire::Session ──reader::read_until_done──> batches of Records ──┐
//!  format::perfdata (import::load_perf_data) ─────── Records ─────────┤
//!                                                                     v
//!                        Pipeline::on_record: Processes (address spaces) -> unwind -> symbolize -> Profile
//!                                                                     │
//!        record: into_profile (the whole profile, at the end)  <──────┤
//!        top (live::Sampler): take_delta (what each refresh added) <──┘
//! ```
//! One hand-over protocol: deltas during a session, the whole profile at the end; nothing else accumulates.
//! Each distinct (module mapping, address) becomes one profile location, symbolized once; the symbolizer
//! itself caches per (file, offset), so the same library in many processes is read and resolved once. Code
//! no file holds (JIT code in anonymous memory) is a location per (process, address), named from the
//! process's perf map, and renamed in place when the map lists it later.
//! A [`Config`] says everything a pipeline is built from.

pub mod aliases;
pub mod import;
pub mod live;
pub mod lockplan;
pub mod locks;
mod memo;
pub mod offcpu;
pub mod reader;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::sync::Arc;

use crate::acquire::record::{Attach, Record, SampleKind, SampleRecord};
use crate::acquire::sample::SHED_ABOVE;
use crate::acquire::{CallGraphMode, Session, StackBudget};
use crate::addr::{Avma, FrameAddress};
use crate::process::{Mapping as ProcessMapping, Module, Processes, Resolved};
use crate::profile::{
    ContinuationStats, Delta, Function, Line, Location, LocationId, Mapping, MappingId, Meta,
    ModuleUnwind, PathCache, Profile, Refusal, ShortCopies, StrId, TableMarks, Values,
};
use crate::symbolize::background::BackgroundLoader;
use crate::symbolize::{
    loading_module_frames, module_build_id, module_data, module_name, Frame, LoadedModule,
    ModuleData, ModuleKey as SymbolModuleKey, ModuleSpec, ModuleStatus, Symbolizer, KERNEL_MODULE,
    UNKNOWN,
};
use crate::unwind::dwarf::StackCopy;
use crate::unwind::fpcheck::FpCheck;
use crate::unwind::live::LiveMemory;
use crate::unwind::modules::Regs;
use crate::unwind::modules::{Mode, Unwinders};
use crate::unwind::tables::UnwindTables;
use crate::unwind::{fp, Stack};
use locks::{Locks, LocksConfig};
use memo::FrameMemo;
use offcpu::{Charge, Intervals};
use reader::TargetWalks;

/// The least time between two returns of freed memory to the kernel (see `acquire::memory`).
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// How often, while samples come, the JIT code the JIT maps did not name yet is looked up again (see
/// `Pipeline::name_jit_code`); each time costs a `stat` of each such process's map.
const NAME_JIT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The name of the frame that ends a stack the unwinder could not walk to its root.
pub const TRUNCATED: &str = "[truncated]";

/// The frame that the wait of a thread already off CPU when an attached recording started is charged to,
/// from the attach to its first switch-in: the stack it blocked in was never sampled.
pub const BLOCKED_AT_ATTACH: &str = "[blocked at attach]";

/// Modules are keyed by the address of their `Arc`: `Processes` interns one `Arc` per file and keeps it while
/// a process maps the file, so the address is stable and unique, and hashing it is cheaper than hashing a path
/// per frame. Entries keyed by a module are forgotten when it is evicted, while its `Arc` still holds the
/// address, so an address reused by a later `Arc` never meets an old entry.
type ModuleKey = usize;

fn module_key(module: &Arc<Module>) -> ModuleKey {
    Arc::as_ptr(module) as usize
}

/// A location's key in 12 bytes (a build's perf.data file names a million of them): code of a file by the
/// module's index (see [`ModuleIndex`]) and its offset in the file (the same instruction in every process
/// that maps the file, wherever each maps it, is one location: see [`ProfileMapping`]), or a kernel address,
/// or one of the few locations of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct LocationKey {
    /// The module's index, or one of the kinds below.
    kind: u32,
    /// The file offset or kernel address, in halves (a `u64` would align the key to 16 bytes).
    at: [u32; 2],
}

impl LocationKey {
    const KERNEL: u32 = u32::MAX;
    /// Offline: every address in no mapping that no JIT map names (see [`Pipeline::jit_location`]).
    const UNMAPPED: LocationKey = LocationKey::special(u32::MAX - 1);
    const TRUNCATED: LocationKey = LocationKey::special(u32::MAX - 2);
    const BLOCKED_AT_ATTACH: LocationKey = LocationKey::special(u32::MAX - 3);
    /// Module indexes stay below the kinds.
    const MODULES: u32 = u32::MAX - 3;

    const fn special(kind: u32) -> LocationKey {
        LocationKey { kind, at: [0; 2] }
    }

    fn at(kind: u32, at: u64) -> LocationKey {
        LocationKey {
            kind,
            at: [at as u32, (at >> 32) as u32],
        }
    }

    fn user(module: u32, offset: u64) -> LocationKey {
        LocationKey::at(module, offset)
    }

    fn kernel(address: u64) -> LocationKey {
        LocationKey::at(LocationKey::KERNEL, address)
    }

    /// The module index of code in a file.
    fn module(self) -> Option<u32> {
        (self.kind < LocationKey::MODULES).then_some(self.kind)
    }
}

/// Small indexes of the modules locations are keyed by, given as they are first met and taken back when a
/// module is evicted (so a later module at a reused `Arc` address gets a new one); and of the files they map,
/// which stay (a file mapped again after its module was evicted finds its profile mapping).
#[derive(Default)]
struct ModuleIndex {
    /// By module: its index and its file's.
    ids: HashMap<ModuleKey, (u32, u32)>,
    files: HashMap<Module, u32>,
    next: u32,
}

impl ModuleIndex {
    /// The module's index and its file's, and whether the module indexes ran out and started again (every
    /// location keyed by an old index must then go).
    fn of(&mut self, module: &Arc<Module>) -> (u32, u32, bool) {
        if let Some(&(id, file)) = self.ids.get(&module_key(module)) {
            return (id, file, false);
        }
        let restarted = self.next >= LocationKey::MODULES;
        if restarted {
            self.ids.clear();
            self.next = 0;
        }
        let (id, file) = (self.next, self.file(module));
        self.next += 1;
        self.ids.insert(module_key(module), (id, file));
        (id, file, restarted)
    }

    /// The index of the file `module` maps.
    fn file(&mut self, module: &Module) -> u32 {
        if let Some(&file) = self.files.get(module) {
            return file;
        }
        let file = self.files.len() as u32;
        self.files.insert(module.clone(), file);
        file
    }

    fn clear(&mut self) {
        *self = ModuleIndex::default();
    }
}

/// The mapping a file's code is recorded under in the profile: the first one seen of the file at that file
/// offset. Later processes map the file elsewhere (address-space randomization), but their addresses are
/// recorded in this mapping's terms (`start + file offset - offset`), so the same code in a thousand
/// short-lived processes is one mapping, one location per address and one stack node per path, not a
/// thousand of each: under `top -a` with process churn, per-process locations grew the profile without bound.
#[derive(Clone, Copy, Debug)]
struct ProfileMapping {
    id: MappingId,
    start: u64,
    offset: u64,
}

impl ProfileMapping {
    /// The address of file offset `offset` in this mapping.
    fn address_of(&self, offset: u64) -> u64 {
        self.start.wrapping_add(offset.wrapping_sub(self.offset))
    }
}

/// Everything a [`Pipeline`] is built from, given at once.
pub struct Config {
    /// The profile's metadata (commands complete it at the end, with the session's figures).
    pub meta: Meta,
    pub limits: fp::Limits,
    /// Dwarf or hybrid unwinding of copied stacks; `None`: the kernel's frame-pointer chains only.
    pub tables: Option<Mode>,
    /// With `tables` `None`: check the frame-pointer chains against the unwind tables of the modules they
    /// pass through (`unwind::fpcheck`), for the header's warning about code without frame pointers. Off
    /// where samples carry no call chains.
    pub check_frame_pointers: bool,
    /// Live hybrid recording: each process's stack copies are cut in the reader to what its walks read
    /// (see `acquire::StackBudget`).
    pub stack_budget: Option<StackBudget>,
    /// `None`: a default one.
    pub symbolizer: Option<Symbolizer>,
    /// Reading a file after the fact (perf.data import): see the `offline` field of [`Pipeline`].
    pub offline: bool,
    pub loading: Loading,
    /// When a live profile's tables start afresh (`top`; see [`Generations`]).
    pub generations: Generations,
    /// Off-CPU time: switch-out samples and switch records make intervals (see [`offcpu`]); `None`: they are
    /// ignored.
    pub off_cpu: Option<OffCpuConfig>,
    /// Lock contention: lock probes' samples make waits (see [`locks`]); `None`: they are ignored.
    pub locks: Option<LocksConfig>,
    /// Live recordings in dwarf or hybrid mode: walks that run off their stack copy go on in the process's
    /// memory, read through this (see `unwind::live`); `None`: they end in `[truncated]`.
    pub continuation: Option<Box<dyn LiveMemory + Send>>,
    /// `record --unwind-check BYTES`: see `unwind::modules::SelfCheck`.
    pub self_check: Option<usize>,
    /// Reading a file (`offline`) for an output that names functions only: see `import::Detail::Functions`.
    pub function_stacks: bool,
    /// Reading a file (`offline`) for an output that needs no process or thread: see `import::Detail::Stacks`.
    pub merge_threads: bool,
}

/// Off-CPU recording, as the source says it was made.
#[derive(Clone, Debug, Default)]
pub struct OffCpuConfig {
    /// An attached recording: the threads found and when; a thread off CPU then is charged from there.
    pub attach: Option<Attach>,
    /// User stack bytes copied per switch-out (0: frame pointers only), for the notes.
    pub stack_bytes: u32,
}

/// A live session's profile (`top`) starts its tables afresh once they hold more than `nodes` stack nodes and
/// are at least `min_age` old, so that stacks nobody samples any more (process churn, hours of `top -a`) are
/// let go on both sides of the hand-over (see `profile::Delta::fresh`). The age bounds how often a working set
/// larger than the budget is interned again.
#[derive(Clone, Copy, Debug)]
pub struct Generations {
    pub nodes: usize,
    pub min_age: std::time::Duration,
}

impl Default for Generations {
    fn default() -> Generations {
        Generations {
            nodes: 50_000,
            min_age: std::time::Duration::from_secs(60),
        }
    }
}

impl Config {
    /// Frame pointers only, on-the-spot loading, live: change what differs.
    pub fn new(meta: Meta, limits: fp::Limits, tables: Option<Mode>) -> Config {
        Config {
            meta,
            limits,
            tables,
            check_frame_pointers: false,
            stack_budget: None,
            symbolizer: None,
            offline: false,
            loading: Loading::OnTheSpot,
            generations: Generations::default(),
            off_cpu: None,
            locks: None,
            continuation: None,
            self_check: None,
            function_stacks: false,
            merge_threads: false,
        }
    }
}

impl Config {
    /// For a live session: its unwinding mode, limits and stack budget, and the profile's metadata as far as
    /// the start of the session tells it (event, rate, mode, notes, command line).
    pub fn live(session: &Session) -> Config {
        let limits = fp::Limits {
            kernel_max_stack: session.max_stack(),
            ..fp::Limits::default()
        };
        let tables = match session.call_graph() {
            CallGraphMode::Fp => None,
            CallGraphMode::Hybrid(_) => Some(Mode::Hybrid),
            CallGraphMode::Dwarf(_) => Some(Mode::Dwarf),
        };
        let mut notes = session.notes().to_vec();
        if let Some(bytes) = session.switch_stack_bytes() {
            // `record` says it again at the end, with the switch-outs counted.
            notes.push(format!(
                "off-CPU: a context-switch sample ({}) at every switch-out; {}",
                match bytes {
                    0 => "frame-pointer chain".to_owned(),
                    n => format!("{n}-byte stack copy"),
                },
                crate::acquire::OFF_CPU_COST
            ));
        }
        let locks = session.locks().map(|(probes, stack_bytes)| LocksConfig {
            probes: probes.described.clone(),
            every_call: probes.every_call,
            stack_bytes,
        });
        let meta = Meta {
            locks: crate::profile::LockStats {
                enabled: locks.is_some(),
                probes: locks.as_ref().map(|l| l.probes.clone()).unwrap_or_default(),
                ..crate::profile::LockStats::default()
            },
            event: session.event_name(),
            period_unit: session.event().kind.period_unit().to_owned(),
            frequency: session.frequency(),
            call_graph: session.call_graph().to_string(),
            command_line: std::env::args().collect::<Vec<_>>().join(" "),
            notes,
            ..Meta::default()
        };
        let off_cpu = session.off_cpu().then(|| OffCpuConfig {
            attach: session.attach().cloned(),
            stack_bytes: session.switch_stack_bytes().unwrap_or(0),
        });
        Config {
            stack_budget: Some(session.stack_budget()),
            check_frame_pointers: tables.is_none(),
            off_cpu,
            locks,
            continuation: Some(Box::new(crate::acquire::memory::ProcessMemory)),
            ..Config::new(meta, limits, tables)
        }
    }
}

/// Where user modules' symbols are read.
pub enum Loading {
    /// On the spot, when a module is first met (`report`, perf.data import): every name is final at once.
    OnTheSpot,
    /// On a background thread (`top`): an address in a module not loaded yet is named by a placeholder,
    /// `[unknown] MODULE+0xOFF (loading)`, so a large library's symbols never hold up the samples. Each
    /// `take_delta` installs the modules loaded meanwhile and renames their placeholders.
    Background,
    /// After the session (`record`): user modules and the kernel's symbols are read when the samples have all
    /// come ([`Pipeline::finish_loading`]), so that reading them costs no CPU while the workload runs; until
    /// then addresses are named by placeholders, one per module, `[unknown] MODULE (loading)`, which nothing
    /// shows. A module only the process reaches (a deleted file, a container's) is read at once on the
    /// background thread (see `symbolize::background`).
    Deferred,
    /// Background loading with this function reading each module on the loader thread (tests slow it down).
    BackgroundWith(Box<dyn FnMut(&ModuleSpec) -> LoadedModule + Send + 'static>),
}

pub struct Pipeline {
    processes: Processes,
    symbolizer: Symbolizer,
    profile: Profile,
    limits: fp::Limits,
    /// Dwarf and hybrid modes: per-process unwinders over the copied stacks.
    unwinders: Option<Unwinders>,
    /// fp mode: the chains checked for code without frame pointers.
    fp_check: Option<FpCheck>,
    locations: HashMap<LocationKey, LocationId>,
    module_index: ModuleIndex,
    /// The locations of the frames last named, by process generation and address (see [`memo`]): cleared
    /// with `locations`.
    frame_memo: FrameMemo,
    /// Every user location of the profile by (its mapping, its address): unlike `locations`, kept when the
    /// module is evicted, so a module loaded again finds its locations instead of adding twins. No bigger
    /// than the profile's location table.
    user_locations: HashMap<(MappingId, u64), LocationId>,
    /// Code no file holds, by (pid, address): in anonymous executable memory or outside every mapping. Only
    /// the process's JIT map names it (see [`Pipeline::jit_location`]), with `true` once it did; an address
    /// it did not list yet is named in place when it does ([`Pipeline::name_jit_code`]).
    jit: HashMap<(u32, u64), (LocationId, bool)>,
    /// Unknown JIT code locations that hold the samples of several processes: the profile interns locations
    /// by content, so unnamed code at one address (a JIT's forked children run the parent's) is one location.
    /// One process's map cannot name it for all: it is never renamed in place.
    jit_shared: HashSet<LocationId>,
    /// When `name_jit_code` last ran.
    jit_named_at: std::time::Instant,
    /// By the file (its index in [`ModuleIndex`]: its identity, not its `Arc`, so a module evicted and mapped
    /// again finds its mapping) and the file offset of the mapping (the start of anonymous memory).
    mappings: HashMap<(u32, u64), ProfileMapping>,
    kernel_mapping: Option<MappingId>,
    /// Each sampled thread's name in `profile`, by tid (with its pid): interned once per refresh, not per
    /// sample.
    comms: HashMap<u32, (u32, StrId)>,
    /// Processes whose program `profile` has, with whether its path was known then (a sample between an
    /// exec and the mapping of the new program is looked at again). Cleared with `comms`.
    programs: HashMap<u32, bool>,
    /// Reused per sample, so a sample allocates nothing once the caches are warm.
    stack: Vec<LocationId>,
    walked: Stack,
    /// Each thread's last stack in `profile`, so a repeated stack is not interned node by node again.
    paths: PathCache,
    /// Reading a file after the fact (perf.data import): the processes are gone, so modules are opened
    /// by their paths and build-ids, never through `/proc/PID/...` (a pid may even be reused by now).
    offline: bool,
    /// Offline, for a flamegraph: a named location keeps its functions only (see `import::Detail`).
    function_stacks: bool,
    /// Offline, for a flamegraph not filtered by process or thread: CPU samples' groups have no pid or tid
    /// (see `import::Detail::Stacks`).
    merge_threads: bool,
    /// `top`: user modules load on a background thread (see [`Loading::Background`]); `record`: most of
    /// them after the session ([`Loading::Deferred`]).
    background: Option<BackgroundLoader>,
    /// [`Loading::Deferred`]: the kernel locations named by a placeholder until the end, with their lookup
    /// addresses; `None`: kernel addresses are named on the spot.
    kernel_placeholders: Option<Vec<(u64, LocationId)>>,
    /// Locations named by a loading placeholder, by (module path, address): the module's resolutions rename
    /// them by id when it is installed.
    placeholders: HashMap<(String, u64), LocationId>,
    /// `take_delta`: where the next delta starts, and the locations renamed since the last one.
    marks: TableMarks,
    relined: Vec<LocationId>,
    generations: Generations,
    /// When the tables were last started afresh, and whether the next delta must say they were.
    generation_start: std::time::Instant,
    fresh: bool,
    /// Large frees happened (modules evicted, tables started afresh): their memory goes back to the kernel
    /// at the next refresh, at most every [`TRIM_EVERY`].
    trim_pending: bool,
    last_trim: std::time::Instant,
    /// Off-CPU intervals, when recorded.
    off_cpu: Option<OffCpu>,
    /// Lock contention, when recorded.
    locks: Option<Locks>,
    /// The newest record time seen.
    latest_time: u64,
    /// Samples whose stack was cut before its root.
    pub truncated: u64,
    pub samples: u64,
    /// Live: processing lags sampling (see [`Pipeline::keep_up`]); hybrid CPU samples are walked by the
    /// kernel's frame-pointer chain alone until it has caught up.
    shedding: bool,
    /// CPU samples walked so.
    pub shed: u64,
    /// Walks of the target's processes (not stacktop's own) that ran off their stack copy, and those of
    /// them refused for probation: the reader's pace follows them (`reader::Pacer`).
    target_walks: TargetWalks,
    /// stacktop's own pid (`getpid` is a system call, and this is asked per walk that ran off).
    own_pid: u32,
}

/// How far the backlog must have drained (a share of its bound) for a pipeline that sheds
/// ([`SHED_ABOVE`]) to walk hybrid CPU samples with the tables again.
const WALK_BELOW: f64 = 0.1;

/// The pipeline's off-CPU state: the intervals, and how their charges go into the profile.
struct OffCpu {
    intervals: Intervals<Vec<LocationId>>,
    /// Charges handed back by `intervals`, added to the profile at once (reused).
    charges: Vec<Charge<Vec<LocationId>>>,
    /// Each thread's last off-CPU stack (apart from its CPU stacks, which it alternates with).
    paths: PathCache,
    /// The newest record time seen, and the time up to which every record has been seen (`top`).
    latest: u64,
    watermark: u64,
    /// Switch-out samples walked, and of them stacks cut before their root.
    samples: u64,
    truncated: u64,
    config: OffCpuConfig,
    /// Each thread's last switch-out stack, by tid.
    memos: HashMap<u32, SwitchMemo>,
}

/// A thread's last switch-out stack and what its walk depended on. A thread that switches again and again
/// from one place (a worker waiting for its next job, each side of a pipe) leaves from the same stack each
/// time: when the next sample has the same call chain and walk registers, and its stack copy holds the same
/// words where the walk read (locals that changed elsewhere, a loop counter, do not matter), the walk would
/// give the same frames, so its locations are taken as they are. At a million switches a second the walks
/// and location lookups were most of the consumer's time.
#[derive(Debug, Default)]
struct SwitchMemo {
    pid: u32,
    /// The process's mappings (`Processes::generation`): the same addresses may be other code after a
    /// change.
    generation: u64,
    regs: Option<Regs>,
    /// The sample had a stack copy (else the walk was the kernel's chain alone).
    stack: bool,
    callchain: Vec<u64>,
    reads: Vec<(u64, u64)>,
    locations: Vec<LocationId>,
    truncated: bool,
}

impl SwitchMemo {
    fn matches(&self, sample: &SampleRecord, generation: u64) -> bool {
        let copy = sample.user_stack.as_deref().unwrap_or_default();
        let regs = sample.user_regs.as_deref().and_then(Regs::from_sample);
        self.pid == sample.pid
            && self.generation == generation
            && self.stack != copy.is_empty()
            && self.regs == regs
            && self.callchain == sample.callchain
            && regs.is_some_and(|regs| {
                let copy = StackCopy {
                    sp: regs.sp,
                    bytes: copy,
                };
                self.reads
                    .iter()
                    .all(|&(address, value)| copy.read(address) == Some(value))
            })
    }
}

impl Pipeline {
    /// A pipeline as `config` says, whole: nothing to call afterwards, in no order.
    pub fn new(config: Config) -> Pipeline {
        let Config {
            meta,
            limits,
            tables,
            check_frame_pointers,
            stack_budget,
            symbolizer,
            offline,
            loading,
            generations,
            off_cpu,
            locks,
            continuation,
            self_check,
            function_stacks,
            merge_threads,
        } = config;
        let mut symbolizer = symbolizer.unwrap_or_default();
        // `-a` samples stacktop too: its own program is named without parsing its line tables (see the
        // method's docs), which took half of `top -a`'s memory.
        if let (false, Ok(program)) = (offline, std::env::current_exe()) {
            symbolizer = symbolizer.with_symbols_only_for(std::process::id(), program);
        }
        let deferred = matches!(loading, Loading::Deferred);
        if off_cpu.is_some() && !offline && !deferred {
            // Switch-outs come by the hundred thousand a second from the start (see the method's docs).
            symbolizer.preload_kernel_symbols();
        }
        let locks = locks.map(|config| Locks::new(config, off_cpu.is_some()));
        let background = match loading {
            Loading::OnTheSpot => None,
            Loading::Background => {
                // Reads modules as this symbolizer would (its kernel symbols, its JIT recheck).
                let loader = symbolizer.loader();
                BackgroundLoader::spawn(move |spec| loader.load(spec)).ok()
            }
            Loading::Deferred => BackgroundLoader::spawn_deferred(symbolizer.loader()).ok(),
            Loading::BackgroundWith(load) => BackgroundLoader::spawn(load).ok(),
        };
        let unwinders = tables.map(|mode| {
            let mut unwinders = Unwinders::new(mode, limits);
            if let Some(budget) = stack_budget {
                unwinders = unwinders.with_stack_budget(budget);
            }
            // After the fact the processes are gone, and their pids may be others'.
            if let Some(memory) = continuation.filter(|_| !offline) {
                unwinders = unwinders.with_continuation(memory);
            }
            if let Some(bytes) = self_check {
                unwinders = unwinders.with_self_check(bytes);
            }
            unwinders
        });
        let fp_check = (unwinders.is_none() && check_frame_pointers).then(FpCheck::new);
        Pipeline {
            processes: Processes::new(),
            symbolizer,
            profile: Profile::new(meta),
            limits,
            unwinders,
            fp_check,
            locations: HashMap::new(),
            module_index: ModuleIndex::default(),
            frame_memo: FrameMemo::default(),
            user_locations: HashMap::new(),
            jit: HashMap::new(),
            jit_shared: HashSet::new(),
            jit_named_at: std::time::Instant::now(),
            mappings: HashMap::new(),
            kernel_mapping: None,
            comms: HashMap::new(),
            programs: HashMap::new(),
            stack: Vec::new(),
            walked: Stack::default(),
            paths: PathCache::default(),
            offline,
            function_stacks: function_stacks && offline,
            merge_threads: merge_threads && offline,
            background,
            kernel_placeholders: deferred.then(Vec::new),
            placeholders: HashMap::new(),
            marks: TableMarks::default(),
            relined: Vec::new(),
            generations,
            generation_start: std::time::Instant::now(),
            fresh: false,
            trim_pending: false,
            last_trim: std::time::Instant::now(),
            off_cpu: off_cpu.map(|config| OffCpu {
                intervals: Intervals::new(config.attach.as_ref()),
                charges: Vec::new(),
                paths: PathCache::default(),
                latest: 0,
                watermark: 0,
                samples: 0,
                truncated: 0,
                config,
                memos: HashMap::new(),
            }),
            locks,
            latest_time: 0,
            truncated: 0,
            samples: 0,
            shedding: false,
            target_walks: TargetWalks::default(),
            own_pid: std::process::id(),
            shed: 0,
        }
    }

    pub fn processes(&self) -> &Processes {
        &self.processes
    }

    /// What the caches hold now: `take_delta` keeps these bounded by what live processes map.
    pub fn footprint(&self) -> Footprint {
        Footprint {
            symbol_modules: self.symbolizer.module_count(),
            unwind_modules: self.unwinders.as_ref().map_or(0, Unwinders::table_count)
                + self.fp_check.as_ref().map_or(0, FpCheck::table_count),
            processes: self.processes.process_count(),
            threads: self.processes.thread_count(),
            jit_processes: self.symbolizer.jit_process_count(),
            loading: self
                .background
                .as_ref()
                .map_or(0, BackgroundLoader::pending_modules),
            cached_locations: self.locations.len() + self.jit.len(),
            pending_renames: self.placeholders.len() + self.relined.len(),
            nodes: self.profile.nodes.len(),
        }
    }

    /// Shows the pipeline a batch of records before they are fed one by one ([`Pipeline::on_record`]): a
    /// walk continued in live memory learns where its thread was in the samples after its own.
    pub fn look_ahead(&mut self, records: &[Record]) {
        let Some(unwinders) = &mut self.unwinders else {
            return;
        };
        for record in records {
            if let Record::Sample(sample) = record {
                unwinders.ahead(sample);
            }
        }
    }

    /// Live: `backlog` is how full the backlog of samples read and not yet processed is (a share of its bound,
    /// `Recycler::backlog_share`). Above [`SHED_ABOVE`], hybrid CPU samples are walked by the kernel's
    /// frame-pointer chain alone (and counted in `shed`) until it is below [`WALK_BELOW`] again: the pipeline
    /// then keeps up with rates its table walks cannot, instead of the reader dropping samples. Dwarf mode has
    /// no chain to fall back on and never sheds; neither do switch-out and lock samples (their walks are
    /// remembered and reused).
    pub fn keep_up(&mut self, backlog: f64) {
        let hybrid = self
            .unwinders
            .as_ref()
            .is_some_and(|u| u.mode() == crate::unwind::modules::Mode::Hybrid);
        self.shedding = hybrid
            && if self.shedding {
                backlog > WALK_BELOW
            } else {
                backlog > SHED_ABOVE
            };
    }

    /// Feeds one record; records must come in time order, so a sample is resolved against the mappings valid
    /// at its time.
    pub fn on_record(&mut self, record: &Record) {
        self.latest_time = self.latest_time.max(record.time());
        if self.locks.is_some() {
            self.locks_see(record);
        }
        if let Some(off) = &mut self.off_cpu {
            off.latest = off.latest.max(record.time());
            match *record {
                Record::Sample(ref s) if s.kind == SampleKind::Cpu => off.intervals.running(s.tid),
                Record::Switch {
                    pid,
                    tid,
                    time,
                    out: true,
                    preempt,
                } => off.intervals.switch_out(pid, tid, time, preempt),
                Record::Switch {
                    pid,
                    tid,
                    time,
                    out: false,
                    ..
                } => off.intervals.switch_in(pid, tid, time, &mut off.charges),
                Record::Fork { pid, tid, .. } => off.intervals.fork(pid, tid),
                // Before the exit is applied: the charge names the thread as it was.
                Record::Exit { pid, tid, time, .. } => {
                    off.intervals.exit(pid, tid, time, &mut off.charges)
                }
                Record::Lost { off_cpu: true, .. } => off.intervals.lost(),
                _ => {}
            }
            self.add_off_cpu_charges();
        }
        match record {
            Record::Sample(sample) => match sample.kind {
                SampleKind::Cpu => self.on_sample(sample),
                SampleKind::SwitchOut => self.on_switch_out(sample),
                SampleKind::LockWait { .. }
                | SampleKind::LockAcquired
                | SampleKind::LockWake { .. } => self.on_lock_sample(sample),
            },
            // Hundreds of thousands a second from a switch-heavy target: nothing else to do with them.
            Record::Switch { .. } => {}
            other => {
                // A thread's name may change (comm, exec, a reused tid after fork).
                if !matches!(other, Record::Mmap(_)) {
                    self.comms.clear();
                    self.programs.clear();
                }
                self.processes.apply(other)
            }
        }
    }

    fn on_sample(&mut self, sample: &SampleRecord) {
        let walked = self.walk(sample);
        self.add_stack(sample, &walked);
        self.walked = walked;
        if !self.jit.is_empty() && self.jit_named_at.elapsed() >= NAME_JIT_EVERY {
            self.name_jit_code();
        }
    }

    /// A switch-out sample: its stack, walked as a CPU sample's is, waits for the thread's next switch-in.
    fn on_switch_out(&mut self, sample: &SampleRecord) {
        let Some(off) = &mut self.off_cpu else {
            return;
        };
        let mut stack = off.intervals.spare().unwrap_or_default();
        stack.clear();
        let generation = self.processes.generation(sample.pid);
        let truncated = match off.memos.get(&sample.tid) {
            Some(memo) if memo.matches(sample, generation) => {
                stack.extend_from_slice(&memo.locations);
                memo.truncated
            }
            _ => {
                let walked = self.walk(sample);
                let truncated = self.push_locations(sample.pid, &walked, &mut stack);
                self.walked = walked;
                self.remember_switch_out(sample, generation, &stack, truncated);
                truncated
            }
        };
        if let Some(off) = &mut self.off_cpu {
            off.samples += 1;
            off.truncated += u64::from(truncated);
            off.intervals
                .switch_out_sample(sample.pid, sample.tid, sample.time, stack);
        }
    }

    /// Keeps the stack of a switch-out just walked, for the thread's next one (see [`SwitchMemo`]), when the
    /// walk can tell what it depended on (dwarf and hybrid modes).
    fn remember_switch_out(
        &mut self,
        sample: &SampleRecord,
        generation: u64,
        stack: &[LocationId],
        truncated: bool,
    ) {
        let (Some(off), Some(unwinders)) = (&mut self.off_cpu, &self.unwinders) else {
            return;
        };
        let Some(reads) = unwinders.last_reads() else {
            off.memos.remove(&sample.tid);
            return;
        };
        let memo = off.memos.entry(sample.tid).or_default();
        memo.pid = sample.pid;
        memo.generation = generation;
        memo.regs = sample.user_regs.as_deref().and_then(Regs::from_sample);
        memo.stack = sample.user_stack.as_ref().is_some_and(|s| !s.is_empty());
        memo.callchain.clone_from(&sample.callchain);
        memo.reads.clear();
        memo.reads.extend_from_slice(reads);
        memo.locations.clear();
        memo.locations.extend_from_slice(stack);
        memo.truncated = truncated;
    }

    /// The stack of a sample, CPU or switch-out, by the mode's walk; switch-outs are counted in the off-CPU
    /// figures. Leaves `self.walked` empty: give the stack back there.
    fn walk(&mut self, sample: &SampleRecord) -> Stack {
        let mut walked = std::mem::take(&mut self.walked);
        let shed = (self.shedding || sample.shed) && sample.kind == SampleKind::Cpu;
        match &mut self.unwinders {
            Some(_) if shed => {
                self.shed += 1;
                fp::frames_into(&sample.callchain, self.limits, &mut walked);
            }
            Some(unwinders) => {
                let processes = &self.processes;
                let offline = self.offline;
                let mut loader = |module: &Module, mapping: &ProcessMapping| {
                    unwind_tables(&module_spec(module, mapping, processes, offline))
                };
                let counts = |c: &ContinuationStats| (c.ran_off, c.refused(Refusal::FirstSamples));
                let before = counts(&unwinders.quality.continuation);
                unwinders.unwind_into(sample, &self.processes, &mut loader, &mut walked);
                let after = counts(&unwinders.quality.continuation);
                if sample.pid != self.own_pid {
                    self.target_walks.ran_off += u64::from(after.0 > before.0);
                    self.target_walks.on_probation += u64::from(after.1 > before.1);
                }
            }
            None => {
                fp::frames_into(&sample.callchain, self.limits, &mut walked);
                if let Some(check) = &mut self.fp_check {
                    let processes = &self.processes;
                    let offline = self.offline;
                    let mut loader = |module: &Module, mapping: &ProcessMapping| {
                        unwind_tables(&module_spec(module, mapping, processes, offline))
                    };
                    match sample.kind {
                        SampleKind::Cpu => check.check(sample.pid, &walked, processes, &mut loader),
                        SampleKind::SwitchOut => {
                            check.check_off_cpu(sample.pid, &walked, processes, &mut loader)
                        }
                        // Lock probes' chains are taken in user mode at a function's entry: the CPU
                        // samples' check covers their code.
                        SampleKind::LockWait { .. }
                        | SampleKind::LockAcquired
                        | SampleKind::LockWake { .. } => {}
                    }
                }
            }
        }
        walked
    }

    /// Adds the charges the intervals handed back to the profile.
    fn add_off_cpu_charges(&mut self) {
        let Some(off) = &mut self.off_cpu else {
            return;
        };
        if off.charges.is_empty() {
            return;
        }
        let mut charges = std::mem::take(&mut off.charges);
        let mut paths = std::mem::take(&mut off.paths);
        let mut marker = Vec::new();
        for charge in charges.drain(..) {
            let stack = match &charge.stack {
                Some(stack) => stack.as_slice(),
                None => {
                    marker.clear();
                    marker.push(self.blocked_at_attach_location());
                    marker.as_slice()
                }
            };
            let comm = self.comm_of(charge.pid, charge.tid);
            self.profile.add_sample_cached(
                &mut paths,
                stack,
                charge.pid,
                charge.tid,
                comm,
                charge.values,
            );
            if let (Some(stack), Some(off)) = (charge.stack, &mut self.off_cpu) {
                off.intervals.give_back(stack);
            }
        }
        if let Some(off) = &mut self.off_cpu {
            off.charges = charges;
            off.paths = paths;
        }
    }

    /// `top`: every record stamped up to `time` has been fed (see `acquire::Session::watermark`), so the
    /// intervals still open are open at `time`: the next delta charges them up to it.
    pub fn advance_to(&mut self, time: u64) {
        if let Some(off) = &mut self.off_cpu {
            off.watermark = off.watermark.max(time);
        }
    }

    /// The end of the recording (`time`: when the counters stopped, if known): the off-CPU intervals still
    /// open end there, or at the last record's time. Sets the profile's off-CPU figures.
    pub fn finish_off_cpu(&mut self, time: Option<u64>) {
        let Some(off) = &mut self.off_cpu else {
            return;
        };
        let end = time.unwrap_or(0).max(off.latest);
        off.intervals.stop(end, &mut off.charges);
        self.add_off_cpu_charges();
        self.set_off_cpu_stats();
    }

    fn set_off_cpu_stats(&mut self) {
        if let Some(off) = &self.off_cpu {
            self.profile.meta.off_cpu = off.intervals.stats();
        }
    }

    /// Samples that fell back, and the modules where walks stopped early (dwarf and hybrid modes) or where
    /// frame-pointer chains went wrong (fp mode), worst first.
    pub fn unwind_summary(&self) -> (u64, Vec<ModuleUnwind>) {
        let (fell_back, quality) = match (&self.unwinders, &self.fp_check) {
            (Some(unwinders), _) => (unwinders.quality.fell_back, &unwinders.quality.modules),
            (None, Some(check)) => (0, &check.quality.modules),
            (None, None) => return (0, Vec::new()),
        };
        let mut modules: Vec<ModuleUnwind> = quality
            .iter()
            .map(|(module, q)| ModuleUnwind {
                path: module.path.clone(),
                frame_pointers: q.has_frame_pointers,
                tables: q.has_tables,
                fell_back: q.fell_back,
                broken: q.broken,
                frameless: q.frameless,
            })
            .collect();
        let weight = |m: &ModuleUnwind| m.fell_back + m.broken + m.frameless;
        modules.sort_by(|a, b| weight(b).cmp(&weight(a)).then_with(|| a.path.cmp(&b.path)));
        (fell_back, modules)
    }

    /// fp mode: samples whose frame-pointer chain went wrong in code without frame pointers (see
    /// `unwind::fpcheck`).
    pub fn frameless(&self) -> u64 {
        self.fp_check.as_ref().map_or(0, |c| c.quality.frameless)
    }

    /// CPU samples' walks that ran off their copy and their continuations (dwarf and hybrid modes).
    pub fn continuation(&self) -> crate::profile::ContinuationStats {
        self.unwinders
            .as_ref()
            .map(|u| u.quality.continuation.clone())
            .unwrap_or_default()
    }

    /// Walks that ran off their copy so far (the continuation was on), and those of them refused because
    /// their thread was on probation, but for those of stacktop's own threads: `-a` samples them too, and
    /// their walks would keep the reader's pace up for their own sake.
    pub fn target_walks(&self) -> TargetWalks {
        self.target_walks
    }

    /// `record --unwind-check`: the self-check's figures.
    pub fn self_check(&self) -> Option<&crate::unwind::modules::SelfCheck> {
        self.unwinders.as_ref().and_then(|u| u.self_check())
    }

    /// Stacks cut because the kernel copied less user stack than asked (dwarf and hybrid modes).
    pub fn short_copies(&self) -> ShortCopies {
        self.unwinders
            .as_ref()
            .map_or_else(ShortCopies::default, |u| u.quality.short_copies)
    }

    fn add_stack(&mut self, sample: &SampleRecord, walked: &Stack) {
        let mut stack = std::mem::take(&mut self.stack);
        stack.clear();
        if self.push_locations(sample.pid, walked, &mut stack) {
            self.truncated += 1;
        }
        let comm = self.comm_of(sample.pid, sample.tid);
        // Threads merged: the groups keep the thread's name only.
        let (pid, tid) = match self.merge_threads {
            true => (0, 0),
            false => (sample.pid, sample.tid),
        };
        self.profile.add_sample_cached_for(
            &mut self.paths,
            sample.tid,
            &stack,
            (pid, tid, comm),
            Values::cpu(1, sample.period),
        );
        self.samples += 1;
        self.stack = stack;
    }

    /// The name of thread `tid` of `pid` in the profile, and its process's program recorded.
    fn comm_of(&mut self, pid: u32, tid: u32) -> StrId {
        let comm = match self.comms.get(&tid) {
            Some(&(p, comm)) if p == pid => comm,
            _ => {
                let comm = self.profile.intern(self.processes.comm(pid, tid));
                self.comms.insert(tid, (pid, comm));
                comm
            }
        };
        if self.programs.get(&pid) != Some(&true) {
            let path = self.processes.program(pid);
            self.profile
                .set_program(pid, self.processes.comm(pid, pid), path);
            self.programs.insert(pid, path.is_some());
        }
        comm
    }

    /// Appends the locations of a walked stack's frames to `stack`, ending it in the truncation frame when the
    /// walk stopped early. A return address outside every mapping of a process whose mappings are known ends
    /// the stack there, as truncated: no call returns to memory that holds no code, so the word is not a
    /// return address. Frame-pointer chains read such words past a thread's root (`main`'s caller in libc
    /// keeps no frame pointer, so the saved one is whatever the register held: bytes of the environment
    /// strings in one case, `[unmapped]+0x65677261742f6e68`), and a stack shown with them would look complete.
    /// The instruction pointer stays whatever it is: the thread did run there. True when truncated.
    fn push_locations(&mut self, pid: u32, walked: &Stack, stack: &mut Vec<LocationId>) -> bool {
        let mut truncated = walked.truncated;
        let generation = self.processes.generation(pid);
        for frame in &walked.frames {
            let lookup = frame.address.lookup_address().0;
            if let Some(id) = self.frame_memo.get(pid, generation, frame.kernel, lookup) {
                stack.push(id);
                continue;
            }
            if !frame.kernel
                && matches!(frame.address, FrameAddress::ReturnAddress(_))
                && self
                    .processes
                    .outside_known_mappings(pid, frame.address.lookup_address())
            {
                truncated = true;
                break;
            }
            let (id, stable) = self.location_of(pid, frame.address, frame.kernel);
            if stable {
                self.frame_memo
                    .put(pid, generation, frame.kernel, lookup, id);
            }
            stack.push(id);
        }
        if truncated {
            stack.push(self.truncated_location());
        }
        truncated
    }

    /// The location of a frame, and whether it is stable: a function of the process's mappings and the
    /// address while the location table keeps it (code in a file, the kernel's), which [`FrameMemo`] may keep.
    /// JIT code is not: its process's map may name it later.
    fn location_of(&mut self, pid: u32, address: FrameAddress, kernel: bool) -> (LocationId, bool) {
        let lookup = address.lookup_address();
        if kernel {
            let key = LocationKey::kernel(lookup.0);
            if let Some(&id) = self.locations.get(&key) {
                return (id, true);
            }
            let mapping = self.kernel_mapping();
            let id = match self.kernel_placeholders.is_some() {
                true => {
                    // One placeholder for every kernel address named at the end ([`Loading::Deferred`]), as
                    // for a deferred module's (see `symbolize::background`).
                    let frames = loading_module_frames(KERNEL_MODULE);
                    let id = self.insert_location(Some(mapping), lookup, &frames);
                    if let Some(placeholders) = &mut self.kernel_placeholders {
                        placeholders.push((lookup.0, id));
                    }
                    id
                }
                false => {
                    let frames = self.symbolizer.symbolize_kernel(lookup);
                    self.insert_location(Some(mapping), lookup, &frames)
                }
            };
            self.locations.insert(key, id);
            return (id, true);
        }
        match self.processes.resolve(pid, lookup) {
            Resolved::Module {
                module, mapping, ..
            } if module.is_anonymous() => (
                self.jit_location(pid, lookup, Some((&module, &mapping))),
                false,
            ),
            Resolved::Module {
                module,
                mapping,
                offset,
            } => {
                let (index, file, restarted) = self.module_index.of(&module);
                if restarted {
                    self.locations.clear();
                    self.frame_memo.clear();
                }
                let key = LocationKey::user(index, offset.0);
                if let Some(&id) = self.locations.get(&key) {
                    return (id, true);
                }
                let mapping_key = (file, mapping.pgoff.0);
                // The address as the profile records it (the placeholder's name is resolved by it too): in the
                // first mapping's terms, which is `lookup` itself when this mapping is the first.
                let known = self.mappings.get(&mapping_key).copied();
                let address = known.map_or(lookup, |m| Avma(m.address_of(offset.0)));
                // Code of a module evicted and mapped again: the profile has its location already (named, or
                // a placeholder that will be renamed in place). Symbolizing it again would add a twin.
                if let Some(&id) = known.and_then(|m| self.user_locations.get(&(m.id, address.0))) {
                    self.locations.insert(key, id);
                    return (id, true);
                }
                let spec = module_spec(&module, &mapping, &self.processes, self.offline);
                let frames = match &mut self.background {
                    Some(background) => {
                        background.frames(&mut self.symbolizer, &spec, address, offset)
                    }
                    None => self.symbolizer.symbolize_user(&spec, offset),
                };
                let status = self.symbolizer.module_status(&spec);
                // Not loaded after asking: the frames are the background loader's placeholder.
                let placeholder =
                    self.background.is_some() && matches!(status, ModuleStatus::NotLoaded);
                // The build-id of the file actually read, when the record did not carry one.
                let build_id = match status {
                    ModuleStatus::Loaded {
                        build_id: Some(id), ..
                    } => Some(id),
                    // Still loading in the background: a new mapping reads the build-id from the file's headers,
                    // so that the profile names the very binary profiled (annotate and pprof check it).
                    _ if placeholder && known.is_none() && module.build_id.is_none() => {
                        module_build_id(&spec)
                    }
                    _ => module.build_id.clone(),
                };
                let recorded =
                    self.user_mapping(mapping_key, &module, &mapping, build_id.as_deref());
                let id = self.insert_location(Some(recorded.id), address, &frames);
                self.locations.insert(key, id);
                self.user_locations.insert((recorded.id, address.0), id);
                if placeholder {
                    self.placeholders.insert((spec.path, address.0), id);
                }
                (id, true)
            }
            Resolved::Kernel => self.location_of(pid, address, true),
            Resolved::Unmapped => (self.jit_location(pid, lookup, None), false),
        }
    }

    /// The location of `lookup` in code no file holds: in `anonymous` memory (the module and its mapping), or
    /// outside every mapping. JIT runtimes (V8, LuaJIT, the JVM with perf-map-agent, .NET) write their code
    /// into anonymous memory and name it in `/tmp/perf-PID.map`, so it is named by the process and the address
    /// as they are now, not by a file offset shared across processes. An address the map does not list (yet)
    /// is `[unknown] anon+0xADDRESS` (`[unmapped]` outside every mapping) until it does; offline, an address
    /// outside every mapping that the map does not list is the one `[unknown] [unmapped]`.
    fn jit_location(
        &mut self,
        pid: u32,
        lookup: Avma,
        anonymous: Option<(&Arc<Module>, &ProcessMapping)>,
    ) -> LocationId {
        let key = (pid, lookup.0);
        if let Some(&(id, _)) = self.jit.get(&key) {
            return id;
        }
        let named = self.symbolizer.symbolize_jit(pid, lookup);
        // Read after the fact, the JIT maps are as complete as they will ever be: an address in no mapping
        // that none names stays unknown, and its value tells nothing (in a frame-pointer chain through code
        // without frame pointers it is whatever the code kept in rbp, a new value in nearly every sample).
        // One location for all of them, so that a large `perf record -g` file's garbage does not grow the
        // profile with every sample.
        if named.is_none() && anonymous.is_none() && self.offline {
            return self.unmapped_location();
        }
        let (mapping, module) = match anonymous {
            Some((module, mapping)) => {
                // Keyed by its start: anonymous memory has no file offset to share between mappings.
                let key = (self.module_index.file(module), mapping.start.0);
                let recorded = self.user_mapping(key, module, mapping, None);
                (Some(recorded.id), module_name(&module.path))
            }
            None => (None, "[unmapped]".to_owned()),
        };
        let frames = named.clone().unwrap_or_else(|| {
            Arc::from(vec![Frame {
                function: format!("{UNKNOWN} {module}+{:#x}", lookup.0),
                file: None,
                line: 0,
            }])
        });
        let known = self.profile.locations.len();
        let id = self.insert_location(mapping, lookup, &frames);
        if named.is_none() && self.profile.locations.len() == known {
            self.jit_shared.insert(id);
        }
        self.jit.insert(key, (id, named.is_some()));
        id
    }

    /// Names the JIT code locations whose address the JIT map did not list when they were first met, if it
    /// lists them now: a JIT writes a function's line after compiling it, perf-map-agent dumps a running JVM's
    /// map when asked. The location is renamed in place, so the samples taken before the line was written get
    /// the name too (as `perf report`, which reads the map at the end, gives it), except a location several
    /// processes share (see `jit_shared`): the process whose map names it gets a location of its own from its
    /// next sample on. Each map is looked at once.
    fn name_jit_code(&mut self) {
        self.jit_named_at = std::time::Instant::now();
        let mut pids: Vec<u32> = self
            .jit
            .iter()
            .filter(|(_, &(_, named))| !named)
            .map(|(&(pid, _), _)| pid)
            .collect();
        if pids.is_empty() {
            return;
        }
        pids.sort_unstable();
        pids.dedup();
        for pid in pids {
            self.symbolizer.refresh_jit_map(pid);
        }
        let mut unshared = Vec::new();
        for (&(pid, address), (id, named)) in &mut self.jit {
            if *named {
                continue;
            }
            let Some(frames) = self.symbolizer.symbolize_jit_as_read(pid, Avma(address)) else {
                continue;
            };
            if self.jit_shared.contains(id) {
                unshared.push((pid, address));
            } else {
                self.profile.rename(*id, &frames);
                self.relined.push(*id);
                *named = true;
            }
        }
        for key in unshared {
            self.jit.remove(&key);
        }
    }

    fn insert_location(
        &mut self,
        mapping: Option<MappingId>,
        address: Avma,
        frames: &[Frame],
    ) -> LocationId {
        let mut lines = Vec::with_capacity(frames.len());
        for frame in frames {
            let name = self.profile.intern(&frame.function);
            let file = frame.file.as_deref().map(|f| self.profile.intern(f));
            let function = self.profile.add_function(Function { name, file });
            lines.push(Line {
                function,
                line: if self.function_stacks { 0 } else { frame.line },
            });
        }
        // Functions only: every address of one function and inline chain is the same location (the
        // profile interns locations), so the stacks through it are one. A file's locations are named once
        // and never renamed (no placeholders offline), so merging them is final.
        let address = match self.function_stacks && !lines.is_empty() {
            true => 0,
            false => address.0,
        };
        self.profile.add_location(Location {
            mapping,
            address,
            lines,
        })
    }

    fn truncated_location(&mut self) -> LocationId {
        if let Some(&id) = self.locations.get(&LocationKey::TRUNCATED) {
            return id;
        }
        let frame = Frame {
            function: TRUNCATED.to_owned(),
            file: None,
            line: 0,
        };
        let id = self.insert_location(None, Avma(0), &[frame]);
        self.locations.insert(LocationKey::TRUNCATED, id);
        id
    }

    /// Offline: the one location of the addresses in no mapping that no JIT map names.
    fn unmapped_location(&mut self) -> LocationId {
        if let Some(&id) = self.locations.get(&LocationKey::UNMAPPED) {
            return id;
        }
        let frame = Frame {
            function: format!("{UNKNOWN} [unmapped]"),
            file: None,
            line: 0,
        };
        let id = self.insert_location(None, Avma(0), &[frame]);
        self.locations.insert(LocationKey::UNMAPPED, id);
        id
    }

    fn blocked_at_attach_location(&mut self) -> LocationId {
        if let Some(&id) = self.locations.get(&LocationKey::BLOCKED_AT_ATTACH) {
            return id;
        }
        let frame = Frame {
            function: BLOCKED_AT_ATTACH.to_owned(),
            file: None,
            line: 0,
        };
        let id = self.insert_location(None, Avma(0), &[frame]);
        self.locations.insert(LocationKey::BLOCKED_AT_ATTACH, id);
        id
    }

    fn kernel_mapping(&mut self) -> MappingId {
        if let Some(id) = self.kernel_mapping {
            return id;
        }
        let path = self.profile.intern(KERNEL_MODULE);
        let id = self.profile.add_mapping(Mapping {
            path,
            build_id: None,
            start: 0,
            limit: 0,
            offset: 0,
            kernel: true,
        });
        self.kernel_mapping = Some(id);
        id
    }

    /// The profile mapping of `key` (`module`'s file, mapping's file offset), added from `mapping` if it is
    /// the first.
    fn user_mapping(
        &mut self,
        key: (u32, u64),
        module: &Module,
        mapping: &ProcessMapping,
        build_id: Option<&[u8]>,
    ) -> ProfileMapping {
        if let Some(&recorded) = self.mappings.get(&key) {
            return recorded;
        }
        let path = self.profile.intern(&module.path);
        let build_id = build_id.map(|b| {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            self.profile.intern(&hex)
        });
        let id = self.profile.add_mapping(Mapping {
            path,
            build_id,
            start: mapping.start.0,
            limit: mapping.end.0,
            offset: mapping.pgoff.0,
            kernel: false,
        });
        let recorded = ProfileMapping {
            id,
            start: mapping.start.0,
            offset: mapping.pgoff.0,
        };
        self.mappings.insert(key, recorded);
        recorded
    }

    /// Hands over what the profile gained since the last call (`top`, each refresh; see [`Delta`]): the tables
    /// and the caches that map addresses to their locations stay until the tables outgrow their budget
    /// ([`Generations`]), so an address is symbolized and interned once per generation, not once per refresh. Processes (and threads) that exited before the
    /// previous call are let go, with the symbols, unwind tables and cached locations of the modules no
    /// remaining process maps.
    pub fn take_delta(&mut self) -> Delta {
        // Intervals still open count up to now: their part so far goes into this delta.
        if let Some(off) = &mut self.off_cpu {
            if off.watermark > 0 {
                off.intervals.cut(off.watermark, &mut off.charges);
            }
        }
        self.add_off_cpu_charges();
        self.set_off_cpu_stats();
        self.name_pending_locks();
        self.set_lock_stats();
        let exited = self.release();
        // The delta carries the renames (`relined`) to the only other holder of the profile.
        let relined = std::mem::take(&mut self.relined);
        let mut delta = self.profile.take_delta(&mut self.marks, &relined, exited);
        delta.fresh = std::mem::take(&mut self.fresh);
        if self.profile.nodes.len() > self.generations.nodes
            && self.generation_start.elapsed() >= self.generations.min_age
            // A placeholder's rename refers to its location by id: wait until none is pending.
            && self.placeholders.is_empty()
        {
            self.new_generation();
        }
        if self.trim_pending && self.last_trim.elapsed() >= TRIM_EVERY {
            crate::acquire::memory::release_free_memory();
            self.trim_pending = false;
            self.last_trim = std::time::Instant::now();
        }
        delta
    }

    /// Starts the profile's tables afresh (see [`Generations`]), with every cache of their ids: the next
    /// delta is fresh. The symbolizer's and unwinder's caches stay, so the addresses still sampled are named
    /// again without reading a file.
    fn new_generation(&mut self) {
        let meta = std::mem::take(&mut self.profile.meta);
        let old = std::mem::replace(&mut self.profile, Profile::new(meta));
        // The stacks of open off-CPU intervals name the old tables' locations: copied into the new ones.
        if let Some(off) = &mut self.off_cpu {
            let mut copied = HashMap::new();
            for stack in off.intervals.stacks_mut() {
                for id in stack.iter_mut() {
                    *id = *copied
                        .entry(*id)
                        .or_insert_with(|| copy_location(&old, &mut self.profile, *id));
                }
            }
            off.paths.clear();
            off.memos.clear();
        }
        self.marks = TableMarks::default();
        self.locations.clear();
        self.frame_memo.clear();
        self.user_locations.clear();
        self.jit.clear();
        self.jit_shared.clear();
        self.mappings.clear();
        self.module_index.clear();
        self.kernel_mapping = None;
        self.comms.clear();
        self.programs.clear();
        self.paths.clear();
        self.relined.clear();
        self.generation_start = std::time::Instant::now();
        self.fresh = true;
        self.trim_pending = true;
    }

    /// Reading a file: lets go of the processes that exited (see [`Pipeline::release`]; the profile keeps
    /// their samples and names).
    pub fn release_exited(&mut self) {
        self.release();
    }

    /// Between two refreshes: installs the modules loaded in the background, names the JIT code the maps list
    /// now, lets go of the processes (and threads) that exited before the previous call, and evicts the
    /// modules no remaining process maps. Returns the processes let go.
    fn release(&mut self) -> Vec<u32> {
        let installed = self.install_loaded(None);
        self.name_jit_code();
        self.comms.clear();
        self.programs.clear();
        // Exited threads' stacks go too; the others are remembered again at their next sample.
        self.paths.clear();
        let exited = self.processes.release_exited();
        self.locks_forget(&exited);
        if let Some(off) = &mut self.off_cpu {
            off.paths.clear();
            off.memos.retain(|_, memo| !exited.contains(&memo.pid));
        }
        for &pid in &exited {
            if let Some(unwinders) = &mut self.unwinders {
                unwinders.forget(pid);
            }
            self.symbolizer.forget_process(pid);
        }
        // JIT code named is looked up again at its next sample (a JIT may put new code where old code was);
        // the unnamed stays, to be named in place.
        self.jit
            .retain(|(pid, _), &mut (_, named)| !named && !exited.contains(pid));
        self.evict_unmapped_modules(installed);
        exited
    }

    /// Under `top -a` every short-lived binary (a build's compilers, scripts, tests) would otherwise stay
    /// loaded for the whole session: the symbols and unwind tables of modules that no tracked process maps go.
    /// A module mapped again later loads again at its next sample. Kernel symbols stay.
    fn evict_unmapped_modules(&mut self, installed: bool) {
        // A module installed after its last process went is evicted here too.
        let released = self.processes.release_unmapped_modules();
        if released.is_empty() && !installed {
            return;
        }
        self.trim_pending |= !released.is_empty();
        // Forgotten while the released modules still hold their addresses, which a later module may reuse.
        let gone: std::collections::HashSet<u32> = released
            .iter()
            .filter_map(|m| {
                self.module_index
                    .ids
                    .remove(&module_key(m))
                    .map(|(id, _)| id)
            })
            .collect();
        self.locations
            .retain(|key, _| key.module().is_none_or(|m| !gone.contains(&m)));
        self.frame_memo.clear();
        let mapped: std::collections::HashSet<SymbolModuleKey> = self
            .processes
            .modules()
            .map(|m| SymbolModuleKey::new(&m.path, m.build_id.as_deref()))
            .collect();
        self.symbolizer.retain_modules(|key| mapped.contains(key));
        // A file's header counts every module's figures; `top`'s counts those of the modules mapped now.
        let figures = self.offline;
        if let Some(unwinders) = &mut self.unwinders {
            let processes = &self.processes;
            unwinders.retain_modules(|module| processes.has_module(module), figures);
        }
        if let Some(check) = &mut self.fp_check {
            let processes = &self.processes;
            check.retain_modules(|module| processes.has_module(module), figures);
        }
    }

    /// Background loading: installs the modules loaded so far (with `wait`, all of them, waiting until
    /// `wait` says to give up) and renames their placeholder locations, by id. True when some module was
    /// installed.
    fn install_loaded(&mut self, wait: Option<&dyn Fn() -> bool>) -> bool {
        let Some(background) = &mut self.background else {
            return false;
        };
        let (placeholders, profile, relined) =
            (&mut self.placeholders, &mut self.profile, &mut self.relined);
        let mut installed = false;
        let mut rename = |resolved: Vec<crate::symbolize::Resolution>| {
            installed |= !resolved.is_empty();
            for resolution in resolved {
                let key = (resolution.module, resolution.address);
                if let Some(id) = placeholders.remove(&key) {
                    profile.rename(id, &resolution.frames);
                    relined.push(id);
                }
            }
        };
        match wait {
            // A module's frames at a time (see `install_all_into`).
            Some(give_up) => {
                background.install_all_into(&mut self.symbolizer, give_up, &mut rename)
            }
            None => rename(background.install_finished(&mut self.symbolizer)),
        }
        installed
    }

    /// The end of a recording, before its symbols are read: the unwinders' tables go (see
    /// `Unwinders::release_tables`) and the memory freed returns to the kernel.
    pub fn release_unwind_tables(&mut self) {
        if let Some(unwinders) = &mut self.unwinders {
            unwinders.release_tables();
        }
        crate::acquire::memory::release_free_memory();
    }

    /// Waits for the modules still loading in the background, so the next delta or the finished profile
    /// leaves no placeholder unnamed (the end of a session), unless `give_up` returns true first (it is asked
    /// every tenth of a second: the user quit).
    pub fn finish_loading(&mut self, give_up: impl Fn() -> bool) {
        self.install_loaded(Some(&give_up));
        // Deferred kernel names: what they need of `/proc/kallsyms` is read now, once.
        let kernel = self
            .kernel_placeholders
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        let addresses: Vec<u64> = kernel.iter().map(|&(address, _)| address).collect();
        self.symbolizer.prepare_kernel(&addresses);
        for (address, id) in kernel {
            let frames = self.symbolizer.symbolize_kernel(Avma(address));
            self.profile.rename(id, &frames);
            self.relined.push(id);
        }
    }

    /// The finished profile.
    pub fn into_profile(mut self) -> Profile {
        self.name_jit_code();
        self.add_symbolizer_notes();
        self.add_off_cpu_notes();
        self.add_lock_notes();
        self.profile
    }

    /// The symbolizer's notes (a JIT map read only in part) go into the profile's, after the command has set
    /// its `Meta`, so every output's header shows them.
    fn add_symbolizer_notes(&mut self) {
        let notes = self.symbolizer.take_notes();
        self.profile.meta.notes.extend(notes);
    }

    /// What the off-CPU recording could not measure or attribute, in the profile's notes (every header shows
    /// them), after the command has set its `Meta`.
    fn add_off_cpu_notes(&mut self) {
        let notes = self.off_cpu_notes();
        self.profile.meta.notes.extend(notes);
    }

    /// Names the locks still unnamed, and puts what lock recording could not measure in the profile's notes
    /// and `Meta.locks`, after the command has set its `Meta`.
    fn add_lock_notes(&mut self) {
        if self.locks.is_none() {
            return;
        }
        self.name_pending_locks();
        self.set_lock_stats();
        let notes = self.lock_notes();
        self.profile.meta.notes.extend(notes);
    }

    /// The off-CPU notes (see `add_off_cpu_notes`); none when off-CPU time was not recorded.
    /// `cut` of `of` stacks of a `kind` sample were cut before their root: said with the copy's size when the
    /// stacks were walked in a copy.
    fn cut_stacks_note(
        &self,
        what: &str,
        kind: &str,
        (cut, of): (u64, u64),
        stack_bytes: u32,
    ) -> String {
        let copy = match (stack_bytes, &self.unwinders) {
            (0, _) | (_, None) => String::new(),
            (n, Some(_)) => format!(
                " (each copies {n} bytes of user stack; --call-graph dwarf,BYTES copies more)"
            ),
        };
        format!("{what}: {cut} of {of} {kind} stacks were cut before their root{copy}: they end in {TRUNCATED}")
    }

    pub fn off_cpu_notes(&self) -> Vec<String> {
        let Some(off) = &self.off_cpu else {
            return Vec::new();
        };
        let mut notes = Vec::new();
        let stats = off.intervals.stats();
        if off.truncated > 0 {
            let mut note = self.cut_stacks_note(
                "off-CPU",
                "switch-out",
                (off.truncated, off.samples),
                off.config.stack_bytes,
            );
            // Switch-out walks are continued in live memory as CPU samples' are, and counted apart.
            if let Some(c) = self
                .unwinders
                .as_ref()
                .map(|u| &u.off_cpu_quality.continuation)
                .filter(|c| c.ran_off > 0)
            {
                let why = match c.reasons() {
                    r if r.is_empty() => r,
                    r => format!(" (not: {r})"),
                };
                note.push_str(&format!(
                    "; the continuation in live memory completed {} of the {} that ran off their copy{why}",
                    c.completed(),
                    c.ran_off
                ));
            }
            notes.push(note);
        }
        if stats.blocked_at_attach > 0 {
            notes.push(format!(
                "off-CPU: {} threads were already off CPU when the recording attached: their wait until they first ran is charged to a {BLOCKED_AT_ATTACH} frame (the stack they blocked in was never sampled)",
                stats.blocked_at_attach
            ));
        }
        if stats.unknown_length > 0 {
            notes.push(format!(
                "off-CPU: {} switch-outs whose interval could not be measured (records lost, or the sample without its switch record) are not charged",
                stats.unknown_length
            ));
        }
        if let Some(check) = &self.fp_check {
            let q = &check.off_cpu_quality;
            let percent = q.frameless as f64 * 100.0 / (off.samples.max(1)) as f64;
            if q.frameless > 0 && percent >= 1.0 {
                let mut modules: Vec<(&Arc<Module>, u64)> = q
                    .modules
                    .iter()
                    .filter(|(_, m)| m.frameless > 0)
                    .map(|(module, m)| (module, m.frameless))
                    .collect();
                modules.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.path.cmp(&b.0.path)));
                let named: Vec<String> = modules
                    .iter()
                    .take(3)
                    .map(|(module, n)| {
                        format!(
                            "{} {:.1}%",
                            module_name(&module.path),
                            *n as f64 * 100.0 / off.samples.max(1) as f64
                        )
                    })
                    .collect();
                let by_perf = self
                    .profile
                    .meta
                    .command_line
                    .split_whitespace()
                    .next()
                    .is_some_and(|p| p.rsplit('/').next() == Some("perf"));
                let instead = if by_perf {
                    "perf record --call-graph dwarf"
                } else {
                    "--call-graph hybrid or dwarf"
                };
                notes.push(format!(
                    "off-CPU: {percent:.1}% of the switch-out stacks are frame-pointer chains through code without frame pointers ({}): their waits are charged to the wrong callers; record with {instead}",
                    named.join(", ")
                ));
            }
        }
        notes
    }

    pub fn meta_mut(&mut self) -> &mut Meta {
        &mut self.profile.meta
    }
}

/// Location `id` of `old`, interned into `new` with its mapping, functions and strings.
fn copy_location(old: &Profile, new: &mut Profile, id: LocationId) -> LocationId {
    let Some(location) = old.locations.get(id.index()) else {
        return id;
    };
    let mapping = location.mapping.and_then(|m| {
        let m = old.mappings.get(m.index())?;
        let mapping = Mapping {
            path: new.intern(old.str(m.path)),
            build_id: m.build_id.map(|b| new.intern(old.str(b))),
            ..m.clone()
        };
        Some(new.add_mapping(mapping))
    });
    let lines = location
        .lines
        .iter()
        .map(|line| {
            let f = old.function(line.function);
            let function = Function {
                name: new.intern(old.str(f.name)),
                file: f.file.map(|file| new.intern(old.str(file))),
            };
            Line {
                function: new.add_function(function),
                line: line.line,
            }
        })
        .collect();
    new.add_location(Location {
        mapping,
        address: location.address,
        lines,
    })
}

/// Sizes of the pipeline's caches (see [`Pipeline::footprint`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Modules whose symbols are loaded.
    pub symbol_modules: usize,
    /// Modules whose unwind tables are loaded (dwarf and hybrid modes; fp mode's check).
    pub unwind_modules: usize,
    /// Processes tracked, alive or exited but not yet released.
    pub processes: usize,
    /// Thread names kept.
    pub threads: usize,
    /// Processes whose JIT map is kept.
    pub jit_processes: usize,
    /// Modules requested from the background loader and not installed yet.
    pub loading: usize,
    /// Addresses whose location is cached (forgotten with their module; JIT code's with its process, or at
    /// the next refresh once named).
    pub cached_locations: usize,
    /// Placeholder names resolved and not handed over yet (the next delta carries them).
    pub pending_renames: usize,
    /// Stack nodes of the profile's current generation (see [`Generations`]).
    pub nodes: usize,
}

/// A module's unwind tables, read from its file (see [`module_data`]).
pub fn unwind_tables(spec: &ModuleSpec) -> Option<UnwindTables> {
    match module_data(spec)? {
        ModuleData::File(file) => UnwindTables::read(&file).ok(),
        ModuleData::Bytes(bytes) => UnwindTables::parse(bytes).ok(),
    }
}

/// What the symbolizer needs to find a mapped module's file: through `/proc/PID/...` while the process lives
/// (never offline).
fn module_spec(
    module: &Module,
    mapping: &ProcessMapping,
    processes: &Processes,
    offline: bool,
) -> ModuleSpec {
    ModuleSpec {
        path: module.path.clone(),
        build_id: module.build_id.clone(),
        pid: (!offline && !processes.has_exited(mapping.pid)).then_some(mapping.pid),
        map_start: mapping.start.0,
        map_end: mapping.end.0,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SP: u64 = 0x7ffc_0000_1000;

    fn switch_out(words: &[u64]) -> SampleRecord {
        SampleRecord {
            kind: SampleKind::SwitchOut,
            pid: 7,
            tid: 8,
            callchain: vec![
                crate::acquire::record::PERF_CONTEXT_KERNEL,
                0xffff_ffff_8100_0000,
            ],
            // bp, sp, ip (`arch::USER_REGS`).
            user_regs: Some(vec![SP + 0x40, SP, 0x5555_0000_1000]),
            user_stack: Some(words.iter().flat_map(|w| w.to_le_bytes()).collect()),
            ..SampleRecord::default()
        }
    }

    /// A memo of a walk that read words 1 and 3 of the stack.
    fn memo(sample: &SampleRecord) -> SwitchMemo {
        SwitchMemo {
            pid: 7,
            generation: 3,
            regs: sample.user_regs.as_deref().and_then(Regs::from_sample),
            stack: true,
            callchain: sample.callchain.clone(),
            reads: vec![(SP + 8, 11), (SP + 24, 33)],
            locations: vec![LocationId(1)],
            truncated: false,
        }
    }

    #[test]
    fn a_switch_memo_holds_while_what_the_walk_read_is_the_same() {
        let first = switch_out(&[0, 11, 22, 33, 44]);
        let m = memo(&first);
        assert!(m.matches(&first, 3));
        // Words the walk did not read (a caller's loop counter) changed, or the copy is longer: the same walk.
        assert!(m.matches(&switch_out(&[9, 11, 9, 33, 9, 9, 9]), 3));
        // A word it read changed, or the copy no longer holds it.
        assert!(!m.matches(&switch_out(&[0, 11, 22, 34, 44]), 3));
        assert!(!m.matches(&switch_out(&[0, 11, 22]), 3));
        // Other mappings, another process, other registers or another kernel chain.
        assert!(!m.matches(&first, 4));
        let mut other = first.clone();
        other.pid = 9;
        assert!(!m.matches(&other, 3));
        let mut other = first.clone();
        other.user_regs = Some(vec![SP + 0x48, SP, 0x5555_0000_1000]);
        assert!(!m.matches(&other, 3));
        let mut other = first.clone();
        other.callchain.push(0xffff_ffff_8100_0010);
        assert!(!m.matches(&other, 3));
        // No copy at all: the walk would have been the kernel's chain alone.
        let mut other = first.clone();
        other.user_stack = Some(Vec::new());
        assert!(!m.matches(&other, 3));
    }

    /// A live pipeline's config in `mode` whose symbolizer reads no kernel symbols.
    fn test_config(mode: Option<Mode>) -> Config {
        Config {
            symbolizer: Some(
                Symbolizer::new().with_kallsyms(crate::symbolize::Kallsyms::parse("")),
            ),
            ..Config::new(Meta::default(), fp::Limits::default(), mode)
        }
    }

    /// An executable mapping of `path` (a file that need not exist) at 0x5555_0000_0000 in process `pid`.
    fn test_mapping(pid: u32, path: &str) -> Record {
        Record::Mmap(crate::acquire::record::MmapRecord {
            pid,
            tid: pid,
            start: 0x5555_0000_0000,
            len: 0x1_0000,
            path: path.to_owned(),
            executable: true,
            ..Default::default()
        })
    }

    /// The exit of process `pid` (its main thread) at time 1.
    fn test_exit(pid: u32) -> Record {
        Record::Exit {
            pid,
            ppid: 1,
            tid: pid,
            ptid: 1,
            time: 1,
        }
    }

    /// A CPU sample of `pid`'s main thread whose kernel chain is the user frames `chain`.
    fn user_cpu_sample(pid: u32, chain: &[u64]) -> Record {
        let mut callchain = vec![crate::acquire::record::PERF_CONTEXT_USER];
        callchain.extend_from_slice(chain);
        Record::Sample(SampleRecord {
            kind: SampleKind::Cpu,
            pid,
            tid: pid,
            period: 1,
            callchain,
            ..SampleRecord::default()
        })
    }

    #[test]
    fn a_return_address_outside_every_mapping_ends_the_stack_as_truncated() {
        let mut pipeline = Pipeline::new(test_config(None));
        pipeline.on_record(&test_mapping(7, "/nonexistent/stacktop-test-program"));
        let cpu_sample = user_cpu_sample;
        // main's caller, then a word of the environment strings the frame-pointer chain read past it.
        let garbage = 0x6567_7261_742f_6e68;
        pipeline.on_record(&cpu_sample(
            7,
            &[
                0x5555_0000_1000,
                0x5555_0000_2000,
                garbage,
                0x5555_0000_3000,
            ],
        ));
        // An instruction pointer outside the mappings is where the thread ran: kept.
        pipeline.on_record(&cpu_sample(7, &[0x10, 0x5555_0000_2000]));
        // A process whose mappings are unknown: nothing to tell garbage by, but a value that is no address.
        pipeline.on_record(&cpu_sample(8, &[0x5555_0000_1000, 0x7fff_0000_1000]));
        pipeline.on_record(&cpu_sample(8, &[0x5555_0000_1000, garbage]));
        // Nor in the kernel's half: rustc's outermost "frame" was named a kernel address.
        pipeline.on_record(&cpu_sample(7, &[0x5555_0000_3000, 0xc500_0000_80ec_8147]));
        let profile = pipeline.into_profile();
        let mut lines: Vec<String> =
            crate::render::folded::folded_lines(&profile, &Default::default())
                .into_iter()
                .map(|(line, _)| line)
                .collect();
        lines.sort();
        // The file does not exist: names say "(unreadable)"; return addresses are looked up at `ra - 1`.
        assert_eq!(
            lines,
            vec![
                "[truncated];[unknown] [unmapped]+0x555500001000",
                "[truncated];[unknown] stacktop-test-program+0x1fff (unreadable);\
                 [unknown] stacktop-test-program+0x1000 (unreadable)",
                "[truncated];[unknown] stacktop-test-program+0x3000 (unreadable)",
                "[unknown] [unmapped]+0x7fff00000fff;[unknown] [unmapped]+0x555500001000",
                "[unknown] stacktop-test-program+0x1fff (unreadable);[unknown] [unmapped]+0x10",
            ]
        );
    }

    #[test]
    fn a_frame_is_named_again_after_its_process_maps_other_code_at_its_address() {
        let mut pipeline = Pipeline::new(test_config(None));
        let mmap = test_mapping;
        let cpu_sample = |pid: u32| user_cpu_sample(pid, &[0x5555_0000_1000]);
        pipeline.on_record(&mmap(7, "/nonexistent/stacktop-test-a"));
        pipeline.on_record(&mmap(8, "/nonexistent/stacktop-test-b"));
        // Named twice each (the second from the memo), per process.
        for _ in 0..2 {
            pipeline.on_record(&cpu_sample(7));
            pipeline.on_record(&cpu_sample(8));
        }
        // Process 7 execs another program at the same address: its frames are its new code's.
        pipeline.on_record(&Record::Comm {
            pid: 7,
            tid: 7,
            name: "c".to_owned(),
            exec: true,
            time: 0,
        });
        pipeline.on_record(&mmap(7, "/nonexistent/stacktop-test-c"));
        pipeline.on_record(&cpu_sample(7));
        let profile = pipeline.into_profile();
        let mut lines: Vec<(String, u64)> =
            crate::render::folded::folded_lines(&profile, &Default::default());
        lines.sort();
        assert_eq!(
            lines,
            vec![
                (
                    "[unknown] stacktop-test-a+0x1000 (unreadable)".to_owned(),
                    2
                ),
                (
                    "[unknown] stacktop-test-b+0x1000 (unreadable)".to_owned(),
                    2
                ),
                (
                    "[unknown] stacktop-test-c+0x1000 (unreadable)".to_owned(),
                    1
                ),
            ]
        );
    }

    #[test]
    fn a_file_read_lets_go_of_exited_processes_modules_and_names_their_code_alike_when_mapped_again(
    ) {
        let run = |release: bool| {
            let mut p = Pipeline::new(Config {
                offline: true,
                ..test_config(None)
            });
            let sample = |pid| user_cpu_sample(pid, &[0x5555_0000_1000]);
            p.on_record(&test_mapping(7, "/nonexistent/stacktop-test-a"));
            p.on_record(&sample(7));
            p.on_record(&test_exit(7));
            p.on_record(&test_mapping(8, "/nonexistent/stacktop-test-b"));
            p.on_record(&sample(8));
            let loaded = p.symbolizer.module_count();
            if release {
                // An exited process goes at the second call after its exit; its module with it.
                p.release_exited();
                assert_eq!(p.symbolizer.module_count(), 2);
                p.release_exited();
                assert_eq!(p.symbolizer.module_count(), 1);
            }
            // Mapped again by a later process: loaded again, and its code is the location it was.
            p.on_record(&test_mapping(9, "/nonexistent/stacktop-test-a"));
            p.on_record(&sample(9));
            let locations = p.profile.locations.len();
            let profile = p.into_profile();
            let mut lines = crate::render::folded::folded_lines(&profile, &Default::default());
            lines.sort();
            (loaded, locations, lines)
        };
        let kept = run(false);
        assert_eq!(kept.0, 2);
        assert_eq!(run(true), kept);
        assert_eq!(
            kept.2,
            vec![
                (
                    "[unknown] stacktop-test-a+0x1000 (unreadable)".to_owned(),
                    2
                ),
                (
                    "[unknown] stacktop-test-b+0x1000 (unreadable)".to_owned(),
                    1
                ),
            ]
        );
    }

    #[test]
    fn a_file_read_keeps_the_unwind_figures_of_the_modules_it_let_go() {
        // A frame-pointer chain (a `perf record -g` file's) whose sampled frame is in libc's getpid, which
        // Debian builds without frame pointers: charged to libc.
        let (libc, offset) = crate::symbolize::tests::own_code(libc::getpid as *const () as u64);
        let pgoff = offset.0 & !0xfff;
        let base = 0x7f00_0000_0000;
        let summary = |offline: bool| {
            let mut p = Pipeline::new(Config {
                offline,
                check_frame_pointers: true,
                ..test_config(None)
            });
            p.on_record(&Record::Mmap(crate::acquire::record::MmapRecord {
                pid: 7,
                tid: 7,
                start: base,
                len: 0x10_0000,
                pgoff,
                path: libc.path.clone(),
                executable: true,
                ..Default::default()
            }));
            p.on_record(&user_cpu_sample(
                7,
                &[base + offset.0 - pgoff + 1, base + 0x20, base + 0x40],
            ));
            p.on_record(&test_exit(7));
            let before = p.unwind_summary().1;
            p.release_exited();
            p.release_exited();
            (before, p.unwind_summary().1)
        };
        let (before, after) = summary(true);
        assert!(
            before
                .iter()
                .any(|m| m.path == libc.path && m.frameless == 1),
            "{before:?}"
        );
        assert_eq!(after, before, "a file's header counts every module");
        // `top` counts the modules mapped now.
        assert_eq!(summary(false).1, Vec::new());
    }

    #[test]
    fn a_full_backlog_sheds_hybrid_cpu_samples_to_the_frame_pointer_chain_until_it_drains() {
        let pipeline = |mode| Pipeline::new(test_config(Some(mode)));
        // A frame-pointer chain of three user frames, and a stack copy whose walk (no module known) gives only
        // the instruction pointer.
        let sample = SampleRecord {
            kind: SampleKind::Cpu,
            pid: 7,
            tid: 7,
            period: 1,
            callchain: vec![
                crate::acquire::record::PERF_CONTEXT_USER,
                0x5555_0000_1000,
                0x5555_0000_2000,
                0x5555_0000_3000,
            ],
            user_regs: Some(vec![0, SP, 0x5555_0000_1000]),
            user_stack: Some(vec![0; 64]),
            ..SampleRecord::default()
        };
        let mut hybrid = pipeline(Mode::Hybrid);
        let mut depths = Vec::new();
        for backlog in [0.0, 0.4, 0.6, 0.3, 0.11, 0.05, 0.2] {
            hybrid.keep_up(backlog);
            depths.push(hybrid.walk(&sample).frames.len());
        }
        // Shed from above a half until below a tenth.
        assert_eq!(depths, vec![1, 1, 3, 3, 3, 1, 1]);
        assert_eq!(hybrid.shed, 3);
        // Switch-outs are never shed.
        hybrid.keep_up(0.9);
        let switch_out = SampleRecord {
            kind: SampleKind::SwitchOut,
            ..sample.clone()
        };
        assert_eq!(hybrid.walk(&switch_out).frames.len(), 1);
        // A sample the reader shed (it kept no copy: it was behind the kernel) is walked by the chain whatever
        // the backlog, and counted with the others.
        hybrid.keep_up(0.0);
        let read_behind = SampleRecord {
            user_stack: Some(Vec::new()),
            shed: true,
            ..sample.clone()
        };
        assert_eq!(hybrid.walk(&read_behind).frames.len(), 3);
        assert_eq!(hybrid.walk(&sample).frames.len(), 1);
        assert_eq!(hybrid.shed, 4);
        // Dwarf mode has no chain to fall back on.
        let mut dwarf = pipeline(Mode::Dwarf);
        dwarf.keep_up(0.9);
        assert_eq!(dwarf.walk(&sample).frames.len(), 1);
        assert_eq!(dwarf.shed, 0);
    }

    fn kernel_switch_out(tid: u32, time: u64) -> Record {
        Record::Sample(SampleRecord {
            kind: SampleKind::SwitchOut,
            pid: 7,
            tid,
            time,
            callchain: vec![
                crate::acquire::record::PERF_CONTEXT_KERNEL,
                0xffff_ffff_8100_0000,
            ],
            ..SampleRecord::default()
        })
    }

    fn switch(tid: u32, time: u64, out: bool) -> Record {
        Record::Switch {
            pid: 7,
            tid,
            time,
            out,
            preempt: false,
        }
    }

    fn blocked(delta: &Delta) -> Vec<(u32, u64, u64)> {
        let mut v: Vec<_> = delta
            .samples
            .iter()
            .map(|g| (g.tid, g.switches, g.blocked))
            .collect();
        v.sort();
        v
    }

    /// The function names of a profile built from CPU samples of pid 7, which maps nothing: each chain is
    /// the sampled ip 0x5010 (listed in pid 7's JIT map) and one garbage return address, new in each sample.
    fn unmapped_names(offline: bool) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("perf-7.map"), "5000 100 jitted\n").unwrap();
        let symbolizer = Symbolizer::new()
            .with_kallsyms(crate::symbolize::Kallsyms::parse(""))
            .with_perf_map_dir(dir.path().to_owned());
        let mut pipeline = Pipeline::new(Config {
            offline,
            symbolizer: Some(symbolizer),
            ..Config::new(Meta::default(), fp::Limits::default(), None)
        });
        for (time, garbage) in [(1, 0x1111), (2, 0x2222), (3, 0x3333)] {
            pipeline.on_record(&Record::Sample(SampleRecord {
                pid: 7,
                tid: 7,
                time,
                period: 1,
                user_mode: true,
                callchain: vec![crate::acquire::record::PERF_CONTEXT_USER, 0x5010, garbage],
                ..SampleRecord::default()
            }));
        }
        let profile = pipeline.into_profile();
        assert_eq!(profile.totals().count, 3);
        let mut names: Vec<String> = profile
            .functions
            .iter()
            .map(|f| profile.str(f.name).to_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn offline_addresses_in_no_mapping_that_no_jit_map_names_are_one_location() {
        assert_eq!(
            unmapped_names(true),
            vec!["[unknown] [unmapped]".to_owned(), "jitted".to_owned()]
        );
        // Live, a JIT map may list an address later: each keeps its own location until then.
        assert_eq!(
            unmapped_names(false),
            vec![
                "[unknown] [unmapped]+0x1110".to_owned(),
                "[unknown] [unmapped]+0x2221".to_owned(),
                "[unknown] [unmapped]+0x3332".to_owned(),
                "jitted".to_owned()
            ]
        );
    }

    #[test]
    fn live_deltas_charge_open_intervals_up_to_the_watermark_and_the_rest_at_the_switch_in() {
        let mut pipeline = Pipeline::new(Config {
            off_cpu: Some(OffCpuConfig::default()),
            ..test_config(None)
        });
        for record in [
            kernel_switch_out(8, 1_000),
            switch(8, 1_000, true),
            kernel_switch_out(9, 1_500),
            switch(9, 1_500, true),
        ] {
            pipeline.on_record(&record);
        }
        // Nothing is known up to any time yet: nothing is charged.
        assert_eq!(blocked(&pipeline.take_delta()), vec![]);
        pipeline.advance_to(4_000);
        assert_eq!(
            blocked(&pipeline.take_delta()),
            vec![(8, 1, 3_000), (9, 1, 2_500)]
        );
        pipeline.on_record(&switch(8, 5_000, false));
        pipeline.advance_to(6_000);
        let delta = pipeline.take_delta();
        // 8 ran again at 5,000; 9 still waits. Each switch-out is counted once.
        assert_eq!(blocked(&delta), vec![(8, 0, 1_000), (9, 0, 2_000)]);
        assert!(delta.meta.off_cpu.enabled);
        pipeline.finish_off_cpu(Some(6_500));
        let delta = pipeline.take_delta();
        assert_eq!(blocked(&delta), vec![(9, 0, 500)]);
        assert_eq!(delta.meta.off_cpu.open_at_stop, 1);
    }
}
